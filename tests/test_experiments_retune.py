"""scripts/retune_dropout.py: early and late dropout added by surgery.

A tiny run (200 training images, 2 epochs, late dropout switched on after
the first) read back from its event files, CSV files and figure; the late
conversion's weights, predictions and optimizer state; the --full options.
"""

import csv
import math

import keras
import matplotlib.image
import numpy as np
import pytest

from kdrop.experiments import cli, retune_dropout, training
from tests.event_files import read_scalars

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="recipes and data, the same on every backend; training costs "
    "several times more on JAX and torch",
)

TRAIN_SIZE, BATCH = 200, 128
STEPS_PER_EPOCH = math.ceil(TRAIN_SIZE / BATCH)  # 2: 128 + 72 images


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("retune")
    rows, summary = retune_dropout.run(
        ["early", "late"],
        switch_epoch=1,
        epochs=2,
        seeds=1,
        dataset="offline",
        train_size=TRAIN_SIZE,
        curve_test_size=None,
        out=str(out),
        verbose=0,
    )
    return out, rows, summary


def test_the_logged_rate_follows_each_schedule_step_by_step(tiny_run):
    out, rows, _ = tiny_run
    steps = range(2 * STEPS_PER_EPOCH)
    late = read_scalars(out / "late" / "seed_0")
    rates = late["rates/dropout_per_batch/dropout_before_classifier"]
    # No dropout before the switch (epoch 1 = step 2): 0 before each step of
    # the first phase; from the switch on the rate is a fixed 0.5, written
    # once per epoch tag (a fixed rate has no per-batch series).
    assert rates == {0: 0.0, 1: 0.0}
    assert late["rates/dropout/dropout_before_classifier"] == {0: 0.0, 1: 0.5}
    # Keras's epoch curves continue over the conversion: epochs 0 and 1.
    assert sorted(late["epoch_loss"]) == [0, 1]
    early = read_scalars(out / "early" / "seed_0")
    rates = early["rates/dropout_per_batch/dropout_before_classifier"]
    # Early(0.1, until_step = round(4 / 6) = 1): 0.1 at step 0, then none.
    np.testing.assert_allclose([rates[s] for s in steps], [0.1, 0, 0, 0], atol=1e-7)
    by_variant = {row["variant"]: row["dropout"] for row in rows}
    assert by_variant == {
        "early": "add_dropout(Early(rate=0.1, until_step=1, decay=linear))",
        "late": "add_dropout(Late(rate=0.5, from_step=2)) at epoch 1",
    }


def test_summary_and_figure_hold_sane_numbers(tiny_run):
    out, rows, summary = tiny_run
    with open(out / "summary.csv") as handle:
        saved = list(csv.DictReader(handle))
    assert [(row["variant"], row["seed"]) for row in saved] == [
        ("early", "0"),
        ("late", "0"),
    ]
    for row, line in zip(rows, saved):
        assert 0 < row["test_error_%"] < 100 and 0 < row["test_loss"] < 10
        assert row["test_error_%"] == pytest.approx(100 * (1 - row["test_accuracy"]))
        assert row[training.GAP] == pytest.approx(
            100 * (1 - row["test_accuracy"]) - 100 * (1 - row["train_accuracy"])
        )
        assert float(line["test_loss"]) == pytest.approx(row["test_loss"])
    assert [row["seeds"] for row in summary] == [1, 1]
    assert (out / "aggregate.csv").exists()
    image = matplotlib.image.imread(out / "curves.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.std() > 0
    with open(out / "curves.csv") as handle:
        curves = list(csv.DictReader(handle))
    panels = {row["panel"] for row in curves}
    assert {"test error (%)", "test loss"} <= panels
    late_loss = [
        row["epoch"]
        for row in curves
        if row["panel"] == "test loss" and row["label"] == "late"
    ]
    assert late_loss == ["1", "2"]
    assert all(0 <= float(row["mean"]) < 100 for row in curves)


def test_late_conversion_keeps_weights_predictions_and_optimizer_state():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((64, 28, 28, 1), dtype="float32")
    y = rng.integers(0, 10, 64)
    model = retune_dropout.models.simple_mnist_convnet(None)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # 4 steps
    converted = retune_dropout.convert_late(model, 0.5, switch_step=4, seed=1)
    layer = converted.get_layer("dropout_before_classifier")
    assert (layer.step, layer.current_rate) == (4, 0.5)
    np.testing.assert_array_equal(converted.predict(x), model.predict(x))
    # The same weights; the converted model's only other one is the step.
    trained = model.trainable_variables
    assert len(converted.weights) == len(trained) + 1
    for old, new in zip(trained, converted.trainable_variables, strict=True):
        np.testing.assert_array_equal(np.asarray(old), np.asarray(new))
    for old, new in zip(model.optimizer.variables, converted.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(old), np.asarray(new))
    assert int(converted.optimizer.iterations) == 4
    assert converted.optimizer is not model.optimizer
    converted.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert int(converted.optimizer.iterations) == 8 and layer.step == 8
    assert int(model.optimizer.iterations) == 4  # the original is untouched


def test_carrying_state_between_different_models_is_refused():
    small = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="d")])
    for model in (small, other):
        model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="trainable variables are not the original"):
        retune_dropout.carry_optimizer_state(small, other)


@pytest.mark.parametrize("switch_epoch", [0, 2, 1.5])
def test_a_bad_switch_epoch_is_refused_before_out(tmp_path, switch_epoch):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"`switch_epoch` must be an int in \[1"):
        retune_dropout.run(epochs=2, switch_epoch=switch_epoch, out=str(out))
    with pytest.raises(ValueError, match="takes no `validation_split`"):
        retune_dropout.run(validation_split=0.1, out=str(out))
    assert not out.exists()


def test_full_replaces_the_defaults_and_explicit_options_win():
    module = retune_dropout
    parser = module.argument_parser()
    defaults = cli.parse_options(parser, [], module.FULL)
    assert (defaults["dataset"], defaults["train_size"]) == ("full", 4000)
    assert defaults["curve_test_size"] == 1000 and defaults["switch_epoch"] is None
    argv = ["--full", "--seeds", "5", "--switch-epoch", "3"]
    options = cli.parse_options(parser, argv, module.FULL)
    assert options == {**defaults, **module.FULL, "seeds": 5, "switch_epoch": 3}
    assert options["train_size"] is None and options["epochs"] == 15
    assert "full" not in options

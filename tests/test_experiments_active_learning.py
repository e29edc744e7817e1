"""scripts/active_learning.py (kdrop.experiments.active_learning_mnist) on
tiny settings: its outputs read back, its tables against hand computations,
its fast MC-dropout draws against the model, and its bad input refused
before any training."""

import csv
import os

import keras
import matplotlib.image
import numpy as np
import pytest

from kdrop.experiments import active_learning_mnist as al
from kdrop.experiments import cli
from kdrop.tensorboard import families
from tests.event_files import read_descriptions, read_scalars
from tests.tensorboard_plugins import chart_tags, custom_scalars_layout

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="recipes and data, the same on every backend; training costs "
    "several times more on JAX and torch",
)

# 2 rounds of k=2 from a 200-image pool (50 scored), 1 epoch, 2 MC passes.
TINY = {"rounds": 2, "k": 2, "initial": 10, "samples": 2, "pool_subset": 50}
TINY |= {"epochs": 1, "seeds": 1, "dataset": "offline", "train_size": 200}
TINY["curve_test_size"] = 100


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_run_writes_the_figure_tables_and_learning_curves(tmp_path):
    out = tmp_path / "al"
    rows, table = al.run(functions=["bald", "batch_bald"], out=str(out), **TINY)
    assert [row["function"] for row in rows] == ["bald", "batch_bald"]
    assert os.path.getsize(out / "learning_curves.png") > 0
    assert matplotlib.image.imread(out / "learning_curves.png").ndim == 3
    curves = read_csv(out / "curves.csv")
    assert len(curves) == 2 * 3  # two functions, rounds 0..2
    for function in ("bald", "batch_bald"):
        logged = read_scalars(out / function / "seed_0", "")
        errors = logged["active_learning/test_error"]
        # The learning curve: one point per round at step = labelled images.
        assert sorted(errors) == [10, 12, 14]
        written = {
            int(row["labels"]): float(row["test_error_%"])
            for row in curves
            if row["function"] == function
        }
        for labels, error in errors.items():
            assert 100 * error == pytest.approx(written[labels], abs=1e-4)
            # A whole number of the 100 curve images.
            assert 100 * error == pytest.approx(round(100 * error), abs=1e-4)
        accuracy = logged["active_learning/test_accuracy"]
        assert accuracy[14] == pytest.approx(1 - errors[14])
    summary = read_csv(out / "summary.csv")
    assert [int(row["labels"]) for row in summary] == [14, 14]
    for row, returned in zip(summary, rows):
        assert float(row["test_error_%"]) == pytest.approx(returned["test_error_%"])
    # The final model on the whole offline test set (1000 images).
    assert rows[0]["test_error_%"] * 10 == pytest.approx(
        round(rows[0]["test_error_%"] * 10), abs=1e-6
    )
    assert len(read_csv(out / "labels_needed.csv")) == 2 * 4
    assert [row["function"] for row in table] == ["bald", "batch_bald"]
    assert os.path.exists(out / "learning_curves.csv")
    assert os.path.exists(out / "figures")


def test_seeds_are_aggregated_into_one_line_and_band_per_function(tmp_path):
    out = tmp_path / "al"
    functions, seeds, labels = ("bald", "random"), (0, 1), [10, 12, 14]
    al.run(functions=list(functions), out=str(out), **{**TINY, "seeds": 2})
    figure = {
        (row["function"], int(row["labels"])): (float(row["mean"]), float(row["std"]))
        for row in read_csv(out / "learning_curves.csv")
    }
    spread = []
    for function in functions:
        per_seed = [read_scalars(out / function / f"seed_{s}", "") for s in seeds]
        aggregate = read_scalars(out / "across_seeds" / function, "")
        for name in ("test_error", "test_accuracy"):
            tag = f"active_learning/{name}"
            # Every seed logged the same steps, so all of them are aggregated.
            assert [sorted(scalars[tag]) for scalars in per_seed] == [labels] * 2
            values = np.array([[s[tag][n] for n in labels] for s in per_seed])
            mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)
            spread.append(std.max())
            got = {
                key: aggregate[f"{prefix}/{tag}{suffix}"]
                for key, prefix, suffix in (
                    ("mean", "across_seeds", ""),
                    ("lower", "within_one_std", "/lower"),
                    ("upper", "within_one_std", "/upper"),
                )
            }
            for key, expected in (
                ("mean", mean),
                ("lower", mean - std),
                ("upper", mean + std),
            ):
                assert sorted(got[key]) == labels
                np.testing.assert_allclose(
                    [got[key][n] for n in labels], expected, atol=1e-6
                )
            if name == "test_error":
                # The same numbers as the figure's line and band (in %).
                np.testing.assert_allclose(
                    [figure[function, n] for n in labels],
                    np.c_[100 * mean, 100 * std],
                    atol=1e-4,
                )
        # Nothing else: the final metrics (wrap_up/) are not aggregated.
        assert len(aggregate) == 2 * 3
        descriptions = read_descriptions(out / "across_seeds" / function, "")
        assert descriptions["across_seeds/active_learning/test_error"].endswith(
            families.AT_THE_SEEDS_STEPS
        )
    assert max(spread) > 0  # the seeds differ: the band is not a line
    # CUSTOM SCALARS opens with one margin chart per tag, drawn in each
    # function's run: one line and band per acquisition function.
    ((category, charts), *_) = custom_scalars_layout(out)
    assert category == families.ACROSS_SEEDS
    # Listed in reverse: TensorBoard 2.21 shows a category's margin charts in
    # reverse order (kdrop/tensorboard/aggregate.py; the browser test reads
    # the page), so the page shows them sorted.
    assert [title for title, _ in charts] == [
        "active_learning/test_error",
        "active_learning/test_accuracy",
    ]
    for function in functions:
        drawn = chart_tags(
            out,
            f"across_seeds/{function}",
            "^across_seeds/active_learning/test_error$",
        )
        assert [
            step for step, _ in drawn["across_seeds/active_learning/test_error"]
        ] == (labels)


def test_labels_needed_against_a_hand_computation():
    labels = [20, 30, 40, 50]
    assert al.labels_needed(labels, [40.0, 12.0, 10.0, 4.0], 10) == 40
    assert al.labels_needed(labels, [40.0, 12.0, 10.0, 4.0], 5) == 50
    assert al.labels_needed(labels, [40.0, 12.0, 11.0, 9.0], 5) is None
    curves = {
        "bald": [
            (labels, [40.0, 9.0, 6.0, 4.0]),  # 10 % at 30, 5 % at 50
            (labels, [40.0, 20.0, 8.0, 5.0]),  # 10 % at 40, 5 % at 50
        ],
        "random": [
            (labels, [40.0, 30.0, 20.0, 9.5]),  # 10 % at 50, never 5 %
            (labels, [40.0, 30.0, 20.0, 15.0]),  # neither
        ],
    }
    rows, numbers = al.labels_needed_table(curves, [10, 5], initial=20)
    # Acquired images = labels - 20: bald 10 and 20 for 10 %, 30 and 30 for 5 %.
    std = np.std([10, 20], ddof=1)
    assert rows == [
        {
            "function": "bald",
            "seeds": 2,
            "acquired_to_10%": "15 +- 7.1",  # std of 10, 20: sqrt(50)
            "acquired_to_5%": "30 +- 0.0",
        },
        {
            "function": "random",
            "seeds": 2,
            "acquired_to_10%": "30 (1/2 seeds)",
            "acquired_to_5%": "not reached",
        },
    ]
    assert numbers[0] == {
        "function": "bald",
        "threshold_%": 10,
        "seeds_reached": 2,
        "acquired_mean": 15.0,
        "acquired_std": pytest.approx(std),
    }
    assert numbers[3]["seeds_reached"] == 0
    assert numbers[3]["acquired_mean"] is None


def test_full_is_the_papers_protocol_and_explicit_options_win():
    parser = cli.argument_parser(
        "active_learning", al.__doc__, al.SETTINGS, full=al.FULL
    )
    parser.add_argument("--functions", nargs="+", default=list(al.FUNCTIONS))
    parser.add_argument("--rounds", type=int, default=al.DEFAULTS["rounds"])
    parser.add_argument("--pool-subset", type=int, default=al.DEFAULTS["pool_subset"])
    parser.add_argument("--samples", type=int, default=al.DEFAULTS["samples"])
    defaults = cli.parse_options(parser, [], al.FULL)
    options = cli.parse_options(parser, ["--full", "--seeds", "5"], al.FULL)
    assert options == {**defaults, **al.FULL, "seeds": 5}
    assert options["rounds"] * 10 == 1000
    assert options["functions"] == list(al.PAPER_FUNCTIONS)
    assert options["curve_test_size"] is None
    assert (options["epochs"], options["batch_size"]) == (50, 128)
    assert (options["pool_subset"], options["samples"]) == (2000, 20)


def test_main_parses_full(monkeypatch):
    seen = {}
    monkeypatch.setattr(al, "run", lambda **options: seen.update(options))
    al.main(["--full", "--rounds", "3"])
    assert seen["rounds"] == 3
    assert seen["functions"] == list(al.PAPER_FUNCTIONS)
    assert seen["dataset"] == "full" and seen["curve_test_size"] is None
    assert seen["k"] == 10 and seen["initial"] == 20


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(functions=["entropy"]), "`functions` must be one of"),
        (dict(k=60), "`pool_subset` must be at least k=60"),
        (dict(initial=15), "`initial` must be a multiple of the 10 classes"),
        (dict(thresholds=[0]), "`thresholds` must be one or more test errors"),
    ],
)
def test_bad_input_is_refused_before_training(tmp_path, options, message):
    out = tmp_path / "al"
    with pytest.raises(ValueError, match=message):
        al.run(out=str(out), **{**TINY, **options})
    assert not out.exists()


def test_unknown_function_on_the_command_line(capsys):
    with pytest.raises(SystemExit):
        al.main(["--functions", "entropy"])
    assert "invalid choice: 'entropy'" in capsys.readouterr().err


def test_more_acquisitions_than_the_pool_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="must fit the pool of 200"):
        al.run(out=str(tmp_path), **{**TINY, "rounds": 100})
    assert not os.path.exists(tmp_path / "bald")


def test_head_draws_are_the_models_prediction_without_dropout():
    keras.utils.set_random_seed(0)
    model = al.paper_cnn()
    x = np.random.default_rng(0).random((7, 28, 28, 1), dtype=np.float32)
    expected = model.predict(x, verbose=0)
    for name in ("dropout1", "dropout2"):
        model.get_layer(name).rate = 0.0
    draws = al.head_draws(model, x, seed=0, samples=2)
    assert draws.shape == (2, 7, 10)
    np.testing.assert_allclose(draws[0], expected, atol=1e-5)
    np.testing.assert_allclose(draws[1], expected, atol=1e-5)


def test_consistent_draws_share_masks_across_images():
    keras.utils.set_random_seed(0)
    model = al.paper_cnn()
    image = np.random.default_rng(1).random((1, 28, 28, 1), dtype=np.float32)
    x = np.repeat(image, 4, axis=0)
    shared = al.head_draws(model, x, seed=3, samples=5, consistent=True)
    np.testing.assert_array_equal(shared, np.repeat(shared[:, :1], 4, axis=1))
    assert not np.allclose(shared[0], shared[1])  # passes differ
    own = al.head_draws(model, x, seed=3, samples=5)
    assert not np.allclose(own[:, 0], own[:, 1])  # masks per image
    np.testing.assert_array_equal(own, al.head_draws(model, x, seed=3, samples=5))


def test_fresh_models_reuse_one_model_as_if_built_anew():
    rng = np.random.default_rng(0)
    x = rng.random((16, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 16)
    fresh_models = al.FreshModels()
    keras.utils.set_random_seed(1)
    first = fresh_models()
    first.fit(x, y, epochs=2, verbose=0)
    keras.utils.set_random_seed(2)
    reused = fresh_models()
    assert reused is first
    keras.utils.set_random_seed(2)
    built = al.paper_cnn()
    for a, b in zip(reused.get_weights(), built.get_weights()):
        np.testing.assert_array_equal(a, b)
    reused.fit(x, y, epochs=2, verbose=0, shuffle=False)
    built.fit(x, y, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(reused.get_weights(), built.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

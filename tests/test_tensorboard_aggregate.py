"""aggregate_seeds: mean and sample std over seeds, read back from the event
files and checked against numpy; the margin charts read by TensorBoard's
own CUSTOM SCALARS plugin."""

import os
import re

import keras
import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

import kdrop
from kdrop.tensorboard import aggregate_seeds, families
from kdrop.tensorboard.writer import SummaryWriter
from tests.callback_models import CLASSES, X, classifier
from tests.event_files import (
    event_file_paths,
    read_descriptions,
    read_histograms,
    read_scalars,
    read_tensors,
)
from tests.tensorboard_plugins import chart_tags, custom_scalars_layout

EPOCHS = 3
SEEDS = (0, 1, 2)
VARIANTS = {"fast": 0.3, "slow": 0.01}  # learning rates: two distinct curves
MARGIN = "Across seeds (mean ± 1 std)"


def fit_seeds(root):
    """Keras's TensorBoard callback and kdrop's callbacks on tiny fits, one
    run per variant and seed, as the experiment scripts lay them out."""
    for variant, learning_rate in VARIANTS.items():
        for seed in SEEDS:
            keras.utils.set_random_seed(seed)
            model = classifier()
            model.optimizer.learning_rate.assign(learning_rate)
            log_dir = root / variant / f"seed_{seed}"
            model.fit(
                X,
                CLASSES,
                validation_data=(X[:32], CLASSES[:32]),
                epochs=EPOCHS,
                batch_size=32,
                verbose=0,
                callbacks=[
                    keras.callbacks.TensorBoard(log_dir),
                    kdrop.callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
                    kdrop.callbacks.GeneralizationGap(log_dir),
                ],
            )


def expected_aggregates(root, variant):
    """{quantity: (steps, mean, sample std)} computed here with numpy from
    the per-seed event files: every scalar tag whose steps are epochs (the
    per-batch ones have more steps than epochs), Keras's flat tags with the
    run appended, accuracies as error in %."""
    per_quantity = {}
    for seed in SEEDS:
        for subrun in ("train", "validation"):
            scalars = read_scalars(root / variant / f"seed_{seed}", subrun)
            for tag, series in scalars.items():
                if not set(series) <= set(range(EPOCHS)):
                    continue
                if tag.startswith("epoch_") and tag.endswith("accuracy"):
                    tag = tag[: -len("accuracy")] + "error_%"
                    series = {s: 100 * (1 - v) for s, v in series.items()}
                quantity = f"{tag}/{subrun}" if "/" not in tag else tag
                per_quantity.setdefault(quantity, []).append(series)
    expected = {}
    for quantity, runs in per_quantity.items():
        assert len(runs) == len(SEEDS)
        # A set value (learning rate, dropout rate) that every seed holds
        # fixed is known before training: not aggregated.
        set_value = quantity.startswith(("epoch_learning_rate/", "rates/"))
        if set_value and len({v for run in runs for v in run.values()}) == 1:
            continue
        # The steps every seed holds: a fixed dropout rate is written once,
        # at epoch 0 (DropoutRateLogger), the other curves at every epoch.
        steps = sorted(set.intersection(*(set(run) for run in runs)))
        values = np.array([[run[step] for step in steps] for run in runs])
        expected[quantity] = (
            steps,
            values.mean(axis=0),
            values.std(axis=0, ddof=1),
        )
    return expected


def read_aggregate(root, variant):
    """{quantity: (steps, mean, lower, upper)} of run across_seeds/<variant>."""
    scalars = read_scalars(root / "across_seeds" / variant, "")
    result = {}
    for tag, series in scalars.items():
        if tag.startswith("across_seeds/"):
            quantity = tag[len("across_seeds/") :]
            lower = scalars[f"within_one_std/{quantity}/lower"]
            upper = scalars[f"within_one_std/{quantity}/upper"]
            assert sorted(lower) == sorted(upper) == sorted(series)
            steps = sorted(series)
            result[quantity] = (
                steps,
                np.array([series[s] for s in steps]),
                np.array([lower[s] for s in steps]),
                np.array([upper[s] for s in steps]),
            )
    assert 3 * len(result) == len(scalars)  # nothing but the three families
    for tag, description in read_descriptions(
        root / "across_seeds" / variant, ""
    ).items():
        if tag in scalars:
            assert description == families.describe(tag)
    return result


def test_keras_and_kdrop_curves_are_mean_and_sample_std_over_seeds(tmp_path):
    fit_seeds(tmp_path)
    written = aggregate_seeds(tmp_path)
    assert sorted(written) == sorted(VARIANTS)
    for variant in VARIANTS:
        expected = expected_aggregates(tmp_path, variant)
        assert {"epoch_loss/train", "epoch_loss/validation"} <= set(expected)
        assert {"epoch_error_%/train", "epoch_error_%/validation"} <= set(expected)
        assert any(q.count("/") >= 1 and not q.startswith("epoch_") for q in expected)
        # Each variant's learning rate and dropout rate are fixed.
        assert not [q for q in expected if "rate" in q]
        got = read_aggregate(tmp_path, variant)
        assert sorted(got) == sorted(expected) == written[variant]
        for quantity, (held, mean, std) in expected.items():
            steps, value, lower, upper = got[quantity]
            assert steps == held == list(range(EPOCHS))
            # float32 in the event files.
            np.testing.assert_allclose(value, mean, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(lower, mean - std, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(upper, mean + std, rtol=1e-5, atol=1e-5)
    # The variants' losses differ: the aggregation did not mix them.
    fast, slow = (read_aggregate(tmp_path, v)["epoch_loss/train"][1] for v in VARIANTS)
    assert not np.allclose(fast, slow)


def test_final_metrics_of_log_hparams_get_no_margin_chart(tmp_path):
    """A run's final metrics (`wrap_up/<metric>`, written by log_hparams at
    a step every seed holds) are one result per run, not a curve: the seeds'
    curves are aggregated, their final metrics are not."""
    losses = {seed: [1 / (e + 1) + 0.1 * seed for e in range(EPOCHS)] for seed in SEEDS}
    for seed in SEEDS:
        run = tmp_path / "dropout" / f"seed_{seed}"
        writer = SummaryWriter(run / "validation")
        for epoch, loss in enumerate(losses[seed]):
            writer.scalar("epoch_loss", loss, epoch)
        writer.close()
        kdrop.tensorboard.log_hparams(
            run,
            {"seed": str(seed)},
            {"test_error_%": 2.0 + seed, "test_loss": losses[seed][-1]},
            step=EPOCHS - 1,
        )
    assert read_scalars(tmp_path / "dropout" / "seed_2", "") == {
        "wrap_up/test_error_%": {EPOCHS - 1: 4.0},
        "wrap_up/test_loss": {EPOCHS - 1: pytest.approx(losses[2][-1])},
    }
    assert aggregate_seeds(tmp_path) == {"dropout": ["epoch_loss/validation"]}
    ((steps, mean, lower, upper),) = read_aggregate(tmp_path, "dropout").values()
    values = np.array([losses[seed] for seed in SEEDS])
    assert steps == list(range(EPOCHS))
    np.testing.assert_allclose(mean, values.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(
        upper - lower, 2 * values.std(axis=0, ddof=1), rtol=1e-5, atol=1e-6
    )
    ((category, charts), *_) = custom_scalars_layout(tmp_path)
    assert category == MARGIN
    assert [title for title, _ in charts] == ["epoch_loss/validation"]


def test_the_dashboard_opens_with_margin_charts_then_the_per_seed_charts(tmp_path):
    fit_seeds(tmp_path)
    per_seed_layout = custom_scalars_layout(tmp_path)
    written = aggregate_seeds(tmp_path)
    layout = custom_scalars_layout(tmp_path)
    assert layout[0][0] == MARGIN
    assert layout[1:] == per_seed_layout  # the per-seed categories, unchanged
    quantities = written["fast"]
    # Listed in reverse: TensorBoard 2.21 shows a category's margin charts
    # in reverse order (tests/test_tensorboard_browser.py reads the page).
    assert [title for title, _ in layout[0][1]] == quantities[::-1]
    for title, series in layout[0][1]:
        assert series == [
            (
                f"across_seeds/{title}",
                f"within_one_std/{title}/lower",
                f"within_one_std/{title}/upper",
            )
        ]
    # The plugin's own scalars route finds the chart's tag in every variant.
    for variant in VARIANTS:
        curve = chart_tags(
            tmp_path, f"across_seeds/{variant}", "^across_seeds/epoch_loss/train$"
        )
        assert [step for step, _ in curve["across_seeds/epoch_loss/train"]] == [0, 1, 2]
    # Each across_seeds run holds the whole layout too, for TensorBoard
    # started on <out>/across_seeds.
    alone = custom_scalars_layout(tmp_path / "across_seeds")
    assert alone == layout


def write_seed(root, run, tags, steps=range(4), seed_scale=1.0):
    writer = SummaryWriter(root / run)
    for tag, scale in tags.items():
        for step in steps:
            writer.scalar(tag, scale * seed_scale * (step + 1), step)
    writer.close()


def test_a_set_value_is_aggregated_only_where_it_moves(tmp_path):
    """A learning rate or dropout rate that every seed holds at one value is
    left out (a flat line, no band); one that changes, in any seed, is
    aggregated like a measured curve."""
    fixed = {"epoch_learning_rate": 0.0, "rates/dropout/drop": 0.0, "epoch_loss": 1.0}
    moving = {"rates/momentum": 1.0}
    for seed in (0, 1):
        write_seed(tmp_path, f"v/seed_{seed}/train", fixed, seed_scale=seed + 1)
        write_seed(tmp_path, f"v/seed_{seed}/train", moving)
    # Fixed in each seed but different between them: a real spread.
    for seed in (0, 1):
        writer = SummaryWriter(tmp_path / "u" / f"seed_{seed}" / "train")
        writer.scalar("rates/dropout/drop", 0.1 * (seed + 1), 0)
        writer.close()
    written = aggregate_seeds(tmp_path)
    assert written["v"] == ["epoch_loss/train", "rates/momentum"]
    assert written["u"] == ["rates/dropout/drop"]
    ((steps, mean, lower, upper),) = read_aggregate(tmp_path, "u").values()
    assert steps == [0]
    np.testing.assert_allclose(mean, [0.15], rtol=1e-6)
    np.testing.assert_allclose(
        upper - lower, [2 * np.std([0.1, 0.2], ddof=1)], rtol=1e-5
    )


def test_second_aggregation_replaces_the_first(tmp_path):
    for seed in (0, 1):
        write_seed(tmp_path, f"v/seed_{seed}", {"epoch_loss": 1.0}, seed_scale=seed + 1)
    aggregate_seeds(tmp_path)
    first = event_file_paths(tmp_path / "across_seeds") + [
        name for name in os.listdir(tmp_path) if "tfevents" in name
    ]
    assert len(first) == 2
    write_seed(tmp_path, "v/seed_2", {"epoch_loss": 1.0}, seed_scale=3)
    aggregate_seeds(tmp_path)
    second = event_file_paths(tmp_path / "across_seeds") + [
        name for name in os.listdir(tmp_path) if "tfevents" in name
    ]
    assert len(second) == 2  # replaced, not added
    events = read_tensors(tmp_path / "across_seeds" / "v", "")
    values = [v for _, v in events["across_seeds/epoch_loss"]]
    assert len(values) == 4  # one event per step
    np.testing.assert_allclose(values, 2.0 * np.arange(1, 5), rtol=1e-6)
    assert [title for title, _ in custom_scalars_layout(tmp_path)[0][1]] == [
        "epoch_loss"
    ]


def test_only_steps_of_every_seed_and_only_per_epoch_scalars(tmp_path):
    # Seed 1 stopped after 3 of 5 epochs; seed 2 has no "extra" tag.
    write_seed(tmp_path, "v/seed_0/train", {"loss_a": 1.0, "extra": 1.0}, range(5))
    write_seed(tmp_path, "v/seed_1/train", {"loss_a": 2.0, "extra": 3.0}, range(3))
    write_seed(tmp_path, "v/seed_2/train", {"loss_a": 4.0}, range(5))
    for seed in (0, 1, 2):
        writer = SummaryWriter(tmp_path / f"v/seed_{seed}/train")
        writer.scalar("rates/dropout_per_batch/d", 0.5, 7)
        writer.scalar("batch/dropout_rate/d", 0.5, 7)
        writer.histogram("value_histograms/weights/k", [[0, 1, 3]], 0)
        writer.close()
    written = aggregate_seeds(tmp_path)
    assert written == {"v": ["extra/train", "loss_a/train"]}
    got = read_aggregate(tmp_path, "v")
    steps, mean, lower, upper = got["loss_a/train"]
    assert steps == [0, 1, 2]
    values = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [4.0, 8.0, 12.0]])
    np.testing.assert_allclose(mean, values.mean(0), rtol=1e-6)
    np.testing.assert_allclose(upper - mean, values.std(0, ddof=1), rtol=1e-5)
    # "extra" is in two of the three seeds: their mean and std.
    steps, mean, lower, _ = got["extra/train"]
    two = np.array([[1.0, 2.0, 3.0], [3.0, 6.0, 9.0]])
    assert steps == [0, 1, 2]
    np.testing.assert_allclose(mean - lower, two.std(0, ddof=1), rtol=1e-5)
    assert read_histograms(tmp_path / "across_seeds" / "v", "") == {}


def test_tensorflow_1_simple_values_and_a_tag_in_two_subruns(tmp_path):
    for seed in (0, 1):
        for subrun, offset in (("train", 0.0), ("validation", 10.0)):
            path = tmp_path / f"v/seed_{seed}/{subrun}"
            os.makedirs(path)
            writer = EventFileWriter(str(path))
            for step in range(2):
                value = offset + seed + step
                writer.add_event(
                    event_pb2.Event(
                        step=step,
                        summary=summary_pb2.Summary(
                            value=[
                                summary_pb2.Summary.Value(
                                    tag="metrics/f1", simple_value=value
                                )
                            ]
                        ),
                    )
                )
            writer.close()
    assert aggregate_seeds(tmp_path) == {
        "v": ["metrics/f1/train", "metrics/f1/validation"]
    }
    got = read_aggregate(tmp_path, "v")
    np.testing.assert_allclose(got["metrics/f1/train"][1], [0.5, 1.5])
    np.testing.assert_allclose(got["metrics/f1/validation"][1], [10.5, 11.5])
    np.testing.assert_allclose(
        got["metrics/f1/validation"][3] - got["metrics/f1/validation"][1],
        np.std([0, 1], ddof=1),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "seed_pattern", [r"run\d", re.compile(r"run\d"), "function"], ids=str
)
def test_another_layout_is_grouped_by_a_regex_or_a_function(tmp_path, seed_pattern):
    for seed in (1, 2):
        write_seed(tmp_path, f"model_a/run{seed}", {"epoch_loss": 1.0}, range(2), seed)
    if seed_pattern == "function":

        def seed_pattern(run):
            variant, seed = run.split("/")
            return (variant, "", seed) if seed.startswith("run") else None

    assert aggregate_seeds(tmp_path, seed_pattern) == {"model_a": ["epoch_loss"]}
    np.testing.assert_allclose(
        read_aggregate(tmp_path, "model_a")["epoch_loss"][1], [1.5, 3.0]
    )


def test_no_runs_is_refused(tmp_path):
    with pytest.raises(ValueError, match="No TensorBoard runs .* under `log_dir`"):
        aggregate_seeds(tmp_path)
    with pytest.raises(ValueError, match="must be an existing directory"):
        aggregate_seeds(tmp_path / "missing")
    with pytest.raises(TypeError, match="`log_dir` must be a path"):
        aggregate_seeds(None)


def test_a_single_seed_is_refused_with_the_runs_and_grouping(tmp_path):
    write_seed(tmp_path, "v/seed_0/train", {"epoch_loss": 1.0})
    write_seed(tmp_path, "w/seed_0/train", {"epoch_loss": 1.0})
    message = (
        r"No variant has runs of two or more seeds .* 2 run\(s\) found "
        r".* regex 'seed_\\\\d\+' .*\{'v': \['seed_0'\], 'w': \['seed_0'\]\}"
    )
    with pytest.raises(ValueError, match=message):
        aggregate_seeds(tmp_path)


def test_seeds_sharing_no_tag_are_refused(tmp_path):
    write_seed(tmp_path, "v/seed_0", {"loss_a": 1.0})
    write_seed(tmp_path, "v/seed_1", {"loss_b": 1.0})
    with pytest.raises(ValueError, match="variant 'v' .* share no per-epoch scalar"):
        aggregate_seeds(tmp_path)


@pytest.mark.parametrize(
    "seed_pattern, error, message",
    [
        (3, TypeError, "`seed_pattern` must be a regex .* Received: seed_pattern=3"),
        ("seed_(", ValueError, "`seed_pattern` must be a valid regular expression"),
    ],
)
def test_bad_seed_pattern_is_refused(tmp_path, seed_pattern, error, message):
    write_seed(tmp_path, "v/seed_0", {"loss": 1.0})
    with pytest.raises(error, match=message):
        aggregate_seeds(tmp_path, seed_pattern)

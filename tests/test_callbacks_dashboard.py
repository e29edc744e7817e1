"""The CUSTOM SCALARS dashboard, read back by TensorBoard's own plugin."""

import os
import re
import time

import keras
import numpy as np
import pytest

import kdrop
from kdrop import callbacks
from kdrop.tensorboard import dashboard
from kdrop.tensorboard.writer import SummaryWriter, prepare_log_dir
from tests.callback_models import CLASSES, X, Y, classifier, relu_model
from tests.event_files import read_descriptions, read_scalars
from tests.tensorboard_plugins import chart_tags, custom_scalars_layout

STATISTICS = [
    "fraction of units dropped (training-mode draw)",
    "sparsity per layer",
    "mean activation per layer",
]
STORY = [
    "loss: train vs validation",
    "accuracy: train vs validation",
    "gap: validation - train (loss; error in % points)",
]


def titles(layout):
    return [(category, [title for title, _ in charts]) for category, charts in layout]


def test_layout_of_every_callback_is_merged_in_the_dashboards_order(tmp_path):
    # Started in the reverse of the dashboard's order, each in its own file.
    log_dir = tmp_path / "run"
    model = classifier()
    model.fit(
        X,
        CLASSES,
        validation_data=(X, CLASSES),
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[
            callbacks.MCDropoutMonitor(
                log_dir,
                (X, CLASSES),
                samples=2,
                every_n_epochs=1,
                reliability_diagram=False,
            ),
            callbacks.ActivationSparsity(log_dir, data=X[:8]),
            callbacks.LRMomentumScheduler(
                lambda epoch: 0.1, lambda epoch: 0.5, log_dir=log_dir
            ),
            callbacks.GeneralizationGap(log_dir),
            callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
        ],
    )
    # The fixed rate has no per-batch series, so no per-batch chart.
    expected = [
        ("Train vs validation, per seed", STORY),
        ("MC dropout vs deterministic", ["accuracy", "nll", "brier", "ece"]),
        ("Rates", ["dropout rate per layer", "learning rate", "momentum"]),
        ("Statistics", STATISTICS),
    ]
    assert titles(custom_scalars_layout(tmp_path)) == expected
    # Five event files; whichever TensorBoard reads last, it shows the merge.
    files = sorted(os.listdir(log_dir / "train"))
    assert len(files) == 5
    for name in files:
        alone = tmp_path / "alone" / name
        os.makedirs(alone / "train")
        os.link(log_dir / "train" / name, alone / "train" / name)
        assert titles(custom_scalars_layout(alone)) == expected
    regexes = dict(custom_scalars_layout(tmp_path)[0][1])
    assert regexes["loss: train vs validation"] == ["^epoch_loss$"]
    regexes = dict(custom_scalars_layout(tmp_path)[2][1])
    assert regexes["dropout rate per layer"] == ["^rates/dropout/"]


def test_a_fixed_rate_run_has_no_chart_of_a_tag_never_written(tmp_path):
    """Fixed dropout rate, learning rate and momentum, logged per batch: a
    fixed value is written once per epoch tag and has no per-batch series,
    so the layout has no per-batch chart. Every chart's regex matches a tag
    read back from the event files, and the plugin draws those tags."""
    model = classifier()
    model.fit(
        X,
        CLASSES,
        validation_data=(X, CLASSES),
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[
            keras.callbacks.TensorBoard(tmp_path),
            callbacks.DropoutRateLogger(tmp_path, update_freq="batch"),
            callbacks.LRMomentumScheduler(
                lambda step: 0.1, lambda step: 0.5, "batch", log_dir=tmp_path
            ),
            callbacks.GeneralizationGap(tmp_path),
            callbacks.ActivationSparsity(tmp_path, data=X[:8]),
        ],
    )
    written = {run: set(read_scalars(tmp_path, run)) for run in ("train", "validation")}
    assert "rates/dropout/drop" in written["train"]
    assert not any("per_batch" in tag for tag in written["train"])
    layout = custom_scalars_layout(tmp_path)
    charts = [chart for _, charts in layout for chart in charts]
    for title, (regex,) in charts:
        tags = {tag for run in written.values() for tag in run if re.search(regex, tag)}
        assert tags, f"chart {title!r} draws {regex!r}, which no event file holds"
        drawn = {tag for run in written for tag in chart_tags(tmp_path, run, regex)}
        assert drawn == tags
    assert titles(layout) == [
        ("Train vs validation, per seed", STORY),
        ("Rates", ["dropout rate per layer", "learning rate", "momentum"]),
        ("Statistics", STATISTICS),
    ]


def test_a_later_fit_keeps_the_charts_of_an_earlier_one(tmp_path):
    model = relu_model(kdrop.InvertedDropout(0.5, name="drop"))
    fit = dict(x=X, y=Y, epochs=1, batch_size=32, verbose=0)
    model.fit(**fit, callbacks=[callbacks.DropoutRateLogger(tmp_path)])
    # TensorBoard reads a run's event files in name order and keeps the last
    # layout it reads; a name is `...tfevents.<second>.<host>.<pid>.<n>`
    # with n not zero-padded, so two writers opened in the same second
    # (n = 9, then 10) would be read newest first.
    time.sleep(1.1)
    model.fit(**fit, callbacks=[callbacks.ActivationSparsity(tmp_path, data=X[:8])])
    assert titles(custom_scalars_layout(tmp_path)) == [
        ("Rates", ["dropout rate per layer"]),
        ("Statistics", STATISTICS),
    ]


def test_charts_draw_train_and_validation_runs_and_keep_steps_apart(tmp_path):
    """The regexes, run through the plugin's own scalars route: one loss
    chart holds both runs' `epoch_loss`; per-batch rates stay on their
    chart."""
    writers = {}
    for run in ("train", "validation"):
        writers[run] = SummaryWriter(prepare_log_dir(tmp_path, run))
        for step in range(3):
            writers[run].scalar("epoch_loss", 1.0 / (step + 1), step)
            writers[run].scalar("epoch_sparse_categorical_accuracy", 0.5, step)
            writers[run].scalar("epoch_learning_rate", 0.1, step)
    writers["train"].scalar("rates/dropout/drop", 0.5, 0)
    writers["train"].scalar("rates/dropout_per_batch/drop", 0.5, 7)
    dashboard.add_charts(writers["train"], dashboard.CHARTS)
    for writer in writers.values():
        writer.close()
    regexes = {
        title: regex
        for _, charts in custom_scalars_layout(tmp_path)
        for title, (regex,) in charts
    }
    for run in ("train", "validation"):
        loss = chart_tags(tmp_path, run, regexes["loss: train vs validation"])
        assert loss == {
            "epoch_loss": [(step, pytest.approx(1 / (step + 1))) for step in range(3)]
        }
        accuracy = chart_tags(tmp_path, run, regexes["accuracy: train vs validation"])
        assert list(accuracy) == ["epoch_sparse_categorical_accuracy"]
    rate = chart_tags(tmp_path, "train", regexes["dropout rate per layer"])
    per_batch = chart_tags(
        tmp_path, "train", regexes["dropout rate per layer, per batch"]
    )
    assert rate == {"rates/dropout/drop": [(0, 0.5)]}
    assert per_batch == {"rates/dropout_per_batch/drop": [(7, 0.5)]}


def test_unknown_chart_names_are_refused():
    with pytest.raises(ValueError, match="Unknown dashboard charts \\['rate'\\]"):
        dashboard.layout(["rates/dropout", "rate"])


def test_generalization_gap_is_validation_minus_training_history(tmp_path):
    model = classifier()
    x_val, y_val = X[:20] + 0.5, CLASSES[:20]
    history = model.fit(
        X,
        CLASSES,
        validation_data=(x_val, y_val),
        epochs=3,
        batch_size=16,
        verbose=0,
        callbacks=[callbacks.GeneralizationGap(tmp_path)],
    ).history
    logged = read_scalars(tmp_path)
    gap = "gap/validation_minus_train/"
    assert sorted(logged) == [gap + "error_%", gap + "loss"]
    # Held-out minus training: the loss in loss units, the error
    # (1 - accuracy) in percentage points.
    expected = {
        "loss": np.subtract(history["val_loss"], history["loss"]),
        "error_%": 100 * np.subtract(history["accuracy"], history["val_accuracy"]),
    }
    for name, values in expected.items():
        assert np.abs(values).min() > 1e-3  # a gap that could be wrong
        np.testing.assert_allclose(
            [logged[gap + name][epoch] for epoch in range(3)],
            values,
            rtol=1e-5,
            atol=1e-4,
        )
    description = read_descriptions(tmp_path)["gap/validation_minus_train/loss"]
    assert description.startswith("Validation minus training value")


def test_generalization_gap_writes_nothing_without_validation(tmp_path):
    model = classifier()
    model.fit(
        X,
        CLASSES,
        epochs=1,
        verbose=0,
        callbacks=[callbacks.GeneralizationGap(tmp_path)],
    )
    assert read_scalars(tmp_path) == {}

"""Event files of all kdrop callbacks together: sharing a log_dir,
interrupted runs, unusable directories, and a real TensorBoard server."""

import gc
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.custom_scalar.metadata import CONFIG_SUMMARY_TAG

import kdrop
from kdrop import callbacks
from kdrop.tensorboard.families import DESCRIPTIONS, describe
from kdrop.tensorboard.writer import (
    SummaryWriter,
    histogram_from_values,
    prepare_log_dir,
)
from tests import tensorboard_browser as browser
from tests.callback_models import X, Y, relu_model
from tests.conftest import BACKEND
from tests.event_files import read_descriptions, read_histograms, read_scalars
from tests.interruptions import RaiseAtEpoch


def all_kdrop_callbacks(log_dir, data=(X, Y)):
    return [
        callbacks.ActivationSparsity(log_dir, data=data),
        callbacks.WeightHistograms(log_dir, data=data),
        callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
        callbacks.LRMomentumScheduler(
            lambda epoch: 0.01 / (epoch + 1), log_dir=log_dir
        ),
    ]


def kdrop_tags(model):
    return {
        "scalars": {
            "statistics/sparsity/hidden",
            "statistics/mean_activation/drop",
            "statistics/dropped_fraction/drop",
            f"statistics/gradient_norm/{model.name}/hidden/kernel",
            "rates/dropout/drop",
            "rates/dropout_per_batch/drop",
            "rates/learning_rate",
        },
        "histograms": {
            "value_histograms/activations/hidden",
            f"value_histograms/weights/{model.name}/out/kernel",
            f"value_histograms/gradients/{model.name}/hidden/kernel",
        },
    }


def scheduled_dropout():
    # A rate that changes at every step: DropoutRateLogger writes a fixed
    # one once per fit, with no per-batch series.
    return kdrop.ScheduledDropout(kdrop.schedules.Linear(0.2, 0.5, 8), name="drop")


def test_all_callbacks_share_a_log_dir_and_a_real_tensorboard_serves_them(tmp_path):
    model = relu_model(scheduled_dropout())
    model.fit(
        X,
        Y,
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=all_kdrop_callbacks(tmp_path),
    )
    assert len(os.listdir(tmp_path / "train")) == 4  # one event file per callback
    expected = kdrop_tags(model)
    scalars, histograms = read_scalars(tmp_path), read_histograms(tmp_path)
    assert expected["scalars"] <= set(scalars) and expected["histograms"] <= set(
        histograms
    )
    assert sorted(scalars["rates/dropout_per_batch/drop"]) == [0, 1, 2, 3]
    assert sorted(scalars["rates/dropout/drop"]) == [0, 1]
    assert scalars["rates/learning_rate"] == {
        0: pytest.approx(0.01),
        1: pytest.approx(0.005),
    }

    descriptions = read_descriptions(tmp_path)
    del descriptions[CONFIG_SUMMARY_TAG]  # the dashboard's layout, not a series
    assert set(descriptions) == set(scalars) | set(histograms)
    for tag, description in descriptions.items():
        # One line naming the step axis: per batch exactly for *_per_batch.
        assert description and "\n" not in description, tag
        assert description.endswith(
            "Per batch: step = 0-based global index of the training step about to run."
            if tag.split("/")[1].endswith("_per_batch")
            else "Per epoch."
        ), (tag, description)
    assert "training-mode draw" in descriptions["statistics/dropped_fraction/drop"]
    assert (
        "inference mode"
        in descriptions[f"value_histograms/gradients/{model.name}/hidden/kernel"]
    )

    with browser.tensorboard_server(
        tmp_path, tmp_path / "tensorboard.txt", timeout=60
    ) as url:

        def served_kdrop_scalars():
            served = browser.get_json(url + "/data/plugin/scalars/tags")
            return (
                served if expected["scalars"] <= set(served.get("train", {})) else None
            )

        served_scalars = browser.wait_for(
            served_kdrop_scalars,
            60,
            lambda: "TensorBoard did not serve kdrop's tags in 60 s",
            poll=0.5,
        )
        served_histograms = browser.get_json(url + "/data/plugin/histograms/tags")
        assert expected["histograms"] <= set(served_histograms["train"])
        # The served CUSTOM SCALARS layout (the Rust data server's reading
        # where it is installed) is the merge of the four callbacks' charts.
        layout = browser.get_json(url + "/data/plugin/custom_scalars/layout")
        assert [category["title"] for category in layout["category"]] == [
            "Rates",
            "Statistics",
        ]
        # A tag's metadata (plugin, description) is written with its first
        # value only: TensorBoard still serves every value, and the
        # description, rendered from Markdown.
        served_rates = browser.get_json(
            url
            + "/data/plugin/scalars/scalars?run=train&tag=rates/dropout_per_batch/drop"
        )
        assert [step for _, step, _ in served_rates] == [0, 1, 2, 3]
        served = served_scalars["train"]["rates/dropout_per_batch/drop"]["description"]
        assert descriptions["rates/dropout_per_batch/drop"] in served


@pytest.mark.tensorflow_only
def test_kdrop_and_keras_tensorboard_share_a_log_dir_with_dataset_probes(tmp_path):
    import tensorflow as tf

    model = relu_model(scheduled_dropout())
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(32)
    model.fit(
        dataset,
        epochs=2,
        verbose=0,
        callbacks=[
            keras.callbacks.TensorBoard(tmp_path, histogram_freq=1),
            *all_kdrop_callbacks(tmp_path, data=dataset),
        ],
    )
    expected = kdrop_tags(model)
    scalars, histograms = read_scalars(tmp_path), read_histograms(tmp_path)
    assert expected["scalars"] | {"epoch_loss"} <= set(scalars)
    assert expected["histograms"] <= set(histograms)
    hidden = np.maximum(X[:32] @ model.get_layer("hidden").kernel.numpy(), 0.0)
    assert scalars["statistics/sparsity/hidden"][1] == pytest.approx(
        np.mean(hidden <= 0), abs=1e-6
    )


WITHOUT_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = None  # `import tensorflow` raises ImportError
import os
os.environ["KERAS_BACKEND"] = "jax"
import keras, numpy as np, kdrop
x = np.ones((8, 3), "float32")
model = keras.Sequential([keras.Input((3,)), kdrop.InvertedDropout(0.25, name="drop"),
                          keras.layers.Dense(2, name="dense")])
model.compile("sgd", "mse")
model.fit(x, x[:, :2], epochs=1, verbose=0, callbacks=[
    kdrop.callbacks.DropoutRateLogger(sys.argv[1]),
    kdrop.callbacks.WeightHistograms(sys.argv[1], data=(x, x[:, :2]))])
assert not [name for name, module in sys.modules.items()
            if name.startswith("tensorflow") and module is not None]
"""


@pytest.mark.skipif(
    BACKEND != "jax",
    reason="starts its own JAX process; runs once, in CI's JAX pass, where jax "
    "is installed",
)
def test_event_files_are_written_without_tensorflow(tmp_path):
    subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, str(tmp_path)],
        check=True,
        timeout=300,
    )
    assert read_scalars(tmp_path)["rates/dropout/drop"] == {0: 0.25}
    kernel = read_histograms(tmp_path)[
        "value_histograms/weights/sequential/dense/kernel"
    ][0]
    assert kernel[:, 2].sum() == 3 * 2


@pytest.mark.parametrize("error", [RuntimeError("stop"), KeyboardInterrupt()])
def test_interrupted_training_keeps_everything_logged(tmp_path, error):
    model = relu_model(scheduled_dropout())
    with pytest.raises(type(error)):
        model.fit(
            X,
            Y,
            epochs=5,
            batch_size=16,
            verbose=0,
            callbacks=[*all_kdrop_callbacks(tmp_path), RaiseAtEpoch(error, 2)],
        )
    scalars = read_scalars(tmp_path)
    assert set(scalars["statistics/sparsity/hidden"]) == {0, 1}
    assert set(
        read_histograms(tmp_path)[f"value_histograms/weights/{model.name}/out/kernel"]
    ) == {0, 1}
    assert sorted(scalars["rates/dropout_per_batch/drop"]) == list(range(8))
    assert set(scalars["rates/learning_rate"]) == {
        0,
        1,
        2,
    }  # set as epoch 2 began, before the error


def test_unusable_log_dir_and_bad_probe_fail_before_training(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    model = relu_model()
    weights = model.get_weights()
    for log_dir in (a_file, a_file / "below"):
        with pytest.raises(ValueError, match="log_dir"):
            model.fit(
                X,
                Y,
                epochs=1,
                verbose=0,
                callbacks=[callbacks.DropoutRateLogger(log_dir)],
            )
    for callback in (
        callbacks.ActivationSparsity(tmp_path, data=X[:, :5]),
        callbacks.WeightHistograms(tmp_path, data=(X[:, :5], Y)),
    ):
        with pytest.raises(
            ValueError, match=r"expects shape \(None, 6\).*has shape \(64, 5\)"
        ):
            model.fit(X, Y, epochs=1, verbose=0, callbacks=[callback])
    for got, before in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, before)


def test_a_tag_gets_its_longest_familys_description_and_unknown_tags_fail():
    assert (
        describe("rates/dropout_per_batch/encoder/drop")
        == (DESCRIPTIONS["rates/dropout_per_batch"])
    )
    assert describe("rates/dropout/encoder/drop") == DESCRIPTIONS["rates/dropout"]
    assert describe("mc_dropout/ece/mc") == DESCRIPTIONS["mc_dropout/ece"]
    with pytest.raises(KeyError, match="dropout_rates/drop"):
        describe("dropout_rates/drop")  # a prefix that is not a whole family


def test_temporary_writer_removes_its_directory_when_closed_or_collected(tmp_path):
    # What a multi-worker run's non-chief workers write to (test_multi_worker.py
    # runs the real thing).
    kept, closed, collected = (tmp_path / name for name in ("kept", "closed", "gone"))
    writers = [
        SummaryWriter(str(kept)),
        SummaryWriter(str(closed), temporary=True),
        SummaryWriter(str(collected), temporary=True),
    ]
    for writer in writers:
        writer.scalar("x", 2.0, 3)
        writer.flush()
    assert read_scalars(closed, subdir="") == {"x": {3: 2.0}}
    writers[0].close()
    writers[1].close()
    del writer, writers[2]  # the last reference: its finalizer runs
    gc.collect()
    assert not closed.exists() and not collected.exists()
    assert read_scalars(kept, subdir="") == {"x": {3: 2.0}}


def test_a_tags_metadata_goes_with_its_first_value_only(tmp_path):
    writer = SummaryWriter(prepare_log_dir(tmp_path))
    for step in range(3):
        writer.scalar("loss", 0.5 * step, step, description="A loss. Per batch.")
    buckets = histogram_from_values(np.arange(10.0))
    for step in range(2):
        writer.histogram("values", buckets, step, description="Values. Per epoch.")
    writer.close()
    (path,) = (tmp_path / "train").iterdir()
    values = [
        value
        for event in EventFileLoader(str(path)).Load()
        for value in event.summary.value
    ]
    assert [(v.tag, v.HasField("metadata")) for v in values] == [
        ("loss", True),
        ("loss", False),
        ("loss", False),
        ("values", True),
        ("values", False),
    ]
    # TensorBoard still files every value under its plugin, with its
    # description.
    assert read_scalars(tmp_path) == {"loss": {0: 0.0, 1: 0.5, 2: 1.0}}
    histograms = read_histograms(tmp_path)["values"]
    assert sorted(histograms) == [0, 1]
    np.testing.assert_array_equal(histograms[1], buckets)
    assert read_descriptions(tmp_path) == {
        "loss": "A loss. Per batch.",
        "values": "Values. Per epoch.",
    }
    served = plugin_event_accumulator.EventAccumulator(str(tmp_path / "train"))
    served.Reload()
    assert set(served.PluginTagToContent("scalars")) == {"loss"}
    assert set(served.PluginTagToContent("histograms")) == {"values"}
    assert [event.step for event in served.Tensors("loss")] == [0, 1, 2]

"""kdrop's callbacks, checked by reading their event files back."""

import math
import socket
import subprocess
import sys
import time
import urllib.request
import json

import keras
import numpy as np
import pytest

import kdrop
from kdrop import callbacks, schedules
from tests.event_files import read_histograms, read_scalars
from tests.interruptions import RaiseAtEpoch

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 6)).astype("float32")
W_HIDDEN = RNG.normal(size=(6, 40)).astype("float32")
Y = RNG.normal(size=(64, 1)).astype("float32")


def relu_model(dropout=None):
    layers = [
        keras.Input((6,)),
        keras.layers.Dense(40, activation="relu", use_bias=False, name="hidden"),
    ]
    if dropout is not None:
        layers.append(dropout)
    layers.append(keras.layers.Dense(1, name="out"))
    model = keras.Sequential(layers)
    model.get_layer("hidden").kernel.assign(W_HIDDEN)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    return model


def test_activation_sparsity_matches_numpy(tmp_path):
    dropout = kdrop.ScheduledDropout(schedules.Constant(0.4), seed=1, name="drop")
    model = relu_model(dropout)
    probe = np.tile(X, (20, 1))  # 1280 rows: a tight binomial tolerance
    model.fit(X, Y, epochs=2, batch_size=32, verbose=0, callbacks=[
        callbacks.ActivationSparsity(tmp_path, data=probe)])

    hidden = np.maximum(probe @ W_HIDDEN, 0.0)
    scalars = read_scalars(tmp_path)
    assert set(scalars["sparsity/hidden"]) == {0, 1}
    assert scalars["sparsity/hidden"][1] == pytest.approx(np.mean(hidden <= 0), abs=1e-6)
    assert scalars["mean_activation/hidden"][1] == pytest.approx(hidden.mean(), rel=1e-5)
    assert scalars["nonfinite_fraction/hidden"][1] == 0.0

    counts = read_histograms(tmp_path)["activations/hidden"][1]
    assert counts[:, 2].sum() == hidden.size
    assert counts[0, 0] == pytest.approx(hidden.min()) and counts[-1, 1] == pytest.approx(hidden.max(), rel=1e-5)
    expected, _ = np.histogram(hidden, bins=len(counts), range=(hidden.min(), hidden.max()))
    assert np.abs(counts[:, 2] - expected).sum() <= 0.001 * hidden.size  # float32 binning at edges

    nonzero = np.count_nonzero(hidden)
    dropped = scalars["dropped_fraction/drop"][1]
    assert abs(dropped - 0.4) < 5 * math.sqrt(0.4 * 0.6 / nonzero)
    assert dropout.step == 4  # the probe never advanced the schedule


def test_activation_sparsity_threshold_layers_and_every_n_epochs(tmp_path):
    model = relu_model()
    model.fit(X, Y, epochs=4, verbose=0, callbacks=[callbacks.ActivationSparsity(
        tmp_path, data=(X, Y), layers=["hidden"], threshold=0.5, histograms=False, every_n_epochs=2)])
    hidden = np.maximum(X @ W_HIDDEN, 0.0)
    scalars = read_scalars(tmp_path)
    assert set(scalars) == {"sparsity/hidden", "mean_activation/hidden", "nonfinite_fraction/hidden"}
    assert set(scalars["sparsity/hidden"]) == {1, 3}
    assert scalars["sparsity/hidden"][3] == pytest.approx(np.mean(hidden <= 0.5), abs=1e-6)
    assert read_histograms(tmp_path) == {}


def test_activation_sparsity_logs_nonfinite_without_breaking_training(tmp_path):
    model = relu_model()
    probe = X.copy()
    probe[0, 0] = np.nan
    history = model.fit(X, Y, epochs=2, verbose=0, callbacks=[
        callbacks.ActivationSparsity(tmp_path, data=probe)])
    assert len(history.history["loss"]) == 2
    hidden = probe @ W_HIDDEN
    finite = np.isfinite(hidden)
    scalars = read_scalars(tmp_path)
    assert scalars["nonfinite_fraction/hidden"][1] == pytest.approx(1 - finite.mean())
    relu = np.maximum(hidden[finite], 0)
    assert scalars["mean_activation/hidden"][1] == pytest.approx(relu.mean(), rel=1e-5)


def test_gradient_histograms_match_numpy_for_linear_model(tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1, name="linear")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[
        callbacks.WeightHistograms(tmp_path, data=(X, Y))])
    kernel, bias = (v.numpy() for v in model.get_layer("linear").weights)
    residual = X @ kernel + bias - Y
    gradients = {"kernel": 2 * X.T @ residual / len(X), "bias": 2 * residual.mean(axis=0)}

    scalars = read_scalars(tmp_path)
    histograms = read_histograms(tmp_path)
    for name, gradient in gradients.items():
        path = f"{model.name}/linear/{name}"
        assert scalars[f"gradient_norm/{path}"][0] == pytest.approx(np.linalg.norm(gradient), rel=1e-5)
        buckets = histograms[f"gradients/{path}"][0]
        assert buckets[:, 2].sum() == gradient.size
        assert buckets[0, 0] <= gradient.min() + 1e-5 and buckets[-1, 1] >= gradient.max() - 1e-5
    kernel_buckets = histograms[f"gradients/{model.name}/linear/kernel"][0]
    expected, edges = np.histogram(gradients["kernel"], bins=len(kernel_buckets))
    np.testing.assert_allclose(kernel_buckets[:, 0], edges[:-1], atol=1e-5)
    np.testing.assert_array_equal(kernel_buckets[:, 2], expected)
    assert scalars[f"weight_norm/{model.name}/linear/kernel"][0] == pytest.approx(np.linalg.norm(kernel), rel=1e-6)
    assert histograms[f"weights/{model.name}/linear/kernel"][0][:, 2].sum() == kernel.size


@pytest.mark.parametrize("error", [RuntimeError("stop"), KeyboardInterrupt()])
def test_interrupted_training_keeps_everything_logged(tmp_path, error):
    model = relu_model(kdrop.InvertedDropout(0.5, name="drop"))
    with pytest.raises(type(error)):
        model.fit(X, Y, epochs=5, batch_size=16, verbose=0, callbacks=[
            callbacks.ActivationSparsity(tmp_path, data=X),
            callbacks.DropoutRateLogger(tmp_path, update_freq="batch"),
            RaiseAtEpoch(error, 2),
        ])
    scalars = read_scalars(tmp_path)
    assert set(scalars["sparsity/hidden"]) == {0, 1}
    assert sorted(scalars["dropout_rate/drop"]) == list(range(8))


@pytest.mark.tensorflow_only
def test_callbacks_share_a_log_dir_with_keras_tensorboard(tmp_path):
    import tensorflow as tf

    model = relu_model(kdrop.InvertedDropout(0.5, name="drop"))
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(16)
    model.fit(dataset, epochs=2, verbose=0, callbacks=[
        keras.callbacks.TensorBoard(tmp_path, histogram_freq=1),
        callbacks.ActivationSparsity(tmp_path, data=dataset),
        callbacks.WeightHistograms(tmp_path, data=dataset),
        callbacks.DropoutRateLogger(tmp_path),
    ])
    tags = set(read_scalars(tmp_path)) | set(read_histograms(tmp_path))
    for tag in ("epoch_loss", "sparsity/hidden", "dropout_rate/drop", "activations/hidden",
                f"gradients/{model.name}/hidden/kernel"):
        assert tag in tags


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_real_tensorboard_server_serves_kdrop_tags(tmp_path):
    model = relu_model(kdrop.InvertedDropout(0.5, name="drop"))
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[
        callbacks.ActivationSparsity(tmp_path, data=X), callbacks.DropoutRateLogger(tmp_path)])
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def get(path):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
                return json.loads(reply.read())

        deadline = time.monotonic() + 60
        while True:
            try:
                scalars = get("/data/plugin/scalars/tags")
                if scalars.get("train"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "TensorBoard did not serve the run in 60 s"
            time.sleep(0.5)
        histograms = get("/data/plugin/histograms/tags")
        assert {"sparsity/hidden", "dropout_rate/drop"} <= set(scalars["train"])
        assert "activations/hidden" in histograms["train"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_unusable_log_dir_and_bad_probe_fail_before_training(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    model = relu_model()
    weights = model.get_weights()
    for log_dir in (a_file, a_file / "below"):
        with pytest.raises(ValueError, match="log_dir"):
            model.fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.DropoutRateLogger(log_dir)])
    with pytest.raises(ValueError, match=r"\(None, 6\).*\(64, 5\)"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[
            callbacks.ActivationSparsity(tmp_path, data=X[:, :5])])
    for got, before in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, before)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: callbacks.ActivationSparsity("logs", X, every_n_epochs=0), ValueError, ["every_n_epochs", "0"]),
        (lambda: callbacks.ActivationSparsity("logs", X, threshold=float("nan")), ValueError, ["threshold", "nan"]),
        (lambda: callbacks.WeightHistograms("logs"), ValueError, ["data", "gradients=True"]),
        (lambda: callbacks.WeightHistograms("logs", data=X), ValueError, ["data", "targets"]),
    ],
)
def test_bad_arguments(make, error, words):
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value)

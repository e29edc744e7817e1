"""MCDropoutMonitor: logged values against kdrop.uncertainty on the same draws."""

import io

import keras
import numpy as np
import pytest
from matplotlib import image
from tensorboard.plugins.custom_scalar import layout_pb2

import kdrop
from kdrop import callbacks, uncertainty
from tests.event_files import read_scalars, read_tensors

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 6)).astype("float32")
Y = (X[:, 0] > 0).astype("int64") + (X[:, 1] > 0.5)  # 3 classes


def classifier():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_logged_values_match_the_metrics_on_the_same_samples(tmp_path):
    model = classifier()
    monitor = callbacks.MCDropoutMonitor(
        tmp_path, data=(X, Y), samples=20, every_n_epochs=1, bins=5, seed=3
    )
    model.fit(X, Y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor])

    # The last logged epoch saw the final weights: redo its computation.
    mc = kdrop.mc_predict(model, X, samples=20, seed=3)
    deterministic = model.predict(X, verbose=0)
    scalars = read_scalars(tmp_path)
    for name, probs in (("mc", mc), ("deterministic", deterministic)):
        expected = {
            "accuracy": uncertainty.accuracy(probs, Y),
            "nll": uncertainty.negative_log_likelihood(probs, Y),
            "brier": uncertainty.brier_score(probs, Y),
            "ece": uncertainty.expected_calibration_error(probs, Y, bins=5),
        }
        for metric, value in expected.items():
            logged = scalars[f"mc_dropout/{metric}/{name}"]
            assert set(logged) == {0, 1}
            assert logged[1] == pytest.approx(value, rel=1e-5, abs=1e-7), metric
    assert scalars["mc_dropout/mutual_information"][1] == pytest.approx(
        uncertainty.mutual_information(mc).mean(), rel=1e-5
    )
    # MC and the deterministic prediction differ: the draws were really used.
    assert scalars["mc_dropout/nll/mc"][1] != scalars["mc_dropout/nll/deterministic"][1]

    tensors = read_tensors(tmp_path)
    step, (width, height, png) = tensors["mc_dropout/reliability"][1]
    pixels = image.imread(io.BytesIO(png), format="png")
    # Wide enough for TensorBoard to show it readable without "Show actual
    # image size": the size read back from the PNG in the event file.
    assert step == 1 and pixels.shape[:2] == (int(height), int(width)) == (800, 800)
    layout = layout_pb2.Layout.FromString(
        tensors["custom_scalars__config__"][-1][1].item()
    )
    charts = {chart.title: chart for chart in layout.category[0].chart}
    assert list(charts["nll"].multiline.tag) == ["^mc_dropout/nll/"]
    assert set(charts) == {"accuracy", "nll", "brier", "ece"}


def test_every_n_epochs_batch_size_one_hot_labels_and_no_diagram(tmp_path):
    model = classifier()
    monitor = callbacks.MCDropoutMonitor(
        tmp_path,
        data=(X, np.eye(3)[Y]),
        samples=5,
        every_n_epochs=2,
        batch_size=40,  # 96 rows: slices of 40, 40 and 16
        reliability_diagram=False,
    )
    predictions = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: predictions.append(model.predict(X, verbose=0))
    )
    model.fit(X, Y, epochs=3, verbose=0, callbacks=[monitor, record])
    tensors = read_tensors(tmp_path)
    assert "mc_dropout/reliability" not in tensors
    accuracy = read_scalars(tmp_path)["mc_dropout/accuracy/deterministic"]
    # The 2nd epoch, and the fit's last (3rd), which is no multiple of 2.
    assert set(accuracy) == {1, 2}
    for epoch in (1, 2):
        assert accuracy[epoch] == pytest.approx(
            np.mean(predictions[epoch].argmax(1) == Y)
        )


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"data": X}, ValueError, ["`data`", "(x, y)", "without targets"]),
        ({"samples": 0}, ValueError, ["`samples`", "0"]),
        ({"bins": -2}, ValueError, ["`bins`", "-2"]),
        ({"seed": 1.5}, TypeError, ["`seed`", "1.5"]),
        ({"reliability_diagram": "yes"}, TypeError, ["`reliability_diagram`"]),
    ],
)
def test_bad_arguments(kwargs, error, words, tmp_path):
    arguments = {"log_dir": tmp_path, "data": (X, Y), **kwargs}
    with pytest.raises(error) as info:
        callbacks.MCDropoutMonitor(**arguments)
    for word in words:
        assert word in str(info.value)


def regression_model():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.dense(x)


@pytest.mark.parametrize(
    "make_model, labels, words",
    [
        (regression_model, Y, ["one output of shape (batch, classes)", "(None, 1)"]),
        (classifier, Y + 1, ["`y`", "[0, 2]", "[1, 3]"]),
        (classifier, Y[:10], ["`y`", "(96,)", "(10,)"]),
        (Subclassed, Y, ["Functional model", "Subclassed"]),
    ],
)
def test_unusable_model_or_labels_fail_before_training(
    make_model, labels, words, tmp_path
):
    model = make_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    monitor = callbacks.MCDropoutMonitor(tmp_path, data=(X, labels))
    with pytest.raises(ValueError) as info:
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[monitor])
    for word in words:
        assert word in str(info.value)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


def test_defaults_log_every_fifth_epoch_with_twenty_samples(tmp_path, monkeypatch):
    """The defaults that keep the monitor near a tenth of an epoch's cost
    (docstring and BENCHMARKS.md): epochs 5 and 10 of 10 logged, each with
    20 passes."""
    calls = []
    predict = kdrop.mc_predict

    def recording(model, x, samples, **kwargs):
        calls.append(samples)
        return predict(model, x, samples=samples, **kwargs)

    monkeypatch.setattr(kdrop.inference, "mc_predict", recording)
    model = classifier()
    monitor = callbacks.MCDropoutMonitor(tmp_path, data=(X, Y))
    model.fit(X, Y, epochs=10, batch_size=96, verbose=0, callbacks=[monitor])
    assert set(read_scalars(tmp_path)["mc_dropout/accuracy/mc"]) == {4, 9}
    assert calls == [20, 20]

"""WeightHistograms: weights and gradients against numpy.

The gradient code is per backend (kdrop.backend.gradients): these tests
check each one when the suite runs under KERAS_BACKEND=jax and torch.
"""

import keras
import numpy as np
import pytest

from kdrop import callbacks
from tests.callback_models import X, Y, full_batch_gradients
from tests.event_files import read_histograms, read_scalars


def test_gradients_and_weights_match_numpy_for_a_linear_model(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(
                1,
                kernel_initializer=keras.initializers.GlorotUniform(seed=3),
                name="linear",
            ),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")  # weights stay put
    model.fit(
        X,
        Y,
        epochs=1,
        verbose=0,
        callbacks=[callbacks.WeightHistograms(tmp_path, data=(X, Y))],
    )
    kernel, bias = (v.numpy() for v in model.get_layer("linear").weights)
    gradients = dict(zip(("kernel", "bias"), full_batch_gradients(kernel, bias)))

    scalars = read_scalars(tmp_path)
    histograms = read_histograms(tmp_path)
    for name, gradient in gradients.items():
        path = f"{model.name}/linear/{name}"
        assert scalars[f"gradient_norm/{path}"][0] == pytest.approx(
            np.linalg.norm(gradient), rel=1e-5
        )
        buckets = histograms[f"gradients/{path}"][0]
        expected, edges = np.histogram(gradient, bins=len(buckets))
        np.testing.assert_allclose(buckets[:, 0], edges[:-1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(buckets[:, 1], edges[1:], rtol=1e-5, atol=1e-6)
        # float32 gradients vs float64 here: only a value within rounding of
        # an inner bin edge may land in the neighbouring bin.
        on_an_edge = np.sum(
            np.min(np.abs(gradient.reshape(-1, 1) - edges[1:-1]), axis=1)
            <= 1e-5 * (edges[-1] - edges[0])
        )
        assert buckets[:, 2].sum() == gradient.size
        assert np.abs(buckets[:, 2] - expected).sum() <= 2 * on_an_edge
    assert scalars[f"weight_norm/{model.name}/linear/kernel"][0] == pytest.approx(
        np.linalg.norm(kernel), rel=1e-6
    )
    assert (
        histograms[f"weights/{model.name}/linear/kernel"][0][:, 2].sum() == kernel.size
    )


def test_every_float_weight_without_gradients_every_n_epochs(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, name="dense"),
            keras.layers.BatchNormalization(
                name="norm"
            ),  # non-trainable moving statistics
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.fit(
        X,
        Y,
        epochs=4,
        verbose=0,
        callbacks=[
            callbacks.WeightHistograms(tmp_path, every_n_epochs=2, gradients=False)
        ],
    )
    histograms = read_histograms(tmp_path)
    scalars = read_scalars(tmp_path)
    assert set(histograms) == {f"weights/{v.path}" for v in model.weights}
    assert not any(tag.startswith("gradient") for tag in scalars)
    for variable in model.weights:
        values = variable.numpy()
        logged = histograms[f"weights/{variable.path}"]
        assert set(logged) == {1, 3}
        assert logged[3][:, 2].sum() == values.size
        assert scalars[f"weight_norm/{variable.path}"][3] == pytest.approx(
            np.linalg.norm(values), rel=1e-5
        )


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({}, ValueError, ["data", "gradients=True", "data=None"]),
        ({"data": X}, ValueError, ["data", "targets"]),
        ({"data": (X, Y), "every_n_epochs": -1}, ValueError, ["every_n_epochs", "-1"]),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        callbacks.WeightHistograms("logs", **kwargs)
    for word in words:
        assert word in str(info.value)

"""DropConnectDense / DropConnectConv2D against numpy references.

References: the layer's kernel read back and multiplied by hand (numpy
matmul, a numpy convolution written here), Bernoulli statistics with
5-sigma tolerances derived from the mask's variance.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from kdrop import registry
from kdrop.layers import DropConnectConv2D, DropConnectDense


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def five_sigma(p, n):
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


def ones_dense(rate, units=200, inputs=50, **kwargs):
    layer = DropConnectDense(
        units, rate=rate, use_bias=False, kernel_initializer="ones", **kwargs
    )
    layer.build((None, inputs))
    return layer


@pytest.mark.parametrize(
    "mode, kept_value", [("weight_scaled", 1.0), ("inverted", 2.5)]
)
def test_training_drops_kernel_entries_shared_by_the_batch(mode, kept_value):
    rate, n_in, units = 0.6, 50, 200
    layer = ones_dense(rate, units, n_in, mode=mode, seed=3)
    # Row i of the identity reads row i of the masked kernel.
    masked = to_numpy(layer(np.eye(n_in, dtype="float32"), training=True))
    assert set(np.unique(masked)) <= {0.0, kept_value}
    kept = (masked != 0).mean()
    assert abs(kept - (1 - rate)) < five_sigma(1 - rate, masked.size)
    # Identical examples see the same kernel mask in training...
    x = np.ones((4, n_in), "float32")
    rows = to_numpy(layer(x, training=True))
    np.testing.assert_array_equal(rows, np.broadcast_to(rows[:1], rows.shape))
    # ...and each its own in `sample()` (what Monte-Carlo dropout uses).
    samples = to_numpy(layer.sample(x))
    assert len({tuple(row) for row in samples}) == 4


@pytest.mark.parametrize("mode", ["weight_scaled", "inverted"])
def test_inference_uses_the_mean_weights(mode):
    rng = np.random.default_rng(0)
    layer = DropConnectDense(6, rate=0.3, mode=mode, bias_initializer="ones")
    x = rng.normal(size=(5, 4)).astype("float32")
    layer.build(x.shape)
    kernel, bias = (to_numpy(w) for w in layer.get_weights())
    scale = 0.7 if mode == "weight_scaled" else 1.0
    expected = x @ (scale * kernel) + bias
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["weight_scaled", "inverted"])
def test_mean_of_samples_is_the_inference_output(mode):
    rate, samples = 0.4, 4000
    rng = np.random.default_rng(1)
    layer = DropConnectDense(3, rate=rate, mode=mode)
    x = rng.normal(size=(1, 8)).astype("float32")
    layer.build(x.shape)
    kernel = to_numpy(layer.get_weights()[0])
    draws = to_numpy(layer.sample(np.repeat(x, samples, axis=0)))
    # y_j = sum_i M_ij c W_ij x_i with c = 1 (weight-scaled) or 1/keep:
    # variance keep (1 - keep) c^2 sum_i (W_ij x_i)^2.
    keep = 1 - rate
    c = 1.0 if mode == "weight_scaled" else 1 / keep
    std = np.sqrt(keep * (1 - keep) * c**2 * ((kernel * x.T) ** 2).sum(axis=0))
    mean_error = np.abs(draws.mean(axis=0) - to_numpy(layer(x))[0])
    assert np.all(mean_error < 5 * std / math.sqrt(samples))


def numpy_conv2d(x, kernel, stride, dilation, padding):
    """Channels-last cross-correlation, written independently of Keras."""
    kh, kw = kernel.shape[:2]
    eh, ew = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    if padding == "same":
        h, w = x.shape[1:3]
        out_h, out_w = -(-h // stride), -(-w // stride)
        pad_h = max((out_h - 1) * stride + eh - h, 0)
        pad_w = max((out_w - 1) * stride + ew - w, 0)
        x = np.pad(
            x,
            (
                (0, 0),
                (pad_h // 2, pad_h - pad_h // 2),
                (pad_w // 2, pad_w - pad_w // 2),
                (0, 0),
            ),
        )
    out_h = (x.shape[1] - eh) // stride + 1
    out_w = (x.shape[2] - ew) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[
                :,
                i * stride : i * stride + eh : dilation,
                j * stride : j * stride + ew : dilation,
            ]
            out[:, i, j] = np.einsum("bhwc,hwcf->bf", patch, kernel)
    return out


@pytest.mark.parametrize(
    "data_format, padding, stride, dilation",
    [
        ("channels_last", "same", 1, 1),
        ("channels_last", "valid", 2, 1),
        ("channels_last", "same", 1, 2),
        ("channels_first", "valid", 1, 1),
    ],
)
def test_conv_inference_and_per_example_sampling_match_numpy(
    data_format, padding, stride, dilation
):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 7, 7, 2)).astype("float32")
    layer = DropConnectConv2D(
        4,
        3,
        rate=0.25,
        padding=padding,
        strides=stride,
        dilation_rate=dilation,
        data_format=data_format,
        bias_initializer="ones",
    )
    layer_x = x if data_format == "channels_last" else x.transpose(0, 3, 1, 2)
    layer.build(layer_x.shape)
    kernel, bias = (to_numpy(w) for w in layer.get_weights())

    def channels_last(y):
        y = to_numpy(y)
        return y if data_format == "channels_last" else y.transpose(0, 2, 3, 1)

    expected = numpy_conv2d(x, 0.75 * kernel, stride, dilation, padding) + bias
    np.testing.assert_allclose(channels_last(layer(layer_x)), expected, atol=1e-4)
    # `sample()` convolves each example with its own masked kernel (image
    # patches times per-example kernels); at rate 0 no entry is masked, so
    # it must give the plain convolution.
    layer_zero = DropConnectConv2D.from_config({**layer.get_config(), "rate": 0.0})
    layer_zero.build(layer_x.shape)
    layer_zero.set_weights(layer.get_weights())
    full = numpy_conv2d(x, kernel, stride, dilation, padding) + bias
    np.testing.assert_allclose(
        channels_last(layer_zero.sample(layer_x)), full, atol=1e-4
    )


def test_conv_samples_average_to_inference_output():
    rate, samples = 0.5, 3000
    layer = DropConnectConv2D(2, 3, rate=rate, padding="valid", use_bias=False)
    x = np.random.default_rng(3).normal(size=(1, 3, 3, 2)).astype("float32")
    layer.build(x.shape)
    kernel = to_numpy(layer.get_weights()[0])
    draws = to_numpy(layer.sample(np.repeat(x, samples, axis=0)))[:, 0, 0]
    # One output position: y_f = sum over the 3x3x2 patch of M W x.
    terms = kernel * x[0][..., None]
    std = np.sqrt(rate * (1 - rate) * (terms**2).reshape(-1, 2).sum(axis=0))
    mean_error = np.abs(draws.mean(axis=0) - to_numpy(layer(x))[0, 0, 0])
    assert np.all(mean_error < 5 * std / math.sqrt(samples))


@pytest.mark.parametrize(
    "jit_compile",
    [False, pytest.param(True, marks=pytest.mark.tensorflow_only, id="xla")],
)
def test_scheduled_rate_follows_the_step_in_fit_and_survives_saving(
    tmp_path, jit_compile
):
    schedule = kdrop.schedules.Linear(0.0, 0.5, 10)
    layer = DropConnectDense(4, rate=schedule, name="dc")
    model = keras.Sequential([keras.Input((3,)), layer, keras.layers.Dense(1)])
    model.compile("sgd", "mse", jit_compile=jit_compile)
    x = np.random.default_rng(4).normal(size=(32, 3)).astype("float32")
    model.fit(x, x[:, :1], batch_size=8, epochs=2, verbose=0)
    assert layer.step == 8
    assert layer.current_rate == pytest.approx(0.5 * 8 / 10, abs=1e-6)
    assert registry.current_rate(layer) == pytest.approx(0.4, abs=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("dc").step == 8
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )


def test_registry_entry():
    layer = ones_dense(0.3)
    assert registry.is_dropout_like(layer)
    assert registry.current_rate(layer) == 0.3
    # It is a Dense too: fold_dropout keeps it, with its own inference rule.
    assert registry.inference_kind(layer) == registry.NOT_FOLDABLE
    x = np.ones((2, 50), "float32")
    assert registry.sample(layer, x).shape == (2, 200)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: DropConnectDense(4, rate=1.0), ValueError, "rate"),
        (lambda: DropConnectDense(4, rate="0.5"), TypeError, "rate"),
        (lambda: DropConnectDense(4, rate=0.5, mode="classic"), ValueError, "mode"),
        (lambda: DropConnectConv2D(4, 3, rate=0.5, groups=2), ValueError, "groups=2"),
    ],
)
def test_bad_arguments(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_integer_inputs_rejected():
    layer = DropConnectDense(2, rate=0.5)
    with pytest.raises(TypeError, match="floating-point inputs.*int32"):
        layer(np.ones((2, 3), "int32"), training=True)

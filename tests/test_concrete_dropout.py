"""ConcreteDropout against the paper's formulas, in numpy.

Gal, Hron, Kendall (2017): p = sigmoid(p_logit), relaxed drop mask
z = sigmoid((logit p + logit u) / t), regularizer
weight_regularizer * sum(W^2) / (1 - p)
+ dropout_regularizer * K * (p log p + (1 - p) log(1 - p)).
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

from kdrop import registry
from kdrop.layers import ConcreteDropout


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def five_sigma(p, n):
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


def logit(p):
    return math.log(p / (1 - p))


def identity_wrapped(units, rate, **kwargs):
    """ConcreteDropout over Dense(units) with an identity kernel, no bias:
    its output is the dropped input itself."""
    layer = ConcreteDropout(
        keras.layers.Dense(units, use_bias=False, kernel_initializer="identity"),
        init_rate=rate,
        **kwargs,
    )
    layer.build((None, units))
    return layer


def test_added_loss_is_the_papers_regularizer():
    weight_reg, dropout_reg, p, k = 1e-2, 1e-3, 0.27, 6
    layer = ConcreteDropout(
        keras.layers.Dense(3),
        weight_regularizer=weight_reg,
        dropout_regularizer=dropout_reg,
        init_rate=p,
    )
    model = keras.Sequential([keras.Input((k,)), layer])
    kernel = to_numpy(layer.layer.kernel)
    expected = weight_reg * (kernel**2).sum() / (1 - p) + dropout_reg * k * (
        p * math.log(p) + (1 - p) * math.log(1 - p)
    )
    model(np.ones((2, k), "float32"))
    assert len(model.losses) == 1
    assert to_numpy(model.losses[0]) == pytest.approx(expected, rel=1e-5)
    # And it is part of what fit minimizes: evaluate's loss = mse + it.
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(16, k)).astype("float32")
    y = np.zeros((16, 3), "float32")
    mse = ((to_numpy(model.predict(x, verbose=0)) - y) ** 2).mean()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(mse + expected, rel=1e-4)


def test_relaxed_mask_drops_with_probability_p():
    p, n = 0.3, 400
    layer = identity_wrapped(n, p, seed=1)
    y = to_numpy(layer(np.ones((50, n), "float32"), training=True))
    # x (1 - z) / (1 - p): P(z > 1/2) = P(u > 1 - p) = p exactly, and with
    # t = 0.1 nearly every z is within 0.1 of 0 or 1.
    dropped = y < 0.5 / (1 - p)
    assert abs(dropped.mean() - p) < five_sigma(p, y.size)
    near_binary = (y < 0.1 / (1 - p)) | (y > 0.9 / (1 - p))
    assert near_binary.mean() > 0.9


def test_sample_is_bernoulli_with_mean_equal_to_inference():
    p, n = 0.4, 500
    layer = identity_wrapped(n, p, seed=2)
    x = np.ones((40, n), "float32")
    y = to_numpy(layer.sample(x))
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - p)], rtol=1e-5)
    assert abs((y == 0).mean() - p) < five_sigma(p, y.size)
    np.testing.assert_array_equal(to_numpy(layer(x)), x)  # inference: identity
    # Each output is Bernoulli(1 - p) / (1 - p): standard deviation
    # sqrt(p / (1 - p)) around 1.
    assert abs(y.mean() - 1.0) < 5 * math.sqrt(p / (1 - p) / y.size)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_spatial_drops_whole_feature_maps(data_format):
    channels, p = 8, 0.5
    identity = keras.initializers.Constant(np.eye(channels).reshape(1, 1, channels, -1))
    conv = keras.layers.Conv2D(
        channels,
        1,
        use_bias=False,
        kernel_initializer=identity,
        data_format=data_format,
    )
    layer = ConcreteDropout(conv, init_rate=p, spatial=True, seed=3)
    shape = (
        (16, channels, 5, 5)
        if data_format == "channels_first"
        else (16, 5, 5, channels)
    )
    y = to_numpy(layer(np.ones(shape, "float32"), training=True))
    maps = y if data_format == "channels_first" else y.transpose(0, 3, 1, 2)
    flat = maps.reshape(16, channels, 25)
    np.testing.assert_array_equal(flat, np.broadcast_to(flat[..., :1], flat.shape))
    # K is the number of channels.
    expected = 1e-5 * channels * (p * math.log(p) + (1 - p) * math.log(1 - p))
    reg = to_numpy(layer.regularization(channels)) - 1e-6 * channels / (1 - p)
    assert reg == pytest.approx(expected, rel=1e-4)


def fit_rate(weight_regularizer, dropout_regularizer, init_rate=0.1):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = x @ rng.normal(size=(8, 1)).astype("float32")
    layer = ConcreteDropout(
        keras.layers.Dense(1),
        weight_regularizer=weight_regularizer,
        dropout_regularizer=dropout_regularizer,
        init_rate=init_rate,
        seed=5,
    )
    model = keras.Sequential([keras.Input((8,)), layer])
    model.compile(keras.optimizers.Adam(0.05), "mse")
    model.fit(x, y, batch_size=32, epochs=5, verbose=0)
    return layer.current_rate


def test_rate_moves_the_way_the_objective_says():
    # Noise-free linear data: dropout only hurts the fit, p goes down.
    assert fit_rate(0.0, 0.0) < 0.1 - 0.02
    # A dominant dropout term (-K H(p), minimal at 1/2) pulls p up to 1/2.
    assert fit_rate(0.0, 100.0) > 0.1 + 0.1


def test_registry_reports_the_learned_rate_and_round_trip(tmp_path):
    layer = ConcreteDropout(keras.layers.Dense(2), init_rate=0.2, name="cd")
    model = keras.Sequential([keras.Input((3,)), layer])
    layer.p_logit.assign(logit(0.35))
    assert registry.current_rate(layer) == pytest.approx(0.35, abs=1e-6)
    assert registry.inference_kind(layer) == registry.NOT_FOLDABLE
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras").get_layer("cd")
    assert loaded.current_rate == pytest.approx(0.35, abs=1e-6)
    np.testing.assert_array_equal(
        to_numpy(loaded.layer.kernel), to_numpy(layer.layer.kernel)
    )


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"layer": "dense"}, TypeError, "layer"),
        ({"init_rate": 0.0}, ValueError, "init_rate"),
        ({"temperature": 0}, ValueError, "temperature"),
        ({"weight_regularizer": -1.0}, ValueError, "weight_regularizer"),
        ({"spatial": 1}, TypeError, "spatial"),
    ],
)
def test_bad_arguments(kwargs, error, words):
    kwargs = {"layer": keras.layers.Dense(2), **kwargs}
    with pytest.raises(error, match=words):
        ConcreteDropout(**kwargs)


def test_layer_without_kernel_rejected_at_build():
    layer = ConcreteDropout(keras.layers.Activation("relu"))
    with pytest.raises(TypeError, match="has none"):
        layer(np.ones((2, 3), "float32"))

"""kdrop's GaussianDropout: y = x * r, r ~ N(1, rate / (1 - rate)).

Checked against the normal distribution (moments and a quantile, with
tolerances of 5 standard deviations of each estimator) and against
`keras.layers.GaussianDropout`, which draws the same distribution.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

import kdrop

N = 1_000_000
PHI_OF_ONE = 0.5 * (1 + math.erf(1 / math.sqrt(2)))  # P(z < 1), z ~ N(0, 1)


def noise_of(layer_output, x):
    return ops.convert_to_numpy(layer_output).astype(np.float64) / x


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_noise_is_normal_with_the_variance_of_bernoulli_dropout(rate):
    sigma = math.sqrt(rate / (1 - rate))
    x = np.random.default_rng(0).uniform(0.5, 2.0, (1000, 1000)).astype("float32")
    r = noise_of(kdrop.layers.GaussianDropout(rate, seed=1)(x, training=True), x)
    assert abs(r.mean() - 1) < 5 * sigma / math.sqrt(N)
    # The sample variance of n normals has sd sigma**2 * sqrt(2 / n).
    assert abs(r.var() - sigma**2) < 5 * sigma**2 * math.sqrt(2 / N)
    below = np.mean((r - 1) / sigma < 1)
    assert abs(below - PHI_OF_ONE) < 5 * math.sqrt(PHI_OF_ONE * (1 - PHI_OF_ONE) / N)


def test_same_distribution_as_keras_gaussian_dropout():
    x = np.ones((1000, 1000), "float32")
    ours = noise_of(kdrop.layers.GaussianDropout(0.4, seed=2)(x, training=True), x)
    keras_layer = keras.layers.GaussianDropout(0.4, seed=3)
    theirs = noise_of(keras_layer(x, training=True), x)
    sigma2 = 0.4 / 0.6
    tolerance = 5 * sigma2 * math.sqrt(2 / N) * math.sqrt(2)  # a difference
    assert abs(ours.var() - theirs.var()) < tolerance


def test_inference_and_rate_zero_are_the_identity():
    x = np.random.default_rng(1).normal(size=(4, 6)).astype("float32")
    layer = kdrop.layers.GaussianDropout(0.5)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)
    zero = kdrop.layers.GaussianDropout(0.0)
    np.testing.assert_array_equal(ops.convert_to_numpy(zero(x, training=True)), x)
    assert kdrop.registry.inference_kind(layer) == "identity"
    assert kdrop.registry.current_rate(layer) == 0.5


def test_noise_shape_shares_the_noise_along_an_axis():
    x = np.ones((50, 8), "float32")
    layer = kdrop.layers.GaussianDropout(0.5, noise_shape=(None, 1), seed=4)
    y = ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_array_equal(y, np.repeat(y[:, :1], 8, axis=1))
    assert np.unique(y[:, 0]).size == 50


def test_schedule_sets_the_variance_and_sample_keeps_the_step():
    layer = kdrop.layers.GaussianDropout(kdrop.schedules.Linear(0.0, 0.5, 10), seed=5)
    x = np.ones((1000, 1000), "float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=True)), x)
    layer.step = 5  # rate 0.25: variance 1/3
    r = noise_of(layer.sample(x), x)
    assert abs(r.var() - 1 / 3) < 5 * (1 / 3) * math.sqrt(2 / N)
    assert layer.step == 5


def test_mixed_precision_keeps_the_compute_dtype():
    layer = kdrop.layers.GaussianDropout(0.3, dtype="mixed_float16", seed=6)
    y = layer(np.ones((100, 100), "float32"), training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    r = ops.convert_to_numpy(y).astype(np.float64)
    assert abs(r.var() - 0.3 / 0.7) < 5 * (0.3 / 0.7) * math.sqrt(2 / r.size) + 1e-3


def test_same_seed_same_noise_and_every_call_new_noise():
    x = np.ones((64, 64), "float32")
    first = kdrop.layers.GaussianDropout(0.5, seed=7)
    second = kdrop.layers.GaussianDropout(0.5, seed=7)
    a, b = (ops.convert_to_numpy(layer(x, training=True)) for layer in (first, second))
    np.testing.assert_array_equal(a, b)
    again = ops.convert_to_numpy(first(x, training=True))
    # Independent N(1, 1) draws: their difference has sd sqrt(2).
    assert abs(np.std(again - a) - math.sqrt(2)) < 5 * math.sqrt(2) / math.sqrt(
        2 * x.size
    )

"""kdrop.registry: which layers are dropout-like, their rate, inference
kind and one training-mode draw."""

import keras
import numpy as np
import pytest

import kdrop
from kdrop import registry

N = 20000  # elements per Bernoulli check


def _zero_fraction_ok(output, rate):
    zeros = float(np.mean(np.asarray(output) == 0))
    sigma = np.sqrt(rate * (1 - rate) / np.size(output))
    return abs(zeros - rate) < 5 * sigma, zeros


@pytest.mark.parametrize(
    "layer, rate, kind",
    [
        (kdrop.layers.InvertedDropout(0.3), 0.3, registry.IDENTITY),
        (kdrop.layers.WeightScaledDropout(0.4), 0.4, registry.SCALE_BY_KEEP),
        (
            kdrop.layers.ScheduledDropout(kdrop.schedules.Constant(0.25)),
            0.25,
            registry.IDENTITY,
        ),
        (
            kdrop.layers.ScheduledDropout(
                kdrop.schedules.Constant(0.25), mode="weight_scaled"
            ),
            0.25,
            registry.SCALE_BY_KEEP,
        ),
        (keras.layers.Dropout(0.2), 0.2, registry.IDENTITY),
        (keras.layers.SpatialDropout1D(0.2), 0.2, registry.IDENTITY),
        (keras.layers.GaussianDropout(0.1), 0.1, registry.IDENTITY),
        (keras.layers.AlphaDropout(0.1), 0.1, registry.IDENTITY),
        (keras.layers.GaussianNoise(0.5), None, registry.IDENTITY),
        (keras.layers.LSTM(2, dropout=0.3), 0.3, registry.NOT_FOLDABLE),
        (keras.layers.GRU(2, recurrent_dropout=0.4), 0.4, registry.NOT_FOLDABLE),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, keras.Layer) else None,
)
def test_registered_layers(layer, rate, kind):
    assert registry.is_dropout_like(layer)
    assert registry.current_rate(layer) == pytest.approx(rate)
    assert registry.inference_kind(layer) == kind


@pytest.mark.parametrize(
    "layer",
    [keras.layers.Dense(2), keras.layers.BatchNormalization(), keras.Sequential()],
    ids=lambda layer: type(layer).__name__,
)
def test_other_layers_are_not_dropout_like(layer):
    assert not registry.is_dropout_like(layer)
    assert registry.lookup(layer) is None
    assert registry.current_rate(layer) is None
    assert registry.inference_kind(layer) is None


@pytest.mark.parametrize(
    "layer",
    [
        kdrop.layers.InvertedDropout(0.3, seed=1),
        kdrop.layers.WeightScaledDropout(0.3, seed=1),
        keras.layers.Dropout(0.3, seed=1),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_sample_drops_at_the_rate_and_scales_by_the_convention(layer):
    # A tensor, as inside a model: `sample` runs the layer's own `call`.
    x = keras.ops.ones((N // 100, 100))
    y = keras.ops.convert_to_numpy(registry.sample(layer, x))
    ok, zeros = _zero_fraction_ok(y, 0.3)
    assert ok, zeros
    kept = 1.0 if registry.inference_kind(layer) == registry.SCALE_BY_KEEP else 1 / 0.7
    np.testing.assert_allclose(np.unique(y[y != 0]), [kept], rtol=1e-6)


def test_sample_never_advances_a_schedule():
    layer = kdrop.layers.ScheduledDropout(kdrop.schedules.Linear(0.5, 0.0, 10))
    x = keras.ops.ones((N // 100, 100))
    for _ in range(3):
        y = keras.ops.convert_to_numpy(registry.sample(layer, x))
        ok, zeros = _zero_fraction_ok(y, 0.5)
        assert ok, zeros
    assert layer.step == 0


def test_sample_of_an_unregistered_layer_is_refused():
    with pytest.raises(TypeError, match="'dense_x'.*not a registered"):
        registry.sample(keras.layers.Dense(2, name="dense_x"), np.ones((1, 2)))


def test_register_a_new_class_and_its_subclasses():
    class NoiseDrop(keras.layers.Layer):
        def __init__(self, rate, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate

        def call(self, inputs, training=False):
            return inputs * 0.0 if training else inputs

    class SubNoiseDrop(NoiseDrop):
        pass

    registry.register(
        NoiseDrop,
        rate=lambda layer: layer.rate,
        inference="identity",
        sample=lambda layer, inputs, **kwargs: NoiseDrop.call(
            layer, inputs, training=True
        ),
    )
    try:
        layer = SubNoiseDrop(0.7)
        assert registry.current_rate(layer) == 0.7
        assert registry.lookup(layer).layer_class is NoiseDrop
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(registry.sample(layer, keras.ops.ones((2, 2)))),
            np.zeros((2, 2)),
        )
    finally:
        registry._ENTRIES.pop(NoiseDrop)


def test_a_subclass_registration_takes_precedence():
    class Halving(keras.layers.Dropout):
        pass

    registry.register(
        Halving,
        rate=lambda layer: 0.5,
        inference=registry.SCALE_BY_KEEP,
        sample=lambda layer, inputs, **kwargs: inputs,
    )
    try:
        assert registry.current_rate(Halving(0.1)) == 0.5
        assert registry.current_rate(keras.layers.Dropout(0.1)) == 0.1
    finally:
        registry._ENTRIES.pop(Halving)


def test_bad_registrations_are_refused():
    def sample(layer, inputs, **kwargs):
        return inputs

    with pytest.raises(TypeError, match="`layer_class` must be a subclass"):
        registry.register(int, rate=float, inference="identity", sample=sample)
    with pytest.raises(TypeError, match="`rate` must be callable"):
        registry.register(
            keras.layers.Dense, rate=0.5, inference="identity", sample=sample
        )
    with pytest.raises(TypeError, match="`sample` must be callable"):
        registry.register(
            keras.layers.Dense, rate=float, inference="identity", sample=None
        )
    with pytest.raises(ValueError, match="`inference` must be one of"):
        registry.register(
            keras.layers.Dense, rate=float, inference="scale", sample=sample
        )
    assert not registry.is_dropout_like(keras.layers.Dense(1))

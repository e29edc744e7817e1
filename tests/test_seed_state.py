"""Every kdrop layer that draws noise saves its random state with its weights.

A layer restored by `load_weights` or `load_model` (so also by
`kdrop.callbacks.BackupAndRestore`) must draw the mask the original would
have drawn next, not the first mask of a fresh layer with the same seed: a
resumed run then continues the uninterrupted one exactly.
"""

import keras
import numpy as np
import pytest
from keras import ops

from kdrop import layers, schedules
from kdrop.layers.seeded import SeededNoise

RAMP = schedules.Linear(0.1, 0.5, 10)
SEED = 3

# name -> (layer factory, input shape with the batch axis)
CASES = {
    "InvertedDropout": (lambda: layers.InvertedDropout(0.5, seed=SEED), (4, 6)),
    "InvertedDropout schedule": (
        lambda: layers.InvertedDropout(RAMP, noise_shape=(None, 1, 3), seed=SEED),
        (4, 2, 3),
    ),
    "WeightScaledDropout": (
        lambda: layers.WeightScaledDropout(0.5, seed=SEED),
        (4, 6),
    ),
    "WeightScaledDropout schedule": (
        lambda: layers.WeightScaledDropout(RAMP, seed=SEED),
        (4, 6),
    ),
    "ScheduledDropout inverted": (
        lambda: layers.ScheduledDropout(RAMP, seed=SEED),
        (4, 6),
    ),
    "ScheduledDropout weight_scaled": (
        lambda: layers.ScheduledDropout(RAMP, mode="weight_scaled", seed=SEED),
        (4, 6),
    ),
    "DropPath": (lambda: layers.DropPath(0.5, seed=SEED), (16, 3)),
    "DropPath schedule per batch": (
        lambda: layers.DropPath(RAMP, per="batch", seed=SEED),
        (4, 3),
    ),
    "DropBlock1D": (lambda: layers.DropBlock1D(0.3, 2, seed=SEED), (2, 8, 3)),
    "DropBlock2D schedule": (
        lambda: layers.DropBlock2D(RAMP, 2, data_format="channels_last", seed=SEED),
        (2, 6, 6, 3),
    ),
    "GaussianDropout": (lambda: layers.GaussianDropout(0.5, seed=SEED), (4, 6)),
    "GaussianDropout schedule": (
        lambda: layers.GaussianDropout(RAMP, seed=SEED),
        (4, 6),
    ),
    "DropConnectDense": (lambda: layers.DropConnectDense(4, 0.5, seed=SEED), (3, 5)),
    "DropConnectDense schedule inverted": (
        lambda: layers.DropConnectDense(4, RAMP, mode="inverted", seed=SEED),
        (3, 5),
    ),
    "DropConnectConv2D": (
        lambda: layers.DropConnectConv2D(2, 3, 0.5, seed=SEED),
        (2, 5, 5, 2),
    ),
    "ConcreteDropout Dense": (
        lambda: layers.ConcreteDropout(keras.layers.Dense(4), seed=SEED),
        (3, 5),
    ),
    "ConcreteDropout Conv2D spatial": (
        lambda: layers.ConcreteDropout(
            keras.layers.Conv2D(2, 3), init_rate=0.3, spatial=True, seed=SEED
        ),
        (2, 5, 5, 3),
    ),
    "TimeDistributed(InvertedDropout)": (
        lambda: keras.layers.TimeDistributed(layers.InvertedDropout(0.5, seed=SEED)),
        (2, 3, 4),
    ),
    "TimeDistributed(DropConnectDense)": (
        lambda: keras.layers.TimeDistributed(
            layers.DropConnectDense(4, RAMP, seed=SEED)
        ),
        (2, 3, 5),
    ),
}


def build(make, shape):
    inputs = keras.Input(shape[1:])
    return keras.Model(inputs, make()(inputs))


def draw(model, x):
    return ops.convert_to_numpy(model(x, training=True))


def assert_resumes(make, shape, tmp_path):
    """A model restored from a weights file and from a `.keras` file draws
    what the saved model draws next; the saved model's draws differ."""
    # Positive, so that a dropped unit (or a noise factor) always shows.
    x = np.random.default_rng(0).uniform(1.0, 2.0, shape).astype("float32")
    original = build(make, shape)
    draws = [draw(original, x) for _ in range(3)]
    assert not np.array_equal(draws[0], draws[1]), "the random state never advanced"
    original.save_weights(tmp_path / "model.weights.h5")
    original.save(tmp_path / "model.keras")
    uninterrupted = draw(original, x)

    from_weights = build(make, shape)
    from_weights.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(draw(from_weights, x), uninterrupted)

    from_file = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(draw(from_file, x), uninterrupted)


@pytest.mark.parametrize("name", list(CASES))
def test_restored_layer_draws_the_next_mask(name, tmp_path):
    assert_resumes(*CASES[name], tmp_path)


@keras.saving.register_keras_serializable(package="kdrop_tests")
class UniformNoise(SeededNoise, keras.layers.Layer):
    """A layer of another library built on the mixin: `x + U(0, 1)`."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self._init_seed(seed)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        noise = self._uniform(ops.shape(inputs))
        return ops.add(inputs, ops.cast(noise, inputs.dtype))


def test_a_new_layer_on_the_mixin_resumes_its_noise(tmp_path):
    assert_resumes(lambda: UniformNoise(seed=SEED), (2, 3), tmp_path)
    assert UniformNoise(seed=5).get_config()["seed"] == 5


def test_cases_cover_every_kdrop_layer_and_all_use_the_mixin():
    family = {
        cls
        for cls in (getattr(layers, name) for name in layers.__all__)
        if isinstance(cls, type)
        and issubclass(cls, keras.layers.Layer)
        and cls is not layers.BaseDropout
    }
    assert len(family) == 10
    assert all(issubclass(cls, SeededNoise) for cls in family)
    covered = set()
    for make, shape in CASES.values():
        for layer in build(make, shape)._flatten_layers(include_self=False):
            covered.add(type(layer))
    assert family <= covered, family - covered

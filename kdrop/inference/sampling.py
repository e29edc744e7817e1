"""Switch on sampling in a model's dropout-like layers, and nowhere else.

`model(x, training=True)` is the wrong tool for Monte-Carlo dropout: it also
puts BatchNormalization, random augmentation layers and any custom layer
that reads `training` in training mode. And `training=False` cannot be
overridden from outside for a dropout layer held INSIDE another layer:
MultiHeadAttention, a Keras transformer block or an LSTM pass their own
`training` argument down explicitly.

`sampling(model, seed)` therefore replaces, for the duration of a `with`
block, the `call` of every registered dropout-like layer found by
`layer_paths.walk` (nested models and layers inside layers included) with
one that draws a training-mode sample through `kdrop.registry.sample`,
whatever `training` it is given. Keras looks `call` up on the instance at
each call, so the replacement is seen by eager calls and by tracing
(`tf.function`, `jax.jit`); nothing else in the model changes. On leaving
the block every layer gets its own `call`, `noise_shape` and seed-generator
state back, so the model, its random state and its schedules are exactly as
before. A compiled function traced inside the block keeps sampling
afterwards: use it only through such a block (kdrop.mc_predict caches its
own). The block is not thread-safe: do not call the same model from another
thread meanwhile.
"""

import contextlib

import numpy as np
from keras import ops

from kdrop import keras_internals, layer_paths, registry
from kdrop.backend.global_rng import keras_global_generator, seeded_global_rng
from kdrop.inference import shared_masks


def dropout_like_layers(model):
    """`[(path, layer)]` for every registered dropout-like layer in `model`."""
    return [
        (path, layer)
        for path, layer in layer_paths.walk(model)
        if registry.is_dropout_like(layer)
    ]


def _per_row(noise_shape):
    # A mask shared across the batch (first entry 1) would be shared by the
    # tiled copies of an example, i.e. across Monte-Carlo samples.
    if noise_shape is None or len(noise_shape) == 0 or noise_shape[0] != 1:
        return noise_shape
    return (None,) + tuple(noise_shape[1:])


def _sampling_call(layer, masks=shared_masks.PER_EXAMPLE):
    shared = masks == shared_masks.SHARED
    draw = shared_masks.shared_sample if shared else registry.sample

    def call(inputs, *args, **kwargs):
        kwargs.pop("training", None)
        return draw(layer, inputs, *args, **kwargs)

    return call


def seed_generators(layers):
    """The seed generators of `[(path, layer)]`, in a fixed order."""
    return [gen for _, layer in layers for gen in _seed_generators(layer)]


def _seed_generators(layer):
    """The seed generators `layer` and its sub-layers (an RNN's cell) own."""
    layers = [layer] + [sub for _, sub in layer_paths.walk(layer)]
    return [gen for sub in layers for gen in keras_internals.own_seed_generators(sub)]


@contextlib.contextmanager
def sampling(model, seed=None, masks=shared_masks.PER_EXAMPLE):
    """Within the block, every dropout-like layer of `model` samples.

    Args:
        model: a `keras.Model` (any kind) or layer.
        seed: None or an int. With an int, the sampled layers' seed
            generators start from states derived from it (and so does
            torch's global generator, from which Keras's unseeded Dropout
            draws on that backend), so the draws inside the block are
            reproducible; with None they start from fresh random states.
        masks: "per_example" (default): masks are drawn per row;
            "shared": each layer draws one mask and applies it to every row
            of a call (see `kdrop.inference.shared_masks`); a layer that
            cannot share its mask raises ValueError before anything
            changes.

    Yields:
        The `[(path, layer)]` list of the layers that sample.
    """
    layers = dropout_like_layers(model)
    if shared_masks.check_masks(masks) == shared_masks.SHARED:
        shared_masks.check_shareable(layers)
    rng = np.random.default_rng(seed)
    saved = []
    try:
        for _, layer in layers:
            noise_shape = getattr(layer, "noise_shape", None)
            saved.append((layer, "noise_shape" in vars(layer), noise_shape))
            if noise_shape is not None:
                layer.noise_shape = _per_row(noise_shape)
            layer.call = _sampling_call(layer, masks)
        generators = seed_generators(layers)
        states = [ops.convert_to_numpy(gen.state) for gen in generators]
        for gen, state in zip(generators, states):
            fresh = rng.integers(1, 2**31 - 1)
            gen.state.assign(np.array([fresh, 0], dtype=state.dtype))
        torch_seed = None if seed is None else int(rng.integers(2**31))
        # Layers drawing from Keras's global generator (ConvNeXt's
        # StochasticDepth): it is seeded for the block and put back after.
        global_generator = contextlib.nullcontext()
        if any(registry.draws_from_global_rng(layer) for _, layer in layers):
            global_generator = keras_global_generator(int(rng.integers(1, 2**31 - 1)))
        try:
            with seeded_global_rng(torch_seed), global_generator:
                yield layers
        finally:
            for gen, state in zip(generators, states):
                gen.state.assign(state)
    finally:
        for layer, had_noise_shape, noise_shape in saved:
            del layer.call
            if had_noise_shape:
                layer.noise_shape = noise_shape

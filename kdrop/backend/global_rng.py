"""Reproducible draws from a backend's global random generator.

Keras's Dropout created with `seed=None` does not draw its torch masks from
its SeedGenerator: on the torch backend, `keras.random.dropout` with an
unseeded generator calls `torch.nn.functional.dropout`, which reads torch's
global generator (keras/src/backend/torch/random.py, Keras 3.15). Setting
the layer's seed state therefore does not make its masks reproducible
there; seeding torch's global generator does. TensorFlow and JAX draw every
Keras dropout mask from the layer's SeedGenerator.

Layers that call unseeded random ops (`keras.random.uniform(shape)`, as
keras.applications' ConvNeXt StochasticDepth does) draw from Keras's global
SeedGenerator on every backend: `keras_global_generator` sets its state
for a block and puts it back afterwards.
"""

import contextlib

import keras
import numpy as np

from kdrop import keras_internals


@contextlib.contextmanager
def seeded_global_rng(seed):
    """Within the block, the backend's global generator is seeded by `seed`
    (an int) and afterwards it is back where it was, as if nothing had been
    drawn. With `seed=None`, or on backends other than torch, nothing
    changes."""
    if seed is None or keras.backend.backend() != "torch":
        yield
        return
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def reseed_global_rng(seed):
    """Seeds the backend's global generator with `seed` (an int); on
    backends other than torch, does nothing. Call it only inside a
    `seeded_global_rng` block with an int seed, which restores the
    generator afterwards."""
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


@contextlib.contextmanager
def keras_global_generator(seed):
    """Within the block, Keras's global SeedGenerator starts from a state
    derived from `seed` (an int), and afterwards it is back where it was,
    as if nothing had been drawn. Created here, eagerly, if it did not
    exist yet (not inside a traced function)."""
    generator = keras_internals.global_seed_generator()
    state = keras.ops.convert_to_numpy(generator.state)
    generator.state.assign(np.array([seed, 0], dtype=state.dtype))
    try:
        yield
    finally:
        generator.state.assign(state)

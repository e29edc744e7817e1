"""One dropout mask per layer for every example: `mc_predict(masks="shared")`.

With shared masks, pass `s` of `kdrop.mc_predict` is ONE sampled network
applied to every example of `x` (baal's ConsistentDropout), which
BatchBALD needs. Two things make it so:

- Within a compiled call, each dropout-like layer draws a mask for ONE
  example and broadcasts it over the batch (`shared_call`): a layer whose
  noise multiplies its input (Dropout, SpatialDropout, DropPath,
  DropBlock, Gaussian dropout, ...) draws it on a batch-1 probe of ones,
  GaussianNoise on a probe of zeros; ConvNeXt's StochasticDepth, which
  multiplies a residual branch by one draw per example, is drawn on a
  probe too; an RNN cell (LSTM, GRU, SimpleRNN, ConvLSTM, `RNN` over Keras's
  cells) draws its `(1, ...)` masks from the first example's step input;
  Attention and AdditiveAttention multiply their attention weights by one
  `(1, Tq, Tv)` dropout mask; AlphaDropout draws with a batch dimension of
  1 in its noise shape; DropConnect masks its kernel once for the batch;
  ConcreteDropout draws a `(1, ...)` mask.
- Across calls (chunks of `x`, batches of a dataset), the seed generators
  of the sampled layers start pass `s` from the same state, a function of
  (base seed, s, generator index) (`seed_pass`), so every call draws the
  same masks for the same pass; Keras's global generator too when a layer
  draws from it (`with_global_generator`).

A layer kind whose noise cannot be shared this way (a class kdrop does not
know how to share, a subclass, an `RNN` over a cell of another class) is
refused up front by `check_shareable`, with its path and class.
"""

import contextlib

import keras
import numpy as np
from keras import ops

from kdrop import keras_internals, registry
from kdrop import layers as kdrop_layers
from kdrop.backend.global_rng import reseed_global_rng

PER_EXAMPLE = "per_example"
SHARED = "shared"
MASKS = (PER_EXAMPLE, SHARED)

# Classes whose training output is `inputs * noise(shape)`, the noise not
# depending on the input's values: sampled on a batch-1 probe of ones.
_MULTIPLICATIVE = (
    kdrop_layers.InvertedDropout,
    kdrop_layers.WeightScaledDropout,
    kdrop_layers.ScheduledDropout,
    kdrop_layers.GaussianDropout,
    kdrop_layers.DropBlock1D,
    kdrop_layers.DropBlock2D,
    kdrop_layers.DropPath,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianDropout,
    # keras.applications' ConvNeXt: `x / keep * floor(keep + uniform)`,
    # one draw per example (a whole residual path).
    keras_internals.applications_stochastic_depth(),
)
# `inputs + noise(shape)`: sampled on a batch-1 probe of zeros.
_ADDITIVE = (keras.layers.GaussianNoise,)
# Recurrent layers whose cells are all Keras's own dropout cells: each cell
# draws its masks from the first example's step input.
_RECURRENT = (
    keras.layers.LSTM,
    keras.layers.GRU,
    keras.layers.SimpleRNN,
    keras.layers.RNN,
    keras.layers.ConvLSTM1D,
    keras.layers.ConvLSTM2D,
    keras.layers.ConvLSTM3D,
)
_RECURRENT_CELLS = (
    keras.layers.LSTMCell,
    keras.layers.GRUCell,
    keras.layers.SimpleRNNCell,
)
# Dropout on the attention weights, one (1, Tq, Tv) mask for the batch.
_ATTENTION = (keras.layers.Attention, keras.layers.AdditiveAttention)
# `a * (x * keep + alpha' * (1 - keep)) + b`: an affine map of the input
# whose mask does not depend on it, drawn with a batch dimension of 1.
_NOISE_SHAPED = (keras.layers.AlphaDropout,)
_DROP_CONNECT = (kdrop_layers.DropConnectDense, kdrop_layers.DropConnectConv2D)
_CONCRETE = (kdrop_layers.ConcreteDropout,)
_SHAREABLE = (
    _MULTIPLICATIVE
    + _ADDITIVE
    + _RECURRENT
    + _ATTENTION
    + _NOISE_SHAPED
    + _DROP_CONNECT
    + _CONCRETE
)


def check_masks(masks):
    """Returns `masks` if it is "per_example" or "shared"; else ValueError."""
    if not isinstance(masks, str) or masks not in MASKS:
        raise ValueError(
            f"`masks` must be one of {', '.join(map(repr, MASKS))}. "
            f"Received: masks={masks!r}."
        )
    return masks


def check_shareable(layers):
    """Raises ValueError naming the first of `[(path, layer)]` whose mask
    cannot be shared over the examples of a batch.

    Only the exact classes kdrop knows are shared (a subclass may draw its
    noise differently): a silently per-example mask would break the
    promise of `masks="shared"`.
    """
    for path, layer in layers:
        why = _why_not_shareable(layer)
        if why is not None:
            raise ValueError(
                f'mc_predict(masks="shared") cannot share the dropout mask of '
                f"layer '{path}' ({type(layer).__name__}) over the examples: "
                f'{why}. Use masks="per_example", or replace the layer with '
                "one of kdrop's or Keras's dropout layers."
            )


def _why_not_shareable(layer):
    """Why `layer`'s mask cannot be shared over a batch, or None."""
    if type(layer) not in _SHAREABLE:
        return (
            "kdrop does not know how to draw one mask of this class for a whole batch"
        )
    if type(layer) is keras.layers.RNN:
        cells = registry.rnn_cells(layer)
        other = [type(c).__name__ for c in cells if type(c) not in _RECURRENT_CELLS]
        if other:
            return (
                f"its cell {other[0]} is not one of Keras's LSTMCell, GRUCell "
                "and SimpleRNNCell (alone or in StackedRNNCells), whose "
                "masks kdrop draws for the whole batch"
            )
    return None


@contextlib.contextmanager
def _override(obj, name, value):
    """Sets the instance attribute `name` of `obj` for the block."""
    setattr(obj, name, value)
    try:
        yield
    finally:
        delattr(obj, name)


def _probe(inputs, fill):
    """A batch-1 tensor shaped like one example of `inputs`, all `fill`."""
    first = inputs[:1]
    return ops.ones_like(first) if fill == 1 else ops.zeros_like(first)


def _shared_rnn(layer, inputs, kwargs):
    with contextlib.ExitStack() as stack:
        for cell in registry.rnn_cells(layer):
            stack.enter_context(keras_internals.first_example_rnn_masks(cell))
        return registry.sample(layer, inputs, **kwargs)


def _shared_attention(layer, inputs, kwargs):
    def noise(weights):
        ones = ops.ones_like(weights[:1])
        return keras.random.dropout(ones, layer.dropout, seed=layer.seed_generator)

    with keras_internals.attention_weights_noise(layer, noise):
        return registry.sample(layer, inputs, **kwargs)


def _shared_noise_shape(layer, inputs):
    # The layer's noise shape (None: the input's) with a batch dimension of
    # 1; `sampling` may hold it as an instance attribute: put back as it was.
    noise_shape = layer.noise_shape
    rest = noise_shape[1:] if noise_shape else (None,) * (len(inputs.shape) - 1)
    layer.noise_shape = (1,) + tuple(rest)
    try:
        return registry.sample(layer, inputs)
    finally:
        layer.noise_shape = noise_shape


def _shared_drop_connect(layer, inputs):
    kernel = ops.cast(layer.kernel, layer.compute_dtype)
    kernel = layer._masked(kernel, layer._rate_tensor(), ops.shape(kernel))
    return layer._finish(layer._linear(inputs, kernel))


def _shared_concrete(layer, inputs):
    mask_shape = type(layer)._mask_shape

    def shared_shape(value):
        return (1,) + tuple(mask_shape(layer, value)[1:])

    with _override(layer, "_mask_shape", shared_shape):
        return layer.sample(inputs)


def shared_sample(layer, inputs, **kwargs):
    """One training-mode draw of `layer` with one mask for every example."""
    kind = type(layer)
    if kind in _MULTIPLICATIVE:
        noise = registry.sample(layer, _probe(inputs, 1))
        return ops.multiply(inputs, noise)
    if kind in _ADDITIVE:
        return ops.add(inputs, registry.sample(layer, _probe(inputs, 0)))
    if kind in _RECURRENT:
        return _shared_rnn(layer, inputs, kwargs)
    if kind in _ATTENTION:
        return _shared_attention(layer, inputs, kwargs)
    if kind in _NOISE_SHAPED:
        return _shared_noise_shape(layer, inputs)
    if kind in _DROP_CONNECT:
        return _shared_drop_connect(layer, inputs)
    if kind in _CONCRETE:
        return _shared_concrete(layer, inputs)
    raise TypeError(f"No shared sample for {kind.__name__}.")  # checked before


def base_seed(seed):
    """The base seed of one mc_predict call: `seed`, or a fresh one."""
    if seed is not None:
        return int(seed)
    return int(np.random.default_rng().integers(2**31 - 1))


def with_global_generator(generators, layers):
    """`generators`, and Keras's global seed generator when one of
    `[(path, layer)]` draws from it (ConvNeXt's StochasticDepth), so that
    `seed_pass` starts it from the pass's state in every call too."""
    if any(registry.draws_from_global_rng(layer) for _, layer in layers):
        return list(generators) + [keras_internals.global_seed_generator()]
    return list(generators)


def seed_pass(generators, base, sample):
    """Sets the state of every seed generator in `generators` for pass
    `sample`: the same for every chunk and batch of one call.

    On torch, Keras's unseeded Dropout draws from torch's global generator
    (see `kdrop.backend.global_rng`): it is seeded for the pass too, so call
    this inside `sampling(model, base)`, which restores it afterwards.
    """
    rng = np.random.default_rng([base, sample])
    reseed_global_rng(int(rng.integers(2**31 - 1)))
    for index, generator in enumerate(generators):
        state = np.random.default_rng([base, sample, index]).integers(1, 2**31 - 1)
        dtype = generator.state.dtype
        generator.state.assign(np.array([state, 0], dtype=dtype))

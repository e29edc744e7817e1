"""The one place that knows what kinds of layers there are.

Two parts: the registry of dropout-like layers, and the tables of other
Keras layer kinds that folding, logging and model surgery need
(`FOLD_TARGETS`, `POSITIVE_SCALE_COMMUTING`, `HOMOGENEOUS_ACTIVATIONS`,
`PASS_THROUGH`, `IDENTITY_LIKE`, at the end of this module).

For every dropout-like layer class it answers: what is the layer's rate,
what does it do at inference, and how to draw one training-mode sample of
it. `kdrop.fold_dropout`, `kdrop.mc_predict` and the callbacks ask here, so
a new dropout layer is supported everywhere once it is registered:

```python
kdrop.registry.register(
    MyDropout,
    rate=lambda layer: layer.rate,
    inference="identity",
    sample=lambda layer, inputs, **kwargs: MyDropout.call(
        layer, inputs, training=True, **kwargs
    ),
)
```

Registered out of the box: kdrop's layers (BaseDropout subclasses,
DropConnectDense/Conv2D, ConcreteDropout), Keras's
Dropout and SpatialDropout1D/2D/3D, GaussianDropout, AlphaDropout,
GaussianNoise, the recurrent layers (their `dropout` and
`recurrent_dropout`: LSTM, GRU, SimpleRNN, `keras.layers.RNN` with any
cell or StackedRNNCells, ConvLSTM1D/2D/3D; Bidirectional through its two
layers), Attention and AdditiveAttention (`dropout` on the attention
weights; MultiHeadAttention and GroupedQueryAttention hold a Dropout), and
keras.applications' ConvNeXt StochasticDepth (`drop_path_rate`).
"""

import dataclasses

import keras

from kdrop import keras_internals
from kdrop.layers import (
    BaseDropout,
    ConcreteDropout,
    DropConnectConv2D,
    DropConnectDense,
    GaussianDropout,
)
from kdrop.layers.base import WEIGHT_SCALED
from kdrop.layers.rate import follows_schedule

# What a layer does at inference.
IDENTITY = "identity"  # y = x
SCALE_BY_KEEP = "scale_by_keep"  # y = keep_prob * x, keep_prob = 1 - rate
NOT_FOLDABLE = "not_foldable"  # anything else: kept as it is when folding
INFERENCE_KINDS = (IDENTITY, SCALE_BY_KEEP, NOT_FOLDABLE)


@dataclasses.dataclass(frozen=True)
class Entry:
    """How kdrop handles one dropout-like layer class.

    Attributes:
        layer_class: the registered class (subclasses match too).
        rate: `rate(layer) -> float or None`, the current drop rate (None
            for noise that drops nothing, e.g. GaussianNoise).
        inference: one of `INFERENCE_KINDS`, or `inference(layer) -> kind`
            for classes whose behaviour depends on the instance.
        sample: `sample(layer, inputs, **kwargs) -> outputs`, one
            training-mode draw that never advances a schedule step
            (symbolic or eager); `kwargs` are the layer's other call
            arguments (`mask`, `initial_state`, ...) but not `training`.
        zeroes_units: whether a sample sets the dropped units to exactly 0
            (Dropout-style masking), so that a "dropped fraction" can be
            read off it; False for multiplicative or additive noise.
        rate_in_variables: whether compiled functions read the rate from
            the layer's variables (a schedule of its step, a learned rate),
            a bool or a callable of the layer; False: the rate is a Python
            number, a constant of each trace.
    """

    layer_class: type
    rate: object
    inference: object
    sample: object
    zeroes_units: bool = False
    rate_in_variables: object = False

    def inference_of(self, layer):
        """The inference kind of `layer`, one of `INFERENCE_KINDS`."""
        kind = self.inference(layer) if callable(self.inference) else self.inference
        if kind not in INFERENCE_KINDS:
            raise ValueError(
                f"The registered `inference` of {self.layer_class.__name__} "
                f"returned {kind!r} for layer '{layer.name}'; allowed: "
                f"{', '.join(INFERENCE_KINDS)}."
            )
        return kind


_ENTRIES = {}  # layer class -> Entry, in registration order


def register(
    layer_class, *, rate, inference, sample, zeroes_units=False, rate_in_variables=False
):
    """Registers `layer_class` (and its subclasses) as dropout-like.

    A later registration of the same class replaces the earlier one; a
    subclass registered on its own takes precedence over its base class.

    Args:
        layer_class: a subclass of `keras.layers.Layer`.
        rate: callable `rate(layer)`, the current drop rate (a float, or
            None for noise that drops nothing).
        inference: `"identity"`, `"scale_by_keep"`, `"not_foldable"`, or a
            callable `inference(layer)` returning one of them.
        sample: callable `sample(layer, inputs, **kwargs)` returning one
            training-mode draw; `kwargs` are the layer's other call
            arguments (never `training`). It must not advance a schedule
            step, and must not call `layer.call` (kdrop's MC dropout
            replaces that for the duration of a call; use
            `type(layer).call(layer, ...)`).
        zeroes_units: whether a sample sets dropped units to exactly 0
            (read by `kdrop.callbacks.ActivationSparsity`'s dropped
            fraction).
        rate_in_variables: bool, or a callable of the layer returning one:
            whether the layer's compiled functions read its rate from its
            variables (a learned rate, a schedule of a step variable).
            False (the default) means the rate is a Python number fixed in
            each trace, so `kdrop.mc_predict` compiles a new sampler when
            it changes; True lets the sampler be reused as the rate moves.

    Raises:
        TypeError: `layer_class` is not a Layer subclass, or `rate` /
            `sample` is not callable.
        ValueError: `inference` is a string other than the three allowed.
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.Layer)):
        raise TypeError(
            "`layer_class` must be a subclass of keras.layers.Layer. "
            f"Received: layer_class={layer_class!r}."
        )
    for name, value in (("rate", rate), ("sample", sample)):
        if not callable(value):
            raise TypeError(f"`{name}` must be callable. Received: {name}={value!r}.")
    if not callable(inference) and inference not in INFERENCE_KINDS:
        raise ValueError(
            f"`inference` must be one of {', '.join(map(repr, INFERENCE_KINDS))} "
            f"or a callable of the layer. Received: inference={inference!r}."
        )
    _ENTRIES[layer_class] = Entry(
        layer_class,
        rate,
        inference,
        sample,
        bool(zeroes_units),
        rate_in_variables if callable(rate_in_variables) else bool(rate_in_variables),
    )


def lookup(layer):
    """The `Entry` of `layer`'s class (the closest registered base class),
    or None when `layer` is not dropout-like."""
    for cls in type(layer).__mro__:
        if cls in _ENTRIES:
            return _ENTRIES[cls]
    return None


def is_dropout_like(layer):
    """Whether `layer` is a registered dropout-like layer."""
    return lookup(layer) is not None


def current_rate(layer):
    """The current drop rate of `layer` (a float), or None when `layer` is
    not dropout-like or its noise drops nothing (GaussianNoise)."""
    entry = lookup(layer)
    rate = None if entry is None else entry.rate(layer)
    return None if rate is None else float(rate)


def rate_in_variables(layer):
    """Whether `layer` is dropout-like and its compiled functions read its
    rate from its variables, so that a new rate needs no new trace: a rate
    that follows a schedule of the layer's step, ConcreteDropout's learned
    rate. False for a rate held as a Python number (Keras's Dropout, a
    kdrop layer with a fixed rate), which each trace holds as a constant.
    """
    entry = lookup(layer)
    if entry is None:
        return False
    value = entry.rate_in_variables
    return bool(value(layer) if callable(value) else value)


def zeroes_units(layer):
    """Whether `layer` is dropout-like and its samples set dropped units to
    exactly 0."""
    entry = lookup(layer)
    return entry is not None and entry.zeroes_units


def inference_kind(layer):
    """What `layer` does at inference (one of `INFERENCE_KINDS`), or None
    when it is not dropout-like."""
    entry = lookup(layer)
    return None if entry is None else entry.inference_of(layer)


def sample(layer, inputs, **kwargs):
    """One training-mode draw of the dropout-like `layer` on `inputs`
    (`kwargs`: its other call arguments, e.g. `mask`).

    Never advances a schedule step.

    Raises:
        TypeError: `layer` is not registered.
    """
    entry = lookup(layer)
    if entry is None:
        raise TypeError(
            f"Layer '{layer.name}' ({type(layer).__name__}) is not a "
            "registered dropout-like layer; register its class with "
            "kdrop.registry.register."
        )
    return entry.sample(layer, inputs, **kwargs)


def _kdrop_inference(layer):
    return SCALE_BY_KEEP if layer.mode == WEIGHT_SCALED else IDENTITY


def _training_call(layer, inputs, **kwargs):
    # The class's `call`, not `__call__`: no new node in the layer's graph,
    # training=True cannot be overridden by an outer call context, and it
    # is not the per-instance replacement MC dropout installs.
    return type(layer).call(layer, inputs, training=True, **kwargs)


def _rnn_rate(layer):
    # One number per layer: the input dropout, or the recurrent one when
    # only that is set (both are sampled by MC dropout).
    return layer.dropout or layer.recurrent_dropout


def rnn_cells(layer):
    """The cells of a Keras recurrent layer, which draw its dropout masks.

    Args:
        layer: a `keras.layers.RNN` (LSTM, GRU, SimpleRNN, ConvLSTM and
            `RNN(cell)` included).

    Returns:
        A list: the layer's cell, or each cell of its `StackedRNNCells`.

    Example:

    ```python
    rnn = keras.layers.RNN([keras.layers.GRUCell(4), keras.layers.LSTMCell(4)])
    [type(cell).__name__ for cell in kdrop.registry.rnn_cells(rnn)]
    # ['GRUCell', 'LSTMCell']
    ```
    """
    cell = layer.cell
    return (
        list(cell.cells) if isinstance(cell, keras.layers.StackedRNNCells) else [cell]
    )


def _cell_rate(cell):
    # As _rnn_rate, for one cell (a custom cell may have neither).
    return getattr(cell, "dropout", 0.0) or getattr(cell, "recurrent_dropout", 0.0)


def _own_rate(layer):
    return layer.current_rate


def _own_sample(layer, inputs, **kwargs):
    # kdrop layers pass a mask through unchanged, like Keras's Dropout.
    return layer.sample(inputs)


register(
    BaseDropout,
    rate=_own_rate,
    inference=_kdrop_inference,
    sample=_own_sample,
    zeroes_units=True,
    rate_in_variables=follows_schedule,
)
for _keras_class in (
    keras.layers.Dropout,  # SpatialDropout1D/2D/3D subclass it
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
):
    register(
        _keras_class,
        rate=lambda layer: layer.rate,
        inference=IDENTITY,
        sample=_training_call,
        # GaussianDropout multiplies by noise, AlphaDropout sets dropped
        # units to a negative saturation value: neither gives zeros.
        zeroes_units=_keras_class is keras.layers.Dropout,
    )
register(
    keras.layers.GaussianNoise,
    rate=lambda layer: None,  # additive noise of `stddev`, nothing dropped
    inference=IDENTITY,
    sample=_training_call,
)
for _rnn_class in (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN):
    register(
        _rnn_class,
        rate=_rnn_rate,
        # The layer computes more than its dropout: it stays in the model.
        inference=NOT_FOLDABLE,
        sample=_training_call,
    )
# Any other recurrent layer: keras.layers.RNN(cell) with an LSTMCell /
# GRUCell / SimpleRNNCell or StackedRNNCells, and ConvLSTM1D/2D/3D (RNN
# subclasses): the cells draw their masks when the RNN is called in
# training mode, so the RNN is sampled as a whole (never the cells on
# their own: the RNN resets their cached masks). Bidirectional is reached
# through its forward and backward layers.
register(
    keras.layers.RNN,
    rate=lambda layer: max(map(_cell_rate, rnn_cells(layer)), default=0.0),
    inference=NOT_FOLDABLE,
    sample=_training_call,
)
# Dropout on the attention weights (MultiHeadAttention and
# GroupedQueryAttention hold a keras.layers.Dropout instead, sampled as it).
# AdditiveAttention subclasses Attention.
register(
    keras.layers.Attention,
    rate=lambda layer: layer.dropout,
    inference=NOT_FOLDABLE,
    sample=_training_call,
)
# keras.applications' ConvNeXt drops whole residual paths per example
# (inverted: x / keep in training, x at inference); it draws from Keras's
# global generator (GLOBAL_RNG_LAYERS).
register(
    keras_internals.applications_stochastic_depth(),
    rate=lambda layer: layer.drop_path_rate,
    inference=IDENTITY,
    sample=_training_call,
    zeroes_units=True,
)
# They compute more than their dropout (a Dense or convolution, or the
# wrapped layer): kept by fold_dropout, where they apply their own
# inference rule; `sample()` never advances a step.
# Multiplicative Gaussian noise: nothing is set to exactly 0.
register(
    GaussianDropout,
    rate=_own_rate,
    inference=_kdrop_inference,
    sample=_own_sample,
    zeroes_units=False,
    rate_in_variables=follows_schedule,
)
for _layer_class in (DropConnectDense, DropConnectConv2D):
    register(
        _layer_class,
        rate=_own_rate,
        inference=NOT_FOLDABLE,
        sample=_own_sample,
        rate_in_variables=follows_schedule,
    )
# Its rate is sigmoid(p_logit), a trainable weight.
register(
    ConcreteDropout,
    rate=_own_rate,
    inference=NOT_FOLDABLE,
    sample=_own_sample,
    rate_in_variables=True,
)


# Other layer kinds, which fold_dropout and the callbacks need to know.
# Layers computing `activation(L(x, kernel) + bias)` with L linear in both the
# input and the named kernel, so `L(k x, W) == L(x, k W)`: a factor k on the
# input folds into that kernel (the bias and the activation stay as they are).
FOLD_TARGETS = {
    keras.layers.Dense: "kernel",
    keras.layers.EinsumDense: "kernel",
    keras.layers.Conv1D: "kernel",
    keras.layers.Conv2D: "kernel",
    keras.layers.Conv3D: "kernel",
    keras.layers.Conv1DTranspose: "kernel",
    keras.layers.Conv2DTranspose: "kernel",
    keras.layers.Conv3DTranspose: "kernel",
    keras.layers.DepthwiseConv1D: "kernel",
    keras.layers.DepthwiseConv2D: "kernel",
    keras.layers.SeparableConv1D: "depthwise_kernel",
    keras.layers.SeparableConv2D: "depthwise_kernel",
}


# Parameter-free layers that keep a shortcut an identity: ResNetV2's strided
# MaxPooling2D(1) shortcut subsamples x, and Huang et al.'s transition
# blocks subsample (and zero-pad) theirs.
IDENTITY_LIKE = (
    keras.layers.Identity,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
)

# Layers f with f(k x) == k f(x) for every k > 0, which a keep_prob factor
# travels through on its way to a fold target: the identity-like layers and
# these. ReLU and Activation qualify only with a positively homogeneous
# function, and dropout-like layers only when they are identity or a
# positive factor at inference: see `_commutes_with_scale`.
POSITIVE_SCALE_COMMUTING = IDENTITY_LIKE + (
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.RepeatVector,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.UpSampling1D,
    keras.layers.UpSampling2D,
    keras.layers.UpSampling3D,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
)


HOMOGENEOUS_ACTIVATIONS = ("linear", "relu", "leaky_relu")


# `keras.ops` calls in a Functional graph (by their operation's class name,
# `kdrop.keras_internals.keras_op_name`) with f(k x) == k f(x) for k > 0:
# a keep_prob factor travels through them like through
# POSITIVE_SCALE_COMMUTING layers. Any other keras.ops call (`x + h`,
# `keras.ops.tanh`, ...) stops it: the factor stays as a Rescaling.
SCALE_COMMUTING_OPS = ("Relu", "Reshape", "Transpose", "ExpandDims", "Squeeze")


# Layers whose output holds their input's values, rearranged or repeated:
# their sparsity, mean and histogram repeat the input layer's by
# construction, so they are logged only when named in `layers=`.
PASS_THROUGH = (
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.RepeatVector,
    keras.layers.Identity,
    keras.layers.ActivityRegularization,
)


# Dropout-like layers whose training-mode draws come from Keras's global
# random generator (`keras.random.uniform(..., seed=None)`), not from a seed
# generator of their own: kdrop seeds and restores that generator around
# their samples (`kdrop.backend.global_rng`), and on JAX runs their
# sampling model without XLA (Keras refuses unseeded draws in a JAX trace).
GLOBAL_RNG_LAYERS = (keras_internals.applications_stochastic_depth(),)


def draws_from_global_rng(layer):
    """Whether dropout-like `layer` draws from Keras's global generator."""
    return isinstance(layer, GLOBAL_RNG_LAYERS)

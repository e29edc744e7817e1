"""Inference with dropout: fold the weight scaling, or sample (MC dropout).

Both functions REUSE the original model's layer objects for everything that
is not dropout: they build a new graph (`keras.models.clone_model` with a
`clone_function` returning the same layer) that calls the original layers.
So every piece of layer state is kept exactly (adapted Normalization
statistics, lookup tables, Lambda functions, custom layers' attributes), and
nothing is re-created from a config. The original model's weights, outputs,
random state and schedule steps are never changed; calling its layers in a
new graph only adds nodes to those layers, as reusing a layer in Keras
always does.
"""

import collections
import dataclasses
import math
import numbers
import warnings
import weakref

import keras
import numpy as np
from keras import ops

from kdrop import keras_internals, layer_paths, registry, sampling, validation
from kdrop.layers import ScheduledDropout

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

# Layers f with f(k x) == k f(x) for every k > 0, which a keep_prob factor
# travels through on its way to a fold target. ReLU and Activation qualify
# only with a positively homogeneous function, and dropout-like layers only
# when they are identity or a positive factor at inference: see
# `_commutes_with_scale`.
POSITIVE_SCALE_COMMUTING = (
    keras.layers.Identity,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.RepeatVector,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.UpSampling1D,
    keras.layers.UpSampling2D,
    keras.layers.UpSampling3D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
)
HOMOGENEOUS_ACTIVATIONS = ("linear", "relu", "leaky_relu")

# Default size of one compiled mc_predict call: its largest layer output
# holds at most this many elements (64 MiB in float32).
ELEMENT_BUDGET = 2**24
# Rows per call for subclassed models, whose layer outputs cannot be sized
# before running them.
SUBCLASSED_ROWS = 1024
# Sampling models kept compiled, most recently used first (each holds its
# model alive).
CACHED_SAMPLERS = 8


def _commutes_with_scale(layer):
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and layer.threshold == 0
    if isinstance(layer, keras.layers.Activation):
        name = keras.activations.serialize(layer.activation)
        return name in HOMOGENEOUS_ACTIVATIONS
    if registry.inference_kind(layer) in (registry.IDENTITY, registry.SCALE_BY_KEEP):
        return True  # at inference: identity or a positive factor
    return isinstance(layer, POSITIVE_SCALE_COMMUTING)


def _inference_factor(layer):
    """The factor a dropout-like layer multiplies by at inference (1:
    identity, or not dropout-like)."""
    if registry.inference_kind(layer) == registry.SCALE_BY_KEEP:
        return 1.0 - registry.current_rate(layer)
    return 1.0


def _kernel_name(layer):
    """Name of the kernel a factor on `layer`'s input folds into, or None."""
    if getattr(layer, "lora_enabled", False) or layer.quantization_mode:
        return None  # their kernel is not one plain variable
    for layer_class, name in FOLD_TARGETS.items():
        if isinstance(layer, layer_class):
            return name
    return None


def _graph(model, caller):
    """The Functional graph of a Sequential or Functional `model`."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"{caller} needs a keras.Model. Received: model={model!r} of type "
            f"{type(model).__name__}."
        )
    graph = keras_internals.functional_graph(model)
    if graph is None and isinstance(model, keras.Sequential):
        raise ValueError(
            f"{caller} needs a built Sequential model: start it with "
            f"keras.Input(...) or call it on data first (model "
            f"'{model.name}')."
        )
    return graph


def _fold_targets(graph):
    """Maps id(weight-scaled dropout layer) -> (the layer to fold it into,
    its factor).

    The dropout layer must be used once, and its output must reach a single
    fold target through single-consumer layers that commute with a positive
    scale, without being a model output on the way.
    """
    nodes = keras_internals.graph_nodes(graph)
    consumers, uses = {}, {}
    for node in nodes:
        uses[id(node.operation)] = uses.get(id(node.operation), 0) + 1
        for tensor in node.input_tensors:
            consumers.setdefault(id(tensor), []).append(node)
    model_outputs = {id(tensor) for tensor in graph.outputs}

    targets = {}
    for node in nodes:
        layer = node.operation
        factor = _inference_factor(layer)
        if factor == 1.0 or uses[id(layer)] != 1:
            continue
        tensor = node.output_tensors[0]
        while (
            id(tensor) not in model_outputs and len(consumers.get(id(tensor), [])) == 1
        ):
            consumer = consumers[id(tensor)][0]
            operation = consumer.operation
            if uses[id(operation)] != 1 or len(consumer.input_tensors) != 1:
                break
            if _kernel_name(operation):
                targets[id(layer)] = (operation, factor)
                break
            if not _commutes_with_scale(operation):
                break
            tensor = consumer.output_tensors[0]
    return targets


def fold_dropout(model):
    """Returns a new inference model with every dropout layer folded away.

    Dropout-like layers (those of `kdrop.registry`) that are identity at
    inference become `keras.layers.Identity`: kdrop's InvertedDropout and
    ScheduledDropout in "inverted" mode, Keras's Dropout /
    SpatialDropout1D/2D/3D, and Keras's other training-only noise layers
    (GaussianDropout, AlphaDropout, GaussianNoise). Weight-scaled dropout
    (WeightScaledDropout, or ScheduledDropout in "weight_scaled" mode at its
    current rate) multiplies by `keep_prob` at inference; that factor is
    folded into the kernel of the next linear layer,

        W_test = keep_prob * W     (bias and activation unchanged)

    when the dropout output reaches exactly one fold target, used once, and
    nothing else (not a model output either), through layers that commute
    with a positive scale. Fold targets: Dense, EinsumDense, Conv1D/2D/3D,
    Conv1D/2D/3DTranspose, DepthwiseConv1D/2D (their kernel) and
    SeparableConv1D/2D (their depthwise kernel); not LoRA-enabled or
    quantized ones. Layers folded through: Identity, Flatten, Reshape,
    Permute, RepeatVector, Max/Average/GlobalMax/GlobalAverage pooling
    1D/2D/3D, UpSampling, ZeroPadding, Cropping, LeakyReLU, PReLU, ReLU
    without max_value or threshold, Activation("linear" / "relu" /
    "leaky_relu"), and other dropout layers (factors of a chain multiply).
    Otherwise the factor stays as a `keras.layers.Rescaling(keep_prob)`.

    Every other layer of the folded model IS the original layer object
    (same weights, same state: adapted preprocessing statistics, lookup
    tables, Lambda functions); only fold targets that receive a factor are
    copies with a scaled kernel. Layers whose dropout is inside them
    (MultiHeadAttention(dropout=...), a custom block holding Dropout, an
    LSTM with dropout) are kept: they already apply their inference rule.
    Nested Sequential/Functional models are folded recursively (a factor
    never crosses a model boundary); a nested subclassed model is kept as
    it is. A model without dropout gives an equivalent model, with a
    warning. The original model is not modified.

    Args:
        model: a Sequential or Functional Keras model.

    Returns:
        A new `keras.Model` whose `predict` equals `model.predict` (within
        float rounding) and whose graph contains no dropout layer. It
        shares layers, and so weights, with `model`: train the original and
        fold again, and save the folded model to get an independent copy.

    Raises:
        TypeError: for a subclassed model (its graph is Python code that
            cannot be rewritten; its `predict` already applies every
            dropout layer's inference rule, so serve it as it is).
        ValueError: for a Sequential model that was never built.

    Example:

    ```python
    serving_model = kdrop.fold_dropout(model)
    serving_model.save("model_for_serving.keras")
    ```

    References:
        - Srivastava et al., "Dropout: A Simple Way to Prevent Neural
          Networks from Overfitting", JMLR 15, 2014 (weight scaling rule).
    """
    if _graph(model, "fold_dropout") is None:
        raise TypeError(
            "fold_dropout rewrites a model's layer graph, so it needs a "
            "Sequential or Functional model (nested ones included). Received "
            f"a subclassed model of type {type(model).__name__} (model "
            f"'{model.name}'), whose graph is Python code: its predict "
            "already applies every dropout layer's inference rule, so serve "
            "it as it is, or build it with the Functional API to fold."
        )
    if not sampling.dropout_like_layers(model):
        warnings.warn(
            f"Model '{model.name}' has no dropout layer: fold_dropout "
            "returns an equivalent model.",
            stacklevel=2,
        )
    return _fold(model)


def _fold(model):
    targets = _fold_targets(keras_internals.functional_graph(model))
    factors = {}  # id(original fold target) -> product of folded keep_probs
    for target, factor in targets.values():
        factors[id(target)] = factors.get(id(target), 1.0) * factor

    def replace(layer):
        if isinstance(layer, keras.Model):
            if keras_internals.functional_graph(layer) is None:
                return layer  # subclassed: applies its inference rules itself
            return _fold(layer)
        if id(layer) in factors:
            return _scaled_copy(layer, factors[id(layer)])
        if registry.inference_kind(layer) in (None, registry.NOT_FOLDABLE):
            return layer
        factor = _inference_factor(layer)
        policy = layer.dtype_policy.name
        if factor == 1.0 or id(layer) in targets:
            return keras.layers.Identity(name=layer.name, dtype=policy)
        return keras.layers.Rescaling(factor, name=layer.name, dtype=policy)

    return keras.models.clone_model(model, clone_function=replace)


def _scaled_copy(layer, factor):
    """A copy of fold target `layer` whose kernel is `factor` times its own."""
    copy = layer.__class__.from_config(layer.get_config())
    copy.build_from_config(layer.get_build_config())
    copy.set_weights(layer.get_weights())
    kernel = getattr(copy, _kernel_name(copy))
    kernel.assign(ops.multiply(kernel, factor))
    return copy


@dataclasses.dataclass(frozen=True)
class MCResult:
    """Result of `kdrop.mc_predict`: Monte-Carlo dropout statistics.

    For a model with several outputs each field has the structure of
    `model.predict(x)` (a list or dict with one entry per output).

    Attributes:
        mean: float64 array shaped like `model.predict(x)`, the average of
            the sampled outputs.
        std: float64 array of the same shape, their population standard
            deviation over samples (ddof=0).
        entropy: float64 array of shape `mean.shape[:-1]`, the predictive
            entropy `-sum(mean * log(mean))` over the last axis (in nats),
            when the outputs are probabilities (non-negative rows of at
            least two entries summing to 1, e.g. a softmax); else None.
        samples: the number of stochastic forward passes per example.
        mutual_information: float64 array shaped like `entropy`, the
            mutual information between the prediction and the dropout masks
            (BALD), `entropy - 1/S sum_s H[y_s]` in nats, where `H[y_s]` is
            the entropy of pass `s`; None where `entropy` is None or a pass
            is not a probability vector.
        draws: None unless `mc_predict(..., return_samples=True)`: then the
            outputs of every pass, in the model's output dtype, shaped
            `(samples,) + mean.shape` (per output for several outputs).
    """

    mean: object
    std: object
    entropy: object
    samples: int
    mutual_information: object = None
    draws: object = None


class _TileSamples(keras.layers.Layer):
    """Repeats the batch: row `s * n + i` is copy `s` of example `i`."""

    def __init__(self, copies, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.copies = copies

    def call(self, inputs):
        return ops.tile(inputs, (self.copies,) + (1,) * (len(inputs.shape) - 1))

    def compute_output_shape(self, input_shape):
        return input_shape


class _TiledModel(keras.Model):
    """Runs a subclassed `model` on `copies` copies of each example."""

    def __init__(self, model, copies, **kwargs):
        super().__init__(**kwargs)
        self.inner = model
        self.tile = _TileSamples(copies, name="tile_samples")

    def call(self, inputs):
        return self.inner(keras.tree.map_structure(self.tile, inputs))


def _holds_dropout(layer):
    return registry.is_dropout_like(layer) or any(
        registry.is_dropout_like(sub) for _, sub in layer_paths.walk(layer)
    )


def _sampling_model(model, copies):
    """A model mapping n examples to `copies` passes of each (copies * n rows).

    It calls the original layers; run it inside `sampling.sampling(model)`
    so that the dropout-like layers sample. For Sequential and Functional
    models, layers that no dropout feeds are deterministic: they run once
    per example, and their outputs are tiled only where the stochastic part
    reads them (for a CNN with dropout before its classifier, only the
    classifier runs per sample). A subclassed model runs whole on the tiled
    inputs.
    """
    graph = keras_internals.functional_graph(model)
    if graph is None:
        return _TiledModel(model, copies, name=f"mc_{model.name}")
    stochastic = set()  # ids of symbolic tensors that depend on a draw
    tiled = {}  # id(deterministic tensor) -> its tiled copy

    def tile(value):
        if not isinstance(value, keras.KerasTensor) or id(value) in stochastic:
            return value
        if id(value) not in tiled:
            tiled[id(value)] = _TileSamples(copies)(value)
        return tiled[id(value)]

    def call_function(layer, *args, **kwargs):
        inputs = keras.tree.flatten((args, kwargs))
        if not (_holds_dropout(layer) or any(id(t) in stochastic for t in inputs)):
            return layer(*args, **kwargs)
        args, kwargs = keras.tree.map_structure(tile, (args, kwargs))
        outputs = layer(*args, **kwargs)
        stochastic.update(id(t) for t in keras.tree.flatten(outputs))
        return outputs

    clone = keras.models.clone_model(
        graph, clone_function=lambda layer: layer, call_function=call_function
    )
    clone_graph = keras_internals.functional_graph(clone)
    outputs = keras.tree.map_structure(
        tile, keras_internals.outputs_structure(clone_graph)
    )
    with warnings.catch_warnings():
        # Keras warns when dict keys differ from the Input names; it already
        # did when the user built `model`, and the keys are the same here.
        warnings.filterwarnings("ignore", "When providing `inputs` as a dict")
        return keras.Model(keras_internals.inputs_structure(clone_graph), outputs)


_SAMPLERS = collections.OrderedDict()  # key -> (weakref to model, sampler)


def _cached_sampling_model(model, copies):
    """`_sampling_model(model, copies)`, built and compiled once per model.

    A rate held as a Python float is part of the compiled function, so the
    key holds every such rate: a changed rate gives a new sampler.
    ScheduledDropout computes its rate in the compiled function.
    """
    rates = tuple(
        registry.current_rate(layer)
        for _, layer in sampling.dropout_like_layers(model)
        if not isinstance(layer, ScheduledDropout)
    )
    key = (id(model), copies, rates)
    cached = _SAMPLERS.get(key)
    if cached is not None and cached[0]() is model:
        _SAMPLERS.move_to_end(key)
        return cached[1]
    sampler = _sampling_model(model, copies)
    # Compiled as model.predict is: a model compiled with jit_compile=False
    # (e.g. for a layer XLA cannot compile) is sampled without XLA too.
    sampler.jit_compile = model.jit_compile
    _SAMPLERS[key] = (weakref.ref(model), sampler)
    while len(_SAMPLERS) > CACHED_SAMPLERS:
        _SAMPLERS.popitem(last=False)
    return sampler


def _unsampled_noise(model):
    """Paths of layers that look random but are not registered dropout-like
    layers (nor inside or around one): mc_predict cannot sample them."""
    walked = layer_paths.walk(model)
    registered = [path for path, layer in walked if registry.is_dropout_like(layer)]
    found = []
    for path, layer in walked:
        related = registered + found
        if registry.is_dropout_like(layer) or any(
            path.startswith(f"{other}/") or other.startswith(f"{path}/")
            for other in related
        ):
            continue
        # Random augmentation is meant to be off at inference.
        if keras_internals.is_preprocessing_layer(layer):
            continue
        rates = [getattr(layer, name, None) for name in ("rate", "dropout")]
        has_rate = any(
            isinstance(rate, numbers.Real) and not isinstance(rate, bool) and rate > 0
            for rate in rates
        )
        if has_rate or keras_internals.own_seed_generators(layer):
            found.append(path)
    return found


def _as_array(value):
    # Backend tensors stay as they are (a TensorFlow string tensor has no
    # numpy form that predict accepts); the rest becomes numpy.
    return value if ops.is_tensor(value) else np.asarray(value)


def _flat_inputs(graph, x):
    """`x` as a list of arrays in the order of `graph`'s inputs (or, for a
    subclassed model, of `keras.tree.flatten(x)`), and their structure."""
    if graph is None:
        flat = [_as_array(value) for value in keras.tree.flatten(x)]
        received = [tuple(value.shape) for value in flat]
        if not flat or any(len(shape) == 0 for shape in received):
            raise ValueError(
                "`x` must be an array, or a list / dict of arrays, with a batch "
                f"axis. Received shape(s) {received}."
            )
        return flat, keras.tree.pack_sequence_as(x, flat)
    struct = keras_internals.inputs_structure(graph)
    specs = keras.tree.flatten(struct)  # a dict flattens in sorted key order
    expected = [tuple(spec.shape) for spec in specs]
    if isinstance(x, dict):
        names = sorted(struct) if isinstance(struct, dict) else [s.name for s in specs]
        if sorted(x) != sorted(names):
            raise ValueError(
                f"`x` must have one entry per model input {names}. Received "
                f"a dict with keys {sorted(x)}."
            )
        flat = [x[name] for name in names]
    elif isinstance(x, (list, tuple)) and len(specs) > 1:
        flat = list(x)
    elif (
        isinstance(x, (list, tuple))
        and len(x) == 1
        and len(np.shape(x[0])) == len(expected[0])
    ):
        flat = [x[0]]  # [array] for a one-input model
    else:
        flat = [x]  # an array, or nested lists of numbers
    flat = [_as_array(value) for value in flat]
    received = [tuple(value.shape) for value in flat]
    if len(flat) != len(specs) or not all(
        validation.shape_fits(shape, got) for shape, got in zip(expected, received)
    ):
        raise ValueError(
            f"`x` does not fit the model: it expects {len(specs)} input(s) "
            f"of shape {expected}. Received shape(s) {received}."
        )
    return flat, struct


def _unpack_x(element):
    # Keras's convention for dataset elements: (x,), (x, y), (x, y, w).
    if isinstance(element, tuple) and 1 <= len(element) <= 3:
        return element[0]
    return element


def _batches(x):
    """The input batches in `x`: one for arrays and structures of arrays,
    one per element for a tf.data.Dataset, a PyDataset or an iterator."""
    if isinstance(x, keras.utils.PyDataset) or _is_tf_dataset(x):
        return (_unpack_x(element) for element in x)
    if isinstance(x, collections.abc.Iterator):
        return (_unpack_x(element) for element in x)
    if isinstance(x, (str, bytes, set)) or x is None:
        raise TypeError(
            "`x` must be what model.predict takes: an array or tensor, a list "
            "or dict of them, a tf.data.Dataset, a keras.utils.PyDataset or a "
            f"generator. Received: x of type {type(x).__name__}."
        )
    return iter([x])


def _is_tf_dataset(x):
    return type(x).__module__.startswith("tensorflow.") and hasattr(x, "element_spec")


def _default_rows(graph):
    """Rows per call that keep the largest layer output under the budget."""
    if graph is None:
        return SUBCLASSED_ROWS
    largest = max(
        math.prod(dim or 1 for dim in tensor.shape[1:])
        for node in keras_internals.graph_nodes(graph)
        for tensor in node.output_tensors
    )
    return max(1, ELEMENT_BUDGET // largest)


class _Moments:
    """Running mean and sum of squared deviations over samples.

    Batches of samples are merged with Chan et al.'s pairwise update, which
    avoids the cancellation of `E[y^2] - E[y]^2` when the spread is small
    relative to the mean.
    """

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, batch):
        """Adds `batch`, an array of shape (samples, ...)."""
        batch = np.asarray(batch, dtype=np.float64)
        count = len(batch)
        batch_mean = batch.mean(axis=0)
        batch_m2 = np.square(batch - batch_mean).sum(axis=0)
        total = self.count + count
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + batch_m2 + np.square(delta) * (self.count * count / total)
        self.count = total

    @property
    def std(self):
        return np.sqrt(self.m2 / self.count)


def _entropy(mean):
    """Predictive entropy over the last axis, or None for non-probabilities."""
    if mean.ndim < 2 or mean.shape[-1] < 2:
        return None
    if np.any(mean < 0) or not np.allclose(mean.sum(axis=-1), 1.0, atol=1e-3):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(mean > 0, mean * np.log(mean), 0.0)
    return -terms.sum(axis=-1)


class _Draws:
    """Statistics over the passes of one output for one chunk of examples."""

    def __init__(self, keep):
        self.moments = _Moments()
        self.entropy_sum = 0.0  # None once a pass is not a probability vector
        self.kept = [] if keep else None

    def add(self, draws):
        """Adds `draws`, an array of shape (samples, examples, ...)."""
        self.moments.add(draws)
        entropies = _entropy(np.asarray(draws, dtype=np.float64))
        if entropies is None or self.entropy_sum is None:
            self.entropy_sum = None
        else:
            self.entropy_sum = self.entropy_sum + entropies.sum(axis=0)
        if self.kept is not None:
            self.kept.append(draws)

    def mutual_information(self):
        entropy = _entropy(self.moments.mean)
        if entropy is None or self.entropy_sum is None:
            return None
        # Non-negative by Jensen's inequality; clip float rounding below 0.
        return np.maximum(entropy - self.entropy_sum / self.moments.count, 0.0)


def _sample_chunk(sampler, inputs_struct, chunk, samples, calls, keep):
    """Runs `samples` passes over the examples in `chunk`, in `calls` calls.

    Returns the output structure of `sampler` and a `_Draws` per output,
    keeping the passes' outputs if `keep`.
    """
    stats = None
    for call in range(calls):
        outputs = sampler.predict_on_batch(
            keras.tree.pack_sequence_as(inputs_struct, chunk)
        )
        flat = [np.asarray(output) for output in keras.tree.flatten(outputs)]
        stats = stats or [_Draws(keep) for _ in flat]
        for output, stat in zip(flat, stats):
            draws = output.reshape((-1, len(chunk[0])) + output.shape[1:])
            stat.add(draws[: samples - call * len(draws)])
    return outputs, stats


def _concatenate(parts, axis=0):
    return None if any(part is None for part in parts) else np.concatenate(parts, axis)


def mc_predict(model, x, samples=50, batch_size=None, seed=None, return_samples=False):
    """Monte-Carlo dropout: mean and spread of `samples` stochastic passes.

    Each pass samples new masks in every dropout-like layer of
    `kdrop.registry` wherever it is in the model: kdrop's and Keras's
    dropout layers, Keras's other training-only noise layers
    (GaussianDropout, AlphaDropout, GaussianNoise), dropout held inside
    other layers (MultiHeadAttention(dropout=...), a custom layer holding
    keras.layers.Dropout), nested models, and the `dropout` /
    `recurrent_dropout` of LSTM, GRU and SimpleRNN layers (one mask per
    sequence, reused at every time step: the variational RNN dropout of
    Gal & Ghahramani 2016, which is how Keras applies them in training).
    Every other layer (BatchNormalization, random augmentation, custom
    layers reading `training`) stays in inference mode, unlike
    `model(x, training=True)`. WeightScaledDropout samples its
    training-mode mask without rescaling, so the mean estimates the
    weight-scaled inference output; ScheduledDropout samples at its current
    rate and its step is not advanced. With `y_s` the output of pass `s`:

        mean = 1/S sum_s y_s,    std = sqrt(1/S sum_s (y_s - mean)^2)
        entropy = -sum_c mean_c log(mean_c)     (probability outputs only)
        mutual_information = entropy - 1/S sum_s (-sum_c y_sc log(y_sc))

    How it runs: only the dropout-like layers are switched to sampling, by
    `kdrop.sampling.sampling` for the duration of the call; the model's
    other layers are the original objects, in inference mode, so their
    state is used as it is. Its weights, outputs, random state and schedule
    steps are the same afterwards. For Sequential and Functional models,
    layers that no dropout feeds run once per example and their outputs
    are tiled where the stochastic part reads them, so one compiled
    `predict_on_batch` call evaluates many samples of several examples (for
    a CNN with dropout before its classifier, only the classifier runs per
    sample); a subclassed model runs whole on the tiled examples. The
    compiled function is cached per model (the last 8 models), so a second
    call does not retrace. Masks are drawn per row, so every copy gets its
    own; a `noise_shape` whose batch entry is 1 (one mask shared by the
    batch) is sampled per row too, which gives each example the same
    distribution.

    A layer that holds randomness kdrop does not know (an unregistered
    layer with its own seed generator or a positive `rate` / `dropout`)
    is left in inference mode, with a warning naming its path: register its
    class with `kdrop.registry.register` to sample it. Random augmentation
    layers are left in inference mode on purpose, silently.

    Args:
        model: a Keras model: Sequential, Functional (nested models
            included) or subclassed.
        x: the inputs, as for `model.predict`: an array or tensor, a list /
            dict of them for several inputs, nested lists of numbers, a
            `tf.data.Dataset`, a `keras.utils.PyDataset` or a generator
            (elements `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`; the
            targets are ignored, and the results of all batches are
            concatenated).
        samples: int > 0, stochastic forward passes per example.
        batch_size: None or int > 0, the most rows (copies of examples, one
            per sample) evaluated by one compiled call, which bounds memory
            like `model.predict(batch_size=...)`. None: as many as keep the
            largest layer output of one call under 2**24 elements (64 MiB
            in float32), counting unknown dimensions as 1 (pass batch_size
            for models with variable-length inputs); 1024 for subclassed
            models.
        seed: None or an int; the same seed gives the same result, None
            fresh randomness.
        return_samples: bool; if True, `MCResult.draws` keeps every pass's
            output, which costs `samples * model.predict(x).nbytes` of
            memory on top of the compiled calls (e.g. 1000 passes of a
            10-class float32 softmax on 10000 examples: 400 MB; the peak is
            about 3 times that while the pieces are joined). Otherwise only
            running statistics are kept: memory does not grow with
            `samples`, and grows with `x` only by a few float64 numbers per
            output value (measured in BENCHMARKS.md).

    Returns:
        `kdrop.MCResult(mean, std, entropy, samples, mutual_information,
        draws)`.

    Raises:
        ValueError: for bad `samples` / `batch_size`, `x` that does not fit
            the model or holds no example, or a Sequential model that was
            never built.
        TypeError: for a bad `seed` or `return_samples`, an `x` of a type
            `model.predict` does not take, or a `model` that is not a
            `keras.Model`.

    Example:

    ```python
    result = kdrop.mc_predict(model, x_test, samples=50, seed=0)
    prediction = result.mean.argmax(axis=-1)
    least_sure = np.argsort(result.entropy)[-10:]
    ```

    References:
        - Gal & Ghahramani, "Dropout as a Bayesian Approximation:
          Representing Model Uncertainty in Deep Learning", ICML 2016.
        - Gal & Ghahramani, "A Theoretically Grounded Application of
          Dropout in Recurrent Neural Networks", NeurIPS 2016.
        - Srivastava et al., JMLR 15, 2014, section 7.5 and Fig. 11.
    """
    samples = validation.check_positive_int(samples, "samples")
    if batch_size is not None:
        batch_size = validation.check_positive_int(batch_size, "batch_size")
    seed = validation.check_seed(seed)
    return_samples = validation.check_bool(return_samples, "return_samples")
    graph = _graph(model, "mc_predict")
    batches = _batches(x)
    if not sampling.dropout_like_layers(model):
        warnings.warn(
            f"Model '{model.name}' has no dropout layer: every sample is "
            "the same and std is zero.",
            stacklevel=2,
        )
    unsampled = _unsampled_noise(model)
    if unsampled:
        warnings.warn(
            f"mc_predict cannot sample the noise of layer(s) {unsampled} of "
            f"model '{model.name}': they are not registered dropout-like "
            "layers, so they run in inference mode and std leaves out their "
            "noise. Register their class with kdrop.registry.register.",
            stacklevel=2,
        )
    rows = batch_size or _default_rows(graph)
    examples_per_call = max(1, rows // samples)
    calls = math.ceil(samples / min(samples, rows))  # per example
    copies = math.ceil(samples / calls)  # samples per call
    sampler = _cached_sampling_model(model, copies)

    chunk_stats, structure = [], None
    with sampling.sampling(model, seed):
        for batch in batches:
            inputs, struct = _flat_inputs(graph, batch)
            lengths = {len(value) for value in inputs}
            if len(lengths) != 1 or 0 in lengths:
                raise ValueError(
                    "`x` must hold at least one example, and the same number "
                    "of examples in every input. Received shape(s) "
                    f"{[tuple(value.shape) for value in inputs]}."
                )
            for start in range(0, lengths.pop(), examples_per_call):
                chunk = [value[start : start + examples_per_call] for value in inputs]
                # Only the last call's outputs stay alive (for their
                # structure): keeping every chunk's would grow memory with
                # the size of x.
                structure, stats = _sample_chunk(
                    sampler, struct, chunk, samples, calls, return_samples
                )
                chunk_stats.append(stats)
    if not chunk_stats:
        raise ValueError("`x` holds no batch: the dataset or generator is empty.")
    per_output = list(zip(*chunk_stats))
    mean = [np.concatenate([s.moments.mean for s in output]) for output in per_output]
    std = [np.concatenate([s.moments.std for s in output]) for output in per_output]
    entropy = [_entropy(output_mean) for output_mean in mean]
    information = [
        _concatenate([s.mutual_information() for s in output]) for output in per_output
    ]
    draws = [
        _concatenate([_concatenate(s.kept) for s in output], axis=1)
        if return_samples
        else None
        for output in per_output
    ]
    mean, std, entropy, information, draws = (
        keras.tree.pack_sequence_as(structure, values)
        for values in (mean, std, entropy, information, draws)
    )
    return MCResult(
        mean=mean,
        std=std,
        entropy=entropy,
        samples=samples,
        mutual_information=information,
        draws=draws if return_samples else None,
    )

"""Inference with dropout: fold the weight scaling, or sample (MC dropout).

Both functions rebuild the model's graph with `keras.models.clone_model`,
replacing only the dropout layers; every other layer is re-created from its
config and receives a COPY of its weights, so the original model is never
touched (no weights shared, no nodes added to its layers, no random state
or schedule step advanced).
"""

import dataclasses
import math
import warnings

import keras
import numpy as np
from keras import ops

from kdrop import validation
from kdrop.layers import BaseDropout, InvertedDropout, WeightScaledDropout
from kdrop.layers.base import WEIGHT_SCALED

# Keras layers that are random in training and identity at inference.
KERAS_NOISE_LAYERS = (
    keras.layers.Dropout,  # SpatialDropout1D/2D/3D subclass it
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.GaussianNoise,
)
DROPOUT_LAYERS = (BaseDropout,) + KERAS_NOISE_LAYERS

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
# only with a positively homogeneous function, see `_commutes_with_scale`.
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
) + DROPOUT_LAYERS  # at inference: identity or a positive factor
HOMOGENEOUS_ACTIVATIONS = ("linear", "relu", "leaky_relu")

# Default size of one compiled mc_predict call: its largest layer output
# holds at most this many elements (64 MiB in float32).
ELEMENT_BUDGET = 2**24


def _commutes_with_scale(layer):
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and layer.threshold == 0
    if isinstance(layer, keras.layers.Activation):
        name = keras.activations.serialize(layer.activation)
        return name in HOMOGENEOUS_ACTIVATIONS
    return isinstance(layer, POSITIVE_SCALE_COMMUTING)


def _inference_factor(layer):
    """The factor a dropout layer multiplies by at inference (1: identity)."""
    if isinstance(layer, BaseDropout) and layer.mode == WEIGHT_SCALED:
        return layer.keep_prob
    return 1.0


def _kernel_name(layer):
    """Name of the kernel a factor on `layer`'s input folds into, or None."""
    if getattr(layer, "lora_enabled", False) or layer.quantization_mode:
        return None  # their kernel is not one plain variable
    for layer_class, name in FOLD_TARGETS.items():
        if isinstance(layer, layer_class):
            return name
    return None


def _functional_graph(model, caller):
    if isinstance(model, keras.Sequential):
        graph = model._functional
        if graph is None:
            raise ValueError(
                f"{caller} needs a built Sequential model: start it with "
                f"keras.Input(...) or call it on data first (model "
                f"'{model.name}')."
            )
        return graph
    if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth"):
        return model
    raise TypeError(
        f"{caller} supports Sequential and Functional Keras models (nested "
        "ones included), whose layer graph it can inspect. Received a "
        f"subclassed model of type {type(model).__name__}: rebuild it with "
        "the Functional API, or apply the dropout layers' inference rules by "
        "hand."
    )


def _model_nodes(graph):
    return [node for nodes in graph._nodes_by_depth.values() for node in nodes]


def _fold_targets(graph):
    """Maps id(weight-scaled dropout layer) -> the layer to fold it into.

    The dropout layer must be used once, and its output must reach a single
    fold target through single-consumer layers that commute with a positive
    scale, without being a model output on the way.
    """
    nodes = _model_nodes(graph)
    consumers, uses = {}, {}
    for node in nodes:
        uses[id(node.operation)] = uses.get(id(node.operation), 0) + 1
        for tensor in node.input_tensors:
            consumers.setdefault(id(tensor), []).append(node)
    model_outputs = {id(tensor) for tensor in graph.outputs}

    targets = {}
    for node in nodes:
        layer = node.operation
        if _inference_factor(layer) == 1.0 or uses[id(layer)] != 1:
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
                targets[id(layer)] = operation
                break
            if not _commutes_with_scale(operation):
                break
            tensor = consumer.output_tensors[0]
    return targets


def _has_dropout(model):
    return any(isinstance(layer, DROPOUT_LAYERS) for layer in model._flatten_layers())


def _clone(model, replace, caller, call_function=None):
    """Clones `model`, calling `replace(layer)` for every layer.

    `replace` returns a new layer, or None to re-create the layer from its
    config with a copy of its weights. `call_function(layer, *args,
    **kwargs)`, if given, calls each new layer (Functional graphs only).
    Returns the clone and a dict id(original layer) -> its re-created copy.
    """
    graph = _functional_graph(model, caller)
    copies = []

    def clone_layer(layer):
        new_layer = replace(layer)
        if new_layer is None:
            new_layer = layer.__class__.from_config(layer.get_config())
            copies.append((layer, new_layer))
        return new_layer

    clone = keras.models.clone_model(
        model if call_function is None else graph,
        clone_function=clone_layer,
        call_function=call_function,
    )
    for layer, new_layer in copies:
        new_layer.set_weights(layer.get_weights())
    return clone, {id(layer): new_layer for layer, new_layer in copies}


def fold_dropout(model):
    """Returns a new inference model with every dropout layer folded away.

    Layers that are identity at inference become `keras.layers.Identity`:
    kdrop's InvertedDropout and ScheduledDropout in "inverted" mode, Keras's
    Dropout / SpatialDropout1D/2D/3D, and Keras's other training-only noise
    layers (GaussianDropout, AlphaDropout, GaussianNoise). Weight-scaled
    dropout (WeightScaledDropout, or ScheduledDropout in "weight_scaled" mode
    at its current rate) multiplies by `keep_prob` at inference; that factor
    is folded into the kernel of the next linear layer,

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

    Nested Sequential/Functional models are folded recursively (a factor
    never crosses a model boundary). A model without dropout gives an
    equivalent copy, with a warning. Weights are copied, not shared; the
    original model is not modified.

    Args:
        model: a Sequential or Functional Keras model.

    Returns:
        A new `keras.Model` whose `predict` equals `model.predict` (within
        float rounding) and which contains no dropout layer.

    Raises:
        TypeError: for a subclassed model, whose graph cannot be inspected.
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
    _functional_graph(model, "fold_dropout")
    if not _has_dropout(model):
        warnings.warn(
            f"Model '{model.name}' has no dropout layer: fold_dropout "
            "returns an equivalent copy.",
            stacklevel=2,
        )
    return _fold(model)


def _fold(model):
    targets = _fold_targets(_functional_graph(model, "fold_dropout"))
    factors = {}  # id(original fold target) -> product of folded keep_probs

    def replace(layer):
        if isinstance(layer, keras.Model):
            return _fold(layer)
        if not isinstance(layer, DROPOUT_LAYERS):
            return None
        factor = _inference_factor(layer)
        if id(layer) in targets:
            target = id(targets[id(layer)])
            factors[target] = factors.get(target, 1.0) * factor
        elif factor != 1.0:
            return keras.layers.Rescaling(
                factor, name=layer.name, dtype=layer.dtype_policy.name
            )
        return keras.layers.Identity(name=layer.name, dtype=layer.dtype_policy.name)

    clone, copies = _clone(model, replace, "fold_dropout")
    for target, factor in factors.items():
        kernel = getattr(copies[target], _kernel_name(copies[target]))
        kernel.assign(ops.multiply(kernel, factor))
    return clone


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


class _AlwaysSample(keras.layers.Layer):
    """Draws a training-mode sample of a noise layer whatever `training` is."""

    def __init__(self, noise_layer, **kwargs):
        super().__init__(
            name=noise_layer.name, dtype=noise_layer.dtype_policy.name, **kwargs
        )
        self.noise_layer = noise_layer

    def build(self, input_shape):
        self.noise_layer.build(input_shape)

    def call(self, inputs):
        if isinstance(self.noise_layer, BaseDropout):
            return self.noise_layer.sample(inputs)
        return self.noise_layer(inputs, training=True)

    def compute_output_shape(self, input_shape):
        return input_shape


def _per_row(noise_shape):
    # A mask shared across the batch (first entry 1) would be shared by the
    # tiled copies of an example, i.e. across samples. Per-row masks give
    # each example the same distribution, with independent samples.
    if noise_shape is None or noise_shape[0] != 1:
        return noise_shape
    return (None,) + tuple(noise_shape[1:])


def _sampling_layer(layer, seed):
    """A fresh noise layer drawing as `layer` does in training."""
    if isinstance(layer, BaseDropout):
        # Equal in distribution to `layer.sample(x)` (mask and scaling depend
        # only on mode, rate and noise_shape), with the rate frozen at its
        # current value and no schedule or step counter to deserialize.
        layer_class = (
            WeightScaledDropout if layer.mode == WEIGHT_SCALED else InvertedDropout
        )
        return layer_class(
            layer.current_rate,
            noise_shape=_per_row(layer.noise_shape),
            seed=seed,
            dtype=layer.dtype_policy.name,
        )
    config = {**layer.get_config(), "seed": seed}
    if "noise_shape" in config:
        config["noise_shape"] = _per_row(config["noise_shape"])
    return layer.__class__.from_config(config)


def _always_sampling(rng):
    """A `replace` for `_clone`: noise layers become always-sampling copies."""

    def replace(layer):
        if isinstance(layer, keras.Model):
            return _clone(layer, replace, "mc_predict")[0]
        if not isinstance(layer, DROPOUT_LAYERS):
            return None
        return _AlwaysSample(_sampling_layer(layer, int(rng.integers(2**31 - 1))))

    return replace


class _TileSamples(keras.layers.Layer):
    """Repeats the batch: row `s * n + i` is copy `s` of example `i`."""

    def __init__(self, copies, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.copies = copies

    def call(self, inputs):
        return ops.tile(inputs, (self.copies,) + (1,) * (len(inputs.shape) - 1))


def _draws_samples(layer):
    if isinstance(layer, keras.Model):
        return any(isinstance(sub, _AlwaysSample) for sub in layer._flatten_layers())
    return isinstance(layer, _AlwaysSample)


def _sampling_model(model, rng, copies):
    """A model mapping n examples to `copies` samples of each (copies * n rows).

    Noise layers are replaced by always-sampling copies. Layers that no noise
    layer feeds are deterministic: they run once per example, and their
    outputs are tiled only where the stochastic part reads them (for a CNN
    with dropout before its classifier, only the classifier runs per sample).
    """
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
        if not (_draws_samples(layer) or any(id(t) in stochastic for t in inputs)):
            return layer(*args, **kwargs)
        args, kwargs = keras.tree.map_structure(tile, (args, kwargs))
        outputs = layer(*args, **kwargs)
        stochastic.update(id(t) for t in keras.tree.flatten(outputs))
        return outputs

    clone = _clone(model, _always_sampling(rng), "mc_predict", call_function)[0]
    outputs = keras.tree.map_structure(tile, clone._outputs_struct)
    return keras.Model(clone._inputs_struct, outputs)


def _flat_inputs(graph, x):
    """`x` as a list of numpy arrays in the order of `graph.inputs`."""
    struct = graph._inputs_struct
    specs = keras.tree.flatten(struct)  # a dict flattens in sorted key order
    if isinstance(x, dict):
        if isinstance(struct, dict):
            names = sorted(struct)
        else:
            names = [spec.name for spec in specs]
        if sorted(x) != sorted(names):
            raise ValueError(
                f"`x` must have one entry per model input {names}. Received "
                f"a dict with keys {sorted(x)}."
            )
        flat = [x[name] for name in names]
    elif isinstance(x, (list, tuple)) and (len(specs) > 1 or len(x) == 1):
        flat = list(x)
    else:
        flat = [x]
    flat = [np.asarray(ops.convert_to_numpy(value)) for value in flat]
    expected = [tuple(spec.shape) for spec in specs]
    received = [value.shape for value in flat]
    if len(flat) != len(specs) or not all(
        validation.shape_fits(shape, got) for shape, got in zip(expected, received)
    ):
        raise ValueError(
            f"`x` does not fit the model: it expects {len(specs)} input(s) "
            f"of shape {expected}. Received shape(s) {received}."
        )
    lengths = {len(value) for value in flat}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(
            "`x` must hold at least one example, and the same number of "
            f"examples in every input. Received shape(s) {received}."
        )
    return flat


def _default_rows(graph):
    """Rows per call that keep the largest layer output under the budget."""
    largest = max(
        math.prod(dim or 1 for dim in tensor.shape[1:])
        for node in _model_nodes(graph)
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

    Each pass samples new masks in every dropout layer (kdrop's and Keras's,
    and Keras's other training-only noise layers: GaussianDropout,
    AlphaDropout, GaussianNoise) while every other layer, BatchNormalization
    included, stays in inference mode. WeightScaledDropout samples its
    training-mode mask without rescaling, so the mean estimates the
    weight-scaled inference output; ScheduledDropout samples at its current
    rate and its step is not advanced. With `y_s` the output of pass `s`:

        mean = 1/S sum_s y_s,    std = sqrt(1/S sum_s (y_s - mean)^2)
        entropy = -sum_c mean_c log(mean_c)     (probability outputs only)
        mutual_information = entropy - 1/S sum_s (-sum_c y_sc log(y_sc))

    How it runs: the model is cloned with each noise layer replaced by a
    seeded copy that always samples (the original model and its random
    state are untouched). Layers that no noise layer feeds are
    deterministic: they run once per example, and their outputs are tiled
    where the stochastic part reads them, so one compiled
    `predict_on_batch` call evaluates many samples of several examples (for
    a CNN with dropout before its classifier, only the classifier runs per
    sample). Masks are drawn per row, so every copy gets its own; a
    `noise_shape` whose batch entry is 1 (one mask shared by the batch) is
    sampled per row too, which gives each example the same distribution.

    Args:
        model: a Sequential or Functional Keras model (nested models are
            sampled too).
        x: the inputs, as for `model.predict`: an array, or a list / dict
            for several inputs.
        samples: int > 0, stochastic forward passes per example.
        batch_size: None or int > 0, the most rows (copies of examples, one
            per sample) evaluated by one compiled call, which bounds memory
            like `model.predict(batch_size=...)`. None: as many as keep the
            largest layer output of one call under 2**24 elements (64 MiB
            in float32), counting unknown dimensions as 1 (pass batch_size
            for models with variable-length inputs).
        seed: None or an int; the same seed gives the same result, None
            fresh randomness.
        return_samples: bool; if True, `MCResult.draws` keeps every pass's
            output, which costs `samples * model.predict(x).nbytes` of
            memory on top of the compiled calls (e.g. 1000 passes of a
            10-class float32 softmax on 10000 examples: 400 MB). Otherwise
            only running statistics are kept and memory does not grow with
            `samples` or with the size of `x`.

    Returns:
        `kdrop.MCResult(mean, std, entropy, samples, mutual_information,
        draws)`.

    Raises:
        ValueError: for bad `samples` / `batch_size`, `x` that does not fit
            the model, or a Sequential model that was never built.
        TypeError: for a bad `seed` or `return_samples`, or a subclassed
            model.

    Example:

    ```python
    result = kdrop.mc_predict(model, x_test, samples=50, seed=0)
    prediction = result.mean.argmax(axis=-1)
    least_sure = np.argsort(result.entropy)[-10:]
    ```

    References:
        - Gal & Ghahramani, "Dropout as a Bayesian Approximation:
          Representing Model Uncertainty in Deep Learning", ICML 2016.
        - Srivastava et al., JMLR 15, 2014, section 7.5 and Fig. 11.
    """
    samples = validation.check_positive_int(samples, "samples")
    if batch_size is not None:
        batch_size = validation.check_positive_int(batch_size, "batch_size")
    seed = validation.check_seed(seed)
    return_samples = validation.check_bool(return_samples, "return_samples")
    graph = _functional_graph(model, "mc_predict")
    inputs = _flat_inputs(graph, x)
    if not _has_dropout(model):
        warnings.warn(
            f"Model '{model.name}' has no dropout layer: every sample is "
            "the same and std is zero.",
            stacklevel=2,
        )
    rows = batch_size or _default_rows(graph)
    examples_per_call = max(1, rows // samples)
    calls = math.ceil(samples / min(samples, rows))  # per example
    copies = math.ceil(samples / calls)  # samples per call
    sampler = _sampling_model(model, np.random.default_rng(seed), copies)

    chunks = [
        _sample_chunk(
            sampler,
            graph._inputs_struct,
            [value[start : start + examples_per_call] for value in inputs],
            samples,
            calls,
            return_samples,
        )
        for start in range(0, len(inputs[0]), examples_per_call)
    ]
    structure = chunks[0][0]
    per_output = list(zip(*[stats for _, stats in chunks]))
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

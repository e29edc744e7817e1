"""Inference with dropout: fold the weight scaling, or sample (MC dropout).

Both functions rebuild the model's graph with `keras.models.clone_model`,
replacing only the dropout layers; every other layer is re-created from its
config and receives a COPY of its weights, so the original model is never
touched (no weights shared, no nodes added to its layers).
"""

import dataclasses
import warnings

import keras
import numpy as np

from kdrop import validation
from kdrop.layers import (
    BaseDropout,
    InvertedDropout,
    ScheduledDropout,
    WeightScaledDropout,
)
from kdrop.layers.base import WEIGHT_SCALED

# Keras layers that are identity at inference and random in training.
KERAS_NOISE_LAYERS = (
    keras.layers.Dropout,  # SpatialDropout1D/2D/3D subclass it
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
)
DROPOUT_LAYERS = (BaseDropout,) + KERAS_NOISE_LAYERS

# Linear layers a keep_prob factor on their input can be folded into:
# W (k x) + b == (k W) x + b.
FOLD_TARGETS = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)

# Layers f with f(k x) == k f(x) for every k > 0, which a keep_prob factor
# can travel through on its way to a fold target.
POSITIVE_SCALE_COMMUTING = (
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.Identity,
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
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
    keras.layers.LeakyReLU,
)
_HOMOGENEOUS_ACTIVATIONS = ("relu", "linear", "leaky_relu")


def _commutes_with_positive_scale(layer):
    if isinstance(layer, POSITIVE_SCALE_COMMUTING + DROPOUT_LAYERS):
        return True
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and layer.threshold == 0
    if isinstance(layer, keras.layers.Activation):
        return keras.activations.serialize(layer.activation) in _HOMOGENEOUS_ACTIVATIONS
    return False


def _inference_keep_prob(layer):
    """The factor a dropout layer applies at inference (1 for identity)."""
    if isinstance(layer, ScheduledDropout):
        return layer.keep_prob if layer.mode == WEIGHT_SCALED else 1.0
    if isinstance(layer, WeightScaledDropout):
        return layer.keep_prob
    return 1.0


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
        f"{caller} supports Sequential and Functional Keras models, whose "
        f"layer graph it can inspect. Received a subclassed model of type "
        f"{type(model).__name__}: rebuild it with the Functional API, or "
        "apply kdrop's layers' inference rules by hand."
    )


def _model_nodes(graph):
    return [node for nodes in graph._nodes_by_depth.values() for node in nodes]


def _fold_targets(graph):
    """Maps id(weight-scaled dropout layer) -> the linear layer to fold into."""
    nodes = _model_nodes(graph)
    consumers = {}
    uses = {}
    for node in nodes:
        uses[id(node.operation)] = uses.get(id(node.operation), 0) + 1
        for tensor in node.input_tensors:
            consumers.setdefault(id(tensor), []).append(node)
    outputs = {id(t) for t in graph.outputs}

    targets = {}
    for node in nodes:
        layer = node.operation
        if _inference_keep_prob(layer) == 1.0 or uses[id(layer)] != 1:
            continue
        tensor = node.output_tensors[0]
        while id(tensor) not in outputs and len(consumers.get(id(tensor), [])) == 1:
            consumer = consumers[id(tensor)][0]
            operation = consumer.operation
            if uses[id(operation)] != 1 or len(consumer.input_tensors) != 1:
                break
            if isinstance(operation, FOLD_TARGETS):
                targets[id(layer)] = operation
                break
            if not _commutes_with_positive_scale(operation):
                break
            tensor = consumer.output_tensors[0]
    return targets


def _warn_if_no_dropout(model, consequence):
    if not any(isinstance(layer, DROPOUT_LAYERS) for layer in model._flatten_layers()):
        warnings.warn(
            f"Model '{model.name}' has no dropout layer: {consequence}",
            stacklevel=3,
        )


def _clone(model, replace, caller):
    """Clones `model`, calling `replace(layer)` for every layer.

    `replace` returns a new layer, or None to re-create the layer from its
    config with a copy of its weights.
    """
    _functional_graph(model, caller)
    copies = []

    def clone_layer(layer):
        new_layer = replace(layer)
        if new_layer is None:
            new_layer = layer.__class__.from_config(layer.get_config())
            copies.append((layer, new_layer))
        return new_layer

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    for layer, new_layer in copies:
        new_layer.set_weights(layer.get_weights())
    return clone, dict((id(layer), new) for layer, new in copies)


def fold_dropout(model):
    """Returns a new inference model with every dropout layer folded away.

    Inverted dropout (kdrop's InvertedDropout, ScheduledDropout in
    "inverted" mode, Keras's Dropout / SpatialDropout*) and Keras's noise
    layers (GaussianDropout, GaussianNoise, AlphaDropout) are identity at
    inference and become `keras.layers.Identity`. Weight-scaled dropout
    (WeightScaledDropout, ScheduledDropout in "weight_scaled" mode at its
    current rate) multiplies by `keep_prob` at inference; that factor is
    folded into the kernel of the next linear layer,

        W_test = keep_prob * W     (bias unchanged)

    when the dropout output reaches exactly one Dense / Conv1D / Conv2D /
    Conv3D layer (used once) through layers that commute with a positive
    scale: Flatten, Reshape, Permute, pooling, zero padding, cropping,
    ReLU (no max_value or threshold), LeakyReLU, Activation("relu" /
    "linear" / "leaky_relu") and other dropout layers. Otherwise it stays as
    a `keras.layers.Rescaling(keep_prob)`. Nested models are folded
    recursively. The original model is not modified; weights are copied.

    Args:
        model: a Sequential or Functional Keras model.

    Returns:
        A new `keras.Model` whose `predict` equals `model.predict` (within
        float rounding) and which contains no dropout layer.

    Example:

    ```python
    inference_model = kdrop.fold_dropout(model)
    inference_model.save("model_for_serving.keras")
    ```

    References:
        - Srivastava et al., JMLR 15, 2014, section 1 (weight scaling rule).
    """
    targets = _fold_targets(_functional_graph(model, "fold_dropout"))
    _warn_if_no_dropout(model, "fold_dropout returns an equivalent copy.")
    folded_into = {}

    def replace(layer):
        if isinstance(layer, keras.Model):
            return fold_dropout(layer)
        if not isinstance(layer, DROPOUT_LAYERS):
            return None
        keep_prob = _inference_keep_prob(layer)
        if keep_prob == 1.0:
            return keras.layers.Identity(name=layer.name)
        if id(layer) in targets:
            folded_into[id(targets[id(layer)])] = keep_prob
            return keras.layers.Identity(name=layer.name)
        return keras.layers.Rescaling(keep_prob, name=layer.name)

    clone, copies = _clone(model, replace, "fold_dropout")
    for target_id, keep_prob in folded_into.items():
        kernel = copies[target_id].kernel
        kernel.assign(kernel * keep_prob)
    return clone


@dataclasses.dataclass(frozen=True)
class MCResult:
    """Monte-Carlo dropout prediction.

    Attributes:
        mean: average of the sampled outputs, shape of `model.predict(x)`.
        std: their standard deviation over samples (ddof=0).
        entropy: predictive entropy `-sum(mean * log(mean))` per example
            when the outputs are probabilities (rows non-negative, summing
            to 1), else None.
        samples: the number of stochastic forward passes.
    """

    mean: np.ndarray
    std: np.ndarray
    entropy: object
    samples: int


class _AlwaysSample(keras.layers.Layer):
    """Runs a dropout layer in training mode whatever `training` says."""

    def __init__(self, dropout, **kwargs):
        super().__init__(name=dropout.name, **kwargs)
        self.dropout = dropout

    def call(self, x):
        return self.dropout(x, training=True)


def _sampling_copy(layer, seed):
    """A fresh dropout layer drawing like `layer` does in training."""
    if isinstance(layer, ScheduledDropout):
        layer_class = WeightScaledDropout if layer.mode == WEIGHT_SCALED else InvertedDropout
        return layer_class(layer.current_rate, noise_shape=layer.noise_shape, seed=seed)
    return layer.__class__.from_config({**layer.get_config(), "seed": seed})


def _sampling_model(model, seed):
    counter = iter(range(1_000_000))

    def replace(layer):
        if isinstance(layer, keras.Model):
            return _sampling_model(layer, seed)
        if not isinstance(layer, DROPOUT_LAYERS):
            return None
        layer_seed = None if seed is None else seed + next(counter)
        return _AlwaysSample(_sampling_copy(layer, layer_seed))

    return _clone(model, replace, "mc_predict")[0]


def _as_inputs(model, x):
    inputs = x if isinstance(x, (list, tuple)) else [x]
    inputs = [np.asarray(keras.ops.convert_to_numpy(v)) for v in inputs]
    expected = [tuple(t.shape) for t in model.inputs]
    if len(inputs) != len(expected) or any(
        len(e) != v.ndim or any(d is not None and d != s for d, s in zip(e[1:], v.shape[1:]))
        for e, v in zip(expected, inputs)
    ):
        raise ValueError(
            f"`x` does not fit the model: it expects inputs of shape "
            f"{expected}, received {[v.shape for v in inputs]}."
        )
    return inputs


def _probability_rows(mean):
    return (
        mean.ndim >= 2
        and np.all(mean >= -1e-6)
        and np.allclose(mean.sum(axis=-1), 1.0, atol=1e-3)
    )


def mc_predict(model, x, samples=50, batch_size=None, seed=None):
    """Monte-Carlo dropout: mean and spread of `samples` stochastic passes.

    Each pass samples new masks in every dropout layer (kdrop's and
    Keras's) while every other layer, BatchNormalization included, stays in
    inference mode. WeightScaledDropout samples its training-mode mask
    without rescaling, so the mean estimates the weight-scaled inference
    output; ScheduledDropout samples at its current rate and its step is
    not advanced. With `p_s` the output of pass `s`:

        mean = 1/S sum_s p_s,    std = sqrt(1/S sum_s (p_s - mean)^2)
        entropy = -sum_c mean_c log(mean_c)     (probability outputs)

    Passes run inside Keras's compiled predict function, several samples per
    call: each call holds at most `batch_size` rows (examples x samples).

    Args:
        model: a Sequential or Functional Keras model with one output.
        x: inputs, as for `model.predict` (an array, or a list for several
            inputs).
        samples: int > 0, stochastic forward passes per example.
        batch_size: None (1024) or int > 0, rows per compiled call.
        seed: None or an int; the same seed gives the same result.

    Returns:
        `kdrop.MCResult(mean, std, entropy, samples)`.

    Example:

    ```python
    result = kdrop.mc_predict(model, x_test, samples=50, seed=0)
    uncertain = np.argsort(result.entropy)[-10:]
    ```

    References:
        - Gal & Ghahramani, "Dropout as a Bayesian Approximation",
          ICML 2016.
        - Srivastava et al., JMLR 15, 2014, section 7.5 and Fig. 11.
    """
    samples = validation.check_positive_int(samples, "samples")
    rows = 1024 if batch_size is None else validation.check_positive_int(batch_size, "batch_size")
    validation.check_seed(seed)
    if len(_functional_graph(model, "mc_predict").outputs) != 1:
        raise ValueError(
            "mc_predict supports models with one output; this model has "
            f"{len(model.outputs)}. Build a model per output first."
        )
    inputs = _as_inputs(model, x)
    _warn_if_no_dropout(model, "every sample is the same, std is zero.")
    sampler = _sampling_model(model, seed)

    samples_per_call = min(samples, rows)
    examples_per_call = max(1, rows // samples)
    n = len(inputs[0])
    total = total_sq = None
    for start in range(0, n, examples_per_call):
        chunk = [v[start : start + examples_per_call] for v in inputs]
        chunk_sum = chunk_sq = 0.0
        for done in range(0, samples, samples_per_call):
            k = min(samples_per_call, samples - done)
            tiled = [np.concatenate([c] * k) for c in chunk]
            batch = tiled if len(tiled) > 1 else tiled[0]
            out = np.asarray(keras.ops.convert_to_numpy(sampler.predict_on_batch(batch)), np.float64)
            out = out.reshape((k, len(chunk[0])) + out.shape[1:])
            chunk_sum = chunk_sum + out.sum(axis=0)
            chunk_sq = chunk_sq + (out**2).sum(axis=0)
        total = chunk_sum if total is None else np.concatenate([total, chunk_sum])
        total_sq = chunk_sq if total_sq is None else np.concatenate([total_sq, chunk_sq])

    mean = total / samples
    std = np.sqrt(np.maximum(total_sq / samples - mean**2, 0.0))
    entropy = None
    if _probability_rows(mean):
        p = np.clip(mean, 1e-12, 1.0)
        entropy = -(p * np.log(p)).sum(axis=-1)
    return MCResult(mean=mean, std=std, entropy=entropy, samples=samples)

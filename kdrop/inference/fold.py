"""Folding dropout away: the inference model of `kdrop.fold_dropout`."""

import warnings

import keras
from keras import ops

from kdrop import keras_internals, registry
from kdrop.inference.inputs import model_graph
from kdrop.inference.sampling import dropout_like_layers


def _commutes_with_scale(layer):
    if not keras_internals.is_layer(layer):
        # A keras.ops call (`x + h`, `keras.ops.tanh`): only the known ones.
        return keras_internals.keras_op_name(layer) in registry.SCALE_COMMUTING_OPS
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and layer.threshold == 0
    if isinstance(layer, keras.layers.Activation):
        name = keras.activations.serialize(layer.activation)
        return name in registry.HOMOGENEOUS_ACTIVATIONS
    if registry.inference_kind(layer) in (registry.IDENTITY, registry.SCALE_BY_KEEP):
        return True  # at inference: identity or a positive factor
    return isinstance(layer, registry.POSITIVE_SCALE_COMMUTING)


def _inference_factor(layer):
    """The factor a dropout-like layer multiplies by at inference (1:
    identity, or not dropout-like)."""
    if registry.inference_kind(layer) == registry.SCALE_BY_KEEP:
        return 1.0 - registry.current_rate(layer)
    return 1.0


def _kernel_name(layer):
    """Name of the kernel a factor on `layer`'s input folds into, or None."""
    if not keras_internals.is_layer(layer):
        return None  # a keras.ops call has no kernel
    if getattr(layer, "lora_enabled", False) or layer.quantization_mode:
        return None  # their kernel is not one plain variable
    for layer_class, name in registry.FOLD_TARGETS.items():
        if isinstance(layer, layer_class):
            return name
    return None


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

    Every other layer of the folded model is the original layer in all but
    its call nodes (a `keras_internals.detached_copy`: the same weight
    variables, the same state: adapted preprocessing statistics, lookup
    tables, Lambda functions), so `model`'s graph gets no new node; only
    fold targets that receive a factor are copies with a scaled kernel.
    `keras.ops` calls in the graph (`x + h`, `keras.ops.tanh`) are kept;
    a factor crosses only those of `kdrop.registry.SCALE_COMMUTING_OPS`
    (reshapes, transposes, relu), else it stays as a Rescaling.
    Layers whose dropout is inside them
    (MultiHeadAttention(dropout=...), a custom block holding Dropout, an
    LSTM with dropout) are kept: they already apply their inference rule.
    Nested Sequential/Functional models are folded recursively (a factor
    never crosses a model boundary); a nested subclassed model is kept as
    it is. A model without dropout gives an equivalent model, with a
    warning. The original model is not modified (weights, random state,
    call nodes).

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
    if model_graph(model, "fold_dropout") is None:
        raise TypeError(
            "fold_dropout rewrites a model's layer graph, so it needs a "
            "Sequential or Functional model (nested ones included). Received "
            f"a subclassed model of type {type(model).__name__} (model "
            f"'{model.name}'), whose graph is Python code: its predict "
            "already applies every dropout layer's inference rule, so serve "
            "it as it is, or build it with the Functional API to fold."
        )
    if not dropout_like_layers(model):
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
        # A layer kept as it is is a detached copy: the same object in every
        # respect (weights, state) but its call nodes, so that calling it in
        # the new graph adds no node to the original layer.
        if isinstance(layer, keras.Model):
            if keras_internals.functional_graph(layer) is None:
                # subclassed: applies its inference rules itself
                return keras_internals.detached_copy(layer)
            return _fold(layer)
        if id(layer) in factors:
            return _scaled_copy(layer, factors[id(layer)])
        if registry.inference_kind(layer) in (None, registry.NOT_FOLDABLE):
            return keras_internals.detached_copy(layer)
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

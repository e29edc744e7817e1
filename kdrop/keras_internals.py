"""Every use of a private Keras API in kdrop, one function each.

Keras 3 has no public API for these; each function says which Keras
versions it was checked on, and tests/test_keras_internals.py checks each
one, so a Keras upgrade that changes them fails there first. A private
attribute that is gone raises `KerasInternalsError` naming it, rather than
an `AttributeError` deep inside a callback.
"""

import contextlib

import keras


class KerasInternalsError(RuntimeError):
    """A private Keras API that kdrop relies on has changed."""


def _private(obj, name):
    """`obj.<name>`, or a `KerasInternalsError` naming the internal."""
    try:
        return getattr(obj, name)
    except AttributeError as error:
        raise KerasInternalsError(
            f"kdrop relies on the private Keras API `{type(obj).__name__}."
            f"{name}`, which Keras {keras.__version__} no longer has (see "
            "kdrop/keras_internals.py for the versions it was checked on). "
            "Install a Keras version that setup.cfg allows."
        ) from error


def direct_sublayers(layer):
    """The layers `layer` holds directly (not their own sub-layers).

    Keras tracks a layer's sub-layers (attributes, lists and dicts of layers)
    in `Layer._layers`, exposed by `_flatten_layers`. Checked on Keras 3.10 to 3.15.
    """
    flatten = _private(layer, "_flatten_layers")
    return list(flatten(include_self=False, recursive=False))


def all_sublayers(layer):
    """Every layer inside `layer`, at any depth, each once (not `layer`).

    `Layer._flatten_layers(include_self=False)`, which reaches layers held
    in attributes of other layers too (MultiHeadAttention's dropout), where
    `model.layers` lists only the top level. Checked on Keras 3.10 to 3.15.
    """
    flatten = _private(layer, "_flatten_layers")
    return list(flatten(include_self=False))


def own_seed_generators(layer):
    """The `keras.random.SeedGenerator`s `layer` holds itself (not those of
    its sub-layers). Checked on Keras 3.10 to 3.15 (`Layer._seed_generators`)."""
    return list(getattr(layer, "_seed_generators", ()))


def is_preprocessing_layer(layer):
    """Whether `layer` is one of Keras's preprocessing layers (Normalization,
    the lookups, random augmentation such as RandomFlip).

    Keras exports no common base class for them; they live in the private
    package `keras.src.layers.preprocessing`. Checked on Keras 3.10 to 3.15.
    """
    return type(layer).__module__.startswith("keras.src.layers.preprocessing")


def callback_model(callback):
    """The model given to `callback.set_model`, or None before that.

    `Callback._model`: the public `callback.model` property also calls
    `model.jax_state_sync()` on JAX, which is wasted work (and an error
    before the model is built) when only the model's identity is needed.
    Checked on Keras 3.10 to 3.15.
    """
    return _private(callback, "_model")


def learning_rate_schedule(optimizer):
    """The `LearningRateSchedule` `optimizer` was created with, or None.

    `Optimizer._learning_rate` holds the schedule itself; the public
    `optimizer.learning_rate` returns only its current value, and assigning
    it raises a TypeError with a schedule. Checked on Keras 3.10 to 3.15.
    """
    learning_rate = _private(optimizer, "_learning_rate")
    schedule_class = keras.optimizers.schedules.LearningRateSchedule
    return learning_rate if isinstance(learning_rate, schedule_class) else None


def batches_applied(optimizer):
    """How many batches' gradients `optimizer` has taken, an int.

    `Optimizer._iterations` advances on every `apply` call: also on the
    batches that only accumulate gradients under
    `gradient_accumulation_steps=k`, where the public `iterations` is
    `_iterations // k` (the weight updates). A `LossScaleOptimizer` is
    looked through; it does not call its inner optimizer's `apply` on a
    batch with non-finite gradients, so a skipped batch is not counted.
    Checked on Keras 3.10 to 3.15.
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    return int(keras.ops.convert_to_numpy(_private(optimizer, "_iterations")))


def variable_index(optimizer, variable):
    """The index of `variable` in the variables `optimizer` was built for,
    i.e. of its slot in per-variable lists such as SGD's velocities.

    `Optimizer._get_variable_index`, which Keras's own optimizers call in
    `update_step`. Checked on Keras 3.10 to 3.15.
    """
    return _private(optimizer, "_get_variable_index")(variable)


def functional_graph(model):
    """The Functional graph of `model`, or None for a subclassed model.

    A Sequential model keeps its graph in `Sequential._functional` (None
    until it is built); a Functional model is its own graph. Checked on
    Keras 3.10 to 3.15.
    """
    if isinstance(model, keras.Sequential):
        return _private(model, "_functional")
    if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth"):
        return model  # subclassed models have no `_nodes_by_depth`
    return None


def graph_nodes(graph):
    """Every node of a Functional `graph` (`Functional._nodes_by_depth`),
    whose `operation`, `input_tensors` and `output_tensors` describe one
    layer call. Checked on Keras 3.10 to 3.15."""
    by_depth = _private(graph, "_nodes_by_depth")
    return [node for nodes in by_depth.values() for node in nodes]


def inputs_structure(graph):
    """The structure (tensor, list or dict) of a Functional graph's inputs,
    as passed to its constructor (`Functional._inputs_struct`). Checked on
    Keras 3.10 to 3.15."""
    return _private(graph, "_inputs_struct")


def outputs_structure(graph):
    """The structure of a Functional graph's outputs
    (`Functional._outputs_struct`). Checked on Keras 3.10 to 3.15."""
    return _private(graph, "_outputs_struct")


def inbound_nodes(layer):
    """The nodes of the symbolic calls of `layer` (`Operation._inbound_nodes`),
    each with `input_tensors` and `output_tensors` in the graph of the model
    that made the call (for a nested model: the outer model's graph, where
    `model.output` gives its own). Checked on Keras 3.10 to 3.15."""
    return list(_private(layer, "_inbound_nodes"))


def first_call_arguments(layer):
    """`(args, kwargs)` of the first symbolic call of `layer` (its first
    node's `Node.arguments`), or None for a layer never called
    symbolically. Checked on Keras 3.14 to 3.15."""
    nodes = inbound_nodes(layer)
    if not nodes:
        return None
    arguments = _private(nodes[0], "arguments")
    return arguments.args, arguments.kwargs


def nodes_in_call_order(graph):
    """The layer and operation nodes of a Functional `graph` (no input
    nodes), deepest first: the order in which `keras.models.clone_model`
    calls them. Checked on Keras 3.14 to 3.15."""
    by_depth = _private(graph, "_nodes_by_depth")
    return [
        node
        for depth in sorted(by_depth, reverse=True)
        for node in by_depth[depth]
        if node.operation is not None and not node.is_input
    ]


def producer_node(tensor):
    """The node that computed symbolic `tensor` (its `_keras_history`), or
    None for a tensor that no layer or operation made. Checked on Keras
    3.14 to 3.15."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return inbound_nodes(history.operation)[history.node_index]


def is_add_operation(operation):
    """Whether `operation` is the `Add` operation that `x + y` (or
    `keras.ops.add`) on symbolic tensors records in a Functional graph; its
    class is not exported."""
    return keras_op_name(operation) == "Add"


def applications_stochastic_depth():
    """The `StochasticDepth` layer class of `keras.applications.ConvNeXt*`,
    which Keras does not export (`keras.src.applications.convnext`).
    Checked on Keras 3.10 to 3.15."""
    from keras.src.applications import convnext

    return _private(convnext, "StochasticDepth")


def global_seed_generator():
    """Keras's global `SeedGenerator`, from which unseeded random ops
    (`keras.random.uniform(shape)`) draw (created if it does not exist yet):
    `keras.src.random.seed_generator.global_seed_generator`. Checked on
    Keras 3.10 to 3.15."""
    from keras.src.random import seed_generator

    return _private(seed_generator, "global_seed_generator")()


def call_nodes(operation):
    """`(inbound, outbound)`: the lists of nodes of `operation`'s own symbolic
    calls (`Operation._inbound_nodes`) and of the calls that read its outputs
    (`Operation._outbound_nodes`). Every symbolic call appends to both.
    Checked on Keras 3.10 to 3.15."""
    return (
        _private(operation, "_inbound_nodes"),
        _private(operation, "_outbound_nodes"),
    )


def is_layer(operation):
    """Whether a graph node's operation is a layer, not a `keras.ops` call
    (`x + h`, `keras.ops.tanh(h)`, the `NotEqual` of `mask_zero=True`), which
    Keras records in a Functional graph as a bare `Operation` without
    sub-layers, weights or `training`."""
    return isinstance(operation, keras.layers.Layer)


def keras_op_name(operation):
    """The class name of a `keras.ops` call's operation (`"Add"`, `"Tanh"`,
    `"Reshape"`), or None for a layer or another operation. Keras defines
    them in the private package `keras.src.ops`. Checked on Keras 3.10 to
    3.15."""
    if is_layer(operation) or not type(operation).__module__.startswith(
        "keras.src.ops."
    ):
        return None
    return type(operation).__name__


def model_operations(model):
    """Every operation of `model`: the model, every layer inside it, and every
    operation of its Functional graphs (nested ones included): InputLayers
    and `keras.ops` calls too."""
    found = {id(model): model}
    pending = [model]
    while pending:
        current = pending.pop()
        children = direct_sublayers(current) if is_layer(current) else []
        graph = functional_graph(current) if isinstance(current, keras.Model) else None
        if graph is not None:
            children += [graph] + [node.operation for node in graph_nodes(graph)]
        for child in children:
            if id(child) not in found:
                found[id(child)] = child
                pending.append(child)
    return list(found.values())


@contextlib.contextmanager
def keeping_call_nodes(model):
    """Within the block, graphs may be built by calling `model`'s layers on
    new symbolic inputs; on leaving, every operation of `model` has exactly
    the call nodes it had before (the new ones are removed), so `model`'s
    own graph and anything that reads it (`model.get_config()`, a callback
    picking the layers called once) are as before.

    A Functional model built inside the block keeps working afterwards: it
    runs its own node list (`Functional._nodes_by_depth`), not the layers'.
    It can no longer be serialized (`get_config` reads the layers' nodes),
    so use the block only for internal models that are never saved.
    """
    saved = [
        (lists, [list(nodes) for nodes in lists])
        for lists in map(call_nodes, model_operations(model))
    ]
    try:
        yield
    finally:
        for lists, before in saved:
            for nodes, kept in zip(lists, before):
                nodes[:] = kept


@contextlib.contextmanager
def keeping_seed_states(layer):
    """Within the block, `layer` may be run (a probe, a gradient); on
    leaving, the seed generators of `layer` and of every layer inside it,
    and Keras's global one, are back at their states: the random state is
    as if it had not run. Keras's recurrent layers draw their dropout masks
    even in inference mode, so any call of them advances their seed."""
    generators = [
        generator
        for sub in [layer, *all_sublayers(layer)]
        for generator in own_seed_generators(sub)
    ]
    # And Keras's global generator, from which layers calling unseeded
    # random ops draw (keras.applications' ConvNeXt StochasticDepth).
    generators.append(global_seed_generator())
    states = [keras.ops.convert_to_numpy(g.state) for g in generators]
    try:
        yield
    finally:
        for generator, state in zip(generators, states):
            generator.state.assign(state)


def detached_copy(layer):
    """A copy of `layer` that IS the layer in every respect but its call
    nodes: it shares every attribute value (the same weight and seed
    variables, adapted statistics, lookup tables, Lambda functions,
    sub-layers) and starts with no call nodes, so that a new graph can call
    it without adding nodes to `layer`.

    A shallow copy of the instance's `__dict__`; `copy.copy` would go
    through Keras's `__reduce__`, which serializes the whole layer. Checked
    on Keras 3.10 to 3.15.
    """
    call_nodes(layer)  # the private attributes exist
    copy = object.__new__(type(layer))
    copy.__dict__.update(vars(layer))
    copy.__dict__["_inbound_nodes"] = []
    copy.__dict__["_outbound_nodes"] = []
    return copy


def untrained_step_function(model):
    """A stand-in for `model.train_function` that draws one call's batches
    from the data and trains on none of them: `fit`'s loop calls
    `model.train_function` anew for every batch, so setting it skips
    batches without changing the data order. Returns empty logs.

    The call signatures of the backends' train functions: `(iterator)` on
    TensorFlow, `(state, iterator)` returning `(logs, state)` on JAX, the
    batches themselves on torch. Checked on Keras 3.10 to 3.15.
    """
    backend = keras.backend.backend()
    if backend == "torch":
        return lambda data: {}

    def draw(iterator):
        for _ in range(model.steps_per_execution):
            next(iterator)

    if backend == "jax":

        def skip_with_state(state, iterator):
            draw(iterator)
            return {}, state

        return skip_with_state

    def skip(iterator):
        draw(iterator)
        return {}

    return skip


@contextlib.contextmanager
def first_example_rnn_masks(cell):
    """Within the block, the Keras RNN cell `cell` (a `DropoutRNNCell`:
    LSTMCell, GRUCell, SimpleRNNCell, ConvLSTM's cell) draws its dropout
    and recurrent-dropout masks for the first example of the batch only,
    `(1, ...)`, which then broadcast over the batch.

    `DropoutRNNCell._create_dropout_mask(step_input, rate)` draws them (the
    cell caches them for the sequence). Checked on Keras 3.10 to 3.15.
    """
    create = _private(type(cell), "_create_dropout_mask")

    def create_shared(step_input, rate):
        return create(cell, step_input[:1], rate)

    cell._create_dropout_mask = create_shared
    try:
        yield
    finally:
        del cell._create_dropout_mask


@contextlib.contextmanager
def attention_weights_noise(layer, noise):
    """Within the block, the Keras `Attention` or `AdditiveAttention` layer
    `layer` multiplies its attention weights (after the softmax) by
    `noise(weights)` instead of applying its own dropout to them.

    `Attention._apply_scores(scores, value, scores_mask, training)` masks,
    normalizes and drops the scores and applies them to `value`; it runs
    here in inference mode (no dropout) and the noise is applied after it.
    Checked on Keras 3.15.
    """
    apply_scores = _private(type(layer), "_apply_scores")

    def apply_with_noise(scores, value, scores_mask=None, training=False):
        _, weights = apply_scores(
            layer, scores, value, scores_mask=scores_mask, training=False
        )
        weights = keras.ops.multiply(weights, noise(weights))
        return keras.ops.matmul(weights, value), weights

    layer._apply_scores = apply_with_noise
    try:
        yield
    finally:
        del layer._apply_scores


def set_backup_epoch(callback, epoch):
    """Makes Keras's `BackupAndRestore` record `epoch` in the backups it
    writes during that epoch.

    It keeps the epoch in `_current_epoch`, set only at epoch ends (from 0),
    so a resumed run's backups before its first epoch end say epoch 0.
    Checked on Keras 3.10 to 3.15.
    """
    _private(callback, "_current_epoch")
    callback._current_epoch = epoch

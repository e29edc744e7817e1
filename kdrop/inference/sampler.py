"""The compiled model that runs many Monte-Carlo passes in one call."""

import collections
import math
import numbers
import warnings
import weakref

import keras
from keras import ops

from kdrop import keras_internals, layer_paths, registry
from kdrop.inference.sampling import dropout_like_layers

# Default size of one compiled mc_predict call: its largest layer output
# holds at most this many elements (64 MiB in float32).
ELEMENT_BUDGET = 2**24


# Rows per call for subclassed models, whose layer outputs cannot be sized
# before running them.
SUBCLASSED_ROWS = 1024


# Sampling models kept compiled, most recently used first (each holds its
# model alive).
CACHED_SAMPLERS = 8


class _TileSamples(keras.layers.Layer):
    """Repeats the batch: row `s * n + i` is copy `s` of example `i`."""

    def __init__(self, copies, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.copies = copies
        # A Keras mask (Embedding(mask_zero=True)) is tiled with its tensor.
        self.supports_masking = True

    def call(self, inputs):
        return ops.tile(inputs, (self.copies,) + (1,) * (len(inputs.shape) - 1))

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else self.call(mask)

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
    if not keras_internals.is_layer(layer):
        return False  # a keras.ops call is deterministic
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

    # The sampler calls the original layers (`sampling` switches them), but
    # leaves no call node on them: `model`'s graph stays as it was.
    with keras_internals.keeping_call_nodes(model):
        clone = keras.models.clone_model(
            graph, clone_function=lambda layer: layer, call_function=call_function
        )
        clone_graph = keras_internals.functional_graph(clone)
        outputs = keras.tree.map_structure(
            tile, keras_internals.outputs_structure(clone_graph)
        )
        with warnings.catch_warnings():
            # Keras warns when dict keys differ from the Input names; it
            # already did when the user built `model`, and the keys are the
            # same here.
            warnings.filterwarnings("ignore", "When providing `inputs` as a dict")
            return keras.Model(keras_internals.inputs_structure(clone_graph), outputs)


_SAMPLERS = collections.OrderedDict()  # key -> (weakref to model, sampler)


def cached_sampling_model(model, copies, masks="per_example"):
    """`_sampling_model(model, copies)`, built and compiled once per model.

    A rate held as a Python float is part of the compiled function, so the
    key holds every such rate: a changed rate gives a new sampler. A rate
    the compiled function reads from the layer's variables
    (`registry.rate_in_variables`: a schedule of the layer's step,
    ConcreteDropout's learned rate) is left out of the key, so training
    does not make a new sampler. The
    way masks are drawn (`masks` of `kdrop.inference.sampling.sampling`,
    which the sampler must be called in) is part of the compiled function,
    so it is part of the key too.
    """
    rates = tuple(
        registry.current_rate(layer)
        for _, layer in dropout_like_layers(model)
        if not registry.rate_in_variables(layer)
    )
    key = (id(model), copies, rates, masks)
    cached = _SAMPLERS.get(key)
    if cached is not None and cached[0]() is model:
        _SAMPLERS.move_to_end(key)
        return cached[1]
    sampler = _sampling_model(model, copies)
    # Compiled as model.predict is: a model compiled with jit_compile=False
    # (e.g. for a layer XLA cannot compile) is sampled without XLA too.
    sampler.jit_compile = model.jit_compile
    if keras.backend.backend() == "jax" and any(
        registry.draws_from_global_rng(layer) for _, layer in dropout_like_layers(model)
    ):
        # Keras refuses unseeded random ops in a JAX trace.
        sampler.jit_compile = False
    _SAMPLERS[key] = (weakref.ref(model), sampler)
    while len(_SAMPLERS) > CACHED_SAMPLERS:
        _SAMPLERS.popitem(last=False)
    return sampler


def unsampled_noise(model):
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
        names = ("rate", "dropout", "recurrent_dropout", "drop_path_rate")
        rates = [getattr(layer, name, None) for name in names]
        has_rate = any(
            isinstance(rate, numbers.Real) and not isinstance(rate, bool) and rate > 0
            for rate in rates
        )
        if has_rate or keras_internals.own_seed_generators(layer):
            found.append(path)
    return found


def default_rows(graph):
    """Rows per call that keep the largest layer output under the budget."""
    if graph is None:
        return SUBCLASSED_ROWS
    largest = max(
        math.prod(dim or 1 for dim in tensor.shape[1:])
        for node in keras_internals.graph_nodes(graph)
        for tensor in node.output_tensors
    )
    return max(1, ELEMENT_BUDGET // largest)

"""Dropout for models you did not write: retune, insert, stochastic depth.

Three functions take a built Sequential or Functional model (one from
`keras.applications`, a colleague's, a checkpoint's) and return a NEW model
with the same weights and a changed dropout:

- `set_dropout(model, rate, where=...)`: the selected dropout-like layers get
  a new rate, a number or a `kdrop.schedules` schedule, also where the
  dropout lives inside another layer (MultiHeadAttention, an LSTM, a custom
  block) or inside a nested model;
- `add_dropout(model, rate, before=...)`: an `InvertedDropout` before the
  chosen layers (e.g. the classifier head);
- `add_drop_path(model, rate)`: stochastic depth, a `DropPath` on every
  residual branch, its rate growing with depth; a model's own stochastic
  depth (ConvNeXt's StochasticDepth, EfficientNet's batch-shared Dropout
  before its Add) is retuned, not doubled.

How: `keras.models.clone_model` rebuilds the graph (as `kdrop.fold_dropout`
does), but with COPIES of the layers: each is made from its config, built
as the original was (called on inputs shaped like the original's first
call) and given the original's state as a `.keras` file would carry it
(own variables and assets of it and of every layer inside it). So the
original model keeps its weights, its layer objects and their call nodes.
A layer whose dropout is inside it is rebuilt from its own config
with the rate's config entry changed, found by trying the entries (so the
change is in the config, and survives `.keras` saving); where no entry
changes it, the layer is refused rather than patched in memory only.
Everything is checked before anything is copied.
"""

import copy
import math
import numbers
import os
import tempfile

import keras
import numpy as np

from kdrop import keras_internals, layer_paths, registry
from kdrop.inference.inputs import model_graph
from kdrop.layers import (
    BaseDropout,
    ConcreteDropout,
    DropPath,
    GaussianDropout,
    InvertedDropout,
    ScheduledDropout,
    drop_path_rates,
)
from kdrop.layers.drop_path import DEPTH_RULES
from kdrop.layers.rate import ScheduledRate, resolve_rate
from kdrop.schedules import Constant

__all__ = ["add_drop_path", "add_dropout", "residual_branches", "set_dropout"]

# Layers that hold their dropout rate(s) as attributes (Python floats used
# inside their `call`), not as a dropout sub-layer.
RATE_ATTRIBUTES = {
    keras.layers.LSTMCell: ("dropout", "recurrent_dropout"),
    keras.layers.GRUCell: ("dropout", "recurrent_dropout"),
    keras.layers.SimpleRNNCell: ("dropout", "recurrent_dropout"),
    keras.layers.Attention: ("dropout",),
    keras.layers.AdditiveAttention: ("dropout",),
}

# A config value no layer has by chance: written into one config entry at a
# time to see which rates it sets.
_PROBE = 0.3141592


def _attributes_of(layer):
    """The rate attributes of `layer` (an RNN reads its cell's)."""
    if isinstance(layer, keras.layers.RNN):
        layer = layer.cell
    for layer_class, names in RATE_ATTRIBUTES.items():
        if isinstance(layer, layer_class):
            return names
    return ()


def _attribute(layer, name):
    if isinstance(layer, keras.layers.RNN):
        layer = layer.cell
    return float(getattr(layer, name))


def _is_cell_of_rnn(path, layer, parents):
    parent = parents.get(path)
    return isinstance(parent, keras.layers.RNN) and parent.cell is layer


def _is_functional(layer):
    return (
        isinstance(layer, keras.Model)
        and keras_internals.functional_graph(layer) is not None
    )


def _describe(path, layer):
    return f"'{path}' ({type(layer).__name__})"


# -- arguments ---------------------------------------------------------------


def _check_model(model, caller):
    graph = model_graph(model, caller)
    if graph is None:
        raise TypeError(
            f"{caller} rewrites a model's layer graph, so it needs a "
            "Sequential or Functional model. Received a subclassed model of "
            f"type {type(model).__name__} (model '{model.name}'), whose graph "
            "is Python code: change the rates where its layers are built, or "
            "build it with the Functional API."
        )


def _check_rate(rate):
    """A float in [0, 1) or a schedule; TypeError / ValueError naming `rate`."""
    if isinstance(rate, bool) or not (
        isinstance(rate, numbers.Real) or callable(rate) or isinstance(rate, dict)
    ):
        raise TypeError(
            "`rate` must be a number in [0, 1) (the probability of dropping "
            "a unit) or a schedule (a kdrop.schedules schedule, a Keras "
            "learning-rate schedule or a keras.ops callable of the step). "
            f"Received: rate={rate!r} of type {type(rate).__name__}."
        )
    return resolve_rate(rate)


def _check_where(where, argument):
    """Checks the types in a selection; returns it as a list of items."""
    items = list(where) if isinstance(where, (list, tuple, set)) else [where]
    if not items:
        raise ValueError(
            f"`{argument}` must name at least one layer. Received: "
            f"{argument}={where!r}."
        )
    for item in items:
        if not (
            isinstance(item, str)
            or (isinstance(item, type) and issubclass(item, keras.Layer))
            or (callable(item) and not isinstance(item, type))
        ):
            raise TypeError(
                f"`{argument}` must be a layer path (str, as given by "
                "kdrop.layer_paths.walk), a keras.layers.Layer subclass, a "
                "predicate `(path, layer) -> bool`, or a list of those. "
                f"Received: {argument}={where!r}, with an item of type "
                f"{type(item).__name__}."
            )
    return items


def _resolve(where, argument, model, walked, candidates, expand=True):
    """The paths of `candidates` that `where` selects.

    A path or class naming a layer that is not a candidate itself selects
    the candidates inside it (a nested model, a MultiHeadAttention).
    """
    items = _check_where(where, argument)
    layers = dict(walked)
    selected = []

    def add(path):
        if path not in selected:
            selected.append(path)

    def inside(path):
        if not expand:
            return [path] if path in candidates else []
        return [c for c in candidates if c == path or c.startswith(path + "/")]

    for item in items:
        if isinstance(item, str):
            if item not in layers:
                known = sorted(layers)
                shown = ", ".join(repr(p) for p in known[:25])
                more = f" and {len(known) - 25} more" if len(known) > 25 else ""
                raise ValueError(
                    f"`{argument}` names a path model '{model.name}' does "
                    f"not have. Received: {argument}={item!r}. Layer paths "
                    f"(kdrop.layer_paths.walk): {shown}{more}."
                )
            found = inside(item)
            if not found:
                raise ValueError(
                    f"`{argument}` must name {candidates.kind}. Received: "
                    f"{argument}={item!r}, layer {_describe(item, layers[item])}"
                    f", which is not one and holds none."
                )
            for path in found:
                add(path)
        elif isinstance(item, type):
            matched = [p for p, layer in walked if isinstance(layer, item)]
            found = [c for p in matched for c in inside(p)]
            if not found:
                raise ValueError(
                    f"`{argument}` matches nothing: model '{model.name}' has "
                    f"no layer of class {item.__name__} that is or holds "
                    f"{candidates.kind}. Received: {argument}={item.__name__}."
                )
            for path in found:
                add(path)
        else:
            for path in candidates:
                if item(path, layers[path]):
                    add(path)
    if not selected:
        raise ValueError(
            f"`{argument}` matches nothing in model '{model.name}'. Received: "
            f"{argument}={where!r}. Paths it may select: "
            f"{list(candidates) or 'none'}."
        )
    return selected


class _Candidates(list):
    """Paths a selection may pick, with a description for error messages."""

    def __init__(self, paths, kind):
        super().__init__(paths)
        self.kind = kind


# -- the structure of a model --------------------------------------------------


def _parents(walked):
    """{path: parent layer}; a walk starting at ("", host) parents the
    top-level paths to the host."""
    layers = dict(walked)
    parents = {}
    for path, _ in walked:
        if not path:
            continue
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent in layers:
            parents[path] = layers[parent]
    return parents


def _graph_layers(model):
    """ids of the layers that are nodes of `model`'s graph or of a nested
    Functional / Sequential model's graph."""
    ids = set()
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        ids.add(id(layer))
        if _is_functional(layer):
            ids |= _graph_layers(layer)
    return ids


def _host(path, walked_layers, graph_ids):
    """The graph-node layer holding the layer at `path` (maybe itself), and
    its path. Raises for layers inside a subclassed model."""
    parts = path.split("/")
    for end in range(1, len(parts) + 1):
        prefix = "/".join(parts[:end])
        layer = walked_layers[prefix]
        if _is_functional(layer):
            continue
        if isinstance(layer, keras.Model) and prefix != path:
            raise ValueError(
                f"Layer {_describe(path, walked_layers[path])} is inside the "
                f"subclassed model {_describe(prefix, layer)}, whose graph "
                "is Python code that cannot be rewritten: change its rate "
                "where that model builds its layers."
            )
        if id(layer) not in graph_ids:  # pragma: no cover - Keras invariant
            raise ValueError(
                f"Layer {_describe(prefix, layer)} is not a layer of a model "
                "graph; kdrop cannot rebuild it."
            )
        return prefix, layer
    raise AssertionError(path)  # pragma: no cover


def _dropout_paths(walked):
    """Paths of every rate set_dropout sees: dropout-like layers (kdrop's
    registry) and layers holding rate attributes (RNNs, their cells,
    Attention); a cell is represented by its RNN."""
    parents = _parents(walked)
    paths = []
    for path, layer in walked:
        if _is_cell_of_rnn(path, layer, parents):
            continue
        if registry.is_dropout_like(layer) or _attributes_of(layer):
            paths.append(path)
    return paths


def _current(layer):
    """The rate of a dropout path, one number (for the default selection)."""
    names = _attributes_of(layer)
    if names:
        return max(_attribute(layer, name) for name in names)
    return registry.current_rate(layer)


# -- rates held in a layer's config ------------------------------------------


def _rates_in(host):
    """{(index, attribute): rate} for the host (index 0) and every layer
    inside it (walk order), keyed by position: a rebuilt copy's auto-named
    sub-layers have other names, but the same positions."""
    walked = [("", host)] + layer_paths.walk(host)
    parents = _parents(walked)
    rates = {}
    for index, (path, layer) in enumerate(walked):
        if _is_cell_of_rnn(path, layer, parents):
            continue
        names = _attributes_of(layer)
        for name in names:
            rates[(index, name)] = _attribute(layer, name)
        if not names and registry.is_dropout_like(layer):
            rate = registry.current_rate(layer)
            if rate is not None:
                rates[(index, None)] = rate
    return rates, walked


def _structure(walked):
    return [type(layer) for _, layer in walked]


def _leaves(config, prefix=()):
    """(key path, value) of every number in a nested config."""
    items = (
        config.items()
        if isinstance(config, dict)
        else enumerate(config)
        if isinstance(config, list)
        else ()
    )
    for key, value in items:
        if isinstance(value, (dict, list)):
            yield from _leaves(value, prefix + (key,))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            yield prefix + (key,), value


def _with(config, changes):
    config = copy.deepcopy(config)
    for key_path, value in changes.items():
        node = config
        for key in key_path[:-1]:
            node = node[key]
        node[key_path[-1]] = value
    return config


def _from_config(layer, config):
    """A new layer of `layer`'s class from `config`."""
    if isinstance(layer, keras.layers.Lambda):
        # The function comes from the caller's own layer object in memory,
        # not from a file: nothing untrusted is deserialized.
        return type(layer).from_config(config, safe_mode=False)
    return type(layer).from_config(config)


def _fresh(value):
    """A KerasTensor like `value` that belongs to no graph."""
    if isinstance(value, keras.KerasTensor):
        return keras.KerasTensor(value.shape, value.dtype, sparse=value.sparse)
    return value


def _build_like(host, layer):
    """Builds `layer`, a copy of `host`, as `host` was built: called on
    inputs shaped like those of `host`'s first call (a layer without its own
    `build` creates the state of its sub-layers only when called, e.g. a
    MultiHeadAttention's dropout; an adapted Discretization's output width
    comes from its state), or from its build config. The call leaves a node
    on `layer` that belongs to no model."""
    arguments = keras_internals.first_call_arguments(host)
    if arguments is not None:
        args, kwargs = keras.tree.map_structure(_fresh, arguments)
        layer(*args, **kwargs)
    elif host.built and host.get_build_config() is not None:
        layer.build_from_config(host.get_build_config())
    return layer


def _rebuilt(host, config):
    """A layer of `host`'s class from `config`, built as `host` was."""
    return _build_like(host, _from_config(host, config))


class _ConfigPlan:
    """How to give the rates of some dropout inside `host` a new value:
    which entries of `host.get_config()` to set."""

    def __init__(self, host_path, host, wanted, rate):
        """`wanted`: {(index, attribute): path} of the rates to change."""
        self.host_path, self.host, self.rate = host_path, host, rate
        self.config = host.get_config()
        rates, walked = _rates_in(host)
        self.structure = _structure(walked)
        effects = {}
        for key_path, value in _leaves(self.config):
            if not any(math.isclose(value, rates[k], abs_tol=1e-9) for k in wanted):
                continue
            effect = self._effect(key_path, rates)
            if effect:
                effects[key_path] = effect
        usable = {k: e for k, e in effects.items() if e <= set(wanted)}
        covered = set().union(*usable.values()) if usable else set()
        missing = [key for key in wanted if key not in covered]
        if missing:
            self._refuse(missing, wanted, effects, walked)
        self.keys = list(usable)
        self.wanted = wanted

    def _effect(self, key_path, rates):
        try:
            probe = _rebuilt(self.host, _with(self.config, {key_path: _PROBE}))
        except Exception:  # an entry that is not a rate: not usable
            return set()
        probed, walked = _rates_in(probe)
        if _structure(walked) != self.structure or set(probed) != set(rates):
            return set()
        return {k for k, v in probed.items() if math.isclose(v, _PROBE)}

    def _refuse(self, missing, wanted, effects, walked):
        key = missing[0]
        path = wanted[key]
        what = f"the `{key[1]}` of " if key[1] else "the rate of "
        tied = [(k, e) for k, e in effects.items() if key in e and not e <= set(wanted)]
        if tied:
            entry, effect = tied[0]
            others = sorted(
                f"{self.host_path}/{walked[i][0]}".rstrip("/")
                + (f" ({a})" if a else "")
                for i, a in effect - set(wanted)
            )
            raise ValueError(
                f"Cannot change {what}{_describe(path, walked[key[0]][1])} "
                f"alone: its config entry {'.'.join(map(str, entry))!r} in "
                f"layer {_describe(self.host_path, self.host)} also sets "
                f"{others}. Select those too (`where`)."
            )
        raise ValueError(
            f"Cannot change {what}{_describe(path, walked[key[0]][1])}: no "
            f"entry of the config of layer "
            f"{_describe(self.host_path, self.host)} sets it (the layer "
            "builds that dropout with a fixed rate), so a new rate would "
            "not survive saving and loading. Give that layer's class a "
            "config entry for the rate, or leave it out of `where`."
        )

    def check_schedule(self):
        """Raises TypeError when the config entries cannot hold a schedule."""
        try:
            layer = self.build()
        except Exception as error:
            cause = f"building it failed: {error}"
        else:
            cause = None
            _, walked = _rates_in(layer)
            for index, _ in self.wanted:
                if not isinstance(walked[index][1], ScheduledRate) or (
                    walked[index][1].schedule is None
                ):
                    cause = "the layer keeps that rate as a Python float"
        if cause:
            paths = sorted(set(self.wanted.values()))
            raise TypeError(
                f"`rate` must be a number for {paths} in layer "
                f"{_describe(self.host_path, self.host)}: its config entries "
                f"{['.'.join(map(str, k)) for k in self.keys]} cannot hold a "
                f"schedule ({cause}). Received: rate={self.rate!r}. Pass a "
                "number for that layer (select it in a separate set_dropout "
                "call), or leave it out of `where`."
            )

    def build(self):
        changes = dict.fromkeys(self.keys, self.rate)
        return _rebuilt(self.host, _with(self.config, changes))


# -- dropout layers replaced by kdrop's --------------------------------------


def _spatial_noise_shape(layer):
    rank = {
        keras.layers.SpatialDropout1D: 3,
        keras.layers.SpatialDropout2D: 4,
        keras.layers.SpatialDropout3D: 5,
    }[type(layer)]
    channels_first = getattr(layer, "data_format", None) == "channels_first"
    if channels_first:
        return (None, None) + (1,) * (rank - 2)
    return (None,) + (1,) * (rank - 2) + (None,)


def _kdrop_replacement(layer, rate):
    """A kdrop layer doing what `layer` does, at `rate`; None when `layer`
    is not one kdrop has an equivalent of."""
    common = {"name": layer.name, "dtype": layer.dtype_policy}
    if type(layer) is keras.layers.Dropout:
        return InvertedDropout(
            rate, noise_shape=layer.noise_shape, seed=layer.seed, **common
        )
    if type(layer) in (
        keras.layers.SpatialDropout1D,
        keras.layers.SpatialDropout2D,
        keras.layers.SpatialDropout3D,
    ):
        noise_shape = _spatial_noise_shape(layer)
        return InvertedDropout(rate, noise_shape=noise_shape, seed=layer.seed, **common)
    if type(layer) is keras.layers.GaussianDropout:
        return GaussianDropout(rate, seed=layer.seed, **common)
    return None


def _kdrop_copy(layer, rate):
    """A copy of kdrop layer `layer` with `rate` (its step starts at 0)."""
    config = layer.get_config()
    if isinstance(layer, ScheduledDropout) and not callable(rate):
        rate = Constant(rate)
    config[layer._rate_argument] = rate
    return type(layer).from_config(config)


def _plan_set_dropout(model, walked, selected, rate):
    """{id(graph layer): (its replacement, whether that is a new kdrop
    dropout layer)}; raises for anything that cannot be changed."""
    layers = dict(walked)
    graph_ids = _graph_layers(model)
    schedule = callable(rate)
    replacements, hosted = {}, {}
    for path in selected:
        layer = layers[path]
        host_path, host = _host(path, layers, graph_ids)
        if isinstance(layer, ConcreteDropout):
            raise ValueError(
                f"Cannot set the rate of layer {_describe(path, layer)}: "
                "ConcreteDropout learns its rate. Leave it out of `where`."
            )
        if registry.is_dropout_like(layer) and registry.current_rate(layer) is None:
            raise ValueError(
                f"Cannot set a rate on layer {_describe(path, layer)}: it "
                "adds noise of a standard deviation and drops nothing, so it "
                "has no rate. Leave it out of `where`, or replace it with "
                "kdrop.layers.GaussianDropout by hand."
            )
        if host is layer and not _attributes_of(layer):
            replacement = (
                _kdrop_copy(layer, rate)
                if isinstance(layer, ScheduledRate)
                else _kdrop_replacement(layer, rate)
            )
            if replacement is not None:
                replacements[id(layer)] = (replacement, True)
                continue
        hosted.setdefault(host_path, (host, {}))
        _, wanted = hosted[host_path]
        rates, host_walked = _rates_in(host)
        index = next(i for i, (_, sub) in enumerate(host_walked) if sub is layer)
        names = _attributes_of(layer)
        if names:
            nonzero = [n for n in names if rates[(index, n)] > 0]
            for name in nonzero or names[:1]:
                wanted[(index, name)] = path
        else:
            wanted[(index, None)] = path
    for host_path, (host, wanted) in hosted.items():
        plan = _ConfigPlan(host_path, host, wanted, rate)
        if schedule:
            plan.check_schedule()
        replacements[id(host)] = (plan.build(), False)
    return replacements


# -- rebuilding --------------------------------------------------------------


def _copy_state(source, target):
    """Copies the state of `source` and of every layer inside it into
    `target`, a copy built from its config, as a `.keras` file would: each
    layer's own variables (weights, adapted statistics, kdrop's seed
    states) and its assets (lookup vocabularies)."""
    sources = [source] + [layer for _, layer in layer_paths.walk(source)]
    targets = [target] + [layer for _, layer in layer_paths.walk(target)]
    if [type(layer) for layer in sources] != [type(layer) for layer in targets]:
        raise ValueError(  # pragma: no cover - a layer whose config is partial
            f"Layer '{source.name}' ({type(source).__name__}) rebuilt from "
            "its config does not hold the same layers as the original, so "
            "its state cannot be copied: give its class a get_config that "
            "describes it fully."
        )
    with tempfile.TemporaryDirectory() as assets:
        for index, (origin, copy_) in enumerate(zip(sources, targets)):
            store = {}
            origin.save_own_variables(store)
            copy_.load_own_variables(
                {key: np.array(value) for key, value in store.items()}
            )
            if hasattr(origin, "save_assets"):
                folder = os.path.join(assets, str(index))
                os.makedirs(folder)
                origin.save_assets(folder)
                copy_.load_assets(folder)


def _copy_weights(source, target):
    """Copies into `target`, a new kdrop dropout layer replacing `source`,
    the weights of the same name (DropConnect's kernel): not the step of a
    schedule it no longer follows, nor another class's random state."""
    by_name = {w.name: w for w in source.weights if w.name != "step"}
    for weight in target.weights:
        if weight.name in by_name:
            weight.assign(by_name[weight.name])


def _rebuild(model, replacements, call_function_of=None, insert_in_sequential=None):
    """A copy of `model` (Sequential or Functional, nested models copied
    recursively) whose layers are copies with the original state, except
    `replacements` {id(layer): (new layer, whether it is a new kdrop
    dropout layer, which only takes the weights of the same name)}.

    `call_function_of(model, clone_of)` returns clone_model's
    `call_function` for one Functional model; `insert_in_sequential(layer)`
    the layers to put before `layer` in a Sequential one.
    """
    copied = []  # (original, kdrop dropout layer replacing it)

    def clone(layer):
        if _is_functional(layer):
            return _rebuild(layer, replacements, call_function_of, insert_in_sequential)
        if not isinstance(layer, keras.Layer):  # a keras.ops operation (`x + y`)
            return type(layer).from_config(layer.get_config())
        if id(layer) in replacements:
            new, kdrop_dropout = replacements[id(layer)]
            if kdrop_dropout:  # weights copied once the graph has built it
                copied.append((layer, new))
            else:  # rebuilt from its changed config, built like `layer`
                _copy_state(layer, new)
            return new
        if isinstance(layer, keras.Model):  # subclassed, no dropout selected
            new = _build_like(layer, keras.models.clone_model(layer))
        else:
            new = _rebuilt(layer, layer.get_config())
        # State now, before the new graph calls the copy: an adapted layer's
        # output shape depends on it.
        _copy_state(layer, new)
        return new

    if isinstance(model, keras.Sequential):
        layers = []
        for layer in model.layers:
            if insert_in_sequential is not None:
                layers.extend(insert_in_sequential(layer))
            layers.append(clone(layer))
        new_model = keras.Sequential(
            [
                keras.Input(
                    batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype
                )
            ]
            + layers,
            name=model.name,
            trainable=model.trainable,
        )
        if model.compiled:
            new_model.compile_from_config(model.get_compile_config())
    else:
        clones = {}

        def clone_recorded(layer):
            new = clone(layer)
            clones[id(new)] = layer
            return new

        call_function = (
            call_function_of(model, clones) if call_function_of is not None else None
        )
        new_model = keras.models.clone_model(
            model, clone_function=clone_recorded, call_function=call_function
        )
        if not model.trainable:  # clone_model makes a trainable Functional
            new_model.trainable = False
    for original, new in copied:
        _copy_weights(original, new)
    return new_model


def _call_function(graph, clones, wrap):
    """clone_model's call_function for `graph`: calls each copied operation
    as clone_model would, with `wrap(node, index, tensor)` applied to each
    of its input tensors (`index` in `node.input_tensors`)."""
    pending = {}
    for node in keras_internals.nodes_in_call_order(graph):
        pending.setdefault(id(node.operation), []).append(node)

    def call(operation, *args, **kwargs):
        node = pending[id(clones[id(operation)])].pop(0)
        position = iter(range(len(node.input_tensors)))

        def replace(value):
            if isinstance(value, keras.KerasTensor):
                return wrap(node, next(position), value)
            return value

        args, kwargs = keras.tree.map_structure(replace, (args, kwargs))
        return operation(*args, **kwargs)

    return call


# -- set_dropout -------------------------------------------------------------


def set_dropout(model, rate, *, where=None):
    """Returns a new model, `model` with the selected dropout at `rate`.

    The new model has the same graph and weights; each selected dropout is
    changed as follows:

    - Keras's Dropout, SpatialDropout1D/2D/3D and GaussianDropout become
      kdrop's InvertedDropout (same `noise_shape`; SpatialDropout's
      per-channel mask as `noise_shape`, e.g. `(None, 1, 1, None)`) and
      GaussianDropout, with the same name and seed: they take a number or
      a schedule;
    - kdrop's own layers (InvertedDropout, WeightScaledDropout,
      ScheduledDropout, GaussianDropout, DropPath, DropBlock, DropConnect)
      are rebuilt with the new rate or schedule (a schedule starts at step
      0);
    - dropout inside another layer, and AlphaDropout, are changed through
      that layer's config: MultiHeadAttention(dropout=...), Attention and
      AdditiveAttention(dropout=...), LSTM / GRU / SimpleRNN / RNN(cell)
      (their `dropout`, and `recurrent_dropout` where it is set; `dropout`
      when neither is), Bidirectional's two layers, a custom layer holding a
      Dropout whose rate comes from its config. The layer is rebuilt from
      its config with that entry changed and its weights copied. These
      keep their rate as a Python float: a schedule is refused there with a
      TypeError, and a rate that no config entry sets (a custom layer
      building `Dropout(0.1)` with a fixed number) with a ValueError, since
      the change would be lost on saving;
    - nested Sequential / Functional models are rebuilt recursively.

    Args:
        model: a built Sequential or Functional model. It is not modified.
        rate: float in [0, 1), or a schedule of the training step (a
            `kdrop.schedules` schedule, a Keras learning-rate schedule or a
            `keras.ops` callable), evaluated inside the compiled train step.
        where: which dropout to change: None (default) for every dropout-like
            layer and held rate whose rate is above 0; a layer path (as given
            by `kdrop.layer_paths.walk`), a layer class, a predicate
            `(path, layer) -> bool`, or a list of those. A path or class
            naming a layer that holds dropout (a MultiHeadAttention, a
            nested model) selects the dropout inside it; a predicate is
            asked about every dropout-like layer and rate-holding layer.

    Returns:
        A new `keras.Model` of the same kind (compiled like `model`, if it
        was, with a fresh optimizer), whose `predict` equals
        `model.predict`, except where weight-scaled dropout changes its
        rate: it scales by `1 - rate` at inference.

    Raises:
        TypeError: `model` is not a Sequential or Functional model, `rate`
            is neither a number nor a schedule, `where` holds something else
            than paths, classes and predicates, or a schedule is given for a
            rate kept as a Python float.
        ValueError: `rate` outside [0, 1), a Sequential model never built,
            a path the model lacks, a selection matching no dropout, or a
            selected dropout that cannot be changed (a learned or a fixed
            rate, noise without a rate, a layer inside a subclassed model).

    Example:

    ```python
    base = keras.applications.EfficientNetB0(weights="imagenet")
    tuned = kdrop.set_dropout(base, 0.5, where="top_dropout")
    # early dropout (Liu et al. 2023): 0.1 for 2000 steps, then none
    early = kdrop.schedules.Early(0.1, 2000)
    early_model = kdrop.set_dropout(base, early, where="top_dropout")
    ```
    """
    _check_model(model, "set_dropout")
    rate = _check_rate(rate)
    walked = layer_paths.walk(model)
    layers = dict(walked)
    paths = _dropout_paths(walked)
    if where is None:
        selected = [
            p
            for p in paths
            if (_current(layers[p]) or 0.0) > 0.0
            and not isinstance(layers[p], ConcreteDropout)
        ]
        if not selected:
            raise ValueError(
                f"Model '{model.name}' has no dropout with a rate above 0 for "
                "`where=None` to select. Dropout-like layers and rates there: "
                f"{paths or 'none'}; pass `where` to choose some."
            )
    else:
        candidates = _Candidates(paths, "a dropout-like layer or rate")
        selected = _resolve(where, "where", model, walked, candidates)
    replacements = _plan_set_dropout(model, walked, selected, rate)
    return _rebuild(model, replacements)


# -- add_dropout -------------------------------------------------------------


def _unique_name(base, taken):
    name, copy_index = base, 1
    while name in taken:
        copy_index += 1
        name = f"{base}_{copy_index}"
    taken.add(name)
    return name


def add_dropout(model, rate, *, before, seed=None):
    """Returns a new model with an InvertedDropout before the chosen layers.

    Each input tensor of each call of a chosen layer passes through its own
    `kdrop.layers.InvertedDropout(rate, seed=seed)`, named
    `"dropout_before_<layer name>"`. Weights and every other layer are
    unchanged; at inference the dropout is the identity, so `predict` is
    the same.

    Args:
        model: a built Sequential or Functional model. It is not modified.
        rate: float in [0, 1), or a schedule of the training step.
        before: the layers to put dropout in front of: a layer path, a layer
            class, a predicate `(path, layer) -> bool`, or a list of those.
            They must be layers of a model graph (of `model` or a nested
            model), not layers held inside another layer.
        seed: None or an int for the new layers' masks.

    Returns:
        A new `keras.Model` of the same kind.

    Raises:
        TypeError / ValueError: as `set_dropout`, naming `before`.

    Example:

    ```python
    base = keras.applications.ResNet50V2(weights="imagenet")
    with_dropout = kdrop.add_dropout(base, 0.3, before="predictions")
    ```
    """
    _check_model(model, "add_dropout")
    rate = _check_rate(rate)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"`seed` must be None or an int. Received: seed={seed!r}.")
    walked = layer_paths.walk(model)
    graph_ids = _graph_layers(model)
    nodes = [p for p, layer in walked if id(layer) in graph_ids]
    candidates = _Candidates(nodes, "a layer of the model graph")
    layers = dict(walked)
    for item in _check_where(before, "before"):
        if isinstance(item, str) and item in layers and item not in nodes:
            host_path, host = _host(item, layers, graph_ids)
            raise ValueError(
                f"`before` must name layers of the model graph. Received: "
                f"before={item!r}, layer {_describe(item, layers[item])} held "
                f"inside layer {_describe(host_path, host)}: dropout can only "
                f"go between layers of a graph (try before={host_path!r})."
            )
    selected = _resolve(before, "before", model, walked, candidates, expand=False)
    # A nested model selected whole gets dropout in front of it, not in front
    # of every layer inside it.
    chosen = {id(layers[p]) for p in selected}
    taken = {layer.name for _, layer in walked}

    def dropout_for(layer):
        name = _unique_name(f"dropout_before_{layer.name}", taken)
        return InvertedDropout(rate, seed=seed, name=name)

    def call_function_of(graph, clones):
        def wrap(node, index, tensor):
            if id(node.operation) not in chosen:
                return tensor
            return dropout_for(node.operation)(tensor)

        return _call_function(graph, clones, wrap)

    def insert_in_sequential(layer):
        return [dropout_for(layer)] if id(layer) in chosen else []

    return _rebuild(model, {}, call_function_of, insert_in_sequential)


# -- add_drop_path -----------------------------------------------------------


def _is_add(operation):
    return isinstance(operation, keras.layers.Add) or keras_internals.is_add_operation(
        operation
    )


def _is_ancestor(candidate, tensor):
    """Whether `candidate` is `tensor` or one it was computed from."""
    seen, stack = set(), [tensor]
    while stack:
        current = stack.pop()
        if current is candidate:
            return True
        if id(current) in seen:
            continue
        seen.add(id(current))
        node = keras_internals.producer_node(current)
        if node is not None:
            stack.extend(node.input_tensors)
    return False


def _existing_drop_path(layer):
    """Whether `layer` already drops whole examples of a branch: kdrop's
    DropPath, a stochastic-depth layer (ConvNeXt's StochasticDepth), or
    dropout with a mask shared over every axis but the batch
    (EfficientNet's `Dropout(noise_shape=(None, 1, 1, 1))`)."""
    if isinstance(layer, DropPath):
        return True
    if type(layer).__name__ == "StochasticDepth" and hasattr(layer, "drop_path_rate"):
        return True
    if isinstance(layer, (keras.layers.Dropout, BaseDropout)) and not isinstance(
        layer, (keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D)
    ):
        shape = getattr(layer, "noise_shape", None)
        return (
            shape is not None
            and len(shape) > 1
            and shape[0] is None
            and all(dim == 1 for dim in shape[1:])
        )
    return False


def _identity_root(tensor):
    """The tensor `tensor` is an identity of, through registry.IDENTITY_LIKE layers."""
    while True:
        node = keras_internals.producer_node(tensor)
        if (
            node is None
            or not isinstance(node.operation, registry.IDENTITY_LIKE)
            or len(node.input_tensors) != 1
        ):
            return tensor
        tensor = node.input_tensors[0]


def residual_branches(model):
    """The residual joins of a Functional `model`'s own graph.

    A join is an `Add` layer or an `x + y` op with two inputs: a shortcut,
    which is `x` or a parameter-free subsampling / padding of it (pooling,
    ZeroPadding, Cropping, Identity: `kdrop.registry.IDENTITY_LIKE`), and
    a branch computed from `x`: `y = x + f(x)`. Projection shortcuts
    (`P(x) + f(x)` with a convolution P) are not identities and are not
    listed.

    Returns:
        `[(node, branch index)]` from the input side to the output side.
    """
    graph = keras_internals.functional_graph(model)
    if graph is None:
        return []
    joins = []
    for node in keras_internals.nodes_in_call_order(graph):
        tensors = node.input_tensors
        if not _is_add(node.operation) or len(tensors) != 2:
            continue
        if tensors[0] is tensors[1]:
            continue
        for branch in (1, 0):
            shortcut = _identity_root(tensors[1 - branch])
            if shortcut is not tensors[branch] and _is_ancestor(
                shortcut, tensors[branch]
            ):
                joins.append((node, branch))
                break
    return joins


def add_drop_path(model, rate, *, rule="linear", seed=None):
    """Returns a new model with stochastic depth on every residual branch.

    Every identity residual join of the model's graph, an `Add` layer or an
    `x + y` op adding a branch `f(x)` to its own input `x`, gets a
    `kdrop.layers.DropPath` at the end of the branch: `x + DropPath(r_l)(f(x))`,
    with block `l`'s rate `r_l` from `kdrop.layers.drop_path_rates(rate,
    depth, rule)` (blocks counted from the input side). A branch that
    already ends in stochastic depth (a DropPath, ConvNeXt's
    StochasticDepth, or a dropout whose mask is shared over all axes but
    the batch, as EfficientNet's `Dropout(noise_shape=(None, 1, 1, 1))`)
    has that layer replaced by the DropPath, not a second one added.
    Weights are unchanged and DropPath is the identity at inference, so
    `predict` gives the same output, bit for bit.

    A shortcut may subsample or pad `x` without parameters (ResNetV2's
    strided `MaxPooling2D(1)`); joins with a projection shortcut
    (`P(x) + f(x)`, the convolution shortcut of the first block of each
    ResNet stage) are left alone: their branch does not join an identity.
    Joins inside nested models are not counted.

    Args:
        model: a built Functional model. It is not modified.
        rate: float in [0, 1), the deepest block's rate (`rule="linear"`),
            or a schedule (each block gets the schedule scaled by its depth
            fraction).
        rule: `"linear"` (Huang et al. 2016: block l of L gets rate * l / L)
            or `"timm"` (block i of L gets rate * i / (L - 1), the first 0).
        seed: None or an int; DropPath l gets `seed + l`.

    Returns:
        A new `keras.Model`, with its DropPath layers named
        `"drop_path_<n>"` (or the replaced layer's name).

    Raises:
        TypeError / ValueError: bad `model`, `rate`, `rule` or `seed`, or a
            model without any identity residual join.

    Example:

    ```python
    base = keras.applications.ResNet50V2(weights="imagenet")
    deep = kdrop.add_drop_path(base, 0.2)  # 0.2 at the last block
    ```

    References:
        - Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016.
    """
    _check_model(model, "add_drop_path")
    rate = _check_rate(rate)
    if not isinstance(rule, str) or rule not in DEPTH_RULES:
        raise ValueError(
            f"`rule` must be one of {', '.join(map(repr, DEPTH_RULES))}. "
            f"Received: rule={rule!r}."
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"`seed` must be None or an int. Received: seed={seed!r}.")
    joins = residual_branches(model)
    if not joins:
        raise ValueError(
            f"Model '{model.name}' has no residual join for add_drop_path: no "
            "Add layer or `x + y` op in its graph adds a branch to its own "
            "input (identity shortcut). Joins inside nested models are not "
            "reached; for other places use add_dropout."
        )
    rates = drop_path_rates(rate, len(joins), rule)
    taken = {layer.name for _, layer in layer_paths.walk(model)}
    retuned, inserted = {}, {}
    for block, ((node, branch), block_rate) in enumerate(zip(joins, rates)):
        layer_seed = None if seed is None else seed + block
        producer = keras_internals.producer_node(node.input_tensors[branch])
        existing = producer.operation if producer is not None else None
        if existing is not None and _existing_drop_path(existing):
            retuned[id(existing)] = (
                DropPath(
                    block_rate,
                    seed=layer_seed,
                    name=existing.name,
                    dtype=existing.dtype_policy,
                ),
                True,
            )
        else:
            name = _unique_name(f"drop_path_{block + 1}", taken)
            inserted[(id(node), branch)] = DropPath(
                block_rate, seed=layer_seed, name=name
            )

    def call_function_of(graph, clones):
        def wrap(node, index, tensor):
            layer = inserted.get((id(node), index))
            return tensor if layer is None else layer(tensor)

        return _call_function(graph, clones, wrap)

    return _rebuild(model, retuned, call_function_of)

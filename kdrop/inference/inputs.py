"""What `mc_predict` accepts as `x`, as `model.predict` does: arrays, lists
and dicts of them, datasets and generators; and a model's Functional graph
and the names its inputs take in a dict, which the probe batches of
kdrop's callbacks (`kdrop.callbacks.base`) are also read by."""

import collections

import keras
import numpy as np
from keras import ops

from kdrop import keras_internals, validation


def model_graph(model, caller):
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


def as_array(value):
    # Backend tensors stay as they are (a TensorFlow string tensor has no
    # numpy form that predict accepts); the rest becomes numpy.
    return value if ops.is_tensor(value) else np.asarray(value)


def input_names(struct):
    """The keys by which a dict of arrays feeds the inputs of `struct` (a
    Functional graph's input structure), in the order of
    `keras.tree.flatten(struct)`: the structure's own keys for a dict of
    inputs (a dict flattens in sorted key order), else the inputs' names."""
    if isinstance(struct, dict):
        return sorted(struct)
    return [spec.name for spec in keras.tree.flatten(struct)]


def flat_inputs(graph, x):
    """`x` as a list of arrays in the order of `graph`'s inputs (or, for a
    subclassed model, of `keras.tree.flatten(x)`), and their structure."""
    if graph is None:
        flat = [as_array(value) for value in keras.tree.flatten(x)]
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
        names = input_names(struct)
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
    flat = [as_array(value) for value in flat]
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


def input_batches(x):
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

"""Every layer of a model, with a path that names it uniquely.

`model.layers` lists only the top level, and `layer.name` is unique only
within one model: two sub-models built by one helper function both hold a
layer named "drop". A path joins the names from the top model down,
"encoder/block_1/drop", and also reaches layers held inside other layers
(MultiHeadAttention's dropout, a custom block's keras.layers.Dropout, an
LSTM's cell).
"""

import keras

from kdrop import keras_internals


def walk(model):
    """Returns `[(path, layer)]` for every layer inside `model`.

    Depth first, in the order Keras tracks them, parents before their
    sub-layers; `model` itself and InputLayers are not listed. A layer
    reached twice (shared by two sub-models) is listed once, at its first
    path. Paths are unique: where two children of one parent share a name,
    the later ones get "_2", "_3", ... appended (skipping names a sibling
    already has).

    Args:
        model: a `keras.Model` or any `keras.layers.Layer`.

    Example:

    ```pycon
    >>> [path for path, _ in walk(model)]
    ['encoder', 'encoder/dense', 'encoder/drop', 'decoder', 'decoder/dense', ...]
    ```
    """
    found, seen = [], {id(model)}

    def visit(layer, prefix):
        children = [
            child
            for child in keras_internals.direct_sublayers(layer)
            if id(child) not in seen and not isinstance(child, keras.layers.InputLayer)
        ]
        # A suffixed name must not be a sibling's own name either.
        used = {child.name for child in children}
        first = set()
        for child in children:
            if id(child) in seen:  # reached through an earlier sibling
                continue
            seen.add(id(child))
            name, copy = child.name, 1
            if name in first:
                while name in used:
                    copy += 1
                    name = f"{child.name}_{copy}"
                used.add(name)
            first.add(child.name)
            path = f"{prefix}{name}"
            found.append((path, child))
            visit(child, f"{path}/")

    visit(model, "")
    return found


def find(model, path):
    """The layer of `model` at `path` (as given by `walk`).

    Raises:
        ValueError: naming the path and listing the paths that exist.
    """
    paths = dict(walk(model))
    if path not in paths:
        raise ValueError(
            f"Model '{model.name}' has no layer at path {path!r}. Layer paths: "
            f"{sorted(paths)}."
        )
    return paths[path]


def resolve(model, items, argument):
    """`[(path, layer)]` of `items`, each a layer of `model` or its path
    (as given by `walk`), in the order of `items`.

    Args:
        model: a `keras.Model` or any `keras.layers.Layer`.
        items: layers and layer paths.
        argument: the name of the argument `items` came from, for errors.

    Raises:
        ValueError: naming `argument`, the first entry that is no layer of
            `model` (a path it lacks, or a layer of another model) and the
            paths that exist.
    """
    walked = walk(model)
    layers = dict(walked)
    paths = {id(layer): path for path, layer in walked}
    resolved = []
    for item in items:
        path = item if isinstance(item, str) else paths.get(id(item))
        if path not in layers:
            raise ValueError(
                f"`{argument}` entry {item!r} is not a layer of model "
                f"'{model.name}'. Layer paths: {[p for p, _ in walked]}."
            )
        resolved.append((path, layers[path]))
    return resolved

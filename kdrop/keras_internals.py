"""Every use of a private Keras API in kdrop, one function each.

Keras 3 has no public API for these; each function says which Keras
versions it was checked on, and tests/test_keras_internals.py checks each
one, so a Keras upgrade that changes them fails there first.
"""


def direct_sublayers(layer):
    """The layers `layer` holds directly (not their own sub-layers).

    Keras tracks a layer's sub-layers (attributes, lists and dicts of layers)
    in `Layer._layers`, exposed by `_flatten_layers`. Checked on Keras 3.15.
    """
    return list(layer._flatten_layers(include_self=False, recursive=False))


def own_seed_generators(layer):
    """The `keras.random.SeedGenerator`s `layer` holds itself (not those of
    its sub-layers). Checked on Keras 3.15 (`Layer._seed_generators`)."""
    return list(getattr(layer, "_seed_generators", ()))

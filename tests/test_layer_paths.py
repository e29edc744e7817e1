"""kdrop.layer_paths: unique paths to every layer, nested ones included."""

import keras
import pytest

from kdrop import layer_paths, registry
from tests import model_zoo


def test_nested_models_with_repeated_names_get_distinct_paths():
    model, _ = model_zoo.nested()
    paths = dict(layer_paths.walk(model))
    assert list(paths) == [
        "encoder",
        "encoder/dense",
        "encoder/drop",
        "decoder",
        "decoder/dense",
        "decoder/drop",
        "out",
    ]
    assert paths["encoder/drop"].rate == 0.1
    assert paths["decoder/drop"].rate == 0.6
    assert layer_paths.find(model, "decoder/drop") is paths["decoder/drop"]


def test_layers_inside_layers_are_reached():
    model, _ = model_zoo.transformer()
    block = model.get_layer("block")
    dropouts = {
        path: layer
        for path, layer in layer_paths.walk(model)
        if registry.is_dropout_like(layer)
    }
    assert set(dropouts.values()) == {
        block.att._dropout_layer,
        block.dropout1,
        block.dropout2,
        model.get_layer("head_drop"),
    }
    assert all(path.startswith("block/") for path in list(dropouts)[:3])


def test_siblings_sharing_a_name_are_suffixed_without_collisions():
    class Holder(keras.layers.Layer):
        def __init__(self):
            super().__init__(name="holder")
            # Two sub-layers named "d", and one already named "d_2".
            self.a = keras.layers.Dropout(0.1, name="d")
            self.b = keras.layers.Dropout(0.2, name="d")
            self.c = keras.layers.Dropout(0.3, name="d_2")

    holder = Holder()
    paths = {path: layer.rate for path, layer in layer_paths.walk(holder)}
    assert paths == {"d": 0.1, "d_3": 0.2, "d_2": 0.3}


def test_a_shared_layer_is_listed_once():
    shared = keras.layers.Dense(3, name="shared")
    inputs = keras.Input((3,))
    outputs = shared(shared(inputs))
    sub = keras.Model(inputs, outputs, name="sub")
    top_in = keras.Input((3,))
    model = keras.Model(top_in, shared(sub(top_in)))
    assert [path for path, _ in layer_paths.walk(model)] == ["sub", "sub/shared"]


def test_find_names_the_missing_path_and_the_existing_ones():
    model, _ = model_zoo.nested()
    with pytest.raises(
        ValueError, match=r"no layer at path 'middle/drop'.*decoder/drop"
    ):
        layer_paths.find(model, "middle/drop")


def test_resolve_takes_layers_and_paths_and_names_the_argument_of_a_stranger():
    model, _ = model_zoo.nested()
    walked = layer_paths.walk(model)
    (first_path, first), (last_path, last) = walked[0], walked[-1]
    assert layer_paths.resolve(model, [last, first_path], "layers") == [
        (last_path, last),
        (first_path, first),
    ]
    stranger = keras.layers.Dense(1, name="stranger")
    for entry in ("middle/drop", stranger):
        with pytest.raises(
            ValueError,
            match=rf"`histograms` entry {entry!r} is not a layer of model "
            rf"'{model.name}'\. Layer paths: \['",
        ):
            layer_paths.resolve(model, [first, entry], "histograms")


@pytest.mark.parametrize("build", model_zoo.zoo_params())
def test_every_zoo_model_predicts_and_holds_dropout(build):
    model, x = build()
    outputs = keras.tree.flatten(model.predict(x, verbose=0))
    assert all(keras.ops.all(keras.ops.isfinite(out)) for out in outputs)
    paths = [path for path, layer in layer_paths.walk(model)]
    assert len(paths) == len(set(paths))
    assert any(registry.is_dropout_like(layer) for _, layer in layer_paths.walk(model))

"""fold_dropout, mc_predict and .keras round trips on every zoo model.

Each feature either works on a model, checked against an independent
reference (the original model's `predict`, analytic Bernoulli moments), or
raises a clear error listed in docs/errors.md; and the original model is
left exactly as it was (variables, random state, predictions).
"""

import warnings

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from tests import model_zoo

# float16 layers round to about 1e-3 relative.
TOLERANCE = {"mixed_precision": {"rtol": 1e-2, "atol": 1e-2}}
DEFAULT_TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def tolerance(build):
    return TOLERANCE.get(build.__name__, DEFAULT_TOLERANCE)


def flat_predict(model, x):
    return [np.asarray(out) for out in keras.tree.flatten(model.predict(x, verbose=0))]


def state(model):
    """Every variable's value: weights, seed-generator states, steps."""
    return [ops.convert_to_numpy(variable).copy() for variable in model.variables]


def assert_same_state(model, before):
    for got, expected in zip(state(model), before, strict=True):
        np.testing.assert_array_equal(got, expected)


def assert_same_predictions(model, x, predictions):
    for got, expected in zip(flat_predict(model, x), predictions, strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("build", model_zoo.zoo_params())
def test_fold_dropout_equals_predict_or_refuses_clearly(build):
    model, x = build()
    # Keras's LSTM/GRU advance their seed even in predict: state after it.
    predictions = flat_predict(model, x)
    before = state(model)
    if not kdrop.keras_internals.functional_graph(model):
        with pytest.raises(TypeError, match="subclassed model.*serve it as it is"):
            kdrop.fold_dropout(model)
        return
    folded = kdrop.fold_dropout(model)
    assert_same_state(model, before)
    for got, expected in zip(flat_predict(folded, x), predictions, strict=True):
        np.testing.assert_allclose(got, expected, **tolerance(build))
    graph_layers = [
        layer
        for graph in [folded]
        + [sub for sub in folded.layers if isinstance(sub, keras.Model)]
        for layer in graph.layers
    ]
    assert not any(
        kdrop.registry.inference_kind(layer)
        in (kdrop.registry.IDENTITY, kdrop.registry.SCALE_BY_KEEP)
        for layer in graph_layers
    )
    assert_same_predictions(model, x, predictions)


@pytest.mark.parametrize("build", model_zoo.zoo_params())
def test_mc_predict_at_rate_zero_equals_predict(build):
    model, x = build(zero=True)
    predictions = flat_predict(model, x)
    before = state(model)
    result = kdrop.mc_predict(model, x, samples=3, seed=0)
    assert_same_state(model, before)
    means, stds = keras.tree.flatten(result.mean), keras.tree.flatten(result.std)
    for mean, std, expected in zip(means, stds, predictions, strict=True):
        np.testing.assert_allclose(mean, expected, **tolerance(build))
        np.testing.assert_allclose(std, 0.0, atol=tolerance(build)["atol"])
    assert_same_predictions(model, x, predictions)


@pytest.mark.parametrize("build", model_zoo.zoo_params())
def test_mc_predict_samples_every_dropout_and_leaves_the_model_untouched(build):
    model, x = build()
    predictions = flat_predict(model, x)
    before = state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing left unsampled
        result = kdrop.mc_predict(model, x, samples=8, seed=0)
        again = kdrop.mc_predict(model, x, samples=8, seed=0)
    assert_same_state(model, before)
    for std in keras.tree.flatten(result.std):
        assert std.max() > 0
    for first, second in zip(
        keras.tree.flatten(result.mean), keras.tree.flatten(again.mean), strict=True
    ):
        np.testing.assert_array_equal(first, second)  # seeded
    assert_same_predictions(model, x, predictions)


@pytest.mark.parametrize("build", model_zoo.zoo_params())
def test_keras_round_trip(build, tmp_path):
    model, x = build()
    predictions = flat_predict(model, x)
    path = tmp_path / "model.keras"
    model.save(path)
    if any(
        isinstance(layer, keras.layers.Lambda)
        for _, layer in kdrop.layer_paths.walk(model)
    ):
        # Keras's own, clear refusal: a Lambda's code is only loaded when
        # the file is trusted.
        with pytest.raises(ValueError, match="safe_mode=False"):
            keras.models.load_model(path)
        loaded = keras.models.load_model(path, safe_mode=False)
    else:
        loaded = keras.models.load_model(path)
    for got, expected in zip(flat_predict(loaded, x), predictions, strict=True):
        np.testing.assert_allclose(got, expected, **tolerance(build))


@pytest.mark.parametrize(
    "build",
    [model_zoo.tabular_normalized, model_zoo.scheduled_mlp],
    ids=lambda b: b.__name__,
)
def test_a_folded_model_round_trips_with_its_adapted_state(build, tmp_path):
    model, x = build()
    path = tmp_path / "folded.keras"
    kdrop.fold_dropout(model).save(path)
    loaded = keras.models.load_model(path, safe_mode=False)  # a Lambda layer
    for got, expected in zip(
        flat_predict(loaded, x), flat_predict(model, x), strict=True
    ):
        np.testing.assert_allclose(got, expected, **DEFAULT_TOLERANCE)

"""fold_dropout and mc_predict on Functional graphs holding keras.ops calls.

`x + h`, `keras.ops.tanh(h)` and the `NotEqual` that Keras inserts for
`Embedding(mask_zero=True)` are operation nodes, not layers: no weights,
no sub-layers, no `training`. They are deterministic, so MC dropout runs
them as they are, and a fold factor crosses only the known
scale-commuting ones (a reshape), else stays as a Rescaling.
"""

import keras
import numpy as np
import pytest

import kdrop
from tests import model_zoo

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def predict(model, x):
    return np.asarray(model.predict(x, verbose=0))


def weight_scaled_tanh():
    """Dense -> WeightScaledDropout(0.5) -> keras.ops.tanh -> Dense: the
    factor must not cross the tanh."""
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(6, name="hidden")(inputs)
    hidden = kdrop.layers.WeightScaledDropout(0.5, name="drop")(hidden)
    hidden = keras.ops.tanh(hidden)
    outputs = keras.layers.Dense(2, name="out")(hidden)
    return keras.Model(inputs, outputs), np.linspace(-2, 2, 15).reshape(3, 5)


def weight_scaled_reshape():
    """WeightScaledDropout(0.5) -> keras.ops.reshape -> Dense: the factor
    crosses the reshape into the Dense kernel."""
    inputs = keras.Input((2, 3))
    hidden = kdrop.layers.WeightScaledDropout(0.5, name="drop")(inputs)
    hidden = keras.ops.reshape(hidden, (-1, 6))
    outputs = keras.layers.Dense(2, name="out")(hidden)
    return keras.Model(inputs, outputs), np.linspace(-2, 2, 18).reshape(3, 2, 3)


@pytest.mark.parametrize(
    "build",
    [model_zoo.residual_ops, model_zoo.masked_text, weight_scaled_tanh],
    ids=lambda build: build.__name__,
)
def test_fold_dropout_keeps_operation_nodes(build):
    model, x = build()
    folded = kdrop.fold_dropout(model)
    np.testing.assert_allclose(predict(folded, x), predict(model, x), **TOLERANCE)
    assert not any(
        kdrop.registry.inference_kind(layer)
        in (kdrop.registry.IDENTITY, kdrop.registry.SCALE_BY_KEEP)
        for layer in folded.layers
    )


def test_fold_factor_stays_before_a_tanh_and_crosses_a_reshape():
    model, _ = weight_scaled_tanh()
    folded = kdrop.fold_dropout(model)
    assert isinstance(folded.get_layer("drop"), keras.layers.Rescaling)

    model, x = weight_scaled_reshape()
    folded = kdrop.fold_dropout(model)
    assert isinstance(folded.get_layer("drop"), keras.layers.Identity)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(folded.get_layer("out").kernel),
        0.5 * keras.ops.convert_to_numpy(model.get_layer("out").kernel),
    )
    np.testing.assert_allclose(predict(folded, x), predict(model, x), **TOLERANCE)


def test_mc_predict_through_residual_operations_matches_bernoulli():
    model, x = model_zoo.residual_ops()
    samples, keep = 4000, 0.5
    result = kdrop.mc_predict(model, x, samples=samples, seed=0)
    x = x.astype(np.float64)
    dropped_in = np.tanh(x / keep)
    mean = x.sum(axis=1) + keep * dropped_in.sum(axis=1)
    std = np.sqrt(keep * (1 - keep) * (dropped_in**2).sum(axis=1))
    # Within 5 standard errors of the mean and of the std.
    np.testing.assert_allclose(
        result.mean[:, 0], mean, atol=5 * std.max() / np.sqrt(samples)
    )
    np.testing.assert_allclose(
        result.std[:, 0], std, atol=5 * std.max() / np.sqrt(2 * samples)
    )


def test_mc_predict_on_masked_embedding_text_classifier_matches_bernoulli():
    model, x = model_zoo.masked_text()
    samples, keep = 3000, 0.5
    result = kdrop.mc_predict(model, x, samples=samples, seed=0)
    # Reference: the LSTM's (deterministic) output through numpy Bernoulli
    # masks, the inverted-dropout scale and the Dense sigmoid.
    features = keras.Model(model.inputs, model.get_layer("lstm").output)
    h = np.asarray(features.predict(x, verbose=0), np.float64)
    kernel, bias = (
        keras.ops.convert_to_numpy(w) for w in model.get_layer("out").weights
    )
    rng = np.random.default_rng(0)
    masks = rng.random((20000,) + h.shape) < keep
    logits = (masks * h / keep) @ kernel.astype(np.float64) + bias
    draws = 1 / (1 + np.exp(-logits[..., 0]))
    spread = draws.std(axis=0)
    np.testing.assert_allclose(
        result.mean[:, 0], draws.mean(axis=0), atol=5 * spread.max() / np.sqrt(samples)
    )
    np.testing.assert_allclose(
        result.std[:, 0], spread, atol=5 * spread.max() / np.sqrt(samples) + 1e-3
    )
    assert result.std.min() > 0

"""fold_dropout and mc_predict against numpy references."""

import math

import keras
import numpy as np
import pytest

import kdrop
from kdrop import schedules

RNG = np.random.default_rng(0)


def predict(model, x):
    outputs = model.predict(x, verbose=0)
    return outputs if isinstance(outputs, list) else [outputs]


def assert_same_predictions(folded, model, x):
    for got, expected in zip(predict(folded, x), predict(model, x)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def dropout_layers(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, kdrop.inference.DROPOUT_LAYERS)]


def snapshot(model):
    return [w.copy() for w in model.get_weights()]


def test_fold_sequential_cnn_into_dense_kernel(tmp_path):
    model = keras.Sequential([
        keras.Input((10, 10, 2)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        kdrop.WeightScaledDropout(0.4),
        keras.layers.Dense(3, name="head"),
    ])
    before = snapshot(model)
    x = RNG.normal(size=(8, 10, 10, 2)).astype("float32")
    folded = kdrop.fold_dropout(model)

    assert_same_predictions(folded, model, x)
    assert dropout_layers(folded) == []
    head, original_head = folded.get_layer("head"), model.get_layer("head")
    np.testing.assert_allclose(head.kernel.numpy(), 0.6 * original_head.kernel.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(head.bias.numpy(), original_head.bias.numpy())
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in folded.layers)
    for got, expected in zip(model.get_weights(), before):  # original untouched
        np.testing.assert_array_equal(got, expected)
    assert head.kernel is not original_head.kernel  # copied, not shared

    path = tmp_path / "folded.keras"
    folded.save(path)
    assert_same_predictions(keras.saving.load_model(path), model, x)


def test_fold_functional_branches_multi_output():
    inputs = [keras.Input((5,), name="a"), keras.Input((3,), name="b")]
    hidden = keras.layers.Dense(8, activation="relu")(inputs[0])
    left = kdrop.InvertedDropout(0.3)(hidden)
    right = keras.layers.Dropout(0.2)(keras.layers.Dense(8)(inputs[1]))
    merged = kdrop.WeightScaledDropout(0.5)(keras.layers.Concatenate()([left, right]))
    out_folded = keras.layers.Dense(2, name="folded")(keras.layers.ReLU()(merged))
    shared = kdrop.WeightScaledDropout(0.25)(hidden)  # feeds two layers
    out_shared = keras.layers.Add()([keras.layers.Dense(8)(shared), shared])
    through_sigmoid = keras.layers.Dense(1)(
        keras.layers.Activation("sigmoid")(kdrop.WeightScaledDropout(0.1)(hidden)))
    model = keras.Model(inputs, [out_folded, out_shared, through_sigmoid])
    x = [RNG.normal(size=(6, 5)).astype("float32"), RNG.normal(size=(6, 3)).astype("float32")]

    folded = kdrop.fold_dropout(model)
    assert_same_predictions(folded, model, x)
    assert dropout_layers(folded) == []
    np.testing.assert_allclose(
        folded.get_layer("folded").kernel.numpy(), 0.5 * model.get_layer("folded").kernel.numpy(), rtol=1e-6)
    scales = sorted(layer.scale for layer in folded.layers if isinstance(layer, keras.layers.Rescaling))
    assert scales == [pytest.approx(0.75), pytest.approx(0.9)]


def test_fold_scheduled_dropout_at_its_current_rate():
    layer = kdrop.ScheduledDropout(schedules.Linear(0.0, 0.6, 10), mode="weight_scaled")
    model = keras.Sequential([keras.Input((4,)), layer, keras.layers.Dense(2, name="head")])
    layer.step = 5  # rate 0.3
    folded = kdrop.fold_dropout(model)
    x = RNG.normal(size=(3, 4)).astype("float32")
    assert_same_predictions(folded, model, x)
    np.testing.assert_allclose(
        folded.get_layer("head").kernel.numpy(), 0.7 * model.get_layer("head").kernel.numpy(), rtol=1e-6)
    assert layer.step == 5


def test_fold_model_without_dropout_returns_equal_copy():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.warns(UserWarning, match="no dropout layer.*equivalent copy"):
        folded = kdrop.fold_dropout(model)
    assert folded is not model
    assert_same_predictions(folded, model, RNG.normal(size=(2, 3)).astype("float32"))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


@pytest.mark.parametrize("function", [kdrop.fold_dropout, lambda m: kdrop.mc_predict(m, np.ones((1, 3)))])
def test_subclassed_models_get_a_clear_error(function):
    model = Subclassed()
    model(np.ones((1, 3), "float32"))
    with pytest.raises(TypeError, match="Subclassed.*Functional"):
        function(model)


def linear_readout_model(rate, weights):
    """x -> WeightScaledDropout(rate) -> Dense(1, weights w, no bias)."""
    model = keras.Sequential([
        keras.Input((len(weights),)),
        kdrop.WeightScaledDropout(rate),
        keras.layers.Dense(1, use_bias=False),
    ])
    model.layers[-1].kernel.assign(weights.reshape(-1, 1))
    return model


def test_mc_mean_and_variance_converge_to_the_analytic_values():
    weights = RNG.normal(size=40).astype("float32")
    x = RNG.normal(size=(5, 40)).astype("float32")
    keep, samples = 0.6, 2000
    model = linear_readout_model(1 - keep, weights)
    result = kdrop.mc_predict(model, x, samples=samples, seed=1)

    inference = model.predict(x, verbose=0)
    variance = (weights**2 * x**2).sum(axis=1) * keep * (1 - keep)  # sum of Bernoulli terms
    std = np.sqrt(variance)
    np.testing.assert_array_less(np.abs(result.mean[:, 0] - inference[:, 0]), 5 * std / math.sqrt(samples))
    # The sample std of S draws has a standard error of about std / sqrt(2 S).
    np.testing.assert_array_less(np.abs(result.std[:, 0] - std), 5 * std / math.sqrt(2 * samples) + 1e-3)
    assert result.entropy is None and result.samples == samples


def test_mc_keeps_batch_normalization_in_inference_mode():
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(2, name="out")])
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.full(4, 5.0, "float32"))
    bn.moving_variance.assign(np.full(4, 4.0, "float32"))
    x = RNG.normal(size=(16, 4)).astype("float32")  # batch statistics ~ (0, 1)
    with pytest.warns(UserWarning, match="no dropout layer.*std is zero"):
        result = kdrop.mc_predict(model, x, samples=5)
    normalized = (x - 5.0) / np.sqrt(4.0 + bn.epsilon)
    out = model.get_layer("out")
    expected = normalized @ out.kernel.numpy() + out.bias.numpy()
    np.testing.assert_allclose(result.mean, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.std, 0.0, atol=1e-5)  # no dropout: no spread


def test_mc_entropy_seed_and_schedule_untouched():
    layer = kdrop.ScheduledDropout(schedules.Constant(0.5))
    model = keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(16, activation="relu"), layer,
        keras.layers.Dropout(0.3), keras.layers.Dense(4, activation="softmax")])
    x = RNG.normal(size=(10, 6)).astype("float32")
    first = kdrop.mc_predict(model, x, samples=20, batch_size=64, seed=3)
    again = kdrop.mc_predict(model, x, samples=20, batch_size=64, seed=3)
    other = kdrop.mc_predict(model, x, samples=20, batch_size=64, seed=4)
    np.testing.assert_array_equal(first.mean, again.mean)
    assert not np.allclose(first.mean, other.mean)
    p = np.clip(first.mean, 1e-12, 1)
    np.testing.assert_allclose(first.entropy, -(p * np.log(p)).sum(axis=1), rtol=1e-10)
    np.testing.assert_allclose(first.mean.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(first.std > 0)
    assert layer.step == 0


def test_mc_batch_size_does_not_change_the_estimate_beyond_noise():
    weights = np.ones(20, "float32")
    x = np.ones((3, 20), "float32")
    model = linear_readout_model(0.5, weights)
    for batch_size in (1, 7, 1000):
        result = kdrop.mc_predict(model, x, samples=400, batch_size=batch_size, seed=0)
        std_of_mean = math.sqrt(20 * 0.25 / 400)
        np.testing.assert_array_less(np.abs(result.mean[:, 0] - 10.0), 5 * std_of_mean)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"samples": 0}, ValueError, ["samples", "0"]),
        ({"batch_size": -1}, ValueError, ["batch_size", "-1"]),
        ({"seed": "x"}, TypeError, ["seed", "'x'"]),
        ({"x": np.ones((2, 5))}, ValueError, ["x", "(None, 4)", "(2, 5)"]),
    ],
)
def test_mc_bad_arguments(kwargs, error, words):
    model = linear_readout_model(0.5, np.ones(4, "float32"))
    arguments = {"x": np.ones((2, 4), "float32"), **kwargs}
    with pytest.raises(error) as info:
        kdrop.mc_predict(model, **arguments)
    for word in words:
        assert word in str(info.value)

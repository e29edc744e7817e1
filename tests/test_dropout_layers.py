"""InvertedDropout and WeightScaledDropout against numpy references."""

import math

import keras
import numpy as np
import pytest
from keras import ops

import kdrop

N = 1_000_000
LAYERS = [kdrop.InvertedDropout, kdrop.WeightScaledDropout]


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def binomial_tolerance(p, n, sigmas=5.0):
    return sigmas * math.sqrt(p * (1.0 - p) / n)


# The seed articles' two conventions, written independently of kdrop.
def vanilla_dropout_reference(x, mask, keep_prob, training):
    return x * mask if training else x * keep_prob


def inverted_dropout_reference(x, mask, keep_prob, training):
    return x * mask / keep_prob if training else x


REFERENCES = {
    kdrop.InvertedDropout: inverted_dropout_reference,
    kdrop.WeightScaledDropout: vanilla_dropout_reference,
}


@pytest.fixture
def restore_policy():
    yield
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("layer_class", LAYERS)
@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_training_matches_reference_and_rate(layer_class, rate):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 2.0, size=(1000, 1000)).astype("float32")
    y = to_numpy(layer_class(rate, seed=1)(x, training=True))
    mask = (y != 0).astype(np.float64)

    zero_fraction = 1.0 - mask.mean()
    assert abs(zero_fraction - rate) < binomial_tolerance(rate, N)
    expected = REFERENCES[layer_class](x.astype(np.float64), mask, 1 - rate, True)
    np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_inference_is_exact(layer_class):
    x = np.random.default_rng(1).normal(size=(64, 32)).astype("float32")
    layer = layer_class(0.3)
    expected = REFERENCES[layer_class](x.astype(np.float64), None, 0.7, False)
    np.testing.assert_allclose(to_numpy(layer(x, training=False)), expected, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-6)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_expected_training_output_equals_inference_output(layer_class):
    rate, value = 0.4, 3.0
    x = np.full((1000, 1000), value, "float32")
    layer = layer_class(rate, seed=2)
    train_mean = to_numpy(layer(x, training=True)).mean()
    inference = to_numpy(layer(x, training=False))[0, 0]
    # Each training output is value * scale * Bernoulli(keep).
    scale = value / (1 - rate) if layer_class is kdrop.InvertedDropout else value
    std_of_mean = scale * math.sqrt(rate * (1 - rate) / N)
    assert abs(train_mean - inference) < 5 * std_of_mean


@pytest.mark.parametrize(
    "layer_class, inference_output", [(kdrop.InvertedDropout, 10000.0), (kdrop.WeightScaledDropout, 5000.0)]
)
def test_seed_002_worked_example(layer_class, inference_output):
    """All-ones input of 10000, dropout 0.5, Dense(1) with weights 1, no bias."""
    model = keras.Sequential(
        [
            keras.Input((10000,)),
            layer_class(0.5, seed=3),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
        ]
    )
    x = np.ones((1, 10000), "float32")
    assert to_numpy(model(x, training=False))[0, 0] == inference_output
    training = to_numpy(model(x, training=True))[0, 0]
    # Sum of 10000 Bernoulli(0.5), times 2 for inverted dropout.
    scale = inference_output / 5000.0
    assert abs(training - inference_output) < 5 * scale * math.sqrt(10000 * 0.25)


def test_seed_000_hundred_inputs_rate_point_three():
    layer = kdrop.InvertedDropout(0.3, seed=4)
    active = [
        int((to_numpy(layer(np.ones((1, 100), "float32"), training=True)) != 0).sum())
        for _ in range(200)
    ]
    # 200 draws of Binomial(100, 0.7): mean 70, std of the mean sqrt(21 / 200).
    assert abs(np.mean(active) - 70) < 5 * math.sqrt(100 * 0.21 / 200)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_noise_shape_drops_whole_feature_maps(layer_class):
    x = np.ones((64, 5, 5, 200), "float32")
    y = to_numpy(layer_class(0.5, noise_shape=(None, 1, 1, 200), seed=5)(x, training=True))
    kept = y != 0
    per_map = kept.reshape(64, 25, 200)
    # Every (example, channel) map is entirely kept or entirely dropped ...
    assert np.all(per_map.all(axis=1) | ~per_map.any(axis=1))
    # ... and the maps differ between examples (None takes the batch size).
    assert not np.all(per_map[0, 0] == per_map[1, 0])
    dropped_maps = 1.0 - per_map[:, 0, :].mean()
    assert abs(dropped_maps - 0.5) < binomial_tolerance(0.5, 64 * 200)


def test_noise_shape_shared_across_batch():
    x = np.ones((8, 300), "float32")
    y = to_numpy(kdrop.InvertedDropout(0.5, noise_shape=(1, 300), seed=6)(x, training=True))
    assert np.all(y == y[0])


def test_same_seed_same_masks_and_unseeded_layers_independent():
    x = np.ones((200, 500), "float32")
    a = to_numpy(kdrop.InvertedDropout(0.5, seed=7)(x, training=True))
    b = to_numpy(kdrop.InvertedDropout(0.5, seed=7)(x, training=True))
    np.testing.assert_array_equal(a, b)

    c = to_numpy(kdrop.InvertedDropout(0.5)(x, training=True)) != 0
    d = to_numpy(kdrop.InvertedDropout(0.5)(x, training=True)) != 0
    # Independent masks agree with probability keep^2 + rate^2 = 0.5.
    agreement = np.mean(c == d)
    assert abs(agreement - 0.5) < binomial_tolerance(0.5, c.size)


def test_successive_calls_draw_new_masks():
    layer = kdrop.WeightScaledDropout(0.5, seed=8)
    x = np.ones((100, 100), "float32")
    first = to_numpy(layer(x, training=True))
    second = to_numpy(layer(x, training=True))
    assert abs(np.mean(first == second) - 0.5) < binomial_tolerance(0.5, x.size)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_fit_uses_training_mode_and_predict_inference_mode(layer_class):
    model = keras.Sequential([keras.Input((50,)), layer_class(0.5, seed=9)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((32, 50), "float32")
    expected = REFERENCES[layer_class](x, None, 0.5, False)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected)
    # In training mode the loss against the inference output is positive: the
    # output is x * mask (/ keep), never equal to the inference output.
    train_loss = model.train_on_batch(x, expected)
    assert train_loss > 0.1
    assert model.evaluate(x, expected, verbose=0) == pytest.approx(0.0)


@pytest.mark.parametrize("layer_class", LAYERS)
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_outputs_compute_dtype(layer_class, policy, restore_policy):
    keras.config.set_dtype_policy(policy)
    layer = layer_class(0.5, seed=10)
    x = np.ones((4, 8), "float32")
    compute_dtype = policy.split("_")[1]
    for training in (True, False):
        assert keras.backend.standardize_dtype(layer(x, training=training).dtype) == compute_dtype


@pytest.mark.parametrize("layer_class", LAYERS)
def test_bfloat16_layer_dtype(layer_class):
    layer = layer_class(0.25, dtype="bfloat16", seed=11)
    y = layer(np.full((1000, 1000), 2.0, "float32"), training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    zero_fraction = float(np.mean(to_numpy(y) == 0))
    assert abs(zero_fraction - 0.25) < binomial_tolerance(0.25, N)


def test_masking_is_propagated():
    inputs = keras.Input((4,), dtype="int32")
    embedded = keras.layers.Embedding(10, 3, mask_zero=True)(inputs)
    dropped = kdrop.InvertedDropout(0.5)(embedded)
    assert kdrop.InvertedDropout(0.5).supports_masking
    model = keras.Model(inputs, dropped)
    mask = model.layers[-1].compute_mask(None, ops.convert_to_tensor([[1, 0, 2, 0]]) != 0)
    np.testing.assert_array_equal(to_numpy(mask), [[1, 0, 1, 0]])
    assert dropped._keras_mask is not None


@pytest.mark.parametrize("layer_class", LAYERS)
def test_config_and_registration(layer_class):
    layer = layer_class(0.3, noise_shape=(None, 1), seed=12, name="drop")
    config = layer.get_config()
    assert config["rate"] == 0.3 and config["noise_shape"] == (None, 1) and config["seed"] == 12
    clone = layer_class.from_config(config)
    assert (clone.rate, clone.noise_shape, clone.seed, clone.name) == (0.3, (None, 1), 12, "drop")
    assert keras.saving.get_registered_name(layer_class) == f"kdrop>{layer_class.__name__}"
    assert layer.compute_output_shape((None, 7)) == (None, 7)
    assert layer.keep_prob == pytest.approx(0.7)


def test_save_and_load_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8),
            kdrop.InvertedDropout(0.3, seed=1),
            kdrop.WeightScaledDropout(0.4, seed=2),
            keras.layers.Dense(2),
        ]
    )
    x = np.random.default_rng(2).normal(size=(5, 6)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.layers[2].rate == 0.4


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("layer_class", LAYERS)
def test_jit_compiled_training(layer_class):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(16, activation="relu"), layer_class(0.5), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=True)
    x = np.random.default_rng(3).normal(size=(64, 10)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    history = model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


@pytest.mark.parametrize("layer_class", LAYERS)
@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"rate": -0.1}, ValueError, ["rate", "-0.1", "[0, 1)"]),
        ({"rate": 1.0}, ValueError, ["rate", "1.0", "[0, 1)"]),
        ({"rate": float("nan")}, ValueError, ["rate", "nan"]),
        ({"rate": "0.5"}, TypeError, ["rate", "'0.5'", "str"]),
        ({"rate": True}, TypeError, ["rate", "True"]),
        ({"rate": 0.5, "seed": 1.5}, TypeError, ["seed", "1.5", "int"]),
        ({"rate": 0.5, "seed": "a"}, TypeError, ["seed", "'a'"]),
        ({"rate": 0.5, "noise_shape": (None, 0)}, ValueError, ["noise_shape", "(None, 0)"]),
        ({"rate": 0.5, "noise_shape": (None, 1.5)}, ValueError, ["noise_shape", "1.5"]),
        ({"rate": 0.5, "noise_shape": "abc"}, TypeError, ["noise_shape", "'abc'"]),
    ],
)
def test_bad_constructor_arguments(layer_class, kwargs, error, words):
    with pytest.raises(error) as info:
        layer_class(**kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "noise_shape, words",
    [((None, 1, 1), ["rank 2", "rank 3"]), ((None, 3), ["entry 1", "5", "(None, 3)"])],
)
def test_noise_shape_incompatible_with_input(noise_shape, words):
    layer = kdrop.InvertedDropout(0.5, noise_shape=noise_shape)
    with pytest.raises(ValueError) as info:
        layer(np.ones((2, 5), "float32"), training=True)
    assert "noise_shape" in str(info.value)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_integer_inputs_rejected(layer_class):
    with pytest.raises(TypeError) as info:
        layer_class(0.5)(np.ones((2, 3), "int32"), training=True)
    assert "int32" in str(info.value) and "floating-point" in str(info.value)

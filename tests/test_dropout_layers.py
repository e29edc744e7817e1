"""InvertedDropout and WeightScaledDropout against independent references.

The references never call kdrop: numpy transcriptions of cs231n's
"vanilla" (weight-scaled) and "inverted" dropout
(https://cs231n.github.io/neural-networks-2/#reg) applied with the layer's own
mask, Bernoulli and binomial statistics with 5-sigma tolerances, and
hand-computed SGD steps.
"""

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


def five_sigma(p, n):
    """5 standard deviations of the mean of n Bernoulli(p) draws."""
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


def positive_inputs(shape, seed=0):
    """Strictly positive inputs, so that `output != 0` is the layer's mask."""
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape).astype("float32")


# The two conventions (cs231n's "vanilla" and "inverted" dropout), written
# independently of kdrop.
def vanilla_dropout_reference(x, mask, keep_prob, training):
    return x * mask if training else x * keep_prob


def inverted_dropout_reference(x, mask, keep_prob, training):
    return x * mask / keep_prob if training else x


REFERENCES = {
    kdrop.InvertedDropout: inverted_dropout_reference,
    kdrop.WeightScaledDropout: vanilla_dropout_reference,
}
# What a kept unit is multiplied by in training, per unit of keep_prob.
TRAINING_SCALE = {
    kdrop.InvertedDropout: lambda keep: 1.0 / keep,
    kdrop.WeightScaledDropout: lambda keep: 1.0,
}


@pytest.fixture
def restore_policy():
    previous = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(previous)


# --- The two conventions -------------------------------------------------


@pytest.mark.parametrize("layer_class", LAYERS)
@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_training_matches_reference_and_rate(layer_class, rate):
    x = positive_inputs((1000, 1000))
    y = to_numpy(layer_class(rate, seed=1)(x, training=True))
    mask = (y != 0).astype(np.float64)

    assert abs((1.0 - mask.mean()) - rate) < five_sigma(rate, N)
    expected = REFERENCES[layer_class](x.astype(np.float64), mask, 1 - rate, True)
    # float32 rounding of x * (1 / keep) is at most a few ulps (rtol 1e-6).
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_inference_is_exact(layer_class):
    x = np.random.default_rng(1).normal(size=(64, 32)).astype("float32")
    keep = np.float32(1 - 0.3)
    # In float32, as IEEE multiplication gives it: bit-exact, no tolerance.
    expected = REFERENCES[layer_class](x, None, keep, False)
    layer = layer_class(0.3, seed=2)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(layer(x, training=False)), expected
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), expected)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_rate_zero_keeps_everything(layer_class):
    x = np.random.default_rng(3).normal(size=(50, 40)).astype("float32")
    layer = layer_class(0.0, seed=3)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=True)), x)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=False)), x)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_expected_training_output_equals_inference_output(layer_class):
    rate = 0.4
    x = positive_inputs((1000, 1000), seed=4)
    layer = layer_class(rate, seed=4)
    difference = to_numpy(layer(x, training=True)) - to_numpy(layer(x, training=False))
    # Each training output is x * scale * Bernoulli(keep), with variance
    # (x * scale)^2 * keep * rate; the mean difference is 0 in expectation.
    scale = TRAINING_SCALE[layer_class](1 - rate)
    variance_sum = np.sum((x.astype(np.float64) * scale) ** 2) * rate * (1 - rate)
    std_of_mean = math.sqrt(variance_sum) / x.size
    assert abs(difference.mean()) < 5 * std_of_mean


@pytest.mark.parametrize(
    "layer_class, inference_output",
    [(kdrop.InvertedDropout, 10000.0), (kdrop.WeightScaledDropout, 5000.0)],
)
def test_seed_002_worked_example(layer_class, inference_output):
    """All-ones input of 10000, dropout 0.5, Dense(1) with weights 1, no bias."""
    model = keras.Sequential(
        [
            keras.Input((10000,)),
            layer_class(0.5, seed=5),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
        ]
    )
    x = np.ones((1, 10000), "float32")
    assert to_numpy(model(x, training=False))[0, 0] == inference_output
    assert to_numpy(model(x))[0, 0] == inference_output
    training = to_numpy(model(x, training=True))[0, 0]
    # A sum of 10000 Bernoulli(0.5), times 2 for inverted dropout.
    scale = inference_output / 5000.0
    assert abs(training - inference_output) < 5 * scale * math.sqrt(10000 * 0.25)


def test_seed_000_hundred_inputs_rate_point_three():
    # 200 independent rows of 100 inputs: each row's count of active units
    # is Binomial(100, 0.7), mean 70 and standard deviation sqrt(21).
    y = to_numpy(
        kdrop.InvertedDropout(0.3, seed=6)(
            np.ones((200, 100), "float32"), training=True
        )
    )
    active = (y != 0).sum(axis=1)
    assert abs(active.mean() - 70) < 5 * math.sqrt(21 / 200)
    assert np.all(np.abs(active - 70) < 5 * math.sqrt(21))
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)


# --- noise_shape ---------------------------------------------------------


@pytest.mark.parametrize("layer_class", LAYERS)
def test_noise_shape_drops_whole_feature_maps(layer_class):
    batch, channels = 64, 200
    x = np.ones((batch, 5, 5, channels), "float32")
    layer = layer_class(0.5, noise_shape=(None, 1, 1, channels), seed=7)
    kept = (to_numpy(layer(x, training=True)) != 0).reshape(batch, 25, channels)
    # Every (example, channel) map is entirely kept or entirely dropped ...
    assert np.all(kept.all(axis=1) | ~kept.any(axis=1))
    # ... the None entry takes the batch size, so examples differ ...
    assert not np.array_equal(kept[0, 0], kept[1, 0])
    # ... and the fraction of dropped maps matches the rate.
    dropped_maps = 1.0 - kept[:, 0, :].mean()
    assert abs(dropped_maps - 0.5) < five_sigma(0.5, batch * channels)


def test_noise_shape_shared_across_batch():
    x = np.ones((8, 300), "float32")
    y = to_numpy(
        kdrop.InvertedDropout(0.5, noise_shape=(1, 300), seed=8)(x, training=True)
    )
    assert np.all(y == y[0])
    assert abs(np.mean(y[0] == 0) - 0.5) < five_sigma(0.5, 300)


# --- Random state --------------------------------------------------------


def test_same_seed_same_masks_and_unseeded_layers_independent():
    x = np.ones((200, 500), "float32")
    first, second = (
        kdrop.InvertedDropout(0.5, seed=9),
        kdrop.InvertedDropout(0.5, seed=9),
    )
    for _ in range(2):  # the whole sequence of masks repeats, not only the first
        np.testing.assert_array_equal(
            to_numpy(first(x, training=True)), to_numpy(second(x, training=True))
        )

    rate = 0.3
    c = to_numpy(kdrop.InvertedDropout(rate)(x, training=True)) != 0
    d = to_numpy(kdrop.InvertedDropout(rate)(x, training=True)) != 0
    # Independent masks agree with probability keep^2 + rate^2 = 0.58.
    agreement = (1 - rate) ** 2 + rate**2
    assert abs(np.mean(c == d) - agreement) < five_sigma(agreement, c.size)


def test_successive_calls_draw_new_masks():
    layer = kdrop.WeightScaledDropout(0.5, seed=10)
    x = np.ones((100, 100), "float32")
    first = to_numpy(layer(x, training=True))
    second = to_numpy(layer(x, training=True))
    assert abs(np.mean(first == second) - 0.5) < five_sigma(0.5, x.size)


# --- The training flag ---------------------------------------------------


@pytest.mark.parametrize("layer_class", LAYERS)
def test_fit_evaluate_predict_follow_training_flag(layer_class):
    rate, units = 0.5, 2000
    keep = 1 - rate
    model = keras.Sequential(
        [
            keras.Input((units,)),
            layer_class(rate, seed=11),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
        ]
    )
    # Loss = the output h . w itself, so with SGD(1) one step on one example
    # moves each weight by exactly -h_j, the dropout output fed to it.
    model.compile(
        optimizer=keras.optimizers.SGD(1.0), loss=lambda y_true, y_pred: y_pred
    )
    x = positive_inputs((1, units), seed=11)
    target = np.zeros((1, 1), "float32")
    inference = REFERENCES[layer_class](x.astype(np.float64), None, keep, False).sum()

    np.testing.assert_allclose(model.predict(x, verbose=0)[0, 0], inference, rtol=1e-5)
    np.testing.assert_allclose(
        model.evaluate(x, target, verbose=0), inference, rtol=1e-5
    )

    history = model.fit(x, target, epochs=1, batch_size=1, verbose=0)
    h = 1.0 - to_numpy(model.layers[-1].kernel)[:, 0]
    mask = (h != 0).astype(np.float64)
    assert abs((1 - mask.mean()) - rate) < five_sigma(rate, units)
    expected = REFERENCES[layer_class](x[0].astype(np.float64), mask, keep, True)
    np.testing.assert_allclose(h, expected, atol=1e-6)
    # The loss the step reported came from the same training-mode output.
    np.testing.assert_allclose(history.history["loss"][0], h.sum(), rtol=1e-5)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_nested_model_call_follows_training_flag(layer_class):
    inner = keras.Sequential([keras.Input((1000,)), layer_class(0.5, seed=12)])
    outer = keras.Sequential([keras.Input((1000,)), inner])
    x = positive_inputs((100, 1000), seed=12)
    expected = REFERENCES[layer_class](x, None, np.float32(0.5), False)
    np.testing.assert_array_equal(ops.convert_to_numpy(outer(x)), expected)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(outer(x, training=False)), expected
    )
    zero_fraction = np.mean(to_numpy(outer(x, training=True)) == 0)
    assert abs(zero_fraction - 0.5) < five_sigma(0.5, x.size)


# --- dtypes --------------------------------------------------------------


@pytest.mark.parametrize("layer_class", LAYERS)
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_outputs_compute_dtype(layer_class, policy, restore_policy):
    keras.config.set_dtype_policy(policy)
    layer = layer_class(0.5, seed=13)
    x = np.ones((200, 500), "float32")
    compute_dtype = policy.split("_")[1]
    train = layer(x, training=True)
    inference = layer(x, training=False)
    for y in (train, inference):
        assert keras.backend.standardize_dtype(y.dtype) == compute_dtype
    # 0, 0.5, 1 and 2 are exact in float16 and bfloat16.
    kept_value = TRAINING_SCALE[layer_class](0.5)
    train = to_numpy(train)
    assert set(np.unique(train)) == {0.0, kept_value}
    assert abs(np.mean(train == 0) - 0.5) < five_sigma(0.5, x.size)
    np.testing.assert_array_equal(
        to_numpy(inference), REFERENCES[layer_class](x, None, 0.5, False)
    )


@pytest.mark.parametrize("layer_class", LAYERS)
def test_bfloat16_layer_dtype(layer_class):
    rate = 0.3
    layer = layer_class(rate, dtype="bfloat16", seed=14)
    y = layer(np.full((1000, 1000), 2.0, "float32"), training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    # Uniforms drawn in bfloat16 (128 values in [0, 1) on TensorFlow) would
    # keep 90/128, i.e. drop 0.297 instead of 0.3: a 7-sigma bias here.
    zero_fraction = float(np.mean(to_numpy(y) == 0))
    assert abs(zero_fraction - rate) < five_sigma(rate, N)


# --- Keras integration ---------------------------------------------------


@pytest.mark.parametrize("layer_class", LAYERS)
def test_upstream_mask_reaches_masked_pooling(layer_class):
    tokens = keras.Input((4,), dtype="int32")
    embedding = keras.layers.Embedding(10, 3, mask_zero=True)
    dropped = layer_class(0.5, seed=15)(embedding(tokens))
    model = keras.Model(tokens, keras.layers.GlobalAveragePooling1D()(dropped))

    t = np.array([[1, 0, 2, 0], [3, 4, 5, 0]], "int32")
    vectors = to_numpy(embedding.embeddings)
    # With the mask, the pooling averages the non-padding positions only;
    # without it, it would also average the embedding of token 0.
    expected = np.stack([vectors[row[row != 0]].mean(axis=0) for row in t])
    expected = REFERENCES[layer_class](expected, None, 0.5, False)
    np.testing.assert_allclose(to_numpy(model(t, training=False)), expected, rtol=1e-6)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_config_and_registration(layer_class):
    layer = layer_class(0.3, noise_shape=(None, 1), seed=16, name="drop")
    config = layer.get_config()
    assert (config["rate"], config["noise_shape"], config["seed"]) == (
        0.3,
        (None, 1),
        16,
    )
    clone = layer_class.from_config(config)
    assert (clone.rate, clone.noise_shape, clone.seed, clone.name) == (
        0.3,
        (None, 1),
        16,
        "drop",
    )
    name = f"kdrop>{layer_class.__name__}"
    assert keras.saving.get_registered_name(layer_class) == name
    assert keras.saving.get_registered_object(name) is layer_class
    assert layer.compute_output_shape((None, 7)) == (None, 7)
    assert layer.keep_prob == pytest.approx(0.7)
    assert layer.supports_masking


def test_save_and_load_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8),
            kdrop.InvertedDropout(0.3, seed=1),
            kdrop.WeightScaledDropout(0.4, noise_shape=(None, 1), seed=2),
            keras.layers.Dense(2),
        ]
    )
    x = np.random.default_rng(17).normal(size=(5, 6)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers
    ]
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    restored = loaded.layers[2]
    assert (restored.rate, restored.noise_shape, restored.seed) == (0.4, (None, 1), 2)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("layer_class", LAYERS)
def test_jit_compiled_training(layer_class):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(16, activation="relu"),
            layer_class(0.5),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=True)
    initial = to_numpy(model.layers[0].kernel)
    x = np.random.default_rng(18).normal(size=(64, 10)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    history = model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert not np.allclose(to_numpy(model.layers[0].kernel), initial)


# --- Bad input -----------------------------------------------------------


@pytest.mark.parametrize("layer_class", LAYERS)
@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"rate": -0.1}, ValueError, ["rate", "-0.1", "[0, 1)"]),
        ({"rate": 1.0}, ValueError, ["rate", "1.0", "[0, 1)"]),
        ({"rate": 2}, ValueError, ["rate", "2.0", "[0, 1)"]),
        ({"rate": float("nan")}, ValueError, ["rate", "nan"]),
        ({"rate": "0.5"}, TypeError, ["rate", "'0.5'", "str"]),
        ({"rate": True}, TypeError, ["rate", "True", "bool"]),
        ({"rate": None}, TypeError, ["rate", "None"]),
        ({"rate": 0.5, "seed": 1.5}, TypeError, ["seed", "1.5", "int"]),
        ({"rate": 0.5, "seed": "a"}, TypeError, ["seed", "'a'", "int"]),
        (
            {"rate": 0.5, "noise_shape": (None, 0)},
            ValueError,
            ["noise_shape", "(None, 0)"],
        ),
        ({"rate": 0.5, "noise_shape": (None, 1.5)}, TypeError, ["noise_shape", "1.5"]),
        ({"rate": 0.5, "noise_shape": (None, "a")}, TypeError, ["noise_shape", "'a'"]),
        ({"rate": 0.5, "noise_shape": "abc"}, TypeError, ["noise_shape", "'abc'"]),
        ({"rate": 0.5, "noise_shape": 5}, TypeError, ["noise_shape", "5"]),
    ],
)
def test_bad_constructor_arguments(layer_class, kwargs, error, words):
    with pytest.raises(error) as info:
        layer_class(**kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "input_shape, noise_shape, words",
    [
        ((5,), (None, 1, 1), ["rank 2", "rank 3", "(None, 1, 1)"]),
        ((4, 4, 3), (None, 1, 3), ["rank 4", "rank 3"]),
        ((5,), (None, 3), ["entry 1", "size 5", "(None, 3)"]),
    ],
)
def test_noise_shape_incompatible_with_input(input_shape, noise_shape, words):
    # Raised while the model is built, before any training step.
    layer = kdrop.InvertedDropout(0.5, noise_shape=noise_shape)
    with pytest.raises(ValueError) as info:
        layer(keras.Input(input_shape))
    assert "noise_shape" in str(info.value)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_integer_inputs_rejected(layer_class):
    for inputs in (keras.Input((3,), dtype="int32"), np.ones((2, 3), "int32")):
        with pytest.raises(TypeError) as info:
            layer_class(0.5)(inputs, training=True)
        message = str(info.value)
        assert "int32" in message and "floating-point inputs" in message

"""fold_dropout and mc_predict against numpy references."""

import math

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from kdrop import schedules


def normal(*shape):
    # numpy's global generator, seeded per test by conftest.
    return np.random.normal(size=shape).astype("float32")


def as_numpy(variable):
    return ops.convert_to_numpy(variable)


def predict(model, x):
    outputs = model.predict(x, verbose=0)
    return outputs if isinstance(outputs, list) else [outputs]


def assert_same_predictions(folded, model, x):
    for got, expected in zip(predict(folded, x), predict(model, x), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def noise_layers(model):
    return [layer for _, layer in kdrop.sampling.dropout_like_layers(model)]


def rescaling_factors(model):
    return sorted(
        layer.scale
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.Rescaling)
    )


def snapshot(model):
    return [weight.copy() for weight in model.get_weights()]


def assert_unchanged(model, weights, x, predictions):
    for got, expected in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, expected)
    for got, expected in zip(predict(model, x), predictions, strict=True):
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------- fold_dropout


def test_fold_sequential_cnn_into_dense_kernel(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((10, 10, 2)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            kdrop.WeightScaledDropout(0.4),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ]
    )
    x = normal(8, 10, 10, 2)
    weights, predictions = snapshot(model), predict(model, x)
    folded = kdrop.fold_dropout(model)

    assert_same_predictions(folded, model, x)
    assert noise_layers(folded) == []
    assert rescaling_factors(folded) == []  # folded, not multiplied
    head, original_head = folded.get_layer("head"), model.get_layer("head")
    np.testing.assert_allclose(
        as_numpy(head.kernel), 0.6 * as_numpy(original_head.kernel), rtol=1e-6
    )
    np.testing.assert_array_equal(as_numpy(head.bias), as_numpy(original_head.bias))
    assert head.kernel is not original_head.kernel  # copied, not shared
    assert_unchanged(model, weights, x, predictions)

    path = tmp_path / "folded.keras"
    folded.save(path)
    assert_same_predictions(keras.saving.load_model(path), model, x)


def test_fold_functional_branches_several_inputs_and_outputs():
    inputs = [keras.Input((5,), name="a"), keras.Input((3,), name="b")]
    hidden = keras.layers.Dense(8, activation="relu")(inputs[0])
    left = kdrop.InvertedDropout(0.3)(hidden)
    right = keras.layers.Dropout(0.2)(keras.layers.Dense(8)(inputs[1]))
    merged = kdrop.WeightScaledDropout(0.5)(keras.layers.Concatenate()([left, right]))
    out_folded = keras.layers.Dense(2, name="folded")(keras.layers.ReLU()(merged))
    shared = kdrop.WeightScaledDropout(0.25)(hidden)  # feeds two layers
    out_shared = keras.layers.Add()([keras.layers.Dense(8)(shared), shared])
    through_sigmoid = keras.layers.Dense(1)(
        keras.layers.Activation("sigmoid")(kdrop.WeightScaledDropout(0.1)(hidden))
    )
    model = keras.Model(inputs, [out_folded, out_shared, through_sigmoid])
    x = [normal(6, 5), normal(6, 3)]
    weights, predictions = snapshot(model), predict(model, x)

    folded = kdrop.fold_dropout(model)
    assert_same_predictions(folded, model, x)
    assert noise_layers(folded) == []
    np.testing.assert_allclose(
        as_numpy(folded.get_layer("folded").kernel),
        0.5 * as_numpy(model.get_layer("folded").kernel),
        rtol=1e-6,
    )
    # The shared and the sigmoid cases stay as multiplies.
    assert rescaling_factors(folded) == [pytest.approx(0.75), pytest.approx(0.9)]
    assert_unchanged(model, weights, x, predictions)


def scaled(*layers, input_shape=(6, 6, 3)):
    """x -> WeightScaledDropout(0.3) -> layers."""
    return [keras.Input(input_shape), kdrop.WeightScaledDropout(0.3), *layers]


def conv_head(layer):
    return scaled(layer, keras.layers.Flatten(), keras.layers.Dense(2))


def lora_dense():
    dense = keras.layers.Dense(3)
    dense.build((None, 108))
    dense.enable_lora(2)
    return dense


FOLD_CASES = {
    # name: (layers, kernel attribute of the fold target "t" or None if kept)
    "Conv2D": (lambda: conv_head(keras.layers.Conv2D(2, 3, name="t")), "kernel"),
    "Conv2DTranspose": (
        lambda: conv_head(keras.layers.Conv2DTranspose(2, 3, name="t")),
        "kernel",
    ),
    "DepthwiseConv2D": (
        lambda: conv_head(keras.layers.DepthwiseConv2D(3, name="t")),
        "kernel",
    ),
    "SeparableConv2D": (
        lambda: conv_head(keras.layers.SeparableConv2D(2, 3, name="t")),
        "depthwise_kernel",
    ),
    "Conv1D through LeakyReLU": (
        lambda: scaled(
            keras.layers.LeakyReLU(0.2),
            keras.layers.Conv1D(2, 3, activation="sigmoid", name="t"),
            input_shape=(7, 3),
        ),
        "kernel",
    ),
    "EinsumDense": (
        lambda: scaled(
            keras.layers.EinsumDense("ab,bc->ac", output_shape=2, name="t"),
            input_shape=(5,),
        ),
        "kernel",
    ),
    "Dense through pooling, padding, upsampling, PReLU, Activation": (
        lambda: scaled(
            keras.layers.ZeroPadding2D(1),
            keras.layers.AveragePooling2D(2),
            keras.layers.UpSampling2D(2),
            keras.layers.PReLU(alpha_initializer="random_normal"),
            keras.layers.Activation("relu"),
            keras.layers.GlobalMaxPooling2D(),
            keras.layers.Dense(2, activation="tanh", name="t"),
        ),
        "kernel",
    ),
    "chain of two weight-scaled dropouts": (
        lambda: scaled(
            keras.layers.Flatten(),
            kdrop.WeightScaledDropout(0.5),
            keras.layers.Dense(2, name="t"),
        ),
        "kernel",
    ),
    "ReLU with max_value is kept": (
        lambda: scaled(
            keras.layers.ReLU(max_value=0.5),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ),
        None,
    ),
    "BatchNormalization is kept": (
        lambda: scaled(
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ),
        None,
    ),
    "LoRA Dense is kept": (lambda: scaled(keras.layers.Flatten(), lora_dense()), None),
}


@pytest.mark.parametrize(
    "layers, kernel_name", FOLD_CASES.values(), ids=FOLD_CASES.keys()
)
def test_fold_targets_and_layers_folded_through(layers, kernel_name):
    model = keras.Sequential(layers())
    for weight in model.weights:  # nonzero biases and statistics
        weight.assign(
            normal(*weight.shape) * 0.5 + (1.0 if "variance" in weight.path else 0.0)
        )
    x = normal(4, *model.input_shape[1:])
    folded = kdrop.fold_dropout(model)

    assert_same_predictions(folded, model, x)
    assert noise_layers(folded) == []
    keep = math.prod(
        layer.keep_prob
        for layer in model.layers
        if isinstance(layer, kdrop.WeightScaledDropout)
    )
    if kernel_name is None:
        assert rescaling_factors(folded) == [pytest.approx(keep)]
        return
    assert rescaling_factors(folded) == []
    got = as_numpy(getattr(folded.get_layer("t"), kernel_name))
    expected = as_numpy(getattr(model.get_layer("t"), kernel_name))
    np.testing.assert_allclose(got, keep * expected, rtol=1e-6)


def test_fold_scheduled_dropout_at_its_current_rate():
    weight_scaled = kdrop.ScheduledDropout(
        schedules.Linear(0.0, 0.6, 10), mode="weight_scaled"
    )
    inverted = kdrop.ScheduledDropout(schedules.Constant(0.5))
    model = keras.Sequential(
        [keras.Input((4,)), inverted, weight_scaled, keras.layers.Dense(2, name="head")]
    )
    weight_scaled.step = 5  # rate 0.3
    folded = kdrop.fold_dropout(model)
    assert_same_predictions(folded, model, normal(3, 4))
    np.testing.assert_allclose(
        as_numpy(folded.get_layer("head").kernel),
        0.7 * as_numpy(model.get_layer("head").kernel),
        rtol=1e-6,
    )
    assert noise_layers(folded) == []
    assert weight_scaled.step == 5 and inverted.step == 0


def test_fold_nested_model_and_keras_noise_layers():
    inner = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.GaussianNoise(1.0),
            kdrop.WeightScaledDropout(0.2),
            keras.layers.Dense(4, name="inner_head"),
        ],
        name="inner",
    )
    inputs = keras.Input((6,))
    hidden = keras.layers.AlphaDropout(0.1)(keras.layers.GaussianDropout(0.3)(inputs))
    # A factor does not cross the model boundary: kept as a multiply.
    outputs = inner(kdrop.WeightScaledDropout(0.5)(hidden))
    model = keras.Model(
        inputs,
        keras.layers.SpatialDropout1D(0.5)(keras.layers.Reshape((2, 2))(outputs)),
    )
    folded = kdrop.fold_dropout(model)

    assert_same_predictions(folded, model, normal(5, 6))
    assert noise_layers(folded) == []
    assert rescaling_factors(folded) == [pytest.approx(0.5)]
    np.testing.assert_allclose(
        as_numpy(folded.get_layer("inner").get_layer("inner_head").kernel),
        0.8 * as_numpy(inner.get_layer("inner_head").kernel),
        rtol=1e-6,
    )


def test_fold_model_without_dropout_returns_equal_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.warns(UserWarning, match="no dropout layer.*equivalent model"):
        folded = kdrop.fold_dropout(model)
    assert folded is not model
    # The same layer, state and all, but for its call nodes: the same weights.
    assert folded.layers[0].kernel is model.layers[0].kernel
    assert len(kdrop.keras_internals.call_nodes(model.layers[0])[0]) == 1
    assert_same_predictions(folded, model, normal(2, 3))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_fold_subclassed_model_gets_a_clear_error():
    model = Subclassed()
    model(np.ones((1, 3), "float32"))
    with pytest.raises(TypeError, match="subclassed model of type Subclassed.*serve"):
        kdrop.fold_dropout(model)


@pytest.mark.parametrize(
    "function", [kdrop.fold_dropout, lambda m: kdrop.mc_predict(m, np.ones((1, 3)))]
)
def test_unbuilt_models_and_non_models_get_clear_errors(function):
    with pytest.raises(ValueError, match="built Sequential.*keras.Input"):
        function(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(TypeError, match="needs a keras.Model.*Dense"):
        function(keras.layers.Dense(2))


# ------------------------------------------------------------------ mc_predict


def linear_readout_model(dropout, weights, input_shape=None):
    """x -> dropout -> Dense(1, weights w, no bias)."""
    model = keras.Sequential(
        [
            keras.Input(input_shape or (len(weights),)),
            dropout,
            keras.layers.Flatten(),
            keras.layers.Dense(1, use_bias=False),
        ]
    )
    model.layers[-1].kernel.assign(weights.reshape(-1, 1))
    return model


def mid_schedule_dropout(mode):
    layer = kdrop.ScheduledDropout(schedules.Linear(0.0, 0.8, 10), mode=mode)
    layer.step = 5  # rate 0.4
    return layer


# dropout, keep probability, factor applied to kept units while sampling
BERNOULLI_CASES = {
    "WeightScaledDropout": (lambda: kdrop.WeightScaledDropout(0.4), 0.6, 1.0),
    "ScheduledDropout weight_scaled": (
        lambda: mid_schedule_dropout("weight_scaled"),
        0.6,
        1.0,
    ),
    "ScheduledDropout inverted": (
        lambda: mid_schedule_dropout("inverted"),
        0.6,
        1 / 0.6,
    ),
    "InvertedDropout": (lambda: kdrop.InvertedDropout(0.4), 0.6, 1 / 0.6),
    "keras Dropout": (lambda: keras.layers.Dropout(0.4), 0.6, 1 / 0.6),
}


@pytest.mark.parametrize(
    "make_dropout, keep, factor", BERNOULLI_CASES.values(), ids=BERNOULLI_CASES.keys()
)
def test_mc_mean_and_std_converge_to_the_bernoulli_values(make_dropout, keep, factor):
    weights, x, samples = normal(40), normal(5, 40), 2000
    model = linear_readout_model(make_dropout(), weights)
    result = kdrop.mc_predict(model, x, samples=samples, seed=1)

    # y = sum_i w_i x_i m_i factor, m_i ~ Bernoulli(keep) independent.
    mean = factor * keep * (x @ weights)
    std = factor * np.sqrt(keep * (1 - keep) * (weights**2 * x**2).sum(axis=1))
    np.testing.assert_allclose(
        mean, model.predict(x, verbose=0)[:, 0], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_less(
        np.abs(result.mean[:, 0] - mean), 5 * std / math.sqrt(samples)
    )
    # A sum of 40 such terms is close to normal: the sample std has a
    # standard error of about std / sqrt(2 S).
    np.testing.assert_array_less(
        np.abs(result.std[:, 0] - std), 5 * std / math.sqrt(2 * samples)
    )
    assert result.entropy is None and result.samples == samples


def gaussian_noise_std(w, x):  # y = w.(x + e), e ~ N(0, 0.5^2 I)
    return np.full(len(x), 0.5 * np.sqrt((w**2).sum()))


def gaussian_dropout_std(w, x):  # y = w.(x e), e ~ N(1, 0.25 / 0.75)
    return np.sqrt(0.25 / 0.75 * (w**2 * x**2).sum(axis=(1, 2)))


def spatial_dropout_std(w, x):  # a Bernoulli(0.5) mask per channel, scaled by 2
    per_channel = (w * x).sum(axis=1)  # shape (n, channels)
    return np.sqrt((1 - 0.5) / 0.5 * (per_channel**2).sum(axis=1))


KERAS_NOISE_CASES = {
    "GaussianNoise": (lambda: keras.layers.GaussianNoise(0.5), gaussian_noise_std),
    "GaussianDropout": (
        lambda: keras.layers.GaussianDropout(0.25),
        gaussian_dropout_std,
    ),
    "SpatialDropout1D": (
        lambda: keras.layers.SpatialDropout1D(0.5),
        spatial_dropout_std,
    ),
}


@pytest.mark.parametrize(
    "make_layer, expected_std", KERAS_NOISE_CASES.values(), ids=KERAS_NOISE_CASES.keys()
)
def test_mc_samples_keras_noise_layers(make_layer, expected_std):
    weights, x, samples = normal(6, 5), normal(3, 6, 5), 1000
    model = linear_readout_model(make_layer(), weights, input_shape=(6, 5))
    result = kdrop.mc_predict(model, x, samples=samples, seed=2)
    # All three leave the mean unchanged: E[y] = w.x.
    mean, std = (weights * x).sum(axis=(1, 2)), expected_std(weights, x)
    np.testing.assert_array_less(
        np.abs(result.mean[:, 0] - mean), 5 * std / math.sqrt(samples)
    )
    # The sample std of S draws has a standard error of about
    # std * sqrt((kurtosis - 1) / (4 S)), and these sums of normal or
    # Bernoulli(0.5) terms have kurtosis <= 3: at most std / sqrt(2 S).
    np.testing.assert_array_less(
        np.abs(result.std[:, 0] - std), 5 * std / math.sqrt(2 * samples)
    )


def test_mc_samples_alpha_dropout():
    model = linear_readout_model(keras.layers.AlphaDropout(0.3), np.ones(8, "float32"))
    result = kdrop.mc_predict(model, normal(4, 8), samples=50, seed=0)
    assert np.all(result.std > 0)  # sampled, not in inference mode


@pytest.mark.parametrize("batch_size", [1, 7, 64, None])
@pytest.mark.parametrize(
    "dropout",
    [
        lambda: kdrop.InvertedDropout(0.5, noise_shape=(1, None)),
        lambda: keras.layers.Dropout(0.5, noise_shape=(1, None)),
    ],
    ids=["kdrop", "keras"],
)
def test_mc_samples_are_independent_for_any_batch_size_and_noise_shape(
    batch_size, dropout
):
    # One mask shared by the batch (noise_shape (1, None)) must still differ
    # between the samples of an example, within and across compiled calls.
    model = linear_readout_model(dropout(), np.ones(20, "float32"))
    samples = 400
    result = kdrop.mc_predict(
        model,
        np.ones((3, 20), "float32"),
        samples=samples,
        batch_size=batch_size,
        seed=0,
    )
    std = 2 * math.sqrt(20 * 0.25)  # 20 Bernoulli(0.5) units scaled by 2
    np.testing.assert_array_less(
        np.abs(result.mean[:, 0] - 20.0), 5 * std / math.sqrt(samples)
    )
    np.testing.assert_array_less(
        np.abs(result.std[:, 0] - std), 5 * std / math.sqrt(2 * samples)
    )


def test_mc_mean_converges_to_inference_output_after_a_nonlinearity():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(32, activation="relu"),
            kdrop.InvertedDropout(0.3),
            keras.layers.Dense(3),
        ]
    )
    x, samples = normal(8, 6), 1000
    result = kdrop.mc_predict(model, x, samples=samples, seed=5)
    # Dense is linear after the dropout: E[output] is the inference output.
    tolerance = 5 * result.std / math.sqrt(samples) + 1e-5
    np.testing.assert_array_less(
        np.abs(result.mean - model.predict(x, verbose=0)), tolerance
    )
    assert np.all(result.std > 0)


def test_mc_keeps_batch_normalization_in_inference_mode():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.BatchNormalization(name="bn"),
            kdrop.InvertedDropout(0.2),
            keras.layers.Dense(2, name="out"),
        ]
    )
    bn, out = model.get_layer("bn"), model.get_layer("out")
    bn.moving_mean.assign(np.full(4, 3.0, "float32"))
    bn.moving_variance.assign(np.full(4, 0.25, "float32"))
    # Each output sums two features, so the moving statistics put it near
    # 2 * (0 - 3) / 0.5 = -12 and the batch statistics near 0: far apart
    # for any draw of x, not just a lucky one.
    kernel = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], "float32")
    out.kernel.assign(kernel)
    x, samples = normal(16, 4), 1000  # batch statistics about (0, 1)
    result = kdrop.mc_predict(model, x, samples=samples, seed=0)

    bias = as_numpy(out.bias)
    inference = (x - 3.0) / np.sqrt(0.25 + bn.epsilon) @ kernel + bias
    training = (x - x.mean(0)) / np.sqrt(x.var(0) + bn.epsilon) @ kernel + bias
    tolerance = 5 * result.std / math.sqrt(samples) + 1e-5
    np.testing.assert_array_less(np.abs(result.mean - inference), tolerance)
    # The training-mode (batch statistics) result is far outside it.
    assert np.all(
        np.abs(result.mean - training).max(axis=1) > 3 * tolerance.max(axis=1)
    )
    np.testing.assert_array_equal(as_numpy(bn.moving_mean), 3.0)  # not updated


def test_mc_std_is_zero_without_dropout():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
    )
    x = normal(6, 4)
    with pytest.warns(UserWarning, match="no dropout layer.*std is zero"):
        result = kdrop.mc_predict(model, x, samples=7, batch_size=10)
    np.testing.assert_array_equal(result.std, 0.0)
    np.testing.assert_allclose(result.mean, model.predict(x, verbose=0), rtol=1e-6)


def numpy_entropy(p):
    return -(p * np.log(p)).sum(axis=-1)


def test_mc_entropy_seed_and_original_untouched():
    scheduled = kdrop.ScheduledDropout(schedules.Constant(0.5), seed=7)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            scheduled,
            keras.layers.Dropout(0.3),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    x = normal(10, 6)
    seed_state = as_numpy(scheduled.seed_generator.state).copy()
    weights, predictions = snapshot(model), predict(model, x)
    first = kdrop.mc_predict(model, x, samples=20, batch_size=64, seed=3)
    again = kdrop.mc_predict(model, x, samples=20, batch_size=64, seed=3)
    other = kdrop.mc_predict(model, x, samples=20, batch_size=64, seed=4)
    unseeded = [kdrop.mc_predict(model, x, samples=20).mean for _ in range(2)]

    np.testing.assert_array_equal(first.mean, again.mean)
    np.testing.assert_array_equal(first.std, again.std)
    assert not np.allclose(first.mean, other.mean)
    assert not np.allclose(*unseeded)
    np.testing.assert_allclose(first.mean.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first.entropy, numpy_entropy(first.mean), rtol=1e-10)
    assert np.all(first.std > 0)
    assert scheduled.step == 0
    np.testing.assert_array_equal(as_numpy(scheduled.seed_generator.state), seed_state)
    assert_unchanged(model, weights, x, predictions)


def test_mc_several_inputs_and_outputs_keep_their_structure():
    a, b = keras.Input((5,), name="input_a"), keras.Input((3,), name="input_b")
    hidden = kdrop.InvertedDropout(0.5)(keras.layers.Concatenate()([a, b]))
    model = keras.Model(
        {"a": a, "b": b},
        {
            "p": keras.layers.Dense(3, activation="softmax")(hidden),
            "r": keras.layers.Dense(2)(hidden),
        },
    )
    x, samples = {"b": normal(4, 3), "a": normal(4, 5)}, 500
    result = kdrop.mc_predict(model, x, samples=samples, batch_size=100, seed=0)
    assert set(result.mean) == set(result.std) == set(result.entropy) == {"p", "r"}
    assert result.mean["p"].shape == (4, 3) and result.std["r"].shape == (4, 2)
    np.testing.assert_allclose(
        result.entropy["p"], numpy_entropy(result.mean["p"]), rtol=1e-10
    )
    assert result.entropy["r"] is None
    tolerance = 5 * result.std["r"] / math.sqrt(samples)
    np.testing.assert_array_less(
        np.abs(result.mean["r"] - model.predict(x, verbose=0)["r"]), tolerance
    )


def test_mc_skip_connections_and_deterministic_outputs():
    # The deterministic input reaches the stochastic Add unsampled, and an
    # output no dropout feeds has zero spread.
    inputs = keras.Input((20,))
    ones = {"use_bias": False, "kernel_initializer": "ones"}
    residual = keras.layers.Add()([inputs, kdrop.InvertedDropout(0.5)(inputs)])
    model = keras.Model(
        inputs,
        [
            keras.layers.Dense(1, **ones)(residual),
            keras.layers.Dense(1, **ones)(inputs),
        ],
    )
    samples = 400
    result = kdrop.mc_predict(
        model, np.ones((3, 20), "float32"), samples=samples, seed=0
    )
    std = 2 * math.sqrt(20 * 0.25)  # 20 + sum of 20 units 2 * Bernoulli(0.5)
    np.testing.assert_array_less(
        np.abs(result.mean[0][:, 0] - 40.0), 5 * std / math.sqrt(samples)
    )
    np.testing.assert_array_less(
        np.abs(result.std[0][:, 0] - std), 5 * std / math.sqrt(2 * samples)
    )
    np.testing.assert_allclose(result.mean[1], 20.0, rtol=1e-6)
    np.testing.assert_array_equal(result.std[1], 0.0)


def test_mc_samples_dropout_inside_nested_models():
    inner = keras.Sequential(
        [keras.Input((20,)), kdrop.WeightScaledDropout(0.5)], name="inner"
    )
    inputs = keras.Input((20,))
    model = keras.Model(
        inputs,
        keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(inner(inputs)),
    )
    samples = 400
    result = kdrop.mc_predict(
        model, np.ones((2, 20), "float32"), samples=samples, seed=0
    )
    std = math.sqrt(20 * 0.25)
    np.testing.assert_array_less(
        np.abs(result.mean[:, 0] - 10.0), 5 * std / math.sqrt(samples)
    )
    np.testing.assert_array_less(
        np.abs(result.std[:, 0] - std), 5 * std / math.sqrt(2 * samples)
    )


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"samples": 0}, ValueError, ["samples", "0"]),
        ({"samples": 2.5}, TypeError, ["samples", "2.5", "float"]),
        ({"samples": True}, TypeError, ["samples", "True", "bool"]),
        ({"batch_size": -1}, ValueError, ["batch_size", "-1"]),
        ({"batch_size": "8"}, TypeError, ["batch_size", "'8'", "str"]),
        ({"seed": "x"}, TypeError, ["seed", "'x'"]),
        ({"x": np.ones((2, 5))}, ValueError, ["`x`", "(None, 4)", "(2, 5)"]),
        ({"x": np.ones(4)}, ValueError, ["`x`", "(None, 4)", "(4,)"]),
        ({"x": [np.ones((2, 4)), np.ones((2, 4))]}, ValueError, ["`x`", "1 input"]),
        ({"x": np.ones((0, 4))}, ValueError, ["`x`", "at least one example"]),
        ({"x": {"wrong": np.ones((2, 4))}}, ValueError, ["`x`", "'wrong'"]),
    ],
)
def test_mc_bad_arguments(kwargs, error, words):
    model = linear_readout_model(kdrop.InvertedDropout(0.5), np.ones(4, "float32"))
    arguments = {"x": np.ones((2, 4), "float32"), **kwargs}
    with pytest.raises(error) as info:
        kdrop.mc_predict(model, **arguments)
    for word in words:
        assert word in str(info.value)


def test_mc_inputs_of_different_lengths_are_rejected():
    a, b = keras.Input((2,)), keras.Input((2,))
    model = keras.Model([a, b], kdrop.InvertedDropout(0.5)(keras.layers.Add()([a, b])))
    with pytest.raises(
        ValueError, match="same number of examples.*\\(3, 2\\), \\(4, 2\\)"
    ):
        kdrop.mc_predict(model, [np.ones((3, 2)), np.ones((4, 2))])

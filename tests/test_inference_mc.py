"""mc_predict on nested dropout, subclassed models and every input kind
model.predict takes; warnings for noise it cannot sample; no retracing."""

import keras
import numpy as np
import pytest

import kdrop
from tests import model_zoo
from tests.conftest import BACKEND

SAMPLES = 4000


def bernoulli_sum_moments(weights, keep, scale):
    """Mean, std, and the std of the sample variance over `n` draws, of
    `y = scale * sum_j w_j b_j` with `b_j ~ Bernoulli(keep)` independent."""
    weights = np.asarray(weights, np.float64) * scale
    mean = keep * weights.sum(axis=-1)
    variances = keep * (1 - keep) * weights**2
    variance = variances.sum(axis=-1)
    # Fourth central moment of a sum of independent zero-mean terms.
    fourth = (weights**4 * keep * (1 - keep) * (1 - 3 * keep + 3 * keep**2)).sum(
        axis=-1
    ) + 3 * (variance**2 - (variances**2).sum(axis=-1))
    return mean, np.sqrt(variance), fourth


def assert_bernoulli(result, weights, keep, scale):
    mean, std, fourth = bernoulli_sum_moments(weights, keep, scale)
    got_mean, got_std = result.mean[:, 0], result.std[:, 0]
    # 5 standard errors of the sample mean and of the sample variance.
    np.testing.assert_array_less(np.abs(got_mean - mean), 5 * std / np.sqrt(SAMPLES))
    variance_error = np.sqrt((fourth - std**4) / SAMPLES)
    np.testing.assert_array_less(np.abs(got_std**2 - std**2), 5 * variance_error)


def test_mc_matches_the_bernoulli_moments_of_a_hand_computable_model():
    model, x = model_zoo.hand_computable()
    result = kdrop.mc_predict(model, x, samples=SAMPLES, seed=1)
    assert_bernoulli(result, x, keep=0.5, scale=1.0)


class HoldsDropout(keras.layers.Layer):
    """A custom layer holding a keras.layers.Dropout, passing `training`."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(rate)

    def call(self, inputs, training=False):
        return self.dropout(inputs, training=training)


def test_mc_samples_dropout_held_inside_a_custom_layer():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            HoldsDropout(0.3),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
        ]
    )
    x = np.random.uniform(0.5, 2.0, size=(3, 6)).astype("float32")
    result = kdrop.mc_predict(model, x, samples=SAMPLES, seed=2)
    assert_bernoulli(result, x, keep=0.7, scale=1 / 0.7)  # inverted dropout


def test_mc_on_a_subclassed_model_matches_the_bernoulli_moments():
    class Readout(keras.Model):
        def __init__(self):
            super().__init__()
            self.drop = kdrop.layers.WeightScaledDropout(0.4)
            self.dense = keras.layers.Dense(
                1, use_bias=False, kernel_initializer="ones"
            )

        def call(self, inputs, training=False):
            return self.dense(self.drop(inputs, training=training))

    model = Readout()
    x = np.random.uniform(0.5, 2.0, size=(3, 8)).astype("float32")
    model(x)
    result = kdrop.mc_predict(model, x, samples=SAMPLES, seed=3)
    assert_bernoulli(result, x, keep=0.6, scale=1.0)


def test_mc_keeps_augmentation_and_batch_normalization_in_inference_mode():
    model, x = model_zoo.augmented_cnn(zero=True)
    flip = model.get_layer("flip")
    assert flip(x, training=True).shape == x.shape  # a layer that flips...
    result = kdrop.mc_predict(model, x, samples=5, seed=0)
    # ...but not here: at rate 0 every pass equals predict.
    np.testing.assert_allclose(
        result.mean, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


class DrawsItsOwnNoise(keras.layers.Layer):
    """A layer kdrop does not know that is random in training."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rate = 0.5
        self.seed_generator = keras.random.SeedGenerator(1)

    def call(self, inputs, training=False):
        if training:
            return keras.random.dropout(inputs, self.rate, seed=self.seed_generator)
        return inputs


def test_noise_mc_cannot_sample_is_named_in_a_warning():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            DrawsItsOwnNoise(name="own_noise"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(1),
        ]
    )
    with pytest.warns(UserWarning, match=r"cannot sample.*\['own_noise'\].*register"):
        kdrop.mc_predict(model, np.ones((2, 4), "float32"), samples=2)


def test_registering_a_layer_makes_mc_sample_it():
    kdrop.registry.register(
        DrawsItsOwnNoise,
        rate=lambda layer: layer.rate,
        inference="identity",
        sample=lambda layer, inputs, **kwargs: DrawsItsOwnNoise.call(
            layer, inputs, training=True
        ),
    )
    try:
        model = keras.Sequential(
            [
                keras.Input((4,)),
                DrawsItsOwnNoise(),
                keras.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
            ]
        )
        x = np.ones((2, 4), "float32")
        result = kdrop.mc_predict(model, x, samples=SAMPLES, seed=4)
        assert_bernoulli(result, x, keep=0.5, scale=2.0)
    finally:
        kdrop.registry._ENTRIES.pop(DrawsItsOwnNoise)


# --------------------------------------------------------------------- inputs


def reference(model, x, **kwargs):
    return kdrop.mc_predict(model, x, samples=6, seed=5, **kwargs)


def assert_same_result(got, expected):
    np.testing.assert_array_equal(got.mean, expected.mean)
    np.testing.assert_array_equal(got.std, expected.std)


@pytest.mark.tensorflow_only
def test_mc_takes_a_tf_data_dataset():
    import tensorflow as tf

    model, x = model_zoo.with_lambda()
    one_batch = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x))))
    assert_same_result(reference(model, one_batch.batch(len(x))), reference(model, x))
    # Several batches: concatenated; at rate 0 exactly predict.
    model, x = model_zoo.with_lambda(zero=True)
    batches = tf.data.Dataset.from_tensor_slices(x).batch(3)
    np.testing.assert_allclose(
        reference(model, batches).mean, model.predict(x, verbose=0), rtol=1e-6
    )


def test_mc_takes_a_generator_and_a_py_dataset():
    model, x = model_zoo.multi_input()

    def generator():
        yield (x, np.zeros(len(x)))

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return (x,)

    expected = reference(model, x)
    assert_same_result(reference(model, generator()), expected)
    assert_same_result(reference(model, Batches()), expected)


def test_mc_takes_nested_lists_for_one_example():
    model, x = model_zoo.hand_computable()
    example = x[:1].tolist()  # [[...10 numbers...]]
    assert_same_result(reference(model, example), reference(model, x[:1]))
    assert_same_result(reference(model, [x[:1]]), reference(model, x[:1]))


@pytest.mark.parametrize("x", ["abc", None, {1, 2}], ids=["str", "None", "set"])
def test_mc_rejects_inputs_predict_does_not_take(x):
    model, _ = model_zoo.hand_computable()
    with pytest.raises(TypeError, match="what model.predict takes.*Received: x of"):
        kdrop.mc_predict(model, x)


def test_mc_rejects_an_empty_generator():
    model, _ = model_zoo.hand_computable()
    with pytest.raises(ValueError, match="holds no batch"):
        kdrop.mc_predict(model, iter([]))


@pytest.mark.skipif(
    BACKEND == "torch", reason="torch runs eagerly: there is no trace to reuse"
)
def test_a_second_call_does_not_retrace():
    traces = []

    def count_traces(t):
        traces.append(1)  # Python runs only while a function is traced
        return t

    inputs = keras.Input((4,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(4)(inputs))
    outputs = keras.layers.Lambda(count_traces)(hidden)
    model = keras.Model(inputs, outputs)
    x = np.ones((3, 4), "float32")
    kdrop.mc_predict(model, x, samples=4, seed=0)
    after_first = len(traces)
    assert after_first > 0
    kdrop.mc_predict(model, x, samples=4, seed=1)
    kdrop.mc_predict(model, x + 1, samples=4)
    assert len(traces) == after_first


def test_rnn_dropout_is_sampled_once_per_sequence():
    """Variational RNN dropout (Gal & Ghahramani 2016): one input mask per
    sequence, reused at every step. With all-ones inputs, a ones kernel, no
    recurrence and a linear activation, step t outputs sum_j m_j / keep, so
    a pass gives the same value at every step, and passes differ."""
    rnn = keras.layers.SimpleRNN(
        1,
        dropout=0.5,
        activation="linear",
        use_bias=False,
        kernel_initializer="ones",
        recurrent_initializer="zeros",
        return_sequences=True,
    )
    model = keras.Sequential([keras.Input((5, 8)), rnn])
    x = np.ones((2, 5, 8), "float32")
    result = kdrop.mc_predict(model, x, samples=200, seed=0, return_samples=True)
    draws = result.draws[..., 0]  # (samples, examples, steps)
    np.testing.assert_allclose(draws, draws[..., :1].repeat(5, axis=-1), rtol=1e-6)
    # Per pass: 2 * Binomial(8, 0.5), mean 8 and std 2 * sqrt(2).
    assert abs(draws[..., 0].mean() - 8.0) < 5 * 2 * np.sqrt(2) / np.sqrt(400)
    assert np.all(result.std > 1.0)


@pytest.mark.parametrize(
    "make, decisions_per_draw",
    [
        (lambda schedule: kdrop.layers.InvertedDropout(schedule, seed=1), 500),
        (lambda schedule: kdrop.layers.WeightScaledDropout(schedule, seed=1), 500),
        (lambda schedule: kdrop.layers.ScheduledDropout(schedule, seed=1), 500),
        (lambda schedule: kdrop.layers.DropPath(schedule, seed=1), 1),
    ],
    ids=["InvertedDropout", "WeightScaledDropout", "ScheduledDropout", "DropPath"],
)
def test_a_layer_with_a_schedule_is_sampled_by_one_sampler(
    make, decisions_per_draw, monkeypatch
):
    """A rate that follows a schedule is computed in the compiled sampler,
    whatever the layer's class: a new step needs no new sampler, and the
    draws follow the step."""
    built = []
    build = kdrop.inference.sampler._sampling_model
    monkeypatch.setattr(
        kdrop.inference.sampler,
        "_sampling_model",
        lambda *args: built.append(1) or build(*args),
    )
    layer = make(kdrop.schedules.Linear(0.1, 0.7, 10))
    model = keras.Sequential([keras.Input((500,)), layer])
    x = np.ones((2, 500), "float32")
    for step in (0, 5, 10):
        layer.step = step
        result = kdrop.mc_predict(model, x, samples=50, seed=step, return_samples=True)
        dropped = np.mean(keras.ops.convert_to_numpy(result.draws) == 0)
        rate = layer.current_rate
        n = 50 * 2 * decisions_per_draw
        assert abs(dropped - rate) < 5 * np.sqrt(rate * (1 - rate) / n), (step, dropped)
    assert len(built) == 1


def count_sample_traces(monkeypatch):
    """A list that grows by one each time a dropout-like layer's sample is
    run in Python, i.e. each time the compiled sampler is traced."""
    traces = []
    sample = kdrop.registry.sample

    def counting(layer, inputs, **kwargs):
        traces.append(layer.name)
        return sample(layer, inputs, **kwargs)

    monkeypatch.setattr(kdrop.registry, "sample", counting)
    return traces


@pytest.mark.skipif(
    BACKEND == "torch", reason="torch runs eagerly: there is no trace to reuse"
)
@pytest.mark.parametrize(
    "rate", [0.5, kdrop.schedules.Linear(0.2, 0.6, 8)], ids=["fixed", "schedule"]
)
@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
def test_a_shorter_last_chunk_and_training_do_not_retrace(rate, monkeypatch):
    """3 examples in calls of 2 examples x 4000 passes: the last chunk is
    padded to the same shape, so the sampler is traced once; training moves
    a schedule's step without a new trace, and the cached sampler draws at
    the new rate (the Bernoulli moments of `sum_j mask_j x_j`)."""
    traces = count_sample_traces(monkeypatch)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            kdrop.layers.WeightScaledDropout(rate, seed=3, name="drop"),
            keras.layers.Dense(
                1, use_bias=False, kernel_initializer="ones", trainable=False
            ),
        ]
    )
    model.compile("sgd", "mse")
    x = model_zoo.RNG.uniform(0.5, 2.0, size=(3, 10)).astype("float32")
    layer = model.get_layer("drop")
    for fits in range(2):
        result = kdrop.mc_predict(model, x, samples=SAMPLES, batch_size=8000, seed=1)
        assert len(traces) == (1 if fits == 0 else 0), (fits, traces)
        assert_bernoulli(result, x, keep=1.0 - layer.current_rate, scale=1.0)
        traces.clear()
        model.fit(x, np.zeros((3, 1)), epochs=1, batch_size=1, verbose=0)
    if layer.schedule is not None:
        # Sampled at step 0 (rate 0.2), then at step 3 (rate 0.35).
        assert layer.step == 6


@pytest.mark.skipif(
    BACKEND == "torch", reason="torch runs eagerly: there is no trace to reuse"
)
def test_a_learned_concrete_rate_needs_no_new_sampler(monkeypatch):
    """ConcreteDropout's rate is a weight: a rate moved by training is read
    by the cached sampler (dropped fraction within 5 binomial standard
    deviations of the new rate), with no new trace."""
    traces = count_sample_traces(monkeypatch)
    wrapped = keras.layers.Dense(
        400, use_bias=False, kernel_initializer="identity", trainable=False
    )
    layer = kdrop.layers.ConcreteDropout(wrapped, seed=2, init_rate=0.2)
    model = keras.Sequential([keras.Input((400,)), layer])
    x = np.ones((2, 400), "float32")
    for calls, rate in enumerate((0.2, 0.6)):
        layer.p_logit.assign(np.log(rate / (1 - rate)))  # as training would
        result = kdrop.mc_predict(model, x, samples=50, seed=calls, return_samples=True)
        assert len(traces) == (1 if calls == 0 else 0), (calls, traces)
        dropped = np.mean(result.draws == 0)
        n = 50 * 2 * 400
        assert abs(dropped - rate) < 5 * np.sqrt(rate * (1 - rate) / n), dropped
        traces.clear()

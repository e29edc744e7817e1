"""ScheduledDropout: the rate really follows its schedule inside training."""

import math

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from kdrop import schedules

WIDTH = 2000


def linear_reference(step, start=0.1, end=0.7, steps=60):
    return start + (end - start) * min(step / steps, 1.0)


def zero_fraction(x):
    return float(np.mean(ops.convert_to_numpy(x) == 0))


def tolerance(rate, n):
    return 5 * math.sqrt(max(rate * (1 - rate), 1e-4) / n)


@keras.saving.register_keras_serializable(package="kdrop_tests")
class ZeroFractionRecorder(keras.layers.Layer):
    """Identity that records, per training step, the zero fraction it sees."""

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        self.steps = steps
        self.history = self.add_weight(
            shape=(steps,), initializer="zeros", trainable=False, name="history"
        )
        self.index = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="index"
        )

    def call(self, x, training=False):
        if training:
            fraction = ops.mean(ops.cast(ops.equal(x, 0.0), "float32"))
            one_hot = ops.one_hot(self.index, self.steps)
            self.history.assign(self.history + one_hot * fraction)
            self.index.assign_add(1)
        return x

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}


class TraceCounter(keras.layers.Layer):
    """Identity whose Python `call` runs only when a function is traced."""

    traces = 0

    def call(self, x):
        TraceCounter.traces += 1
        return x


def scheduled_model(layer, recorder=None, jit_compile=False):
    inputs = keras.Input((WIDTH,))
    x = layer(inputs)
    if recorder is not None:
        x = recorder(x)
    outputs = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit_compile)
    return model


def data(n=200):
    return np.ones((n, WIDTH), "float32"), np.zeros((n, 1), "float32")


def test_masks_inside_fit_follow_the_schedule():
    """Every step's mask, recorded inside the compiled train step."""
    steps = 60
    layer = kdrop.ScheduledDropout(schedules.Linear(0.1, 0.7, 60), seed=1)
    recorder = ZeroFractionRecorder(steps)
    model = scheduled_model(layer, recorder)
    x, y = data()
    model.fit(x, y, batch_size=10, epochs=3, verbose=0)  # 20 steps per epoch
    recorded = ops.convert_to_numpy(recorder.history)
    n = 10 * WIDTH
    for step in range(steps):
        rate = linear_reference(step)
        assert abs(recorded[step] - rate) < tolerance(rate, n), step
    assert layer.step == steps


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("jit_compile", [False, True])
def test_rate_changes_between_fit_chunks_without_retracing(jit_compile):
    import tensorflow as tf

    layer = kdrop.ScheduledDropout(schedules.Linear(0.1, 0.7, 60), seed=2)
    model = scheduled_model(layer, TraceCounter(), jit_compile=jit_compile)
    x, y = data()
    probe_traces = []

    @tf.function(jit_compile=jit_compile)
    def probe(inputs):
        probe_traces.append(1)
        return layer.sample(inputs)

    probe(x)  # traced once, before training
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)
    traces_after_first_fit = TraceCounter.traces
    for chunk in range(1, 4):
        if chunk > 1:
            model.fit(x, y, batch_size=10, epochs=1, verbose=0)
        assert layer.step == 20 * chunk
        rate = linear_reference(layer.step)
        assert abs(zero_fraction(probe(x)) - rate) < tolerance(rate, x.size)
    assert len(probe_traces) == 1
    assert TraceCounter.traces == traces_after_first_fit


def test_custom_training_loop_advances_once_per_step():
    layer = kdrop.ScheduledDropout(schedules.Linear(0.0, 0.5, 10))
    model = keras.Sequential([keras.Input((4,)), layer, keras.layers.Dense(1)])
    x = np.ones((2, 4), "float32")
    for step in range(1, 6):
        model(x, training=True)
        assert layer.step == step
    assert layer.current_rate == pytest.approx(0.25)


def test_inference_predict_evaluate_and_sample_do_not_advance():
    layer = kdrop.ScheduledDropout(schedules.Linear(0.1, 0.7, 60))
    model = scheduled_model(layer)
    x, y = data(20)
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    layer(x, training=False)
    layer.sample(x)
    assert layer.step == 0
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)
    assert layer.step == 2


def test_weight_scaled_inference_multiplies_by_one_minus_current_rate():
    layer = kdrop.ScheduledDropout(schedules.Linear(0.0, 0.6, 10), mode="weight_scaled")
    x = np.random.default_rng(0).normal(size=(5, 8)).astype("float32")
    layer.step = 5
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x)), x * (1 - 0.3), rtol=1e-6)
    inverted = kdrop.ScheduledDropout(schedules.Linear(0.0, 0.6, 10))
    inverted.step = 5
    np.testing.assert_array_equal(ops.convert_to_numpy(inverted(x)), x)


@pytest.mark.parametrize("mode, scale", [("inverted", 1 / 0.7), ("weight_scaled", 1.0)])
def test_training_values_follow_the_convention(mode, scale):
    layer = kdrop.ScheduledDropout(schedules.Constant(0.3), mode=mode, seed=3)
    y = ops.convert_to_numpy(layer(np.ones((1000, 1000), "float32"), training=True))
    np.testing.assert_allclose(np.unique(y), [0.0, scale], rtol=1e-6)
    assert abs(np.mean(y == 0) - 0.3) < tolerance(0.3, y.size)


def test_save_mid_schedule_and_continue(tmp_path):
    layer = kdrop.ScheduledDropout(schedules.Linear(0.1, 0.7, 60), seed=4, name="scheduled")
    model = scheduled_model(layer)
    x, y = data()
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)
    path = tmp_path / "mid.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.get_layer("scheduled")
    assert restored.step == 20
    assert restored.current_rate == pytest.approx(linear_reference(20), abs=1e-6)
    loaded.fit(x, y, batch_size=10, epochs=1, verbose=0)
    assert restored.step == 40
    assert restored.current_rate == pytest.approx(linear_reference(40), abs=1e-6)
    rate = linear_reference(40)
    assert abs(zero_fraction(restored.sample(x)) - rate) < tolerance(rate, x.size)


def test_keras_learning_rate_schedule_and_plain_callable():
    decay = keras.optimizers.schedules.PolynomialDecay(0.5, decay_steps=10, end_learning_rate=0.1)
    layer = kdrop.ScheduledDropout(decay)
    layer.step = 5
    assert layer.current_rate == pytest.approx(0.3, abs=1e-6)

    def halving(step):
        return 0.4 * ops.power(0.5, ops.floor(ops.cast(step, "float32") / 10))

    layer = kdrop.ScheduledDropout(halving)
    layer.step = 25
    assert layer.current_rate == pytest.approx(0.1, abs=1e-6)


def test_rate_clipped_below_one():
    layer = kdrop.ScheduledDropout(lambda step: ops.convert_to_tensor(1.0))
    x = np.ones((1000, 1000), "float32")
    y = layer(x, training=True)
    assert layer.current_rate == pytest.approx(kdrop.layers.MAX_RATE)
    assert abs(zero_fraction(y) - 0.99) < tolerance(0.99, x.size)
    assert np.isfinite(ops.convert_to_numpy(y)).all()


def test_rate_starting_at_zero_drops_once_it_rises():
    layer = kdrop.ScheduledDropout(schedules.Late(0.5, from_step=3), seed=5)
    x = np.ones((500, 500), "float32")
    for _ in range(3):
        assert zero_fraction(layer(x, training=True)) == 0.0
    assert abs(zero_fraction(layer(x, training=True)) - 0.5) < tolerance(0.5, x.size)


def test_config_round_trip_keeps_schedule_and_mode():
    layer = kdrop.ScheduledDropout(schedules.Cosine(0.5, 0.1, 100), mode="weight_scaled", seed=6)
    clone = kdrop.ScheduledDropout.from_config(layer.get_config())
    assert isinstance(clone.schedule, schedules.Cosine)
    assert clone.schedule.get_config() == layer.schedule.get_config()
    assert (clone.mode, clone.seed) == ("weight_scaled", 6)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"schedule": 0.5}, TypeError, ["schedule", "0.5", "Constant(0.5)"]),
        ({"schedule": "linear"}, TypeError, ["schedule", "'linear'"]),
        ({"schedule": schedules.Constant(0.1), "mode": "classic"}, ValueError, ["mode", "'classic'", "'weight_scaled'"]),
        (
            {"schedule": {"module": "nowhere", "class_name": "Unknown", "config": {}}},
            ValueError,
            ["schedule", "Unknown", "register_keras_serializable"],
        ),
    ],
)
def test_bad_constructor_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        kdrop.ScheduledDropout(**kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "schedule, words",
    [
        (lambda step: float(step) * 0.01, ["could not be evaluated", "keras.ops"]),
        (lambda step: ops.convert_to_tensor(float("nan")), ["[0, 1]", "nan"]),
        (lambda step: ops.cast(step, "float32") * 0.1, ["[0, 1]", "step 100 "]),
    ],
)
def test_bad_user_schedule_is_reported_at_construction(schedule, words):
    with pytest.raises(ValueError) as info:
        kdrop.ScheduledDropout(schedule)
    for word in words:
        assert word in str(info.value)

"""ScheduledDropout: the rate really follows its schedule inside training.

Zero fractions are checked against the numpy schedule with a binomial
tolerance of 5 standard deviations; inputs are all ones, so a zero in the
output is a dropped unit.
"""

import inspect
import math
import warnings

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from kdrop import schedules

BACKEND = keras.backend.backend()
WIDTH = 2000
BATCH = 10
STEPS_PER_EPOCH = 20  # 200 examples in batches of 10


def linear_reference(step, start=0.1, end=0.7, steps=60):
    return start + (end - start) * min(step / steps, 1.0)


def zero_fraction(x):
    return float(np.mean(ops.convert_to_numpy(x) == 0))


def tolerance(rate, n):
    """5 standard deviations of the zero fraction of n Bernoulli(rate) draws."""
    return 5 * math.sqrt(max(rate * (1 - rate), 1e-4) / n)


def assert_drops_at_rate(fraction, rate, n):
    assert abs(fraction - rate) < tolerance(rate, n), (fraction, rate)


@keras.saving.register_keras_serializable(package="kdrop_tests")
class ZeroFractionRecorder(keras.layers.Layer):
    """Identity that records, per training step, the zero fraction it sees.

    The value is written inside the compiled train step into a variable, so
    it is the mask `fit` really used (on JAX, read after the epoch ends).
    """

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
    """Identity whose Python `call` runs only when a step is traced."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.traces = 0

    def call(self, x):
        self.traces += 1
        return x


def scheduled_model(layer, *extra_layers, jit_compile="auto"):
    inputs = keras.Input((WIDTH,))
    x = layer(inputs)
    for extra in extra_layers:
        x = extra(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit_compile)
    return model


def data(n=200):
    return np.ones((n, WIDTH), "float32"), np.zeros((n, 1), "float32")


def fit_epochs(model, epochs=1, n=200, **kwargs):
    x, y = data(n)
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, **kwargs)


def halving(step):
    """A plain callable written with keras.ops: 0.6, halved every 20 steps."""
    return 0.6 * ops.power(0.5, ops.floor(ops.cast(step, "float32") / 20.0))


# name -> (schedule, numpy reference of the step)
IN_FIT_SCHEDULES = {
    "kdrop_linear": (schedules.Linear(0.1, 0.7, 60), linear_reference),
    "keras_polynomial_decay": (
        keras.optimizers.schedules.PolynomialDecay(
            0.7, decay_steps=60, end_learning_rate=0.1
        ),
        lambda t: 0.1 + 0.6 * (1 - min(t, 60) / 60),
    ),
    "plain_callable": (halving, lambda t: 0.6 * 0.5 ** (t // 20)),
    "late_starts_at_zero": (
        schedules.Late(0.5, from_step=30),
        lambda t: 0.5 * (t >= 30),
    ),
}


@pytest.mark.parametrize("name", list(IN_FIT_SCHEDULES))
def test_masks_inside_fit_follow_the_schedule(name):
    """Every step's mask, recorded inside the compiled train step."""
    schedule, reference = IN_FIT_SCHEDULES[name]
    steps = 3 * STEPS_PER_EPOCH
    layer = kdrop.ScheduledDropout(schedule, seed=1)
    recorder = ZeroFractionRecorder(steps)
    fit_epochs(scheduled_model(layer, recorder), epochs=3)
    recorded = ops.convert_to_numpy(recorder.history)
    for step in range(steps):
        assert_drops_at_rate(recorded[step], reference(step), BATCH * WIDTH)
    assert layer.step == steps
    assert layer.current_rate == pytest.approx(reference(steps), abs=1e-6)


def train_tf_functions(model):
    """The tf.functions behind `model.train_function` (a Python wrapper)."""
    functions = []
    for value in inspect.getclosurevars(model.train_function).nonlocals.values():
        for candidate in (value, getattr(value, "__wrapped__", None)):
            if hasattr(candidate, "experimental_get_tracing_count"):
                functions.append(candidate)
    assert functions, "Keras's train_function no longer wraps a tf.function"
    return functions


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_rate_changes_between_fit_chunks_without_retracing(jit_compile):
    import tensorflow as tf

    layer = kdrop.ScheduledDropout(schedules.Linear(0.1, 0.7, 60), seed=2)
    model = scheduled_model(layer, jit_compile=jit_compile)
    x, _ = data()

    @tf.function(jit_compile=jit_compile)
    def probe(inputs):
        return layer.sample(inputs)

    assert_drops_at_rate(zero_fraction(probe(x)), linear_reference(0), x.size)
    for chunk in range(1, 5):  # the last chunk runs past the ramp's end
        fit_epochs(model)
        if chunk == 1:
            functions = train_tf_functions(model)
            traces = [f.experimental_get_tracing_count() for f in functions]
        assert layer.step == STEPS_PER_EPOCH * chunk
        assert_drops_at_rate(
            zero_fraction(probe(x)), linear_reference(layer.step), x.size
        )
    assert probe.experimental_get_tracing_count() == 1
    assert train_tf_functions(model) == functions
    assert [f.experimental_get_tracing_count() for f in functions] == traces


@pytest.mark.skipif(
    BACKEND == "torch", reason="torch runs the train step eagerly: no trace"
)
def test_changing_rate_causes_no_retrace():
    counter = TraceCounter()
    layer = kdrop.ScheduledDropout(schedules.Linear(0.1, 0.7, 60))
    model = scheduled_model(layer, counter)
    fit_epochs(model)
    traces = counter.traces
    fit_epochs(model, epochs=3)
    assert counter.traces == traces
    assert layer.current_rate == pytest.approx(0.7)


@pytest.mark.parametrize(
    "steps_per_execution",
    [
        1,
        pytest.param(
            3,
            marks=pytest.mark.skipif(
                BACKEND == "torch",
                reason="Keras's torch trainer needs steps_per_execution=1",
            ),
        ),
    ],
)
def test_step_counts_optimizer_steps_in_plain_fit(steps_per_execution):
    layer = kdrop.ScheduledDropout(schedules.Linear(0.1, 0.7, 60))
    model = scheduled_model(layer)
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    x, y = data(65)  # 7 batches per epoch, the last one partial
    model.fit(
        x, y, batch_size=BATCH, epochs=2, validation_data=(x[:20], y[:20]), verbose=0
    )
    assert layer.step == 14 == int(ops.convert_to_numpy(model.optimizer.iterations))
    assert layer.current_rate == pytest.approx(linear_reference(14), abs=1e-6)


def test_custom_training_loop_advances_once_per_step():
    layer = kdrop.ScheduledDropout(schedules.Linear(0.0, 0.5, 10))
    model = keras.Sequential([keras.Input((4,)), layer, keras.layers.Dense(1)])
    x = np.ones((2, 4), "float32")
    for step in range(1, 6):
        model(x, training=True)
        assert layer.step == step
        assert layer.current_rate == pytest.approx(0.5 * step / 10, abs=1e-6)


def test_inference_predict_evaluate_and_sample_do_not_advance():
    layer = kdrop.ScheduledDropout(schedules.Linear(0.1, 0.7, 60))
    model = scheduled_model(layer)
    x, y = data(20)
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    layer(x, training=False)
    layer(x)
    layer.sample(x)
    assert layer.step == 0
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    assert layer.step == 2


def test_weight_scaled_inference_follows_the_rate_inside_compiled_predict():
    schedule = schedules.Linear(0.0, 0.6, 40)
    layer = kdrop.ScheduledDropout(schedule, mode="weight_scaled", seed=3)
    model = scheduled_model(layer)
    # Shares the layer; its predict function is compiled before training.
    probe = keras.Model(model.inputs, layer.output)
    x = np.random.default_rng(0).normal(size=(20, WIDTH)).astype("float32")
    np.testing.assert_allclose(probe.predict(x, verbose=0), x, rtol=1e-6)
    fit_epochs(model)  # 20 steps: rate 0.3
    np.testing.assert_allclose(probe.predict(x, verbose=0), x * (1 - 0.3), rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x)), x * (1 - 0.3), rtol=1e-5)


def test_inverted_inference_is_the_identity_at_any_step():
    layer = kdrop.ScheduledDropout(schedules.Linear(0.0, 0.6, 10))
    x = np.random.default_rng(1).normal(size=(5, 8)).astype("float32")
    layer.step = 5
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)


@pytest.mark.parametrize("mode, scale", [("inverted", 1 / 0.7), ("weight_scaled", 1.0)])
def test_training_values_follow_the_convention(mode, scale):
    layer = kdrop.ScheduledDropout(schedules.Constant(0.3), mode=mode, seed=3)
    y = ops.convert_to_numpy(layer(np.ones((1000, 1000), "float32"), training=True))
    np.testing.assert_allclose(np.unique(y), [0.0, scale], rtol=1e-6)
    assert_drops_at_rate(np.mean(y == 0), 0.3, y.size)


def test_save_mid_schedule_and_continue(tmp_path):
    steps = 2 * STEPS_PER_EPOCH
    layer = kdrop.ScheduledDropout(
        schedules.Linear(0.1, 0.7, 60), seed=4, name="scheduled"
    )
    model = scheduled_model(layer, ZeroFractionRecorder(steps, name="recorder"))
    fit_epochs(model)
    path = tmp_path / "mid.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.get_layer("scheduled")
    assert restored.step == 20
    assert restored.current_rate == pytest.approx(linear_reference(20), abs=1e-6)
    fit_epochs(loaded)
    assert restored.step == 40
    assert restored.current_rate == pytest.approx(linear_reference(40), abs=1e-6)
    recorded = ops.convert_to_numpy(loaded.get_layer("recorder").history)
    for step in range(STEPS_PER_EPOCH, steps):  # the steps run after loading
        assert_drops_at_rate(recorded[step], linear_reference(step), BATCH * WIDTH)


def test_rate_clipped_below_one():
    layer = kdrop.ScheduledDropout(lambda step: ops.convert_to_tensor(1.0))
    x = np.ones((1000, 1000), "float32")
    y = layer(x, training=True)
    assert layer.current_rate == pytest.approx(kdrop.layers.MAX_RATE)
    assert_drops_at_rate(zero_fraction(y), 0.99, x.size)
    np.testing.assert_allclose(
        np.unique(ops.convert_to_numpy(y)), [0.0, 100.0], rtol=1e-4
    )


@pytest.mark.parametrize(
    "schedule, rising_step, rate",
    [
        (schedules.Late(0.5, from_step=3), 3, 0.5),
        (schedules.Curriculum(0.5, 0.1), 50, 0.5 * (1 - math.exp(-5))),
    ],
    ids=["late", "curriculum"],
)
def test_rate_starting_at_zero_keeps_seed_state_and_drops_once_it_rises(
    schedule, rising_step, rate
):
    layer = kdrop.ScheduledDropout(schedule, seed=5)
    assert layer.current_rate == 0.0
    assert any(v is layer.seed_generator.state for v in layer.non_trainable_variables)
    x = np.ones((500, 500), "float32")
    assert zero_fraction(layer(x, training=True)) == 0.0
    layer.step = rising_step
    assert_drops_at_rate(zero_fraction(layer(x, training=True)), rate, x.size)


def test_config_round_trip_keeps_schedule_and_mode():
    layer = kdrop.ScheduledDropout(
        schedules.Cosine(0.5, 0.1, 100), mode="weight_scaled", seed=6
    )
    clone = kdrop.ScheduledDropout.from_config(layer.get_config())
    assert isinstance(clone.schedule, schedules.Cosine)
    assert clone.schedule.get_config() == layer.schedule.get_config()
    assert (clone.mode, clone.seed) == ("weight_scaled", 6)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"schedule": 0.5}, TypeError, ["`schedule`", "schedule=0.5", "Constant(0.5)"]),
        (
            {"schedule": "linear"},
            TypeError,
            ["`schedule`", "schedule='linear'", "callable"],
        ),
        ({"schedule": [0.1, 0.2]}, TypeError, ["`schedule`", "schedule=[0.1, 0.2]"]),
        ({"schedule": None}, TypeError, ["`schedule`", "schedule=None"]),
        (
            {"schedule": schedules.Constant(0.1), "mode": "classic"},
            ValueError,
            ["`mode`", "mode='classic'", "'inverted', 'weight_scaled'"],
        ),
        (
            {"schedule": {"module": "nowhere", "class_name": "Unknown", "config": {}}},
            ValueError,
            ["`schedule`", "Unknown", "register_keras_serializable"],
        ),
    ],
)
def test_bad_constructor_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        kdrop.ScheduledDropout(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_bad_step_value():
    layer = kdrop.ScheduledDropout(schedules.Constant(0.1))
    with pytest.raises(
        ValueError, match=r"`step` must be an int >= 0. Received: step=-1"
    ):
        layer.step = -1


@pytest.mark.parametrize(
    "schedule, words",
    [
        (
            lambda step: float(step) * 0.01,
            ["could not be evaluated at a symbolic step", "keras.ops"],
        ),
        (lambda step: math.exp(-step), ["could not be evaluated at a symbolic step"]),
        (lambda step: None, ["could not be evaluated at step 0"]),
        (
            lambda step: ops.convert_to_tensor(float("nan")),
            ["[0, 1]", "step 0 it returned nan"],
        ),
        (
            lambda step: ops.cast(step, "float32") * 0.1,
            ["[0, 1]", "step 100 it returned 10.0"],
        ),
        (
            lambda step: -0.1 + 0 * ops.cast(step, "float32"),
            ["[0, 1]", "returned -0.1"],
        ),
        (lambda step: ops.full((3,), 0.1), ["scalar", "shape (3,)"]),
    ],
    ids=[
        "float_of_step",
        "math_exp",
        "returns_none",
        "nan",
        "above_one",
        "negative",
        "not_scalar",
    ],
)
def test_bad_user_schedule_is_reported_at_construction(schedule, words):
    with pytest.raises(ValueError) as info:
        kdrop.ScheduledDropout(schedule, name="dropout")
    assert "`schedule` of layer 'dropout'" in str(info.value)
    for word in words:
        assert word in str(info.value)


def unregistered_schedule(step):
    return 0.25 * ops.minimum(ops.cast(step, "float32") / 10.0, 1.0)


@keras.saving.register_keras_serializable(package="kdrop_tests")
def registered_schedule(step):
    return 0.25 * ops.minimum(ops.cast(step, "float32") / 10.0, 1.0)


@pytest.mark.parametrize(
    "schedule",
    [
        lambda step: 0.25 * ops.minimum(ops.cast(step, "float32") / 10.0, 1.0),
        unregistered_schedule,
        schedules.PerEpoch(unregistered_schedule, steps_per_epoch=2),
    ],
    ids=["lambda", "unregistered_function", "wrapped_unregistered_function"],
)
@pytest.mark.parametrize("layer_class", [kdrop.ScheduledDropout, kdrop.InvertedDropout])
def test_saving_a_schedule_that_cannot_be_loaded_warns_naming_the_fix(
    tmp_path, schedule, layer_class
):
    model = keras.Sequential([keras.Input((3,)), layer_class(schedule)])
    path = tmp_path / "model.keras"
    with pytest.warns(UserWarning, match="can be saved but not loaded back") as info:
        model.save(path)
    message = next(str(w.message) for w in info if "not loaded back" in str(w.message))
    assert "register_keras_serializable" in message
    assert "DropoutSchedule subclass" in message
    # The warning is true: the file cannot be loaded.
    with pytest.raises((TypeError, ValueError)):
        keras.saving.load_model(path)


def test_saving_a_registered_function_schedule_does_not_warn_and_loads(tmp_path):
    model = keras.Sequential(
        [keras.Input((3,)), kdrop.ScheduledDropout(registered_schedule, name="d")]
    )
    model.layers[0].step = 4
    path = tmp_path / "model.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.save(path)
    loaded = keras.saving.load_model(path).get_layer("d")
    assert loaded.schedule is registered_schedule and loaded.step == 4
    assert loaded.current_rate == pytest.approx(0.1)  # 0.25 * 4 / 10


@pytest.mark.parametrize(
    "schedule",
    [
        lambda step: 0.25 * ops.minimum(ops.cast(step, "float32") / 10.0, 1.0),
        unregistered_schedule,
    ],
    ids=["lambda", "unregistered_function"],
)
def test_the_unloadable_schedule_warning_does_not_suggest_safe_mode(tmp_path, schedule):
    model = keras.Sequential([keras.Input((3,)), kdrop.ScheduledDropout(schedule)])
    path = tmp_path / "model.keras"
    with pytest.warns(UserWarning, match="not loaded back") as info:
        model.save(path)
    message = next(str(w.message) for w in info if "not loaded back" in str(w.message))
    # Keras's hint, "passing `safe_mode=False` to the loading function", is
    # not repeated: it does not work, and the warning says so.
    assert "passing `safe_mode=False`" not in message
    assert "with safe_mode=False too" in message
    assert "register_keras_serializable" in message
    with pytest.raises(Exception):  # noqa: B017 (any error: not loadable)
        keras.saving.load_model(path, safe_mode=False).predict(
            np.ones((2, 3)), verbose=0
        )

"""Every kdrop layer's `rate`: a number (fixed) or a schedule (in-graph).

Rates seen inside `fit` are measured from the masks the compiled train step
really used, against numpy references of the schedules, with binomial
tolerances of 5 standard deviations; inputs are all ones, so a zero in the
output is a dropped unit.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from kdrop import schedules
from tests.family_references import dropblock_drop_probability

BACKEND = keras.backend.backend()
WIDTH = 2000
BATCH = 10
STEPS_PER_EPOCH = 5  # 50 examples in batches of 10
EPOCHS = 6
STEPS = STEPS_PER_EPOCH * EPOCHS
LAYERS = [kdrop.InvertedDropout, kdrop.WeightScaledDropout]


def five_sigma(rate, n):
    return 5 * math.sqrt(max(rate * (1 - rate), 1e-4) / n)


def zero_fraction(x):
    return ops.mean(ops.cast(ops.equal(x, 0.0), "float32"))


class Recorder(keras.layers.Layer):
    """Identity that writes, at each training step, `statistic` of its input
    into a variable: a statistic of the noise the compiled train step really
    used (on JAX read after the epoch ends). Its Python `call` runs once per
    trace."""

    def __init__(self, steps, statistic=zero_fraction, **kwargs):
        super().__init__(**kwargs)
        self.steps = steps
        self.statistic = statistic
        self.traces = 0
        self.history = self.add_weight(
            shape=(steps,), initializer="zeros", trainable=False, name="history"
        )
        self.index = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="index"
        )

    def call(self, x, training=False):
        self.traces += 1
        if training:
            value = self.statistic(x)
            self.history.assign(
                self.history + ops.one_hot(self.index, self.steps) * value
            )
            self.index.assign_add(1)
        return x


def fit_and_record(
    layer, jit_compile="auto", statistic=zero_fraction, shape=(WIDTH,), batch=BATCH
):
    """Fits Input(shape) -> layer -> Recorder -> Dense(1) on ones for STEPS
    steps; returns the recorded statistic per step and the number of traces
    after the first epoch."""
    recorder = Recorder(STEPS, statistic)
    inputs = keras.Input(shape)
    features = keras.layers.Flatten()(recorder(layer(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(1)(features))
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit_compile)
    x = np.ones((batch * STEPS_PER_EPOCH, *shape), "float32")
    y = np.zeros((len(x), 1), "float32")
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    traces = recorder.traces
    model.fit(x, y, batch_size=batch, epochs=EPOCHS - 1, verbose=0)
    return ops.convert_to_numpy(recorder.history), recorder.traces - traces


def linear(step):
    return 0.1 + 0.6 * min(step / STEPS, 1.0)


def halving(step):
    """A plain callable written with keras.ops: 0.6 halved every 10 steps."""
    return 0.6 * ops.power(0.5, ops.floor(ops.cast(step, "float32") / 10.0))


# name -> (schedule factory, numpy reference of the step)
SCHEDULES = {
    "kdrop_linear": (lambda: schedules.Linear(0.1, 0.7, STEPS), linear),
    "per_epoch": (
        lambda: schedules.PerEpoch(
            schedules.Linear(0.1, 0.7, EPOCHS), STEPS_PER_EPOCH, staircase=True
        ),
        lambda t: 0.1 + 0.6 * (t // STEPS_PER_EPOCH) / EPOCHS,
    ),
    "keras_polynomial_decay": (
        lambda: keras.optimizers.schedules.PolynomialDecay(
            0.7, decay_steps=STEPS, end_learning_rate=0.1
        ),
        lambda t: 0.7 - 0.6 * min(t, STEPS) / STEPS,
    ),
    "plain_callable": (lambda: halving, lambda t: 0.6 * 0.5 ** (t // 10)),
}

JIT = (
    [pytest.param(False, id="graph"), pytest.param(True, id="xla")]
    if BACKEND == "tensorflow"
    else [pytest.param("auto", id="auto")]
)


# Every kind of schedule on InvertedDropout; the other convention once (the
# mechanism is shared, the convention only scales the kept units).
SCHEDULED_CASES = [(kdrop.InvertedDropout, name) for name in SCHEDULES] + [
    (kdrop.WeightScaledDropout, "kdrop_linear")
]


@pytest.mark.parametrize("jit_compile", JIT)
@pytest.mark.parametrize("layer_class, name", SCHEDULED_CASES)
def test_scheduled_rate_changes_every_step_inside_fit_without_retrace(
    layer_class, name, jit_compile
):
    schedule, reference = SCHEDULES[name]
    layer = layer_class(schedule(), seed=1)
    recorded, retraces = fit_and_record(layer, jit_compile)
    for step in range(STEPS):
        rate = reference(step)
        assert abs(recorded[step] - rate) < five_sigma(rate, BATCH * WIDTH), step
    assert layer.step == STEPS
    assert layer.current_rate == pytest.approx(reference(STEPS), abs=1e-6)
    assert kdrop.registry.current_rate(layer) == pytest.approx(
        reference(STEPS), abs=1e-6
    )
    if BACKEND != "torch":  # torch runs the train step eagerly: no trace
        assert retraces == 0


def noise_variance(x):
    return ops.mean(ops.square(x - 1.0))


DROPBLOCK_MAP = (12, 12)
DROPBLOCK_SIZE = 3


def dropblock_fraction(rate):
    return float(
        np.mean(dropblock_drop_probability(rate, DROPBLOCK_SIZE, DROPBLOCK_MAP))
    )


# name -> (layer of a schedule, input shape, batch, recorded statistic,
#          its expectation at a rate, its standard deviation at a rate)
FAMILY = {
    "drop_path": (
        lambda schedule: kdrop.layers.DropPath(schedule, seed=3),
        (4,),
        200,
        zero_fraction,
        lambda r: r,
        lambda r: math.sqrt(r * (1 - r) / 200),
    ),
    "gaussian_dropout": (
        lambda schedule: kdrop.layers.GaussianDropout(schedule, seed=3),
        (WIDTH,),
        BATCH,
        noise_variance,  # of r ~ N(1, rate / (1 - rate))
        lambda r: r / (1 - r),
        lambda r: math.sqrt(2 / (BATCH * WIDTH)) * r / (1 - r),
    ),
    "drop_block_2d": (
        lambda schedule: kdrop.layers.DropBlock2D(
            schedule, DROPBLOCK_SIZE, data_format="channels_last", seed=3
        ),
        (*DROPBLOCK_MAP, 4),
        16,
        zero_fraction,
        dropblock_fraction,
        # Units less than a block apart share seeds: at most (2 * 3 - 1)**2
        # correlated neighbours bound the variance.
        lambda r: (
            (2 * DROPBLOCK_SIZE - 1)
            * math.sqrt(
                dropblock_fraction(r) * (1 - dropblock_fraction(r)) / (16 * 12 * 12 * 4)
            )
        ),
    ),
}


@pytest.mark.parametrize("jit_compile", JIT)
@pytest.mark.parametrize("name", list(FAMILY))
def test_every_family_layer_follows_its_schedule_inside_fit(name, jit_compile):
    make, shape, batch, statistic, expected, sd = FAMILY[name]
    layer = make(schedules.Linear(0.1, 0.7, STEPS))
    recorded, retraces = fit_and_record(layer, jit_compile, statistic, shape, batch)
    for step in range(STEPS):
        rate = linear(step)
        assert abs(recorded[step] - expected(rate)) < 5 * sd(rate), (step, rate)
    assert layer.step == STEPS
    assert kdrop.registry.current_rate(layer) == pytest.approx(0.7, abs=1e-6)
    if BACKEND != "torch":
        assert retraces == 0


@pytest.mark.parametrize("layer_class", LAYERS)
def test_fixed_rate_keeps_the_fast_path(layer_class):
    layer = layer_class(np.float32(0.25))
    assert type(layer.rate) is float and layer.rate == 0.25
    assert layer._rate_tensor() == 0.25  # a Python float, no tensor op
    assert layer.schedule is None and layer.step is None
    # Only the seed state: no step counter for a fixed rate.
    assert [v is layer.seed_generator.state for v in layer.variables] == [True]
    recorded, _ = fit_and_record(layer)
    for fraction in recorded:
        assert abs(fraction - 0.25) < five_sigma(0.25, BATCH * WIDTH)


@pytest.mark.parametrize(
    "mode, layer_class",
    [("inverted", kdrop.InvertedDropout), ("weight_scaled", kdrop.WeightScaledDropout)],
)
def test_scheduled_dropout_is_the_layer_with_a_schedule(mode, layer_class):
    # Same seed, same schedule: the same masks and values at every step.
    x = np.random.default_rng(0).uniform(0.5, 2.0, (50, 40)).astype("float32")
    old = kdrop.ScheduledDropout(schedules.Linear(0.1, 0.7, 4), mode=mode, seed=7)
    new = layer_class(schedules.Linear(0.1, 0.7, 4), seed=7)
    for _ in range(6):
        for training in (True, False):
            np.testing.assert_array_equal(
                ops.convert_to_numpy(old(x, training=training)),
                ops.convert_to_numpy(new(x, training=training)),
            )
    assert old.step == new.step == 6


@pytest.mark.parametrize("layer_class", LAYERS)
def test_sample_and_inference_never_advance_the_step(layer_class):
    layer = layer_class(schedules.Linear(0.0, 0.5, 10))
    x = np.ones((4, 8), "float32")
    layer(x)
    layer(x, training=False)
    layer.sample(x)
    kdrop.registry.sample(layer, x)
    assert layer.step == 0
    layer(x, training=True)
    assert layer.step == 1
    assert layer.current_rate == pytest.approx(0.05, abs=1e-7)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_config_and_keras_file_keep_the_schedule_and_its_step(layer_class, tmp_path):
    layer = layer_class(
        schedules.PerEpoch(schedules.Cosine(0.5, 0.1, 4), 3), seed=2, name="drop"
    )
    clone = layer_class.from_config(layer.get_config())
    assert clone.schedule.get_config() == layer.schedule.get_config()
    assert layer_class.from_config(layer_class(0.3).get_config()).rate == 0.3

    model = keras.Sequential([keras.Input((6,)), layer, keras.layers.Dense(1)])
    layer.step = 7
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras").get_layer("drop")
    assert type(restored) is layer_class and restored.step == 7
    # Cosine over 4 epochs of 3 steps: 0.5 -> 0.1 at 7 / 12 of the way.
    expected = 0.1 + 0.2 * (1 + math.cos(math.pi * 7 / 12))
    assert restored.current_rate == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_rate_of_a_scheduled_layer_cannot_be_reassigned(layer_class):
    layer = layer_class(schedules.Constant(0.2), name="drop")
    with pytest.raises(AttributeError, match="set at construction") as error:
        layer.rate = 0.4
    assert "'drop'" in str(error.value) and "0.4" in str(error.value)
    assert layer.schedule.rate == 0.2


@pytest.mark.parametrize(
    "rate, error, words",
    [
        ("0.2", TypeError, ["`rate` must be a number in [0, 1)", "or a schedule"]),
        (None, TypeError, ["rate=None of type NoneType"]),
        ([0.1], TypeError, ["rate=[0.1]"]),
        (1.0, ValueError, ["`rate` must be a number in [0, 1)", "rate=1.0"]),
        (
            lambda step: float(step),
            ValueError,
            ["`rate` of layer 'drop' could not be evaluated at a symbolic step"],
        ),
        (
            lambda step: ops.cast(step, "float32"),
            ValueError,
            ["`rate` of layer 'drop' must return rates in [0, 1]", "step 10"],
        ),
        (
            {"module": "nowhere", "class_name": "Unknown", "config": {}},
            ValueError,
            ["`rate` config could not be deserialized", "Unknown"],
        ),
    ],
    ids=["string", "none", "list", "one", "python_only", "above_one", "bad_config"],
)
@pytest.mark.parametrize("layer_class", LAYERS)
def test_bad_rate_is_reported_at_construction(layer_class, rate, error, words):
    with pytest.raises(error) as info:
        layer_class(rate, name="drop")
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("value, error", [(3, AttributeError), (-1, ValueError)])
def test_step_of_a_fixed_rate_cannot_be_set(value, error):
    layer = kdrop.InvertedDropout(0.2, name="drop")
    with pytest.raises(error, match="step"):
        layer.step = value
    assert layer.step is None

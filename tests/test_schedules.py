"""Dropout-rate schedules against their closed-form formulas (numpy).

Each schedule is evaluated both eagerly at Python-int steps and inside a
compiled function at tensor steps (TensorFlow XLA, jax.jit; torch runs
eagerly), as ScheduledDropout evaluates it inside the train step.
"""

import keras
import numpy as np
import pytest
from keras import ops

from kdrop import schedules
from kdrop.schedules.dropout import MAX_CURRICULUM_GAMMA, MIN_CURRICULUM_GAMMA

STEPS = np.array([0, 1, 7, 30, 59, 60, 61, 500, 5000])
LIU_STEPS_PER_EPOCH = 40
# Steps around Liu et al.'s epoch boundaries (40 steps per epoch, 300 epochs).
LIU_STEPS = np.array([0, 39, 40, 41, 1000, 1999, 2000, 2001, 11999])


def compiled(function):
    """`function` compiled as the backend compiles a train step."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


def evaluate(schedule, steps, in_graph=False):
    if in_graph:
        function = compiled(lambda step: schedule(step))
        steps = [ops.convert_to_tensor(int(t), "int32") for t in steps]
    else:
        function, steps = schedule, [int(t) for t in steps]
    return np.array([float(ops.convert_to_numpy(function(t))) for t in steps])


def liu_epochs(steps, staircase):
    epochs = steps / LIU_STEPS_PER_EPOCH
    return np.floor(epochs) if staircase else epochs


# name -> (schedule, numpy reference of the step array, steps checked)
REFERENCES = {
    "constant": (schedules.Constant(0.25), lambda t: np.full(t.shape, 0.25), STEPS),
    "annealed_rennie_2014": (
        schedules.Linear(0.5, 0.0, 60),
        lambda t: 0.5 * (1.0 - np.minimum(t / 60.0, 1.0)),
        STEPS,
    ),
    "scheduled_drop_path_nasnet": (
        schedules.Linear(0.0, 0.3, 60),
        lambda t: np.minimum(1.0, t / 60.0) * 0.3,
        STEPS,
    ),
    "linear_up_and_held": (
        schedules.Linear(0.1, 0.7, 60),
        lambda t: 0.1 + 0.6 * np.minimum(t / 60.0, 1.0),
        STEPS,
    ),
    "curriculum_morerio_2017": (
        # keep(t) = (1 - keep_final) exp(-gamma t) + keep_final, MNIST setting.
        schedules.Curriculum(final_rate=1 - 0.5, gamma=1e-3),
        lambda t: 1.0 - ((1.0 - 0.5) * np.exp(-1e-3 * t) + 0.5),
        STEPS,
    ),
    "early_liu_2023_linear_per_batch": (
        # Rate 0.1 decaying linearly to 0 over the first 50 of 300 epochs.
        schedules.PerEpoch(schedules.Early(0.1, 50), LIU_STEPS_PER_EPOCH),
        lambda t: 0.1 * np.maximum(1.0 - liu_epochs(t, False) / 50.0, 0.0),
        LIU_STEPS,
    ),
    "early_liu_2023_linear_per_epoch": (
        schedules.PerEpoch(
            schedules.Early(0.1, 50), LIU_STEPS_PER_EPOCH, staircase=True
        ),
        lambda t: 0.1 * np.maximum(1.0 - liu_epochs(t, True) / 50.0, 0.0),
        LIU_STEPS,
    ),
    "early_constant": (
        schedules.Early(0.2, until_step=60, decay="constant"),
        lambda t: np.where(t < 60, 0.2, 0.0),
        STEPS,
    ),
    "late_liu_2023_in_epochs": (
        # No dropout for the first 50 epochs, 0.1 from epoch 50 on.
        schedules.PerEpoch(schedules.Late(0.1, 50), LIU_STEPS_PER_EPOCH),
        lambda t: np.where(t >= 50 * LIU_STEPS_PER_EPOCH, 0.1, 0.0),
        LIU_STEPS,
    ),
    "late": (
        schedules.Late(0.4, from_step=60),
        lambda t: np.where(t >= 60, 0.4, 0.0),
        STEPS,
    ),
    "cosine": (
        schedules.Cosine(0.6, 0.1, 60),
        lambda t: 0.1 + 0.5 * 0.5 * (1 + np.cos(np.pi * np.minimum(t / 60.0, 1.0))),
        STEPS,
    ),
    "piecewise": (
        schedules.Piecewise([10, 60], [0.5, 0.3, 0.1]),
        lambda t: np.select([t < 10, t < 60], [0.5, 0.3], 0.1),
        np.array([0, 9, 10, 11, 59, 60, 61, 1000]),
    ),
    "piecewise_boundary_at_zero": (
        schedules.Piecewise([0, 1], [0.4, 0.2, 0.0]),
        lambda t: np.select([t < 0, t < 1], [0.4, 0.2], 0.0),
        np.array([0, 1, 2]),
    ),
    "piecewise_no_boundaries": (
        schedules.Piecewise([], [0.3]),
        lambda t: np.full(t.shape, 0.3),
        np.array([0, 100]),
    ),
    "per_epoch_staircase_piecewise": (
        schedules.PerEpoch(schedules.Piecewise([2], [0.5, 0.2]), 32, staircase=True),
        lambda t: np.where(t >= 64, 0.2, 0.5),
        np.array([0, 63, 64, 65]),
    ),
}


@pytest.mark.parametrize("in_graph", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", list(REFERENCES))
def test_schedule_matches_its_formula(name, in_graph):
    schedule, reference, steps = REFERENCES[name]
    np.testing.assert_allclose(
        evaluate(schedule, steps, in_graph),
        reference(steps.astype(np.float64)),
        atol=1e-6,
    )


def test_piecewise_returns_the_listed_rates_exactly():
    rates = [0.5, 0.3, 0.1]
    schedule = schedules.Piecewise([10, 60], rates)
    values = evaluate(schedule, [0, 10, 60])
    np.testing.assert_array_equal(values, np.array(rates, "float32"))


def test_per_epoch_is_a_change_of_unit():
    """PerEpoch(Linear over E epochs, n) is Linear over E * n steps."""
    steps = np.arange(0, 400, 7)
    in_epochs = schedules.PerEpoch(schedules.Linear(0.5, 0.1, 10), steps_per_epoch=32)
    np.testing.assert_allclose(
        evaluate(in_epochs, steps),
        evaluate(schedules.Linear(0.5, 0.1, 320), steps),
        atol=1e-6,
    )


def test_per_epoch_accepts_a_plain_callable_of_the_epoch():
    schedule = schedules.PerEpoch(
        lambda epoch: 0.4 * ops.power(0.5, epoch), steps_per_epoch=10, staircase=True
    )
    steps = np.array([0, 9, 10, 25])
    np.testing.assert_allclose(
        evaluate(schedule, steps), 0.4 * 0.5 ** (steps // 10), atol=1e-6
    )


@pytest.mark.parametrize("name", list(REFERENCES))
def test_serialization_round_trip(name):
    schedule, reference, steps = REFERENCES[name]
    config = keras.saving.serialize_keras_object(schedule)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    np.testing.assert_allclose(
        evaluate(restored, steps), reference(steps.astype(np.float64)), atol=1e-6
    )
    from_config = type(schedule).from_config(schedule.get_config())
    np.testing.assert_allclose(evaluate(from_config, steps), evaluate(schedule, steps))


def test_nested_per_epoch_round_trip_keeps_the_inner_schedule():
    schedule = schedules.PerEpoch(
        schedules.PerEpoch(schedules.Cosine(0.5, 0.0, 4), 2, staircase=True), 3
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule)
    )
    assert isinstance(restored.schedule, schedules.PerEpoch)
    assert isinstance(restored.schedule.schedule, schedules.Cosine)
    assert restored.schedule.staircase is True and restored.staircase is False
    # 6 steps per inner epoch; the inner Cosine runs over 4 whole inner epochs.
    steps = np.arange(0, 30)
    inner_epochs = np.floor(steps / 6.0)
    expected = 0.5 * 0.5 * (1 + np.cos(np.pi * np.minimum(inner_epochs / 4.0, 1.0)))
    np.testing.assert_allclose(evaluate(restored, steps), expected, atol=1e-6)


NAN = float("nan")


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: schedules.Constant(1.0), ValueError, ["`rate`", "rate=1.0", "[0, 1)"]),
        (lambda: schedules.Constant(NAN), ValueError, ["`rate`", "rate=nan"]),
        (lambda: schedules.Constant("0.5"), TypeError, ["`rate`", "'0.5'", "str"]),
        (
            lambda: schedules.Linear(-0.1, 0.5, 10),
            ValueError,
            ["`start_rate`", "start_rate=-0.1"],
        ),
        (
            lambda: schedules.Linear(0.1, 1.5, 10),
            ValueError,
            ["`end_rate`", "end_rate=1.5"],
        ),
        (
            lambda: schedules.Linear(0.1, NAN, 10),
            ValueError,
            ["`end_rate`", "end_rate=nan"],
        ),
        (
            lambda: schedules.Linear(0.1, 0.5, 0),
            ValueError,
            ["`steps`", "steps=0", "positive int"],
        ),
        (lambda: schedules.Linear(0.1, 0.5, -3), ValueError, ["`steps`", "steps=-3"]),
        (lambda: schedules.Cosine(0.1, 0.5, 2.5), TypeError, ["`steps`", "steps=2.5"]),
        (
            lambda: schedules.Cosine(1.0, 0.5, 10),
            ValueError,
            ["`start_rate`", "start_rate=1.0"],
        ),
        (
            lambda: schedules.Curriculum(1.2, 1e-3),
            ValueError,
            ["`final_rate`", "final_rate=1.2"],
        ),
        (
            lambda: schedules.Curriculum(0.5, 0.0),
            ValueError,
            ["`gamma`", "gamma=0.0", "[4.131e-08, 3.403e+38]", "float32"],
        ),
        (
            lambda: schedules.Curriculum(0.5, -1e-3),
            ValueError,
            ["`gamma`", "gamma=-0.001"],
        ),
        (lambda: schedules.Curriculum(0.5, NAN), ValueError, ["`gamma`", "gamma=nan"]),
        (
            lambda: schedules.Curriculum(0.5, float("inf")),
            ValueError,
            ["`gamma`", "gamma=inf"],
        ),
        (
            lambda: schedules.Curriculum(0.5, 1e300),
            ValueError,
            ["`gamma`", "gamma=1e+300", "3.403e+38", "float32"],
        ),
        (
            lambda: schedules.Curriculum(0.5, 1e-9),
            ValueError,
            ["`gamma`", "gamma=1e-09", "4.131e-08"],
        ),
        (
            lambda: schedules.Curriculum(0.5, "fast"),
            TypeError,
            ["`gamma`", "'fast'", "str"],
        ),
        (lambda: schedules.Early(0.1, 0), ValueError, ["`until_step`", "until_step=0"]),
        (lambda: schedules.Early(-0.1, 10), ValueError, ["`rate`", "rate=-0.1"]),
        (
            lambda: schedules.Early(0.1, 10, decay="cubic"),
            ValueError,
            ["`decay`", "decay='cubic'", "'linear', 'constant'"],
        ),
        (
            lambda: schedules.Late(0.1, -1),
            ValueError,
            ["`from_step`", "from_step=-1", ">= 0"],
        ),
        (lambda: schedules.Late(1.0, 5), ValueError, ["`rate`", "rate=1.0"]),
        (
            lambda: schedules.Piecewise([10, 5], [0.1, 0.2, 0.3]),
            ValueError,
            ["`boundaries`", "strictly increasing", "[10, 5]"],
        ),
        (
            lambda: schedules.Piecewise([5, 5], [0.1, 0.2, 0.3]),
            ValueError,
            ["`boundaries`", "[5, 5]"],
        ),
        (
            lambda: schedules.Piecewise([3, -1], [0.1, 0.2, 0.3]),
            ValueError,
            ["`boundaries[1]`", "boundaries[1]=-1"],
        ),
        (
            lambda: schedules.Piecewise(10, [0.1, 0.2]),
            TypeError,
            ["`boundaries`", "boundaries=10"],
        ),
        (
            lambda: schedules.Piecewise([10], [0.1]),
            ValueError,
            ["`rates`", "one more entry", "rates=[0.1]"],
        ),
        (
            lambda: schedules.Piecewise([10], [0.1, 0.2, 0.3]),
            ValueError,
            ["`rates`", "1 boundaries"],
        ),
        (
            lambda: schedules.Piecewise([10], [0.1, 1.2]),
            ValueError,
            ["`rates[1]`", "rates[1]=1.2"],
        ),
        (
            lambda: schedules.Piecewise([10], [NAN, 0.2]),
            ValueError,
            ["`rates[0]`", "rates[0]=nan"],
        ),
        (
            lambda: schedules.PerEpoch(0.5, 10),
            TypeError,
            ["`schedule`", "schedule=0.5"],
        ),
        (
            lambda: schedules.PerEpoch(schedules.Constant(0.1), 0),
            ValueError,
            ["`steps_per_epoch`", "steps_per_epoch=0"],
        ),
        (
            lambda: schedules.PerEpoch(schedules.Constant(0.1), 10, staircase="yes"),
            TypeError,
            ["`staircase`", "staircase='yes'"],
        ),
    ],
)
def test_bad_schedule_arguments(make, error, words):
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value)


def test_schedule_repr_names_arguments():
    assert (
        repr(schedules.Linear(0.1, 0.5, 10))
        == "Linear(start_rate=0.1, end_rate=0.5, steps=10)"
    )


def test_curriculum_gamma_at_its_float32_limits_gives_finite_rates():
    # The bounds of gamma's check, against the formula in float64.
    steps = [0, 1, 2, 1000, 2**23, 2**24]
    for gamma in (MIN_CURRICULUM_GAMMA, MAX_CURRICULUM_GAMMA):
        rates = evaluate(schedules.Curriculum(0.5, gamma), steps, in_graph=True)
        with np.errstate(over="ignore"):
            expected = 0.5 * -np.expm1(-gamma * np.array(steps, np.float64))
        assert np.all(np.isfinite(rates))
        np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-7)
    # The smallest gamma reaches half the final rate at step 2**24.
    assert evaluate(
        schedules.Curriculum(0.5, MIN_CURRICULUM_GAMMA), [2**24]
    ) == pytest.approx([0.25], rel=1e-5)

"""Dropout-rate schedules against their closed-form formulas (numpy)."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from kdrop import schedules

STEPS = np.array([0, 1, 7, 30, 59, 60, 61, 500, 5000])


def evaluate(schedule, steps=STEPS):
    return np.array([float(ops.convert_to_numpy(schedule(int(t)))) for t in steps])


def test_linear_annealed_dropout_rennie_2014():
    expected = 0.5 + (0.0 - 0.5) * np.minimum(STEPS / 60.0, 1.0)
    np.testing.assert_allclose(evaluate(schedules.Linear(0.5, 0.0, 60)), expected, atol=1e-6)


def test_linear_scheduled_drop_path_nasnet():
    # NASNet: rate(t) = min(1, t / T) * final_rate.
    expected = np.minimum(1.0, STEPS / 60.0) * 0.3
    np.testing.assert_allclose(evaluate(schedules.Linear(0.0, 0.3, 60)), expected, atol=1e-6)


def test_curriculum_morerio_2017():
    gamma, keep_final = 1e-3, 0.5
    keep = (1.0 - keep_final) * np.exp(-gamma * STEPS) + keep_final
    np.testing.assert_allclose(
        evaluate(schedules.Curriculum(1 - keep_final, gamma)), 1.0 - keep, atol=1e-6
    )


def test_early_dropout_liu_2023_in_epochs():
    # Rate 0.1 decaying linearly to 0 over the first 50 of 300 epochs.
    steps_per_epoch = 40
    schedule = schedules.PerEpoch(schedules.Early(0.1, until_step=50), steps_per_epoch)
    steps = np.array([0, 39, 40, 41, 1000, 1999, 2000, 11999])
    epochs = np.floor(steps / steps_per_epoch)
    expected = 0.1 * np.maximum(1.0 - epochs / 50.0, 0.0)
    np.testing.assert_allclose(evaluate(schedule, steps), expected, atol=1e-6)


def test_early_constant_stops_at_until_step():
    expected = np.where(STEPS < 60, 0.2, 0.0)
    np.testing.assert_allclose(
        evaluate(schedules.Early(0.2, until_step=60, decay="constant")), expected, atol=1e-7
    )


def test_late_dropout():
    expected = np.where(STEPS >= 60, 0.4, 0.0)
    np.testing.assert_allclose(evaluate(schedules.Late(0.4, from_step=60)), expected, atol=1e-7)


def test_cosine():
    done = np.minimum(STEPS / 60.0, 1.0)
    expected = 0.1 + (0.6 - 0.1) * 0.5 * (1 + np.cos(np.pi * done))
    np.testing.assert_allclose(evaluate(schedules.Cosine(0.6, 0.1, 60)), expected, atol=1e-6)


def test_piecewise():
    schedule = schedules.Piecewise([10, 60], [0.5, 0.3, 0.1])
    steps = np.array([0, 9, 10, 11, 59, 60, 1000])
    expected = np.array([0.5, 0.5, 0.3, 0.3, 0.3, 0.1, 0.1])
    np.testing.assert_allclose(evaluate(schedule, steps), expected, atol=1e-6)


def test_constant():
    np.testing.assert_allclose(evaluate(schedules.Constant(0.25)), 0.25, atol=1e-7)


ALL_SCHEDULES = [
    schedules.Constant(0.25),
    schedules.Linear(0.1, 0.7, 60),
    schedules.Curriculum(0.5, 1e-3),
    schedules.Early(0.1, 50, decay="constant"),
    schedules.Late(0.3, 20),
    schedules.Cosine(0.5, 0.0, 100),
    schedules.Piecewise([5, 9], [0.1, 0.2, 0.3]),
    schedules.PerEpoch(schedules.Linear(0.5, 0.0, 10), steps_per_epoch=32),
]


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_serialization_round_trip(schedule):
    config = keras.saving.serialize_keras_object(schedule)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(schedule)
    np.testing.assert_allclose(evaluate(restored), evaluate(schedule))


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: schedules.Constant(1.0), ValueError, ["rate", "1.0"]),
        (lambda: schedules.Constant(float("nan")), ValueError, ["rate", "nan"]),
        (lambda: schedules.Linear(-0.1, 0.5, 10), ValueError, ["start_rate", "-0.1"]),
        (lambda: schedules.Linear(0.1, 1.5, 10), ValueError, ["end_rate", "1.5"]),
        (lambda: schedules.Linear(0.1, 0.5, 0), ValueError, ["steps", "0"]),
        (lambda: schedules.Cosine(0.1, 0.5, 2.5), ValueError, ["steps", "2.5"]),
        (lambda: schedules.Curriculum(0.5, 0.0), ValueError, ["gamma", "0.0"]),
        (lambda: schedules.Curriculum(0.5, float("inf")), ValueError, ["gamma", "inf"]),
        (lambda: schedules.Early(0.1, 0), ValueError, ["until_step", "0"]),
        (lambda: schedules.Early(0.1, 10, decay="cubic"), ValueError, ["decay", "'cubic'", "'linear'"]),
        (lambda: schedules.Late(0.1, -1), ValueError, ["from_step", "-1"]),
        (lambda: schedules.Piecewise([10, 5], [0.1, 0.2, 0.3]), ValueError, ["boundaries", "[10, 5]"]),
        (lambda: schedules.Piecewise([10], [0.1]), ValueError, ["rates", "[0.1]"]),
        (lambda: schedules.Piecewise([10], [0.1, 1.2]), ValueError, ["rates", "1.2"]),
        (lambda: schedules.PerEpoch(0.5, 10), TypeError, ["schedule", "0.5"]),
        (lambda: schedules.PerEpoch(schedules.Constant(0.1), 0), ValueError, ["steps_per_epoch", "0"]),
    ],
)
def test_bad_schedule_arguments(make, error, words):
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value)


def test_schedule_repr_names_arguments():
    assert repr(schedules.Linear(0.1, 0.5, 10)) == "Linear(start_rate=0.1, end_rate=0.5, steps=10)"
    assert math.isclose(float(ops.convert_to_numpy(schedules.Linear(0.1, 0.5, 10)(5))), 0.3, rel_tol=1e-6)

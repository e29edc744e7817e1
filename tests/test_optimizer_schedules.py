"""The papers' learning-rate / momentum recipes (kdrop.optimizer_schedules)."""

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from kdrop import optimizer_schedules as schedules


def value(schedule, t):
    return float(ops.convert_to_numpy(schedule(t)))


def hinton_momentum(epoch, start=0.5, end=0.99, epochs=500):
    return start + (end - start) * min(epoch / epochs, 1.0)


def test_hinton2012_defaults_follow_the_paper():
    lr, momentum = schedules.hinton2012()
    for epoch in (0, 1, 100, 499, 500, 800):
        expected_momentum = hinton_momentum(epoch)
        assert value(momentum, epoch) == pytest.approx(expected_momentum, rel=1e-6)
        paper_rate = 10.0 * 0.998**epoch
        assert value(lr, epoch) == pytest.approx(
            (1 - expected_momentum) * paper_rate, rel=1e-4
        )


def test_hinton2012_with_keras_sgd_rule_takes_the_papers_steps():
    """Paper: dw = p dw - (1 - p) eps g, w += dw. Keras: v = m v - lr g, w += v."""
    lr, momentum = schedules.hinton2012(
        learning_rate=0.5,
        decay=0.9,
        momentum_start=0.2,
        momentum_end=0.9,
        momentum_epochs=4,
    )
    curvature = np.array([1.0, 0.3, 0.05])  # gradient of sum(curvature * w**2 / 2)
    paper_w = keras_w = np.ones(3)
    paper_dw = keras_v = np.zeros(3)
    for epoch in range(8):
        p = hinton_momentum(epoch, 0.2, 0.9, 4)
        paper_dw = p * paper_dw - (1 - p) * 0.5 * 0.9**epoch * curvature * paper_w
        paper_w = paper_w + paper_dw
        keras_v = (
            value(momentum, epoch) * keras_v - value(lr, epoch) * curvature * keras_w
        )
        keras_w = keras_w + keras_v
    np.testing.assert_allclose(keras_w, paper_w, rtol=1e-5)


def test_srivastava2014_defaults_are_the_papers_example_configuration():
    lr, momentum = schedules.srivastava2014()
    for step in (0, 5_000, 10_000, 100_000, 250_000):
        assert value(lr, step) == pytest.approx(1.0 / (1 + step / 10_000), rel=1e-5)
        expected = 0.5 + 0.49 * min(step / 100_000, 1.0)
        assert value(momentum, step) == pytest.approx(expected, rel=1e-5)
    lr, momentum = schedules.srivastava2014(
        learning_rate=2.0,
        decay_steps=10,
        momentum_start=0.1,
        momentum_end=0.5,
        momentum_steps=20,
    )
    for step in (0, 5, 10, 40):
        assert value(lr, step) == pytest.approx(2.0 / (1 + step / 10), rel=1e-5)
        assert value(momentum, step) == pytest.approx(
            0.1 + 0.4 * min(step / 20, 1.0), rel=1e-5
        )


def test_hinton_learning_rate_serializes():
    lr, _ = schedules.hinton2012(learning_rate=3.0, momentum_epochs=7)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(lr)
    )
    assert isinstance(restored, schedules.HintonLearningRate)
    for epoch in (0, 3, 10):
        assert value(restored, epoch) == pytest.approx(value(lr, epoch))


@pytest.mark.parametrize(
    "preset, kwargs, error, words",
    [
        (
            schedules.hinton2012,
            {"momentum_end": 1.0},
            ValueError,
            ["momentum_end", "1.0", "[0, 1)"],
        ),
        (
            schedules.hinton2012,
            {"momentum_start": -0.1},
            ValueError,
            ["momentum_start", "-0.1"],
        ),
        (schedules.hinton2012, {"decay": 0.0}, ValueError, ["decay", "0.0", "(0, 1]"]),
        (
            schedules.hinton2012,
            {"learning_rate": float("inf")},
            ValueError,
            ["learning_rate", "inf"],
        ),
        (
            schedules.hinton2012,
            {"learning_rate": "10"},
            TypeError,
            ["learning_rate", "'10'"],
        ),
        (
            schedules.hinton2012,
            {"momentum_epochs": 0},
            ValueError,
            ["momentum_epochs", "0"],
        ),
        (
            schedules.srivastava2014,
            {"decay_steps": 0},
            ValueError,
            ["decay_steps", "0"],
        ),
        (
            schedules.srivastava2014,
            {"momentum_steps": 2.5},
            TypeError,
            ["momentum_steps", "2.5"],
        ),
        (
            schedules.srivastava2014,
            {"learning_rate": 0},
            ValueError,
            ["learning_rate", "0"],
        ),
        (
            schedules.srivastava2014,
            {"momentum_end": None},
            TypeError,
            ["momentum_end", "None"],
        ),
    ],
)
def test_bad_arguments(preset, kwargs, error, words):
    with pytest.raises(error) as info:
        preset(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_linear_momentum_is_a_named_momentum_ramp_that_serializes():
    momentum = schedules.LinearMomentum(0.5, 0.9, 4)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(momentum)
    )
    assert isinstance(restored, schedules.LinearMomentum)
    for t, expected in ((0, 0.5), (1, 0.6), (4, 0.9), (9, 0.9)):
        assert value(momentum, t) == pytest.approx(expected, rel=1e-6)
        assert value(restored, t) == pytest.approx(expected, rel=1e-6)
    _, hinton_momentum_schedule = schedules.hinton2012(momentum_end=0.95)
    assert isinstance(hinton_momentum_schedule, schedules.LinearMomentum)
    assert (hinton_momentum_schedule.start, hinton_momentum_schedule.end) == (0.5, 0.95)
    with pytest.raises(ValueError, match=r"`end` must be a number in \[0, 1\)"):
        schedules.LinearMomentum(0.5, 1.0, 4)


def test_the_first_names_still_work():
    for name in ("hinton2012", "srivastava2014", "HintonLearningRate"):
        assert getattr(kdrop.schedules, name) is getattr(
            kdrop.optimizer_schedules, name
        )

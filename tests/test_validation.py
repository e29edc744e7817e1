"""One validation rule: wrong type -> TypeError, wrong value -> ValueError,
numpy scalars accepted wherever Python numbers are."""

import json
import re

import numpy as np
import pytest
from keras import ops

import kdrop
from kdrop import callbacks, optimizer_schedules, schedules, validation
from tests.callback_models import X, Y, relu_model
from tests.event_files import read_scalars

INTEGER_CHECKS = [
    (validation.check_positive_int, 1),
    (validation.check_non_negative_int, 0),
]


@pytest.mark.parametrize("check, smallest", INTEGER_CHECKS)
@pytest.mark.parametrize("kind", [int, np.int8, np.int32, np.int64, np.uint16])
def test_integer_checks_accept_python_and_numpy_integers(check, smallest, kind):
    value = check(kind(smallest + 3), "n")
    assert value == smallest + 3 and type(value) is int


@pytest.mark.parametrize("check, smallest", INTEGER_CHECKS)
@pytest.mark.parametrize("value", [1.0, np.float64(2.0), "3", None, True, [1]])
def test_integer_checks_refuse_other_types_with_type_error(check, smallest, value):
    with pytest.raises(TypeError) as info:
        check(value, "n")
    message = str(info.value)
    assert f"n={value!r}" in message and type(value).__name__ in message


@pytest.mark.parametrize("check, smallest", INTEGER_CHECKS)
@pytest.mark.parametrize("kind", [int, np.int64])
def test_integer_checks_refuse_values_below_the_minimum_with_value_error(
    check, smallest, kind
):
    value = kind(smallest - 1)
    with pytest.raises(ValueError, match=re.escape(f"n={value!r}")):
        check(value, "n")


@pytest.mark.parametrize("seed", [None, 3, np.int64(3), np.int32(-2)])
def test_check_seed_accepts_none_and_integers(seed):
    checked = validation.check_seed(seed)
    assert checked == seed and (seed is None or type(checked) is int)


@pytest.mark.parametrize("seed", [1.5, np.float32(1.0), "1", True])
def test_check_seed_refuses_non_integers(seed):
    with pytest.raises(TypeError, match="`seed` must be None or an int"):
        validation.check_seed(seed)


@pytest.mark.parametrize(
    "value", [0.5, np.float16(0.5), np.float32(0.5), np.float64(0.5)]
)
def test_number_checks_accept_numpy_floats(value):
    for check in (validation.check_rate, validation.check_momentum):
        checked = check(value)
        assert checked == 0.5 and type(checked) is float


@pytest.mark.parametrize(
    "value, error",
    [(0.0, None), (0.99, None), (np.float32(0.999), None)]
    + [(1.0, ValueError), (-1e-9, ValueError), (float("nan"), ValueError)]
    + [(np.float64("inf"), ValueError), ("0.9", TypeError), (False, TypeError)],
)
def test_check_momentum_range_is_zero_to_one_excluded(value, error):
    if error is None:
        assert validation.check_momentum(value) == float(value)
        return
    with pytest.raises(error, match=r"`momentum` must be a number in \[0, 1\)"):
        validation.check_momentum(value)


def test_check_choice_separates_wrong_type_from_wrong_value():
    assert validation.check_choice(np.str_("batch"), "mode", ("epoch", "batch"))
    with pytest.raises(ValueError, match="mode='step'"):
        validation.check_choice("step", "mode", ("epoch", "batch"))
    with pytest.raises(TypeError, match="mode=5 of type int"):
        validation.check_choice(5, "mode", ("epoch", "batch"))


def test_layer_built_from_numpy_scalars_equals_the_one_from_python_numbers():
    x = np.ones((6, 4), "float32")
    python = kdrop.InvertedDropout(0.25, noise_shape=(1, 4), seed=7, name="d")
    numpy_made = kdrop.InvertedDropout(
        np.float32(0.25), (np.int64(1), np.int32(4)), np.int64(7), name="d"
    )
    assert numpy_made.get_config() == python.get_config()
    json.dumps(numpy_made.get_config())  # plain Python numbers only
    np.testing.assert_array_equal(
        ops.convert_to_numpy(numpy_made(x, training=True)),
        ops.convert_to_numpy(python(x, training=True)),
    )


def test_schedules_accept_numpy_scalars():
    linear = schedules.Linear(np.float32(0.0), np.float64(0.5), np.int64(10))
    assert float(ops.convert_to_numpy(linear(5))) == pytest.approx(0.25)
    per_epoch = schedules.PerEpoch(linear, steps_per_epoch=np.int64(4))
    # step 20 is epoch 5 of the 10-epoch ramp.
    assert float(ops.convert_to_numpy(per_epoch(20))) == pytest.approx(0.25)
    json.dumps(per_epoch.get_config()["steps_per_epoch"])


def test_sgd_and_presets_accept_numpy_momentum():
    optimizer = kdrop.optimizers.SGD(momentum=np.float32(0.5))
    assert optimizer.momentum == 0.5
    _, momentum = optimizer_schedules.srivastava2014(
        momentum_start=np.float64(0.5), momentum_end=np.float32(0.75)
    )
    assert float(ops.convert_to_numpy(momentum(0))) == pytest.approx(0.5)


def test_numpy_update_freq_logs_like_the_python_int(tmp_path):
    logged = {}
    for kind in (int, np.int64):
        # A rate that changes at every step: a fixed one has no per-batch series.
        model = relu_model(
            kdrop.ScheduledDropout(kdrop.schedules.Linear(0.0, 0.7, 7), name="drop")
        )
        logger = callbacks.DropoutRateLogger(tmp_path / kind.__name__, kind(3))
        model.fit(X, Y, epochs=1, batch_size=8, verbose=0, callbacks=[logger])
        logged[kind] = read_scalars(tmp_path / kind.__name__)[
            "rates/dropout_per_batch/drop"
        ]
    # 8 batches, one write every 3: steps 0, 3, 6, the rate 0.1 * step.
    expected = {t: pytest.approx(0.1 * t, abs=1e-6) for t in (0, 3, 6)}
    assert logged[np.int64] == logged[int] == expected

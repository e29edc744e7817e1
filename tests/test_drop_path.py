"""DropPath and drop_path_rates against numpy references.

Branch outputs are strictly positive, so a zero is a dropped branch;
Bernoulli tolerances are 5 standard deviations.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from kdrop import schedules

ROWS = 20_000


def positive_inputs(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape).astype("float32")


@pytest.mark.parametrize("rate", [0.1, 0.5])
@pytest.mark.parametrize(
    "mode, scale", [("inverted", "1/keep"), ("weight_scaled", "1")]
)
def test_row_mode_drops_whole_examples_at_the_rate(rate, mode, scale):
    keep = 1 - rate
    x = positive_inputs((ROWS, 3, 2))
    layer = kdrop.layers.DropPath(rate, per="row", mode=mode, seed=1)
    y = ops.convert_to_numpy(layer(x, training=True))
    dropped = (y == 0).reshape(ROWS, -1)
    assert np.all(dropped.all(axis=1) | ~dropped.any(axis=1))  # all or nothing
    kept_rows = ~dropped[:, 0]
    assert abs(kept_rows.mean() - keep) < 5 * math.sqrt(rate * keep / ROWS)
    factor = 1 / keep if scale == "1/keep" else 1.0
    np.testing.assert_allclose(y[kept_rows], x[kept_rows] * factor, rtol=1e-6)
    inference = x if mode == "inverted" else x * keep
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x)), inference, rtol=1e-6)
    # E[train] = inference: y / inference is b / keep per row, of mean 1 and
    # variance rate / keep.
    ratio = (y / inference).reshape(ROWS, -1)[:, 0]
    assert abs(ratio.mean() - 1) < 5 * math.sqrt(rate / keep / ROWS)


def test_batch_mode_drops_the_whole_batch_at_the_rate():
    layer = kdrop.layers.DropPath(0.3, per="batch", seed=2)
    x = positive_inputs((4, 5))
    draws = 400
    dropped = []
    for _ in range(draws):
        y = ops.convert_to_numpy(layer(x, training=True))
        assert (y == 0).all() or np.allclose(y, x / 0.7, rtol=1e-6)
        dropped.append((y == 0).all())
    assert abs(np.mean(dropped) - 0.3) < 5 * math.sqrt(0.3 * 0.7 / draws)


def test_in_a_residual_block_the_skip_path_is_always_kept():
    inputs = keras.Input((6,))
    branch = keras.layers.Dense(6, kernel_initializer="ones", use_bias=False)(inputs)
    outputs = keras.layers.Add()([inputs, kdrop.layers.DropPath(0.5, seed=3)(branch)])
    model = keras.Model(inputs, outputs)
    x = positive_inputs((1000, 6))
    y = ops.convert_to_numpy(model(x, training=True))
    branch_sum = x.sum(axis=1, keepdims=True)
    dropped = np.isclose(y, x).all(axis=1)
    kept = np.isclose(y, x + 2 * branch_sum).all(axis=1)
    assert np.all(dropped | kept)
    assert abs(dropped.mean() - 0.5) < 5 * math.sqrt(0.25 / 1000)


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("linear", [0.5 * block / 5 for block in range(1, 6)]),  # Huang et al.: l / L
        ("timm", list(np.linspace(0, 0.5, 5))),  # torch.linspace(0, p, depth)
    ],
)
def test_drop_path_rates_follow_the_depth_rules(rule, expected):
    np.testing.assert_allclose(kdrop.layers.drop_path_rates(0.5, 5, rule), expected)
    assert kdrop.layers.drop_path_rates(0.3, 1, "timm") == [0.0]
    assert kdrop.layers.drop_path_rates(0.3, 1, "linear") == [0.3]


def test_drop_path_rates_of_a_schedule_is_nasnets_scheduled_drop_path():
    # NASNet: rate x depth fraction x training fraction.
    total_steps, depth, rate = 100, 4, 0.4
    ramp = schedules.Linear(0.0, rate, total_steps)
    per_block = kdrop.layers.drop_path_rates(ramp, depth)
    for block, schedule in enumerate(per_block, start=1):
        for step in (0, 30, 100, 250):
            expected = rate * block / depth * min(step / total_steps, 1)
            assert float(schedule(step)) == pytest.approx(expected, abs=1e-6)
    layer = kdrop.layers.DropPath(per_block[1])
    layer.step = 50
    assert layer.current_rate == pytest.approx(0.4 * 2 / 4 * 0.5, abs=1e-6)
    clone = schedules.Scaled.from_config(per_block[1].get_config())
    assert float(clone(50)) == pytest.approx(0.1, abs=1e-6)


def test_keras_file_round_trip(tmp_path):
    layer = kdrop.layers.DropPath(
        schedules.Scaled(schedules.Linear(0.0, 0.2, 10), 0.5),
        per="batch",
        mode="weight_scaled",
        seed=5,
        name="path",
    )
    model = keras.Sequential([keras.Input((3,)), layer])
    layer.step = 4
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras").get_layer("path")
    assert restored.get_config() == layer.get_config()
    assert restored.current_rate == pytest.approx(0.04, abs=1e-6)
    x = positive_inputs((2, 3))
    np.testing.assert_allclose(ops.convert_to_numpy(restored(x)), x * 0.96, rtol=1e-6)
    assert kdrop.registry.inference_kind(restored) == "scale_by_keep"


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: kdrop.layers.DropPath(0.1, per="column"), ValueError, ["`per`"]),
        (lambda: kdrop.layers.DropPath(0.1, mode="classic"), ValueError, ["`mode`"]),
        (lambda: kdrop.layers.DropPath("0.1"), TypeError, ["`rate`"]),
        (
            lambda: kdrop.layers.drop_path_rates(0.1, 0),
            ValueError,
            ["`depth` must be a positive int. Received: depth=0"],
        ),
        (
            lambda: kdrop.layers.drop_path_rates(0.1, 3, rule="cosine"),
            ValueError,
            ["`rule` must be one of 'linear', 'timm'"],
        ),
        (
            lambda: kdrop.layers.drop_path_rates(1.2, 3),
            ValueError,
            ["`rate` must be a number in [0, 1)"],
        ),
        (
            lambda: schedules.Scaled(schedules.Constant(0.1), 1.5),
            ValueError,
            ["`factor` must be a number in [0, 1]. Received: factor=1.5"],
        ),
        (
            lambda: schedules.Scaled(0.1, 0.5),
            TypeError,
            ["`schedule` must be a DropoutSchedule or a callable of the step"],
        ),
    ],
    ids=["per", "mode", "rate", "depth", "rule", "rate_above_one", "factor", "inner"],
)
def test_bad_arguments(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)

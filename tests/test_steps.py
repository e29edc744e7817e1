"""One definition of "step" for scheduled layers and per-batch tags.

A step is one training batch: the global 0-based index of a batch among
all the batches the model trained on. A scheduled layer's counter counts
them, and the per-batch tags of DropoutRateLogger and LRMomentumScheduler
are written at that index, also where `optimizer.iterations` counts
something else: weight updates under gradient accumulation, and not a
batch whose update the mixed-precision loss scaler skipped. Each test
reads the event files back and checks every logged step against the
schedule's numpy formula at that step, and the layer's counter against
the number of batches fed.
"""

import math

import keras
import numpy as np
import pytest

import kdrop
from kdrop import callbacks, schedules
from tests.callback_models import X, Y, relu_model
from tests.conftest import BACKEND
from tests.event_files import read_scalars


def linear_rate(step):
    """schedules.Linear(0.0, 0.5, 10) in numpy."""
    return 0.5 * min(step / 10, 1.0)


def learning_rate(step):
    return 1e-4 * (step + 1)


def scheduled_model(optimizer, **compile_arguments):
    model = relu_model(
        kdrop.ScheduledDropout(schedules.Linear(0.0, 0.5, 10), name="drop")
    )
    model.compile(optimizer=optimizer, loss="mse", **compile_arguments)
    return model


def step_callbacks(log_dir):
    return [
        callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
        callbacks.LRMomentumScheduler(
            learning_rate, update_freq="batch", log_dir=log_dir
        ),
    ]


def assert_logged_at(log_dir, steps):
    """Both per-batch tags hold exactly `steps`, each with the schedule's
    value at that step."""
    logged = read_scalars(log_dir)
    assert logged["rates/dropout_per_batch/drop"] == {
        step: pytest.approx(linear_rate(step), abs=1e-6) for step in steps
    }
    assert logged["rates/learning_rate_per_batch"] == {
        step: pytest.approx(learning_rate(step), rel=1e-6) for step in steps
    }


def test_gradient_accumulation_counts_every_batch(tmp_path):
    optimizer = keras.optimizers.SGD(0.0, gradient_accumulation_steps=2)
    model = scheduled_model(optimizer)
    log_dir = tmp_path / "run"
    model.fit(
        X, Y, epochs=2, batch_size=16, verbose=0, callbacks=step_callbacks(log_dir)
    )
    # A second fit with new callbacks continues at batch 8.
    model.fit(
        X,
        Y,
        initial_epoch=2,
        epochs=3,
        batch_size=16,
        verbose=0,
        callbacks=step_callbacks(log_dir),
    )
    # 4 batches per epoch: 12 batches, 6 weight updates.
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 6
    assert model.get_layer("drop").step == 12
    assert_logged_at(log_dir, range(12))


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_skipped_mixed_precision_update_is_still_a_step(tmp_path, mixed_float16):
    # A small initial scale: no update of a finite batch overflows.
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(1e-3), initial_scale=8.0
    )
    model = scheduled_model(optimizer)
    assert model.optimizer is optimizer
    # An infinite input in the second batch of every epoch makes that
    # batch's gradients non-finite: the loss scaler skips its update and
    # halves the scale.
    x = X.copy()
    x[20, 0] = np.inf
    log_dir = tmp_path / "run"
    model.fit(
        x,
        Y,
        epochs=2,
        batch_size=16,
        shuffle=False,
        verbose=0,
        callbacks=step_callbacks(log_dir),
    )
    model.fit(
        x,
        Y,
        initial_epoch=2,
        epochs=3,
        batch_size=16,
        shuffle=False,
        verbose=0,
        callbacks=step_callbacks(log_dir),
    )
    scale = float(keras.ops.convert_to_numpy(optimizer.dynamic_scale))
    assert scale == 8.0 / 2**3  # three skipped updates
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 12 - 3
    assert model.get_layer("drop").step == 12
    assert_logged_at(log_dir, range(12))


def test_steps_per_execution_logs_the_global_step_of_each_block(tmp_path):
    # Torch runs one step per execution (Keras refuses more).
    steps_per_execution = 1 if BACKEND == "torch" else 4
    model = scheduled_model(
        keras.optimizers.SGD(0.0), steps_per_execution=steps_per_execution
    )
    log_dir = tmp_path / "run"
    # 11 batches per epoch (the last of 4 rows): blocks begin at batches
    # 0, 4 and 8 (a block of 3) of each epoch.
    model.fit(
        X, Y, epochs=2, batch_size=6, verbose=0, callbacks=step_callbacks(log_dir)
    )
    batches = math.ceil(len(X) / 6)
    assert model.get_layer("drop").step == 2 * batches
    first_steps = range(0, batches, steps_per_execution)
    assert_logged_at(
        log_dir, [epoch * batches + s for epoch in range(2) for s in first_steps]
    )

"""LRMomentumScheduler: the optimizer really follows the schedules.

Every model here takes full-batch steps on (X, Y) (the data set is X
repeated, batch size len(X), no shuffling), so its weights can be compared
with a numpy run of Keras's SGD rule, step by step. Three steps per epoch
make the momentum change land inside an epoch, where JAX's `fit` only sees
an assignment after `model.jax_state_sync()`.
"""

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from benchmarks.soak_callbacks import resident_bytes
from kdrop import callbacks, schedules
from tests.callback_models import X, Y, assert_weights, linear_model, sgd_reference
from tests.conftest import BACKEND
from tests.event_files import read_scalars

STEPS_PER_EPOCH = 3
X_REPEATED, Y_REPEATED = (
    np.tile(X, (STEPS_PER_EPOCH, 1)),
    np.tile(Y, (STEPS_PER_EPOCH, 1)),
)


def fit_full_batches(model, epochs, callback_list):
    model.fit(
        X_REPEATED,
        Y_REPEATED,
        batch_size=len(X),
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=callback_list,
    )


def momentum_after_step_4(step):
    return 0.0 if step < 4 else 0.9


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_schedule_per_batch_changes_the_compiled_update(nesterov, tmp_path):
    model = linear_model(kdrop.optimizers.SGD(0.05, nesterov=nesterov))
    fit_full_batches(
        model,
        3,
        [
            callbacks.LRMomentumScheduler(
                momentum=momentum_after_step_4, update_freq="batch", log_dir=tmp_path
            )
        ],
    )
    assert_weights(
        model, sgd_reference(lambda t: 0.05, momentum_after_step_4, 9, nesterov)
    )
    logged = read_scalars(tmp_path)
    # Per batch: the first value, the one of the step before its first
    # change (0 until step 4), and every step from that change on.
    first_change = min(t for t in range(9) if momentum_after_step_4(t) > 0)
    written = [0, *range(first_change - 1, 9)]
    assert logged["rates/momentum_per_batch"] == {
        t: pytest.approx(momentum_after_step_4(t)) for t in written
    }
    # Per epoch: the value of the epoch's last step, global step 3 e + 2.
    assert logged["rates/momentum"] == {
        e: pytest.approx(momentum_after_step_4(3 * e + 2)) for e in range(3)
    }
    # The schedule made a difference: momentum 0 throughout ends elsewhere.
    no_momentum = sgd_reference(lambda t: 0.05, lambda t: 0.0, 9, nesterov)
    assert not np.allclose(
        model.get_layer("linear").kernel.numpy(), no_momentum[0], rtol=1e-3
    )


@pytest.mark.tensorflow_only
def test_momentum_schedule_per_epoch_with_jit_compile():
    def momentum(epoch):
        return 0.0 if epoch < 1 else 0.9

    model = linear_model(kdrop.optimizers.SGD(0.05), jit_compile=True)
    fit_full_batches(model, 3, [callbacks.LRMomentumScheduler(momentum=momentum)])
    assert_weights(
        model,
        sgd_reference(lambda t: 0.05, lambda t: momentum(t // STEPS_PER_EPOCH), 9),
    )


@pytest.mark.skipif(BACKEND == "torch", reason="torch runs Keras's SGD step eagerly")
def test_keras_sgd_ignores_a_momentum_change_after_tracing():
    """The trap kdrop.optimizers.SGD exists for (see its docstring): Keras's
    SGD reads momentum as a Python float when the train step is traced."""

    class SetMomentum(keras.callbacks.Callback):
        steps = 0

        def on_train_batch_begin(self, batch, logs=None):
            if self.steps == 4:
                self.model.optimizer.momentum = 0.9
            self.steps += 1

    model = linear_model(keras.optimizers.SGD(0.05, momentum=0.5))
    fit_full_batches(model, 3, [SetMomentum()])
    assert model.optimizer.momentum == 0.9
    assert_weights(model, sgd_reference(lambda t: 0.05, lambda t: 0.5, 9))


def test_learning_rate_schedule_per_epoch_is_applied_and_logged(tmp_path):
    def learning_rate(epoch):
        return 0.1 * 0.5**epoch

    model = linear_model(keras.optimizers.SGD(1.0))
    fit_full_batches(
        model,
        3,
        [callbacks.LRMomentumScheduler(learning_rate=learning_rate, log_dir=tmp_path)],
    )
    assert read_scalars(tmp_path)["rates/learning_rate"] == {
        e: pytest.approx(learning_rate(e)) for e in range(3)
    }
    assert_weights(
        model,
        sgd_reference(lambda t: learning_rate(t // STEPS_PER_EPOCH), lambda t: 0.0, 9),
    )


def test_schedule_objects_per_batch_drive_learning_rate_and_momentum(tmp_path):
    learning_rate = keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=2, decay_rate=0.5
    )
    momentum = schedules.Linear(
        0.0, 0.8, 6
    )  # kdrop schedules are callables of the step
    model = linear_model(kdrop.optimizers.SGD(1.0))
    fit_full_batches(
        model,
        2,
        [
            callbacks.LRMomentumScheduler(
                learning_rate, momentum, update_freq="batch", log_dir=tmp_path
            )
        ],
    )

    def lr_numpy(t):
        return 0.1 * 0.5 ** (t / 2)

    def momentum_numpy(t):
        return 0.8 * min(t / 6, 1.0)

    assert_weights(model, sgd_reference(lr_numpy, momentum_numpy, 6))
    logged = read_scalars(tmp_path)
    for tag, numpy_schedule in (
        ("learning_rate", lr_numpy),
        ("momentum", momentum_numpy),
    ):
        assert logged[f"rates/{tag}_per_batch"] == {
            t: pytest.approx(numpy_schedule(t)) for t in range(6)
        }
        assert logged[f"rates/{tag}"] == {
            e: pytest.approx(numpy_schedule(STEPS_PER_EPOCH * e + 2)) for e in range(2)
        }


def test_mixed_precision_loss_scale_optimizer_is_looked_through():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = linear_model(kdrop.optimizers.SGD(0.05))
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        fit_full_batches(
            model,
            2,
            [
                callbacks.LRMomentumScheduler(
                    learning_rate=lambda e: 0.02 * (e + 1),
                    momentum=lambda e: 0.3 * (e + 1),
                )
            ],
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.optimizer.inner_optimizer.momentum == pytest.approx(0.6)
    assert float(ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(
        0.04
    )


def test_schedules_on_optimizers_they_cannot_drive():
    model = linear_model(keras.optimizers.SGD(0.1, momentum=0.5))
    weights = model.get_weights()
    with pytest.raises(ValueError, match="kdrop.optimizers.SGD"):
        model.fit(
            X,
            Y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.LRMomentumScheduler(momentum=lambda e: 0.9)],
        )
    for got, before in zip(model.get_weights(), weights):  # no step was taken
        np.testing.assert_array_equal(got, before)
    model = linear_model(keras.optimizers.Adam(0.1))
    with pytest.raises(
        ValueError, match="Adam.*kdrop.optimizers.SGD|kdrop.optimizers.SGD.*Adam"
    ):
        model.fit(
            X,
            Y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.LRMomentumScheduler(momentum=lambda e: 0.9)],
        )
    decay = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    model = linear_model(kdrop.optimizers.SGD(decay))
    with pytest.raises(ValueError, match="LearningRateSchedule"):
        model.fit(
            X,
            Y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.LRMomentumScheduler(learning_rate=lambda e: 0.1)],
        )


def test_schedule_returning_an_invalid_value_stops_with_a_clear_error():
    model = linear_model(kdrop.optimizers.SGD(0.1))
    with pytest.raises(
        ValueError, match=r"`learning_rate` schedule returned nan at step 0"
    ):
        model.fit(
            X,
            Y,
            epochs=1,
            verbose=0,
            callbacks=[
                callbacks.LRMomentumScheduler(learning_rate=lambda e: float("nan"))
            ],
        )


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({}, ValueError, ["learning_rate", "momentum", "None"]),
        ({"momentum": 0.9}, TypeError, ["momentum", "0.9", "callable"]),
        (
            {"learning_rate": lambda e: 0.1, "update_freq": 5},
            TypeError,
            ["update_freq", "5", "'epoch'", "int"],
        ),
        (
            {"learning_rate": lambda e: 0.1, "update_freq": "step"},
            ValueError,
            ["update_freq", "'step'", "'epoch'"],
        ),
        ({"learning_rate": lambda e: 0.1, "log_dir": 3}, TypeError, ["log_dir", "3"]),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        callbacks.LRMomentumScheduler(**kwargs)
    for word in words:
        assert word in str(info.value)


def missing_return(step):
    0.1 * step  # the bug under test: no `return`


@pytest.mark.parametrize("name", ["learning_rate", "momentum"])
@pytest.mark.parametrize(
    "schedule, error, shown",
    [
        (missing_return, TypeError, "None"),
        (lambda step: np.array([0.1, 0.2]), TypeError, "array([0.1, 0.2])"),
        (lambda step: "0.1", TypeError, "'0.1'"),
        (lambda step: float("nan"), ValueError, "nan"),
        (lambda step: -0.5, ValueError, "-0.5"),
        (lambda step: 1 / 0, ValueError, "ZeroDivisionError"),
    ],
)
def test_a_schedule_value_that_is_not_a_finite_number_fails_before_any_step(
    name, schedule, error, shown
):
    model = linear_model(kdrop.optimizers.SGD(0.1))
    with pytest.raises(error) as info:
        model.fit(
            X,
            Y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.LRMomentumScheduler(**{name: schedule})],
        )
    message = str(info.value)
    assert f"`{name}`" in message and shown in message and repr(schedule) in message
    assert int(ops.convert_to_numpy(model.optimizer.iterations)) == 0


def test_momentum_of_one_is_refused_before_any_step():
    model = linear_model(kdrop.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match=r"`momentum` schedule returned 1.0"):
        model.fit(
            X,
            Y,
            verbose=0,
            callbacks=[callbacks.LRMomentumScheduler(momentum=lambda step: 1.0)],
        )
    assert int(ops.convert_to_numpy(model.optimizer.iterations)) == 0


@pytest.mark.tensorflow_only
# Reading a TensorFlow variable with numpy 2 warns at every batch, and
# pytest keeps every warning: their memory is not the callback's.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_per_batch_schedules_do_not_grow_memory():
    # TensorFlow caches the tensor of every distinct Python number it
    # converts; assigned as Python floats, a learning rate and a momentum
    # that change at every batch grew resident memory by about 1.5 KB per
    # batch (15 MB here), without bound. Numpy values are not cached.
    model = linear_model(kdrop.optimizers.SGD(0.01, momentum=0.5))
    model.optimizer.build(model.trainable_variables)
    scheduler = callbacks.LRMomentumScheduler(
        learning_rate=lambda t: 0.01 / (1 + t),
        momentum=lambda t: 0.5 + 0.4 * t / (t + 1),
        update_freq="batch",
    )
    scheduler.set_model(model)
    scheduler.on_train_begin()
    scheduler.on_epoch_begin(0)
    for batch in range(1000):  # warm-up: allocator pools, first conversions
        scheduler.on_train_batch_begin(batch)
    before = resident_bytes()
    for batch in range(1000, 11000):
        scheduler.on_train_batch_begin(batch)
    assert resident_bytes() - before < 3 * 2**20
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.01 / 11000)
    assert model.optimizer.momentum == pytest.approx(0.5 + 0.4 * 10999 / 11000)


def test_keras_learning_rate_scheduler_form_gets_the_current_value():
    # Keras's LearningRateScheduler takes `lambda epoch, lr: ...`.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate=0.1), "mse")
    seen = []

    def halve(epoch, lr):
        seen.append((epoch, lr))
        return lr / 2

    scheduler = kdrop.callbacks.LRMomentumScheduler(halve)
    model.fit(
        np.ones((4, 2)), np.ones((4, 1)), epochs=3, verbose=0, callbacks=[scheduler]
    )
    # Evaluated once in on_train_begin (lr 0.1), then at each epoch start.
    assert [epoch for epoch, _ in seen[1:]] == [0, 1, 2]
    assert [lr for _, lr in seen[1:]] == pytest.approx([0.1, 0.05, 0.025])
    lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert lr == pytest.approx(0.0125)


def test_a_failing_schedule_error_says_how_kdrop_calls_it():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate=0.1), "mse")
    scheduler = kdrop.callbacks.LRMomentumScheduler(lambda epoch: 1 / (epoch - 0))
    with pytest.raises(
        ValueError,
        match=r"could not be evaluated.*schedule\(t\).*epoch index.*lambda epoch, lr",
    ):
        model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0, callbacks=[scheduler])

"""Learning-rate and momentum schedules applied to the optimizer."""

import inspect
import math

import keras
import numpy as np

from kdrop import keras_internals
from kdrop.backend.assign import uncached
from kdrop.backend.jax_sync import sync_training_state
from kdrop.callbacks import steps
from kdrop.callbacks.base import LoggingCallback
from kdrop.validation import check_choice


def _check_schedule(schedule, name):
    if schedule is not None and not callable(schedule):
        raise TypeError(
            f"`{name}` must be None or a callable of the epoch (or of the "
            "step with update_freq='batch'), e.g. a Keras or kdrop schedule. "
            f"Received: {name}={schedule!r}."
        )
    return schedule


# What each schedule must return: momentum is checked as the optimizer's
# setter checks it, so a bad value never reaches the optimizer.
_ALLOWED = {
    "learning_rate": ("a finite real number >= 0", lambda v: v >= 0),
    "momentum": ("a finite real number in [0, 1)", lambda v: 0 <= v < 1),
}


def takes_current_value(schedule):
    """Whether `schedule` is of the `(t, current_value)` form of Keras's
    `LearningRateScheduler` (`lambda epoch, lr: ...`): two required
    positional parameters. A one-parameter callable, or one whose signature
    cannot be read (a builtin), is called as `schedule(t)`."""
    try:
        parameters = inspect.signature(schedule).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
    required = [p for p in parameters if p.kind in positional and p.default is p.empty]
    return len(required) == 2


def _value(schedule, name, step, current=None):
    """`schedule(step)` (or `schedule(step, current)` for the two-argument
    form) as a float, or an error naming `name`, the schedule and the
    value: TypeError for a non-number (None from a missing `return`, a
    string, an array), ValueError for NaN, inf or a number out of range."""
    allowed, is_allowed = _ALLOWED[name]
    where = f"The `{name}` schedule {schedule!r}"
    two_arguments = takes_current_value(schedule)
    try:
        value = schedule(step, current) if two_arguments else schedule(step)
    except Exception as error:
        call = f"schedule(t, current_{name})" if two_arguments else "schedule(t)"
        raise ValueError(
            f"{where} could not be evaluated at step {step} "
            f"({type(error).__name__}: {error}); it must return {allowed}. "
            f"kdrop calls it as {call}, with t the epoch index at the start "
            "of every epoch (update_freq='epoch') or the global batch index "
            "before every batch (update_freq='batch'); a schedule with two "
            "required arguments, Keras's LearningRateScheduler form "
            f"`lambda epoch, lr: ...`, gets the optimizer's current {name} "
            "as the second."
        ) from error
    array = None
    if value is not None and not isinstance(value, (str, bytes)):
        array = np.asarray(keras.ops.convert_to_numpy(value))
    if array is None or array.ndim != 0 or array.dtype.kind not in "iuf":
        raise TypeError(
            f"{where} returned {value!r} of type {type(value).__name__} at "
            f"step {step}; it must return {allowed} (a Python number or a "
            "scalar tensor)."
        )
    number = float(array)
    if not math.isfinite(number) or not is_allowed(number):
        raise ValueError(
            f"The `{name}` schedule returned {number} at step {step}; it must "
            f"return {allowed}. Schedule: {schedule!r}."
        )
    return number


def _base_optimizer(model):
    # Mixed precision wraps the optimizer in a LossScaleOptimizer.
    optimizer = model.optimizer
    return getattr(optimizer, "inner_optimizer", optimizer)


class LRMomentumScheduler(LoggingCallback):
    """Sets the optimizer's learning rate and momentum from schedules.

        learning_rate = learning_rate_schedule(t)
        momentum      = momentum_schedule(t)

    with `t` the epoch index (`update_freq="epoch"`, set when each epoch
    begins) or the global batch index (`update_freq="batch"`, set before each
    step; with `steps_per_execution` k > 1, before each block of k steps).
    A schedule is any callable of `t`: a Python function, a
    `keras.optimizers.schedules.LearningRateSchedule`, a kdrop schedule, or
    the recipes `kdrop.optimizer_schedules.hinton2012()` / `srivastava2014()`;
    or, as for Keras's `LearningRateScheduler`, a callable of two required
    arguments `(t, current)` (`lambda epoch, lr: lr * 0.9`), which gets the
    optimizer's current learning rate (or momentum) as the second.
    With `log_dir`, both values are logged per epoch as `rates/learning_rate`
    and `rates/momentum` at step = epoch index (the value the epoch used; with
    `update_freq="batch"`, its last step's, written at the epoch end) and,
    with `update_freq="batch"`, also as `rates/learning_rate_per_batch` and
    `rates/momentum_per_batch` at step = the 0-based global batch index of the step
    they are set for (Keras's own `batch_*` curves are 1-based). As for
    `DropoutRateLogger`, a value is written only where it says something:
    one that stays fixed during the `fit` is written once (per epoch, at
    the first epoch) and has no per-batch series; from its first change on
    it is written at every epoch or step, the value before the change
    first.

    Momentum needs `kdrop.optimizers.SGD`, which holds it in a variable:
    Keras's optimizers read momentum (SGD) or beta_1 (Adam) as a Python
    float when the train step is traced, so changing it later would silently
    do nothing; with them a momentum schedule raises a clear error in
    `on_train_begin`, before any step. Learning-rate schedules work with
    every Keras optimizer whose learning rate is a variable (a float at
    compile time, not itself a `LearningRateSchedule`). A mixed-precision
    `LossScaleOptimizer` is looked through. On JAX, per-batch updates call
    `model.jax_state_sync()` first so that they reach the next step.

    Both schedules are evaluated once in `on_train_begin`, at the first step
    `t` of the run (0 for epochs), so a schedule returning something other
    than a finite real number (None from a missing `return`, an array, a
    string, NaN) or a value out of range fails there, naming the schedule and
    the value, before any training step; the same check runs at every step.

    Args:
        learning_rate: None or a callable `t -> learning rate`.
        momentum: None or a callable `t -> momentum` (values in [0, 1)).
        update_freq: `"epoch"` or `"batch"`.
        log_dir: None, or a directory; events go to `log_dir/train`.

    Example:

    ```python
    lr, momentum = kdrop.optimizer_schedules.hinton2012()
    model.compile(kdrop.optimizers.SGD(), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=100, callbacks=[
        kdrop.callbacks.LRMomentumScheduler(lr, momentum, log_dir="logs/run1")])
    ```

    References:
        - Hinton et al., arXiv:1207.0580, 2012 (appendix A).
        - Srivastava et al., JMLR 15, 2014 (appendix A).
    """

    def __init__(
        self, learning_rate=None, momentum=None, update_freq="epoch", log_dir=None
    ):
        super().__init__(log_dir, log_dir_optional=True)
        if learning_rate is None and momentum is None:
            raise ValueError(
                "Pass at least one of `learning_rate` and `momentum` "
                "schedules. Received: learning_rate=None, momentum=None."
            )
        self.learning_rate = _check_schedule(learning_rate, "learning_rate")
        self.momentum = _check_schedule(momentum, "momentum")
        self.update_freq = check_choice(update_freq, "update_freq", ("epoch", "batch"))
        self._last_values = {}  # what _apply set last, by tag

    def on_train_begin(self, logs=None):
        optimizer = _base_optimizer(self.model)
        if self.momentum is not None and not hasattr(optimizer, "momentum_variable"):
            raise ValueError(
                "A `momentum` schedule needs an optimizer whose momentum is a "
                f"variable: use kdrop.optimizers.SGD. Received optimizer "
                f"{type(optimizer).__name__}, whose momentum is fixed when the "
                "train step is traced, so the schedule would do nothing."
            )
        own_schedule = keras_internals.learning_rate_schedule(optimizer)
        if self.learning_rate is not None and own_schedule is not None:
            raise ValueError(
                "A `learning_rate` schedule cannot drive an optimizer whose "
                "learning rate is itself a LearningRateSchedule "
                f"({own_schedule!r}): compile with a float "
                "learning rate, or drop one of the two schedules."
            )
        # Each schedule is evaluated once now, so that one returning None, an
        # array, NaN or a string fails before the first training step.
        first_step = 0
        if self.update_freq == "batch":
            first_step = steps.batches_trained(self.model)
        for name in ("learning_rate", "momentum"):
            if getattr(self, name) is not None:
                _value(getattr(self, name), name, first_step, self._current(name))
        super().on_train_begin(logs)

    def _current(self, name):
        """The optimizer's current learning rate or momentum, a float: the
        second argument of a `(t, current)` schedule."""
        schedule = getattr(self, name)
        if schedule is None or not takes_current_value(schedule):
            return None
        optimizer = _base_optimizer(self.model)
        if name == "momentum":
            return optimizer.momentum  # a float, also before it is built
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    def _values(self, step):
        """{"learning_rate": ..., "momentum": ...} of the schedules given."""
        return {
            name: _value(getattr(self, name), name, step, self._current(name))
            for name in ("learning_rate", "momentum")
            if getattr(self, name) is not None
        }

    def _apply(self, step):
        optimizer = _base_optimizer(self.model)
        values = self._values(step)
        if "learning_rate" in values:
            # The learning-rate variable has Keras's float type (floatx).
            optimizer.learning_rate = uncached(
                values["learning_rate"], keras.config.floatx()
            )
        if "momentum" in values:
            optimizer.momentum = values["momentum"]
        self._last_values = values
        if self.log_dir is not None:
            per_batch = self.update_freq == "batch"
            suffix = "_per_batch" if per_batch else ""
            for name, value in values.items():
                self.write_scalar_if_changing(
                    f"rates/{name}{suffix}", value, step, write_first=not per_batch
                )
            self.flush_writes()

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if self.update_freq == "epoch":
            self._apply(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        super().on_train_batch_begin(batch, logs)
        if self.update_freq != "batch":
            return
        step = self.global_step(batch)
        if self.is_restored_step(step):
            # Not trained in this run; the epoch's curve still gets the
            # values of its last step when the restore skips a whole epoch.
            self._last_values = self._values(step)
            return
        sync_training_state(self.model)
        self._apply(step)

    def on_epoch_end(self, epoch, logs=None):
        # Per batch, the epoch's curve gets the values of its last step.
        if self.update_freq == "batch" and self.log_dir is not None:
            for name, value in self._last_values.items():
                self.write_scalar_if_changing(
                    f"rates/{name}", value, epoch, write_first=True
                )
        super().on_epoch_end(epoch, logs)

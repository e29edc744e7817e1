"""A drop rate that is a number or a schedule of the layer's training step.

Every kdrop layer takes its `rate` through `ScheduledRate`: a number gives a
fixed rate (a Python float: the fast path, nothing added to the layer), a
schedule gives a rate computed IN-GRAPH as `clip(schedule(step), 0,
MAX_RATE)` on every call from the layer's own non-trainable integer step
counter, which each training-mode call advances by 1. So:

- the rate changes inside a traced/jitted train step with no retrace and no
  callback (a Python-float rate would be baked into the trace: Keras issues
  #3424, #4597, #8826, #17242);
- the counter is an ordinary layer variable: it is saved in `.keras` files
  and restored by `load_model` and `BackupAndRestore`, so a resumed run
  continues the schedule; on JAX it travels in the training state like
  BatchNormalization's moving statistics;
- under `tf.distribute` it aggregates with "only_first_replica", so it counts
  global optimizer steps, not steps x replicas.

A variable holding the rate, set by a callback, was rejected: it needs a
callback the user can forget and, on JAX, a state sync at every batch.

The counter advances once per training-mode call, i.e. once per training
batch for a layer used once in the model (a layer shared by two branches
advances twice per batch). `sample()` (used by `kdrop.mc_predict` and
`kdrop.callbacks.ActivationSparsity`) and inference never advance it.
"""

import math
import numbers
import warnings

import keras
from keras import ops

from kdrop import validation

# Rates from a schedule are clipped to [0, MAX_RATE]: a rate of 1 would
# divide by keep_prob = 0 in inverted mode and cut the gradient entirely.
MAX_RATE = 0.99

# Steps at which a schedule is evaluated when the layer is constructed.
_CHECKED_STEPS = (0, 1, 10, 100, 1000, 100000)

_SCHEDULE_KINDS = (
    "a kdrop.schedules.DropoutSchedule, a "
    "keras.optimizers.schedules.LearningRateSchedule or a callable of the step"
)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _deserialized(value, argument):
    if not isinstance(value, dict):
        return value
    try:
        return keras.saving.deserialize_keras_object(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{argument}` config could not be deserialized: is its class "
            "registered with keras.saving.register_keras_serializable "
            f"(kdrop's are)? Received: {argument}={value!r}. Cause: {error}"
        ) from error


def _warn_if_not_loadable(schedule_config, layer):
    # get_config runs when a model is saved; a lambda or an unregistered
    # function is written without complaint but can never be loaded back,
    # so the one chance to say so is now, not when the file is opened.
    try:
        keras.saving.deserialize_keras_object(schedule_config)
    except Exception as error:
        # Keras's own message (`error`) suggests `safe_mode=False`, which
        # does not help here: it is left out.
        warnings.warn(
            f"The schedule of layer '{layer.name}' ({type(layer).__name__}), "
            f"{layer._rate!r}, can be saved but not loaded back: "
            "keras.saving.load_model will fail on this file, with "
            "safe_mode=False too (a lambda is not saved with the names it "
            "uses, such as `keras`, and an unregistered function is not "
            f"found; {type(error).__name__}). What works: a named function "
            "decorated with @keras.saving.register_keras_serializable(), or "
            "a schedule class (kdrop.schedules.*, or your own "
            "DropoutSchedule subclass registered the same way).",
            stacklevel=3,
        )


def resolve_schedule(schedule, argument="schedule"):
    """Returns `schedule` (a schedule or its config) as a callable schedule.

    Raises:
        TypeError: `schedule` is a number or not callable.
        ValueError: a config that does not deserialize.
    """
    schedule = _deserialized(schedule, argument)
    if _is_number(schedule):
        raise TypeError(
            f"`{argument}` must be {_SCHEDULE_KINDS}. Received the number "
            f"{argument}={schedule!r}: use kdrop.schedules.Constant({schedule!r}) "
            "or kdrop.InvertedDropout."
        )
    if not callable(schedule):
        raise TypeError(
            f"`{argument}` must be {_SCHEDULE_KINDS}. "
            f"Received: {argument}={schedule!r}."
        )
    return schedule


def resolve_rate(rate, argument="rate"):
    """Returns `rate` as a float in [0, 1) or a callable schedule.

    Raises:
        TypeError: neither a number nor a callable (nor a schedule config).
        ValueError: a number outside [0, 1), or a config that does not
            deserialize.
    """
    rate = _deserialized(rate, argument)
    if _is_number(rate):
        return validation.check_rate(rate, argument)
    if not callable(rate):
        raise TypeError(
            f"`{argument}` must be a number in [0, 1) (the probability of "
            f"dropping a unit) or a schedule ({_SCHEDULE_KINDS}, written with "
            f"keras.ops). Received: {argument}={rate!r} of type "
            f"{type(rate).__name__}."
        )
    return rate


def follows_schedule(layer):
    """Whether the drop rate of `layer` follows a schedule of its step.

    Such a rate is computed inside every compiled function from the layer's
    step counter, so code that caches compiled functions or describes a
    layer asks this, never the layer's class: `InvertedDropout(schedule)`,
    `ScheduledDropout(schedule)` and `DropPath(schedule)` all do.
    """
    return isinstance(layer, ScheduledRate) and layer.schedule is not None


def check_schedule_values(schedule, layer_name, argument="schedule"):
    """Evaluates `schedule` on a symbolic step and at a few steps.

    Raises:
        ValueError: the schedule cannot be traced, or returns a non-scalar
            or a value outside [0, 1].
    """
    symbolic_step = keras.KerasTensor(shape=(), dtype="int32")
    checks = [("a symbolic step", symbolic_step)] + [
        (f"step {step}", ops.convert_to_tensor(step, "int32"))
        for step in _CHECKED_STEPS
    ]
    for where, step in checks:
        try:
            # The symbolic step catches Python-only code (float(step),
            # math.exp) that would work eagerly but fail when traced.
            rate = schedule(step)
            shape = tuple(getattr(rate, "shape", ()))
            symbolic = isinstance(step, keras.KerasTensor)
            value = None if symbolic or shape else float(ops.convert_to_numpy(rate))
        except Exception as error:
            raise ValueError(
                f"`{argument}` of layer '{layer_name}' could not be "
                f"evaluated at {where}: it must be a callable of a "
                "scalar step tensor written with keras.ops (so it can "
                f"run inside compiled training). Received: "
                f"{argument}={schedule!r}. Cause: "
                f"{type(error).__name__}: {error}"
            ) from error
        if shape:
            raise ValueError(
                f"`{argument}` of layer '{layer_name}' must return a scalar "
                f"rate; at {where} it returned shape {shape}. Received: "
                f"{argument}={schedule!r}."
            )
        if value is not None and (math.isnan(value) or not 0.0 <= value <= 1.0):
            raise ValueError(
                f"`{argument}` of layer '{layer_name}' must return rates in "
                f"[0, 1]; at {where} it returned {value}. Received: "
                f"{argument}={schedule!r}."
            )


class ScheduledRate:
    """Mixin for a `keras.layers.Layer` whose drop rate is a number or a
    schedule of its training step.

    The layer calls `self._init_rate(rate)` in its `__init__` (after
    `Layer.__init__`), reads the rate with `self._rate_tensor()` in `call`
    and calls `self._advance_step()` after each training-mode call. A number
    is validated and kept as a Python float; anything else must be a
    schedule (a `kdrop.schedules.DropoutSchedule`, a Keras learning-rate
    schedule, a callable written with `keras.ops`, or the config of one),
    checked on a symbolic step and at a few steps right away, before any
    training, and given a step counter variable.

    Attributes:
        rate: the fixed rate (a float) or the schedule, as given.
        schedule: the schedule, or None for a fixed rate.
        step: int, training batches taken so far (None for a fixed rate);
            settable, e.g. to start a schedule part-way. On JAX, `fit`
            writes it back at the end of each epoch; read it mid-epoch
            after `model.jax_state_sync()`.
        current_rate: float, the rate the next training step will use.
    """

    def _init_rate(self, rate, argument="rate"):
        rate = resolve_rate(rate, argument)
        self._rate_argument = argument
        self._rate = rate
        if not callable(rate):
            self._step_counter = None
            return
        # Checked here, not in build(): construction is always eager, while
        # build() may run inside a traced function where values are unknown.
        check_schedule_values(rate, self.name, argument)
        self._step_counter = self.add_weight(
            name="step",
            shape=(),
            dtype="int",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )

    @property
    def rate(self):
        """The rate given at construction: a float or a schedule."""
        return self._rate

    @rate.setter
    def rate(self, value):
        # A Python float is baked into every traced train/predict function
        # (and into fold_dropout's folded kernels), and so is the choice of
        # schedule: a new value would reach `model(x)` but not an already
        # traced `predict`. Refused.
        value = resolve_rate(value)
        raise AttributeError(
            f"The rate of layer '{self.name}' ({type(self).__name__}) is "
            f"set at construction (rate={self._rate!r}); it cannot be set to "
            f"{value!r} afterwards. For a rate that changes during training "
            "pass a schedule as the rate when building the layer (e.g. "
            "kdrop.layers.InvertedDropout(kdrop.schedules.Linear(0.0, 0.5, "
            "1000)), or kdrop.layers.ScheduledDropout); for another rate "
            "build a new layer (e.g. from layer.get_config())."
        )

    @property
    def schedule(self):
        """The schedule the rate follows, or None for a fixed rate."""
        return None if self._step_counter is None else self._rate

    @property
    def step(self):
        """Training steps taken so far (the schedule's argument), or None
        for a fixed rate."""
        if self._step_counter is None:
            return None
        return int(ops.convert_to_numpy(self._step_counter))

    @step.setter
    def step(self, value):
        value = validation.check_non_negative_int(value, "step")
        if self._step_counter is None:
            raise AttributeError(
                f"Layer '{self.name}' ({type(self).__name__}) has the fixed "
                f"rate {self._rate} and no step to set (step={value}); pass "
                "a schedule as its rate to make it follow the training step."
            )
        self._step_counter.assign(value)

    @property
    def current_rate(self):
        """The rate (a Python float) the next training-mode call will use."""
        if self._step_counter is None:
            return self._rate  # as given, not rounded through a float32 tensor
        return float(ops.convert_to_numpy(self._rate_tensor()))

    def _rate_tensor(self):
        if self._step_counter is None:
            return self._rate
        rate = ops.cast(self._rate(self._step_counter), "float32")
        return ops.clip(rate, 0.0, MAX_RATE)

    def _advance_step(self):
        if self._step_counter is not None:
            self._step_counter.assign_add(1)

    def get_config(self):
        config = super().get_config()
        rate = self._rate
        if callable(rate):
            rate = keras.saving.serialize_keras_object(rate)
            _warn_if_not_loadable(rate, self)
        config[self._rate_argument] = rate
        return config

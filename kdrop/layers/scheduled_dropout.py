"""Dropout whose rate follows a schedule inside compiled training.

Design: the layer owns a non-trainable integer step counter and computes the
rate IN-GRAPH as `clip(schedule(step), 0, MAX_RATE)` on every call. Each
training-mode call adds 1 to the counter, so:

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

import keras
from keras import ops

from kdrop import validation
from kdrop.layers.base import INVERTED, MODES, BaseDropout

# Rates from a schedule are clipped to [0, MAX_RATE]: a rate of 1 would
# divide by keep_prob = 0 in inverted mode and cut the gradient entirely.
MAX_RATE = 0.99

# Steps at which a schedule is evaluated when the layer is constructed.
_CHECKED_STEPS = (0, 1, 10, 100, 1000, 100000)


def _resolve_schedule(schedule):
    if isinstance(schedule, dict):
        try:
            schedule = keras.saving.deserialize_keras_object(schedule)
        except (TypeError, ValueError) as error:
            raise ValueError(
                "`schedule` config could not be deserialized: is its class "
                "registered with keras.saving.register_keras_serializable "
                f"(kdrop's are)? Received: schedule={schedule!r}. "
                f"Cause: {error}"
            ) from error
    if isinstance(schedule, numbers.Real) and not isinstance(schedule, bool):
        raise TypeError(
            "`schedule` must be a kdrop.schedules.DropoutSchedule, a "
            "keras.optimizers.schedules.LearningRateSchedule or a callable "
            f"of the step. Received the number schedule={schedule!r}: use "
            f"kdrop.schedules.Constant({schedule!r}) or kdrop.InvertedDropout."
        )
    if not callable(schedule):
        raise TypeError(
            "`schedule` must be a kdrop.schedules.DropoutSchedule, a "
            "keras.optimizers.schedules.LearningRateSchedule or a callable "
            f"of the step. Received: schedule={schedule!r}."
        )
    return schedule


@keras.saving.register_keras_serializable(package="kdrop")
class ScheduledDropout(BaseDropout):
    """Dropout whose rate follows a schedule of the training step.

    With `rate(t) = clip(schedule(t), 0, 0.99)`, `keep(t) = 1 - rate(t)` and
    `mask ~ Bernoulli(keep(t))`, at optimizer step `t`:

        mode="inverted":      training y = x * mask / keep(t); inference y = x
        mode="weight_scaled": training y = x * mask;          inference
                              y = x * keep(t)

    The rate is computed inside the compiled train step from the layer's own
    step counter, which every training-mode call advances by one: the
    schedule really takes effect in `model.fit` (graph, XLA, JAX), with no
    callback and no retrace.

    A schedule may return any value in [0, 1]: at run time the rate is
    clipped to `[0, MAX_RATE]` (`MAX_RATE = 0.99`, since a rate of 1 would
    divide by `keep = 0` and cut every gradient). At construction the
    schedule is called on a symbolic step (it must be traceable) and at
    steps 0, 1, 10, 100, 1000 and 100000 (its values must be scalars in
    [0, 1], not NaN); a bad schedule raises a `ValueError` there, before
    any training.

    Args:
        schedule: a `kdrop.schedules.DropoutSchedule`, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            `step -> rate` written with `keras.ops`. Wrap it in
            `kdrop.schedules.PerEpoch` to count in epochs. To save and load
            a model whose schedule is a plain function, register the
            function with `keras.saving.register_keras_serializable()` (or
            pass it to `load_model` in `custom_objects`).
        mode: `"inverted"` (default) or `"weight_scaled"`.
        noise_shape: None, or a tuple with one entry per input axis; an entry
            of 1 shares the mask along that axis.
        seed: None or an int; the same seed gives the same masks.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: floating-point tensor of any rank.
        training: bool; in training mode units are dropped and the step
            counter advances.

    Attributes:
        step: int, training batches taken so far (settable, e.g. to start
            a schedule part-way). On JAX, `fit` writes it back at the end
            of each epoch; read it mid-epoch after `model.jax_state_sync()`.
        current_rate: float, the rate the next training step will use.
        keep_prob: float, `1 - current_rate`.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(256, activation="relu"),
        kdrop.layers.ScheduledDropout(kdrop.schedules.Curriculum(0.5, 1e-3)),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5)  # the rate rises towards 0.5 as training goes
    ```

    References:
        - Rennie, Goel, Thomas, "Annealed dropout training of deep
          networks", IEEE SLT 2014.
        - Morerio et al., "Curriculum Dropout", ICCV 2017.
        - Liu et al., "Dropout Reduces Underfitting", ICML 2023.
    """

    def __init__(self, schedule, mode=INVERTED, noise_shape=None, seed=None, **kwargs):
        super().__init__(noise_shape=noise_shape, seed=seed, **kwargs)
        self.mode = validation.check_choice(mode, "mode", MODES)
        self.schedule = _resolve_schedule(schedule)
        # Checked here, not in build(): construction is always eager, while
        # build() may run inside a traced function where values are unknown.
        self._check_schedule_values()
        self._step_counter = self.add_weight(
            name="step",
            shape=(),
            dtype="int",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        self._build_at_construction()

    def _check_schedule_values(self):
        symbolic_step = keras.KerasTensor(shape=(), dtype="int32")
        checks = [("a symbolic step", symbolic_step)] + [
            (f"step {step}", ops.convert_to_tensor(step, "int32"))
            for step in _CHECKED_STEPS
        ]
        for where, step in checks:
            try:
                # The symbolic step catches Python-only code (float(step),
                # math.exp) that would work eagerly but fail when traced.
                rate = self.schedule(step)
                shape = tuple(getattr(rate, "shape", ()))
                symbolic = isinstance(step, keras.KerasTensor)
                value = None if symbolic or shape else float(ops.convert_to_numpy(rate))
            except Exception as error:
                raise ValueError(
                    f"`schedule` of layer '{self.name}' could not be "
                    f"evaluated at {where}: it must be a callable of a "
                    "scalar step tensor written with keras.ops (so it can "
                    f"run inside compiled training). Received: "
                    f"schedule={self.schedule!r}. Cause: "
                    f"{type(error).__name__}: {error}"
                ) from error
            if shape:
                raise ValueError(
                    f"`schedule` of layer '{self.name}' must return a scalar "
                    f"rate; at {where} it returned shape {shape}. Received: "
                    f"schedule={self.schedule!r}."
                )
            if value is not None and (math.isnan(value) or not 0.0 <= value <= 1.0):
                raise ValueError(
                    f"`schedule` of layer '{self.name}' must return rates in "
                    f"[0, 1]; at {where} it returned {value}. Received: "
                    f"schedule={self.schedule!r}."
                )

    def _rate_tensor(self):
        rate = ops.cast(self.schedule(self._step_counter), "float32")
        return ops.clip(rate, 0.0, MAX_RATE)

    def call(self, inputs, training=False):
        outputs = super().call(inputs, training=training)
        if training:
            self._step_counter.assign_add(1)
        return outputs

    @property
    def step(self):
        """Training steps taken so far (the schedule's argument)."""
        return int(ops.convert_to_numpy(self._step_counter))

    @step.setter
    def step(self, value):
        self._step_counter.assign(validation.check_non_negative_int(value, "step"))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "schedule": keras.saving.serialize_keras_object(self.schedule),
                "mode": self.mode,
            }
        )
        return config

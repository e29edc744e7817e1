"""Dropout-rate schedules: the rate as a function of the training step.

Every schedule is written with `keras.ops`, so a kdrop layer given one as
its rate (`InvertedDropout(schedule)`, `DropPath(schedule)`, ...;
`ScheduledDropout(schedule)` is `InvertedDropout`'s) evaluates it inside the
compiled train step from its step counter (TensorFlow graph, XLA, JAX jit
or torch), and it is also callable eagerly with a Python int.
A schedule returns the probability of DROPPING a unit.

To write a schedule in epochs rather than steps, wrap it in `PerEpoch`:
`PerEpoch(Linear(0.5, 0.0, 10), steps_per_epoch=32)` anneals over 10
epochs of 32 batches.
"""

import itertools
import math

import keras
import numpy as np
from keras import ops

from kdrop import validation

# Curriculum's gamma: the largest finite float32, and the smallest gamma whose
# rate reaches half its final value (gamma * t = ln 2) by step 2**24, the last
# step a float32 step holds exactly (see _as_float_step).
MAX_CURRICULUM_GAMMA = float(np.finfo(np.float32).max)
MIN_CURRICULUM_GAMMA = math.log(2.0) / 2**24


def _as_float_step(step):
    # float32 so schedules mix freely with float rates; it holds every step
    # exactly up to 2**24 (16.7 million), far beyond usual training runs.
    return ops.cast(step, "float32")


def _fraction_done(step, steps):
    return ops.minimum(_as_float_step(step) / float(steps), 1.0)


def _as_list(value, name):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"`{name}` must be a list. Received: {name}={value!r}.")
    return list(value)


def _inner_schedule(schedule, argument_name):
    """`schedule` (or its config) as a callable, for schedules wrapping
    another one whose argument is `argument_name`."""
    if isinstance(schedule, dict):
        schedule = keras.saving.deserialize_keras_object(schedule)
    if not callable(schedule):
        raise TypeError(
            "`schedule` must be a DropoutSchedule or a callable of the "
            f"{argument_name}. Received: schedule={schedule!r}."
        )
    return schedule


@keras.saving.register_keras_serializable(package="kdrop")
class DropoutSchedule:
    """Base class of dropout-rate schedules.

    Subclasses implement `__call__(step)`, returning the rate (a float32
    scalar) at optimizer step `step` using `keras.ops` only (the step is a
    scalar tensor inside training, a Python int when called by hand), and
    `get_config()`, whose keys are the constructor's arguments.

    Example:

    ```python
    @keras.saving.register_keras_serializable(package="my_project")
    class Halving(kdrop.schedules.DropoutSchedule):
        def __init__(self, rate, every):
            self.rate, self.every = rate, every

        def __call__(self, step):
            halvings = keras.ops.floor(keras.ops.cast(step, "float32") / self.every)
            return self.rate * keras.ops.power(0.5, halvings)

        def get_config(self):
            return {"rate": self.rate, "every": self.every}
    ```
    """

    def __call__(self, step):
        raise NotImplementedError(
            f"{type(self).__name__} must implement __call__(step)."
        )

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} must implement get_config().")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="kdrop")
class Constant(DropoutSchedule):
    """The same rate at every step: `rate(t) = rate`.

    Args:
        rate: float in [0, 1), the probability of dropping a unit.
    """

    def __init__(self, rate):
        self.rate = validation.check_rate(rate)

    def __call__(self, step):
        return ops.convert_to_tensor(self.rate, dtype="float32")

    def get_config(self):
        return {"rate": self.rate}


class _Ramp(DropoutSchedule):
    """Goes from `start_rate` at step 0 to `end_rate` at step `steps`, then
    holds it; subclasses give the shape of the way in `__call__`."""

    def __init__(self, start_rate, end_rate, steps):
        self.start_rate = validation.check_rate(start_rate, "start_rate")
        self.end_rate = validation.check_rate(end_rate, "end_rate")
        self.steps = validation.check_positive_int(steps, "steps")

    def get_config(self):
        return {
            "start_rate": self.start_rate,
            "end_rate": self.end_rate,
            "steps": self.steps,
        }


@keras.saving.register_keras_serializable(package="kdrop")
class Linear(_Ramp):
    """Linear interpolation from `start_rate` to `end_rate`, then held.

        rate(t) = start_rate + (end_rate - start_rate) * min(t / steps, 1)

    `Linear(p, 0.0, T)` is annealed dropout; `Linear(0.0, p, T)` is NASNet's
    ScheduledDropPath, `rate(t) = min(1, t / T) * p`.

    Args:
        start_rate: rate at step 0, in [0, 1).
        end_rate: rate from step `steps` on, in [0, 1).
        steps: int > 0, length of the ramp in optimizer steps.

    Example:

    ```python
    annealed = kdrop.schedules.Linear(0.5, 0.0, steps=10_000)
    annealed(5_000)  # 0.25
    ```

    References:
        - Rennie, Goel, Thomas, "Annealed dropout training of deep
          networks", IEEE SLT 2014.
        - Zoph et al., "Learning Transferable Architectures for Scalable
          Image Recognition", CVPR 2018 (ScheduledDropPath).
    """

    def __call__(self, step):
        done = _fraction_done(step, self.steps)
        return self.start_rate + (self.end_rate - self.start_rate) * done


@keras.saving.register_keras_serializable(package="kdrop")
class Curriculum(DropoutSchedule):
    """Curriculum dropout: the rate rises from 0 towards `final_rate`.

        rate(t) = final_rate * (1 - exp(-gamma * t))

    i.e. the paper's `keep(t) = (1 - keep_final) * exp(-gamma * t) +
    keep_final` with `keep_final = 1 - final_rate`.

    Args:
        final_rate: asymptotic rate, in [0, 1).
        gamma: float, speed per optimizer step (the paper's MNIST setting
            is 1e-3), in [4.13e-8, 3.40e38] (`MIN_CURRICULUM_GAMMA`,
            `MAX_CURRICULUM_GAMMA` in this module):
            the rate is computed in float32, where a larger gamma becomes
            inf and `inf * 0` makes the rate NaN at step 0, and where with
            a smaller one the rate would not reach half of `final_rate`
            within the 2**24 steps a float32 step counts exactly.

    Example:

    ```python
    # Morerio et al.'s MNIST setting: keep_final = 0.5, gamma = 1e-3.
    schedule = kdrop.schedules.Curriculum(final_rate=0.5, gamma=1e-3)
    ```

    References:
        - Morerio et al., "Curriculum Dropout", ICCV 2017.
    """

    def __init__(self, final_rate, gamma):
        self.final_rate = validation.check_rate(final_rate, "final_rate")
        self.gamma = validation.check_number(
            gamma,
            "gamma",
            f"a number in [{MIN_CURRICULUM_GAMMA:.4g}, {MAX_CURRICULUM_GAMMA:.4g}] "
            "(per optimizer step, computed in float32)",
            lambda gamma: MIN_CURRICULUM_GAMMA <= gamma <= MAX_CURRICULUM_GAMMA,
        )

    def __call__(self, step):
        return self.final_rate * (1.0 - ops.exp(-self.gamma * _as_float_step(step)))

    def get_config(self):
        return {"final_rate": self.final_rate, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="kdrop")
class Early(DropoutSchedule):
    """Early dropout: dropout during the first `until_step` steps only.

        decay="linear":   rate(t) = rate * max(1 - t / until_step, 0)
        decay="constant": rate(t) = rate if t < until_step else 0

    Args:
        rate: rate at step 0, in [0, 1).
        until_step: int > 0, the step from which there is no dropout.
        decay: `"linear"` or `"constant"`.

    Example:

    ```python
    # Liu et al.: 0.1 decaying linearly to 0 over the first 50 epochs.
    schedule = kdrop.schedules.PerEpoch(
        kdrop.schedules.Early(0.1, 50), steps_per_epoch=math.ceil(len(x) / 128)
    )
    ```

    References:
        - Liu et al., "Dropout Reduces Underfitting", ICML 2023.
    """

    def __init__(self, rate, until_step, decay="linear"):
        self.rate = validation.check_rate(rate)
        self.until_step = validation.check_positive_int(until_step, "until_step")
        self.decay = validation.check_choice(decay, "decay", ("linear", "constant"))

    def __call__(self, step):
        if self.decay == "linear":
            return self.rate * (1.0 - _fraction_done(step, self.until_step))
        active = ops.less(_as_float_step(step), float(self.until_step))
        return ops.where(active, self.rate, 0.0)

    def get_config(self):
        return {
            "rate": self.rate,
            "until_step": self.until_step,
            "decay": self.decay,
        }


@keras.saving.register_keras_serializable(package="kdrop")
class Late(DropoutSchedule):
    """Late dropout: no dropout before `from_step`, `rate` from then on.

        rate(t) = 0 if t < from_step else rate

    Args:
        rate: rate from step `from_step` on, in [0, 1).
        from_step: int >= 0.

    References:
        - Liu et al., "Dropout Reduces Underfitting", ICML 2023.
    """

    def __init__(self, rate, from_step):
        self.rate = validation.check_rate(rate)
        self.from_step = validation.check_non_negative_int(from_step, "from_step")

    def __call__(self, step):
        active = ops.greater_equal(_as_float_step(step), float(self.from_step))
        return ops.where(active, self.rate, 0.0)

    def get_config(self):
        return {"rate": self.rate, "from_step": self.from_step}


@keras.saving.register_keras_serializable(package="kdrop")
class Cosine(_Ramp):
    """Half-cosine from `start_rate` to `end_rate` over `steps`, then held.

        rate(t) = end + (start - end) * (1 + cos(pi * min(t / steps, 1))) / 2

    Args:
        start_rate: rate at step 0, in [0, 1).
        end_rate: rate from step `steps` on, in [0, 1).
        steps: int > 0.
    """

    def __call__(self, step):
        done = _fraction_done(step, self.steps)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * done))
        return self.end_rate + (self.start_rate - self.end_rate) * cosine


@keras.saving.register_keras_serializable(package="kdrop")
class Piecewise(DropoutSchedule):
    """Piecewise-constant rate; each boundary is the first step of its piece.

        rate(t) = rates[i], where i = number of boundaries <= t

    i.e. `rates[0]` for `t < boundaries[0]`, `rates[i]` for
    `boundaries[i-1] <= t < boundaries[i]`, `rates[-1]` from
    `boundaries[-1]` on.

    Args:
        boundaries: strictly increasing ints >= 0 (optimizer steps).
        rates: one more rate than boundaries, each in [0, 1).

    Example:

    ```python
    # 0.5 for steps 0-999, 0.3 for steps 1000-4999, 0.1 from step 5000 on.
    schedule = kdrop.schedules.Piecewise([1000, 5000], [0.5, 0.3, 0.1])
    ```
    """

    def __init__(self, boundaries, rates):
        boundaries = _as_list(boundaries, "boundaries")
        rates = _as_list(rates, "rates")
        for index, boundary in enumerate(boundaries):
            validation.check_non_negative_int(boundary, f"boundaries[{index}]")
        if any(b1 >= b2 for b1, b2 in itertools.pairwise(boundaries)):
            raise ValueError(
                "`boundaries` must be strictly increasing. Received: "
                f"boundaries={boundaries}."
            )
        if len(rates) != len(boundaries) + 1:
            raise ValueError(
                "`rates` must have one more entry than `boundaries`. "
                f"Received: {len(boundaries)} boundaries and rates={rates}."
            )
        self.boundaries = [int(b) for b in boundaries]
        self.rates = [
            validation.check_rate(rate, f"rates[{index}]")
            for index, rate in enumerate(rates)
        ]

    def __call__(self, step):
        reached = ops.greater_equal(
            _as_float_step(step),
            ops.convert_to_tensor(self.boundaries, dtype="float32"),
        )
        piece = ops.sum(ops.cast(reached, "int32"))
        return ops.take(ops.convert_to_tensor(self.rates, "float32"), piece)

    def get_config(self):
        return {"boundaries": self.boundaries, "rates": self.rates}


@keras.saving.register_keras_serializable(package="kdrop")
class PerEpoch(DropoutSchedule):
    """Runs a schedule written in epochs on the step counter.

        staircase=False: rate(t) = schedule(t / steps_per_epoch)
        staircase=True:  rate(t) = schedule(floor(t / steps_per_epoch))

    Inside `PerEpoch`, every step argument of the wrapped schedule counts
    epochs: `Linear(0.5, 0.0, 10)` anneals over 10 epochs, `Late(0.3, 5)`
    starts with epoch 5. With `staircase=False` the rate moves at every
    batch and `PerEpoch(Linear(a, b, E), n)` is exactly `Linear(a, b, E * n)`
    (as in Liu et al.'s code, which interpolates per iteration); with
    `staircase=True` it changes only when an epoch begins, like Keras's
    `LearningRateScheduler` callback. Changes at whole epochs (`Late`,
    `Piecewise`, `Early(decay="constant")`) fall on the same step either way.

    Args:
        schedule: a schedule (or callable written with `keras.ops`) whose
            argument is the epoch.
        steps_per_epoch: int > 0, batches per epoch: what `fit` runs, i.e.
            `math.ceil(len(x) / batch_size)` (the last, partial batch
            counts), or the `steps_per_epoch` passed to `fit`.
        staircase: bool; if True, the wrapped schedule sees whole epochs.

    Example:

    ```python
    # Liu et al. 2023: rate 0.1 decaying to 0 over the first 50 epochs.
    schedule = kdrop.schedules.PerEpoch(
        kdrop.schedules.Early(0.1, 50), steps_per_epoch=math.ceil(len(x) / 128)
    )
    layer = kdrop.layers.InvertedDropout(schedule)
    ```
    """

    def __init__(self, schedule, steps_per_epoch, staircase=False):
        schedule = _inner_schedule(schedule, "epoch")
        if not isinstance(staircase, bool):
            raise TypeError(
                f"`staircase` must be True or False. Received: staircase={staircase!r}."
            )
        self.schedule = schedule
        self.steps_per_epoch = validation.check_positive_int(
            steps_per_epoch, "steps_per_epoch"
        )
        self.staircase = staircase

    def __call__(self, step):
        epoch = _as_float_step(step) / float(self.steps_per_epoch)
        return self.schedule(ops.floor(epoch) if self.staircase else epoch)

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "steps_per_epoch": self.steps_per_epoch,
            "staircase": self.staircase,
        }


@keras.saving.register_keras_serializable(package="kdrop")
class Scaled(DropoutSchedule):
    """A schedule multiplied by a constant factor:

        rate(t) = factor * schedule(t)

    so that layers share one schedule over training at different strengths,
    e.g. NASNet's ScheduledDropPath (rate x depth fraction x training
    fraction), which `kdrop.layers.drop_path_rates` builds from a schedule.

    Args:
        schedule: a schedule (or callable written with `keras.ops`) of the
            step.
        factor: number in [0, 1].

    Example:

    ```python
    ramp = kdrop.schedules.Linear(0.0, 0.3, steps=10_000)
    half = kdrop.schedules.Scaled(ramp, 0.5)  # 0 -> 0.15 over 10k steps
    ```
    """

    def __init__(self, schedule, factor):
        self.schedule = _inner_schedule(schedule, "step")
        self.factor = validation.check_number(
            factor, "factor", "a number in [0, 1]", lambda v: 0 <= v <= 1
        )

    def __call__(self, step):
        return self.factor * ops.cast(self.schedule(step), "float32")

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "factor": self.factor,
        }

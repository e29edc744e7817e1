"""Dropout-rate schedules: the rate as a function of the training step.

Every schedule is written with `keras.ops`, so `ScheduledDropout` evaluates
it inside the compiled train step from its step counter (TensorFlow graph,
XLA, JAX jit or torch), and it is also callable eagerly with a Python int.
A schedule returns the probability of DROPPING a unit.

To write a schedule in epochs rather than steps, wrap it in `PerEpoch`:
`PerEpoch(Linear(0.5, 0.0, steps=10), steps_per_epoch=32)` anneals over 10
epochs of 32 batches.
"""

import math

import keras
from keras import ops

from kdrop import validation


def _as_float_step(step):
    return ops.cast(step, "float32")


def _fraction_done(step, steps):
    return ops.minimum(_as_float_step(step) / float(steps), 1.0)


@keras.saving.register_keras_serializable(package="kdrop")
class DropoutSchedule:
    """Base class of dropout-rate schedules.

    Subclasses implement `__call__(step)`, returning the rate (a float32
    scalar) at optimizer step `step` using `keras.ops` only, and
    `get_config()`.

    Example:

    ```python
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
        raise NotImplementedError(
            f"{type(self).__name__} must implement get_config()."
        )

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


@keras.saving.register_keras_serializable(package="kdrop")
class Linear(DropoutSchedule):
    """Linear interpolation from `start_rate` to `end_rate`, then held.

        rate(t) = start_rate + (end_rate - start_rate) * min(t / steps, 1)

    `Linear(p, 0.0, T)` is annealed dropout (Rennie et al. 2014);
    `Linear(0.0, p, T)` is ScheduledDropPath (Zoph et al. 2018).

    Args:
        start_rate: rate at step 0, in [0, 1).
        end_rate: rate from step `steps` on, in [0, 1).
        steps: int > 0, length of the ramp in optimizer steps.
    """

    def __init__(self, start_rate, end_rate, steps):
        self.start_rate = validation.check_rate(start_rate, "start_rate")
        self.end_rate = validation.check_rate(end_rate, "end_rate")
        self.steps = validation.check_positive_int(steps, "steps")

    def __call__(self, step):
        done = _fraction_done(step, self.steps)
        return self.start_rate + (self.end_rate - self.start_rate) * done

    def get_config(self):
        return {
            "start_rate": self.start_rate,
            "end_rate": self.end_rate,
            "steps": self.steps,
        }


@keras.saving.register_keras_serializable(package="kdrop")
class Curriculum(DropoutSchedule):
    """Curriculum dropout: the rate rises from 0 towards `final_rate`.

        rate(t) = final_rate * (1 - exp(-gamma * t))

    i.e. `keep(t) = (1 - keep_final) * exp(-gamma * t) + keep_final`.

    Args:
        final_rate: asymptotic rate, in [0, 1).
        gamma: float > 0, speed per optimizer step (the paper's MNIST
            setting is 1e-3).

    References:
        - Morerio et al., "Curriculum Dropout", ICCV 2017.
    """

    def __init__(self, final_rate, gamma):
        self.final_rate = validation.check_rate(final_rate, "final_rate")
        if not isinstance(gamma, (int, float)) or not gamma > 0 or math.isinf(
            gamma
        ):
            raise ValueError(
                "`gamma` must be a finite number > 0 (per optimizer step). "
                f"Received: gamma={gamma!r}."
            )
        self.gamma = float(gamma)

    def __call__(self, step):
        return self.final_rate * (
            1.0 - ops.exp(-self.gamma * _as_float_step(step))
        )

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

    References:
        - Liu et al., "Dropout Reduces Underfitting", ICML 2023.
    """

    def __init__(self, rate, until_step, decay="linear"):
        self.rate = validation.check_rate(rate)
        self.until_step = validation.check_positive_int(until_step, "until_step")
        self.decay = validation.check_choice(
            decay, "decay", ("linear", "constant")
        )

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
        self.from_step = validation.check_non_negative_int(
            from_step, "from_step"
        )

    def __call__(self, step):
        active = ops.greater_equal(_as_float_step(step), float(self.from_step))
        return ops.where(active, self.rate, 0.0)

    def get_config(self):
        return {"rate": self.rate, "from_step": self.from_step}


@keras.saving.register_keras_serializable(package="kdrop")
class Cosine(DropoutSchedule):
    """Half-cosine from `start_rate` to `end_rate` over `steps`, then held.

        rate(t) = end + (start - end) * (1 + cos(pi * min(t / steps, 1))) / 2

    Args:
        start_rate: rate at step 0, in [0, 1).
        end_rate: rate from step `steps` on, in [0, 1).
        steps: int > 0.
    """

    def __init__(self, start_rate, end_rate, steps):
        self.start_rate = validation.check_rate(start_rate, "start_rate")
        self.end_rate = validation.check_rate(end_rate, "end_rate")
        self.steps = validation.check_positive_int(steps, "steps")

    def __call__(self, step):
        done = _fraction_done(step, self.steps)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * done))
        return self.end_rate + (self.start_rate - self.end_rate) * cosine

    def get_config(self):
        return {
            "start_rate": self.start_rate,
            "end_rate": self.end_rate,
            "steps": self.steps,
        }


@keras.saving.register_keras_serializable(package="kdrop")
class Piecewise(DropoutSchedule):
    """Piecewise-constant rate.

        rate(t) = rates[0]       for t < boundaries[0]
                  rates[i]       for boundaries[i-1] <= t < boundaries[i]
                  rates[-1]      for t >= boundaries[-1]

    Args:
        boundaries: strictly increasing ints >= 0 (optimizer steps).
        rates: one more rate than boundaries, each in [0, 1).
    """

    def __init__(self, boundaries, rates):
        boundaries = list(boundaries)
        rates = list(rates)
        for b in boundaries:
            validation.check_non_negative_int(b, "boundaries")
        if any(b1 >= b2 for b1, b2 in zip(boundaries, boundaries[1:])):
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
        self.rates = [validation.check_rate(r, "rates") for r in rates]

    def __call__(self, step):
        step = _as_float_step(step)
        rate = ops.full((), self.rates[0], dtype="float32")
        for boundary, before, after in zip(
            self.boundaries, self.rates, self.rates[1:]
        ):
            reached = ops.cast(ops.greater_equal(step, float(boundary)), "float32")
            rate = rate + (after - before) * reached
        return rate

    def get_config(self):
        return {"boundaries": self.boundaries, "rates": self.rates}


@keras.saving.register_keras_serializable(package="kdrop")
class PerEpoch(DropoutSchedule):
    """Runs a schedule written in epochs on the step counter.

        rate(t) = schedule(floor(t / steps_per_epoch))

    Example:

    ```python
    # Liu et al. 2023: rate 0.1 decaying to 0 over the first 50 epochs.
    schedule = kdrop.schedules.PerEpoch(
        kdrop.schedules.Early(0.1, until_step=50), steps_per_epoch=len(x) // 128
    )
    ```

    Args:
        schedule: a schedule (or callable) whose argument is the epoch.
        steps_per_epoch: int > 0, batches per epoch.
    """

    def __init__(self, schedule, steps_per_epoch):
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        if not callable(schedule):
            raise TypeError(
                "`schedule` must be a DropoutSchedule or a callable of the "
                f"epoch. Received: schedule={schedule!r}."
            )
        self.schedule = schedule
        self.steps_per_epoch = validation.check_positive_int(
            steps_per_epoch, "steps_per_epoch"
        )

    def __call__(self, step):
        return self.schedule(
            ops.floor(_as_float_step(step) / float(self.steps_per_epoch))
        )

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "steps_per_epoch": self.steps_per_epoch,
        }

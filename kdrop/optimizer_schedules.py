"""Optimizer schedules: the learning-rate and momentum recipes of the
dropout papers.

Each recipe returns `(learning_rate_schedule, momentum_schedule)` for
`kdrop.callbacks.LRMomentumScheduler` with `kdrop.optimizers.SGD`, whose
update is Keras's SGD rule:

    v = momentum * v - learning_rate * g;   w = w + v

(`kdrop.schedules.hinton2012` / `srivastava2014` / `HintonLearningRate` are
the same objects, kept under their first names.)
"""

import math

import keras
from keras import ops

from kdrop import validation


def _check_learning_rate(value):
    return validation.check_number(
        value, "learning_rate", "a finite number > 0", lambda v: 0 < v < math.inf
    )


def _momentum_ramp(start, end, steps, steps_name):
    """A LinearMomentum, its arguments checked under the recipes' names."""
    return LinearMomentum(
        validation.check_momentum(start, "momentum_start"),
        validation.check_momentum(end, "momentum_end"),
        validation.check_positive_int(steps, steps_name),
    )


@keras.saving.register_keras_serializable(package="kdrop")
class LinearMomentum:
    """Momentum rising (or falling) linearly, then constant.

        momentum(t) = start + (end - start) * min(t / steps, 1)

    `t` counts whatever the schedule is called with: epochs with
    `LRMomentumScheduler(update_freq="epoch")`, steps with `"batch"`.

    Args:
        start: momentum at t = 0, in [0, 1).
        end: momentum from t = steps on, in [0, 1).
        steps: int > 0, length of the ramp.

    Example:

    ```python
    momentum = kdrop.optimizer_schedules.LinearMomentum(0.5, 0.99, 500)
    ```
    """

    def __init__(self, start, end, steps):
        self.start = validation.check_momentum(start, "start")
        self.end = validation.check_momentum(end, "end")
        self.steps = validation.check_positive_int(steps, "steps")

    def __call__(self, t):
        done = ops.minimum(ops.cast(t, "float32") / float(self.steps), 1.0)
        return self.start + (self.end - self.start) * done

    def get_config(self):
        return {"start": self.start, "end": self.end, "steps": self.steps}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"LinearMomentum(start={self.start}, end={self.end}, steps={self.steps})"


@keras.saving.register_keras_serializable(package="kdrop")
class HintonLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Hinton et al.'s (2012) step size, written for Keras's SGD rule.

        learning_rate(e) = (1 - momentum(e)) * initial_learning_rate * decay**e

    The paper updates `dw = p * dw - (1 - p) * eps * g` with
    `eps = initial_learning_rate * decay**e`: that is Keras's SGD rule with
    the learning rate above, so both runs take the same steps. `momentum` is
    the ramp `momentum_start -> momentum_end` over `momentum_epochs`.
    """

    def __init__(
        self,
        initial_learning_rate,
        decay,
        momentum_start,
        momentum_end,
        momentum_epochs,
    ):
        self.initial_learning_rate = _check_learning_rate(initial_learning_rate)
        self.decay = validation.check_number(
            decay, "decay", "a number in (0, 1]", lambda v: 0 < v <= 1
        )
        self.momentum = _momentum_ramp(
            momentum_start, momentum_end, momentum_epochs, "momentum_epochs"
        )

    def __call__(self, epoch):
        epoch = ops.cast(epoch, "float32")
        paper_rate = self.initial_learning_rate * ops.power(self.decay, epoch)
        return (1.0 - self.momentum(epoch)) * paper_rate

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay": self.decay,
            "momentum_start": self.momentum.start,
            "momentum_end": self.momentum.end,
            "momentum_epochs": self.momentum.steps,
        }


def hinton2012(
    learning_rate=10.0,
    decay=0.998,
    momentum_start=0.5,
    momentum_end=0.99,
    momentum_epochs=500,
):
    """Hinton et al. (2012) MNIST recipe, as functions of the EPOCH `e`.

        eps(e)      = learning_rate * decay ** e            (the paper's rate)
        momentum(e) = momentum_start + (momentum_end - momentum_start)
                      * min(e / momentum_epochs, 1)
        keras_learning_rate(e) = (1 - momentum(e)) * eps(e)

    The paper's update, `dw = momentum * dw - (1 - momentum) * eps * g`,
    multiplies the gradient step by `(1 - momentum)`; the returned
    learning-rate schedule includes that factor, so with Keras's SGD rule
    (`kdrop.optimizers.SGD`) the model takes the paper's steps. Without it,
    eps = 10 at momentum 0.99 would be a 100x larger step. The logged
    `learning_rate` is therefore `keras_learning_rate(e)`.

    Use with `LRMomentumScheduler(..., update_freq="epoch")`, batch 100, and
    the paper's cap of 15 on each unit's squared incoming-weight norm:
    `kernel_constraint=keras.constraints.MaxNorm(15 ** 0.5)`.

    Args:
        learning_rate: the paper's initial rate eps_0 (default 10.0).
        decay: the factor f per epoch, in (0, 1] (default 0.998).
        momentum_start: momentum at epoch 0, in [0, 1) (default 0.5).
        momentum_end: momentum from `momentum_epochs` on, in [0, 1)
            (default 0.99).
        momentum_epochs: int > 0, length of the momentum ramp (default 500).

    Returns:
        `(HintonLearningRate, LinearMomentum)`, callables of the epoch.

    Example:

    ```python
    lr, momentum = kdrop.optimizer_schedules.hinton2012()
    model.compile(kdrop.optimizers.SGD(), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=100, epochs=3000, callbacks=[
        kdrop.callbacks.LRMomentumScheduler(lr, momentum)])
    ```

    References:
        - Hinton et al., "Improving neural networks by preventing
          co-adaptation of feature detectors", arXiv:1207.0580, appendix A.1.
    """
    learning_rate_schedule = HintonLearningRate(
        learning_rate, decay, momentum_start, momentum_end, momentum_epochs
    )
    return learning_rate_schedule, learning_rate_schedule.momentum


def srivastava2014(
    learning_rate=1.0,
    decay_steps=10_000,
    momentum_start=0.5,
    momentum_end=0.99,
    momentum_steps=100_000,
):
    """Srivastava et al. (2014) MNIST example, as functions of the STEP `t`.

        learning_rate(t) = learning_rate / (1 + t / decay_steps)
        momentum(t)      = momentum_start + (momentum_end - momentum_start)
                           * min(t / momentum_steps, 1)

    The defaults are the paper's example configuration (deepnet's
    `mnist_3layer_relu_dropout`: base rate 1.0, inverse-time decay with
    half-life 10000 steps, momentum 0.5 -> 0.99 over 100000 steps). Use with
    `LRMomentumScheduler(..., update_freq="batch")`, batch 100, and
    `kernel_constraint=keras.constraints.MaxNorm(3)` on every layer (the
    paper's max-norm c = 3). deepnet scales the whole accumulated update by
    the current rate (`d = m * d + g; w -= lr * d`); Keras's rule scales
    each new gradient (`v = m * v - lr * g; w += v`): the two are the same
    while the rate is constant and differ slightly as it decays.

    Args:
        learning_rate: the initial rate (default 1.0).
        decay_steps: int > 0, steps after which the rate has halved
            (default 10000).
        momentum_start: momentum at step 0, in [0, 1) (default 0.5).
        momentum_end: momentum from `momentum_steps` on, in [0, 1)
            (default 0.99).
        momentum_steps: int > 0, length of the momentum ramp (default 100000).

    Returns:
        `(keras.optimizers.schedules.InverseTimeDecay, LinearMomentum)`,
        callables of the step.

    Example:

    ```python
    lr, momentum = kdrop.optimizer_schedules.srivastava2014()
    model.compile(kdrop.optimizers.SGD(), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=100, epochs=100, callbacks=[
        kdrop.callbacks.LRMomentumScheduler(lr, momentum, update_freq="batch")])
    ```

    References:
        - Srivastava et al., "Dropout: A Simple Way to Prevent Neural
          Networks from Overfitting", JMLR 15, 2014, appendix A.
        - nitishsrivastava/deepnet, deepnet/examples/ff/model_dropout.pbtxt.
    """
    learning_rate_schedule = keras.optimizers.schedules.InverseTimeDecay(
        _check_learning_rate(learning_rate),
        decay_steps=validation.check_positive_int(decay_steps, "decay_steps"),
        decay_rate=1.0,
    )
    momentum = _momentum_ramp(
        momentum_start, momentum_end, momentum_steps, "momentum_steps"
    )
    return learning_rate_schedule, momentum

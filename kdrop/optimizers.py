"""SGD whose momentum is a variable, so momentum schedules really apply."""

import keras
from keras import ops

from kdrop import keras_internals, validation
from kdrop.backend.assign import uncached


@keras.saving.register_keras_serializable(package="kdrop")
class SGD(keras.optimizers.Optimizer):
    """Stochastic gradient descent with momentum held in a variable.

    Same update rule as `keras.optimizers.SGD` (velocity `v`, momentum `m`,
    learning rate `lr`, gradient `g`):

        v = m * v - lr * g
        w = w + v                      (nesterov=False)
        w = w + m * v - lr * g         (nesterov=True)

    Keras's SGD reads `momentum` as a Python float when the train step is
    traced, so changing it afterwards does nothing (and with momentum 0 it
    creates no velocity slots at all). Here momentum is a non-trainable
    variable and velocity slots always exist: assigning `optimizer.momentum`
    (e.g. from `kdrop.callbacks.LRMomentumScheduler`) changes the very next
    update, with no retrace.

    Args:
        learning_rate: float, a `keras.optimizers.schedules.LearningRateSchedule`
            or a callable, as for any Keras optimizer.
        momentum: float in [0, 1), the initial momentum (1 is refused:
            the velocity would never forget a gradient, see
            `kdrop.validation.check_momentum`).
        nesterov: bool, whether to use Nesterov momentum.
        **kwargs: base optimizer keyword arguments (`clipnorm`, ...).

    Example:

    ```python
    optimizer = kdrop.optimizers.SGD(learning_rate=0.1, momentum=0.5)
    model.compile(optimizer, "mse")
    optimizer.momentum = 0.99  # takes effect at the next step
    ```

    References:
        - Sutskever et al., "On the importance of initialization and
          momentum in deep learning", ICML 2013.
    """

    def __init__(
        self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._initial_momentum = validation.check_momentum(momentum)
        self._momentum_variable = None
        self.nesterov = bool(nesterov)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentum_variable = self.add_variable(
            shape=(),
            initializer=keras.initializers.Constant(self._initial_momentum),
            dtype="float32",
            name="momentum",
        )
        self.velocities = self.add_optimizer_variables(variables, "velocity")

    @property
    def momentum(self):
        """The current momentum, a Python float (settable)."""
        if self._momentum_variable is None:
            return self._initial_momentum
        return float(ops.convert_to_numpy(self._momentum_variable))

    @momentum.setter
    def momentum(self, value):
        value = validation.check_momentum(value)
        if self._momentum_variable is None:
            self._initial_momentum = value
        else:
            self._momentum_variable.assign(
                uncached(value, self._momentum_variable.dtype)
            )

    @property
    def momentum_variable(self):
        """The variable holding momentum (None before the optimizer is built)."""
        return self._momentum_variable

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = ops.cast(self._momentum_variable, variable.dtype)
        velocity = self.velocities[keras_internals.variable_index(self, variable)]
        step = ops.multiply(gradient, learning_rate)
        self.assign(velocity, ops.subtract(ops.multiply(velocity, momentum), step))
        if self.nesterov:
            self.assign_add(
                variable, ops.subtract(ops.multiply(velocity, momentum), step)
            )
        else:
            self.assign_add(variable, velocity)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config

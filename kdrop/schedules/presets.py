"""Learning-rate / momentum recipes of the dropout papers.

Each preset returns `(learning_rate_schedule, momentum_schedule)` for
`kdrop.callbacks.LRMomentumScheduler` with `kdrop.optimizers.SGD`.
"""

import keras

from kdrop import validation
from kdrop.schedules.dropout import Linear


def _check_momenta(start, end):
    for name, value in (("momentum_start", start), ("momentum_end", end)):
        if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(
                f"`{name}` must be a float in [0, 1). Received: {name}={value!r}."
            )


def _check_positive(value, name):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"`{name}` must be a number > 0. Received: {name}={value!r}.")


def hinton2012(
    learning_rate=10.0,
    decay=0.998,
    momentum_start=0.5,
    momentum_end=0.99,
    momentum_epochs=500,
):
    """Hinton et al. (2012) MNIST recipe, as functions of the EPOCH.

        lr(e)       = learning_rate * decay ** e
        momentum(e) = momentum_start + (momentum_end - momentum_start)
                      * min(e / momentum_epochs, 1)

    Use with `LRMomentumScheduler(..., update_freq="epoch")`. The paper
    also caps each unit's squared incoming-weight norm at 15
    (`keras.constraints.MaxNorm(15 ** 0.5)`), uses batch 100, and multiplies
    the gradient step by (1 - momentum), which Keras's SGD rule does not.

    Returns:
        `(learning_rate_schedule, momentum_schedule)`.

    References:
        - Hinton et al., "Improving neural networks by preventing
          co-adaptation of feature detectors", arXiv:1207.0580, appendix A.
    """
    _check_positive(learning_rate, "learning_rate")
    if not isinstance(decay, (int, float)) or not 0.0 < decay <= 1.0:
        raise ValueError(f"`decay` must be a float in (0, 1]. Received: decay={decay!r}.")
    _check_momenta(momentum_start, momentum_end)
    momentum_epochs = validation.check_positive_int(momentum_epochs, "momentum_epochs")
    learning_rate_schedule = keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=1, decay_rate=decay
    )
    return learning_rate_schedule, Linear(momentum_start, momentum_end, momentum_epochs)


def srivastava2014(
    learning_rate=1.0,
    decay_steps=100_000,
    momentum_start=0.5,
    momentum_end=0.99,
    momentum_steps=100_000,
):
    """Srivastava et al. (2014) example recipe, as functions of the STEP.

        lr(t)       = learning_rate / (1 + t / decay_steps)
        momentum(t) = momentum_start + (momentum_end - momentum_start)
                      * min(t / momentum_steps, 1)

    Use with `LRMomentumScheduler(..., update_freq="batch")`, batch 100 and
    `kernel_constraint=keras.constraints.MaxNorm(3)` on every layer. The
    paper's example configuration states inverse-time decay but not its
    constant; `decay_steps` (lr halves after that many steps) is ours.

    Returns:
        `(learning_rate_schedule, momentum_schedule)`.

    References:
        - Srivastava et al., "Dropout: A Simple Way to Prevent Neural
          Networks from Overfitting", JMLR 15, 2014, appendix A.
    """
    _check_positive(learning_rate, "learning_rate")
    decay_steps = validation.check_positive_int(decay_steps, "decay_steps")
    _check_momenta(momentum_start, momentum_end)
    momentum_steps = validation.check_positive_int(momentum_steps, "momentum_steps")
    learning_rate_schedule = keras.optimizers.schedules.InverseTimeDecay(
        learning_rate, decay_steps=decay_steps, decay_rate=1.0
    )
    return learning_rate_schedule, Linear(momentum_start, momentum_end, momentum_steps)

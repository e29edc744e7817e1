"""`ScheduledDropout(schedule, mode)`: `InvertedDropout(schedule)` or
`WeightScaledDropout(schedule)` with the convention as an argument.

It adds nothing to them: the mechanism (the layer's own step counter) is
`kdrop.layers.rate`'s, the masks `kdrop.layers.seeded`'s. It is kept, with
its registered name and its `schedule` / `mode` config, so that code and
`.keras` files that use it keep working. Code that needs to know whether a
rate follows a schedule asks `kdrop.layers.rate.follows_schedule(layer)`,
never `isinstance(layer, ScheduledDropout)`: an `InvertedDropout(schedule)`
is not one.
"""

import keras

from kdrop import validation
from kdrop.layers.base import INVERTED, MODES
from kdrop.layers.dropout import _RateDropout
from kdrop.layers.rate import resolve_schedule


@keras.saving.register_keras_serializable(package="kdrop")
class ScheduledDropout(_RateDropout):
    """Dropout whose rate follows a schedule of the training step.

    `ScheduledDropout(schedule)` does what `InvertedDropout(schedule)` does,
    and `ScheduledDropout(schedule, mode="weight_scaled")` what
    `WeightScaledDropout(schedule)` does: same outputs, same masks for the
    same seed, same saved variables. It only refuses a number (a fixed rate
    is `InvertedDropout(rate)`), and is a class of its own for `.keras`
    files and code written for it.

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
        schedule: the schedule, as given (also `rate`).
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

    _RATE_ARGUMENT = "schedule"

    def __init__(self, schedule, mode=INVERTED, noise_shape=None, seed=None, **kwargs):
        mode = validation.check_choice(mode, "mode", MODES)
        super().__init__(
            resolve_schedule(schedule), noise_shape=noise_shape, seed=seed, **kwargs
        )
        self.mode = mode  # InvertedDropout's or WeightScaledDropout's

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config

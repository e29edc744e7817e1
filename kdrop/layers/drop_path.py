"""Stochastic depth: DropPath drops a residual branch, and the per-depth rule
that sets each block's rate."""

import keras
from keras import ops

from kdrop import validation
from kdrop.layers.base import INVERTED, MODES
from kdrop.layers.dropout import _RateDropout
from kdrop.layers.rate import resolve_rate
from kdrop.schedules import Scaled

ROW = "row"
BATCH = "batch"
DEPTH_RULES = ("linear", "timm")


@keras.saving.register_keras_serializable(package="kdrop")
class DropPath(_RateDropout):
    """Stochastic depth: drops a residual branch for whole examples.

    Put it at the end of a residual branch, before the addition:
    `y = x + DropPath(rate)(f(x))`. With `keep_prob = 1 - rate` and one
    `b ~ Bernoulli(keep_prob)` per example (`per="row"`) or per batch
    (`per="batch"`):

        mode="inverted":      training f * b / keep_prob; inference f
        mode="weight_scaled": training f * b;             inference
                              f * keep_prob

    so `E[y_train] = y_inference`. Huang et al. (2016) drop the branch of the
    whole mini-batch and scale at inference (`per="batch",
    mode="weight_scaled"`); timm's `DropPath` and torchvision's
    `StochasticDepth(mode="row")` drop per example and scale while training
    (the defaults here). The rate may be a schedule of the training step,
    e.g. NASNet's ScheduledDropPath (a rate rising linearly over training);
    `drop_path_rates` gives every block its rate by depth.

    Args:
        rate: float in [0, 1), the probability of DROPPING the branch, or a
            schedule of the training step (a `kdrop.schedules` schedule, a
            Keras learning-rate schedule or a `keras.ops` callable),
            evaluated inside the compiled train step as
            `clip(schedule(step), 0, 0.99)`.
        per: `"row"` (default) draws one decision per example, `"batch"` one
            per batch (torchvision's `mode`; named `per` here because `mode`
            is the scaling convention in every kdrop layer).
        mode: `"inverted"` (default) or `"weight_scaled"`.
        seed: None or an int; the same seed gives the same decisions.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: floating-point tensor, the branch's output, batch first.
        training: bool, whether to drop branches.

    Example:

    ```python
    def block(x, rate):
        branch = keras.layers.Conv2D(x.shape[-1], 3, padding="same")(x)
        return keras.layers.Add()([x, kdrop.layers.DropPath(rate)(branch)])

    rates = kdrop.layers.drop_path_rates(0.2, depth=4)  # [0.05, ..., 0.2]
    x = inputs
    for rate in rates:
        x = block(x, rate)
    ```

    References:
        - Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016.
        - Zoph et al., "Learning Transferable Architectures for Scalable
          Image Recognition" (ScheduledDropPath), CVPR 2018.
        - timm `timm.layers.DropPath`; torchvision
          `torchvision.ops.StochasticDepth`.
    """

    def __init__(self, rate, per=ROW, mode=INVERTED, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        self.per = validation.check_choice(per, "per", (ROW, BATCH))
        self.mode = validation.check_choice(mode, "mode", MODES)

    def _dropped(self, inputs, rate):
        if isinstance(rate, float) and rate == 0.0:
            return inputs
        keep_prob = 1.0 - rate
        kept = self._keep_mask(self._mask_shape(inputs), keep_prob)
        # One factor per example (or batch), then a single multiply of the
        # branch, as timm does: cheaper than `where` over the whole branch.
        scale = 1.0 / keep_prob if self.mode == INVERTED else 1.0
        factor = ops.where(kept, scale, 0.0)
        return ops.multiply(inputs, ops.cast(factor, inputs.dtype))

    def _mask_shape(self, inputs):
        ones = (1,) * (len(inputs.shape) - 1)
        return ((ops.shape(inputs)[0] if self.per == ROW else 1),) + ones

    def sample(self, inputs):
        """One training-mode draw with one decision PER EXAMPLE, also when
        `per="batch"`, and no schedule step taken.

        `kdrop.mc_predict` puts the Monte-Carlo copies of an example in one
        batch, where a decision shared by the batch would make all of them
        one draw; per example, each copy's branch is still dropped with the
        layer's rate.
        """
        per, self.per = self.per, ROW
        try:
            return super().sample(inputs)
        finally:
            self.per = per

    def get_config(self):
        config = super().get_config()
        del config["noise_shape"]  # the decision's shape is set by `per`
        config.update({"per": self.per, "mode": self.mode})
        return config


def drop_path_rates(rate, depth, rule="linear"):
    """The rates of `depth` residual blocks whose rate grows with depth.

        rule="linear": block l = 1..depth gets rate * l / depth
                       (Huang et al. 2016; the last block gets `rate`)
        rule="timm":   block i = 0..depth-1 gets rate * i / (depth - 1)
                       (timm's `drop_path_rate`; the first block gets 0)

    A schedule `s` as `rate` gives every block `Scaled(s, fraction)`, i.e.
    NASNet's ScheduledDropPath: rate x depth fraction x training fraction
    with `s = Linear(0.0, rate, total_steps)`.

    Args:
        rate: float in [0, 1), the deepest block's rate, or a schedule.
        depth: int > 0, the number of blocks.
        rule: `"linear"` (default) or `"timm"`.

    Returns:
        A list of `depth` floats, or of `kdrop.schedules.Scaled` schedules,
        one per block from the input side; pass each to a `DropPath`.

    Example:

    ```pycon
    >>> kdrop.layers.drop_path_rates(0.5, 4)
    [0.125, 0.25, 0.375, 0.5]
    >>> ramp = kdrop.schedules.Linear(0.0, 0.3, 10_000)  # over training
    >>> kdrop.layers.drop_path_rates(ramp, 3, rule="timm")  # 0, half, all of it
    ```
    """
    rate = resolve_rate(rate)
    depth = validation.check_positive_int(depth, "depth")
    rule = validation.check_choice(rule, "rule", DEPTH_RULES)
    if rule == "linear":
        fractions = [(block + 1) / depth for block in range(depth)]
    else:  # timm: torch.linspace(0, rate, depth)
        fractions = [block / max(depth - 1, 1) for block in range(depth)]
    if callable(rate):
        return [Scaled(rate, fraction) for fraction in fractions]
    return [rate * fraction for fraction in fractions]

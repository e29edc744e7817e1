"""Dropout in its two conventions, inverted and weight-scaled, at a fixed
or scheduled rate."""

import keras

from kdrop.layers.base import INVERTED, WEIGHT_SCALED, BaseDropout
from kdrop.layers.rate import ScheduledRate


class _RateDropout(ScheduledRate, BaseDropout):
    """A BaseDropout whose rate is a number or a schedule; the rate's
    argument is named `_RATE_ARGUMENT` in errors and in the config."""

    _RATE_ARGUMENT = "rate"

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(noise_shape=noise_shape, seed=seed, **kwargs)
        self._init_rate(rate, self._RATE_ARGUMENT)
        self._build_at_construction()


@keras.saving.register_keras_serializable(package="kdrop")
class InvertedDropout(_RateDropout):
    """Inverted dropout: scales kept units by `1 / keep_prob` while training.

    With `keep_prob = 1 - rate` and `mask ~ Bernoulli(keep_prob)`:

        training:  y = x * mask / keep_prob
        inference: y = x

    so `E[y_train] = y_inference`. This is the convention of
    `keras.layers.Dropout`, PyTorch and Caffe's default.

    Args:
        rate: float in [0, 1), the probability of DROPPING a unit, or a
            schedule of the training step (a `kdrop.schedules` schedule, a
            Keras learning-rate schedule or a `keras.ops` callable): the
            rate is then computed inside the compiled train step from the
            layer's own step counter, `clip(schedule(step), 0, 0.99)`.
        noise_shape: None, or a tuple with one entry per input axis; an entry
            of 1 shares the mask along that axis (e.g. `(None, 1, 1, C)`
            drops whole feature maps), `None` takes the input's size.
        seed: None or an int; the same seed gives the same masks.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: floating-point tensor of any rank.
        training: bool, whether to drop units (set by `fit`, `evaluate`
            and `predict`).

    Example:

    ```pycon
    >>> layer = kdrop.layers.InvertedDropout(0.5, seed=1)
    >>> x = np.ones((2, 4), "float32")
    >>> y = layer(x, training=True)  # entries are 0.0 or 2.0
    >>> layer(x, training=False)  # unchanged
    >>> # A rate rising from 0 to 0.5 over the first 1000 training steps:
    >>> kdrop.layers.InvertedDropout(kdrop.schedules.Linear(0.0, 0.5, 1000))
    ```

    References:
        - Srivastava et al., "Dropout: A Simple Way to Prevent Neural
          Networks from Overfitting", JMLR 15, 2014.
        - cs231n notes, "Inverted dropout".
    """

    mode = INVERTED


@keras.saving.register_keras_serializable(package="kdrop")
class WeightScaledDropout(_RateDropout):
    """Classic dropout: no scaling while training, scale by `keep_prob` after.

    With `keep_prob = 1 - rate` and `mask ~ Bernoulli(keep_prob)`:

        training:  y = x * mask
        inference: y = x * keep_prob

    Multiplying the next layer's input by `keep_prob` at inference is the
    weight-scaling rule `W_test = keep_prob * W` of Srivastava et al. (2014)
    and Caffe's `scale_train: false`; `kdrop.fold_dropout` folds it into the
    next layer's kernel. As with inverted dropout, `E[y_train] = y_inference`.

    Args:
        rate: float in [0, 1), the probability of DROPPING a unit, or a
            schedule of the training step (a `kdrop.schedules` schedule, a
            Keras learning-rate schedule or a `keras.ops` callable): the
            rate is then computed inside the compiled train step from the
            layer's own step counter, `clip(schedule(step), 0, 0.99)`.
        noise_shape: None, or a tuple with one entry per input axis; an entry
            of 1 shares the mask along that axis, `None` takes the input's
            size.
        seed: None or an int; the same seed gives the same masks.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: floating-point tensor of any rank.
        training: bool, whether to drop units (set by `fit`, `evaluate`
            and `predict`).

    Example:

    ```pycon
    >>> layer = kdrop.layers.WeightScaledDropout(0.5, seed=1)
    >>> x = np.ones((2, 4), "float32")
    >>> y = layer(x, training=True)  # entries are 0.0 or 1.0
    >>> layer(x, training=False)  # every entry 0.5
    ```

    References:
        - Srivastava et al., "Dropout: A Simple Way to Prevent Neural
          Networks from Overfitting", JMLR 15, 2014, section 1 and Fig. 2.
        - Hinton et al., "Improving neural networks by preventing
          co-adaptation of feature detectors", arXiv:1207.0580, 2012.
    """

    mode = WEIGHT_SCALED

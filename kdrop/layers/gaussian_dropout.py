"""Gaussian dropout: multiplicative noise N(1, rate / (1 - rate))."""

import math

import keras
from keras import ops

from kdrop.layers.dropout import _RateDropout


@keras.saving.register_keras_serializable(package="kdrop")
class GaussianDropout(_RateDropout):
    """Multiplies every unit by Gaussian noise of mean 1 while training.

    With `sigma**2 = rate / (1 - rate)` and `r ~ N(1, sigma**2)`:

        training:  y = x * r
        inference: y = x

    so `E[y_train] = y_inference`, and each unit's noise has the variance of
    inverted Bernoulli dropout at the same rate (`mask / keep_prob` has mean
    1 and variance `rate / (1 - rate)`): Srivastava et al. (2014), section
    10, found it works as well as Bernoulli dropout or better. Unlike
    `keras.layers.GaussianDropout` the rate may be a schedule.

    Args:
        rate: float in [0, 1), the drop rate of the Bernoulli dropout whose
            variance the noise matches, or a schedule of the training step
            (a `kdrop.schedules` schedule, a Keras learning-rate schedule or
            a `keras.ops` callable), evaluated inside the compiled train step
            as `clip(schedule(step), 0, 0.99)`.
        noise_shape: None, or a tuple with one entry per input axis; an entry
            of 1 shares the noise along that axis, `None` takes the input's
            size.
        seed: None or an int; the same seed gives the same noise.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: floating-point tensor of any rank.
        training: bool, whether to add the noise.

    Example:

    ```pycon
    >>> layer = kdrop.layers.GaussianDropout(0.5, seed=1)  # sigma = 1
    >>> y = layer(np.ones((2, 4), "float32"), training=True)  # N(1, 1) entries
    >>> # Noise growing from none to that of rate 0.5 over 1000 steps:
    >>> kdrop.layers.GaussianDropout(kdrop.schedules.Linear(0.0, 0.5, 1000))
    ```

    References:
        - Srivastava et al., "Dropout: A Simple Way to Prevent Neural
          Networks from Overfitting", JMLR 15, 2014, section 10.
        - Wang and Manning, "Fast dropout training", ICML 2013.
    """

    def _dropped(self, inputs, rate):
        if isinstance(rate, float):
            if rate == 0.0:
                return inputs
            stddev = math.sqrt(rate / (1.0 - rate))
        else:
            stddev = ops.sqrt(rate / (1.0 - rate))
        # Drawn in float32 whatever the compute dtype, as the Bernoulli masks.
        noise = self._standard_normal(self._mask_shape(inputs))
        return ops.multiply(inputs, ops.cast(1.0 + stddev * noise, inputs.dtype))

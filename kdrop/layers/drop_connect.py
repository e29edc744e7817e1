"""DropConnect: drop kernel entries instead of activations (Wan et al. 2013).

Training draws one kernel mask per call, shared by the batch's examples, as
most DropConnect implementations do: a mask per example would cost `batch`
copies of the kernel at every training step. `sample()`, the Monte-Carlo
draw used by `kdrop.mc_predict` and the callbacks, draws one mask PER
EXAMPLE instead: `mc_predict` puts several copies of an example in one
batch, and with a shared mask those copies would be the same draw. Each
example's mask has the same distribution in both cases.
"""

import keras
from keras import ops

from kdrop import validation
from kdrop.layers.base import INVERTED, MODES, WEIGHT_SCALED
from kdrop.layers.rate import ScheduledRate
from kdrop.layers.seeded import SeededNoise


class _DropConnect(ScheduledRate, SeededNoise):
    """What DropConnectDense and DropConnectConv2D share (placed before the
    Keras layer class in their bases).

    A subclass implements `_linear(inputs, kernel)`, the layer's linear map
    with a given kernel, `_linear_per_example(inputs, kernels)`, the same
    with one kernel per example (`kernels` has a leading batch axis), and
    `_finish(outputs)`, bias and activation.
    """

    def _init_drop_connect(self, rate, mode, seed):
        self._init_rate(rate)
        self.mode = validation.check_choice(mode, "mode", MODES)
        self._init_seed(seed)

    def _masked(self, kernel, rate, mask_shape):
        """`kernel * mask` (inverted: `/ keep_prob`), `mask` of `mask_shape`
        broadcast against the kernel."""
        keep_prob = 1.0 - rate
        kept = self._keep_mask(mask_shape, keep_prob)
        if self.mode == INVERTED:
            kernel = ops.multiply(kernel, ops.cast(1.0 / keep_prob, kernel.dtype))
        return ops.where(kept, kernel, ops.zeros((), dtype=kernel.dtype))

    def call(self, inputs, training=False):
        validation.check_float_inputs(self, inputs)
        rate = self._rate_tensor()
        kernel = ops.cast(self.kernel, self.compute_dtype)
        if training:
            kernel = self._masked(kernel, rate, ops.shape(kernel))
            self._advance_step()
        elif self.mode == WEIGHT_SCALED:
            kernel = ops.multiply(kernel, ops.cast(1.0 - rate, kernel.dtype))
        return self._finish(self._linear(inputs, kernel))

    def sample(self, inputs):
        """One training-mode draw with a kernel mask per example.

        Never advances a schedule step: Monte-Carlo sampling and probes can
        use it freely.
        """
        validation.check_float_inputs(self, inputs)
        kernel = ops.cast(self.kernel, self.compute_dtype)
        mask_shape = (ops.shape(inputs)[0],) + tuple(kernel.shape)
        kernels = self._masked(
            ops.expand_dims(kernel, 0), self._rate_tensor(), mask_shape
        )
        return self._finish(self._linear_per_example(inputs, kernels))

    def save_own_variables(self, store):
        # The seed state is SeededNoise's; Keras's Dense and Conv2D save
        # their kernel and bias only.
        super().save_own_variables(store)
        if self._step_counter is not None:
            store["step"] = self._step_counter

    def load_own_variables(self, store):
        # Dense's and Conv2D's loaders get the step too: Keras checks that
        # the store holds one entry per variable of the layer.
        super().load_own_variables(store)
        if self._step_counter is not None:
            self._step_counter.assign(store["step"])

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config


@keras.saving.register_keras_serializable(package="kdrop")
class DropConnectDense(_DropConnect, keras.layers.Dense):
    """Dense layer with DropConnect: kernel entries are dropped, not inputs.

    With `keep_prob = 1 - rate` and `M ~ Bernoulli(keep_prob)` drawn for
    every kernel entry:

        mode="weight_scaled" (default): training y = a(x (M * W) + b);
                                        inference y = a(x (keep_prob W) + b)
        mode="inverted":                training y = a(x (M * W / keep_prob)
                                        + b); inference y = a(x W + b)

    In both, the pre-activation's expectation over masks is its inference
    value. Inference uses the mean network (Wan et al.'s simplest rule;
    their paper also moment-matches a Gaussian), and `kdrop.mc_predict`
    samples masks instead. Training draws one mask per call; `sample()` one
    per example. The bias is never dropped.

    Args:
        units: positive int, dimensionality of the output space.
        rate: float in [0, 1), the probability of DROPPING a kernel entry.
        mode: `"weight_scaled"` (default, the paper's convention) or
            `"inverted"`.
        seed: None or an int; the same seed gives the same masks.
        **kwargs: every other argument of `keras.layers.Dense`
            (`activation`, `use_bias`, initializers, regularizers,
            constraints, `name`, `dtype`, ...).

    Call arguments:
        inputs: floating-point tensor of rank >= 2.
        training: bool, whether to drop kernel entries.

    Example:

    ```pycon
    >>> layer = kdrop.layers.DropConnectDense(64, rate=0.5, activation="relu")
    >>> y = layer(np.ones((8, 32), "float32"), training=True)
    ```

    References:
        - Wan, Zeiler, Zhang, LeCun, Fergus, "Regularization of Neural
          Networks using DropConnect", ICML 2013.
    """

    def __init__(self, units, rate, mode=WEIGHT_SCALED, seed=None, **kwargs):
        super().__init__(units, **kwargs)
        self._init_drop_connect(rate, mode, seed)

    def _linear(self, inputs, kernel):
        return ops.matmul(inputs, kernel)

    def _linear_per_example(self, inputs, kernels):
        # (batch, rows, in) @ (batch, in, units) with any middle axes as rows.
        shape = ops.shape(inputs)
        rows = ops.reshape(inputs, (shape[0], -1, shape[-1]))
        outputs = ops.matmul(rows, kernels)
        return ops.reshape(outputs, tuple(shape[:-1]) + (self.units,))

    def _finish(self, outputs):
        # Cast: `sample()` runs outside `__call__`, where no variable is
        # autocast to the compute dtype.
        if self.bias is not None:
            outputs = ops.add(outputs, ops.cast(self.bias, outputs.dtype))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package="kdrop")
class DropConnectConv2D(_DropConnect, keras.layers.Conv2D):
    """2D convolution with DropConnect: kernel entries are dropped.

    With `keep_prob = 1 - rate` and `M ~ Bernoulli(keep_prob)` drawn for
    every entry of the `(kh, kw, in_channels, filters)` kernel:

        mode="weight_scaled" (default): training y = a(conv(x, M * W) + b);
                                        inference y = a(conv(x, keep_prob W)
                                        + b)
        mode="inverted":                training y = a(conv(x, M * W /
                                        keep_prob) + b); inference
                                        y = a(conv(x, W) + b)

    so the pre-activation's expectation over masks is its inference value.
    One mask per call in training (every position and example of the batch
    shares it, as the kernel is shared); `sample()` draws one per example.

    Args:
        filters: positive int, number of output channels.
        kernel_size: int or tuple of 2 ints.
        rate: float in [0, 1), the probability of DROPPING a kernel entry.
        mode: `"weight_scaled"` (default) or `"inverted"`.
        seed: None or an int; the same seed gives the same masks.
        **kwargs: every other argument of `keras.layers.Conv2D` except
            `groups` (`strides`, `padding`, `data_format`, `dilation_rate`,
            `activation`, initializers, ...).

    Call arguments:
        inputs: 4D floating-point tensor.
        training: bool, whether to drop kernel entries.

    Example:

    ```pycon
    >>> layer = kdrop.layers.DropConnectConv2D(16, 3, rate=0.3)
    >>> y = layer(np.ones((2, 8, 8, 3), "float32"), training=True)
    ```

    References:
        - Wan, Zeiler, Zhang, LeCun, Fergus, "Regularization of Neural
          Networks using DropConnect", ICML 2013.
    """

    def __init__(
        self, filters, kernel_size, rate, mode=WEIGHT_SCALED, seed=None, **kwargs
    ):
        if kwargs.get("groups", 1) != 1:
            raise ValueError(
                "DropConnectConv2D supports only `groups=1`. Received: "
                f"groups={kwargs['groups']!r}."
            )
        super().__init__(filters, kernel_size, **kwargs)
        self._init_drop_connect(rate, mode, seed)

    def _linear(self, inputs, kernel):
        return self.convolution_op(inputs, kernel)

    def _linear_per_example(self, inputs, kernels):
        # conv(x_b, W_b) for every example b: the image patches (im2col)
        # times each example's own flattened kernel.
        channels_first = self.data_format == "channels_first"
        if channels_first:
            inputs = ops.transpose(inputs, (0, 2, 3, 1))
        patches = keras.ops.image.extract_patches(
            inputs,
            self.kernel_size,
            strides=self.strides,
            dilation_rate=self.dilation_rate,
            padding=self.padding,
            data_format="channels_last",
        )
        shape = ops.shape(patches)
        kernels = ops.reshape(kernels, (ops.shape(kernels)[0], -1, self.filters))
        rows = ops.reshape(patches, (shape[0], -1, shape[-1]))
        outputs = ops.reshape(
            ops.matmul(rows, kernels), (shape[0], shape[1], shape[2], self.filters)
        )
        return ops.transpose(outputs, (0, 3, 1, 2)) if channels_first else outputs

    def _finish(self, outputs):
        if self.use_bias:
            bias_shape = (
                (1, 1, 1, self.filters)
                if self.data_format == "channels_last"
                else (1, self.filters, 1, 1)
            )
            bias = ops.cast(self.bias, outputs.dtype)
            outputs = ops.add(outputs, ops.reshape(bias, bias_shape))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

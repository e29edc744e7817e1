"""Concrete dropout: a dropout rate learned by gradient descent (Gal, Hron,
Kendall 2017).

A Bernoulli mask has no gradient with respect to its probability, so in
training the mask is its concrete (Gumbel-softmax) relaxation, which is
differentiable in `p`; the paper's regularizer, the KL term of its
variational objective, keeps `p` from collapsing to 0.
"""

import math

import keras
from keras import ops

from kdrop import validation
from kdrop.layers.seeded import SeededNoise


def _logit(p):
    return math.log(p) - math.log1p(-p)


def _check_positive_float(value, name):
    return validation.check_number(
        value, name, "a float > 0", lambda number: number > 0
    )


def _check_non_negative_float(value, name):
    return validation.check_number(
        value, name, "a float >= 0", lambda number: number >= 0
    )


@keras.saving.register_keras_serializable(package="kdrop")
class ConcreteDropout(SeededNoise, keras.layers.Wrapper):
    """Dropout on the input of `layer`, with a learned rate.

    With `p = sigmoid(p_logit)` (a trainable weight), `u ~ U(0, 1)` per unit
    and temperature `t`:

        z = sigmoid((log p - log(1 - p) + log u - log(1 - u)) / t)
        training:  y = layer(x * (1 - z) / (1 - p))
        inference: y = layer(x)

    `z` is the concrete relaxation of a Bernoulli(p) drop mask: nearly 0 or
    1 for the paper's `t = 0.1`, and differentiable in `p`. Each call adds
    the paper's regularizer with `add_loss`,

        weight_regularizer * sum(W**2) / (1 - p)
            + dropout_regularizer * K * (p log p + (1 - p) log(1 - p)),

    with `W` the wrapped layer's kernel and `K` its number of input features
    (channels when `spatial=True`). The paper sets
    `weight_regularizer = l**2 / N` and `dropout_regularizer = 2 / (tau N)`
    for `N` training examples, prior length-scale `l` and model precision
    `tau`. The first term pushes `p` down (less noise, smaller weights), the
    second towards 0.5, and the data fit decides between them.

    `sample()` (used by `kdrop.mc_predict` and the callbacks) draws the
    exact Bernoulli(p) mask the relaxation approximates,
    `layer(x * mask / (1 - p))`, whose expectation is the inference output.
    `current_rate` is `p`: what `kdrop.registry` and `DropoutRateLogger`
    report.

    Args:
        layer: the layer whose input is dropped: a Keras layer with a
            `kernel` (Dense, EinsumDense, Conv1D/2D/3D, ...).
        weight_regularizer: float >= 0, the factor of the weight term.
        dropout_regularizer: float >= 0, the factor of the dropout term.
        init_rate: float in (0, 1), the rate before training.
        temperature: float > 0, the relaxation's temperature.
        spatial: bool; if True one mask value per example and channel
            (whole feature maps are dropped, as by SpatialDropout), for
            convolutional layers; the channel axis follows the wrapped
            layer's `data_format`.
        seed: None or an int; the same seed gives the same masks.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: floating-point input of `layer`.
        training: bool, whether to drop.

    Example:

    ```python
    n = len(x_train)
    model = keras.Sequential([
        keras.Input((784,)),
        kdrop.layers.ConcreteDropout(
            keras.layers.Dense(512, activation="relu"),
            weight_regularizer=1e-6, dropout_regularizer=2 / n,
        ),
        kdrop.layers.ConcreteDropout(keras.layers.Dense(10, "softmax")),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=10)
    [layer.current_rate for layer in model.layers]  # the learned rates
    ```

    References:
        - Gal, Hron, Kendall, "Concrete Dropout", NeurIPS 2017.
        - Maddison, Mnih, Teh, "The Concrete Distribution", ICLR 2017.
    """

    def __init__(
        self,
        layer,
        weight_regularizer=1e-6,
        dropout_regularizer=1e-5,
        init_rate=0.1,
        temperature=0.1,
        spatial=False,
        seed=None,
        **kwargs,
    ):
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                "`layer` must be a keras.layers.Layer with a `kernel` (e.g. "
                f"Dense or Conv2D). Received: layer={layer!r} of type "
                f"{type(layer).__name__}."
            )
        super().__init__(layer, **kwargs)
        self.weight_regularizer = _check_non_negative_float(
            weight_regularizer, "weight_regularizer"
        )
        self.dropout_regularizer = _check_non_negative_float(
            dropout_regularizer, "dropout_regularizer"
        )
        self.init_rate = validation.check_number(
            init_rate, "init_rate", "a float in (0, 1)", lambda p: 0 < p < 1
        )
        self.temperature = _check_positive_float(temperature, "temperature")
        self.spatial = validation.check_bool(spatial, "spatial")
        self._init_seed(seed)
        # Not autocast: under mixed precision p and the regularizer stay in
        # float32 (log p of a small float16 p loses its precision).
        self.p_logit = self.add_weight(
            name="p_logit",
            shape=(),
            initializer=keras.initializers.Constant(_logit(self.init_rate)),
            autocast=False,
        )

    @property
    def current_rate(self):
        """The learned rate `p = sigmoid(p_logit)` (a Python float)."""
        return float(ops.convert_to_numpy(self._rate_tensor()))

    def _rate_tensor(self):
        return ops.sigmoid(ops.cast(self.p_logit, "float32"))

    def _channel_axis(self):
        channels_first = getattr(self.layer, "data_format", None) == "channels_first"
        return 1 if channels_first else -1

    def build(self, input_shape):
        super().build(input_shape)
        if not hasattr(self.layer, "kernel"):
            raise TypeError(
                f"ConcreteDropout '{self.name}' regularizes the `kernel` of "
                f"the layer it wraps; layer '{self.layer.name}' "
                f"({type(self.layer).__name__}) has none. Wrap a Dense, "
                "EinsumDense or convolution layer."
            )

    def _mask_shape(self, inputs):
        shape = ops.shape(inputs)
        if not self.spatial:
            return shape
        axis = self._channel_axis() % len(shape)
        return tuple(size if i in (0, axis) else 1 for i, size in enumerate(shape))

    def regularization(self, input_dim):
        """The paper's regularizer (a float32 scalar) for `input_dim` input
        features at the current rate."""
        p = self._rate_tensor()
        kernel = ops.cast(self.layer.kernel, "float32")
        weight_term = self.weight_regularizer * ops.sum(ops.square(kernel)) / (1.0 - p)
        neg_entropy = p * ops.log(p) + (1.0 - p) * ops.log(1.0 - p)
        return weight_term + self.dropout_regularizer * input_dim * neg_entropy

    def _relaxed_keep_mask(self, inputs):
        p = self._rate_tensor()
        eps = keras.config.epsilon()
        u = self._uniform(self._mask_shape(inputs))
        drop = ops.sigmoid(
            (
                ops.log(p + eps)
                - ops.log(1.0 - p + eps)
                + ops.log(u + eps)
                - ops.log(1.0 - u + eps)
            )
            / self.temperature
        )
        return (1.0 - drop) / (1.0 - p)

    def call(self, inputs, training=False):
        input_dim = inputs.shape[self._channel_axis()]
        self.add_loss(self.regularization(input_dim))
        if training:
            mask = ops.cast(self._relaxed_keep_mask(inputs), inputs.dtype)
            inputs = ops.multiply(inputs, mask)
        return self.layer(inputs)

    def sample(self, inputs):
        """One Bernoulli(p) draw, scaled by `1 / (1 - p)`; changes nothing
        (no loss added, `p` untouched)."""
        keep_prob = 1.0 - self._rate_tensor()
        kept = self._keep_mask(self._mask_shape(inputs), keep_prob)
        mask = ops.where(kept, 1.0 / keep_prob, 0.0)
        return self.layer(ops.multiply(inputs, ops.cast(mask, inputs.dtype)))

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "weight_regularizer": self.weight_regularizer,
                "dropout_regularizer": self.dropout_regularizer,
                "init_rate": self.init_rate,
                "temperature": self.temperature,
                "spatial": self.spatial,
            }
        )
        return config

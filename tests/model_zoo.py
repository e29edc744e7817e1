"""Small models shaped like the ones Keras users build, for every feature's
tests: each builder returns `(model, sample_inputs)`; `builder(zero=True)`
gives the same model with every dropout rate and noise level at 0.

`ZOO` maps a name to its builder; `zoo_params()` gives pytest parameters
with the TensorFlow-only models marked. Every model is compiled (Adam,
MSE on every output) so `fit(x, fit_targets(model, x))` works; weights are
random (seeded by the test's own seed), sizes tiny for CI.
"""

import keras
import numpy as np
import pytest

import kdrop

RNG = np.random.default_rng(11)


def _rate(rate, zero):
    """`rate`, or 0 for the zero-rate variant of a model (`zero=True`)."""
    return 0.0 if zero else rate


def _compile(model):
    model.compile(optimizer="adam", loss="mse")
    return model


def fit_targets(model, x):
    """Zero targets shaped like `model.predict(x)`, for a short `fit`."""
    return keras.tree.map_structure(np.zeros_like, model.predict(x, verbose=0))


def tabular_lookup(zero=False):
    """Adapted Normalization, StringLookup, IntegerLookup, Discretization
    (dict inputs; lookup tables and string tensors need TensorFlow)."""
    import tensorflow as tf  # numpy strings are not accepted by predict

    numeric = RNG.normal(50.0, 20.0, size=(32, 3)).astype("float32")
    city = np.array([["paris", "rome", "oslo", "lima"][i % 4] for i in range(32)])
    city = city.reshape(-1, 1)
    rooms = (np.arange(32) % 5).reshape(-1, 1).astype("int64")
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(numeric)
    lookup = keras.layers.StringLookup(output_mode="one_hot", name="city_lookup")
    lookup.adapt(city)
    int_lookup = keras.layers.IntegerLookup(output_mode="one_hot", name="rooms_lookup")
    int_lookup.adapt(rooms)
    bins = keras.layers.Discretization(num_bins=4, output_mode="one_hot", name="bins")
    bins.adapt(numeric[:, :1])
    inputs = {
        "numeric": keras.Input((3,), name="numeric"),
        "city": keras.Input((1,), dtype="string", name="city"),
        "rooms": keras.Input((1,), dtype="int64", name="rooms"),
    }
    features = keras.layers.Concatenate()(
        [
            norm(inputs["numeric"]),
            lookup(inputs["city"]),
            int_lookup(inputs["rooms"]),
            bins(keras.layers.Lambda(lambda t: t[:, :1])(inputs["numeric"])),
        ]
    )
    hidden = keras.layers.Dense(16, activation="relu")(features)
    hidden = keras.layers.Dropout(_rate(0.3, zero), name="drop")(hidden)
    outputs = keras.layers.Dense(1)(hidden)
    model = keras.Model(inputs, outputs, name="tabular_lookup")
    x = {"numeric": numeric, "city": tf.constant(city.tolist()), "rooms": rooms}
    return _compile(model), x


tabular_lookup.tensorflow_only = True


def tabular_normalized(zero=False):
    """Adapted Normalization and Discretization feeding an MLP with dropout."""
    x = RNG.normal(100.0, 30.0, size=(32, 4)).astype("float32")
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(x)
    bins = keras.layers.Discretization(num_bins=3, output_mode="one_hot")
    bins.adapt(x[:, :1])
    inputs = keras.Input((4,))
    first = keras.layers.Lambda(lambda t: t[:, :1], name="first_column")(inputs)
    features = keras.layers.Concatenate()([norm(inputs), bins(first)])
    hidden = keras.layers.Dense(16, activation="relu")(features)
    hidden = kdrop.layers.InvertedDropout(_rate(0.4, zero), name="drop")(hidden)
    outputs = keras.layers.Dense(3, activation="softmax")(hidden)
    return _compile(keras.Model(inputs, outputs, name="tabular_normalized")), x


@keras.saving.register_keras_serializable(package="kdrop_zoo")
class TransformerBlock(keras.layers.Layer):
    """The Keras "Text classification with Transformer" example's block: it
    holds its own keras.layers.Dropout layers."""

    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.ff_dim, self.rate = ff_dim, rate
        self.att = keras.layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=embed_dim, dropout=rate
        )
        self.ffn = keras.Sequential(
            [
                keras.layers.Dense(ff_dim, activation="relu"),
                keras.layers.Dense(embed_dim),
            ]
        )
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = keras.layers.Dropout(rate)
        self.dropout2 = keras.layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.att(inputs, inputs, training=training)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1, training=training)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)

    def get_config(self):
        config = super().get_config()
        config.update(
            embed_dim=self.embed_dim,
            num_heads=self.num_heads,
            ff_dim=self.ff_dim,
            rate=self.rate,
        )
        return config


def transformer(zero=False):
    """A transformer block (attention dropout, a custom layer holding
    Dropout, LayerNormalization, residual adds) and a classifier head."""
    inputs = keras.Input((6, 8))
    hidden = TransformerBlock(8, 2, 16, rate=_rate(0.3, zero), name="block")(inputs)
    hidden = keras.layers.GlobalAveragePooling1D()(hidden)
    hidden = keras.layers.Dropout(_rate(0.2, zero), name="head_drop")(hidden)
    outputs = keras.layers.Dense(3, activation="softmax")(hidden)
    x = RNG.normal(size=(8, 6, 8)).astype("float32")
    return _compile(keras.Model(inputs, outputs, name="transformer")), x


def resnet(zero=False):
    """A small ResNet: BatchNormalization, residual Add, SpatialDropout2D
    and a kdrop layer dropping whole feature maps."""
    inputs = keras.Input((8, 8, 3))
    stem = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    hidden = keras.layers.BatchNormalization()(stem)
    hidden = keras.layers.ReLU()(hidden)
    hidden = keras.layers.Conv2D(4, 3, padding="same")(hidden)
    hidden = keras.layers.BatchNormalization()(hidden)
    hidden = keras.layers.ReLU()(keras.layers.Add()([stem, hidden]))
    hidden = keras.layers.SpatialDropout2D(_rate(0.25, zero), name="spatial")(hidden)
    hidden = kdrop.layers.InvertedDropout(
        _rate(0.25, zero), noise_shape=(None, 1, 1, 4), name="maps"
    )(hidden)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    outputs = keras.layers.Dense(2, activation="softmax")(hidden)
    model = _compile(keras.Model(inputs, outputs, name="resnet"))
    # Non-trivial moving statistics, as after training.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(RNG.normal(size=4).astype("float32"))
            layer.moving_variance.assign(RNG.uniform(0.5, 2, size=4).astype("float32"))
    x = RNG.normal(size=(4, 8, 8, 3)).astype("float32")
    return model, x


def recurrent(zero=False):
    """LSTM and GRU with `dropout` and `recurrent_dropout`."""
    inputs = keras.Input((5, 3))
    hidden = keras.layers.LSTM(
        6,
        dropout=_rate(0.3, zero),
        recurrent_dropout=_rate(0.2, zero),
        return_sequences=True,
        name="lstm",
    )(inputs)
    hidden = keras.layers.GRU(
        4, dropout=_rate(0.2, zero), recurrent_dropout=_rate(0.3, zero), name="gru"
    )(hidden)
    outputs = keras.layers.Dense(1)(hidden)
    x = RNG.normal(size=(6, 5, 3)).astype("float32")
    return _compile(keras.Model(inputs, outputs, name="recurrent")), x


@keras.saving.register_keras_serializable(package="kdrop_zoo")
class SubclassedMLP(keras.Model):
    """A subclassed model, as many Keras 3 users write them."""

    def __init__(self, units=16, rate=0.5, **kwargs):
        super().__init__(**kwargs)
        self.units, self.rate = units, rate
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.drop = keras.layers.Dropout(rate)
        self.scaled = kdrop.layers.WeightScaledDropout(rate)
        self.out = keras.layers.Dense(2)

    def call(self, inputs, training=False):
        hidden = self.drop(self.hidden(inputs), training=training)
        return self.out(self.scaled(hidden, training=training))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "rate": self.rate}


def subclassed(zero=False):
    """A subclassed keras.Model with Keras and kdrop dropout."""
    x = RNG.normal(size=(8, 5)).astype("float32")
    model = SubclassedMLP(rate=_rate(0.5, zero), name="subclassed")
    model(x)
    return _compile(model), x


def _block(name, rate):
    """One helper building a sub-model: every call repeats the layer names."""
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu", name="dense"),
            keras.layers.Dropout(rate, name="drop"),
        ],
        name=name,
    )


def nested(zero=False):
    """Two sub-models made by one helper: layer names repeat."""
    inputs = keras.Input((8,))
    hidden = _block("encoder", _rate(0.1, zero))(inputs)
    hidden = _block("decoder", _rate(0.6, zero))(hidden)
    outputs = keras.layers.Dense(1, name="out")(hidden)
    x = RNG.normal(size=(8, 8)).astype("float32")
    return _compile(keras.Model(inputs, outputs, name="nested")), x


def multi_input(zero=False):
    """Two inputs (a list), one output."""
    left, right = keras.Input((4,), name="left"), keras.Input((3,), name="right")
    hidden = keras.layers.Concatenate()(
        [
            keras.layers.Dense(6, activation="relu")(left),
            keras.layers.Dense(6, activation="relu")(right),
        ]
    )
    hidden = kdrop.layers.WeightScaledDropout(_rate(0.5, zero), name="drop")(hidden)
    outputs = keras.layers.Dense(2)(hidden)
    x = [
        RNG.normal(size=(8, 4)).astype("float32"),
        RNG.normal(size=(8, 3)).astype("float32"),
    ]
    return _compile(keras.Model([left, right], outputs, name="multi_input")), x


def multi_output(zero=False):
    """One input, two named outputs (a dict)."""
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    hidden = keras.layers.Dropout(_rate(0.4, zero), name="drop")(hidden)
    outputs = {
        "label": keras.layers.Dense(3, activation="softmax", name="label")(hidden),
        "value": keras.layers.Dense(1, name="value")(hidden),
    }
    x = RNG.normal(size=(8, 5)).astype("float32")
    return _compile(keras.Model(inputs, outputs, name="multi_output")), x


def with_lambda(zero=False):
    """A Lambda layer (an in-memory Python function)."""
    inputs = keras.Input((4,))
    hidden = keras.layers.Lambda(lambda t: 2.0 * t + 1.0, name="affine")(inputs)
    hidden = keras.layers.Dense(8, activation="relu")(hidden)
    hidden = kdrop.layers.InvertedDropout(_rate(0.5, zero), name="drop")(hidden)
    outputs = keras.layers.Dense(1)(hidden)
    x = RNG.normal(size=(8, 4)).astype("float32")
    return _compile(keras.Model(inputs, outputs, name="with_lambda")), x


def mixed_precision(zero=False):
    """Layers with the "mixed_float16" policy, a float32 output."""
    policy = "mixed_float16"
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu", dtype=policy),
            kdrop.layers.WeightScaledDropout(
                _rate(0.5, zero), dtype=policy, name="drop"
            ),
            keras.layers.Dense(8, activation="relu", dtype=policy),
            keras.layers.Dropout(_rate(0.3, zero), dtype=policy, name="keras_drop"),
            keras.layers.Dense(2, dtype="float32"),
        ],
        name="mixed_precision",
    )
    x = RNG.normal(size=(8, 6)).astype("float32")
    return _compile(model), x


def augmented_cnn(zero=False):
    """Random augmentation layers (off at inference) before a CNN."""
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.RandomFlip("horizontal", name="flip"),
            keras.layers.RandomContrast(0.2, name="contrast"),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            kdrop.layers.WeightScaledDropout(_rate(0.5, zero), name="drop"),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="augmented_cnn",
    )
    x = RNG.uniform(size=(4, 8, 8, 1)).astype("float32")
    return _compile(model), x


def scheduled_mlp(zero=False):
    """ScheduledDropout in both modes, plus Keras's noise layers."""
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.GaussianNoise(_rate(0.1, zero), name="noise"),
            keras.layers.Dense(8, activation="relu"),
            kdrop.layers.ScheduledDropout(
                kdrop.schedules.Linear(_rate(0.5, zero), _rate(0.1, zero), 100),
                name="annealed",
            ),
            keras.layers.Dense(8, activation="relu"),
            kdrop.layers.ScheduledDropout(
                kdrop.schedules.Constant(_rate(0.3, zero)),
                mode="weight_scaled",
                name="scaled",
            ),
            keras.layers.Dense(8, activation="selu"),
            keras.layers.AlphaDropout(_rate(0.1, zero), name="alpha"),
            keras.layers.GaussianDropout(_rate(0.2, zero), name="gaussian"),
            keras.layers.Dense(1),
        ],
        name="scheduled_mlp",
    )
    x = RNG.normal(size=(8, 6)).astype("float32")
    return _compile(model), x


def bidirectional(zero=False):
    """Bidirectional GRU with dropout, then an embedding-free classifier."""
    inputs = keras.Input((4, 3))
    hidden = keras.layers.Bidirectional(keras.layers.GRU(4, dropout=_rate(0.3, zero)))(
        inputs
    )
    outputs = keras.layers.Dense(2, activation="softmax")(hidden)
    x = RNG.normal(size=(6, 4, 3)).astype("float32")
    return _compile(keras.Model(inputs, outputs, name="bidirectional")), x


def hand_computable(zero=False):
    """x -> WeightScaledDropout(0.5) -> Dense(1, all-ones kernel, no bias).

    Per example the output is `sum_j mask_j x_j`, so over the masks its mean
    is `keep * sum(x)` and its std `sqrt(keep * (1 - keep) * sum(x**2))`.
    """
    model = keras.Sequential(
        [
            keras.Input((10,)),
            kdrop.layers.WeightScaledDropout(_rate(0.5, zero), name="drop"),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
        ],
        name="hand_computable",
    )
    x = RNG.uniform(0.5, 2.0, size=(3, 10)).astype("float32")
    return _compile(model), x


def residual_ops(zero=False):
    """Residuals and activations written with keras.ops on symbolic tensors
    (`x + h`, `keras.ops.tanh`), which Keras records as operation nodes.

    The output is `sum_j (x_j + tanh(d_j))` with `d` Keras's Dropout(0.5)
    of `x` (an all-ones Dense without bias), so over the masks its mean is
    `sum x + keep * sum tanh(x / keep)` and its variance
    `keep * (1 - keep) * sum tanh(x / keep)**2`.
    """
    inputs = keras.Input((6,))
    hidden = keras.layers.Dropout(_rate(0.5, zero), name="drop")(inputs)
    hidden = inputs + keras.ops.tanh(hidden)
    outputs = keras.layers.Dense(
        1, use_bias=False, kernel_initializer="ones", name="sum"
    )(hidden)
    x = RNG.uniform(0.2, 1.5, size=(4, 6)).astype("float32")
    return _compile(keras.Model(inputs, outputs, name="residual_ops")), x


def masked_text(zero=False):
    """The keras.io text classifier: Embedding(mask_zero=True) (Keras adds a
    `NotEqual` operation node for the mask), LSTM, Dropout, sigmoid."""
    inputs = keras.Input((7,), dtype="int32")
    # Large weights, so that the padding's mask visibly matters.
    large = keras.initializers.RandomNormal(stddev=2.0, seed=3)
    hidden = keras.layers.Embedding(
        20, 8, mask_zero=True, embeddings_initializer=large, name="embed"
    )(inputs)
    hidden = keras.layers.LSTM(8, name="lstm")(hidden)
    hidden = keras.layers.Dropout(_rate(0.5, zero), name="drop")(hidden)
    outputs = keras.layers.Dense(
        1, activation="sigmoid", kernel_initializer=large, name="out"
    )(hidden)
    x = RNG.integers(1, 20, size=(5, 7)).astype("int32")
    x[:, 5:] = 0  # padding
    return _compile(keras.Model(inputs, outputs, name="masked_text")), x


def convnext_smallest(drop_path_rate=0.3, classes=3):
    """keras.applications' ConvNeXt in its smallest configuration with
    StochasticDepth (ConvNeXtTiny's drop_path_rate is 0: it has none);
    weights=None, 32x32 inputs. Not in ZOO (slow to build)."""
    from keras.src.applications.convnext import ConvNeXt

    return ConvNeXt(
        depths=[1, 1, 1, 1],
        projection_dims=[8, 8, 8, 8],
        drop_path_rate=drop_path_rate,
        input_shape=(32, 32, 3),
        classes=classes,
        weights=None,
        name="convnext_smallest",
    )


ZOO = {
    builder.__name__: builder
    for builder in (
        tabular_lookup,
        tabular_normalized,
        transformer,
        resnet,
        recurrent,
        subclassed,
        nested,
        multi_input,
        multi_output,
        with_lambda,
        mixed_precision,
        augmented_cnn,
        scheduled_mlp,
        bidirectional,
        hand_computable,
        residual_ops,
        masked_text,
    )
}


# Models whose backend-specific layers another zoo model already has: a
# check run over the whole zoo reaches the same backend code through them
# (masks, the MC sampler, gradients, random and step state), so CI's JAX
# pass, where XLA compiles every model afresh, leaves them out (marker
# `breadth`); the TensorFlow and PyTorch passes run them. Each one's
# stand-in: tabular_normalized's preprocessing -> augmented_cnn's; resnet's
# convolutions, batch normalisation and residual adds -> augmented_cnn's
# and residual_ops'; with_lambda's Lambda -> residual_ops' keras.ops;
# bidirectional's LSTM -> recurrent's; nested, multi_input and
# multi_output differ in structure only, which no backend sees.
BREADTH = {
    "tabular_normalized",
    "resnet",
    "with_lambda",
    "bidirectional",
    "nested",
    "multi_input",
    "multi_output",
}


def zoo_params():
    """`pytest.param(builder, id=name)` for every zoo model, TF-only ones
    marked `tensorflow_only`, those of `BREADTH` marked `breadth`."""
    params = []
    for name, builder in ZOO.items():
        marks = []
        if getattr(builder, "tensorflow_only", False):
            marks.append(pytest.mark.tensorflow_only)
        if name in BREADTH:
            marks.append(pytest.mark.breadth)
        params.append(pytest.param(builder, id=name, marks=marks))
    return params

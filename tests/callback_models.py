"""Tiny models, data and a numpy SGD reference for the callback tests."""

import keras
import numpy as np

import kdrop

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 6)).astype("float32")
W_HIDDEN = RNG.normal(size=(6, 40)).astype("float32")
Y = RNG.normal(size=(64, 1)).astype("float32")
CLASSES = (X[:, 0] > 0).astype("int64") + (X[:, 1] > 0.5)  # 3 classes


def relu_model(dropout=None):
    """Input(6) -> Dense 'hidden' (40, relu, kernel W_HIDDEN) [-> dropout] -> 'out'."""
    layers = [
        keras.Input((6,)),
        keras.layers.Dense(40, activation="relu", use_bias=False, name="hidden"),
    ]
    if dropout is not None:
        layers.append(dropout)
    layers.append(keras.layers.Dense(1, name="out"))
    model = keras.Sequential(layers)
    model.get_layer("hidden").kernel.assign(W_HIDDEN)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    return model


def classifier():
    """Input(6) -> Dense 'hidden' (16, relu) -> InvertedDropout 'drop' (0.5)
    -> Dense 'out' (3, softmax), for the labels CLASSES, with accuracy."""
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            kdrop.InvertedDropout(0.5, name="drop"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    model.compile(
        kdrop.optimizers.SGD(0.1),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def linear_model(optimizer, jit_compile="auto"):
    """Dense(1) named 'linear' from zero weights, MSE loss."""
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(1, kernel_initializer="zeros", name="linear"),
        ]
    )
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit_compile)
    return model


def full_batch_gradients(kernel, bias, x=X, y=Y):
    """Gradients of mean((x @ kernel + bias - y)**2)."""
    residual = x @ kernel + bias - y
    return [2 * x.T @ residual / len(x), 2 * residual.mean(axis=0)]


def sgd_reference(learning_rate, momentum, steps, nesterov=False):
    """Keras's SGD rule on full-batch MSE from zero weights; `learning_rate`
    and `momentum` are functions of the step."""
    params = [np.zeros((6, 1)), np.zeros(1)]
    velocity = [np.zeros_like(p) for p in params]
    for step in range(steps):
        lr, m = learning_rate(step), momentum(step)
        for i, grad in enumerate(full_batch_gradients(*params)):
            velocity[i] = m * velocity[i] - lr * grad
            params[i] = params[i] + (
                m * velocity[i] - lr * grad if nesterov else velocity[i]
            )
    return params


def assert_weights(model, params, rtol=1e-4, atol=1e-6):
    layer = model.get_layer("linear")
    np.testing.assert_allclose(layer.kernel.numpy(), params[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(layer.bias.numpy(), params[1], rtol=rtol, atol=atol)


def _block(rate):
    """What one helper function builds: every call names its layers alike."""
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(6, name="dense"),
            keras.layers.Dropout(rate, name="drop"),
        ],
        name="block",
    )


class TwinBlocks(keras.Model):
    """Two sub-models named "block" (Keras gives their variables the same
    `path`, "block/dense/kernel"), then Dense 'out'."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first, self.second = _block(0.6), _block(0.1)
        self.out = keras.layers.Dense(1, name="out")

    def call(self, x, training=False):
        hidden = self.first(x, training=training)
        return self.out(self.second(hidden, training=training))


def twin_blocks_model():
    model = TwinBlocks(name="twin")
    model(X[:2])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    return model


def every_logging_callback(
    log_dir, x, y, learning_rate=lambda t: 0.01 / (1 + t), momentum=lambda t: 0.5
):
    """kdrop's logging callbacks, per batch where they can be, probing the
    first 32 examples, with the per-step schedules `learning_rate` and
    `momentum` (for a model compiled with kdrop.optimizers.SGD)."""
    return [
        kdrop.callbacks.ActivationSparsity(log_dir, data=x[:32]),
        kdrop.callbacks.WeightHistograms(log_dir, data=(x[:32], y[:32])),
        kdrop.callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
        kdrop.callbacks.LRMomentumScheduler(
            learning_rate=learning_rate,
            momentum=momentum,
            update_freq="batch",
            log_dir=log_dir,
        ),
    ]

"""Gradient of a compiled model's loss on one batch, per Keras backend.

The only backend-specific code of kdrop's callbacks. The loss is the
model's compiled loss (regularization losses included), evaluated in
inference mode: no dropout noise, and no ScheduledDropout step taken.
"""

import keras
import numpy as np


def _tensorflow_gradients(model, x, y):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        y_pred = model(x, training=False)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
    return tape.gradient(loss, model.trainable_variables)


def _jax_gradients(model, x, y):
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    metrics = [v.value for v in model.metrics_variables]

    def loss_fn(trainable_values):
        loss, _ = model.compute_loss_and_updates(
            trainable_values, non_trainable, metrics, x, y,
            sample_weight=None, training=False,
        )
        return loss

    return jax.grad(loss_fn)(trainable)


def _torch_gradients(model, x, y):
    import torch

    variables = [v.value for v in model.trainable_variables]
    y_pred = model(x, training=False)
    loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
    return torch.autograd.grad(loss, variables, allow_unused=True)


_BY_BACKEND = {
    "tensorflow": _tensorflow_gradients,
    "jax": _jax_gradients,
    "torch": _torch_gradients,
}


def loss_gradients(model, x, y):
    """Returns numpy gradients of the loss, one per trainable variable."""
    backend = keras.backend.backend()
    if backend not in _BY_BACKEND:
        raise NotImplementedError(
            f"Gradients are implemented for the tensorflow, jax and torch "
            f"backends; the current backend is {backend!r}."
        )
    x = keras.ops.convert_to_tensor(x)
    y = keras.ops.convert_to_tensor(y)
    gradients = _BY_BACKEND[backend](model, x, y)
    return [
        np.zeros(v.shape) if g is None else np.asarray(keras.ops.convert_to_numpy(g))
        for v, g in zip(model.trainable_variables, gradients)
    ]

"""Gradient of a compiled model's loss on a batch, per backend.

The loss is the model's compiled loss (regularization losses included),
evaluated in inference mode: no dropout noise, no schedule step.
"""

import keras
import numpy as np
from keras import ops


def _tensorflow_gradients(model):
    import tensorflow as tf

    def gradients(x, y):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=False)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
        return tape.gradient(loss, model.trainable_variables)

    @tf.function
    def on_one_replica(x, y):
        # Inside a tf.distribute strategy's scope (`fit` called in
        # `with strategy.scope()`), TensorFlow gives no handle of a
        # distributed variable in cross-replica context: every replica
        # computes the whole batch's gradient and the first is kept. Keras
        # divided the loss by the replica count (scale_loss_for_distribution).
        strategy = tf.distribute.get_strategy()
        per_replica = strategy.run(gradients, args=(x, y))
        first = strategy.experimental_local_results(per_replica)[0]
        return [None if g is None else g * strategy.num_replicas_in_sync for g in first]

    compiled = tf.function(gradients)

    def in_context(x, y):
        if tf.distribute.has_strategy():
            return on_one_replica(x, y)
        return compiled(x, y)

    return in_context


def _jax_gradients(model):
    import jax

    def loss(trainable, non_trainable, metrics, x, y):
        value, _ = model.compute_loss_and_updates(
            trainable, non_trainable, metrics, x, y, sample_weight=None, training=False
        )
        return value

    compiled = jax.jit(jax.grad(loss))

    def gradients(x, y):
        return compiled(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.metrics_variables],
            x,
            y,
        )

    return gradients


def _torch_gradients(model):
    import torch

    def gradients(x, y):
        variables = [v.value for v in model.trainable_variables]
        y_pred = model(x, training=False)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
        return torch.autograd.grad(loss, variables, allow_unused=True)

    return gradients


_BY_BACKEND = {
    "tensorflow": _tensorflow_gradients,
    "jax": _jax_gradients,
    "torch": _torch_gradients,
}


def loss_gradient_function(model):
    """Returns `f(x, y)` -> numpy gradients of the loss, one per trainable
    variable, compiled (tf.function / jax.jit) where the backend allows."""
    backend = keras.backend.backend()
    if backend not in _BY_BACKEND:
        raise NotImplementedError(
            f"Gradients are implemented for the tensorflow, jax and torch "
            f"backends; the current backend is {backend!r}."
        )
    gradients = _BY_BACKEND[backend](model)

    def numpy_gradients(x, y):
        # x and y may be lists or dicts (several inputs or outputs).
        values = gradients(
            keras.tree.map_structure(ops.convert_to_tensor, x),
            keras.tree.map_structure(ops.convert_to_tensor, y),
        )
        return [
            np.zeros(v.shape) if g is None else np.asarray(ops.convert_to_numpy(g))
            for v, g in zip(model.trainable_variables, values)
        ]

    return numpy_gradients

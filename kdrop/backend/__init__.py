"""Every piece of kdrop that depends on the Keras backend, in one package.

- `assign`: per-step values for variables, without TensorFlow's scalar
  cache.
- `distribute`: distinct dropout masks on each `tf.distribute` replica.
- `gradients`: gradient of a compiled model's loss (tf.function / jax.jit /
  torch.autograd).
- `histogram`: fixed-width histogram counts inside a compiled graph.
- `jax_sync`: current variable values from batch-level hooks on JAX.
- `masks`: dropout keep-masks from the fastest exact generator per backend.
- `noise`: Gaussian noise from each backend's fastest generator.

The rest of kdrop uses `keras.ops` and `keras.random` only.
"""

"""Gaussian and uniform noise from the fastest generator of each backend.

On TensorFlow, `keras.random.normal` and `keras.random.uniform` leave the
algorithm on "auto_select", which XLA's CPU code runs many times slower
than Philox (BENCHMARKS.md, GaussianDropout and ConcreteDropout), as for the
uniform bits of `kdrop.backend.masks`: the noise comes from
`tf.random.stateless_normal` / `stateless_uniform` with `alg="philox"`
there, and from `keras.random` on the other backends. Every call takes one
seed from the layer's seed generator, as `keras.random.normal(seed=generator)`
does.
"""

import keras


def standard_normal(shape, seed_generator):
    """float32 N(0, 1) noise of `shape`; advances `seed_generator` once."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.random.stateless_normal(
            shape, seed=seed_generator.next(), dtype=tf.float32, alg="philox"
        )
    return keras.random.normal(shape, seed=seed_generator, dtype="float32")


def uniform(shape, seed_generator):
    """float32 U(0, 1) noise of `shape`; advances `seed_generator` once."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.random.stateless_uniform(
            shape, seed=seed_generator.next(), dtype=tf.float32, alg="philox"
        )
    return keras.random.uniform(shape, seed=seed_generator, dtype="float32")

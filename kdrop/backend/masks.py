"""Dropout keep-masks from the cheapest exact random bits of each backend.

`keep_mask(shape, keep_prob, seed_generator)` returns a boolean tensor whose
entries are independently True with probability `keep_prob`. The random op
is nearly all the cost of a dropout layer, and Keras's portable
`keras.random.uniform` does not pick the fastest one:

- TensorFlow: 32 random bits per unit from `tf.random.stateless_uniform`
  with `alg="philox"`, compared with an integer threshold. Keras leaves the
  algorithm on "auto_select", which XLA's CPU code runs about 100x slower;
  in graph mode the two take the same time.
- JAX: 32 random bits per unit from `lax.rng_bit_generator` with XLA's
  Threefry algorithm, keyed by four words that JAX's threefry derives from
  the seed, compared with an integer threshold. XLA expands it into the
  mask's elementwise loop: on the CPU 3.5-5x cheaper than the "rbg" keys'
  default algorithm (Philox there) and than `jax.random.bits`' threefry,
  which runs as a loop over whole arrays. Keras's seeds and the
  process-wide default PRNG implementation are untouched.
- PyTorch: `torch.rand(...) < keep_prob` from a `torch.Generator` seeded by
  the layer's seed; faster than `bernoulli_` and than integer draws
  (`random_`) on the CPU.
- Any other backend: `keras.random.uniform(...) < keep_prob`.

Resolution of the keep probability: on TensorFlow and JAX the mask is
`bits <= threshold` with 32-bit `bits`, so the probability is
`keep_prob` rounded to a multiple of 2^-32 (a Python float) or 2^-31 (a
float32 scalar tensor, exact for every float32 `keep_prob >= 2^-8`), never
below 2^-32. On PyTorch it is that of torch's float32 uniforms, multiples of
2^-24. Keras's float32 uniforms on TensorFlow and JAX are multiples of
2^-23.

Every call draws a fresh seed from `seed_generator` (one `next()`, as
`keras.random.uniform(seed=seed_generator)` does), so masks are reproducible
from the layer's seed, differ from call to call, and the generator's saved
state keeps its meaning. The seed goes through a hash before it keys the
bits (TensorFlow's Philox key scrambling, JAX's threefry, a 64-bit mix for
torch), so seeds one apart give unrelated streams, not shifted copies.
"""

import keras
from keras import ops

_TWO_32 = 2**32


def _python_threshold(keep_prob):
    """Largest 32-bit value kept, for a Python number: P(bits <= t) is
    keep_prob rounded to a multiple of 2^-32 (and at least 2^-32)."""
    return min(max(round(float(keep_prob) * _TWO_32), 1), _TWO_32) - 1


def _tensor_threshold(keep_prob, to_uint32):
    """Same for a scalar tensor, in uint32 arithmetic (JAX has no int64 by
    default): with `u = keep_prob * 2^31`, `t = u + (u - 1)` is `2u - 1`,
    which is 2^32 - 1 at keep_prob = 1 without overflowing."""
    half = to_uint32(ops.round(ops.cast(keep_prob, "float32") * 2.0**31))
    half = ops.maximum(half, to_uint32(1))
    return _computed_once(half + (half - to_uint32(1)))


def _computed_once(threshold):
    """`threshold` (a uint32 scalar tensor), divided by a 1 that XLA cannot
    fold away.

    XLA's CPU compiler fuses the cheap scalar ops that compute a threshold
    (a schedule of the step, the rounding above) into the elementwise loop
    that compares it with the random bits, and that loop recomputes them
    for every element: a rate that follows a schedule cost 1.33x the fixed
    rate's mask under TensorFlow's XLA (BENCHMARKS.md, with the optimized
    HLO). XLA never fuses an integer division by a non-constant into a
    broadcast (`InstructionFusion::IsExpensive`), so this division makes the
    threshold a scalar computed once per call and passed to the loop. The
    division by 1 leaves the value unchanged: `(t | 1)` is never 0.
    """
    one = (threshold | 1) // (threshold | 1)
    return threshold // one


def _threshold(keep_prob, to_uint32):
    if isinstance(keep_prob, (int, float)):
        return to_uint32(_python_threshold(keep_prob))
    return _tensor_threshold(keep_prob, to_uint32)


def _tensorflow_uint32(value):
    import tensorflow as tf

    return tf.cast(value, tf.uint32)


def _tensorflow_mask(shape, keep_prob, seed):
    import tensorflow as tf

    bits = tf.random.stateless_uniform(
        shape, seed=seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
    )
    return bits <= _threshold(keep_prob, _tensorflow_uint32)


def _jax_uint32(value):
    import jax.numpy as jnp

    return jnp.asarray(value, dtype=jnp.uint32)


def _jax_mask(shape, keep_prob, seed):
    import jax
    import jax.numpy as jnp

    threefry = jax.random.wrap_key_data(seed, impl="threefry2x32")
    key = jax.random.bits(threefry, (4,), jnp.uint32)
    # Threefry, not the rbg keys' RNG_DEFAULT (Philox on the CPU): XLA's
    # CPU expansion of Philox fuses into the mask's loop and recomputes each
    # 4-word block for every word it keeps, with 64-bit multiplies, about
    # 4x the bits' cost (BENCHMARKS.md, DropConnectDense on JAX).
    _, bits = jax.lax.rng_bit_generator(
        key,
        tuple(shape),
        jnp.uint32,
        algorithm=jax.lax.RandomAlgorithm.RNG_THREE_FRY,
    )
    return bits <= _threshold(keep_prob, _jax_uint32)


def _torch_seed(seed):
    """One 64-bit torch seed from the two 32-bit seed words (splitmix64's
    finalizer): Keras adds the words, so its seed s at call n equals seed
    s + 1 at call n - 1; the CPU generator also keeps only 32 bits."""
    first, second = (int(word) & 0xFFFFFFFF for word in seed.tolist())
    z = (first << 32 | second) + 0x9E3779B97F4A7C15
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def _torch_mask(shape, keep_prob, seed):
    import torch

    # The seed lives where Keras put the layer's variables, as do the inputs.
    device = seed.device
    generator = None
    if device.type != "meta":  # shape inference only; no generator exists there
        generator = torch.Generator(device=device)
        generator.manual_seed(_torch_seed(seed))
    uniform = torch.rand(
        tuple(shape), generator=generator, device=device, dtype=torch.float32
    )
    return uniform < keep_prob


_BY_BACKEND = {
    "tensorflow": _tensorflow_mask,
    "jax": _jax_mask,
    "torch": _torch_mask,
}


def keep_mask(shape, keep_prob, seed_generator):
    """Boolean mask of `shape`, each entry True with probability `keep_prob`.

    Args:
        shape: the mask's shape (ints or scalar tensors).
        keep_prob: a Python float in (0, 1] or a float scalar tensor.
        seed_generator: a `keras.random.SeedGenerator`; advanced once.
    """
    draw = _BY_BACKEND.get(keras.backend.backend())
    if draw is None:
        # float32 whatever the compute dtype: in float16 or bfloat16 a draw
        # can round up to 1.0, which would bias the keep probability.
        uniform = keras.random.uniform(shape, seed=seed_generator, dtype="float32")
        return ops.less(uniform, keep_prob)
    return draw(shape, keep_prob, seed_generator.next())

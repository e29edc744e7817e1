"""Dropout keep-masks (kdrop.backend.masks) against Bernoulli statistics.

Each statistical test runs with the backend's own fast generator and with
the `keras.random` fallback. Tolerances are 5 standard deviations of the
Bernoulli estimate they bound. Independence is checked as the agreement of
two masks, elementwise and at shifts of up to 32 elements, which must be
`k^2 + (1 - k)^2` for independent masks of keep probability `k`: a
generator whose streams for neighbouring seeds (or successive calls) were
shifted copies of each other would agree on every unit at one shift.
"""

import keras
import numpy as np
import pytest

import kdrop
from kdrop.backend import masks
from kdrop.backend.distribute import _REPLICA_SEED_STRIDE, ReplicaSeedGenerator
from tests.conftest import BACKEND

SHAPE = (256, 256)
SIZE = SHAPE[0] * SHAPE[1]
MAX_SHIFT = 32


@pytest.fixture(params=["fast", "keras.random"])
def generator(request, monkeypatch):
    """Runs the test with the backend's fast path, then with the fallback."""
    if request.param == "keras.random":
        monkeypatch.delitem(masks._BY_BACKEND, BACKEND, raising=False)
    elif BACKEND not in masks._BY_BACKEND:
        pytest.skip(f"no fast mask generator on the {BACKEND} backend")
    return request.param


def draw(seed_generator, keep_prob, as_tensor=False):
    if as_tensor:
        keep_prob = keras.ops.convert_to_tensor(keep_prob, dtype="float32")
    mask = masks.keep_mask(SHAPE, keep_prob, seed_generator)
    assert keras.backend.standardize_dtype(mask.dtype) == "bool"
    return keras.ops.convert_to_numpy(mask).ravel()


def tolerance(p, n):
    return 5 * np.sqrt(p * (1 - p) / n)


def assert_independent(a, b, keep_prob, shifts=range(MAX_SHIFT + 1)):
    expected = keep_prob**2 + (1 - keep_prob) ** 2
    for shift in shifts:
        agreement = np.mean(a[shift:] == b[: len(b) - shift])
        assert abs(agreement - expected) < tolerance(expected, SIZE - shift), shift


@pytest.mark.parametrize("as_tensor", [False, True], ids=["float", "tensor"])
@pytest.mark.parametrize("keep_prob", [0.1, 0.5, 0.93])
def test_keep_fraction_is_keep_prob(generator, keep_prob, as_tensor):
    seed_generator = keras.random.SeedGenerator(1)
    kept = np.concatenate([draw(seed_generator, keep_prob, as_tensor) for _ in "ab"])
    assert abs(kept.mean() - keep_prob) < tolerance(keep_prob, kept.size)


@pytest.mark.parametrize("as_tensor", [False, True], ids=["float", "tensor"])
def test_keep_prob_one_keeps_every_unit(generator, as_tensor):
    assert draw(keras.random.SeedGenerator(2), 1.0, as_tensor).all()


def test_units_of_one_mask_are_independent(generator):
    mask = draw(keras.random.SeedGenerator(3), 0.3)
    assert_independent(mask, mask, 0.3, shifts=range(1, MAX_SHIFT + 1))


def test_successive_calls_are_independent(generator):
    seed_generator = keras.random.SeedGenerator(4)
    first, second = draw(seed_generator, 0.3), draw(seed_generator, 0.3)
    assert_independent(first, second, 0.3)
    assert_independent(second, first, 0.3)


def test_neighbouring_seeds_are_independent(generator):
    if generator == "keras.random" and BACKEND == "torch":
        pytest.skip(
            "Keras's torch generator is seeded with the sum of the two seed "
            "words, so states (5, 1) and (6, 0) draw the same mask; kdrop's "
            "torch path mixes the words instead"
        )
    a, b = keras.random.SeedGenerator(5), keras.random.SeedGenerator(6)
    first_a, first_b = draw(a, 0.3), draw(b, 0.3)
    assert_independent(first_a, first_b, 0.3)
    # Seed state (5, 1) against (6, 0): words that add up to the same number.
    assert_independent(draw(a, 0.3), first_b, 0.3)


def test_replica_offsets_give_independent_masks(generator):
    # ReplicaSeedGenerator hands replica r the seed offset by r * stride.
    replica_0 = keras.random.SeedGenerator(7)
    replica_1 = keras.random.SeedGenerator(7 + _REPLICA_SEED_STRIDE)
    assert_independent(draw(replica_0, 0.3), draw(replica_1, 0.3), 0.3)


def test_same_seed_same_masks(generator):
    a, b = ReplicaSeedGenerator(8), ReplicaSeedGenerator(8)
    masks_a = [draw(a, 0.5) for _ in range(3)]
    masks_b = [draw(b, 0.5) for _ in range(3)]
    for mask_a, mask_b in zip(masks_a, masks_b):
        np.testing.assert_array_equal(mask_a, mask_b)
    assert not np.array_equal(masks_a[0], masks_a[1])


def test_monte_carlo_samples_are_independent():
    model = keras.Sequential([keras.Input((SHAPE[1],)), kdrop.InvertedDropout(0.5)])
    ones = np.ones((1, SHAPE[1]), "float32")
    result = kdrop.mc_predict(
        model, ones, samples=SHAPE[0], seed=9, return_samples=True
    )
    kept = np.asarray(result.draws).reshape(SHAPE) > 0
    assert abs(kept.mean() - 0.5) < tolerance(0.5, SIZE)
    assert_independent(kept[0::2].ravel(), kept[1::2].ravel(), 0.5)
    again = kdrop.mc_predict(model, ones, samples=SHAPE[0], seed=9, return_samples=True)
    np.testing.assert_array_equal(np.asarray(again.draws), np.asarray(result.draws))


def test_saved_seed_state_resumes_the_mask_sequence(tmp_path):
    layer = kdrop.InvertedDropout(0.5, seed=10)
    model = keras.Sequential([keras.Input((SHAPE[1],)), layer])
    x = np.ones((4, SHAPE[1]), "float32")
    for _ in range(3):
        layer(x, training=True)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras").layers[0]
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x, training=True)),
        keras.ops.convert_to_numpy(layer(x, training=True)),
    )


UINT32_CASTS = {"tensorflow": "_tensorflow_uint32", "jax": "_jax_uint32"}


@pytest.mark.skipif(
    BACKEND not in UINT32_CASTS,
    reason=f"{BACKEND} masks compare float uniforms, no integer threshold",
)
@pytest.mark.parametrize("keep_prob", [2.0**-8, 0.1, 0.3, 0.5, 0.7, 1 - 2.0**-24, 1.0])
def test_thresholds_give_the_keep_probability_exactly(keep_prob):
    """P(bits <= t) = (t + 1) / 2^32 for uniform 32-bit bits."""
    to_uint32 = getattr(masks, UINT32_CASTS[BACKEND])
    python = int(keras.ops.convert_to_numpy(masks._threshold(keep_prob, to_uint32)))
    assert python + 1 == round(keep_prob * 2**32)
    as_float32 = np.float32(keep_prob)
    tensor = masks._threshold(keras.ops.convert_to_tensor(as_float32), to_uint32)
    assert int(keras.ops.convert_to_numpy(tensor)) + 1 == int(as_float32 * 2.0**32)


def _xla_compiled(function):
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    import jax

    return jax.jit(function)


@pytest.mark.skipif(
    BACKEND not in UINT32_CASTS,
    reason=f"{BACKEND} masks compare float uniforms, no integer threshold",
)
def test_thresholds_computed_once_under_xla_are_exact():
    """The threshold of a keep probability computed in the compiled function
    (as a schedule's is) goes through the division that keeps XLA from
    recomputing it per element: it must still be exactly
    `keep_prob * 2^32 - 1`, from the smallest threshold to the largest."""
    to_uint32 = getattr(masks, UINT32_CASTS[BACKEND])
    threshold = _xla_compiled(lambda keep: masks._threshold(keep, to_uint32))
    for keep_prob in (2.0**-31, 2.0**-8, 0.1, 0.5, 0.7, 1 - 2.0**-24, 1.0):
        as_float32 = np.float32(keep_prob)
        got = int(keras.ops.convert_to_numpy(threshold(as_float32)))
        assert got + 1 == int(as_float32 * 2.0**32), keep_prob


@pytest.mark.tensorflow_only
def test_in_graph_keep_prob_under_xla():
    import tensorflow as tf

    seed_generator = keras.random.SeedGenerator(11)
    keep_prob = tf.Variable(0.3)

    @tf.function(jit_compile=True)
    def kept_fraction():
        mask = masks.keep_mask(SHAPE, keep_prob, seed_generator)
        return tf.reduce_mean(tf.cast(mask, tf.float64))

    assert abs(float(kept_fraction()) - 0.3) < tolerance(0.3, SIZE)
    keep_prob.assign(1.0)
    assert float(kept_fraction()) == 1.0


def test_uniform_noise_is_uniform_and_seeded():
    """kdrop.backend.noise.uniform (ConcreteDropout's relaxed masks): values
    in [0, 1), the fraction below q within 5 binomial standard deviations of
    q, successive calls independent, the same seed the same draws."""
    from kdrop.backend import noise

    seed_generator = keras.random.SeedGenerator(5)
    first = keras.ops.convert_to_numpy(noise.uniform(SHAPE, seed_generator))
    second = keras.ops.convert_to_numpy(noise.uniform(SHAPE, seed_generator))
    assert first.dtype == np.float32 and first.min() >= 0.0 and first.max() < 1.0
    for q in (0.01, 0.25, 0.5, 0.9):
        assert abs(np.mean(first < q) - q) < tolerance(q, SIZE), q
    # Independent draws: P(first < 0.5 and second < 0.5) = 1/4.
    both = np.mean((first < 0.5) & (second < 0.5))
    assert abs(both - 0.25) < tolerance(0.25, SIZE)
    again = keras.random.SeedGenerator(5)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(noise.uniform(SHAPE, again)), first
    )

"""Uncertainty metrics and mc_predict's per-pass outputs against references."""

import keras
import numpy as np
import pytest

import kdrop


def normal(*shape):
    # numpy's global generator, seeded per test by conftest.
    return np.random.normal(size=shape).astype("float32")


def softmax_classifier(classes=4, rate=0.5):
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(rate),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )


def numpy_entropy(p):
    return -(p * np.log(p)).sum(axis=-1)


# ------------------------------------------------- mc_predict(return_samples)


@pytest.mark.parametrize("batch_size", [None, 10, 4])  # 1 call; 2 calls; chunks
def test_mc_draws_agree_with_the_running_statistics(batch_size):
    model, x, samples = softmax_classifier(), normal(6, 6), 7
    result = kdrop.mc_predict(
        model, x, samples=samples, batch_size=batch_size, seed=0, return_samples=True
    )
    draws = result.draws.astype(np.float64)
    assert result.draws.shape == (samples, 6, 4)
    assert result.draws.dtype == np.float32
    np.testing.assert_allclose(result.mean, draws.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.std, draws.std(axis=0), rtol=1e-9, atol=1e-12)
    # BALD: entropy of the mean minus the mean entropy of the passes.
    information = numpy_entropy(draws.mean(axis=0)) - numpy_entropy(draws).mean(0)
    np.testing.assert_allclose(result.mutual_information, information, rtol=1e-9)
    assert np.all(result.mutual_information > 0)
    # Keeping the passes changes nothing else.
    lean = kdrop.mc_predict(model, x, samples=samples, batch_size=batch_size, seed=0)
    assert lean.draws is None
    np.testing.assert_array_equal(lean.mean, result.mean)
    np.testing.assert_array_equal(lean.mutual_information, result.mutual_information)


def test_mc_mutual_information_is_zero_without_dropout():
    # Every pass is the same distribution: nothing to learn about the masks.
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
    )
    with pytest.warns(UserWarning, match="no dropout layer"):
        result = kdrop.mc_predict(model, normal(5, 4), samples=6, seed=0)
    np.testing.assert_allclose(result.mutual_information, 0.0, atol=1e-12)
    np.testing.assert_allclose(result.entropy, numpy_entropy(result.mean), rtol=1e-10)


def test_mc_draws_and_information_per_output():
    inputs = keras.Input((5,))
    hidden = kdrop.InvertedDropout(0.5)(inputs)
    model = keras.Model(
        inputs,
        {
            "p": keras.layers.Dense(3, activation="softmax")(hidden),
            "r": keras.layers.Dense(2)(hidden),
        },
    )
    result = kdrop.mc_predict(
        model, normal(4, 5), samples=9, batch_size=8, seed=0, return_samples=True
    )
    assert result.draws["p"].shape == (9, 4, 3) and result.draws["r"].shape == (9, 4, 2)
    np.testing.assert_allclose(result.mean["r"], result.draws["r"].mean(0), rtol=1e-6)
    assert result.mutual_information["r"] is None
    assert result.mutual_information["p"].shape == (4,)


def test_mc_return_samples_must_be_a_bool():
    with pytest.raises(
        TypeError, match="`return_samples` must be True or False.*'yes'"
    ):
        kdrop.mc_predict(softmax_classifier(), normal(2, 6), return_samples="yes")

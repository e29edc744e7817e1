"""scripts/stochastic_depth.py with tiny settings: summary.csv and
aggregate.csv against Keras's own validation events, the logged rates
against the papers' rules."""

import csv

import numpy as np
import pytest

from kdrop.experiments import stochastic_depth
from tests.event_files import read_scalars
from tests.test_experiments import assert_hparams_table, assert_png

TRAIN_SIZE, BATCH, EPOCHS = 256, 64, 2
STEPS = EPOCHS * TRAIN_SIZE // BATCH  # 8


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


# TensorFlow only: 2 minutes of CPU on torch for what is backend-independent
# script logic; DropPath and DropBlock run on every backend in their own tests.
@pytest.mark.tensorflow_only
def test_stochastic_depth_smoke(tmp_path):
    rows, summary = stochastic_depth.run(
        variants=("both",),
        epochs=EPOCHS,
        seeds=2,
        out=str(tmp_path),
        seed=3,
        batch_size=BATCH,
        train_size=TRAIN_SIZE,
        verbose=0,
    )
    assert [(row["variant"], row["seed"]) for row in rows] == [("both", 3), ("both", 4)]
    # Each seed's final test loss and error are Keras's last validation ones.
    for row, saved in zip(rows, read_csv(tmp_path / "summary.csv")):
        logged = read_scalars(tmp_path / "both" / f"seed_{row['seed']}", "validation")
        assert row["test_loss"] == pytest.approx(logged["epoch_loss"][EPOCHS - 1])
        error = 100 * (1 - logged["epoch_accuracy"][EPOCHS - 1])
        assert row["test_error_%"] == pytest.approx(error, abs=1e-4)
        assert float(saved["test_loss"]) == pytest.approx(row["test_loss"], rel=1e-5)
    losses = [row["test_loss"] for row in rows]
    (aggregate,) = read_csv(tmp_path / "aggregate.csv")
    assert float(aggregate["test_loss_mean"]) == pytest.approx(np.mean(losses))
    assert float(aggregate["test_loss_std"]) == pytest.approx(np.std(losses, ddof=1))
    assert summary[0]["seeds"] == 2

    logged = read_scalars(tmp_path / "both" / "seed_3")
    steps = np.arange(STEPS)
    # Stochastic depth, linear rule: block l of 3 has rate (l / 3) * 0.5.
    # A rate fixed for the whole run is written once, with no per-batch series.
    for block in (1, 2, 3):
        assert f"rates/dropout_per_batch/block{block}_drop_path" not in logged
        rates = logged[f"rates/dropout/block{block}_drop_path"]
        assert list(rates) == [0]
        np.testing.assert_allclose(rates[0], block / 3 * 0.5, atol=1e-6)
    # DropBlock: keep_prob from 1 to 0.9 linearly over the run's 8 steps.
    for block in (2, 3):
        rates = logged[f"rates/dropout_per_batch/block{block}_drop_block"]
        np.testing.assert_allclose(
            [rates[s] for s in steps], 0.1 * steps / STEPS, atol=1e-6
        )
    assert_png(tmp_path / "test_error.png")
    assert_hparams_table(
        tmp_path, rows, "variant", ("variant", "regularisation", "seed")
    )


def test_stochastic_depth_rejects_bad_arguments_before_training(tmp_path):
    with pytest.raises(ValueError, match="variants"):
        stochastic_depth.run(variants=("dropconnect",), out=str(tmp_path))
    with pytest.raises(ValueError, match="seeds"):
        stochastic_depth.run(seeds=0, out=str(tmp_path))
    assert not (tmp_path / "summary.csv").exists()


def test_stochastic_depth_command_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        stochastic_depth.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--seeds",
        "--variants",
        "--epochs",
        "--overwrite",
        "logs/stochastic_depth",
    ):
        assert option in text

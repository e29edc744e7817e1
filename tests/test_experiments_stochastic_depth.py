"""scripts/stochastic_depth.py with tiny settings: summary.csv against the
per-seed values, the logged rates against the papers' rules, the test loss
against Keras's own validation events."""

import csv

import numpy as np
import pytest

from kdrop.experiments import stochastic_depth
from tests.event_files import read_scalars
from tests.test_experiments import assert_png

TRAIN_SIZE, BATCH, EPOCHS = 256, 64, 2
STEPS = EPOCHS * TRAIN_SIZE // BATCH  # 8


# TensorFlow only: 2 minutes of CPU on torch for what is backend-independent
# script logic; DropPath and DropBlock run on every backend in their own tests.
@pytest.mark.tensorflow_only
def test_stochastic_depth_smoke(tmp_path):
    rows = stochastic_depth.run(
        variants=("both",),
        epochs=EPOCHS,
        seeds=2,
        out=str(tmp_path),
        seed=3,
        batch_size=BATCH,
        train_size=TRAIN_SIZE,
        verbose=0,
    )
    assert [row["variant"] for row in rows] == ["both"]
    with open(tmp_path / "summary.csv") as handle:
        saved = list(csv.DictReader(handle))
    for row, saved_row in zip(rows, saved):
        errors = row["test_errors"]
        assert len(errors) == 2 and all(0 <= error <= 100 for error in errors)
        assert row["test_error_mean"] == pytest.approx(np.mean(errors))
        assert row["test_error_std"] == pytest.approx(np.std(errors))
        assert float(saved_row["test_error_mean"]) == pytest.approx(
            row["test_error_mean"], abs=1e-4
        )
        # The final test loss of each seed is Keras's last validation loss.
        losses = [
            read_scalars(tmp_path / row["variant"] / f"seed_{s}", "validation")[
                "epoch_loss"
            ][EPOCHS - 1]
            for s in (3, 4)
        ]
        assert row["test_loss_mean"] == pytest.approx(np.mean(losses), rel=1e-5)
        assert row["test_loss_std"] == pytest.approx(np.std(losses), rel=1e-4, abs=1e-6)

    logged = read_scalars(tmp_path / "both" / "seed_3")
    steps = np.arange(STEPS)
    # Stochastic depth, linear rule: block l of 3 has rate (l / 3) * 0.5.
    for block in (1, 2, 3):
        rates = logged[f"dropout_rate/block{block}_drop_path"]
        assert sorted(rates) == list(steps)
        np.testing.assert_allclose(list(rates.values()), block / 3 * 0.5, atol=1e-6)
    # DropBlock: keep_prob from 1 to 0.9 linearly over the run's 8 steps.
    for block in (2, 3):
        rates = logged[f"dropout_rate/block{block}_drop_block"]
        np.testing.assert_allclose(
            [rates[s] for s in steps], 0.1 * steps / STEPS, atol=1e-6
        )
    for name in ("test_error.png", "test_loss.png"):
        assert_png(tmp_path / name)


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

"""The helpers of benchmarks/soak_callbacks.py that compute its report."""

import numpy as np
import pytest

from benchmarks.soak_callbacks import count_values, event_bytes, per_1000_steps
from kdrop.tensorboard.writer import SummaryWriter, prepare_log_dir


def test_event_bytes_and_values_are_counted_from_the_files(tmp_path):
    for subdir, scalars in (("train", 5), ("validation", 2)):
        writer = SummaryWriter(prepare_log_dir(tmp_path, subdir))
        for step in range(scalars):
            writer.scalar("loss", 1.0 / (1 + step), step)
        writer.histogram("weights", np.ones((30, 3)), 0)
        writer.close()
    (tmp_path / "notes.txt").write_text("not an event file")
    assert count_values(tmp_path) == 5 + 1 + 2 + 1
    files = [p for p in tmp_path.rglob("*") if "tfevents" in p.name]
    assert len(files) == 2
    assert event_bytes(tmp_path) == sum(p.stat().st_size for p in files)


def test_growth_per_1000_steps_is_the_least_squares_slope():
    steps = [0, 1000, 2000, 3000]
    assert per_1000_steps(steps, [10, 12, 14, 16]) == pytest.approx(2.0)
    # Noise around a line: numpy's least-squares fit of the same points.
    values = [10, 13, 13, 17]
    expected = np.linalg.lstsq(
        np.stack([steps, np.ones(4)], axis=1), values, rcond=None
    )[0][0]
    assert per_1000_steps(steps, values) == pytest.approx(1000 * expected)

"""Training ended from outside: SIGKILL mid-epoch, a log_dir that fills up.

Each test runs tests/killable_training.py in subprocesses (TensorFlow
backend) and compares with one uninterrupted run of the same script.
"""

import glob
import json
import os
import signal
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.custom_scalar.metadata import (
    CONFIG_SUMMARY_TAG as CUSTOM_SCALARS_TAG,
)
from tensorboard.util import tensor_util

from tests import killable_training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "killable_training.py")
ENV = {**os.environ, "PYTHONPATH": ROOT, "KERAS_BACKEND": "tensorflow"}
TOTAL_STEPS = killable_training.EPOCHS * killable_training.STEPS_PER_EPOCH

pytestmark = [pytest.mark.multiprocess, pytest.mark.tensorflow_only]


def run_to_end(out, *options):
    result = subprocess.run(
        [sys.executable, SCRIPT, str(out), *options],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_and_kill(out, step):
    """Runs until the script pauses before training step `step`, then
    SIGKILLs it; returns the backup's metadata it leaves."""
    with open(out / f"stderr_{step}.txt", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, SCRIPT, str(out), "--pause-at-step", str(step)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=ROOT,
            env=ENV,
        )
        # A child that never reaches the step is killed, so the readline
        # below returns instead of hanging CI.
        watchdog = threading.Timer(300, process.kill)
        watchdog.start()
        try:
            line = process.stdout.readline()  # empty if the script ended
            assert line.strip() == f"paused {step}", (
                out / f"stderr_{step}.txt"
            ).read_text()[-3000:]
        finally:
            watchdog.cancel()
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    with open(out / "backup" / "training_metadata.json") as file:
        return json.load(file)


def complete_records(path):
    """How many whole TFRecords `path` holds, from the framing alone: an
    8-byte length, its 4-byte CRC, the data, the data's 4-byte CRC."""
    with open(path, "rb") as file:
        data = file.read()
    count, offset = 0, 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        if offset + 12 + length + 4 > len(data):
            break
        offset += 12 + length + 4
        count += 1
    return count


def read_events(log_dir):
    """{(tag, step): [value, ...]}, one value per record that holds it,
    every file read with tensorboard's own event-file loader; also checks
    that each file is read up to its last complete record. Leaves out the
    CUSTOM SCALARS layout, which every kdrop event file holds at step 0 by
    design (tests/test_callbacks_dashboard.py checks it)."""
    values = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "train", "events.*"))):
        events = list(EventFileLoader(path).Load())
        assert len(events) == complete_records(path), path
        for event in events:
            for value in event.summary.value:
                if value.tag == CUSTOM_SCALARS_TAG:
                    continue
                array = tensor_util.make_ndarray(value.tensor)
                values.setdefault((value.tag, event.step), []).append(array)
    return values


def assert_same_values(got, expected):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run, without limits."""
    out = tmp_path_factory.mktemp("reference")
    run_to_end(out)
    return out


def final_state(out):
    with np.load(out / "final.npz") as final:
        return {key: final[key] for key in final.files}


def test_runs_killed_mid_epoch_resume_to_the_uninterrupted_result(tmp_path, reference):
    # Backups every 2 batches of 4 per epoch: an uninterrupted run backs up
    # after steps 1, 3, 5, ...; the first kill, before step 6, comes right
    # after the backup of step 5 (epoch 1, batch 1).
    assert run_and_kill(tmp_path, 6) == {"epoch": 1, "batch": 1}
    # The rerun skips batches 0 and 1 of epoch 1, trains from step 6 and,
    # counting as Keras does, backs up after step 6 (epoch 1, batch 2; Keras
    # alone would record epoch 0 there) and step 8: killed before step 8,
    # step 7 was trained after the last backup and is trained again.
    assert run_and_kill(tmp_path, 8) == {"epoch": 1, "batch": 2}
    run_to_end(tmp_path)

    got, expected = final_state(tmp_path), final_state(reference)
    assert int(got["iterations"]) == int(got["scheduled_step"]) == TOTAL_STEPS
    assert got.keys() == expected.keys()
    for key in expected:  # bit-exact: the same operations on the same data
        assert_same_values(got[key], expected[key])

    events, reference_events = (
        read_events(tmp_path / "logs"),
        read_events(reference / "logs"),
    )
    # No NaN/Inf: ActivationSparsity writes no nonfinite_fraction.
    assert not any("nonfinite_fraction" in tag for tag, _ in events)
    # A rate fixed for a whole fit is written once per fit, at its first
    # epoch end: the reference wrote the fixed rate at epoch 0, and each
    # resumed run that reached the end of epoch 1 wrote it again there, with
    # the value held since epoch 0.
    fixed = "rates/dropout/weight_scaled"
    resumed = events.pop((fixed, 1))
    assert len(resumed) == 2
    for value in resumed:
        assert_same_values(value, reference_events[(fixed, 0)][0])
    assert events.keys() == reference_events.keys()
    for key, values in events.items():
        # Written once by the reference run; by a killed run and again by
        # the resumed one only when trained again after the last backup,
        # with the same value.
        assert len(reference_events[key]) == 1, key
        for value in values:
            assert_same_values(value, reference_events[key][0])
    # Each run logs a step's per-batch values before training it: step 5
    # was logged by the first run only (the reruns skip it), steps 6 (first
    # and second run) and 7 (second and third) twice; epoch 1's values, at
    # its end after step 7, by the second and the third run.
    assert len(events[("rates/dropout_per_batch/scheduled", 5)]) == 1
    assert len(events[("rates/dropout_per_batch/scheduled", 6)]) == 2
    assert len(events[("rates/learning_rate_per_batch", 7)]) == 2
    assert len(events[("statistics/weight_norm/sequential/hidden/kernel", 0)]) == 1
    assert len(events[("statistics/weight_norm/sequential/hidden/kernel", 1)]) == 2
    assert not os.path.exists(tmp_path / "backup")  # deleted by the last run


def test_a_full_log_dir_warns_once_and_training_goes_on(tmp_path, reference):
    # Each file may grow to 30000 bytes: the checkpoint, the backups and
    # final.npz stay below it, two of the event files grow past it.
    limit = 30000
    report = run_to_end(tmp_path, "--file-size-limit", str(limit))

    log_dir = str(tmp_path / "logs" / "train")
    [warning] = report["runtime_warnings"]
    assert log_dir in warning and "File too large" in warning
    got, expected = final_state(tmp_path), final_state(reference)
    for key in expected:
        assert_same_values(got[key], expected[key])
    model = killable_training.build_model()
    model.optimizer.build(model.trainable_variables)
    model.load_weights(tmp_path / "checkpoint.weights.h5")
    checkpoint = model.get_weights()  # saved at the last epoch end
    for i, weight in enumerate(checkpoint):
        assert_same_values(weight, got[f"arr_{i}"])

    sizes = [os.path.getsize(path) for path in glob.glob(log_dir + "/events.*")]
    assert max(sizes) == limit  # the write that failed was cut at the limit
    events, reference_events = (
        read_events(tmp_path / "logs"),
        read_events(reference / "logs"),
    )
    # What was written before the failure is what the reference run wrote;
    # after it every kdrop writer of the directory stopped.
    assert 0 < len(events) < len(reference_events)
    for key, [value] in events.items():
        assert_same_values(value, reference_events[key][0])
    assert ("rates/learning_rate_per_batch", TOTAL_STEPS - 1) in reference_events
    assert ("rates/learning_rate_per_batch", TOTAL_STEPS - 1) not in events

"""kdrop under MultiWorkerMirroredStrategy: 2 real worker processes.

The workers (tests/multi_worker_check.py) talk gRPC on loopback ports and
train the same model with every kdrop logging callback and the same
`log_dir`; kdrop decides which worker writes.
"""

import json
import os
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import kdrop
from tests.event_files import read_tensors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS, EPOCHS = 20, 2  # 160 examples, global batches of 16, 2 epochs


def free_ports(count):
    # All sockets stay open until every port is chosen, so none repeats.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run_workers(tmp_path, log_dir, model_path, timeout=240):
    """Starts both workers, waits at most `timeout` seconds in all, and
    returns their reports in task order; kills any still running.

    Output goes to files, not pipes: a worker blocked on a full pipe would
    stall the other one's collectives until the timeout."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    deadline = time.monotonic() + timeout
    processes, outputs = [], []
    try:
        for index in range(2):
            temporary = tmp_path / f"tmp{index}"
            temporary.mkdir()
            env = {
                **os.environ,
                "PYTHONPATH": ROOT,
                "TMPDIR": str(temporary),
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                ),
            }
            outputs.append(
                (tmp_path / f"worker{index}.out", tmp_path / f"worker{index}.err")
            )
            with (
                open(outputs[-1][0], "w") as stdout,
                open(outputs[-1][1], "w") as stderr,
            ):
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            os.path.join(ROOT, "tests", "multi_worker_check.py"),
                            str(log_dir),
                            str(model_path),
                        ],
                        stdout=stdout,
                        stderr=stderr,
                        cwd=ROOT,
                        env=env,
                    )
                )
        for process in processes:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        for process in processes:
            if process.poll() is None:
                os.kill(process.pid, 9)
                process.wait()
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr.read_text()[-3000:]
    return [
        json.loads(stdout.read_text().strip().splitlines()[-1]) for stdout, _ in outputs
    ]


def steps_of(events):
    return [step for step, _ in events]


@pytest.mark.tensorflow_only
@pytest.mark.multiprocess
def test_multi_worker_mirrored_strategy_two_processes(tmp_path):
    log_dir, model_path = tmp_path / "logs", tmp_path / "chief.keras"
    chief, worker = run_workers(tmp_path, log_dir, model_path)
    assert (chief["task_id"], chief["chief"]) == (0, True)
    assert (worker["task_id"], worker["chief"]) == (1, False)
    assert chief["replicas"] == worker["replicas"] == 2

    # One schedule over global steps on both workers: 20 optimizer steps,
    # the rate and the LR/momentum of step 20 (Linear(0.1, 0.5, 40)) and of
    # the last step, 19, taken.
    for report in (chief, worker):
        assert report["iterations"] == report["scheduled_step"] == STEPS
        assert report["scheduled_rate"] == pytest.approx(0.1 + 0.4 * STEPS / 40)
        assert report["learning_rate"] == pytest.approx(0.01 / STEPS)
        assert report["momentum"] == pytest.approx(0.5 + 0.01 * (STEPS - 1))
    # Gradients are all-reduced: bit-identical weights.
    assert chief["weights"] == worker["weights"]

    # Masks of rate 0.3 drawn independently on the two workers (one replica
    # each) agree on keep^2 + rate^2 = 0.58 of 1024 units, not on all.
    first, second = (
        np.unpackbits(np.array(r["masks"][0], dtype=np.uint8)) for r in (chief, worker)
    )
    agreement, p = np.mean(first == second), 0.7**2 + 0.3**2
    assert abs(agreement - p) < 5 * (p * (1 - p) / first.size) ** 0.5

    # Only the chief's event files are in log_dir, each value once.
    files = os.listdir(log_dir / "train")
    assert len(files) == 5  # one per logging callback
    assert all(f".{chief['pid']}." in name for name in files)
    tensors = read_tensors(log_dir)
    for tag, steps in {
        "rates/dropout_per_batch/scheduled": range(STEPS),
        # A fixed rate: written once, with no per-batch series.
        "rates/dropout/weight_scaled": range(1),
        "rates/learning_rate_per_batch": range(STEPS),
        "rates/momentum_per_batch": range(STEPS),
        "rates/dropout/scheduled": range(EPOCHS),
        "rates/learning_rate": range(EPOCHS),
        "statistics/sparsity/hidden": range(EPOCHS),
        "value_histograms/weights/net/hidden/kernel": range(EPOCHS),
        "value_histograms/gradients/net/hidden/kernel": range(EPOCHS),
        "mc_dropout/nll/mc": range(EPOCHS),
    }.items():
        assert steps_of(tensors[tag]) == list(steps), tag
    for tag, schedule in {
        "rates/dropout_per_batch/scheduled": lambda t: 0.1 + 0.4 * t / 40,
        "rates/learning_rate_per_batch": lambda t: 0.01 / (1 + t),
        "rates/momentum_per_batch": lambda t: 0.5 + 0.01 * t,
    }.items():
        values = [float(value) for _, value in tensors[tag]]
        np.testing.assert_allclose(values, [schedule(t) for t in range(STEPS)], 1e-6)

    # The other worker wrote its 5 event files to its own temporary
    # directory at every epoch end, and removed them when training ended.
    for seen in worker["event_files_during_training"]:
        assert len(seen) == 5 and all(f".{worker['pid']}." in f for f in seen)
    assert chief["event_files_during_training"] == [[]] * EPOCHS
    assert os.listdir(tmp_path / "tmp1") == []

    # The chief's .keras file holds the trained state and continues the
    # schedule: 10 more steps move the rate from step 20's to step 30's.
    model = keras.saving.load_model(model_path)
    np.testing.assert_array_equal(
        model.trainable_weights[0].numpy(), chief["weights"][0]
    )
    scheduled = model.get_layer("scheduled")
    assert scheduled.step == model.optimizer.iterations.numpy() == STEPS
    x = np.random.default_rng(1).normal(size=(160, 16)).astype("float32")
    y = np.arange(160) % 3
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert scheduled.step == STEPS + 10
    assert scheduled.current_rate == pytest.approx(0.1 + 0.4 * 30 / 40)
    assert isinstance(model.optimizer, kdrop.optimizers.SGD)

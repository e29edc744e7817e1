"""Distributed training, mixed precision, resuming, determinism, bad files."""

import functools
import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import kdrop
from kdrop import callbacks, schedules
from kdrop.callbacks import backup_and_restore
from tests.event_files import read_scalars, read_tensors
from tests.interruptions import RaiseAtEpoch, RaiseAtStep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 8)).astype("float32")
Y = RNG.normal(size=(64, 1)).astype("float32")


@pytest.mark.tensorflow_only
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tests", "distributed_check.py"),
            str(tmp_path),
            "graph",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    # 160 examples in global batches of 16 for 2 epochs: 20 optimizer steps.
    assert report["iterations"] == report["scheduled_step"] == 20
    # Independent masks on the two replicas agree on about half the units
    # (keep^2 + rate^2 = 0.5), not on all of them.
    assert abs(report["mask_agreement"] - 0.5) < 5 * (0.25 / 1024) ** 0.5
    assert report["dropout_rate_steps"] == list(range(20))  # each value once
    assert report["learning_rate_steps"] == list(range(20))
    assert report["sparsity_steps"] == [0, 1]
    assert report["final_learning_rate"] == pytest.approx(0.01 / 20)
    # MCDropoutMonitor's deterministic pass: one prediction per example,
    # logged at each epoch end, the last one with the final weights.
    accuracy = report["deterministic_accuracy"]
    assert sorted(accuracy) == ["0", "1"]
    assert accuracy["1"] == pytest.approx(report["predict_accuracy"])
    # WeightHistograms with `fit` inside strategy.scope(): the whole probe
    # batch's gradient (not 1/replicas of it), against numpy.
    assert report["in_scope_gradient_norm"] == pytest.approx(
        report["reference_gradient_norm"], rel=1e-4
    )


@pytest.mark.multiprocess
@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="starts its own JAX process; runs once, in the KERAS_BACKEND=jax stage",
)
def test_jax_data_parallel_on_two_host_devices(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tests", "jax_data_parallel_check.py"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": ROOT,
            "KERAS_BACKEND": "jax",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    parallel, single = report["data_parallel"], report["single_device"]
    assert report["devices"] == 2
    assert report["kernel_devices"] == 2  # the weights live on both devices
    # 160 examples in global batches of 16 for 2 epochs: 20 optimizer steps,
    # and ScheduledDropout counts them once, not once per device.
    for run in (parallel, single):
        assert run["iterations"] == run["scheduled_step"] == 20
        assert run["scheduled_step_after_mc"] == 20  # mc_predict takes no step
    steps = np.arange(20)
    for run in (parallel, single):
        # Each value once per step, following Linear(0.1, 0.5, 20) and the
        # learning-rate schedule 0.01 / (1 + t).
        rates = run["dropout_rate"]
        assert sorted(int(step) for step in rates) == steps.tolist()
        np.testing.assert_allclose(
            [rates[str(t)] for t in steps], 0.1 + 0.4 * steps / 20, rtol=1e-6
        )
        learning_rates = run["learning_rate"]
        np.testing.assert_allclose(
            [learning_rates[str(t)] for t in steps], 0.01 / (1 + steps), rtol=1e-6
        )
        assert run["sparsity_steps"] == [0, 1]
    # Two identical halves of a batch, one per device, get independent masks:
    # they agree on about half the units (keep^2 + rate^2 = 0.5).
    masks = np.array(parallel["masks"], dtype=bool)
    agreement = np.mean(masks[:4] == masks[4:])
    assert abs(agreement - 0.5) < 5 * (0.25 / masks[:4].size) ** 0.5
    # The same seed draws the same masks whatever the sharding, so the
    # run over 2 devices is the single-device run, up to the order in which
    # the devices' gradients are summed.
    np.testing.assert_array_equal(masks, np.array(single["masks"], dtype=bool))
    for got, expected in zip(parallel["weights"], single["weights"]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    gradient_norms = [
        [run["gradient_norm"][str(epoch)] for epoch in (0, 1)]
        for run in (parallel, single)
    ]
    np.testing.assert_allclose(*gradient_norms, rtol=1e-5)
    # mc_predict under the distribution: the same draws as without it.
    np.testing.assert_allclose(
        parallel["mc_mean"], report["mc_mean_undistributed"], rtol=1e-6
    )
    np.testing.assert_allclose(parallel["mc_mean"], single["mc_mean"], rtol=1e-5)
    assert min(parallel["mc_std"]) > 0


@pytest.fixture
def restore_policy():
    yield
    keras.config.set_dtype_policy("float32")


def all_dropout_model():
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            kdrop.InvertedDropout(0.2),
            kdrop.WeightScaledDropout(0.3),
            kdrop.ScheduledDropout(
                schedules.Linear(0.0, 0.5, 8), mode="weight_scaled", name="scheduled"
            ),
            keras.layers.Dense(1, dtype="float32"),
        ]
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_mixed_precision_fit(policy, jit_compile, restore_policy):
    if jit_compile and keras.backend.backend() == "torch":
        pytest.skip(
            "jit_compile=True means torch.compile on torch; not part of kdrop's matrix"
        )
    keras.config.set_dtype_policy(policy)
    model = all_dropout_model()
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit_compile)
    history = model.fit(X, Y, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    compute_dtype = policy.split("_")[1]
    scheduled = model.get_layer("scheduled")
    for layer in model.layers[1:4]:
        inputs = keras.ops.cast(X, compute_dtype)
        for training in (False, True):
            assert (
                keras.backend.standardize_dtype(layer(inputs, training=training).dtype)
                == compute_dtype
            )
    assert keras.backend.standardize_dtype(scheduled._rate_tensor().dtype) == "float32"
    assert scheduled.step == 8 + 1  # 8 fit steps and the training call above
    assert scheduled.current_rate == pytest.approx(0.5)


def resumable_run(log_dir, backup, interruption=None):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            kdrop.ScheduledDropout(
                schedules.Linear(0.1, 0.6, 20), seed=3, name="scheduled"
            ),
            keras.layers.Dense(1),
        ]
    )
    model.compile(kdrop.optimizers.SGD(0.05), "mse")
    extra = [] if interruption is None else [interruption]
    model.fit(
        X,
        Y,
        batch_size=16,
        epochs=5,
        shuffle=False,
        verbose=0,
        callbacks=[
            backup,
            callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
            callbacks.LRMomentumScheduler(
                learning_rate=lambda e: 0.05 * 0.5**e,
                momentum=lambda e: min(0.9, 0.3 * e),
                log_dir=log_dir,
            ),
        ]
        + extra,
    )
    return model


@pytest.mark.parametrize(
    "backup, interruption, logged_twice",
    [
        (keras.callbacks.BackupAndRestore, RaiseAtEpoch(KeyboardInterrupt, 3), []),
        # Backups after steps 2, 5 and 8 (epoch 2, batch 0); stopped before
        # step 11, whose rate was already logged: the rerun skips batch 0 of
        # epoch 2 and trains and logs steps 9 to 11 again.
        (
            functools.partial(callbacks.BackupAndRestore, save_freq=3),
            RaiseAtStep(KeyboardInterrupt, 11),
            [9, 10, 11],
        ),
    ],
    ids=["keras_epoch_backup", "kdrop_mid_epoch_backup"],
)
def test_interrupted_run_resumes_exactly_where_it_stopped(
    tmp_path, backup, interruption, logged_twice
):
    reference = resumable_run(tmp_path / "ref_logs", backup(tmp_path / "ref_backup"))
    with pytest.raises(KeyboardInterrupt):
        resumable_run(tmp_path / "logs", backup(tmp_path / "backup"), interruption)
    resumed = resumable_run(tmp_path / "logs", backup(tmp_path / "backup"))

    assert resumed.get_layer("scheduled").step == 20  # 5 epochs of 4 steps
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == 20
    for got, expected in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    reference_scalars = read_scalars(tmp_path / "ref_logs")
    tensors = read_tensors(tmp_path / "logs")
    # Every step logged once, or twice (before the interruption and after
    # the restore) with the same value.
    tags = ("rates/dropout_per_batch/scheduled", "rates/dropout/scheduled")
    for tag in (*tags, "rates/learning_rate", "rates/momentum"):
        for step, value in tensors[tag]:
            assert float(value) == pytest.approx(reference_scalars[tag][step]), tag
        assert {step for step, _ in tensors[tag]} == set(reference_scalars[tag])
    assert sorted(reference_scalars["rates/dropout_per_batch/scheduled"]) == list(
        range(20)
    )
    assert sorted(reference_scalars["rates/learning_rate"]) == list(range(5))
    steps = [step for step, _ in tensors["rates/dropout_per_batch/scheduled"]]
    assert sorted(steps) == sorted(list(range(20)) + logged_twice)
    epochs = [step for step, _ in tensors["rates/dropout/scheduled"]]
    assert sorted(epochs) == list(range(5))  # both stop before an epoch's end


def linear_sgd_model():
    """A seeded Dense(1) regression of X, compiled with kdrop's SGD."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(kdrop.optimizers.SGD(0.05), "mse")
    return model


def test_a_run_stopped_between_an_epochs_last_backup_and_its_end(tmp_path):
    # Backups after each epoch's last batch; the run stops in epoch 2's
    # end hooks, before the scheduler wrote that epoch's values. The rerun
    # skips all of epoch 2 and still writes them, from its last step.
    def run(log_dir, interruption=()):
        model = linear_sgd_model()
        model.fit(
            X,
            Y,
            batch_size=16,
            epochs=4,
            shuffle=False,
            verbose=0,
            callbacks=[
                callbacks.BackupAndRestore(log_dir / "backup", save_freq=4),
                *interruption,
                callbacks.LRMomentumScheduler(
                    learning_rate=lambda step: 0.1 * 0.9**step,
                    update_freq="batch",
                    log_dir=log_dir,
                ),
            ],
        )
        return model

    reference = run(tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", [RaiseAtEpoch(KeyboardInterrupt, 2, at_end=True)])
    resumed = run(tmp_path / "resumed")

    for got, expected in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, expected)
    per_epoch = read_scalars(tmp_path / "resumed")["rates/learning_rate"]
    assert per_epoch == pytest.approx(
        read_scalars(tmp_path / "reference")["rates/learning_rate"]
    )
    # Epoch e ends on step 4e + 3.
    assert per_epoch == pytest.approx({e: 0.1 * 0.9 ** (4 * e + 3) for e in range(4)})


def test_a_run_stopped_while_skipping_restored_batches_leaves_a_trainable_model(
    tmp_path,
):
    model = linear_sgd_model()

    def fit(*extra):
        model.fit(
            X,
            Y,
            batch_size=16,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=[
                callbacks.BackupAndRestore(tmp_path / "backup", save_freq=3),
                *extra,
            ],
        )

    # Stopped by another callback's batch-end hook, after the backup of
    # the first 3 steps; the rerun, restored, is stopped by it again while
    # skipping the first of them: Keras then calls no epoch or train end.
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            fit(RaiseAtStep(KeyboardInterrupt, 3, at_end=True))
    before = model.get_weights()
    model.fit(X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    # A later fit trains: 4 more steps, and the weights move.
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 3 + 4
    assert not np.allclose(model.get_weights()[0], before[0])


class RecordRestoredEpoch(keras.callbacks.Callback):
    """Records, at each epoch begin, the restore the model holds."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        restored = getattr(self.model, backup_and_restore.RESTORED_EPOCH)
        self.seen.append((epoch, restored))


def test_a_restore_is_held_by_the_model_during_its_epoch_only(tmp_path):
    model = linear_sgd_model()
    backup = tmp_path / "backup"
    fit = dict(x=X, y=Y, batch_size=16, shuffle=False, verbose=0)
    # 4 batches an epoch; backups after steps 3 and 6 (epoch 1, batch 1),
    # stopped before step 7: the rerun skips 2 batches of epoch 1.
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            **fit,
            epochs=3,
            callbacks=[
                callbacks.BackupAndRestore(backup, save_freq=3),
                RaiseAtStep(KeyboardInterrupt, 7),
            ],
        )
    record = RecordRestoredEpoch()
    model.fit(
        **fit,
        epochs=3,
        callbacks=[callbacks.BackupAndRestore(backup, save_freq=3), record],
    )
    restored = backup_and_restore.RestoredEpoch(epoch=1, batches=2)
    assert record.seen == [(1, restored), (2, None)]
    assert backup_and_restore.restored_batches(model, 1) == 0  # cleared
    assert getattr(model, backup_and_restore.RESTORED_EPOCH) is None


def test_checkpoint_written_before_an_interruption_loads_and_continues(tmp_path):
    path = tmp_path / "checkpoint.keras"
    model = all_dropout_model()
    model.compile("sgd", "mse")
    with pytest.raises(RuntimeError):
        model.fit(
            X,
            Y,
            batch_size=16,
            epochs=3,
            verbose=0,
            callbacks=[
                keras.callbacks.ModelCheckpoint(path),
                RaiseAtEpoch(RuntimeError("interrupted"), 2),
            ],
        )
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("scheduled").step == 8  # two complete epochs
    loaded.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    assert loaded.get_layer("scheduled").step == 12


DETERMINISTIC_RUN = """
import sys, keras, tensorflow as tf
from kdrop.experiments import cnn_dropout
keras.utils.set_random_seed(0)
tf.config.experimental.enable_op_determinism()
cnn_dropout.run(
    ["scheduled"], epochs=1, seeds=1, out=sys.argv[1], train_size=256, verbose=0
)
"""


@pytest.mark.tensorflow_only
def test_two_runs_of_the_cnn_script_are_identical(tmp_path):
    runs = []
    for name in ("first", "second"):  # separate processes, as two real runs
        out = tmp_path / name
        subprocess.run(
            [sys.executable, "-c", DETERMINISTIC_RUN, str(out)],
            check=True,
            capture_output=True,
            timeout=300,
            cwd=ROOT,
        )
        runs.append(read_scalars(out / "scheduled" / "seed_0"))
    first, second = runs
    assert set(first) == set(second)
    compared = [
        tag
        for tag in first
        if tag.startswith(
            (
                "statistics/weight_norm/",
                "statistics/gradient_norm/",
                "statistics/sparsity/",
                "statistics/dropped_fraction/",
                "epoch_loss",
                "rates/dropout/",
            )
        )
    ]
    assert len(compared) > 10
    for tag in compared:
        assert first[tag] == second[tag], tag


def test_unloadable_keras_files_give_clear_errors(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            kdrop.ScheduledDropout(schedules.Constant(0.2), name="scheduled"),
        ]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    # A file written by a version whose schedule class this one lacks.
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(contents["config.json"])
    layer_config = config["config"]["layers"][1]["config"]
    layer_config["schedule"]["class_name"] = "FutureSchedule"
    layer_config["schedule"]["registered_name"] = "kdrop>FutureSchedule"
    contents["config.json"] = json.dumps(config).encode()
    future = tmp_path / "future.keras"
    with zipfile.ZipFile(future, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    with pytest.raises(Exception, match="FutureSchedule") as info:
        keras.saving.load_model(future)
    assert "register_keras_serializable" in str(info.value)

"""A small training run with every kdrop callback, for tests that end or
starve it from outside (SIGKILL, a file-size limit).

Run as a subprocess by tests/test_multiprocess_resume.py:

    python tests/killable_training.py OUT [--pause-at-step K]
        [--file-size-limit BYTES]

Events go to OUT/logs, backups to OUT/backup (kdrop's BackupAndRestore,
every 2 batches), an end-of-epoch checkpoint to OUT/checkpoint.weights.h5;
at the end the weights, the optimizer's iterations and the schedule's step
go to OUT/final.npz and one JSON line to stdout (the RuntimeWarnings seen).
With --pause-at-step K the run prints "paused K" before training step K
and waits there to be killed. With --file-size-limit no file this process
writes may grow beyond BYTES (RLIMIT_FSIZE, SIGXFSZ ignored so that a write
fails with EFBIG instead of killing the process).
"""

import argparse
import json
import os
import resource
import signal
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import kdrop
from kdrop import callbacks

EPOCHS, BATCH_SIZE, SAVE_FREQ = 5, 16, 2
RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 8)).astype("float32")
Y = (X[:, 0] > 0).astype("int32") + (X[:, 1] > 0).astype("int32")  # 3 classes
STEPS_PER_EPOCH = len(X) // BATCH_SIZE


class PauseAtStep(keras.callbacks.Callback):
    """Stops before training step `step` (after the other callbacks' batch
    hooks, so their writes for that step are on disk) until killed."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_begin(self, batch, logs=None):
        if (
            int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            == self.step
        ):
            print(f"paused {self.step}", flush=True)
            time.sleep(600)


def build_model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            kdrop.ScheduledDropout(
                kdrop.schedules.Linear(0.1, 0.6, EPOCHS * STEPS_PER_EPOCH),
                seed=3,
                name="scheduled",
            ),
            kdrop.WeightScaledDropout(0.3, seed=4, name="weight_scaled"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    model.compile(kdrop.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    return model


def train(out, pause_at_step=None):
    log_dir = os.path.join(out, "logs")
    model = build_model()
    extra = [] if pause_at_step is None else [PauseAtStep(pause_at_step)]
    model.fit(
        X,
        Y,
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        shuffle=False,  # the data order of an epoch must not depend on the run
        verbose=0,
        callbacks=[
            callbacks.BackupAndRestore(os.path.join(out, "backup"), SAVE_FREQ),
            keras.callbacks.ModelCheckpoint(
                os.path.join(out, "checkpoint.weights.h5"), save_weights_only=True
            ),
            callbacks.LRMomentumScheduler(
                learning_rate=lambda step: 0.1 * 0.9**step,
                momentum=lambda step: min(0.9, 0.05 * step),
                update_freq="batch",
                log_dir=log_dir,
            ),
            callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
            # Every histogram, so that the event files outgrow the
            # file-size limit of the full-disk test long before the weights.
            callbacks.ActivationSparsity(log_dir, data=X[:16], histograms="all"),
            callbacks.WeightHistograms(log_dir, data=(X[:16], Y[:16]), variables="all"),
            callbacks.MCDropoutMonitor(
                log_dir,
                data=(X, Y),
                samples=8,
                every_n_epochs=1,
                reliability_diagram=False,
            ),
        ]
        + extra,
    )
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--pause-at-step", type=int)
    parser.add_argument("--file-size-limit", type=int)
    args = parser.parse_args()
    if args.file_size_limit is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = (args.file_size_limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1])
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        model = train(args.out, args.pause_at_step)
    np.savez(
        os.path.join(args.out, "final.npz"),
        *model.get_weights(),
        iterations=keras.ops.convert_to_numpy(model.optimizer.iterations),
        scheduled_step=model.get_layer("scheduled").step,
    )
    runtime_warnings = [
        str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)
    ]
    print(json.dumps({"runtime_warnings": runtime_warnings}))


if __name__ == "__main__":
    sys.exit(main())

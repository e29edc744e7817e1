"""Soak: memory and event-file growth over a long run with every callback.

Fits a tiny model (Dense 16 relu, ScheduledDropout Linear(0, 0.5) over the
run, InvertedDropout 0.2, Dense 1; kdrop.optimizers.SGD, batch 8) for
`--steps` steps (100 per epoch) with all of kdrop's logging callbacks:
DropoutRateLogger and LRMomentumScheduler at `update_freq="batch"`,
ActivationSparsity and WeightHistograms (gradients on) every epoch on a
32-example probe, into `<log_dir>/kdrop`; and keras.callbacks.TensorBoard
(`update_freq="batch"`, `histogram_freq=1`) into `<log_dir>/keras`, unless
`--without-keras-tensorboard`.

Every `--every` steps (before the step) it samples the process's resident
memory (`/proc/self/statm`) and the bytes of each directory's event files.
Reported: RSS after `--warmup` steps and its least-squares slope per 1000
steps from there on; event bytes per 1000 steps (same fit) per directory;
and, from the files read back after the run, the number of logged values
(summary values in all records) and the bytes per value.

    python benchmarks/soak_callbacks.py [--steps 20000 --every 1000 --warmup 2000]
        [--without-keras-tensorboard]
"""

import argparse
import os
import tempfile
import time

import keras
import numpy as np
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

import kdrop

STEPS_PER_EPOCH = 100
BATCH_SIZE = 8


def resident_bytes():
    """Resident set size of this process, from /proc/self/statm (Linux)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def event_files(directory):
    """Paths of the TensorBoard event files anywhere under `directory`."""
    return sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(directory)
        for name in names
        if "tfevents" in name
    )


def event_bytes(directory):
    """Total size in bytes of the event files under `directory`."""
    return sum(os.path.getsize(path) for path in event_files(directory))


def count_values(directory):
    """Number of logged values (summary values of every record) in the
    event files under `directory`."""
    return sum(
        len(event.summary.value)
        for path in event_files(directory)
        for event in EventFileLoader(path).Load()
    )


def per_1000_steps(steps, values):
    """Slope of the least-squares line through (steps, values), per 1000
    steps."""
    slope, _ = np.polyfit(np.asarray(steps, float), np.asarray(values, float), 1)
    return 1000 * slope


class Sampler(keras.callbacks.Callback):
    """Records (step, RSS, event bytes per directory) every `every` steps,
    before the step runs, and once more at the end."""

    def __init__(self, every, directories):
        super().__init__()
        self.every = every
        self.directories = directories
        self.step = 0
        self.samples = []

    def _sample(self):
        sizes = [event_bytes(directory) for directory in self.directories]
        self.samples.append((self.step, resident_bytes(), *sizes))

    def on_train_batch_begin(self, batch, logs=None):
        if self.step % self.every == 0:
            self._sample()
        self.step += 1

    def on_train_end(self, logs=None):
        self._sample()


def soak_model(steps):
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            kdrop.ScheduledDropout(
                kdrop.schedules.Linear(0.0, 0.5, steps), name="scheduled", seed=1
            ),
            kdrop.InvertedDropout(0.2, name="inverted", seed=2),
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.compile(kdrop.optimizers.SGD(0.01, momentum=0.5), "mse")
    return model


def main(steps, every, warmup, log_dir, keras_tensorboard=True):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS_PER_EPOCH * BATCH_SIZE, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1))).astype("float32")
    kdrop_dir, keras_dir = (os.path.join(log_dir, name) for name in ("kdrop", "keras"))
    directories = {"kdrop": kdrop_dir}
    if keras_tensorboard:
        directories["keras TensorBoard"] = keras_dir
    sampler = Sampler(every, list(directories.values()))
    callbacks = [
        kdrop.callbacks.DropoutRateLogger(kdrop_dir, update_freq="batch"),
        kdrop.callbacks.LRMomentumScheduler(
            learning_rate=lambda t: 0.01 / (1 + t / 5000),
            momentum=lambda t: min(0.9, 0.5 + 0.4 * t / steps),
            update_freq="batch",
            log_dir=kdrop_dir,
        ),
        kdrop.callbacks.ActivationSparsity(kdrop_dir, data=x[:32]),
        kdrop.callbacks.WeightHistograms(kdrop_dir, data=(x[:32], y[:32])),
        sampler,
    ]
    if keras_tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(
                keras_dir, update_freq="batch", histogram_freq=1
            )
        )
    model = soak_model(steps)
    start = time.perf_counter()
    model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=steps // STEPS_PER_EPOCH,
        verbose=0,
        callbacks=callbacks,
    )
    print(f"{steps} steps in {time.perf_counter() - start:.0f} s")
    print("step   RSS MiB  event bytes: " + ", ".join(directories))
    for step, rss, *sizes in sampler.samples:
        print(f"{step:5d}  {rss / 2**20:7.1f}  " + ", ".join(map(str, sizes)))

    after = [sample for sample in sampler.samples if sample[0] >= warmup]
    steps_after = [sample[0] for sample in after]
    rss_after = [sample[1] for sample in after]
    print(
        f"RSS at step {after[0][0]}: {after[0][1] / 2**20:.1f} MiB; slope after it: "
        f"{per_1000_steps(steps_after, rss_after) / 2**10:+.1f} KiB per 1000 steps"
    )
    for column, (name, directory) in enumerate(directories.items(), start=2):
        sizes = [sample[column] for sample in after]
        values = count_values(directory)
        total = event_bytes(directory)
        print(
            f"{name}: {per_1000_steps(steps_after, sizes):.0f} event bytes per "
            f"1000 steps; {total} bytes, {values} values, "
            f"{total / values:.1f} bytes per value"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--log-dir", default=None, help="default: a temporary one")
    parser.add_argument("--without-keras-tensorboard", action="store_true")
    args = parser.parse_args()
    options = (args.steps, args.every, args.warmup)
    keras_tensorboard = not args.without_keras_tensorboard
    if args.log_dir is None:
        with tempfile.TemporaryDirectory() as log_dir:
            main(*options, log_dir, keras_tensorboard)
    else:
        main(*options, args.log_dir, keras_tensorboard)

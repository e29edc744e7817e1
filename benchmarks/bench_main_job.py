"""Per-epoch cost of the main job's CNN: kdrop's dropout vs Keras's Dropout.

Fits the Simple MNIST convnet (`kdrop.experiments.models`, Adam, batch
128) on 4000 training images (32 steps per epoch, no validation, no
callback) once per contender: no dropout, `keras.layers.Dropout(0.5)`,
`kdrop.InvertedDropout(0.5)`, `kdrop.WeightScaledDropout(0.5)` and
`kdrop.ScheduledDropout(Curriculum(0.5, gamma))`. Each model is fitted one
epoch first (tracing and compiling are left out), then every round fits
each contender for `--epochs` epochs, the order rotating from round to
round. On TensorFlow it runs twice, with `jit_compile=False` (graph) and
`jit_compile=True` (XLA); other backends compile as Keras does by default.

Reported per contender: the median over rounds of the process CPU time per
epoch (all threads; steadier than wall time on a shared machine) and of
the wall time per epoch, and the CPU-time ratio to Keras's Dropout paired
within each round (the median of the per-round ratios).

    python benchmarks/bench_main_job.py [--rounds 5] [--epochs 2]
    KERAS_BACKEND=jax python benchmarks/bench_main_job.py
"""

import argparse
import statistics
import time

import keras
import numpy as np

import kdrop
from kdrop.experiments import models

TRAIN_SIZE = 4000
BATCH_SIZE = 128
EPOCHS_OF_SCHEDULE = 25  # the schedule is sized to the main job's 25 epochs


def contenders():
    """{name: a function returning the dropout layer, or None}."""
    total_steps = EPOCHS_OF_SCHEDULE * (TRAIN_SIZE // BATCH_SIZE)
    return {
        "none": lambda: None,
        "keras Dropout": lambda: keras.layers.Dropout(0.5, seed=0, name="dropout"),
        "kdrop InvertedDropout": lambda: kdrop.InvertedDropout(
            0.5, seed=0, name="dropout"
        ),
        "kdrop WeightScaledDropout": lambda: kdrop.WeightScaledDropout(
            0.5, seed=0, name="dropout"
        ),
        "kdrop ScheduledDropout": lambda: kdrop.ScheduledDropout(
            models.curriculum_to_half(total_steps), seed=0, name="dropout"
        ),
    }


def load_images():
    (x, y), _ = kdrop.datasets.load_mnist("full", seed=0, train_size=TRAIN_SIZE)
    return np.asarray(x), np.asarray(y)


def build(layer, jit_compile):
    model = models.simple_mnist_convnet(layer)
    if jit_compile is not None:
        model.compile(
            optimizer="adam",
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=jit_compile,
        )
    return model


def timed_fit(model, x, y, epochs):
    cpu, wall = time.process_time(), time.perf_counter()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, verbose=0, shuffle=False)
    return (time.process_time() - cpu) / epochs, (time.perf_counter() - wall) / epochs


def bench(x, y, rounds, epochs, jit_compile):
    fitted = {}
    for name, layer in contenders().items():
        keras.utils.set_random_seed(0)
        fitted[name] = build(layer(), jit_compile)
        timed_fit(fitted[name], x, y, 1)  # trace and compile
    names = list(fitted)
    times = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(timed_fit(fitted[name], x, y, epochs))
    reference = [cpu for cpu, _ in times["keras Dropout"]]
    rows = []
    for name in names:
        cpu = [c for c, _ in times[name]]
        wall = [w for _, w in times[name]]
        ratio = statistics.median(c / r for c, r in zip(cpu, reference))
        rows.append((name, statistics.median(cpu), statistics.median(wall), ratio))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    options = parser.parse_args()
    x, y = load_images()
    backend = keras.backend.backend()
    modes = {"graph": False, "XLA": True} if backend == "tensorflow" else {"": None}
    print(f"backend {backend}, {len(x)} images, batch {BATCH_SIZE}")
    print(
        "| backend | contender | CPU s / epoch | wall s / epoch "
        "| CPU vs keras Dropout |"
    )
    print("|---|---|---|---|---|")
    for mode, jit_compile in modes.items():
        label = f"{backend} {mode}".strip()
        for name, cpu, wall, ratio in bench(
            x, y, options.rounds, options.epochs, jit_compile
        ):
            print(f"| {label} | {name} | {cpu:.3f} | {wall:.3f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()

"""Training-step time of the MNIST CNN with each dropout layer.

The Simple MNIST convnet (Conv2D 32 - MaxPool - Conv2D 64 - MaxPool -
Flatten - <dropout> - Dense 10 softmax; Adam, batch 128) on the offline MNIST
training set, on the backend KERAS_BACKEND names (TensorFlow by default;
JAX's train step is jitted, torch's eager), with ScheduledDropout (a Linear ramp
0.1 -> 0.5 over the whole benchmark, so its rate changes at every step),
kdrop's InvertedDropout(0.5) and keras.layers.Dropout(0.5).

After a warm-up epoch, each round fits one short epoch per contender,
alternating (who goes first rotates). Each step is timed from
on_train_batch_begin to on_train_batch_end (Keras hands that hook the
step's logs as Python numbers, so an asynchronous JAX step is over by then)
by two clocks: wall time, and the
process's CPU time (all threads), which waiting for a busy shared CPU does
not inflate. The table gives the median per-step time over all rounds, its
ratio to Keras's Dropout, the quartiles of that ratio taken round by round
(the spread noise gives), and (TensorFlow) how many times the tf.functions
behind `model.train_function` were traced during the timed epochs.

    python benchmarks/bench_scheduled_dropout.py [--rounds 20] [--steps 10]
        [--threads N] [--jit-compile]

`--threads` and `--jit-compile` apply to TensorFlow.
"""

import argparse
import inspect
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
from contenders import RATE

import kdrop
from kdrop.experiments.models import simple_mnist_convnet

BATCH = 128
TENSORFLOW = keras.backend.backend() == "tensorflow"


class StepTimer(keras.callbacks.Callback):
    """Time of each training step by `clock`, one list per epoch."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append([])

    def on_train_batch_begin(self, batch, logs=None):
        self._start = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1].append(self.clock() - self._start)

    def median_ms(self):
        return statistics.median(t for epoch in self.epochs for t in epoch) * 1e3

    def epoch_medians_ms(self):
        return [statistics.median(epoch) * 1e3 for epoch in self.epochs]


def tracing_count(model):
    """Traces so far of the tf.functions that `model.train_function` wraps
    (None off TensorFlow)."""
    if keras.backend.backend() != "tensorflow":
        return None
    nonlocals = inspect.getclosurevars(model.train_function).nonlocals.values()
    functions = [getattr(f, "__wrapped__", f) for f in nonlocals]
    return sum(
        f.experimental_get_tracing_count()
        for f in functions
        if hasattr(f, "experimental_get_tracing_count")
    )


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--steps", type=int, default=10, help="steps per epoch (full batches)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TensorFlow intra- and inter-op threads (0: TensorFlow's default)",
    )
    parser.add_argument("--jit-compile", action="store_true")
    return parser.parse_args()


def warmed_up_models(layers, x, y, jit_compile):
    """One compiled CNN per dropout layer, each trained for one epoch."""
    models = {name: simple_mnist_convnet(layer) for name, layer in layers.items()}
    for model in models.values():
        model.compile(
            optimizer="adam",
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            # "auto" elsewhere: jitted on JAX, eager on torch.
            jit_compile=jit_compile if TENSORFLOW else "auto",
        )
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    return models


def timed_rounds(models, x, y, rounds):
    """Per-step timers by model name and clock, after `rounds` alternating epochs."""
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    timers = {
        name: {c: StepTimer(clock) for c, clock in clocks.items()} for name in models
    }
    names = list(models)
    for round_index in range(rounds):
        # Rotate who goes first, so no layer always follows the same one.
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            models[name].fit(
                x,
                y,
                batch_size=BATCH,
                epochs=1,
                verbose=0,
                callbacks=list(timers[name].values()),
            )
    return timers


def print_table(timers, retraces):
    print(
        "\n| dropout layer | clock | median ms/step | ratio to keras Dropout "
        "| per-round "
        "ratio, quartiles | retraces in timed epochs |"
    )
    print("|---|---|---|---|---|---|")
    for name, by_clock in timers.items():
        for clock, timer in by_clock.items():
            keras_timer = timers["keras Dropout"][clock]
            ratio = timer.median_ms() / keras_timer.median_ms()
            per_round = [
                a / b
                for a, b in zip(
                    timer.epoch_medians_ms(), keras_timer.epoch_medians_ms()
                )
            ]
            low, _, high = statistics.quantiles(per_round, n=4)
            print(
                f"| {name} | {clock} | {timer.median_ms():.1f} | {ratio:.3f} | "
                f"{low:.2f} - {high:.2f} | {retraces[name]} |"
            )


def main():
    args = parse_args()
    if not TENSORFLOW and (args.threads or args.jit_compile):
        raise SystemExit("--threads and --jit-compile apply to TensorFlow only")
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    (x, y), _ = kdrop.datasets.load_mnist()
    x, y = x[: args.steps * BATCH], y[: args.steps * BATCH]  # no partial batch
    scheduled = kdrop.ScheduledDropout(
        kdrop.schedules.Linear(0.1, RATE, steps=(args.rounds + 1) * args.steps), seed=1
    )
    layers = {
        "kdrop ScheduledDropout": scheduled,
        "kdrop InvertedDropout": kdrop.InvertedDropout(RATE, seed=1),
        "keras Dropout": keras.layers.Dropout(RATE, seed=1),
    }
    models = warmed_up_models(layers, x, y, args.jit_compile)
    traces = {name: tracing_count(model) for name, model in models.items()}
    if TENSORFLOW and not all(traces.values()):
        raise RuntimeError(
            f"no traces counted after warm-up ({traces}): has Keras's "
            "train_function changed shape?"
        )
    rate_before = scheduled.current_rate
    timers = timed_rounds(models, x, y, args.rounds)
    retraces = {
        name: tracing_count(model) - traces[name] if TENSORFLOW else "n/a"
        for name, model in models.items()
    }
    jit_compile = args.jit_compile if TENSORFLOW else "auto"
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{os.cpu_count()} CPUs, threads={args.threads or 'default'}, "
        f"jit_compile={jit_compile}, batch {BATCH}, {args.steps} steps/epoch, "
        f"{args.rounds} timed epochs per layer"
    )
    print_table(timers, retraces)
    print(
        f"\nScheduledDropout: step {scheduled.step}, rate {rate_before:.4f} "
        f"before the timed epochs and {scheduled.current_rate:.4f} after "
        f"({args.rounds * args.steps} steps, "
        "a different rate at each)."
    )


if __name__ == "__main__":
    main()

"""Cost of kdrop's TensorBoard callbacks on the MNIST CNN's fit.

Fits the Simple MNIST convnet (kdrop InvertedDropout 0.5, Adam, batch 128)
on the offline MNIST training set (4000 images, 32 steps per epoch) with:
no callback; all kdrop callbacks at their defaults (ActivationSparsity and
WeightHistograms on a `--probe`-image batch, DropoutRateLogger,
LRMomentumScheduler with a constant learning-rate schedule); and
keras.callbacks.TensorBoard(histogram_freq=1). The three alternate, one fit
of `--epochs` epochs each per round, the first configuration rotating. Each
configuration's model and callbacks are warmed up by one fit first, so
tracing the probe and gradient functions (a one-time cost per run, printed
separately) is left out, as is tracing the train step.

Reported: wall-clock and CPU seconds per epoch (median over rounds, and
the wall-clock minimum) and the overhead against no callback, plus the
time spent inside kdrop's callback hooks, measured in the same fits. On a
shared, noisy machine the CPU time (all threads of this process) and the
hook time are the steadier figures.

    python benchmarks/bench_callbacks.py [--rounds 5] [--epochs 2] [--probe 128]
"""

import argparse
import statistics
import tempfile
import time

import keras

import kdrop
from kdrop.experiments.models import simple_mnist_convnet

HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_begin",
    "on_epoch_end",
    "on_train_end",
)


class HookClock:
    """Adds up the wall time spent in the given callbacks' hooks."""

    def __init__(self, callbacks):
        self.seconds = 0.0
        for callback in callbacks:
            for hook in HOOKS:
                setattr(callback, hook, self._timed(getattr(callback, hook)))

    def _timed(self, hook):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return hook(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--probe", type=int, default=128, help="probe batch size")
    args = parser.parse_args()
    (x, y), (x_test, y_test) = kdrop.datasets.load_mnist()
    log_root = tempfile.mkdtemp()
    probe = (x_test[: args.probe], y_test[: args.probe])

    kdrop_callbacks = [
        kdrop.callbacks.ActivationSparsity(f"{log_root}/kdrop", data=probe),
        kdrop.callbacks.WeightHistograms(f"{log_root}/kdrop", data=probe),
        kdrop.callbacks.DropoutRateLogger(f"{log_root}/kdrop"),
        kdrop.callbacks.LRMomentumScheduler(
            lambda epoch: 1e-3, log_dir=f"{log_root}/kdrop"
        ),
    ]
    clock = HookClock(kdrop_callbacks)
    configurations = {
        "no callbacks": [],
        "all kdrop callbacks": kdrop_callbacks,
        "keras TensorBoard(histogram_freq=1)": [
            keras.callbacks.TensorBoard(f"{log_root}/keras", histogram_freq=1)
        ],
    }
    models = {
        name: simple_mnist_convnet(kdrop.InvertedDropout(0.5))
        for name in configurations
    }
    for name, model in models.items():  # trace train step, probes and gradients
        model.fit(
            x, y, batch_size=128, epochs=1, verbose=0, callbacks=configurations[name]
        )
    print(
        "one-time cost of kdrop's hooks in the warm-up fit (tracing): "
        f"{clock.seconds:.2f} s"
    )

    names = list(configurations)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    clock.seconds = 0.0
    for round_index in range(args.rounds):
        for name in names[round_index % 3 :] + names[: round_index % 3]:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            models[name].fit(
                x,
                y,
                batch_size=128,
                epochs=args.epochs,
                verbose=0,
                callbacks=configurations[name],
            )
            wall[name].append((time.perf_counter() - start_wall) / args.epochs)
            cpu[name].append((time.process_time() - start_cpu) / args.epochs)

    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{len(x)} images, "
        f"probe {args.probe} images, {args.rounds} rounds of {args.epochs} epochs"
    )
    print(
        "\n| configuration | wall s/epoch, median (overhead) "
        "| wall s/epoch, min (overhead) "
        "| CPU s/epoch, median (overhead) |"
    )
    print("|---|---|---|---|")
    for name in names:
        cells = []
        for times, statistic in (
            (wall, statistics.median),
            (wall, min),
            (cpu, statistics.median),
        ):
            seconds, base = statistic(times[name]), statistic(times["no callbacks"])
            cells.append(f"{seconds:.3f} ({100 * (seconds / base - 1):+.1f} %)")
        print(f"| {name} | " + " | ".join(cells) + " |")
    hook_seconds = clock.seconds / (args.rounds * args.epochs)
    base = statistics.median(wall["no callbacks"])
    print(
        f"\ntime inside kdrop's hooks: {1000 * hook_seconds:.1f} ms per epoch "
        f"= {100 * hook_seconds / base:.1f} % of a median epoch without callbacks"
    )


if __name__ == "__main__":
    main()

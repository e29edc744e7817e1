"""Cost of kdrop's logging callbacks on the main job's CNN fit.

The main job's run (`kdrop.experiments.cnn_dropout`, one seed of the
"inverted" variant): the Simple MNIST convnet with kdrop InvertedDropout
0.5, Adam, batch 128, on 4000 images of the full MNIST (32 steps per
epoch), the first 1000 test images as validation data after every epoch,
and the callbacks of `kdrop.experiments.training.logging_callbacks` on the
experiments' probe (the first `--probe` test images, default
`training.PROBE_SIZE`, 128; WeightHistograms' gradient and
ActivationSparsity's statistics on its first `batch_size` images, one
training batch). Configurations:

- no callbacks;
- kdrop's logging callbacks: ActivationSparsity, WeightHistograms,
  DropoutRateLogger(update_freq="batch"), GeneralizationGap;
- keras.callbacks.TensorBoard(histogram_freq=1);
- the whole of `logging_callbacks` (Keras's TensorBoard, at its defaults,
  and kdrop's), as the main job runs it.

They alternate, one fit of `--epochs` epochs each per round, the first
configuration rotating. Each configuration's model and callbacks are warmed
up by one fit first, so tracing the train step, the probe and the gradient
(a one-time cost per run, printed separately) is left out.

Reported per configuration: CPU seconds per epoch (all threads of this
process; median over rounds), the median over rounds of its PAIRED ratio to
the no-callback fit of the same round (steadier than a ratio of medians on
a shared machine), and the wall-clock median; then the CPU time spent
inside each callback's hooks per epoch (kdrop's, and Keras's TensorBoard
with histograms), measured in the same fits.

    python benchmarks/bench_callbacks.py [--rounds 5] [--epochs 2] [--probe 256]
"""

import argparse
import collections
import statistics
import tempfile
import time

import keras

import kdrop
from kdrop.experiments import cnn_dropout, training
from kdrop.experiments.models import simple_mnist_convnet

HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_test_end",
    "on_epoch_end",
    "on_train_end",
)


class HookClock:
    """Adds up the CPU time spent in each callback's hooks, by its class.

    Hooks a callback leaves at Keras's default are not wrapped: Keras skips
    the per-batch calls of callbacks that do not implement them, and
    wrapping would change that.
    """

    def __init__(self, callbacks):
        self.seconds = collections.defaultdict(float)
        for callback in callbacks:
            for hook in HOOKS:
                method = getattr(callback, hook)
                if not getattr(method, "_is_default", False):
                    setattr(
                        callback,
                        hook,
                        self._timed(method, type(callback).__name__),
                    )

    def _timed(self, hook, name):
        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return hook(*args, **kwargs)
            finally:
                self.seconds[name] += time.process_time() - start

        return timed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--probe", type=int, default=training.PROBE_SIZE, help="probe batch size"
    )
    args = parser.parse_args()
    settings = cnn_dropout.SETTINGS
    (x, y), (x_test, y_test) = kdrop.datasets.load_mnist(
        settings.dataset, seed=0, train_size=settings.train_size
    )
    validation = (
        x_test[: settings.curve_test_size],
        y_test[: settings.curve_test_size],
    )
    x_probe, y_probe = x_test[: args.probe], y_test[: args.probe]
    log_root = tempfile.mkdtemp()

    def kdrop_only(callbacks):
        return [c for c in callbacks if not isinstance(c, keras.callbacks.TensorBoard)]

    kdrop_callbacks = kdrop_only(
        training.logging_callbacks(
            f"{log_root}/kdrop", x_probe, y_probe, batch_size=settings.batch_size
        )
    )
    main_job = training.logging_callbacks(
        f"{log_root}/main", x_probe, y_probe, batch_size=settings.batch_size
    )
    keras_tensorboard = keras.callbacks.TensorBoard(
        f"{log_root}/keras", histogram_freq=1
    )
    clock = HookClock(kdrop_callbacks + [keras_tensorboard])
    configurations = {
        "no callbacks": [],
        "kdrop's logging callbacks": kdrop_callbacks,
        "keras TensorBoard(histogram_freq=1)": [keras_tensorboard],
        "logging_callbacks (Keras's TensorBoard + kdrop's)": main_job,
    }
    fit_options = dict(
        batch_size=settings.batch_size, verbose=0, validation_data=validation
    )
    models = {
        name: simple_mnist_convnet(kdrop.InvertedDropout(0.5, seed=0, name="dropout"))
        for name in configurations
    }
    for name, model in models.items():  # trace train step, probes and gradients
        model.fit(x, y, epochs=1, callbacks=configurations[name], **fit_options)
    print(
        "one-time CPU cost of the timed hooks (kdrop's callbacks and Keras's "
        "TensorBoard) in the warm-up fit (tracing): "
        f"{sum(clock.seconds.values()):.2f} s"
    )

    names = list(configurations)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    clock.seconds.clear()
    for round_index in range(args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            models[name].fit(
                x,
                y,
                epochs=args.epochs,
                callbacks=configurations[name],
                **fit_options,
            )
            wall[name].append((time.perf_counter() - start_wall) / args.epochs)
            cpu[name].append((time.process_time() - start_cpu) / args.epochs)

    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{len(x)} training images, {len(validation[0])} validation images, "
        f"probe {args.probe} images, {args.rounds} rounds of {args.epochs} epochs"
    )
    print(
        "\n| configuration | CPU s/epoch, median | paired CPU ratio to no "
        "callbacks, median (min - max) | wall s/epoch, median |"
    )
    print("|---|---|---|---|")
    for name in names:
        ratios = [c / base for c, base in zip(cpu[name], cpu["no callbacks"])]
        print(
            f"| {name} | {statistics.median(cpu[name]):.3f} | "
            f"{statistics.median(ratios):.3f} ({min(ratios):.3f} - "
            f"{max(ratios):.3f}) | {statistics.median(wall[name]):.3f} |"
        )
    epochs = args.rounds * args.epochs
    base = statistics.median(cpu["no callbacks"])
    print("\n| callback | CPU ms/epoch in its hooks | % of an epoch without |")
    print("|---|---|---|")
    for name, seconds in clock.seconds.items():
        print(
            f"| {name} | {1000 * seconds / epochs:.1f} | "
            f"{100 * seconds / epochs / base:.1f} % |"
        )
    kdrop_names = {type(callback).__name__ for callback in kdrop_callbacks}
    total = (
        sum(seconds for name, seconds in clock.seconds.items() if name in kdrop_names)
        / epochs
    )
    print(f"| kdrop's, all | {1000 * total:.1f} | {100 * total / base:.1f} % |")


if __name__ == "__main__":
    main()

"""Memory of mc_predict with many samples, and the cost of MCDropoutMonitor.

`--memory`: peak resident memory of `kdrop.mc_predict` on the Simple MNIST
convnet (`Dropout(0.5)` before its classifier), for `samples` passes over
`examples` images, each configuration in a fresh subprocess. The peak RSS
(`ru_maxrss`) is read before the call (after building the model, the input
array and one warm-up call on 10 images) and after it; their difference is
what the call added.

`--monitor`: seconds per epoch of fitting that CNN on the main job's data
(`kdrop.experiments.cnn_dropout`'s defaults: 4000 full-MNIST training
images, batch 128, Adam; 1000 test images held out) without a callback,
with `MCDropoutMonitor` at its defaults, and with the monitor logging every
epoch with 30 samples (its defaults before), alternating (the order
reversed every other round), after one warm-up fit each; the CPU-time
ratio to "no callback" paired within each round, and the time spent inside
the monitor's `on_epoch_end`. `--epochs` should be a multiple of the
default `every_n_epochs` (5).

    python benchmarks/bench_mc_uncertainty.py --memory [--samples 1000 --examples 10000]
    python benchmarks/bench_mc_uncertainty.py --monitor [--rounds 2 --epochs 5]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(samples, examples, batch_size, return_samples):
    """One measurement; prints a JSON line."""
    import keras
    import numpy as np

    import kdrop
    from kdrop.experiments.models import simple_mnist_convnet

    keras.utils.set_random_seed(0)
    model = simple_mnist_convnet(keras.layers.Dropout(0.5))
    x = np.random.default_rng(0).random((examples, 28, 28, 1), dtype=np.float32)
    kdrop.mc_predict(model, x[:10], samples=samples, batch_size=batch_size, seed=0)
    before = _peak_mib()
    start = time.perf_counter()
    result = kdrop.mc_predict(
        model,
        x,
        samples=samples,
        batch_size=batch_size,
        seed=0,
        return_samples=return_samples,
    )
    seconds = time.perf_counter() - start
    kept = 0 if result.draws is None else result.draws.nbytes / 2**20
    print(
        json.dumps(
            {
                "samples": samples,
                "examples": examples,
                "batch_size": batch_size,
                "return_samples": return_samples,
                "peak_before_MiB": round(before),
                "peak_after_MiB": round(_peak_mib()),
                "added_MiB": round(_peak_mib() - before),
                "draws_MiB": round(kept),
                "seconds": round(seconds, 1),
            }
        )
    )


def memory(samples, examples):
    configurations = [
        (samples, examples // 10, None, False),
        (samples, examples, None, False),
        (samples, examples, 50 * samples, False),
        (samples, examples, 50 * samples, True),
    ]
    for samples_, examples_, batch_size, keep in configurations:
        command = [
            sys.executable,
            __file__,
            "--child",
            json.dumps([samples_, examples_, batch_size, keep]),
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True)
        print(output.stdout.strip().splitlines()[-1], flush=True)


def monitor(rounds, epochs):
    import keras

    import kdrop
    from kdrop.experiments.models import simple_mnist_convnet

    (x, y), (x_test, y_test) = kdrop.datasets.load_mnist("full")
    x, y = x[:4000], y[:4000]
    held_out = (x_test[:1000], y_test[:1000])

    def configuration(monitor_arguments):
        model = simple_mnist_convnet(keras.layers.Dropout(0.5))
        callbacks, clock = [], [0.0]
        if monitor_arguments is not None:
            callback = kdrop.callbacks.MCDropoutMonitor(
                tempfile.mkdtemp(), data=held_out, **monitor_arguments
            )
            hook = callback.on_epoch_end

            def timed(epoch, logs=None):
                start = time.perf_counter()
                hook(epoch, logs)
                clock[0] += time.perf_counter() - start

            callback.on_epoch_end = timed
            callbacks.append(callback)

        def fit():
            clock[0] = 0.0
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(
                x, y, batch_size=128, epochs=epochs, verbose=0, callbacks=callbacks
            )
            return (
                (time.perf_counter() - wall) / epochs,
                (time.process_time() - cpu) / epochs,
                clock[0] / epochs,
            )

        fit()  # warm-up: traces the train step and the monitor's first calls
        return fit

    fits = {
        "no callback": configuration(None),
        "MCDropoutMonitor, defaults": configuration({}),
        "MCDropoutMonitor(samples=30, every_n_epochs=1)": configuration(
            {"samples": 30, "every_n_epochs": 1}
        ),
    }
    times = {name: [] for name in fits}
    for round_index in range(rounds):
        names = list(fits)[:: 1 if round_index % 2 == 0 else -1]
        for name in names:
            times[name].append(fits[name]())
    baseline = [cpu for _, cpu, _ in times["no callback"]]
    for name, values in times.items():
        wall, cpu, hook = (statistics.median(column) for column in zip(*values))
        ratio = statistics.median(v[1] / b for v, b in zip(values, baseline))
        print(
            f"{name}: wall {wall:.3f} s/epoch, CPU {cpu:.3f} s/epoch "
            f"(paired ratio {ratio:.3f}), in on_epoch_end {1000 * hook:.0f} ms/epoch"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--monitor", action="store_true")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*json.loads(args.child))
    if args.memory:
        memory(args.samples, args.examples)
    if args.monitor:
        monitor(args.rounds, args.epochs)


if __name__ == "__main__":
    main()

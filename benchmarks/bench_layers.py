"""CPU benchmark of kdrop's dropout layers against keras.layers.Dropout.

Times forward + backward (the gradient of `sum(layer(x, training=True))`
with respect to `x`) of keras.layers.Dropout and kdrop's InvertedDropout,
WeightScaledDropout and ScheduledDropout (a rate that changes at every call)
on a 4096x4096 float32 tensor, on the backend KERAS_BACKEND names:

- tensorflow: a `tf.function` (graph) and with XLA (`jit_compile=True`);
- jax: `jax.jit(jax.value_and_grad(...))` over `layer.stateless_call`, the
  way Keras's JAX trainer runs layers, the seed state carried between calls;
- torch: eager autograd.

The contenders alternate within each round, so each round gives every layer
a paired ratio to Keras's Dropout taken under the same machine load; the
table reports the median time and the median and range of those ratios,
and the paired ratio of ScheduledDropout to InvertedDropout. Each call is
timed by the wall clock and by the process's CPU time (all threads), which
waiting for a busy shared CPU does not inflate.

    KERAS_BACKEND=tensorflow python benchmarks/bench_layers.py
        [--rounds 7] [--xla-rounds 3] [--size 4096]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from contenders import RATE, dropout_layers

KERAS = "keras Dropout"
SCHEDULED = "kdrop ScheduledDropout"
INVERTED = "kdrop InvertedDropout"


def tensorflow_step(layer, x, jit_compile):
    from bench_family import compiled_gradient  # imports TensorFlow

    gradient = compiled_gradient(layer, jit_compile)
    return lambda: gradient(x).numpy()


def jax_step(layer, x, jit_compile):
    del jit_compile  # always jitted
    import jax

    trainable = [v.value for v in layer.trainable_variables]
    state = [[v.value for v in layer.non_trainable_variables]]

    def loss(x, non_trainable):
        y, new_state = layer.stateless_call(trainable, non_trainable, x, training=True)
        return y.sum(), new_state

    gradient = jax.jit(jax.grad(loss, has_aux=True))

    def step():
        grad, state[0] = gradient(x, state[0])
        grad.block_until_ready()

    return step


def torch_step(layer, x, jit_compile):
    del jit_compile  # eager
    x = x.clone().requires_grad_(True)

    def step():
        layer(x, training=True).sum().backward()
        x.grad = None

    return step


STEPS = {"tensorflow": tensorflow_step, "jax": jax_step, "torch": torch_step}
MODES = {
    "tensorflow": (("graph", False), ("XLA", True)),
    "jax": (("jit", True),),
    "torch": (("eager", False),),
}


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_rounds(jit_compile, rounds, size):
    """Seconds per call by clock and contender, one list entry per round."""
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.normal(size=(size, size)).astype("float32"))
    build = STEPS[keras.backend.backend()]
    steps = {
        name: build(layer, x, jit_compile) for name, layer in dropout_layers().items()
    }
    for step in steps.values():  # trace and compile outside the timing
        step()
    times = {clock: {name: [] for name in steps} for clock in CLOCKS}
    for _ in range(rounds):
        for name, step in steps.items():
            start = {clock: read() for clock, read in CLOCKS.items()}
            step()
            for clock, read in CLOCKS.items():
                times[clock][name].append(read() - start[clock])
    return times


def paired(times, name, reference):
    ratios = [s / r for s, r in zip(times[name], times[reference])]
    return statistics.median(ratios), min(ratios), max(ratios)


def table_rows(mode, times):
    for name in times["wall"]:
        for clock, by_name in times.items():
            median, low, high = paired(by_name, name, KERAS)
            yield (
                f"| {mode} | {name} | {clock} "
                f"| {statistics.median(by_name[name]) * 1e3:.0f} "
                f"| {median:.2f} | {low:.2f}-{high:.2f} |"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=4096, help="side of the square input"
    )
    parser.add_argument("--rounds", type=int, default=7, help="rounds per mode")
    parser.add_argument(
        "--xla-rounds",
        type=int,
        default=3,
        help="TensorFlow XLA rounds (Keras's Dropout takes seconds each)",
    )
    args = parser.parse_args()
    backend = keras.backend.backend()
    print(
        f"backend {backend}, keras {keras.__version__}, {os.cpu_count()} CPUs, "
        f"{args.size}x{args.size} float32, rate {RATE}"
    )
    print(
        "\n| mode | layer | clock | median ms | ratio to keras (median of "
        "rounds) | ratio range |"
    )
    print("|---|---|---|---|---|---|")
    scheduled = []
    for mode, jit_compile in MODES[backend]:
        rounds = args.xla_rounds if mode == "XLA" else args.rounds
        times = time_rounds(jit_compile, rounds, args.size)
        for row in table_rows(f"{mode}, {rounds} rounds", times):
            print(row, flush=True)
        for clock, by_name in times.items():
            scheduled.append((mode, clock, paired(by_name, SCHEDULED, INVERTED)))
    print()
    for mode, clock, (median, low, high) in scheduled:
        print(
            f"{mode}, {clock}: ScheduledDropout / InvertedDropout, paired: "
            f"median {median:.3f}, range {low:.2f}-{high:.2f}"
        )


if __name__ == "__main__":
    main()

"""CPU benchmark of the fixed-rate dropout layers (issue 2).

Times forward + backward of kdrop.InvertedDropout, kdrop.WeightScaledDropout
and keras.layers.Dropout on a 4096x4096 float32 tensor with the TensorFlow
backend, as a tf.function (graph) and with XLA (jit_compile=True). The
contenders alternate within each round; the table reports medians and the
ratio to Keras's Dropout.

    python benchmarks/bench_layers.py [--rounds 9] [--xla-rounds 5]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from contenders import RATE, dropout_layers  # noqa: E402

def forward_backward(layer, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True))
        return tape.gradient(loss, x)

    return step


def median_ms(jit_compile, rounds, size):
    x = tf.random.normal((size, size))
    steps = {
        name: forward_backward(layer, jit_compile)
        for name, layer in dropout_layers(scheduled=False).items()
    }
    for step in steps.values():  # trace and compile outside the timing
        step(x).numpy()
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step(x).numpy()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--xla-rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, "
          f"{os.cpu_count()} CPUs, {args.size}x{args.size} float32, rate {RATE}")
    print("\n| mode | layer | median ms | ratio to keras |")
    print("|---|---|---|---|")
    for mode, jit, rounds in (("graph", False, args.rounds), ("XLA", True, args.xla_rounds)):
        results = median_ms(jit, rounds, args.size)
        keras_ms = results["keras Dropout"]
        for name, ms in results.items():
            print(f"| {mode} | {name} | {ms:.0f} | {ms / keras_ms:.2f} |")


if __name__ == "__main__":
    main()

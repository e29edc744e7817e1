"""CPU benchmark of the fixed-rate dropout layers.

Times forward + backward of kdrop.InvertedDropout, kdrop.WeightScaledDropout
and keras.layers.Dropout on a 4096x4096 float32 tensor with the TensorFlow
backend, as a tf.function (graph) and with XLA (jit_compile=True). The
contenders alternate within each round, so each round gives every layer a
paired ratio to Keras's Dropout taken under the same machine load; the table
reports the median time and the median and range of those ratios.

    python benchmarks/bench_layers.py [--rounds 7] [--xla-rounds 3]
        [--size 4096] [--probes]

`--probes` adds two uniform + where draws that are not kdrop layers, to
explain the XLA numbers. "constant seed": a fixed int seed, so the same mask
at every call (not dropout), which is what the 0.47 s XLA figure for
uniform + where quoted in BENCHMARKS.md measured. "tf philox":
`tf.random.stateless_uniform(alg="philox")` with a fresh seed per call,
i.e. real dropout through an API the layers may not use (they use
`keras.random.uniform`, whose TensorFlow backend leaves the algorithm on
"auto_select").
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf
from contenders import RATE, dropout_layers
from keras import ops

KERAS = "keras Dropout"


def _uniform_where(x, uniform):
    keep_prob = 1.0 - RATE
    return ops.where(uniform < keep_prob, x * (1.0 / keep_prob), 0.0)


def constant_seed_uniform_where(x, training):
    del training  # always drops, like the layers called with training=True
    return _uniform_where(x, keras.random.uniform(ops.shape(x), seed=1234))


class PhiloxUniformWhere:
    """Uniform + where from TensorFlow's Philox, a new seed at every call."""

    def __init__(self):
        self.seed = tf.Variable([1, 2], dtype=tf.int32)

    def __call__(self, x, training):
        del training
        self.seed.assign_add([1, 0])
        uniform = tf.random.stateless_uniform(tf.shape(x), seed=self.seed, alg="philox")
        return _uniform_where(x, uniform)


def forward_backward(layer, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True))
        return loss, tape.gradient(loss, x)

    return step


def time_rounds(contenders, jit_compile, rounds, size):
    """Seconds per call of each contender, one list entry per round."""
    x = tf.random.normal((size, size))
    steps = {
        name: forward_backward(layer, jit_compile) for name, layer in contenders.items()
    }
    for step in steps.values():  # trace and compile outside the timing
        step(x)[1].numpy()
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step(x)[1].numpy()
            times[name].append(time.perf_counter() - start)
    return times


def table_rows(mode, times):
    for name, seconds in times.items():
        ratios = [s / k for s, k in zip(seconds, times[KERAS])]
        yield (
            f"| {mode} | {name} | {statistics.median(seconds) * 1e3:.0f} "
            f"| {statistics.median(ratios):.2f} "
            f"| {min(ratios):.2f}-{max(ratios):.2f} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=4096, help="side of the square input"
    )
    parser.add_argument("--rounds", type=int, default=7, help="graph-mode rounds")
    parser.add_argument(
        "--xla-rounds",
        type=int,
        default=3,
        help="XLA rounds (Keras takes seconds each)",
    )
    parser.add_argument(
        "--probes", action="store_true", help="add the two uniform + where probes"
    )
    args = parser.parse_args()

    contenders = dropout_layers(scheduled=False)
    if args.probes:
        contenders["probe: uniform + where, constant seed (not dropout)"] = (
            constant_seed_uniform_where
        )
        contenders["probe: uniform + where, tf philox"] = PhiloxUniformWhere()
    print(
        f"tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"{os.cpu_count()} CPUs, "
        f"{args.size}x{args.size} float32, rate {RATE}, "
        f"{args.rounds} graph / {args.xla_rounds} XLA rounds"
    )
    print(
        "\n| mode | layer | median ms | ratio to keras (median of rounds) "
        "| ratio range |"
    )
    print("|---|---|---|---|---|")
    for mode, jit_compile, rounds in (
        ("graph", False, args.rounds),
        ("XLA", True, args.xla_rounds),
    ):
        for row in table_rows(
            mode, time_rounds(contenders, jit_compile, rounds, args.size)
        ):
            print(row, flush=True)


if __name__ == "__main__":
    main()

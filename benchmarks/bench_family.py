"""CPU benchmark of DropPath, DropBlock2D, GaussianDropout and DropConnectDense
against peers.

Forward + backward (gradient with respect to the input) on the TensorFlow
backend, as a tf.function (graph) and with XLA. Each group compares kdrop's
layer with its closest peer that installs here, with the fixed rate and with
a schedule (`Linear`, so the rate changes at every call):

- DropBlock2D (rate 0.1, block 7, 32x28x28x64): keras-cv 0.9's DropBlock2D
  algorithm (tensorflow/tpu's: uniforms over the whole map, a valid-centre
  mask, a min-pool with "same" padding) in keras.ops, written below:
  keras-cv's own layer fails inside a tf.function on Keras 3.15 (its
  `int(dropblock_width // 2)` gets a symbolic size), so it runs eagerly
  only;
- DropPath per batch, weight-scaled, on a residual `x + f`: keras-cv 0.9's
  StochasticDepth (the same convention);
- DropPath per example, inverted (timm's and torchvision's row mode): the
  keras.ops reference `x + where(uniform(batch, 1, 1, 1) < keep, f / keep, 0)`
  written below, as keras-cv has no row mode;
- GaussianDropout (rate 0.5, 2048x1024): keras.layers.GaussianDropout;
- DropConnectDense (rate 0.5, 512x1024 inputs, 1024 units, no bias): no
  Keras peer exists, so a keras.ops reference (kernel masked by
  `uniform < keep` at every call, written below).

Contenders alternate within each round, so every round gives a paired ratio
to the group's peer (and of the scheduled layer to the fixed one) under the
same machine load; the table reports median CPU times (of this process) and
the median and range of the ratios. keras-cv is optional: without it the
StochasticDepth rows are skipped. It imports on Keras 3 once its own
dependencies are present, e.g. in a throwaway directory:

    pip install --no-deps --target /tmp/kcv keras-cv==0.9.0 dm-tree regex \\
        tensorflow-datasets etils promise simple_parsing toml wrapt
    PYTHONPATH=/tmp/kcv python benchmarks/bench_family.py [--rounds 7]
        [--xla-rounds 3] [--only "DropPath"]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import kdrop

try:
    import keras_cv
except ImportError:
    keras_cv = None

RAMP_STEPS = 100


def ramp(rate):
    """A schedule reaching `rate` in RAMP_STEPS calls: a new rate each call."""
    return kdrop.schedules.Linear(0.0, rate, RAMP_STEPS)


def residual(layer):
    """`x + layer(x)`: the layer drops the branch of a residual block."""
    return lambda x, training: x + layer(x, training=training)


class RowDropPathReference:
    """timm's `drop_path` in keras.ops: one Bernoulli(keep) per example."""

    def __init__(self, rate):
        self.keep = 1.0 - rate
        self.seed = keras.random.SeedGenerator(1)

    def __call__(self, x, training):
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        kept = keras.random.uniform(shape, seed=self.seed) < self.keep
        return x + ops.where(kept, x / self.keep, 0.0)


class DropBlockReference:
    """keras-cv 0.9's DropBlock2D computation, with the map's sizes taken
    as Python ints so that it traces."""

    def __init__(self, rate, block):
        self.rate, self.block = rate, block
        self.seed = keras.random.SeedGenerator(1)

    def __call__(self, x, training):
        _, height, width, _ = x.shape
        block = self.block
        gamma = (
            self.rate
            * height
            * width
            / block**2
            / ((height - block + 1) * (width - block + 1))
        )
        rows = np.arange(height)[:, None]
        cols = np.arange(width)[None, :]
        valid = (
            (rows >= block // 2)
            & (rows < height - (block - 1) // 2)
            & (cols >= block // 2)
            & (cols < width - (block - 1) // 2)
        ).astype("float32")[None, :, :, None]
        noise = keras.random.uniform(ops.shape(x), seed=self.seed)
        pattern = ops.cast(1 - valid + (1 - gamma) + noise >= 1, "float32")
        pattern = -ops.max_pool(-pattern, block, strides=1, padding="same")
        return x * pattern * ops.cast(ops.size(pattern), "float32") / ops.sum(pattern)


class DropConnectReference:
    """DropConnect in keras.ops: a Dense kernel masked by one
    Bernoulli(keep) draw per entry per call (weight-scaled, no bias)."""

    def __init__(self, rate, inputs, units):
        self.keep = 1.0 - rate
        self.kernel = keras.Variable(
            keras.initializers.GlorotUniform(seed=1)((inputs, units))
        )
        self.seed = keras.random.SeedGenerator(1)

    def __call__(self, x, training):
        kept = keras.random.uniform(self.kernel.shape, seed=self.seed) < self.keep
        return ops.matmul(x, ops.where(kept, self.kernel, 0.0))


def groups():
    """(group, input shape, {name: callable(x, training)}), peer first."""
    drop_block = {"keras.ops reference (keras-cv)": DropBlockReference(0.1, 7)}
    batch_path = {}
    if keras_cv is not None:
        stochastic_depth = keras_cv.layers.StochasticDepth(0.2)
        batch_path["keras-cv StochasticDepth"] = lambda x, training: stochastic_depth(
            [x, x], training=training
        )
    for name, rate in (("", 0.1), (" scheduled", ramp(0.1))):
        drop_block[f"kdrop DropBlock2D{name}"] = kdrop.layers.DropBlock2D(
            rate, 7, data_format="channels_last", seed=1
        )
    for name, rate in (("", 0.2), (" scheduled", ramp(0.2))):
        batch_path[f"kdrop DropPath{name}"] = residual(
            kdrop.layers.DropPath(rate, per="batch", mode="weight_scaled", seed=1)
        )
    row_path = {"keras.ops reference (timm)": RowDropPathReference(0.2)}
    for name, rate in (("", 0.2), (" scheduled", ramp(0.2))):
        row_path[f"kdrop DropPath{name}"] = residual(
            kdrop.layers.DropPath(rate, seed=1)
        )
    gaussian = {"keras GaussianDropout": keras.layers.GaussianDropout(0.5, seed=1)}
    for name, rate in (("", 0.5), (" scheduled", ramp(0.5))):
        gaussian[f"kdrop GaussianDropout{name}"] = kdrop.layers.GaussianDropout(
            rate, seed=1
        )
    drop_connect = {"keras.ops reference": DropConnectReference(0.5, 1024, 1024)}
    for name, rate in (("", 0.5), (" scheduled", ramp(0.5))):
        drop_connect[f"kdrop DropConnectDense{name}"] = kdrop.layers.DropConnectDense(
            1024, rate, use_bias=False, seed=1
        )
    result = [
        ("DropBlock2D", (32, 28, 28, 64), drop_block),
        ("DropPath per example", (64, 28, 28, 64), row_path),
        ("GaussianDropout", (2048, 1024), gaussian),
        ("DropConnectDense", (512, 1024), drop_connect),
    ]
    if keras_cv is not None:
        result.insert(1, ("DropPath per batch", (64, 28, 28, 64), batch_path))
    return result


def compiled_gradient(contender, jit_compile):
    """tf.function of x -> d sum(contender(x)) / dx: forward + backward."""

    @tf.function(jit_compile=jit_compile)
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(contender(x, training=True))
        return tape.gradient(total, x)

    return gradient


def time_rounds(contenders, shape, jit_compile, rounds):
    """CPU seconds (all threads of this process) per call of each contender,
    one list entry per round; every function is traced and compiled before
    the first round. CPU time, unlike wall time, leaves out the time other
    jobs of a shared machine hold the cores."""
    x = tf.random.normal(shape)
    gradients = {n: compiled_gradient(c, jit_compile) for n, c in contenders.items()}
    times = {name: [] for name in gradients}
    for round_index in range(rounds + 1):
        for name, gradient in gradients.items():
            start = time.process_time()
            gradient(x).numpy()
            if round_index:  # round 0 only traces and compiles
                times[name].append(time.process_time() - start)
    return times


def ratio_cell(seconds, reference):
    ratios = [s / r for s, r in zip(seconds, reference)]
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def table_rows(mode, group, times):
    peer = next(iter(times))
    for name, seconds in times.items():
        fixed = name.removesuffix(" scheduled")
        versus_fixed = ratio_cell(seconds, times[fixed]) if fixed != name else ""
        yield (
            f"| {group} | {mode} | {name} | {statistics.median(seconds) * 1e3:.1f} "
            f"| {ratio_cell(seconds, times[peer])} | {versus_fixed} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="graph-mode rounds")
    parser.add_argument("--xla-rounds", type=int, default=3, help="XLA rounds")
    parser.add_argument(
        "--only", default="", help="run the groups whose name contains this text"
    )
    args = parser.parse_args()
    print(
        f"tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"keras-cv {getattr(keras_cv, '__version__', 'not installed')}, "
        f"{os.cpu_count()} CPUs, {args.rounds} graph / {args.xla_rounds} XLA rounds"
    )
    print(
        "\n| group | mode | layer | median CPU ms | ratio to peer, median (range) "
        "| scheduled / fixed, median (range) |"
    )
    print("|---|---|---|---|---|---|")
    for group, shape, contenders in groups():
        if args.only not in group:
            continue
        for mode, jit_compile, rounds in (
            ("graph", False, args.rounds),
            ("XLA", True, args.xla_rounds),
        ):
            times = time_rounds(contenders, shape, jit_compile, rounds)
            for row in table_rows(mode, group, times):
                print(row, flush=True)


if __name__ == "__main__":
    main()

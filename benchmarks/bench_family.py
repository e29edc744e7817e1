"""CPU benchmark of DropPath, DropBlock2D, GaussianDropout, DropConnectDense,
DropConnectConv2D and ConcreteDropout against peers.

Forward + backward (gradient with respect to the input) on the TensorFlow
backend, as a tf.function (graph) and with XLA, or on JAX (`KERAS_BACKEND=jax`:
`jax.jit(jax.grad(...))` over `stateless_call`, for the groups whose
contenders are all Keras layers: DropConnectDense / Conv2D and
ConcreteDropout). Each
group compares kdrop's layer with its closest peer that installs here, with
the fixed rate and with a schedule (`Linear`, so the rate changes at every
call):

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
- DropConnectConv2D (rate 0.5, 32x28x28x64 inputs, 3x3 kernel, 64 filters,
  no bias): no peer exists either; the keras.ops reference masks a Conv2D
  kernel the same way (written below).
- ConcreteDropout on a Dense(1024) (512x1024 inputs; its rate is learned, so
  it has no scheduled row): the keras.ops reference is the paper's Keras
  layer (Gal, Hron, Kendall 2017, github.com/yaringal/ConcreteDropout), the
  relaxed mask `sigmoid((log p - log(1 - p) + log u - log(1 - u)) / t)`
  from `keras.random.uniform`, and its regularizer, written below.

Contenders alternate within each round (the order reversed every other
round), so every round gives a paired ratio
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
from keras import ops

import kdrop

TENSORFLOW = keras.backend.backend() == "tensorflow"
if TENSORFLOW:
    import tensorflow as tf

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


class DropConnectReference(keras.layers.Layer):
    """DropConnect in keras.ops: a Dense kernel masked by one
    Bernoulli(keep) draw per entry per call (weight-scaled, no bias)."""

    def __init__(self, rate, inputs, units):
        super().__init__()
        self.keep = 1.0 - rate
        self.kernel = self.add_weight(
            (inputs, units), initializer=keras.initializers.GlorotUniform(seed=1)
        )
        self.seed = keras.random.SeedGenerator(1)

    def call(self, x, training=False):
        kernel = ops.convert_to_tensor(self.kernel)
        kept = keras.random.uniform(kernel.shape, seed=self.seed) < self.keep
        return ops.matmul(x, ops.where(kept, kernel, 0.0))


class DropConnectConv2DReference(keras.layers.Layer):
    """DropConnect on a Conv2D in keras.ops: the kernel masked by one
    Bernoulli(keep) draw per entry per call (weight-scaled, no bias)."""

    def __init__(self, rate, filters, kernel_size):
        super().__init__()
        self.keep = 1.0 - rate
        self.filters, self.kernel_size = filters, kernel_size
        self.seed = keras.random.SeedGenerator(1)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            (self.kernel_size, self.kernel_size, input_shape[-1], self.filters),
            initializer=keras.initializers.GlorotUniform(seed=1),
        )

    def call(self, x, training=False):
        kernel = ops.convert_to_tensor(self.kernel)
        kept = keras.random.uniform(kernel.shape, seed=self.seed) < self.keep
        return ops.conv(x, ops.where(kept, kernel, 0.0))


class ConcreteDropoutReference(keras.layers.Layer):
    """The Concrete dropout paper's Keras layer in keras.ops, on a Dense:
    relaxed Bernoulli mask on the input, the paper's regularizer added."""

    def __init__(self, units, weight_regularizer=1e-6, dropout_regularizer=1e-5):
        super().__init__()
        self.dense = keras.layers.Dense(units)
        self.weight_regularizer = weight_regularizer
        self.dropout_regularizer = dropout_regularizer
        self.temperature = 0.1
        self.seed = keras.random.SeedGenerator(1)

    def build(self, input_shape):
        self.p_logit = self.add_weight(
            (), initializer=keras.initializers.Constant(np.log(0.1 / 0.9))
        )
        self.dense.build(input_shape)

    def call(self, x, training=False):
        p = ops.sigmoid(self.p_logit)
        eps = keras.config.epsilon()
        u = keras.random.uniform(ops.shape(x), seed=self.seed)
        drop = ops.sigmoid(
            (
                ops.log(p + eps)
                - ops.log(1.0 - p + eps)
                + ops.log(u + eps)
                - ops.log(1.0 - u + eps)
            )
            / self.temperature
        )
        kernel = self.dense.kernel
        regularizer = self.weight_regularizer * ops.sum(ops.square(kernel)) / (
            1.0 - p
        ) + self.dropout_regularizer * x.shape[-1] * (
            p * ops.log(p) + (1.0 - p) * ops.log(1.0 - p)
        )
        self.add_loss(regularizer)
        return self.dense(x * (1.0 - drop) / (1.0 - p))


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
    drop_connect_conv = {"keras.ops reference": DropConnectConv2DReference(0.5, 64, 3)}
    for name, rate in (("", 0.5), (" scheduled", ramp(0.5))):
        drop_connect_conv[f"kdrop DropConnectConv2D{name}"] = (
            kdrop.layers.DropConnectConv2D(64, 3, rate, use_bias=False, seed=1)
        )
    concrete = {
        "keras.ops reference (Gal et al.)": ConcreteDropoutReference(1024),
        "kdrop ConcreteDropout": kdrop.layers.ConcreteDropout(
            keras.layers.Dense(1024), seed=1
        ),
    }
    result = [
        ("DropBlock2D", (32, 28, 28, 64), drop_block),
        ("DropPath per example", (64, 28, 28, 64), row_path),
        ("GaussianDropout", (2048, 1024), gaussian),
        ("DropConnectDense", (512, 1024), drop_connect),
        ("DropConnectConv2D", (32, 28, 28, 64), drop_connect_conv),
        ("ConcreteDropout", (512, 1024), concrete),
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


def jax_gradient(layer, x):
    """jax.jit of x -> d sum(layer(x)) / dx over `stateless_call`, its
    non-trainable state (seeds, step counters) carried from call to call."""
    import jax

    layer(x[:1], training=True)  # builds it
    trainable = [v.value for v in layer.trainable_variables]
    state = [[v.value for v in layer.non_trainable_variables]]

    # The weights are arguments: captured as constants, XLA would spend
    # minutes constant-folding the products with them.
    def total(x, trainable, non_trainable):
        y, new_state = layer.stateless_call(trainable, non_trainable, x, training=True)
        return ops.sum(y), new_state

    gradient = jax.jit(jax.grad(total, has_aux=True))

    def step(x):
        grad, state[0] = gradient(x, trainable, state[0])
        return grad

    return step


def time_rounds(contenders, shape, jit_compile, rounds):
    """CPU seconds (all threads of this process) per call of each contender,
    one list entry per round, the order reversed every other round; every
    function is traced and compiled before the first round. CPU time, unlike
    wall time, leaves out the time other jobs of a shared machine hold the
    cores."""
    x = keras.random.normal(shape, seed=0)
    if TENSORFLOW:
        gradients = {
            n: compiled_gradient(c, jit_compile) for n, c in contenders.items()
        }
    else:
        gradients = {n: jax_gradient(c, x) for n, c in contenders.items()}
    times = {name: [] for name in gradients}
    for round_index in range(rounds + 1):
        names = list(gradients) if round_index % 2 else list(gradients)[::-1]
        for name in names:
            start = time.process_time()
            ops.convert_to_numpy(gradients[name](x))
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
        f"backend {keras.backend.backend()}, keras {keras.__version__}, "
        f"keras-cv {getattr(keras_cv, '__version__', 'not installed')}, "
        f"{os.cpu_count()} CPUs, {args.rounds} graph or JAX / "
        f"{args.xla_rounds} XLA rounds"
    )
    print(
        "\n| group | mode | layer | median CPU ms | ratio to peer, median (range) "
        "| scheduled / fixed, median (range) |"
    )
    print("|---|---|---|---|---|---|")
    modes = (
        (("graph", False, args.rounds), ("XLA", True, args.xla_rounds))
        if TENSORFLOW
        else (("JAX jit", True, args.rounds),)
    )
    for group, shape, contenders in groups():
        if args.only not in group:
            continue
        if not TENSORFLOW and not all(
            isinstance(c, keras.layers.Layer) for c in contenders.values()
        ):
            print(f"| {group} | skipped on JAX: its peer is not a Keras layer |")
            continue
        for mode, jit_compile, rounds in modes:
            times = time_rounds(contenders, shape, jit_compile, rounds)
            for row in table_rows(mode, group, times):
                print(row, flush=True)


if __name__ == "__main__":
    main()

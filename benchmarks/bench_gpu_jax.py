"""GPU benchmark of kdrop's layers on the JAX backend.

Times one training-mode forward pass of InvertedDropout, WeightScaledDropout,
ScheduledDropout and keras.layers.Dropout on a large float32 and bfloat16
tensor against a plain multiply by a constant, which reads and writes the
same bytes and so is the memory-bandwidth floor; then the training
throughput (images/s) of the MNIST CNN with each dropout layer.

kdrop's layers draw their masks through `kdrop.backend.masks` (32-bit bits
from `lax.rng_bit_generator` with XLA's Threefry algorithm, against an
integer threshold); Keras's Dropout uses `jax.random.bernoulli` (threefry).
Goals: kdrop's layers within 1.1x of the floor in float32 and 1.5x in
bfloat16.

Every contender runs inside `jax.jit` through `layer.stateless_call`, the
way Keras's JAX trainer runs layers, and the contenders alternate within
each round so that clock and thermal drift hit them all alike.

Run (on a machine with a GPU and JAX, no TensorFlow needed):

    KERAS_BACKEND=jax python benchmarks/bench_gpu_jax.py

Writes a markdown table to stdout (paste it into BENCHMARKS.md).
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import keras
import numpy as np
from contenders import dropout_layers

from kdrop.experiments.models import simple_mnist_convnet


def jitted_training_call(layer, x):
    """Returns a jitted `state -> (output, new_state)` for one layer."""
    layer.build(x.shape)
    trainable = [v.value for v in layer.trainable_variables]
    state = [v.value for v in layer.non_trainable_variables]

    @jax.jit
    def step(state, x):
        return layer.stateless_call(trainable, state, x, training=True)

    return step, state


def time_elementwise(numel, dtype, rounds):
    x = jnp.ones((numel // 4096, 4096), dtype=dtype)
    contenders = {}
    scale = jnp.asarray(2.0, dtype=dtype)
    multiply = jax.jit(lambda state, x: (x * scale, state))
    contenders["multiply (floor)"] = (multiply, [])
    for name, layer in dropout_layers().items():
        contenders[name] = jitted_training_call(layer, x)
    times = {name: [] for name in contenders}
    for _ in range(rounds + 1):  # the first round compiles and is dropped
        for name, (fn, state) in contenders.items():
            start = time.perf_counter()
            out, new_state = fn(state, x)
            out.block_until_ready()
            times[name].append(time.perf_counter() - start)
            contenders[name] = (fn, new_state)
    return {name: statistics.median(t[1:]) * 1e3 for name, t in times.items()}


def time_training(batch_size, steps, rounds):
    rng = np.random.default_rng(0)
    x = rng.random((batch_size * steps, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, size=batch_size * steps)
    models = {}
    for name, layer in dropout_layers().items():
        model = simple_mnist_convnet(layer)
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)  # compile
        models[name] = model
    throughput = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
            throughput[name].append(len(x) / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in throughput.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=256 * 2**20)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--train-rounds", type=int, default=3)
    args = parser.parse_args()

    print(
        f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}, "
        f"keras {keras.__version__}, backend {keras.backend.backend()}"
    )
    print(
        f"\n### Training-mode forward pass, {args.numel:,} elements "
        f"(median of {args.rounds} rounds, ms)\n"
    )
    print("| layer | float32 ms | x floor | bfloat16 ms | x floor |")
    print("|---|---|---|---|---|")
    results = {
        dtype: time_elementwise(args.numel, dtype, args.rounds)
        for dtype in ("float32", "bfloat16")
    }
    for name in results["float32"]:
        row = [name]
        for dtype in ("float32", "bfloat16"):
            ms = results[dtype][name]
            row += [f"{ms:.3f}", f"{ms / results[dtype]['multiply (floor)']:.2f}"]
        print("| " + " | ".join(row) + " |")

    print(
        f"\n### CNN training throughput, batch {args.batch_size} "
        f"(median of {args.train_rounds} epochs of {args.train_steps} "
        "steps, images/s)\n"
    )
    print("| dropout layer | images/s |")
    print("|---|---|")
    for name, value in time_training(
        args.batch_size, args.train_steps, args.train_rounds
    ).items():
        print(f"| {name} | {value:,.0f} |")


if __name__ == "__main__":
    main()

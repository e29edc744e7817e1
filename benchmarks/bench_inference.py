"""Speed of mc_predict and of folded models on the MNIST CNN (issue 5).

- mc_predict with 50 samples over 1000 test images, against a Python loop of
  50 `model(x, training=True)` calls (which also puts BatchNormalization in
  training mode, so it is not even the same computation) and against one
  `predict` on the 50x tiled data (the same arithmetic with no sampling).
- Inference time of `fold_dropout(model)` against the original model.

Contenders alternate within each round; medians are reported.

    python benchmarks/bench_inference.py [--rounds 3]
"""

import argparse
import statistics
import time

import keras
import numpy as np

import kdrop
from kdrop.experiments.common import simple_mnist_convnet


def median_seconds(contenders, rounds):
    for run in contenders.values():  # trace outside the timing
        run()
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def table(title, results, reference):
    print(f"\n{title}\n\n| contender | median s | ratio to {reference} |\n|---|---|---|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.3f} | {seconds / results[reference]:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    _, (x, _) = kdrop.datasets.load_mnist()
    model = simple_mnist_convnet(kdrop.WeightScaledDropout(0.5))
    tiled = np.concatenate([x] * args.samples)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {len(x)} images, "
          f"{args.samples} samples, {args.rounds} rounds")

    mc = median_seconds({
        "kdrop.mc_predict": lambda: kdrop.mc_predict(model, x, samples=args.samples, seed=0),
        "loop of model(x, training=True)": lambda: [
            keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(args.samples)],
        "predict on 50x data": lambda: model.predict(tiled, batch_size=1024, verbose=0),
    }, args.rounds)
    table("Monte-Carlo dropout", mc, "kdrop.mc_predict")

    folded = kdrop.fold_dropout(model)
    inference = median_seconds({
        "original predict": lambda: model.predict(tiled[:20000], batch_size=1024, verbose=0),
        "folded predict": lambda: folded.predict(tiled[:20000], batch_size=1024, verbose=0),
    }, args.rounds)
    table("Folded vs original inference, 20000 images", inference, "original predict")


if __name__ == "__main__":
    main()

"""Monte-Carlo averaging vs the weight-scaling rule (Srivastava 2014, Fig. 11).

An MLP with WeightScaledDropout is trained on MNIST; its test error with the
weight-scaling inference rule (one deterministic pass, W_test = keep * W) is
compared with Monte-Carlo averaging of k stochastic passes
(`kdrop.mc_predict`) for k = 1 ... 100. The paper finds that about k = 50
samples match the weight-scaling rule.
"""

import os

import keras
import numpy as np

import kdrop
from kdrop.experiments import common

SAMPLE_COUNTS = (1, 2, 5, 10, 20, 50, 100)


def mlp(seed):
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Flatten(),
        kdrop.WeightScaledDropout(0.2, seed=seed),
        keras.layers.Dense(512, activation="relu"),
        kdrop.WeightScaledDropout(0.5, seed=seed + 1),
        keras.layers.Dense(512, activation="relu"),
        kdrop.WeightScaledDropout(0.5, seed=seed + 2),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run(epochs=20, out="logs/mc_vs_weight_scaling", seed=0, sample_counts=SAMPLE_COUNTS,
        dataset="offline", verbose=2):
    (x_train, y_train), (x_test, y_test) = kdrop.datasets.load_mnist(dataset, seed=seed)
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(seed)
    model = mlp(seed)
    model.fit(x_train, y_train, batch_size=100, epochs=epochs, verbose=verbose)
    weight_scaling_error = 100 * (1 - common.accuracy(model, x_test, y_test))
    rows = []
    for k in sample_counts:
        result = kdrop.mc_predict(model, x_test, samples=k, seed=seed)
        error = 100 * float(np.mean(np.argmax(result.mean, axis=1) != y_test))
        rows.append({"samples": k, "mc_test_error_%": error,
                     "weight_scaling_test_error_%": weight_scaling_error})
        print(f"k = {k:3d}: MC test error {error:.2f} %  (weight scaling {weight_scaling_error:.2f} %)")
    common.plot_lines(
        os.path.join(out, "mc_vs_weight_scaling.png"),
        {"Monte-Carlo averaging": ([r["samples"] for r in rows], [r["mc_test_error_%"] for r in rows])},
        "samples k", "test error (%)", "MC dropout vs weight scaling",
        hlines={"weight scaling rule": weight_scaling_error})
    print(common.write_table(rows, os.path.join(out, "summary.csv")))
    return rows


def main(argv=None):
    parser = common.argument_parser("mc_vs_weight_scaling", __doc__.splitlines()[0], epochs=20)
    parser.add_argument("--dataset", default="offline")
    args = parser.parse_args(argv)
    return run(args.epochs, args.out, args.seed, dataset=args.dataset)

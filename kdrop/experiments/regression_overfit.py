"""Dropout against overfitting on a 10-point regression (seed article 002).

10 training points of y = 1.5 x + N(0, 0.5) on [-1, 1] (test points with
noise 0.3); an MLP 1-200-200-200-1 with ReLU and dropout 0 or 0.5 after each
hidden layer; SGD lr 0.01, momentum 0.9, full-batch iterations. Without
dropout the curve passes through the training points and wiggles; with
dropout it is smoother.
"""

import os

import keras
import numpy as np

import kdrop
from kdrop.experiments import common


def make_data(seed, n_train=10, n_test=100):
    rng = np.random.default_rng(seed)
    x_train = np.sort(rng.uniform(-1, 1, n_train)).astype("float32")[:, None]
    x_test = np.linspace(-1, 1, n_test).astype("float32")[:, None]
    y_train = 1.5 * x_train + rng.normal(0, 0.5, x_train.shape).astype("float32")
    y_test = 1.5 * x_test + rng.normal(0, 0.3, x_test.shape).astype("float32")
    return (x_train, y_train), (x_test, y_test)


def mlp(rate, seed):
    layers = [keras.Input((1,))]
    for index in range(3):
        layers.append(keras.layers.Dense(200, activation="relu"))
        if rate > 0:
            layers.append(kdrop.InvertedDropout(rate, seed=seed + index))
    layers.append(keras.layers.Dense(1))
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "mse")
    return model


def run(iterations=2000, out="logs/regression_overfit", seed=0):
    (x_train, y_train), (x_test, y_test) = make_data(seed)
    os.makedirs(out, exist_ok=True)
    grid = np.linspace(-1, 1, 200).astype("float32")[:, None]
    rows, curves = [], {}
    for rate in (0.0, 0.5):
        keras.utils.set_random_seed(seed)
        model = mlp(rate, seed)
        model.fit(x_train, y_train, batch_size=len(x_train), epochs=iterations, verbose=0)
        label = f"dropout {rate}"
        curves[label] = (grid[:, 0], model.predict(grid, verbose=0)[:, 0])
        rows.append({
            "model": label,
            "train_mse": float(model.evaluate(x_train, y_train, verbose=0)),
            "test_mse": float(model.evaluate(x_test, y_test, verbose=0)),
        })
    _plot(os.path.join(out, "fit.png"), x_train, y_train, x_test, y_test, curves)
    print(common.write_table(rows, os.path.join(out, "summary.csv")))
    return rows


def _plot(path, x_train, y_train, x_test, y_test, curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.scatter(x_test, y_test, s=8, color="lightgray", label="test points")
    axes.scatter(x_train, y_train, s=30, color="black", label="training points")
    for label, (xs, ys) in curves.items():
        axes.plot(xs, ys, label=label)
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title("MLP 1-200-200-200-1 on 10 points")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = common.argument_parser("regression_overfit", __doc__.splitlines()[0], epochs=2000)
    args = parser.parse_args(argv)
    return run(args.epochs, args.out, args.seed)

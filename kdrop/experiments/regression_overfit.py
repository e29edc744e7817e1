"""Dropout against overfitting on a 10-point regression.

10 training points of y = 1.5 x + N(0, 0.5) on [-1, 1], 100 test points
with noise N(0, 0.3); an MLP 1-200-200-200-1 with ReLU and dropout 0 or
0.5 (InvertedDropout) after each hidden layer; SGD lr 0.01, momentum 0.9,
full-batch iterations, mean squared error. Without dropout the curve
passes through the training points (near-zero loss) and wiggles; with
dropout it is smoother.
"""

import os

import keras
import numpy as np

import kdrop
from kdrop import validation
from kdrop.experiments import cli, figures, tables

RATES = (0.0, 0.5)
DEFAULT_SEEDS = 3
COLUMNS = ("train_mse", "test_mse")


def make_data(seed, n_train=10, n_test=100):
    """Training points on an even grid of [-1, 1], test points drawn at random."""
    rng = np.random.default_rng(seed)
    x_train = np.linspace(-1, 1, n_train, dtype="float32")[:, None]
    x_test = np.sort(rng.uniform(-1, 1, (n_test, 1)), axis=0).astype("float32")
    y_train = (1.5 * x_train + rng.normal(0, 0.5, x_train.shape)).astype("float32")
    y_test = (1.5 * x_test + rng.normal(0, 0.3, x_test.shape)).astype("float32")
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


def fit_full_batch(model, x, y, iterations, label):
    """`iterations` gradient steps, each on all of (x, y).

    The training set is repeated `iterations` times and fed unshuffled in
    batches of its own size, so one `fit` epoch takes exactly these steps
    (much faster than `iterations` epochs of one step).
    """
    every = max(1, iterations // 4)

    def progress(batch, logs):
        if (batch + 1) % every == 0 or batch + 1 == iterations:
            print(
                f"  {label}: iteration {batch + 1}/{iterations}, mean training loss "
                f"so far {logs['loss']:.4f} (training mode)"
            )

    model.fit(
        np.tile(x, (iterations, 1)),
        np.tile(y, (iterations, 1)),
        batch_size=len(x),
        shuffle=False,
        epochs=1,
        verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=progress)],
    )


def run(iterations=2000, out="logs/regression_overfit", seed=0, seeds=DEFAULT_SEEDS):
    """Trains both MLPs once per seed; writes `out/fit.png`,
    `out/summary.csv` (one row per model and seed) and `out/aggregate.csv`.

    Args:
        iterations: int > 0, full-batch SGD steps (epochs over the 10 points).
        out: output directory.
        seed: int >= 0, the first seed.
        seeds: int > 0, runs per model with seeds `seed`, `seed + 1`, ...
            (data noise, weights, masks).

    Returns:
        `(rows, summary)`: rows, one dict per model and seed: model, seed,
        train_mse and test_mse of the trained MLP in inference mode
        (dropout off); summary, one dict per model: model, seeds,
        `<c>_mean` and `<c>_std` over seeds for c in `COLUMNS`.
    """
    iterations = validation.check_positive_int(iterations, "iterations")
    seed_values = cli.seed_list(seed, seeds)
    cli.create_out(out)
    grid = np.linspace(-1, 1, 200, dtype="float32")[:, None]
    rows, curves = [], {}
    for run_seed in seed_values:
        (x_train, y_train), (x_test, y_test) = make_data(run_seed)
        if run_seed == seed_values[0]:
            first_data = (x_train, y_train), (x_test, y_test)
        for rate in RATES:
            label = f"dropout {rate}"
            keras.utils.set_random_seed(run_seed)
            model = mlp(rate, run_seed)
            fit_full_batch(
                model, x_train, y_train, iterations, f"{label}, seed {run_seed}"
            )
            curves.setdefault(label, []).append(model.predict(grid, verbose=0)[:, 0])
            rows.append(
                {
                    "model": label,
                    "seed": run_seed,
                    "train_mse": float(model.evaluate(x_train, y_train, verbose=0)),
                    "test_mse": float(model.evaluate(x_test, y_test, verbose=0)),
                }
            )
    (x_train, y_train), (x_test, y_test) = first_data
    with figures.figure(
        os.path.join(out, "fit.png"),
        description="The MLPs' fits to the 10 noisy training points (first "
        "seed; mean +- 1 std over seeds as a band) against the test points "
        "and y = 1.5 x.",
    ) as (_, axes):
        axes.scatter(
            x_test, y_test, s=8, color="lightgray", label="test points (noise 0.3)"
        )
        axes.scatter(
            x_train, y_train, s=30, color="black", label="training points (noise 0.5)"
        )
        for index, (label, predictions) in enumerate(curves.items()):
            color = f"C{index}"
            axes.plot(
                grid[:, 0],
                predictions[0],
                color=color,
                label=f"{label}, seed {seed_values[0]}",
            )
            if len(predictions) > 1:
                mean = np.mean(predictions, axis=0)
                std = np.std(predictions, axis=0, ddof=1)
                axes.fill_between(
                    grid[:, 0],
                    mean - std,
                    mean + std,
                    color=color,
                    alpha=0.2,
                    label=f"{label}: mean +- 1 std, {len(predictions)} seeds",
                )
        axes.plot(grid[:, 0], 1.5 * grid[:, 0], ":", color="gray", label="y = 1.5 x")
        axes.set(
            xlabel="x",
            ylabel="y",
            title=f"MLP 1-200-200-200-1, {iterations} full-batch SGD steps",
        )
        axes.legend(fontsize=7)
    summary = tables.report_seeds(rows, out, "model", COLUMNS)
    print(
        "Mean squared errors in inference mode. Best possible test MSE (noise "
        "variance): 0.09. The figure shows the first seed's points and fits."
    )
    return rows, summary


def main(argv=None):
    parser = cli.argument_parser(
        "regression_overfit", __doc__, epochs=2000, seeds=DEFAULT_SEEDS
    )
    parser.description += "\n--epochs counts the full-batch iterations.\n"
    args = parser.parse_args(argv)
    with cli.usage_errors(parser):
        return run(args.epochs, args.out, args.seed, args.seeds)

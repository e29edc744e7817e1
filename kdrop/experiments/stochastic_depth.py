"""Stochastic depth and DropBlock on a small residual convnet, on the digits.

A small residual convnet (a stride-2 3x3 convolution and 2x2 max-pooling
to 7x7x16, three residual blocks of two 3x3 convolutions, a softmax
classifier on the flattened maps) trained four ways, with several seeds
each:

- none: no regularisation;
- drop_path: stochastic depth, DropPath on every block's branch with
  Huang et al.'s (2016) linear rule over depth, block l of L dropped with
  rate (l / L) * p_L, p_L = 0.5 (the paper's value);
- drop_block: DropBlock2D (Ghiasi et al. 2018) after the last two blocks,
  block_size 3, keep_prob ramped linearly from 1 to 0.9 over training (the
  paper's schedule), i.e. rate Linear(0, 0.1, total steps), inside `fit`;
- both: the two together.

Every run logs every layer's rate at every step (DropoutRateLogger) next to
Keras's TensorBoard curves. Reported: the final test error and test loss,
mean +- std over the seeds, and their curves per epoch.
"""

import os
import time

import keras
import numpy as np

import kdrop
from kdrop import schedules, validation
from kdrop.experiments import common

VARIANTS = ("none", "drop_path", "drop_block", "both")
DEPTH = 3  # residual blocks
WIDTH = 16  # channels
FINAL_DROP_PATH_RATE = 0.5  # p_L of Huang et al. 2016
DROP_BLOCK_RATE = 0.1  # 1 - the final keep_prob 0.9 of Ghiasi et al. 2018
BLOCK_SIZE = 3
DROP_BLOCK_AFTER = (2, 3)  # blocks followed by a DropBlock2D


def residual_convnet(variant, total_steps, seed):
    """The residual convnet with `variant`'s regularisation, compiled."""
    uses_path = variant in ("drop_path", "both")
    uses_block = variant in ("drop_block", "both")
    if uses_path:
        path_rates = kdrop.layers.drop_path_rates(FINAL_DROP_PATH_RATE, DEPTH)
    block_rate = schedules.Linear(0.0, DROP_BLOCK_RATE, total_steps)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(
        WIDTH, 3, strides=2, padding="same", activation="relu", name="stem"
    )(inputs)
    x = keras.layers.MaxPooling2D(2, name="stem_pool")(x)
    for block in range(1, DEPTH + 1):
        branch = keras.layers.Conv2D(
            WIDTH, 3, padding="same", activation="relu", name=f"block{block}_conv1"
        )(x)
        branch = keras.layers.Conv2D(
            WIDTH, 3, padding="same", name=f"block{block}_conv2"
        )(branch)
        if uses_path:
            branch = kdrop.layers.DropPath(
                path_rates[block - 1], seed=seed + block, name=f"block{block}_drop_path"
            )(branch)
        x = keras.layers.Add(name=f"block{block}_add")([x, branch])
        x = keras.layers.ReLU(name=f"block{block}_relu")(x)
        if uses_block and block in DROP_BLOCK_AFTER:
            x = kdrop.layers.DropBlock2D(
                block_rate,
                block_size=BLOCK_SIZE,
                seed=seed + 10 * block,
                name=f"block{block}_drop_block",
            )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs, name=f"resnet_{variant}")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def describe(variant):
    parts = []
    if variant in ("drop_path", "both"):
        rates = kdrop.layers.drop_path_rates(FINAL_DROP_PATH_RATE, DEPTH)
        parts.append("DropPath " + "/".join(f"{rate:.3g}" for rate in rates))
    if variant in ("drop_block", "both"):
        parts.append(
            f"DropBlock2D({BLOCK_SIZE}) keep 1 -> {1 - DROP_BLOCK_RATE:g} "
            f"after blocks {DROP_BLOCK_AFTER}"
        )
    return "; ".join(parts) or "no regularisation"


def _train(
    variant, run_seed, train, test, epochs, batch_size, total_steps, log_dir, verbose
):
    keras.utils.set_random_seed(run_seed)
    model = residual_convnet(variant, total_steps, run_seed)
    (x_train, y_train), (x_test, y_test) = train, test
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=verbose,
        validation_data=(x_test, y_test),
        callbacks=[
            keras.callbacks.TensorBoard(log_dir),
            kdrop.callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
        ],
    )
    seconds = time.perf_counter() - start
    test_error = 100 * (1 - np.asarray(history.history["val_accuracy"]))
    test_loss = np.asarray(history.history["val_loss"])
    _, train_accuracy = model.evaluate(x_train, y_train, batch_size=256, verbose=0)
    return test_error, test_loss, 100 * (1 - train_accuracy), seconds


def _mean_std(values):
    return float(np.mean(values)), float(np.std(values))


def run(
    variants=VARIANTS,
    epochs=12,
    seeds=3,
    dataset="offline",
    out="logs/stochastic_depth",
    seed=0,
    batch_size=128,
    train_size=None,
    verbose=2,
    overwrite=False,
):
    """Trains every variant with `seeds` seeds; returns the summary rows.

    Writes `out/<variant>/seed_<s>/` (Keras's TensorBoard logs and every
    dropout layer's rate at each step, `dropout_rate/<layer>`),
    `out/test_error.png` and `out/test_loss.png` (per epoch, mean over the
    seeds with std error bars) and `out/summary.csv`.

    Args:
        variants: names from `VARIANTS`.
        epochs: int > 0, training epochs per run.
        seeds: int > 0, runs per variant, with seeds seed, seed + 1, ...
            (weights, masks; the data split is always `seed`'s).
        dataset, train_size, batch_size, verbose, overwrite: as in
            `kdrop.experiments.cnn_dropout.run`.
        out: output directory.
        seed: int >= 0, the first seed.

    Returns:
        A list of dicts, one per variant: variant, regularisation,
        test_error_mean, test_error_std (%), test_loss_mean, test_loss_std,
        train_error_mean (%), test_errors (per seed), seconds (per run,
        mean).
    """
    variants = common.check_names(variants, "variants", VARIANTS)
    seeds = validation.check_positive_int(seeds, "seeds")
    train, test, total_steps = common.prepare_cnn_runs(
        dataset, out, epochs, batch_size, seed, train_size, overwrite
    )
    rows, error_curves, loss_curves, error_bars, loss_bars = [], {}, {}, {}, {}
    epochs_axis = np.arange(1, epochs + 1)
    for variant in variants:
        print(f"\n== {variant}: {describe(variant)}, {total_steps} steps per run")
        runs = [
            _train(
                variant,
                run_seed,
                train,
                test,
                epochs,
                batch_size,
                total_steps,
                os.path.join(out, variant, f"seed_{run_seed}"),
                verbose,
            )
            for run_seed in range(seed, seed + seeds)
        ]
        errors, losses, train_errors, seconds = (np.array(part) for part in zip(*runs))
        error_curves[variant] = (epochs_axis, errors.mean(axis=0))
        error_bars[variant] = errors.std(axis=0)
        loss_curves[variant] = (epochs_axis, losses.mean(axis=0))
        loss_bars[variant] = losses.std(axis=0)
        error_mean, error_std = _mean_std(errors[:, -1])
        loss_mean, loss_std = _mean_std(losses[:, -1])
        rows.append(
            {
                "variant": variant,
                "regularisation": describe(variant),
                "test_error_mean": error_mean,
                "test_error_std": error_std,
                "test_loss_mean": loss_mean,
                "test_loss_std": loss_std,
                "train_error_mean": float(train_errors.mean()),
                "test_errors": [float(value) for value in errors[:, -1]],
                "seconds": round(float(seconds.mean()), 1),
            }
        )
    images = len(train[0])
    common.plot_lines(
        os.path.join(out, "test_error.png"),
        error_curves,
        "epoch",
        "test error (%), mean +- std over seeds",
        f"Residual convnet, {images} images, {seeds} seeds",
        errors=error_bars,
    )
    common.plot_lines(
        os.path.join(out, "test_loss.png"),
        loss_curves,
        "epoch",
        "test loss, mean +- std over seeds",
        f"Residual convnet, {images} images, {seeds} seeds",
        errors=loss_bars,
    )
    common.report(rows, out)
    print("Errors in %, of the final models in inference mode; mean +- std over seeds.")
    common.tensorboard_hint(out)
    return rows


def main(argv=None):
    parser = common.argument_parser(
        "stochastic_depth",
        __doc__,
        epochs=12,
        dataset=True,
        batch_size=128,
        events=True,
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=VARIANTS,
        help="which regularisations to train",
    )
    parser.add_argument(
        "--seeds",
        type=common.positive_int,
        default=3,
        help="runs per variant (seeds seed, seed + 1, ...)",
    )
    args = parser.parse_args(argv)
    return run(
        args.variants,
        args.epochs,
        args.seeds,
        args.dataset,
        args.out,
        args.seed,
        args.batch_size,
        overwrite=args.overwrite,
    )

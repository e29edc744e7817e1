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

import keras

import kdrop
from kdrop import schedules
from kdrop.experiments import cli, figures, training

VARIANTS = ("none", "drop_path", "drop_block", "both")
DEPTH = 3  # residual blocks
WIDTH = 16  # channels
FINAL_DROP_PATH_RATE = 0.5  # p_L of Huang et al. 2016
DROP_BLOCK_RATE = 0.1  # 1 - the final keep_prob 0.9 of Ghiasi et al. 2018
BLOCK_SIZE = 3
DROP_BLOCK_AFTER = (2, 3)  # blocks followed by a DropBlock2D
COLUMNS = ("test_error_%", "test_loss", "train_error_%", training.GAP)
SETTINGS = training.RunSettings(out="logs/stochastic_depth", epochs=10, seeds=3)
# The whole 60000-image training set and the 10000 test images.
FULL = dict(dataset="full", train_size=None)


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


def run(variants=VARIANTS, **options):
    """Trains every variant once per seed; returns the results.

    Writes `out/<variant>/seed_<s>/` (Keras's TensorBoard logs and every
    dropout layer's rate at each step, `rates/dropout_per_batch/<layer>`),
    `out/test_error.png` (test error and test loss per epoch, mean over
    seeds with a +- 1 std band; numbers in `out/curves.csv`),
    `out/summary.csv` (one row per variant and seed) and
    `out/aggregate.csv`.

    Args:
        variants: names from `VARIANTS`.
        **options: `training.RunSettings` fields (epochs, seeds, out, ...)
            that replace the defaults in `SETTINGS`.

    Returns:
        `(rows, summary)`: rows, one dict per variant and seed: variant,
        seed, regularisation, train_accuracy, test_accuracy,
        test_minus_train_error_%, test_error_%, test_loss, seconds;
        summary, one dict per variant: variant, seeds, `<c>_mean` and
        `<c>_std` for c in `COLUMNS`.
    """
    settings = SETTINGS.replace(**options)
    variants = cli.check_names(variants, "variants", VARIANTS)
    rows, curves = [], {}
    for run_seed, train, test, total_steps in settings.runs():
        for variant in variants:
            print(f"\n== {variant}, seed {run_seed}: {describe(variant)}")
            keras.utils.set_random_seed(run_seed)
            model = residual_convnet(variant, total_steps, run_seed)
            log_dir = settings.run_dir(variant, run_seed)
            callbacks = [
                keras.callbacks.TensorBoard(log_dir),
                kdrop.callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
                kdrop.callbacks.GeneralizationGap(log_dir),
            ]
            row, run_curves = training.train_classifier(
                model, train, test, settings, log_dir, callbacks
            )
            training.add_curves(
                curves, variant, run_curves, ("test error (%)", "test loss")
            )
            rows.append(
                {
                    "variant": variant,
                    "seed": run_seed,
                    "regularisation": describe(variant),
                    **row,
                }
            )
    figures.plot_bands(
        os.path.join(settings.out, "test_error.png"),
        curves,
        f"Residual convnet, {len(train[0])} training images",
    )
    summary = training.finish(
        settings,
        rows,
        "variant",
        COLUMNS,
        ("variant", "regularisation", "seed"),
        "Accuracies and losses of the final models, in inference mode.",
        optimizer="Adam",
    )
    return rows, summary


def main(argv=None):
    parser = cli.argument_parser("stochastic_depth", __doc__, SETTINGS, full=FULL)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=VARIANTS,
        help="which regularisations to train",
    )
    # The options are named like run's arguments.
    with cli.usage_errors(parser):
        return run(**cli.parse_options(parser, argv, FULL))

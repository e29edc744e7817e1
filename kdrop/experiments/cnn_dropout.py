"""The Simple MNIST convnet with and without Dropout(0.5): the main job.

Recreates the keras-io "Simple MNIST convnet": Conv2D 32 - MaxPool - Conv2D
64 - MaxPool - Flatten - Dropout(0.5) - Dense 10, Adam, batch 128, and the
test-error-vs-epoch comparison of Srivastava et al. (2014, Fig. 4), with
kdrop's layers: no dropout, inverted dropout, weight-scaled dropout, and
(with --variants) curriculum dropout rising to 0.5: Curriculum(0.5,
gamma = 6 / T) over the run's T optimizer steps, whose rate is 0.475 at
mid-training. Every variant is trained once per seed; the tables give the
mean +- std over seeds and the figure the mean with a band of +- 1 std.

The default run trains on 4000 images of the full MNIST (a stratified
subset drawn with the seed) for as many epochs as fit the 5-minute goal of
the default run on a 2-core CPU (docs/experiments.md, "The budget, and the
rule behind it"); its per-epoch curves use the first 1000 test images, its
final numbers all 10000. --full runs keras-io's recipe instead: the 60000
training images with 10 % held out for the per-epoch curves, 15 epochs,
then the test set.
"""

import os

import keras

import kdrop
from kdrop.experiments import cli, figures, models, training
from kdrop.layers.rate import follows_schedule

VARIANTS = ("none", "inverted", "weight_scaled", "scheduled")
DEFAULT_VARIANTS = ("none", "inverted", "weight_scaled")
# The default run (docs/experiments.md, "The budget, and the rule behind
# it"): 4000 training images of the full MNIST (stratified, drawn with the
# seed), the per-epoch curves on the first 1000 test images, the final
# numbers on all 10000; 25 epochs fit
# 3 variants x 3 seeds into 5 minutes on a 2-core CPU.
SETTINGS = training.RunSettings(
    out="logs/cnn_dropout",
    epochs=25,
    seeds=3,
    dataset="full",
    train_size=4000,
    curve_test_size=1000,
)
# keras-io's recipe: 60000 training images, 10 % held out for validation,
# batch 128, 15 epochs, Adam; then the 10000 test images.
FULL = dict(
    dataset="full",
    train_size=None,
    epochs=15,
    validation_split=0.1,
    curve_test_size=None,
)
COLUMNS = ("test_error_%", "test_loss", "train_error_%", training.GAP, "seconds")
# Each dropout variant against "none" on the final test error and test loss.
GOAL_VARIANTS = ("inverted", "weight_scaled")


def dropout_layer(variant, seed, total_steps):
    """The layer before the classifier for `variant` (None for "none")."""
    if variant == "none":
        return None
    if variant == "inverted":
        return kdrop.InvertedDropout(0.5, seed=seed, name="dropout")
    if variant == "weight_scaled":
        return kdrop.WeightScaledDropout(0.5, seed=seed, name="dropout")
    return kdrop.ScheduledDropout(
        models.curriculum_to_half(total_steps), seed=seed, name="dropout"
    )


def describe(layer):
    if layer is None:
        return "no dropout"
    if follows_schedule(layer):
        schedule = models.describe_schedule(layer.schedule)
        return f"{type(layer).__name__}({schedule})"
    return f"{type(layer).__name__}({layer.rate})"


def goal_verdicts(summary):
    """For each of `GOAL_VARIANTS` in the aggregate `summary`: whether its
    mean final test error and test loss are below `none`'s and its test
    loss's mean +- std interval lies entirely below `none`'s."""
    by_variant = {row["variant"]: row for row in summary}
    if "none" not in by_variant:
        return {}
    none = by_variant["none"]
    verdicts = {}
    for variant in GOAL_VARIANTS:
        if variant not in by_variant:
            continue
        row = by_variant[variant]
        verdicts[variant] = {
            "lower_test_error": row["test_error_%_mean"] < none["test_error_%_mean"],
            "lower_test_loss": row["test_loss_mean"] < none["test_loss_mean"],
            "test_loss_intervals_apart": row["test_loss_mean"] + row["test_loss_std"]
            < none["test_loss_mean"] - none["test_loss_std"],
        }
    return verdicts


def run(variants=DEFAULT_VARIANTS, **options):
    """Trains the CNN once per variant and seed; returns the results.

    Writes `out/<variant>/seed_<s>/` (Keras's TensorBoard callback and
    kdrop's ActivationSparsity, WeightHistograms and DropoutRateLogger),
    `out/curves.png` (test error, test loss, training error and training
    loss per epoch: mean over seeds and a +- 1 std band per variant) with
    its numbers in `out/curves.csv`, `out/summary.csv` (one row per variant
    and seed) and `out/aggregate.csv` (mean and std over seeds).

    Args:
        variants: names from `VARIANTS`: "none", "inverted"
            (InvertedDropout(0.5)), "weight_scaled" (WeightScaledDropout(0.5)),
            "scheduled" (ScheduledDropout(Curriculum(0.5, gamma)) with
            gamma = 6 / total steps: the rate is 0.475 at mid-training).
        **options: `training.RunSettings` fields (epochs, seeds, out, ...)
            that replace the defaults in `SETTINGS`.

    Returns:
        `(rows, summary)`: rows, one dict per variant and seed: variant,
        seed, dropout, train_accuracy, test_accuracy,
        test_minus_train_error_% (percentage points), train_error_%,
        test_error_%, test_loss and seconds (wall time of `fit`); summary,
        one dict per variant: variant, seeds, and `<c>_mean`, `<c>_std`
        for c in `COLUMNS`.
    """
    settings = SETTINGS.replace(**options)
    variants = cli.check_names(variants, "variants", VARIANTS)
    rows, curves = [], {}
    for run_seed, train, test, total_steps in settings.runs():
        for variant in variants:
            keras.utils.set_random_seed(run_seed)
            layer = dropout_layer(variant, run_seed, total_steps)
            print(
                f"\n== {variant}, seed {run_seed}: {describe(layer)}, "
                f"{settings.epochs} epochs of {total_steps // settings.epochs} steps"
            )
            row, run_curves = training.train_classifier(
                models.simple_mnist_convnet(layer),
                train,
                test,
                settings,
                settings.run_dir(variant, run_seed),
                histograms=settings.logs_histograms(run_seed),
            )
            rows.append(
                {
                    "variant": variant,
                    "seed": run_seed,
                    "dropout": describe(layer),
                    **row,
                }
            )
            training.add_curves(curves, variant, run_curves)
    figures.plot_bands(
        os.path.join(settings.out, "curves.png"),
        curves,
        f"Simple MNIST convnet, {len(train[0])} training images",
        log=not settings.keras_tensorboard_only,
    )
    summary = training.finish(
        settings,
        rows,
        "variant",
        COLUMNS,
        ("variant", "dropout", "seed"),
        "Final model in inference mode; train_error_% re-evaluates the "
        "training set without dropout (as Srivastava et al. 2014 do).",
        optimizer="Adam",
    )
    for variant, verdict in goal_verdicts(summary).items():
        holds = all(verdict.values())
        print(
            f"{variant} vs none: "
            + ", ".join(f"{name} {value}" for name, value in verdict.items())
            + f" -> goal {'holds' if holds else 'does not hold'}"
        )
    return rows, summary


def main(argv=None):
    parser = cli.argument_parser("cnn_dropout", __doc__, SETTINGS, full=FULL)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(DEFAULT_VARIANTS),
        choices=VARIANTS,
        help="which models to train",
    )
    parser.add_argument(
        "--keras-tensorboard-only",
        action="store_true",
        help="log with keras.callbacks.TensorBoard(histogram_freq=1) alone: "
        "no kdrop callback, HPARAMS table or aggregate over seeds (what "
        "Keras alone shows of the same run)",
    )
    # The options are named like run's arguments.
    with cli.usage_errors(parser):
        return run(**cli.parse_options(parser, argv, FULL))

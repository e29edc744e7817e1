"""The Simple MNIST convnet with and without Dropout(0.5): the main job.

Recreates the keras-io "Simple MNIST convnet"
(https://keras.io/examples/vision/mnist_convnet/): Conv2D 32
- MaxPool - Conv2D 64 - MaxPool - Flatten - Dropout(0.5) - Dense 10, Adam,
batch 128, 15 epochs, and the test-error-vs-epoch comparison of Srivastava
et al. (2014, Fig. 4), with kdrop's layers: no dropout, inverted dropout,
weight-scaled dropout, and curriculum dropout rising to 0.5:
Curriculum(0.5, gamma = 6 / T) over the run's T optimizer steps, whose rate
is 0.475 at mid-training (gamma = 0.0125 for 15 epochs of 4000 images in
batches of 128, T = 480).
"""

import os

import keras

import kdrop
from kdrop.experiments import common

VARIANTS = ("none", "inverted", "weight_scaled", "scheduled")
# Measured with plain keras.layers.Dropout on the same offline split, 15
# epochs on a CPU (the README's "reference" rows): (train accuracy, test
# accuracy).
REFERENCE = {"none": (0.992, 0.952), "Dropout(0.5)": (0.971, 0.962)}


def dropout_layer(variant, seed, total_steps):
    """The layer before the classifier for `variant` (None for "none")."""
    if variant == "none":
        return None
    if variant == "inverted":
        return kdrop.InvertedDropout(0.5, seed=seed, name="dropout")
    if variant == "weight_scaled":
        return kdrop.WeightScaledDropout(0.5, seed=seed, name="dropout")
    return kdrop.ScheduledDropout(
        common.curriculum_to_half(total_steps), seed=seed, name="dropout"
    )


def describe(layer):
    if layer is None:
        return "no dropout"
    if isinstance(layer, kdrop.ScheduledDropout):
        return f"ScheduledDropout({common.describe_schedule(layer.schedule)})"
    return f"{type(layer).__name__}({layer.rate})"


def run(
    variants=VARIANTS,
    epochs=15,
    dataset="offline",
    out="logs/cnn_dropout",
    seed=0,
    batch_size=128,
    train_size=None,
    verbose=2,
    overwrite=False,
):
    """Trains the CNN once per variant; returns the summary rows.

    Writes `out/<variant>/` (Keras's TensorBoard callback and kdrop's
    ActivationSparsity, WeightHistograms and DropoutRateLogger),
    `out/test_error.png` (test error % after each epoch, one line per
    variant) and `out/summary.csv`.

    Args:
        variants: names from `VARIANTS`: "none", "inverted"
            (InvertedDropout(0.5)), "weight_scaled" (WeightScaledDropout(0.5)),
            "scheduled" (ScheduledDropout(Curriculum(0.5, gamma)) with
            gamma = 6 / total steps: the rate is 0.475 at mid-training).
        epochs: int > 0, training epochs per variant.
        dataset: a `kdrop.datasets.load_mnist` source.
        out: output directory.
        seed: int >= 0, seed of the data split, the weights and the masks
            (every variant starts from the same weights).
        batch_size: int > 0.
        train_size: None, or train on the first `train_size` training
            images only.
        verbose: Keras `fit` verbosity (2: one line per epoch).
        overwrite: whether to delete the event files of a previous run in
            `out` (without it such an `out` is refused, see
            `common.prepare_out`).

    Returns:
        A list of dicts: variant, dropout, train_accuracy, test_accuracy,
        gap (train - test) and seconds (wall time of `fit`).
    """
    variants = common.check_names(variants, "variants", VARIANTS)
    train, test, total_steps = common.prepare_cnn_runs(
        dataset, out, epochs, batch_size, seed, train_size, overwrite
    )
    rows, curves = [], {}
    for variant in variants:
        keras.utils.set_random_seed(seed)
        layer = dropout_layer(variant, seed, total_steps)
        print(
            f"\n== {variant}: {describe(layer)}, {epochs} epochs of "
            f"{total_steps // epochs} steps"
        )
        model = common.simple_mnist_convnet(layer)
        row, curves[variant] = common.train_classifier(
            model, train, test, epochs, batch_size, os.path.join(out, variant), verbose
        )
        rows.append({"variant": variant, "dropout": describe(layer), **row})
    common.plot_lines(
        os.path.join(out, "test_error.png"),
        curves,
        "epoch",
        "test error (%, log scale)",
        f"Simple MNIST convnet, {len(train[0])} training images",
        yscale="log",
    )
    common.report(rows, out)
    print(
        "Accuracies of the final model in inference mode; the training set "
        "is re-evaluated without dropout (as Srivastava et al. 2014 do)."
    )
    print(
        "Reference, plain Keras on the offline split, 15 epochs: "
        + "; ".join(
            f"{name}: train {train:.1%}, test {test:.1%}"
            for name, (train, test) in REFERENCE.items()
        )
    )
    common.tensorboard_hint(out)
    return rows


def main(argv=None):
    parser = common.argument_parser(
        "cnn_dropout", __doc__, epochs=15, dataset=True, batch_size=128, events=True
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=VARIANTS,
        help="which models to train",
    )
    # The options are named like run's arguments.
    return run(**vars(parser.parse_args(argv)))

"""The CNN with Dropout(0.5) on MNIST, with and without dropout (main job).

Recreates the keras-io "Simple MNIST convnet" (seed article 004) and the
test-error-vs-epoch comparison of Srivastava et al. (2014, Fig. 4) with
kdrop's layers: no dropout, inverted dropout, weight-scaled dropout and a
curriculum schedule rising to 0.5.
"""

import os
import time

import keras
import numpy as np

import kdrop
from kdrop.experiments import common

VARIANTS = ("none", "inverted", "weight_scaled", "scheduled")
# Curriculum speed per optimizer step: on 4000 images (32 batches/epoch)
# the rate passes 0.4 after about 5 epochs and approaches 0.5 by epoch 10.
CURRICULUM_GAMMA = 0.01


def dropout_layer(variant, seed):
    if variant == "none":
        return None
    if variant == "inverted":
        return kdrop.InvertedDropout(0.5, seed=seed, name="dropout")
    if variant == "weight_scaled":
        return kdrop.WeightScaledDropout(0.5, seed=seed, name="dropout")
    if variant == "scheduled":
        return kdrop.ScheduledDropout(
            kdrop.schedules.Curriculum(0.5, CURRICULUM_GAMMA), seed=seed, name="dropout")
    raise ValueError(f"Unknown variant {variant!r}; choose from {', '.join(VARIANTS)}.")


def run(variants=VARIANTS, epochs=15, dataset="offline", out="logs/cnn_dropout", seed=0,
        batch_size=128, train_size=None, verbose=2):
    """Trains each variant; returns the summary rows (also in summary.csv).

    Args:
        variants: names from VARIANTS.
        epochs: training epochs per variant.
        dataset: a `kdrop.datasets.load_mnist` source.
        out: output directory; variant logs go to `out/<variant>/`.
        seed: seed of the data split, the weights and the masks.
        batch_size: training batch size.
        train_size: None, or use only the first `train_size` training images.
        verbose: Keras progress verbosity.
    """
    for variant in variants:
        dropout_layer(variant, seed)  # unknown names fail before any training
    (x_train, y_train), (x_test, y_test) = kdrop.datasets.load_mnist(dataset, seed=seed)
    if train_size is not None:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    os.makedirs(out, exist_ok=True)
    rows, curves = [], {}
    for variant in variants:
        print(f"\n== variant {variant}: {epochs} epochs on {len(x_train)} images")
        keras.utils.set_random_seed(seed)
        model = common.simple_mnist_convnet(dropout_layer(variant, seed))
        log_dir = os.path.join(out, variant)
        start = time.perf_counter()
        history = model.fit(
            x_train, y_train, batch_size=batch_size, epochs=epochs,
            validation_data=(x_test, y_test), verbose=verbose,
            callbacks=common.tensorboard_callbacks(log_dir, x_test[:256], y_test[:256]))
        seconds = time.perf_counter() - start
        test_error = 100 * (1 - np.asarray(history.history["val_accuracy"]))
        curves[variant] = (np.arange(1, epochs + 1), test_error)
        train_accuracy = common.accuracy(model, x_train, y_train)
        test_accuracy = common.accuracy(model, x_test, y_test)
        rows.append({
            "variant": variant,
            "train_accuracy": train_accuracy,
            "test_accuracy": test_accuracy,
            "gap": train_accuracy - test_accuracy,
            "seconds": f"{seconds:.1f}",
        })
    common.plot_lines(
        os.path.join(out, "test_error.png"), curves, "epoch", "test error (%)",
        f"Simple MNIST convnet, {len(x_train)} training images")
    table = common.write_table(rows, os.path.join(out, "summary.csv"))
    print("\n" + table)
    print("(train accuracy measured in inference mode on the whole training set)")
    print(f"\nView the logs: tensorboard --logdir {out}")
    return rows


def main(argv=None):
    parser = common.argument_parser("cnn_dropout", __doc__.splitlines()[0], epochs=15)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--dataset", default="offline",
                        help="offline (default), keras, fashion_mnist or a .npz path")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    run(args.variants, args.epochs, args.dataset, args.out, args.seed, args.batch_size)

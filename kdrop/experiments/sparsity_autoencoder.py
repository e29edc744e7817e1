"""Dropout makes features sparse (Srivastava et al. 2014, Fig. 8).

An autoencoder 784-256-784 with ReLU hidden units is trained on MNIST with
and without dropout 0.5 on the hidden units (WeightScaledDropout, the
paper's convention, by default; InvertedDropout with --dropout-mode
inverted, whose decoder sees the kept units doubled in training, which
halves the scale the hidden units settle at).
kdrop.callbacks.ActivationSparsity logs the hidden layer on the test images
after every epoch: mean activation, fraction of zeros, histogram. The paper
reports a mean hidden activation of about 2.0 without dropout and about 0.7
with it, and a sharp peak at zero in the histogram of activations with
dropout.
"""

import os

import keras

import kdrop
from kdrop import validation
from kdrop.experiments import common

MODELS = {"no dropout": 0.0, "dropout 0.5": 0.5}
DROPOUT_LAYERS = {
    "weight_scaled": kdrop.WeightScaledDropout,
    "inverted": kdrop.InvertedDropout,
}
PAPER_MEAN_ACTIVATION = {"no dropout": 2.0, "dropout 0.5": 0.7}


def autoencoder(rate, seed, mode="weight_scaled"):
    layers = [
        keras.Input((28, 28, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu", name="hidden"),
    ]
    if rate > 0:
        layers.append(DROPOUT_LAYERS[mode](rate, seed=seed, name="dropout"))
    layers += [
        keras.layers.Dense(784, activation="sigmoid"),
        keras.layers.Reshape((28, 28, 1)),
    ]
    model = keras.Sequential(layers)
    model.compile("adam", "binary_crossentropy")
    return model


def run(
    epochs=20,
    dataset="offline",
    out="logs/sparsity_autoencoder",
    seed=0,
    batch_size=100,
    train_size=None,
    mode="weight_scaled",
    verbose=2,
    overwrite=False,
):
    """Trains both autoencoders; returns the summary rows.

    Writes `out/no_dropout/` and `out/dropout/` (ActivationSparsity events),
    `out/hidden_activations.png` (per model: histogram of the units' mean
    activations, and the logged histogram of all activations) and
    `out/summary.csv`.

    Args:
        epochs: int > 0.
        dataset: a `kdrop.datasets.load_mnist` source.
        out: output directory.
        seed: int >= 0, seed of the data split, the weights and the masks.
        batch_size: int > 0.
        train_size: None, or train on the first `train_size` images only.
        mode: "weight_scaled" (WeightScaledDropout) or "inverted".
        verbose: Keras `fit` verbosity.
        overwrite: whether to delete the event files of a previous run in
            `out` (without it such an `out` is refused, see
            `common.prepare_out`).

    Returns:
        A list of dicts: model, mean_activation and fraction_zero (logged
        by ActivationSparsity after the last epoch, on the test images),
        paper_mean_activation, test_loss (reconstruction cross-entropy).
    """
    validation.check_positive_int(epochs, "epochs")
    validation.check_positive_int(batch_size, "batch_size")
    seed = validation.check_non_negative_int(seed, "seed")
    validation.check_choice(mode, "mode", tuple(DROPOUT_LAYERS))
    (x_train, _), (x_test, _) = common.load_data(dataset, seed, train_size)
    common.prepare_out(out, overwrite)
    rows, unit_means, histograms = [], {}, {}
    for label, rate in MODELS.items():
        print(f"\n== {label}" + (f" ({mode})" if rate else ""))
        keras.utils.set_random_seed(seed)
        model = autoencoder(rate, seed, mode)
        log_dir = os.path.join(out, "dropout" if rate else "no_dropout")
        model.fit(
            x_train,
            x_train,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=[
                kdrop.callbacks.ActivationSparsity(
                    log_dir, data=x_test, layers=["hidden"]
                )
            ],
        )
        _, means = common.read_logged(log_dir, "mean_activation/hidden")
        _, zeros = common.read_logged(log_dir, "sparsity/hidden")
        _, histograms[label] = common.read_logged(log_dir, "activations/hidden")
        encoder = keras.Model(model.inputs, model.get_layer("hidden").output)
        unit_means[label] = encoder.predict(x_test, verbose=0).mean(axis=0)
        rows.append(
            {
                "model": label,
                "mean_activation": means[-1],
                "fraction_zero": zeros[-1],
                "paper_mean_activation": PAPER_MEAN_ACTIVATION[label],
                "test_loss": float(model.evaluate(x_test, x_test, verbose=0)),
            }
        )
    _plot(
        os.path.join(out, "hidden_activations.png"),
        unit_means,
        {label: logged[-1] for label, logged in histograms.items()},
        {row["model"]: row["fraction_zero"] for row in rows},
    )
    common.report(rows, out)
    print(
        "mean_activation / fraction_zero: logged by ActivationSparsity after the "
        f"last epoch, hidden layer, {len(x_test)} test images."
    )
    return rows


def _plot(path, unit_means, histograms, zero_fractions):
    """Srivastava Fig. 8's panels per model: histogram of the units' mean
    activations (top) and histogram of all activations (bottom)."""
    with common.figure(path, ncols=len(unit_means), nrows=2, size=(10, 6)) as (_, axes):
        for column, label in enumerate(unit_means):
            top, bottom = axes[0, column], axes[1, column]
            top.hist(unit_means[label], bins=30, color="darkorange")
            top.set(
                title=f"{label}: mean activation {unit_means[label].mean():.2f}",
                xlabel="mean activation of a hidden unit",
                ylabel="units",
            )
            left, right, counts = histograms[label].T
            bottom.bar(
                left, counts, width=right - left, align="edge", color="steelblue"
            )
            bottom.set(
                yscale="log",
                xlabel="hidden activation",
                ylabel="count (log scale)",
                title=f"{label}: {zero_fractions[label]:.0%} of activations are 0",
            )


def main(argv=None):
    parser = common.argument_parser(
        "sparsity_autoencoder",
        __doc__,
        epochs=20,
        dataset=True,
        batch_size=100,
        events=True,
    )
    parser.add_argument(
        "--dropout-mode",
        choices=tuple(DROPOUT_LAYERS),
        default="weight_scaled",
        help="dropout convention",
    )
    args = parser.parse_args(argv)
    return run(
        args.epochs,
        args.dataset,
        args.out,
        args.seed,
        args.batch_size,
        mode=args.dropout_mode,
        overwrite=args.overwrite,
    )

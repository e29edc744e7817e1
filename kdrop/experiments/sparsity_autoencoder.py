"""Dropout makes features sparse (Srivastava 2014, Fig. 8).

An autoencoder 784-256-784 with ReLU hidden units is trained on MNIST with
and without dropout 0.5 on the hidden layer. The paper reports a mean hidden
activation of about 2.0 without dropout and about 0.7 with it, and a sharp
peak at zero in the histogram with dropout. The hidden layer is logged with
kdrop.callbacks.ActivationSparsity and the histograms are plotted side by
side.
"""

import os

import keras
import numpy as np

import kdrop
from kdrop.experiments import common


def autoencoder(rate, seed):
    layers = [
        keras.Input((28, 28, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu", name="hidden"),
    ]
    if rate > 0:
        layers.append(kdrop.InvertedDropout(rate, seed=seed, name="dropout"))
    layers += [keras.layers.Dense(784, activation="sigmoid"), keras.layers.Reshape((28, 28, 1))]
    model = keras.Sequential(layers)
    model.compile("adam", "binary_crossentropy")
    return model


def run(epochs=20, out="logs/sparsity_autoencoder", seed=0, dataset="offline", verbose=2):
    (x_train, _), (x_test, _) = kdrop.datasets.load_mnist(dataset, seed=seed)
    os.makedirs(out, exist_ok=True)
    rows, activations = [], {}
    for rate in (0.0, 0.5):
        label = "dropout 0.5" if rate else "no dropout"
        keras.utils.set_random_seed(seed)
        model = autoencoder(rate, seed)
        log_dir = os.path.join(out, "dropout" if rate else "no_dropout")
        model.fit(x_train, x_train, batch_size=100, epochs=epochs, verbose=verbose, callbacks=[
            kdrop.callbacks.ActivationSparsity(log_dir, data=x_test, layers=["hidden"])])
        encoder = keras.Model(model.inputs, model.get_layer("hidden").output)
        hidden = encoder.predict(x_test, verbose=0)
        activations[label] = hidden.ravel()
        rows.append({"model": label, "mean_activation": float(hidden.mean()),
                     "fraction_zero": float(np.mean(hidden <= 0)),
                     "test_loss": float(model.evaluate(x_test, x_test, verbose=0))})
    _plot(os.path.join(out, "hidden_activations.png"), activations)
    print(common.write_table(rows, os.path.join(out, "summary.csv")))
    print("Paper (Fig. 8): mean activation ~2.0 without dropout, ~0.7 with dropout 0.5.")
    return rows


def _plot(path, activations):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(activations), figsize=(10, 3.5), sharey=True)
    for axis, (label, values) in zip(axes, activations.items()):
        axis.hist(values, bins=50, color="steelblue")
        axis.set_title(f"{label}: mean {values.mean():.2f}")
        axis.set_xlabel("hidden activation")
        axis.set_yscale("log")
    axes[0].set_ylabel("count (log scale)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = common.argument_parser("sparsity_autoencoder", __doc__.splitlines()[0], epochs=20)
    parser.add_argument("--dataset", default="offline")
    args = parser.parse_args(argv)
    return run(args.epochs, args.out, args.seed, args.dataset)

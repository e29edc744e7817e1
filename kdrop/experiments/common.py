"""What the experiment scripts share: CLI, the CNN, callbacks, plots, tables."""

import argparse
import csv
import os

import keras
import numpy as np

import kdrop


def argument_parser(script, description, epochs):
    """An argparse parser with the options every script has (--epochs only
    for scripts that train: pass epochs=None for the others)."""
    parser = argparse.ArgumentParser(prog=f"scripts/{script}.py", description=description)
    if epochs is not None:
        parser.add_argument(
            "--epochs", type=int, default=epochs, help=f"training epochs (default {epochs})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--out", default=os.path.join("logs", script),
        help=f"output directory (default logs/{script}/)")
    return parser


def simple_mnist_convnet(dropout=None):
    """keras-io "Simple MNIST convnet", with `dropout` before the classifier."""
    layers = [
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
    ]
    if dropout is not None:
        layers.append(dropout)
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def tensorboard_callbacks(log_dir, x_probe, y_probe, dropout_update_freq="epoch"):
    """Keras's TensorBoard callback and every kdrop logging callback."""
    return [
        keras.callbacks.TensorBoard(log_dir),
        kdrop.callbacks.ActivationSparsity(log_dir, data=x_probe),
        kdrop.callbacks.WeightHistograms(log_dir, data=(x_probe, y_probe)),
        kdrop.callbacks.DropoutRateLogger(log_dir, update_freq=dropout_update_freq),
    ]


def accuracy(model, x, y, batch_size=256):
    """Classification accuracy in inference mode."""
    probabilities = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=-1) == y))


def plot_lines(path, series, xlabel, ylabel, title, hlines=None):
    """Writes a line plot: `series` maps a label to (x values, y values)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        axes.plot(xs, ys, label=label, marker="o" if len(xs) < 30 else None, markersize=3)
    for label, value in (hlines or {}).items():
        axes.axhline(value, linestyle="--", color="black", label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_table(rows, csv_path=None):
    """Writes `rows` (dicts) as CSV if asked, and returns them as a text table."""
    columns = list(rows[0])
    if csv_path is not None:
        with open(csv_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    def cell(value):
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    table = [columns] + [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

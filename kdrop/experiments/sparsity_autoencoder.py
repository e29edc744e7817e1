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
dropout. It also draws the features the 256 hidden units learned (Fig.
7): each unit's 784 encoder weights as a 28x28 tile, in a 16x16 grid,
without and with dropout, as a PNG and as an image in TensorBoard. Each
model is trained once per seed; the table gives mean +- std over seeds.
"""

import io
import math
import os

import keras
import numpy as np

import kdrop
from kdrop import optional, validation
from kdrop.experiments import cli, events, figures, training
from kdrop.tensorboard.writer import SummaryWriter, prepare_log_dir

MODELS = {"no dropout": 0.0, "dropout 0.5": 0.5}
DROPOUT_BY_MODE = {
    "weight_scaled": kdrop.WeightScaledDropout,
    "inverted": kdrop.InvertedDropout,
}
PAPER_MEAN_ACTIVATION = {"no dropout": 2.0, "dropout 0.5": 0.7}
COLUMNS = ("mean_activation", "fraction_zero", "test_loss")
HPARAMS_METRICS = {
    "mean_activation": "Mean hidden activation on the test images after the "
    "last epoch (inference mode).",
    "fraction_zero": "Fraction of hidden activations that are 0 on the test "
    "images after the last epoch (inference mode).",
    "test_loss": "Test reconstruction cross-entropy of the final model.",
}
SETTINGS = training.RunSettings(
    out="logs/sparsity_autoencoder", epochs=20, seeds=3, batch_size=100
)
# The whole 60000-image training set and the 10000 test images.
FULL = dict(dataset="full", train_size=None)
FEATURES_TAG = "features/hidden"
TILE = 28  # pixels per side of a unit's weight tile
GRID_COLUMNS = 16  # tiles per row: 256 units -> 16 x 16


def autoencoder(rate, seed, mode="weight_scaled"):
    layers = [
        keras.Input((28, 28, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu", name="hidden"),
    ]
    if rate > 0:
        layers.append(DROPOUT_BY_MODE[mode](rate, seed=seed, name="dropout"))
    layers += [
        keras.layers.Dense(784, activation="sigmoid"),
        keras.layers.Reshape((28, 28, 1)),
    ]
    model = keras.Sequential(layers)
    model.compile("adam", "binary_crossentropy")
    return model


def feature_grid(kernel, columns=GRID_COLUMNS, pad=1):
    """A (784, units) encoder kernel -> one grayscale image in [0, 1]: unit
    i's incoming weights as a 28x28 tile, scaled by its own largest |weight|
    (0 -> 0.5, the largest |weight| -> 0 or 1), tiles in rows of `columns`,
    `pad` white pixels apart."""
    kernel = np.asarray(kernel, dtype=float)
    units = kernel.shape[1]
    tiles = kernel.T.reshape(units, TILE, TILE)
    scale = np.abs(tiles).max(axis=(1, 2), keepdims=True)
    tiles = 0.5 + 0.5 * tiles / np.where(scale > 0, scale, 1)
    rows = math.ceil(units / columns)
    step = TILE + pad
    grid = np.ones((rows * step + pad, columns * step + pad))
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top, left = pad + row * step, pad + column * step
        grid[top : top + TILE, left : left + TILE] = tile
    return grid


def _png(image):
    image_module = optional.require("matplotlib.image", "The experiment scripts")
    buffer = io.BytesIO()
    image_module.imsave(buffer, image, cmap="gray", vmin=0, vmax=1, format="png")
    return buffer.getvalue()


def log_features(log_dir, grid, step, label):
    """Writes `grid` to `log_dir/train` as a TensorBoard image `FEATURES_TAG`."""
    writer = SummaryWriter(prepare_log_dir(log_dir))
    writer.image(
        FEATURES_TAG,
        _png(grid),
        step,
        description=f"{label}: each hidden unit's 784 encoder weights as a "
        "28x28 tile (gray = 0, each tile scaled by its largest |weight|)",
    )
    writer.close()


def run(mode="weight_scaled", **options):
    """Trains both autoencoders once per seed; returns the results.

    Writes `out/<no_dropout|dropout_0.5>/seed_<s>/` (ActivationSparsity
    events, the learned features as the image `features/hidden`, and the
    run's hyperparameters and final numbers for the HPARAMS dashboard),
    `out/hidden_activations.png` (per model, first seed: histogram of the
    units' mean activations, and the logged histogram of all activations),
    `out/features.png` (the first seed's learned features, Fig. 7),
    `out/summary.csv` (one row per model and seed) and `out/aggregate.csv`.

    Args:
        mode: "weight_scaled" (WeightScaledDropout) or "inverted".
        **options: `training.RunSettings` fields (epochs, seeds, out, ...)
            that replace the defaults in `SETTINGS`.

    Returns:
        `(rows, summary)`: rows, one dict per model and seed: model, seed,
        mean_activation and fraction_zero (logged by ActivationSparsity
        after the last epoch, on the test images), paper_mean_activation,
        test_loss (reconstruction cross-entropy); summary, one dict per
        model: model, seeds, `<c>_mean` and `<c>_std` for c in `COLUMNS`.
    """
    settings = SETTINGS.replace(**options)
    settings.test_set_only("sparsity_autoencoder")
    validation.check_choice(mode, "mode", tuple(DROPOUT_BY_MODE))
    rows, unit_means, histograms, features = [], {}, {}, {}
    for run_seed, (x_train, _), (x_test, _) in settings.data():
        for label, rate in MODELS.items():
            print(
                f"\n== {label}" + (f" ({mode})" if rate else "") + f", seed {run_seed}"
            )
            keras.utils.set_random_seed(run_seed)
            model = autoencoder(rate, run_seed, mode)
            log_dir = settings.run_dir(label, run_seed)
            model.fit(
                x_train,
                x_train,
                batch_size=settings.batch_size,
                epochs=settings.epochs,
                verbose=settings.verbose,
                callbacks=[
                    kdrop.callbacks.ActivationSparsity(
                        log_dir, data=x_test, layers=["hidden"]
                    )
                ],
            )
            grid = feature_grid(model.get_layer("hidden").kernel)
            log_features(log_dir, grid, settings.epochs - 1, label)
            _, means = events.read_logged(log_dir, "statistics/mean_activation/hidden")
            _, zeros = events.read_logged(log_dir, "statistics/sparsity/hidden")
            if run_seed == settings.seed_values[0]:
                _, logged = events.read_logged(
                    log_dir, "value_histograms/activations/hidden"
                )
                histograms[label], features[label] = logged[-1], grid
                encoder = keras.Model(model.inputs, model.get_layer("hidden").output)
                unit_means[label] = encoder.predict(x_test, verbose=0).mean(axis=0)
            rows.append(
                {
                    "model": label,
                    "seed": run_seed,
                    "mean_activation": means[-1],
                    "fraction_zero": zeros[-1],
                    "paper_mean_activation": PAPER_MEAN_ACTIVATION[label],
                    "test_loss": float(model.evaluate(x_test, x_test, verbose=0)),
                }
            )
    first = [row for row in rows if row["seed"] == settings.seed_values[0]]
    _plot(
        os.path.join(settings.out, "hidden_activations.png"),
        unit_means,
        histograms,
        {row["model"]: row["fraction_zero"] for row in first},
    )
    _plot_features(os.path.join(settings.out, "features.png"), features)
    summary = training.finish(
        settings,
        rows,
        "model",
        COLUMNS,
        ("model", "seed"),
        "mean_activation / fraction_zero: logged by ActivationSparsity after the "
        f"last epoch, hidden layer, {len(x_test)} test images. Paper: mean "
        "activation about 2.0 without dropout, 0.7 with dropout 0.5.",
        HPARAMS_METRICS,
        dropout=DROPOUT_BY_MODE[mode].__name__,
        optimizer="Adam",
    )
    return rows, summary


def _plot_features(path, grids):
    """Srivastava Fig. 7: the learned features side by side."""
    with figures.figure(
        path,
        ncols=len(grids),
        size=(6 * len(grids), 6.4),
        description="Features learned by the autoencoder's hidden units "
        "(first seed): each tile is one unit's input weights as an image.",
    ) as (_, axes):
        for axis, (label, grid) in zip(np.atleast_1d(axes), grids.items()):
            axis.imshow(grid, cmap="gray", vmin=0, vmax=1)
            axis.set_axis_off()
            axis.set_title(f"features learned, {label}")


def _plot(path, unit_means, histograms, zero_fractions):
    """Srivastava Fig. 8's panels per model (first seed): histogram of the
    units' mean activations (top) and histogram of all activations
    (bottom); returns the (closed) matplotlib figure."""
    with figures.figure(
        path,
        ncols=len(unit_means),
        nrows=2,
        size=(10, 6),
        description="Per model (first seed): histogram of the hidden units' "
        "mean activations (top) and of all hidden activations (bottom, log "
        "scale) on the test images; the panels of a row share their axes.",
        # The models are compared row by row: the same x and y ranges.
        sharex="row",
        sharey="row",
        # A 2 x 1 grid too (one model), so axes[row, column] always works.
        squeeze=False,
    ) as (fig, axes):
        # One set of bins for every model, so the bars compare too.
        highest = max(float(np.max(means)) for means in unit_means.values())
        bins = np.linspace(0.0, highest or 1.0, 31)
        for column, label in enumerate(unit_means):
            top, bottom = axes[0, column], axes[1, column]
            top.hist(unit_means[label], bins=bins, color="darkorange")
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
    return fig


def main(argv=None):
    parser = cli.argument_parser("sparsity_autoencoder", __doc__, SETTINGS, full=FULL)
    parser.add_argument(
        "--dropout-mode",
        choices=tuple(DROPOUT_BY_MODE),
        default="weight_scaled",
        help="dropout convention",
    )
    with cli.usage_errors(parser):
        options = cli.parse_options(parser, argv, FULL)
        return run(mode=options.pop("dropout_mode"), **options)

"""MNIST MLPs with and without dropout (Srivastava et al. 2014, Fig. 4).

Fully connected ReLU networks of several architectures ("2x1024": two
hidden layers of 1024 units) are trained with and without dropout, with
the paper's recipe: dropout 0.2 on the inputs and 0.5 on every hidden
layer (InvertedDropout), max-norm 3 on every unit's incoming weights
(keras.constraints.MaxNorm), batch 100, SGD with momentum
(kdrop.optimizers.SGD, learning rate 0.05) whose momentum rises linearly
from 0.5 to 0.9 over the first 10 % of the steps (kdrop.schedules.Linear
applied by kdrop.callbacks.LRMomentumScheduler, the paper's momentum
warm-up). The networks without dropout have the same constraint and
optimizer, so dropout is the only difference. Each model is trained once
per seed; the figure shows the test error per epoch, one colour per
architecture, dashed without dropout, the mean over seeds with a +- 1 std
band. The paper's Fig. 4 shows every architecture's test error lower with
dropout, on the full MNIST.
"""

import os

import keras

import kdrop
from kdrop.experiments import cli, figures, training

DEFAULT_ARCHITECTURES = ("2x512", "3x512", "2x1024")
SETTINGS = training.RunSettings(
    out="logs/mlp_dropout", epochs=23, seeds=2, batch_size=100
)
# Srivastava et al. 2014's MNIST network (ReLU, 3 x 1024) on the 60000 /
# 10000 images, with the default recipe; as many epochs as are practical on
# a CPU (the paper trains for hundreds).
FULL = dict(dataset="full", train_size=None, architectures=("3x1024",), epochs=50)
LEARNING_RATE = 0.05
MOMENTUM = (0.5, 0.9)  # start, end of the warm-up ramp
WARMUP_FRACTION = 0.1
COLUMNS = ("test_error_%", "test_loss", "train_error_%", "seconds")


def parse_architecture(name):
    """ "2x1024" -> (1024, 1024): hidden layers x units, both ints > 0."""
    if not isinstance(name, str):
        raise TypeError(
            "`architectures` must hold strings '<layers>x<units>', e.g. '2x1024'. "
            f"Received: {name!r} of type {type(name).__name__}."
        )
    try:
        layers, units = (int(part) for part in name.split("x"))
    except ValueError:
        layers = units = 0
    if layers < 1 or units < 1:
        raise ValueError(
            "`architectures` must name hidden layers as '<layers>x<units>' with "
            f"two ints > 0, e.g. '2x1024'. Received: {name!r}."
        )
    return (units,) * layers


def mlp(hidden, dropout, seed):
    """784 - `hidden` ReLU layers - 10 softmax, MaxNorm(3) on every kernel,
    with InvertedDropout 0.2 on the inputs and 0.5 after each hidden layer
    when `dropout`."""

    def drop(rate, index):
        return [kdrop.InvertedDropout(rate, seed=seed + index)] if dropout else []

    layers = [keras.Input((28, 28, 1)), keras.layers.Flatten(), *drop(0.2, 0)]
    for index, units in enumerate(hidden, start=1):
        layers.append(
            keras.layers.Dense(
                units,
                activation="relu",
                kernel_constraint=keras.constraints.MaxNorm(3),
            )
        )
        layers += drop(0.5, index)
    layers.append(
        keras.layers.Dense(
            10, activation="softmax", kernel_constraint=keras.constraints.MaxNorm(3)
        )
    )
    model = keras.Sequential(layers)
    model.compile(
        kdrop.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM[0]),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def model_name(architecture, dropout):
    return f"{architecture} {'dropout' if dropout else 'no dropout'}"


def run(architectures=DEFAULT_ARCHITECTURES, **options):
    """Trains every architecture with and without dropout, once per seed.

    Writes `out/<architecture>_<dropout|no_dropout>/seed_<s>/` (Keras's
    TensorBoard callback; learning rate and momentum per step),
    `out/test_error.png` (test error and test loss per epoch, mean over
    seeds and a +- 1 std band) with its numbers in `out/curves.csv`,
    `out/summary.csv` (one row per model and seed) and `out/aggregate.csv`.

    Args:
        architectures: names "<hidden layers>x<units>", e.g. "2x1024".
        **options: `training.RunSettings` fields (epochs, seeds, out, ...)
            that replace the defaults in `SETTINGS`.

    Returns:
        `(rows, summary)`: rows, one dict per model and seed: model,
        architecture, dropout, seed, train_accuracy (inference mode),
        test_accuracy, test_minus_train_error_%, test_error_%, test_loss,
        seconds; summary, one dict per model: model, seeds, `<c>_mean` and
        `<c>_std` for c in `COLUMNS`.
    """
    settings = SETTINGS.replace(**options)
    architectures = (
        [architectures] if isinstance(architectures, str) else list(architectures)
    )
    hidden_layers = {name: parse_architecture(name) for name in architectures}
    if not architectures or len(hidden_layers) != len(architectures):
        raise ValueError(
            "`architectures` must name at least one architecture, without "
            f"repeats. Received: architectures={architectures}."
        )
    styles, rows, curves = {}, [], {}
    for run_seed, train, test, total_steps in settings.runs():
        momentum = kdrop.schedules.Linear(
            *MOMENTUM, max(1, round(WARMUP_FRACTION * total_steps))
        )
        for index, (architecture, hidden) in enumerate(hidden_layers.items()):
            for dropout in (False, True):
                name = model_name(architecture, dropout)
                styles[name] = {
                    "color": f"C{index}",
                    "linestyle": "-" if dropout else "--",
                }
                print(f"\n== {name}, seed {run_seed}")
                keras.utils.set_random_seed(run_seed)
                log_dir = settings.run_dir(name, run_seed)
                row, run_curves = training.train_classifier(
                    mlp(hidden, dropout, run_seed),
                    train,
                    test,
                    settings,
                    log_dir,
                    callbacks=[
                        keras.callbacks.TensorBoard(log_dir),
                        kdrop.callbacks.LRMomentumScheduler(
                            momentum=momentum, update_freq="batch", log_dir=log_dir
                        ),
                        kdrop.callbacks.GeneralizationGap(log_dir),
                    ],
                )
                rows.append(
                    {
                        "model": name,
                        "architecture": architecture,
                        "dropout": dropout,
                        "seed": run_seed,
                        **row,
                    }
                )
                training.add_curves(
                    curves, name, run_curves, ("test error (%)", "test loss")
                )
    figures.plot_bands(
        os.path.join(settings.out, "test_error.png"),
        curves,
        f"MNIST MLPs (dashed: no dropout), {len(train[0])} training images",
        styles,
    )
    summary = training.finish(
        settings,
        rows,
        "model",
        COLUMNS,
        ("model", "architecture", "dropout", "seed"),
        "Final models in inference mode; train_error_% re-evaluates the "
        "training set without dropout.",
        optimizer=f"SGD(learning_rate={LEARNING_RATE}, momentum "
        f"{MOMENTUM[0]} -> {MOMENTUM[1]})",
    )
    return rows, summary


def main(argv=None):
    parser = cli.argument_parser("mlp_dropout", __doc__, SETTINGS, full=FULL)
    parser.add_argument(
        "--architectures",
        nargs="+",
        default=list(DEFAULT_ARCHITECTURES),
        help="hidden layers as <layers>x<units>, e.g. 2x1024 3x1024 2x2048",
    )
    # The options are named like run's arguments.
    with cli.usage_errors(parser):
        return run(**cli.parse_options(parser, argv, FULL))

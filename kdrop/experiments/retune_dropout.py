"""Dropout for a model you did not write: early and late dropout by surgery.

The main job's CNN (the keras-io "Simple MNIST convnet", built without
dropout, as a model handed over without any) gets dropout before its
classifier from `kdrop.add_dropout`, with a schedule of Liu et al. (2023,
"Dropout Reduces Underfitting"):

- late: trained without dropout for the first `switch_epoch` epochs, then
  converted with `add_dropout(model, Late(rate, from_step=S),
  before="classifier")` (S = the optimizer steps taken so far, the layer's
  step counter set to S, the optimizer state carried over) and trained on
  to the end;
- early: `add_dropout(model, Early(early_rate, until_step=U),
  before="classifier")` on the freshly built model (same initial weights),
  the rate decaying linearly to 0 at step U, Liu et al.'s 50 of 300
  epochs, then none;

against the CNN with Dropout(rate) from the start ("standard") and without
dropout ("none"). Every variant of a seed has the same data, the same
initial weights and the same number of optimizer steps; the tables give the
mean +- std over seeds and the figure the mean with a band of +- 1 std.

The default run trains on 4000 images of the full MNIST (a stratified
subset drawn with the seed) for as many epochs as fit the 5-minute goal of
the default run on a 2-core CPU (docs/experiments.md, "The budget, and the
rule behind it"); its per-epoch curves use the first 1000 test images, its
final numbers all 10000. --full trains on the 60000 training images for
keras-io's 15 epochs.
"""

import os
import time

import keras
import numpy as np

import kdrop
from kdrop.callbacks.base import LoggingCallback
from kdrop.experiments import cli, cnn_dropout, figures, models, training

VARIANTS = ("none", "standard", "early", "late")
# The default run (docs/models_you_did_not_write.md, "Retuning the main
# job's CNN"): the main job's data, 4000 training images of the full MNIST,
# curves on the first 1000 test images, final numbers on all 10000; 18
# epochs fit 4 variants x 3 seeds into 5 minutes on a 2-core CPU (the main
# job's budget rule).
SETTINGS = cnn_dropout.SETTINGS.replace(out="logs/retune_dropout", epochs=18)
# The 60000 training images for keras-io's 15 epochs (late dropout from
# epoch 7 on); curves on the first 1000 test images, as the default.
FULL = dict(dataset="full", train_size=None, epochs=15)
RATE = 0.5  # standard and late dropout: the main job's Dropout(0.5)
# Liu et al.'s early dropout on ImageNet: rate 0.1 (a fifth of the 0.5
# above), decaying linearly to 0 over the first 50 of 300 epochs.
EARLY_RATE = 0.1
EARLY_FRACTION = 50 / 300
COLUMNS = ("test_error_%", "test_loss", "train_error_%", "train_loss", training.GAP)
DROPOUT_NAME = "dropout_before_classifier"  # the layer add_dropout inserts
NOTE = (
    "Final model in inference mode; train_error_% re-evaluates the training "
    "set without dropout. Late dropout's optimizer state (Adam's moments, "
    "step count) is carried over the conversion."
)


class NoDropoutRateLogger(LoggingCallback):
    """Logs rate 0 under DropoutRateLogger's tags for a model that has no
    dropout yet (late dropout's first phase), so that a run's
    `rates/dropout_per_batch/<name>` curve covers every step: before each
    training step at the global step, and at each epoch end at the epoch
    index, as `kdrop.callbacks.DropoutRateLogger(update_freq="batch")` does
    for the layer `name` once it exists."""

    def __init__(self, log_dir, name):
        super().__init__(log_dir)
        self.name = name

    def on_train_batch_begin(self, batch, logs=None):
        self.write_scalar(
            f"rates/dropout_per_batch/{self.name}", 0.0, self.global_step(batch)
        )
        self.flush_writes()

    def on_epoch_end(self, epoch, logs=None):
        self.write_scalar(f"rates/dropout/{self.name}", 0.0, epoch)
        self.flush_writes()
        super().on_epoch_end(epoch, logs)


def carry_optimizer_state(source, target):
    """Gives `target`'s optimizer (the fresh one `kdrop.add_dropout`
    compiles it with) the state of `source`'s: step count, learning rate
    and Adam's moments, variable by variable.

    Keras's optimizer is tied to the variables it was built for, so the
    converted model cannot take `source.optimizer` itself; the two models'
    trainable variables are the same layers' in the same order (the
    inserted dropout has none), checked here by layer/variable name and
    shape.
    """
    old, new = source.trainable_variables, target.trainable_variables
    names = [[v.path.split("/")[-2:] for v in vs] for vs in (old, new)]
    if names[0] != names[1] or [v.shape for v in old] != [v.shape for v in new]:
        raise ValueError(
            "The converted model's trainable variables are not the original's: "
            f"{names[1]} against {names[0]}."
        )
    optimizer = target.optimizer
    if not optimizer.built:
        optimizer.build(new)
    pairs = list(zip(source.optimizer.variables, optimizer.variables, strict=True))
    for from_variable, to_variable in pairs:
        to_variable.assign(from_variable)
    return target


def convert_late(model, rate, switch_step, seed):
    """`model` (compiled, trained for `switch_step` optimizer steps) with
    dropout before its classifier following `Late(rate, from_step=
    switch_step)`, its step counter at `switch_step` (the schedule counts
    the run's steps) and `model`'s optimizer state: training goes on from
    where it stopped, now with dropout."""
    converted = kdrop.add_dropout(
        model,
        kdrop.schedules.Late(rate, from_step=switch_step),
        before="classifier",
        seed=seed,
    )
    converted.get_layer(DROPOUT_NAME).step = switch_step
    return carry_optimizer_state(model, converted)


def early_dropout(model, rate, until_step, seed):
    """`model` with dropout before its classifier following `Early(rate,
    until_step)`: linearly from `rate` to 0 at `until_step`, then none."""
    return kdrop.add_dropout(
        model,
        kdrop.schedules.Early(rate, until_step=until_step),
        before="classifier",
        seed=seed,
    )


def describe(model, variant, switch_epoch):
    """The dropout of `model` (the final model of `variant`), in words."""
    if variant == "none":
        return "no dropout"
    layer = model.layers[-2]
    if getattr(layer, "schedule", None) is None:
        return f"{type(layer).__name__}({layer.rate})"
    text = f"add_dropout({models.describe_schedule(layer.schedule)})"
    return text + (f" at epoch {switch_epoch}" if variant == "late" else "")


def _fit(model, train, test, settings, log_dir, epochs, initial_epoch=0, extra=()):
    """One `fit` of `model` from `initial_epoch` to `epochs`, the test
    curve images as validation data, with every logging callback; returns
    the Keras history dict."""
    (x_train, y_train), (x_test, y_test) = train, test
    curve = slice(settings.curve_test_size)
    probe = (x_test[: training.PROBE_SIZE], y_test[: training.PROBE_SIZE])
    history = model.fit(
        x_train,
        y_train,
        batch_size=settings.batch_size,
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=settings.verbose,
        validation_data=(x_test[curve], y_test[curve]),
        callbacks=training.logging_callbacks(
            log_dir, *probe, batch_size=settings.batch_size
        )
        + list(extra),
    )
    return history.history


def train_variant(variant, settings, train, test, run_seed, switch_epoch, log_dir):
    """Trains `variant` for `settings.epochs` epochs; returns `(model, row,
    curves)`: the final model, its numbers in inference mode (test set:
    all of it; training set: re-evaluated without dropout) and its
    `training.epoch_curves`."""
    steps_per_epoch = -(-len(train[0]) // settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch
    keras.utils.set_random_seed(run_seed)
    start = time.perf_counter()
    if variant == "standard":
        dropout = keras.layers.Dropout(RATE, seed=run_seed, name="dropout")
        model = models.simple_mnist_convnet(dropout)
    else:
        model = models.simple_mnist_convnet(None)
    if variant == "early":
        until = max(1, round(EARLY_FRACTION * total_steps))
        model = early_dropout(model, EARLY_RATE, until, run_seed)
    if variant == "late":
        first = _fit(
            model,
            train,
            test,
            settings,
            log_dir,
            switch_epoch,
            extra=[NoDropoutRateLogger(log_dir, DROPOUT_NAME)],
        )
        switch_step = switch_epoch * steps_per_epoch
        phase_one = model
        model = convert_late(model, RATE, switch_step, run_seed)
        probe = test[0][: training.PROBE_SIZE]
        # The conversion keeps the weights: the same predictions, bit for bit.
        np.testing.assert_array_equal(
            model.predict(probe, verbose=0), phase_one.predict(probe, verbose=0)
        )
        second = _fit(
            model, train, test, settings, log_dir, settings.epochs, switch_epoch
        )
        history = {key: first[key] + second[key] for key in first}
    else:
        history = _fit(model, train, test, settings, log_dir, settings.epochs)
    seconds = time.perf_counter() - start
    # train_classifier's numbers; its single `fit` cannot resume at an epoch.
    row = {}
    for part, (x, y) in (("train", train), ("test", test)):
        loss, accuracy = map(float, model.evaluate(x, y, 256, verbose=0))
        row[f"{part}_loss"], row[f"{part}_accuracy"] = loss, accuracy
        row[f"{part}_error_%"] = 100 * (1 - accuracy)
    row[training.GAP] = training.error_gap(row["train_accuracy"], row["test_accuracy"])
    row["seconds"] = round(seconds, 1)
    return model, row, training.epoch_curves(history)


def run(variants=VARIANTS, switch_epoch=None, **options):
    """Trains the CNN once per variant and seed; returns the results.

    Writes `out/<variant>/seed_<s>/` (Keras's TensorBoard callback and
    kdrop's ActivationSparsity, WeightHistograms, GeneralizationGap and
    DropoutRateLogger, the rate before every step), `out/curves.png` (test
    error, test loss, training error and training loss per epoch: mean over
    seeds and a +- 1 std band per variant) with its numbers in
    `out/curves.csv`, `out/summary.csv` (one row per variant and seed) and
    `out/aggregate.csv` (mean and std over seeds).

    Args:
        variants: names from `VARIANTS`: "none", "standard" (Dropout(0.5)
            from the start), "early" (Early(0.1) over the first 1/6 of the
            steps, added to the new model), "late" (Late(0.5), added after
            `switch_epoch` epochs without dropout).
        switch_epoch: int in [1, epochs), the epoch from which late dropout
            is on; default `epochs // 2`.
        **options: `training.RunSettings` fields (epochs, seeds, out, ...)
            that replace the defaults in `SETTINGS`.

    Returns:
        `(rows, summary)`: rows, one dict per variant and seed: variant,
        seed, dropout, train_loss, train_accuracy, test_accuracy,
        test_minus_train_error_%,
        train_error_%, test_error_%, test_loss and seconds (wall time of
        the training); summary, one dict per variant: variant, seeds, and
        `<c>_mean`, `<c>_std` for c in `COLUMNS`.

    Raises:
        ValueError: a bad variant, `switch_epoch` outside [1, epochs) with
            "late", or a `validation_split` (the curves are on the test
            images), before any data is loaded.
    """
    settings = SETTINGS.replace(**options)
    variants = cli.check_names(variants, "variants", VARIANTS)
    if settings.validation_split:
        raise ValueError(
            "retune_dropout draws its curves on the test images and takes no "
            "`validation_split`; it must be 0. Received: "
            f"validation_split={settings.validation_split}."
        )
    if switch_epoch is None:
        switch_epoch = settings.epochs // 2
    if "late" in variants and not (
        isinstance(switch_epoch, int) and 1 <= switch_epoch < settings.epochs
    ):
        raise ValueError(
            "`switch_epoch` must be an int in [1, epochs) for late dropout "
            f"(epochs={settings.epochs}). Received: switch_epoch={switch_epoch!r}."
        )
    rows, curves = [], {}
    for run_seed, train, test, total_steps in settings.runs():
        for variant in variants:
            print(f"\n== {variant}, seed {run_seed}: {total_steps} steps")
            model, row, run_curves = train_variant(
                variant,
                settings,
                train,
                test,
                run_seed,
                switch_epoch,
                settings.run_dir(variant, run_seed),
            )
            dropout = describe(model, variant, switch_epoch)
            rows.append(dict(variant=variant, seed=run_seed, dropout=dropout) | row)
            training.add_curves(curves, variant, run_curves)
    title = f"Dropout added to the MNIST convnet, {len(train[0])} training images"
    path = os.path.join(settings.out, "curves.png")
    figures.plot_bands(path, curves, title)
    hparams = ("variant", "dropout", "seed")
    summary = training.finish(
        settings,
        rows,
        "variant",
        COLUMNS,
        hparams,
        NOTE,
        optimizer="Adam",
        switch_epoch=switch_epoch,
    )
    return rows, summary


def argument_parser():
    """The script's options: `cli.argument_parser`'s, --full, --variants
    and --switch-epoch."""
    parser = cli.argument_parser("retune_dropout", __doc__, SETTINGS, full=FULL)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=VARIANTS,
        help="which models to train",
    )
    parser.add_argument(
        "--switch-epoch",
        type=cli.positive_int,
        default=None,
        help="the epoch from which late dropout is on",
    )
    return parser


def main(argv=None):
    parser = argument_parser()
    # The options are named like run's arguments.
    with cli.usage_errors(parser):
        return run(**cli.parse_options(parser, argv, FULL))

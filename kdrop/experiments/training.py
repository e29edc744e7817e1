"""Seeded training runs of the experiments: data per seed, run directories,
training a classifier with every logging callback, and its HPARAMS row."""

import dataclasses
import math
import os
import time

import keras
import numpy as np

import kdrop
from kdrop import validation
from kdrop.experiments import tables
from kdrop.experiments.cli import prepare_out, tensorboard_hint


def load_data(dataset, seed, train_size=None):
    """`kdrop.datasets.load_mnist(dataset, seed=seed, train_size=...)`,
    after printing which data and sizes it holds."""
    data = kdrop.datasets.load_mnist(dataset, seed=seed, train_size=train_size)
    print(f"data: {data.describe()}")
    return data


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """The options every training experiment shares.

    Each experiment module holds its defaults as `SETTINGS`; its `run(...,
    **options)` takes any of these fields by name, and its command line
    has one option per field (`--train-size` for `train_size`).

    Attributes:
        out: output directory: logs, figures, summary.csv.
        epochs: int > 0, training epochs per run.
        seeds: int > 0, runs per model, with seeds `seed`, `seed + 1`, ...;
            a seed fixes the data split, the weights and the masks (every
            model of a seed starts from the same weights).
        seed: int >= 0, the first seed.
        batch_size: int > 0, examples per training step.
        dataset: a `kdrop.datasets.load_mnist` source.
        train_size: None, or train on the first `train_size` training
            images only.
        verbose: Keras `fit` verbosity (2: one line per epoch).
        overwrite: whether to delete the event files of a previous run in
            `out` (without it such an `out` is refused, see
            `cli.prepare_out`).
        validation_split: float in [0, 1): 0 evaluates the test set after
            every epoch (the curves' "test" panels); otherwise this fraction
            of the training images is held out (Keras's `validation_split`:
            the last ones) for the per-epoch curves, and the test set is
            evaluated once, on the final model.
        curve_test_size: None, or the per-epoch test curves use the first
            `curve_test_size` test images only (the same for every run);
            the final numbers always use the whole test set.
        keras_tensorboard_only: log with `keras.callbacks.TensorBoard(
            histogram_freq=1)` alone, as a user of Keras alone would: no
            kdrop callback, no HPARAMS table, no aggregate over seeds (to
            compare the two dashboards on the same run; cnn_dropout's
            `--keras-tensorboard-only`).
    """

    out: str
    epochs: int
    seeds: int = 3
    seed: int = 0
    batch_size: int = 128
    dataset: str = "offline"
    train_size: int | None = None
    verbose: int = 2
    overwrite: bool = False
    validation_split: float = 0.0
    curve_test_size: int | None = None
    keras_tensorboard_only: bool = False

    def __post_init__(self):
        # Checked when the settings are made, before any data is loaded or
        # `out` is created.
        validation.check_positive_int(self.epochs, "epochs")
        validation.check_non_negative_int(self.seed, "seed")
        validation.check_positive_int(self.seeds, "seeds")
        validation.check_positive_int(self.batch_size, "batch_size")
        if self.train_size is not None:
            validation.check_positive_int(self.train_size, "train_size")
        validation.check_bool(self.overwrite, "overwrite")
        validation.check_bool(self.keras_tensorboard_only, "keras_tensorboard_only")
        if self.curve_test_size is not None:
            validation.check_positive_int(self.curve_test_size, "curve_test_size")
        validation.check_number(
            self.validation_split,
            "validation_split",
            "a number in [0, 1)",
            lambda value: 0 <= value < 1,
        )

    def replace(self, **options):
        """These settings with `options` (field names) changed."""
        unknown = sorted(set(options) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(
                f"Unknown run option(s) {unknown}. Allowed: "
                f"{[f.name for f in dataclasses.fields(self)]}."
            )
        return dataclasses.replace(self, **options)

    def test_set_only(self, experiment):
        """Refuses `validation_split` and `curve_test_size` for an
        `experiment` that evaluates on the whole test set only (they would
        be ignored)."""
        if self.validation_split:
            raise ValueError(
                f"{experiment} evaluates on the test set only and takes no "
                "`validation_split`; it must be 0. Received: "
                f"validation_split={self.validation_split}."
            )
        if self.curve_test_size is not None:
            raise ValueError(
                f"{experiment} draws no per-epoch test curves and takes no "
                "`curve_test_size`; it must be None. Received: "
                f"curve_test_size={self.curve_test_size}."
            )

    def logs_histograms(self, seed):
        """Whether the run of `seed` logs per-layer histograms
        (`value_histograms/...`): the first seed's only. TensorBoard's TIME
        SERIES draws a histogram card per run and tag, so every seed's
        would repeat the same picture; the scalars are logged for every
        seed."""
        return seed == self.seed_values[0]

    @property
    def seed_values(self):
        """`[seed, seed + 1, ..., seed + seeds - 1]`."""
        return list(range(self.seed, self.seed + self.seeds))

    def data(self):
        """Yields `(seed, train, test)` for each seed, the data split by
        that seed (`load_data`). The first seed's data is loaded, so a bad
        `dataset` fails, before `out` is prepared (`cli.prepare_out`); the
        later seeds' when their turn comes."""
        seeds = self.seed_values
        first = load_data(self.dataset, seeds[0], self.train_size)
        prepare_out(self.out, self.overwrite)
        yield (seeds[0], *first)
        for seed in seeds[1:]:
            yield (seed, *load_data(self.dataset, seed, self.train_size))

    def runs(self):
        """`data()` for minibatch training: yields `(seed, train, test,
        total_steps)`, total_steps = optimizer steps of one run of `epochs`
        epochs (on the images left after `validation_split`)."""
        for seed, train, test in self.data():
            steps = math.ceil(self.fitted_images(len(train[0])) / self.batch_size)
            yield seed, train, test, self.epochs * steps

    def fitted_images(self, train_images):
        """How many of `train_images` `fit` trains on: with
        `validation_split`, `fit` holds out the last images and trains on
        the first floor(n * (1 - validation_split)) (Keras's
        `train_validation_split`)."""
        return math.floor(train_images * (1.0 - self.validation_split))

    def run_dir(self, model, seed):
        """`run_dir(out, model, seed)`."""
        return run_dir(self.out, model, seed)


def run_dir(out, model, seed):
    """`out/<model>/seed_<seed>` (spaces in `model` become "_"): one
    TensorBoard run per model and seed, so
    the run filter groups a model's seeds ("^none/") or a seed's models
    ("seed_0")."""
    return os.path.join(out, model.replace(" ", "_"), f"seed_{seed}")


# Images the kdrop callbacks probe at each epoch end: one training batch.
# The probe is the same images at every epoch, so its curves carry no
# sampling noise from epoch to epoch; against the whole test set a
# statistic over 128 images is off by one standard error of the per-image
# values, measured on the CNN at <= 0.006 for a sparsity (0.6 points) and
# about 2 % of a mean activation (docs/callbacks-and-tensorboard.md).
PROBE_SIZE = 128
# WeightHistograms writes every second epoch (and the last): its gradient
# costs about one training step, 3 % of an epoch of the main job's 32
# steps, more than half the callbacks' budget of 5 %, and weights and
# gradients change slowly from one epoch to the next (BENCHMARKS.md).
WEIGHT_HISTOGRAMS_EVERY_N_EPOCHS = 2


def logging_callbacks(log_dir, x_probe, y_probe, histograms=True, batch_size=128):
    """Keras's TensorBoard callback and kdrop's logging callbacks, one run;
    with `histograms=False` no per-layer histograms (`value_histograms/`),
    the scalars only (see `RunSettings.logs_histograms`). The activation
    statistics and the gradient histograms are those of one training
    batch, the same images: the probe's first `batch_size` examples (the
    fit's batch size). Weights and gradients are written every
    `WEIGHT_HISTOGRAMS_EVERY_N_EPOCHS` epochs and at the last."""
    return [
        keras.callbacks.TensorBoard(log_dir),
        kdrop.callbacks.ActivationSparsity(
            log_dir, data=x_probe[:batch_size], histograms=histograms
        ),
        kdrop.callbacks.WeightHistograms(
            log_dir,
            every_n_epochs=WEIGHT_HISTOGRAMS_EVERY_N_EPOCHS,
            data=(x_probe, y_probe),
            histograms=histograms,
            gradient_probe_size=batch_size,
        ),
        kdrop.callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
        kdrop.callbacks.GeneralizationGap(log_dir),
    ]


def epoch_curves(history, held_out="test"):
    """Per-epoch curves of a Keras `History` (fit with validation data and
    an accuracy metric): `held_out` error (%) and loss on the validation
    data ("test" when it is the test set), and training error (%) and loss
    as Keras logs them, i.e. the running mean over each epoch's batches in
    training mode (dropout on)."""
    logged = {key: np.asarray(value, dtype=float) for key, value in history.items()}
    return {
        f"{held_out} error (%)": 100 * (1 - logged["val_accuracy"]),
        f"{held_out} loss": logged["val_loss"],
        "training error (%)": 100 * (1 - logged["accuracy"]),
        "training loss": logged["loss"],
    }


def add_curves(curves, label, run_curves, panels=None):
    """Appends one run's `epoch_curves` (those of `panels`, default all) to
    `curves`, {panel: {label: [one array per run]}}, as `plot_bands` takes
    them."""
    for panel in panels or run_curves:
        curves.setdefault(panel, {}).setdefault(label, []).append(run_curves[panel])


# The generalization gap of a final model, as kdrop reports it everywhere:
# held-out minus training error, in percentage points.
GAP = "test_minus_train_error_%"


def error_gap(train_accuracy, test_accuracy):
    """The `GAP` column: test error % minus training error %, i.e.
    `100 * (train_accuracy - test_accuracy)`, in percentage points."""
    return 100 * (float(train_accuracy) - float(test_accuracy))


def train_classifier(
    model, train, test, settings, log_dir, callbacks=None, histograms=True
):
    """Fits `model` as `settings` (a `RunSettings`) say, evaluating the test
    set after every epoch, or, with `settings.validation_split`, a held-out
    part of the training images after every epoch and the test set at the
    end; with `callbacks` (default: `logging_callbacks`, every logging
    callback writing to `log_dir`, with per-layer histograms if
    `histograms`).

    Returns:
        `(row, curves)`: row = {train_loss, train_accuracy, test_accuracy,
        test_minus_train_error_% (`GAP`: test error minus training error,
        in percentage points), train_error_%, test_error_%, test_loss,
        seconds}, of the final
        model in inference mode (the training set is re-evaluated without
        dropout, as Srivastava et al. do, not the running accuracy of `fit`
        under dropout); curves = `epoch_curves` of the run.
    """
    (x_train, y_train), (x_test, y_test) = train, test
    split = settings.validation_split
    curve_images = slice(settings.curve_test_size)
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        verbose=settings.verbose,
        validation_split=split,
        validation_data=None if split else (x_test[curve_images], y_test[curve_images]),
        callbacks=callbacks
        if callbacks is not None
        else [keras.callbacks.TensorBoard(log_dir, histogram_freq=1)]
        if settings.keras_tensorboard_only
        else logging_callbacks(
            log_dir,
            x_test[:PROBE_SIZE],
            y_test[:PROBE_SIZE],
            histograms,
            settings.batch_size,
        ),
    )
    seconds = time.perf_counter() - start
    curves = epoch_curves(history.history, "validation" if split else "test")
    if split:
        # Keras's validation_split trains on the images before this index.
        trained = math.floor(len(x_train) * (1 - split))
        x_train, y_train = x_train[:trained], y_train[:trained]
    if split or settings.curve_test_size is not None:
        test_loss, test_accuracy = model.evaluate(
            x_test, y_test, batch_size=256, verbose=0
        )
    else:
        test_loss = curves["test loss"][-1]
        test_accuracy = 1 - curves["test error (%)"][-1] / 100
    train_loss, train_accuracy = model.evaluate(
        x_train, y_train, batch_size=256, verbose=0
    )
    row = {
        "train_loss": float(train_loss),
        "train_accuracy": float(train_accuracy),
        "test_accuracy": float(test_accuracy),
        GAP: error_gap(train_accuracy, test_accuracy),
        "train_error_%": 100 * (1 - float(train_accuracy)),
        "test_error_%": 100 * (1 - float(test_accuracy)),
        "test_loss": float(test_loss),
        "seconds": round(seconds, 1),
    }
    return row, curves


# The final numbers of a `train_classifier` row shown by the HPARAMS dashboard.
HPARAMS_METRICS = {
    "test_error_%": "Test error (%) of the final model.",
    "train_error_%": "Training-set error (%) of the final model in inference "
    "mode (no dropout).",
    "test_loss": "Test loss of the final model.",
    "train_loss": "Training-set loss of the final model in inference mode.",
    GAP: "Test error minus training-set error (inference mode) of the "
    "final model, in percentage points.",
}


# Hyperparameters that name a run rather than measure anything, logged as
# strs: TensorBoard has no integer hyperparameter and prints every number
# with five significant digits, so a seed 0 would read "0.0000".
IDENTIFIERS = ("seed",)


def _hparam_value(name, value):
    return str(value) if name in IDENTIFIERS else value


def log_hparams(out, rows, by, hparams, metrics=HPARAMS_METRICS, **fixed):
    """Logs every run of an experiment for TensorBoard's HPARAMS dashboard.

    `rows` are the experiment's per-run rows (as `report_seeds` takes them);
    each row's run, `run_dir(out, row[by], row["seed"])`, gets its
    hyperparameters (of the columns `hparams` and the settings `fixed`
    shared by all runs, e.g. epochs=20, those whose value differs between
    runs: the table's columns) and its final metrics (the columns
    `metrics`, {column: description}; default: those of a
    `train_classifier` row) with `kdrop.callbacks.log_hparams`, at the last
    epoch's 0-based index (the step of Keras's curves); `out` gets the
    experiment's declaration (`kdrop.callbacks.log_hparams_config`), with the
    hyperparameters that are the same in every run written once, as a text
    summary (the TEXT tab), not as columns. With a single run nothing
    differs: the columns `hparams` stay columns. The `IDENTIFIERS` (the
    seed) are logged as strs, so the table shows "0", not "0.0000".
    """
    runs = [
        {name: _hparam_value(name, row[name]) for name in hparams} | fixed
        for row in rows
    ]
    names = list(runs[0])
    varying = [n for n in names if len({repr(run[n]) for run in runs}) > 1]
    if len(runs) == 1:
        varying = list(hparams)
    constants = {n: runs[0][n] for n in names if n not in varying}
    for row, run in zip(rows, runs):
        directory = run_dir(out, row[by], row["seed"])
        kdrop.callbacks.log_hparams(
            directory,
            {name: run[name] for name in varying},
            {name: row[name] for name in metrics},
            step=max(fixed.get("epochs", 1) - 1, 0),
            # The run's own name (`inverted/seed_0`), not a hash, in the
            # table's Trial ID column.
            trial_id=os.path.relpath(directory, out),
        )
    kdrop.callbacks.log_hparams_config(
        out,
        {name: [run[name] for run in runs] for name in varying},
        metrics,
        constants=constants,
    )


def finish(
    settings, rows, by, columns, hparams, note, metrics=HPARAMS_METRICS, **fixed
):
    """The end of a seeded experiment: writes the per-seed `rows` and their
    mean and std over seeds (`tables.report_seeds`), logs each run for the
    HPARAMS dashboard (`log_hparams`, with the settings' epochs and batch
    size and the shared `fixed` hyperparameters), with two or more seeds
    writes the mean and +-1 std of every curve over seeds, at the curves'
    own steps (epochs; labelled examples for active learning)
    (`kdrop.tensorboard.aggregate_seeds`, runs `across_seeds/<variant>`),
    prints `note` and how to view the logs. Returns the aggregate rows."""
    summary = tables.report_seeds(rows, settings.out, by, columns)
    if settings.keras_tensorboard_only:
        print(note)
        tensorboard_hint(settings.out)
        return summary
    log_hparams(
        settings.out,
        rows,
        by,
        hparams,
        metrics,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        **fixed,
    )
    if settings.seeds >= 2:
        kdrop.tensorboard.aggregate_seeds(settings.out)
        print(
            "mean +- sample std over seeds of every curve: runs "
            f"{os.path.join(settings.out, 'across_seeds')}/<{by}> (TensorBoard: "
            "CUSTOM SCALARS, first category)"
        )
    print(note)
    tensorboard_hint(settings.out)
    return summary

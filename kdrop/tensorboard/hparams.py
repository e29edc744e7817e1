"""Runs and their hyperparameters for TensorBoard's HPARAMS dashboard.

Written with the `tensorboard` package alone (the protos of
`tensorboard.plugins.hparams.summary_v2`), so it works on every Keras
backend, without TensorFlow.
"""

import numbers

import numpy as np
from tensorboard.plugins.hparams import summary_v2

from kdrop import validation
from kdrop.tensorboard import families
from kdrop.tensorboard.writer import (
    SummaryWriter,
    check_log_dir,
    prepare_log_dir,
    scalar_summary,
    text_summary,
)

HPARAM_TYPES = (bool, numbers.Real, str)


def metric_tag(name):
    """The scalar tag of the final metric `name`: `wrap_up/<name>`.

    The HPARAMS dashboard reads a metric's value from a scalar summary, so
    each final metric is also a one-point card of TensorBoard's Time Series
    tab; under `wrap_up/` they form one group, which sorts after every
    other group of kdrop's tags (`kdrop.tensorboard.families`). The
    dashboard's column is headed by `name` (the metric's display name).
    """
    return f"{families.WRAP_UP}/{name}"


def _check_names(mapping, argument, what):
    if not isinstance(mapping, dict):
        raise TypeError(
            f"`{argument}` must be a dict of {what} by name. Received: "
            f"{argument}={mapping!r} of type {type(mapping).__name__}."
        )
    for name in mapping:
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"`{argument}` keys must be non-empty strings (names). "
                f"Received the key {name!r}."
            )


def _python_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _check_hparams(hparams, argument="hparams"):
    _check_names(hparams, argument, "bool, number or str values")
    checked = {}
    for name, value in hparams.items():
        value = _python_scalar(value)
        if not isinstance(value, HPARAM_TYPES):
            raise TypeError(
                f"`{argument}[{name!r}]` must be a bool, a real number or a str. "
                f"Received: {value!r} of type {type(value).__name__}."
            )
        checked[name] = value
    return checked


def _check_metrics(metrics):
    _check_names(metrics, "metrics", "final numbers")
    checked = {}
    for name, value in metrics.items():
        value = _python_scalar(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"`metrics[{name!r}]` must be a real number (NaN and inf "
                f"are kept: a diverged run is a result). Received: {value!r} "
                f"of type {type(value).__name__}."
            )
        checked[name] = float(value)
    return checked


def _write(log_dir, summaries):
    """Writes `(summary proto, step)` pairs into one event file in
    `log_dir` itself, a run of its own next to `train/` and `validation/`."""
    writer = SummaryWriter(prepare_log_dir(log_dir, subdir=""))
    try:
        for summary, step in summaries:
            writer.summary(summary, step)
    finally:
        writer.close()


def log_hparams(log_dir, hparams, metrics, step=0, trial_id=None):
    """Logs one training run for TensorBoard's HPARAMS dashboard.

    Writes into `log_dir` itself (the run's directory, where Keras's and
    kdrop's callbacks write `train/` and `validation/`) the run's
    hyperparameters (a session of the hparams plugin) and its final
    `metrics`, one scalar each, tag `wrap_up/<metric>` (`metric_tag`), at
    `step`: the dashboard reads metric values from scalar summaries, and the
    `wrap_up` group sorts after every other group of TensorBoard's Time
    Series tab, out of the way of the curves. Every run
    logged under one TensorBoard log directory becomes a row of the
    dashboard's table (sortable by any column, filtered by hyperparameter
    values); runs that differ only by their seed are separate rows. Declare
    the experiment with `log_hparams_config` so that the table shows these
    metrics only (TensorBoard otherwise lists every scalar tag of every run).

    Args:
        log_dir: the run's directory (a path).
        hparams: dict, name -> bool, real number or str (e.g. variant,
            dropout, rate or schedule, seed, epochs, optimizer). An
            identifier that happens to be an integer, such as the seed, reads
            best as a str: the dashboard prints every number with five
            significant digits, a seed 0 as "0.0000" (`log_hparams_config`).
        metrics: dict, name -> real number (e.g. train and test error and
            loss, generalization gap); NaN and inf are written as they are.
        step: int >= 0, the step of the metrics (e.g. the epochs trained).
        trial_id: None or a non-empty str, the name of the row in the
            table's "Trial ID" column, e.g. the run's path below the
            experiment's directory (`"dropout_0.5/seed_0"`). None gives
            TensorBoard's default, a hash of `hparams`.

    Example:

    ```python
    kdrop.callbacks.log_hparams(
        "logs/exp/dropout_0.5/seed_0",
        {"dropout": "InvertedDropout(0.5)", "seed": "0", "epochs": 20},
        {"test_error": 0.021, "test_loss": 0.07},
        step=20,
        trial_id="dropout_0.5/seed_0",
    )
    ```
    """
    check_log_dir(log_dir)
    hparams = _check_hparams(hparams)
    metrics = _check_metrics(metrics)
    step = validation.check_non_negative_int(step, "step")
    if trial_id is not None and (not isinstance(trial_id, str) or not trial_id):
        raise TypeError(
            "`trial_id` must be None or a non-empty str (the row's name in "
            f"the HPARAMS table). Received: trial_id={trial_id!r}."
        )
    summaries = [(summary_v2.hparams_pb(hparams, trial_id=trial_id), 0)]
    for name, value in metrics.items():
        tag = metric_tag(name)
        summaries.append((scalar_summary(tag, value, families.describe(tag)), step))
    _write(log_dir, summaries)


def _domain(name, values):
    values = [_python_scalar(value) for value in values]
    if all(isinstance(value, bool) for value in values):
        return summary_v2.Discrete(values, dtype=bool)
    if all(isinstance(value, str) for value in values):
        return summary_v2.Discrete(values, dtype=str)
    if all(
        isinstance(value, numbers.Real) and not isinstance(value, bool)
        for value in values
    ):
        return summary_v2.Discrete([float(value) for value in values], dtype=float)
    raise TypeError(
        f"`hparams[{name!r}]` must list values of one type: bools, real "
        f"numbers or strs. Received: {values!r}."
    )


CONSTANTS_TAG = "constant_hyperparameters"


def _constants_markdown(constants):
    rows = "\n".join(f"| {name} | {value} |" for name, value in constants.items())
    return f"| hyperparameter | value (every run) |\n|---|---|\n{rows}"


def log_hparams_config(log_dir, hparams, metrics, constants=None):
    """Declares an experiment's hyperparameters and metrics for TensorBoard's
    HPARAMS dashboard.

    Call it once per experiment, with `log_dir` the directory TensorBoard
    is started on (the runs logged by `log_hparams` lie below it). The
    dashboard's columns are then exactly `hparams` (TensorBoard sorts them
    by name) and `metrics`; a hyperparameter given with its values gets a
    checkbox filter per value. TensorBoard has no integer hyperparameter:
    the hparams protos hold every number as a double (`DATA_TYPE_FLOAT64`,
    `google.protobuf.Value.number_value`, a `Discrete` domain of ints
    included) and the table prints numbers with five significant digits
    (2.21's `prettyPrint`: `toPrecision(5)`), so a seed 0 shows "0.0000";
    pass a str to show "0". The dashboard ticks the first five
    hyperparameters (those that differ between runs first) and the first
    five metrics: few columns keep them all in view. Hyperparameters with
    the same value in every run belong in `constants`: they are written
    once, as a Markdown table in the text summary `constant_hyperparameters`
    of `log_dir` (the TEXT tab), not as columns.

    Args:
        log_dir: the experiment's directory (a path).
        hparams: dict, name -> list of the values the runs take (bools,
            real numbers or strs), or None (no list of values).
        metrics: dict, name -> one-line description (shown by the
            dashboard), for the metrics `log_hparams` writes; each is
            declared with its tag `wrap_up/<name>` and `name` as its display
            name, the column's heading.
        constants: None, or dict, name -> bool, real number or str: the
            hyperparameters every run shares (e.g. epochs, batch size,
            optimizer).

    Example:

    ```python
    kdrop.callbacks.log_hparams_config(
        "logs/exp",
        {"dropout": ["none", "InvertedDropout(0.5)"], "seed": ["0", "1", "2"]},
        {"test_error": "final test error"},
        constants={"epochs": 20, "batch_size": 128},
    )
    ```
    """
    check_log_dir(log_dir)
    _check_names(hparams, "hparams", "lists of values (or None)")
    _check_names(metrics, "metrics", "descriptions")
    constants = _check_hparams({} if constants is None else constants, "constants")
    infos = []
    for name, values in hparams.items():
        if values is not None and not isinstance(values, (list, tuple)):
            raise TypeError(
                f"`hparams[{name!r}]` must be a list of the values the runs "
                f"take, or None. Received: {values!r} of type "
                f"{type(values).__name__}."
            )
        domain = None if values is None else _domain(name, list(dict.fromkeys(values)))
        infos.append(summary_v2.HParam(name, domain))
    for name, description in metrics.items():
        if not isinstance(description, str):
            raise TypeError(
                f"`metrics[{name!r}]` must be a str (the metric's "
                f"description). Received: {description!r} of type "
                f"{type(description).__name__}."
            )
    config = summary_v2.hparams_config_pb(
        infos,
        [
            summary_v2.Metric(
                metric_tag(name), display_name=name, description=description
            )
            for name, description in metrics.items()
        ],
    )
    summaries = [(config, 0)]
    if constants:
        summaries.append(
            (
                text_summary(
                    CONSTANTS_TAG,
                    _constants_markdown(constants),
                    "Hyperparameters with the same value in every run of the "
                    "experiment (not HPARAMS columns).",
                ),
                0,
            )
        )
    _write(log_dir, summaries)

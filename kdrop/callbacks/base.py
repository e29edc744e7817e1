"""What kdrop's logging callbacks share: writer lifecycle, steps, probe data."""

import tempfile

import keras
import numpy as np

from kdrop import keras_internals, validation
from kdrop.backend import distribute
from kdrop.callbacks import steps
from kdrop.callbacks.backup_and_restore import restored_batches
from kdrop.inference.inputs import input_names
from kdrop.tensorboard import dashboard
from kdrop.tensorboard.families import describe
from kdrop.tensorboard.writer import (
    SummaryWriter,
    check_log_dir,
    prepare_log_dir,
)


def check_update_freq(update_freq):
    """Returns the number of batches between writes, or None for "epoch"."""
    if update_freq == "epoch":
        return None
    if update_freq == "batch":
        return 1
    allowed = "'epoch', 'batch' or a positive int (every N batches)"
    if isinstance(update_freq, str):
        raise ValueError(
            f"`update_freq` must be {allowed}. Received: update_freq={update_freq!r}."
        )
    return validation.check_int(update_freq, "update_freq", allowed, minimum=1)


def _values_if_pandas(data):
    """`data` with every pandas DataFrame or Series in it (at the top, or in
    a tuple, list or dict) replaced by its values (`to_numpy()`), as
    `model.fit` reads them."""
    module = type(data).__module__.split(".")[0]  # "pandas" in pandas >= 3
    if module == "pandas" and hasattr(data, "to_numpy"):
        return data.to_numpy()
    if isinstance(data, (tuple, list)):
        return type(data)(_values_if_pandas(item) for item in data)
    if isinstance(data, dict):
        return {key: _values_if_pandas(item) for key, item in data.items()}
    return data


def probe_batch_xy(data):
    """`(x, y)` of a probe batch; `y` is None when `data` has no targets.

    The rule, the one of `model.fit(x, y)`: a TUPLE is `(x,)` or `(x, y)`;
    a LIST is the inputs, one array per model input (so `[a, b]` for a
    two-input model is never read as `(x, y)`); an array, tensor, pandas
    DataFrame or Series (its values) or dict (arrays by input name) is the
    inputs; any other iterable, such as a `tf.data.Dataset`, gives its
    first element, read by the same rule.
    """
    data = _values_if_pandas(data)
    if isinstance(data, tuple):
        if len(data) not in (1, 2):
            raise ValueError(
                "`data` must be inputs (an array, a list or dict of arrays), "
                "an (x,) or (x, y) tuple, or a dataset. Received a tuple of "
                f"length {len(data)}."
            )
        return data[0], data[1] if len(data) == 2 else None
    if isinstance(data, (list, np.ndarray, dict)) or keras.ops.is_tensor(data):
        return data, None
    if hasattr(data, "__iter__") and not isinstance(data, (str, bytes)):
        # tf.data.Dataset, generator, PyDataset
        return probe_batch_xy(next(iter(data)))
    raise TypeError(
        "`data` must be inputs (an array, a list or dict of arrays), an "
        "(x, y) tuple or a tf.data.Dataset. Received: data of type "
        f"{type(data).__name__}."
    )


def build_for_probe(model, x):
    """Builds a Sequential model created without `keras.Input` from the
    probe's shape (batch size left free), as `fit` would on its first step,
    so that a probe can be checked in `on_train_begin`."""
    if isinstance(model, keras.Sequential) and not model.built:
        model.build((None,) + tuple(np.shape(x))[1:])


def run_probe_once(callback, model, probe):
    """Runs `probe()` once, before any training step; any failure becomes
    a ValueError naming the callback, the model and the cause."""
    try:
        return probe()
    except Exception as error:
        raise ValueError(
            f"{type(callback).__name__}: the probe `data` could not be run "
            f"through model '{model.name}' ({type(error).__name__}: {error}). "
            "Pass inputs the model accepts (see `data` in the callback's "
            "docstring)."
        ) from error


def check_probe_shape(model, x):
    """Raises a clear error when probe `x` cannot be fed to `model`.

    Checked for models with known inputs (Functional, or Sequential once
    built); others are checked by their first probe call. A dict `x` is
    matched to the inputs as `kdrop.mc_predict` matches it
    (`inference.inputs.input_names`).
    """
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return
    if isinstance(x, dict):
        structure = keras_internals.inputs_structure(
            keras_internals.functional_graph(model)
        )
        inputs = keras.tree.flatten(structure)
        x = [x.get(name) for name in input_names(structure)]
    arrays = keras.tree.flatten(x) if isinstance(x, (list, tuple)) else [x]
    if len(arrays) != len(inputs):
        raise ValueError(
            f"`data` does not fit the model: it has {len(inputs)} input(s), "
            f"the probe batch holds {len(arrays)} array(s)."
        )
    for tensor, array in zip(inputs, arrays):
        expected = tuple(tensor.shape)
        received = None if array is None else tuple(np.shape(array))
        if received is None or not validation.shape_fits(expected, received):
            raise ValueError(
                f"`data` does not fit the model: input '{tensor.name}' "
                f"expects shape {expected}, the probe batch has shape {received}."
            )


class LoggingCallback(keras.callbacks.Callback):
    """Base of kdrop's callbacks that write TensorBoard event files.

    Files go to `log_dir/train` (nothing is written when `log_dir` is None),
    the layout of Keras's TensorBoard callback, so both show up as one run;
    every callback has its own event file, which TensorBoard merges, created
    at its first write (a DropoutRateLogger on a model without dropout
    layers creates none).

    Multi-worker `tf.distribute` runs (MultiWorkerMirroredStrategy): give
    every worker the same callbacks. The chief writes to `log_dir`; the
    other workers compute the same values (so that a probe's collective
    ops, if any, run on every worker) but write them to a temporary
    directory of their own (`tempfile.mkdtemp`) that is removed when the
    writer closes, as Keras 2's TensorBoard callback did.

    Steps: per-epoch values use the epoch index; per-batch values use the
    global batch index `global_step(batch)`, the batches the model trained
    before the epoch plus the batch index, so it stays right with
    `steps_per_execution > 1` and continues across `fit` calls and resumed
    runs. A step is a training batch, as a scheduled layer counts it, also
    where `optimizer.iterations` counts otherwise (gradient accumulation,
    updates skipped by a mixed-precision loss scaler): see
    `kdrop.callbacks.steps`. After `kdrop.callbacks.BackupAndRestore`
    restored a mid-epoch backup (it leaves a `RestoredEpoch` on the model,
    read here through `restored_batches`), the batches it skips are
    numbered as in an uninterrupted run and `is_restored_step(step)` is
    true for them: nothing is logged there.
    No `on_train_batch_end` hook is defined: it would make Keras
    dispatch every batch's logs synchronously on JAX and torch.

    Nothing written is lost when training stops early: Keras calls
    `on_train_end` only when `fit` returns normally, so subclasses call
    `flush_writes()` at the end of every hook that wrote (the event file is
    then complete on disk), and the file is closed by `on_train_end`, by a
    later `fit` with another `log_dir`, or when the writer is
    garbage-collected or the interpreter exits (after an exception or
    KeyboardInterrupt).
    """

    def __init__(self, log_dir, log_dir_optional=False):
        super().__init__()
        check_log_dir(log_dir, optional=log_dir_optional)
        # Whether it is usable is checked in on_train_begin, before any step.
        self.log_dir = log_dir
        self._directory = None
        self._temporary = False  # writes to a directory removed at close
        self._writer = None
        self._charted = set()  # the dashboard charts added through _writer
        self._epoch_first_step = 0
        self._first_trained_step = 0
        self._epoch_first_applied = 0
        self._last_batch = None
        # tag -> [last value, its step, whether written, whether it changed]
        self._series = {}

    @property
    def writer(self):
        """The writer of `log_dir/train`, opened at the first write, so that
        a callback that never writes leaves no event file; None without
        `log_dir`."""
        if self._writer is None and (self._directory or self._temporary):
            self._writer = SummaryWriter(
                self._directory or tempfile.mkdtemp(prefix="kdrop-worker-"),
                temporary=self._temporary,
            )
            self._charted = set()
        return self._writer

    def add_dashboard_charts(self, names):
        """Adds the charts `names` (keys of `kdrop.tensorboard.dashboard.CHARTS`)
        to the CUSTOM SCALARS layout of `log_dir`, once per writer. A tag
        written with `write_scalar` adds its own chart; this is for charts of
        tags another callback writes (Keras's `epoch_loss`)."""
        new = [name for name in names if name not in self._charted]
        if new and self.writer is not None:
            dashboard.add_charts(self.writer, new)
            self._charted.update(new)

    def on_train_begin(self, logs=None):
        self._series = {}
        if self.log_dir is None:
            return
        self._temporary = not distribute.writes_logs(self.model)
        self._directory = None if self._temporary else prepare_log_dir(self.log_dir)
        if self._writer is not None and self._writer.directory != self._directory:
            self._writer.close()
            self._writer = None

    def on_epoch_begin(self, epoch, logs=None):
        # Variables are current at epoch boundaries on every backend.
        self._first_trained_step = steps.batches_trained(self.model)
        self._epoch_first_step = self._first_trained_step - restored_batches(
            self.model, epoch
        )
        self._epoch_first_applied = steps.batches_applied(self.model)
        self._last_batch = None

    def on_train_batch_begin(self, batch, logs=None):
        # Where the epoch's last block of steps began: its length, read at
        # the epoch end, counts batches whose update was skipped.
        self._last_batch = batch

    def global_step(self, batch):
        """The global index of batch `batch` of the current epoch: the
        number of batches the model trained before it (see
        `kdrop.callbacks.steps`)."""
        return self._epoch_first_step + batch

    def _mark_epoch_trained(self):
        restored = self._first_trained_step - self._epoch_first_step
        applied = steps.batches_applied(self.model) - self._epoch_first_applied
        batches = steps.batches_in_epoch(
            self.params,
            self._last_batch,
            getattr(self.model, "steps_per_execution", 1),
            applied + restored,
        )
        steps.mark_batches_trained(self.model, self._epoch_first_step + batches)

    def is_restored_step(self, step):
        """Whether `step` was trained before a mid-epoch restore (its batch
        is skipped, not trained, in this run)."""
        return step < self._first_trained_step

    def write_scalar(self, tag, value, step):
        """Writes a scalar with its family's description
        (`kdrop.tensorboard.families.describe`: a tag of no family raises
        `UnknownTagError` at its first write), and adds the chart that
        draws it, if any, to the dashboard: a chart joins the layout with
        its first series, so none is ever empty."""
        self.writer.scalar(tag, value, step, description=describe(tag))
        chart = dashboard.chart_of(tag)
        if chart is not None and chart not in self._charted:
            self.add_dashboard_charts((chart,))

    def write_scalar_if_changing(self, tag, value, step, write_first):
        """Writes a scalar series only where it says something.

        Until the series (`tag`, in this `fit`) changes value it is written
        once, at its first value, if `write_first` (a per-epoch tag: a
        fixed rate gets one point), else not at all (a per-batch tag: a
        fixed rate gets no per-batch chart). From its first change on it is
        written at every call, after the unwritten first value and the
        unwritten value of the call before, so that the series holds its
        value until the step where it changed (a reader can hold each
        value up to the next step written)."""
        last = self._series.get(tag)
        if last is None:
            self._series[tag] = [value, step, write_first, False, (step, value)]
            if write_first:
                self.write_scalar(tag, value, step)
            return
        last_value, last_step, last_written, changing, first = last
        if not changing and value != last_value:
            changing = True
            if not last_written:
                if first[0] != last_step:
                    self.write_scalar(tag, first[1], first[0])
                self.write_scalar(tag, last_value, last_step)
        if changing:
            self.write_scalar(tag, value, step)
        self._series[tag] = [value, step, changing, changing, first]

    def write_histogram(self, tag, buckets, step):
        """Writes a k x 3 histogram with its family's description."""
        self.writer.histogram(tag, buckets, step, description=describe(tag))

    def write_image(self, tag, png, step):
        """Writes a PNG image with its family's description."""
        self.writer.image(tag, png, step, description=describe(tag))

    def flush_writes(self):
        if self._writer is not None:
            self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        self._mark_epoch_trained()
        self.flush_writes()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class PeriodicLoggingCallback(LoggingCallback):
    """A `LoggingCallback` that logs at the end of every N-th epoch, and of
    a fit's last one.

    Subclasses write in `log_epoch(epoch)`, called at the end of every
    `every_n_epochs`-th epoch and of the fit's last epoch (its `epochs`, or
    the epoch where a callback listed before it stopped the fit), so that a
    fit logs its final model whatever its length; they drop in
    `forget_model()` what they built for a model (a probe model, a traced
    function): it is kept across that model's `fit` calls, so they reuse
    its trace, and dropped when the callback is attached to another model.
    """

    def __init__(self, log_dir, every_n_epochs=1):
        super().__init__(log_dir)
        self.every_n_epochs = validation.check_positive_int(
            every_n_epochs, "every_n_epochs"
        )

    def set_model(self, model):
        if model is not keras_internals.callback_model(self):
            self.forget_model()
        super().set_model(model)

    def forget_model(self):
        """Drops what was built for the previous model."""

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0 or self._is_last_epoch(epoch):
            self.log_epoch(epoch)
        super().on_epoch_end(epoch, logs)

    def _is_last_epoch(self, epoch):
        # `stop_training` is set by a callback called before this one
        # (EarlyStopping, TerminateOnNaN) in the same epoch end.
        return epoch + 1 == (self.params or {}).get("epochs") or bool(
            getattr(self.model, "stop_training", False)
        )

    def log_epoch(self, epoch):
        raise NotImplementedError

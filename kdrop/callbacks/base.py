"""What kdrop's logging callbacks share: writer lifecycle, steps, probe data."""

import os

import keras
import numpy as np

from kdrop import validation
from kdrop.callbacks.summary_writer import SummaryWriter, prepare_log_dir


def check_update_freq(update_freq):
    """Returns the number of batches between writes, or None for "epoch"."""
    if update_freq == "epoch":
        return None
    if update_freq == "batch":
        return 1
    if isinstance(update_freq, int) and not isinstance(update_freq, bool):
        return validation.check_positive_int(update_freq, "update_freq")
    raise ValueError(
        "`update_freq` must be 'epoch', 'batch' or a positive int (every N "
        f"batches). Received: update_freq={update_freq!r}."
    )


def probe_batch_xy(data):
    """`(x, y)` of a probe batch; `y` is None when `data` has no targets."""
    if isinstance(data, (tuple, list)):
        if len(data) not in (1, 2):
            raise ValueError(
                "`data` must be an array, an (x, y) tuple or a dataset. "
                f"Received a {type(data).__name__} of length {len(data)}."
            )
        return data[0], data[1] if len(data) == 2 else None
    if isinstance(data, np.ndarray) or keras.ops.is_tensor(data):
        return data, None
    if hasattr(data, "__iter__"):  # tf.data.Dataset, generator, PyDataset
        first = next(iter(data))
        return probe_batch_xy(first if isinstance(first, (tuple, list)) else (first,))
    raise TypeError(
        "`data` must be an array, an (x, y) tuple or a tf.data.Dataset. "
        f"Received: data of type {type(data).__name__}."
    )


def check_probe_shape(model, x):
    """Raises a clear error when probe `x` cannot be fed to `model`."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        return
    expected = tuple(inputs[0].shape)
    received = tuple(np.shape(x))
    fits = len(expected) == len(received) and all(
        e is None or e == r for e, r in zip(expected[1:], received[1:])
    )
    if not fits:
        raise ValueError(
            f"`data` does not fit the model: it expects inputs of shape "
            f"{expected}, the probe batch has shape {received}."
        )


def dropout_layers(model):
    """Every dropout layer in `model` (nested models included)."""
    from kdrop.layers import BaseDropout

    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, (BaseDropout, keras.layers.Dropout))
    ]


class LoggingCallback(keras.callbacks.Callback):
    """Base of kdrop's callbacks that write TensorBoard event files.

    Files go to `log_dir/train` (nothing is written when `log_dir` is None),
    the layout of Keras's TensorBoard callback,
    so both show up as one run. Per-epoch values use the epoch index as step;
    per-batch values use the global batch index, counted from the
    optimizer's iterations at the start of `fit` so that a resumed run
    continues its step numbers.
    """

    def __init__(self, log_dir):
        super().__init__()
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(
                "`log_dir` must be a path (str or os.PathLike). "
                f"Received: log_dir={log_dir!r}."
            )
        # Whether it is usable is checked in on_train_begin, before any step.
        self.log_dir = log_dir
        self._writer = None
        self._global_step = 0

    @property
    def writer(self):
        return self._writer

    def on_train_begin(self, logs=None):
        if self.log_dir is not None:
            directory = prepare_log_dir(self.log_dir)
            if self._writer is None or self._writer.directory != directory:
                self._writer = SummaryWriter(directory)
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        self._global_step = (
            int(keras.ops.convert_to_numpy(iterations)) if iterations is not None else 0
        )

    def on_train_batch_end(self, batch, logs=None):
        self._global_step += 1

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

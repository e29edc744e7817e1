"""TensorBoard event files written with the `tensorboard` package alone.

Keras's TensorBoard callback needs `tensorflow.summary` on every backend
(keras #19121); this writer needs only `tensorboard` and numpy, so kdrop's
callbacks log the same way on TensorFlow, JAX and PyTorch. Scalars,
histograms and images use the same summary formats as `tf.summary.scalar`,
`tf.summary.histogram` and `tf.summary.image`, so TensorBoard shows them
beside Keras's own curves.
"""

import os
import shutil
import struct
import time
import warnings
import weakref

import numpy as np
from tensorboard.compat import tf as tensorboard_tf
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

HISTOGRAM_BINS = 30

# Directories where a write failed in this process; no writer of this
# module writes there again, so a full disk gets one warning, not one per
# callback and step.
_FAILED_DIRECTORIES = set()


def _write_errors():
    """What a failed event-file write raises: `tensorboard` writes through
    `tf.io.gfile` when TensorFlow is installed (a full disk or a file-size
    limit then raises `tf.errors.OutOfRangeError`, "File too large"), else
    through Python's files (`OSError`)."""
    return (OSError, tensorboard_tf.errors.OpError)


def check_log_dir(log_dir, optional=False):
    """Raises a TypeError unless `log_dir` is a path (or None if `optional`)."""
    is_path = isinstance(log_dir, (str, os.PathLike)) and os.fspath(log_dir) != ""
    if not is_path and not (log_dir is None and optional):
        allowed = "None or a path" if optional else "a path"
        raise TypeError(
            f"`log_dir` must be {allowed} (a non-empty str or "
            f"os.PathLike). Received: log_dir={log_dir!r}."
        )


def prepare_log_dir(log_dir, subdir="train"):
    """Creates `log_dir/subdir` and returns it, or raises a clear error."""
    path = os.path.join(os.fspath(log_dir), subdir)
    for candidate in (os.fspath(log_dir), path):
        if os.path.exists(candidate) and not os.path.isdir(candidate):
            raise ValueError(
                f"`log_dir` must be a directory, but {candidate!r} is a file. "
                f"Received: log_dir={os.fspath(log_dir)!r}."
            )
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"`log_dir` could not be created ({error.strerror}). "
            f"Received: log_dir={os.fspath(log_dir)!r}."
        ) from error
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(
            f"`log_dir` is not writable: {path!r}. "
            f"Received: log_dir={os.fspath(log_dir)!r}."
        )
    return path


def histogram_from_counts(edges, counts):
    """The histogram plugin's k x 3 [left edge, right edge, count] array."""
    edges = np.asarray(edges, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


def histogram_from_values(values, bins=HISTOGRAM_BINS):
    """Bins `values` (finite ones only) into a k x 3 histogram array."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.zeros((0, 3))
    low, high = values.min(), values.max()
    if low == high:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    return histogram_from_counts(edges, counts)


def _close(writer, temporary_directory):
    # After a failed write, closing flushes the same unwritable buffer
    # again; at garbage collection or exit there is nobody to tell.
    try:
        writer.close()
    except _write_errors():
        pass
    if temporary_directory is not None:
        shutil.rmtree(temporary_directory, ignore_errors=True)


def _summary(tag, array, metadata):
    return summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(
                tag=tag,
                metadata=metadata,
                tensor=tensor_util.make_tensor_proto(array),
            )
        ]
    )


def scalar_summary(tag, value, description=""):
    """A scalar `summary_pb2.Summary`, as `tf.summary.scalar` writes it."""
    return _summary(
        tag,
        np.asarray(value, dtype=np.float32),
        scalar_metadata.create_summary_metadata(
            display_name=tag, description=description
        ),
    )


def text_summary(tag, markdown, description=""):
    """A text `summary_pb2.Summary` (Markdown), as `tf.summary.text` writes it."""
    return _summary(
        tag,
        np.array(markdown.encode(), dtype=object),
        text_metadata.create_summary_metadata(
            display_name=tag, description=description
        ),
    )


class SummaryWriter:
    """Writes scalars and histograms to one event file in `directory`.

    Every `write_*` call is followed by a flush at the end of the callback
    hook that made it (`flush()`), so a run stopped by an exception keeps
    everything logged before; the file is also closed when the writer is
    garbage-collected or the interpreter exits. With `temporary=True` the
    writer owns `directory` and removes it, files and all, when closed;
    `filename_suffix` ends the event file's name. A tag's summary metadata
    (plugin, display name, description) goes with its first scalar,
    histogram or image only.

    A write that fails (a full disk, a file-size limit, a removed
    directory) never stops training: it gives one `RuntimeWarning` naming
    the directory and the error, and nothing more is written to that
    directory in this process, by this writer or any other. Records written
    before stay readable. `tensorboard`'s writer writes from a background
    thread and raises its error at the next `add_event` or `flush`, so
    every call into it is guarded.
    """

    def __init__(self, directory, temporary=False, filename_suffix=""):
        self.directory = directory
        self._writer = None
        self._finalizer = None
        self._described_tags = set()
        self._unflushed = False
        self._guarded(
            lambda: self._open(directory if temporary else None, filename_suffix)
        )

    def _open(self, temporary_directory, filename_suffix):
        self._writer = EventFileWriter(
            self.directory, flush_secs=5, filename_suffix=filename_suffix
        )
        self._finalizer = weakref.finalize(
            self, _close, self._writer, temporary_directory
        )

    def _guarded(self, action):
        """Runs `action` unless writing here has failed; a failure warns."""
        key = os.path.abspath(self.directory)
        if key in _FAILED_DIRECTORIES:
            self._discard()
            return
        try:
            action()
        except _write_errors() as error:
            _FAILED_DIRECTORIES.add(key)
            warnings.warn(
                f"kdrop could not write TensorBoard events to {self.directory!r} "
                f"({type(error).__name__}: {error}). Training goes on; kdrop "
                "writes nothing more to this directory in this process (what "
                "was written before stays readable). Free space or pass "
                "another `log_dir` to log again.",
                RuntimeWarning,
                stacklevel=2,
            )
            self._discard()

    def _discard(self):
        if self._finalizer is not None:
            self._finalizer()

    def summary(self, summary, step):
        """Writes a `summary_pb2.Summary` (e.g. an hparams plugin proto)."""
        event = event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
        self._unflushed = True
        self._guarded(lambda: self._writer.add_event(event))

    def _described_once(self, summary):
        # TensorBoard keeps the first metadata it reads for a tag and ignores
        # later ones, as TensorFlow 1's FileWriter writes it only with a
        # tag's first value (tensorboard/backend/event_processing/
        # plugin_event_accumulator.py). Repeating it, with its description,
        # doubled the size of a per-batch scalar record (BENCHMARKS.md, soak).
        for value in summary.value:
            if value.tag in self._described_tags:
                value.ClearField("metadata")
            self._described_tags.add(value.tag)
        return summary

    def _add(self, tag, array, metadata, step):
        self.summary(self._described_once(_summary(tag, array, metadata)), step)

    def scalar(self, tag, value, step, description=""):
        """Writes one scalar; `description` is shown next to its chart."""
        self.summary(
            self._described_once(scalar_summary(tag, value, description)), step
        )

    def histogram(self, tag, buckets, step, description=""):
        """Writes a k x 3 [left, right, count] histogram array."""
        self._add(
            tag,
            np.asarray(buckets, dtype=np.float64),
            histogram_metadata.create_summary_metadata(
                display_name=tag, description=description
            ),
            step,
        )

    def image(self, tag, png, step, description=""):
        """Writes one PNG image (bytes) in the image plugin's format: a
        string tensor [width, height, PNG bytes]."""
        width, height = struct.unpack(">II", png[16:24])  # the PNG IHDR chunk
        self._add(
            tag,
            np.array([str(width).encode(), str(height).encode(), png], dtype=object),
            image_metadata.create_summary_metadata(
                display_name=tag, description=description
            ),
            step,
        )

    def custom_scalars(self, layout):
        """Writes a `tensorboard.plugins.custom_scalar.layout_pb2.Layout`:
        the CUSTOM SCALARS dashboard's charts, each holding several tags."""
        self._add(
            custom_scalar_metadata.CONFIG_SUMMARY_TAG,
            np.array(layout.SerializeToString(), dtype=object),
            custom_scalar_metadata.create_summary_metadata(),
            0,
        )

    def flush(self):
        """Writes everything added so far to disk; a no-op when nothing was
        added since the last flush (a per-batch hook that logged nothing
        then costs no file flush)."""
        if self._unflushed:
            self._unflushed = False
            self._guarded(lambda: self._writer.flush())

    @property
    def closed(self):
        return self._finalizer is None or not self._finalizer.alive

    def close(self):
        if not self.closed:
            self._guarded(self._writer.close)
        self._discard()

"""Reading back the TensorBoard event files an experiment wrote."""

import os

import numpy as np

EVENT_FILE_PREFIX = "events.out.tfevents."  # what every event writer names


def _events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(
        os.path.join(log_dir, "train"), size_guidance={"tensors": 0}
    )
    accumulator.Reload()
    return accumulator


def read_held(log_dir, tag, steps, fallback_tag):
    """The values of scalar `tag` at every step of `steps`, each written
    value held until the next one: kdrop's rate loggers write a rate only
    where it changes (`LoggingCallback.write_scalar_if_changing`). A rate
    that never changed has no such tag: its one value, the first of
    `fallback_tag` (the per-epoch tag), is held throughout."""
    if tag in _events(log_dir).Tags()["tensors"]:
        logged_steps, values = read_logged(log_dir, tag)
    else:
        logged_steps, values = np.array([0]), read_logged(log_dir, fallback_tag)[1][:1]
    indices = np.searchsorted(logged_steps, steps, side="right") - 1
    return np.asarray(values, dtype=float)[np.maximum(indices, 0)]


def read_logged(log_dir, tag):
    """(steps, values) of tensor summary `tag` in `log_dir/train`: floats
    for scalars, k x 3 [left, right, count] arrays for histograms."""
    from tensorboard.util import tensor_util

    events = _events(log_dir).Tensors(tag)
    values = [tensor_util.make_ndarray(event.tensor_proto) for event in events]
    if values and np.ndim(values[0]) == 0:
        values = [float(value) for value in values]
    return np.array([event.step for event in events]), values

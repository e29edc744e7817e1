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


def read_logged(log_dir, tag):
    """(steps, values) of tensor summary `tag` in `log_dir/train`: floats
    for scalars, k x 3 [left, right, count] arrays for histograms."""
    from tensorboard.util import tensor_util

    events = _events(log_dir).Tensors(tag)
    values = [tensor_util.make_ndarray(event.tensor_proto) for event in events]
    if values and np.ndim(values[0]) == 0:
        values = [float(value) for value in values]
    return np.array([event.step for event in events]), values

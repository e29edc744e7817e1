"""Reads TensorBoard event files back, independently of kdrop's writer."""

import os

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util


def event_file_paths(directory):
    """Sorted paths of the TensorBoard event files anywhere under `directory`."""
    return sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(directory)
        for name in names
        if name.startswith("events.out.tfevents.")
    )


def _accumulator(log_dir, subdir="train"):
    accumulator = EventAccumulator(
        os.path.join(str(log_dir), subdir), size_guidance={"tensors": 0, "scalars": 0}
    )
    accumulator.Reload()
    return accumulator


def read_tensors(log_dir, subdir="train"):
    """{tag: [(step, numpy value), ...]} for every tensor summary."""
    accumulator = _accumulator(log_dir, subdir)
    return {
        tag: [
            (e.step, tensor_util.make_ndarray(e.tensor_proto))
            for e in accumulator.Tensors(tag)
        ]
        for tag in accumulator.Tags()["tensors"]
    }


def read_scalars(log_dir, subdir="train"):
    """{tag: {step: float}} for scalar tensor summaries."""
    return {
        tag: {step: float(value) for step, value in events}
        for tag, events in read_tensors(log_dir, subdir).items()
        if np.ndim(events[0][1]) == 0 and np.issubdtype(events[0][1].dtype, np.number)
    }


def read_histograms(log_dir, subdir="train"):
    """{tag: {step: k x 3 [left, right, count] array}}."""
    return {
        tag: dict(events)
        for tag, events in read_tensors(log_dir, subdir).items()
        if np.ndim(events[0][1]) == 2
    }


def read_metadata(log_dir, subdir="train"):
    """{tag: SummaryMetadata} for every tensor summary: `.plugin_data
    .plugin_name` names the TensorBoard plugin that shows it ("scalars",
    "histograms", "images", ...), `.summary_description` its description."""
    accumulator = _accumulator(log_dir, subdir)
    return {
        tag: accumulator.SummaryMetadata(tag) for tag in accumulator.Tags()["tensors"]
    }


def read_descriptions(log_dir, subdir="train"):
    """{tag: the description in its summary metadata}."""
    return {
        tag: metadata.summary_description
        for tag, metadata in read_metadata(log_dir, subdir).items()
    }

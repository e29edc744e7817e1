"""The CUSTOM SCALARS dashboard kdrop writes for each log directory.

TensorBoard's custom_scalar plugin (2.21) shows, for each run, the LAST
layout event (tag `custom_scalars__config__`) read from that run's
directory, whatever event file holds it, and merges the layouts of all
runs: categories by title, in the order of the sorted run names, charts
appended unless equal to one already there. Every kdrop callback writes into
its own event file, so a callback writing only its own charts would hide the
others'. Here each callback adds the charts it feeds to its directory's set
(kept for the whole process, so a later `fit` into the same directory keeps
the earlier charts) and the full layout is written into the event file of
every kdrop writer still open in that directory: whichever file TensorBoard
reads last, its layout is the merge. Charts and categories keep the order of
`CHARTS` whatever order the callbacks start in.
"""

import os
import weakref

from tensorboard.plugins.custom_scalar import layout_pb2

# name: (category, chart title, tag regexes). The order is the dashboard's.
# Keras's TensorBoard callback writes `epoch_*` to the runs `train` and
# `validation`: one regex draws both runs' curves on one chart.
CHARTS = {
    "dropout_rate": ("Dropout", "dropout rate per layer", (r"^dropout_rate/",)),
    "batch_dropout_rate": (
        "Dropout",
        "dropout rate per layer, per batch",
        (r"^batch/dropout_rate/",),
    ),
    "dropped_fraction": (
        "Dropout",
        "fraction of units dropped (training-mode draw)",
        (r"^dropped_fraction/",),
    ),
    "loss": ("Dropout", "loss: train vs validation", (r"^epoch_loss$",)),
    "accuracy": ("Dropout", "accuracy: train vs validation", (r"^epoch_.*accuracy$",)),
    "generalization_gap": (
        "Dropout",
        "generalization gap (validation - train)",
        (r"^generalization_gap/",),
    ),
    "learning_rate": ("Optimisation", "learning rate", (r"^learning_rate$",)),
    "batch_learning_rate": (
        "Optimisation",
        "learning rate, per batch",
        (r"^batch/learning_rate$",),
    ),
    "momentum": ("Optimisation", "momentum", (r"^momentum$",)),
    "batch_momentum": ("Optimisation", "momentum, per batch", (r"^batch/momentum$",)),
    "sparsity": ("Activations", "sparsity per layer", (r"^sparsity/",)),
    "mean_activation": (
        "Activations",
        "mean activation per layer",
        (r"^mean_activation/",),
    ),
    **{
        f"mc_dropout_{metric}": (
            "MC dropout vs deterministic",
            metric,
            (rf"^mc_dropout/{metric}/",),
        )
        for metric in ("accuracy", "nll", "brier", "ece")
    },
}

# Absolute directory -> the chart names added there, and its open writers.
_charts = {}
_writers = {}


def layout(names):
    """The `layout_pb2.Layout` of the charts `names` (keys of `CHARTS`), in
    the order of `CHARTS`, one category per distinct category name."""
    unknown = set(names) - set(CHARTS)
    if unknown:
        raise ValueError(
            f"Unknown dashboard charts {sorted(unknown)} (from a callback's "
            f"`dashboard_charts()`). Known charts: {list(CHARTS)}."
        )
    categories = {}
    for name, (category, title, regexes) in CHARTS.items():
        if name in names:
            categories.setdefault(category, []).append(
                layout_pb2.Chart(
                    title=title,
                    multiline=layout_pb2.MultilineChartContent(tag=regexes),
                )
            )
    return layout_pb2.Layout(
        category=[
            layout_pb2.Category(title=title, chart=charts)
            for title, charts in categories.items()
        ]
    )


def add_charts(writer, names):
    """Adds the charts `names` (keys of `CHARTS`) to the layout of
    `writer.directory` and writes the merged layout into every open kdrop
    writer of that directory, `writer` included."""
    directory = os.path.abspath(writer.directory)
    charts = _charts.setdefault(directory, set())
    charts.update(names)
    writers = _writers.setdefault(directory, weakref.WeakSet())
    writers.add(writer)
    merged = layout(charts)
    for open_writer in [w for w in writers if not w.closed]:
        open_writer.custom_scalars(merged)
        open_writer.flush()

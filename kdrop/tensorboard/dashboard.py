"""The CUSTOM SCALARS dashboard kdrop writes for each log directory.

TensorBoard's custom_scalar plugin (2.21) shows, for each run, the LAST
layout event (tag `custom_scalars__config__`) read from that run's
directory, whatever event file holds it, and merges the layouts of all
runs: categories by title, in the order of the sorted run names, charts
appended unless equal to one already there. Every kdrop callback writes into
its own event file, so a callback writing only its own charts would hide the
others'. Here each callback adds a chart to its directory's set when it first writes
a tag the chart draws (`chart_of`), so that no chart is left empty (a fixed
dropout rate, written once per `fit`, has no per-batch chart); the set is
kept for the whole process, so a later `fit` into the same directory keeps
the earlier charts, and the full layout is written into the event file of
every kdrop writer still open in that directory: whichever file TensorBoard
reads last, its layout is the merge. Charts and categories keep the order of
`kdrop.tensorboard.families.FAMILIES`, where each chart is declared with
its family, whatever order the callbacks start in.
"""

import functools
import os
import types
import weakref

from tensorboard.plugins.custom_scalar import layout_pb2

from kdrop.tensorboard.families import FAMILIES, family_of

# The families that have a chart, by name, in the dashboard's order.
CHARTS = types.MappingProxyType(
    {family.name: family for family in FAMILIES if family.chart is not None}
)

# Absolute directory -> the chart names added there, and its open writers.
_charts = {}
_writers = {}


# Asked at every write: FAMILIES is a tuple, so a tag's answer never changes.
@functools.lru_cache(maxsize=4096)
def chart_of(tag):
    """The name (a key of `CHARTS`) of the chart that draws `tag`, or None
    when its family has no chart.

    Raises:
        UnknownTagError (a KeyError): for a tag of no family.
    """
    family = family_of(tag)
    return family.name if family.chart is not None else None


def layout(names):
    """The `layout_pb2.Layout` of the charts of the families `names` (keys
    of `CHARTS`), in the order of `CHARTS`, one category per distinct
    category name; each chart draws the tags of its family's `pattern`."""
    unknown = set(names) - set(CHARTS)
    if unknown:
        raise ValueError(
            f"Unknown dashboard charts {sorted(unknown)} (given to "
            f"`add_dashboard_charts()`). Known charts: {list(CHARTS)}."
        )
    categories = {}
    for name, family in CHARTS.items():
        if name in names:
            categories.setdefault(family.chart.category, []).append(
                layout_pb2.Chart(
                    title=family.chart.title,
                    multiline=layout_pb2.MultilineChartContent(tag=[family.pattern]),
                )
            )
    return layout_pb2.Layout(
        category=[
            layout_pb2.Category(title=title, chart=charts)
            for title, charts in categories.items()
        ]
    )


def add_charts(writer, names):
    """Adds the charts of the families `names` (keys of `CHARTS`) to the layout of
    `writer.directory` and writes the merged layout into every open kdrop
    writer of that directory, `writer` included; nothing is written when
    the directory's layout already has them all and `writer` holds it."""
    directory = os.path.abspath(writer.directory)
    charts = _charts.setdefault(directory, set())
    writers = _writers.setdefault(directory, weakref.WeakSet())
    if charts.issuperset(names) and writer in writers:
        return
    charts.update(names)
    writers.add(writer)
    merged = layout(charts)
    for open_writer in [w for w in writers if not w.closed]:
        open_writer.custom_scalars(merged)
        open_writer.flush()

"""The experiments' figures: saved as PNG and logged for TensorBoard's
IMAGES dashboard."""

import contextlib
import math
import os

import numpy as np

from kdrop import optional
from kdrop.experiments.events import EVENT_FILE_PREFIX
from kdrop.experiments.tables import write_csv
from kdrop.tensorboard.writer import SummaryWriter, prepare_log_dir

FIGURES_RUN = "figures"  # the TensorBoard run of a script's figures
# The narrowest PNG a figure is saved as: TensorBoard's IMAGES dashboard
# shows an image at its own pixel size (up to the card's width), so a
# 600-pixel figure is a thumbnail unless "Show actual image size" is ticked.
MIN_WIDTH_PIXELS = 800


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


def dpi_for(size):
    """Dots per inch that make a figure of `size` = (width, height) inches
    at least `MIN_WIDTH_PIXELS` wide (100 at the least)."""
    return max(100, math.ceil(MIN_WIDTH_PIXELS / size[0]))


@contextlib.contextmanager
def figure(path, ncols=1, nrows=1, size=(6, 4), *, description, log=True, **kwargs):
    """Yields (figure, axes), saves the figure to `path` (Agg backend, at
    least `MIN_WIDTH_PIXELS` wide, `dpi_for`) and, if `log`, logs it for
    TensorBoard's IMAGES dashboard (`log_figure`, with `description`: what
    the figure shows, one line). The layout is matplotlib's constrained layout, which
    keeps titles, suptitles and legends outside the axes inside the figure;
    `kwargs` go to `plt.subplots` (e.g. `sharex="row"`)."""
    matplotlib = optional.require("matplotlib", "The experiment scripts")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained", **kwargs)
    try:
        yield fig, axes
        fig.savefig(path, dpi=dpi_for(size))
    finally:
        plt.close(fig)
    if log:
        log_figure(path, description)


def seeds_title(title, seeds):
    """`title` with what its lines and bands are over `seeds` runs: ", 3
    seeds: mean +- 1 std" for two or more, ", 1 seed" for one (no spread
    to show)."""
    if seeds >= 2:
        return f"{title}, {seeds} seeds: mean +- 1 std"
    return f"{title}, 1 seed"


def wrap_title(title, width_inches, fontsize=12):
    """`title` broken into lines that fit `width_inches` at `fontsize`
    points, so that a long title is not cut off at the figure's edges: a
    character of DejaVu Sans (matplotlib's default font) is about 0.67 em
    wide on average, taken as 0.7; the y axis's labels, which push the
    title's centre right, as 20 % of the width."""
    import textwrap

    characters = max(20, int(0.8 * width_inches * 72 / (0.7 * fontsize)))
    return textwrap.fill(title, characters)


def integer_epochs(axis):
    """Ticks only at whole numbers on the x axis of `axis` (epochs, steps):
    no "1.25" on a 3-epoch run."""
    import matplotlib.ticker

    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def readable_log_y(axis, lines=(), bands=()):
    """A log y axis with plain tick labels at 1, 2 and 5 times the powers of
    ten (2, 5, 10, 20 rather than 10^1): the last epochs' few-percent
    errors get as much height as the first epoch's tens of percent.

    A log axis cannot show 0 or less: matplotlib puts such a point far
    below the axes, so a training error that reaches exactly 0 % would
    silently lose the end of its curve. When the values drawn (`lines`, the
    points of the curves, and `bands`, the edges of their bands, any
    iterables of numbers) hold one at or below 0, the axis is a symlog one
    instead: logarithmic above a threshold and linear from it down through
    0, the threshold being the largest power of ten at or below the
    smallest positive point of `lines` (1 when there is none), so every
    positive point keeps its place on the log part.

    Returns:
        None for a log axis, or the threshold of the linear part, for the
        caller to state on the axis label.
    """
    import matplotlib.ticker

    lines = np.array([x for values in lines for x in np.ravel(values)], float)
    bands = np.array([x for values in bands for x in np.ravel(values)], float)
    threshold = None
    if np.any(np.concatenate([lines, bands]) <= 0):
        positive = lines[np.isfinite(lines) & (lines > 0)]
        threshold = (
            10.0 ** math.floor(math.log10(positive.min())) if positive.size else 1.0
        )
        axis.set_yscale("symlog", linthresh=threshold)
        locator = matplotlib.ticker.SymmetricalLogLocator(
            linthresh=threshold, base=10, subs=(1.0, 2.0, 5.0)
        )
    else:
        axis.set_yscale("log")
        locator = matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0))
    axis.yaxis.set_major_locator(locator)
    axis.yaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    )
    axis.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    return threshold


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
    to its error-bar half-widths; `xscale` / `yscale` e.g. "log". Whole
    numbers on a linear x axis get whole-number ticks; a long title is
    wrapped (`wrap_title`). Writes the figure to `path`; returns the
    (closed) matplotlib figure."""
    import matplotlib.ticker

    with figure(path, description=f"{title}: {ylabel} against {xlabel}.") as (
        fig,
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
        elif all(float(x).is_integer() for xs, _ in series.values() for x in xs):
            integer_epochs(axes)
        if yscale:
            axes.set_yscale(yscale)
            axes.yaxis.set_major_formatter(plain)
            axes.yaxis.set_minor_formatter(plain)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.set_title(wrap_title(title, 6))
        axes.grid(alpha=0.3)
        axes.legend()
    return fig


def is_log_panel(panel):
    """Whether the panel named `panel` gets a log y axis (`plot_bands`): an
    error or a loss, positive quantities that fall by a factor of ten or
    more from the first epoch to the last."""
    return "error" in panel or "loss" in panel


def plot_bands(path, panels, title, styles=None, xlabel="epoch", log=True):
    """One panel per entry of `panels` ({panel: {label: seeds x epochs
    array}}): each label's mean over seeds as a line and, with two seeds
    or more, mean +- sample std as a band; `styles` maps a label to `plot`
    keywords (color, linestyle). Error and loss panels have a log y axis
    (`is_log_panel`; symlog, linear near 0, where a mean or a band edge is 0
    or less, e.g. a 0 % training error: `readable_log_y`), every x axis
    whole-number ticks; the title says what
    the lines are over (`seeds_title`). Writes the figure to `path` and
    the drawn numbers to `curves.csv` beside it, and logs it for TensorBoard
    if `log` (`figure`); returns the (closed) matplotlib figure."""
    styles = styles or {}
    rows = []
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    seeds = max(len(runs) for series in panels.values() for runs in series.values())
    title = seeds_title(title, seeds)
    spread = "band = +- 1 sample std" if seeds >= 2 else "one run, no band"
    description = (
        f"{title}: {', '.join(panels)} against {xlabel}; line = mean over "
        f"seeds, {spread}; errors and losses on a log scale (linear near 0 "
        "where a value is 0 or less, as the panel's y label says)."
    )
    with figure(
        path,
        ncols,
        nrows,
        size=(6 * ncols, 4 * nrows),
        squeeze=False,
        description=description,
        log=log,
    ) as (fig, axes):
        for axis, (panel, series) in zip(axes.flat, panels.items()):
            lines, bands = [], []  # every value drawn, for the log axis
            for index, (label, runs) in enumerate(series.items()):
                runs = np.asarray(runs, dtype=float)
                mean = runs.mean(axis=0)
                std = runs.std(axis=0, ddof=1) if len(runs) > 1 else 0 * mean
                epochs = np.arange(1, runs.shape[1] + 1)
                style = {"color": f"C{index}", **styles.get(label, {})}
                axis.plot(epochs, mean, label=label, **style)
                lines.append(mean)
                if len(runs) > 1:
                    bands += [mean - std, mean + std]
                    axis.fill_between(
                        epochs,
                        mean - std,
                        mean + std,
                        color=style["color"],
                        alpha=0.2,
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
            if is_log_panel(panel):
                threshold = readable_log_y(axis, lines, bands)
                if threshold is not None:
                    axis.set_ylabel(f"{panel} (log scale, linear below {threshold:g})")
            integer_epochs(axis)
            axis.grid(alpha=0.3, which="both")
            axis.legend(fontsize=8)
        for axis in axes.flat[len(panels) :]:
            axis.set_axis_off()
        fig.suptitle(wrap_title(title, 6 * ncols))
    write_csv(rows, os.path.join(os.path.dirname(path), "curves.csv"))
    return fig

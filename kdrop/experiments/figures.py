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


@contextlib.contextmanager
def figure(path, ncols=1, nrows=1, size=(6, 4), *, description, **kwargs):
    """Yields (figure, axes), saves the figure to `path` (Agg backend) and
    logs it for TensorBoard's IMAGES dashboard (`log_figure`, with
    `description`: what the figure shows, one line)."""
    matplotlib = optional.require("matplotlib", "The experiment scripts")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=size, **kwargs)
    try:
        yield fig, axes
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    log_figure(path, description)


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
    to its error-bar half-widths; `xscale` / `yscale` e.g. "log"."""
    import matplotlib.ticker

    with figure(path, description=f"{title}: {ylabel} against {xlabel}.") as (
        _,
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
        if yscale:
            axes.set_yscale(yscale)
            axes.yaxis.set_major_formatter(plain)
            axes.yaxis.set_minor_formatter(plain)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend()
    return path


def plot_bands(path, panels, title, styles=None, xlabel="epoch"):
    """One panel per entry of `panels` ({panel: {label: seeds x epochs
    array}}): each label's mean over seeds as a line and mean +- sample std
    as a band; `styles` maps a label to `plot` keywords (color,
    linestyle). Writes the figure to `path` and the drawn numbers to
    `curves.csv` beside it; returns the (closed) matplotlib figure."""
    styles = styles or {}
    rows = []
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    description = (
        f"{title}: {', '.join(panels)} against {xlabel}; line = mean over "
        "seeds, band = +- 1 sample std."
    )
    with figure(
        path,
        ncols,
        nrows,
        size=(6 * ncols, 4 * nrows),
        squeeze=False,
        description=description,
    ) as (fig, axes):
        for axis, (panel, series) in zip(axes.flat, panels.items()):
            for index, (label, runs) in enumerate(series.items()):
                runs = np.asarray(runs, dtype=float)
                mean = runs.mean(axis=0)
                std = runs.std(axis=0, ddof=1) if len(runs) > 1 else 0 * mean
                epochs = np.arange(1, runs.shape[1] + 1)
                style = {"color": f"C{index}", **styles.get(label, {})}
                axis.plot(epochs, mean, label=label, **style)
                axis.fill_between(
                    epochs, mean - std, mean + std, color=style["color"], alpha=0.2
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
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        for axis in axes.flat[len(panels) :]:
            axis.set_axis_off()
        fig.suptitle(title)
    write_csv(rows, os.path.join(os.path.dirname(path), "curves.csv"))
    return fig

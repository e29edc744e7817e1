"""Mean and spread over seeds of every per-epoch curve of a log directory.

An experiment that trains each variant with several seeds writes one run
per seed (`<out>/<variant>/seed_<n>/{train,validation}`); TensorBoard then
draws one line per seed and run, and the variants cannot be told apart.
`aggregate_seeds` reads those runs back with TensorBoard's own reader and
writes, for each variant, one run `<out>/across_seeds/<variant>` with the
mean over seeds (`across_seeds/<quantity>`) and the band mean -/+ one
sample standard deviation (`within_one_std/<quantity>/lower`, `.../upper`),
drawn as margin charts first on the CUSTOM SCALARS dashboard.
"""

import collections
import os
import re
import shutil

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.util import tensor_util

from kdrop.tensorboard import families
from kdrop.tensorboard.writer import SummaryWriter, check_log_dir

OUTPUT = "across_seeds"
BAND = "within_one_std"
SEED_PATTERN = r"seed_\d+"
# The event file of `log_dir` itself that holds the merged layout; its
# suffix lets a second aggregation find and replace it.
_LAYOUT_SUFFIX = ".kdrop_across_seeds"
# Keras's accuracy curves (`epoch_accuracy`, `epoch_sparse_categorical_accuracy`):
# aggregated as error in percent, the unit of the experiments' tables.
_ACCURACY = re.compile(r"^(epoch_.*)accuracy$")
# Per-batch series: kdrop's `*_per_batch` (and its older `batch/` tags),
# Keras's `batch_*` and `evaluation_*_vs_iterations` (update_freq="batch").
_PER_BATCH = re.compile(r"_per_batch(/|$)|^batch[/_]|^evaluation_.*_vs_iterations$")
# The runs' final metrics (`log_hparams`): one result per run, not a curve; a
# margin chart of one point each would be clutter, and the experiments print
# their mean and std over seeds in the aggregate table.
_FINAL_METRICS = families.BY_NAME[families.WRAP_UP]
# Values that are set, not measured: Keras's learning rate and kdrop's
# `rates/` (dropout rate, learning rate, momentum). One that every seed holds
# at one value throughout (a fixed rate) is known before training; its
# margin chart would be a flat line with no band, so it is left out.
_SET_VALUES = re.compile(r"^epoch_learning_rate$|^rates/")


def _run_directories(log_dir):
    """Relative paths (with "/") of the directories under `log_dir` that hold
    event files, the aggregation's own output left out."""
    runs = []
    for directory, subdirectories, files in os.walk(log_dir):
        relative = os.path.relpath(directory, log_dir)
        if relative == OUTPUT:
            subdirectories.clear()
            continue
        subdirectories.sort()
        if relative != "." and any("tfevents" in name for name in files):
            runs.append(relative.replace(os.sep, "/"))
    return runs


def _seed_grouping(seed_pattern):
    """A function run -> (variant, subrun, seed) or None, from `seed_pattern`
    (a regex a run's seed folder matches in full, or a function)."""
    if callable(seed_pattern):
        return seed_pattern
    if isinstance(seed_pattern, str):
        try:
            seed_pattern = re.compile(seed_pattern)
        except re.error as error:
            raise ValueError(
                f"`seed_pattern` must be a valid regular expression ({error}). "
                f"Received: seed_pattern={seed_pattern!r}."
            ) from error
    if not isinstance(seed_pattern, re.Pattern):
        raise TypeError(
            "`seed_pattern` must be a regex (str or compiled) that a run's seed "
            "folder matches in full, or a function run -> (variant, subrun, "
            "seed) or None. Received: "
            f"seed_pattern={seed_pattern!r} of type {type(seed_pattern).__name__}."
        )

    def group(run):
        parts = run.split("/")
        found = [i for i, part in enumerate(parts) if seed_pattern.fullmatch(part)]
        if len(found) != 1:
            return None
        (i,) = found
        return "/".join(parts[:i]), "/".join(parts[i + 1 :]), parts[i]

    group.pattern = seed_pattern.pattern
    return group


def _read_run(path):
    """({scalar tag: {step: value}}, the run's last CUSTOM SCALARS layout or
    None): scalars both as TensorFlow 2 writes them (tensors of the scalars
    plugin) and as TensorFlow 1's `simple_value`; the last value of a step
    written twice."""
    accumulator = EventAccumulator(path, size_guidance={"tensors": 0, "scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars = {
        tag: {event.step: event.value for event in accumulator.Scalars(tag)}
        for tag in tags["scalars"]
    }
    layout = None
    for tag in tags["tensors"]:
        events = accumulator.Tensors(tag)
        plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        if tag == custom_scalar_metadata.CONFIG_SUMMARY_TAG:
            layout = layout_pb2.Layout.FromString(
                tensor_util.make_ndarray(events[-1].tensor_proto).item()
            )
        elif plugin == scalar_metadata.PLUGIN_NAME:
            scalars[tag] = {
                event.step: float(tensor_util.make_ndarray(event.tensor_proto))
                for event in events
            }
    return scalars, layout


def _quantity(tag, subrun, folded):
    """The name of `tag` of subrun `subrun` below `across_seeds/`: Keras's
    flat tags (and any tag written in several subruns, `folded`) get the
    subrun appended (`epoch_loss/train`), an accuracy becomes error in %."""
    accuracy = _ACCURACY.match(tag)
    if accuracy:
        tag = f"{accuracy.group(1)}error_%"
    if subrun and ("/" not in tag or folded):
        return f"{tag}/{subrun}"
    return tag


def _mean_and_band(per_seed):
    """(steps present in every seed, mean, sample std (n - 1)) of a list of
    {step: value}, as `kdrop.experiments.tables.mean_std`."""
    steps = sorted(set.intersection(*(set(series) for series in per_seed)))
    values = np.array([[series[step] for step in steps] for series in per_seed])
    return steps, values.mean(axis=0), values.std(axis=0, ddof=1)


def _held_fixed(per_seed):
    """Whether every seed's {step: value} holds one and the same value."""
    return len({value for series in per_seed for value in series.values()}) == 1


def _merged_layout(layouts):
    """The CUSTOM SCALARS plugin's merge of `layouts` (sorted run order):
    categories by title in order of first appearance, a chart appended to
    its category unless an equal one is there."""
    merged = collections.OrderedDict()
    for layout in layouts:
        for category in layout.category:
            charts = merged.setdefault(category.title, [])
            charts.extend(chart for chart in category.chart if chart not in charts)
    return [
        layout_pb2.Category(title=title, chart=charts)
        for title, charts in merged.items()
    ]


def _margin_category(quantities):
    """The margin charts of `quantities`, listed in reverse so that
    TensorBoard shows them in sorted order: its Custom Scalars page (2.21,
    `tf-dom-repeat`'s `_insertItem`) inserts chart i before the i-th child
    element of the category, but each chart adds two (a `dom-if` template
    for a multi-line and one for a margin chart), so the margin charts of a
    category end up in reverse order. tests/test_tensorboard_browser.py
    reads the order off the page."""
    return layout_pb2.Category(
        title=families.ACROSS_SEEDS,
        chart=[
            layout_pb2.Chart(
                title=quantity,
                margin=layout_pb2.MarginChartContent(
                    series=[
                        layout_pb2.MarginChartContent.Series(
                            value=f"{OUTPUT}/{quantity}",
                            lower=f"{BAND}/{quantity}/lower",
                            upper=f"{BAND}/{quantity}/upper",
                        )
                    ]
                ),
            )
            for quantity in reversed(quantities)
        ],
    )


def _groups(log_dir, seed_pattern):
    """{variant: {seed: {subrun: run}}} of the runs under `log_dir`."""
    runs = _run_directories(log_dir)
    if not runs:
        raise ValueError(
            f"No TensorBoard runs (directories holding event files) under "
            f"`log_dir`; nothing to aggregate. Received: log_dir={log_dir!r}."
        )
    group = _seed_grouping(seed_pattern)
    groups = {}
    for run in runs:
        key = group(run)
        if key is not None:
            variant, subrun, seed = key
            groups.setdefault(variant, {}).setdefault(seed, {})[subrun] = run
    if not any(len(seeds) >= 2 for seeds in groups.values()):
        grouping = getattr(group, "pattern", None)
        grouping = (
            f"a run folder matching the regex {grouping!r} in full"
            if grouping is not None
            else f"the function {seed_pattern!r}"
        )
        found = {variant: sorted(seeds) for variant, seeds in groups.items()}
        raise ValueError(
            f"No variant has runs of two or more seeds under `log_dir`, so "
            f"there is nothing to aggregate: {len(runs)} run(s) found "
            f"({runs[:6]}{'...' if len(runs) > 6 else ''}), grouped by "
            f"{grouping} as the seed: {found}. Pass `seed_pattern` to group "
            f"another layout. Received: log_dir={log_dir!r}."
        )
    return groups


def _aggregate_variant(log_dir, variant, seeds):
    """{quantity: (steps, mean, std)} over the seeds of one variant, and
    the layouts of its runs."""
    subruns = collections.defaultdict(dict)  # subrun -> seed -> scalars
    layouts = []
    for seed, runs in seeds.items():
        for subrun, run in runs.items():
            scalars, layout = _read_run(os.path.join(log_dir, run))
            subruns[subrun][seed] = scalars
            if layout is not None:
                layouts.append((run, layout))
    tag_subruns = collections.Counter(
        tag
        for per_seed in subruns.values()
        for tag in set().union(*(scalars.keys() for scalars in per_seed.values()))
    )
    quantities = {}
    for subrun, per_seed in sorted(subruns.items()):
        tags = set().union(*(scalars.keys() for scalars in per_seed.values()))
        for tag in sorted(tags):
            if _PER_BATCH.search(tag) or _FINAL_METRICS.matches(tag):
                continue
            series = [scalars[tag] for scalars in per_seed.values() if tag in scalars]
            if len(series) < 2:
                continue
            if _SET_VALUES.search(tag) and _held_fixed(series):
                continue
            if _ACCURACY.match(tag):
                series = [
                    {step: 100 * (1 - value) for step, value in s.items()}
                    for s in series
                ]
            steps, mean, std = _mean_and_band(series)
            if steps:
                quantity = _quantity(tag, subrun, tag_subruns[tag] > 1)
                quantities[quantity] = (steps, mean, std)
    if not quantities:
        listing = {
            f"{seed}/{subrun}" if subrun else seed: sorted(scalars)
            for subrun, per_seed in subruns.items()
            for seed, scalars in per_seed.items()
        }
        raise ValueError(
            f"The seeds of variant {variant!r} under `log_dir` share no "
            "per-epoch scalar tag at a common step, so there is nothing to "
            f"aggregate. Their scalar tags: {listing}. Received: "
            f"log_dir={log_dir!r}."
        )
    return quantities, layouts


def aggregate_seeds(log_dir, seed_pattern=SEED_PATTERN):
    """Writes the mean and the +-1 std band over seeds of every per-epoch curve.

    Finds every run (a directory holding event files) under `log_dir` and
    groups the runs that differ only in their seed folder: with the default
    `seed_pattern`, `inverted/seed_0/train` and `inverted/seed_1/train` are
    the seeds of variant `inverted`, subrun `train`. For every scalar tag
    that two or more seeds of a variant hold, it writes into the run
    `<log_dir>/across_seeds/<variant>`:

    - `across_seeds/<quantity>`: the mean over those seeds;
    - `within_one_std/<quantity>/lower` and `.../upper`: mean -/+ the sample
      standard deviation (n - 1 in the denominator, as the experiments'
      `aggregate.csv`),

    at each step that every one of those seeds holds (a step missing in one
    seed, e.g. an interrupted run, is left out). `<quantity>` is the tag,
    with the subrun appended for Keras's flat tags (`epoch_loss/train`,
    `epoch_loss/validation`) and for a tag written in several subruns; Keras's
    accuracy curves become error in percent, 100 * (1 - accuracy)
    (`epoch_error_%/validation`); kdrop's tags keep their names
    (`gap/validation_minus_train/loss`). Per-batch series (`*_per_batch`,
    Keras's `batch_*`), a set value that every seed holds fixed
    (`epoch_learning_rate` or a `rates/` tag at one value throughout: known
    before training, a flat line with no band), the final metrics of
    `log_hparams` (`wrap_up/*`: a result per run, not a curve; the
    experiments' `aggregate.csv` has their mean and std), histograms and
    images are not aggregated.

    The CUSTOM SCALARS dashboard gets a first category, "Across seeds (mean
    +- 1 std)", with one margin chart per quantity (a line and a band per
    variant), shown in sorted order (the layout lists them in reverse, as
    TensorBoard 2.21 reverses a category's margin charts), followed by the
    categories of the per-seed runs, merged. The layout is written into
    `log_dir` itself (the run `.`, which TensorBoard reads first as run
    names sort) and into every `across_seeds` run.
    Running it again replaces `<log_dir>/across_seeds` and that layout,
    never duplicates them.

    Args:
        log_dir: the experiment's directory (a path), the one TensorBoard
            is started on.
        seed_pattern: which folder of a run's path is its seed: a regex
            (str or compiled) that the folder matches in full (default
            `seed_<n>`), or a function of the run's path relative to
            `log_dir` ("/"-separated) returning `(variant, subrun, seed)`,
            or None for a run that is no seed of a variant.

    Returns:
        {variant: [quantities]}: the `across_seeds` runs written and, for
        each, the quantities aggregated.

    Raises:
        TypeError: `log_dir` not a path, `seed_pattern` neither a regex nor
            a function.
        ValueError: `log_dir` missing or holding no runs; no variant with
            two or more seeds (the message says how many runs were found and
            the grouping used); seeds of a variant that share no scalar tag
            at a common step.

    Example:

    ```python
    import tempfile

    import kdrop

    out = tempfile.mkdtemp()
    for variant, offset in (("none", 0.1), ("dropout", 0.0)):
        for seed in range(3):
            run = f"{out}/{variant}/seed_{seed}/validation"
            writer = kdrop.tensorboard.SummaryWriter(run)
            for epoch in range(5):
                loss = 1 / (epoch + 1) + offset + 0.01 * seed
                writer.scalar("epoch_loss", loss, epoch)
            writer.close()
    print(kdrop.tensorboard.aggregate_seeds(out))
    # {'dropout': ['epoch_loss/validation'], 'none': ['epoch_loss/validation']}
    ```
    """
    check_log_dir(log_dir)
    log_dir = os.fspath(log_dir)
    if not os.path.isdir(log_dir):
        raise ValueError(
            f"`log_dir` must be an existing directory of TensorBoard runs. "
            f"Received: log_dir={log_dir!r}."
        )
    groups = _groups(log_dir, seed_pattern)
    results, layouts = {}, []
    for variant, seeds in sorted(groups.items()):
        if len(seeds) >= 2:
            results[variant], variant_layouts = _aggregate_variant(
                log_dir, variant, seeds
            )
            layouts += variant_layouts
    quantities = sorted({q for quantities in results.values() for q in quantities})
    layout = layout_pb2.Layout(
        category=[_margin_category(quantities)]
        + _merged_layout(layout for _, layout in sorted(layouts, key=lambda x: x[0]))
    )
    output = os.path.join(log_dir, OUTPUT)
    shutil.rmtree(output, ignore_errors=True)
    for variant, variant_quantities in results.items():
        writer = SummaryWriter(os.path.join(output, variant or "all"))
        _write_variant(writer, variant_quantities)
        writer.custom_scalars(layout)
        writer.close()
    for name in os.listdir(log_dir):
        if name.endswith(_LAYOUT_SUFFIX):
            os.remove(os.path.join(log_dir, name))
    writer = SummaryWriter(log_dir, filename_suffix=_LAYOUT_SUFFIX)
    writer.custom_scalars(layout)
    writer.close()
    return {variant: sorted(q) for variant, q in results.items()}


def _write_variant(writer, quantities):
    for quantity, (steps, mean, std) in sorted(quantities.items()):
        value_tag = f"{OUTPUT}/{quantity}"
        lower_tag, upper_tag = f"{BAND}/{quantity}/lower", f"{BAND}/{quantity}/upper"
        for step, m, s in zip(steps, mean, std):
            writer.scalar(value_tag, m, step, families.describe(value_tag))
            writer.scalar(lower_tag, m - s, step, families.describe(lower_tag))
            writer.scalar(upper_tag, m + s, step, families.describe(upper_tag))

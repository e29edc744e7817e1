"""Every tag family on kdrop's TensorBoard dashboards, in one table.

A family is the tags that share a description and a chart: `rates/dropout`
holds `rates/dropout/<path>` for every dropout layer, `rates/learning_rate`
the one tag `rates/learning_rate`. `FAMILIES` gives, for each, its name
(the tag, or the prefix before `/<suffix>`), the one-line description TensorBoard shows
next to its chart (its summary metadata) and its chart on the CUSTOM SCALARS
dashboard; the descriptions (`describe`) and the layouts
(`kdrop.tensorboard.dashboard`) are read from it, so a new tag is one entry
here. Writing a tag of no family raises `UnknownTagError`, naming the tag
and this table, at its first write.

Each description says what is measured, in which mode and per what step.
Per-epoch tags use Keras's epoch index (0-based, the axis of `epoch_loss`);
per-batch tags, all named `*_per_batch`, the 0-based global index of the
training step about to run (Keras's own `batch_*` and
`evaluation_*_vs_iterations` count steps done, 1-based).

Every tag starts with one of the `GROUPS` (the TIME SERIES groups, which
TensorBoard sorts by name): the story first (`epoch_*`, `gap`), then
`mc_dropout`, `rates`, `statistics` and `value_histograms`. The order of
`FAMILIES` is the same, and the CUSTOM SCALARS dashboard's: categories in
the order of their first chart, charts in table order.
"""

import dataclasses
import functools
import re
import types

_PER_BATCH = "Per batch: step = 0-based global index of the training step about to run."

STORY = "Train vs validation, per seed"
MC_DROPOUT = "MC dropout vs deterministic"
RATES = "Rates"
STATISTICS = "Statistics"
# The margin charts of `kdrop.tensorboard.aggregate_seeds`, the dashboard's
# first category.
ACROSS_SEEDS = "Across seeds (mean ± 1 std)"
# The group of the runs' final metrics (`kdrop.tensorboard.log_hparams`):
# TensorBoard's Time Series tab orders groups by name, and this one must come
# after every other, `within_one_std` included.
WRAP_UP = "wrap_up"
ONCE_PER_RUN = "Once per run, at the step given to log_hparams."
# The steps of an aggregate are those of the per-seed curves: epochs for the
# training scripts, labelled examples for the active-learning runs.
AT_THE_SEEDS_STEPS = (
    "Per epoch, or per round (step = labelled examples) for active learning."
)

# TensorBoard's TIME SERIES tab (its landing tab) groups cards by the tag's
# prefix before the first "/" (a tag without "/" is a group of its own) and
# sorts the groups by name: the prefixes are chosen so that the sorted
# groups tell the story in this order. `epoch_*` stands for the groups of
# Keras's own curves (`epoch_loss`, `epoch_accuracy`, ...).
GROUPS = (
    ("across_seeds", "the mean over seeds of each curve, one run per variant"),
    ("epoch_*", "Keras's own per-seed curves: loss, accuracy, learning rate"),
    ("gap", "validation minus training, per seed: loss, error in % points"),
    ("mc_dropout", "MC-dropout vs deterministic prediction on held-out data"),
    ("rates", "dropout rates, learning rate and momentum"),
    ("statistics", "per-layer scalars: sparsity, means, norms, dropped fraction"),
    ("value_histograms", "per-layer histograms of activations, weights, gradients"),
    ("within_one_std", "the band (mean -/+ 1 std) around `across_seeds`"),
    ("wrap_up", "the final metrics of each run, for the HPARAMS table"),
)


def group_of(tag):
    """The TIME SERIES group of `tag`: its prefix before the first "/", or
    the tag itself."""
    return tag.split("/", 1)[0]


@dataclasses.dataclass(frozen=True)
class Chart:
    """A chart of the CUSTOM SCALARS dashboard: its category and title."""

    category: str
    title: str


@dataclasses.dataclass(frozen=True)
class TagFamily:
    """Tags that share a description and a chart.

    Attributes:
        name: the family's tag (`suffix` None) or the prefix of its tags
            `<name>/<suffix>`; also its chart's name
            (`kdrop.tensorboard.dashboard.CHARTS`).
        suffix: None, or what follows `<name>/` in its tags, as the
            docstrings write it (`"<path>"`, `"<metric>"`).
        description: the one line TensorBoard shows with the tags; None for
            tags that Keras's TensorBoard callback writes, not kdrop, and
            that only appear on a chart.
        chart: the family's chart (its tags drawn by `pattern`), or None.
        pattern: the regex of the family's tags, from `name` and `suffix`
            unless given (Keras's metrics: `^epoch_.*accuracy$`).
    """

    name: str
    suffix: str | None
    description: str | None
    chart: Chart | None
    pattern: str = None

    def __post_init__(self):
        if self.pattern is None:
            end = "/" if self.suffix else "$"
            object.__setattr__(self, "pattern", f"^{re.escape(self.name)}{end}")

    @property
    def tag(self):
        """The family's tags as the docstrings write them."""
        return f"{self.name}/{self.suffix}" if self.suffix else self.name

    def matches(self, tag):
        return re.search(self.pattern, tag) is not None


_PROBE = "on the probe batch: inference mode; a dropout layer's output in one "
_MC_VS_DETERMINISTIC = (
    "on the held-out batch of the MC-dropout average (mc) or the deterministic "
    "prediction. Per epoch."
)

FAMILIES = (
    # Written by `kdrop.tensorboard.aggregate_seeds` into the runs
    # `across_seeds/<variant>`; charted as one margin chart per quantity.
    TagFamily(
        "across_seeds",
        "<quantity>",
        "Mean over seeds of the per-seed curve <quantity> (Keras's accuracy "
        "as error in %), at the steps every seed holds; its band (mean -/+ "
        f"sample std, n - 1) is within_one_std/<quantity>. {AT_THE_SEEDS_STEPS}",
        None,
    ),
    # Keras's TensorBoard callback writes `epoch_*` to the runs `train` and
    # `validation`: one regex draws both runs' curves on one chart.
    TagFamily("epoch_loss", None, None, Chart(STORY, "loss: train vs validation")),
    TagFamily(
        "epoch_accuracy",
        None,
        None,
        Chart(STORY, "accuracy: train vs validation"),
        pattern=r"^epoch_.*accuracy$",
    ),
    TagFamily(
        "gap/validation_minus_train",
        "<metric>",
        "Validation minus training value: the loss in loss units, "
        "an accuracy as error in percentage points (error_% = 100 * (train "
        "accuracy - validation accuracy)). Per epoch.",
        Chart(STORY, "gap: validation - train (loss; error in % points)"),
    ),
    TagFamily(
        "mc_dropout/accuracy",
        "<prediction>",
        f"Accuracy {_MC_VS_DETERMINISTIC}",
        Chart(MC_DROPOUT, "accuracy"),
    ),
    TagFamily(
        "mc_dropout/nll",
        "<prediction>",
        f"Mean negative log-likelihood (nats) {_MC_VS_DETERMINISTIC}",
        Chart(MC_DROPOUT, "nll"),
    ),
    TagFamily(
        "mc_dropout/brier",
        "<prediction>",
        f"Brier score {_MC_VS_DETERMINISTIC}",
        Chart(MC_DROPOUT, "brier"),
    ),
    TagFamily(
        "mc_dropout/ece",
        "<prediction>",
        "Expected calibration error (equal-width confidence bins) "
        f"{_MC_VS_DETERMINISTIC}",
        Chart(MC_DROPOUT, "ece"),
    ),
    TagFamily(
        "mc_dropout/mutual_information",
        None,
        "Mean BALD score (mutual information between prediction and masks, "
        "nats) over the held-out batch. Per epoch.",
        None,
    ),
    TagFamily(
        "mc_dropout/reliability",
        None,
        "Accuracy per confidence bin of the MC-dropout and deterministic "
        "predictions; the diagonal is perfect calibration. Per epoch.",
        None,
    ),
    TagFamily(
        "rates/dropout",
        "<path>",
        "Drop rate of the layer that its next training step uses, written at "
        "each epoch end (a rate that never changed: once). Per epoch.",
        Chart(RATES, "dropout rate per layer"),
    ),
    TagFamily(
        "rates/dropout_per_batch",
        "<path>",
        "Drop rate of the layer in the training step, for a rate that changes "
        f"(a schedule, a learned rate). {_PER_BATCH}",
        Chart(RATES, "dropout rate per layer, per batch"),
    ),
    TagFamily(
        "rates/learning_rate",
        None,
        "Learning rate the optimizer used in the epoch (with a per-batch "
        "schedule, in its last step; a value that never changed: once). "
        "Per epoch.",
        Chart(RATES, "learning rate"),
    ),
    TagFamily(
        "rates/learning_rate_per_batch",
        None,
        "Learning rate set for the training step, where the schedule changes "
        f"it. {_PER_BATCH}",
        Chart(RATES, "learning rate, per batch"),
    ),
    TagFamily(
        "rates/momentum",
        None,
        "Momentum the optimizer used in the epoch (with a per-batch schedule, "
        "in its last step; a value that never changed: once). Per epoch.",
        Chart(RATES, "momentum"),
    ),
    TagFamily(
        "rates/momentum_per_batch",
        None,
        f"Momentum set for the training step, where the schedule changes it. "
        f"{_PER_BATCH}",
        Chart(RATES, "momentum, per batch"),
    ),
    TagFamily(
        "statistics/dropped_fraction",
        "<path>",
        "Fraction of the dropout layer's non-zero inputs that one "
        "training-mode draw zeroes, on the probe batch. Per epoch.",
        Chart(STATISTICS, "fraction of units dropped (training-mode draw)"),
    ),
    TagFamily(
        "statistics/sparsity",
        "<path>",
        f"Fraction of the layer's outputs <= threshold {_PROBE}training-mode "
        "draw. Per epoch.",
        Chart(STATISTICS, "sparsity per layer"),
    ),
    TagFamily(
        "statistics/mean_activation",
        "<path>",
        f"Mean of the layer's outputs {_PROBE}training-mode draw. Per epoch.",
        Chart(STATISTICS, "mean activation per layer"),
    ),
    TagFamily(
        "statistics/nonfinite_fraction",
        "<path>",
        "Fraction of NaN/Inf among the layer's outputs on the probe batch "
        "(left out of its other statistics); written only where non-zero and "
        "at the probes just before and after. Per epoch.",
        None,
    ),
    TagFamily(
        "statistics/weight_norm",
        "<path>",
        "L2 norm of the weight at the epoch end. Per epoch.",
        None,
    ),
    TagFamily(
        "statistics/gradient_norm",
        "<path>",
        "L2 norm of d loss / d weight on the probe batch in inference mode "
        "(no dropout noise), at the epoch end. Per epoch.",
        None,
    ),
    TagFamily(
        "value_histograms/activations",
        "<path>",
        "Histogram (30 bins, min to max) of the layer's outputs "
        f"{_PROBE}training-mode draw. Per epoch.",
        None,
    ),
    TagFamily(
        "value_histograms/weights",
        "<path>",
        "Histogram (30 bins, min to max) of the weight's values at the epoch "
        "end. Per epoch.",
        None,
    ),
    TagFamily(
        "value_histograms/gradients",
        "<path>",
        "Histogram (30 bins) of d loss / d weight on the probe batch in "
        "inference mode (no dropout noise), at the epoch end. Per epoch.",
        None,
    ),
    TagFamily(
        "within_one_std",
        "<quantity>/<bound>",
        "Lower (mean - std) or upper (mean + std) edge of the band of "
        "across_seeds/<quantity>: sample std over seeds, n - 1. "
        f"{AT_THE_SEEDS_STEPS}",
        None,
    ),
    # Written by `kdrop.tensorboard.log_hparams`. The HPARAMS dashboard reads
    # a metric's value from a scalar summary, so the final metrics are scalars
    # and show in the Time Series tab too: one group, last, keeps them out of
    # the way of the per-epoch story.
    TagFamily(
        WRAP_UP,
        "<metric>",
        "Final metric of the run for the HParams dashboard, which reads a "
        "metric's value from a scalar summary (the table's column is headed "
        f"<metric>); one point, not a curve. {ONCE_PER_RUN}",
        None,
    ),
)

BY_NAME = types.MappingProxyType({family.name: family for family in FAMILIES})

# The description of each family kdrop writes, by name.
DESCRIPTIONS = types.MappingProxyType(
    {f.name: f.description for f in FAMILIES if f.description is not None}
)


class UnknownTagError(KeyError):
    """A tag that no family of `FAMILIES` kdrop writes holds."""

    def __str__(self):  # KeyError would show the message's repr
        return str(self.args[0])


def family_of(tag):
    """The one family of `FAMILIES` whose `pattern` matches `tag`.

    Raises:
        UnknownTagError (a KeyError): naming the tag and the table, when no
        family, or more than one, holds it.
    """
    found = [family for family in FAMILIES if family.matches(tag)]
    if len(found) != 1:
        held = (
            f"is held by the families {[family.name for family in found]}"
            if found
            else "belongs to no tag family"
        )
        raise UnknownTagError(
            f"Tag {tag!r} {held}: every tag kdrop writes needs exactly one "
            "entry in kdrop.tensorboard.families.FAMILIES (its description "
            f"and chart). Families: {list(BY_NAME)}."
        )
    return found[0]


# Callbacks ask at every write, and matching a tag against every family's
# pattern was a quarter of the time spent writing events; FAMILIES is a
# tuple, so a tag's answer never changes. Bounded: tags are per layer.
@functools.lru_cache(maxsize=4096)
def describe(tag):
    """The description of `tag`'s family, for a tag kdrop writes.

    Raises:
        UnknownTagError (a KeyError): naming the tag and `FAMILIES`, for a
        tag of no family or of one that Keras writes (no description).
    """
    family = family_of(tag)
    if family.description is None:
        raise UnknownTagError(
            f"Tag {tag!r} is of family {family.name!r}, which Keras's "
            "TensorBoard callback writes, not kdrop: it has no description "
            "in kdrop.tensorboard.families.FAMILIES."
        )
    return family.description

"""Uncertainty metrics for Monte-Carlo dropout: calibration, scores, OOD.

Every function takes class probabilities in one of three forms:

- an array of shape `(samples, n, classes)`: the softmax outputs of
  `samples` stochastic passes over `n` examples (for example
  `kdrop.mc_predict(..., return_samples=True).draws`);
- an array of shape `(n, classes)`: one deterministic prediction (for
  example `model.predict(x)` with the weight-scaling rule), treated as a
  single pass;
- a `kdrop.MCResult` of a single-output model. Metrics of the predictive
  distribution (NLL, accuracy, Brier, calibration, predictive entropy) then
  use its float64 `mean`; mutual information and expected entropy use its
  `mutual_information`; the variation ratio needs its `draws`
  (`return_samples=True`).

With `p_s` the probabilities of pass `s = 1..S` and `pbar = 1/S sum_s p_s`
the predictive distribution, all in nats:

    NLL = -1/n sum_i log pbar_i[y_i]            (log-mean-exp over passes)
    Brier = 1/n sum_i sum_k (pbar_ik - [y_i = k])^2
    ECE = sum_m |B_m| / n * |acc(B_m) - conf(B_m)|,  MCE = max_m |...|
    predictive entropy H[pbar],  expected entropy 1/S sum_s H[p_s]
    mutual information (BALD) = H[pbar] - 1/S sum_s H[p_s]
    variation ratio = 1 - (passes voting for the modal class) / S

Inputs are converted to float64, so `(samples, n, classes)` arrays cost
8 bytes per entry; for many passes over a large `x`, compute on an
`MCResult` without draws, whose memory does not grow with `samples`.

References:
    - Gal & Ghahramani, "Dropout as a Bayesian Approximation: Representing
      Model Uncertainty in Deep Learning", ICML 2016.
    - Guo et al., "On Calibration of Modern Neural Networks", ICML 2017
      (ECE on equal-width confidence bins, reliability diagrams).
    - Houlsby et al., "Bayesian Active Learning for Classification and
      Preference Learning", 2011 (BALD).
    - Hendrycks & Gimpel, "A Baseline for Detecting Misclassified and
      Out-of-Distribution Examples in Neural Networks", ICLR 2017 (AUROC).
"""

import dataclasses
import math
import numbers

import numpy as np

from kdrop import optional, validation
from kdrop.inference.result import MCResult, entropy

# Rows may be float32 softmax outputs, whose sums are off by about 1e-7.
SUM_TOLERANCE = 1e-3
# log(0) is clipped to log of the smallest normal float64 (about -708 nats)
# so one confidently wrong example gives a large but finite NLL.
LOG_FLOOR = math.log(np.finfo(np.float64).tiny)


def _check_single_output(result, name):
    if not isinstance(result.mean, np.ndarray):
        raise ValueError(
            f"`{name}` must be the MCResult of a single-output model. Received "
            f"one whose fields are a {type(result.mean).__name__}: pass one "
            "output's probabilities instead, e.g. result.draws['name']."
        )


def _check_probabilities(array, name):
    """Returns `array` as float64 of shape (samples, n, classes)."""
    if isinstance(array, (str, bytes, numbers.Number)) or array is None:
        raise TypeError(
            f"`{name}` must be an array of class probabilities or a "
            f"kdrop.MCResult. Received: {name} of type {type(array).__name__}."
        )
    array = np.asarray(array, dtype=np.float64)
    if array.ndim not in (2, 3) or array.shape[-1] < 2 or array.shape[-2] < 1:
        raise ValueError(
            f"`{name}` must have shape (n, classes) or (samples, n, classes) "
            f"with n >= 1 and classes >= 2. Received shape {array.shape}."
        )
    sums = array.sum(axis=-1)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(
            f"`{name}` must hold probabilities (e.g. softmax outputs, not "
            f"logits): finite and >= 0. Received values in "
            f"[{np.nanmin(array)}, {np.nanmax(array)}]."
        )
    if np.any(np.abs(sums - 1.0) > SUM_TOLERANCE):
        worst = sums.flat[np.argmax(np.abs(sums - 1.0))]
        raise ValueError(
            f"`{name}` must hold probabilities summing to 1 over the last "
            f"axis (e.g. softmax outputs, not logits). A row sums to {worst}."
        )
    return array if array.ndim == 3 else array[np.newaxis]


def _mean(probs, name="probs"):
    """The predictive distribution pbar, shape (n, classes)."""
    if isinstance(probs, MCResult):
        _check_single_output(probs, name)
        return _check_probabilities(probs.mean, f"{name}.mean")[0]
    return _check_probabilities(probs, name).mean(axis=0)


def _passes(probs, metric, name="probs"):
    """The per-pass probabilities, shape (samples, n, classes)."""
    if isinstance(probs, MCResult):
        _check_single_output(probs, name)
        if probs.draws is None:
            raise ValueError(
                f"{metric} needs every pass's output: call "
                "kdrop.mc_predict(..., return_samples=True), or pass the "
                "(samples, n, classes) probabilities."
            )
        return _check_probabilities(probs.draws, f"{name}.draws")
    return _check_probabilities(probs, name)


def check_labels(y, n, classes):
    """Returns `y` as an int array of shape (n,)."""
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (n,):
        raise ValueError(
            f"`y` must hold one integer class index per example, shape ({n},). "
            f"Received shape {labels.shape}."
        )
    if not (
        np.issubdtype(labels.dtype, np.integer)
        or (np.issubdtype(labels.dtype, np.floating) and np.all(labels % 1 == 0))
    ):
        raise ValueError(
            f"`y` must hold integer class indices. Received dtype {labels.dtype}."
        )
    if np.any(labels < 0) or np.any(labels >= classes):
        raise ValueError(
            f"`y` must hold class indices in [0, {classes - 1}]. Received "
            f"values in [{labels.min()}, {labels.max()}]."
        )
    return labels.astype(np.int64)


def negative_log_likelihood(probs, y):
    """Mean negative log-likelihood of the labels under the predictive
    distribution, `-1/n sum_i log(1/S sum_s p_s[i, y_i])`, in nats.

    Computed as a log-mean-exp of the per-pass log-probabilities, which stays
    exact when the probabilities are far below float32's range. A
    probability of 0 counts as the smallest normal float64 (about 708
    nats), not infinity.

    Args:
        probs: probabilities, see the module docstring.
        y: int array of shape (n,), the class indices.

    Returns:
        A float64.
    """
    if isinstance(probs, MCResult):
        mean = _mean(probs)
        labels = check_labels(y, *mean.shape)
        picked = mean[np.arange(len(labels)), labels][np.newaxis]
    else:
        passes = _check_probabilities(probs, "probs")
        labels = check_labels(y, *passes.shape[1:])
        picked = passes[:, np.arange(len(labels)), labels]  # (samples, n)
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(picked), LOG_FLOOR)
    top = log_p.max(axis=0)
    log_mean = top + np.log(np.mean(np.exp(log_p - top), axis=0))
    return np.float64(-log_mean.mean())


def accuracy(probs, y):
    """Fraction of examples whose most probable class (under the predictive
    distribution) is the label. Returns a float64."""
    mean = _mean(probs)
    labels = check_labels(y, *mean.shape)
    return np.float64(np.mean(mean.argmax(axis=-1) == labels))


def brier_score(probs, y):
    """Multi-class Brier score `1/n sum_i sum_k (pbar_ik - [y_i = k])^2`,
    in [0, 2]. Returns a float64."""
    mean = _mean(probs)
    labels = check_labels(y, *mean.shape)
    one_hot = np.eye(mean.shape[-1])[labels]
    return np.float64(np.mean(np.sum((mean - one_hot) ** 2, axis=-1)))


@dataclasses.dataclass(frozen=True)
class ReliabilityTable:
    """Per-bin calibration of the predictive distribution's confidence.

    Bin `m` holds the examples whose confidence `c = max_k pbar_k` lies in
    `(edges[m], edges[m + 1]]` (the first bin also holds c = 0).

    Attributes:
        edges: float64 array of shape (bins + 1,), equal-width on [0, 1].
        counts: int array of shape (bins,), examples per bin.
        confidence: float64 array of shape (bins,), mean confidence per
            bin (NaN for an empty bin).
        accuracy: float64 array of shape (bins,), fraction correct per bin
            (NaN for an empty bin).
        ece: expected calibration error, `sum_m counts_m / n *
            |accuracy_m - confidence_m|`.
        mce: maximum calibration error over the non-empty bins.
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: np.float64
    mce: np.float64


def reliability(probs, y, bins=15):
    """Calibration table of the predictive distribution (Guo et al., 2017).

    Args:
        probs: probabilities, see the module docstring.
        y: int array of shape (n,), the class indices.
        bins: int > 0, the number of equal-width confidence bins on [0, 1].

    Returns:
        A `ReliabilityTable`, whose `ece` and `mce` are the expected and
        maximum calibration errors.

    Example:

    ```python
    result = kdrop.mc_predict(model, x_test, samples=50)
    table = kdrop.uncertainty.reliability(result, y_test, bins=10)
    print(table.ece, table.mce)
    kdrop.uncertainty.plot_reliability(table).savefig("reliability.png")
    ```
    """
    bins = validation.check_positive_int(bins, "bins")
    mean = _mean(probs)
    labels = check_labels(y, *mean.shape)
    confidence = mean.max(axis=-1)
    correct = mean.argmax(axis=-1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        bin_confidence = np.bincount(which, confidence, bins) / counts
        bin_accuracy = np.bincount(which, correct, bins) / counts
    gaps = np.abs(bin_accuracy - bin_confidence)[counts > 0]
    return ReliabilityTable(
        edges=edges,
        counts=counts,
        confidence=bin_confidence,
        accuracy=bin_accuracy,
        ece=np.float64(np.sum(counts[counts > 0] / len(labels) * gaps)),
        mce=np.float64(gaps.max()),
    )


def expected_calibration_error(probs, y, bins=15):
    """`reliability(probs, y, bins).ece`: the count-weighted mean gap
    between accuracy and confidence over equal-width bins. A float64."""
    return reliability(probs, y, bins).ece


def max_calibration_error(probs, y, bins=15):
    """`reliability(probs, y, bins).mce`: the largest gap between accuracy
    and confidence over the non-empty bins. A float64."""
    return reliability(probs, y, bins).mce


def predictive_entropy(probs):
    """Entropy of the predictive distribution `H[pbar]` per example, in
    nats: total uncertainty. float64 array of shape (n,)."""
    return entropy(_mean(probs))


def mutual_information(probs):
    """Mutual information between the prediction and the dropout masks
    (BALD), `H[pbar] - 1/S sum_s H[p_s]` per example, in nats: the part of
    the uncertainty that comes from the model (epistemic), zero when all
    passes agree. float64 array of shape (n,)."""
    if isinstance(probs, MCResult):
        _check_single_output(probs, "probs")
        _mean(probs)
        return np.asarray(probs.mutual_information, dtype=np.float64)
    passes = _check_probabilities(probs, "probs")
    # Non-negative by Jensen's inequality; clip float rounding below 0.
    return np.maximum(entropy(passes.mean(axis=0)) - entropy(passes).mean(0), 0.0)


def expected_entropy(probs):
    """Mean entropy of the passes `1/S sum_s H[p_s]` per example, in nats:
    the uncertainty each pass already expresses (aleatoric). float64 array
    of shape (n,)."""
    return predictive_entropy(probs) - mutual_information(probs)


def variation_ratio(probs):
    """`1 - (passes voting for the modal class) / S` per example: 0 when
    every pass predicts the same class. Ties between classes count the
    first one. float64 array of shape (n,)."""
    passes = _passes(probs, "variation_ratio")
    votes = passes.argmax(axis=-1)  # (samples, n)
    classes = passes.shape[-1]
    counts = np.stack([np.sum(votes == k, axis=0) for k in range(classes)], axis=-1)
    return 1.0 - counts.max(axis=-1) / len(passes)


def _check_scores(scores, name):
    if isinstance(scores, (str, bytes)) or scores is None:
        raise TypeError(
            f"`{name}` must be a 1-D array of scores. Received: {name} of "
            f"type {type(scores).__name__}."
        )
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) == 0 or not np.all(np.isfinite(scores)):
        raise ValueError(
            f"`{name}` must be a non-empty 1-D array of finite scores. "
            f"Received shape {scores.shape}."
        )
    return scores


def ood_auroc(in_scores, out_scores):
    """Area under the ROC curve for telling out-of-distribution examples
    (positives) from in-distribution ones by a score, higher meaning "more
    likely out of distribution" (predictive entropy, mutual information,
    variation ratio, 1 - max probability).

    Equals the probability that a random out-of-distribution example scores
    higher than a random in-distribution one, ties counting 1/2 (the
    Mann-Whitney statistic): 0.5 is chance, 1 perfect separation.

    Args:
        in_scores: 1-D array, the scores of in-distribution examples.
        out_scores: 1-D array, the scores of out-of-distribution examples.

    Returns:
        A float64 in [0, 1].
    """
    inside = np.sort(_check_scores(in_scores, "in_scores"))
    outside = _check_scores(out_scores, "out_scores")
    below = np.searchsorted(inside, outside, side="left")
    ties = np.searchsorted(inside, outside, side="right") - below
    return np.float64((below.sum() + 0.5 * ties.sum()) / (len(inside) * len(outside)))


def fpr_at_tpr(in_scores, out_scores, tpr=0.95):
    """False-positive rate at a given true-positive rate for OOD detection.

    Out-of-distribution examples are the positives: with the highest
    threshold `t` that flags at least a fraction `tpr` of them (score >=
    t), returns the fraction of in-distribution examples also flagged.
    Lower is better; the usual report is FPR at 95 % TPR.

    Args:
        in_scores: 1-D array, the scores of in-distribution examples.
        out_scores: 1-D array, the scores of out-of-distribution examples.
        tpr: float in (0, 1], the true-positive rate to reach.

    Returns:
        A float64 in [0, 1].
    """
    inside = _check_scores(in_scores, "in_scores")
    outside = np.sort(_check_scores(out_scores, "out_scores"))[::-1]
    tpr = validation.check_number(
        tpr, "tpr", "a number in (0, 1]", lambda value: 0 < value <= 1
    )
    # The k-th highest positive score; the tolerance keeps 0.95 * 20 at 19.
    flagged = max(1, math.ceil(tpr * len(outside) - 1e-9))
    threshold = outside[flagged - 1]
    return np.float64(np.mean(inside >= threshold))


def _check_slot(slot):
    if (
        not isinstance(slot, (tuple, list))
        or len(slot) != 2
        or not all(validation.is_integer(value) for value in slot)
        or not 0 <= slot[0] < slot[1]
    ):
        raise ValueError(
            "`slot` must be (index, count), two ints with 0 <= index < count. "
            f"Received: slot={slot!r}."
        )
    return int(slot[0]), int(slot[1])


def plot_reliability(table, ax=None, label=None, slot=(0, 1)):
    """Draws a reliability diagram: accuracy per confidence bin against the
    diagonal of perfect calibration, with the ECE in the legend.

    Args:
        table: a `ReliabilityTable` from `reliability`.
        ax: a matplotlib Axes to draw on; None makes a new figure.
        label: legend label prefix, e.g. "MC dropout".
        slot: `(index, count)`, ints with 0 <= index < count: each bin's bar
            takes the index-th of `count` equal slices of the bin's width,
            so `count` tables drawn on one Axes (index 0, 1, ...) stand side
            by side in every bin instead of hiding each other. Default: the
            whole bin.

    Returns:
        The matplotlib Figure drawn on.

    Raises:
        ValueError: `slot` is not two ints with 0 <= index < count.

    Example:

    ```python
    import numpy as np
    from kdrop import uncertainty

    labels = [0, 1, 1]
    mc = uncertainty.reliability(
        np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]), labels, bins=5
    )
    deterministic = uncertainty.reliability(
        np.array([[0.99, 0.01], [0.7, 0.3], [0.2, 0.8]]), labels, bins=5
    )
    figure = uncertainty.plot_reliability(mc, label="MC dropout", slot=(0, 2))
    uncertainty.plot_reliability(
        deterministic, ax=figure.axes[0], label="deterministic", slot=(1, 2)
    )
    ```
    """
    if not isinstance(table, ReliabilityTable):
        raise TypeError(
            "`table` must be a kdrop.uncertainty.ReliabilityTable. "
            f"Received: table of type {type(table).__name__}."
        )
    index, count = _check_slot(slot)
    if ax is None:
        figure = optional.require("matplotlib.figure", "plot_reliability")
        ax = figure.Figure(figsize=(4, 4), dpi=80).add_subplot()
    widths = np.diff(table.edges) / count
    filled = table.counts > 0
    name = f"{label}, " if label else ""
    ax.bar(
        (table.edges[:-1] + index * widths)[filled],
        table.accuracy[filled],
        width=widths[filled],
        align="edge",
        alpha=0.5,
        edgecolor="black",
        label=f"{name}ECE {table.ece:.3f}",
    )
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
    ax.legend(loc="upper left")
    return ax.figure

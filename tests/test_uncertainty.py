"""Uncertainty metrics and mc_predict's per-pass outputs against references."""

import dataclasses
import itertools

import keras
import numpy as np
import pytest
from scipy import stats
from sklearn import metrics

import kdrop
from kdrop import uncertainty


def normal(*shape):
    # numpy's global generator, seeded per test by conftest.
    return np.random.normal(size=shape).astype("float32")


def softmax_classifier(classes=4, rate=0.5):
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(rate),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )


def numpy_entropy(p):
    return -(p * np.log(p)).sum(axis=-1)


# ------------------------------------------------- mc_predict(return_samples)


@pytest.mark.parametrize("batch_size", [None, 10, 4])  # 1 call; 2 calls; chunks
def test_mc_draws_agree_with_the_running_statistics(batch_size):
    model, x, samples = softmax_classifier(), normal(6, 6), 7
    result = kdrop.mc_predict(
        model, x, samples=samples, batch_size=batch_size, seed=0, return_samples=True
    )
    draws = result.draws.astype(np.float64)
    assert result.draws.shape == (samples, 6, 4)
    assert result.draws.dtype == np.float32
    np.testing.assert_allclose(result.mean, draws.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.std, draws.std(axis=0), rtol=1e-9, atol=1e-12)
    # BALD: entropy of the mean minus the mean entropy of the passes.
    information = numpy_entropy(draws.mean(axis=0)) - numpy_entropy(draws).mean(0)
    np.testing.assert_allclose(result.mutual_information, information, rtol=1e-9)
    assert np.all(result.mutual_information > 0)
    # Keeping the passes changes nothing else.
    lean = kdrop.mc_predict(model, x, samples=samples, batch_size=batch_size, seed=0)
    assert lean.draws is None
    np.testing.assert_array_equal(lean.mean, result.mean)
    np.testing.assert_array_equal(lean.mutual_information, result.mutual_information)


def test_mc_mutual_information_is_zero_without_dropout():
    # Every pass is the same distribution: nothing to learn about the masks.
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
    )
    with pytest.warns(UserWarning, match="no dropout layer"):
        result = kdrop.mc_predict(model, normal(5, 4), samples=6, seed=0)
    np.testing.assert_allclose(result.mutual_information, 0.0, atol=1e-12)
    np.testing.assert_allclose(result.entropy, numpy_entropy(result.mean), rtol=1e-10)


def test_mc_draws_and_information_per_output():
    inputs = keras.Input((5,))
    hidden = kdrop.InvertedDropout(0.5)(inputs)
    model = keras.Model(
        inputs,
        {
            "p": keras.layers.Dense(3, activation="softmax")(hidden),
            "r": keras.layers.Dense(2)(hidden),
        },
    )
    result = kdrop.mc_predict(
        model, normal(4, 5), samples=9, batch_size=8, seed=0, return_samples=True
    )
    assert result.draws["p"].shape == (9, 4, 3) and result.draws["r"].shape == (9, 4, 2)
    np.testing.assert_allclose(result.mean["r"], result.draws["r"].mean(0), rtol=1e-6)
    assert result.mutual_information["r"] is None
    assert result.mutual_information["p"].shape == (4,)


def test_mc_return_samples_must_be_a_bool():
    with pytest.raises(
        TypeError, match="`return_samples` must be True or False.*'yes'"
    ):
        kdrop.mc_predict(softmax_classifier(), normal(2, 6), return_samples="yes")


# ------------------------------------------------------------------- metrics


def dirichlet_passes(samples, n, classes, concentration=1.0):
    return np.random.dirichlet(np.full(classes, concentration), size=(samples, n))


def test_nll_accuracy_and_brier_match_scikit_learn():
    passes, y = dirichlet_passes(8, 50, 4), np.random.randint(0, 4, 50)
    mean = passes.mean(axis=0)
    labels = list(range(4))
    np.testing.assert_allclose(
        uncertainty.negative_log_likelihood(passes, y),
        metrics.log_loss(y, mean, labels=labels),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        uncertainty.brier_score(passes, y),
        metrics.brier_score_loss(y, mean, labels=labels),
        rtol=1e-12,
    )
    assert uncertainty.accuracy(passes, y) == metrics.accuracy_score(y, mean.argmax(1))
    # A deterministic (n, classes) prediction is one pass.
    np.testing.assert_allclose(
        uncertainty.negative_log_likelihood(mean, y),
        metrics.log_loss(y, mean, labels=labels),
        rtol=1e-12,
    )


def test_nll_is_log_mean_exp_and_finite_for_a_zero_probability():
    # Probabilities far below float32's range keep their full precision.
    passes = np.array([[[1e-300, 1.0]], [[1e-305, 1.0]]])
    np.testing.assert_allclose(
        uncertainty.negative_log_likelihood(passes, [0]),
        -np.log(0.5e-300 + 0.5e-305),
        rtol=1e-12,
    )
    certain_and_wrong = np.array([[0.0, 1.0]])
    nll = uncertainty.negative_log_likelihood(certain_and_wrong, [0])
    np.testing.assert_allclose(nll, -np.log(np.finfo(np.float64).tiny))


# Hand-computed table, 4 bins (0, .25], (.25, .5], (.5, .75], (.75, 1]:
# confidences .9 .6 .7 .4 .95 .5, correct 1 0 1 1 0 1.
CALIBRATION_PROBS = np.array(
    [
        [0.9, 0.05, 0.05],
        [0.6, 0.3, 0.1],
        [0.7, 0.2, 0.1],
        [0.4, 0.35, 0.25],
        [0.95, 0.03, 0.02],
        [0.5, 0.25, 0.25],  # 0.5 sits on an edge: it belongs to (.25, .5]
    ]
)
CALIBRATION_LABELS = np.array([0, 1, 0, 0, 2, 0])


def test_reliability_table_ece_and_mce_by_hand():
    table = uncertainty.reliability(CALIBRATION_PROBS, CALIBRATION_LABELS, bins=4)
    np.testing.assert_array_equal(table.edges, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(table.counts, [0, 2, 2, 2])
    np.testing.assert_allclose(table.confidence[1:], [0.45, 0.65, 0.925])
    np.testing.assert_allclose(table.accuracy[1:], [1.0, 0.5, 0.5])
    assert np.isnan(table.confidence[0]) and np.isnan(table.accuracy[0])
    # ECE = (2 * .55 + 2 * .15 + 2 * .425) / 6, MCE = .55
    np.testing.assert_allclose(table.ece, 0.375, rtol=1e-12)
    np.testing.assert_allclose(table.mce, 0.55, rtol=1e-12)
    assert uncertainty.expected_calibration_error(
        CALIBRATION_PROBS, CALIBRATION_LABELS, bins=4
    ) == pytest.approx(0.375)
    assert uncertainty.max_calibration_error(
        CALIBRATION_PROBS, CALIBRATION_LABELS, bins=4
    ) == pytest.approx(0.55)
    # Passes are averaged first: two passes whose mean is the table above.
    shift = np.array([0.02, 0.0, -0.02])
    passes = np.stack([CALIBRATION_PROBS + shift, CALIBRATION_PROBS - shift])
    table2 = uncertainty.reliability(passes, CALIBRATION_LABELS, bins=4)
    np.testing.assert_allclose(table2.ece, 0.375, rtol=1e-12)


def test_information_measures_on_known_distributions():
    # The same distribution in every pass: no mutual information.
    constant = np.tile([[[0.2, 0.3, 0.5]]], (5, 3, 1))
    entropy = -(0.2 * np.log(0.2) + 0.3 * np.log(0.3) + 0.5 * np.log(0.5))
    np.testing.assert_allclose(uncertainty.mutual_information(constant), 0.0)
    np.testing.assert_allclose(uncertainty.predictive_entropy(constant), entropy)
    np.testing.assert_allclose(uncertainty.expected_entropy(constant), entropy)
    np.testing.assert_array_equal(uncertainty.variation_ratio(constant), 0.0)
    # Two passes, each certain, disagreeing: all uncertainty is epistemic.
    disagree = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(uncertainty.mutual_information(disagree), [np.log(2)])
    np.testing.assert_allclose(uncertainty.predictive_entropy(disagree), [np.log(2)])
    np.testing.assert_allclose(uncertainty.expected_entropy(disagree), [0.0])
    np.testing.assert_allclose(uncertainty.variation_ratio(disagree), [0.5])


def test_information_measures_match_scipy_on_random_passes():
    passes = dirichlet_passes(6, 20, 5, concentration=0.5)
    predictive = stats.entropy(passes.mean(axis=0), axis=-1)
    expected = stats.entropy(passes, axis=-1).mean(axis=0)
    np.testing.assert_allclose(
        uncertainty.predictive_entropy(passes), predictive, rtol=1e-12
    )
    np.testing.assert_allclose(
        uncertainty.expected_entropy(passes), expected, rtol=1e-9
    )
    np.testing.assert_allclose(
        uncertainty.mutual_information(passes), predictive - expected, rtol=1e-9
    )
    votes = passes.argmax(axis=-1)
    modal = np.array([np.bincount(column).max() for column in votes.T])
    np.testing.assert_allclose(uncertainty.variation_ratio(passes), 1 - modal / 6)


def test_mc_result_gives_the_same_metrics_as_its_draws():
    model, x = softmax_classifier(classes=3), normal(30, 6)
    y = np.random.randint(0, 3, 30)
    result = kdrop.mc_predict(model, x, samples=20, seed=0, return_samples=True)
    lean = dataclasses.replace(result, draws=None)
    for metric in (
        uncertainty.negative_log_likelihood,
        uncertainty.accuracy,
        uncertainty.brier_score,
        uncertainty.expected_calibration_error,
    ):
        np.testing.assert_allclose(
            metric(lean, y), metric(result.draws, y), rtol=1e-6, err_msg=metric.__name__
        )
    for metric in (
        uncertainty.predictive_entropy,
        uncertainty.mutual_information,
        uncertainty.expected_entropy,
    ):
        np.testing.assert_allclose(
            metric(lean), metric(result.draws), rtol=1e-5, atol=1e-7
        )
    np.testing.assert_array_equal(
        uncertainty.variation_ratio(result), uncertainty.variation_ratio(result.draws)
    )
    with pytest.raises(ValueError, match="variation_ratio needs every pass.*return_"):
        uncertainty.variation_ratio(lean)


def test_ood_auroc_and_fpr_match_scikit_learn():
    # Rounded scores, so that ties between the two sets occur.
    inside = np.round(np.random.normal(0.0, 1.0, 200), 1)
    outside = np.round(np.random.normal(1.0, 1.0, 120), 1)
    truth = np.r_[np.zeros(200), np.ones(120)]
    scores = np.r_[inside, outside]
    np.testing.assert_allclose(
        uncertainty.ood_auroc(inside, outside),
        metrics.roc_auc_score(truth, scores),
        rtol=1e-12,
    )
    fpr, tpr, _ = metrics.roc_curve(truth, scores, drop_intermediate=False)
    for rate in (0.95, 0.5, 1.0):
        np.testing.assert_allclose(
            uncertainty.fpr_at_tpr(inside, outside, tpr=rate),
            fpr[np.searchsorted(tpr, rate - 1e-12)],
        )
    assert uncertainty.ood_auroc([0, 1], [2, 3]) == 1.0
    assert uncertainty.fpr_at_tpr([0, 1], [2, 3]) == 0.0


def test_plot_reliability_draws_one_bar_per_filled_bin():
    table = uncertainty.reliability(CALIBRATION_PROBS, CALIBRATION_LABELS, bins=4)
    figure = uncertainty.plot_reliability(table, label="MC")
    (ax,) = figure.axes
    np.testing.assert_allclose([bar.get_height() for bar in ax.patches], [1, 0.5, 0.5])
    assert ax.get_legend().get_texts()[0].get_text() == "MC, ECE 0.375"


def test_plot_reliability_slots_put_two_tables_side_by_side():
    # Bins of width 0.25 filled at [0.25, 0.5), [0.5, 0.75), [0.75, 1]:
    # slot (0, 2) takes the left half of each bin, slot (1, 2) the right.
    table = uncertainty.reliability(CALIBRATION_PROBS, CALIBRATION_LABELS, bins=4)
    figure = uncertainty.plot_reliability(table, label="MC", slot=(0, 2))
    (ax,) = figure.axes
    uncertainty.plot_reliability(table, ax=ax, label="deterministic", slot=(1, 2))
    lefts = [bar.get_x() for bar in ax.patches]
    widths = [bar.get_width() for bar in ax.patches]
    np.testing.assert_allclose(lefts, [0.25, 0.5, 0.75, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(widths, [0.125] * 6)
    # No bar covers another: the intervals are disjoint.
    spans = sorted(zip(lefts, np.add(lefts, widths)))
    assert all(
        end <= start + 1e-12 for (_, end), (start, _) in itertools.pairwise(spans)
    )


@pytest.mark.parametrize("slot", [(2, 2), (-1, 2), (0, 0), (0.5, 2), (0,), "ab"])
def test_plot_reliability_rejects_bad_slots(slot):
    table = uncertainty.reliability(CALIBRATION_PROBS, CALIBRATION_LABELS, bins=4)
    with pytest.raises(ValueError, match=r"`slot` must be \(index, count\)"):
        uncertainty.plot_reliability(table, slot=slot)


UNNORMALIZED = np.array([[2.0, 1.0, 0.5]])


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: uncertainty.accuracy("probs", [0]), TypeError, ["`probs`", "str"]),
        (lambda: uncertainty.accuracy(np.ones(3) / 3, [0]), ValueError, ["(3,)"]),
        (lambda: uncertainty.accuracy(np.ones((2, 1)), [0, 0]), ValueError, ["(2, 1)"]),
        (
            lambda: uncertainty.accuracy(UNNORMALIZED, [0]),
            ValueError,
            ["summing to 1", "3.5"],
        ),
        (
            lambda: uncertainty.brier_score([[1.5, -0.5]], [0]),
            ValueError,
            ["not logits", "finite and >= 0", "-0.5"],
        ),
        (
            lambda: uncertainty.reliability([[0.5, 0.5]], [0], bins=0),
            ValueError,
            ["`bins`", "0"],
        ),
        (
            lambda: uncertainty.negative_log_likelihood([[0.5, 0.5]], [0, 1]),
            ValueError,
            ["`y`", "(1,)", "(2,)"],
        ),
        (
            lambda: uncertainty.accuracy([[0.5, 0.5]], [2]),
            ValueError,
            ["`y`", "[0, 1]", "[2, 2]"],
        ),
        (
            lambda: uncertainty.accuracy([[0.5, 0.5]], [0.5]),
            ValueError,
            ["`y`", "integer", "float64"],
        ),
        (
            lambda: uncertainty.fpr_at_tpr([0.1], [0.2], tpr=0),
            ValueError,
            ["`tpr`", "(0, 1]", "0"],
        ),
        (
            lambda: uncertainty.ood_auroc([], [0.2]),
            ValueError,
            ["`in_scores`", "non-empty 1-D", "(0,)"],
        ),
        (
            lambda: uncertainty.ood_auroc([0.1], None),
            TypeError,
            ["`out_scores`", "NoneType"],
        ),
        (
            lambda: uncertainty.plot_reliability([0.1]),
            TypeError,
            ["`table`", "ReliabilityTable", "list"],
        ),
    ],
)
def test_bad_arguments(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_results_of_several_outputs_are_rejected():
    result = kdrop.MCResult(
        mean={"p": np.ones((2, 2)) / 2}, std=None, entropy=None, samples=3
    )
    with pytest.raises(
        ValueError, match="single-output model.*dict.*draws\\['name'\\]"
    ):
        uncertainty.accuracy(result, [0, 1])

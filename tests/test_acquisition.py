"""kdrop.acquisition against independent references: explicit loops over
passes and classes, brute-force enumeration of label combinations, and
the sampling probabilities the selection rules are defined by."""

import itertools
import math

import keras
import numpy as np
import pytest

import kdrop
from kdrop import acquisition


def dirichlet_draws(samples, n, classes, concentration=0.5, seed=0):
    """(samples, n, classes) probabilities, every row on the simplex."""
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(classes, concentration), size=(samples, n))


# ------------------------------------------------------- loop references


def loop_entropy(row):
    return -sum(p * math.log(p) for p in row if p > 0)


def loop_mean(draws, i):
    samples, _, classes = draws.shape
    return [
        sum(draws[s, i, c] for s in range(samples)) / samples for c in range(classes)
    ]


def loop_bald(draws):
    samples, n, _ = draws.shape
    return [
        loop_entropy(loop_mean(draws, i))
        - sum(loop_entropy(draws[s, i]) for s in range(samples)) / samples
        for i in range(n)
    ]


def loop_variation_ratio(draws):
    samples, n, classes = draws.shape
    scores = []
    for i in range(n):
        votes = [0] * classes
        for s in range(samples):
            votes[int(np.argmax(draws[s, i]))] += 1
        scores.append(1 - max(votes) / samples)
    return scores


def loop_mean_std(draws):
    samples, n, classes = draws.shape
    scores = []
    for i in range(n):
        mean = loop_mean(draws, i)
        stds = [
            math.sqrt(
                sum((draws[s, i, c] - mean[c]) ** 2 for s in range(samples)) / samples
            )
            for c in range(classes)
        ]
        scores.append(sum(stds) / classes)
    return scores


def loop_margin(draws):
    scores = []
    for i in range(draws.shape[1]):
        first, second = sorted(loop_mean(draws, i), reverse=True)[:2]
        scores.append(1 - (first - second))
    return scores


def loop_least_confidence(draws):
    return [1 - max(loop_mean(draws, i)) for i in range(draws.shape[1])]


def loop_max_entropy(draws):
    return [loop_entropy(loop_mean(draws, i)) for i in range(draws.shape[1])]


def brute_joint_entropy(draws, indices):
    """H(y_indices) by enumerating every label combination."""
    classes = draws.shape[-1]
    entropy = 0.0
    for labels in itertools.product(range(classes), repeat=len(indices)):
        per_pass = np.ones(len(draws))
        for i, y in zip(indices, labels):
            per_pass = per_pass * draws[:, i, y]
        probability = per_pass.mean()
        if probability > 0:
            entropy -= probability * math.log(probability)
    return entropy


def brute_joint_mutual_information(draws, indices):
    expected = sum(
        sum(loop_entropy(draws[s, i]) for s in range(len(draws))) / len(draws)
        for i in indices
    )
    return brute_joint_entropy(draws, indices) - expected


# ----------------------------------------------------------------- scores


def test_hand_computed_two_passes_that_disagree():
    # Pass 1 says class 0 for sure, pass 2 class 1: pbar = (1/2, 1/2).
    draws = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert acquisition.max_entropy(draws) == pytest.approx([math.log(2)])
    assert acquisition.bald(draws) == pytest.approx([math.log(2)])  # H - 0
    assert acquisition.variation_ratios(draws) == pytest.approx([0.5])  # 1 - 1/2
    assert acquisition.mean_std(draws) == pytest.approx([0.5])  # std of {0, 1}
    assert acquisition.margin(draws) == pytest.approx([1.0])  # margin 0
    assert acquisition.least_confidence(draws) == pytest.approx([0.5])


def test_hand_computed_three_passes():
    draws = np.array([[[0.8, 0.2]], [[0.6, 0.4]], [[0.1, 0.9]]])
    # pbar = (0.5, 0.5); pass entropies by hand.
    h = [
        -(0.8 * math.log(0.8) + 0.2 * math.log(0.2)),
        -(0.6 * math.log(0.6) + 0.4 * math.log(0.4)),
        -(0.1 * math.log(0.1) + 0.9 * math.log(0.9)),
    ]
    assert acquisition.bald(draws) == pytest.approx([math.log(2) - sum(h) / 3])
    # Votes 0, 0, 1: the mode has 2 of 3.
    assert acquisition.variation_ratios(draws) == pytest.approx([1 / 3])
    std = math.sqrt(((0.3) ** 2 + 0.1**2 + 0.4**2) / 3)  # both classes alike
    assert acquisition.mean_std(draws) == pytest.approx([std])
    assert acquisition.margin(draws) == pytest.approx([1.0])
    assert acquisition.least_confidence(draws) == pytest.approx([0.5])


@pytest.mark.parametrize(
    "score, reference",
    [
        (acquisition.max_entropy, loop_max_entropy),
        (acquisition.bald, loop_bald),
        (acquisition.variation_ratios, loop_variation_ratio),
        (acquisition.mean_std, loop_mean_std),
        (acquisition.margin, loop_margin),
        (acquisition.least_confidence, loop_least_confidence),
    ],
)
def test_scores_match_loop_references(score, reference):
    draws = dirichlet_draws(samples=7, n=9, classes=4)
    scores = score(draws.astype(np.float32))  # float32 softmax outputs pass
    assert scores.shape == (9,) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, reference(draws), rtol=1e-5, atol=1e-6)
    # An MCResult holding the draws gives the same scores.
    result = kdrop.MCResult(
        mean=draws.mean(0), std=draws.std(0), entropy=None, samples=7, draws=draws
    )
    np.testing.assert_allclose(score(result), reference(draws), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "score", [acquisition.max_entropy, acquisition.margin, acquisition.least_confidence]
)
def test_predictive_scores_take_one_deterministic_prediction(score):
    draws = dirichlet_draws(samples=5, n=6, classes=3)
    mean = draws.mean(axis=0)
    np.testing.assert_allclose(score(mean), score(mean[np.newaxis]), rtol=1e-12)


def test_scores_on_mc_predict_draws():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    x = np.random.normal(size=(8, 4)).astype("float32")
    result = kdrop.mc_predict(model, x, samples=6, seed=0, return_samples=True)
    np.testing.assert_allclose(
        acquisition.bald(result), result.mutual_information, rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(
        acquisition.bald(result.draws),
        loop_bald(result.draws.astype(np.float64)),
        rtol=1e-5,
        atol=1e-7,
    )


def test_random_scores_are_seeded_uniform():
    a = acquisition.random(1000, seed=3)
    assert a.shape == (1000,) and np.all((a >= 0) & (a < 1))
    np.testing.assert_array_equal(a, acquisition.random(1000, seed=3))
    assert not np.array_equal(a, acquisition.random(1000, seed=4))
    draws = dirichlet_draws(samples=2, n=5, classes=3)
    np.testing.assert_array_equal(
        acquisition.random(draws, seed=1), acquisition.random(5, seed=1)
    )


# -------------------------------------------------------------- BatchBALD


@pytest.mark.parametrize("indices", [[2], [0, 3], [4, 1], [0, 1, 2], [5, 2, 3]])
def test_joint_mutual_information_matches_brute_force(indices):
    draws = dirichlet_draws(samples=11, n=6, classes=3)
    np.testing.assert_allclose(
        acquisition.joint_mutual_information(draws, indices),
        brute_joint_mutual_information(draws, indices),
        rtol=1e-10,
    )


def test_joint_mutual_information_with_hard_votes_matches_brute_force():
    # One-hot passes: most label combinations have probability 0.
    votes = np.random.default_rng(4).integers(3, size=(12, 5))
    draws = np.eye(3)[votes]
    for indices in ([0, 1], [2, 0, 4], [1, 2, 3]):
        exact = brute_joint_mutual_information(draws, indices)
        assert acquisition.joint_mutual_information(draws, indices) == pytest.approx(
            exact, abs=1e-12
        )
        sampled = acquisition.joint_mutual_information(
            draws, indices, num_samples=20000, exact_limit=1, seed=0
        )
        assert sampled == pytest.approx(exact, abs=0.05)
    assert len(set(acquisition.batch_bald(draws, 5, exact_limit=2).tolist())) == 5


def test_joint_mutual_information_of_one_example_is_bald():
    draws = dirichlet_draws(samples=9, n=5, classes=4)
    for i in range(5):
        assert acquisition.joint_mutual_information(draws, [i]) == pytest.approx(
            acquisition.bald(draws)[i], rel=1e-10
        )


def test_batch_bald_is_the_brute_force_greedy_maximiser():
    draws = dirichlet_draws(samples=8, n=7, classes=3, seed=1)
    chosen = []
    for _ in range(3):
        gains = {
            i: brute_joint_mutual_information(draws, [*chosen, i])
            for i in range(7)
            if i not in chosen
        }
        chosen.append(max(gains, key=gains.get))
    np.testing.assert_array_equal(acquisition.batch_bald(draws, 3), chosen)


def test_batch_bald_with_k_1_is_the_argmax_of_bald():
    for seed in range(3):
        draws = dirichlet_draws(samples=20, n=50, classes=5, seed=seed)
        assert acquisition.batch_bald(draws, 1).tolist() == [
            int(np.argmax(acquisition.bald(draws)))
        ]


def test_batch_bald_skips_a_duplicate_that_bald_would_take():
    rng = np.random.default_rng(0)
    samples, classes = 40, 4

    def confident_votes():  # each pass sure of a random class: high BALD
        return np.eye(classes)[rng.integers(classes, size=samples)] * 0.96 + 0.01

    top = confident_votes()
    other = confident_votes() * 0.9 + 0.025  # a little less sure: lower BALD
    draws = np.stack([top, top, other, np.full((samples, classes), 0.25)], axis=1)
    bald = acquisition.bald(draws)
    assert bald[0] == bald[1] > bald[2] > bald[3]
    assert set(acquisition.select(bald, 2).tolist()) == {0, 1}
    assert acquisition.batch_bald(draws, 2).tolist() == [0, 2]


def test_batch_bald_can_take_the_whole_pool_without_underflow():
    # 40 confident examples of 10 classes: joint probabilities ~1e-80.
    draws = dirichlet_draws(samples=30, n=40, classes=10, concentration=0.05)
    chosen = acquisition.batch_bald(draws, 40, num_samples=200, seed=0)
    assert sorted(chosen.tolist()) == list(range(40))


def test_sampled_joint_entropy_agrees_with_exact_within_its_standard_error():
    draws = dirichlet_draws(samples=30, n=4, classes=3, concentration=1.0, seed=2)
    indices, num_samples = [0, 1, 2], 400
    exact = acquisition.joint_mutual_information(draws, indices)
    assert exact == pytest.approx(brute_joint_mutual_information(draws, indices))
    # The estimator averages f(y') = sum_c P(c | y') (-log P(y', c)) over M
    # configurations y' of the first two examples drawn from P(y'): its
    # standard error is sqrt(Var_P[f] / M), computed here by enumeration.
    values, weights = [], []
    for y0, y1 in itertools.product(range(3), repeat=2):
        per_pass = draws[:, 0, y0] * draws[:, 1, y1]
        joint = (per_pass[:, None] * draws[:, 2, :]).mean(axis=0)  # P(y', c)
        weights.append(per_pass.mean())
        values.append(-(joint / per_pass.mean() * np.log(joint)).sum())
    values, weights = np.array(values), np.array(weights)
    variance = weights @ values**2 - (weights @ values) ** 2
    standard_error = math.sqrt(variance / num_samples)
    assert standard_error > 1e-3  # the check below is not vacuous
    estimates = [
        acquisition.joint_mutual_information(
            draws, indices, num_samples=num_samples, exact_limit=1, seed=seed
        )
        for seed in range(5)
    ]
    for estimate in estimates:
        assert abs(estimate - exact) < 4 * standard_error
    assert len(set(estimates)) == 5  # really sampled
    # batch_bald switches to the same estimator beyond exact_limit.
    big = dirichlet_draws(samples=30, n=30, classes=3, seed=3)
    exact_batch = acquisition.batch_bald(big, 4)
    sampled_batch = acquisition.batch_bald(big, 4, num_samples=5000, exact_limit=3)
    assert sampled_batch[:2].tolist() == exact_batch[:2].tolist()  # exact steps


def test_batch_bald_is_fast_enough_for_a_2000_pool():
    draws = dirichlet_draws(samples=20, n=2000, classes=10, concentration=0.3)
    chosen = acquisition.batch_bald(draws, 4, num_samples=100, exact_limit=100)
    assert len(set(chosen.tolist())) == 4


# -------------------------------------------------------------- selection


def test_select_takes_the_top_k_with_ties_to_the_lower_index():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.5, 0.9])
    assert acquisition.select(scores, 1).tolist() == [1]
    assert acquisition.select(scores, 4).tolist() == [1, 3, 5, 2]
    assert acquisition.select(scores, 6).tolist() == [1, 3, 5, 2, 4, 0]


def test_select_breaks_ties_by_a_seeded_permutation():
    scores = np.array([0.2] * 6 + [1.0])
    first = acquisition.select(scores, 3, seed=7)
    np.testing.assert_array_equal(first, acquisition.select(scores, 3, seed=7))
    assert first[0] == 6  # the unique best still comes first
    seen = {tuple(acquisition.select(scores, 3, seed=s).tolist()) for s in range(30)}
    assert len(seen) > 5  # different seeds, different tie-breaks
    assert {i for order in seen for i in order[1:]} == set(range(6))


@pytest.mark.parametrize("mode", ["power", "softmax", "softrank"])
def test_stochastic_batch_draws_k_distinct_indices(mode):
    scores = np.random.default_rng(0).random(50)
    for seed in range(5):
        chosen = acquisition.stochastic_batch(scores, 20, mode=mode, seed=seed)
        assert len(chosen) == 20 and len(set(chosen.tolist())) == 20
        assert chosen.min() >= 0 and chosen.max() < 50
    np.testing.assert_array_equal(
        acquisition.stochastic_batch(scores, 5, mode=mode, seed=1),
        acquisition.stochastic_batch(scores, 5, mode=mode, seed=1),
    )


@pytest.mark.parametrize("mode", ["power", "softmax", "softrank"])
def test_stochastic_batch_at_low_temperature_is_the_top_k(mode):
    scores = np.random.default_rng(1).random(30) + 0.01
    for seed in range(3):
        chosen = acquisition.stochastic_batch(
            scores, 7, mode=mode, temperature=1e-6, seed=seed
        )
        np.testing.assert_array_equal(chosen, acquisition.select(scores, 7))


@pytest.mark.parametrize("mode", ["power", "softmax", "softrank"])
def test_stochastic_batch_of_one_follows_the_analytic_probabilities(mode):
    scores, temperature = np.array([0.05, 0.4, 1.0, 2.0, 0.7]), 0.8
    if mode == "power":
        weights = scores ** (1 / temperature)
    elif mode == "softmax":
        weights = np.exp(scores / temperature)
    else:
        ranks = np.array([5, 4, 2, 1, 3])
        weights = ranks ** (-1 / temperature)
    probability = weights / weights.sum()
    trials = 4000
    counts = np.bincount(
        [
            acquisition.stochastic_batch(
                scores, 1, mode=mode, temperature=temperature, seed=seed
            )[0]
            for seed in range(trials)
        ],
        minlength=5,
    )
    # Each count is Binomial(trials, p): 5 standard deviations.
    tolerance = 5 * np.sqrt(probability * (1 - probability) / trials)
    np.testing.assert_array_less(np.abs(counts / trials - probability), tolerance)


def test_power_mode_takes_zero_scores_last():
    scores = np.array([0.0, 0.3, 0.0, 0.6, 0.0])
    for seed in range(10):
        chosen = acquisition.stochastic_batch(scores, 4, seed=seed)
        assert set(chosen[:2].tolist()) == {1, 3}
        assert chosen[2] in (0, 2, 4)


# ----------------------------------------------- consistent draws (docs)


def test_shared_noise_shape_gives_consistent_draws_and_mc_predict_does_not():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dropout(0.5, noise_shape=(1, 32)),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    x = np.repeat(np.random.normal(size=(1, 3)).astype("float32"), 2, axis=0)
    shared = np.stack(
        [keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(5)]
    )
    np.testing.assert_array_equal(shared[:, 0], shared[:, 1])  # same mask per pass
    assert not np.allclose(shared[0], shared[1])  # new masks per pass
    independent = kdrop.mc_predict(model, x, samples=5, seed=0, return_samples=True)
    assert not np.allclose(independent.draws[:, 0], independent.draws[:, 1])


# ---------------------------------------------------------------- errors

GOOD = dirichlet_draws(samples=3, n=4, classes=3)


def with_value(index, value):
    draws = GOOD.copy()
    draws[index] = value
    return draws


def refused(error, match, *calls):
    for call in calls:
        with pytest.raises(error, match=match):
            call()


def test_probs_of_a_wrong_type():
    refused(TypeError, "`probs` must be an array", lambda: acquisition.bald("x"))
    refused(TypeError, "of type NoneType", lambda: acquisition.bald(None))
    refused(TypeError, "of type dict", lambda: acquisition.bald({"a": GOOD}))
    refused(TypeError, "not a numeric array", lambda: acquisition.bald([["a", "b"]]))


def test_probs_of_the_wrong_rank():
    refused(
        ValueError,
        r"shape \(samples, n, classes\)\. Received shape \(4, 3\) \(rank 2\)\. "
        "Scores of the spread between passes need every pass",
        lambda: acquisition.bald(GOOD[0]),
        lambda: acquisition.variation_ratios(GOOD[0]),
        lambda: acquisition.mean_std(GOOD[0]),
        lambda: acquisition.batch_bald(GOOD[0], 1),
    )
    refused(
        ValueError,
        r"\(samples, n, classes\) or \(n, classes\)\. Received shape \(3,\) \(rank 1\)",
        lambda: acquisition.max_entropy(GOOD[0, 0]),
    )
    refused(ValueError, r"rank 4", lambda: acquisition.margin(GOOD[None]))
    refused(ValueError, r"2 classes", lambda: acquisition.bald(np.ones((2, 3, 1))))


def test_an_empty_pool():
    refused(
        ValueError,
        r"`probs` holds an empty pool: shape \(3, 0, 2\) has 0 examples",
        lambda: acquisition.bald(np.zeros((3, 0, 2))),
        lambda: acquisition.batch_bald(np.zeros((3, 0, 2)), 1),
    )
    refused(
        ValueError, "`scores` holds an empty pool", lambda: acquisition.select([], 1)
    )


def test_nan_or_inf():
    refused(
        ValueError,
        r"`probs` must hold finite probabilities\. Received nan at "
        r"\(sample, example, class\) \(0, 1, 2\)",
        lambda: acquisition.bald(with_value((0, 1, 2), np.nan)),
    )
    refused(
        ValueError, "Received inf", lambda: acquisition.mean_std(with_value(2, np.inf))
    )
    refused(
        ValueError,
        r"`scores` must be finite\. Received nan at index 1",
        lambda: acquisition.select([0.1, np.nan], 1),
        lambda: acquisition.stochastic_batch([0.1, np.nan], 1),
    )


def test_negative_probabilities_look_like_logits():
    refused(
        ValueError,
        r"must hold probabilities >= 0\. Received -0\.5 at \(sample, example, class\) "
        r"\(0, 0, 0\): these look like logits; pass softmax outputs",
        lambda: acquisition.bald(with_value((0, 0, 0), -0.5)),
    )


def test_rows_not_summing_to_one_look_like_logits():
    refused(
        ValueError,
        r"summing to 1 over the classes \(last axis, within 0\.001\)\. The row at "
        r"\(sample, example\) \(.*\) sums to 3\.0.*: these look like logits; pass "
        "softmax outputs",
        lambda: acquisition.bald(GOOD * 3),
        lambda: acquisition.max_entropy(GOOD[0] * 3),
    )


def test_mc_result_without_draws_or_of_several_outputs():
    refused(
        ValueError,
        r"`probs` is a kdrop\.MCResult without draws: call "
        r"kdrop\.mc_predict\(\.\.\., return_samples=True\)",
        lambda: acquisition.bald(kdrop.MCResult(GOOD[0], GOOD[0], None, 3)),
    )
    several = kdrop.MCResult([GOOD[0]], [GOOD[0]], None, 3, draws=[GOOD])
    refused(TypeError, "single-output model", lambda: acquisition.bald(several))


def test_k_outside_the_pool():
    refused(
        ValueError,
        r"`k` must be an int in \[1, 2\] \(the pool holds 2 examples\)\. "
        r"Received: k=3\.",
        lambda: acquisition.select([1.0, 2.0], 3),
        lambda: acquisition.stochastic_batch([1.0, 2.0], 3),
    )
    refused(ValueError, r"Received: k=0", lambda: acquisition.select([1.0, 2.0], 0))
    refused(
        ValueError, r"holds 4 examples.*k=5", lambda: acquisition.batch_bald(GOOD, 5)
    )
    refused(TypeError, "k=1.0 of type float", lambda: acquisition.select([1.0], 1.0))


def test_scores_that_are_not_a_1d_array():
    refused(
        ValueError,
        r"`scores` must be a 1-D array .* Received shape \(2, 2\)",
        lambda: acquisition.select(np.ones((2, 2)), 1),
    )
    refused(TypeError, "`scores` must be", lambda: acquisition.select("abc", 1))


def test_unknown_mode():
    refused(
        ValueError,
        r"`mode` must be one of 'power', 'softmax', 'softrank'\. Received: "
        r"mode='gumbel'",
        lambda: acquisition.stochastic_batch([1.0, 2.0], 1, mode="gumbel"),
    )
    refused(
        TypeError, "of type int", lambda: acquisition.stochastic_batch([1.0], 1, mode=1)
    )


def test_bad_temperature():
    for bad in (0.0, -1.0, np.nan, np.inf):
        refused(
            ValueError,
            r"`temperature` must be a finite number > 0",
            lambda bad=bad: acquisition.stochastic_batch([1.0], 1, temperature=bad),
        )
    refused(
        TypeError,
        "`temperature` must be a finite number > 0. Received: temperature='1' "
        "of type str",
        lambda: acquisition.stochastic_batch([1.0], 1, temperature="1"),
    )


def test_power_mode_with_negative_scores():
    refused(
        ValueError,
        r'`scores` must be >= 0 for mode="power".*Received -0\.1 at index 1; use '
        'mode="softmax" or "softrank"',
        lambda: acquisition.stochastic_batch([1.0, -0.1], 1),
    )
    # Signed scores are fine for the other modes.
    assert len(acquisition.stochastic_batch([1.0, -0.1], 1, mode="softmax")) == 1


def test_seed_not_an_int():
    refused(
        TypeError,
        r"`seed` must be None or an int\. Received: seed=1\.5 of type float",
        lambda: acquisition.select([1.0], 1, seed=1.5),
        lambda: acquisition.stochastic_batch([1.0], 1, seed=1.5),
        lambda: acquisition.batch_bald(GOOD, 1, seed=1.5),
        lambda: acquisition.random(3, seed=1.5),
    )


def test_bad_estimator_settings():
    refused(
        ValueError,
        r"`num_samples` must be an int >= 1\. Received: num_samples=0",
        lambda: acquisition.batch_bald(GOOD, 2, num_samples=0),
    )
    refused(
        ValueError,
        r"`exact_limit` must be an int >= 1\. Received: exact_limit=0",
        lambda: acquisition.joint_mutual_information(GOOD, [0, 1], exact_limit=0),
    )
    refused(
        TypeError,
        "of type float",
        lambda: acquisition.batch_bald(GOOD, 2, num_samples=1e3),
    )


def test_bad_indices():
    refused(
        ValueError,
        r"`indices` must be one or more distinct ints in \[0, 4\)\. Received: "
        r"indices=\[",
        lambda: acquisition.joint_mutual_information(GOOD, [1, 1]),
        lambda: acquisition.joint_mutual_information(GOOD, [0, 4]),
        lambda: acquisition.joint_mutual_information(GOOD, []),
    )
    refused(
        TypeError,
        "`indices` must be a sequence of ints",
        lambda: acquisition.joint_mutual_information(GOOD, [0.5]),
    )


def test_bad_pool_size_for_random():
    refused(
        ValueError,
        r"`probs_or_n` must be an int >= 1\. Received: probs_or_n=0",
        lambda: acquisition.random(0),
    )
    refused(TypeError, "probs_or_n=2.5 of type float", lambda: acquisition.random(2.5))

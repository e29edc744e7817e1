"""Active-learning acquisition functions from Monte-Carlo dropout draws.

Every score takes class probabilities `probs` of shape
`(samples, n, classes)`: the softmax outputs of `samples` stochastic passes
over a pool of `n` examples, as `kdrop.mc_predict(model, x_pool,
samples=S, return_samples=True).draws` gives them for a softmax model (a
`kdrop.MCResult` holding `draws` is accepted too). The scores of the
predictive distribution alone (`max_entropy`, `margin`,
`least_confidence`) also take one deterministic prediction of shape
`(n, classes)`. Each returns a float64 array of shape `(n,)`, one score per
example, **higher meaning acquire first**; `select` takes the top k and
`stochastic_batch` samples k in proportion to the scores. `batch_bald`
chooses a whole batch at once.

With `p_s` the probabilities of pass `s = 1..S` and `pbar = 1/S sum_s p_s`
the predictive distribution, in nats:

    max_entropy        H[pbar] = -sum_c pbar_c log pbar_c
    bald               H[pbar] - 1/S sum_s H[p_s]   (mutual information)
    variation_ratios   1 - (passes voting for the modal class) / S
    mean_std           1/C sum_c sqrt(1/S sum_s (p_sc - pbar_c)^2)
    margin             1 - (pbar_(1) - pbar_(2))    (top two classes)
    least_confidence   1 - max_c pbar_c

Probabilities are checked before use: finite, >= 0, summing to 1 over the
classes within `kdrop.uncertainty.SUM_TOLERANCE` (float32 softmax outputs
pass); logits are refused.

References:
    - Houlsby, Huszár, Ghahramani & Lengyel, "Bayesian Active Learning for
      Classification and Preference Learning", arXiv:1112.5745, 2011 (BALD).
    - Gal, Islam & Ghahramani, "Deep Bayesian Active Learning with Image
      Data", ICML 2017.
    - Kendall, Badrinarayanan & Cipolla, "Bayesian SegNet", arXiv:1511.02680,
      2015 (mean standard deviation).
    - Kirsch, van Amersfoort & Gal, "BatchBALD: Efficient and Diverse Batch
      Acquisition for Deep Bayesian Active Learning", NeurIPS 2019.
    - Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron & Gal,
      "Stochastic Batch Acquisition: A Simple Baseline for Deep Active
      Learning", TMLR 2023.
"""

import math
import numbers

import numpy as np

import kdrop
from kdrop import uncertainty, validation

__all__ = [
    "bald",
    "batch_bald",
    "joint_mutual_information",
    "least_confidence",
    "margin",
    "max_entropy",
    "mean_std",
    "random",
    "select",
    "stochastic_batch",
    "variation_ratios",
]

# Rows of joint probabilities evaluated by one matrix product in batch_bald:
# 2**22 float64 numbers, 32 MiB, per temporary.
_CHUNK_ELEMENTS = 2**22
_TINY = np.finfo(np.float64).tiny


# ------------------------------------------------------------ argument checks


def _check_int(value, name, minimum, maximum=None, why=""):
    allowed = (
        f"an int >= {minimum}"
        if maximum is None
        else f"an int in [{minimum}, {maximum}]{why}"
    )
    return validation.check_int(value, name, allowed, minimum, maximum)


def _check_temperature(temperature):
    return validation.check_number(
        temperature,
        "temperature",
        "a finite number > 0",
        lambda value: math.isfinite(value) and value > 0,
    )


def _as_float_array(value, name, what):
    if isinstance(value, (str, bytes, numbers.Number, dict)) or value is None:
        raise TypeError(
            f"`{name}` must be {what}. Received: {name} of type {type(value).__name__}."
        )
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`{name}` must be {what}. Received: {name} of type "
            f"{type(value).__name__}, which is not a numeric array ({error})."
        ) from None
    return array


def _probabilities(probs, ranks=(3,), name="probs"):
    """Returns `probs` as float64 of shape (samples, n, classes) after
    checking its rank, size and values; rank 2 is read as one pass."""
    if isinstance(probs, kdrop.MCResult):
        if probs.draws is None:
            raise ValueError(
                f"`{name}` is a kdrop.MCResult without draws: call "
                "kdrop.mc_predict(..., return_samples=True), or pass the "
                "(samples, n, classes) probabilities."
            )
        if not isinstance(probs.draws, np.ndarray):
            raise TypeError(
                f"`{name}` must be the MCResult of a single-output model. "
                f"Received one whose draws are a {type(probs.draws).__name__}: "
                "pass one output's draws, e.g. result.draws['name']."
            )
        name, probs = f"{name}.draws", probs.draws
    shapes = " or ".join(
        {3: "(samples, n, classes)", 2: "(n, classes)"}[rank] for rank in ranks
    )
    array = _as_float_array(
        probs, name, f"an array of class probabilities shaped {shapes}"
    )
    if array.ndim not in ranks:
        hint = (
            " Scores of the spread between passes need every pass: call "
            "kdrop.mc_predict(..., return_samples=True) and pass its draws."
            if array.ndim == 2
            else ""
        )
        raise ValueError(
            f"`{name}` must have shape {shapes}. Received shape {array.shape} "
            f"(rank {array.ndim}).{hint}"
        )
    if array.ndim == 2:
        array = array[np.newaxis]
    samples, n, classes = array.shape
    if n == 0:
        raise ValueError(
            f"`{name}` holds an empty pool: shape {array.shape} has 0 examples. "
            "Pass at least one example."
        )
    if samples == 0 or classes < 2:
        raise ValueError(
            f"`{name}` must hold at least 1 pass and 2 classes. Received shape "
            f"{array.shape}."
        )
    finite = np.isfinite(array)
    if not finite.all():
        where = np.unravel_index(np.argmin(finite), array.shape)
        raise ValueError(
            f"`{name}` must hold finite probabilities. Received "
            f"{array[where]} at (sample, example, class) {tuple(map(int, where))}."
        )
    if (array < 0).any():
        where = np.unravel_index(np.argmin(array), array.shape)
        raise ValueError(
            f"`{name}` must hold probabilities >= 0. Received {array[where]} at "
            f"(sample, example, class) {tuple(map(int, where))}: these look like "
            "logits; pass softmax outputs."
        )
    error = np.abs(array.sum(axis=-1) - 1.0)
    if (error > uncertainty.SUM_TOLERANCE).any():
        where = np.unravel_index(np.argmax(error), error.shape)
        raise ValueError(
            f"`{name}` must hold probabilities summing to 1 over the classes "
            f"(last axis, within {uncertainty.SUM_TOLERANCE}). The row at "
            f"(sample, example) {tuple(map(int, where))} sums to "
            f"{array[where].sum()}: these look like logits; pass softmax outputs."
        )
    return array


def _scores(scores, name="scores"):
    array = _as_float_array(scores, name, "a 1-D array of scores, one per example")
    if array.ndim != 1:
        raise ValueError(
            f"`{name}` must be a 1-D array of scores, one per example. Received "
            f"shape {array.shape}."
        )
    if len(array) == 0:
        raise ValueError(f"`{name}` holds an empty pool: 0 scores. Pass at least one.")
    if not np.isfinite(array).all():
        where = int(np.argmin(np.isfinite(array)))
        raise ValueError(
            f"`{name}` must be finite. Received {array[where]} at index {where}."
        )
    return array


def _check_k(k, n):
    return _check_int(k, "k", 1, n, why=f" (the pool holds {n} examples)")


# --------------------------------------------------------------------- scores


def max_entropy(probs):
    """Predictive entropy: total uncertainty of the predictive distribution.

    `H[pbar] = -sum_c pbar_c log pbar_c` in nats, `pbar = 1/S sum_s p_s`.
    High both for examples the model finds ambiguous in every pass
    (aleatoric) and for those the passes disagree on (epistemic). Computed
    by `kdrop.uncertainty.predictive_entropy`.

    Args:
        probs: class probabilities of shape (samples, n, classes), a
            `kdrop.MCResult` with draws, or one prediction (n, classes).

    Returns:
        float64 array of shape (n,), in [0, log(classes)].

    Example:

    ```python
    draws = kdrop.mc_predict(model, x_pool, samples=20, return_samples=True).draws
    chosen = kdrop.acquisition.select(kdrop.acquisition.max_entropy(draws), k=10)
    ```

    References:
        - Shannon, "A Mathematical Theory of Communication", 1948.
        - Gal, Islam & Ghahramani, ICML 2017 (Max Entropy).
    """
    return uncertainty.predictive_entropy(_probabilities(probs, ranks=(3, 2)))


def bald(probs):
    """BALD: mutual information between an example's label and the weights.

    `I[y; w] = H[pbar] - 1/S sum_s H[p_s]` in nats: predictive entropy
    minus the mean entropy of the passes. High where the passes are each
    confident but disagree, zero where every pass gives the same
    distribution. Computed by `kdrop.uncertainty.mutual_information`.

    Args:
        probs: class probabilities of shape (samples, n, classes) or a
            `kdrop.MCResult` with draws.

    Returns:
        float64 array of shape (n,), in [0, log(classes)].

    Example:

    ```python
    draws = kdrop.mc_predict(model, x_pool, samples=20, return_samples=True).draws
    chosen = kdrop.acquisition.select(kdrop.acquisition.bald(draws), k=10)
    ```

    References:
        - Houlsby et al., "Bayesian Active Learning for Classification and
          Preference Learning", 2011.
        - Gal, Islam & Ghahramani, ICML 2017.
    """
    return uncertainty.mutual_information(_probabilities(probs))


def variation_ratios(probs):
    """Variation ratio: the fraction of passes that disagree with the mode.

    `1 - f_m / S`, where `f_m` counts the passes whose most probable class
    is the most common one (Freeman, 1965). 0 when every pass predicts the
    same class; at most `1 - 1/classes`. Computed by
    `kdrop.uncertainty.variation_ratio`.

    Args:
        probs: class probabilities of shape (samples, n, classes) or a
            `kdrop.MCResult` with draws.

    Returns:
        float64 array of shape (n,), multiples of 1/S in [0, 1).

    Example:

    ```python
    scores = kdrop.acquisition.variation_ratios(draws)
    ```

    References:
        - Freeman, "Elementary Applied Statistics", 1965.
        - Gal, Islam & Ghahramani, ICML 2017.
    """
    return uncertainty.variation_ratio(_probabilities(probs))


def mean_std(probs):
    """Mean standard deviation of the class probabilities over passes.

    `1/C sum_c sigma_c` with `sigma_c = sqrt(1/S sum_s (p_sc - pbar_c)^2)`
    (population standard deviation, ddof=0), as in Kendall et al. (2015)
    and Gal, Islam & Ghahramani (2017).

    Args:
        probs: class probabilities of shape (samples, n, classes) or a
            `kdrop.MCResult` with draws.

    Returns:
        float64 array of shape (n,), in [0, 0.5].

    Example:

    ```python
    scores = kdrop.acquisition.mean_std(draws)
    ```

    References:
        - Kendall, Badrinarayanan & Cipolla, "Bayesian SegNet", 2015.
        - Gal, Islam & Ghahramani, ICML 2017.
    """
    return _probabilities(probs).std(axis=0).mean(axis=-1)


def margin(probs):
    """Margin sampling, as a score where higher means acquire first.

    `1 - (pbar_(1) - pbar_(2))`, where `pbar_(1) >= pbar_(2)` are the two
    largest mean class probabilities: 1 minus the margin, so the examples
    with the smallest margin (closest to the decision boundary) score
    highest and every score is in [0, 1] (usable with
    `stochastic_batch(mode="power")`).

    Args:
        probs: class probabilities of shape (samples, n, classes), a
            `kdrop.MCResult` with draws, or one prediction (n, classes).

    Returns:
        float64 array of shape (n,), in [0, 1].

    Example:

    ```python
    scores = kdrop.acquisition.margin(model.predict(x_pool))
    ```

    References:
        - Scheffer, Decomain & Wrobel, "Active Hidden Markov Models for
          Information Extraction", IDA 2001.
    """
    mean = _probabilities(probs, ranks=(3, 2)).mean(axis=0)
    top_two = np.partition(mean, -2, axis=-1)[:, -2:]
    return 1.0 - (top_two[:, 1] - top_two[:, 0])


def least_confidence(probs):
    """Least confidence: `1 - max_c pbar_c`.

    Args:
        probs: class probabilities of shape (samples, n, classes), a
            `kdrop.MCResult` with draws, or one prediction (n, classes).

    Returns:
        float64 array of shape (n,), in [0, 1 - 1/classes].

    Example:

    ```python
    scores = kdrop.acquisition.least_confidence(draws)
    ```

    References:
        - Lewis & Gale, "A Sequential Algorithm for Training Text
          Classifiers", SIGIR 1994.
    """
    return 1.0 - _probabilities(probs, ranks=(3, 2)).mean(axis=0).max(axis=-1)


def random(probs_or_n, seed=None):
    """Random acquisition: independent uniform scores in [0, 1).

    `select(random(n, seed), k)` is a uniformly random k-subset of the pool,
    the usual baseline.

    Args:
        probs_or_n: the pool size as an int > 0, or class probabilities
            (samples, n, classes) / (n, classes), whose `n` is used.
        seed: None or an int; the same seed gives the same scores.

    Returns:
        float64 array of shape (n,).

    Example:

    ```python
    chosen = kdrop.acquisition.select(kdrop.acquisition.random(len(x_pool), 0), 10)
    ```
    """
    if isinstance(probs_or_n, numbers.Number):
        n = _check_int(probs_or_n, "probs_or_n", 1)
    else:
        n = _probabilities(probs_or_n, ranks=(3, 2), name="probs_or_n").shape[1]
    return np.random.default_rng(validation.check_seed(seed)).random(n)


# ---------------------------------------------------------------- selection


def select(scores, k, *, seed=None):
    """The indices of the k highest scores, highest first.

    Ties are broken deterministically: by lower index first when `seed` is
    None, else by a random permutation of the pool drawn from `seed` (the
    same seed gives the same order).

    Args:
        scores: 1-D array of finite scores, one per pool example.
        k: int in [1, len(scores)].
        seed: None or an int, see above.

    Returns:
        int64 array of shape (k,).

    Example:

    ```python
    chosen = kdrop.acquisition.select(kdrop.acquisition.bald(draws), k=10)
    ```
    """
    scores = _scores(scores)
    k = _check_k(k, len(scores))
    seed = validation.check_seed(seed)
    if seed is None:
        order = np.argsort(-scores, kind="stable")
    else:
        permutation = np.random.default_rng(seed).permutation(len(scores))
        order = np.lexsort((permutation, -scores))
    return order[:k].astype(np.int64)


def stochastic_batch(scores, k, mode="power", temperature=1.0, seed=None):
    """Samples k distinct examples with probability growing with the score.

    Stochastic batch acquisition (Kirsch et al., 2023): instead of the top
    k, which piles up near-duplicates, draw k examples without replacement
    with weights

        power:    w_i = score_i ** (1/T)        (scores must be >= 0)
        softmax:  w_i = exp(score_i / T)
        softrank: w_i = rank_i ** (-1/T)        (rank 1 = highest score)

    Sampling without replacement in proportion to `w` uses the Gumbel-top-k
    trick: the k largest `log w_i + G_i`, `G_i` i.i.d. standard Gumbel, are
    a draw of the successive sampling (Plackett-Luce) distribution; with
    k = 1 example i is chosen with probability `w_i / sum_j w_j`. As
    T -> 0 every mode becomes the deterministic top k. In "power" mode
    examples of score 0 have weight 0: they are chosen only once every
    positive-score example is, in random order. In "softrank" mode tied
    scores get consecutive ranks, lower index first.

    Args:
        scores: 1-D array of finite scores, one per pool example.
        k: int in [1, len(scores)].
        mode: "power", "softmax" or "softrank".
        temperature: float > 0, T above (1 in the paper).
        seed: None or an int; the same seed gives the same batch.

    Returns:
        int64 array of shape (k,) of distinct indices, in the order drawn.

    Example:

    ```python
    scores = kdrop.acquisition.bald(draws)
    chosen = kdrop.acquisition.stochastic_batch(scores, k=100, mode="power")
    ```

    References:
        - Kirsch et al., "Stochastic Batch Acquisition: A Simple Baseline
          for Deep Active Learning", TMLR 2023.
        - Kool, van Hoof & Welling, "Stochastic Beams and Where to Find
          Them: The Gumbel-Top-k Trick", ICML 2019.
    """
    scores = _scores(scores)
    k = _check_k(k, len(scores))
    modes = ("power", "softmax", "softrank")
    if not isinstance(mode, str):
        raise TypeError(
            f"`mode` must be one of {', '.join(map(repr, modes))}. Received: "
            f"mode={mode!r} of type {type(mode).__name__}."
        )
    if mode not in modes:
        raise ValueError(
            f"`mode` must be one of {', '.join(map(repr, modes))}. Received: "
            f"mode={mode!r}."
        )
    temperature = _check_temperature(temperature)
    rng = np.random.default_rng(validation.check_seed(seed))
    if mode == "power":
        if (scores < 0).any():
            where = int(np.argmin(scores))
            raise ValueError(
                f'`scores` must be >= 0 for mode="power" (weights score**(1/T)). '
                f"Received {scores[where]} at index {where}; use "
                'mode="softmax" or "softrank" for signed scores.'
            )
        with np.errstate(divide="ignore"):
            log_weights = np.log(scores) / temperature
    elif mode == "softmax":
        log_weights = scores / temperature
    else:
        ranks = np.empty(len(scores))
        ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
        log_weights = -np.log(ranks) / temperature
    keys = log_weights + rng.gumbel(size=len(scores))
    # -inf keys (weight 0) tie: a random permutation orders them.
    order = np.lexsort((rng.permutation(len(scores)), -keys))
    return order[:k].astype(np.int64)


# ------------------------------------------------------------------ BatchBALD


class _Configurations:
    """The joint label probabilities of the chosen examples, one column per
    label configuration: `P_s(y_A = m) = exp(log_scale_m) * q[s, m]`.

    Exact while the configurations fit `exact_limit` (all classes**|A| of
    them, less those of probability 0); beyond it `num_samples`
    configurations sampled from `P(y_A) = 1/S sum_s P_s(y_A)`, each by
    drawing a pass `s_m` and then every chosen label from `p_{s_m}`.
    Columns are rescaled to a maximum of 1 so long batches do not
    underflow.
    """

    def __init__(self, passes, num_samples, exact_limit, rng):
        self.passes = passes
        self.num_samples = num_samples
        self.exact_limit = exact_limit
        self.rng = rng
        self.q = np.ones((passes.shape[0], 1))
        self.log_scale = np.zeros(1)
        self.exact = True
        self.chosen = []
        self.sampled_from = None

    def _sample_labels(self, index):
        """One label per configuration m, drawn from p[s_m, index]."""
        rows = self.passes[self.sampled_from, index]  # (M, classes)
        cdf = np.cumsum(rows, axis=-1)
        threshold = self.rng.random(len(rows)) * cdf[:, -1]
        # The first class whose cdf exceeds the threshold: its p is > 0.
        return (cdf <= threshold[:, None]).sum(axis=-1)

    def add(self, index):
        classes = self.passes.shape[-1]
        if self.exact and self.q.shape[1] * classes <= self.exact_limit:
            q = self.q[:, :, None] * self.passes[:, index, None, :]
            q = q.reshape(len(q), -1)
            log_scale = np.repeat(self.log_scale, classes)
            possible = q.max(axis=0) > 0
            q, log_scale = q[:, possible], log_scale[possible]
        else:
            if self.exact:
                self.exact = False
                self.sampled_from = self.rng.integers(
                    len(self.passes), size=self.num_samples
                )
                q = np.ones((len(self.passes), self.num_samples))
                log_scale = np.zeros(self.num_samples)
                replay = self.chosen
            else:
                q, log_scale, replay = self.q, self.log_scale, []
            for chosen in [*replay, index]:
                labels = self._sample_labels(chosen)
                q = q * self.passes[:, chosen, labels]
        top = q.max(axis=0)
        self.q = q / top
        self.log_scale = log_scale + np.log(top)
        self.chosen.append(index)

    def joint_entropies(self, flat, row_sums, start=0, stop=None):
        """H(y_A, y_i) for the pool examples i in [start, stop), `flat` the
        passes reshaped to (samples, n * classes), `row_sums` their sums
        over classes (samples, n)."""
        samples, n = row_sums.shape
        classes = flat.shape[1] // n
        stop = n if stop is None else stop
        configurations = self.q.shape[1]
        if self.exact:
            weights = np.exp(self.log_scale)
        else:
            # Importance weights 1 / (M P(y_A = m)), in the rescaled units.
            weights = 1.0 / (configurations * self.q.mean(axis=0))
        qt = np.ascontiguousarray(self.q.T) / samples
        # sum_c P(y_A = m, y_i = c), times the log-scale term of every m.
        mass = (weights * self.log_scale) @ (qt @ row_sums[:, start:stop])
        step = max(1, _CHUNK_ELEMENTS // (configurations * classes))
        plogp = np.empty(stop - start)
        for begin in range(start, stop, step):
            end = min(begin + step, stop)
            joint = qt @ flat[:, begin * classes : end * classes]
            log_joint = np.maximum(joint, _TINY)
            np.log(log_joint, out=log_joint)
            shape = (configurations, end - begin, classes)
            terms = np.einsum(
                "mbc,mbc->mb", joint.reshape(shape), log_joint.reshape(shape)
            )
            plogp[begin - start : end - start] = weights @ terms
        return -(mass + plogp)


def _expected_entropy(passes):
    """1/S sum_s H[p_s] per example, shape (n,)."""
    return uncertainty.predictive_entropy(passes) - uncertainty.mutual_information(
        passes
    )


def _check_estimator(num_samples, exact_limit, seed):
    num_samples = _check_int(num_samples, "num_samples", 1)
    exact_limit = _check_int(exact_limit, "exact_limit", 1)
    return num_samples, exact_limit, np.random.default_rng(validation.check_seed(seed))


def batch_bald(probs, k, *, num_samples=1000, exact_limit=1000, seed=None):
    """BatchBALD: greedily chooses the k examples of highest joint BALD.

    Maximises the mutual information between the labels of the whole
    batch and the weights (Kirsch, van Amersfoort & Gal, 2019),

        I(y_1..y_k; w) = H(y_1..y_k) - sum_i 1/S sum_s H[p_s(y_i)],
        H(y_1..y_k) = -sum_{y_1..y_k} P log P,
        P(y_1..y_k) = 1/S sum_s prod_i p_s(y_i),

    one example at a time: step t adds the example maximising
    `I(y_A, y_i; w)` given the t examples `A` already chosen (a
    1 - 1/e approximation of the best batch, the objective being
    submodular). Unlike the top k of `bald`, it does not pick two examples
    that carry the same information: once one is chosen, a duplicate adds
    (almost) nothing.

    The joint entropy of `A` and each candidate is exact, by enumerating
    the `classes**|A|` label configurations of `A`, while there are at
    most `exact_limit` of them; beyond it it uses the paper's estimator
    with `num_samples` configurations `y_A^m` sampled from `P(y_A)`,

        H(y_A, y_i) ~ -1/M sum_m sum_c P(y_A^m, c) / P(y_A^m) log P(y_A^m, c),

    unbiased with a standard error of order 1/sqrt(M). One step costs
    `M * samples * n * classes` multiply-adds (M the number of
    configurations), done as one matrix product per chunk of the pool.

    **Consistent draws.** `P(y_1..y_k)` couples the examples through the
    weights: pass `s` of every example must come from the same dropout
    masks (the same `w_s`). `kdrop.mc_predict` draws independent masks per
    example by default, so those draws are not consistent;
    `kdrop.mc_predict(..., masks="shared", return_samples=True).draws` are
    (one mask per dropout layer and pass for the whole pool; see
    docs/active_learning.md for models it refuses).

    Args:
        probs: consistent class probabilities of shape (samples, n,
            classes), or a `kdrop.MCResult` with draws.
        k: int in [1, n], the batch size.
        num_samples: int > 0, label configurations sampled per step once
            exact enumeration exceeds `exact_limit`.
        exact_limit: int > 0, the most configurations enumerated exactly.
        seed: None or an int, for the sampled configurations.

    Returns:
        int64 array of shape (k,): the chosen indices, in the order chosen.
        With k = 1 it is the argmax of `bald`.

    Example:

    ```python
    draws = kdrop.mc_predict(
        model, x_pool, samples=100, masks="shared", return_samples=True
    ).draws
    chosen = kdrop.acquisition.batch_bald(draws, k=10, seed=0)
    ```

    References:
        - Kirsch, van Amersfoort & Gal, "BatchBALD: Efficient and Diverse
          Batch Acquisition for Deep Bayesian Active Learning", NeurIPS 2019.
        - Houlsby et al., "Bayesian Active Learning for Classification and
          Preference Learning", 2011.
    """
    passes = _probabilities(probs)
    samples, n, classes = passes.shape
    k = _check_k(k, n)
    num_samples, exact_limit, rng = _check_estimator(num_samples, exact_limit, seed)
    conditional = _expected_entropy(passes)
    flat = passes.reshape(samples, n * classes)
    row_sums = passes.sum(axis=-1)
    configurations = _Configurations(passes, num_samples, exact_limit, rng)
    chosen = []
    for _ in range(k):
        gain = configurations.joint_entropies(flat, row_sums) - conditional
        gain[chosen] = -np.inf
        best = int(np.argmax(gain))
        chosen.append(best)
        if len(chosen) < k:
            configurations.add(best)
    return np.asarray(chosen, dtype=np.int64)


def joint_mutual_information(
    probs, indices, *, num_samples=1000, exact_limit=1000, seed=None
):
    """The BatchBALD objective of one batch, `I(y_indices; w)`, in nats.

    `H(y_1..y_b) - sum_i 1/S sum_s H[p_s(y_i)]`, the joint entropy exact
    or sampled as in `batch_bald` (enumerated over the first b - 1
    examples while `classes**(b - 1) <= exact_limit`, the last one always
    summed exactly). Needs consistent draws, see `batch_bald`.

    Args:
        probs: consistent class probabilities (samples, n, classes), or a
            `kdrop.MCResult` with draws.
        indices: distinct ints in [0, n), the batch.
        num_samples: as in `batch_bald`.
        exact_limit: as in `batch_bald`.
        seed: as in `batch_bald`.

    Returns:
        A float64. For one index it is that example's `bald` score.

    Example:

    ```python
    chosen = kdrop.acquisition.batch_bald(draws, k=5)
    print(kdrop.acquisition.joint_mutual_information(draws, chosen))
    ```
    """
    passes = _probabilities(probs)
    samples, n, classes = passes.shape
    if isinstance(indices, (str, bytes)) or not all(
        validation.is_integer(i)
        for i in np.atleast_1d(np.asarray(indices, dtype=object))
    ):
        raise TypeError(
            f"`indices` must be a sequence of ints in [0, {n}). Received: "
            f"indices={indices!r}."
        )
    indices = [int(i) for i in np.atleast_1d(np.asarray(indices, dtype=object))]
    if (
        not indices
        or len(set(indices)) != len(indices)
        or not all(0 <= i < n for i in indices)
    ):
        raise ValueError(
            f"`indices` must be one or more distinct ints in [0, {n}). Received: "
            f"indices={indices!r}."
        )
    num_samples, exact_limit, rng = _check_estimator(num_samples, exact_limit, seed)
    configurations = _Configurations(passes, num_samples, exact_limit, rng)
    for index in indices[:-1]:
        configurations.add(index)
    last = indices[-1]
    flat = passes.reshape(samples, n * classes)
    row_sums = passes.sum(axis=-1)
    joint = configurations.joint_entropies(flat, row_sums, last, last + 1)[0]
    return np.float64(joint - _expected_entropy(passes[:, indices]).sum())

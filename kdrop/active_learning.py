"""A small pool-based active-learning loop with Monte-Carlo dropout.

`run_active_learning` follows Gal, Islam & Ghahramani (2017): start from a
small labelled set (balanced per class or random), then each round score
the unlabelled pool (or a random subset of it) with an acquisition function
of the model's MC-dropout draws, ask the oracle for the labels of the k
best, retrain (from scratch by default) and evaluate on a test set. Labels
are read only from the oracle array `y_pool`, and only at the acquired
indices. With a `directory` the loop saves its state after every round and
a restarted call with the same arguments continues where it stopped.

References:
    - Gal, Islam & Ghahramani, "Deep Bayesian Active Learning with Image
      Data", ICML 2017.
    - Kirsch, van Amersfoort & Gal, "BatchBALD", NeurIPS 2019.
"""

import dataclasses
import json
import numbers
import os
import zlib

import keras
import numpy as np

import kdrop
from kdrop import acquisition as acq
from kdrop import validation
from kdrop.tensorboard import SummaryWriter
from kdrop.tensorboard.writer import check_log_dir, prepare_log_dir

__all__ = ["ACQUISITIONS", "ActiveLearningResult", "RoundRecord", "run_active_learning"]

# Acquisition names and the scores they rank by; "batch_bald" chooses the
# whole batch with kdrop.acquisition.batch_bald.
ACQUISITIONS = {
    "max_entropy": acq.max_entropy,
    "bald": acq.bald,
    "variation_ratios": acq.variation_ratios,
    "mean_std": acq.mean_std,
    "margin": acq.margin,
    "least_confidence": acq.least_confidence,
    "random": None,
    "batch_bald": None,
}
STATE_FILE = "active_learning_state.json"
# TensorBoard tags of `log_dir`, written once per round at step = the
# number of labelled examples the round's model was trained on.
TAG_DESCRIPTIONS = {
    "active_learning/test_accuracy": "Test accuracy of the round's model "
    "(argmax of its deterministic prediction) against the number of labelled "
    "training examples (step = labels). Per round.",
    "active_learning/test_error": "Test error (1 - accuracy) of the round's "
    "model against the number of labelled training examples (step = labels). "
    "Per round.",
}


@dataclasses.dataclass(frozen=True)
class RoundRecord:
    """What one round did.

    Attributes:
        round: 0 for the initial labelled set, then 1, 2, ...
        labels: the number of labelled examples the model was trained on.
        test_accuracy: accuracy of `model.predict(x_test)`'s argmax.
        test_error: 1 - test_accuracy.
        acquired: the pool indices acquired at the start of this round
            (the initial set for round 0), in the order chosen.
    """

    round: int
    labels: int
    test_accuracy: float
    test_error: float
    acquired: tuple


@dataclasses.dataclass(frozen=True)
class ActiveLearningResult:
    """The outcome of `run_active_learning`.

    Attributes:
        labelled: int64 array, the labelled pool indices in the order they
            were acquired (the initial set first).
        history: list of `RoundRecord`, one per round, round 0 first.
        model: the model of the last round (None when a resumed run had
            nothing left to do).
    """

    labelled: np.ndarray
    history: list
    model: object = None


def _round_seed(seed, round_index):
    """A 32-bit seed per round, independent of how many rounds ran before."""
    return int(np.random.SeedSequence([seed, round_index]).generate_state(1)[0])


def _class_indices(y, name):
    """Integer class indices of labels `y` (ints, or one-hot rows)."""
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] > 1:
        return labels.argmax(axis=1)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not (
        np.issubdtype(labels.dtype, np.integer)
        or (np.issubdtype(labels.dtype, np.floating) and np.all(labels % 1 == 0))
    ):
        raise ValueError(
            f"`{name}` must hold integer class labels (shape (n,) or (n, 1)) or "
            f"one-hot rows (n, classes). Received shape {labels.shape}, dtype "
            f"{labels.dtype}."
        )
    return labels.astype(np.int64)


def _initial_set(initial, initial_mode, y_classes, seed):
    n = len(y_classes)
    rng = np.random.default_rng(_round_seed(seed, 0))
    if not isinstance(initial, numbers.Integral) or isinstance(initial, bool):
        indices = np.asarray(initial)
        if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
            raise TypeError(
                "`initial` must be an int (the size of the initial labelled set) "
                f"or a 1-D array of pool indices. Received: initial={initial!r}."
            )
        if (
            len(indices) == 0
            or len(np.unique(indices)) != len(indices)
            or indices.min() < 0
            or indices.max() >= n
        ):
            raise ValueError(
                f"`initial` must hold one or more distinct pool indices in [0, {n}). "
                f"Received: initial={indices.tolist()}."
            )
        return indices.astype(np.int64)
    size = validation.check_int(initial, "initial", "an int >= 1", 1)
    if initial_mode == "random":
        if size > n:
            raise ValueError(
                f"`initial` must be at most the pool size {n}. Received: "
                f"initial={size}."
            )
        return rng.choice(n, size, replace=False).astype(np.int64)
    classes = np.unique(y_classes)
    per_class, remainder = divmod(size, len(classes))
    counts = {c: int(np.sum(y_classes == c)) for c in classes}
    if remainder or per_class == 0 or min(counts.values()) < per_class:
        raise ValueError(
            f"`initial` must be a multiple of the {len(classes)} classes of `y_pool` "
            f'for initial_mode="balanced", with at least initial / classes examples '
            f"of each class in the pool (class counts {counts}). Received: "
            f"initial={size}."
        )
    picked = [
        rng.choice(np.flatnonzero(y_classes == c), per_class, replace=False)
        for c in classes
    ]
    return rng.permutation(np.concatenate(picked)).astype(np.int64)


def _default_draws(samples, masks):
    def draws(model, x, seed):
        return kdrop.mc_predict(
            model, x, samples=samples, seed=seed, return_samples=True, masks=masks
        ).draws

    return draws


def run_active_learning(
    build_model,
    x_pool,
    y_pool,
    x_test,
    y_test,
    *,
    rounds,
    k=10,
    acquisition="bald",
    initial=20,
    initial_mode="balanced",
    samples=20,
    pool_subset=None,
    retrain="scratch",
    fit_kwargs=None,
    predict_draws=None,
    stochastic=None,
    temperature=1.0,
    directory=None,
    log_dir=None,
    seed=0,
    on_round=None,
):
    """Pool-based active learning with MC-dropout acquisition.

    Round 0 trains on the initial labelled set. Each round r = 1..rounds
    then: (1) draws `samples` MC-dropout passes of the previous round's
    model over the unlabelled pool, or over a random `pool_subset` of it
    (as Gal et al. score a random 2,000 of the pool); (2) acquires the k
    examples the acquisition ranks highest (or samples k with
    `stochastic`); (3) reads their labels from `y_pool`; (4) builds a new
    model with `build_model()` and trains it on every labelled example
    (`retrain="scratch"`, as in the paper) or trains the previous model
    further (`"continue"`); (5) evaluates its deterministic prediction on
    the test set. After each round the test accuracy and error are written
    to `log_dir` for TensorBoard (if given) at step = the number of labels,
    the state is saved to `directory` (if given), then `on_round(record,
    model)` is called.

    Reproducible: every round seeds Keras, numpy and Python with
    `keras.utils.set_random_seed` from (`seed`, round) before building and
    training, and seeds the MC passes, the pool subset and the tie-breaks
    from the same per-round seed. So a run stopped after any round and
    restarted with the same arguments and `directory` acquires the same
    examples as an uninterrupted run (on the same machine and backend).

    Args:
        build_model: callable with no argument returning a compiled Keras
            classifier with a softmax output (a new one each call).
        x_pool: array (n, ...), the unlabelled pool's inputs.
        y_pool: the oracle: the pool's labels, integer classes (n,) or
            one-hot rows (n, classes); only acquired rows are read, and
            passed to `model.fit` as they are.
        x_test: the test set's inputs.
        y_test: the test set's labels, as for `y_pool`.
        rounds: int >= 0, acquisition rounds after round 0. A restarted
            run may ask for more rounds than the saved one did.
        k: int >= 1, examples acquired per round.
        acquisition: one of `ACQUISITIONS` ("max_entropy", "bald",
            "variation_ratios", "mean_std", "margin", "least_confidence",
            "random", "batch_bald"), or a callable taking the draws
            `(samples, m, classes)` of the m scored examples and returning
            m scores, higher acquired first.
        initial: int, the size of the initial labelled set, or an array of
            pool indices to start from.
        initial_mode: "balanced" (initial / classes examples of each class,
            the paper's 20 = 2 x 10) or "random"; ignored for an array.
        samples: int >= 1, MC-dropout passes per scored example.
        pool_subset: None (score every unlabelled example) or int >= k:
            score a random subset of that many unlabelled examples.
        retrain: "scratch" or "continue".
        fit_kwargs: dict of keyword arguments for `model.fit` (epochs,
            batch_size, ...); `verbose=0` unless given.
        predict_draws: None, or a callable `(model, x, seed)` returning
            the class probabilities `(samples, len(x), classes)`. None uses
            `kdrop.mc_predict(..., return_samples=True).draws`, with masks
            drawn per example, and for "batch_bald" with
            `masks="shared"` (one mask per pass for every scored example:
            the consistent draws BatchBALD needs; a model with a dropout
            layer that cannot share its mask raises ValueError, see
            `kdrop.mc_predict`).
        stochastic: None (top k), or "power", "softmax" or "softrank":
            sample the k with `kdrop.acquisition.stochastic_batch`.
        temperature: float > 0, for `stochastic`.
        directory: None, or a directory where the state (labelled indices,
            round, history, and the last model's weights and optimizer
            state) is saved after every round, and read back by a restarted
            run.
        log_dir: None, or a directory where a `kdrop.tensorboard`
            event file gets `active_learning/test_accuracy` and
            `active_learning/test_error` per round, at step = the number of
            labelled examples: the learning curve. Give each run (each
            acquisition) its own `log_dir` to compare them in TensorBoard.
            A resumed run adds its rounds to the same directory.
        seed: int, the seed of the whole run.
        on_round: None or a callable `(record, model)` called after each
            round, once its state is saved.

    Returns:
        An `ActiveLearningResult(labelled, history, model)`.

    Raises:
        ValueError: for arguments out of range, pool and labels of
            different lengths, more acquisitions than the pool holds, or a
            `directory` saved by a run with other arguments.
        TypeError: for arguments of the wrong type.

    Example:

    ```python
    def build_model():
        model = keras.Sequential([
            keras.Input((784,)),
            keras.layers.Dense(128, activation="relu"),
            kdrop.InvertedDropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    result = kdrop.active_learning.run_active_learning(
        build_model, x_pool, y_pool, x_test, y_test,
        rounds=10, k=10, acquisition="bald", pool_subset=2000,
        fit_kwargs={"epochs": 50, "batch_size": 128}, directory="al_run",
    )
    for record in result.history:
        print(record.labels, record.test_error)
    ```
    """
    if not callable(build_model):
        raise TypeError(
            "`build_model` must be a callable returning a compiled Keras model. "
            f"Received: build_model of type {type(build_model).__name__}."
        )
    x_pool = np.asarray(x_pool)
    x_test = np.asarray(x_test)
    y_classes = _class_indices(y_pool, "y_pool")
    test_classes = _class_indices(y_test, "y_test")
    n = len(x_pool)
    if n == 0 or len(y_classes) != n or len(x_test) != len(test_classes):
        raise ValueError(
            "`x_pool` and `y_pool` (and `x_test` and `y_test`) must hold the same "
            "number of examples, at least one. Received "
            f"{len(x_pool)} and {len(y_classes)} ({len(x_test)} and "
            f"{len(test_classes)})."
        )
    rounds = validation.check_int(rounds, "rounds", "an int >= 0", 0)
    k = validation.check_int(k, "k", "an int >= 1", 1)
    samples = validation.check_int(samples, "samples", "an int >= 1", 1)
    seed = validation.check_int(seed, "seed", "an int >= 0", 0)
    if not callable(acquisition):
        validation.check_choice(acquisition, "acquisition", tuple(ACQUISITIONS))
    validation.check_choice(initial_mode, "initial_mode", ("balanced", "random"))
    validation.check_choice(retrain, "retrain", ("scratch", "continue"))
    temperature = acq._check_temperature(temperature)
    if stochastic is not None:
        validation.check_choice(
            stochastic, "stochastic", ("power", "softmax", "softrank")
        )
        if acquisition == "batch_bald":
            raise ValueError(
                '`stochastic` samples from per-example scores; acquisition="batch_'
                'bald" chooses the batch itself. Received: stochastic='
                f"{stochastic!r}."
            )
    if pool_subset is not None:
        pool_subset = validation.check_int(pool_subset, "pool_subset", "an int >= 1", 1)
        if pool_subset < k:
            raise ValueError(
                f"`pool_subset` must be at least k={k}: k examples are acquired from "
                f"it. Received: pool_subset={pool_subset}."
            )
    if fit_kwargs is not None and not isinstance(fit_kwargs, dict):
        raise TypeError(
            "`fit_kwargs` must be None or a dict of keyword arguments for "
            f"model.fit. Received: fit_kwargs of type {type(fit_kwargs).__name__}."
        )
    fit_kwargs = {"verbose": 0, **(fit_kwargs or {})}
    if {"x", "y"} & set(fit_kwargs):
        raise ValueError(
            "`fit_kwargs` must not hold x or y: the loop passes the labelled set. "
            f"Received keys {sorted(fit_kwargs)}."
        )
    for name, value in (("predict_draws", predict_draws), ("on_round", on_round)):
        if value is not None and not callable(value):
            raise TypeError(
                f"`{name}` must be None or a callable. Received: {name} of type "
                f"{type(value).__name__}."
            )
    check_log_dir(log_dir, optional=True)
    # BatchBALD couples the examples through the weights: the same masks
    # for every example of a pass.
    masks = "shared" if acquisition == "batch_bald" else "per_example"
    predict_draws = predict_draws or _default_draws(samples, masks)

    initial_set = _initial_set(initial, initial_mode, y_classes, seed)
    if len(initial_set) + rounds * k > n:
        raise ValueError(
            f"`rounds` x `k` + the initial set must fit the pool of {n} examples. "
            f"Received: rounds={rounds}, k={k}, initial set of {len(initial_set)}."
        )
    config = {
        "pool": [n, list(x_pool.shape[1:])],
        "y_pool_crc32": zlib.crc32(np.ascontiguousarray(y_classes).tobytes()),
        "k": k,
        "acquisition": acquisition
        if isinstance(acquisition, str)
        else getattr(acquisition, "__qualname__", repr(acquisition)),
        "initial": initial_set.tolist(),
        "samples": samples,
        "pool_subset": pool_subset,
        "retrain": retrain,
        "stochastic": stochastic,
        "temperature": temperature,
        "seed": seed,
    }

    def fit(model, labelled):
        model.fit(x_pool[labelled], np.asarray(y_pool)[labelled], **fit_kwargs)

    def evaluate(model, round_index, labelled, acquired):
        probs = np.asarray(model.predict(x_test, verbose=0))
        accuracy = float(np.mean(probs.argmax(axis=-1) == test_classes))
        return RoundRecord(
            round=round_index,
            labels=len(labelled),
            test_accuracy=accuracy,
            test_error=1.0 - accuracy,
            acquired=tuple(int(i) for i in acquired),
        )

    writers = []

    def finish_round(labelled, history, model):
        # Logged before the state is saved: a crash in between repeats the
        # round's (identical) point on resume rather than losing it.
        record = history[-1]
        if log_dir is not None:
            if not writers:
                writers.append(SummaryWriter(prepare_log_dir(log_dir, subdir="")))
            for name in ("test_accuracy", "test_error"):
                tag = f"active_learning/{name}"
                writers[0].scalar(
                    tag, getattr(record, name), record.labels, TAG_DESCRIPTIONS[tag]
                )
            writers[0].flush()
        _save_state(directory, config, labelled, history, model)
        if on_round is not None:
            on_round(record, model)

    try:
        state = _load_state(directory, config)
        if state is None:
            labelled = list(initial_set)
            keras.utils.set_random_seed(_round_seed(seed, 0))
            model = build_model()
            fit(model, labelled)
            history = [evaluate(model, 0, labelled, initial_set)]
            finish_round(labelled, history, model)
        else:
            labelled, history = state
            if len(history) - 1 > rounds:
                raise ValueError(
                    f"`directory` {directory!r} holds {len(history) - 1} rounds, more "
                    f"than rounds={rounds}: pass rounds >= {len(history) - 1} or "
                    "another directory."
                )
            model = None
            if len(history) - 1 < rounds:
                model = build_model()
                if model.optimizer is not None and not model.optimizer.built:
                    # So load_weights restores its state too ("continue").
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(
                    os.path.join(directory, _weights_name(len(history) - 1))
                )

        labelled_mask = np.zeros(n, dtype=bool)
        labelled_mask[labelled] = True
        for round_index in range(len(history), rounds + 1):
            round_seed = _round_seed(seed, round_index)
            rng = np.random.default_rng(round_seed)
            candidates = np.flatnonzero(~labelled_mask)
            if pool_subset is not None and pool_subset < len(candidates):
                candidates = np.sort(rng.choice(candidates, pool_subset, replace=False))
            if acquisition == "random":
                chosen = acq.select(acq.random(len(candidates), round_seed), k)
            else:
                draws = predict_draws(model, x_pool[candidates], round_seed)
                if acquisition == "batch_bald":
                    chosen = acq.batch_bald(draws, k, seed=round_seed)
                else:
                    score = (
                        acquisition
                        if callable(acquisition)
                        else ACQUISITIONS[acquisition]
                    )
                    scores = np.asarray(score(draws), dtype=np.float64)
                    if scores.shape != (len(candidates),):
                        raise ValueError(
                            "`acquisition` must return one score per scored "
                            f"example, shape ({len(candidates)},). Received shape "
                            f"{scores.shape}."
                        )
                    if stochastic is None:
                        chosen = acq.select(scores, k, seed=round_seed)
                    else:
                        chosen = acq.stochastic_batch(
                            scores, k, stochastic, temperature, seed=round_seed
                        )
            acquired = candidates[chosen]
            labelled_mask[acquired] = True
            labelled.extend(int(i) for i in acquired)
            keras.utils.set_random_seed(round_seed)
            if retrain == "scratch":
                model = build_model()
            fit(model, labelled)
            history.append(evaluate(model, round_index, labelled, acquired))
            finish_round(labelled, history, model)
        return ActiveLearningResult(
            labelled=np.asarray(labelled, dtype=np.int64), history=history, model=model
        )
    finally:
        for writer in writers:
            writer.close()


def _weights_name(round_index):
    return f"round_{round_index}.weights.h5"


def _save_state(directory, config, labelled, history, model):
    """Writes the round's weights, then the state file atomically, then
    removes older weights: a crash at any point leaves a consistent pair."""
    if directory is None:
        return
    os.makedirs(directory, exist_ok=True)
    round_index = len(history) - 1
    model.save_weights(os.path.join(directory, _weights_name(round_index)))
    state = {
        "config": config,
        "round": round_index,
        "labelled": [int(i) for i in labelled],
        "history": [dataclasses.asdict(record) for record in history],
    }
    temporary = os.path.join(directory, STATE_FILE + ".tmp")
    with open(temporary, "w") as file:
        json.dump(state, file, indent=1)
    os.replace(temporary, os.path.join(directory, STATE_FILE))
    for name in os.listdir(directory):
        if name.endswith(".weights.h5") and name != _weights_name(round_index):
            os.remove(os.path.join(directory, name))


def _load_state(directory, config):
    if directory is None:
        return None
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(
            "`directory` must be None or a path. Received: directory of type "
            f"{type(directory).__name__}."
        )
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        state = json.load(file)
    saved = state["config"]
    different = sorted(key for key in config if saved.get(key) != config[key])
    if different:
        raise ValueError(
            f"`directory` {os.fspath(directory)!r} holds the state of an active-"
            f"learning run with other arguments ({', '.join(different)} differ: "
            f"saved {[saved.get(key) for key in different]}). Use the same "
            "arguments to resume it, or another directory."
        )
    history = [
        RoundRecord(**{**record, "acquired": tuple(record["acquired"])})
        for record in state["history"]
    ]
    return state["labelled"], history

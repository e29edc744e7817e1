"""kdrop.active_learning.run_active_learning with a tiny Keras classifier:
what each round acquires, where labels come from, resuming, errors."""

import warnings

import keras
import numpy as np
import pytest

import kdrop
from kdrop import active_learning
from tests import event_files

CLASSES = 3


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % CLASSES
    centres = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    x = (centres[y] + rng.normal(size=(n, 4))).astype("float32")
    return x, y


X_POOL, Y_POOL = blobs(60, seed=0)
X_TEST, Y_TEST = blobs(30, seed=1)


FITTED = []


class RecordingModel(keras.Sequential):
    """Records the labels every fit call was given."""

    def fit(self, x=None, y=None, **kwargs):
        FITTED.append((np.array(x), np.array(y)))
        return super().fit(x, y, **kwargs)


# The models compile with run_eagerly=True: every round builds a new model,
# and tracing its train and predict functions cost four times the training
# on these 6-18 examples.


def build_model(cls=keras.Sequential):
    model = cls(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu"),
            kdrop.InvertedDropout(0.3),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    return model


def run(**kwargs):
    arguments = dict(
        rounds=3, k=4, initial=6, samples=4, fit_kwargs={"epochs": 1}, seed=0
    )
    arguments.update(kwargs)
    return active_learning.run_active_learning(
        arguments.pop("build_model", build_model),
        X_POOL,
        Y_POOL,
        X_TEST,
        Y_TEST,
        **arguments,
    )


def test_each_round_acquires_k_new_distinct_unlabelled_examples():
    seen = []
    result = run(
        rounds=2,
        acquisition="bald",
        pool_subset=20,
        on_round=lambda record, model: seen.append((record, model)),
    )
    history = result.history
    assert [record.round for record in history] == [0, 1, 2]
    assert [record.labels for record in history] == [6, 10, 14]
    # Balanced initial set: 2 of each class.
    assert np.bincount(Y_POOL[list(history[0].acquired)]).tolist() == [2, 2, 2]
    labelled = list(history[0].acquired)
    for record in history[1:]:
        assert len(record.acquired) == 4 == len(set(record.acquired))
        assert not set(record.acquired) & set(labelled)  # never a labelled one
        labelled += record.acquired
    assert result.labelled.tolist() == labelled
    assert [record for record, _ in seen] == history
    assert seen[-1][1] is result.model
    for record in history:
        assert record.test_error == pytest.approx(1 - record.test_accuracy)
        assert 0 <= record.test_accuracy <= 1
    # The test accuracy is that of the round's model's predictions.
    predicted = result.model.predict(X_TEST, verbose=0).argmax(axis=-1)
    assert history[-1].test_accuracy == pytest.approx(np.mean(predicted == Y_TEST))


def test_labels_come_only_from_the_oracle_at_the_acquired_indices():
    FITTED.clear()
    # Labels that cannot be inferred from x: only the oracle knows them.
    oracle = np.random.default_rng(5).integers(CLASSES, size=len(X_POOL))
    result = active_learning.run_active_learning(
        lambda: build_model(RecordingModel),
        X_POOL,
        oracle,
        X_TEST,
        Y_TEST,
        rounds=2,
        k=5,
        initial=6,
        initial_mode="random",
        acquisition="random",
        fit_kwargs={"epochs": 1},
    )
    assert len(FITTED) == 3  # from scratch each round
    sizes = [6, 11, 16]
    for (x, y), size in zip(FITTED, sizes):
        indices = result.labelled[:size]
        np.testing.assert_array_equal(y, oracle[indices])
        np.testing.assert_array_equal(x, X_POOL[indices])


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("retrain", ["scratch", "continue"])
def test_a_resumed_run_acquires_what_an_uninterrupted_one_does(tmp_path, retrain):
    # "continue" resumes from the saved weights and optimizer state.
    arguments = dict(
        rounds=3, k=3, acquisition="max_entropy", pool_subset=25, retrain=retrain
    )
    whole = run(**arguments)

    def stop_after_round_2(record, model):
        if record.round == 2:
            raise Interrupted

    state, logs = tmp_path / "state", tmp_path / "logs"
    with pytest.raises(Interrupted):
        run(
            directory=str(state),
            log_dir=str(logs),
            on_round=stop_after_round_2,
            **arguments,
        )
    saved = sorted(p.name for p in state.iterdir())
    assert saved == ["active_learning_state.json", "round_2.weights.h5"]
    rounds_run = []
    resumed = run(
        directory=str(state),
        log_dir=str(logs),
        on_round=lambda record, model: rounds_run.append(record.round),
        **arguments,
    )
    assert rounds_run == [3]  # continued, did not start over
    np.testing.assert_array_equal(resumed.labelled, whole.labelled)
    assert [r.acquired for r in resumed.history] == [r.acquired for r in whole.history]
    assert [r.test_accuracy for r in resumed.history] == pytest.approx(
        [r.test_accuracy for r in whole.history]
    )
    # The learning curve: one point per round, at step = labels, written
    # by the interrupted run and the resumed one.
    scalars = event_files.read_scalars(logs, subdir="")
    for name in ("test_accuracy", "test_error"):
        assert scalars[f"active_learning/{name}"] == pytest.approx(
            {r.labels: getattr(r, name) for r in whole.history}
        )
    assert (
        "step = labels"
        in event_files.read_descriptions(logs, subdir="")["active_learning/test_error"]
    )
    # Nothing left to do: the saved result comes back without training.
    again = run(directory=str(state), **arguments)
    np.testing.assert_array_equal(again.labelled, whole.labelled)
    assert again.model is None


def consistent_draws(model, x, seed):
    # One call over the whole scored pool per pass, with the dropout masks
    # shared by the batch (noise_shape (1, units)): consistent draws.
    return np.stack(
        [keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(6)]
    )


def build_shared_mask_model():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.3, noise_shape=(1, 16)),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    return model


@pytest.mark.parametrize(
    "options",
    [
        {"acquisition": "batch_bald", "predict_draws": consistent_draws},
        {"acquisition": kdrop.acquisition.variation_ratios, "stochastic": "power"},
        {"acquisition": lambda probs: probs.std(axis=0).max(axis=-1)},
        {"acquisition": "margin", "retrain": "continue"},
    ],
    ids=["batch_bald", "stochastic", "callable", "continue"],
)
def test_other_acquisitions_acquire_k_new_examples(options):
    result = run(rounds=1, build_model=build_shared_mask_model, **options)
    acquired = result.history[1].acquired
    assert len(set(acquired)) == 4
    assert not set(acquired) & set(result.history[0].acquired)


def test_batch_bald_scores_with_shared_masks_by_default(monkeypatch):
    calls = []
    mc_predict = kdrop.mc_predict

    def recording(model, x, **kwargs):
        result = mc_predict(model, x, **kwargs)
        calls.append((kwargs["masks"], x, result.draws))
        return result

    monkeypatch.setattr(kdrop, "mc_predict", recording)
    with warnings.catch_warnings():
        # The warning batch_bald gave with per-example masks is gone.
        warnings.filterwarnings("error", category=UserWarning)
        result = run(rounds=1, acquisition="batch_bald")
    assert len(set(result.history[1].acquired)) == 4
    [(masks, x, draws)] = calls
    assert masks == "shared"
    assert draws.shape == (4, len(x), CLASSES)


def test_per_example_scores_keep_per_example_masks(monkeypatch):
    calls = []
    mc_predict = kdrop.mc_predict

    def recording(model, x, **kwargs):
        calls.append(kwargs["masks"])
        return mc_predict(model, x, **kwargs)

    monkeypatch.setattr(kdrop, "mc_predict", recording)
    run(rounds=1, acquisition="bald")
    assert calls == ["per_example"]


# ----------------------------------------------------------------- errors


def refused(error, match, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=match):
            run(**kwargs)


def test_unknown_acquisition():
    refused(
        ValueError,
        r"`acquisition` must be one of 'max_entropy', .*'batch_bald'\. "
        r"Received: acquisition='entropy'",
        acquisition="entropy",
    )
    refused(TypeError, "acquisition=3 of type int", acquisition=3)


def test_more_acquisitions_than_the_pool_holds():
    refused(
        ValueError,
        r"`rounds` x `k` \+ the initial set must fit the pool of 60 examples\. "
        r"Received: rounds=20, k=4, initial set of 6",
        rounds=20,
    )


def test_pool_subset_smaller_than_k():
    refused(
        ValueError,
        r"`pool_subset` must be at least k=4.*Received: pool_subset=3",
        pool_subset=3,
    )


def test_initial_set_that_cannot_be_balanced():
    refused(
        ValueError,
        r"`initial` must be a multiple of the 3 classes .*Received: initial=7",
        initial=7,
    )
    refused(ValueError, r"distinct pool indices in \[0, 60\)", initial=[1, 1])


def test_pool_and_labels_of_different_lengths():
    with pytest.raises(ValueError, match=r"Received 60 and 59 \(30 and 30\)"):
        active_learning.run_active_learning(
            build_model, X_POOL, Y_POOL[:-1], X_TEST, Y_TEST, rounds=1
        )


def test_fit_kwargs_holding_the_data():
    refused(ValueError, "`fit_kwargs` must not hold x or y", fit_kwargs={"y": Y_POOL})
    refused(TypeError, "`fit_kwargs` must be None or a dict", fit_kwargs=[1])


def test_stochastic_batch_bald():
    refused(
        ValueError,
        "`stochastic` samples from per-example scores",
        acquisition="batch_bald",
        stochastic="power",
    )


def test_directory_of_a_run_with_other_arguments(tmp_path):
    run(rounds=0, directory=str(tmp_path))
    refused(
        ValueError,
        r"holds the state of an active-learning run with other arguments "
        r"\(k differ: saved \[4\]\)",
        rounds=1,
        k=5,
        directory=str(tmp_path),
    )
    run(rounds=1, directory=str(tmp_path))
    refused(
        ValueError,
        r"holds 1 rounds, more than rounds=0",
        rounds=0,
        directory=str(tmp_path),
    )


def test_log_dir_not_a_path():
    refused(
        TypeError, r"`log_dir` must be None or a path .*Received: log_dir=3", log_dir=3
    )


def test_acquisition_callable_returning_the_wrong_number_of_scores():
    refused(
        ValueError,
        r"`acquisition` must return one score per scored example, shape \(20,\)\. "
        r"Received shape \(19,\)",
        rounds=1,
        pool_subset=20,
        acquisition=lambda probs: probs[0, 1:, 0],
    )

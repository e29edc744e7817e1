"""ActivationSparsity: logged statistics against numpy on a known input."""

import math

import keras
import numpy as np
import pytest

import kdrop
from kdrop import callbacks, schedules
from kdrop.layers.rate import follows_schedule
from tests import model_zoo
from tests.callback_models import W_HIDDEN, X, Y, relu_model
from tests.event_files import read_histograms, read_scalars

PROBE = np.tile(X, (20, 1))  # 1280 rows: a tight binomial tolerance
HIDDEN = np.maximum(PROBE @ W_HIDDEN, 0.0)  # the 'hidden' layer's output


@pytest.mark.parametrize(
    "dropout",
    [
        lambda: kdrop.ScheduledDropout(schedules.Constant(0.4), seed=1, name="drop"),
        lambda: keras.layers.Dropout(0.4, seed=1, name="drop"),
    ],
)
def test_statistics_match_numpy(dropout, tmp_path):
    model = relu_model(dropout())
    model.fit(
        X,
        Y,
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[callbacks.ActivationSparsity(tmp_path, data=PROBE)],
    )

    scalars = read_scalars(tmp_path)
    assert set(scalars["statistics/sparsity/hidden"]) == {0, 1}
    assert scalars["statistics/sparsity/hidden"][1] == pytest.approx(
        np.mean(HIDDEN <= 0), abs=1e-6
    )
    assert scalars["statistics/mean_activation/hidden"][1] == pytest.approx(
        HIDDEN.mean(), rel=1e-5
    )
    assert "statistics/nonfinite_fraction/hidden" not in scalars

    buckets = read_histograms(tmp_path)["value_histograms/activations/hidden"][1]
    assert buckets[:, 2].sum() == HIDDEN.size
    assert buckets[0, 0] == pytest.approx(HIDDEN.min())
    assert buckets[-1, 1] == pytest.approx(HIDDEN.max(), rel=1e-5)
    expected, _ = np.histogram(
        HIDDEN, bins=len(buckets), range=(HIDDEN.min(), HIDDEN.max())
    )
    # float32 on the device vs float64 here: a value on a bin edge may move.
    assert np.abs(buckets[:, 2] - expected).sum() <= 0.001 * HIDDEN.size

    # Inverted dropout passes the 'hidden' output; a dropped unit is a
    # non-zero input that comes out 0. Binomial: 5 standard deviations.
    nonzero = np.count_nonzero(HIDDEN)
    dropped = scalars["statistics/dropped_fraction/drop"][1]
    assert abs(dropped - 0.4) < 5 * math.sqrt(0.4 * 0.6 / nonzero)
    if follows_schedule(model.get_layer("drop")):
        assert (
            model.get_layer("drop").step == 4
        )  # 4 training steps; the probe took none


@pytest.mark.parametrize(
    "dropout, scale",
    [
        (lambda: kdrop.InvertedDropout(0.5, seed=3, name="drop"), 2.0),
        (lambda: kdrop.WeightScaledDropout(0.5, seed=3, name="drop"), 1.0),
    ],
)
def test_a_dropout_layers_statistics_are_a_training_mode_draw(dropout, scale, tmp_path):
    model = relu_model(dropout())
    model.fit(
        X,
        Y,
        epochs=1,
        verbose=0,
        callbacks=[callbacks.ActivationSparsity(tmp_path, data=PROBE)],
    )
    scalars = read_scalars(tmp_path)
    # Each non-zero ReLU output is zeroed with probability 0.5 (Binomial),
    # kept ones are multiplied by `scale`: 1 / keep_prob (inverted) or 1.
    s_in, positive = np.mean(HIDDEN <= 0), np.count_nonzero(HIDDEN)
    sparsity = scalars["statistics/sparsity/drop"][0]
    expected = s_in + (1 - s_in) * 0.5
    assert abs(sparsity - expected) < 5 * math.sqrt(positive * 0.25) / HIDDEN.size
    # Same draw: inactive outputs = inactive inputs + dropped ones.
    dropped = scalars["statistics/dropped_fraction/drop"][0]
    assert sparsity == pytest.approx(s_in + (1 - s_in) * dropped, abs=1e-5)
    # mean(scale * m * x), m ~ Bernoulli(0.5): variance scale**2 x**2 / 4.
    mean_sd = scale * math.sqrt(np.sum(HIDDEN**2) / 4) / HIDDEN.size
    assert abs(
        scalars["statistics/mean_activation/drop"][0] - scale * 0.5 * HIDDEN.mean()
    ) < (5 * mean_sd)


def test_pass_through_layers_are_left_out_unless_named(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(40, activation="relu", use_bias=False, name="hidden"),
            keras.layers.Reshape((5, 8), name="reshape"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.get_layer("hidden").kernel.assign(W_HIDDEN)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    default, named = tmp_path / "default", tmp_path / "named"
    model.fit(
        X,
        Y,
        verbose=0,
        callbacks=[
            callbacks.ActivationSparsity(default, data=X),
            callbacks.ActivationSparsity(named, data=X, layers=["flatten"]),
        ],
    )
    logged = {
        tag for tag in read_scalars(default) if tag.startswith("statistics/sparsity/")
    }
    assert logged == {"statistics/sparsity/hidden", "statistics/sparsity/out"}
    # Flatten repeats the ReLU's values: the same statistics.
    assert read_scalars(named)["statistics/sparsity/flatten"][0] == pytest.approx(
        np.mean(np.maximum(X @ W_HIDDEN, 0) <= 0), abs=1e-6
    )


def histogram_model():
    """hidden -> reshape -> flatten -> drop -> features -> out."""
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(40, activation="relu", name="hidden"),
            keras.layers.Reshape((5, 8), name="reshape"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dropout(0.5, name="drop"),
            keras.layers.Dense(8, activation="relu", name="features"),
            keras.layers.Dense(1, name="out"),
        ]
    )


@pytest.mark.parametrize(
    "histograms, expected",
    [
        # The input of the dropout layer (behind flatten and reshape) and
        # of the last layer.
        (True, {"hidden", "features"}),
        ("all", {"hidden", "drop", "features", "out"}),
        (["out", "hidden"], {"out", "hidden"}),
        (False, set()),
    ],
)
def test_histograms_by_default_for_the_inputs_of_dropout_and_last_layers(
    histograms, expected, tmp_path
):
    model = histogram_model()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(
        X,
        Y,
        verbose=0,
        callbacks=[
            callbacks.ActivationSparsity(tmp_path, data=X, histograms=histograms)
        ],
    )
    prefix = "value_histograms/activations/"
    logged = {tag.removeprefix(prefix) for tag in read_histograms(tmp_path)}
    assert logged == expected


def test_a_histogram_of_a_layer_that_is_not_logged_fails_before_training(tmp_path):
    model = histogram_model()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"`histograms` entries \['flatten'\]"):
        model.fit(
            X,
            Y,
            verbose=0,
            callbacks=[
                callbacks.ActivationSparsity(tmp_path, data=X, histograms=["flatten"])
            ],
        )
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


def test_threshold_chosen_layers_no_histograms_every_n_epochs(tmp_path):
    model = relu_model()
    model.fit(
        X,
        Y,
        epochs=4,
        verbose=0,
        callbacks=[
            callbacks.ActivationSparsity(
                tmp_path,
                data=(X, Y),
                layers=["hidden"],
                threshold=0.5,
                histograms=False,
                every_n_epochs=2,
            )
        ],
    )
    hidden = np.maximum(X @ W_HIDDEN, 0.0)
    scalars = read_scalars(tmp_path)
    assert set(scalars) == {
        "statistics/sparsity/hidden",
        "statistics/mean_activation/hidden",
    }
    assert set(scalars["statistics/sparsity/hidden"]) == {1, 3}
    assert scalars["statistics/sparsity/hidden"][3] == pytest.approx(
        np.mean(hidden <= 0.5), abs=1e-6
    )
    assert read_histograms(tmp_path) == {}


# Without a histogram the layer's statistics take another path (no min,
# max or bin counts): both must leave NaN/Inf out the same way.
@pytest.mark.parametrize("histograms", [True, False])
def test_nonfinite_activations_are_counted_and_left_out(histograms, tmp_path):
    model = relu_model()
    probe = X.copy()
    probe[0, 0] = np.nan  # row 0 of 'hidden' becomes NaN
    history = model.fit(
        X,
        Y,
        epochs=3,
        verbose=0,
        callbacks=[
            callbacks.ActivationSparsity(tmp_path, data=probe, histograms=histograms)
        ],
    )
    assert len(history.history["loss"]) == 3
    # Non-zero: written at every probe.
    assert set(read_scalars(tmp_path)["statistics/nonfinite_fraction/hidden"]) == {
        0,
        1,
        2,
    }
    hidden = probe @ W_HIDDEN
    finite = np.isfinite(hidden)
    scalars = read_scalars(tmp_path)
    assert scalars["statistics/nonfinite_fraction/hidden"][1] == pytest.approx(
        1 - finite.mean()
    )
    relu = np.maximum(hidden[finite], 0)
    assert scalars["statistics/mean_activation/hidden"][1] == pytest.approx(
        relu.mean(), rel=1e-5
    )
    assert scalars["statistics/sparsity/hidden"][1] == pytest.approx(
        np.mean(relu <= 0), abs=1e-6
    )
    histogram = read_histograms(tmp_path).get("value_histograms/activations/hidden")
    if histograms:
        assert histogram[1][:, 2].sum() == finite.sum()
    else:
        assert histogram is None


def test_a_run_without_nan_or_inf_writes_no_nonfinite_fraction(tmp_path):
    relu_model().fit(
        X,
        Y,
        epochs=3,
        verbose=0,
        callbacks=[callbacks.ActivationSparsity(tmp_path, data=X)],
    )
    scalars = read_scalars(tmp_path)
    assert set(scalars["statistics/sparsity/hidden"]) == {0, 1, 2}
    assert not any("nonfinite_fraction" in tag for tag in scalars)


class ProbeWithNaNAt(keras.callbacks.Callback):
    """Gives `sparsity` a probe with one NaN input at the epochs `nan_epochs`
    (it must come before `sparsity` in the callbacks list)."""

    def __init__(self, sparsity, nan_epochs):
        super().__init__()
        self.sparsity, self.nan_epochs = sparsity, nan_epochs
        self.with_nan = X.copy()
        self.with_nan[0, 0] = np.nan

    def on_epoch_end(self, epoch, logs=None):
        self.sparsity.x = self.with_nan if epoch in self.nan_epochs else X


def test_nonfinite_fraction_changes_at_the_probes_where_it_changed(tmp_path):
    sparsity = callbacks.ActivationSparsity(tmp_path, data=X)
    relu_model().fit(
        X,
        Y,
        epochs=7,
        verbose=0,
        callbacks=[ProbeWithNaNAt(sparsity, nan_epochs={3}), sparsity],
    )
    hidden = X.copy()
    hidden[0, 0] = np.nan
    fraction = 1 - np.isfinite(hidden @ W_HIDDEN).mean()
    # 2: the zero before the NaN; 3: the NaN; 4: back to zero. Not 0, 1, 5
    # or 6, where it was zero and stayed so.
    assert read_scalars(tmp_path)[
        "statistics/nonfinite_fraction/hidden"
    ] == pytest.approx({2: 0.0, 3: fraction, 4: 0.0})


@pytest.mark.tensorflow_only
def test_model_compiled_with_xla(tmp_path):
    """The probe is a model of its own, never XLA-compiled on TensorFlow (no
    XLA kernel for TensorFlow's histogram op), whatever the model uses."""
    model = relu_model()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=True)
    model.fit(
        X,
        Y,
        epochs=1,
        verbose=0,
        callbacks=[
            callbacks.ActivationSparsity(tmp_path, data=X),
            callbacks.WeightHistograms(tmp_path, data=(X, Y)),
        ],
    )
    hidden = np.maximum(X @ W_HIDDEN, 0.0)
    assert read_scalars(tmp_path)["statistics/mean_activation/hidden"][
        0
    ] == pytest.approx(hidden.mean(), rel=1e-5)


def test_functional_model_with_two_named_inputs(tmp_path):
    a, b = keras.Input((6,), name="a"), keras.Input((6,), name="b")
    relu_a = keras.layers.Dense(40, activation="relu", use_bias=False, name="relu_a")(a)
    relu_b = keras.layers.Dense(40, activation="relu", use_bias=False, name="relu_b")(b)
    out = keras.layers.Dense(1, name="out")(
        keras.layers.Concatenate()([relu_a, relu_b])
    )
    model = keras.Model([a, b], out)
    for name in ("relu_a", "relu_b"):
        model.get_layer(name).kernel.assign(W_HIDDEN)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    model.fit(
        {"a": X, "b": -X},
        Y,
        epochs=1,
        verbose=0,
        callbacks=[callbacks.ActivationSparsity(tmp_path, data={"a": X, "b": -X})],
    )
    scalars = read_scalars(tmp_path)
    for name, x in (("relu_a", X), ("relu_b", -X)):
        hidden = np.maximum(x @ W_HIDDEN, 0.0)
        assert scalars[f"statistics/sparsity/{name}"][0] == pytest.approx(
            np.mean(hidden <= 0), abs=1e-6
        )
        assert scalars[f"statistics/mean_activation/{name}"][0] == pytest.approx(
            hidden.mean(), rel=1e-5
        )


def test_sequential_model_without_input_layer(tmp_path):
    model = keras.Sequential(
        [
            keras.layers.Dense(40, activation="relu", use_bias=False, name="hidden"),
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    model.fit(
        X,
        Y,
        epochs=2,
        verbose=0,
        callbacks=[callbacks.ActivationSparsity(tmp_path, data=X, layers=["hidden"])],
    )
    hidden = np.maximum(X @ model.get_layer("hidden").kernel.numpy(), 0.0)
    logged = read_scalars(tmp_path)["statistics/mean_activation/hidden"]
    assert logged == {
        0: pytest.approx(hidden.mean(), rel=1e-5),
        1: pytest.approx(hidden.mean(), rel=1e-5),
    }


def test_unknown_layer_and_subclassed_model_fail_before_training(tmp_path):
    model = relu_model()
    with pytest.raises(ValueError, match="`layers` entry 'missing' is not a layer"):
        model.fit(
            X,
            Y,
            epochs=1,
            verbose=0,
            callbacks=[
                callbacks.ActivationSparsity(
                    tmp_path, data=X, layers=["hidden", "missing"]
                )
            ],
        )

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="Functional or Sequential.*Subclassed"):
        model.fit(
            X,
            Y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.ActivationSparsity(tmp_path, data=X)],
        )


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"every_n_epochs": 0}, ValueError, ["every_n_epochs", "0"]),
        ({"threshold": float("nan")}, ValueError, ["threshold", "nan"]),
        ({"threshold": "0"}, TypeError, ["threshold", "'0'"]),
        ({"layers": 3}, TypeError, ["layers", "3"]),
        ({"histograms": "some"}, ValueError, ["histograms", "'some'", "'all'"]),
        ({"histograms": 3}, TypeError, ["histograms", "3", "'all'"]),
        ({"data": "x"}, TypeError, ["data", "str"]),
        (
            {"constant_statistics": "yes"},
            TypeError,
            ["constant_statistics", "'yes'", "True or False"],
        ),
        ({"data": (X, Y, Y)}, ValueError, ["data", "length 3"]),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        callbacks.ActivationSparsity("logs", **{"data": X, **kwargs})
    for word in words:
        assert word in str(info.value)


def test_layers_of_nested_models_by_path_match_their_own_outputs(tmp_path):
    model, x = model_zoo.nested()
    model.fit(
        x,
        model_zoo.fit_targets(model, x),
        epochs=1,
        verbose=0,
        callbacks=[
            callbacks.ActivationSparsity(
                tmp_path, data=x, layers=["encoder/drop", "decoder/dense"]
            )
        ],
    )
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    # In inference mode encoder/drop passes the encoder's Dense output on:
    # the input of its training-mode draw, and the decoder's input.
    encoded = keras.ops.convert_to_numpy(encoder(x))
    decoded = keras.ops.convert_to_numpy(decoder.get_layer("dense")(encoded))
    scalars = read_scalars(tmp_path)
    assert scalars["statistics/sparsity/decoder/dense"][0] == pytest.approx(
        np.mean(decoded <= 0), abs=1e-6
    )
    assert scalars["statistics/mean_activation/decoder/dense"][0] == pytest.approx(
        decoded.mean(), rel=1e-5, abs=1e-7
    )
    # Keras Dropout(0.1) zeroes each non-zero input with probability 0.1;
    # a zeroed positive input becomes inactive (<= 0).
    nonzero, positive = np.count_nonzero(encoded), np.count_nonzero(encoded > 0)
    dropped = scalars["statistics/dropped_fraction/encoder/drop"][0]
    assert abs(dropped - 0.1) < 5 * math.sqrt(0.1 * 0.9 / nonzero)
    expected = np.mean(encoded <= 0) + 0.1 * positive / encoded.size
    tolerance = 5 * math.sqrt(positive * 0.1 * 0.9) / encoded.size
    assert abs(scalars["statistics/sparsity/encoder/drop"][0] - expected) < tolerance


def test_a_layer_inside_a_custom_layer_is_refused_before_training(tmp_path):
    model, x = model_zoo.transformer()
    # Its automatic name depends on the layers made before in the process.
    inner = next(
        path
        for path, _ in kdrop.layer_paths.walk(model)
        if path.startswith("block/layer_normalization")
    )
    with pytest.raises(ValueError, match="inside layer 'block'.*Pass 'block'"):
        model.fit(
            x,
            model_zoo.fit_targets(model, x),
            verbose=0,
            callbacks=[callbacks.ActivationSparsity(tmp_path, data=x, layers=[inner])],
        )
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


def test_a_list_probe_is_the_inputs_of_a_two_input_model(tmp_path):
    model, x = model_zoo.multi_input()
    assert isinstance(x, list) and len(x) == 2  # never read as (x, y)
    concatenate = next(
        layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)
    )
    model.fit(
        x,
        model_zoo.fit_targets(model, x),
        epochs=1,
        verbose=0,
        callbacks=[
            callbacks.ActivationSparsity(tmp_path, data=x, layers=[concatenate])
        ],
    )
    features = keras.Model(model.inputs, concatenate.output).predict(x, verbose=0)
    assert read_scalars(tmp_path)[f"statistics/mean_activation/{concatenate.name}"][
        0
    ] == pytest.approx(features.mean(), rel=1e-5)


@pytest.mark.parametrize(
    "dropout",
    [
        lambda: kdrop.WeightScaledDropout(0.4, seed=1, name="drop"),
        lambda: keras.layers.Dropout(0.4, seed=1, name="drop"),
    ],
)
def test_logging_does_not_change_the_masks_training_draws(dropout, tmp_path):
    # The dropped-fraction draw uses the layer's own seed generator; its
    # state is put back, so training follows the same masks with the
    # callback as without it.
    def trained_weights(extra_callbacks):
        keras.utils.set_random_seed(3)
        model = relu_model(dropout())
        model.compile(keras.optimizers.SGD(0.05), "mse")
        model.fit(X, Y, epochs=3, batch_size=16, verbose=0, callbacks=extra_callbacks)
        return model.get_weights()

    logged = trained_weights([callbacks.ActivationSparsity(tmp_path, data=PROBE)])
    assert "statistics/dropped_fraction/drop" in read_scalars(tmp_path)
    for got, expected in zip(logged, trained_weights([])):
        np.testing.assert_array_equal(got, expected)


def test_a_dict_probe_is_matched_to_the_inputs_by_key(tmp_path):
    inputs = {
        "wide": keras.Input((4,), name="wide"),
        "narrow": keras.Input((2,), name="narrow"),
    }
    hidden = keras.layers.Concatenate()([inputs["wide"], inputs["narrow"]])
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
    model.compile("sgd", "mse")
    # Keys in another order than the inputs', as mc_predict takes them.
    probe = {"narrow": X[:, :2], "wide": X[:, :4]}
    fit = dict(x=probe, y=Y, epochs=1, verbose=0)
    model.fit(**fit, callbacks=[callbacks.ActivationSparsity(tmp_path, data=probe)])
    assert read_scalars(tmp_path)["statistics/sparsity/out"]
    for wrong, name, shape in (
        ({"narrow": X[:, :3], "wide": X[:, :4]}, "narrow", r"\(64, 3\)"),
        ({"wide": X[:, :4]}, "narrow", "None"),
    ):
        with pytest.raises(
            ValueError,
            match=rf"input '{name}' expects shape \(None, 2\), the "
            rf"probe batch has shape {shape}\.",
        ):
            model.fit(**fit, callbacks=[callbacks.ActivationSparsity(tmp_path, wrong)])


def test_layers_called_again_by_mc_predict_are_still_logged(tmp_path):
    # mc_predict's sampling model calls the model's layers once more: a
    # second node for each, outside the model's own graph.
    model = relu_model(kdrop.InvertedDropout(0.5, name="drop"))
    kdrop.mc_predict(model, X, samples=2)
    model.fit(
        X,
        Y,
        epochs=1,
        verbose=0,
        callbacks=[
            callbacks.ActivationSparsity(tmp_path / "all", data=X),
            callbacks.ActivationSparsity(tmp_path / "one", data=X, layers=["drop"]),
        ],
    )
    assert {
        "statistics/sparsity/hidden",
        "statistics/sparsity/drop",
        "statistics/sparsity/out",
    } <= set(read_scalars(tmp_path / "all"))
    assert "statistics/dropped_fraction/drop" in read_scalars(tmp_path / "one")


def softmax_head_model(head):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, head(hidden))


SOFTMAX_HEADS = {
    "dense_softmax": lambda h: keras.layers.Dense(4, "softmax", name="head")(h),
    "softmax_layer": lambda h: keras.layers.Softmax(name="head")(
        keras.layers.Dense(4)(h)
    ),
    "activation_softmax": lambda h: keras.layers.Activation("softmax", name="head")(
        keras.layers.Dense(4)(h)
    ),
    "dense_sigmoid": lambda h: keras.layers.Dense(4, "sigmoid", name="head")(h),
}


@pytest.mark.parametrize("head", sorted(SOFTMAX_HEADS))
def test_statistics_a_softmax_or_sigmoid_fixes_are_left_out_unless_asked(
    head, tmp_path
):
    model = softmax_head_model(SOFTMAX_HEADS[head])
    model.compile("sgd", "mse")
    y = np.abs(Y[:, :1]) * np.ones((1, 4), "float32")
    for constant_statistics in (False, True):
        log_dir = tmp_path / str(constant_statistics)
        model.fit(
            X,
            y,
            epochs=1,
            verbose=0,
            callbacks=[
                callbacks.ActivationSparsity(
                    log_dir, data=X, constant_statistics=constant_statistics
                )
            ],
        )
        logged = read_scalars(log_dir)
        assert "statistics/sparsity/hidden" in logged
        # Softmax: mean over 4 classes = 1/4 by construction; softmax and
        # sigmoid outputs are > 0, so never <= threshold 0.
        mean = logged.get("statistics/mean_activation/head")
        sparsity = logged.get("statistics/sparsity/head")
        if not constant_statistics:
            assert sparsity is None
            assert (mean is None) == (head != "dense_sigmoid")
            continue
        assert sparsity == {0: 0.0}
        probabilities = keras.ops.convert_to_numpy(model(X))
        assert mean[0] == pytest.approx(probabilities.mean(), rel=1e-5)
        if head != "dense_sigmoid":
            assert mean[0] == pytest.approx(0.25, rel=1e-5)


def test_a_sigmoid_sparsity_above_a_positive_threshold_is_logged(tmp_path):
    model = softmax_head_model(SOFTMAX_HEADS["dense_sigmoid"])
    model.compile("sgd", "mse")
    sparsity = callbacks.ActivationSparsity(
        tmp_path, data=X, threshold=0.5, histograms=False
    )
    model.fit(
        X, np.zeros((64, 4), "float32"), epochs=1, verbose=0, callbacks=[sparsity]
    )
    probabilities = keras.ops.convert_to_numpy(model(X))
    assert read_scalars(tmp_path)["statistics/sparsity/head"][0] == pytest.approx(
        np.mean(probabilities <= 0.5), abs=1e-6
    )


def test_the_probe_is_traced_once_and_reused_by_every_epoch_and_fit(
    monkeypatch, tmp_path
):
    # Python runs a layer's `call` only while tracing (TensorFlow, JAX);
    # torch runs it eagerly, at every probe.
    from kdrop.callbacks import activation_sparsity

    calls = []
    original = activation_sparsity._ActivationStats.call
    monkeypatch.setattr(
        activation_sparsity._ActivationStats,
        "call",
        lambda self, x: calls.append(self.name) or original(self, x),
    )
    model = relu_model(kdrop.InvertedDropout(0.5, name="drop"))
    sparsity = callbacks.ActivationSparsity(tmp_path, data=X)
    at_epoch_end = []
    count = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: at_epoch_end.append(len(calls))
    )
    model.fit(X, Y, epochs=3, verbose=0, callbacks=[sparsity, count])
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[sparsity, count])
    layers = len(sparsity._paths)  # hidden, drop, out
    assert layers == 3
    if keras.backend.backend() == "torch":
        assert np.diff(at_epoch_end).tolist() == [layers] * 4
    else:
        assert at_epoch_end == [at_epoch_end[0]] * 5

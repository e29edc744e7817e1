"""kdrop.set_dropout / add_dropout / add_drop_path: dropout for models you
did not write.

References are independent of kdrop.surgery: hand counts of the layers each
architecture has, Keras's own predictions of the original model, the
Bernoulli expectation of the dropped fraction in compiled training, and
`kdrop.layers.drop_path_rates` for the per-depth rates (tested on its own in
test_drop_path).
"""

import re

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from kdrop import layer_paths, surgery
from tests import model_zoo

RNG = np.random.default_rng(5)
SIGMAS = 5.0


# -- models ------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kdrop_tests")
class DenseBlock(keras.layers.Layer):
    """A custom layer holding a Dropout whose rate comes from its config."""

    def __init__(self, units, rate, **kwargs):
        super().__init__(**kwargs)
        self.units, self.rate = units, rate
        self.dense = keras.layers.Dense(units, activation="relu")
        self.dropout = keras.layers.Dropout(rate)

    def call(self, inputs, training=False):
        return self.dropout(self.dense(inputs), training=training)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "rate": self.rate}


@keras.saving.register_keras_serializable(package="kdrop_tests")
class FixedDropoutBlock(keras.layers.Layer):
    """A custom layer whose Dropout rate is not in its config."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(0.1)

    def call(self, inputs, training=False):
        return self.dropout(inputs, training=training)


@keras.saving.register_keras_serializable(package="kdrop_tests")
class TwinDropoutBlock(keras.layers.Layer):
    """A custom layer whose two Dropouts share one config entry."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.first = keras.layers.Dropout(rate, name="first")
        self.second = keras.layers.Dropout(rate, name="second")

    def call(self, inputs, training=False):
        return self.second(self.first(inputs, training=training), training=training)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


# Graph rewriting is the same on every backend; building and running the
# keras.applications models costs minutes on JAX and torch.
APPLICATIONS_ON_TENSORFLOW = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="keras.applications models: graph rewriting, checked on TensorFlow",
)


def mixed_model():
    """Dropout in every place set_dropout reaches, with the hand count of
    the rates there: {path: attributes changed}."""
    tokens = keras.Input((6, 8), name="tokens")
    attended = keras.layers.MultiHeadAttention(2, 4, dropout=0.1, name="mha")(
        tokens, tokens
    )
    sequence = keras.layers.LSTM(5, dropout=0.2, name="lstm")(attended)
    gru = keras.layers.RNN(keras.layers.GRUCell(3, recurrent_dropout=0.15), name="rnn")(
        tokens
    )
    scores = keras.layers.Attention(dropout=0.25, name="attention")([tokens, tokens])
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(scores)
    inner = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu", name="inner_dense"),
            keras.layers.Dropout(0.3, name="inner_drop"),
        ],
        name="inner",
    )
    block = DenseBlock(4, 0.35, name="block")(inner(pooled))
    spatial = keras.layers.SpatialDropout1D(0.05, name="spatial")(tokens)
    flat = keras.layers.Flatten(name="flat")(spatial)
    joined = keras.layers.Concatenate(name="join")([sequence, gru, block, flat])
    head = keras.layers.Dropout(0.4, noise_shape=(None, 1), seed=3, name="head_drop")
    outputs = keras.layers.Dense(3, name="out")(head(joined))
    model = keras.Model(tokens, outputs, name="mixed")
    model.compile("sgd", "mse")
    changed = {
        "mha/dropout": None,  # its Dropout sub-layer (suffixed by Keras)
        "lstm": ("dropout",),
        "rnn": ("recurrent_dropout",),
        "attention": ("dropout",),
        "inner/inner_drop": None,
        "block/dropout": None,
        "spatial": None,
        "head_drop": None,
    }
    return model, changed


def tokens(n=4):
    return RNG.normal(size=(n, 6, 8)).astype("float32")


def small_resnet():
    """Three residual blocks, two identity joins (an Add layer and `x + h`)
    and one projection join, which has no identity shortcut."""
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="b1")(x)
    x = keras.layers.Add(name="add1")([x, h])
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="b2")(x)
    x = x + h
    h = keras.layers.Conv2D(6, 3, padding="same", name="b3")(x)
    shortcut = keras.layers.Conv2D(6, 1, name="projection")(x)
    x = keras.layers.Add(name="add3")([shortcut, h])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="resnet")


def images(n=2, size=32):
    return RNG.uniform(0, 255, size=(n, size, size, 3)).astype("float32")


# -- helpers -----------------------------------------------------------------


def snapshot(model, x):
    """What must not change: weights, call nodes, rates and classes of every
    layer, and the output on `x` (an eager call: `predict` would compile the
    model again)."""
    walked = layer_paths.walk(model)
    return {
        "weights": [w.copy() for w in model.get_weights()],
        "nodes": {p: len(layer._inbound_nodes) for p, layer in walked},
        "classes": {p: type(layer) for p, layer in walked},
        "rates": {p: surgery._current(layer) for p, layer in walked},
        "output": ops.convert_to_numpy(model(x, training=False)),
    }


def assert_untouched(model, before, x):
    after = snapshot(model, x)
    assert after["nodes"] == before["nodes"]
    assert after["classes"] == before["classes"]
    assert after["rates"] == before["rates"]
    for old, new in zip(before["weights"], after["weights"]):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_array_equal(after["output"], before["output"])


def rates_of(model):
    """{path: rate} of every dropout set_dropout sees; the paths of Dropout
    sub-layers that Keras names itself ("mha/dropout_17") without the
    number, which differs from copy to copy."""
    walked = layer_paths.walk(model)
    layers = dict(walked)
    return {
        re.sub(r"/dropout_\d+$", "/dropout", p): surgery._current(layers[p])
        for p in surgery._dropout_paths(walked)
    }


@keras.saving.register_keras_serializable(package="kdrop_tests")
def zero_fraction(y_true, y_pred):
    return ops.mean(ops.cast(ops.equal(y_pred, 0.0), "float32"))


def fitted_fractions(model, x, epochs, batch_size):
    """The fraction of zero outputs per epoch of a compiled fit that
    changes no weight (learning rate 0)."""
    model.compile(keras.optimizers.SGD(0.0), "mse", metrics=[zero_fraction])
    history = model.fit(
        x, np.zeros_like(x), epochs=epochs, batch_size=batch_size, verbose=0
    )
    return history.history["zero_fraction"]


def assert_bernoulli(fraction, rate, trials):
    std = np.sqrt(rate * (1 - rate) / trials)
    assert abs(fraction - rate) <= SIGMAS * std, (fraction, rate, std)


# -- set_dropout -------------------------------------------------------------


def test_set_dropout_reaches_dropout_everywhere_and_changes_nothing_else():
    model, changed = mixed_model()
    x = tokens()
    prediction = model.predict(x, verbose=0)
    before = snapshot(model, x)
    new = kdrop.set_dropout(model, 0.45)
    assert_untouched(model, before, x)
    np.testing.assert_array_equal(new.predict(x, verbose=0), prediction)

    new_layers = dict(layer_paths.walk(new))
    new_rates = rates_of(new)
    assert sorted(new_rates) == sorted(changed)  # the hand count: 8
    assert all(rate == 0.45 for rate in new_rates.values()), new_rates
    # The held rate that was 0 stays 0; the set one is changed.
    assert new_layers["lstm"].recurrent_dropout == 0.0
    assert new_layers["rnn"].cell.dropout == 0.0
    assert new_layers["rnn"].cell.recurrent_dropout == 0.45
    # Keras dropout layers become kdrop's, noise shape and seed kept.
    head = new_layers["head_drop"]
    assert type(head) is kdrop.layers.InvertedDropout
    assert (head.noise_shape, head.seed) == ((None, 1), 3)
    assert new_layers["spatial"].noise_shape == (None, 1, None)
    assert type(new_layers["inner"]) is keras.Sequential
    assert new.compiled
    # Every other layer is a copy, not the original object.
    originals = {id(layer) for _, layer in layer_paths.walk(model)}
    assert not originals & {id(layer) for layer in new_layers.values()}


def test_where_selects_by_path_class_predicate_and_container():
    model, _ = mixed_model()
    by_path = rates_of(kdrop.set_dropout(model, 0.5, where="lstm"))
    assert by_path["lstm"] == 0.5 and by_path["head_drop"] == 0.4
    by_class = rates_of(kdrop.set_dropout(model, 0.5, where=keras.layers.Attention))
    assert [p for p, r in by_class.items() if r == 0.5] == ["attention"]
    inside = rates_of(kdrop.set_dropout(model, 0.5, where=["inner", "block"]))
    assert sorted(p for p, r in inside.items() if r == 0.5) == [
        "block/dropout",
        "inner/inner_drop",
    ]
    chosen = kdrop.set_dropout(model, 0.5, where=lambda path, _: path.endswith("drop"))
    assert sorted(p for p, r in rates_of(chosen).items() if r == 0.5) == [
        "head_drop",
        "inner/inner_drop",
    ]


def test_a_zero_rate_is_turned_on_only_when_selected():
    inputs = keras.Input((4, 3))
    outputs = keras.layers.LSTM(2, name="lstm")(inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="no dropout with a rate above 0"):
        kdrop.set_dropout(model, 0.3)
    new = kdrop.set_dropout(model, 0.3, where="lstm")
    assert (new.get_layer("lstm").dropout, new.get_layer("lstm").recurrent_dropout) == (
        0.3,
        0.0,
    )


def test_set_dropout_rate_is_effective_in_compiled_training():
    model = keras.Sequential(
        [
            keras.Input((128,)),
            keras.layers.Dense(128, kernel_initializer="identity", use_bias=False),
            keras.layers.Dropout(0.1, name="drop"),
        ]
    )
    x = RNG.uniform(1.0, 2.0, size=(256, 128)).astype("float32")
    new = kdrop.set_dropout(model, 0.6)
    (fraction,) = fitted_fractions(new, x, epochs=1, batch_size=64)
    assert_bernoulli(fraction, 0.6, x.size)
    assert model.get_layer("drop").rate == 0.1


def test_a_schedule_follows_the_step_in_compiled_training_and_saves(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((128,)),
            keras.layers.Dense(128, kernel_initializer="identity", use_bias=False),
            keras.layers.Dropout(0.5, name="drop"),
        ]
    )
    schedule = kdrop.schedules.Linear(0.0, 0.8, steps=4)
    new = kdrop.set_dropout(model, schedule, where="drop")
    x = RNG.uniform(1.0, 2.0, size=(256, 128)).astype("float32")
    first, second = fitted_fractions(new, x, epochs=2, batch_size=64)
    # Epoch 1: steps 0..3 at 0, 0.2, 0.4, 0.6; epoch 2: 0.8 throughout.
    assert_bernoulli(first, 0.3, x.size)
    assert_bernoulli(second, 0.8, x.size)
    layer = new.get_layer("drop")
    assert layer.step == 8 and layer.current_rate == pytest.approx(0.8)

    path = str(tmp_path / "scheduled.keras")
    new.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.get_layer("drop")
    assert restored.step == 8 and isinstance(restored.schedule, kdrop.schedules.Linear)
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), new.predict(x, verbose=0)
    )


def test_converted_mixed_model_round_trips_through_keras_files(tmp_path):
    model, _ = mixed_model()
    new = kdrop.set_dropout(model, 0.45)
    path = str(tmp_path / "mixed.keras")
    new.save(path)
    loaded = keras.saving.load_model(path)
    x = tokens()
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), new.predict(x, verbose=0)
    )
    assert rates_of(loaded) == rates_of(new)


def test_rates_inside_layers_are_effective_in_training():
    # The LSTM's input dropout, through a custom-free check: with a rate
    # near 1 nearly every input is dropped, so outputs in training mode
    # differ from inference; with the original rate 0 they do not.
    inputs = keras.Input((3, 4))
    model = keras.Model(inputs, keras.layers.LSTM(2, name="lstm")(inputs))
    x = RNG.normal(size=(8, 3, 4)).astype("float32")
    new = kdrop.set_dropout(model, 0.9, where="lstm")

    def output(of, training):
        return ops.convert_to_numpy(of(x, training=training))

    np.testing.assert_array_equal(output(model, True), output(model, False))
    assert not np.allclose(output(new, True), output(new, False))


def keeps_inference_output(path, layer):
    """Dropout whose new rate leaves the inference output as it is: not
    weight-scaled dropout (its inference factor is 1 - rate), and not
    GaussianNoise (no rate to set)."""
    weight_scaled = getattr(layer, "mode", None) == "weight_scaled"
    return not weight_scaled and not isinstance(layer, keras.layers.GaussianNoise)


def outputs_of(model, x):
    """Inference outputs, flat: an eager call (a compiled predict per model
    would take most of the test's time), predict for string inputs."""
    if isinstance(x, dict):  # tabular_lookup's strings: predict only
        return keras.tree.flatten(model.predict(x, verbose=0))
    outputs = model(x, training=False)
    return [ops.convert_to_numpy(y) for y in keras.tree.flatten(outputs)]


@pytest.mark.parametrize("build", model_zoo.zoo_params())
def test_every_zoo_model_converts_with_the_same_inference_output(build):
    """Adapted preprocessing, lookup tables, Lambda, mixed precision, random
    augmentation, multi-input/output: every layer's state is copied."""
    model, x = build()
    if not isinstance(model, keras.Sequential) and not hasattr(
        model, "_nodes_by_depth"
    ):  # the subclassed ones
        with pytest.raises(TypeError, match="subclassed model"):
            kdrop.set_dropout(model, 0.3)
        return
    reference = outputs_of(model, x)
    converted = [kdrop.add_dropout(model, 0.3, before=model.layers[-1].name)]
    if any(
        kdrop.registry.is_dropout_like(layer) and keeps_inference_output(path, layer)
        for path, layer in layer_paths.walk(model)
    ):
        converted.append(kdrop.set_dropout(model, 0.3, where=keeps_inference_output))
    for new in converted:
        for expected, got in zip(reference, outputs_of(new, x)):
            np.testing.assert_array_equal(got, expected)


def test_weight_scaled_dropout_changes_the_inference_output_by_its_keep_prob():
    # x -> WeightScaledDropout(0.5) -> Dense(ones): inference 0.5 * sum(x).
    model, x = model_zoo.hand_computable()
    new = kdrop.set_dropout(model, 0.2)
    expected = 0.8 * x.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ops.convert_to_numpy(new(x)), expected, rtol=1e-6)
    np.testing.assert_allclose(
        ops.convert_to_numpy(model(x)), 0.5 * x.sum(axis=1, keepdims=True), rtol=1e-6
    )


# -- add_dropout -------------------------------------------------------------


def test_add_dropout_before_a_layer_drops_the_expected_fraction():
    inputs = keras.Input((128,))
    hidden = keras.layers.Dense(
        128, kernel_initializer="identity", use_bias=False, name="hidden"
    )(inputs)
    outputs = keras.layers.Activation("linear", name="out")(hidden)
    model = keras.Model(inputs, outputs)
    x = RNG.uniform(1.0, 2.0, size=(256, 128)).astype("float32")
    prediction = model.predict(x, verbose=0)
    before = snapshot(model, x)
    new = kdrop.add_dropout(model, 0.3, before="out", seed=1)
    assert_untouched(model, before, x)
    np.testing.assert_array_equal(new.predict(x, verbose=0), prediction)
    added = [
        p
        for p, layer in layer_paths.walk(new)
        if isinstance(layer, kdrop.layers.InvertedDropout)
    ]
    assert added == ["dropout_before_out"]
    (fraction,) = fitted_fractions(new, x, epochs=1, batch_size=64)
    assert_bernoulli(fraction, 0.3, x.size)


def test_add_dropout_in_sequential_and_nested_models(tmp_path):
    model, _ = mixed_model()
    new = kdrop.add_dropout(
        model, kdrop.schedules.Linear(0.0, 0.2, 10), before=["inner/inner_dense", "out"]
    )
    x = tokens()
    np.testing.assert_array_equal(
        new.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    added = sorted(
        p
        for p, layer in layer_paths.walk(new)
        if p.split("/")[-1].startswith("dropout_before")
    )
    assert added == ["dropout_before_out", "inner/dropout_before_inner_dense"]
    path = str(tmp_path / "added.keras")
    new.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), new.predict(x, verbose=0)
    )

    sequential = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(4, name="a"),
            keras.layers.Dense(2, name="b"),
        ]
    )
    new = kdrop.add_dropout(sequential, 0.5, before=keras.layers.Dense)
    assert isinstance(new, keras.Sequential)
    assert [layer.name for layer in new.layers] == [
        "dropout_before_a",
        "a",
        "dropout_before_b",
        "b",
    ]


# -- add_drop_path -----------------------------------------------------------


def drop_paths(model):
    return [
        (p, layer)
        for p, layer in layer_paths.walk(model)
        if isinstance(layer, kdrop.layers.DropPath)
    ]


def consumers_of(model, found):
    """Names of the operations of `model` fed by the layers in `found`."""
    added = {id(layer) for _, layer in found}
    return {
        node.operation.name
        for nodes in model._nodes_by_depth.values()
        for node in nodes
        for tensor in node.input_tensors
        if id(tensor._keras_history.operation) in added
    }


def check_drop_path(model, x, expected_blocks, rate=0.2, rule="linear"):
    prediction = model.predict(x, verbose=0)
    before = snapshot(model, x)
    new = kdrop.add_drop_path(model, rate, rule=rule)
    assert_untouched(model, before, x)
    np.testing.assert_array_equal(new.predict(x, verbose=0), prediction)
    found = drop_paths(new)
    assert len(found) == expected_blocks
    expected = kdrop.layers.drop_path_rates(rate, expected_blocks, rule)
    assert [layer.current_rate for _, layer in found] == pytest.approx(expected)
    return new, found


def test_small_resnet_gets_drop_path_on_identity_branches_only(tmp_path):
    model = small_resnet()
    x = RNG.normal(size=(3, 8, 8, 4)).astype("float32")
    new, found = check_drop_path(model, x, expected_blocks=2)
    # Each DropPath feeds an identity join: add1 (an Add layer), `x + h`.
    consumers = consumers_of(new, found)
    assert "add1" in consumers and "add3" not in consumers and len(consumers) == 2
    path = str(tmp_path / "resnet.keras")
    new.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), new.predict(x, verbose=0)
    )


def test_drop_path_rates_may_follow_a_schedule_and_save(tmp_path):
    model = small_resnet()
    ramp = kdrop.schedules.Linear(0.0, 0.4, steps=10)
    new = kdrop.add_drop_path(model, ramp)
    found = drop_paths(new)
    assert [layer.schedule.factor for _, layer in found] == [0.5, 1.0]
    x = RNG.normal(size=(4, 8, 8, 4)).astype("float32")
    new.compile(keras.optimizers.SGD(0.0), "mse")
    new.fit(x, np.zeros((4, 2)), epochs=1, batch_size=2, verbose=0)
    assert [layer.step for _, layer in found] == [2, 2]
    assert found[1][1].current_rate == pytest.approx(float(ramp(2)))
    path = str(tmp_path / "scheduled_resnet.keras")
    new.save(path)
    loaded = keras.saving.load_model(path)
    assert [layer.step for _, layer in drop_paths(loaded)] == [2, 2]
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), new.predict(x, verbose=0)
    )


def test_drop_path_drops_whole_branches_at_the_expected_rate():
    inputs = keras.Input((16,))
    branch = keras.layers.Dense(16, kernel_initializer="ones", name="branch")(inputs)
    outputs = keras.layers.Add()([inputs, branch])
    model = keras.Model(inputs, outputs)
    new = kdrop.add_drop_path(model, 0.4)  # one block: rate 0.4
    x = RNG.uniform(1.0, 2.0, size=(512, 16)).astype("float32")

    def dropped_rows(y_true, y_pred):  # the row is its input: branch dropped
        return ops.mean(
            ops.cast(ops.all(ops.equal(y_pred, y_true), axis=-1), "float32")
        )

    new.compile(keras.optimizers.SGD(0.0), "mse", metrics=[dropped_rows])
    history = new.fit(x, x, epochs=1, batch_size=128, verbose=0)
    assert_bernoulli(history.history["dropped_rows"][0], 0.4, len(x))


@APPLICATIONS_ON_TENSORFLOW
def test_resnet50v2_gets_drop_path_on_its_twelve_identity_blocks():
    model = keras.applications.ResNet50V2(
        weights=None, input_shape=(32, 32, 3), classes=10
    )
    # Blocks 3, 4, 6, 3; the first block of each stage has a convolution
    # shortcut (not an identity); the last blocks of stages 1-3 subsample
    # theirs with a strided MaxPooling2D(1), which still is one.
    new, found = check_drop_path(model, images(), expected_blocks=16 - 4)
    stages = {2: 3, 3: 4, 4: 6, 5: 3}
    expected = {
        f"conv{stage}_block{block}_out"
        for stage, blocks in stages.items()
        for block in range(2, blocks + 1)
    }
    assert consumers_of(new, found) == expected


@APPLICATIONS_ON_TENSORFLOW
def test_convnext_tiny_gets_drop_path_and_a_second_call_retunes_it():
    model = keras.applications.ConvNeXtTiny(
        weights=None, input_shape=(32, 32, 3), classes=10
    )
    x = images()
    new, _ = check_drop_path(model, x, expected_blocks=3 + 3 + 9 + 3, rule="timm")
    again = kdrop.add_drop_path(new, 0.4)
    found = drop_paths(again)
    assert len(found) == 18  # retuned, not doubled
    expected = kdrop.layers.drop_path_rates(0.4, 18)
    assert [layer.current_rate for _, layer in found] == pytest.approx(expected)


@APPLICATIONS_ON_TENSORFLOW
def test_convnext_stochastic_depth_is_retuned():
    from keras.src.applications.convnext import ConvNeXt

    model = ConvNeXt(
        depths=[1, 2, 1, 1],
        projection_dims=[8, 8, 8, 8],
        drop_path_rate=0.5,
        input_shape=(32, 32, 3),
        classes=10,
        weights=None,
        name="convnext_small_test",
    )
    stochastic = [p for p, layer in layer_paths.walk(model) if "stochastic_depth" in p]
    assert len(stochastic) == 4
    new, found = check_drop_path(model, images(), expected_blocks=5)
    # The 4 blocks with a rate above 0 had a StochasticDepth, replaced in
    # place (same name); the first block (rate 0) had none.
    assert sorted(p for p, _ in found if "stochastic_depth" in p) == sorted(stochastic)
    assert not [
        p
        for p, layer in layer_paths.walk(new)
        if type(layer).__name__ == "StochasticDepth"
    ]


@APPLICATIONS_ON_TENSORFLOW
def test_efficientnet_b0_batch_shared_dropout_is_retuned_not_doubled():
    model = keras.applications.EfficientNetB0(
        weights=None, input_shape=(32, 32, 3), classes=10
    )
    # Repeats 1, 2, 2, 3, 3, 4, 1: every repeat after a stage's first block
    # is residual and ends in Dropout(noise_shape=(None, 1, 1, 1)).
    new, found = check_drop_path(model, images(), expected_blocks=9)
    assert all(path.endswith("_drop") for path, _ in found)
    kinds = {
        type(layer).__name__ for p, layer in layer_paths.walk(new) if p.endswith("drop")
    }
    assert kinds == {"DropPath"}
    assert type(new.get_layer("top_dropout")) is keras.layers.Dropout


# -- errors --------------------------------------------------------------------


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)
        self.drop = keras.layers.Dropout(0.5)

    def call(self, inputs):
        return self.drop(self.dense(inputs))


def error_cases():
    model, _ = mixed_model()
    gaussian_in = keras.Input((4,))
    gaussian = keras.Model(
        gaussian_in, keras.layers.GaussianNoise(0.1, name="noise")(gaussian_in)
    )
    fixed_in = keras.Input((4,))
    fixed = keras.Model(fixed_in, FixedDropoutBlock(name="fixed")(fixed_in))
    twin_in = keras.Input((4,))
    twin = keras.Model(twin_in, TwinDropoutBlock(0.2, name="twin")(twin_in))
    concrete_in = keras.Input((4,))
    concrete_layer = kdrop.layers.ConcreteDropout(keras.layers.Dense(2), name="cd")
    concrete = keras.Model(concrete_in, concrete_layer(concrete_in))
    nested_in = keras.Input((4,))
    nested = keras.Model(nested_in, Subclassed()(nested_in))
    unbuilt = keras.Sequential([keras.layers.Dense(2), keras.layers.Dropout(0.5)])
    schedule = kdrop.schedules.Linear(0.0, 0.5, 10)
    return [
        (
            lambda: kdrop.set_dropout(model, 1.0),
            ValueError,
            r"`rate` must be a number in \[0, 1\)",
        ),
        (lambda: kdrop.set_dropout(model, -0.1), ValueError, "`rate`"),
        (lambda: kdrop.set_dropout(model, "0.5"), TypeError, "`rate` must be a number"),
        (
            lambda: kdrop.set_dropout(model, 0.5, where="nope"),
            ValueError,
            "where='nope'",
        ),
        (
            lambda: kdrop.set_dropout(model, 0.5, where="out"),
            ValueError,
            "which is not one and holds none",
        ),
        (
            lambda: kdrop.set_dropout(model, 0.5, where=3),
            TypeError,
            "`where` must be a layer path",
        ),
        (
            lambda: kdrop.set_dropout(model, 0.5, where=lambda path, layer: False),
            ValueError,
            "matches nothing",
        ),
        (
            lambda: kdrop.set_dropout(model, 0.5, where=keras.layers.GRU),
            ValueError,
            "matches nothing",
        ),
        (
            lambda: kdrop.set_dropout(model, schedule, where="mha"),
            TypeError,
            r"'mha' \(MultiHeadAttention\)",
        ),
        (
            lambda: kdrop.set_dropout(model, schedule, where="lstm"),
            TypeError,
            r"'lstm' \(LSTM\)",
        ),
        (
            lambda: kdrop.set_dropout(gaussian, 0.5, where="noise"),
            ValueError,
            r"'noise' \(GaussianNoise\)",
        ),
        (
            lambda: kdrop.set_dropout(fixed, 0.5),
            ValueError,
            r"no entry of the config of layer 'fixed' \(FixedDropoutBlock\)",
        ),
        (
            lambda: kdrop.set_dropout(twin, 0.5, where="twin/first"),
            ValueError,
            r"Cannot change the rate of 'twin/first' \(Dropout\) alone: its "
            r"config entry 'rate' in layer 'twin' \(TwinDropoutBlock\) also "
            r"sets \['twin/second'\]",
        ),
        (
            lambda: kdrop.set_dropout(concrete, 0.5, where="cd"),
            ValueError,
            r"'cd' \(ConcreteDropout\): ConcreteDropout learns its rate",
        ),
        (
            lambda: kdrop.set_dropout(nested, 0.5),
            ValueError,
            r"inside the subclassed model 'subclassed",
        ),
        (
            lambda: kdrop.set_dropout(unbuilt, 0.5),
            ValueError,
            "needs a built Sequential",
        ),
        (lambda: kdrop.set_dropout(Subclassed(), 0.5), TypeError, "subclassed model"),
        (lambda: kdrop.set_dropout("model", 0.5), TypeError, "needs a keras.Model"),
        (
            lambda: kdrop.add_dropout(model, 0.5, before="mha/query"),
            ValueError,
            r"held inside layer 'mha'",
        ),
        (lambda: kdrop.add_dropout(model, 1.5, before="out"), ValueError, "`rate`"),
        (
            lambda: kdrop.add_dropout(model, 0.5, before=[]),
            ValueError,
            "`before` must name at least one layer",
        ),
        (lambda: kdrop.add_drop_path(model, 0.2), ValueError, "no residual join"),
        (
            lambda: kdrop.add_drop_path(small_resnet(), 0.2, rule="cubic"),
            ValueError,
            "`rule` must be one of",
        ),
        (
            lambda: kdrop.add_drop_path(small_resnet(), 0.2, seed="1"),
            TypeError,
            "`seed`",
        ),
    ]


def test_bad_input_is_refused_before_anything_is_copied(monkeypatch):
    cases = error_cases()

    def no_copy(*args, **kwargs):
        raise AssertionError("the model was copied before the error")

    monkeypatch.setattr(surgery, "_rebuild", no_copy)
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()

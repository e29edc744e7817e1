"""mc_predict(masks="shared"): pass s is one sampled network for every
example of x, across chunks and dataset batches; its marginals are those of
per-example masks; layers that cannot share their mask are refused."""

import keras
import numpy as np
import pytest

import kdrop
from kdrop import keras_internals

UNITS = 16


def _model(*middle, features=UNITS, input_shape=None):
    """Input -> Dense(UNITS) -> middle layers -> Dense(3), fixed weights."""
    inputs = keras.Input(input_shape or (features,))
    hidden = keras.layers.Dense(UNITS, kernel_initializer="glorot_uniform")(inputs)
    for layer in middle:
        hidden = layer(hidden)
    if len(hidden.shape) > 2:
        hidden = keras.layers.Flatten()(hidden)
    return keras.Model(inputs, keras.layers.Dense(3)(hidden))


def _with_twins(rng, shape, n=7):
    """`n` random examples where rows 1, 4 and 6 equal row 0."""
    x = rng.normal(size=(n,) + shape).astype("float32")
    x[[1, 4, 6]] = x[0]
    return x


def _assert_twins_equal(draws):
    # Equal up to float rounding: another batch size may sum in another order.
    for twin in (1, 4, 6):
        np.testing.assert_allclose(draws[:, twin], draws[:, 0], rtol=1e-5, atol=1e-5)


def _twins_differ(draws):
    return any(np.abs(draws[:, twin] - draws[:, 0]).max() > 1e-3 for twin in (1, 4))


def _check_shared(model, x, samples=4, batch_size=3, seed=0, per_example=True):
    """Twins get equal draws with shared masks (over several calls), the
    passes differ, and with per-example masks the twins differ."""
    shared = kdrop.mc_predict(
        model,
        x,
        samples=samples,
        batch_size=batch_size,
        seed=seed,
        masks="shared",
        return_samples=True,
    )
    _assert_twins_equal(shared.draws)
    assert shared.std.max() > 0
    if per_example:
        draws = kdrop.mc_predict(
            model, x, samples=samples, seed=seed, return_samples=True
        ).draws
        assert _twins_differ(draws)


def test_shared_masks_apply_one_network_to_every_row_across_chunks():
    model = _model(keras.layers.Dropout(0.5))
    x = _with_twins(np.random.default_rng(0), (UNITS,))
    # batch_size=2: 4 compiled calls per pass, so twins meet in other calls.
    shared = kdrop.mc_predict(
        model, x, samples=6, batch_size=2, seed=3, masks="shared", return_samples=True
    )
    _assert_twins_equal(shared.draws)
    assert shared.draws.shape == (6, 7, 3)
    assert shared.std.min() > 0  # the passes are different networks
    per_example = kdrop.mc_predict(
        model, x, samples=6, batch_size=2, seed=3, return_samples=True
    )
    assert _twins_differ(per_example.draws)
    again = kdrop.mc_predict(
        model, x, samples=6, batch_size=5, seed=3, masks="shared", return_samples=True
    )
    # The same seed gives the same networks, however x is chunked.
    np.testing.assert_allclose(again.draws, shared.draws, rtol=1e-5, atol=1e-6)


def test_shared_masks_with_seed_none_are_shared_within_the_call():
    model = _model(keras.layers.Dropout(0.5))
    x = _with_twins(np.random.default_rng(1), (UNITS,))
    result = kdrop.mc_predict(
        model, x, samples=5, batch_size=3, masks="shared", return_samples=True
    )
    _assert_twins_equal(result.draws)
    other = kdrop.mc_predict(
        model, x, samples=5, batch_size=3, masks="shared", return_samples=True
    )
    assert np.abs(other.draws - result.draws).max() > 1e-6  # fresh networks


def _generator(x, size):
    for start in range(0, len(x), size):
        yield (x[start : start + size],)


def test_shared_masks_are_the_same_in_every_batch_of_a_generator():
    model = _model(kdrop.layers.InvertedDropout(0.5))
    x = _with_twins(np.random.default_rng(2), (UNITS,))
    result = kdrop.mc_predict(
        model, _generator(x, 3), samples=5, seed=0, masks="shared", return_samples=True
    )
    _assert_twins_equal(result.draws)  # rows 0, 4 and 6 are in 3 batches
    per_example = kdrop.mc_predict(
        model, _generator(x, 3), samples=5, seed=0, return_samples=True
    )
    assert _twins_differ(per_example.draws)


@pytest.mark.tensorflow_only
def test_shared_masks_are_the_same_in_every_batch_of_a_tf_dataset():
    import tensorflow as tf

    model = _model(keras.layers.Dropout(0.5))
    x = _with_twins(np.random.default_rng(3), (UNITS,))
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(2)
    result = kdrop.mc_predict(
        model, dataset, samples=4, seed=0, masks="shared", return_samples=True
    )
    _assert_twins_equal(result.draws)


@pytest.mark.parametrize("masks", ["per_example", "shared"])
def test_keep_frequency_per_unit_is_the_rate_in_both_modes(masks):
    # Input -> Dropout(0.5): a pass's output is 2 * mask, so it shows the
    # mask itself. Reference: Bernoulli(0.5) per unit and pass.
    inputs = keras.Input((UNITS,))
    model = keras.Model(inputs, keras.layers.Dropout(0.5)(inputs))
    samples, rows = 400, 5
    result = kdrop.mc_predict(
        model,
        np.ones((rows, UNITS), "float32"),
        samples=samples,
        seed=7,
        masks=masks,
        return_samples=True,
    )
    kept = result.draws != 0
    assert set(np.unique(result.draws)) <= {0.0, 2.0}
    if masks == "shared":
        assert (kept == kept[:, :1]).all()
    frequency = kept[:, 0].mean(axis=0)  # per unit, over passes
    binomial_std = np.sqrt(0.25 / samples)
    np.testing.assert_array_less(np.abs(frequency - 0.5), 5 * binomial_std)
    # Mean and std of 2 * Bernoulli(0.5): 1 and 1.
    np.testing.assert_array_less(np.abs(result.mean - 1.0), 5 / np.sqrt(samples))
    np.testing.assert_array_less(np.abs(result.std - 1.0), 0.15)
    # Passes draw independent masks: adjacent passes agree on about half.
    agreement = (kept[1:, 0] == kept[:-1, 0]).mean()
    assert abs(agreement - 0.5) < 5 * np.sqrt(0.25 / kept[1:, 0].size)


SHAREABLE = {
    "Dropout": lambda: keras.layers.Dropout(0.5),
    "Dropout_noise_shape": lambda: keras.layers.Dropout(0.5, noise_shape=(1, UNITS)),
    "GaussianDropout": lambda: keras.layers.GaussianDropout(0.3),
    "GaussianNoise": lambda: keras.layers.GaussianNoise(0.5),
    "kdrop_GaussianDropout": lambda: kdrop.layers.GaussianDropout(0.3),
    "WeightScaledDropout": lambda: kdrop.layers.WeightScaledDropout(0.5),
    "ScheduledDropout": lambda: kdrop.layers.ScheduledDropout(
        kdrop.schedules.Constant(0.5)
    ),
    "DropPath_batch": lambda: kdrop.layers.DropPath(0.5, per="batch"),
    "DropConnectDense": lambda: kdrop.layers.DropConnectDense(UNITS, rate=0.5),
    "ConcreteDropout": lambda: kdrop.layers.ConcreteDropout(keras.layers.Dense(UNITS)),
}


@pytest.mark.parametrize("name", sorted(SHAREABLE))
def test_every_shareable_layer_kind_shares_its_noise(name):
    model = _model(SHAREABLE[name]())
    x = _with_twins(np.random.default_rng(4), (UNITS,))
    _check_shared(model, x, samples=8, batch_size=3, seed=1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.layers.SpatialDropout1D(0.5),
        lambda: kdrop.layers.DropBlock1D(0.3, block_size=2),
    ],
    ids=["SpatialDropout1D", "DropBlock1D"],
)
def test_spatial_kinds_share_their_noise(make):
    inputs = keras.Input((6, 4))
    hidden = keras.layers.Conv1D(8, 3, padding="same")(inputs)
    hidden = make()(hidden)
    model = keras.Model(inputs, keras.layers.Flatten()(hidden))
    x = _with_twins(np.random.default_rng(5), (6, 4))
    _check_shared(model, x, samples=4, batch_size=3, seed=2, per_example=False)


def test_lstm_dropout_masks_are_shared():
    inputs = keras.Input((5, 4))
    hidden = keras.layers.LSTM(8, dropout=0.4, recurrent_dropout=0.4)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    x = _with_twins(np.random.default_rng(6), (5, 4))
    _check_shared(model, x, samples=4, batch_size=3, seed=0)


def test_multi_head_attention_dropout_is_shared():
    inputs = keras.Input((4, 8))
    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.5)
    hidden = attention(inputs, inputs)
    model = keras.Model(inputs, keras.layers.Flatten()(hidden))
    x = _with_twins(np.random.default_rng(7), (4, 8))
    _check_shared(model, x, samples=4, batch_size=3, seed=0, per_example=False)


def test_subclassed_model_shares_its_masks():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(UNITS)
            self.drop = keras.layers.Dropout(0.5)
            self.out = keras.layers.Dense(3)

        def call(self, x):
            return self.out(self.drop(self.dense(x)))

    model = Net()
    x = _with_twins(np.random.default_rng(8), (UNITS,))
    model(x)
    _check_shared(model, x, samples=4, batch_size=2, seed=0, per_example=False)


def _sequence_model(make_layer, shape=(5, 4)):
    inputs = keras.Input(shape)
    hidden = make_layer()(inputs)
    return keras.Model(inputs, keras.layers.Flatten()(hidden)), shape


def _attention(kind):
    def make():
        layer = kind(dropout=0.5)
        return lambda x: layer([x, x])

    return make


def _stochastic_depth_model():
    # ConvNeXt's block: x + StochasticDepth(branch(x)), one draw per image.
    stochastic_depth = keras_internals.applications_stochastic_depth()
    inputs = keras.Input((4, 4, 3))
    branch = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    hidden = keras.layers.Add()([inputs, stochastic_depth(0.5)(branch)])
    return keras.Model(inputs, keras.layers.Flatten()(hidden)), (4, 4, 3)


# The layers whose shared masks kdrop draws from their own mechanism (an
# RNN cell's masks, attention weights, a noise shape, Keras's global
# generator): (model, example shape).
RECENT_KINDS = {
    "RNN_StackedRNNCells": lambda: _sequence_model(
        lambda: keras.layers.RNN(
            keras.layers.StackedRNNCells(
                [
                    keras.layers.GRUCell(6, dropout=0.4, recurrent_dropout=0.3),
                    keras.layers.SimpleRNNCell(6, dropout=0.4),
                ]
            ),
            return_sequences=True,
        )
    ),
    "ConvLSTM1D": lambda: _sequence_model(
        lambda: keras.layers.ConvLSTM1D(
            3, 3, padding="same", dropout=0.4, recurrent_dropout=0.4
        ),
        shape=(3, 6, 2),
    ),
    "Attention": lambda: _sequence_model(_attention(keras.layers.Attention)),
    "AdditiveAttention": lambda: _sequence_model(
        _attention(keras.layers.AdditiveAttention)
    ),
    "AlphaDropout": lambda: _sequence_model(lambda: keras.layers.AlphaDropout(0.3)),
    "StochasticDepth": _stochastic_depth_model,
}


@pytest.mark.parametrize("name", sorted(RECENT_KINDS))
def test_recently_registered_kinds_share_their_masks(name):
    model, shape = RECENT_KINDS[name]()
    x = _with_twins(np.random.default_rng(9), shape)
    # Three rows per call: the twins 4 and 6 are in other calls than row 0.
    _check_shared(model, x, samples=8, batch_size=3, seed=3)


@pytest.mark.parametrize("name", sorted(RECENT_KINDS))
def test_shared_and_per_example_masks_have_the_same_mean(name):
    # Each pass is one network either way: over N passes the means of the
    # two modes estimate the same expectation, within 5 standard errors.
    model, shape = RECENT_KINDS[name]()
    x = np.random.default_rng(10).normal(size=(2,) + shape).astype("float32")
    samples = 200
    results = [
        kdrop.mc_predict(model, x, samples=samples, seed=4, masks=masks)
        for masks in ("shared", "per_example")
    ]
    shared, per_example = results
    standard_error = np.sqrt((shared.std**2 + per_example.std**2) / samples)
    assert standard_error.max() > 0
    np.testing.assert_array_less(
        np.abs(shared.mean - per_example.mean), 5 * standard_error + 1e-6
    )


class _CustomCell(keras.layers.GRUCell):
    """A GRU cell kdrop does not know: its masks may be drawn otherwise."""


def test_an_rnn_with_a_cell_kdrop_does_not_know_is_refused():
    inputs = keras.Input((5, 4))
    rnn = keras.layers.RNN(_CustomCell(4, dropout=0.3), name="rnn")
    model = keras.Model(inputs, rnn(inputs))
    with pytest.raises(ValueError, match="layer 'rnn' \\(RNN\\).*_CustomCell"):
        kdrop.mc_predict(model, np.ones((2, 5, 4)), samples=2, masks="shared")


class _CustomDropout(keras.layers.Dropout):
    """Registered through its base class, but its noise is its own."""


class _CustomNoise(keras.layers.GaussianNoise):
    """Registered through its base class, but its noise is its own."""


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda: _CustomNoise(0.3), "_CustomNoise"),
        (lambda: _CustomDropout(0.3), "_CustomDropout"),
    ],
    ids=["GaussianNoise_subclass", "Dropout_subclass"],
)
def test_a_layer_that_cannot_share_its_mask_is_refused(make, kind):
    inputs = keras.Input((UNITS,))
    hidden = make()(keras.layers.Dense(UNITS, name="dense")(inputs))
    outer = keras.Model(inputs, hidden, name="inner")
    model = keras.Sequential([keras.Input((UNITS,)), outer])
    path = f"inner/{outer.layers[-1].name}"
    with pytest.raises(ValueError, match=f"layer '{path}' \\({kind}\\)"):
        kdrop.mc_predict(model, np.ones((2, UNITS)), samples=2, masks="shared")
    # Per-example masks still work for it.
    result = kdrop.mc_predict(model, np.ones((2, UNITS)), samples=2)
    assert result.mean.shape == (2, UNITS)


@pytest.mark.parametrize("masks", ["consistent", None, "SHARED"])
def test_bad_masks_is_refused(masks):
    model = _model(keras.layers.Dropout(0.5))
    with pytest.raises(ValueError, match="`masks` must be one of"):
        kdrop.mc_predict(model, np.ones((2, UNITS)), samples=2, masks=masks)


def test_model_state_is_unchanged_after_shared_sampling():
    model = _model(keras.layers.Dropout(0.5))
    generator = model.layers[2].seed_generator
    before = keras.ops.convert_to_numpy(generator.state).copy()
    x = np.ones((3, UNITS), "float32")
    reference = model.predict(x, verbose=0)
    kdrop.mc_predict(model, x, samples=3, masks="shared")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(generator.state), before)
    np.testing.assert_allclose(model.predict(x, verbose=0), reference, rtol=1e-6)

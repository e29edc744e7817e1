"""Every Keras layer that drops units is sampled by mc_predict.

Keras 3's own layers with a `dropout`, `recurrent_dropout`, `rate` or
`drop_path_rate` argument, and keras.applications' StochasticDepth
(ConvNeXt), which draws from Keras's global generator: each gives a
positive MC std where its dropout is on, without an "unsampled" or "no
dropout layer" warning, and the drop statistics are Bernoulli's where they
can be read off the samples. (A whole ConvNeXt's: test_zoo_applications.)
"""

import warnings

import keras
import numpy as np
import pytest
from keras.src.random.seed_generator import global_seed_generator

import kdrop

RNG = np.random.default_rng(5)


def sequence_model(layer, shape=(5, 3)):
    inputs = keras.Input(shape)
    hidden = layer(inputs)
    hidden = keras.layers.Flatten()(hidden)
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


def rnn_cell():
    return sequence_model(
        keras.layers.RNN(keras.layers.LSTMCell(8, dropout=0.3, recurrent_dropout=0.3))
    )


def stacked_cells():
    cells = [
        keras.layers.GRUCell(4, dropout=0.3),
        keras.layers.SimpleRNNCell(4, recurrent_dropout=0.3),
    ]
    return sequence_model(keras.layers.RNN(keras.layers.StackedRNNCells(cells)))


def bidirectional_cell():
    return sequence_model(
        keras.layers.Bidirectional(
            keras.layers.RNN(keras.layers.GRUCell(4, dropout=0.3))
        )
    )


def conv_lstm_1d():
    return sequence_model(
        keras.layers.ConvLSTM1D(2, 3, dropout=0.3, recurrent_dropout=0.3),
        shape=(4, 6, 2),
    )


def conv_lstm_2d():
    return sequence_model(
        keras.layers.ConvLSTM2D(2, 3, dropout=0.3), shape=(3, 5, 5, 1)
    )


def attention(layer_class):
    def build():
        query = keras.Input((4, 6))
        value = keras.Input((5, 6))
        hidden = layer_class(dropout=0.3)([query, value])
        hidden = keras.layers.Flatten()(hidden)
        return keras.Model([query, value], keras.layers.Dense(2)(hidden))

    build.__name__ = layer_class.__name__
    return build


def example_inputs(model, rows=3):
    return [
        RNG.normal(size=(rows,) + tuple(spec.shape[1:])).astype("float32")
        for spec in model.inputs
    ]


@pytest.mark.parametrize(
    "build",
    [
        rnn_cell,
        stacked_cells,
        bidirectional_cell,
        conv_lstm_1d,
        conv_lstm_2d,
        attention(keras.layers.Attention),
        attention(keras.layers.AdditiveAttention),
    ],
    ids=lambda build: build.__name__,
)
def test_mc_predict_samples_the_layer(build):
    model = build()
    x = example_inputs(model)
    x = x[0] if len(x) == 1 else x
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing unsampled
        result = kdrop.mc_predict(model, x, samples=16, seed=0)
    assert result.std.min() > 0
    # Seeded, and folded away to the same model at inference.
    again = kdrop.mc_predict(model, x, samples=16, seed=0)
    np.testing.assert_array_equal(result.mean, again.mean)
    np.testing.assert_allclose(
        kdrop.fold_dropout(model).predict(x, verbose=0),
        model.predict(x, verbose=0),
        rtol=1e-5,
        atol=1e-5,
    )


def test_stochastic_depth_drops_each_example_with_probability_rate():
    from keras.src.applications.convnext import StochasticDepth as stochastic_depth

    inputs = keras.Input((4,))
    model = keras.Model(inputs, stochastic_depth(0.3, name="depth")(inputs))
    x = RNG.uniform(0.5, 1.5, size=(50, 4)).astype("float32")
    samples = 200
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = kdrop.mc_predict(
            model, x, samples=samples, seed=1, return_samples=True
        )
    draws = result.draws
    dropped = np.all(draws == 0, axis=-1)
    kept = np.all(np.isclose(draws, x / 0.7, rtol=1e-5), axis=-1)
    assert np.all(dropped | kept)  # the whole path, per example and sample
    n = dropped.size
    assert abs(dropped.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    # Seeded: the same draws again; and Keras's global generator is back.
    state = keras.ops.convert_to_numpy(global_seed_generator().state)
    again = kdrop.mc_predict(model, x, samples=samples, seed=1, return_samples=True)
    np.testing.assert_array_equal(again.draws, draws)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(global_seed_generator().state),
        state,
    )
    # At inference it is the identity: folded away.
    folded = kdrop.fold_dropout(model)
    assert not any(kdrop.registry.is_dropout_like(lay) for lay in folded.layers)
    np.testing.assert_allclose(folded.predict(x, verbose=0), x, rtol=1e-6)


def test_no_dropout_warning_only_without_dropout():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.warns(UserWarning, match="no dropout layer"):
        kdrop.mc_predict(model, np.ones((2, 3)), samples=2)

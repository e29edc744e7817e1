"""DropBlock1D / DropBlock2D against numpy references of Ghiasi et al. 2018.

The references (tests/family_references.py) compute gamma from the paper's
equation (1) and, from it, the exact probability that each unit is dropped.
Inputs are strictly positive, so a zero in the output is a dropped unit.
Tolerances are 5 standard deviations; units less than a block apart share
seeds, so the variance of a fraction over n units is bounded by that of n
independent draws times (2 * block - 1)**rank correlated neighbours.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from tests.family_references import (
    dropblock_drop_probability,
    dropblock_gamma,
    is_union_of_blocks,
)

LAYERS = {1: kdrop.layers.DropBlock1D, 2: kdrop.layers.DropBlock2D}


def positive_inputs(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape).astype("float32")


def channels_last(y, data_format):
    return y if data_format == "channels_last" else np.moveaxis(y, 1, -1)


def input_shape(rank, spatial, channels, data_format, batch):
    shape = (spatial,) * rank
    if data_format == "channels_last":
        return (batch, *shape, channels)
    return (batch, channels, *shape)


@pytest.mark.parametrize("share", [False, True], ids=["per_channel", "shared"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("rank", [1, 2])
def test_dropped_units_are_blocks_and_kept_ones_renormalised(rank, data_format, share):
    block = 3
    x = positive_inputs(input_shape(rank, 10, 4, data_format, batch=6))
    layer = LAYERS[rank](
        0.3, block, data_format=data_format, share_across_channels=share, seed=1
    )
    y = channels_last(ops.convert_to_numpy(layer(x, training=True)), data_format)
    x = channels_last(x, data_format)
    dropped = y == 0
    assert 0 < dropped.mean() < 0.6
    for example in range(len(x)):
        for channel in range(x.shape[-1]):
            assert is_union_of_blocks(dropped[example, ..., channel], block)
        if share:
            assert (dropped[example] == dropped[example, ..., :1]).all()
    # count(mask) / count_ones(mask) over the whole mask, batch included.
    np.testing.assert_allclose(y, x * ~dropped / np.mean(~dropped), rtol=1e-5)


@pytest.mark.parametrize(
    "rank, spatial, block, rate",
    [(2, 16, 3, 0.1), (2, 16, 5, 0.3), (2, 9, 7, 0.2), (1, 40, 7, 0.25)],
)
def test_drop_probability_of_every_unit_follows_gamma(rank, spatial, block, rate):
    maps = 4000 // spatial ** (rank - 1)  # independent maps (batch x channel)
    x = np.ones((maps // 8, *(spatial,) * rank, 8), "float32")
    layer = LAYERS[rank](rate, block, data_format="channels_last", seed=2)
    dropped = ops.convert_to_numpy(layer(x, training=True)) == 0
    probability = dropblock_drop_probability(rate, block, (spatial,) * rank)
    # The whole map: close to `rate`, a little less where blocks overlap.
    expected = probability.mean()
    correlated = (2 * block - 1) ** rank
    sd = math.sqrt(expected * (1 - expected) * correlated / dropped.size)
    assert abs(dropped.mean() - expected) < 5 * sd
    assert expected <= rate
    # Every position, over the independent maps: borders are covered by
    # fewer block positions, so they drop less often.
    per_position = np.moveaxis(dropped, -1, 1).reshape(-1, *probability.shape)
    sd = np.sqrt(probability * (1 - probability) / len(per_position))
    assert np.all(np.abs(per_position.mean(axis=0) - probability) < 5 * sd + 1e-9)


def test_gamma_is_the_papers_formula():
    # Ghiasi et al. eq. (1) with keep_prob = 0.9, block 7, 14 x 14 maps.
    assert dropblock_gamma(0.1, 7, (14, 14)) == pytest.approx(
        (1 - 0.9) / 7**2 * 14**2 / (14 - 7 + 1) ** 2
    )


def test_expectation_of_training_is_inference_on_average():
    # Renormalising by count / count_ones keeps each draw's total: the mean
    # over units of a training output is that of the inference output.
    layer = kdrop.layers.DropBlock2D(0.4, 3, data_format="channels_last", seed=3)
    x = np.ones((8, 12, 12, 2), "float32")
    y = ops.convert_to_numpy(layer(x, training=True))
    assert (y == 0).mean() > 0.2
    assert y.mean() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)
    # Per unit, E[y] = x * P(keep) / mean P(keep) (the paper's estimator).
    keep = 1 - dropblock_drop_probability(0.4, 3, (12, 12))
    draws = 50 * 8 * 2  # samples x batch x channels per unit
    samples = np.mean(
        [ops.convert_to_numpy(layer.sample(x)) for _ in range(50)], axis=(0, 1, 4)
    )
    sd = np.sqrt(keep * (1 - keep) / draws) / keep.mean()
    assert np.all(np.abs(samples - keep / keep.mean()) < 5 * sd)


def test_rate_zero_and_inference_are_the_identity():
    x = positive_inputs((2, 6, 6, 3))
    layer = kdrop.layers.DropBlock2D(0.0, 3)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=True)), x)
    layer = kdrop.layers.DropBlock2D(kdrop.schedules.Linear(0.0, 0.1, 100), 3)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=True)), x)
    assert kdrop.registry.inference_kind(layer) == "identity"


def test_keras_file_round_trip_keeps_the_arguments_and_the_step(tmp_path):
    layer = kdrop.layers.DropBlock2D(
        kdrop.schedules.Linear(0.0, 0.1, 100),
        5,
        data_format="channels_first",
        share_across_channels=True,
        seed=4,
        name="block",
    )
    model = keras.Sequential([keras.Input((3, 8, 8)), layer, keras.layers.Flatten()])
    layer.step = 40
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras").get_layer("block")
    assert restored.get_config() == layer.get_config()
    assert restored.step == 40 and restored.current_rate == pytest.approx(0.04)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"block_size": 0}, ValueError, ["`block_size` must be a positive int"]),
        ({"block_size": 2.5}, TypeError, ["block_size=2.5 of type float"]),
        ({"data_format": "NHWC"}, ValueError, ["`data_format`", "'NHWC'"]),
        ({"share_across_channels": "yes"}, TypeError, ["`share_across_channels`"]),
        ({"rate": 1.0}, ValueError, ["`rate` must be a number in [0, 1)"]),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        kdrop.layers.DropBlock2D(**{"rate": 0.1, "block_size": 3, **kwargs})
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "shape, words",
    [
        ((2, 8, 3), ["expects inputs of rank 4", "(2, 8, 3)"]),
        ((2, 4, 8, 3), ["`block_size`", "spatial size (4, 8)", "block_size=5"]),
    ],
)
def test_inputs_that_do_not_fit(shape, words):
    layer = kdrop.layers.DropBlock2D(0.1, 5, data_format="channels_last", name="b")
    with pytest.raises(ValueError) as info:
        layer(np.ones(shape, "float32"), training=True)
    for word in words:
        assert word in str(info.value)
    # Symbolic inputs too: a functional model is refused when it is built.
    with pytest.raises(ValueError, match=words[0]):
        layer(keras.Input(shape[1:]))

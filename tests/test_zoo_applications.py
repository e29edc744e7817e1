"""keras.applications models (weights=None, 32x32 inputs: nothing downloads)
through fold_dropout and mc_predict.

Their dropout: EfficientNet's per-block Dropout with noise_shape
(None, 1, 1, 1) (drop connect) and top Dropout, MobileNetV3's top Dropout,
ConvNeXt's StochasticDepth (drop_path_rate, Keras's global generator).
Untrained, their features before the classifier are tiny (random weights,
BatchNormalization at its initial statistics), so the MC spread is read
where it is measurable (ConvNeXt's whole residual branches, at rates up to
0.5); for the others the layers are found and sampled, and the model is
left as it was; fold equals predict.
"""

import warnings

import keras
import numpy as np
import pytest
from keras.src.applications.convnext import StochasticDepth

import kdrop
from tests import model_zoo
from tests.test_leave_no_trace import node_counts


def efficientnet_b0():
    return keras.applications.EfficientNetB0(
        weights=None, input_shape=(32, 32, 3), classes=3
    )


def mobilenet_v3_small():
    return keras.applications.MobileNetV3Small(
        weights=None, input_shape=(32, 32, 3), classes=3
    )


def convnext_smallest():
    # linspace(0, 0.5, 4) over its four blocks: 1/6, 1/3 and 0.5 sampled.
    return model_zoo.convnext_smallest(drop_path_rate=0.5)


# The dropout-like layers each model must be found to hold.
EXPECTED = {
    # Drop connect in the 9 blocks with a residual connection, and the top.
    "efficientnet_b0": (keras.layers.Dropout, 10),
    "mobilenet_v3_small": (keras.layers.Dropout, 1),
    "convnext_smallest": (
        StochasticDepth,
        3,  # the first block's rate is 0: no layer
    ),
}


@pytest.mark.parametrize(
    "build",
    [
        # Keras's Dropout with a noise_shape, which MobileNetV3's plain
        # Dropout and the sampler's own tests cover on every backend; 46 s
        # of XLA compiling on JAX.
        pytest.param(efficientnet_b0, marks=pytest.mark.breadth),
        mobilenet_v3_small,
        convnext_smallest,
    ],
    ids=lambda build: build.__name__,
)
def test_application_fold_and_mc(build):
    model = build()
    layer_class, count = EXPECTED[build.__name__]
    found = kdrop.inference.dropout_like_layers(model)
    assert len(found) == count
    assert all(isinstance(layer, layer_class) for _, layer in found)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    predictions = model.predict(x, verbose=0)
    nodes = node_counts(model)
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.variables]
    folded = kdrop.fold_dropout(model)
    np.testing.assert_allclose(
        folded.predict(x, verbose=0), predictions, rtol=1e-5, atol=1e-6
    )
    assert not any(kdrop.registry.is_dropout_like(lay) for lay in folded.layers)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing left unsampled
        result = kdrop.mc_predict(model, x, samples=4, seed=0)
    assert result.mean.shape == predictions.shape
    if layer_class is StochasticDepth:
        assert result.std.max() > 0
        rates = [kdrop.registry.current_rate(layer) for _, layer in found]
        assert max(rates) == pytest.approx(0.5)
    assert node_counts(model) == nodes
    for got, expected in zip(model.variables, before, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), expected)
    np.testing.assert_array_equal(model.predict(x, verbose=0), predictions)

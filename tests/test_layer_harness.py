"""kdrop's layers in Keras's own layer-test harness, and their fixed rate.

`run_layer_test` is called with the options Keras's test suite uses for
`keras.layers.Dropout` (keras/src/layers/regularization/dropout_test.py):
built at instantiation, serialization round trip, a training step,
mixed precision, masking, and on JAX `stateless_call`.
"""

import keras
import numpy as np
import pytest
from keras.src import testing

import kdrop

CASES = [
    (kdrop.InvertedDropout, {"rate": 0.2}, 0),
    (kdrop.WeightScaledDropout, {"rate": 0.2}, 0),
    (kdrop.InvertedDropout, {"rate": 0.2, "noise_shape": (None, 1)}, 0),
    # The step counter is ScheduledDropout's one non-trainable weight.
    (kdrop.ScheduledDropout, {"schedule": kdrop.schedules.Linear(0.0, 0.5, 10)}, 1),
    (
        kdrop.ScheduledDropout,
        {"schedule": kdrop.schedules.Constant(0.3), "mode": "weight_scaled"},
        1,
    ),
]


RAMP = kdrop.schedules.Linear(0.0, 0.5, 10)
# The rest of the family: (class, arguments, step counters, input shape).
FAMILY_CASES = [
    (kdrop.layers.DropPath, {"rate": 0.2}, 0, (2, 3)),
    (kdrop.layers.DropPath, {"rate": RAMP, "per": "batch"}, 1, (2, 3, 2)),
    (kdrop.layers.DropPath, {"rate": 0.2, "mode": "weight_scaled"}, 0, (2, 3)),
    (kdrop.layers.GaussianDropout, {"rate": 0.2}, 0, (2, 3)),
    (kdrop.layers.GaussianDropout, {"rate": RAMP, "noise_shape": (None, 1)}, 1, (2, 3)),
    (kdrop.layers.DropBlock1D, {"rate": 0.2, "block_size": 2}, 0, (2, 5, 3)),
    (
        kdrop.layers.DropBlock2D,
        {"rate": RAMP, "block_size": 3, "data_format": "channels_last"},
        1,
        (2, 5, 5, 3),
    ),
    (
        kdrop.layers.DropBlock2D,
        {
            "rate": 0.2,
            "block_size": 2,
            "data_format": "channels_first",
            "share_across_channels": True,
        },
        0,
        (2, 3, 4, 4),
    ),
]


class KerasHarnessTest(testing.TestCase):
    @pytest.mark.filterwarnings("ignore::UserWarning")
    def test_keras_dropout_options(self):
        cases = [case + ((2, 3),) for case in CASES] + FAMILY_CASES
        for layer_class, init_kwargs, non_trainable, shape in cases:
            with self.subTest(layer=layer_class.__name__, **init_kwargs):
                self.run_layer_test(
                    layer_class,
                    init_kwargs=init_kwargs,
                    input_shape=shape,
                    call_kwargs={"training": True},
                    expected_output_shape=shape,
                    expected_num_trainable_weights=0,
                    expected_num_non_trainable_weights=non_trainable,
                    expected_num_seed_generators=1,
                    expected_num_losses=0,
                    supports_masking=True,
                    assert_built_after_instantiation=True,
                )


# --- A fixed rate stays fixed ----------------------------------------------


def weight_scaled_model(rate):
    """Input(4) -> Dense 'dense' (kernel 1, no bias) -> WeightScaledDropout."""
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(
                4, use_bias=False, kernel_initializer="identity", name="dense"
            ),
            kdrop.WeightScaledDropout(rate, name="drop"),
        ]
    )
    return model


@pytest.mark.parametrize(
    "layer_class", [kdrop.InvertedDropout, kdrop.WeightScaledDropout]
)
def test_setting_a_valid_rate_is_refused_and_points_to_scheduled_dropout(layer_class):
    layer = layer_class(0.5)
    with pytest.raises(AttributeError, match="ScheduledDropout") as error:
        layer.rate = 0.2
    assert "rate=0.5" in str(error.value) and "0.2" in str(error.value)
    assert layer.rate == 0.5 and layer.get_config()["rate"] == 0.5


@pytest.mark.parametrize(
    "value, error",
    [
        (1.5, ValueError),
        (-0.1, ValueError),
        (np.nan, ValueError),
        ("0.2", TypeError),
        (None, TypeError),
    ],
)
def test_setting_an_invalid_rate_is_refused_as_invalid(value, error):
    layer = kdrop.InvertedDropout(0.5)
    with pytest.raises(error, match="`rate` must be a number in \\[0, 1\\)"):
        layer.rate = value
    assert layer.rate == 0.5


def test_refused_rate_leaves_every_inference_path_on_the_original_rate():
    # Weight-scaled inference multiplies by keep_prob, so the rate in use is
    # visible in every path's output: x @ I * (1 - 0.5).
    x = np.random.default_rng(3).normal(size=(8, 4)).astype("float32")
    model = weight_scaled_model(0.5)
    model.predict(x, verbose=0)  # traces predict at rate 0.5
    with pytest.raises(AttributeError):
        model.get_layer("drop").rate = 0.2
    expected = x * 0.5
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x)), expected, rtol=1e-6
    )
    folded = kdrop.fold_dropout(model)
    np.testing.assert_allclose(folded.predict(x, verbose=0), expected, rtol=1e-6)
    # Weight-scaled MC samples are x * mask with mask ~ Bernoulli(0.5):
    # mean x * 0.5 and std |x| * 0.5, the mean within 5 sigma of 400 draws.
    samples = 400
    result = kdrop.mc_predict(model, x, samples=samples, seed=4)
    sigma = np.abs(x) * 0.5 / np.sqrt(samples)
    assert np.all(np.abs(result.mean - expected) <= 5 * sigma + 1e-6)
    np.testing.assert_allclose(result.std, np.abs(x) * 0.5, rtol=0.2)

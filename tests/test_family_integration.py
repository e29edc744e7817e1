"""Every member of kdrop's dropout family through the whole toolkit.

For each member: `fold_dropout` (same predictions, only layers that keep
their own inference rule left), `mc_predict` (the mean of many samples is
the expected output within 5 standard errors, BatchNormalization in
inference mode), `DropoutRateLogger` (rates read back from the event
files), `ActivationSparsity`'s dropped fraction (Bernoulli tolerance),
`.keras` round trip, mixed precision; and Keras's layer-test harness with
the options Keras uses for its Dropout for the members not built on
BaseDropout. The network after each member is linear, so that the
expectation over masks of the output is computable in numpy.
"""

import dataclasses
import json
import math

import keras
import numpy as np
import pytest
from keras import ops
from keras.src import testing

import kdrop
from kdrop import callbacks, layer_paths, registry, schedules
from kdrop.backend.jax_sync import sync_training_state
from tests.event_files import read_scalars
from tests.family_references import dropblock_drop_probability

SCHEDULE = schedules.Linear(0.1, 0.5, 20)


def linear_rate(step):
    """SCHEDULE in numpy."""
    return 0.1 + 0.4 * min(step / 20, 1.0)


@dataclasses.dataclass
class Member:
    name: str
    layer_class: type
    kwargs: object  # () -> constructor arguments
    input_shape: tuple
    rate: object  # step -> expected rate, or None when it is learned
    drops_activations: bool = True  # zeroes entries of its input
    weights: tuple = (0, 0)  # trainable, non-trainable
    losses: int = 0
    wraps_a_layer: bool = False
    # Units sharing one drop decision (DropPath: the example; DropBlock: at
    # most a feature map), for the dropped fraction's tolerance.
    units_per_draw: int = 1
    # rate -> the expected fraction of units dropped.
    dropped_fraction: object = lambda rate: rate
    # rate -> P(unit kept) per spatial position, for DropBlock.
    keep_map: object = None
    # In Keras's layer-test harness here; the layers built on BaseDropout
    # are in tests/test_layer_harness.py.
    harness: bool = False

    def make(self, name):
        return self.layer_class(**self.kwargs(), name=name)


MEMBERS = [
    Member(
        "inverted", kdrop.InvertedDropout, lambda: {"rate": 0.3}, (6,), lambda s: 0.3
    ),
    Member(
        "weight_scaled",
        kdrop.WeightScaledDropout,
        lambda: {"rate": SCHEDULE},
        (6,),
        linear_rate,
        weights=(0, 1),
    ),
    Member(
        "scheduled",
        kdrop.ScheduledDropout,
        lambda: {"schedule": SCHEDULE},
        (6,),
        linear_rate,
        weights=(0, 1),
    ),
    Member(
        "drop_path",
        kdrop.layers.DropPath,
        lambda: {"rate": SCHEDULE},
        (4, 3),
        linear_rate,
        weights=(0, 1),
        units_per_draw=12,  # a whole example's branch
    ),
    Member(
        "drop_path_batch_weight_scaled",
        kdrop.layers.DropPath,
        lambda: {"rate": 0.3, "per": "batch", "mode": "weight_scaled"},
        (4, 3),
        lambda s: 0.3,
        # sample() (the probe's draw) decides per example even per batch.
        units_per_draw=12,
    ),
    Member(
        "drop_block_1d",
        kdrop.layers.DropBlock1D,
        lambda: {"rate": 0.2, "block_size": 2},
        (8, 3),
        lambda s: 0.2,
        units_per_draw=8,  # a feature map
        dropped_fraction=lambda rate: dropblock_drop_probability(rate, 2, (8,)).mean(),
        keep_map=lambda rate: 1 - dropblock_drop_probability(rate, 2, (8,)),
    ),
    Member(
        "drop_block_2d",
        kdrop.layers.DropBlock2D,
        lambda: {"rate": SCHEDULE, "block_size": 3},
        (6, 6, 2),
        linear_rate,
        weights=(0, 1),
        units_per_draw=36,
        dropped_fraction=lambda rate: dropblock_drop_probability(
            rate, 3, (6, 6)
        ).mean(),
        keep_map=lambda rate: 1 - dropblock_drop_probability(rate, 3, (6, 6)),
    ),
    Member(
        "gaussian",
        kdrop.layers.GaussianDropout,
        lambda: {"rate": SCHEDULE},
        (6,),
        linear_rate,
        drops_activations=False,
        weights=(0, 1),
    ),
    Member(
        "drop_connect_dense",
        kdrop.layers.DropConnectDense,
        lambda: {"units": 5, "rate": SCHEDULE},
        (6,),
        linear_rate,
        drops_activations=False,
        weights=(2, 1),
        harness=True,
    ),
    Member(
        "drop_connect_conv",
        kdrop.layers.DropConnectConv2D,
        lambda: {
            "filters": 3,
            "kernel_size": 3,
            "rate": 0.3,
            "padding": "same",
            "mode": "inverted",
        },
        (5, 5, 2),
        lambda s: 0.3,
        drops_activations=False,
        weights=(2, 0),
        harness=True,
    ),
    Member(
        "concrete",
        kdrop.layers.ConcreteDropout,
        lambda: {"layer": keras.layers.Dense(5), "init_rate": 0.3},
        (6,),
        None,
        drops_activations=False,
        weights=(3, 0),
        losses=1,
        wraps_a_layer=True,
        harness=True,
    ),
    Member(
        "concrete_spatial",
        kdrop.layers.ConcreteDropout,
        lambda: {
            "layer": keras.layers.Conv2D(3, 3, padding="same"),
            "init_rate": 0.3,
            "spatial": True,
        },
        (5, 5, 2),
        None,
        drops_activations=False,
        weights=(3, 0),
        losses=1,
        wraps_a_layer=True,
        harness=True,
    ),
]
IDS = [member.name for member in MEMBERS]


def inputs(member, n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, (n,) + member.input_shape).astype("float32")


def model_with(member):
    """Input -> BatchNormalization -> member -> Flatten -> Dense(2)."""
    norm = keras.layers.BatchNormalization(name="norm")
    model = keras.Sequential(
        [
            keras.Input(member.input_shape),
            norm,
            member.make("member"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, name="head"),
        ]
    )
    # Moving statistics far from any batch's: a BatchNormalization put in
    # training mode by mistake would change every prediction.
    norm.moving_mean.assign(ops.full(norm.moving_mean.shape, -1.0))
    norm.moving_variance.assign(ops.full(norm.moving_variance.shape, 4.0))
    return model


def expected_mean_output(member, model, x):
    """The expectation over masks of `model`'s output: its inference output,
    except for DropBlock, whose renormalisation by the whole mask's kept
    fraction gives unit i the factor P(i kept) / mean_j P(j kept) (border
    units are covered by fewer block positions, so they are kept more
    often), computed here from the numpy reference and the head's weights."""
    if member.keep_map is None:
        return model.predict(x, verbose=0)
    keep = member.keep_map(member.rate(0))
    scale = (keep / keep.mean())[..., None]  # channels last
    normalized = ops.convert_to_numpy(model.get_layer("norm")(x, training=False))
    kernel, bias = model.get_layer("head").get_weights()
    return (normalized * scale).reshape(len(x), -1) @ kernel + bias


@pytest.mark.parametrize("member", MEMBERS, ids=IDS)
def test_fold_and_mc_predict(member):
    model = model_with(member)
    x = inputs(member, n=4)
    folded = kdrop.fold_dropout(model)
    np.testing.assert_allclose(
        folded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    # Only layers that keep their own inference rule are left.
    left = [
        layer
        for _, layer in layer_paths.walk(folded)
        if registry.is_dropout_like(layer)
    ]
    assert all(
        registry.inference_kind(layer) == registry.NOT_FOLDABLE for layer in left
    )

    samples = 2000
    result = kdrop.mc_predict(model, x, samples=samples, seed=0)
    assert np.all(result.std > 0)  # it samples, independently per copy
    error = np.abs(result.mean - expected_mean_output(member, model, x))
    assert np.all(error < 5 * result.std / math.sqrt(samples) + 1e-5)


class RateRecorder(keras.callbacks.Callback):
    """`layer.current_rate` before every training step."""

    def __init__(self, layer):
        super().__init__()
        self.layer, self.rates = layer, {}

    def on_train_batch_begin(self, batch, logs=None):
        sync_training_state(self.model)  # JAX: fit's variables back
        self.rates[len(self.rates)] = self.layer.current_rate


@pytest.mark.parametrize("member", MEMBERS, ids=IDS)
def test_callbacks_and_round_trip(member, tmp_path):
    """DropoutRateLogger's per-step rates and ActivationSparsity's dropped
    fraction, read back from the event files; then a .keras round trip."""
    model = model_with(member)
    model.compile("adam", "mse")
    layer = model.get_layer("member")
    x = inputs(member, n=32)
    probe = inputs(member, n=500, seed=1)
    logs = tmp_path / "logs"
    recorder = RateRecorder(layer)
    model.fit(
        x,
        np.zeros((32, 2)),
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[
            recorder,
            callbacks.DropoutRateLogger(logs, update_freq="batch"),
            callbacks.ActivationSparsity(logs, data=probe, histograms=False),
        ],
    )
    logged = read_scalars(logs)
    if member.rate is None:  # learned: what the layer held at each step
        rates = logged["rates/dropout_per_batch/member"]
        assert rates == {
            s: pytest.approx(r, abs=1e-7) for s, r in recorder.rates.items()
        }
        assert rates[0] == pytest.approx(0.3, abs=1e-6)
        assert len(set(recorder.rates.values())) > 1  # it is learned
    elif len({member.rate(s) for s in range(8)}) == 1:
        # A rate fixed for the whole fit: written once, no per-batch series.
        assert "rates/dropout_per_batch/member" not in logged
        assert logged["rates/dropout/member"] == {
            0: pytest.approx(member.rate(0), abs=1e-6)
        }
    else:
        rates = logged["rates/dropout_per_batch/member"]
        assert rates == {s: pytest.approx(member.rate(s), abs=1e-6) for s in range(8)}

    # Probed at each epoch end, the last after step 8.
    if not member.drops_activations:  # no unit is set to exactly 0
        assert "statistics/dropped_fraction/member" not in logged
    else:
        fraction = logged["statistics/dropped_fraction/member"][1]
        p = member.dropped_fraction(member.rate(8))
        # Units sharing a decision are at worst perfectly correlated: the
        # mean over `groups` groups has variance <= p (1 - p) / groups.
        groups = probe.size / member.units_per_draw
        assert abs(fraction - p) < 5 * math.sqrt(p * (1 - p) / groups)

    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-7
    )
    loaded_layer = loaded.get_layer("member")
    # As JSON: a nested layer's build_config holds a tuple that loads as a list.
    assert json.dumps(loaded_layer.get_config()) == json.dumps(layer.get_config())
    assert registry.current_rate(loaded_layer) == pytest.approx(
        registry.current_rate(layer), abs=1e-7
    )


@pytest.fixture
def mixed_float16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    yield
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("member", MEMBERS, ids=IDS)
def test_mixed_precision(member, mixed_float16):
    layer = member.make("member")
    x = inputs(member, n=8)
    # `sample` is called inside a model's call, on inputs already cast.
    x16 = x.astype("float16")
    for y in (layer(x, training=True), layer(x), registry.sample(layer, x16)):
        assert keras.backend.standardize_dtype(y.dtype) == "float16"
        assert np.all(np.isfinite(ops.convert_to_numpy(y)))
    assert all(v.dtype == "float32" for v in layer.trainable_weights)


class KerasHarnessTest(testing.TestCase):
    """The options Keras's own tests use for keras.layers.Dropout."""

    @pytest.mark.filterwarnings("ignore::UserWarning")
    def test_keras_dropout_options(self):
        for member in [member for member in MEMBERS if member.harness]:
            layer = member.make("member")
            shape = (2,) + member.input_shape
            output_shape = layer.compute_output_spec(keras.KerasTensor(shape)).shape
            trainable, non_trainable = member.weights
            with self.subTest(member=member.name):
                self.run_layer_test(
                    member.layer_class,
                    init_kwargs=member.kwargs(),
                    input_shape=shape,
                    call_kwargs={"training": True},
                    expected_output_shape=tuple(output_shape),
                    expected_num_trainable_weights=trainable,
                    expected_num_non_trainable_weights=non_trainable,
                    expected_num_seed_generators=1,
                    expected_num_losses=member.losses,
                    # Masking is checked for layers that drop activations.
                    supports_masking=member.drops_activations or None,
                    # A wrapper's output has its wrapped layer's dtype (as
                    # for Keras's wrappers), which the harness does not set;
                    # test_mixed_precision covers it with a global policy.
                    run_mixed_precision_check=not member.wraps_a_layer,
                    assert_built_after_instantiation=layer.built,
                )


def test_batch_drop_path_samples_per_example():
    # Training drops the branch of the whole batch; `sample()` (MC dropout,
    # probes) decides per example so that MC copies in one batch differ.
    layer = kdrop.layers.DropPath(0.5, per="batch", seed=1)
    x = np.ones((400, 3), "float32")
    trained = ops.convert_to_numpy(layer(x, training=True))
    assert len(np.unique(trained)) == 1
    kept = ops.convert_to_numpy(layer.sample(x))[:, 0] != 0
    assert np.all(ops.convert_to_numpy(layer.sample(x)).std(axis=1) == 0)
    assert abs(kept.mean() - 0.5) < 5 * math.sqrt(0.25 / 400)

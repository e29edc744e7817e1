"""KerasHub backbones (small, randomly initialised, never downloaded):
set_dropout changes every dropout they hold, schedules where a layer takes
one, and mc_predict samples them.

Skipped when keras_hub is not installed; a failure when the environment
variable CI is set, where the `kerashub` extra (installed by the README's
test command) must have installed it.
"""

import os

import keras
import numpy as np
import pytest

import kdrop

try:
    import keras_hub
except ImportError as error:
    if os.environ.get("CI"):
        raise ImportError(
            "CI is set but keras_hub is not installed: tests/test_kerashub.py "
            "needs the `kerashub` extra of setup.cfg (pip install -e .[kerashub])."
        ) from error
    pytest.skip(
        "keras_hub is not installed (pip install keras-hub)", allow_module_level=True
    )

RATE = 0.1  # the backbones' config dropout
TOKENS = np.random.default_rng(0).integers(0, 100, size=(3, 8))
ONES = np.ones((3, 8), "int32")


# Two transformer layers of width 16: built in well under a second.
SMALL = dict(
    vocabulary_size=100, num_layers=2, hidden_dim=16, intermediate_dim=32, dropout=RATE
)


def bert():
    backbone = keras_hub.models.BertBackbone(
        num_heads=2, max_sequence_length=16, **SMALL
    )
    x = {"token_ids": TOKENS, "padding_mask": ONES, "segment_ids": 0 * ONES}
    return backbone, x


def gpt2():
    backbone = keras_hub.models.GPT2Backbone(
        num_heads=2, max_sequence_length=16, **SMALL
    )
    return backbone, {"token_ids": TOKENS, "padding_mask": ONES}


def gemma():
    backbone = keras_hub.models.GemmaBackbone(
        num_query_heads=2, num_key_value_heads=1, head_dim=8, **SMALL
    )
    return backbone, {"token_ids": TOKENS, "padding_mask": ONES}


BACKBONES = {"bert": bert, "gpt2": gpt2, "gemma": gemma}
# Dropout layers each backbone holds: an embeddings dropout (BERT, GPT-2)
# and, per transformer layer, the attention-weight dropout inside its
# MultiHeadAttention / CachedGemmaAttention plus two residual dropouts.
EXPECTED_DROPOUTS = {"bert": 7, "gpt2": 7, "gemma": 6}


def dropout_rates(model):
    """`{path: rate}` of every dropout-like layer, by a walk of `model`."""
    return {
        path: kdrop.registry.current_rate(layer)
        for path, layer in kdrop.layer_paths.walk(model)
        if kdrop.registry.is_dropout_like(layer)
    }


def held_rates(model):
    """Rates held as a Python float by layers computing more (transformer
    blocks, attention layers): `{path: dropout}`."""
    return {
        path: layer.dropout
        for path, layer in kdrop.layer_paths.walk(model)
        if isinstance(getattr(layer, "dropout", None), float)
    }


def outputs(model, x):
    return keras.tree.flatten(model.predict(x, verbose=0))


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_set_dropout_changes_every_dropout_of_a_backbone(name):
    backbone, x = BACKBONES[name]()
    before = dropout_rates(backbone)
    assert backbone.get_config()["dropout"] == RATE
    assert len(before) == EXPECTED_DROPOUTS[name]
    np.testing.assert_allclose(list(before.values()), RATE)
    reference = outputs(backbone, x)

    new = kdrop.set_dropout(backbone, 0.3)

    after = dropout_rates(new)
    assert len(after) == len(before)
    np.testing.assert_allclose(list(after.values()), 0.3)
    assert set(held_rates(new).values()) <= {0.3}
    # The original is untouched, and inference (dropout off) is the same.
    assert dropout_rates(backbone) == before
    assert set(held_rates(backbone).values()) <= {RATE}
    for got, want in zip(outputs(new, x), reference):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_schedule_runs_in_graph_where_the_layer_takes_one_and_is_refused_elsewhere():
    backbone, x = bert()
    schedule = kdrop.schedules.Linear(0.0, 0.4, steps=4)
    # The embeddings' Dropout becomes kdrop's InvertedDropout: it takes one.
    new = kdrop.set_dropout(backbone, schedule, where="embeddings_dropout")
    head = keras.Model(new.input, keras.layers.Dense(1)(new.output["pooled_output"]))
    # Compiled as each backend compiles a train step: a tf.function on
    # TensorFlow, jax.jit on JAX (unjitted, JAX compiles every op of the
    # backbone on its own: minutes here), eager on PyTorch.
    head.compile("sgd", "mse", jit_compile=keras.backend.backend() == "jax")
    head.fit(x, np.zeros((3, 1)), batch_size=1, epochs=1, verbose=0)
    layer = new.get_layer("embeddings_dropout")
    assert isinstance(layer, kdrop.layers.InvertedDropout)
    assert layer.step == 3  # counted in the compiled train step
    assert layer.current_rate == pytest.approx(0.3)
    # A TransformerEncoder keeps its rate as a Python float.
    with pytest.raises(TypeError, match=r"TransformerEncoder.*cannot hold a schedule"):
        kdrop.set_dropout(backbone, schedule)


def test_dropout_0_is_refused_for_gemma_whose_blocks_then_hold_no_dropout():
    # GemmaDecoderBlock creates its Dropout layers only for dropout > 0, so a
    # block rebuilt with 0 does not hold the original's layers.
    backbone, _ = gemma()
    with pytest.raises(ValueError, match=r"'decoder_block_0' \(GemmaDecoderBlock\)"):
        kdrop.set_dropout(backbone, 0.0)


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_mc_predict_on_a_backbone_samples_its_dropout(name):
    backbone, x = BACKBONES[name]()
    for masks in ("per_example", "shared"):
        result = kdrop.mc_predict(backbone, x, samples=3, seed=0, masks=masks)
        assert all(np.max(std) > 0 for std in keras.tree.flatten(result.std))
    off = kdrop.mc_predict(kdrop.set_dropout(backbone, 0.0), x, samples=3, seed=0)
    assert all(np.max(std) == 0 for std in keras.tree.flatten(off.std))
    for got, want in zip(keras.tree.flatten(off.mean), outputs(backbone, x)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_mc_predict_with_shared_masks_gives_twins_equal_draws():
    backbone, x = bert()
    twins = {key: np.concatenate([value[:1], value[:1]]) for key, value in x.items()}
    result = kdrop.mc_predict(
        backbone,
        twins,
        samples=3,
        batch_size=1,
        seed=0,
        masks="shared",
        return_samples=True,
    )
    for draws in keras.tree.flatten(result.draws):
        np.testing.assert_allclose(draws[:, 0], draws[:, 1], rtol=1e-5, atol=1e-5)

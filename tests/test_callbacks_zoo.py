"""kdrop's callbacks on the model zoo: models shaped like Keras users'.

On every zoo model one `fit` runs DropoutRateLogger, ActivationSparsity,
WeightHistograms (with gradients) and LRMomentumScheduler together, and the
event files are checked against independent references: a hand-written
table of each model's dropout rates, `model.predict` for the output layers'
activations, numpy norms of the weights, and central finite differences of the MSE
loss in numpy for a gradient. A model a callback cannot serve must fail
with a clear error before any training step instead.
"""

import keras
import numpy as np
import pytest
from tensorboard.plugins.custom_scalar.metadata import CONFIG_SUMMARY_TAG

from kdrop import callbacks
from tests import model_zoo
from tests.event_files import read_scalars, read_tensors

# The rates each zoo model's DropoutRateLogger must log after one training
# step (1 batch), written from the builders by hand. scheduled_mlp's
# Linear(0.5, 0.1, 100) is at step 1: 0.5 - 0.4 / 100; its GaussianNoise
# has no rate. A recurrent layer logs `dropout` (its input dropout).
RATES = {
    "tabular_lookup": [0.3],
    "tabular_normalized": [0.4],
    "transformer": [0.2, 0.3, 0.3, 0.3],  # head, attention, block's two
    "resnet": [0.25, 0.25],
    "recurrent": [0.2, 0.3],
    "subclassed": [0.5, 0.5],
    "nested": [0.1, 0.6],
    "multi_input": [0.5],
    "multi_output": [0.4],
    "with_lambda": [0.5],
    "mixed_precision": [0.3, 0.5],
    "augmented_cnn": [0.5],
    "scheduled_mlp": [0.1, 0.2, 0.3, 0.5 - 0.4 / 100],
    "bidirectional": [0.3, 0.3],  # the forward and the backward GRU
    "hand_computable": [0.5],
    "residual_ops": [0.5],
    "masked_text": [0.0, 0.5],  # the LSTM (no dropout) and the Dropout
}


def learning_rate(epoch):
    return 1e-3 * (epoch + 1)


def output_layers(model):
    """{name: layer} of the top-level layers whose outputs are the model's."""
    names = model.output_names if hasattr(model, "output_names") else []
    return {name: model.get_layer(name) for name in names}


def mse_loss(model, x, y):
    """The zoo's compiled loss in numpy: MSE summed over the outputs, on an
    inference-mode call (an eager call: nothing compiled for it)."""
    x = keras.tree.map_structure(keras.ops.convert_to_tensor, x)
    predicted = keras.tree.flatten(model(x, training=False))
    return sum(
        np.mean((np.asarray(keras.ops.convert_to_numpy(p), np.float64) - t) ** 2)
        for p, t in zip(predicted, keras.tree.flatten(y))
    )


def y_rows(y):
    return keras.tree.flatten(y)[0]


def finite_difference_norm(model, variable, x, y, eps=1e-2):
    """sqrt(sum_i (dL/dw_i)^2) by central differences of the loss."""
    start = keras.ops.convert_to_numpy(variable).copy()
    gradient = np.zeros(start.size)
    for i in range(start.size):
        for sign in (1, -1):
            moved = start.copy().ravel()
            moved[i] += sign * eps
            variable.assign(moved.reshape(start.shape))
            gradient[i] += sign * mse_loss(model, x, y) / (2 * eps)
    variable.assign(start)
    return float(np.sqrt(np.sum(gradient**2)))


@pytest.mark.parametrize("builder", model_zoo.zoo_params())
def test_every_callback_on_every_zoo_model(builder, tmp_path):
    model, x = builder()
    y = model_zoo.fit_targets(model, x)
    graph_model = bool(getattr(model, "inputs", None))
    probe_callbacks = [
        callbacks.DropoutRateLogger(tmp_path),
        callbacks.WeightHistograms(tmp_path, data=(x, y), variables="all"),
        callbacks.LRMomentumScheduler(learning_rate, log_dir=tmp_path),
    ]
    if graph_model:
        # Every statistic, the ones a softmax head fixes included, so that
        # each output layer's can be checked against model.predict below.
        probe_callbacks.append(
            callbacks.ActivationSparsity(tmp_path, data=x, constant_statistics=True)
        )
    else:
        # A subclassed model has no layer graph: refused before any step.
        with pytest.raises(ValueError, match="Functional or Sequential"):
            model.fit(
                x,
                y,
                verbose=0,
                callbacks=[callbacks.ActivationSparsity(tmp_path, data=x)],
            )
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0
    model.fit(
        x, y, epochs=2, batch_size=len(y_rows(y)), verbose=0, callbacks=probe_callbacks
    )
    scalars = read_scalars(tmp_path)

    # Each tag holds one series: one value per step, never two.
    for tag, events in read_tensors(tmp_path).items():
        if tag == CONFIG_SUMMARY_TAG:
            continue  # the dashboard's layout, at step 0 in every event file
        steps = [step for step, _ in events]
        assert len(steps) == len(set(steps)), tag

    # DropoutRateLogger: the hand-written rates, at epoch 0 after 1 step.
    rates = {t: v for t, v in scalars.items() if t.startswith("rates/dropout/")}
    assert sorted(v[0] for v in rates.values()) == pytest.approx(
        sorted(RATES[model.name]), abs=1e-6
    )

    # WeightHistograms: one tag per float weight, norms as numpy's.
    float_weights = [v for v in model.weights if "float" in v.dtype]
    norms = {
        t: v[1] for t, v in scalars.items() if t.startswith("statistics/weight_norm/")
    }
    assert len(norms) == len(float_weights)
    expected = [
        np.linalg.norm(keras.ops.convert_to_numpy(v).astype(np.float64))
        for v in float_weights
    ]
    np.testing.assert_allclose(sorted(norms.values()), sorted(expected), rtol=1e-5)
    gradient_tags = [t for t in scalars if t.startswith("statistics/gradient_norm/")]
    assert len(gradient_tags) == len(model.trainable_variables)
    assert all(np.isfinite(scalars[t][1]) for t in gradient_tags)

    # The gradient of the last top-level layer's smallest weight (a bias
    # where there is one), by finite differences.
    layer = [lay for lay in model.layers if lay.trainable_weights][-1]
    variable = min(layer.trainable_weights, key=lambda v: np.prod(v.shape))
    logged = scalars[
        f"statistics/gradient_norm/{model.name}/{layer.name}/{variable.name}"
    ][1]
    reference = finite_difference_norm(model, variable, x, y)
    assert logged == pytest.approx(reference, rel=2e-2, abs=1e-4)

    # LRMomentumScheduler: the schedule reached the optimizer and the log.
    assert scalars["rates/learning_rate"] == pytest.approx({0: 1e-3, 1: 2e-3})
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == (
        pytest.approx(2e-3)
    )

    if graph_model:
        # ActivationSparsity: the output layers' statistics are those of
        # model.predict (inference mode, like the probe).
        predicted = model.predict(x, verbose=0)
        if not isinstance(predicted, dict):
            predicted = dict(zip(output_layers(model), keras.tree.flatten(predicted)))
        for name, values in predicted.items():
            values = np.asarray(values, dtype=np.float64)
            assert scalars[f"statistics/sparsity/{name}"][1] == pytest.approx(
                np.mean(values <= 0), abs=1e-6
            )
            assert scalars[f"statistics/mean_activation/{name}"][1] == pytest.approx(
                values.mean(), rel=1e-3, abs=1e-5
            )

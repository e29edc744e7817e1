"""kdrop.optimizers.SGD: Keras's SGD rule with momentum in a variable."""

import keras
import numpy as np
import pytest

import kdrop
from tests.callback_models import X, Y, assert_weights, linear_model, sgd_reference


@pytest.mark.parametrize("nesterov", [False, True])
def test_update_rule_and_assigning_momentum_between_fits(nesterov):
    optimizer = kdrop.optimizers.SGD(0.05, momentum=0.3, nesterov=nesterov)
    model = linear_model(optimizer)
    model.fit(X, Y, batch_size=len(X), epochs=3, shuffle=False, verbose=0)
    optimizer.momentum = 0.8  # the train function is already traced
    model.fit(X, Y, batch_size=len(X), epochs=3, shuffle=False, verbose=0)
    assert_weights(
        model,
        sgd_reference(lambda t: 0.05, lambda t: 0.3 if t < 3 else 0.8, 6, nesterov),
    )


def test_momentum_variable_and_velocity_slots_exist_from_momentum_zero():
    model = linear_model(kdrop.optimizers.SGD(0.1))
    model.fit(X, Y, epochs=1, verbose=0)
    optimizer = model.optimizer
    assert optimizer.momentum == 0.0
    assert not optimizer.momentum_variable.trainable
    velocity_shapes = sorted(tuple(v.shape) for v in optimizer.velocities)
    assert velocity_shapes == [(1,), (6, 1)]
    # Keras's SGD creates no slots at momentum 0, so momentum could never start later.
    keras_sgd = linear_model(keras.optimizers.SGD(0.1)).optimizer
    keras_sgd.build(model.trainable_variables)
    assert keras_sgd.momentums == []


def test_config_and_saved_model_keep_the_current_momentum(tmp_path):
    optimizer = kdrop.optimizers.SGD(0.1, momentum=0.2, nesterov=True, clipnorm=1.0)
    config = optimizer.get_config()
    assert (config["momentum"], config["nesterov"], config["clipnorm"]) == (
        0.2,
        True,
        1.0,
    )
    clone = kdrop.optimizers.SGD.from_config(config)
    assert (clone.momentum, clone.nesterov, clone.clipnorm) == (0.2, True, 1.0)

    model = linear_model(optimizer)
    model.fit(X, Y, epochs=1, verbose=0)
    model.optimizer.momentum = 0.7
    path = tmp_path / "sgd.keras"
    model.save(path)
    restored = keras.saving.load_model(path).optimizer
    assert isinstance(restored, kdrop.optimizers.SGD)
    assert restored.momentum == pytest.approx(0.7) and restored.nesterov
    for saved, loaded in zip(model.optimizer.velocities, restored.velocities):
        np.testing.assert_allclose(loaded.numpy(), saved.numpy())


@pytest.mark.parametrize(
    "momentum, error",
    [(1.5, ValueError), (1.0, ValueError), (-0.1, ValueError)]
    + [(float("nan"), ValueError), ("0.9", TypeError), (True, TypeError)],
)
def test_bad_momentum(momentum, error):
    with pytest.raises(error) as info:
        kdrop.optimizers.SGD(momentum=momentum)
    message = str(info.value)
    assert "momentum" in message and repr(momentum) in message and "[0, 1)" in message
    optimizer = kdrop.optimizers.SGD()
    with pytest.raises(error, match="momentum"):
        optimizer.momentum = momentum

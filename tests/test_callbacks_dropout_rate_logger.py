"""DropoutRateLogger: logged rates against the schedules' formulas."""

import os

import keras
import pytest

import kdrop
from kdrop import callbacks, schedules
from tests.callback_models import X, Y, relu_model, twin_blocks_model
from tests.conftest import BACKEND
from tests.event_files import read_scalars


def linear_rate(step):
    """schedules.Linear(0.0, 0.5, 10) in numpy."""
    return 0.5 * min(step / 10, 1.0)


def test_per_batch_rates_follow_the_schedule_across_fits(tmp_path):
    model = relu_model(
        kdrop.ScheduledDropout(schedules.Linear(0.0, 0.5, 10), name="drop")
    )
    logger = callbacks.DropoutRateLogger(tmp_path, update_freq="batch")
    model.fit(X, Y, epochs=2, batch_size=16, verbose=0, callbacks=[logger])
    model.fit(
        X, Y, initial_epoch=2, epochs=3, batch_size=16, verbose=0, callbacks=[logger]
    )  # continues at step 8
    logged = read_scalars(tmp_path)
    assert logged["rates/dropout_per_batch/drop"] == {
        step: pytest.approx(linear_rate(step), abs=1e-6) for step in range(12)
    }
    # Per epoch, always: the rate of the next step, (e + 1) * 4 for epoch e.
    assert logged["rates/dropout/drop"] == {
        epoch: pytest.approx(linear_rate(4 * (epoch + 1)), abs=1e-6)
        for epoch in range(3)
    }


def test_per_epoch_rate_is_the_next_steps_rate(tmp_path):
    model = relu_model(
        kdrop.ScheduledDropout(schedules.Linear(0.0, 0.5, 10), name="drop")
    )
    model.fit(
        X,
        Y,
        epochs=3,
        batch_size=32,
        verbose=0,
        callbacks=[callbacks.DropoutRateLogger(tmp_path)],
    )
    logged = read_scalars(tmp_path)["rates/dropout/drop"]  # 2 steps per epoch
    assert logged == {
        epoch: pytest.approx(linear_rate(2 * (epoch + 1))) for epoch in range(3)
    }


def test_every_n_batches_with_steps_per_execution_and_fixed_rate_layers(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            kdrop.ScheduledDropout(schedules.Linear(0.0, 0.5, 10), name="scheduled"),
            kdrop.WeightScaledDropout(0.3, name="weight_scaled"),
            keras.layers.Dropout(0.2, name="keras_dropout"),
            keras.layers.GaussianDropout(0.1, name="gaussian"),
            keras.layers.Dense(1),
        ]
    )
    # 4 batches per epoch; run 2 at a time, batch hooks see steps 0, 2, 4, 6
    # (torch runs one at a time).
    steps_per_execution = 1 if BACKEND == "torch" else 2
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    model.fit(
        X,
        Y,
        epochs=2,
        batch_size=16,
        verbose=0,
        callbacks=[callbacks.DropoutRateLogger(tmp_path, update_freq=3)],
    )
    logged = read_scalars(tmp_path)
    # The first hook at or after steps 0, 3 and 6.
    steps = [0, 3, 6] if steps_per_execution == 1 else [0, 4, 6]
    assert logged["rates/dropout_per_batch/scheduled"] == {
        t: pytest.approx(linear_rate(t)) for t in steps
    }
    for name, rate in (
        ("weight_scaled", 0.3),
        ("keras_dropout", 0.2),
        ("gaussian", 0.1),
    ):
        # Fixed for the whole fit: written once, at the first epoch end,
        # with no per-batch series.
        assert f"rates/dropout_per_batch/{name}" not in logged
        assert logged[f"rates/dropout/{name}"] == {0: pytest.approx(rate)}
    assert logged["rates/dropout/scheduled"] == {
        e: pytest.approx(linear_rate(4 * (e + 1))) for e in (0, 1)
    }


@pytest.mark.parametrize(
    "update_freq, error",
    [("step", ValueError), (0, ValueError), (-2, ValueError)]
    + [(1.5, TypeError), (True, TypeError), (None, TypeError)],
)
def test_bad_update_freq(update_freq, error):
    with pytest.raises(error) as info:
        callbacks.DropoutRateLogger("logs", update_freq=update_freq)
    assert "update_freq" in str(info.value) and repr(update_freq) in str(info.value)


@pytest.mark.parametrize("log_dir", [None, 42, ""])
def test_bad_log_dir(log_dir):
    with pytest.raises(TypeError) as info:
        callbacks.DropoutRateLogger(log_dir)
    assert f"log_dir={log_dir!r}" in str(info.value)


def test_twin_sub_models_with_one_name_log_one_series_per_path(tmp_path):
    model = twin_blocks_model()
    model.fit(
        X, Y, epochs=2, verbose=0, callbacks=[callbacks.DropoutRateLogger(tmp_path)]
    )
    logged = {
        tag: values
        for tag, values in read_scalars(tmp_path).items()
        if tag.startswith("rates/dropout/")
    }
    # Both sub-models are named "block": the second one's path is "block_2".
    # Fixed rates: written once, at the first epoch end.
    assert logged == {
        "rates/dropout/block/drop": {0: pytest.approx(0.6)},
        "rates/dropout/block_2/drop": {0: pytest.approx(0.1)},
    }


def test_a_model_without_dropout_layers_leaves_no_event_file(tmp_path):
    without, with_dropout = tmp_path / "without", tmp_path / "with"
    for log_dir, model in (
        (without, relu_model()),
        (with_dropout, relu_model(kdrop.InvertedDropout(0.5, name="drop"))),
    ):
        model.fit(
            X,
            Y,
            epochs=2,
            verbose=0,
            callbacks=[callbacks.DropoutRateLogger(log_dir, update_freq="batch")],
        )
    assert os.listdir(without / "train") == []  # checked, created, left empty
    assert len(os.listdir(with_dropout / "train")) == 1
    assert set(read_scalars(with_dropout)) >= {"rates/dropout/drop"}

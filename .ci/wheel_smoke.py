"""Smoke test of an installed kdrop wheel, run by .ci/run from outside the
checkout in a fresh virtual environment holding only the wheel, its
install_requires and JAX (no TensorFlow, matplotlib or mlxtend).

Trains a tiny model whose rate follows a schedule, logs it with
DropoutRateLogger, reads the event file back with TensorBoard's own reader,
and round-trips the model through a .keras file.
"""

import os
import sys
import tempfile

import keras
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

import kdrop

site_packages = os.path.dirname(os.path.dirname(kdrop.__file__))
assert os.path.basename(site_packages) == "site-packages", kdrop.__file__
for absent in ("tensorflow", "matplotlib", "mlxtend"):
    assert absent not in sys.modules, f"importing kdrop imported {absent}"

with tempfile.TemporaryDirectory() as work:
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8),
            kdrop.ScheduledDropout(kdrop.schedules.Linear(0.0, 0.5, 4), name="drop"),
            keras.layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    logger = kdrop.callbacks.DropoutRateLogger(work, update_freq="batch")
    model.fit(
        np.ones((8, 4)), np.ones((8, 1)), batch_size=2, verbose=0, callbacks=[logger]
    )
    events = EventAccumulator(os.path.join(work, "train"), {"tensors": 0})
    events.Reload()

    def logged(tag):
        return {
            e.step: float(tensor_util.make_ndarray(e.tensor_proto))
            for e in events.Tensors(tag)
        }

    # Linear(0, 0.5, 4): before each of the 4 steps, and after the epoch.
    for tag, expected in [
        ("rates/dropout_per_batch/drop", {step: 0.5 * step / 4 for step in range(4)}),
        ("rates/dropout/drop", {0: 0.5}),
    ]:
        values = logged(tag)
        assert values.keys() == expected.keys(), (tag, values)
        assert all(abs(values[s] - expected[s]) < 1e-6 for s in expected), values
    path = os.path.join(work, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path).get_layer("drop")
    assert restored.step == 4 and abs(restored.current_rate - 0.5) < 1e-6

print(
    f"kdrop {kdrop.__version__} wheel OK with Keras {keras.__version__} on "
    f"{keras.backend.backend()}, from {site_packages}"
)

"""Trains kdrop layers and callbacks with keras.distribution.DataParallel
over 2 host CPU devices on JAX, and the same run on one device.

Run as a subprocess by test_reliability.py: the backend and the number of
host devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`) must
be set before JAX initializes. Prints one JSON line with what the test
checks.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax
import keras
import numpy as np

import kdrop
from tests.callback_models import every_logging_callback
from tests.event_files import read_scalars

RNG = np.random.default_rng(0)
X = RNG.normal(size=(160, 16)).astype("float32")
Y = RNG.normal(size=(160, 1)).astype("float32")


def build_model():
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, activation="relu", name="hidden"),
            kdrop.ScheduledDropout(
                kdrop.schedules.Linear(0.1, 0.5, 20), name="scheduled", seed=1
            ),
            kdrop.WeightScaledDropout(0.3, name="weight_scaled", seed=2),
            kdrop.InvertedDropout(0.5, name="inverted", seed=3),
            keras.layers.Dense(1, name="out"),
        ],
        name="model",
    )
    model.compile(kdrop.optimizers.SGD(0.01), "mse")
    return model


def train(log_dir):
    """Fits the model under the current distribution: 2 epochs of 10 steps."""
    keras.utils.set_random_seed(0)
    model = build_model()
    model.fit(
        X,
        Y,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=every_logging_callback(log_dir, X, Y),
    )
    return model


class AlwaysTraining(keras.layers.Layer):
    """Calls `layer` in training mode, so `predict` runs training-mode
    masks through Keras's (sharded, under a distribution) data path."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def call(self, inputs):
        return self.layer(inputs, training=True)


def training_masks():
    """Keep decisions of one training-mode batch of 8 identical rows: rows
    0-3 go to the first device, rows 4-7 to the second."""
    probe = keras.Sequential(
        [keras.Input((1024,)), AlwaysTraining(kdrop.InvertedDropout(0.5, seed=4))]
    )
    ones = np.ones((8, 1024), "float32")
    return probe.predict(ones, batch_size=8, verbose=0) != 0


def summary(model, log_dir):
    scalars = read_scalars(log_dir)
    result = kdrop.mc_predict(model, X[:8], samples=20, seed=5)
    masks = training_masks()
    return {
        "masks": masks.astype(int).tolist(),
        "weights": [w.tolist() for w in model.get_weights()],
        "iterations": int(model.optimizer.iterations.numpy()),
        "scheduled_step": model.get_layer("scheduled").step,
        "dropout_rate": scalars["rates/dropout_per_batch/scheduled"],
        "learning_rate": scalars["rates/learning_rate_per_batch"],
        "sparsity_steps": sorted(scalars["statistics/sparsity/hidden"]),
        "gradient_norm": scalars["statistics/gradient_norm/model/out/kernel"],
        "final_learning_rate": float(model.optimizer.learning_rate.numpy()),
        "mc_mean": result.mean.ravel().tolist(),
        "mc_std": result.std.ravel().tolist(),
        "scheduled_step_after_mc": model.get_layer("scheduled").step,
    }


def main(log_dir):
    devices = jax.devices()
    distribution = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(distribution)
    parallel_dir = os.path.join(log_dir, "data_parallel")
    parallel = train(parallel_dir)
    report = {
        "devices": len(devices),
        "kernel_devices": len(parallel.get_layer("hidden").kernel.value.devices()),
        "data_parallel": summary(parallel, parallel_dir),
    }
    # mc_predict's sampler sees the same weights and seed with no
    # distribution: it must give the same numbers.
    keras.distribution.set_distribution(None)
    report["mc_mean_undistributed"] = (
        kdrop.mc_predict(parallel, X[:8], samples=20, seed=5).mean.ravel().tolist()
    )
    single_dir = os.path.join(log_dir, "single")
    report["single_device"] = summary(train(single_dir), single_dir)
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])

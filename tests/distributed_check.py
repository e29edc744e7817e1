"""Trains kdrop layers and callbacks under MirroredStrategy on 2 logical CPUs.

Run as a subprocess by test_reliability.py: logical devices must be set
before TensorFlow initializes, which the test process has already done.
Prints one JSON line with what the test checks.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kdrop  # noqa: E402
from tests.callback_models import every_logging_callback  # noqa: E402
from tests.event_files import read_scalars  # noqa: E402


def main(log_dir, jit_compile):
    strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
    with strategy.scope():
        scheduled = kdrop.ScheduledDropout(
            kdrop.schedules.Linear(0.1, 0.5, 20), name="scheduled", seed=1
        )
        inverted = kdrop.InvertedDropout(0.5, name="inverted", seed=2)
        model = keras.Sequential(
            [
                keras.Input((16,)),
                keras.layers.Dense(32, activation="relu", name="hidden"),
                scheduled,
                kdrop.WeightScaledDropout(0.3, name="weight_scaled"),
                inverted,
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(
            kdrop.optimizers.SGD(0.01),
            "sparse_categorical_crossentropy",
            jit_compile=jit_compile,
        )
    rng = np.random.default_rng(0)
    x, y = (
        rng.normal(size=(160, 16)).astype("float32"),
        rng.integers(0, 3, size=160),
    )
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[
            *every_logging_callback(log_dir, x, y),
            kdrop.callbacks.MCDropoutMonitor(log_dir, data=(x[:32], y[:32]), samples=4),
        ],
    )
    # Keras's predict splits a batch between the replicas, unlike
    # predict_on_batch: the reference for the deterministic accuracy.
    predicted = np.argmax(model.predict(x[:32], verbose=0), axis=-1)

    @tf.function
    def masks(inputs):
        return inverted(inputs, training=True)

    per_replica = strategy.run(masks, args=(tf.ones((4, 256)),))
    first, second = (
        t.numpy() != 0 for t in strategy.experimental_local_results(per_replica)
    )
    scalars = read_scalars(log_dir)
    print(
        json.dumps(
            {
                "replicas": strategy.num_replicas_in_sync,
                "iterations": int(model.optimizer.iterations.numpy()),
                "scheduled_step": scheduled.step,
                "mask_agreement": float(np.mean(first == second)),
                "dropout_rate_steps": sorted(scalars["batch/dropout_rate/scheduled"]),
                "learning_rate_steps": sorted(scalars["batch/learning_rate"]),
                "sparsity_steps": sorted(scalars["sparsity/hidden"]),
                "final_learning_rate": float(model.optimizer.learning_rate.numpy()),
                "deterministic_accuracy": scalars["mc_dropout/accuracy/deterministic"],
                "predict_accuracy": float(np.mean(predicted == y[:32])),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] == "jit")

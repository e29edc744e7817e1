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
                keras.layers.Dense(3, activation="softmax", name="output"),
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
            kdrop.callbacks.MCDropoutMonitor(
                log_dir, data=(x[:32], y[:32]), samples=4, every_n_epochs=1
            ),
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
    report = {
        "replicas": strategy.num_replicas_in_sync,
        "iterations": int(model.optimizer.iterations.numpy()),
        "scheduled_step": scheduled.step,
        "mask_agreement": float(np.mean(first == second)),
        "dropout_rate_steps": sorted(scalars["rates/dropout_per_batch/scheduled"]),
        "learning_rate_steps": sorted(scalars["rates/learning_rate_per_batch"]),
        "sparsity_steps": sorted(scalars["statistics/sparsity/hidden"]),
        "final_learning_rate": float(model.optimizer.learning_rate.numpy()),
        "deterministic_accuracy": scalars["mc_dropout/accuracy/deterministic"],
        "predict_accuracy": float(np.mean(predicted == y[:32])),
    }
    report["in_scope_gradient_norm"], report["reference_gradient_norm"] = (
        gradient_norms_in_scope(strategy, model, x[:32], y[:32], log_dir)
    )
    print(json.dumps(report))


def gradient_norms_in_scope(strategy, model, x, y, log_dir):
    """Trains one more epoch with `fit` inside the strategy's scope, as many
    scripts call it (the gradient probe then runs in cross-replica context),
    and returns WeightHistograms' logged norm of the output kernel's gradient
    and numpy's."""
    in_scope = os.path.join(log_dir, "in_scope")
    with strategy.scope():
        model.fit(
            x,
            y,
            batch_size=16,
            verbose=0,
            callbacks=[kdrop.callbacks.WeightHistograms(in_scope, data=(x, y))],
        )
    hidden, output = model.get_layer("hidden"), model.get_layer("output")
    # Inference: relu, then x * keep for WeightScaledDropout(0.3), the
    # inverted layers pass through; softmax cross-entropy's gradient.
    features = np.maximum(x @ hidden.kernel.numpy() + hidden.bias.numpy(), 0) * 0.7
    logits = features @ output.kernel.numpy() + output.bias.numpy()
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    probabilities[np.arange(len(y)), y] -= 1
    reference = features.T @ probabilities / len(y)
    logged = read_scalars(in_scope)[
        "statistics/gradient_norm/sequential/output/kernel"
    ][0]
    return logged, float(np.linalg.norm(reference))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] == "jit")

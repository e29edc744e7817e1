"""One worker of a 2-process MultiWorkerMirroredStrategy run of kdrop.

Started twice by test_multi_worker.py, each with its own `TF_CONFIG`
(loopback addresses) and `TMPDIR`; both run this same script with the same
callbacks and the same `log_dir`, as users would. Prints one JSON line with
what the test compares between the workers.

Usage: multi_worker_check.py LOG_DIR MODEL_PATH
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import kdrop
from tests.callback_models import every_logging_callback

EXAMPLES, BATCH_SIZE, EPOCHS = 160, 16, 2  # 10 global steps per epoch
# A ramp longer than the run, so that a resumed run still moves along it.
SCHEDULE = kdrop.schedules.Linear(0.1, 0.5, 40)


def learning_rate(step):
    return 0.01 / (1 + step)


def momentum(step):
    return 0.5 + 0.01 * step


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, 16)).astype("float32")
    return x, rng.integers(0, 3, size=EXAMPLES)


def build_model():
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, activation="relu", name="hidden"),
            kdrop.ScheduledDropout(SCHEDULE, name="scheduled", seed=1),
            kdrop.WeightScaledDropout(0.3, name="weight_scaled", seed=2),
            keras.layers.Dense(3, activation="softmax", name="output"),
        ],
        name="net",
    )
    model.compile(kdrop.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


def fit_multi_worker(strategy, model, *args, **kwargs):
    """`model.fit` under MultiWorkerMirroredStrategy, around two bugs of
    Keras 3.15's TensorFlow trainer that stop any model (a plain Dense one
    too) on its first step (keras-team/keras#20585,
    tensorflow/tensorflow#72388):

    - `_maybe_symbolic_build` reduces a first batch, an `(x, y)` tuple, with
      `strategy.reduce`, which takes no nested structure across workers
      ("Attempt to convert a value (PerReplica ...)"): the model and its
      optimizer are built beforehand and that build is skipped;
    - `reduce_per_replica` averages the scalar logs across workers with
      `axis=0` ("Invalid reduction dimension 0 for input with 0
      dimensions"): logs are reduced as on one worker (each worker's `loss`
      is its own replicas' mean; weights are synchronized by the gradient
      all-reduce, which this does not touch).
    """
    from keras.src.backend.tensorflow import trainer

    # A renamed internal would make its patch a no-op: name it instead.
    for owner, name in [
        (trainer, "_collective_all_reduce_multi_worker"),
        (model, "_maybe_symbolic_build"),
    ]:
        assert hasattr(owner, name), f"Keras {keras.__version__} has no {name}"
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    trainer._collective_all_reduce_multi_worker = lambda strategy: False
    model._maybe_symbolic_build = lambda **kwargs: None
    return model.fit(*args, **kwargs)


class TemporaryDirectories(keras.callbacks.Callback):
    """Records the event files in this worker's temporary directory at each
    epoch end, where a non-chief worker's kdrop callbacks write."""

    def __init__(self):
        super().__init__()
        self.event_files = []

    def on_epoch_end(self, epoch, logs=None):
        root = tempfile.gettempdir()
        self.event_files.append(
            sorted(
                os.path.relpath(os.path.join(path, name), root)
                for path, _, names in os.walk(root)
                for name in names
                if name.startswith("events.out.tfevents")
            )
        )


def main(log_dir, model_path):
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        # A worker that never comes fails the other's collectives, not hangs.
        communication_options=tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=120
        )
    )
    with strategy.scope():
        model = build_model()
    x, y = data()
    temporary = TemporaryDirectories()
    fit_multi_worker(
        strategy,
        model,
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        verbose=0,
        shuffle=False,
        callbacks=[
            *every_logging_callback(log_dir, x, y, learning_rate, momentum),
            kdrop.callbacks.MCDropoutMonitor(
                log_dir, data=(x[:32], y[:32]), samples=4, every_n_epochs=1
            ),
            temporary,
        ],
    )
    scheduled = model.get_layer("scheduled")
    report = {
        "task_id": strategy.cluster_resolver.task_id,
        "chief": strategy.extended.should_checkpoint,
        "pid": os.getpid(),
        "replicas": strategy.num_replicas_in_sync,
        "iterations": int(model.optimizer.iterations.numpy()),
        "scheduled_step": scheduled.step,
        "scheduled_rate": scheduled.current_rate,
        "learning_rate": float(model.optimizer.learning_rate.numpy()),
        "momentum": float(model.optimizer.momentum_variable.numpy()),
        "weights": [w.numpy().tolist() for w in model.trainable_weights],
        "event_files_during_training": temporary.event_files,
    }
    # Every worker saves, as Keras's multi-worker guide says (saving reads the
    # metrics' on-read variables, an all-reduce); only the chief's file stays.
    if not strategy.extended.should_checkpoint:
        model_path = os.path.join(tempfile.mkdtemp(), "model.keras")
    model.save(model_path)
    if not strategy.extended.should_checkpoint:
        os.remove(model_path)
        os.rmdir(os.path.dirname(model_path))

    @tf.function
    def mask(inputs):
        return model.get_layer("weight_scaled")(inputs, training=True) != 0

    local = strategy.experimental_local_results(
        strategy.run(mask, args=(tf.ones((4, 256)),))
    )
    report["masks"] = [np.packbits(m.numpy()).tolist() for m in local]
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])

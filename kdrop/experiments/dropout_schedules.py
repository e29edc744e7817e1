"""The MNIST CNN under dropout-rate schedules: constant, curriculum, early, late.

Each schedule drives a ScheduledDropout before the classifier of the Simple
MNIST convnet. The rate each training step used is read back from the
DropoutRateLogger event files (per batch), which proves the layer followed
its schedule, and plotted with the test error per epoch.
"""

import os

import keras
import numpy as np

import kdrop
from kdrop import schedules
from kdrop.experiments import common


def make_schedules(steps_per_epoch, epochs):
    total = steps_per_epoch * epochs
    return {
        "constant": schedules.Constant(0.5),
        "curriculum": schedules.Curriculum(0.5, gamma=5.0 / total),
        "early": schedules.Early(0.5, until_step=max(1, total // 2)),
        "late": schedules.Late(0.5, from_step=total // 2),
    }


def read_rates(log_dir, tag="dropout_rate/dropout"):
    """(steps, rates) logged per batch by DropoutRateLogger."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    accumulator = EventAccumulator(os.path.join(log_dir, "train"), size_guidance={"tensors": 0})
    accumulator.Reload()
    events = accumulator.Tensors(tag)
    return (np.array([e.step for e in events]),
            np.array([float(tensor_util.make_ndarray(e.tensor_proto)) for e in events]))


def run(epochs=10, out="logs/dropout_schedules", seed=0, dataset="offline", batch_size=128,
        train_size=None, verbose=2):
    (x_train, y_train), (x_test, y_test) = kdrop.datasets.load_mnist(dataset, seed=seed)
    if train_size is not None:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    os.makedirs(out, exist_ok=True)
    steps_per_epoch = -(-len(x_train) // batch_size)
    rows, rate_curves, error_curves = [], {}, {}
    for name, schedule in make_schedules(steps_per_epoch, epochs).items():
        print(f"\n== schedule {name}: {schedule!r}")
        keras.utils.set_random_seed(seed)
        model = common.simple_mnist_convnet(
            kdrop.ScheduledDropout(schedule, seed=seed, name="dropout"))
        log_dir = os.path.join(out, name)
        history = model.fit(
            x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose,
            validation_data=(x_test, y_test),
            callbacks=common.tensorboard_callbacks(log_dir, x_test[:256], y_test[:256], "batch"))
        rate_curves[name] = read_rates(log_dir)
        error_curves[name] = (np.arange(1, epochs + 1), 100 * (1 - np.array(history.history["val_accuracy"])))
        train_accuracy = common.accuracy(model, x_train, y_train)
        test_accuracy = common.accuracy(model, x_test, y_test)
        rows.append({"schedule": name, "train_accuracy": train_accuracy,
                     "test_accuracy": test_accuracy, "gap": train_accuracy - test_accuracy})
    common.plot_lines(os.path.join(out, "rates.png"), rate_curves, "training step",
                      "dropout rate (logged)", "Dropout-rate schedules")
    common.plot_lines(os.path.join(out, "test_error.png"), error_curves, "epoch",
                      "test error (%)", "Test error per schedule")
    print("\n" + common.write_table(rows, os.path.join(out, "summary.csv")))
    print(f"\nView the logs: tensorboard --logdir {out}")
    return rows


def main(argv=None):
    parser = common.argument_parser("dropout_schedules", __doc__.splitlines()[0], epochs=10)
    parser.add_argument("--dataset", default="offline")
    args = parser.parse_args(argv)
    return run(args.epochs, args.out, args.seed, args.dataset)

"""The Simple MNIST convnet under constant, curriculum, early and late dropout.

Each schedule drives a ScheduledDropout before the classifier of the CNN of
`cnn_dropout` (peak rate 0.5). The rate the layer used at every training
step is read back from DropoutRateLogger's per-batch event files, which
shows that the layer followed its schedule inside the compiled `fit`, and
plotted beside the test error after each epoch.

Schedules (T = total training steps): Constant(0.5); Curriculum(0.5,
gamma = 6 / T) (Morerio et al. 2017: 0 rising to 0.5, 95 % of it at T / 2);
Early(0.5, until_step = T / 2) (Liu et al. 2023: dropout first, decaying
linearly to 0); Late(0.5, from_step = T / 2) (Liu et al.: none, then 0.5).
"""

import os

import keras
import numpy as np

import kdrop
from kdrop import schedules
from kdrop.experiments import common

SCHEDULES = ("constant", "curriculum", "early", "late")
RATE_TAG = "dropout_rate/dropout"


def make_schedule(name, total_steps):
    half = max(1, total_steps // 2)
    if name == "constant":
        return schedules.Constant(0.5)
    if name == "curriculum":
        return common.curriculum_to_half(total_steps)
    if name == "early":
        return schedules.Early(0.5, until_step=half)
    return schedules.Late(0.5, from_step=half)


def run(
    names=SCHEDULES,
    epochs=10,
    dataset="offline",
    out="logs/dropout_schedules",
    seed=0,
    batch_size=128,
    train_size=None,
    verbose=2,
    overwrite=False,
):
    """Trains the CNN once per schedule; returns the summary rows.

    Writes `out/<schedule>/` (TensorBoard and kdrop's callbacks, the rate
    logged every step), `out/rates.png` (logged rate vs step),
    `out/test_error.png` (test error % vs epoch) and `out/summary.csv`.

    Args:
        names: schedule names from `SCHEDULES`.
        epochs, dataset, seed, batch_size, train_size, verbose: as in
            `cnn_dropout.run`.
        out: output directory.
        overwrite: as in `cnn_dropout.run`.

    Returns:
        A list of dicts: schedule, dropout (the schedule and its
        arguments), mean_rate and last_rate (over the logged steps),
        train_accuracy, test_accuracy, gap, seconds.
    """
    names = common.check_names(names, "names", SCHEDULES)
    train, test, total_steps = common.prepare_cnn_runs(
        dataset, out, epochs, batch_size, seed, train_size, overwrite
    )
    rows, rate_curves, error_curves = [], {}, {}
    for name in names:
        schedule = make_schedule(name, total_steps)
        print(f"\n== {name}: {common.describe_schedule(schedule)}, {total_steps} steps")
        keras.utils.set_random_seed(seed)
        model = common.simple_mnist_convnet(
            kdrop.ScheduledDropout(schedule, seed=seed, name="dropout")
        )
        log_dir = os.path.join(out, name)
        row, curves = common.train_classifier(
            model, train, test, epochs, batch_size, log_dir, verbose
        )
        error_curves[name] = (np.arange(1, epochs + 1), curves["test error (%)"])
        steps, rates = common.read_logged(log_dir, RATE_TAG)
        rate_curves[name] = (steps, rates)
        rows.append(
            {
                "schedule": name,
                "dropout": common.describe_schedule(schedule),
                "mean_rate": float(np.mean(rates)),
                "last_rate": rates[-1],
                **row,
            }
        )
    common.plot_lines(
        os.path.join(out, "rates.png"),
        rate_curves,
        "training step",
        "dropout rate (logged each step)",
        "Dropout-rate schedules",
    )
    common.plot_lines(
        os.path.join(out, "test_error.png"),
        error_curves,
        "epoch",
        "test error (%, log scale)",
        f"Test error per schedule, {len(train[0])} images",
        yscale="log",
    )
    common.report(rows, out)
    print(
        "Rates as logged by DropoutRateLogger before each step; accuracies in "
        "inference mode."
    )
    common.tensorboard_hint(out)
    return rows


def main(argv=None):
    parser = common.argument_parser(
        "dropout_schedules",
        __doc__,
        epochs=10,
        dataset=True,
        batch_size=128,
        events=True,
    )
    parser.add_argument(
        "--schedules",
        nargs="+",
        default=list(SCHEDULES),
        choices=SCHEDULES,
        help="which schedules to train",
    )
    args = parser.parse_args(argv)
    return run(
        args.schedules,
        args.epochs,
        args.dataset,
        args.out,
        args.seed,
        args.batch_size,
        overwrite=args.overwrite,
    )

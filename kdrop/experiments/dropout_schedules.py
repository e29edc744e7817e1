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
from kdrop.experiments import cli, events, figures, models, training

SCHEDULES = ("constant", "curriculum", "early", "late")
RATE_TAG = "rates/dropout_per_batch/dropout"
EPOCH_RATE_TAG = "rates/dropout/dropout"
SETTINGS = training.RunSettings(out="logs/dropout_schedules", epochs=10, seeds=3)
# The whole 60000-image training set and the 10000 test images.
FULL = dict(dataset="full", train_size=None)
COLUMNS = (
    "mean_rate",
    "test_error_%",
    "test_loss",
    "train_error_%",
    training.GAP,
)


def make_schedule(name, total_steps):
    half = max(1, total_steps // 2)
    if name == "constant":
        return schedules.Constant(0.5)
    if name == "curriculum":
        return models.curriculum_to_half(total_steps)
    if name == "early":
        return schedules.Early(0.5, until_step=half)
    return schedules.Late(0.5, from_step=half)


def run(names=SCHEDULES, **options):
    """Trains the CNN once per schedule and seed; returns the results.

    Writes `out/<schedule>/seed_<s>/` (TensorBoard and kdrop's callbacks,
    the rate logged every step), `out/rates.png` (logged rate vs step,
    first seed), `out/test_error.png` (test error and test loss per epoch,
    mean over seeds with a +- 1 std band; numbers in `out/curves.csv`),
    `out/summary.csv` (one row per schedule and seed) and
    `out/aggregate.csv`.

    Args:
        names: schedule names from `SCHEDULES`.
        **options: `training.RunSettings` fields (epochs, seeds, out, ...)
            that replace the defaults in `SETTINGS`.

    Returns:
        `(rows, summary)`: rows, one dict per schedule and seed: schedule,
        seed, dropout (the schedule and its arguments), mean_rate and
        last_rate (over the logged steps), train_accuracy, test_accuracy,
        test_minus_train_error_%, test_error_%, test_loss, seconds;
        summary, one dict per schedule: schedule, seeds, `<c>_mean` and
        `<c>_std` for c in `COLUMNS`.
    """
    settings = SETTINGS.replace(**options)
    names = cli.check_names(names, "names", SCHEDULES)
    rows, rate_curves, curves = [], {}, {}
    for run_seed, train, test, total_steps in settings.runs():
        for name in names:
            schedule = make_schedule(name, total_steps)
            print(
                f"\n== {name}, seed {run_seed}: "
                f"{models.describe_schedule(schedule)}, {total_steps} steps"
            )
            keras.utils.set_random_seed(run_seed)
            model = models.simple_mnist_convnet(
                kdrop.ScheduledDropout(schedule, seed=run_seed, name="dropout")
            )
            log_dir = settings.run_dir(name, run_seed)
            row, run_curves = training.train_classifier(
                model,
                train,
                test,
                settings,
                log_dir,
                histograms=settings.logs_histograms(run_seed),
            )
            training.add_curves(
                curves, name, run_curves, ("test error (%)", "test loss")
            )
            steps = np.arange(total_steps)
            rates = events.read_held(log_dir, RATE_TAG, steps, EPOCH_RATE_TAG)
            if run_seed == settings.seed_values[0]:
                rate_curves[name] = (steps, rates)
            rows.append(
                {
                    "schedule": name,
                    "seed": run_seed,
                    "dropout": models.describe_schedule(schedule),
                    "mean_rate": float(np.mean(rates)),
                    "last_rate": rates[-1],
                    **row,
                }
            )
    figures.plot_lines(
        os.path.join(settings.out, "rates.png"),
        rate_curves,
        "training step",
        "dropout rate (logged each step)",
        "Dropout-rate schedules",
    )
    figures.plot_bands(
        os.path.join(settings.out, "test_error.png"),
        curves,
        f"Per schedule, {len(train[0])} training images",
    )
    summary = training.finish(
        settings,
        rows,
        "schedule",
        COLUMNS,
        ("schedule", "dropout", "seed"),
        "Rates as logged by DropoutRateLogger before each step; accuracies in "
        "inference mode.",
        optimizer="Adam",
    )
    return rows, summary


def main(argv=None):
    parser = cli.argument_parser("dropout_schedules", __doc__, SETTINGS, full=FULL)
    parser.add_argument(
        "--schedules",
        nargs="+",
        dest="names",
        default=list(SCHEDULES),
        choices=SCHEDULES,
        help="which schedules to train",
    )
    # The options are named like run's arguments.
    with cli.usage_errors(parser):
        return run(**cli.parse_options(parser, argv, FULL))

"""Monte-Carlo averaging vs the weight-scaling rule (Srivastava 2014, Fig. 11).

An MLP 784-512-512-10 with WeightScaledDropout (0.2 on the inputs, 0.5 on
the hidden units) is trained on MNIST with the paper's recipe: SGD with a
learning rate decaying from 1.0 and momentum rising from 0.5
(`kdrop.optimizer_schedules.srivastava2014`, applied by LRMomentumScheduler), and
max-norm 3 on every weight vector. Its test error with the weight-scaling
rule (one deterministic pass with W_test = keep_prob * W, computed on the
model `kdrop.fold_dropout` returns) is compared with Monte-Carlo averaging
of k stochastic passes (`kdrop.mc_predict`) for k = 1 ... 100, each repeated
with several seeds. The paper finds that about k = 50 samples match the
weight-scaling rule.
"""

import os

import keras
import numpy as np

import kdrop
from kdrop import validation
from kdrop.experiments import cli, figures, tables, training

SAMPLE_COUNTS = (1, 2, 5, 10, 20, 50, 100)
COLUMNS = ("mc_test_error_%", "weight_scaling_test_error_%")
DROPOUT = "WeightScaledDropout 0.2 (inputs), 0.5 (hidden units)"
SETTINGS = training.RunSettings(
    out="logs/mc_vs_weight_scaling", epochs=20, seeds=3, batch_size=100
)
# The whole 60000-image training set and the 10000 test images.
FULL = dict(dataset="full", train_size=None)


def hparams_rows(rows):
    """One row per seed for `training.log_hparams`: the weight-scaling test
    error and the MC test error for each k (`mc_test_error_%_k<k>`)."""
    runs = {}
    for row in rows:
        run = runs.setdefault(
            row["seed"],
            {
                "model": "mlp",
                "dropout": DROPOUT,
                "seed": row["seed"],
                "weight_scaling_test_error_%": row["weight_scaling_test_error_%"],
            },
        )
        run[f"mc_test_error_%_k{row['samples']}"] = row["mc_test_error_%"]
    return list(runs.values())


def hparams_metrics(sample_counts, repeats):
    """The descriptions of the `hparams_rows` metrics."""
    return {
        "weight_scaling_test_error_%": "Test error (%) of the weight-scaling "
        "rule (one pass of the fold_dropout model).",
        **{
            f"mc_test_error_%_k{k}": f"Test error (%) of MC averaging over {k} "
            f"passes, mean of {repeats} draws."
            for k in sample_counts
        },
    }


def mlp(seed):
    def dense(units, activation):
        return keras.layers.Dense(
            units, activation=activation, kernel_constraint=keras.constraints.MaxNorm(3)
        )

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            kdrop.WeightScaledDropout(0.2, seed=seed),
            dense(512, "relu"),
            kdrop.WeightScaledDropout(0.5, seed=seed + 1),
            dense(512, "relu"),
            kdrop.WeightScaledDropout(0.5, seed=seed + 2),
            dense(10, "softmax"),
        ]
    )
    model.compile(
        kdrop.optimizers.SGD(), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def error_percent(probabilities, labels):
    return 100.0 * float(np.mean(np.argmax(probabilities, axis=-1) != labels))


def run(sample_counts=SAMPLE_COUNTS, repeats=3, **options):
    """Trains the MLP once per seed, then compares MC averaging with weight
    scaling.

    Writes `out/mlp/seed_<s>/` (learning rate and momentum logged per
    step; the seed's test errors for the HPARAMS dashboard),
    `out/mc_vs_weight_scaling.png` (mean over seeds, error bars +- 1 std
    over seeds), `out/summary.csv` (one row per k and seed) and
    `out/aggregate.csv`.

    Args:
        sample_counts: the k values (ints > 0).
        repeats: int > 0, MC estimates per k and trained MLP, with
            different seeds.
        **options: `training.RunSettings` fields (epochs, seeds, out, ...)
            that replace the defaults in `SETTINGS`.

    Returns:
        `(rows, summary)`: rows, one dict per k and seed: samples, seed,
        mc_test_error_% (mean over the repeats), weight_scaling_test_error_%;
        summary, one dict per k: samples, seeds, `<c>_mean` and `<c>_std`
        over seeds for c in `COLUMNS`.
    """
    settings = SETTINGS.replace(**options)
    settings.test_set_only("mc_vs_weight_scaling")
    repeats = validation.check_positive_int(repeats, "repeats")
    sample_counts = [
        validation.check_positive_int(k, "sample_counts") for k in sample_counts
    ]
    rows = []
    for run_seed, (x_train, y_train), (x_test, y_test) in settings.data():
        print(f"\n== seed {run_seed}")
        keras.utils.set_random_seed(run_seed)
        model = mlp(run_seed)
        learning_rate, momentum = kdrop.optimizer_schedules.srivastava2014()
        model.fit(
            x_train,
            y_train,
            batch_size=settings.batch_size,
            epochs=settings.epochs,
            verbose=settings.verbose,
            callbacks=[
                kdrop.callbacks.LRMomentumScheduler(
                    learning_rate,
                    momentum,
                    update_freq="batch",
                    log_dir=settings.run_dir("mlp", run_seed),
                )
            ],
        )
        folded = kdrop.fold_dropout(model)
        weight_scaling = error_percent(folded.predict(x_test, verbose=0), y_test)
        print(f"weight scaling rule (fold_dropout model): {weight_scaling:.2f} %")
        for k in sample_counts:
            errors = [
                error_percent(
                    kdrop.mc_predict(
                        model, x_test, samples=k, seed=run_seed * 1000 + repeat
                    ).mean,
                    y_test,
                )
                for repeat in range(repeats)
            ]
            rows.append(
                {
                    "samples": k,
                    "seed": run_seed,
                    "mc_test_error_%": float(np.mean(errors)),
                    "weight_scaling_test_error_%": weight_scaling,
                }
            )
            print(
                f"k = {k:3d}: MC averaging test error {np.mean(errors):.2f} % "
                f"(mean of {repeats} draws)"
            )
    summary = tables.report_seeds(rows, settings.out, "samples", COLUMNS)
    training.log_hparams(
        settings.out,
        hparams_rows(rows),
        "model",
        ("model", "dropout", "seed"),
        hparams_metrics(sample_counts, repeats),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        optimizer="kdrop.optimizers.SGD, srivastava2014() schedules",
        repeats=repeats,
    )
    figures.plot_lines(
        os.path.join(settings.out, "mc_vs_weight_scaling.png"),
        {
            "Monte-Carlo averaging": (
                [row["samples"] for row in summary],
                [row["mc_test_error_%_mean"] for row in summary],
            )
        },
        "samples k (log scale)",
        "test error (%)",
        figures.seeds_title(
            f"MC dropout vs weight scaling, {len(x_test)} test images",
            settings.seeds,
        ),
        hlines={"weight scaling rule": summary[0]["weight_scaling_test_error_%_mean"]},
        # Error bars only where there is a spread to show (two seeds or more).
        errors={
            "Monte-Carlo averaging": [row["mc_test_error_%_std"] for row in summary]
        }
        if settings.seeds >= 2
        else None,
        xscale="log",
    )
    print(
        "Paper (Fig. 11): MC averaging reaches the weight-scaling error at about "
        "k = 50."
    )
    cli.tensorboard_hint(settings.out)
    return rows, summary


def main(argv=None):
    parser = cli.argument_parser("mc_vs_weight_scaling", __doc__, SETTINGS, full=FULL)
    parser.add_argument(
        "--repeats",
        type=cli.positive_int,
        default=3,
        help="MC estimates per k and trained MLP, with different seeds",
    )
    # The options are named like run's arguments.
    with cli.usage_errors(parser):
        return run(**cli.parse_options(parser, argv, FULL))

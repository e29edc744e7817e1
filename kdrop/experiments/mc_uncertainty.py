"""MC-dropout uncertainty on digits (Gal & Ghahramani 2016): a rotated "1",
out-of-distribution detection and calibration.

A LeNet-style CNN (Conv 20x5x5 - pool - Conv 50x5x5 - pool - dropout 0.5 -
Dense 500 - dropout 0.5 - Dense 10 softmax) is trained on MNIST, once per
seed. Then, with `kdrop.mc_predict` (100 stochastic passes by default) and
the deterministic prediction (dropout off: the weight-scaling rule):

1. A test "1" rotated in 12 steps from 0 to 180 degrees: the scatter of the
   softmax outputs of every pass, per class, beside the deterministic
   output (Gal & Ghahramani 2016, Fig. 6). The MC outputs spread out as the
   digit leaves the training distribution while the deterministic softmax
   can stay confidently wrong.
2. Out-of-distribution detection: the test set against the test images
   rotated by 90 degrees, inverted (1 - x) and uniform noise; AUROC and FPR
   at 95 % TPR of the predictive entropy (MC and deterministic) and of the
   mutual information (MC only).
3. Calibration on the test set: accuracy, NLL, Brier and ECE (15 bins) of
   the deterministic prediction vs MC averaging.

Tables give mean +- sample std over the seeds.
"""

import itertools
import os

import keras
import numpy as np

import kdrop
from kdrop import uncertainty, validation
from kdrop.experiments import cli, figures, tables, training

ANGLES = np.linspace(0.0, 180.0, 12)
DIGIT = 1
BINS = 15
PREDICTIONS = ("deterministic", "mc")
DROPOUT = "InvertedDropout(0.5) before fc1 and the classifier"
SETTINGS = training.RunSettings(
    out="logs/mc_uncertainty", epochs=20, seeds=3, verbose=0
)
# The whole 60000-image training set and the 10000 test images.
FULL = dict(dataset="full", train_size=None)
# Each seed's final numbers in the HPARAMS dashboard; "test" columns are the
# deterministic prediction's (dropout off), "mc_" ones the MC average's.
HPARAMS_METRICS = {
    "test_error_%": "Test error (%), deterministic prediction.",
    "mc_test_error_%": "Test error (%), MC dropout average.",
    "test_loss": "Test NLL (nats), deterministic prediction.",
    "mc_test_loss": "Test NLL (nats), MC dropout average.",
    "ece": "Test expected calibration error, deterministic prediction.",
    "mc_ece": "Test expected calibration error, MC dropout average.",
    "train_error_%": "Training-set error (%), deterministic prediction.",
    "train_loss": "Training-set loss, deterministic prediction.",
    training.GAP: "Test error minus training-set error, deterministic "
    "prediction, in percentage points.",
}


def lenet(seed):
    """LeNet-style CNN with dropout before both fully connected layers."""
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(20, 5, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.Conv2D(50, 5, activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool2"),
            keras.layers.Flatten(name="flatten"),
            kdrop.InvertedDropout(0.5, seed=seed, name="drop1"),
            keras.layers.Dense(500, activation="relu", name="fc1"),
            kdrop.InvertedDropout(0.5, seed=seed + 1, name="drop2"),
            keras.layers.Dense(10, activation="softmax", name="classifier"),
        ],
        name="lenet",
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def rotate(image, degrees):
    """`image` (28, 28, 1) rotated counter-clockwise about its centre,
    bilinear, zero outside."""
    size = image.shape[0]
    centre = (size - 1) / 2
    angle = np.deg2rad(degrees)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    # Each output pixel reads the input at the inverse rotation of itself.
    y, x = rows - centre, cols - centre
    source_row = centre + np.cos(angle) * y + np.sin(angle) * x
    source_col = centre - np.sin(angle) * y + np.cos(angle) * x
    top, left = np.floor(source_row).astype(int), np.floor(source_col).astype(int)
    weight_row, weight_col = source_row - top, source_col - left
    padded = np.pad(image[..., 0], 1)  # zero border; index + 1 below

    def pixel(r, c):
        inside = (r >= -1) & (r <= size) & (c >= -1) & (c <= size)
        return np.where(
            inside, padded[np.clip(r + 1, 0, size + 1), np.clip(c + 1, 0, size + 1)], 0
        )

    value = (
        (1 - weight_row) * (1 - weight_col) * pixel(top, left)
        + (1 - weight_row) * weight_col * pixel(top, left + 1)
        + weight_row * (1 - weight_col) * pixel(top + 1, left)
        + weight_row * weight_col * pixel(top + 1, left + 1)
    )
    return value[..., np.newaxis].astype(image.dtype)


def ood_sets(x_test, seed):
    """Out-of-distribution inputs built from the test images."""
    rng = np.random.default_rng(seed)
    return {
        "rotated_90": np.rot90(x_test, k=1, axes=(1, 2)).copy(),
        "inverted": 1.0 - x_test,
        "uniform_noise": rng.uniform(size=x_test.shape).astype(np.float32),
    }


def _scores(probs):
    """OOD scores of one prediction: name -> per-example score."""
    scores = {"entropy": uncertainty.predictive_entropy(probs)}
    if probs.ndim == 3 and len(probs) > 1:
        scores["mutual_information"] = uncertainty.mutual_information(probs)
    return scores


def evaluate_seed(model, test, rotated, ood, samples, seed):
    """Everything measured on one trained model.

    Returns:
        A dict: calibration {prediction: {metric: value}}, ood {set:
        {"<score>_<prediction>": (auroc, fpr95)}}, rotation (the rotated
        images, their draws (samples, angles, 10) and deterministic output
        (angles, 10)), reliability {prediction: ReliabilityTable}.
    """
    x_test, y_test = test
    names = list(ood)
    inputs = np.concatenate([x_test, rotated, *ood.values()])
    draws = kdrop.mc_predict(
        model, inputs, samples=samples, seed=seed, return_samples=True
    ).draws
    deterministic = model.predict(inputs, batch_size=512, verbose=0)
    bounds = np.cumsum([0, len(x_test), len(rotated)] + [len(ood[n]) for n in names])
    parts = {
        "deterministic": [deterministic[a:b] for a, b in itertools.pairwise(bounds)],
        "mc": [draws[:, a:b] for a, b in itertools.pairwise(bounds)],
    }
    calibration, reliability, ood_rows = {}, {}, {name: {} for name in names}
    for prediction, (test_probs, _, *ood_probs) in parts.items():
        calibration[prediction] = {
            "accuracy": uncertainty.accuracy(test_probs, y_test),
            "nll": uncertainty.negative_log_likelihood(test_probs, y_test),
            "brier": uncertainty.brier_score(test_probs, y_test),
            "ece": uncertainty.expected_calibration_error(test_probs, y_test, BINS),
        }
        reliability[prediction] = uncertainty.reliability(test_probs, y_test, BINS)
        in_scores = _scores(test_probs)
        for name, probs in zip(names, ood_probs):
            for score, values in _scores(probs).items():
                ood_rows[name][f"{score}_{prediction}"] = (
                    uncertainty.ood_auroc(in_scores[score], values),
                    uncertainty.fpr_at_tpr(in_scores[score], values, 0.95),
                )
    return {
        "calibration": calibration,
        "ood": ood_rows,
        "rotation": (rotated, parts["mc"][1], parts["deterministic"][1]),
        "reliability": reliability,
    }


def summarize(results):
    """Per-seed results -> the calibration and OOD tables, each column as
    mean and sample std over the seeds (`tables.aggregate`)."""
    calibration = tables.aggregate(
        [
            {"prediction": prediction, **result["calibration"][prediction]}
            for result in results
            for prediction in PREDICTIONS
        ],
        "prediction",
        list(results[0]["calibration"]["mc"]),
    )
    ood = tables.aggregate(
        [
            {"case": f"{name} / {score}", "auroc": auroc, "fpr95": fpr95}
            for result in results
            for name, columns in result["ood"].items()
            for score, (auroc, fpr95) in columns.items()
        ],
        "case",
        ["auroc", "fpr95"],
    )
    return calibration, ood


def plot_rotation(path, images, draws, deterministic):
    """Gal & Ghahramani's Fig. 6: the rotated digits above the scatter of
    every pass's softmax output for the classes the passes pick most."""
    votes = np.bincount(draws.argmax(-1).ravel(), minlength=draws.shape[-1])
    classes = np.argsort(votes)[::-1][:3]
    positions = np.arange(len(images))
    strip = np.concatenate([image[..., 0] for image in images], axis=1)
    with figures.figure(
        path,
        nrows=2,
        size=(10, 6),
        gridspec_kw={"height_ratios": [1, 3]},
        description=f'A test "{DIGIT}" rotated 0-180 degrees: softmax outputs of '
        "every MC dropout pass (points) and of the deterministic network "
        "(diamonds) for the three classes the passes pick most.",
    ) as (_, (top, bottom)):
        top.imshow(strip, cmap="gray_r", extent=(-0.5, len(images) - 0.5, 0, 1))
        top.set_axis_off()
        top.set_title(f'A test "{DIGIT}" rotated from 0 to 180 degrees')
        for index, digit in enumerate(classes):
            color = f"C{index}"
            jitter = (np.random.default_rng(index).random(len(draws)) - 0.5) * 0.3
            for position in positions:
                bottom.scatter(
                    position + jitter,
                    draws[:, position, digit],
                    s=4,
                    alpha=0.3,
                    color=color,
                    label=f"class {digit}, MC passes" if position == 0 else None,
                )
            bottom.plot(
                positions,
                deterministic[:, digit],
                color=color,
                marker="D",
                markeredgecolor="black",
                label=f"class {digit}, deterministic",
            )
        bottom.set_xticks(positions, [f"{angle:.0f}" for angle in ANGLES])
        bottom.set_xlim(-0.5, len(images) - 0.5)
        bottom.set_xlabel("rotation (degrees)")
        bottom.set_ylabel("softmax output")
        bottom.legend(
            fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2)
        )
    return path


def plot_reliability(path, tables):
    with figures.figure(
        path,
        size=(4.5, 4.5),
        description="Reliability diagram on the test set (first seed): "
        "accuracy per confidence bin of the deterministic and MC dropout "
        "predictions, side by side in each bin; the diagonal is perfect "
        "calibration.",
    ) as (_, axes):
        labels = ("deterministic", "MC dropout")
        for index, (prediction, label) in enumerate(zip(PREDICTIONS, labels)):
            uncertainty.plot_reliability(
                tables[prediction], ax=axes, label=label, slot=(index, len(labels))
            )
        axes.set_title("Reliability on the test set (first seed)")
    return path


def hparams_row(seed, train_loss, train_accuracy, calibration):
    """One seed's row for `training.log_hparams`: its identity and the
    `HPARAMS_METRICS` from its training-set evaluation and its test-set
    `calibration` ({prediction: {metric: value}})."""
    deterministic, mc = calibration["deterministic"], calibration["mc"]
    return {
        "model": "lenet",
        "dropout": DROPOUT,
        "seed": seed,
        "test_error_%": 100 * (1 - deterministic["accuracy"]),
        "mc_test_error_%": 100 * (1 - mc["accuracy"]),
        "test_loss": deterministic["nll"],
        "mc_test_loss": mc["nll"],
        "ece": deterministic["ece"],
        "mc_ece": mc["ece"],
        "train_error_%": 100 * (1 - train_accuracy),
        "train_loss": train_loss,
        training.GAP: training.error_gap(train_accuracy, deterministic["accuracy"]),
    }


def run(samples=100, **options):
    """Trains the CNN once per seed and measures its uncertainty.

    Writes `out/rotated_one.png`, `out/reliability.png`,
    `out/calibration.csv`, `out/ood.csv` and `out/rotation.csv` (first
    seed: per angle, MC and deterministic predicted class and confidence,
    mutual information), and each seed's hyperparameters and final numbers
    (`HPARAMS_METRICS`) for TensorBoard's HPARAMS dashboard
    (`out/lenet/seed_<s>`).

    Args:
        samples: int > 1, MC passes per example.
        **options: `training.RunSettings` fields (epochs, seeds, out, ...)
            that replace the defaults in `SETTINGS`.

    Returns:
        A dict of the three tables (lists of dicts): calibration, ood,
        rotation.
    """
    settings = SETTINGS.replace(**options)
    settings.test_set_only("mc_uncertainty")
    samples = validation.check_positive_int(samples, "samples")
    if samples < 2:
        raise ValueError(
            "`samples` must be at least 2 (mutual information compares "
            f"passes). Received: samples={samples}."
        )
    results, runs = [], []
    for run_seed, train, test, _ in settings.runs():
        one = test[0][np.flatnonzero(test[1] == DIGIT)[0]]
        rotated = np.stack([rotate(one, angle) for angle in ANGLES])
        keras.utils.set_random_seed(run_seed)
        model = lenet(run_seed)
        model.fit(
            *train,
            batch_size=settings.batch_size,
            epochs=settings.epochs,
            verbose=settings.verbose,
        )
        train_loss, train_accuracy = model.evaluate(*train, batch_size=512, verbose=0)
        results.append(
            evaluate_seed(
                model, test, rotated, ood_sets(test[0], run_seed), samples, run_seed
            )
        )
        runs.append(
            hparams_row(
                run_seed, train_loss, train_accuracy, results[-1]["calibration"]
            )
        )
        accuracy = results[-1]["calibration"]["mc"]["accuracy"]
        print(f"seed {run_seed}: MC test accuracy {accuracy:.4f}")
    calibration, ood = summarize(results)
    images, draws, deterministic = results[0]["rotation"]
    mc_mean = draws.mean(axis=0)
    rotation = [
        {
            "angle": float(angle),
            "mc_class": int(mc_mean[i].argmax()),
            "mc_confidence": float(mc_mean[i].max()),
            "mc_mutual_information": float(uncertainty.mutual_information(draws)[i]),
            "deterministic_class": int(deterministic[i].argmax()),
            "deterministic_confidence": float(deterministic[i].max()),
        }
        for i, angle in enumerate(ANGLES)
    ]
    plot_rotation(
        os.path.join(settings.out, "rotated_one.png"), images, draws, deterministic
    )
    plot_reliability(
        os.path.join(settings.out, "reliability.png"), results[0]["reliability"]
    )
    tables.report(calibration, settings.out, "calibration.csv")
    tables.report(ood, settings.out, "ood.csv")
    tables.report(rotation, settings.out, "rotation.csv")
    training.log_hparams(
        settings.out,
        runs,
        "model",
        ("model", "dropout", "seed"),
        HPARAMS_METRICS,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        optimizer="Adam",
        samples=samples,
    )
    cli.tensorboard_hint(settings.out)
    return {"calibration": calibration, "ood": ood, "rotation": rotation}


def main(argv=None):
    parser = cli.argument_parser("mc_uncertainty", __doc__, SETTINGS, full=FULL)
    parser.add_argument(
        "--samples",
        type=cli.positive_int,
        default=100,
        help="MC dropout passes per example",
    )
    with cli.usage_errors(parser):
        return run(**cli.parse_options(parser, argv, FULL))

"""Deep Bayesian active learning on MNIST (Gal, Islam & Ghahramani 2017).

Recreates the MNIST experiment of "Deep Bayesian Active Learning with Image
Data" (ICML 2017, Figure 1 and Table 1) with `kdrop.active_learning`: the
paper's Keras CNN (conv 32 4x4 relu - conv 32 4x4 relu - max-pool 2 -
dropout 0.25 - dense 128 relu - dropout 0.5 - dense 10 softmax, Adam),
20 initial labelled images (2 per class), 10 acquired per round from a
random subset of the unlabelled pool scored with T = 20 MC-dropout passes,
the model retrained from scratch every round. Acquisition functions: BALD,
variation ratios, max entropy, mean std, random, and BatchBALD (Kirsch, van
Amersfoort & Gal 2019), which chooses the 10 jointly from consistent draws
(the same dropout masks for every pool image within one pass).

The pool is the 60000 MNIST training images, the oracle their labels. Each
acquisition function and seed is one TensorBoard run, out/<function>/
seed_<s>, with the test error and accuracy at step = the number of labelled
images; with two seeds or more, out/across_seeds/<function> holds their mean
over seeds and +- 1 std band at each number of labels, one line and band per
function in TensorBoard's CUSTOM SCALARS (first category);
out/learning_curves.png is the mean over seeds with a +- 1 std band
per function, out/labels_needed.csv the labels each function needed to reach
the --thresholds test errors (the paper's Table 1: 10 % and 5 %).

The default run is shortened to fit about 10 minutes on a 2-core CPU
(docs/active_learning.md, "The MNIST script"): 2 seeds, 6 rounds (20 -> 80
labels), 20 epochs of batch 32, a 500-image pool subset, per-round test
errors on the first 1000 test images (the final model of every run is also
evaluated on all 10000). --full is the paper's protocol: 100 rounds (1000 acquired),
the five functions of the paper, 3 seeds, 50 epochs of batch 128, a
2000-image pool subset, the whole test set every round.

MC dropout is computed exactly but cheaply: the layers before the first
dropout are deterministic, so they run once per image, and each of the T
passes samples new masks for the dense head only.
"""

import os
import time

import keras
import numpy as np

from kdrop import active_learning, validation
from kdrop.experiments import cli, figures, tables, training

# The paper's five acquisition functions, and BatchBALD.
PAPER_FUNCTIONS = ("bald", "variation_ratios", "max_entropy", "mean_std", "random")
FUNCTIONS = PAPER_FUNCTIONS + ("batch_bald",)
# The default run (docs/active_learning.md, "The MNIST script"): the six
# functions x 2 seeds, 20 -> 80 labels in 6 rounds of 10, 20 epochs of
# batch 32 per round, 500 pool images scored per round, the per-round test
# error on the first 1000 test images: about 10 minutes on the loaded
# 2-core CPU (7 s a round at load 8).
SETTINGS = training.RunSettings(
    out="logs/active_learning",
    epochs=20,
    seeds=2,
    batch_size=32,
    dataset="full",
    curve_test_size=1000,
)
DEFAULTS = {"functions": FUNCTIONS, "rounds": 6, "k": 10, "initial": 20}
DEFAULTS |= {"samples": 20, "pool_subset": 500, "thresholds": (25.0, 20.0, 10.0, 5.0)}
# The paper's protocol: 100 rounds of 10 (1000 acquired), the five
# functions, 3 seeds, 50 epochs of batch 128 (Gal et al.'s code), 2000 pool
# images scored per round with 20 MC passes, the whole test set per round.
FULL = dict(
    dataset="full",
    train_size=None,
    curve_test_size=None,
    seeds=3,
    epochs=50,
    batch_size=128,
    rounds=100,
    pool_subset=2000,
    samples=20,
    functions=list(PAPER_FUNCTIONS),
)
COLUMNS = ("test_error_%", "curve_test_error_%", "seconds", "seconds_per_round")
HPARAMS_METRICS = {
    "test_error_%": "Test error (%) of the last round's model on the whole test set.",
    "curve_test_error_%": "Test error (%) of the last round's model on the "
    "test images of the per-round curve.",
}
DEFAULT_EVAL_BATCH = 500  # images per predict call


def paper_cnn():
    """The CNN of Gal et al. (2017), compiled with Adam.

    Conv2D(32, 4, relu) - Conv2D(32, 4, relu) - MaxPool(2) - Dropout(0.25) -
    Flatten - Dense(128, relu) - Dropout(0.5) - Dense(10, softmax).
    """
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 4, activation="relu", name="conv1"),
            keras.layers.Conv2D(32, 4, activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool"),
            keras.layers.Dropout(0.25, name="dropout1"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(128, activation="relu", name="dense"),
            keras.layers.Dropout(0.5, name="dropout2"),
            keras.layers.Dense(10, activation="softmax", name="classifier"),
        ],
        name="gal_cnn",
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


class FreshModels:
    """`build_model` for `run_active_learning`: every call returns a model
    as `paper_cnn()` would build it at that point (new initial weights, drawn
    after the loop seeded Keras for the round; fresh Adam state; the dropout
    layers' seed state), but always the same compiled Keras object, so
    `fit` reuses its traced training step instead of tracing a new one every
    round (seconds per round on a CPU)."""

    def __init__(self, build=paper_cnn):
        self.build = build
        self.model = None
        self._optimizer_start = None

    def __call__(self):
        fresh = self.build()
        if self.model is None:
            fresh.optimizer.build(fresh.trainable_variables)
            self._optimizer_start = [
                keras.ops.convert_to_numpy(variable)
                for variable in fresh.optimizer.variables
            ]
            self.model = fresh
            return fresh
        self.model.set_weights(fresh.get_weights())
        for variable, value in zip(
            self.model.optimizer.variables, self._optimizer_start
        ):
            variable.assign(value)
        for layer, new in zip(self.model.layers, fresh.layers):
            if hasattr(layer, "seed_generator"):
                layer.seed_generator.state.assign(new.seed_generator.state.value)
        return self.model


def head_draws(model, x, seed, samples, consistent=False):
    """MC-dropout class probabilities `(samples, len(x), 10)` of a
    `paper_cnn` model: the convolutional layers once, then `samples` passes
    of Dropout(0.25) - Dense - Dropout(0.5) - Dense with masks drawn from
    `numpy.random.default_rng(seed)`. With `consistent`, each pass uses one
    mask for every image (as BatchBALD needs: the pass is one draw of the
    weights); otherwise each image gets its own masks, as Keras's dropout
    in training mode gives them."""
    features = []
    for start in range(0, len(x), DEFAULT_EVAL_BATCH):
        batch = x[start : start + DEFAULT_EVAL_BATCH]
        for name in ("conv1", "conv2", "pool", "flatten"):
            batch = model.get_layer(name)(batch)
        features.append(keras.ops.convert_to_numpy(batch))
    features = np.concatenate(features).astype(np.float32)
    hidden_w, hidden_b = model.get_layer("dense").get_weights()
    out_w, out_b = model.get_layer("classifier").get_weights()
    keep_in = 1.0 - model.get_layer("dropout1").rate
    keep_hidden = 1.0 - model.get_layer("dropout2").rate
    rng = np.random.default_rng(seed)
    rows = 1 if consistent else len(features)
    draws = np.empty((samples, len(features), out_w.shape[1]), dtype=np.float32)
    for pass_index in range(samples):
        kept = rng.random((rows, features.shape[1]), dtype=np.float32) < keep_in
        hidden = np.maximum((features * (kept / keep_in)) @ hidden_w + hidden_b, 0)
        kept = rng.random((rows, hidden.shape[1]), dtype=np.float32) < keep_hidden
        logits = (hidden * (kept / keep_hidden)) @ out_w + out_b
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        draws[pass_index] = exp / exp.sum(axis=1, keepdims=True)
    return draws


def labels_needed(labels, errors, threshold):
    """The first number of labels at which the test error (%) is at or
    below `threshold` (%) on the curve `(labels, errors)`, or None if it
    never is."""
    for count, error in zip(labels, errors):
        if error <= threshold:
            return int(count)
    return None


def _threshold_column(threshold):
    return f"acquired_to_{threshold:g}%"


def labels_needed_table(curves, thresholds, initial):
    """Per function, the acquired images (labels minus the `initial` set)
    each seed needed to reach each threshold test error (%), as the paper's
    Table 1 counts them.

    Args:
        curves: {function: [(labels, errors %) per seed]}.
        thresholds: test errors in %.
        initial: the size of the initial labelled set.

    Returns:
        `(rows, numbers)`: rows, one per function, {function, seeds, and per
        threshold a text cell "mean +- std" over the seeds that reached it,
        with "(r/n seeds)" when only r of the n did, or "not reached"};
        numbers, one row per function and threshold: {function, threshold_%,
        seeds_reached, acquired_mean, acquired_std} (None when none did).
    """
    rows, numbers = [], []
    for function, runs in curves.items():
        row = {"function": function, "seeds": len(runs)}
        for threshold in thresholds:
            reached = [
                needed - initial
                for needed in (labels_needed(n, e, threshold) for n, e in runs)
                if needed is not None
            ]
            mean = std = None
            if reached:
                mean, std = tables.mean_std(reached)
                # Image counts; the spread only where two seeds or more
                # reached the threshold (one run's spread is unknown, not 0).
                cell = f"{mean:g}"
                if len(reached) >= 2:
                    cell += f" +- {std:.1f}"
                if len(reached) < len(runs):
                    cell += f" ({len(reached)}/{len(runs)} seeds)"
            else:
                cell = "not reached"
            row[_threshold_column(threshold)] = cell
            numbers.append(
                {
                    "function": function,
                    "threshold_%": threshold,
                    "seeds_reached": len(reached),
                    "acquired_mean": mean,
                    "acquired_std": std,
                }
            )
        rows.append(row)
    return rows, numbers


def plot_learning_curves(path, curves, title):
    """Test error (%) against the number of labelled images: per function
    the mean over seeds as a line and +- 1 sample std as a band. `curves`
    is {function: [(labels, errors %) per seed]}, the same labels for every
    seed. Writes the figure to `path` and its numbers to
    `learning_curves.csv` beside it."""
    rows = []
    with figures.figure(
        path,
        size=(7, 4.5),
        description=f"{title}: test error (%) against the number of labelled "
        "images; line = mean over seeds, band (two seeds or more) = +- 1 "
        "sample std.",
    ) as (_, axes):
        for index, (function, runs) in enumerate(curves.items()):
            labels = np.asarray(runs[0][0])
            errors = np.asarray([run_errors for _, run_errors in runs], dtype=float)
            mean = errors.mean(axis=0)
            std = errors.std(axis=0, ddof=1) if len(errors) > 1 else np.zeros_like(mean)
            style = "--" if function == "batch_bald" else "-"
            axes.plot(labels, mean, style, color=f"C{index}", label=function)
            if len(errors) > 1:  # one run has no spread to show
                axes.fill_between(
                    labels, mean - std, mean + std, color=f"C{index}", alpha=0.15
                )
            rows.extend(
                {"function": function, "labels": int(n), "mean": m, "std": s}
                for n, m, s in zip(labels, mean, std)
            )
        axes.set(xlabel="labelled images", ylabel="test error (%)")
        axes.set_title(figures.wrap_title(title, 7))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    tables.write_csv(rows, os.path.join(os.path.dirname(path), "learning_curves.csv"))
    return path


def check_options(functions, rounds, k, initial, samples, pool_subset, thresholds):
    """Checks run()'s own options before any data is loaded; returns the
    functions as a list and the thresholds as floats."""
    functions = cli.check_names(functions, "functions", FUNCTIONS)
    validation.check_non_negative_int(rounds, "rounds")
    validation.check_positive_int(k, "k")
    validation.check_positive_int(samples, "samples")
    validation.check_positive_int(initial, "initial")
    if initial % 10:
        raise ValueError(
            "`initial` must be a multiple of the 10 classes: the initial set "
            f"holds initial / 10 images of each digit. Received: initial={initial}."
        )
    validation.check_positive_int(pool_subset, "pool_subset")
    if pool_subset < k:
        raise ValueError(
            f"`pool_subset` must be at least k={k}: the k acquired images are "
            f"chosen from the {pool_subset} scored. Received: "
            f"pool_subset={pool_subset}, k={k}."
        )
    thresholds = [float(value) for value in thresholds]
    if not thresholds or any(not 0 < value < 100 for value in thresholds):
        raise ValueError(
            "`thresholds` must be one or more test errors in % in (0, 100). "
            f"Received: thresholds={thresholds}."
        )
    return functions, thresholds


def run(
    functions=DEFAULTS["functions"],
    rounds=DEFAULTS["rounds"],
    k=DEFAULTS["k"],
    initial=DEFAULTS["initial"],
    samples=DEFAULTS["samples"],
    pool_subset=DEFAULTS["pool_subset"],
    thresholds=DEFAULTS["thresholds"],
    **options,
):
    """Runs the active-learning loop once per acquisition function and seed.

    Writes `out/<function>/seed_<s>/` (the TensorBoard learning curve:
    `active_learning/test_error` and `test_accuracy` at step = labels, and
    the run's HPARAMS row), with two or more seeds `out/across_seeds/
    <function>/` (`kdrop.tensorboard.aggregate_seeds`: the mean over seeds
    of both tags, `across_seeds/active_learning/test_error`, and its +- 1
    sample std band, `within_one_std/.../lower|upper`, at each number of
    labels; every seed has the same steps, initial + r * k),
    `out/learning_curves.png` (mean +- 1 std over seeds per function)
    with its numbers in `learning_curves.csv`,
    `out/summary.csv` (one row per function and seed), `out/aggregate.csv`
    (mean and std over seeds), `out/curves.csv` (every seed's curve) and
    `out/labels_needed.csv` (`labels_needed_table`).

    Args:
        functions: names from `FUNCTIONS`.
        rounds: acquisition rounds after the initial set.
        k: images acquired per round.
        initial: the initial labelled set, initial / 10 per class.
        samples: MC-dropout passes per scored image.
        pool_subset: unlabelled images scored per round (a random subset).
        thresholds: test errors (%) for the labels-needed table.
        **options: `training.RunSettings` fields (epochs, seeds,
            batch_size, dataset, train_size: the pool size, curve_test_size:
            the test images of the per-round curve, out, ...).

    Returns:
        `(rows, table)`: rows, one dict per function and seed (function,
        seed, labels, test_error_% on the whole test set,
        curve_test_error_% and seconds, seconds_per_round); table, the rows
        of `labels_needed_table`.
    """
    functions, thresholds = check_options(
        functions, rounds, k, initial, samples, pool_subset, thresholds
    )
    settings = SETTINGS.replace(**options)
    if settings.validation_split:
        raise ValueError(
            "The active-learning runs evaluate on the test set and take no "
            "`validation_split`; it must be 0. Received: "
            f"validation_split={settings.validation_split}."
        )
    fit_kwargs = {"epochs": settings.epochs, "batch_size": settings.batch_size}
    rows, curves, curve_rows = [], {}, []
    for seed, (x_pool, y_pool), (x_test, y_test) in settings.data():
        curve = slice(settings.curve_test_size)
        if initial + rounds * k > len(x_pool):
            raise ValueError(
                f"`initial` + `rounds` x `k` = {initial + rounds * k} images "
                f"must fit the pool of {len(x_pool)}. Received: initial="
                f"{initial}, rounds={rounds}, k={k}."
            )
        for function in functions:
            consistent = function == "batch_bald"
            print(
                f"\n== {function}, seed {seed}: {rounds} rounds of {k} from "
                f"{pool_subset} scored with {samples} MC passes"
                + (" (consistent masks)" if consistent else "")
            )
            started = [time.perf_counter()]

            def progress(record, model, function=function, seed=seed, started=started):
                now = time.perf_counter()
                print(
                    f"{function} seed {seed} round {record.round}: "
                    f"{record.labels} labels, test error "
                    f"{100 * record.test_error:.2f} % ({now - started[-1]:.1f} s)",
                    flush=True,
                )
                started.append(now)

            result = active_learning.run_active_learning(
                FreshModels(),
                x_pool,
                y_pool,
                x_test[curve],
                y_test[curve],
                rounds=rounds,
                k=k,
                acquisition=function,
                initial=initial,
                samples=samples,
                pool_subset=pool_subset,
                fit_kwargs=fit_kwargs,
                predict_draws=lambda model, x, round_seed, c=consistent: head_draws(
                    model, x, round_seed, samples, c
                ),
                log_dir=settings.run_dir(function, seed),
                seed=seed,
                on_round=progress,
            )
            seconds = started[-1] - started[0]
            probs = result.model.predict(
                x_test, batch_size=DEFAULT_EVAL_BATCH, verbose=0
            )
            test_error = 100 * float(np.mean(probs.argmax(axis=1) != y_test))
            labels = [record.labels for record in result.history]
            errors = [100 * record.test_error for record in result.history]
            curves.setdefault(function, []).append((labels, errors))
            curve_rows.extend(
                {"function": function, "seed": seed, "labels": n, "test_error_%": e}
                for n, e in zip(labels, errors)
            )
            rows.append(
                {
                    "function": function,
                    "seed": seed,
                    "labels": labels[-1],
                    "test_error_%": test_error,
                    "curve_test_error_%": errors[-1],
                    "seconds": round(seconds, 1),
                    "seconds_per_round": round(seconds / len(labels), 2),
                }
            )
            print(
                f"{function} seed {seed}: {labels[-1]} labels, test error "
                f"{test_error:.2f} % on all {len(x_test)} test images, "
                f"{seconds:.0f} s"
            )
    tables.write_csv(curve_rows, os.path.join(settings.out, "curves.csv"))
    curve_images = settings.curve_test_size or len(x_test)
    plot_learning_curves(
        os.path.join(settings.out, "learning_curves.png"),
        curves,
        figures.seeds_title(
            f"MNIST active learning, k={k}, test error on "
            f"{min(curve_images, len(x_test))} test images",
            settings.seeds,
        ),
    )
    table, numbers = labels_needed_table(curves, thresholds, initial)
    tables.write_csv(numbers, os.path.join(settings.out, "labels_needed.csv"))
    print("\nAcquired images needed to reach each test error (per-round curve):")
    tables.report(table, settings.out, "labels_needed_table.csv")
    training.finish(
        settings,
        rows,
        "function",
        COLUMNS,
        ("function", "seed"),
        f"Test errors of the deterministic prediction; test_error_% on all "
        f"{len(x_test)} test images, the curves on the first {curve_images}.",
        HPARAMS_METRICS,
        rounds=rounds,
        k=k,
        initial=initial,
        samples=samples,
        pool_subset=pool_subset,
    )
    return rows, table


# run()'s own options on the command line: (name, argparse keywords, help).
OPTIONS = (
    (
        "functions",
        dict(nargs="+", choices=FUNCTIONS),
        "acquisition functions, one run per function and seed",
    ),
    (
        "rounds",
        dict(type=cli.non_negative_int),
        "acquisition rounds after the initial set",
    ),
    ("k", dict(type=cli.positive_int), "images acquired per round"),
    (
        "initial",
        dict(type=cli.positive_int),
        "initial labelled images, balanced: initial / 10 per digit",
    ),
    ("samples", dict(type=cli.positive_int), "MC-dropout passes per scored image"),
    (
        "pool_subset",
        dict(type=cli.positive_int),
        "unlabelled images scored per round, a random subset of the pool",
    ),
    (
        "thresholds",
        dict(nargs="+", type=float),
        "test errors (%%) for the acquired-images-needed table",
    ),
)


def main(argv=None):
    parser = cli.argument_parser("active_learning", __doc__, SETTINGS, full=FULL)
    for name, keywords, text in OPTIONS:
        default = DEFAULTS[name]
        parser.add_argument(
            "--" + name.replace("_", "-"),
            default=list(default) if isinstance(default, tuple) else default,
            help=text,
            **keywords,
        )
    # The options are named like run's arguments.
    with cli.usage_errors(parser):
        return run(**cli.parse_options(parser, argv, FULL))

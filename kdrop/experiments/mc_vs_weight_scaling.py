"""Monte-Carlo averaging vs the weight-scaling rule (Srivastava 2014, Fig. 11).

An MLP 784-512-512-10 with WeightScaledDropout (0.2 on the inputs, 0.5 on
the hidden units) is trained on MNIST with the paper's recipe: SGD with a
learning rate decaying from 1.0 and momentum rising from 0.5
(`kdrop.schedules.srivastava2014`, applied by LRMomentumScheduler), and
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
from kdrop.experiments import common

SAMPLE_COUNTS = (1, 2, 5, 10, 20, 50, 100)


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


def run(
    epochs=20,
    dataset="offline",
    out="logs/mc_vs_weight_scaling",
    seed=0,
    sample_counts=SAMPLE_COUNTS,
    repeats=3,
    train_size=None,
    verbose=2,
    overwrite=False,
):
    """Trains the MLP, then compares MC averaging with weight scaling.

    Writes `out/train/` (learning rate and momentum logged per step),
    `out/mc_vs_weight_scaling.png` and `out/summary.csv`.

    Args:
        epochs: int > 0, training epochs (batch 100).
        dataset: a `kdrop.datasets.load_mnist` source.
        out: output directory.
        seed: int >= 0, seed of the data split, the weights and the masks.
        sample_counts: the k values (ints > 0).
        repeats: int > 0, MC estimates per k, with different seeds.
        train_size: None, or train on the first `train_size` images only.
        verbose: Keras `fit` verbosity.
        overwrite: whether to delete the event files of a previous run in
            `out` (without it such an `out` is refused, see
            `common.prepare_out`).

    Returns:
        A list of dicts per k: samples, mc_test_error_% (mean over the
        repeats), mc_std_% (their standard deviation), weight_scaling_test_error_%.
    """
    validation.check_positive_int(epochs, "epochs")
    seed = validation.check_non_negative_int(seed, "seed")
    repeats = validation.check_positive_int(repeats, "repeats")
    sample_counts = [
        validation.check_positive_int(k, "sample_counts") for k in sample_counts
    ]
    (x_train, y_train), (x_test, y_test) = common.load_data(dataset, seed, train_size)
    common.prepare_out(out, overwrite)
    keras.utils.set_random_seed(seed)
    model = mlp(seed)
    learning_rate, momentum = kdrop.schedules.srivastava2014()
    model.fit(
        x_train,
        y_train,
        batch_size=100,
        epochs=epochs,
        verbose=verbose,
        callbacks=[
            kdrop.callbacks.LRMomentumScheduler(
                learning_rate, momentum, update_freq="batch", log_dir=out
            )
        ],
    )
    folded = kdrop.fold_dropout(model)
    weight_scaling = error_percent(folded.predict(x_test, verbose=0), y_test)
    print(
        f"\nweight scaling rule (fold_dropout model): test error {weight_scaling:.2f} %"
    )
    rows = []
    for k in sample_counts:
        errors = [
            error_percent(
                kdrop.mc_predict(
                    model, x_test, samples=k, seed=seed * 1000 + repeat
                ).mean,
                y_test,
            )
            for repeat in range(repeats)
        ]
        rows.append(
            {
                "samples": k,
                "mc_test_error_%": float(np.mean(errors)),
                "mc_std_%": float(np.std(errors)),
                "weight_scaling_test_error_%": weight_scaling,
            }
        )
        print(
            f"k = {k:3d}: MC averaging test error {np.mean(errors):.2f} "
            f"+- {np.std(errors):.2f} % over {repeats} seeds"
        )
    common.plot_lines(
        os.path.join(out, "mc_vs_weight_scaling.png"),
        {
            "Monte-Carlo averaging": (
                [row["samples"] for row in rows],
                [row["mc_test_error_%"] for row in rows],
            )
        },
        "samples k (log scale)",
        "test error (%)",
        f"MC dropout vs weight scaling, {len(x_test)} test images",
        hlines={"weight scaling rule": weight_scaling},
        errors={"Monte-Carlo averaging": [row["mc_std_%"] for row in rows]},
        xscale="log",
    )
    common.report(rows, out)
    print(
        "Paper (Fig. 11): MC averaging reaches the weight-scaling error at about "
        "k = 50."
    )
    common.tensorboard_hint(out)
    return rows


def main(argv=None):
    parser = common.argument_parser(
        "mc_vs_weight_scaling", __doc__, epochs=20, dataset=True, events=True
    )
    parser.add_argument(
        "--repeats",
        type=common.positive_int,
        default=3,
        help="MC estimates per k, with different seeds",
    )
    # The options are named like run's arguments.
    return run(**vars(parser.parse_args(argv)))

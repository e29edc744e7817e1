"""The two scaling rules in numbers: inverted vs weight-scaled dropout.

The worked example of docs/getting-started.md, "The two dropout conventions": an
all-ones input of size 10000, dropout 0.5, then Dense(1) with all weights 1
and no bias. Inverted dropout gives about 10000 in training and exactly
10000 at inference; weight-scaled dropout gives about 5000 and exactly 5000.
And the arithmetic of a drop rate: 100 inputs with dropout 0.3 leave about
70 units active in training (all 100 at inference).
"""

import math

import keras
import numpy as np

import kdrop
from kdrop import validation
from kdrop.experiments import cli, tables


def _readout(layer, size):
    """`layer` then Dense(1) with all weights 1 and no bias: sums the units."""
    return keras.Sequential(
        [
            keras.Input((size,)),
            layer,
            keras.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
        ]
    )


def _row(example, training, inference, expected_mean, expected_sd, expected_inference):
    return {
        "example": example,
        "training_draws": training,
        "training_mean": float(np.mean(training)),
        "expected_training": f"{expected_mean:g} +- {expected_sd:.3g}",
        "inference": inference,
        "expected_inference": float(expected_inference),
    }


def run(size=10000, rate=0.5, draws=5, seed=0, out="logs/scaling_demo"):
    """Computes the table; writes `out/summary.csv`.

    A training-mode output is `sum(mask) / keep` (inverted) or `sum(mask)`
    (weight-scaled), with `sum(mask) ~ Binomial(size, keep)`: mean `size`
    resp. `size * keep`, standard deviation `sqrt(size keep (1 - keep)) / keep`
    resp. `sqrt(size keep (1 - keep))`.

    Args:
        size: int > 0, input units of the readout example.
        rate: dropout rate of the readout example.
        draws: int > 0, training-mode draws per example.
        seed: int >= 0, seed of the masks.
        out: output directory.

    Returns:
        A list of dicts: example, training_draws (list), training_mean,
        expected_training ("mean +- sd"), inference, expected_inference.
    """
    size = validation.check_positive_int(size, "size")
    rate = validation.check_rate(rate)
    draws = validation.check_positive_int(draws, "draws")
    seed = validation.check_non_negative_int(seed, "seed")
    keep = 1.0 - rate
    binomial_sd = math.sqrt(size * keep * rate)
    ones = np.ones((1, size), "float32")
    rows = []
    for index, (layer_class, expected_mean, expected_sd) in enumerate(
        (
            (kdrop.InvertedDropout, size, binomial_sd / keep),
            (kdrop.WeightScaledDropout, size * keep, binomial_sd),
        )
    ):
        model = _readout(layer_class(rate, seed=seed + index), size)
        training = [float(model(ones, training=True)[0, 0]) for _ in range(draws)]
        rows.append(
            _row(
                f"{layer_class.__name__}({rate:g}), {size} ones -> sum",
                training,
                float(model(ones, training=False)[0, 0]),
                expected_mean,
                expected_sd,
                expected_mean,
            )
        )
    small = kdrop.InvertedDropout(0.3, seed=seed + 2)
    small_ones = np.ones((1, 100), "float32")

    def active(training):
        return float(
            np.count_nonzero(
                keras.ops.convert_to_numpy(small(small_ones, training=training))
            )
        )

    rows.append(
        _row(
            "InvertedDropout(0.3), 100 ones -> active units",
            [active(True) for _ in range(draws)],
            active(False),
            70.0,
            math.sqrt(100 * 0.7 * 0.3),
            100.0,
        )
    )
    cli.create_out(out)
    tables.report(rows, out)
    print("Expected training values: Binomial mean +- one standard deviation.")
    return rows


def main(argv=None):
    parser = cli.argument_parser("scaling_demo", __doc__)
    parser.add_argument(
        "--draws",
        type=cli.positive_int,
        default=5,
        help="training-mode draws per example",
    )
    args = parser.parse_args(argv)
    with cli.usage_errors(parser):
        return run(draws=args.draws, seed=args.seed, out=args.out)

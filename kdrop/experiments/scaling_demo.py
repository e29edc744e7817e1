"""The scaling rules in numbers: inverted vs weight-scaled dropout.

Seed article 002's demo: an all-ones input of size 10000, dropout 0.5, then
Dense(1) with all weights 1 and no bias. Inverted dropout gives about 10000
in training and exactly 10000 at inference; weight-scaled dropout gives
about 5000 and exactly 5000. Seed article 000's arithmetic: 100 inputs with
dropout 0.3 leave about 70 units active.
"""

import os

import keras
import numpy as np

import kdrop
from kdrop.experiments import common


def _readout(layer, size):
    model = keras.Sequential([
        keras.Input((size,)), layer,
        keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    return model


def run(size=10000, rate=0.5, draws=5, seed=0):
    """Returns rows: layer, mode, output (one row per training draw and one
    for inference), plus the 100-input example."""
    rows = []
    x = np.ones((1, size), "float32")
    for index, layer_class in enumerate((kdrop.InvertedDropout, kdrop.WeightScaledDropout)):
        model = _readout(layer_class(rate, seed=seed + index), size)
        for draw in range(draws):
            rows.append({"layer": layer_class.__name__, "mode": f"training draw {draw + 1}",
                         "output": float(model(x, training=True)[0, 0])})
        rows.append({"layer": layer_class.__name__, "mode": "inference",
                     "output": float(model(x, training=False)[0, 0])})
    small = kdrop.InvertedDropout(0.3, seed=seed + 2)
    active = [int(np.count_nonzero(keras.ops.convert_to_numpy(small(np.ones((1, 100), "float32"), training=True))))
              for _ in range(draws)]
    for draw, count in enumerate(active):
        rows.append({"layer": "100 inputs, rate 0.3", "mode": f"training draw {draw + 1}",
                     "output": float(count)})
    return rows


def main(argv=None):
    parser = common.argument_parser("scaling_demo", __doc__.splitlines()[0], epochs=None)
    parser.add_argument("--draws", type=int, default=5, help="training-mode draws per layer")
    args = parser.parse_args(argv)
    rows = run(draws=args.draws, seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    print(common.write_table(rows, os.path.join(args.out, "summary.csv")))
    print("\nExpected: inverted ~10000 in training, exactly 10000 at inference; "
          "weight-scaled ~5000 and exactly 5000; ~70 of 100 units active at rate 0.3.")
    return rows

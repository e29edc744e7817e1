"""Time of kdrop.acquisition's scores and of BatchBALD on synthetic draws.

The draws are float32 softmax outputs of `samples` passes over a pool,
`softmax(mean_logits[i] + spread_i * noise[s, i])`, with per-example
spreads so that the passes agree on some examples and disagree on others
(what MC dropout gives). Each timing is the best and the median of
`--repeats` calls, after one untimed call.

Scores: a pool of `--pool` (10,000) examples x `--samples` (100) passes x
`--classes` (10) classes, every score of kdrop.acquisition plus `select`
of the top 10 and `stochastic_batch` of 10.

BatchBALD: batch `--k` (10) from a pool of `--bald-pool` (2,000) x 100
passes x 10 classes, with the defaults num_samples = exact_limit = 1000
(exact joint entropies for the first four steps, whose configurations
number 1, 10, 100, 1000, then 1000 sampled configurations). One step costs
about M x samples x pool x classes multiply-adds (M the configurations,
at most max(exact_limit, num_samples)) plus M x pool x classes
logarithms, so once M is at its cap each further step costs the same and
the time grows linearly with the pool and k; it grows more slowly with
the samples, the logarithms (which do not depend on them) taking most of
a step on a CPU. `--scaling` also times pool 1,000 / 4,000, samples
50 / 200 and k 5 / 20 around that point.

    python benchmarks/bench_acquisition.py [--scaling]
"""

import argparse
import statistics
import time

import numpy as np

from kdrop import acquisition


def draws(samples, pool, classes, seed=0):
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(1, pool, classes)) * 3
    spread = rng.uniform(0, 3, size=(1, pool, 1))
    logits = mean + spread * rng.normal(size=(samples, pool, classes))
    logits -= logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    return (probs / probs.sum(axis=-1, keepdims=True)).astype(np.float32)


def timed(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--bald-pool", type=int, default=2_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scaling", action="store_true")
    args = parser.parse_args()

    probs = draws(args.samples, args.pool, args.classes)
    print(
        f"scores: pool {args.pool} x {args.samples} samples x {args.classes} "
        f"classes (float32, {probs.nbytes / 2**20:.0f} MiB)"
    )
    scores = acquisition.bald(probs)
    for name, function in [
        ("max_entropy", lambda: acquisition.max_entropy(probs)),
        ("bald", lambda: acquisition.bald(probs)),
        ("variation_ratios", lambda: acquisition.variation_ratios(probs)),
        ("mean_std", lambda: acquisition.mean_std(probs)),
        ("margin", lambda: acquisition.margin(probs)),
        ("least_confidence", lambda: acquisition.least_confidence(probs)),
        ("random", lambda: acquisition.random(probs, seed=0)),
        ("select top 10", lambda: acquisition.select(scores, 10, seed=0)),
        ("stochastic_batch 10", lambda: acquisition.stochastic_batch(scores, 10)),
    ]:
        best, median = timed(function, args.repeats)
        print(f"  {name:20s} best {best:7.3f} s  median {median:7.3f} s")

    def batch(pool, samples, k):
        bald_probs = draws(samples, pool, args.classes, seed=1)
        best, median = timed(
            lambda: acquisition.batch_bald(bald_probs, k, seed=0), args.repeats
        )
        print(
            f"  batch_bald pool {pool:5d} x {samples:3d} samples x {args.classes} "
            f"classes, k {k:2d}: best {best:6.2f} s  median {median:6.2f} s"
        )

    print("BatchBALD (num_samples = exact_limit = 1000):")
    batch(args.bald_pool, args.samples, args.k)
    if args.scaling:
        for pool in (1_000, 4_000):
            batch(pool, args.samples, args.k)
        for samples in (50, 200):
            batch(args.bald_pool, samples, args.k)
        for k in (5, 20):
            batch(args.bald_pool, args.samples, k)


if __name__ == "__main__":
    main()

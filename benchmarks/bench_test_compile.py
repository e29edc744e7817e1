"""How long XLA takes to compile the test zoo's models on JAX, per XLA_FLAGS.

Most of the JAX test pass is XLA compiling each new model's steps on the
CPU (tests/conftest.py). This runs, for each setting of XLA_FLAGS, a fresh
process that builds five zoo models (tests/model_zoo.py: transformer,
recurrent, augmented_cnn, scheduled_mlp, masked_text), fits each one epoch
and predicts once, and reports its wall time and the seconds JAX reports
for XLA's backend compile (`jax.monitoring`'s
`/jax/core/compile/backend_compile_duration`). XLA reads XLA_FLAGS once,
when its backend starts, hence one process per setting and round; the
settings alternate within each round (the order reversed every other
round) so that each round compares them at the same machine load.

    KERAS_BACKEND=jax python benchmarks/bench_test_compile.py [--rounds 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = {
    "XLA defaults": "",
    "optimisation level 0": "--xla_backend_optimization_level=0",
    "level 0, older fusion emitters": (
        "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
    ),
}

MODELS = ("transformer", "recurrent", "augmented_cnn", "scheduled_mlp", "masked_text")

CHILD = """
import collections, json, sys, time, warnings
import jax.monitoring
from tests import model_zoo
warnings.simplefilter("ignore")
seconds = collections.Counter()
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **_: seconds.update({event: duration})
)
start = time.perf_counter()
for name in sys.argv[1:]:
    model, x = model_zoo.ZOO[name]()
    model.fit(x, model_zoo.fit_targets(model, x), epochs=1, verbose=0)
    model.predict(x, verbose=0)
print(json.dumps({
    "wall": time.perf_counter() - start,
    "compile": seconds["/jax/core/compile/backend_compile_duration"],
}))
"""


def measure(flags):
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS=flags)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *MODELS],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = {name: [] for name in SETTINGS}
    order = list(SETTINGS)
    for round_ in range(args.rounds):
        for name in order if round_ % 2 == 0 else order[::-1]:
            results[name].append(measure(SETTINGS[name]))
    print(f"| XLA_FLAGS | wall s (median of {args.rounds}) | XLA backend compile s |")
    print("|---|---|---|")
    for name, runs in results.items():
        wall = statistics.median(run["wall"] for run in runs)
        compile_ = statistics.median(run["compile"] for run in runs)
        print(
            f"| {name} (`{SETTINGS[name] or 'none'}`) | {wall:.1f} | {compile_:.1f} |"
        )


if __name__ == "__main__":
    main()

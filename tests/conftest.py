"""Test configuration shared by the whole suite.

The suite runs on the TensorFlow backend by default; CI runs it again with
KERAS_BACKEND=jax and KERAS_BACKEND=torch, where tests marked
`tensorflow_only` (tf.distribute, tf.data, TensorFlow's XLA) are skipped
with that reason.
"""

import os
import subprocess
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import pytest

BACKEND = keras.backend.backend()

# XLA's CPU compile of every jitted function (each new model's steps, and
# each weight initializer's random draw for every new shape) is most of the
# JAX backend's test time, worth nothing for models this small: LLVM's
# optimisation (level 0 halves it) and XLA's newer MLIR fusion emitters
# (the older emitters compile the zoo's steps in about half the time
# again; BENCHMARKS.md, "CI: the whole .ci/run").
FAST_XLA_COMPILE_FLAGS = (
    "--xla_backend_optimization_level=0",
    "--xla_cpu_use_fusion_emitters=false",
)


def xla_accepts(flags):
    """Whether XLA starts with `flags`: it aborts the process on a flag it
    does not know, and flags come and go between jaxlib releases."""
    probe = subprocess.run(
        [sys.executable, "-c", "import jax; jax.devices('cpu')"],
        env=dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu"),
        capture_output=True,
    )
    return probe.returncode == 0


def use_fast_xla_compile_flags():
    """Adds each flag this XLA accepts to XLA_FLAGS, read when JAX's backend
    starts, after this (importing keras does not start it). One probe (about
    2 s) for all of them; one per flag only if XLA refuses them together.
    pytest-xdist's workers inherit the result, and probe nothing when every
    flag was accepted."""
    flags = os.environ.get("XLA_FLAGS", "")
    missing = [
        flag for flag in FAST_XLA_COMPILE_FLAGS if flag.split("=")[0] not in flags
    ]
    accepted = missing
    if missing and not xla_accepts(" ".join([flags, *missing])):
        accepted = [flag for flag in missing if xla_accepts(f"{flags} {flag}")]
    os.environ["XLA_FLAGS"] = " ".join([flags, *accepted])


if BACKEND == "jax":
    use_fast_xla_compile_flags()


@pytest.fixture(autouse=True)
def seed_from_test_id(request):
    """Seeds Python, numpy and Keras from the test's own id.

    Without it a test's draws depend on which tests its xdist worker ran
    before, so a failure seen in CI could not be replayed; with it
    `pytest <node id>` replays it exactly.
    """
    keras.utils.set_random_seed(zlib.crc32(request.node.nodeid.encode()))


def pytest_configure(config):
    """On JAX, compiled executables are cached on disk by their program.

    Every test builds its models afresh, so JAX's in-memory cache (by
    Python function) misses on the same model's steps compiled again;
    the persistent cache keys on the lowered program, and is shared by
    the xdist workers and kept between runs in pytest's cache directory
    (`pytest --cache-clear` empties it). Bounded, so that JAX locks it:
    both workers read and write it.
    """
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    if BACKEND != "jax" or cache is None:
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str(cache.mkdir("jax-compile")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_max_size", 512 * 2**20)


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {BACKEND}"


def pytest_collection_modifyitems(config, items):
    if BACKEND == "tensorflow":
        return
    skip = pytest.mark.skip(
        reason=f"needs the TensorFlow backend (running on {BACKEND})"
    )
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)

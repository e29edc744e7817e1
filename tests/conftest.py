"""Test configuration shared by the whole suite.

The suite runs on the TensorFlow backend by default; CI runs it again with
KERAS_BACKEND=jax and KERAS_BACKEND=torch, where tests marked
`tensorflow_only` (tf.distribute, tf.data, TensorFlow's XLA) are skipped
with that reason.
"""

import os
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import pytest

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def seed_from_test_id(request):
    """Seeds Python, numpy and Keras from the test's own id.

    Without it a test's draws depend on which tests its xdist worker ran
    before, so a failure seen in CI could not be replayed; with it
    `pytest <node id>` replays it exactly.
    """
    keras.utils.set_random_seed(zlib.crc32(request.node.nodeid.encode()))


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

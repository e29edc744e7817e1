"""Assigning a value that changes at every step to a variable.

TensorFlow caches the eager tensor of every Python number it converts, keyed
by the number, for the life of the process (`TFE_TensorHandleCache` in
tensorflow/python/eager/pywrap_tensor_conversion.h); a numpy value is not
cached. Measured with TensorFlow 2.21: `variable.assign(x)` with a new
Python float `x` at every step grew resident memory by about 750 bytes per
call, without bound (BENCHMARKS.md, soak). A schedule's learning rate or
momentum is such a value, so it is handed to the variable as a numpy scalar.
"""

import numpy as np


def uncached(value, dtype):
    """`value` as a 0-d numpy array of `dtype`, which TensorFlow converts
    without caching it."""
    return np.asarray(value, dtype=dtype)

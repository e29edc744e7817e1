"""kdrop: dropout done right for Keras 3."""

from kdrop import callbacks, layers, optimizers, schedules
from kdrop.layers import InvertedDropout, ScheduledDropout, WeightScaledDropout

__version__ = "0.1.0"

__all__ = [
    "callbacks",
    "layers",
    "optimizers",
    "schedules",
    "InvertedDropout",
    "ScheduledDropout",
    "WeightScaledDropout",
]

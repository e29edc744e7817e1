"""kdrop: dropout done right for Keras 3."""

from kdrop import (
    acquisition,
    active_learning,
    callbacks,
    datasets,
    inference,
    layer_paths,
    layers,
    optimizer_schedules,
    optimizers,
    registry,
    sampling,
    schedules,
    tensorboard,
    uncertainty,
)
from kdrop.inference import MCResult, fold_dropout, mc_predict
from kdrop.layers import InvertedDropout, ScheduledDropout, WeightScaledDropout
from kdrop.surgery import add_drop_path, add_dropout, set_dropout

__version__ = "0.1.0"

__all__ = [
    "InvertedDropout",
    "MCResult",
    "ScheduledDropout",
    "WeightScaledDropout",
    "acquisition",
    "active_learning",
    "add_drop_path",
    "add_dropout",
    "callbacks",
    "datasets",
    "fold_dropout",
    "inference",
    "layer_paths",
    "layers",
    "mc_predict",
    "optimizer_schedules",
    "optimizers",
    "registry",
    "sampling",
    "schedules",
    "set_dropout",
    "tensorboard",
    "uncertainty",
]

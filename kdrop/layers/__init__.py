"""kdrop's dropout layers; every `rate` is a number or a schedule."""

from kdrop.layers.base import BaseDropout
from kdrop.layers.concrete_dropout import ConcreteDropout
from kdrop.layers.drop_block import DropBlock1D, DropBlock2D
from kdrop.layers.drop_connect import DropConnectConv2D, DropConnectDense
from kdrop.layers.drop_path import DropPath, drop_path_rates
from kdrop.layers.dropout import InvertedDropout, WeightScaledDropout
from kdrop.layers.gaussian_dropout import GaussianDropout
from kdrop.layers.rate import MAX_RATE, ScheduledRate
from kdrop.layers.scheduled_dropout import ScheduledDropout

__all__ = [
    "MAX_RATE",
    "BaseDropout",
    "ConcreteDropout",
    "DropBlock1D",
    "DropBlock2D",
    "DropConnectConv2D",
    "DropConnectDense",
    "DropPath",
    "GaussianDropout",
    "InvertedDropout",
    "ScheduledDropout",
    "ScheduledRate",
    "WeightScaledDropout",
    "drop_path_rates",
]

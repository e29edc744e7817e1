"""kdrop's dropout layers; every `rate` is a number or a schedule."""

from kdrop.layers.base import BaseDropout
from kdrop.layers.concrete_dropout import ConcreteDropout
from kdrop.layers.drop_connect import DropConnectConv2D, DropConnectDense
from kdrop.layers.dropout import InvertedDropout, WeightScaledDropout
from kdrop.layers.rate import MAX_RATE, ScheduledRate
from kdrop.layers.scheduled_dropout import ScheduledDropout

__all__ = [
    "MAX_RATE",
    "BaseDropout",
    "ConcreteDropout",
    "DropConnectConv2D",
    "DropConnectDense",
    "InvertedDropout",
    "ScheduledDropout",
    "ScheduledRate",
    "WeightScaledDropout",
]

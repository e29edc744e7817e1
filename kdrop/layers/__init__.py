"""kdrop's dropout layers."""

from kdrop.layers.base import BaseDropout
from kdrop.layers.dropout import InvertedDropout, WeightScaledDropout
from kdrop.layers.scheduled_dropout import MAX_RATE, ScheduledDropout

__all__ = [
    "MAX_RATE",
    "BaseDropout",
    "InvertedDropout",
    "ScheduledDropout",
    "WeightScaledDropout",
]

"""Schedules: dropout rates over training steps."""

from kdrop.schedules.dropout import (
    Constant,
    Cosine,
    Curriculum,
    DropoutSchedule,
    Early,
    Late,
    Linear,
    PerEpoch,
    Piecewise,
)

__all__ = [
    "Constant",
    "Cosine",
    "Curriculum",
    "DropoutSchedule",
    "Early",
    "Late",
    "Linear",
    "PerEpoch",
    "Piecewise",
]

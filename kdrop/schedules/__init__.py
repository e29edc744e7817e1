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
    Scaled,
)
from kdrop.schedules.presets import HintonLearningRate, hinton2012, srivastava2014

__all__ = [
    "Constant",
    "Cosine",
    "Curriculum",
    "DropoutSchedule",
    "Early",
    "HintonLearningRate",
    "Late",
    "Linear",
    "PerEpoch",
    "Piecewise",
    "Scaled",
    "hinton2012",
    "srivastava2014",
]

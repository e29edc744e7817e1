"""Schedules: dropout rates over training steps.

The papers' learning-rate / momentum recipes live in
`kdrop.optimizer_schedules`; `hinton2012`, `srivastava2014` and
`HintonLearningRate` are also importable from here, where they were first.
"""

from kdrop.optimizer_schedules import HintonLearningRate, hinton2012, srivastava2014
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

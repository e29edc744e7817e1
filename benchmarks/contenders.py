"""The dropout layers the benchmarks compare, built fresh for each use."""

import keras

import kdrop

RATE = 0.5


def dropout_layers(scheduled=True):
    """Keras's Dropout and kdrop's layers at rate 0.5, by display name.

    The ScheduledDropout ramps from 0.1 to 0.5, so its rate changes at every
    step of a benchmark, the case that must cost no retrace.
    """
    layers = {
        "keras Dropout": keras.layers.Dropout(RATE, seed=1),
        "kdrop InvertedDropout": kdrop.InvertedDropout(RATE, seed=1),
        "kdrop WeightScaledDropout": kdrop.WeightScaledDropout(RATE, seed=1),
    }
    if scheduled:
        layers["kdrop ScheduledDropout"] = kdrop.ScheduledDropout(
            kdrop.schedules.Linear(0.1, RATE, steps=100), seed=1
        )
    return layers

"""Argument checks shared by kdrop's layers, schedules and callbacks.

Every error names the argument, the value received and what is allowed, so a
mistake is reported when an object is built, before any training work.
"""

import math
import numbers

import numpy as np


def check_number(value, name, allowed, is_allowed=lambda value: True):
    """Returns `value` as a float after checking it is a real number (not a
    bool, not NaN) for which `is_allowed(value)` holds.

    Args:
        value: the candidate number.
        name: the argument name used in the error message.
        allowed: what is allowed, in words, for the error message.
        is_allowed: predicate on the (non-NaN) number.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be {allowed}. Received: {name}={value!r} "
            f"of type {type(value).__name__}."
        )
    if math.isnan(value) or not is_allowed(value):
        raise ValueError(f"`{name}` must be {allowed}. Received: {name}={value!r}.")
    return float(value)


def shape_fits(expected, received):
    """Whether an array of shape `received` fits a model input of shape
    `expected`: the same rank, and the same size on every axis but the
    batch axis where `expected` is not None."""
    return len(expected) == len(received) and all(
        size is None or size == got for size, got in zip(expected[1:], received[1:])
    )


def check_rate(value, name="rate", allow_one=False):
    """Returns `value` as a float after checking it is a valid dropout rate.

    Args:
        value: the candidate rate (probability of dropping a unit).
        name: the argument name used in the error message.
        allow_one: whether 1.0 is allowed (for schedule targets that are
            clipped later); dropout layers never allow it.
    """
    allowed = "a number in [0, 1]" if allow_one else "a number in [0, 1)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be {allowed} (the probability of dropping a "
            f"unit). Received: {name}={value!r} of type {type(value).__name__}."
        )
    value = float(value)
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if math.isnan(value) or value < 0.0 or not upper_ok:
        raise ValueError(
            f"`{name}` must be {allowed} (the probability of dropping a "
            f"unit). Received: {name}={value}."
        )
    return value


def check_seed(seed, name="seed"):
    """Returns `seed` after checking it is None or a Python int."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"`{name}` must be None or an int. Received: {name}={seed!r} "
            f"of type {type(seed).__name__}."
        )
    return int(seed)


def check_bool(value, name):
    """Returns `value` after checking it is a bool (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"`{name}` must be True or False. Received: {name}={value!r} "
            f"of type {type(value).__name__}."
        )
    return bool(value)


def check_positive_int(value, name):
    """Returns `value` as an int after checking it is an integer > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive int. Received: {name}={value!r}."
        )
    return int(value)


def check_non_negative_int(value, name):
    """Returns `value` as an int after checking it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be an int >= 0. Received: {name}={value!r}.")
    return int(value)


def check_choice(value, name, choices):
    """Returns `value` after checking it is one of `choices`."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"`{name}` must be one of {allowed}. Received: {name}={value!r}."
        )
    return value

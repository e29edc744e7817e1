"""Argument checks shared by kdrop's layers, schedules and callbacks.

Every error names the argument, the value received and what is allowed, so a
mistake is reported when an object is built, before any training work. One
rule, as in Keras: a value of the wrong type raises `TypeError`, a value of
the right type outside the allowed range raises `ValueError`. numpy scalars
are accepted wherever Python numbers are (`np.int64(4)` as an int,
`np.float32(0.5)` as a float).
"""

import math
import numbers

import keras
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
    """Returns `seed` as an int after checking it is None or an integer
    (a Python int or a numpy integer)."""
    if seed is None:
        return None
    if is_integer(seed):
        return int(seed)
    raise TypeError(
        f"`{name}` must be None or an int. Received: {name}={seed!r} "
        f"of type {type(seed).__name__}."
    )


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
    return check_int(value, name, "a positive int", minimum=1)


def check_non_negative_int(value, name):
    """Returns `value` as an int after checking it is an integer >= 0."""
    return check_int(value, name, "an int >= 0", minimum=0)


def check_momentum(value, name="momentum"):
    """Returns `value` as a float after checking it is a momentum in [0, 1).

    1 is excluded: with momentum 1 the velocity `v = m * v - lr * g` never
    forgets a gradient, so for a constant gradient the step grows without
    bound (the effective step size is `lr / (1 - m)`). The papers' recipes
    stay below it (0.99 for Hinton et al. 2012 and Srivastava et al. 2014,
    0.999 for Sutskever et al. 2013).
    """
    return check_number(value, name, "a number in [0, 1)", lambda v: 0 <= v < 1)


def check_choice(value, name, choices):
    """Returns `value` after checking it is one of `choices`; a value of
    another type than every choice (e.g. a number for a string option) is
    a TypeError."""
    allowed = ", ".join(repr(c) for c in choices)
    if not any(isinstance(value, type(choice)) for choice in choices):
        raise TypeError(
            f"`{name}` must be one of {allowed}. Received: {name}={value!r} "
            f"of type {type(value).__name__}."
        )
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {allowed}. Received: {name}={value!r}."
        )
    return value


def is_integer(value):
    """Whether `value` is a Python int or a numpy integer, and not a bool
    (an int subclass that is always a mistake as a count or a seed)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value, name, allowed, minimum, maximum=None):
    """Returns `value` as an int after checking it is an integer (a Python
    int or a numpy integer, not a bool) in [`minimum`, `maximum`].

    Args:
        value: the candidate integer.
        name: the argument name used in the error message.
        allowed: what is allowed, in words, for the error message.
        minimum: the smallest allowed value.
        maximum: None, or the largest allowed value.
    """
    if not is_integer(value):
        raise TypeError(
            f"`{name}` must be {allowed}. Received: {name}={value!r} "
            f"of type {type(value).__name__}."
        )
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"`{name}` must be {allowed}. Received: {name}={value!r}.")
    return int(value)


def check_float_inputs(layer, inputs):
    """Raises a TypeError naming `layer` unless `inputs` are floating-point."""
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if "float" not in dtype:
        raise TypeError(
            f"Layer '{layer.name}' ({type(layer).__name__}) expects "
            f"floating-point inputs (float16, bfloat16, float32, "
            f"float64). Received inputs of dtype {dtype}; cast them "
            f"first, e.g. with keras.ops.cast(x, 'float32')."
        )

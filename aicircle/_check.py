"""Checks of a Python caller's arguments at the public boundary.

Each raises :class:`~aicircle.errors.InvalidInput` naming the argument and the
value it got, so that a mistake surfaces as an aicircle error, not as a numpy or
pandas error from deep inside a run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errors import InvalidInput


def whole_number(name, value, minimum=1) -> int:
    """``value`` as an int of at least ``minimum`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInput(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


def seed(value, name="seed"):
    """A seed :func:`numpy.random.default_rng` accepts: a whole number >= 0 (or None)."""
    if value is None:
        return None
    return whole_number(name, value, 0)


def finite(name, value) -> float:
    """``value`` as a finite float."""
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InvalidInput(f"{name} must be a finite number, got {value!r}")
    return v


def mapping(name, value) -> dict:
    """``value`` (a dict-like or None) as a dict."""
    if value is None:
        return {}
    if not hasattr(value, "items"):
        raise InvalidInput(f"{name} must map names to values, got {type(value).__name__}")
    return dict(value.items())


def table(name, value) -> pd.DataFrame:
    """A non-empty DataFrame, one row per parameter set."""
    if not isinstance(value, pd.DataFrame):
        raise InvalidInput(f"{name} must be a pandas DataFrame, one row per parameter set, got "
                           f"{type(value).__name__}")
    if len(value) == 0:
        raise InvalidInput(f"{name} is empty: it needs at least one parameter set")
    return value


def one_column(model, what, name) -> str:
    """``name`` resolved, if it names one column of a run (a variable, or one element of a
    subscripted one); a whole subscripted variable is refused, naming its first element."""
    columns = model.columns(name)
    if len(columns) != 1:
        raise InvalidInput(f"{what} '{name}' is subscripted ({len(columns)} elements): name one element, "
                           f"e.g. '{columns[0]}'")
    return columns[0]


def names(model, name, values) -> list:
    """A non-empty list of the model's names, resolved (one string counts as a list of one)."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple, pd.Index)) or len(values) == 0 or \
            not all(isinstance(v, str) for v in values):
        raise InvalidInput(f"{name} must be a non-empty list of variable names, got {values!r}")
    return [model.resolve(v) for v in values]

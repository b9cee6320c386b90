"""The functions compiled models call: Vensim's builtins that are no numpy ufunc, and smooth stand-ins.

The code :mod:`aicircle.compiler` generates runs in :func:`namespace`: numpy as
``np`` and every function of this module under its own name. Elementwise
operations that numpy has as a ufunc (``+``, ``MIN``, ``EXP``, ...) are called
as such, with ``out=``; the rest are here.

Semantics are Vensim's as PySD's Python backend implements them, including its
small-number convention: a divisor or quantum below :data:`SMALL_VENSIM` counts
as zero.

The ``smooth_*`` functions stand in for the non-smooth operations when a model
is compiled for continuation (``Program(..., smooth=eps)``): Newton's method and
the bifurcation test functions of :mod:`aicircle._continuation` need a smooth
vector field. Simulations never use them. Each takes the smoothing width
``eps`` (in the units of its arguments, finite and > 0; ``InvalidInput``
otherwise) and tends to the exact form as ``eps -> 0`` away from the kink; the
logical ones (:func:`smooth_if`, :func:`smooth_and`, :func:`smooth_or`,
:func:`smooth_not`) are exact for conditions of 0 and 1 and smooth in between,
so they are smooth wherever their conditions (:func:`smooth_greater`,
:func:`smooth_less`) are.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special

from .errors import InvalidInput

__all__ = [
    "LOOKUP_KINDS", "SMALL_VENSIM", "data_at", "if_then_else", "log", "lookup", "modulo", "namespace", "quantum",
    "smooth_abs", "smooth_and", "smooth_greater", "smooth_if", "smooth_less", "smooth_lookup",
    "smooth_max", "smooth_min", "smooth_not", "smooth_or", "smooth_step", "xidz", "zidz",
]

SMALL_VENSIM = 1e-6  # what Vensim (and PySD) treat as zero

LOOKUP_KINDS = ("interpolate", "extrapolate", "hold_backward", "look_forward")  # see lookup()


# --------------------------------------------------------------------------
# Vensim's builtins
# --------------------------------------------------------------------------


def if_then_else(condition, if_true, if_false):
    """Vensim's IF THEN ELSE, elementwise: ``if_true`` where ``condition`` holds, else ``if_false``."""
    return np.where(condition, if_true, if_false)


def log(x, base):
    """Vensim's LOG(x, base): the logarithm of ``x`` to ``base``."""
    return np.log(x) / np.log(base)


def xidz(a, b, x):
    """Vensim's XIDZ: ``a / b``, or ``x`` where ``|b| < SMALL_VENSIM``."""
    small = np.abs(b) < SMALL_VENSIM
    if not small.any():  # the common case, in fewer operations (it runs at every step)
        q = a / b
        if len(getattr(q, "shape", ())) >= len(getattr(x, "shape", ())):  # (np.ndim is slower)
            return q
    return np.where(small, x, a / np.where(small, 1.0, b))


def zidz(a, b):
    """Vensim's ZIDZ: ``a / b``, or 0 where ``|b| < SMALL_VENSIM``."""
    small = np.abs(b) < SMALL_VENSIM
    return np.where(small, 0.0, a / np.where(small, 1.0, b))


def quantum(a, b):
    """Vensim's QUANTUM: ``b * INTEGER(a / b)`` (truncated toward 0), or ``a`` where ``b < SMALL_VENSIM``."""
    small = b < SMALL_VENSIM
    bb = np.where(small, 1.0, b)
    return np.where(small, a, bb * np.trunc(a / bb))


def modulo(x, m):
    """Vensim's MODULO: ``x - QUANTUM(x, m)``, so in ``(-m, 0]`` for negative ``x``."""
    return x - quantum(x, m)


def lookup(x, xs, ys, kind):
    """A graphical function (lookup table) evaluated at ``x``.

    Parameters
    ----------
    x : float or ndarray
    xs, ys : ndarray, shape (K,)
        The table, ``xs`` increasing.
    kind : {'interpolate', 'extrapolate', 'hold_backward', 'look_forward'}
        ``interpolate``: linear between the points, the end values beyond them;
        ``extrapolate``: the end segments continued beyond the points;
        ``hold_backward``: the value of the last point at or before ``x``;
        ``look_forward``: the value of the first point at or after ``x``
        (both the end values beyond the points).
    """
    x = np.asarray(x, dtype=float)
    if kind == "hold_backward":
        i = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 1)
        return ys[i]
    if kind == "look_forward":
        i = np.clip(np.searchsorted(xs, x, side="left"), 0, len(xs) - 1)
        return ys[i]
    y = np.interp(x, xs, ys)
    if kind == "extrapolate" and len(xs) > 1:
        lo = ys[0] + (ys[1] - ys[0]) / (xs[1] - xs[0]) * (x - xs[0])
        hi = ys[-1] + (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) * (x - xs[-1])
        y = np.where(x < xs[0], lo, np.where(x > xs[-1], hi, y))
    return y


# --------------------------------------------------------------------------
# Subscripts: values of shape (n_elements, n_sets), see aicircle.compiler.subscripts
# --------------------------------------------------------------------------


def rows(x, k):
    """``x`` as a subscripted value of ``k`` elements: shape ``(k, n_sets)`` (a broadcast view)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:
        return x
    width = x.shape[-1] if x.ndim else 1
    return np.broadcast_to(x.reshape(1, width), (k, width))


def assemble(*args):
    """A variable of ``k`` elements from the values of its equations: ``assemble(*values, k, positions)``.

    ``positions[i]`` are the elements (int array) that ``values[i]`` computes; an
    element no equation defines is NaN.
    """
    *values, k, positions = args
    width = max([np.shape(v)[-1] for v in values if np.ndim(v)] + [1])
    out = np.full((k, width), np.nan)
    for pos, value in zip(positions, values):
        out[pos] = value
    return out


_REDUCE = {"sum": np.nansum, "prod": np.nanprod, "min": np.fmin.reduce, "max": np.fmax.reduce}


def reduce(x, how, axes):
    """Vensim's SUM, PROD, VMIN, VMAX over the grid axes ``axes`` (NaN skipped, as PySD's xarray does)."""
    return _REDUCE[how](np.asarray(x, dtype=float), axis=axes)


def _one_integer(name, value):
    """An action argument of VECTOR SELECT: one whole number, the same for every set."""
    arr = np.asarray(value, dtype=float)
    first = float(arr.flat[0])
    if not np.all(arr == first) or first != int(first):
        raise InvalidInput(f"VECTOR SELECT's {name} must be one whole number; got {value!r}")
    return int(first)


def vector_select(selection, expression, missing, action, errors, axes):
    """Vensim's VECTOR SELECT over the grid axes ``axes`` (PySD's ``vector_select``).

    ``action`` (0 to 10) and ``errors`` (0 to 3) are Vensim's numerical and error
    actions; they may change with time, but must be one whole number at a time.
    """
    action = _one_integer("numerical action", action)
    errors = _one_integer("error action", errors)
    if action not in range(11):
        raise InvalidInput(f"VECTOR SELECT's numerical action must be 0 to 10; got {action}")
    sel, expr = np.broadcast_arrays(np.asarray(selection, dtype=float), np.asarray(expression, dtype=float))
    off = sel == 0
    zeros = np.all(off, axis=axes)
    if errors in (1, 3) and np.any(zeros):
        raise FloatingPointError("VECTOR SELECT: all the values of the selection array are 0")
    if errors in (2, 3) and np.any(np.sum(~off, axis=axes) > 1):
        raise FloatingPointError("VECTOR SELECT: more than one non-zero value in the selection array")
    if action < 5:
        values = sel * expr
    elif action == 5:
        values = expr ** sel
    else:
        values = expr
    values = np.where(off, np.nan, values)
    if action in (0, 6):
        out = np.nansum(values, axis=axes)
    elif action in (1, 5, 7):
        out = np.nanprod(values, axis=axes)
    elif action in (2, 8):
        out = np.fmin.reduce(values, axis=axes)
    elif action in (3, 9):
        out = np.fmax.reduce(values, axis=axes)
    else:
        count = np.sum(~off, axis=axes)
        out = np.nansum(values, axis=axes) / np.where(count == 0, 1, count)
    return np.where(zeros, missing, out)


def _along_last(x, shape):
    """``x`` (n_elements, n_sets) with its elements as the axes ``shape``; the last of them is sorted."""
    x = np.asarray(x, dtype=float)
    if x.ndim < 2:
        x = rows(x, int(np.prod(shape)))
    return x.reshape(tuple(shape) + x.shape[-1:]), len(shape) - 1


def vector_sort_order(vector, shape, direction):
    """Vensim's VECTOR SORT ORDER along the last subscript (PySD: argsort, flipped for direction <= 0)."""
    v, axis = _along_last(vector, shape)
    order = np.argsort(v, axis=axis)
    if direction <= 0:
        order = np.flip(order, axis=axis)
    return order.reshape(-1, v.shape[-1]).astype(float)


def vector_rank(vector, shape, direction):
    """Vensim's VECTOR RANK along the last subscript: 1 for the first in sort order."""
    order, axis = _along_last(vector_sort_order(vector, shape, direction), shape)
    return (np.argsort(order, axis=axis) + 1).reshape(-1, order.shape[-1]).astype(float)


def vector_reorder(vector, order, shape):
    """Vensim's VECTOR REORDER along the last subscript: element ``i`` is ``vector[order[i]]``."""
    v, axis = _along_last(vector, shape)
    o, _ = _along_last(order, shape)
    v, o = np.broadcast_arrays(v, o)
    return np.take_along_axis(v, o.astype(np.intp), axis=axis).reshape(-1, v.shape[-1])


def lookup_elements(x, index, tables):
    """Each element's own lookup table at ``x``: ``tables[index]``, a tuple ``(xs, ys, kind)`` each."""
    if isinstance(index, int):
        return lookup(x, *tables[index])
    x = np.asarray(x, dtype=float)
    shape = np.broadcast_shapes(x.shape, np.shape(index))
    x = np.broadcast_to(x, shape)
    index = np.broadcast_to(index, shape)
    out = np.empty(shape)
    for i, table in enumerate(tables):
        mask = index == i
        out[mask] = lookup(x[mask], *table)
    return out


def data_at(t, xs, ys, kind):
    """A data variable (GET DATA, or a time series given as a parameter) at time ``t``.

    PySD's ``Data``: the value at ``t`` read from the series ``ys`` at the times
    ``xs``, by Vensim's method ``kind``: ``interpolate`` (linear, the end values
    beyond the series), ``hold_backward`` (the last value at or before ``t``),
    ``look_forward`` (the first at or after it) or ``raw`` (the value at ``t``
    exactly, NaN between the times). A time on the series reads its value.

    Parameters
    ----------
    t : float or ndarray, shape (w,)
        The time, or several (the columns of the result).
    xs : ndarray, shape (K,)
        Increasing times.
    ys : ndarray, shape (K,) or (K, m)
        The values; a subscripted variable's ``m`` elements in columns.

    Returns
    -------
    float or ndarray
        Shape ``()`` or ``(w,)`` for ``ys`` of shape (K,); ``(m, 1)`` or
        ``(m, w)`` for a subscripted one (its elements, then the times).
    """
    t = np.asarray(t, dtype=float)
    k = len(xs)
    if kind == "raw":
        i = np.clip(np.searchsorted(xs, t, side="left"), 0, k - 1)
        hit = xs[i] == t
        y = np.where(hit[..., None] if ys.ndim == 2 else hit, ys[i], np.nan)
    elif kind == "hold_backward":
        y = ys[np.clip(np.searchsorted(xs, t, side="right") - 1, 0, k - 1)]
    elif kind == "look_forward":
        y = ys[np.clip(np.searchsorted(xs, t, side="left"), 0, k - 1)]
    elif ys.ndim == 1:
        y = np.interp(t, xs, ys)
    else:  # linear, as np.interp (and scipy's interp1d, which PySD's xarray calls) writes it
        hi = np.clip(np.searchsorted(xs, t, side="right"), 1, k - 1) if k > 1 else np.zeros_like(t, int)
        lo = np.maximum(hi - 1, 0)
        lo_y, hi_y = ys[lo], ys[hi]
        with np.errstate(all="ignore"):
            slope = (hi_y - lo_y) / np.where(hi > lo, xs[hi] - xs[lo], 1.0)[..., None]
            inner = slope * (t - xs[lo])[..., None] + lo_y
        y = np.where((t <= xs[0])[..., None], ys[0], np.where((t >= xs[-1])[..., None], ys[-1],
                     np.where((t == xs[lo])[..., None], lo_y, inner)))
    if ys.ndim == 1:
        return y
    return y[:, None] if t.ndim == 0 else np.moveaxis(y, -1, 0)


# --------------------------------------------------------------------------
# Random functions: a uniform draw ``u`` in [0, 1) per step, transformed (PySD's distributions)
# --------------------------------------------------------------------------


def random_normal(low, high, mean, sd, u):
    """Vensim's RANDOM NORMAL: normal(mean, sd) truncated to [low, high], by inverting its CDF at ``u``."""
    a = scipy.special.ndtr(xidz(np.subtract(low, mean), sd, -np.inf))
    b = scipy.special.ndtr(xidz(np.subtract(high, mean), sd, np.inf))
    return mean + sd * scipy.special.ndtri(a + u * (b - a))


def random_exponential(low, high, shift, stretch, u):
    """Vensim's RANDOM EXPONENTIAL: exponential from max(low, shift), scale ``stretch``, cut at ``high``."""
    loc = np.maximum(low, shift)
    top = -np.expm1(-xidz(np.subtract(high, loc), stretch, np.inf))
    return loc - stretch * np.log1p(-u * top)


# --------------------------------------------------------------------------
# Smooth stand-ins of the non-smooth operations (continuation only)
# --------------------------------------------------------------------------


def _width(eps) -> float:
    """The smoothing width as a float; ``InvalidInput`` unless it is a finite number > 0."""
    try:
        out = float(eps)
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"eps must be a number; got {eps!r}") from err
    if not (math.isfinite(out) and out > 0):
        raise InvalidInput(f"eps must be finite and > 0; got {out}")
    return out


def smooth_max(a, b, eps):
    """Smooth maximum ``(a + b + sqrt((a - b)**2 + eps**2)) / 2``.

    Parameters
    ----------
    a, b : float or array_like
        Broadcast together.
    eps : float
        Smoothing width, in the units of ``a`` and ``b``; > 0.

    Returns
    -------
    ndarray or float
        ``max(a, b) < smooth_max(a, b, eps) <= max(a, b) + eps / 2``; the
        error is largest (``eps / 2``) at ``a == b`` and falls as
        ``eps**2 / (4 |a - b|)`` away from it.

    Examples
    --------
    >>> float(smooth_max(1.0, 1.0, 0.2))
    1.1
    """
    eps = _width(eps)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return 0.5 * (a + b + np.hypot(a - b, eps))


def smooth_min(a, b, eps):
    """Smooth minimum ``(a + b - sqrt((a - b)**2 + eps**2)) / 2``.

    ``min(a, b) - eps / 2 <= smooth_min(a, b, eps) < min(a, b)``, the error
    largest at ``a == b`` and falling as ``eps**2 / (4 |a - b|)`` away from it.
    """
    eps = _width(eps)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return 0.5 * (a + b - np.hypot(a - b, eps))


def smooth_abs(x, eps):
    """Smooth absolute value ``sqrt(x**2 + eps**2)``.

    ``|x| < smooth_abs(x, eps) <= |x| + eps``, the error largest at ``x == 0``
    and falling as ``eps**2 / (2 |x|)`` away from it.
    """
    return np.hypot(np.asarray(x, dtype=float), _width(eps))


def smooth_step(x, eps):
    """Smooth unit step ``(1 + tanh(x / eps)) / 2 = 1 / (1 + exp(-2 x / eps))``.

    ``IF THEN ELSE(x > 0, a, b)`` becomes ``b + smooth_step(x, eps) * (a - b)``.

    Parameters
    ----------
    x : float or array_like
        The condition written as ``x > 0``.
    eps : float
        Smoothing width, in the units of ``x``; > 0.

    Returns
    -------
    ndarray or float
        In [0, 1], 1/2 at ``x = 0``. Its distance from the unit step ``H(x)``
        is at most ``exp(-2 |x| / eps)`` for ``x != 0`` (below ``2e-9`` once
        ``|x| >= 10 eps``), plus a rounding of at most ``1.2e-16`` for
        ``x > 0`` (values near 1 are stored to double precision).
    """
    eps = _width(eps)
    # expit(2 x / eps) = (1 + tanh(x / eps)) / 2, without the cancellation of 1 + tanh for x < 0
    return scipy.special.expit(2.0 * np.asarray(x, dtype=float) / eps)


def smooth_greater(a, b, eps):
    """Smooth ``a > b`` (and ``a >= b``): :func:`smooth_step` of ``a - b``."""
    return smooth_step(np.subtract(a, b), eps)


def smooth_less(a, b, eps):
    """Smooth ``a < b`` (and ``a <= b``): :func:`smooth_step` of ``b - a``."""
    return smooth_step(np.subtract(b, a), eps)


def smooth_if(condition, if_true, if_false):
    """IF THEN ELSE for a condition in [0, 1]: ``if_false + condition * (if_true - if_false)``."""
    return if_false + condition * (if_true - if_false)


def smooth_and(a, b):
    """AND of two conditions in [0, 1]: their product."""
    return a * b


def smooth_or(a, b):
    """OR of two conditions in [0, 1]: ``a + b - a b``."""
    return a + b - a * b


def smooth_not(a):
    """NOT of a condition in [0, 1]: ``1 - a``."""
    return 1.0 - a


def smooth_lookup(x, xs, ys, eps):
    """Smooth version of a Vensim lookup (piecewise-linear, flat beyond its ends).

    The lookup is written as ``ys[0] + sum_k s_k (relu(x - xs[k]) -
    relu(x - xs[k+1]))`` with ``s_k`` the slope of segment ``k``, and each
    ``relu(z) = max(z, 0)`` is replaced by ``smooth_max(z, 0, eps)``.

    Parameters
    ----------
    x : float or array_like
    xs : array_like, shape (K,)
        Strictly increasing abscissae.
    ys : array_like, shape (K,)
        Ordinates.
    eps : float
        Smoothing width, in the units of ``x``; > 0.

    Returns
    -------
    ndarray or float
        Differs from the lookup by at most ``eps / 2 * sum_k |s_k - s_(k-1)|``
        (the kinks' slope changes, including the two ends where the slope
        becomes 0); the error is concentrated within a few ``eps`` of the
        kinks.
    """
    eps = _width(eps)
    xs = np.asarray(xs, dtype=float)
    ys = np.asarray(ys, dtype=float)
    if xs.ndim != 1 or xs.shape != ys.shape or xs.size == 0:
        raise InvalidInput(f"xs and ys must be 1-D of one length >= 1; got shapes {xs.shape} and {ys.shape}")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise InvalidInput("xs and ys must be finite")
    if np.any(np.diff(xs) <= 0):
        raise InvalidInput(f"xs must be strictly increasing; got {xs.tolist()}")
    x = np.asarray(x, dtype=float)
    out = np.full(x.shape, ys[0])
    slopes = np.diff(ys) / np.diff(xs)
    for k, s in enumerate(slopes):
        out = out + s * (smooth_max(x - xs[k], 0.0, eps) - smooth_max(x - xs[k + 1], 0.0, eps))
    return out


def namespace() -> dict:
    """The globals generated code runs in: numpy as ``np`` and the functions it calls, by name."""
    called = (if_then_else, log, xidz, zidz, quantum, modulo, lookup, data_at, rows, assemble, reduce,
              vector_select, vector_sort_order, vector_rank, vector_reorder, lookup_elements,
              random_normal, random_exponential, smooth_max, smooth_min,
              smooth_abs, smooth_greater, smooth_less, smooth_if, smooth_and, smooth_or, smooth_not,
              smooth_lookup)
    return {"np": np, **{f.__name__: f for f in called}}

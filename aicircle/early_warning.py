"""Early-warning indicators of a critical transition, read from noisy runs.

As a stable state approaches a fold, it recovers ever more slowly from small
perturbations ("critical slowing down"): the fluctuations around its trend
grow (variance) and become more alike from one moment to the next (lag-1
autocorrelation). The usual test (Dakos et al. 2012, PLoS ONE 7: e41010) takes
the series before the transition, removes its trend, computes both indicators
in a rolling window and asks whether they rise, by Kendall's tau of each
indicator against time. This module does that for a batch of runs at once:

- :func:`detrend`: residuals around a Gaussian kernel smoothing;
- :func:`rolling_variance`, :func:`rolling_autocorrelation`: over a window
  that is a fraction of the series;
- :func:`kendall_trend`: Kendall's tau of each run's indicator against time;
- :func:`early_warning`: all of it over the ``span`` before a time (one time
  for every run, or each run's own).

The capital-circle study applies them before the busts of the shipped model
(:func:`aicircle.study.early_warning.capital_circle_study`).

The noisy runs come from ``Model.simulate_batch(..., noise={stock: sigma},
seed=...)``. Series are arrays of shape ``(n_sets, n_times)`` (or
``(n_times,)`` for one run) over increasing ``times``; a NaN or infinite value
is refused, never carried into an indicator.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errors import InvalidInput

__all__ = ["INDICATORS", "detrend", "early_warning", "kendall_trend", "rolling_autocorrelation",
           "rolling_variance"]

INDICATORS = ("variance", "autocorrelation")


def _series(times, x):
    """``times`` as a 1-D increasing array and ``x`` as (n_sets, n_times); checked finite."""
    times = np.asarray(times, dtype=float)
    x = np.asarray(x, dtype=float)
    if times.ndim != 1 or times.size < 3 or not np.all(np.diff(times) > 0):
        raise InvalidInput(f"times must be at least 3 increasing values, got shape {times.shape}")
    if x.ndim not in (1, 2) or x.shape[-1] != times.size:
        raise InvalidInput(f"series must have shape (n_times,) or (n_sets, n_times) with n_times = "
                           f"{times.size}, got {x.shape}")
    _check_finite("series", np.atleast_2d(x), times)
    return times, np.atleast_2d(x)


def _check_finite(what, x, times):
    bad = ~np.isfinite(x)
    if bad.any():
        s, k = np.argwhere(bad)[0]
        raise InvalidInput(f"{what} of set {s} is {x[s, k]} at t={times[k]:g}; early-warning indicators "
                           f"need finite values")


def _like(x, out):
    """``out`` (n_sets, ...) shaped as a single run when ``x`` was one."""
    return out[0] if np.ndim(x) == 1 else out


def detrend(times, x, bandwidth):
    """Residuals of each series around its Gaussian kernel smoothing.

    The trend at ``t`` is the mean of the series weighted by
    ``exp(-(t - s)^2 / (2 bandwidth^2))`` over the saved times ``s``
    (Nadaraya-Watson), so near the ends it leans on one side only.

    Parameters
    ----------
    times : ndarray, shape (n_times,)
        Increasing times, in the model's unit.
    x : ndarray, shape (n_times,) or (n_sets, n_times)
    bandwidth : float
        Standard deviation of the kernel, in the unit of ``times``. Wide
        enough to leave the fluctuations in the residuals, narrow enough to
        take out the slow motion of the state (a few autocorrelation times).

    Returns
    -------
    ndarray, same shape as ``x``
        ``x`` minus its trend.
    """
    times, X = _series(times, x)
    h = float(bandwidth)
    if not (math.isfinite(h) and h > 0):
        raise InvalidInput(f"bandwidth must be a positive time, got {bandwidth!r}")
    d = (times[:, None] - times[None, :]) / h
    weights = np.exp(-0.5 * d * d)
    weights /= weights.sum(axis=1, keepdims=True)
    return _like(x, X - X @ weights.T)


def _windows(x, window):
    """Every window of ``window`` (a fraction of the series) along the last axis: (..., n_windows, w)."""
    n = np.shape(x)[-1]
    frac = float(window)
    if not (0 < frac <= 1):
        raise InvalidInput(f"window must be a fraction of the series in (0, 1], got {window!r}")
    w = int(round(frac * n))
    if w < 4:
        raise InvalidInput(f"a window of {window:g} of {n} points holds {w}; an indicator needs at least 4")
    return np.lib.stride_tricks.sliding_window_view(np.asarray(x, dtype=float), w, axis=-1)


def rolling_variance(x, window):
    """Variance of each series in a rolling window (ddof = 1).

    Parameters
    ----------
    x : ndarray, shape (n_times,) or (n_sets, n_times)
        Usually the residuals of :func:`detrend`.
    window : float
        Length of the window as a fraction of the series, in (0, 1]
        (``round(window * n_times)`` points, at least 4).

    Returns
    -------
    ndarray, shape (..., n_times - w + 1)
        One value per window, labelled by its last point: entry ``i`` belongs
        to ``times[w - 1 + i]``.
    """
    return _windows(x, window).var(axis=-1, ddof=1)


def rolling_autocorrelation(x, window, lag=1):
    """Lag-``lag`` autocorrelation of each series in a rolling window.

    Within each window, the Pearson correlation of the series with itself
    ``lag`` saved points later (as ``pandas.Series.autocorr``), so its value
    depends on the spacing of the saved times.

    Parameters
    ----------
    x, window
        As in :func:`rolling_variance`.
    lag : int
        In saved points.

    Returns
    -------
    ndarray, shape (..., n_times - w + 1)
        Labelled as in :func:`rolling_variance`.

    Raises
    ------
    InvalidInput
        A window in which the series is constant (its autocorrelation is undefined).
    """
    views = _windows(x, window)
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or not 1 <= lag <= views.shape[-1] - 3:
        raise InvalidInput(f"lag must be a whole number of saved points from 1 to {views.shape[-1] - 3}, "
                           f"got {lag!r}")
    a = views[..., :-lag]
    b = views[..., lag:]
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    scale = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    if np.any(scale == 0):
        raise InvalidInput("the series is constant within a window: its autocorrelation is undefined")
    return (a * b).sum(axis=-1) / scale


def kendall_trend(indicator):
    """Kendall's tau of each indicator series against time (its order), shape (n_sets,) or scalar.

    Positive when the indicator tends to rise. ``scipy.stats.kendalltau``,
    variant b.

    Raises
    ------
    InvalidInput
        A constant indicator (tau is undefined) or a non-finite value.
    """
    from scipy.stats import kendalltau

    y = np.atleast_2d(np.asarray(indicator, dtype=float))
    _check_finite("indicator", y, np.arange(y.shape[-1], dtype=float))
    if y.shape[-1] < 3:
        raise InvalidInput(f"a trend needs at least 3 values of the indicator, got {y.shape[-1]}")
    if np.any(np.ptp(y, axis=-1) == 0):
        raise InvalidInput("an indicator is constant: its trend (Kendall's tau) is undefined")
    order = np.broadcast_to(np.arange(y.shape[-1], dtype=float), y.shape)
    tau = np.asarray(kendalltau(order, y, axis=-1).statistic, dtype=float)
    return _like(indicator, tau)


def early_warning(times, x, end, span, bandwidth, window=0.5):
    """Trends of the early-warning indicators over the ``span`` before ``end``, for each run.

    Each run's series over ``(end - span, end]`` is detrended
    (:func:`detrend`), its rolling variance and lag-1 autocorrelation are
    computed (:func:`rolling_variance`, :func:`rolling_autocorrelation`), and
    the trend of each is Kendall's tau against time (:func:`kendall_trend`).

    Parameters
    ----------
    times : ndarray, shape (n_times,)
        Equally spaced saved times.
    x : ndarray, shape (n_times,) or (n_sets, n_times)
    end : float or ndarray, shape (n_sets,)
        Time at which each run's segment ends (e.g. the time of its tipping
        point); the segment is the ``round(span / step)`` saved times up to the
        last one at or before ``end``.
    span : float
        Length of the segment, in the unit of ``times``.
    bandwidth : float or None
        Of the detrending kernel (:func:`detrend`); None takes ``x`` as
        residuals already (e.g. a noisy run minus its noise-free twin).
    window : float
        Of the rolling indicators, as a fraction of the segment.

    Returns
    -------
    pandas.DataFrame
        One row per run: ``tau_variance``, ``tau_autocorrelation``, and
        ``start``, ``end`` (the first and last saved time of the segment).
    """
    times, X = _series(times, x)
    step = np.diff(times)
    if not np.allclose(step, step[0], rtol=1e-6, atol=0):
        raise InvalidInput("early_warning needs equally spaced times")
    step = float(step[0])
    ends = np.broadcast_to(np.asarray(end, dtype=float), (X.shape[0],))
    if not np.all(np.isfinite(ends)):
        raise InvalidInput("every run needs a finite end time for its segment")
    m = int(round(float(span) / step))
    last = np.searchsorted(times, ends + 1e-9 * step, side="right") - 1
    first = last - m + 1
    if m < 3 or np.any(first < 0) or np.any(ends > times[-1] + 1e-9 * step):
        raise InvalidInput(f"a span of {span:g} before end times {np.min(ends):g} to {np.max(ends):g} does "
                           f"not fit in the run ({times[0]:g} to {times[-1]:g}, step {step:g})")
    index = first[:, None] + np.arange(m)[None, :]
    segments = np.take_along_axis(X, index, axis=1)
    residuals = segments if bandwidth is None else detrend(times[:m] - times[0], segments, bandwidth)
    return pd.DataFrame({"tau_variance": kendall_trend(rolling_variance(residuals, window)),
                         "tau_autocorrelation": kendall_trend(rolling_autocorrelation(residuals, window)),
                         "start": times[first], "end": times[last]})

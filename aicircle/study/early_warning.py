"""The capital-circle study's early warning: do the indicators announce its busts?

:func:`capital_circle_study` runs the toolkit's indicators
(:mod:`aicircle.early_warning`) on noisy runs of the capital-circle model on
both sides of a tipping point, before the busts and over the same years of
runs that do not bust.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import _resources
from ..calibrate import read_parameters
from ..early_warning import INDICATORS, early_warning
from ..errors import InvalidInput
from ..model import load
from .ensemble import wilson_interval
from .outcomes import ECONOMIC, FORECAST_START

__all__ = ["capital_circle_study"]


#: The shipped calibration's one change in the study's default runs: the lab's restructuring starts at
#: half a year of overdue bills instead of a quarter, so that one side of the tip does not bust.
LATE_RESTRUCTURING = {"Payables Limit": 0.5}


def capital_circle_study(model=None, params=None, *, parameter="Cancellation Threshold", tipping=2.6,
                         stable=2.9, noise=None, variables=("Investor Confidence", "Total AI Capex"), n_runs=200,
                         span=5.0, bandwidth=1.0, detrending="kernel", window=0.5, saveper=1 / 16, seed=0,
                         classifier=None, progress=False):
    """Do early-warning indicators announce the capital circle's busts? Noisy runs on both sides of a tip.

    ``n_runs`` noisy runs at ``parameter = tipping`` (a value at which the
    noise-free model busts) and ``n_runs`` at ``parameter = stable`` (one at
    which it does not), in one batch, each with its own noise. A run at the
    tipping value that busts (``classifier``'s first bust after
    :data:`aicircle.study.outcomes.FORECAST_START`) is a **tipping** run, its segment
    the ``span`` years before its bust; a run at the stable value that never
    busts is a **non-tipping** run, its segment the same years as a tipping
    run's (the ``j``-th non-tipping run takes the bust time of the ``j``-th
    tipping run, cycling). Runs that do neither are counted and left out. For
    each of ``variables`` and each indicator, :func:`early_warning` gives a
    Kendall tau per run; the summary is the share of runs with tau > 0 in each
    group, with its 95% Wilson interval. An indicator warns if that share is
    high in the tipping runs and clearly lower in the non-tipping ones.

    With the shipped calibration and ``Payables Limit`` 0.25 (the model's
    value) the lab's restructuring of 2033-2034 is itself a bust at every
    ``Cancellation Threshold`` of its declared range 1 to 3: no side of the
    tip stays calm. By default the study therefore sets the restructuring off
    later (:data:`LATE_RESTRUCTURING`, within the limit's declared range
    [0.1, 1]); then the noise-free model busts (by 2032.75) for every
    ``Cancellation Threshold`` up to 2.75 and at none of 2.8, 2.9 and 3.0, and
    the defaults sit on both sides. What differs
    between the two sides is whether the cancelled contracts are written off
    on the scale of a bust.

    Parameters
    ----------
    model : aicircle.Model, optional
        The capital-circle model; by default the shipped one.
    params : dict, optional
        Parameter values for every run; by default, for the shipped model, the
        shipped calibration (``calibration/results/parameters.csv``) with
        :data:`LATE_RESTRUCTURING`.
    parameter : str
        The parameter that decides the outcome.
    tipping, stable : float
        Its value in the runs that bust and in those that do not.
    noise : dict, optional
        Stock name -> sigma (per sqrt(year)), additive white noise; by default
        ``{"Investor Confidence": 0.02}``, whose stationary spread (sigma
        times the square root of half the confidence adjustment time, 0.71
        years) is about 0.012, next to a confidence between 0.06 and 0.98.
    variables : tuple of str
        Model variables whose indicators are computed.
    n_runs : int
        Noisy runs at each of the two values.
    span : float
        Years of each run before its (or its partner's) bust.
    bandwidth : float
        Of the detrending kernel, in years (:func:`detrend`).
    detrending : {"kernel", "noise-free"}
        ``kernel``: residuals around a Gaussian kernel smoothing, as one would
        treat observed data. ``noise-free``: residuals around the run without
        noise at the same parameter value, which removes the trend exactly
        (only a model can do this); the two together tell a rise in the
        fluctuations from trend left in the residuals.
    window : float
        Of the rolling indicators, as a fraction of the span.
    saveper : float
        Spacing of the saved times, in years: the lag of the autocorrelation.
    seed : int
        Of the noise.
    classifier : aicircle.tipping.Classifier, optional
        What a bust is; :data:`aicircle.study.outcomes.ECONOMIC` by default.
    progress : bool
        Show a progress bar over the batch.

    Returns
    -------
    summary : pandas.DataFrame
        Index (``variable``, ``indicator``, ``group``) with ``group`` in
        ``tipping, non-tipping``; columns ``n`` (runs), ``rising`` (runs with
        tau > 0), ``share``, ``lo``, ``hi`` (its 95% Wilson interval) and
        ``median_tau``.
    runs : pandas.DataFrame
        One row per run: ``value`` (of ``parameter``), ``group`` (``tipping``,
        ``non-tipping``, or ``left out``), ``first_bust`` (year or NaN),
        ``end`` (of its segment, NaN if left out) and ``tau <indicator> |
        <variable>`` for each variable and indicator.

    Examples
    --------
    >>> summary, runs = capital_circle_study(n_runs=200)  # doctest: +SKIP
    >>> summary.loc[("Investor Confidence", "variance"), "share"]  # doctest: +SKIP
    """
    if model is None:
        model = load(_resources.shipped_model())
        if params is None:
            params = {**read_parameters(_resources.shipped_parameters()), **LATE_RESTRUCTURING}
    params = {k: v for k, v in (params or {}).items() if k in model.parameters.index}
    classifier = classifier or ECONOMIC
    noise = {"Investor Confidence": 0.02} if noise is None else noise
    if isinstance(n_runs, bool) or not isinstance(n_runs, (int, np.integer)) or n_runs < 1:
        raise InvalidInput(f"n_runs must be a positive whole number, got {n_runs!r}")
    if detrending not in ("kernel", "noise-free"):
        raise InvalidInput(f"detrending must be 'kernel' or 'noise-free', got {detrending!r}")
    parameter = model.resolve(parameter)
    values = np.repeat([float(tipping), float(stable)], n_runs)
    table = pd.DataFrame({**{k: np.full(values.size, float(v)) for k, v in params.items() if k != parameter},
                          parameter: values})
    judged = [model.resolve(v) for v in classifier.variables]
    variables = [model.resolve(v) for v in variables]
    columns = list(dict.fromkeys(judged + variables))
    batch = model.simulate_batch(table, return_columns=columns, saveper=saveper, allow_nonfinite=False,
                                 noise=noise, seed=seed, progress=progress)
    times = batch["time"].to_numpy()
    series = {name: batch[name].to_numpy() for name in variables}
    if detrending == "noise-free":
        twins = model.simulate_batch(table.iloc[[0, n_runs]], return_columns=columns, saveper=saveper,
                                     allow_nonfinite=False)
        for name in variables:
            series[name] = series[name] - np.repeat(twins[name].to_numpy(), n_runs, axis=0)
        bandwidth = None
    first = classifier.first_bust(times, [batch[c].to_numpy() for c in judged], start=FORECAST_START)
    at_tipping = np.arange(values.size) < n_runs
    tips = at_tipping & np.isfinite(first)
    calm = ~at_tipping & np.isnan(first)
    runs = pd.DataFrame({"value": values, "group": "left out", "first_bust": first, "end": np.nan})
    runs.loc[tips, "group"] = "tipping"
    runs.loc[calm, "group"] = "non-tipping"
    if tips.any():
        runs.loc[tips, "end"] = first[tips]
        runs.loc[calm, "end"] = np.resize(first[tips], int(calm.sum()))
    chosen = tips | calm
    rows = []
    for name in variables:
        taus = early_warning(times, series[name][chosen], runs["end"].to_numpy()[chosen], span, bandwidth,
                             window) if tips.any() else None
        for indicator in INDICATORS:
            column = f"tau {indicator} | {name}"
            runs[column] = np.nan
            if taus is not None:
                runs.loc[chosen, column] = taus[f"tau_{indicator}"].to_numpy()
            for group in ("tipping", "non-tipping"):
                tau = runs.loc[runs["group"] == group, column].to_numpy()
                rising = int(np.sum(tau > 0))
                lo, hi = wilson_interval(rising, tau.size)
                rows.append({"variable": name, "indicator": indicator, "group": group, "n": tau.size,
                             "rising": rising, "share": rising / tau.size if tau.size else math.nan,
                             "lo": lo, "hi": hi,
                             "median_tau": float(np.median(tau)) if tau.size else math.nan})
    summary = pd.DataFrame(rows).set_index(["variable", "indicator", "group"])
    return summary, runs

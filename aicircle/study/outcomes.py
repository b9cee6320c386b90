"""The capital-circle study's outcomes: what a bust is, when the forecast starts, what it reads.

The generic tools (:mod:`aicircle.tipping`, :mod:`aicircle.sensitivity`,
:mod:`aicircle.calibrate`) work on any model; this module holds what is
specific to the capital-circle model of ``models/aicircle.mdl``:

- each run's **outcomes in money** (:func:`outcome_metrics`): realised capital
  losses (stranded capacity at the market price, builders' defaults, the
  lab's bills written off) apart from the revenue lost with cancelled
  contracts for capacity never built; the lab's funding gap and failure; the
  falls of AI capex and of the lab's valuation (docs/model.md, *Outcomes in
  money*);
- the **classifiers** of a run's outcome, each filling the toolkit's outcome
  protocol :class:`aicircle.tipping.Classifier`. The default, the bust rule
  :data:`CAPITAL_LOSS`, is judged over a window (it is not absorbing): a
  **bust** while the capital losses realised over two years exceed a tenth
  of the AI capital stock at its largest since the forecast start; a
  **boom** when AI capex and end-use AI revenue both grow; otherwise a
  **soft landing**. Two earlier definitions are kept as named alternatives
  for comparison: :data:`ECONOMIC` (returns below the cost of capital while
  capex and utilisation fall, or write-offs — cancelled backlog included —
  above a tenth of a year's capex, which a bust has already cut) and
  :data:`CONFIDENCE`, the first (confidence below 0.2 or capex below half its
  running peak, absorbing; flags before the forecast start are history and
  do not count);
- the horizons of the study and the time its forecast starts (the data end
  on 2025-09-30), and the names the study reads (:func:`missing_names`: does
  a model carry the study?).

What the data say about the future (the predictive ensemble, bust
probabilities, structural alternatives) is in :mod:`aicircle.study.ensemble`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .. import tipping
from ..errors import InvalidInput, UnknownName
from ..observables import index_at

__all__ = [
    "BIFURCATION_PARAM", "BIFURCATION_RANGE", "BIFURCATION_YEARS", "BOOM", "BUST", "BustClassifier", "CAPITAL_LOSS",
    "CLASSIFIERS", "CONFIDENCE", "CapitalLossClassifier", "ECONOMIC", "FIRM_TARGET_IDS", "FORECAST_START",
    "HORIZONS", "KEY_OUTPUTS", "METRICS", "METRIC_VARIABLES", "REDUCED_CORE", "SHOCK_DRIVERS", "SOFT", "classifier",
    "default_classifier", "lab_failure", "loss_paths", "missing_names", "outcome_metrics", "study_names",
]

BUST, BOOM, SOFT = "bust", "boom", "soft landing"
HORIZONS = (2030.0, 2035.0)
#: The targets end on 2025-09-30: a bust "by" a year is one that happens after this.
FORECAST_START = 2025.75


def _at(times, values, t):
    """Each run's value at time ``t`` (linear interpolation; held beyond the run), shape (n_sets,)."""
    return np.array([np.interp(t, times, row) for row in np.atleast_2d(values)])


def _lagged(times, values, lag):
    """``values`` shifted by ``lag`` in time (the first value held before the run), same shape."""
    values = np.atleast_2d(values)
    return np.stack([np.interp(times - lag, times, row) for row in values])


def _window_mean(times, values, window):
    """Mean of each run over ``[t - window, t]`` at every saved time (trapezoid), same shape."""
    values = np.atleast_2d(values)
    steps = np.diff(times)
    cum = np.concatenate([np.zeros((values.shape[0], 1)),
                          np.cumsum((values[:, 1:] + values[:, :-1]) / 2 * steps, axis=1)], axis=1)
    lagged = np.stack([np.interp(times - window, times, row) for row in cum])
    span = np.minimum(window, times - times[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(span > 0, (cum - lagged) / np.where(span > 0, span, 1), values)


@dataclasses.dataclass(frozen=True)
class BustClassifier:
    """A definition of the capital circle's outcomes (bust, boom, soft landing).

    It fills the toolkit's outcome protocol, :class:`aicircle.tipping.Classifier`.

    Attributes
    ----------
    name : str
    variables : tuple of str
        Model variables the definition reads, in the order ``flags`` and
        ``labels`` take them.
    description : str
        The definition in words (for reports).
    """

    name: str
    variables: tuple
    description: str

    def applies_to(self, model) -> bool:
        """Whether ``model`` defines every variable the definition reads."""
        return tipping.applies_to(self, model)

    def flags(self, times, values) -> np.ndarray:
        """Whether each run is in a bust at each saved time, shape (n_sets, n_times)."""
        raise NotImplementedError

    def booming(self, times, values) -> np.ndarray:
        """Whether each run is booming at each saved time, shape (n_sets, n_times)."""
        raise NotImplementedError

    def labels(self, times, values, horizon) -> np.ndarray:
        """The outcome of each run at ``horizon``: 'bust', 'boom' or 'soft landing'."""
        times = np.asarray(times, float)
        h = index_at(times, horizon)
        bust = self.flags(times, values)[:, h]
        boom = self.booming(times, values)[:, h]
        return np.where(bust, BUST, np.where(boom, BOOM, SOFT))

    def first_bust(self, times, values, start=None) -> np.ndarray:
        """Time of each run's first bust at or after ``start`` (NaN if none), shape (n_sets,)."""
        times = np.asarray(times, float)
        flags = self.flags(times, values) & (times >= (times[0] if start is None else start) - 1e-9)[None]
        first = np.argmax(flags, axis=1)
        return np.where(flags.any(axis=1), times[first], np.nan)


@dataclasses.dataclass(frozen=True)
class EconomicClassifier(BustClassifier):
    """Bust: returns below the cost of capital while AI capex and utilisation fall, or impairments.

    Judged at every time ``t`` over the window ``[t - window, t]``:

    - **bust** if the mean realised ``Return on AI Capital`` is below the mean
      ``Cost of Capital`` while ``Total AI Capex`` and ``AI Utilisation`` are both
      lower at ``t`` than at ``t - window``; or if the ``AI Write Offs``
      (cancelled contracts not paid for, builders' debt written off) of the
      window exceed ``impairment_share`` of its AI capex;
    - **boom** if not a bust and ``Total AI Capex`` and ``End Use AI Revenue`` are
      both higher at ``t`` than at ``t - window``;
    - a **soft landing** otherwise.
    """

    window: float = 1.0
    impairment_share: float = 0.1

    def _parts(self, times, values):
        ret, cost, capex, util, imp, revenue = (np.atleast_2d(v) for v in values)
        return ret, cost, capex, util, imp, revenue

    def causes(self, times, values):
        """The two ways a run is in a bust at each time, ``{"idle capital": ..., "write-offs": ...}``.

        Each is a boolean array (n_sets, n_times); :meth:`flags` is their union.
        """
        times = np.asarray(times, float)
        ret, cost, capex, util, imp, _ = self._parts(times, values)
        w = self.window
        losing = _window_mean(times, ret - cost, w) < 0
        falling = (capex < _lagged(times, capex, w)) & (util < _lagged(times, util, w) - 1e-9)
        written_off = _window_mean(times, imp, w) > self.impairment_share * _window_mean(times, capex, w)
        return {"idle capital": losing & falling, "write-offs": written_off}

    def flags(self, times, values):
        causes = self.causes(times, values)
        return causes["idle capital"] | causes["write-offs"]

    def booming(self, times, values):
        times = np.asarray(times, float)
        _, _, capex, _, _, revenue = self._parts(times, values)
        w = self.window
        return (capex > _lagged(times, capex, w)) & (revenue > _lagged(times, revenue, w))


@dataclasses.dataclass(frozen=True)
class ConfidenceClassifier(BustClassifier):
    """The first classifier: confidence < 0.2 or capex < half its running peak, ever after the
    forecast starts (absorbing).

    Events before ``start`` (the data's cut-off) are history, not a forecast: the
    2020 confidence dip, which the calibrated history passes through, must not
    make every run a bust from the first day of the forecast.
    """

    floor: float = 0.2
    drop: float = 0.5
    reference_time: float = 2025.0
    start: float = FORECAST_START

    def flags(self, times, values):
        times = np.asarray(times, float)
        confidence, capex = (np.atleast_2d(v) for v in values)
        peak = np.maximum.accumulate(capex, axis=1)
        event = ((confidence < self.floor) | (capex < self.drop * peak)) & (times >= self.start - 1e-9)[None]
        return np.logical_or.accumulate(event, axis=1)

    def booming(self, times, values):
        times = np.asarray(times, float)
        _, capex = (np.atleast_2d(v) for v in values)
        ref = _at(times, capex, self.reference_time) if times[0] <= self.reference_time <= times[-1] \
            else capex[:, 0]
        return capex > ref[:, None]


# --------------------------------------------------------------------------
# outcomes in money
# --------------------------------------------------------------------------

#: The variables :func:`outcome_metrics` reads (constants among them: they vary across an ensemble).
METRIC_VARIABLES = (
    "Total AI Capacity GW", "AI Utilisation", "Compute Price per GW", "Reference Compute Price",
    "Target Utilisation", "Cost per GW", "Capacity Life", "AI Capital Stock", "Builder Defaults",
    "Payables Written Off", "Commitment Impairments", "Restructuring Contract Cuts", "Lab Desired Outflows",
    "Lab Payables to Builders", "Payables Repayment Time", "Lab Payment Fraction", "Lab Excess Payables",
    "Total AI Capex", "Lab Valuation", "End Use AI Revenue")
#: Overdue bills beyond the builders' limit at which the lab counts as failed (in restructuring), $B:
#: a rounding margin above zero.
FAILURE_PAYABLES = 1e-6
#: The metrics of :func:`outcome_metrics`, with their units.
METRICS = {
    "realised loss": "$B", "stranded capital": "$B", "builder defaults": "$B", "bills written off": "$B",
    "lost revenue": "$B", "cancelled backlog": "$B", "backlog cut in restructuring": "$B",
    "peak AI capital": "$B", "loss share": "fraction", "worst loss share": "fraction", "capital bust": "bool",
    "capital bust at": "year", "lab funding gap": "$B", "lab fails": "bool", "lab fails at": "year",
    "AI capex fall": "fraction", "lab valuation drawdown": "fraction",
}


def _values(names, values):
    """``values`` (a mapping by name, or a sequence in the order of ``names``) as {name: 2-D array}."""
    if isinstance(values, dict):
        missing = [n for n in names if n not in values]
        if missing:
            raise InvalidInput(f"the outcome metrics need {', '.join(missing)}")
        return {n: np.atleast_2d(np.asarray(values[n], float)) for n in names}
    values = list(values)
    if len(values) != len(names):
        raise InvalidInput(f"expected {len(names)} arrays ({', '.join(names)}), got {len(values)}")
    return {n: np.atleast_2d(np.asarray(v, float)) for n, v in zip(names, values)}


def _since(times, flow, start):
    """The integral of ``flow`` from ``start`` to every saved time (0 up to ``start``; trapezoid over
    the saved intervals that begin at or after ``start``)."""
    flow = np.atleast_2d(flow)
    after = times >= start - 1e-9
    steps = np.diff(times) * after[:-1]
    return np.concatenate([np.zeros((flow.shape[0], 1)),
                           np.cumsum((flow[:, 1:] + flow[:, :-1]) / 2 * steps, axis=1)], axis=1)


def _peak_since(times, x, start):
    """The running maximum of ``x`` from ``start`` on (the value at ``start`` before it)."""
    x = np.atleast_2d(x)
    i0 = int(np.searchsorted(times, start - 1e-9))
    held = np.where((times >= start - 1e-9)[None], x, x[:, [min(i0, x.shape[1] - 1)]])
    return np.maximum.accumulate(held, axis=1)


def _drawdown(times, x, start):
    """The largest fall from a running peak since ``start`` at every saved time (0..1)."""
    x = np.atleast_2d(x)
    peak = _peak_since(times, x, start)
    with np.errstate(invalid="ignore", divide="ignore"):
        fall = np.where(peak > 0, 1 - x / np.where(peak > 0, peak, 1), 0.0)
    fall = np.where((times >= start - 1e-9)[None], fall, 0.0)
    return np.maximum.accumulate(np.clip(fall, 0, 1), axis=1)


def loss_paths(times, values, start=FORECAST_START) -> dict:
    """The realised capital losses and the lost revenue since ``start``, at every saved time.

    Parameters
    ----------
    times : ndarray, shape (n_times,), years
    values : mapping
        Every variable of :data:`METRIC_VARIABLES`, each an array (n_sets, n_times).
    start : float, years
        When the counting starts (the forecast start).

    Returns
    -------
    dict of ndarray, shape (n_sets, n_times), $B (``loss share``: a fraction)
        Cumulative since ``start``:

        - ``stranded capital``: the part of the installed capacity's depreciation
          (its cost per GW over its life) that its earnings at the market price
          do not pay for. A GW earns its keep at the reference price when it is
          used at the target utilisation (the price and the headroom the
          planners count on); earning a share ``r`` of that, idle or re-let
          below its price, loses ``1 - r`` of the capital it uses up. A GW idle
          over its whole life loses its whole cost;
        - ``builder defaults``: the builders' debt written off;
        - ``bills written off``: the lab's unpaid bills cut in its restructuring;
        - ``realised loss``: their sum (capital someone books as lost);
        - ``cancelled backlog`` (contracts cancelled, less the fees paid) and
          ``backlog cut in restructuring``, together ``lost revenue``: orders
          for capacity never built. Where capacity was built for them, its
          loss is in ``stranded capital`` once it stands idle;
        - ``peak AI capital``: the AI capital stock (built and being built, at
          cost) at its largest since ``start``, the size of the industry;
        - ``loss share``: ``realised loss`` over ``peak AI capital``.
    """
    times = np.asarray(times, float)
    v = _values(METRIC_VARIABLES, values)
    capacity, cost, life = v["Total AI Capacity GW"], v["Cost per GW"], v["Capacity Life"]
    earning = v["AI Utilisation"] * v["Compute Price per GW"] / (v["Reference Compute Price"] * v["Target Utilisation"])
    shortfall = capacity * cost / life * np.clip(1 - earning, 0, 1)
    out = {"stranded capital": _since(times, shortfall, start),
           "builder defaults": _since(times, v["Builder Defaults"], start),
           "bills written off": _since(times, v["Payables Written Off"], start),
           "cancelled backlog": _since(times, v["Commitment Impairments"], start),
           "backlog cut in restructuring": _since(times, v["Restructuring Contract Cuts"], start)}
    out["realised loss"] = out["stranded capital"] + out["builder defaults"] + out["bills written off"]
    out["lost revenue"] = out["cancelled backlog"] + out["backlog cut in restructuring"]
    out["peak AI capital"] = _peak_since(times, v["AI Capital Stock"], start)
    out["loss share"] = out["realised loss"] / np.maximum(out["peak AI capital"], 1e-9)
    return out


def window_loss_share(times, realised, peak_capital, window):
    """Losses over ``[t - window, t]`` over the industry's largest size so far, at every saved time ``t``.

    Parameters
    ----------
    times : ndarray, shape (n_times,), years
    realised : ndarray, shape (n_sets, n_times)
        Cumulative realised losses ($B).
    peak_capital : ndarray, shape (n_sets, n_times)
        The capital stock at its largest so far ($B): a stock that a bust has
        shrunk does not inflate the share.
    window : float, years

    Returns
    -------
    ndarray, shape (n_sets, n_times), a fraction
    """
    times = np.asarray(times, float)
    realised, peak_capital = np.atleast_2d(realised), np.atleast_2d(peak_capital)
    before = times - window
    # each row of ``realised`` at ``before`` (linear between saved times, held before the first)
    k = np.clip(np.searchsorted(times, before, side="right"), 1, len(times) - 1)
    w = np.clip((before - times[k - 1]) / (times[k] - times[k - 1]), 0, 1)
    lagged = realised[:, k - 1] * (1 - w) + realised[:, k] * w
    return (realised - lagged) / np.maximum(peak_capital, 1e-9)


def lab_failure(times, values, start=FORECAST_START) -> np.ndarray:
    """Whether the lab has failed by each saved time since ``start``: its overdue bills exceeded what
    the builders tolerate, which forces its restructuring. Shape (n_sets, n_times)."""
    times = np.asarray(times, float)
    excess = np.atleast_2d(np.asarray(values["Lab Excess Payables"], float))
    event = (excess > FAILURE_PAYABLES) & (times >= start - 1e-9)[None]
    return np.logical_or.accumulate(event, axis=1)


def outcome_metrics(times, values, horizon, start=FORECAST_START, rule=None) -> pd.DataFrame:
    """Each run's outcome in money between ``start`` and ``horizon`` (vectorised over a batch).

    Parameters
    ----------
    times : ndarray, shape (n_times,), years
    values : mapping
        Every variable of :data:`METRIC_VARIABLES`, each an array (n_sets, n_times)
        (a batch's output, e.g. :func:`aicircle.sensitivity.run_ensemble`).
    horizon : float, years
    start : float, years
        The forecast start: nothing before it counts.
    rule : CapitalLossClassifier, optional
        The bust rule (:data:`CAPITAL_LOSS` by default).

    Returns
    -------
    pandas.DataFrame
        One row per run, the columns of :data:`METRICS`: the losses of
        :func:`loss_paths` at the horizon ($B; ``loss share`` a fraction of the
        peak AI capital), ``worst loss share`` (the rule's windowed share at its
        largest since ``start``), ``capital bust`` and ``capital bust at``
        (whether and when the rule calls a bust: the worst share above the
        rule's), ``lab funding gap`` (the lab's new bills it could not
        pay since ``start``: compute, other costs and fees, $B), ``lab fails``
        and ``lab fails at`` (:func:`lab_failure`; the year, NaN if it does
        not), ``AI capex fall`` and ``lab valuation drawdown`` (the largest fall
        from a running peak since ``start``, a fraction).
    """
    times = np.asarray(times, float)
    v = _values(METRIC_VARIABLES, values)
    h = index_at(times, horizon)
    if not start <= times[h] + 1e-9:
        raise InvalidInput(f"horizon {horizon:g} is before the forecast start {start:g}")
    losses = loss_paths(times, v, start)
    out = {name: path[:, h] for name, path in losses.items()}
    rule = CAPITAL_LOSS if rule is None else rule
    shares = np.where((times >= start - 1e-9)[None], rule.loss_share(times, v, losses), 0.0)[:, :h + 1]
    out["worst loss share"] = shares.max(axis=1)
    out["capital bust"] = out["worst loss share"] > rule.share
    busts = shares > rule.share
    out["capital bust at"] = np.where(busts.any(axis=1), times[np.argmax(busts, axis=1)], np.nan)
    new_bills = v["Lab Desired Outflows"] - v["Lab Payables to Builders"] / v["Payables Repayment Time"]
    out["lab funding gap"] = _since(times, np.maximum(0, new_bills) * (1 - v["Lab Payment Fraction"]), start)[:, h]
    failed = lab_failure(times, v, start)[:, :h + 1]
    out["lab fails"] = failed[:, -1]
    out["lab fails at"] = np.where(failed.any(axis=1), times[np.argmax(failed, axis=1)], np.nan)
    out["AI capex fall"] = _drawdown(times, v["Total AI Capex"], start)[:, h]
    out["lab valuation drawdown"] = _drawdown(times, v["Lab Valuation"], start)[:, h]
    return pd.DataFrame(out)[list(METRICS)]


@dataclasses.dataclass(frozen=True)
class CapitalLossClassifier(BustClassifier):
    """Bust: capital losses realised over a window above a share of the AI capital stock.

    Judged at every time ``t`` over ``[t - window, t]`` (from the forecast
    start on): the losses are :func:`loss_paths`' ``realised loss`` (stranded
    capital, builders' defaults, the lab's bills written off: never the
    cancelled backlog of capacity that was not built, which is lost revenue);
    the industry's size is the AI capital stock at its largest since the
    start, never the capex of a year, which a bust has already cut. A run is in a
    **bust** while the window's losses exceed ``share`` of it (a bust ends when
    the losses stop); a **boom** when AI capex and end-use AI revenue both
    grow over the year to ``t``; a soft landing otherwise.
    """

    share: float = 0.1
    window: float = 2.0
    start: float = FORECAST_START

    def loss_share(self, times, values, losses=None):
        """The window's realised losses over its largest AI capital stock, shape (n_sets, n_times)."""
        times = np.asarray(times, float)
        v = _values(self.variables, values)
        losses = loss_paths(times, v, self.start) if losses is None else losses
        return window_loss_share(times, losses["realised loss"], losses["peak AI capital"], self.window)

    def flags(self, times, values):
        return self.loss_share(times, values) > self.share

    def booming(self, times, values):
        times = np.asarray(times, float)
        v = _values(self.variables, values)
        capex, revenue = v["Total AI Capex"], v["End Use AI Revenue"]
        return (capex > _lagged(times, capex, 1.0)) & (revenue > _lagged(times, revenue, 1.0))


ECONOMIC = EconomicClassifier(
    "economic",
    ("Return on AI Capital", "Cost of Capital", "Total AI Capex", "AI Utilisation", "AI Write Offs",
     "End Use AI Revenue"),
    "a bust when, over the year to the horizon, the realised return on AI capital is below the cost "
    "of capital while AI capex (the hyperscalers' and the builders') and utilisation both fall, or when "
    "cancelled compute contracts and builders' debt are written off on a scale of a tenth of AI capex; a "
    "boom when AI capex and end-use AI revenue both grow over that year; a soft landing otherwise")
CONFIDENCE = ConfidenceClassifier(
    "confidence",
    ("Investor Confidence", "Hyperscaler Capex"),
    "a bust once confidence has fallen below 0.2 or capex below half its running peak at any time "
    "between the forecast start (October 2025) and the horizon (absorbing); a boom if capex at the "
    "horizon is above its 2025 level")
CAPITAL_LOSS = CapitalLossClassifier(
    "capital loss",
    METRIC_VARIABLES,
    "a bust while the capital losses realised over the two years to a time (from October 2025 on) — built "
    "capacity that stands idle or earns less than its cost at the market price of compute, builders' debt "
    "in default and the lab's unpaid bills written off — exceed a tenth of the AI capital stock at its "
    "largest since October 2025; cancelled contracts for capacity never built are lost revenue, not lost "
    "capital; a boom when AI capex and end-use AI revenue both grow over the year to the horizon; a "
    "soft landing otherwise")
CLASSIFIERS = {c.name: c for c in (CAPITAL_LOSS, ECONOMIC, CONFIDENCE)}


#: What the study reports besides the classifiers' variables: outputs with their units, the
#: scenario shocks whose thresholds are always reported (parameter, range, meaning), the
#: reduced core continued in one parameter, and the article's firm figures among the targets.
KEY_OUTPUTS = {"Lab Revenue": "$B/Year", "Total AI Capex": "$B/Year", "Investor Confidence": "fraction",
               "Return on AI Capital": "1/Year"}
SHOCK_DRIVERS = (
    ("Open Model Price Shock Size", (0.0, 0.8), "revenue per user lost to open-model price competition (B4)"),
    ("Confidence Shock Size", (0.0, 0.95), "share of investor confidence lost in a shock"),
)
#: The reduced autonomous core continued: fast stocks free, every other stock frozen.
REDUCED_CORE = ("Investor Confidence", "Perceived Growth")
BIFURCATION_PARAM, BIFURCATION_RANGE = "Crowd Weight", (0.5, 8.0)
BIFURCATION_YEARS = (2025.0, 2030.0)
FIRM_TARGET_IDS = ("oai_rev_h1_2025", "oai_rd_h1_2025", "oai_val_2025_09", "cloud_growth_2024q4",
                   "vc_ai_share_2025q1")


def study_names() -> list:
    """Every model name the capital-circle study reads."""
    return list(dict.fromkeys([*METRIC_VARIABLES, *ECONOMIC.variables, *CONFIDENCE.variables, *KEY_OUTPUTS,
                               *(name for name, _, _ in SHOCK_DRIVERS), *REDUCED_CORE, BIFURCATION_PARAM]))


def missing_names(model) -> list:
    """The names of :func:`study_names` that ``model`` does not define (empty: the study applies)."""
    out = []
    for name in study_names():
        try:
            model.resolve(name)
        except UnknownName:
            out.append(name)
    return out


def default_classifier(model):
    """The bust rule (:data:`CAPITAL_LOSS`) where ``model`` defines its variables, else the economic
    definition, else the first one, else None."""
    for candidate in (CAPITAL_LOSS, ECONOMIC, CONFIDENCE):
        if candidate.applies_to(model):
            return candidate
    return None


def classifier(name):
    """A classifier by name ('capital loss' or 'capital-loss', 'economic', 'confidence')."""
    try:
        return CLASSIFIERS[" ".join(str(name).strip().lower().replace("-", " ").replace("_", " ").split())]
    except KeyError:
        raise InvalidInput(f"unknown classifier '{name}'; known: {', '.join(CLASSIFIERS)}") from None

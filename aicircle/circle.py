"""The capital-circle study: what a bust is, when the forecast starts, what decides the future.

The generic tools (:mod:`aicircle.tipping`, :mod:`aicircle.sensitivity`,
:mod:`aicircle.calibrate`) work on any model; this module holds what is
specific to the capital-circle model of ``models/aicircle.mdl``:

- the **classifiers** of a run's outcome. The default, :data:`ECONOMIC`, is
  judged over a window that ends at the horizon (it is not absorbing): a
  **bust** when the realised return on AI capital stays below the cost of
  capital while AI capex and utilisation both fall, or when cancelled compute
  contracts are written off on a scale of a tenth of the AI capex; a **boom**
  when AI capex and end-use AI revenue both grow; otherwise a **soft
  landing**. The end of a build-out while compute is still scarce
  (utilisation not falling) is therefore not a bust. AI capex is the
  hyperscalers' and the debt-financed builders' together. :data:`CONFIDENCE`, the
  project's first classifier (confidence below 0.2 or capex below half its
  running peak, ever before the horizon), is kept as a named alternative,
  because it proved to be an artefact: it is absorbing, and it calls the end
  of a build-out a bust;
- the horizons of the study and the time its forecast starts (the data end
  on 2025-09-30);
- :func:`predictive_ensemble`: the parameter sets that the data cannot tell
  apart — the calibration's posterior for the calibrated parameters and the
  declared ranges for every other parameter that is not a scenario switch —
  kept where they fit the targets as well as the calibration's own ensemble,
  and :func:`bust_probability` with its interval and the parameters it
  depends on.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from .errors import InvalidInput, UnknownName
from .observables import index_at

__all__ = [
    "BIFURCATION_PARAM", "BIFURCATION_RANGE", "BIFURCATION_YEARS", "BOOM", "BUST", "CLASSIFIERS",
    "CONFIDENCE", "ECONOMIC", "FIRM_TARGET_IDS", "FORECAST_START", "HORIZONS", "KEY_OUTPUTS",
    "REDUCED_CORE", "SHOCK_DRIVERS", "SOFT", "Classifier", "bust_probability", "bust_summary",
    "default_classifier", "depends_on", "missing_names", "study_names",
    "predictive_ensemble", "structural_alternatives", "wilson_interval", "with_fixed",
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
class Classifier:
    """A definition of the capital circle's outcomes.

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
        try:
            for name in self.variables:
                model.resolve(name)
        except UnknownName:
            return False
        return True

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
class EconomicClassifier(Classifier):
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
class ConfidenceClassifier(Classifier):
    """The first classifier: confidence < 0.2 or capex < half its running peak, ever (absorbing)."""

    floor: float = 0.2
    drop: float = 0.5
    reference_time: float = 2025.0

    def flags(self, times, values):
        confidence, capex = (np.atleast_2d(v) for v in values)
        peak = np.maximum.accumulate(capex, axis=1)
        event = (confidence < self.floor) | (capex < self.drop * peak)
        return np.logical_or.accumulate(event, axis=1)

    def booming(self, times, values):
        times = np.asarray(times, float)
        _, capex = (np.atleast_2d(v) for v in values)
        ref = _at(times, capex, self.reference_time) if times[0] <= self.reference_time <= times[-1] \
            else capex[:, 0]
        return capex > ref[:, None]


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
    "before the horizon (absorbing); a boom if capex at the horizon is above its 2025 level")
CLASSIFIERS = {c.name: c for c in (ECONOMIC, CONFIDENCE)}


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
    return list(dict.fromkeys([*ECONOMIC.variables, *CONFIDENCE.variables, *KEY_OUTPUTS,
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
    """The economic classifier where ``model`` defines its variables, else the first one, else None."""
    for candidate in (ECONOMIC, CONFIDENCE):
        if candidate.applies_to(model):
            return candidate
    return None


def classifier(name):
    """A classifier by name ('economic' or 'confidence')."""
    try:
        return CLASSIFIERS[str(name).strip().lower()]
    except KeyError:
        raise InvalidInput(f"unknown classifier '{name}'; known: {', '.join(CLASSIFIERS)}") from None


# --------------------------------------------------------------------------
# the predictive ensemble
# --------------------------------------------------------------------------


def wilson_interval(k, n, z=1.96):
    """Wilson score interval of a binomial proportion ``k / n`` (95% by default)."""
    if not 0 <= k <= max(n, 0) or not z > 0:
        raise InvalidInput(f"wilson_interval needs 0 <= k <= n and z > 0, got k={k!r}, n={n!r}, z={z!r}")
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def future_parameters(model, calibrated):
    """Every parameter the data cannot pin down: a finite, non-empty range, not a switch, not calibrated."""
    from .scenarios import inputs

    table = model.parameters
    switches = inputs(model)
    calibrated = set(calibrated)
    return [p for p in table.index
            if p not in switches and p not in calibrated
            and np.isfinite(table.loc[p, "min"]) and np.isfinite(table.loc[p, "max"])
            and table.loc[p, "min"] < table.loc[p, "max"]]


def predictive_ensemble(model, targets, params, ensemble, n=4000, seed=0, quantile=0.95, delta_chi2=3.84,
                        n_grid=9, chunk_size=1000):
    """Parameter sets the data cannot tell apart, with their fit to the targets.

    Each draw takes a row of the calibration's posterior ``ensemble`` for the
    calibrated parameters and draws every other parameter that is not a
    scenario switch uniformly from the part of its declared range that the
    data do not reject on their own: where moving that parameter alone (the
    others at ``params``) raises the targets' chi-square by less than
    ``delta_chi2`` (3.84: a 95% interval for one parameter), read on a grid of
    ``n_grid`` points. A parameter the data do not inform keeps its whole
    range. A joint draw is kept when its chi-square is no worse than the
    ``quantile`` of the chi-squares of the calibration's own ensemble (with
    the uncalibrated parameters at their model values): the data then cannot
    reject it.

    Returns
    -------
    table : pandas.DataFrame
        One row per draw: every varied parameter, ``chi2`` and ``kept``.
    info : dict
        ``threshold`` (the chi-square bound), ``reference`` (the calibration
        ensemble's chi-squares), ``varied`` (the uncalibrated parameters
        drawn), ``ranges`` (a DataFrame: declared and drawn range of each),
        ``calibrated``, ``fixed`` (the values held for every draw).
    """
    from . import _check, _limits
    from .calibrate import Problem

    if not isinstance(ensemble, pd.DataFrame) or len(ensemble) == 0:
        raise InvalidInput("the predictive ensemble needs the calibration's posterior ensemble (a DataFrame "
                           f"with rows), got ensemble={type(ensemble).__name__}")
    params = _check.mapping("params", params)
    n, n_grid = _check.whole_number("n", n), _check.whole_number("n_grid", n_grid, 2)
    chunk_size = _check.whole_number("chunk_size", chunk_size)
    quantile, delta_chi2 = _check.finite("quantile", quantile), _check.finite("delta_chi2", delta_chi2)
    if not 0 < quantile <= 1 or not delta_chi2 > 0:
        raise InvalidInput(f"quantile must be in (0, 1] and delta_chi2 positive, got quantile={quantile:g}, "
                           f"delta_chi2={delta_chi2:g}")
    rng = np.random.default_rng(_check.seed(seed))
    calibrated = [c for c in ensemble.columns if c in model.parameters.index]
    varied = future_parameters(model, calibrated)
    fixed = {k: v for k, v in params.items() if k not in calibrated and k not in varied}
    problem = Problem(model, targets, calibrated + varied, fixed=fixed, priors=False)
    n_targets = len(problem.targets)
    # the draws' table (drawn, joined, reordered: three copies) and one chunk's runs at a time
    _limits.check_ensemble(model, n, len(problem.outputs), chunk_size,
                           {"final_time": problem.final_time, "saveper": problem.time_step},
                           f"a predictive ensemble of {n:,} draws", "a smaller n or chunk_size",
                           result_copies=0, table_columns=3 * (len(calibrated) + len(varied) + 2))

    def chi2(table):
        out = []
        for start in range(0, len(table), chunk_size):
            r = np.atleast_2d(problem.residuals(problem.from_params(table.iloc[start:start + chunk_size])))
            out.append(np.nansum(r[:, :n_targets] ** 2, axis=1))
        return np.concatenate(out)

    at_model = {p: float(params.get(p, model.parameters.loc[p, "value"])) for p in varied}
    best = {p: float(params.get(p, model.parameters.loc[p, "value"])) for p in calibrated}
    # each uncalibrated parameter alone over its declared range: the part the data do not reject
    declared = model.parameters.loc[varied, ["min", "max"]].astype(float)
    grid_rows, owners = [], []
    for p in varied:
        lo, hi = declared.loc[p]
        for x in np.linspace(lo, hi, n_grid):
            grid_rows.append({**best, **at_model, p: x})
            owners.append(p)
    centre = chi2(pd.DataFrame([{**best, **at_model}])[calibrated + varied])[0]
    scan = pd.DataFrame({"parameter": owners, "value": [r[o] for r, o in zip(grid_rows, owners)],
                         "delta": chi2(pd.DataFrame(grid_rows)[calibrated + varied]) - centre})
    ranges = []
    for p in varied:
        lo, hi = declared.loc[p]
        rows = scan[scan["parameter"] == p]
        x, delta = rows["value"].to_numpy(), rows["delta"].to_numpy()
        x0 = min(max(at_model[p], lo), hi)
        passing = x[delta < delta_chi2]
        a = min(passing.min(), x0) if passing.size else x0
        b = max(passing.max(), x0) if passing.size else x0
        # beyond the last grid point that passes, the first that fails bounds the range where
        # a quadratic rise from the calibrated value reaches delta_chi2
        below, above = (x < a) & (delta >= delta_chi2), (x > b) & (delta >= delta_chi2)
        if below.any():
            f = x[below].max()
            a = min(a, x0 + (f - x0) * math.sqrt(delta_chi2 / delta[x == f][0]))
        if above.any():
            f = x[above].min()
            b = max(b, x0 + (f - x0) * math.sqrt(delta_chi2 / delta[x == f][0]))
        ranges.append({"parameter": p, "min": lo, "max": hi, "draw_min": max(lo, a), "draw_max": min(hi, b),
                       "max_delta_chi2": float(delta.max())})
    ranges = pd.DataFrame(ranges).set_index("parameter")

    base = ensemble[calibrated].reset_index(drop=True)
    base = pd.concat([base, pd.DataFrame({p: np.full(len(base), at_model[p]) for p in varied})], axis=1)
    reference = chi2(base)
    threshold = float(np.quantile(reference[np.isfinite(reference)], quantile))
    drawn = ensemble[calibrated].iloc[rng.integers(0, len(ensemble), size=n)].reset_index(drop=True)
    drawn = pd.concat([drawn, pd.DataFrame({p: rng.uniform(ranges.loc[p, "draw_min"], ranges.loc[p, "draw_max"],
                                                           size=n) for p in varied})], axis=1)
    fit = chi2(drawn[calibrated + varied])
    drawn = drawn.assign(chi2=fit, kept=fit <= threshold)
    return drawn, {"threshold": threshold, "reference": reference, "varied": varied, "ranges": ranges,
                   "calibrated": calibrated, "fixed": fixed}


def bust_probability(model, table, fixed=None, classifier=None, horizons=HORIZONS, start=FORECAST_START,
                     chunk_size=1000, progress=False):
    """P(bust by each horizon) over the rows of ``table``, with a 95% Wilson interval.

    "By" a horizon: the run is in a bust at some time between ``start`` and
    the horizon (the classifier is not absorbing, so a bust may end; it still
    happened). Also the share in each outcome *at* the horizon.

    Returns
    -------
    summary : pandas.DataFrame
        Index horizon; ``p_bust_by``, ``lo``, ``hi``, ``n`` and one column per
        outcome at the horizon.
    runs : pandas.DataFrame
        Per run: ``first_bust`` (year or NaN) and the outcome at each horizon.
    """
    from . import _check
    from .sensitivity import run_ensemble

    _check.table("table", table)
    classifier = classifier or ECONOMIC
    columns = [model.resolve(v) for v in classifier.variables]
    values, times = run_ensemble(model, with_fixed(table, fixed), columns, chunk_size=chunk_size,
                                 progress=progress, final_time=max(horizons))
    return bust_summary(times, [values[c] for c in columns], classifier, horizons, start, table.index)


def with_fixed(table, fixed):
    """``table`` with a column for each value of ``fixed`` it does not already hold."""
    from . import _check

    _check.table("table", table)
    held = {k: np.full(len(table), v) for k, v in _check.mapping("fixed", fixed).items()
            if k not in table.columns}
    return pd.concat([table, pd.DataFrame(held, index=table.index)], axis=1)


def bust_summary(times, vals, classifier, horizons=HORIZONS, start=FORECAST_START, index=None):
    """:func:`bust_probability`'s tables from runs already made.

    ``vals`` holds the classifier's variables, in its order, each an array
    (n_sets, n_times) over ``times``.
    """
    first = classifier.first_bust(times, vals, start=start)
    runs = pd.DataFrame({"first_bust": first}, index=index)
    rows = []
    for h in horizons:
        labels = classifier.labels(times, vals, h)
        runs[f"outcome {int(h)}"] = labels
        k = int(np.sum(first <= h + 1e-9))
        lo, hi = wilson_interval(k, len(first))
        row = {"horizon": int(h), "p_bust_by": k / len(first), "lo": lo, "hi": hi, "n": len(first)}
        for kind in (BUST, SOFT, BOOM):
            row[f"{kind} at {int(h)}"] = float(np.mean(labels == kind))
        rows.append(row)
    return pd.DataFrame(rows).set_index("horizon"), runs


def depends_on(table, busted, top=8):
    """Which parameters the outcome depends on: P(bust) in the low and high third of each range.

    Parameters
    ----------
    table : pandas.DataFrame
        The parameter sets (one column per parameter).
    busted : array of bool, shape (n_sets,)

    Returns
    -------
    pandas.DataFrame
        Index parameter; ``p_low``, ``p_high`` (P(bust) among runs in the
        lowest and highest third of the parameter's values), ``difference``
        and ``rank_corr`` (Spearman correlation with the bust indicator),
        sorted by |rank_corr|, the ``top`` first.
    """
    busted = np.asarray(busted, float)
    if busted.shape != (len(table),):
        raise InvalidInput(f"busted must hold one flag per row of table ({len(table)}), got shape {busted.shape}")
    rows = []
    for p in table.columns:
        x = table[p].to_numpy(float)
        if np.ptp(x) == 0:
            continue
        lo_cut, hi_cut = np.quantile(x, [1 / 3, 2 / 3])
        rx = pd.Series(x).rank().to_numpy()
        corr = np.corrcoef(rx, busted)[0, 1] if busted.std() > 0 else 0.0
        rows.append({"parameter": p, "p_low": busted[x <= lo_cut].mean(), "p_high": busted[x >= hi_cut].mean(),
                     "rank_corr": corr})
    out = pd.DataFrame(rows).set_index("parameter")
    out["difference"] = out["p_high"] - out["p_low"]
    return out.reindex(out["rank_corr"].abs().sort_values(ascending=False).index).head(top)


# --------------------------------------------------------------------------
# structural alternatives
# --------------------------------------------------------------------------

#: Formulations the data might not tell apart, each a setting of the model's switches:
#: (name, what it means, the values it fixes).
STRUCTURAL = (
    ("circular signal 0", "investors see through sales within the circle", {"Circular Signal Weight": 0.0}),
    ("circular signal 1", "investors count all AI revenue the clouds and the chipmaker report",
     {"Circular Signal Weight": 1.0}),
    ("fixed compute price", "the compute price does not respond to scarcity", {"Compute Price Elasticity": 0.0}),
    ("elastic compute price", "the compute price responds one for one to scarcity",
     {"Compute Price Elasticity": 1.0}),
    ("costless cancellations", "cancelled compute contracts cost the lab nothing", {"Cancellation Fee Share": 0.0}),
    ("heavy cancellation fees", "the lab pays half of what it cancels", {"Cancellation Fee Share": 0.5}),
    ("no vendor financing", "the chipmaker puts no equity into the builders that buy its GPUs",
     {"Vendor Financing Share": 0.0}),
    ("cautious builders", "the builders borrow half of their capex instead of 70%", {"Builder Debt Share": 0.5}),
    ("no warrants", "the second vendor's deal carries no warrants for the lab", {"Warrant Value per GW": 0.0}),
)


def structural_alternatives(model, targets, params, free, alternatives=STRUCTURAL, classifier=None,
                            horizons=HORIZONS, seed=0, progress=False):
    """Refit the model under each alternative formulation; its fit and its outcomes side by side.

    Each alternative fixes its switches and refits the calibrated parameters
    ``free`` from the shipped values (one start and a polish), the other
    parameters held at ``params``.

    Returns
    -------
    pandas.DataFrame
        One row per alternative (the shipped model first): ``chi2`` (against
        the targets), ``actuals_within_2sigma``, the fixed values, and the
        outcome of the refitted baseline at each horizon with its first bust.
    """
    from .calibrate import Problem, fit, fit_statistics, validate
    from .integrate import progress as bar

    classifier = classifier or ECONOMIC
    columns = [model.resolve(v) for v in classifier.variables]
    rows = []
    cases = [("calibrated", "the shipped calibration", {})] + list(alternatives)
    for name, meaning, switches in bar(cases, progress, "structural alternatives", unit="refit"):
        switches = {model.resolve(k): float(v) for k, v in switches.items()}
        refit = [p for p in free if p not in switches]
        fixed = {k: v for k, v in params.items() if k not in refit}
        fixed.update(switches)
        values = dict(params)
        values.update(switches)
        if switches:
            problem = Problem(model, targets, refit, fixed=fixed)
            best = fit(problem, n_starts=1, seed=seed, x0=problem.from_params({p: params[p] for p in refit}))
            values.update(problem.to_params(best.x[None]).iloc[0][refit].to_dict())
        table = validate(model, targets, values)
        stats = fit_statistics(targets, table)
        run = model.simulate(params=values, return_columns=columns, final_time=max(horizons))
        t = run.index.to_numpy()
        vals = [run[c].to_numpy()[None] for c in columns]
        row = {"alternative": name, "meaning": meaning, "chi2": stats["chi2_targets"],
               "actuals_within_2sigma": stats["actuals_within_2sigma"],
               "fixed": "; ".join(f"{k} = {v:g}" for k, v in switches.items()),
               "first_bust": float(classifier.first_bust(t, vals, start=FORECAST_START)[0])}
        for h in horizons:
            row[f"outcome {int(h)}"] = str(classifier.labels(t, vals, h)[0])
        rows.append(row)
    return pd.DataFrame(rows).set_index("alternative")

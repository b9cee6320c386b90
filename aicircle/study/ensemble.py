"""What the data say about the capital circle's future.

- :func:`predictive_ensemble`: the parameter sets that the data cannot tell
  apart — the calibration's posterior for the calibrated parameters and the
  declared ranges for every other parameter that is not a scenario switch —
  kept where they fit the targets as well as the calibration's own ensemble;
- :func:`bust_probability` with its interval (:func:`wilson_interval`) and the
  parameters it depends on (:func:`depends_on`);
- :func:`structural_alternatives`: the model refitted under each alternative
  formulation, its fit and its outcomes side by side.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import _check, _limits
from ..calibrate import Problem, fit
from ..errors import InvalidInput
from ..integrate import progress as bar
from ..posterior import Uniform, effective_sample_size, reweight, weighted_probability
from ..sensitivity import run_ensemble
from . import calibration
from .outcomes import (BOOM, BUST, ECONOMIC, FORECAST_START, HORIZONS, METRIC_VARIABLES, SOFT,
                       outcome_metrics)
from .scenarios import switches as scenario_switches

__all__ = ["STRUCTURAL", "alternative_priors", "bust_probability", "bust_summary", "deciding_parameters",
           "delta_chi2_grid", "depends_on", "future_parameters", "outcome_flags", "predictive_ensemble",
           "prior_sensitivity", "robust_findings", "structural_alternatives", "tipping_map", "wilson_interval",
           "with_fixed"]

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
    table = model.parameters
    switches = scenario_switches(model)
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
    _check.table("table", table)
    classifier = classifier or ECONOMIC
    columns = [model.resolve(v) for v in classifier.variables]
    values, times = run_ensemble(model, with_fixed(table, fixed), columns, chunk_size=chunk_size,
                                 progress=progress, final_time=max(horizons))
    return bust_summary(times, [values[c] for c in columns], classifier, horizons, start, table.index)


def with_fixed(table, fixed):
    """``table`` with a column for each value of ``fixed`` it does not already hold."""
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
# outcomes in money, the tipping map and the priors
# --------------------------------------------------------------------------


def outcome_flags(metrics_by_horizon, capex_fall=0.5):
    """The yes/no outcomes of each run, by horizon, from :func:`aicircle.study.outcomes.outcome_metrics`.

    Parameters
    ----------
    metrics_by_horizon : dict
        Horizon (year) -> the metrics table of that horizon.
    capex_fall : float
        The fall of AI capex from its peak (a fraction) counted as a collapse.

    Returns
    -------
    dict
        Outcome label -> bool array (n_sets,): ``capital bust by H``, ``lab fails by H``,
        ``AI capex falls by half by H`` for each horizon H.
    """
    out = {}
    for h, met in metrics_by_horizon.items():
        out[f"capital bust by {int(h)}"] = met["capital bust"].to_numpy(bool)
        out[f"lab fails by {int(h)}"] = met["lab fails"].to_numpy(bool)
        out[f"AI capex falls by {capex_fall:.0%} by {int(h)}"] = met["AI capex fall"].to_numpy() >= capex_fall
    return out


def deciding_parameters(table, metrics, candidates, columns=("worst loss share", "lab fails"), top=3):
    """The parameters among ``candidates`` that decide the outcome most: by the mean of the absolute
    Spearman correlations of each with the ``columns`` of ``metrics`` over the rows of ``table``.

    Returns
    -------
    pandas.Series
        Parameter -> mean |rank correlation|, the ``top`` largest, in decreasing order.
    """
    ranks = table[[c for c in candidates if c in table and np.ptp(table[c].to_numpy(float)) > 0]].rank()
    if ranks.shape[1] == 0:
        raise InvalidInput("no candidate parameter varies across the table: nothing can decide the outcome")
    scores = []
    for col in columns:
        y = pd.Series(np.asarray(metrics[col], float), index=ranks.index).rank()
        scores.append(ranks.corrwith(y).fillna(0.0).abs() if y.std() > 0 else pd.Series(0.0, index=ranks.columns))
    score = pd.concat(scores, axis=1).mean(axis=1)
    return score.sort_values(ascending=False).head(top)


def alternative_priors(drawn, deciding):
    """Defensible priors besides the one drawn, over the parameters that decide the outcome.

    ``drawn`` maps every drawn parameter to its prior (:class:`aicircle.posterior.Uniform`);
    for the ``deciding`` parameters (most deciding first) the alternatives are:
    each log-uniform over the same range (a scale prior: every factor equally
    likely); each parameter's lower or upper half, the others as drawn (what a
    source supporting one side would say); and the four combinations of the
    halves of the first two. All lie within the drawn ranges, so the same runs
    serve every prior (:func:`aicircle.posterior.reweight`).

    Returns
    -------
    dict
        Label -> {parameter: prior} (an empty dict: the priors as drawn).
    """
    missing = [p for p in deciding if p not in drawn]
    if missing:
        raise InvalidInput(f"{', '.join(missing)}: not drawn from a prior, so no other prior can be given")

    def half(p, upper):
        lo, hi = drawn[p].lo, drawn[p].hi
        mid = (lo + hi) / 2
        return (f"{p} in [{mid:g}, {hi:g}]", Uniform(mid, hi)) if upper else (f"{p} in [{lo:g}, {mid:g}]",
                                                                              Uniform(lo, mid))

    out = {"as drawn (uniform over each range)": {}}
    logs = {p: Uniform(drawn[p].lo, drawn[p].hi, log=True) for p in deciding if drawn[p].lo > 0}
    if logs:
        out["log-uniform over the same ranges"] = logs
    for p in deciding:
        for upper in (False, True):
            label, prior = half(p, upper)
            out[label] = {p: prior}
    if len(deciding) >= 2:
        a, b = deciding[:2]
        for ua in (False, True):
            for ub in (False, True):
                (la, pa), (lb, pb) = half(a, ua), half(b, ub)
                out[f"{la} and {lb}"] = {a: pa, b: pb}
    return out


def prior_sensitivity(table, flags, drawn, alternatives, weights=None):
    """P(each outcome) under each prior, side by side, from the same runs (importance reweighting).

    Parameters
    ----------
    table : pandas.DataFrame
        The runs' parameters (one row per run).
    flags : dict
        Outcome label -> bool array (n_sets,).
    drawn : dict
        Parameter -> the prior it was drawn from.
    alternatives : dict
        Label -> {parameter: prior}: the parameters given another prior (within the drawn support).
    weights : array, optional
        The runs' weights under ``drawn`` (equal by default: the kept sets of the predictive ensemble).

    Returns
    -------
    pandas.DataFrame
        Index the prior's label; for each outcome ``P(outcome)``, and its 95% interval at the
        effective sample size as ``lo``/``hi`` columns; ``ess``.
    """
    n = len(table)
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, float)
    rows = []
    for label, priors in alternatives.items():
        wk = reweight(table, w, drawn, priors) if priors else w / w.sum()
        row = {"prior": label, "ess": effective_sample_size(wk)}
        for name, flag in flags.items():
            p, lo, hi = weighted_probability(flag, wk)
            row[name], row[f"{name} lo"], row[f"{name} hi"] = p, lo, hi
        rows.append(row)
    return pd.DataFrame(rows).set_index("prior")


def robust_findings(table, outcomes, likely=0.9, unlikely=0.1):
    """What holds under every prior of :func:`prior_sensitivity`'s ``table``, and what is a condition.

    Returns
    -------
    list of (str, str)
        One (outcome, sentence) per outcome: ``likely``/``unlikely`` under every
        prior is a finding; otherwise the priors that give the smallest and the
        largest probability are its condition.
    """
    out = []
    for name in outcomes:
        p = table[name]
        lo_label, hi_label = p.idxmin(), p.idxmax()
        if p.min() >= likely:
            out.append((name, f"**{name}: likely under every prior** (P = {p.min():.2f}–{p.max():.2f})."))
        elif p.max() <= unlikely:
            out.append((name, f"**{name}: unlikely under every prior** (P = {p.min():.2f}–{p.max():.2f})."))
        else:
            out.append((name, f"{name}: a condition, not a finding — P = {p.min():.2f} if {lo_label}, "
                              f"{p.max():.2f} if {hi_label} (as drawn: {p.iloc[0]:.2f})."))
    return out


def tipping_map(model, sets, fixed, param_x, values_x, param_y, values_y, horizon, per_cell=40, seed=0,
                chunk_size=1000, progress=False):
    """The outcome over a grid of two parameters, every other parameter drawn from ``sets``.

    At each point of the grid ``per_cell`` rows of ``sets`` (the kept ensemble;
    the same rows at every point) are run with the two parameters set to the
    point's values.

    Returns
    -------
    dict
        ``x``, ``y`` (the grid's values), and arrays of shape (len(values_y), len(values_x)):
        ``capital bust`` and ``lab fails`` (the share of the runs by ``horizon``) and
        ``worst loss share`` (the median of the bust rule's worst windowed loss share).
    """
    rng = np.random.default_rng(_check.seed(seed))
    values_x, values_y = np.asarray(values_x, float), np.asarray(values_y, float)
    rows = sets.iloc[rng.choice(len(sets), size=min(per_cell, len(sets)), replace=False)].reset_index(drop=True)
    k = len(rows)
    gx, gy = np.meshgrid(values_x, values_y)
    table = pd.concat([rows] * gx.size, ignore_index=True)
    table[param_x] = np.repeat(gx.ravel(), k)
    table[param_y] = np.repeat(gy.ravel(), k)
    columns = [model.resolve(v) for v in METRIC_VARIABLES]
    values, times = run_ensemble(model, with_fixed(table, fixed), columns, chunk_size=chunk_size,
                                 progress=progress, final_time=horizon)
    met = outcome_metrics(times, {v: values[c] for v, c in zip(METRIC_VARIABLES, columns)}, horizon)

    def grid(x, how):
        return how(np.asarray(x, float).reshape(gx.size, k), axis=1).reshape(gx.shape)

    return {"x": values_x, "y": values_y, "param_x": param_x, "param_y": param_y, "horizon": horizon,
            "per_cell": k, "capital bust": grid(met["capital bust"], np.mean),
            "lab fails": grid(met["lab fails"], np.mean), "worst loss share": grid(met["worst loss share"], np.median)}


def delta_chi2_grid(model, targets, params, param_x, values_x, param_y, values_y, chunk_size=1000):
    """Δχ² of the targets over a grid of two parameters, every other parameter at ``params``.

    Returns an array (len(values_y), len(values_x)): χ² at each point less χ² at ``params``.
    """
    params = _check.mapping("params", params)
    fixed = {k: v for k, v in params.items() if k not in (param_x, param_y)}
    problem = Problem(model, targets, [param_x, param_y], fixed=fixed, priors=False)
    n_targets = len(problem.targets)
    gx, gy = np.meshgrid(np.asarray(values_x, float), np.asarray(values_y, float))
    at = [float(params.get(p, model.parameters.loc[p, "value"])) for p in (param_x, param_y)]
    table = pd.DataFrame({param_x: [at[0], *gx.ravel()], param_y: [at[1], *gy.ravel()]})
    chi2 = []
    for start in range(0, len(table), chunk_size):
        r = np.atleast_2d(problem.residuals(problem.from_params(table.iloc[start:start + chunk_size])))
        chi2.append(np.nansum(r[:, :n_targets] ** 2, axis=1))
    chi2 = np.concatenate(chi2)
    return (chi2[1:] - chi2[0]).reshape(gx.shape)


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
        table = calibration.validate(model, targets, values)
        stats = calibration.fit_statistics(targets, table)
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

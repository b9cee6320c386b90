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
from ..sensitivity import run_ensemble
from . import calibration
from .outcomes import BOOM, BUST, ECONOMIC, FORECAST_START, HORIZONS, SOFT
from .scenarios import switches as scenario_switches

__all__ = ["STRUCTURAL", "bust_probability", "bust_summary", "depends_on", "future_parameters",
           "predictive_ensemble", "structural_alternatives", "wilson_interval", "with_fixed"]

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

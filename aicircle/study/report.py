"""The capital-circle study's report: where does the AI capital circle tip?

:class:`CapitalCircleAnalysis` is the study's :class:`aicircle.report.Analysis`.
Its stages, each a function of the shared :class:`aicircle.report.Context`,
fill one :class:`CircleFindings`: the calibrated baseline and its fit to the
data; the predictive ensemble (every parameter the data cannot pin down,
drawn and kept where it fits as well as the calibration's own ensemble) with
the probability of a bust and what it depends on; the structural alternatives
(refitted by ``calibration/structural.py``); tipping points of the drivers the
ensemble names; loop dominance; early-warning indicators; continuation of the
reduced core; Sobol indices; scenarios. :func:`build_report` gives the study
to the shipped model and copies of it, and the generic analysis (with the
study's vocabulary and switches) to any other model.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import _resources, plots, tipping
from .. import calibrate as cal
from .. import loops as ltm
from ..errors import InvalidInput
from ..model import load
from ..posterior import Uniform
from ..observables import find_observables, windows_extent
from ..report import MORRIS_N, Context, Findings, GenericAnalysis, percent, write_report
from ..sensitivity import bands_of, monte_carlo, p_bust_by_year, run_ensemble, sensitivities
from . import calibration, ensemble, scenarios
from .early_warning import capital_circle_study
from .observables import OBSERVABLES
from .outcomes import (BIFURCATION_PARAM, BIFURCATION_RANGE, BIFURCATION_YEARS, CAPITAL_LOSS, CONFIDENCE,
                       ECONOMIC, FIRM_TARGET_IDS, FORECAST_START, HORIZONS, KEY_OUTPUTS, METRIC_VARIABLES,
                       METRICS, REDUCED_CORE, SHOCK_DRIVERS, missing_names, outcome_metrics)

__all__ = ["CapitalCircleAnalysis", "CircleFindings", "build_report", "capital_circle_tipping"]

#: How many of the parameters the ensemble's outcome depends on most become tipping drivers.
N_ENSEMBLE_DRIVERS = 4
PREDICTIVE_DRAWS = 4000
#: Early-warning runs at each of the two values, and how many sweep points inside each side they sit.
EW_RUNS = 200
EW_STEPS = 3
#: Loop dominance: runs this share of the driver's range either side of its threshold; loops drawn alone.
LOOP_SIDE = 0.03
LOOP_TOP = 6
N_LARGEST_RESIDUALS = 10
#: The parameters that decide the outcomes (and the data cannot) whose priors are varied; the first two
#: span the tipping map, of MAP_POINTS x MAP_POINTS points with MAP_SETS kept sets run at each.
N_DECIDING = 3
MAP_POINTS = 11
MAP_SETS = 32


@dataclasses.dataclass(slots=True)
class CircleFindings(Findings):
    """What the study's stages found, each field filled by one stage."""

    # baseline and fit
    base: pd.DataFrame = None
    validation: pd.DataFrame = None
    stats: dict = None
    largest: pd.DataFrame = None
    baseline_outcome: dict = None
    baseline_first_bust: float = None
    baseline_metrics: pd.Series = None
    # predictive ensemble
    draws: pd.DataFrame = None
    kept: pd.DataFrame = None
    ensemble_info: dict = None
    bust: dict = None
    bust_runs: dict = None
    depends: pd.DataFrame = None
    median_path: dict = None
    anatomy: dict = None
    # outcomes in money, the tipping map, the priors
    metrics: dict = None
    deciding: pd.Series = None
    priors: pd.DataFrame = None
    prior_findings: list = None
    tipping_map: dict = None
    map_delta: np.ndarray = None
    # tipping points
    tipping_curves: dict = None
    tipping: pd.DataFrame = None
    drivers: list = None
    regime: list = None
    basin: pd.DataFrame = None
    # loops, early warning, reduced core, Sobol, scenarios
    loops: dict = None
    early_warning: dict = None
    bifurcations: dict = None
    sobol: dict = None
    scenarios: pd.DataFrame = None


class CapitalCircleAnalysis:
    """The capital-circle study as an :class:`aicircle.report.Analysis`."""

    name = "capital circle"
    title = "aicircle: where does the AI capital circle tip?"
    n_stages = 11

    def __init__(self, sobol_n=1024, n_draws=PREDICTIVE_DRAWS):
        self.sobol_n, self.n_draws = sobol_n, n_draws

    def check(self, model, recalibrate, targets_path):
        pass

    def default_targets(self):
        return _resources.shipped_targets()

    def read_targets(self, path):
        return calibration.targets(path)

    def calibrate(self, model, targets, seed, progress):
        return calibration.calibrate(model, targets, seed=seed, progress=progress)

    def calibration(self):
        return calibration.load_calibration()

    def run(self, context, stages):
        context.findings = CircleFindings()
        _study_stages(context, stages, self.sobol_n, self.n_draws)
        return context.findings

    def write(self, doc, context, command):
        _write_document(doc, context, self.sobol_n, self.n_draws, command)


def build_report(out="report", recalibrate=False, seed=0, progress=True, model_path=None,
                 sobol_n=1024, n_draws=PREDICTIVE_DRAWS, command=None, force=False, *,
                 params_path=None, targets_path=None, drivers=(), outcome=None, morris_n=MORRIS_N,
                 data_dirs=()):
    """Run the analysis of a model and write the report to ``out`` (see :func:`aicircle.report.write_report`).

    A model that defines every variable the capital-circle study reads
    (:func:`aicircle.study.outcomes.missing_names` is empty; the shipped model
    and edited copies of it) gets the study: the shipped calibration, the
    predictive ensemble, structural alternatives, tipping points, the reduced
    core, Sobol indices and scenarios. Any other model gets the generic
    analysis (:class:`aicircle.report.GenericAnalysis`, reading targets in the
    study's vocabulary, the study's scenario inputs held as switches): its
    baseline run, its fit to ``targets_path`` where the targets' observables
    are among its variables, Morris screening of its parameters, and sweeps of
    ``drivers`` (default: the parameters Morris ranks first), with thresholds
    of ``outcome`` (``'VARIABLE<VALUE'``) where one is given.

    Parameters
    ----------
    params_path : path, optional
        A ``name,value`` CSV whose values replace the model's (and, for the
        study, the calibrated point values; the ensembles keep the
        calibration's posterior).
    targets_path : path, optional
        A target CSV; the study's default is the shipped targets.
    command : str, optional
        Recorded as the way to reproduce the report; by default, the Python
        call that made it.
    force : bool
        Let the report go into a folder that holds other files (they are left
        alone).
    data_dirs : sequence of path
        Folders the model's data files may lie in besides its own (see
        :func:`aicircle.load`).

    Returns
    -------
    pathlib.Path
        The report folder.
    """
    model = load(model_path or _resources.shipped_model(), data_dirs=data_dirs)
    missing = missing_names(model)
    if missing:
        analysis = GenericAnalysis(
            drivers, outcome, morris_n, vocabulary=OBSERVABLES, switches=scenarios.switches(model),
            actuals=calibration.actuals,
            note=f"The capital-circle study (predictive ensemble, bust probabilities, structural alternatives) "
                 f"needs variables this model does not define (e.g. {', '.join(missing[:3])}).")
    else:
        analysis = CapitalCircleAnalysis(sobol_n, n_draws)
    if command is None:
        label = outcome if isinstance(outcome, str) or outcome is None else outcome.label
        command = (f"python -c \"from aicircle.study.report import build_report; build_report("
                   f"{str(Path(out).resolve())!r}, recalibrate={recalibrate}, seed={seed}, model_path={model_path!r}, "
                   f"sobol_n={sobol_n}, n_draws={n_draws}, params_path={params_path!r}, "
                   f"targets_path={targets_path!r}, drivers={list(drivers)!r}, outcome={label!r}, "
                   f"morris_n={morris_n}, data_dirs={[str(d) for d in data_dirs]!r})\"")
    return write_report(out, model, analysis, seed=seed, progress=progress, recalibrate=recalibrate,
                        params_path=params_path, targets_path=targets_path, command=command, force=force)


def capital_circle_tipping(model, params, drivers, horizons=HORIZONS, n_grid=33):
    """Critical value, calibrated value, margin and time to bust for each driver (economic outcome).

    Parameters
    ----------
    drivers : sequence of (name, (lo, hi), meaning)

    Returns
    -------
    table : pandas.DataFrame
        One row per (driver, horizon) threshold: ``critical``, ``calibrated``,
        ``margin`` (critical - calibrated), ``from``, ``to``.
    curves : dict
        Driver -> (values, year of the first bust after the data, or NaN) over its range.
    """
    rows, curves = [], {}
    for name, (lo, hi), meaning in drivers:
        calibrated = float(params.get(name, model.parameters.loc[name, "value"]))
        base = {k: v for k, v in params.items() if k != name}
        found = tipping.outcome_thresholds(model, name, lo, hi, horizons=list(horizons), n_grid=n_grid,
                                           params=base, tol=(hi - lo) * 1e-4, classifier=ECONOMIC)
        for th in found:
            rows.append({"driver": name, "meaning": meaning, "horizon": int(th["horizon"]),
                         "critical": th["value"], "calibrated": calibrated,
                         "margin": th["value"] - calibrated, "from": th["from"], "to": th["to"]})
        if not found:
            for h in horizons:
                rows.append({"driver": name, "meaning": meaning, "horizon": int(h), "critical": np.nan,
                             "calibrated": calibrated, "margin": np.nan, "from": "", "to": "no change in range"})
        values = np.linspace(lo, hi, n_grid)
        # one frame at once: inserting ~100 columns one by one fragments it (pandas PerformanceWarning)
        table = pd.DataFrame({name: values, **base})
        curves[name] = (values, tipping.time_to_bust(model, table, final_time=max(horizons),
                                                     classifier=ECONOMIC, start=FORECAST_START))
    return pd.DataFrame(rows), curves


# --------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------


def _stage_fit(study: Context):
    model, params = study.model, study.params
    names = find_observables(model.variables, OBSERVABLES)
    columns = list(dict.fromkeys([*names.values(), *ECONOMIC.variables, *METRIC_VARIABLES, *KEY_OUTPUTS]))
    base = model.simulate(params=params, return_columns=columns, final_time=max(HORIZONS))
    # the fit figure ends a year after the last target's window
    fit_end = math.ceil(windows_extent(study.targets)[1]) + 1
    fine = model.simulate(params=params, saveper=model.time["time_step"], final_time=fit_end,
                          return_columns=list(names.values()))
    validation = cal.validate(model, study.targets, params)
    stats = calibration.fit_statistics(study.targets, validation)
    bands_fit = None
    if study.ensemble is not None and len(study.ensemble):
        bands_fit, _ = monte_carlo(
            model, n=min(200, len(study.ensemble)), seed=study.seed, ensemble=study.ensemble,
            outputs=[names[o] for o in dict.fromkeys(study.targets["observable"]) if o in names],
            final_time=fit_end)
    study.fig("fit", plots.plot_fit(study.targets, fine.index.to_numpy(), {c: fine[c].to_numpy() for c in fine},
                                    names, bands=bands_fit, vocabulary=OBSERVABLES),
              "Each calibrated observable (line), the 95% band of the calibration ensemble (shade) and "
              "the data with ±1σ error bars; horizontal bars span each figure's window.")
    study.fig("residuals", plots.plot_residuals(validation),
              "Residual of every target (error / σ); the grey band is ±2σ.")
    calib = study.calib
    if calib["profiles"] is not None and len(calib["profiles"]):
        intervals = calib["profile_intervals"].set_index("parameter")
        study.fig("profiles", plots.plot_profiles(calib["profiles"], intervals, units=study.model.parameters["units"]),
                  "Profile likelihoods: Δχ² as each calibrated parameter is fixed and the others "
                  "re-fitted; the 95% interval is where Δχ² < 3.84.")
    t = base.index.to_numpy()
    vals = [base[v].to_numpy()[None] for v in CAPITAL_LOSS.variables]
    largest = validation.reindex(validation["residual"].abs().sort_values(ascending=False).index)
    study.findings.set(base=base, validation=validation, stats=stats,
                       largest=largest.head(N_LARGEST_RESIDUALS)[["id", "value", "sigma", "predicted", "residual"]],
                       baseline_outcome={int(h): str(CAPITAL_LOSS.labels(t, vals, h)[0])
                                         for h in HORIZONS},
                       baseline_first_bust=float(CAPITAL_LOSS.first_bust(t, vals, FORECAST_START)[0]),
                       baseline_metrics=outcome_metrics(t, {v: base[v].to_numpy()[None] for v in METRIC_VARIABLES},
                                                        max(HORIZONS)).iloc[0])


def _stage_ensemble(study: Context, n_draws):
    model = study.model
    draws, info = ensemble.predictive_ensemble(model, study.targets, study.params, study.ensemble, n=n_draws,
                                             seed=study.seed)
    kept = draws[draws["kept"]].drop(columns=["chi2", "kept"]).reset_index(drop=True)
    if len(kept) < 20:
        raise InvalidInput(f"only {len(kept)} of {n_draws} draws fit as well as the calibration's ensemble; "
                           f"too few for a probability")
    classifiers = (CAPITAL_LOSS, ECONOMIC, CONFIDENCE)
    # one run of the kept sets serves every definition, the outcome metrics and the bands
    columns = list(dict.fromkeys([*(model.resolve(v) for c in classifiers for v in c.variables), *KEY_OUTPUTS]))
    values, times = run_ensemble(model, ensemble.with_fixed(kept, info["fixed"]), columns,
                                 final_time=max(HORIZONS))
    summaries, runs = {}, {}
    for clf in classifiers:
        summaries[clf.name], runs[clf.name] = ensemble.bust_summary(
            times, [values[model.resolve(v)] for v in clf.variables], clf, index=kept.index)
    busted = runs["economic"]["first_bust"].to_numpy() <= max(HORIZONS) + 1e-9
    metrics = {h: outcome_metrics(times, {v: values[model.resolve(v)] for v in METRIC_VARIABLES}, h)
               for h in HORIZONS}
    # what the economic busts consist of, and whether compute ever stands idle
    forecast = times >= FORECAST_START - 1e-9
    causes = ECONOMIC.causes(times, [values[model.resolve(v)] for v in ECONOMIC.variables])
    utilisation = values[model.resolve(ECONOMIC.variables[3])][:, forecast]
    anatomy = {"sets": len(kept), **{name: float(flag[:, forecast].any(axis=1).mean()) for name, flag in causes.items()},
               "idle compute": float((utilisation.min(axis=1) < 0.999).mean())}
    drivers = ensemble.depends_on(kept, busted, top=8)
    bands = bands_of(values, times, list(KEY_OUTPUTS))
    years = np.arange(int(np.ceil(FORECAST_START)), int(max(HORIZONS)) + 1)
    p_bust = {name: p_bust_by_year(runs[name]["first_bust"], years) for name in runs}
    lab = metrics[max(HORIZONS)]["lab fails at"].to_numpy()
    fig, axes = plots.panels(len(KEY_OUTPUTS), ncols=2, size=(5.5, 3.9))
    for ax, (output, unit) in zip(axes, KEY_OUTPUTS.items()):
        plots.plot_bands(bands, output, ax=ax, unit=unit, title=output)
    study.fig("bands", fig, f"Vensim-style 50/75/95/100% bands of the {len(kept)} parameter sets the data "
                            f"cannot reject (of {n_draws} drawn).")
    ax = plots.plot_p_bust(p_bust["capital loss"], label=f"{CAPITAL_LOSS.window:g}-year capital losses > "
                                                         f"{CAPITAL_LOSS.share:.0%} of AI capital (the rule)")
    plots.plot_p_bust(p_bust_by_year(lab, years), ax=ax, label="the lab fails (restructures its bills)")
    plots.plot_p_bust(p_bust["economic"], ax=ax, label="economic definition (alternative)")
    plots.plot_p_bust(p_bust["confidence"], ax=ax, label="first definition (alternative, absorbing)",
                      title="Probability of each outcome after September 2025, by year")
    study.fig("p_bust", ax, "Share of the kept parameter sets in which each outcome has happened between "
                            "October 2025 and each year: the bust rule (capital losses realised over two years "
                            "above a tenth of the AI capital stock), the lab's failure, and the two earlier "
                            "definitions.")
    capex = bands.loc["Total AI Capex"]["median"]
    peak = capex.loc[:HORIZONS[0] + 1].idxmax()
    trough = capex.loc[peak:].idxmin()
    confidence = bands.loc["Investor Confidence"]["median"]
    path = {"peak_year": float(peak), "peak": float(capex.loc[peak]), "trough_year": float(trough),
            "trough": float(capex.loc[trough]), "end": float(capex.iloc[-1]),
            "confidence_min": float(confidence.loc[peak:].min()),
            "confidence_min_year": float(confidence.loc[peak:].idxmin())}
    study.findings.set(draws=draws, kept=kept, ensemble_info=info, bust=summaries, bust_runs=runs,
                       depends=drivers, median_path=path, anatomy=anatomy, metrics=metrics)


def _stage_outcomes(study: Context):
    """The outcomes in money, the parameters that decide them, their tipping map and their priors."""
    f, model = study.findings, study.model
    info, kept, metrics = f.ensemble_info, f.kept, f.metrics
    last = max(HORIZONS)
    ranges = info["ranges"]
    drawn = {p: Uniform(float(ranges.loc[p, "draw_min"]), float(ranges.loc[p, "draw_max"]))
             for p in info["varied"] if ranges.loc[p, "draw_max"] > ranges.loc[p, "draw_min"]}
    # the data cannot decide a parameter drawn over its whole declared range
    undecided = [p for p in drawn if (ranges.loc[p, "draw_max"] - ranges.loc[p, "draw_min"])
                 >= (ranges.loc[p, "max"] - ranges.loc[p, "min"]) - 1e-12]
    deciding = ensemble.deciding_parameters(kept, metrics[last], undecided, top=N_DECIDING)
    flags = ensemble.outcome_flags(metrics)
    for name in ("economic", "confidence"):
        flags[f"{name} definition by {int(last)}"] = f.bust_runs[name]["first_bust"].to_numpy() <= last + 1e-9
    alternatives = ensemble.alternative_priors(drawn, list(deciding.index))
    priors = ensemble.prior_sensitivity(kept, flags, drawn, alternatives)
    findings = ensemble.robust_findings(priors, list(flags))
    # the outcomes' distributions
    met = metrics[last]
    money = {k: met[k].to_numpy() for k in ("realised loss", "stranded capital", "builder defaults",
                                            "bills written off", "lost revenue", "lab funding gap")}
    shares = {"realised loss / peak AI capital": met["loss share"].to_numpy(),
              f"worst {CAPITAL_LOSS.window:g}-year loss / AI capital (the rule)": met["worst loss share"].to_numpy(),
              "fall of AI capex from its peak": met["AI capex fall"].to_numpy(),
              "fall of the lab's valuation": met["lab valuation drawdown"].to_numpy()}
    fig, axes = plots.panels(2, ncols=2, size=(6.2, 3.6))
    plots.plot_distributions(money, ax=axes[0], unit="$B", title=f"October 2025 to {int(last)}, $B")
    plots.plot_distributions({k: 100 * v for k, v in shares.items()}, ax=axes[1], unit="%",
                             title=f"October 2025 to {int(last)}, %")
    study.fig("outcomes", fig, f"Each outcome across the {len(kept)} kept parameter sets: median (line), "
                               "25–75% (box), 5–95% (whiskers).")
    # the tipping map over the two that decide most, the others drawn from the kept sets
    px, py = deciding.index[:2]
    grid = {p: np.linspace(*(float(x) for x in model.parameters.loc[p, ["min", "max"]]), MAP_POINTS)
            for p in (px, py)}
    tmap = ensemble.tipping_map(model, kept, info["fixed"], px, grid[px], py, grid[py], last,
                                per_cell=MAP_SETS, seed=study.seed)
    delta = ensemble.delta_chi2_grid(model, study.targets, study.params, px, grid[px], py, grid[py])
    consistent = delta < 3.84
    fig, axes = plots.panels(3, ncols=3, size=(5.4, 4.3))
    marker = (study.value(px), study.value(py))
    panels = (("lab fails", f"P(the lab fails by {int(last)})", 0.5, 1.0),
              ("capital bust", f"P(capital bust by {int(last)})", 0.5, 1.0),
              ("worst loss share", f"median worst {CAPITAL_LOSS.window:g}-year loss / AI capital", CAPITAL_LOSS.share,
               max(CAPITAL_LOSS.share * 1.5, float(np.nanmax(tmap["worst loss share"])))))
    for ax, (key, label, threshold, vmax) in zip(axes, panels):
        plots.plot_outcome_map(tmap["x"], tmap["y"], tmap[key], ax=ax, threshold=threshold,
                               consistent=consistent, marker=marker, xlabel=px, ylabel=py, label=label,
                               vmax=vmax)
    study.fig("tipping_map", fig,
              f"The outcomes by {int(last)} over the two parameters that decide them most and the data cannot "
              f"({px} and {py}, each over its declared range), every other parameter drawn from "
              f"{tmap['per_cell']} kept sets (the same at every point); blue: the threshold curve (P = 0.5; "
              f"the rule's {CAPITAL_LOSS.share:.0%} for the loss); hatched: where the data reject the point "
              f"(Δχ² ≥ 3.84, the other parameters at the calibration; none hatched: the data reject none); "
              f"star: the calibration.")
    f.set(deciding=deciding, priors=priors, prior_findings=findings, tipping_map=tmap, map_delta=delta)


def _stage_tipping(study: Context):
    model = study.model
    depends = study.findings.depends
    drivers = list(SHOCK_DRIVERS)
    for name in depends.index[:N_ENSEMBLE_DRIVERS]:
        lo, hi = (float(x) for x in model.parameters.loc[name, ["min", "max"]])
        drivers.append((name, (lo, hi), str(model.parameters.loc[name, "doc"]).split(".")[0]))
    table, curves = capital_circle_tipping(model, study.params, drivers)
    study.findings.tipping_curves = curves
    fig, axes = plots.panels(len(curves))
    for ax, (name, (vals, ttb)) in zip(axes, curves.items()):
        plots.plot_time_to_bust(vals, ttb, name, HORIZONS, FORECAST_START, ax=ax,
                                calibrated=study.value(name), title=name)
    study.fig("time_to_bust", fig, "Year of the first bust after September 2025 (economic definition) "
                                   "against each driver, the others at their calibrated values; no marker "
                                   f"where none happens by {int(max(HORIZONS))}.")
    ranges = {d[0]: d[1] for d in drivers}
    top = _closest_drivers(table, ranges)
    rmap = tipping.regime_map(model, top[0], ranges[top[0]], top[1], ranges[top[1]], n=(41, 41),
                              horizon=max(HORIZONS), params=study.without(*top),
                              classifier=ECONOMIC)
    horizon = int(max(HORIZONS))
    study.fig("regime_map", plots.plot_regime_map(rmap, marker=(study.value(top[0]), study.value(top[1])),
                                                  title=f"Outcome in {horizon} over\n{top[0]} and {top[1]}"),
              f"Outcome in {horizon} (economic definition) over the two drivers whose thresholds lie "
              "closest to their calibrated values; the star marks the calibration.")
    shock = "Confidence Shock Size"
    basin = pd.concat([tipping.basin_stability(model, shock, n=200, seed=study.seed, horizon=h,
                                               params=study.without(shock), low=0.0, high=0.95,
                                               classifier=ECONOMIC).reset_index().assign(horizon=int(h))
                       for h in HORIZONS])
    study.findings.set(tipping=table, drivers=drivers, regime=top,
                       basin=basin.set_index("horizon")[["outcome", "share", "stderr"]])


def _stage_loops(study: Context):
    """Loop dominance (Loops That Matter) of the baseline and of runs either side of a threshold."""

    model, end = study.model, max(HORIZONS)
    table = study.findings.tipping.dropna(subset=["critical"])
    ranges = {d[0]: d[1] for d in study.findings.drivers}
    runs = {"calibrated baseline": dict(study.params)}
    driver = None
    if len(table):
        closest = [d for d in study.findings.regime if d in set(table["driver"])] or list(table["driver"])
        row = table[table["driver"] == closest[0]].sort_values("horizon").iloc[0]
        driver, critical = row["driver"], float(row["critical"])
        lo, hi = ranges[driver]
        step = LOOP_SIDE * (hi - lo)
        for value in (max(lo, critical - step), min(hi, critical + step)):
            runs[f"{driver} = {value:.3g}"] = {**study.params, driver: value}
    # one batch for the runs: every variable, the loops' scores vectorised over them
    keys = sorted({k for p in runs.values() for k in p})
    sets = pd.DataFrame([{k: p.get(k, study.value(k)) for k in keys} for p in runs.values()])
    batch = model.simulate_batch(sets, return_columns=list(model.variables), final_time=end)
    loops = model._loop_table(batch.isel(set=0).to_dataframe().drop(columns="set"))
    rels = model.loop_scores_batch(batch, loops=loops, relative=True)
    fig, axes = plots.panels(len(runs), ncols=1, size=(14, 3.6))
    rows = []
    t = batch["time"].to_numpy()
    shown = list(rels.isel(set=0).to_pandas().abs().mean().sort_values(ascending=False).index[:LOOP_TOP])
    for i, (ax, name) in enumerate(zip(axes, runs)):
        rel = rels.isel(set=i).to_pandas()
        bust = float(ECONOMIC.first_bust(t, [batch[v].to_numpy()[i:i + 1] for v in ECONOMIC.variables],
                                                FORECAST_START)[0])
        capex = batch["Total AI Capex"].isel(set=i).to_pandas()
        peak = float(capex.loc[FORECAST_START - 1:].idxmax())
        turn = peak  # the circle turns when AI capex peaks; the tipping moment is the first bust
        plots.plot_loop_dominance(rel, loops, ax=ax, shown=shown, marks={"first bust": bust, "AI capex peak": peak},
                                  title=name + (f": first bust {bust:g}" if np.isfinite(bust) else ": no bust"))
        row = {"run": name, "first bust": _year(bust), "AI capex peak": f"{peak:g}"}
        for label, window in (("before", (turn - 1, turn)), ("after", (turn, turn + 1))):
            part = rel.loc[(rel.index > window[0]) & (rel.index <= window[1])]
            mean = part.mean()
            top = mean.abs().idxmax()
            row[f"dominant in the year {label}"] = f"{top} ({'R' if mean[top] > 0 else 'B'}, {abs(mean[top]):.2f})"
            row[f"R share {label}"] = float(part.clip(lower=0).sum(axis=1).mean())
        rows.append(row)
        if i == 0:
            periods = ltm.dominance(rel)
    study.fig("loop_dominance", fig,
              "Relative loop scores (Loops That Matter) of the calibrated baseline and of runs either side of "
              f"the threshold of {driver or 'no driver'}: reinforcing loops above zero, balancing below; the "
              f"{LOOP_TOP} loops with the largest mean share in the baseline on their own, the rest summed. Dashed: the first "
              "bust; dotted: the peak of AI capex.")
    study.findings.loops = {"table": loops, "dominance": pd.DataFrame(rows).set_index("run"),
                            "driver": driver, "periods": periods}


def _stage_early_warning(study: Context):
    """Noisy runs on both sides of the first ensemble driver's threshold: do the indicators warn?"""

    name = study.findings.depends.index[0]
    values, ttb = study.findings.tipping_curves[name]
    busts = np.isfinite(ttb)
    if busts.all() or not busts.any():
        study.findings.early_warning = None
        return
    # the sweep's grid on each side of the threshold, EW_STEPS points in: every noisy run at the first
    # value busts and none at the second unless the noise alone moves the threshold that far
    edge = int(np.flatnonzero(busts[1:] != busts[:-1])[0])
    inside_bust = edge - EW_STEPS + 1 if busts[edge] else edge + EW_STEPS
    inside_calm = edge + EW_STEPS if busts[edge] else edge - EW_STEPS + 1
    tipping_value = float(values[int(np.clip(inside_bust, 0, len(values) - 1))])
    stable_value = float(values[int(np.clip(inside_calm, 0, len(values) - 1))])
    out = {}
    for detrending in ("kernel", "noise-free"):
        out[detrending], runs = capital_circle_study(
            study.model, study.params, parameter=name, tipping=tipping_value, stable=stable_value,
            n_runs=EW_RUNS, detrending=detrending, seed=study.seed)
    study.findings.early_warning = {"parameter": name, "tipping": tipping_value, "stable": stable_value,
                                    "summaries": out, "groups": runs["group"].value_counts().to_dict()}


def _stage_core(study: Context):
    model = study.model
    bifs = {}
    fig, axes = plots.panels(len(BIFURCATION_YEARS), ncols=2, size=(6, 4.2))
    for ax, year in zip(axes, BIFURCATION_YEARS):
        bifs[year] = tipping.bifurcations(
            model, BIFURCATION_PARAM, *BIFURCATION_RANGE, free=list(REDUCED_CORE),
            state=model.state_at(year, params=study.params), time=year,
            params=study.without(BIFURCATION_PARAM), n_starts=16, seed=study.seed)
        plots.plot_bifurcation(bifs[year], ax=ax, calibrated=study.value(BIFURCATION_PARAM),
                               title=f"other stocks frozen at {int(year)}")
    study.fig("bifurcation", fig,
              f"Equilibria of the reduced core ({' and '.join(REDUCED_CORE)} free, every other stock and the "
              f"time trends frozen at their calibrated values in that year) against {BIFURCATION_PARAM}.")
    study.findings.bifurcations = bifs


def _stage_sobol(study: Context, sobol_n):
    bounds = _posterior_bounds(study.model, study.free, study.ensemble)
    at = min(HORIZONS)
    sobol = sensitivities(study.model, "sobol", ["Investor Confidence", "Total AI Capex"], at=at, bounds=bounds,
                          n=sobol_n, seed=study.seed, params=study.without(*bounds), final_time=at)
    fig, axes = plots.panels(len(sobol), ncols=2, size=(6.5, 5))
    for ax, (output, frame) in zip(axes, sobol.items()):
        plots.plot_sensitivity(frame, ax=ax, title=f"{output} in {int(at)}")
    study.fig("sobol", fig, f"Sobol indices (first and total order, 95% CI; SALib, N = {sobol_n}) of two "
                            f"outputs in {int(at)} over the calibrated parameters' 95% ensemble ranges.")
    study.findings.sobol = sobol


def _stage_scenarios(study: Context):
    model = study.model
    columns = list(dict.fromkeys([*ECONOMIC.variables, *KEY_OUTPUTS]))
    runs = {"baseline": study.findings.base}
    for name, sc in scenarios.available(model).items():
        runs[name] = model.simulate(params={**study.params, **sc.params}, return_columns=columns,
                                    final_time=max(HORIZONS))
    rows = []
    for name, df in runs.items():
        t = df.index.to_numpy()
        vals = [df[v].to_numpy()[None] for v in ECONOMIC.variables]
        row = {"scenario": name,
               "description": "calibrated model, no scenario input" if name == "baseline"
               else scenarios.SCENARIOS[name].description}
        for h in HORIZONS:
            row[f"outcome {int(h)}"] = str(ECONOMIC.labels(t, vals, h)[0])
        row["first bust"] = _year(ECONOMIC.first_bust(t, vals, FORECAST_START)[0])
        row[f"AI capex {int(min(HORIZONS))} ($B/yr)"] = float(np.interp(min(HORIZONS), t,
                                                                                 df["Total AI Capex"]))
        rows.append(row)
    shown = list(KEY_OUTPUTS)
    study.fig("scenarios", plots.plot_scenarios({k: v[shown] for k, v in runs.items()}, shown, units=KEY_OUTPUTS),
              "Each scenario (coloured) against the calibrated baseline (black).")
    study.findings.scenarios = pd.DataFrame(rows).set_index("scenario")


def _study_stages(study: Context, stages, sobol_n, n_draws):
    with stages("structure, baseline and fit"):
        study.fig("structure", plots.plot_structure(study.model),
                  f"The money circuit of {study.model.path.name} and its feedback loops, drawn from the model "
                  "file.")
        _stage_fit(study)
    with stages(f"predictive ensemble ({n_draws} draws)"):
        _stage_ensemble(study, n_draws)
    with stages("outcomes in money, tipping map and priors"):
        _stage_outcomes(study)
    with stages("tipping points"):
        _stage_tipping(study)
    with stages("loop dominance"):
        _stage_loops(study)
    with stages(f"early-warning indicators ({2 * EW_RUNS} noisy runs, two detrendings)"):
        _stage_early_warning(study)
    with stages("continuation of the reduced core"):
        _stage_core(study)
    with stages(f"Sobol analysis (N = {sobol_n})"):
        _stage_sobol(study, sobol_n)
    with stages("scenarios"):
        _stage_scenarios(study)


def _write_loops(doc, study: Context):
    found = study.findings.loops
    table, dom = found["table"], found["dominance"]
    doc.heading("Loop dominance")
    disagree = table[table["tag_agrees"] == False]  # noqa: E712 - a column of True/False/None
    doc.text(f"Which feedback loops drive the behaviour, and when: loop scores after Schoenberg, Davidsen & "
             f"Eberlein (2020), computed from every saved quarter of a run (`aicircle loops`). The loops are the "
             f"{table.attrs['method']}; "
             + (f"the comment tags {', '.join(sorted(set(table['tag']) - {''}))} name loops found, "
                if (table["tag"] != "").any() else "no comment tag names a loop found, ")
             + (f"{', '.join(table.attrs['unmatched_tags'])} name none. " if table.attrs.get("unmatched_tags")
                else "every tag names one. ")
             + ("Every named loop has the polarity its letter says." if disagree.empty else
                f"**The polarity computed from the links contradicts the tag of {', '.join(disagree['tag'])}.**")
             + " A loop's relative score is its share of the sum of all loops' absolute scores (reinforcing "
             "positive, balancing negative); the table gives, for the year before and the year after each run's "
             "turn (the peak of AI capex), the loop with the largest mean share and the reinforcing loops' total "
             "share; the figure marks the tipping moment, each run's first bust.")
    shown = table.assign(variables=[" → ".join(v) for v in table["variables"]])
    doc.table(shown[["polarity", "tag", "length", "stocks", "variables"]], "The loops scored.")
    doc.table(dom, "Dominant loop (mean relative score) and the reinforcing loops' share in the year before and "
                   "the year after the peak of AI capex.")
    if "loop_dominance" in study.figures:
        doc.figure(*study.figures["loop_dominance"])


def _write_early_warning(doc, study: Context):
    ew = study.findings.early_warning
    doc.heading("Early-warning indicators")
    if ew is None:
        doc.text("The first driver's sweep has no bust threshold in its range: no early-warning runs.")
        return
    summary = ew["summaries"]["noise-free"]
    verdicts = []
    for (variable, indicator), rows in summary.groupby(level=["variable", "indicator"]):
        tip, calm = rows.xs("tipping", level="group").iloc[0], rows.xs("non-tipping", level="group").iloc[0]
        warns = tip["lo"] > calm["hi"]
        verdicts.append(warns)
    doc.text(f"Before a tip, a system that slows down (critical slowing down) fluctuates more and with more "
             f"memory: rising variance and lag-1 autocorrelation are the classic warnings. {EW_RUNS} runs with "
             f"white noise on investor confidence (σ = 0.02 per √year) at {ew['parameter']} = "
             f"{ew['tipping']:.3g}, where the model busts, and {EW_RUNS} at {ew['stable']:.3g}, where it does not "
             f"(values {EW_STEPS} points inside each side of the threshold of the sweep above); over the five "
             f"years before each bust (the same years in the runs that do not bust), the share of runs in which "
             f"each indicator rises (Kendall τ > 0). Residuals around the noise-free run at the same value "
             f"remove the trend exactly; around a kernel smoothing (as with observed data) the trend leaks in. "
             + ("**An indicator warns** where its share in the busting runs is clearly above that in the others: "
                f"{sum(verdicts)} of {len(verdicts)} do." if any(verdicts) else
                "**No indicator tells the busting runs from the others**: with the trend removed exactly, the "
                "intervals overlap for every variable and indicator, so a rise would be as often a false alarm "
                "as a warning. The bust here is not the slow approach to a fold that these indicators detect."))
    for detrending, frame in ew["summaries"].items():
        doc.table(frame[["n", "rising", "share", "lo", "hi", "median_tau"]],
                  f"Share of runs whose indicator rises before the (partner's) bust, 95% Wilson interval, "
                  f"residuals around the {'noise-free run' if detrending == 'noise-free' else 'kernel trend (1 year)'}.")


def _closest_drivers(table, ranges):
    """The two drivers whose (earliest-horizon) thresholds lie closest to their calibrated values."""
    t = table.dropna(subset=["critical"]).copy()
    t["relative"] = t["margin"].abs() / t["driver"].map({k: hi - lo for k, (lo, hi) in ranges.items()})
    order = t.sort_values("relative")["driver"].drop_duplicates().tolist()
    order += [d for d in ranges if d not in order]
    return order[:2]


def _posterior_bounds(model, free, ensemble):
    """Ranges for the Sobol analysis: the 2.5-97.5% of the ensemble, else the declared ranges."""
    out = {}
    for p in free:
        if ensemble is not None and p in ensemble and len(ensemble):
            lo, hi = np.percentile(ensemble[p], [2.5, 97.5])
        else:
            lo, hi = model.parameters.loc[p, ["min", "max"]]
        if hi > lo:
            out[p] = (float(lo), float(hi))
    if not out:
        raise InvalidInput("no calibrated parameter has a range for the Sobol analysis")
    return out


def _year(t):
    """A time as a quarter-resolved year ('2030.75'), or 'none'."""
    return f"{t:.2f}" if np.isfinite(t) else "none"


def _write_outcomes(doc, study: Context):
    """The outcomes in money, the tipping map and P(outcome) under several priors."""
    f = study.findings
    kept, last = f.kept, max(HORIZONS)
    doc.heading("Outcomes in money", level=3)
    rows = []
    for h, met in f.metrics.items():
        for name, unit in METRICS.items():
            if unit in ("bool", "year"):
                continue
            x = met[name].to_numpy(float)
            scale, shown = (100, "%") if unit == "fraction" else (1, unit)
            q5, q50, q95 = (scale * np.nanquantile(x, q) for q in (0.05, 0.5, 0.95))
            rows.append({"metric": name, "by": int(h), "unit": shown, "median": q50, "5%": q5, "95%": q95})
        for name in ("capital bust", "lab fails"):
            rows.append({"metric": name, "by": int(h), "unit": "share of sets",
                         "median": met[name].to_numpy(bool).mean(), "5%": np.nan, "95%": np.nan})
    doc.table(pd.DataFrame(rows).set_index("metric"),
              f"Each outcome from October 2025 to each year across the {len(kept)} kept sets: median and "
              "5–95% ($B, or % for the shares and falls; for a capital bust and the lab's failure, the share "
              "of the sets in which it happens).")
    doc.figure(*study.figures["outcomes"])
    met = f.metrics[last]
    doc.text(f"By {int(last)} the median set has lost ${np.median(met['lost revenue']):.0f}B of contracted revenue "
             f"(cancelled orders for capacity never built) but realised "
             f"${np.median(met['realised loss']):.0f}B of capital losses "
             f"({100 * np.median(met['loss share']):.1f}% of the AI capital stock at its peak; 95th "
             f"percentile {100 * np.quantile(met['loss share'], 0.95):.1f}%; over the worst "
             f"{CAPITAL_LOSS.window:g} years a median {100 * np.median(met['worst loss share']):.1f}%, against the "
             f"rule's {100 * CAPITAL_LOSS.share:.0f}%); the lab fails in "
             f"{met['lab fails'].mean():.0%} of the sets and AI capex falls a median "
             f"{100 * np.median(met['AI capex fall']):.0f}% from its peak.")
    doc.heading("The tipping map", level=3)
    deciding, tmap = f.deciding, f.tipping_map
    doc.text(f"The parameters the data cannot decide (drawn over their whole declared range) that decide the "
             f"outcomes most — by the mean absolute rank correlation with the rule's worst loss share and the "
             f"lab's failure "
             f"by {int(last)} across the kept sets: "
             + ", ".join(f"{p} ({v:.2f})" for p, v in deciding.items())
             + f". The map spans the first two; at each of its {len(tmap['x'])} × {len(tmap['y'])} points "
             f"{tmap['per_cell']} kept sets supply every other parameter. "
             + ("The data reject no point of it (Δχ² < 3.84 everywhere with the others at the calibration): "
                "where on it the industry lies is a prior, not a finding."
                if (f.map_delta < 3.84).all() else
                f"The data reject {100 * (f.map_delta >= 3.84).mean():.0f}% of its points (hatched)."))
    doc.figure(*study.figures["tipping_map"])
    doc.heading("What the priors decide", level=3)
    priors = f.priors
    outcomes = [c for c in priors.columns if c != "ess" and not c.endswith((" lo", " hi"))]
    shown = pd.DataFrame({c: [f"{p:.2f} ({lo:.2f}–{hi:.2f})" for p, lo, hi in
                              zip(priors[c], priors[f"{c} lo"], priors[f"{c} hi"])] for c in outcomes},
                         index=priors.index)
    shown["effective sets"] = priors["ess"].round().astype(int)
    doc.table(shown, f"P(each outcome) under each prior over {', '.join(deciding.index)}, the others as "
                     f"drawn: the same {len(kept)} kept sets reweighted to each prior (importance weights, 95% "
                     "interval at the effective number of sets).")
    doc.text("What holds under every prior is a finding; the rest is a condition:")
    doc.bullets([sentence for _, sentence in f.prior_findings])
    doc.text(_headline(priors, int(last)))


def _headline(priors, year):
    """The report's headline: the rule's P(bust) and the lab's P(failure), as drawn and under every prior."""
    bust, fails = priors[f"capital bust by {year}"], priors[f"lab fails by {year}"]
    return (f"**Under the priors as drawn P(capital bust by {year}) = {bust.iloc[0]:.2f} and P(the lab fails by "
            f"{year}) = {fails.iloc[0]:.2f}; under the other priors tried, {bust.min():.2f}–{bust.max():.2f} and "
            f"{fails.min():.2f}–{fails.max():.2f}.**")


def _write_document(doc, study: Context, sobol_n, n_draws, command):
    f = study.findings
    model = study.model

    def figure(name):
        if name in study.figures:
            doc.figure(*study.figures[name])

    doc.text("An October 2025 commentary described the AI industry's capital *revolving door*: viral apps "
             "attract investors, the money buys cloud compute, the clouds report growth and buy GPUs, and "
             "the chipmaker invests back into the lab, while revenue ($4.3B in H1 2025) trails spending "
             "($6.7B of R&D) and valuations ($500B). This report asks under what conditions the circle keeps "
             "turning and where it tips into a bust, with the stock-and-flow model `models/aicircle.mdl` "
             "calibrated to the article's figures and sourced history published by 30 September 2025.")
    doc.text(f"Reproduce it with `{command}`; every number below comes from that command.")
    doc.heading("What a bust is")
    doc.text(f"**The rule (capital losses judged against the industry's size):** {CAPITAL_LOSS.description}. "
             "A bust *by* a year is one that happens between October 2025 (the data end in September) and "
             "that year. Each run's outcomes are also measured in money and reported apart: the capital "
             "losses and what they consist of, the revenue lost with cancelled contracts, the lab's funding "
             "gap and whether it **fails** (its overdue bills exceed what the builders tolerate, and it "
             "restructures them), the fall of AI capex from its peak and the drawdown of the lab's "
             "valuation (docs/model.md, *Outcomes in money*). **Alternatives, kept for comparison:** the "
             f"economic definition — {ECONOMIC.description} — and the first definition — "
             f"{CONFIDENCE.description}.")
    doc.heading("The model")
    doc.text(f"{len(model.stocks)} stocks, {len(model.parameters)} parameters, "
             f"{len(model.variables)} variables; the feedback loops named in its comments: "
             f"{', '.join(model.loop_tags)}. See docs/model.md for the model in words.")
    figure("structure")
    doc.heading("Calibration")
    stats, fit = f.stats, study.calib.get("fit", {})
    doc.text(f"{len(study.free)} parameters were calibrated (chosen by screening the sensitivity matrix; the "
             f"others keep their sourced values) against {stats['n_targets']} targets: "
             f"**{percent(stats['within_2sigma'])} of all targets and {percent(stats['actuals_within_2sigma'])} "
             f"of the {stats['n_actuals']} actuals lie within 2σ**, χ² = {stats['chi2_targets']:.1f}. "
             f"Identifiability: the weighted Jacobian has rank {fit.get('identifiability', {}).get('rank', '?')} "
             f"of {len(study.free)}.")
    validation = f.validation
    firm = validation[validation["id"].isin(FIRM_TARGET_IDS)][["id", "value", "predicted", "residual"]]
    if len(firm):
        doc.table(firm.set_index("id"), "The article's firm figures: value, model, residual (error / σ).")
    doc.table(f.largest.set_index("id"), f"The {N_LARGEST_RESIDUALS} largest residuals (error / σ), "
                                            "whatever their σ.")
    figure("fit")
    figure("residuals")
    if study.calib.get("profile_intervals") is not None:
        doc.table(study.calib["profile_intervals"].set_index("parameter"),
                  "Calibrated values and 95% profile-likelihood intervals (bounded: the profile stays below "
                  "3.84 up to the declared range's edge).")
    figure("profiles")

    doc.heading("What the data say about the future")
    info, kept = f.ensemble_info, f.kept
    ranges = info["ranges"]
    full = int(((ranges["draw_max"] - ranges["draw_min"]) >= (ranges["max"] - ranges["min"]) - 1e-12).sum())
    first, bm = f.baseline_first_bust, f.baseline_metrics
    doc.text(f"The calibrated baseline is a **{f.baseline_outcome[int(min(HORIZONS))]}** in "
             f"{int(min(HORIZONS))} and a **{f.baseline_outcome[int(max(HORIZONS))]}** in "
             f"{int(max(HORIZONS))}"
             + (f", with a bust in between (from {first:.2f})" if np.isfinite(first) else ", with no bust in between")
             + f" by the rule: by {int(max(HORIZONS))} it realises ${bm['realised loss']:.0f}B of capital losses "
             f"({100 * bm['loss share']:.1f}% of the AI capital stock at its peak), loses "
             f"${bm['lost revenue']:.0f}B of contracted revenue, and the lab "
             + (f"fails in {bm['lab fails at']:.2f}" if bm["lab fails"] else "does not fail")
             + f". One run is not a forecast: the calibration pins down "
             f"{len(info['calibrated'])} parameters, and {len(info['varied'])} others — among them those that "
             f"decide the future (how investors value the capital, how far they count circular sales, the "
             f"compute price's response, ceilings, margins, what cancelling a contract costs) — are not "
             f"calibrated. {n_draws} parameter sets were drawn — the "
             f"calibrated parameters from the posterior ensemble, every other non-switch parameter uniformly "
             f"over the part of its declared range that the data do not reject on its own (Δχ² < 3.84 with the "
             f"others at the calibration: {full} of the {len(info['varied'])} keep their whole range) — and "
             f"**{len(kept)} kept**: those whose χ² against the targets is no worse than the 95th percentile "
             f"of the calibration's own ensemble ({info['threshold']:.1f}). The data cannot reject any of them. "
             f"One-at-a-time ranges are narrower than joint ones; the structural alternatives and the tipping "
             f"thresholds below show what lies beyond them.")
    _write_outcomes(doc, study)
    rows = []
    for name, summary in f.bust.items():
        for h, r in summary.iterrows():
            rows.append({"definition": name, "by": int(h), "P(bust)": r["p_bust_by"],
                         "95% interval": f"{r['lo']:.2f}–{r['hi']:.2f}",
                         "bust at": r[f"bust at {h}"], "soft landing at": r[f"soft landing at {h}"],
                         "boom at": r[f"boom at {h}"]})
    doc.table(pd.DataFrame(rows).set_index("definition"),
              f"P(bust) after September 2025 by each year over the {len(kept)} kept sets, under the priors as "
              "drawn (Wilson 95% interval: the sampling error alone, not the priors' — see the table of "
              "priors above), and the share in each state at that year, under the rule and the two "
              "alternative definitions.")
    doc.text("What the economic definition's busts depend on — the parameters whose values most change its "
             "chance among the kept sets (the tipping points, loop dominance, early warnings and scenarios "
             "below still use the economic definition):")
    doc.table(f.depends, "P(bust by the last horizon, economic definition) among the kept sets in the lowest and "
                            "highest third of each parameter's values, their difference, and the rank "
                            "correlation with a bust.")
    m = f.median_path
    doc.text(f"Across the kept sets the median AI capex peaks at ${m['peak']:.0f}B a year in {m['peak_year']:.0f}, "
             f"falls to ${m['trough']:.0f}B in {m['trough_year']:.0f} and is ${m['end']:.0f}B a year in "
             f"{int(max(HORIZONS))}; median confidence falls to {m['confidence_min']:.2f} "
             f"({m['confidence_min_year']:.0f}). Whether that turn is a bust is the definitions' difference: "
             "the first one counts any collapse of confidence or capex, the economic one asks whether capital "
             "stands idle at returns below its cost or contracts are written off — when compute stays scarce "
             "while capex falls, the build-out ends without idle capacity.")
    a = f.anatomy
    doc.text(f"What the economic busts consist of, after September 2025 over the {a['sets']} kept sets: "
             f"write-offs (cancelled contracts not paid for and builders' debt defaulted, above a tenth of AI "
             f"capex over a year) in {a['write-offs']:.1%} of the sets; idle capital at returns below its "
             f"cost with capex and utilisation falling in {a['idle capital']:.1%}; utilisation falls below "
             f"0.999 at some time in {a['idle compute']:.1%}.")
    figure("p_bust")
    figure("bands")
    narrowed = ranges[(ranges["draw_max"] - ranges["draw_min"]) < (ranges["max"] - ranges["min"]) - 1e-12]
    doc.table(narrowed[["min", "max", "draw_min", "draw_max"]],
              "The uncalibrated parameters whose declared range the data narrow on their own, and the range "
              "drawn.")
    structural = study.calib.get("structural")
    doc.heading("Structural alternatives")
    if structural is not None and len(structural):
        doc.text("Each alternative formulation fixes one switch of the model and refits the calibrated "
                 "parameters (`python calibration/structural.py`). A conclusion that an alternative of equal "
                 "fit contradicts is not a finding.")
        shown = structural.assign(first_bust=structural["first_bust"].map(_year))
        doc.table(shown.set_index("alternative"), "Fit and outcome of each alternative, refitted.")
    else:
        doc.text("No structural alternatives in the calibration results; run `python calibration/structural.py`.")

    doc.heading("Tipping points")
    doc.text("For each driver — the two scenario shocks and the parameters the ensemble's outcome depends on "
             "most — the threshold is found by bisection on the economic outcome at each horizon, the other "
             "parameters at their calibrated values; the margin is the distance from the calibrated value. "
             "Drivers that the data do not pin down have thresholds that are conditions, not predictions.")
    show = f.tipping[["driver", "horizon", "critical", "calibrated", "margin", "from", "to"]]
    doc.table(show.set_index("driver"), "Critical values, calibrated values and margins.")
    figure("time_to_bust")
    figure("regime_map")
    doc.table(f.basin, "Basin stability of the calibrated baseline under confidence shocks of a uniformly "
                          "drawn size in [0, 0.95] in 2026 (share in each state at each horizon, binomial "
                          "standard error).")
    _write_loops(doc, study)
    _write_early_warning(doc, study)
    doc.heading("The reduced core")
    for year, bif in f.bifurcations.items():
        folds = ", ".join(f"{x['value']:.3g}" for x in bif.folds) or \
            f"none in [{BIFURCATION_RANGE[0]:g}, {BIFURCATION_RANGE[1]:g}]"
        doc.text(f"Continuation of the equilibria of {' and '.join(REDUCED_CORE)} in {BIFURCATION_PARAM}, "
                 f"every other stock and every time trend frozen at the calibrated {int(year)} values (an "
                 f"autonomous reduced core, not the full model): folds at {folds}.")
    figure("bifurcation")
    doc.heading("Sensitivity")
    for output, frame in f.sobol.items():
        doc.table(frame.sort_values("ST", ascending=False),
                  f"Sobol indices of {output} in {int(min(HORIZONS))} (N = {sobol_n}), by total order.")
    figure("sobol")
    doc.heading("Scenarios")
    doc.table(f.scenarios, "Outcome of each scenario (calibrated model, economic definition).")
    figure("scenarios")

"""``aicircle report``: the whole analysis of the shipped model in one command.

It runs the calibrated baseline, draws the fit against the data, finds the
tipping points of six drivers, runs a Sobol analysis, the scenarios and the
Monte Carlo bands, and writes ``report.html`` (figures embedded),
``report.md``, the PNG figures and ``manifest.json``.

Everything is written into a temporary folder beside the destination, which
replaces the previous report only once complete: an interrupted run leaves the
previous report as it was.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import _resources
from .errors import InvalidInput

__all__ = ["DRIVERS", "build_report", "capital_circle_tipping"]

#: Drivers of the tipping analysis: (parameter, range searched, what it stands for).
DRIVERS = (
    ("Open Model Price Shock Size", (0.0, 0.8), "revenue per user lost to open-model price competition (B4)"),
    ("Herding Strength", (6.0, 16.0), "steepness of the herders' S-shaped response"),
    ("Fundamentalist Share", (0.4, 0.8), "share of investors who follow growth, not the crowd"),
    ("Chipmaker Reinvestment Stop Size", (0.0, 1.0), "share of the chipmaker's reinvestment that stops (R1)"),
    ("Confidence Shock Size", (0.0, 0.95), "share of investor confidence lost in a shock"),
    ("Credit Tightening Size", (0.0, 0.05), "rise of the clouds' credit spread (B5)"),
)
HORIZONS = (2030.0, 2035.0)
BIFURCATION_PARAM, BIFURCATION_RANGE = "Crowd Weight", (0.5, 8.0)
KEY_OUTPUTS = ("Lab Revenue", "Hyperscaler Capex", "Investor Confidence", "Lab Valuation",
               "Chipmaker Datacenter Revenue", "AI Capacity GW")


class _Stages:
    """Progress: one line per stage on stderr, with its time; timings kept for the manifest."""

    def __init__(self, show: bool, total: int):
        self.show, self.total, self.n = show, total, 0
        self.timings: dict = {}
        self.start = time.perf_counter()

    def __call__(self, name):
        stages = self

        class _Stage:
            def __enter__(self):
                stages.n += 1
                self.t = time.perf_counter()
                if stages.show:
                    print(f"[{stages.n}/{stages.total}] {name} ...", file=sys.stderr, flush=True)

            def __exit__(self, *exc):
                dt = time.perf_counter() - self.t
                stages.timings[name] = round(dt, 2)
                if stages.show and exc[0] is None:
                    print(f"      done in {dt:.1f} s", file=sys.stderr, flush=True)
                return False

        return _Stage()


def load_calibration(results_dir=None):
    """The calibrated parameters, ensemble and fit summary written by ``aicircle calibrate``."""
    from .calibrate import read_parameters

    d = Path(results_dir) if results_dir else _resources.calibration_dir() / "results"
    if not (d / "parameters.csv").exists():
        raise InvalidInput(f"no calibration in {d}; run 'aicircle calibrate' or 'aicircle report "
                           f"--recalibrate'")
    out = {"parameters": read_parameters(d / "parameters.csv"), "dir": d}
    for name in ("ensemble", "profiles", "profile_intervals", "validation", "screening"):
        p = d / f"{name}.csv"
        out[name] = pd.read_csv(p) if p.exists() else None
    out["fit"] = json.loads((d / "fit.json").read_text()) if (d / "fit.json").exists() else {}
    return out


def capital_circle_tipping(model, params, drivers=DRIVERS, horizons=HORIZONS, n_grid=33):
    """Critical value, calibrated value, margin and time to bust for each driver.

    Returns
    -------
    table : pandas.DataFrame
        One row per (driver, horizon) threshold: ``critical``, ``calibrated``,
        ``margin`` (critical - calibrated), ``from``, ``to``.
    curves : dict
        Driver -> (values, year of first bust or NaN) over its range.
    """
    from . import tipping

    rows, curves = [], {}
    for name, (lo, hi), meaning in drivers:
        calibrated = float(params.get(name, model.parameters.loc[name, "value"]))
        base = {k: v for k, v in params.items() if k != name}
        found = tipping.outcome_thresholds(model, name, lo, hi, horizons=list(horizons), n_grid=n_grid,
                                           params=base, tol=(hi - lo) * 1e-4)
        for th in found:
            rows.append({"driver": name, "meaning": meaning, "horizon": int(th["horizon"]),
                         "critical": th["value"], "calibrated": calibrated,
                         "margin": th["value"] - calibrated, "from": th["from"], "to": th["to"]})
        if not any(th for th in found):
            for h in horizons:
                rows.append({"driver": name, "meaning": meaning, "horizon": int(h), "critical": np.nan,
                             "calibrated": calibrated, "margin": np.nan, "from": "", "to": "no change in range"})
        values = np.linspace(lo, hi, n_grid)
        # one frame at once: inserting ~100 columns one by one fragments it (pandas PerformanceWarning)
        table = pd.DataFrame({name: values, **base})
        curves[name] = (values, tipping.time_to_bust(model, table, final_time=max(horizons)))
    return pd.DataFrame(rows), curves


def build_report(out="report", recalibrate=False, seed=0, progress=True, model_path=None,
                 sobol_n=1024, mc_runs=1000, command=None):
    """Run the analysis and write the report to ``out`` (see the module docstring).

    ``command`` is recorded as the way to reproduce the report; by default,
    the Python call that made it.

    Returns
    -------
    pathlib.Path
        The report folder.
    """
    from . import __version__, load, plots, scenarios, tipping
    from . import calibrate as cal
    from ._document import Document
    from .observables import find_observables, read_targets
    from .sensitivity import monte_carlo, sensitivity

    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}-partial-*"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-partial-", dir=out.parent))
    stages = _Stages(progress, 9)
    if command is None:
        command = (f"python -c \"from aicircle.report import build_report; build_report({str(out)!r}, "
                   f"recalibrate={recalibrate}, seed={seed}, model_path={model_path!r}, "
                   f"sobol_n={sobol_n}, mc_runs={mc_runs})\"")
    try:
        doc = Document("aicircle: where does the AI capital circle tip?")
        with stages("loading the model and the targets"):
            model = load(model_path or _resources.shipped_model())
            targets_path = _resources.shipped_targets()
            targets = read_targets(targets_path)
        with stages("calibration (shipped results)" if not recalibrate else "recalibrating"):
            if recalibrate:
                result = cal.calibrate(model, targets, seed=seed, progress=progress)
                cal.write_results(result, work / "calibration", model=model, command=command)
                calib = load_calibration(work / "calibration")
            else:
                calib = load_calibration()
            params = {k: v for k, v in calib["parameters"].items() if k in model.parameters.index}
            free = list(calib["fit"].get("free", []))
            # the ensemble holds the calibrated parameters only: the others keep their
            # (sourced) model values, which are also their values in parameters.csv
            ensemble = calib["ensemble"]
        figures = {}

        def fig(name, obj, caption):
            path = work / f"{name}.png"
            plots.save(obj, path)
            figures[name] = (path, caption)
            return path

        # ---------------------------------------------------------------- the model
        with stages("structure and baseline"):
            fig("structure", plots.plot_structure(model),
                "The money circuit of models/aicircle.mdl and its feedback loops, drawn from the model file.")
            base = model.simulate(params=params)
            names = find_observables(model.variables)
            t_run = model.time
            fine = model.simulate(params=params, saveper=t_run["time_step"], final_time=2027,
                                  return_columns=list(names.values()))
            outcome = tipping.classify(base.index.to_numpy(), base["Investor Confidence"].to_numpy()[None],
                                       base["Hyperscaler Capex"].to_numpy()[None], 2035)[0]
        # ---------------------------------------------------------------- calibration
        with stages("fit figures"):
            validation = cal.validate(model, targets, params)
            stats = cal.fit_statistics(targets, validation)
            bands_fit = None
            if ensemble is not None and len(ensemble):
                bands_fit, _ = monte_carlo(
                    model, n=min(200, len(ensemble)), seed=seed, ensemble=ensemble,
                    outputs=[names[o] for o in dict.fromkeys(targets["observable"]) if o in names],
                    bust=False, final_time=2027)
            fig("fit", plots.plot_fit(targets, fine.index.to_numpy(), {c: fine[c].to_numpy() for c in fine},
                                      names, bands=bands_fit),
                "Each calibrated observable (line), the 95% band of the calibration ensemble (shade) and "
                "the data with ±1σ error bars; horizontal bars span each figure's window.")
            fig("residuals", plots.plot_residuals(validation),
                "Residual of every target (error / σ); the grey band is ±2σ.")
            if calib["profiles"] is not None and len(calib["profiles"]):
                intervals = calib["profile_intervals"].set_index("parameter")
                fig("profiles", plots.plot_profiles(calib["profiles"], intervals),
                    "Profile likelihoods: Δχ² as each calibrated parameter is fixed and the others "
                    "re-fitted; the 95% interval is where Δχ² < 3.84.")
        # ---------------------------------------------------------------- tipping
        with stages(f"tipping points of {len(DRIVERS)} drivers"):
            table, curves = capital_circle_tipping(model, params)
            fig_ttb, axes = plots.panels(len(curves))
            for ax, (name, (vals, ttb)) in zip(axes, curves.items()):
                plots.plot_time_to_bust(vals, ttb, name, ax=ax, calibrated=params.get(
                    name, float(model.parameters.loc[name, "value"])), title=name)
            fig("time_to_bust", fig_ttb, "Year of the first bust (DESIGN §4 classifier) against each "
                "driver, the others at their calibrated values; no marker where it never busts by 2035.")
            # the confidence subsystem: confidence free, every other stock frozen at
            # its calibrated value in 2025 and in 2030 (when growth has slowed)
            bifs = {}
            fig_bif, axes = plots.panels(2, ncols=2, size=(6, 4.2))
            crowd = params.get(BIFURCATION_PARAM, _default(model, BIFURCATION_PARAM))
            for ax, year in zip(axes, (2025.0, 2030.0)):
                bifs[year] = tipping.bifurcations(
                    model, BIFURCATION_PARAM, *BIFURCATION_RANGE, free=["Investor Confidence"],
                    state=model.state_at(year, params=params), time=year,
                    params={k: v for k, v in params.items() if k != BIFURCATION_PARAM},
                    n_starts=16, box=(0.0, 1.0), seed=seed)
                plots.plot_bifurcation(bifs[year], ax=ax, calibrated=crowd,
                                       title=f"other stocks frozen at {int(year)}")
            fig("bifurcation", fig_bif,
                f"Equilibria of investor confidence against {BIFURCATION_PARAM} (the weight of the crowd in "
                "the herders' signal), every other stock frozen at its calibrated value: where the fold "
                "lies below the calibrated weight (dotted), a confident and a despondent market coexist.")
            top = _most_influential(table)
            rmap = tipping.regime_map(model, top[0], _range(top[0]), top[1], _range(top[1]), n=(41, 41),
                                      horizon=2035.0, params={k: v for k, v in params.items()
                                                              if k not in top})
            fig("regime_map", plots.plot_regime_map(rmap, marker=(params.get(top[0], _default(model, top[0])),
                                                                  params.get(top[1], _default(model, top[1]))),
                                                    title=f"Outcome by 2035 over\n{top[0]} and {top[1]}"),
                "Regime map by 2035 (DESIGN §4 classifier) over the two drivers with the smallest margins.")
            shock_free = {k: v for k, v in params.items() if k != "Confidence Shock Size"}
            basin = pd.concat([tipping.basin_stability(model, "Confidence Shock Size", n=200, seed=seed,
                                                       horizon=h, params=shock_free, low=0.0, high=0.95)
                               .reset_index().assign(horizon=int(h)) for h in HORIZONS])
            basin = basin.set_index("horizon")[["outcome", "share", "stderr"]]
        # ---------------------------------------------------------------- sensitivity
        with stages(f"Sobol analysis (n = {sobol_n})"):
            sob_bounds = _posterior_bounds(model, free, ensemble)
            run_params = {k: v for k, v in params.items() if k not in sob_bounds}
            sobol = {}
            for output in ("Investor Confidence", "Hyperscaler Capex"):
                sobol[output] = sensitivity(model, "sobol", output, at=2030.0, bounds=sob_bounds, n=sobol_n,
                                            seed=seed, params=run_params, final_time=2030)
            fig_s, axes = plots.panels(len(sobol), ncols=2, size=(6.5, 5))
            for ax, (output, frame) in zip(axes, sobol.items()):
                plots.plot_sensitivity(frame, ax=ax, title=f"{output} in 2030")
            fig("sobol", fig_s, f"Sobol indices (first and total order, 95% CI; SALib, N = {sobol_n}) of two "
                "outputs in 2030 over the calibrated parameters' 95% ensemble ranges.")
        # ---------------------------------------------------------------- scenarios
        with stages("scenarios"):
            runs = {"baseline": base}
            outcomes = []
            for name, sc in scenarios.available(model).items():
                runs[name] = model.simulate(params={**params, **sc.params})
            for name, df in runs.items():
                row = {"scenario": name,
                       "description": "calibrated model, no scenario input" if name == "baseline"
                       else scenarios.SCENARIOS[name].description}
                for h in HORIZONS:
                    row[f"outcome {int(h)}"] = tipping.classify(
                        df.index.to_numpy(), df["Investor Confidence"].to_numpy()[None],
                        df["Hyperscaler Capex"].to_numpy()[None], h)[0]
                row["capex 2030 ($B/yr)"] = float(np.interp(2030, df.index, df["Hyperscaler Capex"]))
                row["confidence min"] = float(df["Investor Confidence"].min())
                outcomes.append(row)
            fig("scenarios", plots.plot_scenarios(runs, list(KEY_OUTPUTS[:4]), units={
                "Lab Revenue": "$B/Year", "Hyperscaler Capex": "$B/Year", "Investor Confidence": "fraction",
                "Lab Valuation": "$B"}), "Each scenario (dashed) against the calibrated baseline (black).")
        # ---------------------------------------------------------------- Monte Carlo
        with stages(f"Monte Carlo ({mc_runs} runs)"):
            source = "calibration ensemble" if ensemble is not None and len(ensemble) else "declared ranges"
            bands, p_bust = monte_carlo(model, n=mc_runs, seed=seed,
                                        ensemble=ensemble if source.startswith("cal") else None,
                                        outputs=list(KEY_OUTPUTS[:3]))
            fig_b, axes = plots.panels(3, ncols=3, size=(5, 3.8))
            units = {"Lab Revenue": "$B/Year", "Hyperscaler Capex": "$B/Year", "Investor Confidence": "fraction"}
            for ax, output in zip(axes, KEY_OUTPUTS[:3]):
                plots.plot_bands(bands, output, ax=ax, unit=units[output], title=output)
            fig("bands", fig_b, f"Vensim-style 50/75/95/100% bands from {mc_runs} runs drawn from the {source}.")
            fig("p_bust", plots.plot_p_bust(p_bust), "Share of the Monte Carlo runs that have busted by each year.")
        # ---------------------------------------------------------------- the document
        with stages("writing report.html and report.md"):
            _write_document(doc, model, stats, calib, free, validation, targets, table, basin, bifs, top, sobol,
                            outcomes, p_bust, outcome, figures, sobol_n, mc_runs, source, command)
            (work / "report.md").write_text(doc.markdown(), encoding="utf-8")
            (work / "report.html").write_text(doc.html(), encoding="utf-8")
        # the manifest after the last stage, so that its timings include every stage
        manifest = {
            "command": command, "seed": seed, "recalibrated": bool(recalibrate),
            "versions": _versions(), "python": platform.python_version(),
            "machine": f"{platform.machine()} {platform.system()}", "model": str(model.path),
            "targets": str(targets_path), "parameters": params, "free": free,
            "timings_s": stages.timings, "total_s": round(time.perf_counter() - stages.start, 1),
            "figures": sorted(f"{k}.png" for k in figures),
            "aicircle": __version__,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2, default=float))
        _replace_dir(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def _replace_dir(new: Path, dest: Path):
    """Put ``new`` at ``dest``, the old ``dest`` removed only once ``new`` is in place."""
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}-old-{time.time_ns()}"
        dest.rename(old)
    try:
        new.rename(dest)
    except BaseException:  # interrupted between the two renames: put the previous report back
        if old is not None:
            old.rename(dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _default(model, name):
    return float(model.parameters.loc[name, "value"])


def _range(name):
    return dict((d[0], d[1]) for d in DRIVERS)[name]


def _most_influential(table):
    """The two drivers whose (earliest-horizon) thresholds lie closest to their calibrated values."""
    t = table.dropna(subset=["critical"]).copy()
    ranges = dict((d[0], d[1][1] - d[1][0]) for d in DRIVERS)
    t["relative"] = (t["margin"].abs() / t["driver"].map(ranges))
    order = t.sort_values("relative")["driver"].drop_duplicates().tolist()
    order += [d[0] for d in DRIVERS if d[0] not in order]
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


def _versions():
    import importlib.metadata as md

    out = {}
    for pkg in ("aicircle", "pysd", "numpy", "scipy", "pandas", "xarray", "matplotlib", "SALib", "emcee"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _write_document(doc, model, stats, calib, free, validation, targets, table, basin, bifs, top, sobol,
                    outcomes, p_bust, outcome, figures, sobol_n, mc_runs, source, command):
    def figure(name):
        if name in figures:
            doc.figure(*figures[name])

    doc.text("An October 2025 commentary described the AI industry's capital *revolving door*: viral apps "
             "attract investors, the money buys cloud compute, the clouds report growth and buy GPUs, and "
             "the chipmaker invests back into the lab, while revenue ($4.3B in H1 2025) trails spending "
             "($6.7B of R&D) and valuations ($500B). This report asks under what conditions the circle keeps "
             "turning and where it tips into a bust, with the stock-and-flow model `models/aicircle.mdl` "
             "calibrated to the article's figures and sourced history up to September 2025.")
    doc.text(f"Reproduce it with `{command}`; every number below comes from that command.")
    doc.heading("The model")
    doc.text(f"{len(model.stocks)} stocks, {len(model.parameters)} parameters, "
             f"{len(model.variables)} variables; the feedback loops named in its comments: "
             f"{', '.join(model.loops)}. See docs/model.md for the model in words.")
    figure("structure")
    doc.heading("Calibration")
    fit = calib.get("fit", {})
    doc.text(f"{len(free)} parameters were calibrated (chosen by screening the sensitivity matrix; the "
             f"others keep their sourced values) against {stats['n_targets']} targets: "
             f"**{100 * stats['within_2sigma']:.0f}% of all targets and {100 * stats['actuals_within_2sigma']:.0f}% "
             f"of the {stats['n_actuals']} actuals lie within 2σ**, χ² = {stats['chi2_targets']:.1f}. "
             f"Identifiability: the weighted Jacobian has rank {fit.get('identifiability', {}).get('rank', '?')} "
             f"of {len(free)}.")
    firm = validation[validation["id"].isin(FIRM_IDS)][["id", "value", "predicted", "residual"]]
    if len(firm):
        doc.table(firm.set_index("id"), "The article's firm figures: value, model, residual (error / σ).")
    figure("fit")
    figure("residuals")
    if calib.get("profile_intervals") is not None:
        doc.table(calib["profile_intervals"].set_index("parameter"),
                  "Calibrated values and 95% profile-likelihood intervals (bounded: the profile stays below "
                  "3.84 up to the declared range's edge).")
    figure("profiles")
    doc.heading("Tipping points")
    doc.text(f"The calibrated baseline ends as a **{outcome}** by 2035 (DESIGN §4: a bust if investor "
             f"confidence falls below 0.2 or capex below half its running peak). For each driver the "
             f"threshold is found by bisection on simulated outcomes for the horizons 2030 and 2035; the "
             f"margin is the distance from the calibrated value.")
    show = table[["driver", "horizon", "critical", "calibrated", "margin", "from", "to"]]
    doc.table(show.set_index("driver"), "Critical values, calibrated values and margins.")
    figure("time_to_bust")
    figure("regime_map")
    doc.table(basin, "Basin stability of the calibrated baseline under confidence shocks of a uniformly "
                     "drawn size in [0, 0.95] (share ending in each regime by each horizon, binomial standard error).")
    for year, bif in bifs.items():
        folds = ", ".join(f"{f['value']:.3g}" for f in bif.folds) or \
            f"none in [{BIFURCATION_RANGE[0]:g}, {BIFURCATION_RANGE[1]:g}]"
        doc.text(f"Continuation of the confidence equilibria in {BIFURCATION_PARAM}, the other stocks frozen "
                 f"at their calibrated {int(year)} values: folds at {folds}.")
    figure("bifurcation")
    doc.heading("Sensitivity")
    for output, frame in sobol.items():
        doc.table(frame.sort_values("ST", ascending=False),
                  f"Sobol indices of {output} in 2030 (N = {sobol_n}), by total order.")
    figure("sobol")
    doc.heading("Scenarios")
    doc.table(pd.DataFrame(outcomes).set_index("scenario"), "Outcome of each scenario (calibrated model).")
    figure("scenarios")
    doc.heading("Uncertainty: Monte Carlo")
    doc.text(f"{mc_runs} runs drawn from the {source}. Probability of a bust by 2030: "
             f"{_p_at(p_bust, 2030):.0%}; by 2035: {_p_at(p_bust, 2035):.0%}.")
    figure("bands")
    figure("p_bust")


FIRM_IDS = ("oai_rev_h1_2025", "oai_rd_h1_2025", "oai_val_2025_09", "cloud_growth_2024q4", "vc_ai_share_2025q1")


def _p_at(p_bust, year):
    if p_bust is None or year not in p_bust.index:
        return float("nan")
    return float(p_bust.loc[year])

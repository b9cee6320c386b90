"""``aicircle report``: the whole analysis of a model in one command.

:func:`write_report` runs an :class:`Analysis` -- its stages, each a function
of one shared :class:`Context`, filling one typed findings object -- and writes
``report.html`` (figures embedded), ``report.md``, the PNG figures and
``manifest.json``. :class:`GenericAnalysis` serves any model: its baseline
run, its fit to a target file, Morris screening of its parameters and sweeps
of its drivers (:func:`build_report`). A study brings an analysis of its own
(the capital circle's is :mod:`aicircle.study.report`).

Everything is written into a fresh folder beside the destination and moved
into place once complete. The destination may hold only what an earlier report
wrote (listed in its ``manifest.json``); anything else is refused unless
``force`` is given, and nothing but the report's own files is ever replaced or
removed. A lock file keeps two reports from writing into one folder at once.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from . import __version__, plots, tipping
from . import calibrate as cal
from ._document import Document
from ._io import acquire_lock, check_destination, publish, remove_stale_partials
from .errors import InvalidInput, UnknownName
from .model import load
from .observables import find_observables, read_targets
from .sensitivity import sensitivities

__all__ = ["Analysis", "Context", "GenericAnalysis", "GenericFindings", "build_report", "generic_bounds",
           "write_report"]

#: A model outside the study: Morris trajectories, stocks shown and analysed, drivers swept.
MORRIS_N = 32
N_GENERIC_OUTPUTS = 6
N_GENERIC_DRIVERS = 2
#: A parameter the model gives no range varies this far either side of its value (stated in the report).
UNDECLARED_SPAN = 0.5


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


@dataclasses.dataclass
class Context:
    """What the stages share: the model, its calibration, the figures and the findings."""

    model: object
    targets: pd.DataFrame
    targets_path: Path
    calib: dict
    params: dict
    free: list
    ensemble: pd.DataFrame
    work: Path
    seed: int
    progress: bool
    figures: dict = dataclasses.field(default_factory=dict)
    findings: object = None

    def fig(self, name, obj, caption):
        path = self.work / f"{name}.png"
        plots.save(obj, path)
        self.figures[name] = (path, caption)

    def value(self, name):
        return float(self.params.get(name, self.model.parameters.loc[name, "value"]))

    def without(self, *names):
        return {k: v for k, v in self.params.items() if k not in names}


class Findings:
    """Base of an analysis' findings: a dataclass whose fields the stages fill (``slots``: a name
    that is not a field is an error, not a new entry)."""

    __slots__ = ()

    def set(self, **values):
        for name, value in values.items():
            setattr(self, name, value)


class Analysis(Protocol):
    """What :func:`write_report` runs: a study's analysis, or :class:`GenericAnalysis`.

    Attributes
    ----------
    name : str
        Recorded in the manifest (``"generic"``, ``"capital circle"``).
    title : str
        The report's title.
    n_stages : int
        Stages shown in the progress lines, the loading and the writing included.
    """

    name: str
    title: str
    n_stages: int

    def check(self, model, recalibrate: bool, targets_path) -> None:
        """Refuse what cannot run (before anything is written)."""

    def default_targets(self):
        """The target file used when none is given (None: no targets)."""

    def read_targets(self, path) -> pd.DataFrame:
        """A target file as :func:`aicircle.observables.read_targets`' table."""

    def calibrate(self, model, targets, seed: int, progress: bool) -> cal.CalibrationResult:
        """Calibrate ``model`` (``--recalibrate``)."""

    def calibration(self) -> dict | None:
        """The calibration to start from without ``--recalibrate`` (:func:`aicircle.calibrate.read_results`'s
        dict), or None for the model's own values."""

    def run(self, context: Context, stages) -> Findings:
        """Every stage, each inside ``with stages(name):``; the findings (also ``context.findings``)."""

    def write(self, doc: Document, context: Context, command: str) -> None:
        """The report's text, tables and figures."""


def write_report(out, model, analysis: Analysis, *, seed=0, progress=True, recalibrate=False,
                 params_path=None, targets_path=None, command=None, force=False) -> Path:
    """Run ``analysis`` on ``model`` and write the report to ``out`` (see the module docstring).

    Parameters
    ----------
    out : path
        The report folder.
    model : aicircle.Model
    analysis : Analysis
    seed : int
        Seed of the analysis' samples and of every run's random functions
        (:meth:`aicircle.Model.with_seed`): the same seed gives the same report.
    params_path : path, optional
        A ``name,value`` CSV whose values replace the model's (and the
        calibration's point values; the ensembles keep the calibration's
        posterior).
    targets_path : path, optional
        A target CSV; by default the analysis' own (``default_targets``).
    command : str
        Recorded as the way to reproduce the report.
    force : bool
        Let the report go into a folder that holds other files (they are left
        alone).

    Returns
    -------
    pathlib.Path
        The report folder.
    """
    out = Path(out).resolve()
    model = model.with_seed(seed)  # every run of the analysis draws the model's random functions from it
    analysis.check(model, recalibrate, targets_path)
    check_destination(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = acquire_lock(out)
    # holding the lock, no other report writes here: a partial folder left is a killed run's
    remove_stale_partials(out)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-partial-", dir=out.parent))
    stages = _Stages(progress, analysis.n_stages)
    try:
        with stages("loading the targets and the parameter values"):
            context = _prepare(analysis, model, work, seed, progress, recalibrate, params_path, targets_path,
                               command)
        analysis.run(context, stages)
        with stages("writing report.html and report.md"):
            doc = Document(analysis.title)
            analysis.write(doc, context, command)
            (work / "report.md").write_text(doc.markdown(), encoding="utf-8")
            (work / "report.html").write_text(doc.html(), encoding="utf-8")
        # the manifest after the last stage, so that its timings include every stage
        owned = sorted(p.name for p in work.iterdir() if p.is_file()) + ["manifest.json"]
        manifest = {
            "command": command, "seed": seed, "recalibrated": bool(recalibrate),
            "analysis": analysis.name,
            "versions": _versions(), "python": platform.python_version(),
            "machine": f"{platform.machine()} {platform.system()}", "model": str(model.path),
            "targets": str(context.targets_path) if context.targets_path else None,
            "parameters": context.params, "free": context.free,
            "timings_s": stages.timings, "total_s": round(time.perf_counter() - stages.start, 1),
            "figures": sorted(f"{k}.png" for k in context.figures),
            "files": sorted(set(owned) | ({"calibration"} if recalibrate else set())),
            "aicircle": __version__,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2, default=float))
        publish(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        lock.unlink(missing_ok=True)
    return out


def _prepare(analysis, model, work, seed, progress, recalibrate, params_path, targets_path, command) -> Context:
    """The shared data: targets, calibration (or the model's values) and ``params_path``'s values."""
    if targets_path is None:
        targets_path = analysis.default_targets()
    targets = analysis.read_targets(targets_path) if targets_path is not None else None
    calib = {"parameters": {}, "fit": {}, "ensemble": None, "profiles": None, "profile_intervals": None,
             "structural": None}
    if recalibrate:
        result = analysis.calibrate(model, targets, seed, progress)
        cal.write_results(result, work / "calibration", model=model, command=command)
        calib = cal.read_results(work / "calibration")
    else:
        calib = analysis.calibration() or calib
    params = {k: v for k, v in calib["parameters"].items() if k in model.parameters.index}
    if params_path is not None:
        given = cal.read_parameters(params_path)
        unknown = [k for k in given if k not in model.parameters.index]
        if unknown:
            raise InvalidInput(f"{params_path}: '{unknown[0]}' is not a parameter of {model.path.name}")
        params.update(given)
    return Context(model, targets, Path(targets_path) if targets_path is not None else None, calib, params,
                   list(calib["fit"].get("free", [])), calib["ensemble"], work, seed, progress)


# --------------------------------------------------------------------------
# any model
# --------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class GenericFindings(Findings):
    """What the generic analysis found (each field filled by its stage)."""

    base: pd.DataFrame = None
    stocks: pd.DataFrame = None
    span: tuple = None
    fit_note: str = None
    validation: pd.DataFrame = None
    stats: dict = None
    bounds: pd.DataFrame = None
    morris: dict = None
    sweeps: dict = None
    thresholds: pd.DataFrame = None
    drivers_swept: list = None
    drivers_named: bool = None
    outcome: tipping.Outcome = None


class GenericAnalysis:
    """The analysis of any model: baseline, fit, Morris screening, sweeps of the drivers.

    Parameters
    ----------
    drivers : sequence of str
        Parameters to sweep (default: the parameters Morris ranks first).
    outcome : str or aicircle.tipping.Outcome, optional
        ``'VARIABLE<VALUE'`` whose thresholds the sweeps find.
    morris_n : int
        Morris trajectories.
    vocabulary : mapping, optional
        The observables a target file may name (needed to read one).
    switches : collection of str
        Parameters never varied (a study's scenario inputs).
    actuals : callable, optional
        Targets table -> one flag per target, True for actuals (for the fit statistics).
    note : str, optional
        A sentence added to the report's first paragraph.
    """

    name = "generic"
    n_stages = 6

    def __init__(self, drivers=(), outcome=None, morris_n=MORRIS_N, vocabulary=None, switches=(), actuals=None,
                 note=None):
        self.drivers, self.outcome, self.morris_n = list(drivers), outcome, morris_n
        self.vocabulary, self.switches, self.actuals, self.note = vocabulary, switches, actuals, note

    def check(self, model, recalibrate, targets_path):
        if recalibrate and targets_path is None:
            raise InvalidInput(f"{model.path.name} has no targets of its own: recalibrating it needs "
                               f"--targets")
        self.title = f"aicircle: an analysis of {model.path.name}"
        self.outcome = _outcome(model, self.outcome)
        self.drivers = _drivers(model, self.drivers)

    def default_targets(self):
        return None

    def read_targets(self, path):
        if self.vocabulary is None:
            raise InvalidInput(f"targets {path}: the analysis has no vocabulary of observables to read them in")
        return read_targets(path, self.vocabulary)

    def calibrate(self, model, targets, seed, progress):
        return cal.calibrate(model, targets, seed=seed, progress=progress, switches=self.switches,
                             actuals=self._actuals(targets))

    def calibration(self):
        return None

    def _actuals(self, targets):
        return None if self.actuals is None else self.actuals(targets)

    def run(self, context, stages):
        context.findings = GenericFindings()
        with stages("baseline run"):
            _stage_baseline(context)
        with stages("fit to the targets"):
            _stage_generic_fit(context, self._actuals)
        with stages(f"Morris screening (N = {self.morris_n})"):
            _stage_morris(context, self.morris_n, self.switches)
        with stages("sweeps of the drivers"):
            _stage_sweeps(context, self.drivers, self.outcome)
        return context.findings

    def write(self, doc, context, command):
        _write_generic(doc, context, command, self.morris_n, self.note)


def build_report(model_path, out="report", seed=0, progress=True, command=None, force=False,
                 recalibrate=False, *, params_path=None, targets_path=None, drivers=(), outcome=None,
                 morris_n=MORRIS_N, vocabulary=None, switches=(), actuals=None, data_dirs=()):
    """The generic analysis of the model at ``model_path`` (:class:`GenericAnalysis`), written to ``out``.

    See :func:`write_report` and :class:`GenericAnalysis` for the parameters;
    ``command`` is by default the Python call that made the report; ``data_dirs``
    are the folders the model's data files may lie in besides its own (see
    :func:`aicircle.load`).
    """
    model = load(model_path, data_dirs=data_dirs)
    if command is None:
        command = (f"python -c \"from aicircle.report import build_report; build_report({str(model_path)!r}, "
                   f"{str(Path(out).resolve())!r}, seed={seed}, recalibrate={recalibrate}, "
                   f"params_path={params_path!r}, targets_path={targets_path!r}, drivers={list(drivers)!r}, "
                   f"outcome={outcome if isinstance(outcome, str) or outcome is None else outcome.label!r}, "
                   f"morris_n={morris_n}, data_dirs={[str(d) for d in data_dirs]!r})\"")
    analysis = GenericAnalysis(drivers, outcome, morris_n, vocabulary=vocabulary, switches=switches,
                               actuals=actuals)
    return write_report(out, model, analysis, seed=seed, progress=progress, recalibrate=recalibrate,
                        params_path=params_path, targets_path=targets_path, command=command, force=force)


def _outcome(model, outcome):
    if outcome is None:
        return None
    try:
        return outcome if not isinstance(outcome, str) else tipping.parse_outcome(outcome, model)
    except UnknownName as err:
        raise InvalidInput(f"outcome '{outcome}': {err}") from err


def _drivers(model, drivers):
    try:
        drivers = [model.resolve(d) for d in drivers]
    except UnknownName as err:
        raise InvalidInput(f"driver: {err}") from err
    not_params = [d for d in drivers if d not in model.parameters.index]
    if not_params:
        raise InvalidInput(f"--driver '{not_params[0]}' is not a parameter (a numeric constant) of "
                           f"{model.path.name}")
    return drivers


def _generic_outputs(study: Context) -> list:
    """The stocks analysed: the model's first N_GENERIC_OUTPUTS stocks (its variables if it has none),
    a subscripted one by its elements (``x[d1]``, ...: the run's columns)."""
    return _columns(study.model, study.model.stocks or study.model.variables)[:N_GENERIC_OUTPUTS]


def _columns(model, names) -> list:
    """The run's columns of ``names``: a subscripted variable's elements in its place."""
    return [column for name in names for column in model.columns(name)]


def _stage_baseline(study: Context):
    model = study.model
    shown = _generic_outputs(study)
    run = model.simulate(params=study.params)
    study.fig("baseline", plots.plot_scenarios({"baseline": run[shown]}, shown,
                                               title=f"{model.path.name}: baseline run"),
              f"The first {len(shown)} stocks of {model.path.name} over the run"
              + (", with the values of the parameter file." if study.params else ", with the model's values."))
    t = run.index.to_numpy()
    stocks = run[_columns(model, model.stocks)]
    table = pd.DataFrame({"initial": stocks.iloc[0], "final": stocks.iloc[-1], "min": stocks.min(),
                          "max": stocks.max()})
    table.index.name = "stock"
    study.findings.set(base=run, stocks=table, span=(float(t[0]), float(t[-1])))


def _stage_generic_fit(study: Context, actuals):
    if study.targets is None:
        study.findings.fit_note = "No targets were given (--targets FILE): no fit."
        return
    names = find_observables(study.model.variables, dict.fromkeys(study.targets["observable"]))
    missing = sorted(set(study.targets["observable"]) - set(names))
    if missing:
        study.findings.fit_note = (f"The targets name observables the model does not define "
                                   f"({', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}): no fit.")
        return
    validation = cal.validate(study.model, study.targets, study.params)
    study.findings.set(validation=validation, stats=cal.fit_statistics(study.targets, validation,
                                                                              actuals=actuals(study.targets)))
    study.fig("residuals", plots.plot_residuals(validation), "Residual of every target (error / σ); the grey "
                                                               "band is ±2σ.")


def generic_bounds(model, params, switches=()) -> pd.DataFrame:
    """Ranges of the parameters a model outside the study varies, and where each comes from.

    The declared range where the model gives a finite one (``switches``
    excluded, as in :func:`aicircle.sensitivity.parameter_bounds`); otherwise
    ``UNDECLARED_SPAN`` either side of the value (a parameter of value 0 without
    a range is not varied, nor one whose range reaches beyond what a plot's axis
    can show, :data:`aicircle.plots.MAX_PLOTTED_MAGNITUDE`: ``1e308 ± 50%``).
    """

    switches, rows = {model.resolve(s) for s in switches}, []
    for name, row in model.parameters.iterrows():
        if name in switches:
            continue
        value = float(params.get(name, row["value"]))
        lo, hi = float(row["min"]), float(row["max"])
        with np.errstate(over="ignore"):
            spread = sorted((value * (1 - UNDECLARED_SPAN), value * (1 + UNDECLARED_SPAN)))
        if np.isfinite(lo) and np.isfinite(hi) and lo < hi:
            if max(abs(lo), abs(hi)) <= plots.MAX_PLOTTED_MAGNITUDE:
                rows.append({"parameter": name, "min": lo, "max": hi, "value": value, "range": "declared"})
        elif value != 0 and max(abs(x) for x in spread) <= plots.MAX_PLOTTED_MAGNITUDE:
            a, b = spread
            rows.append({"parameter": name, "min": a, "max": b, "value": value,
                         "range": f"value ±{100 * UNDECLARED_SPAN:.0f}% (none declared)"})
    return pd.DataFrame(rows, columns=["parameter", "min", "max", "value", "range"]).set_index("parameter")


def _stage_morris(study: Context, morris_n, switches):
    model = study.model
    bounds = generic_bounds(model, study.params, switches)
    study.findings.bounds = bounds
    if bounds.empty:
        study.findings.morris = {}
        return
    outputs = _generic_outputs(study)
    space = {k: (r["min"], r["max"]) for k, r in bounds.iterrows()}
    morris = sensitivities(model, "morris", outputs, bounds=space, n=morris_n, seed=study.seed,
                           params={k: v for k, v in study.params.items() if k not in space})
    fig, axes = plots.panels(len(morris), ncols=2, size=(6, max(3.0, 0.3 * len(space) + 1.5)))
    for ax, (output, frame) in zip(axes, morris.items()):
        plots.plot_sensitivity(frame, ax=ax, title=f"{output} at {study.findings.span[1]:g}")
    study.fig("morris", fig, f"Morris elementary effects (μ*, 95% CI; SALib, {morris_n} trajectories) of each "
                             f"stock at the final time over the parameters' ranges.")
    study.findings.morris = morris


def _ranked_drivers(morris) -> list:
    """Parameters by their largest Morris μ* relative to the output's largest, over the outputs."""
    scores = {}
    for frame in morris.values():
        top = float(frame["mu_star"].max())
        for name, mu in frame["mu_star"].items():
            scores[name] = max(scores.get(name, 0.0), float(mu) / top if top > 0 else 0.0)
    return sorted(scores, key=lambda k: -scores[k])


def _stage_sweeps(study: Context, drivers, outcome):
    model, bounds = study.model, study.findings.bounds
    named = bool(drivers)
    drivers = list(drivers) or _ranked_drivers(study.findings.morris)[:N_GENERIC_DRIVERS]
    outputs = _generic_outputs(study)
    end = study.findings.span[1]
    curves, rows = {}, []
    for name in drivers:
        if name in bounds.index:
            lo, hi = (float(x) for x in bounds.loc[name, ["min", "max"]])
        else:
            value = float(study.params.get(name, model.parameters.loc[name, "value"]))
            lo, hi = sorted((value * (1 - UNDECLARED_SPAN), value * (1 + UNDECLARED_SPAN)))
            if lo == hi:
                raise InvalidInput(f"--driver '{name}' is 0 and has no declared range to sweep")
        values = np.linspace(lo, hi, 33)
        base = {k: v for k, v in study.params.items() if k != name}
        ds = model.simulate_batch(pd.DataFrame({name: values, **base}), return_columns=outputs)
        curves[name] = (values, {o: ds[o].to_numpy()[:, -1] for o in outputs})
        if outcome is not None:
            found = tipping.outcome_thresholds(model, name, lo, hi, outcome=outcome, horizons=[end],
                                               params=base, tol=(hi - lo) * 1e-4)
            rows += [{"driver": name, "critical": th["value"], "value": float(study.params.get(
                name, model.parameters.loc[name, "value"])), "from": th["from"], "to": th["to"]} for th in found]
            if not found:
                rows.append({"driver": name, "critical": np.nan, "value": np.nan, "from": "",
                             "to": f"no change of '{outcome.label}' in [{lo:g}, {hi:g}]"})
    if curves:
        study.fig("sweeps", plots.plot_response(curves, calibrated={
            k: float(study.params.get(k, model.parameters.loc[k, "value"])) for k in curves}),
            f"Each stock at the final time ({end:g}) against each driver over its range, the other "
            "parameters at their values (marker: the value used).")
    study.findings.set(sweeps=curves, thresholds=pd.DataFrame(rows) if outcome is not None else None,
                       drivers_swept=drivers, drivers_named=named, outcome=outcome)


def _write_generic(doc, study: Context, command, morris_n, note=None):
    f, model = study.findings, study.model

    def figure(name):
        if name in study.figures:
            doc.figure(*study.figures[name])

    doc.text(f"The generic analysis of `{model.path.name}`: {len(model.stocks)} stocks, "
             f"{len(model.parameters)} parameters, {len(model.variables)} variables." + (f" {note}" if note else ""))
    doc.text(f"Reproduce it with `{command}`; every number below comes from that command.")
    doc.heading("Baseline run")
    doc.text("Parameter values: " + (f"{len(study.params)} from the parameter file, the rest the model's."
                                     if study.params else "the model file's own."))
    doc.table(f.stocks, "Each stock at the start and the end of the run, and its range over the run.")
    figure("baseline")
    doc.heading("Fit to the targets")
    if f.stats is not None:
        st = f.stats
        doc.text(f"{st['n_targets']} targets: {percent(st['within_2sigma'])} within 2σ, "
                 f"χ² = {st['chi2_targets']:.1f}.")
        doc.table(f.validation.set_index("id")[["value", "sigma", "predicted", "residual"]],
                  "Each target, the model's value and the residual (error / σ).")
        figure("residuals")
    else:
        doc.text(f.fit_note)
    doc.heading("Sensitivity")
    if f.morris:
        doc.table(f.bounds, "The parameters varied and their ranges.")
        for output, frame in f.morris.items():
            doc.table(frame, f"Morris screening of {output} at the final time ({morris_n} trajectories), "
                             "ranked by μ*.")
        figure("morris")
    else:
        doc.text("No parameter has a range to vary (none declared, and each value 0 or too large to vary).")
    doc.heading("Drivers")
    if f.sweeps:
        doc.text(f"Swept: {', '.join(f.drivers_swept)}"
                 + (" (as asked)." if f.drivers_named else " (the parameters Morris ranks first)."))
        figure("sweeps")
        if f.thresholds is not None:
            doc.table(f.thresholds.set_index("driver"),
                      f"Where the outcome '{f.outcome.label}' at the final time changes (bisection).")
        else:
            doc.text("No outcome was given (--outcome 'VARIABLE<VALUE'): the sweeps show how the stocks "
                     "respond, without a threshold.")
    else:
        doc.text("No driver to sweep.")


# --------------------------------------------------------------------------
# helpers and the document
# --------------------------------------------------------------------------


def _versions():
    import importlib.metadata as md

    out = {}
    for pkg in ("aicircle", "pysd", "numpy", "scipy", "pandas", "xarray", "matplotlib", "SALib", "emcee"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def percent(x):
    """A fraction as a whole percentage ('42%')."""
    return f"{100 * x:.0f}%"

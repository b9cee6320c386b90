"""The ``aicircle`` command line (docs/design.md §5).

Exit status 0 on success, 2 on bad input (the user's to fix), 1 on a failure
that is not the user's (a solver that gives up). On error stderr holds exactly
one line, ``aicircle: error: <what and where>``; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
import warnings
from pathlib import Path

from . import _io
from ._io import write_atomic  # noqa: F401 - the name other modules knew
from .errors import AicircleError, IntegrationError, InvalidInput, SampleSizeWarning, TimeGridWarning

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class _UsageError(InvalidInput):
    """A malformed command line."""


class _UnitsMismatch(AicircleError):
    """``check`` found equations whose units disagree (exit status 1: the model's, not the command's)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise _UsageError(message)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def _assignment(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--set needs NAME=VALUE, got '{text}'")
    if not value.strip():
        raise argparse.ArgumentTypeError(f"--set {name.strip()} has no value")
    return name.strip(), _finite(value.strip())


def _text(what):
    """An argparse type for a name or a path: anything but empty."""
    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} is empty")
        return text
    return check


def _whole_number(minimum: int):
    """An argparse type for a whole number of at least ``minimum``."""
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value
    return check


_seed = _whole_number(0)
_positive_int = _whole_number(1)


def _iso_date(text: str) -> str:
    import datetime

    try:
        datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an ISO date (YYYY-MM-DD)") from None
    return text.strip()


def _model_input(args):
    return [("MODEL", args.model)] if getattr(args, "model", None) else []


def _load(args):
    """The command's model; a command that runs it runs it with its --seed (``Model.with_seed``)."""
    from . import _resources, load

    model = load(args.model if args.model else _resources.shipped_model(), data_dirs=args.data_dir or ())
    return model.with_seed(args.seed) if "seed" in args else model


def _cmd_run(args):
    from .study import scenarios

    _io.check_output(args.out, "--out", _model_input(args) + ([("--params", args.params)] if args.params else []),
                     args.force, _io.owned_run_csv)
    model = _load(args)
    params = {**_base_params(args, model), **_unique_names(dict(args.set or []), "--set")}
    if args.scenario is not None:
        params = {**params, **scenarios.scenario_params(model, args.scenario),
                  **_unique_names(dict(args.set or []), "--set")}
    columns = _unique_names({c: None for c in args.return_columns}, "--return-columns") \
        if args.return_columns else None
    df = model.simulate(params=params, solver=args.solver, final_time=args.final_time,
                        allow_nonfinite=args.keep_nonfinite,
                        return_columns=list(columns) if columns else None)
    if args.out and not _io.is_stdout(args.out):
        write_atomic(args.out, lambda p: df.to_csv(p))
        _info(args, f"wrote {len(df)} rows x {df.shape[1]} columns to {args.out}")
    else:
        df.to_csv(sys.stdout)


def _cmd_describe(args):
    import pandas as pd

    from .observables import find_observables
    from .study import scenarios
    from .study.observables import OBSERVABLES

    model = _load(args)
    t = model.time
    print(f"model: {model.path}")
    print(f"time: {t['initial_time']:g} to {t['final_time']:g}, TIME STEP {t['time_step']:g}, "
          f"SAVEPER {t['saveper']:g}")
    print(f"stocks ({len(model.stocks)}): {', '.join(model.stocks)}")
    hidden = len(model.state_names) - len(model.stocks)
    if hidden:
        print(f"hidden states of builtins: {hidden}")
    print(f"\nparameters ({len(model.parameters)}):")
    with pd.option_context("display.max_rows", None, "display.width", 200,
                           "display.max_colwidth", 60):
        table = model.parameters[["value", "min", "max", "units"]]
        print(table.to_string() if len(table) else "  (none)")
    obs = find_observables(model.variables, OBSERVABLES)
    print(f"\nobservables ({len(obs)}):")
    for oid, name in obs.items():
        print(f"  {oid:32s} {name}")
    lib = scenarios.available(model)
    print(f"\nscenarios ({len(lib)}):")
    for name, sc in lib.items():
        print(f"  {name:28s} {sc.description}")
    loops = model.loop_tags
    if loops:
        print(f"\nfeedback loops named in the comments ({len(loops)}; 'aicircle loops' finds them all):")
        for loop, names in loops.items():
            print(f"  {loop}: {', '.join(names)}")


def _cmd_loops(args):
    from . import loops as _ltm
    from .study import scenarios

    _check_json(args, ("--params", args.params))
    model = _load(args)
    params = _base_params(args, model)
    if args.scenario is not None:
        params = {**params, **scenarios.scenario_params(model, args.scenario)}
    run = model.simulate(params=params)
    table = model.loops(run)
    scores = model.loop_scores(run, loops=table)
    periods = _ltm.dominance(scores)
    share = _ltm.relative(scores).abs().mean()
    print(f"{len(table)} feedback loops of {model.path.name} ({table.attrs['method']})")
    print(f"{'loop':6s} {'polarity':8s} {'tag':4s} {'mean share':>10s}  variables")
    for name, row in table.iterrows():
        note = "" if row["tag_agrees"] is not False else f"  (tagged {row['tag']}: polarity disagrees)"
        print(f"{name:6s} {row['polarity']:8s} {row['tag'] or '-':4s} {share[name]:10.3f}  "
              f"{' -> '.join(row['variables'])}{note}")
    if table.attrs.get("unmatched_tags"):
        print(f"tags in the comments that name no loop found: {', '.join(table.attrs['unmatched_tags'])}")
    print("\ndominant loop (largest absolute relative score) by period:")
    for row in periods.itertuples():
        print(f"  {row.start:10g} to {row.end:10g}  {row.loop:6s} ({row.polarity})  share {row.share:.2f}")
    if args.json:
        rel = _ltm.relative(scores)
        _write_json(args.json, {
            "model": str(model.path), "scenario": args.scenario, "method": table.attrs["method"],
            "loops": [{"loop": name, "id": row["id"], "polarity": row["polarity"], "tag": row["tag"] or None,
                       "tag_agrees": row["tag_agrees"], "variables": list(row["variables"]),
                       "mean_share": float(share[name])} for name, row in table.iterrows()],
            "unmatched_tags": table.attrs.get("unmatched_tags", []),
            "dominance": periods.to_dict("records"),
            "times": [float(t) for t in scores.index],
            "scores": {k: [None if not math.isfinite(v) else float(v) for v in scores[k]] for k in scores},
            "relative": {k: [None if not math.isfinite(v) else float(v) for v in rel[k]] for k in rel}})


def _cmd_check(args):
    from . import _resources, units

    _check_json(args)
    path = args.model if args.model else _resources.shipped_model()
    findings = units.check(path)
    rows = findings.to_dict("records")
    if args.json:
        _write_json(args.json, {"model": str(path), "findings": rows})
    for row in rows:
        print(f"{row['variable']}: expected {row['expected'] or '?'}, found {row['found']}: {row['problem']}")
        if row["expression"]:
            print(f"    in: {row['expression']}")
    if rows:
        raise _UnitsMismatch(f"{len(rows)} units error{'s' if len(rows) > 1 else ''} in {path} (listed above)")
    print(f"units check: no errors in {path}")


def _bounds(text: str):
    name, sep, rest = text.partition("=")
    lo, sep2, hi = rest.partition(":")
    if not sep or not sep2 or not name.strip():
        raise argparse.ArgumentTypeError(f"--bounds needs NAME=LO:HI, got '{text}'")
    lo, hi = _finite(lo.strip()), _finite(hi.strip())
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"--bounds {name.strip()} needs LO < HI, got {lo:g}:{hi:g}")
    return name.strip(), (lo, hi)


def _write_json(path, data):
    import json

    write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=2, default=_json_default)))


def _check_json(args, *inputs):
    _io.check_output(args.json, "--json", _model_input(args) + [i for i in inputs if i[1]],
                     args.force, _io.owned_json)


def _unique_names(values: dict, where: str) -> dict:
    """Refuse two spellings of one name (Vensim's rule: case, spaces and underscores)."""
    from .compiler import clean_name

    seen = {}
    for name in values:
        other = seen.setdefault(clean_name(name), name)
        if other != name:
            raise InvalidInput(f"{where}: '{other}' and '{name}' are the same name")
    return values


_CALIBRATE_FILES = ("parameters.csv", "screening.csv", "profile_intervals.csv", "profiles.csv",
                    "ensemble.csv", "validation.csv", "fit.json")


def _check_calibrate_out(args):
    from . import _resources

    if args.out is None:
        args.out = "calibration/results"
        shipped = _resources.calibration_dir() / "results"
        if Path(args.out).resolve() == shipped.resolve():
            raise InvalidInput(f"without --out, calibrate would replace the shipped calibration in {shipped}; "
                               f"name it (--out calibration/results) to replace it, or choose another folder")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out {args.out} is a file, not a folder")
    ours = (out / "fit.json").is_file() and _io.owns(_io.owned_fit, out / "fit.json")
    inputs = _model_input(args) + ([("--targets", args.targets)] if args.targets else [])
    for name in _CALIBRATE_FILES:
        _io.check_output(out / name, "--out", inputs, args.force or ours)


def _json_default(x):
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _is_shipped(model_arg):
    from . import _resources

    return not model_arg or Path(model_arg).resolve() == _resources.shipped_model().resolve()


def _cmd_calibrate(args):
    from . import calibrate as cal
    from .study import calibration

    _check_calibrate_out(args)
    model = _load(args)
    quick = args.quick
    if args.free and args.include:
        raise InvalidInput("--include adds to the screened parameters; with --free, list them all there")
    result = calibration.calibrate(model, args.targets, seed=args.seed, free=args.free, before=args.before,
                           include=args.include or (),
                           n_starts=3 if quick else 8, profile_points=0 if quick else 7,
                           mcmc_steps=0 if quick else 300, progress=not args.quiet, workers=args.workers)
    command = f"aicircle calibrate{' ' + args.model if args.model else ''} --seed {args.seed} --out {args.out}"
    command += f" --targets {args.targets}" if args.targets else ""
    command += f" --before {args.before}" if args.before else ""
    command += "".join(f" --free '{f}'" for f in args.free or [])
    command += "".join(f" --include '{f}'" for f in args.include or [])
    command += " --quick" if args.quick else ""
    cal.write_results(result, args.out, model=model, command=command)
    st = result.statistics
    _info(args, f"calibrated {len(result.free)} parameters: chi2 {st['chi2_targets']:.1f} over "
                f"{st['n_targets']} targets, {100 * st['within_2sigma']:.0f}% within 2 sigma "
                f"({100 * st['actuals_within_2sigma']:.0f}% of actuals); results in {args.out}")


def _cmd_validate(args):
    import math as _m

    from . import calibrate as cal
    from .study import calibration

    _check_json(args, ("--targets", args.targets), ("--params", args.params))
    model = _load(args)
    params = cal.read_parameters(args.params) if args.params else _calibrated(args.model, model)
    if args.params:
        _unique_names(params, args.params)
    known = {p for p in params if _known(model, p)}
    unknown = sorted(set(params) - known)
    if unknown and args.params:
        raise InvalidInput(f"{args.params}: unknown parameter '{unknown[0]}' for {model.path.name}")
    table = calibration.validate(model, args.targets, {p: params[p] for p in known})
    rows = []
    print(f"{'id':28s} {'value':>12s} {'predicted':>12s} {'error':>10s}")
    for rec in table.to_dict("records"):
        err_key = "abs_error" if _m.isnan(rec["log_error"]) and not _m.isnan(rec["abs_error"]) else "log_error"
        print(f"{rec['id']:28s} {rec['value']:12.4g} {rec['predicted']:12.4g} "
              f"{rec[err_key]:10.3f} ({err_key})")
        row = {"id": rec["id"], "observable": rec["observable"], "value": rec["value"],
               "predicted": rec["predicted"], "residual": rec["residual"]}
        row[err_key] = None if _m.isnan(rec[err_key]) else rec[err_key]
        rows.append(row)
    residuals = [r["residual"] for r in rows if _m.isfinite(r["residual"])]
    if residuals:
        within = sum(abs(z) <= 2 for z in residuals)
        print(f"chi2 = {sum(z * z for z in residuals):.4g} over {len(residuals)} targets "
              f"(residual = error / sigma); {within} of {len(residuals)} within 2 sigma")
    if args.json:
        _write_json(args.json, rows)
    bad = [r["id"] for r in rows if not _m.isfinite(r["predicted"])]
    if bad:
        raise IntegrationError(f"no prediction for target(s) {', '.join(bad)}")


def _calibrated(model_arg, model) -> dict:
    """The shipped calibration for the shipped model; nothing for any other model."""
    from . import _resources
    from . import calibrate as cal

    if not _is_shipped(model_arg) or not _resources.shipped_parameters().exists():
        return {}
    values = cal.read_parameters(_resources.shipped_parameters())
    return {k: v for k, v in values.items() if k in model.parameters.index}


def _base_params(args, model) -> dict:
    """The values a run starts from: --params FILE, else the shipped calibration for the shipped
    model (unless --uncalibrated), else the model file's own; said on stderr."""
    from . import _resources
    from . import calibrate as cal

    if args.params and args.uncalibrated:
        raise InvalidInput("--params and --uncalibrated exclude each other")
    if args.params:
        values = _unique_names(cal.read_parameters(args.params), args.params)
        unknown = sorted(p for p in values if not _known(model, p))
        if unknown:
            raise InvalidInput(f"{args.params}: unknown parameter '{unknown[0]}' for {model.path.name}")
        _note(args, f"used the parameter values of {args.params}")
        return values
    values = {} if args.uncalibrated else _calibrated(args.model, model)
    if values:
        _note(args, f"used the shipped calibration ({_resources.shipped_parameters().name}; "
                    f"--uncalibrated for the model file's values)")
    elif _is_shipped(args.model):  # a user's own model runs on its own values: nothing to say
        _note(args, f"used the values in {model.path.name}")
    return values


def _note(args, text):
    """A line for stderr once the command has succeeded (on an error, stderr holds the error alone)."""
    args.notes = [*getattr(args, "notes", []), text]


def _params_options(p):
    p.add_argument("--params", type=_text("--params"),
                   help="parameters.csv (name,value) to start from (default for the shipped model: its "
                        "shipped calibration)")
    p.add_argument("--uncalibrated", action="store_true",
                   help="use the values in the model file, not the shipped calibration")


def _known(model, name):
    from .errors import UnknownName

    try:
        model.resolve(name)
        return True
    except UnknownName:
        return False


def _cmd_tipping(args):
    from . import tipping
    from .study import outcomes

    _check_json(args, ("--params", args.params))
    model = _load(args)
    lo, hi = args.range
    outcome = tipping.parse_outcome(args.outcome, model) if args.outcome else None
    horizons = args.horizon or None
    if horizons:
        start, end = model.time["initial_time"], model.time["final_time"]
        for h in horizons:
            if not start < h <= end:
                raise InvalidInput(f"--horizon {h:g} is outside the model's run ({start:g} to {end:g})")
    if args.classifier and outcome:
        raise InvalidInput("give --outcome or --classifier, not both: --outcome replaces the classifier")
    classifier = None if outcome else (outcomes.classifier(args.classifier) if args.classifier
                                       else outcomes.default_classifier(model))
    if args.classifier and not classifier.applies_to(model):
        missing = ", ".join(f"'{n}'" for n in outcomes.missing_names(model)[:3])
        raise InvalidInput(f"--classifier {args.classifier} reads the capital-circle study's variables, which "
                           f"{model.path.name} does not define ({missing}, ...); give --outcome 'VAR<X' instead")
    result = tipping.tipping(model, args.param, lo, hi, outcome=outcome, seed=args.seed,
                             params=_base_params(args, model), horizons=horizons, classifier=classifier)
    if args.json:
        _write_json(args.json, result)
    print(f"{result['param']} in [{lo:g}, {hi:g}]")
    for kind in ("folds", "hopf"):
        for b in result[kind]:
            extra = f", frequency {b['frequency']:.6g}" if kind == "hopf" else ""
            print(f"  {kind[:-1] if kind == 'folds' else 'hopf'} at {b['value']:.10g}{extra}")
    for line in result.get("lines", []):
        span = ", ".join(f"{name} {a:.6g} to {b:.6g}" for name, (a, b) in line["states"].items())
        print(f"  line of equilibria at {line['value']:.10g} (continuation met {span}; not a fold)")
    for th in result["thresholds"]:
        print(f"  threshold at {th['value']:.6g} (horizon {th['horizon']:g}): {th['from']} -> {th['to']}")
    if not (result["folds"] or result["hopf"] or result["thresholds"] or result.get("lines")):
        print("  nothing found in the range")
    if result.get("note"):
        print(f"  ({result['note']})")


def _cmd_sensitivity(args):
    from . import sensitivity as sens
    from .study import scenarios

    _check_json(args, ("--params", args.params))
    model = _load(args)
    bounds = _unique_names(dict(args.bounds), "--bounds") if args.bounds else None
    base = _base_params(args, model)
    switches = scenarios.switches(model)
    varied = set(sens.parameter_bounds(model, bounds, switches))
    frame = sens.sensitivity(model, args.method, args.output, at=args.at, bounds=bounds, n=args.n,
                             seed=args.seed, progress=not args.quiet, switches=switches,
                             params={k: v for k, v in base.items() if model.resolve(k) not in varied})
    at = args.at if args.at is not None else model.time["final_time"]
    n = None if args.method == "oat" else (args.n if args.n is not None else
                                             {"morris": 64, "sobol": 1024}[args.method])
    print(frame.to_string())
    if args.json:
        _write_json(args.json, {"method": args.method, "output": model.resolve(args.output),
                                "at": at, "n": n, "seed": args.seed,
                                "indices": {k: {c: float(v) for c, v in row.items()}
                                            for k, row in frame.iterrows()}})


def _cmd_report(args):
    import shlex

    from .study.report import build_report

    command = "aicircle report" + "".join(
        f" {shlex.quote(str(v))}" for v in [args.model] if v) + f" --out {shlex.quote(args.out)} --seed {args.seed}"
    command += " --recalibrate" if args.recalibrate else ""
    for flag, value in (("--params", args.params), ("--targets", args.targets), ("--outcome", args.outcome)):
        command += f" {flag} {shlex.quote(value)}" if value else ""
    command += "".join(f" --driver {shlex.quote(d)}" for d in args.driver or [])
    command += "".join(f" --data-dir {shlex.quote(d)}" for d in args.data_dir or [])
    build_report(args.out, recalibrate=args.recalibrate, seed=args.seed, progress=not args.quiet,
                 command=command, force=args.force, model_path=args.model, params_path=args.params,
                 data_dirs=args.data_dir or (),
                 targets_path=args.targets, drivers=_unique_names({d: None for d in args.driver or []},
                                                                  "--driver"),
                 outcome=args.outcome)
    _info(args, f"report written to {Path(args.out) / 'report.html'}")


def _cmd_explore(args):
    from . import _explorer_arguments, explorer

    try:
        explorer._panel()
    except ImportError as err:  # the optional extra is missing: the user's to install
        raise InvalidInput(str(err)) from err
    model = _load(args)
    params = _base_params(args, model)
    label = f"the values in {args.params}" if args.params else \
        ("the shipped calibration" if params else None)
    arguments = _explorer_arguments(model, params, args.outcome, label)
    _info(args, f"aicircle explore: scoring the loops of {model.path.name} before serving it")

    def announce(url):
        _info(args, f"aicircle explore: serving {model.path.name} at {url} (Ctrl-C to stop)")
        sys.stderr.flush()

    explorer.serve(arguments, port=args.port, address=args.address, show=args.show, announce=announce)


def _read_run(path, variables=None):
    """The CSV ``aicircle run`` wrote: a numeric ``time`` index and numeric columns, or InvalidInput.

    With ``variables``, only the columns they name are read (the header is read first), so
    that plotting two columns of a 100,000-column run does not parse the others.
    """
    import pandas as pd

    from . import plots

    p = Path(path)
    if not p.exists():
        raise InvalidInput(f"RUN {path} does not exist")
    if p.is_dir():
        raise InvalidInput(f"RUN {path} is a folder, not a CSV file")
    not_run = f"RUN {path} is not a CSV written by 'aicircle run'"
    if not _io.owns(_io.owned_run_csv, p):
        raise InvalidInput(f"{not_run} (its header does not start with 'time')")
    try:
        usecols = None
        if variables is not None:
            with open(p, newline="", encoding="utf-8") as f:  # pandas takes seconds per 10,000 columns
                header = next(csv.reader(f), [])[1:]
            wanted = set(plots.run_columns(header, variables))
            usecols = [0] + [j + 1 for j, c in enumerate(header) if c in wanted]
        frame = pd.read_csv(p, index_col=0, usecols=usecols)
    except (ValueError, UnicodeDecodeError, csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InvalidInput(f"{not_run}: {err}") from err
    if frame.empty or frame.shape[1] == 0:
        raise InvalidInput(f"{not_run}: it has no rows or no columns")
    for name, column in [("time", frame.index.to_series()), *frame.items()]:
        numbers = pd.to_numeric(column, errors="coerce")
        bad = numbers.isna() & column.notna()
        if bad.any():
            raise InvalidInput(f"{not_run}: column '{name}' holds '{column[bad].iloc[0]}', not a number")
        if name == "time" and not (numbers.notna().all() and numbers.is_monotonic_increasing):
            raise InvalidInput(f"{not_run}: its times are not increasing numbers")
    return frame.apply(pd.to_numeric).set_axis(pd.to_numeric(frame.index), axis=0)


def _cmd_plot(args):
    from . import plots

    _io.check_output(args.output, "-o", [("RUN", args.run)], args.force, _io.owned_png)
    if not _io.is_stdout(args.output) and Path(args.output).suffix.lower() != ".png":
        raise InvalidInput(f"-o {args.output}: aicircle plot writes PNG; give a name ending in .png")
    wanted = list(_unique_names({v: None for v in args.variables}, "VAR"))
    if len(wanted) > plots.MAX_RUN_SERIES:
        raise InvalidInput(f"aicircle plot draws at most {plots.MAX_RUN_SERIES} variables; got {len(wanted)} "
                           f"(make several plots)")
    frame = _read_run(args.run, wanted)
    names = plots.run_columns(frame, wanted)
    joined, source = ", ".join(names), Path(args.run).name
    title = args.title or plots.literal_text(f"{joined} ({source})" if len(joined) <= 60
                                             else f"{len(names)} variables of {source}")
    fig = plots.plot_run(frame, names, title=title)
    write_atomic(args.output, lambda p: plots.save(fig, p, format="png"))
    _info(args, f"wrote {args.output}")


def _cmd_export_xmile(args):
    from .xmile import export_xmile

    src = Path(args.model)
    out = args.output if args.output is not None else str(src.with_suffix(".xmile"))
    _io.check_output(out, "-o" if args.output is not None else "the default output", [("MODEL", src)],
                     args.force, _io.owned_xmile)
    if _io.is_stdout(out):
        sys.stdout.write(export_xmile(src))
        return
    text = export_xmile(src)
    write_atomic(out, lambda p: p.write_text(text, encoding="utf-8", newline="\n"))
    _info(args, f"wrote {out}")


def _info(args, text):
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="aicircle", description="System dynamics of the AI capital circle: run, "
                     "calibrate and analyse Vensim/XMILE models (exit status 2: bad input; 1: a failure)")
    parser.add_argument("--version", action="version", version=f"aicircle {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback on error")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def data_dir(p):
        p.add_argument("--data-dir", action="append", type=_text("--data-dir"), metavar="DIR",
                       help="a folder the model's data files (GET XLS/DIRECT ...) may lie in besides the "
                            "model's own (repeatable)")

    def seed(p, also=""):
        p.add_argument("--seed", type=_seed, default=0,
                       help=f"seed of {also}the model's random functions (RANDOM UNIFORM, ...) in every run; "
                            f"the same seed gives the same numbers (default 0)")

    def force(p):
        p.add_argument("--force", action="store_true",
                       help="replace an existing output file that aicircle did not write")

    def command(name, func, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("-q", "--quiet", action="store_true", help="no progress or messages")
        p.add_argument("--debug", action="store_true", help="show a traceback on error")
        p.set_defaults(func=func)
        return p

    p = command("run", _cmd_run, "run a model and write its results as CSV")
    p.add_argument("model", nargs="?", type=_text("MODEL"),
                   help="a .mdl or .xmile model (default: the shipped model)")
    data_dir(p)
    p.add_argument("--set", action="append", type=_assignment, metavar="NAME=VALUE",
                   help="set a parameter (repeatable)")
    p.add_argument("--scenario", type=_text("--scenario"),
                   help="a named scenario (see 'aicircle describe')")
    p.add_argument("--solver", default="euler", help="euler, rk4, rk23, rk45, dop853, lsoda, radau, bdf")
    p.add_argument("--final-time", type=_finite, help="end of the run, in the model's time unit")
    p.add_argument("--out", help="CSV file to write ('-' or default: standard output)")
    p.add_argument("--keep-nonfinite", action="store_true",
                   help="keep running when a value becomes NaN or infinite (default: stop with an error)")
    p.add_argument("--return-columns", nargs="+", metavar="NAME", type=_text("--return-columns"),
                   help="write only these variables (default: all)")
    seed(p)
    _params_options(p)
    force(p)

    p = command("plot", _cmd_plot, "plot variables of a CSV written by 'aicircle run' against time (PNG)")
    p.add_argument("run", type=_text("RUN"), help="the CSV written by 'aicircle run'")
    p.add_argument("variables", nargs="+", metavar="VAR", type=_text("VAR"),
                   help="columns to plot (matched ignoring case, spaces and underscores)")
    p.add_argument("-o", "--output", required=True, type=_text("-o"), help="the PNG file to write")
    p.add_argument("--title", help="the figure's title (default: the variables and the file's name)")
    force(p)

    p = command("describe", _cmd_describe, "list parameters, observables, scenarios and loops")
    p.add_argument("model", nargs="?", type=_text("MODEL"),
                   help="a .mdl or .xmile model (default: the shipped model)")
    data_dir(p)

    p = command("check", _cmd_check, "check the units of every equation (Vensim's units check); exit "
                "status 1 when some disagree")
    p.add_argument("model", nargs="?", type=_text("MODEL"),
                   help="a .mdl or .xmile model (default: the shipped model)")
    p.add_argument("--json", help="write the findings to this JSON file: "
                   "{\"model\", \"findings\": [{\"variable\", \"expected\", \"found\", ...}]}")
    force(p)

    p = command("export-xmile", _cmd_export_xmile, "write a Vensim model as XMILE")
    p.add_argument("model", type=_text("MODEL"), help="the .mdl model")
    p.add_argument("-o", "--output", help="the XMILE file ('-': standard output; default: beside the model)")
    force(p)

    p = command("calibrate", _cmd_calibrate, "calibrate the model against a target file")
    p.add_argument("model", nargs="?", type=_text("MODEL"),
                   help="a .mdl or .xmile model (default: the shipped model)")
    data_dir(p)
    p.add_argument("--targets", type=_text("--targets"),
                   help="target CSV (default: the shipped calibration/targets.csv)")
    seed(p, "the starts, the MCMC and ")
    p.add_argument("--out", type=_text("--out"),
                   help="folder for the results (default: calibration/results, unless that is the shipped "
                        "calibration: then --out must name it)")
    p.add_argument("--before", type=_iso_date, help="use only targets whose window ends by this ISO date")
    p.add_argument("--free", action="append", metavar="NAME", type=_text("--free"),
                   help="calibrate these parameters instead of the screened ones (repeatable)")
    p.add_argument("--include", action="append", metavar="NAME", type=_text("--include"),
                   help="calibrate these parameters besides the screened ones (repeatable)")
    p.add_argument("--quick", action="store_true", help="fewer starts, no profiles or MCMC")
    p.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1,
                   help="processes sharing the fit's starts and the profiles, the MCMC running beside "
                        "them; the result does not depend on their number (default: one per core, here "
                        "%(default)s)")
    force(p)

    p = command("validate", _cmd_validate, "compare the model's predictions with each target")
    p.add_argument("model", nargs="?", type=_text("MODEL"),
                   help="a .mdl or .xmile model (default: the shipped model)")
    data_dir(p)
    p.add_argument("--targets", required=True, type=_text("--targets"), help="target CSV")
    p.add_argument("--params", type=_text("--params"),
                   help="parameters.csv (name,value); default: the shipped calibration")
    p.add_argument("--json", help="write one object per target to this JSON file")
    seed(p)
    force(p)

    p = command("tipping", _cmd_tipping, "find folds, Hopf points and outcome thresholds (the shipped "
                "model runs with its shipped calibration)")
    p.add_argument("model", nargs="?", type=_text("MODEL"),
                   help="a .mdl or .xmile model (default: the shipped model)")
    data_dir(p)
    p.add_argument("--param", required=True, type=_text("--param"), help="the parameter to vary")
    p.add_argument("--range", nargs=2, type=_finite, required=True, metavar=("LO", "HI"),
                   help="the interval of --param to scan (finite, LO < HI)")
    p.add_argument("--outcome", type=_text("--outcome"),
                   help="an outcome 'VAR<X' or 'VAR>X' (default: the bust classifier)")
    p.add_argument("--horizon", action="append", type=_finite, metavar="T",
                   help="judge the outcome at this time (repeatable; default: FINAL TIME)")
    p.add_argument("--classifier", choices=["capital-loss", "economic", "confidence"], default=None,
                   help="the capital-circle definition of a bust (default: capital-loss, the rule; economic and "
                        "confidence are the earlier definitions, kept for comparison)")
    seed(p, "the continuation's starts and ")
    p.add_argument("--json", help="write the result as JSON to this file")
    _params_options(p)
    force(p)

    p = command("sensitivity", _cmd_sensitivity, "OAT, Morris or Sobol sensitivity of a variable")
    p.add_argument("model", nargs="?", type=_text("MODEL"),
                   help="a .mdl or .xmile model (default: the shipped model)")
    data_dir(p)
    p.add_argument("--method", required=True, choices=["oat", "morris", "sobol"],
                   help="one at a time (each parameter at its bounds), Morris screening or Sobol indices")
    p.add_argument("--output", required=True, type=_text("--output"), help="the model variable analysed")
    p.add_argument("--at", type=_finite, help="time of the output (default: FINAL TIME)")
    p.add_argument("--bounds", action="append", type=_bounds, metavar="NAME=LO:HI",
                   help="vary NAME over [LO, HI] (repeatable; default: every parameter with a declared range)")
    p.add_argument("--n", type=_positive_int,
                   help="SALib's base sample size N (Sobol runs N*(D+2) simulations, Morris N*(D+1))")
    seed(p, "the sample and ")
    p.add_argument("--json", help="write the indices as JSON to this file")
    _params_options(p)
    force(p)

    p = command("loops", _cmd_loops, "find the feedback loops and which dominates when (Loops That Matter; "
                "the shipped model runs with its shipped calibration)")
    p.add_argument("model", nargs="?", type=_text("MODEL"),
                   help="a .mdl or .xmile model (default: the shipped model)")
    data_dir(p)
    p.add_argument("--scenario", type=_text("--scenario"),
                   help="a named scenario (see 'aicircle describe')")
    p.add_argument("--json", help="write the loops, their scores and the dominant loops as JSON to this file")
    seed(p)
    _params_options(p)
    force(p)

    p = command("explore", _cmd_explore, "explore a model in the browser: sliders on its parameters, its "
                "behaviour redrawn as they move (needs pip install 'aicircle[explore]')")
    p.add_argument("model", nargs="?", type=_text("MODEL"),
                   help="a .mdl or .xmile model (default: the shipped model)")
    data_dir(p)
    p.add_argument("--port", type=_whole_number(1), default=5006, help="the local port (default 5006)")
    p.add_argument("--address", default="127.0.0.1", type=_text("--address"),
                   help="the address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--outcome", type=_text("--outcome"),
                   help="an outcome 'VAR<X' or 'VAR>X' (default: the capital-circle classifier where the "
                        "model defines its variables)")
    p.add_argument("--show", action="store_true", help="open the page in the default browser")
    seed(p)
    _params_options(p)

    p = command("report", _cmd_report, "run the whole analysis and write an HTML/Markdown report (the "
                "capital-circle study for the shipped model and copies of it; a generic analysis otherwise)")
    p.add_argument("model", nargs="?", type=_text("MODEL"),
                   help="a .mdl or .xmile model (default: the shipped model)")
    data_dir(p)
    p.add_argument("--out", default="report", type=_text("--out"), help="output folder (default: ./report)")
    p.add_argument("--params", type=_text("--params"),
                   help="parameters.csv (name,value) whose values replace the model's (for the study: the "
                        "calibrated point values)")
    p.add_argument("--targets", type=_text("--targets"),
                   help="target CSV (the study's default: the shipped targets; otherwise no fit)")
    p.add_argument("--driver", action="append", metavar="NAME", type=_text("--driver"),
                   help="a parameter to sweep in the generic analysis (repeatable; default: Morris's first two)")
    p.add_argument("--outcome", type=_text("--outcome"),
                   help="an outcome 'VAR<X' or 'VAR>X' whose thresholds the generic analysis finds")
    p.add_argument("--recalibrate", action="store_true", help="recalibrate instead of loading "
                   "the shipped calibration")
    seed(p, "the samples and ")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that holds files the report did not write (they are kept)")
    return parser


class _ClosedStdout(io.TextIOBase):
    """Standard output when the shell closed it (``aicircle run m.mdl >&-``): writing to it is an error."""

    def writable(self):
        return True

    def write(self, text):
        raise InvalidInput("standard output is closed, so the results cannot be written to it; "
                           "give --out FILE (or -o FILE), or leave standard output open")

    @property
    def buffer(self):
        return self


def _closed_streams():
    """Keep the file descriptors 0, 1 and 2 taken (a file opened later must not become stdout).

    Python sets ``sys.stdout`` to None when descriptor 1 was closed; it becomes
    :class:`_ClosedStdout`, and a closed stderr a sink. Returns what to restore.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    saved = sys.stdout, sys.stderr
    if sys.stdout is None:
        sys.stdout = _ClosedStdout()
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the process's life
    return saved


def main(argv=None) -> int:
    saved = _closed_streams()
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = (saved[0] or sys.stdout), (saved[1] or sys.stderr)


def _main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            raise _UsageError("no command given; try 'aicircle --help'")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default" if debug else "ignore")
            warnings.simplefilter("always", TimeGridWarning)
            warnings.simplefilter("always", SampleSizeWarning)
            args.func(args)
        for text in getattr(args, "notes", []):
            _info(args, text)
        for message in dict.fromkeys(str(w.message) for w in caught
                                     if debug or issubclass(w.category, (TimeGridWarning, SampleSizeWarning))):
            print(f"aicircle: warning: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_OK
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("aicircle: error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `aicircle run | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (IntegrationError, MemoryError, _UnitsMismatch) as err:
        return _fail(err, EXIT_FAILURE, debug)
    except (AicircleError, OSError) as err:
        return _fail(err, EXIT_BAD_INPUT, debug)
    except Exception as err:  # a bug: still one line, but exit 1
        return _fail(err, EXIT_FAILURE, debug, prefix=f"internal error ({type(err).__name__}): ")


def _fail(err, code, debug, prefix=""):
    if debug:
        import traceback

        traceback.print_exc()
    message = " ".join(str(err).split()) or type(err).__name__
    print(f"aicircle: error: {prefix}{message}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Is the shipped calibration an optimum over every parameter the data inform?

Each uncalibrated parameter that reaches the targets (not a scenario switch,
with a finite declared range) is set at either end of its range, and the
calibrated parameters are refitted to the targets
(:func:`aicircle.calibrate.refit_ends`: Levenberg-Marquardt from the shipped
optimum, every refit in one batch per iteration). If a refit fits better than
the shipped optimum by more than 3.84 (chi-square, with the calibrated
parameters' priors as the calibration counts them), the calibration held a
parameter the data inform: it belongs in the study's INCLUDE list
(aicircle/study/calibration.py), or the conclusions depend on it.

The table written has one row per end, and the fingerprint of the parameters
it was computed against (:func:`aicircle.calibrate.fingerprint` of
parameters.csv) in every row: tests/test_refit_ends.py fails when the shipped
table was not computed against the shipped parameters, or when a row is better
by more than 3.84.

Run from the repository root (a few minutes on 2 cores):

    .venv/bin/python calibration/refit_ends.py [--results calibration/results] [--out calibration/results/refit_ends.csv]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import aicircle as ac
from aicircle import _resources
from aicircle import calibrate as cal
from aicircle._io import write_atomic
from aicircle.study import calibration
from aicircle.study.ensemble import future_parameters

CHI2_95 = cal.CHI2_95


def refit_table(model, results, parameters=None, n_iter=12):
    """The end-refits of the calibration in the folder ``results`` (of ``parameters``, by default every
    uncalibrated parameter that is not a switch), with the fingerprint of its parameters in each row."""
    fit = json.loads((Path(results) / "fit.json").read_text())
    calibrated = list(fit["free"])
    values = cal.read_parameters(Path(results) / "parameters.csv")
    params = {k: v for k, v in values.items() if k in model.parameters.index}
    candidates = future_parameters(model, calibrated) if parameters is None else parameters
    table, summary = cal.refit_ends(model, calibration.targets(), params, calibrated, candidates, n_iter=n_iter)
    table["parameters_fingerprint"] = cal.fingerprint(values)
    return table, summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(_resources.calibration_dir() / "results" / "refit_ends.csv"),
                        help="where the refits are written (CSV)")
    parser.add_argument("--iterations", type=int, default=12,
                        help="Levenberg-Marquardt iterations of each refit (default 12)")
    parser.add_argument("--results", default=str(_resources.calibration_dir() / "results"),
                        help="the calibration to test: a folder written by aicircle calibrate (default: the shipped one)")
    args = parser.parse_args(argv)
    model = ac.load(_resources.shipped_model())
    table, summary = refit_table(model, args.results, n_iter=args.iterations)
    print(f"{summary['n_candidates']} uncalibrated parameters; {summary['n_reaching']} reach the targets at an end "
          f"of their range", file=sys.stderr)
    write_atomic(args.out, lambda path: table.to_csv(path, index=False, float_format="%.6g"))
    print(table.drop(columns="parameters_fingerprint").sort_values("delta_misfit").head(25)
          .to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\ncalibration: chi2 of the targets {summary['chi2_targets']:.2f}, with the calibrated priors "
          f"{summary['misfit']:.2f}; refitted from itself: {summary['self_refit']:+.2f}")
    better = table[table["better_by_more_than_3.84"]]
    print(f"{len(better)} of {len(table)} refits at a range end fit better by more than {CHI2_95}: "
          f"{', '.join(sorted(set(better['parameter']))) or 'none'}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Is the shipped calibration an optimum over every parameter the data inform?

Each uncalibrated parameter that reaches the targets is set at either end of
its declared range, and the calibrated parameters are refitted to the targets
(Levenberg-Marquardt from the shipped optimum, every refit in one batch per
iteration). If a refit fits better than the shipped optimum by more than 3.84
(chi-square, with the calibrated parameters' priors as the calibration counts
them), the calibration held a parameter the data inform: it belongs among the
calibrated ones, or the conclusions depend on it.

Run from the repository root (a few minutes on 2 cores):

    .venv/bin/python calibration/refit_ends.py [--results calibration/results] [--out calibration/results/refit_ends.csv]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import aicircle as ac
from aicircle import _resources
from aicircle import calibrate as cal
from aicircle._io import write_atomic
from aicircle.study import calibration
from aicircle.study.ensemble import future_parameters

CHI2_95 = cal.CHI2_95


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
    targets = calibration.targets()
    results = Path(args.results)
    fit = json.loads((results / "fit.json").read_text())
    calibrated = list(fit["free"])
    params = {k: v for k, v in cal.read_parameters(results / "parameters.csv").items()
              if k in model.parameters.index}
    candidates = future_parameters(model, calibrated)
    held = {k: v for k, v in params.items() if k not in calibrated and k not in candidates}
    problem = cal.Problem(model, targets, calibrated + candidates, fixed=held, priors=True)
    n_targets, kc = len(problem.targets), len(calibrated)
    x_best = problem.from_params({p: params[p] for p in problem.free})

    # which candidates reach the targets at all: moved to either end, does any prediction change?
    ends = []
    for j in range(kc, problem.k):
        for side, bound in (("min", problem.lower[j]), ("max", problem.upper[j])):
            x = x_best.copy()
            x[j] = bound
            ends.append((problem.free[j], side, j, x))
    base = problem.predict(x_best[None])[0]
    moved = problem.predict(np.array([x for *_, x in ends]))
    reach = ~np.all(np.isclose(moved, base, rtol=0, atol=0, equal_nan=True), axis=1)
    touching = sorted({name for (name, *_), r in zip(ends, reach) if r})
    rows = [e for e, r in zip(ends, reach) if r]
    print(f"{len(candidates)} uncalibrated parameters; {len(touching)} reach the targets at an end of their range",
          file=sys.stderr)

    def seen(X):
        """The targets' chi2 and the misfit the calibration minimised (targets and calibrated priors)."""
        r = problem.residuals(X)
        return np.sum(r[:, :n_targets] ** 2, axis=1), np.sum(r[:, :n_targets + kc] ** 2, axis=1)

    free_cols = np.arange(kc)
    X0 = np.vstack([x_best[None]] + [x for *_, x in rows])  # row 0: the optimum itself, refitted as a check
    X, _ = cal._lm_batch(problem, X0, free_cols, n_iter=args.iterations)
    chi2, misfit = seen(X)
    chi2_0, misfit_0 = seen(x_best[None])
    table = pd.DataFrame({
        "parameter": [name for name, *_ in rows], "end": [side for _, side, *_ in rows],
        "value": [float(np.exp(x[j]) if problem.log[j] else x[j]) for _, _, j, x in rows],
        "chi2_targets": chi2[1:], "delta_misfit": misfit[1:] - misfit_0[0]})
    table["better_by_more_than_3.84"] = table["delta_misfit"] < -CHI2_95
    write_atomic(args.out, lambda path: table.to_csv(path, index=False, float_format="%.6g"))
    print(table.sort_values("delta_misfit").head(25).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nshipped optimum: chi2 of the targets {chi2_0[0]:.2f}, with the calibrated priors {misfit_0[0]:.2f}; "
          f"refitted from itself: {misfit[0] - misfit_0[0]:+.2f}")
    better = table[table["better_by_more_than_3.84"]]
    print(f"{len(better)} of {len(table)} refits at a range end fit better by more than {CHI2_95}: "
          f"{', '.join(sorted(set(better['parameter']))) or 'none'}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

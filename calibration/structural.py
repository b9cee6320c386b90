"""Structural alternatives: refit the model under each alternative formulation and compare.

Each alternative of ``aicircle.study.ensemble.STRUCTURAL`` fixes one switch of the
model (how far investors count sales within the circle, whether the compute
price responds to scarcity, what cancelling a compute contract costs) and
refits the calibrated parameters from the shipped calibration (one start and
a polish). The table sets each alternative's chi-square and share of actuals
within 2 sigma beside the outcome of its refitted baseline (the economic
classifier) in 2030 and 2035: a conclusion that an alternative of equal fit
contradicts is not a finding.

Run from the repository root (about five minutes on 2 cores):

    .venv/bin/python calibration/structural.py [--out calibration/results/structural.csv]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import aicircle as ac
from aicircle import _resources
from aicircle import calibrate as cal
from aicircle.study import calibration, ensemble


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--out", default=str(here / "results" / "structural.csv"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = ac.load(_resources.shipped_model())
    targets = calibration.targets()
    results = _resources.calibration_dir() / "results"
    params = {k: v for k, v in cal.read_parameters(results / "parameters.csv").items()
              if k in model.parameters.index}
    free = json.loads((results / "fit.json").read_text())["free"]
    table = ensemble.structural_alternatives(model, targets, params, free, seed=args.seed, progress=True)
    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.tmp")
    table.to_csv(tmp, float_format="%.6g")
    tmp.replace(out)
    print(table.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

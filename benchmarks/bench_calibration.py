"""How long the full calibration of the capital-circle model takes (budget: 15 minutes on 2 cores).

Times ``aicircle.study.calibration.calibrate(model, seed=0, include=...)`` on the shipped model
(models/aicircle.mdl) and targets (calibration/targets.csv) with the default
pipeline: screening (pivoted QR of the sensitivity matrix, the parameters
whose pivot stays above 3% of the first), least squares from 8 starts, profile likelihoods (7 points per
parameter) and the MCMC ensemble (300 steps). Printed: the machine, the time of
each stage (``result.timings``), the total, and the fit statistics, with the
shipped calibration's (calibration/results/fit.json) beside them: the same seed
should give the same fit. Nothing is written.

The fit's starts, the profiles and the MCMC batches are shared among one process
per core, as `aicircle calibrate` does by default (the result does not depend on
the number): time it on a quiet machine. Exit status 0 when the total is under
TARGET_MINUTES.

Run:  .venv/bin/python benchmarks/bench_calibration.py           (about 12 minutes)
      .venv/bin/python benchmarks/bench_calibration.py --quick   (3 starts, no profiles or MCMC)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import aicircle as ac
from aicircle import _resources
from aicircle.study.calibration import calibrate

ROOT = Path(__file__).resolve().parents[1]
FIT = ROOT / "calibration" / "results" / "fit.json"
TARGET_MINUTES = 15.0  # the calibration's budget on 2 cores


def included(command: str) -> tuple:
    """The ``--include NAME`` values of the command recorded in fit.json."""
    words = shlex.split(command)
    return tuple(words[i + 1] for i, w in enumerate(words[:-1]) if w == "--include")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 starts, no profiles, no MCMC: a smoke run")
    args = parser.parse_args()
    options = dict(n_starts=3, profile_points=0, mcmc_steps=0) if args.quick else {}
    # as the shipped calibration was made (its fit.json records the command)
    options["include"] = included(json.loads(FIT.read_text())["command"])
    options["workers"] = os.cpu_count() or 1  # `aicircle calibrate`'s default: one process per core

    import emcee
    import scipy

    warnings.simplefilter("ignore")
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"emcee {emcee.__version__}")
    print(f"load average before the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    model = ac.load(_resources.shipped_model())
    print(f"calibrate({model.path.name}, seed=0{''.join(f', {k}={v}' for k, v in options.items())})")
    t = time.perf_counter()
    result = calibrate(model, seed=0, **options)
    wall = time.perf_counter() - t

    shipped = json.loads(FIT.read_text()) if FIT.exists() else {}
    old = shipped.get("timings_s", {})
    print("stage times (s):" + ("   [shipped fit.json]" if old and not args.quick else ""))
    for stage, seconds in result.timings.items():
        ref = f"   [{old[stage]:.1f}]" if stage in old and not args.quick else ""
        print(f"  {stage:<9} {seconds:8.1f}{ref}")
    print(f"calibrated parameters: {len(result.free)} of {len(model.parameters)}; "
          f"same as the shipped fit: {result.free == shipped.get('free')}")
    print("starts (chi2 with priors): "
          + ", ".join(f"{c:.4f}{'' if ok else '*'}" for _, c, ok in result.fit.starts)
          + "   (* = not converged)")
    if result.mcmc:
        m = result.mcmc
        print(f"MCMC: {m['n_walkers']} walkers x {m['n_steps']} steps, acceptance "
              f"{m['acceptance']:.3f}, Birge ratio {m['birge']:.3f}, {m['n_samples']} samples kept")
    stats = result.statistics
    ref_stats = shipped.get("statistics", {})
    print("fit statistics:" + ("   [shipped fit.json]" if ref_stats else ""))
    for key, value in stats.items():
        ref = ref_stats.get(key)
        fmt = (lambda v: f"{v:.4f}") if isinstance(value, float) else str
        print(f"  {key:<22} {fmt(value):>10}" + (f"   [{fmt(ref)}]" if ref is not None else ""))
    total = result.timings["total"]
    print(f"TOTAL calibration: {total:.1f} s = {total / 60:.1f} min (wall {wall:.1f} s; "
          f"target < {TARGET_MINUTES:g} min)")
    ok = total < TARGET_MINUTES * 60
    print("PASS" if ok else "BELOW TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Issue 6: a ~100,000-run Sobol analysis of the capital-circle model, here and on Dask.

The shipped model (models/aicircle.mdl) at its calibrated parameters
(calibration/results/parameters.csv), with the calibrated parameters
(calibration/results/fit.json, "free": D of them, 26 in the shipped fit)
varied over their declared ranges [min, max]. SALib's Saltelli/Sobol' sample
with base size N = 4096 and no second order gives N * (D + 2) runs (114,688
for D = 26). The output is
``Investor Confidence`` at 2030, each run from 2020 to FINAL TIME 2030 at the
model's TIME STEP (1/256 year), Euler.

The runs go through :func:`aicircle.sensitivity.run_ensemble` in fixed chunks
of 2000 sets, twice, each timed end to end (the first chunk's code generation
included, and for Dask the model's scatter):

(a) in this process (the batch integrator, one core);
(b) on a ``dask.distributed.LocalCluster`` of 2 worker processes with one
    thread each (the cluster's start-up is not timed).

The two must give identical outputs, S1/ST and confidence intervals
(``np.array_equal``: the chunks are the same, so the arithmetic is). Printed:
the machine, the load average, the run count, each time, runs per second, the
speed-up (a)/(b) and the total time of the analysis (sampling + runs on the
cluster + SALib's analysis). Exit status 0 when the results are identical and
the cluster is faster than one process (judged from 20 chunks up). Other jobs
on the machine take cores from the cluster: time it on a quiet machine.

Run:  .venv/bin/python benchmarks/bench_sobol.py            (N = 4096, about a minute on 2 cores)
      .venv/bin/python benchmarks/bench_sobol.py --quick    (N = 256, a smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import aicircle as ac
from aicircle import _resources
from aicircle.calibrate import read_parameters
from aicircle.sensitivity import run_ensemble

ROOT = Path(__file__).resolve().parents[1]
FIT = ROOT / "calibration" / "results" / "fit.json"
OUTPUT = "Investor Confidence"
FINAL_TIME = 2030.0
CHUNK = 2000
SEED = 0
MIN_CHUNKS = 20  # fewer chunks than this (smoke runs): worker start-up dominates the timing


def build_table(model, n):
    """SALib's Sobol' sample of the calibrated parameters, plus the fixed calibrated values.

    Returns
    -------
    problem : dict
        SALib's problem (names, bounds).
    table : pandas.DataFrame, shape (n * (D + 2), D + n_fixed)
    fixed : dict
        Calibrated values of the parameters not varied, where they differ
        from the model file's (name -> value).
    """
    from SALib.sample import sobol as sobol_sample

    free = [model.resolve(p) for p in json.loads(FIT.read_text())["free"]]
    declared = model.parameters
    bounds = [[float(declared.loc[p, "min"]), float(declared.loc[p, "max"])] for p in free]
    problem = {"num_vars": len(free), "names": free, "bounds": bounds}
    sample = sobol_sample.sample(problem, n, calc_second_order=False, seed=SEED)
    table = pd.DataFrame(sample, columns=free)
    # the other calibrated values, where they differ from the model file's (held for every run)
    calibrated = read_parameters(_resources.shipped_parameters())
    fixed = {k: v for k, v in calibrated.items()
             if k not in free and v != float(declared.loc[k, "value"])}
    if fixed:
        table = pd.concat([table, pd.DataFrame({k: np.full(len(table), v) for k, v in fixed.items()})],
                          axis=1)
    return problem, table, fixed


def output_at_final(values, times):
    """The output at FINAL TIME, shape (n_runs,)."""
    if abs(times[-1] - FINAL_TIME) > 1e-9:
        raise RuntimeError(f"the runs end at {times[-1]}, not {FINAL_TIME}")
    return values[OUTPUT][:, -1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="SALib's base sample size (a power of 2)")
    parser.add_argument("--quick", action="store_true", help="N = 256: a smoke run")
    args = parser.parse_args()
    n = 256 if args.quick else args.n
    if n < 16 or n & (n - 1):
        parser.error(f"--n {n} must be a power of 2, at least 16")

    import importlib.metadata as md

    import dask
    import distributed
    from SALib.analyze import sobol as sobol_analyze

    warnings.simplefilter("ignore")
    model = ac.load(_resources.shipped_model())
    t = time.perf_counter()
    problem, table, fixed = build_table(model, n)
    t_sample = time.perf_counter() - t
    runs, d = len(table), problem["num_vars"]
    ts = model.time
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}, SALib {md.version('SALib')}, "
          f"dask {dask.__version__}, distributed {distributed.__version__}")
    print(f"load average before the runs: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"(other jobs on the machine slow (b) more than (a))")
    print(f"model: {model.path.name}, {d} parameters varied, {len(fixed)} other calibrated values "
          f"held; output '{OUTPUT}' at {FINAL_TIME:g}")
    steps = (FINAL_TIME - ts["initial_time"]) / ts["time_step"]
    print(f"runs: N = {n}, N*(D+2) = {n} * {d + 2} = {runs:,} runs, each {ts['initial_time']:g} to "
          f"{FINAL_TIME:g} at TIME STEP 1/{1 / ts['time_step']:g} ({steps:.0f} Euler steps), "
          f"in {-(-runs // CHUNK)} chunks of {CHUNK}")
    print(f"sampling (SALib): {t_sample:.2f} s")
    kwargs = dict(solver="euler", final_time=FINAL_TIME, chunk_size=CHUNK)

    # (a) one process
    t = time.perf_counter()
    values, times = run_ensemble(model, table, [OUTPUT], **kwargs)
    t_local = time.perf_counter() - t
    y_local = output_at_final(values, times)
    print(f"(a) one process: {t_local:.1f} s, {runs / t_local:,.0f} runs/s")

    # (b) a local Dask cluster of 2 worker processes
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        t = time.perf_counter()
        values, times = run_ensemble(model, table, [OUTPUT], executor=client, **kwargs)
        t_dask = time.perf_counter() - t
    y_dask = output_at_final(values, times)
    print(f"(b) Dask LocalCluster, 2 workers x 1 thread: {t_dask:.1f} s, {runs / t_dask:,.0f} runs/s")

    bad = int(np.sum(~np.isfinite(y_local)))
    if bad:
        print(f"FAILED: {bad} of {runs} runs give a non-finite '{OUTPUT}' at {FINAL_TIME:g}")
        return 1
    t = time.perf_counter()
    # SALib 1.6 seeds its bootstrap only `if seed:`, so seed=0 would leave the
    # confidence intervals unseeded: give it a Generator (a fresh one per call)
    res_local = sobol_analyze.analyze(problem, y_local, calc_second_order=False,
                                      seed=np.random.default_rng(SEED))
    t_analyze = time.perf_counter() - t
    res_dask = sobol_analyze.analyze(problem, y_dask, calc_second_order=False,
                                     seed=np.random.default_rng(SEED))
    same_y = np.array_equal(y_local, y_dask)
    keys = ("S1", "ST", "S1_conf", "ST_conf")
    same = same_y and all(np.array_equal(res_local[k], res_dask[k]) for k in keys)
    print(f"analysis (SALib): {t_analyze:.2f} s")
    print(f"check: outputs identical {same_y}; S1, ST and their confidence intervals identical "
          f"(np.array_equal) {same}")

    indices = pd.DataFrame({k: res_local[k] for k in ("S1", "S1_conf", "ST", "ST_conf")},
                           index=pd.Index(problem["names"], name="parameter"))
    print(f"Sobol indices of '{OUTPUT}' at {FINAL_TIME:g} (largest ST first):")
    print(indices.sort_values("ST", ascending=False).round(4).to_string())

    speedup = t_local / t_dask
    total = t_sample + t_dask + t_analyze
    print(f"TOTAL Sobol analysis ({runs:,} runs) on the 2-worker cluster: {total:.1f} s "
          f"= {total / 60:.1f} min (one process: {t_sample + t_local + t_analyze:.1f} s)")
    print(f"load average after the runs: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"SPEED-UP one process / 2 Dask workers = {speedup:.2f}x")
    n_chunks = -(-runs // CHUNK)
    judged = n_chunks >= MIN_CHUNKS
    if not judged:
        print(f"(speed-up not judged: {n_chunks} chunks; start-up dominates below {MIN_CHUNKS})")
    ok = same and (speedup > 1 or not judged)
    print("PASS" if ok else ("FAILED: the cluster's results differ" if not same else
                             "BELOW TARGET: the cluster is not faster"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

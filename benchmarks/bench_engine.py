"""docs/design.md §6: aicircle's speed against PySD's, measured side by side in one process.

On the peer SIR model (../shared/peer-models/samples/SIR/SIR.mdl), at the model's
own TIME STEP:

1. batch throughput: ``simulate_batch(table, solver="euler", return_columns=[one stock])``
   over N = 2000 parameter sets, materialised as numpy, against PySD's ``run()``
   once per set (PySD timed on a sample of sets, then scaled to N); target >= 1000x;
2. one ``simulate(solver="rk45")`` run against one PySD run; target: faster.

Before timing, the batch's first set is checked against PySD's run of the same
parameters (1e-9 relative). Run:  .venv/bin/python benchmarks/bench_engine.py
"""

from __future__ import annotations

import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import aicircle as ac

ROOT = Path(__file__).resolve().parents[1]
SIR = ROOT.parent / "shared" / "peer-models" / "samples" / "SIR" / "SIR.mdl"
N = 2000
PYSD_SAMPLE = 100  # PySD runs timed; its per-run cost is scaled to N


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times))


def main() -> int:
    if not SIR.exists():
        print(f"skipped: {SIR} is absent (the benchmark needs ../shared/peer-models)")
        return 0
    import pysd

    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp())
    shutil.copy(SIR, tmp)  # pysd.read_vensim writes a .py beside the model
    ref = pysd.read_vensim(str(tmp / SIR.name))
    model = ac.load(SIR)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"Contact Infectivity": rng.uniform(0.2, 0.4, N),
                          "Duration": rng.uniform(3.0, 7.0, N)})
    stock = "Infectious"

    # correctness first: the batch's first set against PySD
    batch = model.simulate_batch(table, solver="euler", return_columns=[stock])
    first = ref.run(params=table.iloc[0].to_dict(), return_columns=[stock])[stock].to_numpy()
    got = batch[stock].to_numpy()[0]
    err = np.max(np.abs(got - first)) / np.max(np.abs(first))
    print(f"check: batch set 0 vs PySD, max relative difference {err:.2e} (must be <= 1e-9)")
    if not err <= 1e-9:
        print("FAILED: the batch does not reproduce PySD")
        return 1

    def run_batch():
        np.asarray(model.simulate_batch(table, solver="euler", return_columns=[stock])[stock].values)

    def run_pysd_sample():
        for i in range(PYSD_SAMPLE):
            ref.run(params=table.iloc[i].to_dict(), return_columns=[stock])

    b_best, b_med = best_of(run_batch, 7)
    p_best, p_med = best_of(run_pysd_sample, 3)
    pysd_per_run = p_med / PYSD_SAMPLE
    ratio = pysd_per_run * N / b_med

    def one_pysd():
        ref.run(return_columns=[stock])

    def one_rk45():
        model.simulate(solver="rk45", return_columns=[stock])

    one_rk45()
    r_best, r_med = best_of(one_rk45, 20)
    q_best, q_med = best_of(one_pysd, 20)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}, PySD {pysd.__version__}")
    print(f"batch: {N} sets in {b_med * 1e3:.1f} ms (median of 7); "
          f"PySD: {pysd_per_run * 1e3:.2f} ms per run (median over {PYSD_SAMPLE} runs x 3)")
    print(f"RATIO batch throughput / PySD throughput = {ratio:.0f}x (target >= 1000x)")
    print(f"single run: rk45 {r_med * 1e3:.2f} ms, PySD {q_med * 1e3:.2f} ms (medians of 20)")
    print(f"RATIO PySD run time / rk45 run time = {q_med / r_med:.1f}x (target > 1)")
    ok = ratio >= 1000 and q_med > r_med
    print("PASS" if ok else "BELOW TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

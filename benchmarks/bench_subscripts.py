"""Issue 14: a subscripted model's batch throughput against PySD's, side by side in one process.

On the peer model tests/subscript_3d_arrays (a stock ``Stock A`` of 3 x 2 x 2 = 12
elements fed by ``Rate A`` of 12 constants, 100 steps), at the model's own TIME STEP:
``simulate_batch`` of N = 2000 parameter sets, each giving all 12 elements of ``Rate A``
(12 columns ``Rate A[...]``), materialised as numpy, against PySD's ``run()`` once per
set with the same 12 values as an xarray.DataArray (PySD timed on a sample of sets,
then scaled to N); target >= 500x.

Before timing, the batch's first set is checked against PySD's run of the same
parameters (1e-9 relative). Run:  .venv/bin/python benchmarks/bench_subscripts.py
"""

from __future__ import annotations

import platform
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import aicircle as ac
from bench_engine import best_of  # the same timing as the engine benchmark (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT.parent / "shared" / "peer-models" / "tests" / "subscript_3d_arrays" / "test_subscript_3d_arrays.mdl"
N = 2000
PYSD_SAMPLE = 50  # PySD runs timed; its per-run cost is scaled to N
STOCK, RATE = "Stock A", "Rate A"


def main() -> int:
    if not MODEL.exists():
        print(f"skipped: {MODEL} is absent (the benchmark needs ../shared/peer-models)")
        return 0
    import pysd
    import xarray as xr

    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp())
    shutil.copy(MODEL, tmp)  # pysd.read_vensim writes a .py beside the model
    ref = pysd.read_vensim(str(tmp / MODEL.name))
    model = ac.load(MODEL)
    rate = [name for name in model.parameters.index if name.startswith(RATE + "[")]
    base = model.parameters.loc[rate, "value"].to_numpy()
    rng = np.random.default_rng(0)
    table = pd.DataFrame(base * rng.uniform(0.5, 1.5, (N, len(rate))), columns=rate)
    template = ref[RATE]  # PySD's own DataArray of the constant: its dims and coords

    def pysd_params(i):
        values = table.iloc[i].to_numpy().reshape(template.shape)
        return {RATE: xr.DataArray(values, coords=template.coords, dims=template.dims)}

    # correctness first: the batch's first set against PySD
    batch = model.simulate_batch(table, solver="euler", return_columns=[STOCK])
    theirs = ref.run(params=pysd_params(0), return_columns=[STOCK])
    ours = model.simulate(params=table.iloc[0].to_dict(), return_columns=[STOCK])
    got = batch[STOCK].isel(set=0).to_numpy().reshape(len(ours), -1)
    np.testing.assert_array_equal(got, ours.to_numpy())  # the batch's set 0 is the single run
    expected = theirs[list(ours.columns)].to_numpy(dtype=float)
    err = np.max(np.abs(ours.to_numpy() - expected)) / np.max(np.abs(expected))
    print(f"check: {len(ours.columns)} elements of {STOCK}, batch set 0 vs PySD, max relative "
          f"difference {err:.2e} (must be <= 1e-9)")
    if not err <= 1e-9:
        print("FAILED: the batch does not reproduce PySD")
        return 1

    def run_batch():
        np.asarray(model.simulate_batch(table, solver="euler", return_columns=[STOCK])[STOCK].values)

    def run_pysd_sample():
        for i in range(PYSD_SAMPLE):
            ref.run(params=pysd_params(i), return_columns=[STOCK])

    _, b_med = best_of(run_batch, 5)
    _, p_med = best_of(run_pysd_sample, 3)
    pysd_per_run = p_med / PYSD_SAMPLE
    ratio = pysd_per_run * N / b_med
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}, PySD {pysd.__version__}")
    print(f"batch: {N} sets x {len(rate)} elements in {b_med * 1e3:.1f} ms (median of 5); "
          f"PySD: {pysd_per_run * 1e3:.2f} ms per run (median over {PYSD_SAMPLE} runs x 3)")
    print(f"RATIO batch throughput / PySD throughput = {ratio:.0f}x (target >= 500x)")
    ok = ratio >= 500
    print("PASS" if ok else "BELOW TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

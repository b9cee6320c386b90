"""Issue 26: the compiled kernel against PySD and against aicircle's numpy path, side by side in one process.

Measured, each as a ratio of times taken in this process (the machine may be
shared: absolute times move, ratios taken together move less):

1. one Euler ``simulate`` of ``models/aicircle.mdl`` at its TIME STEP (3841 steps), kernel
   vs PySD's ``run()`` and vs the numpy path; target <= 20 ms, >= 40x PySD;
2. the same for the peer SIR model (3201 steps); target <= 1 ms;
3. batch throughput on ``models/aicircle.mdl``: ``simulate_batch(table, solver="euler",
   return_columns=[one stock])`` over N = 2000 sets, materialised as numpy, with 1 and 2
   workers, against PySD's per-run throughput; target >= 2000 runs/s on 2 cores and
   >= 2000x PySD;
4. compile time of the shipped model's Euler and RK4 kernels, in a fresh process with an
   empty cache (a single run compiles the one-set function, a batch the four-lane one: one
   module each), and the first runs of a second process that finds them cached; target <= 5 s;
5. a SIR over a 100-element subscript, N = 1000: the kernel (which unrolls the elements)
   against the numpy path and against PySD's per-run throughput; targets >= 500 runs/s
   and >= 500x PySD.

Before timing, each kernel result is checked against the numpy path (1e-12 relative).
Run:  .venv/bin/python benchmarks/bench_kernel.py
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import aicircle as ac
from bench_engine import best_of  # the same timing as the engine benchmark (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "aicircle.mdl"
SIR = ROOT.parent / "shared" / "peer-models" / "samples" / "SIR" / "SIR.mdl"
N = 2000
STOCK = "Lab Cash"

SUBSCRIPTED_SIR = """{{UTF-8}}
Patch: (p1-p{k})
~ ~|
Susceptible[Patch] = INTEG(-Infection[Patch], 1000)
~ ~|
Infectious[Patch] = INTEG(Infection[Patch] - Recovery[Patch], 5)
~ ~|
Recovered[Patch] = INTEG(Recovery[Patch], 0)
~ ~|
Infection[Patch] = Contact Infectivity * Susceptible[Patch] * Infectious[Patch] / 1005
~ ~|
Recovery[Patch] = Infectious[Patch] / Duration
~ ~|
Contact Infectivity = 0.3
~ ~|
Duration = 5
~ ~|
INITIAL TIME = 0
~ ~|
FINAL TIME = 100
~ ~|
TIME STEP = 0.03125
~ ~|
SAVEPER = 1
~ ~|
"""


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.maximum(np.abs(b).max(axis=0), 1e-300)
    return float((np.abs(a - b).max(axis=0) / scale).max())


COMPILE = """
import sys, time
import pandas as pd
import aicircle as ac
model = ac.load(sys.argv[1])
table = pd.DataFrame(index=range(8))
runs = {"": lambda solver: model.simulate(solver=solver, return_columns=["Lab Cash"], backend="kernel"),
        "_batch": lambda solver: model.simulate_batch(table, solver=solver, return_columns=["Lab Cash"],
                                                      backend="kernel")}
for solver in ("euler", "rk4"):
    for what, run in runs.items():  # a single run compiles the one-set function, a batch the four-lane one
        t = time.perf_counter(); run(solver)
        first = time.perf_counter() - t
        t = time.perf_counter(); run(solver)
        again = time.perf_counter() - t
        print(solver + what, first - again)
"""


def compile_times():
    """Seconds from nothing to a compiled kernel, in a fresh process with an empty cache, then cached."""
    cache = tempfile.mkdtemp(prefix="aicircle-bench-cache-")
    env = {**os.environ, "XDG_CACHE_HOME": cache}
    out = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", COMPILE, str(SHIPPED)], env=env, capture_output=True,
                              text=True, check=True)
        out.append(dict((line.split()[0], float(line.split()[1])) for line in done.stdout.splitlines()))
    shutil.rmtree(cache, ignore_errors=True)
    return out


def main() -> int:
    import pysd

    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared with other users: absolute "
          f"times are noisy, ratios were taken together), Python {platform.python_version()}, "
          f"numpy {np.__version__}, llvmlite {__import__('llvmlite').__version__}, PySD {pysd.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}")
    ok = True

    # ---- 4. compile time (first: its subprocesses should not compete with the timings) ----
    fresh, cached = compile_times()
    print("compile (fresh process, empty cache; a single run, then a batch of 8): " + ", ".join(
        f"{k} {v:.2f} s" for k, v in fresh.items()) + "; second process, cached: " + ", ".join(
        f"{k} {v:.2f} s" for k, v in cached.items()) + " (target <= 5 s)")
    ok &= all(v <= 5 for v in fresh.values())

    # ---- 1, 2. one run ----
    for label, path, target_ms, column in (("aicircle.mdl", SHIPPED, 20.0, STOCK),
                                           ("SIR", SIR, 1.0, "Infectious")):
        if not path.exists():
            print(f"skipped {label}: {path} is absent")
            continue
        shutil.copy(path, tmp)  # pysd.read_vensim writes a .py beside the model
        ref = pysd.read_vensim(str(tmp / path.name))
        model = ac.load(path)
        ours = model.simulate()
        numpy_run = model.simulate(backend="numpy")
        err = relative(ours.to_numpy(), numpy_run.to_numpy())
        theirs = ref.run(return_columns=[column])[column].to_numpy()
        err_pysd = float(np.abs(ours[column].to_numpy() - theirs).max() / np.abs(theirs).max())
        k_best, k_med = best_of(lambda: model.simulate(), 20)
        n_best, n_med = best_of(lambda: model.simulate(backend="numpy"), 3)
        p_best, p_med = best_of(lambda: ref.run(), 3)
        print(f"one Euler run of {label}: kernel {k_med * 1e3:.2f} ms (best {k_best * 1e3:.2f}), numpy "
              f"{n_med * 1e3:.1f} ms, PySD {p_med * 1e3:.1f} ms (medians); kernel vs numpy {err:.1e}, "
              f"vs PySD {err_pysd:.1e}")
        print(f"RATIO {label} one run: PySD / kernel = {p_med / k_med:.0f}x, numpy / kernel = "
              f"{n_med / k_med:.0f}x (target <= {target_ms:g} ms)")
        ok &= k_med * 1e3 <= target_ms and err <= 1e-12

    # ---- 3. batch throughput on the shipped model ----
    shutil.copy(SHIPPED, tmp)
    ref = pysd.read_vensim(str(tmp / SHIPPED.name))
    model = ac.load(SHIPPED)
    params = model.parameters
    names = [n for n in params.index if params.loc[n, "value"] > 0][:8]
    rng = np.random.default_rng(0)
    table = pd.DataFrame({n: params.loc[n, "value"] * rng.uniform(0.9, 1.1, N) for n in names})
    small = table.iloc[:20]
    check = model.simulate_batch(small, return_columns=[STOCK])[STOCK].to_numpy()
    check_np = model.simulate_batch(small, return_columns=[STOCK], backend="numpy")[STOCK].to_numpy()
    first = ref.run(params=table.iloc[0].to_dict(), return_columns=[STOCK])[STOCK].to_numpy()
    print(f"check: batch vs numpy {relative(check.T, check_np.T):.1e}, set 0 vs PySD "
          f"{np.abs(check[0] - first).max() / np.abs(first).max():.1e}")

    def batch(workers):
        def run():
            return np.asarray(model.simulate_batch(table, return_columns=[STOCK], workers=workers)[STOCK].values)

        return run

    rates, per_cpu = {}, {}
    for workers in (1, 2):
        cpu = time.process_time()
        b_best, b_med = best_of(batch(workers), 3)
        rates[workers] = N / b_med
        # CPU time over wall time: about 2 when the two workers found two free cores
        cpu = time.process_time() - cpu
        busy = cpu / (3 * b_med)
        per_cpu[workers] = 3 * N / cpu
        print(f"batch of {N} with {workers} worker(s): {b_med:.2f} s (median of 3), "
              f"{rates[workers]:.0f} runs/s, cores used {busy:.2f}, {per_cpu[workers]:.0f} runs per CPU-second")
    cpu = time.process_time()
    p_best, p_med = best_of(lambda: ref.run(params=table.iloc[1].to_dict(), return_columns=[STOCK]), 3)
    p_cpu = (time.process_time() - cpu) / 3
    # on a shared machine the wall-clock ratio depends on the share of the cores each got; CPU time
    # does not (much): runs per CPU-second of the batch against PySD's, and what two free cores give
    print(f"per CPU-second: batch {per_cpu[2]:.0f} runs, PySD {1 / p_cpu:.2f} runs: RATIO {per_cpu[2] * p_cpu:.0f}x; "
          f"two free cores would give ~{2 * per_cpu[2]:.0f} runs/s (if the second scales as measured when idle)")
    n_best, n_med = best_of(lambda: model.simulate_batch(table.iloc[:200], return_columns=[STOCK],
                                                         backend="numpy"), 1)
    print(f"PySD {p_med * 1e3:.0f} ms a run ({1 / p_med:.2f} runs/s); numpy path {200 / n_med:.0f} runs/s")
    print(f"RATIO batch throughput (2 workers) / PySD = {rates[2] * p_med:.0f}x, / numpy path = "
          f"{rates[2] / (200 / n_med):.1f}x; 2 workers / 1 = {rates[2] / rates[1]:.2f} "
          f"(targets: >= 2000 runs/s, >= 2000x PySD)")
    ok &= rates[2] >= 2000 and rates[2] * p_med >= 2000

    # ---- 5. the subscripted SIR: the kernel against numpy and PySD ----
    path = tmp / "sir100.mdl"
    path.write_text(SUBSCRIPTED_SIR.format(k=100))
    sub = ac.load(path)
    ref = pysd.read_vensim(str(path))
    n = 1000
    rng = np.random.default_rng(1)
    stable = pd.DataFrame({"Contact Infectivity": rng.uniform(0.2, 0.4, n), "Duration": rng.uniform(3, 7, n)})
    cols = ["Infectious"]
    ours = sub.simulate_batch(stable.iloc[:8], return_columns=cols)["Infectious"].values
    numpy_run = sub.simulate_batch(stable.iloc[:8], return_columns=cols, backend="numpy")["Infectious"].values
    err = float(np.abs(ours - numpy_run).max() / np.abs(numpy_run).max())
    d_best, d_med = best_of(lambda: np.asarray(sub.simulate_batch(stable, return_columns=cols)["Infectious"].values), 3)
    f_best, f_med = best_of(lambda: sub.simulate_batch(stable.iloc[:200], return_columns=cols, backend="numpy"), 1)
    p_best, p_med = best_of(lambda: ref.run(params=stable.iloc[0].to_dict(), return_columns=cols), 3)
    print(f"subscripted SIR, 100 elements, N = {n}: kernel {n / d_med:.0f} runs/s (median of 3), numpy path "
          f"{200 / f_med:.0f} runs/s, PySD {p_med * 1e3:.0f} ms a run; kernel vs numpy {err:.1e}")
    print(f"RATIO subscripted SIR batch / PySD = {n / d_med * p_med:.0f}x, / numpy path = "
          f"{(n / d_med) / (200 / f_med):.1f}x (targets: >= 500 runs/s, >= 500x PySD)")
    ok &= n / d_med >= 500 and n / d_med * p_med >= 500 and err <= 1e-12
    shutil.rmtree(tmp, ignore_errors=True)
    print("PASS" if ok else "BELOW TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Loop scores of a batch against the batch's own simulation (issue 15).

On the shipped capital-circle model at its own TIME STEP and SAVEPER: 2000 parameter sets
(five parameters drawn uniformly over their declared ranges, seed 0) integrated by
``simulate_batch`` (Euler) with every variable returned, then
``loop_scores_batch`` over the model's loop set (``Model.loops()``, found once before timing).
Target: the scores cost at most 5x the simulation. Set 0's scores are checked against
``loop_scores`` of that set alone before timing. Run:  .venv/bin/python benchmarks/bench_loops.py
"""

from __future__ import annotations

import platform
import sys
import time
import warnings

import numpy as np
import pandas as pd

import aicircle as ac

N = 2000
TARGET = 5.0
PARAMETERS = ("Herding Strength", "Crowd Weight", "Cancellation Threshold", "Fundamental Sensitivity",
              "Users per GW")


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> int:
    warnings.simplefilter("ignore")
    model = ac.load(ac.shipped_model())
    rng = np.random.default_rng(0)
    names = [p for p in PARAMETERS if p in model.parameters.index]
    table = pd.DataFrame({p: rng.uniform(*model.parameters.loc[p, ["min", "max"]].astype(float), N)
                          for p in names})
    loops = model.loops()
    columns = list(model.variables)

    def simulate():
        return model.simulate_batch(table, return_columns=columns)

    sim_time, batch = best_of(simulate, 2)

    def score():
        return model.loop_scores_batch(batch, loops=loops).values

    one = model.loop_scores(batch.isel(set=0), loops=loops).to_numpy()
    first = model.loop_scores_batch(batch.isel(set=slice(0, 3)), loops=loops).values[0]
    ok = np.allclose(one, first, rtol=1e-12, atol=0, equal_nan=True)
    print(f"check: set 0 scored alone equals set 0 of the batch: {ok}")
    if not ok:
        return 1
    score_time, _ = best_of(score, 2)
    ratio = score_time / sim_time
    print(f"{platform.machine()} {platform.system()}, Python {platform.python_version()}, numpy {np.__version__}")
    print(f"model: {model.path.name}, {len(loops)} loops ({loops.attrs['method']})")
    print(f"simulate_batch of {N} sets, every variable returned: {sim_time:.2f} s")
    print(f"loop_scores_batch of the {N} sets: {score_time:.2f} s")
    print(f"ratio scores / simulation: {ratio:.2f} (target <= {TARGET:g})")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

"""Time-split check: calibrate on figures up to the end of 2024, forecast H1 2025.

The model is calibrated only on the targets whose window ends by 2024-12-31
(screening, multi-start least squares; no profiles or MCMC), then run forward
to predict every target whose window ends in the first half of 2025. Each
forecast is set beside a naive trend: the same observable's earlier figures of
the same kind, extrapolated (log-linear through the last three, or fewer, for
amounts -- totals as mean rates, whatever their window; linear for growth
rates and shares; the last value if there is only one).

Run from the repository root (about two minutes on 2 cores):

    .venv/bin/python calibration/time_split.py [--seed 0] [--out calibration/results/time_split.csv]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import aicircle as ac
from aicircle import _resources
from aicircle import calibrate as cal
from aicircle.observables import model_time
from aicircle.study import calibration

CUT = "2024-12-31"
H1_END = "2025-06-30"


def naive_forecast(history: pd.DataFrame, row) -> float:
    """Extrapolate the earlier figures of the same observable and aggregation to ``row``'s window."""
    same = history[(history["observable"] == row.observable) & (history["aggregation"] == row.aggregation)]
    if same.empty:
        return math.nan
    same = same.sort_values("t_end").tail(3)
    if row.aggregation == "total":
        # totals of any window length: as mean rates at the windows' midpoints
        length = same["t_end"] - same["t_start"]
        x = ((same["t_start"] + same["t_end"]) / 2).to_numpy()
        y = (same["value"] / length).to_numpy(dtype=float)
        at, scale = (row.t_start + row.t_end) / 2, row.t_end - row.t_start
    else:
        x, y = same["t_end"].to_numpy(), same["value"].to_numpy(dtype=float)
        at, scale = row.t_end, 1.0
    if len(same) == 1:
        return float(y[0] * scale)
    if row.scale == "log" and np.all(y > 0):
        slope, intercept = np.polyfit(x, np.log(y), 1)
        return float(math.exp(intercept + slope * at) * scale)
    slope, intercept = np.polyfit(x, y, 1)
    return float((intercept + slope * at) * scale)


def error(value, predicted, scale):
    if not np.isfinite(predicted):
        return math.nan
    if scale == "log":
        return math.log(predicted / value) if predicted > 0 else math.nan
    return predicted - value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(_resources.calibration_dir() / "results" / "time_split.csv"))
    args = parser.parse_args(argv)
    model = ac.load(_resources.shipped_model())
    targets = calibration.targets()
    cut, h1 = model_time(CUT) + 1 / 366, model_time(H1_END) + 1 / 365
    history = targets[targets["t_end"] <= cut + 1e-9]
    test = targets[(targets["t_end"] > cut + 1e-9) & (targets["t_end"] <= h1 + 1e-9)]
    result = calibration.calibrate(model, targets, seed=args.seed, before=CUT, n_starts=4, profile_points=0,
                           mcmc_steps=0, progress=True)
    params = {p: float(result.parameters[p]) for p in result.free}
    predicted = cal.validate(model, test.reset_index(drop=True), params)["predicted"].to_numpy()
    rows = []
    for row, p in zip(test.itertuples(), predicted):
        naive = naive_forecast(history, row)
        rows.append({"id": row.id, "observable": row.observable, "aggregation": row.aggregation,
                     "value": row.value, "model": p, "model_error": error(row.value, p, row.scale),
                     "naive": naive, "naive_error": error(row.value, naive, row.scale),
                     "scale": row.scale})
    table = pd.DataFrame(rows)
    from aicircle.cli import write_atomic

    write_atomic(args.out, lambda path: table.to_csv(path, index=False, float_format="%.6g"))
    both = table.dropna(subset=["model_error", "naive_error"])
    logs = both[both["scale"] == "log"]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\ncalibrated on {len(history)} targets ending by {CUT} ({len(result.free)} parameters); "
          f"forecast {len(test)} targets ending in H1 2025")
    print(f"amounts (log error): median |model| {logs['model_error'].abs().median():.3f}, "
          f"median |naive| {logs['naive_error'].abs().median():.3f}; model closer on "
          f"{int((logs['model_error'].abs() < logs['naive_error'].abs()).sum())} of {len(logs)}")
    fr = both[both["scale"] == "abs"]
    if len(fr):
        print(f"growth and shares (absolute error): median |model| {fr['model_error'].abs().median():.3f}, "
              f"median |naive| {fr['naive_error'].abs().median():.3f}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rolling-origin backtest: calibrate on the figures up to each origin, forecast the rest up to the cut-off.

For each origin (by default 2024-06-30, 2024-12-31 and 2025-03-31) the model is
calibrated only on the targets whose window ends by the origin (screening,
multi-start least squares and a short MCMC; no profiles), then run forward to
predict every *actual* (not a plan or a projection) whose window ends after the
origin and by the data cut-off, 2025-09-30. Each forecast is scored against a
naive trend fitted to the same figures (the same observable's earlier figures
of the same aggregation, log-linear through the last three for amounts -- totals
as mean rates, whatever their window -- and linear for growth rates and shares;
the last value if there is only one): the median absolute log error on amounts,
the median absolute error on growth rates and shares, and the coverage of the
ensemble's 95% band (the MCMC's parameter sets, with each figure's own sigma as
its measurement error).

Run from the repository root (several minutes a origin on 2 cores):

    .venv/bin/python calibration/backtest.py [--origins 2024-06-30 2024-12-31 2025-03-31] [--seed 0]
        [--mcmc-steps 150] [--out calibration/results/backtest.csv]
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pandas as pd

import aicircle as ac
from aicircle import _resources
from aicircle import calibrate as cal
from aicircle._io import write_atomic
from aicircle.observables import model_time
from aicircle.study import calibration

ORIGINS = ("2024-06-30", "2024-12-31", "2025-03-31")
CUT_OFF = "2025-09-30"


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
    """log(predicted / value) for amounts (NaN where predicted <= 0), predicted - value otherwise."""
    if not np.isfinite(predicted):
        return math.nan
    if scale == "log":
        return math.log(predicted / value) if predicted > 0 else math.nan
    return predicted - value


def band(problem, ensemble, test, rng, level=0.95):
    """The ensemble's ``level`` band of each test figure: every parameter set's prediction with a draw
    of the figure's measurement error (its sigma, on the log scale for amounts)."""
    predicted = problem.predict(problem.from_params(ensemble[problem.free]))  # (n_sets, n_test)
    sigma = test["sigma"].to_numpy(dtype=float)
    noise = rng.standard_normal(predicted.shape) * sigma
    log = (test["scale"] == "log").to_numpy()
    with np.errstate(invalid="ignore"):
        observed = np.where(log, predicted * np.exp(noise), predicted + noise)
    q = (1 - level) / 2
    return np.nanquantile(observed, q, axis=0), np.nanquantile(observed, 1 - q, axis=0)


def backtest(model, targets, origin, seed=0, mcmc_steps=150, progress=True) -> pd.DataFrame:
    """One origin's forecasts, each beside the naive trend's, with the ensemble's 95% band."""
    cut, end = model_time(origin) + 1e-9, model_time(CUT_OFF) + 1.5 / 365
    history = targets[targets["t_end"] <= cut]
    actual = calibration.actuals(targets)
    test = targets[(targets["t_end"] > cut) & (targets["t_end"] <= end) & actual].reset_index(drop=True)
    result = calibration.calibrate(model, targets, seed=seed, before=origin, n_starts=4, profile_points=0,
                           mcmc_steps=mcmc_steps, progress=progress)
    params = {p: float(result.parameters[p]) for p in result.free}
    predicted = cal.validate(model, test, params)["predicted"].to_numpy()
    problem = cal.Problem(model, test, result.free, priors=False)
    lo, hi = band(problem, result.ensemble, test, np.random.default_rng(seed))
    rows = []
    for i, (row, p) in enumerate(zip(test.itertuples(), predicted)):
        naive = naive_forecast(history, row)
        rows.append({"origin": origin, "id": row.id, "observable": row.observable,
                     "aggregation": row.aggregation, "scale": row.scale, "value": row.value,
                     "model": p, "model_error": error(row.value, p, row.scale),
                     "naive": naive, "naive_error": error(row.value, naive, row.scale),
                     "band_lo": lo[i], "band_hi": hi[i], "covered": bool(lo[i] <= row.value <= hi[i]),
                     "n_history": len(history), "n_free": len(result.free)})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per origin: median |error| of the model and of the trend on amounts (log) and on shares
    (absolute), over the figures both can forecast, and the band's coverage."""
    rows = []
    for origin, part in table.groupby("origin", sort=False):
        both = part.dropna(subset=["model_error", "naive_error"])
        amounts, shares = both[both["scale"] == "log"], both[both["scale"] == "abs"]
        rows.append({"origin": origin, "calibrated on": int(part["n_history"].iloc[0]),
                     "parameters": int(part["n_free"].iloc[0]), "forecast": len(part),
                     "amounts": len(amounts),
                     "model |log error|": amounts["model_error"].abs().median(),
                     "trend |log error|": amounts["naive_error"].abs().median(),
                     "shares": len(shares),
                     "model |error|": shares["model_error"].abs().median(),
                     "trend |error|": shares["naive_error"].abs().median(),
                     "95% band coverage": part["covered"].mean()})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origins", nargs="+", default=list(ORIGINS), help="ISO dates to forecast from")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fits' starts, the MCMC and the band")
    parser.add_argument("--mcmc-steps", type=int, default=150, help="MCMC steps of each origin's ensemble")
    parser.add_argument("--out", default=str(_resources.calibration_dir() / "results" / "backtest.csv"),
                        help="where the forecasts are written (CSV)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    model = ac.load(_resources.shipped_model())
    targets = calibration.targets()
    table = pd.concat([backtest(model, targets, origin, args.seed, args.mcmc_steps, not args.quiet)
                       for origin in args.origins], ignore_index=True)
    write_atomic(args.out, lambda path: table.to_csv(path, index=False, float_format="%.6g"))
    print(summary(table).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

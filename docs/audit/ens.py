# Predictive ensemble as the report builds it (n=4000, seed 0); runs the kept sets to 2035 and saves
# the metric variables + extras to audit-out/ens.npz (+ kept.csv, ranges.csv)
import sys, numpy as np, pandas as pd, aicircle as ac
from aicircle import calibrate as cal
from aicircle.study import ensemble, calibration
from aicircle.study.outcomes import METRIC_VARIABLES
from aicircle.sensitivity import run_ensemble
results = sys.argv[1] if len(sys.argv) > 1 else "calibration/results"
out = sys.argv[2] if len(sys.argv) > 2 else "audit-out/ens"
model = ac.load(sys.argv[3] if len(sys.argv) > 3 else "models/aicircle.mdl")
params = {k: v for k, v in cal.read_parameters(f"{results}/parameters.csv").items() if k in model.parameters.index}
targets = calibration.targets()
draws, info = ensemble.predictive_ensemble(model, targets, params, pd.read_csv(f"{results}/ensemble.csv"), n=4000, seed=0)
kept = draws[draws["kept"]].drop(columns=["chi2", "kept"]).reset_index(drop=True)
print("kept", len(kept), "threshold", info["threshold"], flush=True)
extra = ["Lab Cash", "Investor Confidence", "Compute Demand Ratio", "Lab Compute GW", "Lab Contracted GW",
         "Lab Compute Commitments", "AI Write Offs"]
cols = list(dict.fromkeys([model.resolve(v) for v in list(METRIC_VARIABLES) + extra]))
values, times = run_ensemble(model, ensemble.with_fixed(kept, info["fixed"]), cols, final_time=2035)
np.savez_compressed(out + ".npz", times=times, **{c: values[c] for c in cols})
kept.to_csv(out + "_kept.csv", index=False)
info["ranges"].to_csv(out + "_ranges.csv")
print("done", len(kept))

# Spot-check refits at range ends with the project's API (same Problem/LM as calibration/refit_ends.py),
# 12 and 40 LM iterations. Arguments: [RESULTS_DIR] [MODEL] [NAME=min|max ...] (extra checks, put first;
# for the calib branch: "Growth Perception Time=max" "Max Lab Share of AI Funding=max").
import sys, json, numpy as np, pandas as pd, aicircle as ac
from aicircle import calibrate as cal
from aicircle.study import calibration
from aicircle.study.ensemble import future_parameters
results = sys.argv[1] if len(sys.argv) > 1 else "calibration/results"
model = ac.load(sys.argv[2] if len(sys.argv) > 2 else "models/aicircle.mdl")
targets = calibration.targets()
fit = json.loads(open(f"{results}/fit.json").read()); calibrated = list(fit["free"])
params = {k: v for k, v in cal.read_parameters(f"{results}/parameters.csv").items() if k in model.parameters.index}
extra = [tuple(a.rsplit("=", 1)) for a in sys.argv[3:]]
checks = extra + [("Cost per GW", "min"), ("Growth Horizon", "max"), ("AI Operating Margin", "max"), ("Fundamentalist Share", "max"),
          ("Cancellation Threshold", "min"), ("Cancellation Threshold", "max"), ("Investable Funding Pool", "max"), ("Payables Limit", "min")]
checks = [(p, s) for p, s in checks if p not in calibrated]
cands = [p for p in future_parameters(model, calibrated) if p in {c for c, _ in checks}]
held = {k: v for k, v in params.items() if k not in calibrated and k not in cands}
pr = cal.Problem(model, targets, calibrated + cands, fixed=held, priors=True)
nt, kc = len(pr.targets), len(calibrated)
xb = pr.from_params({p: params.get(p, float(model.parameters.loc[p, "value"])) for p in pr.free})
X0 = [xb.copy()]
for p, s in checks:
    j = pr.free.index(p); x = xb.copy(); x[j] = pr.lower[j] if s == "min" else pr.upper[j]; X0.append(x)
X0 = np.array(X0)
def seen(X):
    r = pr.residuals(X); return np.sum(r[:, :nt]**2, axis=1), np.sum(r[:, :nt+kc]**2, axis=1)
c0, m0 = seen(xb[None])
out = {"name": [f"{p} {s}" for p, s in [("optimum", "")] + checks]}
for it in (12, 40):
    X, _ = cal._lm_batch(pr, X0, np.arange(kc), n_iter=it)
    c, mm = seen(X); out[f"chi2 ({it} it)"] = c; out[f"dmisfit ({it} it)"] = mm - m0[0]
print(f"shipped chi2 {c0[0]:.2f}, misfit {m0[0]:.2f}")
print(pd.DataFrame(out).round(2).to_string(index=False))

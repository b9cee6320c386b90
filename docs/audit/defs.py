# Bust-rule thresholds, loss measures and priors on the kept predictive ensemble saved by ens.py.
import sys, numpy as np, pandas as pd
from aicircle.study import outcomes as O
from aicircle.study.outcomes import METRIC_VARIABLES, loss_paths, window_loss_share, outcome_metrics
from aicircle.posterior import Uniform
pre = sys.argv[1] if len(sys.argv) > 1 else "audit-out/ens"
d = np.load(pre + ".npz"); t = d["times"]; v = {k: d[k] for k in d.files if k != "times"}
kept = pd.read_csv(pre + "_kept.csv"); rng = pd.read_csv(pre + "_ranges.csv", index_col=0)
n = len(kept); S = O.FORECAST_START; fc = t >= S - 1e-9; h = t <= 2035 + 1e-9
L = loss_paths(t, v, S)
peak = L["peak AI capital"]
def worst(realised, window=2.0):
    s = window_loss_share(t, realised, peak, window); return np.where(fc[None], s, 0).max(axis=1)
# loss measures
cost, life, cap = v["Cost per GW"], v["Capacity Life"], v["Total AI Capacity GW"]
earn_cost = v["AI Utilisation"] / v["Target Utilisation"]      # earning at the reference price (no scarcity premium)
str_cost = O._since(t, cap * cost / life * np.clip(1 - earn_cost, 0, 1), S)
lpf = v["Lab Payment Fraction"]
unpaid_all = O._since(t, np.maximum(0, v["Lab Desired Outflows"] - v["Lab Payables to Builders"] / v["Payables Repayment Time"]) * (1 - lpf), S)
val = v["Lab Valuation"]; vpk = O._peak_since(t, val, S); val_loss = np.where(fc[None], vpk - val, 0)  # mark-to-market loss (cumulative from peak)
measures = {
  "rule: stranded+defaults+bills written off": L["realised loss"],
  "+ cancelled backlog & restructuring cuts": L["realised loss"] + L["lost revenue"],
  "stranded at reference price (no scarcity rent) + defaults + bills": str_cost + L["builder defaults"] + L["bills written off"],
  "+ all unpaid lab bills (funding gap)": L["realised loss"] + unpaid_all,
  "+ lab equity mark-down (valuation fall from peak)": L["realised loss"] + val_loss,
}
rows = []
for name, r in measures.items():
    ws = worst(r); ws1 = worst(r, 1.0)
    rows.append({"measure": name, "median worst 2y share": np.median(ws), "p95": np.quantile(ws, .95),
                 **{f"P>{s:.0%}": (ws > s).mean() for s in (0.01, 0.02, 0.05, 0.10, 0.20)}, "P>10% (1y)": (ws1 > 0.1).mean()})
print(pd.DataFrame(rows).set_index("measure").round(3).to_string())
print("median realised loss 2035 $B", np.median(L['realised loss'][:, -1]).round(1), "p95", np.quantile(L['realised loss'][:, -1], .95).round(1),
      "| median lost revenue", np.median(L['lost revenue'][:, -1]).round(0), "| median peak capital", np.median(peak[:, -1]).round(0))
print("stranded capital > 0 in", (L['stranded capital'][:, -1] > 1e-6).mean(), "of sets; at ref price:", (str_cost[:, -1] > 1e-6).mean(),
      "median", np.median(str_cost[:, -1]).round(1))
# price/demand at cut-off across ensemble
i = np.searchsorted(t, 2025.75)
ratio = v["Compute Price per GW"][:, i] / v["Reference Compute Price"][:, i]
print("price/ref at 2025.75: median %.2f (%.2f-%.2f); absolute $B/GW-yr median %.1f; min demand ratio after cut-off median %.2f; lab GW 2025.0 median %.2f"
      % (np.median(ratio), *np.quantile(ratio, [.025, .975]), np.median(v['Compute Price per GW'][:, i]),
         np.median(v['Compute Demand Ratio'][:, fc].min(axis=1)), np.median(v['Lab Compute GW'][:, np.searchsorted(t, 2025.0)])))
# scarcity + capex collapse
cap_ = v["Total AI Capex"]; pkc = O._peak_since(t, cap_, S)
scarce = (v["Compute Demand Ratio"] > 1) & (v["Compute Price per GW"] > v["Reference Compute Price"])
collapse_scarce = ((cap_ < 0.5 * pkc) & scarce & fc[None]).any(axis=1)
print("sets where capex < half its peak in a quarter with demand>capacity and price>ref:", collapse_scarce.mean().round(3))
# priors: flags by 2035
met = outcome_metrics(t, v, 2035.0)
flags = {"capital bust": met["capital bust"].to_numpy(bool), "lab fails": met["lab fails"].to_numpy(bool),
         "capex halves": met["AI capex fall"].to_numpy() >= .5,
         "bust@5% rule": worst(L["realised loss"]) > .05, "bust incl. backlog 10%": worst(L["realised loss"] + L["lost revenue"]) > .1}
lab2030 = outcome_metrics(t, v, 2030.0)["lab fails"].to_numpy(bool); flags["lab fails by 2030"] = lab2030
def P(w): return {k: float((w * f).sum() / w.sum()) for k, f in flags.items()} | {"ess": float(w.sum()**2 / (w**2).sum())}
def dens(p, f):  # reweight from uniform over drawn range to density f (on the drawn range)
    if p not in rng.index or p not in kept: print("  (not drawn here:", p, ")"); return np.ones(n)
    lo, hi = rng.loc[p, "draw_min"], rng.loc[p, "draw_max"]; x = (kept[p].to_numpy() - lo) / (hi - lo); return f(x)
pri = {"as drawn": np.ones(n)}
pri["A: Payables Limit & Fee Share Beta(1,3) (low)"] = \
    dens("Payables Limit", lambda x: 3*(1-x)**2) * dens("Cancellation Fee Share", lambda x: 3*(1-x)**2)
pri["B: Lab Planning Horizon & Cancellation Threshold Beta(3,1) (high), Renegotiation Time Beta(1,3)"] = \
    dens("Lab Planning Horizon", lambda x: 3*x**2) * dens("Cancellation Threshold", lambda x: 3*x**2) * dens("Renegotiation Time", lambda x: 3*(1-x)**2)
pri["C: Restructuring Haircut Beta(3,1) (Global Crossing ~0.98) & Payables Limit Beta(1,3)"] = \
    dens("Restructuring Haircut", lambda x: 3*x**2) * dens("Payables Limit", lambda x: 3*(1-x)**2)
pri["D: Investable Funding Pool Beta(1,3) (low) & Cancellation Fee Share Beta(3,1)"] = \
    dens("Investable Funding Pool", lambda x: 3*(1-x)**2) * dens("Cancellation Fee Share", lambda x: 3*x**2)
for p in ["Payables Limit", "Cancellation Fee Share", "Cancellation Threshold", "Lab Planning Horizon", "Restructuring Haircut", "Investable Funding Pool", "Renegotiation Time"]:
    if p in rng.index: print(f"  drawn {p}: [{rng.loc[p,'draw_min']:.3g}, {rng.loc[p,'draw_max']:.3g}] of declared [{rng.loc[p,'min']:.3g}, {rng.loc[p,'max']:.3g}]")
print(pd.DataFrame({k: P(w) for k, w in pri.items()}).T.round(3).to_string())
# who decides lab failure / worst loss share (Spearman)
from scipy.stats import spearmanr
ws = worst(L["realised loss"])
corr = {p: abs(spearmanr(kept[p], ws)[0]) for p in kept.columns if kept[p].std() > 0}
print("top |rho| with worst loss share:", sorted(corr.items(), key=lambda x: -np.nan_to_num(x[1]))[:5])

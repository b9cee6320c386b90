# Base run (shipped calibration): accounts checks, stocks to 2060, unit economics (issue 24).
import sys, numpy as np, pandas as pd, aicircle as ac
from aicircle import calibrate as cal, accounts
from aicircle.study.outcomes import METRIC_VARIABLES, outcome_metrics
results = sys.argv[1] if len(sys.argv) > 1 else "calibration/results"
mdl = sys.argv[2] if len(sys.argv) > 2 else "models/aicircle.mdl"
m = ac.load(mdl)
p = {k: v for k, v in cal.read_parameters(f"{results}/parameters.csv").items() if k in m.parameters.index}
A = accounts.read_accounts(m)
stocks = list(m.stocks)
want = lambda names: [n for n in names if n in m.variables or True]
extra = ["Compute Price per GW", "Reference Compute Price", "Lab Compute GW", "Lab Contracted GW", "Compute Demand Ratio",
         "AI Utilisation", "Lab Payment Fraction", "Lab Other Costs", "Lab Compute Payments", "Total AI Capex",
         "Investor Confidence", "Lab Payables to Builders", "Payables Written Off", "Lab Excess Payables",
         "Commitment Impairments", "Restructuring Contract Cuts", "Lab Compute Commitments", "Lab Cash",
         "Chip Funded GW", "Second Vendor GW", "Lab Users", "Users per GW", "Capex Confidence Effect",
         "Total Money", "Lab Desired Outflows", "Lab Unpaid Builder Bills", "Lab Unpaid Cloud Bills",
         "Full Cost per Lab GW", "Lab In Kind Compute"]
cols = list(dict.fromkeys([c for c in accounts.variables(m) + stocks + extra + list(METRIC_VARIABLES)]))
ok = []
for c in cols:
    try: m.resolve(c); ok.append(c)
    except Exception as e: print("missing", c)
run = m.simulate(params=p, return_columns=ok, final_time=2060)
t = run.index.to_numpy()
bs = accounts.balance_sheet(A, run); tf = accounts.transactions_flow(A, run)
rows = [r for r in bs.row.values if r != "Net worth"]
print("BS max |row sum| (claims/money/memo):", float(abs(bs.sel(row=[r for r in rows if not r in [i.name for i in A.items if i.kind=='real']]).sum("sector")).max()))
print("TF max |row sum|, |col sum|:", float(abs(tf.sum("sector")).max()), float(abs(tf.sum("row")).max()))
# non-tautological: the TF 'change in' rows against the money stocks' actual change (finite differences)
for i in A.items:
    if i.kind != "money": continue
    d = np.gradient(run[i.name].to_numpy(), t)
    implied = tf.sel(row=f"change in {i.name}", sector=i.issuer).to_numpy()
    sc = max(1.0, np.abs(d).max())
    print(f"  d/dt {i.name}: max |actual - flows| / max|d| = {np.abs(d - implied)[1:-1].max()/sc:.2e}")
print("Total Money drift:", float(run['Total Money'].max() - run['Total Money'].min()) if 'Total Money' in run else 'n/a')
nw = bs.sel(row="Net worth").to_pandas()
print("Net worth by sector at 2025, 2030, 2035, 2060:\n", nw.loc[[2025.0, 2030.0, 2035.0, 2060.0]].round(1).to_string())
# vanishing claims: other costs and compute the lab did not pay (not booked anywhere)
lpf = run["Lab Payment Fraction"].to_numpy()
fc = (t >= 2025.75) & (t <= 2035)
def integ(x, mask): return float(np.trapezoid(x[mask], t[mask]))
unpaid_other = run["Lab Other Costs"].to_numpy() / np.maximum(lpf, 1e-12) * (1 - lpf)
print(f"min Lab Payment Fraction 2025.75-2035: {lpf[fc].min():.3f}; unpaid other costs (not booked) {integ(unpaid_other, fc):.1f} $B;"
      f" booked unpaid builder bills {integ(run['Lab Unpaid Builder Bills'].to_numpy(), fc):.1f}, cloud {integ(run['Lab Unpaid Cloud Bills'].to_numpy(), fc):.1f}")
print("payables written off 2025.75-2035:", round(integ(run['Payables Written Off'].to_numpy(), fc), 1),
      "commitment impairments (memo):", round(integ(run['Commitment Impairments'].to_numpy(), fc), 1))
# stocks bounded to 2060
st = run[[s for s in stocks if s in run]]
g = (st.loc[2060.0] / st.loc[2035.0].replace(0, np.nan))
print("stocks at 2060 (largest), and growth 2035->2060:")
print(pd.DataFrame({"2035": st.loc[2035.0], "2060": st.loc[2060.0], "x": g}).sort_values("2060", ascending=False).head(8).round(2).to_string())
print("any stock negative:", [(s, float(st[s].min())) for s in st if st[s].min() < -1e-6])
# unit economics
for y in (2024.0, 2025.0, 2025.75, 2026.0):
    r = run.loc[y]
    print(f"{y}: price {r['Compute Price per GW']:.2f} (ref {r['Reference Compute Price']:.2f}, x{r['Compute Price per GW']/r['Reference Compute Price']:.2f}),"
          f" demand ratio {r['Compute Demand Ratio']:.2f}, util {r['AI Utilisation']:.3f}, lab GW {r['Lab Compute GW']:.2f},"
          f" contracted GW {r['Lab Contracted GW']:.2f}, backlog ${r['Lab Compute Commitments']:.0f}B, users {r['Lab Users']:.0f}M")
print("Contract Length", p.get("Contract Length", m.parameters.loc["Contract Length","value"]))
print("Oracle $300B at calibrated price*length in GW:", 300/(run.loc[2025.75,'Compute Price per GW']*p.get("Contract Length", float(m.parameters.loc["Contract Length","value"]))))
print("chip funded GW 2030/2035:", run.loc[2030.0,'Chip Funded GW'], run.loc[2035.0,'Chip Funded GW'], " second vendor GW 2030:", run.loc[2030.0,'Second Vendor GW'])
cap = run["Total AI Capex"]; pk = cap.loc[2025.75:2035].idxmax()
print(f"capex peak {cap[pk]:.0f} at {pk}, min after {cap.loc[pk:2035].min():.0f} ({cap.loc[pk:2035].min()/cap[pk]:.2f}) at {cap.loc[pk:2035].idxmin()};"
      f" confidence min {run['Investor Confidence'].loc[pk:2035].min():.2f}; capex confidence effect min {run['Capex Confidence Effect'].loc[pk:2035].min():.2f};"
      f" demand ratio min {run['Compute Demand Ratio'].loc[2025.75:2035].min():.2f}; price/ref min {(run['Compute Price per GW']/run['Reference Compute Price']).loc[2025.75:2035].min():.2f}")
hist = run["Lab Excess Payables"].loc[:2025.5]; print("lab in restructuring before the cut-off:", list(hist[hist>1e-6].index[[0,-1]]) if (hist>1e-6).any() else "never", " min lab cash 2020-2025.5:", round(run["Lab Cash"].loc[:2025.5].min(),2), "at", run["Lab Cash"].loc[:2025.5].idxmin())
met = outcome_metrics(t[t<=2035], {v: run[v].to_numpy()[None][:, t<=2035] for v in METRIC_VARIABLES}, 2035).iloc[0]
print(met.to_string())

# Non-tautological check: do the tagged money flows (transactions-flow matrix) reproduce each money stock's change?
# Stock(t_end)-Stock(t0) against the Euler sum of the flows, saved at every TIME STEP; and growth of stocks 2055-2060.
import numpy as np, aicircle as ac
from aicircle import calibrate as cal, accounts
m = ac.load("models/aicircle.mdl")
p = {k: v for k, v in cal.read_parameters("calibration/results/parameters.csv").items() if k in m.parameters.index}
A = accounts.read_accounts(m); dt = m.time["time_step"]
run = m.simulate(params=p, return_columns=accounts.variables(m), saveper=dt, final_time=2035)
tf = accounts.transactions_flow(A, run)
for i in A.items:
    if i.kind != "money": continue
    implied = tf.sel(row=f"change in {i.name}", sector=i.issuer).to_numpy()
    s = run[i.name].to_numpy(); euler = s[0] + np.concatenate([[0], np.cumsum(implied[:-1] * dt)])
    print(f"{i.name}: max |stock - (initial + sum of flows)| = {np.abs(s - euler).max():.3e} $B (stock max {np.abs(s).max():.0f})")
r = m.simulate(params=p, return_columns=list(m.stocks), final_time=2060)
g = (np.log(r.loc[2060.0].abs() + 1e-9) - np.log(r.loc[2055.0].abs() + 1e-9)) / 5
print("stocks still growing >3%/yr over 2055-2060:", {k: round(float(v), 3) for k, v in g.items() if v > 0.03 and abs(r.loc[2060.0, k]) > 1})

"""Noisy runs (Euler-Maruyama) and early-warning indicators: analytic cases, reproducibility, refusals."""

import math

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from aicircle import early_warning as ew

ADAPTIVE_AND_RK4 = ["rk4", "rk23", "rk45", "dop853", "lsoda", "radau", "bdf"]


def write_mdl(tmp_path, *equations, final_time, time_step, saveper, name="model.mdl"):
    """Write a Vensim model: each ``lhs = rhs`` line gets empty units and comment."""
    blocks = ["{UTF-8}"]
    blocks += [f"{eq}\n\t~\t\n\t~\t\t|" for eq in equations]
    for control, value in (("INITIAL TIME", 0), ("FINAL TIME", final_time),
                           ("TIME STEP", time_step), ("SAVEPER", saveper)):
        blocks.append(f"{control} = {value}\n\t~\t\n\t~\t\t|")
    blocks.append("\\\\\\---/// Sketch information - do not modify anything except names\n")
    path = tmp_path / name
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def sets(n, **columns):
    """A table of ``n`` parameter sets, each column one value for all of them."""
    return pd.DataFrame({k: np.full(n, float(v)) for k, v in columns.items()})


@pytest.fixture
def ou(tmp_path):
    """Ornstein-Uhlenbeck: x' = -k x (+ noise), y' = -k y, from 0; k = 1, dt = 0.01, saved every 0.1."""
    return ac.load(write_mdl(tmp_path, "x = INTEG(-k * x, 0)", "y = INTEG(-k * y, 0)", "k = 1",
                             "double x = 2 * x", final_time=110, time_step=0.01, saveper=0.1, name="ou.mdl"))


# --------------------------------------------------------------------------- the noisy integrator

@pytest.mark.slow
def test_ornstein_uhlenbeck_has_its_stationary_variance_and_lag1_autocorrelation(ou):
    k, sigma, dt, lag = 1.0, 0.5, 0.01, 0.1
    n = 200
    x = ou.simulate_batch(sets(n, k=k), noise={"x": sigma}, seed=3, return_columns=["x"])["x"].to_numpy()
    x = x[:, 100:]  # from t = 10 = 10 relaxation times: the start at 0 is forgotten to e^-20
    # the mean is known to be 0, so these estimators carry no finite-sample bias of their own
    per_set_var = np.mean(x * x, axis=1)
    per_set_cov = np.mean(x[:, 1:] * x[:, :-1], axis=1)
    variance = per_set_var.mean()
    autocorrelation = per_set_cov.mean() / np.mean(x[:, :-1] ** 2)
    # tolerance: 4 standard errors of the mean over independent sets (a false failure about 1 in
    # 16000), plus Euler-Maruyama's own bias at this step: its stationary variance is
    # sigma^2 / (2k - k^2 dt) and its lag autocorrelation (1 - k dt)^(lag/dt)
    se_var = per_set_var.std(ddof=1) / math.sqrt(n)
    ratio = per_set_cov / np.mean(x[:, :-1] ** 2, axis=1)
    se_ac = ratio.std(ddof=1) / math.sqrt(n)
    bias_var = sigma**2 / (2 * k - k * k * dt) - sigma**2 / (2 * k)
    bias_ac = abs((1 - k * dt) ** round(lag / dt) - math.exp(-k * lag))
    assert variance == pytest.approx(sigma**2 / (2 * k), abs=4 * se_var + bias_var)
    assert autocorrelation == pytest.approx(math.exp(-k * lag), abs=4 * se_ac + bias_ac)


def test_noise_enters_each_step_as_independent_standard_normals_times_sigma_sqrt_dt(tmp_path):
    dt, sigma = 0.01, 0.3
    model = ac.load(write_mdl(tmp_path, "x = INTEG(-k * x, 0)", "y = INTEG(-k * y, 0)", "k = 1",
                              final_time=20, time_step=dt, saveper=dt))
    n = 40
    ds = model.simulate_batch(sets(n, k=1), noise={"x": sigma, "y": sigma}, seed=11)
    # Euler-Maruyama: x[i+1] = x[i] - k x[i] dt + sigma sqrt(dt) z[i], so the draws come back exactly
    draws = np.concatenate([(ds[s].values[:, 1:] - ds[s].values[:, :-1] * (1 - dt)) / (sigma * math.sqrt(dt))
                            for s in ("x", "y")])  # (2n, n_steps): every set's x, then every set's y
    m = draws.shape[1]
    # each series is standard normal: mean within 5 standard errors (1/sqrt(m)); variance within
    # 5 of its standard errors (sqrt(2/m)); over 80 series a false failure is about 1 in 20000
    assert np.all(np.abs(draws.mean(axis=1)) < 5 / math.sqrt(m))
    assert np.all(np.abs(draws.var(axis=1) - 1) < 5 * math.sqrt(2 / m))
    # independent: every pairwise correlation is within 5.5/sqrt(m) of 0 (3160 pairs, each beyond it
    # with probability 4e-8)
    corr = np.corrcoef(draws)
    off_diagonal = corr[~np.eye(len(corr), dtype=bool)]
    assert np.max(np.abs(off_diagonal)) < 5.5 / math.sqrt(m)


def test_the_same_seed_gives_the_same_runs_and_another_seed_other_runs(ou):
    def run(seed):
        return ou.simulate_batch(sets(3, k=1), noise={"x": 0.5}, seed=seed, final_time=5)["x"].to_numpy()

    assert np.array_equal(run(7), run(7))
    assert not np.any(run(7)[:, 1:] == run(8)[:, 1:])


def test_a_sets_noise_depends_neither_on_the_other_sets_nor_on_the_chunk_size(ou):
    def run(n, chunk_size):
        table = pd.DataFrame({"k": np.linspace(0.5, 2.0, 7)[:n]})
        return ou.simulate_batch(table, noise={"x": 0.5}, seed=1, final_time=5, chunk_size=chunk_size)["x"]

    whole = run(7, 7).to_numpy()
    assert np.array_equal(run(7, 2).to_numpy(), whole)
    assert np.array_equal(run(3, 7).to_numpy(), whole[:3])


@pytest.mark.parametrize("noisy", ["x", "y"])
def test_noise_only_moves_the_stocks_it_is_given(ou, noisy):
    ds = ou.simulate_batch(sets(2, k=1), noise={noisy: 0.5}, seed=0, final_time=5)
    quiet = "y" if noisy == "x" else "x"
    assert np.all(ds[quiet].to_numpy() == 0.0)  # from 0 with no noise, x' = -k x stays at 0
    assert np.all(ds[noisy].to_numpy()[:, 1:] != 0.0)


def test_zero_noise_is_the_deterministic_euler_run_bit_for_bit(tmp_path):
    model = ac.load(write_mdl(tmp_path, "S = INTEG(-infection, 990)", "I = INTEG(infection - recovery, 10)",
                              "infection = beta * S * I / 1000", "recovery = gamma * I", "beta = 0.5",
                              "gamma = 0.2", final_time=60, time_step=1 / 64, saveper=1))
    table = pd.DataFrame({"beta": [0.3, 0.5, 0.8]})
    plain = model.simulate_batch(table, return_columns=["S", "I"])
    silent = model.simulate_batch(table, return_columns=["S", "I"], noise={"S": 0.0, "I": 0.0}, seed=0)
    for name in ("S", "I"):
        assert np.array_equal(silent[name].to_numpy(), plain[name].to_numpy())


@pytest.mark.slow
def test_zero_noise_on_investor_confidence_reproduces_the_shipped_model_exactly():
    model = ac.load(ac.shipped_model())
    columns = ["Investor Confidence", "AI Capex", "Lab Cash"]
    # the noisy Euler runs on numpy (the compiled kernel does not take noise), so the exact
    # comparison is with the numpy path (the kernel equals it to 1e-12, not bit for bit)
    plain = model.simulate_batch(sets(1, **{"Cancellation Threshold": 1.5}), return_columns=columns,
                                 backend="numpy")
    silent = model.simulate_batch(sets(1, **{"Cancellation Threshold": 1.5}), return_columns=columns,
                                  noise={"Investor Confidence": 0.0}, seed=0)
    for name in columns:
        assert np.array_equal(silent[name].to_numpy(), plain[name].to_numpy())


@pytest.mark.parametrize("solver", ADAPTIVE_AND_RK4)
def test_noise_is_refused_by_every_solver_but_euler(ou, solver):
    with pytest.raises(ac.InvalidInput, match=rf"noise needs solver='euler'.*'{solver}'"):
        ou.simulate_batch(sets(2, k=1), solver=solver, noise={"x": 0.1}, seed=0)


@pytest.mark.parametrize("noise, seed, error, message", [
    ({"double x": 0.1}, 0, ac.InvalidInput, "noise is added to stocks only; 'double x' is not a stock"),
    ({"k": 0.1}, 0, ac.InvalidInput, "noise is added to stocks only; 'k' is not a stock"),
    ({"x": -0.1}, 0, ac.InvalidInput, r"noise on 'x' must be a finite sigma >= 0, got -0.1"),
    ({"x": float("nan")}, 0, ac.InvalidInput, r"noise on 'x' must be a finite sigma >= 0, got nan"),
    ({"x": "big"}, 0, ac.InvalidInput, r"noise on 'x' must be a number, got 'big'"),
    ({"z": 0.1}, 0, ac.UnknownName, "unknown variable 'z'"),
    (0.1, 0, ac.InvalidInput, "noise must map stock names to sigmas, got float"),
    ({"x": 0.1}, -1, ac.InvalidInput, "seed must be a whole number >= 0 or None, got -1"),
    ({"x": 0.1}, 1.5, ac.InvalidInput, "seed must be a whole number >= 0 or None, got 1.5"),
])
def test_bad_noise_or_seed_is_refused_naming_it(ou, noise, seed, error, message):
    with pytest.raises(error, match=message):
        ou.simulate_batch(sets(2, k=1), noise=noise, seed=seed, final_time=1)


def test_noise_that_takes_a_stock_into_a_square_root_of_a_negative_stops_the_run(tmp_path):
    model = ac.load(write_mdl(tmp_path, "x = INTEG(0, 0.01)", "root = SQRT(x)", final_time=10, time_step=0.01,
                              saveper=0.01))
    with pytest.raises(ac.IntegrationError, match=r"'root' is nan at t="):
        model.simulate_batch(pd.DataFrame(index=range(3)), noise={"x": 1.0}, seed=0,
                             return_columns=["x", "root"], allow_nonfinite=False)


NON_NEGATIVE_XMILE = """<?xml version="1.0" encoding="utf-8"?>
<xmile xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0" version="1.0">
  <header><vendor>aicircle tests</vendor><product lang="en">aicircle</product></header>
  <sim_specs method="Euler" time_units="Years">
    <start>0</start><stop>10</stop><dt>0.01</dt><save_step>0.01</save_step>
  </sim_specs>
  <model><variables>
    <stock name="level"><eqn>0.05</eqn><outflow>drain</outflow><non_negative/></stock>
    <flow name="drain"><eqn>0.1 * level</eqn></flow>
  </variables></model>
</xmile>
"""


def test_a_non_negative_stock_is_held_at_zero_where_the_noise_would_take_it_below(tmp_path):
    path = tmp_path / "level.xmile"
    path.write_text(NON_NEGATIVE_XMILE, encoding="utf-8")
    model = ac.load(path)
    level = model.simulate_batch(pd.DataFrame(index=range(20)), noise={"level": 0.5}, seed=2,
                                 return_columns=["level"])["level"].to_numpy()
    assert level.min() == 0.0  # noise of 0.05 per step from 0.05 reaches the floor in every run
    assert np.all((level == 0).any(axis=1))


# --------------------------------------------------------------------------- indicators

def test_rolling_indicators_equal_pandas_rolling_variance_and_autocorrelation():
    x = np.random.default_rng(5).standard_normal((3, 60)).cumsum(axis=1)
    w = 24  # window 0.4 of 60 points
    for row, var, ac1 in zip(x, ew.rolling_variance(x, 0.4), ew.rolling_autocorrelation(x, 0.4)):
        series = pd.Series(row)
        expected_var = series.rolling(w).var().to_numpy()[w - 1:]
        expected_ac1 = series.rolling(w).apply(lambda s: s.autocorr(1), raw=False).to_numpy()[w - 1:]
        # two implementations of the same sums: equal to rounding (1e-12 relative)
        np.testing.assert_allclose(var, expected_var, rtol=1e-12)
        np.testing.assert_allclose(ac1, expected_ac1, rtol=1e-12, atol=1e-12)


def test_detrending_removes_a_straight_line_away_from_the_ends():
    t = np.linspace(0, 100, 1001)
    residuals = ew.detrend(t, 3.0 + 0.5 * t, bandwidth=2.0)
    inner = (t > 12) & (t < 88)  # 6 bandwidths from each end: the kernel's weights are symmetric there
    # to the kernel's truncation at the ends, exp(-18) of the slope times the distance (about 1e-7)
    assert np.max(np.abs(residuals[inner])) < 1e-6
    assert np.max(np.abs(residuals)) > 0.1  # at the ends the smoothing leans one way (Nadaraya-Watson)


def test_kendall_trend_is_plus_one_for_a_rising_and_minus_one_for_a_falling_indicator():
    rising = np.arange(10.0) ** 2
    np.testing.assert_allclose(ew.kendall_trend(np.stack([rising, -rising])), [1.0, -1.0])


@pytest.fixture
def slowing(tmp_path):
    """x' = -a(t) x with a falling linearly from a0 = 2 to a0 - drop at t = 100: a fold approached slowly."""
    return ac.load(write_mdl(tmp_path, "x = INTEG(-a * x, 0)", "a = a0 - drop * Time / 100", "a0 = 2",
                             "drop = 1.95", final_time=100, time_step=0.01, saveper=0.1, name="slowing.mdl"))


@pytest.mark.slow
@pytest.mark.parametrize("drop, rising_in", [(1.95, "most"), (0.0, "about half")])
def test_indicators_rise_before_a_slowly_approached_fold_and_not_without_one(slowing, drop, rising_in):
    n = 60
    x = slowing.simulate_batch(sets(n, drop=drop), noise={"x": 0.3}, seed=4, return_columns=["x"])
    times = x["time"].to_numpy()
    taus = ew.early_warning(times, x["x"].to_numpy(), end=100.0, span=90.0, bandwidth=5.0, window=0.5)
    shares = (taus[["tau_variance", "tau_autocorrelation"]] > 0).mean()
    if rising_in == "most":
        # variance sigma^2 / (2a) grows 40-fold and the lag autocorrelation exp(-a 0.1) from 0.82 to
        # 0.995: both rise in nearly every run; 0.8 leaves room for the runs' noise
        assert np.all(shares >= 0.8)
    else:
        # a stationary, time-reversible process: tau is as often negative as positive, so the share of
        # 60 independent runs is binomial with spread 0.065; 0.2 is 3 spreads (a false failure about 1
        # in 400), and a method that made indicators rise without slowing down would break it
        assert np.all(np.abs(shares - 0.5) <= 0.2)


@pytest.mark.parametrize("call, message", [
    (lambda t, x: ew.early_warning(t, np.where(t > 5, np.nan, x), 9.0, 5.0, 1.0),
     r"series of set 0 is nan at t=5\.1"),
    (lambda t, x: ew.early_warning(t, x, 9.0, 20.0, 1.0), r"a span of 20 before end times 9 to 9 does not"),
    (lambda t, x: ew.early_warning(t, x, 12.0, 5.0, 1.0), r"a span of 5 before end times 12 to 12 does not"),
    (lambda t, x: ew.early_warning(t, x, 9.0, 5.0, 0.0), r"bandwidth must be a positive time, got 0\.0"),
    (lambda t, x: ew.rolling_variance(x, 0.02), r"a window of 0\.02 of 101 points holds 2"),
    (lambda t, x: ew.rolling_variance(x, 1.5), r"window must be a fraction of the series in \(0, 1\]"),
    (lambda t, x: ew.rolling_autocorrelation(np.ones(101), 0.5), "constant within a window"),
    (lambda t, x: ew.kendall_trend(np.ones(8)), "an indicator is constant"),
])
def test_indicators_refuse_what_they_cannot_compute(call, message):
    t = np.linspace(0, 10, 101)
    x = np.sin(t) + np.random.default_rng(0).standard_normal(101)
    with pytest.raises(ac.InvalidInput, match=message):
        call(t, x)

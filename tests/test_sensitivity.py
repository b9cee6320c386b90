"""Sensitivity, Monte Carlo and ensembles: analytic indices, rankings, reproducibility, executors."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from aicircle.sensitivity import monte_carlo, run_ensemble, sensitivity
from aicircle.study import scenarios
from conftest import mdl_text

PI = math.pi

ISHIGAMI = mdl_text(f"""
x1 = 0 ~ dmnl [{-PI!r},{PI!r}] ~ input 1 |
x2 = 0 ~ dmnl [{-PI!r},{PI!r}] ~ input 2 |
x3 = 0 ~ dmnl [{-PI!r},{PI!r}] ~ input 3 |
a = 7 ~ dmnl ~ Ishigami's a |
b = 0.1 ~ dmnl ~ Ishigami's b |
Y = SIN(x1) + a * SIN(x2)^2 + b * x3^4 * SIN(x1) ~ dmnl ~ the Ishigami function |
Acc = INTEG(Y, 0) ~ dmnl ~ a stock, so that Y flows somewhere |
""", initial_time=0, final_time=1, time_step=1, saveper=1)

LINEAR = mdl_text("""
p1 = 0.5 ~ dmnl [0,1] ~ weight 1 |
p2 = 0.5 ~ dmnl [0,1] ~ weight 5 |
p3 = 0.5 ~ dmnl [0,1] ~ weight 10 |
fixed = 2 ~ dmnl [2,2] ~ a declared [a,a] range holds it fixed |
Y = 1 * p1 + 5 * p2 + 10 * p3 + fixed ~ dmnl ~ linear in the inputs |
Level = INTEG(Y, 0) ~ dmnl ~ integral of Y |
""", initial_time=0, final_time=2, time_step=0.5, saveper=1)


def _model(tmp_path, text, name="m.mdl"):
    path = tmp_path / name
    path.write_text(text)
    return ac.load(path)


@pytest.fixture(scope="module")
def ishigami(tmp_path_factory):
    return _model(tmp_path_factory.mktemp("ish"), ISHIGAMI)


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    return _model(tmp_path_factory.mktemp("lin"), LINEAR)


def _ishigami_indices(a=7.0, b=0.1):
    """Analytic Sobol' indices of the Ishigami function (Saltelli et al. 2008, §4.3)."""
    v1 = 0.5 * (1 + b * PI**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * PI**8 * (1 / 18 - 1 / 50)
    var = v1 + v2 + v13
    return {"S1": [v1 / var, v2 / var, 0.0], "ST": [(v1 + v13) / var, v2 / var, v13 / var]}


@pytest.mark.slow
def test_sobol_recovers_the_analytic_ishigami_indices(ishigami):
    got = sensitivity(ishigami, "sobol", "Y", n=8192, seed=1)
    expected = _ishigami_indices()
    # 0.02: the accuracy at n = 8192 (SALib's bootstrap CIs here are ~0.01-0.03)
    np.testing.assert_allclose(got["S1"].to_numpy(), expected["S1"], atol=0.02)
    np.testing.assert_allclose(got["ST"].to_numpy(), expected["ST"], atol=0.02)
    assert list(got.index) == ["x1", "x2", "x3"]


def test_morris_ranks_linear_coefficients_in_order(linear):
    got = sensitivity(linear, "morris", "Y", n=16, seed=3)
    assert list(got["mu_star"].sort_values(ascending=False).index) == ["p3", "p2", "p1"]
    # for a linear model every elementary effect equals its coefficient times the range
    np.testing.assert_allclose(got.loc[["p1", "p2", "p3"], "mu_star"], [1, 5, 10], rtol=1e-9)
    assert "fixed" not in got.index  # [2,2] holds it fixed


def test_morris_holds_given_values_of_parameters_it_does_not_vary(linear):
    # `fixed` ([2,2]) is not varied; a value given for it (as the CLI gives a calibration)
    # only shifts Y, so the elementary effects stay the coefficients times the ranges
    got = sensitivity(linear, "morris", "Y", n=16, seed=3, params={"fixed": 3.0})
    np.testing.assert_allclose(got.loc[["p1", "p2", "p3"], "mu_star"], [1, 5, 10], rtol=1e-9)
    assert "fixed" not in got.index


def test_oat_gives_the_output_at_each_bound(linear):
    got = sensitivity(linear, "oat", "Y", at=1.0)
    # Y = p1 + 5 p2 + 10 p3 + 2 with the others at 0.5: 7.5 + 2 = 9.5 minus the varied term's share
    assert got.loc["p3", "low"] == pytest.approx(1 * 0.5 + 5 * 0.5 + 0 + 2)
    assert got.loc["p3", "high"] == pytest.approx(1 * 0.5 + 5 * 0.5 + 10 + 2)


@pytest.mark.parametrize("seed", [0, 5])  # 0: SALib's own `if seed:` would leave it unseeded
def test_same_seed_gives_same_indices_and_a_different_seed_does_not(linear, seed):
    a = sensitivity(linear, "sobol", "Level", n=64, seed=seed)
    b = sensitivity(linear, "sobol", "Level", n=64, seed=seed)
    c = sensitivity(linear, "sobol", "Level", n=64, seed=seed + 1)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["S1_conf"], c["S1_conf"])


def test_results_do_not_depend_on_the_executor_or_its_workers(linear):
    local = sensitivity(linear, "sobol", "Level", n=64, seed=2, chunk_size=50)
    with ThreadPoolExecutor(max_workers=3) as pool:
        pooled = sensitivity(linear, "sobol", "Level", n=64, seed=2, chunk_size=50, executor=pool)
    pd.testing.assert_frame_equal(local, pooled)


@pytest.mark.slow
def test_dask_local_cluster_with_two_workers_gives_the_local_result(linear):
    distributed = pytest.importorskip("distributed", reason="the 'distributed' extra is not installed")
    local = sensitivity(linear, "sobol", "Level", n=128, seed=4, chunk_size=100)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = sensitivity(linear, "sobol", "Level", n=128, seed=4, chunk_size=100,
                             executor=client)
        bands_remote, _ = monte_carlo(linear, n=40, seed=9, outputs=["Level"],
                                      executor=client, chunk_size=7)
    pd.testing.assert_frame_equal(local, remote)
    bands_local, _ = monte_carlo(linear, n=40, seed=9, outputs=["Level"], chunk_size=13)
    pd.testing.assert_frame_equal(bands_local, bands_remote)


def test_monte_carlo_bands_are_nested_and_reproducible(linear):
    a, _ = monte_carlo(linear, n=200, seed=1, outputs=["Level"])
    b, _ = monte_carlo(linear, n=200, seed=1, outputs=["Level"])
    pd.testing.assert_frame_equal(a, b)
    for lo, hi in [(50, 75), (75, 95), (95, 100)]:
        assert np.all(a[f"lo{hi}"] <= a[f"lo{lo}"]) and np.all(a[f"hi{lo}"] <= a[f"hi{hi}"])
    assert np.all(a["lo50"] <= a["median"]) and np.all(a["median"] <= a["hi50"])


def test_ensemble_rows_keep_their_order_across_chunks(linear):
    table = pd.DataFrame({"p3": np.linspace(0, 1, 25)})
    values, _ = run_ensemble(linear, table, ["Y"], chunk_size=4)
    np.testing.assert_allclose(values["Y"][:, 0], 0.5 + 2.5 + 10 * table["p3"] + 2)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"method": "sobol", "n": 8}, ac.InvalidInput, "too small"),
    ({"method": "sobol", "n": 100}, ac.InvalidInput, "power of 2"),
    ({"method": "morris", "n": 2}, ac.InvalidInput, "too small"),
    ({"method": "fast"}, ac.UnknownName, "unknown method"),
    ({"method": "oat", "bounds": {"p1": (1, 0)}}, ac.InvalidInput, "LO < HI"),
    ({"method": "oat", "bounds": {"nope": (0, 1)}}, ac.UnknownName, "nope"),
    ({"method": "oat", "output": "Zed"}, ac.UnknownName, "Zed"),
    ({"method": "oat", "at": 99.0}, ac.InvalidInput, "outside the run"),
])
def test_bad_requests_are_rejected_with_a_message(linear, kwargs, error, match):
    kwargs = {"output": "Y", **kwargs}
    with pytest.raises(error, match=match):
        sensitivity(linear, **kwargs)


def test_dask_client_fails_loudly_without_dask(monkeypatch):
    import builtins

    from aicircle.sensitivity import dask_client

    real_import = builtins.__import__

    def no_distributed(name, *args, **kwargs):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError("No module named 'distributed'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(ImportError, match=r"aicircle\[distributed\]"):
        dask_client()


def test_params_hold_the_other_parameters_at_given_values(linear):
    # p1 held at 1 instead of its model value 0.5: Y = 1*1 + 5*0.5 + 10*p3 + 2 at the bounds of p3
    got = sensitivity(linear, "oat", "Y", at=1.0, bounds={"p3": (0, 1)}, params={"p1": 1.0})
    assert got.loc["p3", "low"] == pytest.approx(1 + 2.5 + 0 + 2)
    assert got.loc["p3", "high"] == pytest.approx(1 + 2.5 + 10 + 2)
    sob = sensitivity(linear, "sobol", "Y", at=1.0, bounds={"p3": (0, 1), "p2": (0, 1)}, n=64, seed=0,
                      params={"p1": 1.0})
    assert set(sob.index) == {"p3", "p2"}


# --------------------------------------------------------------------------- defaults a user relies on

SWITCHED = LINEAR.replace("fixed = 2 ~ dmnl [2,2] ~ a declared [a,a] range holds it fixed |",
                          "fixed = 2 ~ dmnl [2,2] ~ a declared [a,a] range holds it fixed |\n"
                          "Confidence Shock Size = 0 ~ dmnl [0,0.95] ~ a scenario switch |\n"
                          "Confidence Shock Start = 2026 ~ Year [2020,2035] ~ its start |")


def test_sensitivity_never_varies_the_switches_it_is_given(tmp_path):
    model = _model(tmp_path, SWITCHED)
    switches = scenarios.switches(model)  # what the command line passes: the study's scenario inputs
    frame = sensitivity(model, "oat", "Y", at=1, switches=switches)
    assert "Confidence Shock Size" not in frame.index
    assert set(frame.index) == {"p1", "p2", "p3"}
    # the toolkit has no switches of its own
    assert set(sensitivity(model, "oat", "Y", at=1).index) == {"p1", "p2", "p3", "Confidence Shock Size",
                                                                 "Confidence Shock Start"}


@pytest.mark.parametrize(("method", "n", "column"), [("oat", None, None), ("morris", 8, "mu_star"),
                                                     ("sobol", 64, "ST")])
def test_sensitivity_results_are_ranked_by_influence(linear, method, n, column):
    frame = sensitivity(linear, method, "Y", at=1, n=n, seed=2)
    # Y = p1 + 5 p2 + 10 p3: the weights decide the order whatever the method
    assert list(frame.index) == ["p3", "p2", "p1"]
    if column:
        assert frame[column].is_monotonic_decreasing


def test_sobol_with_too_small_a_sample_for_its_parameters_warns(tmp_path):
    model = _model(tmp_path, SWITCHED)
    bounds = {"p1": (0, 1), "p2": (0, 1), "p3": (0, 1), "fixed": (1, 3), "Confidence Shock Size": (0, 1)}
    # 5 parameters need N >= 4 x 5 = 20: the next power of 2 is 32
    with pytest.warns(ac.errors.SampleSizeWarning, match=r"N = 16 over 5 parameters.*--n 32"):
        sensitivity(model, "sobol", "Y", at=1, n=16, bounds=bounds)


def test_a_sample_too_large_to_run_is_refused_before_sampling(linear):
    # Morris runs N (D + 1) models: 10^8 x 4 is far past the 10^7 cap
    with pytest.raises(ac.InvalidInput, match=r"--n 100000000 asks for 400,000,000 runs"):
        sensitivity(linear, "morris", "Y", at=1, n=10**8)

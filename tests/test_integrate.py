"""Integrators and the run API: orders of convergence, solve_ivp, batches, overrides, errors."""

import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import aicircle as ac
from conftest import write_mdl

ADAPTIVE = ["rk23", "rk45", "dop853", "lsoda", "radau", "bdf"]
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def decay(tmp_path):
    """x' = -k x, x(0) = 1, k = 0.5, saved every 0.5 up to t = 4: x = exp(-t/2)."""
    return ac.load(write_mdl(tmp_path, "x = INTEG(-k * x, 1)", "k = 0.5", "double x = 2 * x",
                             final_time=4, time_step=0.25, saveper=0.5, name="decay.mdl"))


@pytest.fixture
def sir(tmp_path):
    """A nonlinear epidemic: no closed form, so solvers are checked against each other."""
    return ac.load(write_mdl(
        tmp_path, "S = INTEG(-infection, 990)", "I = INTEG(infection - recovery, 10)",
        "R = INTEG(recovery, 0)", "infection = beta * S * I / N", "recovery = gamma * I",
        "N = 1000", "beta = 0.5", "gamma = 0.2",
        final_time=60, time_step=1 / 64, saveper=1, name="sir.mdl"))


def decay_error(model, solver, time_step=None, **kw):
    frame = model.simulate(solver=solver, time_step=time_step, **kw)
    t = frame.index.to_numpy()
    return np.max(np.abs(frame["x"].to_numpy() - np.exp(-0.5 * t)))


# --------------------------------------------------------------------------- orders of convergence

def test_rk4_converges_at_fourth_order_on_exponential_decay(decay):
    # steps from 1/8 to 1/32: errors 5e-8 .. 2e-10, far above rounding (1e-16)
    errors = [decay_error(decay, "rk4", dt) for dt in (1 / 8, 1 / 16, 1 / 32)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    # the asymptotic order is 4; at these steps the observed one is 4.02-4.04
    assert np.all((orders >= 3.8) & (orders <= 4.2)), orders


def test_euler_converges_at_first_order_on_exponential_decay(decay):
    errors = [decay_error(decay, "euler", dt) for dt in (1 / 16, 1 / 32, 1 / 64)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    # the asymptotic order is 1; at these steps the observed one is 1.005-1.01
    assert np.all((orders >= 0.95) & (orders <= 1.05)), orders


def test_euler_is_the_explicit_recursion(decay):
    # Vensim's Euler: x_{n+1} = x_n (1 - k dt) exactly, saved every other step
    frame = decay.simulate()
    n = np.arange(len(frame)) * 2
    np.testing.assert_allclose(frame["x"].to_numpy(), (1 - 0.5 * 0.25) ** n, rtol=1e-14)  # rounding


@pytest.mark.parametrize("solver", ADAPTIVE)
def test_every_solve_ivp_method_agrees_with_the_analytic_solution(decay, solver):
    # With rtol 1e-8 the global error over two time constants stays within a small
    # multiple of rtol (measured: 8e-10 for rk45 to 4e-8 for bdf); 1e-6 has margin.
    assert decay_error(decay, solver, rtol=1e-8, atol=1e-10) < 1e-6


def test_rk45_at_tight_tolerance_agrees_with_fine_rk4_on_a_nonlinear_model(sir):
    tight = sir.simulate(solver="rk45", rtol=1e-10, atol=1e-12)
    fine = sir.simulate(solver="rk4")  # TIME STEP 1/64: RK4 error ~1e-10 of the population
    assert tight.index.equals(fine.index)
    for column in ("S", "I", "R", "infection"):
        scale = np.max(np.abs(fine[column].to_numpy()))
        # both are ~1e-10 from the exact solution (measured 2.5e-10): 1e-7 is generous
        # yet would catch any error in the RHS or the time grid
        np.testing.assert_allclose(tight[column].to_numpy(), fine[column].to_numpy(), rtol=0,
                                   atol=1e-7 * scale, err_msg=column)


def test_smooth_runs_under_adaptive_solvers_as_a_continuous_state(tmp_path):
    # SMOOTHI(1, 4, 0) is 1 - exp(-t/4) in continuous time
    model = ac.load(write_mdl(tmp_path, "x = SMOOTHI(1, 4, 0)", "y = DELAY1I(1, 4, 0)"))
    frame = model.simulate(solver="rk45", rtol=1e-10, atol=1e-12)
    t = frame.index.to_numpy()
    for column in ("x", "y"):
        # tolerance: rtol 1e-10 of the solver, with margin for accumulation
        np.testing.assert_allclose(frame[column].to_numpy(), 1 - np.exp(-t / 4), rtol=0, atol=1e-8)


# --------------------------------------------------------------------------- solver names

@pytest.mark.parametrize("spelling, canonical", [
    ("EULER", "euler"), ("Rk4", "rk4"), ("RK45", "rk45"), ("Rk23", "rk23"), ("DOP853", "dop853"),
    ("LSODA", "lsoda"), ("Radau", "radau"), ("BDF", "bdf"),
])
def test_solver_names_are_case_insensitive(decay, spelling, canonical):
    pd.testing.assert_frame_equal(decay.simulate(solver=spelling), decay.simulate(solver=canonical))


def test_unknown_solver_is_an_unknown_name(decay):
    with pytest.raises(ac.UnknownName, match="unknown solver 'heun'"):
        decay.simulate(solver="heun")


@pytest.mark.parametrize("solver", ["rk45", "bdf", "lsoda"])
@pytest.mark.parametrize("equation, construct", [
    ("y = SAMPLE IF TRUE(Time > 2, x, 0)", "SAMPLE IF TRUE"),
    ("y = DELAY FIXED(x, 1, 0)", "DELAY FIXED"),
])
def test_adaptive_solver_refuses_discrete_state(tmp_path, equation, construct, solver):
    model = ac.load(write_mdl(tmp_path, "x = INTEG(1, 0)", equation))
    with pytest.raises(ac.UnsupportedFeature, match=rf"{construct}.*solver '{solver}'"):
        model.simulate(solver=solver)


def test_adaptive_solver_refuses_time_settings_that_change_with_time(tmp_path):
    model = ac.load(write_mdl(tmp_path, "x = INTEG(1, 0)", final_time="IF THEN ELSE(Time >= 4, 4, 10)"))
    with pytest.raises(ac.UnsupportedFeature, match="solver='euler'"):
        model.simulate(solver="rk45")


# --------------------------------------------------------------------------- batches

@pytest.fixture
def table():
    return pd.DataFrame({"k": [0.1, 0.5, 1.0, 2.0, 3.0, 0.25, 0.75]},
                        index=pd.Index(["a", "b", "c", "d", "e", "f", "g"], name="run"))


@pytest.mark.parametrize("solver", ["euler", "rk4", "rk45"])
def test_batch_sets_equal_single_runs_exactly(decay, table, solver):
    batch = decay.simulate_batch(table, solver=solver, return_columns=["x", "double x"])
    for name, k in table["k"].items():
        single = decay.simulate(params={"k": k}, solver=solver, return_columns=["x", "double x"])
        # the same elementwise operations on one column or many: bit for bit equal
        np.testing.assert_array_equal(batch["x"].sel(set=name).to_numpy(), single["x"].to_numpy())
        np.testing.assert_array_equal(batch["double x"].sel(set=name).to_numpy(),
                                      single["double x"].to_numpy())


def test_batch_results_do_not_depend_on_chunk_size(decay, table):
    small = decay.simulate_batch(table, return_columns=["x"], chunk_size=3)
    large = decay.simulate_batch(table, return_columns=["x"], chunk_size=1000)
    np.testing.assert_array_equal(small["x"].to_numpy(), large["x"].to_numpy())
    assert small.identical(large)


def test_batch_is_a_dataset_over_set_and_time(decay, table):
    batch = decay.simulate_batch(table, return_columns=["x"])
    assert isinstance(batch, xr.Dataset)
    assert batch["x"].dims == ("set", "time")
    assert list(batch["set"].to_numpy()) == list(table.index)
    np.testing.assert_array_equal(batch["time"].to_numpy(), np.arange(9) * 0.5)


def test_batch_returns_the_stocks_by_default(decay, table):
    batch = decay.simulate_batch(table)
    assert list(batch.data_vars) == ["x"]


def test_batch_columns_missing_from_the_table_keep_the_model_values(tmp_path):
    model = ac.load(write_mdl(tmp_path, "x = INTEG(a + b, 0)", "a = 1", "b = 10", final_time=2))
    batch = model.simulate_batch(pd.DataFrame({"a": [0.0, 2.0]}), return_columns=["x"])
    np.testing.assert_array_equal(batch["x"].to_numpy(), [[0, 10, 20], [0, 12, 24]])


# --------------------------------------------------------------------------- overrides and results

def test_simulate_returns_a_frame_indexed_by_time(decay):
    frame = decay.simulate()
    assert isinstance(frame, pd.DataFrame)
    assert frame.index.name == "time"
    np.testing.assert_array_equal(frame.index.to_numpy(), np.arange(9) * 0.5)
    assert set(frame.columns) == set(decay.variables)


@pytest.mark.parametrize("solver", ["euler", "rk45"])
def test_the_result_type_does_not_depend_on_the_solver(decay, solver):
    frame = decay.simulate(solver=solver)
    assert isinstance(frame, pd.DataFrame) and frame.index.name == "time"
    assert list(frame.columns) == list(decay.simulate().columns)


def test_return_columns_selects_and_orders_columns_by_vensim_names(decay):
    frame = decay.simulate(return_columns=["Double_X", "X"])
    assert list(frame.columns) == ["double x", "x"]  # the model's own spelling
    np.testing.assert_array_equal(frame["double x"].to_numpy(), 2 * frame["x"].to_numpy())


def test_params_override_a_parameter(decay):
    frame = decay.simulate(params={"k": 1.0}, solver="rk45", rtol=1e-10, atol=1e-12)
    t = frame.index.to_numpy()
    np.testing.assert_allclose(frame["x"].to_numpy(), np.exp(-t), rtol=0, atol=1e-8)  # solver rtol 1e-10


def test_params_override_an_auxiliary_with_a_constant(tmp_path):
    model = ac.load(write_mdl(tmp_path, "x = INTEG(inflow, 0)", "inflow = k * 2", "k = 1", final_time=4))
    frame = model.simulate(params={"inflow": 3.0})
    assert (frame["inflow"] == 3.0).all()
    assert frame["x"].tolist() == [0.0, 3.0, 6.0, 9.0, 12.0]


def test_initial_overrides_a_stock(decay):
    frame = decay.simulate(initial={"x": 3.0})
    assert frame["x"].iloc[0] == 3.0
    np.testing.assert_allclose(frame["x"].to_numpy(), 3 * decay.simulate()["x"].to_numpy(), rtol=1e-15)


def test_time_settings_can_be_overridden_per_run(decay):
    frame = decay.simulate(final_time=2, time_step=0.125, saveper=0.25)
    np.testing.assert_array_equal(frame.index.to_numpy(), np.arange(9) * 0.25)


def test_nothing_persists_between_runs(decay, table):
    default = decay.simulate()
    decay.simulate(params={"k": 2.0}, initial={"x": 5.0}, final_time=2, solver="rk45")
    decay.simulate_batch(table)
    pd.testing.assert_frame_equal(decay.simulate(), default)
    assert decay.parameters.loc["k", "value"] == 0.5


# --------------------------------------------------------------------------- input errors

@pytest.mark.parametrize("kwargs, name", [
    (dict(params={"kay": 1.0}), "kay"),
    (dict(initial={"why": 1.0}), "why"),
    (dict(return_columns=["zed"]), "zed"),
])
def test_unknown_names_raise_unknown_name_naming_them(decay, kwargs, name):
    with pytest.raises(ac.UnknownName, match=f"'{name}'"):
        decay.simulate(**kwargs)


def test_unknown_batch_column_raises_unknown_name(decay):
    with pytest.raises(ac.UnknownName, match="'kay'"):
        decay.simulate_batch(pd.DataFrame({"kay": [1.0]}))


@pytest.mark.parametrize("kwargs", [
    dict(params={"k": math.nan}),
    dict(params={"k": math.inf}),
    dict(params={"k": "fast"}),
    dict(initial={"x": -math.inf}),
    dict(final_time=math.nan),
    dict(time_step=0),
    dict(saveper=-1),
], ids=["nan", "inf", "text", "initial-inf", "final-nan", "zero-step", "negative-saveper"])
def test_bad_values_raise_invalid_input(decay, kwargs):
    with pytest.raises(ac.InvalidInput, match="'k'|'x'|FINAL TIME|TIME STEP|SAVEPER"):
        decay.simulate(**kwargs)


def test_non_finite_batch_value_raises_invalid_input(decay):
    with pytest.raises(ac.InvalidInput, match="'k'"):
        decay.simulate_batch(pd.DataFrame({"k": [0.1, math.nan]}))


def test_batch_initial_values_of_the_wrong_length_raise_invalid_input(decay, table):
    with pytest.raises(ac.InvalidInput, match="'x'"):
        decay.simulate_batch(table, initial={"x": np.array([1.0, 2.0])})  # 7 sets, 2 values


def test_a_stock_is_not_a_parameter(decay):
    with pytest.raises(ac.InvalidInput, match="'x' is a stock"):
        decay.simulate(params={"x": 1.0})


# --------------------------------------------------------------------------- solver failures

@pytest.fixture
def blow_up(tmp_path):
    """x' = x^2, x(0) = 1: x = 1 / (1 - t), infinite at t = 1."""
    return ac.load(write_mdl(tmp_path, "x = INTEG(x ^ 2, 1)", final_time=2, time_step=0.01, name="blow.mdl"))


@pytest.mark.parametrize("solver", ["rk23", "rk45", "dop853", "radau", "bdf"])
def test_solver_that_gives_up_raises_integration_error_with_the_time_reached(blow_up, solver):
    with pytest.raises(ac.IntegrationError, match=rf"{solver}.*t=") as caught:
        blow_up.simulate(solver=solver)
    reached = float(re.search(r"t=([-+0-9.eE]+)", str(caught.value)).group(1))
    assert 0.9 <= reached <= 1.0  # the singularity is at t = 1
    assert "blow.mdl" in str(caught.value)


@pytest.mark.slow
def test_lsoda_gives_up_on_a_blow_up_instead_of_hanging(tmp_path):
    # scipy's LSODA, left alone, retries forever at t = 0.9949 once x^2 overflows to
    # inf: run it in a child process so that a hang fails the test instead of the suite.
    path = write_mdl(tmp_path, "x = INTEG(x ^ 2, 1)", final_time=2, time_step=0.01, name="blow.mdl")
    code = textwrap.dedent(f"""
        import aicircle as ac
        try:
            ac.load({str(path)!r}).simulate(solver="lsoda")
        except ac.IntegrationError as err:
            print("IntegrationError", err)
    """)
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT,
                              timeout=30)  # the others give up within 0.1 s; start-up takes ~2 s
    except subprocess.TimeoutExpired:
        pytest.fail("solver 'lsoda' was still running after 30 s on x' = x^2 (it never gives up)")
    assert done.stdout.startswith("IntegrationError"), done.stdout + done.stderr


# --------------------------------------------------------------------------- derivative and initial state

@pytest.fixture
def smoothed(tmp_path):
    """A stock plus the hidden state of a SMOOTH: two states."""
    return ac.load(write_mdl(tmp_path, "x = INTEG(-k * x, 1)", "k = 0.5", "y = SMOOTHI(x, 2, 3)"))


def test_state_names_start_with_the_stocks(smoothed):
    assert smoothed.stocks == ("x",)
    assert len(smoothed.state_names) == 2
    assert smoothed.state_names[0] == "x"


def test_initial_state_has_one_value_per_state(smoothed):
    np.testing.assert_array_equal(smoothed.initial_state(), [1.0, 3.0])


def test_initial_state_is_vectorised_over_parameter_arrays(tmp_path):
    model = ac.load(write_mdl(tmp_path, "x = INTEG(-k * x, x0)", "x0 = 1", "k = 0.5"))
    y0 = model.initial_state(params={"x0": np.array([1.0, 2.0, 5.0])})
    assert y0.shape == (1, 3)
    np.testing.assert_array_equal(y0[0], [1.0, 2.0, 5.0])


def test_derivative_of_one_state_vector(smoothed):
    dy = smoothed.derivative(0.0, np.array([2.0, 1.0]))
    assert dy.shape == (2,)
    np.testing.assert_allclose(dy, [-0.5 * 2.0, (2.0 - 1.0) / 2], rtol=1e-15)  # one rounding


def test_derivative_is_vectorised_over_states_and_parameters(smoothed):
    y = np.array([[1.0, 2.0, 4.0], [0.0, 0.0, 1.0]])
    k = np.array([0.5, 1.0, 2.0])
    dy = smoothed.derivative(3.0, y, params={"k": k})
    assert dy.shape == (2, 3)
    np.testing.assert_allclose(dy[0], -k * y[0], rtol=1e-15)
    np.testing.assert_allclose(dy[1], (y[0] - y[1]) / 2, rtol=1e-15)
    for j in range(3):  # each column alone gives the same numbers
        np.testing.assert_array_equal(smoothed.derivative(3.0, y[:, j], params={"k": k[j]}), dy[:, j])


@pytest.mark.parametrize("shape", [(1,), (3,), (5, 2)])
def test_derivative_refuses_a_state_of_the_wrong_length(smoothed, shape):
    with pytest.raises(ac.InvalidInput, match="state"):
        smoothed.derivative(0.0, np.ones(shape))  # the model has 2 states


def test_derivative_is_the_slope_euler_follows(decay):
    frame = decay.simulate(time_step=0.5, saveper=0.5)
    slope = decay.derivative(0.0, np.array([1.0]))
    assert frame["x"].iloc[1] == 1.0 + 0.5 * slope[0]

"""Calibration (aicircle.calibrate): recovery of known parameters from synthetic
targets, reproducibility, screening, identifiability, validation and the files
a calibration writes (docs/design.md §3 and §5)."""

import csv
import json
import math
import os
import stat

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from aicircle import calibrate as cal
from aicircle.cli import write_atomic
from aicircle.observables import observe, read_targets
from aicircle.study import scenarios
from aicircle.study.observables import OBSERVABLES as VOCABULARY  # the test models define its observables
from conftest import mdl_text

TIME_SETTINGS = dict(initial_time=2020, final_time=2027, time_step=0.0625, saveper=0.25)

# Logistic growth; its variables define the observables lab_revenue (a flow) and lab_users (a
# level). The defaults of r and K are deliberately not the values that made the data (TRUE).
LOGISTIC_MDL = mdl_text("""
Users Stock = INTEG(Lab Revenue, x0)
	~	million
	~	The stock.
	|
Lab Revenue = r * Users Stock * (1 - Users Stock / K)
	~	$B/Year
	~	A flow observable.
	|
Lab Users = Users Stock
	~	million
	~	A level observable.
	|
r = 0.5
	~	1/Year [0.1, 2]
	~	Growth rate.
	|
K = 300
	~	million [100, 2000]
	~	Ceiling.
	|
x0 = 10
	~	million
	~	Initial users (no range: not calibrated).
	|
dummy = 1
	~	dmnl [0.5, 2]
	~	Has a range but reaches no observable.
	|
Unobserved = dummy * Users Stock
	~	million
	~	Depends on dummy; observed by no target.
	|
""", **TIME_SETTINGS)

TRUE = {"r": 0.8, "K": 500.0}

# Revenue enters only through the product a*b: the data cannot tell a from b.
PRODUCT_MDL = mdl_text("""
Users Stock = INTEG(Lab Revenue, 1)
	~	million
	~	The stock.
	|
Lab Revenue = a * b * Users Stock
	~	$B/Year
	~	A flow observable.
	|
Lab Users = Users Stock
	~	million
	~	A level observable.
	|
a = 0.3
	~	1/Year [0.1, 1]
	~	One factor.
	|
b = 1.5
	~	dmnl [0.5, 2]
	~	The other factor.
	|
""", **TIME_SETTINGS)

# id, observable, start, end, aggregation, unit, sigma: in no sorted order, to check file order
ROWS = [
    ("rev_2021", "lab_revenue", "2021-01-01", "2021-12-31", "total", "$B", 0.05),
    ("users_2021", "lab_users", "2021-12-31", "2021-12-31", "level", "million", 0.05),
    ("rev_2022", "lab_revenue", "2022-01-01", "2022-12-31", "total", "$B", 0.05),
    ("rev_h1_2023", "lab_revenue", "2023-01-01", "2023-06-30", "mean", "$B/Year", 0.05),
    ("users_2023", "lab_users", "2023-12-31", "2023-12-31", "level", "million", 0.05),
    ("rev_growth_2024", "lab_revenue", "2024-01-01", "2024-12-31", "growth", "fraction", 0.02),
    ("users_h1_2025", "lab_users", "2025-06-30", "2025-06-30", "level", "million", 0.05),
    ("rev_runrate_2025", "lab_revenue", "2025-06-30", "2025-06-30", "level", "$B/Year", 0.05),
]
GROWTH_ROW = 5  # the one target measured by an absolute error


def write_targets(path, values):
    """Write ROWS with ``values`` as a docs/design.md §3 target file."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "observable", "start", "end", "aggregation", "value", "unit", "sigma",
                         "source", "quote"])
        for (tid, obs, start, end, agg, unit, sigma), value in zip(ROWS, values):
            writer.writerow([tid, obs, start, end, agg, repr(float(value)), unit, sigma,
                             "synthetic", "made by the test"])
    return path


def predictions(model, params, folder):
    """Each target of ROWS as ``model`` predicts it, from one run saved at every TIME STEP."""
    skeleton = read_targets(write_targets(folder / "skeleton.csv", [0.5] * len(ROWS)), VOCABULARY)
    run = model.simulate(params=params, saveper=model.time["time_step"],
                         return_columns=["Lab Revenue", "Lab Users"])
    return observe(skeleton, run.index.to_numpy(), run)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("calibrate")


@pytest.fixture(scope="module")
def model(folder):
    path = folder / "logistic.mdl"
    path.write_text(LOGISTIC_MDL, encoding="utf-8")
    return ac.load(path)


@pytest.fixture(scope="module")
def synthetic(model, folder):
    """Noise-free targets made by the model at TRUE."""
    return write_targets(folder / "synthetic.csv", predictions(model, TRUE, folder))


@pytest.fixture(scope="module")
def result(model, synthetic):
    return cal.calibrate(model, synthetic, free=["r", "K"], n_starts=3, mcmc_steps=30,
                         profile_points=7, seed=0, vocabulary=VOCABULARY)


# --------------------------------------------------------------------------- recovery

@pytest.mark.parametrize("name", ["r", "K"])
def test_calibration_recovers_known_parameters_within_their_profile_intervals(model, result, name):
    interval = result.intervals.loc[name]
    fitted = result.parameters[name]
    assert interval["lo95"] < TRUE[name] < interval["hi95"]
    assert interval["lo95"] < fitted < interval["hi95"]
    # the profile crosses chi2 + 3.84 inside the box on both sides: identifiable
    assert not interval["lo_bounded"] and not interval["hi_bounded"]
    # the start (the model's default) was outside the interval: the fit did move there
    assert not interval["lo95"] < model.parameters.loc[name, "value"] < interval["hi95"]


def test_noise_free_data_are_fitted_with_chi2_near_zero(result):
    # chi2 is 0 at TRUE; the priors (centred on the wrong defaults, a quarter of the log-range
    # wide) pull the optimum off it by a small fraction of the 5% sigmas. With noisy data chi2
    # would be about 8, one per target.
    assert result.statistics["chi2_targets"] < 0.01
    assert result.statistics["within_2sigma"] == 1.0
    assert result.free == ["r", "K"]
    assert result.parameters["x0"] == 10 and result.parameters["dummy"] == 1  # not calibrated


def test_profile_intervals_agree_with_the_curvature_of_chi2(model, synthetic, result):
    problem = cal.Problem(model, read_targets(synthetic, VOCABULARY), result.free)
    J, _ = problem.jacobian(result.fit.x)
    sd = np.sqrt(np.diag(np.linalg.inv(J.T @ J)))  # search coordinates: ln r, ln K
    lo = np.log(result.intervals.loc[result.free, "lo95"].to_numpy())
    hi = np.log(result.intervals.loc[result.free, "hi95"].to_numpy())
    # Near the optimum (sigma of ln r about 1%) the model is close to linear in its parameters,
    # so the profile is close to a parabola and its 95% interval is x +- 1.96 sd. The profile is
    # sampled on 7 points across the box and interpolated: 30% on each half-width.
    np.testing.assert_allclose(result.fit.x - lo, 1.96 * sd, rtol=0.3)
    np.testing.assert_allclose(hi - result.fit.x, 1.96 * sd, rtol=0.3)


@pytest.mark.slow
def test_calibration_is_reproducible_with_the_same_seed(model, synthetic):
    first, second = (cal.calibrate(model, synthetic, free=["r", "K"], n_starts=3, mcmc_steps=0,
                                   profile_points=0, seed=7, vocabulary=VOCABULARY) for _ in range(2))
    np.testing.assert_array_equal(first.fit.x, second.fit.x)
    assert first.fit.chi2 == second.fit.chi2
    assert first.fit.starts == second.fit.starts


def test_polish_runs_on_from_the_best_start_and_never_makes_it_worse(model, synthetic):
    problem = cal.Problem(model, read_targets(synthetic, VOCABULARY), ["r", "K"], priors=False)
    # Two evaluations per start leave every start short of the optimum; the polish finishes it.
    best = cal.fit(problem, n_starts=3, seed=1, max_nfev=2, polish_nfev=100)
    *starts, polish = best.starts
    assert [s[0] for s in starts] == [0, 1, 2] and polish[0] == "polish"
    assert polish[1] < min(s[1] for s in starts)
    assert best.chi2 == polish[1] and polish[2]
    found = problem.to_params(best.x[None]).iloc[0]
    np.testing.assert_allclose([found["r"], found["K"]], [TRUE["r"], TRUE["K"]], rtol=1e-4)


def test_posterior_ensemble_depends_on_the_seed_alone(model, synthetic, result):
    problem = cal.Problem(model, read_targets(synthetic, VOCABULARY), result.free)
    a, b, c = (cal.sample_posterior(problem, result.fit, n_steps=12, burn=4, thin=1, seed=s)[0]
               for s in (1, 1, 2))
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    assert list(a.columns) == ["r", "K"] and len(a) == 16 * (12 - 4)  # 16 walkers (the minimum)


def test_sample_posterior_rejects_a_burn_in_as_long_as_the_chain(model, synthetic, result):
    problem = cal.Problem(model, read_targets(synthetic, VOCABULARY), result.free)
    with pytest.raises(ac.InvalidInput, match="burn-in 10"):
        cal.sample_posterior(problem, result.fit, n_steps=10, burn=10)


# --------------------------------------------------------------------------- screening

def test_screen_chooses_informative_parameters_and_not_one_without_effect(model, synthetic):
    screening = cal.screen(model, read_targets(synthetic, VOCABULARY))
    assert set(screening.index) == {"r", "K", "dummy"}  # the parameters with a finite range
    assert screening.loc["r", "chosen"] and screening.loc["K", "chosen"]
    assert not screening.loc["dummy", "chosen"]
    # dummy reaches no observable: its sensitivity column is exactly zero
    assert screening.loc["dummy", "influence"] == 0


@pytest.mark.slow  # about 3 s: one batch of 120 runs of the capital-circle model
def test_screen_never_calibrates_a_scenario_switch():
    # Scenario inputs (the confidence shock's size, ...) are off in history; a fit that
    # turned one on would explain the past with a shock that never happened.
    circle = ac.load(ac.shipped_model())
    switches = scenarios.switches(circle)
    screening = cal.screen(circle, read_targets(ac.shipped_targets(), VOCABULARY), k_max=5, switches=switches)
    assert "Confidence Shock Size" in switches
    assert switches.isdisjoint(screening.index)
    assert "Value per User" in screening.index  # an ordinary ranged parameter stays a candidate


SWITCHES_MDL = mdl_text("""
Stock = INTEG(confidence_shock_size + CONFIDENCE SHOCK START * 0 - Stock, 1)
	~	dmnl
	~	A stock.
	|
Lab Users = Stock * growth
	~	million
	~	A level observable.
	|
Lab Revenue = 0.1 * Lab Users
	~	$B/Year
	~	A flow observable.
	|
growth = 1
	~	dmnl [0.5, 2]
	~	An ordinary parameter.
	|
confidence_shock_size = 0
	~	dmnl [0, 1]
	~	A scenario input, spelt otherwise than in aicircle.study.scenarios.
	|
CONFIDENCE SHOCK START = 2026
	~	Year [2020, 2035]
	~	Its start.
	|
""", **TIME_SETTINGS)


def test_scenario_switches_are_recognised_however_the_model_spells_them(folder):
    path = folder / "switches.mdl"
    path.write_text(SWITCHES_MDL, encoding="utf-8")
    model = ac.load(path)
    switches = scenarios.switches(model)
    assert switches == {"confidence_shock_size", "CONFIDENCE SHOCK START"}
    targets = read_targets(write_targets(folder / "switches.csv", predictions(model, {}, folder)), VOCABULARY)
    assert set(cal.screen(model, targets, switches=switches).index) == {"growth"}
    # the toolkit holds back only the switches it is given
    assert "confidence_shock_size" in cal.screen(model, targets).index


# --------------------------------------------------------------------------- identifiability

def test_parameters_entering_as_a_product_have_rank_one_and_a_sloppy_ratio(folder):
    path = folder / "product.mdl"
    path.write_text(PRODUCT_MDL, encoding="utf-8")
    model = ac.load(path)
    targets = read_targets(write_targets(folder / "product.csv", predictions(model, {}, folder)), VOCABULARY)
    problem = cal.Problem(model, targets, ["a", "b"], priors=False)
    J, _ = problem.jacobian(problem.x_default)
    ident = cal.identifiability(J, problem.free)
    assert ident["rank"] == 1 and ident["n_parameters"] == 2
    # revenue depends on ln a + ln b only: moving along (1, -1)/sqrt 2 in log space changes
    # nothing; components are rounded to 4 decimals
    sloppy = np.array([ident["sloppiest"]["a"], ident["sloppiest"]["b"]])
    stiff = np.array([ident["stiffest"]["a"], ident["stiffest"]["b"]])
    np.testing.assert_allclose(abs(sloppy), [1 / math.sqrt(2)] * 2, atol=1e-4)
    assert np.sign(sloppy[0]) == -np.sign(sloppy[1])
    np.testing.assert_allclose(stiff * np.sign(stiff[0]), [1 / math.sqrt(2)] * 2, atol=1e-4)


# --------------------------------------------------------------------------- validation

def test_validate_gives_each_target_its_prediction_and_error_in_file_order(model, folder):
    exact = predictions(model, TRUE, folder)
    # positive amounts 10% above the model; the growth 0.05 below it
    values = np.where(np.arange(len(ROWS)) == GROWTH_ROW, exact - 0.05, exact * 1.1)
    table = cal.validate(model, write_targets(folder / "off.csv", values), TRUE, vocabulary=VOCABULARY)
    assert table["id"].tolist() == [row[0] for row in ROWS]
    # a batch run and a single run, the same Euler arithmetic
    np.testing.assert_allclose(table["predicted"], exact, rtol=1e-12)
    is_growth = np.arange(len(ROWS)) == GROWTH_ROW
    # log_error = ln(predicted / value) for positive amounts; abs_error for growth (docs/design.md §3)
    np.testing.assert_allclose(table["log_error"][~is_growth], -math.log(1.1), rtol=1e-9)
    assert table["abs_error"][~is_growth].isna().all()
    assert table["abs_error"][GROWTH_ROW] == pytest.approx(0.05, rel=1e-9)
    assert math.isnan(table["log_error"][GROWTH_ROW])
    sigma = np.array([row[-1] for row in ROWS])
    errors = np.where(is_growth, table["abs_error"], table["log_error"])
    np.testing.assert_allclose(table["residual"], errors / sigma, rtol=1e-12)


def test_validate_uses_the_model_values_without_params(model, folder, synthetic):
    table = cal.validate(model, synthetic, vocabulary=VOCABULARY)
    np.testing.assert_allclose(table["predicted"], predictions(model, {}, folder), rtol=1e-12)


def test_problem_refuses_a_parameter_without_a_declared_range(model, synthetic):
    with pytest.raises(ac.InvalidInput, match="'x0' needs a finite declared range"):
        cal.Problem(model, read_targets(synthetic, VOCABULARY), ["x0"])


# --------------------------------------------------------------------------- files

@pytest.mark.parametrize("text, match", [
    (None, r"not found: .*params\.csv"),
    ("parameter,val\nr,0.5\n", r"params\.csv: expected the columns name,value"),
    ("name,value\nr,0.5\nK,lots\n", r"params\.csv: row 2, column 'value': not a finite number"),
    ("name,value\nr,0.5\nK,inf\n", r"params\.csv: row 2, column 'value'.*finite"),
], ids=["missing-file", "wrong-columns", "non-numeric-value", "infinite-value"])
def test_read_parameters_rejects_a_bad_file_naming_the_problem(tmp_path, text, match):
    path = tmp_path / "params.csv"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ac.InvalidInput, match=match):
        cal.read_parameters(path)


def test_write_results_writes_every_file_and_no_temporary_ones(model, result, tmp_path):
    out = cal.write_results(result, tmp_path / "results", model=model, command="aicircle test")
    names = sorted(p.name for p in out.iterdir())
    assert {"parameters.csv", "fit.json", "ensemble.csv", "profile_intervals.csv"} <= set(names)
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    umask = os.umask(0)
    os.umask(umask)
    for name in names:  # readable as if written by open(), not private like a temporary file
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name

    params = pd.read_csv(out / "parameters.csv")
    assert list(params.columns) == ["name", "value"]
    assert params["name"].tolist() == list(model.parameters.index)
    # written with 10 significant digits
    read = cal.read_parameters(out / "parameters.csv")
    np.testing.assert_allclose(list(read.values()), result.parameters.to_numpy(), rtol=1e-9)

    info = json.loads((out / "fit.json").read_text())
    assert info["seed"] == 0 and info["free"] == ["r", "K"]
    assert info["statistics"]["n_targets"] == len(ROWS)
    assert info["versions"]["numpy"] == np.__version__
    assert {"aicircle", "pysd", "scipy"} <= set(info["versions"])

    ensemble = pd.read_csv(out / "ensemble.csv")
    assert list(ensemble.columns) == ["r", "K"] and len(ensemble) == len(result.ensemble) > 0
    intervals = pd.read_csv(out / "profile_intervals.csv", index_col="parameter")
    assert list(intervals.index) == ["r", "K"]
    assert {"lo95", "hi95"} <= set(intervals.columns)


def test_an_interrupted_write_leaves_the_previous_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "parameters.csv"
    target.write_text("name,value\nr,0.5\n", encoding="utf-8")

    def half_then_fail(path):
        path.write_text("name,val", encoding="utf-8")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert target.read_text(encoding="utf-8") == "name,value\nr,0.5\n"
    assert [p.name for p in tmp_path.iterdir()] == ["parameters.csv"]


@pytest.mark.slow  # two spawned processes each import aicircle and rebuild the model
def test_two_processes_give_the_same_calibration_bit_for_bit(model, synthetic, result):
    # every residual depends on its own parameter set alone, so sharing the starts and the
    # profiles' parameters among processes, and running the MCMC in one of them, cannot change a number
    shared = cal.calibrate(model, synthetic, free=["r", "K"], n_starts=3, mcmc_steps=30, profile_points=7,
                           seed=0, workers=2, vocabulary=VOCABULARY)
    np.testing.assert_array_equal(shared.fit.x, result.fit.x)
    assert shared.fit.starts == result.fit.starts
    pd.testing.assert_frame_equal(shared.profile_curves, result.profile_curves, check_exact=True)
    pd.testing.assert_frame_equal(shared.intervals, result.intervals, check_exact=True)
    pd.testing.assert_frame_equal(shared.ensemble, result.ensemble, check_exact=True)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_a_process_pool_needs_a_positive_whole_number_of_workers(model, synthetic, workers):
    problem = cal.Problem(model, read_targets(synthetic, VOCABULARY), ["r", "K"])
    with pytest.raises(ac.InvalidInput, match="workers must be a positive whole number"):
        cal.process_pool(problem, workers)

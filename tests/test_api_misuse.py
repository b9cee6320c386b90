"""Misuse of the Python API raises an AicircleError naming the argument (issue 16).

An audit of the public entry points (``ac.__all__`` and the public functions of
``calibrate``, ``sensitivity``, ``tipping``, ``observables``, and the study's
``outcomes``, ``ensemble`` and ``scenarios``): each case gives one argument a wrong type, a bad number (negative,
zero, NaN, infinite), an empty sequence, an unknown name, a wrong shape, a missing
file or a folder for a file, and asserts an :class:`aicircle.AicircleError` whose
message names the argument (or the bad name or file it got). A raw ``TypeError`` or
``KeyError`` from numpy or pandas, or a bad value silently accepted, fails the case.
"""

import math
import types

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from conftest import mdl_text
from aicircle import calibrate, observables, sensitivity, tipping
from aicircle.study import ensemble, outcomes, scenarios
from aicircle.study.observables import OBSERVABLES as VOCABULARY

NAN, INF = math.nan, math.inf

# x' = g x - Lab Spending, with one docs/design.md §3 observable (Lab Revenue, a flow).
MODEL = mdl_text("""
x = INTEG(g * x - Lab Spending, 1)
	~	$B
	~	The stock.
	|
Lab Revenue = g * x
	~	$B/Year
	~	A flow observable.
	|
Lab Spending = s * x
	~	$B/Year
	~	An outflow.
	|
g = 0.5
	~	1/Year [0.1, 1]
	~	Growth rate.
	|
s = 0.1
	~	1/Year [0, 0.5]
	~	Spending rate.
	|
""", initial_time=2020, final_time=2030, time_step=0.25, saveper=1)

TARGETS = """id,observable,start,end,aggregation,value,unit,sigma,source,quote
rev_2023,lab_revenue,2023-01-01,2023-12-31,total,2.0,$B,0.3,synthetic,a test row
rev_2024,lab_revenue,2024-01-01,2024-12-31,total,3.0,$B,0.3,synthetic,a test row
"""


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """The objects the cases misuse: a model, its targets, a calibration problem, files."""
    d = tmp_path_factory.mktemp("misuse")
    (d / "m.mdl").write_text(MODEL, encoding="utf-8")
    (d / "targets.csv").write_text(TARGETS, encoding="utf-8")
    (d / "params.csv").write_text("name,value\ng,0.4\n", encoding="utf-8")
    (d / "garbage.csv").write_text("this is not,a parameter file\n\x00\x01\n", encoding="utf-8")
    model = ac.load(d / "m.mdl")
    targets = observables.read_targets(d / "targets.csv", VOCABULARY)
    problem = calibrate.Problem(model, targets, ["g"])
    run = model.simulate()
    return types.SimpleNamespace(
        dir=d, model=model, targets=targets, problem=problem, run=run,
        times=run.index.to_numpy(), table=pd.DataFrame({"g": [0.2, 0.4]}),
        predicted=np.array([2.0, 3.0]), ensemble=pd.DataFrame({"g": [0.4, 0.5, 0.6]}))


def sim(**kw):
    return lambda w: w.model.simulate(**kw)


def batch(table=None, **kw):
    return lambda w: w.model.simulate_batch(w.table if table is None else table, **kw)


def sens(method="oat", output="x", **kw):
    return lambda w: sensitivity.sensitivity(w.model, method, output, **kw)


def thresholds(lo=0, hi=1, param="g", **kw):
    return lambda w: tipping.outcome_thresholds(w.model, param, lo, hi, **{"outcome": "x>2", **kw})


def regime(range_x=(0, 1), **kw):
    return lambda w: tipping.regime_map(w.model, "g", range_x, "s", (0, 1), **{"outcome": "x>2", **kw})


def basin(shock="g", **kw):
    return lambda w: tipping.basin_stability(w.model, shock, **{"outcome": "x>2", **kw})


def bif(lo=0, **kw):
    return lambda w: tipping.bifurcations(w.model, "g", lo, 1, **kw)


def cal(func, *args, **kw):
    return lambda w: getattr(calibrate, func)(w.model, w.targets if not args else args[0], **kw)


def mc(**kw):
    return lambda w: sensitivity.monte_carlo(w.model, **{"n": 4, "outputs": ["x"], **kw})


def predictive(params=None, **kw):
    return lambda w: ensemble.predictive_ensemble(w.model, w.targets, {} if params is None else params,
                                                w.ensemble, **kw)


# (callable of the fixture, what the message must name)
CASES = {
    # ---- ac.load ----
    "load/None": (lambda w: ac.load(None), "path must name"),
    "load/int": (lambda w: ac.load(3), "path must name"),
    "load/empty": (lambda w: ac.load(""), "path must name"),
    "load/missing": (lambda w: ac.load(w.dir / "missing.mdl"), "missing.mdl"),
    "load/folder": (lambda w: ac.load(w.dir), "not a model file: .*misuse"),
    # ---- Model.simulate ----
    "simulate/params unknown": (sim(params={"nope": 1}), "nope"),
    "simulate/params str value": (sim(params={"g": "abc"}), "'g'"),
    "simulate/params None value": (sim(params={"g": None}), "'g'"),
    "simulate/params nan": (sim(params={"g": NAN}), "'g'"),
    "simulate/params list": (sim(params=[("g", 1)]), "params"),
    "simulate/params array value": (sim(params={"g": [1, 2]}), "'g'"),
    "simulate/params stock": (sim(params={"x": 1}), "'x' is a stock"),
    "simulate/params control": (sim(params={"FINAL TIME": 1}), "time setting"),
    "simulate/params name not str": (sim(params={3: 1}), "name"),
    "simulate/solver unknown": (sim(solver="foo"), "solver"),
    "simulate/solver None": (sim(solver=None), "solver"),
    "simulate/solver int": (sim(solver=4), "solver"),
    "simulate/final_time str": (sim(final_time="soon"), "FINAL TIME"),
    "simulate/final_time nan": (sim(final_time=NAN), "FINAL TIME"),
    "simulate/final_time inf": (sim(final_time=INF), "FINAL TIME"),
    "simulate/final_time before start": (sim(final_time=2000), "FINAL TIME"),
    "simulate/time_step zero": (sim(time_step=0), "TIME STEP"),
    "simulate/time_step negative": (sim(time_step=-1), "TIME STEP"),
    "simulate/saveper zero": (sim(saveper=0), "SAVEPER"),
    "simulate/saveper list": (sim(saveper=[1, 2]), "SAVEPER"),
    "simulate/return_columns unknown": (sim(return_columns=["nope"]), "nope"),
    "simulate/return_columns int": (sim(return_columns=5), "return_columns"),
    "simulate/return_columns dict": (sim(return_columns={"x": 1}), "return_columns"),
    "simulate/return_columns empty": (sim(return_columns=[]), "return_columns"),
    "simulate/initial not a stock": (sim(initial={"g": 1}), "'g' is not a stock"),
    "simulate/initial str value": (sim(initial={"x": "a"}), "'x'"),
    "simulate/initial list": (sim(initial=[1]), "initial"),
    "simulate/rtol negative": (sim(solver="rk45", rtol=-1), "rtol"),
    "simulate/rtol str": (sim(solver="rk45", rtol="tight"), "rtol"),
    "simulate/atol nan": (sim(solver="rk45", atol=NAN), "atol"),
    "simulate/max_step zero": (sim(solver="rk45", max_step=0), "max_step"),
    "simulate/allow_nonfinite str": (sim(allow_nonfinite="no"), "allow_nonfinite"),
    # ---- Model.simulate_batch ----
    "simulate_batch/table dict": (lambda w: w.model.simulate_batch({"g": [0.1]}), "DataFrame"),
    "simulate_batch/table None": (lambda w: w.model.simulate_batch(None), "DataFrame"),
    "simulate_batch/table empty": (lambda w: w.model.simulate_batch(pd.DataFrame({"g": []})), "empty"),
    "simulate_batch/table unknown column": (batch(table=pd.DataFrame({"nope": [1.0]})), "nope"),
    "simulate_batch/table str column": (batch(table=pd.DataFrame({"g": ["a", "b"]})), "'g'"),
    "simulate_batch/table nan": (batch(table=pd.DataFrame({"g": [NAN, 0.1]})), "'g'"),
    "simulate_batch/table int column names": (batch(table=pd.DataFrame([[0.1]])), "name"),
    "simulate_batch/chunk_size zero": (batch(chunk_size=0), "chunk_size"),
    "simulate_batch/chunk_size float": (batch(chunk_size=1.5), "chunk_size"),
    "simulate_batch/chunk_size str": (batch(chunk_size="10"), "chunk_size"),
    "simulate_batch/initial wrong length": (batch(initial={"x": [1.0, 2.0, 3.0]}), "'x'"),
    "simulate_batch/solver unknown": (batch(solver="nope"), "solver"),
    "simulate_batch/return_columns unknown": (batch(return_columns=["nope"]), "nope"),
    "simulate_batch/saveper negative": (batch(saveper=-1), "SAVEPER"),
    "simulate_batch/progress str": (batch(progress="yes"), "progress"),
    # ---- other Model methods ----
    "resolve/None": (lambda w: w.model.resolve(None), "name"),
    "resolve/unknown": (lambda w: w.model.resolve("nope"), "nope"),
    "state_at/str": (lambda w: w.model.state_at("later"), "time|FINAL TIME"),
    "state_at/nan": (lambda w: w.model.state_at(NAN), "time|FINAL TIME"),
    "state_at/before start": (lambda w: w.model.state_at(2000), "FINAL TIME|time"),
    "state_at/off grid": (lambda w: w.model.state_at(2020.3), "time 2020.3"),
    "initial_state/lengths differ": (lambda w: w.model.initial_state({"g": [0.1, 0.2], "s": [0.1] * 3}),
                                     "lengths"),
    "derivative/t str": (lambda w: w.model.derivative("now", np.ones(1)), "t"),
    "derivative/y wrong shape": (lambda w: w.model.derivative(2020, np.ones(3)), "y must have shape"),
    "derivative/y str": (lambda w: w.model.derivative(2020, "abc"), "y"),
    "derivative/smooth negative": (lambda w: w.model.derivative(2020, np.ones(1), smooth=-1), "smooth"),
    "derivative/smooth str": (lambda w: w.model.derivative(2020, np.ones(1), smooth="wide"), "smooth"),
    # ---- scenarios ----
    "scenario_params/unknown": (lambda w: scenarios.scenario_params(w.model, "nope"), "nope"),
    "scenario_params/None": (lambda w: scenarios.scenario_params(w.model, None), "scenario"),
    # ---- observables ----
    "observable_id/None": (lambda w: observables.observable_id(None), "name"),
    "model_time/not a date": (lambda w: observables.model_time("yesterday"), "yesterday"),
    "model_time/None": (lambda w: observables.model_time(None), "date"),
    "model_time/int": (lambda w: observables.model_time(2024), "date"),
    "expected_unit/unknown observable": (lambda w: observables.expected_unit("nope", "total", VOCABULARY), "nope"),
    "expected_unit/unknown aggregation": (lambda w: observables.expected_unit("lab_revenue", "sum", VOCABULARY), "sum"),
    "read_targets/missing": (lambda w: observables.read_targets(w.dir / "missing.csv", VOCABULARY), "missing.csv"),
    "read_targets/folder": (lambda w: observables.read_targets(w.dir, VOCABULARY), "folder|directory"),
    "read_targets/None": (lambda w: observables.read_targets(None, VOCABULARY), "path|targets"),
    "index_at/nan": (lambda w: observables.index_at(w.times, NAN), "nan|time"),
    "index_at/outside": (lambda w: observables.index_at(w.times, 3000), "3000"),
    "windows_extent/not targets": (lambda w: observables.windows_extent(pd.DataFrame({"a": [1]})), "targets"),
    "observe/unknown observable": (lambda w: observables.observe(w.targets, w.times, {"x": w.run["x"]}),
                                   "lab_revenue"),
    "observe/times wrong shape": (lambda w: observables.observe(w.targets, w.times[:3],
                                                                {"lab_revenue": w.run["Lab Revenue"]}),
                                  "time|shape"),
    "residuals/wrong length": (lambda w: observables.residuals(w.targets, np.ones(5)), "predicted"),
    "errors/str": (lambda w: observables.errors(w.targets, "high"), "predicted"),
    "payoff/wrong length": (lambda w: observables.payoff(w.targets, np.ones(1)), "predicted"),
    # ---- calibrate ----
    "Problem/free unknown": (lambda w: calibrate.Problem(w.model, w.targets, ["nope"]), "nope"),
    "Problem/free str": (lambda w: calibrate.Problem(w.model, w.targets, "g"), "free"),
    "Problem/free without range": (lambda w: calibrate.Problem(w.model, w.targets, ["Lab Revenue"]),
                                   "Lab Revenue"),
    "Problem/targets missing": (lambda w: calibrate.Problem(w.model, str(w.dir / "missing.csv"), ["g"],
                                                                              vocabulary=VOCABULARY),
                                "missing.csv"),
    "Problem/targets list": (lambda w: calibrate.Problem(w.model, [1, 2], ["g"]), "targets"),
    "Problem/fixed list": (lambda w: calibrate.Problem(w.model, w.targets, ["g"], fixed=[1]), "fixed"),
    "Problem.predict/wrong width": (lambda w: w.problem.predict(np.ones((2, 3))), "X|shape|columns"),
    "Problem.from_params/missing": (lambda w: w.problem.from_params({"s": 1}), "'g'"),
    "screen/k_max zero": (lambda w: calibrate.screen(w.model, w.targets, k_max=0), "k_max"),
    "screen/candidates unknown": (cal("screen", candidates=["nope"]), "nope"),
    "fit/n_starts zero": (lambda w: calibrate.fit(w.problem, n_starts=0), "n_starts"),
    "fit/seed negative": (lambda w: calibrate.fit(w.problem, seed=-1), "seed"),
    "identifiability/names mismatch": (lambda w: calibrate.identifiability(np.ones((3, 2)), ["a"]), "names"),
    "identifiability/1-d": (lambda w: calibrate.identifiability(np.ones(3), ["a"]), "jacobian"),
    "calibrate/targets missing": (lambda w: calibrate.calibrate(w.model, w.dir / "missing.csv",
                                                                                vocabulary=VOCABULARY),
                                  "missing.csv"),
    "calibrate/targets folder": (lambda w: calibrate.calibrate(w.model, w.dir, vocabulary=VOCABULARY), "folder|directory"),
    "calibrate/free unknown": (lambda w: calibrate.calibrate(w.model, w.targets, free=["nope"]), "nope"),
    "calibrate/n_starts negative": (cal("calibrate", n_starts=-1), "n_starts"),
    "calibrate/seed str": (lambda w: calibrate.calibrate(w.model, w.targets, seed="x"), "seed"),
    "calibrate/targets file without vocabulary": (lambda w: calibrate.calibrate(w.model, w.dir / "targets.csv"),
                                                  "vocabulary"),
    "calibrate/actuals wrong length": (lambda w: calibrate.calibrate(w.model, w.targets, actuals=[True]),
                                       "actuals"),
    "calibrate/switches str": (lambda w: calibrate.calibrate(w.model, w.targets, switches="g"), "switches"),
    "validate/targets missing": (lambda w: calibrate.validate(w.model, w.dir / "missing.csv", vocabulary=VOCABULARY), "missing.csv"),
    "validate/params list": (lambda w: calibrate.validate(w.model, w.targets, params=[0.4]), "params"),
    "validate/params unknown": (lambda w: calibrate.validate(w.model, w.targets, params={"nope": 1}), "nope"),
    "read_parameters/missing": (lambda w: calibrate.read_parameters(w.dir / "missing.csv"), "missing.csv"),
    "read_parameters/folder": (lambda w: calibrate.read_parameters(w.dir), "folder|directory"),
    "read_parameters/garbage": (lambda w: calibrate.read_parameters(w.dir / "garbage.csv"), "garbage.csv"),
    "read_parameters/None": (lambda w: calibrate.read_parameters(None), "path"),
    # ---- sensitivity ----
    "sensitivity/method unknown": (sens("fast", "x"), "method"),
    "sensitivity/method None": (sens(None, "x"), "method"),
    "sensitivity/output unknown": (sens("oat", "nope"), "nope"),
    "sensitivity/output None": (sens("oat", None), "name"),
    "sensitivity/n zero": (sens("sobol", "x", n=0), "n"),
    "sensitivity/n str": (sens("sobol", "x", n="64"), "n"),
    "sensitivity/n float": (sens("morris", "x", n=8.5), "n"),
    "sensitivity/n not a power of 2": (sens("sobol", "x", n=48), "power of 2"),
    "sensitivity/at str": (sens("oat", "x", at="end"), "at"),
    "sensitivity/at nan": (sens("oat", "x", at=NAN), "at"),
    "sensitivity/at outside": (sens("oat", "x", at=3000), "at"),
    "sensitivity/bounds list": (sens("oat", "x", bounds=[("g", 0, 1)]),
                                "bounds"),
    "sensitivity/bounds scalar": (sens("oat", "x", bounds={"g": 5}), "'g'"),
    "sensitivity/bounds str": (sens("oat", "x", bounds={"g": ("a", 1)}),
                               "'g'"),
    "sensitivity/bounds reversed": (sens("oat", "x", bounds={"g": (1, 0)}),
                                    "'g'"),
    "sensitivity/bounds unknown": (sens("oat", "x", bounds={"nope": (0, 1)}),
                                   "nope"),
    "sensitivity/seed negative": (sens("sobol", "x", n=16, seed=-1), "seed"),
    "sensitivity/seed str": (sens("morris", "x", n=4, seed="a"), "seed"),
    "sensitivity/chunk_size zero": (sens("oat", "x", chunk_size=0),
                                    "chunk_size"),
    "sensitivity/params list": (sens("oat", "x", params=[1]), "params"),
    "sensitivity/params str value": (sens("oat", "x", params={"s": "a"}),
                                     "'s'"),
    "sensitivities/outputs empty": (lambda w: sensitivity.sensitivities(w.model, "oat", []), "outputs"),
    "sensitivities/outputs None": (lambda w: sensitivity.sensitivities(w.model, "oat", None), "outputs"),
    "parameter_bounds/switches str": (lambda w: sensitivity.parameter_bounds(w.model, switches="g"), "switches"),
    "parameter_bounds/no ranges": (lambda w: sensitivity.parameter_bounds(w.model, {"g": (NAN, 1)}), "'g'"),
    "run_ensemble/table dict": (lambda w: sensitivity.run_ensemble(w.model, {"g": [1]}, ["x"]), "table"),
    "run_ensemble/outputs empty": (lambda w: sensitivity.run_ensemble(w.model, w.table, []), "outputs"),
    "run_ensemble/chunk_size str": (
        lambda w: sensitivity.run_ensemble(w.model, w.table, ["x"], chunk_size="9"),
                                    "chunk_size"),
    "monte_carlo/n one": (lambda w: sensitivity.monte_carlo(w.model, n=1, outputs=["x"]), "n"),
    "monte_carlo/n str": (lambda w: sensitivity.monte_carlo(w.model, n="100", outputs=["x"]), "n"),
    "monte_carlo/outputs None": (lambda w: sensitivity.monte_carlo(w.model, n=4, outputs=None), "output"),
    "monte_carlo/outputs unknown": (mc(outputs=["nope"]), "nope"),
    "monte_carlo/ensemble list": (mc(ensemble=[1]), "ensemble"),
    "monte_carlo/ensemble empty": (mc(ensemble=pd.DataFrame()), "ensemble"),
    "monte_carlo/classifier str": (mc(classifier="economic"), "classifier"),
    "sample_parameters/n negative": (lambda w: sensitivity.sample_parameters(w.model, -1), "n"),
    "bands_of/unknown output": (lambda w: sensitivity.bands_of({"x": np.ones((2, 3))}, np.arange(3), ["y"]),
                                "'y'"),
    "p_bust_by_year/str": (lambda w: sensitivity.p_bust_by_year("soon", [2030]), "first_bust"),
    # ---- tipping ----
    "parse_outcome/no operator": (lambda w: tipping.parse_outcome("x"), "outcome"),
    "parse_outcome/not a number": (lambda w: tipping.parse_outcome("x<abc"), "abc"),
    "parse_outcome/inf": (lambda w: tipping.parse_outcome("x<inf"), "finite"),
    "parse_outcome/unknown variable": (lambda w: tipping.parse_outcome("nope<1", w.model), "nope"),
    "outcome_thresholds/lo str": (thresholds("a", 1), "lo"),
    "outcome_thresholds/lo nan": (thresholds(NAN, 1),
                                  "lo|range"),
    "outcome_thresholds/lo = hi": (thresholds(1, 1), "LO"),
    "outcome_thresholds/param unknown": (thresholds(param="nope"), "nope"),
    "outcome_thresholds/n_grid one": (thresholds(n_grid=1), "n_grid"),
    "outcome_thresholds/n_grid str": (thresholds(n_grid="9"), "n_grid"),
    "outcome_thresholds/tol zero": (thresholds(tol=0), "tol"),
    "outcome_thresholds/horizons str": (thresholds(horizons=["later"]), "horizons"),
    "outcome_thresholds/horizons empty": (thresholds(horizons=[]), "horizons"),
    "outcome_thresholds/horizon outside": (thresholds(horizons=[1900]), "1900|horizon"),
    "outcome_thresholds/outcome int": (thresholds(outcome=5), "outcome"),
    "outcome_thresholds/classifier unknown": (thresholds(outcome=None, classifier="nope"), "nope"),
    "outcome_thresholds/classifier int": (thresholds(outcome=None, classifier=5), "classifier"),
    "outcome_thresholds/params list": (thresholds(params=[1]), "params"),
    "regime_map/n int": (regime(n=5), "n"),
    "regime_map/n one": (regime(n=(1, 5)), "n"),
    "regime_map/range one number": (regime(range_x=(0,)), "range_x"),
    "regime_map/horizon str": (regime(horizon="end"), "horizon"),
    "basin_stability/n one": (basin(n=1), "n"),
    "basin_stability/low above high": (basin(low=1, high=0), "low"),
    "basin_stability/seed negative": (basin(seed=-1),
                                      "seed"),
    "basin_stability/shock unknown": (basin(shock="nope"), "nope"),
    "basin_stability/sizes str": (basin(sizes=["a"]),
                                  "sizes"),
    "time_to_bust/table None": (lambda w: tipping.time_to_bust(w.model, None), "table"),
    "time_to_bust/no classifier": (lambda w: tipping.time_to_bust(w.model, w.table), "classifier"),
    "bifurcations/lo inf": (bif(lo=-INF), "lo|range"),
    "bifurcations/free unknown": (bif(free=["nope"]), "nope"),
    "bifurcations/free not a state": (bif(free=["g"]), "'g'"),
    "bifurcations/n_starts negative": (bif(n_starts=-1),
                                       "n_starts"),
    "bifurcations/box one number": (bif(box=5), "box"),
    "bifurcations/state unknown": (bif(state={"nope": 1}), "nope"),
    "bifurcations/state wrong length": (bif(state=[1, 2, 3]),
                                        "state"),
    "bifurcations/guesses wrong shape": (bif(guesses=[[1, 2, 3], [4, 5, 6]]), "guesses"),
    "leading_eigenvalues/times str": (lambda w: tipping.leading_eigenvalues(w.model, times=["x"]), "times"),
    "tipping/param unknown": (lambda w: tipping.tipping(w.model, "nope", 0, 1), "nope"),
    "tipping/range reversed": (lambda w: tipping.tipping(w.model, "g", 1, 0), "LO"),
    # ---- the study's outcomes and ensemble ----
    "classifier/unknown": (lambda w: outcomes.classifier("nope"), "nope"),
    "wilson_interval/k above n": (lambda w: ensemble.wilson_interval(5, 2), "k"),
    "wilson_interval/k negative": (lambda w: ensemble.wilson_interval(-1, 10), "k"),
    "wilson_interval/z negative": (lambda w: ensemble.wilson_interval(1, 10, z=-1), "z"),
    "predictive_ensemble/ensemble None": (lambda w: ensemble.predictive_ensemble(w.model, w.targets, {}, None),
                                          "ensemble"),
    "predictive_ensemble/n zero": (predictive(n=0), "n"),
    "predictive_ensemble/quantile two": (predictive(quantile=2), "quantile"),
    "predictive_ensemble/params list": (predictive(params=[1]), "params"),
    "bust_probability/table None": (lambda w: ensemble.bust_probability(w.model, None), "table"),
    "with_fixed/table None": (lambda w: ensemble.with_fixed(None, {"g": 1}), "table"),
    "with_fixed/fixed list": (lambda w: ensemble.with_fixed(w.table, [1]), "fixed"),
    "depends_on/busted wrong length": (lambda w: ensemble.depends_on(w.table, [True]), "busted"),
}


@pytest.mark.parametrize("call, needle", CASES.values(), ids=CASES.keys())
def test_misuse_raises_an_aicircle_error_naming_the_argument(w, call, needle):
    with pytest.raises(ac.AicircleError, match=needle):
        call(w)


def test_sample_posterior_refuses_a_seed_default_rng_would_reject(w):
    problem = calibrate.Problem(w.model, w.targets, ["g"])
    best = calibrate.fit(problem, n_starts=1, max_nfev=2, polish_nfev=0)
    with pytest.raises(ac.InvalidInput, match="seed must be a whole number"):
        calibrate.sample_posterior(problem, best, n_steps=4, burn=1, seed=-1)

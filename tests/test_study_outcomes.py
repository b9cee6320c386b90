"""The capital-circle study layer: its outcome definitions and its predictive ensemble."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from aicircle import tipping
from aicircle.errors import InvalidInput
from aicircle.study import ensemble, outcomes
from conftest import mdl_text

# The runs below are synthetic: piecewise-linear through the knots given, saved quarterly.
TIMES = np.arange(2020.0, 2035.0 + 1e-9, 0.25)


def path(*knots):
    """Values at TIMES, linear between (time, value) knots and flat beyond them."""
    t, v = zip(*knots)
    return np.interp(TIMES, t, v)


def flat(value):
    return path((2020, value), (2035, value))


# --------------------------------------------------------------------------- the economic definition
#
# Variables, in ECONOMIC.variables order: Return on AI Capital, Cost of Capital, Total AI Capex,
# AI Utilisation, AI Write Offs, End Use AI Revenue.

RISING = path((2020, 100), (2035, 400))
PEAK_2029 = path((2020, 100), (2029, 500), (2035, 200))  # a build-out that ends
LOW_RETURN, COST = flat(-0.03), flat(0.08)


def economic(ret=LOW_RETURN, cost=COST, capex=RISING, util=flat(1.0), imp=flat(0.0), revenue=RISING):
    return [np.asarray(v)[None] for v in (ret, cost, capex, util, imp, revenue)]


ECONOMIC_CASES = {
    "not a bust: a build-out ends while compute is scarce (utilisation stays 1)": (
        economic(capex=PEAK_2029), 2035, outcomes.SOFT),
    "bust: returns below the cost of capital, capex and utilisation falling": (
        economic(capex=PEAK_2029, util=path((2020, 1), (2030, 1), (2035, 0.6))), 2035, outcomes.BUST),
    "not a bust: capex and utilisation falling but returns above the cost of capital": (
        economic(ret=flat(0.12), capex=PEAK_2029, util=path((2020, 1), (2030, 1), (2035, 0.6))), 2035,
        outcomes.SOFT),
    "bust: cancelled contracts written off above a tenth of AI capex, utilisation steady": (
        economic(imp=path((2020, 0), (2033, 0), (2034, 60), (2035, 60))), 2035, outcomes.BUST),
    "not a bust: write-offs below a tenth of AI capex": (
        economic(imp=flat(20.0)), 2035, outcomes.BOOM),
    "boom: capex and end-use revenue both growing, returns still below the cost of capital": (
        economic(), 2035, outcomes.BOOM),
    "not absorbing: a bust around 2029-30 followed by a recovery is a boom in 2035": (
        economic(capex=path((2020, 100), (2028, 400), (2030, 200), (2035, 600)),
                 util=path((2020, 1), (2028, 1), (2030, 0.7), (2035, 1))), 2035, outcomes.BOOM),
}


@pytest.mark.parametrize("case", ECONOMIC_CASES)
def test_economic_classifier_labels_synthetic_run(case):
    values, horizon, expected = ECONOMIC_CASES[case]
    assert outcomes.ECONOMIC.labels(TIMES, values, horizon).tolist() == [expected]


@pytest.mark.parametrize("case, cause", [
    ("bust: returns below the cost of capital, capex and utilisation falling", "idle capital"),
    ("bust: cancelled contracts written off above a tenth of AI capex, utilisation steady", "write-offs"),
])
def test_economic_bust_names_its_cause(case, cause):
    values, horizon, _ = ECONOMIC_CASES[case]
    causes = outcomes.ECONOMIC.causes(TIMES, values)
    at = TIMES == horizon
    assert causes[cause][0, at].all()
    other, = set(causes) - {cause}
    assert not causes[other][0].any()
    np.testing.assert_array_equal(causes["idle capital"] | causes["write-offs"], outcomes.ECONOMIC.flags(TIMES, values))


def test_economic_bust_is_dated_by_its_window_and_ends_when_the_recovery_starts():
    values, _, _ = ECONOMIC_CASES["not absorbing: a bust around 2029-30 followed by a recovery is a boom in 2035"]
    flags = outcomes.ECONOMIC.flags(TIMES, values)[0]
    # capex falls from 400 (2028) to 200 (2030) after rising 37.5 a year: it is below its level
    # of a year before from t = 2028.27 (first saved: 2028.5) until the recovery (80 a year from
    # 2030) lifts it above that level at t = 2030.56; utilisation falls over the same years
    assert flags[TIMES == 2028.5].all() and flags[TIMES == 2030.5].all()
    assert not flags[TIMES == 2028.25].any() and not flags[TIMES >= 2030.75].any()
    assert outcomes.ECONOMIC.first_bust(TIMES, values)[0] == 2028.5
    assert np.isnan(outcomes.ECONOMIC.first_bust(TIMES, values, start=2031)[0])


def test_economic_classifier_labels_each_run_of_a_batch_in_order():
    names = list(ECONOMIC_CASES)
    stacked = [np.vstack([ECONOMIC_CASES[n][0][i] for n in names]) for i in range(6)]
    labels = outcomes.ECONOMIC.labels(TIMES, stacked, 2035)
    assert labels.tolist() == [ECONOMIC_CASES[n][2] for n in names]


# --------------------------------------------------------------------------- the first (confidence) definition
#
# A run is a bust if, before the horizon, Investor Confidence falls below 0.2 or Hyperscaler
# Capex falls below half of its running peak (absorbing); a boom if neither happens and capex
# at the horizon is above its 2025 level; otherwise a soft landing.

STEADY_CONFIDENCE = flat(0.6)
RISING_CAPEX = path((2020, 100), (2035, 300))

CASES = {
    "boom: confidence steady, capex rising": (STEADY_CONFIDENCE, RISING_CAPEX, 2035, outcomes.BOOM),
    "bust: confidence below 0.2 for one quarter, then recovering": (
        path((2020, 0.6), (2029.75, 0.6), (2030, 0.19), (2030.25, 0.9)), RISING_CAPEX, 2035, outcomes.BUST),
    "not a bust: confidence touching 0.2 exactly (the floor is strict)": (
        path((2020, 0.6), (2030, 0.2), (2031, 0.6)), RISING_CAPEX, 2035, outcomes.BOOM),
    "bust: capex below half its running peak, then above it again": (
        STEADY_CONFIDENCE, path((2020, 100), (2028, 400), (2030, 199), (2035, 500)), 2035, outcomes.BUST),
    "not a bust: capex down to exactly half its peak": (
        STEADY_CONFIDENCE, path((2020, 100), (2028, 400), (2030, 200), (2035, 500)), 2035, outcomes.BOOM),
    "bust: capex halves from its initial level, the first running peak": (
        STEADY_CONFIDENCE, path((2020, 100), (2021, 45), (2035, 300)), 2035, outcomes.BUST),
    "soft landing: capex falls below its 2025 level but not below half its peak": (
        STEADY_CONFIDENCE, path((2020, 100), (2028, 300), (2035, 160)), 2035, outcomes.SOFT),
    "not yet a bust: the confidence collapse comes after the horizon": (
        path((2020, 0.6), (2032, 0.6), (2033, 0.1)), RISING_CAPEX, 2030, outcomes.BOOM),
    "soft landing: capex at the horizon equal to its 2025 level": (
        STEADY_CONFIDENCE, path((2020, 100), (2025, 200), (2030, 250), (2035, 200)), 2035, outcomes.SOFT),
}


@pytest.mark.parametrize("case", CASES)
def test_confidence_classifier_labels_synthetic_run(case):
    confidence, capex, horizon, expected = CASES[case]
    assert outcomes.CONFIDENCE.labels(TIMES, [confidence[None], capex[None]], horizon).tolist() == [expected]


def test_confidence_flags_stay_raised_from_the_first_bust_event():
    confidence = path((2020, 0.6), (2029.75, 0.6), (2030, 0.19), (2030.25, 0.9))
    flags = outcomes.CONFIDENCE.flags(TIMES, [confidence[None], RISING_CAPEX[None]])[0]
    np.testing.assert_array_equal(flags, TIMES >= 2030)


@pytest.mark.parametrize("classifier", [outcomes.ECONOMIC, outcomes.CONFIDENCE], ids=lambda c: c.name)
def test_the_studys_classifiers_fill_the_toolkits_outcome_protocol(classifier):
    assert isinstance(classifier, tipping.Classifier)


@pytest.mark.parametrize("classifier", [outcomes.ECONOMIC, outcomes.CONFIDENCE], ids=lambda c: c.name)
def test_classifier_rejects_a_horizon_outside_the_run(classifier):
    values = economic() if classifier is outcomes.ECONOMIC else [STEADY_CONFIDENCE[None], RISING_CAPEX[None]]
    with pytest.raises(InvalidInput, match="horizon 2040 is outside the run"):
        classifier.labels(TIMES, values, 2040)


def test_classifier_by_name_and_unknown_name():
    assert outcomes.classifier("Economic") is outcomes.ECONOMIC
    with pytest.raises(InvalidInput, match="unknown classifier 'hunch'; known: economic, confidence"):
        outcomes.classifier("hunch")


# --------------------------------------------------------------------------- probabilities and drivers


@pytest.mark.parametrize(("k", "n", "expected"), [
    # Wilson (1927) score interval at z = 1.96, e.g. Brown, Cai & DasGupta (2001), table values
    (0, 10, (0.0, 0.2775)),
    (5, 10, (0.2366, 0.7634)),
    (10, 10, (0.7225, 1.0)),
])
def test_wilson_interval_matches_published_values(k, n, expected):
    lo, hi = ensemble.wilson_interval(k, n)
    assert lo == pytest.approx(expected[0], abs=1e-4)
    assert hi == pytest.approx(expected[1], abs=1e-4)


def test_depends_on_ranks_the_parameter_that_decides_the_outcome_first():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"noise": rng.uniform(size=600), "decider": rng.uniform(size=600)})
    busted = table["decider"].to_numpy() > 0.5
    out = ensemble.depends_on(table, busted)
    assert out.index[0] == "decider"
    assert out.loc["decider", "p_low"] == 0.0 and out.loc["decider", "p_high"] == 1.0
    assert abs(out.loc["noise", "rank_corr"]) < 0.15  # 600 independent draws: |r| ~ 0.04
    assert math.isclose(out.loc["decider", "difference"], 1.0)


# --------------------------------------------------------------------------- the predictive ensemble
#
# A toy circle: revenue grows at g (which the targets inform and the "calibration" pins down),
# starts at h (uncalibrated, but the targets pin it too) and confidence decays at `future`
# from 2026 on (which no target sees). Confidence 0.6 e^(-future (t - 2026)) falls below 0.2
# when future (t - 2026) > ln 3: by 2030 for future > ln3/4 = 0.275, by 2035 for
# future > ln3/9 = 0.122. Drawn uniformly in [0, 1], P(bust by 2030) = 0.725, by 2035 0.878.

TOY = mdl_text("""
g = 0.3 ~ 1/Year [0.1,0.5] ~ revenue growth, seen by the targets |
h = 1 ~ $B/Year [0.5,2] ~ initial revenue, seen by the targets |
future = 0 ~ 1/Year [0,1] ~ decay of confidence after the data, seen by no target |
Lab Revenue = INTEG(g*Lab Revenue, h) ~ $B/Year ~ revenue |
Investor Confidence = INTEG(-future*STEP(1, 2026)*Investor Confidence, 0.6) ~ Dmnl ~ confidence |
Hyperscaler Capex = 100 ~ $B/Year ~ capex, constant |
""", initial_time=2020, final_time=2036, time_step=0.0625, saveper=0.25)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    import aicircle as ac
    from aicircle.observables import read_targets
    from aicircle.study.observables import OBSERVABLES

    folder = tmp_path_factory.mktemp("toy")
    (folder / "toy.mdl").write_text(TOY)
    model = ac.load(folder / "toy.mdl")
    run = model.simulate(saveper=0.0625)
    rows = ["id,observable,start,end,aggregation,value,unit,sigma,source,quote"]
    for year in range(2020, 2025):  # the model's own revenue at each year's end: synthetic data
        rows.append(f"rev{year},lab_revenue,{year}-12-31,{year}-12-31,level,"
                    f"{float(run.loc[year + 1.0, 'Lab Revenue']):.10g},$B/Year,0.05,synthetic,synthetic")
    (folder / "targets.csv").write_text("\n".join(rows) + "\n")
    posterior = pd.DataFrame({"g": np.random.default_rng(1).normal(0.3, 0.002, 200)})
    return model, read_targets(folder / "targets.csv", OBSERVABLES), posterior


@pytest.fixture(scope="module")
def toy_ensemble(toy):
    model, targets, posterior = toy
    return ensemble.predictive_ensemble(model, targets, {}, posterior, n=3000, seed=0)


def test_predictive_ensemble_draws_an_unseen_parameter_over_its_whole_range(toy_ensemble):
    draws, info = toy_ensemble
    assert info["varied"] == ["h", "future"]
    r = info["ranges"]
    assert (r.loc["future", "draw_min"], r.loc["future", "draw_max"]) == (0.0, 1.0)
    kept = draws[draws["kept"]]
    assert kept["future"].min() < 0.01 and kept["future"].max() > 0.99


def test_predictive_ensemble_narrows_a_parameter_the_data_pin_down(toy_ensemble):
    draws, info = toy_ensemble
    r = info["ranges"]
    # h moves every target by the same log amount: sigma 0.05 over 5 targets allows about
    # +-0.05 sqrt(3.84/5) ~ 4.4% alone; the 9-point grid over [0.5, 2] brackets that to one step
    assert 0.5 < r.loc["h", "draw_min"] < 1.0 < r.loc["h", "draw_max"] < 2.0
    assert (r.loc["h", "draw_max"] - r.loc["h", "draw_min"]) <= 2 * (2.0 - 0.5) / 8 + 1e-9
    # every draw kept fits as well as the posterior's 95th percentile
    assert (draws.loc[draws["kept"], "chi2"] <= info["threshold"]).all()
    assert draws["kept"].mean() > 0.2


def test_bust_probability_of_the_toy_matches_its_analytic_value(toy, toy_ensemble):
    model, _, _ = toy
    draws, info = toy_ensemble
    kept = draws[draws["kept"]].drop(columns=["chi2", "kept"]).reset_index(drop=True)
    summary, runs = ensemble.bust_probability(model, kept, fixed=info["fixed"], classifier=outcomes.CONFIDENCE,
                                            horizons=(2030.0, 2035.0), start=2026.0)
    expected = {2030: 1 - math.log(3) / 4, 2035: 1 - math.log(3) / 9}
    for year, p in expected.items():
        # binomial sd sqrt(p(1-p)/n) < 0.015 for n > 800; Euler at dt 1/16 decays a little faster
        # and busts are read at quarterly saves: 0.05 covers both
        assert summary.loc[year, "p_bust_by"] == pytest.approx(p, abs=0.05)
        assert summary.loc[year, "lo"] < summary.loc[year, "p_bust_by"] < summary.loc[year, "hi"]
    assert runs["first_bust"].dropna().min() >= 2026.0

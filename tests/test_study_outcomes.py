"""The capital-circle study layer: its outcome definitions and its predictive ensemble."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aicircle import tipping
from aicircle.errors import InvalidInput
from aicircle.study import ensemble, outcomes
from conftest import mdl_text

ROOT = Path(__file__).resolve().parent.parent

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
# A run is a bust if, between the forecast start (2025.75) and the horizon, Investor Confidence
# falls below 0.2 or Hyperscaler Capex falls below half of its running peak (absorbing); a boom if
# neither happens and capex at the horizon is above its 2025 level; otherwise a soft landing.

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
    "bust: capex halves from its running peak after the forecast start": (
        STEADY_CONFIDENCE, path((2020, 100), (2026, 300), (2027, 140), (2035, 300)), 2035, outcomes.BUST),
    "not a bust: capex halved before the forecast start (history, not a forecast)": (
        STEADY_CONFIDENCE, path((2020, 100), (2021, 45), (2035, 300)), 2035, outcomes.BOOM),
    "not a bust: the 2020 confidence dip below 0.2 (history, not a forecast)": (
        path((2020, 0.3), (2020.5, 0.1), (2022, 0.6)), RISING_CAPEX, 2035, outcomes.BOOM),
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


def test_first_definition_ignores_the_2020_dip_and_counts_the_same_dip_after_the_forecast_start():
    # the artefact of issue 23: the calibrated history passes below 0.2 in 2020, which made every
    # run a bust "by 2026"; the same dip after the data's cut-off is a bust from its first quarter
    dip_2020 = path((2020, 0.3), (2020.25, 0.15), (2020.5, 0.15), (2021, 0.6))
    dip_2030 = path((2020, 0.6), (2030, 0.6), (2030.25, 0.15), (2030.5, 0.15), (2031, 0.6))
    confidence = np.vstack([dip_2020, dip_2030])
    capex = np.vstack([RISING_CAPEX, RISING_CAPEX])
    first = outcomes.CONFIDENCE.first_bust(TIMES, [confidence, capex])
    assert np.isnan(first[0]) and first[1] == 2030.25
    assert not outcomes.CONFIDENCE.flags(TIMES, [confidence, capex])[0].any()


@pytest.mark.parametrize("classifier", [outcomes.CAPITAL_LOSS, outcomes.ECONOMIC, outcomes.CONFIDENCE],
                         ids=lambda c: c.name)
def test_the_studys_classifiers_fill_the_toolkits_outcome_protocol(classifier):
    assert isinstance(classifier, tipping.Classifier)


@pytest.mark.parametrize("classifier", [outcomes.ECONOMIC, outcomes.CONFIDENCE], ids=lambda c: c.name)
def test_classifier_rejects_a_horizon_outside_the_run(classifier):
    values = economic() if classifier is outcomes.ECONOMIC else [STEADY_CONFIDENCE[None], RISING_CAPEX[None]]
    with pytest.raises(InvalidInput, match="horizon 2040 is outside the run"):
        classifier.labels(TIMES, values, 2040)


def test_classifier_by_name_and_unknown_name():
    assert outcomes.classifier("Economic") is outcomes.ECONOMIC
    assert outcomes.classifier("capital-loss") is outcomes.classifier(" Capital  Loss") is outcomes.CAPITAL_LOSS
    with pytest.raises(InvalidInput, match="unknown classifier 'hunch'; known: capital loss, economic, confidence"):
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


# --------------------------------------------------------------------------- outcomes in money
#
# A constructed circle, saved quarterly: 10 GW installed at $50B per GW over a 5-year life (its
# depreciation $100B a year), used at the target utilisation 0.8 at the reference price: it earns
# its keep, so nothing is lost. Each test changes what it names.

def circle(**changes):
    base = {
        "Total AI Capacity GW": flat(10.0), "AI Utilisation": flat(0.8), "Compute Price per GW": flat(10.0),
        "Reference Compute Price": flat(10.0), "Target Utilisation": flat(0.8), "Cost per GW": flat(50.0),
        "Capacity Life": flat(5.0), "AI Capital Stock": flat(1000.0), "Builder Defaults": flat(0.0),
        "Payables Written Off": flat(0.0), "Commitment Impairments": flat(0.0),
        "Restructuring Contract Cuts": flat(0.0), "Lab Desired Outflows": flat(100.0),
        "Lab Payables to Builders": flat(0.0), "Payables Repayment Time": flat(0.5),
        "Lab Payment Fraction": flat(1.0), "Lab Excess Payables": flat(0.0), "Total AI Capex": RISING,
        "Lab Valuation": RISING, "End Use AI Revenue": RISING,
    }
    assert set(base) == set(outcomes.METRIC_VARIABLES)
    base.update(changes)
    return {k: np.asarray(v, float)[None] for k, v in base.items()}


# Half of the capacity's keep lost over 2028-2030, with a quarter's ramp at each end: the flow is
# 50 a year for 1.75 years plus two ramps of 0.25 * 25, exactly 100 by the trapezoid rule.
HALF = path((2020, 1.0), (2028, 1.0), (2028.25, 0.5), (2030, 0.5), (2030.25, 1.0))
PULSE_50 = path((2020, 0.0), (2028, 0.0), (2028.25, 50.0), (2030, 50.0), (2030.25, 0.0))


@pytest.mark.parametrize("changes", [
    {"AI Utilisation": 0.8 * HALF},  # half the capacity idle at the market price
    {"Compute Price per GW": 10.0 * HALF},  # all of it re-let at half its price
], ids=["idle", "re-let below its cost"])
def test_stranded_capacity_loses_the_share_of_its_depreciation_it_does_not_earn(changes):
    met = outcomes.outcome_metrics(TIMES, circle(**changes), 2035).iloc[0]
    assert met["stranded capital"] == pytest.approx(100.0, rel=1e-12)
    assert met["realised loss"] == pytest.approx(100.0, rel=1e-12)
    assert met["lost revenue"] == 0.0
    assert met["loss share"] == pytest.approx(0.1, rel=1e-12)  # of the 1000 of AI capital


def test_capacity_idle_over_its_whole_life_loses_its_whole_cost():
    # idle from the forecast start for 5 years (its life): 10 GW at $50B
    met = outcomes.outcome_metrics(TIMES, circle(**{"AI Utilisation": flat(0.0)}), outcomes.FORECAST_START + 5)
    assert met["stranded capital"].iloc[0] == pytest.approx(10 * 50.0, rel=1e-12)


def test_cancelled_backlog_is_lost_revenue_not_lost_capital():
    run = circle(**{"Commitment Impairments": PULSE_50, "Restructuring Contract Cuts": PULSE_50 / 2})
    met = outcomes.outcome_metrics(TIMES, run, 2035).iloc[0]
    assert met["realised loss"] == 0.0 and not met["capital bust"]
    assert met["cancelled backlog"] == pytest.approx(100.0, rel=1e-12)
    assert met["backlog cut in restructuring"] == pytest.approx(50.0, rel=1e-12)
    assert met["lost revenue"] == pytest.approx(150.0, rel=1e-12)


@pytest.mark.parametrize("flow, part", [("Builder Defaults", "builder defaults"),
                                        ("Payables Written Off", "bills written off")])
def test_defaults_and_bills_written_off_are_realised_losses(flow, part):
    met = outcomes.outcome_metrics(TIMES, circle(**{flow: PULSE_50}), 2035).iloc[0]
    assert met[part] == pytest.approx(100.0, rel=1e-12)
    assert met["realised loss"] == pytest.approx(100.0, rel=1e-12)
    assert met["lost revenue"] == 0.0


def test_losses_before_the_forecast_start_are_history_and_do_not_count():
    early = path((2020, 0.0), (2021, 50.0), (2023, 50.0), (2024, 0.0))
    run = circle(**{"Builder Defaults": early, "AI Utilisation": 0.8 - early / 100,
                    "Lab Excess Payables": early, "Total AI Capex": path((2020, 400), (2022, 100), (2035, 300))})
    met = outcomes.outcome_metrics(TIMES, run, 2035).iloc[0]
    assert met["realised loss"] == 0.0 and met["AI capex fall"] == 0.0
    assert not met["lab fails"] and np.isnan(met["lab fails at"])


def test_the_lab_fails_when_its_overdue_bills_pass_the_builders_limit():
    run = circle(**{"Lab Excess Payables": path((2020, 0), (2031, 0), (2031.25, 5), (2035, 5))})
    by_2030, by_2035 = (outcomes.outcome_metrics(TIMES, run, h).iloc[0] for h in (2030, 2035))
    assert not by_2030["lab fails"] and np.isnan(by_2030["lab fails at"])
    assert by_2035["lab fails"] and by_2035["lab fails at"] == 2031.25


@pytest.mark.parametrize("payables, expected", [
    (0.0, 40.0),  # 20% of 100 a year unpaid for 1.75 years, plus two ramps of 0.25 * 10
    (10.0, 32.0),  # the settlement of old bills (10 / 0.5 a year) is not a new bill: 20% of 80
])
def test_the_labs_funding_gap_counts_its_new_bills_unpaid_once(payables, expected):
    paid = path((2020, 1.0), (2030, 1.0), (2030.25, 0.8), (2032, 0.8), (2032.25, 1.0))
    run = circle(**{"Lab Payment Fraction": paid, "Lab Payables to Builders": flat(payables)})
    assert outcomes.outcome_metrics(TIMES, run, 2035)["lab funding gap"].iloc[0] == pytest.approx(expected, rel=1e-12)


def test_falls_of_capex_and_valuation_are_measured_from_their_running_peak():
    boom_bust = path((2020, 100), (2029, 400), (2031, 100), (2035, 300))
    run = circle(**{"Total AI Capex": boom_bust, "Lab Valuation": boom_bust / 2})
    for horizon, fall in ((2030, 0.375), (2031, 0.75), (2035, 0.75)):
        met = outcomes.outcome_metrics(TIMES, run, horizon).iloc[0]
        assert met["AI capex fall"] == pytest.approx(fall, rel=1e-12)
        assert met["lab valuation drawdown"] == pytest.approx(fall, rel=1e-12)


def test_outcome_metrics_are_computed_for_each_run_of_a_batch_in_order():
    runs = [circle(), circle(**{"Builder Defaults": PULSE_50}), circle(**{"AI Utilisation": 0.8 * HALF})]
    batch = {k: np.vstack([r[k] for r in runs]) for k in outcomes.METRIC_VARIABLES}
    met = outcomes.outcome_metrics(TIMES, batch, 2035)
    assert list(met.columns) == list(outcomes.METRICS)
    np.testing.assert_allclose(met["realised loss"], [0.0, 100.0, 100.0], rtol=1e-12)


def test_outcome_metrics_name_what_is_missing():
    run = circle()
    del run["Lab Valuation"]
    with pytest.raises(InvalidInput, match="the outcome metrics need Lab Valuation"):
        outcomes.outcome_metrics(TIMES, run, 2035)


# --------------------------------------------------------------------------- the bust rule


@pytest.mark.parametrize("defaults, bust", [(45.0, False), (55.0, True)])
def test_bust_rule_calls_a_bust_above_a_tenth_of_the_capital_over_two_years(defaults, bust):
    # defaults from the forecast start on: 2 years of them are 90 or 110 of the 1000 of capital
    run = circle(**{"Builder Defaults": flat(defaults)})
    values = [run[v] for v in outcomes.CAPITAL_LOSS.variables]
    met = outcomes.outcome_metrics(TIMES, run, 2035).iloc[0]
    assert met["worst loss share"] == pytest.approx(2 * defaults / 1000, rel=1e-12)
    assert met["capital bust"] == bust
    first = outcomes.CAPITAL_LOSS.first_bust(TIMES, values, outcomes.FORECAST_START)[0]
    # 55 a year reaches 100 after 1.82 years: the first saved quarter after is 2027.75
    assert (first == 2027.75) if bust else np.isnan(first)
    assert (met["capital bust at"] == first) if bust else np.isnan(met["capital bust at"])
    assert outcomes.CAPITAL_LOSS.labels(TIMES, values, 2035).tolist() == [outcomes.BUST if bust else outcomes.BOOM]


def test_bust_rule_judges_losses_against_the_industrys_peak_not_its_collapsed_size():
    # the capital stock collapses to 300 in 2028: 90 of losses over two years are 9% of its peak of
    # 1000 (no bust), not 30% of what is left
    run = circle(**{"Builder Defaults": flat(45.0), "AI Capital Stock": path((2020, 1000), (2027, 1000),
                                                                              (2028, 300), (2035, 300))})
    met = outcomes.outcome_metrics(TIMES, run, 2035).iloc[0]
    assert met["worst loss share"] == pytest.approx(0.09, rel=1e-12) and not met["capital bust"]


def test_bust_rule_ends_when_the_losses_stop():
    run = circle(**{"Builder Defaults": path((2020, 0), (2028, 0), (2028.25, 80), (2030, 80), (2030.25, 0))})
    flags = outcomes.CAPITAL_LOSS.flags(TIMES, [run[v] for v in outcomes.CAPITAL_LOSS.variables])[0]
    assert flags[TIMES == 2030].all() and not flags[TIMES >= 2033].any()


@pytest.fixture(scope="module")
def shipped():
    import aicircle as ac
    from aicircle.study import calibration

    model = ac.load(ROOT / "models" / "aicircle.mdl")
    calib = calibration.load_calibration()
    params = {k: v for k, v in calib["parameters"].items() if k in model.parameters.index}
    return model, params, calib["ensemble"], calibration.targets()


@pytest.mark.slow
def test_the_shipped_model_books_each_write_off_as_lost_revenue_a_default_or_a_bill(shipped):
    # a cross-check with the model file: AI Write Offs must be exactly the parts the metrics read,
    # or a loss would escape them; the calibrated baseline restructures the lab (every part > 0)
    model, params, _, _ = shipped
    run = model.simulate_batch(pd.DataFrame([params]), return_columns=[*outcomes.METRIC_VARIABLES, "AI Write Offs"],
                               final_time=2035)
    times = run["time"].to_numpy()
    paths = outcomes.loss_paths(times, {v: run[v].to_numpy() for v in outcomes.METRIC_VARIABLES})
    booked = paths["lost revenue"] + paths["builder defaults"] + paths["bills written off"]
    after = times >= outcomes.FORECAST_START
    flow, t = run["AI Write Offs"].to_numpy()[0, after], times[after]
    written_off = np.sum((flow[1:] + flow[:-1]) / 2 * np.diff(t))  # the trapezoid rule
    assert paths["bills written off"][0, -1] > 0 and paths["lost revenue"][0, -1] > 0
    assert booked[0, -1] == pytest.approx(written_off, rel=1e-12)


# --------------------------------------------------------------------------- priors and what decides


def test_prior_table_reweighting_matches_a_direct_redraw_and_the_analytic_value():
    # outcome x + y > 2.5 with x ~ U[0, 4], y ~ U[0, 1]: P = 1/2; with x ~ U[0, 2] the outcome is the
    # triangle x > 1.5, y > 2.5 - x of area 1/8 over 2: P = 1/16
    from aicircle.posterior import Uniform

    n = 40_000
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"x": rng.uniform(0, 4, n), "y": rng.uniform(0, 1, n)})
    drawn = {"x": Uniform(0, 4), "y": Uniform(0, 1)}
    alternatives = {"as drawn": {}, "x in [0, 2]": {"x": Uniform(0, 2)},
                    "log-uniform x": {"x": Uniform(0.5, 4, log=True)}}
    flags = {"x + y > 2.5": (table["x"] + table["y"]).to_numpy() > 2.5}
    got = ensemble.prior_sensitivity(table, flags, drawn, alternatives)
    direct = np.random.default_rng(1)
    for label, priors in alternatives.items():
        x = priors.get("x", drawn["x"]).sample(direct, n)
        p_direct = np.mean(x + direct.uniform(0, 1, n) > 2.5)
        p, ess = got.loc[label, "x + y > 2.5"], got.loc[label, "ess"]
        # two independent estimates: their difference has sd sqrt(p(1-p)(1/ess + 1/n)); 4 sd
        assert abs(p - p_direct) < 4 * math.sqrt(p * (1 - p) * (1 / ess + 1 / n)), label
        assert got.loc[label, "x + y > 2.5 lo"] < p < got.loc[label, "x + y > 2.5 hi"]
    assert got.loc["as drawn", "x + y > 2.5"] == pytest.approx(0.5, abs=0.01)  # sd 0.0025
    assert got.loc["x in [0, 2]", "x + y > 2.5"] == pytest.approx(1 / 16, abs=0.006)  # sd ~0.0017
    assert got.loc["x in [0, 2]", "ess"] == pytest.approx(n / 2, rel=0.02)  # the draws with x < 2


def test_alternative_priors_halve_each_deciding_range_and_cross_the_first_two():
    from aicircle.posterior import Uniform

    drawn = {"a": Uniform(1, 3), "b": Uniform(0, 4), "c": Uniform(2, 6)}
    alts = ensemble.alternative_priors(drawn, ["a", "b"])
    assert alts["as drawn (uniform over each range)"] == {}
    assert alts["log-uniform over the same ranges"] == {"a": Uniform(1, 3, log=True)}  # b starts at 0
    assert alts["a in [1, 2]"] == {"a": Uniform(1, 2)} and alts["b in [2, 4]"] == {"b": Uniform(2, 4)}
    assert alts["a in [2, 3] and b in [0, 2]"] == {"a": Uniform(2, 3), "b": Uniform(0, 2)}
    assert len(alts) == 2 + 4 + 4
    with pytest.raises(InvalidInput, match="d: not drawn from a prior"):
        ensemble.alternative_priors(drawn, ["a", "d"])


def test_robust_findings_state_what_holds_under_every_prior_and_the_rest_as_conditions():
    table = pd.DataFrame({"sure": [0.95, 0.99], "never": [0.0, 0.02], "open": [0.3, 0.8]},
                         index=["as drawn", "a in [1, 2]"])
    said = dict(ensemble.robust_findings(table, ["sure", "never", "open"]))
    assert said["sure"].startswith("**sure: likely under every prior**")
    assert said["never"].startswith("**never: unlikely under every prior**")
    assert said["open"] == "open: a condition, not a finding — P = 0.30 if as drawn, 0.80 if a in [1, 2] " \
                           "(as drawn: 0.30)."


def test_deciding_parameters_rank_the_one_that_decides_first():
    rng = np.random.default_rng(3)
    table = pd.DataFrame({"noise": rng.uniform(size=500), "decider": rng.uniform(size=500),
                          "fixed": np.ones(500)})
    metrics = pd.DataFrame({"worst loss share": table["decider"] ** 2, "lab fails": table["decider"] > 0.7})
    got = ensemble.deciding_parameters(table, metrics, ["noise", "decider", "fixed"], top=2)
    assert list(got.index) == ["decider", "noise"]  # a parameter that does not vary decides nothing
    assert got["decider"] > 0.5 and got["noise"] < 0.15  # 500 independent draws: |r| ~ 0.045


# --------------------------------------------------------------------------- the tipping map


@pytest.mark.slow
def test_tipping_map_puts_each_point_where_its_values_are(shipped):
    # the map's row i, column j must hold the runs at (x[j], y[i]): the same kept sets run directly
    # at one off-diagonal point give the same outcomes
    model, params, posterior, _ = shipped
    sets = posterior.iloc[:3].reset_index(drop=True)
    fixed = {k: v for k, v in params.items() if k not in sets}
    xs, ys = [0.0, 0.5], [0.1, 1.0]
    got = ensemble.tipping_map(model, sets, fixed, "Cancellation Fee Share", xs, "Payables Limit", ys, 2035,
                               per_cell=3, seed=0)
    assert got["lab fails"].shape == (2, 2) and got["per_cell"] == 3
    table = ensemble.with_fixed(sets.assign(**{"Cancellation Fee Share": xs[1], "Payables Limit": ys[0]}), fixed)
    run = model.simulate_batch(table, return_columns=list(outcomes.METRIC_VARIABLES), final_time=2035)
    direct = outcomes.outcome_metrics(run["time"].to_numpy(), {v: run[v].to_numpy() for v in outcomes.METRIC_VARIABLES},
                                      2035)
    assert got["lab fails"][0, 1] == pytest.approx(direct["lab fails"].mean())
    assert got["worst loss share"][0, 1] == pytest.approx(direct["worst loss share"].median(), rel=1e-12)
    assert got["lab fails"][0, 1] != got["lab fails"][1, 0] or \
        got["worst loss share"][0, 1] != got["worst loss share"][1, 0]  # the two corners differ: a real check


@pytest.mark.slow
def test_delta_chi2_of_the_map_is_zero_at_the_calibrated_point(shipped):
    model, params, _, targets = shipped
    x0, y0 = params.get("Cancellation Fee Share", 0.2), params.get("Payables Limit", 0.25)
    delta = ensemble.delta_chi2_grid(model, targets, params, "Cancellation Fee Share", [x0, 0.5],
                                     "Payables Limit", [y0, 1.0])
    assert delta.shape == (2, 2)
    assert delta[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert np.isfinite(delta).all()

"""Named scenarios (aicircle.study.scenarios): which a model offers, and the ``params`` each gives.

The shipped model's scenarios and their effects are tested in test_circle_model; here a small
model defines the inputs of one scenario only, spelled its own way.
"""

import pytest

import aicircle as ac
from aicircle.study import scenarios
from aicircle.errors import UnknownName
from conftest import write_mdl

# Confidence decays after a shock: the inputs of `confidence-shock` (one spelled in capitals,
# one with underscores), and half of `credit-tightening`'s (its size, not its start).
SHOCKABLE = (
    "Investor Confidence = INTEG(-CONFIDENCE SHOCK SIZE * PULSE(confidence_shock_start, 0.25) * "
    "Investor Confidence / 0.25, 1) ~ Dmnl ~ loses the shock's share over a quarter |",
    "CONFIDENCE SHOCK SIZE = 0 ~ Dmnl [0,1] ~ off by default |",
    "confidence_shock_start = 2026 ~ Year ~ when |",
    "Credit Tightening Size = 0 ~ Dmnl [0,0.1] ~ an input without its start |",
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return ac.load(write_mdl(tmp_path_factory.mktemp("scenarios"), *SHOCKABLE, initial_time=2025,
                             final_time=2028, time_step=0.0625, saveper=0.25))


def test_a_model_offers_the_scenarios_whose_inputs_it_defines(model):
    assert list(scenarios.available(model)) == ["confidence-shock"]


def test_inputs_are_spelled_as_the_model_spells_them(model):
    assert scenarios.switches(model) == {"CONFIDENCE SHOCK SIZE", "confidence_shock_start"}


def test_scenario_params_are_the_scenarios_own_values(model):
    assert scenarios.scenario_params(model, "confidence-shock") == {"Confidence Shock Size": 0.9,
                                                                     "Confidence Shock Start": 2026}


def test_editing_the_returned_params_leaves_the_scenario_unchanged(model):
    scenarios.scenario_params(model, "confidence-shock")["Confidence Shock Size"] = 0.1
    assert scenarios.SCENARIOS["confidence-shock"].params["Confidence Shock Size"] == 0.9


def test_a_scenario_run_differs_from_the_baseline_only_from_its_start(model):
    base = model.simulate()
    shocked = model.simulate(params=scenarios.scenario_params(model, "confidence-shock"))
    before, after = base.index < 2026, base.index >= 2026.25  # the pulse lasts a quarter from 2026
    assert (shocked.loc[before, "Investor Confidence"] == base.loc[before, "Investor Confidence"]).all()
    # a loss at the rate 0.9 / 0.25 a year for a quarter: four Euler steps of 1/16 leave
    # (1 - 0.9 / 0.25 / 16)^4 = 0.775^4 of it (exp(-0.9) in the limit); rounding only
    assert shocked.loc[2026.25, "Investor Confidence"] == pytest.approx((1 - 0.9 / 0.25 / 16) ** 4, rel=1e-12)
    assert (shocked.loc[after, "Investor Confidence"] < base.loc[after, "Investor Confidence"]).all()


@pytest.mark.parametrize("name, known", [
    ("credit-tightening", "known: confidence-shock"),  # half its inputs: not offered
    ("no-such-scenario", "known: confidence-shock"),
])
def test_a_scenario_the_model_does_not_offer_is_refused_naming_those_it_does(model, name, known):
    with pytest.raises(UnknownName, match=f"unknown scenario '{name}'; {known}"):
        scenarios.scenario_params(model, name)


def test_a_model_without_scenario_inputs_says_it_has_none(tmp_path):
    plain = ac.load(write_mdl(tmp_path, "x = INTEG(1, 0)"))
    with pytest.raises(UnknownName, match="known: none for this model"):
        scenarios.scenario_params(plain, "confidence-shock")

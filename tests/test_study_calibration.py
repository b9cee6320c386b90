"""The capital-circle study's calibration policy (aicircle.study.calibration): what it hands the
toolkit's calibration (the vocabulary, the switches, the actuals mask) and the shipped results."""

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from aicircle import _resources
from aicircle import calibrate as cal
from aicircle.study import calibration, scenarios
from aicircle.study.ensemble import future_parameters


def _targets(sigma, source):
    return pd.DataFrame({"sigma": sigma, "source": source})


@pytest.mark.parametrize(("sigma", "source", "actual"), [
    (0.1, "OpenAI's 2024 results", True),
    (0.3, "OpenAI's 2024 results", False),  # the policy's floor for plans and projections
    (0.1, "the company's plan for 2026", False),
    (0.1, "Projections by the lab", False),
    (0.1, "https://example.com/employees-plan-6-billion (a headline)", True),  # words in URLs do not count
])
def test_actuals_are_figures_with_a_small_sigma_that_their_source_does_not_call_a_plan(sigma, source, actual):
    assert calibration.actuals(_targets([sigma], [source])).tolist() == [actual]


def test_the_shipped_targets_hold_50_actuals_of_57():
    targets = calibration.targets()  # the shipped targets, in the study's vocabulary
    mask = calibration.actuals(targets)
    assert mask.dtype == bool and (mask.sum(), len(mask)) == (50, 57)


def test_the_study_hands_the_toolkit_its_actuals_and_the_toolkit_counts_every_target_without_them():
    targets = calibration.targets()
    table = pd.DataFrame({"residual": np.zeros(len(targets))})
    assert calibration.fit_statistics(targets, table)["n_actuals"] == 50
    assert cal.fit_statistics(targets, table)["n_actuals"] == len(targets)


def test_the_shipped_calibration_holds_no_switch_and_loads_its_structural_alternatives():
    model = ac.load(ac.shipped_model())
    calib = calibration.load_calibration()
    assert scenarios.switches(model).isdisjoint(calib["fit"]["free"])
    assert calib["structural"] is not None and "alternative" in calib["structural"].columns


# --------------------------------------------------------------------------- what is calibrated

@pytest.fixture(scope="module")
def shipped_model():
    return ac.load(ac.shipped_model())


def test_every_included_parameter_is_one_the_shipped_model_can_calibrate(shipped_model):
    table = shipped_model.parameters
    for name in calibration.INCLUDE:
        assert name in table.index, name  # as the model spells it
        assert np.isfinite(table.loc[name, ["min", "max"]].astype(float)).all() and \
            table.loc[name, "min"] < table.loc[name, "max"], name
    assert scenarios.switches(shipped_model).isdisjoint(calibration.INCLUDE)
    assert all(reason.strip() for reason in calibration.INCLUDE.values())  # each says why it is there


def test_the_shipped_model_adds_the_study_list_to_the_screened_parameters_and_any_other_model_adds_nothing(
        shipped_model, tmp_path):
    assert calibration.included(shipped_model) == list(calibration.INCLUDE)
    # a name given is added once, in the model's spelling, after the list
    extra = calibration.included(shipped_model, ["cost per gw", "cancellation threshold"])
    assert extra == [*calibration.INCLUDE, "Cancellation Threshold"]
    copy = tmp_path / "copy.mdl"
    copy.write_bytes(ac.shipped_model().read_bytes())  # the same equations under another path: not the study's
    assert calibration.included(ac.load(copy)) == []


def test_a_study_list_naming_what_the_model_lacks_is_refused_by_name(shipped_model, monkeypatch):
    monkeypatch.setitem(calibration.INCLUDE, "Renamed Parameter", "a reason")
    with pytest.raises(ac.InvalidInput, match="INCLUDE .* names 'Renamed Parameter'"):
        calibration.included(shipped_model)


def test_the_shipped_calibration_is_made_by_one_short_command_that_records_its_list():
    fit = calibration.load_calibration()["fit"]
    assert fit["command"] == "aicircle calibrate --seed 0 --out calibration/results"
    assert fit["include"] == list(calibration.INCLUDE)
    assert set(calibration.INCLUDE) <= set(fit["free"])


# --------------------------------------------------------------------------- the refit test (issue 23, item 4)

@pytest.fixture(scope="module")
def shipped_refits():
    """calibration/refit_ends.py's table for the shipped calibration."""
    return pd.read_csv(_resources.calibration_dir() / "results" / "refit_ends.csv")


def test_the_shipped_refit_table_was_computed_against_the_shipped_parameters(shipped_refits):
    shipped = cal.fingerprint(cal.read_parameters(ac.shipped_parameters()))
    assert set(shipped_refits["parameters_fingerprint"]) == {shipped}, (
        "calibration/results/refit_ends.csv is stale: rerun python calibration/refit_ends.py")


def test_the_refit_table_holds_every_uncalibrated_parameter_at_most_at_its_two_ends(shipped_model, shipped_refits):
    free = calibration.load_calibration()["fit"]["free"]
    assert set(shipped_refits["parameter"]) <= set(future_parameters(shipped_model, free))
    assert not shipped_refits.duplicated(["parameter", "end"]).any()
    assert set(shipped_refits["end"]) <= {"min", "max"}


def test_no_end_of_an_uncalibrated_parameter_fits_better_than_the_shipped_calibration_by_more_than_3_84(
        shipped_refits):
    # 3.84: the 95% quantile of chi-squared with one degree of freedom (one parameter freed)
    worst = shipped_refits.loc[shipped_refits["delta_misfit"].idxmin()]
    assert worst["delta_misfit"] >= -cal.CHI2_95, (
        f"'{worst['parameter']}' at its {worst['end']} ({worst['value']:g}) fits better by "
        f"{-worst['delta_misfit']:.2f}: add it to INCLUDE (aicircle/study/calibration.py) and recalibrate")
    assert not shipped_refits["better_by_more_than_3.84"].any()


@pytest.mark.slow
def test_rerunning_the_closest_end_refits_reproduces_the_shipped_table(shipped_model, shipped_refits):
    model = shipped_model
    shipped = calibration.load_calibration()
    params = {k: v for k, v in shipped["parameters"].items() if k in model.parameters.index}
    # the three parameters whose ends come nearest to fitting better: where a stale table would matter most
    closest = list(dict.fromkeys(shipped_refits.sort_values("delta_misfit")["parameter"]))[:3]
    table, summary = cal.refit_ends(model, calibration.targets(), params, shipped["fit"]["free"], closest)
    expected = shipped_refits[shipped_refits["parameter"].isin(closest)]
    key = ["parameter", "end"]
    got = table.set_index(key).sort_index()
    want = expected.set_index(key).sort_index()
    assert got.index.equals(want.index)
    # the CSV holds 6 significant digits; a row's refit does not depend on the others in its batch
    for column in ("value", "chi2_targets", "delta_misfit"):
        np.testing.assert_allclose(got[column], want[column], rtol=1e-5, atol=1e-4, err_msg=column)
    assert abs(summary["self_refit"]) < 1.0  # the shipped calibration is an optimum over its own parameters

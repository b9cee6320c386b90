"""The capital-circle study's calibration policy (aicircle.study.calibration): what it hands the
toolkit's calibration (the vocabulary, the switches, the actuals mask) and the shipped results."""

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from aicircle import calibrate as cal
from aicircle.study import calibration, scenarios


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

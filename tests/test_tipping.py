"""Tipping points (DESIGN §4)."""

from __future__ import annotations

import numpy as np
import pytest

from aicircle import tipping
from aicircle.errors import InvalidInput

# --------------------------------------------------------------------------- the capital-circle classifier
#
# DESIGN §4: a run is a bust if, before the horizon, Investor Confidence falls below 0.2
# or Hyperscaler Capex falls below half of its running peak; a boom if neither happens
# and capex at the horizon is above its 2025 level; otherwise a soft landing. The runs
# below are synthetic: piecewise-linear through the knots given, saved quarterly.

TIMES = np.arange(2020.0, 2035.0 + 1e-9, 0.25)


def path(*knots):
    """Values at TIMES, linear between (time, value) knots and flat beyond them."""
    t, v = zip(*knots)
    return np.interp(TIMES, t, v)


STEADY_CONFIDENCE = path((2020, 0.6), (2035, 0.6))
RISING_CAPEX = path((2020, 100), (2035, 300))

CASES = {
    "boom: confidence steady, capex rising": (STEADY_CONFIDENCE, RISING_CAPEX, 2035, tipping.BOOM),
    "bust: confidence below 0.2 for one quarter, then recovering": (
        path((2020, 0.6), (2029.75, 0.6), (2030, 0.19), (2030.25, 0.9)), RISING_CAPEX, 2035, tipping.BUST),
    "not a bust: confidence touching 0.2 exactly (the floor is strict)": (
        path((2020, 0.6), (2030, 0.2), (2031, 0.6)), RISING_CAPEX, 2035, tipping.BOOM),
    "bust: capex below half its running peak, then above it again": (
        STEADY_CONFIDENCE, path((2020, 100), (2028, 400), (2030, 199), (2035, 500)), 2035, tipping.BUST),
    "not a bust: capex down to exactly half its peak": (
        STEADY_CONFIDENCE, path((2020, 100), (2028, 400), (2030, 200), (2035, 500)), 2035, tipping.BOOM),
    "bust: capex halves from its initial level, the first running peak": (
        STEADY_CONFIDENCE, path((2020, 100), (2021, 45), (2035, 300)), 2035, tipping.BUST),
    "soft landing: capex falls below its 2025 level but not below half its peak": (
        STEADY_CONFIDENCE, path((2020, 100), (2028, 300), (2035, 160)), 2035, tipping.SOFT),
    "not yet a bust: the confidence collapse comes after the horizon": (
        path((2020, 0.6), (2032, 0.6), (2033, 0.1)), RISING_CAPEX, 2030, tipping.BOOM),
    "soft landing: capex at the horizon equal to its 2025 level": (
        STEADY_CONFIDENCE, path((2020, 100), (2025, 200), (2030, 250), (2035, 200)), 2035, tipping.SOFT),
}


@pytest.mark.parametrize("case", CASES)
def test_classifier_labels_synthetic_run(case):
    confidence, capex, horizon, expected = CASES[case]
    assert tipping.classify(TIMES, confidence[None], capex[None], horizon).tolist() == [expected]


def test_classifier_labels_each_run_of_a_batch_in_order():
    names = list(CASES)
    confidence = np.stack([CASES[n][0] for n in names])
    capex = np.stack([CASES[n][1] for n in names])
    at_2035 = [n for n in names if CASES[n][2] == 2035]
    labels = tipping.classify(TIMES, confidence, capex, 2035)
    assert labels.shape == (len(names),)
    assert [labels[names.index(n)] for n in at_2035] == [CASES[n][3] for n in at_2035]


def test_bust_flags_stay_raised_from_the_first_bust_event():
    confidence = path((2020, 0.6), (2029.75, 0.6), (2030, 0.19), (2030.25, 0.9))
    flags = tipping.bust_flags(TIMES, confidence[None], RISING_CAPEX[None])[0]
    np.testing.assert_array_equal(flags, TIMES >= 2030)


def test_classifier_rejects_a_horizon_outside_the_run():
    with pytest.raises(InvalidInput, match="horizon 2040 is outside the run"):
        tipping.classify(TIMES, STEADY_CONFIDENCE[None], RISING_CAPEX[None], 2040)

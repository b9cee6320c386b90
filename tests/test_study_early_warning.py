"""The capital-circle study's early warning (aicircle.study.early_warning): the toolkit's
indicators before the shipped model's busts, against the same years of runs that do not bust."""

import numpy as np
import pytest

from aicircle.study.early_warning import capital_circle_study


@pytest.mark.slow
def test_capital_circle_study_compares_runs_that_bust_with_the_same_years_of_runs_that_do_not():
    summary, runs = capital_circle_study(n_runs=8, variables=("Investor Confidence",))
    tipping = runs[runs["group"] == "tipping"]
    calm = runs[runs["group"] == "non-tipping"]
    assert len(tipping) + len(calm) + int((runs["group"] == "left out").sum()) == 16
    assert np.all(tipping["value"] == 2.6) and np.all(calm["value"] == 2.9)
    assert np.all(tipping["end"] == tipping["first_bust"]) and calm["first_bust"].isna().all()
    assert set(calm["end"]) <= set(tipping["first_bust"])  # the same years as a run that busts
    assert list(summary.index.get_level_values("group")) == ["tipping", "non-tipping"] * 2
    assert np.all((summary["lo"] <= summary["share"]) & (summary["share"] <= summary["hi"]))
    assert np.all(summary["n"] == [len(tipping), len(calm)] * 2)

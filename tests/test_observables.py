"""Observation operators and target files (docs/design.md §3)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aicircle import observables as obs
from aicircle.errors import InvalidInput, TargetFileError, UnknownName
from aicircle.study.observables import OBSERVABLES as VOCABULARY  # the study's 17: the shipped targets'

SHIPPED_TARGETS = Path(__file__).resolve().parents[1] / "calibration" / "targets.csv"
HEADER = ",".join(obs.COLUMNS)

# Two valid rows; rejection tests break row 2.
GOOD_ROWS = [
    "rev_2024,lab_revenue,2024-01-01,2024-12-31,total,3.7,$B,0.05,somewhere,a quote",
    "users_2025,lab_users,2025-03-31,2025-03-31,level,500,million,0.05,somewhere,a quote",
]


def write_targets(tmp_path, rows, header=HEADER, name="targets.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def targets_from(tmp_path, *rows):
    """Targets from CSV rows written without the source/quote columns."""
    return obs.read_targets(write_targets(tmp_path, [r + ",src,quote" for r in rows]), VOCABULARY)


def grid(start, stop, step):
    """A uniform grid from start to stop inclusive (stop - start a multiple of step)."""
    n = round((stop - start) / step)
    return start + step * np.arange(n + 1)


# --------------------------------------------------------------------------- names and time

@pytest.mark.parametrize("name", ["Lab Revenue", "lab_revenue", "LAB  REVENUE", "Lab_ _Revenue", " lab revenue "])
def test_observable_id_reads_spaces_and_underscores_as_one(name):
    assert obs.observable_id(name) == "lab_revenue"


def test_find_observables_maps_ids_to_model_names():
    found = obs.find_observables(["Lab Revenue", "Time", "Hyperscaler Capex", "Something Else"], VOCABULARY)
    assert found == {"lab_revenue": "Lab Revenue", "hyperscaler_capex": "Hyperscaler Capex"}


def test_find_observables_rejects_two_names_for_one_observable():
    with pytest.raises(InvalidInput, match="both stand for observable 'lab_revenue'"):
        obs.find_observables(["Lab Revenue", "lab_revenue"], VOCABULARY)


def test_a_vocabulary_of_its_own_reads_a_target_file_of_its_own(tmp_path):
    own = obs.vocabulary(("population", "level", "million", "people alive"))
    path = write_targets(tmp_path, ["pop_2024,population,2024-01-01,2024-12-31,level,8100,million,0.05,src,q"])
    assert obs.read_targets(path, own)["observable"].tolist() == ["population"]
    with pytest.raises(TargetFileError, match="unknown observable 'population'"):
        obs.read_targets(path, VOCABULARY)


def test_a_vocabulary_refuses_an_id_twice_and_an_unknown_kind():
    with pytest.raises(InvalidInput, match="appears twice"):
        obs.vocabulary(("x", "level", "GW", ""), ("x", "flow", "$B/Year", ""))
    with pytest.raises(InvalidInput, match="kind must be"):
        obs.vocabulary(("x", "stock", "GW", ""))


def test_fraction_observables_are_vc_share_and_confidence():
    fractions = {k for k, o in VOCABULARY.items() if o.unit == "fraction"}
    assert fractions == {"vc_ai_share", "investor_confidence"}


@pytest.mark.parametrize("when, expected", [
    ("2025-01-01", 2025.0),
    ("2025-07-02", 2025 + 182 / 365),
    ("2024-07-02", 2024.5),           # leap year: day 184 of 366
    ("2024-12-31", 2024 + 365 / 366),
])
def test_model_time_is_year_plus_elapsed_days_over_days_in_year(when, expected):
    # the same arithmetic, so equal to float round-off
    assert obs.model_time(when) == pytest.approx(expected, abs=1e-12)


def test_window_ends_the_day_after_end(tmp_path):
    targets = targets_from(tmp_path, "h1,lab_revenue,2025-01-01,2025-06-30,total,4.3,$B,0.1")
    assert targets.loc[0, "t_start"] == 2025.0
    assert targets.loc[0, "t_end"] == pytest.approx(2025 + 181 / 365, abs=1e-12)


# --------------------------------------------------------------------------- observe: analytic cases

def test_total_of_a_constant_flow_is_rate_times_window_length(tmp_path):
    targets = targets_from(tmp_path,
                           "y2021,lab_revenue,2021-01-01,2021-12-31,total,1,$B,0.1",
                           "h1,lab_revenue,2025-01-01,2025-06-30,total,1,$B,0.1")
    t = grid(2020.0, 2027.0, 1 / 64)
    predicted = obs.observe(targets, t, {"Lab Revenue": np.full(t.size, 7.0)})
    # sums of a few hundred equal products: round-off only
    np.testing.assert_allclose(predicted, [7.0, 7.0 * 181 / 365], rtol=1e-12)


def test_total_of_a_linear_ramp_is_the_euler_left_sum(tmp_path):
    targets = targets_from(tmp_path, "y2021,lab_revenue,2021-01-01,2021-12-31,total,1,$B,0.1")
    alpha, beta, dt = 2.0, 3.0, 0.25
    t = grid(2019.0, 2023.0, dt)
    predicted = obs.observe(targets, t, {"Lab Revenue": alpha + beta * (t - 2019.0)})
    # exact integral over [2021, 2022) of alpha + beta (t - 2019) is alpha + 2.5 beta; the Euler
    # left sum of a ramp falls short of it by exactly beta * dt * length / 2.
    exact = alpha + beta * 2.5
    assert predicted[0] == pytest.approx(exact - beta * dt / 2, rel=1e-12)


def test_edge_steps_are_pro_rated_when_the_grid_is_not_aligned(tmp_path):
    targets = targets_from(tmp_path, "y2021,lab_revenue,2021-01-01,2021-12-31,total,1,$B,0.1")
    t = 2020.9 + 0.25 * np.arange(6)          # 2020.9, 2021.15, ..., 2022.15
    rate = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    predicted = obs.observe(targets, t, {"Lab Revenue": rate})
    # step [2020.9, 2021.15) overlaps the window by 0.15, [2021.9, 2022.15) by 0.1, the three
    # between fully; tolerance: 2020.9 is not exact in binary
    expected = 0.15 * 1 + 0.25 * (2 + 3 + 4) + 0.1 * 5
    assert predicted[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_total_matches_a_step_by_step_overlap_sum_on_random_grids(tmp_path, seed):
    rng = np.random.default_rng(seed)
    targets = targets_from(tmp_path, "q,lab_revenue,2024-02-10,2024-11-03,total,1,$B,0.1")
    a, b = targets.loc[0, "t_start"], targets.loc[0, "t_end"]
    dt = rng.uniform(0.01, 0.3)
    t = rng.uniform(2023.0, 2023.5) + dt * np.arange(int(3 / dt))
    rate = rng.uniform(0.0, 10.0, t.size)
    # independent reference: the rate of each step times its overlap with the window
    overlap = np.clip(np.minimum(t[1:], b) - np.maximum(t[:-1], a), 0.0, None)
    expected = np.sum(rate[:-1] * overlap)
    # two summation orders of up to 300 terms: round-off only
    assert obs.observe(targets, t, {"Lab Revenue": rate})[0] == pytest.approx(expected, rel=1e-10)


def test_mean_is_total_over_window_length(tmp_path):
    targets = targets_from(tmp_path,
                           "tot,lab_revenue,2025-01-01,2025-06-30,total,1,$B,0.1",
                           "avg,lab_revenue,2025-01-01,2025-06-30,mean,1,$B/Year,0.1")
    t = grid(2024.0, 2026.0, 1 / 64)
    total, mean = obs.observe(targets, t, {"Lab Revenue": 1.0 + np.sin(t)})
    assert mean == pytest.approx(total / (181 / 365), rel=1e-12)


def test_growth_of_an_exponential_flow_is_exp_g_minus_one(tmp_path):
    targets = targets_from(tmp_path, "g,cloud_revenue,2024-10-01,2024-12-31,growth,0.25,fraction,0.03")
    g = 0.3
    t = grid(2020.0, 2026.0, 1 / 64)
    predicted = obs.observe(targets, t, {"Cloud Revenue": np.exp(g * (t - 2020.0))})
    # one year is a whole number of steps, so each step of the window is e^g times its
    # counterpart a year earlier: exact up to round-off
    assert predicted[0] == pytest.approx(math.exp(g) - 1, rel=1e-10)


def test_growth_is_nan_when_the_year_earlier_total_is_zero(tmp_path):
    targets = targets_from(tmp_path, "g,cloud_revenue,2024-10-01,2024-12-31,growth,0.25,fraction,0.03")
    t = grid(2020.0, 2026.0, 1 / 64)
    predicted = obs.observe(targets, t, {"Cloud Revenue": np.where(t >= 2024.0, 1.0, 0.0)})
    assert np.isnan(predicted[0])


@pytest.mark.parametrize("row", [
    "lvl,lab_cash,2025-06-30,2025-06-30,level,1,$B,0.1",
    "arr,lab_revenue,2025-06-30,2025-06-30,level,1,$B/Year,0.1",   # a flow's run-rate
])
def test_level_interpolates_linearly_at_the_day_after_end(tmp_path, row):
    targets = targets_from(tmp_path, row)
    t = grid(2024.0, 2026.0, 0.25)
    line = 3.0 + 2.0 * (t - 2024.0)
    predicted = obs.observe(targets, t, {"Lab Cash": line, "Lab Revenue": line})
    t_end = 2025 + 181 / 365                     # 2025-07-01, between grid points
    assert predicted[0] == pytest.approx(3.0 + 2.0 * (t_end - 2024.0), rel=1e-12)


def test_share_of_a_constant_fraction_is_that_fraction(tmp_path):
    targets = targets_from(tmp_path, "s,vc_ai_share,2025-01-01,2025-03-31,share,0.7,fraction,0.05")
    t = 2019.93 + 0.1 * np.arange(80)            # an unaligned grid
    predicted = obs.observe(targets, t, {"VC AI Share": np.full(t.size, 0.42)})
    assert predicted[0] == pytest.approx(0.42, rel=1e-12)


def test_a_batch_gives_one_row_of_predictions_per_set(tmp_path):
    targets = targets_from(tmp_path,
                           "tot,lab_revenue,2025-01-01,2025-06-30,total,1,$B,0.1",
                           "lvl,lab_users,2025-03-31,2025-03-31,level,1,million,0.1")
    t = grid(2024.0, 2026.0, 1 / 32)
    revenue = np.vstack([np.full(t.size, r) for r in (1.0, 2.0, 3.0)])
    users = 100.0 + t - 2024.0                    # 1-D: broadcast across the sets
    batch = obs.observe(targets, t, {"Lab Revenue": revenue, "Lab Users": users})
    assert batch.shape == (3, 2)
    for i in range(3):
        single = obs.observe(targets, t, {"Lab Revenue": revenue[i], "Lab Users": users})
        np.testing.assert_array_equal(batch[i], single)


def test_observe_reads_a_dataframe_of_model_variables(tmp_path):
    targets = targets_from(tmp_path, "tot,lab_revenue,2025-01-01,2025-12-31,total,1,$B,0.1")
    t = grid(2024.0, 2026.0, 1 / 4)
    frame = pd.DataFrame({"Lab Revenue": np.full(t.size, 5.0)}, index=t)
    assert obs.observe(targets, t, frame)[0] == pytest.approx(5.0, rel=1e-12)


def test_a_grid_that_misses_a_window_is_an_error(tmp_path):
    targets = targets_from(tmp_path, "y2021,lab_revenue,2021-01-01,2021-12-31,total,1,$B,0.1")
    t = grid(2021.5, 2023.0, 0.25)
    with pytest.raises(InvalidInput, match="does not cover target 'y2021'"):
        obs.observe(targets, t, {"Lab Revenue": np.ones(t.size)})


def test_growth_needs_the_year_before_the_window(tmp_path):
    targets = targets_from(tmp_path, "g,cloud_revenue,2024-10-01,2024-12-31,growth,0.25,fraction,0.03")
    t = grid(2024.0, 2025.0, 1 / 64)              # covers the window, not the year before
    with pytest.raises(InvalidInput, match="year before"):
        obs.observe(targets, t, {"Cloud Revenue": np.ones(t.size)})


def test_a_missing_observable_names_the_target(tmp_path):
    targets = targets_from(tmp_path, "y2021,lab_revenue,2021-01-01,2021-12-31,total,1,$B,0.1")
    t = grid(2020.0, 2023.0, 0.25)
    with pytest.raises(UnknownName, match="target 'y2021' needs observable 'lab_revenue'"):
        obs.observe(targets, t, {"Lab Cash": np.ones(t.size)})


def test_windows_extent_includes_the_year_before_a_growth_window(tmp_path):
    targets = targets_from(tmp_path,
                           "g,cloud_revenue,2024-10-01,2024-12-31,growth,0.25,fraction,0.03",
                           "lvl,lab_cash,2025-06-30,2025-06-30,level,1,$B,0.1")
    lo, hi = obs.windows_extent(targets)
    assert lo == pytest.approx(2023 + 274 / 366, abs=1e-12)  # 2024-10-01 (leap year) minus 1
    assert hi == pytest.approx(2025 + 181 / 365, abs=1e-12)


# --------------------------------------------------------------------------- errors and residuals

def test_errors_are_log_for_amounts_and_absolute_for_fractions(tmp_path):
    targets = targets_from(tmp_path,
                           "rev,lab_revenue,2024-01-01,2024-12-31,total,4,$B,0.1",
                           "g,cloud_revenue,2024-10-01,2024-12-31,growth,0.25,fraction,0.05",
                           "vc,vc_ai_share,2025-01-01,2025-03-31,level,0.7,fraction,0.05")
    table = obs.errors(targets, np.array([8.0, 0.30, 0.6]))
    assert table["log_error"].iloc[0] == pytest.approx(math.log(2.0))
    np.testing.assert_allclose(table["abs_error"].iloc[1:], [0.05, -0.1], atol=1e-12)
    assert table["log_error"].iloc[1:].isna().all() and np.isnan(table["abs_error"].iloc[0])
    np.testing.assert_allclose(table["residual"], [math.log(2.0) / 0.1, 1.0, -2.0], atol=1e-12)


@pytest.mark.parametrize("bad", [0.0, -3.0])
def test_a_non_positive_prediction_has_no_log_error_but_a_finite_residual(tmp_path, bad):
    targets = targets_from(tmp_path, "rev,lab_revenue,2024-01-01,2024-12-31,total,4,$B,0.1")
    table = obs.errors(targets, np.array([bad]))
    assert np.isnan(table["log_error"].iloc[0])
    assert np.isfinite(table["residual"].iloc[0]) and table["residual"].iloc[0] < 0


def test_the_residual_below_the_log_floor_is_continuous_and_falling(tmp_path):
    targets = targets_from(tmp_path, "rev,lab_revenue,2024-01-01,2024-12-31,total,4,$B,0.1")
    floor = obs.LOG_FLOOR * 4.0
    p = np.array([[floor * (1 + 1e-9)], [floor * (1 - 1e-9)], [0.0], [-1.0]])
    r = obs.residuals(targets, p)[:, 0]
    assert r[0] == pytest.approx(r[1], abs=1e-6)   # continuous at the floor
    assert r[1] > r[2] > r[3]                       # keeps falling below it


def test_a_non_finite_prediction_gets_the_penalty(tmp_path):
    targets = targets_from(tmp_path,
                           "rev,lab_revenue,2024-01-01,2024-12-31,total,4,$B,0.1",
                           "g,cloud_revenue,2024-10-01,2024-12-31,growth,0.25,fraction,0.05")
    r = obs.residuals(targets, np.array([np.nan, np.inf]))
    np.testing.assert_array_equal(r, [obs.NONFINITE_RESIDUAL, obs.NONFINITE_RESIDUAL])


def test_payoff_sums_squared_residuals_and_counts_those_within_two_sigma(tmp_path):
    targets = targets_from(tmp_path,
                           "a,vc_ai_share,2025-01-01,2025-03-31,share,0.5,fraction,0.1",
                           "b,vc_ai_share,2025-04-01,2025-06-30,share,0.5,fraction,0.1",
                           "c,lab_revenue,2024-01-01,2024-12-31,total,4,$B,0.1")
    result = obs.payoff(targets, np.array([0.6, 0.8, 0.0]))
    r_c = obs.residuals(targets, np.array([0.6, 0.8, 0.0]))[2]
    assert result.chi2 == pytest.approx(1.0 + 9.0 + r_c ** 2)
    assert result.within_2sigma == pytest.approx(1 / 3)
    assert result.n_undefined == 1
    assert "within 2 sigma" in str(result)


def test_payoff_of_a_batch_has_one_value_per_set(tmp_path):
    targets = targets_from(tmp_path, "a,vc_ai_share,2025-01-01,2025-03-31,share,0.5,fraction,0.1")
    result = obs.payoff(targets, np.array([[0.5], [0.7]]))
    np.testing.assert_allclose(result.chi2, [0.0, 4.0], atol=1e-12)


# --------------------------------------------------------------------------- read_targets: rejections

def replace_cell(row, column, text):
    cells = row.split(",")
    cells[obs.COLUMNS.index(column)] = text
    return ",".join(cells)


ROW2 = GOOD_ROWS[1]
REV = GOOD_ROWS[0].replace("rev_2024", "rev_2025")


@pytest.mark.parametrize("bad_row, column, message", [
    pytest.param(replace_cell(ROW2, "id", ""), "id", "empty", id="empty id"),
    pytest.param(replace_cell(ROW2, "id", "42"), "id", "bare number", id="bare-number id"),
    pytest.param(replace_cell(ROW2, "id", "1e3"), "id", "bare number", id="bare-number id in e-notation"),
    pytest.param(replace_cell(ROW2, "id", "rev_2024"), "id", "duplicate id 'rev_2024'", id="duplicate id"),
    pytest.param(replace_cell(ROW2, "observable", "lab_revenu"), "observable", "unknown observable",
                 id="unknown observable"),
    pytest.param(replace_cell(ROW2, "aggregation", "sum"), "aggregation", "unknown aggregation",
                 id="unknown aggregation"),
    pytest.param("x,lab_cash,2025-01-01,2025-03-31,total,1,$B,0.1,s,q", "aggregation", "flows only",
                 id="total of a level"),
    pytest.param("x,lab_users,2025-01-01,2025-03-31,growth,0.1,fraction,0.1,s,q", "aggregation", "flows only",
                 id="growth of a level"),
    pytest.param("x,lab_revenue,2025-01-01,2025-03-31,share,0.1,fraction,0.1,s,q", "aggregation",
                 "fraction observables only", id="share of a flow"),
    pytest.param("x,lab_cash,2025-01-01,2025-03-31,share,0.1,fraction,0.1,s,q", "aggregation",
                 "fraction observables only", id="share of an amount level"),
    pytest.param(replace_cell(ROW2, "unit", "users"), "unit", "unknown unit", id="unknown unit"),
    pytest.param(replace_cell(REV, "unit", "$B/Year"), "unit", "does not match", id="rate unit for a total"),
    pytest.param(replace_cell(ROW2, "unit", "$B"), "unit", "does not match", id="wrong unit for a level"),
    pytest.param(replace_cell(ROW2, "start", "2025/03/31"), "start", "malformed date", id="slashed date"),
    pytest.param(replace_cell(ROW2, "start", "2025-02-30"), "start", "malformed date", id="impossible date"),
    pytest.param(replace_cell(ROW2, "end", "soon"), "end", "malformed date", id="word for a date"),
    pytest.param(replace_cell(ROW2, "start", "2025-04-01"), "end", "is after end", id="start after end"),
    pytest.param(replace_cell(ROW2, "value", "lots"), "value", "not a number", id="non-numeric value"),
    pytest.param(replace_cell(ROW2, "value", "inf"), "value", "not a finite number", id="infinite value"),
    pytest.param(replace_cell(ROW2, "value", "nan"), "value", "not a finite number", id="NaN value"),
    pytest.param(replace_cell(ROW2, "value", "-5"), "value", "must be > 0", id="negative amount"),
    pytest.param("x,vc_ai_share,2025-01-01,2025-03-31,share,71,fraction,0.05,s,q", "value", "not a fraction",
                 id="share in percent"),
    pytest.param("x,cloud_revenue,2024-10-01,2024-12-31,growth,-1.5,fraction,0.05,s,q", "value", "> -1",
                 id="growth below -100%"),
    pytest.param(replace_cell(ROW2, "sigma", "high"), "sigma", "not a number", id="non-numeric sigma"),
    pytest.param(replace_cell(ROW2, "sigma", "nan"), "sigma", "not a finite number", id="NaN sigma"),
    pytest.param(replace_cell(ROW2, "sigma", "0"), "sigma", "must be > 0", id="zero sigma"),
    pytest.param(replace_cell(ROW2, "sigma", "-0.1"), "sigma", "must be > 0", id="negative sigma"),
])
def test_a_bad_cell_is_rejected_naming_row_and_column(tmp_path, bad_row, column, message):
    path = write_targets(tmp_path, [GOOD_ROWS[0], bad_row])
    with pytest.raises(TargetFileError, match=rf"row 2 \(line 3\), column[s]? .*'{column}'.*{message}"):
        obs.read_targets(path, VOCABULARY)


def test_a_row_with_too_few_fields_is_rejected_naming_the_row(tmp_path):
    path = write_targets(tmp_path, [GOOD_ROWS[0], ROW2.rsplit(",", 2)[0]])
    with pytest.raises(TargetFileError, match=r"row 2 \(line 3\): has 8 fields, the header has 10"):
        obs.read_targets(path, VOCABULARY)


def test_rows_are_counted_without_blank_lines(tmp_path):
    path = write_targets(tmp_path, [GOOD_ROWS[0], "", replace_cell(ROW2, "sigma", "0")])
    with pytest.raises(TargetFileError, match=r"row 2 \(line 4\), column 'sigma'"):
        obs.read_targets(path, VOCABULARY)


def test_missing_columns_are_named(tmp_path):
    header = HEADER.replace(",sigma", "")
    rows = [r.replace(",0.05,", ",") for r in GOOD_ROWS]
    path = write_targets(tmp_path, rows, header=header)
    with pytest.raises(TargetFileError, match=r"header \(line 1\): missing column\(s\) 'sigma'"):
        obs.read_targets(path, VOCABULARY)


def test_a_file_with_only_a_header_is_rejected(tmp_path):
    path = write_targets(tmp_path, [])
    with pytest.raises(TargetFileError, match="no data rows"):
        obs.read_targets(path, VOCABULARY)


def test_an_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(TargetFileError, match="empty file"):
        obs.read_targets(path, VOCABULARY)


def test_a_missing_file_is_rejected_naming_it(tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(TargetFileError, match="nowhere.csv: no such file"):
        obs.read_targets(path, VOCABULARY)


def test_a_directory_is_rejected(tmp_path):
    with pytest.raises(TargetFileError, match="cannot be read"):
        obs.read_targets(tmp_path, VOCABULARY)


@pytest.mark.parametrize("content", [b"PK\x03\x04\xff\xfe\x00\x00binary", b"id,observable\x00,start\n"])
def test_a_binary_file_is_rejected(tmp_path, content):
    path = tmp_path / "targets.xlsx"
    path.write_bytes(content)
    with pytest.raises(TargetFileError, match="not a CSV text file"):
        obs.read_targets(path, VOCABULARY)


def test_a_target_file_error_is_an_invalid_input_and_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        obs.read_targets(tmp_path / "nowhere.csv", VOCABULARY)


def test_extra_columns_are_ignored(tmp_path):
    path = write_targets(tmp_path, [r + ",extra note" for r in GOOD_ROWS], header=HEADER + ",note")
    targets = obs.read_targets(path, VOCABULARY)
    assert list(targets.columns[: len(obs.COLUMNS)]) == list(obs.COLUMNS)
    assert "note" not in targets.columns
    assert targets["value"].tolist() == [3.7, 500.0]


def test_observable_names_in_the_file_follow_the_naming_rule(tmp_path):
    path = write_targets(tmp_path, [replace_cell(GOOD_ROWS[0], "observable", "Lab Revenue")])
    assert obs.read_targets(path, VOCABULARY)["observable"].tolist() == ["lab_revenue"]


# --------------------------------------------------------------------------- the shipped targets

def test_the_shipped_targets_read_cleanly():
    targets = obs.read_targets(SHIPPED_TARGETS, VOCABULARY)
    assert len(targets) > 0
    assert targets["source"].str.len().min() > 0 and targets["quote"].str.len().min() > 0


def test_only_the_articles_own_figures_reach_past_september_2025():
    targets = obs.read_targets(SHIPPED_TARGETS, VOCABULARY)
    late = targets[targets["end"] > pd.Timestamp("2025-09-30")]
    assert late["source"].str.contains("article").all(), late["id"].tolist()


def test_the_shipped_targets_can_be_observed_on_one_grid():
    targets = obs.read_targets(SHIPPED_TARGETS, VOCABULARY)
    lo, hi = obs.windows_extent(targets)
    t = grid(math.floor(lo), math.ceil(hi), 1 / 16)
    values = {name: np.full(t.size, 0.5) for name in VOCABULARY}
    predicted = obs.observe(targets, t, values)
    assert predicted.shape == (len(targets),) and np.isfinite(predicted).all()


def test_a_huge_target_file_is_refused_before_it_is_read(tmp_path):
    from aicircle.errors import TargetFileError
    from aicircle.observables import MAX_TARGET_FILE_BYTES, read_targets

    path = tmp_path / "huge.csv"
    with open(path, "wb") as f:  # a sparse file: its size is what counts
        f.truncate(MAX_TARGET_FILE_BYTES + 1)
    with pytest.raises(TargetFileError, match=r"huge.csv: 16 MiB is far more than a target file holds"):
        read_targets(path, VOCABULARY)

"""External data (issue 14): GET XLS/DIRECT DATA, CONSTANTS and LOOKUPS, read once at load.

Small spreadsheets and CSV files are written into ``tmp_path`` beside a model that reads
them; every expected value follows from the file and Vensim's rule for the method (the
peer models of ``test_conformance`` and ``test_pysd_crosscheck`` check the same readers
against Vensim's and PySD's outputs). A file that is missing or malformed is refused at
load naming the file, the sheet and the cell, and the CLI exits 2 with one line.
"""

import warnings

import numpy as np
import openpyxl  # a dependency (pyproject.toml): its absence is a failure, not a skip
import pandas as pd
import pytest

with warnings.catch_warnings():
    # chardet, imported by PySD's backend, warns about its own deprecated module path
    warnings.simplefilter("ignore", DeprecationWarning)
    import pysd

import aicircle as ac
from aicircle import cli
from conftest import write_mdl

# times 0, 2, 4 and two series: a, and b with a missing value at time 2
CSV = "time,a,b\n0,1,10\n2,3,\n4,7,30\n"


@pytest.fixture
def csv_model(tmp_path):
    (tmp_path / "series.csv").write_text(CSV, encoding="utf-8")
    return write_mdl(
        tmp_path,
        "lin := GET DIRECT DATA('series.csv', ',', 'A', 'B2') ~ ~ |",
        "back :HOLD BACKWARD: := GET DIRECT DATA('series.csv', ',', 'A', 'B2') ~ ~ |",
        "fwd :LOOK FORWARD: := GET DIRECT DATA('series.csv', ',', 'A', 'B2') ~ ~ |",
        "raw :RAW: := GET DIRECT DATA('series.csv', ',', 'A', 'B2') ~ ~ |",
        "gap := GET DIRECT DATA('series.csv', ',', 'A', 'C2') ~ ~ |",
        "total = INTEG(lin, 0) ~ ~ |",
        final_time=5, time_step=1)


@pytest.mark.filterwarnings("ignore::UserWarning")  # PySD's reader warns of the missing value it fills
def test_data_variables_follow_vensims_methods_between_and_beyond_the_series(csv_model):
    frame = ac.load(csv_model).simulate()
    # interpolated, held at the end values beyond the series (time 5)
    np.testing.assert_array_equal(frame["lin"], [1, 2, 3, 5, 7, 7])
    np.testing.assert_array_equal(frame["back"], [1, 1, 3, 3, 7, 7])
    np.testing.assert_array_equal(frame["fwd"], [1, 3, 3, 7, 7, 7])
    np.testing.assert_array_equal(frame["raw"], [1, np.nan, 3, np.nan, 7, np.nan])
    # the missing value is filled by the variable's method, as PySD does: 20 at time 2
    np.testing.assert_array_equal(frame["gap"], [10, 15, 20, 25, 30, 30])
    np.testing.assert_array_equal(frame["total"], [0, 1, 3, 6, 11, 18])  # Euler sums lin


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_data_are_read_once_when_the_model_is_loaded(csv_model):
    model = ac.load(csv_model)
    (csv_model.parent / "series.csv").write_text("time,a,b\n0,100,1\n4,100,1\n", encoding="utf-8")
    assert model.simulate()["lin"].iloc[0] == 1.0
    assert ac.load(csv_model).simulate()["lin"].iloc[0] == 100.0  # a new load reads the new file


def _workbook(path, sheet="Sheet1"):
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    ws.append(["x", 0, 1, 2])      # row 1: the lookup's x (and the data's times)
    ws.append(["y", 0, 10, 40])    # row 2: its y
    ws.append(["c", 1.5, 2.5, 3.5])  # row 3: constants
    book.save(path)


def test_constants_and_lookups_come_from_a_workbook(tmp_path):
    _workbook(tmp_path / "inputs.xlsx")
    path = write_mdl(
        tmp_path, "region: north, south, east ~ ~ |",
        "k[region] = GET XLS CONSTANTS('inputs.xlsx', 'Sheet1', 'B3') ~ ~ |",
        "one = GET XLS CONSTANTS('inputs.xlsx', 'Sheet1', 'C3') ~ ~ |",
        "curve(GET XLS LOOKUPS('inputs.xlsx', 'Sheet1', '1', 'B2')) ~ ~ |",
        "y = curve(Time / 2) ~ ~ |", "series := GET XLS DATA('inputs.xlsx', 'Sheet1', '1', 'B2') ~ ~ |",
        final_time=4, time_step=1)
    model = ac.load(path)
    frame = model.simulate()
    assert [frame[f"k[{r}]"].iloc[0] for r in ("north", "south", "east")] == [1.5, 2.5, 3.5]
    assert frame["one"].iloc[0] == 2.5
    np.testing.assert_array_equal(frame["y"], [0, 5, 10, 25, 40])  # curve at 0, 0.5, ..., 2
    np.testing.assert_array_equal(frame["series"], [0, 10, 40, 40, 40])
    # constants read from a file are parameters like any other
    assert model.parameters.loc["k[south]", "value"] == 2.5
    assert model.simulate(params={"one": 7})["one"].iloc[0] == 7


@pytest.mark.parametrize("equation, needle", [
    ("k = GET XLS CONSTANTS('absent.xlsx', 'Sheet1', 'B3')",
     r"'k' reads constants from file 'absent\.xlsx', sheet 'Sheet1', cell 'B3' and cannot: .*not found"),
    ("k = GET XLS CONSTANTS('inputs.xlsx', 'Nope', 'B3')",
     r"'k' reads constants from file 'inputs\.xlsx', sheet 'Nope', cell 'B3' and cannot: .*Nope"),
    ("k = GET XLS CONSTANTS('inputs.xlsx', 'Sheet1', 'no_such_range')",
     r"sheet 'Sheet1', cell 'no_such_range' and cannot: .*no_such_range"),
    ("k := GET XLS DATA('inputs.xlsx', 'Sheet1', '9', 'B10')",
     r"'k' reads data from file 'inputs\.xlsx', sheet 'Sheet1', cell 'B10' and cannot"),
    ("k = GET XLS CONSTANTS('model.mdl', 'Sheet1', 'B3')", r"'model\.mdl', which is not a spreadsheet"),
    ("k = GET XLS CONSTANTS('?inputs', 'Sheet1', 'B3')", r"indirect file reference '\?inputs'"),
])
def test_a_missing_or_malformed_source_is_refused_naming_file_sheet_and_cell(tmp_path, equation, needle):
    _workbook(tmp_path / "inputs.xlsx")
    path = write_mdl(tmp_path, equation + " ~ ~ |")
    with pytest.raises(ac.ModelReadError, match=needle):
        ac.load(path)


def test_a_corrupt_spreadsheet_is_refused_and_the_cli_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "inputs.xlsx").write_bytes(b"this is not a zip archive")
    path = write_mdl(tmp_path, "k = GET XLS CONSTANTS('inputs.xlsx', 'Sheet1', 'B3') ~ ~ |")
    code = cli.main(["run", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "file 'inputs.xlsx', sheet 'Sheet1', cell 'B3'" in err[0]


def test_a_data_variable_without_a_source_is_refused_by_name(tmp_path):
    # Vensim's "x :=" with no GET reads a run's data file, which aicircle does not take
    path = write_mdl(tmp_path, "x := ~ ~ |", "y = x ~ ~ |")
    with pytest.raises(ac.UnsupportedFeature, match=r"data variables in 'x'"):
        ac.load(path)


def _series_model(folder):
    return write_mdl(folder, "k = 2 ~ ~ |", "y = k * 10 ~ ~ |", "s = INTEG(k, 0) ~ ~ |",
                     "tbl([(0,0)-(10,10)],(0,0),(10,10)) ~ ~ |", "z = tbl(Time) ~ ~ |",
                     final_time=6, time_step=0.5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PySD's imports and its run() under pandas 3
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("params", [
    {"k": "series"},  # a constant given a time series (PySD: interpolated, ends held)
    {"tbl": "series"},  # a lookup given a new table as a Series (x as its index)
])
def test_a_time_series_or_a_lookup_table_given_as_a_param_runs_as_in_pysd(tmp_path, params):
    path = _series_model(tmp_path)
    value = pd.Series([1.0, 5.0, 2.0], index=[1.0, 3.0, 4.5])
    given = {name: value for name in params}
    ours = ac.load(path).simulate(params=given)
    theirs = pysd.read_vensim(str(path)).run(params=given)
    for column in ("k", "y", "s", "z"):
        np.testing.assert_allclose(ours[column].to_numpy(), theirs[column].to_numpy(dtype=float),
                                   rtol=1e-12)  # the same interpolation, the same Euler sums


def test_a_lookup_takes_x_y_pairs_and_the_next_run_has_its_own_table_again(tmp_path):
    model = ac.load(_series_model(tmp_path))
    np.testing.assert_array_equal(model.simulate(params={"tbl": [(0, 5), (6, -1)]})["z"].iloc[::2],
                                  [5, 4, 3, 2, 1, 0, -1])
    np.testing.assert_array_equal(model.simulate()["z"], model.simulate()["z"].index)  # no hidden state


@pytest.mark.parametrize("params, needle", [
    ({"tbl": [1, 2, 3]}, r"lookup 'tbl' takes a pandas Series .* or \(x, y\) pairs"),
    ({"tbl": [(1, 2), (1, 3)]}, r"the x values given for 'tbl' repeat 1"),
    ({"k": pd.Series([1.0, np.nan], index=[0, 1])}, r"given for 'k' must be finite"),
    ({"s": pd.Series([1.0], index=[0])}, r"'s' is a stock"),
])
def test_a_bad_series_or_table_is_refused_naming_it(tmp_path, params, needle):
    with pytest.raises(ac.InvalidInput, match=needle):
        ac.load(_series_model(tmp_path)).simulate(params=params)

"""The ``aicircle`` command line (docs/design.md §5): exit codes, one-line errors, outputs.

Every test runs the command as a subprocess, ``python -m aicircle ...``, in
``tmp_path``, on small models the test writes there; the shipped model is used
only where the contract is about it (scenarios, loops, shipped calibration).
"""

import csv
import io
import json
import math
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from aicircle import calibrate as cal
from aicircle.study.observables import OBSERVABLES as VOCABULARY
from conftest import mdl_text

# every test starts a process that imports aicircle: about a second each
pytestmark = pytest.mark.slow

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "aicircle.mdl"
SHIPPED_TARGETS = Path(__file__).resolve().parent.parent / "calibration" / "targets.csv"
SHIPPED_PARAMETERS = Path(__file__).resolve().parent.parent / "calibration" / "results" / "parameters.csv"


# x' = g x: Euler at TIME STEP 0.25 gives x(t) = (1 + g/4)^(4t) exactly; h touches only y.
GROWTH_MDL = mdl_text("""
x = INTEG(g * x, 1)
	~	widgets
	~	The stock; loop R1 makes it grow.
	|
g = 0.1
	~	1/Year [0, 0.5]
	~	Growth rate.
	|
h = 2
	~	dmnl [1, 3]
	~	Has no effect on x.
	|
y = x * h
	~	widgets
	~	An auxiliary.
	|
""", initial_time=0, final_time=10, time_step=0.25, saveper=1)

# Logistic growth whose variables define two docs/design.md §3 observables.
LOGISTIC_MDL = mdl_text("""
Users Stock = INTEG(Lab Revenue, x0)
	~	million
	~	The stock; loop R1 through revenue, loop B1 through the ceiling.
	|
Lab Revenue = r * Users Stock * (1 - Users Stock / K)
	~	$B/Year
	~	A flow observable.
	|
Lab Users = Users Stock
	~	million
	~	A level observable.
	|
r = 0.5
	~	1/Year [0.1, 2]
	~	Growth rate.
	|
K = 300
	~	million [100, 2000]
	~	Ceiling.
	|
x0 = 10
	~	million
	~	Initial users.
	|
""", initial_time=2020, final_time=2027, time_step=0.0625, saveper=0.25)

SIR_MDL = mdl_text("""
Susceptible = INTEG(-infection, 990)
	~	people
	~	Who can still fall ill.
	|
Infected = INTEG(infection - recovery, 10)
	~	people
	~	Who are ill.
	|
Recovered = INTEG(recovery, 0)
	~	people
	~	Who are immune.
	|
infection = contact rate * Susceptible * Infected / 1000
	~	people/Day
	~	New cases.
	|
recovery = Infected / duration
	~	people/Day
	~	Recoveries.
	|
contact rate = 0.3
	~	1/Day [0, 1]
	~	Contacts that infect.
	|
duration = 5
	~	Day [1, 20]
	~	Days ill.
	|
""", initial_time=0, final_time=100, time_step=0.125, saveper=1)

SUBSCRIPTED_MDL = mdl_text("""
Region: north, south
	~~|
pop[Region] = 1, 2
	~	people
	~	A subscripted constant.
	|
""", initial_time=0, final_time=10, time_step=1, saveper=1)

# x' = x^2, x(0) = 1 blows up at t = 1: an adaptive solver must give up.
BLOWUP_MDL = mdl_text("""
x = INTEG(x ^ 2, 1)
	~	dmnl
	~	Finite-time blow-up.
	|
""", initial_time=0, final_time=2, time_step=0.125, saveper=0.25)

GROWTH_XMILE = """<?xml version="1.0" encoding="utf-8"?>
<xmile version="1.0" xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0">
  <header><vendor>test</vendor><product version="1">test</product></header>
  <sim_specs method="Euler" time_units="Year"><start>0</start><stop>10</stop><dt>0.25</dt></sim_specs>
  <model><variables>
    <stock name="x"><eqn>1</eqn><inflow>growth</inflow></stock>
    <flow name="growth"><eqn>g * x</eqn></flow>
    <aux name="g"><eqn>0.1</eqn></aux>
    <aux name="h"><eqn>2</eqn></aux>
  </variables></model>
</xmile>
"""

TARGET_COLUMNS = ["id", "observable", "start", "end", "aggregation", "value", "unit", "sigma",
                  "source", "quote"]

# Targets for LOGISTIC_MDL, deliberately far from its output (a poor fit is not an error).
TARGET_ROWS = [
    {"id": "users_2022", "observable": "lab_users", "start": "2022-12-31", "end": "2022-12-31",
     "aggregation": "level", "value": "900", "unit": "million", "sigma": "0.1"},
    {"id": "rev_2023", "observable": "lab_revenue", "start": "2023-01-01", "end": "2023-12-31",
     "aggregation": "total", "value": "5", "unit": "$B", "sigma": "0.1"},
    {"id": "rev_growth_2024", "observable": "lab_revenue", "start": "2024-01-01",
     "end": "2024-12-31", "aggregation": "growth", "value": "0.9", "unit": "fraction",
     "sigma": "0.05"},
    {"id": "rev_h1_2025", "observable": "Lab Revenue", "start": "2025-01-01", "end": "2025-06-30",
     "aggregation": "mean", "value": "40", "unit": "$B/Year", "sigma": "0.2"},
]


def write_targets(path, rows, columns=TARGET_COLUMNS):
    """Write a docs/design.md §3 target file; cells missing from a row get a filler text."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            full = {"source": "a test", "quote": "made up", **row}
            writer.writerow([full[c] for c in columns])
    return path


def aicircle(cwd, *args, timeout=300):
    """Run ``python -m aicircle ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "aicircle", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc, code, needle):
    """Exit ``code`` and exactly one stderr line ``aicircle: error: ...`` matching ``needle``."""
    lines = proc.stderr.splitlines()
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("aicircle: error: "), lines[0]
    assert "Traceback" not in proc.stderr
    assert re.search(needle, lines[0]), f"{needle!r} not in {lines[0]!r}"


@pytest.fixture
def work(tmp_path):
    """A folder with small models, broken model files and a target file."""
    (tmp_path / "growth.mdl").write_text(GROWTH_MDL, encoding="utf-8")
    (tmp_path / "logistic.mdl").write_text(LOGISTIC_MDL, encoding="utf-8")
    (tmp_path / "blowup.mdl").write_text(BLOWUP_MDL, encoding="utf-8")
    (tmp_path / "subscripted.mdl").write_text(SUBSCRIPTED_MDL, encoding="utf-8")
    (tmp_path / "garbage.mdl").write_text("this is { not ~ a model | at all\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text(GROWTH_MDL, encoding="utf-8")
    (tmp_path / "truncated.mdl").write_text(SIR_MDL[: len(SIR_MDL) // 2], encoding="utf-8")
    (tmp_path / "malformed.xmile").write_text(
        '<?xml version="1.0"?>\n<xmile version="1.0" xmlns="http://docs.oasis-open.org/xmile/ns/'
        'XMILE/v1.0"><model><variables><stock name="x"><eqn>1</eqn></model></xmile>\n',
        encoding="utf-8")
    (tmp_path / "growth.xmile").write_text(GROWTH_XMILE, encoding="utf-8")
    (tmp_path / "unclosed.xmile").write_text(
        GROWTH_XMILE.replace("<eqn>0.1</eqn></aux>", "<eqn>0.1</eqn>"), encoding="utf-8")
    (tmp_path / "truncated.xmile").write_text(GROWTH_XMILE[: GROWTH_XMILE.index("</variables>")],
                                              encoding="utf-8")
    write_targets(tmp_path / "targets.csv", TARGET_ROWS)
    return tmp_path


# --------------------------------------------------------------------------- bad input: exit 2

# PySD parses XMILE with lxml's recover=True: without aicircle's own strict check, a file that
# is not well-formed XML would load with parts silently missing (h when g's </aux> is missing).
BAD_INPUT = [
    pytest.param(["run", "missing.mdl"], r"missing\.mdl", id="missing-model"),
    pytest.param(["run", "garbage.mdl"], r"garbage\.mdl", id="text-garbage-as-mdl"),
    pytest.param(["run", "notes.txt"], r"notes\.txt", id="txt-file"),
    pytest.param(["run", "truncated.mdl"], r"truncated\.mdl", id="truncated-model"),
    pytest.param(["run", "malformed.xmile"], r"malformed\.xmile", id="malformed-xml"),
    pytest.param(["run", "unclosed.xmile"], r"unclosed\.xmile.*XML", id="xml-unclosed-tag"),
    pytest.param(["run", "truncated.xmile"], r"truncated\.xmile.*XML", id="xml-truncated"),
    pytest.param(["export-xmile", "subscripted.mdl", "-o", "subscripted.xmile"], r"subscripted\.mdl.*subscripts",
                 id="subscripted-model-to-xmile"),
    pytest.param(["run", "growth.mdl", "--set", "gg=1"], r"'gg'", id="unknown-parameter"),
    pytest.param(["run", "growth.mdl", "--set", "g"], r"NAME=VALUE.*'g'", id="set-without-value"),
    pytest.param(["run", "growth.mdl", "--set", "g="], r"\bg\b.*no value", id="set-empty-value"),
    pytest.param(["run", "growth.mdl", "--set", "g=abc"], r"'abc'", id="set-not-a-number"),
    pytest.param(["run", "growth.mdl", "--set", "g=nan"], r"'nan'.*finite", id="set-nan"),
    pytest.param(["run", "growth.mdl", "--set", "g=inf"], r"'inf'.*finite", id="set-inf"),
    pytest.param(["run", "growth.mdl", "--solver", "rk99"], r"'rk99'", id="unknown-solver"),
    pytest.param(["run", "growth.mdl", "--final-time", "soon"], r"'soon'",
                 id="final-time-not-a-number"),
    pytest.param(["run", "growth.mdl", "--out", "nowhere/out.csv"], r"nowhere",
                 id="out-folder-missing"),
    pytest.param(["fly", "growth.mdl"], r"'fly'", id="unknown-command"),
    pytest.param([], r"no command", id="no-command"),
    pytest.param(["sensitivity", "growth.mdl", "--method", "oat", "--output", "x",
                  "--bounds", "g=0.3:0.1"], r"\bg\b.*LO < HI", id="sensitivity-bounds-reversed"),
    pytest.param(["sensitivity", "growth.mdl", "--method", "oat", "--output", "x",
                  "--bounds", "g=0.2:0.2"], r"\bg\b.*LO < HI", id="sensitivity-bounds-equal"),
    pytest.param(["sensitivity", "growth.mdl", "--method", "oat", "--output", "x",
                  "--bounds", "gg=0:1"], r"'gg'", id="sensitivity-bounds-unknown-parameter"),
    pytest.param(["sensitivity", "growth.mdl", "--method", "oat", "--output", "nothing"],
                 r"'nothing'", id="sensitivity-unknown-output"),
    pytest.param(["sensitivity", "growth.mdl", "--method", "fast", "--output", "x"], r"'fast'",
                 id="sensitivity-unknown-method"),
    pytest.param(["sensitivity", "growth.mdl", "--method", "sobol", "--output", "x", "--n", "4"],
                 r"--n 4\b.*sobol", id="sobol-n-too-small"),
    pytest.param(["sensitivity", "growth.mdl", "--method", "morris", "--output", "x", "--n", "1"],
                 r"--n 1\b.*morris", id="morris-n-too-small"),
    pytest.param(["tipping", "growth.mdl", "--param", "g", "--range", "0.3", "0.1"],
                 r"LO < HI.*0\.3", id="tipping-range-reversed"),
    pytest.param(["tipping", "growth.mdl", "--param", "g", "--range", "0.2", "0.2"],
                 r"LO < HI.*0\.2", id="tipping-range-equal"),
    pytest.param(["tipping", "growth.mdl", "--param", "g", "--range", "0", "inf"], r"'inf'",
                 id="tipping-range-infinite"),
    pytest.param(["tipping", "growth.mdl", "--param", "gg", "--range", "0.1", "0.3"], r"'gg'",
                 id="tipping-unknown-param"),
    pytest.param(["tipping", "growth.mdl", "--param", "g", "--range", "0.1", "0.3",
                  "--outcome", "x=3"], r"'x=3'", id="tipping-outcome-without-operator"),
    pytest.param(["tipping", "growth.mdl", "--param", "g", "--range", "0.1", "0.3",
                  "--outcome", "x<abc"], r"'abc'", id="tipping-outcome-not-a-number"),
    pytest.param(["tipping", "growth.mdl", "--param", "g", "--range", "0.1", "0.3",
                  "--outcome", "zz<3"], r"'zz'", id="tipping-outcome-unknown-variable"),
    pytest.param(["validate", "logistic.mdl", "--targets", "nope.csv"], r"nope\.csv",
                 id="validate-missing-targets"),
    pytest.param(["validate", "logistic.mdl", "--targets", "targets.csv", "--params", "nope.csv"],
                 r"nope\.csv", id="validate-missing-params"),
    pytest.param(["calibrate", "logistic.mdl", "--targets", "targets.csv", "--free", "x0",
                  "--quick", "--out", "results"], r"'x0'.*range",
                 id="calibrate-parameter-without-range"),
    pytest.param(["export-xmile", "missing.mdl"], r"missing\.mdl", id="export-xmile-missing-model"),
]


@pytest.mark.parametrize("args, needle", BAD_INPUT)
def test_bad_input_exits_2_with_one_line_naming_the_problem(work, args, needle):
    assert_one_line_error(aicircle(work, *args), 2, needle)


def test_a_subscripted_model_runs_with_one_column_per_element(work):
    done = aicircle(work, "run", "subscripted.mdl", "--out", "sub.csv")
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(work / "sub.csv", index_col="time")
    np.testing.assert_array_equal(df["pop[north]"], 1)
    np.testing.assert_array_equal(df["pop[south]"], 2)


def test_a_well_formed_xmile_model_runs(work):
    # the model the malformed-XML cases above break
    proc = aicircle(work, "run", "growth.xmile", "--out", "out.csv")
    assert proc.returncode == 0, proc.stderr
    x = pd.read_csv(work / "out.csv", index_col="time")["x"]
    assert x.iloc[-1] == pytest.approx((1 + 0.1 / 4) ** 40, rel=1e-12)  # Euler, TIME STEP 1/4


def test_unknown_scenario_on_the_shipped_model_exits_2_naming_it(tmp_path):
    proc = aicircle(tmp_path, "run", "--scenario", "nope", "--final-time", "2026")
    assert_one_line_error(proc, 2, r"'nope'")


def test_validate_rejects_params_naming_an_unknown_parameter(work):
    (work / "params.csv").write_text("name,value\nr,0.6\nwarp factor,9\n", encoding="utf-8")
    proc = aicircle(work, "validate", "logistic.mdl", "--targets", "targets.csv",
                    "--params", "params.csv")
    assert_one_line_error(proc, 2, r"'warp factor'")


def _replace(row, column, value):
    return lambda rows: [dict(r, **{column: value}) if i == row else r for i, r in enumerate(rows)]


# Each case of docs/design.md §3's rejection list. Rows are 1-based data rows; the changed row is row 2.
BAD_TARGETS = [
    ("unknown-observable", _replace(1, "observable", "lab_revnue"), TARGET_COLUMNS,
     r"row 2\b.*column 'observable'.*lab_revnue"),
    ("aggregation-does-not-fit-a-level", _replace(0, "aggregation", "total"), TARGET_COLUMNS,
     r"row 1\b.*column 'aggregation'"),
    ("share-of-a-flow", _replace(1, "aggregation", "share"), TARGET_COLUMNS,
     r"row 2\b.*column 'aggregation'"),
    ("unit-does-not-match", _replace(1, "unit", "$B/Year"), TARGET_COLUMNS,
     r"row 2\b.*column 'unit'"),
    ("unknown-unit", _replace(1, "unit", "EUR"), TARGET_COLUMNS, r"row 2\b.*column 'unit'.*EUR"),
    ("malformed-start-date", _replace(1, "start", "2023/01/01"), TARGET_COLUMNS,
     r"row 2\b.*column 'start'.*2023/01/01"),
    ("impossible-end-date", _replace(1, "end", "2023-02-30"), TARGET_COLUMNS,
     r"row 2\b.*column 'end'.*2023-02-30"),
    ("start-after-end", _replace(1, "start", "2024-01-01"), TARGET_COLUMNS,
     r"row 2\b.*'start'.*'end'"),
    ("non-numeric-value", _replace(1, "value", "five"), TARGET_COLUMNS,
     r"row 2\b.*column 'value'.*five"),
    ("non-numeric-sigma", _replace(1, "sigma", "ten percent"), TARGET_COLUMNS,
     r"row 2\b.*column 'sigma'.*ten percent"),
    ("sigma-not-positive", _replace(1, "sigma", "0"), TARGET_COLUMNS, r"row 2\b.*column 'sigma'"),
    ("duplicate-id", _replace(1, "id", "users_2022"), TARGET_COLUMNS,
     r"row 2\b.*column 'id'.*users_2022"),
    ("bare-number-id", _replace(1, "id", "2023"), TARGET_COLUMNS, r"row 2\b.*column 'id'.*2023"),
    ("missing-column", lambda rows: rows, [c for c in TARGET_COLUMNS if c != "sigma"],
     r"missing column.*'sigma'"),
    ("no-rows", lambda rows: [], TARGET_COLUMNS, r"bad\.csv.*no data rows"),
]


@pytest.mark.parametrize("mutate, columns, needle", [c[1:] for c in BAD_TARGETS],
                         ids=[c[0] for c in BAD_TARGETS])
def test_validate_rejects_a_bad_target_file_naming_row_and_column(work, mutate, columns, needle):
    write_targets(work / "bad.csv", mutate(TARGET_ROWS), columns)
    proc = aicircle(work, "validate", "logistic.mdl", "--targets", "bad.csv")
    assert_one_line_error(proc, 2, needle)


def test_debug_shows_the_traceback_and_still_ends_with_the_error_line(work):
    proc = aicircle(work, "--debug", "run", "missing.mdl")
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("aicircle: error: ")


# --------------------------------------------------------------------------- failure: exit 1

def test_solver_giving_up_exits_1_with_one_line(work):
    proc = aicircle(work, "run", "blowup.mdl", "--solver", "rk45")
    assert_one_line_error(proc, 1, r"blowup\.mdl.*rk45")


# --------------------------------------------------------------------------- success

def test_version_prints_the_package_version(tmp_path):
    proc = aicircle(tmp_path, "--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"aicircle {ac.__version__}"


def test_run_writes_a_time_indexed_csv_equal_to_simulate(work):
    proc = aicircle(work, "run", "growth.mdl", "--set", "g=0.2", "--out", "out.csv")
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(work / "out.csv", index_col=0)
    expected = ac.load(work / "growth.mdl").simulate(params={"g": 0.2})
    assert written.index.name == "time"
    # pandas writes floats with repr, which reads back to the same double: exact
    pd.testing.assert_frame_equal(written, expected, check_exact=True)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((work / "out.csv").stat().st_mode) == 0o666 & ~umask  # as open() makes it


def test_run_without_out_writes_the_csv_to_stdout(work):
    proc = aicircle(work, "run", "growth.mdl")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    written = pd.read_csv(io.StringIO(proc.stdout), index_col="time")
    expected = ac.load(work / "growth.mdl").simulate()
    pd.testing.assert_frame_equal(written, expected, check_exact=True)
    # Euler at TIME STEP 1/4 compounds g/4 forty times by t = 10
    assert written.loc[10.0, "x"] == pytest.approx((1 + 0.1 / 4) ** 40, rel=1e-12)


def test_run_with_rk45_follows_the_exponential(work):
    proc = aicircle(work, "run", "growth.mdl", "--solver", "RK45", "--set", "g=0.3")
    assert proc.returncode == 0, proc.stderr
    x = pd.read_csv(io.StringIO(proc.stdout), index_col="time")["x"]
    # rtol 1e-6 per step (the default) over 10 years of growth stays within 1e-5 of exp(g t)
    np.testing.assert_allclose(x.to_numpy(), np.exp(0.3 * x.index.to_numpy()), rtol=1e-5)


def test_run_final_time_shortens_the_run(work):
    proc = aicircle(work, "run", "growth.mdl", "--final-time", "3", "--out", "short.csv")
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(work / "short.csv", index_col="time")
    assert written.index.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_describe_lists_parameters_with_ranges_observables_and_loops(work):
    proc = aicircle(work, "describe", "logistic.mdl")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.split()[:1] in (["r"], ["K"])}
    # value, min, max of each parameter with a declared range
    assert [float(v) for v in rows["r"][:3]] == [0.5, 0.1, 2.0]
    assert [float(v) for v in rows["K"][:3]] == [300.0, 100.0, 2000.0]
    assert re.search(r"^\s*lab_revenue\s+Lab Revenue$", proc.stdout, re.M)
    assert re.search(r"^\s*lab_users\s+Lab Users$", proc.stdout, re.M)
    assert re.search(r"^\s*R1: Users Stock$", proc.stdout, re.M)
    assert re.search(r"^\s*B1: Users Stock$", proc.stdout, re.M)


def test_describe_the_shipped_model_lists_its_scenarios_and_loops(tmp_path):
    proc = aicircle(tmp_path, "describe")
    assert proc.returncode == 0, proc.stderr
    for scenario in ("deepseek-price-shock", "chipmaker-stops-reinvesting", "stargate-shortfall",
                     "viral-app-boost", "credit-tightening", "confidence-shock"):
        assert re.search(rf"^\s+{scenario}\s", proc.stdout, re.M), scenario
    loops = re.findall(r"^\s+([RB]\d+):", proc.stdout, re.M)
    assert {"R1", "R2", "R3", "B1", "B2", "B3", "B4", "B5"} <= set(loops)


def test_loops_lists_the_loops_and_writes_their_scores_as_json(work):
    proc = aicircle(work, "loops", "logistic.mdl", "--json", "loops.json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((work / "loops.json").read_text())
    # one loop, Users Stock -> Lab Revenue -> Users Stock: reinforcing below K/2, balancing above
    [loop] = data["loops"]
    assert loop["variables"] == ["Users Stock", "Lab Revenue"] and loop["polarity"] == "R/B"
    assert loop["tag_agrees"] is None  # tagged R1 and B1: neither letter can be wrong
    assert len(data["times"]) == len(data["scores"][loop["loop"]])
    assert {"start", "end", "loop", "polarity", "share"} <= set(data["dominance"][0])
    assert re.search(r"Users Stock -> Lab Revenue", proc.stdout)
    again = aicircle(work, "loops", "logistic.mdl", "--json", "loops.json")  # its own output: replaced
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("args, needle", [
    (["loops", "logistic.mdl", "--json", "logistic.mdl"], "is the input MODEL"),
    (["loops", "logistic.mdl", "--scenario", "nope"], "unknown scenario 'nope'"),
    (["loops", "missing.mdl"], "missing.mdl"),
])
def test_loops_refuses_bad_input_with_one_line(work, args, needle):
    assert_one_line_error(aicircle(work, *args), 2, needle)


def test_export_xmile_writes_a_model_that_runs_to_the_same_results(work):
    proc = aicircle(work, "export-xmile", "logistic.mdl", "-o", "out.xmile")
    assert proc.returncode == 0, proc.stderr
    original = ac.load(work / "logistic.mdl").simulate()
    exported = ac.load(work / "out.xmile").simulate()
    # PySD's XMILE reader saves every DT (it ignores isee:save_interval, so its SAVEPER is
    # TIME STEP): compare every other column at the .mdl's SAVEPER times. Same equations, same
    # Euler steps: equal up to the exporter's number formatting.
    columns = [c for c in original.columns if c != "SAVEPER"]
    pd.testing.assert_frame_equal(exported.loc[original.index, columns], original[columns],
                                  rtol=1e-12)


def test_export_xmile_writes_beside_the_model_by_default(work):
    proc = aicircle(work, "export-xmile", "logistic.mdl")
    assert proc.returncode == 0, proc.stderr
    assert (work / "logistic.xmile").is_file()


def test_export_xmile_keeps_a_hand_written_xmile_beside_the_model_without_force(work):
    # the work folder already holds growth.xmile, a model the user wrote: not aicircle's
    before = (work / "growth.xmile").read_text()
    proc = aicircle(work, "export-xmile", "growth.mdl")
    assert_one_line_error(proc, 2, r"growth\.xmile exists and was not written by aicircle; use --force")
    assert (work / "growth.xmile").read_text() == before
    proc = aicircle(work, "export-xmile", "growth.mdl", "--force")
    assert proc.returncode == 0, proc.stderr
    assert "<vendor>aicircle</vendor>" in (work / "growth.xmile").read_text()
    proc = aicircle(work, "export-xmile", "growth.mdl")  # now it is aicircle's own output
    assert proc.returncode == 0, proc.stderr


SENSITIVITY_KEYS = {"oat": {"low", "high"}, "morris": {"mu_star", "sigma", "mu_star_conf"},
                    "sobol": {"S1", "ST", "S1_conf", "ST_conf"}}


@pytest.mark.parametrize("method, n", [("oat", None), ("morris", 8), ("sobol", 32)])
def test_sensitivity_json_follows_the_contract(work, method, n):
    args = ["sensitivity", "growth.mdl", "--method", method, "--output", "X", "--seed", "3",
            "--json", "s.json", "-q"]
    proc = aicircle(work, *args, *(["--n", n] if n else []))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((work / "s.json").read_text())
    assert set(data) == {"method", "output", "at", "n", "seed", "indices"}
    assert (data["method"], data["output"], data["at"], data["seed"]) == (method, "x", 10.0, 3)
    if n:
        assert data["n"] == n
    # every parameter with a finite declared range varies
    assert set(data["indices"]) == {"g", "h"}
    for name, values in data["indices"].items():
        assert set(values) == SENSITIVITY_KEYS[method], name
        assert all(math.isfinite(v) for v in values.values()), name
    h = data["indices"]["h"]  # h does not reach x: no effect, exactly
    if method == "oat":
        g = data["indices"]["g"]
        # Euler at TIME STEP 1/4 to t = 10: x = (1 + g/4)^40
        assert g["low"] == pytest.approx(1.0, rel=1e-12)
        assert g["high"] == pytest.approx((1 + 0.5 / 4) ** 40, rel=1e-12)
        assert h["low"] == h["high"]
    elif method == "morris":
        assert h["mu_star"] == 0 and data["indices"]["g"]["mu_star"] > 0
    else:
        assert h["ST"] == 0 and data["indices"]["g"]["ST"] > 0


def test_validate_json_has_one_object_per_target_in_file_order_even_for_a_poor_fit(work):
    proc = aicircle(work, "validate", "logistic.mdl", "--targets", "targets.csv", "--json", "v.json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((work / "v.json").read_text())
    assert [r["id"] for r in rows] == [t["id"] for t in TARGET_ROWS]
    assert [r["observable"] for r in rows] == ["lab_users", "lab_revenue", "lab_revenue",
                                               "lab_revenue"]
    expected = cal.validate(ac.load(work / "logistic.mdl"), work / "targets.csv", vocabulary=VOCABULARY)
    for row, exp in zip(rows, expected.to_dict("records")):
        assert row["value"] == exp["value"]
        # the same computation in another process
        assert row["predicted"] == pytest.approx(exp["predicted"], rel=1e-12)
        if row["id"] == "rev_growth_2024":  # growth: an absolute error (docs/design.md §3)
            assert row["abs_error"] == pytest.approx(row["predicted"] - row["value"], rel=1e-12)
        else:
            assert row["log_error"] == pytest.approx(math.log(row["predicted"] / row["value"]),
                                                     rel=1e-12)
    # the fit is poor on purpose: some target is off by more than 2 sigma
    assert max(abs(r["residual"]) for r in rows) > 2


def test_validate_uses_the_params_file(work):
    (work / "params.csv").write_text("name,value\nr,0.9\nK,800\n", encoding="utf-8")
    proc = aicircle(work, "validate", "logistic.mdl", "--targets", "targets.csv",
                    "--params", "params.csv", "--json", "v.json")
    assert proc.returncode == 0, proc.stderr
    predicted = [r["predicted"] for r in json.loads((work / "v.json").read_text())]
    expected = cal.validate(ac.load(work / "logistic.mdl"), work / "targets.csv",
                            {"r": 0.9, "K": 800.0}, vocabulary=VOCABULARY)
    np.testing.assert_allclose(predicted, expected["predicted"], rtol=1e-12)  # same computation


def test_calibrate_writes_parameters_that_validate_reads(work):
    proc = aicircle(work, "calibrate", "logistic.mdl", "--targets", "targets.csv", "--free", "r",
                    "--free", "K", "--quick", "--seed", "4", "--out", "results", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # -q: no progress, no summary
    info = json.loads((work / "results" / "fit.json").read_text())
    assert info["seed"] == 4 and info["free"] == ["r", "K"]
    proc = aicircle(work, "validate", "logistic.mdl", "--targets", "targets.csv",
                    "--params", Path("results") / "parameters.csv", "--json", "v.json")
    assert proc.returncode == 0, proc.stderr
    predicted = [r["predicted"] for r in json.loads((work / "v.json").read_text())]
    params = cal.read_parameters(work / "results" / "parameters.csv")
    expected = cal.validate(ac.load(work / "logistic.mdl"), work / "targets.csv", params, vocabulary=VOCABULARY)
    np.testing.assert_allclose(predicted, expected["predicted"], rtol=1e-12)  # same computation


def test_validate_the_shipped_model_with_the_shipped_targets(tmp_path):
    proc = aicircle(tmp_path, "validate", "--targets", SHIPPED_TARGETS, "--json", "v.json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "v.json").read_text())
    targets = pd.read_csv(SHIPPED_TARGETS)
    assert [r["id"] for r in rows] == targets["id"].tolist()
    # without --params: the shipped calibration when there is one, else the model's own values
    model = ac.load(SHIPPED_MODEL)
    params = cal.read_parameters(SHIPPED_PARAMETERS) if SHIPPED_PARAMETERS.exists() else {}
    params = {k: v for k, v in params.items() if _defines(model, k)}  # as the command does
    expected = cal.validate(model, SHIPPED_TARGETS, params, vocabulary=VOCABULARY)
    np.testing.assert_allclose([r["predicted"] for r in rows], expected["predicted"], rtol=1e-12)
    # the summary line: chi2 and the count within 2 sigma, as the calibration recorded them
    z = expected["residual"].to_numpy()
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary == (f"chi2 = {np.sum(z * z):.4g} over {len(z)} targets (residual = error / sigma); "
                       f"{int(np.sum(np.abs(z) <= 2))} of {len(z)} within 2 sigma")
    fit = SHIPPED_PARAMETERS.parent / "fit.json"
    if fit.exists() and SHIPPED_PARAMETERS.exists():
        stats = json.loads(fit.read_text())["statistics"]
        # parameters.csv holds the values as written (rounded), fit.json the optimiser's own: 1e-5 apart
        assert np.sum(z * z) == pytest.approx(stats["chi2_targets"], rel=1e-4)
        assert np.mean(np.abs(z) <= 2) == pytest.approx(stats["within_2sigma"])


def _defines(model, name):
    try:
        model.resolve(name)
    except ac.UnknownName:
        return False
    return True


# --------------------------------------------------------------------------- which values a run starts from


def test_run_starts_from_a_params_file_and_says_so(work):
    (work / "p.csv").write_text("name,value\ng,0.2\n")
    proc = aicircle(work, "run", "growth.mdl", "--params", "p.csv", "--out", "out.csv")
    assert proc.returncode == 0, proc.stderr
    assert "used the parameter values of p.csv" in proc.stderr
    written = pd.read_csv(work / "out.csv", index_col=0)
    expected = ac.load(work / "growth.mdl").simulate(params={"g": 0.2})
    pd.testing.assert_frame_equal(written, expected, check_exact=True)


def test_run_set_overrides_the_params_file(work):
    (work / "p.csv").write_text("name,value\ng,0.2\n")
    proc = aicircle(work, "run", "growth.mdl", "--params", "p.csv", "--set", "g=0.3", "--out", "out.csv")
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(work / "out.csv", index_col=0)
    assert written["x"].iloc[-1] == pytest.approx(ac.load(work / "growth.mdl").simulate(
        params={"g": 0.3})["x"].iloc[-1], rel=1e-12)


def test_run_of_the_shipped_model_uses_its_calibration_unless_told_otherwise(tmp_path):
    calibrated = aicircle(tmp_path, "run", "--out", "c.csv")
    assert calibrated.returncode == 0, calibrated.stderr
    assert "used the shipped calibration" in calibrated.stderr
    raw = aicircle(tmp_path, "run", "--uncalibrated", "--out", "u.csv")
    assert "used the values in aicircle.mdl" in raw.stderr
    params = {k: v for k, v in cal.read_parameters(SHIPPED_PARAMETERS).items()}
    model = ac.load(SHIPPED_MODEL)
    expected = model.simulate(params={k: v for k, v in params.items() if k in model.parameters.index})
    c = pd.read_csv(tmp_path / "c.csv", index_col=0)
    u = pd.read_csv(tmp_path / "u.csv", index_col=0)
    assert c["Lab Revenue"].to_numpy() == pytest.approx(expected["Lab Revenue"].to_numpy(), rel=1e-12)
    assert not np.allclose(c["Lab Revenue"], u["Lab Revenue"])


def test_params_and_uncalibrated_together_are_bad_input(work):
    (work / "p.csv").write_text("name,value\ng,0.2\n")
    proc = aicircle(work, "run", "growth.mdl", "--params", "p.csv", "--uncalibrated")
    assert_one_line_error(proc, 2, "--params and --uncalibrated exclude each other")


def test_tipping_judges_the_outcome_at_each_horizon_given(work):
    # x = e^(g t): x > 2 at t = 5 needs g > ln2/5 = 0.1386, at t = 10 g > ln2/10 = 0.0693
    proc = aicircle(work, "tipping", "growth.mdl", "--param", "g", "--range", "0", "0.5", "--outcome", "x>2",
                    "--horizon", "5", "--horizon", "10", "--json", "t.json")
    assert proc.returncode == 0, proc.stderr
    found = {th["horizon"]: th["value"] for th in json.loads((work / "t.json").read_text())["thresholds"]}
    # Euler at dt 0.25 grows by (1 + g/4) per step: solve (1 + g/4)^(4t) = 2
    assert found[5.0] == pytest.approx(4 * (2 ** (1 / 20) - 1), abs=1e-4)
    assert found[10.0] == pytest.approx(4 * (2 ** (1 / 40) - 1), abs=1e-4)


def test_tipping_horizon_outside_the_run_is_bad_input(work):
    proc = aicircle(work, "tipping", "growth.mdl", "--param", "g", "--range", "0", "0.5", "--outcome", "x>2",
                    "--horizon", "50")
    assert_one_line_error(proc, 2, r"--horizon 50 is outside the model's run \(0 to 10\)")


def test_tipping_classifier_on_a_model_without_the_studys_variables_is_bad_input(work):
    # the capital-circle classifier reads the study's variables: accepting it on another model found nothing
    proc = aicircle(work, "tipping", "growth.mdl", "--param", "g", "--range", "0", "0.5", "--classifier", "economic")
    assert_one_line_error(proc, 2, r"--classifier economic reads the capital-circle study's variables, which "
                                   r"growth.mdl does not define .*give --outcome")


def test_tipping_outcome_and_classifier_together_are_bad_input(work):
    proc = aicircle(work, "tipping", "growth.mdl", "--param", "g", "--range", "0", "0.5", "--outcome", "x>2",
                    "--classifier", "economic")
    assert_one_line_error(proc, 2, "give --outcome or --classifier, not both")


def test_run_writes_only_the_columns_asked_for(work):
    proc = aicircle(work, "run", "growth.mdl", "--return-columns", "y", "X", "--out", "out.csv")
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(work / "out.csv", index_col=0)
    assert list(written.columns) == ["y", "x"]  # names as the model writes them, in the order asked


def test_run_return_columns_naming_an_unknown_variable_is_bad_input(work):
    proc = aicircle(work, "run", "growth.mdl", "--return-columns", "nope")
    assert_one_line_error(proc, 2, "nope")


def test_calibrate_without_out_never_replaces_the_shipped_calibration(monkeypatch):
    from aicircle import _resources, cli

    shipped = _resources.calibration_dir()
    before = {p.name: p.stat().st_mtime_ns for p in (shipped / "results").iterdir()}
    monkeypatch.chdir(shipped.parent)  # the repository root: calibration/results is the shipped folder
    assert cli.main(["calibrate", "--quick", "-q"]) == 2
    assert {p.name: p.stat().st_mtime_ns for p in (shipped / "results").iterdir()} == before

"""Units checking (issue 14): aicircle.units, Model.check_units and ``aicircle check``.

Small models are written with conftest's helpers; each names its time unit
explicitly, since the checks of stocks, delays and STEP depend on it.
"""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import aicircle as ac
from aicircle import units
from aicircle.cli import main
from conftest import PEER, write_mdl

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "aicircle.mdl"


def findings(tmp_path, *equations, time_units="Minute"):
    return units.check(write_mdl(tmp_path, *equations, time_units=time_units))


def only(frame):
    assert len(frame) == 1, frame.to_string()
    return frame.iloc[0]


# --------------------------------------------------------------------------- unit strings

@pytest.mark.parametrize("text, dimensionality", [
    ("Dmnl", "dimensionless"),
    ("Dmnl [0,1]", "dimensionless"),
    ("dimensionless", "dimensionless"),
    ("fraction [0, 1, 0.05]", "dimensionless"),
    ("1", "dimensionless"),
    ("1/Year", "1 / [time]"),
    ("Year [0,?]", "[time]"),
    ("Year^-1", "1 / [time]"),
    ("Persons/Persons/Day", "1 / [time]"),
    ("Day/Month", "dimensionless"),  # a dimensionless ratio, but not 1: see the agreement tests
])
def test_unit_strings_parse_to_their_dimensions_ranges_ignored(text, dimensionality):
    assert str(units.parse_units(text).dimensionality) == dimensionality


@pytest.mark.parametrize("text", ["$B", "$B/(GW*Year)", "Widget^(1/2)", "million/Year", "Dollars per widget"])
def test_names_pint_does_not_know_become_base_dimensions(text):
    q = units.parse_units(text)
    assert not q.dimensionless


def test_an_empty_unit_string_declares_no_units():
    assert units.parse_units("") is None
    assert units.parse_units("  [0,1]") is None


@pytest.mark.parametrize("text", ["(Widget", "Widget)", "Widget^per", "*Widget"])
def test_a_malformed_unit_string_is_invalid_input_naming_it(text):
    with pytest.raises(ac.InvalidInput, match=f"units '{re.escape(text)}'"):
        units.parse_units(text)


@pytest.mark.parametrize("text", [None, 3, b"Widget"])
def test_units_that_are_not_a_string_are_invalid_input(text):
    with pytest.raises(ac.InvalidInput, match="units must be a string"):
        units.parse_units(text)


# --------------------------------------------------------------------------- the example

def test_litres_plus_litres_per_minute_is_reported_naming_the_variable(tmp_path):
    found = findings(tmp_path, """
        Water = 10
        \t~\tLitres
        \t~\tA volume.
        \t|
        Inflow = 2
        \t~\tLitres/Minute
        \t~\tA rate.
        \t|
        Total = Water + Inflow
        \t~\tLitres
        \t~\tA volume plus a rate: the deliberate error.
        \t|
    """)
    row = only(found)
    assert row["variable"] == "Total"
    assert (row["expected"], row["found"]) == ("Litres", "Litres/Minute")
    assert row["expression"] == "Water + Inflow"
    assert "sum" in row["problem"] and "'Inflow'" in row["problem"]


CLEAN = ("""
    Tank = INTEG(Inflow - Outflow, Initial Water)
    \t~\tLitres
    \t~\tA stock; its flows are Litres/Minute and the time unit is the Minute.
    \t|
    Initial Water = 100
    \t~\tLitres [0,?]
    \t~\t
    \t|
    Inflow = MAX(0, Target - Tank) / Adjustment Time + STEP(Extra Inflow, 5)
    \t~\tLitres/Minute
    \t~\t
    \t|
    Outflow = IF THEN ELSE(Tank > 0, Tank * Drain Fraction, 0)
    \t~\tLitres/Minute
    \t~\t
    \t|
    Drain Fraction = 0.1
    \t~\t1/Minute [0,1]
    \t~\t
    \t|
    Target = 200
    \t~\tLitre
    \t~\tThe singular spelling is the same unit.
    \t|
    Extra Inflow = 1
    \t~\tLitres/Minutes
    \t~\t
    \t|
    Adjustment Time = 4
    \t~\tMinutes
    \t~\t
    \t|
    Fullness = MIN(1, Tank / Target) * (1 - Leak Share)
    \t~\tDmnl [0,1]
    \t~\tNumbers take the units a sum needs: 1 - Leak Share.
    \t|
    Leak Share = 0.05
    \t~\tfraction
    \t~\t
    \t|
    Smoothed Inflow = SMOOTH(Inflow, Adjustment Time) + DELAY1(Outflow, Adjustment Time) - Outflow
    \t~\tLitres/Minute
    \t~\tSMOOTH and DELAY keep their input's units.
    \t|
    Pressure = Pressure Reference * (Tank / Initial Water) ^ Pressure Exponent
    \t~\tbar
    \t~\tA dimensionless base raised to a variable power.
    \t|
    Pressure Reference = 1
    \t~\tbar
    \t~\t
    \t|
    Pressure Exponent = 0.5
    \t~\tDmnl
    \t~\t
    \t|
    Wave = Pressure Reference * SIN(Time / Adjustment Time) + SQRT(Area)
    \t~\tbar
    \t~\tSQRT halves a unit's powers; SIN takes a dimensionless argument.
    \t|
    Area = 4
    \t~\tbar^2
    \t~\t
    \t|
""",)


def test_a_consistent_model_passes(tmp_path):
    found = findings(tmp_path, *CLEAN)
    assert found.empty, found.to_string()
    assert list(found.columns) == units.FINDING_COLUMNS


# --------------------------------------------------------------------------- stocks

STOCK = """
    Widgets = INTEG(Production, 0)
    \t~\tWidget
    \t~\t
    \t|
    Production = 3
    \t~\t{flow}
    \t~\t
    \t|
"""


@pytest.mark.parametrize("flow, time_units", [("Widget/Month", "Month"), ("Widgets/Months", "Months"),
                                              ("Widget/Year", "Year")])
def test_a_stock_whose_flow_is_in_its_units_per_time_unit_passes(tmp_path, flow, time_units):
    assert findings(tmp_path, STOCK.format(flow=flow), time_units=time_units).empty


@pytest.mark.parametrize("flow, time_units", [("Widget/Month", "Year"), ("Widget/Day", "Week"),
                                              ("Widget", "Month"), ("Gadget/Month", "Month")])
def test_a_stock_whose_flow_has_the_wrong_units_is_reported_naming_the_stock(tmp_path, flow, time_units):
    row = only(findings(tmp_path, STOCK.format(flow=flow), time_units=time_units))
    assert row["variable"] == "Widgets"
    assert row["expected"] == f"Widget/{time_units}"
    assert row["found"] == flow
    assert row["expression"] == "Production"
    assert f"per {time_units}" in row["problem"]


def test_a_stock_whose_initial_value_has_other_units_is_reported(tmp_path):
    row = only(findings(tmp_path, """
        Widgets = INTEG(Production, Start)
        \t~\tWidget
        \t~\t
        \t|
        Production = 3
        \t~\tWidget/Minute
        \t~\t
        \t|
        Start = 5
        \t~\tGadget
        \t~\t
        \t|
    """))
    assert (row["variable"], row["expected"], row["found"]) == ("Widgets", "Widget", "Gadget")
    assert "initial value" in row["problem"]


# --------------------------------------------------------------------------- products, quotients, functions

PRODUCT = """
    Price = 2
    \t~\t$/Widget
    \t~\t
    \t|
    Sales = 10
    \t~\tWidget/Minute
    \t~\t
    \t|
    Revenue = {expression}
    \t~\t{units}
    \t~\t
    \t|
"""


@pytest.mark.parametrize("expression, units_, found", [
    ("Price * Sales", "$/Minute", None),
    ("Sales * Price * 60", "$/Minute", None),  # a number in a product is dimensionless
    ("Price / (1 / Sales)", "$/Minute", None),
    ("Price * Sales", "$", "$/Minute"),
    ("Price / Sales", "$/Minute", "$*Minute/Widget^2"),
    ("Price * Sales * Sales", "$/Minute", "$*Widget/Minute^2"),
])
def test_products_and_quotients_combine_their_operands_units(tmp_path, expression, units_, found):
    frame = findings(tmp_path, PRODUCT.format(expression=expression, units=units_))
    if found is None:
        assert frame.empty, frame.to_string()
    else:
        row = only(frame)
        assert (row["variable"], row["expected"], row["found"]) == ("Revenue", units_, found)
        assert row["problem"] == "the equation's units differ from the variable's"


@pytest.mark.parametrize("expression, problem", [
    ("MIN(Price, Sales)", "the arguments of MIN differ"),
    ("IF THEN ELSE(Sales > 0, Price, Sales)", "the branches of IF THEN ELSE differ"),
    ("IF THEN ELSE(Sales > Price, 1, 0)", "compared quantities differ"),
    ("EXP(Sales)", "the argument of EXP must be dimensionless"),
    ("Price ^ Exponent", "a quantity with units raised to a power that is not a constant number"),
    ("(Price / Price) ^ Sales", "an exponent must be dimensionless"),
    ("SMOOTH(Price, Price)", "a smooth's time must be in the model's time unit"),
    ("STEP(Price, Sales)", "STEP's time must be in the model's time unit"),
])
def test_functions_report_arguments_whose_units_break_their_rule(tmp_path, expression, problem):
    # Revenue declares no units: only the rule its expression breaks is reported
    exponent = "Exponent = 2\n\t~\tDmnl\n\t~\t\n\t|"
    frame = findings(tmp_path, PRODUCT.format(expression=expression, units=""), exponent)
    assert any(p.startswith(problem) for p in frame["problem"]), frame.to_string()
    assert set(frame["variable"]) == {"Revenue"}


def test_a_lookup_takes_a_dimensionless_input_and_gives_its_declared_units(tmp_path):
    frame = findings(tmp_path, """
        Effect Table(
        \t[(0,0)-(2,2)],(0,0),(1,1),(2,1.5))
        \t~\tWidget/Minute
        \t~\t
        \t|
        Ratio = 1
        \t~\tDmnl
        \t~\t
        \t|
        Good = Effect Table(Ratio)
        \t~\tWidget/Minute
        \t~\t
        \t|
        Bad Input = Effect Table(Time)
        \t~\tWidget/Minute
        \t~\t
        \t|
        Bad Output = Effect Table(Ratio)
        \t~\tDmnl
        \t~\t
        \t|
    """)
    assert list(frame["variable"]) == ["Bad Input", "Bad Output"]
    assert list(frame["found"]) == ["Minute", "Widget/Minute"]


def test_variables_without_units_agree_with_anything(tmp_path):
    # Vensim reports missing units separately; a check of consistency cannot judge them
    assert findings(tmp_path, "a = 3", "b = a + Time", """
        c = b * 2
        \t~\tWidget
        \t~\t
        \t|
    """).empty


def test_unreadable_units_are_reported_naming_the_variable(tmp_path):
    row = only(findings(tmp_path, """
        x = 1
        \t~\t(Widget/Minute
        \t~\t
        \t|
    """))
    assert row["variable"] == "x" and row["found"] == "(Widget/Minute"
    assert row["problem"].startswith("unreadable units")


# --------------------------------------------------------------------------- the model and the command line

def test_model_check_units_equals_the_check_of_its_file(tmp_path):
    path = write_mdl(tmp_path, STOCK.format(flow="Widget/Year"), time_units="Month")
    pd.testing.assert_frame_equal(ac.load(path).check_units(), units.check(path))


@pytest.mark.slow  # reading the shipped model takes about 2 s
def test_the_shipped_model_has_no_units_errors():
    found = ac.load(SHIPPED_MODEL).check_units()
    assert found.empty, "\n" + found.to_string()


def test_check_command_exits_1_listing_each_finding(tmp_path, capsys):
    path = write_mdl(tmp_path, STOCK.format(flow="Widget/Year"), time_units="Month")
    assert main(["check", str(path), "--json", str(tmp_path / "units.json")]) == 1
    out, err = capsys.readouterr()
    assert "Widgets: expected Widget/Month, found Widget/Year" in out
    assert err.strip().splitlines() == [f"aicircle: error: 1 units error in {path} (listed above)"]
    data = json.loads((tmp_path / "units.json").read_text())
    assert data["model"] == str(path)
    assert [f["variable"] for f in data["findings"]] == ["Widgets"]
    # its own JSON is replaced without --force
    assert main(["check", str(path), "--json", str(tmp_path / "units.json")]) == 1


def test_check_command_exits_0_on_a_clean_model(tmp_path, capsys):
    path = write_mdl(tmp_path, *CLEAN, time_units="Minute")
    assert main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "no errors" in out and err == ""


def test_check_command_exits_2_naming_a_missing_file(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.mdl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.mdl" in err[0]


# --------------------------------------------------------------------------- peer models

PEER_MODELS = sorted(p for folder in ("tests", "samples") for p in (PEER / folder).glob("*/*")
                     if p.suffix in (".mdl", ".xmile")) if PEER.is_dir() else []


@pytest.mark.peer
@pytest.mark.skipif(not PEER.is_dir(), reason=f"the peer models are not at {PEER}")
@pytest.mark.parametrize("path", PEER_MODELS, ids=lambda p: p.relative_to(PEER).as_posix())
def test_every_peer_model_pysd_reads_is_checked(path):
    try:
        frame = units.check(path)
    except ac.ModelReadError as err:  # a model PySD's translators cannot read: named as such
        assert path.name in str(err)
        return
    assert list(frame.columns) == units.FINDING_COLUMNS
    assert frame["variable"].map(bool).all() and frame["problem"].map(bool).all()


@pytest.mark.peer
@pytest.mark.skipif(not PEER.is_dir(), reason=f"the peer models are not at {PEER}")
@pytest.mark.parametrize("model, variable, expected, found", [
    # a smoothing time declared in Meetings in a model whose time unit is the Minute
    ("tests/smooth_and_stock/test_smooth_and_stock.mdl", "Smoothed Input", "Minute", "Meetings"),
    # a population in People whose flows are People/year, in a model run in Months
    ("tests/subscript_mapping_vensim/test_subscript_mapping_vensim.mdl", "POPULATION", "People/Month",
     "People/year"),
])
def test_the_check_finds_the_peer_models_own_units_errors(model, variable, expected, found):
    frame = units.check(PEER / model)
    assert ((frame["variable"] == variable) & (frame["expected"] == expected)
            & (frame["found"] == found)).any(), frame.to_string()

"""Loading a model: the parameters table, name matching, and load errors (docs/design.md §5)."""

import math
import re

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from conftest import mdl_text, write_mdl, write_xmile

PARAMETER_MODEL = [
    "growth rate = 0.1\n\t~\t1/Year [0, 10]\n\t~\tHow fast the stock grows.\n\t|",
    "Stock = INTEG(growth rate * Stock * (1 - Stock / capacity), 1)\n\t~\tWidgets\n\t~\tThe stock.\n\t|",
    "capacity = 1000\n\t~\tWidgets [0, ?]\n\t~\tThe most the stock can hold.\n\t|",
    "table( (0,0), (1,1) )\n\t~\tDmnl\n\t~\tA lookup is not a parameter.\n\t|",
    "twice the rate = growth rate * 2\n\t~\t1/Year\n\t~\tAn auxiliary is not a parameter.\n\t|",
    "upper only = 2\n\t~\tDmnl [?, 5]\n\t~\t\n\t|",
    "undeclared = 3",
    "stepped = 5\n\t~\tDmnl [0, 10, 0.5]\n\t~\tA range with an increment.\n\t|",
    "negative = -2.5",
    "looked up = table(Time / 10)",
]


@pytest.fixture
def model(tmp_path):
    return ac.load(write_mdl(tmp_path, *PARAMETER_MODEL))


# --------------------------------------------------------------------------- parameters

def test_parameters_are_the_numeric_constants_in_file_order(model):
    assert list(model.parameters.index) == ["growth rate", "capacity", "upper only", "undeclared",
                                            "stepped", "negative"]
    assert model.parameters.index.name == "name"
    assert list(model.parameters.columns) == ["value", "units", "min", "max", "doc"]


def test_parameters_exclude_time_settings_lookups_and_auxiliaries(model):
    excluded = {"INITIAL TIME", "FINAL TIME", "TIME STEP", "SAVEPER", "table", "twice the rate",
                "looked up", "Stock"}
    assert excluded.isdisjoint(model.parameters.index)


def test_parameter_values_units_and_documentation(model):
    row = model.parameters.loc["growth rate"]
    assert row["value"] == 0.1
    assert row["units"] == "1/Year"
    assert row["doc"] == "How fast the stock grows."
    assert model.parameters.loc["negative", "value"] == -2.5
    assert model.parameters.loc["capacity", "units"] == "Widgets"


@pytest.mark.parametrize("name, low, high", [
    ("growth rate", 0.0, 10.0),
    ("capacity", 0.0, math.nan),  # [0, ?]
    ("upper only", math.nan, 5.0),  # [?, 5]
    ("undeclared", math.nan, math.nan),
    ("stepped", 0.0, 10.0),  # [0, 10, 0.5]: the increment is not a bound
])
def test_parameter_ranges_are_nan_where_undeclared(model, name, low, high):
    row = model.parameters.loc[name]
    np.testing.assert_array_equal([row["min"], row["max"]], [low, high])  # NaN equals NaN here


def test_editing_the_parameters_table_does_not_change_the_model(model):
    before = model.simulate(return_columns=["Stock"])
    model.parameters.loc["growth rate", "value"] = 5.0
    pd.testing.assert_frame_equal(model.simulate(return_columns=["Stock"]), before)


# --------------------------------------------------------------------------- names

@pytest.mark.parametrize("spelling", ["growth rate", "Growth Rate", "GROWTH_RATE", "growth__rate",
                                      "growth _ rate", " growth   rate "])
def test_names_match_ignoring_case_and_reading_spaces_and_underscores_as_one(model, spelling):
    assert model.resolve(spelling) == "growth rate"


def test_matched_names_work_everywhere_a_name_is_given(model):
    expected = model.simulate(params={"growth rate": 0.3}, initial={"Stock": 2.0},
                              return_columns=["Stock", "twice the rate"])
    got = model.simulate(params={"GROWTH_RATE": 0.3}, initial={"stock": 2.0},
                         return_columns=["STOCK", "Twice_The_Rate"])
    pd.testing.assert_frame_equal(got, expected)  # also: columns come back as the file spells them
    batch = model.simulate_batch(pd.DataFrame({"Growth_Rate": [0.3]}), initial={"stock": 2.0},
                                 return_columns=["stock"])
    np.testing.assert_array_equal(batch["Stock"].to_numpy()[0], expected["Stock"].to_numpy())


def test_unknown_name_is_refused_naming_it(model):
    with pytest.raises(ac.UnknownName, match="'growth rat'"):
        model.resolve("growth rat")


def test_variables_and_stocks_use_the_file_spelling(model):
    assert model.stocks == ("Stock",)
    assert {"growth rate", "Stock", "twice the rate", "looked up", "INITIAL TIME"} <= set(model.variables)


# --------------------------------------------------------------------------- load errors

VALID = mdl_text("x = INTEG(-k * x, 1)", "k = 0.5", saveper=1)


def test_missing_file_is_a_model_read_error_naming_it(tmp_path):
    path = tmp_path / "nowhere.mdl"
    with pytest.raises(ac.ModelReadError, match=re.escape(str(path))):
        ac.load(path)


def test_directory_is_a_model_read_error(tmp_path):
    with pytest.raises(ac.ModelReadError, match=re.escape(str(tmp_path))):
        ac.load(tmp_path)


@pytest.mark.parametrize("name, content", [
    ("garbage.mdl", "this is not a model at all {{{ ~~ ||"),
    ("empty.mdl", ""),
    ("model.txt", VALID),  # a model, but not named as one
    ("binary.mdl", b"\x00\xff\xfe\x00 not text"),
    ("broken.xmile", '<xmile xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0"><model><variables>'
                     '<aux name="a"><eqn>1</eqn></aux></variables>'),
    ("not-xmile.xmile", "<html><body>hello</body></html>"),
    ("text.xmile", "x = INTEG(1, 0)"),
], ids=["garbage", "empty", "wrong-suffix", "binary", "malformed-xml", "other-xml", "mdl-as-xmile"])
def test_file_that_is_not_a_model_is_a_model_read_error_naming_it(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ac.ModelReadError, match=re.escape(str(path))):
        ac.load(path)


@pytest.mark.parametrize("variables, refusal", [
    # what Vensim's XMILE export writes where XMILE cannot express an equation
    ('<aux name="Rate A"><eqn> ??? </eqn></aux>', "equation left as '???' in 'Rate A'"),
    # a Vensim macro's call, exported without the macro
    ('<aux name="input"><eqn>5</eqn></aux><aux name="out"><eqn>EXPRESSION MACRO(input, 2)</eqn></aux>',
     "call of 'EXPRESSION MACRO', a function the file does not define (a macro it lost), in 'out'"),
    ('<module name="hares"><connect to="area" from=".area"/></module><aux name="area"><eqn>1</eqn></aux>',
     "XMILE module in 'hares' cannot be read: the file has no <model> of that name"),
], ids=["unexpressed-equation", "lost-macro", "module-without-its-model"])
def test_xmile_file_missing_part_of_its_model_is_refused_naming_what_and_where(tmp_path, variables, refusal):
    path = write_xmile(tmp_path, variables)
    with pytest.raises(ac.ModelReadError, match=f"^{re.escape(f'{path}: {refusal}')}"):
        ac.load(path)


MODULES = """<?xml version="1.0" encoding="utf-8"?>
<xmile xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0" version="1.0">
  <header><vendor>aicircle tests</vendor><product lang="en">aicircle</product></header>
  <sim_specs method="Euler"><start>0</start><stop>4</stop><dt>1</dt></sim_specs>
  <model><variables>
    <module name="pond"><connect to="inflow_rate" from=".rain"/></module>
    <module name="sea"><connect to="inflow_rate" from="pond.over\\nflow"/></module>
    <aux name="rain"><eqn>2</eqn></aux>
  </variables></model>
  <model name="pond"><variables>
    <stock name="water"><eqn>1</eqn><inflow>fill</inflow><outflow>over_flow</outflow></stock>
    <flow name="fill"><eqn>inflow_rate</eqn></flow>
    <flow name="over\\nflow"><eqn>water / 2</eqn></flow>
    <aux name="inflow rate"><eqn>{Enter equation for use when not hooked up to other models}</eqn></aux>
  </variables></model>
  <model name="sea"><variables>
    <stock name="water"><eqn>0</eqn><inflow>fill</inflow></stock>
    <flow name="fill"><eqn>inflow_rate</eqn></flow>
    <aux name="inflow rate"><eqn>{Enter equation for use when not hooked up to other models}</eqn></aux>
  </variables></model>
</xmile>
"""


def test_xmile_modules_run_as_one_model_with_each_variable_named_module_dot_name(tmp_path):
    path = tmp_path / "modules.xmile"
    path.write_text(MODULES, encoding="utf-8")
    run = ac.load(path).simulate()
    pond = [1.0]
    for _ in range(4):  # water' = rain - water / 2, Euler at DT = 1
        pond.append(pond[-1] + 2 - pond[-1] / 2)
    np.testing.assert_allclose(run["pond.water"], pond)
    # the sea fills with the pond's overflow: a module's input from another module
    np.testing.assert_allclose(run["sea.water"], np.concatenate([[0], np.cumsum(np.array(pond[:-1]) / 2)]))
    assert run["pond.inflow rate"].eq(2).all()


def test_xmile_if_then_else_is_not_taken_for_a_lost_macro(tmp_path):
    # "IF a THEN (" looks like a call of a spaced name; the stray ")" is the real error
    path = write_xmile(tmp_path, '<aux name="a"><eqn>1</eqn></aux>'
                                 '<aux name="b"><eqn>IF a THEN (2) ELSE (3))</eqn></aux>')
    with pytest.raises(ac.ModelReadError, match=f"^{re.escape(f'{path}: not a model PySD can read')}"):
        ac.load(path)


@pytest.mark.parametrize("cut", [
    VALID.index("k = 0.5"),  # the constant k is gone
    VALID.index("-k * x") + 3,  # cut inside an equation
    VALID.index("INITIAL TIME"),  # no time settings
    VALID.index("SAVEPER"),
], ids=["lost-constant", "mid-equation", "no-time-settings", "no-saveper"])
def test_truncated_model_is_refused_naming_the_file(tmp_path, cut):
    path = tmp_path / "truncated.mdl"
    path.write_text(VALID[:cut], encoding="utf-8")
    with pytest.raises(ac.InvalidInput, match=re.escape(path.name)):
        ac.load(path)


def test_a_model_without_time_settings_says_which_is_missing(tmp_path):
    path = tmp_path / "truncated.mdl"
    path.write_text(VALID[:VALID.index("SAVEPER")], encoding="utf-8")
    with pytest.raises(ac.ModelReadError, match="does not define SAVEPER"):
        ac.load(path)


@pytest.mark.parametrize("suffix", [".mdl", ".xmile"])
def test_load_writes_nothing(tmp_path, suffix):
    if suffix == ".mdl":
        path = tmp_path / "model.mdl"
        path.write_text(VALID, encoding="utf-8")
    else:
        path = tmp_path / "model.xmile"
        path.write_text(
            '<xmile xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0" version="1.0">'
            "<header><vendor>tests</vendor><product>tests</product></header>"
            "<sim_specs><start>0</start><stop>4</stop><dt>1</dt></sim_specs><model><variables>"
            '<stock name="x"><eqn>1</eqn><inflow>f</inflow></stock><flow name="f"><eqn>x/2</eqn></flow>'
            "</variables></model></xmile>", encoding="utf-8")

    def listing():
        return sorted((p.relative_to(tmp_path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                      for p in tmp_path.rglob("*"))

    before = listing()
    model = ac.load(path)
    model.simulate()
    assert listing() == before


@pytest.mark.parametrize("as_text", [True, False])
def test_load_takes_a_string_or_a_path(tmp_path, as_text):
    path = tmp_path / "model.mdl"
    path.write_text(VALID, encoding="utf-8")
    model = ac.load(str(path) if as_text else path)
    assert model.path == path
    assert model.stocks == ("x",)

"""Untrusted model files and careless command lines (issues 11 and 16).

A model file is untrusted input: loading one must never run code it contains, expand
XML entities or read other files. Every crafted file below carries a payload that,
were it evaluated, would create a sentinel file; each test asserts that the sentinel
never appears and that the file is either refused (exit 2, one stderr line naming the
problem) or run correctly.
"""

import os
import random
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from aicircle import cli

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "aicircle.mdl"

CONTROLS = """INITIAL TIME = 0
	~	Year
	~	The initial time.
	|
FINAL TIME = 4
	~	Year
	~	The final time.
	|
TIME STEP = 1
	~	Year [0, ?]
	~	The time step.
	|
SAVEPER = 1
	~	Year [0, ?]
	~	The save interval.
	|
"""


def payload(sentinel: Path) -> str:
    """Python that creates ``sentinel`` if anything evaluates it."""
    return f"__import__('os').system('touch {sentinel}')"


def mdl(body: str) -> str:
    return "{UTF-8}\n" + body + CONTROLS


def run_cli(capsys, *args):
    """``aicircle ARGS`` in this process: (exit status, stdout, stderr lines)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def assert_refused(code, err, needle):
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("aicircle: error: "), err[0]
    assert re.search(needle, err[0]), f"{needle!r} not in {err[0]!r}"


# --------------------------------------------------------------------------
# No model text reaches eval
# --------------------------------------------------------------------------

# (case, model text with {P} for the payload, what the one error line must say)
EVAL_CASES = [
    ("with-lookup range",
     "x = INTEG(f, 1)\n\t~\tw\n\t~\t\n\t|\n"
     "f = WITH LOOKUP(Time, ([(0,0)-(10,30+0*{P})],(0,0),(10,1)))\n\t~\tw/Year\n\t~\t\n\t|\n",
     r"'f' has .*where only numbers are allowed"),
    ("named lookup range",
     "x = INTEG(tab(Time), 1)\n\t~\tw\n\t~\t\n\t|\n"
     "tab([(0,0)-(10,{P})],(0,0),(10,1))\n\t~\tdmnl\n\t~\t\n\t|\n",
     r"'tab' has .*where only numbers are allowed"),
    ("named lookup point",
     "x = INTEG(tab(Time), 1)\n\t~\tw\n\t~\t\n\t|\n"
     "tab((0,0),(10,{P}))\n\t~\tdmnl\n\t~\t\n\t|\n",
     r"not a model PySD can read"),
    ("units range",
     "x = INTEG(g, 1)\n\t~\tw\n\t~\t\n\t|\ng = 1\n\t~\tw/Year [0, {P}]\n\t~\t\n\t|\n",
     r"not a model PySD can read"),
    ("equation call",
     "x = INTEG(g, 1)\n\t~\tw\n\t~\t\n\t|\ng = {P}\n\t~\tw/Year\n\t~\t\n\t|\n",
     r"__import__|not a model PySD can read"),
    ("string argument",
     "x = INTEG(g, 1)\n\t~\tw\n\t~\t\n\t|\n"
     "g = GET XLS CONSTANTS('f.xlsx', 'S\" + {P} + \"', 'A1')\n\t~\tw/Year\n\t~\t\n\t|\n",
     r"GET|not a model PySD can read|not supported"),
    ("constant list",
     "x = INTEG(g, 1)\n\t~\tw\n\t~\t\n\t|\ng = 1 - {P}\n\t~\tw/Year\n\t~\t\n\t|\n",
     r"__import__|not a model PySD can read"),
]


@pytest.mark.parametrize("case, body, needle", EVAL_CASES, ids=[c[0] for c in EVAL_CASES])
def test_code_in_a_vensim_literal_is_refused_unevaluated(tmp_path, capsys, case, body, needle):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "m.mdl"
    path.write_text(mdl(body.replace("{P}", payload(sentinel))), encoding="utf-8")
    code, out, err = run_cli(capsys, "run", path)
    assert not sentinel.exists()
    assert_refused(code, err, needle)
    assert out == ""


def test_code_in_a_lookup_range_is_refused_by_the_api_naming_the_variable(tmp_path):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "m.mdl"
    path.write_text(mdl(EVAL_CASES[0][1].replace("{P}", payload(sentinel))), encoding="utf-8")
    with pytest.raises(ac.ModelReadError, match=r"'f' has .*refused, not evaluated"):
        ac.load(path)
    assert not sentinel.exists()


@pytest.mark.parametrize("command", ["describe", "export-xmile"])
def test_every_command_that_loads_a_model_refuses_code_in_it(tmp_path, capsys, command):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "m.mdl"
    path.write_text(mdl(EVAL_CASES[1][1].replace("{P}", payload(sentinel))), encoding="utf-8")
    code, _, err = run_cli(capsys, command, path)
    assert not sentinel.exists()
    assert_refused(code, err, r"'tab' has")
    assert not (tmp_path / "m.xmile").exists()


def test_legitimate_literals_still_read_as_pysd_reads_them(tmp_path):
    # a lookup with a range, a constant written as a sum of signed numbers (PySD's
    # array grammar lets "10 - 2 - 3" through to eval) and exponents
    path = tmp_path / "m.mdl"
    path.write_text(mdl(
        "x = INTEG(f, 0)\n\t~\tw\n\t~\t\n\t|\n"
        "f = WITH LOOKUP(Time, ([(0,0)-(10,30)],(0,0),(10,20)))\n\t~\tw/Year\n\t~\t\n\t|\n"
        "c = 10 - 2 - 3\n\t~\tw\n\t~\t\n\t|\n"
        "e = -1.5e1\n\t~\tw\n\t~\t\n\t|\n"), encoding="utf-8")
    df = ac.load(path).simulate()
    assert df["c"].iloc[0] == 5.0
    assert df["e"].iloc[0] == -15.0
    np.testing.assert_allclose(df["f"], 2.0 * df.index.to_numpy())  # 20/10 per year


# Names, units, comments and macro names that would break generated code if pasted
# into it unquoted; each must run correctly (the compiler puts no model text in code).
TRICKY_NAMES = [
    "\"a'); {P}; ('\"", '"x\\\\y"', '"{{brace}}"', '"a}b{c"', '"\\"esc"', '"$#@!"', '"a.b"',
    "café", "ｘ wide", "Α alpha", '"\'"', '"a|b"', '"a~b"', '"""', '"a\\nb"',
]


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_a_name_that_looks_like_code_runs_as_a_name(tmp_path, name):
    sentinel = tmp_path / "pwned"
    name = name.replace("{P}", payload(sentinel))
    path = tmp_path / "m.mdl"
    path.write_text(mdl(f"{name} = 2\n\t~\tu {payload(sentinel)}\n\t~\t{payload(sentinel)} \\ {{ }}\n\t|\n"
                        f"y = {name} * 3\n\t~\tu\n\t~\t\"\"\" '''\n\t|\n"), encoding="utf-8")
    try:
        model = ac.load(path)
    except ac.ModelReadError as err:  # PySD's grammar may refuse the spelling: fine
        assert "not a model PySD can read" in str(err)
    else:
        df = model.simulate()
        assert (df["y"] == 6.0).all()
        assert model.parameters["value"].iloc[0] == 2.0
    assert not sentinel.exists()


def test_random_names_from_a_hostile_alphabet_never_break_the_generated_code(tmp_path):
    # 60 names drawn (seeded) from quotes, brackets, backslashes, operators and look-alikes
    rng = random.Random(11)
    alphabet = "abc '\\{}()[]#$%&*+-/<>=@!?;:,.^`|~éÅｘΑ0123456789"
    sentinel = tmp_path / "pwned"
    for i in range(60):
        name = '"' + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) + '"'
        path = tmp_path / f"m{i}.mdl"
        path.write_text(mdl(f"{name} = {i}\n\t~\tu\n\t~\t{name}\n\t|\n"
                            f"y = {name} + 1\n\t~\tu\n\t~\t\n\t|\n"), encoding="utf-8")
        try:
            model = ac.load(path)
        except ac.ModelReadError:
            continue
        assert model.simulate()["y"].iloc[0] == i + 1, name
    assert not sentinel.exists()


def test_a_macro_with_a_quoted_name_runs_or_is_refused(tmp_path, capsys):
    sentinel = tmp_path / "pwned"
    body = (":MACRO: \"twice'x\"(input)\n\"twice'x\" = 2 * input\n\t~\tu\n\t~\t"
            f"{payload(sentinel)}\n\t|\n:END OF MACRO:\n"
            "y = \"twice'x\"(4)\n\t~\tu\n\t~\t\n\t|\n")
    path = tmp_path / "m.mdl"
    path.write_text(mdl(body), encoding="utf-8")
    code, out, err = run_cli(capsys, "run", path)
    assert not sentinel.exists()
    if code == 0:
        df = pd.read_csv(__import__("io").StringIO(out), index_col=0)
        assert (df["y"] == 8.0).all()
    else:
        assert_refused(code, err, r".")


# --------------------------------------------------------------------------
# XMILE: no entity expansion, no external entities, no code
# --------------------------------------------------------------------------

XMILE = """<?xml version="1.0" encoding="utf-8"?>
{DOCTYPE}
<xmile version="1.0" xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0">
  <header><vendor>test</vendor><product version="1">test</product></header>
  <sim_specs method="Euler" time_units="Year"><start>0</start><stop>4</stop><dt>1</dt></sim_specs>
  <model><variables>
    <stock name="x"><eqn>1</eqn><inflow>growth</inflow></stock>
    <flow name="growth"><eqn>{EQN}</eqn></flow>
    <aux name="{NAME}"><eqn>0.5</eqn><doc>{DOC}</doc></aux>
  </variables></model>
</xmile>
"""

LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                    for i in range(1, 10)) + "]>")


def xmile(doctype="", eqn="g * x", name="g", doc=""):
    return XMILE.format(DOCTYPE=doctype, EQN=eqn, NAME=name, DOC=doc)


@pytest.mark.parametrize("doctype, eqn", [
    (LAUGHS, "&amp;lol9;"),
    (LAUGHS, "g * x"),
    ('<!DOCTYPE x [<!ENTITY pw SYSTEM "file:///etc/passwd">]>', "&pw;"),
    ('<!DOCTYPE x [<!ENTITY % pe SYSTEM "file:///etc/passwd"> %pe;]>', "g * x"),
    ('<!DOCTYPE x SYSTEM "file:///etc/passwd">', "g * x"),
    ('<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">', "g * x"),
], ids=["billion-laughs-used", "billion-laughs-declared", "external-entity",
        "parameter-entity", "external-dtd", "network-dtd"])
def test_xmile_entities_and_external_dtds_are_refused(tmp_path, capsys, doctype, eqn):
    path = tmp_path / "m.xmile"
    path.write_text(xmile(doctype, eqn.replace("&amp;", "&")), encoding="utf-8")
    code, out, err = run_cli(capsys, "run", path)
    assert_refused(code, err, r"declares XML entities or an external DTD")
    assert "root:" not in out + "".join(err)  # nothing of /etc/passwd leaks


def test_xmile_api_refuses_an_external_entity(tmp_path):
    path = tmp_path / "m.xmile"
    path.write_text(xmile('<!DOCTYPE x [<!ENTITY pw SYSTEM "file:///etc/passwd">]>', "&pw;"),
                    encoding="utf-8")
    with pytest.raises(ac.ModelReadError, match="entities"):
        ac.load(path)


def test_code_in_an_xmile_equation_is_refused(tmp_path, capsys):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "m.xmile"
    path.write_text(xmile(eqn=payload(sentinel).replace("'", "&apos;")), encoding="utf-8")
    code, _, err = run_cli(capsys, "run", path)
    assert not sentinel.exists()
    assert_refused(code, err, r".")


def test_xmile_names_and_docs_that_look_like_code_run_as_text(tmp_path):
    sentinel = tmp_path / "pwned"
    doc = payload(sentinel).replace("'", "&apos;") + " {} \\ &quot;"
    path = tmp_path / "m.xmile"
    path.write_text(xmile(name="g", doc=doc), encoding="utf-8")
    df = ac.load(path).simulate()
    np.testing.assert_allclose(df["x"], 1.5 ** df.index.to_numpy())  # Euler, dt 1, x' = x/2
    assert not sentinel.exists()

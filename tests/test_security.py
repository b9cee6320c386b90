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
from conftest import mdl_text

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "aicircle.mdl"


def payload(sentinel: Path) -> str:
    """Python that creates ``sentinel`` if anything evaluates it."""
    return f"__import__('os').system('touch {sentinel}')"


def mdl(body: str) -> str:
    return mdl_text(body, final_time=4, time_step=1, saveper=1)


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


# --------------------------------------------------------------------------
# Outputs never destroy the user's files
# --------------------------------------------------------------------------

GROWTH = mdl("x = INTEG(g * x, 1)\n\t~\tw\n\t~\t\n\t|\ng = 0.5\n\t~\t1/Year [0, 1]\n\t~\t\n\t|\n")


@pytest.fixture
def work(tmp_path):
    (tmp_path / "m.mdl").write_text(GROWTH, encoding="utf-8")
    return tmp_path


def test_an_output_onto_the_model_is_refused_naming_both(work, capsys):
    before = (work / "m.mdl").read_text()
    code, _, err = run_cli(capsys, "run", work / "m.mdl", "--out", work / "m.mdl")
    assert_refused(code, err, r"--out .*m\.mdl is the input MODEL .*m\.mdl")
    assert (work / "m.mdl").read_text() == before


def test_an_output_onto_the_model_through_a_symlink_is_refused(work, capsys):
    (work / "link.csv").symlink_to(work / "m.mdl")
    code, _, err = run_cli(capsys, "run", work / "m.mdl", "--out", work / "link.csv", "--force")
    assert_refused(code, err, r"is the input MODEL")
    assert (work / "m.mdl").read_text() == GROWTH


def test_validate_json_onto_its_targets_is_refused(work, capsys):
    (work / "t.csv").write_text("id,observable\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "validate", work / "m.mdl", "--targets", work / "t.csv",
                           "--json", work / "t.csv")
    assert_refused(code, err, r"--json .*t\.csv is the input --targets")
    assert (work / "t.csv").read_text() == "id,observable\n"


@pytest.mark.parametrize("args, needle", [
    (["run", "{m}", "--out", ""], r"--out is empty"),
    (["run", "{m}", "--scenario", ""], r"--scenario is empty"),
    (["run", ""], r"MODEL is empty"),
    (["validate", "{m}", "--targets", "t.csv", "--json", ""], r"--json is empty"),
    (["calibrate", "{m}", "--before", "notadate"], r"--before: 'notadate' is not an ISO date"),
    (["calibrate", "{m}", "--seed", "-3"], r"--seed: must be 0 or more"),
    (["tipping", "{m}", "--param", "g", "--range", "0", "1", "--seed", "-1"], r"--seed"),
    (["sensitivity", "{m}", "--method", "morris", "--output", "x", "--n", "0"], r"--n: must be 1"),
    (["run", "{m}", "--set", "g=1", "--set", "G=2"], r"'g' and 'G' are the same name"),
])
def test_a_bad_argument_is_exit_2_naming_it(work, capsys, args, needle):
    code, _, err = run_cli(capsys, *[a.replace("{m}", str(work / "m.mdl")) for a in args])
    assert_refused(code, err, needle)


def test_a_foreign_file_is_replaced_only_with_force(work, capsys):
    notes = work / "notes.csv"
    notes.write_text("my precious notes\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "run", work / "m.mdl", "--out", notes)
    assert_refused(code, err, r"exists and was not written by aicircle; use --force")
    assert notes.read_text() == "my precious notes\n"
    code, _, err = run_cli(capsys, "run", work / "m.mdl", "--out", notes, "--force")
    assert code == 0, err
    assert notes.read_text().startswith("time,")


def test_aicircle_replaces_its_own_output_without_force(work, capsys):
    out = work / "run.csv"
    assert run_cli(capsys, "run", work / "m.mdl", "--out", out)[0] == 0
    code, _, err = run_cli(capsys, "run", work / "m.mdl", "--out", out, "--set", "g=0.25")
    assert code == 0, err
    assert pd.read_csv(out, index_col=0)["g"].iloc[0] == 0.25


def test_dash_means_standard_output(work, capsys):
    code, out, err = run_cli(capsys, "run", work / "m.mdl", "--out", "-")
    assert code == 0, err
    assert out.startswith("time,")
    assert not (work / "-").exists()


def test_a_symlinked_output_is_followed_and_the_link_kept(work, capsys):
    target = work / "target.csv"
    assert run_cli(capsys, "run", work / "m.mdl", "--out", target)[0] == 0
    (work / "link.csv").symlink_to(target)
    code, _, err = run_cli(capsys, "run", work / "m.mdl", "--out", work / "link.csv", "--set", "g=0.25")
    assert code == 0, err
    assert (work / "link.csv").is_symlink()
    assert pd.read_csv(target, index_col=0)["g"].iloc[0] == 0.25


def test_an_output_keeps_its_permissions(work, capsys):
    out = work / "run.csv"
    assert run_cli(capsys, "run", work / "m.mdl", "--out", out)[0] == 0
    out.chmod(0o600)
    assert run_cli(capsys, "run", work / "m.mdl", "--out", out)[0] == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.slow
def test_a_fifo_is_written_through_not_replaced(work):
    # a FIFO stands in for a device such as /dev/null: written into, never renamed over
    fifo = work / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    proc = subprocess.run([sys.executable, "-m", "aicircle", "run", str(work / "m.mdl"), "--out",
                           str(fifo)], capture_output=True, text=True, timeout=120)
    out, _ = reader.communicate(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert out.startswith("time,")


# --------------------------------------------------------------------------
# Numerics: non-finite values, huge buffers, time grids, solver false alarms
# --------------------------------------------------------------------------

BLOWUP = mdl("x = INTEG(x ^ 2, 1)\n\t~\tw\n\t~\t\n\t|\n"
             "y = 1 / (2 - Time)\n\t~\tw\n\t~\t\n\t|\n")


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_a_run_that_goes_non_finite_stops_naming_the_variable_and_time(tmp_path, solver):
    # Euler at dt 1: x = 1, 2, 6, 42, 1806, ... overflows to inf at t = 10;
    # y = 1/(2 - t) is inf at t = 2 first
    path = tmp_path / "b.mdl"
    path.write_text(BLOWUP.replace("FINAL TIME = 4", "FINAL TIME = 12"), encoding="utf-8")
    with pytest.raises(ac.IntegrationError, match=r"'y' is inf at t=2 with solver " + solver):
        ac.load(path).simulate(solver=solver)


def test_allow_nonfinite_keeps_the_run_going(tmp_path, capsys):
    path = tmp_path / "b.mdl"
    path.write_text(BLOWUP, encoding="utf-8")
    df = ac.load(path).simulate(allow_nonfinite=True)
    assert np.isinf(df.loc[2.0, "y"])
    code, _, err = run_cli(capsys, "run", path)
    assert code == 1  # not the user's input: the model diverges
    assert len(err) == 1 and "'y' is inf at t=2" in err[0]
    assert run_cli(capsys, "run", path, "--keep-nonfinite")[0] == 0


@pytest.mark.slow
def test_dop853_runs_the_shipped_model(capsys):
    # it used to stop at t=2023.33 on a non-finite rate in a trial step the solver rejects
    df = ac.load(SHIPPED_MODEL).simulate(solver="dop853", return_columns=["Lab Cash"])
    assert np.isfinite(df.to_numpy()).all()


@pytest.mark.parametrize("equation, needle", [
    ("DELAY FIXED(Time, 1e12, 0)", r"DELAY FIXED in 'z' .* about 7\.28 TiB; the limit is 2 GiB"),
    ("DELAY N(Time, 5, 0, 1000000)", r"order 1e\+06: .* GiB to compile; .*up to 1000"),
    ("SMOOTH N(Time, 5, 0, 1e6)", r"order 1e\+06"),
])
def test_a_huge_delay_is_refused_with_its_memory_estimate(tmp_path, capsys, equation, needle):
    path = tmp_path / "d.mdl"
    path.write_text(mdl(f"z = {equation}\n\t~\tw\n\t~\t\n\t|\n"), encoding="utf-8")
    code, _, err = run_cli(capsys, "run", path)
    assert_refused(code, err, needle)


def test_a_time_grid_that_cannot_honour_saveper_warns_on_stderr(tmp_path, capsys):
    path = tmp_path / "g.mdl"
    path.write_text(GROWTH.replace("TIME STEP = 1", "TIME STEP = 0.25")
                    .replace("SAVEPER = 1", "SAVEPER = 0.3"), encoding="utf-8")
    code, out, err = run_cli(capsys, "run", path)
    assert code == 0
    assert err == ["aicircle: warning: SAVEPER 0.3 is not a multiple of TIME STEP 0.25: values "
                   "are saved every 1.5, not every 0.3"]
    with pytest.warns(ac.errors.TimeGridWarning, match="ends at 100, not at FINAL TIME 4"):
        ac.load(path).simulate(time_step=100, saveper=100)


@pytest.mark.parametrize("kwargs, needle", [
    ({"rtol": -1}, "rtol must be a positive"), ({"atol": float("nan")}, "atol"),
    ({"max_step": 0}, "max_step"), ({"return_columns": 5}, "return_columns"),
    ({"initial": 3}, "initial must map"), ({"params": [1]}, "params must map"),
    ({"params": {"g": 1, "G": 2}}, "'g' twice"), ({"return_columns": [""]}, "non-empty"),
])
def test_api_misuse_raises_aicircle_errors_naming_the_argument(work, kwargs, needle):
    model = ac.load(work / "m.mdl")
    with pytest.raises(ac.AicircleError, match=needle):
        model.simulate(**kwargs)


# --------------------------------------------------------------------------
# Two spellings of one name
# --------------------------------------------------------------------------

@pytest.mark.parametrize("second", ["Growth__Rate", '"Growth Rate"', "growth rate", "Growth Rate"])
def test_two_definitions_of_one_name_are_refused_naming_both(tmp_path, capsys, second):
    path = tmp_path / "n.mdl"
    path.write_text(mdl("x = INTEG(Growth Rate, 0)\n\t~\tw\n\t~\t\n\t|\n"
                        "Growth Rate = 1\n\t~\tw\n\t~\t\n\t|\n"
                        f"{second} = 100\n\t~\tw\n\t~\t\n\t|\n"), encoding="utf-8")
    code, _, err = run_cli(capsys, "run", path)
    assert_refused(code, err, r"'Growth Rate' and '.*' are two definitions of one name .*lines 6 and 10")


def test_a_duplicate_xmile_aux_is_refused(tmp_path, capsys):
    path = tmp_path / "n.xmile"
    path.write_text(xmile().replace('<aux name="g">', '<aux name="G"><eqn>0.7</eqn></aux>\n'
                                    '    <aux name="g">'), encoding="utf-8")
    code, _, err = run_cli(capsys, "run", path)
    assert_refused(code, err, r"'G' and 'g' are two definitions of one name")


def test_a_params_file_with_two_spellings_of_one_name_is_refused(work, capsys):
    (work / "p.csv").write_text("name,value\ng,0.1\nG,0.2\n", encoding="utf-8")
    (work / "t.csv").write_text("id,observable\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "validate", work / "m.mdl", "--targets", work / "t.csv",
                           "--params", work / "p.csv")
    assert_refused(code, err, r"p\.csv: 'g' and 'G' are the same name")


def test_json_output_replaces_only_aicircles_own_json(work, capsys):
    (work / "package.json").write_text('{"name": "mine"}', encoding="utf-8")
    code, _, err = run_cli(capsys, "tipping", work / "m.mdl", "--param", "g", "--range", "0.1", "0.9",
                           "--json", work / "package.json")
    assert_refused(code, err, r"package\.json exists and was not written by aicircle")
    assert (work / "package.json").read_text() == '{"name": "mine"}'

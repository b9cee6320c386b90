"""The README's code runs as written and prints what the README says (issue 13).

Every fenced block of README.md is one of four kinds, and a test fails on a block that is
none of them:

- **The quick start** (the block that creates ``.venv``) is not re-run here: it must have
  exactly two lines, ``.ci/run`` must run its second line, and the command its first line
  ends with (``aicircle report``, about 2.5 minutes) runs, marked slow, and writes the files
  and the probability of a bust that the README states.
- **Python blocks** run in order in one namespace, in a folder holding copies of
  ``models/`` and ``calibration/`` (their paths are relative to the repository root; the
  copies keep the repository untouched), and what their comments say about the results is
  checked. They take under a minute together: marked slow.
- **The synopsis** (lines ``aicircle COMMAND [OPTION]...``): each command and option it names
  is one the command line's parser knows; its ``aicircle --version`` line runs.
- **The examples** (lines ``.venv/bin/aicircle ...``) run with the console script installed
  beside this Python, in such a folder, exit 0, and print or write what the README says
  (numbers compared to the precision it shows). Each takes seconds: marked slow.

Commands quoted in the README's prose (``aicircle calibrate ...``, about 20 minutes, and the
others) are not run: the parser must accept each exactly as written (a synopsis with
``[OPTION]`` names only options the parser knows), and each ``python SCRIPT`` it names must
exist.
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aicircle import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_TEXT = README.read_text(encoding="utf-8")
CONSOLE_SCRIPT = Path(sys.executable).parent / "aicircle"
VENV_SCRIPT = ".venv/bin/aicircle"  # how the README calls the console script

# ```lang, the code, ``` at the start of lines; the line number is the fence's
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks():
    found = []
    for match in _FENCE.finditer(README_TEXT):
        line = README_TEXT.count("\n", 0, match.start()) + 1
        found.append((match[1], match[2], line))
    return found


BLOCKS = _blocks()


def _kind(lang, code):
    lines = code.strip().splitlines()
    if lang == "python":
        return "python"
    if lang == "bash" and "python3 -m venv .venv" in code:
        return "quick start"
    if lang == "bash" and all(line.startswith(VENV_SCRIPT + " ") for line in lines):
        return "examples"
    if lang == "bash" and all(line.startswith("aicircle ") for line in lines):
        return "synopsis"
    return None


def _of_kind(kind):
    return [(code, line) for lang, code, line in BLOCKS if _kind(lang, code) == kind]


def _command_lines(kind):
    return [(line, f"README.md:{start + 1 + i}") for code, start in _of_kind(kind)
            for i, line in enumerate(code.strip().splitlines())]


def _number(text):
    """The number shown in ``text`` (``$3.85B``, ``−2.73 (outside)``, ``59.0%``) and its decimals."""
    found = re.search(r"[−+-]?\d+(?:\.(\d+))?", text)
    assert found, f"no number in {text!r}"
    return float(found[0].replace("−", "-")), len(found[1] or "")


def assert_shown(text, value, scale=1.0):
    """``value`` (times ``scale``: 100 for a percentage) rounds to the number ``text`` shows."""
    shown, decimals = _number(text)
    # the README rounds to its last digit: half a unit of it, plus float noise
    assert abs(value * scale - shown) <= 0.5 * 10.0 ** -decimals + 1e-9, \
        f"the README shows {text!r}; the run gives {value * scale:.6g}"


def _table_rows(first_header_cell):
    """The body rows (lists of cells) of the README's table whose header starts with the given cell."""
    lines = README_TEXT.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header_cell} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _sentence(pattern):
    """The match of ``pattern`` in the README's text, its line breaks read as spaces."""
    found = re.search(pattern, " ".join(README_TEXT.split()))
    assert found, f"the README no longer says /{pattern}/: update this test with what it says now"
    return found


@pytest.fixture
def workdir(tmp_path):
    """A folder laid out like the repository root, with copies of ``models/`` and ``calibration/``."""
    for folder in ("models", "calibration"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def run_readme_command(line, cwd):
    """Run a README command line with the installed console script: the CompletedProcess."""
    argv = shlex.split(line)
    assert argv[0] in (VENV_SCRIPT, "aicircle"), line
    assert CONSOLE_SCRIPT.is_file(), f"no console script beside {sys.executable}: install aicircle (pip install -e .)"
    return subprocess.run([str(CONSOLE_SCRIPT), *argv[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=900)  # 900 s: a hang fails the test instead of stalling the suite


def _subparsers():
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return parser, action.choices


# --------------------------------------------------------------------------- every block

@pytest.mark.parametrize("lang, code, line", BLOCKS, ids=[f"README.md:{b[2]}" for b in BLOCKS])
def test_every_code_block_is_one_this_file_checks(lang, code, line):
    assert _kind(lang, code), (f"README.md:{line}: a ```{lang} block this file neither runs nor checks; "
                               f"add its kind to tests/test_readme.py")


@pytest.mark.parametrize("kind", ["quick start", "python", "synopsis", "examples"])
def test_the_readme_has_each_kind_of_block(kind):
    assert _of_kind(kind), f"no {kind} block in README.md: did the fence or its language change?"


# --------------------------------------------------------------------------- quick start

def _quick_start_lines():
    (code, _), = _of_kind("quick start")
    return code.strip().splitlines()


def test_quick_start_is_two_lines():
    assert len(_quick_start_lines()) == 2


def test_ci_runs_the_quick_starts_test_command():
    # .ci/run creates the venv itself, then runs the quick start's second line as written
    ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith("#")]
    second = _quick_start_lines()[1]
    assert any(command == second or command.endswith(" && " + second) for command in ci_commands), \
        f".ci/run does not run the quick start's second line {second!r}"


@pytest.mark.slow  # the full report: about 2.5 minutes
def test_quick_start_report_writes_the_report_and_the_bust_probability_the_readme_states(tmp_path):
    report_command = _quick_start_lines()[0].split(" && ")[-1]
    assert report_command.startswith(VENV_SCRIPT + " report"), report_command
    done = run_readme_command(report_command, tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "report"
    # "report.html with every figure embedded, report.md, the PNG figures and manifest.json"
    for name in ("report.html", "report.md", "manifest.json"):
        assert (out / name).stat().st_size > 0, name
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(out.glob("*.png")), "no PNG figure"
    assert manifest["total_s"] > 0  # the README quotes it as the report's time
    text = (out / "report.md").read_text(encoding="utf-8")
    # the caption of the README's first figure: "Across the 1065 of 4000 parameter sets ..."
    kept, drawn = _sentence(r"Across the (\d+) of (\d+) parameter sets").groups()
    assert f"{drawn} parameter sets were drawn" in text and f"**{kept} kept**" in text, \
        f"report.md does not keep {kept} of {drawn} parameter sets"
    # "Under the priors as drawn P(capital bust by 2035) = 0.00 and P(the lab fails by 2035) = 0.76; under
    # the other priors tried, 0.00–0.01 and 0.54–0.97."
    headline = _sentence(r"Under the priors as drawn P\(capital bust by 2035\) = [\d.]+ and P\(the lab fails by "
                         r"2035\) = [\d.]+; under the other priors tried, [\d.]+–[\d.]+ and [\d.]+–[\d.]+\.").group(0)
    assert headline in text, f"report.md does not state: {headline}"


# --------------------------------------------------------------------------- python blocks

@pytest.fixture(scope="module")
def python_blocks(tmp_path_factory):
    """The namespace after running every python block of the README in order."""
    folder = tmp_path_factory.mktemp("readme")
    for name in ("models", "calibration"):
        shutil.copytree(ROOT / name, folder / name)
    namespace = {"__name__": "__readme__"}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # the README's paths are relative to the repository root
        for code, line in _of_kind("python"):
            exec(compile(code, f"README.md, the python block at line {line}", "exec"), namespace)
    return namespace


@pytest.mark.slow  # the blocks take under a minute
def test_python_blocks_parameters_table_has_the_columns_its_comment_names(python_blocks):
    # "model.parameters  # DataFrame: value, units, min, max, doc (file order)"
    parameters = python_blocks["model"].parameters
    assert list(parameters.columns) == ["value", "units", "min", "max", "doc"]


@pytest.mark.slow
def test_python_blocks_run_is_saved_at_saveper_over_the_models_time(python_blocks):
    # "df = model.simulate()  # Euler at TIME STEP, saved at SAVEPER"; the model runs from
    # 2020 to 2035 ("The model"); the last df is the scenario run of the second block
    model, df = python_blocks["model"], python_blocks["df"]
    saveper = model.time["saveper"]
    np.testing.assert_allclose(np.diff(df.index), saveper, rtol=1e-12)  # the times are k * SAVEPER
    assert (df.index[0], df.index[-1]) == (2020.0, 2035.0)


@pytest.mark.slow
def test_python_blocks_batch_is_a_dataset_over_set_and_time(python_blocks):
    # "batch = model.simulate_batch(table, ...)   # xarray.Dataset (set, time)"
    batch = python_blocks["batch"]
    assert isinstance(batch, xr.Dataset)
    assert batch["Investor Confidence"].dims == ("set", "time")
    assert batch.sizes["set"] == len(python_blocks["table"]) == 500


@pytest.mark.slow
def test_python_blocks_validate_every_target(python_blocks):
    # "calibration/targets.csv holds 57 targets"
    count = int(_sentence(r"`calibration/targets.csv` holds (\d+) targets")[1])
    assert len(python_blocks["tab"]) == count


@pytest.mark.slow
def test_python_blocks_find_the_reduced_cores_folds(python_blocks):
    # "res = tipping.bifurcations(model, "Crowd Weight", 0.5, 8, ...)  # the reduced core's folds"
    folds = python_blocks["res"].folds
    assert folds and all(0.5 <= fold["value"] <= 8 for fold in folds)


@pytest.mark.slow
def test_python_blocks_thresholds_sensitivity_and_bust_probability_have_their_shapes(python_blocks):
    assert {t["horizon"] for t in python_blocks["th"]} <= {2030, 2035}
    assert list(python_blocks["s"].columns) == ["mu_star", "sigma", "mu_star_conf"]
    # "summary, runs = ensemble.bust_probability(...)   # P(bust by 2030, 2035)"
    summary = python_blocks["summary"]
    assert list(summary.index) == [2030, 2035]
    assert ((0 <= summary["lo"]) & (summary["lo"] <= summary["p_bust_by"])
            & (summary["p_bust_by"] <= summary["hi"]) & (summary["hi"] <= 1)).all()


# --------------------------------------------------------------------------- synopsis

SYNOPSIS = _command_lines("synopsis")


def assert_synopsis_is_known(line, where):
    """Each command and option a synopsis line (``aicircle CMD [--opt X]...``) names is the parser's."""
    parser, commands = _subparsers()
    words = shlex.split(line.split("#")[0])[1:]
    if words[0].startswith("-"):  # `aicircle --version`
        known = parser._option_string_actions
    else:
        assert words[0] in commands, f"{where}: no command {words[0]!r}"
        known = commands[words[0]]._option_string_actions
    options = re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", " ".join(words))
    unknown = [o for o in options if o not in known]
    assert not unknown, f"{where}: {words[0]} has no option {unknown}"


@pytest.mark.parametrize("line, where", SYNOPSIS, ids=[w for _, w in SYNOPSIS])
def test_synopsis_names_only_commands_and_options_the_parser_knows(line, where):
    assert_synopsis_is_known(line, where)


@pytest.mark.slow  # a new process: a few seconds
def test_synopsis_version_line_prints_the_version(tmp_path):
    from aicircle import __version__

    (line, where), = [(line, where) for line, where in SYNOPSIS if line.split()[1] == "--version"]
    done = run_readme_command(line, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"aicircle {__version__}"


# --------------------------------------------------------------------------- examples

EXAMPLES = {line: where for line, where in _command_lines("examples")}


def _example(command):
    """The example line that runs ``aicircle COMMAND``; fails if the README has none."""
    lines = [line for line in EXAMPLES if line.split()[1] == command]
    assert len(lines) == 1, f"the README's examples run 'aicircle {command}' {len(lines)} times"
    return lines[0]


def test_each_example_is_checked_below():
    checked = {"run", "validate", "tipping", "sensitivity", "export-xmile"}
    assert {line.split()[1] for line in EXAMPLES} == checked


@pytest.mark.slow
def test_run_example_writes_the_scenario_with_the_capex_the_readme_states(workdir):
    done = run_readme_command(_example("run"), workdir)
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(workdir / "shock.csv", index_col="time")
    # the Scenarios table: "| confidence-shock (...) | soft landing | boom | 2034.0 | 317 |" (AI capex 2030)
    row, = [cells for cells in _table_rows("scenario") if cells[0].startswith("confidence-shock")]
    assert_shown(row[4], df.loc[2030.0, "Total AI Capex"])


# The article's firm figures in the README's Fit table, and the targets they are.
FIRM_FIGURES = {
    "OpenAI revenue, H1 2025": "oai_rev_h1_2025",
    "OpenAI R&D, H1 2025": "oai_rd_h1_2025",
    "OpenAI valuation, Sep 2025": "oai_val_2025_09",
    "cloud revenue growth, Q4 2024": "cloud_growth_2024q4",
    "AI share of US venture funding, Q1 2025": "vc_ai_share_2025q1",
}


@pytest.mark.slow
def test_validate_example_gives_the_firm_figures_the_readme_states(workdir):
    done = run_readme_command(_example("validate"), workdir)
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads((workdir / "fit.json").read_text())}
    count = int(_sentence(r"`calibration/targets.csv` holds (\d+) targets")[1])
    assert len(rows) == count
    table = _table_rows("figure")
    assert [cells[0] for cells in table] == list(FIRM_FIGURES)
    for label, data, predicted, residual in table:
        row = rows[FIRM_FIGURES[label]]
        scale = 100.0 if data.endswith("%") else 1.0
        assert_shown(data, row["value"], scale)
        assert_shown(predicted, row["predicted"], scale)
        assert_shown(residual, row["residual"])


@pytest.mark.slow
def test_tipping_example_finds_the_threshold_the_readme_states(workdir):
    done = run_readme_command(_example("tipping"), workdir)
    assert done.returncode == 0, done.stderr
    thresholds = re.findall(r"threshold at (\S+) \(horizon (\S+)\): (.+?) -> (.+)", done.stdout)
    # "A confidence shock in 2026 never causes a bust by 2030 (a shock of 0.93 or more delays
    # the cycle into a boom in 2030)"
    shock, year = _sentence(r"never causes a bust by \d{4} \(a shock of ([\d.]+) or more delays the "
                            r"cycle into a boom in (\d{4})\)").groups()
    at_year = [(float(value), old, new) for value, horizon, old, new in thresholds if float(horizon) == float(year)]
    assert [new for _, _, new in at_year] == ["boom"], done.stdout
    assert_shown(shock, at_year[0][0])
    # "by 2035, shocks between 0.81 and 0.87 end in a bust"
    later, lo, hi = _sentence(r"by (\d{4}), shocks between ([\d.]+) and ([\d.]+) end in a bust").groups()
    into = [float(v) for v, h, old, new in thresholds if float(h) == float(later) and new == "bust"]
    out_of = [float(v) for v, h, old, new in thresholds if float(h) == float(later) and old == "bust"]
    assert len(into) == 1 and len(out_of) == 1, done.stdout
    assert_shown(lo, into[0])
    assert_shown(hi, out_of[0])


@pytest.mark.slow
def test_sensitivity_example_prints_morris_indices(workdir):
    done = run_readme_command(_example("sensitivity"), workdir)
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0].split()
    assert header == ["mu_star", "sigma", "mu_star_conf"]  # design §5's Morris indices


@pytest.mark.slow
def test_export_xmile_example_writes_the_shipped_xmile_twin(workdir):
    line = _example("export-xmile")
    done = run_readme_command(line, workdir)
    assert done.returncode == 0, done.stderr
    written = workdir / shlex.split(line)[-1]
    # "models/aicircle.xmile: the same model in XMILE, written by aicircle export-xmile"
    assert written.read_text(encoding="utf-8") == (ROOT / "models" / "aicircle.xmile").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- prose

def _prose_commands(program):
    """The inline ``program ...`` spans outside the fenced blocks."""
    prose = _FENCE.sub("", README_TEXT)
    return sorted(set(re.findall(rf"`({program} [^`]+)`", prose.replace("\n", " "))))


PROSE_COMMANDS = _prose_commands("aicircle")


def _is_synopsis(line):
    return "[" in line or "..." in line


@pytest.mark.parametrize("line", [line for line in PROSE_COMMANDS if len(line.split()) > 2 and not _is_synopsis(line)])
def test_commands_in_the_prose_parse_as_written(line):
    args = cli.build_parser().parse_args(shlex.split(line)[1:])
    assert args.command


@pytest.mark.parametrize("line", [line for line in PROSE_COMMANDS if _is_synopsis(line)])
def test_synopses_in_the_prose_name_only_commands_and_options_the_parser_knows(line):
    assert_synopsis_is_known(line, "README.md's prose")


@pytest.mark.parametrize("line", [line for line in PROSE_COMMANDS if len(line.split()) == 2])
def test_commands_the_prose_names_exist(line):
    # `aicircle export-xmile` in "written by `aicircle export-xmile`" names a command
    _, commands = _subparsers()
    assert line.split()[1] in commands


@pytest.mark.parametrize("line", _prose_commands("python"))
def test_scripts_the_prose_names_exist(line):
    assert (ROOT / shlex.split(line)[1]).is_file()

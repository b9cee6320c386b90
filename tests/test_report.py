"""``aicircle report``: a complete, self-contained report that replaces only its own files.

The full report on the shipped model is built once for the module (small Sobol
and ensemble sizes keep it near a minute) into a folder that already holds an
older report, and the tests read it. The interruption tests stop a run at its
tipping stage, after the first figures are written, with the
``KeyboardInterrupt`` that Ctrl-C raises. The destination tests check that a
report never deletes or replaces a file it did not write.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

import aicircle._io
import aicircle.report
import aicircle.study.report
from aicircle.errors import InvalidInput
from aicircle.study.report import build_report

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT_SCRIPT = ROOT / "scripts" / "screenshot_report.py"
SHIPPED_FIT = ROOT / "calibration" / "results" / "fit.json"

# The figures the report draws from the shipped model and its shipped calibration (profiles included).
FIGURES = ("structure", "fit", "residuals", "profiles", "time_to_bust", "bifurcation", "regime_map",
           "sobol", "scenarios", "bands", "p_bust", "outcomes", "tipping_map")
SMALL = {"sobol_n": 128, "n_draws": 800}  # enough for every figure and table; the defaults take ~60 s more
OLD_HTML = "<html><body><p>the previous report</p></body></html>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _previous_report(out: Path) -> dict:
    """Write a stand-in for an older report (its manifest lists what it wrote); returns {name: content}."""
    out.mkdir(parents=True)
    files = {"report.html": OLD_HTML, "previous-figure.png": "a figure the new report does not draw"}
    files["manifest.json"] = json.dumps({"files": sorted([*files, "manifest.json"])})
    for name, text in files.items():
        (out / name).write_text(text)
    aicircle._io.sign_manifest(out)  # as the report signs its own
    files["manifest.json"] = (out / "manifest.json").read_text()
    return files


def _leftovers(parent: Path, name: str) -> list:
    """Temporary folders of a report run (``.NAME-partial-*``, ``.NAME-old-*``) left in ``parent``."""
    return sorted(p.name for p in parent.glob(f".{name}-*"))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report"
    _previous_report(out)
    returned = build_report(out, seed=0, progress=False, **SMALL)
    return {"out": out, "returned": returned, "manifest": json.loads((out / "manifest.json").read_text()),
            "html": (out / "report.html").read_text(encoding="utf-8"),
            "md": (out / "report.md").read_text(encoding="utf-8")}


# --------------------------------------------------------------------------- the full report

@pytest.mark.slow
def test_report_writes_html_markdown_manifest_and_the_figures(report):
    out = report["out"]
    assert report["returned"] == out
    for name in ("report.html", "report.md", "manifest.json"):
        assert (out / name).stat().st_size > 0, name
    assert len(list(out.glob("*.png"))) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_is_a_png_listed_in_the_manifest(report, name):
    path = report["out"] / f"{name}.png"
    assert f"{name}.png" in report["manifest"]["figures"]
    assert path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_every_figure_the_manifest_names_exists_and_is_not_empty(report):
    figures = report["manifest"]["figures"]
    assert len(figures) == len(set(figures))
    assert sorted(p.name for p in report["out"].glob("*.png")) == sorted(figures)
    assert all((report["out"] / f).stat().st_size > 0 for f in figures)


@pytest.mark.slow
def test_report_html_embeds_every_figure_as_base64(report):
    images = re.findall(r"<img\b[^>]*>", report["html"])
    sources = [re.search(r"""\ssrc=(['"])(.*?)\1""", tag).group(2) for tag in images]
    assert len(images) == len(report["manifest"]["figures"])
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    # the embedded pictures are the PNG files beside the report, byte for byte
    embedded = sorted(base64.b64decode(s.split(",", 1)[1]) for s in sources)
    on_disk = sorted((report["out"] / f).read_bytes() for f in report["manifest"]["figures"])
    assert embedded == on_disk


@pytest.mark.slow
def test_report_html_reads_offline(report):
    links = re.findall(r"""\s(?:src|href)\s*=\s*(['"])(.*?)\1""", report["html"], flags=re.IGNORECASE)
    external = [url for _, url in links if not url.startswith(("data:", "#"))]
    assert external == []
    assert not re.search(r"https?://", " ".join(url for _, url in links))
    assert not re.search(r"<(?:script|link|iframe)\b", report["html"], flags=re.IGNORECASE)


@pytest.mark.slow
def test_report_html_shows_no_raw_markdown(report):
    text = re.sub(r"<[^>]+>", " ", report["html"])
    assert "**" not in text
    assert "`" not in text
    assert not re.search(r"(?<![\w*])\*[A-Za-z][^*\n]*[A-Za-z]\*(?![\w*])", text)


@pytest.mark.slow
def test_report_md_links_each_figure_by_its_file_name(report):
    linked = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", report["md"])
    assert sorted(linked) == sorted(report["manifest"]["figures"])


@pytest.mark.slow
def test_manifest_records_versions_seed_parameters_timings_and_command(report):
    m = report["manifest"]
    for pkg in ("aicircle", "pysd", "numpy", "scipy", "pandas", "matplotlib"):
        assert isinstance(m["versions"][pkg], str) and m["versions"][pkg], pkg
    assert m["seed"] == 0
    free = json.loads(SHIPPED_FIT.read_text())["free"]
    assert m["free"] == free
    assert set(free) <= set(m["parameters"])
    assert all(np.isfinite(v) for v in m["parameters"].values())
    assert len(m["timings_s"]) == 11  # one entry per stage the progress shows
    assert all(t >= 0 for t in m["timings_s"].values())
    # built from Python here: the command is the call, with its non-default sizes
    assert m["command"].startswith("python -c") and "build_report(" in m["command"]
    assert str(report["out"]) in m["command"] and "sobol_n=128" in m["command"]


@pytest.mark.slow
def test_a_complete_run_replaces_the_previous_report_entirely(report):
    out = report["out"]
    assert not (out / "previous-figure.png").exists()  # the previous report's own file, not drawn again
    assert "the previous report" not in report["html"]
    assert _leftovers(out.parent, out.name) == []
    assert set(report["manifest"]["files"]) == {p.name for p in out.iterdir()}


@pytest.mark.slow
def test_report_states_the_bust_probability_only_beside_its_priors_and_what_it_depends_on(report):
    md = report["md"]
    # the headline: the rule's P(bust) and the lab's P(failure) as drawn and under every prior tried,
    # after the table of priors and the findings that hold under all of them
    headline = re.search(r"Under the priors as drawn P\(capital bust by 2035\) = \d\.\d\d and P\(the lab fails "
                         r"by 2035\) = \d\.\d\d; under the other priors tried, \d\.\d\d–\d\.\d\d and "
                         r"\d\.\d\d–\d\.\d\d\.", md)
    assert headline and md.index("What the priors decide") < headline.start()
    assert "log-uniform over the same ranges" in md and "a finding; the rest is a condition" in md
    assert "Outcomes in money" in md and "The tipping map" in md
    assert "What the economic definition's busts depend on" in md and "Structural alternatives" in md
    assert "largest residuals" in md


# --------------------------------------------------------------------------- interruption

def _interrupt_at_tipping(monkeypatch, parent: Path, seen: list):
    """Make the tipping stage raise KeyboardInterrupt, recording what the partial folder in ``parent`` held."""

    def interrupted(*args, **kwargs):
        seen.extend(p.name for folder in parent.glob(".*-partial-*") for p in folder.iterdir())
        raise KeyboardInterrupt

    monkeypatch.setattr(aicircle.study.report, "capital_circle_tipping", interrupted)


@pytest.mark.slow  # ~20 s: the stages before the tipping points run for real
@pytest.mark.parametrize("previous", [True, False], ids=["with a previous report", "first run"])
def test_interrupting_the_report_half_way_leaves_the_previous_report_as_it_was(tmp_path, monkeypatch, capsys,
                                                                                previous):
    out = tmp_path / "report"
    files = _previous_report(out) if previous else {}
    seen = []
    _interrupt_at_tipping(monkeypatch, tmp_path, seen)
    with pytest.raises(KeyboardInterrupt):
        build_report(out, seed=0, progress=True, **SMALL)
    assert {"structure.png", "fit.png"} <= set(seen)  # the run was half-way: figures were being written
    if previous:
        assert {p.name: p.read_text() for p in out.iterdir()} == files
    else:
        assert not out.exists()
    assert _leftovers(tmp_path, "report") == []  # no partial folder, no lock
    assert "[5/11] tipping points" in capsys.readouterr().err  # progress is shown


# --------------------------------------------------------------------------- the destination

@pytest.mark.parametrize("where", ["a folder with a user's files", "the current project folder"])
@pytest.mark.slow
def test_report_refuses_a_folder_holding_files_it_did_not_write(tmp_path, where):
    out = tmp_path / "d" if where.startswith("a folder") else tmp_path
    out.mkdir(exist_ok=True)
    (out / "precious.txt").write_text("mine")
    (out / "data").mkdir()
    with pytest.raises(InvalidInput, match=r"holds files the report did not write \(data, precious.txt\)"):
        build_report(out, seed=0, progress=False, **SMALL)
    assert (out / "precious.txt").read_text() == "mine" and (out / "data").is_dir()


@pytest.mark.slow
def test_report_refuses_a_file_as_its_folder(tmp_path):
    target = tmp_path / "f"
    target.write_text("a file")
    with pytest.raises(InvalidInput, match="exists and is not a folder"):
        build_report(target, seed=0, progress=False, **SMALL)
    assert target.read_text() == "a file"


def test_publishing_replaces_only_the_reports_own_files(tmp_path):
    dest = tmp_path / "report"
    _previous_report(dest)
    (dest / "notes.txt").write_text("the user's")  # allowed in with --force, never touched
    work = tmp_path / ".report-partial-x"
    work.mkdir()
    (work / "report.html").write_text("new")
    (work / "notes.txt").write_text("a report file that happens to share the user's name")
    (work / "manifest.json").write_text(json.dumps({"files": ["manifest.json", "notes.txt", "report.html"]}))
    aicircle._io.publish(work, dest)
    assert (dest / "report.html").read_text() == "new"
    assert not (dest / "previous-figure.png").exists()  # owned by the previous report, not written again
    assert (dest / "notes.txt").read_text() == "the user's"


@pytest.mark.slow
def test_a_second_report_into_the_same_folder_fails_fast_while_the_first_runs(tmp_path):
    out = tmp_path / "report"
    lock = aicircle._io.acquire_lock(out)  # as a running report holds it
    try:
        with pytest.raises(InvalidInput, match=r"another report \(process \d+\) is writing there"):
            build_report(out, seed=0, progress=False, **SMALL)
    finally:
        lock.unlink()
    assert not out.exists()


def test_a_lock_left_by_a_killed_report_is_taken_over(tmp_path):
    out = tmp_path / "report"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)  # a process id that no longer runs
    stale = tmp_path / f".report{aicircle._io.LOCK_NAME}"
    stale.write_text(dead.stdout.strip())
    lock = aicircle._io.acquire_lock(out)
    assert lock == stale and lock.read_text() == str(__import__("os").getpid())
    lock.unlink()


# --------------------------------------------------------------------------- in a browser

def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_report_html_opens_in_headless_chromium_and_shows_the_figures(request, tmp_path):
    if _chromium() is None:
        reason = "Chromium is not installed (apt-get install chromium); the screenshot check needs a browser"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)  # .ci/run installs Chromium: in CI the check must run
        pytest.skip(reason)
    report = request.getfixturevalue("report")  # only once the browser is known to be there
    shot = tmp_path / "screenshot.png"
    run = subprocess.run([sys.executable, str(SCREENSHOT_SCRIPT), str(report["out"] / "report.html"), str(shot)],
                         capture_output=True, text=True, timeout=300, check=False)
    # exit 0: no console message, and every <img> decoded (the script checks naturalWidth > 0)
    assert run.returncode == 0, run.stdout + run.stderr
    n = len(report["manifest"]["figures"])
    assert f"images: {n} of {n} decoded" in run.stdout
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.var() > 0
    # Figures are what colours the page: a copy of this report without its <img> tags colours
    # 2 rows of the 4000 (the title's red rule); with them, ~1500 rows (structure, fit, residuals).
    coloured_rows = ((pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.2).any(axis=1).sum()
    assert coloured_rows > 500


@pytest.mark.slow  # a real report is started, then stopped once its lock is seen
def test_two_reports_into_one_folder_the_second_fails_fast_with_exit_2(tmp_path):
    import time

    out = tmp_path / "report"
    lock = tmp_path / f".report{aicircle._io.LOCK_NAME}"
    first = subprocess.Popen([sys.executable, "-m", "aicircle", "report", "--out", str(out), "-q"],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.exists(), "the first report never took its lock"
        second = subprocess.run([sys.executable, "-m", "aicircle", "report", "--out", str(out)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        # it failed while the first was still at work, not after waiting for it
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(timeout=60)
    assert second.returncode == 2, second.stderr
    lines = second.stderr.splitlines()
    assert len(lines) == 1 and re.search(r"another report \(process \d+\) is writing there", lines[0])


# --------------------------------------------------------------------------- any other model

# x decays at rate k from 1: with Euler at step dt the run ends at x(T) = (1 - k dt)^(T/dt), so the
# outcome 'x<0.5' at T changes where k = (1 - 0.5^(dt/T)) / dt (0.06896... for T = 10, dt = 0.01)
DECAY = ("x = INTEG(-k * x, 1)\n\t~\tunits\n\t~\t|", "k = 0.1\n\t~\t1/Year [0.01, 0.2]\n\t~\t|",
         "y = INTEG(k, 0)\n\t~\tunits\n\t~\t|", "unused = 3\n\t~\tdmnl\n\t~\t|")
DECAY_TIME = {"final_time": 10, "time_step": 0.01, "saveper": 1}


def _decay_model(folder):
    from conftest import write_mdl

    return write_mdl(folder, *DECAY, **DECAY_TIME)


@pytest.mark.slow
def test_a_model_outside_the_study_gets_the_generic_report(tmp_path):
    import aicircle as ac

    path = _decay_model(tmp_path)
    out = build_report(tmp_path / "report", seed=0, progress=False, model_path=path)
    manifest = json.loads((out / "manifest.json").read_text())
    md = (out / "report.md").read_text(encoding="utf-8")
    assert manifest["analysis"] == "generic"
    assert sorted(manifest["figures"]) == ["baseline.png", "morris.png", "sweeps.png"]
    assert all((out / f).read_bytes()[:8] == PNG_MAGIC for f in manifest["figures"])
    # the stocks table holds the run's own final values
    final = ac.load(path).simulate().iloc[-1]
    row = re.search(r"^\| x \| 1 \| ([0-9.e-]+) \|", md, flags=re.MULTILINE)
    assert float(row.group(1)) == pytest.approx(final["x"], rel=1e-3)  # printed to 4 significant digits
    # k has a declared range; 'unused' has none and varies ±50% around its value, as the table says
    assert "| k | 0.01 | 0.2 | 0.1 | declared |" in md
    assert "| unused | 1.5 | 4.5 | 3 | value ±50% (none declared) |" in md
    assert "Capital" not in manifest["parameters"]


@pytest.mark.slow
def test_the_toolkits_report_runs_the_generic_analysis_without_the_study(tmp_path):
    path = _decay_model(tmp_path)
    out = aicircle.report.build_report(path, tmp_path / "report", progress=False, drivers=["k"], outcome="x<0.5")
    manifest = json.loads((out / "manifest.json").read_text())
    md = (out / "report.md").read_text(encoding="utf-8")
    assert manifest["analysis"] == "generic"
    assert "capital-circle" not in md  # the study's note is the study's to add
    assert manifest["command"].startswith("python -c \"from aicircle.report import build_report")
    assert "| k |" in md and "x<0.5" in md


@pytest.mark.slow
def test_the_generic_report_finds_an_outcome_threshold_where_the_euler_run_crosses_it(tmp_path):
    path = _decay_model(tmp_path)
    out = build_report(tmp_path / "report", seed=0, progress=False, model_path=path, drivers=["K"],
                       outcome="x<0.5")
    md = (out / "report.md").read_text(encoding="utf-8")
    row = re.search(r"^\| k \| ([0-9.e-]+) \| 0\.1 \| not x<0\.5 \| x<0\.5 \|", md, flags=re.MULTILINE)
    dt, T = DECAY_TIME["time_step"], DECAY_TIME["final_time"]
    expected = (1 - 0.5 ** (dt / T)) / dt
    # bisection to 1e-4 of the range (0.19), printed to 4 significant digits
    assert float(row.group(1)) == pytest.approx(expected, abs=1e-4)


@pytest.mark.slow
def test_the_generic_report_uses_a_parameter_file_and_says_so(tmp_path):
    path = _decay_model(tmp_path)
    params = tmp_path / "params.csv"
    params.write_text("name,value\nk,0.05\n")
    out = build_report(tmp_path / "report", seed=0, progress=False, model_path=path, params_path=params,
                       drivers=["k"])
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "1 from the parameter file" in md
    # x(10) = (1 - 0.05 * 0.01)^1000 = 0.6064
    assert re.search(r"^\| x \| 1 \| 0\.606", md, flags=re.MULTILINE)


@pytest.mark.parametrize("kwargs, match", [
    ({"drivers": ["nope"]}, "driver: unknown variable 'nope'"),
    ({"drivers": ["x"]}, "driver 'x' is not a parameter"),
    ({"outcome": "nope<1"}, "outcome 'nope<1': unknown variable 'nope'"),
    ({"outcome": "x<<1"}, "malformed outcome"),
    ({"recalibrate": True}, "recalibrating it needs --targets"),
], ids=["unknown driver", "driver not a parameter", "unknown outcome variable", "malformed outcome",
        "recalibrate without targets"])
def test_the_generic_report_refuses_bad_arguments_before_writing_anything(tmp_path, kwargs, match):
    path = _decay_model(tmp_path)
    with pytest.raises(InvalidInput, match=match):
        build_report(tmp_path / "report", seed=0, progress=False, model_path=path, **kwargs)
    assert not (tmp_path / "report").exists()
    assert _leftovers(tmp_path, "report") == []


@pytest.mark.slow
def test_the_study_applies_to_the_shipped_model_and_not_to_others(tmp_path):
    import aicircle as ac
    from aicircle import _resources
    from aicircle.study import outcomes

    assert outcomes.missing_names(ac.load(_resources.shipped_model())) == []
    assert "Investor Confidence" in outcomes.missing_names(ac.load(_decay_model(tmp_path)))


@pytest.mark.slow
def test_cli_report_takes_a_model_and_exits_2_naming_a_bad_driver(tmp_path):
    path = _decay_model(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "aicircle", "report", str(path), "--out", str(tmp_path / "r"),
                         "-q", "--driver", "k", "--outcome", "x<0.5"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "r" / "sweeps.png").exists()
    bad = subprocess.run([sys.executable, "-m", "aicircle", "report", str(path), "--out", str(tmp_path / "s"),
                          "--driver", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["aicircle: error: driver: unknown variable 'nope' in model.mdl"]

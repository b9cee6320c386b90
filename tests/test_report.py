"""``aicircle report`` (issue 7): a complete, self-contained report, replaced all at once.

The full report on the shipped model is built once for the module (small Sobol
and Monte Carlo sizes keep it near a minute; the tipping stage dominates) into
a folder that already holds an older report, and the tests read it.  The
interruption tests stop a run at its tipping stage, after the first figures
are written, with the ``KeyboardInterrupt`` that Ctrl-C raises.
"""

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

import aicircle.report
from aicircle.report import build_report

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT_SCRIPT = ROOT / "scripts" / "screenshot_report.py"
SHIPPED_FIT = ROOT / "calibration" / "results" / "fit.json"

# The figures the report draws from the shipped model and its shipped calibration (profiles included).
FIGURES = ("structure", "fit", "residuals", "profiles", "time_to_bust", "bifurcation", "regime_map",
           "sobol", "scenarios", "bands", "p_bust")
SMALL = {"sobol_n": 64, "mc_runs": 100}  # enough for every figure and table; the defaults take ~75 s more
OLD_HTML = "<html><body><p>the previous report</p></body></html>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _previous_report(out: Path) -> dict:
    """Write a stand-in for an older report into ``out``; returns {file name: content}."""
    out.mkdir(parents=True)
    files = {"report.html": OLD_HTML, "previous-marker.txt": "written by an earlier run"}
    for name, text in files.items():
        (out / name).write_text(text)
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
    assert len(m["timings_s"]) == 9  # one entry per stage the progress shows
    assert all(t >= 0 for t in m["timings_s"].values())
    # built from Python here: the command is the call, with its non-default sizes
    assert m["command"].startswith("python -c") and "build_report(" in m["command"]
    assert str(report["out"]) in m["command"] and "sobol_n=64" in m["command"]


@pytest.mark.slow
def test_a_complete_run_replaces_the_previous_report_entirely(report):
    out = report["out"]
    assert not (out / "previous-marker.txt").exists()
    assert "the previous report" not in report["html"]
    assert _leftovers(out.parent, out.name) == []


# --------------------------------------------------------------------------- interruption

def _interrupt_at_tipping(monkeypatch, parent: Path, seen: list):
    """Make the tipping stage raise KeyboardInterrupt, recording what the partial folder in ``parent`` held."""

    def interrupted(*args, **kwargs):
        seen.extend(p.name for folder in parent.glob(".*-partial-*") for p in folder.iterdir())
        raise KeyboardInterrupt

    monkeypatch.setattr(aicircle.report, "capital_circle_tipping", interrupted)


@pytest.mark.slow  # ~6 s: the stages before the tipping points run for real
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
    assert _leftovers(tmp_path, "report") == []
    drivers = len(aicircle.report.DRIVERS)
    assert f"[5/9] tipping points of {drivers} drivers" in capsys.readouterr().err  # progress is shown


def test_an_interrupted_swap_puts_the_previous_report_back(tmp_path, monkeypatch):
    # the last step renames the old report aside, then the new one into place; Ctrl-C between the two
    out = tmp_path / "report"
    files = _previous_report(out)
    new = tmp_path / ".report-partial-x"
    new.mkdir()
    (new / "report.html").write_text("new")
    rename = Path.rename

    def rename_interrupted(self, target):
        if self == new:
            raise KeyboardInterrupt
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", rename_interrupted)
    with pytest.raises(KeyboardInterrupt):
        aicircle.report._replace_dir(new, out)
    assert {p.name: p.read_text() for p in out.iterdir()} == files
    assert not list(tmp_path.glob(".report-old-*"))


# --------------------------------------------------------------------------- in a browser

def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_report_html_opens_in_headless_chromium_and_shows_the_figures(request, tmp_path):
    if _chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); the screenshot check needs a "
                    "headless browser")
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

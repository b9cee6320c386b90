"""The explorer (aicircle/explorer.py, ``aicircle explore``): its sliders, runs and strip, and the page
in a real browser.

The browser tests start ``aicircle explore`` on a free port, load the page in headless Chromium
(Debian's ``chromium`` through ``/usr/bin/chromedriver``), move a slider and read the plotted
series back from the page's Bokeh document. In CI (``CI=true``) a missing browser fails them;
elsewhere they skip, saying so. ``python tests/test_explore.py docs/figures/explorer.png``
writes the README's screenshot with the same code.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import write_mdl

import aicircle as ac
from aicircle import cli, explorer

ROOT = Path(__file__).resolve().parents[1]
SIR = ROOT.parent / "shared" / "peer-models" / "samples" / "SIR" / "SIR.mdl"

GROUPED = ("""
********************************************************
	.Population
********************************************************~
		Who is infected.
	|
""", """
Infected = INTEG(infection - recovery, 1)
	~	person
	~	the infected
	|
""", "infection = Contact Rate * Infected\n\t~\tperson/Year\n\t~\t\n\t|",
    "recovery = Infected / Duration\n\t~\tperson/Year\n\t~\t\n\t|",
    "Contact Rate = 0.5\n\t~\t1/Year [0, 2]\n\t~\tdeclared range\n\t|", """
********************************************************
	.Clinic
********************************************************~
		How long it lasts.
	|
""", "Duration = 2\n\t~\tYear\n\t~\tno range declared\n\t|",
    "Offset = 0\n\t~\tperson\n\t~\tzero, no range\n\t|")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A one-stock model in two groups: x' = (c - 1/d) x, so x(t) grows or decays exponentially."""
    path = write_mdl(tmp_path_factory.mktemp("explore"), *GROUPED, final_time=4, time_step=1 / 64,
                     saveper=0.25)
    return ac.load(path, vocabulary=None)


def test_groups_are_read_from_the_model_file(small):
    groups = explorer.model_groups(small.path)
    assert groups["infected"] == "Population" and groups["contact_rate"] == "Population"
    assert groups["duration"] == "Clinic" and groups["offset"] == "Clinic"


def test_xmile_groups_are_read_from_its_group_elements(tmp_path):
    from conftest import write_xmile

    path = write_xmile(tmp_path, '<stock name="Pop"><eqn>1</eqn></stock><aux name="Rate"><eqn>2</eqn></aux>')
    text = path.read_text().replace("</variables></model>",
                        '<group name="Demography"><entity name="Rate"/></group></variables></model>')
    path.write_text(text)
    assert explorer.model_groups(path) == {"rate": "Demography"}


def test_sliders_take_the_declared_range_or_half_the_value_either_side_saying_so(small):
    table = explorer.slider_ranges(small, groups=explorer.model_groups(small.path))
    assert (table.at["Contact Rate", "lo"], table.at["Contact Rate", "hi"]) == (0, 2)
    assert table.at["Contact Rate", "note"] == ""
    assert (table.at["Duration", "lo"], table.at["Duration", "hi"]) == (1, 3)  # 2 ± 50%
    assert "±50%" in table.at["Duration", "note"]
    assert (table.at["Offset", "lo"], table.at["Offset", "hi"]) == (0, 1)  # ±50% of 0 is no range
    assert table.at["Duration", "group"] == "Clinic"


def test_a_starting_value_outside_the_declared_range_widens_it_and_says_so(small):
    table = explorer.slider_ranges(small, {"contact rate": 3.0})
    assert table.at["Contact Rate", "value"] == 3 and table.at["Contact Rate", "hi"] == 3
    assert "widened" in table.at["Contact Rate", "note"]


def test_starting_values_must_be_parameters(small):
    with pytest.raises(ac.InvalidInput, match="'infection' is not a parameter"):
        explorer.explore(small, {"infection": 1.0})


@pytest.mark.parametrize("call, needle", [
    (lambda m: explorer.explore(m, {"nope": 1}), "nope"),
    (lambda m: explorer.explore(m, {"Contact Rate": "fast"}), "Contact Rate"),
    (lambda m: explorer.explore(m, {"Contact Rate": math.nan}), "Contact Rate"),
    (lambda m: explorer.explore(m, [("Contact Rate", 1)]), "params"),
    (lambda m: explorer.explore(m, outcome="Infected<<2"), "malformed outcome"),
    (lambda m: explorer.explore(m, outcome="Nobody<2"), "Nobody"),
    (lambda m: explorer.explore(m, classifier="economic"), "classifier"),
    (lambda m: explorer.explore(m, scenarios={"s": ("d", {"nope": 1})}), "nope"),
    (lambda m: explorer.explore(m, outcome="Infected>2").set({"infection": 1}), "infection"),
    (lambda m: explorer.explore(m, outcome="Infected>2").start_sweep("nope"), "nope"),
    (lambda m: explorer.serve({"model": m}, port=70000, start=False), "port"),
], ids=["unknown", "not-a-number", "nan", "not-a-mapping", "malformed-outcome", "outcome-variable",
        "classifier", "scenario", "set-an-auxiliary", "sweep-unknown", "port"])
def test_misuse_raises_an_aicircle_error_naming_it(small, call, needle):
    with pytest.raises(ac.AicircleError, match=needle):
        call(small)


def test_moving_a_slider_draws_what_simulate_gives_for_that_value(small):
    page = explorer.explore(small, outcome="Infected>2")
    page.sliders["Contact Rate"].value = 0.9
    expected = small.simulate(params={"Contact Rate": 0.9})["Infected"].to_numpy()
    drawn = page._sources["Infected"].data
    np.testing.assert_array_equal(drawn["value"], expected)  # the same engine, the same run
    # the start run stays as the faint line
    np.testing.assert_array_equal(drawn["baseline"], small.simulate()["Infected"].to_numpy())


def test_in_a_notebook_the_explorer_displays_itself_with_no_asset_from_the_internet(small):
    """``aicircle.explore(model)`` in Jupyter: the bundle IPython displays holds the page and Bokeh's
    document, and no script or stylesheet it loads comes from outside (the assets are inline)."""
    import re

    page = explorer.explore(small, outcome="Infected>2")
    page.sliders["Contact Rate"].value = 0.9
    bundle = page._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "text/html" in data and "application/vnd.holoviews_exec.v0+json" in data
    html = data["text/html"]
    assert re.findall(r"<(?:script|link)[^>]+(?:src|href)=[\"']https?://", html) == []
    # the document holds the moved slider's run
    assert "Contact Rate" in html or "Contact Rate" in str(data)


def test_a_subscripted_model_has_a_slider_and_a_plot_per_element(tmp_path):
    path = write_mdl(tmp_path, "Region: north, south\n\t~\t\n\t~\t\n\t|",
                     "Pop[Region] = INTEG(growth[Region], 1)\n\t~\tperson\n\t~\t\n\t|",
                     "growth[Region] = rate[Region] * Pop[Region]\n\t~\tperson/Year\n\t~\t\n\t|",
                     "rate[Region] = 0.1, 0.2\n\t~\t1/Year [0, 1]\n\t~\t\n\t|", final_time=5)
    model = ac.load(path, vocabulary=None)
    page = explorer.explore(model)
    assert set(page.sliders) == {"rate[north]", "rate[south]"}
    assert page.picker.options[:2] == ["Pop[north]", "Pop[south]"] == list(page.picker.value)[:2]
    page.sliders["rate[south]"].value = 0.5
    expected = model.simulate(params={"rate[south]": 0.5})
    np.testing.assert_array_equal(page._sources["Pop[south]"].data["value"], expected["Pop[south]"])
    np.testing.assert_array_equal(page._sources["Pop[north]"].data["value"], expected["Pop[north]"])
    page.reset("model")
    assert page.values["rate[south]"] == 0.2
    assert page.loop_text.object.startswith("dominant loop")  # scored, or the reason why not


def test_two_sessions_share_no_values(small):
    setting = explorer._setting(small, outcome="Infected>2")
    one, two = explorer.Explorer(setting), explorer.Explorer(setting)
    one.sliders["Duration"].value = 1.2
    assert two.values["Duration"] == 2 and one.values["Duration"] == 1.2
    np.testing.assert_array_equal(two._sources["Infected"].data["value"], small.simulate()["Infected"])


def test_reset_returns_to_the_starting_values_or_to_the_model_files(small):
    page = explorer.explore(small, {"Contact Rate": 0.8}, outcome="Infected>2")
    page.set({"contact rate": 1.5, "Duration": 2.5})
    page.reset("start")
    assert page.values["Contact Rate"] == 0.8 and page.values["Duration"] == 2
    page.reset("model")
    assert page.values["Contact Rate"] == 0.5
    np.testing.assert_array_equal(page._sources["Infected"].data["value"], small.simulate()["Infected"])


def test_a_scenario_toggle_sets_its_switches_and_unsets_them(small):
    page = explorer.explore(small, outcome="Infected>2", switches=["Offset"],
                            scenarios={"faster": ("contacts double", {"Contact Rate": 1.0})})
    page.toggles["faster"].value = True
    assert page.values["Contact Rate"] == 1.0
    page.toggles["faster"].value = False
    assert page.values["Contact Rate"] == 0.5


def test_the_outcome_is_read_at_the_horizon(small):
    # x(4) = exp((c - 1/d) 4) = exp(0) = 1 at the model's values: not above 2; with c = 1, e^2 > 2
    page = explorer.explore(small, outcome="Infected>2")
    assert "4: not Infected>2" in page.outcome.object
    page.sliders["Contact Rate"].value = 1.0
    assert "4: Infected>2" in page.outcome.object and "not" not in page.outcome.object


def test_the_sweep_finds_the_analytic_threshold(small):
    # x(4) = exp(4 (c - 0.5)) > 2  <=>  c > 0.5 + ln 2 / 4 (Euler at dt = 1/64 moves it by < 0.01)
    page = explorer.explore(small, outcome="Infected>2")
    page.start_sweep("contact rate")
    [found] = page.sweep_lines.data["x"]
    assert found == pytest.approx(0.5 + math.log(2) / 4, abs=0.01)
    assert "not Infected>2 → Infected>2" in page.status.object


def test_an_ensemble_without_spread_is_the_run_itself(small):
    page = explorer.explore(small, outcome="Infected>2")
    page.start_ensemble(n=30, spread=0.0)
    data = page._sources["Infected"].data
    np.testing.assert_allclose(data["lower"], data["value"], rtol=1e-12)
    np.testing.assert_allclose(data["upper"], data["value"], rtol=1e-12)


def test_the_ensemble_band_widens_with_its_spread_and_is_seeded(small):
    page = explorer.explore(small, outcome="Infected>2")
    page.start_ensemble(n=60, spread=0.2, seed=3)
    data = dict(page._sources["Infected"].data)
    assert np.all(data["lower"] <= data["upper"]) and data["upper"][-1] > data["lower"][-1]
    page.start_ensemble(n=60, spread=0.2, seed=3)
    np.testing.assert_array_equal(page._sources["Infected"].data["upper"], data["upper"])


def test_the_dominant_loop_is_the_stronger_of_infection_and_recovery(small):
    page = explorer.explore(small, outcome="Infected>2")
    assert "no loop is active" in page.loop_text.object  # c = 1/d: nothing moves
    page.sliders["Contact Rate"].value = 1.0  # infection (gain 1) outruns recovery (1/2): R dominates
    table = page.setting.loops
    [reinforcing] = table.index[table["polarity"] == "R"]
    assert set(page.loop_source.data["loop"]) == {reinforcing}
    page.sliders["Contact Rate"].value = 0.1  # recovery wins: B
    [balancing] = table.index[table["polarity"] == "B"]
    assert set(page.loop_source.data["loop"]) == {balancing}


@pytest.mark.slow
def test_the_shipped_model_starts_from_its_calibration_with_the_studys_scenarios_targets_and_classifier():
    page = ac.explore()
    calibrated = ac.calibrate.read_parameters(ac.shipped_parameters())
    moved = [k for k, v in calibrated.items()
             if k in page.values and v != page.setting.sliders.at[k, "model_value"]]
    assert moved and all(page.values[k] == calibrated[k] for k in moved)
    assert set(page.toggles) == set(ac.study.scenarios.available(page.setting.model))
    assert {"Lab Revenue", "Lab Users"} <= set(page.setting.points)  # the targets' data points
    default = ac.study.outcomes.default_classifier(page.setting.model)
    assert f"{default.name} classifier" in page.outcome.object and "2030:" in page.outcome.object
    page.toggles["confidence-shock"].value = True
    assert page.values["Confidence Shock Size"] == 0.9
    # a switch is never varied by the ensemble or offered to the sweep
    assert "Confidence Shock Size" not in page.sweep_param.options


@pytest.mark.parametrize("argv, message", [
    (["explore", "missing.mdl"], "missing.mdl"),
    (["explore", "--port", "0"], "--port"),
])
def test_the_command_refuses_bad_input_in_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aicircle: error:") and message in err


def test_without_panel_the_explorer_says_how_to_install_it(small, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "panel", None)  # as if the [explore] extra were not installed
    with pytest.raises(ImportError, match=r"pip install 'aicircle\[explore\]'"):
        explorer.explore(small)
    assert cli.main(["explore", str(small.path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'aicircle[explore]'" in err


# --------------------------------------------------------------------------- in a browser

BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1600,1100")


def _browser_or_skip():
    missing = [p for p in ("/usr/bin/chromium", "/usr/bin/chromedriver") if not Path(p).exists()]
    try:
        import selenium  # noqa: F401 - the test's driver, from the [test] extra
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"no browser to test the explorer in: {', '.join(missing)} missing " \
                 f"(apt-get install chromium chromium-driver; pip install -e '.[test]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)  # in CI the browser test must run
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    """``aicircle explore MODEL --port N`` in a child process, up once its page answers."""

    def __init__(self, model, log: Path, timeout=240):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aicircle", "explore", *([str(model)] if model else []), "--port",
             str(self.port)], stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise AssertionError(f"aicircle explore exited with {self.process.returncode}: "
                                     f"{Path(log).read_text()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise AssertionError(f"aicircle explore did not answer within {timeout} s")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


_READ_SERIES = """
const [name, column] = arguments;
const doc = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
if (!doc) return null;
for (const m of doc.all_models) {
  if (m.name === name && m.data) return Array.from(m.data.get ? m.data.get(column) : m.data[column]);
}
return null;
"""

_PAGE_TEXT = """
const [word] = arguments;
const doc = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
if (!doc) return null;
for (const m of doc.all_models) {
  if (typeof m.text === 'string' && m.text.includes(word)) return m.text;
}
return null;
"""

_SLIDER = """
const [prefix] = arguments;
for (const m of Bokeh.documents[0].all_models) {
  const slider = 'start' in m && 'end' in m && 'value' in m;
  if (typeof m.title === 'string' && m.title.startsWith(prefix) && slider) {
    return [m.title, m.value];
  }
}
return [null, null];
"""

_DEEP = """
const [selector] = arguments;
const found = [];
function walk(root) {
  for (const el of root.querySelectorAll(selector)) found.push(el);
  for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
}
walk(document);
return found.filter(el => el.getClientRects().length > 0);  // those shown
"""


def _wait(driver, script, *args, until=lambda x: x is not None, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = driver.execute_script(script, *args)
        if until(found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"the page did not show what was waited for within {timeout} s")


def _png_size(path: Path) -> tuple:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _requested_hosts(driver) -> set:
    import json

    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.split(":")[0] in ("http", "https", "ws", "wss"):
                hosts.add(url.split("/")[2])
    return hosts


def explore_in_browser(model, variable, param, folder: Path, screenshot: Path):
    """Start the explorer of ``model`` in a browser and use it as a user does: type ``param`` in the
    search box, move its slider (the one left) ten steps right with the keyboard, wait until
    ``variable``'s plotted series is ``simulate``'s run at the slider's value, click the ensemble
    band's button and wait for the band; then write a screenshot.

    Returns ``(slider title, its value, series before, series after, band (lower, upper), hosts the
    page requested)``.
    """
    from selenium.webdriver.common.keys import Keys

    loaded = ac.load(model or ac.shipped_model())
    start = ac._explorer_arguments(loaded)["params"] or {}
    server = _Server(model, folder / "server.log")
    driver = _browser(folder / "profile")
    try:
        driver.get(server.url)
        before = _wait(driver, _READ_SERIES, f"series:{variable}", "value")
        [search] = _wait(driver, _DEEP, "input[placeholder='part of a name']", until=lambda x: len(x) == 1)
        search.send_keys(param)
        [handle] = _wait(driver, _DEEP, ".noUi-handle", until=lambda x: len(x) == 1)
        handle.click()
        for _ in range(10):
            handle.send_keys(Keys.ARROW_RIGHT)

        model_value = start.get(param, loaded.parameters.at[param, "value"])
        deadline = time.monotonic() + 120
        while True:  # until the series is the run at the slider's (moved) value
            title, value = driver.execute_script(_SLIDER, param)
            after = driver.execute_script(_READ_SERIES, f"series:{variable}", "value")
            run = loaded.simulate(params={**start, param: value})[variable].to_numpy()
            # the page's numbers are the server's float64 runs sent as binary arrays: simulate's own
            if value != model_value and np.allclose(after, run, rtol=1e-12, atol=0):
                break
            assert time.monotonic() < deadline, f"the page never drew the run at {param} = {value}"
            time.sleep(0.2)
        def band_button(buttons):
            return [b for b in buttons or [] if "ensemble band" in b.text]

        [button] = band_button(_wait(driver, _DEEP, "button", until=lambda xs: len(band_button(xs)) == 1))
        button.click()
        lower = _wait(driver, _READ_SERIES, f"series:{variable}", "lower",
                      until=lambda x: x is not None and all(v is not None for v in x))
        upper = driver.execute_script(_READ_SERIES, f"series:{variable}", "upper")
        time.sleep(1.5)  # the strip settles before the picture
        driver.save_screenshot(str(screenshot))
        return title, value, np.array(before), np.array(after), (np.array(lower), np.array(upper)), \
            _requested_hosts(driver)
    finally:
        driver.quit()
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["shipped", "SIR"])
def test_the_page_redraws_a_moved_slider_with_simulates_values(which, tmp_path):
    _browser_or_skip()
    if which == "SIR":
        if not SIR.is_file():
            pytest.skip(f"the peer SIR model is not at {SIR} (../shared/peer-models is absent)")
        model = tmp_path / "SIR.mdl"
        shutil.copy(SIR, model)
        loaded = ac.load(model)
        variable, param = loaded.stocks[0], loaded.parameters.index[0]
    else:
        model, loaded, variable, param = None, ac.load(ac.shipped_model()), "Lab Users", "Word of Mouth Rate"
    shot = tmp_path / "explorer.png"
    title, value, before, after, (lower, upper), hosts = explore_in_browser(model, variable, param, tmp_path,
                                                                            shot)
    assert title.startswith(param)
    start = ac._explorer_arguments(loaded)["params"] or {}
    np.testing.assert_allclose(after, loaded.simulate(params={**start, param: value})[variable], rtol=1e-12,
                               atol=0)
    assert not np.allclose(before, after)
    # the band of the ensemble around the moved slider, drawn by the background job
    assert np.all(lower <= upper) and np.any(lower < upper)
    width, height = _png_size(shot)
    assert width >= 1000 and height >= 600
    assert shot.stat().st_size > 30_000  # a page of plots and sliders, not a blank one
    # every asset came from the local server: no CDN, no font service
    assert hosts and all(h.startswith("127.0.0.1:") for h in hosts), hosts


@pytest.mark.slow
def test_the_page_refuses_another_model_file(tmp_path):
    _browser_or_skip()
    server = _Server(None, tmp_path / "server.log")
    driver = _browser(tmp_path / "profile")
    try:
        driver.get(server.url + "?model=/etc/passwd")
        text = _wait(driver, _PAGE_TEXT, "refused")
        assert "serves aicircle.mdl only" in text
        assert _wait(driver, "return window.Bokeh.documents[0].all_models.size;") < 20  # no sliders, no plots
    finally:
        driver.quit()
        server.stop()


if __name__ == "__main__":  # python tests/test_explore.py docs/figures/explorer.png
    import tempfile

    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as work:
        explore_in_browser(None, "Lab Users", "Word of Mouth Rate", Path(work), Path(work) / "shot.png")
        shutil.copy(Path(work) / "shot.png", out)
    print(f"wrote {out}")

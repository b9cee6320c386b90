"""Figures (aicircle.plots): each function draws a titled, labelled figure and saves a PNG.

The data come from tiny models run through the package (bifurcations, regime
maps, time to bust, Monte Carlo bands, sensitivity indices) or, for the
calibration figures, from small frames shaped like calibrate's output.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import aicircle as ac
from aicircle import plots, tipping
from aicircle.errors import InvalidInput
from aicircle.observables import read_targets
from aicircle.sensitivity import monte_carlo, sensitivity
from aicircle.study import outcomes
from aicircle.study.observables import OBSERVABLES as VOCABULARY
from conftest import mdl_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Confidence decays from c0 at rate k; capex is flat. Uncertain k and c0 for Monte Carlo
# and sensitivity; busts (confidence below 0.2) for time to bust and P(bust).
CONFIDENCE = mdl_text("""
k = 0.3 ~ 1/Year [0.05,1] ~ decay rate of confidence |
c0 = 1 ~ fraction [0.5,1] ~ initial confidence |
Investor Confidence = INTEG(-k * Investor Confidence, c0) ~ fraction ~ decays |
Hyperscaler Capex = 100 * (1 + 0 * Investor Confidence) ~ $B/Year ~ flat |
""", initial_time=2025, final_time=2035, time_step=0.05, saveper=0.25)

S_CURVE = mdl_text("""
a = 0 ~ dmnl [-3,3] ~ the bifurcation parameter |
b = 0 ~ dmnl [0,2] ~ another push |
x = INTEG(a + b + 3*x - x^3, -2) ~ dmnl ~ an S-shaped curve of equilibria |
""", initial_time=0, final_time=20, time_step=0.01, saveper=0.1)

BRUSSELATOR = mdl_text("""
A = 1 ~ dmnl ~ feed |
B = 1.5 ~ dmnl [1,3] ~ the bifurcation parameter |
X = INTEG(A - (B + 1)*X + X^2*Y, 1) ~ dmnl ~ activator |
Y = INTEG(B*X - X^2*Y, 1.5) ~ dmnl ~ inhibitor |
""", initial_time=0, final_time=10, time_step=0.01, saveper=0.1)

# Two cash stocks and one flow between them, one flow out to the world, a non-cash stock.
TWO_CASH_STOCKS = mdl_text("""
Investor Cash = INTEG(-Equity Investment, 100) ~ $B ~ money waiting to be invested |
Lab Cash = INTEG(Equity Investment - Lab Spending, 10) ~ $B ~ the lab's cash |
Equity Investment = 0.1 * Investor Cash ~ $B/Year ~ funds the lab: loop R1 |
Lab Spending = 0.2 * Lab Cash ~ $B/Year ~ drains the lab's cash: loop B1 |
Capacity = INTEG(Lab Spending / 10, 1) ~ GW ~ what the spending builds |
""", initial_time=2025, final_time=2030, time_step=0.25, saveper=1)

TARGETS_CSV = """id,observable,start,end,aggregation,value,unit,sigma,source,quote
rev_2023,lab_revenue,2023-01-01,2023-12-31,total,1.0,$B,0.3,synthetic,a test row
rev_2024,lab_revenue,2024-01-01,2024-12-31,total,3.7,$B,0.1,synthetic,a test row
rev_h1_2025,lab_revenue,2025-01-01,2025-06-30,total,4.3,$B,0.1,synthetic,a test row
cash_2024,lab_cash,2024-01-01,2024-12-31,level,20,$B,0.2,synthetic,a test row
"""


def _load(folder, text, name="model.mdl"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return ac.load(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plot_models")
    texts = {"confidence": CONFIDENCE, "s_curve": S_CURVE, "brusselator": BRUSSELATOR,
             "two_cash": TWO_CASH_STOCKS}
    return {name: _load(folder, text, f"{name}.mdl") for name, text in texts.items()}


@pytest.fixture(autouse=True)
def _close_figures():
    """Close whatever a failing test left open (a passing one closes it through plots.save)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _panels(fig_or_ax):
    """The visible Axes that show axes (a diagram panel with axis('off') has no labels)."""
    axes = [fig_or_ax] if isinstance(fig_or_ax, Axes) else fig_or_ax.axes
    return [ax for ax in axes if ax.get_visible() and ax.axison]


def _check_titled_and_labelled(fig_or_ax, labels="xy"):
    """A (sup)title, and on each panel a title and the axis labels named in ``labels``."""
    if isinstance(fig_or_ax, Figure):
        assert fig_or_ax.get_suptitle()
    panels = _panels(fig_or_ax)
    assert panels
    for ax in panels:
        assert ax.get_title()
        if "x" in labels:
            assert ax.get_xlabel()
        if "y" in labels:
            assert ax.get_ylabel()


def _check_saves_png(fig_or_ax, tmp_path, name="figure.png"):
    path = tmp_path / name
    assert plots.save(fig_or_ax, path) == path
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 1000  # a blank 1x1 PNG is ~70 bytes; any drawn figure is kilobytes
    figure = fig_or_ax if isinstance(fig_or_ax, Figure) else fig_or_ax.figure
    import matplotlib.pyplot as plt

    assert figure.number not in plt.get_fignums()  # save closed it


def _check(fig_or_ax, kind, tmp_path, labels="xy"):
    assert isinstance(fig_or_ax, kind)
    _check_titled_and_labelled(fig_or_ax, labels)
    _check_saves_png(fig_or_ax, tmp_path)


# --------------------------------------------------------------------------
# tipping figures
# --------------------------------------------------------------------------


def test_plot_bifurcation_draws_the_s_curve_with_its_folds(models, tmp_path):
    result = tipping.bifurcations(models["s_curve"], "a", -3, 3)
    ax = plots.plot_bifurcation(result, calibrated=0.5)
    assert ax.get_xlabel() == "a" and ax.get_ylabel() == "x"
    assert ax.get_xlim() == (-3.0, 3.0)
    labels = ax.get_legend_handles_labels()[1]
    assert {"stable equilibria", "unstable equilibria", "fold (tipping point)"} <= set(labels)
    _check(ax, Axes, tmp_path)


def test_plot_bifurcation_puts_the_chosen_state_on_the_vertical_axis(models, tmp_path):
    result = tipping.bifurcations(models["brusselator"], "B", 1, 3)
    ax = plots.plot_bifurcation(result, variable="Y")
    assert ax.get_ylabel() == "Y"
    assert "Hopf" in ax.get_legend_handles_labels()[1]
    _check(ax, Axes, tmp_path)


def test_plot_regime_map_draws_a_two_parameter_grid(models, tmp_path):
    frame = tipping.regime_map(models["s_curve"], "a", (0, 2), "b", (0, 2), n=(9, 5), outcome="x>0")
    ax = plots.plot_regime_map(frame, marker=(1.0, 1.0))
    assert ax.get_xlabel() == "a" and ax.get_ylabel() == "b"
    assert {"x>0", "not x>0", "calibrated"} <= {t.get_text() for t in ax.get_legend().get_texts()}
    _check(ax, Axes, tmp_path)


REGIME_GRID = pd.DataFrame([["boom", "boom", "bust"], ["boom", "bust", "bust"]],
                           index=pd.Index([0.0, 0.8], name="Shock Size"),
                           columns=pd.Index([1.0, 2.0, 3.0], name="Threshold"))


# the calibrated values on the grid's corners and edges (a shock of size 0 is the usual case)
@pytest.mark.parametrize("marker", [(1.0, 0.0), (3.0, 0.8), (1.0, 0.8), (2.0, 0.4)])
def test_plot_regime_map_shows_the_whole_calibrated_star(marker):
    ax = plots.plot_regime_map(REGIME_GRID, marker=marker)
    (star,) = [line for line in ax.lines if line.get_label() == "calibrated"]
    assert not star.get_clip_on()  # clipped, half the star vanished at an edge
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert x0 <= marker[0] <= x1 and y0 <= marker[1] <= y1
    fig = ax.figure
    fig.draw_without_rendering()
    box = star.get_window_extent(fig.canvas.get_renderer())
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
    assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1


def test_plot_regime_map_keeps_its_legend_off_the_map():
    ax = plots.plot_regime_map(REGIME_GRID, marker=(3.0, 0.8))
    fig = ax.figure
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    legend, axes_box = ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer)
    assert legend.x0 >= axes_box.x1  # beside the map: it hid the top-right corner
    assert legend.x1 <= fig.bbox.x1


def test_plot_outcome_map_draws_the_threshold_curve_and_hatches_what_the_data_reject(tmp_path):
    x, y = np.linspace(0, 1, 11), np.linspace(0, 2, 9)
    z = np.clip(x[None, :] + y[:, None] / 4, 0, 1)  # crosses 0.5 along x + y/4 = 0.5
    consistent = y[:, None] + 0 * x[None, :] < 1.5
    ax = plots.plot_outcome_map(x, y, z, consistent=consistent, marker=(0.2, 0.4), xlabel="a", ylabel="b",
                                label="P(bust)")
    curve = [c for c in ax.collections if c.get_linewidths().size and c.get_linewidths()[0] == 2]
    assert curve, "the threshold curve is drawn"
    assert any("//" in (getattr(c, "hatches", None) or ()) for c in ax.collections)  # the rejected region
    _check(ax, Axes, tmp_path)


def test_plot_outcome_map_draws_no_curve_where_the_outcome_does_not_cross_it():
    x, y = np.linspace(0, 1, 5), np.linspace(0, 1, 4)
    ax = plots.plot_outcome_map(x, y, np.zeros((4, 5)), consistent=np.ones((4, 5), bool), xlabel="a", ylabel="b")
    assert len(ax.collections) == 1  # the map alone: no curve, nothing rejected, nothing hatched


def test_plot_outcome_map_refuses_a_grid_of_the_wrong_shape():
    with pytest.raises(InvalidInput, match=r"z must have shape \(len\(y\), len\(x\)\) = \(3, 2\), got \(2, 3\)"):
        plots.plot_outcome_map([0, 1], [0, 1, 2], np.zeros((2, 3)))


def test_plot_distributions_draws_a_box_per_metric(tmp_path):
    rng = np.random.default_rng(0)
    ax = plots.plot_distributions({"loss": rng.normal(10, 2, 200), "gap": np.r_[rng.normal(5, 1, 99), np.nan]},
                                  unit="$B", title="outcomes")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["loss", "gap"]
    assert ax.get_xlabel() == "$B"
    _check_saves_png(ax, tmp_path)


def test_plot_time_to_bust_draws_the_year_of_bust_against_the_parameter(models, tmp_path):
    ks = np.linspace(0.05, 1.0, 12)
    ttb = tipping.time_to_bust(models["confidence"], pd.DataFrame({"k": ks}), classifier=outcomes.CONFIDENCE)
    assert np.isnan(ttb[0]) and np.isfinite(ttb[-1])  # k = 0.05 never busts by 2035
    ax = plots.plot_time_to_bust(ks, ttb, "k", outcomes.HORIZONS, outcomes.FORECAST_START, calibrated=0.3)
    _check(ax, Axes, tmp_path)
    # the horizons are drawn, and the axis starts where the forecast does unless a bust comes earlier
    assert sorted(line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == ":") == list(outcomes.HORIZONS)
    assert ax.get_ylim()[0] == min(outcomes.FORECAST_START, np.nanmin(ttb) - 0.5)


def test_plot_p_bust_draws_a_probability_by_year(models, tmp_path):
    _, p_bust = monte_carlo(models["confidence"], n=40, seed=0, outputs=["Investor Confidence"],
                            classifier=outcomes.CONFIDENCE)
    ax = plots.plot_p_bust(p_bust)
    assert ax.get_ylim() == (0.0, 1.0)
    _check(ax, Axes, tmp_path)


# --------------------------------------------------------------------------
# uncertainty and sensitivity figures
# --------------------------------------------------------------------------


def test_plot_bands_draws_monte_carlo_bands_with_data(models, tmp_path):
    bands, _ = monte_carlo(models["confidence"], n=40, seed=0, outputs=["Investor Confidence"])
    data = pd.DataFrame({"t": [2026.0, 2028.0], "y": [0.7, 0.5], "yerr": [0.05, 0.05]})
    ax = plots.plot_bands(bands, "Investor Confidence", unit="fraction", data=data, until=2032)
    assert ax.get_ylabel() == "fraction"
    labels = set(ax.get_legend_handles_labels()[1])
    assert {"50% of runs", "75% of runs", "95% of runs", "100% of runs", "median", "data"} <= labels
    assert ax.get_xlim()[1] <= 2032.5  # cut at `until` (plus matplotlib's margin)
    _check(ax, Axes, tmp_path)


SENSITIVITY_KINDS = [
    ("oat", None, None),
    ("morris", 4, "μ*"),
    ("sobol", 16, "total order ST"),
]


@pytest.mark.parametrize("method, n, legend", SENSITIVITY_KINDS)
def test_plot_sensitivity_draws_each_kind_of_frame(models, tmp_path, method, n, legend):
    frame = sensitivity(models["confidence"], method, "Investor Confidence", at=2030, n=n, seed=1)
    ax = plots.plot_sensitivity(frame, title=f"{method} indices")
    assert ax.get_title() == f"{method} indices"
    assert {t.get_text() for t in ax.get_yticklabels()} == {"k", "c0"}
    if legend:
        assert legend in ax.get_legend_handles_labels()[1]
    _check(ax, Axes, tmp_path)


def test_plot_sensitivity_labels_the_parameter_axis():
    frame = pd.DataFrame({"mu_star": [1.0, 2.0], "sigma": [0.1, 0.2], "mu_star_conf": [0.1, 0.1]},
                         index=pd.Index(["k", "c0"], name="parameter"))
    assert plots.plot_sensitivity(frame).get_ylabel()


def test_plot_scenarios_draws_one_panel_per_variable(models, tmp_path):
    model = models["confidence"]
    runs = {"baseline": model.simulate(), "fast decay": model.simulate(params={"k": 0.8})}
    variables = ["Investor Confidence", "Hyperscaler Capex"]
    fig = plots.plot_scenarios(runs, variables,
                               units={"Investor Confidence": "fraction", "Hyperscaler Capex": "$B/Year"})
    assert [ax.get_title() for ax in _panels(fig)] == variables
    _check(fig, Figure, tmp_path)


def test_plot_scenarios_keeps_each_scenario_visible_over_the_baseline(models):
    model = models["confidence"]
    base = model.simulate()
    # two scenarios equal to the baseline, and to each other: the worst case for hiding a line
    runs = {"baseline": base, "no change": base.copy(), "no change either": base.copy(),
            "fast decay": model.simulate(params={"k": 0.8})}
    fig = plots.plot_scenarios(runs, ["Investor Confidence"])
    lines = {line.get_label(): line for line in _panels(fig)[0].lines}
    baseline = lines.pop("baseline")
    assert baseline.get_linestyle() == "-" and baseline.get_marker() in ("None", "", None)
    assert all(line.get_zorder() > baseline.get_zorder() for line in lines.values())  # drawn over it
    assert all(line.get_linewidth() < baseline.get_linewidth() for line in lines.values())
    # a dash pattern and a marker of its own, not only a colour
    assert len({(line.get_linestyle(), line.get_marker()) for line in lines.values()}) == len(lines)
    assert all(line.get_marker() not in ("None", "", None) for line in lines.values())
    # markers of coinciding scenarios fall on different points
    starts = [line.get_markevery()[0] for line in (lines["no change"], lines["no change either"])]
    assert starts[0] != starts[1]


# --------------------------------------------------------------------------
# calibration figures (frames shaped like aicircle.calibrate's)
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_plot_profiles_draws_one_curve_per_parameter(tmp_path):
    grid = np.linspace(-1, 1, 9)
    curves = pd.concat([
        pd.DataFrame({"parameter": "rate", "x": grid, "value": 0.5 + 0.2 * grid,
                      "delta_chi2": 25 * grid**2}),
        # a parameter spanning decades is drawn on a log axis
        pd.DataFrame({"parameter": "scale", "x": grid, "value": 10.0 ** (2 * grid),
                      "delta_chi2": 6 * grid**2}),
    ], ignore_index=True)
    intervals = pd.DataFrame({"value": [0.5, 1.0], "lo95": [0.42, 0.1], "hi95": [0.58, 10.0]},
                             index=pd.Index(["rate", "scale"], name="parameter"))
    fig = plots.plot_profiles(curves, intervals, units={"rate": "1/Year", "scale": "Dmnl"})
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == ["rate", "scale"]
    assert [ax.get_xscale() for ax in panels] == ["linear", "log"]
    assert [ax.get_xlabel() for ax in panels] == ["value (1/Year)", "value (dimensionless)"]
    assert all("Δχ²" in ax.get_ylabel() for ax in panels)
    _check(fig, Figure, tmp_path)


def test_plot_profiles_takes_the_units_from_the_model(models):
    model = models["confidence"]
    curves = pd.DataFrame({"parameter": ["k", "k", "c0", "c0"], "value": [0.1, 0.5, 0.6, 0.9],
                           "delta_chi2": [4.0, 1.0, 2.0, 0.0]})
    intervals = pd.DataFrame({"value": [0.3, 0.8], "lo95": [0.2, 0.6], "hi95": [0.4, 0.9]},
                             index=pd.Index(["k", "c0"], name="parameter"))
    fig = plots.plot_profiles(curves, intervals, units=model.parameters["units"])
    assert [ax.get_xlabel() for ax in _panels(fig)] == ["value (1/Year)", "value (fraction)"]


def test_plot_residuals_ranks_the_targets_and_marks_those_outside_two_sigma(tmp_path):
    validation = pd.DataFrame({
        "id": ["a", "b", "c", "d"],
        "observable": ["lab_revenue", "lab_revenue", "lab_cash", "hyperscaler_capex"],
        "residual": [0.5, -2.5, 12.0, 1.0],  # 12 is clipped at 8
    })
    ax = plots.plot_residuals(validation)
    assert ax.get_title() == "Residuals: 50% of 4 targets within 2σ"
    # bottom to top: most negative to most positive, every target labelled by its id
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a", "d", "c"]
    outside = [c for c in ax.containers if c.get_label() == "outside 2σ"]
    assert [round(bar.get_width(), 9) for bar in outside[0]] == [-2.5, 8.0]  # 12 drawn to the clip
    assert "12.0" in [t.get_text().strip() for t in ax.texts]  # and its value written on the bar
    _check(ax, Axes, tmp_path)


def test_plot_residuals_labels_both_axes():
    validation = pd.DataFrame({"observable": ["lab_cash"], "residual": [1.0]})
    ax = plots.plot_residuals(validation)
    assert ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["lab_cash #1"]  # no id: observable and row


def _overlapping_pairs(texts, renderer):
    """Pairs of texts whose drawn boxes overlap by more than a pixel each way (touching is fine)."""
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text()]
    return [(a, b) for i, (a, p) in enumerate(boxes) for b, q in boxes[i + 1:]
            if min(p.x1, q.x1) - max(p.x0, q.x0) > 1 and min(p.y1, q.y1) - max(p.y0, q.y0) > 1]


@pytest.mark.parametrize("n", [4, 57, 120])  # 57: the shipped calibration's targets
def test_plot_residuals_labels_never_overlap(n):
    rng = np.random.default_rng(n)
    validation = pd.DataFrame({"id": [f"target_{i:03d}_of_some_length" for i in range(n)],
                               "observable": "lab_revenue", "residual": rng.normal(0, 2, n)})
    ax = plots.plot_residuals(validation)
    renderer = ax.figure.canvas.get_renderer()
    ax.figure.draw_without_rendering()  # lay the figure out as it is saved
    labels = ax.get_yticklabels()
    assert sorted(t.get_text() for t in labels) == sorted(validation["id"])
    assert _overlapping_pairs(labels, renderer) == []
    # and the labels stay inside the figure
    fig_box = ax.figure.bbox
    assert all(fig_box.x0 <= t.get_window_extent(renderer).x0 for t in labels)


def test_plot_fit_draws_each_observable_with_its_targets(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text(TARGETS_CSV, encoding="utf-8")
    targets = read_targets(path, VOCABULARY)
    times = np.linspace(2020, 2027, 85)
    values = {"Lab Revenue": 0.05 * np.exp(0.9 * (times - 2020)),
              "Lab Cash": 5 + 3 * (times - 2020)}
    names = {"lab_revenue": "Lab Revenue", "lab_cash": "Lab Cash"}
    bands = pd.DataFrame({"lo95": 0.8 * values["Lab Revenue"], "hi95": 1.2 * values["Lab Revenue"]},
                         index=pd.MultiIndex.from_product([["Lab Revenue"], times],
                                                          names=["output", "time"]))
    fig = plots.plot_fit(targets, times, values, names, bands=bands, vocabulary=VOCABULARY)
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == ["Lab Revenue", "Lab Cash"]
    assert [ax.get_ylabel() for ax in panels] == ["$B per year", "$B"]
    _check(fig, Figure, tmp_path)


# --------------------------------------------------------------------------
# structure
# --------------------------------------------------------------------------


def test_plot_structure_draws_the_flow_between_two_cash_stocks(models, tmp_path):
    fig = plots.plot_structure(models["two_cash"])
    assert isinstance(fig, Figure)
    assert fig.get_suptitle() == "Structure of two_cash.mdl"
    diagram, listing = fig.axes
    assert diagram.get_title()
    texts = [t.get_text() for t in diagram.texts]
    assert {"Investor Cash", "Lab Cash", "Equity Investment"} <= set(texts)
    assert "Lab Spending" not in texts  # it leaves for no cash stock: no arrow
    (notes,) = [t.get_text() for t in listing.texts]
    assert "R1: Equity Investment" in notes and "B1: Lab Spending" in notes
    assert "Capacity" in notes  # listed among the other stocks
    # a diagram has no axes to label: only the title and the PNG are checked
    _check_saves_png(fig, tmp_path)


def test_plots_draw_on_a_given_axes(models, tmp_path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    result = tipping.bifurcations(models["s_curve"], "a", -3, 3)
    assert plots.plot_bifurcation(result, ax=axes[0]) is axes[0]
    validation = pd.DataFrame({"observable": ["lab_cash"], "residual": [math.pi]})
    assert plots.plot_residuals(validation, ax=axes[1]) is axes[1]
    _check_saves_png(fig, tmp_path)


# --------------------------------------------------------------------------
# one run against time: plot_run and `aicircle plot`
# --------------------------------------------------------------------------

RUN = pd.DataFrame({"Lab Revenue": [1.0, 2.0, 4.0, 8.0], "Lab Cash Burn": [3.0, 2.5, 2.0, 6.0],
                    "Investor Confidence": [0.9, 0.8, 0.5, 0.3]},
                   index=pd.Index([2024.0, 2024.5, 2025.0, 2025.5], name="time"))


def test_plot_run_shares_one_axis_between_variables_of_like_size(tmp_path):
    fig = plots.plot_run(RUN, ["lab_revenue", "LAB CASH BURN"], units={"Lab Revenue": "$B/Year",
                                                                         "Lab Cash Burn": "$B/Year"})
    (ax,) = _panels(fig)
    assert [line.get_label() for line in ax.lines] == ["Lab Revenue", "Lab Cash Burn"]  # model's spelling
    assert ax.get_ylabel() == "$B per year" and ax.get_xlabel() == "time"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Lab Revenue", "Lab Cash Burn"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), RUN.index)
    _check_titled_and_labelled(ax)
    _check_saves_png(fig, tmp_path)


def test_plot_run_gives_each_variable_a_panel_when_their_sizes_differ_a_lot(tmp_path):
    # largest magnitudes 8 and 0.009: a ratio of ~900, beyond RUN_SHARED_AXIS_RATIO (20)
    frame = RUN.assign(**{"Investor Confidence": RUN["Investor Confidence"] / 100})
    fig = plots.plot_run(frame, ["Lab Revenue", "Investor Confidence"])
    assert [ax.get_title() for ax in _panels(fig)] == ["Lab Revenue", "Investor Confidence"]
    _check(fig, Figure, tmp_path, labels="y")  # time is labelled once, under the lowest panel
    assert _panels(fig)[-1].get_xlabel() == "time"


def test_plot_run_draws_on_a_given_axes_whatever_the_sizes():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    frame = RUN.assign(**{"Investor Confidence": RUN["Investor Confidence"] / 100})
    assert plots.plot_run(frame, ["Lab Revenue", "Investor Confidence"], ax=ax) is ax.figure
    assert len(ax.lines) == 2


def test_plot_run_leaves_a_gap_at_an_infinite_value():
    frame = RUN.assign(**{"Lab Revenue": [1.0, np.inf, 4.0, 8.0]})
    (ax,) = _panels(plots.plot_run(frame, ["Lab Revenue"]))
    assert np.isnan(ax.lines[0].get_ydata()[1])
    assert ax.get_ylim()[1] < 10  # the infinity did not stretch the axis


def test_plot_run_names_an_unknown_column_and_its_close_matches():
    with pytest.raises(ac.errors.UnknownName, match=r"no column 'lab revnue'.*'Lab Revenue'"):
        plots.plot_run(RUN, ["lab revnue"])


# `aicircle plot`: in-process through cli.main (the console script calls it), for speed


@pytest.fixture(scope="module")
def run_csv(tmp_path_factory, models):
    """A CSV written by `aicircle run` on the small confidence model."""
    from aicircle import cli

    folder = tmp_path_factory.mktemp("plot_cli")
    path = folder / "run.csv"
    assert cli.main(["run", str(models["confidence"].path), "--out", str(path), "-q"]) == 0
    return path


def _aicircle(capsys, *args):
    from aicircle import cli

    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_plot_command_writes_a_png_of_the_named_columns(run_csv, tmp_path, capsys):
    out = tmp_path / "confidence.png"
    code, err = _aicircle(capsys, "plot", run_csv, "investor_confidence", "-o", out, "--title", "Decay")
    assert code == 0 and err.strip() == f"wrote {out}"
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000  # a drawn 7x4 inch figure at 130 dpi; a blank one is ~70 bytes
    from PIL import Image  # matplotlib's own dependency reads it back: a whole, valid image

    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.size == (910, 546)  # 7 x 4.2 inches at 130 dpi
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed in place


@pytest.mark.slow
def test_plot_command_replaces_its_own_png_but_not_another(run_csv, tmp_path, capsys):
    out = tmp_path / "plot.png"
    assert _aicircle(capsys, "plot", run_csv, "Investor Confidence", "-o", out)[0] == 0
    assert _aicircle(capsys, "plot", run_csv, "Hyperscaler Capex", "-o", out)[0] == 0  # its own: replaced
    foreign = tmp_path / "photo.png"
    foreign.write_bytes(PNG_SIGNATURE + b"someone else's picture")
    code, err = _aicircle(capsys, "plot", run_csv, "Investor Confidence", "-o", foreign)
    assert code == 2 and "use --force" in err
    assert foreign.read_bytes() == PNG_SIGNATURE + b"someone else's picture"
    assert _aicircle(capsys, "plot", run_csv, "Investor Confidence", "-o", foreign, "--force")[0] == 0


def test_plot_command_refuses_to_overwrite_its_input(run_csv, capsys):
    before = run_csv.read_bytes()
    code, err = _aicircle(capsys, "plot", run_csv, "Investor Confidence", "-o", run_csv, "--force")
    assert code == 2
    assert err.count("\n") == 1 and "refusing to overwrite" in err
    assert run_csv.read_bytes() == before


BAD_PLOT_INPUT = {
    "unknown column": (lambda d, run: [run, "investor_confidense"],
                       r"no column 'investor_confidense'.*close matches: 'Investor Confidence'"),
    "missing file": (lambda d, run: [d / "nowhere.csv", "k"], r"RUN .*nowhere.csv does not exist"),
    "a folder": (lambda d, run: [d, "k"], r"is a folder"),
    "not a run csv": (lambda d, run: [_write(d / "t.csv", "id,value\na,1\n"), "value"],
                      r"not a CSV written by 'aicircle run'"),
    "text in a column": (lambda d, run: [_write(d / "t.csv", "time,x\n0,1\n1,abc\n"), "x"],
                         r"column 'x' holds 'abc', not a number"),
    "times not increasing": (lambda d, run: [_write(d / "t.csv", "time,x\n1,1\n0,2\n"), "x"],
                             r"times are not increasing"),
    "no rows": (lambda d, run: [_write(d / "t.csv", "time,x\n"), "x"], r"no rows"),
    "binary file": (lambda d, run: [_write(d / "t.csv", b"time,\xff\xfe\x00\x01"), "x"],
                    r"not a CSV written by 'aicircle run'"),
}


def _write(path, content):
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


@pytest.mark.parametrize("case", list(BAD_PLOT_INPUT))
def test_plot_command_bad_input_exits_2_with_one_line_naming_it(case, run_csv, tmp_path, capsys):
    make, pattern = BAD_PLOT_INPUT[case]
    out = tmp_path / "out.png"
    code, err = _aicircle(capsys, "plot", *make(tmp_path, run_csv), "-o", out)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("aicircle: error: ")
    assert re.search(pattern, err), err
    assert not out.exists()


def test_plot_command_writes_only_png(run_csv, tmp_path, capsys):
    out = tmp_path / "plot.pdf"
    code, err = _aicircle(capsys, "plot", run_csv, "Investor Confidence", "-o", out)
    assert code == 2 and "writes PNG; give a name ending in .png" in err
    assert not out.exists()


def test_plot_command_needs_an_output(run_csv, capsys):
    code, err = _aicircle(capsys, "plot", run_csv, "Investor Confidence")
    assert code == 2 and "required: -o" in err


# --------------------------------------------------------------------------- misuse

@pytest.mark.parametrize("call, match", [
    (lambda: plots.plot_bands(None, "AI Capex"), "bands must be a non-empty pandas DataFrame"),
    (lambda: plots.plot_p_bust("soon"), "p_bust must be a pandas Series"),
    (lambda: plots.plot_sensitivity(None), "frame must be a non-empty pandas DataFrame"),
    (lambda: plots.plot_sensitivity(pd.DataFrame({"x": [1.0]})), "Sobol .* Morris .* OAT"),
    (lambda: plots.plot_regime_map([1]), "frame must be a non-empty pandas DataFrame"),
    (lambda: plots.save("a figure", "f.png"), "matplotlib Figure or Axes"),
], ids=["bands None", "p_bust str", "sensitivity None", "sensitivity no indices", "regime list", "save str"])
def test_plot_functions_refuse_what_they_cannot_draw_naming_the_argument(call, match):
    with pytest.raises(ac.AicircleError, match=match):
        call()


def test_plot_bands_names_an_output_the_bands_do_not_hold():
    bands = pd.DataFrame({"median": [1.0, 2.0]},
                         index=pd.MultiIndex.from_tuples([("A", 2025.0), ("A", 2026.0)], names=["output", "time"]))
    with pytest.raises(ac.UnknownName, match="output 'B' is not in the bands; they hold A"):
        plots.plot_bands(bands, "B")


@pytest.mark.parametrize("name", ["folder", "bare"])
def test_save_never_writes_another_file_than_the_one_named(tmp_path, name):
    # matplotlib saves to a folder or a bare name as PATH.png: a file the caller did not name
    target = tmp_path if name == "folder" else tmp_path / "figure"
    fig, _ = plots.panels(1)
    with pytest.raises(ac.InvalidInput, match="needs a file name with a suffix"):
        plots.save(fig, target)
    assert list(tmp_path.parent.glob(f"{tmp_path.name}.png")) == [] and list(tmp_path.iterdir()) == []

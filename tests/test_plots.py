"""Figures (aicircle.plots): each function draws a titled, labelled figure and saves a PNG.

The data come from tiny models run through the package (bifurcations, regime
maps, time to bust, Monte Carlo bands, sensitivity indices) or, for the
calibration figures, from small frames shaped like calibrate's output.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import aicircle as ac
from aicircle import circle, plots, tipping
from aicircle.observables import read_targets
from aicircle.sensitivity import monte_carlo, sensitivity

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Confidence decays from c0 at rate k; capex is flat. Uncertain k and c0 for Monte Carlo
# and sensitivity; busts (confidence below 0.2) for time to bust and P(bust).
CONFIDENCE = """{UTF-8}
k = 0.3 ~ 1/Year [0.05,1] ~ decay rate of confidence |
c0 = 1 ~ fraction [0.5,1] ~ initial confidence |
Investor Confidence = INTEG(-k * Investor Confidence, c0) ~ fraction ~ decays |
Hyperscaler Capex = 100 * (1 + 0 * Investor Confidence) ~ $B/Year ~ flat |
FINAL TIME = 2035 ~ Year ~ end |
INITIAL TIME = 2025 ~ Year ~ start |
SAVEPER = 0.25 ~ Year ~ save |
TIME STEP = 0.05 ~ Year ~ step |
"""

S_CURVE = """{UTF-8}
a = 0 ~ dmnl [-3,3] ~ the bifurcation parameter |
b = 0 ~ dmnl [0,2] ~ another push |
x = INTEG(a + b + 3*x - x^3, -2) ~ dmnl ~ an S-shaped curve of equilibria |
FINAL TIME = 20 ~ Year ~ end |
INITIAL TIME = 0 ~ Year ~ start |
SAVEPER = 0.1 ~ Year ~ save |
TIME STEP = 0.01 ~ Year ~ step |
"""

BRUSSELATOR = """{UTF-8}
A = 1 ~ dmnl ~ feed |
B = 1.5 ~ dmnl [1,3] ~ the bifurcation parameter |
X = INTEG(A - (B + 1)*X + X^2*Y, 1) ~ dmnl ~ activator |
Y = INTEG(B*X - X^2*Y, 1.5) ~ dmnl ~ inhibitor |
FINAL TIME = 10 ~ Year ~ end |
INITIAL TIME = 0 ~ Year ~ start |
SAVEPER = 0.1 ~ Year ~ save |
TIME STEP = 0.01 ~ Year ~ step |
"""

# Two cash stocks and one flow between them, one flow out to the world, a non-cash stock.
TWO_CASH_STOCKS = """{UTF-8}
Investor Cash = INTEG(-Equity Investment, 100) ~ $B ~ money waiting to be invested |
Lab Cash = INTEG(Equity Investment - Lab Spending, 10) ~ $B ~ the lab's cash |
Equity Investment = 0.1 * Investor Cash ~ $B/Year ~ funds the lab: loop R1 |
Lab Spending = 0.2 * Lab Cash ~ $B/Year ~ drains the lab's cash: loop B1 |
Capacity = INTEG(Lab Spending / 10, 1) ~ GW ~ what the spending builds |
FINAL TIME = 2030 ~ Year ~ end |
INITIAL TIME = 2025 ~ Year ~ start |
SAVEPER = 1 ~ Year ~ save |
TIME STEP = 0.25 ~ Year ~ step |
"""

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


def test_plot_time_to_bust_draws_the_year_of_bust_against_the_parameter(models, tmp_path):
    ks = np.linspace(0.05, 1.0, 12)
    ttb = tipping.time_to_bust(models["confidence"], pd.DataFrame({"k": ks}))
    assert np.isnan(ttb[0]) and np.isfinite(ttb[-1])  # k = 0.05 never busts by 2035
    ax = plots.plot_time_to_bust(ks, ttb, "k", calibrated=0.3)
    _check(ax, Axes, tmp_path)


def test_plot_p_bust_draws_a_probability_by_year(models, tmp_path):
    _, p_bust = monte_carlo(models["confidence"], n=40, seed=0, outputs=["Investor Confidence"],
                            classifier=circle.CONFIDENCE)
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


# --------------------------------------------------------------------------
# calibration figures (frames shaped like aicircle.calibrate's)
# --------------------------------------------------------------------------


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
    fig = plots.plot_profiles(curves, intervals)
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == ["rate", "scale"]
    assert [ax.get_xscale() for ax in panels] == ["linear", "log"]
    _check(fig, Figure, tmp_path)


def test_plot_residuals_marks_targets_outside_two_sigma(tmp_path):
    validation = pd.DataFrame({
        "id": ["a", "b", "c", "d"],
        "observable": ["lab_revenue", "lab_revenue", "lab_cash", "hyperscaler_capex"],
        "residual": [0.5, -2.5, 12.0, 1.0],  # 12 is clipped at 8
    })
    ax = plots.plot_residuals(validation)
    assert ax.get_title() == "Residuals: 50% of 4 targets within 2σ"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lab_revenue", "lab_cash",
                                                            "hyperscaler_capex"]
    _check(ax, Axes, tmp_path)


def test_plot_residuals_labels_the_target_axis():
    validation = pd.DataFrame({"observable": ["lab_cash"], "residual": [1.0]})
    assert plots.plot_residuals(validation).get_xlabel()


def test_plot_fit_draws_each_observable_with_its_targets(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text(TARGETS_CSV, encoding="utf-8")
    targets = read_targets(path)
    times = np.linspace(2020, 2027, 85)
    values = {"Lab Revenue": 0.05 * np.exp(0.9 * (times - 2020)),
              "Lab Cash": 5 + 3 * (times - 2020)}
    names = {"lab_revenue": "Lab Revenue", "lab_cash": "Lab Cash"}
    bands = pd.DataFrame({"lo95": 0.8 * values["Lab Revenue"], "hi95": 1.2 * values["Lab Revenue"]},
                         index=pd.MultiIndex.from_product([["Lab Revenue"], times],
                                                          names=["output", "time"]))
    fig = plots.plot_fit(targets, times, values, names, bands=bands)
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

"""The capital-circle model itself (``models/aicircle.mdl``, docs/design.md §2-§4).

Checks, in order: its XMILE twin is current and runs the same; independent
implementations agree on it (PySD and aicircle, Euler, RK4 and RK45); its
structure keeps docs/design.md §2's promises (stocks, units, comments, ranges, loops,
scenario inputs, stock-flow consistent money); money is conserved and stocks stay
non-negative for any parameters in their ranges; reality checks with the money
cut off or confidence held at zero; and the story's shape before calibration.

The model's own values are used throughout (no calibrated parameters), and every
run starts from them plus what the test gives.
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import aicircle as ac
from aicircle.compiler import clean_name
from aicircle.observables import find_observables
from aicircle.study import outcomes, scenarios
from aicircle.study.observables import OBSERVABLES
from aicircle.xmile import export_xmile

with warnings.catch_warnings():
    # chardet, imported by PySD's backend, warns about its own deprecated module path
    warnings.simplefilter("ignore", DeprecationWarning)
    import pysd
    from pysd.translators.vensim.vensim_file import VensimFile

ROOT = Path(__file__).resolve().parents[1]
MDL = ROOT / "models" / "aicircle.mdl"
XMILE = ROOT / "models" / "aicircle.xmile"

pytestmark = [
    # PySD 3.14's run() calls DataFrame.set_index(inplace=True), deprecated by pandas 3
    pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning"),
]

LOOPS = ("R1", "R2", "R3", "B1", "B2", "B3", "B4", "B5")  # docs/design.md §2
SCENARIO_SIZES = ("Open Model Price Shock Size", "Chipmaker Reinvestment Stop Size",
                  "Stargate Shortfall Size", "Viral App Boost Size", "Credit Tightening Size",
                  "Confidence Shock Size")  # docs/design.md §2: six scenario inputs, all off by default
# A growth rate: it falls below zero in a bust (-0.35 seen in random runs). Every other
# stock is an amount (money, debt, GW, users, $ per user, shares) and cannot be negative.
SIGNED_STOCKS = {"Perceived Growth"}
LAB_SPENDING = ("Lab Compute Payments", "Lab Other Costs", "Cancellation Fees")  # the lab's cash outflows


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def model():
    return ac.load(MDL)


@pytest.fixture(scope="module")
def elements():
    """The model's elements as PySD's Vensim translator reads them (nothing written)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = VensimFile(MDL)
        parsed.parse()
        abstract = parsed.get_abstract_model()
    (main,) = abstract.sections
    return {el.name: el for el in main.elements}


@pytest.fixture(scope="module")
def observables(model):
    return list(find_observables(model.variables, OBSERVABLES).values())


@pytest.fixture(scope="module")
def cash_stocks(model):
    return [s for s in model.stocks if s.endswith("Cash")]


@pytest.fixture(scope="module")
def baseline(model):
    return model.simulate()


@pytest.fixture(scope="module")
def scenario_runs(model, cash_stocks, observables):
    """The baseline (set "baseline") and every scenario (set = its name), in one batch."""
    inputs = sorted({name for sc in scenarios.SCENARIOS.values() for name in sc.params})
    defaults = model.parameters.loc[inputs, "value"].to_dict()
    rows = {"baseline": defaults}
    rows.update({name: {**defaults, **sc.params} for name, sc in scenarios.SCENARIOS.items()})
    table = pd.DataFrame.from_dict(rows, orient="index")
    columns = list(dict.fromkeys([*cash_stocks, "Total Money", *observables, *outcomes.ECONOMIC.variables]))
    return model.simulate_batch(table, return_columns=columns)


def pysd_run(path: Path, folder: Path) -> pd.DataFrame:
    """PySD's run of a copy of ``path`` with a fresh model object (PySD writes a .py beside it)."""
    copy = folder / path.name
    shutil.copy(path, copy)
    reader = pysd.read_vensim if path.suffix == ".mdl" else pysd.read_xmile
    return reader(str(copy)).run()


@pytest.fixture(scope="module")
def pysd_mdl_run(tmp_path_factory):
    return pysd_run(MDL, tmp_path_factory.mktemp("pysd_mdl"))


def worst_relative_difference(actual, expected, columns) -> tuple:
    """(largest |actual - expected| / max |expected| over the columns, its column).

    ``actual`` and ``expected`` map column names to arrays (DataFrames or dicts).

    A column that is zero throughout is scaled by 1 (absolute difference).
    """
    worst = (0.0, None)
    for column in columns:
        a = np.asarray(actual[column], dtype=float)
        e = np.asarray(expected[column], dtype=float)
        scale = float(np.max(np.abs(e))) or 1.0
        difference = float(np.max(np.abs(a - e))) / scale
        if not difference <= worst[0]:  # NaN counts as the worst
            worst = (difference, column)
    return worst


def outcome(times, run, horizon=2035.0) -> str:
    """The study's (economic) outcome of one run; ``run`` maps variable names to values."""
    values = [np.asarray(run[v], dtype=float)[None] for v in outcomes.ECONOMIC.variables]
    return str(outcomes.ECONOMIC.labels(np.asarray(times, dtype=float), values, horizon)[0])


def lab_spending(run: pd.DataFrame) -> pd.Series:
    return sum(run[c] for c in LAB_SPENDING)


# --------------------------------------------------------------------------- the XMILE twin

@pytest.mark.slow
def test_checked_in_xmile_is_the_export_of_the_mdl():
    assert export_xmile(MDL) == XMILE.read_text(encoding="utf-8"), \
        "models/aicircle.xmile is stale; regenerate with: " \
        "aicircle export-xmile models/aicircle.mdl -o models/aicircle.xmile"


@pytest.mark.slow  # about 5 s: PySD translates and runs both files
def test_pysd_runs_the_xmile_twin_like_the_mdl(pysd_mdl_run, tmp_path):
    from_xmile = pysd_run(XMILE, tmp_path)
    # PySD's XMILE reader saves every TIME STEP (it ignores isee:save_interval): compare
    # at the .mdl's save times. Its time index is rounded to 7 decimals.
    rows = from_xmile.index.get_indexer(pysd_mdl_run.index, method="nearest")
    np.testing.assert_allclose(from_xmile.index[rows], pysd_mdl_run.index, rtol=0, atol=1e-6)
    from_xmile = from_xmile.iloc[rows].set_axis(pysd_mdl_run.index)
    shared = [c for c in pysd_mdl_run.columns if c in from_xmile.columns and c != "SAVEPER"]
    assert len(shared) == len(pysd_mdl_run.columns) - 1  # every .mdl column but SAVEPER
    # The export writes the same expression trees; only the order of a stock's flows
    # can change, so differences are rounding (3e-16 seen). 1e-6 is the contract for
    # an XMILE export (tests/test_xmile.py) and far above rounding.
    difference, column = worst_relative_difference(from_xmile, pysd_mdl_run, shared)
    assert difference <= 1e-6, f"{column}: {difference:.3g}"


# --------------------------------------------------------------------------- independent implementations

@pytest.mark.slow
def test_aicircle_euler_run_equals_pysd_run_of_the_mdl(baseline, pysd_mdl_run):
    np.testing.assert_array_equal(baseline.index, pysd_mdl_run.index)
    assert set(baseline.columns) <= set(pysd_mdl_run.columns)
    # Same Euler semantics in two implementations: differences are rounding from the
    # order of operations (3e-16 seen); 1e-9 leaves room for it to accumulate over
    # 3840 steps (as in tests/test_pysd_crosscheck.py).
    difference, column = worst_relative_difference(baseline, pysd_mdl_run, baseline.columns)
    assert difference <= 1e-9, f"{column}: {difference:.3g}"


@pytest.fixture(scope="module")
def rk4_run(model, observables):
    return model.simulate(solver="rk4", return_columns=observables)


@pytest.mark.slow
def test_rk45_agrees_with_rk4_at_the_time_step(model, observables, rk4_run):
    adaptive = model.simulate(solver="rk45", rtol=1e-8, return_columns=observables)
    # Measured: 1.2e-3 of the max |value| (Chipmaker Investment in Labs), and it does not
    # shrink with RK4's step. It is not truncation error (RK45 at rtol 1e-8 is within
    # 2e-6 of rtol 1e-10) but the timing of STEP events (ChatGPT's launch, the
    # chipmaker's reinvestment): Vensim's STEP switches when t + TIME STEP/2 > start, so
    # RK45 sees it at start - TIME STEP/2, while RK4's stages put it at about start -
    # TIME STEP/6. The next test removes that difference. 2.5e-3: twice what is seen.
    difference, column = worst_relative_difference(adaptive, rk4_run, observables)
    assert difference <= 2.5e-3, f"{column}: {difference:.3g}"


@pytest.mark.slow
def test_rk45_matches_rk4_once_step_events_are_timed_alike(model, observables, rk4_run):
    # With TIME STEP / 3 as RK45's Vensim time step, its STEP events fall at start -
    # TIME STEP/6, as RK4's do. What remains is RK4's error at the model's TIME STEP,
    # of low order at the kinks of MIN and MAX: 8.9e-6 seen; 1e-4 leaves a margin of 10.
    time_step = model.time["time_step"]
    aligned = model.simulate(solver="rk45", rtol=1e-8, time_step=time_step / 3,
                             return_columns=observables)
    difference, column = worst_relative_difference(aligned, rk4_run, observables)
    assert difference <= 1e-4, f"{column}: {difference:.3g}"


# --------------------------------------------------------------------------- structure

@pytest.fixture(scope="module")
def calibrated(model):
    """The shipped calibration's values of the model's parameters."""
    from aicircle import _resources
    from aicircle.calibrate import read_parameters

    values = read_parameters(_resources.shipped_parameters())
    return {k: v for k, v in values.items() if k in model.parameters.index}


@pytest.mark.slow  # 7 scenarios x 3 solvers over 2020-2035; radau dominates (about 30 s)
@pytest.mark.parametrize("solver", ["euler", "rk45", "radau"])
@pytest.mark.parametrize("scenario", ["baseline", *scenarios.SCENARIOS])
def test_every_scenario_runs_with_every_solver_and_keeps_its_money(model, calibrated, cash_stocks, scenario,
                                                                   solver):
    extra = {} if scenario == "baseline" else scenarios.scenario_params(model, scenario)
    run = model.simulate(params={**calibrated, **extra}, solver=solver,
                         return_columns=[*cash_stocks, "Total Money", "Investor Confidence"])
    assert np.isfinite(run.to_numpy()).all()
    total = run["Total Money"].to_numpy()
    # adaptive solvers conserve the sum up to their tolerance on each cash stock (rtol 1e-6 of
    # ~5e4 $B of outside cash: a few 1e-2); Euler to rounding
    assert np.max(np.abs(total - total[0])) <= (1e-9 if solver == "euler" else 1e-5) * abs(total[0])
    # confidence is a fraction: its guards keep every solver's trial steps inside [0, 1]
    assert run["Investor Confidence"].between(0, 1).all()


def test_model_has_at_least_twelve_stocks(model):
    assert len(model.stocks) >= 12


def test_model_runs_from_2020_or_before_to_2035_or_after(model):
    assert model.time["initial_time"] <= 2020
    assert model.time["final_time"] >= 2035


@pytest.mark.slow
def test_total_money_is_the_sum_of_the_cash_stocks(cash_stocks, elements):
    assert len(cash_stocks) >= 4  # lab, cloud, chip and outside (docs/design.md §2)
    ast = elements["Total Money"].components[0].ast
    assert type(ast).__name__ == "ArithmeticStructure"
    assert set(ast.operators) == {"+"}
    assert sorted(a.reference for a in ast.arguments) == sorted(clean_name(s) for s in cash_stocks)


def test_every_money_flow_leaves_one_cash_stock_and_enters_another(model, cash_stocks):
    flows = model.stock_flows()
    cash = {s: flows[s] for s in cash_stocks}
    money_flows = {f for terms in cash.values() for f in terms["in"] + terms["out"]}
    assert "(expression)" not in money_flows  # every cash rate is a sum of named flows
    for flow in sorted(money_flows):
        sources = [s for s, terms in cash.items() if flow in terms["out"]]
        sinks = [s for s, terms in cash.items() if flow in terms["in"]]
        assert len(sources) == 1 and len(sinks) == 1 and sources != sinks, \
            f"{flow}: leaves {sources}, enters {sinks}"


def test_money_flow_comments_name_the_cash_stocks_the_equations_connect(model, cash_stocks, elements):
    flows = model.stock_flows()
    from_equations = {f: (s, t) for s in cash_stocks for t in cash_stocks
                      for f in flows[s]["out"] if f in flows[t]["in"]}
    from_comments = {}
    for name, el in elements.items():
        match = re.search(r"Money flow (.+? Cash) -> (.+? Cash)\b", el.documentation)
        if match:
            from_comments[name] = (match[1], match[2])
    assert from_comments == from_equations


def test_every_variable_has_units_and_a_comment(elements):
    missing = [name for name, el in elements.items()
               if not el.units.strip() or not el.documentation.strip()]
    assert not missing


def test_every_parameter_has_a_range(model):
    p = model.parameters
    low, high = p["min"].to_numpy(), p["max"].to_numpy()
    # a fixed range [a, a] declares a convention that is not to be varied (Trend Base Year)
    ranged = np.isfinite(low) & np.isfinite(high) & ((low < high) | ((low == high) & (p["value"] == low)))
    assert not list(p.index[~ranged])
    inside = (low <= p["value"]) & (p["value"] <= high)
    assert not list(p.index[~inside])


def test_every_estimated_parameter_documents_its_source_or_rationale(model):
    p = model.parameters
    # Exempt: scenario inputs (switches, "0 = off", not estimates) and conventions with a
    # fixed range [a, a]; their comments say what they are.
    inputs = {name for sc in scenarios.SCENARIOS.values() for name in sc.params}
    exempt = inputs | set(p.index[p["min"] == p["max"]])
    undocumented = [name for name in p.index if name not in exempt
                    and not re.match(r"(Source|Rationale): \S", p.loc[name, "doc"])]
    assert not undocumented
    assert all(p.loc[name, "doc"].strip() for name in exempt)


def test_every_design_observable_is_a_model_variable(model):
    assert set(find_observables(model.variables, OBSERVABLES)) == set(OBSERVABLES)
    assert len(OBSERVABLES) == 17


@pytest.mark.parametrize("loop", LOOPS)
def test_feedback_loop_is_named_in_a_variable_comment(model, loop):
    assert model.loop_tags.get(loop), f"no variable's comment names loop {loop}"


@pytest.mark.parametrize("name", SCENARIO_SIZES)
def test_scenario_input_exists_and_is_off_by_default(model, name):
    assert model.parameters.loc[model.resolve(name), "value"] == 0


def test_every_named_scenario_is_available_for_the_model(model):
    assert set(scenarios.available(model)) == set(scenarios.SCENARIOS)
    assert len(scenarios.SCENARIOS) == 6


@pytest.mark.parametrize("name", scenarios.SCENARIOS)
def test_scenario_sets_model_parameters_within_their_ranges(model, name):
    for variable, value in scenarios.scenario_params(model, name).items():
        row = model.parameters.loc[model.resolve(variable)]
        assert row["min"] <= value <= row["max"], f"{variable} = {value}"


@pytest.mark.parametrize("name", scenarios.SCENARIOS)
@pytest.mark.slow
def test_scenario_changes_the_run(scenario_runs, observables, name):
    base = scenario_runs.sel(set="baseline")
    run = scenario_runs.sel(set=name)
    # a scenario that moves no observable by 1% of its largest value is not a scenario
    # (the viral-app boost of 0.3 million users once moved them by 5e-5)
    difference, _ = worst_relative_difference(
        {c: run[c].values for c in observables}, {c: base[c].values for c in observables}, observables)
    assert difference > 0.01


# --------------------------------------------------------------------------- invariants

@pytest.mark.parametrize("name", ["baseline", *scenarios.SCENARIOS])
def test_money_is_conserved_across_the_circle(scenario_runs, cash_stocks, name):
    run = scenario_runs.sel(set=name)
    total = run["Total Money"].values
    recomputed = sum(run[s].values for s in cash_stocks)
    scale = max(abs(total[0]), 1.0)
    # Total Money is the same four-term sum: rounding only (~1e-16 relative).
    np.testing.assert_allclose(recomputed, total, rtol=0, atol=1e-12 * scale)
    # Each flow is added to one cash stock and subtracted from another in every step:
    # the total drifts by rounding only (1e-14 relative seen); 1e-9 allows 3840 steps.
    np.testing.assert_allclose(total, total[0], rtol=0, atol=1e-9 * scale)


def random_parameter_runs(model, seed: int, n_sets: int = 40):
    """Runs with every ranged parameter drawn uniformly in its [min, max] (seeded)."""
    p = model.parameters
    ranged = p[np.isfinite(p["min"]) & np.isfinite(p["max"]) & (p["min"] < p["max"])]
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({name: rng.uniform(row["min"], row["max"], n_sets)
                          for name, row in ranged.iterrows()})
    columns = [*model.stocks, "Total Money"]
    return model.simulate_batch(table, return_columns=columns)


SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
# Seeds have no structure to shrink: report the first failing seed (no shrinking, which
# would run dozens more batches), and keep no example database in the working directory.
RANDOM_RUNS = settings(max_examples=5, deadline=None, derandomize=True, database=None,
                       phases=(Phase.explicit, Phase.generate))


@RANDOM_RUNS
@given(seed=SEEDS)
@pytest.mark.slow
def test_stocks_stay_non_negative_for_any_parameters_in_their_ranges(model, seed):
    runs = random_parameter_runs(model, seed)
    for stock in model.stocks:
        values = runs[stock].values
        assert not np.isnan(values).any(), f"{stock} is NaN (seed {seed})"
        if stock in SIGNED_STOCKS:
            continue
        # Exactly >= 0: the payment fractions keep a factor 0.999999 so that rounding
        # never takes cash below zero (docs/model.md), and the other stocks drain by
        # rates proportional to themselves.
        assert values.min() >= 0, f"{stock} reaches {values.min():.3g} (seed {seed})"


@RANDOM_RUNS
@given(seed=SEEDS)
@pytest.mark.slow
def test_money_is_conserved_for_any_parameters_in_their_ranges(model, cash_stocks, seed):
    runs = random_parameter_runs(model, seed)
    total = runs["Total Money"].values
    scale = np.maximum(np.abs(total[:, :1]), 1.0)
    # as in test_money_is_conserved_across_the_circle: rounding only
    assert np.all(np.abs(total - total[:, :1]) <= 1e-9 * scale)
    assert np.allclose(sum(runs[s].values for s in cash_stocks), total, rtol=0, atol=1e-12 * scale.max())


# Stated bounds on every stock to 2060 (docs/design.md §2: no stock runs away by 2060), by unit.
# Each is well above what any parameter set within the declared ranges reaches (the largest
# seen over 50 random sets and the shipped calibration is in brackets) and far below where
# exponential trends took them before they were bounded (Cloud Cash $26T by 2060).
STOCK_BOUNDS = {
    "$B": 20_000,             # $20T, the circle's whole balance sheets (Cloud Cash 10.3T)
    "GW": 1_000,              # a TW of AI capacity (AI Capacity GW 439)
    "million": 5_500,         # addressable users' upper range plus a viral boost (4317)
    "$B/(million*Year)": 0.1,  # revenue per user (0.05)
    "$B/(GW*Year)": 100,      # compute price (63)
    "Dmnl": 1,                # fractions: confidence, venture share (0.98)
    "1/Year": 3,              # perceived growth: Max Counted Growth's upper range (1.83)
}
# Share counts: dilution multiplies them without limit when the lab's valuation nears zero;
# what is bounded is each holder's fraction of them, checked instead.
SHARE_COUNTS = {"Lab Shares Outstanding", "Chip Lab Shares", "Cloud Lab Shares", "Builder Lab Shares"}


@pytest.mark.slow
def test_every_stock_stays_bounded_to_2060(model, calibrated, elements):
    p = model.parameters
    ranged = p[np.isfinite(p["min"]) & np.isfinite(p["max"]) & (p["min"] < p["max"])]
    rng = np.random.default_rng(2060)
    table = pd.DataFrame({name: rng.uniform(row["min"], row["max"], 50) for name, row in ranged.iterrows()})
    table.loc["base"] = {name: calibrated.get(name, p.loc[name, "value"]) for name in table.columns}
    runs = model.simulate_batch(table, final_time=2060, return_columns=[*model.stocks, "Total Money"])
    assert float(runs["time"][-1]) == 2060
    for stock in model.stocks:
        values = runs[stock].values
        assert not np.isnan(values).any(), stock
        if stock in SHARE_COUNTS:
            continue
        if stock == "Outside Cash":  # money is conserved: no cash stock exceeds the total
            assert np.all(values <= runs["Total Money"].values * (1 + 1e-12)), stock
            continue
        bound = STOCK_BOUNDS[elements[stock].units.strip()]
        assert values.max() <= bound, f"{stock} reaches {values.max():.4g} > {bound}"
    for holder in SHARE_COUNTS - {"Lab Shares Outstanding"}:
        fraction = runs[holder].values / runs["Lab Shares Outstanding"].values
        assert np.all((0 <= fraction) & (fraction <= 1 + 1e-12)), holder


# --------------------------------------------------------------------------- reality checks

@pytest.mark.slow
def test_without_outside_funding_or_chipmaker_reinvestment_the_lab_spends_what_it_earns(model):
    run = model.simulate(params={"Stargate Shortfall Size": 1, "Stargate Shortfall Start": 2020,
                                 "Chipmaker Reinvestment Stop Size": 1,
                                 "Chipmaker Reinvestment Stop Start": 2020,
                                 "Warrant Value per GW": 0})
    # both funding flows are multiplied by (1 - 1) and the warrants are worth nothing:
    # nothing is raised, up to rounding
    np.testing.assert_allclose(run["Lab Equity Raised"], 0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(run["Warrant Proceeds"], 0, rtol=0, atol=1e-12)
    late = run.loc[2030:2035]
    ratio = lab_spending(late) / late["Lab Revenue"]
    # Without new money the lab spends its revenue plus its dwindling cash over the
    # planned runway: 0.86 to 1.03 of revenue seen (its revenue still grows by ~40%/year in
    # 2030, and its compute follows what it can afford with its deployment lag, so it
    # spends a little less than it earns while growing). 15% is "a few %" of a lag; a
    # funded lab spends 2 to 3 times its revenue in those years.
    np.testing.assert_allclose(ratio, 1, rtol=0, atol=0.15)


@pytest.mark.slow
def test_confidence_held_at_zero_brings_no_equity_funding(model):
    run = model.simulate(params={"Indicated Confidence": 0}, initial={"Investor Confidence": 0})
    np.testing.assert_array_equal(run["Investor Confidence"], 0)
    # outside funding is a product with Investor Confidence: exactly zero; so is the
    # chipmaker's share of the rounds. Its letter-of-intent tranches follow the compute the lab
    # deploys (paid from revenue), not confidence: zero only before the first deployment.
    np.testing.assert_array_equal(run["Outside Equity Funding"], 0)
    first = model.parameters.loc["LOI First Deployment", "value"]
    np.testing.assert_array_equal(run.loc[run.index < first, "Chipmaker Investment in Labs"], 0)


@pytest.mark.slow
def test_without_chipmaker_reinvestment_capex_is_lower_while_it_would_have_lasted(model, baseline):
    run = model.simulate(params={"Chipmaker Reinvestment Stop Size": 1,
                                 "Chipmaker Reinvestment Stop Start": 2020})
    np.testing.assert_array_equal(run["Chipmaker Investment in Labs"], 0)
    start = model.parameters.loc["Chip Reinvestment Start", "value"]
    # From the reinvestment's start (2024.75) to 2029 the chipmaker's money buys the lab
    # compute and contracts, and so the builders' and the clouds' AI capex (loop R1): it is
    # lower without it. Not later: the capacity it pulled forward makes the baseline's later
    # capex dip deeper.
    window = (baseline.index > start) & (baseline.index <= 2029)
    assert window.sum() >= 8  # at least two years of quarterly saves
    assert np.all(run["Total AI Capex"][window] < baseline["Total AI Capex"][window])


def test_operating_loss_exceeds_cash_burn_by_compute_in_kind_and_stock_compensation(baseline):
    # The partner's compute (from its January 2023 deal) and stock compensation are costs
    # the lab does not pay in cash: the two reported losses differ by exactly these.
    gap = baseline["Lab Operating Loss"] - baseline["Lab Cash Burn"]
    np.testing.assert_allclose(gap, baseline["Lab In Kind Compute"] + baseline["Lab Stock Compensation"],
                               rtol=1e-12, atol=1e-12)
    assert np.all(baseline.loc[:2023.0, "Lab In Kind Compute"] == 0)
    # From the deal on, the partner pays in kind for the compute the lab runs on its capacity:
    # all of it until the builders' first contracts (2025), what the builders do not serve after.
    after = baseline.loc[2023.25:]
    on_clouds = after["Lab Compute on Clouds GW"] > 0
    assert on_clouds.loc[:2025.0].all()
    np.testing.assert_array_equal(after["Lab In Kind Compute"] > 0, on_clouds)


@pytest.mark.slow
def test_compute_in_kind_lets_the_lab_run_more_compute_on_the_same_cash(model, baseline):
    run = model.simulate(params={"Partner In Kind Share": 0})
    np.testing.assert_array_equal(run["Lab In Kind Compute"], 0)
    # Identical up to the deal; a year after it the lab runs more compute with it.
    np.testing.assert_array_equal(run.loc[:2023.0, "Lab Compute GW"], baseline.loc[:2023.0, "Lab Compute GW"])
    assert baseline.loc[2024.0, "Lab Compute GW"] > run.loc[2024.0, "Lab Compute GW"]


@pytest.mark.slow
def test_pandemic_build_out_rises_linearly_to_its_peak_and_stops_in_2023(model):
    p = model.parameters["value"]
    start, end, peak = (p["Pandemic Build Out Start"], p["Pandemic Build Out End"], p["Pandemic Capex Peak"])
    run = model.simulate(return_columns=["Pandemic Build Out Capex"], saveper=model.time["time_step"])
    extra = run["Pandemic Build Out Capex"]
    t = extra.index.to_numpy()
    # Away from the corners the build-out is peak x (t - start) / (end - start); PySD's RAMP
    # starts at TIME + 1e-6 > start (see aicircle/xmile.py), which shifts it by 1e-6 years.
    inside = (t > start + 0.05) & (t < end - 0.05)
    np.testing.assert_allclose(extra[inside], peak * (t[inside] - start) / (end - start), rtol=0,
                               atol=2e-6 * peak / (end - start))
    assert np.all(extra[t < start - 0.05] == 0) and np.all(extra[t > end + 0.05] == 0)


@pytest.mark.slow
def test_export_controls_cut_other_buyers_gpu_sales_by_their_share(model):
    p = model.parameters["value"]
    when, share = p["Export Control Start"], p["Export Controlled Share"]
    run = model.simulate(return_columns=["Other Datacenter GPU Sales", "GPU Purchases", "VC AI Share"],
                         saveper=model.time["time_step"])
    ratio = run["Other Datacenter GPU Sales"] / (run["GPU Purchases"] * run["VC AI Share"])
    before, after = ratio[ratio.index < when - 0.05], ratio[ratio.index > when + 0.05]
    np.testing.assert_allclose(after, before.iloc[0] * (1 - share), rtol=1e-9)
    np.testing.assert_allclose(before, before.iloc[0], rtol=1e-9)


@pytest.mark.parametrize("name", ["baseline", "confidence-shock"])
@pytest.mark.slow
def test_halving_the_time_step_moves_no_observable_by_more_than_one_percent(
        model, observables, name):
    params = scenarios.scenario_params(model, name) if name != "baseline" else {}
    time_step = model.time["time_step"]
    coarse = model.simulate(params=params, return_columns=observables)
    fine = model.simulate(params=params, return_columns=observables, time_step=time_step / 2)
    # docs/design.md §2 asks for a step at which Euler's error does not matter: 1% of each
    # observable's largest value (0.22% seen for the baseline, 0.34% for the shock).
    difference, column = worst_relative_difference(fine, coarse, observables)
    assert difference <= 0.01, f"{column}: {difference:.3g}"


# --------------------------------------------------------------------------- the story before calibration

@pytest.mark.parametrize("values", ["model file", "calibrated"])
@pytest.mark.slow
def test_lab_revenue_trails_its_spending_from_mid_2024_through_2025(model, calibrated, values):
    # The article's claim (H1 2025: revenue 4.3 against R&D alone 6.7). Earlier the pre-launch lab
    # runs its cash down to nothing by 2023 (a limit stated in docs/model.md and the README) and
    # then rebuilds cash from its first revenue: revenue exceeds spending in 2023.25-2024.25 at the
    # file's values, 2023.25-2023.5 calibrated.
    run = model.simulate(params=calibrated if values == "calibrated" else None, final_time=2026)
    window = run.loc[2024.5:2025.5]
    assert np.all(window["Lab Revenue"] < lab_spending(window))


@pytest.mark.parametrize("variable", ["AI Capacity GW", "Hyperscaler Capex"])
def test_capacity_and_capex_grow_from_2020_to_2025(baseline, variable):
    assert baseline.loc[2025, variable] > baseline.loc[2020, variable]


def test_baseline_is_not_a_bust(baseline):
    assert outcome(baseline.index, baseline) != outcomes.BUST


def test_confidence_shock_scenario_cuts_confidence_and_ai_capex(scenario_runs):
    shock = scenario_runs.sel(set="confidence-shock")
    base = scenario_runs.sel(set="baseline")
    window = {"time": slice(2026.0, 2028.0)}
    # the scenario removes 90% of confidence over its duration (scenarios.py)
    assert float(shock["Investor Confidence"].sel(**window).min()) \
        < 0.2 * float(base["Investor Confidence"].sel(**window).min())
    assert float(shock["Total AI Capex"].sel(**window).min()) < float(base["Total AI Capex"].sel(**window).min())


# --------------------------------------------------------------------------- claims, builders, the second vendor

CLAIMS = ["Lab Shares Outstanding", "Chip Lab Shares", "Cloud Lab Shares", "Outside Lab Shares", "Lab Valuation",
          "Chip Stake Value", "Cloud Stake Value", "Chip Equity Stakes in Labs", "Chipmaker Investment in Labs",
          "Outside Equity Funding", "Lab In Kind Compute", "Lab Stock Compensation", "Lab Share Issuance"]


@pytest.mark.parametrize("name", ["baseline", "confidence-shock", "chipmaker-stops-reinvesting"])
def test_every_claim_on_the_lab_has_a_holder_and_is_marked_to_its_valuation(model, calibrated, name):
    extra = {} if name == "baseline" else scenarios.scenario_params(model, name)
    run = model.simulate(params={**calibrated, **extra}, return_columns=CLAIMS)
    # Holders' shares are each issued from their own flow, and no one else's: together with
    # the outside holders they never exceed the shares outstanding.
    assert (run["Outside Lab Shares"] >= -1e-12).all()
    assert (run["Chip Lab Shares"] >= 0).all() and (run["Cloud Lab Shares"] >= 0).all()
    # The stakes are marked to the valuation: together they are worth at most the lab.
    assert (run["Chip Stake Value"] + run["Cloud Stake Value"] <= run["Lab Valuation"] * (1 + 1e-12)).all()
    # New money dilutes: the chipmaker's and the cloud's fractions can only grow through their
    # own flows, so while the chipmaker does not invest its fraction falls.
    fraction = run["Chip Lab Shares"] / run["Lab Shares Outstanding"]
    idle = (run["Chipmaker Investment in Labs"] == 0) & (run["Lab Share Issuance"] > 0)
    steps = np.diff(fraction.to_numpy())[idle.to_numpy()[1:] & idle.to_numpy()[:-1]]
    assert (steps <= 1e-15).all()
    if name == "chipmaker-stops-reinvesting":
        return
    # The chipmaker bought at the valuations of its investment: its marked stake equals its
    # cost only if the valuation never moved; the lab's valuation rose after the first
    # investments of 2024-2025, so by the end of 2025 the stake is marked above cost.
    late_2025 = run.loc[2025.75]
    assert late_2025["Chip Equity Stakes in Labs"] > 0
    assert late_2025["Chip Stake Value"] > late_2025["Chip Equity Stakes in Labs"]


def test_the_builders_hold_the_contracts_from_their_start_and_their_debt_is_secured_on_them(model, calibrated):
    columns = ["Builder Cancellation Fees", "Cloud Cancellation Fees", "Cancellation Fees", "Builder Debt",
               "Builder Debt Capacity", "Builder Capacity GW", "Builder Capacity Under Construction GW",
               "Builder Defaults", "Lab Compute Commitments"]
    run = model.simulate(params=calibrated, return_columns=columns)
    start = model.parameters.loc["Builder Contract Start", "value"]
    before, after = run.loc[run.index < start], run.loc[run.index >= start]
    np.testing.assert_array_equal(before["Builder Cancellation Fees"], 0)
    np.testing.assert_array_equal(after["Cloud Cancellation Fees"], 0)
    # nothing is built for the lab before its first contracts with the builders, and debt
    # follows what is built
    np.testing.assert_array_equal(before["Builder Capacity Under Construction GW"], 0)
    np.testing.assert_array_equal(before["Builder Debt"], 0)
    assert after["Builder Debt"].max() > 0
    # a default writes off only debt above what the contracts and cash flow carry
    defaulting = run["Builder Defaults"] > 0
    assert (run.loc[defaulting, "Builder Debt"] > run.loc[defaulting, "Builder Debt Capacity"]).all()


@pytest.mark.slow
def test_when_the_lab_loses_its_funding_its_cancelled_contracts_are_written_off(model, calibrated):
    # Loop B6: without outside money or the chipmaker's from 2027, the lab can no longer plan
    # for the compute it contracted; the builders' contracts are cancelled, and what the lab's
    # fees do not cover is written off, years before the calibrated baseline's write-offs.
    stop = {"Stargate Shortfall Size": 1, "Stargate Shortfall Start": 2027,
            "Chipmaker Reinvestment Stop Size": 1, "Chipmaker Reinvestment Stop Start": 2027}
    columns = ["AI Write Offs", "Builder Defaults", "Commitment Cancellations", "Cancellation Fees",
               "Restructuring Contract Cuts", "Payables Written Off"]
    base = model.simulate(params=calibrated, return_columns=columns).loc[2027:2029.75]
    cut = model.simulate(params={**calibrated, **stop}, return_columns=columns).loc[2027:2029.75]
    assert cut["Commitment Cancellations"].sum() > base["Commitment Cancellations"].sum()
    assert cut["AI Write Offs"].sum() > base["AI Write Offs"].sum()
    # the write-offs are the cancellations less the fees, the contracts rejected and the bills
    # cut when the lab is restructured (from 2029.25 here), plus defaults
    np.testing.assert_allclose(cut["AI Write Offs"],
                               cut["Commitment Cancellations"] - cut["Cancellation Fees"] + cut["Builder Defaults"]
                               + cut["Restructuring Contract Cuts"] + cut["Payables Written Off"],
                               rtol=1e-12, atol=1e-9)
    assert (cut["Restructuring Contract Cuts"] > 0).any()
    assert (cut["Cancellation Fees"] > 0).any()


def test_the_two_chip_deals_deploy_at_most_their_gigawatts_and_the_warrants_vest_with_them(model, calibrated):
    run = model.simulate(params=calibrated, return_columns=["Second Vendor GW", "Chip Funded GW", "Warrant Proceeds"])
    p = model.parameters["value"]
    assert run["Second Vendor GW"].max() <= p["Second Vendor Deal GW"]
    assert run["Chip Funded GW"].max() <= p["LOI Total GW"]
    first = p["Second Vendor First Deployment"]
    np.testing.assert_array_equal(run.loc[run.index < first, "Warrant Proceeds"], 0)
    assert run.loc[run.index >= first, "Second Vendor GW"].max() > 0

"""Feedback loops from structure and their dominance over time (aicircle.loops, issue 15).

Analytic cases of Loops That Matter (Schoenberg, Davidsen & Eberlein 2020): a single loop
scores +-1 whatever the model does; in logistic growth the reinforcing loop dominates until
the inflection point, where the balancing one takes over; the mass-spring oscillator is one
balancing loop through two stocks. Plus: comment tags checked against computed polarity,
the batch path equal to the single-run path, the cycle enumeration against a brute force.
"""

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from aicircle import loops as ltm
from aicircle.errors import InvalidInput, LoopPolarityWarning
from conftest import write_mdl

GOAL = ("Stock = INTEG(flow, 0)", "flow = (goal - Stock) / adjustment time", "goal = 10",
        "adjustment time = 2")
# logistic growth written with its two loops apart: R through net growth, B through the fraction
R, K, P0 = 1.0, 100.0, 1.0
LOGISTIC = ("Population = INTEG(net growth, 1)", "net growth = growth rate * Population * fraction",
            "fraction = 1 - Population / capacity", "growth rate = 1", "capacity = 100")
SPRING = ("Position = INTEG(Velocity, 1)", "Velocity = INTEG(acceleration, 0)",
          "acceleration = -stiffness * Position / mass", "stiffness = 4", "mass = 1")


def test_goal_seeking_stock_has_one_balancing_loop_scoring_minus_one_throughout(tmp_path):
    model = ac.load(write_mdl(tmp_path, *GOAL, final_time=20, time_step=0.25))
    table = model.loops()
    assert list(table["variables"]) == [("Stock", "flow")]
    assert table["polarity"].tolist() == ["B"]
    scores = model.loop_scores(model.simulate())
    assert np.isnan(scores.iloc[0, 0])  # the first saved time has no previous one
    # one loop: every link score is +-1 exactly (the only input that moves), so is the product
    np.testing.assert_allclose(scores.iloc[1:, 0], -1.0, rtol=1e-12)


def test_logistic_growth_dominance_shifts_from_reinforcing_to_balancing_at_the_inflection(tmp_path):
    dt = 0.01
    model = ac.load(write_mdl(tmp_path, *LOGISTIC, final_time=10, time_step=dt))
    table = model.loops()
    assert sorted(zip(table["polarity"], table["length"])) == [("B", 3), ("R", 2)]
    reinforcing = table.index[table["polarity"] == "R"][0]
    run = model.simulate(solver="rk4")  # RK4 at dt: the run's inflection is the analytic one to ~1e-8
    periods = ltm.dominance(model.loop_scores(run))
    assert periods["polarity"].tolist() == ["R", "B"]
    assert periods["loop"].iloc[0] == reinforcing
    inflection = math.log((K - P0) / P0) / R  # P(t*) = K/2 for P' = rP(1 - P/K), P(0) = P0
    # the last time R dominates scores the step from t - dt to t: the switch lies within a step
    assert abs(periods["end"].iloc[0] - inflection) <= dt
    assert periods["start"].iloc[1] - periods["end"].iloc[0] == pytest.approx(dt)


def test_mass_spring_oscillator_is_one_balancing_loop_through_two_stocks(tmp_path):
    model = ac.load(write_mdl(tmp_path, *SPRING, final_time=10, time_step=0.01, saveper=0.1))
    table = model.loops()
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["polarity"], row["stocks"]) == ("B", 2)
    assert set(row["variables"]) == {"Position", "Velocity", "acceleration"}
    scores = model.loop_scores(model.simulate(solver="rk4")).iloc[1:, 0]
    # LTM: the only loop of a model scores -1 wherever it is active, through every turning point
    np.testing.assert_allclose(scores, -1.0, rtol=1e-9)


def test_damped_oscillator_splits_dominance_between_its_two_balancing_loops(tmp_path):
    damped = SPRING[:2] + ("acceleration = (-stiffness * Position - friction * Velocity) / mass",
                           "stiffness = 4", "mass = 1", "friction = 0.5")
    model = ac.load(write_mdl(tmp_path, *damped, final_time=10, time_step=0.01, saveper=0.1))
    table = model.loops()
    assert sorted(table["stocks"]) == [1, 2] and set(table["polarity"]) == {"B"}
    rel = model.loop_scores(model.simulate(solver="rk4"), relative=True).iloc[1:]
    assert (rel <= 0).all().all()
    np.testing.assert_allclose(rel.abs().sum(axis=1), 1.0, rtol=1e-12)


def test_a_comment_tag_whose_letter_contradicts_the_computed_polarity_is_reported(tmp_path):
    tagged = ("Stock = INTEG(flow, 0)\n\t~\tunits\n\t~\tThe stock, closing loop R1.\n\t|",
              "flow = (goal - Stock) / adjustment time\n\t~\tunits/Year\n\t~\tThe flow of loop R1.\n\t|",
              *GOAL[2:])
    model = ac.load(write_mdl(tmp_path, *tagged))
    assert model.loop_tags == {"R1": ["Stock", "flow"]}
    with pytest.warns(LoopPolarityWarning, match=r"R1 \(R\).*polarity computed from the links is B"):
        table = model.loops()
    assert table.loc["R1", ["tag", "polarity", "tag_agrees"]].tolist() == ["R1", "B", False]


def test_a_comment_tag_that_agrees_names_its_loop_without_a_warning(tmp_path):
    tagged = ("Stock = INTEG(flow, 0)\n\t~\tunits\n\t~\tLoop B1.\n\t|",
              "flow = (goal - Stock) / adjustment time\n\t~\tunits/Year\n\t~\tLoop B1.\n\t|", *GOAL[2:])
    model = ac.load(write_mdl(tmp_path, *tagged))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoopPolarityWarning)
        table = model.loops()
    assert table.index.tolist() == ["B1"] and table.loc["B1", "tag_agrees"] is True


def test_batch_scores_equal_each_runs_own_scores(tmp_path):
    model = ac.load(write_mdl(tmp_path, *LOGISTIC, final_time=10, time_step=0.05, saveper=0.5))
    table = pd.DataFrame({"growth rate": [0.5, 1.0, 1.7], "capacity": [50.0, 100.0, 400.0]})
    batch = model.simulate_batch(table, return_columns=list(model.variables))
    scores = model.loop_scores_batch(batch)
    assert scores.dims == ("set", "time", "loop")
    for k in range(len(table)):
        alone = model.loop_scores(batch.isel(set=k))
        np.testing.assert_array_equal(scores.isel(set=k).to_numpy(), alone.to_numpy())
        run = model.simulate(params=table.iloc[k].to_dict(), saveper=0.5, time_step=0.05)
        np.testing.assert_allclose(model.loop_scores(run).to_numpy(), alone.to_numpy(), rtol=1e-9)
    rel = model.loop_scores_batch(batch, relative=True).isel(time=slice(1, None))
    np.testing.assert_allclose(np.abs(rel).sum("loop"), 1.0, rtol=1e-12)


def test_a_run_missing_a_variable_the_scores_read_is_refused_naming_it(tmp_path):
    model = ac.load(write_mdl(tmp_path, *LOGISTIC))
    run = model.simulate(return_columns=["Population"])
    with pytest.raises(InvalidInput, match="lacks '(net growth|fraction)', which the loop scores read"):
        model.loop_scores(run)


def test_loop_scores_refuse_a_batch_of_several_sets(tmp_path):
    model = ac.load(write_mdl(tmp_path, *LOGISTIC))
    batch = model.simulate_batch(pd.DataFrame({"capacity": [50.0, 80.0]}), return_columns=list(model.variables))
    with pytest.raises(InvalidInput, match="loop_scores_batch"):
        model.loop_scores(batch)


def test_a_loop_given_by_hand_must_be_a_cycle_of_the_graph(tmp_path):
    model = ac.load(write_mdl(tmp_path, *LOGISTIC))
    bad = pd.DataFrame({"variables": [("Population", "fraction")]}, index=["mine"])
    with pytest.raises(InvalidInput, match="does not read 'fraction'"):
        model.loop_scores(model.simulate(), loops=bad)


def _brute_force_cycles(succ):
    nodes = sorted(succ)
    found = set()
    for r in range(1, len(nodes) + 1):
        for subset in itertools.combinations(nodes, r):
            for order in itertools.permutations(subset[1:]):
                cycle = (subset[0],) + order
                if all(cycle[(i + 1) % r] in succ[cycle[i]] for i in range(r)):
                    found.add(cycle)
    return found


@pytest.mark.parametrize("seed", range(5))
def test_johnsons_cycles_equal_a_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    n = 6
    succ = {i: {j for j in range(n) if rng.random() < 0.35} for i in range(n)}
    got = {ltm._canonical(c) for c in ltm.elementary_cycles(succ)}
    assert got == _brute_force_cycles(succ)
    assert len(got) == len(ltm.elementary_cycles(succ))  # each cycle once


@pytest.mark.slow  # ~4 s: a run of the shipped model and the strongest-path search along it
def test_the_capital_circle_gets_the_strongest_path_loop_set_with_its_tags():
    model = ac.load(ac.shipped_model())
    table = model.loops()
    assert table.attrs["method"].startswith("strongest paths")
    assert 0 < len(table) <= ltm.MAX_LOOPS + len(model.loop_tags)
    assert set(table["polarity"]) <= {"R", "B", "R/B", "?"}
    named = table[table["tag"] != ""]
    assert len(named) >= 3  # B4 price competition, B5 credit and B2 valuation gravity at least
    assert not (named["tag_agrees"] == False).any()  # noqa: E712 - the shipped tags hold

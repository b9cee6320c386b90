"""Batches too big for memory are refused before anything is allocated (issue 16).

:mod:`aicircle._limits` estimates what a batch allocates and compares it with a budget
(half the memory available). Each test shrinks the budget with ``monkeypatch`` and
replaces :func:`aicircle.integrate.run` (every run goes through it) and SALib's samplers
by tripwires, so that a refusal is shown to come before the first run or sample.
"""

import re

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from conftest import mdl_text, write_xmile
from aicircle import _limits, cli, integrate, sensitivity, tipping

MIB = 2**20

# x' = g x from 0 to 10 at TIME STEP 0.25, saved every year: 11 saved times, 41 steps.
GROWTH = mdl_text("""
x = INTEG(g * x, 1)
	~	widgets
	~	The stock.
	|
g = 0.1
	~	1/Year [0, 0.5]
	~	Growth rate.
	|
h = 2
	~	dmnl [1, 3]
	~	Has no effect on x.
	|
""", initial_time=0, final_time=10, time_step=0.25, saveper=1)


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "growth.mdl"
    p.write_text(GROWTH, encoding="utf-8")
    return p


@pytest.fixture
def model(path):
    return ac.load(path)


@pytest.fixture
def budget(monkeypatch):
    """Set the memory available to ``nbytes`` (the budget is MEMORY_FRACTION of it)."""
    def set_available(nbytes):
        monkeypatch.setattr(_limits, "available_memory", lambda: int(nbytes))
    return set_available


@pytest.fixture
def no_runs(monkeypatch):
    """Make any run or SALib sample fail the test: a refusal must come before them."""
    def tripwire(*args, **kwargs):
        raise AssertionError("a run or a sample started before the memory check refused it")
    monkeypatch.setattr(integrate, "run", tripwire)
    from SALib.sample import morris, sobol
    monkeypatch.setattr(sobol, "sample", tripwire)
    monkeypatch.setattr(morris, "sample", tripwire)


class _ToyBust:
    """A bust whenever x exceeds 2: a tipping.Classifier of the model's variables, as time_to_bust needs."""

    name, variables = "toy", ("x",)

    def labels(self, times, values, horizon):
        return np.where(np.asarray(values[0])[:, -1] > 2, "bust", "calm")

    def first_bust(self, times, values, start=None):
        busted = np.asarray(values[0]) > 2
        return np.where(busted.any(axis=1), np.asarray(times)[np.argmax(busted, axis=1)], np.nan)


def table(n):
    return pd.DataFrame({"g": np.linspace(0.0, 0.5, n)})


def test_the_estimate_counts_each_saved_value_of_each_set_twice_plus_the_grid(model):
    prog = model._program(frozenset(), (model._vid("x"),))
    parts = _limits.check_run(prog, model._default_P(prog), 1000, 2048, "euler", "simulate_batch", "")
    # 1000 sets x 11 saved times x 1 column x 8 bytes, held as chunks and as their concatenation
    assert parts["results"] == 1000 * 11 * 1 * 8 * 2
    # 41 steps of 0, 0.25, ..., 10 at GRID_BYTES_PER_STEP each
    assert parts["grid"] == 41 * _limits.GRID_BYTES_PER_STEP
    assert parts["total"] == parts["results"] + parts["working"] + parts["grid"]


@pytest.mark.parametrize("solver, grows_with_chunk", [("euler", True), ("rk4", True), ("rk45", False)])
def test_working_arrays_depend_on_the_chunk_not_on_the_number_of_sets(model, solver, grows_with_chunk):
    # euler and rk4 step a whole chunk at once; an adaptive solver runs one set at a time
    prog = model._program(frozenset(), (model._vid("x"),))
    P = model._default_P(prog)
    small = _limits.check_run(prog, P, 100_000, 100, solver, "simulate_batch", "")
    large = _limits.check_run(prog, P, 100_000, 10_000, solver, "simulate_batch", "")
    fewer_sets = _limits.check_run(prog, P, 10_000, 100, solver, "simulate_batch", "")
    assert (small["working"] < large["working"]) == grows_with_chunk
    assert small["working"] == fewer_sets["working"]
    assert small["results"] == 10 * fewer_sets["results"]


def test_a_batch_over_the_budget_is_refused_before_any_run(model, budget, no_runs):
    # 100,000 sets x 11 times x 1 column x 8 bytes x 2 copies is 16.8 MiB of results alone
    budget(8 * MIB)
    with pytest.raises(ac.ResourceLimit, match=r"simulate_batch would allocate about 0\.0\d+ GiB .*"
                       r"100,000 sets x 11 saved times x 1 columns.*budget of 0\.00391 GiB.*"
                       r"use fewer sets \(rows of table\), fewer return_columns or a larger saveper"):
        model.simulate_batch(table(100_000), return_columns=["x"])


def test_a_batch_within_the_budget_runs(model, budget):
    budget(8 * MIB)
    ds = model.simulate_batch(table(1000), return_columns=["x"])
    assert ds["x"].shape == (1000, 11)


def test_working_arrays_over_the_budget_suggest_a_smaller_chunk_size(model, budget, no_runs):
    # two saved times: the results are 1e6 x 2 x 8 x 2 = 32 MB, and one chunk of a million sets
    # needs a state, an increment and the buffers for each: more than half the 32 MiB budget
    budget(64 * MIB)
    with pytest.raises(ac.ResourceLimit, match="use a smaller chunk_size, or fewer sets"):
        model.simulate_batch(table(1_000_000), return_columns=["x"], saveper=10, chunk_size=1_000_000)


def test_a_single_run_saving_too_much_is_refused(model, budget, no_runs):
    budget(MIB)
    # 4,000,001 saved times x 7 columns x 8 bytes, twice (the run's array, the DataFrame): 0.417 GiB;
    # the grid 4,000,001 x 56 bytes: 0.209 GiB
    with pytest.raises(ac.ResourceLimit, match=r"simulate would allocate about 0\.626 GiB \(results 427 MiB: "
                       r"1 sets x 4,000,001 saved times x 7 columns.* use fewer return_columns, "
                       r"a larger saveper"):
        model.simulate(final_time=1e6, saveper=0.25)


def test_a_resource_limit_is_an_invalid_input():
    # callers that catch ValueError (or InvalidInput) keep catching it; the CLI exits 2
    assert issubclass(ac.ResourceLimit, ac.InvalidInput)
    assert issubclass(ac.ResourceLimit, ValueError)


@pytest.mark.parametrize("call", [
    pytest.param(lambda m: sensitivity.run_ensemble(m, table(200_000), ["x"]), id="run_ensemble"),
    pytest.param(lambda m: sensitivity.monte_carlo(m, n=200_000, outputs=["x"]), id="monte_carlo"),
    pytest.param(lambda m: sensitivity.sensitivities(m, "sobol", ["x"], n=2**16), id="sobol"),
    pytest.param(lambda m: sensitivity.sensitivities(m, "morris", ["x"], n=100_000), id="morris"),
    pytest.param(lambda m: tipping.outcome_thresholds(m, "g", 0, 0.5, outcome="x>2", n_grid=200_000),
                 id="outcome_thresholds"),
    pytest.param(lambda m: tipping.regime_map(m, "g", (0, 0.5), "h", (1, 3), n=(500, 500), outcome="x>2"),
                 id="regime_map"),
    pytest.param(lambda m: tipping.basin_stability(m, "g", n=200_000, outcome="x>2"), id="basin_stability"),
    pytest.param(lambda m: tipping.time_to_bust(m, table(200_000), classifier=_ToyBust()),
                 id="time_to_bust"),
])
def test_every_ensemble_refuses_before_drawing_or_running(model, budget, no_runs, call):
    budget(4 * MIB)
    with pytest.raises(ac.ResourceLimit, match=r"would allocate about [\d.]+ GiB .* over the budget"):
        call(model)


def test_a_regime_map_too_big_for_this_machine_is_refused_with_the_real_budget(model, no_runs):
    # 10^5 x 10^5 runs: 10^10 sets x 11 saved times x 8 bytes x 2 is 1.6 PiB of results alone
    with pytest.raises(ac.ResourceLimit, match=r"regime map of 100,000 x 100,000 runs would allocate"):
        tipping.regime_map(model, "g", (0, 0.5), "h", (1, 3), n=(100_000, 100_000), outcome="x>2")


def test_the_cli_refuses_a_sobol_sample_too_big_with_exit_2_and_one_line(path, budget, no_runs, capsys):
    budget(4 * MIB)
    code = cli.main(["sensitivity", str(path), "--method", "sobol", "--output", "x", "--n", "65536",
                     "--bounds", "g=0:0.5"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert re.fullmatch(r"aicircle: error: sobol sensitivity of 196,608 runs would allocate about [\d.]+ GiB "
                        r"\(.*\), over the budget of 0\.00195 GiB \(50% of the memory available\); "
                        r"use a smaller --n, fewer --bounds or fewer outputs", err[0]), err[0]


def test_the_cli_refuses_a_run_too_long_to_save_with_exit_2(path, budget, no_runs, capsys):
    budget(MIB)
    code = cli.main(["run", str(path), "--final-time", "1e6"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("aicircle: error: simulate would allocate about"), err


def test_the_budget_is_a_fraction_of_the_memory_available(monkeypatch):
    monkeypatch.setattr(_limits, "available_memory", lambda: 10 * 2**30)
    assert _limits.memory_budget() == int(_limits.MEMORY_FRACTION * 10 * 2**30)


@pytest.mark.parametrize("meminfo, sysconf, cgroup, expected", [
    (8 * 2**30, 4 * 2**30, None, 8 * 2**30),   # MemAvailable first
    (None, 4 * 2**30, None, 4 * 2**30),        # then sysconf
    (8 * 2**30, None, 2**30, 2**30),           # a container's limit bounds either
    (None, None, None, _limits.FALLBACK_AVAILABLE),
])
def test_available_memory_reads_meminfo_then_sysconf_bounded_by_a_cgroup(monkeypatch, meminfo, sysconf,
                                                                          cgroup, expected):
    monkeypatch.setattr(_limits, "_meminfo_available", lambda: meminfo)
    monkeypatch.setattr(_limits, "_sysconf_available", lambda: sysconf)
    monkeypatch.setattr(_limits, "_cgroup_room", lambda: cgroup)
    assert _limits.available_memory() == expected


def test_this_machine_reports_some_memory_available():
    assert _limits.available_memory() > 0


def test_a_subscripted_model_is_counted_by_elements_not_by_variables(tmp_path):
    # one stock of 1000 elements and its rate: 1000 states and 2000 outputs, not 1 and 2
    text = mdl_text("cell: (c1-c1000) ~ ~ |", "rate[cell] = 0.1 * x[cell] ~ ~ |",
                    "x[cell] = INTEG(rate[cell], 1) ~ ~ |")
    path = tmp_path / "cells.mdl"
    path.write_text(text, encoding="utf-8")
    model = ac.load(path)
    prog = model._program(frozenset(), (model._vid("x"), model._vid("rate")))
    shape = _limits.program_shape(prog)
    assert shape["n_out"] == 2000 and shape["n_states"] == 1000 and shape["n_stocks"] == 1000
    assert shape["n_rows"] >= 2000  # the derivatives and the rate's array of each evaluation
    parts = _limits.check_run(prog, model._default_P(prog), 1000, 2048, "euler", "simulate_batch", "")
    # 1000 sets x 11 saved times (0..10) x 2000 columns x 8 bytes, twice
    assert parts["results"] == 1000 * 11 * 2000 * 8 * 2


# --------------------------------------------------------------------------- model text that would expand (issue 25)

def _macros(levels: int, calls: int = 2) -> str:
    """``levels`` nested macros, each calling the previous ``calls`` times; the model calls the last."""
    blocks = [":MACRO: M0(a)\nM0 = a + 1\n\t~\t~\t|\n:END OF MACRO:"]
    for i in range(1, levels + 1):
        body = " + ".join([f"M{i - 1}(a)"] * calls)
        blocks.append(f":MACRO: M{i}(a)\nM{i} = {body}\n\t~\t~\t|\n:END OF MACRO:")
    return "\n".join(blocks)


MODEL_TEXTS = {
    # the (d1-d100000) is taken (labels are built once); this one would take hours
    "a 20-million-element range": (("D: (d1-d20000000) ~ ~ |", "x[D] = INTEG(1, 0)"),
                                   r"'D' \(d1-d20000000\) has 20,000,000 elements"),
    "ranges summed in one dimension": (("D: (a1-a200000), (b1-b200000) ~ ~ |", "x[D] = 1"),
                                       "has 400,000 elements"),
    "a square of two ranges": (("D: (d1-d1000) ~ ~ |", "E: (e1-e1000) ~ ~ |", "x[D, E] = 1"),
                               r"'x' \[D, E\] has 1,000,000 elements"),
    "29 macros each calling the previous twice": ((_macros(29), "y = M29(1)"),
                                                  "expand into 1,073,741,823 copies"),
    "a recursive macro": ((":MACRO: R(a)\nR = R(a) + 1\n\t~\t~\t|\n:END OF MACRO:", "y = R(1)"),
                          r"macro R calls itself \(R -> R\)"),
    "mutually recursive macros": ((":MACRO: P(a)\nP = Q(a)\n\t~\t~\t|\n:END OF MACRO:",
                                   ":MACRO: Q(a)\nQ = P(a)\n\t~\t~\t|\n:END OF MACRO:", "y = P(1)"),
                                  r"macro P calls itself \(P -> Q -> P\)"),
}


@pytest.mark.parametrize("case", MODEL_TEXTS)
def test_model_text_that_would_expand_beyond_the_limits_is_refused_before_it_is_expanded(tmp_path, case):
    equations, words = MODEL_TEXTS[case]
    path = tmp_path / "big.mdl"
    path.write_text(mdl_text(*equations), encoding="utf-8")
    with pytest.raises((_limits.ResourceLimit, ac.errors.ModelReadError), match=words):
        ac.load(path)


def test_a_range_of_100000_elements_loads_and_its_labels_are_the_runs_columns(tmp_path):
    path = tmp_path / "wide.mdl"
    path.write_text(mdl_text("D: (d1-d100000) ~ ~ |", "x[D] = INTEG(1, 0)"), encoding="utf-8")
    run = ac.load(path).simulate(return_columns=["x"], final_time=1)
    assert list(run.columns[[0, -1]]) == ["x[d1]", "x[d100000]"] and run.shape == (2, 100000)


def test_macros_within_the_limit_expand_and_an_uncalled_recursive_one_is_harmless(tmp_path):
    path = tmp_path / "m.mdl"
    path.write_text(mdl_text(_macros(3), ":MACRO: R(a)\nR = R(a) + 1\n\t~\t~\t|\n:END OF MACRO:", "y = M3(1)"),
                    encoding="utf-8")
    assert ac.load(path).simulate()["y"].iloc[0] == 16  # 2**3 calls of M0(1) = 2


def test_an_xmile_dimension_above_the_limit_is_refused(tmp_path):
    path = write_xmile(tmp_path, '<aux name="x"><dimensions><dim name="D"/></dimensions><eqn>1</eqn></aux>')
    text = path.read_text().replace("<model>", '<dimensions><dim name="D" size="100000000"/></dimensions><model>')
    path.write_text(text)
    with pytest.raises(_limits.ResourceLimit, match="'D' has 100,000,000 elements"):
        ac.load(path)

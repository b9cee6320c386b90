"""The compiled kernel (aicircle/compiler/kernel.py) against the numpy reference path.

The kernel does the numpy path's floating-point operations in the same order on
the same numbers; only the transcendental functions (exp, log, pow) may round
differently (the kernel calls the C library, numpy its own vectorised versions), by
an ulp. Agreement is held to 1e-12 relative to each column's largest absolute
value (docs/design.md §6), which leaves room for such an ulp to grow over a few
thousand steps.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from aicircle.compiler import kernel
from aicircle.errors import InvalidInput, UnsupportedFeature

from conftest import PEER, write_mdl

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "aicircle.mdl"
SIR = PEER / "samples" / "SIR" / "SIR.mdl"
TOLERANCE = 1e-12  # docs/design.md §6: the kernel equals the reference to 1e-12


def relative_difference(a, b) -> float:
    """Largest |a - b| over each column, relative to the column's largest |b| (1 where that is 0)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    both_nan = np.isnan(a) & np.isnan(b)
    scale = np.nanmax(np.abs(np.where(np.isfinite(b), b, np.nan)), axis=0, initial=0.0)
    scale = np.where(scale > 0, scale, 1.0)
    diff = np.where(both_nan | (a == b), 0.0, np.abs(a - b))
    return float(np.nanmax(np.where(np.isnan(diff), np.inf, diff) / scale, initial=0.0))


def batch_array(ds) -> np.ndarray:
    """A batch's data variables as the columns of one array (set and time as its rows)."""
    return np.stack([ds[name].values.ravel() for name in ds.data_vars], axis=-1)


@pytest.fixture(scope="module")
def shipped():
    return ac.load(SHIPPED)


@pytest.fixture(scope="module")
def shipped_table(shipped):
    params = shipped.parameters
    names = [n for n in params.index if params.loc[n, "value"] > 0][:6]
    rng = np.random.default_rng(1)
    return pd.DataFrame({n: params.loc[n, "value"] * rng.uniform(0.8, 1.2, 5) for n in names})


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_shipped_model_batch_equals_the_numpy_path(shipped, shipped_table, solver):
    ours = shipped.simulate_batch(shipped_table, solver=solver, backend="kernel")
    ref = shipped.simulate_batch(shipped_table, solver=solver, backend="numpy")
    assert relative_difference(batch_array(ours), batch_array(ref)) <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_shipped_model_single_run_equals_the_numpy_path(shipped, solver):
    ours = shipped.simulate(solver=solver, backend="kernel")
    ref = shipped.simulate(solver=solver, backend="numpy")
    assert list(ours.columns) == list(ref.columns)
    np.testing.assert_array_equal(ours.index, ref.index)
    assert relative_difference(ours, ref) <= TOLERANCE


# Every operation the kernel writes, each on values that exercise its edges: lookups
# of each kind in and beyond their points, division by (near) zero, NaN-free MIN/MAX,
# truncation of negatives, MODULO of negatives, logical operators, a non-negative stock.
OPERATIONS = [
    "x = INTEG(-0.5 * x + growth, 1)",
    "growth = IF THEN ELSE(Time > 3 :AND: x < 2, 1.5, -0.25) + 0.1 * MIN(x, 0.7) - 0.1 * MAX(x, 1.2) + 0.5",
    "y = INTEG(ZIDZ(x, Time - 4) + XIDZ(1, x - 1, 3) + QUANTUM(x * 7, 0.5) + MODULO(-x * 5, 2), 0)",
    "z = INTEG(EXP(-x) + LN(1 + x * x) + SQRT(ABS(x)) + ABS(x) ^ 1.5 + INTEGER(-x * 3) + LOG(8 + x, 2), 2)",
    "w = INTEG(SIN(x) + COS(y / 10) + TAN(0.1 * x) + ARCTAN(x) + TANH(x) + SINH(0.1) + COSH(0.1)"
    " + ARCSIN(0.3) + ARCCOS(0.3), 0)",
    "table(\n\t[(0,0)-(10,10)],(0,0),(1,2),(2,3),(5,5))",
    "l1 = table(Time)",
    "l2 = WITH LOOKUP(Time - 2, ([(0,0)-(10,10)],(0,1),(1,4),(3,2)))",
    "cmp = IF THEN ELSE(x = 1, 1, 0) + IF THEN ELSE(x <> 1, 2, 0) + IF THEN ELSE(x <= 1, 3, 0)"
    " + IF THEN ELSE(x >= 1, 4, 0) + IF THEN ELSE(:NOT: (x > 1), 5, 0)"
    " + IF THEN ELSE(x > 1 :OR: y < 0, 6, 0)",
    "v = INTEG(l1 + l2 + cmp - 3 * v, 0)",
]


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_every_operation_equals_the_numpy_path(tmp_path, solver):
    path = write_mdl(tmp_path, *OPERATIONS, final_time=8, time_step=0.125)
    model = ac.load(path)
    ours = model.simulate(solver=solver, backend="kernel")
    ref = model.simulate(solver=solver, backend="numpy")
    assert relative_difference(ours, ref) <= TOLERANCE


# Builtins that hide state the kernel takes: continuous stocks (SMOOTH, DELAY1/3/N, TREND,
# FORECAST) and values fixed at initialisation (INITIAL)
STATEFUL = ["x = INTEG(1 + SIN(Time), 1)", "s = SMOOTH(x, 2)", "s3 = SMOOTH3(x, 2)", "d1 = DELAY1(x, 1.5)",
            "d3 = DELAY3(x, 1.5)", "dn = DELAY N(x, 2, x, 4)", "tr = TREND(x, 2, 0.1)", "i0 = INITIAL(x * 2)",
            "fc = FORECAST(x, 2, 3)", "si = SMOOTHI(x, 2, 5)",
            "y = INTEG(s + s3 + d1 + d3 + dn + tr + i0 + fc + si, 0)"]


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_builtins_with_hidden_state_equal_the_numpy_path(tmp_path, solver):
    model = ac.load(write_mdl(tmp_path, *STATEFUL, final_time=10, time_step=0.125))
    ours = model.simulate(solver=solver, backend="kernel")
    ref = model.simulate(solver=solver, backend="numpy")
    assert relative_difference(ours, ref) <= TOLERANCE


@pytest.mark.parametrize("solver", ["rk45", "lsoda"])
def test_adaptive_solvers_take_the_compiled_derivatives(tmp_path, solver):
    # the derivatives are the same numbers; the trajectories agree to the solver's tolerance
    # (a rounding difference may change a step size), here far tighter than it
    model = ac.load(write_mdl(tmp_path, *STATEFUL, final_time=10, time_step=0.125))
    ours = model.simulate(solver=solver, backend="kernel", rtol=1e-10, atol=1e-12)
    ref = model.simulate(solver=solver, backend="numpy", rtol=1e-10, atol=1e-12)
    assert relative_difference(ours, ref) <= 1e-8


@pytest.mark.parametrize("kind", ["interpolate", "extrapolate", "hold_backward", "look_forward"])
def test_lookups_of_every_kind_equal_the_runtime(kind):
    from aicircle import runtime

    function = kernel.lookup_function(kind)
    xs = np.array([0.0, 1.0, 2.5, 4.0])
    ys = np.array([1.0, -2.0, 3.0, 3.0])
    for x in [-1.0, 0.0, 0.3, 1.0, 2.0, 2.5, 3.9, 4.0, 7.0, np.inf, -np.inf, np.nan]:
        with np.errstate(invalid="ignore"):  # a flat end extrapolated to infinity: 0 * inf
            want = float(runtime.lookup(x, xs, ys, kind))
        got = function(x, xs, ys)
        assert got == want or (np.isnan(got) and np.isnan(want)), (x, got, want)
    # one point: every kind gives its value (extrapolation needs two)
    for x in [-1.0, 0.0, 5.0]:
        assert function(x, xs[:1], ys[:1]) == float(runtime.lookup(x, xs[:1], ys[:1], kind))


def test_exponential_decay_converges_at_fourth_order_with_the_kernel(tmp_path):
    errors = []
    for dt in (0.25, 0.125):
        path = write_mdl(tmp_path, "x = INTEG(-x, 1)", final_time=2, time_step=dt, name=f"m{dt}.mdl")
        run = ac.load(path).simulate(solver="rk4", backend="kernel")
        errors.append(abs(run["x"].iloc[-1] - np.exp(-2.0)))
    # halving the step divides RK4's global error by 2^4 (15-17 for these steps)
    assert 14 < errors[0] / errors[1] < 18


def test_a_non_negative_stock_is_held_at_zero_as_in_numpy(tmp_path):
    xmile = write_xmile_non_negative(tmp_path)
    model = ac.load(xmile)
    ours = model.simulate(backend="kernel")
    ref = model.simulate(backend="numpy")
    assert ours["stock"].min() == 0.0
    assert relative_difference(ours, ref) <= TOLERANCE


def write_xmile_non_negative(folder):
    from conftest import write_xmile

    return write_xmile(folder, """
    <stock name="stock"><eqn>1</eqn><outflow>drain</outflow><non_negative/></stock>
    <flow name="drain"><eqn>0.5</eqn></flow>""", stop=5, dt=0.25)


PEER_MODELS = sorted(p for folder in ("tests", "samples") for p in (PEER / folder).glob("*/*")
                     if p.suffix in (".mdl", ".xmile"))


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.parametrize("path", PEER_MODELS, ids=lambda p: str(p.relative_to(PEER)))
def test_peer_model_on_the_kernel_equals_the_numpy_path_or_is_refused_by_name(path):
    """Where the kernel takes a peer model it equals the numpy path; where it does not, backend='kernel'
    refuses by name (and 'auto' gives numpy's run exactly); where aicircle cannot run it, neither can
    the kernel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = ac.load(path)
            ref = model.simulate(backend="numpy", allow_nonfinite=True, seed=1)
        except (UnsupportedFeature, InvalidInput, ac.errors.IntegrationError) as refused:
            with pytest.raises(ac.AicircleError):
                ac.load(path).simulate(backend="kernel", allow_nonfinite=True, seed=1)
            assert str(refused)
            return
        prog = model._program(frozenset(), tuple(model._vid(c) for c in ref.columns.str.split("[").str[0]
                                                 .drop_duplicates()))
        if kernel.kernel_for(prog) is None:
            with pytest.raises(UnsupportedFeature, match="the compiled kernel does not take"):
                model.simulate(backend="kernel", allow_nonfinite=True, seed=1)
            auto = model.simulate(backend="auto", allow_nonfinite=True, seed=1)
            pd.testing.assert_frame_equal(auto, ref)  # the fallback is the numpy path itself
            return
        ours = model.simulate(backend="kernel", allow_nonfinite=True, seed=1)
    assert list(ours.columns) == list(ref.columns)
    assert relative_difference(ours, ref) <= TOLERANCE


# discrete state: the kernel does not take it
DISCRETE = ["x = INTEG(1, 0)", "y = DELAY FIXED(x, 1, 0)"]

# Subscripts the kernel unrolls element by element: stocks over dimensions, element-wise arithmetic
# with scalars, a two-dimensional variable defined piece by piece, a mapped reference, SUM/PROD/VMIN/
# VMAX over a dimension (with an element no equation defines: NaN, skipped), a lookup per element
# and a shared lookup, a subscripted constant set per run.
SUBSCRIPTED = [
    "Region: north, south, east",
    "Sector: farm, mill",
    "pop[Region] = INTEG(growth[Region] - moved[Region], 10)",
    "growth[Region] = rate[Region] * pop[Region] * (1 - pop[Region] / capacity)",
    "rate[Region] = 0.1, 0.2, 0.15",
    "capacity = 100",
    "moved[Region] = 0.01 * pop[Region] - 0.01 * SUM(pop[Region!]) / 3",
    "jobs[Region, Sector] = INTEG(hire[Region, Sector], 1)",
    "hire[Region, farm] = 0.05 * pop[Region] - 0.1 * jobs[Region, farm]",
    "hire[north, mill] = 0.2",
    "hire[south, mill] = MAX(0, 1 - jobs[south, mill] / 5)",
    "hire[east, mill] = ZIDZ(jobs[east, farm], Time)",
    "total = SUM(jobs[Region!, Sector!])",
    "most = VMAX(pop[Region!]) + VMIN(jobs[Region!, mill]) + PROD(rate[Region!])",
    "partial[Region] = 1",
    "partial[north] = :NA:",
    "skipped = SUM(partial[Region!]) + VMIN(partial[Region!])",
    "shape[Region](\n\t[(0,0)-(10,10)],(0,0),(5,1),(10,3))",
    "shape[east](\n\t[(0,0)-(10,10)],(0,1),(10,0))",
    "shaped[Region] = shape[Region](Time) + table(pop[Region] / 10)",
    "table(\n\t[(0,0)-(10,10)],(0,0),(1,2),(2,3),(5,5))",
    "out = INTEG(SUM(shaped[Region!]) + total / 10 + most + skipped - out, 0)",
]


def test_a_model_the_kernel_cannot_take_runs_with_numpy_and_says_so_once(tmp_path, caplog):
    path = write_mdl(tmp_path, *DISCRETE, name="discrete_fallback.mdl")
    model = ac.load(path)
    with caplog.at_level(logging.INFO, logger="aicircle.kernel"):
        first = model.simulate()
        second = model.simulate()
        model.simulate_batch(pd.DataFrame(index=range(3)))
    said = [r for r in caplog.records if r.name == "aicircle.kernel"]
    assert len(said) == 1
    assert "DELAY FIXED" in said[0].getMessage() and "numpy" in said[0].getMessage()
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, model.simulate(backend="numpy"))


def test_noise_runs_with_numpy_and_says_so_once(tmp_path, caplog):
    model = ac.load(write_mdl(tmp_path, "x = INTEG(-0.1 * x, 1)", name="noisy_fallback.mdl"))
    table = pd.DataFrame(index=range(2))
    with caplog.at_level(logging.INFO, logger="aicircle.kernel"):
        first = model.simulate_batch(table, noise={"x": 0.1}, seed=3)
        again = model.simulate_batch(table, noise={"x": 0.1}, seed=3)
    said = [r.getMessage() for r in caplog.records if r.name == "aicircle.kernel"]
    assert len(said) == 1 and "noise" in said[0]
    np.testing.assert_array_equal(first["x"].values, again["x"].values)


def test_asking_for_the_kernel_where_it_cannot_run_is_an_error(tmp_path):
    model = ac.load(write_mdl(tmp_path, *DISCRETE))
    with pytest.raises(UnsupportedFeature, match="kernel does not take discrete state"):
        model.simulate(backend="kernel")


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_subscripted_model_equals_the_numpy_path(tmp_path, solver):
    model = ac.load(write_mdl(tmp_path, *SUBSCRIPTED, final_time=8, time_step=0.125))
    prog = model._program(frozenset(), ())
    assert kernel.kernel_for(prog) is not None, kernel.why_not(prog)
    ours = model.simulate(solver=solver, backend="kernel", allow_nonfinite=True)
    ref = model.simulate(solver=solver, backend="numpy", allow_nonfinite=True)
    assert list(ours.columns) == list(ref.columns)
    assert np.isnan(ref["partial[north]"]).all() and np.isfinite(ref["skipped"]).all()
    assert relative_difference(ours, ref) <= TOLERANCE
    # a batch over the subscripted constant, element by element
    rng = np.random.default_rng(3)
    table = pd.DataFrame({f"rate[{r}]": rng.uniform(0.05, 0.3, 9) for r in ("north", "south", "east")})
    ours = model.simulate_batch(table, solver=solver, backend="kernel", allow_nonfinite=True)
    ref = model.simulate_batch(table, solver=solver, backend="numpy", allow_nonfinite=True)
    assert list(ours.data_vars) == list(ref.data_vars)
    for name in ref.data_vars:  # each variable's values as one column (its elements, sets and times)
        assert ours[name].shape == ref[name].shape
        assert relative_difference(ours[name].values.reshape(-1, 1), ref[name].values.reshape(-1, 1)) <= TOLERANCE


def test_a_model_of_too_many_elements_is_refused_by_name(tmp_path):
    n = kernel.MAX_ELEMENTS // 2
    model = ac.load(write_mdl(tmp_path, f"Cell: (c1-c{n})", "x[Cell] = INTEG(-0.1 * x[Cell], 1)",
                              "y[Cell] = 2 * x[Cell]", final_time=1))
    with pytest.raises(UnsupportedFeature, match=f"more than {kernel.MAX_ELEMENTS} values"):
        model.simulate(backend="kernel", return_columns=["x"])


def test_the_kernel_names_what_it_does_not_take(tmp_path):
    model = ac.load(write_mdl(tmp_path, "x = INTEG(rate, 0)", "rate = 1", final_time=4))
    series = pd.Series([0.0, 2.0], index=[0.0, 4.0])
    with pytest.raises(UnsupportedFeature, match=r"does not take data \(GET DATA, a data variable or a time "
                                                 r"series given to the run\) \('rate'\)"):
        model.simulate(params={"rate": series}, backend="kernel")
    auto = model.simulate(params={"rate": series})
    pd.testing.assert_frame_equal(auto, model.simulate(params={"rate": series}, backend="numpy"))


@pytest.mark.parametrize("bad", ["fortran", 3])
def test_an_unknown_backend_is_refused(tmp_path, bad):
    model = ac.load(write_mdl(tmp_path, "x = INTEG(1, 0)"))
    with pytest.raises(InvalidInput, match="unknown backend"):
        model.simulate(backend=bad)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_whole_number_of_at_least_one(tmp_path, bad):
    model = ac.load(write_mdl(tmp_path, "x = INTEG(1, 0)"))
    with pytest.raises(InvalidInput, match="workers"):
        model.simulate_batch(pd.DataFrame(index=range(2)), workers=bad)


def test_the_environment_chooses_the_backend(tmp_path, monkeypatch):
    model = ac.load(write_mdl(tmp_path, *DISCRETE))
    monkeypatch.setenv("AICIRCLE_BACKEND", "kernel")
    with pytest.raises(UnsupportedFeature, match="kernel"):
        model.simulate()
    monkeypatch.setenv("AICIRCLE_BACKEND", "numpy")
    model.simulate()


@pytest.fixture(scope="module")
def sir():
    return ac.load(SIR)


@pytest.fixture(scope="module")
def sir_table():
    rng = np.random.default_rng(2)
    n = 200
    return pd.DataFrame({"Contact Infectivity": rng.uniform(0.2, 0.4, n),
                         "Duration": rng.uniform(3.0, 7.0, n)})


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_one_worker_and_two_give_identical_batches(sir, sir_table, solver):
    one = sir.simulate_batch(sir_table, solver=solver, workers=1, backend="kernel")
    two = sir.simulate_batch(sir_table, solver=solver, workers=2, backend="kernel")
    np.testing.assert_array_equal(batch_array(one), batch_array(two))


def test_the_environment_sets_the_default_workers(monkeypatch):
    monkeypatch.setenv("AICIRCLE_WORKERS", "3")
    assert kernel.default_workers() == 3
    monkeypatch.setenv("AICIRCLE_WORKERS", "")
    assert kernel.default_workers() >= 1


def test_results_do_not_depend_on_the_chunk_size(sir, sir_table):
    default = sir.simulate_batch(sir_table)
    small = sir.simulate_batch(sir_table, chunk_size=7)
    np.testing.assert_array_equal(batch_array(default), batch_array(small))


def test_batch_of_sir_equals_the_numpy_path(sir, sir_table):
    ours = sir.simulate_batch(sir_table, backend="kernel")
    ref = sir.simulate_batch(sir_table, backend="numpy")
    assert relative_difference(batch_array(ours), batch_array(ref)) <= TOLERANCE


def test_default_chunks_are_sized_from_the_program(sir, tmp_path):
    from aicircle import integrate

    prog = sir._program(frozenset(), (sir._vid("Infectious"),))
    P = sir._default_P(prog)
    numpy_chunk = integrate.chunk_size(prog, P, "euler", "numpy")
    assert 256 <= numpy_chunk <= 4096
    # a program with a hundred times the rows gets a smaller numpy chunk, never below 256
    big = ac.load(write_mdl(tmp_path, "Region: (r1-r300)", "pop[Region] = INTEG(0.1 * pop[Region], 1)"))
    bprog = big._program(frozenset(), (big._vid("pop"),))
    assert integrate.chunk_size(bprog, big._default_P(bprog), "euler", "numpy") < numpy_chunk
    # the kernel's chunk bounds its results' memory only: 3201 saved times of one output
    n_saved = len(sir.simulate(return_columns=["Infectious"]))
    assert integrate.chunk_size(prog, P, "euler", "kernel") == min(
        integrate.KERNEL_MAX_CHUNK, integrate.KERNEL_CHUNK_BYTES // (8 * n_saved))


CACHE_SCRIPT = """
import aicircle as ac
from aicircle.compiler import kernel
model = ac.load({path!r})
model.simulate(backend="kernel")
(kern,) = {{k.digest: k for _, k, _ in kernel._PROGRAMS.values() if k is not None}}.values()
print(len(kern.compiled.loaded), len(kern.compiled.built))
"""


@pytest.mark.slow
def test_a_second_process_loads_the_compiled_kernel_from_the_disk_cache(tmp_path):
    path = write_mdl(tmp_path, "x = INTEG(rate, 1)", "rate = -0.3 * x + SIN(Time)", name="cached.mdl")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    script = CACHE_SCRIPT.format(path=str(path))

    def hits_and_misses():
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                              check=True)
        return [int(x) for x in done.stdout.split()]

    assert hits_and_misses() == [0, 1]  # compiled and written: the one function a single Euler run needs
    written = list((tmp_path / "cache" / "aicircle" / "kernels").glob("k*.o"))
    assert len(written) == 1 and written[0].stat().st_size > 0 and written[0].stem.endswith("-euler1")
    assert hits_and_misses() == [1, 0]  # loaded, not compiled
    intact = written[0].read_bytes()
    # an empty, truncated or foreign file is compiled again, not loaded (LLVM would crash on it)
    for broken in (b"", intact[:len(intact) // 2], intact[:-8] + b"\x00" * 8, b"garbage" * 100):
        written[0].write_bytes(broken)
        assert hits_and_misses() == [0, 1]
        assert written[0].read_bytes() == intact  # and written whole again


def test_kernel_source_holds_no_text_of_the_model(tmp_path):
    marker = "zzzsecretname"
    path = write_mdl(tmp_path, f"{marker} stock = INTEG({marker} rate, 1)", f"{marker} rate = -0.1",
                     name="names.mdl")
    model = ac.load(path)
    prog = model._program(frozenset(), (model._vid(f"{marker} stock"),))
    texts, _ = kernel.source(kernel._full_program(prog))
    assert set(texts) == {f"euler{kernel.LANES}", "euler1", f"rk4_{kernel.LANES}", "rk4_1", "deriv"}
    assert not any(marker in text.lower() for text in texts.values())

"""Memory limits: what a batch of runs will allocate, refused before it is allocated.

:func:`batch_bytes` estimates the arrays :meth:`aicircle.Model.simulate_batch` and the
ensembles built on it (:func:`aicircle.sensitivity.run_ensemble`, the tipping grids, the
predictive ensemble) allocate, read off what :mod:`aicircle.integrate` really allocates:

- the **results**: one float per set, saved time and returned column, held once in the
  batch's result array (plus, in :func:`~aicircle.sensitivity.run_ensemble`, once more in
  its chunks before they are joined);
- the **working arrays** of one chunk of sets (chunking bounds them): the state, the
  derivative buffers and the run constants (one row each per set), the stages of RK4
  (three derivatives and a trial state), the discrete updates, the chunk's own output
  array; an adaptive solver runs one set at a time and evaluates its outputs at every
  saved time at once, one column per saved time;
- the **time grid**: a Python float and flag per TIME STEP, about 56 bytes a step;
- the **parameter table** when an ensemble has yet to draw it (8 bytes a cell).

:func:`check` compares the estimate with :func:`memory_budget`, a fraction of the memory
available now (``MemAvailable`` in ``/proc/meminfo``, bounded by a cgroup's limit; else
``os.sysconf``; else :data:`FALLBACK_AVAILABLE`), and raises :class:`ResourceLimit`
naming the estimate, the budget and what to reduce.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import ResourceLimit

#: Share of the available memory one batch may take: the rest is the caller's (its own
#: tables, pandas' and xarray's copies of the results, other processes).
MEMORY_FRACTION = 0.5
#: What is assumed available when neither /proc/meminfo nor sysconf says (2 GiB).
FALLBACK_AVAILABLE = 2 * 2**30
#: Bytes per step of the time grid: a list of Python floats (8-byte pointer + 24-byte
#: object), a list of flags (8) and their two arrays (8 + 1), rounded up.
GRID_BYTES_PER_STEP = 56
_CGROUP = Path("/sys/fs/cgroup")
#: Most elements a dimension or a subscripted variable may have (2**18): a model is read,
#: lowered and run in seconds up to it (a 100,000-element range loads in about 3 s), and a
#: 20-character file would otherwise ask for hours (``(d1-d100000000)``).
MAX_ELEMENTS = 2**18
#: Most macro calls a model may expand into (each call copies the macro's variables):
#: 29 nested macros each calling the previous twice would expand 2**29 times.
MAX_MACRO_CALLS = 10_000


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """Room left under a cgroup v2 memory limit (a container's), None without one."""
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((_CGROUP / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def _sysconf_available() -> int | None:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def available_memory() -> int:
    """Bytes of memory available now (see the module's docstring for where it is read)."""
    found = _meminfo_available()
    if found is None:
        found = _sysconf_available()
    room = _cgroup_room()
    if room is not None:
        found = room if found is None else min(found, room)
    return FALLBACK_AVAILABLE if found is None else found


def memory_budget() -> int:
    """Bytes one batch may allocate: :data:`MEMORY_FRACTION` of :func:`available_memory`."""
    return int(MEMORY_FRACTION * available_memory())


def gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def _size(n: float) -> str:
    """A part of the estimate in the unit that reads best."""
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} GiB"


def time_grid(t0, final, dt, saveper) -> tuple[int, int] | None:
    """(steps, saved times) of a run's grid; None for settings the integrator itself refuses."""
    values = (t0, final, dt, saveper)
    if not all(math.isfinite(v) for v in values) or dt <= 0 or saveper <= 0 or final < t0:
        return None
    steps = math.floor((final - t0) / dt * (1 + 1e-9)) + 1
    saved = min(steps, math.floor((final - t0) / saveper * (1 + 1e-9)) + 1)
    return steps, saved


def program_shape(prog) -> dict:
    """The counts :func:`batch_bytes` needs from a compiled program, in rows of one value per set.

    A subscripted variable counts one row per element (its outputs, its states, its
    run constants, and the array each evaluation computes for it).
    """
    size = lambda vid: prog.vars[vid].size or 1  # noqa: E731
    work = prog.n_continuous + prog.n_buffers - len(prog.stocks)  # derivatives and row buffers
    consts = sum(size(vid) for vid in prog.static_order) + len(prog.hoisted)
    arrays = sum(prog.vars[vid].size for vid in prog.dynamic_order if prog.vars[vid].size)
    return {"n_out": len(prog.output_rows), "n_states": prog.n_state_rows, "n_stocks": prog.n_continuous,
            "n_rows": work + consts + arrays}


def batch_bytes(shape, n_sets, n_steps, n_saved, chunk_size, solver, result_copies=1, chunk_copies=0,
                table_columns=0) -> dict:
    """The bytes a batch allocates, by part.

    Parameters
    ----------
    shape : dict
        :func:`program_shape` of the compiled model with the batch's outputs.
    n_sets, n_steps, n_saved : int
        Parameter sets; TIME STEPs and saved times of each run.
    chunk_size : int
        Sets integrated at once.
    solver : str
        A canonical solver name.
    result_copies : int
        How many times the whole result is held at once.
    chunk_copies : int
        How many more times one chunk's results are held (an ensemble's chunk is a
        simulate_batch of its own).
    table_columns : int
        Columns of a parameter table still to be drawn (0 when it exists already).

    Returns
    -------
    dict
        ``results``, ``working``, ``grid``, ``table`` and their ``total``, in bytes.
    """
    chunk = min(int(chunk_size), int(n_sets))
    n_out, n_states, n_stocks = shape["n_out"], shape["n_states"], shape["n_stocks"]
    # per set: the state, buffers and constants, the discrete updates' copies
    rows = n_states + shape["n_rows"] + (n_states - n_stocks)
    if solver == "euler":
        rows += n_stocks  # the increment
    elif solver == "rk4":
        rows += 3 * n_stocks + n_states + 2 * n_stocks  # k1..k3, the trial state, the sum's temporaries
    if solver in ("euler", "rk4"):
        working = rows * chunk * 8
    else:  # one set at a time: solve_ivp's solution and the outputs at every saved time at once
        working = (n_states + shape["n_rows"] + 2 * n_stocks) * n_saved * 8
    working += chunk_copies * n_out * n_saved * chunk * 8
    parts = {"results": n_sets * n_saved * n_out * 8 * result_copies, "working": working,
             "grid": n_steps * GRID_BYTES_PER_STEP, "table": n_sets * table_columns * 8}
    parts["total"] = sum(parts.values())
    return parts


def check(parts: dict, what: str, n_sets: int, n_saved: int, n_out: int, fewer: str,
          chunked: bool = True) -> None:
    """Raise :class:`ResourceLimit` when ``parts['total']`` exceeds :func:`memory_budget`.

    ``what`` names the work (``simulate_batch``); ``fewer`` says how to shrink its
    results (``fewer sets, fewer return_columns or a larger saveper``). A smaller
    chunk_size (when ``chunked``) is suggested when the working arrays alone take half the budget, a
    larger TIME STEP when the time grid outweighs the rest.
    """
    budget = memory_budget()
    if parts["total"] <= budget:
        return
    advice = fewer
    if chunked and parts["working"] > budget / 2:  # shrinking the results alone would not do
        advice = f"a smaller chunk_size, or {fewer}"
    if parts["grid"] > max(parts["results"], parts["working"]):
        advice = f"a larger TIME STEP, or {fewer}"
    raise ResourceLimit(
        f"{what} would allocate about {gib(parts['total'])} (results {_size(parts['results'])}: "
        f"{n_sets:,} sets x {n_saved:,} saved times x {n_out} columns x 8 bytes; working arrays "
        f"{_size(parts['working'])}; time grid {_size(parts['grid'])}"
        + (f"; parameter table {_size(parts['table'])}" if parts["table"] else "")
        + f"), over the budget of {gib(budget)} ({MEMORY_FRACTION:.0%} of the memory available); "
        f"use {advice}")


def check_run(prog, P, n_sets, chunk_size, solver, what, fewer, result_copies=2, chunked=True) -> dict | None:
    """Check a batch of ``prog`` before it runs; ``P`` holds the first set's values.

    ``result_copies``: simulate_batch holds its chunks' results and their concatenation;
    ``chunked``: the caller can choose the chunk size.

    Returns the estimate (None when the time settings are ones the integrator refuses
    with its own message).
    """
    from .integrate import time_setting

    try:
        c = prog.controls(P, 0.0)
        t0 = time_setting("INITIAL TIME", c["initial_time"])
        c = prog.controls(P, t0)
        grid = time_grid(t0, *(time_setting(k, c[k]) for k in ("final_time", "time_step", "saveper")))
    except (ArithmeticError, ValueError, TypeError):
        return None
    if grid is None:
        return None
    shape = program_shape(prog)
    parts = batch_bytes(shape, n_sets, grid[0], grid[1], chunk_size, solver, result_copies)
    check(parts, what, n_sets, grid[1], shape["n_out"], fewer, chunked)
    return parts


def check_ensemble(model, n_sets, n_out, chunk_size, run_kwargs, what, fewer, result_copies=1,
                   table_columns=0) -> dict | None:
    """Check an ensemble of ``n_sets`` runs of ``model`` before its table is drawn.

    ``run_kwargs`` are the keywords its runs get (``solver``, ``final_time``,
    ``time_step``, ``saveper``); the model's own time settings fill the others.
    """
    from .integrate import solver_name

    t = model.time
    settings = [run_kwargs.get(k) if run_kwargs.get(k) is not None else t[k]
                for k in ("initial_time", "final_time", "time_step", "saveper")]
    try:
        grid = time_grid(*(float(v) for v in settings))
    except (TypeError, ValueError):
        return None
    if grid is None:
        return None
    base = model._program(frozenset(), ())
    shape = {**program_shape(base), "n_out": int(n_out)}
    # each chunk is a simulate_batch of its own: its chunks' results and their concatenation
    parts = batch_bytes(shape, n_sets, grid[0], grid[1], chunk_size,
                        solver_name(run_kwargs.get("solver", "euler")), result_copies, 2, table_columns)
    check(parts, what, n_sets, grid[1], int(n_out), fewer)
    return parts

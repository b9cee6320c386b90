"""Integrators for compiled models.

- ``euler``: Vensim's (and PySD's) fixed-step Euler, with its rules for which
  times are saved and when the run ends, so that results equal PySD's. Given
  ``noise``, the same loop is the Euler-Maruyama scheme for additive white
  noise on some stocks (:class:`_Noise`).
- ``rk4``: classic fourth-order Runge-Kutta at TIME STEP.
- ``rk23, rk45, dop853, lsoda, radau, bdf``: :func:`scipy.integrate.solve_ivp`,
  whose failures raise :class:`~aicircle.errors.IntegrationError`.

All of them integrate ``n`` parameter sets at once: the state has shape
``(n_states, n)``. The adaptive solvers run one set at a time.
"""

from __future__ import annotations

import functools
import math
import os
import warnings

import numpy as np

from .compiler import kernel
from .errors import IntegrationError, InvalidInput, TimeGridWarning, UnknownName, UnsupportedFeature

SOLVERS = ("euler", "rk4", "rk23", "rk45", "dop853", "lsoda", "radau", "bdf")
_IVP = {"rk23": "RK23", "rk45": "RK45", "dop853": "DOP853", "lsoda": "LSODA",
        "radau": "Radau", "bdf": "BDF"}
_RPREC = 1e-5  # PySD's relative precision for the final time and the saving times
# DELAY FIXED keeps one value per TIME STEP of its delay for each parameter set; refuse a
# pipeline bigger than this before allocating it (a delay of 1e12 asked for 29 TiB).
MAX_DELAY_BUFFER_BYTES = 2 * 2**30
# An adaptive solver that meets this many non-finite rates in a row, without one finite
# rate in between, cannot step past them. LSODA retries forever on one (it never gives
# up on its own), so it stops at the first.
_MAX_NONFINITE_TRIALS = 200


def solver_name(solver: str) -> str:
    """Canonical (lower-case) solver name; raise UnknownName for anything else."""
    name = str(solver).strip().lower()
    if name not in SOLVERS:
        raise UnknownName(f"unknown solver '{solver}'; choose one of {', '.join(SOLVERS)}")
    return name


def progress(iterable, enabled: bool, desc: str, **kw):
    """Wrap ``iterable`` in a tqdm progress bar when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False, **kw)


def time_setting(name, value):
    """A time setting (INITIAL TIME, TIME STEP, ...) as one float: every set of a batch must share it."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim and arr.size:
        if not np.all(arr == arr.flat[0]):
            raise InvalidInput(f"{name} must be the same for every parameter set in a batch")
        return float(arr.flat[0])
    return float(arr)


def static_times(prog, P):
    """(INITIAL TIME, TIME STEP) of a program for parameter vector ``P``."""
    c = prog.controls(P, 0.0)
    t0 = time_setting("INITIAL TIME", c["initial_time"])
    dt = time_setting("TIME STEP", prog.controls(P, t0)["time_step"])
    return t0, dt


def euler_grid(t0, final, dt, saveper):
    """PySD's time grid: the step times and which of them are saved.

    Time advances by repeated addition of ``dt`` (as PySD does, so the floats
    are the same); the run goes on while ``t + dt*1e-5 < final``; a time is
    saved when it is within ``dt*1e-5`` of a multiple of SAVEPER from the start.
    """
    if not (math.isfinite(t0) and math.isfinite(final) and math.isfinite(dt) and math.isfinite(saveper)):
        raise InvalidInput(f"time settings must be finite: INITIAL TIME={t0}, FINAL TIME={final}, "
                           f"TIME STEP={dt}, SAVEPER={saveper}")
    if dt <= 0 or saveper <= 0:
        raise InvalidInput(f"TIME STEP and SAVEPER must be positive (got {dt} and {saveper})")
    if final < t0:
        raise InvalidInput(f"FINAL TIME ({final}) is before INITIAL TIME ({t0})")
    n_steps = (final - t0) / dt
    if n_steps > 5e7:
        raise InvalidInput(f"the run would take {n_steps:.3g} steps; use a larger TIME STEP")
    _warn_grid(t0, final, dt, saveper)
    if n_steps > 1e6:  # not kept: up to 64 grids of a million steps (9 MB each) are
        return _grid.__wrapped__(t0, final, dt, saveper)
    return _grid(t0, final, dt, saveper)


@functools.lru_cache(maxsize=64)
def _grid(t0, final, dt, saveper):
    """:func:`euler_grid`'s arrays (read-only: shared by every run on the same grid).

    Kept because walking the grid in Python takes longer than a compiled run of a
    small model (0.5 ms for 3200 steps).
    """
    times = []
    saved = []
    prec = dt * _RPREC
    t = t0
    while True:
        delay = t - t0
        times.append(t)
        saved.append(delay % saveper < prec or -delay % saveper < prec)
        if not t + prec < final:
            break
        t = t + dt
    times, saved = np.array(times), np.array(saved)
    times.flags.writeable = saved.flags.writeable = False
    return times, saved


def _warn_grid(t0, final, dt, saveper):
    """Warn when the time grid cannot give what SAVEPER and FINAL TIME ask for."""
    prec = dt * _RPREC
    ratio = saveper / dt
    if abs(ratio - round(ratio)) * dt > prec or round(ratio) < 1:
        k = 1
        while k < 1000 and abs(k * saveper / dt - round(k * saveper / dt)) * dt > prec:
            k += 1
        every = f"every {k * saveper:g}" if k < 1000 else "at irregular times"
        warnings.warn(f"SAVEPER {saveper:g} is not a multiple of TIME STEP {dt:g}: values are saved "
                      f"{every}, not every {saveper:g}", TimeGridWarning, stacklevel=3)
    steps = (final - t0) / dt
    if abs(steps - round(steps)) * dt > prec:
        last = t0 + math.ceil(steps - _RPREC) * dt
        warnings.warn(f"FINAL TIME - INITIAL TIME ({final - t0:g}) is not a multiple of TIME STEP "
                      f"{dt:g}: the run ends at {last:g}, not at FINAL TIME {final:g}",
                      TimeGridWarning, stacklevel=3)


def _check_tolerances(rtol, atol, max_step):
    for name, value, allow_none in (("rtol", rtol, False), ("atol", atol, False),
                                    ("max_step", max_step, True)):
        if value is None and allow_none:
            continue
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name} must be a number, got {value!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise InvalidInput(f"{name} must be a positive finite number, got {value!r}")


def report_times(times, dt):
    """Saved times rounded as PySD rounds them (repeated addition leaves 0.9999999999999999)."""
    decimals = max(0, -int(np.log10(dt * _RPREC)))
    return np.round(times, decimals)


def run(prog, P, initial, n, solver, rtol=1e-6, atol=1e-9, max_step=None, allow_nonfinite=False,
        noise=None, seed=None, first_set=0, backend=None, workers=None):
    """Integrate ``n`` parameter sets.

    Parameters
    ----------
    prog : aicircle.compiler.Program
    P : list
        One entry per ``prog.params``: a float or an ndarray of shape (n,).
    initial : dict
        State variable id -> initial value overriding the model's.
    n : int
        Number of parameter sets.
    solver : str
        A canonical name from :data:`SOLVERS`.
    allow_nonfinite : bool
        Keep NaN and infinite values in the results; by default the first one
        raises :class:`IntegrationError` naming the variable and the time.
    noise : dict, optional
        Stock id -> sigma: additive white noise on those stocks, integrated by
        Euler-Maruyama (``solver`` must be ``euler``); see :class:`_Noise`.
    seed : int, optional
        Seed of the noise. Set ``first_set + j`` of the whole batch draws from
        child ``first_set + j`` of ``np.random.default_rng(seed)``'s seed
        sequence, so a set's noise depends neither on the other sets nor on
        how a batch is split into calls.
    first_set : int
        Position of this call's first set in the whole batch.
    backend : {'auto', 'kernel', 'numpy'}, optional
        ``auto`` (the default, or ``AICIRCLE_BACKEND``): Euler and RK4 runs go
        through the compiled kernel (:mod:`aicircle.compiler.kernel`) when it
        takes the program, else through numpy (saying why once, in the log
        ``aicircle.kernel``); ``kernel`` raises :class:`UnsupportedFeature`
        instead; ``numpy``: the reference path.
    workers : int, optional
        Threads the kernel splits the sets over (default ``AICIRCLE_WORKERS``,
        else the cores); results do not depend on it.

    Returns
    -------
    times : ndarray, shape (n_times,)
    data : ndarray, shape (n_outputs, n_times, n)
    """
    _check_tolerances(rtol, atol, max_step)
    kicks = None
    if noise:
        if solver != "euler":
            raise InvalidInput(f"noise needs solver='euler' (the Euler-Maruyama scheme); solver "
                               f"'{solver}' integrates deterministic equations only")
        kicks = _Noise(prog, noise, n, seed, first_set)
    draws = _Draws(prog, n, seed, first_set) if prog.random_rows else None
    kern = _kernel(prog, solver, backend, kicks)
    with np.errstate(all="ignore"):  # a model that overflows yields inf/nan, as Vensim's would
        times, data = _run(prog, P, initial, n, solver, rtol, atol, max_step, kicks, draws, kern, workers)
    dt = time_setting("TIME STEP", prog.controls(P, times[0] if len(times) else 0.0)["time_step"])
    times = report_times(times, dt)
    if not allow_nonfinite:
        _check_finite(prog, times, data, solver)
    return times, data


BACKENDS = ("auto", "kernel", "numpy")


def backend_name(backend) -> str:
    """The backend asked for: ``backend``, else ``AICIRCLE_BACKEND``, else ``auto``; checked."""
    if backend is None:
        backend = os.environ.get("AICIRCLE_BACKEND") or "auto"
    name = str(backend).strip().lower()
    if name not in BACKENDS:
        raise InvalidInput(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    return name


def check_workers(workers):
    """``workers`` as a whole number >= 1, or None (the default)."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InvalidInput(f"workers must be a whole number >= 1, got {workers!r}")
    return int(workers)


def _kernel(prog, solver, backend, noise):
    """The compiled kernel that runs this call, or None for the numpy path."""
    backend = backend_name(backend)
    if backend == "numpy":
        return None
    if noise is not None:
        why = "noise (Euler-Maruyama)"
        if backend == "auto":
            kernel.say_fallback(prog.source, why)
            return None
    else:
        why = None
    kern = None if why else kernel.kernel_for(prog)
    if kern is None and backend == "kernel":
        why = why or kernel.why_not(prog)
        raise UnsupportedFeature(f"{prog.source}: the compiled kernel does not take {why} "
                                 f"(use backend='auto' or 'numpy')")
    return kern


def _cache_bytes() -> int:
    """The size of one core's largest private cache (L2), from sysfs; 1 MiB where it is unknown."""
    best = 0
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            with open(os.path.join(base, entry, "level")) as fh:
                level = int(fh.read())
            with open(os.path.join(base, entry, "size")) as fh:
                text = fh.read().strip()
            size = int(text.rstrip("KMG")) * {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
            if level == 2:
                best = max(best, size)
    except (OSError, ValueError):
        pass
    return best or 2**20


CACHE_BYTES = _cache_bytes()
KERNEL_CHUNK_BYTES = 2**25  # a kernel chunk's results (32 MiB): its working set is a few registers a set
KERNEL_MAX_CHUNK = 8192  # enough sets for every worker; more only holds more constants and results


def chunk_size(prog, P, solver, backend=None, noisy=False) -> int:
    """The sets integrated at once by default, from the program's rows and the machine's cache.

    The numpy path keeps every live row of a chunk (the state, RK4's stages, the
    work rows of the right-hand side, subscripted values' elements) in the core's
    L2 cache, but takes at least 256 sets so that numpy's cost per call stays
    small beside the arithmetic; the kernel keeps one set's values in registers,
    so its chunk only bounds the memory of the results (and is split over the
    workers).
    """
    kern = None if noisy else _kernel(prog, solver, backend, None)
    if kern is not None:
        try:
            t0, dt = static_times(prog, P)
            c = prog.controls(P, t0)
            n_saved = max(1.0, (float(c["final_time"]) - t0) / float(c["saveper"]) + 1)
        except (ArithmeticError, TypeError, ValueError, InvalidInput):
            n_saved = 1000.0
        per_set = 8 * max(1, len(prog.output_rows)) * n_saved
        return int(min(KERNEL_MAX_CHUNK, max(256, KERNEL_CHUNK_BYTES // per_set)))
    stages = 5 if solver == "rk4" else 2
    elements = sum(prog.vars[vid].size or 0 for vid in prog.dynamic_order)
    rows = prog.n_buffers + stages * prog.n_state_rows + elements + len(prog.output_rows)
    return int(min(4096, max(256, CACHE_BYTES // (8 * max(rows, 1)))))


def _check_finite(prog, times, data, solver):
    """Raise IntegrationError at the first saved time where an output is NaN or infinite."""
    bad = ~np.isfinite(data)
    bad[prog.undefined_outputs] = False  # an element no equation defines is NaN (as in PySD)
    if not bad.any():
        return
    at_time = bad.any(axis=2)  # (n_outputs, n_times)
    k = int(np.argmax(at_time.any(axis=0)))
    j = min(np.flatnonzero(at_time[:, k]), key=lambda j: prog.output_rows[j])  # first in file order
    s = int(np.argmax(bad[j, k]))
    value = data[j, k, s]
    where = f" (parameter set {s})" if data.shape[2] > 1 else ""
    raise IntegrationError(
        f"{prog.source}: '{prog.row_label(*prog.output_rows[j])}' is {value} at t={times[k]:g}{where} "
        f"with solver {solver}; the model diverges or divides by zero there (allow_nonfinite=True "
        f"or --keep-nonfinite keeps the run going)")


def _run(prog, P, initial, n, solver, rtol, atol, max_step, noise=None, draws=None, kern=None,
         workers=None):
    c0 = prog.controls(P, 0.0)
    t0 = time_setting("INITIAL TIME", c0["initial_time"])
    ctrl = prog.controls(P, t0)
    dt = time_setting("TIME STEP", ctrl["time_step"])
    if draws is not None:
        if solver != "euler":
            raise UnsupportedFeature(f"{prog.source}: random functions draw once per TIME STEP; "
                                     f"solver '{solver}' cannot run them (use solver='euler')")
        noise = _Both(noise, draws)
    # the first draws are the random functions' values at the initial time, so that a stock
    # starting from one starts from a real draw of the run's stream (the one its step uses)
    consts, y0, delay_times = prog.initialise(P, t0, dt, n, None if draws is None else draws.next())
    for vid, value in initial.items():
        y0[prog.state_index[vid]] = value
    if prog.dynamic_controls:
        if solver != "euler":
            raise UnsupportedFeature(
                f"{prog.source}: time settings that change with time need solver='euler'")
        return _euler_dynamic(prog, P, consts, y0, delay_times, t0, n, noise)
    final = time_setting("FINAL TIME", ctrl["final_time"])
    saveper = time_setting("SAVEPER", ctrl["saveper"])
    times, saved = euler_grid(t0, final, dt, saveper)
    if kern is not None and solver in ("euler", "rk4"):
        return kernel.run(kern, prog, P, y0, times, saved, dt, n, solver, workers)
    if solver == "euler":
        return _euler(prog, consts, y0, delay_times, times, saved, dt, n, noise)
    if prog.discrete:
        names = sorted({prog.vars[vid].builtin for vid in prog.discrete})
        raise UnsupportedFeature(
            f"{prog.source}: {', '.join(names).replace('_', ' ')} keeps discrete state; "
            f"solver '{solver}' needs a continuous model (use solver='euler')")
    if solver == "rk4":
        return _rk4(prog, consts, y0, times, saved, dt, n)
    return _adaptive(prog, P, y0, times[saved], dt, n, solver, rtol, atol, max_step, kern)


class _Rings:
    """DELAY FIXED pipelines: PySD's ring buffers, one per discrete delay."""

    def __init__(self, prog, y0, delay_times, dt):
        self.rows = [prog.discrete_rows[i] for i in prog.delay_fixed]
        self.pipes = []
        for i, row, dtime in zip(prog.delay_fixed, self.rows, delay_times):
            delay = time_setting("DELAY FIXED delay time", dtime)
            order = max(delay / dt, 1) if math.isfinite(delay) else math.inf
            size = order * y0[row].size * 8
            if not size <= MAX_DELAY_BUFFER_BYTES:
                name = prog.vars[prog.discrete[i]].name.split("#")[0]
                raise InvalidInput(
                    f"{prog.source}: DELAY FIXED in '{name}' with delay time {delay:g} and TIME STEP "
                    f"{dt:g} would keep {order:.3g} values per run, about {_bytes(size)}; the limit is "
                    f"{_bytes(MAX_DELAY_BUFFER_BYTES)}")
            order = round(order + 1e-6)  # PySD rounds 0.5 up
            self.pipes.append([np.repeat(y0[row][None], order, axis=0), 0])

    def push(self, Y, inputs):
        for (row, pipe), value in zip(zip(self.rows, self.pipes), inputs):
            buf, ptr = pipe
            buf[ptr] = value
            ptr = (ptr + 1) % len(buf)
            pipe[1] = ptr
            Y[row] = buf[ptr]


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


class _Draws:
    """The uniform draws of a model's random functions: new ones at every step, in place in ``Y``.

    Each set has its own stream, child ``(first_set + j, 1)`` of the seed's
    :class:`numpy.random.SeedSequence` (the noise of :class:`_Noise` uses the
    children ``(first_set + j,)``), so a set's numbers depend only on the seed and
    its position in the batch.
    """

    BLOCK = 256

    def __init__(self, prog, n, seed, first_set):
        self.rows = np.array(prog.random_rows, dtype=int)
        try:
            streams = [np.random.SeedSequence(seed, spawn_key=(first_set + j, 1)) for j in range(n)]
        except (TypeError, ValueError) as err:
            raise InvalidInput(f"seed must be a whole number >= 0 or None, got {seed!r} ({err})") from None
        self._generators = [np.random.default_rng(s) for s in streams]
        self._block = np.empty((0, len(self.rows), n))
        self._next = 0

    def next(self):
        """The next step's draws, shape ``(len(rows), n)``."""
        if self._next == len(self._block):
            k = len(self.rows)
            self._block = np.stack([g.random((self.BLOCK, k)) for g in self._generators], axis=2)
            self._next = 0
        self._next += 1
        return self._block[self._next - 1]

    def fill(self, Y):
        Y[self.rows] = self.next()


class _Both:
    """What Euler does to the state after each step beyond the model: noise, then new draws."""

    def __init__(self, noise, draws):
        self.noise, self.draws = noise, draws

    def kick(self, Yc, dt):
        if self.noise is not None:
            self.noise.kick(Yc, dt)

    def after_step(self, Y):
        self.draws.fill(Y)


class _Noise:
    """Additive white noise for the Euler-Maruyama step: ``x += f dt + sigma sqrt(dt) N(0, 1)``.

    Each noisy stock of each set gets its own standard normal draw at every
    step, from the set's own stream (child ``first_set + j`` of the seed's
    :class:`numpy.random.SeedSequence`, as ``np.random.default_rng(seed).spawn``
    makes them). The draws are made ``BLOCK`` steps at a time per set, so the
    step itself stays vectorised over the sets.

    The noise is added after the deterministic increment and before the
    clipping of non-negative stocks (XMILE ``non_negative``), which therefore
    holds such a stock at zero when a draw would take it below: the noise is
    absorbed there, not reflected, and the stock's mean near zero is biased
    upwards. A stock that the model's equations need to stay positive but that
    is not declared non-negative can go negative; if that makes the model
    divide by zero or take a root of a negative number, the run's NaN is caught
    by :func:`run`'s check for non-finite values like any other.
    """

    BLOCK = 256

    def __init__(self, prog, noise, n, seed, first_set):
        rows, sigmas = [], []
        for vid, sigma in noise.items():
            name = prog.vars[vid].name
            row = prog.state_index.get(vid)
            if row is None or vid not in prog.stocks:
                raise InvalidInput(f"noise is added to stocks only; '{name}' is not a stock")
            try:
                s = float(sigma)
            except (TypeError, ValueError):
                raise InvalidInput(f"noise on '{name}' must be a number, got {sigma!r}") from None
            if not (math.isfinite(s) and s >= 0):
                raise InvalidInput(f"noise on '{name}' must be a finite sigma >= 0, got {sigma!r}")
            block = [row] if isinstance(row, int) else list(range(row.start, row.stop))
            rows += block
            sigmas += [s] * len(block)
        try:
            streams = [np.random.SeedSequence(seed, spawn_key=(first_set + j,)) for j in range(n)]
        except (TypeError, ValueError) as err:
            raise InvalidInput(f"seed must be a whole number >= 0 or None, got {seed!r} ({err})") from None
        self.rows = np.array(rows, dtype=int)
        self.sigma = np.array(sigmas)[:, None]
        self._generators = [np.random.default_rng(s) for s in streams]
        self._block = np.empty((0, len(rows), n))
        self._next = 0

    def kick(self, Yc, dt):
        """Add one step's noise to the continuous states ``Yc`` (n_stocks, n), in place."""
        if self._next == len(self._block):
            k = len(self.rows)
            self._block = np.stack([g.standard_normal((self.BLOCK, k)) for g in self._generators], axis=2)
            self._next = 0
        Yc[self.rows] += self.sigma * math.sqrt(dt) * self._block[self._next]
        self._next += 1


def _discrete_update(prog, Y, nexts, rings, nc):
    """Apply the discrete updates computed (before the step) in ``nexts``."""
    fixed = set(prog.delay_fixed)
    ring_inputs = []
    for i, value in enumerate(nexts):
        if i in fixed:
            ring_inputs.append(value)
        else:
            Y[prog.discrete_rows[i]] = value
    if ring_inputs:
        rings.push(Y, ring_inputs)


def _fixed_step(prog, consts, Y, times, saved, dt, n, stepper):
    """The fixed-step driver of Euler and RK4: at each time evaluate the model, save the outputs, advance.

    ``stepper(dY, B)`` returns ``advance(t, nexts)``, which moves the state ``Y``
    one step from ``t`` in place; ``dY`` holds the derivatives at ``t`` and
    ``nexts`` the discrete states' next values computed there.
    """
    n_out = len(prog.output_rows)
    out = np.empty((n_out, int(saved.sum()), n))
    dY, B = prog.buffers(n)
    advance = stepper(dY, B)
    rhs = prog.rhs
    k = 0
    last = len(times) - 1
    for i in range(len(times)):
        t = times[i]
        nexts, outs = rhs(t, dt, Y, consts, B)
        if saved[i]:
            for j in range(n_out):
                out[j, k] = outs[j]
            k += 1
        if i == last:
            break
        advance(t, nexts)
    return times[saved], out


def _euler(prog, consts, Y, delay_times, times, saved, dt, n, noise=None):
    nc = prog.n_continuous
    Yc = Y[:nc]
    inc = np.empty_like(Yc)
    nn = prog.non_negative
    rings = _Rings(prog, Y, delay_times, dt) if prog.delay_fixed else None
    multiply, add, maximum = np.multiply, np.add, np.maximum

    def stepper(dY, B):
        def advance(t, nexts):
            if nexts:
                nexts = [np.array(x, dtype=float, copy=True) for x in nexts]
            multiply(dY, dt, out=inc)
            add(Yc, inc, out=Yc)
            if noise is not None:
                noise.kick(Yc, dt)
            for r in nn:
                maximum(Yc[r], 0.0, out=Yc[r])
            if nexts:
                _discrete_update(prog, Y, nexts, rings, nc)
            if isinstance(noise, _Both):
                noise.after_step(Y)

        return advance

    return _fixed_step(prog, consts, Y, times, saved, dt, n, stepper)


def _rk4(prog, consts, Y, times, saved, dt, n):
    nc = prog.n_continuous
    rhs = prog.rhs

    def stepper(dY, B):
        k1, k2, k3 = (np.empty_like(dY) for _ in range(3))
        Ys = Y.copy()

        def advance(t, nexts):
            k1[...] = dY
            Ys[:nc] = Y[:nc] + 0.5 * dt * k1
            rhs(t + 0.5 * dt, dt, Ys, consts, B)
            k2[...] = dY
            Ys[:nc] = Y[:nc] + 0.5 * dt * k2
            rhs(t + 0.5 * dt, dt, Ys, consts, B)
            k3[...] = dY
            Ys[:nc] = Y[:nc] + dt * k3
            rhs(t + dt, dt, Ys, consts, B)
            Y[:nc] += (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + dY)
            for r in prog.non_negative:
                np.maximum(Y[r], 0.0, out=Y[r])

        return advance

    return _fixed_step(prog, consts, Y, times, saved, dt, n, stepper)


def _euler_dynamic(prog, P, consts, Y, delay_times, t0, n, noise=None):
    """Euler with time settings that are functions of time (PySD's semantics)."""
    dY, B = prog.buffers(n)
    nc = prog.n_continuous
    rows, times = [], []
    rings = None
    t = t0
    while True:
        c = prog.controls(P, t)
        dt = time_setting("TIME STEP", c["time_step"])
        final = time_setting("FINAL TIME", c["final_time"])
        saveper = time_setting("SAVEPER", c["saveper"])
        if rings is None and prog.delay_fixed:
            rings = _Rings(prog, Y, delay_times, dt)
        prec = dt * _RPREC
        delay = t - t0
        nexts, outs = prog.rhs(t, dt, Y, consts, B)
        if delay % saveper < prec or -delay % saveper < prec:
            times.append(t)
            rows.append([np.broadcast_to(o, (n,)).copy() for o in outs])
        if not t + prec < final:
            break
        nexts = [np.array(x, dtype=float, copy=True) for x in nexts]
        Y[:nc] += dY * dt
        if noise is not None:
            noise.kick(Y[:nc], dt)
        for r in prog.non_negative:
            np.maximum(Y[r], 0.0, out=Y[r])
        if nexts:
            _discrete_update(prog, Y, nexts, rings, nc)
        if isinstance(noise, _Both):
            noise.after_step(Y)
        t = t + dt
    data = np.array(rows).transpose(1, 0, 2) if rows and prog.outputs else \
        np.empty((len(prog.output_rows), len(times), n))
    return np.array(times), data


def _one_set(p, s):
    """Set ``s``'s value of a parameter: a number, an array (n,) or a subscripted (n_elements, n)."""
    if np.ndim(p) == 2:
        return p[:, s:s + 1] if p.shape[1] > 1 else p
    return p[s] if np.ndim(p) else p


def _adaptive(prog, P, y0, save_times, dt, n, solver, rtol, atol, max_step, kern=None):
    from scipy.integrate import solve_ivp

    nc = prog.n_continuous
    n_out = len(prog.output_rows)
    out = np.empty((n_out, len(save_times), n))
    nn = np.array(prog.non_negative, dtype=int)
    kwargs = {"rtol": rtol, "atol": atol}
    if max_step is not None:
        kwargs["max_step"] = max_step
    for s in range(n):
        Ps = [_one_set(p, s) for p in P]
        consts, _, _ = prog.initialise(Ps, save_times[0], dt, 1)
        dY, B = prog.buffers(1)
        rhs = prog.rhs
        # the compiled derivatives where the kernel takes the model (the same numbers)
        compiled = None if kern is None else kernel.derivative_function(kern, Ps, save_times[0], dt)

        trials = [0]

        def fun(t, y, consts=consts, dY=dY, B=B, trials=trials, compiled=compiled):
            if compiled is not None:
                d = compiled(t, y)
            else:
                rhs(t, dt, y.reshape(nc, 1), consts, B)
                d = dY[:, 0].copy()
            if np.all(np.isfinite(d)):
                trials[0] = 0
            else:
                # a trial step the solver will reject is not divergence; only a run of
                # them with no finite rate between means it cannot go on (LSODA would
                # retry forever)
                trials[0] += 1
                if trials[0] >= (1 if solver == "lsoda" else _MAX_NONFINITE_TRIALS):
                    bad = prog.row_name(int(np.argmin(np.isfinite(d))))
                    raise IntegrationError(
                        f"{prog.source}: the rate of '{bad}' is not finite at t={t:g} ({solver}) "
                        f"and the solver cannot step past it; the model diverges there")
            if nn.size:
                blocked = (y[nn] <= 0.0) & (d[nn] < 0.0)
                d[nn[blocked]] = 0.0
            return d

        t_span = (save_times[0], save_times[-1])
        if nc == 0 or t_span[1] == t_span[0]:
            Yt = np.repeat(y0[:, s:s + 1], len(save_times), axis=1)
        else:
            try:
                sol = solve_ivp(fun, t_span, y0[:nc, s], method=_IVP[solver],
                                t_eval=save_times, **kwargs)
            except (ValueError, ArithmeticError, FloatingPointError) as err:
                raise IntegrationError(
                    f"{prog.source}: solver {solver} failed: {err}; try solver='bdf' or 'radau' "
                    f"for a stiff model, or a smaller max_step") from err
            if sol.status < 0 or sol.y.shape[1] != len(save_times):
                reached = sol.t[-1] if sol.t.size else t_span[0]
                raise IntegrationError(
                    f"{prog.source}: solver {solver} gave up at t={reached:g}: {sol.message}; "
                    f"try solver='bdf' or 'radau' for a stiff model, or a smaller max_step")
            Yt = sol.y
            if not np.all(np.isfinite(Yt)):
                k = int(np.argmax(~np.all(np.isfinite(Yt), axis=0)))
                bad = prog.row_name(int(np.argmax(~np.isfinite(Yt[:, k]))))
                raise IntegrationError(
                    f"{prog.source}: '{bad}' is {Yt[:, k][~np.isfinite(Yt[:, k])][0]} at "
                    f"t={save_times[k]:g} ({solver}); the model diverges there")
        # evaluate the outputs at every saved time at once (columns = times)
        m = len(save_times)
        consts_t, _, _ = prog.initialise(Ps, save_times[0], dt, m)
        _, Bt = prog.buffers(m)
        _, outs = rhs(save_times, dt, np.ascontiguousarray(Yt), consts_t, Bt)
        for j in range(n_out):
            out[j, :, s] = outs[j]
    return save_times, out

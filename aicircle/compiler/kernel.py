"""The fused compiled kernel: a model's right-hand side, the step and the saving in one numba function.

For a :class:`~aicircle.compiler.emitter.Program` whose run-phase equations are
scalar arithmetic (no subscripts, data, random functions or discrete state) this
module writes a Python module holding two ``numba.njit`` functions, ``euler`` and
``rk4``. Each integrates one slice of parameter sets: for each set (the outer
loop) it keeps the state, the run constants and every variable in local
scalars (registers) and loops over the time steps, saving the outputs at the
saved times. The numpy path (:mod:`aicircle.integrate`) stays the reference:
the kernel does the same floating-point operations in the same order (so
results agree to rounding; the tests hold them to 1e-12), reading the run
constants the numpy ``init`` computes.

What the kernel executes is code *we* write: variables are named by their
position (``v12``, ``y3``, ``c40``), numbers are written with :func:`repr` of a
Python float, and lookup tables are passed as arrays; no text of the model file
becomes code, so loading a model still executes nothing from it.

The kernel is independent of which outputs a run asks for: it is generated for
every visible variable, and writes all of them into a small row at each saved
time, from which the run's outputs are picked. Programs that differ only in
their outputs or their overridden constants thus share one kernel.

Compiled kernels are cached on disk: the generated module is written (atomically)
to ``$XDG_CACHE_HOME/aicircle/kernels/k<hash>.py``, its hash that of its own
text, and imported from there, so that numba's ``cache=True`` keeps its machine
code beside it and a second process loads it instead of compiling.

Sets are split over ``workers`` threads; the kernel releases the GIL
(``nogil=True``), and each set is computed alone, so the results do not depend
on the split.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import UnsupportedFeature
from .emitter import Program
from .ir import UFUNCS

log = logging.getLogger("aicircle.kernel")

# A kernel's imports; the helpers' source is hashed into every kernel's text, so that a change
# of theirs makes new kernels (numba's cache of a kernel would not see it).
_PREAMBLE = """import math
import numpy as np
from numba import njit
from aicircle.compiler._kernel_helpers import (_fmod, _lk_extrap, _lk_forward, _lk_hold, _lk_interp,
                                               _max, _min, _modulo, _pow, _quantum, _xidz, _zidz)
"""
# (read, not imported: numba, which the helpers and kernels import, takes a second to import, and
# only a run through the kernel needs it, not `import aicircle` nor the command line's start)
_HELPERS_HASH = hashlib.sha256(Path(__file__).with_name("_kernel_helpers.py").read_bytes()).hexdigest()[:12]

#: Bumped when the kernel's template changes meaning (it is part of every kernel's hash).
KERNEL_VERSION = "2"

_LOOKUP_HELPERS = {"interpolate": "_lk_interp", "extrapolate": "_lk_extrap",
                   "hold_backward": "_lk_hold", "look_forward": "_lk_forward"}

# numpy ufunc name -> scalar code template (numba, error_model="numpy": IEEE results, no exceptions)
_UNARY = {"negative": "(-{0})", "abs": "abs({0})", "exp": "math.exp({0})", "log": "math.log({0})",
          "sqrt": "math.sqrt({0})", "sin": "math.sin({0})", "cos": "math.cos({0})", "tan": "math.tan({0})",
          "arcsin": "math.asin({0})", "arccos": "math.acos({0})", "arctan": "math.atan({0})",
          "sinh": "math.sinh({0})", "cosh": "math.cosh({0})", "tanh": "math.tanh({0})",
          "trunc": "np.trunc({0})", "logical_not": "(1.0 if {0} == 0.0 else 0.0)"}
_BINARY = {"add": "({0} + {1})", "subtract": "({0} - {1})", "multiply": "({0} * {1})",
           "divide": "({0} / {1})", "power": "_pow({0}, {1})", "fmod": "_fmod({0}, {1})",
           "minimum": "_min({0}, {1})", "maximum": "_max({0}, {1})",
           "equal": "(1.0 if {0} == {1} else 0.0)", "not_equal": "(1.0 if {0} != {1} else 0.0)",
           "less": "(1.0 if {0} < {1} else 0.0)", "less_equal": "(1.0 if {0} <= {1} else 0.0)",
           "greater": "(1.0 if {0} > {1} else 0.0)", "greater_equal": "(1.0 if {0} >= {1} else 0.0)",
           "logical_and": "(1.0 if ({0} != 0.0 and {1} != 0.0) else 0.0)",
           "logical_or": "(1.0 if ({0} != 0.0 or {1} != 0.0) else 0.0)"}
_FUNCTIONS = {"if": "({1} if {0} != 0.0 else {2})", "log": "(math.log({0}) / math.log({1}))",
              "xidz": "_xidz({0}, {1}, {2})", "zidz": "_zidz({0}, {1})",
              "quantum": "_quantum({0}, {1})", "modulo": "_modulo({0}, {1})"}



def unsupported(prog) -> str | None:
    """Why the kernel cannot run ``prog`` (a phrase), or None when it can."""
    if prog.smooth:
        return "smoothed (continuation) programs"
    if prog.discrete:
        names = sorted({prog.vars[vid].builtin or "discrete state" for vid in prog.discrete})
        return f"discrete state ({', '.join(names).replace('_', ' ')})"
    if prog.dynamic_controls:
        return "time settings that change with time"
    needed = prog.dynamic_order + prog.stocks + list(prog.outputs)
    for vid in needed:
        var = prog.vars[vid]
        if var.size is not None:
            return f"subscripts ('{var.name}')"
        node = var.deriv if vid in prog.stocks else var.expr
        if prog.kind[vid] == "const" or vid in prog.static:
            continue
        bad = _unsupported_node(node)
        if bad:
            return f"{bad} ('{var.name.split('#')[0]}')"
    return None


def _unsupported_node(node) -> str | None:
    stack = [node]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        kind = n[0]
        if kind in ("gather", "arr"):
            return "subscripts"
        if kind == "fn":
            return f"function {n[1]}"
        if kind == "op":
            if n[1] not in UFUNCS and n[1] not in _FUNCTIONS:
                return f"operation {n[1]}"  # pragma: no cover - every op of ir is either
            stack.extend(n[2:])
        elif kind == "lookup":
            stack.append(n[2])
    return None


class _Writer:
    """Scalar code for the run-phase expressions of a program, one assignment per variable."""

    def __init__(self, prog, state_names, const_of):
        self.p = prog
        self.state_names = state_names  # vid -> local name of a state
        self.const_of = const_of  # vid or hoisted id -> local name of a run constant

    def name(self, vid) -> str:
        if vid in self.state_names:
            return self.state_names[vid]
        if vid in self.const_of:
            return self.const_of[vid]
        return f"v{vid}"

    def expr(self, node) -> str:
        kind = node[0]
        if kind == "num":
            value = float(node[1])
            if math.isnan(value):
                return "np.nan"
            if math.isinf(value):
                return "np.inf" if value > 0 else "(-np.inf)"
            return repr(value)
        if kind == "ref":
            return self.name(node[1])
        if kind == "time":
            return "tt"
        if kind == "dt":
            return "dt"
        if kind == "lookup":
            hoisted = self.p.hoisted.get(id(node))
            if hoisted is not None:
                return self.const_of[hoisted]
            table = self.p.lookups[node[1]]
            return (f"{_LOOKUP_HELPERS[table.kind]}({self.expr(node[2])}, LX, LY, "
                    f"LO[{node[1]}], LN[{node[1]}])")
        if kind == "op":
            hoisted = self.p.hoisted.get(id(node))
            if hoisted is not None:
                return self.const_of[hoisted]
            name = node[1]
            args = [self.expr(a) for a in node[2:]]
            if name in UFUNCS:
                ufunc = UFUNCS[name]
                template = _UNARY.get(ufunc) or _BINARY[ufunc]
                return template.format(*args)
            return _FUNCTIONS[name].format(*args)
        raise AssertionError(kind)  # pragma: no cover - unsupported() refuses the rest


def _all_outputs(prog):
    """The visible scalar variables a kernel can save: every one the model's run defines."""
    return [v.vid for v in prog.vars if not v.hidden and v.size is None and prog.kind[v.vid] != "control"
            or v.vid in prog.outputs]


def _full_program(prog):
    """``prog`` made for every visible scalar variable as an output."""
    return Program(prog.vars, prog.lookups, prog.params, _all_outputs(prog), prog.source,
                   prog.control_vids)


def source(prog) -> tuple[str, list[int]]:
    """The kernel module's source for ``prog`` (a program made for all outputs) and its saved vids."""
    stocks = prog.stocks
    nc = prog.n_continuous
    state_names = {vid: f"y{i}" for i, vid in enumerate(stocks)}
    # the run constants, in the order of prog's init (statics, then hoisted subexpressions)
    const_ids = list(prog.static_order) + list(prog.hoisted.values())
    const_of = {key: f"c{i}" for i, key in enumerate(const_ids)}
    w = _Writer(prog, state_names, const_of)
    saved_vids = [vid for vid in prog.outputs]
    body = []
    for vid in prog.dynamic_order:
        body.append(f"v{vid} = {w.expr(prog.vars[vid].expr)}")
    for i, vid in enumerate(stocks):
        body.append(f"d{i} = {w.expr(prog.vars[vid].deriv)}")
    save = [f"row[{j}] = {w.name(vid)}" for j, vid in enumerate(saved_vids)]
    nn = prog.non_negative

    def block(lines, indent):
        return [" " * indent + ln for ln in lines] or [" " * indent + "pass"]

    head = [
        "    n = Y0.shape[1]",
        "    nt = times.shape[0]",
        f"    row = np.empty({max(len(saved_vids), 1)})",
        "    for s in range(n):",
    ]
    head += [f"        c{i} = C[{i}, s]" for i in range(len(const_ids))]
    head += [f"        y{i} = Y0[{i}, s]" for i in range(nc)]
    head += ["        k = 0"]
    args = "Y0, C, times, saved, dt, sel, out, LX, LY, LO, LN"
    euler = ["@njit(cache=True, nogil=True, error_model='numpy')", f"def euler({args}):"] + head
    euler += ["        for i in range(nt):", "            tt = times[i]"]
    euler += block(body, 12)
    euler += ["            if saved[i]:"] + block(save, 16)
    euler += ["                for j in range(sel.shape[0]):",
              "                    out[s, j, k] = row[sel[j]]",
              "                k += 1",
              "            if i == nt - 1:",
              "                break"]
    euler += [f"            y{i} = y{i} + d{i} * dt" for i in range(nc)]
    euler += [f"            y{r} = _max(y{r}, 0.0)" for r in nn]

    # RK4: the body once, in a loop over the four stages (the numpy path's operations, in order)
    rk4 = ["@njit(cache=True, nogil=True, error_model='numpy')", f"def rk4({args}):"] + head
    rk4 += [f"        b{i} = y{i}" for i in range(nc)]
    rk4 += [f"        k1_{i} = 0.0\n        k2_{i} = 0.0\n        k3_{i} = 0.0" for i in range(nc)]
    rk4 += ["        h2 = 0.5 * dt", "        h6 = dt / 6.0",
            "        for i in range(nt):", "            t = times[i]", "            done = False",
            "            for stage in range(LN.shape[0] * 0 + 4):  # (a trip count LLVM does not unroll)",
            "                if stage == 0:", "                    tt = t"]
    rk4 += block([f"y{i} = b{i}" for i in range(nc)], 20)
    rk4 += ["                elif stage == 1:", "                    tt = t + 0.5 * dt"]
    rk4 += block([f"y{i} = b{i} + h2 * k1_{i}" for i in range(nc)], 20)
    rk4 += ["                elif stage == 2:", "                    tt = t + 0.5 * dt"]
    rk4 += block([f"y{i} = b{i} + h2 * k2_{i}" for i in range(nc)], 20)
    rk4 += ["                else:", "                    tt = t + dt"]
    rk4 += block([f"y{i} = b{i} + dt * k3_{i}" for i in range(nc)], 20)
    rk4 += block(body, 16)
    rk4 += ["                if stage == 0:"]
    rk4 += ["                    if saved[i]:"] + block(save, 24)
    rk4 += ["                        for j in range(sel.shape[0]):",
            "                            out[s, j, k] = row[sel[j]]",
            "                        k += 1",
            "                    if i == nt - 1:",
            "                        done = True",
            "                        break"]
    rk4 += block([f"k1_{i} = d{i}" for i in range(nc)], 20)
    rk4 += ["                elif stage == 1:"] + block([f"k2_{i} = d{i}" for i in range(nc)], 20)
    rk4 += ["                elif stage == 2:"] + block([f"k3_{i} = d{i}" for i in range(nc)], 20)
    rk4 += ["            if done:", "                break"]
    rk4 += [f"            b{i} = b{i} + h6 * (((k1_{i} + 2.0 * k2_{i}) + 2.0 * k3_{i}) + d{i})"
            for i in range(nc)]
    rk4 += [f"            b{r} = _max(b{r}, 0.0)" for r in nn]

    # the derivatives of one set at one time, for solve_ivp's methods
    deriv = ["@njit(cache=True, nogil=True, error_model='numpy')",
             "def deriv(tt, dt, Y, C, D, LX, LY, LO, LN):"]
    deriv += [f"    c{i} = C[{i}]" for i in range(len(const_ids))]
    deriv += [f"    y{i} = Y[{i}]" for i in range(nc)]
    deriv += block(body, 4)
    deriv += [f"    D[{i}] = d{i}" for i in range(nc)]
    text = (f"# generated by aicircle.compiler.kernel (version {KERNEL_VERSION}, helpers {_HELPERS_HASH});"
            f" do not edit\n{_PREAMBLE}\n\n" + "\n".join(euler) + "\n\n\n" + "\n".join(rk4) + "\n\n\n"
            + "\n".join(deriv) + "\n")
    return text, saved_vids


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$XDG_CACHE_HOME/aicircle/kernels`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aicircle" / "kernels"


class Kernel:
    """A compiled kernel for one program structure: the numba functions and what they save."""

    def __init__(self, module, full_prog, saved_vids, digest):
        self.module = module
        self.full = full_prog
        self.saved_vids = saved_vids
        self.position = {vid: j for j, vid in enumerate(saved_vids)}
        self.digest = digest
        lookups = full_prog.lookups
        self.LX = np.concatenate([lk.x for lk in lookups]).astype(float) if lookups else np.zeros(1)
        self.LY = np.concatenate([lk.y for lk in lookups]).astype(float) if lookups else np.zeros(1)
        sizes = [len(lk.x) for lk in lookups]
        self.LN = np.array(sizes or [0], dtype=np.int64)
        self.LO = np.array(np.concatenate([[0], np.cumsum(sizes)[:-1]]) if sizes else [0], dtype=np.int64)


_LOCK = threading.Lock()
_KERNELS: dict = {}  # digest -> module
_PROGRAMS: dict = {}  # id(prog) -> (prog, Kernel or None, reason)
_SAID: set = set()  # (source, reason) already logged


def _load_module(text: str, digest: str):
    """Import the kernel module of ``text`` from the disk cache, writing it there first if new."""
    name = f"aicircle_kernel_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    folder = cache_dir()
    path = folder / f"k{digest}.py"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".k{digest}.", suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, path)  # atomic: another process sees the whole file or none
    except OSError:  # an unwritable cache: compile in a private folder (no reuse across processes)
        folder = Path(tempfile.mkdtemp(prefix="aicircle-kernels-"))
        path = folder / f"k{digest}.py"
        path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def kernel_for(prog):
    """The kernel of ``prog``, or None with the reason logged once when the kernel cannot take it.

    Kernels are generated from the same program made for every visible variable
    (:func:`_full_program`), so that runs asking for other outputs share them.
    """
    key = id(prog)
    with _LOCK:
        found = _PROGRAMS.get(key)
        if found is not None and found[0] is prog:
            return found[1]
    reason = unsupported(prog)
    kern = None
    if reason is None:
        try:
            full = _full_program(prog)
        except UnsupportedFeature as err:  # a variable the run does not need cannot be compiled
            full, reason = None, f"the whole model ({err})"
        reason = reason or unsupported(full)
        if reason is None:
            text, saved = source(full)
            digest = hashlib.sha256(text.encode()).hexdigest()[:24]
            with _LOCK:
                module = _KERNELS.get(digest)
                if module is None:
                    module = _KERNELS[digest] = _load_module(text, digest)
            kern = Kernel(module, full, saved, digest)
    if reason is not None:
        say_fallback(prog.source, reason)
    with _LOCK:
        _PROGRAMS[key] = (prog, kern, reason)
        if len(_PROGRAMS) > 256:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
    return kern


def why_not(prog) -> str | None:
    """Why :func:`kernel_for` found no kernel for ``prog`` (None if it found one or was not asked)."""
    with _LOCK:
        found = _PROGRAMS.get(id(prog))
    return found[2] if found is not None and found[0] is prog else None


def say_fallback(source: str, reason: str) -> None:
    """Log, once per model and reason, that a run goes through numpy: the kernel cannot take ``reason``."""
    said = (source, reason)
    with _LOCK:
        if said in _SAID:
            return
        _SAID.add(said)
    log.info("%s: the compiled kernel does not take %s; running with numpy", source, reason)


def default_workers() -> int:
    """``AICIRCLE_WORKERS`` if set, else the number of cores this process may use."""
    text = os.environ.get("AICIRCLE_WORKERS")
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value >= 1:
            return value
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


MIN_SETS_PER_WORKER = 16  # below this a thread costs more than it saves


def derivative_function(kern, P, t0, dt):
    """``f(t, y) -> dy/dt`` of one set (parameters ``P`` of one set) through the kernel's ``deriv``."""
    consts, _, _ = kern.full.initialise(P, t0, dt, 1)
    C = np.array([float(np.asarray(c).reshape(-1)[0]) for c in consts] or [0.0])
    nc = kern.full.n_continuous
    deriv = kern.module.deriv
    tables = (kern.LX, kern.LY, kern.LO, kern.LN)

    def f(t, y):
        d = np.empty(nc)
        deriv(float(t), dt, np.ascontiguousarray(y, dtype=float), C, d, *tables)
        return d

    return f


def run(kern, prog, P, y0, times, saved, dt, n, solver, workers=None):
    """Integrate ``n`` sets with ``kern``: the kernel's counterpart of :func:`aicircle.integrate._euler`.

    Returns ``(saved times, data)`` with data of shape ``(n_outputs, n_saved, n)``.
    """
    full = kern.full
    consts, _, _ = full.initialise(P, times[0], dt, n)
    C = np.empty((max(len(consts), 1), n))
    for i, c in enumerate(consts):
        C[i] = c
    Y0 = np.ascontiguousarray(y0[:prog.n_continuous], dtype=float)
    sel = np.array([kern.position[vid] for vid, _ in prog.output_rows], dtype=np.int64)
    n_saved = int(saved.sum())
    # each set's results contiguous (the kernel writes one set at a time): (set, output, time)
    out = np.empty((n, len(sel), n_saved))
    function = kern.module.euler if solver == "euler" else kern.module.rk4
    args = (np.asarray(times, dtype=float), np.asarray(saved, dtype=np.bool_), float(dt), sel)
    tables = (kern.LX, kern.LY, kern.LO, kern.LN)
    workers = default_workers() if workers is None else workers
    parts = max(1, min(workers, n // MIN_SETS_PER_WORKER))
    if parts == 1:
        function(Y0, C, *args, out, *tables)
    else:
        bounds = np.linspace(0, n, parts + 1).astype(int)
        pieces = [(np.ascontiguousarray(Y0[:, a:b]), np.ascontiguousarray(C[:, a:b]), out[a:b])
                  for a, b in zip(bounds[:-1], bounds[1:])]
        with ThreadPoolExecutor(parts) as pool:
            list(pool.map(lambda p: function(p[0], p[1], *args, p[2], *tables), pieces))
    return times[saved], out.transpose(1, 2, 0)  # (output, time, set), as the numpy path's

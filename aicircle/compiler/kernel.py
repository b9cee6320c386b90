"""The fused compiled kernel: a model's right-hand side, the step and the saving in one machine-code function.

For a :class:`~aicircle.compiler.emitter.Program` whose run-phase equations the
kernel takes (arithmetic, the elementwise functions, lookups, subscripts with
their reductions; no data, random functions or discrete state: see
:func:`unsupported`) this module writes LLVM modules (text), compiled by LLVM
through llvmlite into machine code for this processor, one function each:

- ``euler4`` and ``rk4_4`` integrate a range of parameter sets, four at a time
  as the lanes of ``<4 x double>`` vectors (:data:`LANES`): for each group (the
  outer loop) they keep the state, the run constants and every variable in
  registers and loop over the time steps, saving the outputs at the saved
  times; ``euler1`` and ``rk4_1`` do the same one set at a time (single runs,
  and a batch's sets beyond a multiple of four);
- ``deriv`` gives the derivatives of one set at one time, for ``solve_ivp``.

A subscripted variable is unrolled: one register per element (:class:`_Writer`).

The numpy path (:mod:`aicircle.integrate`) stays the reference: the kernel does
the same IEEE operations in the same order (no fast-math, no fused multiply-add,
so results agree to rounding; the transcendental functions are the C library's,
which may differ from numpy's own by an ulp; the tests hold them to 1e-12),
reading the run constants the numpy ``init`` computes.

Why LLVM text and not numba (the first kernel, issue 26): numba types and
lowers every operation of a ~2700-line function through its Python-level
templates, which took 6.8 s (Euler) and 10 s (RK4) for the shipped model; a
module written here is parsed, optimised and compiled in well under a second
(``benchmarks/bench_kernel.py``).

What the kernel executes is code *we* write: registers are named by position
(``%y3``, ``%c40``, ``%t12``), numbers are written as the hex bit patterns of
doubles, and lookup tables are passed as arrays; no text of the model file
becomes code, so loading a model still executes nothing from it.

The kernel is independent of which outputs a run asks for: it is generated for
every visible variable, and writes all of them into a small row at each saved
time, from which the run's outputs are picked. Programs that differ only in
their outputs or their overridden constants thus share one kernel.

Each function is compiled the first time a run calls it, and cached on disk: its
object code is written (atomically) to
``$XDG_CACHE_HOME/aicircle/kernels/k<hash>-<function>.o``, the hash that of the
modules' text, the processor's name and features and llvmlite's version, so a
second process (on the same machine) loads it instead of compiling. The folder
is the user's own; a file there is trusted as the user's own code is.

Sets are split over ``workers`` threads; the compiled functions are called
through :mod:`ctypes`, which releases the GIL, and each set is computed alone,
so the results do not depend on the split.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import logging
import math
import os
import struct
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import UnsupportedFeature
from ..runtime import SMALL_VENSIM
from .emitter import Program
from .ir import UFUNCS, node_refs

log = logging.getLogger("aicircle.kernel")

#: Bumped when the kernel's template changes meaning (it is part of every kernel's hash).
KERNEL_VERSION = "3"

#: Sets integrated at once, as the lanes of vectors (AVX's four doubles): the arithmetic runs four
#: sets per instruction; the C library's functions and the lookups are called lane by lane.
LANES = 4

_LOOKUP_HELPERS = {"interpolate": "lk_interp", "extrapolate": "lk_extrap",
                   "hold_backward": "lk_hold", "look_forward": "lk_forward"}
# numpy ufunc -> LLVM instruction (binary arithmetic), LLVM intrinsic (calls the C library's function
# where there is no instruction) or the C library's function itself (one argument, no intrinsic)
_ARITH = {"add": "fadd", "subtract": "fsub", "multiply": "fmul", "divide": "fdiv", "fmod": "frem"}
_INTRINSIC = {"abs": "fabs", "sqrt": "sqrt", "trunc": "trunc", "exp": "exp", "log": "log", "sin": "sin",
              "cos": "cos", "power": "pow"}
_LIBM = {"tan": "tan", "arcsin": "asin", "arccos": "acos", "arctan": "atan", "sinh": "sinh",
         "cosh": "cosh", "tanh": "tanh"}
# comparisons as numpy makes them: ordered (False on NaN) except "not equal" (True on NaN)
_COMPARE = {"equal": "oeq", "not_equal": "une", "less": "olt", "less_equal": "ole",
            "greater": "ogt", "greater_equal": "oge"}
_FUNCTIONS = ("if", "log", "xidz", "zidz", "quantum", "modulo")
# C library functions the machine code may call: those above, what the intrinsics become, fmod (frem)
# and sincos (LLVM's sin and cos of one x)
_C_SYMBOLS = sorted(set(_LIBM.values()) | {"exp", "log", "sin", "cos", "pow", "fmod", "sincos"})


def _declarations(lanes: int) -> str:
    ty = "double" if lanes == 1 else f"<{lanes} x double>"
    suffix = "f64" if lanes == 1 else f"v{lanes}f64"
    return "\n".join(f"declare {ty} @llvm.{name}.{suffix}({', '.join([ty] * (2 if name == 'pow' else 1))})"
                     for name in sorted(set(_INTRINSIC.values())))


def _double(value: float) -> str:
    """A double in LLVM's text: its exact bit pattern (so NaN, inf and -0.0 too)."""
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", float(value)))[0]


_ZERO, _ONE, _SMALL = _double(0.0), _double(1.0), _double(SMALL_VENSIM)

def _step_lookup(name: str, comparison: str, at: str) -> str:
    """A lookup that holds a point's value: the first point whose x fails ``x_i <comparison> x``,
    the index then picked by ``at`` (from ``%i``, as ``%at``); NaN takes the last point."""
    return f"""define internal double @{name}(double %x, double* %xs, double* %ys, i64 %o, i64 %k) {{
entry:
  %end = add i64 %o, %k
  %lasti = sub i64 %end, 1
  %isnan = fcmp uno double %x, {_ZERO}
  br i1 %isnan, label %last, label %loop
last:
  %ql = getelementptr double, double* %ys, i64 %lasti
  %yl = load double, double* %ql
  ret double %yl
loop:
  %i = phi i64 [0, %entry], [%i2, %next]
  %inside = icmp slt i64 %i, %k
  br i1 %inside, label %test, label %done
test:
  %ii = add i64 %o, %i
  %pi = getelementptr double, double* %xs, i64 %ii
  %xi = load double, double* %pi
  %passed = fcmp {comparison} double %xi, %x
  br i1 %passed, label %next, label %done
next:
  %i2 = add i64 %i, 1
  br label %loop
done:
{at}
  %ia = add i64 %o, %at
  %qa = getelementptr double, double* %ys, i64 %ia
  %ya = load double, double* %qa
  ret double %ya
}}
"""


# HOLD BACKWARD: the last point at or before x (the first when x lies before every point)
_HOLD_AT = """  %back = sub i64 %i, 1
  %neg = icmp slt i64 %back, 0
  %at = select i1 %neg, i64 0, i64 %back"""
# LOOK FORWARD: the first point at or after x (the last when x lies beyond every point)
_FORWARD_AT = """  %km1 = sub i64 %k, 1
  %over = icmp sgt i64 %i, %km1
  %at = select i1 %over, i64 %km1, i64 %i"""


# The lookup tables, as aicircle.runtime.lookup computes them (np.interp formula for formula;
# the tables concatenated in xs and ys, this one from offset o, k points).
_HELPERS = f"""
{_declarations(1)}
{_declarations(LANES)}
{chr(10).join(f"declare double @{name}(double)" for name in sorted(set(_LIBM.values())))}

define internal double @lk_interp(double %x, double* %xs, double* %ys, i64 %o, i64 %k) {{
entry:
  %isnan = fcmp uno double %x, {_ZERO}
  br i1 %isnan, label %retx, label %c1
retx:
  ret double %x
c1:
  %p0 = getelementptr double, double* %xs, i64 %o
  %x0 = load double, double* %p0
  %le0 = fcmp ole double %x, %x0
  br i1 %le0, label %first, label %c2
first:
  %q0 = getelementptr double, double* %ys, i64 %o
  %y0 = load double, double* %q0
  ret double %y0
c2:
  %end = add i64 %o, %k
  %lasti = sub i64 %end, 1
  %pl = getelementptr double, double* %xs, i64 %lasti
  %xl = load double, double* %pl
  %gel = fcmp oge double %x, %xl
  br i1 %gel, label %lastret, label %search
lastret:
  %ql = getelementptr double, double* %ys, i64 %lasti
  %yl = load double, double* %ql
  ret double %yl
search:
  %km1 = sub i64 %k, 1
  br label %loop
loop:
  %lo = phi i64 [0, %search], [%lo2, %body]
  %hi = phi i64 [%km1, %search], [%hi2, %body]
  %gap = sub i64 %hi, %lo
  %more = icmp sgt i64 %gap, 1
  br i1 %more, label %body, label %found
body:
  %sum = add i64 %lo, %hi
  %mid = sdiv i64 %sum, 2
  %im = add i64 %o, %mid
  %pm = getelementptr double, double* %xs, i64 %im
  %xm = load double, double* %pm
  %go = fcmp ole double %xm, %x
  %lo2 = select i1 %go, i64 %mid, i64 %lo
  %hi2 = select i1 %go, i64 %hi, i64 %mid
  br label %loop
found:
  %j = add i64 %o, %lo
  %pj = getelementptr double, double* %xs, i64 %j
  %xj = load double, double* %pj
  %qj = getelementptr double, double* %ys, i64 %j
  %yj = load double, double* %qj
  %eq = fcmp oeq double %xj, %x
  br i1 %eq, label %exact, label %between
exact:
  ret double %yj
between:
  %j1 = add i64 %j, 1
  %pj1 = getelementptr double, double* %xs, i64 %j1
  %xj1 = load double, double* %pj1
  %qj1 = getelementptr double, double* %ys, i64 %j1
  %yj1 = load double, double* %qj1
  %dy = fsub double %yj1, %yj
  %dx = fsub double %xj1, %xj
  %slope = fdiv double %dy, %dx
  %off = fsub double %x, %xj
  %rise = fmul double %slope, %off
  %y = fadd double %rise, %yj
  %ynan = fcmp uno double %y, {_ZERO}
  br i1 %ynan, label %other, label %rety
rety:
  ret double %y
other:
  %off2 = fsub double %x, %xj1
  %rise2 = fmul double %slope, %off2
  %y2 = fadd double %rise2, %yj1
  %y2nan = fcmp uno double %y2, {_ZERO}
  %flat = fcmp oeq double %yj, %yj1
  %both = and i1 %y2nan, %flat
  %r = select i1 %both, double %yj, double %y2
  ret double %r
}}

define internal double @lk_extrap(double %x, double* %xs, double* %ys, i64 %o, i64 %k) {{
entry:
  %y = call double @lk_interp(double %x, double* %xs, double* %ys, i64 %o, i64 %k)
  %many = icmp sgt i64 %k, 1
  br i1 %many, label %c1, label %rety
rety:
  ret double %y
c1:
  %p0 = getelementptr double, double* %xs, i64 %o
  %x0 = load double, double* %p0
  %below = fcmp olt double %x, %x0
  br i1 %below, label %left, label %c2
left:
  %o1 = add i64 %o, 1
  %p1 = getelementptr double, double* %xs, i64 %o1
  %x1 = load double, double* %p1
  %q0 = getelementptr double, double* %ys, i64 %o
  %y0 = load double, double* %q0
  %q1 = getelementptr double, double* %ys, i64 %o1
  %y1 = load double, double* %q1
  %dy = fsub double %y1, %y0
  %dx = fsub double %x1, %x0
  %slope = fdiv double %dy, %dx
  %off = fsub double %x, %x0
  %rise = fmul double %slope, %off
  %r = fadd double %y0, %rise
  ret double %r
c2:
  %end = add i64 %o, %k
  %e = sub i64 %end, 1
  %pe = getelementptr double, double* %xs, i64 %e
  %xe = load double, double* %pe
  %above = fcmp ogt double %x, %xe
  br i1 %above, label %right, label %rety
right:
  %e1 = sub i64 %e, 1
  %pe1 = getelementptr double, double* %xs, i64 %e1
  %xe1 = load double, double* %pe1
  %qe = getelementptr double, double* %ys, i64 %e
  %ye = load double, double* %qe
  %qe1 = getelementptr double, double* %ys, i64 %e1
  %ye1 = load double, double* %qe1
  %dyr = fsub double %ye, %ye1
  %dxr = fsub double %xe, %xe1
  %sloper = fdiv double %dyr, %dxr
  %offr = fsub double %x, %xe
  %riser = fmul double %sloper, %offr
  %rr = fadd double %ye, %riser
  ret double %rr
}}

{_step_lookup("lk_hold", "ole", _HOLD_AT)}
{_step_lookup("lk_forward", "olt", _FORWARD_AT)}"""


#: The most values (elements of the run's variables, states and constants) a kernel unrolls: its
#: compile time grows with them (a SIR over 1000 elements, ~5000 values, took 14 s of CPU), and a
#: process should not wait longer for the kernel than the shipped model's compile took with numba.
MAX_ELEMENTS = 2500
# functions of aicircle.runtime the kernel writes (subscripts: the elements of an equation, reductions
# over a dimension, each element's own lookup table)
_KERNEL_FUNCTIONS = ("rows", "assemble", "reduce", "lookup_elements")
# the others, as a user knows them (else their Vensim name: VECTOR SELECT, RANDOM NORMAL, ...)
_FUNCTION_NAMES = {"data_at": "data (GET DATA, a data variable or a time series given to the run)"}


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
        node = var.deriv if vid in prog.stocks else var.expr
        if prog.kind[vid] == "const" or vid in prog.static:
            continue
        bad = _unsupported_node(node)
        if bad:
            return f"{bad} ('{var.name.split('#')[0]}')"
    elements = sum(prog.vars[vid].size or 1 for vid in set(needed) | set(prog.static))
    if elements > MAX_ELEMENTS:
        return f"more than {MAX_ELEMENTS} values ({elements} elements of subscripted variables)"
    return None


def _unsupported_node(node) -> str | None:
    stack = [node]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        kind = n[0]
        if kind == "fn":
            if n[1] not in _KERNEL_FUNCTIONS:
                return _FUNCTION_NAMES.get(n[1]) or f"function {n[1].upper().replace('_', ' ')}"
            stack.extend(n[3:])
        elif kind == "op":
            if n[1] not in UFUNCS and n[1] not in _FUNCTIONS:
                return f"operation {n[1]}"  # pragma: no cover - every op of ir is either
            stack.extend(n[2:])
        elif kind == "lookup":
            stack.append(n[2])
    return None


def _shape(prog, node) -> tuple:
    """The element shape of ``node``'s value (its numpy shape without the sets' axis)."""
    kind = node[0]
    if kind == "ref":
        size = prog.vars[node[1]].size
        return () if size is None else (size,)
    if kind == "gather":
        return np.shape(node[2])
    if kind == "arr":
        return np.shape(node[1])[:-1]
    if kind == "lookup":
        return _shape(prog, node[2])
    if kind == "op":
        return np.broadcast_shapes(*(_shape(prog, a) for a in node[2:]))
    if kind == "fn":
        name, params, args = node[1], node[2], node[3:]
        if name == "rows":
            return _shape(prog, args[0]) or tuple(params)
        if name == "assemble":
            return (params[0],)
        if name == "reduce":
            return tuple(d for i, d in enumerate(_shape(prog, args[0])) if i not in params[1])
        if name == "lookup_elements":
            shape = _shape(prog, args[0])
            return shape if isinstance(params[0], int) else np.broadcast_shapes(shape, np.shape(params[0])[:-1])
        raise AssertionError(name)  # pragma: no cover - unsupported() refuses the rest
    return ()  # num, time, dt


def _element_tables(prog) -> list:
    """Each lookup_elements' tables (its params' ``table_set``) in the order a kernel numbers them."""
    found, stack = {}, [prog.vars[vid].expr for vid in prog.dynamic_order]
    stack += [prog.vars[vid].deriv for vid in prog.stocks]
    while stack:
        n = stack.pop()
        if n is None or n[0] in ("num", "ref", "time", "dt", "gather", "arr"):
            continue
        if n[0] == "fn" and n[1] == "lookup_elements":
            found.setdefault(id(n[2][1]), n[2][1])
        stack.extend(n[3:] if n[0] == "fn" else n[2:] if n[0] == "op" else (n[2],))
    return list(found.values())


def _layout(prog):
    """What a kernel of ``prog`` reads and where: (constant ids, their element shapes, extra tables).

    The run constants are those of prog's init (statics, then hoisted
    subexpressions), one row of ``C`` per element; the lookup tables are prog's,
    then each element table of ``lookup_elements``.
    """
    hoisted_nodes = {}
    stack = [prog.vars[vid].expr for vid in prog.dynamic_order] + [prog.vars[vid].deriv for vid in prog.stocks]
    while stack:
        n = stack.pop()
        if n is None or n[0] in ("num", "ref", "time", "dt", "gather", "arr"):
            continue
        if id(n) in prog.hoisted:
            hoisted_nodes[prog.hoisted[id(n)]] = n
            continue
        stack.extend(n[3:] if n[0] == "fn" else n[2:] if n[0] == "op" else (n[2],))
    const_ids = list(prog.static_order) + list(prog.hoisted.values())
    shapes = [((prog.vars[key].size,) if prog.vars[key].size else ()) if key in prog.static
              else _shape(prog, hoisted_nodes[key]) if key in hoisted_nodes else ()
              for key in const_ids]
    return const_ids, [tuple(int(d) for d in s) for s in shapes], _element_tables(prog)


class _Writer:
    """LLVM instructions for the run-phase expressions of a program, one value per operation.

    ``lanes`` sets are computed at once, as the lanes of vectors of doubles (1:
    plain doubles); each lane does exactly the scalar operations. A subscripted
    value is unrolled into its elements: every value is an object array of
    operands (0-d for a scalar) whose shape is the value's element shape in the
    numpy path without its last (sets) axis, and operations broadcast as numpy's
    do. ``values`` maps a variable id (or a hoisted subexpression's id) to such an
    array of operands: registers (``%y3``, ``%c40``, ``%t12``) or literals.
    """

    def __init__(self, prog, values, lanes, tables):
        self.p = prog
        self.values = dict(values)
        self.lanes = lanes
        self.tables = tables  # ids of lookup_elements' tables -> their kind and index in the kernel's tables
        self.ty = _vector_type(lanes)
        self.bt = "i1" if lanes == 1 else f"<{lanes} x i1>"
        self.suffix = "f64" if lanes == 1 else f"v{lanes}f64"
        self.lines: list[str] = []
        self.count = 0

    def _new(self, code: str) -> str:
        self.count += 1
        name = f"%t{self.count}"
        self.lines.append(f"  {name} = {code}")
        return name

    def const(self, value: float) -> str:
        return _constant(value, self.lanes)

    def assign(self, vid, node) -> None:
        """Compute variable ``vid`` from ``node``."""
        value = self.expr(node)
        size = self.p.vars[vid].size
        self.values[vid] = value if size is None else np.broadcast_to(value, (size,))

    def _select(self, cond: str, a: str, b: str) -> str:
        return self._new(f"select {self.bt} {cond}, {self.ty} {a}, {self.ty} {b}")

    def _compare(self, predicate: str, a: str, b: str) -> str:
        return self._new(f"fcmp {predicate} {self.ty} {a}, {b}")

    def _flag(self, cond: str) -> str:  # a comparison as numpy's 1.0 / 0.0
        return self._select(cond, self.const(1.0), self.const(0.0))

    def _extreme(self, a: str, b: str, keep_a: str) -> str:
        """np.minimum / np.maximum: NaN if either is NaN (as ``a + b``), else a where ``a keep_a b``."""
        nan = self._compare("uno", a, b)
        sum_ = self._new(f"fadd {self.ty} {a}, {b}")
        pick = self._select(self._compare(keep_a, a, b), a, b)
        return self._select(nan, sum_, pick)

    def _skip_nan(self, a: str, b: str, keep_a: str) -> str:
        """np.fmin / np.fmax: the other where one is NaN, else a where ``a keep_a b``."""
        pick = self._select(self._compare(keep_a, a, b), a, b)
        pick = self._select(self._compare("uno", b, b), a, pick)
        return self._select(self._compare("uno", a, a), b, pick)

    def _intrinsic(self, name: str, *args: str) -> str:
        return self._new(f"call {self.ty} @llvm.{name}.{self.suffix}({', '.join(f'{self.ty} {a}' for a in args)})")

    def _per_lane(self, call) -> str:
        """A scalar call made on each lane: ``call(index) -> code of a double``."""
        if self.lanes == 1:
            return self._new(call(None))
        vector = "undef"
        for lane in range(self.lanes):
            vector = self._new(f"insertelement {self.ty} {vector}, double {self._new(call(lane))}, i64 {lane}")
        return vector

    def _lane(self, x: str, lane) -> str:
        if lane is None:
            return x
        return self._new(f"extractelement {self.ty} {x}, i64 {lane}")

    def _quantum(self, a: str, b: str) -> str:
        small = self._compare("olt", b, self.const(SMALL_VENSIM))
        whole = self._intrinsic("trunc", self._new(f"fdiv {self.ty} {a}, {b}"))
        return self._select(small, a, self._new(f"fmul {self.ty} {b}, {whole}"))

    def _lookup(self, x: str, table: int, kind: str) -> str:
        o = self._load_i64("%LO", table)
        k = self._load_i64("%LN", table)
        helper = _LOOKUP_HELPERS[kind]
        return self._per_lane(lambda lane: f"call double @{helper}(double {self._lane(x, lane)}, "
                                           f"double* %LX, double* %LY, i64 {o}, i64 {k})")

    def _elementwise(self, function, *arrays) -> np.ndarray:
        """``function(*operands)`` at every element of the broadcast ``arrays``."""
        arrays = np.broadcast_arrays(*arrays)
        out = np.empty(arrays[0].shape, dtype=object)
        for index in np.ndindex(out.shape):
            out[index] = function(*(a[index] for a in arrays))
        return out

    def expr(self, node) -> np.ndarray:
        kind = node[0]
        if kind == "num":
            return _operands(self.const(node[1]))
        if kind == "ref":
            return self.values[node[1]]
        if kind == "time":
            return _operands("%ttv")
        if kind == "dt":
            return _operands("%dtv")
        hoisted = self.p.hoisted.get(id(node))
        if hoisted is not None:
            return self.values[hoisted]
        if kind == "gather":
            return _operands(self.values[node[1]][np.asarray(node[2], dtype=np.intp)])
        if kind == "arr":
            values = np.asarray(node[1], dtype=float)[..., 0]
            return self._elementwise(self.const, values)
        if kind == "lookup":
            table = node[1]
            kind_ = self.p.lookups[table].kind
            return self._elementwise(lambda x: self._lookup(x, table, kind_), self.expr(node[2]))
        if kind == "op":
            name = node[1]
            args = [self.expr(a) for a in node[2:]]
            if name in UFUNCS:
                return self._elementwise(lambda *a: self._ufunc(UFUNCS[name], a), *args)
            return self._elementwise(lambda *a: self._function(name, a), *args)
        if kind == "fn":
            return self._fn(node)
        raise AssertionError(kind)  # pragma: no cover - unsupported() refuses the rest

    def _fn(self, node) -> np.ndarray:
        name, params = node[1], node[2]
        args = [self.expr(a) for a in node[3:]]
        if name == "rows":  # runtime.rows: a value with elements as it is, a scalar repeated
            return args[0] if args[0].ndim else np.broadcast_to(args[0], params)
        if name == "assemble":  # runtime.assemble: each equation's elements, NaN where none
            size, positions = params
            out = np.full(size, self.const(math.nan), dtype=object)
            for pos, value in zip(positions, args):
                out[np.asarray(pos, dtype=np.intp)] = np.broadcast_to(value, np.shape(pos))
            return out
        if name == "reduce":  # runtime.reduce: NaN skipped, the elements taken in order
            how, axes = params
            x = args[0]
            kept = [a for a in range(x.ndim) if a not in axes]
            x = np.transpose(x, kept + list(axes)).reshape([x.shape[a] for a in kept] + [-1])
            fold = {"sum": lambda a, b: self._new(f"fadd {self.ty} {a}, {b}"),
                    "prod": lambda a, b: self._new(f"fmul {self.ty} {a}, {b}"),
                    "min": lambda a, b: self._skip_nan(a, b, "ole"),
                    "max": lambda a, b: self._skip_nan(a, b, "oge")}[how]
            neutral = {"sum": 0.0, "prod": 1.0}.get(how)
            out = np.empty(x.shape[:-1], dtype=object)
            for index in np.ndindex(out.shape):
                items = list(x[index])
                if neutral is not None:  # np.nansum / np.nanprod: NaN counts as 0 / 1
                    items = [self._select(self._compare("uno", a, a), self.const(neutral), a) for a in items]
                acc = items[0]
                for item in items[1:]:
                    acc = fold(acc, item)
                out[index] = acc
            return out
        if name == "lookup_elements":  # runtime.lookup_elements: each element's own table
            index, table_set = params
            first = self.tables[id(table_set)]
            kinds = [t[2] for t in table_set]
            if isinstance(index, int):
                return self._elementwise(lambda x: self._lookup(x, first + index, kinds[index]), args[0])
            local = np.asarray(index)[..., 0]
            return self._elementwise(lambda x, i: self._lookup(x, first + int(i), kinds[int(i)]),
                                     args[0], local)
        raise AssertionError(name)  # pragma: no cover - unsupported() refuses the rest

    def _load_i64(self, array: str, index: int) -> str:
        self.count += 1
        p, v = f"%p{self.count}", f"%t{self.count}"
        self.lines.append(f"  {p} = getelementptr i64, i64* {array}, i64 {int(index)}")
        self.lines.append(f"  {v} = load i64, i64* {p}")
        return v

    def _ufunc(self, ufunc: str, a) -> str:
        ty = self.ty
        if ufunc in _ARITH:
            return self._new(f"{_ARITH[ufunc]} {ty} {a[0]}, {a[1]}")
        if ufunc == "negative":
            return self._new(f"fneg {ty} {a[0]}")
        if ufunc in _INTRINSIC:
            return self._intrinsic(_INTRINSIC[ufunc], *a)
        if ufunc in _LIBM:
            return self._per_lane(lambda lane: f"call double @{_LIBM[ufunc]}(double {self._lane(a[0], lane)})")
        if ufunc in _COMPARE:
            return self._flag(self._compare(_COMPARE[ufunc], a[0], a[1]))
        if ufunc == "minimum":
            return self._extreme(a[0], a[1], "ole")
        if ufunc == "maximum":
            return self._extreme(a[0], a[1], "oge")
        if ufunc == "logical_not":
            return self._flag(self._compare("oeq", a[0], self.const(0.0)))
        if ufunc in ("logical_and", "logical_or"):
            x = self._compare("une", a[0], self.const(0.0))
            y = self._compare("une", a[1], self.const(0.0))
            return self._flag(self._new(f"{'and' if ufunc == 'logical_and' else 'or'} {self.bt} {x}, {y}"))
        raise AssertionError(ufunc)  # pragma: no cover - every ufunc of ir.UFUNCS is above

    def _function(self, name: str, a) -> str:
        ty = self.ty
        if name == "if":
            return self._select(self._compare("une", a[0], self.const(0.0)), a[1], a[2])
        if name == "log":
            return self._new(f"fdiv {ty} {self._intrinsic('log', a[0])}, {self._intrinsic('log', a[1])}")
        if name in ("xidz", "zidz"):
            small = self._compare("olt", self._intrinsic("fabs", a[1]), self.const(SMALL_VENSIM))
            ratio = self._new(f"fdiv {ty} {a[0]}, {a[1]}")
            return self._select(small, a[2] if name == "xidz" else self.const(0.0), ratio)
        if name == "quantum":
            return self._quantum(a[0], a[1])
        if name == "modulo":
            return self._new(f"fsub {ty} {a[0]}, {self._quantum(a[0], a[1])}")
        raise AssertionError(name)  # pragma: no cover - _unsupported_node refuses the rest


def _operands(x) -> np.ndarray:
    """``x`` (an operand, or an array of them) as an object array."""
    if isinstance(x, np.ndarray):
        return x
    out = np.empty((), dtype=object)
    out[()] = x
    return out


def _vector_type(lanes: int) -> str:
    return "double" if lanes == 1 else f"<{lanes} x double>"


def _constant(value: float, lanes: int) -> str:
    """A literal double, or a vector of ``lanes`` equal ones."""
    if lanes == 1:
        return _double(value)
    return "<" + ", ".join([f"double {_double(value)}"] * lanes) + ">"


def _all_outputs(prog):
    """The visible variables a kernel can save: every one the model's run defines."""
    return [v.vid for v in prog.vars if not v.hidden and prog.kind[v.vid] != "control" or v.vid in prog.outputs]


def _full_program(prog):
    """``prog`` made for every visible variable as an output."""
    return Program(prog.vars, prog.lookups, prog.params, _all_outputs(prog), prog.source,
                   prog.control_vids)


_INTEGRATOR_ARGS = ("double* noalias %Y0, double* noalias %C, i64 %n, i64 %s0, i64 %s1, "
                    "double* noalias %times, i8* noalias %saved, i64 %nt, double %dt, i64* noalias %sel, "
                    "i64 %nsel, double* noalias %out, i64 %nsaved, double* noalias %LX, double* noalias %LY, "
                    "i64* noalias %LO, i64* noalias %LN")


class _Function:
    """One integrator's text: its blocks, with the model's body written into one of them.

    It takes the sets ``s0 <= s < s1`` (a multiple of ``lanes`` of them), ``lanes``
    at a time, each lane one set.
    """

    def __init__(self, prog, layout, saved_rows, lanes):
        self.p = prog
        self.layout = layout
        self.saved_rows = saved_rows
        self.nc = prog.n_continuous
        self.lanes = lanes
        self.ty = _vector_type(lanes)
        self.bt = "i1" if lanes == 1 else f"<{lanes} x i1>"
        self.lines: list[str] = []

    def emit(self, *lines: str) -> None:
        self.lines.extend(lines)

    def block(self, label: str) -> None:
        self.lines.append(f"{label}:")

    def const(self, value: float) -> str:
        return _constant(value, self.lanes)

    def splat(self, x: str, name: str) -> str:
        """The double ``x`` in every lane of vector register ``name``."""
        if self.lanes == 1:
            self.emit(f"  %{name} = bitcast double {x} to double")
            return f"%{name}"
        self.emit(f"  %{name}1 = insertelement {self.ty} undef, double {x}, i64 0",
                  f"  %{name} = shufflevector {self.ty} %{name}1, {self.ty} undef, "
                  f"<{self.lanes} x i32> zeroinitializer")
        return f"%{name}"

    def column(self, array: str, row: int, prefix: str) -> str:
        """Load elements ``(row, s .. s + lanes - 1)`` of a ``(rows, n)`` array: the sets' values of one row."""
        self.emit(f"  %{prefix}o{row} = mul i64 %n, {row}", f"  %{prefix}i{row} = add i64 %{prefix}o{row}, %s",
                  f"  %{prefix}p{row} = getelementptr double, double* {array}, i64 %{prefix}i{row}",
                  f"  %{prefix}q{row} = bitcast double* %{prefix}p{row} to {self.ty}*",
                  f"  %{prefix}{row} = load {self.ty}, {self.ty}* %{prefix}q{row}, align 8")
        return f"%{prefix}{row}"

    def body(self, values) -> _Writer:
        """Write every dynamic variable and the derivatives of the stocks; the writer holds them."""
        w = _body(self.p, values, self.lanes, self.layout)
        self.lines.extend(w.lines)
        return w

    def states(self) -> dict:
        """The stocks' values: ``%y<row>``, one register per row of the state."""
        return _state_values(self.p, [f"%y{i}" for i in range(self.nc)])

    def max0(self, x: str, name: str) -> str:
        """``np.maximum(x, 0.0)`` into register ``name`` (a non-negative stock's clipping)."""
        ty, zero, bt = self.ty, self.const(0.0), self.bt
        self.emit(f"  %{name}u = fcmp uno {ty} {x}, {zero}", f"  %{name}s = fadd {ty} {x}, {zero}",
                  f"  %{name}g = fcmp oge {ty} {x}, {zero}",
                  f"  %{name}p = select {bt} %{name}g, {ty} {x}, {ty} {zero}",
                  f"  %{name} = select {bt} %{name}u, {ty} %{name}s, {ty} %{name}p")
        return f"%{name}"

    def save(self, w: _Writer, tag: str, after: str) -> None:
        """At a saved time: every output into ``%row``, the selected ones into ``out[s, j, k]``; k += 1."""
        rows = max(len(self.saved_rows), 1)
        ty, row_ty = self.ty, f"[{rows} x {self.ty}]"
        start = len(w.lines)  # the outputs no derivative needs: computed here, at the saved times only
        for vid in w.rest:
            w.assign(vid, self.p.vars[vid].expr)
        self.lines.extend(w.lines[start:])
        for j, (vid, element) in enumerate(self.saved_rows):
            value = w.values[vid][() if element is None else element]
            self.emit(f"  %{tag}r{j} = getelementptr {row_ty}, {row_ty}* %row, i64 0, i64 {j}",
                      f"  store {ty} {value}, {ty}* %{tag}r{j}")
        self.emit(f"  %{tag}k = load i64, i64* %kp", f"  br label %{tag}copy")
        self.block(f"{tag}copy")
        self.emit(f"  %{tag}j = phi i64 [0, %{tag}save], [%{tag}j2, %{tag}put]",
                  f"  %{tag}more = icmp slt i64 %{tag}j, %nsel",
                  f"  br i1 %{tag}more, label %{tag}put, label %{tag}copied")
        self.block(f"{tag}put")
        self.emit(f"  %{tag}selp = getelementptr i64, i64* %sel, i64 %{tag}j",
                  f"  %{tag}sj = load i64, i64* %{tag}selp",
                  f"  %{tag}src = getelementptr {row_ty}, {row_ty}* %row, i64 0, i64 %{tag}sj",
                  f"  %{tag}val = load {ty}, {ty}* %{tag}src")
        for lane in range(self.lanes):  # out[s + lane, j, k]
            x = f"%{tag}{lane}"
            self.emit(f"  {x}v = extractelement {ty} %{tag}val, i64 {lane}" if self.lanes > 1 else
                      f"  {x}v = bitcast double %{tag}val to double",
                      f"  {x}s = add i64 %s, {lane}", f"  {x}a = mul i64 {x}s, %nsel",
                      f"  {x}b = add i64 {x}a, %{tag}j", f"  {x}c = mul i64 {x}b, %nsaved",
                      f"  {x}d = add i64 {x}c, %{tag}k",
                      f"  {x}p = getelementptr double, double* %out, i64 {x}d",
                      f"  store double {x}v, double* {x}p")
        self.emit(f"  %{tag}j2 = add i64 %{tag}j, 1", f"  br label %{tag}copy")
        self.block(f"{tag}copied")
        self.emit(f"  %{tag}k2 = add i64 %{tag}k, 1", f"  store i64 %{tag}k2, i64* %kp", f"  br label %{after}")

    def prologue(self, state_allocas) -> dict:
        """The entry block and the loop over the sets, up to loading the sets' constants (returned)."""
        rows = max(len(self.saved_rows), 1)
        ty = self.ty
        self.block("entry")
        self.emit(f"  %row = alloca [{rows} x {ty}]", "  %sp = alloca i64", "  %ip = alloca i64",
                  "  %kp = alloca i64", f"  %ttp0 = alloca {ty}", "  %stp = alloca i64")
        self.emit(*[f"  %{a}{i} = alloca {ty}" for a in state_allocas for i in range(self.nc)])
        self.splat("%dt", "dtv")
        self.emit("  store i64 %s0, i64* %sp", "  br label %sloop")
        self.block("sloop")
        self.emit("  %s = load i64, i64* %sp", "  %smore = icmp slt i64 %s, %s1",
                  "  br i1 %smore, label %set, label %exit")
        self.block("set")
        return _const_values(self.layout, lambda row: self.column("%C", row, "c"))

    def epilogue(self) -> None:
        self.block("nextset")
        self.emit(f"  %s2 = add i64 %s, {self.lanes}", "  store i64 %s2, i64* %sp", "  br label %sloop")
        self.block("exit")
        self.emit("  ret void", "}")


def _euler(prog, layout, saved_rows, lanes) -> str:
    f = _Function(prog, layout, saved_rows, lanes)
    nc, ty = f.nc, f.ty
    f.emit(f"define void @euler{lanes}({_INTEGRATOR_ARGS}) {{")
    consts = f.prologue(["Ya"])
    for i in range(nc):
        f.emit(f"  store {ty} {f.column('%Y0', i, 'y0_')}, {ty}* %Ya{i}")
    f.emit("  store i64 0, i64* %ip", "  store i64 0, i64* %kp", "  br label %tloop")
    f.block("tloop")
    f.emit("  %i = load i64, i64* %ip", "  %tmore = icmp slt i64 %i, %nt",
           "  br i1 %tmore, label %step, label %nextset")
    f.block("step")
    f.emit("  %ttp = getelementptr double, double* %times, i64 %i", "  %tt = load double, double* %ttp")
    f.splat("%tt", "ttv")
    f.emit(*[f"  %y{i} = load {ty}, {ty}* %Ya{i}" for i in range(nc)])
    w = f.body({**consts, **f.states()})
    f.emit("  %svp = getelementptr i8, i8* %saved, i64 %i", "  %sv = load i8, i8* %svp",
           "  %issv = icmp ne i8 %sv, 0", "  br i1 %issv, label %esave, label %esaved")
    f.block("esave")
    f.save(w, "e", "esaved")
    f.block("esaved")
    f.emit("  %ntm1 = sub i64 %nt, 1", "  %last = icmp eq i64 %i, %ntm1",
           "  br i1 %last, label %nextset, label %advance")
    f.block("advance")
    for i, d in enumerate(w.derivs):
        f.emit(f"  %inc{i} = fmul {ty} {d}, %dtv", f"  %yn{i} = fadd {ty} %y{i}, %inc{i}")
        y = f.max0(f"%yn{i}", f"ynn{i}") if i in prog.non_negative else f"%yn{i}"
        f.emit(f"  store {ty} {y}, {ty}* %Ya{i}")
    f.emit("  %i2 = add i64 %i, 1", "  store i64 %i2, i64* %ip", "  br label %tloop")
    f.epilogue()
    return "\n".join(f.lines)


def _rk4(prog, layout, saved_rows, lanes) -> str:
    """RK4: the body once, in a loop over the four stages (the numpy path's operations, in order)."""
    f = _Function(prog, layout, saved_rows, lanes)
    nc, ty = f.nc, f.ty
    f.emit(f"define void @rk4_{lanes}({_INTEGRATOR_ARGS}) {{")
    consts = f.prologue(["Ya", "Ba", "K1a", "K2a", "K3a"])
    for i in range(nc):
        f.emit(f"  store {ty} {f.column('%Y0', i, 'y0_')}, {ty}* %Ba{i}")
        f.emit(*[f"  store {ty} {f.const(0.0)}, {ty}* %K{s}a{i}" for s in (1, 2, 3)])
    f.emit(f"  %h2 = fmul double {_double(0.5)}, %dt", f"  %h6 = fdiv double %dt, {_double(6.0)}")
    f.splat("%h2", "h2v")
    f.splat("%h6", "h6v")
    f.emit("  store i64 0, i64* %ip", "  store i64 0, i64* %kp", "  br label %tloop")
    f.block("tloop")
    f.emit("  %i = load i64, i64* %ip", "  %tmore = icmp slt i64 %i, %nt",
           "  br i1 %tmore, label %time, label %nextset")
    f.block("time")
    f.emit("  %tp = getelementptr double, double* %times, i64 %i", "  %t = load double, double* %tp",
           "  store i64 0, i64* %stp", "  br label %stages")
    f.block("stages")
    f.emit("  %st = load i64, i64* %stp",
           "  switch i64 %st, label %st3 [ i64 0, label %st0 i64 1, label %st1 i64 2, label %st2 ]")
    f.block("st0")
    f.emit(f"  store {ty} {f.splat('%t', 'tv0')}, {ty}* %ttp0")
    for i in range(nc):
        f.emit(f"  %b0_{i} = load {ty}, {ty}* %Ba{i}", f"  store {ty} %b0_{i}, {ty}* %Ya{i}")
    f.emit("  br label %eval")
    for stage, (k, h, dtime) in enumerate((("K1a", "%h2v", "%h2"), ("K2a", "%h2v", "%h2"),
                                           ("K3a", "%dtv", "%dt")), start=1):
        f.block(f"st{stage}")
        f.emit(f"  %tt{stage} = fadd double %t, {dtime}")
        f.emit(f"  store {ty} {f.splat(f'%tt{stage}', f'tv{stage}')}, {ty}* %ttp0")
        for i in range(nc):
            f.emit(f"  %b{stage}_{i} = load {ty}, {ty}* %Ba{i}",
                   f"  %k{stage}_{i} = load {ty}, {ty}* %{k}{i}",
                   f"  %m{stage}_{i} = fmul {ty} {h}, %k{stage}_{i}",
                   f"  %x{stage}_{i} = fadd {ty} %b{stage}_{i}, %m{stage}_{i}",
                   f"  store {ty} %x{stage}_{i}, {ty}* %Ya{i}")
        f.emit("  br label %eval")
    f.block("eval")
    f.emit(f"  %ttv = load {ty}, {ty}* %ttp0")
    f.emit(*[f"  %y{i} = load {ty}, {ty}* %Ya{i}" for i in range(nc)])
    w = f.body({**consts, **f.states()})
    f.emit("  switch i64 %st, label %post3 [ i64 0, label %post0 i64 1, label %post1 i64 2, label %post2 ]")
    f.block("post0")
    f.emit("  %svp = getelementptr i8, i8* %saved, i64 %i", "  %sv = load i8, i8* %svp",
           "  %issv = icmp ne i8 %sv, 0", "  br i1 %issv, label %rsave, label %rsaved")
    f.block("rsave")
    f.save(w, "r", "rsaved")
    f.block("rsaved")
    f.emit("  %ntm1 = sub i64 %nt, 1", "  %last = icmp eq i64 %i, %ntm1",
           "  br i1 %last, label %nextset, label %keep1")
    for stage, k in ((1, "K1a"), (2, "K2a"), (3, "K3a")):
        f.block(f"keep{stage}" if stage == 1 else f"post{stage - 1}")
        f.emit(*[f"  store {ty} {d}, {ty}* %{k}{i}" for i, d in enumerate(w.derivs)])
        f.emit(f"  store i64 {stage}, i64* %stp", "  br label %stages")
    f.block("post3")
    two = f.const(2.0)
    for i, d in enumerate(w.derivs):
        f.emit(f"  %fb{i} = load {ty}, {ty}* %Ba{i}", f"  %f1_{i} = load {ty}, {ty}* %K1a{i}",
               f"  %f2_{i} = load {ty}, {ty}* %K2a{i}", f"  %f3_{i} = load {ty}, {ty}* %K3a{i}",
               f"  %g2_{i} = fmul {ty} {two}, %f2_{i}", f"  %s1_{i} = fadd {ty} %f1_{i}, %g2_{i}",
               f"  %g3_{i} = fmul {ty} {two}, %f3_{i}", f"  %s2_{i} = fadd {ty} %s1_{i}, %g3_{i}",
               f"  %s3_{i} = fadd {ty} %s2_{i}, {d}", f"  %w{i} = fmul {ty} %h6v, %s3_{i}",
               f"  %bn{i} = fadd {ty} %fb{i}, %w{i}")
        b = f.max0(f"%bn{i}", f"bnn{i}") if i in prog.non_negative else f"%bn{i}"
        f.emit(f"  store {ty} {b}, {ty}* %Ba{i}")
    f.emit("  %i2 = add i64 %i, 1", "  store i64 %i2, i64* %ip", "  br label %tloop")
    f.epilogue()
    return "\n".join(f.lines)


def _for_derivatives(prog) -> list:
    """The dynamic variables the derivatives need (the rest are outputs only), in ``dynamic_order``."""
    dynamic = set(prog.dynamic_order)
    needed: set = set()
    stack = [vid for stock in prog.stocks for vid in node_refs(prog.vars[stock].deriv)]
    while stack:
        vid = stack.pop()
        if vid in dynamic and vid not in needed:
            needed.add(vid)
            stack.extend(node_refs(prog.vars[vid].expr))
    return [vid for vid in prog.dynamic_order if vid in needed]


def _body(prog, values, lanes, layout) -> _Writer:
    """A writer holding the dynamic variables the derivatives need and, as ``derivs``, one derivative
    per state row; ``w.rest`` lists the other dynamic variables (computed only where they are saved)."""
    _, _, tables = layout
    first = len(prog.lookups)
    numbers = {}
    for table_set in tables:
        numbers[id(table_set)] = first
        first += len(table_set)
    w = _Writer(prog, values, lanes, numbers)
    order = _for_derivatives(prog)
    for vid in order:
        w.assign(vid, prog.vars[vid].expr)
    done = set(order)
    w.rest = [vid for vid in prog.dynamic_order if vid not in done]
    w.derivs = []
    for vid in prog.stocks:
        size = prog.vars[vid].size
        d = w.expr(prog.vars[vid].deriv)
        w.derivs += [d[()]] if size is None else list(np.broadcast_to(d, (size,)))
    return w


def _state_values(prog, registers) -> dict:
    """Each stock's value: its row's register (a scalar) or its rows' (a subscripted stock)."""
    out = {}
    for vid in prog.stocks:
        rows = prog.state_index[vid]
        out[vid] = _operands(registers[rows]) if isinstance(rows, int) else \
            np.array(registers[rows], dtype=object)
    return out


def _const_values(layout, load) -> dict:
    """Each run constant's value: ``load(row)`` for each of its rows of ``C``, in its element shape."""
    const_ids, shapes, _ = layout
    out, row = {}, 0
    for key, shape in zip(const_ids, shapes):
        count = math.prod(shape)
        names = [load(r) for r in range(row, row + count)]
        out[key] = _operands(names[0]) if not shape else np.array(names, dtype=object).reshape(shape)
        row += count
    return out


def _deriv(prog, layout) -> str:
    """The derivatives of one set at one time: ``deriv(t, dt, Y, C, D, LX, LY, LO, LN)`` (plain doubles)."""
    lines = ["define void @deriv(double %ttv, double %dtv, double* noalias %Y, double* noalias %C, "
             "double* noalias %D, double* noalias %LX, double* noalias %LY, i64* noalias %LO, "
             "i64* noalias %LN) {", "entry:"]

    def load(array, prefix):
        def f(row):
            lines.extend([f"  %{prefix}p{row} = getelementptr double, double* {array}, i64 {row}",
                          f"  %{prefix}{row} = load double, double* %{prefix}p{row}"])
            return f"%{prefix}{row}"
        return f

    values = _const_values(layout, load("%C", "c"))
    values.update(_state_values(prog, [load("%Y", "y")(i) for i in range(prog.n_continuous)]))
    w = _body(prog, values, 1, layout)
    lines += w.lines
    for i, d in enumerate(w.derivs):
        lines += [f"  %dp{i} = getelementptr double, double* %D, i64 {i}", f"  store double {d}, double* %dp{i}"]
    lines += ["  ret void", "}"]
    return "\n".join(lines)


def source(prog) -> tuple[dict, list]:
    """The kernel's modules for ``prog`` (a program made for all outputs), by function, and its saved rows.

    Each module (LLVM text) holds one function and the lookup helpers: ``euler4``
    and ``rk4_4`` (LANES sets at a time), ``euler1`` and ``rk4_1`` (one set), ``deriv``.
    The saved rows are ``prog.output_rows``: (variable id, element or None).
    """
    layout = _layout(prog)
    saved_rows = list(prog.output_rows)
    head = f"; generated by aicircle.compiler.kernel (version {KERNEL_VERSION}); do not edit\n" + _HELPERS
    texts = {f"euler{lanes}": _euler(prog, layout, saved_rows, lanes) for lanes in (LANES, 1)}
    texts.update({f"rk4_{lanes}": _rk4(prog, layout, saved_rows, lanes) for lanes in (LANES, 1)})
    texts["deriv"] = _deriv(prog, layout)
    return {name: f"{head}\n{body}\n" for name, body in texts.items()}, saved_rows


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$XDG_CACHE_HOME/aicircle/kernels`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aicircle" / "kernels"


class _Machine:
    """LLVM's target machine for this processor, and the C library's functions the kernels call."""

    def __init__(self):
        import llvmlite
        import llvmlite.binding as llvm

        self.llvm = llvm
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        cpu, features = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
        self.target = llvm.Target.from_default_triple().create_target_machine(
            cpu=cpu, features=features, opt=2, jit=True)
        #: what object code depends on besides the module's text
        self.key = f"{llvm.get_process_triple()} {cpu} {features} llvmlite {llvmlite.__version__}"
        self.engines: list = []
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        for name in _C_SYMBOLS:
            function = getattr(libm, name, None)
            if function is not None:
                llvm.add_symbol(name, ctypes.cast(function, ctypes.c_void_p).value)

    def compile(self, text: str) -> bytes:
        """Object code of the module ``text``, optimised as clang's -O2."""
        llvm = self.llvm
        module = llvm.parse_assembly(text)
        module.verify()
        builder = llvm.create_pass_builder(self.target, llvm.create_pipeline_tuning_options(speed_level=2))
        builder.getModulePassManager().run(module, builder)
        return self.target.emit_object(module)

    def load(self, obj: bytes):
        """An execution engine holding the object code ``obj``.

        Engines live as long as the process (disposing of one that holds an object
        file crashes llvmlite 0.50), as numba's compiled functions do.
        """
        llvm = self.llvm
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), self.target)
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        self.engines.append(engine)
        return engine


_MACHINE: _Machine | None = None
_MACHINE_LOCK = threading.Lock()


def _machine() -> _Machine:
    """The process's one :class:`_Machine` (made on first use: llvmlite is imported only by runs that need it)."""
    global _MACHINE
    with _MACHINE_LOCK:
        if _MACHINE is None:
            _MACHINE = _Machine()
        return _MACHINE


_I64, _F64, _PTR = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
_INTEGRATOR = ctypes.CFUNCTYPE(None, _PTR, _PTR, _I64, _I64, _I64, _PTR, _PTR, _I64, _F64, _PTR, _I64,
                               _PTR, _I64, _PTR, _PTR, _PTR, _PTR)
_DERIV = ctypes.CFUNCTYPE(None, _F64, _F64, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR)


class _Compiled:
    """The machine code of one kernel: each function compiled (or loaded) the first time it is asked for.

    A run compiles only what it calls: one Euler run the one-set ``euler1``, a
    batch ``euler4`` (and ``euler1`` for the sets beyond a multiple of four),
    ``solve_ivp`` ``deriv``.
    """

    _TYPES = {"deriv": _DERIV}

    def __init__(self, texts: dict, digest: str):
        self.texts = texts
        self.digest = digest
        self.built: set = set()  # the functions this process compiled
        self.loaded: set = set()  # the functions it loaded from the disk cache
        self._functions: dict = {}
        self._lock = threading.Lock()

    def function(self, name: str):
        """The compiled function ``name`` (a ctypes function)."""
        with self._lock:
            found = self._functions.get(name)
            if found is None:
                engine = _load(self.texts[name], f"{self.digest}-{name}")
                (self.built if engine[1] else self.loaded).add(name)
                kind = self._TYPES.get(name, _INTEGRATOR)
                found = self._functions[name] = kind(engine[0].get_function_address(name))
            return found

    def integrator(self, solver: str, lanes: int):
        """``euler`` or ``rk4`` of ``lanes`` sets at a time (LANES or 1)."""
        return self.function(f"euler{lanes}" if solver == "euler" else f"rk4_{lanes}")


# A cached object file: this header, the SHA-256 of the object code, the object code. LLVM crashes the
# process on an object file that is not one, so a file whose code does not match its hash (a disk
# error, a file from elsewhere) is compiled again rather than loaded.
_OBJECT_MAGIC = b"aicircle kernel object 1\n"


def _read_object(path: Path) -> bytes | None:
    """The object code cached at ``path``, or None if it is absent, unreadable or not intact."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(_OBJECT_MAGIC)
    obj = data[head + 32:]
    if not data.startswith(_OBJECT_MAGIC) or not obj or hashlib.sha256(obj).digest() != data[head:head + 32]:
        return None
    return obj


def _load(text: str, key: str):
    """(An engine holding the machine code of ``text``, whether it was compiled): from the disk cache,
    or compiled and written there."""
    machine = _machine()
    folder = cache_dir()
    path = folder / f"k{key}.o"
    obj = _read_object(path)
    if obj is not None:
        return machine.load(obj), False
    obj = machine.compile(text)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".k{key}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(_OBJECT_MAGIC + hashlib.sha256(obj).digest() + obj)
        os.replace(tmp, path)  # atomic: another process sees the whole file or none
    except OSError:  # an unwritable cache: this process keeps its own (no reuse across processes)
        pass
    return machine.load(obj), True


class Kernel:
    """A compiled kernel for one program structure: the machine code and what it saves."""

    def __init__(self, compiled, full_prog, saved_rows, digest):
        self.compiled = compiled
        self.full = full_prog
        self.saved_rows = saved_rows
        self.position = {row: j for j, row in enumerate(saved_rows)}
        self.digest = digest
        _, self.const_shapes, element_tables = _layout(full_prog)
        tables = [(lk.x, lk.y) for lk in full_prog.lookups]
        tables += [(xs, ys) for table_set in element_tables for xs, ys, _ in table_set]
        self.LX = np.concatenate([x for x, _ in tables]).astype(float) if tables else np.zeros(1)
        self.LY = np.concatenate([y for _, y in tables]).astype(float) if tables else np.zeros(1)
        sizes = [len(x) for x, _ in tables]
        self.LN = np.array(sizes or [0], dtype=np.int64)
        self.LO = np.array(np.concatenate([[0], np.cumsum(sizes)[:-1]]) if sizes else [0], dtype=np.int64)

    def constants(self, consts, n) -> np.ndarray:
        """The run constants (``Program.initialise``'s) as the rows of ``C``, shape (rows, n): an element each."""
        rows = [np.broadcast_to(np.asarray(c, dtype=float), shape + (n,)).reshape(-1, n)
                for c, shape in zip(consts, self.const_shapes)]
        return np.ascontiguousarray(np.concatenate(rows) if rows else np.zeros((1, n)))

    @property
    def tables(self) -> tuple:
        """The lookup tables' arrays as the compiled functions take them (addresses)."""
        return tuple(a.ctypes.data for a in (self.LX, self.LY, self.LO, self.LN))


_LOCK = threading.Lock()
_KERNELS: dict = {}  # digest -> _Compiled
_PROGRAMS: dict = {}  # id(prog) -> (prog, Kernel or None, reason)
_SAID: set = set()  # (source, reason) already logged


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
            texts, saved = source(full)
            whole = "\n".join(texts[name] for name in sorted(texts))
            digest = hashlib.sha256(f"{whole}\n{_machine().key}".encode()).hexdigest()[:24]
            with _LOCK:
                compiled = _KERNELS.get(digest)
                if compiled is None:
                    compiled = _KERNELS[digest] = _Compiled(texts, digest)
            kern = Kernel(compiled, full, saved, digest)
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


@functools.lru_cache(maxsize=None)
def lookup_function(kind: str):
    """``f(x, xs, ys) -> float``: the kernel's own code of a lookup of ``kind``, for one table.

    Compiled from the same text as every kernel's (for tests that hold it to
    :func:`aicircle.runtime.lookup`); ``xs`` and ``ys`` are read from offset 0.
    """
    helper = _LOOKUP_HELPERS[kind]
    text = (_HELPERS + f"\ndefine double @probe(double %x, double* %xs, double* %ys, i64 %k) {{\n"
            f"entry:\n  %y = call double @{helper}(double %x, double* %xs, double* %ys, i64 0, i64 %k)\n"
            f"  ret double %y\n}}\n")
    machine = _machine()
    engine = machine.load(machine.compile(text))
    probe = ctypes.CFUNCTYPE(_F64, _F64, _PTR, _PTR, _I64)(engine.get_function_address("probe"))

    def f(x, xs, ys):
        xs, ys = np.ascontiguousarray(xs, dtype=float), np.ascontiguousarray(ys, dtype=float)
        return probe(float(x), xs.ctypes.data, ys.ctypes.data, len(xs))

    return f


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
    C = kern.constants(consts, 1)[:, 0].copy()
    nc = kern.full.n_continuous
    deriv = kern.compiled.function("deriv")
    tables = kern.tables

    def f(t, y):
        d = np.empty(nc)
        y = np.ascontiguousarray(y, dtype=float)
        deriv(float(t), float(dt), y.ctypes.data, C.ctypes.data, d.ctypes.data, *tables)
        return d

    f.keep = (kern, C)  # the arrays whose addresses f passes
    return f


def run(kern, prog, P, y0, times, saved, dt, n, solver, workers=None):
    """Integrate ``n`` sets with ``kern``: the kernel's counterpart of :func:`aicircle.integrate._euler`.

    Returns ``(saved times, data)`` with data of shape ``(n_outputs, n_saved, n)``.
    """
    full = kern.full
    consts, _, _ = full.initialise(P, times[0], dt, n)
    C = kern.constants(consts, n)
    Y0 = np.ascontiguousarray(y0[:prog.n_continuous], dtype=float)
    sel = np.array([kern.position[row] for row in prog.output_rows], dtype=np.int64)
    n_saved = int(saved.sum())
    # each set's results contiguous (the kernel writes one set at a time): (set, output, time)
    out = np.empty((n, len(sel), n_saved))
    times = np.ascontiguousarray(times, dtype=float)
    flags = np.ascontiguousarray(saved, dtype=np.uint8)
    head = (Y0.ctypes.data, C.ctypes.data, n)
    tail = (times.ctypes.data, flags.ctypes.data, len(times), float(dt), sel.ctypes.data, len(sel),
            out.ctypes.data, n_saved, *kern.tables)
    # LANES sets at a time as far as they go, the rest one by one (the same operations on each set)
    width = n - n % LANES
    workers = default_workers() if workers is None else workers
    parts = max(1, min(workers, width // MIN_SETS_PER_WORKER))
    bounds = np.linspace(0, width // LANES, parts + 1).astype(int) * LANES
    if width and parts == 1:
        kern.compiled.integrator(solver, LANES)(*head, 0, width, *tail)
    elif width:
        vector = kern.compiled.integrator(solver, LANES)  # the sets split into ranges, each written by one thread (ctypes releases the GIL)
        with ThreadPoolExecutor(parts) as pool:
            list(pool.map(lambda ab: vector(*head, int(ab[0]), int(ab[1]), *tail),
                          zip(bounds[:-1], bounds[1:])))
    if width < n:
        kern.compiled.integrator(solver, 1)(*head, width, n, *tail)
    return times[saved], out.transpose(1, 2, 0)  # (output, time, set), as the numpy path's

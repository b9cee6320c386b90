"""Compile PySD's AbstractModel into vectorised numpy code.

The compiler works in two passes.

1. *Lowering* turns PySD's abstract syntax tree into a small expression IR
   (tuples, see ``_Node`` below) over numbered variables. Builtins that hide
   state (SMOOTH, DELAY, TREND, ...) become explicit hidden variables with their
   own derivative and initial expressions; macro calls are inlined, each call
   with its own copy of the macro's variables.
2. *Code generation* orders the variables, splits them into what can be
   computed once per run (constants and everything that depends only on
   constants) and what must be recomputed at every evaluation (anything that
   depends on time or on a state), and writes two Python functions that are
   compiled with :func:`exec`:

   - ``init(P, t0, dt, n)``: evaluates the model at the initial time and returns
     the run constants and the initial state, shape ``(n_states, n)``;
   - ``rhs(t, dt, Y, C, W)``: evaluates every dynamic variable for the state
     ``Y`` (shape ``(n_states, n)``) into preallocated rows of ``W`` with numpy
     ufuncs called with ``out=``, so that one evaluation allocates almost
     nothing. It returns the derivatives of the continuous states and the next
     values of the discrete ones.

Semantics follow PySD's Python backend (and so Vensim) exactly, including its
small-number conventions (``SMALL_VENSIM = 1e-6`` in XIDZ, ZIDZ, QUANTUM, STEP
and PULSE) so that Euler runs agree with PySD to rounding.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable

import numpy as np

from .errors import InvalidInput, ModelReadError, UnsupportedFeature

SMALL_VENSIM = 1e-6  # what Vensim (and PySD) treat as zero

CONTROL_NAMES = {
    "initial_time": "INITIAL TIME",
    "final_time": "FINAL TIME",
    "time_step": "TIME STEP",
    "saveper": "SAVEPER",
}


def clean_name(name: str) -> str:
    """Vensim's identity of a name: lower case, runs of spaces/underscores as one ``_``.

    Surrounding double quotes (Vensim's quoting of names with special
    characters) are not part of the name.
    """
    text = str(name).strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return re.sub(r"[\s_]+", "_", text.strip().lower())


# --------------------------------------------------------------------------
# IR
#
# A node is a tuple whose first item names its kind:
#   ("num", value)                 a literal float
#   ("ref", vid)                   the value of variable vid
#   ("time",)                      the current time
#   ("dt",)                        the current TIME STEP
#   ("op", name, *args)            an elementwise operation, see _UFUNCS/_FUNCS
#   ("lookup", table_id, x)        a graphical function evaluated at x
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Var:
    """One variable of the compiled model (mutable only while compiling)."""

    vid: int
    name: str
    kind: str  # 'const' | 'aux' | 'stock' | 'discrete' | 'initial' | 'control'
    expr: tuple | None = None  # aux, const, control: the value
    init: tuple | None = None  # stock, discrete, initial: the initial value
    deriv: tuple | None = None  # stock: the derivative
    update: tuple | None = None  # discrete: the next value
    init_expr: tuple | None = None  # aux with ACTIVE INITIAL: the value at initialisation
    non_negative: bool = False
    hidden: bool = False
    units: str = ""
    limits: tuple = (None, None)
    doc: str = ""
    unchangeable: bool = False
    builtin: str = ""  # for hidden variables: the construct that made them


@dataclasses.dataclass
class Lookup:
    x: np.ndarray
    y: np.ndarray
    kind: str  # 'interpolate' | 'extrapolate' | 'hold_backward' | 'look_forward'


# Operations evaluated with a numpy ufunc that accepts ``out=``.
_UFUNCS = {
    "+": "np.add", "-": "np.subtract", "*": "np.multiply", "/": "np.divide",
    "^": "np.power", "neg": "np.negative",
    "=": "np.equal", "<>": "np.not_equal", "<": "np.less", "<=": "np.less_equal",
    ">": "np.greater", ">=": "np.greater_equal",
    "and": "np.logical_and", "or": "np.logical_or", "not": "np.logical_not",
    "abs": "np.abs", "exp": "np.exp", "ln": "np.log", "sqrt": "np.sqrt",
    "sin": "np.sin", "cos": "np.cos", "tan": "np.tan", "arcsin": "np.arcsin",
    "arccos": "np.arccos", "arctan": "np.arctan", "sinh": "np.sinh",
    "cosh": "np.cosh", "tanh": "np.tanh", "min": "np.minimum", "max": "np.maximum",
    "integer": "np.trunc", "fmod": "np.fmod",
}
# Other operations: helper functions defined in _RUNTIME (no ``out=``).
_FUNCS = {"if": "_ite", "log": "_log", "xidz": "_xidz", "zidz": "_zidz",
          "quantum": "_quantum", "modulo": "_modulo"}

_RUNTIME_SOURCE = '''
def _ite(c, a, b):
    return np.where(c, a, b)

def _log(x, base):
    return np.log(x) / np.log(base)

def _xidz(a, b, x):
    small = np.abs(b) < SMALL_VENSIM
    return np.where(small, x, a / np.where(small, 1.0, b))

def _zidz(a, b):
    small = np.abs(b) < SMALL_VENSIM
    return np.where(small, 0.0, a / np.where(small, 1.0, b))

def _quantum(a, b):
    small = b < SMALL_VENSIM
    bb = np.where(small, 1.0, b)
    return np.where(small, a, bb * np.trunc(a / bb))

def _modulo(x, m):
    return x - _quantum(x, m)

def _lookup(x, xs, ys, kind):
    x = np.asarray(x, dtype=float)
    if kind == "hold_backward":
        i = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 1)
        return ys[i]
    if kind == "look_forward":
        i = np.clip(np.searchsorted(xs, x, side="left"), 0, len(xs) - 1)
        return ys[i]
    y = np.interp(x, xs, ys)
    if kind == "extrapolate" and len(xs) > 1:
        lo = ys[0] + (ys[1] - ys[0]) / (xs[1] - xs[0]) * (x - xs[0])
        hi = ys[-1] + (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) * (x - xs[-1])
        y = np.where(x < xs[0], lo, np.where(x > xs[-1], hi, y))
    return y
'''

# Smooth stand-ins for the non-smooth operations, used for continuation only
# (Program(..., smooth=eps)); simulations keep the Vensim-exact forms.
_SMOOTH = {"min": "_s_min", "max": "_s_max", "abs": "_s_abs", ">": "_s_gt", ">=": "_s_gt",
           "<": "_s_lt", "<=": "_s_lt", "if": "_s_if", "and": "_s_and", "or": "_s_or",
           "not": "_s_not"}

_SMOOTH_SOURCE = '''
def _s_max(a, b, eps):
    return 0.5 * (a + b + np.sqrt((a - b) ** 2 + eps * eps))

def _s_min(a, b, eps):
    return 0.5 * (a + b - np.sqrt((a - b) ** 2 + eps * eps))

def _s_abs(x, eps):
    return np.sqrt(x * x + eps * eps)

def _s_gt(a, b, eps):
    return 0.5 * (1.0 + np.tanh((a - b) / eps))

def _s_lt(a, b, eps):
    return 0.5 * (1.0 + np.tanh((b - a) / eps))

def _s_if(c, a, b, eps):
    return b + c * (a - b)

def _s_and(a, b, eps):
    return a * b

def _s_or(a, b, eps):
    return a + b - a * b

def _s_not(a, eps):
    return 1.0 - a
'''

_ARITY = {"neg": 1, "not": 1, "abs": 1, "exp": 1, "ln": 1, "sqrt": 1, "sin": 1,
          "cos": 1, "tan": 1, "arcsin": 1, "arccos": 1, "arctan": 1, "sinh": 1,
          "cosh": 1, "tanh": 1, "integer": 1, "fmod": 2, "min": 2, "max": 2, "log": 2,
          "xidz": 3, "zidz": 2, "quantum": 2, "modulo": 2, "if": 3}


#: PySD structures neither the compiler nor the exporter handles, by the name a user knows.
UNSUPPORTED_STRUCTURES = {
    "DataStructure": "data", "GetDataStructure": "GET DATA",
    "GetLookupsStructure": "GET LOOKUPS", "GetConstantsStructure": "GET CONSTANTS",
    "AllocateAvailableStructure": "ALLOCATE AVAILABLE",
    "AllocateByPriorityStructure": "ALLOCATE BY PRIORITY",
    "SubscriptsReferenceStructure": "subscripts", "LookupsStructure": "a lookup table",
    "IntegStructure": "INTEG inside an expression",
}


# Chains longer than this (a sum of many terms) are compiled as a balanced tree, so that
# the generated code stays shallow whatever their length; shorter ones keep Vensim's
# left-to-right order, so that results equal PySD's to the last bit.
_CHAIN = 32
# Deepest expression compiled: Python's parser refuses code nested ~200 parentheses deep,
# and the generated code nests two per level.
MAX_DEPTH = 80


# Highest order of DELAY N / SMOOTH N: each stage is a hidden stock with its own code,
# about 40 KB to compile (measured: order 1e5 took 4 GB), so order 1e6 would need 40 GB.
MAX_ORDER = 1000
_BYTES_PER_STAGE = 40e3


def _balanced(items, op="+"):
    """A balanced tree combining ``items``, a list of (negated, node), with ``op``.

    For ``+`` a negated item is subtracted (``a - b`` and ``a + (-b)`` are the same
    float); the grouping differs from left to right only by rounding.
    """
    if len(items) == 1:
        neg, node = items[0]
        return ("op", "neg", node) if neg else node
    mid = len(items) // 2
    left, right = items[:mid], items[mid:]
    if op == "+" and len(right) == 1 and right[0][0]:
        return ("op", "-", _balanced(left, op), right[0][1])
    return ("op", op, _balanced(left, op), _balanced(right, op))


def _check_depth(node, source, where):
    """Refuse an expression nested deeper than :data:`MAX_DEPTH` (it could not be compiled)."""
    if node is None:
        return
    stack = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UnsupportedFeature(
                f"{source}: the equation of '{where}' nests more than {MAX_DEPTH} levels deep; "
                f"split it into auxiliaries")
        if n[0] == "op":
            stack.extend((a, depth + 1) for a in n[2:])
        elif n[0] == "lookup":
            stack.append((n[2], depth + 1))


def runtime_namespace() -> dict:
    """The globals the generated code runs in."""
    ns = {"np": np, "SMALL_VENSIM": SMALL_VENSIM}
    exec(_RUNTIME_SOURCE, ns)  # noqa: S102 - our own source
    exec(_SMOOTH_SOURCE, ns)  # noqa: S102
    from ._continuation import smooth_lookup

    ns["_s_lookup"] = smooth_lookup
    return ns


def node_refs(node) -> set[int]:
    """Variable ids a node reads."""
    out: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        if n[0] == "ref":
            out.add(n[1])
        elif n[0] == "op":
            stack.extend(n[2:])
        elif n[0] == "lookup":
            stack.append(n[2])
    return out


def node_uses_time(node) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if n[0] in ("time", "dt"):
            return True
        if n[0] == "op":
            stack.extend(n[2:])
        elif n[0] == "lookup":
            stack.append(n[2])
    return False


# --------------------------------------------------------------------------
# Lowering
# --------------------------------------------------------------------------


class _Lowerer:
    """Turn one AbstractModel into Vars and Lookups."""

    def __init__(self, abstract_model, source: str, text: str = ""):
        self.source = source
        self.text = text
        self.vars: list[Var] = []
        self.lookups: list[Lookup] = []
        self.lookup_ids: dict[tuple, int] = {}
        sections = list(abstract_model.sections)
        self.main = next(s for s in sections if s.type == "main")
        self.macros = {clean_name(s.name): s for s in sections if s.type == "macro"}
        self.n_macro_calls = 0
        self.structural: set[int] = set()  # constants that fix a delay's order
        self.delay_n_times: list = []

    # -- public -------------------------------------------------------------
    def run(self):
        scope = self._declare(self.main.elements, prefix="", hidden=False)
        self._define(self.main.elements, scope, prefix="")
        return self.vars, self.lookups, scope

    # -- helpers ------------------------------------------------------------
    def _new(self, **kw) -> Var:
        var = Var(vid=len(self.vars), **kw)
        self.vars.append(var)
        return var

    def _lines(self, *names) -> str:
        """`` (lines 3 and 7)``: where the model text defines any spelling of ``names``."""
        if not self.text:
            return ""
        keys = {clean_name(n) for n in names}
        found = []
        for i, line in enumerate(self.text.splitlines(), start=1):
            m = re.match(r'\s*("(?:[^"\\]|\\.)*"|[^=(:\[~|"]+?)\s*(?:=|\(|:|\[|$)', line)
            if m and m.group(1).strip() and clean_name(m.group(1)) in keys:
                found.append(str(i))
            elif re.match(r'\s*<(?:\w+:)?(?:aux|stock|flow|gf)\b[^>]*\bname="([^"]*)"', line):
                name = re.match(r'\s*<(?:\w+:)?(?:aux|stock|flow|gf)\b[^>]*\bname="([^"]*)"', line).group(1)
                if clean_name(name) in keys:
                    found.append(str(i))
        if len(found) < 2:
            return ""
        return f" (lines {', '.join(found[:-1])} and {found[-1]})"

    def _unsupported(self, construct: str, where: str):
        raise UnsupportedFeature(
            f"{self.source}: {construct} in '{where}' is not supported by aicircle's compiler")

    def _declare(self, elements, prefix: str, hidden: bool) -> dict:
        """Create a Var (or lookup slot) for every element; return clean name -> ('var', vid) | ('lookup', id)."""
        scope: dict = {}
        spelled: dict = {}
        for el in elements:
            name = prefix + el.name
            comps = el.components
            key = clean_name(el.name)
            if key in spelled or (len(comps) > 1 and not any(c.subscripts[0] for c in comps)):
                first = spelled.get(key, el.name)
                raise ModelReadError(
                    f"{self.source}: '{first}' and '{el.name}' are two definitions of one name "
                    f"(Vensim ignores case, spaces and underscores){self._lines(first, el.name)}")
            spelled[key] = el.name
            if len(comps) != 1 or any(c.subscripts[0] for c in comps):
                self._unsupported("subscripts", el.name)
            comp = comps[0]
            if comp.type == "Lookup":
                scope[clean_name(el.name)] = ("lookup", self._lookup_table(comp.ast, el.name))
                continue
            if comp.type == "Data" or type(comp).__name__ == "AbstractData":
                self._unsupported("data variables", el.name)
            is_control = type(el).__name__ == "AbstractControlElement"
            limits = tuple(el.limits) if el.limits else (None, None)
            var = self._new(name=name, kind="control" if is_control else "aux",
                            hidden=hidden, units=el.units or "", limits=limits,
                            doc=(el.documentation or "").strip(),
                            unchangeable=comp.subtype == "Unchangeable")
            scope[clean_name(el.name)] = ("var", var.vid)
        return scope

    def _define(self, elements, scope: dict, prefix: str):
        # numeric constants first, so that delay orders can be folded from them
        def is_number(el):
            ast = el.components[0].ast
            return isinstance(ast, (int, float)) and not isinstance(ast, bool)
        for el in sorted(elements, key=lambda el: not is_number(el)):
            entry = scope[clean_name(el.name)]
            comp = el.components[0]
            if entry[0] == "lookup":
                continue
            var = self.vars[entry[1]]
            ast = comp.ast
            cls = type(ast).__name__
            if cls == "IntegStructure":
                var.kind = "stock"
                var.deriv = self._lower(ast.flow, scope, el.name)
                var.init = self._lower(ast.initial, scope, el.name)
                var.non_negative = bool(ast.non_negative)
            elif var.kind != "control" and isinstance(ast, (int, float)) and not isinstance(ast, bool):
                var.kind = "const"
                var.expr = ("num", float(ast))
            elif cls == "CallStructure" and clean_name(ast.function.reference) == "active_initial":
                if len(ast.arguments) != 2:
                    self._unsupported("ACTIVE INITIAL with other than 2 arguments", el.name)
                var.expr = self._lower(ast.arguments[0], scope, el.name)
                var.init_expr = self._lower(ast.arguments[1], scope, el.name)
            else:
                var.expr = self._lower(ast, scope, el.name)

    def _lookup_table(self, ast, where: str) -> int:
        cls = type(ast).__name__
        if cls != "LookupsStructure":
            self._unsupported(f"lookup defined by {cls}", where)
        x = np.asarray(ast.x, dtype=float)
        y = np.asarray(ast.y, dtype=float)
        kind = str(ast.type)
        if kind not in ("interpolate", "extrapolate", "hold_backward", "look_forward"):
            self._unsupported(f"lookup type '{kind}'", where)
        order = np.argsort(x, kind="stable")
        self.lookups.append(Lookup(x=x[order], y=y[order], kind=kind))
        return len(self.lookups) - 1

    def _hidden(self, where: str, builtin: str, **kw) -> Var:
        return self._new(name=f"{where}#{builtin}{len(self.vars)}", hidden=True,
                         builtin=builtin, **kw)

    def _aux(self, node, where: str, builtin: str) -> tuple:
        """Bind a node to a hidden auxiliary (so it is computed once) and refer to it."""
        if node[0] in ("num", "ref", "time", "dt"):
            return node
        var = self._hidden(where, builtin, kind="aux", expr=node)
        return ("ref", var.vid)

    # -- the expression lowering --------------------------------------------
    def _lower(self, ast, scope: dict, where: str) -> tuple:  # noqa: C901 - one dispatch
        low = lambda a: self._lower(a, scope, where)  # noqa: E731
        if isinstance(ast, bool):
            return ("num", float(ast))
        if isinstance(ast, (int, float, np.floating, np.integer)):
            return ("num", float(ast))
        cls = type(ast).__name__
        if cls == "ArithmeticStructure":
            ops = [str(o) for o in ast.operators]
            args = [low(a) for a in ast.arguments]
            if len(args) == 1:
                if ops[0] == "negative":
                    return ("op", "neg", args[0])
                if ops[0] in ("positive", "+"):
                    return args[0]
                self._unsupported(f"unary operator '{ops[0]}'", where)
            if any(o not in ("+", "-", "*", "/", "^") for o in ops):
                self._unsupported(f"operator(s) {ops}", where)
            if all(o == "^" for o in ops):  # Python's ** (PySD) is right-associative
                node = args[-1]
                for op, a in zip(reversed(ops), reversed(args[:-1])):
                    if a[0] == "num" and a[1] < 0:
                        # PySD writes "-2**2", which Python (and Vensim) read as -(2**2)
                        node = ("op", "neg", ("op", op, ("num", -a[1]), node))
                    else:
                        node = ("op", op, a, node)
                return node
            if len(args) > _CHAIN and all(o in "+-" for o in ops):
                return _balanced([(False, args[0])] + [(o == "-", a) for o, a in zip(ops, args[1:])])
            if len(args) > _CHAIN and all(o == "*" for o in ops):
                return _balanced([(False, a) for a in args], "*")
            node = args[0]
            for op, a in zip(ops, args[1:]):
                node = ("op", op, node, a)
            return node
        if cls == "LogicStructure":
            ops = [str(o).strip(":").lower() for o in ast.operators]
            args = [low(a) for a in ast.arguments]
            if len(args) == 1:
                if ops[0] == "not":
                    return ("op", "not", args[0])
                self._unsupported(f"logical operator '{ops[0]}'", where)
            # PySD nests a flat chain from the right (``a OR b AND c`` is
            # ``a OR (b AND c)``), so AND binds tighter than OR, as in Vensim
            if len(args) > _CHAIN and len(set(ops)) == 1 and ops[0] in ("and", "or"):
                return _balanced([(False, a) for a in args], ops[0])
            node = args[-1]
            for op, a in zip(reversed(ops), reversed(args[:-1])):
                if op not in ("and", "or", "=", "<>", "<", "<=", ">", ">="):
                    self._unsupported(f"logical operator '{op}'", where)
                node = ("op", op, a, node)
            return node
        if cls == "ReferenceStructure":
            if ast.subscripts is not None:
                self._unsupported("subscripts", where)
            return self._reference(clean_name(ast.reference), scope, where)
        if cls == "CallStructure":
            return self._call(ast, scope, where)
        if cls == "GameStructure":
            return low(ast.expression)
        if cls == "InlineLookupsStructure":
            return ("lookup", self._lookup_table(ast.lookups, where), low(ast.argument))
        if cls == "InitialStructure":
            var = self._hidden(where, "INITIAL", kind="initial", init=low(ast.initial))
            return ("ref", var.vid)
        if cls == "SmoothStructure":
            return self._smooth(low(ast.input), low(ast.smooth_time), low(ast.initial),
                                self._order(ast.order, where, scope), where)
        if cls == "SmoothNStructure":
            return self._smooth(low(ast.input), low(ast.smooth_time), low(ast.initial),
                                self._order(ast.order, where, scope), where)
        if cls in ("DelayStructure", "DelayNStructure"):
            return self._delay(low(ast.input), low(ast.delay_time), low(ast.initial),
                               self._order(ast.order, where, scope), where,
                               per_stage_times=cls == "DelayNStructure")
        if cls == "DelayFixedStructure":
            return self._delay_fixed(low(ast.input), low(ast.delay_time), low(ast.initial), where)
        if cls == "TrendStructure":
            inp = self._aux(low(ast.input), where, "TREND_INPUT")
            avg_t = self._aux(low(ast.average_time), where, "TREND_TIME")
            init = ("op", "/", inp, ("op", "+", ("num", 1.0),
                                     ("op", "*", low(ast.initial_trend), avg_t)))
            state = self._hidden(where, "TREND", kind="stock", init=init)
            s = ("ref", state.vid)
            state.deriv = ("op", "/", ("op", "-", inp, s), avg_t)
            return ("op", "zidz", ("op", "-", inp, s), ("op", "*", avg_t, ("op", "abs", s)))
        if cls == "ForecastStructure":
            inp = self._aux(low(ast.input), where, "FORECAST_INPUT")
            avg_t = self._aux(low(ast.average_time), where, "FORECAST_TIME")
            init = ("op", "/", inp, ("op", "+", ("num", 1.0), low(ast.initial_trend)))
            state = self._hidden(where, "FORECAST", kind="stock", init=init)
            s = ("ref", state.vid)
            state.deriv = ("op", "/", ("op", "-", inp, s), avg_t)
            ratio = ("op", "zidz", ("op", "-", inp, s), ("op", "*", avg_t, s))
            return ("op", "*", inp, ("op", "+", ("num", 1.0),
                                     ("op", "*", ratio, low(ast.horizon))))
        if cls == "SampleIfTrueStructure":
            cond = self._aux(low(ast.condition), where, "SAMPLE_CONDITION")
            inp = self._aux(low(ast.input), where, "SAMPLE_INPUT")
            state = self._hidden(where, "SAMPLE_IF_TRUE", kind="discrete",
                                 init=low(ast.initial))
            out = ("op", "if", cond, inp, ("ref", state.vid))
            state.update = out
            return self._aux(out, where, "SAMPLE_VALUE")
        self._unsupported(UNSUPPORTED_STRUCTURES.get(cls, cls), where)

    def _order(self, order, where, scope=None):
        if not isinstance(order, (int, float)):
            node = self._lower(order, scope, where)
            refs = set()
            order = self._fold(node, refs)
            if order is None:
                self._unsupported("a delay/smooth order that is not a constant", where)
            self.structural |= refs
        if not math.isfinite(order) or order != int(order) or order < 1:
            self._unsupported(f"delay/smooth order {order}", where)
        if order > MAX_ORDER:
            raise InvalidInput(
                f"{self.source}: the delay/smooth in '{where}' has order {order:g}: {order:g} hidden "
                f"stocks, about {order * _BYTES_PER_STAGE / 2**30:.3g} GiB to compile; aicircle "
                f"accepts orders up to {MAX_ORDER}")
        return int(order)

    def _fold(self, node, refs):
        """Value at the initial time of a node made of constants, Time and functions, or None.

        Used for delay orders, which PySD (like Vensim) fixes at initialisation.
        """
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind in ("time", "dt"):
            key = "initial_time" if kind == "time" else "time_step"
            ref = self.main_scope.get(key)
            return self._fold(("ref", ref[1]), refs) if ref and ref[0] == "var" else None
        if kind == "ref":
            var = self.vars[node[1]]
            if var.kind == "const":
                refs.add(var.vid)
                return var.expr[1]
            if var.kind in ("aux", "control") and var.expr is not None:
                return self._fold(var.expr, refs)
            return None
        if kind == "op":
            vals = [self._fold(a, refs) for a in node[2:]]
            if any(v is None for v in vals):
                return None
            fn = _UFUNCS.get(node[1]) or _FUNCS[node[1]]
            return float(eval(f"{fn}(*vals)", runtime_namespace(), {"vals": vals}))  # noqa: S307
        return None

    def _smooth(self, inp, time, init, order, where):
        inp = self._aux(inp, where, "SMOOTH_INPUT")
        time = self._aux(time, where, "SMOOTH_TIME")
        init = self._aux(init, where, "SMOOTH_INIT")
        prev = inp
        state = None
        for _ in range(order):
            state = self._hidden(where, "SMOOTH", kind="stock", init=init)
            s = ("ref", state.vid)
            state.deriv = ("op", "/", ("op", "*", ("op", "-", prev, s), ("num", float(order))), time)
            prev = s
        return ("ref", state.vid)

    def _delay(self, inp, time, init, order, where, per_stage_times=False):
        """PySD's Delay and DelayN: stages hold material; each stage's outflow is stage / time.

        DELAY N remembers the delay time each stage was entered with (PySD's
        ``times`` pipeline, shifted once per step): discrete states, unless the
        delay time is a constant, when they collapse to it (see ``lower``).
        """
        inp = self._aux(inp, where, "DELAY_INPUT")
        time = self._aux(time, where, "DELAY_TIME")
        init = self._aux(init, where, "DELAY_INIT")
        stage_init = ("op", "*", init, time)
        if per_stage_times:
            pipeline = []
            for i in range(order):
                var = self._hidden(where, "DELAY_N_TIME", kind="discrete", init=time,
                                   update=time if i == 0 else ("ref", pipeline[-1].vid))
                pipeline.append(var)
            self.delay_n_times.append((time, pipeline))
            stage_times = [time] + [("ref", v.vid) for v in pipeline[:-1]]
            output_time = ("ref", pipeline[0].vid)
        else:
            stage_times = [time] * order
            output_time = time
        prev_out = inp
        state = None
        for i in range(order):
            state = self._hidden(where, "DELAY", kind="stock", init=stage_init)
            s = ("ref", state.vid)
            out = self._aux(("op", "/", s, stage_times[i]), where, "DELAY_OUTFLOW")
            state.deriv = ("op", "*", ("op", "-", prev_out, out), ("num", float(order)))
            prev_out = out
        return self._aux(("op", "/", ("ref", state.vid), output_time), where, "DELAY_OUTPUT")

    def is_constant(self, node, memo=None) -> bool:
        """Whether a node depends on nothing that changes during a run."""
        memo = {} if memo is None else memo
        kind = node[0]
        if kind == "num":
            return True
        if kind in ("time", "dt"):
            return False
        if kind == "ref":
            vid = node[1]
            if vid not in memo:
                memo[vid] = False  # cycles are not constant
                var = self.vars[vid]
                memo[vid] = var.kind == "const" or (
                    var.kind in ("aux", "control") and var.init_expr is None
                    and var.expr is not None and self.is_constant(var.expr, memo))
            return memo[vid]
        if kind == "lookup":
            return self.is_constant(node[2], memo)
        return all(self.is_constant(a, memo) for a in node[2:])

    def _delay_fixed(self, inp, time, init, where):
        inp = self._aux(inp, where, "DELAY_FIXED_INPUT")
        var = self._hidden(where, "DELAY_FIXED", kind="discrete", init=init, update=inp)
        var.delay_time = time  # resolved to a number of steps at initialisation
        return ("ref", var.vid)

    def _reference(self, name: str, scope: dict, where: str):
        if name == "time":
            return ("time",)
        if name in scope:
            entry = scope[name]
            if entry[0] == "var":
                return ("ref", entry[1])
            if entry[0] == "node":
                return entry[1]
            self._unsupported("a lookup used without an argument", where)
        if scope is not self.main_scope and name in self.main_scope:
            # macros see the model's control variables (e.g. TIME STEP)
            return self._reference(name, self.main_scope, where)
        raise ModelReadError(f"{self.source}: '{where}' refers to '{name}', which is not defined")

    def _call(self, ast, scope, where):
        fname = clean_name(ast.function.reference)
        args = ast.arguments
        if fname in scope and scope[fname][0] == "lookup":
            entry = scope[fname]
            if len(args) != 1:
                self._unsupported(f"lookup call with {len(args)} arguments", where)
            return ("lookup", entry[1], self._lower(args[0], scope, where))
        if fname in self.macros:
            return self._macro_call(fname, [self._lower(a, scope, where) for a in args], where)
        modes = {"lookup_extrapolate": "extrapolate", "lookup_forward": "look_forward",
                 "lookup_backward": "hold_backward"}
        if fname in modes and len(args) == 2 and type(args[0]).__name__ == "ReferenceStructure" \
                and scope.get(clean_name(args[0].reference), ("",))[0] == "lookup":
            # Vensim's LOOKUP EXTRAPOLATE/FORWARD/BACKWARD: the named table read another way
            table = self.lookups[scope[clean_name(args[0].reference)][1]]
            self.lookups.append(Lookup(x=table.x, y=table.y, kind=modes[fname]))
            return ("lookup", len(self.lookups) - 1, self._lower(args[1], scope, where))
        if fname.startswith("lookup_"):  # LOOKUP INVERT, LOOKUP AREA, ...: name the function
            self._unsupported(f"function {fname.upper().replace('_', ' ')}", where)
        low = [self._lower(a, scope, where) for a in args]
        simple = {"abs", "exp", "ln", "sqrt", "sin", "cos", "tan", "arcsin", "arccos",
                  "arctan", "sinh", "cosh", "tanh", "min", "max", "integer", "log",
                  "xidz", "zidz", "quantum", "modulo"}
        aliases = {"if_then_else": "if", "int": "integer", "power": "^"}
        if fname in simple or fname in aliases:
            op = aliases.get(fname, fname)
            arity = 2 if op == "^" else _ARITY[op]
            if len(low) != arity:
                self._unsupported(f"{fname.upper()} with {len(low)} arguments", where)
            return ("op", op, *low)
        if fname == "pi":
            return ("num", math.pi)
        t = ("time",)
        if fname == "step":  # value * (t + dt/2 > tstep)
            value, tstep = low
            return ("op", "*", value, ("op", ">", ("op", "+", t, ("op", "/", ("dt",), ("num", 2.0))), tstep))
        if fname in ("ramp", "xramp"):
            slope, start = low[0], low[1]
            final = ("op", "min", low[2], t) if len(low) == 3 else t
            return ("op", "*", ("op", "*", ("op", ">", ("op", "+", t, ("num", SMALL_VENSIM)), start), slope),
                    ("op", "-", final, start))
        if fname in ("pulse", "xpulse"):
            start = low[0]
            if fname == "pulse":
                width = low[1]
                magnitude = ("num", 1.0)
            else:
                width = ("op", "*", ("num", 0.5), ("dt",))
                magnitude = ("op", "/", low[1], ("dt",))
            width = self._aux(width, where, "PULSE_WIDTH")
            inside = ("op", "and", ("op", "<=", ("op", "-", start, ("num", SMALL_VENSIM)), t),
                      ("op", "<", t, ("op", "+", start, width)))
            return ("op", "if", inside, magnitude, ("num", 0.0))
        if fname in ("pulse_train", "xpulse_train"):
            if fname == "pulse_train":
                start, repeat, width, end = low
                magnitude = ("num", 1.0)
            else:
                start, repeat, mag = low
                width = ("op", "*", ("num", 0.5), ("dt",))
                magnitude = ("op", "/", mag, ("dt",))
                end = None
            repeat = self._aux(repeat, where, "PULSE_REPEAT")
            width = self._aux(width, where, "PULSE_WIDTH")
            phase = ("op", "fmod", ("op", "+", ("op", "-", t, start), ("num", SMALL_VENSIM)), repeat)
            started = ("op", "<=", start, t)
            if end is not None:
                started = ("op", "and", started, ("op", "<", t, end))
            on = ("op", "and", started, ("op", "<", phase, width))
            # PySD: a repeat time of 0 is a single pulse
            once = ("op", "and", ("op", "<=", ("op", "-", start, ("num", SMALL_VENSIM)), t),
                    ("op", "<", t, ("op", "+", start, width)))
            on = ("op", "if", ("op", "=", repeat, ("num", 0.0)), once, on)
            return ("op", "if", on, magnitude, ("num", 0.0))
        self._unsupported(f"function {fname.upper().replace('_', ' ')}", where)

    def _macro_call(self, fname, args, where):
        section = self.macros[fname]
        if section.returns:
            self._unsupported(f"macro {section.name} with extra outputs", where)
        if len(args) != len(section.params):
            self._unsupported(f"macro {section.name} called with {len(args)} arguments", where)
        self.n_macro_calls += 1
        prefix = f"{section.name}[{self.n_macro_calls}]."
        scope = self._declare(section.elements, prefix=prefix, hidden=True)
        for param, arg in zip(section.params, args):
            scope[clean_name(param)] = ("node", self._aux(arg, where, "MACRO_ARG"))
        self._define(section.elements, scope, prefix)
        ret = scope.get(clean_name(section.name))
        if ret is None or ret[0] != "var":
            self._unsupported(f"macro {section.name} without an output named after it", where)
        return ("ref", ret[1])


def lower(abstract_model, source: str, text: str = ""):
    """Lower a PySD AbstractModel.

    Returns
    -------
    vars, lookups, scope
        The variables, the lookup tables and the main section's names.
    structural : set of int
        Constants that fix the order of a delay or smooth (set at load).
    """
    low = _Lowerer(abstract_model, source, text)
    low.main_scope = {}
    # The main scope must exist before macros are expanded, for TIME STEP & co.
    scope = low._declare(low.main.elements, prefix="", hidden=False)
    low.main_scope = scope
    low._define(low.main.elements, scope, prefix="")
    for time, pipeline in low.delay_n_times:
        if low.is_constant(time):
            for var in pipeline:  # a constant delay time: every stage has it
                var.kind, var.expr, var.init, var.update = "aux", time, None, None
    for var in low.vars:
        for node in (var.expr, var.init_expr, var.deriv, var.init, var.update,
                     getattr(var, "delay_time", None)):
            _check_depth(node, source, var.name.split("#")[0])
    return low.vars, low.lookups, scope, low.structural


# --------------------------------------------------------------------------
# Dependency ordering
# --------------------------------------------------------------------------


def topo_order(nodes: Iterable[int], deps: dict[int, set[int]], names: dict[int, str],
               source: str) -> list[int]:
    """Order ``nodes`` so that every node comes after its dependencies (those among ``nodes``)."""
    nodes = list(nodes)
    wanted = set(nodes)
    order: list[int] = []
    state: dict[int, int] = {}
    for root in nodes:
        if root in state:
            continue
        stack = [(root, iter(sorted(deps.get(root, ()) & wanted)))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            for child in it:
                if state.get(child) == 1:
                    cycle = [names[n] for n, _ in stack]
                    i = cycle.index(names[child])
                    raise UnsupportedFeature(
                        f"{source}: circular definition: {' -> '.join(cycle[i:] + [names[child]])}")
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(sorted(deps.get(child, ()) & wanted))))
                    break
            else:
                stack.pop()
                state[node] = 2
                order.append(node)
    return order


# --------------------------------------------------------------------------
# Code generation
# --------------------------------------------------------------------------


class _Emitter:
    """Write the Python source of an expression tree, one line per operation.

    ``mode='plain'`` writes nested numpy expressions (used once per run, at
    initialisation); ``mode='buffered'`` writes one ufunc call per operation
    into a preallocated row (``out=``) so that the hot path allocates nothing.
    """

    def __init__(self, program: "Program", mode: str, name_of, lines: list[str]):
        self.p = program
        self.mode = mode
        self.name_of = name_of
        self.lines = lines

    def expr(self, node, out: str | None = None) -> str:
        kind = node[0]
        if kind == "num":
            return repr(node[1]) if math.isfinite(node[1]) else f"float('{node[1]}')"
        if kind == "ref":
            return self.name_of(node[1])
        if kind == "time":
            return "t"
        if kind == "dt":
            return "dt"
        if kind == "lookup":
            x = self.expr(node[2])
            table = self.p.lookups[node[1]]
            if self.p.smooth and table.kind == "interpolate" and len(table.x) > 1:
                return self._bind(f"_s_lookup({x}, LX{node[1]}, LY{node[1]}, {self.p.smooth!r})", out)
            return self._bind(f"_lookup({x}, LX{node[1]}, LY{node[1]}, {table.kind!r})", out)
        if kind == "op":
            if self.mode == "buffered":
                hoisted = self.p.hoisted.get(id(node))
                if hoisted is not None:
                    return hoisted
            name = node[1]
            args = [self.expr(a) for a in node[2:]]
            if self.p.smooth and name in _SMOOTH:
                return self._bind(f"{_SMOOTH[name]}({', '.join(args)}, {self.p.smooth!r})", out)
            if name in _UFUNCS:
                if self.mode == "buffered":
                    target = out or self.p.new_row()
                    self.lines.append(f"{_UFUNCS[name]}({', '.join(args)}, out={target})")
                    return target
                return self._bind(f"{_UFUNCS[name]}({', '.join(args)})", out)
            return self._bind(f"{_FUNCS[name]}({', '.join(args)})", out)
        raise AssertionError(kind)

    def _bind(self, code: str, out: str | None) -> str:
        if out is not None:
            self.lines.append(f"np.copyto({out}, {code})")
            return out
        if self.mode == "plain":
            return f"({code})"
        tmp = self.p.new_temp()
        self.lines.append(f"{tmp} = {code}")
        return tmp


class Program:
    """Generated code for one model, one set of overridden names and one set of outputs.

    Parameters
    ----------
    vars, lookups : the lowered model
    params : list of int
        Variable ids whose value is read from the parameter vector ``P``
        (every constant, plus any auxiliary the run overrides).
    outputs : list of int
        Variable ids whose values ``rhs`` returns, in that order.
    """

    def __init__(self, vars_, lookups, params, outputs, source, controls: dict, smooth=None):
        self.smooth = float(smooth) if smooth else None
        self.control_vids = dict(controls)
        controls = list(self.control_vids.values())
        self.vars = vars_
        self.lookups = lookups
        self.source = source
        self.params = list(params)
        pset = set(self.params)
        self.outputs = list(outputs)
        names = {v.vid: v.name for v in vars_}
        kind = {v.vid: ("const" if v.vid in pset else v.kind) for v in vars_}
        self.kind = kind
        self.stocks = [v.vid for v in vars_ if kind[v.vid] == "stock"]
        self.discrete = [v.vid for v in vars_ if kind[v.vid] == "discrete"]
        self.states = self.stocks + self.discrete
        self.state_index = {vid: i for i, vid in enumerate(self.states)}
        self.non_negative = [i for i, vid in enumerate(self.stocks) if vars_[vid].non_negative]
        self.rows = 0
        self.temps = 0
        self.hoisted: dict[int, str] = {}

        # ---- run-phase classification ---------------------------------
        run_deps = {}
        for v in vars_:
            k = kind[v.vid]
            if k in ("aux", "control"):
                run_deps[v.vid] = node_refs(v.expr)
            elif k == "stock":
                run_deps[v.vid] = node_refs(v.deriv)
            elif k == "discrete":
                run_deps[v.vid] = node_refs(v.update)
            else:
                run_deps[v.vid] = set()
        # what the run needs: outputs, derivatives, updates, control vars
        needed_roots = set(self.outputs) | set(self.states) | set(controls)
        needed = set()
        stack = list(needed_roots)
        while stack:
            n = stack.pop()
            if n in needed:
                continue
            needed.add(n)
            stack.extend(run_deps[n])
        static = set()
        for vid in topo_order(sorted(needed), {k: (d if kind[k] in ("aux", "control") else set())
                                               for k, d in run_deps.items()}, names, source):
            k = kind[vid]
            if k in ("const", "initial"):
                static.add(vid)
            elif k in ("aux", "control") and not node_uses_time(vars_[vid].expr) \
                    and run_deps[vid] <= static:
                static.add(vid)
        self.static = static
        dynamic = [vid for vid in needed if kind[vid] in ("aux", "control") and vid not in static]
        self.dynamic_order = topo_order(sorted(dynamic), run_deps, names, source)

        # ---- init phase: everything, in initialisation order ----------
        init_deps = {}
        for v in vars_:
            k = kind[v.vid]
            if k in ("aux", "control"):
                init_deps[v.vid] = node_refs(v.init_expr if v.init_expr is not None else v.expr)
            elif k in ("stock", "discrete", "initial"):
                init_deps[v.vid] = node_refs(v.init)
                if getattr(v, "delay_time", None) is not None:
                    init_deps[v.vid] |= node_refs(v.delay_time)
            else:
                init_deps[v.vid] = set()
        # Statics are computed in phase B from their run expressions; phase A
        # computes what the initial state and the INITIAL values need.
        init_needed = set()
        stack = list(self.states) + [vid for vid in static if kind[vid] == "initial"]
        while stack:
            n = stack.pop()
            if n in init_needed:
                continue
            init_needed.add(n)
            stack.extend(init_deps[n])
        self.init_order = topo_order(sorted(init_needed), init_deps, names, source)
        self.static_order = topo_order(sorted(static), run_deps, names, source)
        self._generate()

    # -- helpers used by the emitter --
    def new_row(self) -> str:
        self.rows += 1
        return f"_b{self.rows - 1}"

    def new_temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps - 1}"

    def _hoist_statics(self, node, hoisted_lines: list, emitter_b):
        """Find maximal subtrees of run-phase expressions that depend on no dynamic value."""
        def is_static(n):
            k = n[0]
            if k in ("time", "dt"):
                return False
            if k == "num":
                return True
            if k == "ref":
                return n[1] in self.static
            if k == "lookup":
                return is_static(n[2])
            return all(is_static(a) for a in n[2:])

        def walk(n):
            if n[0] == "op" or n[0] == "lookup":
                if is_static(n):
                    name = f"h{len(self.hoisted)}"
                    hoisted_lines.append(f"{name} = {emitter_b.expr(n)}")
                    self.hoisted[id(n)] = name
                    return
                for a in (n[2:] if n[0] == "op" else (n[2],)):
                    walk(a)
        walk(node)

    def _generate(self):
        vars_ = self.vars
        kind = self.kind
        # ---------------- init ----------------
        a_lines: list[str] = []
        em_a = _Emitter(self, "plain", lambda vid: f"a{vid}", a_lines)
        for vid in self.init_order:
            v = vars_[vid]
            k = kind[vid]
            if k == "const":
                a_lines.append(f"a{vid} = P[{self.params.index(vid)}]")
            elif k in ("aux", "control"):
                a_lines.append(f"a{vid} = {em_a.expr(v.init_expr if v.init_expr is not None else v.expr)}")
            else:  # stock, discrete, initial
                a_lines.append(f"a{vid} = {em_a.expr(v.init)}")
        b_lines: list[str] = []
        em_b = _Emitter(self, "plain", lambda vid: f"v{vid}", b_lines)
        for vid in self.static_order:
            v = vars_[vid]
            k = kind[vid]
            if k == "const":
                b_lines.append(f"v{vid} = P[{self.params.index(vid)}]")
            elif k == "initial":
                b_lines.append(f"v{vid} = a{vid}")
            else:
                b_lines.append(f"v{vid} = {em_b.expr(v.expr)}")
        # hoist static subexpressions of dynamic expressions into phase B
        dyn_nodes = [vars_[vid].expr for vid in self.dynamic_order]
        dyn_nodes += [vars_[vid].deriv for vid in self.stocks]
        dyn_nodes += [vars_[vid].update for vid in self.discrete]
        for n in dyn_nodes:
            self._hoist_statics(n, b_lines, em_b)
        const_names = [f"v{vid}" for vid in self.static_order] + list(self.hoisted.values())
        self.n_const = len(const_names)
        state_vals = ", ".join(f"a{vid}" for vid in self.states)
        self.delay_fixed = [i for i, vid in enumerate(self.discrete)
                            if getattr(vars_[vid], "delay_time", None) is not None]
        delay_times = ", ".join(em_a.expr(vars_[self.discrete[i]].delay_time) for i in self.delay_fixed)
        init_src = ["def init(P, t, dt):"]
        init_src += ["    " + ln for ln in a_lines + b_lines]
        init_src.append(f"    return ({', '.join(const_names)}{',' if const_names else ''}), "
                        f"[{state_vals}], [{delay_times}]")
        # ---------------- rhs ----------------
        r_lines: list[str] = []
        em_r = _Emitter(self, "buffered", lambda vid: f"v{vid}", r_lines)
        for vid in self.dynamic_order:
            r_lines.append(f"v{vid} = {em_r.expr(vars_[vid].expr)}")
        for i, vid in enumerate(self.stocks):
            res = em_r.expr(vars_[vid].deriv, out=f"_d{i}")
            if res != f"_d{i}":
                r_lines.append(f"np.copyto(_d{i}, {res})")
        nexts = []
        for vid in self.discrete:
            nexts.append(em_r.expr(vars_[vid].update))
        outs = [f"v{vid}" for vid in self.outputs]
        rhs_src = ["def rhs(t, dt, Y, C, B):"]
        if const_names:
            rhs_src.append(f"    {', '.join(const_names)}, = C")
        for vid in self.states:
            rhs_src.append(f"    v{vid} = Y[{self.state_index[vid]}]")
        bufs = [f"_d{i}" for i in range(len(self.stocks))] + [f"_b{i}" for i in range(self.rows)]
        if bufs:
            rhs_src.append(f"    {', '.join(bufs)}, = B")
        rhs_src += ["    " + ln for ln in r_lines]
        rhs_src.append(f"    return [{', '.join(nexts)}], ({', '.join(outs)}{',' if outs else ''})")
        self.n_buffers = len(bufs)
        ctrl_src = self._controls_source()
        self.source_code = ("\n".join(init_src) + "\n\n" + "\n".join(rhs_src) + "\n\n"
                            + "\n".join(ctrl_src) + "\n")
        ns = runtime_namespace()
        for i, lk in enumerate(self.lookups):
            ns[f"LX{i}"] = lk.x
            ns[f"LY{i}"] = lk.y
        try:
            exec(compile(self.source_code, f"<aicircle:{self.source}>", "exec"), ns)  # noqa: S102
        except SyntaxError as err:  # pragma: no cover - a compiler bug, not a user error
            raise RuntimeError(f"aicircle generated invalid code for {self.source}: {err}") from err
        self._init = ns["init"]
        self._rhs = ns["rhs"]
        self._controls = ns["controls"]

    def _controls_source(self):
        """A function of (P, t) giving the four time settings, in plain numpy."""
        vars_ = self.vars
        deps = {}
        stack = list(self.control_vids.values())
        closure = set()
        while stack:
            vid = stack.pop()
            if vid in closure:
                continue
            closure.add(vid)
            k = self.kind[vid]
            if k in ("stock", "discrete", "initial"):
                raise UnsupportedFeature(
                    f"{self.source}: the time settings depend on '{vars_[vid].name}', which is "
                    f"not a constant or a function of Time")
            deps[vid] = node_refs(vars_[vid].expr) if k in ("aux", "control") else set()
            stack.extend(deps[vid])
        names = {v.vid: v.name for v in vars_}
        order = topo_order(sorted(closure), deps, names, self.source)
        self.dynamic_controls = any(
            self.kind[vid] in ("aux", "control") and node_uses_time(vars_[vid].expr) for vid in closure)
        lines: list[str] = []
        em = _Emitter(self, "plain", lambda vid: f"c{vid}", lines)
        for vid in order:
            if self.kind[vid] == "const":
                lines.append(f"c{vid} = P[{self.params.index(vid)}]")
            else:
                lines.append(f"c{vid} = {em.expr(vars_[vid].expr)}")
        ret = ", ".join(f"{key!r}: c{vid}" for key, vid in self.control_vids.items())
        return ["def controls(P, t, dt=float('nan')):"] + ["    " + ln for ln in lines] + \
            [f"    return {{{ret}}}"]

    def controls(self, P, t):
        """The time settings at time ``t``: dict initial_time, final_time, time_step, saveper."""
        return self._controls(P, t)

    # -- the two entry points --
    def initialise(self, P, t0, dt, n):
        """Run constants and initial state, shape (n_states, n)."""
        consts, states, delay_times = self._init(P, t0, dt)
        y0 = np.empty((len(self.states), n))
        for i, s in enumerate(states):
            y0[i] = s
        return consts, y0, delay_times

    def buffers(self, n):
        """Preallocated work rows for ``rhs`` with ``n`` columns: (derivatives, all rows)."""
        work = np.empty((self.n_buffers, n))
        return work[: len(self.stocks)], tuple(work)

    def rhs(self, t, dt, Y, C, B):
        return self._rhs(t, dt, Y, C, B)

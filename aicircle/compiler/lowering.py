"""Lowering: PySD's AbstractModel to the compiler's IR (:mod:`aicircle.compiler.ir`).

Every element becomes a :class:`~aicircle.compiler.ir.Var` over numbered
variables. Builtins that hide state (SMOOTH, DELAY, TREND, ...) become explicit
hidden variables with their own derivative and initial expressions; macro
calls are inlined, each call with its own copy of the macro's variables.
What the compiler cannot compile raises ``UnsupportedFeature`` naming the
construct and the variable.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..errors import InvalidInput, ModelReadError, UnsupportedFeature
from ..runtime import LOOKUP_KINDS, SMALL_VENSIM
from . import subscripts as sub
from .external import DATA_METHODS, Reader
from .ir import ARITY, Lookup, Var, check_depth, clean_name, evaluate

# Vensim's array functions over the dimensions marked "!": the numpy reduction of each.
_REDUCTIONS = {"sum": "sum", "prod": "prod", "vmin": "min", "vmax": "max"}
# Vensim's random functions (PySD has these four), by their number of arguments.
_RANDOM = {"random_0_1": 0, "random_uniform": 3, "random_normal": 5, "random_exponential": 5}

#: PySD structures the exporter (and, inside an expression, the compiler) cannot handle, by the name a
#: user knows. The compiler reads GET DATA, GET CONSTANTS and GET LOOKUPS as a variable's whole equation.
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

# Highest order of DELAY N / SMOOTH N: each stage is a hidden stock with its own code,
# about 40 KB to compile (measured: order 1e5 took 4 GB), so order 1e6 would need 40 GB.
MAX_ORDER = 1000
_BYTES_PER_STAGE = 40e3

# A line of a model file that defines a name: Vensim's "name = ..." (or "name(", "name:",
# "name[") and XMILE's <aux|stock|flow|gf name="...">.
_VENSIM_DEFINITION = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[^=(:\[~|"]+?)\s*(?:=|\(|:|\[|$)')
_XMILE_DEFINITION = re.compile(r'\s*<(?:\w+:)?(?:aux|stock|flow|gf)\b[^>]*\bname="([^"]*)"')
# Where the diagram starts (Vensim's sketch, XMILE's views): names there define nothing.
_DIAGRAM = re.compile(r"\s*(?:\\\\\\---///|<(?:\w+:)?views\b)")


def lower(abstract_model, source: str, text: str = "", data_dirs=()):
    """Lower a PySD AbstractModel.

    Parameters
    ----------
    abstract_model : pysd.translators.structures.abstract_model.AbstractModel
    source : str
        The model file, as error messages name it.
    text : str
        The model file's text, to name the lines of a name defined twice.
    data_dirs : sequence of path
        Folders besides the model's own that its data files (GET XLS/DIRECT ...) may lie in.

    Returns
    -------
    vars, lookups, scope
        The variables, the lookup tables and the main section's names.
    structural : set of int
        Constants that fix the order of a delay or smooth (set at load).
    """
    return _Lowerer(abstract_model, source, text, data_dirs).run()


def _assemble(size: int, parts):
    """The node of a variable of ``size`` elements computed by ``parts``: (positions, node) each."""
    if len(parts) == 1 and np.array_equal(parts[0][0], np.arange(size)):
        return ("fn", "rows", (size,), parts[0][1])
    positions = tuple(p for p, _ in parts)
    return ("fn", "assemble", (size, positions), *(node for _, node in parts))


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


class _Lowerer:
    """Turn one AbstractModel into Vars and Lookups."""

    def __init__(self, abstract_model, source: str, text: str = "", data_dirs=()):
        self.source = source
        self.text = text
        self.vars: list[Var] = []
        self.lookups: list[Lookup] = []
        sections = list(abstract_model.sections)
        self.main = next(s for s in sections if s.type == "main")
        self.macros = {clean_name(s.name): s for s in sections if s.type == "macro"}
        self.n_macro_calls = 0
        self.structural: set[int] = set()  # constants that fix a delay's order
        self.delay_n_times: list = []
        self.main_scope: dict = {}
        self.subs = sub.Subscripts(self.main.subscripts, source)
        self.grid: sub.Grid | None = None  # the elements the equation being lowered computes
        self.external = Reader(source, Path(source).parent, data_dirs)  # GET XLS/DIRECT ..., read now, once

    def run(self):
        """Lower the main section: ``(vars, lookups, scope, structural)``, see :func:`lower`."""
        # The main scope must exist before macros are expanded, for TIME STEP & co.
        self.main_scope = self._declare(self.main.elements, prefix="", hidden=False)
        self._define(self.main.elements, self.main_scope, prefix="")
        for time, pipeline in self.delay_n_times:
            if self.is_constant(time):
                for var in pipeline:  # a constant delay time: every stage has it
                    var.kind, var.expr, var.init, var.update = "aux", time, None, None
        for var in self.vars:
            for node in var.nodes():
                check_depth(node, self.source, var.name.split("#")[0])
        return self.vars, self.lookups, self.main_scope, self.structural

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
            if _DIAGRAM.match(line):
                break
            matches = (_VENSIM_DEFINITION.match(line), _XMILE_DEFINITION.match(line))
            if any(m and m.group(1).strip() and clean_name(m.group(1)) in keys for m in matches):
                found.append(str(i))
        if len(found) < 2:
            return ""
        return f" (lines {', '.join(found[:-1])} and {found[-1]})"

    def _unsupported(self, construct: str, where: str):
        raise UnsupportedFeature(
            f"{self.source}: {construct} in '{where}' is not supported by aicircle's compiler")

    def _declare(self, elements, prefix: str, hidden: bool) -> dict:
        """Create a Var (or lookup slot) for every element.

        Returns clean name -> ``('var', vid)`` or ``('lookup', table_id)``.
        """
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
                if prefix:
                    self._unsupported("subscripts inside a macro", el.name)
                scope[key] = self._declare_subscripted(el, name, hidden)
                continue
            comp = comps[0]
            if comp.type == "Lookup":
                scope[clean_name(el.name)] = ("lookup", self._lookup_table(comp.ast, el.name))
                continue
            if (comp.type == "Data" or type(comp).__name__ == "AbstractData") and \
                    type(comp.ast).__name__ != "GetDataStructure":
                self._unsupported("data variables", el.name)  # Vensim's := read from a run's data file
            is_control = type(el).__name__ == "AbstractControlElement"
            limits = tuple(el.limits) if el.limits else (None, None)
            var = self._new(name=name, kind="control" if is_control else "aux",
                            hidden=hidden, units=el.units or "", limits=limits,
                            doc=(el.documentation or "").strip(),
                            unchangeable=comp.subtype == "Unchangeable")
            scope[clean_name(el.name)] = ("var", var.vid)
        return scope

    def _declare_subscripted(self, el, name: str, hidden: bool):
        """The scope entry of a subscripted element: a Var with ``dims``, or per-element lookups."""
        comps = el.components
        dims = self.subs.final_dims([list(c.subscripts[0]) for c in comps], el.name)
        var_dims = [(d, list(self.subs.ranges[d])) for d in dims]
        size = sub.size_of(var_dims)
        if all(c.type == "Lookup" for c in comps):
            tables = np.full(size, -1, dtype=np.intp)
            for c in comps:
                grid = sub.component_grid(self.subs, var_dims, c.subscripts[0], c.subscripts[1], el.name)
                if type(c.ast).__name__ == "GetLookupsStructure":  # one table per element
                    coords = self._coords(var_dims, c.subscripts, el.name)
                    xs, ys = self.external.series(c.ast, coords, el.name)
                    for j, position in enumerate(grid.positions):
                        self.lookups.append(Lookup(x=xs, y=ys[:, j].copy(), kind="interpolate"))
                        tables[position] = len(self.lookups) - 1
                else:
                    tables[grid.positions] = self._lookup_table(c.ast, el.name)
            return ("lookups", var_dims, tables)
        for c in comps:
            if (c.type == "Data" or type(c).__name__ == "AbstractData") and \
                    type(c.ast).__name__ != "GetDataStructure":
                self._unsupported("data variables", el.name)
        limits = tuple(el.limits) if el.limits else (None, None)
        var = self._new(name=name, kind="aux", hidden=hidden, units=el.units or "", limits=limits,
                        doc=(el.documentation or "").strip(),
                        unchangeable=all(c.subtype == "Unchangeable" for c in comps),
                        size=size, dims=var_dims)
        return ("var", var.vid)

    def _define_subscripted(self, el, var):
        """Lower every component of a subscripted element and assemble them into ``var``."""
        size = var.size
        parts = []
        for comp in el.components:
            grid = sub.component_grid(self.subs, var.dims, comp.subscripts[0], comp.subscripts[1], el.name)
            ast = comp.ast
            cls = type(ast).__name__
            self.grid = grid
            try:
                if isinstance(ast, (int, float, np.ndarray, np.number)) and not isinstance(ast, bool):
                    values = np.asarray(ast, dtype=float).ravel()
                    if values.size not in (1, grid.size):
                        self._unsupported(f"{values.size} values for {grid.size} elements", el.name)
                    parts.append(("num", grid.positions, np.broadcast_to(values, (grid.size,))))
                elif cls == "GetConstantsStructure":
                    coords = self._coords(var.dims, comp.subscripts, el.name)
                    parts.append(("num", grid.positions, self.external.constants(ast, coords, el.name)))
                elif cls == "GetDataStructure":
                    coords = self._coords(var.dims, comp.subscripts, el.name)
                    parts.append(("aux", grid.positions, self._data(ast, coords, comp, el.name)))
                elif cls == "IntegStructure":
                    parts.append(("stock", grid.positions, self._lower(ast.flow, self.main_scope, el.name),
                                  self._lower(ast.initial, self.main_scope, el.name), ast.non_negative))
                elif cls == "CallStructure" and clean_name(ast.function.reference) == "active_initial":
                    parts.append(("active", grid.positions,
                                  self._lower(ast.arguments[0], self.main_scope, el.name),
                                  self._lower(ast.arguments[1], self.main_scope, el.name)))
                else:
                    parts.append(("aux", grid.positions, self._lower(ast, self.main_scope, el.name)))
            finally:
                self.grid = None
        kinds = {p[0] for p in parts}
        var.undefined = tuple(int(j) for j in np.setdiff1d(np.arange(size),
                                                           np.concatenate([p[1] for p in parts])))
        if kinds == {"num"}:
            values = np.full(size, np.nan)
            for _, pos, vals in parts:
                values[pos] = vals
            var.kind = "const"
            var.expr = ("num", values.reshape(size, 1))
        elif kinds == {"stock"}:
            var.kind = "stock"
            var.deriv = _assemble(size, [(p[1], p[2]) for p in parts])
            var.init = _assemble(size, [(p[1], p[3]) for p in parts])
            var.non_negative = any(bool(p[4]) for p in parts)
        elif kinds == {"active"}:
            var.expr = _assemble(size, [(p[1], p[2]) for p in parts])
            var.init_expr = _assemble(size, [(p[1], p[3]) for p in parts])
        elif kinds <= {"num", "aux"}:
            var.expr = _assemble(size, [(p[1], ("arr", p[2].reshape(-1, 1)) if p[0] == "num" else p[2])
                                        for p in parts])
        else:
            self._unsupported("a variable defined partly as a stock and partly otherwise", el.name)

    def _define(self, elements, scope: dict, prefix: str):
        # numeric constants first, so that delay orders can be folded from them
        def is_number(el):
            ast = el.components[0].ast
            return isinstance(ast, (int, float)) and not isinstance(ast, bool)
        for el in sorted(elements, key=lambda el: not is_number(el)):
            entry = scope[clean_name(el.name)]
            comp = el.components[0]
            if entry[0] in ("lookup", "lookups"):
                continue
            var = self.vars[entry[1]]
            if var.dims is not None:
                self._define_subscripted(el, var)
                continue
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
            elif cls == "GetConstantsStructure" and var.kind != "control":
                var.kind = "const"
                var.expr = ("num", float(self.external.constants(ast, {}, el.name)[0]))
            elif cls == "GetDataStructure":
                var.expr = self._data(ast, {}, comp, el.name)
            elif cls == "CallStructure" and clean_name(ast.function.reference) == "active_initial":
                if len(ast.arguments) != 2:
                    self._unsupported("ACTIVE INITIAL with other than 2 arguments", el.name)
                var.expr = self._lower(ast.arguments[0], scope, el.name)
                var.init_expr = self._lower(ast.arguments[1], scope, el.name)
            else:
                var.expr = self._lower(ast, scope, el.name)

    def _lookup_table(self, ast, where: str) -> int:
        cls = type(ast).__name__
        if cls == "GetLookupsStructure":
            xs, ys = self.external.series(ast, {}, where)
            self.lookups.append(Lookup(x=xs, y=ys, kind="interpolate"))
            return len(self.lookups) - 1
        if cls != "LookupsStructure":
            self._unsupported(f"lookup defined by {cls}", where)
        x = np.asarray(ast.x, dtype=float)
        y = np.asarray(ast.y, dtype=float)
        kind = str(ast.type)
        if kind not in LOOKUP_KINDS:
            self._unsupported(f"lookup type '{kind}'", where)
        order = np.argsort(x, kind="stable")
        self.lookups.append(Lookup(x=x[order], y=y[order], kind=kind))
        return len(self.lookups) - 1

    def _coords(self, var_dims, subscripts, where: str) -> dict:
        """A GET component's elements as PySD's readers take them: ``{dimension: [elements]}``.

        The dimensions are the variable's, in order; the elements those of the
        component's left-hand side (its grid, see :func:`subscripts.component_grid`).
        """
        lhs, excepts = subscripts
        if excepts:
            self._unsupported("GET XLS/DIRECT with :EXCEPT:", where)
        elements = list(self.subs.manager.make_coord_dict(list(lhs)).values())
        return {dim: list(elems) for (dim, _), elems in zip(var_dims, elements)}

    def _data(self, ast, coords: dict, comp, where: str) -> tuple:
        """GET DATA: the series read now, interpolated at each time by the variable's method."""
        method = getattr(comp, "keyword", None) or "interpolate"
        if method not in DATA_METHODS:
            self._unsupported(f"data method '{method}'", where)
        xs, ys = self.external.series(ast, coords, where, method)
        return ("fn", "data_at", (xs, ys, method), ("time",))

    def _hidden(self, where: str, builtin: str, **kw) -> Var:
        size = None
        if self.grid is not None and self.grid.shape:
            if len(self.grid.shape) > 1:
                self._unsupported(f"{builtin.split('_')[0]} inside an array function", where)
            size = self.grid.shape[0]
        return self._new(name=f"{where}#{builtin}{len(self.vars)}", hidden=True,
                         builtin=builtin, size=size, **kw)

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
                return self._subscripted_reference(clean_name(ast.reference), list(ast.subscripts.subscripts),
                                                   scope, where)
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
            if var.size is not None:
                return None
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
            return float(evaluate(node[1], *vals))
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
        delay time is a constant, when they collapse to it (see ``run``).
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

    def _subscripted_reference(self, name: str, ref_subs: list, scope: dict, where: str):
        """``name[ref_subs]`` read at every element of the current grid: a gather."""
        entry = scope.get(name) or self.main_scope.get(name)
        if entry is None or entry[0] != "var":
            if entry is not None and entry[0] == "lookups":
                self._unsupported("a lookup used without an argument", where)
            raise ModelReadError(f"{self.source}: '{where}' refers to '{name}', which is not defined")
        var = self.vars[entry[1]]
        if var.dims is None:
            self._unsupported(f"subscripts on '{var.name}', which has none,", where)
        grid = self.grid or sub.Grid((), [], {})
        idx = sub.index(self.subs, grid, var.dims, ref_subs, where)
        if grid.shape == (var.size,) and np.array_equal(idx, np.arange(var.size)):
            return ("ref", var.vid)
        return ("gather", var.vid, idx)

    def _dimension_value(self, name: str, where: str):
        """A dimension used as a value: each element's position (from 1) in its main range."""
        dim = self.subs.by_clean[name]
        grid = self.grid or sub.Grid((), [], {})
        elements = sub.resolve(self.subs, grid, dim, where)
        main = self.subs.ranges[self.subs.main_range(dim)]
        pos = {e: i + 1.0 for i, e in enumerate(main)}
        values = np.vectorize(pos.__getitem__, otypes=[float])(elements)
        if values.ndim == 0:
            return ("num", float(values))
        return ("arr", values[..., None])

    def _bang_dims(self, ast) -> list:
        """The dimensions marked ``!`` in the references of ``ast``, in order of appearance."""
        found: dict = {}
        stack = list(ast) if isinstance(ast, (list, tuple)) else [ast]
        while stack:
            a = stack.pop(0)
            cls = type(a).__name__
            if cls == "SubscriptsReferenceStructure":
                for s in a.subscripts:
                    if s.endswith("!") and s[:-1] not in found:
                        found[s[:-1]] = list(self.subs.ranges[s[:-1]])
            if hasattr(a, "__dataclass_fields__"):
                for f in a.__dataclass_fields__:
                    v = getattr(a, f)
                    stack.extend(v if isinstance(v, (list, tuple)) else [v])
        return list(found.items())

    def _over_bang(self, args, scope, where, fname):
        """Lower ``args`` on the current grid extended by their ``!`` dimensions: (nodes, axes)."""
        dims = self._bang_dims(list(args))
        if not dims:
            self._unsupported(f"{fname.upper().replace('_', ' ')} without a dimension marked '!'", where)
        outer = self.grid or sub.Grid((), [], {})
        self.grid = outer.extend(dims)
        try:
            nodes = [self._lower(a, scope, where) for a in args]
        finally:
            self.grid = outer if outer.shape or outer.lhs else None
        axes = tuple(range(len(outer.shape), len(outer.shape) + len(dims)))
        return nodes, axes

    def _array_function(self, fname, args, scope, where):
        """SUM, PROD, VMIN, VMAX, VECTOR SELECT, ELMCOUNT and the VECTOR sort functions."""
        if fname in _REDUCTIONS:
            if len(args) != 1:
                self._unsupported(f"{fname.upper()} with {len(args)} arguments", where)
            (node,), axes = self._over_bang(args, scope, where, fname)
            return ("fn", "reduce", (_REDUCTIONS[fname], axes), node)
        if fname == "elmcount":
            ref = args[0]
            dim = self.subs.by_clean.get(clean_name(getattr(ref, "reference", "")))
            if dim is None:
                self._unsupported("ELMCOUNT of something that is not a subscript range", where)
            return ("num", float(len(self.subs.ranges[dim])))
        if fname == "vector_select":
            if len(args) != 5:
                self._unsupported(f"VECTOR SELECT with {len(args)} arguments", where)
            (selection, expression), axes = self._over_bang(args[:2], scope, where, fname)
            missing, action, errors = (self._lower(a, scope, where) for a in args[2:])
            return ("fn", "vector_select", (axes,), selection, expression, missing, action, errors)
        if fname in ("vector_sort_order", "vector_rank", "vector_reorder"):
            return self._vector_sort(fname, args, scope, where)
        self._unsupported(f"function {fname.upper().replace('_', ' ')}", where)

    def _vector_sort(self, fname, args, scope, where):
        """VECTOR SORT ORDER / RANK / REORDER along the last subscript of the left-hand side."""
        grid = self.grid
        if grid is None or not grid.shape or len(grid.shape) != 1 or len(args) != 2:
            self._unsupported(f"function {fname.upper().replace('_', ' ')} here", where)
        shape = tuple(len(set(a)) for _, a in grid.lhs)
        if int(np.prod(shape)) != grid.size:
            self._unsupported(f"function {fname.upper().replace('_', ' ')} over part of a range", where)
        nodes = [self._lower(a, scope, where) for a in args]
        if fname != "vector_reorder":
            direction = self._fold(nodes[1], set())
            if direction is None:
                self._unsupported(f"{fname.upper().replace('_', ' ')} with a direction that changes", where)
            return ("fn", fname, (shape, float(direction)), nodes[0])
        return ("fn", fname, (shape,), nodes[0], nodes[1])

    def _random(self, fname, args, scope, where):
        """RANDOM 0 1 / UNIFORM / NORMAL / EXPONENTIAL: a uniform draw per step, then transformed.

        The draw is a discrete state that the Euler integrator fills with a new uniform
        number at every step, from each parameter set's own stream of the run's
        ``seed`` (Vensim's own seed argument cannot reproduce Vensim's stream and is
        ignored); the transformation is PySD's (truncated normal and exponential).
        """
        nargs = _RANDOM[fname]
        if len(args) != nargs:
            self._unsupported(f"{fname.upper().replace('_', ' ')} with {len(args)} arguments", where)
        low = [self._lower(a, scope, where) for a in args]
        draw = self._hidden(where, "RANDOM", kind="discrete", init=("num", 0.5))
        draw.update = ("ref", draw.vid)  # replaced by a new draw at every step (integrate)
        u = ("ref", draw.vid)
        if fname == "random_0_1":
            return u
        if fname == "random_uniform":
            return ("op", "+", low[0], ("op", "*", ("op", "-", low[1], low[0]), u))
        return ("fn", fname, (), *low[:4], u)

    def _delay_fixed(self, inp, time, init, where):
        inp = self._aux(inp, where, "DELAY_FIXED_INPUT")
        # the delay time is resolved to a number of steps at initialisation
        var = self._hidden(where, "DELAY_FIXED", kind="discrete", init=init, update=inp, delay_time=time)
        return ("ref", var.vid)

    def _reference(self, name: str, scope: dict, where: str):
        if name == "time":
            return ("time",)
        if name in scope:
            entry = scope[name]
            if entry[0] == "var":
                var = self.vars[entry[1]]
                if var.dims is not None:
                    self._unsupported(f"'{var.name}' (subscripted) without subscripts", where)
                return ("ref", entry[1])
            if entry[0] == "node":
                return entry[1]
            self._unsupported("a lookup used without an argument", where)
        if scope is not self.main_scope and name in self.main_scope:
            # macros see the model's control variables (e.g. TIME STEP)
            return self._reference(name, self.main_scope, where)
        if name in self.subs.by_clean:
            return self._dimension_value(name, where)
        if self.subs.element_value(name) is not None:
            return ("num", self.subs.element_value(name))
        raise ModelReadError(f"{self.source}: '{where}' refers to '{name}', which is not defined")

    def _call(self, ast, scope, where):
        fname = clean_name(ast.function.reference)
        args = ast.arguments
        if fname in scope and scope[fname][0] == "lookup":
            entry = scope[fname]
            if len(args) != 1:
                self._unsupported(f"lookup call with {len(args)} arguments", where)
            return ("lookup", entry[1], self._lower(args[0], scope, where))
        if fname in scope and scope[fname][0] == "lookups":
            _, var_dims, tables = scope[fname]
            subs = list(ast.function.subscripts.subscripts) if ast.function.subscripts else None
            if subs is None or len(args) != 1:
                self._unsupported("a subscripted lookup called without subscripts", where)
            grid = self.grid or sub.Grid((), [], {})
            idx = tables[sub.index(self.subs, grid, var_dims, subs, where)]
            if np.any(idx < 0):
                self._unsupported("an element of a lookup that is not defined", where)
            used, local = np.unique(idx, return_inverse=True)
            table_set = tuple((self.lookups[i].x, self.lookups[i].y, self.lookups[i].kind) for i in used)
            local = local.reshape(idx.shape)
            return ("fn", "lookup_elements", (local[..., None] if local.ndim else int(local), table_set),
                    self._lower(args[0], scope, where))
        if fname in _RANDOM:
            return self._random(fname, args, scope, where)
        if fname in _REDUCTIONS or fname in ("elmcount", "vector_select", "vector_sort_order",
                                             "vector_rank", "vector_reorder"):
            return self._array_function(fname, args, scope, where)
        if fname in self.macros:
            if self.grid is not None and self.grid.shape:
                self._unsupported(f"macro {fname} with subscripts", where)
            return self._macro_call(fname, [self._lower(a, scope, where) for a in args], where)
        modes = {"lookup_extrapolate": "extrapolate", "lookup_forward": "look_forward",
                 "lookup_backward": "hold_backward"}
        if fname in modes and len(args) == 2 and type(args[0]).__name__ == "ReferenceStructure" \
                and scope.get(clean_name(args[0].reference), ("",))[0] == "lookup":
            # Vensim's LOOKUP EXTRAPOLATE/FORWARD/BACKWARD: the named table read another way
            table = self.lookups[scope[clean_name(args[0].reference)][1]]
            self.lookups.append(Lookup(x=table.x, y=table.y, kind=modes[fname]))
            return ("lookup", len(self.lookups) - 1, self._lower(args[1], scope, where))
        if fname == "get_time_value":
            return self._get_time_value(args, scope, where)
        if fname.startswith("lookup_"):  # LOOKUP INVERT, LOOKUP AREA, ...: name the function
            self._unsupported(f"function {fname.upper().replace('_', ' ')}", where)
        low = [self._lower(a, scope, where) for a in args]
        simple = {"abs", "exp", "ln", "sqrt", "sin", "cos", "tan", "arcsin", "arccos",
                  "arctan", "sinh", "cosh", "tanh", "min", "max", "integer", "log",
                  "xidz", "zidz", "quantum", "modulo"}
        aliases = {"if_then_else": "if", "int": "integer", "power": "^"}
        if fname in simple or fname in aliases:
            op = aliases.get(fname, fname)
            arity = 2 if op == "^" else ARITY[op]
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

    def _get_time_value(self, args, scope, where):
        """GET TIME VALUE(relativeto, offset, measure): what PySD implements, the current time plus offset.

        Relative to the initial time PySD refuses it (it found Vensim not to do what
        its documentation says), and the computer's clock would make runs
        irreproducible: both are refused, as are the calendar measures.
        """
        if len(args) != 3:
            self._unsupported(f"GET TIME VALUE with {len(args)} arguments", where)
        relative, offset, measure = (self._lower(a, scope, where) for a in args)
        relative, measure = self._fold(relative, set()), self._fold(measure, set())
        if relative == 1:
            self._unsupported("GET TIME VALUE relative to the initial time", where)
        if relative == 2:
            self._unsupported("GET TIME VALUE of the computer's clock", where)
        if relative != 0 or measure != 0:
            self._unsupported("GET TIME VALUE other than in the model's time units (measure 0)", where)
        return ("op", "+", ("time",), offset)

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

"""Code generation: ordering the lowered model and writing its numpy code (:class:`Program`).

The variables are ordered, split into what can be computed once per run
(constants and everything that depends only on constants) and what must be
recomputed at every evaluation (anything that depends on time or on a state),
and written as Python functions compiled with :func:`exec` in
:func:`aicircle.runtime.namespace`:

- ``init(P, t, dt)``: evaluates the model at the initial time ``t`` and returns
  the run constants, the initial state and the delay times of DELAY FIXED;
- ``rhs(t, dt, Y, C, B)``: evaluates every dynamic variable for the state ``Y``
  (shape ``(n_states, n)``) into preallocated rows ``B`` with numpy ufuncs
  called with an output, so that one evaluation allocates almost nothing; an
  operation written twice (the same ufunc of the same names) is computed once. It
  fills the derivatives of the continuous states (the first rows of ``B``) and
  returns the next values of the discrete ones and the outputs;
- ``controls(P, t)``: the four time settings.

Semantics follow PySD's Python backend (and so Vensim) exactly, so that Euler
runs agree with PySD to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import runtime
from ..errors import UnsupportedFeature
from .ir import FUNCTIONS, UFUNCS, node_refs, node_uses_time
from .subscripts import labels as element_labels

# Smooth stand-ins of the non-smooth operations, used for continuation only
# (Program(..., smooth=eps)); simulations keep the Vensim-exact forms. Each with
# whether it takes the smoothing width.
_SMOOTH = {
    "min": (runtime.smooth_min, True), "max": (runtime.smooth_max, True),
    "abs": (runtime.smooth_abs, True), ">": (runtime.smooth_greater, True),
    ">=": (runtime.smooth_greater, True), "<": (runtime.smooth_less, True),
    "<=": (runtime.smooth_less, True), "if": (runtime.smooth_if, False),
    "and": (runtime.smooth_and, False), "or": (runtime.smooth_or, False),
    "not": (runtime.smooth_not, False),
}


def _call(function, args) -> str:
    """The code of a call of a function of :mod:`aicircle.runtime`."""
    return f"{function.__name__}({', '.join(args)})"


def _initial_node(var, kind: str):
    """The expression that gives ``var`` (of ``kind`` in the program) its value at initialisation."""
    if kind in ("aux", "control"):
        return var.init_expr if var.init_expr is not None else var.expr
    if kind in ("stock", "discrete", "initial"):
        return var.init
    return None  # a constant: read from the parameters


def _run_node(var, kind: str):
    """The expression evaluated for ``var`` (of ``kind`` in the program) during a run, or None."""
    return {"aux": var.expr, "control": var.expr, "stock": var.deriv, "discrete": var.update}.get(kind)


def _raw_data(node, element) -> bool:
    """Whether ``node`` (a variable's expression) reads :RAW: data at ``element`` (None: a scalar)."""
    if node is None or node[0] != "fn":
        return False
    if node[1] == "data_at":
        return node[2][2] == "raw"
    if node[1] == "rows":
        return _raw_data(node[3], None)
    if node[1] == "assemble":
        return any(element in positions and _raw_data(part, None)
                   for positions, part in zip(node[2][1], node[3:]))
    return False


def _closure(roots, deps: dict) -> set:
    """``roots`` and everything they depend on through ``deps`` (id -> ids), transitively."""
    out: set = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if n not in out:
            out.add(n)
            stack.extend(deps[n])
    return out


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
        #: buffered mode: the name holding each pure operation already written, by its code
        #: (every name is assigned once per evaluation, so equal code means an equal value)
        self.done: dict[str, str] = {}

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
        if kind == "gather":
            index = node[2]
            where = str(int(index)) if np.ndim(index) == 0 else self.p.constant(index)
            return f"{self.name_of(node[1])}[{where}]"
        if kind == "arr":
            return self.p.constant(node[1])
        if kind == "fn":
            args = [self.expr(a) for a in node[3:]] + [self.p.constant(c) for c in node[2]]
            return self._bind(f"{node[1]}({', '.join(args)})", out)
        if kind == "lookup":
            table = self.p.lookups[node[1]]
            args = [self.expr(node[2]), f"LX{node[1]}", f"LY{node[1]}"]
            if self.p.smooth and table.kind == "interpolate" and len(table.x) > 1:
                return self._bind(_call(runtime.smooth_lookup, args + [repr(self.p.smooth)]), out)
            return self._bind(_call(runtime.lookup, args + [repr(table.kind)]), out)
        if kind == "op":
            if self.mode == "buffered":
                hoisted = self.p.hoisted.get(id(node))
                if hoisted is not None:
                    return hoisted
            name = node[1]
            args = [self.expr(a) for a in node[2:]]
            if self.p.smooth and name in _SMOOTH:
                function, takes_width = _SMOOTH[name]
                return self._bind(_call(function, args + ([repr(self.p.smooth)] if takes_width else [])), out)
            if name in UFUNCS:
                if self.mode == "buffered" and not self.p.is_array(node):
                    if out is None and name == "*":  # a STEP of height 1: x * 1.0 is x, bit for bit
                        ones = [i for i, a in enumerate(node[2:]) if a == ("num", 1.0)]
                        if ones and args[1 - ones[0]].startswith("_b"):
                            return args[1 - ones[0]]
                    # the ufunc by a global name, numbers as 0-d arrays (a Python float costs
                    # a conversion at every call), the output positional: each is a call's overhead
                    args = [self.p.number(a[1]) if a[0] == "num" else x for a, x in zip(node[2:], args)]
                    code = f"_{UFUNCS[name]}({', '.join(args)}"
                    if out is None and code in self.done:  # written before: the same value
                        return self.done[code]
                    target = out or self.p.new_row()
                    # (numpy deprecates a positional output for minimum and maximum alone)
                    sep = "out=" if name in ("min", "max") else ""
                    self.lines.append(f"{code}, {sep}{target})")
                    if out is None:
                        self.done[code] = target
                    return target
                return self._bind(f"np.{UFUNCS[name]}({', '.join(args)})", out)
            return self._bind(_call(FUNCTIONS[name], args), out)
        raise AssertionError(kind)

    def _bind(self, code: str, out: str | None) -> str:
        if out is not None:
            self.lines.append(f"np.copyto({out}, {code})")
            return out
        if self.mode == "plain":
            return f"({code})"
        if code in self.done:
            return self.done[code]
        tmp = self.p.new_temp()
        self.lines.append(f"{tmp} = {code}")
        self.done[code] = tmp
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
        self.state_index = {}
        self.non_negative = []  # rows, filled with state_index below
        self.rows = 0
        self.temps = 0
        self.hoisted: dict[int, str] = {}
        self._constants: dict = {}  # name -> value of the arrays the code reads (K0, K1, ...)
        self._numbers: dict = {}  # float.hex() -> name of its 0-d array (number())
        self._array_nodes: dict[int, bool] = {}
        self._labels: dict[int, list] = {}  # vid -> its elements' labels (row_label)
        # a subscripted state takes one row of Y per element
        self.state_index = {}
        row = 0
        for vid in self.states:
            size = vars_[vid].size
            self.state_index[vid] = row if size is None else slice(row, row + size)
            row += 1 if size is None else size
            if vid == (self.stocks[-1] if self.stocks else None):
                self.n_continuous = row
        if not self.stocks:
            self.n_continuous = 0
        self.n_state_rows = row
        self.discrete_rows = [self.state_index[vid] for vid in self.discrete]
        #: rows of Y holding a random function's uniform draw, refilled at every step
        self.random_rows = []
        #: where each random function's draws are in ``U``, the first draws given to ``initialise``
        self._draw_rows: dict[int, str] = {}
        for vid in self.discrete:
            if vars_[vid].builtin == "RANDOM":
                rows = self.state_index[vid]
                first = len(self.random_rows)
                self.random_rows += [rows] if isinstance(rows, int) else list(range(rows.start, rows.stop))
                self._draw_rows[vid] = str(first) if isinstance(rows, int) else \
                    f"{first}:{len(self.random_rows)}"
        #: (vid, element position or None) of each row of the outputs ``rhs`` returns
        self.output_rows = [(vid, None) if vars_[vid].size is None else (vid, j)
                            for vid in self.outputs for j in range(vars_[vid].size or 1)]
        #: positions in ``output_rows`` whose NaN is a value, not an error: elements no equation
        #: defines, and :RAW: data between the times of its series (both NaN in PySD too)
        self.undefined_outputs = [k for k, (vid, j) in enumerate(self.output_rows)
                                  if (j is not None and j in vars_[vid].undefined)
                                  or _raw_data(vars_[vid].expr, j)]
        for vid in self.stocks:
            if vars_[vid].non_negative:
                rows = self.state_index[vid]
                self.non_negative += [rows] if isinstance(rows, int) else list(range(rows.start, rows.stop))

        # ---- run-phase classification ---------------------------------
        run_deps = {v.vid: node_refs(_run_node(v, kind[v.vid])) for v in vars_}
        # within one evaluation, only auxiliaries wait for what they read
        self._aux_deps = {vid: (deps if kind[vid] in ("aux", "control") else set())
                          for vid, deps in run_deps.items()}
        # what the run needs: outputs, derivatives, updates, control vars
        needed = _closure(set(self.outputs) | set(self.states) | set(controls), run_deps)
        static = set()
        for vid in topo_order(sorted(needed), self._aux_deps, names, source):
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
        init_deps = {v.vid: node_refs(_initial_node(v, kind[v.vid])) | node_refs(v.delay_time)
                     for v in vars_}
        # Statics are computed in phase B from their run expressions; phase A
        # computes what the initial state and the INITIAL values need.
        init_needed = _closure(self.states + [vid for vid in static if kind[vid] == "initial"], init_deps)
        self.init_order = topo_order(sorted(init_needed), init_deps, names, source)
        #: visible variables whose value at initialisation reads a random draw (file order)
        drawn = set(self._draw_rows)
        for vid in self.init_order:
            if init_deps[vid] & drawn:
                drawn.add(vid)
        self.random_at_init = [vars_[vid].name.split("#")[0] for vid in sorted(drawn - set(self._draw_rows))]
        self.static_order = topo_order(sorted(static), run_deps, names, source)
        self._generate()

    # -- helpers used by the emitter --
    def constant(self, value) -> str:
        """The code of a constant parameter of a generated call (arrays are named K0, K1, ...)."""
        if isinstance(value, (bool, int, float, str, np.integer, np.floating)) or value is None:
            return repr(value.item() if isinstance(value, np.generic) else value)
        name = f"K{len(self._constants)}"
        self._constants[name] = value
        return name

    def number(self, value: float) -> str:
        """The name of a 0-d array holding ``value`` (one per value), for the buffered code."""
        key = float(value).hex()
        name = self._numbers.get(key)
        if name is None:
            name = self._numbers[key] = self.constant(np.array(float(value)))
        return name

    def is_array(self, node) -> bool:
        """Whether ``node``'s value may have an element axis (so cannot go into a row buffer)."""
        key = id(node)
        found = self._array_nodes.get(key)
        if found is None:
            kind = node[0]
            if kind in ("gather", "arr", "fn"):
                found = True
            elif kind == "ref":
                found = self.vars[node[1]].size is not None
            elif kind == "op":
                found = any(self.is_array(a) for a in node[2:])
            elif kind == "lookup":
                found = self.is_array(node[2])
            else:
                found = False
            self._array_nodes[key] = found
        return found

    def row_label(self, vid, element=None) -> str:
        """The name of one row of a variable: ``Name``, or ``Name[a,b]`` for a subscripted one."""
        var = self.vars[vid]
        if element is None:
            return var.name
        if var.dims:
            labels = self._labels.get(vid)
            if labels is None:  # built once per variable: a row at a time would be O(n^2)
                labels = self._labels[vid] = element_labels(var.dims)
            return f"{var.name}[{labels[element]}]"
        return f"{var.name}[{element}]"

    def row_name(self, row: int) -> str:
        """The name of state row ``row`` of ``Y``."""
        for vid in self.states:
            rows = self.state_index[vid]
            if rows == row:
                return self.vars[vid].name
            if isinstance(rows, slice) and rows.start <= row < rows.stop:
                return self.row_label(vid, row - rows.start)
        raise IndexError(row)  # pragma: no cover

    def _rows(self, vid) -> str:
        rows = self.state_index[vid]
        return str(rows) if isinstance(rows, int) else f"{rows.start}:{rows.stop}"

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
            if k in ("ref", "gather"):
                return n[1] in self.static
            if k == "arr":
                return True
            if k == "lookup":
                return is_static(n[2])
            if k == "fn":
                return all(is_static(a) for a in n[3:])
            return all(is_static(a) for a in n[2:])

        def walk(n):
            if n[0] in ("op", "lookup", "fn"):
                if is_static(n):
                    name = f"h{len(self.hoisted)}"
                    hoisted_lines.append(f"{name} = {emitter_b.expr(n)}")
                    self.hoisted[id(n)] = name
                    return
                for a in {"op": n[2:], "lookup": (n[2],), "fn": n[3:]}[n[0]]:
                    walk(a)
        walk(node)

    def _assignments(self, order, name, value) -> list[str]:
        """``name(vid) = ...`` for each vid of ``order``: a constant from ``P``, else ``value(var)``."""
        return [f"{name(vid)} = P[{self.params.index(vid)}]" if self.kind[vid] == "const"
                else f"{name(vid)} = {value(self.vars[vid])}" for vid in order]

    def _generate(self):
        vars_ = self.vars
        kind = self.kind
        # ---------------- init ----------------
        em_a = _Emitter(self, "plain", lambda vid: f"a{vid}", [])
        # a random function starts from the run's first draw (U), like every later step
        a_lines = self._assignments(
            self.init_order, lambda vid: f"a{vid}",
            lambda v: f"U[{self._draw_rows[v.vid]}]" if v.vid in self._draw_rows
            else em_a.expr(_initial_node(v, kind[v.vid])))
        em_b = _Emitter(self, "plain", lambda vid: f"v{vid}", [])
        b_lines = self._assignments(self.static_order, lambda vid: f"v{vid}",
                                    lambda v: f"a{v.vid}" if kind[v.vid] == "initial" else em_b.expr(v.expr))
        # hoist static subexpressions of dynamic expressions into phase B
        dyn_nodes = [vars_[vid].expr for vid in self.dynamic_order]
        dyn_nodes += [vars_[vid].deriv for vid in self.stocks]
        dyn_nodes += [vars_[vid].update for vid in self.discrete]
        for n in dyn_nodes:
            self._hoist_statics(n, b_lines, em_b)
        const_names = [f"v{vid}" for vid in self.static_order] + list(self.hoisted.values())
        self.n_const = len(const_names)
        state_vals = ", ".join(f"a{vid}" for vid in self.states)
        self.delay_fixed = [i for i, vid in enumerate(self.discrete) if vars_[vid].delay_time is not None]
        delay_times = ", ".join(em_a.expr(vars_[self.discrete[i]].delay_time) for i in self.delay_fixed)
        init_src = ["def init(P, t, dt, U):"]
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
        outs = [f"v{vid}" if self.vars[vid].size is None else f"*v{vid}" for vid in self.outputs]
        rhs_src = ["def rhs(t, dt, Y, C, B):"]
        if const_names:
            rhs_src.append(f"    {', '.join(const_names)}, = C")
        for vid in self.states:
            rhs_src.append(f"    v{vid} = Y[{self._rows(vid)}]")
        bufs = [f"_d{i}" for i in range(len(self.stocks))] + [f"_b{i}" for i in range(self.rows)]
        if bufs:
            rhs_src.append(f"    {', '.join(bufs)}, = B")
        rhs_src += ["    " + ln for ln in r_lines]
        rhs_src.append(f"    return [{', '.join(nexts)}], ({', '.join(outs)}{',' if outs else ''})")
        self.n_buffers = len(bufs)
        ctrl_src = self._controls_source()
        self.source_code = ("\n".join(init_src) + "\n\n" + "\n".join(rhs_src) + "\n\n"
                            + "\n".join(ctrl_src) + "\n")
        ns = runtime.namespace()
        ns.update({f"_{name}": getattr(np, name) for name in UFUNCS.values()})
        ns.update(self._constants)
        for i, lk in enumerate(self.lookups):
            ns[f"LX{i}"] = lk.x
            ns[f"LY{i}"] = lk.y
        try:
            exec(compile(self.source_code, f"<aicircle:{self.source}>", "exec"), ns)  # noqa: S102
        except SyntaxError as err:  # pragma: no cover - a compiler bug, not a user error
            raise RuntimeError(f"aicircle generated invalid code for {self.source}: {err}") from err
        self._init = ns["init"]
        #: ``rhs(t, dt, Y, C, B)``: the generated function itself (called once per step: no wrapper).
        #: It writes the derivatives into ``B``'s first rows and returns (the discrete states'
        #: next values, the outputs' rows).
        self.rhs = ns["rhs"]
        self._controls = ns["controls"]

    def _controls_source(self):
        """A function of (P, t) giving the four time settings, in plain numpy."""
        vars_ = self.vars
        closure = _closure(self.control_vids.values(), self._aux_deps)
        states = sorted(vid for vid in closure if self.kind[vid] in ("stock", "discrete", "initial"))
        if states:
            raise UnsupportedFeature(
                f"{self.source}: the time settings depend on '{vars_[states[0]].name}', which is "
                f"not a constant or a function of Time")
        names = {v.vid: v.name for v in vars_}
        order = topo_order(sorted(closure), self._aux_deps, names, self.source)
        self.dynamic_controls = any(
            self.kind[vid] in ("aux", "control") and node_uses_time(vars_[vid].expr) for vid in closure)
        em = _Emitter(self, "plain", lambda vid: f"c{vid}", [])
        lines = self._assignments(order, lambda vid: f"c{vid}", lambda v: em.expr(v.expr))
        ret = ", ".join(f"{key!r}: c{vid}" for key, vid in self.control_vids.items())
        return ["def controls(P, t, dt=float('nan')):"] + ["    " + ln for ln in lines] + \
            [f"    return {{{ret}}}"]

    def controls(self, P, t):
        """The time settings at time ``t``: dict initial_time, final_time, time_step, saveper."""
        return self._controls(P, t)

    # -- the two entry points --
    def initialise(self, P, t0, dt, n, draws=None):
        """Run constants and initial state, shape (n_states, n).

        ``draws``, shape ``(len(random_rows), n)``: the uniform draws the random
        functions take at the initial time (the run's first, see
        :mod:`aicircle.integrate`). Without them a model whose initial values or
        constants read a random function is refused; the draw rows of the state
        are NaN.
        """
        if draws is None:
            if self.random_at_init:
                raise UnsupportedFeature(
                    f"{self.source}: the initial value of '{self.random_at_init[0]}' is a random "
                    f"draw; run the model (simulate or simulate_batch, with seed=) to draw it")
            draws = np.full((len(self.random_rows), n), np.nan)
        consts, states, delay_times = self._init(P, t0, dt, draws)
        y0 = np.empty((self.n_state_rows, n))
        for vid, s in zip(self.states, states):
            y0[self.state_index[vid]] = s
        return consts, y0, delay_times

    def buffers(self, n):
        """Preallocated work rows for ``rhs`` with ``n`` columns: (derivatives, all rows).

        A subscripted stock's derivative is one block of rows, shape ``(n_elements, n)``.
        """
        nc = self.n_continuous
        work = np.empty((nc + self.n_buffers - len(self.stocks), n))
        blocks = [work[self.state_index[vid]] for vid in self.stocks]
        return work[:nc], tuple(blocks) + tuple(work[nc:])

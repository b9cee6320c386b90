"""Feedback loops and which of them dominates when: Loops That Matter.

The pipeline's *observe* step for structure. :meth:`aicircle.Model.loops` and
:meth:`aicircle.Model.loop_scores` call this module; its public functions work on
what they return.

**The causal graph** has one node per variable that changes during a run (stocks,
the hidden stocks of builtins such as SMOOTH, and every auxiliary that depends on
time or a state) and a link ``x -> z`` wherever ``z``'s equation reads ``x``; a
stock's equation is its net flow, so a flow links to the stock it fills or drains.
Constants, and auxiliaries made of constants only, cannot be on a loop.

**The loops** are every elementary cycle of that graph (Johnson's algorithm) when
there are at most :data:`MAX_ENUMERATED` of them; a larger model gets the
*strongest-path* loop set of Eberlein & Schoenberg (2020), searched from every stock
at every saved time of a run with the link scores as weights: the loops that carry
the most of the behaviour, not all loops. A loop's polarity is the product of its
links' signs: the sign of the partial derivative, read from the equation where it is
structural (``a + b``, ``a - b``, a constant factor, a monotone function or lookup)
and otherwise evaluated numerically (central differences) at every saved time of a
run: ``R`` or ``B`` when that holds wherever the loop is active, ``R/B`` when it
changes along the run, ``?`` when the loop is never active in it.

**Loop scores** (Schoenberg, Davidsen & Eberlein 2020): between two saved times, the
link score of ``x -> z`` is ``|Δz_x / Δz| · sign(Δz_x / Δx)``, where ``Δz_x`` is the
change of ``z``'s equation when ``x`` alone moves to its new value (every other input
at its previous one) and ``Δz`` its whole change; for a flow into a stock, ``z`` is
the stock's net flow (so an inflow scores ``+|Δi / Δnet|``, an outflow
``-|Δo / Δnet|``). A link whose ``Δz`` or ``Δx`` is 0 scores 0. A loop's score is the
product of its link scores; its relative score is its score over the sum of the
absolute scores of every loop of the set, in [-1, 1]; the dominant loop at a time is
the one with the largest absolute relative score. Scores are computed from the
saved values alone (every SAVEPER): the first saved time has none.

References: Schoenberg, Davidsen & Eberlein (2020), *Understanding model behavior
using the Loops that Matter method*, System Dynamics Review 36(2); Eberlein &
Schoenberg (2020), *Finding the loops that matter*, arXiv:2006.08425.
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections import defaultdict

import numpy as np
import pandas as pd

from . import runtime
from .compiler import clean_name
from .compiler.ir import evaluate
from .errors import InvalidInput, LoopPolarityWarning, UnsupportedFeature

__all__ = ["MAX_ENUMERATED", "MAX_LOOPS", "MIN_SHARE", "dominance", "label", "relative"]

#: Above this many elementary cycles, the strongest-path loop set replaces the enumeration.
MAX_ENUMERATED = 500
#: Relative step of the central differences that give a link's sign numerically.
SIGN_STEP = 1e-6
#: The strongest-path set keeps the loops whose mean absolute relative score along the run reaches
#: this share, at most MAX_LOOPS of them (plus those a comment tag names).
MIN_SHARE = 0.01
MAX_LOOPS = 40
#: A comment tag names a loop when at least this share of the loop's (visible) variables and
#: of the tag's variables coincide (Jaccard index), the best match winning.
TAG_MATCH = 0.25
#: ... and at least this share of the loop's variables carry the tag.
TAG_PRECISION = 0.5
#: How many untagged variables in a row a loop named by a tag may pass through.
TAG_DETOUR = 2
_TAG = re.compile(r"\b([RB][1-9][0-9]?)\b")


# --------------------------------------------------------------------------
# the causal graph
# --------------------------------------------------------------------------


class Structure:
    """A model's causal graph among the variables that change during a run.

    Attributes
    ----------
    nodes : list of int
        Variable ids, in file order.
    eq : dict
        Variable id -> the expression of its run-time value (a stock's: its net flow).
    inputs : dict
        Variable id -> the nodes its equation reads.
    succ : dict
        Variable id -> the nodes that read it.
    """

    def __init__(self, model):
        from .compiler.ir import node_refs

        self.model = model
        self.vars = model._vars
        visible = tuple(model._by_clean[clean_name(n)] for n in model.variables)
        prog = model._program(frozenset(), visible)
        self.kind, self.static = prog.kind, prog.static
        dynamic = set(prog.dynamic_order) | set(prog.stocks) | set(prog.discrete)
        self.nodes = sorted(dynamic)
        self.eq = {}
        for vid in self.nodes:
            v, k = self.vars[vid], self.kind[vid]
            self.eq[vid] = v.deriv if k == "stock" else v.update if k == "discrete" else v.expr
        self.inputs = {z: sorted(node_refs(self.eq[z]) & dynamic) for z in self.nodes}
        self.succ = {x: [] for x in self.nodes}
        for z in self.nodes:
            for x in self.inputs[z]:
                self.succ[x].append(z)
        self._refs: dict = {}
        # display names: a builtin's hidden variable as 'Where (SMOOTH)', numbered when one
        # equation holds several
        self.names = {}
        for vid in self.nodes:
            v = self.vars[vid]
            name = v.name if not v.hidden else f"{v.name.split('#')[0]} ({v.builtin.split('_')[0]})"
            taken = set(self.names.values())
            unique, k = name, 2
            while unique in taken:
                unique, k = f"{name} #{k}", k + 1
            self.names[vid] = unique
        self.by_name = {clean_name(n): vid for vid, n in self.names.items()}

    def name(self, vid) -> str:
        """A node's name: a variable's own, a builtin's hidden state as ``'Where (SMOOTH)'``."""
        return self.names[vid]

    def loop_of(self, variables, where="loops") -> tuple:
        """The node ids of a loop given by its variables' names, checked against the graph."""
        if isinstance(variables, str) or not hasattr(variables, "__iter__"):
            raise InvalidInput(f"{where}: a loop's variables must be a sequence of names, got {variables!r}")
        vids = []
        for name in variables:
            vid = self.by_name.get(clean_name(name)) if isinstance(name, str) else None
            if vid is None:
                raise InvalidInput(f"{where}: '{name}' is not a variable that changes during a run, so it "
                                   f"is on no loop")
            vids.append(vid)
        if not vids or len(set(vids)) != len(vids):
            raise InvalidInput(f"{where}: a loop visits each of its variables once: {list(variables)}")
        for x, z in _edges(vids):
            if z not in self.succ[x]:
                raise InvalidInput(f"{where}: '{self.names[z]}' does not read '{self.names[x]}', so "
                                   f"{' -> '.join(variables)} is not a loop")
        return _canonical(vids)

    def is_stock(self, vid) -> bool:
        return self.kind[vid] in ("stock", "discrete")

    def refs(self, node) -> frozenset:
        """Variable ids an expression reads (memoised by node identity)."""
        key = id(node)
        out = self._refs.get(key)
        if out is None:
            if node[0] == "ref":
                out = frozenset((node[1],))
            elif node[0] == "op":
                out = frozenset().union(*(self.refs(a) for a in node[2:]))
            elif node[0] == "lookup":
                out = self.refs(node[2])
            else:
                out = frozenset()
            self._refs[key] = out
        return out


def _sccs(succ, nodes) -> list:
    """Strongly connected components of the subgraph on ``nodes`` (iterative Tarjan)."""
    nodes = set(nodes)
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = itertools.count()
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(w for w in succ[root] if w in nodes)))]
        index[root] = low[root] = next(counter)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = next(counter)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(u for u in succ[w] if u in nodes))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    out.append(comp)
    return out


class _TooMany(Exception):
    pass


def elementary_cycles(succ, limit=None) -> list:
    """Every elementary cycle of a directed graph (Johnson 1975), as lists of nodes.

    Parameters
    ----------
    succ : dict
        Node -> iterable of the nodes it links to (nodes sortable).
    limit : int, optional
        Raise ``_TooMany`` as soon as more cycles than this are found.
    """
    graph = {v: set(ws) for v, ws in succ.items()}
    cycles = []

    def found(path):
        cycles.append(list(path))
        if limit is not None and len(cycles) > limit:
            raise _TooMany

    for v in sorted(graph):
        if v in graph[v]:
            found([v])
            graph[v].discard(v)
    sccs = [c for c in _sccs(graph, graph) if len(c) > 1]
    while sccs:
        scc = sccs.pop()
        start = min(scc)
        scc = scc - {start}
        sub = {v: sorted(graph[v] & (scc | {start})) for v in scc | {start}}
        path, blocked, closed = [start], {start}, set()
        blockers = defaultdict(set)
        stack = [(start, list(sub[start]))]
        while stack:
            node, nbrs = stack[-1]
            if nbrs:
                nxt = nbrs.pop()
                if nxt == start:
                    found(path)
                    closed.update(path)
                elif nxt not in blocked:
                    path.append(nxt)
                    stack.append((nxt, list(sub[nxt])))
                    closed.discard(nxt)
                    blocked.add(nxt)
                    continue
            if not nbrs:
                if node in closed:
                    todo = {node}
                    while todo:
                        u = todo.pop()
                        if u in blocked:
                            blocked.discard(u)
                            todo.update(blockers[u])
                            blockers[u].clear()
                else:
                    for w in sub[node]:
                        blockers[w].add(node)
                stack.pop()
                path.pop()
        sccs.extend(c for c in _sccs(graph, scc) if len(c) > 1)
    return cycles


def _canonical(cycle) -> tuple:
    """A cycle rotated to start at its first node in file order."""
    i = cycle.index(min(cycle))
    return tuple(cycle[i:]) + tuple(cycle[:i])


def _edges(loop):
    return [(loop[i], loop[(i + 1) % len(loop)]) for i in range(len(loop))]


# --------------------------------------------------------------------------
# a run's values, hidden states included
# --------------------------------------------------------------------------


def _as_columns(model, run, params):
    """``(times, columns, n_sets, set_index)`` from a simulate() frame or a simulate_batch() Dataset."""
    if isinstance(run, pd.DataFrame):
        if run.index.name != "time" or len(run) < 2:
            raise InvalidInput("run must be a result of simulate(): indexed by time, at least two saved "
                               "times")
        times = run.index.to_numpy(dtype=float)
        cols = {}
        for c in run.columns:
            values = pd.to_numeric(run[c], errors="coerce").to_numpy(dtype=float)
            cols[clean_name(c)] = values[:, None]
        return times, cols, 1, None
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - a dependency
        xr = None
    if xr is not None and isinstance(run, xr.Dataset):
        if "time" not in run.dims or run.sizes["time"] < 2:
            raise InvalidInput("run must have a 'time' dimension with at least two saved times")
        extra = [d for d in run.dims if d not in ("time", "set")]
        if extra:
            raise InvalidInput(f"run has dimensions {extra} besides 'set' and 'time'")
        batch = "set" in run.dims
        n = run.sizes["set"] if batch else 1
        cols = {}
        for name, da in run.data_vars.items():
            arr = da.transpose("time", "set").to_numpy() if batch else da.to_numpy()[:, None]
            cols[clean_name(name)] = np.asarray(arr, dtype=float)
        index = run["set"].to_numpy() if batch else None
        return np.asarray(run["time"].to_numpy(), dtype=float), cols, n, index
    raise InvalidInput(f"run must be the DataFrame of simulate() or the Dataset of simulate_batch() "
                       f"(or one set of it), got {type(run).__name__}")


class _Values:
    """The value of every variable a score needs, shape (T, N) or broadcastable (a constant)."""

    def __init__(self, structure: Structure, times, columns, n, params=None):
        self.s, self.times, self.columns, self.n = structure, times, columns, n
        model = structure.model
        self.params = {}
        for name, value in (params or {}).items():
            arr = np.asarray(value, dtype=float)
            if arr.ndim and arr.shape != (n,):
                raise InvalidInput(f"params value of '{name}' has {arr.size} values for {n} runs")
            self.params[model._vid(name)] = arr[None, :] if arr.ndim else arr
        self.cache: dict = {}
        self.alias = {}
        for v in structure.vars:
            if not v.hidden and v.expr is not None and v.expr[0] == "ref" and \
                    structure.vars[v.expr[1]].hidden and structure.kind[v.expr[1]] == "stock":
                self.alias.setdefault(v.expr[1], v.vid)
        self.t = times[:, None]

    def step(self):
        return self.get(self.s.model._controls["time_step"])

    def get(self, vid):
        out = self.cache.get(vid)
        if out is None:
            out = self._resolve(vid)
            self.cache[vid] = out
        return out

    def _resolve(self, vid):
        s = self.s
        v = s.vars[vid]
        kind = s.kind[vid]
        key = clean_name(v.name)
        if not v.hidden and key in self.columns:
            return self.columns[key]
        if kind == "const":
            if vid in self.params:
                return self.params[vid]
            return v.expr[1]
        if kind == "initial":
            first = _Values(s, self.times[:1], {k: c[:1] for k, c in self.columns.items()}, self.n)
            first.params = self.params
            return _evaluate(v.init, first)
        if kind in ("aux", "control") and (v.hidden or vid in s.static):
            return _evaluate(v.expr, self)
        if kind == "stock" and v.hidden and vid in self.alias and \
                clean_name(s.vars[self.alias[vid]].name) in self.columns:
            return self.columns[clean_name(s.vars[self.alias[vid]].name)]
        if v.hidden:
            raise UnsupportedFeature(
                f"{s.model.path.name}: loop scores need the hidden state of the {v.builtin.split('_')[0]} "
                f"in '{v.name.split('#')[0]}', which a run does not return; scores through "
                f"{'DELAY, SMOOTH3, TREND' if kind == 'stock' else 'SAMPLE IF TRUE and DELAY FIXED'} "
                f"are not supported")
        raise InvalidInput(f"the run lacks '{v.name}', which the loop scores read; run the model with "
                           f"return_columns=None (simulate) or return_columns=list(model.variables) "
                           f"(simulate_batch)")


class _Slice:
    """A view of :class:`_Values` on the saved times ``rows`` (a slice), one variable possibly swapped."""

    def __init__(self, values: _Values, rows, swap=None, swap_rows=None):
        self.v, self.rows, self.swap, self.swap_rows = values, rows, swap, swap_rows
        self.s = values.s
        self.t = values.t[rows]

    def step(self):
        return self.get(self.s.model._controls["time_step"])

    def get(self, vid):
        arr = self.v.get(vid)
        rows = self.swap_rows if vid == self.swap else self.rows
        if np.ndim(arr) == 2 and arr.shape[0] == len(self.v.times):
            return arr[rows]
        return arr


def _evaluate(node, env, cache=None, fresh=None):
    """The value of an expression in ``env`` (``get(vid)``, ``t``, ``step()``).

    With ``cache`` (id(node) -> value), every operation's value is stored there; with
    ``fresh`` (a variable id) as well, a subexpression that does not read it is taken
    from the cache instead of being computed again.
    """
    structure = env.s
    if fresh is not None and node[0] in ("op", "lookup") and fresh not in structure.refs(node):
        return cache[id(node)]
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "ref":
        return env.get(node[1])
    if kind == "time":
        return env.t
    if kind == "dt":
        return env.step()
    if kind == "lookup":
        table = structure.model._lookups[node[1]]
        x = _evaluate(node[2], env, cache, fresh)
        out = runtime.lookup(x, table.x, table.y, table.kind)
    else:
        args = [_evaluate(a, env, cache, fresh) for a in node[2:]]
        out = evaluate(node[1], *args)
        if getattr(out, "dtype", None) == bool or isinstance(out, (bool, np.bool_)):
            out = np.asarray(out, dtype=float)
    if cache is not None and fresh is None:
        cache[id(node)] = out
    return out


# --------------------------------------------------------------------------
# link scores, link signs
# --------------------------------------------------------------------------


def link_scores(structure: Structure, values: _Values, links) -> dict:
    """LTM link scores between consecutive saved times, ``(x, z) -> ndarray (T - 1, N)``."""
    by_target = defaultdict(list)
    for x, z in links:
        by_target[z].append(x)
    T = len(values.times)
    prev, now = slice(0, T - 1), slice(1, T)
    out = {}
    with np.errstate(all="ignore"):
        for z, xs in by_target.items():
            eq = structure.eq[z]
            cache: dict = {}
            base = _evaluate(eq, _Slice(values, prev), cache)
            total = _evaluate(eq, _Slice(values, now)) - base
            for x in xs:
                moved = _evaluate(eq, _Slice(values, prev, x, now), cache, x) - base
                full = values.get(x)
                dx = full[1:] - full[:-1]
                score = np.abs(moved / total) * np.sign(moved * dx)
                ok = (total != 0) & (dx != 0) & np.isfinite(score)
                out[(x, z)] = np.broadcast_to(np.where(ok, score, 0.0), (T - 1, values.n))
    return out


def _structural_sign(node, x, structure):
    """Sign of d(node)/dx read from the expression: +1, -1, 0, or None where it is not structural."""
    if x not in structure.refs(node) or node[0] in ("num", "time", "dt"):
        return 0
    kind = node[0]
    if kind == "ref":
        return 1
    if kind == "lookup":
        ys = np.diff(structure.model._lookups[node[1]].y)
        inner = _structural_sign(node[2], x, structure)
        if inner in (None, 0):
            return inner
        if np.all(ys >= 0):
            return inner
        if np.all(ys <= 0):
            return -inner
        return None
    op, args = node[1], node[2:]
    signs = [_structural_sign(a, x, structure) for a in args]

    def combine(*ss):
        if any(s is None for s in ss):
            return None
        nonzero = {s for s in ss if s}
        return nonzero.pop() if len(nonzero) == 1 else (0 if not nonzero else None)

    def value_sign(a):
        if a[0] == "num":
            return int(np.sign(a[1]))
        if a[0] == "op" and a[1] == "neg":
            inner = value_sign(a[2])
            return None if inner is None else -inner
        return None

    if op == "+" or op in ("min", "max"):
        return combine(*signs)
    if op == "-":
        return combine(signs[0], None if signs[1] is None else -signs[1])
    if op == "neg":
        return None if signs[0] is None else -signs[0]
    if op in ("exp", "ln", "sqrt", "arctan", "sinh", "tanh", "integer", "arcsin"):
        return signs[0]
    if op in ("*", "/", "zidz", "xidz"):
        a, b = args[0], args[1]
        sa, sb = signs[0], signs[1]
        if op == "xidz" and signs[2] != 0:
            return None
        if sa is None or sb is None or (sa and sb):
            return None
        if sb == 0:
            vb = value_sign(b)
            return None if vb is None else sa * vb
        va = value_sign(a)
        return None if va is None else sb * va * (1 if op == "*" else -1)
    if op == "if":
        if signs[0] != 0:
            return None
        return combine(signs[1], signs[2])
    return None


def link_signs(structure: Structure, values: _Values, links) -> dict:
    """Sign of each link's partial derivative: ``(x, z) -> int`` where structural, else ndarray (T, N)."""
    out = {}
    with np.errstate(all="ignore"):
        for x, z in links:
            eq = structure.eq[z]
            sign = _structural_sign(eq, x, structure)
            if sign is not None:
                out[(x, z)] = sign
                continue
            full = values.get(x)
            h = SIGN_STEP * np.maximum(np.abs(full), 1e-3)
            rows = slice(0, len(values.times))

            class _Moved(_Slice):
                def __init__(self, shift):
                    super().__init__(values, rows)
                    self.shift = shift

                def get(self, vid):
                    arr = super().get(vid)
                    return arr + self.shift if vid == x else arr

            up = _evaluate(eq, _Moved(h))
            down = _evaluate(eq, _Moved(-h))
            diff = np.asarray(up - down, dtype=float)
            out[(x, z)] = np.where(np.isfinite(diff), np.sign(diff), 0.0)
    return out


def _polarity(loop, signs) -> str:
    """'R', 'B', 'R/B' (changes along the run) or '?' (never active in it)."""
    product = 1
    for e in _edges(loop):
        product = product * signs[e]
    if np.ndim(product) == 0:
        return {1: "R", -1: "B"}.get(int(product), "?")
    seen = set(np.unique(product[np.isfinite(product) & (product != 0)]).astype(int))
    if seen == {1}:
        return "R"
    if seen == {-1}:
        return "B"
    return "R/B" if seen else "?"


# --------------------------------------------------------------------------
# the loop set
# --------------------------------------------------------------------------


def strongest_path_loops(structure: Structure, scores, nodes=None) -> set:
    """Eberlein & Schoenberg's strongest-path loop set over every time of ``scores``.

    Parameters
    ----------
    scores : dict
        ``(x, z) -> ndarray (T - 1, 1)``: link scores of one run.

    Returns
    -------
    set of tuple
        Loops (node ids), each rotated to start at its first node in file order.
    """
    nodes = set(structure.nodes if nodes is None else nodes)
    stocks = [v for v in sorted(nodes) if structure.is_stock(v)]
    found = set()
    n_times = next(iter(scores.values())).shape[0] if scores else 0
    weights = {e: np.abs(np.asarray(a)[:, 0]) for e, a in scores.items()}
    for ti in range(n_times):
        out = {}
        for x in nodes:
            nb = [(float(weights[(x, z)][ti]), z) for z in structure.succ[x] if z in nodes]
            out[x] = sorted(((w, z) for w, z in nb if w > 0 and np.isfinite(w)), reverse=True)
        for start in stocks:
            best = defaultdict(float)
            path, on_path = [], set()

            def check(node, score, start=start, best=best, path=path, on_path=on_path):
                if node == start and path:
                    found.add(_canonical(path))
                    return
                if node in on_path or score < best[node]:
                    return
                best[node] = score
                on_path.add(node)
                path.append(node)
                for w, nxt in out[node]:
                    check(nxt, score * w)
                path.pop()
                on_path.discard(node)

            check(start, 1.0)
    return found


def find_loops(model, run=None, params=None):
    """The loop table of :meth:`aicircle.Model.loops` (see there)."""
    s = model._loop_structure()
    on_cycles = set()
    for comp in _sccs(s.succ, s.nodes):
        if len(comp) > 1 or any(v in s.succ[v] for v in comp):
            on_cycles |= comp
    succ = {v: [w for w in s.succ[v] if w in on_cycles] for v in on_cycles}
    arrays = [v for v in sorted(on_cycles) if s.vars[v].size is not None]
    if arrays:  # a link between elements is not a link between variables: not scored yet
        raise UnsupportedFeature(f"{model.path.name}: feedback loops through subscripted variables "
                                 f"('{s.name(arrays[0])}') are not analysed yet")
    if run is None:
        run = model.simulate(params=params)
        params = None
    times, cols, n, _ = _as_columns(model, run, params)
    if n != 1:
        raise InvalidInput("loops are found along one run; give one set of the batch (batch.isel(set=k))")
    values = _Values(s, times, cols, n, params)
    tags = model.loop_tags
    attrs = {}
    try:
        cycles = sorted({_canonical(c) for c in elementary_cycles(succ, MAX_ENUMERATED)},
                        key=lambda c: (len(c), [s.name(v) for v in c]))
        attrs["method"] = "all elementary cycles"
        matched = tag_loops(tags, {c: [s.name(v) for v in c] for c in cycles})
    except _TooMany:
        links = [(x, z) for x in on_cycles for z in succ[x]]
        scores_ = link_scores(s, values, links)
        found = sorted(strongest_path_loops(s, scores_, on_cycles),
                       key=lambda c: (len(c), [s.name(v) for v in c]))
        # the loops that matter: mean absolute relative score along the run
        with np.errstate(all="ignore"):
            product = np.array([np.prod([scores_[e][:, 0] for e in _edges(c)], axis=0) for c in found])
            total = np.abs(product).sum(axis=0)
            share = np.nanmean(np.where(total > 0, np.abs(product) / np.where(total > 0, total, 1), np.nan),
                               axis=1)
        share = np.nan_to_num(share)
        candidates = {c: [s.name(v) for v in c] for c in found}
        for c in _tagged_cycles(s, tags, on_cycles):
            candidates.setdefault(c, [s.name(v) for v in c])
        matched = tag_loops(tags, candidates)
        found += sorted((c for c in matched if c not in set(found)),
                        key=lambda c: (len(c), [s.name(v) for v in c]))
        ranked = [found[i] for i in np.argsort(-share, kind="stable") if share[i] >= MIN_SHARE][:MAX_LOOPS]
        keep = set(ranked) | set(matched)
        cycles = [c for c in found if c in keep]
        attrs["method"] = (f"strongest paths (Eberlein & Schoenberg 2020): {len(found)} loops found along the "
                           f"run, kept the {len(ranked)} with a mean absolute relative score of at least "
                           f"{MIN_SHARE:.0%} (at most {MAX_LOOPS})"
                           + (f" and {len(keep) - len(ranked)} more that comment tags name"
                              if len(keep) > len(ranked) else ""))
    links = sorted({e for c in cycles for e in _edges(c)})
    try:
        signs = link_signs(s, values, links)
    except UnsupportedFeature:  # a value the run cannot give: the structural signs alone
        signs = {e: _structural_sign(s.eq[e[1]], e[0], s) for e in links}
        signs = {e: (0 if v is None else v) for e, v in signs.items()}
    rows = []
    for i, loop in enumerate(cycles, start=1):
        tag = matched.get(loop, "")
        polarity = _polarity(loop, signs)
        rows.append({"loop": tag or f"L{i}", "id": f"L{i}", "polarity": polarity, "tag": tag,
                     "tag_agrees": (tag[0] == polarity) if tag and polarity in ("R", "B") else None,
                     "length": len(loop),
                     "stocks": sum(s.is_stock(v) for v in loop), "variables": tuple(s.name(v) for v in loop)})
    columns = ["loop", "id", "polarity", "tag", "tag_agrees", "length", "stocks", "variables"]
    table = pd.DataFrame(rows, columns=columns).set_index("loop")
    # True, False or None as Python objects (a column of bools alone would turn them into numpy's)
    table["tag_agrees"] = pd.Series([r["tag_agrees"] for r in rows], index=table.index, dtype=object)
    table.attrs.update(attrs)
    table.attrs["unmatched_tags"] = sorted(set(tags) - set(matched.values()))
    return table


def _tagged_cycles(s: Structure, tags: dict, nodes) -> list:
    """The elementary cycles among each tag's variables and the links between them.

    A loop a comment tag names need not be among the strongest paths: for each tag,
    the cycles of the graph restricted to its variables (their hidden states too) and
    to chains of at most :data:`TAG_DETOUR` other variables between two of them.
    """
    out = []
    for names in tags.values():
        tagged = {s.by_name[clean_name(n)] for n in names if clean_name(n) in s.by_name} & nodes
        tagged |= {v for v in nodes if s.vars[v].hidden and clean_name(s.vars[v].name.split("#")[0]) in
                   {clean_name(n) for n in names}}
        keep = set(tagged)
        frontier = [(v, ()) for v in tagged]
        for _ in range(TAG_DETOUR):
            nxt = []
            for v, chain in frontier:
                for w in s.succ[v]:
                    if w not in nodes:
                        continue
                    if w in tagged:
                        keep.update(chain)
                    elif w not in chain:
                        nxt.append((w, chain + (w,)))
            frontier = nxt
        for v, chain in frontier:  # the last step of a chain of TAG_DETOUR
            if any(w in tagged for w in s.succ[v]):
                keep.update(chain)
        sub = {v: [w for w in s.succ[v] if w in keep] for v in keep}
        try:
            out += [_canonical(c) for c in elementary_cycles(sub, MAX_ENUMERATED)]
        except _TooMany:
            continue
    return out


def tag_loops(tags: dict, loops: dict) -> dict:
    """Loop -> comment tag: each tag to the loop whose variables it shares most (Jaccard index).

    Parameters
    ----------
    tags : dict
        Tag -> names of the variables whose comments name it (:attr:`aicircle.Model.loop_tags`).
    loops : dict
        Loop (any key) -> names of its variables.

    Pairs are taken best first; a loop takes one tag, a tag one loop. A pair sharing
    less than :data:`TAG_MATCH` of their variables, or a loop fewer than
    :data:`TAG_PRECISION` of whose variables carry the tag, is no match.
    """
    pairs = []
    for tag, tagged in tags.items():
        tagged = {clean_name(n) for n in tagged}
        for order, (key, names) in enumerate(loops.items()):
            names = {clean_name(n) for n in names}
            shared = len(tagged & names)
            if shared and shared >= TAG_PRECISION * len(names):
                pairs.append((-shared / len(tagged | names), len(names), order, tag, key))
    out, used = {}, set()
    for neg_jaccard, _, _, tag, key in sorted(pairs, key=lambda p: p[:3]):
        if -neg_jaccard < TAG_MATCH or key in out or tag in used:
            continue
        out[key] = tag
        used.add(tag)
    return out


def warn_disagreements(table: pd.DataFrame, source: str) -> None:
    """A :class:`~aicircle.errors.LoopPolarityWarning` per tag whose letter contradicts its loop's polarity."""
    for loop, row in table.iterrows():
        if row["tag_agrees"] is False:
            warnings.warn(LoopPolarityWarning(
                f"{source}: the comments name loop {row['tag']} ({row['tag'][0]}), but its polarity computed "
                f"from the links is {row['polarity']}: {' -> '.join(row['variables'])}"), stacklevel=3)


# --------------------------------------------------------------------------
# loop scores
# --------------------------------------------------------------------------


def scores(model, table: pd.DataFrame, run, params=None):
    """Loop scores of every loop of ``table`` along ``run``: ``(times, set index, {loop: (T, N)})``."""
    s = model._loop_structure()
    times, cols, n, index = _as_columns(model, run, params)
    values = _Values(s, times, cols, n, params)
    if not isinstance(table, pd.DataFrame) or "variables" not in table:
        raise InvalidInput(f"loops must be a table of loops as Model.loops() returns, got {type(table).__name__}")
    loops = [s.loop_of(v, f"loop {name}") for name, v in table["variables"].items()]
    links = sorted({e for c in loops for e in _edges(c)})
    ls = link_scores(s, values, links)
    out = {}
    for name, loop in zip(table.index, loops):
        score = np.full((len(times), n), np.nan)
        product = np.ones((len(times) - 1, n))
        for e in _edges(loop):
            product = product * ls[e]
        score[1:] = product
        out[name] = score
    return times, index, out


def relative(scores: pd.DataFrame) -> pd.DataFrame:
    """Relative loop scores: each loop's score over the sum of the absolute scores at that time.

    Parameters
    ----------
    scores : pandas.DataFrame
        Time x loop, as :meth:`aicircle.Model.loop_scores` returns.

    Returns
    -------
    pandas.DataFrame
        Same shape, in [-1, 1]; NaN where no loop is active.
    """
    total = scores.abs().sum(axis=1, min_count=1)
    with np.errstate(all="ignore"):
        return scores.div(total.where(total > 0), axis=0)


def dominance(scores: pd.DataFrame) -> pd.DataFrame:
    """The dominant loop in each period: the loop with the largest absolute relative score.

    Parameters
    ----------
    scores : pandas.DataFrame
        Time x loop loop scores (or relative scores).

    Returns
    -------
    pandas.DataFrame
        One row per period in which one loop dominates: ``start``, ``end`` (the
        saved times of its first and last score), ``loop``, ``polarity`` (sign of
        its score: ``R`` or ``B``), ``share`` (its mean absolute relative score over
        the period).
    """
    rel = relative(scores)
    active = rel.dropna(how="all")
    columns = ["start", "end", "loop", "polarity", "share"]
    if active.empty:
        return pd.DataFrame(columns=columns)
    top = active.abs().idxmax(axis=1)
    rows = []
    for _, group in itertools.groupby(zip(active.index, top), key=lambda p: p[1]):
        group = list(group)
        loop = group[0][1]
        times = [t for t, _ in group]
        vals = active.loc[times, loop]
        rows.append({"start": float(times[0]), "end": float(times[-1]), "loop": loop,
                     "polarity": "R" if vals.mean() > 0 else "B", "share": float(vals.abs().mean())})
    return pd.DataFrame(rows, columns=columns)


def label(table: pd.DataFrame, loop) -> str:
    """A loop's name for a legend: its tag or id, polarity and the first variables of its path."""
    row = table.loc[loop]
    path = " → ".join(row["variables"][:4]) + (" → …" if len(row["variables"]) > 4 else "")
    return f"{loop} ({row['polarity']}): {path}"

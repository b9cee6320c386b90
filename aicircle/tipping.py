"""Tipping points: where the long-run outcome of a model changes (docs/design.md §4).

Two independent ways, both generic (any model aicircle loads):

- *equilibria and bifurcations*: pseudo-arclength continuation of the model's
  equilibria in one parameter, with folds and Hopf points refined by Newton
  (:func:`bifurcations`, built on :mod:`aicircle._continuation`);
- *outcomes*: classify each simulated trajectory and bisect on the parameter
  for several horizons (:func:`outcome_thresholds`), basin stability under
  shocks (:func:`basin_stability`), two-parameter regime maps
  (:func:`regime_map`), time to bust (:func:`time_to_bust`) and the early
  warning of critical slowing down (:func:`leading_eigenvalues`).

Outcomes are judged either by an outcome ``VARIABLE<VALUE`` or
``VARIABLE>VALUE`` (the outcome of a run is whether the condition holds at the
horizon) or by a :class:`Classifier`, the protocol a study fills with its own
definitions (the capital-circle study's are in
:mod:`aicircle.study.outcomes`). There is no default: a caller passes one.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from . import _check, _limits
from .errors import InvalidInput, UnknownName
from .observables import index_at

__all__ = [
    "Classifier", "Outcome", "basin_stability", "bifurcations", "leading_eigenvalues", "outcome_thresholds",
    "parse_outcome", "regime_map", "time_to_bust", "tipping",
]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A user's outcome ``VARIABLE<VALUE`` or ``VARIABLE>VALUE``, read at the horizon."""

    variable: str
    op: str
    value: float

    @property
    def label(self) -> str:
        return f"{self.variable}{self.op}{self.value:g}"

    def evaluate(self, times, values, horizon) -> np.ndarray:
        """Outcome label of each run: the condition, or 'not ' + the condition."""
        h = index_at(times, horizon)
        x = np.atleast_2d(values)[:, h]
        holds = x < self.value if self.op == "<" else x > self.value
        return np.where(holds, self.label, f"not {self.label}")


@runtime_checkable
class Classifier(Protocol):
    """The outcome protocol: what a study fills to name the outcome of each run.

    Attributes
    ----------
    name : str
        Its name (for reports and error messages).
    variables : tuple of str
        The model variables it reads; ``values`` below holds them in this
        order, each an array of shape (n_sets, n_times) over ``times``.
    """

    name: str
    variables: tuple

    def labels(self, times, values, horizon) -> np.ndarray:
        """The outcome of each run at ``horizon``, shape (n_sets,) of str."""

    def first_bust(self, times, values, start=None) -> np.ndarray:
        """Time of each run's first bust (the outcome a threshold search cares about) at or after
        ``start``, NaN where none, shape (n_sets,)."""


def applies_to(classifier: Classifier, model) -> bool:
    """Whether ``model`` defines every variable ``classifier`` reads."""
    try:
        for name in classifier.variables:
            model.resolve(name)
    except UnknownName:
        return False
    return True


_OUTCOME = re.compile(r"^\s*(?P<var>[^<>]+?)\s*(?P<op>[<>])\s*(?P<value>[^<>]+?)\s*$")


def parse_outcome(text: str, model=None) -> Outcome:
    """Parse ``'VAR<X'`` or ``'VAR>X'``; with ``model``, check that VAR exists."""
    match = _OUTCOME.match(str(text))
    if not match:
        raise InvalidInput(f"malformed outcome '{text}': expected VARIABLE<VALUE or VARIABLE>VALUE")
    try:
        value = float(match["value"])
    except ValueError:
        raise InvalidInput(f"malformed outcome '{text}': '{match['value']}' is not a number") from None
    if not math.isfinite(value):
        raise InvalidInput(f"malformed outcome '{text}': the value must be finite")
    var = match["var"]
    if model is not None:
        var = _check.one_column(model, "the outcome's variable", model.resolve(var))
    return Outcome(var, match["op"], value)


def _classifier(classifier):
    """``classifier`` checked against the protocol (None stays None)."""
    if classifier is not None and not isinstance(classifier, Classifier):
        raise InvalidInput(f"classifier must be an aicircle.tipping.Classifier (a study's definition of "
                           f"the outcomes), got {classifier!r}")
    return classifier


class _Judge:
    """Runs a batch and labels each run's outcome at each horizon."""

    def __init__(self, model, outcome=None, classifier=None, **simulate_kwargs):
        self.model = model
        self.outcome = outcome
        self.classifier = None if outcome is not None else _classifier(classifier)
        if outcome is None and self.classifier is None:
            raise InvalidInput("no outcome to judge: give an outcome such as 'VARIABLE<VALUE' or a classifier")
        if outcome is None and not applies_to(self.classifier, model):
            needed = " and ".join(self.classifier.variables)
            raise InvalidInput(f"{model.path.name} does not define {needed}; "
                               f"give an outcome such as 'VARIABLE<VALUE'")
        self.columns = [outcome.variable] if outcome else [model.resolve(v) for v in self.classifier.variables]
        self.kwargs = simulate_kwargs

    def check_memory(self, n_sets, final_time, table_columns, what, fewer):
        """Refuse a batch of ``n_sets`` runs too big for memory, before its table is built."""
        run = {**self.kwargs, "final_time": final_time}
        _limits.check_ensemble(self.model, n_sets, len(self.columns), run.pop("chunk_size", 2048), run,
                               what, fewer, result_copies=2, table_columns=table_columns)

    def run(self, table, final_time):
        ds = self.model.simulate_batch(table, return_columns=self.columns, final_time=final_time,
                                       **self.kwargs)
        return ds["time"].to_numpy(), [ds[c].to_numpy() for c in self.columns]

    def labels(self, times, values, horizon):
        if self.outcome is not None:
            return self.outcome.evaluate(times, values[0], horizon)
        return self.classifier.labels(times, values, horizon)


def _table(model, param, values, base=None):
    fixed = {model.resolve(k): v for k, v in _check.mapping("params", base).items()}
    return pd.DataFrame({param: np.asarray(values, dtype=float), **fixed})


def outcome_thresholds(model, param, lo, hi, horizons=None, outcome=None, n_grid=41, tol=None,
                       params=None, classifier=None, **simulate_kwargs) -> list[dict]:
    """Parameter values where the outcome changes, by bisection, for each horizon.

    Parameters
    ----------
    model : aicircle.Model
    param : str
        A parameter (or auxiliary) of the model.
    lo, hi : float
        The range searched, finite, ``lo < hi``.
    horizons : list of float, optional
        Times at which outcomes are read; by default FINAL TIME.
    outcome : Outcome or str, optional
        An outcome ``'VARIABLE<VALUE'``; or else
    classifier : Classifier, optional
        A study's definition of the outcomes (one of the two is needed).
    n_grid : int
        Grid of the first scan (each sign change is then bisected).
    tol : float, optional
        Width at which bisection stops; ``(hi - lo) * 1e-6`` by default.
    params : dict, optional
        Other values held for every run.

    Returns
    -------
    list of dict
        ``{"horizon", "value", "from", "to"}``: going up in ``param`` at
        ``value``, the outcome switches from ``from`` to ``to``.
    """
    param = model.resolve(param)
    lo, hi = _check_range(lo, hi)
    outcome = _outcome(outcome, model)
    judge = _Judge(model, outcome, classifier, **simulate_kwargs)
    final = model.time["final_time"] if "final_time" not in simulate_kwargs else simulate_kwargs["final_time"]
    horizons = sorted(_horizons(horizons, final))
    end = max(horizons)
    tol = (hi - lo) * 1e-6 if tol is None else _check.finite("tol", tol)
    if not tol > 0:
        raise InvalidInput(f"tol must be positive, got {tol!r}")
    n_grid = _check.whole_number("n_grid", n_grid, 2)
    judge.check_memory(n_grid, end, 1 + len(_check.mapping("params", params)), f"a grid of {n_grid:,} runs",
                       "a smaller n_grid")
    grid = np.linspace(lo, hi, n_grid)
    times, values = judge.run(_table(model, param, grid, params), end)
    brackets = []  # [horizon, a, b, label at a, label at b], every horizon's together
    for horizon in horizons:
        labels = judge.labels(times, values, horizon)
        brackets += [[horizon, grid[i], grid[i + 1], labels[i], labels[i + 1]]
                     for i in range(len(grid) - 1) if labels[i] != labels[i + 1]]
    _narrow(judge, model, param, params, brackets, tol, end)
    return [{"horizon": h, "value": float((a + b) / 2), "from": str(la), "to": str(lb)}
            for h, a, b, la, lb in brackets]


#: Points tried inside each bracket per round of the threshold search: a batch of a few dozen
#: runs costs about as much as one (the cost of a step is its Python overhead), so each round
#: narrows every bracket 9-fold for the price of the one bisection step that would halve it.
SECTIONS = 8


def _narrow(judge, model, param, params, brackets, tol, end):
    """Shrink each ``[horizon, a, b, la, lb]`` bracket in place to width ``tol`` around a switch.

    Every round runs ``SECTIONS`` evenly spaced interior points of every bracket wider than
    ``tol``, all horizons in one batch, and keeps the sub-interval where the label first differs
    from the bracket's left label.
    """
    while True:
        active = [b for b in brackets if b[2] - b[1] > tol]
        if not active:
            return
        points = [np.linspace(b[1], b[2], SECTIONS + 2)[1:-1] for b in active]
        t, v = judge.run(_table(model, param, np.concatenate(points), params), end)
        labels = {h: judge.labels(t, v, h) for h in {b[0] for b in active}}
        for i, (b, xs) in enumerate(zip(active, points)):
            labs = labels[b[0]][i * SECTIONS:(i + 1) * SECTIONS]
            changed = np.flatnonzero(labs != b[3])
            if changed.size == 0:  # the switch lies between the last point and b
                b[1] = xs[-1]
                continue
            j = int(changed[0])
            b[1], b[2], b[4] = (xs[j - 1] if j else b[1]), xs[j], labs[j]


def _horizons(horizons, default):
    """A non-empty list of finite times (``[default]`` for None)."""
    if horizons is None:
        return [float(default)]
    if isinstance(horizons, (str, bytes)) or not hasattr(horizons, "__iter__"):
        horizons = [horizons]
    out = [_check.finite("horizons", h) for h in horizons]
    if not out:
        raise InvalidInput("horizons is empty; give at least one time (or None for FINAL TIME)")
    return out


def _pair(name, value):
    """A (lo, hi) pair given as one argument."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise InvalidInput(f"{name} must be a pair (lo, hi), got {value!r}")
    return _check_range(*value)


def _outcome(outcome, model):
    """None, an Outcome, or one parsed from 'VAR<X'."""
    if outcome is None or isinstance(outcome, Outcome):
        return outcome
    if isinstance(outcome, str):
        return parse_outcome(outcome, model)
    raise InvalidInput(f"outcome must be 'VARIABLE<VALUE', 'VARIABLE>VALUE' or an Outcome, got {outcome!r}")


def _check_range(lo, hi):
    lo, hi = _check.finite("range: lo", lo), _check.finite("range: hi", hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InvalidInput(f"range must be finite, got {lo} {hi}")
    if not lo < hi:
        raise InvalidInput(f"range needs LO < HI, got {lo:g} {hi:g}")
    return lo, hi


def time_to_bust(model, table, final_time=None, classifier=None, start=None, **simulate_kwargs) -> np.ndarray:
    """Time of the first bust of each run at or after ``start`` (NaN where none), shape (n_sets,)."""
    _check.table("table", table)
    judge = _Judge(model, None, classifier, **simulate_kwargs)
    end = _check.finite("final_time", final_time) if final_time is not None else model.time["final_time"]
    times, values = judge.run(table, end)
    return judge.classifier.first_bust(times, values, start=start)


def regime_map(model, param_x, range_x, param_y, range_y, n=(25, 25), horizon=None,
               outcome=None, params=None, classifier=None, **simulate_kwargs) -> pd.DataFrame:
    """Outcome over a grid of two parameters, computed in one batch.

    Returns
    -------
    pandas.DataFrame
        Index ``param_y`` values, columns ``param_x`` values, cells the outcome labels.
    """
    px, py = model.resolve(param_x), model.resolve(param_y)
    (x0, x1), (y0, y1) = _pair("range_x", range_x), _pair("range_y", range_y)
    outcome = _outcome(outcome, model)
    judge = _Judge(model, outcome, classifier, **simulate_kwargs)
    if isinstance(n, (str, bytes)) or not hasattr(n, "__len__") or len(n) != 2:
        raise InvalidInput(f"n must be a pair (points along x, points along y), got {n!r}")
    nx, ny = (_check.whole_number("n", k, 2) for k in n)
    fixed = {model.resolve(k): v for k, v in _check.mapping("params", params).items()}
    horizon = model.time["final_time"] if horizon is None else _check.finite("horizon", horizon)
    judge.check_memory(nx * ny, horizon, 2 + len(fixed), f"a regime map of {nx:,} x {ny:,} runs",
                       "a coarser grid n")
    xs, ys = np.linspace(x0, x1, nx), np.linspace(y0, y1, ny)
    gx, gy = np.meshgrid(xs, ys)
    table = pd.DataFrame({px: gx.ravel(), py: gy.ravel(), **fixed})
    times, values = judge.run(table, horizon)
    labels = judge.labels(times, values, horizon).reshape(gy.shape)
    return pd.DataFrame(labels, index=pd.Index(ys, name=py), columns=pd.Index(xs, name=px))


def basin_stability(model, shock, sizes=None, n=400, seed=0, horizon=None, outcome=None,
                    params=None, low=0.0, high=1.0, classifier=None, **simulate_kwargs) -> pd.DataFrame:
    """Share of sampled shocks that end in each regime, with its standard error.

    Parameters
    ----------
    shock : str
        The model variable that sets the shock's size (e.g. ``Confidence Shock Size``).
    n : int
        Shocks sampled uniformly in ``[low, high]`` (seeded).

    Returns
    -------
    pandas.DataFrame
        Index: outcome; columns ``share`` and ``stderr`` (binomial, sqrt(p(1-p)/n)).
    """
    shock = model.resolve(shock)
    outcome = _outcome(outcome, model)
    judge = _Judge(model, outcome, classifier, **simulate_kwargs)
    horizon = model.time["final_time"] if horizon is None else _check.finite("horizon", horizon)
    if sizes is None:
        n = _check.whole_number("n", n, 2)
        low, high = _check.finite("low", low), _check.finite("high", high)
        if not low <= high:
            raise InvalidInput(f"low must not exceed high, got low={low:g}, high={high:g}")
        judge.check_memory(n, horizon, 1 + len(_check.mapping("params", params)),
                           f"basin stability over {n:,} shocks", "a smaller n")
        sizes = np.random.default_rng(_check.seed(seed)).uniform(low, high, size=n)
    else:
        try:
            sizes = np.asarray(sizes, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise InvalidInput(f"sizes must be numbers, got {sizes!r}") from None
        if sizes.size < 2 or not np.all(np.isfinite(sizes)):
            raise InvalidInput(f"sizes must hold at least 2 finite numbers, got {sizes!r}")
    times, values = judge.run(_table(model, shock, sizes, params), horizon)
    labels = judge.labels(times, values, horizon)
    kinds, counts = np.unique(labels, return_counts=True)
    share = counts / len(labels)
    return pd.DataFrame({"share": share, "stderr": np.sqrt(share * (1 - share) / len(labels))},
                        index=pd.Index(kinds, name="outcome"))


# --------------------------------------------------------------------------
# equilibria and bifurcations of a model
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BifurcationResult:
    """Folds and Hopf points of a model's equilibria in one parameter.

    Attributes
    ----------
    param : str
    range : (float, float)
    free : tuple of str
        The states continued (the others were frozen at ``frozen``).
    frozen : dict
        State name -> value held fixed.
    folds : list of dict
        ``{"value": p, "state": {name: value}}``, each saddle-node once, by p.
    hopf : list of dict
        ``{"value": p, "state": {...}, "frequency": omega}`` (rad per time unit).
    diagram : aicircle._continuation.BifurcationDiagram
        The branches, with their stability, for plotting.
    lines : list of dict
        ``{"value": p, "states": {name: [lowest, highest]}}``: each parameter value
        at which a whole line of equilibria exists (``x' = x (g - 1/L)`` at
        ``g = 1/L``), once, with the span of the equilibria continuation met on
        it. Not folds: continuation stands still along such a line.
    """

    param: str
    range: tuple
    free: tuple
    frozen: dict
    folds: list
    hopf: list
    diagram: object
    lines: list = dataclasses.field(default_factory=list)


def model_vector_field(model, param, free=None, state=None, time=None, params=None, smooth=None):
    """A vectorised ``f(y, p)`` for :mod:`aicircle._continuation` from a model.

    Parameters
    ----------
    model : aicircle.Model
    param : str or None
        The parameter ``p`` stands for; None: ``p`` is ignored.
    free : list of str, optional
        The states ``y`` stands for (default: every continuous state).
    state : dict or ndarray, optional
        Values of the frozen states (default: the model's initial state).
    time : float, optional
        Time at which the (possibly time-dependent) equations are evaluated;
        INITIAL TIME by default.
    params : dict, optional
        Other parameter values.
    smooth : float, optional
        Width of the smooth stand-ins for MIN, MAX, IF THEN ELSE, lookups.

    Returns
    -------
    f : callable
    free : tuple of str
    y0 : ndarray, shape (n_free,)
        The free states' values in ``state``.
    frozen : dict
    """
    param = None if param is None else model.resolve(param)
    names = list(model.state_names)
    n_cont = len(model.continuous_states)
    if n_cont != len(names):
        raise InvalidInput(f"{model.path.name} has discrete states (SAMPLE IF TRUE or DELAY FIXED): "
                           f"its equilibria are not defined by a vector field")
    if free is None:
        free_idx = list(range(n_cont))
    else:
        free_idx = []
        for name in free:
            canon = model.resolve(name)
            if canon not in names:
                raise InvalidInput(f"'{canon}' is not a state of {model.path.name}")
            free_idx.append(names.index(canon))
    base_params = dict(params or {})
    if isinstance(state, dict):
        full = model.initial_state(base_params or None).astype(float)
        for k, v in state.items():
            full[names.index(model.resolve(k))] = float(v)
    elif state is None:
        full = model.initial_state(base_params or None).astype(float)
    else:
        full = np.asarray(state, dtype=float).copy()
    t = model.time["initial_time"] if time is None else float(time)
    free_idx = np.asarray(free_idx, dtype=int)

    def f(y, p):
        y = np.asarray(y, dtype=float)
        m = y.shape[1]
        Y = np.repeat(full[:, None], m, axis=1)
        Y[free_idx] = y
        values = dict(base_params)
        if param is not None:
            values[param] = np.broadcast_to(np.asarray(p, dtype=float), (m,)).copy()
        return model.derivative(t, Y, values, smooth=smooth)[free_idx]

    frozen = {names[i]: float(full[i]) for i in range(len(names)) if i not in set(free_idx.tolist())}
    return f, tuple(names[i] for i in free_idx), full[free_idx].copy(), frozen


def bifurcations(model, param, lo, hi, free=None, state=None, time=None, params=None, smooth=None,
                 guesses=None, seed=0, n_starts=64, box=(-10.0, 10.0), **continuation) -> BifurcationResult:
    """Equilibria of ``model`` continued in ``param`` over [lo, hi]; their folds and Hopf points.

    The starting points are the model's (free) state, any ``guesses``, and
    ``n_starts`` points of a Latin hypercube over ``box`` (seeded). See
    :func:`model_vector_field` for ``free``, ``state``, ``time``, ``params``
    and ``smooth``; other keywords go to
    :func:`aicircle._continuation.bifurcations`.
    """
    from . import _continuation

    lo, hi = _check_range(lo, hi)
    n_starts = _check.whole_number("n_starts", n_starts, 0)
    box = _pair("box", box)
    f, names, y0, frozen = model_vector_field(model, param, free, state, time, params, smooth)
    starts = [y0[:, None]]
    if guesses is not None:
        try:
            g = np.asarray(guesses, dtype=float)
        except (TypeError, ValueError):
            g = None
        g = g[:, None] if g is not None and g.ndim == 1 else g
        if g is None or g.ndim != 2 or g.shape[0] != len(names):
            raise InvalidInput(f"guesses must have shape ({len(names)}, n_guesses), one row per free state "
                               f"({', '.join(names)}); got {guesses!r}")
        starts.append(g)
    rng = np.random.default_rng(_check.seed(seed))
    if n_starts:
        a, b = box
        # Latin hypercube: one point in each of n_starts strata per coordinate
        u = (rng.permuted(np.tile(np.arange(n_starts), (len(names), 1)), axis=1)
             + rng.uniform(size=(len(names), n_starts))) / n_starts
        starts.append(a + (b - a) * u)
    diagram = _continuation.bifurcations(f, len(names), (lo, hi), np.hstack(starts), seed=seed,
                                         n_starts=0, **continuation)

    def state_of(b):
        return {**{n: float(v) for n, v in zip(names, b.state)}}

    on_line = [_on_a_line_of_equilibria(f, b.state, b.p, (lo, hi)) for b in diagram.folds]
    folds = [{"value": float(b.p), "state": state_of(b)} for b, line in zip(diagram.folds, on_line) if not line]
    hopf = [{"value": float(b.p), "state": state_of(b), "frequency": float(b.frequency)}
            for b in diagram.hopf]
    lines = _lines([b for b, line in zip(diagram.folds, on_line) if line], names, (lo, hi))
    return BifurcationResult(model.resolve(param), (lo, hi), names, frozen, folds, hopf, diagram, lines)


def _on_a_line_of_equilibria(f, y, p, p_range) -> bool:
    """Whether the 'fold' at ``(y, p)`` lies on a segment of equilibria at that same ``p``.

    Continuation along a line of equilibria (``x' = x (g - 1/L)`` at ``g = 1/L``: every
    ``x`` is one) sees ``p`` stand still at every point and reports each as a fold. A
    saddle-node is isolated: along the null vector ``v`` of ``df/dy``, ``f(y + e v, p)``
    grows like ``e**2``. On a line it stays zero. So: ``f`` is checked at ``y + e v`` for
    small and large ``e`` on both sides, against the size ``f`` takes over the range.
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    scale = max(1.0, float(np.max(np.abs(y))))
    h = 1e-6 * scale
    columns = np.hstack([y[:, None] + h * np.eye(n), y[:, None] - h * np.eye(n)])
    with np.errstate(all="ignore"):
        values = f(columns, np.full(2 * n, p))
        jacobian = (values[:, :n] - values[:, n:]) / (2 * h)
        if not np.all(np.isfinite(jacobian)):
            return False
        v = np.linalg.svd(jacobian)[2][-1]  # the right singular vector of the smallest singular value
        lo, hi = p_range
        ends = f(np.repeat(y[:, None], 2, axis=1), np.array([lo, hi]))  # how large f is over the range
        size = max(float(np.max(np.abs(ends))), 1e-300)
        steps = np.array([1e-3, -1e-3, 0.1, -0.1]) * scale
        moved = f(y[:, None] + v[:, None] * steps, np.full(steps.size, p))
    return bool(np.all(np.isfinite(moved)) and np.max(np.abs(moved)) <= 1e-6 * size)


def _lines(points, names, p_range) -> list:
    """``{"value": p, "states": {name: [lowest, highest]}}`` once per parameter value of ``points``."""
    width = p_range[1] - p_range[0]
    groups: list = []
    for b in sorted(points, key=lambda b: b.p):
        if groups and abs(b.p - groups[-1][-1].p) <= 1e-6 * width:
            groups[-1].append(b)
        else:
            groups.append([b])
    out = []
    for group in groups:
        states = np.array([b.state for b in group])
        out.append({"value": float(np.median([b.p for b in group])),
                    "states": {name: [float(states[:, i].min()), float(states[:, i].max())]
                               for i, name in enumerate(names)}})
    return out


def leading_eigenvalues(model, times=None, params=None, free=None, smooth=None, **simulate_kwargs):
    """Critical slowing down: the leading eigenvalue of the Jacobian along a trajectory.

    The run is simulated (``simulate_kwargs``), and at each saved time the
    Jacobian of the free states (all continuous states by default, the others
    frozen at their values at that time) is evaluated; its eigenvalue with the
    largest real part rises towards 0 as a fold approaches.

    Returns
    -------
    pandas.Series
        Leading real part, indexed by time.
    """
    from . import _continuation

    df = model.simulate(params=params, return_columns=list(model.state_names), **simulate_kwargs)
    if times is not None:
        times = [_check.finite("times", t) for t in np.atleast_1d(np.asarray(times, dtype=object))]
        df = df.loc[[df.index[np.argmin(np.abs(df.index - t))] for t in times]]
    out = []
    for t, row in df.iterrows():
        # the vector field at time t with this run's parameters (no parameter is varied)
        f, _, y, _ = model_vector_field(model, None, free, row.to_numpy(), t, params, smooth)
        out.append(float(np.max(np.real(_continuation.leading_eigenvalue(f, y, 0.0)))))
    return pd.Series(out, index=df.index, name="leading_eigenvalue")


def tipping(model, param, lo, hi, outcome=None, seed=0, horizons=None, params=None, classifier=None,
            **kwargs) -> dict:
    """docs/design.md §5's ``tipping`` result: folds, Hopf points and outcome thresholds.

    Folds and Hopf points come from continuation of all continuous states
    (none for a model with discrete states or without equilibria in the
    range); thresholds use ``outcome`` if given, else ``classifier`` if the
    model defines its variables, and are ``[]`` otherwise. ``params`` holds
    the other parameters' values (e.g. a calibration). A parameter value at
    which a whole line of equilibria exists is not a fold: it is reported once,
    under the extra key ``lines`` (see :class:`BifurcationResult`), present only
    when there is one.
    """
    param = model.resolve(param)
    lo, hi = _check_range(lo, hi)
    outcome = _outcome(outcome, model)
    base = {k: v for k, v in (params or {}).items() if model.resolve(k) != param}
    folds, hopf, lines, note = [], [], [], None
    if len(model.continuous_states) == len(model.state_names) and model.state_names:
        res = bifurcations(model, param, lo, hi, seed=seed, params=base or None, **kwargs)
        folds, hopf, lines = res.folds, res.hopf, res.lines
    else:
        note = "the model has discrete states; no continuation of equilibria"
    thresholds = []
    chosen = _classifier(classifier) if outcome is None else None
    if outcome is not None or (chosen is not None and applies_to(chosen, model)):
        thresholds = outcome_thresholds(model, param, lo, hi, horizons=horizons, outcome=outcome,
                                        params=base or None, classifier=chosen)
    result = {"param": param, "range": [lo, hi], "folds": folds, "hopf": hopf,
              "thresholds": thresholds}
    if lines:  # only when there are: docs/design.md §5's keys are the others
        result["lines"] = lines
    if note:
        result["note"] = note
    return result

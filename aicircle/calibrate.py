"""Calibration against targets, with identifiability, profiles and an MCMC ensemble.

The pipeline (each step a function; :func:`calibrate` runs them all):

1. :class:`Problem` — the weighted residuals of a model against a target file
   (docs/design.md §3), for many parameter sets at once: one batch run per
   evaluation, saved at every TIME STEP so that integrals are taken on the
   integration grid. Parameters are searched in log space (linear where a
   range reaches zero or below); each calibrated parameter carries a prior as
   a pseudo-observation: its sourced model value with a log-sigma of a quarter
   of its declared log-range (the range is then +-2 sigma).
2. :func:`screen` — which parameters the data can inform: the weighted
   sensitivity matrix at the model's values (one batch of P+1 runs), scaled by
   each parameter's prior width, and a QR factorisation with column pivoting
   (subset selection): parameters are taken in pivot order while their pivot
   stays above ``rel_tol`` of the first. The rest stay at their sourced values.
3. :func:`fit` — multi-start :func:`scipy.optimize.least_squares` (TRF, bounds)
   from the model's values and from seeded starts in the box, then the best
   start polished; the Jacobian of every iteration is one batch of k+1 runs.
4. :func:`identifiability` — rank and sloppy directions of the weighted
   Jacobian of the targets at the optimum (SVD), each parameter in units of
   its prior width.
5. :func:`profiles` — profile likelihoods: each parameter fixed on a grid, the
   others re-optimised; the 95% interval where chi2 rises by 3.84.
6. :func:`sample_posterior` — an ``emcee`` ensemble (vectorised: every walker
   of a step in one batch), with the residuals scaled by the Birge ratio
   sqrt(chi2_min / dof) when the fit is worse than its sigmas claim.

Steps 3 and 5 take an ``executor`` (:func:`process_pool`, one process per
core): the fit's starts and the profiles' parameters are shared out among its
processes; :func:`calibrate` runs the MCMC in one of them while the others
work through the profiles (both need only the fit). The MCMC itself stays in
one process: its batches of walkers are too small for a split to pay. Every
residual depends on its own parameter set alone, so the results equal a run in
one process, bit for bit.

The toolkit knows no study: a target file is read in the ``vocabulary`` of
observables its caller passes (:func:`aicircle.observables.vocabulary`), the
parameters never calibrated are the ``switches`` it passes, and the targets
that report actuals (not plans) are the ``actuals`` mask it passes. The
capital-circle study fills all three (:mod:`aicircle.study.calibration`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import multiprocessing
import platform
import time as _time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from . import _check
from ._io import read_capped
from .errors import InvalidInput
from .observables import errors, find_observables, model_time, observe, read_targets, residuals, windows_extent

__all__ = ["CalibrationResult", "Problem", "calibrate", "fit", "fit_statistics", "identifiability", "process_pool",
           "profiles", "read_parameters", "read_results", "sample_posterior", "screen", "validate", "write_results"]

CHI2_95 = 3.84  # the 95% quantile of chi-squared with one degree of freedom


class Problem:
    """Weighted residuals of ``model`` against ``targets`` as a function of some parameters.

    Parameters
    ----------
    model : aicircle.Model
    targets : pandas.DataFrame or path
        As returned by :func:`aicircle.observables.read_targets`, or a target
        file read in ``vocabulary``.
    free : list of str
        Parameters to calibrate (they need finite declared ranges).
    fixed : dict, optional
        Other parameter values held for every run.
    priors : bool
        Add each free parameter's prior as a pseudo-observation.
    vocabulary : mapping of str to aicircle.observables.Observable, optional
        The observables a target file may name; needed when ``targets`` is a path.
    """

    def __init__(self, model, targets, free, fixed=None, priors=True, vocabulary=None):
        self.model = model
        targets = _read(targets, vocabulary)
        if isinstance(free, str) or not isinstance(free, (list, tuple, pd.Index)):
            raise InvalidInput(f"free must be a list of parameter names, got {free!r}")
        self.targets = targets.reset_index(drop=True)
        self.fixed = {model.resolve(k): _check.finite(f"fixed['{k}']", v)
                      for k, v in _check.mapping("fixed", fixed).items()}
        names = find_observables(model.variables, dict.fromkeys(self.targets["observable"]))
        missing = sorted(set(self.targets["observable"]) - set(names))
        if missing:
            raise InvalidInput(f"{model.path.name} defines no variable for observable(s) "
                               f"{', '.join(missing)}")
        self.outputs = [names[o] for o in dict.fromkeys(self.targets["observable"])]
        self.free = [model.resolve(p) for p in free]
        table = model.parameters
        lo, hi, x0, log = [], [], [], []
        for p in self.free:
            if p not in table.index:
                raise InvalidInput(f"'{p}' is not a parameter of {model.path.name}")
            a, b, v = (float(table.loc[p, c]) for c in ("min", "max", "value"))
            if not (np.isfinite(a) and np.isfinite(b) and a < b):
                raise InvalidInput(f"'{p}' needs a finite declared range [min,max] to be calibrated")
            use_log = a > 0
            log.append(use_log)
            f = np.log if use_log else (lambda z: z)
            lo.append(f(a))
            hi.append(f(b))
            x0.append(f(min(max(v, a), b)))
        self.log = np.array(log, dtype=bool)
        self.lower, self.upper = np.array(lo), np.array(hi)
        self.x_default = np.array(x0)
        self.prior_sigma = (self.upper - self.lower) / 4.0
        self.priors = bool(priors)
        start, end = windows_extent(self.targets)
        t = model.time
        if start < t["initial_time"]:
            raise InvalidInput(f"targets start at {start:.3f}, before the model's INITIAL TIME "
                               f"{t['initial_time']:g}")
        # runs stop (or are extended) where the last window ends, on the step grid
        self.time_step = t["time_step"]
        steps = math.ceil((end - t["initial_time"]) / self.time_step - 1e-9) + 1
        self.final_time = t["initial_time"] + steps * self.time_step
        self.n_evaluations = 0

    @property
    def k(self) -> int:
        return len(self.free)

    def to_params(self, X) -> pd.DataFrame:
        """Parameter table (one row per set) from search coordinates, shape (n_sets, k)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.ndim != 2 or X.shape[1] != self.k:
            raise InvalidInput(f"X must have shape (n_sets, {self.k}), one column per free parameter "
                               f"({', '.join(self.free)}); got {X.shape}")
        values = np.where(self.log, np.exp(X), X)
        table = pd.DataFrame(values, columns=self.free)
        if self.fixed:  # all at once: a column at a time fragments the frame (PerformanceWarning)
            fixed = pd.DataFrame({k: np.full(len(table), v) for k, v in self.fixed.items()})
            table = pd.concat([table.drop(columns=[k for k in self.fixed if k in table]), fixed],
                              axis=1)
        return table

    def from_params(self, values) -> np.ndarray:
        """Search coordinates from parameter values (dict or array in ``free`` order)."""
        if isinstance(values, dict):
            missing = [p for p in self.free if p not in values]
            if missing:
                raise InvalidInput(f"values lack the free parameter '{missing[0]}'")
            values = [values[p] for p in self.free]
        v = np.asarray(values, dtype=float)
        return np.where(self.log, np.log(np.where(self.log, v, 1.0)), v)

    def predict(self, X, fixed_override=None) -> np.ndarray:
        """Predicted targets, shape (n_sets, n_targets)."""
        table = self.to_params(X)
        if fixed_override:
            table = table.assign(**fixed_override)
        self.n_evaluations += len(table)
        ds = self.model.simulate_batch(table, solver="euler", return_columns=self.outputs,
                                       final_time=self.final_time, saveper=self.time_step,
                                       chunk_size=4096)
        values = {name: ds[name].to_numpy() for name in self.outputs}
        return observe(self.targets, ds["time"].to_numpy(), values)

    def residuals(self, X) -> np.ndarray:
        """Weighted residuals, targets then priors, shape (n_sets, n_targets + k)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        r = residuals(self.targets, self.predict(X))
        if self.priors:
            r = np.hstack([r, (X - self.x_default) / self.prior_sigma])
        return r

    def jacobian(self, x, r0=None, step=1e-3):
        """Forward-difference Jacobian of the residuals at ``x``: one batch of k (+1) runs."""
        x = np.asarray(x, dtype=float)
        h = _difference_steps(x, self.upper, step)
        X = np.repeat(x[None], self.k, axis=0) + np.diag(h)
        if r0 is None:
            X = np.vstack([x[None], X])
            R = self.residuals(X)
            r0, R = R[0], R[1:]
        else:
            R = self.residuals(X)
        return ((R - r0) / h[:, None]).T, r0


def _read(targets, vocabulary):
    """``targets`` as read_targets' table: a table as it is, a path read in ``vocabulary``."""
    if isinstance(targets, (str, Path)):
        if vocabulary is None:
            raise InvalidInput(f"targets {str(targets)!r} is a file: pass the vocabulary= of observables it "
                               f"is written in (aicircle.observables.vocabulary), or read_targets' table")
        return read_targets(targets, vocabulary)
    if not isinstance(targets, pd.DataFrame) or "observable" not in targets:
        raise InvalidInput(f"targets must be a target file or read_targets' table, got {type(targets).__name__}")
    return targets


def _difference_steps(x, upper, step=1e-3):
    """Forward-difference steps for the coordinates ``x``: ``step`` relative (absolute below 1),
    taken inwards where they would cross ``upper``, so the perturbed sets stay in the box."""
    h = step * np.maximum(1.0, np.abs(x))
    return np.where(x + h > upper, -h, h)


@dataclasses.dataclass
class Fit:
    x: np.ndarray
    chi2: float
    starts: list  # (start index, chi2, success) of every start, then ("polish", ...)
    jacobian: np.ndarray
    residuals: np.ndarray


def screen(model, targets, candidates=None, k_max=10, rel_tol=0.02, fixed=None, switches=()):
    """Choose the parameters the targets can inform (sensitivity matrix + pivoted QR).

    Parameters
    ----------
    candidates : list of str, optional
        Parameters considered; by default every parameter with a finite range
        except the ``switches``.
    switches : collection of str
        Parameters never calibrated (a study's scenario inputs, off in
        calibration), as the model spells them.
    k_max : int
        At most this many are chosen.
    rel_tol : float
        A parameter is chosen while its QR pivot is above ``rel_tol`` times
        the first (below it, its effect is a combination of those before).

    Returns
    -------
    pandas.DataFrame
        One row per candidate: ``influence`` (norm of its scaled sensitivity
        column), ``pivot`` (|R_jj| / |R_11| in pivot order, NaN after the
        cut), ``chosen``.
    """
    from scipy.linalg import qr

    k_max = _check.whole_number("k_max", k_max)
    table = model.parameters
    if candidates is None:
        switches = _switches(model, switches)
        candidates = [p for p in table.index if np.isfinite(table.loc[p, "min"])
                      and np.isfinite(table.loc[p, "max"]) and table.loc[p, "min"] < table.loc[p, "max"]
                      and p not in switches]
    prob = Problem(model, targets, candidates, fixed=fixed, priors=False)
    J, _ = prob.jacobian(prob.x_default)
    S = J * prob.prior_sigma[None, :]  # effect of a one-sigma prior change of each parameter
    influence = np.linalg.norm(S, axis=0)
    _, R, piv = qr(S, pivoting=True, mode="economic")
    diag = np.abs(np.diag(R))
    rel = diag / diag[0] if diag.size and diag[0] > 0 else np.zeros_like(diag)
    chosen = []
    pivots = np.full(len(candidates), np.nan)
    for j, col in enumerate(piv[: len(rel)]):
        pivots[col] = rel[j]
        if rel[j] >= rel_tol and len(chosen) < k_max:
            chosen.append(col)
    out = pd.DataFrame({"influence": influence, "pivot": pivots,
                        "chosen": [i in chosen for i in range(len(candidates))]},
                       index=pd.Index([prob.free[i] for i in range(len(candidates))], name="parameter"))
    return out.sort_values(["chosen", "pivot"], ascending=[False, False])


def _switches(model, switches) -> set:
    """``switches`` as the model spells them (a set)."""
    if isinstance(switches, str) or not hasattr(switches, "__iter__"):
        raise InvalidInput(f"switches must be a collection of parameter names, got {switches!r}")
    return {model.resolve(name) for name in switches}


def fit(problem, n_starts=8, seed=0, max_nfev=60, polish_nfev=200, progress=False, x0=None, executor=None):
    """Multi-start least squares in search coordinates; the same seed gives the same fit.

    Every start runs for at most ``max_nfev`` evaluations; the best is then
    polished (run on from where it stopped) for at most ``polish_nfev`` more,
    so the budget goes where it matters. ``Fit.starts`` lists every start and,
    last, the polish (start ``"polish"``). The first start is ``x0`` (search
    coordinates, e.g. a previous fit's) if given, else the model's values; the
    others are drawn uniformly in the box. With an ``executor`` (see
    :func:`process_pool`) the starts run in its processes, with equal results.
    """
    from .integrate import progress as bar

    n_starts = _check.whole_number("n_starts", n_starts)
    rng = np.random.default_rng(_check.seed(seed))
    starts = [problem.x_default.copy() if x0 is None else np.asarray(x0, dtype=float).copy()]
    for _ in range(max(0, n_starts - 1)):
        starts.append(rng.uniform(problem.lower, problem.upper))
    best, record = None, []
    solved = _map(executor, _solve, problem, [(x, max_nfev) for x in starts])
    for i, (result, success) in enumerate(bar(solved, progress, "fit", unit="start", total=len(starts))):
        record.append((i, result.chi2, success))
        if best is None or result.chi2 < best.chi2:
            best = result
    if polish_nfev:
        polished, success = _solve(problem, best.x, polish_nfev)
        record.append(("polish", polished.chi2, success))
        if polished.chi2 < best.chi2:
            best = polished
    best.starts = record
    return best


def _solve(problem, x0, nfev):
    """One start of :func:`fit`: ``least_squares`` (TRF, bounds) from ``x0``."""
    from scipy.optimize import least_squares

    span = problem.upper - problem.lower
    x0 = np.clip(x0, problem.lower + 1e-9 * span, problem.upper - 1e-9 * span)
    cache = {}

    # Every point is evaluated with its Jacobian's k steps in one batch: a batch of k+1 runs
    # costs little more than one run, and least_squares asks for the Jacobian at every point
    # it accepts, so each iteration takes one batch instead of two (with equal results: a
    # run does not depend on the others of its batch).
    def fun(x):
        J, r = problem.jacobian(x)
        cache["x"], cache["J"] = x.copy(), J
        return r

    def jac(x):
        if "x" in cache and np.array_equal(cache["x"], x):
            return cache["J"]
        return problem.jacobian(x)[0]

    res = least_squares(fun, x0, jac=jac, bounds=(problem.lower, problem.upper), method="trf",
                        x_scale="jac", max_nfev=nfev, xtol=1e-8, ftol=1e-8)
    return Fit(res.x, float(2 * res.cost), [], res.jac, res.fun), bool(res.success)


# --------------------------------------------------------------------------
# processes: each holds the problem once; work goes out as small arguments
# --------------------------------------------------------------------------

_WORKER: dict = {}


def process_pool(problem, workers=None):
    """A pool of ``workers`` processes (default: one per core), each holding ``problem``.

    Pass it as ``executor`` to :func:`fit` and :func:`profiles` with the same ``problem``; close it with ``with``.
    The processes are spawned (not forked), so a pool is safe from a threaded
    program.
    """
    return _ProcessPool(problem, _workers(workers))


def _workers(workers) -> int:
    """``workers`` checked; None: one per core."""
    import os

    if workers is None:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"workers must be a positive whole number, got {workers!r}")
    return workers


class _ProcessPool(ProcessPoolExecutor):
    def __init__(self, problem, workers):
        super().__init__(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_hold,
                         initargs=(problem,))
        self.n_workers = workers


def _hold(problem):
    _WORKER["problem"] = problem


def _call(func, args):
    return func(_WORKER["problem"], *args)


def _map(executor, func, problem, arguments):
    """``func(problem, *args)`` for each of ``arguments``, in order: here, or in the pool's processes."""
    if executor is None:
        return (func(problem, *args) for args in arguments)
    return executor.map(_call, [func] * len(arguments), arguments)


def identifiability(jacobian, names, rel_tol=1e-3):
    """Rank and sloppy directions of a weighted Jacobian (SVD), shape (n_residuals, len(names)).

    Returns
    -------
    dict
        ``singular_values``, ``rank`` (singular values above ``rel_tol`` of the
        largest), ``sloppiest`` (the right singular vector of the smallest
        singular value, as {parameter: component}) and ``stiffest``.
    """
    try:
        jacobian = np.asarray(jacobian, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInput(f"jacobian must be a matrix of numbers, got {jacobian!r}") from None
    if jacobian.ndim != 2 or jacobian.shape[1] != len(names) or not np.all(np.isfinite(jacobian)):
        raise InvalidInput(f"jacobian must be a finite matrix with one column per name of names "
                           f"({len(names)}), got shape {jacobian.shape}")
    _, s, vt = np.linalg.svd(jacobian, full_matrices=False)
    rank = int(np.sum(s > rel_tol * s[0])) if s.size else 0
    return {"singular_values": s.tolist(), "rank": rank, "n_parameters": len(names),
            "stiffest": dict(zip(names, np.round(vt[0], 4).tolist())),
            "sloppiest": dict(zip(names, np.round(vt[-1], 4).tolist()))}


def _lm_batch(problem, X0, free_cols, n_iter=12, lam0=1e-2):
    """Levenberg-Marquardt on many problems at once, each with some coordinates fixed.

    Row ``g`` of ``X0`` is problem ``g``'s start; only the columns in
    ``free_cols`` move (within the box). Every iteration evaluates the
    residuals and forward-difference Jacobians of all problems in one batch of
    ``G * (m + 1)`` runs, so a profile's grid points are optimised together.

    Returns
    -------
    X : ndarray, shape (G, k)
    chi2 : ndarray, shape (G,)
    """
    X = np.array(X0, dtype=float)
    G, m = len(X), len(free_cols)
    lam = np.full(G, lam0)
    lo, hi = problem.lower[free_cols], problem.upper[free_cols]

    def evaluate(points, with_jacobian):
        """Residuals at ``points`` and, if asked, their Jacobians, from one batch of runs."""
        if not with_jacobian:
            return problem.residuals(points), None
        h = _difference_steps(points[:, free_cols], hi)
        P = np.repeat(points[:, None, :], m + 1, axis=1)
        P[:, 1 + np.arange(m), free_cols] += h
        R = problem.residuals(P.reshape(G * (m + 1), -1)).reshape(G, m + 1, -1)
        return R[:, 0], (R[:, 1:] - R[:, :1]) / h[:, :, None]  # r (G, n_res), J (G, m, n_res)

    # A point is evaluated with its Jacobian's steps in one batch; a rejected step keeps
    # the point, and so its Jacobian.
    r, J = evaluate(X, True)
    chi2 = np.sum(r * r, axis=1)
    for it in range(n_iter):
        JJ = J @ J.transpose(0, 2, 1)
        g = J @ r[:, :, None]
        step = np.empty((G, m))
        for i in range(G):
            A = JJ[i] + lam[i] * np.diag(np.diag(JJ[i]) + 1e-12)
            step[i] = -np.linalg.lstsq(A, g[i, :, 0], rcond=None)[0]
        trial = X.copy()
        trial[:, free_cols] = np.clip(X[:, free_cols] + step, lo, hi)
        r_t, J_t = evaluate(trial, it < n_iter - 1)  # after the last step no Jacobian is needed
        chi2_t = np.sum(r_t * r_t, axis=1)
        better = chi2_t < chi2
        X[better], r[better], chi2[better] = trial[better], r_t[better], chi2_t[better]
        if J_t is not None:
            J[better] = J_t[better]
        lam = np.where(better, lam / 3, lam * 4)
    return X, chi2


def profiles(problem, best, n_points=7, n_iter=8, progress=False, executor=None):
    """Profile likelihood of each calibrated parameter and its 95% interval.

    Each parameter is fixed on ``n_points`` values spanning its box (plus the
    optimum) and the others are re-optimised, warm-started from the optimum,
    by Levenberg-Marquardt run on all the grid points at once (:func:`_lm_batch`).
    With an ``executor`` (see :func:`process_pool`) the parameters' profiles
    run in its processes, with equal results.

    Returns
    -------
    curves : pandas.DataFrame
        Columns ``parameter, x, value, delta_chi2``.
    intervals : pandas.DataFrame
        Index parameter; ``value, lo95, hi95, lo_bounded, hi_bounded``
        (bounded: the profile stays below 3.84 up to the box's edge).
    """
    from .integrate import progress as bar

    rows, intervals = [], []
    done = _map(executor, _profile, problem, [(best, j, n_points, n_iter) for j in range(problem.k)])
    for curve, interval in bar(done, progress, "profiles", unit="param", total=problem.k):
        rows += curve
        intervals.append(interval)
    return pd.DataFrame(rows), pd.DataFrame(intervals).set_index("parameter")


def _posterior(problem, best, n_steps, burn, seed):
    """:func:`sample_posterior` as :func:`calibrate` runs it, for a pool's process."""
    return sample_posterior(problem, best, n_steps=n_steps, burn=burn, seed=seed)


def _profile(problem, best, j, n_points, n_iter):
    """The profile of parameter ``j``: its curve's rows and its interval."""
    grid = np.unique(np.concatenate([np.linspace(problem.lower[j], problem.upper[j], n_points),
                                     [best.x[j]]]))
    others = np.array([i for i in range(problem.k) if i != j], dtype=int)
    X0 = np.repeat(best.x[None], len(grid), axis=0)
    X0[:, j] = grid
    if len(others):
        _, chis = _lm_batch(problem, X0, others, n_iter=n_iter)
    else:
        r = problem.residuals(X0)
        chis = np.sum(r * r, axis=1)
    d = chis - min(best.chi2, chis.min())
    conv = (lambda z: math.exp(z)) if problem.log[j] else (lambda z: z)
    curve = [{"parameter": problem.free[j], "x": xj, "value": conv(xj), "delta_chi2": dj}
             for xj, dj in zip(grid, d)]
    lo, lo_b = _crossing(grid, d, best.x[j], -1)
    hi, hi_b = _crossing(grid, d, best.x[j], +1)
    return curve, {"parameter": problem.free[j], "value": conv(best.x[j]), "lo95": conv(lo),
                   "hi95": conv(hi), "lo_bounded": lo_b, "hi_bounded": hi_b}


def _crossing(grid, d, x_best, direction):
    """Where the profile crosses CHI2_95 going from the optimum in ``direction``.

    Interpolates sqrt(delta chi2), which is linear in the parameter for a
    quadratic profile, so a coarse grid still gives the right crossing
    (interpolating delta chi2 itself puts it far too close to the optimum).
    """
    order = np.argsort(grid)
    g, v = grid[order], np.sqrt(np.maximum(d[order], 0.0))
    level = math.sqrt(CHI2_95)
    i0 = int(np.argmin(np.abs(g - x_best)))
    idx = range(i0, -1, -1) if direction < 0 else range(i0, len(g))
    prev = None
    for i in idx:
        if prev is not None and v[i] >= level > v[prev]:
            w = (level - v[prev]) / (v[i] - v[prev])
            return float(g[prev] + w * (g[i] - g[prev])), False
        prev = i
    return float(g[0] if direction < 0 else g[-1]), True


def sample_posterior(problem, best, n_walkers=None, n_steps=300, burn=100, thin=5, seed=0,
                     progress=False):
    """An ensemble of plausible parameter sets (emcee, vectorised over walkers).

    Returns
    -------
    ensemble : pandas.DataFrame
        One row per kept sample, columns the free parameters (model units).
    info : dict
        ``birge`` (the residual scale used), ``acceptance``, ``n_samples``.
    """
    import emcee

    if not 0 <= burn < n_steps:
        raise InvalidInput(f"MCMC burn-in {burn} must be below the number of steps {n_steps}")
    seed = _check.seed(seed)
    k = problem.k
    n_walkers = max(2 * k + 2, 16) if n_walkers is None else int(n_walkers)
    n_data = len(problem.targets)
    dof = max(1, n_data - k)
    birge = max(1.0, math.sqrt(best.chi2 / dof))

    def log_prob(X):
        X = np.atleast_2d(X)
        inside = np.all((X >= problem.lower) & (X <= problem.upper), axis=1)
        out = np.full(len(X), -np.inf)
        if inside.any():
            r = problem.residuals(X[inside])
            out[inside] = -0.5 * np.sum(r * r, axis=1) / birge**2
        return out

    rng = np.random.default_rng(seed)
    span = problem.upper - problem.lower
    p0 = best.x + 1e-3 * span * rng.standard_normal((n_walkers, k))
    p0 = np.clip(p0, problem.lower + 1e-6 * span, problem.upper - 1e-6 * span)
    sampler = emcee.EnsembleSampler(n_walkers, k, log_prob, vectorize=True)
    # emcee draws its moves from a legacy RandomState: seed it from ours
    sampler.random_state = np.random.RandomState(int(rng.integers(2**31 - 1))).get_state()
    sampler.run_mcmc(p0, n_steps, progress=progress)
    chain = sampler.get_chain(discard=burn, thin=thin, flat=True)
    ensemble = problem.to_params(chain)[problem.free]
    info = {"birge": birge, "acceptance": float(np.mean(sampler.acceptance_fraction)),
            "n_samples": len(ensemble), "n_walkers": n_walkers, "n_steps": n_steps,
            "burn": burn, "thin": thin}
    return ensemble, info


@dataclasses.dataclass
class CalibrationResult:
    parameters: pd.Series  # every model parameter: calibrated values and the rest
    free: list
    screening: pd.DataFrame
    fit: Fit
    identifiability: dict
    profile_curves: pd.DataFrame
    intervals: pd.DataFrame
    ensemble: pd.DataFrame
    mcmc: dict
    statistics: dict
    validation: pd.DataFrame
    timings: dict
    seed: int


def calibrate(model, targets, seed=0, k_max=30, n_starts=8, free=None, mcmc_steps=300,
              profile_points=7, progress=False, before=None, rel_tol=0.03, include=(),
              workers=1, *, vocabulary=None, switches=(), actuals=None) -> CalibrationResult:
    """Calibrate ``model`` against ``targets``.

    ``targets`` is read_targets' table, or a target file read in
    ``vocabulary``. ``before`` (an ISO date) keeps only the targets whose
    window ends before it: the time-split check calibrates on figures up to
    the end of 2024. ``include`` names parameters calibrated besides the
    screened ones (e.g. one that a refit of a structural alternative showed
    the data inform, although the local screening at the model's values passed
    it over). ``switches`` are never screened in (:func:`screen`);
    ``actuals`` (one flag per target of ``targets``) marks the targets that
    report actuals, for :func:`fit_statistics`. ``workers`` processes share
    the fit, the profiles and the MCMC (None: one per core); the result does
    not depend on their number.
    """
    workers = _workers(workers)
    n_starts, k_max = _check.whole_number("n_starts", n_starts), _check.whole_number("k_max", k_max)
    seed = _check.seed(seed)
    timings = {}
    t0 = _time.perf_counter()
    targets = _read(targets, vocabulary)
    actuals = _actuals(targets, actuals)
    if before is not None:
        kept = (targets["t_end"] <= model_time(before) + 1e-9).to_numpy()
        targets, actuals = targets[kept].reset_index(drop=True), actuals[kept]
        if len(targets) == 0:
            raise InvalidInput(f"no target ends before {before}")
    if free is None:
        screening = screen(model, targets, k_max=k_max, rel_tol=rel_tol, switches=switches)
        free = list(screening.index[screening["chosen"]])
        for name in (model.resolve(i) for i in include):
            if name not in screening.index:
                raise InvalidInput(f"--include '{name}' is not a parameter that can be calibrated "
                                   f"(it needs a finite declared range and must not be a scenario switch)")
            if name not in free:
                free.append(name)
                screening.loc[name, "chosen"] = True
    else:
        screening = pd.DataFrame({"chosen": True}, index=pd.Index(free, name="parameter"))
    timings["screen"] = _time.perf_counter() - t0
    problem = Problem(model, targets, free)
    with process_pool(problem, workers) if workers > 1 else contextlib.nullcontext() as executor:
        t1 = _time.perf_counter()
        best = fit(problem, n_starts=n_starts, seed=seed, progress=progress, executor=executor)
        timings["fit"] = _time.perf_counter() - t1
        # The targets' Jacobian, each column in units of its parameter's prior width (as in
        # screen): rank and sloppy directions then do not depend on the units of the
        # parameters searched on a linear scale, and least_squares' Jacobian (scaled at
        # active bounds) is not used.
        J, _ = problem.jacobian(best.x)
        ident = identifiability(J[: len(problem.targets)] * problem.prior_sigma[None, :], problem.free)
        t2 = _time.perf_counter()
        burn = min(100, mcmc_steps // 3)
        posterior = None
        if mcmc_steps and executor is not None:  # in a process of its own, beside the profiles
            posterior = executor.submit(_call, _posterior, (best, mcmc_steps, burn, seed))
        curves, intervals = profiles(problem, best, n_points=profile_points, progress=progress,
                                     executor=executor) if profile_points else (pd.DataFrame(), pd.DataFrame())
        timings["profiles"] = _time.perf_counter() - t2
        if posterior is not None:
            ensemble, info = posterior.result()
        elif mcmc_steps:
            ensemble, info = sample_posterior(problem, best, n_steps=mcmc_steps, burn=burn, seed=seed,
                                              progress=progress)
        else:
            ensemble, info = pd.DataFrame(columns=problem.free), {}
        # with a pool this overlaps the profiles: from the fit's end to the ensemble
        timings["mcmc"] = _time.perf_counter() - t2 - (timings["profiles"] if posterior is None else 0.0)
    params = model.parameters["value"].copy()
    best_values = problem.to_params(best.x[None]).iloc[0]
    for p in problem.free:
        params[p] = float(best_values[p])
    table = validate(model, targets, params[problem.free].to_dict())
    stats = fit_statistics(targets, table, best.chi2, actuals=actuals)
    timings["total"] = _time.perf_counter() - t0
    return CalibrationResult(params, problem.free, screening, best, ident, curves, intervals,
                             ensemble, info, stats, table, timings, seed)


def fit_statistics(targets, table, chi2=None, actuals=None):
    """Fit statistics of a validation table: chi2, share within 2 sigma (all and actuals).

    ``actuals``: one flag per target, True where it reports an actual (not a
    plan or a projection); every target by default.
    """
    r = table["residual"].to_numpy()
    inside = np.abs(r) <= 2
    actual = _actuals(targets, actuals)
    return {"chi2_targets": float(np.sum(r**2)),
            "chi2_with_priors": None if chi2 is None else float(chi2),
            "n_targets": int(len(table)),
            "within_2sigma": float(np.mean(inside)),
            "n_actuals": int(actual.sum()),
            "actuals_within_2sigma": float(np.mean(inside[actual])) if actual.any() else float("nan")}


def _actuals(targets, actuals) -> np.ndarray:
    """The actuals mask as a boolean array, one flag per target (all True for None)."""
    if actuals is None:
        return np.ones(len(targets), dtype=bool)
    mask = np.asarray(actuals)
    if mask.dtype != bool or mask.shape != (len(targets),):
        raise InvalidInput(f"actuals must hold one True/False per target ({len(targets)}), got "
                           f"{mask.dtype} of shape {mask.shape}")
    return mask


def validate(model, targets, params=None, vocabulary=None) -> pd.DataFrame:
    """Each target with the model's prediction and its error (docs/design.md §5).

    Parameters
    ----------
    targets : pandas.DataFrame or path
        read_targets' table, or a target file read in ``vocabulary``.
    params : dict, optional
        Parameter values for the run (the model's own otherwise).

    Returns
    -------
    pandas.DataFrame
        One row per target, in file order: id, observable, aggregation, unit,
        value, sigma, predicted, log_error, abs_error, residual.
    """
    prob = Problem(model, targets, [], fixed=_check.mapping("params", params), priors=False,
                   vocabulary=vocabulary)
    predicted = prob.predict(np.zeros((1, 0)))[0]
    return errors(prob.targets, predicted)


#: A parameter file names each parameter once: thousands of rows at most.
MAX_PARAMETER_FILE_BYTES = 16 * 2**20


def read_parameters(path) -> dict:
    """Read a ``parameters.csv`` (``name,value``) as written by ``aicircle calibrate``.

    The file is read up to :data:`MAX_PARAMETER_FILE_BYTES` (counted as read, so
    a device or ``/proc`` file stops there); a refusal names the row and the
    column, never what the file holds.
    """
    if not isinstance(path, (str, Path)):
        raise InvalidInput(f"path of the parameter file must be a file name, got {path!r}")
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"parameter file not found: {path}")
    raw = read_capped(path, MAX_PARAMETER_FILE_BYTES, f"parameter file {path}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not a CSV text file (not UTF-8)") from None
    if "\x00" in text:
        raise InvalidInput(f"{path}: not a CSV text file (binary content)")
    try:
        frame = pd.read_csv(io.StringIO(text))
    except Exception as err:  # pandas raises several kinds
        raise InvalidInput(f"{path}: not a CSV file ({type(err).__name__})") from None
    if list(frame.columns[:2]) != ["name", "value"]:
        raise InvalidInput(f"{path}: expected the columns name,value (a header line 'name,value')")
    out, rows = {}, {}
    for i, (name, value) in enumerate(zip(frame["name"], frame["value"]), start=1):
        v = pd.to_numeric(value, errors="coerce")
        if not np.isfinite(v):
            raise InvalidInput(f"{path}: row {i}, column 'value': not a finite number")
        if str(name) in out:
            raise InvalidInput(f"{path}: row {i}, column 'name': the name of row {rows[str(name)]} again")
        out[str(name)] = float(v)
        rows[str(name)] = i
    return out


#: The tables :func:`write_results` writes besides ``parameters.csv`` and ``fit.json``.
RESULT_TABLES = ("ensemble", "profiles", "profile_intervals", "validation", "screening")


def read_results(results_dir, tables=RESULT_TABLES) -> dict:
    """A calibration as :func:`write_results` wrote it to ``results_dir``.

    Returns
    -------
    dict
        ``parameters`` (name -> value), ``dir``, ``fit`` (fit.json, ``{}`` if
        absent) and one DataFrame (None if absent) per name of ``tables``.
    """
    d = Path(results_dir)
    if not (d / "parameters.csv").exists():
        raise InvalidInput(f"no calibration in {d}; run 'aicircle calibrate' or 'aicircle report "
                           f"--recalibrate'")
    out = {"parameters": read_parameters(d / "parameters.csv"), "dir": d}
    for name in tables:
        p = d / f"{name}.csv"
        out[name] = pd.read_csv(p) if p.exists() else None
    out["fit"] = json.loads((d / "fit.json").read_text()) if (d / "fit.json").exists() else {}
    return out


def write_results(result: CalibrationResult, out_dir, model=None, command=None) -> Path:
    """Write a calibration to ``out_dir``: parameters.csv, uncertainty, ensemble, fit.json.

    Every file is written to a temporary name and renamed, so an interrupted
    run leaves the previous results intact.
    """
    import importlib.metadata as md

    from ._io import write_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = pd.DataFrame({"name": result.parameters.index, "value": result.parameters.values})
    write_atomic(out / "parameters.csv", lambda p: params.to_csv(p, index=False, float_format="%.10g"))
    write_atomic(out / "screening.csv", lambda p: result.screening.to_csv(p))
    write_atomic(out / "profile_intervals.csv", lambda p: result.intervals.to_csv(p))
    write_atomic(out / "profiles.csv", lambda p: result.profile_curves.to_csv(p, index=False))
    write_atomic(out / "ensemble.csv", lambda p: result.ensemble.to_csv(p, index=False,
                                                                          float_format="%.8g"))
    write_atomic(out / "validation.csv", lambda p: result.validation.to_csv(p, index=False))
    versions = {}
    for pkg in ("aicircle", "pysd", "numpy", "scipy", "pandas", "emcee", "SALib"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    info = {
        "seed": result.seed, "free": result.free, "statistics": result.statistics,
        "identifiability": result.identifiability, "mcmc": result.mcmc,
        "starts": [{"start": i, "chi2": c, "success": s} for i, c, s in result.fit.starts],
        "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
        "versions": versions, "python": platform.python_version(), "machine": platform.machine(),
        "model": str(model.path.name) if model is not None else None, "command": command,
    }
    write_atomic(out / "fit.json", lambda p: p.write_text(json.dumps(info, indent=2, default=float)))
    return out

"""Equilibria, their one-parameter continuation and their bifurcations.

This module is the numerical core of tipping-point analysis (docs/design.md §4).
It knows nothing about models: it works on any vectorised vector field

``f(y, p) -> dy``

where ``y`` is an ndarray of shape ``(n, m)`` (``m`` states, one per column),
``p`` an ndarray of shape ``(m,)`` (one parameter value per column) and ``dy``
has the shape of ``y``. The module always calls ``f`` with 2-D ``y`` and 1-D
``p``; plain numpy code that indexes ``y[i]`` and uses ``p`` arithmetically
broadcasts correctly. ``f`` must not branch on the value of ``p`` with Python
``if`` (use ``np.where``), and non-smooth pieces (``max``, ``min``, switches,
piecewise-linear tables) should be replaced by :func:`smooth_max`,
:func:`smooth_min`, :func:`smooth_step` and :func:`smooth_lookup` (from
:mod:`aicircle.runtime`, the functions a model compiled with ``smooth=eps``
calls) for continuation, because Newton's method and the test functions assume
a smooth ``f``.

Parameters shared by the functions below (documented once):

f : callable ``f(y, p) -> dy``
    The vectorised vector field described above.
jac : callable ``jac(y, p) -> ndarray, shape (n, n)``, optional
    The analytic Jacobian ``df/dy`` at one point, ``y`` of shape ``(n,)`` and
    ``p`` a float. Without it, Jacobians are central finite differences with
    step ``eps**(1/3) * max(|y_i|, 1)``; all ``2n`` perturbed states (and the
    two perturbed parameter values, where ``df/dp`` is needed) are evaluated in
    one call of ``f``. Second derivatives (used only to refine bifurcations)
    are always mixed central differences of ``f`` with relative step
    ``eps**(1/4)``.
p_range : (float, float)
    ``(lo, hi)``, finite, ``lo < hi``: the parameter interval studied.

Scaling. Continuation measures arclength in scaled coordinates: the parameter
divided by the width ``hi - lo`` of ``p_range`` and each state divided by
``y_scale`` (default ``max(|y0_i|, 1)``), so ``ds = 0.01`` is about one
hundredth of the range when the branch is flat. Convergence tolerances of the
Newton iterations are on steps in the same scaled units. States should be in
units where ``1`` is not negligible (the floor of every scale is 1).

Floating-point warnings raised inside ``f`` (overflow at a trial point far
from an equilibrium) are silenced: a non-finite value rejects the trial point.

Stability. An eigenvalue counts as having a positive real part when
``Re(lambda) > 1e-8 * max|lambda|`` (the finite-difference Jacobian is accurate
to about ``1e-10`` relative, so noise around a zero or purely imaginary
eigenvalue is not counted); ``n_unstable`` is the number of such eigenvalues
and an equilibrium is stable when it is 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .errors import InvalidInput
from .runtime import smooth_lookup, smooth_max, smooth_min, smooth_step

__all__ = [
    "Bifurcation",
    "BifurcationDiagram",
    "Branch",
    "Equilibria",
    "bifurcations",
    "continue_equilibria",
    "find_equilibria",
    "leading_eigenvalue",
    "smooth_lookup",
    "smooth_max",
    "smooth_min",
    "smooth_step",
]

_EPS = np.finfo(float).eps
_H1 = _EPS ** (1 / 3)  # relative step of central first differences: error ~ eps**(2/3)
_H2 = _EPS ** (1 / 4)  # relative step of mixed second differences: error ~ eps**(1/2)
_REL_EIG_TOL = 1e-8  # eigenvalue real/imaginary parts below this * max|lambda| count as 0
_MAX_HALVINGS = 12  # backtracking steps of damped Newton
_MIN_COS = 0.9  # successive tangents may turn by at most ~26 degrees in one step
_MAX_SCALED_STATE = 1e8  # a branch beyond this many y_scales is taken to diverge
# Refinement stops once a Newton step is below this (scaled): the next step would be
# below the ~1e-10 accuracy of the finite-difference residual, which Newton cannot beat.
_REFINE_TOL = 1e-9


def _quiet(func):
    """Run ``func`` with numpy's floating-point warnings off (a fresh errstate per call).

    Trial points far from an equilibrium may overflow in ``f`` or in the
    differences; a non-finite value rejects the trial, so the warnings are
    noise inside the solvers.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return func(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Equilibria:
    """Equilibria of ``f(., p)`` at one parameter value.

    Attributes
    ----------
    p : float
        The parameter value.
    states : ndarray, shape (k, n)
        One equilibrium per row, distinct, sorted lexicographically.
    eigenvalues : ndarray of complex, shape (k, n)
        Eigenvalues of the Jacobian ``df/dy`` at each equilibrium, sorted by
        decreasing real part.
    n_unstable : ndarray of int, shape (k,)
        Number of eigenvalues with positive real part (module notes).
    """

    p: float
    states: np.ndarray
    eigenvalues: np.ndarray
    n_unstable: np.ndarray

    @property
    def stable(self) -> np.ndarray:
        """ndarray of bool, shape (k,): True where ``n_unstable == 0``."""
        return self.n_unstable == 0


@dataclass(frozen=True, eq=False)
class Bifurcation:
    """A fold (saddle-node) or Hopf point of a branch of equilibria.

    Attributes
    ----------
    kind : {"fold", "hopf"}
    p : float
        Parameter value of the bifurcation.
    state : ndarray, shape (n,)
        The equilibrium at the bifurcation.
    frequency : float
        For a Hopf point, the angular frequency ``omega > 0`` of the critical
        pair ``+-i omega`` (radians per unit of time; period ``2 pi / omega``).
        NaN for a fold.
    eigenvalues : ndarray of complex, shape (n,)
        Eigenvalues of ``df/dy`` at ``(state, p)``, by decreasing real part.
    refined : bool
        True when Newton's method on the extended system converged (the
        accuracy is then that of the finite differences, about 1e-9 relative);
        False when the point is interpolated between two branch points because
        the refinement failed (accuracy: about the continuation step).
    """

    kind: str
    p: float
    state: np.ndarray
    frequency: float
    eigenvalues: np.ndarray
    refined: bool


@dataclass(frozen=True, eq=False)
class Branch:
    """A branch of equilibria computed by pseudo-arclength continuation.

    Points are ordered along the curve: first the points found going in the
    direction of decreasing ``p`` from the starting point (reversed), then the
    starting point, then the points going the other way.

    Attributes
    ----------
    p : ndarray, shape (k,)
        Parameter values along the branch.
    states : ndarray, shape (k, n)
        Equilibria along the branch.
    eigenvalues : ndarray of complex, shape (k, n)
        Eigenvalues of ``df/dy`` at each point, by decreasing real part.
    n_unstable : ndarray of int, shape (k,)
        Number of eigenvalues with positive real part at each point.
    tangents : ndarray, shape (k, n + 1)
        Unit tangents in scaled coordinates ``(y / y_scale, p / width)``,
        oriented along increasing index.
    bifurcations : tuple of Bifurcation
        Folds and Hopf points on the branch, each once, by position on the branch.
    stop_reasons : tuple of str
        Why continuation stopped at the first and at the last point.
    closed : bool
        True if the branch is a closed curve (an isola) that was followed once
        around.
    y_scale : ndarray, shape (n,)
        The scale of each state used for arclength and tolerances.
    """

    p: np.ndarray
    states: np.ndarray
    eigenvalues: np.ndarray
    n_unstable: np.ndarray
    tangents: np.ndarray
    bifurcations: tuple
    stop_reasons: tuple
    closed: bool
    y_scale: np.ndarray

    @property
    def stable(self) -> np.ndarray:
        """ndarray of bool, shape (k,): True where ``n_unstable == 0``."""
        return self.n_unstable == 0


@dataclass(frozen=True, eq=False)
class BifurcationDiagram:
    """All branches found in ``p_range`` and their bifurcations.

    Attributes
    ----------
    p_range : (float, float)
    branches : tuple of Branch
    folds : tuple of Bifurcation
        Every fold in ``p_range``, each once, sorted by ``p``.
    hopf : tuple of Bifurcation
        Every Hopf point in ``p_range``, each once, sorted by ``p``.
    """

    p_range: tuple
    branches: tuple
    folds: tuple
    hopf: tuple


# --------------------------------------------------------------------------
# the vector field and its derivatives
# --------------------------------------------------------------------------


class _System:
    """``f`` with shape checks and finite-difference derivatives (immutable)."""

    def __init__(self, f, n, jac=None, p_scale=1.0):
        if not callable(f):
            raise TypeError(f"f must be callable f(y, p) -> dy; got {type(f).__name__}")
        if jac is not None and not callable(jac):
            raise TypeError(
                f"jac must be callable jac(y, p) -> (n, n) array, or None; got {type(jac).__name__}"
            )
        self.f = f
        self.n = n
        self.jac = jac
        self.p_scale = float(p_scale)

    def __call__(self, Y, P):
        out = np.asarray(self.f(Y, P), dtype=float)
        if out.shape != Y.shape:
            raise InvalidInput(
                f"f(y, p) returned an array of shape {out.shape} for y of shape {Y.shape}: "
                "f must be vectorised (y of shape (n, m) and p of shape (m,) give dy of shape (n, m))"
            )
        return out

    def _analytic(self, y, p):
        out = np.asarray(self.jac(y, p), dtype=float)
        if out.shape != (self.n, self.n):
            raise InvalidInput(
                f"jac(y, p) returned an array of shape {out.shape}; expected ({self.n}, {self.n})"
            )
        return out

    def linearise(self, Y, P, with_p=True):
        """Value, Jacobian and parameter derivative at ``m`` points in one call of ``f``.

        Parameters
        ----------
        Y : ndarray, shape (n, m)
        P : ndarray, shape (m,)
        with_p : bool
            Also return ``df/dp``.

        Returns
        -------
        F : ndarray, shape (n, m)
        J : ndarray, shape (m, n, n)
            ``J[j] = df/dy`` at column ``j``.
        Fp : ndarray, shape (n, m), or None
        """
        n, m = Y.shape
        blocks_y = [Y[:, :, None]]
        blocks_p = [P[:, None]]
        if self.jac is None:
            h = _H1 * np.maximum(np.abs(Y), 1.0)
            h = (Y + h) - Y  # steps exactly representable in floating point
            step = np.eye(n)[:, None, :] * h.T[None, :, :]  # [i, j, k] = delta_ik h[k, j]
            blocks_y += [Y[:, :, None] + step, Y[:, :, None] - step]
            blocks_p += [np.repeat(P[:, None], 2 * n, axis=1)]
        if with_p:
            hp = _H1 * np.maximum(np.abs(P), self.p_scale)
            hp = (P + hp) - P
            blocks_y += [np.repeat(Y[:, :, None], 2, axis=2)]
            blocks_p += [np.stack([P + hp, P - hp], axis=1)]
        Ys = np.concatenate(blocks_y, axis=2)
        Ps = np.concatenate(blocks_p, axis=1)
        k = Ys.shape[2]
        Fs = self(Ys.reshape(n, m * k), Ps.reshape(m * k)).reshape(n, m, k)
        F = Fs[:, :, 0]
        if self.jac is None:
            D = (Fs[:, :, 1 : 1 + n] - Fs[:, :, 1 + n : 1 + 2 * n]) / (2.0 * h.T[None, :, :])
            J = D.transpose(1, 0, 2)
        else:
            J = np.stack([self._analytic(Y[:, j].copy(), float(P[j])) for j in range(m)])
        Fp = (Fs[:, :, -2] - Fs[:, :, -1]) / (2.0 * hp) if with_p else None
        return F, J, Fp

    def linearise_one(self, y, p):
        """``F (n,), J (n, n), Fp (n,)`` at one point."""
        F, J, Fp = self.linearise(y[:, None], np.array([p], dtype=float))
        return F[:, 0], J[0], Fp[:, 0]

    def second(self, y, p, a, b):
        """Mixed second derivatives ``d2f/du2 (a_l, b_l)`` for ``u = (y, p)``.

        Parameters
        ----------
        y : ndarray, shape (n,)
        p : float
        a, b : ndarray, shape (L, n + 1)
            Directions in ``u`` space.

        Returns
        -------
        ndarray, shape (n, L)
        """
        n = self.n
        su = np.append(np.maximum(np.abs(y), 1.0), max(abs(p), self.p_scale))
        u = np.append(y, p)

        def steps(d):
            size = np.max(np.abs(d) / su, axis=1)
            return np.where(size > 0, _H2 / np.where(size > 0, size, 1.0), 0.0)

        ha, hb = steps(a), steps(b)
        A, B = a * ha[:, None], b * hb[:, None]
        U = np.stack([u + A + B, u + A - B, u - A + B, u - A - B])  # (4, L, n + 1)
        L = a.shape[0]
        U = U.reshape(4 * L, n + 1).T
        Fv = self(np.ascontiguousarray(U[:n]), U[n].copy()).reshape(n, 4, L)
        denom = 4.0 * ha * hb
        num = Fv[:, 0] - Fv[:, 1] - Fv[:, 2] + Fv[:, 3]
        return np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)


def _solve_columns(J, R):
    """Solve ``J[j] x_j = R[:, j]`` for every column; NaN where ``J[j]`` is singular.

    J : (m, n, n), R : (n, m) -> (n, m)
    """
    try:
        return np.linalg.solve(J, R.T[:, :, None])[:, :, 0].T
    except np.linalg.LinAlgError:
        out = np.full(R.shape, np.nan)
        for j in range(R.shape[1]):
            try:
                out[:, j] = np.linalg.solve(J[j], R[:, j])
            except np.linalg.LinAlgError:
                pass
        return out


def _sorted_eigenvalues(J):
    """Eigenvalues of ``J (..., n, n)`` sorted by decreasing real part, then imaginary part."""
    ev = np.linalg.eigvals(J)
    order = np.lexsort((-ev.imag, -ev.real), axis=-1)
    return np.take_along_axis(ev, order, axis=-1)


def _classify(ev):
    """Counts of unstable eigenvalues of ``ev (k, n)``.

    Returns ``n_unstable``, ``n_unstable_complex`` (with |Im| above tolerance)
    and ``n_unstable_real``, each of shape (k,).
    """
    tol = _REL_EIG_TOL * np.max(np.abs(ev), axis=-1, keepdims=True)
    unstable = ev.real > tol
    cplx = np.abs(ev.imag) > tol
    return unstable.sum(-1), (unstable & cplx).sum(-1), (unstable & ~cplx).sum(-1)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


def _as_p_range(p_range):
    try:
        lo, hi = (float(v) for v in p_range)
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"p_range must be two numbers (lo, hi); got {p_range!r}") from err
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InvalidInput(f"p_range must be finite with lo < hi; got ({lo}, {hi})")
    return lo, hi


def _as_float(value, name):
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"{name} must be a number; got {value!r}") from err
    if not np.isfinite(out):
        raise InvalidInput(f"{name} must be finite; got {out}")
    return out


def _as_positive(value, name):
    out = _as_float(value, name)
    if out <= 0:
        raise InvalidInput(f"{name} must be > 0; got {out}")
    return out


def _as_count(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInput(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _as_columns(guesses, n=None, name="guesses"):
    """``guesses`` as a finite float array of shape (n, m)."""
    arr = np.array(guesses, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.size == 0:
        raise InvalidInput(f"{name} must have shape (n,) or (n, m); got shape {np.shape(guesses)}")
    if n is not None and arr.shape[0] != n:
        raise InvalidInput(f"{name} must have {n} rows (one per state); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInput(f"{name} must be finite; got {guesses!r}")
    return arr


# --------------------------------------------------------------------------
# equilibria
# --------------------------------------------------------------------------


def _newton(system, Y, P, tol, max_iter):
    """Damped Newton at fixed ``p`` from every column of ``Y``.

    A column converges when its full Newton step satisfies
    ``max_i |dy_i| / max(|y_i|, 1) <= tol``. Otherwise the step is damped by
    halving until ``||f||_2`` decreases by the Armijo factor ``1 - 1e-4 alpha``;
    a column whose Jacobian is singular, whose values are not finite or whose
    step cannot be damped into a decrease fails.

    Returns ``Y (n, m)`` and ``converged (m,)``.
    """
    Y = np.array(Y, dtype=float)
    m = Y.shape[1]
    done = np.zeros(m, dtype=bool)
    converged = np.zeros(m, dtype=bool)
    for _ in range(max_iter):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        Ya, Pa = Y[:, act], P[act]
        F, J, _ = system.linearise(Ya, Pa, with_p=False)
        dY = _solve_columns(J, -F)
        finite = np.all(np.isfinite(dY), axis=0) & np.all(np.isfinite(F), axis=0)
        small = finite & (np.max(np.abs(dY) / np.maximum(np.abs(Ya), 1.0), axis=0) <= tol)
        hit = act[small]
        Y[:, hit] = Ya[:, small] + dY[:, small]
        converged[hit] = True
        done[hit] = True
        done[act[~finite]] = True
        rest = finite & ~small
        idx = act[rest]
        Yr, dYr = Ya[:, rest], dY[:, rest]
        f0 = np.linalg.norm(F[:, rest], axis=0)
        alpha = np.ones(idx.size)
        accepted = np.zeros(idx.size, dtype=bool)
        for _ in range(_MAX_HALVINGS):
            pend = np.flatnonzero(~accepted)
            if pend.size == 0:
                break
            trial = Yr[:, pend] + alpha[pend] * dYr[:, pend]
            ft = np.linalg.norm(system(trial, P[idx[pend]]), axis=0)
            good = np.isfinite(ft) & (ft <= (1.0 - 1e-4 * alpha[pend]) * f0[pend])
            accepted[pend[good]] = True
            alpha[pend[~good]] *= 0.5
        Y[:, idx[accepted]] = Yr[:, accepted] + alpha[accepted] * dYr[:, accepted]
        done[idx[~accepted]] = True
    return Y, converged


def _unique_columns(Y, rtol):
    """Indices of the columns of ``Y (n, m)`` that differ from all earlier kept ones."""
    keep = []
    for j in range(Y.shape[1]):
        yj = Y[:, j]
        if all(
            np.max(np.abs(yj - Y[:, k]) / np.maximum(np.maximum(np.abs(yj), np.abs(Y[:, k])), 1.0)) > rtol
            for k in keep
        ):
            keep.append(j)
    return keep


@_quiet
def find_equilibria(f, p, guesses, *, jac=None, tol=1e-10, max_iter=50):
    """Equilibria of ``f(., p)`` found by damped Newton from each guess.

    Parameters
    ----------
    f, jac
        See the module notes.
    p : float
        Parameter value.
    guesses : array_like, shape (n,) or (n, m)
        Starting states, one per column.
    tol : float
        Convergence tolerance on the Newton step, relative to ``max(|y_i|, 1)``.
    max_iter : int
        Newton iterations per guess.

    Returns
    -------
    Equilibria
        The distinct equilibria reached (two count as the same when they agree
        to ``1e-6`` relative), with eigenvalues and stability. Guesses from
        which Newton fails are dropped; none reached is not an error.

    Examples
    --------
    >>> import numpy as np
    >>> eq = find_equilibria(lambda y, a: a + 3 * y - y**3, 0.0, [[-2.0, -0.1, 2.0]])
    >>> (np.round(eq.states[:, 0], 6) + 0.0).tolist(), eq.stable.tolist()
    ([-1.732051, 0.0, 1.732051], [True, False, True])
    """
    p = _as_float(p, "p")
    Y0 = _as_columns(guesses)
    tol = _as_positive(tol, "tol")
    max_iter = _as_count(max_iter, "max_iter")
    n, m = Y0.shape
    system = _System(f, n, jac)
    P = np.full(m, p)
    Y, ok = _newton(system, Y0, P, tol, max_iter)
    Y = Y[:, ok]
    Y = Y[:, _unique_columns(Y, 1e-6)]
    if Y.shape[1]:
        Y = Y[:, np.lexsort(Y[::-1])]
        _, J, _ = system.linearise(Y, np.full(Y.shape[1], p), with_p=False)
        ev = _sorted_eigenvalues(J)
    else:
        ev = np.empty((0, n), dtype=complex)
    return Equilibria(p=p, states=Y.T.copy(), eigenvalues=ev, n_unstable=_classify(ev)[0])


@_quiet
def leading_eigenvalue(f, y, p, *, jac=None):
    """Largest real part of the eigenvalues of ``df/dy`` at ``(y, p)``.

    Near a fold or Hopf point it tends to 0 from below (critical slowing
    down); at any state, not only an equilibrium, it is the local rate of
    divergence of nearby trajectories' linearisation.

    Parameters
    ----------
    f, jac
        See the module notes.
    y : array_like, shape (n,) or (n, m)
        State(s), one per column.
    p : float or array_like, shape (m,)
        Parameter value(s), one per column.

    Returns
    -------
    float, or ndarray of shape (m,) when ``y`` is 2-D
        In units of 1 / (unit of time of ``f``).

    Examples
    --------
    >>> round(leading_eigenvalue(lambda y, r: r + y**2, [-1.0], -1.0), 9)
    -2.0
    """
    arr = np.array(y, dtype=float)
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise InvalidInput(f"y must have shape (n,) or (n, m); got shape {arr.shape}")
    Y = arr[:, None] if arr.ndim == 1 else arr
    P = np.broadcast_to(np.asarray(p, dtype=float), (Y.shape[1],)).copy()
    system = _System(f, Y.shape[0], jac)
    _, J, _ = system.linearise(Y, P, with_p=False)
    lead = np.max(np.linalg.eigvals(J).real, axis=-1)
    return float(lead[0]) if arr.ndim == 1 else lead


# --------------------------------------------------------------------------
# continuation
# --------------------------------------------------------------------------


def _tangent(A, t_prev):
    """Unit null vector of ``A (n, n+1)`` with positive projection on ``t_prev``."""
    M = np.vstack([A, t_prev])
    rhs = np.zeros(A.shape[1])
    rhs[-1] = 1.0
    try:
        t = np.linalg.solve(M, rhs)
    except np.linalg.LinAlgError:
        t = np.linalg.svd(A)[2][-1]
    if not np.all(np.isfinite(t)):
        return None
    t = t / np.linalg.norm(t)
    return t if t @ t_prev >= 0 else -t


def _scaled_jacobian(J, Fp, S):
    """``[df/dy df/dp]`` in scaled coordinates, shape (n, n + 1)."""
    return np.hstack([J * S[:-1], (Fp * S[-1])[:, None]])


def _correct(system, z_pred, t, S, tol, max_iter=8):
    """Newton on ``F(S z) = 0, t . (z - z_pred) = 0``; returns ``(z, iterations)`` or None."""
    n = S.size - 1
    z = z_pred.copy()
    prev = np.inf
    for it in range(1, max_iter + 1):
        u = S * z
        F, J, Fp = system.linearise_one(u[:n], u[n])
        M = np.vstack([_scaled_jacobian(J, Fp, S), t])
        r = np.append(F, t @ (z - z_pred))
        try:
            dz = np.linalg.solve(M, -r)
        except np.linalg.LinAlgError:
            return None
        size = np.max(np.abs(dz))
        if not np.isfinite(size):
            return None
        z = z + dz
        if size <= tol:
            return z, it
        if it > 1 and size > 0.5 * prev:
            # not contracting: accept only a stall at roundoff level
            return (z, it) if size <= 1e3 * tol else None
        prev = size
    return None


def _march(system, z0, t0, S, lo, hi, ds, ds_min, ds_max, max_steps, tol):
    """Follow the branch from ``z0`` along ``t0``; returns points, tangents, reason, closed."""
    n = S.size - 1
    zs, ts = [], []
    z, t = z0, t0
    reason = f"max_steps ({max_steps}) reached"
    closed = False
    while len(zs) < max_steps:
        z_pred = z + ds * t
        res = _correct(system, z_pred, t, S, tol)
        t_new = None
        if res is not None:
            z_new, iters = res
            u = S * z_new
            _, J, Fp = system.linearise_one(u[:n], u[n])
            t_new = _tangent(_scaled_jacobian(J, Fp, S), t)
            if t_new is None or t_new @ t < _MIN_COS:
                t_new = None
        if t_new is None:
            ds *= 0.5
            if ds < ds_min:
                reason = f"step size fell below ds_min ({ds_min:g})"
                break
            continue
        p_new = z_new[n] * S[n]
        if p_new > hi or p_new < lo:
            bound = hi if p_new > hi else lo
            at_bound = abs(z[n] * S[n] - bound) <= 1e-12 * S[n]  # started on the end of the range
            point = None if at_bound else _boundary_point(system, z, z_new, bound, S, tol, t)
            if point is not None:
                zs.append(point[0])
                ts.append(point[1])
            reason = f"reached the end of p_range at p = {bound:g}"
            break
        zs.append(z_new)
        ts.append(t_new)
        if len(zs) >= 3 and t_new @ t0 > 0:
            d = z_new - z
            s = np.clip((z0 - z) @ d / (d @ d), 0.0, 1.0)
            if np.linalg.norm(z + s * d - z0) <= 0.1 * np.linalg.norm(d) + 1e-9:
                reason, closed = "closed loop", True
                break
        if np.max(np.abs(z_new[:n])) > _MAX_SCALED_STATE:
            reason = f"states exceeded {_MAX_SCALED_STATE:g} times y_scale"
            break
        z, t = z_new, t_new
        if iters <= 3:
            ds = min(1.5 * ds, ds_max)
        elif iters >= 6:
            ds = max(0.7 * ds, ds_min)
    return zs, ts, reason, closed


def _boundary_point(system, z, z_new, bound, S, tol, t):
    """The equilibrium at ``p = bound`` between scaled points ``z`` and ``z_new``."""
    n = S.size - 1
    p0, p1 = z[n] * S[n], z_new[n] * S[n]
    s = (bound - p0) / (p1 - p0)
    y_guess = S[:n] * (z[:n] + s * (z_new[:n] - z[:n]))
    Y, ok = _newton(system, y_guess[:, None], np.array([bound]), tol, 20)
    if not ok[0]:
        return None
    _, J, Fp = system.linearise_one(Y[:, 0], bound)
    t_b = _tangent(_scaled_jacobian(J, Fp, S), t)
    if t_b is None:
        return None
    return np.append(Y[:, 0] / S[:n], bound / S[n]), t_b


def _continue(system, y0, p0, lo, hi, *, ds, ds_min, ds_max, max_steps, y_scale, tol, detect):
    """Continuation from an equilibrium ``y0`` at ``p0`` (already converged)."""
    n = system.n
    S = np.append(y_scale, hi - lo)
    z0 = np.append(y0, p0) / S
    _, J, Fp = system.linearise_one(y0, p0)
    A = _scaled_jacobian(J, Fp, S)
    t0 = np.linalg.svd(A)[2][-1]
    lead = t0[n] if abs(t0[n]) > 1e-12 else t0[np.argmax(np.abs(t0))]
    if lead < 0:
        t0 = -t0
    args = (S, lo, hi, ds, ds_min, ds_max, max_steps, tol)
    fz, ft, f_reason, closed = _march(system, z0, t0, *args)
    if closed:
        bz, bt, b_reason = [], [], "closed loop"
    else:
        bz, bt, b_reason, _ = _march(system, z0, -t0, *args)
    Z = np.array(bz[::-1] + [z0] + fz)
    T = np.array([-v for v in bt[::-1]] + [t0] + ft)
    U = Z * S
    _, Js, _ = system.linearise(U[:, :n].T.copy(), U[:, n].copy(), with_p=False)
    ev = _sorted_eigenvalues(Js)
    n_unstable, n_cplx, n_real = _classify(ev)
    found = _detect(system, U, T, ev, n_cplx, n_real, S, lo, hi) if detect else []
    return Branch(
        p=U[:, n].copy(),
        states=U[:, :n].copy(),
        eigenvalues=ev,
        n_unstable=n_unstable,
        tangents=T,
        bifurcations=tuple(_dedupe(found, S)),
        stop_reasons=(b_reason, f_reason),
        closed=closed,
        y_scale=S[:n].copy(),
    )


@_quiet
def continue_equilibria(
    f,
    y0,
    p0,
    p_range,
    *,
    jac=None,
    ds=0.01,
    ds_min=1e-6,
    ds_max=0.05,
    max_steps=1000,
    y_scale=None,
    tol=1e-10,
    detect=True,
):
    """Follow a branch of equilibria through ``p_range`` by pseudo-arclength continuation.

    From the equilibrium near ``y0`` at ``p0`` (first corrected by Newton at
    fixed ``p0``) the branch is followed in both directions until it leaves
    ``p_range`` (the last point is then the equilibrium exactly at the end of
    the range), closes on itself, diverges, the step size falls below
    ``ds_min``, or ``max_steps`` points have been taken in that direction.

    Each step predicts along the unit tangent ``t`` (the null vector of the
    augmented Jacobian ``[df/dy df/dp]``, oriented like the previous tangent,
    found from the bordered system ``[[df/dy, df/dp], [t_prev]] t = e``) and
    corrects by Newton on ``f(y, p) = 0, t . (z - z_pred) = 0`` (the corrector
    moves in the hyperplane orthogonal to the tangent, which stays regular
    through folds). A step is rejected, and ``ds`` halved, when the corrector
    does not converge within 8 iterations or the tangent turns by more than
    about 26 degrees (which guards against jumping to another branch); ``ds``
    grows by 1.5 (up to ``ds_max``) after a correction of at most 3
    iterations.

    Parameters
    ----------
    f, jac, p_range
        See the module notes.
    y0 : array_like, shape (n,)
        A state near an equilibrium at ``p0``.
    p0 : float
        Parameter value of the starting point, inside ``p_range``.
    ds, ds_min, ds_max : float
        Initial, smallest and largest step, in scaled arclength (module notes).
    max_steps : int
        Most points taken in each direction.
    y_scale : array_like, shape (n,), optional
        Scale of each state (module notes); default ``max(|y0_i|, 1)``.
    tol : float
        Newton tolerance on scaled steps.
    detect : bool
        Detect and refine folds and Hopf points (see Notes).

    Returns
    -------
    Branch

    Raises
    ------
    InvalidInput
        If an argument is malformed or Newton finds no equilibrium near ``y0``.

    Notes
    -----
    Test functions, evaluated between consecutive points:

    - fold: the ``p`` component of the tangent changes sign;
    - Hopf: the number of complex eigenvalues with positive real part changes
      while the number of real ones with positive real part does not. A
      neutral saddle (real pair ``lambda, -lambda``) changes neither count and
      is never taken for a Hopf point (the bialternate-product test function
      would flag it).

    Each candidate is refined by Newton on the standard extended system,
    whose Jacobian uses second derivatives by finite differences:

    - fold, unknowns ``(y, p, v)``: ``f = 0, J v = 0, c . v = 1``, with ``c``
      the null vector of ``J`` at the nearest branch point;
    - Hopf, unknowns ``(y, p, a, b, omega)`` with eigenvector ``q = a + i b``
      of ``J q = i omega q`` written in real form:
      ``f = 0, J a + omega b = 0, J b - omega a = 0, c . a = 1, c . b = 0``,
      with ``c`` the normalised real part of the critical eigenvector at the
      interpolated crossing (fixing scale and phase of ``q``).

    Both systems are regular at a generic fold or Hopf point, so Newton
    converges quadratically up to the accuracy of the differences. A refined
    point must lie within two steps of its interval (a Hopf point also needs
    ``omega > 1e-6 max|lambda|``); otherwise a fold is reported at the linear
    interpolation of the test function with ``refined=False`` if ``det df/dy``
    changes sign across the interval (at a pitchfork the bifurcating branch
    turns without it, and the fold system is singular there), and a Hopf
    candidate only if the critical pair is clearly complex (``|Im| >= 1e-3
    max|lambda|``) at both ends of its interval.

    Examples
    --------
    >>> br = continue_equilibria(lambda y, r: r + y**2, [-1.0], -1.0, (-1.0, 1.0))
    >>> [(b.kind, round(b.p, 12) + 0.0) for b in br.bifurcations]
    [('fold', 0.0)]
    """
    lo, hi = _as_p_range(p_range)
    Y0 = _as_columns(y0, name="y0")
    if Y0.shape[1] != 1:
        raise InvalidInput(f"y0 must have shape (n,); got shape {np.shape(y0)}")
    p0 = _as_float(p0, "p0")
    if not lo <= p0 <= hi:
        raise InvalidInput(f"p0 = {p0} is outside p_range ({lo}, {hi})")
    ds = _as_positive(ds, "ds")
    ds_min = _as_positive(ds_min, "ds_min")
    ds_max = _as_positive(ds_max, "ds_max")
    if not ds_min <= ds <= ds_max:
        raise InvalidInput(f"need ds_min <= ds <= ds_max; got {ds_min}, {ds}, {ds_max}")
    max_steps = _as_count(max_steps, "max_steps")
    tol = _as_positive(tol, "tol")
    n = Y0.shape[0]
    system = _System(f, n, jac, p_scale=hi - lo)
    Y, ok = _newton(system, Y0, np.array([p0]), tol, 50)
    if not ok[0]:
        raise InvalidInput(f"Newton's method found no equilibrium near y0 = {Y0[:, 0].tolist()} at p0 = {p0}")
    y = Y[:, 0]
    if y_scale is None:
        scale = np.maximum(np.abs(y), 1.0)
    else:
        scale = _as_columns(y_scale, n, name="y_scale")[:, 0]
        if np.any(scale <= 0):
            raise InvalidInput(f"y_scale must be > 0; got {scale.tolist()}")
    return _continue(
        system,
        y,
        p0,
        lo,
        hi,
        ds=ds,
        ds_min=ds_min,
        ds_max=ds_max,
        max_steps=max_steps,
        y_scale=scale,
        tol=tol,
        detect=detect,
    )


# --------------------------------------------------------------------------
# bifurcations: detection, refinement, deduplication
# --------------------------------------------------------------------------


def _refine_fold(system, y, p, v, S, tol=_REFINE_TOL, max_iter=30):
    """Newton on ``f = 0, J v = 0, c . v = 1``; returns ``(y, p)`` or None."""
    n = system.n
    c = v / np.linalg.norm(v)
    v = c.copy()
    y, p = y.copy(), float(p)
    eye = np.eye(n + 1)
    for _ in range(max_iter):
        F, J, Fp = system.linearise_one(y, p)
        D = system.second(y, p, np.tile(np.append(v, 0.0), (n + 1, 1)), eye)
        M = np.zeros((2 * n + 1, 2 * n + 1))
        M[:n, :n], M[:n, n] = J, Fp
        M[n : 2 * n, : n + 1] = D
        M[n : 2 * n, n + 1 :] = J
        M[2 * n, n + 1 :] = c
        r = np.concatenate([F, J @ v, [c @ v - 1.0]])
        try:
            dz = np.linalg.solve(M, -r)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(dz)):
            return None
        y, p, v = y + dz[:n], p + dz[n], v + dz[n + 1 :]
        size = max(np.max(np.abs(dz[:n]) / S[:n]), abs(dz[n]) / S[n], np.max(np.abs(dz[n + 1 :])))
        if size <= tol:
            return y, p
    return None


def _refine_hopf(system, y, p, a, b, omega, S, tol=_REFINE_TOL, max_iter=30):
    """Newton on ``f = 0, J a + w b = 0, J b - w a = 0, c.a = 1, c.b = 0``; ``(y, p, w)`` or None."""
    n = system.n
    c = a / np.linalg.norm(a)
    y, p = y.copy(), float(p)
    eye = np.eye(n + 1)
    N = 3 * n + 2
    for _ in range(max_iter):
        F, J, Fp = system.linearise_one(y, p)
        dirs = np.vstack([np.tile(np.append(a, 0.0), (n + 1, 1)), np.tile(np.append(b, 0.0), (n + 1, 1))])
        D = system.second(y, p, dirs, np.vstack([eye, eye]))
        Da, Db = D[:, : n + 1], D[:, n + 1 :]
        M = np.zeros((N, N))
        ia, ib, iw = slice(n + 1, 2 * n + 1), slice(2 * n + 1, 3 * n + 1), 3 * n + 1
        M[:n, :n], M[:n, n] = J, Fp
        r2, r3 = slice(n, 2 * n), slice(2 * n, 3 * n)  # rows of J a + w b and J b - w a
        M[r2, : n + 1], M[r2, ia], M[r2, ib], M[r2, iw] = Da, J, omega * np.eye(n), b
        M[r3, : n + 1], M[r3, ia], M[r3, ib], M[r3, iw] = Db, -omega * np.eye(n), J, -a
        M[3 * n, ia] = c
        M[3 * n + 1, ib] = c
        r = np.concatenate([F, J @ a + omega * b, J @ b - omega * a, [c @ a - 1.0, c @ b]])
        try:
            dz = np.linalg.solve(M, -r)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(dz)):
            return None
        y, p = y + dz[:n], p + dz[n]
        a, b, omega = a + dz[ia], b + dz[ib], omega + dz[iw]
        size = max(
            np.max(np.abs(dz[:n]) / S[:n]),
            abs(dz[n]) / S[n],
            np.max(np.abs(dz[n + 1 : iw])),
            abs(dz[iw]) / max(abs(omega), 1e-300),
        )
        if size <= tol:
            return y, p, abs(omega)
    return None


def _critical_pair(ev):
    """Index of the complex eigenvalue (Im > 0) closest to the imaginary axis, or None."""
    tol = _REL_EIG_TOL * np.max(np.abs(ev))
    idx = np.flatnonzero(ev.imag > tol)
    if idx.size == 0:
        return None
    return idx[np.argmin(np.abs(ev[idx].real))]


def _near_interval(z_ref, Z, i):
    """Whether scaled point ``z_ref`` lies within two steps of the interval ``Z[i]..Z[i+1]``."""
    seg = np.max(np.abs(Z[i + 1] - Z[i]))
    mid = 0.5 * (Z[i] + Z[i + 1])
    return np.max(np.abs(z_ref - mid)) <= 2.0 * seg + 1e-8


def _bifurcation(system, kind, y, p, omega, refined):
    _, J, _ = system.linearise_one(y, p)
    return Bifurcation(
        kind=kind,
        p=float(p),
        state=y.copy(),
        frequency=float(omega),
        eigenvalues=_sorted_eigenvalues(J),
        refined=refined,
    )


def _detect(system, U, T, ev, n_cplx, n_real, S, lo, hi):
    """Folds and Hopf points between consecutive branch points, refined."""
    n = system.n
    Z = U / S
    width = hi - lo
    found = []

    def in_range(p):
        return lo - 1e-9 * width <= p <= hi + 1e-9 * width

    tp = T[:, n]
    det_sign = np.sign(np.prod(ev, axis=1).real)
    for i in np.flatnonzero(tp[:-1] * tp[1:] < 0):
        j = i if abs(tp[i]) < abs(tp[i + 1]) else i + 1
        y, p = U[j, :n], U[j, n]
        _, J, _ = system.linearise_one(y, p)
        v = np.linalg.svd(J)[2][-1]
        res = _refine_fold(system, y, p, v, S)
        if res is not None and in_range(res[1]) and _near_interval(np.append(res[0], res[1]) / S, Z, i):
            found.append(_bifurcation(system, "fold", res[0], res[1], np.nan, True))
            continue
        if det_sign[i] * det_sign[i + 1] >= 0:
            continue  # a turning point without a real eigenvalue crossing 0: a pitchfork's branch, not a fold
        s = tp[i] / (tp[i] - tp[i + 1])
        u = U[i] + s * (U[i + 1] - U[i])
        found.append(_bifurcation(system, "fold", u[:n], u[n], np.nan, False))
    for i in np.flatnonzero((n_cplx[:-1] != n_cplx[1:]) & (n_real[:-1] == n_real[1:])):
        ends = [_critical_pair(ev[i]), _critical_pair(ev[i + 1])]
        if ends[0] is None or ends[1] is None:
            continue
        r0, r1 = ev[i, ends[0]].real, ev[i + 1, ends[1]].real
        s = float(np.clip(r0 / (r0 - r1), 0.0, 1.0)) if r0 != r1 else 0.5
        u = U[i] + s * (U[i + 1] - U[i])
        w_guess = (1 - s) * ev[i, ends[0]].imag + s * ev[i + 1, ends[1]].imag
        _, J, _ = system.linearise_one(u[:n], u[n])
        lam, vec = np.linalg.eig(J)
        k = _critical_pair(lam)
        if k is not None:
            q = vec[:, k] / vec[np.argmax(np.abs(vec[:, k])), k]
            a = q.real / np.linalg.norm(q.real)
            q = q / (a @ q)  # now a . Re q = 1 and a . Im q = 0
            res = _refine_hopf(system, u[:n], u[n], q.real, q.imag, lam[k].imag, S)
            if (
                res is not None
                and in_range(res[1])
                and res[2] > 1e-6 * np.max(np.abs(lam))
                and _near_interval(np.append(res[0], res[1]) / S, Z, i)
            ):
                found.append(_bifurcation(system, "hopf", res[0], res[1], res[2], True))
                continue
        scale = [np.max(np.abs(ev[i])), np.max(np.abs(ev[i + 1]))]
        if abs(ev[i, ends[0]].imag) >= 1e-3 * scale[0] and abs(ev[i + 1, ends[1]].imag) >= 1e-3 * scale[1]:
            found.append(_bifurcation(system, "hopf", u[:n], u[n], w_guess, False))
    return found


def _same_point(a, b, S):
    """Whether two bifurcations are the same point (same kind, close in scaled coordinates)."""
    if a.kind != b.kind:
        return False
    rtol = 1e-6 if (a.refined and b.refined) else 1e-3
    n = S.size - 1
    dy = np.max(np.abs(a.state - b.state) / S[:n])
    return abs(a.p - b.p) <= rtol * S[n] and dy <= rtol * max(1.0, np.max(np.abs(a.state) / S[:n]))


def _dedupe(points, S):
    """Keep each bifurcation once, preferring refined ones."""
    kept = []
    for bif in sorted(points, key=lambda b: not b.refined):
        if not any(_same_point(bif, k, S) for k in kept):
            kept.append(bif)
    order = {id(b): i for i, b in enumerate(points)}
    return sorted(kept, key=lambda b: order[id(b)])


# --------------------------------------------------------------------------
# the whole diagram
# --------------------------------------------------------------------------


def _latin_hypercube(rng, lo, hi, m):
    """``m`` points of a Latin hypercube in the box ``[lo, hi]``; shape (n, m)."""
    n = lo.size
    strata = rng.permuted(np.tile(np.arange(m), (n, 1)), axis=1)
    unit = (strata + rng.random((n, m))) / m
    return lo[:, None] + (hi - lo)[:, None] * unit


def _on_branch(system, branch, p, y, tol):
    """Whether the equilibrium ``y`` at ``p`` lies on ``branch``.

    Each segment of the branch that spans ``p`` gives, by interpolation and
    Newton at fixed ``p``, an equilibrium of the branch there; ``y`` is on the
    branch if it equals one of them (to ``1e-6`` relative) or is next to the
    polyline of the branch (:func:`_near_polyline`).
    """
    S = np.append(branch.y_scale, system.p_scale)
    if _near_polyline(branch, p, y, S):
        return True
    P = branch.p
    segs = np.flatnonzero((P[:-1] - p) * (P[1:] - p) <= 0)
    if segs.size == 0:
        return False
    dp = P[segs + 1] - P[segs]
    s = np.where(dp != 0, (p - P[segs]) / np.where(dp != 0, dp, 1.0), 0.0)
    guesses = branch.states[segs] + s[:, None] * (branch.states[segs + 1] - branch.states[segs])
    Y, ok = _newton(system, guesses.T.copy(), np.full(segs.size, p), tol, 20)
    for j in np.flatnonzero(ok):
        if np.max(np.abs(Y[:, j] - y) / np.maximum(np.maximum(np.abs(y), np.abs(Y[:, j])), 1.0)) <= 1e-6:
            return True
    return False


def _near_polyline(branch, p, y, S):
    """Whether ``(y, p)`` is within a tenth of a segment's length of a segment of ``branch``.

    Catches an equilibrium at a fold of the branch (no segment spans its
    ``p``): a step whose tangent turns by at most ~26 degrees (``_MIN_COS``)
    strays from its chord by about 6% of its length.
    """
    Z = np.column_stack([branch.states, branch.p]) / S
    z = np.append(y, p) / S
    D = np.diff(Z, axis=0)
    dd = np.einsum("ij,ij->i", D, D)
    s = np.clip(np.einsum("ij,ij->i", z - Z[:-1], D) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
    dist = np.linalg.norm(Z[:-1] + s[:, None] * D - z, axis=1)
    return bool(np.any(dist <= 0.1 * np.sqrt(dd) + 1e-12))


@_quiet
def bifurcations(
    f,
    n,
    p_range,
    guesses=None,
    *,
    seed=0,
    n_starts=64,
    box=(-10.0, 10.0),
    n_p=5,
    jac=None,
    ds=0.01,
    ds_max=0.05,
    max_steps=1000,
    tol=1e-10,
):
    """Every branch of equilibria reachable from the starting points, with its folds and Hopf points.

    Newton's method runs from every starting point at ``n_p`` parameter values
    spread over ``p_range`` (the midpoints of ``n_p`` equal parts, and both ends). Each
    distinct equilibrium not already on a computed branch starts a new
    continuation (:func:`continue_equilibria`), all with one common
    ``y_scale`` (the largest ``|y_i|`` among the equilibria found, at least
    1). Bifurcations found on several branches are kept once.

    Parameters
    ----------
    f, jac, p_range
        See the module notes.
    n : int
        Number of states.
    guesses : array_like, shape (n,) or (n, m), optional
        Starting states. When given, no points are sampled.
    seed : int or numpy.random.Generator, optional
        Seed of ``np.random.default_rng`` for the Latin-hypercube sample of
        starting points; the same seed gives the same result.
    n_starts : int
        Number of sampled starting points when ``guesses`` is None.
    box : (float or array_like (n,), float or array_like (n,))
        Lower and upper bounds of the sampled states, per state or common.
    n_p : int
        Number of parameter values at which equilibria are sought.
    ds, ds_max, max_steps, tol
        As in :func:`continue_equilibria`.

    Returns
    -------
    BifurcationDiagram
        Finding no equilibrium or no bifurcation is not an error.

    Examples
    --------
    >>> d = bifurcations(lambda y, a: a + 3 * y - y**3, 1, (-3.0, 3.0), seed=1)
    >>> [(b.kind, round(b.p, 9) + 0.0) for b in d.folds]
    [('fold', -2.0), ('fold', 2.0)]
    """
    lo, hi = _as_p_range(p_range)
    n = _as_count(n, "n")
    n_p = _as_count(n_p, "n_p")
    tol = _as_positive(tol, "tol")
    ds = _as_positive(ds, "ds")
    ds_max = _as_positive(ds_max, "ds_max")
    if ds > ds_max:
        raise InvalidInput(f"need ds <= ds_max; got {ds} and {ds_max}")
    max_steps = _as_count(max_steps, "max_steps")
    if guesses is None:
        n_starts = _as_count(n_starts, "n_starts")
        try:
            box_lo, box_hi = (np.broadcast_to(np.asarray(v, dtype=float), (n,)) for v in box)
        except (TypeError, ValueError) as err:
            raise InvalidInput(f"box must be (lo, hi), each a number or {n} numbers; got {box!r}") from err
        if not (np.all(np.isfinite(box_lo)) and np.all(np.isfinite(box_hi)) and np.all(box_lo < box_hi)):
            raise InvalidInput(f"box must be finite with lo < hi in every state; got {box!r}")
        starts = _latin_hypercube(np.random.default_rng(seed), box_lo, box_hi, n_starts)
    else:
        starts = _as_columns(guesses, n)
    system = _System(f, n, jac, p_scale=hi - lo)
    m = starts.shape[1]
    # the midpoints of n_p equal parts, and both ends (nudged inside), so that a
    # branch living only near an end of the range is found too
    width = hi - lo
    p_samples = np.concatenate([lo + width * (np.arange(n_p) + 0.5) / n_p,
                                [lo + 0.01 * width, hi - 0.01 * width]])
    Y, ok = _newton(system, np.tile(starts, len(p_samples)), np.repeat(p_samples, m), tol, 50)
    found = []
    for k, p in enumerate(p_samples):
        block = Y[:, k * m : (k + 1) * m][:, ok[k * m : (k + 1) * m]]
        block = block[:, _unique_columns(block, 1e-6)]
        if block.shape[1]:
            block = block[:, np.lexsort(block[::-1])]
        found += [(p, block[:, j]) for j in range(block.shape[1])]
    if found:
        y_scale = np.maximum(np.max(np.abs(np.array([y for _, y in found])), axis=0), 1.0)
    else:
        y_scale = np.ones(n)
    branches = []
    for p, y in found:
        if any(_on_branch(system, br, p, y, tol) for br in branches):
            continue
        branches.append(
            _continue(
                system,
                y,
                p,
                lo,
                hi,
                ds=ds,
                ds_min=1e-6 * ds,
                ds_max=ds_max,
                max_steps=max_steps,
                y_scale=y_scale,
                tol=tol,
                detect=True,
            )
        )
    S = np.append(y_scale, hi - lo)
    margin = 1e-9 * (hi - lo)  # as in _detect: a point refined onto an end of the range is in it
    points = _dedupe([b for br in branches for b in br.bifurcations if lo - margin <= b.p <= hi + margin], S)
    points.sort(key=lambda b: (b.p, tuple(b.state)))
    return BifurcationDiagram(
        p_range=(lo, hi),
        branches=tuple(branches),
        folds=tuple(b for b in points if b.kind == "fold"),
        hopf=tuple(b for b in points if b.kind == "hopf"),
    )

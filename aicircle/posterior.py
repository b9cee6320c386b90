"""A joint posterior over calibrated and uncalibrated parameters, by importance sampling.

The calibration's MCMC samples the parameters it calibrates with every other
parameter held at one value. Parameters the data barely inform (the future's
drivers) must not be held, nor drawn only over the slice where *each alone*
leaves the fit unchanged: they are drawn from a prior, and every draw is
weighed by the likelihood of the targets, jointly.

The proposal draws the calibrated parameters ``c`` from the MCMC ensemble
(a sample of ``p(c | u0, data)``, ``u0`` the held values) and the others
``u`` from their prior ``pi(u)``. The target is the joint posterior
``p(c, u | data) ∝ L(c, u) pi(c) pi(u)``, so the importance weight of a draw is

    w = L(c, u) / L(c, u0) = exp(-(chi2(c, u) - chi2(c, u0)) / (2 b^2)),

with ``chi2`` over the targets alone (the calibrated parameters' priors cancel)
and ``b`` the residual scale (Birge ratio) the MCMC used. The weights are
exact for this proposal; how well they work is measured by the effective
sample size (Kish), which every result carries. Under another prior ``pi'(u)``
the same draws serve with the weights multiplied by ``pi'(u) / pi(u)``
(:func:`reweight`), so P(outcome) under several priors costs no new runs.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from . import _check
from .calibrate import Problem
from .errors import InvalidInput
from .integrate import progress as bar

__all__ = ["Posterior", "Uniform", "declared_priors", "effective_sample_size", "importance_weights",
           "joint_posterior", "reweight", "weighted_probability"]


@dataclasses.dataclass(frozen=True)
class Uniform:
    """A uniform prior on ``[lo, hi]``, on the parameter itself or (``log=True``) on its logarithm."""

    lo: float
    hi: float
    log: bool = False
    source: str = ""

    def __post_init__(self):
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi):
            raise InvalidInput(f"a uniform prior needs finite lo < hi, got [{self.lo!r}, {self.hi!r}]")
        if self.log and self.lo <= 0:
            raise InvalidInput(f"a log-uniform prior needs lo > 0, got [{self.lo!r}, {self.hi!r}]")

    def sample(self, rng, n) -> np.ndarray:
        if self.log:
            return np.exp(rng.uniform(math.log(self.lo), math.log(self.hi), size=n))
        return rng.uniform(self.lo, self.hi, size=n)

    def log_pdf(self, x) -> np.ndarray:
        """Log density at ``x`` (-inf outside the support)."""
        x = np.asarray(x, dtype=float)
        inside = (x >= self.lo) & (x <= self.hi)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                density = -np.log(np.where(inside, x, 1.0)) - math.log(math.log(self.hi / self.lo))
        else:
            density = np.full(x.shape, -math.log(self.hi - self.lo))
        return np.where(inside, density, -np.inf)


def declared_priors(model, names) -> dict:
    """Uniform priors over the ranges ``[min, max]`` the model file declares for ``names``.

    The range and its source are the model's: the comment of each constant
    says where the range comes from (or that no source pins it).
    """
    table = model.parameters
    out = {}
    for name in _check.names(model, "names", names):
        if name not in table.index:
            raise InvalidInput(f"'{name}' is not a parameter of {model.path.name}")
        lo, hi = float(table.loc[name, "min"]), float(table.loc[name, "max"])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise InvalidInput(f"'{name}' declares no finite range [min,max] in {model.path.name}: "
                               f"it needs one to be drawn from a prior")
        out[name] = Uniform(lo, hi, source=str(table.loc[name, "doc"]))
    return out


def importance_weights(chi2, chi2_reference, birge=1.0) -> np.ndarray:
    """Normalised weights ``exp(-(chi2 - chi2_reference) / (2 birge^2))``.

    A draw whose chi-square is not finite gets weight 0 (the data reject it);
    so does one whose reference is not finite (its proposal was invalid).
    """
    chi2, ref = np.asarray(chi2, dtype=float), np.asarray(chi2_reference, dtype=float)
    birge = _check.finite("birge", birge)
    if chi2.shape != ref.shape or chi2.ndim != 1 or not birge > 0:
        raise InvalidInput(f"chi2 and chi2_reference must be 1-D of one length and birge > 0, got shapes "
                           f"{chi2.shape}, {ref.shape} and birge={birge!r}")
    ok = np.isfinite(chi2) & np.isfinite(ref)
    if not ok.any():
        raise InvalidInput("no draw has a finite chi-square: nothing to weigh")
    log_w = np.where(ok, -(np.where(ok, chi2, 0.0) - np.where(ok, ref, 0.0)) / (2 * birge**2), -np.inf)
    w = np.exp(log_w - log_w[ok].max())
    return w / w.sum()


def effective_sample_size(weights) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.sum(w * w))


def reweight(table, weights, prior, other) -> np.ndarray:
    """The weights of the same draws under the priors ``other`` instead of ``prior``.

    Each parameter of ``other`` must be one ``prior`` drew (a column of
    ``table``); the weight of each draw is multiplied by the ratio of the
    densities, and draws outside the new support get weight 0.
    """
    log_ratio = np.zeros(len(table))
    for name, new in other.items():
        if name not in prior or name not in table:
            raise InvalidInput(f"'{name}' was not drawn from a prior, so it cannot be given another one; "
                               f"drawn: {', '.join(prior)}")
        x = table[name].to_numpy(dtype=float)
        old = prior[name].log_pdf(x)
        log_ratio += new.log_pdf(x) - np.where(np.isfinite(old), old, 0.0)
    w = np.asarray(weights, dtype=float) * np.exp(log_ratio - np.max(log_ratio[np.isfinite(log_ratio)]))
    total = w.sum()
    if not total > 0:
        raise InvalidInput("no draw lies inside the new prior's support: draw again from a wider prior")
    return w / total


def weighted_probability(flags, weights, z=1.96) -> tuple:
    """P(flag) under ``weights``, with a Wilson interval at the weights' effective sample size.

    Returns ``(p, lo, hi)``.
    """
    flags = np.asarray(flags, dtype=bool)
    w = np.asarray(weights, dtype=float)
    if flags.shape != w.shape:
        raise InvalidInput(f"flags and weights must have one shape, got {flags.shape} and {w.shape}")
    p = float(np.sum(w * flags) / np.sum(w))
    n = effective_sample_size(w)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


@dataclasses.dataclass
class Posterior:
    """Draws of a joint posterior with their importance weights.

    ``draws`` has one column per parameter (calibrated and drawn), then
    ``chi2`` (the targets' chi-square of the draw), ``misfit`` (the squared
    residuals the MCMC saw: the targets' and the calibrated parameters'
    priors), ``misfit_reference`` (the same of the ensemble row the draw was
    made from, at the held values) and ``weight`` (normalised to sum to 1).
    A draw outside the calibrated box has NaN ``chi2`` and ``misfit`` and
    weight 0.
    """

    draws: pd.DataFrame
    calibrated: list
    priors: dict
    fixed: dict
    birge: float

    @property
    def weights(self) -> np.ndarray:
        return self.draws["weight"].to_numpy()

    @property
    def ess(self) -> float:
        return effective_sample_size(self.weights)

    def parameters(self) -> pd.DataFrame:
        """The draws' parameter values alone (one row per draw)."""
        return self.draws[self.calibrated + list(self.priors)]

    def probability(self, flags, priors=None) -> tuple:
        """P(flag) with its interval, under the draws' priors or under ``priors`` for some of them."""
        w = self.weights if priors is None else reweight(self.draws, self.weights, self.priors, priors)
        return weighted_probability(flags, w)


def joint_posterior(model, targets, ensemble, priors, held, birge=1.0, n=4000, seed=0, shift=True,
                    chunk_size=1000, progress=False) -> Posterior:
    """Draw ``n`` sets from the joint posterior of the calibrated and the uncalibrated parameters.

    Each draw takes a row ``c'`` of the calibration's MCMC ``ensemble`` and
    draws the other parameters ``u`` from ``priors``. With ``shift`` the row
    is moved to ``c = c' + D (u - u0)`` (in the calibration's search
    coordinates), where ``D`` is the linear response of the calibrated
    optimum to the drawn parameters, from one Jacobian at the ensemble's
    mean: where a drawn parameter trades off against calibrated ones, the
    draw then lands where the data put them, and the effective sample size
    stays large. The shift is a translation for each ``u``, so the weights

        w = exp(-(S(c, u) - S(c', u0)) / (2 b^2)),

    ``S`` the squared residuals of the targets and of the calibrated
    parameters' priors (as the MCMC saw them), are exact whatever ``D``;
    a draw whose ``c`` leaves the calibrated box gets weight 0.

    Parameters
    ----------
    model : aicircle.Model
    targets : pandas.DataFrame
        The targets the calibration used (:func:`aicircle.observables.read_targets`).
    ensemble : pandas.DataFrame
        The calibration's MCMC ensemble: one row per sample, one column per
        calibrated parameter.
    priors : dict
        Parameter name -> prior (:class:`Uniform`) for every parameter drawn.
    held : dict
        Every other parameter value the MCMC held (the calibration's
        parameters), including the held values ``u0`` of the drawn parameters.
    birge : float
        The residual scale the MCMC's likelihood used (``fit.json``'s
        ``mcmc.birge``).
    shift : bool
        Move each ensemble row by the linear response (above); without it the
        rows are taken as they are (exact too, but the weights degenerate where
        a drawn parameter trades off against calibrated ones).
    """
    ensemble = _check.table("ensemble", ensemble)
    if not priors:
        raise InvalidInput("priors is empty: name at least one parameter to draw")
    n, chunk_size = _check.whole_number("n", n), _check.whole_number("chunk_size", chunk_size)
    rng = np.random.default_rng(_check.seed(seed))
    calibrated = [model.resolve(c) for c in ensemble.columns]
    drawn = [model.resolve(p) for p in priors]
    priors = dict(zip(drawn, priors.values()))
    both = sorted(set(calibrated) & set(drawn))
    if both:
        raise InvalidInput(f"{', '.join(both)}: calibrated and drawn from a prior at once")
    held = {model.resolve(k): _check.finite(f"held['{k}']", v) for k, v in _check.mapping("held", held).items()}
    missing = [p for p in drawn if p not in held]
    if missing:
        raise InvalidInput(f"held gives no value for {', '.join(missing)}: the MCMC's held values are the "
                           f"reference of the weights")
    fixed = {k: v for k, v in held.items() if k not in calibrated and k not in drawn}
    # the calibrated parameters keep their priors (pseudo-observations, as in the MCMC); the drawn
    # parameters' pseudo-observations come last and are left out: their prior is ``priors``
    problem = Problem(model, targets, calibrated + drawn, fixed=fixed, priors=True)
    kc = len(calibrated)
    n_seen = len(problem.targets) + kc

    n_targets = len(problem.targets)

    def squares(X):
        """The targets' chi2 and the misfit the MCMC saw (targets and calibrated priors) of each row of X."""
        chi2, misfit = [], []
        starts = range(0, len(X), chunk_size)
        for start in bar(starts, progress and len(starts) > 1, "joint posterior", unit="chunk"):
            r = np.atleast_2d(problem.residuals(X[start:start + chunk_size]))[:, :n_seen]
            # a NaN residual (a prediction <= 0) makes both NaN: weight 0
            chi2.append(np.sum(r[:, :n_targets] ** 2, axis=1))
            misfit.append(np.sum(r * r, axis=1))
        return np.concatenate(chi2), np.concatenate(misfit)

    rows = ensemble.set_axis(calibrated, axis=1).assign(**{p: held[p] for p in drawn})
    X_ens = np.atleast_2d(problem.from_params(rows[problem.free]))
    index = rng.integers(0, len(ensemble), size=n)
    X_u = np.column_stack([_coordinate(problem, kc + j, priors[p].sample(rng, n)) for j, p in enumerate(drawn)])
    X_u0 = X_ens[0, kc:]
    X_c = X_ens[index, :kc]
    if shift:
        centre = np.concatenate([X_ens[:, :kc].mean(axis=0), X_u0])
        J, _ = problem.jacobian(centre)
        J = J[:n_seen]
        response = np.linalg.lstsq(J[:, :kc], J[:, kc:], rcond=None)[0]  # (kc, ku): d c* / d u = -response
        X_c = X_c - (X_u - X_u0) @ response.T
    X = np.hstack([X_c, X_u])
    inside = np.all((X_c >= problem.lower[:kc]) & (X_c <= problem.upper[:kc]), axis=1)
    used = np.unique(index)
    chi2_all, misfit_all = squares(np.vstack([X[inside], X_ens[used]]))
    k = int(inside.sum())
    chi2, misfit = np.full(n, np.nan), np.full(n, np.nan)
    chi2[inside], misfit[inside] = chi2_all[:k], misfit_all[:k]
    draws = problem.to_params(X)[problem.free]
    draws["chi2"], draws["misfit"] = chi2, misfit
    draws["misfit_reference"] = misfit_all[k:][np.searchsorted(used, index)]
    draws["weight"] = importance_weights(misfit, draws["misfit_reference"], birge)
    return Posterior(draws, calibrated, priors, fixed, float(birge))


def _coordinate(problem, j, values):
    """Search coordinate ``j`` of ``problem`` for parameter values (log where the problem searches in logs)."""
    values = np.asarray(values, dtype=float)
    return np.log(values) if problem.log[j] else values

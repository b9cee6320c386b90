"""Sensitivity analysis, Monte Carlo bands and ensembles, locally or on a cluster.

- :func:`sensitivity`: one-at-a-time (tornado), Morris screening and Sobol
  indices (SALib) of any variable at any time;
- :func:`monte_carlo`: Vensim-style confidence bands (50/75/95/100%) over time
  and the probability of a bust (docs/design.md §4) by each year;
- :func:`run_ensemble`: the batch integrator over a table of parameter sets,
  split into fixed chunks that run here or on an ``executor`` (a
  ``dask.distributed.Client`` or any ``concurrent.futures.Executor``). Chunks
  are fixed by ``chunk_size`` alone, so results never depend on the number of
  workers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from . import _check, _limits
from .errors import InvalidInput, SampleSizeWarning, UnknownName
from .tipping import Classifier

__all__ = ["BANDS", "bands_of", "dask_client", "monte_carlo", "p_bust_by_year", "parameter_bounds", "run_ensemble",
           "sensitivities", "sensitivity"]

METHODS = ("oat", "morris", "sobol")
BANDS = (50, 75, 95, 100)  # Vensim's sensitivity-graph confidence bands, in percent
MIN_N = {"morris": 4, "sobol": 16}
SOBOL_N_PER_PARAMETER = 4  # below N = 4 D a warning (see sensitivity())
MAX_RUNS = 10_000_000  # ~1.5 hours at the shipped model's ~2000 runs/s: beyond it, refuse before sampling


def parameter_bounds(model, bounds=None, switches=()) -> dict:
    """The parameters to vary and their ranges.

    Parameters
    ----------
    model : aicircle.Model
    bounds : dict, optional
        Name -> (lo, hi). When given, exactly these parameters vary.
        Otherwise every parameter whose declared range is finite with
        min < max varies (a declared ``[a,a]`` holds it fixed), except the
        ``switches``.
    switches : collection of str
        Parameters never varied by default (a study's scenario inputs, off
        unless a scenario sets them), as the model spells them.

    Returns
    -------
    dict
        Parameter name (as in the model file) -> (lo, hi).
    """
    out = {}
    bounds = _check.mapping("bounds", bounds)
    if bounds:
        for name, pair in bounds.items():
            canon = model.resolve(name)
            if canon not in model.parameters.index:
                raise InvalidInput(f"'{canon}' is not a parameter (a numeric constant) of the model")
            if isinstance(pair, str) or not hasattr(pair, "__len__") or len(pair) != 2:
                raise InvalidInput(f"bounds of '{canon}' must be a pair (lo, hi), got {pair!r}")
            lo, hi = (_check.finite(f"bounds of '{canon}'", b) for b in pair)
            if not lo < hi:
                raise InvalidInput(f"bounds of '{canon}' need LO < HI, got {lo:g}:{hi:g}")
            out[canon] = (lo, hi)
        return out
    if isinstance(switches, str) or not hasattr(switches, "__iter__"):
        raise InvalidInput(f"switches must be a collection of parameter names, got {switches!r}")
    switches = {model.resolve(name) for name in switches}
    for name, row in model.parameters.iterrows():
        lo, hi = row["min"], row["max"]
        if np.isfinite(lo) and np.isfinite(hi) and lo < hi and name not in switches:
            out[name] = (float(lo), float(hi))
    if not out:
        raise InvalidInput("no parameter has a finite declared range; give --bounds NAME=LO:HI")
    return out


def _chunk(model, table, outputs, kwargs):
    ds = model.simulate_batch(table, return_columns=outputs, **kwargs)
    return {name: ds[name].to_numpy() for name in outputs}, ds["time"].to_numpy()


def run_ensemble(model, table, outputs, executor=None, chunk_size=1000, progress=False,
                 **simulate_kwargs):
    """Run ``model`` once per row of ``table``, in fixed chunks.

    Parameters
    ----------
    model : aicircle.Model
    table : pandas.DataFrame
        One row per parameter set.
    outputs : list of str
        Variables to return.
    executor : dask.distributed.Client or concurrent.futures.Executor, optional
        Where the chunks run; here when None.
    chunk_size : int
        Rows per chunk. The split depends on this alone, never on the workers.
    progress : bool
        Show a progress bar over chunks.
    **simulate_kwargs
        Passed to :meth:`aicircle.Model.simulate_batch` (solver, final_time, ...).

    Returns
    -------
    values : dict
        Output name -> ndarray, shape (n_sets, n_times).
    times : ndarray, shape (n_times,)
    """
    from .integrate import progress as bar

    _check.table("table", table)
    chunk_size = _check.whole_number("chunk_size", chunk_size)
    outputs = _check.names(model, "outputs", outputs)
    # the chunks' results and their concatenation are held at once
    _limits.check_ensemble(model, len(table), len(outputs), chunk_size, simulate_kwargs, "run_ensemble",
                           "fewer rows of table, fewer outputs or a larger saveper", result_copies=2)
    pieces = [table.iloc[i:i + chunk_size] for i in range(0, len(table), chunk_size)]
    if executor is None:
        results = [_chunk(model, p, outputs, simulate_kwargs)
                   for p in bar(pieces, progress and len(pieces) > 1, "runs", unit="chunk")]
    else:
        shared = _share(executor, model)
        futures = [executor.submit(_chunk, shared, p, outputs, simulate_kwargs) for p in pieces]
        results = [f.result() for f in bar(futures, progress, "runs", unit="chunk")]
    values = {name: np.concatenate([r[0][name] for r in results], axis=0) for name in outputs}
    return values, results[0][1]


def dask_client(n_workers=2, threads_per_worker=1, **cluster_kwargs):
    """Start a local ``dask.distributed`` cluster and return its client (close it when done).

    Raises
    ------
    ImportError
        When Dask is not installed, naming the extra that brings it.
    """
    try:
        import distributed
    except ImportError as err:
        raise ImportError("Dask is not installed: pip install 'aicircle[distributed]'") from err
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                       dashboard_address=None, **cluster_kwargs)
    return distributed.Client(cluster)


def _share(executor, model):
    """Send the model to a Dask cluster once (other executors pickle it per task)."""
    scatter = getattr(executor, "scatter", None)
    if scatter is not None:
        # hash=False: a fresh key per call; with content keys, a second ensemble could ask for
        # the key the first one is just releasing ("lost dependencies")
        return scatter(model, broadcast=True, hash=False)
    return model


def _at(values, times, at):
    """Values at time ``at`` (linear interpolation between saved times), shape (n_sets,)."""
    if not times[0] - 1e-9 <= at <= times[-1] + 1e-9:
        raise InvalidInput(f"--at {at:g} is outside the run ({times[0]:g} to {times[-1]:g})")
    i = int(np.clip(np.searchsorted(times, at), 1, len(times) - 1))
    if abs(times[i - 1] - at) < 1e-9:
        return values[:, i - 1]
    w = (at - times[i - 1]) / (times[i] - times[i - 1])
    return (1 - w) * values[:, i - 1] + w * values[:, i]


def sensitivity(model, method, output, at=None, bounds=None, n=None, seed=0, executor=None,
                chunk_size=1000, progress=False, params=None, switches=(), **simulate_kwargs) -> pd.DataFrame:
    """Sensitivity of ``output`` at time ``at`` to the model's parameters.

    One output of :func:`sensitivities` (see there for the parameters).

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter, most influential first: ``low, high`` (oat);
        ``mu_star, sigma, mu_star_conf`` (morris); ``S1, ST, S1_conf, ST_conf``
        (sobol).
    """
    output = _check.one_column(model, "output", model.resolve(output))
    return sensitivities(model, method, [output], at=at, bounds=bounds, n=n, seed=seed, executor=executor,
                         chunk_size=chunk_size, progress=progress, params=params, switches=switches,
                         **simulate_kwargs)[output]


def sensitivities(model, method, outputs, at=None, bounds=None, n=None, seed=0, executor=None,
                  chunk_size=1000, progress=False, params=None, switches=(), **simulate_kwargs) -> dict:
    """Sensitivity of each of ``outputs`` at time ``at`` to the model's parameters, from one sample.

    Parameters
    ----------
    model : aicircle.Model
    method : {'oat', 'morris', 'sobol'}
        ``oat``: the output at each bound, the others at their values;
        ``morris``: elementary effects on ``n`` trajectories (4 levels);
        ``sobol``: Saltelli/Sobol' sampling with SALib's base sample size
        ``n`` (a power of 2), ``n·(D+2)`` runs, first and total order.
    outputs : list of str
        Model variables; one ensemble run serves them all.
    at : float, optional
        Time of the output; FINAL TIME by default.
    bounds, switches : optional
        See :func:`parameter_bounds`.
    n : int, optional
        SALib's N; defaults: 64 for morris, 1024 for sobol.
    seed : int
        Seed of the sample (and of SALib's bootstrap).
    params : dict, optional
        Values of the parameters that do not vary (e.g. a calibration); the
        model file's values otherwise. For OAT they are also the base point.

    Returns
    -------
    dict
        Output -> the DataFrame :func:`sensitivity` returns for it.
    """
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise UnknownName(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    method = method.lower()
    outputs = list(dict.fromkeys(_check.one_column(model, "output", name)
                                 for name in _check.names(model, "outputs", outputs)))
    chunk_size = _check.whole_number("chunk_size", chunk_size)
    seed = _check.seed(seed)
    params = _check.mapping("params", params)
    space = parameter_bounds(model, bounds, switches)
    names = list(space)
    problem = {"num_vars": len(names), "names": names, "bounds": [list(space[k]) for k in names]}
    runs = 2 * len(names)
    if method != "oat":
        n = {"morris": 64, "sobol": 1024}[method] if n is None else _check.whole_number("n", n)
        if n < MIN_N[method]:
            raise InvalidInput(f"--n {n} is too small for {method}: use at least {MIN_N[method]}")
        runs = n * (len(names) + 2) if method == "sobol" else n * (len(names) + 1)
        if runs > MAX_RUNS:
            raise InvalidInput(f"--n {n} asks for {runs:,} runs of the model ({method} over {len(names)} "
                               f"parameters); at most {MAX_RUNS:,}: use a smaller --n or fewer --bounds")
        if method == "sobol" and n & (n - 1):
            raise InvalidInput(f"--n {n} must be a power of 2 for sobol (e.g. {1 << n.bit_length()})")
        if method == "sobol" and n < SOBOL_N_PER_PARAMETER * len(names):
            # Saltelli's estimators need N well above D: with N = 16 over 128 parameters the
            # first-order indices come out negative far beyond their bootstrap intervals
            warnings.warn(f"Sobol with N = {n} over {len(names)} parameters: the indices are unreliable "
                          f"below N = {SOBOL_N_PER_PARAMETER} x {len(names)}; pass --n "
                          f"{1 << (SOBOL_N_PER_PARAMETER * len(names) - 1).bit_length()} or fewer --bounds",
                          SampleSizeWarning, stacklevel=2)
    if at is None:
        at = model.time["final_time"] if "final_time" not in simulate_kwargs \
            else simulate_kwargs["final_time"]
    at = _check.finite("at", at)
    run = dict(simulate_kwargs)
    fixed = {model.resolve(k): _check.finite(f"params['{k}']", v) for k, v in params.items()}
    # before the sample is drawn: its table, the runs' results (twice in run_ensemble)
    _limits.check_ensemble(model, runs, len(outputs), chunk_size, run,
                           f"{method} sensitivity of {runs:,} runs",
                           "a smaller --n, fewer --bounds or fewer outputs", result_copies=2,
                           table_columns=len(set(names) | set(fixed)))
    if method == "oat":
        base = {**model.parameters["value"].to_dict(), **fixed}
        rows = []
        for k in names:
            for bound in space[k]:
                row = {p: float(base[p]) for p in names}
                row[k] = bound
                rows.append(row)
        table = pd.DataFrame(rows)
    elif method == "morris":
        from SALib.sample import morris as morris_sample

        table = pd.DataFrame(morris_sample.sample(problem, n, num_levels=4, seed=seed), columns=names)
    else:
        from SALib.sample import sobol as sobol_sample

        table = pd.DataFrame(sobol_sample.sample(problem, n, calc_second_order=False, seed=seed),
                             columns=names)
    held = {k: v for k, v in fixed.items() if k not in table}
    if held:  # all columns at once (one at a time fragments the frame)
        table = pd.concat([table, pd.DataFrame(held, index=table.index)], axis=1)
    values, times = run_ensemble(model, table, outputs, executor=executor, chunk_size=chunk_size,
                                 progress=progress, **run)
    return {output: _indices(method, problem, names, table, _at(values[output], times, float(at)), output, at,
                             seed) for output in outputs}


def _indices(method, problem, names, table, y, output, at, seed):
    """The indices of one output's values ``y`` (one per row of ``table``), ranked."""
    if not np.all(np.isfinite(y)):
        bad = int(np.sum(~np.isfinite(y)))
        raise InvalidInput(f"{bad} of {len(y)} runs give a non-finite '{output}' at {at:g}; "
                           f"narrow the bounds")
    index = pd.Index(names, name="parameter")
    if method == "oat":
        frame = pd.DataFrame({"low": y[0::2], "high": y[1::2]}, index=index)
        return frame.loc[(frame["high"] - frame["low"]).abs().sort_values(ascending=False).index]
    if method == "morris":
        from SALib.analyze import morris as morris_analyze

        # the sample's own columns: ``table`` also holds the values of parameters it does not vary
        res = morris_analyze.analyze(problem, table[names].to_numpy(), y, num_levels=4, seed=seed)
        frame = pd.DataFrame({"mu_star": res["mu_star"], "sigma": res["sigma"],
                              "mu_star_conf": res["mu_star_conf"]}, index=index)
        return frame.sort_values("mu_star", ascending=False)
    from SALib.analyze import sobol as sobol_analyze

    # SALib seeds its bootstrap only `if seed:`, so seed 0 would fall back to the global
    # generator: hand it a Generator made from ours instead
    res = sobol_analyze.analyze(problem, y, calc_second_order=False, seed=np.random.default_rng(seed))
    frame = pd.DataFrame({"S1": res["S1"], "ST": res["ST"], "S1_conf": res["S1_conf"],
                          "ST_conf": res["ST_conf"]}, index=index)
    return frame.sort_values("ST", ascending=False)


def sample_parameters(model, n, seed=0, ensemble=None, bounds=None, switches=()) -> pd.DataFrame:
    """``n`` parameter sets: rows drawn from ``ensemble`` or uniform in :func:`parameter_bounds`."""
    n = _check.whole_number("n", n)
    rng = np.random.default_rng(_check.seed(seed))
    if ensemble is not None:
        if not isinstance(ensemble, pd.DataFrame):
            raise InvalidInput(f"ensemble must be a pandas DataFrame of parameter sets, got "
                               f"{type(ensemble).__name__}")
        if len(ensemble) == 0:
            raise InvalidInput("the ensemble is empty")
        idx = rng.integers(0, len(ensemble), size=n)
        return ensemble.iloc[idx].reset_index(drop=True)
    space = parameter_bounds(model, bounds, switches)
    return pd.DataFrame({k: rng.uniform(lo, hi, size=n) for k, (lo, hi) in space.items()})


def monte_carlo(model, n=1000, seed=0, outputs=None, ensemble=None, bounds=None, executor=None,
                chunk_size=1000, progress=False, classifier=None, start=None, table=None, switches=(),
                **simulate_kwargs):
    """Monte Carlo over parameter uncertainty.

    Parameters
    ----------
    model : aicircle.Model
    n : int
        Number of runs.
    outputs : list of str
        Variables to band.
    ensemble : pandas.DataFrame, optional
        Parameter sets to draw from (a calibration's ensemble); the declared
        ranges otherwise (:func:`parameter_bounds` with ``bounds`` and ``switches``).
    classifier : aicircle.tipping.Classifier, optional
        Also compute the probability that a run has been in a bust (as the
        classifier defines it) at some time between ``start`` and each year.
    table : pandas.DataFrame, optional
        The parameter sets themselves (``n``, ``ensemble`` and ``bounds`` are
        then not used).

    Returns
    -------
    bands : pandas.DataFrame
        Index (output, time); columns ``median`` and ``lo50, hi50, lo75, hi75,
        lo95, hi95, lo100, hi100``.
    p_bust : pandas.Series or None
        Probability of a bust by each whole year (None without a classifier).
    """
    if not outputs:
        raise InvalidInput("Monte Carlo needs at least one output to band")
    wanted = _check.names(model, "outputs", outputs)
    if classifier is not None and not isinstance(classifier, Classifier):
        raise InvalidInput(f"classifier must be an aicircle.tipping.Classifier, got {classifier!r}")
    judged = [model.resolve(v) for v in classifier.variables] if classifier is not None else []
    needed = list(dict.fromkeys(wanted + judged))
    chunk_size = _check.whole_number("chunk_size", chunk_size)
    if table is None:
        n = _check.whole_number("n", n, 2)
        seed = _check.seed(seed)
        columns = len(ensemble.columns) if isinstance(ensemble, pd.DataFrame) else \
            len(parameter_bounds(model, bounds, switches))
        # before the sample is drawn: its table, the runs' results (twice in run_ensemble)
        _limits.check_ensemble(model, n, len(needed), chunk_size, simulate_kwargs,
                               f"monte_carlo of {n:,} runs", "a smaller n or fewer outputs", result_copies=2, table_columns=columns)
        table = sample_parameters(model, n, seed=seed, ensemble=ensemble, bounds=bounds, switches=switches)
    values, times = run_ensemble(model, table, needed, executor=executor, chunk_size=chunk_size,
                                 progress=progress, **simulate_kwargs)
    p_bust = None
    if classifier is not None:
        first = classifier.first_bust(times, [values[c] for c in judged], start=start)
        begin = math.ceil(times[0] if start is None else start)
        p_bust = p_bust_by_year(first, np.arange(begin, math.floor(times[-1]) + 1))
    return bands_of(values, times, wanted), p_bust


def bands_of(values, times, outputs) -> pd.DataFrame:
    """Vensim-style bands of an ensemble's ``values`` (name -> array (n_sets, n_times)).

    Returns
    -------
    pandas.DataFrame
        Index (output, time); columns ``median`` and ``lo50, hi50, lo75, hi75,
        lo95, hi95, lo100, hi100``.
    """
    frames = []
    missing = [name for name in outputs if name not in values]
    if missing:
        raise UnknownName(f"outputs: '{missing[0]}' is not among the values ({', '.join(values)})")
    for name in outputs:
        v = values[name]
        cols = {"median": np.nanmedian(v, axis=0)}
        for b in BANDS:
            cols[f"lo{b}"] = np.nanpercentile(v, 50 - b / 2, axis=0)
            cols[f"hi{b}"] = np.nanpercentile(v, 50 + b / 2, axis=0)
        frames.append(pd.DataFrame(cols, index=pd.MultiIndex.from_product(
            [[name], times], names=["output", "time"])))
    return pd.concat(frames)


def p_bust_by_year(first_bust, years) -> pd.Series:
    """Share of runs whose first bust (a time, NaN for none) comes by each of ``years``."""
    try:
        first = np.asarray(first_bust, dtype=float)
        np.asarray(years, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInput(f"first_bust and years must be numbers, got {first_bust!r} and {years!r}") from None
    return pd.Series([float(np.mean(first <= y + 1e-9)) for y in years], index=pd.Index(years, name="year"),
                     name="p_bust")

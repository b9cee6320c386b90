"""Figures. The only module that imports matplotlib (Agg backend: no screen needed).

Every function takes data, draws on ``ax`` (a new figure when None) and
returns the Axes or the Figure; none calls ``show()``.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .errors import InvalidInput, UnknownName  # noqa: E402

__all__ = [
    "panels", "plot_bands", "plot_bifurcation", "plot_distributions", "plot_fit", "plot_loop_dominance",
    "plot_outcome_map", "plot_p_bust", "plot_profiles",
    "plot_regime_map", "plot_residuals", "plot_response", "plot_run", "plot_scenarios", "plot_sensitivity",
    "plot_structure", "plot_time_to_bust", "save",
]

OUTCOME_COLOURS = {"boom": "#2a9d8f", "soft landing": "#e9c46a", "bust": "#e76f51"}
#: The ``Software`` entry of every PNG aicircle saves.
PNG_SOFTWARE = "aicircle"
#: Scenario lines: a dash pattern and a marker each (the baseline is solid black, beneath them).
SCENARIO_STYLES = ("--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))
SCENARIO_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<")
# opaque colours, widest band lightest: overlapping translucent bands would sum their shades
BAND_COLOURS = {100: "#deebf7", 95: "#9ecae1", 75: "#6baed6", 50: "#3182bd"}


def _axes(ax, figsize=(7, 4.2)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def panels(n, ncols=3, size=(5, 3.6)):
    """A figure with ``n`` panels on a grid of ``ncols`` columns, ``size`` inches each.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : list of Axes, length n (the grid's spare cells are hidden)
    """
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), layout="constrained",
                             squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]


def save(fig_or_ax, path, dpi=130, format=None):
    """Save a figure (or an Axes' figure) to ``path`` and close it.

    ``format`` defaults to the path's suffix. A PNG says ``Software: aicircle`` in
    its metadata: how ``aicircle plot`` knows a file it may replace.
    """
    fig = fig_or_ax.figure if hasattr(fig_or_ax, "figure") and not isinstance(fig_or_ax, plt.Figure) \
        else fig_or_ax
    if not isinstance(fig, plt.Figure):
        raise InvalidInput(f"save needs a matplotlib Figure or Axes, got {type(fig_or_ax).__name__}")
    if format is None and (Path(path).is_dir() or not Path(path).suffix):
        # matplotlib would write PATH.png beside a folder or a bare name: another file than the one named
        raise InvalidInput(f"path {str(path)!r} needs a file name with a suffix (e.g. .png), or give format=")
    kind = (format or Path(path).suffix.lstrip(".")).lower()
    fig.savefig(path, dpi=dpi, format=format, metadata={"Software": PNG_SOFTWARE} if kind == "png" else None)
    plt.close(fig)
    return path


def _frame(name, value):
    """``value`` if it is a non-empty DataFrame; an InvalidInput naming ``name`` otherwise."""
    if not isinstance(value, pd.DataFrame) or value.empty:
        raise InvalidInput(f"{name} must be a non-empty pandas DataFrame, got "
                           f"{'an empty one' if isinstance(value, pd.DataFrame) else type(value).__name__}")
    return value


def _unit_label(unit):
    return {"$B/Year": "$B per year", "$B": "$B", "GW": "GW", "million": "million",
            "fraction": "fraction"}.get(unit, unit)


def _target_points(targets, observable):
    """Data points of one observable as rates on the model's scale: (t, lo_t, hi_t, y, ylo, yhi)."""
    rows = targets[(targets["observable"] == observable)
                   & targets["aggregation"].isin(["total", "mean", "level", "share"])]
    pts = []
    for r in rows.itertuples():
        a, b = r.t_start, r.t_end
        if r.aggregation == "total":
            y = r.value / (b - a)  # the window's mean rate, $B/Year
        else:
            y = r.value
        if r.scale == "log":
            lo, hi = y * math.exp(-r.sigma), y * math.exp(r.sigma)
        else:
            lo, hi = y - r.sigma, y + r.sigma
        mid = b if r.aggregation == "level" else (a + b) / 2
        pts.append((mid, a if r.aggregation != "level" else b, b, y, lo, hi))
    return pts


def plot_fit(targets, times, values, names, bands=None, ncols=3, title=None, vocabulary=None):
    """Each calibrated observable over time, with its data points and error bars.

    Parameters
    ----------
    targets : pandas.DataFrame
        As read by :func:`aicircle.observables.read_targets`.
    times : ndarray, shape (n_times,)
    values : dict
        Model variable name -> ndarray (n_times,): the calibrated run.
    names : dict
        Observable id -> model variable name (only those with targets are drawn).
    bands : pandas.DataFrame, optional
        :func:`aicircle.sensitivity.monte_carlo` bands, drawn behind the line.
    vocabulary : mapping, optional
        The targets' observables (:func:`aicircle.observables.vocabulary`): the
        y axes carry their units.
    """
    vocabulary = vocabulary or {}
    obs = [o for o in dict.fromkeys(targets["observable"])
           if o in names and targets.loc[targets["observable"] == o, "aggregation"].ne("growth").any()]
    n = len(obs)
    fig, axes = panels(n, ncols, size=(4.6, 3.2))
    for ax, o in zip(axes, obs):
        var = names[o]
        if bands is not None and var in bands.index.get_level_values(0):
            b = bands.loc[var]
            ax.fill_between(b.index, b["lo95"], b["hi95"], color="C0", alpha=0.15, lw=0,
                            label="95% ensemble band")
        ax.plot(times, values[var], color="C0", lw=1.8, label="model (calibrated)")
        for mid, a, bnd, y, lo, hi in _target_points(targets, o):
            ax.errorbar(mid, y, yerr=[[y - lo], [hi - y]], xerr=[[mid - a], [bnd - mid]] if bnd > a else None,
                        fmt="o", ms=4, color="black", ecolor="0.35", elinewidth=1, capsize=2,
                        zorder=3, label="data (±1σ; bar = window)")
        unit = vocabulary[o].unit if o in vocabulary else ""
        ax.set_title(var, fontsize=10)
        ax.set_xlabel("year")
        ax.set_ylabel(_unit_label(unit))
        if unit not in ("fraction",) and np.nanmin(values[var]) > 0:
            ax.set_yscale("log")
        ax.set_xlim(times[0], times[-1])
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), fontsize=7, loc="upper left")
    fig.suptitle(title or "Calibrated model against the data (totals shown as the window's mean rate)",
                 fontsize=12)
    return fig


#: Residuals beyond this many σ are drawn to it, with their value written at the bar's end.
RESIDUAL_CLIP = 8.0
#: Inches per target in the residual chart: 7-point labels one per bar never touch.
_RESIDUAL_PITCH = 0.17


def plot_residuals(validation, ax=None):
    """Residual (error / sigma) of every target as a ranked bar, each bar labelled, with the ±2σ band.

    Parameters
    ----------
    validation : pandas.DataFrame
        One row per target with ``residual`` and ``id`` (without ``id``, the
        bar is labelled with the ``observable`` and the row's number). A NaN
        residual (no prediction) is labelled as such, without a bar.
    """
    v = validation.reset_index(drop=True)
    ax = _axes(ax, (7, max(3.0, _RESIDUAL_PITCH * len(v) + 1.4)))
    labels = (v["id"].astype(str) if "id" in v
              else v["observable"].astype(str) + " #" + (v.index + 1).astype(str))
    r = v["residual"].to_numpy(dtype=float)
    order = np.argsort(np.where(np.isnan(r), -np.inf, r), kind="stable")  # largest at the top
    r, labels = r[order], labels.to_numpy()[order]
    y = np.arange(len(r))
    drawn = np.clip(np.nan_to_num(r, nan=0.0), -RESIDUAL_CLIP, RESIDUAL_CLIP)
    outside = ~(np.abs(r) <= 2)
    ax.axvspan(-2, 2, color="0.9", zorder=0, label="within 2σ")
    ax.axvline(0, color="0.5", lw=0.8)
    ax.barh(y[~outside], drawn[~outside], 0.7, color="C0", zorder=3)
    ax.barh(y[outside], drawn[outside], 0.7, color="C3", zorder=3, label="outside 2σ")
    for yi, ri in zip(y, r):
        if np.isnan(ri):
            ax.text(0.2, yi, "no prediction", va="center", fontsize=7, color="0.3")
        elif abs(ri) > RESIDUAL_CLIP:  # the true value, inside the clipped bar's end
            ax.text(np.sign(ri) * RESIDUAL_CLIP, yi, f" {ri:.1f} ", va="center", fontsize=7,
                    ha="right" if ri > 0 else "left", color="white", weight="bold", zorder=4)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_ylim(-0.7, len(r) - 0.3)
    extent = min(RESIDUAL_CLIP, max(2.5, float(np.nanmax(np.abs(r), initial=0.0))))
    ax.set_xlim(-extent - 0.6, extent + 0.6)
    ax.set_xlabel(f"residual (error / σ), clipped at ±{RESIDUAL_CLIP:g}")
    ax.set_ylabel("target (ranked by residual)")
    ax.set_title(f"Residuals: {np.mean(np.abs(r) <= 2):.0%} of {len(v)} targets within 2σ")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def _with_unit(name, unit):
    """``name (unit)``; a dimensionless unit (Vensim's ``Dmnl``) says so; no unit known, the name alone."""
    unit = "" if unit is None or (isinstance(unit, float) and math.isnan(unit)) else str(unit).strip()
    if not unit:
        return name
    return f"{name} ({'dimensionless' if unit.lower() in ('dmnl', 'dimensionless', '1') else unit})"


def plot_profiles(curves, intervals, ncols=4, units=None):
    """Profile likelihoods (Δχ² against each parameter) with the 3.84 line of 95%.

    Parameters
    ----------
    curves : pandas.DataFrame
        ``parameter``, ``value``, ``delta_chi2`` (calibrate's ``profiles.csv``).
    intervals : pandas.DataFrame
        Indexed by parameter: ``value``, ``lo95``, ``hi95``.
    units : mapping, optional
        Parameter -> its unit, e.g. ``model.parameters["units"]``; each x-axis says it.
    """
    params = list(dict.fromkeys(curves["parameter"]))
    units = {} if units is None else units
    fig, axes = panels(len(params), ncols, size=(3.6, 2.8))
    for ax, p in zip(axes, params):
        c = curves[curves["parameter"] == p].sort_values("value")
        ax.plot(c["value"], c["delta_chi2"], "o-", ms=3, color="C0")
        ax.axhline(3.84, color="C3", ls="--", lw=1, label="Δχ² = 3.84 (95%)")
        if p in intervals.index:
            iv = intervals.loc[p]
            ax.axvline(iv["value"], color="0.4", lw=0.8)
            ax.axvspan(iv["lo95"], iv["hi95"], color="C0", alpha=0.1)
        ax.set_title(p, fontsize=9)
        ax.set_xlabel(_with_unit("value", units.get(p)), fontsize=8)
        ax.set_ylabel("Δχ² from the best fit", fontsize=8)
        ax.set_ylim(bottom=0)
        if c["value"].min() > 0 and c["value"].max() / max(c["value"].min(), 1e-300) > 20:
            ax.set_xscale("log")
    if params:
        axes[0].legend(fontsize=7)
    fig.suptitle("Profile likelihoods of the calibrated parameters", fontsize=12)
    return fig


def plot_bands(bands, output, ax=None, unit="", data=None, title=None, until=None):
    """Vensim-style confidence bands (50/75/95/100%) of one output over time."""
    ax = _axes(ax)
    b = _frame("bands", bands)
    if output not in b.index.get_level_values(0):
        raise UnknownName(f"output '{output}' is not in the bands; they hold "
                          f"{', '.join(map(str, dict.fromkeys(b.index.get_level_values(0))))}")
    b = b.loc[output]
    if until is not None:
        b = b[b.index <= until]
    for level in sorted(BAND_COLOURS, reverse=True):
        ax.fill_between(b.index, b[f"lo{level}"], b[f"hi{level}"], color=BAND_COLOURS[level], lw=0,
                        label=f"{level}% of runs")
    ax.plot(b.index, b["median"], color="#08306b", lw=1.5, label="median")
    if data is not None:
        ax.errorbar(data["t"], data["y"], yerr=data.get("yerr"), fmt="o", color="black", ms=4,
                    label="data")
    ax.set_title(title or f"{output}: Monte Carlo bands")
    ax.set_xlabel("year")
    ax.set_ylabel(_unit_label(unit) or output)
    # below the axes: inside them the legend hid the median
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3, frameon=False)
    return ax


def plot_p_bust(p_bust, ax=None, title=None, label=None):
    """Probability of a bust by each year (a Series indexed by year; several calls share an axes)."""
    if not isinstance(p_bust, pd.Series):
        raise InvalidInput(f"p_bust must be a pandas Series indexed by year, got {type(p_bust).__name__}")
    ax = _axes(ax, (6, 3.6))
    ax.step(p_bust.index, p_bust.values, where="post", lw=2, label=label)
    # a small probability stays visible: the axis reaches at least 10%
    previous = ax.get_ylim()[1] if len(ax.lines) > 1 else 0.1  # other curves drawn before on this axes
    ax.set_ylim(0, max(previous, min(1.0, 1.15 * float(np.nanmax(p_bust.values)) if len(p_bust) else 1.0)))
    ax.set_xlabel("year")
    ax.set_ylabel("P(bust by year)")
    ax.set_title(title or "Probability of a bust by each year")
    ax.grid(alpha=0.3)
    if label is not None:
        ax.legend(fontsize=8)
    return ax


def plot_bifurcation(result, variable=None, ax=None, calibrated=None, title=None):
    """Branches of equilibria (stable solid, unstable dashed) with folds and Hopf points.

    Parameters
    ----------
    result : aicircle.tipping.BifurcationResult
    variable : str, optional
        The free state on the vertical axis (the first by default).
    calibrated : float, optional
        The calibrated parameter value, marked with a vertical line.
    """
    ax = _axes(ax)
    names = list(result.free)
    j = names.index(variable) if variable else 0
    labelled = set()
    for br in result.diagram.branches:
        p = np.asarray(br.p)
        y = np.asarray(br.states)[:, j]
        stable = np.asarray(br.stable)
        for flag, style, lab in ((True, "-", "stable"), (False, "--", "unstable")):
            if not np.any(stable == flag):  # no legend entry for a kind that is not drawn
                continue
            yy = np.where(stable == flag, y, np.nan)
            ax.plot(p, yy, style, color="C0" if flag else "C3", lw=1.8,
                    label=None if lab in labelled else f"{lab} equilibria")
            labelled.add(lab)
    for f in result.folds:
        ax.plot(f["value"], f["state"][names[j]], "ks", ms=6,
                label=None if "fold" in labelled else "fold (tipping point)")
        labelled.add("fold")
    for h in result.hopf:
        ax.plot(h["value"], h["state"][names[j]], "m^", ms=7, label=None if "hopf" in labelled else "Hopf")
        labelled.add("hopf")
    if calibrated is not None:
        ax.axvline(calibrated, color="0.3", ls=":", label="calibrated value")
    ax.set_xlabel(result.param)
    ax.set_ylabel(names[j])
    ax.set_xlim(*result.range)
    ax.set_title(title or f"Equilibria of {names[j]} against {result.param}")
    ax.legend(fontsize=8)
    return ax


def plot_regime_map(frame, ax=None, marker=None, title=None):
    """Outcome over a two-parameter grid (DataFrame from :func:`aicircle.tipping.regime_map`)."""
    frame = _frame("frame", frame)
    ax = _axes(ax, (7.4, 4.8))
    kinds = [k for k in OUTCOME_COLOURS if (frame.values == k).any()]
    kinds += sorted(set(np.unique(frame.values)) - set(kinds))
    codes = np.vectorize({k: i for i, k in enumerate(kinds)}.get)(frame.values)
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap([OUTCOME_COLOURS.get(k, f"C{i}") for i, k in enumerate(kinds)])
    xs, ys = frame.columns.to_numpy(dtype=float), frame.index.to_numpy(dtype=float)
    ax.pcolormesh(xs, ys, codes, cmap=cmap, vmin=-0.5, vmax=len(kinds) - 0.5, shading="nearest")
    from matplotlib.patches import Patch

    handles = [Patch(color=OUTCOME_COLOURS.get(k, f"C{i}"), label=k) for i, k in enumerate(kinds)]
    if marker is not None:
        # not clipped: a calibrated value on the edge of the grid (a shock of size 0) is half outside
        ax.plot(*marker, "*", color="black", mec="white", mew=0.8, ms=14, clip_on=False, zorder=5,
                label="calibrated")
        handles.append(plt.Line2D([], [], marker="*", color="k", mec="white", ls="", ms=12,
                                  label="calibrated"))
    # beside the map: inside, the legend hid a corner of it
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    ax.set_xlabel(frame.columns.name)
    ax.set_ylabel(frame.index.name)
    ax.set_title(title or "Regime map")
    return ax


def plot_time_to_bust(values, ttb, param, horizons, start, ax=None, calibrated=None, title=None):
    """Time of the first bust against a parameter (no marker where it never busts).

    ``horizons`` are drawn as lines; ``start`` (when the forecast starts) is the
    lowest year shown unless a bust comes earlier.
    """
    ax = _axes(ax, (6.5, 4))
    ax.plot(values, ttb, "o-", ms=3, color="C3", label="year of bust")
    for h in horizons:
        ax.axhline(h, color="0.6", ls=":", lw=1)
        ax.text(values[0], h, f" horizon {h}", va="bottom", fontsize=7, color="0.4")
    if calibrated is not None:
        ax.axvline(calibrated, color="0.3", ls="--", lw=1, label="calibrated value")
    ttb = np.asarray(ttb, dtype=float)
    busts = ttb[np.isfinite(ttb)]
    low = min(float(start), float(busts.min()) - 0.5) if busts.size else float(start)
    ax.set_ylim(low, max(horizons) + 0.5)
    if not busts.size:
        ax.text(0.5, 0.35, f"no bust by {max(horizons)} anywhere in this range", transform=ax.transAxes,
                ha="center", va="center", fontsize=9, color="0.3")
    ax.set_xlabel(param)
    ax.set_ylabel("year of first bust")
    ax.set_title(title or f"Time to bust against {param}")
    ax.legend(fontsize=8)
    return ax


def plot_scenarios(runs, variables, units=None, ncols=2, title=None):
    """Each scenario against the baseline, one panel per variable.

    Parameters
    ----------
    runs : dict
        Scenario name -> DataFrame indexed by time (``baseline`` drawn in black).
    variables : list of str
    """
    n = len(variables)
    fig, axes = panels(n, ncols, size=(6, 3.4))
    others = [name for name in runs if name != "baseline"]
    for ax, var in zip(axes, variables):
        if "baseline" in runs:
            df = runs["baseline"]
            ax.plot(df.index, df[var], color="black", lw=2.6, zorder=2, label="baseline")
        for k, name in enumerate(others):
            # drawn over the baseline, thinner; a style and a marker of its own, the markers of
            # successive scenarios staggered, so one that follows the baseline or another stays visible
            df = runs[name]
            step = max(1, len(df) // 10)
            ax.plot(df.index, df[var], color=f"C{k % 10}", lw=1.4, zorder=3,
                    ls=SCENARIO_STYLES[k % len(SCENARIO_STYLES)],
                    marker=SCENARIO_MARKERS[k % len(SCENARIO_MARKERS)], ms=4,
                    markevery=(k * step // max(1, len(others)), step), label=name)
        ax.set_title(var, fontsize=10)
        ax.set_xlabel("year")
        ax.set_ylabel(_unit_label((units or {}).get(var, "")))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8)
    fig.suptitle(title or "Scenarios against the baseline", fontsize=12)
    return fig


#: Variables of one run whose sizes (largest magnitudes) differ by more than this factor get a panel each:
#: on one axis the smaller would be a flat line.
RUN_SHARED_AXIS_RATIO = 20.0
#: Most variables one run plot draws: a panel each can take 24 (a 50-inch figure); more are
#: unreadable, and 100,000 would take minutes.
MAX_RUN_SERIES = 24
#: Largest magnitude an axis can show: matplotlib's ticks overflow on a span near 1e308.
MAX_PLOTTED_MAGNITUDE = 1e300


def literal_text(text: str) -> str:
    """``text`` drawn as written: its ``$`` escaped where matplotlib would read mathtext in it
    (an even number of them, as its ``Text`` counts), else unchanged (``$B per year``)."""
    text = str(text)
    dollars = text.count("$") - text.count(r"\$")
    return text.replace("$", r"\$") if dollars and dollars % 2 == 0 else text


def run_columns(frame, variables):
    """The columns of ``frame`` (a DataFrame, or its column names) that ``variables`` name (Vensim's
    matching rule: case, spaces, underscores).

    Raises
    ------
    aicircle.errors.UnknownName
        Naming the first variable that is not a column, with the columns closest to it.
    """
    import difflib

    from .compiler import clean_name

    columns = list(frame.columns) if isinstance(frame, pd.DataFrame) else list(frame)
    by_clean = {clean_name(c): c for c in columns}
    exact = set(columns)
    found = []
    for name in variables:
        if name in exact:
            found.append(name)
            continue
        key = clean_name(name)
        if key in by_clean:
            found.append(by_clean[key])
            continue
        close = difflib.get_close_matches(key, list(by_clean), n=5, cutoff=0.5)
        close += [c for c in by_clean if key and key in c and c not in close][:5 - len(close)]
        hint = (f"; close matches: {', '.join(repr(by_clean[c]) for c in close)}" if close
                else f"; the run has {len(by_clean)} columns, e.g. "
                     f"{', '.join(repr(c) for c in columns[:5])}")
        raise UnknownName(f"no column '{name}' in the run{hint}")
    return found


def plot_run(frame, variables, ax=None, title=None, units=None):
    """Variables of one run against time: on one axis when of like size, else a panel each.

    Parameters
    ----------
    frame : pandas.DataFrame
        Indexed by time, a column per variable: what ``Model.simulate`` returns and
        ``aicircle run`` writes.
    variables : list of str
        Columns of ``frame`` (matched as in :func:`run_columns`).
    ax : matplotlib.axes.Axes, optional
        Draw every variable on it, one shared axis whatever their sizes. By default a
        new figure: one axis, or a panel per variable (sharing time) when their
        largest magnitudes differ by more than :data:`RUN_SHARED_AXIS_RATIO`.
    title : str, optional
    units : mapping, optional
        Variable -> unit, shown on the vertical axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if len(variables) > MAX_RUN_SERIES:
        raise InvalidInput(f"a run plot draws at most {MAX_RUN_SERIES} variables; got {len(variables)} "
                           f"(make several plots)")
    names = run_columns(frame, variables)
    units = {} if units is None else units
    t = frame.index.to_numpy(dtype=float)
    values = {n: frame[n].to_numpy(dtype=float) for n in names}
    values = {n: np.where(np.isfinite(v), v, np.nan) for n, v in values.items()}  # an infinity: a gap
    for n, v in [("time", t), *values.items()]:
        big = np.abs(v) > MAX_PLOTTED_MAGNITUDE
        if big.any():
            raise InvalidInput(f"'{n}' holds {v[big][0]:g}, beyond what a plot's axis can show "
                               f"(at most {MAX_PLOTTED_MAGNITUDE:g} in magnitude)")
    title = None if title is None else literal_text(title)
    sizes = [float(np.nanmax(np.abs(v))) for v in values.values() if np.any(np.abs(v) > 0)]
    separate = (ax is None and len(names) > 1
                and max(sizes, default=0) > RUN_SHARED_AXIS_RATIO * min(sizes, default=0))
    joined = literal_text(", ".join(names))
    title = title or (joined if len(joined) <= 70 else f"{len(names)} variables of the run")
    if separate:
        fig, axes = plt.subplots(len(names), 1, figsize=(7, 1.2 + 2.1 * len(names)), sharex=True,
                                 layout="constrained", squeeze=False)
        axes = list(axes.flat)
        for i, (a, n) in enumerate(zip(axes, names)):
            a.plot(t, values[n], color=f"C{i % 10}", lw=1.6)
            a.set_title(literal_text(n), fontsize=10)
            a.set_ylabel(literal_text(_unit_label(units.get(n, ""))) or "value")
            a.grid(alpha=0.3)
        axes[-1].set_xlabel("time")
        fig.suptitle(title, fontsize=12)
        return fig
    ax = _axes(ax)
    for i, n in enumerate(names):
        ax.plot(t, values[n], color=f"C{i % 10}", lw=1.6, label=literal_text(n))
    shown = {_unit_label(units.get(n, "")) for n in names}
    unit = shown.pop() if len(shown) == 1 else ""
    ax.set_ylabel(literal_text(_with_unit(names[0], unit)) if len(names) == 1 else (literal_text(unit) or "value"))
    ax.set_xlabel("time")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(names) > 1:
        ax.legend(fontsize=8)
    return ax.figure


def plot_sensitivity(frame, ax=None, title=None):
    """Sobol first/total-order bars (with CIs), Morris mu* or OAT tornado, by the frame's columns."""
    frame = _frame("frame", frame)
    if not ({"ST", "S1"} <= set(frame) or "mu_star" in frame or {"low", "high"} <= set(frame)):
        raise InvalidInput(f"frame needs Sobol (S1, ST), Morris (mu_star) or OAT (low, high) columns, got "
                           f"{', '.join(map(str, frame.columns))}")
    ax = _axes(ax, (7, max(3, 0.35 * len(frame) + 1.2)))
    y = np.arange(len(frame))
    if "ST" in frame:
        order = frame.sort_values("ST")
        ax.barh(y + 0.2, order["ST"], 0.4, xerr=order["ST_conf"], color="C0", label="total order ST")
        ax.barh(y - 0.2, order["S1"], 0.4, xerr=order["S1_conf"], color="C1", label="first order S1")
        ax.set_xlabel("Sobol index (95% CI)")
    elif "mu_star" in frame:
        order = frame.sort_values("mu_star")
        ax.barh(y, order["mu_star"], xerr=order["mu_star_conf"], color="C0", label="μ*")
        ax.set_xlabel("Morris μ*")
    else:
        order = frame.assign(span=(frame["high"] - frame["low"]).abs()).sort_values("span")
        left = np.minimum(order["low"], order["high"])
        ax.barh(y, (order["high"] - order["low"]).abs(), left=left, color="C0")
        ax.set_xlabel("output at the parameter's bounds")
    ax.set_yticks(y, order.index, fontsize=8)
    ax.set_ylabel("parameter")
    ax.set_title(title or "Sensitivity")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    return ax


def _ring_order(ring, edges):
    """``ring`` reordered so that as few linked stocks as possible sit opposite each other.

    Opposite stocks' arrows would cross the hub in the middle; the first stock stays on top.
    Small rings are searched exhaustively (at most 5! orders); larger ones keep their order.
    """
    k = len(ring)
    if k < 4 or k > 6:
        return ring
    linked = {frozenset(e) for e in edges}

    def crossings(order):
        return sum(frozenset((order[i], order[(i + k // 2) % k])) in linked for i in range(k))

    return min(([ring[0], *rest] for rest in itertools.permutations(ring[1:])), key=crossings)


def _overlap(a, b) -> float:
    """The area shared by two boxes (matplotlib Bbox)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def _passes_near(a, b, point, distance):
    """Whether the segment from ``a`` to ``b`` passes within ``distance`` of ``point``."""
    (ax_, ay), (bx, by), (px, py) = a, b, point
    dx, dy = bx - ax_, by - ay
    s = max(0.0, min(1.0, ((px - ax_) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-12)))
    return math.hypot(ax_ + s * dx - px, ay + s * dy - py) < distance


def plot_structure(model, title=None):
    """The model's money circuit and loops, drawn from the model file.

    Cash stocks (names ending in ``Cash``) sit on a circle; each money flow
    is an arrow from the stock it leaves to the one it enters, labelled with
    its name. The feedback loops named in the model's comments are listed.
    """
    flows = model.stock_flows()
    cash = [s for s in flows if s.lower().endswith("cash")]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(16, 8.5), layout="constrained",
                                  gridspec_kw={"width_ratios": [2.0, 1]})
    edges = {}
    for dst in cash:
        for f in flows[dst]["in"]:
            for src in cash:
                if f in flows[src]["out"]:
                    edges.setdefault((src, dst), []).append(f)
    # the stock linked to every other (the outside world) sits in the middle
    degree = {c: len({b if a == c else a for a, b in edges if c in (a, b)}) for c in cash}
    n_flows = {c: len(flows[c]["in"]) + len(flows[c]["out"]) for c in cash}
    hub = max(cash, key=lambda c: (degree[c], n_flows[c])) \
        if cash and max(degree.values()) == len(cash) - 1 else None
    ring = _ring_order([c for c in cash if c != hub], edges)
    k = len(ring)
    rx, ry = 3.4, 2.4  # an ellipse: the labels are wider than they are tall
    pos = {c: (rx * math.cos(math.pi / 2 - 2 * math.pi * i / max(k, 1)),
               ry * math.sin(math.pi / 2 - 2 * math.pi * i / max(k, 1))) for i, c in enumerate(ring)}
    if hub:
        pos[hub] = (0.0, 0.0)
    ax.set_xlim(-4.3, 4.3)
    ax.set_ylim(-2.9, 2.9)
    ax.set_aspect("equal")
    ax.axis("off")
    taken = []  # boxes (display coordinates) of the stocks and of the labels placed so far
    for s, (x, y) in pos.items():
        taken.append(ax.text(x, y, s, ha="center", va="center", fontsize=10, weight="bold",
                             bbox=dict(boxstyle="round,pad=0.5", fc="#fdf0d5", ec="#c1121f")))
    fig.canvas.draw()  # settles the layout, so that the boxes measured below stay where they are
    renderer = fig.canvas.get_renderer()
    taken = [t.get_window_extent(renderer) for t in taken]
    for (src, dst), names in edges.items():
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        rad = 0.4 if (dst, src) in edges else -0.25
        if hub and hub not in (src, dst) and _passes_near((x0, y0), (x1, y1), pos[hub], 0.8):
            rad = math.copysign(0.45, rad)  # a chord through the hub: bend the arc around it
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="C0", lw=1.3, shrinkA=30, shrinkB=30,
                                    connectionstyle=f"arc3,rad={rad}"))
        # matplotlib's arc3 is the quadratic curve with control point mid + rad*(dy, -dx);
        # the label goes on it, at the middle if that is free, else at the point along it
        # that overlaps the stocks and the other labels least
        cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
        label = ax.text(0, 0, "\n".join(names), fontsize=7, ha="center", va="center", color="#1d3557",
                        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="#a8dadc", alpha=0.95))
        best = None
        for u in (0.5, 0.42, 0.58, 0.34, 0.66, 0.27, 0.73, 0.2, 0.8):
            label.set_position(((1 - u) ** 2 * x0 + 2 * (1 - u) * u * cx + u * u * x1,
                                (1 - u) ** 2 * y0 + 2 * (1 - u) * u * cy + u * u * y1))
            box = label.get_window_extent(renderer)
            overlap = sum(_overlap(box, other) for other in taken)
            if best is None or overlap < best[0]:
                best = (overlap, label.get_position(), box)
            if overlap == 0:
                break
        label.set_position(best[1])
        taken.append(best[2])
    ax.set_title("Money flows between the cash stocks (each leaves one stock, enters one other)")
    ax2.axis("off")
    lines = []
    for loop, names in model.loop_tags.items():
        lines.append(f"{loop}: " + ", ".join(names[:7]) + (" …" if len(names) > 7 else ""))
    others = [s for s in flows if s not in cash]
    text = "Feedback loops (variables whose comments close them)\n\n" + "\n\n".join(
        _wrap(line, 60) for line in lines)
    text += "\n\nOther stocks\n" + _wrap(", ".join(others), 60)
    ax2.text(0, 1, text, va="top", ha="left", fontsize=8.5, family="monospace")
    fig.suptitle(title or f"Structure of {model.path.name}", fontsize=13)
    return fig


def _wrap(text, width):
    import textwrap

    return "\n".join(textwrap.wrap(text, width, subsequent_indent="    "))


def plot_response(curves, calibrated=None, ncols=2, title=None):
    """Final values of some outputs against each swept parameter, one panel per parameter.

    Parameters
    ----------
    curves : dict
        Parameter -> (values, {output: final value at each value}).
    calibrated : dict, optional
        Parameter -> the value used in the baseline (a vertical line).
    """
    fig, axes = panels(len(curves), ncols, size=(6, 3.8))
    for ax, (param, (values, outputs)) in zip(axes, curves.items()):
        for i, (name, y) in enumerate(outputs.items()):
            ax.plot(values, y, color=f"C{i}", marker="o", ms=2.5, lw=1.4, label=name)
        if calibrated and param in calibrated:
            ax.axvline(calibrated[param], color="black", ls=":", lw=1, label="value used")
        ax.set_xlabel(param)
        ax.set_ylabel("value at the final time")
        ax.set_title(param, fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8)
    fig.suptitle(title or "Response of the stocks to each driver", fontsize=12)
    return fig


def plot_loop_dominance(relative, loops=None, ax=None, top=6, marks=None, title=None, shown=None):
    """Relative loop scores over time, stacked: reinforcing above zero, balancing below.

    Parameters
    ----------
    relative : pandas.DataFrame
        Time x loop relative loop scores (``Model.loop_scores(run, relative=True)``), in [-1, 1].
    loops : pandas.DataFrame, optional
        The loop table (``Model.loops()``), for the legend's polarity and path.
    top : int
        Loops drawn on their own: those with the largest mean absolute relative score; the
        others are summed into "other loops" (their positive and negative parts apart).
    marks : dict, optional
        Label -> time: vertical lines (a tipping moment, a peak).
    shown : list, optional
        The loops drawn on their own (instead of the ``top`` largest), so that several
        panels share their colours.
    """
    if not isinstance(relative, pd.DataFrame) or relative.empty:
        raise InvalidInput("plot_loop_dominance needs a non-empty DataFrame of relative loop scores "
                           "(time x loop)")
    ax = _axes(ax)
    data = relative.dropna(how="all").fillna(0.0)
    order = data.abs().mean().sort_values(ascending=False).index
    shown = [k for k in shown if k in data.columns] if shown is not None else list(order[:top])
    rest = [k for k in order if k not in shown]
    t = data.index.to_numpy(dtype=float)
    pos = {k: data[k].clip(lower=0).to_numpy() for k in shown}
    neg = {k: data[k].clip(upper=0).to_numpy() for k in shown}
    if rest:
        pos["other loops"] = data[rest].clip(lower=0).sum(axis=1).to_numpy()
        neg["other loops"] = data[rest].clip(upper=0).sum(axis=1).to_numpy()
    colours = {k: (f"C{i}" if k != "other loops" else "#bbbbbb") for i, k in enumerate(pos)}

    def name(k):
        if loops is None or k not in getattr(loops, "index", ()):
            return str(k)
        row = loops.loc[k]
        path = " → ".join(row["variables"][:3]) + (" → …" if len(row["variables"]) > 3 else "")
        return f"{k} ({row['polarity']}): {path}"

    ax.stackplot(t, *pos.values(), colors=list(colours.values()), labels=[name(k) for k in pos], step="pre")
    ax.stackplot(t, *neg.values(), colors=list(colours.values()), step="pre")
    ax.axhline(0, color="black", lw=0.8)
    for i, (label, when) in enumerate((marks or {}).items()):
        if when is not None and np.isfinite(when):
            ax.axvline(when, color="black", ls=("--", ":", "-.")[i % 3], lw=1.2, label=f"{label} ({when:g})")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("time")
    ax.set_ylabel("relative loop score (R > 0, B < 0)")
    ax.set_title(title or "Loop dominance")
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.85)
    return ax


def plot_outcome_map(x, y, z, ax=None, threshold=0.5, consistent=None, marker=None, xlabel=None,
                     ylabel=None, label="P(outcome)", title=None, vmax=1.0):
    """An outcome over a grid of two parameters, with its threshold curve and the data-consistent region.

    Parameters
    ----------
    x, y : array, shapes (nx,) and (ny,)
        The grid's values.
    z : array, shape (ny, nx)
        The outcome at each point (a probability, or a share).
    threshold : float, optional
        The level whose contour is drawn (the threshold curve), when ``z`` crosses it.
    consistent : array of bool, shape (ny, nx), optional
        Where the data do not reject the point; the rest is hatched.
    marker : (float, float), optional
        The calibrated point.
    """
    x, y, z = np.asarray(x, float), np.asarray(y, float), np.asarray(z, float)
    if z.shape != (len(y), len(x)):
        raise InvalidInput(f"z must have shape (len(y), len(x)) = ({len(y)}, {len(x)}), got {z.shape}")
    ax = _axes(ax, (5.6, 4.4))
    mesh = ax.pcolormesh(x, y, z, cmap="magma_r", vmin=0, vmax=vmax, shading="nearest")
    ax.figure.colorbar(mesh, ax=ax, label=label)
    if threshold is not None and np.nanmin(z) < threshold < np.nanmax(z):
        curve = ax.contour(x, y, z, levels=[threshold], colors="#1f77b4", linewidths=2)
        ax.clabel(curve, fmt={threshold: f"{threshold:g}"}, fontsize=8)
    if consistent is not None:
        consistent = np.asarray(consistent, bool)
        if consistent.shape != z.shape:
            raise InvalidInput(f"consistent must have the shape of z {z.shape}, got {consistent.shape}")
        if not consistent.all():
            ax.contourf(x, y, (~consistent).astype(float), levels=[0.5, 1.5], colors="none", hatches=["//"])
            ax.contour(x, y, consistent.astype(float), levels=[0.5], colors="0.3", linewidths=1, linestyles="--")
    if marker is not None:
        ax.plot(*marker, "*", color="white", mec="black", mew=0.8, ms=13, clip_on=False, zorder=5)
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel(ylabel or "")
    ax.set_title(title or label)
    return ax


def plot_distributions(samples, ax=None, unit="", title=None):
    """Box plots of several metrics across an ensemble (whiskers 5–95%, box 25–75%, line the median).

    Parameters
    ----------
    samples : dict
        Label -> 1-D array of the metric over the ensemble (NaN left out).
    """
    if not isinstance(samples, dict) or not samples:
        raise InvalidInput("samples must be a non-empty dict of label -> values")
    ax = _axes(ax, (6, 0.5 + 0.45 * len(samples)))
    data = [np.asarray(v, float)[np.isfinite(np.asarray(v, float))] for v in samples.values()]
    ax.boxplot(data, orientation="horizontal", whis=(5, 95), showfliers=False, tick_labels=list(samples),
               medianprops={"color": "#e76f51", "lw": 2})
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "")
    return ax

"""An explorer in the browser: sliders on a model's parameters, its behaviour redrawn as they move.

:func:`explore` builds the app for one model (it shows inline in a Jupyter notebook);
:func:`serve` serves it on a local port (``aicircle explore``). It works on any model
aicircle runs; what a study knows (the values to start from, its scenario switches, its
targets, its outcome classifier) is passed in, as the toolkit's other contracts are
(docs/design.md §1): the command line and ``aicircle.explore`` fill it for the shipped model.

The page has three parts:

- **sliders** for every parameter, grouped by the model's groups (Vensim's ``.Group``
  headers, XMILE's ``<group>``), searchable by name, over the model's declared range
  (±50% of the value where none is declared, said in the slider's title); a reset to
  the model file's values and to the values the explorer started from; the study's
  scenarios as toggles that set their switches;
- **plots** of the variables the user picks (stocks first), each against time with its
  units, the run at the starting values as a faint line, and the targets' data points
  with their error bars where the model defines the targets' observables;
- **a strip** with the outcome (a classifier's labels or ``VARIABLE<VALUE``), the
  dominant loop over time (:mod:`aicircle.loops`), and, on request, an ensemble band
  and a one-parameter sweep of the outcome with its thresholds
  (:func:`aicircle.tipping.outcome_thresholds`), both computed in the background.

Each browser session gets its own :class:`Explorer` (its values, runs and results);
the compiled model is shared read-only, and a second copy of it serves the background
work, so nothing one user does reaches another's page. Panel and Bokeh serve their
JavaScript from the installed packages (no CDN); the server binds 127.0.0.1 by default.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import _check, tipping
from . import loops as _ltm
from .compiler import clean_name
from .errors import AicircleError, InvalidInput
from .observables import find_observables
from .plots import _target_points  # the targets as rates with error bars, as plot_fit draws them
from .reader import read

__all__ = ["ENSEMBLE_SETS", "ENSEMBLE_SPREAD", "SWEEP_POINTS", "Explorer", "explore", "model_groups",
           "serve", "slider_ranges"]

#: Sets in the ensemble band, and the relative spread of each parameter around its slider
#: (uniform in [v (1 - s), v (1 + s)], within the slider's range).
ENSEMBLE_SETS, ENSEMBLE_SPREAD = 200, 0.1
#: Values of the swept parameter over its slider's range (each change of outcome is then bisected).
SWEEP_POINTS = 41
#: Half-width of the range given to a parameter whose model declares none, relative to its value.
UNDECLARED = 0.5
#: After a slider's move in a browser, the wait before its last value is drawn; the loops' strip
#: is redrawn once no slider has moved for LOOPS_AFTER_MS.
TRAILING_MS, LOOPS_AFTER_MS = 40, 200
#: Runs of the ensemble integrated between two updates of its progress bar.
_CHUNK = 25


def _panel():
    """Panel (and Bokeh with it): an optional dependency (``pip install 'aicircle[explore]'``)."""
    try:
        import panel as pn
    except ImportError as err:  # optional dependency: fail loudly, saying how to get it
        raise ImportError("the explorer needs Panel and Bokeh: pip install 'aicircle[explore]'") from err
    return pn


# ----------------------------------------------------------------------
# what the model says: groups, units, ranges
# ----------------------------------------------------------------------
_MDL_GROUP = re.compile(r"^\s*\*{3,}\s*\.(?P<name>[^\n*]+?)\s*\*{3,}", re.DOTALL)
_MDL_NAME = re.compile(r'^\s*(?:"(?P<quoted>[^"]+)"|(?P<plain>[^=:(~\[|]+))')


def model_groups(path) -> dict:
    """The group of each variable, as the model file declares them.

    Vensim's groups are the ``.Name`` headers between lines of stars; XMILE's the
    ``<group name=...>`` elements and their ``<entity>`` children. A variable before the
    first group, or in a file without groups, has none.

    Returns
    -------
    dict
        ``clean_name(variable) -> group name``.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    out: dict = {}
    if path.suffix.lower() == ".mdl":
        group = None
        for block in text.split("\\\\\\---///")[0].split("|"):
            block = re.sub(r"^\s*\{UTF-8\}", "", block)
            header = _MDL_GROUP.match(block)
            if header:
                group = header["name"].strip()
                block = block[header.end():]
                if "~" in block.split("=")[0]:  # the header's own comment, no equation
                    continue
            name = _MDL_NAME.match(block)
            if group and name:
                key = clean_name((name["quoted"] or name["plain"] or "").strip())
                if key:
                    out.setdefault(key, group)
        return out
    from lxml import etree  # a dependency of aicircle (the XMILE reader); here only for XMILE files

    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        root = etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError:
        return out
    for group in root.iter("{*}group"):
        for entity in group.iter("{*}entity"):
            if entity.get("name"):
                out.setdefault(clean_name(entity.get("name")), group.get("name") or "")
    return out


def _units(model) -> dict:
    """Each variable's declared units, ``clean_name -> str`` (the file read again: it writes nothing)."""
    out = {}
    for section in read(model.path).sections:
        for element in section.elements:
            out.setdefault(clean_name(element.name), (element.units or "").strip())
    return out


def slider_ranges(model, values=None, groups=None) -> pd.DataFrame:
    """One row per parameter of ``model``: the range of its slider.

    Parameters
    ----------
    model : aicircle.Model
    values : mapping, optional
        Values to start from (name -> number) instead of the model file's.
    groups : mapping, optional
        ``clean_name -> group`` (:func:`model_groups`); "parameters" for a variable in none.

    Returns
    -------
    pandas.DataFrame
        Indexed by the parameter's name: ``group``, ``value`` (to start from),
        ``model_value`` (the file's), ``lo``, ``hi`` and ``note``. ``lo, hi`` are the
        declared range where the model declares both bounds; otherwise the value ±50%
        (0 to 1 for a value of 0), with a note saying so. A range is widened to hold
        the starting value (noted); a declared ``[a, a]`` holds the parameter fixed.
    """
    values = {model.resolve(k): _check.finite(f"value of '{k}'", v)
              for k, v in _check.mapping("values", values).items()}
    groups = groups or {}
    rows = []
    for name, row in model.parameters.iterrows():
        value = values.get(name, float(row["value"]))
        lo, hi = row["min"], row["max"]
        note = ""
        if not (math.isfinite(lo) and math.isfinite(hi)):
            half = UNDECLARED * abs(row["value"])
            lo, hi = (row["value"] - half, row["value"] + half) if half > 0 else (0.0, 1.0)
            note = "no range declared: ±50%" if half > 0 else "no range declared: 0 to 1"
        if not lo <= value <= hi:
            lo, hi = min(lo, value), max(hi, value)
            note = (note + "; " if note else "") + "widened to hold the starting value"
        rows.append({"name": name, "group": groups.get(clean_name(name.split("[")[0]), "parameters"),
                     "value": value, "model_value": float(row["value"]), "lo": float(lo), "hi": float(hi),
                     "units": row["units"] or "", "note": note})
    return pd.DataFrame(rows, columns=["name", "group", "value", "model_value", "lo", "hi", "units", "note"]
                        ).set_index("name")


# ----------------------------------------------------------------------
# what a server knows about its one model (shared read-only by every session)
# ----------------------------------------------------------------------
@dataclasses.dataclass
class _Setting:
    """The model and what the explorer was given: built once, read by every session."""

    model: object
    start: dict
    start_label: str
    sliders: pd.DataFrame
    units: dict
    variables: list  # the variables a user may plot: stocks first
    default: list  # those shown at first
    scenarios: dict  # name -> (description, params)
    switches: frozenset
    points: dict  # variable -> [(t, t_lo, t_hi, y, y_lo, y_hi)], the targets' data points
    outcome: object
    classifier: object
    horizons: tuple
    bust_from: float | None
    loops: pd.DataFrame | None
    no_loops: str  # why the strip shows no loops, where it shows none
    baseline: pd.DataFrame
    worker: object = None  # a copy of the model for the background work (its own compiled programs)
    worker_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


def _setting(model, params=None, start_label=None, switches=(), scenarios=None, targets=None, vocabulary=None,
             outcome=None, classifier=None, horizons=None, bust_from=None, loops=True) -> _Setting:
    start = {model.resolve(k): _check.finite(f"params: value of '{k}'", v)
             for k, v in _check.mapping("params", params).items()}
    unknown = [k for k in start if k not in model.parameters.index]
    if unknown:
        raise InvalidInput(f"'{unknown[0]}' is not a parameter of {model.path.name}: the explorer's sliders "
                           f"set parameters only")
    outcome = tipping.parse_outcome(outcome, model) if isinstance(outcome, str) else outcome
    if outcome is not None:
        classifier = None
    elif classifier is not None and not isinstance(classifier, tipping.Classifier):
        raise InvalidInput(f"classifier must be an aicircle.tipping.Classifier (a study's definition of the "
                           f"outcomes), got {classifier!r}")
    elif classifier is not None and not tipping.applies_to(classifier, model):
        classifier = None  # the study's classifier on a model that does not carry the study
    final = model.time["final_time"]
    horizons = tuple(sorted(float(h) for h in (horizons or (final,)) if h <= final)) or (final,)
    units = _units(model)
    baseline = model.simulate(params=start)
    # what a run returns: a subscripted variable is one column per element, "Name[a,b]"
    is_stock = {c: c.split("[")[0] in set(model.stocks) for c in baseline.columns}
    controls = {"initial_time", "final_time", "time_step", "saveper", "time"}
    stocks = [c for c in baseline.columns if is_stock[c]]
    others = [c for c in baseline.columns if not is_stock[c] and c not in model.parameters.index
              and clean_name(c) not in controls]
    points = {}
    if targets is not None and vocabulary is not None:
        for oid, name in find_observables(model.variables, vocabulary).items():
            pts = _target_points(targets, oid)
            if pts:
                points[name] = pts
    default = [v for v in dict.fromkeys([*points, *stocks])][:4]
    scenarios = {name: (desc, {model.resolve(k): _check.finite(f"scenario {name}: value of '{k}'", v)
                               for k, v in _check.mapping(f"scenario {name}", ps).items()})
                 for name, (desc, ps) in _check.mapping("scenarios", scenarios).items()}
    table, no_loops = None, "the model has no feedback loops that can be scored"
    if loops:
        try:
            table = model.loops()
            model.loop_scores(baseline, loops=table)  # once, so that a redraw never meets an error
        except (AicircleError, IndexError) as err:
            # loops.py scores no subscripted model (an IndexError there, reported): the strip says so
            table, no_loops = None, f"loops not scored: {' '.join(str(err).split()) or type(err).__name__}"

    return _Setting(model=model, start=start, start_label=start_label or (
        "the given values" if start else f"the values in {model.path.name}"),
        sliders=slider_ranges(model, start, model_groups(model.path)), units=units,
        variables=stocks + others, default=default, scenarios=scenarios,
        switches=frozenset(model.resolve(s) for s in switches), points=points, outcome=outcome,
        classifier=classifier, horizons=horizons, bust_from=None if bust_from is None else float(bust_from),
        loops=table, no_loops=no_loops, baseline=baseline)


def _unit_of(setting, name):
    return setting.units.get(clean_name(name.split("[")[0]), "")


def outcome_text(setting, run: pd.DataFrame) -> str:
    """The outcome of one run, in words: each horizon's label (and a classifier's first bust)."""
    times = run.index.to_numpy()
    if setting.outcome is not None:
        values = run[setting.outcome.variable].to_numpy()[None]
        parts = [f"{h:g}: {setting.outcome.evaluate(times, values, h)[0]}" for h in setting.horizons]
        return f"**outcome** ({setting.outcome.label}) — " + ", ".join(parts)
    if setting.classifier is not None:
        values = [run[setting.model.resolve(v)].to_numpy()[None] for v in setting.classifier.variables]
        parts = [f"{h:g}: {setting.classifier.labels(times, values, h)[0]}" for h in setting.horizons]
        first = setting.classifier.first_bust(times, values, setting.bust_from)[0]
        after = f" after {setting.bust_from:g}" if setting.bust_from is not None else ""
        when = f"first bust{after}: {first:.2f}" if math.isfinite(first) else f"no bust{after} in the run"
        rule = getattr(setting.classifier, "description", "")
        return (f"**outcome** ({setting.classifier.name} classifier) — " + ", ".join(parts) + f"; {when}"
                + (f"<br><small>{rule}</small>" if rule else ""))
    return "outcome: none defined (aicircle explore --outcome 'VARIABLE<VALUE')"


# ----------------------------------------------------------------------
# one session's page
# ----------------------------------------------------------------------
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")


class Explorer:
    """One user's explorer of one model: its sliders, plots and strip (a Panel layout).

    Build it with :func:`explore`; in a notebook it displays itself, and
    :attr:`layout` is the Panel object. Its state (the sliders' values, the runs,
    the ensemble and the sweep) is its own.

    Attributes
    ----------
    values : dict
        The parameters' current values, name -> number (every parameter).
    run : pandas.DataFrame
        The run at :attr:`values` (every variable).
    """

    def __init__(self, setting: _Setting):
        pn = _panel()
        self.setting = s = setting
        self.values = {name: float(v) for name, v in s.sliders["value"].items()}
        self.run = s.baseline
        self._job = None  # the background thread's results, read by the event loop's poll
        self._poll_callback = None
        self._sources: dict = {}
        self._figures: dict = {}
        self._quiet = False  # set while a reset or a scenario moves several sliders at once
        self._drawn_values = self._loops_values = None  # the values the plots and the loops show
        self._drawn_at, self._moved_at, self._cost, self._trailing = 0.0, 0.0, 0.0, False
        self.sliders = {}
        cards = {}
        for name, row in s.sliders.iterrows():
            title = f"{name}{f' [{row.units}]' if row.units else ''}{f' ({row.note})' if row.note else ''}"
            fixed = not row.lo < row.hi
            slider = pn.widgets.FloatSlider(
                label=title, start=row.lo, end=row.hi if not fixed else row.lo + 1, value=row.value,
                step=(row.hi - row.lo) / 400 if not fixed else 1, disabled=fixed, sizing_mode="stretch_width",
                format="0,0.[0000]")
            slider.param.watch(lambda event, name=name: self._moved(name, event.new), "value")
            self.sliders[name] = slider
            cards.setdefault(row.group, []).append(slider)
        self.search = pn.widgets.TextInput(label="search parameters", placeholder="part of a name",
                                           sizing_mode="stretch_width")
        self.search.param.watch(lambda event: self._filter(event.new), "value_input")
        self.cards = {g: pn.Card(*ws, title=f"{g} ({len(ws)})", collapsed=i > 0, sizing_mode="stretch_width")
                      for i, (g, ws) in enumerate(cards.items())}
        reset_model = pn.widgets.Button(label="reset to the model file's values")
        reset_model.on_click(lambda _: self.reset("model"))
        resets = [reset_model]
        if s.start:
            reset_start = pn.widgets.Button(label=f"reset to {s.start_label}")
            reset_start.on_click(lambda _: self.reset("start"))
            resets.insert(0, reset_start)
        self.toggles = {}
        for name in s.scenarios:
            toggle = pn.widgets.Toggle(label=name, value=False, sizing_mode="stretch_width")
            toggle.param.watch(lambda event, name=name: self.scenario(name, event.new), "value")
            self.toggles[name] = toggle
        side = [self.search, *resets]
        if self.toggles:
            said = "\n".join(f"- *{name}*: {desc}" for name, (desc, _) in s.scenarios.items())
            side += [pn.pane.Markdown(f"**scenarios** (each sets its switches' sliders)\n\n{said}"),
                     *self.toggles.values()]
        side += list(self.cards.values())
        self.picker = pn.widgets.MultiChoice(label="variables (stocks first)", options=s.variables,
                                             value=list(s.default), sizing_mode="stretch_width")
        self.picker.param.watch(lambda event: self._layout_plots(), "value")
        self.plots = pn.GridBox(ncols=2, sizing_mode="stretch_width")
        self.outcome = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.loop_text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.loop_source, loop_fig = self._loop_figure()
        self.progress = pn.indicators.Progress(value=0, max=100, visible=False, width=200)
        self.status = pn.pane.Markdown("", sizing_mode="stretch_width")
        band = pn.widgets.Button(label=f"ensemble band ({ENSEMBLE_SETS} sets, ±{ENSEMBLE_SPREAD:.0%})")
        band.on_click(lambda _: self.start_ensemble())
        self.sweep_param = pn.widgets.Select(label="sweep parameter", options=self.variable())
        sweep = pn.widgets.Button(label=f"sweep the outcome ({SWEEP_POINTS} values)")
        sweep.on_click(lambda _: self.start_sweep(self.sweep_param.value))
        self.sweep_source, self.sweep_lines, sweep_fig = self._sweep_figure()
        strip = pn.Column(self.outcome, pn.pane.Bokeh(loop_fig, sizing_mode="stretch_width"), self.loop_text,
                          pn.Row(band, self.sweep_param, sweep, self.progress), self.status,
                          pn.pane.Bokeh(sweep_fig, sizing_mode="stretch_width"), sizing_mode="stretch_width")
        title = pn.pane.Markdown(f"### aicircle explorer — {s.model.path.name} "
                                 f"(starting from {s.start_label})")
        self.layout = pn.Row(pn.Column(*side, width=380, scroll=True, height=900),
                             pn.Column(title, self.picker, self.plots, strip, sizing_mode="stretch_width"),
                             sizing_mode="stretch_width")
        self._layout_plots()
        self.redraw()

    def _repr_mimebundle_(self, include=None, exclude=None):  # inline in Jupyter
        return self.layout._repr_mimebundle_(include, exclude)

    def servable(self):
        return self.layout.servable()

    # -- sliders -------------------------------------------------------
    def variable(self) -> list:
        """The parameters an ensemble varies and a sweep may take: all but switches and fixed ones."""
        s = self.setting
        return [k for k in s.sliders.index
                if k not in s.switches and s.sliders.at[k, "lo"] < s.sliders.at[k, "hi"]]

    def _filter(self, text):
        key = clean_name(text or "")
        for name, slider in self.sliders.items():
            slider.visible = key in clean_name(name)
        for card in self.cards.values():
            shown = [w for w in card.objects if w.visible]
            card.visible = bool(shown)
            if key and shown:
                card.collapsed = False

    def _moved(self, name, value):
        self.values[name] = float(value)
        if self._quiet:
            return
        pn = _panel()
        if pn.state.curdoc is None or pn.state.curdoc.session_context is None:
            self.redraw()  # a notebook or a script: each move is drawn before the next
            return
        # In a browser a drag sends a value every few milliseconds, faster than a run: the moves
        # queue in the server. A move is drawn at once only if the last drawing is older than
        # its own cost; a check TRAILING_MS later draws the last value, and the loops (which cost
        # several runs) once the slider has been still for LOOPS_AFTER_MS.
        self._moved_at = time.monotonic()
        if self._moved_at - self._drawn_at >= self._cost:
            self._draw_run()
        self._schedule_settle()

    def _schedule_settle(self):
        if not self._trailing:
            self._trailing = True
            _panel().state.add_periodic_callback(self._settle, period=TRAILING_MS, count=1)

    def _settle(self):
        self._trailing = False
        if self._drawn_values != self.values:
            self._draw_run()
        if self._loops_values != self._drawn_values:
            if time.monotonic() - self._moved_at >= LOOPS_AFTER_MS / 1000:
                self._draw_loops()
            else:
                self._schedule_settle()

    def set(self, values: Mapping):
        """Move sliders (name -> value) and redraw once."""
        self._quiet = True
        try:
            for name, value in values.items():
                name = name if name in self.sliders else self.setting.model.resolve(name)
                if name not in self.sliders:
                    raise InvalidInput(f"'{name}' has no slider: it is not a parameter")
                value = _check.finite(f"value of '{name}'", value)
                self.sliders[name].value = value
                self.values[name] = value
        finally:
            self._quiet = False
        self.redraw()

    def reset(self, which="start"):
        """Every slider to the values the explorer started from (``"start"``) or the model file's."""
        column = {"start": "value", "model": "model_value"}[which]
        self._quiet = True
        try:
            for toggle in self.toggles.values():
                toggle.value = False
        finally:
            self._quiet = False
        self.set(self.setting.sliders[column].to_dict())

    def scenario(self, name, on):
        """Scenario ``name`` on (its switches' sliders set to its values) or off (back to the start)."""
        if self._quiet:
            return
        params = self.setting.scenarios[name][1]
        self.set(params if on else {k: self.setting.sliders.at[k, "value"] for k in params})

    # -- plots ---------------------------------------------------------
    def _figure(self, name):
        from bokeh.models import ColumnDataSource, Whisker
        from bokeh.plotting import figure

        unit = _unit_of(self.setting, name)
        fig = figure(height=240, sizing_mode="stretch_width", title=name, x_axis_label="time",
                     y_axis_label=unit or "value", tools="pan,wheel_zoom,box_zoom,reset,hover,save",
                     toolbar_location="right")
        base = self.setting.baseline
        source = ColumnDataSource({"time": base.index.to_numpy(), "value": base[name].to_numpy(),
                                   "baseline": base[name].to_numpy(), "lower": np.full(len(base), np.nan),
                                   "upper": np.full(len(base), np.nan)}, name=f"series:{name}")
        fig.varea("time", "lower", "upper", source=source, fill_alpha=0.2, fill_color="#1f77b4",
                  legend_label="ensemble 5–95%")
        fig.line("time", "baseline", source=source, line_color="grey", line_alpha=0.45, line_width=1.5,
                 legend_label=f"start ({self.setting.start_label})")
        fig.line("time", "value", source=source, line_color="#1f77b4", line_width=2, legend_label="now")
        pts = self.setting.points.get(name)
        if pts:
            t, t_lo, t_hi, y, y_lo, y_hi = (list(c) for c in zip(*pts))
            data = ColumnDataSource({"t": t, "t_lo": t_lo, "t_hi": t_hi, "y": y, "y_lo": y_lo, "y_hi": y_hi},
                                    name=f"targets:{name}")
            fig.scatter("t", "y", source=data, color="black", size=5, legend_label="targets (±1 sigma)")
            fig.add_layout(Whisker(source=data, base="t", lower="y_lo", upper="y_hi", line_color="black"))
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "8pt"
        fig.legend.background_fill_alpha = 0.5
        self._sources[name] = source
        self._figures[name] = fig
        return fig

    def _layout_plots(self):
        pn = _panel()
        names = list(self.picker.value)
        for name in names:
            if name not in self._figures:
                self._figure(name)
        self.plots.objects = [pn.pane.Bokeh(self._figures[n], sizing_mode="stretch_width") for n in names]
        self._draw_series(names)

    def _draw_series(self, names=None):
        run = self.run
        for name in (self.picker.value if names is None else names):
            source = self._sources[name]
            source.data = {**source.data, "value": run[name].to_numpy(),
                           "lower": np.full(len(run), np.nan), "upper": np.full(len(run), np.nan)}

    def redraw(self):
        """Run the model at the sliders' values and redraw the plots and the strip."""
        self._draw_run()
        self._draw_loops()

    def _draw_run(self):
        """The run at the sliders' values: the plots and the outcome (the loops follow in :meth:`redraw`)."""
        began = time.monotonic()
        self._drawn_values = dict(self.values)
        self.run = self.setting.model.simulate(params=self._drawn_values)
        self._draw_series()
        self.outcome.object = outcome_text(self.setting, self.run)
        self._drawn_at = time.monotonic()
        self._cost = self._drawn_at - began

    # -- the strip: loops --------------------------------------------------
    def _loop_figure(self):
        from bokeh.models import ColumnDataSource, HoverTool
        from bokeh.plotting import figure

        source = ColumnDataSource({"left": [], "right": [], "loop": [], "color": [], "label": []},
                                  name="dominance")
        fig = figure(height=90, sizing_mode="stretch_width", title="dominant loop over time", y_range=(0, 1),
                     tools="", toolbar_location=None)
        fig.quad(left="left", right="right", bottom=0, top=1, color="color", source=source,
                 line_color="white")
        fig.text(x="left", y=0.3, text="loop", source=source, text_font_size="8pt", x_offset=2)
        fig.add_tools(HoverTool(tooltips=[("loop", "@label"), ("from", "@left{0.00}"),
                                          ("to", "@right{0.00}")]))
        fig.yaxis.visible = False
        return source, fig

    def _draw_loops(self):
        s = self.setting
        self._loops_values = self._drawn_values
        if s.loops is None or s.loops.empty:
            self.loop_text.object = f"dominant loop: {s.no_loops}"
            return
        scores = s.model.loop_scores(self.run, loops=s.loops)
        periods = _ltm.dominance(scores)
        step = float(np.diff(self.run.index[:2])[0]) if len(self.run) > 1 else 0.0
        order = list(s.loops.index)
        self.loop_source.data = {
            "left": (periods["start"] - step).tolist(), "right": periods["end"].tolist(),
            "loop": periods["loop"].tolist(),
            "color": [_PALETTE[order.index(k) % len(_PALETTE)] for k in periods["loop"]],
            "label": [_ltm.label(s.loops, k) for k in periods["loop"]]}
        if periods.empty:
            self.loop_text.object = "dominant loop: no loop is active in this run"
            return
        share = (periods["end"] - periods["start"] + step).groupby(periods["loop"]).sum().sort_values(
            ascending=False)
        top = [f"{_ltm.label(s.loops, k)} — {v:.1f} of {self.run.index[-1] - self.run.index[0]:.0f} years"
               for k, v in share.head(3).items()]
        self.loop_text.object = "dominant most of the time: " + "; ".join(top)

    # -- the strip: background work (ensemble band, sweep) -----------------
    def _start(self, what, work, show):
        pn = _panel()
        if self._job is not None and self._job["thread"].is_alive():
            self.status.object = f"busy: {self._job['what']} is still running"
            return
        job = {"what": what, "done": 0, "result": None, "error": None, "values": dict(self.values),
               "show": show}

        def target():
            try:
                with self.setting.worker_lock:
                    if self.setting.worker is None:
                        self.setting.worker = copy.deepcopy(self.setting.model)
                    job["result"] = work(self.setting.worker, job)
            except Exception as err:  # noqa: BLE001 - shown on the page (a solver that gives up, a bad range)
                job["error"] = err

        job["thread"] = threading.Thread(target=target, daemon=True, name=f"aicircle-explore-{what}")
        self._job = job
        self.progress.value, self.progress.visible = 0, True
        self.status.object = f"{what}: running"
        job["thread"].start()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            self._poll_callback = pn.state.add_periodic_callback(self.poll, period=200)
        else:  # a notebook or a script: wait here
            job["thread"].join()
            self.poll()

    def poll(self):
        """Show the background job's progress, and its result once it is done."""
        job = self._job
        if job is None:
            return
        self.progress.value = int(job["done"])
        if job["thread"].is_alive():
            return
        if self._poll_callback is not None:
            self._poll_callback.stop()
            self._poll_callback = None
        self.progress.visible = False
        if job["error"] is not None:
            self.status.object = f"{job['what']} failed: {' '.join(str(job['error']).split())}"
        elif job["values"] != self.values:
            self.status.object = f"{job['what']}: the sliders moved meanwhile; ask again"
        else:
            job["show"](job["result"])

    def start_ensemble(self, n=ENSEMBLE_SETS, spread=ENSEMBLE_SPREAD, seed=0):
        """Run ``n`` sets around the sliders' values in the background; then draw the 5–95% band."""
        s = self.setting
        names = list(self.picker.value)
        varied = self.variable()
        rng = np.random.default_rng(seed)
        table = pd.DataFrame({**{k: np.clip(self.values[k] * (1 + spread * rng.uniform(-1, 1, n)),
                                            s.sliders.at[k, "lo"], s.sliders.at[k, "hi"]) for k in varied},
                              **{k: np.full(n, v) for k, v in self.values.items() if k not in varied}})

        def work(model, job):
            parts = []
            for start in range(0, n, _CHUNK):
                batch = model.simulate_batch(table.iloc[start:start + _CHUNK], return_columns=names,
                                             workers=1)
                parts.append(batch)
                job["done"] = 100 * min(n, start + _CHUNK) / n
            return {k: np.concatenate([p[k].to_numpy() for p in parts]) for k in names}

        def show(result):
            for name, runs in result.items():
                lo, hi = np.nanpercentile(runs, [5, 95], axis=0)
                src = self._sources[name]
                src.data = {**src.data, "lower": lo, "upper": hi}
            self.status.object = (f"ensemble: {n} sets, each parameter uniform within ±{spread:.0%} of its "
                                  f"slider (seed {seed}); the band is the 5–95% range")

        self._start("ensemble", work, show)

    def start_sweep(self, param, n=SWEEP_POINTS):
        """Sweep ``param`` over its slider's range in the background: the outcome and its thresholds."""
        s = self.setting
        param = s.model.resolve(param)
        lo, hi = float(s.sliders.at[param, "lo"]), float(s.sliders.at[param, "hi"])
        held = {k: v for k, v in self.values.items() if k != param}
        horizon = s.horizons[-1]

        def work(model, job):
            if s.outcome is None and s.classifier is None:
                raise InvalidInput("no outcome to sweep: start the explorer with --outcome 'VARIABLE<VALUE'")
            grid = np.linspace(lo, hi, n)
            columns = [s.outcome.variable] if s.outcome is not None else \
                [model.resolve(v) for v in s.classifier.variables]
            table = pd.DataFrame({param: grid, **{k: np.full(n, v) for k, v in held.items()}})
            batch = model.simulate_batch(table, return_columns=columns, workers=1)
            times = batch["time"].to_numpy()
            values = [batch[c].to_numpy() for c in columns]
            labels = s.outcome.evaluate(times, values[0], horizon) if s.outcome is not None else \
                s.classifier.labels(times, values, horizon)
            job["done"] = 50
            thresholds = tipping.outcome_thresholds(model, param, lo, hi, horizons=[horizon],
                                                    outcome=s.outcome, classifier=s.classifier, params=held,
                                                    n_grid=n)
            job["done"] = 100
            return grid, [str(x) for x in labels], thresholds

        def show(result):
            grid, labels, thresholds = result
            self.sweep_source.data = {"x": grid, "outcome": labels}
            self.sweep_figure.y_range.factors = sorted(set(labels))
            self.sweep_figure.title.text = f"outcome at {horizon:g} against {param}"
            self.sweep_figure.xaxis.axis_label = param
            self.sweep_lines.data = {"x": [t["value"] for t in thresholds]}
            said = "; ".join(f"{t['from']} → {t['to']} at {t['value']:.6g}" for t in thresholds)
            self.status.object = f"sweep of {param} over [{lo:g}, {hi:g}]: " + (
                said or "the outcome never changes")

        self._start("sweep", work, show)

    def _sweep_figure(self):
        from bokeh.models import ColumnDataSource, FactorRange
        from bokeh.plotting import figure

        source = ColumnDataSource({"x": [], "outcome": []}, name="sweep")
        lines = ColumnDataSource({"x": []}, name="thresholds")
        fig = figure(height=160, sizing_mode="stretch_width", title="outcome sweep (not run yet)",
                     y_range=FactorRange(factors=["-"]), tools="hover", toolbar_location=None)
        fig.scatter("x", "outcome", source=source, size=6)
        fig.ray(x="x", y=0, length=0, angle=math.pi / 2, source=lines, line_color="red", line_dash="dashed")
        self.sweep_figure = fig
        return source, lines, fig


# ----------------------------------------------------------------------
# entry points
# ----------------------------------------------------------------------
def explore(model, params=None, *, start_label=None, switches=(), scenarios=None, targets=None,
            vocabulary=None, outcome=None, classifier=None, horizons=None, bust_from=None) -> Explorer:
    """The explorer of ``model`` (a Panel app; it shows inline in a Jupyter notebook).

    Parameters
    ----------
    model : aicircle.Model
    params : dict, optional
        Parameter values to start from (and reset to), e.g. a calibration.
    start_label : str, optional
        What those values are, in words ("the shipped calibration").
    switches : iterable of str
        Parameters that are scenario switches: never in an ensemble or a sweep.
    scenarios : dict, optional
        ``name -> (description, {parameter: value})``: one toggle each.
    targets : pandas.DataFrame, optional
        :func:`aicircle.observables.read_targets`' table, read in ``vocabulary``:
        the data points drawn over the variables that define their observables.
    outcome : str or aicircle.tipping.Outcome, optional
        ``'VARIABLE<VALUE'``; or else
    classifier : aicircle.tipping.Classifier, optional
        A study's definition of the outcomes.
    horizons : sequence of float, optional
        Times the outcome is read at; FINAL TIME by default.
    bust_from : float, optional
        A classifier's first bust is looked for from this time on (e.g. the end of the data).
    """
    _panel().extension(inline=True)  # the notebook loads Panel's and Bokeh's JavaScript from the packages
    return Explorer(_setting(model, params, start_label, switches, scenarios, targets, vocabulary, outcome,
                             classifier, horizons, bust_from))


def serve(setting_args: dict, port=5006, address="127.0.0.1", show=False, start=True, announce=None):
    """Serve the explorer on ``address:port``: one :class:`Explorer` per browser session.

    ``setting_args`` are :func:`explore`'s arguments (``model`` included). The page
    refuses a ``?model=`` other than the model it was started with. Returns the
    server (``start=False``: not started, for tests that start it themselves);
    otherwise blocks until interrupted (Ctrl-C stops it), after calling
    ``announce(url)`` once it listens.
    """
    pn = _panel()
    port = _check.whole_number("port", port, 1)
    if port > 65535:
        raise InvalidInput(f"port must be at most 65535, got {port}")
    args = dict(setting_args)
    model = args.pop("model")
    setting = _setting(model, **args)

    def page():
        asked = pn.state.session_args.get("model") if pn.state.session_args else None
        if asked and Path(asked[0].decode("utf-8", "replace")).resolve() != model.path.resolve():
            return pn.pane.Markdown(f"refused: this explorer serves {model.path.name} only")
        return Explorer(setting).layout

    server = pn.serve({"/": page}, port=port, address=address, show=show, start=False,
                      title=f"aicircle explorer — {model.path.name}", websocket_origin=[
                          f"{host}:{port}" for host in dict.fromkeys(("127.0.0.1", "localhost", address))],
                      verbose=False)
    if start:
        server.start()
        if announce is not None:
            announce(f"http://{address}:{port}/")
        try:
            server.io_loop.start()
        except KeyboardInterrupt:  # the way to stop a server: not an error
            server.stop()
    return server

"""Load a Vensim or XMILE model and run it.

:func:`load` reads a model with :func:`aicircle.reader.read` (PySD's translators,
writing nothing), lowers it with :mod:`aicircle.compiler` and returns an
immutable :class:`Model`. Every run starts from the model's own values plus
what that run is given; nothing persists between runs.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd

from . import compiler, integrate
from .compiler import CONTROL_NAMES, clean_name
from .errors import InvalidInput, ModelReadError, UnknownName
from .observables import find_observables
from .reader import read

__all__ = ["Model", "load"]


def load(path, data_dirs=(), vocabulary=None) -> "Model":
    """Read a ``.mdl`` or ``.xmile`` model and compile it.

    Parameters
    ----------
    path : str or pathlib.Path
        The model file. It is parsed once, with PySD's translators; nothing is
        written anywhere.
    data_dirs : path or sequence of paths, optional
        Folders the model's data files (GET XLS/DIRECT ...) may lie in besides the
        model's own folder. A data file is resolved (symlinks followed) and read
        only if it lies in one of them.
    vocabulary : mapping of str to aicircle.observables.Observable, optional
        Observables the model may define (:func:`aicircle.observables.vocabulary`):
        :meth:`Model.simulate_batch` returns those it defines by default, beside
        the stocks. ``aicircle.load`` passes docs/design.md §3's vocabulary.

    Returns
    -------
    Model

    Raises
    ------
    ModelReadError
        The file is missing, unreadable or not a model; or a spreadsheet or table it
        reads (GET XLS/DIRECT ...) is, or lies outside the model's folder and
        ``data_dirs``, or is too large (the message names the file, sheet and cell).
    UnsupportedFeature
        The model uses a construct aicircle cannot compile (named in the message).
    """
    abstract = read(path)  # first: it checks what ``path`` is
    path = Path(path)
    data_dirs = _data_dirs(data_dirs)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # pragma: no cover - read() read it a moment ago
        text = ""
    vars_, lookups, scope, structural = compiler.lower(abstract, str(path), text, data_dirs)
    model = Model(path, vars_, lookups, scope, structural, abstract=abstract)
    if vocabulary is not None:
        found = find_observables(model.variables, vocabulary)
        model.observables = tuple(dict.fromkeys(found[o] for o in vocabulary if o in found))
    return model


def _data_dirs(data_dirs) -> tuple:
    if data_dirs is None:
        return ()
    if isinstance(data_dirs, (str, os.PathLike)):
        data_dirs = (data_dirs,)
    folders = []
    for d in data_dirs:
        if not isinstance(d, (str, os.PathLike)) or not str(d).strip():
            raise InvalidInput(f"data_dirs: {d!r} is not a folder name")
        if not Path(d).is_dir():
            raise InvalidInput(f"data folder {d}: not a folder")
        folders.append(Path(d))
    return tuple(folders)


def _check_number(name, value):
    try:
        arr = np.asarray(value, dtype=float)
    except OverflowError:  # a Python int beyond float's range (10**400)
        raise InvalidInput(f"value of '{name}' is not a finite number: {_short(value)}") from None
    except (TypeError, ValueError):
        raise InvalidInput(f"value of '{name}' is not a number: {_short(value)}") from None
    if not np.all(np.isfinite(arr)):
        raise InvalidInput(f"value of '{name}' is not a finite number: {_short(value)}")
    return arr


def _short(value) -> str:
    """``repr(value)``, cut to 60 characters (a 400-digit number or a long array stays readable)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else f"{text[:57]}..."


def _series(name, value):
    """``value``, a time series (or a lookup's Series), if it is indexed by numbers (not dates)."""
    index = value.index
    if isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex, pd.PeriodIndex)) or \
            index.dtype == bool or not (pd.api.types.is_numeric_dtype(index) or index.dtype == object):
        raise InvalidInput(f"'{name}': a time series is indexed by the model's time, a number; got a "
                           f"{type(index).__name__} (convert it, e.g. to years: index.year + index.dayofyear / 365)")
    return value


class Model:
    """A compiled system-dynamics model. Build it with :func:`load`.

    Attributes
    ----------
    path : pathlib.Path
    parameters : pandas.DataFrame
        One row per numeric constant, in the order of the model file, indexed
        by name: ``value, units, min, max, doc`` (``min``/``max`` NaN where the
        model declares none).
    stocks : tuple of str
        The model's own stocks.
    observables : tuple of str
        The variables that observables of :func:`load`'s ``vocabulary`` name
        (empty without one).
    state_names : tuple of str
        Every state integrated: the stocks and the hidden states of builtins.
    continuous_states : tuple of str
        The first states of ``state_names``: those with a time derivative
        (the others are the discrete states of SAMPLE IF TRUE and DELAY FIXED).
    variables : tuple of str
        Every variable a run can return, in file order.
    """

    def __init__(self, path, vars_, lookups, scope, structural=frozenset(), abstract=None):
        self.path = Path(path)
        self._abstract = abstract  # PySD's reading of the file, for check_units
        self._structural = frozenset(structural)
        self._vars = vars_
        self._lookups = lookups
        # the lookups a run can replace by name (params={"Name": series or (x, y) pairs})
        self._lookup_tables = {key: entry[1] for key, entry in scope.items() if entry[0] == "lookup"}
        self._programs: OrderedDict = OrderedDict()
        visible = [v for v in vars_ if not v.hidden]
        self._by_clean = {clean_name(v.name): v.vid for v in visible}
        self._controls = {}
        for key, label in CONTROL_NAMES.items():
            vid = self._by_clean.get(key)
            if vid is None:
                raise ModelReadError(f"{self.path}: the model does not define {label}")
            self._controls[key] = vid
        # a control variable that the user's model defines as a constant is
        # still a control: it is set through final_time= etc., not params=
        self.variables = tuple(v.name for v in visible)
        self.stocks = tuple(v.name for v in visible if v.kind == "stock")
        self.observables = ()  # the variables a vocabulary names (load's vocabulary=)
        rows = []
        for v in visible:
            if v.kind == "const" and not v.unchangeable:
                lo, hi = (v.limits + (None, None))[:2]
                # a subscripted constant: one row per element, named as simulate's columns
                names = [v.name] if v.size is None else \
                    [f"{v.name}[{label}]" for label in compiler.element_labels(v.dims)]
                values = [v.expr[1]] if v.size is None else list(v.expr[1][:, 0])
                for name, value in zip(names, values):
                    rows.append({"name": name, "value": value, "units": v.units,
                                 "min": _limit(lo), "max": _limit(hi), "doc": v.doc})
        self.parameters = pd.DataFrame(rows, columns=["name", "value", "units", "min", "max", "doc"]
                                       ).set_index("name")
        # compile every variable now, so that a broken model fails at load
        self._program(frozenset(), tuple(self._by_clean[clean_name(n)] for n in self.variables))
        base = self._program(frozenset(), ())
        self.state_names = tuple(base.row_name(row) for row in range(base.n_state_rows))
        # the states an ODE solver integrates (the rest are discrete: SAMPLE IF TRUE, DELAY FIXED)
        self.continuous_states = self.state_names[:base.n_continuous]
        self._observable_defaults = None
        self._seed = None  # the seed of runs given none (with_seed)

    def with_seed(self, seed) -> "Model":
        """This model, with ``seed`` as the seed of every run that is given none.

        The commands of the command line run their model this way, so that
        ``--seed`` reaches the model's random functions (RANDOM UNIFORM, ...) in
        every run an analysis makes (sensitivity, tipping, loops, report), not only
        the sample it draws: the same command gives the same numbers. The model
        itself is unchanged.

        Parameters
        ----------
        seed : int or None
            A whole number >= 0; None: runs given no seed draw fresh numbers.

        Returns
        -------
        Model
            A copy sharing the compiled programs.
        """
        from . import _check

        seeded = copy.copy(self)
        seeded._seed = _check.seed(seed)
        seeded.__dict__.pop("_loop_cache", None)  # the loops' own run depends on the seed
        return seeded

    # ------------------------------------------------------------------
    # names
    # ------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """Return the model's own spelling of ``name`` (Vensim's matching rule).

        An element of a subscripted variable, ``"x[d1]"`` (or ``"X[ D1 ]"``), is spelled
        as :meth:`simulate`'s column of it.
        """
        vid, element = self._vid_element(name)
        var = self._vars[vid]
        return var.name if element is None else f"{var.name}[{self._element_labels(vid)[0][element]}]"

    def columns(self, name: str) -> list:
        """The columns :meth:`simulate` returns for variable ``name``: ``[name]``, or one per
        element of a subscripted variable (``["x[d1]", "x[d2]", ...]``), each a name
        :meth:`resolve`, ``return_columns`` and the analyses take."""
        vid, element = self._vid_element(name)
        var = self._vars[vid]
        if element is not None or var.size is None:
            return [self.resolve(name)]
        return [f"{var.name}[{label}]" for label in self._element_labels(vid)[0]]

    def _vid(self, name: str) -> int:
        if not isinstance(name, str) or not name.strip():
            raise UnknownName(f"a variable name must be a non-empty string, got {name!r}")
        key = clean_name(name)
        if key in self._by_clean:
            return self._by_clean[key]
        close = [v for v in self.variables if key[:4] in clean_name(v)][:5]
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownName(f"unknown variable '{name}' in {self.path.name}{hint}")

    @property
    def time(self) -> dict:
        """The model's own time settings: initial_time, final_time, time_step, saveper."""
        prog = self._program(frozenset(), ())
        P = self._default_P(prog)
        t0 = float(prog.controls(P, 0.0)["initial_time"])
        return {k: float(v) for k, v in prog.controls(P, t0).items()}

    # ------------------------------------------------------------------
    # programs (generated code), cached per overridden names and outputs
    # ------------------------------------------------------------------
    def _program(self, overrides: frozenset, outputs: tuple, smooth=None) -> compiler.Program:
        key = (overrides, outputs, smooth)
        prog = self._programs.get(key)
        if prog is None:
            vars_, lookups = self._vars, self._lookups
            replaced = [o for o in overrides if isinstance(o, compiler.Override)]
            started = sorted(o for o in overrides if isinstance(o, _InitialValue))
            if replaced or started:  # time series, lookup tables and initial values given to this run
                vars_, lookups = list(vars_), list(lookups)
                for override in replaced:
                    override.apply(vars_, lookups)
                for override in started:
                    override.apply(vars_)
            params = [v.vid for v in vars_ if v.kind == "const" or v.vid in overrides]
            prog = compiler.Program(vars_, lookups, params, list(outputs),
                                    self.path.name, self._controls, smooth=smooth)
            self._programs[key] = prog
            if len(self._programs) > 32:
                self._programs.popitem(last=False)
        else:
            self._programs.move_to_end(key)
        return prog

    def _default_P(self, prog, values=None):
        values = values or {}
        out = []
        for vid in prog.params:
            if vid in values:
                out.append(values[vid])
            else:
                expr = self._vars[vid].expr
                if expr is None or expr[0] != "num":
                    raise InvalidInput(f"'{self._vars[vid].name}' needs a value")  # pragma: no cover
                out.append(expr[1])
        return out

    def _overrides(self, params: dict | None, *, allow_arrays: bool) -> dict:
        """Map user-given names to variable ids, validating values."""
        if params is not None and not hasattr(params, "items"):
            raise InvalidInput(f"params must map names to values, got {type(params).__name__}")
        values = {}
        given = {}
        tables = {}  # lookup table id -> the name it was given under
        elements: dict = {}  # subscripted constants set element by element: vid -> {element: value}
        for name, value in (params or {}).items():
            table = self._lookup_tables.get(clean_name(name)) if isinstance(name, str) else None
            if table is not None:  # a lookup: a new table for this run
                if table in tables:
                    raise InvalidInput(f"params name the lookup '{tables[table]}' twice: as "
                                       f"'{tables[table]}' and '{name}'")
                tables[table] = name
                if isinstance(value, pd.Series):
                    value = _series(name, value)
                try:
                    values[compiler.Override.table(table, value, name)] = None
                except OverflowError:  # (x, y) pairs holding an int beyond float's range
                    raise InvalidInput(f"lookup '{name}': its points must be finite numbers") from None
                continue
            vid, element = self._vid_element(name)
            var = self._vars[vid]
            if element is not None:
                if var.kind != "const":
                    raise InvalidInput(f"'{name}': only a constant is set element by element")
                elements.setdefault(vid, {})[element] = value
                continue
            if vid in given:
                raise InvalidInput(f"params name '{var.name}' twice: as '{given[vid]}' and '{name}'")
            given[vid] = name
            if var.kind == "stock":
                raise InvalidInput(f"'{var.name}' is a stock: its flows set its value; change the constant "
                                  f"it starts from, or (in Python) its initial value with initial=")
            if var.kind == "control":
                raise InvalidInput(
                    f"'{var.name}' is a time setting; use final_time=, time_step= or saveper=")
            if var.unchangeable:
                raise InvalidInput(f"'{var.name}' is an unchangeable constant (==)")
            if vid in self._structural:
                raise InvalidInput(f"'{var.name}' sets the order of a delay or smooth, which is fixed "
                                   f"when the model is loaded; edit it in the model file")
            if isinstance(value, pd.Series):  # PySD's time series: interpolated at each time
                if var.size is not None:
                    raise InvalidInput(f"'{var.name}' is subscripted; a time series sets one variable")
                try:
                    values[compiler.Override.series(vid, _series(var.name, value), var.name)] = None
                except OverflowError:  # an int beyond float's range among its times or values
                    raise InvalidInput(f"the times and values given for '{var.name}' must be finite "
                                       f"numbers") from None
                continue
            if var.size is not None:
                values[vid] = self._subscripted_value(var, value, allow_arrays)
                continue
            arr = _check_number(var.name, value)
            if arr.ndim and not allow_arrays:
                raise InvalidInput(f"value of '{var.name}' must be a single number")
            values[vid] = float(arr) if arr.ndim == 0 else arr
        for vid, by_element in elements.items():
            var = self._vars[vid]
            base = values.get(vid, var.expr[1])
            values[vid] = self._subscripted_value(var, by_element, allow_arrays, base)
        return values

    def _vid_element(self, name):
        """``(vid, None)`` for a variable's name; ``(vid, j)`` for ``"Name[a,b]"``, its element j."""
        if isinstance(name, str) and name.rstrip().endswith("[") is False and "[" in name \
                and clean_name(name) not in self._by_clean:
            base, _, rest = name.partition("[")
            vid = self._vid(base)
            var = self._vars[vid]
            label = ",".join(part.strip() for part in rest.rstrip().rstrip("]").split(","))
            labels, by_clean = self._element_labels(vid)
            if clean_name(label) not in by_clean:
                raise UnknownName(f"'{name}': '{var.name}' has no element [{label}]"
                                  + (f"; its elements are {', '.join(labels[:6])}..." if labels else
                                     " (it has no subscripts)"))
            return vid, by_clean[clean_name(label)]
        return self._vid(name), None

    def _element_labels(self, vid):
        """A subscripted variable's element labels and their positions by clean label, built once."""
        cache = self.__dict__.setdefault("_labels_cache", {})
        if vid not in cache:
            var = self._vars[vid]
            labels = compiler.element_labels(var.dims) if var.dims else []
            cache[vid] = labels, {clean_name(x): j for j, x in enumerate(labels)}
        return cache[vid]

    def _subscripted_value(self, var, value, allow_arrays, base=None):
        """A subscripted constant's value, shape (n_elements, 1) or (n_elements, n_sets).

        ``value`` is a number or an array (n_sets,) for every element, a dict element ->
        value (element positions from :meth:`_vid_element`, or ``"a,b"`` labels), or an
        xarray.DataArray over the variable's dimensions.
        """
        size = var.size
        labels, by_clean = self._element_labels(var.vid)
        if hasattr(value, "dims") and hasattr(value, "transpose"):  # an xarray.DataArray
            names = [d for d, _ in var.dims]
            if set(value.dims) - set(names):
                raise InvalidInput(f"value of '{var.name}' has dims {value.dims}; the variable's are {names}")
            for d, elems in var.dims:
                if d not in value.dims:
                    continue
                if d not in value.coords:
                    raise InvalidInput(f"value of '{var.name}': dimension '{d}' has no coordinates; name its "
                                       f"elements ({', '.join(map(str, elems[:6]))}...)")
                given_elems = [str(e) for e in value.coords[d].to_numpy()]
                unknown = [e for e in given_elems if e not in elems]
                missing = [e for e in elems if e not in given_elems]
                if unknown or missing or len(set(given_elems)) != len(given_elems):
                    what = f"names unknown elements {unknown[:6]}" if unknown else \
                        f"lacks elements {missing[:6]}" if missing else "names an element twice"
                    raise InvalidInput(f"value of '{var.name}' {what} of dimension '{d}' (its elements: "
                                       f"{', '.join(map(str, elems[:6]))}{'...' if len(elems) > 6 else ''}); "
                                       f"set some elements with a dict")
            value = value.expand_dims([d for d in names if d not in value.dims])
            value = value.sel({d: elems for d, elems in var.dims}).transpose(*names)
            arr = _check_number(var.name, value.to_numpy()).reshape(size, 1)
            return arr
        if hasattr(value, "items"):
            out = np.array(var.expr[1] if base is None else base, dtype=float)
            for element, v in value.items():
                if isinstance(element, (bool, np.bool_)) or (
                        isinstance(element, (int, np.integer)) and not 0 <= element < size):
                    raise UnknownName(f"'{var.name}' has no element {element!r}: by position, its elements "
                                      f"are 0 to {size - 1}")
                j = element if isinstance(element, (int, np.integer)) else by_clean.get(
                    clean_name(",".join(str(element).split(","))) if not isinstance(element, tuple)
                    else clean_name(",".join(map(str, element))))
                if j is None:
                    raise UnknownName(f"'{var.name}' has no element [{element}]; its elements are "
                                      f"{', '.join(labels[:6])}{'...' if len(labels) > 6 else ''}")
                arr = _check_number(f"{var.name}[{labels[j]}]", v)
                if arr.ndim and not allow_arrays:
                    raise InvalidInput(f"value of '{var.name}[{labels[j]}]' must be a single number")
                if arr.ndim and out.shape[1] != arr.shape[0]:
                    out = np.array(np.broadcast_to(out, (size, arr.shape[0])))
                out[j] = arr
            return out
        arr = _check_number(var.name, value)
        if arr.ndim > 1 or (arr.ndim and not allow_arrays):
            raise InvalidInput(f"value of '{var.name}' must be a number (all its elements), a dict by "
                               f"element or an xarray.DataArray")
        return np.array(np.broadcast_to(arr.reshape(1, -1) if arr.ndim else arr.reshape(1, 1),
                                        (size, arr.size if arr.ndim else 1)))

    def _controls_overrides(self, final_time, time_step, saveper, initial_time=None):
        values = {}
        for key, value in (("final_time", final_time), ("time_step", time_step),
                           ("saveper", saveper), ("initial_time", initial_time)):
            if value is None:
                continue
            arr = _check_number(CONTROL_NAMES[key], value)
            if arr.ndim:
                raise InvalidInput(f"{CONTROL_NAMES[key]} must be a single number, got {value!r}")
            v = float(arr)
            if key in ("time_step", "saveper") and v <= 0:
                raise InvalidInput(f"{CONTROL_NAMES[key]} must be positive, got {v}")
            values[self._controls[key]] = v
        return values

    def _outputs(self, return_columns, default):
        if return_columns is None:
            return_columns = default
        if isinstance(return_columns, str):
            return_columns = [return_columns]
        if isinstance(return_columns, (list, tuple, pd.Index, np.ndarray)) and len(return_columns) == 0:
            raise InvalidInput("return_columns is empty; give at least one variable name (None: the default)")
        if not isinstance(return_columns, (list, tuple, pd.Index, np.ndarray)) or \
                not all(isinstance(c, str) for c in return_columns):
            raise InvalidInput(f"return_columns must be a list of variable names, got {return_columns!r}")
        vids = []
        for name in return_columns:
            vid = self._vid_element(name)[0]
            if vid not in vids:
                vids.append(vid)
        return vids

    def _columns(self, return_columns) -> list | None:
        """``(name, vid, element)`` of each column asked for when one is an element (``"x[d1]"``),
        else None (each variable whole)."""
        if return_columns is None or isinstance(return_columns, str):
            return_columns = [] if return_columns is None else [return_columns]
        asked = [(name, *self._vid_element(name)) for name in return_columns]
        if all(element is None for _, _, element in asked):
            return None
        out = []
        for _, vid, element in asked:
            var = self._vars[vid]
            elements = [element] if element is not None else (range(var.size) if var.size else [None])
            for j in elements:
                name = var.name if j is None else f"{var.name}[{self._element_labels(vid)[0][j]}]"
                out.append((name, vid, j))
        return list(dict.fromkeys(out))

    def _initial_overrides(self, initial, allow_arrays, n_sets=None) -> dict:
        """``initial=`` as run values: each :class:`_InitialValue` (a key of the program) and its vid -> value.

        A stock given an initial value starts from a hidden constant that the run
        reads from its parameters, so that everything initialised from the stock
        (INITIAL, SMOOTH, TREND, DELAY, ...) starts from that value too, as in
        PySD's ``initial_condition``.
        """
        if initial is not None and not hasattr(initial, "items"):
            raise InvalidInput(f"initial must map stock names to values, got {type(initial).__name__}")
        stocks = {}
        given = {}
        for name, value in (initial or {}).items():
            vid = self._vid(name)
            var = self._vars[vid]
            if var.kind != "stock":
                raise InvalidInput(f"initial= sets stocks only; '{var.name}' is not a stock")
            if vid in given:
                raise InvalidInput(f"initial names '{var.name}' twice: as '{given[vid]}' and '{name}'")
            given[vid] = name
            arr = _check_number(var.name, value)
            if arr.ndim > 1 or (arr.ndim and not allow_arrays):
                raise InvalidInput(f"initial value of '{var.name}' must be a single number")
            if arr.ndim and n_sets is not None and arr.shape != (n_sets,):
                raise InvalidInput(f"initial value of '{var.name}' has {arr.size} values "
                                   f"for {n_sets} parameter sets")
            value = float(arr) if arr.ndim == 0 else arr
            if var.size is not None:  # every element starts from it: shape (n_elements, n_sets)
                value = np.array(np.broadcast_to(np.reshape(value, (1, -1)), (var.size, np.size(value))))
            stocks[vid] = value
        out = {}
        for k, vid in enumerate(sorted(stocks)):
            start = _InitialValue(vid, len(self._vars) + k)
            out[start] = None  # the program's key (as a time series' Override)
            out[start.vid] = stocks[vid]  # the value, read from P
        return out

    # ------------------------------------------------------------------
    # runs
    # ------------------------------------------------------------------
    def simulate(self, params=None, solver="euler", return_columns=None, final_time=None,
                 time_step=None, saveper=None, initial=None, rtol=1e-6, atol=1e-9,
                 max_step=None, allow_nonfinite=False, seed=None, backend=None) -> pd.DataFrame:
        """Run the model once.

        Parameters
        ----------
        params : dict, optional
            Name -> number: a parameter's value, or a constant replacing an
            auxiliary for this run; a ``pandas.Series`` indexed by time makes the
            variable that time series, interpolated (PySD's rule). A lookup's name
            -> a Series (x as its index) or ``(x, y)`` pairs: its table for this run.
        solver : str
            ``euler`` (Vensim's semantics) or ``rk4`` at the time step, or one of
            ``solve_ivp``'s ``rk23, rk45, dop853, lsoda, radau, bdf``.
        return_columns : list of str, optional
            Variables to return; all of them by default.
        final_time, time_step, saveper : float, optional
            Replace the model's time settings, in the model's time unit.
        initial : dict, optional
            Stock name -> initial value.
        rtol, atol, max_step : float
            Tolerances for the adaptive solvers.
        allow_nonfinite : bool
            Return NaN or infinite values instead of raising
            :class:`IntegrationError` at the first one (which names the
            variable and the time).
        seed : int, optional
            Seed of the model's random functions (RANDOM UNIFORM, ...), which draw
            once per TIME STEP (``solver="euler"``); the same seed gives the same run.
            By default the model's (:meth:`with_seed`), else fresh numbers.
        backend : {'auto', 'kernel', 'numpy'}, optional
            Euler and RK4 run through the compiled kernel where it takes the
            model (``auto``, the default, or ``AICIRCLE_BACKEND``), else through
            numpy, the reference; see :func:`aicircle.integrate.run`.

        Returns
        -------
        pandas.DataFrame
            Indexed by time (one row per SAVEPER), one column per variable.
        """
        _check_flag("allow_nonfinite", allow_nonfinite)
        seed = self._seed if seed is None else seed
        values = self._overrides(params, allow_arrays=False)
        values.update(self._controls_overrides(final_time, time_step, saveper))
        values.update(self._initial_overrides(initial, allow_arrays=False))
        outputs = self._outputs(return_columns, self.variables)
        prog = self._program(frozenset(values), tuple(outputs))
        P = self._default_P(prog, values)
        from . import _limits

        _limits.check_run(prog, P, 1, 1, integrate.solver_name(solver), "simulate",
                          "fewer return_columns, a larger saveper or an earlier final_time", chunked=False)
        times, data = integrate.run(prog, P, {}, 1, integrate.solver_name(solver),
                                    rtol=rtol, atol=atol, max_step=max_step,
                                    allow_nonfinite=allow_nonfinite, seed=seed, backend=backend, workers=1)
        cols = [prog.row_label(vid, j) for vid, j in prog.output_rows]
        frame = pd.DataFrame(data[:, :, 0].T if data.size else np.empty((len(times), 0)),
                             index=pd.Index(times, name="time"), columns=cols)
        columns = self._columns(return_columns)
        return frame if columns is None else frame[[name for name, _, _ in columns]]

    def simulate_batch(self, table, solver="euler", return_columns=None, final_time=None,
                       time_step=None, saveper=None, initial=None, chunk_size=None,
                       rtol=1e-6, atol=1e-9, max_step=None, progress=False, allow_nonfinite=True,
                       noise=None, seed=None, backend=None, workers=None):
        """Run the model once per row of ``table``, vectorised.

        Parameters
        ----------
        table : pandas.DataFrame
            One row per parameter set, one column per parameter (any subset;
            the others keep the model's values). The index becomes the
            ``set`` coordinate.
        return_columns : list of str, optional
            By default the stocks and the observables of the vocabulary the
            model was loaded with (``aicircle.load``: docs/design.md §3's) that
            it defines.
        chunk_size : int, optional
            Sets integrated at once; results do not depend on it. By default
            sized to the cache from the program's rows (numpy) or to bound the
            results' memory (the kernel): :func:`aicircle.integrate.chunk_size`.
        allow_nonfinite : bool
            By default a set whose run diverges holds NaN or infinite values
            (calibration and sensitivity analysis judge such sets themselves);
            ``False`` raises :class:`IntegrationError` at the first one instead.
        noise : dict, optional
            Stock name -> sigma: additive white noise, ``sigma * sqrt(dt) *
            N(0, 1)`` added to the stock at every step (Euler-Maruyama;
            ``solver="euler"`` only), independent per set and per stock.
        seed : int, optional
            Seed of the noise and of the model's random functions; a set's
            numbers depend only on the seed and its row, not on ``chunk_size``.
            By default the model's (:meth:`with_seed`), else fresh numbers.
        backend : {'auto', 'kernel', 'numpy'}, optional
            As in :meth:`simulate`.
        workers : int, optional
            Threads the compiled kernel splits each chunk's sets over (default
            ``AICIRCLE_WORKERS``, else the cores); results do not depend on it.
        (other parameters as in :meth:`simulate`)

        Returns
        -------
        xarray.Dataset
            dims ``("set", "time")``, one data variable per returned column.
        """
        import xarray as xr

        if not isinstance(table, pd.DataFrame):
            raise InvalidInput("simulate_batch needs a pandas DataFrame, one row per parameter set")
        if len(table) == 0:
            raise InvalidInput("simulate_batch got an empty table")
        if chunk_size is not None and (isinstance(chunk_size, bool)
                                       or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
            raise InvalidInput(f"chunk_size must be a positive whole number, got {chunk_size!r}")
        workers = integrate.check_workers(workers)
        seed = self._seed if seed is None else seed
        _check_flag("allow_nonfinite", allow_nonfinite)
        _check_flag("progress", progress)
        repeated = table.columns[table.columns.duplicated()]
        if len(repeated):
            raise InvalidInput(f"simulate_batch's table has the column '{repeated[0]}' twice")
        columns = {}
        for col in table.columns:
            columns[col] = table[col].to_numpy()
        values_all = self._overrides(columns, allow_arrays=True)
        controls = self._controls_overrides(final_time, time_step, saveper)
        values_all.update(self._initial_overrides(initial, allow_arrays=True, n_sets=len(table)))
        default = list(dict.fromkeys(self.stocks + self.observables)) if return_columns is None \
            else return_columns
        outputs = self._outputs(return_columns, default)
        prog = self._program(frozenset(values_all) | frozenset(controls), tuple(outputs))
        n = len(table)
        solver = integrate.solver_name(solver)
        from . import _limits

        first = {vid: _sets(v, 0, 1) for vid, v in {**values_all, **controls}.items()}
        if chunk_size is None:
            chunk_size = integrate.chunk_size(prog, self._default_P(prog, first), solver, backend,
                                              noise is not None)
        _limits.check_run(prog, self._default_P(prog, first), n, chunk_size, solver, "simulate_batch",
                          "fewer sets (rows of table), fewer return_columns or a larger saveper")
        if noise is not None and not hasattr(noise, "items"):
            raise InvalidInput(f"noise must map stock names to sigmas, got {type(noise).__name__}")
        noise = {self._vid(name): sigma for name, sigma in (noise or {}).items()}
        chunks = []
        times = None
        starts = range(0, n, chunk_size)
        for start in integrate.progress(starts, progress, "simulate_batch", unit="chunk"):
            stop = min(n, start + chunk_size)
            vals = {vid: _sets(v, start, stop) for vid, v in values_all.items()}
            vals.update(controls)
            P = self._default_P(prog, vals)
            t, data = integrate.run(prog, P, {}, stop - start, solver,
                                    rtol=rtol, atol=atol, max_step=max_step,
                                    allow_nonfinite=allow_nonfinite, noise=noise, seed=seed,
                                    first_set=start, backend=backend, workers=workers)
            times = t if times is None else times
            chunks.append(data)
        data = np.concatenate(chunks, axis=2)
        variables = {}
        coords = {"set": table.index.to_numpy(), "time": times}
        columns = self._columns(return_columns)
        if columns is not None:  # an element asked for by name: one ("set", "time") variable per column
            first_row = dict(zip(outputs, np.cumsum([0] + [self._vars[v].size or 1 for v in outputs])))
            for name, vid, j in columns:
                variables[name] = (("set", "time"), data[first_row[vid] + (j or 0)].T)
            return xr.Dataset(variables, coords=coords)
        row = 0
        for vid in outputs:
            var = self._vars[vid]
            if var.size is None:
                variables[var.name] = (("set", "time"), data[row].T)
                row += 1
                continue
            # a subscripted variable: dims ("set", "time", *its dimensions)
            block = data[row:row + var.size].transpose(2, 1, 0)
            shape = tuple(len(elems) for _, elems in var.dims)
            variables[var.name] = (("set", "time") + tuple(d for d, _ in var.dims),
                                   block.reshape(block.shape[:2] + shape))
            coords.update({d: list(elems) for d, elems in var.dims})
            row += var.size
        return xr.Dataset(variables, coords=coords)

    def state_at(self, time, params=None, solver="euler") -> np.ndarray:
        """The full state (hidden states included) at ``time``, shape ``(n_states,)``.

        Runs the model from INITIAL TIME to ``time``, which must be a saved time
        of the run (SAVEPER is set to TIME STEP for it).
        """
        values = self._overrides(params, allow_arrays=False)
        dt = self.time["time_step"] if self._controls["time_step"] not in values else \
            values[self._controls["time_step"]]
        values.update(self._controls_overrides(time, None, dt))
        t0 = self.time["initial_time"]
        steps = (float(time) - t0) / dt
        if abs(steps - round(steps)) * dt > 1e-6 * max(1.0, abs(float(time))):
            raise InvalidInput(f"time {time} is not on the run's grid (INITIAL TIME {t0:g} plus a whole "
                               f"number of TIME STEPs {dt:g})")
        base = self._program(frozenset(), ())
        prog = self._program(frozenset(values), tuple(base.states))
        P = self._default_P(prog, values)
        times, data = integrate.run(prog, P, {}, 1, integrate.solver_name(solver), seed=self._seed)
        if abs(times[-1] - float(time)) > 1e-6 * max(1.0, abs(float(time))):
            raise InvalidInput(f"time {time} is not on the run's grid (last saved time {times[-1]})")
        return data[:, -1, 0].copy()

    def initial_state(self, params=None) -> np.ndarray:
        """The state at INITIAL TIME, shape ``(n_states,)`` or ``(n_states, N)``.

        ``params`` maps names to numbers or to arrays of shape ``(N,)``.
        """
        values = self._overrides(params, allow_arrays=True)
        prog = self._program(frozenset(values), ())
        n = _batch_size(values)
        P = self._default_P(prog, values)
        t0, dt = integrate.static_times(prog, P)
        _, y0, _ = prog.initialise(P, t0, dt, n)
        return y0[:, 0] if not _is_batch(values) else y0

    def derivative(self, t, y, params=None, smooth=None) -> np.ndarray:
        """The time derivative of the continuous states, vectorised.

        Parameters
        ----------
        t : float
            Time, in the model's unit.
        y : ndarray, shape (n_states,) or (n_states, N)
            States in the order of :attr:`state_names`.
        params : dict, optional
            Name -> number or ndarray (N,).
        smooth : float, optional
            For continuation only: replace MIN, MAX, ABS, comparisons, IF THEN
            ELSE and lookups by smooth versions of width ``smooth`` (e.g.
            ``max(a, b)`` by ``(a + b + sqrt((a - b)^2 + smooth^2)) / 2``).

        Returns
        -------
        ndarray, same shape as ``y``
            dy/dt for the stocks; 0 for the discrete states.
        """
        values = self._overrides(params, allow_arrays=True)
        if smooth is not None and (isinstance(smooth, (str, bytes, bool)) or not np.isscalar(smooth) or
                                   not (np.isfinite(smooth) and smooth > 0)):
            raise InvalidInput(f"smooth must be a positive width, got {smooth!r}")
        if _check_number("t", t).ndim:
            raise InvalidInput(f"t must be a single time, got {t!r}")
        prog = self._program(frozenset(values), (), smooth)
        try:
            y = np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            raise InvalidInput(f"y must be an array of numbers, one row per state; got {y!r}") from None
        single = y.ndim == 1
        Y = y[:, None] if single else y
        if Y.ndim != 2 or Y.shape[0] != len(self.state_names):
            raise InvalidInput(f"y must have shape ({len(self.state_names)},) or "
                               f"({len(self.state_names)}, N), one row per state; got {y.shape}")
        n = Y.shape[1]
        P = self._default_P(prog, values)
        t0, dt = integrate.static_times(prog, P)
        consts, _, _ = prog.initialise(P, t0, dt, n)
        dY, B = prog.buffers(n)
        prog.rhs(float(t), dt, Y, consts, B)
        out = np.zeros_like(Y)
        out[: prog.n_continuous] = dY  # a subscripted stock takes a row per element
        return out[:, 0] if single else out

    def stock_flows(self) -> dict:
        """Inflows and outflows of each stock, read from its rate equation.

        A rate written as a sum and difference of variables (``INTEG(a + b -
        c, ...)``) has inflows ``a, b`` and outflow ``c``; a term that is not a
        plain variable is reported as ``"(expression)"``.

        Returns
        -------
        dict
            Stock name -> {"in": [names], "out": [names]}.
        """
        out = {}
        for v in self._vars:
            if v.kind != "stock" or v.hidden:
                continue
            terms = {"in": [], "out": []}

            def walk(node, sign):
                if node[0] == "op" and node[1] in ("+", "-"):
                    walk(node[2], sign)
                    walk(node[3], sign if node[1] == "+" else -sign)
                elif node[0] == "op" and node[1] == "neg":
                    walk(node[2], -sign)
                elif node[0] == "ref" and not self._vars[node[1]].hidden:
                    terms["in" if sign > 0 else "out"].append(self._vars[node[1]].name)
                elif node[0] == "num" and node[1] == 0:
                    pass
                else:
                    terms["in" if sign > 0 else "out"].append("(expression)")

            walk(v.deriv, 1)
            out[v.name] = terms
        return out

    def check_units(self) -> pd.DataFrame:
        """Vensim's units check of the model's equations (see :mod:`aicircle.units`).

        Returns
        -------
        pandas.DataFrame
            One row per mismatch, in file order: ``variable, expected, found,
            expression, problem`` (units as Vensim writes them, e.g. ``$B/Year``);
            empty when every equation's units agree with its variable's.
        """
        from . import units

        return units.check_abstract(self._abstract, str(self.path))

    def __getstate__(self):
        # generated code is rebuilt on demand; everything else is plain data
        state = self.__dict__.copy()
        state["_programs"] = OrderedDict()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def loop_tags(self) -> dict:
        """Feedback loops named in the variables' comments (``R1``, ``B2``, ...).

        Returns
        -------
        dict
            Tag -> names of the variables whose comment names it, in file order.
        """
        found: dict = {}
        for v in self._vars:
            if v.hidden:
                continue
            for loop in dict.fromkeys(re.findall(r"\b([RB][1-9][0-9]?)\b", v.doc)):
                found.setdefault(loop, []).append(v.name)
        return {k: found[k] for k in sorted(found, key=lambda k: (k[0] != "R", int(k[1:])))}

    # ------------------------------------------------------------------
    # feedback loops and their dominance (aicircle.loops)
    # ------------------------------------------------------------------
    def _loop_structure(self):
        from . import loops as _ltm

        cache = self.__dict__.setdefault("_loop_cache", {})
        if "structure" not in cache:
            cache["structure"] = _ltm.Structure(self)
        return cache["structure"]

    def _loop_table(self, run=None) -> pd.DataFrame:
        from . import loops as _ltm

        if run is not None:
            return _ltm.find_loops(self, run)
        cache = self.__dict__.setdefault("_loop_cache", {})
        if "table" not in cache:
            cache["table"] = _ltm.find_loops(self)
        return cache["table"].copy()

    def loops(self, run=None) -> pd.DataFrame:
        """The model's feedback loops, found from its structure (:mod:`aicircle.loops`).

        Every elementary cycle of the causal graph when there are at most
        ``aicircle.loops.MAX_ENUMERATED``; otherwise the strongest-path loop set
        (Eberlein & Schoenberg 2020) along ``run``. Polarities whose sign is not
        structural are evaluated along ``run``. A comment tag (``R1``, ``B2``, see
        :attr:`loop_tags`) names the loop whose variables it shares most; a tag
        whose letter contradicts that loop's computed polarity raises a
        :class:`~aicircle.errors.LoopPolarityWarning` and shows as
        ``tag_agrees == False``.

        Parameters
        ----------
        run : pandas.DataFrame, optional
            A :meth:`simulate` result holding every variable (the default
            ``return_columns``); by default the model's own run, with its own values.

        Returns
        -------
        pandas.DataFrame
            One row per loop, indexed by ``loop`` (its tag, or ``L<n>``): ``id``
            (``L<n>``, shortest loops first), ``polarity`` (``R``, ``B``; ``R/B``
            where the sign changes along the run, ``?`` where the loop is never
            active in it), ``tag`` (``""`` for none), ``tag_agrees`` (None without a
            tag), ``length`` (variables), ``stocks`` (how many of them are stocks),
            ``variables`` (tuple of names, in the loop's causal order, starting at
            the first in file order). ``attrs["method"]`` says how the loops were
            found; ``attrs["unmatched_tags"]`` lists tags that name no loop.
        """
        from . import loops as _ltm

        table = self._loop_table(run)
        _ltm.warn_disagreements(table, self.path.name)
        return table

    def loop_scores(self, run, loops=None, params=None, relative=False) -> pd.DataFrame:
        """Loop scores (Loops That Matter) along one run, at every saved time.

        Parameters
        ----------
        run : pandas.DataFrame or xarray.Dataset
            A :meth:`simulate` result, or one set of a :meth:`simulate_batch`
            result (``batch.isel(set=k)``). It must hold every variable that
            changes on or into a loop (the default ``return_columns`` of
            :meth:`simulate` does; for a batch, ``return_columns=list(model.variables)``).
        loops : pandas.DataFrame, optional
            The loops to score, as :meth:`loops` returns (or rows of it); by
            default ``self.loops()``.
        params : dict, optional
            Values of the constants the run was given that it does not hold as
            columns (it holds them all with the default ``return_columns``).
        relative : bool
            Return each score over the sum of the absolute scores at that time
            (``aicircle.loops.relative``), in [-1, 1].

        Returns
        -------
        pandas.DataFrame
            Indexed by the run's times, one column per loop (the index of
            ``loops``); the first time, which has no previous one, is NaN.
        """
        from . import loops as _ltm

        _check_flag("relative", relative)
        table = self._loop_table() if loops is None else loops
        times, index, scores = _ltm.scores(self, table, run, params)
        if index is not None and len(index) != 1:
            raise InvalidInput(f"loop_scores scores one run; this batch has {len(index)} sets: use "
                               f"loop_scores_batch, or one set (batch.isel(set=k))")
        frame = pd.DataFrame({k: v[:, 0] for k, v in scores.items()}, index=pd.Index(times, name="time"),
                             columns=list(table.index))
        frame.columns.name = "loop"
        return _ltm.relative(frame) if relative else frame

    def loop_scores_batch(self, batch, loops=None, params=None, relative=False):
        """Loop scores of every set of a batch at once (vectorised); see :meth:`loop_scores`.

        Parameters
        ----------
        batch : xarray.Dataset
            A :meth:`simulate_batch` result with dims ``("set", "time")`` holding
            every variable on or into a loop (``return_columns=list(model.variables)``).
        params : dict or pandas.DataFrame, optional
            Constants the batch was given that it does not hold: name -> number or
            array of one value per set (a ``simulate_batch`` table).

        Returns
        -------
        xarray.DataArray
            dims ``("set", "time", "loop")``.
        """
        import xarray as xr

        from . import loops as _ltm

        _check_flag("relative", relative)
        if not isinstance(batch, xr.Dataset) or "set" not in batch.dims:
            raise InvalidInput("loop_scores_batch needs the Dataset of simulate_batch, with a 'set' dimension")
        if isinstance(params, pd.DataFrame):
            params = {c: params[c].to_numpy() for c in params.columns}
        table = self._loop_table() if loops is None else loops
        times, index, scores = _ltm.scores(self, table, batch, params)
        data = np.stack([scores[k].T for k in table.index], axis=-1) if len(table) else \
            np.empty((len(index), len(times), 0))
        if relative:
            with np.errstate(all="ignore"):
                total = np.abs(data).sum(axis=-1, keepdims=True)
                data = np.where(total > 0, data / np.where(total > 0, total, 1.0), np.nan)
        return xr.DataArray(data, dims=("set", "time", "loop"),
                            coords={"set": index, "time": times, "loop": list(table.index)},
                            name="relative loop score" if relative else "loop score")

    def __repr__(self):
        return (f"<aicircle.Model {self.path.name}: {len(self.stocks)} stocks, "
                f"{len(self.parameters)} parameters, {len(self.variables)} variables>")


@dataclasses.dataclass(frozen=True, order=True)
class _InitialValue:
    """A run's initial value of stock ``stock``, read from the parameters as hidden constant ``vid``.

    Hashable by the stock alone (the value is a parameter), so that every run
    starting that stock elsewhere shares one compiled program.
    """

    stock: int
    vid: int

    def apply(self, vars_: list) -> None:
        """Append the hidden constant to a copy of a model's ``vars_`` and start the stock from it."""
        stock = vars_[self.stock]
        if len(vars_) != self.vid:  # pragma: no cover - _initial_overrides numbers them in order
            raise RuntimeError(f"initial value of '{stock.name}' numbered {self.vid}, expected {len(vars_)}")
        shape = () if stock.size is None else (stock.size, 1)
        vars_.append(compiler.Var(vid=self.vid, name=f"initial value of {stock.name}", kind="const",
                                  expr=("num", np.full(shape, np.nan) if shape else math.nan),
                                  hidden=True, builtin="initial=", size=stock.size))
        vars_[self.stock] = dataclasses.replace(stock, init=("ref", self.vid))


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInput(f"{name} must be True or False, got {value!r}")


def _sets(value, start, stop):
    """Sets ``start:stop`` of a parameter's value (a number, an array (n,), or (n_elements, n))."""
    if np.ndim(value) == 2:
        return value[:, start:stop] if value.shape[1] > 1 else value
    return value[start:stop] if np.ndim(value) else value


def _batch_size(values):
    sizes = {np.size(v) for v in values.values() if np.ndim(v)}
    if len(sizes) > 1:
        raise InvalidInput(f"parameter arrays have different lengths: {sorted(sizes)}")
    return sizes.pop() if sizes else 1


def _is_batch(values):
    return any(np.ndim(v) for v in values.values())


def _limit(x):
    if x is None:
        return math.nan
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan

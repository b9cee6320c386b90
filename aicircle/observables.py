"""Observables: how calibration and validation speak of a model, and the operators
that turn a simulated run into the numbers a target file holds (docs/design.md §3).

A *vocabulary* (id -> :class:`Observable`, made with :func:`vocabulary`) names
the observables a study calibrates to; the toolkit has none of its own, so
every function that reads ids takes one (the capital-circle study's is
:data:`aicircle.study.observables.OBSERVABLES`). A model *defines* an
observable when one of its variables, lower-cased with runs of spaces and
underscores read as one ``_``, equals the observable's id (``Lab Revenue``
defines ``lab_revenue``). A target file (CSV, one target a row) says which
observable, over which calendar window, aggregated how, should have which
value, with which uncertainty and from which source.

This module knows nothing of the engine: :func:`observe` takes the integration
grid and a mapping of variable name to array, so it works on the output of
``Model.simulate`` (saved at every TIME STEP), of ``Model.simulate_batch``, or
on plain numpy arrays.

Time is model time in calendar years: a date D is
``t(D) = year + (day of year - 1) / days in that year`` and a target's window is
``[t(start), t(end + 1 day))``, so 2025-01-01 to 2025-06-30 is H1 2025.
"""

from __future__ import annotations

import calendar
import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from ._io import read_capped
from .errors import InvalidInput, TargetFileError, UnknownName

__all__ = [
    "AGGREGATIONS",
    "COLUMNS",
    "LOG_FLOOR",
    "NONFINITE_RESIDUAL",
    "UNITS",
    "Observable",
    "Payoff",
    "errors",
    "expected_unit",
    "find_observables",
    "model_time",
    "observable_id",
    "observe",
    "payoff",
    "read_targets",
    "residuals",
    "vocabulary",
    "windows_extent",
]


@dataclass(frozen=True)
class Observable:
    """One entry of the observable vocabulary.

    Attributes
    ----------
    id : str
        The observable's id, e.g. ``"lab_revenue"``.
    kind : {"flow", "level"}
        A flow is a rate in $B/Year (it can be integrated over a window); a
        level is a quantity at a time.
    unit : str
        ``"$B/Year"`` for every flow; ``"$B"``, ``"GW"``, ``"million"`` or
        ``"fraction"`` for levels.
    description : str
        What the observable is calibrated to.
    """

    id: str
    kind: str
    unit: str
    description: str


def vocabulary(*entries: Observable | tuple[str, str, str, str]) -> Mapping[str, Observable]:
    """A read-only vocabulary, id -> :class:`Observable`, from observables or ``(id, kind, unit,
    description)`` tuples, in the order given."""
    out = {}
    for entry in entries:
        obs = entry if isinstance(entry, Observable) else Observable(*entry)
        if obs.kind not in ("flow", "level"):
            raise InvalidInput(f"observable {obs.id!r}: kind must be 'flow' or 'level', got {obs.kind!r}")
        if obs.id in out:
            raise InvalidInput(f"observable {obs.id!r} appears twice in the vocabulary")
        out[obs.id] = obs
    return MappingProxyType(out)


def _check_vocabulary(vocab) -> Mapping[str, Observable]:
    if not isinstance(vocab, Mapping) or not all(isinstance(o, Observable) for o in vocab.values()):
        raise InvalidInput(f"vocabulary must map observable ids to Observable (see aicircle.observables."
                           f"vocabulary), got {type(vocab).__name__}")
    return vocab


#: The columns a target file must have, in the order of docs/design.md §3.
COLUMNS = ("id", "observable", "start", "end", "aggregation", "value", "unit", "sigma",
           "source", "quote")

#: The units a target may be given in.
UNITS = ("$B", "$B/Year", "GW", "million", "fraction")

#: The aggregations, each with what it applies to.
AGGREGATIONS = MappingProxyType({
    "total": "a flow integrated over the window, in $B",
    "mean": "a flow's mean rate over the window, in $B/Year",
    "level": "a level's value (or a flow's rate) at the end of the window",
    "growth": "a flow's total over the window / its total a year earlier - 1, a fraction",
    "share": "the mean over the window of a fraction observable",
})

#: For a log-scale target, predictions below ``LOG_FLOOR * value`` (zero and
#: negative ones included) get the tangent of ln at that floor instead of ln,
#: so :func:`residuals` stays finite, continuous and monotone in the prediction.
LOG_FLOOR = 1e-3

#: The residual given to a prediction that is NaN or infinite (a run that blew
#: up): large, finite, so that ``scipy.optimize.least_squares`` can go on.
NONFINITE_RESIDUAL = 1e4

_FLOW_AGGREGATIONS = ("total", "mean", "growth")
_BARE_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SEPARATORS = re.compile(r"[\s_]+")


# --------------------------------------------------------------------------- names

def observable_id(name: str) -> str:
    """The observable id a model variable name stands for.

    Lower-cases the name and reads runs of spaces and underscores as one
    ``_`` (Vensim's rule), after stripping surrounding white space.

    Parameters
    ----------
    name : str
        A variable name as written in a model file.

    Returns
    -------
    str
        E.g. ``"lab_revenue"`` for ``"Lab Revenue"`` or ``"lab__ revenue"``.
    """
    if not isinstance(name, str):
        raise InvalidInput(f"a variable name must be a string, got {name!r}")
    return _SEPARATORS.sub("_", name.strip()).lower()


def find_observables(variable_names: Sequence[str], vocabulary: Mapping[str, Observable]) -> dict[str, str]:
    """The observables of a vocabulary that a model defines.

    Parameters
    ----------
    variable_names : sequence of str
        The model's variable names (``model.variables``, or the columns of a
        simulation result).
    vocabulary : mapping of str to Observable
        The observables looked for (:func:`vocabulary`); only its ids are read.

    Returns
    -------
    dict
        Observable id -> the variable name as given, for every observable of
        ``vocabulary`` among the names, in the order of the names.

    Raises
    ------
    InvalidInput
        If two names stand for the same observable.
    """
    found: dict[str, str] = {}
    for name in variable_names:
        oid = observable_id(name)
        if oid in vocabulary:
            if oid in found:
                raise InvalidInput(
                    f"variables {found[oid]!r} and {name!r} both stand for observable {oid!r}")
            found[oid] = name
    return found


# --------------------------------------------------------------------------- time

def model_time(when: date | datetime | pd.Timestamp | str) -> float:
    """Model time of a calendar date, in years.

    ``t(D) = year + (day of year - 1) / days in that year``, so 2025-01-01 is
    2025.0 and 2025-07-02 is 2025 + 182/365. A time of day is ignored.

    Parameters
    ----------
    when : datetime.date, datetime.datetime, pandas.Timestamp or str
        The date; a string must be ISO ``YYYY-MM-DD``.

    Returns
    -------
    float
        Years.
    """
    if isinstance(when, str):
        try:
            when = _parse_date(when)
        except ValueError as err:
            raise InvalidInput(f"when: {err}") from err
    if isinstance(when, datetime):  # pandas.Timestamp is a datetime
        when = when.date()
    if not isinstance(when, date):
        raise InvalidInput(f"not a date: {when!r}")
    year_days = 366 if calendar.isleap(when.year) else 365
    return when.year + (when.timetuple().tm_yday - 1) / year_days


def _parse_date(text: str) -> date:
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not an ISO date YYYY-MM-DD")
    return date.fromisoformat(text)  # raises ValueError for 2025-02-30


# --------------------------------------------------------------------------- target files

def expected_unit(observable: str, aggregation: str, vocabulary: Mapping[str, Observable]) -> str:
    """The unit a target's value is in, for an observable of ``vocabulary`` and an aggregation.

    ``$B`` for ``total``; ``$B/Year`` for ``mean`` and a flow's ``level``; the
    observable's own unit for a level's ``level``; ``fraction`` for ``growth``
    and ``share``.
    """
    vocabulary = _check_vocabulary(vocabulary)
    if not isinstance(observable, str) or observable not in vocabulary:
        raise UnknownName(f"unknown observable {observable!r}; known: {', '.join(vocabulary)}")
    if not isinstance(aggregation, str) or aggregation not in AGGREGATIONS:
        raise UnknownName(f"unknown aggregation {aggregation!r}; known: {', '.join(AGGREGATIONS)}")
    if aggregation == "total":
        return "$B"
    if aggregation == "mean":
        return "$B/Year"
    if aggregation in ("growth", "share"):
        return "fraction"
    return vocabulary[observable].unit


def _error_scale(observable: Observable, aggregation: str) -> str:
    """``"abs"`` for growth, share and fraction observables, else ``"log"``."""
    if aggregation in ("growth", "share") or observable.unit == "fraction":
        return "abs"
    return "log"


#: A calibration target is a published figure: thousands at most. Refused above this size before
#: reading (a million rows took 70 s and 3.6 GB, and the calibration would run for days).
MAX_TARGET_FILE_BYTES = 16 * 2**20


def read_targets(path: str | Path, vocabulary: Mapping[str, Observable]) -> pd.DataFrame:
    """Read and validate a target file (docs/design.md §3).

    Parameters
    ----------
    path : str or pathlib.Path
        A UTF-8 CSV file with the columns :data:`COLUMNS` (extra columns are
        ignored).
    vocabulary : mapping of str to Observable
        The observables a target may name (:func:`vocabulary`).

    Returns
    -------
    pandas.DataFrame
        One row per target, in file order, with the columns :data:`COLUMNS`
        (``observable`` as its canonical id, ``start``/``end`` as Timestamps,
        ``value``/``sigma`` as floats) and three derived ones: ``scale``
        (``"log"`` or ``"abs"``: how errors are measured), ``t_start`` and
        ``t_end`` (the window ``[t_start, t_end)`` in model years;
        ``t_end = t(end + 1 day)``).

    Raises
    ------
    TargetFileError
        If the file is missing, unreadable or not a CSV text file; if columns
        are missing or a row has the wrong number of fields; if it has no
        rows; or if a cell is bad: an empty or bare-number or duplicate id, an
        unknown observable or aggregation, an aggregation that does not fit
        the observable (``total``/``mean``/``growth`` need a flow, ``share`` a
        fraction), a unit not in :data:`UNITS` or not the one the observable
        and aggregation imply, a malformed date, start after end, a value or
        sigma that is not a finite number, sigma <= 0, a log-scale value
        <= 0, a growth <= -1, or a fraction outside [0, 1]. The message names
        the file, the data row (1-based, blank lines not counted, with its
        line in the file) and the column.
    """
    if not isinstance(path, (str, Path)) and not hasattr(path, "__fspath__"):
        raise TargetFileError(f"path of the target file must be a file name, got {path!r}")
    vocabulary = _check_vocabulary(vocabulary)
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size > MAX_TARGET_FILE_BYTES:  # checked before reading: a target file is a few hundred rows
        raise TargetFileError(f"target file {path}: {size / 2**20:.0f} MiB is far more than a target file "
                              f"holds (at most {MAX_TARGET_FILE_BYTES // 2**20} MiB)")
    # bounded by the bytes read: a device or /proc file (/dev/zero) says 0 in st_size
    raw = read_capped(path, MAX_TARGET_FILE_BYTES, f"target file {path}", error=TargetFileError)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise TargetFileError(f"target file {path}: not a CSV text file (not UTF-8)") from err
    if "\x00" in text:
        raise TargetFileError(f"target file {path}: not a CSV text file (binary content)")

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        records = [(reader.line_num, rec) for rec in reader]
    except csv.Error as err:
        raise TargetFileError(f"target file {path}: not a valid CSV file, line {reader.line_num}: {err}") from err
    records = [(line, rec) for line, rec in records if any(cell.strip() for cell in rec)]
    if not records:
        raise TargetFileError(f"target file {path}: empty file (expected the header "
                              f"{','.join(COLUMNS)} and at least one row)")

    header_line, header = records[0]
    header = [cell.strip() for cell in header]
    seen: set[str] = set()
    for name in header:
        if name in seen and name in COLUMNS:
            raise TargetFileError(f"target file {path}: header (line {header_line}), "
                                  f"column {name!r}: appears twice")
        seen.add(name)
    missing = [c for c in COLUMNS if c not in seen]
    if missing:
        raise TargetFileError(
            f"target file {path}: header (line {header_line}): missing column(s) "
            + ", ".join(repr(c) for c in missing) + f"; a target file has {','.join(COLUMNS)}")
    if len(records) == 1:
        raise TargetFileError(f"target file {path}: no data rows (only the header)")

    position = {name: header.index(name) for name in COLUMNS}
    rows = []
    first_row_of_id: dict[str, int] = {}
    for number, (line, rec) in enumerate(records[1:], start=1):
        where = f"target file {path}: row {number} (line {line})"
        if len(rec) != len(header):
            raise TargetFileError(f"{where}: has {len(rec)} fields, the header has {len(header)}")
        cells = {name: rec[i].strip() for name, i in position.items()}
        row = _validate_row(cells, where, vocabulary)
        if row["id"] in first_row_of_id:
            raise TargetFileError(f"{where}, column 'id': duplicate id {row['id']!r} "
                                  f"(first at row {first_row_of_id[row['id']]})")
        first_row_of_id[row["id"]] = number
        rows.append(row)

    frame = pd.DataFrame(rows, columns=[*COLUMNS, "scale", "t_start", "t_end"])
    frame["start"] = pd.to_datetime(frame["start"])
    frame["end"] = pd.to_datetime(frame["end"])
    return frame


def _validate_row(cells: dict[str, str], where: str, vocabulary: Mapping[str, Observable]) -> dict:
    def bad(column: str, problem: str) -> TargetFileError:
        return TargetFileError(f"{where}, column {column!r}: {problem}")

    tid = cells["id"]
    if not tid:
        raise bad("id", "the id is empty")
    if _BARE_NUMBER.fullmatch(tid):
        raise bad("id", f"id {tid!r} is a bare number; use a name such as 'oai_rev_2024'")

    obs = observable_id(cells["observable"])
    if obs not in vocabulary:
        raise bad("observable", f"unknown observable {cells['observable']!r}; known: "
                  + ", ".join(vocabulary))
    kind = vocabulary[obs].kind

    dates = {}
    for column in ("start", "end"):
        try:
            dates[column] = _parse_date(cells[column])
        except ValueError as err:
            raise bad(column, f"malformed date {cells[column]!r} (expected an ISO date YYYY-MM-DD)") from err
    if dates["start"] > dates["end"]:
        raise TargetFileError(f"{where}, columns 'start' and 'end': start {dates['start']} "
                              f"is after end {dates['end']}")
    try:
        stop = dates["end"] + timedelta(days=1)
    except OverflowError as err:
        raise bad("end", f"date {dates['end']} is too late") from err

    agg = cells["aggregation"]
    if agg not in AGGREGATIONS:
        raise bad("aggregation", f"unknown aggregation {agg!r}; one of " + ", ".join(AGGREGATIONS))
    if agg in _FLOW_AGGREGATIONS and kind != "flow":
        raise bad("aggregation", f"aggregation {agg!r} applies to flows only; {obs!r} is a {kind}")
    if agg == "share" and vocabulary[obs].unit != "fraction":
        raise bad("aggregation", f"aggregation 'share' applies to fraction observables only; "
                  f"{obs!r} is in {vocabulary[obs].unit}")

    unit = cells["unit"]
    if unit not in UNITS:
        raise bad("unit", f"unknown unit {unit!r}; one of " + ", ".join(UNITS))
    want = expected_unit(obs, agg, vocabulary)
    if unit != want:
        raise bad("unit", f"unit {unit!r} does not match: {obs} with aggregation {agg!r} is in {want!r}")

    numbers = {}
    for column in ("value", "sigma"):
        try:
            numbers[column] = float(cells[column])
        except ValueError as err:
            raise bad(column, f"{column} {cells[column]!r} is not a number") from err
        if not math.isfinite(numbers[column]):
            raise bad(column, f"{column} {cells[column]!r} is not a finite number")
    value, sigma = numbers["value"], numbers["sigma"]
    scale = _error_scale(vocabulary[obs], agg)
    if scale == "log" and value <= 0:
        raise bad("value", f"value {value:g} must be > 0: {obs} {agg} is compared on a log scale")
    if agg == "growth" and value <= -1:
        raise bad("value", f"growth {value:g} must be > -1 (a fraction: -0.1 is a 10% fall)")
    if want == "fraction" and agg != "growth" and not 0 <= value <= 1:
        raise bad("value", f"value {value:g} is not a fraction in [0, 1] (write 0.30, not 30)")
    if sigma <= 0:
        raise bad("sigma", f"sigma {sigma:g} must be > 0")

    return {
        "id": tid, "observable": obs, "start": dates["start"], "end": dates["end"],
        "aggregation": agg, "value": value, "unit": unit, "sigma": sigma,
        "source": cells["source"], "quote": cells["quote"], "scale": scale,
        "t_start": model_time(dates["start"]), "t_end": model_time(stop),
    }


def index_at(times: np.ndarray, t: float) -> int:
    """Index of the last saved time <= ``t``; ``t`` must lie inside the run (else InvalidInput)."""
    try:
        t = float(t)
    except (TypeError, ValueError):
        raise InvalidInput(f"horizon must be a time, got {t!r}") from None
    if not t >= times[0] - 1e-9 or t > times[-1] + 1e-9:
        raise InvalidInput(f"horizon {t:g} is outside the run ({times[0]:g} to {times[-1]:g})")
    return int(np.clip(np.searchsorted(times, t + 1e-9, side="right") - 1, 0, len(times) - 1))


def windows_extent(targets: pd.DataFrame) -> tuple[float, float]:
    """The span of model time the targets need.

    Parameters
    ----------
    targets : pandas.DataFrame
        As returned by :func:`read_targets`.

    Returns
    -------
    (float, float)
        The earliest and the latest model time (years) any target reads,
        including the year-earlier window of a ``growth`` target. A run must
        start at or before the first and end at or after the second.
    """
    _require_windows(targets)
    if len(targets) == 0:
        raise InvalidInput("no targets")
    earliest = targets["t_start"] - np.where(targets["aggregation"] == "growth", 1.0, 0.0)
    return float(earliest.min()), float(targets["t_end"].max())


def _require_windows(targets: pd.DataFrame) -> None:
    needed = {"id", "observable", "aggregation", "value", "sigma", "scale", "t_start", "t_end"}
    if not isinstance(targets, pd.DataFrame) or not needed <= set(targets.columns):
        raise InvalidInput("targets must be the DataFrame read_targets() returns")


# --------------------------------------------------------------------------- observation

def observe(targets: pd.DataFrame, time: np.ndarray, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Predict every target from a simulated run (or a batch of runs).

    Parameters
    ----------
    targets : pandas.DataFrame, n_targets rows
        As returned by :func:`read_targets`.
    time : ndarray, shape (n_times,)
        The integration grid in model years, strictly increasing (uniform at
        TIME STEP for an Euler run), starting at or before and ending at or
        after :func:`windows_extent`. Pass the run saved at every step, not at
        SAVEPER: integrals are taken on this grid.
    values : mapping of str to ndarray, each shape (n_times,) or (n_sets, n_times)
        Model variable name -> its value at each grid time (a flow as its rate
        in $B/Year). Names are matched to observables by
        :func:`observable_id`; a DataFrame or an ``xarray.Dataset`` will do.
        1-D arrays are broadcast across the sets of 2-D ones.

    Returns
    -------
    ndarray, shape (n_targets,) or (n_sets, n_targets)
        The predictions, in each target's unit; 2-D if any value is 2-D.

    Notes
    -----
    Flows follow Vensim's Euler semantics: the rate at grid time ``t_k`` holds
    over ``[t_k, t_k+1)``. So

    - ``total`` = sum over steps of rate x (length of the step's overlap with
      the window) -- edge steps pro-rated;
    - ``mean`` and ``share`` = that integral / window length (years);
    - ``growth`` = total over the window / total over the window shifted back
      by exactly 1.0 year - 1 (NaN where that earlier total is 0);
    - ``level`` = the variable at ``t_end``, interpolated linearly between grid
      points (for a flow, its annualised rate there).

    Raises
    ------
    InvalidInput
        If the grid is not strictly increasing, does not cover a window, or an
        array has the wrong shape.
    UnknownName
        If a target's observable is not among ``values``.
    """
    _require_windows(targets)
    t = _check_grid(time)
    names = find_observables(list(values.keys()), dict.fromkeys(targets["observable"]))

    series: dict[str, np.ndarray] = {}
    n_sets = None
    for obs in dict.fromkeys(targets["observable"]):
        if obs not in names:
            first = targets.loc[targets["observable"] == obs, "id"].iloc[0]
            raise UnknownName(f"target {first!r} needs observable {obs!r}, but no variable among "
                              f"the values given stands for it (a variable named like "
                              f"{obs.replace('_', ' ').title()!r})")
        array = np.asarray(values[names[obs]], dtype=float)
        if array.ndim not in (1, 2) or array.shape[-1] != t.size:
            raise InvalidInput(f"variable {names[obs]!r} has shape {array.shape}; expected "
                               f"({t.size},) or (n_sets, {t.size}) to match the time grid")
        if array.ndim == 2:
            if n_sets is not None and array.shape[0] != n_sets:
                raise InvalidInput(f"variable {names[obs]!r} has {array.shape[0]} sets, "
                                   f"another has {n_sets}")
            n_sets = array.shape[0]
        series[obs] = array

    lead = () if n_sets is None else (n_sets,)
    predicted = np.empty(lead + (len(targets),))
    cumulative: dict[str, np.ndarray] = {}
    tolerance = 1e-6 * float(np.min(np.diff(t)))  # float round-off on grids built by addition
    for j, row in enumerate(targets[["id", "observable", "aggregation", "t_start", "t_end"]]
                            .itertuples(index=False)):
        tid, obs, agg, a, b = row
        lo = a - 1.0 if agg == "growth" else (b if agg == "level" else a)
        if lo < t[0] - tolerance or b > t[-1] + tolerance:
            needed = f"[{lo:.4f}, {b:.4f}]" + (" (growth reads the year before too)" if agg == "growth" else "")
            raise InvalidInput(f"the time grid [{t[0]:.4f}, {t[-1]:.4f}] does not cover target "
                               f"{tid!r}, which needs {needed}; extend the run to windows_extent(targets)")
        x = series[obs]
        if agg == "level":
            predicted[..., j] = _interpolate(t, x, b)
            continue
        if obs not in cumulative:
            cumulative[obs] = _euler_cumulative(t, x)
        c = cumulative[obs]
        total = _interpolate(t, c, b) - _interpolate(t, c, a)
        if agg == "total":
            predicted[..., j] = total
        elif agg in ("mean", "share"):
            predicted[..., j] = total / (b - a)
        else:  # growth
            before = _interpolate(t, c, b - 1.0) - _interpolate(t, c, a - 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                predicted[..., j] = np.where(before != 0, total / np.where(before != 0, before, 1.0) - 1, np.nan)
    return predicted


def _check_grid(time: np.ndarray) -> np.ndarray:
    t = np.asarray(time, dtype=float)
    if t.ndim != 1 or t.size < 2:
        raise InvalidInput(f"the time grid must be 1-D with at least 2 points, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise InvalidInput("the time grid holds NaN or infinite times")
    if not np.all(np.diff(t) > 0):
        raise InvalidInput("the time grid must be strictly increasing")
    return t


def _euler_cumulative(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """C[..., k] = integral of the Euler flow from t[0] to t[k], shape of x."""
    steps = x[..., :-1] * np.diff(t)
    c = np.zeros_like(x)
    np.cumsum(steps, axis=-1, out=c[..., 1:])
    return c


def _interpolate(t: np.ndarray, y: np.ndarray, s: float) -> np.ndarray | float:
    """y linearly interpolated at time s (clipped to the grid), shape y.shape[:-1]."""
    s = min(max(s, t[0]), t[-1])
    k = int(np.searchsorted(t, s, side="right")) - 1
    k = min(max(k, 0), t.size - 2)
    fraction = (s - t[k]) / (t[k + 1] - t[k])
    if fraction == 0.0:
        return y[..., k]
    if fraction == 1.0:
        return y[..., k + 1]
    return y[..., k] + fraction * (y[..., k + 1] - y[..., k])


# --------------------------------------------------------------------------- errors

def _check_predicted(targets: pd.DataFrame, predicted: np.ndarray) -> np.ndarray:
    _require_windows(targets)
    try:
        p = np.asarray(predicted, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInput(f"predicted must be numbers, one per target; got {predicted!r}") from None
    if p.ndim not in (1, 2) or p.shape[-1] != len(targets):
        raise InvalidInput(f"predicted has shape {p.shape}; expected ({len(targets)},) or "
                           f"(n_sets, {len(targets)}), one per target")
    return p


def residuals(targets: pd.DataFrame, predicted: np.ndarray) -> np.ndarray:
    """The calibration residual vector: each target's error over its sigma.

    Parameters
    ----------
    targets : pandas.DataFrame, n_targets rows
        As returned by :func:`read_targets`.
    predicted : ndarray, shape (n_targets,) or (n_sets, n_targets)
        As returned by :func:`observe`.

    Returns
    -------
    ndarray, same shape as ``predicted``
        Always finite. ``abs`` targets: ``(predicted - value) / sigma``.
        ``log`` targets: ``ln(predicted / value) / sigma`` for predictions at
        or above ``LOG_FLOOR * value``; below it (zero and negative included)
        the tangent of ln at that floor, ``(ln(LOG_FLOOR) + (predicted - floor)
        / floor) / sigma``, which is continuous, keeps falling as the
        prediction does and so points an optimiser back. A NaN or infinite
        prediction gets ``NONFINITE_RESIDUAL``.
    """
    p = _check_predicted(targets, predicted)
    value = targets["value"].to_numpy(dtype=float)
    sigma = targets["sigma"].to_numpy(dtype=float)
    is_log = (targets["scale"] == "log").to_numpy()
    floor = LOG_FLOOR * value
    finite = np.isfinite(p)
    safe = np.where(finite, p, value)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_error = np.where(safe >= floor, np.log(np.maximum(safe, floor) / value),
                             math.log(LOG_FLOOR) + (safe - floor) / floor)
    error = np.where(is_log, log_error, safe - value)
    return np.where(finite, error / sigma, NONFINITE_RESIDUAL)


def errors(targets: pd.DataFrame, predicted: np.ndarray) -> pd.DataFrame:
    """A table of each target, its prediction and its error, for one run.

    Parameters
    ----------
    targets : pandas.DataFrame, n_targets rows
        As returned by :func:`read_targets`.
    predicted : ndarray, shape (n_targets,)
        As returned by :func:`observe` for one run.

    Returns
    -------
    pandas.DataFrame
        Index as ``targets``; columns ``id``, ``observable``, ``aggregation``,
        ``unit``, ``value``, ``sigma``, ``predicted``, ``log_error``
        (``ln(predicted / value)`` for positive amounts; NaN for ``abs``
        targets and where predicted <= 0 or is not finite), ``abs_error``
        (``predicted - value`` for growth, share and fraction observables; NaN
        otherwise) and ``residual`` (:func:`residuals`).
    """
    p = _check_predicted(targets, predicted)
    if p.ndim != 1:
        raise InvalidInput("errors() takes the predictions of one run, shape (n_targets,); "
                           "use residuals() for a batch")
    value = targets["value"].to_numpy(dtype=float)
    is_log = (targets["scale"] == "log").to_numpy()
    finite = np.isfinite(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_error = np.where(is_log & finite & (p > 0), np.log(np.where(p > 0, p, 1.0) / value), np.nan)
    abs_error = np.where(~is_log & finite, p - value, np.nan)
    table = targets[["id", "observable", "aggregation", "unit", "value", "sigma"]].copy()
    table["predicted"] = p
    table["log_error"] = log_error
    table["abs_error"] = abs_error
    table["residual"] = residuals(targets, p)
    return table


@dataclass(frozen=True)
class Payoff:
    """How well a run fits its targets.

    Attributes
    ----------
    chi2 : float or ndarray, shape (n_sets,)
        Sum of squared residuals (:func:`residuals`).
    n_targets : int
        Number of targets.
    within_2sigma : float or ndarray, shape (n_sets,)
        Share of targets with ``|residual| <= 2`` and a defined error.
    n_undefined : int or ndarray, shape (n_sets,)
        Targets whose error is undefined: a log-scale prediction <= 0 or a
        prediction that is not finite (they carry a penalty in ``chi2``).
    """

    chi2: float | np.ndarray
    n_targets: int
    within_2sigma: float | np.ndarray
    n_undefined: int | np.ndarray

    def __str__(self) -> str:
        if np.ndim(self.chi2) == 0:
            return (f"chi2 = {self.chi2:.4g} over {self.n_targets} targets; "
                    f"{100 * self.within_2sigma:.0f}% within 2 sigma; {self.n_undefined} undefined")
        return (f"chi2 over {self.n_targets} targets for {np.size(self.chi2)} sets: "
                f"min {np.min(self.chi2):.4g}, median {np.median(self.chi2):.4g}")


def payoff(targets: pd.DataFrame, predicted: np.ndarray) -> Payoff:
    """Summarise a fit: chi-squared and the share of targets within 2 sigma.

    Parameters
    ----------
    targets : pandas.DataFrame, n_targets rows
        As returned by :func:`read_targets`.
    predicted : ndarray, shape (n_targets,) or (n_sets, n_targets)
        As returned by :func:`observe`.

    Returns
    -------
    Payoff
        Scalars for one run, arrays of shape (n_sets,) for a batch.
    """
    p = _check_predicted(targets, predicted)
    r = residuals(targets, p)
    is_log = (targets["scale"] == "log").to_numpy()
    undefined = ~np.isfinite(p) | (is_log & (p <= 0))
    inside = (np.abs(r) <= 2) & ~undefined
    chi2 = np.sum(r * r, axis=-1)
    share = np.mean(inside, axis=-1)
    count = np.sum(undefined, axis=-1)
    if p.ndim == 1:
        return Payoff(float(chi2), len(targets), float(share), int(count))
    return Payoff(chi2, len(targets), share, count)

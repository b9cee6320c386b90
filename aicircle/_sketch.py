"""Read the sketch (the diagram) of a Vensim ``.mdl`` file.

A ``.mdl`` file ends with its sketch: after a line starting with
``\\\\\\---/// Sketch information``, one block per view, up to the line
``///---\\\\\\`` (settings follow it). A view starts with ``*Name`` and a
``$...`` line of display settings; each object is one comma-separated line
whose first field is its kind::

    10,id,name,x,y,w,h,shape,bits,...    a variable (a box when it is a level)
    11,id,_,x,y,w,h,shape,bits,...       a flow's valve
    12,id,text,x,y,w,h,shape,bits,...    a cloud (text "48") or a comment
    1,id,from,to,shape,...,np|(x,y)|     an arrow: an information link, or a flow pipe

``x, y`` are the object's centre and ``w, h`` half its width and height, in
screen pixels (y grows downwards). Ids are per view. A variable whose ``bits``
lack bit 0 is a shadow (Vensim's alias of a variable placed elsewhere); one
whose ``shape`` has bit 5 (32) is the name of the valve just before it. A
comment whose ``bits`` have bit 2 (4) keeps its text on the next line. An
arrow whose ``shape`` has bit 2 (4) is a flow pipe from a valve: towards the
stock or cloud the flow empties into (Vensim writes shape 4), or, with bit 6
(64) too (Vensim writes 100), towards the one it drains. An information
arrow's point is a handle the arc passes through; ``(0,0)`` means straight.

This is a pure parser: it reads numbers and names and nothing else, never
evaluates anything, and skips what it does not understand (an unknown kind, a
missing field, a number that is not a plain decimal of at most nine integer
digits, a repeated id) instead of failing, so that a broken diagram never
stops a model from loading or exporting.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Arrow", "Element", "View", "parse_sketch", "read_sketch"]

_START = "\\\\\\---///"  # \\\---/// opens the sketch and separates its views
_END = "///---\\\\\\"  # ///---\\\ closes it
_NUMBER = re.compile(r"-?\d{1,9}(?:\.\d{1,9})?")  # plain decimals only: no exponent, inf or nan
_ID = re.compile(r"\d{1,9}")
_POINT = re.compile(r"\|\((-?\d{1,9}(?:\.\d{1,9})?),(-?\d{1,9}(?:\.\d{1,9})?)\)")
_KINDS = {"10": "variable", "11": "valve", "12": "cloud"}


@dataclass(frozen=True)
class Element:
    """A variable, valve, cloud or comment of a view.

    ``x, y`` are its centre and ``width, height`` its full size, in pixels;
    ``name`` is a variable's name as the sketch writes it (empty otherwise);
    ``valve`` is the id of the valve a flow's name is attached to.
    """

    kind: str  # "variable", "valve", "cloud" or "comment"
    id: int
    name: str
    x: float
    y: float
    width: float
    height: float
    shadow: bool = False
    valve: int | None = None


@dataclass(frozen=True)
class Arrow:
    """An arrow between two objects of a view (ids), a flow pipe or an information link.

    For a pipe, ``drains`` tells that ``target`` is what the flow drains (its
    source) rather than what it fills. ``handle`` is the point an information
    link's arc passes through, or None for a straight link.
    """

    id: int
    source: int
    target: int
    pipe: bool
    drains: bool
    handle: tuple[float, float] | None


@dataclass(frozen=True)
class View:
    """One view of the sketch: its objects and arrows in file order."""

    name: str
    elements: tuple[Element, ...]
    arrows: tuple[Arrow, ...]


def read_sketch(path) -> list[View]:
    """The views of the ``.mdl`` file at ``path`` (see :func:`parse_sketch`).

    The file is read as UTF-8, an undecodable byte becoming U+FFFD (the names
    it spoils then match no variable).
    """
    return parse_sketch(Path(path).read_text(encoding="utf-8", errors="replace"))


def parse_sketch(text: str) -> list[View]:
    """The views of the sketch in the text of a ``.mdl`` file, in file order.

    Parameters
    ----------
    text : str
        The whole ``.mdl`` file; the equations before the sketch are ignored.

    Returns
    -------
    list of View
        Views with at least one object; empty when the file has no sketch.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith(_START)), None)
    if start is None:
        return []
    views: list[View] = []
    builder = None
    skip_text = False
    for line in lines[start + 1:]:
        if skip_text:  # a comment's text: whatever it says, it is not an object
            skip_text = False
            continue
        if line.startswith(_END):
            break
        if line.startswith("*"):
            if builder is not None:
                views.append(builder.view())
            builder = _ViewBuilder(line[1:].strip() or f"View {len(views) + 1}")
            continue
        fields = _fields(line)
        if not fields or fields[0] not in ("1", "10", "11", "12"):
            continue  # view settings ($...), V300 headers, separators, unknown kinds
        if builder is None:  # objects before any *Name: a view all the same
            builder = _ViewBuilder(f"View {len(views) + 1}")
        skip_text = builder.add(fields)
    if builder is not None:
        views.append(builder.view())
    return [v for v in views if v.elements]


def _fields(line: str) -> list[str]:
    """The comma-separated fields of a line (a name in double quotes may hold commas)."""
    try:
        return next(csv.reader([line], skipinitialspace=False))
    except (csv.Error, StopIteration):
        return []


def _number(text: str) -> float | None:
    return float(text) if _NUMBER.fullmatch(text.strip()) else None


def _int(text: str) -> int | None:
    return int(text) if _ID.fullmatch(text.strip()) else None


class _ViewBuilder:
    """Collect one view's objects line by line, skipping what cannot be read."""

    def __init__(self, name: str):
        self.name = name
        self.elements: dict[int, Element] = {}
        self.arrows: dict[int, Arrow] = {}
        self.open_valve: int | None = None  # the last valve, until a name is attached to it

    def view(self) -> View:
        return View(self.name, tuple(self.elements.values()), tuple(self.arrows.values()))

    def add(self, fields: list[str]) -> bool:
        """Read one object line; True when the next line is a comment's text."""
        if fields[0] == "1":
            self._arrow(fields)
            return False
        if len(fields) < 9:
            return False
        ident, shape, bits = _int(fields[1]), _int(fields[7]), _int(fields[8])
        x, y, half_w, half_h = (_number(f) for f in fields[3:7])
        text_follows = fields[0] == "12" and bits is not None and bool(bits & 4)
        if None in (ident, shape, bits, x, y, half_w, half_h) or ident in self.elements:
            return text_follows
        kind = _KINDS[fields[0]]
        name, valve = "", None
        if kind == "cloud" and (text_follows or fields[2].strip() != "48"):
            kind = "comment"
        elif kind == "variable":
            name = " ".join(fields[2].split())
            if not name:
                return False
            if shape & 32 and self.open_valve is not None:
                valve, self.open_valve = self.open_valve, None
        self.elements[ident] = Element(kind, ident, name, x, y, 2 * abs(half_w), 2 * abs(half_h),
                                       shadow=kind == "variable" and not bits & 1, valve=valve)
        self.open_valve = ident if kind == "valve" else None
        return text_follows

    def _arrow(self, fields: list[str]) -> None:
        if len(fields) < 5:
            return
        ident, source, target, shape = (_int(f) for f in fields[1:5])
        if None in (ident, source, target, shape) or ident in self.arrows:
            return
        match = _POINT.search(",".join(fields[5:]))
        handle = None
        if match and (float(match.group(1)), float(match.group(2))) != (0.0, 0.0):
            handle = (float(match.group(1)), float(match.group(2)))
        self.arrows[ident] = Arrow(ident, source, target, pipe=bool(shape & 4),
                                   drains=bool(shape & 4) and bool(shape & 64), handle=handle)

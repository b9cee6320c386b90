"""Export a Vensim model to XMILE 1.0.

:func:`export_xmile` reads a ``.mdl`` file with PySD's Vensim translator
(writing nothing), walks PySD's AbstractModel and writes the same model as a
standard XMILE 1.0 file (namespace ``http://docs.oasis-open.org/xmile/ns/XMILE/v1.0``)
for Stella and other XMILE tools. The output is deterministic: the same model
gives the same bytes, so a checked-in export can be tested for staleness.

What the export preserves
-------------------------
Every variable keeps its name (Vensim's optional surrounding quotes dropped:
``"$ euro"`` becomes ``$ euro``), units, documentation and range (``<range
min= max=>``; a missing bound is written as ``INF``/``-INF``; Vensim's range
increment is dropped), in the order of the model file. Equations refer to
names with spaces written as underscores, quoted (``"..."``) when the name is
not a plain identifier or starts with ``not`` (which PySD's grammar would read
as the operator). Operators keep the grouping of PySD's tree: an operand is
parenthesised unless it binds more tightly, and Vensim's flat ``a :OR: b
:AND: c`` stays flat (``a OR b AND c``), which PySD reads back as the same tree.
Reading the export back with PySD's XMILE translator (``pysd.read_xmile`` or
:func:`aicircle.load`) gives the same runs as the ``.mdl``; the tests check it
on every peer model that exports. Vensim's unchangeable constants (``==``)
become ordinary auxiliaries.

Element kinds
-------------
- ``INTEG(rate, init)`` becomes a ``<stock>`` whose ``<eqn>`` is ``init``. The
  rate is read as a signed sum of terms (``a - (b - c)`` is ``+a -b +c``). A
  term that is a plain reference to an auxiliary, used once, becomes that
  auxiliary as a ``<flow>`` and an ``<inflow>`` (``+``) or ``<outflow>`` (``-``)
  of the stock, unless the auxiliary is already an inflow (an outflow) of an
  earlier stock in the file: an XMILE flow leaves at most one stock and fills
  at most one. The other terms are written as one generated flow, an inflow
  named ``"<stock> other flows"`` (e.g. ``0.1 * Savings``); if no term can be a
  flow, the whole rate becomes the generated inflow ``"<stock> net flow"``
  (names made unique if needed). These generated flows are the only names the
  export adds to the model's variables; PySD reads the stock's rate back as
  inflows minus outflows, the same sum in another order.
- Lookup tables become ``<gf>`` elements (explicit ``<xpts>``/``<ypts>``,
  ``<yscale>`` from the table's y range, ``type="extrapolate"`` or
  ``type="discrete"`` for Vensim's extrapolating and hold-backward tables) and
  are called as functions, ``table(x)``. ``WITH LOOKUP`` as a whole equation
  becomes an ``<aux>`` with an embedded ``<gf>``; nested inside an expression it
  becomes a generated ``<gf>`` named ``"<variable> lookup"``, called there.
- Everything else is an ``<aux>``. The time settings become ``<sim_specs>``
  (``method="Euler"``, ``time_units`` from the control variables' units);
  SAVEPER, when it differs from TIME STEP, is written as the ``isee:save_interval``
  attribute (PySD's XMILE reader ignores it and saves every DT).

Diagram
-------
The ``.mdl`` sketch (read by :mod:`aicircle._sketch`, which never evaluates
anything and skips lines it cannot read) becomes ``<views>``: one ``<view
type="stock_flow">`` per Vensim view. XMILE and Vensim both place a stock,
flow or aux by its centre, so the sketch's coordinates are kept as they are
(pixels, y downwards); a stock keeps its box (``width``/``height``, twice
Vensim's half sizes), a flow sits at its valve with its name on the same
``label_side`` as in Vensim, and its ``<pts>`` run from what it drains to
what it fills, through the valve where the pipe bends, meeting a stock at its
edge and a cloud at its centre (Vensim's own pipe points are not kept: Vensim
writes them between the valve and the end; its bent pipes are drawn straight).
A stock or aux the sketch draws on a valve (where the sketch and the equations
disagree) sits at the valve, without the pipe. Information arrows become ``<connector>``s whose
``angle`` is the direction of Vensim's arc where it leaves its start
(degrees counterclockwise from 3 o'clock; the arc passes through Vensim's
handle). Names are the exported names. A shadow variable, or a second
placement, becomes an ``<alias>`` (``<of>`` the name) and links from it start
at ``<alias uid=.../>``. What is not an exported stock, flow or aux (comments,
clouds, Time, the time settings, lookup tables, variables of unknown names) is
left out with the links touching it; polarity, colours and fonts are dropped.
Every stock, flow and aux appears exactly once: one the sketch does not place
(all of them when there is no sketch; the generated flows always) goes on a
grid below the first view, in file order, without links, a flow with a short
pipe of its own.

Functions and rewrites
----------------------
Direct translations (XMILE name on the right): ``IF THEN ELSE`` → ``IF c THEN
a ELSE b``; ``:AND: :OR: :NOT:`` → ``AND OR NOT``; ``MIN MAX ABS EXP LN SQRT
SIN COS TAN ARCSIN ARCCOS ARCTAN``; ``XIDZ``/``ZIDZ`` → ``SAFEDIV(a, b, x)`` /
``SAFEDIV(a, b)``; ``STEP`` → ``STEP``; ``RAMP`` → ``RAMP(slope, start, end)``;
``SMOOTH``/``SMOOTHI`` → ``SMTH1``; ``SMOOTH3``/``SMOOTH3I`` → ``SMTH3``;
``SMOOTH N`` → ``SMTHN(input, time, n, init)``; ``DELAY1``/``DELAY1I`` →
``DELAY1``; ``DELAY3``/``DELAY3I`` → ``DELAY3``; ``DELAY N`` → ``DELAYN(input,
time, n, init)``; ``DELAY FIXED`` → ``DELAY(input, time, init)`` (PySD reads
both as the same fixed delay); ``TREND`` → ``TREND``; ``FORECAST`` →
``FORCST``; ``INITIAL`` → ``INIT``; ``POWER(a, b)`` → ``a ^ b``; ``PI`` → its
value. References to INITIAL TIME, FINAL TIME and TIME STEP keep those names
(``TIME_STEP`` ...), which PySD's XMILE reader defines from ``<sim_specs>``
(it knows none of XMILE's ``DT``, ``STARTTIME`` and ``STOPTIME``,
so a tool other than PySD may need those renamed).

Rewrites, each exact under PySD's (and aicircle's) semantics and under any
reading of XMILE's ``INT`` (floor or truncation):

- ``LOG(x, b)`` → ``LN(x) / LN(b)``.
- ``INTEGER(x)`` (truncation) → ``IF x >= 0 THEN INT(x) ELSE -INT(-x)``.
- ``QUANTUM(x, q)`` → ``IF q < 1e-06 THEN x ELSE q * TRUNC(x / q)`` and
  ``MODULO(x, m)`` → ``x - QUANTUM(x, m)``, with ``TRUNC`` the ``INTEGER``
  rewrite above (Vensim's and PySD's small-number convention, 1e-6).
- ``PULSE(start, width)`` → ``IF (start - 1e-06 <= TIME) AND (TIME < start +
  width) THEN 1 ELSE 0`` (XMILE's ``PULSE`` has another meaning).
- ``PULSE TRAIN(start, width, repeat, end)`` → ``IF (start <= TIME) AND (TIME
  < end) AND (((TIME - start + 1e-06) mod repeat) < width) THEN 1 ELSE 0``
  (a single ``PULSE`` when ``repeat`` is 0, as in PySD). ``mod`` is written
  in lower case, the only spelling PySD's grammar accepts; PySD evaluates it
  as ``x - repeat * INTEGER(x / repeat)`` rather than Python's ``%``: equal
  up to rounding for the positive arguments it sees here.

Arguments repeated by a rewrite are written (and evaluated) more than once.
STEP, RAMP and SAFEDIV keep Vensim's conventions as PySD implements them
(a step at ``TIME + DT/2 > start``, a ramp from ``TIME + 1e-6 > start``, a
divisor smaller than 1e-6 in magnitude counting as zero); an XMILE tool that
implements them literally differs when a start time is off the DT grid or a
divisor is tiny but not zero.

Not expressible (:class:`~aicircle.errors.UnsupportedFeature`, naming the
construct and the variable): subscripts, macros, data and GET functions,
``SAMPLE IF TRUE``, ``ACTIVE INITIAL``, ``GAME``, ``ALLOCATE ...``, random
functions, ``SINH``/``COSH``/``TANH`` (not XMILE 1.0 builtins), other Vensim
functions (``LOOKUP EXTRAPOLATE``, ``GET TIME VALUE``, ...), look-forward
lookups, time settings that are not constants, a reference to SAVEPER when it
differs from TIME STEP, names containing a double quote or a backslash (PySD's
XMILE reader cannot match their escaped form), and non-finite numbers.
"""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ._sketch import read_sketch
from .compiler import clean_name
from .errors import InvalidInput, ModelReadError, UnsupportedFeature
from .reader import fold_arithmetic, read  # aicircle's one reader: same checks and errors as ac.load

__all__ = ["export_xmile", "XMILE_NAMESPACE"]

XMILE_NAMESPACE = "http://docs.oasis-open.org/xmile/ns/XMILE/v1.0"
ISEE_NAMESPACE = "http://iseesystems.com/XMILE"
# Version of this exporter's output, written in <product>; bump it when the
# output changes (not tied to the package version, so that a checked-in export
# only goes stale when the model or the format changes).
FORMAT_VERSION = "2"
SMALL_VENSIM = 1e-6  # what Vensim and PySD treat as zero (PULSE, QUANTUM)

_CONTROL_KEYS = ("initial_time", "final_time", "time_step", "saveper")
# Vensim functions with an XMILE builtin of the same meaning and arity.
_DIRECT = {
    "min": ("MIN", 2), "max": ("MAX", 2), "abs": ("ABS", 1), "exp": ("EXP", 1),
    "ln": ("LN", 1), "sqrt": ("SQRT", 1), "sin": ("SIN", 1), "cos": ("COS", 1),
    "tan": ("TAN", 1), "arcsin": ("ARCSIN", 1), "arccos": ("ARCCOS", 1),
    "arctan": ("ARCTAN", 1), "step": ("STEP", 2),
}
_KEYWORDS = {"if", "then", "else", "and", "or", "not", "mod", "time"}
_IDENTIFIER = re.compile(r"[^\W\d]\w*")
_LOOKUP_TYPES = {"interpolate": None, "extrapolate": "extrapolate", "hold_backward": "discrete"}


def export_xmile(model_path, out_path=None) -> str:
    """Translate a Vensim ``.mdl`` model into an XMILE 1.0 document.

    Parameters
    ----------
    model_path : str or pathlib.Path
        The Vensim model. It is parsed with PySD's translator; nothing is
        written beside it.
    out_path : str or pathlib.Path, optional
        Where to write the XMILE file (UTF-8). The file is written to a
        temporary file in the same folder and then renamed over ``out_path``,
        so a reader never sees a partial file.

    Returns
    -------
    str
        The XMILE document.

    Raises
    ------
    ModelReadError
        ``model_path`` is missing, not a ``.mdl`` file, or not a model PySD
        can read.
    UnsupportedFeature
        The model uses a construct XMILE (or PySD's XMILE reader) cannot
        express exactly; the message names the construct and the variable.
    InvalidInput
        ``out_path`` is the model itself or its folder does not exist.

    Examples
    --------
    >>> text = export_xmile("models/aicircle.mdl", "models/aicircle.xmile")  # doctest: +SKIP
    """
    model_path = Path(model_path)
    if model_path.suffix.lower() != ".mdl":
        raise ModelReadError(f"{model_path}: export_xmile reads Vensim .mdl files, not '{model_path.suffix}'")
    if out_path is not None:
        out_path = Path(out_path)
        if out_path.exists() and model_path.exists() and out_path.resolve() == model_path.resolve():
            raise InvalidInput(f"out_path {out_path} is the model file itself")
        if not out_path.parent.is_dir():
            raise InvalidInput(f"out_path {out_path}: folder '{out_path.parent}' does not exist")
    abstract = read(model_path)
    text = _Exporter(abstract, model_path).document()
    if out_path is not None:
        _write_atomic(out_path, text)
    return text


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    from ._io import write_atomic

    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline="\n"))


def _fmt(value) -> str:
    """An XMILE literal for a finite number (integers without a decimal point)."""
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _builtin_names() -> set[str]:
    """Function names PySD's XMILE reader resolves as builtins (a lookup so named would be misread)."""
    from pysd.builders.python.python_functions import functionspace
    from pysd.translators.xmile.xmile_structures import structures

    return {k.lower() for k in structures} | {k.lower() for k in functionspace}


def _xmile_name(name: str) -> str:
    """The name as written in XMILE's ``name`` attribute: Vensim's quotes dropped."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1]
    return name


def _reference(name: str) -> str:
    """How an equation refers to the variable called ``name`` (an XMILE name)."""
    ident = name.replace(" ", "_")
    low = ident.lower()
    if _IDENTIFIER.fullmatch(ident) and low not in _KEYWORDS and not low.startswith("not"):
        return ident
    # PySD's grammar reads a name starting with "not" as the NOT operator
    return f'"{ident}"'


# Binding strength of what an emitted expression's text ends with at its top:
# an operand is parenthesised unless it binds more tightly than its operator
# (same strength is parenthesised too, so that the tree read back is the same).
_ATOM, _POW, _MUL, _MOD, _ADD, _NEG, _CMP, _NOT, _LOGIC, _IF = 10, 5, 3, 2.5, 2, 1.5, 1, 0.5, 0, -1
_LEVEL = {"^": _POW, "*": _MUL, "/": _MUL, "+": _ADD, "-": _ADD, "=": _CMP, "<>": _CMP, "<": _CMP,
          "<=": _CMP, ">": _CMP, ">=": _CMP, "AND": _LOGIC, "OR": _LOGIC}


class _Expr:
    """An emitted expression: its text and how tightly its top operator binds."""

    __slots__ = ("text", "level")

    def __init__(self, text: str, level: float):
        self.text = text
        self.level = level

    def operand(self, level: float = _POW) -> str:
        """The text as an operand of an operator of strength ``level`` (by default: unless atomic)."""
        return self.text if self.level > level else f"({self.text})"

    def arg(self) -> str:
        """As a function argument or a part of IF THEN ELSE (a nested IF is parenthesised)."""
        return self.operand(_IF)


def _num(text: str) -> _Expr:
    return _Expr(text, _NEG if text.startswith("-") else _ATOM)


def _neg(e: _Expr) -> _Expr:
    return _Expr(f"-{e.operand(_POW)}", _NEG)


def _binary(args: list, ops: list) -> _Expr:
    level = min(_LEVEL[o] for o in ops)
    text = args[0].operand(level)
    for op, a in zip(ops, args[1:]):
        text += f" {op} {a.operand(level)}"
    return _Expr(text, level)


class _Exporter:
    """Walk one AbstractModel and build its XMILE document."""

    def __init__(self, abstract, path: Path):
        self.path = path
        self.source = path.name
        sections = list(abstract.sections)
        self.main = next(s for s in sections if s.type == "main")
        macros = [s for s in sections if s.type == "macro"]
        if macros:
            macro, user = self._macro_use({clean_name(s.name): s.name for s in macros})
            self._fail(f"the macro {macro}", user, detail="PySD's XMILE reader does not read XMILE macros")
        if self.main.subscripts:
            self._fail("subscripts", self.main.subscripts[0].name)
        self.elements = {}  # clean name -> element
        self.controls = {}  # control key -> element
        self.used_names: set[str] = set()
        for el in self.main.elements:
            comps = el.components
            if len(comps) != 1 or any(c.subscripts[0] for c in comps):
                self._fail("subscripts", el.name)
            key = clean_name(el.name)
            if type(el).__name__ == "AbstractControlElement" or key in _CONTROL_KEYS:
                self.controls[key] = el
            self.elements[key] = el
            name = _xmile_name(el.name)
            if '"' in name or "\\" in name:
                self._fail("a name with a double quote or a backslash", el.name,
                           detail="PySD's XMILE reader cannot match such names in equations")
            self.used_names.add(clean_name(name))
        self.time = self._time_settings()
        self.generated: list[ET.Element] = []  # <gf> made for nested WITH LOOKUPs

    # -- errors --------------------------------------------------------------
    def _fail(self, construct: str, where: str | None, detail: str = ""):
        place = f" in '{where}'" if where else ""
        extra = f" ({detail})" if detail else ""
        raise UnsupportedFeature(f"{self.source}: {construct}{place} cannot be exported to XMILE{extra}")

    def _macro_use(self, macros: dict) -> tuple:
        """(macro name, first variable calling it), or the first macro and None if none is called."""
        for el in self.main.elements:
            for comp in el.components:
                for fn in _called_functions(comp.ast):
                    if clean_name(fn) in macros:
                        return macros[clean_name(fn)], el.name
        return next(iter(macros.values())), None

    def _unique(self, base: str) -> str:
        name, i = base, 2
        while clean_name(name) in self.used_names:
            name, i = f"{base} {i}", i + 1
        self.used_names.add(clean_name(name))
        return name

    def _number(self, value, where: str) -> str:
        if not math.isfinite(float(value)):
            self._fail(f"the non-finite number {float(value)}", where)
        return _fmt(value)

    # -- time settings -------------------------------------------------------
    def _time_settings(self) -> dict:
        values = {}
        for key in ("initial_time", "final_time", "time_step"):
            if key not in self.controls:
                label = key.replace("_", " ").upper()
                raise ModelReadError(f"{self.path}: the model does not define {label}")
            values[key] = self._fold(self.controls[key].components[0].ast, self.controls[key].name, set())
        if "saveper" in self.controls:
            values["saveper"] = self._fold(self.controls["saveper"].components[0].ast, "SAVEPER", set())
        else:
            values["saveper"] = values["time_step"]
        return values

    def _fold(self, ast, where: str, seen: set) -> float:
        """The value of a time setting made of numbers, constants and arithmetic."""
        if isinstance(ast, (int, float)) and not isinstance(ast, bool):
            return float(ast)
        cls = type(ast).__name__
        if cls == "ReferenceStructure" and ast.subscripts is None:
            key = clean_name(ast.reference)
            if key == "time":
                self._fail("a time setting that varies with Time", where)
            el = self.elements.get(key)
            if el is None or key in seen:
                self._fail(f"a time setting defined by '{ast.reference}'", where)
            return self._fold(el.components[0].ast, where, seen | {key})
        if cls == "ArithmeticStructure":
            vals = [self._fold(a, where, seen) for a in ast.arguments]
            try:
                return fold_arithmetic(ast.operators, vals)
            except ValueError as err:
                self._fail(f"a time setting with {err}", where)
        self._fail("a time setting that is not a constant expression", where)

    # -- the document --------------------------------------------------------
    def document(self) -> str:
        specs = self._sim_specs()
        root = ET.Element("xmile", {"version": "1.0", "xmlns": XMILE_NAMESPACE})
        if any(k.startswith("isee:") for k in specs.attrib):
            root.set("xmlns:isee", ISEE_NAMESPACE)
        header = ET.SubElement(root, "header")
        ET.SubElement(header, "vendor").text = "aicircle"
        ET.SubElement(header, "product", {"version": FORMAT_VERSION, "lang": "en"}).text = \
            "aicircle XMILE exporter"
        ET.SubElement(header, "name").text = self.path.stem
        root.append(specs)
        model = ET.SubElement(root, "model")
        variables = ET.SubElement(model, "variables")
        for node in self._variables():
            variables.append(node)
        views = _views(variables, read_sketch(self.path))
        if len(views):
            model.append(views)
        ET.indent(root, space="  ")
        body = ET.tostring(root, encoding="unicode")
        return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"

    def _sim_specs(self) -> ET.Element:
        units = ""
        for key in _CONTROL_KEYS:
            el = self.controls.get(key)
            if el is not None and (el.units or "").strip():
                units = el.units.strip()
                break
        attrs = {"method": "Euler"}
        if units:
            attrs["time_units"] = units
        t = self.time
        if t["saveper"] != t["time_step"]:
            attrs["isee:save_interval"] = self._number(t["saveper"], "SAVEPER")
        specs = ET.Element("sim_specs", attrs)
        ET.SubElement(specs, "start").text = self._number(t["initial_time"], "INITIAL TIME")
        ET.SubElement(specs, "stop").text = self._number(t["final_time"], "FINAL TIME")
        dt_ast = self.controls["time_step"].components[0].ast
        if (type(dt_ast).__name__ == "ArithmeticStructure" and list(dt_ast.operators) == ["/"]
                and dt_ast.arguments[0] == 1 and isinstance(dt_ast.arguments[1], (int, float))):
            # TIME STEP = 1/n: XMILE's reciprocal form, as Stella writes it
            ET.SubElement(specs, "dt", {"reciprocal": "true"}).text = \
                self._number(dt_ast.arguments[1], "TIME STEP")
        else:
            ET.SubElement(specs, "dt").text = self._number(t["time_step"], "TIME STEP")
        return specs

    def _variables(self) -> list[ET.Element]:
        model_els = [el for el in self.main.elements if clean_name(el.name) not in self.controls]
        flows = self._assign_flows(model_els)  # clean name of aux -> True; stock -> (in, out) | None
        out: list[ET.Element] = []
        for el in model_els:
            comp = el.components[0]
            name = _xmile_name(el.name)
            key = clean_name(el.name)
            if comp.type == "Data" or type(comp).__name__ == "AbstractData":
                self._fail("data variables", el.name)
            if comp.type == "Lookup":
                out.append(self._gf(name, comp.ast, el))
                continue
            ast = comp.ast
            cls = type(ast).__name__
            self.generated = []
            if cls == "IntegStructure":
                out.extend(self._stock(name, el, ast, flows["stocks"][key]))
                continue
            if cls == "CallStructure" and clean_name(ast.function.reference) == "active_initial":
                self._fail("ACTIVE INITIAL", el.name)
            tag = "flow" if key in flows["aux"] else "aux"
            node = ET.Element(tag, {"name": name})
            if cls == "InlineLookupsStructure":
                ET.SubElement(node, "eqn").text = self._expr(ast.argument, el.name).text
                node.append(self._gf(None, ast.lookups, el))
            else:
                ET.SubElement(node, "eqn").text = self._expr(ast, el.name).text
            self._annotate(node, el)
            out.extend(self.generated)
            out.append(node)
        return out

    def _assign_flows(self, model_els) -> dict:
        """Decide which auxiliaries become flows, stock by stock in file order.

        A term of a stock's rate (read as a signed sum) becomes a flow if it is a
        plain reference to an auxiliary, appears once, and that auxiliary is not
        already an inflow (for a ``+`` term) or an outflow (``-``) of another stock.
        Returns ``{"aux": flow keys, "stocks": {stock key: (inflows, outflows,
        remaining signed terms)}}``.
        """
        inflow_of: dict[str, str] = {}
        outflow_of: dict[str, str] = {}
        stocks: dict[str, tuple] = {}
        for el in model_els:
            ast = el.components[0].ast
            if type(ast).__name__ != "IntegStructure":
                continue
            key = clean_name(el.name)
            ins, outs, rest, seen = [], [], [], set()
            for neg, term in _signed_terms(ast.flow):
                k = None
                if type(term).__name__ == "ReferenceStructure" and term.subscripts is None:
                    k = clean_name(term.reference)
                owner = outflow_of if neg else inflow_of
                if k is None or k in seen or not self._can_be_flow(k) or owner.get(k, key) != key:
                    rest.append((neg, term))
                    continue
                seen.add(k)
                owner[k] = key
                (outs if neg else ins).append(k)
            stocks[key] = (ins, outs, rest)
        return {"aux": set(inflow_of) | set(outflow_of), "stocks": stocks}

    def _can_be_flow(self, key: str) -> bool:
        el = self.elements.get(key)
        if el is None or key in self.controls:
            return False
        comp = el.components[0]
        if comp.type in ("Lookup", "Data"):
            return False
        return type(comp.ast).__name__ != "IntegStructure"

    def _stock(self, name, el, ast, flows) -> list[ET.Element]:
        node = ET.Element("stock", {"name": name})
        ET.SubElement(node, "eqn").text = self._expr(ast.initial, el.name).text
        ins, outs, rest = flows
        extra: list[ET.Element] = []
        if rest:
            if ins or outs:
                flow_name = self._unique(f"{name} other flows")
                terms = [self._expr(t, el.name) for _, t in rest]
                first = _neg(terms[0]) if rest[0][0] else terms[0]
                rate = _binary([first, *terms[1:]], ["-" if neg else "+" for neg, _ in rest[1:]]) \
                    if len(terms) > 1 else first
                doc = (f"The terms of the rate of {name} (its Vensim INTEG) that are not flows "
                       "of their own, written as one flow by aicircle's XMILE exporter.")
            else:
                flow_name = self._unique(f"{name} net flow")
                rate = self._expr(ast.flow, el.name)
                doc = (f"Net rate of change of {name}: the rate of its Vensim INTEG, written "
                       "as one flow by aicircle's XMILE exporter.")
            flow = ET.Element("flow", {"name": flow_name})
            ET.SubElement(flow, "eqn").text = rate.text
            ET.SubElement(flow, "doc").text = doc
            extra.append(flow)
        for k in ins:
            ET.SubElement(node, "inflow").text = _reference(_xmile_name(self.elements[k].name))
        if rest:
            ET.SubElement(node, "inflow").text = _reference(flow_name)
        for k in outs:
            ET.SubElement(node, "outflow").text = _reference(_xmile_name(self.elements[k].name))
        if ast.non_negative:
            ET.SubElement(node, "non_negative")
        self._annotate(node, el)
        return [*self.generated, node, *extra]

    def _annotate(self, node: ET.Element, el) -> None:
        units = (el.units or "").strip()
        if units:
            ET.SubElement(node, "units").text = units
        doc = (el.documentation or "").strip()
        if doc:
            ET.SubElement(node, "doc").text = doc
        limits = tuple(el.limits or ())[:2]
        lo, hi = (limits + (None, None))[:2]
        if lo is not None or hi is not None:
            # PySD's reader needs both bounds: a missing one is infinite
            ET.SubElement(node, "range", {
                "min": "-INF" if lo is None else self._number(lo, el.name),
                "max": "INF" if hi is None else self._number(hi, el.name)})

    def _gf(self, name, ast, el) -> ET.Element:
        cls = type(ast).__name__
        if cls != "LookupsStructure":
            self._fail(f"a lookup defined by {cls.replace('Structure', '')}", el.name)
        kind = str(ast.type)
        if kind not in _LOOKUP_TYPES:
            self._fail(f"a lookup of type '{kind}'", el.name)
        attrs = {} if name is None else {"name": name}
        if _LOOKUP_TYPES[kind]:
            attrs["type"] = _LOOKUP_TYPES[kind]
        node = ET.Element("gf", attrs)
        ylim = tuple(ast.y_limits or (None, None))
        if len(ylim) == 2 and all(v is not None and math.isfinite(float(v)) for v in ylim):
            ET.SubElement(node, "yscale", {"min": self._number(ylim[0], el.name),
                                               "max": self._number(ylim[1], el.name)})
        # no <xscale>: PySD's reader would replace the x points by an even grid
        ET.SubElement(node, "xpts").text = ",".join(self._number(v, el.name) for v in ast.x)
        ET.SubElement(node, "ypts").text = ",".join(self._number(v, el.name) for v in ast.y)
        if name is not None:
            self._annotate(node, el)
        return node

    # -- expressions ---------------------------------------------------------
    def _expr(self, ast, where: str) -> _Expr:  # noqa: C901 - one dispatch
        ex = lambda a: self._expr(a, where)  # noqa: E731
        if isinstance(ast, bool):
            return _num("1" if ast else "0")
        if isinstance(ast, (int, float)):
            return _num(self._number(ast, where))
        if hasattr(ast, "dtype") and getattr(ast, "ndim", 1) == 0:  # numpy scalar
            return _num(self._number(float(ast), where))
        cls = type(ast).__name__
        if cls == "ArithmeticStructure":
            ops = [str(o) for o in ast.operators]
            args = [ex(a) for a in ast.arguments]
            if len(args) == 1:
                if ops[0] == "negative":
                    return _neg(args[0])
                if ops[0] in ("positive", "+"):
                    return args[0]
                self._fail(f"the unary operator '{ops[0]}'", where)
            bad = [o for o in ops if o not in ("+", "-", "*", "/", "^")]
            if bad:
                self._fail(f"the operator '{bad[0]}'", where)
            return _binary(args, ops)
        if cls == "LogicStructure":
            ops = [str(o).strip(":").upper() for o in ast.operators]
            args = [ex(a) for a in ast.arguments]
            if len(args) == 1:
                if ops[0] == "NOT":
                    return _Expr(f"NOT {args[0].operand()}", _NOT)
                self._fail(f"the logical operator '{ops[0]}'", where)
            bad = [o for o in ops if o not in _LEVEL or _LEVEL[o] > _CMP]
            if bad:
                self._fail(f"the logical operator '{bad[0]}'", where)
            # and/or keep Vensim's flat sequence: PySD reads it back as the same tree
            return _binary(args, ops)
        if cls == "ReferenceStructure":
            if ast.subscripts is not None:
                self._fail("subscripts", where)
            return _Expr(self._ref(ast.reference, where), _ATOM)
        if cls == "CallStructure":
            return self._call(ast, where)
        if cls == "InlineLookupsStructure":
            name = self._unique(f"{_xmile_name(where)} lookup")
            self.generated.append(self._gf(name, ast.lookups, _Named(where)))
            return _call(_reference(name), [ex(ast.argument)])
        if cls == "InitialStructure":
            return _call("INIT", [ex(ast.initial)])
        if cls in ("SmoothStructure", "SmoothNStructure"):
            return self._stateful("SMTH", ast.input, ast.smooth_time, ast.initial, ast.order,
                                  cls == "SmoothNStructure", where)
        if cls in ("DelayStructure", "DelayNStructure"):
            return self._stateful("DELAY", ast.input, ast.delay_time, ast.initial, ast.order,
                                  cls == "DelayNStructure", where)
        if cls == "DelayFixedStructure":
            return _call("DELAY", [ex(ast.input), ex(ast.delay_time), ex(ast.initial)])
        if cls == "TrendStructure":
            return _call("TREND", [ex(ast.input), ex(ast.average_time), ex(ast.initial_trend)])
        if cls == "ForecastStructure":
            args = [ex(ast.input), ex(ast.average_time), ex(ast.horizon)]
            if not (isinstance(ast.initial_trend, (int, float)) and ast.initial_trend == 0):
                args.append(ex(ast.initial_trend))
            return _call("FORCST", args)
        from .compiler import UNSUPPORTED_STRUCTURES

        names = {"SampleIfTrueStructure": "SAMPLE IF TRUE", "GameStructure": "GAME",
                 **UNSUPPORTED_STRUCTURES}
        self._fail(names.get(cls, cls), where)

    def _stateful(self, family, inp, time, init, order, n_form, where) -> _Expr:
        """SMTH1/SMTH3/SMTHN or DELAY1/DELAY3/DELAYN (the initial value omitted when it is the input)."""
        args = [self._expr(inp, where), self._expr(time, where)]
        init_x = self._expr(init, where)
        if not n_form and isinstance(order, (int, float)) and order in (1, 3):
            if repr(init) != repr(inp):
                args.append(init_x)
            return _call(f"{family}{int(order)}", args)
        return _call(f"{family}N", [*args, self._expr(order, where), init_x])

    def _ref(self, reference: str, where: str) -> str:
        key = clean_name(reference)
        if key == "time":
            return "TIME"
        el = self.elements.get(key)
        if el is None:
            self._fail(f"a reference to '{reference}', which is not defined,", where)
        if el.components[0].type == "Lookup":
            self._fail(f"the lookup '{el.name}' used without an argument", where)
        if key == "saveper" and self.time["saveper"] != self.time["time_step"]:
            self._fail("a reference to SAVEPER", where,
                       detail="PySD's XMILE reader sets SAVEPER to TIME STEP")
        return _reference(_xmile_name(el.name))

    def _call(self, ast, where: str) -> _Expr:  # noqa: C901 - one dispatch
        fname = clean_name(ast.function.reference)
        args = ast.arguments
        el = self.elements.get(fname)
        if el is not None and el.components[0].type == "Lookup":
            if len(args) != 1:
                self._fail(f"a lookup called with {len(args)} arguments", where)
            name = _xmile_name(el.name)
            if clean_name(name) in _builtin_names():
                self._fail(f"the lookup '{name}', named like an XMILE builtin,", where)
            return _call(_reference(name), [self._expr(args[0], where)])
        label = fname.upper().replace("_", " ")
        expected = {"if_then_else": 3, "log": 2, "integer": 1, "int": 1, "quantum": 2, "modulo": 2,
                    "xidz": 3, "zidz": 2, "power": 2, "pi": 0, "ramp": 3, "pulse": 2, "pulse_train": 4}
        expected.update({k: n for k, (_, n) in _DIRECT.items()})
        if fname not in expected:
            if fname in ("sinh", "cosh", "tanh"):
                self._fail(f"{label} (not an XMILE 1.0 builtin)", where)
            if fname == "active_initial":
                self._fail("ACTIVE INITIAL", where)
            self._fail(f"the function {label}", where)
        if len(args) != expected[fname] and not (fname == "ramp" and len(args) == 2):
            self._fail(f"{label} with {len(args)} arguments", where)
        x = [self._expr(a, where) for a in args]
        small = _fmt(SMALL_VENSIM)
        if fname in _DIRECT:
            return _call(_DIRECT[fname][0], x)
        if fname == "if_then_else":
            return _ite(*x)
        if fname == "log":
            return _binary([_call("LN", [x[0]]), _call("LN", [x[1]])], ["/"])
        if fname in ("integer", "int"):
            return _trunc(x[0])
        if fname == "quantum":
            return _quantum(x[0], x[1], small)
        if fname == "modulo":
            return _binary([x[0], _quantum(x[0], x[1], small)], ["-"])
        if fname in ("xidz", "zidz"):
            return _call("SAFEDIV", x)
        if fname == "power":
            return _binary(x, ["^"])
        if fname == "pi":
            return _num(_fmt(math.pi))
        if fname == "ramp":
            return _call("RAMP", x)
        if fname == "pulse":
            return _pulse(x[0], x[1], small)
        if fname == "pulse_train":
            start, repeat, width, end = x
            time = _Expr("TIME", _ATOM)
            phase = _Expr(f"{_binary([time, start, _num(small)], ['-', '+']).operand()} mod "
                          f"{repeat.operand()}", _MOD)
            on = _binary([_binary([start, time], ["<="]), _binary([time, end], ["<"]),
                          _binary([phase, width], ["<"])], ["AND", "AND"])
            train = _ite(on, _num("1"), _num("0"))
            if isinstance(args[1], (int, float)):
                return _pulse(start, width, small) if args[1] == 0 else train
            # PySD gives a single pulse when the repeat time is 0
            return _ite(_binary([repeat, _num("0")], ["="]), _pulse(start, width, small), train)
        raise AssertionError(fname)  # pragma: no cover - every name in ``expected`` is handled above


# -- the diagram ------------------------------------------------------------
# Variables the sketch does not place go on a grid below the diagram, in file order.
_GRID_COLUMNS = 7
_GRID_STEP = (240, 60)  # pixels between columns and between rows: room for a long name
_GRID_GAP = 100  # pixels between the lowest placed object and the grid
_STUB = 25  # half the length of the pipe of a flow drawn without one (pixels)


def _views(variables: ET.Element, sketch: list) -> ET.Element:
    """The ``<views>`` of the exported variables: one stock-flow view per sketch view.

    Every stock, flow and aux appears once as itself: where the sketch places it
    (its first placement that is not a shadow), else on a grid below the first
    view. A shadow, or a repeated placement, becomes an ``<alias>``. Objects of the
    sketch that are not exported variables (comments, clouds, Time, the time
    settings, lookups) are left out with the links that touch them.
    """
    kinds = {clean_name(n.get("name")): (n.tag, n.get("name"))
             for n in variables if n.tag in ("stock", "flow", "aux")}
    views = ET.Element("views")
    placed: set[str] = set()
    uids = itertools.count(1)
    for sketch_view in sketch:
        view = _view(sketch_view, kinds, placed, uids)
        if len(view):
            views.append(view)
    missing = [kinds[k] for k in kinds if k not in placed]
    if missing:
        view = views[0] if len(views) else ET.SubElement(views, "view", {"type": "stock_flow"})
        _grid(view, missing)
    return views


def _view(sketch_view, kinds: dict, placed: set, uids) -> ET.Element:
    view = ET.Element("view", {"type": "stock_flow"})
    by_id = {el.id: el for el in sketch_view.elements}
    refs: dict[int, tuple] = {}  # sketch id -> (connector end, position)
    flows: list[tuple] = []  # (<flow>, its valve or None)
    for el in sketch_view.elements:
        key = clean_name(_xmile_name(el.name)) if el.kind == "variable" else None
        if key not in kinds:
            continue
        tag, name = kinds[key]
        # a name drawn on a valve sits at the valve (beside it in Vensim); only a flow keeps the
        # pipe: a stock or an aux so drawn (the sketch disagrees with the equations) loses it
        at = by_id.get(el.valve, el) if el.valve is not None else el
        position = {"x": _fmt(at.x), "y": _fmt(at.y)}
        if el.shadow or key in placed:
            uid = str(next(uids))
            ET.SubElement(ET.SubElement(view, "alias", {"uid": uid, **position}), "of").text = name
            end = ("alias", uid)
        else:
            placed.add(key)
            attrs = {"name": name, **position}
            if tag == "stock":
                attrs.update(width=_fmt(el.width), height=_fmt(el.height))
            if tag == "flow" and at is not el:
                attrs["label_side"] = _label_side(at, el)
            node = ET.SubElement(view, tag, attrs)
            if tag == "flow":
                flows.append((node, at if at is not el else None))
            end = ("name", name)
        # a link's angle is taken where Vensim draws its end: the valve or the flow's name
        refs[el.id], refs[at.id] = (end, (el.x, el.y)), (end, (at.x, at.y))
    pipes: dict[int, dict] = {}  # valve id -> {"source" | "sink": the object at that end}
    for arrow in sketch_view.arrows:
        if arrow.pipe and arrow.target in by_id:
            side = "source" if arrow.drains else "sink"
            pipes.setdefault(arrow.source, {}).setdefault(side, by_id[arrow.target])
    for node, valve in flows:
        if valve is None:
            x, y = float(node.get("x")), float(node.get("y"))
            _points(node, [(x - _STUB, y), (x + _STUB, y)])
            continue
        ends = {side: _pipe_end(valve, obj, is_stock=kinds.get(clean_name(_xmile_name(obj.name)),
                                                                ("",))[0] == "stock")
                for side, obj in pipes.get(valve.id, {}).items()}
        _points(node, _pipe((valve.x, valve.y), ends.get("source"), ends.get("sink")))
    for arrow in sketch_view.arrows:
        source, target = refs.get(arrow.source), refs.get(arrow.target)
        if arrow.pipe or source is None or target is None or source[0] == target[0]:
            continue
        angle = _angle(source[1], arrow.handle, target[1])
        connector = ET.SubElement(view, "connector", {"uid": str(next(uids)), "angle": _fmt(angle)})
        for tag, ((kind, ref), _) in (("from", source), ("to", target)):
            end = ET.SubElement(connector, tag)
            if kind == "alias":
                ET.SubElement(end, "alias", {"uid": ref})
            else:
                end.text = ref
    return view


def _grid(view: ET.Element, items: list) -> None:
    """Place ``(tag, name)`` items on a grid below what ``view`` already holds."""
    xs = [float(n.get("x")) for n in view if n.get("x") is not None]
    ys = [float(n.get("y")) + float(n.get("height", 0)) / 2 for n in view if n.get("y") is not None]
    # a column is centred on its x: the first stays half a step from the left edge
    left = max(min(xs, default=0), _GRID_STEP[0] / 2)
    top = max(ys) + _GRID_GAP if ys else _GRID_GAP
    for i, (tag, name) in enumerate(items):
        x = left + (i % _GRID_COLUMNS) * _GRID_STEP[0]
        y = top + (i // _GRID_COLUMNS) * _GRID_STEP[1]
        node = ET.SubElement(view, tag, {"name": name, "x": _fmt(x), "y": _fmt(y)})
        if tag == "flow":
            _points(node, [(x - _STUB, y), (x + _STUB, y)])


def _points(flow: ET.Element, points: list) -> None:
    pts = ET.SubElement(flow, "pts")
    for x, y in points:
        ET.SubElement(pts, "pt", {"x": _fmt(round(x, 3)), "y": _fmt(round(y, 3))})


def _label_side(valve, name) -> str:
    """Where a flow's name sits relative to its valve, as XMILE's ``label_side``."""
    dx, dy = name.x - valve.x, name.y - valve.y
    if dx == dy == 0:
        return "center"
    if abs(dy) >= abs(dx):
        return "bottom" if dy > 0 else "top"
    return "right" if dx > 0 else "left"


def _pipe_end(valve, end, is_stock: bool) -> tuple:
    """Where a pipe from ``valve`` meets ``end``: a stock's edge, else the object's centre.

    The pipe runs straight across (keeping the valve's x or y) when the valve
    faces a side of the stock, else towards the stock's centre.
    """
    if not is_stock:
        return (end.x, end.y)
    half_w, half_h = end.width / 2, end.height / 2
    dx, dy = valve.x - end.x, valve.y - end.y
    if abs(dx) <= half_w and abs(dy) > half_h:
        return (valve.x, end.y + math.copysign(half_h, dy))
    if abs(dy) <= half_h and abs(dx) > half_w:
        return (end.x + math.copysign(half_w, dx), valve.y)
    if abs(dx) <= half_w and abs(dy) <= half_h:  # the valve is inside the stock
        return (end.x, end.y)
    t = min(half_w / abs(dx), half_h / abs(dy))
    return (end.x + t * dx, end.y + t * dy)


def _pipe(valve: tuple, source, sink) -> list:
    """A flow's points from the object it drains to the one it fills, through its valve.

    The valve is a point of its own where the pipe bends there. A missing end
    mirrors the other through the valve; with neither, a short pipe across it.
    """
    vx, vy = valve
    if source is None and sink is None:
        return [(vx - _STUB, vy), (vx + _STUB, vy)]
    source = source if source is not None else (2 * vx - sink[0], 2 * vy - sink[1])
    sink = sink if sink is not None else (2 * vx - source[0], 2 * vy - source[1])
    bend = (source[0] - vx) * (sink[1] - vy) - (source[1] - vy) * (sink[0] - vx)
    return [source, valve, sink] if bend else [source, sink]


def _angle(start: tuple, handle, end: tuple) -> float:
    """XMILE's connector angle: the arc's direction at ``start``, in degrees.

    Counterclockwise from 3 o'clock with y up (screen y grows downwards). The arc
    runs from ``start`` through ``handle`` to ``end``; straight when there is no
    handle or the three points are in line.
    """
    x0, y0, x2, y2 = start[0], -start[1], end[0] - start[0], -end[1] + start[1]
    direction = (x2, y2)
    if handle is not None:
        x1, y1 = handle[0] - x0, -handle[1] - y0
        cross = x1 * y2 - y1 * x2
        if abs(cross) > 1e-9 * math.hypot(x1, y1) * math.hypot(x2, y2):
            # centre of the circle through (0, 0), (x1, y1), (x2, y2); the tangent at
            # (0, 0) is perpendicular to the radius, turning the way the arc turns
            d = 2 * cross
            cx = (y2 * (x1 * x1 + y1 * y1) - y1 * (x2 * x2 + y2 * y2)) / d
            cy = (x1 * (x2 * x2 + y2 * y2) - x2 * (x1 * x1 + y1 * y1)) / d
            direction = (cy, -cx) if cross > 0 else (-cy, cx)
    if direction == (0, 0):
        return 0.0
    return round(math.degrees(math.atan2(direction[1], direction[0])) % 360, 3) % 360


def _call(fn: str, args: list) -> _Expr:
    return _Expr(f"{fn}({', '.join(a.arg() for a in args)})", _ATOM)


def _ite(cond: _Expr, a: _Expr, b: _Expr) -> _Expr:
    return _Expr(f"IF {cond.arg()} THEN {a.arg()} ELSE {b.arg()}", _IF)


def _trunc(v: _Expr) -> _Expr:
    """Vensim's INTEGER (truncation), exact whether XMILE's INT floors or truncates."""
    return _ite(_binary([v, _num("0")], [">="]), _call("INT", [v]), _neg(_call("INT", [_neg(v)])))


def _quantum(a: _Expr, q: _Expr, small: str) -> _Expr:
    """Vensim's QUANTUM as PySD computes it: ``a`` if ``q < 1e-6``, else ``q * INTEGER(a / q)``."""
    return _ite(_binary([q, _num(small)], ["<"]), a,
                _binary([q, _trunc(_binary([a, q], ["/"]))], ["*"]))


def _pulse(start: _Expr, width: _Expr, small: str) -> _Expr:
    """Vensim's PULSE as PySD computes it: 1 while ``start - 1e-6 <= TIME < start + width``."""
    time = _Expr("TIME", _ATOM)
    inside = _binary([_binary([_binary([start, _num(small)], ["-"]), time], ["<="]),
                      _binary([time, _binary([start, width], ["+"])], ["<"])], ["AND"])
    return _ite(inside, _num("1"), _num("0"))


class _Named:
    """Stand-in element for a generated <gf> (a name, no units, doc or range)."""

    def __init__(self, name):
        self.name = name
        self.units = ""
        self.documentation = ""
        self.limits = (None, None)


def _signed_terms(ast) -> list:
    """A stock's rate as a signed sum: ``[(negated, term), ...]``, literal zeros dropped.

    ``a - (b - c)`` gives ``[(False, a), (True, b), (False, c)]``; a rate that is
    not a sum or difference is one term.
    """
    if isinstance(ast, (int, float)) and not isinstance(ast, bool) and ast == 0:
        return []
    if type(ast).__name__ == "ArithmeticStructure":
        ops = [str(o) for o in ast.operators]
        args = list(ast.arguments)
        if len(args) == 1 and ops[0] == "negative":
            return [(not neg, t) for neg, t in _signed_terms(args[0])]
        if len(args) > 1 and all(o in ("+", "-") for o in ops):
            out = _signed_terms(args[0])
            for op, a in zip(ops, args[1:]):
                out += [(neg != (op == "-"), t) for neg, t in _signed_terms(a)]
            return out
    return [(False, ast)]


def _called_functions(ast) -> list[str]:
    """Names of every function called in an AST (to find macro calls)."""
    found = []
    stack = [ast]
    while stack:
        node = stack.pop()
        if isinstance(node, (list, tuple)):
            stack.extend(node)
            continue
        if not type(node).__name__.endswith("Structure"):
            continue
        if type(node).__name__ == "CallStructure":
            found.append(node.function.reference)
        stack.extend(v for v in vars(node).values() if not isinstance(v, str))
    return found

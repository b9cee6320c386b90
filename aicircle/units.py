"""Units checking: Vensim's Units Check, on the equations PySD reads (``aicircle check``).

Every variable's unit string is parsed into a :mod:`pint` quantity of a registry
made for the model: Vensim's time units (``Year``, ``Months``, ``Day`` ...) are
multiples of one ``[time]``; ``Dmnl``, ``dimensionless``, ``fraction`` and ``1``
are dimensionless; every other name (``Person``, ``Widget``, ``$B``, ``GW``) is a
base dimension of its own. Names match ignoring case, runs of spaces and a
plural ``s`` (``Persons`` is ``Person``; ``People`` is not). A range after the
units (``Dmnl [0,1]``) is not part of them.

Each equation's units are inferred from its operands' declared units:

- sums, differences, comparisons, MIN/MAX and the branches of IF THEN ELSE:
  the operands must agree; products and quotients combine; a power needs a
  dimensionless exponent, and a base with units needs a constant exponent;
- ``INTEG(rate, init)``: the rate's units times the time unit must be the
  stock's, and ``init`` must be in the stock's units;
- SMOOTH, DELAY, TREND, FORECAST, SAMPLE IF TRUE: their times must be in the
  time unit; SMOOTH and DELAY keep their input's units;
- a lookup's input must be dimensionless; its output has the lookup's declared
  units (dimensionless when none is declared); WITH LOOKUP gives the units of
  its variable;
- EXP, LN, LOG and the trigonometric functions take dimensionless arguments;
- a number is dimensionless in a product, and takes whatever units a sum or a
  comparison needs (``1 - fraction``, ``stock > 0``), as in Vensim;
- a variable without units, a macro's output and what aicircle does not know
  (data, GET XLS, most subscript functions) are unknown: they agree with anything.

The model's time unit is TIME STEP's units (FINAL TIME's where it declares none).

Two units agree when their ratio is dimensionless with magnitude 1:
``Widget/Month`` and ``Widget/Year`` do not (a wrong time unit), nor ``GW`` and
``MW``.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pint

from .compiler import clean_name
from .errors import InvalidInput
from .reader import fold_arithmetic

__all__ = ["check", "check_abstract", "parse_units", "FINDING_COLUMNS"]

#: The columns of :func:`check`'s result, one row per finding.
FINDING_COLUMNS = ["variable", "expected", "found", "expression", "problem"]


# Vensim's time units, as multiples of the second; the names a model may spell them by.
_TIME_UNITS = {
    "second": ("1", ("sec", "s")),
    "minute": ("60 * second", ("min",)),
    "hour": ("60 * minute", ("hr", "h")),
    "day": ("24 * hour", ()),
    "week": ("7 * day", ("wk",)),
    "year": ("365 * day", ("yr", "annum")),
    "month": ("year / 12", ("mo",)),
    "quarter": ("year / 4", ("qtr",)),
}
_DIMENSIONLESS = {"dmnl", "dimensionless", "fraction", "unitless", "nondimensional", "1"}
_RANGE = re.compile(r"\s*\[[^\[\]]*\]\s*$")
_OPERATOR = re.compile(r"([()*/^])")
_NUMBER_TEXT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_REL = 1e-9  # two units agree when their ratio's magnitude is 1 to rounding


class _Unreadable(ValueError):
    """A unit string that does not parse."""


def _key(name: str) -> str:
    """A unit name's identity: lower case, one space per run, no plural ``s``."""
    key = " ".join(name.lower().replace("_", " ").split())
    if len(key) > 3 and key.endswith("s") and not key.endswith("ss"):
        key = key[:-1]
    return key


class _Units:
    """The pint registry of one model: its names, their spellings, and parsing."""

    def __init__(self):
        self.registry = pint.UnitRegistry(None)
        self.registry.define("second = [time]")
        self._ids: dict[str, str] = {}  # name key -> pint unit name
        self.display: dict[str, str] = {}  # pint unit name -> first spelling seen
        for name, (definition, aliases) in _TIME_UNITS.items():
            if name != "second":
                self.registry.define(f"{name} = {definition}")
            for alias in (name, *aliases):
                self._ids[_key(alias)] = name
        self.one = self.registry.Quantity(1.0)
        self._cache: dict[str, object] = {}

    def _unit(self, name: str):
        key = _key(name)
        if key in _DIMENSIONLESS:
            return self.one
        uid = self._ids.get(key)
        if uid is None:
            uid = f"u{len(self._ids)}"
            self.registry.define(f"{uid} = [{uid}]")
            self._ids[key] = uid
        self.display.setdefault(uid, name.strip())
        return self.registry.Quantity(1.0, uid)

    def parse(self, text: str):
        """The quantity of a unit string; None when it is empty; :class:`_Unreadable` if malformed."""
        text = _RANGE.sub("", text or "").strip()
        if not text:
            return None
        if text not in self._cache:
            self._cache[text] = self._parse(text)
        return self._cache[text]

    def _parse(self, text: str):
        tokens = []
        for piece in _OPERATOR.split(text):
            piece = piece.strip()
            if piece in ("(", ")", "*", "/", "^"):
                tokens.append(("op", piece))
            elif piece:
                tokens.append(("num" if _NUMBER_TEXT.fullmatch(piece) else "name", piece))
        tokens.append(("end", ""))
        if sum(1 for _, t in tokens if t == "(") > _MAX_PARENTHESES:
            raise _Unreadable(f"more than {_MAX_PARENTHESES} parentheses in the units "
                              f"'{text if len(text) <= 60 else text[:57] + '...'}'")
        i = 0

        def peek():
            return tokens[i]

        def take(expected=None):
            nonlocal i
            tok = tokens[i]
            if expected is not None and tok[1] != expected:
                raise _Unreadable(f"expected '{expected}' in '{text}'")
            i += 1
            return tok

        def product():
            value = power()
            while peek()[1] in ("*", "/"):
                op = take()[1]
                rhs = power()
                value = value * rhs if op == "*" else value / rhs
            return value

        def power():
            value = atom()
            if peek()[1] == "^":
                take()
                if peek()[1] == "(":
                    take("(")
                    exponent = product()
                    take(")")
                    if not isinstance(exponent, float):
                        exponent = _number(exponent)
                else:
                    kind, tok = take()
                    if kind != "num":
                        raise _Unreadable(f"an exponent must be a number in '{text}'")
                    exponent = float(tok)
                value = value ** exponent
            return value

        def atom():
            kind, tok = take()
            if tok == "(":
                value = product()
                take(")")
                return value
            if kind == "num":
                return self.one * float(tok)
            if kind == "name":
                return self._unit(tok)
            raise _Unreadable(f"cannot read '{text}'")

        try:
            value = product()
        except (ArithmeticError, ValueError) as err:  # w/0, w^(1/0), w^1e400
            raise _Unreadable(f"the units '{text}' do not compute ({type(err).__name__}: a division by "
                              f"zero or an overflow)") from None
        if peek()[0] != "end":
            raise _Unreadable(f"cannot read '{text}' after '{' '.join(t for _, t in tokens[:i])}'")
        return value

    def same(self, a, b) -> bool:
        ratio = (a / b).to_base_units()
        return ratio.dimensionless and math.isclose(float(ratio.magnitude), 1.0, rel_tol=_REL)

    def text(self, q) -> str:
        """A quantity's units as Vensim writes them: ``$B/(GW*Year)``, ``1/Year``, ``Dmnl``."""
        def part(uid, exp):
            name = self.display.get(uid, uid)
            name = f"({name})" if re.search(r"[\s*/^]", name) else name
            exp = int(exp) if float(exp).is_integer() else exp
            return name if exp == 1 else f"{name}^{exp}"
        items = list(q.unit_items())
        num = [part(u, e) for u, e in items if e > 0]
        den = [part(u, -e) for u, e in items if e < 0]
        scale = float(q.magnitude)
        top = "*".join(num)
        if not math.isclose(scale, 1.0, rel_tol=_REL):
            top = f"{scale:g}*{top}" if top else f"{scale:g}"
        if not den:
            return top or "Dmnl"
        bottom = den[0] if len(den) == 1 else f"({'*'.join(den)})"
        return f"{top or '1'}/{bottom}"


#: Most parentheses one unit string may hold: its parser recurses once per level (Python's
#: stack holds about 300), and no unit needs more than a few.
_MAX_PARENTHESES = 50


def _number(q) -> float:
    if not q.dimensionless:
        raise _Unreadable("an exponent must be a number")
    return float(q.to_base_units().magnitude)


def parse_units(text: str):
    """Parse one Vensim unit string with pint (its own registry): a :class:`pint.Quantity`, or None.

    Parameters
    ----------
    text : str
        E.g. ``"$B/(GW*Year)"``, ``"Dmnl [0,1]"``, ``"1/Year"``; a trailing range is ignored.

    Returns
    -------
    pint.Quantity or None
        None for an empty string (no units declared).

    Raises
    ------
    InvalidInput
        ``text`` is not a string, or does not parse (unbalanced parentheses, an
        exponent that is not a number).

    Examples
    --------
    >>> str(parse_units("1/Year [0,?]").dimensionality)
    '1 / [time]'
    """
    if not isinstance(text, str):
        raise InvalidInput(f"units must be a string such as 'Widget/Month', got {text!r}")
    try:
        return _Units().parse(text)
    except _Unreadable as err:
        raise InvalidInput(f"units '{text}': {err}") from err


# ---------------------------------------------------------------------------- the check

_NUMBER = "number"  # a literal: dimensionless in a product, any units in a sum
_COMPARISONS = {"=", "<>", "<", "<=", ">", ">="}
_UNARY_DMNL = {"exp", "ln", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh"}
_KEEP = {"abs", "integer", "int", "sum", "vmin", "vmax"}
_TABLES = ("LookupsStructure", "GetLookupsStructure")
_AGREE = {"min", "max", "modulo", "quantum", "active_initial"}


@dataclasses.dataclass(frozen=True)
class _Finding:
    variable: str
    expected: str
    found: str
    expression: str
    problem: str


class _Checker:
    def __init__(self, abstract, source: str):
        self.source = source
        self.u = _Units()
        self.findings: list[_Finding] = []
        sections = list(abstract.sections)
        self.sections = sections
        self.macros = {clean_name(s.name) for s in sections if s.type == "macro"}
        self.names: dict[str, str] = {}
        self.declared: dict[str, object] = {}  # clean name -> quantity or None
        self.lookups: dict[str, object] = {}
        self.time = None
        self.variable = ""

    # -- reporting --------------------------------------------------------
    def report(self, expected, found, ast, problem, variable=None):
        self.findings.append(_Finding(variable or self.variable, self._show(expected), self._show(found),
                                      self.render(ast), problem))

    def _show(self, q):
        return q if isinstance(q, str) else self.u.text(q)

    def agree(self, a, b) -> bool:
        if a is None or b is None or a is _NUMBER or b is _NUMBER:
            return True
        return self.u.same(a, b)

    def need(self, expected, ast, problem):
        """Infer ``ast`` and report it unless it is in ``expected`` units (None: anything)."""
        found = self.infer(ast)
        if expected is not None and not self.agree(expected, found):
            self.report(expected, found, ast, problem)
        return found

    def need_time(self, ast, what):
        return self.need(self.time, ast, f"{what} must be in the model's time unit")

    def need_dmnl(self, ast, what):
        return self.need(self.u.one, ast, f"{what} must be dimensionless")

    # -- the model --------------------------------------------------------
    def run(self):
        main = [s for s in self.sections if s.type == "main"]
        for section in main + [s for s in self.sections if s.type != "main"]:
            self._declare(section.elements, section.type == "main")
        for el in (e for s in main for e in s.elements):
            if clean_name(el.name) == "time_step":
                self.time = self.declared.get("time_step")
        if self.time is None:
            for key in ("final_time", "initial_time"):
                self.time = self.time or self.declared.get(key)
        for section in main + [s for s in self.sections if s.type != "main"]:
            if section.type == "macro":  # the arguments' units are the caller's: unknown here
                saved = dict(self.declared)
                self.declared.update({clean_name(p): None for p in section.params})
            for el in section.elements:
                self._element(el)
            if section.type == "macro":
                self.declared = saved
        return self.findings

    def _declare(self, elements, main: bool):
        for el in elements:
            key = clean_name(el.name)
            self.names.setdefault(key, el.name)
            try:
                q = self.u.parse(el.units or "")
            except _Unreadable as err:
                self.findings.append(_Finding(el.name, "", el.units, "", f"unreadable units: {err}"))
                q = None
            if any(type(c.ast).__name__ in _TABLES for c in el.components):
                self.lookups[key] = q if q is not None else self.u.one
            elif main or key not in self.declared:
                self.declared[key] = q

    def _element(self, el):
        key = clean_name(el.name)
        if key in self.lookups:
            return
        self.variable = el.name
        expected = self.declared.get(key)
        for comp in el.components:
            ast = comp.ast
            cls = type(ast).__name__
            if cls == "IntegStructure":
                self._stock(expected, ast)
                continue
            found = self.infer(ast)
            if expected is not None and not self.agree(expected, found):
                self.report(expected, found, ast, "the equation's units differ from the variable's")

    def _stock(self, expected, ast):
        rate = expected / self.time if expected is not None and self.time is not None else None
        unit = self.u.text(self.time) if self.time is not None else "time"
        self.need(rate, ast.flow, f"the rate of a stock must be in the stock's units per {unit}")
        self.need(expected, ast.initial, "the initial value of a stock must be in the stock's units")

    # -- expressions --------------------------------------------------------
    def infer(self, ast):  # noqa: C901 - one dispatch
        """The units of an expression: a pint quantity, ``_NUMBER`` or None (unknown)."""
        if isinstance(ast, (bool, int, float, np.number, np.ndarray, list, tuple)):
            return _NUMBER
        cls = type(ast).__name__
        if cls == "ArithmeticStructure":
            return self._arithmetic(ast)
        if cls == "LogicStructure":
            return self._logic(ast)
        if cls == "ReferenceStructure":
            key = clean_name(ast.reference)
            if key == "time":
                return self.time
            return self.declared.get(key)
        if cls == "CallStructure":
            return self._call(ast)
        if cls == "GameStructure":
            return self.infer(ast.expression)
        if cls == "InitialStructure":
            return self.infer(ast.initial)
        if cls == "InlineLookupsStructure":  # WITH LOOKUP: the variable's own units
            self.need_dmnl(ast.argument, "the input of a lookup")
            return None
        if cls in ("SmoothStructure", "SmoothNStructure"):
            self.need_time(ast.smooth_time, "a smooth's time")
            return self._same_as_input(ast.input, ast.initial, "smooth")
        if cls in ("DelayStructure", "DelayNStructure", "DelayFixedStructure"):
            self.need_time(ast.delay_time, "a delay's time")
            return self._same_as_input(ast.input, ast.initial, "delay")
        if cls == "TrendStructure":
            self.infer(ast.input)
            self.need_time(ast.average_time, "TREND's average time")
            rate = self.u.one / self.time if self.time is not None else None
            self.need(rate, ast.initial_trend, "TREND's initial trend must be a fraction per time unit")
            return rate
        if cls == "ForecastStructure":
            self.need_time(ast.average_time, "FORECAST's average time")
            self.need_time(ast.horizon, "FORECAST's horizon")
            rate = self.u.one / self.time if self.time is not None else None
            self.need(rate, ast.initial_trend, "FORECAST's initial trend must be a fraction per time unit")
            return self.infer(ast.input)
        if cls == "SampleIfTrueStructure":
            self.infer(ast.condition)
            return self._same_as_input(ast.input, ast.initial, "SAMPLE IF TRUE")
        if cls == "IntegStructure":  # INTEG inside an expression: Vensim refuses it, so does the compiler
            return None
        return None  # data, GET XLS, ALLOCATE ...: unknown

    def _same_as_input(self, inp, initial, what):
        units = self.infer(inp)
        expected = units if units not in (None, _NUMBER) else None
        init = self.need(expected, initial, f"the initial value of a {what} must be in its input's units")
        return units if units is not None else (init if init is not _NUMBER else None)

    def _sum(self, terms, ast, problem):
        """Units of terms that must agree (the first known term sets them); None after a mismatch."""
        found = [(t, self.infer(t)) for t in terms]
        first = next((q for _, q in found if q is not None and q is not _NUMBER), None)
        ok = True
        for term, q in found:
            if first is not None and not self.agree(first, q):
                self.report(first, q, ast, f"{problem}: '{self.render(term)}' is in other units")
                ok = False
        if not ok:
            return None
        if first is not None:
            return first
        return _NUMBER if all(q is _NUMBER for _, q in found) else None

    def _arithmetic(self, ast):
        ops = [str(o) for o in ast.operators]
        args = list(ast.arguments)
        if len(args) == 1:
            return self.infer(args[0])  # negative, positive
        if all(o in ("+", "-") for o in ops):
            return self._sum(args, ast, "the terms of a sum or difference differ")
        if all(o == "^" for o in ops):  # right-associative
            value = self.infer(args[-1])
            exponent_ast = args[-1]
            for base_ast in reversed(args[:-1]):
                value = self._power(base_ast, self.infer(base_ast), exponent_ast, value, ast)
                exponent_ast = None
            return value
        value = self.infer(args[0])
        for op, arg in zip(ops, args[1:]):
            rhs = self.infer(arg)
            if op in ("*", "/"):
                value = self._product(value, rhs, op)
            else:  # a mixed chain PySD does not build; judged as unknown
                value = None
        return value

    @staticmethod
    def _product(a, b, op):
        if a is None or b is None:
            return None
        if a is _NUMBER and b is _NUMBER:
            return _NUMBER
        if b is _NUMBER:
            return a
        if a is _NUMBER:
            return b if op == "*" else 1 / b
        return a * b if op == "*" else a / b

    def _power(self, base_ast, base, exponent_ast, exponent, whole):
        if exponent not in (None, _NUMBER) and not self.u.same(exponent, self.u.one):
            self.report(self.u.one, exponent, whole, "an exponent must be dimensionless")
            return None
        if base is None or base is _NUMBER:
            return base
        if self.u.same(base, self.u.one):
            return self.u.one
        value = _constant(exponent_ast) if exponent_ast is not None else None
        if value is None:
            self.report(self.u.one, base, whole, "a quantity with units raised to a power that is not "
                        "a constant number")
            return None
        return base ** value

    def _logic(self, ast):
        ops = [str(o).strip(":").lower() for o in ast.operators]
        args = list(ast.arguments)
        if len(args) > 1 and all(o in _COMPARISONS for o in ops):
            self._sum(args, ast, "compared quantities differ")
        else:
            for a in args:
                self.infer(a)
        return self.u.one

    def _call(self, ast):  # noqa: C901 - one dispatch
        name = clean_name(ast.function.reference)
        args = list(ast.arguments)
        if name in self.lookups:
            if args:
                self.need_dmnl(args[0], "the input of a lookup")
            return self.lookups[name]
        if name in ("lookup_extrapolate", "lookup_forward", "lookup_backward") and len(args) == 2:
            table = clean_name(getattr(args[0], "reference", ""))
            if table in self.lookups:
                self.need_dmnl(args[1], "the input of a lookup")
                return self.lookups[table]
        if name in self.macros:
            for a in args:
                self.infer(a)
            return None
        if name == "if_then_else" and len(args) == 3:
            self.infer(args[0])
            return self._sum(args[1:], ast, "the branches of IF THEN ELSE differ")
        if name in _AGREE and len(args) >= 2:
            return self._sum(args, ast, f"the arguments of {name.upper().replace('_', ' ')} differ")
        if name in _KEEP and len(args) == 1:
            return self.infer(args[0])
        if name == "sqrt" and len(args) == 1:
            q = self.infer(args[0])
            return q ** 0.5 if q not in (None, _NUMBER) else q
        if name in _UNARY_DMNL and len(args) == 1:
            self.need_dmnl(args[0], f"the argument of {name.upper()}")
            return self.u.one
        if name == "log" and len(args) == 2:
            for a in args:
                self.need_dmnl(a, "the arguments of LOG")
            return self.u.one
        if name == "power" and len(args) == 2:
            return self._power(args[0], self.infer(args[0]), args[1], self.infer(args[1]), ast)
        if name in ("zidz", "xidz") and len(args) in (2, 3):
            q = self._product(self.infer(args[0]), self.infer(args[1]), "/")
            if len(args) == 3:
                self.need(q if q is not _NUMBER else None, args[2],
                          "XIDZ's value for a zero divisor must be in the quotient's units")
            return q
        if name == "step" and len(args) == 2:
            self.need_time(args[1], "STEP's time")
            return self.infer(args[0])
        if name == "ramp" and len(args) in (2, 3):
            for a in args[1:]:
                self.need_time(a, "RAMP's start and end")
            return self._product(self.infer(args[0]), self.time, "*")
        if name in ("pulse", "pulse_train"):
            for a in args:
                self.need_time(a, f"the times of {name.upper().replace('_', ' ')}")
            return self.u.one
        if name == "pi":
            return _NUMBER
        for a in args:  # anything else: its arguments are checked, its result unknown
            self.infer(a)
        return None

    # -- rendering ----------------------------------------------------------
    def render(self, ast) -> str:  # noqa: C901 - one dispatch
        """An expression as Vensim writes it (names as the model spells them)."""
        if isinstance(ast, (bool, int, float, np.number)):
            return f"{float(ast):g}" if not float(ast).is_integer() else str(int(ast))
        cls = type(ast).__name__
        r = self.render
        if cls == "ArithmeticStructure":
            ops = [str(o) for o in ast.operators]
            args = [self._operand(a) for a in ast.arguments]
            if len(args) == 1:
                return f"-{args[0]}" if ops[0] == "negative" else args[0]
            out = args[0]
            for op, a in zip(ops, args[1:]):
                out += f"{op}{a}" if op == "^" else f" {op} {a}"
            return out
        if cls == "LogicStructure":
            ops = [str(o) for o in ast.operators]
            args = [self._operand(a) for a in ast.arguments]
            if len(args) == 1:
                return f"{ops[0]} {args[0]}"
            out = args[0]
            for op, a in zip(ops, args[1:]):
                out += f" {op} {a}"
            return out
        if cls == "ReferenceStructure":
            key = clean_name(ast.reference)
            name = "Time" if key == "time" else self.names.get(key, ast.reference)
            subscripts = getattr(ast.subscripts, "subscripts", None)
            return f"{name}[{', '.join(map(str, subscripts))}]" if subscripts else name
        if cls == "CallStructure":
            key = clean_name(ast.function.reference)
            fname = self.names.get(key) or key.upper().replace("_", " ")
            return f"{fname}({', '.join(r(a) for a in ast.arguments)})"
        if cls == "IntegStructure":
            return f"INTEG({r(ast.flow)}, {r(ast.initial)})"
        if cls == "InlineLookupsStructure":
            return f"WITH LOOKUP({r(ast.argument)}, ...)"
        if cls in ("SmoothStructure", "SmoothNStructure"):
            return f"SMOOTH N({r(ast.input)}, {r(ast.smooth_time)}, {r(ast.initial)}, {r(ast.order)})"
        if cls in ("DelayStructure", "DelayNStructure", "DelayFixedStructure"):
            return f"DELAY({r(ast.input)}, {r(ast.delay_time)}, {r(ast.initial)})"
        if cls == "GameStructure":
            return f"GAME({r(ast.expression)})"
        if cls == "InitialStructure":
            return f"INITIAL({r(ast.initial)})"
        return cls.replace("Structure", "").upper()

    def _operand(self, ast):
        text = self.render(ast)
        nested = type(ast).__name__ in ("ArithmeticStructure", "LogicStructure") and len(ast.arguments) > 1
        return f"({text})" if nested else text


def _constant(ast):
    """The value of an exponent made of numbers alone (``1/3``, ``-0.5``), or None."""
    if isinstance(ast, (bool, int, float, np.number)):
        return float(ast)
    if type(ast).__name__ != "ArithmeticStructure":
        return None
    vals = [_constant(a) for a in ast.arguments]
    if any(v is None for v in vals):
        return None
    try:
        return fold_arithmetic(ast.operators, vals)
    except ValueError:
        return None


def check_abstract(abstract, source: str = "") -> pd.DataFrame:
    """Check the units of a model PySD has read (an AbstractModel). See :func:`check`."""
    findings = _Checker(abstract, source).run()
    return pd.DataFrame([dataclasses.astuple(f) for f in findings], columns=FINDING_COLUMNS)


def check(path) -> pd.DataFrame:
    """Vensim's units check of a ``.mdl`` or XMILE model file.

    Parameters
    ----------
    path : str or pathlib.Path
        The model file; read with :func:`aicircle.reader.read` (writing nothing).

    Returns
    -------
    pandas.DataFrame
        One row per finding, in file order, with the columns of
        :data:`FINDING_COLUMNS`: ``variable`` (as the model spells it),
        ``expected`` and ``found`` (units as Vensim writes them, e.g.
        ``$B/Year``), ``expression`` (the subexpression at fault, or the
        equation) and ``problem`` (what rule it breaks). Empty when the units
        are consistent.

    Raises
    ------
    ModelReadError
        The file is missing, unreadable or not a model.
    """
    from .reader import read

    return check_abstract(read(path), str(path))

"""The compiler's intermediate representation: variables, lookup tables and expression trees.

An expression is a tuple whose first item names its kind:

- ``("num", value)``: a literal float;
- ``("ref", vid)``: the value of variable ``vid``;
- ``("time",)``: the current time; ``("dt",)``: the current TIME STEP;
- ``("op", name, *args)``: an elementwise operation of :data:`UFUNCS` or
  :data:`FUNCTIONS`;
- ``("lookup", table_id, x)``: lookup table ``table_id`` evaluated at ``x``;
- ``("gather", vid, index)``: elements ``index`` (an int array) of subscripted
  variable ``vid`` (see :mod:`aicircle.compiler.subscripts`);
- ``("arr", values)``: a constant array, one row per element;
- ``("fn", name, params, *args)``: function ``name`` of :mod:`aicircle.runtime`
  called with the values of ``args`` and then the constants ``params``.

A subscripted value has shape ``(n_elements, n_sets)`` (``n_sets`` may be 1);
an unsubscripted one is a float or has shape ``(n_sets,)``, so that it
broadcasts against subscripted ones.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from .. import runtime
from ..errors import UnsupportedFeature

#: The time settings every model defines, by key and by their name in Vensim.
CONTROL_NAMES = {
    "initial_time": "INITIAL TIME",
    "final_time": "FINAL TIME",
    "time_step": "TIME STEP",
    "saveper": "SAVEPER",
}

#: Operations computed by a numpy ufunc (which takes ``out=``), by its name in numpy.
UFUNCS = {
    "+": "add", "-": "subtract", "*": "multiply", "/": "divide", "^": "power", "neg": "negative",
    "=": "equal", "<>": "not_equal", "<": "less", "<=": "less_equal", ">": "greater",
    ">=": "greater_equal", "and": "logical_and", "or": "logical_or", "not": "logical_not",
    "abs": "abs", "exp": "exp", "ln": "log", "sqrt": "sqrt", "sin": "sin", "cos": "cos",
    "tan": "tan", "arcsin": "arcsin", "arccos": "arccos", "arctan": "arctan", "sinh": "sinh",
    "cosh": "cosh", "tanh": "tanh", "min": "minimum", "max": "maximum", "integer": "trunc",
    "fmod": "fmod",
}
#: The other operations: functions of :mod:`aicircle.runtime`.
FUNCTIONS = {"if": runtime.if_then_else, "log": runtime.log, "xidz": runtime.xidz,
             "zidz": runtime.zidz, "quantum": runtime.quantum, "modulo": runtime.modulo}
#: How many arguments each operation takes (binary operators: 2).
ARITY = {"neg": 1, "not": 1, "abs": 1, "exp": 1, "ln": 1, "sqrt": 1, "sin": 1, "cos": 1, "tan": 1,
         "arcsin": 1, "arccos": 1, "arctan": 1, "sinh": 1, "cosh": 1, "tanh": 1, "integer": 1,
         "fmod": 2, "min": 2, "max": 2, "log": 2, "xidz": 3, "zidz": 2, "quantum": 2, "modulo": 2,
         "if": 3}

# Deepest expression compiled: Python's parser refuses code nested ~200 parentheses deep,
# and the generated code nests two per level.
MAX_DEPTH = 80


def clean_name(name: str) -> str:
    """Vensim's identity of a name: lower case, runs of spaces/underscores as one ``_``.

    Surrounding double quotes (Vensim's quoting of names with special
    characters) are not part of the name.
    """
    text = str(name).strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return re.sub(r"[\s_]+", "_", text.strip().lower())


@dataclasses.dataclass
class Var:
    """One variable of the compiled model (mutable only while compiling)."""

    vid: int
    name: str
    kind: str  # 'const' | 'aux' | 'stock' | 'discrete' | 'initial' | 'control'
    expr: tuple | None = None  # aux, const, control: the value
    init: tuple | None = None  # stock, discrete, initial: the initial value
    deriv: tuple | None = None  # stock: the derivative
    update: tuple | None = None  # discrete: the next value
    init_expr: tuple | None = None  # aux with ACTIVE INITIAL: the value at initialisation
    delay_time: tuple | None = None  # discrete of DELAY FIXED: its delay, fixed at initialisation
    non_negative: bool = False
    hidden: bool = False
    units: str = ""
    limits: tuple = (None, None)
    doc: str = ""
    unchangeable: bool = False
    builtin: str = ""  # for hidden variables: the construct that made them
    size: int | None = None  # subscripted: its number of elements (None: a scalar)
    dims: list | None = None  # subscripted and visible: [(dimension, [elements]), ...]
    undefined: tuple = ()  # subscripted: the elements no equation defines (NaN, as in PySD)

    def nodes(self) -> tuple:
        """Every expression of the variable (some None)."""
        return (self.expr, self.init_expr, self.deriv, self.init, self.update, self.delay_time)


@dataclasses.dataclass
class Lookup:
    """A lookup table: ``x`` increasing; ``kind`` one of :data:`aicircle.runtime.LOOKUP_KINDS`."""

    x: np.ndarray
    y: np.ndarray
    kind: str


def evaluate(op: str, *args):
    """The value of operation ``op`` on numbers (what the generated code computes)."""
    if op in UFUNCS:
        return getattr(np, UFUNCS[op])(*args)
    return FUNCTIONS[op](*args)


def _children(node) -> tuple:
    if node[0] == "op":
        return node[2:]
    if node[0] == "lookup":
        return (node[2],)
    if node[0] == "fn":
        return node[3:]
    return ()


def node_refs(node) -> set[int]:
    """Variable ids a node reads."""
    out: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        if n[0] in ("ref", "gather"):
            out.add(n[1])
        stack.extend(_children(n))
    return out


def node_uses_time(node) -> bool:
    """Whether a node reads the time or the TIME STEP."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n[0] in ("time", "dt"):
            return True
        stack.extend(_children(n))
    return False


def check_depth(node, source: str, where: str) -> None:
    """Refuse an expression nested deeper than :data:`MAX_DEPTH` (it could not be compiled)."""
    if node is None:
        return
    stack = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UnsupportedFeature(
                f"{source}: the equation of '{where}' nests more than {MAX_DEPTH} levels deep; "
                f"split it into auxiliaries")
        stack.extend((a, depth + 1) for a in _children(n))

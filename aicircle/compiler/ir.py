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
from ..errors import InvalidInput, UnsupportedFeature

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


@dataclasses.dataclass(frozen=True)
class Override:
    """A run's replacement of a variable by a time series, or of a lookup table by another.

    PySD's ``run(params=...)``: a constant or auxiliary given a ``pandas.Series``
    indexed by time becomes that series, interpolated (Vensim's data
    variables' default, the end values beyond it); a lookup given a Series (x
    as its index) or ``(x, y)`` pairs takes that table. Hashable by content, so
    that the programs compiled for it are cached like any other.
    """

    target: int  # kind 'series': a variable id; kind 'table': a lookup table id
    kind: str
    x: tuple
    y: tuple

    @classmethod
    def series(cls, vid: int, value, name: str) -> "Override":
        """A time series (a pandas Series indexed by time) replacing variable ``vid``."""
        return cls(vid, "series", *_points(value.index.to_numpy(), value.to_numpy(), name, "times"))

    @classmethod
    def table(cls, table: int, value, name: str) -> "Override":
        """A lookup table from a pandas Series (x as its index) or a sequence of (x, y) pairs."""
        if hasattr(value, "index") and hasattr(value, "to_numpy"):
            x, y = value.index.to_numpy(), value.to_numpy()
        else:
            try:
                pairs = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                raise InvalidInput(f"lookup '{name}' takes a pandas Series (x as its index) or (x, y) "
                                   f"pairs; got {value!r}") from None
            if pairs.ndim != 2 or pairs.shape[1] != 2:
                raise InvalidInput(f"lookup '{name}' takes a pandas Series (x as its index) or (x, y) "
                                   f"pairs; got an array of shape {pairs.shape}")
            x, y = pairs[:, 0], pairs[:, 1]
        return cls(table, "table", *_points(x, y, name, "x values"))

    def apply(self, vars_: list, lookups: list) -> None:
        """Make the replacement in copies of a model's ``vars_`` and ``lookups`` (lists, changed in place)."""
        x, y = np.array(self.x), np.array(self.y)
        if self.kind == "series":
            vars_[self.target] = dataclasses.replace(
                vars_[self.target], kind="aux", expr=("fn", "data_at", (x, y, "interpolate"), ("time",)),
                init_expr=None)
        else:
            lookups[self.target] = Lookup(x=x, y=y, kind=lookups[self.target].kind)


def _points(x, y, name: str, what: str) -> tuple:
    """``(x, y)`` as tuples of floats sorted by x; InvalidInput naming ``name`` unless they make a table."""
    try:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInput(f"the {what} and values given for '{name}' must be numbers") from None
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise InvalidInput(f"'{name}' needs one value per point, at least one point; got {x.size} {what} "
                           f"and {y.size} values")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidInput(f"the {what} and values given for '{name}' must be finite numbers")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) == 0):
        raise InvalidInput(f"the {what} given for '{name}' repeat {x[1:][np.diff(x) == 0][0]:g}")
    return tuple(x.tolist()), tuple(y.tolist())

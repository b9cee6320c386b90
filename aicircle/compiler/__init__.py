"""Compile PySD's AbstractModel into vectorised numpy code, in two passes.

1. :mod:`~aicircle.compiler.lowering` turns PySD's abstract syntax tree into
   the expression IR of :mod:`~aicircle.compiler.ir` (variables, lookup tables,
   expression trees), making the hidden state of builtins explicit and
   inlining macros: :func:`lower`.
2. :mod:`~aicircle.compiler.emitter` orders the variables and writes the
   numpy code that evaluates them, calling :mod:`aicircle.runtime` for what
   numpy has no ufunc for: :class:`Program`.

Semantics follow PySD's Python backend (and so Vensim) exactly, including its
small-number conventions (``SMALL_VENSIM = 1e-6`` in XIDZ, ZIDZ, QUANTUM, STEP
and PULSE), so that Euler runs agree with PySD to rounding.
"""

from .emitter import Program
from .ir import CONTROL_NAMES, Lookup, Override, Var, clean_name
from .lowering import UNSUPPORTED_STRUCTURES, lower
from .subscripts import labels as element_labels

__all__ = ["CONTROL_NAMES", "Lookup", "Override", "Program", "UNSUPPORTED_STRUCTURES", "Var", "clean_name", "element_labels",
           "lower"]

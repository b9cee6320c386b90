"""The functions compiled models call (aicircle.runtime): Vensim's semantics, and smooth stand-ins.

Each function is tested here once: the builtins against Vensim's definitions and against
PySD's own implementation, the smooth stand-ins by how close they come to the exact form
away from its kink as the smoothing width eps shrinks.
"""

import warnings

import numpy as np
import pytest

from aicircle import runtime as rt
from aicircle.errors import InvalidInput

with warnings.catch_warnings():
    # chardet, imported by PySD's backend, warns about its own deprecated module path
    warnings.simplefilter("ignore", DeprecationWarning)
    from pysd.py_backend import functions as pysd_functions

# --------------------------------------------------------------------------- Vensim's builtins

# Divisors on both sides of SMALL_VENSIM = 1e-6 (below it a divisor counts as 0; at it, not).
DIVISORS = [0.0, 5e-7, -5e-7, 1e-6, -1e-6, 2e-6, 0.5, -3.0, 7.0]
NUMERATORS = [-7.5, 0.0, 2.25, 10.0]


@pytest.mark.parametrize("b", DIVISORS)
@pytest.mark.parametrize("a", NUMERATORS)
@pytest.mark.parametrize("name, extra", [("xidz", (42.0,)), ("zidz", ()), ("quantum", ()), ("modulo", ())])
def test_division_builtins_equal_pysds_on_both_sides_of_small_vensim(name, extra, a, b):
    ours = getattr(rt, name)(a, b, *extra)
    theirs = getattr(pysd_functions, name)(a, b, *extra)
    assert float(ours) == float(theirs)  # the same floating-point operations: equal to the bit


@pytest.mark.parametrize("call, expected", [
    (lambda: rt.xidz(3.0, 0.0, 5.0), 5.0),
    (lambda: rt.xidz(3.0, 9e-7, 5.0), 5.0),  # |b| < 1e-6 counts as zero
    (lambda: rt.xidz(3.0, -9e-7, 5.0), 5.0),
    (lambda: rt.xidz(3.0, 1e-6, 5.0), 3e6),  # at 1e-6, a real division
    (lambda: rt.zidz(3.0, 0.0), 0.0),
    (lambda: rt.zidz(3.0, 1.5), 2.0),
    (lambda: rt.quantum(7.5, 2.0), 6.0),
    (lambda: rt.quantum(-7.5, 2.0), -6.0),  # INTEGER truncates toward 0
    (lambda: rt.quantum(7.5, 0.0), 7.5),  # a quantum below 1e-6 leaves the value
    (lambda: rt.quantum(7.5, -2.0), 7.5),  # so does a negative one
    (lambda: rt.modulo(7.5, 2.0), 1.5),
    (lambda: rt.modulo(-7.5, 2.0), -1.5),  # in (-m, 0] for negative x, as Vensim does
    (lambda: rt.if_then_else(np.array([True, False]), 1.0, 2.0), [1.0, 2.0]),
    (lambda: rt.log(8.0, 2.0), 3.0),
])
def test_builtin_follows_vensims_definition(call, expected):
    # tolerance: one rounding of the division (3 / 1e-6) or of the logarithms' ratio
    np.testing.assert_allclose(call(), expected, rtol=1e-15, atol=0)


XS, YS = np.array([0.0, 1.0, 3.0]), np.array([0.0, 2.0, 1.0])
X = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 2.9, 3.0, 4.0])


@pytest.mark.parametrize("kind, expected", [
    # linear between the points, the end values beyond them
    ("interpolate", [0.0, 0.0, 1.0, 2.0, 1.5, 1.05, 1.0, 1.0]),
    # the end segments continued: slope 2 below 0, slope -1/2 above 3
    ("extrapolate", [-2.0, 0.0, 1.0, 2.0, 1.5, 1.05, 1.0, 0.5]),
    # the last point at or before x
    ("hold_backward", [0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 1.0, 1.0]),
    # the first point at or after x
    ("look_forward", [0.0, 0.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0]),
])
def test_lookup_reads_the_table_as_each_vensim_kind(kind, expected):
    # tolerance: the rounding of one linear interpolation
    np.testing.assert_allclose(rt.lookup(X, XS, YS, kind), expected, rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- smooth stand-ins

GRID = np.linspace(-2.0, 2.0, 4001)
D = 0.1  # the points compared lie at least this far from every kink
# the rounding of values of order 1 to 10 (a smoothed step near 1 is stored to 1.2e-16)
ROUNDING = 1e-14


def step_error(eps):
    """The largest distance of smooth_step(x, eps) from the unit step for |x| >= D (documented)."""
    return np.exp(-2 * D / eps)


KINKS = np.array([-1.0, 0.0, 0.5])  # of the lookup: its points
KINK_SLOPE_CHANGES = 1.0 + 3.0 + 2.0  # slopes 0 | 1 | -2 | 0 across -1, 0, 0.5 (table below)
# (name, smooth(x, eps), exact(x), kinks, bound on the error away from them)
SMOOTH_CASES = [
    # max/min: off by eps**2 / (4 |a - b|) at a distance |a - b| from the kink
    ("max", lambda x, e: rt.smooth_max(x, 0.3, e), lambda x: np.maximum(x, 0.3), [0.3],
     lambda e: e**2 / (4 * D)),
    ("min", lambda x, e: rt.smooth_min(x, 0.3, e), lambda x: np.minimum(x, 0.3), [0.3],
     lambda e: e**2 / (4 * D)),
    # abs: off by eps**2 / (2 |x|)
    ("abs", lambda x, e: rt.smooth_abs(x, e), np.abs, [0.0], lambda e: e**2 / (2 * D)),
    ("greater", lambda x, e: rt.smooth_greater(x, 0.3, e), lambda x: x > 0.3, [0.3], step_error),
    ("less", lambda x, e: rt.smooth_less(x, 0.3, e), lambda x: x < 0.3, [0.3], step_error),
    # if: the step's error times |if_true - if_false| = 3 |x| <= 6
    ("if", lambda x, e: rt.smooth_if(rt.smooth_greater(x, 0.0, e), 2 * x, -x),
     lambda x: np.where(x > 0, 2 * x, -x), [0.0], lambda e: 6 * step_error(e)),
    # and/or: at most the sum of the two conditions' errors
    ("and", lambda x, e: rt.smooth_and(rt.smooth_greater(x, -1.0, e), rt.smooth_less(x, 1.0, e)),
     lambda x: (x > -1.0) & (x < 1.0), [-1.0, 1.0], lambda e: 2 * step_error(e)),
    ("or", lambda x, e: rt.smooth_or(rt.smooth_less(x, -1.0, e), rt.smooth_greater(x, 1.0, e)),
     lambda x: (x < -1.0) | (x > 1.0), [-1.0, 1.0], lambda e: 2 * step_error(e)),
    ("not", lambda x, e: rt.smooth_not(rt.smooth_greater(x, 0.0, e)), lambda x: x <= 0.0, [0.0],
     step_error),
    # lookup: each kink's smoothed relu off by eps**2 / (4 |x - kink|), times its slope change
    ("lookup", lambda x, e: rt.smooth_lookup(x, KINKS, [0.0, 1.0, 0.0], e),
     lambda x: rt.lookup(x, KINKS, np.array([0.0, 1.0, 0.0]), "interpolate"), KINKS,
     lambda e: KINK_SLOPE_CHANGES * e**2 / (4 * D)),
]


@pytest.mark.parametrize("eps", [1e-1, 1e-2, 1e-3, 1e-4])
@pytest.mark.parametrize("smooth, exact, kinks, bound", [case[1:] for case in SMOOTH_CASES],
                         ids=[case[0] for case in SMOOTH_CASES])
def test_smooth_stand_in_tends_to_its_exact_form_away_from_the_kink(smooth, exact, kinks, bound, eps):
    x = GRID[np.min(np.abs(GRID[:, None] - np.asarray(kinks)[None, :]), axis=1) >= D]
    err = np.max(np.abs(smooth(x, eps) - exact(x)))
    assert err <= bound(eps) + ROUNDING


@pytest.mark.parametrize("call", [
    lambda eps: rt.smooth_max(1.0, 2.0, eps),
    lambda eps: rt.smooth_min(1.0, 2.0, eps),
    lambda eps: rt.smooth_abs(1.0, eps),
    lambda eps: rt.smooth_step(1.0, eps),
    lambda eps: rt.smooth_greater(1.0, 2.0, eps),
    lambda eps: rt.smooth_less(1.0, 2.0, eps),
    lambda eps: rt.smooth_lookup(1.0, [0.0, 1.0], [0.0, 1.0], eps),
], ids=["max", "min", "abs", "step", "greater", "less", "lookup"])
@pytest.mark.parametrize("eps", [0.0, -1.0, np.nan, np.inf, "wide"])
def test_smoothing_width_that_is_not_a_positive_number_is_refused(call, eps):
    with pytest.raises(InvalidInput, match="eps must be"):
        call(eps)


@pytest.mark.parametrize("kind, expected", [
    # times 0, 1, 3; read at -1, 1, 2, 5 (before, on, between and after the series)
    ("interpolate", [[0, 1, 2, 3], [10, 20, 25, 30]]),
    ("hold_backward", [[0, 1, 1, 3], [10, 20, 20, 30]]),
    ("look_forward", [[0, 1, 3, 3], [10, 20, 30, 30]]),
    ("raw", [[np.nan, 1, np.nan, np.nan], [np.nan, 20, np.nan, np.nan]]),
])
def test_data_at_reads_a_series_by_vensims_method_per_element_and_per_time(kind, expected):
    xs = np.array([0.0, 1.0, 3.0])
    ys = np.array([[0.0, 10.0], [1.0, 20.0], [3.0, 30.0]])  # two elements in columns
    t = np.array([-1.0, 1.0, 2.0, 5.0])
    np.testing.assert_array_equal(rt.data_at(t, xs, ys, kind), expected)  # (elements, times)
    np.testing.assert_array_equal(rt.data_at(t, xs, ys[:, 1], kind), expected[1])  # unsubscripted
    np.testing.assert_array_equal(rt.data_at(2.0, xs, ys, kind), np.array(expected)[:, [2]])


def test_xidz_over_arrays_equals_its_elementwise_definition():
    # the fast path (no divisor counts as zero) and the general one give the same bits
    b = np.array(DIVISORS)
    a = np.linspace(-3.0, 4.0, b.size)
    for divisors in (b, b[np.abs(b) >= 1e-6]):
        got = rt.xidz(a[: divisors.size], divisors, 42.0)
        expected = [pysd_functions.xidz(x, y, 42.0) for x, y in zip(a, divisors)]
        np.testing.assert_array_equal(got, expected)
    # the default value's shape is kept when the division itself is a scalar
    np.testing.assert_array_equal(rt.xidz(3.0, 2.0, np.zeros(4)), np.full(4, 1.5))

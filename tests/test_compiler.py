"""The compiler: every Vensim builtin aicircle supports, on small models the tests write.

Two oracles: closed forms where the Euler recursion has one, and PySD's own run of
the same file (copied first: PySD writes a ``.py`` beside the model it reads).
"""

import math
import re
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import aicircle as ac
from conftest import write_mdl, write_xmile

with warnings.catch_warnings():
    # chardet, imported by PySD's backend, warns about its own deprecated module path
    warnings.simplefilter("ignore", DeprecationWarning)
    import pysd


def pysd_reference(test):
    """Mark a test that compares with a PySD run.

    PySD 3.14's run() calls DataFrame.set_index(inplace=True), which pandas 3
    deprecates; that warning is PySD's, not aicircle's. (pyproject already ignores
    the UserWarnings PySD itself raises.)
    """
    return pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")(test)


# Against PySD: the same floating-point operations, sometimes in another order, so the
# differences are rounding (~1e-15 relative); 1e-9 leaves room for it to accumulate.
PYSD_RTOL = 1e-9
# Against a closed form evaluated with the same numpy functions: only the rounding of a
# few dozen Euler steps separates them.
CLOSED_FORM_RTOL = 1e-12


def run(path, column=None):
    frame = ac.load(path).simulate()
    return frame if column is None else frame[column]


def pysd_run(path, tmp_path, params=None):
    """PySD's Euler run of a fresh copy of ``path`` (PySD keeps state between runs)."""
    folder = tmp_path / "pysd"
    folder.mkdir(exist_ok=True)
    copy = folder / path.name
    shutil.copy(path, copy)
    reader = pysd.read_vensim if path.suffix == ".mdl" else pysd.read_xmile
    return reader(str(copy)).run(params=params)


def assert_same_as_pysd(path, tmp_path, columns, params=None):
    """Every listed column equals PySD's run to PYSD_RTOL of its largest |value|."""
    ours = ac.load(path).simulate(params=params)
    theirs = pysd_run(path, tmp_path, params)
    np.testing.assert_allclose(ours.index.to_numpy(), theirs.index.to_numpy().astype(float),
                               rtol=0, atol=1e-12)  # the same repeated additions of TIME STEP
    for name in columns:
        expected = theirs[name].to_numpy(dtype=float)
        scale = np.nanmax(np.abs(expected)) if not np.isnan(expected).all() else 0.0
        scale = scale if scale > 0 else 1.0  # an all-zero column: compare absolutely
        np.testing.assert_allclose(ours[name].to_numpy(), expected, rtol=0, atol=PYSD_RTOL * scale,
                                   equal_nan=True, err_msg=f"column {name!r}")


def euler_times(final_time, time_step):
    return np.arange(round(final_time / time_step) + 1) * time_step


# --------------------------------------------------------------------------- arithmetic

@pytest.mark.parametrize("expression, expected", [
    ("1 + 2 * 3", 7.0),
    ("(1 + 2) * 3", 9.0),
    ("10 - 2 - 3", 5.0),  # left-associative
    ("16 / 4 / 2", 2.0),
    ("2 * 3 ^ 2", 18.0),  # ^ before *
    ("-2 ^ 2", -4.0),  # Vensim: canonical output of peer model tests/exponentiation
    ("-three ^ 2", -9.0),  # the same rule for a name (PySD: -three()**2)
    ("minus three ^ 2", 9.0),  # a negative value squared
    ("2 ^ -1", 0.5),
    ("2 ^ 3 ^ 2", 512.0),  # right-associative, as PySD writes it (Python's **)
    ("1 - -2 ^ 2", 5.0),
    ("POWER(2, 10)", 1024.0),
])
def test_arithmetic_follows_vensim_precedence(tmp_path, expression, expected):
    path = write_mdl(tmp_path, f"x = {expression}", "three = 3", "minus three = -3", final_time=1)
    # small integers and powers of two: exact in floating point
    assert run(path, "x").iloc[0] == expected


@pytest.mark.parametrize("expression, truth", [
    ("Time > 3 :AND: Time < 7", lambda t: (t > 3) & (t < 7)),
    ("Time <= 2 :OR: Time >= 8", lambda t: (t <= 2) | (t >= 8)),
    (":NOT: (Time = 5)", lambda t: t != 5),
    ("Time <> 5", lambda t: t != 5),
    ("Time >= 5", lambda t: t >= 5),
    ("Time = 4", lambda t: t == 4),
    # Vensim has one level for :AND: and :OR:, read left to right
    ("Time < 3 :OR: Time > 6 :AND: Time < 9", lambda t: ((t < 3) | (t > 6)) & (t < 9)),
])
def test_comparisons_and_logical_operators(tmp_path, expression, truth):
    path = write_mdl(tmp_path, f"x = IF THEN ELSE({expression}, 1, 0)")
    t = euler_times(10, 1)
    np.testing.assert_array_equal(run(path, "x").to_numpy(), truth(t).astype(float))


def test_if_then_else_picks_a_branch_per_time(tmp_path):
    path = write_mdl(tmp_path, "x = IF THEN ELSE(Time < 4, 10 + Time, 100 - Time)")
    t = euler_times(10, 1)
    np.testing.assert_array_equal(run(path, "x").to_numpy(), np.where(t < 4, 10 + t, 100 - t))


def test_if_then_else_guarding_a_division_by_zero_runs_without_warnings(tmp_path):
    # Vensim (and PySD) evaluate only the branch taken: 1/Time is never computed at
    # Time = 0. pyproject's filterwarnings=error turns a RuntimeWarning into a failure.
    path = write_mdl(tmp_path, "x = IF THEN ELSE(Time > 0, 1 / Time, 0)",
                     "y = IF THEN ELSE(Time >= 2, SQRT(Time - 2), -1)", final_time=4)
    frame = run(path)
    assert frame["x"].tolist() == [0.0, 1.0, 0.5, 1 / 3, 0.25]
    assert frame["y"].tolist() == [-1.0, -1.0, 0.0, 1.0, math.sqrt(2)]


# --------------------------------------------------------------------------- functions

T = euler_times(10, 0.5)


@pytest.mark.parametrize("expression, expected", [
    ("MIN(Time, 5)", np.minimum(T, 5)),
    ("MAX(Time, 5)", np.maximum(T, 5)),
    ("ABS(5 - Time)", np.abs(5 - T)),
    ("EXP(Time / 10)", np.exp(T / 10)),
    ("LN(Time + 1)", np.log(T + 1)),
    ("LOG(Time + 1, 2)", np.log(T + 1) / np.log(2)),
    ("LOG(1000, 10)", np.full_like(T, 3.0)),
    ("SQRT(Time)", np.sqrt(T)),
    ("SIN(Time)", np.sin(T)),
    ("COS(Time)", np.cos(T)),
    ("TAN(Time / 10)", np.tan(T / 10)),
    ("ARCSIN(Time / 10)", np.arcsin(T / 10)),
    ("ARCCOS(Time / 10)", np.arccos(T / 10)),
    ("ARCTAN(Time)", np.arctan(T)),
    ("SINH(Time / 5)", np.sinh(T / 5)),
    ("COSH(Time / 5)", np.cosh(T / 5)),
    ("TANH(Time / 5)", np.tanh(T / 5)),
    ("INTEGER(Time / 3 - 2)", np.trunc(T / 3 - 2)),  # towards zero, like Vensim
    ("QUANTUM(Time - 5, 3)", 3 * np.trunc((T - 5) / 3)),
    ("QUANTUM(Time, 0)", T),  # a quantum <= 0 leaves the value as it is
    ("MODULO(Time - 5, 3)", np.fmod(T - 5, 3)),  # x - QUANTUM(x, m): sign of x
    ("XIDZ(1, Time - 5, 99)", np.where(T == 5, 99, 1 / np.where(T == 5, 1, T - 5))),
    ("ZIDZ(1, Time - 5)", np.where(T == 5, 0, 1 / np.where(T == 5, 1, T - 5))),
    ("XIDZ(1, 1e-7, 5)", np.full_like(T, 5.0)),  # |denominator| < 1e-6 counts as zero
    ("PI()", np.full_like(T, math.pi)),
    ("GAME(Time * 2)", 2 * T),  # GAME is its input outside gaming mode
])
def test_builtin_function_matches_numpy(tmp_path, expression, expected):
    path = write_mdl(tmp_path, f"x = {expression}", time_step=0.5)
    np.testing.assert_allclose(run(path, "x").to_numpy(), expected, rtol=CLOSED_FORM_RTOL, atol=0)


def test_not_available_is_nan_as_in_pysd(tmp_path):
    # Vensim's :NA: is -2^109; PySD (and so aicircle) uses NaN
    path = write_mdl(tmp_path, "x = :NA:", final_time=2)
    assert ac.load(path).simulate(allow_nonfinite=True)["x"].isna().all()


def test_not_available_stops_a_run_unless_asked_to_keep_going(tmp_path):
    path = write_mdl(tmp_path, "x = :NA:", final_time=2)
    with pytest.raises(ac.IntegrationError, match=r"'x' is nan at t=0 "):
        run(path)


@pytest.mark.parametrize("spelling", ["IF THEN ELSE", "if then else", "If Then Else", "if_then_else",
                                      "IF  THEN  ELSE"])
def test_function_names_are_read_in_any_case(tmp_path, spelling):
    path = write_mdl(tmp_path, f"x = {spelling}(Time > 3, Min(Time, 5), max(1, 2))",
                     "z = delay fixed(Time, 2, 0)")
    t = euler_times(10, 1)
    frame = run(path)
    np.testing.assert_array_equal(frame["x"].to_numpy(), np.where(t > 3, np.minimum(t, 5), 2))
    np.testing.assert_array_equal(frame["z"].to_numpy(), np.maximum(t - 2, 0))


@pytest.mark.parametrize("spelling", ["SMOOTH", "smooth", "Smooth"])
def test_stateful_function_names_are_read_in_any_case(tmp_path, spelling):
    path = write_mdl(tmp_path, "x = STEP(1, 2)", f"y = {spelling}(x, 2)")
    upper = write_mdl(tmp_path, "x = STEP(1, 2)", "y = SMOOTH(x, 2)", name="upper.mdl")
    np.testing.assert_array_equal(run(path, "y").to_numpy(), run(upper, "y").to_numpy())


# --------------------------------------------------------------------------- lookups

TABLE = "table( (0,0), (1,1), (2,4), (3,9) )"
XS, YS = [0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 4.0, 9.0]


def test_named_lookup_interpolates_linearly(tmp_path):
    path = write_mdl(tmp_path, TABLE, "x = table(Time / 3)", time_step=0.5)
    t = euler_times(10, 0.5)
    np.testing.assert_allclose(run(path, "x").to_numpy(), np.interp(t / 3, XS, YS),
                               rtol=CLOSED_FORM_RTOL, atol=0)


def test_lookup_with_a_declared_range_reads_its_points(tmp_path):
    path = write_mdl(tmp_path, "table( [(0,0)-(3,10)], (0,0), (1,1), (2,4), (3,9) )",
                     "x = table(Time / 4)", time_step=0.5)
    t = euler_times(10, 0.5)
    np.testing.assert_allclose(run(path, "x").to_numpy(), np.interp(t / 4, XS, YS),
                               rtol=CLOSED_FORM_RTOL, atol=0)


@pytest.mark.parametrize("argument, expected", [("-1", 0.0), ("-0.001", 0.0), ("3.5", 9.0), ("1e6", 9.0)])
def test_lookup_holds_its_end_values_out_of_range(tmp_path, argument, expected):
    path = write_mdl(tmp_path, TABLE, f"x = table({argument})", final_time=1)
    assert run(path, "x").iloc[0] == expected


def test_with_lookup_interpolates_its_own_table(tmp_path):
    path = write_mdl(tmp_path, "x = WITH LOOKUP(Time / 3, ((0,0),(1,2),(2,0)))", time_step=0.5)
    t = euler_times(10, 0.5)
    np.testing.assert_allclose(run(path, "x").to_numpy(), np.interp(t / 3, [0, 1, 2], [0, 2, 0]),
                               rtol=CLOSED_FORM_RTOL, atol=0)


def _forward(v):  # the y of the first point at or after v; the last y beyond the table
    return next((y for x, y in zip(XS, YS) if x >= v), YS[-1])


def _backward(v):  # the y of the last point at or before v; the first y before the table
    return next((y for x, y in zip(reversed(XS), reversed(YS)) if x <= v), YS[0])


@pytest.mark.parametrize("function, expected", [
    # the end segments continue: slope 1 below x = 0, slope 5 above x = 3
    ("LOOKUP EXTRAPOLATE", lambda v: np.where(v < 0, v, np.where(v > 3, 9 + 5 * (v - 3),
                                                                  np.interp(v, XS, YS)))),
    ("LOOKUP FORWARD", np.vectorize(_forward)),
    ("LOOKUP BACKWARD", np.vectorize(_backward)),
])
def test_vensim_lookup_functions_read_a_named_table(tmp_path, function, expected):
    # PySD 3.14's Vensim translator cannot read these, so the oracle is Vensim's definition
    path = write_mdl(tmp_path, TABLE, f"x = {function}(table, Time / 2 - 1)", time_step=0.5)
    v = euler_times(10, 0.5) / 2 - 1  # from -1 to 4: below, inside and above the table
    np.testing.assert_allclose(run(path, "x").to_numpy(), expected(v), rtol=CLOSED_FORM_RTOL, atol=0)


@pytest.mark.parametrize("function", ["LOOKUP INVERT", "LOOKUP AREA"])
def test_lookup_functions_aicircle_cannot_compile_are_refused_by_name(tmp_path, function):
    path = write_mdl(tmp_path, TABLE, f"x = {function}(table, Time)")
    with pytest.raises(ac.UnsupportedFeature, match=f"{function} in 'x'"):
        ac.load(path)


GF_POINTS = "<xpts>2,4,6</xpts><ypts>1,5,3</ypts>"


def _extrapolated(t):
    return np.where(t < 2, 1 + 2 * (t - 2), np.where(t > 6, 3 - (t - 6), np.interp(t, [2, 4, 6], [1, 5, 3])))


@pytest.mark.parametrize("variables", [
    f'<gf name="g" type="extrapolate">{GF_POINTS}</gf><aux name="x"><eqn>g(Time)</eqn></aux>',
    # the same graphical function inline (PySD 3.14 ignores the type there and holds)
    f'<aux name="x"><eqn>Time</eqn><gf type="extrapolate">{GF_POINTS}</gf></aux>',
], ids=["named", "inline"])
def test_xmile_extrapolating_graphical_function_continues_its_end_slopes(tmp_path, variables):
    path = write_xmile(tmp_path, variables)
    t = euler_times(10, 0.5)
    np.testing.assert_allclose(run(path, "x").to_numpy(), _extrapolated(t), rtol=CLOSED_FORM_RTOL, atol=0)


def test_xmile_discrete_graphical_function_holds_backward(tmp_path):
    path = write_xmile(tmp_path, f'<gf name="g" type="discrete">{GF_POINTS}</gf>'
                                 '<aux name="x"><eqn>g(Time)</eqn></aux>')
    t = euler_times(10, 0.5)
    expected = np.where(t < 4, 1.0, np.where(t < 6, 5.0, 3.0))
    np.testing.assert_array_equal(run(path, "x").to_numpy(), expected)


# --------------------------------------------------------------------------- input functions

@pytest.mark.parametrize("expression, expected", [
    ("STEP(2, 3)", lambda t: 2.0 * (t >= 3)),
    ("PULSE(3, 2)", lambda t: 1.0 * ((t >= 3) & (t < 5))),
    ("PULSE TRAIN(1, 1, 3, 8)", lambda t: 1.0 * (((t >= 1) & (t < 2)) | ((t >= 4) & (t < 5))
                                                  | ((t >= 7) & (t < 8)))),
    ("RAMP(2, 3, 6)", lambda t: 2.0 * (np.clip(t, 3, 6) - 3)),
    ("RAMP(2, 3, 100)", lambda t: 2.0 * np.maximum(t - 3, 0)),
])
def test_input_function_follows_its_definition(tmp_path, expression, expected):
    path = write_mdl(tmp_path, f"x = {expression}", time_step=0.5)
    np.testing.assert_array_equal(run(path, "x").to_numpy(), expected(euler_times(10, 0.5)))


@pytest.mark.parametrize("time_step", [1, 0.25])
@pytest.mark.parametrize("equations", [
    ["x = STEP(2, 3.3)", "y = PULSE(2.5, 0.7)", "z = RAMP(-1, 2.2, 7.9)"],
    ["x = PULSE TRAIN(1, 0.5, 2.5, 8)", "y = PULSE TRAIN(0, 2, 3, 100)", "z = PULSE(3, 0)"],
], ids=["step-pulse-ramp", "pulse-trains"])
@pysd_reference
def test_input_functions_equal_pysd(tmp_path, equations, time_step):
    path = write_mdl(tmp_path, *equations, time_step=time_step)
    assert_same_as_pysd(path, tmp_path, ["x", "y", "z"])


@pysd_reference
def test_pulse_train_with_zero_interval_is_one_pulse_like_pysd(tmp_path):
    # PySD: a repeat time of 0 gives a single pulse (pysd.py_backend.functions.pulse)
    path = write_mdl(tmp_path, "x = PULSE TRAIN(2, 1, 0, 8)", final_time=6)
    assert run(path, "x").tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert_same_as_pysd(path, tmp_path, ["x"])


# --------------------------------------------------------------------------- smooths and delays

DT, TAU = 0.25, 4.0


@pytest.mark.parametrize("expression, order", [
    ("SMOOTHI(1, 4, 0)", 1),
    ("SMOOTH3I(1, 4, 0)", 3),
    ("SMOOTH N(1, 4, 0, 5)", 5),
    ("DELAY1I(1, 4, 0)", 1),
    ("DELAY3I(1, 4, 0)", 3),
    ("DELAY N(1, 4, 0, 5)", 5),
])
def test_smooth_and_delay_of_a_unit_input_follow_the_euler_cascade(tmp_path, expression, order):
    # An order-N smooth or delay is N first-order stages of time TAU/N. Under Euler each
    # stage moves a fraction p = N*DT/TAU of the way to the stage before, so stage k
    # after n steps holds P(Binomial(n, p) >= k); order 1 is 1 - (1 - DT/TAU)^n.
    path = write_mdl(tmp_path, f"x = {expression}", time_step=DT)
    n = np.arange(len(euler_times(10, DT)))
    expected = stats.binom.sf(order - 1, n, order * DT / TAU)
    # atol: values that are exactly 0 in one and ~1e-17 in the other (rounding)
    np.testing.assert_allclose(run(path, "x").to_numpy(), expected, rtol=CLOSED_FORM_RTOL, atol=1e-15)


def test_smooth_of_a_step_closes_the_gap_geometrically(tmp_path):
    path = write_mdl(tmp_path, "x = STEP(1, 2)", "y = SMOOTH(x, 4)", time_step=DT)
    t = euler_times(10, DT)
    steps_since = np.maximum(np.round((t - 2) / DT), 0)
    expected = np.where(t >= 2, 1 - (1 - DT / TAU) ** steps_since, 0.0)
    # atol: 1 - (1 - p)^0 is exactly 0; the recursion's first values are rounding-sized
    np.testing.assert_allclose(run(path, "y").to_numpy(), expected, rtol=CLOSED_FORM_RTOL, atol=1e-15)


@pytest.mark.parametrize("expression", ["SMOOTH(7, 3)", "SMOOTH3(7, 3)", "DELAY1(7, 3)", "DELAY3(7, 3)",
                                        "SMOOTH N(7, 3, 7, 2)", "DELAY N(7, 3, 7, 2)"])
def test_smooth_or_delay_of_a_constant_starts_and_stays_at_it(tmp_path, expression):
    path = write_mdl(tmp_path, f"x = {expression}", time_step=DT)
    np.testing.assert_allclose(run(path, "x").to_numpy(), 7.0, rtol=CLOSED_FORM_RTOL)


def test_delay_fixed_shifts_its_input_by_the_delay_time(tmp_path):
    path = write_mdl(tmp_path, "x = DELAY FIXED(Time * Time, 3, -1)", time_step=0.5)
    t = euler_times(10, 0.5)
    np.testing.assert_array_equal(run(path, "x").to_numpy(), np.where(t < 3, -1.0, (t - 3) ** 2))


@pytest.mark.parametrize("equations", [
    ["input = STEP(1, 2) + RAMP(1, 5, 10)", "a = SMOOTH(input, 3)", "b = SMOOTHI(input, 3, 5)",
     "c = SMOOTH3(input, 3)", "d = SMOOTH3I(input, 3, 5)", "e = SMOOTH N(input, 3, 2, 4)",
     "f = SMOOTH(input, 2 + Time / 5)"],
    ["input = STEP(1, 2) + RAMP(1, 5, 10)", "a = DELAY1(input, 3)", "b = DELAY1I(input, 3, 5)",
     "c = DELAY3(input, 3)", "d = DELAY3I(input, 3, 5)", "e = DELAY N(input, 3, 2, 4)",
     "f = DELAY N(input, 2 + Time / 5, 1, 3)"],
    ["input = STEP(1, 2) + RAMP(1, 5, 10)", "a = DELAY FIXED(input, 3, 7)", "b = DELAY FIXED(input, 1.3, 0)",
     "c = DELAY1(input, 2 + Time / 5)", "d = DELAY3(input, 2 + Time / 5)",
     "e = SMOOTH3(input, 2 + Time / 5)", "f = SMOOTH N(input, 2 + Time / 5, 0, 2)"],
    ["input = 1 + RAMP(1, 2, 20) + STEP(-3, 6)", "a = TREND(input, 3, 0.1)", "b = FORECAST(input, 3, 2)",
     "c = TREND(input, 1 + Time / 4, 0)", "d = FORECAST(input, 2, Time)", "e = input", "f = 0"],
], ids=["smooths", "delays", "variable-times", "trend-forecast"])
@pysd_reference
def test_stateful_builtins_equal_pysd(tmp_path, equations):
    # TIME STEP 1/4 keeps order x TIME STEP below every delay time: PySD lowers a
    # delay's order otherwise, and Vensim (so aicircle) does not.
    path = write_mdl(tmp_path, *equations, time_step=0.25, final_time=15)
    assert_same_as_pysd(path, tmp_path, list("abcdef"))


def test_trend_starts_at_its_initial_trend(tmp_path):
    path = write_mdl(tmp_path, "x = TREND(5, 3, 0.1)", "y = TREND(5 + Time, 2, -0.2)")
    frame = run(path)
    assert frame["x"].iloc[0] == pytest.approx(0.1, rel=1e-12)  # rounding of (c - c/(1+0.3))/...
    assert frame["y"].iloc[0] == pytest.approx(-0.2, rel=1e-12)


# --------------------------------------------------------------------------- initial values

def test_initial_freezes_the_value_at_the_start(tmp_path):
    path = write_mdl(tmp_path, "s = INTEG(1, 2)", "x = INITIAL(s * 3)")
    frame = run(path)
    assert (frame["x"] == 6.0).all()
    assert frame["s"].iloc[-1] == 12.0


def test_active_initial_breaks_a_loop_at_initialisation(tmp_path):
    # s starts from b's initial value 7; afterwards b follows its active equation
    path = write_mdl(tmp_path, "s = INTEG(b / 10, b)", "b = ACTIVE INITIAL(s * 2, 7)", final_time=3)
    frame = run(path)
    s = 7.0 * 1.2 ** np.arange(4)  # s' = s/5 at TIME STEP 1
    np.testing.assert_allclose(frame["s"].to_numpy(), s, rtol=CLOSED_FORM_RTOL)
    np.testing.assert_allclose(frame["b"].to_numpy(), 2 * s, rtol=CLOSED_FORM_RTOL)


def test_sample_if_true_holds_the_last_sample(tmp_path):
    path = write_mdl(tmp_path, "x = SAMPLE IF TRUE(MODULO(Time, 3) = 0, Time * 10, -1)",
                     "y = SAMPLE IF TRUE(Time > 4.5, Time, -1)", time_step=0.5)
    t = euler_times(10, 0.5)
    frame = run(path)
    np.testing.assert_array_equal(frame["x"].to_numpy(), 30 * np.floor(t / 3))
    np.testing.assert_array_equal(frame["y"].to_numpy(), np.where(t > 4.5, t, -1.0))


@pytest.mark.parametrize("equations", [
    ["s = INTEG(1 + x, 2)", "x = INITIAL(s * 3)", "y = ACTIVE INITIAL(s * 2, 7)",
     "z = SAMPLE IF TRUE(MODULO(Time, 3) = 0, s, -1)", "w = SAMPLE IF TRUE(s > 30, y, s)"],
], ids=["initial-sample"])
@pysd_reference
def test_initial_and_sample_builtins_equal_pysd(tmp_path, equations):
    path = write_mdl(tmp_path, *equations, time_step=0.5)
    assert_same_as_pysd(path, tmp_path, ["s", "x", "y", "z", "w"])


# --------------------------------------------------------------------------- constants and time settings

def test_unchangeable_constant_is_used_and_cannot_be_set(tmp_path):
    path = write_mdl(tmp_path, "c == 5", "x = c * 2")
    model = ac.load(path)
    assert (model.simulate()["x"] == 10.0).all()
    with pytest.raises(ac.InvalidInput, match="'c' is an unchangeable constant"):
        model.simulate(params={"c": 1.0})


def test_final_time_depending_on_time_ends_the_run_early(tmp_path):
    path = write_mdl(tmp_path, "s = INTEG(1, 0)", final_time="IF THEN ELSE(Time >= 4, 4, 10)",
                     time_step=0.5, saveper="TIME STEP * 2")
    frame = run(path)
    assert frame.index.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert frame["s"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("controls", [
    dict(final_time="IF THEN ELSE(Time >= 4, 4, 10)", time_step=0.5, saveper="TIME STEP * 2"),
    dict(initial_time="1 + 1", final_time="start + 6", time_step="1 / 8", saveper="0.25"),
], ids=["final-time-of-time", "expressions"])
@pysd_reference
def test_control_variables_given_by_expressions_equal_pysd(tmp_path, controls):
    path = write_mdl(tmp_path, "s = INTEG(r * s, 1)", "r = 0.1", "start = 2", "x = SMOOTH(s, 2)", **controls)
    assert_same_as_pysd(path, tmp_path, ["s", "x", "FINAL TIME", "TIME STEP", "SAVEPER"])


@pytest.mark.parametrize("equations, params", [
    (["k = 2", "a = INITIAL(k * Time + k)", "s = INTEG(k, k * 3)"], {"k": 5}),
    (["k = 2", "a = ACTIVE INITIAL(s * 2, k)", "s = INTEG(1, a)"], {"k": 5}),
    (["k = 2", "input = STEP(1, 1) + Time", "a = DELAY FIXED(input, k, 0)", "b = SMOOTHI(input, k, k)",
      "c = DELAY1I(input, k, k)", "d = TREND(input, k, 0.1)",
      "e = SAMPLE IF TRUE(Time > k, input, k)"], {"k": 3}),
    (["k = 2", "table((0,0),(10,10))", "a = table(Time * k)", "b = WITH LOOKUP(Time / k, ((0,0),(10,10)))"],
     {"k": 0.5}),
    (["k = 2", "a = k * 3", "s = INTEG(a, a)", "b = INITIAL(a)"], {"a": 7}),
    (["k = 2", "a = PULSE TRAIN(1, k / 4, k, 9)", "b = RAMP(k, k, 2 * k)", "c = STEP(k, k)"], {"k": 3}),
], ids=["initial", "active-initial", "stateful", "lookups", "auxiliary", "inputs"])
@pysd_reference
def test_an_overridden_constant_reaches_every_use_like_pysd(tmp_path, equations, params):
    path = write_mdl(tmp_path, *equations, time_step=0.5)
    columns = [e.split("=")[0].split("(")[0].strip() for e in equations]
    assert_same_as_pysd(path, tmp_path, [c for c in columns if c != "table"], params=params)


@pytest.mark.parametrize("builtin", ["DELAY N(input, 4, 0, order)", "SMOOTH N(input, 4, 0, order)"])
@pysd_reference
def test_changing_a_delay_order_through_params_is_never_silently_ignored(tmp_path, builtin):
    # The order of DELAY N and SMOOTH N fixes how many states there are. A run given
    # another order must either honour it (as PySD's run(params=...) does) or refuse it
    # naming the parameter; returning the old order's numbers would be a wrong answer.
    path = write_mdl(tmp_path, "input = STEP(1, 1)", "order = 3", f"x = {builtin}", time_step=0.25)
    model = ac.load(path)
    expected = pysd_run(path, tmp_path, params={"order": 5})["x"].to_numpy(dtype=float)
    try:
        got = model.simulate(params={"order": 5})["x"].to_numpy()
    except ac.InvalidInput as err:
        assert "'order'" in str(err)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=PYSD_RTOL)  # values in [0, 1]


# --------------------------------------------------------------------------- macros

MACRO = """\
:MACRO: EXPSMOOTH(input, delay time)
EXPSMOOTH = INTEG((input - EXPSMOOTH) / delay time, input)
\t~\tinput
\t~\tA first-order exponential smooth written as a macro.
\t|

:END OF MACRO:
"""


def test_each_macro_call_has_its_own_state(tmp_path):
    path = write_mdl(tmp_path, MACRO, "x = STEP(1, 2)", "a = EXPSMOOTH(x, 2)", "b = EXPSMOOTH(x, 4)",
                     "c = EXPSMOOTH(Time, 1)", time_step=DT)
    frame = run(path)
    t = euler_times(10, DT)
    steps_since = np.maximum(np.round((t - 2) / DT), 0)
    for column, tau in (("a", 2.0), ("b", 4.0)):
        expected = np.where(t >= 2, 1 - (1 - DT / tau) ** steps_since, 0.0)
        # atol: where the closed form is exactly 0 the recursion may hold rounding
        np.testing.assert_allclose(frame[column].to_numpy(), expected, rtol=CLOSED_FORM_RTOL, atol=1e-15)
    # smoothing Time with time 1 lags it by 1 (minus the initial transient (1 - DT)^n)
    n = np.arange(len(t))
    np.testing.assert_allclose(frame["c"].to_numpy(), t - 1 + (1 - DT) ** n, rtol=CLOSED_FORM_RTOL)


@pysd_reference
def test_macros_equal_pysd(tmp_path):
    path = write_mdl(tmp_path, MACRO, "x = STEP(1, 2) + RAMP(0.5, 4, 8)", "a = EXPSMOOTH(x, 2)",
                     "b = EXPSMOOTH(EXPSMOOTH(x, 1), 3)", "c = a + EXPSMOOTH(a, 2)", time_step=DT)
    assert_same_as_pysd(path, tmp_path, ["a", "b", "c"])


def test_macro_variables_are_not_model_variables(tmp_path):
    path = write_mdl(tmp_path, MACRO, "a = EXPSMOOTH(Time, 2)")
    model = ac.load(path)
    assert set(model.variables) == {"a", "INITIAL TIME", "FINAL TIME", "TIME STEP", "SAVEPER"}
    assert model.stocks == ()


# --------------------------------------------------------------------------- what the compiler refuses

SUBSCRIPTED = (
    "region: north, south, east ~ ~ |",
    "north south: north, south ~ ~ |",
    "age: young, mid, old ~ ~ |",
    "older: mid, old ~ ~ |",
    "younger: young, mid -> older ~ ~ |",
    "capacity[region] = 2, 3, 5 ~ ~ |",
    "population[region, age] = INTEG(inflow[region, age] - outflow[region, age], capacity[region] * 10) ~ ~ |",
    "outflow[region, age] = population[region, age] / 20 ~ ~ |",
    "inflow[region, young] = births[region] ~~|\ninflow[region, older] = outflow[region, younger] ~ ~ |",
    "births[north south] = 4 ~~|\nbirths[east] = 1 + Time / 10 ~ ~ |",
    "total = SUM(population[region!, age!]) ~ ~ |",
    "oldest[age] = VMAX(population[region!, age]) ~ ~ |",
    "smoothed[region] = SMOOTH(births[region], 2) ~ ~ |",
    "rank[region] = VECTOR RANK(capacity[region], 1) ~ ~ |",
)


@pysd_reference
@pytest.mark.filterwarnings("ignore:The inplace keyword")  # PySD's flattening of subscripted output (Pandas4Warning)
def test_subscripted_model_equals_pysd_element_by_element(tmp_path):
    # one equation per variable computes all its elements: mappings (later -> age),
    # subranges, partial definitions, SUM/VMAX over "!" dimensions, a subscripted SMOOTH
    path = write_mdl(tmp_path, *SUBSCRIPTED, time_step=0.25)
    columns = [f"population[{r},{a}]" for r in ("north", "south", "east") for a in ("young", "mid", "old")]
    assert_same_as_pysd(path, tmp_path, columns + ["total", "oldest[young]", "oldest[old]", "smoothed[east]",
                                                   "rank[north]", "rank[east]"])


def test_subscripted_constants_are_set_whole_by_element_or_as_a_dataarray(tmp_path):
    import xarray as xr

    model = ac.load(write_mdl(tmp_path, *SUBSCRIPTED))
    first = lambda params: model.simulate(params=params, return_columns=["capacity"]).iloc[0].tolist()  # noqa: E731
    assert first(None) == [2.0, 3.0, 5.0]
    assert first({"capacity": 7}) == [7.0, 7.0, 7.0]
    assert first({"capacity": {"south": 1}}) == [2.0, 1.0, 5.0]
    assert first({"capacity[east]": 4}) == [2.0, 3.0, 4.0]
    da = xr.DataArray([9.0, 8.0, 7.0], dims=["region"], coords={"region": ["east", "south", "north"]})
    assert first({"capacity": da}) == [7.0, 8.0, 9.0]
    assert "capacity[south]" in model.parameters.index


def test_subscripted_batch_has_the_model_dimensions_and_equals_single_runs(tmp_path):
    model = ac.load(write_mdl(tmp_path, *SUBSCRIPTED))
    table = pd.DataFrame({"capacity[north]": [1.0, 2.0, 4.0]})
    ds = model.simulate_batch(table, return_columns=["population", "total"])
    assert ds["population"].dims == ("set", "time", "region", "age")
    assert ds["total"].dims == ("set", "time")
    for s, value in enumerate(table["capacity[north]"]):
        single = model.simulate(params={"capacity[north]": value}, return_columns=["population"])
        np.testing.assert_array_equal(ds["population"].isel(set=s).sel(region="north", age="old"),
                                      single["population[north,old]"])


def test_an_unresolvable_subscript_is_refused_naming_it(tmp_path):
    path = write_mdl(tmp_path, "region: north, south ~ ~ |", "age: young, old ~ ~ |",
                     "x[region] = 1 ~ ~ |", "y[age] = x[region] ~ ~ |")
    with pytest.raises(ac.UnsupportedFeature, match=r"the subscript 'region' in 'y'"):
        ac.load(path)


def test_random_functions_draw_once_per_step_reproducibly_by_seed_and_per_set(tmp_path):
    path = write_mdl(tmp_path, "u = RANDOM UNIFORM(2, 4, 7)", "n = RANDOM NORMAL(-1, 1, 0, 0.5, 3)",
                     "e = RANDOM EXPONENTIAL(0, 10, 1, 2, 3)", "s = INTEG(u, 0)", final_time=4000)
    model = ac.load(path)
    run = model.simulate(seed=1)
    pd.testing.assert_frame_equal(run, model.simulate(seed=1))
    assert not run["u"].equals(model.simulate(seed=2)["u"])
    # the stock integrates the draw its step used (one draw per step, as Vensim)
    np.testing.assert_allclose(np.diff(run["s"]), run["u"].to_numpy()[:-1], rtol=1e-12)
    # bounds hold; means within 5 standard errors of the truncated distributions' (4001 draws)
    assert run["u"].between(2, 4).all() and run["n"].between(-1, 1).all() and run["e"].between(1, 10).all()
    assert abs(run["u"].mean() - 3.0) < 5 * (2 / math.sqrt(12)) / math.sqrt(len(run))
    truncated = stats.truncnorm(-2, 2, loc=0, scale=0.5)
    assert abs(run["n"].mean() - truncated.mean()) < 5 * truncated.std() / math.sqrt(len(run))
    batch = model.simulate_batch(pd.DataFrame(index=range(3)), return_columns=["u"], seed=1)
    np.testing.assert_array_equal(batch["u"].isel(set=0), run["u"])  # set 0 is the single run
    assert not np.array_equal(batch["u"].isel(set=1), batch["u"].isel(set=2))  # sets independent


@pytest.mark.parametrize("expression, construct", [
    ("GET TIME VALUE(1, 0, 0)", "GET TIME VALUE relative to the initial time"),  # PySD refuses it too
    ("GET TIME VALUE(2, 0, 1)", "GET TIME VALUE of the computer's clock"),  # no run would repeat
    ("GET TIME VALUE(0, 0, 3)", "GET TIME VALUE other than in the model's time units (measure 0)"),
])
def test_unsupported_function_is_refused_by_name(tmp_path, expression, construct):
    path = write_mdl(tmp_path, "y = 1", f"x = y + {expression}")
    with pytest.raises(ac.UnsupportedFeature, match=re.escape(f"{construct} in 'x'")):
        ac.load(path)


def test_circular_definition_is_refused_naming_the_loop(tmp_path):
    path = write_mdl(tmp_path, "a = b + 1", "b = a * 2")
    with pytest.raises(ac.UnsupportedFeature, match=r"circular definition: (a -> b -> a|b -> a -> b)"):
        ac.load(path)


@pytest.mark.slow
def test_a_sum_of_5000_terms_compiles_and_adds_up(tmp_path):
    # long sums exist in Vensim models; the generated code must stay flat (it used to
    # nest one call per term: RecursionError from 600 terms). Terms are small integers,
    # so the sum is exact in any order.
    terms = " + ".join(f"a{i % 10}" for i in range(5000))
    minus = " - ".join(["x"] * 5000)  # x - x - ... : x * (2 - 5000)
    path = write_mdl(tmp_path, f"s = {terms}", f"y = {minus}", "x = INTEG(s, 0)",
                     *[f"a{i} = {i}" for i in range(10)], final_time=2)
    frame = run(path)
    assert (frame["s"] == 22500.0).all()  # 500 * (0 + 1 + ... + 9)
    np.testing.assert_array_equal(frame["y"], -4998.0 * frame["x"])


def test_an_expression_nested_too_deep_is_refused_not_a_crash(tmp_path):
    # a chain of divisions is not reassociated (that would change the result), so 200 of
    # them nest 200 deep: refused by name (exit 2), not a RecursionError (exit 1)
    chain = " / ".join(["a"] * 200)
    path = write_mdl(tmp_path, f"y = {chain}", "a = 1")
    with pytest.raises(ac.UnsupportedFeature, match=r"'y' nests more than 80 levels"):
        ac.load(path)


def test_a_short_sum_keeps_vensims_left_to_right_order(tmp_path):
    # 1e16 + 1 - 1e16 is 0 left to right (the 1 is lost to rounding), 1 another way
    path = write_mdl(tmp_path, "y = 1e16 + 1 - 1e16")
    assert (run(path, "y") == 0.0).all()


def test_a_name_defined_twice_is_refused_naming_its_definitions_not_its_diagram(tmp_path):
    # the diagram (<views>) names the variable a third time: that line defines nothing
    path = write_xmile(tmp_path, '    <aux name="Rate"><eqn>1</eqn></aux>\n'
                                 '    <aux name="rate"><eqn>2</eqn></aux>')
    views = '</variables>\n  <views><view>\n    <aux name="Rate" x="1" y="2"/>\n  </view></views>'
    path.write_text(path.read_text(encoding="utf-8").replace("</variables>", views), encoding="utf-8")
    with pytest.raises(ac.ModelReadError, match=r"'Rate' and 'rate' are two definitions .*\(lines 8 and 9\)"):
        ac.load(path)


def test_a_stock_starting_from_a_random_draw_starts_from_the_runs_own_draw(tmp_path):
    # it used to start from 0.5 (a placeholder, not a draw) whatever the seed
    path = write_mdl(tmp_path, "u = RANDOM UNIFORM(2, 4, 7)", "s = INTEG(0, u)",
                     "k = INITIAL(RANDOM 0 1())", "t = INTEG(0, k)", final_time=3)
    model = ac.load(path)
    run = model.simulate(seed=1)
    # the initial value is the draw the random function takes at the initial time
    assert run["s"].iloc[0] == run["u"].iloc[0]
    assert (run["s"] == run["u"].iloc[0]).all() and run["u"].iloc[0] != 3.0
    assert (run["t"] == run["k"]).all()
    starts = [model.simulate(seed=seed)["s"].iloc[0] for seed in range(20)]
    assert len(set(starts)) == 20 and all(2 <= s <= 4 for s in starts)
    assert model.simulate(seed=1)["s"].iloc[0] == run["s"].iloc[0]  # reproducible by seed
    batch = model.simulate_batch(pd.DataFrame(index=range(3)), return_columns=["s"], seed=1)
    assert batch["s"].isel(set=0, time=0) == run["s"].iloc[0]
    assert len(set(batch["s"].isel(time=0).values)) == 3  # each set its own draw
    # without a run there is no draw to start from: refused, not a placeholder
    with pytest.raises(ac.UnsupportedFeature, match=r"initial value of 'u' is a random draw"):
        model.initial_state()


def test_get_time_value_is_the_time_plus_its_offset(tmp_path):
    # PySD's get_time_value(time, 0, offset, 0) is time() + offset (relative to the current time)
    path = write_mdl(tmp_path, "x = GET TIME VALUE(0, -2.5, 0)", "y = GET TIME VALUE(0, k, 0)", "k = 3",
                     final_time=4, time_step=0.5)
    frame = run(path)
    np.testing.assert_array_equal(frame["x"], frame.index - 2.5)
    np.testing.assert_array_equal(frame["y"], frame.index + 3)


def test_an_operation_written_twice_is_computed_once_with_the_same_values(tmp_path):
    # Two STEPs share t + dt/2, and y repeats x's product: the hot path computes each once
    # (a run costs its number of numpy calls), and every value stays what the equations say.
    path = write_mdl(tmp_path, "a = 2 + 0 * Time", "b = 3 + 0 * Time", "x = a * b * STEP(1, 4)",
                     "y = a * b * STEP(1, 6) + a * b", "s = INTEG(x + y, 0)", time_step=0.5)
    model = ac.load(path)
    rhs = model._program(frozenset(), ()).source_code.split("def rhs", 1)[1].split("def controls")[0]
    calls = re.findall(r"_(\w+)\(([^)]*), _b\d+\)", rhs)
    assert len(calls) == len(set(calls))  # no operation of the same names twice
    assert sum(1 for f, args in calls if f == "divide" and args.startswith("dt,")) == 1
    t = euler_times(10, 0.5)
    frame = model.simulate()
    np.testing.assert_array_equal(frame["x"].to_numpy(), 6.0 * (t + 0.25 > 4))
    np.testing.assert_array_equal(frame["y"].to_numpy(), 6.0 * (t + 0.25 > 6) + 6.0)

"""Equilibria, continuation and bifurcations (aicircle._continuation) on systems solved by hand.

Accuracy notes used by the tolerances below. Jacobians are central
differences with relative step eps**(1/3) ~ 6e-6, accurate to about 1e-10
relative (exact up to roundoff for quadratic terms). Refined folds and Hopf
points solve the extended systems to that accuracy; on these examples the
errors measured are below 1e-15 (folds of cubic/quadratic fields) and about
1e-11 (Hopf points, where cubic terms leave an O(h**2) difference error).
"""

import numpy as np
import pytest

from aicircle import _continuation as cont
from aicircle.errors import InvalidInput

SQRT3 = np.sqrt(3.0)


def saddle_node(y, r):
    """x' = r + x**2: equilibria x = -+sqrt(-r) for r < 0, a fold at r = 0, x = 0."""
    return r + y**2


def s_curve(y, a):
    """x' = a + 3x - x**3.

    Equilibria: a = x**3 - 3x. Folds where df/dx = 3 - 3x**2 = 0, i.e. x = +-1:
    at x = 1, a = 1 - 3 = -2; at x = -1, a = -1 + 3 = 2. The middle branch
    (|x| < 1) has df/dx > 0 (unstable), the outer ones df/dx < 0 (stable).
    """
    return a + 3 * y - y**3


def fast_slow(eps):
    """Two stocks: a bistable fast x and a slow y that follows x.

    x' = a + 3x - x**3 - y,  y' = eps (x - y).

    Equilibria: y = x and a + 2x - x**3 = 0, i.e. a = x**3 - 2x.
    Jacobian J = [[3 - 3x**2, -1], [eps, -eps]]:
      det J = -eps (3 - 3x**2) + eps = eps (3x**2 - 2),
      tr J  = 3 - 3x**2 - eps.
    Folds (det J = 0): x**2 = 2/3, x = -+sqrt(2/3), a = x (x**2 - 2) = +-(4/3) sqrt(2/3)
      = +-4 sqrt(6) / 9 ~ +-1.0886621.
    Hopf (tr J = 0 with det J > 0): x**2 = 1 - eps/3, which needs 1 - eps/3 > 2/3, i.e. eps < 1.
      For eps = 0.1: x**2 = 29/30, a = x (x**2 - 2) = -+(31/30) sqrt(29/30) ~ -+1.0159651,
      omega**2 = det J = 0.1 (3 * 29/30 - 2) = 0.09, omega = 0.3.
    """

    def f(Y, a):
        x, y = Y
        return np.array([a + 3 * x - x**3 - y, eps * (x - y)])

    return f


def brusselator(A):
    """x' = A - (B + 1) x + x**2 y,  y' = B x - x**2 y, parameter B.

    Equilibrium (A, B / A); J = [[B - 1, A**2], [-B, -A**2]], tr J = B - 1 - A**2,
    det J = A**2 > 0: a Hopf point at B = 1 + A**2 with omega = sqrt(det J) = A.
    """

    def f(Y, B):
        x, y = Y
        return np.array([A - (B + 1) * x + x**2 * y, B * x - x**2 * y])

    return f


def bogdanov_takens(beta2):
    """x' = y,  y' = b1 + beta2 x + x**2 - x y, parameter b1.

    Equilibria: y = 0, x**2 + beta2 x + b1 = 0, a fold at b1 = beta2**2 / 4, x = -beta2 / 2.
    J = [[0, 1], [beta2 + 2x, -x]], tr J = -x, det J = -(beta2 + 2x). At b1 = 0 the
    equilibrium x = 0 has tr J = 0 and det J = -beta2:
      beta2 = +1: eigenvalues +-1, a neutral saddle (not a Hopf point);
      beta2 = -1: eigenvalues +-i, a Hopf point with omega = 1.
    """

    def f(Y, b1):
        x, y = Y
        return np.array([y, b1 + beta2 * x + x**2 - x * y])

    return f


# --------------------------------------------------------------------------
# folds
# --------------------------------------------------------------------------


def test_fold_of_r_plus_x_squared_is_at_r_zero():
    diagram = cont.bifurcations(saddle_node, 1, (-1.0, 1.0), seed=0)
    assert len(diagram.folds) == 1
    fold = diagram.folds[0]
    assert fold.refined
    # 1e-8: the brief's requirement; the extended system is exact for a quadratic (measured ~1e-30)
    assert abs(fold.p) < 1e-8
    assert abs(fold.state[0]) < 1e-8  # the extended system is regular at the fold, so x is as accurate as r
    assert diagram.hopf == ()


def test_s_curve_has_two_folds_each_reported_once():
    diagram = cont.bifurcations(s_curve, 1, (-3.0, 3.0), seed=0)
    assert [b.kind for b in diagram.folds] == ["fold", "fold"]
    # 1e-6: the brief's requirement (measured: exact to the last bit)
    np.testing.assert_allclose([b.p for b in diagram.folds], [-2.0, 2.0], rtol=0, atol=1e-6)
    np.testing.assert_allclose([b.state[0] for b in diagram.folds], [1.0, -1.0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("n_starts", [4, 64])
def test_s_curve_folds_do_not_depend_on_seed_or_sample_size(seed, n_starts):
    diagram = cont.bifurcations(s_curve, 1, (-3.0, 3.0), seed=seed, n_starts=n_starts)
    # 1e-6 as above: every seed refines the same two folds
    np.testing.assert_allclose([b.p for b in diagram.folds], [-2.0, 2.0], rtol=0, atol=1e-6)


def test_fast_slow_two_stock_model_matches_hand_derived_folds_and_hopf_points():
    diagram = cont.bifurcations(fast_slow(0.1), 2, (-3.0, 3.0), seed=0)
    a_fold = 4 * np.sqrt(6) / 9  # derivation in fast_slow's docstring
    x_fold = np.sqrt(2 / 3)
    # 1e-6: as for the S-curve (measured ~2e-16)
    np.testing.assert_allclose([b.p for b in diagram.folds], [-a_fold, a_fold], rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        [b.state for b in diagram.folds], [[x_fold, x_fold], [-x_fold, -x_fold]], rtol=0, atol=1e-6
    )
    a_hopf = 31 / 30 * np.sqrt(29 / 30)
    # 1e-6 on the Hopf points too: measured ~1e-11, the finite-difference error of cubic terms
    np.testing.assert_allclose([b.p for b in diagram.hopf], [-a_hopf, a_hopf], rtol=0, atol=1e-6)
    np.testing.assert_allclose([b.frequency for b in diagram.hopf], [0.3, 0.3], rtol=0, atol=1e-6)


def test_fast_slow_model_without_hopf_when_slow_variable_is_fast():
    # eps = 2 > 1: tr J = 0 would need x**2 = 1/3 < 2/3, where det J < 0 (a saddle), so no Hopf
    diagram = cont.bifurcations(fast_slow(2.0), 2, (-3.0, 3.0), seed=0)
    assert diagram.hopf == ()
    a_fold = 4 * np.sqrt(6) / 9  # the folds do not depend on eps
    np.testing.assert_allclose([b.p for b in diagram.folds], [-a_fold, a_fold], rtol=0, atol=1e-6)


def test_analytic_jacobian_gives_the_same_folds():
    diagram = cont.bifurcations(
        s_curve, 1, (-3.0, 3.0), seed=0, jac=lambda y, a: np.array([[3.0 - 3.0 * y[0] ** 2]])
    )
    np.testing.assert_allclose([b.p for b in diagram.folds], [-2.0, 2.0], rtol=0, atol=1e-6)  # as above


def test_folds_are_found_in_badly_scaled_units():
    # the S-curve with x in units 500 times smaller and a in units 1000 times larger
    def f(y, a):
        u = y / 500.0
        return 50.0 * (2000.0 * a + 3 * u - u**3)

    diagram = cont.bifurcations(f, 1, (-3e-3, 3e-3), seed=0, box=(-2000.0, 2000.0))
    # folds at 2000 a = -+2, y = +-500; relative 1e-6 as for the unscaled S-curve
    np.testing.assert_allclose([b.p for b in diagram.folds], [-1e-3, 1e-3], rtol=1e-6)
    np.testing.assert_allclose([b.state[0] for b in diagram.folds], [500.0, -500.0], rtol=1e-6)


def test_pitchfork_turning_point_is_not_reported_as_fold():
    # x' = p x - x**3: the branch x**2 = p turns at p = 0 where it meets x = 0 (a pitchfork), but
    # det df/dx = -2 x**2 keeps its sign along it, so it is not a saddle-node
    diagram = cont.bifurcations(lambda y, p: p * y - y**3, 1, (-1.0, 1.0), seed=0)
    assert diagram.folds == ()


def test_isola_is_followed_once_around_with_its_two_folds():
    # x' = 1 - x**2 - p**2: equilibria on the circle x**2 + p**2 = 1, folds at p = +-1
    branch = cont.continue_equilibria(lambda y, p: 1.0 - y**2 - p**2, [0.9], 0.0, (-2.0, 2.0))
    assert branch.closed
    assert [b.kind for b in branch.bifurcations] == ["fold", "fold"]
    # 1e-6 as for the S-curve
    np.testing.assert_allclose(sorted(b.p for b in branch.bifurcations), [-1.0, 1.0], rtol=0, atol=1e-6)


# --------------------------------------------------------------------------
# Hopf points
# --------------------------------------------------------------------------


def test_brusselator_hopf_is_at_b_two_with_frequency_one():
    diagram = cont.bifurcations(brusselator(1.0), 2, (1.0, 3.0), seed=0)
    assert diagram.folds == ()
    assert len(diagram.hopf) == 1
    hopf = diagram.hopf[0]
    assert hopf.refined
    # 1e-4: the brief's requirement (measured ~2e-11, the difference error of the x**2 y term)
    assert abs(hopf.p - 2.0) < 1e-4
    assert abs(hopf.frequency - 1.0) < 1e-4  # omega**2 = det J = A**2
    np.testing.assert_allclose(hopf.state, [1.0, 2.0], rtol=0, atol=1e-4)  # (A, B / A); as above
    # the critical pair is on the imaginary axis: 1e-8 = a few times the Jacobian's difference error
    assert np.min(np.abs(hopf.eigenvalues.real)) < 1e-8


@pytest.mark.parametrize(
    ("beta2", "hopf_points"),
    [
        (1.0, []),  # neutral saddle at b1 = 0: eigenvalues +-1
        (-1.0, [0.0]),  # genuine Hopf point at b1 = 0: eigenvalues +-i
    ],
)
def test_neutral_saddle_is_not_reported_as_hopf(beta2, hopf_points):
    diagram = cont.bifurcations(bogdanov_takens(beta2), 2, (-1.0, 1.0), seed=0)
    # 1e-6: as for the other refined points (measured: exact)
    np.testing.assert_allclose([b.p for b in diagram.hopf], hopf_points, rtol=0, atol=1e-6)
    np.testing.assert_allclose([b.frequency for b in diagram.hopf], [1.0] * len(hopf_points), atol=1e-6)
    np.testing.assert_allclose([b.p for b in diagram.folds], [0.25], rtol=0, atol=1e-6)  # b1 = beta2**2 / 4


def test_branch_through_neutral_saddle_has_real_pair_and_no_hopf():
    branch = cont.continue_equilibria(bogdanov_takens(1.0), [0.0, 0.0], 0.0, (-1.0, 1.0))
    # the starting point is the neutral saddle: eigenvalues +1 and -1 (1e-8: difference error, exact here)
    start = np.argmin(np.abs(branch.p) + np.abs(branch.states[:, 0]))
    np.testing.assert_allclose(branch.eigenvalues[start], [1.0, -1.0], atol=1e-8)
    assert [b.kind for b in branch.bifurcations] == ["fold"]


def test_centre_of_lotka_volterra_gives_no_hopf():
    # x' = x (a - y), y' = y (x - 1): the coexistence equilibrium (1, a) has eigenvalues +-i sqrt(a)
    # for every a; noise in the real part must not be read as Hopf points
    def f(Y, a):
        x, y = Y
        return np.array([x * (a - y), y * (x - 1.0)])

    diagram = cont.bifurcations(f, 2, (0.5, 2.0), seed=0, box=(0.01, 5.0))
    assert diagram.hopf == ()


# --------------------------------------------------------------------------
# branches and stability
# --------------------------------------------------------------------------


def test_s_curve_branch_passes_around_both_folds():
    branch = cont.continue_equilibria(s_curve, [-2.1], -3.0, (-3.0, 3.0))
    # it starts at a = -3 on the lower branch and ends at a = 3 on the upper one (1e-12: the end point
    # is solved at p = 3 exactly; the start is the exact starting value)
    assert abs(branch.p[0] + 3.0) < 1e-12 and abs(branch.p[-1] - 3.0) < 1e-12
    x = branch.states[:, 0]
    assert x[0] < -2.0 and x[-1] > 2.0
    # every point is an equilibrium (1e-9: Newton's tolerance is 1e-10 on scaled steps)
    np.testing.assert_allclose(branch.p, x**3 - 3 * x, rtol=0, atol=1e-9)
    # all three equilibria at a = 0 (x = -sqrt(3), 0, sqrt(3)) lie on this one branch: the branch
    # crosses a = 0 three times, and the states there (interpolated, 0.05: the step is at most 0.05
    # of the range, a chord's error is smaller) match them
    crossings = np.flatnonzero(branch.p[:-1] * branch.p[1:] <= 0)
    s = -branch.p[crossings] / (branch.p[crossings + 1] - branch.p[crossings])
    x0 = x[crossings] + s * (x[crossings + 1] - x[crossings])
    np.testing.assert_allclose(x0, [-SQRT3, 0.0, SQRT3], atol=0.05)
    assert [b.kind for b in branch.bifurcations] == ["fold", "fold"]
    assert branch.stop_reasons == (
        "reached the end of p_range at p = -3",
        "reached the end of p_range at p = 3",
    )


def test_stability_labels_on_s_curve_mark_middle_branch_unstable():
    branch = cont.continue_equilibria(s_curve, [-2.1], -3.0, (-3.0, 3.0))
    x = branch.states[:, 0]
    # away from the folds (|x| = 1, where the eigenvalue 3 - 3x**2 is 0) the labels are unambiguous
    middle, outer = np.abs(x) < 0.99, np.abs(x) > 1.01
    assert middle.any() and outer.any()
    assert np.all(branch.n_unstable[middle] == 1)
    assert np.all(branch.stable[outer])
    # eigenvalue 3 - 3 x**2 (1e-8: difference error ~1e-10 relative, times |lambda| <= 11)
    np.testing.assert_allclose(branch.eigenvalues[:, 0].real, 3 - 3 * x**2, rtol=0, atol=1e-8)


def test_find_equilibria_returns_the_three_s_curve_states_with_their_stability():
    equilibria = cont.find_equilibria(s_curve, 0.0, np.linspace(-3.0, 3.0, 13)[None, :])
    # 1e-9: Newton's step tolerance is 1e-10 relative and convergence is quadratic
    np.testing.assert_allclose(equilibria.states[:, 0], [-SQRT3, 0.0, SQRT3], rtol=0, atol=1e-9)
    assert equilibria.stable.tolist() == [True, False, True]
    assert equilibria.n_unstable.tolist() == [0, 1, 0]


def test_find_equilibria_from_a_guess_with_no_equilibrium_nearby_returns_none():
    # x' = r + x**2 has no equilibrium for r > 0: failing to find one is not an error
    equilibria = cont.find_equilibria(saddle_node, 1.0, [0.5])
    assert equilibria.states.shape == (0, 1)


def test_leading_eigenvalue_shows_critical_slowing_down_near_the_fold():
    r = np.array([-1.0, -0.01, -1e-4])
    x = -np.sqrt(-r)  # the stable equilibria of x' = r + x**2
    lead = cont.leading_eigenvalue(saddle_node, x[None, :], r)
    # df/dx = 2x = -2 sqrt(-r) -> 0 as r -> 0; 1e-9: difference error of a quadratic is roundoff only
    np.testing.assert_allclose(lead, -2 * np.sqrt(-r), rtol=1e-9)


def test_jacobians_of_many_points_take_one_call_of_f():
    calls = []

    def counted(y, p):
        calls.append(y.shape)
        return s_curve(y, p)

    cont.leading_eigenvalue(counted, np.zeros((1, 7)), np.zeros(7))
    assert calls == [(1, 7 * 3)]  # each point with its 2n = 2 perturbed copies, one call


def test_same_seed_gives_the_same_diagram():
    runs = [cont.bifurcations(fast_slow(0.1), 2, (-3.0, 3.0), seed=7, n_starts=16) for _ in range(2)]
    first, second = runs
    assert len(first.branches) == len(second.branches)
    for a, b in zip(first.branches, second.branches, strict=True):
        np.testing.assert_array_equal(a.p, b.p)
        np.testing.assert_array_equal(a.states, b.states)
    for kind in ("folds", "hopf"):
        p_first = [b.p for b in getattr(first, kind)]
        np.testing.assert_array_equal(p_first, [b.p for b in getattr(second, kind)])


# --------------------------------------------------------------------------
# smoothing helpers
# --------------------------------------------------------------------------

GRID = np.linspace(-3.0, 3.0, 1201)


@pytest.mark.parametrize("eps", [1e-3, 0.1, 1.0])
def test_smooth_max_and_min_stay_within_half_eps_of_the_exact_ones(eps):
    b = 0.3
    upper = cont.smooth_max(GRID, b, eps) - np.maximum(GRID, b)
    lower = np.minimum(GRID, b) - cont.smooth_min(GRID, b, eps)
    for err in (upper, lower):
        assert np.all(err > 0)
        assert np.max(err) <= eps / 2 * (1 + 1e-12)  # the documented bound, reached at a == b
    assert cont.smooth_max(b, b, eps) == pytest.approx(b + eps / 2, rel=1e-15)  # bound is attained


@pytest.mark.parametrize("eps", [1e-3, 0.1, 1.0])
def test_smooth_step_is_within_documented_bound_of_the_unit_step(eps):
    x = GRID[GRID != 0]
    err = np.abs(cont.smooth_step(x, eps) - (x > 0))
    # the documented bound; eps/2 (machine): 1 - 1e-27 rounds to 1 in double precision
    assert np.all(err <= np.exp(-2 * np.abs(x) / eps) * (1 + 1e-12) + np.finfo(float).eps / 2)
    assert cont.smooth_step(0.0, eps) == 0.5


@pytest.mark.parametrize("eps", [1e-3, 0.05])
def test_smooth_lookup_is_within_documented_bound_of_the_table(eps):
    xs, ys = np.array([-1.0, 0.0, 0.5, 2.0]), np.array([0.0, 1.0, 0.2, 0.2])
    slopes = np.diff(ys) / np.diff(xs)
    kink_sum = np.sum(np.abs(np.diff(np.concatenate([[0.0], slopes, [0.0]]))))
    err = np.abs(cont.smooth_lookup(GRID, xs, ys, eps) - np.interp(GRID, xs, ys))
    assert np.max(err) <= eps / 2 * kink_sum * (1 + 1e-12)  # the documented bound
    far = np.min(np.abs(GRID[:, None] - xs[None, :]), axis=1) > 20 * eps
    # more than 20 eps from every kink, each smoothed relu is off by at most eps**2 / (4 |z|) < eps / 80,
    # times that kink's slope change
    assert np.max(err[far]) <= eps / 80 * kink_sum


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------


@pytest.mark.parametrize("p_range", [(1.0, -1.0), (0.0, 0.0), (0.0, np.inf), (0.0,), "ab"])
def test_bad_p_range_is_rejected(p_range):
    with pytest.raises(InvalidInput, match="p_range"):
        cont.bifurcations(s_curve, 1, p_range)


def test_start_outside_p_range_is_rejected():
    with pytest.raises(InvalidInput, match="p0 = 5.0 is outside p_range"):
        cont.continue_equilibria(s_curve, [0.0], 5.0, (-3.0, 3.0))


def test_start_without_equilibrium_nearby_is_rejected():
    with pytest.raises(InvalidInput, match="found no equilibrium near y0"):
        cont.continue_equilibria(saddle_node, [0.5], 0.5, (-1.0, 1.0))


def test_vector_field_of_wrong_shape_is_rejected():
    with pytest.raises(InvalidInput, match="f must be vectorised"):
        cont.find_equilibria(lambda y, p: np.sum(y, axis=0), 0.0, [1.0, 2.0])


def test_guesses_with_wrong_number_of_states_are_rejected():
    with pytest.raises(InvalidInput, match="guesses must have 2 rows"):
        cont.bifurcations(fast_slow(0.1), 2, (-3.0, 3.0), guesses=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("eps", [0.0, -1.0, np.nan])
def test_non_positive_smoothing_width_is_rejected(eps):
    with pytest.raises(InvalidInput, match="eps must be"):
        cont.smooth_max(1.0, 2.0, eps)

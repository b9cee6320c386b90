"""Tipping points of textbook models (aicircle.tipping), through the Python API and the CLI.

Each model is a small Vensim file written into a temporary folder; each
expected value is derived by hand in the model's comment or the test.

Accuracy notes used by the tolerances below. Folds and Hopf points are
refined by Newton on the extended systems with central-difference Jacobians
(relative step eps**(1/3)), accurate to about 1e-10; on these models the
errors measured are below 1e-11 (folds) and 3e-11 (Hopf). The outcome
thresholds are bisected to a bracket of (hi - lo) * 1e-6 and read from Euler
runs at TIME STEP 0.01, whose passage times are off by O(dt).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq

import aicircle as ac
from aicircle import tipping
from aicircle.errors import InvalidInput, UnknownName
from aicircle.study import outcomes
from conftest import mdl_text


def _mdl(equations, final=10, initial=0, saveper=0.1):
    return mdl_text(equations, initial_time=initial, final_time=final, time_step=0.01, saveper=saveper)


# x' = r + x^2: equilibria x = -+sqrt(-r) for r < 0, one fold at r = 0, x = 0.
SADDLE_NODE = _mdl("""r = -1 ~ dmnl [-1,1] ~ the bifurcation parameter |
x = INTEG(r + x^2, -1) ~ dmnl ~ the normal form of a fold |
""")

# x' = a + 3x - x^3. Equilibria a = x^3 - 3x; df/dx = 3 - 3x^2 = 0 at x = +-1, so
# folds at (a, x) = (-2, 1) and (2, -1). The run starts on the lower branch (x = -2)
# and, for a > 2, jumps to the upper one through the bottleneck near x = -1.
S_CURVE = _mdl("""a = 0 ~ dmnl [-3,3] ~ the bifurcation parameter |
x = INTEG(a + 3*x - x^3, -2) ~ dmnl ~ an S-shaped curve of equilibria |
""", final=40)

# Two stocks, a bistable fast x and a slow y that follows x/2:
#   x' = (a + 3x - x^3 - y) / eps,   y' = x - 2y,   eps = 0.5.
# Equilibria: y = x/2 and a + 3x - x^3 - x/2 = 0, i.e. a = x^3 - 5x/2.
# Jacobian J = [[(3 - 3x^2)/eps, -1/eps], [1, -2]]:
#   det J = -2 (3 - 3x^2)/eps + 1/eps = (6x^2 - 5)/eps,
#   tr J  = (3 - 3x^2)/eps - 2.
# Folds (det J = 0): x^2 = 5/6, x = -+sqrt(5/6), a = x (x^2 - 5/2) = x (5/6 - 15/6) = -5x/3,
#   so a = +-(5/3) sqrt(5/6) ~ +-1.5214515, with y = x/2.
# Hopf (tr J = 0 with det J > 0): x^2 = 1 - 2 eps/3 and 6x^2 > 5 need eps < 1/4; with
#   eps = 0.5 there is none.
FAST_SLOW = _mdl("""a = 0 ~ dmnl [-3,3] ~ the bifurcation parameter |
eps = 0.5 ~ Year ~ time scale of the fast stock |
x = INTEG((a + 3*x - x^3 - y) / eps, -2) ~ dmnl ~ the fast, bistable stock |
y = INTEG(x - 2*y, -1) ~ dmnl ~ the slow stock |
""")
FAST_SLOW_FOLD = 5 / 3 * math.sqrt(5 / 6)

# The Brusselator with A = 1: X' = A - (B+1) X + X^2 Y, Y' = B X - X^2 Y.
# Equilibrium (A, B/A); J = [[B - 1, A^2], [-B, -A^2]], tr J = B - 1 - A^2, det J = A^2 > 0:
# no fold, one Hopf point at B = 1 + A^2 = 2 with omega = sqrt(det J) = A = 1.
BRUSSELATOR = _mdl("""A = 1 ~ dmnl ~ feed |
B = 1.5 ~ dmnl [1,3] ~ the bifurcation parameter |
X = INTEG(A - (B + 1)*X + X^2*Y, 1) ~ dmnl ~ activator |
Y = INTEG(B*X - X^2*Y, 1.5) ~ dmnl ~ inhibitor |
""")

# x' = a + 3x - x^3 started from a parameter x0: the shock is the initial state.
SHOCKED = _mdl("""a = 0 ~ dmnl [-3,3] ~ the bifurcation parameter |
x0 = -1.5 ~ dmnl [-3,3] ~ the initial state: the size of the shock |
x = INTEG(a + 3*x - x^3, x0) ~ dmnl ~ bistable |
""")

# x' = a + b + 3x - x^3 from x = -2: the S-curve driven by a + b.
TWO_PUSHES = _mdl("""a = 0 ~ dmnl [0,2] ~ one push |
b = 0 ~ dmnl [0,2] ~ another push |
x = INTEG(a + b + 3*x - x^3, -2) ~ dmnl ~ the S-curve driven by a + b |
""", final=20)

# The S-curve with a = slope * t ramped slowly from 0, started at the lower
# equilibrium of a = 0, x = -sqrt(3), and stopped at a = 1.95, short of the fold.
RAMP_SLOPE = 0.01
RAMP = _mdl(f"""slope = {RAMP_SLOPE} ~ 1/Year ~ speed of the ramp |
a = slope * Time ~ dmnl ~ the slowly ramped parameter |
x = INTEG(a + 3*x - x^3, {-math.sqrt(3)!r}) ~ dmnl ~ starts at the lower equilibrium of a = 0 |
""", final=195, saveper=1)

# x' = -k x: one eigenvalue, -k.
DECAY = _mdl("""k = 1 ~ 1/Year ~ decay rate |
x = INTEG(-k*x, 1) ~ dmnl ~ decays |
""", final=2, saveper=1)

# x' = -x and no parameter at all.
NO_PARAMETERS = _mdl("""x = INTEG(-x, 1) ~ dmnl ~ decays |
""", final=2, saveper=1)

# x' = 1: no equilibrium for any r.
NO_EQUILIBRIA = _mdl("""r = 0 ~ dmnl [-1,1] ~ a parameter that does not create equilibria |
x = INTEG(1 + 0*r, 0) ~ dmnl ~ always grows |
""", final=1)

# Confidence decays as exp(-k t) from 1 and capex stays flat: the first bust
# (confidence below 0.2) comes at t = ln(5)/k after the start.
DECAYING_CONFIDENCE = _mdl("""k = 1 ~ 1/Year ~ decay rate of confidence |
Investor Confidence = INTEG(-k * Investor Confidence, 1) ~ fraction ~ decays |
Hyperscaler Capex = 100 ~ $B/Year ~ flat: never half of its peak |
""", final=2035, initial=2025, saveper=0.05)


def _write(folder, text, name="model.mdl"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _cli(*args, cwd):
    """Run ``aicircle ARGS`` in a fresh interpreter; return the finished process."""
    return subprocess.run([sys.executable, "-m", "aicircle", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def _tipping_json(tmp_path, text, *args):
    """``aicircle tipping MODEL ARGS --json OUT``: check it succeeds; return the JSON."""
    model = _write(tmp_path, text)
    out = tmp_path / "tipping.json"
    done = _cli("tipping", model, *args, "--json", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    data = json.loads(out.read_text())
    _check_design_layout(data)
    return data


def _check_design_layout(data):
    """The JSON layout of docs/design.md §5 for ``tipping --json``."""
    assert set(data) == {"param", "range", "folds", "hopf", "thresholds"}
    assert isinstance(data["param"], str)
    assert len(data["range"]) == 2
    for fold in data["folds"]:
        assert set(fold) == {"value", "state"}
        assert all(isinstance(v, float) for v in fold["state"].values())
    for hopf in data["hopf"]:
        assert set(hopf) == {"value", "state", "frequency"}
    for th in data["thresholds"]:
        assert set(th) == {"horizon", "value", "from", "to"}


# A reduced core: two fast stocks x, y and a slow z that shifts them,
#   x' = y - x,   y' = r + x^2 - y + z,   z' = 0.01 (1 - z).
# With z frozen at z0 the core's equilibria are y = x, r + x^2 - x + z0 = 0, so
# x = (1 -+ sqrt(1 - 4 (r + z0))) / 2, and one fold at r = 1/4 - z0, x = y = 1/2
# (Jacobian [[-1, 1], [2x, -1]] is singular at x = 1/2).
REDUCED_CORE = _mdl("""r = 0 ~ dmnl [-1,1] ~ the bifurcation parameter |
x = INTEG(y - x, 0) ~ dmnl ~ fast |
y = INTEG(r + x^2 - y + z, 0) ~ dmnl ~ fast |
z = INTEG(0.01*(1 - z), 0) ~ dmnl ~ slow, frozen in the reduced core |
""", final=20)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The models above, each loaded once."""
    folder = tmp_path_factory.mktemp("models")
    texts = {"saddle_node": SADDLE_NODE, "s_curve": S_CURVE, "fast_slow": FAST_SLOW,
             "brusselator": BRUSSELATOR, "shocked": SHOCKED, "two_pushes": TWO_PUSHES,
             "ramp": RAMP, "decay": DECAY, "no_parameters": NO_PARAMETERS,
             "decaying_confidence": DECAYING_CONFIDENCE, "reduced_core": REDUCED_CORE}
    return {name: ac.load(_write(folder, text, f"{name}.mdl")) for name, text in texts.items()}


# --------------------------------------------------------------------------
# folds and Hopf points
# --------------------------------------------------------------------------


@pytest.mark.parametrize("year", [0.0, 10.0, 20.0])
def test_reduced_core_fold_moves_with_the_frozen_slow_stock(models, year):
    model = models["reduced_core"]
    state = model.state_at(year)
    z0 = float(state[list(model.state_names).index("z")])
    result = tipping.bifurcations(model, "r", -1, 1, free=["x", "y"], state=state, time=year)
    assert [f["value"] for f in result.folds] == pytest.approx([0.25 - z0], abs=1e-8)
    assert result.folds[0]["state"]["x"] == pytest.approx(0.5, abs=1e-6)
    assert result.frozen == {"z": pytest.approx(z0)}


def test_fold_of_the_saddle_node_normal_form_is_at_r_zero(models):
    result = tipping.bifurcations(models["saddle_node"], "r", -1, 1)
    assert len(result.folds) == 1
    # refined by Newton to ~1e-10 (module notes); measured ~1e-30
    assert abs(result.folds[0]["value"]) < 1e-8
    # x* = sqrt(-r): an error d in r moves x by sqrt(d), so 1e-4; measured ~1e-22
    assert abs(result.folds[0]["state"]["x"]) < 1e-4
    assert result.hopf == []


@pytest.mark.slow
def test_cli_writes_the_fold_of_the_saddle_node_in_the_design_layout(tmp_path):
    data = _tipping_json(tmp_path, SADDLE_NODE, "--param", "r", "--range", "-1", "1")
    assert data["param"] == "r"
    assert data["range"] == [-1.0, 1.0]
    assert [list(f["state"]) for f in data["folds"]] == [["x"]]
    assert abs(data["folds"][0]["value"]) < 1e-8  # as in the API test
    assert data["hopf"] == []
    assert data["thresholds"] == []  # no --outcome and not the capital-circle model


def _check_s_curve_folds(folds):
    # each fold once, in order of the parameter
    assert [round(f["value"]) for f in folds] == [-2, 2]
    for fold, (a, x) in zip(folds, [(-2.0, 1.0), (2.0, -1.0)]):
        assert fold["value"] == pytest.approx(a, abs=1e-6)  # Newton-refined: measured < 1e-11
        assert fold["state"]["x"] == pytest.approx(x, abs=1e-6)  # measured < 1e-11


def test_s_curve_has_one_fold_at_each_of_a_plus_minus_two(models):
    result = tipping.bifurcations(models["s_curve"], "a", -3, 3)
    _check_s_curve_folds(result.folds)
    assert result.hopf == []


@pytest.mark.slow
def test_cli_reports_each_fold_of_the_s_curve_once(tmp_path):
    data = _tipping_json(tmp_path, S_CURVE, "--param", "a", "--range", "-3", "3")
    _check_s_curve_folds(data["folds"])
    assert data["hopf"] == []


def _check_fast_slow_folds(folds):
    assert len(folds) == 2
    for fold, sign in zip(folds, [-1, 1]):
        x = -sign * math.sqrt(5 / 6)
        assert fold["value"] == pytest.approx(sign * FAST_SLOW_FOLD, abs=1e-6)  # measured 2e-16
        assert fold["state"]["x"] == pytest.approx(x, abs=1e-6)  # measured 4e-12
        assert fold["state"]["y"] == pytest.approx(x / 2, abs=1e-6)


def test_folds_of_a_two_stock_model_with_a_bistable_fast_stock_match_the_algebra(models):
    result = tipping.bifurcations(models["fast_slow"], "a", -3, 3)
    _check_fast_slow_folds(result.folds)
    assert result.free == ("x", "y")
    assert result.hopf == []  # eps = 0.5 > 1/4 (derivation in FAST_SLOW)


@pytest.mark.slow
def test_cli_reports_the_folds_of_the_two_stock_model(tmp_path):
    data = _tipping_json(tmp_path, FAST_SLOW, "--param", "a", "--range", "-3", "3")
    _check_fast_slow_folds(data["folds"])
    assert data["hopf"] == []


def _check_brusselator_hopf(hopf):
    assert len(hopf) == 1
    (h,) = hopf
    assert h["value"] == pytest.approx(2.0, abs=1e-4)  # B = 1 + A^2; measured 2e-11
    assert h["frequency"] == pytest.approx(1.0, abs=1e-4)  # omega^2 = A^2; measured 1e-15
    assert h["state"]["X"] == pytest.approx(1.0, abs=1e-4)  # (A, B/A)
    assert h["state"]["Y"] == pytest.approx(2.0, abs=1e-4)


def test_brusselator_has_one_hopf_point_at_b_two_with_frequency_one(models):
    result = tipping.bifurcations(models["brusselator"], "B", 1, 3)
    _check_brusselator_hopf(result.hopf)
    assert result.folds == []  # det J = A^2 never vanishes


@pytest.mark.slow
def test_cli_reports_the_brusselator_hopf_point_with_names_as_written(tmp_path):
    # the parameter is given in lower case; JSON names are as written in the model file
    data = _tipping_json(tmp_path, BRUSSELATOR, "--param", "b", "--range", "1", "3")
    assert data["param"] == "B"
    _check_brusselator_hopf(data["hopf"])
    assert data["folds"] == []


def test_a_fold_near_the_end_of_the_range_is_found(models):
    result = tipping.bifurcations(models["s_curve"], "a", 1.95, 2.5)
    assert [f["value"] for f in result.folds] == [pytest.approx(2.0, abs=1e-6)]


@pytest.mark.slow
def test_a_model_without_equilibria_gives_no_folds_and_exits_zero(tmp_path):
    data = _tipping_json(tmp_path, NO_EQUILIBRIA, "--param", "r", "--range", "-1", "1")
    # finding nothing is not an error (docs/design.md §5)
    assert (data["folds"], data["hopf"], data["thresholds"]) == ([], [], [])


# --------------------------------------------------------------------------
# outcome thresholds and their horizon bias
# --------------------------------------------------------------------------

HORIZONS = [5.0, 10.0, 20.0, 40.0]

# Passage time from x = -2 to x = 0 at a = 2 + mu. With u = x + 1,
# a + 3x - x^3 = mu + (x + 1)^2 (2 - x) = mu + 3u^2 - u^3, so
#   T(mu) = integral_{-1}^{1} du / (mu + 3u^2 - u^3).
# Near the fold this is the bottleneck of x' ~ mu + k u^2 with k = f''(-1)/2 = 3:
#   T(mu) ~ integral over the line du / (mu + 3u^2) - c = pi / sqrt(3 mu) - c, where
#   c = 2/3 (the tails |u| > 1 of the bottleneck integral, 2 * 1/3)
#     + PV integral_{-1}^{1} [1/(3u^2) - 1/(3u^2 - u^3)] du
#   and 1/(3u^2) - 1/(u^2 (3 - u)) = -1/(3u(3 - u)) = -(1/9) (1/u + 1/(3 - u)), whose
#   principal value is -(1/9) ln 2. So c = 2/3 - ln(2)/9 ~ 0.5897.
# The outcome x > 0 at horizon H switches where T(mu) = H: the threshold is 2 + mu_H with
#   mu_H ~ pi^2 / (3 (H + c)^2) ~ pi^2 / (3 H^2),
# above the fold and falling towards it as H grows.
PASSAGE_OFFSET = 2 / 3 - math.log(2) / 9


def _passage_time(mu):
    return quad(lambda u: 1 / (mu + 3 * u**2 - u**3), -1, 1, points=[0], limit=200)[0]


def _exact_bias(horizon):
    return brentq(lambda mu: _passage_time(mu) - horizon, 1e-9, 1.0, xtol=1e-14)


@pytest.fixture(scope="module")
def thresholds(models):
    found = tipping.outcome_thresholds(models["s_curve"], "a", 0, 3, horizons=HORIZONS,
                                       outcome="x>0")
    return pd.DataFrame(found).set_index("horizon")


@pytest.mark.slow  # the `thresholds` fixture bisects the S-curve at four horizons: about 1.5 s
def test_outcome_threshold_is_found_once_per_horizon_going_from_lower_to_upper_branch(thresholds):
    assert list(thresholds.index) == HORIZONS
    assert set(thresholds["from"]) == {"not x>0"}
    assert set(thresholds["to"]) == {"x>0"}


@pytest.mark.slow  # the `thresholds` fixture bisects the S-curve at four horizons: about 1.5 s
def test_outcome_threshold_approaches_the_fold_from_above_as_the_horizon_grows(thresholds):
    bias = thresholds["value"].to_numpy() - 2.0
    assert np.all(bias > 0)
    assert np.all(np.diff(bias) < 0)
    # the longest horizon is within twice the bottleneck estimate pi^2/(3 H^2) ~ 0.0021
    assert bias[-1] < 2 * math.pi**2 / (3 * HORIZONS[-1] ** 2)


@pytest.mark.slow  # the `thresholds` fixture bisects the S-curve at four horizons: about 1.5 s
@pytest.mark.parametrize("horizon", HORIZONS)
def test_horizon_bias_scales_like_the_bottleneck_passage_time(thresholds, horizon):
    bias = thresholds.loc[horizon, "value"] - 2.0
    # consistent with pi^2/(3 H^2) within a factor of 2 (measured ratios 0.79, 0.89, 0.94, 0.97)
    assert 0.5 < bias / (math.pi**2 / (3 * horizon**2)) < 2.0
    # and with the passage-time offset c: the next terms of T(mu) are O(sqrt(mu)), i.e. O(1/H);
    # measured |c_H - c| = 0.030, 0.021, 0.013, 0.006 for H = 5, 10, 20, 40
    c_measured = math.pi / math.sqrt(3 * bias) - horizon
    assert c_measured == pytest.approx(PASSAGE_OFFSET, abs=0.05)


@pytest.mark.slow  # the `thresholds` fixture bisects the S-curve at four horizons: about 1.5 s
@pytest.mark.parametrize("horizon", HORIZONS)
def test_horizon_bias_matches_the_exact_passage_time(thresholds, horizon):
    bias = thresholds.loc[horizon, "value"] - 2.0
    # Euler at dt = 0.01 shifts the passage time by O(dt): measured relative error <= 1.3e-3
    # (RK4 at the same step: <= 2e-5, the bisection tolerance)
    assert bias == pytest.approx(_exact_bias(horizon), rel=5e-3)


@pytest.mark.slow
def test_cli_outcome_threshold_appears_in_the_json_at_final_time(tmp_path, thresholds):
    data = _tipping_json(tmp_path, S_CURVE, "--param", "a", "--range", "0", "3", "--outcome", "x>0")
    assert [f["value"] for f in data["folds"]] == [pytest.approx(2.0, abs=1e-6)]
    (th,) = data["thresholds"]
    assert th["horizon"] == 40.0  # FINAL TIME
    assert (th["from"], th["to"]) == ("not x>0", "x>0")
    # the same bisection as the API's: equal within the bracket width 3 * 1e-6
    assert th["value"] == pytest.approx(thresholds.loc[40.0, "value"], abs=3e-6)


# --------------------------------------------------------------------------
# basin stability and regime maps
# --------------------------------------------------------------------------


def _middle_equilibrium(a):
    """The unstable root of x^3 - 3x - a = 0 for |a| < 2.

    With x = 2 cos(phi), x^3 - 3x = 2 cos(3 phi) = a: the roots are
    2 cos((arccos(a/2) + 2 pi k)/3), k = 0, 1, 2; k = 2 is the middle one.
    """
    return 2 * math.cos((math.acos(a / 2) + 4 * math.pi) / 3)


@pytest.mark.parametrize("a", [0.0, 1.0, -1.0])
def test_basin_stability_of_the_upper_state_is_the_share_of_shocks_above_the_middle_equilibrium(
        models, a):
    n = 400
    got = tipping.basin_stability(models["shocked"], "x0", n=n, seed=11, outcome="x>0",
                                  params={"a": a}, low=-3.0, high=3.0)
    assert set(got.index) == {"x>0", "not x>0"}
    assert got["share"].sum() == pytest.approx(1.0)
    # x0 uniform on [-3, 3] ends above 0 iff it starts above the middle equilibrium
    # (a = 0: x = 0, so p = 1/2); the horizon 10 is ample: from 1e-6 off the middle
    # equilibrium a run leaves it in ln(1e6)/2.6 ~ 5 time units
    p = (3.0 - _middle_equilibrium(a)) / 6.0
    share = got.loc["x>0", "share"]
    stderr = got.loc["x>0", "stderr"]
    assert stderr == pytest.approx(math.sqrt(share * (1 - share) / n), rel=1e-12)
    # a binomial share is within 3 standard errors of p in 99.7% of seeds
    assert abs(share - p) < 3 * math.sqrt(p * (1 - p) / n)


def test_basin_stability_with_the_same_seed_gives_the_same_shares(models):
    kwargs = dict(n=200, outcome="x>0", low=-3.0, high=3.0)
    first = tipping.basin_stability(models["shocked"], "x0", seed=5, **kwargs)
    again = tipping.basin_stability(models["shocked"], "x0", seed=5, **kwargs)
    other = tipping.basin_stability(models["shocked"], "x0", seed=6, **kwargs)
    pd.testing.assert_frame_equal(first, again)
    assert not first["share"].equals(other["share"])


def test_regime_map_switches_on_the_line_a_plus_b_equals_two(models):
    # 9 values of a (columns), 5 of b (rows): a non-square grid catches a transposition
    got = tipping.regime_map(models["two_pushes"], "a", (0, 2), "b", (0, 2), n=(9, 5),
                             outcome="x>0")
    assert got.columns.name == "a" and got.index.name == "b"
    np.testing.assert_array_equal(got.columns, np.linspace(0, 2, 9))
    np.testing.assert_array_equal(got.index, np.linspace(0, 2, 5))
    # from x = -2 the run crosses 0 by t = 20 iff a + b > 2: on the grid a + b is a multiple
    # of 0.25, and at a + b = 2.25 the passage takes ~ pi/sqrt(3 * 0.25) - 0.59 ~ 3.0;
    # at a + b = 2 exactly x creeps up to the fold at -1 and never crosses
    a, b = np.meshgrid(got.columns, got.index)
    expected = np.where(a + b > 2, "x>0", "not x>0")
    np.testing.assert_array_equal(got.to_numpy(), expected)


# --------------------------------------------------------------------------
# critical slowing down and time to bust
# --------------------------------------------------------------------------


def _lower_branch(a):
    """Lower equilibrium of x' = a + 3x - x^3 (k = 1 in _middle_equilibrium's formula)."""
    return 2 * np.cos((np.arccos(a / 2) + 2 * np.pi) / 3)


@pytest.fixture(scope="module")
def ramp_run(models):
    model = models["ramp"]
    eig = tipping.leading_eigenvalues(model)
    x = model.simulate(return_columns=["x"])["x"]
    return pd.DataFrame({"eig": eig, "x": x.reindex(eig.index), "a": RAMP_SLOPE * eig.index})


def test_leading_eigenvalue_is_the_jacobian_of_the_state_reached(ramp_run):
    # df/dx = 3 - 3x^2 at the simulated x; central differences are exact for the
    # quadratic part and off by h^2 ~ 4e-11 for the cubic one
    np.testing.assert_allclose(ramp_run["eig"], 3 - 3 * ramp_run["x"] ** 2, rtol=0, atol=1e-7)


def test_leading_eigenvalue_rises_towards_zero_as_a_slow_ramp_nears_the_fold(ramp_run):
    eig = ramp_run["eig"].to_numpy()
    assert np.all(np.diff(eig) > 0)
    assert eig[0] == pytest.approx(-6.0, abs=1e-6)  # 3 - 3 * 3 at x = -sqrt(3)
    assert -1.0 < eig[-1] < 0  # a = 1.95: 3 - 3 x*^2 ~ -0.77 on the lower branch


def test_leading_eigenvalue_follows_the_lower_branch_within_the_ramp_lag(ramp_run):
    # On the lower branch x*(a) the eigenvalue is lam = 3 - 3 x*^2. A ramp a' = s makes x
    # lag: with x = x* + d, d' ~ lam d - s dx*/da and dx*/da = 1/(3x*^2 - 3) = -1/lam, so
    # d ~ -s/lam^2 and the eigenvalue at x is lam - 6 x* d = lam - 6 |x*| s / lam^2.
    # Allow 1.5 times that first-order lag (measured: from 0 at the start, where the run sits
    # on the equilibrium, up to 0.999 of it).
    a, eig = ramp_run["a"].to_numpy(), ramp_run["eig"].to_numpy()
    xs = _lower_branch(a)
    lam = 3 - 3 * xs**2
    lag = 6 * np.abs(xs) * RAMP_SLOPE / lam**2
    assert np.all(eig <= lam)  # the lagging state is further from the fold
    assert np.all(lam - eig <= 1.5 * lag)


def test_leading_eigenvalue_near_the_fold_scales_like_the_square_root_of_the_distance(ramp_run):
    # Near a = 2, x* = -1 + u with 2 - a = 3u^2 - u^3, so u ~ -sqrt((2 - a)/3) and
    # lam = 6u - 3u^2 ~ -2 sqrt(3 (2 - a)) (1 + O(sqrt(2 - a))).
    near = ramp_run[ramp_run["a"] >= 1.9]
    asymptote = -2 * np.sqrt(3 * (2 - near["a"]))
    ratio = near["eig"] / asymptote
    # the relative correction is ~ |u|/2 <= 0.09 at a = 1.9 (0.04 at a = 1.95), plus the ramp
    # lag (0.04 at a = 1.9, 0.11 at a = 1.95): measured ratios 1.10 to 1.15
    assert np.all(np.abs(ratio - 1) < 0.2)


def test_leading_eigenvalue_uses_the_parameters_of_the_run(models):
    # regression: the Jacobian was taken with the first parameter at its model value
    got = tipping.leading_eigenvalues(models["decay"], params={"K": 3.0})
    np.testing.assert_allclose(got, -3.0, rtol=1e-9)  # finite-difference accuracy ~1e-11


def test_leading_eigenvalue_of_a_model_without_parameters(models):
    # regression: a model with no parameter failed (a stock was used as the dummy parameter)
    got = tipping.leading_eigenvalues(models["no_parameters"])
    np.testing.assert_allclose(got, -1.0, rtol=1e-9)


def test_time_to_bust_of_exponentially_decaying_confidence_is_ln5_over_k(models):
    table = pd.DataFrame({"k": [0.0, 0.5, 1.0, 2.0]})
    got = tipping.time_to_bust(models["decaying_confidence"], table, classifier=outcomes.CONFIDENCE)
    assert np.isnan(got[0])  # confidence never falls
    expected = 2025 + math.log(5) / table["k"].to_numpy()[1:]
    # the first saved time (SAVEPER 0.05) after the crossing; Euler at dt = 0.01 decays
    # faster than exp(-k t) by a relative O(k dt), shifting the crossing by < 0.01 year
    assert np.all(got[1:] >= expected - 0.01)
    assert np.all(got[1:] <= expected + 0.05 + 0.01)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------


@pytest.mark.parametrize("args, fragment", [
    (["--range", "1", "1"], "1 1"),
    (["--range", "2", "1"], "2 1"),
    (["--range", "-1", "inf"], "inf"),
    (["--range", "-1", "1", "--param", "nope"], "nope"),
    (["--range", "-1", "1", "--outcome", "x=3"], "x=3"),
    (["--range", "-1", "1", "--outcome", "x<abc"], "abc"),
    (["--range", "-1", "1", "--outcome", "<3"], "<3"),
    (["--range", "-1", "1", "--outcome", "zz>3"], "zz"),
])
@pytest.mark.slow
def test_cli_rejects_bad_input_with_exit_two_and_one_line(tmp_path, args, fragment):
    model = _write(tmp_path, SADDLE_NODE)
    if "--param" not in args:
        args = ["--param", "r", *args]
    done = _cli("tipping", model, *args, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("aicircle: error:")
    assert fragment in lines[0]  # the message names the bad value


@pytest.mark.parametrize("lo, hi", [(1.0, 1.0), (2.0, 1.0), (-1.0, math.inf), (math.nan, 1.0)])
def test_bifurcations_need_a_finite_range_with_lo_below_hi(models, lo, hi):
    with pytest.raises(InvalidInput, match="range"):
        tipping.bifurcations(models["saddle_node"], "r", lo, hi)


def test_outcome_thresholds_name_an_unknown_parameter(models):
    with pytest.raises(UnknownName, match="nope"):
        tipping.outcome_thresholds(models["s_curve"], "nope", 0, 3, outcome="x>0")


@pytest.mark.parametrize("text", ["x=3", "x<abc", "<3", "x>inf", ""])
def test_malformed_outcomes_are_rejected(text):
    with pytest.raises(InvalidInput, match="malformed outcome"):
        tipping.parse_outcome(text)

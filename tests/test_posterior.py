"""The joint posterior by importance sampling (aicircle.posterior): the weights against analytic
posteriors, reweighting to other priors, and the whole draw against a brute-force grid posterior of
a small model."""

import csv
import math

import numpy as np
import pandas as pd
import pytest

import aicircle as ac
from aicircle import posterior as post
from aicircle.calibrate import Problem
from aicircle.errors import InvalidInput
from aicircle.observables import read_targets, vocabulary
from conftest import write_mdl


def test_uniform_prior_densities_integrate_to_one_and_vanish_outside():
    for prior in (post.Uniform(0.5, 3.0), post.Uniform(0.5, 3.0, log=True)):
        x = np.linspace(0.0, 4.0, 400_001)
        density = np.exp(prior.log_pdf(x))
        # trapezoid rule on a 1e-5 grid: the jumps at the ends cost at most one cell each
        assert abs(np.trapezoid(density, x) - 1.0) < 1e-4
        assert density[x < 0.5].max() == 0.0 and density[x > 3.0].max() == 0.0


def test_log_uniform_samples_are_uniform_in_the_logarithm():
    rng = np.random.default_rng(0)
    x = post.Uniform(1.0, 100.0, log=True).sample(rng, 100_000)
    # half the mass below the geometric midpoint 10; binomial sd 0.0016
    assert abs(np.mean(x < 10.0) - 0.5) < 0.01


@pytest.mark.parametrize("birge", [1.0, 2.0])
def test_weights_turn_a_uniform_prior_into_the_gaussian_likelihood(birge):
    # prior U[0, 1]; chi2 = ((u - 0.3) / 0.05)^2 against a reference of 0: the posterior is
    # N(0.3, (0.05 b)^2), truncated 6 sd away at most (negligible)
    rng = np.random.default_rng(1)
    u = rng.uniform(0, 1, 400_000)
    w = post.importance_weights(((u - 0.3) / 0.05) ** 2, np.zeros_like(u), birge)
    mean = np.sum(w * u)
    sd = math.sqrt(np.sum(w * (u - mean) ** 2))
    n_eff = post.effective_sample_size(w)
    assert abs(mean - 0.3) < 4 * 0.05 * birge / math.sqrt(n_eff)
    assert sd == pytest.approx(0.05 * birge, rel=0.03)


def test_a_draw_whose_chi2_is_not_finite_gets_no_weight():
    w = post.importance_weights(np.array([1.0, np.nan, 2.0]), np.zeros(3))
    assert w[1] == 0.0 and w.sum() == pytest.approx(1.0)
    assert w[0] / w[2] == pytest.approx(math.exp(0.5))


def test_reweighting_to_a_narrower_prior_is_the_conditional_distribution():
    rng = np.random.default_rng(2)
    table = pd.DataFrame({"u": rng.uniform(0, 1, 200_000)})
    w = np.full(len(table), 1 / len(table))
    narrow = post.reweight(table, w, {"u": post.Uniform(0, 1)}, {"u": post.Uniform(0, 0.5)})
    assert narrow[table["u"] > 0.5].sum() == 0.0
    # under U[0, 0.5], P(u < 0.25) = 1/2; binomial sd with ~100k draws is 0.0016
    assert abs(np.sum(narrow[table["u"] < 0.25]) - 0.5) < 0.01


def test_reweighting_refuses_a_parameter_that_was_not_drawn():
    table = pd.DataFrame({"u": [0.1, 0.2]})
    with pytest.raises(InvalidInput, match="'v' was not drawn"):
        post.reweight(table, np.array([0.5, 0.5]), {"u": post.Uniform(0, 1)}, {"v": post.Uniform(0, 1)})


def test_weighted_probability_with_equal_weights_is_the_wilson_interval():
    flags = np.array([True] * 30 + [False] * 70)
    p, lo, hi = post.weighted_probability(flags, np.full(100, 0.01))
    # the Wilson score interval of 30/100 at z = 1.96, by its formula
    z, n = 1.96, 100
    centre = (0.3 + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(0.3 * 0.7 / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert p == pytest.approx(0.3)
    assert (lo, hi) == pytest.approx((centre - half, centre + half))


# ------------------------------------------------------------------ the whole draw, on a small model

GROWTH_MDL = ("""
Users Stock = INTEG(Growth * Users Stock, Initial Users)
	~	million
	~	Users grow exponentially.
	|
Users = Users Stock
	~	million
	~	The observable.
	|
Initial Users = 8
	~	million [5, 20]
	~	Calibrated (a prior of a quarter of its log-range as a pseudo-observation).
	|
Growth = 0.25
	~	1/Year [0.1, 0.6]
	~	Drawn from its prior.
	|
""",)
TRUE = {"Initial Users": 10.0, "Growth": 0.3}
VOCABULARY = vocabulary(("users", "level", "million", "the stock"))
DATES = ["2021-12-31", "2022-12-31", "2023-12-31", "2024-12-31", "2025-12-31"]
SIGMA = 0.1


@pytest.fixture(scope="module")
def growth_case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("growth")
    model = ac.load(write_mdl(folder, *GROWTH_MDL, initial_time=2020, final_time=2026, time_step=1 / 64,
                              saveper=0.25))
    path = folder / "targets.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "observable", "start", "end", "aggregation", "value", "unit", "sigma",
                         "source", "quote"])
        for i, date in enumerate(DATES):
            # the data: the model's own Euler path at the true values, so the fit's optimum is the truth
            years = int(date[:4]) + 1 - 2020
            value = TRUE["Initial Users"] * (1 + TRUE["Growth"] / 64) ** (64 * years)
            writer.writerow([f"u{i}", "users", date, date, "level", repr(value), "million", SIGMA,
                             "synthetic", "made by the test"])
    return model, read_targets(path, VOCABULARY)


def _grid_log_posterior(model, targets, a, g):
    """log p(a, g | data) up to a constant, as a density in a and g: the calibration's prior on a is
    flat in its search coordinate log a (hence the 1/a) times Problem's pseudo-observation (a normal in
    log a, sd a quarter of the log-range, centred on the model value); g's prior is uniform."""
    problem = Problem(model, targets, ["Initial Users", "Growth"], priors=True)
    A, G = np.meshgrid(a, g, indexing="ij")
    r = problem.residuals(problem.from_params(pd.DataFrame({"Initial Users": A.ravel(), "Growth": G.ravel()})))
    # the prior's pseudo-observation of g is not part of the joint posterior (g's prior is uniform)
    return -0.5 * np.sum(r[:, :-1] ** 2, axis=1).reshape(A.shape) - np.log(A)


@pytest.fixture(scope="module")
def grid_posterior(growth_case):
    """Means and sds of a and g under the joint posterior, on a 2-D grid (brute force)."""
    model, targets = growth_case
    ga, gg = np.linspace(5, 20, 301), np.linspace(0.1, 0.6, 301)
    log_post = _grid_log_posterior(model, targets, ga, gg)
    p = np.exp(log_post - log_post.max())
    p /= p.sum()
    mean_a, mean_g = float(np.sum(p * ga[:, None])), float(np.sum(p * gg[None, :]))
    sd_a = math.sqrt(np.sum(p * (ga[:, None] - mean_a) ** 2))
    sd_g = math.sqrt(np.sum(p * (gg[None, :] - mean_g) ** 2))
    return {"a": (mean_a, sd_a), "g": (mean_g, sd_g)}


@pytest.fixture(scope="module")
def ensemble_off_the_truth(growth_case):
    """The calibration's ensemble with Growth held at 0.25, off the truth (0.3): exact draws of
    p(a | g = 0.25, data) by inverse CDF on a fine grid."""
    model, targets = growth_case
    a = np.linspace(5, 20, 3001)
    log_p = _grid_log_posterior(model, targets, a, np.array([0.25]))[:, 0]
    cdf = np.cumsum(np.exp(log_p - log_p.max()))
    rng = np.random.default_rng(3)
    return pd.DataFrame({"Initial Users": np.interp(rng.uniform(0, cdf[-1], 4000), cdf, a)})


def _draw(growth_case, ensemble, shift):
    model, targets = growth_case
    return post.joint_posterior(model, targets, ensemble, {"Growth": post.Uniform(0.1, 0.6)},
                                held={"Growth": 0.25, "Initial Users": 8.0}, n=20_000, seed=4, shift=shift)


@pytest.mark.slow
def test_joint_posterior_matches_a_brute_force_grid_posterior(growth_case, ensemble_off_the_truth,
                                                              grid_posterior):
    result = _draw(growth_case, ensemble_off_the_truth, shift=True)
    w = result.weights
    for name, column in (("a", "Initial Users"), ("g", "Growth")):
        mean, sd = grid_posterior[name]
        estimate = float(np.sum(w * result.draws[column]))
        # importance-sampling error: 4 sd of the mean at the effective sample size (measured: 2253 of
        # 20,000; the rest of the loss is the prior on g, ~10 times wider than its posterior); the
        # grid's own error (cells of 0.05 and 0.0017) is far below that
        assert abs(estimate - mean) < 4 * sd / math.sqrt(result.ess), name
    mean_g, sd_g = grid_posterior["g"]
    assert abs(mean_g - TRUE["Growth"]) < 3 * sd_g  # and the data do pin the truth


@pytest.mark.slow
def test_shifting_the_ensemble_by_the_optimums_response_keeps_the_draws_useful(growth_case,
                                                                              ensemble_off_the_truth):
    # level = a exp(g t): a and g trade off, so rows drawn at g = 0.25 fit other g badly unless moved
    # along the trade-off (measured: effective sample size 29 unshifted, 2253 shifted)
    plain = _draw(growth_case, ensemble_off_the_truth, shift=False)
    shifted = _draw(growth_case, ensemble_off_the_truth, shift=True)
    assert shifted.ess > 20 * plain.ess


@pytest.mark.slow
def test_a_parameter_the_targets_cannot_see_leaves_the_weights_equal(growth_case, tmp_path):
    model, targets = growth_case
    ensemble = pd.DataFrame({"Initial Users": np.linspace(9.5, 10.5, 50)})
    held = {"Growth": 0.3, "Initial Users": 10.0}
    result = post.joint_posterior(model, targets, ensemble, {"Growth": post.Uniform(0.3, 0.3 + 1e-12)},
                                  held=held, n=200, seed=5)
    # Growth drawn within 1e-12 of its held value: every draw's chi2 equals its reference to rounding
    np.testing.assert_allclose(result.weights, 1 / 200, rtol=1e-9)


def test_joint_posterior_refuses_a_parameter_both_calibrated_and_drawn(growth_case):
    model, targets = growth_case
    with pytest.raises(InvalidInput, match="calibrated and drawn"):
        post.joint_posterior(model, targets, pd.DataFrame({"Growth": [0.3]}),
                             {"Growth": post.Uniform(0.1, 0.6)}, held={"Growth": 0.3})


def test_joint_posterior_needs_the_held_value_of_each_drawn_parameter(growth_case):
    model, targets = growth_case
    with pytest.raises(InvalidInput, match="held gives no value for Growth"):
        post.joint_posterior(model, targets, pd.DataFrame({"Initial Users": [10.0]}),
                             {"Growth": post.Uniform(0.1, 0.6)}, held={})

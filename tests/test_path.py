"""Regularisation paths: alpha_max, warm starts, strong rules, against cold cvxpy solves."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from convexrelu.arrangements import enumerate_patterns
from convexrelu.program import ConvexProgram
from convexrelu.solvers import CvxpySolver, alpha_max, regularization_path


def _data(rng, n=10, d=2):
    X = rng.standard_normal((n, d))
    return X, np.sin(2 * X[:, 0]) + 0.3 * rng.standard_normal(n)


def _cold(X, y, pats, alpha, bias=True):
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=alpha, bias=bias)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return prog, CvxpySolver(tol=1e-10).solve(prog)


@pytest.mark.parametrize("bias", [True, False])
def test_alpha_max_is_the_zero_threshold(rng, bias):
    X, y = _data(rng)
    pats = enumerate_patterns(X, bias=bias)
    amax = alpha_max(X, y, patterns=pats, bias=bias)
    assert amax > 0
    prog, above = _cold(X, y, pats, amax * (1 + 1e-3), bias)
    reg = prog.regularizer
    scale = np.linalg.norm(y)
    assert np.max(reg.norms(above.V)) <= 1e-6 * scale
    assert np.max(reg.norms(above.W)) <= 1e-6 * scale
    # the network is constant (a free hidden bias can share the output bias's role)
    z = prog.predict(above.V, above.W, above.output_bias)
    np.testing.assert_allclose(z, np.mean(y), atol=1e-6 * scale)
    _, below = _cold(X, y, pats, 0.9 * amax, bias)
    assert below.objective < above.objective - 1e-6
    # "exact" (the 2-D sweep) and the listed exact set agree
    assert alpha_max(X, y, bias=bias) == pytest.approx(amax, rel=1e-9)


def test_path_matches_cold_solves(rng):
    X, y = _data(rng)
    pats = enumerate_patterns(X, bias=True)
    path = regularization_path(X, y, n_alphas=5, eps=0.05, patterns=pats)
    assert path.alphas[0] == pytest.approx(path.alpha_max)
    assert np.all(np.diff(path.alphas) < 0)
    first = path.solutions[0]
    assert not np.any(first.V) and not np.any(first.W)  # alpha_max: output bias only
    assert path.n_neurons[0] == 0 and path.n_neurons[-1] > 0
    for a, sol in zip(path.alphas, path.solutions):
        _, cold = _cold(X, y, pats, a)
        assert abs(sol.objective - cold.objective) <= 1e-6 * cold.objective
        assert sol.info["rel_gap"] <= 1e-6
    assert np.all(np.diff(path.objectives) < 0)  # less regularisation, lower objective


def test_strong_rule_screens_and_keeps_the_optimum(rng):
    X, y = _data(rng, n=9)
    pats = enumerate_patterns(X, bias=True)
    alphas = alpha_max(X, y, patterns=pats) * np.array([0.6, 0.5, 0.4])
    screened = regularization_path(X, y, alphas, patterns=pats)
    plain = regularization_path(X, y, alphas, patterns=pats, screening=False)
    assert np.all(screened.n_screened[1:] < pats.n_patterns)
    np.testing.assert_allclose(screened.objectives, plain.objectives, rtol=1e-6)


def test_gated_path(rng):
    X, y = _data(rng, n=8)
    pats = enumerate_patterns(X, bias=False)
    path = regularization_path(X, y, n_alphas=3, eps=0.2, patterns=pats, bias=False,
                               formulation="gated_relu")
    for a, sol in zip(path.alphas, path.solutions):
        prog = ConvexProgram(X, y, pats, loss="squared", alpha=a, bias=False,
                             formulation="gated_relu")
        cold = CvxpySolver(tol=1e-10).solve(prog)
        assert abs(sol.objective - cold.objective) <= 1e-6 * cold.objective


def test_path_errors(rng):
    X, y = _data(rng, n=6)
    with pytest.raises(ValueError, match="n_alphas must be a positive int; got 0"):
        regularization_path(X, y, n_alphas=0)
    with pytest.raises(ValueError, match="eps must be a float in \\(0, 1\\); got 2"):
        regularization_path(X, y, eps=2)
    with pytest.raises(ValueError, match="alphas must be a non-empty array of floats > 0"):
        regularization_path(X, y, alphas=[-1.0])
    with pytest.raises(ValueError, match="patterns must be 'exact', a positive int or an"):
        alpha_max(X, y, patterns="all")


def test_alpha_max_over_sampled_patterns_is_the_exact_maximum(rng):
    """alpha_max is M(lambda_0) itself, not the pricing bound (which may exceed the
    maximum once violations are found): regression, 19% too high on diabetes."""
    from convexrelu.arrangements import sample_patterns
    from convexrelu.certificates import dual_constraint

    X = rng.standard_normal((80, 6))
    y = np.abs(X[:, 0]) + X[:, 1] + 0.1 * rng.standard_normal(80)
    pats = sample_patterns(X, 400, random_state=0, bias=True)
    lam = y - y.mean()  # the zero network's dual point (output bias fitted)
    exact = dual_constraint(pats, X, lam, penalize_bias=False).value
    assert alpha_max(X, y, patterns=pats) == pytest.approx(exact, rel=1e-9)

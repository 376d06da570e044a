"""Seeds of a restricted ReLU solve (convexrelu.solvers._seeds)."""

import numpy as np
import pytest

from convexrelu.arrangements import enumerate_patterns
from convexrelu.program import ConvexProgram
from convexrelu.solvers import get_solver
from convexrelu.solvers._seeds import gated_support, solve_on_gated_support


@pytest.fixture
def gated_program(rng):
    X = rng.standard_normal((12, 2))
    y = X[:, 0] - np.abs(X[:, 1]) + 0.1 * rng.standard_normal(12)
    pats = enumerate_patterns(X, bias=True)
    return ConvexProgram(X, y, pats, loss="squared", alpha=0.05, bias=True,
                         penalize_bias=True, formulation="gated_relu")


def test_gated_support_threshold_and_empty(gated_program):
    P, d = gated_program.n_patterns, gated_program.d_aug
    V = np.zeros((P, d))
    V[1, 0], V[3, 2] = 1.0, 1e-7  # the second is below 1e-6 of the largest
    used = gated_support(gated_program, V)
    assert used.dtype == bool and np.flatnonzero(used).tolist() == [1]
    assert np.flatnonzero(gated_support(gated_program, V, rtol=1e-8)).tolist() == [1, 3]
    assert np.all(gated_support(gated_program, np.zeros((P, d))))  # nothing: keep all


def test_solve_on_gated_support_is_the_restricted_relu_program(gated_program):
    gated = get_solver("fista", tol=1e-8).solve(gated_program)
    relu_solver = get_solver("relu", tol=1e-8)
    sol = solve_on_gated_support(gated_program, gated, relu_solver)
    used = gated_support(gated_program, gated.V)
    assert sol.V.shape == (int(used.sum()), gated_program.d_aug)
    relu = ConvexProgram(gated_program.X, gated_program.y, gated_program.patterns,
                         loss="squared", alpha=0.05, bias=True, penalize_bias=True)
    ref = relu_solver.solve(relu.restrict(used))
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)
    # a feasible point of the full ReLU program: not below its optimum, and above the
    # gated relaxation's optimum
    full = relu_solver.solve(relu)
    assert sol.objective >= full.objective - 1e-6 * abs(full.objective)
    assert sol.objective >= gated.objective - 1e-6 * abs(gated.objective)

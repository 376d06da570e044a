"""The estimators with each registered solver: same optimum as cvxpy, clear errors."""

import numpy as np
import pytest

from convexrelu import ConvexReLURegressor
from convexrelu.solvers import SOLVERS


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    y = np.sin(X[:, 0]) + X[:, 1]
    return X, y


def test_registry_names():
    assert set(SOLVERS) == {"cvxpy", "fista", "relu", "column_generation"}


@pytest.mark.parametrize("solver", ["cvxpy", "relu", "column_generation"])
def test_relu_solvers_reach_cvxpy_optimum(data, solver):
    X, y = data
    ref = ConvexReLURegressor(alpha=0.1, patterns="exact").fit(X, y)
    est = ConvexReLURegressor(alpha=0.1, patterns="exact", solver=solver).fit(X, y)
    assert est.objective_ == pytest.approx(ref.objective_, rel=1e-6)
    assert est.network_.objective(X, y, 0.1) == pytest.approx(est.objective_, rel=1e-12)
    assert est.certificate_.exact and est.certificate_.optimal


def test_gated_fista_route_is_sound(data):
    X, y = data
    kw = dict(alpha=0.1, patterns="exact", penalize_bias=True)
    p_star = ConvexReLURegressor(**kw).fit(X, y).objective_          # the ReLU optimum
    ref = ConvexReLURegressor(formulation="gated_relu", **kw).fit(X, y)
    est = ConvexReLURegressor(formulation="gated_relu", solver="fista", max_iter=20000,
                              **kw).fit(X, y)
    # the gated route polishes the ReLU program on the gated support: never below the
    # ReLU optimum, its network reaches its objective, and it is close to the cvxpy route
    assert est.objective_ >= p_star - 1e-9
    assert est.network_.objective(X, y, 0.1, penalize_bias=True) == pytest.approx(
        est.objective_, rel=1e-6)
    assert est.objective_ == pytest.approx(ref.objective_, rel=1e-2)
    assert est.certificate_.lower_bound <= p_star + 1e-9


def test_gated_only_solver_refuses_relu(data):
    X, y = data
    with pytest.raises(ValueError, match="cannot solve formulation='relu'.*gated_relu"):
        ConvexReLURegressor(alpha=0.1, patterns="exact", solver="fista").fit(X, y)


def test_unknown_solver_name(data):
    X, y = data
    with pytest.raises(ValueError, match="solver"):
        ConvexReLURegressor(solver="newton").fit(X, y)


def test_max_iter_none_uses_solver_default():
    est = ConvexReLURegressor(solver="fista")
    assert est._solver("squared").max_iter == 10000
    assert ConvexReLURegressor(solver="fista", max_iter=7)._solver("squared").max_iter == 7


def test_auto_solver_choice():
    est = ConvexReLURegressor()
    assert est.solver == "auto" and type(est._solver("squared")).__name__ == "ReluFastSolver"
    gated = ConvexReLURegressor(formulation="gated_relu", penalize_bias=True)
    assert type(gated._solver("squared")).__name__ == "FistaSolver"


@pytest.mark.parametrize("solver", ["column_generation", "relu"])
def test_warm_start_same_optimum(data, solver):
    """warm_start=True reuses the previous solution along an alpha path and reaches the
    same objective as a cold fit; it is ignored when the patterns change."""
    X, y = data
    kw = dict(patterns="exact", solver=solver)
    est = ConvexReLURegressor(alpha=0.2, warm_start=True, **kw).fit(X, y)
    key = est._warm_["key"]
    est.set_params(alpha=0.1).fit(X, y)
    cold = ConvexReLURegressor(alpha=0.1, **kw).fit(X, y)
    assert est.objective_ == pytest.approx(cold.objective_, rel=1e-6)
    assert est._warm_["key"] == key
    # other patterns (sampled): the stored solutions do not apply
    est.set_params(patterns=50, random_state=0)
    assert est._warm_solutions(est._get_patterns(X), 1) == [None]


def test_warm_start_gated_fista_fewer_iterations(data):
    X, y = data
    kw = dict(patterns="exact", solver="fista", formulation="gated_relu",
              penalize_bias=True, certify=False, max_iter=20000)
    first = ConvexReLURegressor(alpha=0.1, warm_start=True, **kw).fit(X, y)
    again = first.fit(X, y)              # same problem, warm: starts at the solution
    cold = ConvexReLURegressor(alpha=0.1, **kw).fit(X, y)
    assert again.objective_ == pytest.approx(cold.objective_, rel=1e-6)
    assert again._warm_["solutions"][0].n_iter <= cold._warm_["solutions"][0].n_iter

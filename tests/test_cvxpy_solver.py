"""CvxpySolver against an independent cvxpy formulation and docs/mathematics.rst §9 checks."""

import warnings
import pickle

import cvxpy as cp
import numpy as np
import pytest

from convexrelu.arrangements import enumerate_patterns
from convexrelu.losses import SquaredLoss
from convexrelu.program import ConvexProgram
from convexrelu.solvers import BaseSolver, CvxpySolver, get_solver

TIGHT = dict(tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)


def reference(Xa, y, masks, alpha, loss, k, output_bias=True):
    """(CVX) written pattern by pattern (the oracle); returns (p*/n, multiplier of z)."""
    n, da = Xa.shape
    z = cp.Variable(n)
    c0 = cp.Variable() if output_bias else 0.0
    terms, cons, pred = [], [], 0
    for i in range(masks.shape[1]):
        D = np.diag(masks[:, i].astype(float))
        A = 2 * D - np.eye(n)
        v, w = cp.Variable(da), cp.Variable(da)
        cons += [A @ Xa @ v >= 0, A @ Xa @ w >= 0]
        pred = pred + D @ Xa @ (v - w)
        terms += [cp.norm(v[:k]), cp.norm(w[:k])]
    link = z == pred + c0
    if loss == "squared":
        obj = 0.5 * cp.sum_squares(z - y)
    else:
        obj = cp.sum(cp.logistic(-cp.multiply(y, z)))
    prob = cp.Problem(cp.Minimize(obj + alpha * sum(terms)), cons + [link])
    prob.solve(solver="CLARABEL", **TIGHT)
    return prob.value / n, link.dual_value


CASES = [
    ("squared", False, 0), ("squared", True, 0), ("logistic", False, 0),
    ("logistic", True, 0), ("squared", True, 1),  # 1: degenerate data (repeated rows)
]


@pytest.mark.parametrize("loss,bias,degenerate", CASES)
def test_matches_independent_formulation(rng, loss, bias, degenerate):
    X = rng.standard_normal((6, 2))
    if degenerate:
        X[3] = X[0]
        X[4] = 2 * X[1]
    y = rng.standard_normal(6)
    if loss == "logistic":
        y = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
    alpha = 0.2 if loss == "squared" else 0.3
    pats = enumerate_patterns(X, bias=bias)
    prog = ConvexProgram(X, y, pats, loss=loss, alpha=alpha, bias=bias)
    sol = CvxpySolver(tol=1e-10 if loss == "squared" else 1e-9).solve(prog)
    ref, mult = reference(pats.augment(X), y, pats.masks, alpha, loss, X.shape[1])
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(ref, rel=1e-6)
    # docs/mathematics.rst §9 item 14: the multiplier of z = sum D_i X (v_i - w_i) is -grad l(y_hat)
    # exponential cones: Clarabel reaches ~1e-9 gaps only, lambda agrees to ~1e-6
    np.testing.assert_allclose(sol.dual, mult, atol=1e-6 if loss == "squared" else 1e-5)
    z = prog.predict(sol.V, sol.W, sol.output_bias)
    np.testing.assert_allclose(sol.dual, -prog.loss.gradient(z, y))
    assert prog.max_violation(sol.V, sol.W) < 1e-8
    assert abs(np.sum(sol.dual)) < 1e-5  # free output bias (docs/mathematics.rst §8.3)


def test_active_blocks_meet_dual_constraint(rng):
    """docs/mathematics.rst §9 item 15: lambda^T D_i X v_i / ||v_i|| = beta on active blocks."""
    X, y = rng.standard_normal((7, 2)), rng.standard_normal(7)
    pats = enumerate_patterns(X)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.3, bias=False)
    sol = CvxpySolver(tol=1e-11).solve(prog)
    lam = sol.dual
    top = max(np.linalg.norm(sol.V, axis=1).max(), np.linalg.norm(sol.W, axis=1).max())
    for B, sign in ((sol.V, 1.0), (sol.W, -1.0)):
        nrm = np.linalg.norm(B, axis=1)
        act = nrm > 1e-6 * top
        vals = sign * ((lam[:, None] * pats.masks[:, act]) * (X @ (B[act] / nrm[act, None]).T)
                       ).sum(axis=0)
        np.testing.assert_allclose(vals, 0.3, atol=1e-6)


def test_beta_to_zero_increases_to_min_norm(rng):
    """docs/mathematics.rst §9 item 16: p*(beta)/beta increases to R*."""
    X, y = rng.standard_normal((5, 2)), rng.standard_normal(5)
    pats = enumerate_patterns(X)
    solver = CvxpySolver(tol=1e-11)
    mn = ConvexProgram(X, y, pats, loss="squared", alpha=0.0, bias=False,
                       fit_output_bias=False, formulation="min_norm")
    R = solver.solve(mn)
    assert R.objective > 0
    assert float(R.dual @ y) == pytest.approx(R.objective, rel=1e-6)  # dual: lambda^T y
    ratios = []
    for beta in (1e-1, 1e-2, 1e-3, 1e-4):
        prog = ConvexProgram(X, y, pats, loss="squared", alpha=beta, bias=False,
                             fit_output_bias=False)
        ratios.append(solver.solve(prog).objective * 5 / beta)
    assert all(a < b + 1e-9 for a, b in zip(ratios, ratios[1:]))
    assert ratios[-1] <= R.objective * (1 + 1e-6)
    assert ratios[-1] == pytest.approx(R.objective, rel=1e-3)


def test_whitened_closed_form(rng):
    """docs/mathematics.rst §9 item 17: XX^T = I gives a closed-form optimum."""
    Q, _ = np.linalg.qr(rng.standard_normal((4, 3)))
    X = Q.T  # 3 x 4, orthonormal rows
    y = np.array([1.5, -0.7, 0.4])
    beta = 0.3
    pats = enumerate_patterns(X)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=beta, bias=False,
                         fit_output_bias=False)
    sol = CvxpySolver(tol=1e-10).solve(prog)
    yp, ym = np.maximum(y, 0), np.maximum(-y, 0)
    shrink = lambda v: v * max(0.0, 1 - beta / np.linalg.norm(v))  # noqa: E731
    yhat = shrink(yp) - shrink(ym)
    p = 0.5 * np.sum((yhat - y) ** 2) + beta * (
        max(np.linalg.norm(yp) - beta, 0) + max(np.linalg.norm(ym) - beta, 0))
    assert sol.objective * 3 == pytest.approx(p, rel=1e-7)
    np.testing.assert_allclose(prog.predict(sol.V, sol.W), yhat, atol=1e-6)


def test_gated_below_relu(rng):
    """docs/mathematics.rst §9 item 18: p*_G <= p*."""
    X, y = rng.standard_normal((6, 2)), rng.standard_normal(6)
    pats = enumerate_patterns(X)
    solver = CvxpySolver(tol=1e-10)
    relu = solver.solve(ConvexProgram(X, y, pats, loss="squared", alpha=0.05, bias=False))
    gated = solver.solve(ConvexProgram(X, y, pats, loss="squared", alpha=0.05, bias=False,
                                       formulation="gated_relu"))
    assert gated.objective <= relu.objective + 1e-9
    assert np.all(gated.W == 0)


def test_max_margin_dual(rng):
    X = rng.standard_normal((6, 2))
    y = np.array([1.0, -1, 1, -1, 1, -1])
    pats = enumerate_patterns(X, bias=True)
    prog = ConvexProgram(X, y, pats, loss="logistic", alpha=0.0, bias=True,
                         penalize_bias=True, formulation="max_margin")
    sol = CvxpySolver(tol=1e-10).solve(prog)
    z = prog.predict(sol.V, sol.W, sol.output_bias)
    assert np.all(y * z >= 1 - 1e-7)
    assert np.all(y * sol.dual >= -1e-8)
    assert float(y @ sol.dual) == pytest.approx(sol.objective, rel=1e-6)


def test_dpp_resolve_equals_fresh_build(rng):
    X, y = rng.standard_normal((6, 2)), rng.standard_normal(6)
    pats = enumerate_patterns(X, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.5, bias=True)
    solver = CvxpySolver(tol=1e-10)
    first = solver.solve(prog)
    again = solver.solve(prog.with_alpha(0.05))
    assert again.build_time == 0.0 and len(solver._cache) == 1
    fresh = CvxpySolver(tol=1e-10).solve(prog.with_alpha(0.05))
    assert again.objective == pytest.approx(fresh.objective, rel=1e-8)
    assert first.objective > again.objective
    built = next(iter(solver._cache.values()))
    assert built.problem.is_dcp(dpp=True)


def test_multi_output_is_sum_of_scalar_problems(rng):
    X = rng.standard_normal((6, 2))
    Y = rng.standard_normal((6, 2))
    pats = enumerate_patterns(X, bias=True)
    solver = CvxpySolver(tol=1e-10)
    both = solver.solve(ConvexProgram(X, Y, pats, loss="squared", alpha=0.1, bias=True))
    assert both.V.shape == (2, pats.n_patterns, 3)

    class Half(SquaredLoss):
        def value(self, z, y):
            return super().value(z, y) / 2

        def gradient(self, z, y):
            return super().gradient(z, y) / 2

        def cvxpy_value(self, z, y):
            return super().cvxpy_value(z, y) / 2

        def __repr__(self):
            return "Half()"

    parts = [solver.solve(ConvexProgram(X, Y[:, k], pats, loss=Half(), alpha=0.1,
                                        bias=True)).objective for k in range(2)]
    assert both.objective == pytest.approx(sum(parts), rel=1e-6)


def test_warm_start_and_pickle(rng):
    X, y = rng.standard_normal((6, 2)), rng.standard_normal(6)
    pats = enumerate_patterns(X)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=False)
    solver = CvxpySolver(tol=1e-9)
    sol = solver.solve(prog)
    sol2 = solver.solve(prog, warm_start=sol)
    assert sol2.objective == pytest.approx(sol.objective, rel=1e-7)
    clone = pickle.loads(pickle.dumps(solver))
    assert clone._cache == {} and clone.tol == 1e-9
    assert "CvxpySolver" in repr(clone)


def test_errors(rng):
    X, y = rng.standard_normal((6, 2)), rng.standard_normal(6)
    pats = enumerate_patterns(X)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=False)
    with pytest.raises(ValueError, match="is not installed; installed solvers are"):
        CvxpySolver("NO_SUCH_SOLVER").solve(prog)
    with pytest.raises(TypeError, match="expects a ConvexProgram"):
        CvxpySolver().solve("nope")
    with pytest.raises(ValueError, match="unknown solver"):
        get_solver("nope")
    mn = ConvexProgram(X, y, pats, loss="squared", alpha=0.0, bias=False,
                       fit_output_bias=False, formulation="min_norm").restrict([0])
    with pytest.raises(RuntimeError, match="cannot be interpolated"):
        CvxpySolver().solve(mn)

    class NoCvxpy(SquaredLoss):
        cvxpy_value = SquaredLoss.__mro__[1].cvxpy_value

    bad = ConvexProgram(X, y, pats, loss=NoCvxpy(), alpha=0.1, bias=False)
    with pytest.raises(ValueError, match="implement \\['cvxpy_value'\\]"):
        CvxpySolver().solve(bad)

    class GatedOnly(BaseSolver):
        _formulations = ("gated_relu",)

    with pytest.raises(ValueError, match="cannot solve formulation='relu'"):
        GatedOnly().solve(prog)


def test_inaccurate_status_warns(rng, monkeypatch):
    from sklearn.exceptions import ConvergenceWarning

    X, y = rng.standard_normal((5, 2)), rng.standard_normal(5)
    prog = ConvexProgram(X, y, enumerate_patterns(X), loss="squared", alpha=0.1, bias=False)
    solver = CvxpySolver()
    solver.solve(prog)
    built = next(iter(solver._cache.values()))
    orig = type(built.problem).solve

    def fake(self, *a, **k):
        out = orig(self, *a, **k)
        self._status = cp.OPTIMAL_INACCURATE
        return out

    monkeypatch.setattr(type(built.problem), "solve", fake)
    # an inaccurate status is accepted and judged by the certificate that ends every
    # solve: here the point is optimal, so no warning and the status says so
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sol = solver.solve(prog)
    assert sol.status == "optimal" and sol.info["rel_gap"] <= 1e-6

    def fail(self, *a, **k):
        out = orig(self, *a, **k)
        self._status = cp.UNBOUNDED
        return out

    monkeypatch.setattr(type(built.problem), "solve", fail)
    with pytest.raises(RuntimeError, match="Try another solver"):
        solver.solve(prog)


def test_clarabel_retry_after_a_failed_solve(rng, monkeypatch):
    """A Clarabel failure is retried with other settings on a fresh Clarabel solver: cvxpy
    (>= 1.7) keeps the failed solver and would otherwise update it, which raises on the
    retry's equilibration settings (seen on digits, one-vs-rest logistic)."""
    X, y = rng.standard_normal((8, 2)), np.sign(rng.standard_normal(8))
    prog = ConvexProgram(X, y, enumerate_patterns(X), loss="logistic", alpha=0.1, bias=False)
    ref = CvxpySolver().solve(prog)
    solver = CvxpySolver()
    calls = []
    orig = cp.Problem.solve

    def first_fails(self, *a, **k):
        out = orig(self, *a, **k)  # the real solve: cvxpy caches its Clarabel solver
        calls.append(k)
        if len(calls) == 1:
            raise cp.error.SolverError("Solver 'CLARABEL' failed.")
        return out

    monkeypatch.setattr(cp.Problem, "solve", first_fails)
    sol = solver.solve(prog)
    assert len(calls) == 2 and calls[1].get("warm_start") is False
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)

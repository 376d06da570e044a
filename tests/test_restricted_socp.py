"""The second-order-cone interior point for restricted ReLU programs (squared loss) against
the cvxpy reference, its cone algebra, and its place in the working-set loop."""

import warnings

import numpy as np
import pytest

from convexrelu.arrangements import sample_patterns
from convexrelu.program import ConvexProgram
from convexrelu.solvers import get_solver
from convexrelu.solvers._cg_inner import CompressedReluSolver
from convexrelu.solvers._column_generation import _AutoInner
from convexrelu.solvers._restricted_socp import (RestrictedSocpSolver, _jdiv, _jprod,
                                                 _nt_scaling, _soc_step, _State)


def _inside(rng, r, m):
    x = rng.standard_normal((r, m))
    x[:, 0] = np.linalg.norm(x[:, 1:], axis=1) + rng.uniform(0.01, 1.0, r)
    return x


def _program(rng, bias=True, penalize_bias=False, n=60, d=4, k=8, fit_output_bias=True,
             alpha=0.5, X=None):
    if X is None:
        X = rng.standard_normal((n, d))
    y = 50.0 + 20.0 * (X[:, 0] - np.abs(X[:, 1]) + 0.1 * rng.standard_normal(len(X)))
    pats = sample_patterns(X, k, random_state=1, bias=bias)
    return ConvexProgram(X, y, pats, loss="squared", alpha=alpha, bias=bias,
                         penalize_bias=penalize_bias, fit_output_bias=fit_output_bias)


def _spy(monkeypatch, cls, record, calls=None):
    """Wrap ``cls._solve`` so that each call appends ``record(program)`` to ``calls``."""
    calls = [] if calls is None else calls
    orig = cls._solve

    def spy(self, program, warm_start=None):
        calls.append(record(program))
        return orig(self, program, warm_start)

    monkeypatch.setattr(cls, "_solve", spy)
    return calls


def _reference(prog):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_solver("cvxpy", tol=1e-10).solve(prog)


def test_nt_scaling_and_jordan_algebra(rng):
    s, z = _inside(rng, 6, 5), _inside(rng, 6, 5)
    W, Winv, lam = _nt_scaling(s, z)
    np.testing.assert_allclose(np.einsum("jab,jb->ja", W, z), lam, atol=1e-12)
    np.testing.assert_allclose(np.einsum("jab,jb->ja", Winv, s), lam, atol=1e-12)
    np.testing.assert_allclose(np.matmul(W, Winv), np.broadcast_to(np.eye(5), W.shape),
                               atol=1e-12)
    v = rng.standard_normal((6, 5))
    np.testing.assert_allclose(_jprod(lam, _jdiv(lam, v)), v, atol=1e-10)


def test_cone_step_reaches_the_boundary(rng):
    s = _inside(rng, 50, 4)
    ds = 3.0 * rng.standard_normal((50, 4))
    for j in range(50):
        a = _soc_step(s[j:j + 1], ds[j:j + 1])
        x = s[j] + min(a, 1e6) * ds[j]
        if np.isfinite(a):  # on the boundary, inside just before
            assert abs(x[0] - np.linalg.norm(x[1:])) <= 1e-9 * (1 + np.abs(x).max())
            x = s[j] + 0.99 * a * ds[j]
        assert x[0] >= np.linalg.norm(x[1:]) - 1e-12
    assert _soc_step(s, np.abs(s) * np.array([1, 0, 0, 0])) == np.inf


@pytest.mark.parametrize("bias, penalize_bias", [(True, False), (True, True), (False, False)])
@pytest.mark.parametrize("n, k", [(60, 8), (30, 12)])  # dense, Woodbury (n < 2 k d_a)
def test_matches_cvxpy(rng, bias, penalize_bias, n, k):
    prog = _program(rng, bias, penalize_bias, n=n, k=k)
    woodbury = n < 2 * k * prog.d_aug
    assert _State(prog).woodbury == woodbury
    ref = _reference(prog)
    sol = RestrictedSocpSolver().solve(prog)
    assert sol.status == "optimal"
    assert sol.info["woodbury"] == woodbury
    assert sol.objective == pytest.approx(ref.objective, rel=1e-7)
    assert sol.objective >= ref.objective * (1 - 1e-7)
    assert prog.max_violation(sol.V, sol.W) <= 1e-12


@pytest.mark.parametrize("n", [60, 25])
def test_without_output_bias(rng, n):
    prog = _program(rng, fit_output_bias=False, n=n)
    ref = _reference(prog)
    sol = RestrictedSocpSolver().solve(prog)
    assert sol.output_bias == 0.0
    assert sol.objective == pytest.approx(ref.objective, rel=1e-7)


def test_degenerate_integer_grid_data(rng):
    """Repeated rows and collinear points (an integer grid, every point twice)."""
    g = np.array([[i, j] for i in range(-2, 3) for j in range(-2, 3)], float)
    X = np.vstack([g, g])
    for n_pat in (6, 14):
        prog = _program(rng, X=X, k=n_pat, alpha=0.3)
        ref = _reference(prog)
        sol = RestrictedSocpSolver().solve(prog)
        assert sol.objective == pytest.approx(ref.objective, rel=1e-7)
        assert prog.max_violation(sol.V, sol.W) <= 1e-12


def test_rejects_a_non_quadratic_loss(rng):
    X = rng.standard_normal((30, 2))
    pats = sample_patterns(X, 4, random_state=0, bias=True)
    prog = ConvexProgram(X, np.sign(X[:, 0]), pats, loss="logistic", alpha=0.1, bias=True)
    with pytest.raises(ValueError, match="quadratic"):
        RestrictedSocpSolver().solve(prog)


def test_auto_inner_routes_quadratic_programs_to_it(rng, monkeypatch):
    calls = _spy(monkeypatch, RestrictedSocpSolver, lambda program: program.n_patterns)
    prog = _program(rng)
    inner = _AutoInner(1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=1e-10 is below the restricted certificate's
        exact = inner.solve(prog)  # the loop's gap is small: compressed Clarabel
        assert calls == []
        inner.rough = True  # the loop's gap is large
        sol = inner.solve(prog)
    assert calls == [prog.n_patterns]
    ref = _reference(prog).objective
    assert sol.objective == pytest.approx(ref, rel=1e-7)
    assert exact.objective == pytest.approx(ref, rel=1e-9)


def test_auto_inner_falls_back_to_clarabel(rng, monkeypatch):
    """A solve that fails (or stops short) goes to the compressed Clarabel path."""
    def fails(self, program, warm_start=None):
        raise np.linalg.LinAlgError("the interior point diverged")

    used = _spy(monkeypatch, CompressedReluSolver, lambda program: "clarabel")
    monkeypatch.setattr(RestrictedSocpSolver, "_solve", fails)
    prog = _program(rng)
    inner = _AutoInner(1e-10)
    inner.rough = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=1e-10 is below the restricted certificate's
        sol = inner.solve(prog)
    assert used == ["clarabel"]
    assert sol.objective == pytest.approx(_reference(prog).objective, rel=1e-8)


def test_loop_ends_on_an_exact_solve(rng, monkeypatch):
    """The working-set loop hands its large-gap rounds to the cone solver and never stops
    on such a rough solve: it reaches the full program's optimum to 1e-7 with a sparse
    network."""
    from convexrelu.arrangements import enumerate_patterns
    from convexrelu.solvers._column_generation import ColumnGenerationSolver

    calls = _spy(monkeypatch, RestrictedSocpSolver, lambda program: program.n_patterns)
    X = rng.standard_normal((9, 2))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(9)
    prog = ConvexProgram(X, y, enumerate_patterns(X, bias=True), loss="squared", alpha=0.1,
                         bias=True, penalize_bias=True)
    ref = _reference(prog)
    sol = ColumnGenerationSolver(tol=1e-7).solve(prog)
    assert calls  # the first rounds are rough
    assert sol.status == "optimal" and sol.info["rel_gap"] <= 1e-7
    assert sol.objective == pytest.approx(ref.objective, rel=1e-7)
    assert len(sol.info["support"]) < prog.n_patterns


@pytest.mark.slow  # default-run time (294 s in CI on 2026-12-05, the limit 300)
def test_regressor_fit_is_the_same_as_with_clarabel(monkeypatch):
    """A default regressor fit (every pattern listed, the working-set loop's global
    optimum, certified) reaches the same objective with either restricted solver."""
    from convexrelu import ConvexReLURegressor

    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 2))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = ConvexReLURegressor(random_state=0).fit(X, y)
        monkeypatch.setattr(_AutoInner, "_socp_fits", lambda self, program: False)
        ref = ConvexReLURegressor(random_state=0).fit(X, y)
    assert ours.objective_ == pytest.approx(ref.objective_, rel=1e-6)
    assert ours.certificate_.optimal and ours.certificate_.exact


def test_a_slow_cone_solve_hands_the_loop_to_clarabel(rng, monkeypatch):
    """A rough solve that needs more Newton steps than the limit (the interpolating regime)
    makes the rest of the loop's quadratic programs go to compressed Clarabel."""
    from convexrelu.solvers import _column_generation as cg

    used = _spy(monkeypatch, CompressedReluSolver, lambda program: "clarabel")
    _spy(monkeypatch, RestrictedSocpSolver, lambda program: "socp", used)
    monkeypatch.setattr(cg, "_SOCP_SLOW_ITER", 5)
    prog = _program(rng)
    inner = _AutoInner(1e-10)
    inner.rough = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = inner.solve(prog)  # optimal but slow: kept, and the flag is set
        second = inner.solve(prog)
    assert used == ["socp", "clarabel"]
    assert inner._socp_slow
    assert first.objective == pytest.approx(second.objective, rel=1e-7)


def test_one_failed_cone_solve_does_not_hand_the_loop_to_clarabel(rng, monkeypatch):
    """A failed rough solve goes to Clarabel; the cone solver stays for the next program
    until it fails a second time (``_SOCP_MAX_FAILURES``)."""
    from convexrelu.solvers import _column_generation as cg

    used = _spy(monkeypatch, CompressedReluSolver, lambda program: "clarabel")
    outcomes = iter(["fail", "ok", "fail", "ok"])
    orig = RestrictedSocpSolver._solve

    def flaky(self, program, warm_start=None):
        used.append("socp")
        if next(outcomes) == "fail":
            raise np.linalg.LinAlgError("stalled")
        return orig(self, program, warm_start)

    monkeypatch.setattr(RestrictedSocpSolver, "_solve", flaky)
    prog = _program(rng)
    inner = cg._AutoInner(1e-10)
    inner.rough = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        objs = [inner.solve(prog).objective for _ in range(4)]
    assert used == ["socp", "clarabel", "socp", "socp", "clarabel", "clarabel"]
    assert inner._socp_slow and inner._socp_failures == cg._SOCP_MAX_FAILURES
    assert max(objs) == pytest.approx(min(objs), rel=1e-7)

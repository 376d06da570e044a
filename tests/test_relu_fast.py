"""ReluFastSolver ("relu"): interior point or working-set loop, certified over all patterns."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from convexrelu.arrangements import ActivationPatterns, enumerate_patterns, sample_patterns
from convexrelu.certificates import dual_constraint
from convexrelu.program import ConvexProgram, ConvexSolution
from convexrelu.solvers import CvxpySolver, ReluFastSolver, get_solver
from convexrelu.certificates._gap import best_dual_scale, dual_point


def _data(n=14, d=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0) - 0.5 * X[:, 0] + 0.1 * rng.standard_normal(n)
    return X, y


def _program(bias, penalize_bias, fit_output_bias, sampled, alpha=0.1, n=14, d=2, seed=0):
    X, y = _data(n, d, seed)
    if sampled:
        Xa = np.hstack([X, np.ones((n, 1))]) if bias else X
        G = np.random.default_rng(seed + 1).standard_normal((Xa.shape[1], 30))
        pats = ActivationPatterns.from_gates(X, G, bias=bias)
    else:
        pats = enumerate_patterns(X, bias=bias)
    return ConvexProgram(X, y, pats, loss="squared", alpha=alpha, bias=bias,
                         penalize_bias=penalize_bias, fit_output_bias=fit_output_bias)


def _independent_gap(prog, sol):
    """Sum-form gap of ``sol`` with ``M(lambda)`` evaluated once over all patterns."""
    z = prog.predict(sol.V, sol.W, sol.output_bias)
    primal = float(prog.loss.value(z, prog.y)) + prog.alpha * prog.penalty(sol.V, sol.W)
    free = prog.bias and not prog.penalize_bias
    lam, _ = dual_point(prog.loss, z, prog.y, output_bias=prog.fit_output_bias or free)
    M = dual_constraint(prog.patterns, prog.X, lam,
                        penalize_bias=prog.penalize_bias or not prog.bias).value
    _, dual = best_dual_scale(prog.loss, lam, prog.y, np.inf if M == 0 else prog.alpha / M)
    return primal, primal - dual


CASES = [  # (bias, penalize_bias, fit_output_bias, sampled)
    (False, False, False, False),
    (False, False, True, True),
    (True, True, False, False),
    (True, True, True, True),
    (True, False, True, False),
    (True, False, False, True),
]


@pytest.mark.parametrize("method", ["auto", "barrier", "working_set"])
@pytest.mark.parametrize("bias,pen,ob,sampled", CASES)
def test_matches_cvxpy_and_gap_is_honest(bias, pen, ob, sampled, method):
    prog = _program(bias, pen, ob, sampled)
    if method == "barrier" and bias and not pen:
        with pytest.raises(ValueError, match="free hidden bias"):
            ReluFastSolver(method=method).solve(prog)
        return
    ref = CvxpySolver(tol=1e-10, max_iter=1000).solve(prog)
    sol = ReluFastSolver(tol=1e-6, method=method).solve(prog)
    assert sol.status == "optimal"
    if method == "barrier":
        assert sol.info["method"] == "barrier"
    assert abs(sol.objective - ref.objective) <= 1e-6 * abs(ref.objective)
    assert sol.info["rel_gap"] <= 1e-6
    assert prog.max_violation(sol.V, sol.W) <= 1e-9
    primal, gap = _independent_gap(prog, sol)
    assert primal / prog.n_samples == pytest.approx(sol.objective, rel=1e-12)
    # the independent certificate agrees with the reported one (both are valid bounds)
    assert gap <= 1e-6 * abs(primal) + 1e-12
    assert sol.gap * prog.n_samples >= gap - 1e-9 * abs(primal)
    # the gap bounds the distance to the reference optimum
    assert sol.objective - ref.objective <= sol.gap + 1e-9 * abs(ref.objective)


def test_three_features_and_registry():
    prog = _program(True, True, False, True, alpha=0.2, n=20, d=3, seed=3)
    ref = CvxpySolver(tol=1e-10, max_iter=1000).solve(prog)
    sol = get_solver("relu", tol=1e-6).solve(prog)
    assert isinstance(get_solver("relu"), ReluFastSolver)
    assert abs(sol.objective - ref.objective) <= 1e-6 * abs(ref.objective)
    assert sol.info["rel_gap"] <= 1e-6


def _one_block_start(prog):
    """A warm start whose support (the initial working set) is one pattern."""
    V = np.zeros((prog.n_patterns, prog.d_aug))
    V[0] = prog.patterns.gates[:, 0]
    return ConvexSolution(V=V, W=np.zeros_like(V), output_bias=0.0, objective=0.0,
                          dual=np.zeros(prog.n_samples), status="", n_iter=1, solve_time=0.0)


def test_adds_violating_patterns_from_a_poor_working_set():
    prog = _program(True, True, False, False, alpha=0.1)
    ref = CvxpySolver(tol=1e-10, max_iter=1000).solve(prog)
    # a one-pattern working set: column generation must find the rest
    sol = ReluFastSolver(tol=1e-6, n_add=2, max_iter=100, method="working_set").solve(
        prog, warm_start=_one_block_start(prog))
    assert sol.info["rounds"] >= 2
    assert abs(sol.objective - ref.objective) <= 1e-6 * abs(ref.objective)


def test_max_iter_warns_with_remedy():
    prog = _program(True, True, False, False, alpha=0.05)
    with pytest.warns(ConvergenceWarning, match="Increase max_iter") as rec:
        sol = ReluFastSolver(tol=1e-6, n_add=1, max_iter=1, method="working_set").solve(
            prog, warm_start=_one_block_start(prog))
    assert len([w for w in rec if w.category is ConvergenceWarning]) == 1  # one warning
    assert sol.status == "max_iter_reached"
    # the reported gap is a valid bound: it covers the distance to the reference optimum
    ref = CvxpySolver(tol=1e-10, max_iter=1000).solve(prog)
    assert sol.objective - ref.objective <= sol.gap + 1e-9


@pytest.mark.parametrize("loss", ["logistic", "huber"])
def test_other_smooth_losses_use_the_working_set_loop(loss):
    X, y = _data()
    yy = (y > 0).astype(int) if loss == "logistic" else y
    prog = ConvexProgram(X, yy, enumerate_patterns(X, bias=True), loss=loss, alpha=0.1,
                         bias=True)
    sol = ReluFastSolver().solve(prog)
    assert sol.info["method"] == "working_set" and sol.status == "optimal"
    ref = CvxpySolver(tol=1e-9).solve(prog)
    # ours is certified to 1e-6; Clarabel's exponential cone is less accurate (ours is
    # below it for the logistic loss), so compare within the reference's accuracy
    assert sol.info["rel_gap"] <= 1e-6
    assert sol.objective <= ref.objective * (1 + 1e-6)
    assert sol.objective == pytest.approx(ref.objective, rel=1e-5)


def test_bad_parameters():
    prog = _program(False, False, False, False)
    with pytest.raises(ValueError, match="The 'tol' parameter of ReluFastSolver must be"):
        ReluFastSolver(tol=2.0).solve(prog)
    with pytest.raises(ValueError, match="The 'max_iter' parameter of ReluFastSolver"):
        ReluFastSolver(max_iter=0).solve(prog)
    with pytest.raises(ValueError, match="method"):
        ReluFastSolver(method="active_set").solve(prog)
    with pytest.raises(ValueError, match="does not take 'max_newtons'; its parameters"):
        get_solver("relu", max_newtons=3)
    gated = ConvexProgram(prog.X, prog.y, prog.patterns, loss="squared", alpha=0.1,
                          bias=False, formulation="gated_relu")
    with pytest.raises(ValueError, match="formulation"):
        ReluFastSolver().solve(gated)


def test_polish_support_release_rows_reaches_kkt():
    from convexrelu._polish import polish_support

    prog = _program(False, False, False, False, n=14, d=2)
    ref = CvxpySolver(tol=1e-10, max_iter=1000).solve(prog)
    # start from the reference support but force every block onto a wrong face: one
    # binding row each is imposed; releasing rows with negative multipliers must recover
    B = np.vstack([ref.V, ref.W])
    nrm = np.linalg.norm(B, axis=1)
    keep = nrm > 1e-6 * nrm.max()
    B[~keep] = 0.0
    V, W = B[:prog.n_patterns], B[prog.n_patterns:]
    out = polish_support(prog, V, W, 0.0, drop_rows=True, max_newton=300)
    assert out is not None
    Vp, Wp, c0 = out
    assert prog.max_violation(Vp, Wp) <= 1e-9
    assert prog.objective(Vp, Wp, c0) <= prog.objective(V, W, 0.0) + 1e-12


def test_time_limit_stops_with_warning_and_validates():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3))
    y = np.maximum(X @ rng.standard_normal(3), 0) + 0.1 * rng.standard_normal(40)
    prog = ConvexProgram(X, y, sample_patterns(X, 30, random_state=0), loss="squared",
                         alpha=1e-3, bias=False)
    with pytest.warns(ConvergenceWarning, match="time_limit"):
        sol = ReluFastSolver(tol=1e-12, time_limit=1e-9, method="working_set").solve(prog)
    assert sol.status == "max_iter_reached" and sol.n_iter <= 2
    assert np.isfinite(sol.info["rel_gap"])
    for bad in (0, -1.0, "1"):
        with pytest.raises(ValueError, match="time_limit"):
            ReluFastSolver(time_limit=bad).solve(prog)


@pytest.mark.parametrize("ob", [False, True])
def test_barrier_mid_size_matches_cvxpy_without_a_conic_solver(monkeypatch, ob):
    """The interior-point path on a problem with many cone rows per block (n=80, 60
    sampled patterns, 120 blocks): objective vs cvxpy, an independent certificate, and
    no call to the restricted Clarabel solver."""
    import convexrelu.solvers._cg_inner as cgi

    rng = np.random.default_rng(7)
    X = rng.standard_normal((80, 4))
    y = np.maximum(X @ rng.standard_normal((4, 3)), 0) @ rng.standard_normal(3)
    y += 0.1 * rng.standard_normal(80)
    G = rng.standard_normal((5, 60))
    prog = ConvexProgram(X, y, ActivationPatterns.from_gates(X, G, bias=True),
                         loss="squared", alpha=0.5, bias=True, penalize_bias=True,
                         fit_output_bias=ob)
    ref = CvxpySolver(tol=1e-10, max_iter=1000).solve(prog)

    def boom(*a, **k):
        raise AssertionError("Clarabel must not be called on the barrier path")

    monkeypatch.setattr(cgi.CompressedReluSolver, "_clarabel", boom)
    sol = ReluFastSolver(tol=1e-7).solve(prog)
    assert sol.info["method"] == "barrier" and sol.status == "optimal"
    assert sol.info["rel_gap"] <= 1e-7
    assert abs(sol.objective - ref.objective) <= 1e-6 * abs(ref.objective)
    assert prog.max_violation(sol.V, sol.W) <= 0.0
    primal, gap = _independent_gap(prog, sol)
    assert primal / prog.n_samples == pytest.approx(sol.objective, rel=1e-12)
    assert gap <= 1e-7 * abs(primal) + 1e-12
    # sparse answer: most of the 120 blocks are (numerically) zero
    assert sol.info["support"].size < 60


@pytest.mark.parametrize("alpha,yscale", [(0.05, 1.0), (20.0, 1.0), (0.5, 1e-6),
                                          (0.01, 1e3)])
def test_barrier_start_length_follows_the_loss_and_penalty(monkeypatch, alpha, yscale):
    """The barrier's blocks start from the unit gates scaled to the length that makes
    the penalty equal the loss at zero prediction (clipped to 1e-4..1e4): penalty- and
    loss-dominated programs, a tiny and a large target alike reach cvxpy's optimum."""
    import convexrelu.solvers._relu_ipm as ipm

    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 3))
    y = yscale * (np.maximum(X @ rng.standard_normal(3), 0) + 0.1 * rng.standard_normal(50))
    G = rng.standard_normal((4, 25))
    prog = ConvexProgram(X, y, ActivationPatterns.from_gates(X, G, bias=True),
                         loss="squared", alpha=alpha, bias=True, penalize_bias=True)
    starts = []
    orig = ipm._interior_start

    def spy(*args):
        B = orig(*args)
        starts.append(B)
        return B

    monkeypatch.setattr(ipm, "_interior_start", spy)
    ref = CvxpySolver(tol=1e-10, max_iter=1000).solve(prog)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = ReluFastSolver(tol=1e-7, method="barrier").solve(prog)
    assert starts and np.allclose(np.linalg.norm(starts[0], axis=1), 1.0)  # unit gates
    assert sol.status == "optimal" and sol.info["method"] == "barrier"
    assert abs(sol.objective - ref.objective) <= 1e-6 * abs(ref.objective) + 1e-14
    assert prog.max_violation(sol.V, sol.W) <= 1e-9 * max(1.0, yscale)


def test_barrier_newton_step_matches_dense_hessian():
    """The block-Woodbury Newton step equals a dense solve with a finite-difference
    Hessian of the barrier function (with and without a free output bias)."""
    from convexrelu.regularizers import GroupL2Penalty
    from convexrelu.solvers._relu_ipm import _newton

    rng = np.random.default_rng(0)
    n, d, P = 12, 3, 4
    Xa = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])
    G = rng.standard_normal((d, P))
    masks = Xa @ G > 0
    y = rng.standard_normal(n)
    Mf = masks.astype(float)
    S, A = np.hstack([Mf, -Mf]), np.where(np.hstack([masks, masks]), 1.0, -1.0)
    XX = (Xa[:, :, None] * Xa[:, None, :]).reshape(n, d * d)
    mu, beta = 0.1, 0.3
    for ob in (False, True):
        B = np.vstack([G.T, G.T]) * (1 + 0.3 * rng.random((2 * P, 1)))
        yc = y - y.mean() if ob else y

        def F(x, ob=ob, yc=yc):
            U = Xa @ x.T
            r = np.einsum("ij,ij->i", S, U)
            r = (r - r.mean() if ob else r) - yc
            return (0.5 * r @ r + beta * np.linalg.norm(x, axis=1).sum()
                    - mu * np.log(A * U).sum())

        h, N = 1e-4, B.size
        E = np.eye(N).reshape(N, *B.shape)
        gr = np.array([(F(B + h * e) - F(B - h * e)) / (2 * h) for e in E])
        Hn = np.array([[(F(B + h * a + h * b) - F(B + h * a - h * b) - F(B - h * a + h * b)
                         + F(B - h * a - h * b)) / (4 * h * h) for b in E] for a in E])
        g, step = _newton(Xa, S, A, np.ones(n, bool), XX, yc, B, mu, beta, 1.0,
                          GroupL2Penalty(d), ob)
        np.testing.assert_allclose(g.ravel(), gr, rtol=1e-4, atol=1e-4 * np.abs(gr).max())
        sd = -np.linalg.solve(Hn, gr)
        np.testing.assert_allclose(step.ravel(), sd, atol=1e-3 * np.abs(sd).max())


def test_cone_projection_warm_start_gives_the_same_bound():
    from convexrelu.certificates._dual import _project_cone

    rng = np.random.default_rng(5)
    G = rng.standard_normal((60, 6))
    Gn = G / np.linalg.norm(G, axis=1, keepdims=True)
    for _ in range(10):
        c = rng.standard_normal(6)
        val, u, rows = _project_cone(Gn, c)
        assert np.all(Gn @ u >= -1e-10)
        # any guess of the face (right, partly wrong, or nonsense) ends at the same value
        for init in (rows, np.arange(5), rng.choice(60, 3, replace=False)):
            v2, u2, _ = _project_cone(Gn, c, init=init)
            assert v2 == pytest.approx(val, rel=1e-9, abs=1e-12)
            np.testing.assert_allclose(u2, u, atol=1e-9)


def test_barrier_time_limit_returns_without_continuation():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((60, 3))
    y = np.maximum(X @ rng.standard_normal(3), 0) + 0.1 * rng.standard_normal(60)
    prog = ConvexProgram(X, y, sample_patterns(X, 40, random_state=1), loss="squared",
                         alpha=0.1, bias=False)
    with pytest.warns(ConvergenceWarning, match="relative duality gap"):
        sol = ReluFastSolver(tol=1e-9, time_limit=1e-9).solve(prog)
    assert sol.info["method"] == "barrier" and sol.status == "max_iter_reached"
    assert sol.n_iter == 1 and np.isfinite(sol.info["rel_gap"])
    assert prog.max_violation(sol.V, sol.W) <= 0.0


def test_barrier_refuses_a_free_hidden_bias():
    """The barrier problem is unbounded with an unpenalised coordinate: it says so."""
    from convexrelu.regularizers import GroupL2Penalty
    from convexrelu.solvers._relu_ipm import solve_relu_barrier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 2))
    pats = enumerate_patterns(X, bias=True)
    with pytest.raises(ValueError, match="needs every block coordinate penalised"):
        solve_relu_barrier(pats.augment(X), pats.masks, rng.standard_normal(8), 0.1,
                           gates=pats.gates, regularizer=GroupL2Penalty(3, free_bias=True))


@pytest.mark.parametrize("alpha", [5.0, 50.0])
def test_stopped_barrier_never_returns_worse_than_zero(alpha):
    """An interior point stopped after a few Newton steps sits far from the optimum (its
    objective was 40-2800x the zero network's here); the solver returns the zero network
    (feasible for every ReLU program) with its certified gap instead."""
    from convexrelu.arrangements import sample_patterns
    from convexrelu.certificates._gap import duality_gap
    from convexrelu.program import ConvexProgram

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 5)), rng.standard_normal(60)
    pats = sample_patterns(X, 40, random_state=0, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=alpha, bias=True,
                         penalize_bias=True)
    with warnings.catch_warnings():  # at alpha=50 the zero network is optimal: no warning
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = ReluFastSolver(method="barrier", max_newton=2).solve(prog)
    Z = np.zeros((40, prog.d_aug))
    assert sol.objective <= prog.objective(Z, Z, y.mean()) + 1e-12
    assert sol.info["zero_network"] and np.all(sol.V == 0) and np.all(sol.W == 0)
    dg = duality_gap(prog, sol.V, sol.W, sol.output_bias)
    assert abs(sol.gap - dg.gap / 60) <= 1e-12 * max(1.0, dg.gap)


def test_exact_solve_after_a_rough_one_within_tol_is_not_priced_again(monkeypatch):
    """A rough restricted solve whose pricing is already within tol is followed by an
    exact solve over its kept blocks; where that solve is within tol of the dual bound
    certified before it, the loop ends there (one pricing pass fewer). The gap stays
    honest: an independent certificate over all patterns, at the returned network's own
    dual point, is within tol too."""
    import convexrelu.solvers._column_generation as cg
    from sklearn.datasets import make_regression

    X, y = make_regression(200, 5, n_informative=3, noise=10.0, random_state=0)
    y = (y - y.mean()) / y.std()
    pats = sample_patterns(X, 40, random_state=0, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=1.0, bias=True,
                         penalize_bias=False)
    lam0, _ = dual_point(prog.loss, np.zeros(200), y, output_bias=True)
    prog = prog.with_alpha(0.1 * dual_constraint(pats, X, lam0, penalize_bias=False).value)
    calls = []
    real = cg._PatternOracle.evaluate_many
    monkeypatch.setattr(cg._PatternOracle, "evaluate_many",
                        staticmethod(lambda o, lams: calls.append(1) or real(o, lams)))
    sol = get_solver("relu", tol=1e-6).solve(prog)
    assert sol.status == "optimal" and sol.info["rel_gap"] <= 1e-6
    hist = sol.info["history"]
    assert len(hist) == len(calls) + 1  # the last entry is the exact solve's, not priced
    # the same dual bound as the last pricing's (primal minus gap)
    assert hist[-1][2] - hist[-1][3] == pytest.approx(hist[-2][2] - hist[-2][3], rel=1e-12)
    primal, gap = _independent_gap(prog, sol)
    assert gap <= 1e-6 * primal

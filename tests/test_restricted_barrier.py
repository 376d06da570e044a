"""The dense barrier method for restricted ReLU programs against the cvxpy reference."""

import warnings

import numpy as np
import pytest

from convexrelu.arrangements import sample_patterns
from convexrelu.program import ConvexProgram
from convexrelu.solvers import get_solver
from convexrelu.solvers._column_generation import _AutoInner
from convexrelu.solvers._restricted_barrier import RestrictedBarrierSolver
from convexrelu.solvers._restricted_socp import RestrictedSocpSolver


def _program(rng, loss, bias, penalize_bias, n=60, d=4, k=8, fit_output_bias=True, alpha=0.5):
    X = rng.standard_normal((n, d))
    y = X[:, 0] - np.abs(X[:, 1]) + 0.1 * rng.standard_normal(n)
    if loss in ("logistic", "hinge"):
        y = np.sign(y)
    pats = sample_patterns(X, k, random_state=1, bias=bias)
    return ConvexProgram(X, y, pats, loss=loss, alpha=alpha, bias=bias,
                         penalize_bias=penalize_bias, fit_output_bias=fit_output_bias)


def _reduced_and_dense(rng, Q, Qd, Hv, Hw, ob, rho, floor):
    """The reduced Newton solve and a dense factor's solve of the same system, the
    reduced one's residual asserted within 10x the dense one's (or ``floor``)."""
    from convexrelu.solvers._restricted_barrier import (_factor, newton_matrix,
                                                        reduced_newton_solver)

    H = newton_matrix(Qd, np.concatenate([Hv, Hw]), ob, rho)
    g = rng.standard_normal(H.shape[0])
    solve = reduced_newton_solver(Q, Hv, Hw, ob, rho)
    assert solve is not None
    x = solve(g)
    assert x is not None
    x_dense = _factor(H)(g)
    res = np.linalg.norm(H @ x - g) / np.linalg.norm(g)
    res_dense = np.linalg.norm(H @ x_dense - g) / np.linalg.norm(g)
    assert res <= max(10 * res_dense, floor)
    return x, x_dense


def _spy_barrier(monkeypatch, record, of_solver=None):
    """Record ``record(program)`` (or ``of_solver(solver)``) for every restricted barrier
    solve; the list."""
    calls = []
    orig = RestrictedBarrierSolver._solve

    def spy(self, program, warm_start=None):
        calls.append(record(program) if of_solver is None else of_solver(self))
        return orig(self, program, warm_start)

    monkeypatch.setattr(RestrictedBarrierSolver, "_solve", spy)
    return calls


def _barrier_tols(monkeypatch):
    """Every restricted program of the inner solver to the barrier; the list of the
    barrier's ``tol`` at each of its solves."""
    monkeypatch.setattr(_AutoInner, "_BARRIER_MIN_DESIGN", 0)
    monkeypatch.setattr(_AutoInner, "_BARRIER_ROWS_PER_SAMPLE", 10**6)
    return _spy_barrier(monkeypatch, lambda p: None, lambda solver: solver.tol)


def _reference(prog):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_solver("cvxpy", tol=1e-10).solve(prog)


@pytest.mark.parametrize("loss", ["squared", "logistic", "huber"])
@pytest.mark.parametrize("bias, penalize_bias", [(True, False), (True, True), (False, False)])
def test_matches_cvxpy(rng, loss, bias, penalize_bias):
    prog = _program(rng, loss, bias, penalize_bias)
    ref = _reference(prog)
    sol = RestrictedBarrierSolver().solve(prog)
    assert sol.objective == pytest.approx(ref.objective, rel=1e-8)
    assert prog.max_violation(sol.V, sol.W) <= 1e-12
    assert sol.status == "optimal" and sol.info["rel_gap"] <= 1e-7


def test_without_output_bias(rng):
    prog = _program(rng, "logistic", True, False, fit_output_bias=False)
    ref = _reference(prog)
    sol = RestrictedBarrierSolver().solve(prog)
    assert sol.output_bias == 0.0
    assert sol.objective == pytest.approx(ref.objective, rel=1e-8)


@pytest.mark.parametrize("row_rounds", [3, 0])
def test_every_row_holds_on_a_larger_sample(rng, monkeypatch, row_rounds):
    """The solution satisfies all n cone rows of every block (n = 300): the first solve
    over each block's 32 margin rows violates other rows here, so the violated rows (and
    each block's nearest rows under its solution) are added and it solves again; with no
    such rounds allowed, the solve over every row follows at once. (A penalised bias: with
    a free one the first solve of these data already holds every row.)"""
    import convexrelu.solvers._restricted_barrier as rb

    monkeypatch.setattr(rb, "_ROW_ROUNDS", row_rounds)
    monkeypatch.setattr(rb, "_ROWS_PER_DIM", 1)  # 32 first rows per block
    prog = _program(rng, "logistic", True, True, n=300, d=2, k=12, alpha=0.2)
    ref = _reference(prog)
    sol = RestrictedBarrierSolver().solve(prog)
    if row_rounds:
        assert 32 * prog.n_patterns < sol.info["rows_kept"] < sol.info["rows_total"]
    else:
        assert sol.info["rows_kept"] == sol.info["rows_total"]
    assert prog.max_violation(sol.V, sol.W) <= 1e-12
    assert sol.objective == pytest.approx(ref.objective, rel=1e-8)


def test_first_rows_are_32_d_a_margin_rows(rng, monkeypatch):
    """Each block's first solve runs over its ``32 d_a`` margin rows, or every row where
    there are fewer (the solve over few rows was no faster per step and ran twice)."""
    import convexrelu.solvers._restricted_barrier as rb

    first, works = [], []
    orig = rb._PrimalDual.__init__

    def spy(self, program, rows, start=None, work=None, dense_ok=True, resume=None):
        first.append([len(r) for r in rows])
        works.append(work)
        orig(self, program, rows, start, work, dense_ok, resume)

    monkeypatch.setattr(rb._PrimalDual, "__init__", spy)
    prog = _program(rng, "logistic", True, False, n=300, d=2, k=12, alpha=0.2)
    lin = rb.linear_blocks(prog)  # the all-active pattern (free bias): no rows at all
    sol = RestrictedBarrierSolver().solve(prog)
    # d_aug = 3: 96 of 300 rows
    assert first[0] == [0 if i in lin else 32 * prog.d_aug for i in range(prog.n_patterns)]
    assert prog.max_violation(sol.V, sol.W) <= 1e-12
    # every round of rows gets the solve's one dict of Newton buffers
    assert isinstance(works[0], dict) and all(w is works[0] for w in works)
    first.clear()
    prog = _program(rng, "logistic", True, False, n=60, d=4, k=8)  # 32 d_aug = 160 > 60
    lin = rb.linear_blocks(prog)
    RestrictedBarrierSolver().solve(prog)
    assert first == [[0 if i in lin else 60 for i in range(prog.n_patterns)]]


def test_free_bias_blocks_carry_no_costless_growth(rng):
    """With a free hidden bias the barrier's interior lets both blocks of a pattern grow
    along the bias at no cost; the returned blocks are moved back (same predictions)."""
    prog = _program(rng, "squared", True, False)
    sol = RestrictedBarrierSolver().solve(prog)
    act = prog.masks
    # one of each pair of blocks touches an active row (no common slack left)
    for i in range(prog.n_patterns):
        a = act[:, i]
        if not a.any():
            continue
        sv = prog.X_aug[a] @ sol.V[i]
        sw = prog.X_aug[a] @ sol.W[i]
        assert min(sv.min(), sw.min()) <= 1e-9 * max(1.0, np.abs(sol.V).max())


def test_rejects_a_loss_without_curvature(rng):
    prog = _program(rng, "hinge", True, False)
    with pytest.raises(ValueError, match="curvature"):
        RestrictedBarrierSolver().solve(prog)


def test_auto_inner_routes_non_quadratic_losses_to_the_barrier(rng, monkeypatch):
    monkeypatch.setattr(_AutoInner, "_BARRIER_MIN_DESIGN", 0)  # small test programs
    calls = _spy_barrier(monkeypatch, lambda p: p.loss.name)
    inner = _AutoInner(1e-10)
    inner.solve(_program(rng, "logistic", True, False))
    inner.solve(_program(rng, "squared", True, False))  # quadratic: the cone solver
    assert calls == ["logistic"]
    # beyond the Newton matrix's size limit the other paths take it
    monkeypatch.setattr(_AutoInner, "_BARRIER_MAX_N", 10)
    _AutoInner(1e-10).solve(_program(rng, "logistic", True, False))
    assert calls == ["logistic"]
    # and below the design size where cvxpy is faster
    monkeypatch.setattr(_AutoInner, "_BARRIER_MAX_N", 4000)
    monkeypatch.setattr(_AutoInner, "_BARRIER_MIN_DESIGN", 10**9)
    _AutoInner(1e-10).solve(_program(rng, "logistic", True, False))
    assert calls == ["logistic"]


def test_auto_inner_takes_larger_programs_whose_curvature_stays_factored(rng, monkeypatch):
    """Beyond ``_BARRIER_MAX_N`` Newton rows the barrier still takes a restricted program
    with fewer samples than block coordinates (its loss Hessian kept as its factors:
    ``low_rank_curvature``, an ``n x n`` matrix per step), up to
    ``_BARRIER_MAX_N_LOW_RANK``; and solves it (digits: such programs went to the
    augmented Lagrangian, which stopped far from the optimum)."""
    from convexrelu.solvers._restricted_barrier import low_rank_curvature

    wide = _program(rng, "logistic", True, False, n=24, d=3, k=12, alpha=0.05)
    tall = _program(rng, "logistic", True, False, n=200, d=3, k=12, alpha=0.05)
    kd = wide.n_patterns * wide.d_aug
    N = 1 + 2 * kd
    assert low_rank_curvature(wide.n_samples, kd)
    assert not low_rank_curvature(tall.n_samples, tall.n_patterns * tall.d_aug)
    monkeypatch.setattr(_AutoInner, "_BARRIER_MAX_N", N - 1)
    monkeypatch.setattr(_AutoInner, "_BARRIER_MAX_N_LOW_RANK", N)
    inner = _AutoInner(1e-10)
    assert inner._barrier_can(wide) and not inner._barrier_can(tall)
    monkeypatch.setattr(_AutoInner, "_BARRIER_MAX_N_LOW_RANK", N - 1)
    assert not inner._barrier_can(wide)
    monkeypatch.setattr(_AutoInner, "_BARRIER_MAX_N_LOW_RANK", N)
    monkeypatch.setattr(_AutoInner, "_BARRIER_MIN_DESIGN", 0)
    monkeypatch.setattr(_AutoInner, "_BARRIER_ROWS_PER_SAMPLE", 10**6)
    calls = _spy_barrier(monkeypatch, lambda p: p.n_samples)
    sol = inner.solve(wide)
    assert calls == [wide.n_samples]
    assert sol.objective == pytest.approx(_reference(wide).objective, rel=1e-6)


def test_barrier_without_room_for_the_whole_newton_matrix(rng, monkeypatch):
    """Where the whole Newton matrix does not fit the memory budget beside the pieces
    every step uses (a program whose loss Hessian stays factored), the barrier never forms
    it: each step takes the reduced solve's refined direction, and the solve reaches
    cvxpy's objective. The inner solver takes such a program (before: only up to the
    budget of the whole matrix, and the augmented Lagrangian beyond), and gives it to the
    augmented Lagrangian when that reduced solve fails."""
    import convexrelu._memory as memory
    import convexrelu.solvers._restricted_barrier as rb
    from convexrelu.solvers._relu_al import ReluALSolver

    prog = _program(rng, "logistic", True, False, n=24, d=3, k=12, alpha=0.05)
    ref = _reference(prog)
    assert rb.low_rank_curvature(prog.n_samples, prog.n_patterns * prog.d_aug)
    steps, whole = rb.barrier_bytes(prog)
    assert whole == 8 * 2 * (1 + 2 * prog.n_patterns * prog.d_aug) ** 2
    accepts, formed = [], []
    reduced, newton = rb.reduced_newton_solver, rb.newton_matrix

    def spy_reduced(*args, accept=rb._PCG_ACCEPT):
        accepts.append(accept)
        return reduced(*args, accept=accept)

    monkeypatch.setattr(rb, "reduced_newton_solver", spy_reduced)
    monkeypatch.setattr(rb, "newton_matrix", lambda *a: formed.append(1) or newton(*a))
    sols = {}
    for budget in (steps + whole, steps + whole - 1):
        accepts.clear()
        monkeypatch.setattr(rb, "_budget_bytes", lambda: budget)
        sols[budget] = sol = RestrictedBarrierSolver().solve(prog)
        assert sol.objective == pytest.approx(ref.objective, rel=1e-8)
        assert prog.max_violation(sol.V, sol.W) <= 1e-12
        assert accepts and set(accepts) == (
            {rb._PCG_ACCEPT} if budget == steps + whole else {np.inf})
    assert not formed  # neither formed it here (every reduced solve converged)
    # the inner solver: the pieces of every step within the budget suffice
    monkeypatch.setattr(_AutoInner, "_BARRIER_MIN_DESIGN", 0)
    monkeypatch.setattr(_AutoInner, "_BARRIER_ROWS_PER_SAMPLE", 10**6)
    for budget, takes in ((steps, True), (steps - 1, False)):
        monkeypatch.setattr(memory, "_budget_bytes", lambda: budget)
        assert _AutoInner(1e-10)._barrier_can(prog) is takes
    # a reduced solve that fails without the whole matrix to fall back to: the barrier
    # raises, the inner solver goes on to the augmented Lagrangian
    monkeypatch.setattr(memory, "_budget_bytes", lambda: steps)
    monkeypatch.setattr(rb, "_budget_bytes", lambda: steps)
    monkeypatch.setattr(rb, "reduced_newton_solver", lambda *a, **k: None)
    with pytest.raises(np.linalg.LinAlgError, match="does not fit the memory budget"):
        RestrictedBarrierSolver().solve(prog)
    al = []
    real = ReluALSolver._solve

    def spy_al(self, program, warm_start=None):
        al.append(program.n_patterns)
        return real(self, program, warm_start)

    monkeypatch.setattr(ReluALSolver, "_solve", spy_al)
    monkeypatch.setattr(_AutoInner, "_cvxpy_fits", lambda self, program: False)
    inner = _AutoInner(1e-10)
    sol = inner.solve(prog)
    assert inner._barrier is not None and al == [prog.n_patterns]
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)


def test_loop_solves_logistic_programs_roughly_while_its_gap_is_large(rng, monkeypatch):
    """For a logistic loss the working-set loop's restricted programs go to the barrier
    at ``_BARRIER_ROUGH_TOL`` while the certified gap is above ``_ROUGH_RGAP``, at its
    exact tol after; the loop ends on an exact solve, certified, at the objective of the loop
    without rough solves, and no worse than cvxpy's over every pattern."""
    import convexrelu.solvers._column_generation as cg

    prog = _program(rng, "logistic", True, False, n=80, d=3, k=40, alpha=0.02)
    ref = _reference(prog)
    tols = _barrier_tols(monkeypatch)
    objs = []
    # the default; never rough; rough whenever patterns were added (a rough solve's
    # pricing within tol: exact solves from then on, no alternating working sets)
    for rough_rgap in (cg._ROUGH_RGAP, np.inf, 0.0):
        tols.clear()
        monkeypatch.setattr(cg, "_ROUGH_RGAP", rough_rgap)
        sol = cg.ColumnGenerationSolver(tol=1e-7, n_add=4).solve(prog)
        assert sol.status == "optimal" and sol.info["rel_gap"] <= 1e-7
        objs.append(sol.objective)
        exact = min(tols)
        assert exact < cg._BARRIER_ROUGH_TOL and tols[-1] == exact
        if np.isfinite(rough_rgap):
            assert tols[0] == cg._BARRIER_ROUGH_TOL and len(set(tols)) == 2
        else:
            assert set(tols) == {exact}
        if rough_rgap == 0.0:  # rough wherever something was added, exact at the end
            assert tols.count(cg._BARRIER_ROUGH_TOL) >= 2
    assert objs[0] == pytest.approx(objs[1], rel=1e-8)
    assert objs[2] == pytest.approx(objs[1], rel=1e-8)
    # cvxpy over all 40 patterns stops 7e-5 above the certified optimum here
    assert ref.objective * (1 - 1e-3) <= objs[0] <= ref.objective * (1 + 1e-9)


def test_grown_fit_solves_its_programs_exactly(monkeypatch):
    """A grown fit (its loop prices by a local search, an oracle with ``confirm``) never
    solves its logistic programs roughly: there rough points sent the search after
    neurons the exact ones do not want (the default digits fit went from 34 s to 46 s)."""
    import convexrelu.solvers._column_generation as cg
    from convexrelu import ConvexReLUClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = (np.abs(X[:, 0]) - 0.7 + 0.3 * rng.standard_normal(60) > 0).astype(int)
    tols = _barrier_tols(monkeypatch)
    est = ConvexReLUClassifier(random_state=0, max_patterns=600, certify=False)
    est._GROWN_SAMPLE = 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert not est.exact_patterns_
    assert len(tols) >= 2 and cg._BARRIER_ROUGH_TOL not in tols


def test_auto_inner_falls_back_to_the_barrier_when_clarabel_fails(rng, monkeypatch):
    """A quadratic restricted program on which the second-order-cone interior point and
    the compressed Clarabel solve both fail (Clarabel: NumericalError on
    make_regression(20000, 20)) is solved by the barrier instead."""
    from convexrelu.solvers._cg_inner import CompressedReluSolver

    prog = _program(rng, "squared", True, False)
    ref = _reference(prog)

    def fails(self, program, warm_start=None):
        raise RuntimeError("Clarabel returned status 'NumericalError'")

    def socp_fails(self, program, warm_start=None):
        raise np.linalg.LinAlgError("the interior point's reduced matrix is not positive "
                                    "definite")

    monkeypatch.setattr(CompressedReluSolver, "_solve", fails)
    monkeypatch.setattr(RestrictedSocpSolver, "_solve", socp_fails)
    inner = _AutoInner(1e-10)
    sol = inner.solve(prog)
    assert inner._barrier is not None
    assert sol.objective == pytest.approx(ref.objective, rel=1e-8)


def test_classifier_fit_is_the_same_with_the_barrier(monkeypatch):
    """A default classifier fit (every pattern listed: the working-set loop's global
    optimum) whose restricted programs all go to the barrier reaches the objective of the
    same fit with cvxpy's restricted solves, with a certificate."""
    import warnings

    from sklearn.datasets import make_classification

    from convexrelu import ConvexReLUClassifier

    X, y = make_classification(40, 2, n_informative=2, n_redundant=0, random_state=0)
    calls = _spy_barrier(monkeypatch, lambda p: p.n_patterns)
    monkeypatch.setattr(_AutoInner, "_BARRIER_ROWS_PER_SAMPLE", 10**6)
    objs = []
    for smallest in (10**12, 0):  # cvxpy for every restricted program, then the barrier
        monkeypatch.setattr(_AutoInner, "_BARRIER_MIN_DESIGN", smallest)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = ConvexReLUClassifier(random_state=0).fit(X, y)
        assert est.exact_patterns_ and est.certificate_.optimal
        objs.append(est.objective_)
        assert bool(calls) == (smallest == 0)
    assert objs[1] == pytest.approx(objs[0], rel=1e-6)


def test_auto_inner_falls_back_to_cvxpy_when_the_barrier_runs_out(rng, monkeypatch):
    """A logistic restricted program whose barrier solve runs out of Newton steps is
    solved again by cvxpy, and the better point is kept."""
    prog = _program(rng, "logistic", True, False)
    ref = _reference(prog)
    monkeypatch.setattr(_AutoInner, "_BARRIER_MIN_DESIGN", 0)
    inner = _AutoInner(1e-10)
    inner._barrier = RestrictedBarrierSolver(max_iter=3)
    sol = inner.solve(prog)
    assert inner._cvxpy is not None
    assert sol.objective == pytest.approx(ref.objective, rel=1e-7)


@pytest.mark.parametrize("rel, polished", [(5e-7, False), (1e-3, True)])
def test_auto_inner_keeps_a_converged_barrier_solve_near_its_certificate(
        rng, monkeypatch, rel, polished):
    """A barrier solve that converged but certified its restricted program just above
    1e-7 is kept (the loop's certificate over all patterns judges it; on digits a cvxpy
    re-solve of such a program took 431 s); one far above is polished and certified
    again, and kept without a cvxpy solve once that certificate holds (here the solve was
    in fact optimal)."""
    prog = _program(rng, "logistic", True, False)
    monkeypatch.setattr(_AutoInner, "_BARRIER_MIN_DESIGN", 0)
    solve = RestrictedBarrierSolver.solve

    def short_of_its_certificate(self, program, warm_start=None):
        sol = solve(self, program, warm_start)
        sol.status, sol.info["rel_gap"] = "not_converged", rel
        return sol

    monkeypatch.setattr(RestrictedBarrierSolver, "solve", short_of_its_certificate)
    inner = _AutoInner(1e-10)
    sol = inner.solve(prog)
    assert inner._cvxpy is None
    assert bool(sol.info.get("polished")) == polished
    assert polished == (sol.status == "optimal")
    assert sol.objective == pytest.approx(_reference(prog).objective, rel=1e-7)


@pytest.mark.parametrize("lowrank", [False, True])
@pytest.mark.parametrize("ob", [True, False])
@pytest.mark.parametrize("spread", [1.0, 1e6])
def test_reduced_newton_solve_matches_the_dense_factor(rng, ob, spread, lowrank):
    """The half-size reduced factor, refined by conjugate gradients on the exact matrix,
    solves the Newton system as accurately as one Cholesky factor of the whole matrix,
    also with block Hessians of very different scales along some rows; so does the
    reduced system solved through the samples' Woodbury matrix (the loss's Hessian kept
    as its factors, fewer samples than rows)."""
    from convexrelu.solvers._restricted_barrier import LowRankCurvature

    k, d = 5, 6
    n = 20 if lowrank else 40
    A = rng.standard_normal((n, 1 + k * d))
    A[:, 0] = 1.0
    h = rng.uniform(0.01, 0.25, n)
    Qd = A.T @ (A * h[:, None])
    if not ob:
        Qd = Qd[1:, 1:]
    Q = LowRankCurvature(A, h, ob) if lowrank else Qd
    if lowrank:
        z = rng.standard_normal(Qd.shape[0])
        np.testing.assert_allclose(Q @ z, Qd @ z, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(Q.dense(), Qd, rtol=1e-12, atol=1e-12)

    def blocks():
        G = rng.standard_normal((k, d, d))
        H = G @ np.swapaxes(G, 1, 2) + 1e-3 * np.eye(d)
        a = rng.standard_normal((k, d))
        return H + spread * a[:, :, None] * a[:, None, :]

    Hv, Hw, rho = blocks(), blocks(), 1e-6
    x, x_dense = _reduced_and_dense(rng, Q, Qd, Hv, Hw, ob, rho, 1e-12)
    assert np.linalg.norm(x - x_dense) <= 1e-6 * np.linalg.norm(x_dense)


@pytest.mark.parametrize("lowrank", [False, True])
def test_reduced_newton_solve_late_on_the_path(rng, lowrank):
    """Late on the central path: one block Hessian of each pair nearly singular (an
    active block, its radial direction held by ``rho`` alone, condition number ~1e17,
    where its own Cholesky factor can fail), the other huge (a zero block, every row active).
    The reduced solve factors only their sum, still solves the system (it used to decline
    it, and the whole matrix was factored), as accurately as the dense factor."""
    from convexrelu.solvers._restricted_barrier import LowRankCurvature

    k, d, rho = 4, 6, 1e-11
    n = 15 if lowrank else 60
    A = rng.standard_normal((n, 1 + k * d))
    A[:, 0] = 1.0
    h = rng.uniform(0.01, 0.25, n)
    Qd = A.T @ (A * h[:, None])
    Q = LowRankCurvature(A, h, True) if lowrank else Qd

    def active():  # beta / r (I - u u^T) + rho I, r ~ 1e-5
        u = rng.standard_normal((k, d))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        return 1e6 * (np.eye(d) - u[:, :, None] * u[:, None, :]) + rho * np.eye(d)

    def zero():  # every cone row active: z / s ~ 1e12
        G = rng.standard_normal((k, 3 * d, d))
        return 1e12 * np.swapaxes(G, 1, 2) @ G

    Hv, Hw = active(), zero()
    Hv[1], Hw[1] = Hw[1].copy(), Hv[1].copy()   # w active, v zero in one pair
    assert np.linalg.cond(Hv[0]) > 1e15 and np.linalg.cond(Hw[1]) > 1e15
    _reduced_and_dense(rng, Q, Qd, Hv, Hw, True, rho, 1e-10)


def test_reduced_newton_solve_declines_an_indefinite_block(rng):
    """A block Hessian that is not positive definite: no reduced solve (the caller factors
    the whole matrix)."""
    from convexrelu.solvers._restricted_barrier import reduced_newton_solver

    k, d = 2, 3
    Q = np.eye(1 + k * d)
    Hv = np.stack([np.eye(d)] * k)
    Hw = Hv.copy()
    Hw[1] = -np.eye(d)
    assert reduced_newton_solver(Q, Hv, Hw, True, 1e-6) is None


@pytest.mark.parametrize("seed", [0, 1])
def test_open_block_heading_to_zero_is_safeguarded(seed, monkeypatch):
    """The all-active pattern's blocks (every cone row active, the hidden bias free: no
    row bounds the bias) are open; where the optimum sets them to zero, steps the line
    search cut are replaced by the radially safeguarded Newton matrix's, and the solve
    still matches cvxpy with its certificate within 1e-7."""
    import convexrelu.solvers._restricted_barrier as rb

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, 3))
    y = np.sign(np.abs(X[:, 0]) - 0.7 + 0.3 * rng.standard_normal(300))
    pats = sample_patterns(X, 10, random_state=1, bias=True, linear=True)
    prog = ConvexProgram(X, y, pats, loss="logistic", alpha=20.0, bias=True,
                         penalize_bias=False, fit_output_bias=True)
    assert rb._PrimalDual(prog, [np.arange(300)] * prog.n_patterns).open_blocks.tolist() \
        == [0]
    used, parts = [], rb._PrimalDual._parts

    def spy(self, *args):
        out = parts(self, *args)
        safeguarded = out[-1]
        assert safeguarded is not None  # an open block, a logistic loss

        def counted():
            used.append(1)
            return safeguarded()
        return out[:-1] + (counted,)

    monkeypatch.setattr(rb._PrimalDual, "_parts", spy)
    sol = RestrictedBarrierSolver().solve(prog)
    assert used
    assert sol.status == "optimal" and sol.info["rel_gap"] <= 1e-7
    assert sol.objective == pytest.approx(_reference(prog).objective, rel=1e-7)
    assert np.linalg.norm(sol.V[0, :3] - sol.W[0, :3]) <= 1e-4


def test_auto_inner_routes_up_to_eight_newton_rows_per_sample_to_the_barrier(rng):
    """A logistic restricted program with 6-8 Newton rows per sample goes to the barrier
    (breast cancer at alpha = 1e-3, 56 patterns: 17 s where cvxpy's Clarabel failed and SCS
    took 200 s to a worse point), at the cvxpy reference's objective; beyond 8 it does not."""
    prog = _program(rng, "logistic", True, False, n=100, d=5, k=60, alpha=0.05)
    N = 1 + 2 * prog.n_patterns * prog.d_aug
    assert 6 * prog.n_samples < N <= 8 * prog.n_samples
    inner = _AutoInner(1e-10)
    assert inner._barrier_fits(prog)
    sol = inner.solve(prog)
    assert inner._cvxpy is None  # the barrier's own certificate was accepted
    assert sol.objective == pytest.approx(_reference(prog).objective, rel=1e-6)
    wide = _program(rng, "logistic", True, False, n=100, d=5, k=70, alpha=0.05)
    assert 1 + 2 * wide.n_patterns * wide.d_aug > 8 * wide.n_samples
    assert not inner._barrier_fits(wide)


@pytest.mark.parametrize("ob", [True, False])
def test_woodbury_solve_of_the_reduced_system_matches_a_dense_factor(rng, ob):
    """``LowRankCurvature.factor_plus``: ``Q + blockdiag(rho, P)`` solved through the
    ``n x n`` Woodbury matrix (the output bias by its Schur complement) equals a dense
    solve of the formed matrix."""
    from convexrelu.solvers._restricted_barrier import LowRankCurvature

    k, d, n = 6, 4, 10
    A = rng.standard_normal((n, 1 + k * d))
    A[:, 0] = 1.0
    h = rng.uniform(0.0, 0.25, n)
    G = rng.standard_normal((k, d, d))
    P = G @ np.swapaxes(G, 1, 2) + 1e-2 * np.eye(d)
    rho = 1e-3
    Q = LowRankCurvature(A, h, ob, drop=0.0)  # every sample (kept_samples: none left out)
    M = Q.dense()
    o = 1 if ob else 0
    for i in range(k):
        M[o + i * d:o + (i + 1) * d, o + i * d:o + (i + 1) * d] += P[i]
    if ob:
        M[0, 0] += rho
    r = rng.standard_normal(M.shape[0])
    x = Q.factor_plus(P, rho)(r)
    np.testing.assert_allclose(x, np.linalg.solve(M, r), rtol=1e-9, atol=1e-9)
    # with the Newton loop's buffers: the same solve, twice, in the same arrays
    work: dict = {}
    Qw = LowRankCurvature(A, h, ob, work=work, drop=0.0)
    np.testing.assert_allclose(Qw.factor_plus(P, rho)(r), x, rtol=1e-12, atol=1e-12)
    bufs = dict(work)
    assert set(bufs) == {"YT", "C", "factor"}
    np.testing.assert_allclose(Qw.factor_plus(P, rho)(r), x, rtol=1e-12, atol=1e-12)
    assert all(work[key] is b for key, b in bufs.items())
    P[0] = -np.eye(d)  # not positive definite: no solve
    assert Q.factor_plus(P, rho) is None


@pytest.mark.parametrize("ob", [True, False])
def test_low_rank_curvature_products_through_the_design_factors(rng, ob, monkeypatch):
    """``LowRankCurvature`` given the design's factors ``(X_a, masks)`` multiplies
    through them (no product with the dense design ``A``): the same products as ``A^T
    diag(h) A`` (and as its formed matrix), without and with an output bias; the barrier
    hands them over, and its solve is the same."""
    import convexrelu.solvers._restricted_barrier as rb

    n, d, k = 50, 4, 7
    Xa = rng.standard_normal((n, d))
    masks = rng.random((n, k)) < 0.5
    A = np.empty((n, 1 + k * d))
    A[:, 0] = 1.0
    A[:, 1:] = (masks[:, :, None] * Xa[:, None, :]).reshape(n, -1)
    h = rng.uniform(0.0, 1.0, n)
    plain = rb.LowRankCurvature(A, h, ob)
    # the dense design poisoned: the products must not read it
    fact = rb.LowRankCurvature(np.full_like(A, np.nan), h, ob,
                               factors=(Xa, masks.astype(float)))
    for _ in range(3):
        z = rng.standard_normal(plain.shape[0])
        np.testing.assert_allclose(fact @ z, plain @ z, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(fact @ z, plain.dense() @ z, rtol=1e-10, atol=1e-10)
        r = rng.standard_normal(n)
        np.testing.assert_allclose(fact.rmatvec(r), plain.A.T @ r, rtol=1e-12, atol=1e-12)
    # the barrier's low-rank curvature carries the factors: the design is never
    # multiplied, and the solve is the one of the dense products
    prog = _program(rng, "logistic", True, False, n=24, d=3, k=12, alpha=0.05,
                    fit_output_bias=ob)
    assert rb.low_rank_curvature(prog.n_samples, prog.n_patterns * prog.d_aug)
    sols, seen = [], []
    orig = rb.LowRankCurvature.__matmul__

    def spy(self, z):
        seen.append(self.factors is not None)
        return orig(self, z)

    init = rb.LowRankCurvature.__init__

    def without(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.factors = None

    monkeypatch.setattr(rb.LowRankCurvature, "__matmul__", spy)
    for keep in (True, False):
        seen.clear()
        if not keep:
            monkeypatch.setattr(rb.LowRankCurvature, "__init__", without)
        sols.append(RestrictedBarrierSolver().solve(prog))
        assert seen and set(seen) == {keep}
    assert sols[0].objective == pytest.approx(sols[1].objective, rel=1e-10)


@pytest.mark.parametrize("n", [103, 112])
@pytest.mark.parametrize("order", ["C", "F", "bool"])
@pytest.mark.parametrize("ob", [True, False])
def test_design_transposed_products_by_row_chunks(rng, ob, order, n, monkeypatch):
    """``factor_rmatvec`` over more rows than ``_RMATVEC_CHUNK`` sums its products chunk
    by chunk (103 rows: a last chunk shorter than the others; 112: whole chunks), its
    buffer in the masks' layout (a restricted program's are column-major): the same
    ``A^T r`` as the dense design's, with and without the output bias's entry."""
    import convexrelu.solvers._restricted_barrier as rb

    d, k = 5, 6
    Xa = rng.standard_normal((n, d))
    masks = rng.random((n, k)) < 0.5
    A = np.empty((n, 1 + k * d))
    A[:, 0] = 1.0
    A[:, 1:] = (masks[:, :, None] * Xa[:, None, :]).reshape(n, -1)
    r = rng.standard_normal(n)
    want = A.T @ r if ob else A[:, 1:].T @ r
    # (bools in row-major order: factor_masks's layout beyond _RMATVEC_CHUNK rows)
    M = np.ascontiguousarray(masks) if order == "bool" else \
        np.asarray(masks.astype(float), order=order)
    whole = rb.factor_rmatvec(Xa, M, r, ob)
    monkeypatch.setattr(rb, "_RMATVEC_CHUNK", 16)  # 7 chunks
    chunked = rb.factor_rmatvec(Xa, M, r, ob)
    np.testing.assert_allclose(whole, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [103, 112])
@pytest.mark.parametrize("ob", [True, False])
def test_design_products_fused_by_row_chunks(rng, ob, n, monkeypatch):
    """Beyond ``_RMATVEC_CHUNK`` rows ``factor_masks`` keeps the masks as row-major bools
    and ``factor_matvec`` runs both of its passes on each chunk of ``_MATVEC_CHUNK`` rows
    (103 rows: a last chunk shorter than the others; 112: whole chunks): the same ``A^T
    diag(h) A z`` as the dense design's and as the whole-array products over float masks,
    with and without the output bias's entry."""
    import convexrelu.solvers._restricted_barrier as rb

    d, k = 5, 6
    Xa = rng.standard_normal((n, d))
    masks = np.asfortranarray(rng.random((n, k)) < 0.5)  # a restricted program's layout
    A = np.empty((n, 1 + k * d))
    A[:, 0] = 1.0
    A[:, 1:] = (masks[:, :, None] * Xa[:, None, :]).reshape(n, -1)
    if not ob:
        A = A[:, 1:]
    h = rng.uniform(0.0, 0.25, n)
    z = rng.standard_normal(A.shape[1])
    want = A.T @ (h * (A @ z))
    Mf = rb.factor_masks(masks)
    assert Mf.dtype == np.float64
    whole = rb.factor_matvec((Xa, Mf), h, ob, z)
    monkeypatch.setattr(rb, "_RMATVEC_CHUNK", 50)
    monkeypatch.setattr(rb, "_MATVEC_CHUNK", 16)  # 7 chunks
    Mb = rb.factor_masks(masks)
    assert Mb.dtype == bool and Mb.flags.c_contiguous
    np.testing.assert_array_equal(Mb, masks)
    fused = rb.factor_matvec((Xa, Mb), h, ob, z)
    np.testing.assert_allclose(whole, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk", [None, 7, 16])
@pytest.mark.parametrize("order", ["C", "F"])
def test_violated_rows_by_row_chunks_match_the_dense_check(rng, chunk, order, monkeypatch):
    """``violated_rows`` (by chunks of rows: 7 rows, shorter than ``m``; 16, longer; None,
    one chunk) gives each pattern's violated rows and, where it has any, the ``m`` rows
    of smallest normalised slack under each of its blocks, as the dense ``n x k`` check
    with a full sort does: zero rows never near, skipped patterns never violated."""
    import convexrelu.solvers._restricted_barrier as rb

    if chunk is not None:
        monkeypatch.setattr(rb, "_CHECK_CHUNK", chunk)
    n, d, k, m = 61, 4, 5, 9
    Xa = rng.standard_normal((n, d))
    Xa[[3, 40]] = 0.0  # rows of zero norm
    masks = np.asarray(rng.random((n, k)) < 0.5, order=order)
    V, W = rng.standard_normal((k, d)), rng.standard_normal((k, d))
    V[1] = Xa[~masks[:, 1]].sum(0) * -1.0 + Xa[masks[:, 1]].sum(0)  # mostly inside
    rn = np.maximum(np.linalg.norm(Xa, axis=1), 1e-300)
    nz = np.flatnonzero(np.any(Xa != 0, axis=1))
    tol, skip = 1e-3, [2]
    bad, near = rb.violated_rows(Xa, masks, V, W, rn, nz, tol, m, skip=skip)
    signs = np.where(masks, 1.0, -1.0)
    Sv = signs * (Xa @ V.T) / rn[:, None]
    Sw = signs * (Xa @ W.T) / rn[:, None]
    want_bad = np.minimum(Sv, Sw) < -tol
    want_bad[:, skip] = False
    assert any(b.size for b in bad)
    for i in range(k):
        np.testing.assert_array_equal(np.sort(bad[i]), np.flatnonzero(want_bad[:, i]))
        if not want_bad[:, i].any():
            assert near[i].size == 0
            continue
        want = np.union1d(nz[np.argsort(Sv[nz, i])[:m]], nz[np.argsort(Sw[nz, i])[:m]])
        np.testing.assert_array_equal(near[i], want)
        assert 3 not in near[i] and 40 not in near[i]


@pytest.mark.parametrize("ob", [True, False])
def test_woodbury_matrix_leaves_out_the_samples_of_least_leverage(rng, ob):
    """``kept_samples``: the samples of least leverage ``||Y_j||^2`` (``Y = U
    blockdiag(L^{-T})``), as many as keep their sum within ``drop``, are left out of the
    Woodbury matrix. The solve is then a preconditioner of the exact reduced matrix
    with its eigenvalues in ``[1, 1 + sum of the left-out leverages]`` (without an output
    bias; with one, the bias's row adds little), and the reduced Newton solve, refined by
    conjugate gradients on the exact matrix, is as accurate as a dense factor. With an
    output bias its own curvature stays whole (the eigenvalues within ``sqrt(L) + L`` of
    1, ``L`` the left-out leverage), also with samples active in no pattern (no leverage,
    a full curvature) and a tiny ``rho``. Where every sample's leverage is negligible
    one sample stays."""
    from convexrelu.solvers._restricted_barrier import (LowRankCurvature, kept_samples,
                                                        newton_matrix,
                                                        reduced_newton_solver)

    k, d, n, drop = 6, 4, 30, 0.1
    A = rng.standard_normal((n, 1 + k * d))
    A[:, 0] = 1.0
    h = rng.uniform(0.05, 0.25, n)
    h[:12] = 1e-9  # well-classified samples: almost no curvature
    A[12:15, 1:] = 0.0  # active in no pattern: no leverage, a full curvature
    G = rng.standard_normal((k, d, d))
    P = G @ np.swapaxes(G, 1, 2) + 1e-2 * np.eye(d)
    rho = 1e-9
    o = 1 if ob else 0
    Li = np.linalg.inv(np.linalg.cholesky(P))
    YT = np.concatenate([Li[i] @ A[:, 1 + i * d:1 + (i + 1) * d].T for i in range(k)])
    YT = YT * np.sqrt(h)
    lev = np.einsum("ij,ij->j", YT, YT)
    keep = kept_samples(YT, drop)
    out = np.setdiff1d(np.arange(n), keep)
    assert np.array_equal(keep, np.sort(keep)) and 12 <= out.size < n
    assert lev[out].sum() <= drop and lev[out].max() <= lev[keep].min()
    assert {12, 13, 14} <= set(out.tolist())
    L = lev[out].sum()
    assert kept_samples(YT, 0.0) is None  # drop = 0: every sample

    Q = LowRankCurvature(A, h, ob, drop=drop)
    M = Q.dense()
    for i in range(k):
        M[o + i * d:o + (i + 1) * d, o + i * d:o + (i + 1) * d] += P[i]
    if ob:
        M[0, 0] += rho
    pre = Q.factor_plus(P, rho)
    T = np.column_stack([pre(M[:, j]) for j in range(M.shape[0])])  # M_kept^{-1} M
    ev = np.sort(np.linalg.eigvals(T).real)
    spread = L if not ob else np.sqrt(L) + L
    assert ev[0] >= (1.0 - 1e-8 if not ob else 1.0 - spread - 1e-8)
    assert ev[-1] <= 1.0 + spread + 1e-8
    assert ev[-1] > 1.0 + 1e-12  # some samples were left out: not the exact solve

    Hv = G @ np.swapaxes(G, 1, 2) + np.eye(d)
    Hw = 2.0 * Hv
    x, x_dense = _reduced_and_dense(rng, Q, Q.dense(), Hv, Hw, ob, rho, 1e-12)
    np.testing.assert_allclose(x, x_dense, rtol=1e-8, atol=1e-8 * np.abs(x_dense).max())

    # every leverage negligible: one sample stays, the solve still converges
    tiny = np.full(n, 1e-14)
    assert kept_samples(YT * 1e-7, drop).size == 1
    work: dict = {}
    Qt = LowRankCurvature(A, tiny, ob, drop=drop, work=work)
    Ht = newton_matrix(Qt.dense(), np.concatenate([Hv, Hw]), ob, rho)
    g = rng.standard_normal(Ht.shape[0])
    xt = reduced_newton_solver(Qt, Hv, Hw, ob, rho)(g)
    assert work["C"].size == 1 and work["YTk"].size == k * d  # one sample's matrix
    assert np.linalg.norm(Ht @ xt - g) <= 1e-10 * np.linalg.norm(g)


@pytest.mark.parametrize("loss", ["squared", "logistic", "huber"])
def test_barrier_keeps_the_curvature_factored_with_fewer_samples_than_rows(rng, loss):
    """A program with fewer samples than Newton rows is solved with the loss's Hessian
    kept as its factors (no k d x k d matrix formed while the reduced solve converges),
    at the cvxpy reference's objective."""
    import convexrelu.solvers._restricted_barrier as rb

    prog = _program(rng, loss, True, False, n=60, d=5, k=30, alpha=0.05)
    state = rb._PrimalDual(prog, [np.arange(prog.n_samples)] * prog.n_patterns)
    assert state.lowrank and state.Q0 is None
    sol = RestrictedBarrierSolver().solve(prog)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(_reference(prog).objective, rel=1e-7)


def test_auto_inner_sends_a_large_quadratic_program_to_the_barrier(rng, monkeypatch):
    """A squared-loss restricted program whose dense design exceeds ``_MAX_DESIGN`` goes
    to the barrier (not the augmented Lagrangian), at the cvxpy reference's objective."""
    from convexrelu.solvers import _column_generation as cg

    prog = _program(rng, "squared", True, False, n=200, d=4, k=10, alpha=0.5)
    monkeypatch.setattr(_AutoInner, "_MAX_DESIGN", 1000)
    used = []
    monkeypatch.setattr(cg.ReluALSolver, "solve", lambda *a, **k: used.append("al"))
    inner = _AutoInner(1e-10)
    assert inner._large_quadratic(prog) and not inner._barrier_fits(prog)
    sol = inner.solve(prog)
    assert not used and inner._barrier is not None
    assert sol.objective == pytest.approx(_reference(prog).objective, rel=1e-7)


def test_batched_slacks_match_the_blocks_products(rng):
    """With every row kept, the slacks of all blocks (and their transposed products) are
    one product with X_a; they equal the per-block products ``G_i b_i``, ``G_i^T t_i``."""
    from convexrelu.solvers._restricted_barrier import _PrimalDual

    prog = _program(rng, "logistic", True, False, n=40, k=6)
    n, k, d = prog.n_samples, prog.n_patterns, prog.d_aug
    full = _PrimalDual(prog, [np.arange(n)] * k)
    assert full._sgn is not None
    part = _PrimalDual(prog, [np.arange(n - 1)] + [np.arange(n)] * (k - 1))
    assert part._sgn is None
    B = rng.standard_normal((k, d))
    T = [rng.standard_normal(n) for _ in range(k)]
    for i, (s, G) in enumerate(zip(full._rows(B), full.G)):
        np.testing.assert_allclose(s, G @ B[i], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(full._rows_t(T), np.array([G.T @ t for G, t in zip(full.G, T)]),
                               rtol=1e-12, atol=1e-12)
    Tp = [t[:G.shape[0]] for t, G in zip(T, part.G)]
    np.testing.assert_allclose(part._rows_t(Tp),
                               np.array([G.T @ t for G, t in zip(part.G, Tp)]),
                               rtol=1e-12, atol=1e-12)


def test_early_reduced_failures_do_not_end_the_reduced_solves(rng, monkeypatch):
    """Reduced Newton solves that fail before the first success have their own limit: a
    solve whose first steps fail goes back to the reduced solve (and to the same optimum)
    instead of factoring the whole matrix for the rest of the solve."""
    import convexrelu.solvers._restricted_barrier as rb

    prog = _program(rng, "logistic", True, False)
    ref = RestrictedBarrierSolver().solve(prog)
    real = rb.reduced_newton_solver
    calls = {"n": 0, "dense": 0}

    def flaky(*args):  # the first three steps' reduced solves fail
        calls["n"] += 1
        solve = real(*args)
        return (lambda g: None) if calls["n"] <= 3 else solve

    real_matrix = rb.newton_matrix  # formed only for the whole matrix's factor

    def counted(*args):
        calls["dense"] += 1
        return real_matrix(*args)

    monkeypatch.setattr(rb, "reduced_newton_solver", flaky)
    monkeypatch.setattr(rb, "newton_matrix", counted)
    sol = RestrictedBarrierSolver().solve(prog)
    assert sol.objective == pytest.approx(ref.objective, rel=1e-9)
    assert calls["n"] > 3 + 5  # the reduced solve was tried again after the failures
    assert calls["dense"] == 3  # one whole factor per failed step, none after


def test_start_multipliers_are_floored(rng, monkeypatch):
    """The floor on the start's multipliers changes the path, not the optimum."""
    import convexrelu.solvers._restricted_barrier as rb

    prog = _program(rng, "logistic", True, False)
    a = RestrictedBarrierSolver().solve(prog)
    monkeypatch.setattr(rb, "_Z_FLOOR", 0.0)
    b = RestrictedBarrierSolver().solve(prog)
    assert a.objective == pytest.approx(b.objective, rel=1e-9)


def test_an_inaccurate_barrier_solve_is_polished_before_any_cvxpy_solve(rng, monkeypatch):
    """A barrier solve that stops short of its certificate (here: a loose complementarity
    tolerance; on digits an all-active block with a free bias still moving after the gap
    closed) is polished by the active-set Newton step: optimal, the cvxpy optimum, and no
    cvxpy solve (which took 40 s there). Without a polish cvxpy still decides."""
    import convexrelu.solvers._column_generation as cg

    prog = _program(rng, "logistic", True, False, n=80, k=8)
    ref = _reference(prog)
    rough = RestrictedBarrierSolver(tol=1e-4)
    rough._certificate_tol = lambda: 1e-7  # judged as the default solve's certificate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loose = rough.solve(prog)
    assert loose.status != "optimal" and loose.info["rel_gap"] > 1e-6  # the case at hand

    def no_cvxpy(self, program, warm_start):
        raise AssertionError("cvxpy was called")

    inner = _AutoInner(1e-10)
    inner._barrier = rough
    monkeypatch.setattr(_AutoInner, "_solve_cvxpy", no_cvxpy)
    # (the interior point run again to a tighter gap comes first, and would close this
    # one: it is left out here, where the polish after it is tested)
    monkeypatch.setattr(_AutoInner, "_barrier_again", lambda self, program, sol: None)
    sol = inner._solve_barrier(prog)
    assert sol.status == "optimal" and sol.info["rel_gap"] <= 1e-7
    assert sol.info["polished"] and sol.objective <= loose.objective
    assert sol.objective == pytest.approx(ref.objective, rel=1e-8)
    assert prog.max_violation(sol.V, sol.W) <= 1e-12

    # where nothing can be polished (nor the tighter interior point run), the cvxpy solve
    # follows as before
    monkeypatch.undo()
    monkeypatch.setattr(_AutoInner, "_barrier_again", lambda self, program, sol: None)
    monkeypatch.setattr(cg, "_polisher", lambda program: (lambda V, W, c0: None))
    calls = []
    real = _AutoInner._solve_cvxpy

    def spy(self, program, warm_start):
        calls.append(1)
        return real(self, program, warm_start)

    monkeypatch.setattr(_AutoInner, "_solve_cvxpy", spy)
    inner = _AutoInner(1e-10)
    inner._barrier = rough
    sol = inner._solve_barrier(prog)
    assert calls == [1]
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6)


@pytest.mark.parametrize("loss", ["logistic", "squared"])
@pytest.mark.parametrize("penalize_bias", [False, True])
def test_the_all_active_pattern_with_a_free_bias_is_one_linear_block(
        rng, loss, penalize_bias):
    """With a free hidden bias the all-active pattern's pair is solved as one linear
    block (no cone rows, ``w = 0``) and returned as a pair in its cones, ``v = (p, c)``,
    ``w = (0, c - b)``: the cvxpy optimum, every row held, the penalty ``||p||``. With a
    penalised bias the pattern keeps its rows (no linear block)."""
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.solvers._restricted_barrier import linear_blocks

    X = rng.standard_normal((70, 3))
    y = X[:, 0] - np.abs(X[:, 1]) + 0.3 * X[:, 2] + 0.1 * rng.standard_normal(70)
    if loss == "logistic":
        y = np.sign(y)
    G = np.hstack([rng.standard_normal((4, 5)), [[0.0], [0.0], [0.0], [1.0]]])
    pats = ActivationPatterns.from_gates(X, G, bias=True)  # the last gate: all active
    prog = ConvexProgram(X, y, pats, loss=loss, alpha=0.3, bias=True,
                         penalize_bias=penalize_bias)
    lin = linear_blocks(prog)
    assert lin.tolist() == ([] if penalize_bias else [5])
    ref = _reference(prog)
    sol = RestrictedBarrierSolver().solve(prog)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(ref.objective, rel=1e-8)
    assert prog.max_violation(sol.V, sol.W) <= 1e-12
    if not penalize_bias:
        assert np.all(sol.W[5, :3] == 0.0)  # w = (0, c - b): the penalty is ||p||
        assert np.linalg.norm(sol.V[5, :3]) > 0  # the linear part is used here


def test_linear_pairs_are_in_their_cones_with_the_same_difference(rng):
    """``linear_pairs`` maps any ``u = (p, b)`` to a pair in the all-active pattern's
    cones with ``v - w = u`` and the penalty ``||p||``; other blocks are untouched."""
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.solvers._restricted_barrier import linear_pairs

    X = rng.standard_normal((40, 3))
    G = np.hstack([rng.standard_normal((4, 2)), [[0.0], [0.0], [0.0], [1.0]]])
    prog = ConvexProgram(X, rng.standard_normal(40),
                         ActivationPatterns.from_gates(X, G, bias=True), loss="squared",
                         alpha=0.3, bias=True)
    V, W = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    V2, W2 = linear_pairs(prog, V, W, [2])
    assert np.allclose(V2 - W2, V - W, atol=1e-14)
    assert np.array_equal(V2[:2], V[:2]) and np.array_equal(W2[:2], W[:2])
    assert np.all(prog.X_aug @ V2[2] >= -1e-12) and np.all(prog.X_aug @ W2[2] >= -1e-12)
    assert np.all(W2[2, :3] == 0.0)


@pytest.mark.parametrize("alone", [False, True])
def test_linear_block_that_is_zero_at_the_optimum(rng, alone):
    """A large alpha: the all-active pattern's linear block is zero at the optimum (its
    norm's kink, no cone row to keep the iterates inside). The cvxpy optimum, finite
    blocks; alone in its program (no cone row at all) the pattern keeps its pair's rows
    (a digits CV fit had returned NaN there)."""
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.solvers._restricted_barrier import linear_blocks

    X = rng.standard_normal((70, 3))
    y = np.sign(X[:, 0] - np.abs(X[:, 1]) + 0.1 * rng.standard_normal(70))
    G = np.array([[0.0], [0.0], [0.0], [1.0]]) if alone else \
        np.hstack([rng.standard_normal((4, 3)), [[0.0], [0.0], [0.0], [1.0]]])
    pats = ActivationPatterns.from_gates(X, G, bias=True)
    for alpha in (5.0, 50.0):
        prog = ConvexProgram(X, y, pats, loss="logistic", alpha=alpha, bias=True)
        assert linear_blocks(prog).size == (0 if alone else 1)
        sol = RestrictedBarrierSolver().solve(prog)
        assert np.all(np.isfinite(sol.V)) and np.all(np.isfinite(sol.W))
        assert sol.objective == pytest.approx(_reference(prog).objective, rel=1e-7)


def test_a_restricted_program_starts_from_the_previous_ones_solution(monkeypatch):
    """The working-set loop's inner solver hands each barrier solve the previous restricted
    solution on the patterns the two programs share (zero on the new ones): the cvxpy
    optimum, in fewer Newton steps than cold solves (in all, over problems where the cold
    solve converges)."""
    import convexrelu.solvers._restricted_barrier as rb

    starts = []
    real = rb.RestrictedBarrierSolver._solve

    def spy(self, program, warm_start=None):
        starts.append(warm_start)
        return real(self, program, warm_start)

    monkeypatch.setattr(rb.RestrictedBarrierSolver, "_solve", spy)
    # these small programs would go to cvxpy
    monkeypatch.setattr(_AutoInner, "_barrier_fits", lambda self, program: True)
    warm_steps = cold_steps = 0
    for seed in range(3):
        for loss in ("logistic", "squared"):
            full = _program(np.random.default_rng(seed), loss, True, False, n=120, d=3,
                            k=10, alpha=0.05)
            first, second = full.restrict(np.arange(6)), full.restrict(np.arange(2, 10))
            inner = _AutoInner(1e-10)
            inner.loop_tol = 1e-6
            starts.clear()
            s1 = inner._solve(first)  # kept as the next program's start
            s2 = inner._solve(second)
            assert starts[0] is None
            V0, W0 = starts[1].V, starts[1].W
            np.testing.assert_array_equal(V0[:4], s1.V[2:])  # patterns 2-5, kept
            np.testing.assert_array_equal(W0[:4], s1.W[2:])
            assert not np.any(V0[4:]) and not np.any(W0[4:])  # patterns 6-9, new
            assert s2.objective == pytest.approx(_reference(second).objective, rel=1e-8)
            assert second.max_violation(s2.V, s2.W) <= 1e-12
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a cold solve can run out of steps here
                cold = RestrictedBarrierSolver(tol=1e-8).solve(second)
            if cold.n_iter < 200:
                warm_steps += s2.n_iter
                cold_steps += cold.n_iter
    assert warm_steps < cold_steps


def test_the_barrier_tol_follows_the_loops(rng):
    """1e-2 of the loop's tol, at most 1e-8, at least the inner solver's own tol."""
    prog = _program(rng, "logistic", True, False)
    for loop_tol, inner_tol, want in ((1e-6, 1e-10, 1e-8), (1e-9, 1e-10, 1e-10),
                                      (1e-3, 1e-10, 1e-8), (1e-6, 1e-7, 1e-7)):
        inner = _AutoInner(inner_tol)
        inner.loop_tol = loop_tol
        inner._solve_barrier(prog)
        assert inner._barrier.tol == pytest.approx(want)


def test_the_certificate_starts_from_the_cone_multipliers(rng, monkeypatch):
    """The barrier's certificate starts its projections from the interior point's cone
    multipliers: the same certified gap as the certificate computed from nothing, each
    pattern's start a valid bound near the optimum."""
    import convexrelu.solvers._restricted_barrier as rb
    from convexrelu.certificates._dual import _prepare, pattern_value, warm_bounds
    from convexrelu.certificates._gap import duality_gap

    prog = _program(rng, "logistic", True, False, n=150, d=3, k=12, alpha=0.05)
    kept = []
    real = rb._cone_multipliers
    monkeypatch.setattr(rb, "_cone_multipliers",
                        lambda p, s: kept.append(real(p, s)) or kept[-1])
    sol = RestrictedBarrierSolver().solve(prog)
    mult = kept[-1]
    assert mult.rows and mult.faces
    dg = duality_gap(prog, sol.V, sol.W, sol.output_bias)
    assert sol.info["rel_gap"] == pytest.approx(dg.rel_gap, rel=1e-6, abs=1e-12)
    assert sol.info["dual_bound"] == pytest.approx(dg.bound, rel=1e-10)
    # the multipliers' bounds: valid (at least the exact values) and, at the optimum,
    # within 1e-6 of the largest
    Xt, _, R = _prepare(prog.X_aug, True)
    lam = np.asarray(dg.lam) / dg.scale
    C = Xt.T @ (prog.masks * lam[:, None])
    A = np.array([mult.rows.get(i, np.full((2, prog.d_aug), np.nan))
                  for i in range(prog.n_patterns)])
    for srow, sgn in ((0, 1.0), (1, -1.0)):
        wb = warm_bounds(sgn * C, A[:, srow], prog.masks, True, R)
        ok = np.isfinite(wb)
        assert ok.any()
        exact = np.array([pattern_value(Xt, prog.masks[:, i], sgn * C[:, i], free_bias=True,
                                        R=R)[0] for i in range(prog.n_patterns)])
        assert np.all(wb[ok] >= exact[ok] * (1 - 1e-9) - 1e-12)
        assert np.max(wb[ok]) <= dg.bound / dg.scale * (1 + 1e-6)


def test_the_rows_hessians_from_outer_products_equal_block_by_block(rng, monkeypatch):
    """The cone rows' Hessians of all blocks as one product with the rows' outer products
    (every block over every row: small data, or enough patterns within the memory cap)
    give the solve block by block does."""
    import convexrelu.solvers._restricted_barrier as rb

    prog = _program(rng, "logistic", True, False, n=80, d=3, k=10, alpha=0.05)
    used = []
    parts = rb._PrimalDual._parts

    def recorded(self, *args):
        out = parts(self, *args)
        used.append(self._outer is not None)
        return out

    monkeypatch.setattr(rb._PrimalDual, "_parts", recorded)

    def solve(outer_max, outer_large, min_patterns):
        monkeypatch.setattr(rb, "_OUTER_MAX", outer_max)
        monkeypatch.setattr(rb, "_OUTER_LARGE", outer_large)
        monkeypatch.setattr(rb, "_OUTER_MIN_PATTERNS", min_patterns)
        used.clear()
        sol = RestrictedBarrierSolver().solve(prog)
        assert used and len(set(used)) == 1
        return sol, used[0]

    outer, by_outer = solve(1 << 19, 1 << 23, 8)  # small: always the outer products
    # larger than _OUTER_MAX: the outer products from _OUTER_MIN_PATTERNS patterns (10
    # here) while within _OUTER_LARGE, else block by block
    many, by_many = solve(0, 1 << 23, 10)
    few, by_few = solve(0, 1 << 23, 11)
    large, by_large = solve(0, 0, 8)
    assert (by_outer, by_many, by_few, by_large) == (True, True, False, False)
    for a, b in ((outer, few), (many, large)):
        assert a.n_iter == b.n_iter
        np.testing.assert_allclose(a.V, b.V, rtol=1e-6, atol=1e-9)
        assert a.objective == pytest.approx(b.objective, rel=1e-12)


def _resume_case(seed=0):
    """A logistic program whose blocks all keep every row (``n <= 32 d_a``), its rough
    barrier solve (tol 1e-3) and that solver."""
    prog = _program(np.random.default_rng(seed), "logistic", True, True, n=120, d=3, k=10,
                    alpha=0.003)
    solver = RestrictedBarrierSolver(tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rough: its certificate is not within tol
        rough = solver.solve(prog)
    assert solver._state is not None  # every row kept, no linear block
    return prog, solver, rough


def _warm(sol, keep):
    from convexrelu.program import ConvexSolution

    return ConvexSolution(V=sol.V[keep], W=sol.W[keep], output_bias=sol.output_bias,
                          objective=np.nan, dual=np.zeros(0), status="warm_start", n_iter=0,
                          solve_time=0.0)


@pytest.mark.parametrize("drop", [0, 2])
def test_exact_solve_resumes_from_the_rough_one(drop, monkeypatch):
    """The working-set loop's exact solve after a rough one, over the same patterns or
    some of them, goes on from the rough solve's blocks and multipliers at its ``mu``
    (no move into the cones, no restart from ``f / m``): the cvxpy optimum in fewer
    Newton steps than the warm start from the rough solution alone."""
    import convexrelu.solvers._restricted_barrier as rb

    prog, solver, rough = _resume_case()
    # less the rough solution's ``drop`` smallest blocks (the loop drops those below 1e-3
    # of the largest)
    size = np.maximum(np.linalg.norm(rough.V, axis=1), np.linalg.norm(rough.W, axis=1))
    keep = np.sort(np.argsort(size)[drop:])
    sub = prog.restrict(keep)
    resumed = []
    real = rb._PrimalDual.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        resumed.append(self.z0 is not None)

    monkeypatch.setattr(rb._PrimalDual, "__init__", spy)
    solver.tol = 1e-8
    exact = solver.solve(sub, _warm(rough, keep))
    assert resumed == [True]
    ref = _reference(sub)
    assert exact.objective == pytest.approx(ref.objective, rel=1e-8)
    assert sub.max_violation(exact.V, exact.W) <= 1e-12
    # the same start without the kept state: the warm start alone
    resumed.clear()
    fresh = RestrictedBarrierSolver(tol=1e-8).solve(sub, _warm(rough, keep))
    assert resumed == [False]
    assert fresh.objective == pytest.approx(ref.objective, rel=1e-8)
    assert exact.n_iter < fresh.n_iter


def test_no_resume_on_other_data_or_new_patterns():
    """The kept state serves only an exact solve after a rougher one, on the same data
    objects, loss, ``alpha`` and output bias, whose patterns were all in the last solve
    and whose left-out blocks were below 2e-3 of the largest (a state at the solve's own
    tol, or one less a large block, would stop after a step on its complementarity gap
    alone, far from the optimum)."""
    import copy

    prog, solver, rough = _resume_case()
    n = prog.n_samples
    rows = [np.arange(n)] * 10
    assert solver._resumable(prog, rows) is None  # the state is at this tol (1e-3)
    solver.tol = 1e-8
    assert solver._resumable(prog, rows) is not None
    size = solver._state["size"]
    small, large = int(np.argmin(size)), int(np.argmax(size))
    assert size[small] <= 2e-3 * size[large]
    assert solver._resumable(prog.restrict(np.delete(np.arange(10), small)),
                             rows[:9]) is not None
    assert solver._resumable(prog.restrict(np.delete(np.arange(10), large)),
                             rows[:9]) is None
    assert solver._resumable(prog.with_alpha(0.01), rows) is None
    for attr in ("X_aug", "y"):  # equal values, other objects
        other = copy.copy(prog)
        setattr(other, attr, getattr(prog, attr).copy())
        assert solver._resumable(other, rows) is None
    other = copy.copy(prog)
    other.fit_output_bias = False
    assert solver._resumable(other, rows) is None
    assert solver._resumable(prog, [np.arange(n - 1)] * 10) is None  # rows left out
    # a pattern the last solve did not have
    more = _program(np.random.default_rng(0), "logistic", True, True, n=120, d=3, k=12,
                    alpha=0.003)
    solver2 = RestrictedBarrierSolver(tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solver2.solve(more.restrict(np.arange(10)))
    solver2.tol = 1e-8
    assert solver2._resumable(more.restrict(np.arange(10)), rows) is not None
    assert solver2._resumable(more, [np.arange(n)] * 12) is None


def test_the_inner_solver_keeps_no_state_past_another_path(monkeypatch):
    """Where the working-set loop's inner solver does not keep the barrier's own point (a
    polish or cvxpy replaced it, or another path solved), no later solve resumes from the
    barrier's state."""
    prog, _, _ = _resume_case()
    inner = _AutoInner(1e-10)
    inner.loop_tol = 1e-6
    monkeypatch.setattr(_AutoInner, "_barrier_fits", lambda self, program: True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inner._solve(prog)
        assert inner._barrier._state is not None
        real = _AutoInner._accept_barrier
        monkeypatch.setattr(_AutoInner, "_accept_barrier",
                            lambda self, program, sol: _copy_of(real(self, program, sol)))
        inner._solve(prog)
    assert inner._barrier._state is None


def _copy_of(sol):
    import copy

    return copy.copy(sol)


def test_a_resumed_solve_that_runs_out_of_steps_starts_again(monkeypatch):
    """A resumed solve that does not converge within ``_RESUME_MAX_ITER`` steps gives way
    to the warm start from the solution: the same optimum."""
    import convexrelu.solvers._restricted_barrier as rb

    monkeypatch.setattr(rb, "_RESUME_MAX_ITER", 1)
    prog, solver, rough = _resume_case()
    solver.tol = 1e-8
    keep = np.arange(10)
    runs = []
    real = rb._PrimalDual.run

    def spy(self, tol, max_iter):
        out = real(self, tol, max_iter)
        runs.append((self.z0 is not None, out[1]))
        return out

    monkeypatch.setattr(rb._PrimalDual, "run", spy)
    exact = solver.solve(prog, _warm(rough, keep))
    assert runs == [(True, False), (False, True)]  # resumed, out of steps; warm start
    assert exact.objective == pytest.approx(_reference(prog).objective, rel=1e-8)
    assert prog.max_violation(exact.V, exact.W) <= 1e-12


def test_design_filled_pattern_by_pattern_and_one_state_at_a_time(rng, monkeypatch):
    """The dense design ``[1, D_1X_a, ..., D_kX_a]`` is filled pattern by pattern (no
    temporary of its size: the broadcast product was one), equal to the broadcast; and a
    solve over several row rounds never holds two states' designs at once."""
    import gc
    import weakref

    import convexrelu.solvers._restricted_barrier as rb

    prog = _program(rng, "logistic", True, False, n=150, k=6)
    state = rb._PrimalDual(prog, [np.arange(prog.n_samples)] * prog.n_patterns)
    Xa, M = prog.X_aug, np.asarray(prog.masks, bool)
    ref = np.hstack([np.ones((prog.n_samples, 1)),
                     (M[:, :, None] * Xa[:, None, :]).reshape(prog.n_samples, -1)])
    np.testing.assert_array_equal(state.A, ref)
    # 32 first rows per block: on these data (a penalised bias) the solve runs again over
    # more rows, a new state each round (test_every_row_holds_on_a_larger_sample)
    monkeypatch.setattr(rb, "_ROWS_PER_DIM", 1)
    prog = _program(np.random.default_rng(0), "logistic", True, True, n=300, d=2, k=12,
                    alpha=0.2)
    live, most = [], [0]
    orig = rb._PrimalDual.__init__

    def init(self, *args, **kwargs):
        gc.collect()
        most[0] = max(most[0], sum(r() is not None for r in live))
        orig(self, *args, **kwargs)
        live.append(weakref.ref(self))

    monkeypatch.setattr(rb._PrimalDual, "__init__", init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        RestrictedBarrierSolver().solve(prog)
    assert len(live) >= 2  # several row rounds ran
    assert most[0] == 0  # the last state was gone before the next was built


def test_design_not_formed_where_the_loss_hessian_is(rng):
    """Where the loss's Hessian is formed (more samples than Newton rows) the interior
    point never forms the ``n x (1 + k d_a)`` design: ``A^T r`` goes through ``X_a`` and
    the masks and ``A^T diag(h) A`` through row chunks, equal to the formed design's (with
    and without an output bias); the loop takes the barrier where the memory it is
    charged fits the budget (test_barrier_memory_estimate_covers_its_peak)."""
    import convexrelu.solvers._restricted_barrier as rb
    from convexrelu import config_context
    from convexrelu.solvers._column_generation import _AutoInner

    for loss, fob in (("logistic", True), ("squared", True), ("logistic", False)):
        prog = _program(rng, loss, True, False, n=400, k=6, fit_output_bias=fob)
        n, kd = prog.n_samples, prog.n_patterns * prog.d_aug
        assert not rb.low_rank_curvature(n, kd)
        state = rb._PrimalDual(prog, [np.arange(n)] * prog.n_patterns)
        steps, ok = state.run(1e-9, 200)
        assert ok and state._A is None  # solved with no design
        ref = _reference(prog)
        if fob:  # (without an output bias the barrier stops 1.6e-5 above cvxpy here, as
            # it did before the design left: a separate matter)
            assert state._f() == pytest.approx(ref.objective * n, rel=1e-6)
        h, r = rng.random(n), rng.standard_normal(n)
        Q, g = state._gram(h), state._At(r)
        A = state.A  # formed on request, as before
        np.testing.assert_allclose(Q, A.T @ (h[:, None] * A), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g, A.T @ r, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state._gram(h), Q, rtol=1e-12, atol=1e-12)
    # the loop takes the barrier where its charged pieces fit the budget, not below (the
    # pieces of its passes over the first rows: start_rows_bytes)
    big = _program(np.random.default_rng(1), "logistic", True, False, n=100_000, d=20,
                   k=12)
    every, whole = rb.start_rows_bytes(big)
    assert every < rb.barrier_bytes(big)[0]
    for budget, takes in (((every + whole) / 2**20 + 1.0, True),
                          ((every + whole) / 2**20 - 1.0, False)):
        with config_context(memory_budget=budget):
            assert _AutoInner(1e-6)._barrier_can(big) is takes


def test_cone_rows_formed_when_used_past_their_cap(rng, monkeypatch):
    """Past ``_G_STORED`` entries (every block over every row of a large sample) the
    blocks' cone rows are formed where they are read, not kept: the same rows, the same
    Newton steps and solution as the kept matrices."""
    import convexrelu.solvers._restricted_barrier as rb

    prog = _program(rng, "logistic", True, False, n=400, k=6)
    n = prog.n_samples
    rows = [np.arange(n)] * prog.n_patterns
    kept = rb._PrimalDual(prog, rows)
    assert isinstance(kept.G, list)
    monkeypatch.setattr(rb, "_G_STORED", 0)
    lazy = rb._PrimalDual(prog, rows)
    assert isinstance(lazy.G, rb._ConeRows) and len(lazy.G) == len(kept.G)
    for a, b in zip(kept.G, lazy.G):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(rb, "_outer_products_used", lambda *a: False)  # the blocks' loop
    out = [s.run(1e-9, 200) for s in (kept, lazy)]
    assert out[0] == out[1]
    np.testing.assert_allclose(lazy.V, kept.V, rtol=1e-9, atol=1e-12)
    assert lazy._f() == pytest.approx(kept._f(), rel=1e-12)


def test_barrier_memory_estimate_covers_its_peak(rng):
    """The memory charged to a large restricted program (``barrier_bytes``, which decides
    whether the column-generation loop takes the barrier) covers the peak of its Newton
    steps over every row (tracemalloc), with and without an output bias; the design,
    which it no longer forms there, is not what bounds it."""
    import tracemalloc

    import convexrelu.solvers._restricted_barrier as rb

    for fob, k in ((True, 12), (False, 6)):
        prog = _program(np.random.default_rng(1), "logistic", True, False, n=20_000, d=20,
                        k=k, fit_output_bias=fob)
        n = prog.n_samples
        assert not rb.low_rank_curvature(n, prog.n_patterns * prog.d_aug)
        every, whole = rb.barrier_bytes(prog)
        tracemalloc.start()
        try:
            state = rb._PrimalDual(prog, [np.arange(n)] * prog.n_patterns)
            state.run(1e-9, 3)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert state._A is None
        assert peak <= every + whole, (peak / 2**20, (every + whole) / 2**20)


@pytest.mark.parametrize("entries", [None, 60, 84])
def test_common_bias_lowered_as_far_as_the_active_rows_allow(rng, entries, monkeypatch):
    """_lower_common_bias moves both blocks' bias down by the smallest value either block
    takes on its pattern's active rows (when positive): the predictions ``v_i - w_i`` do
    not change, and afterwards one of the two blocks touches zero on an active row
    (``entries``: the rows' values by chunks of 5 rows, 60 entries over 6 patterns'
    pairs, or of 7 rows, the last of 6)."""
    import convexrelu.solvers._restricted_barrier as rb
    from convexrelu.solvers._restricted_barrier import _lower_common_bias

    if entries is not None:
        monkeypatch.setattr(rb, "_LOWER_ENTRIES", entries)
    n, d, k = 300, 4, 6
    Xa = np.hstack([rng.standard_normal((n, d)), np.ones((n, 1))])
    masks = rng.random((n, k)) < 0.5
    masks[:, 0] = False  # no active row: unchanged
    V = rng.standard_normal((k, d + 1))
    W = rng.standard_normal((k, d + 1))
    V[:, -1] += 10.0  # positive on every row: room to lower
    W[:, -1] += 12.0
    V[1, -1] -= 30.0  # negative somewhere: unchanged
    V2, W2 = _lower_common_bias(Xa, masks, V, W)
    assert np.allclose(V2 - W2, V - W, rtol=0, atol=1e-12)
    assert np.array_equal(V2[:, :-1], V[:, :-1]) and np.array_equal(W2[:, :-1], W[:, :-1])
    for i in range(k):
        act = masks[:, i]
        if not act.any():
            assert V2[i, -1] == V[i, -1]
            continue
        delta = min((Xa[act] @ V[i]).min(), (Xa[act] @ W[i]).min())
        if delta > 0:
            low = min((Xa[act] @ V2[i]).min(), (Xa[act] @ W2[i]).min())
            assert abs(low) <= 1e-12 * (1 + delta)
        else:
            assert V2[i, -1] == V[i, -1] and W2[i, -1] == W[i, -1]
    assert np.any(V2[2:, -1] < V[2:, -1])


def test_quadratic_gram_keeps_the_blocks_of_the_last_solve(rng, monkeypatch):
    """The squared loss's Gram ``A^T A``: a solve over patterns the last one had copies
    their blocks and forms only the new patterns' columns (no whole Gram); the matrix and
    the solve are those of a solver with nothing kept."""
    from convexrelu.solvers._restricted_barrier import _PrimalDual

    prog = _program(rng, "squared", True, False, n=600, d=4, k=12)
    first, second = prog.restrict(np.arange(8)), prog.restrict(np.r_[5, 2:5, 6:8, 9, 11, 0])
    rows = [np.arange(600)] * 9
    work = {"grams": {}}
    _PrimalDual(first, rows[:8], None, work)
    whole = []
    orig = _PrimalDual._gram
    monkeypatch.setattr(_PrimalDual, "_gram", lambda self, h: whole.append(1) or orig(self, h))
    kept = _PrimalDual(second, rows, None, work).Q0
    assert not whole  # seven patterns kept (reordered), two new: their columns only
    fresh = _PrimalDual(second, rows, None, {}).Q0
    assert whole
    np.testing.assert_allclose(kept, fresh, rtol=1e-12, atol=1e-12 * np.abs(fresh).max())
    # the new columns summed over each new pattern's active rows, by chunks of them (a
    # chunk of 256 rows: several, the last shorter), give the same matrix
    import convexrelu.solvers._restricted_barrier as rb

    monkeypatch.setattr(rb, "_GRAM_CHUNK_ENTRIES", 1)
    work = {"grams": {}}
    _PrimalDual(first, rows[:8], None, work)
    chunked = _PrimalDual(second, rows, None, work).Q0
    np.testing.assert_allclose(chunked, fresh, rtol=1e-12, atol=1e-12 * np.abs(fresh).max())
    solver = RestrictedBarrierSolver()
    with warnings.catch_warnings():  # (its own certificate's tol: not the point here)
        warnings.simplefilter("ignore")
        solver.solve(first)
        a = solver.solve(second)
        b = RestrictedBarrierSolver().solve(second)
    assert a.objective == pytest.approx(b.objective, rel=1e-10)


@pytest.mark.parametrize("new", [[3], [1, 4], [0, 2], [5], [2, 5]])
def test_gram_columns_over_the_new_patterns_active_rows(rng, new, monkeypatch):
    """``_gram_columns`` sums over the rows active in one of the new patterns (gathered,
    or every row in contiguous chunks where they cover all: pattern 0 is active on every
    row; pattern 5 on none), by chunks of 256 rows: the columns of the dense ``A^T A``."""
    import convexrelu.solvers._restricted_barrier as rb

    n, d, k = 600, 4, 6
    Xa = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])
    masks = np.asfortranarray(rng.random((n, k)) < 0.5)
    masks[:, 0], masks[:, 5] = True, False
    A = np.empty((n, 1 + k * d))
    A[:, 0] = 1.0
    A[:, 1:] = (masks[:, :, None] * Xa[:, None, :]).reshape(n, -1)
    cols = np.concatenate([1 + p * d + np.arange(d) for p in new])
    state = rb._PrimalDual.__new__(rb._PrimalDual)
    state.Xa, state.masks, state.k, state.d = Xa, masks, k, d
    monkeypatch.setattr(rb, "_GRAM_CHUNK_ENTRIES", 1)  # chunks of 256 rows
    got = state._gram_columns(new)
    want = A.T @ A[:, cols]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_barrier_charges_its_first_rows_and_checks_before_every_row(rng, monkeypatch):
    """The loop charges the barrier for its passes over the first rows
    (``start_rows_bytes``, which covers their peak: tracemalloc); each pass checks its own
    rows' charge before it allocates them (the rounds add rows without a cap, the last
    pass is over every row): ``MemoryBudgetError``, and the loop's inner solver then
    takes its next path."""
    import tracemalloc

    import convexrelu.solvers._restricted_barrier as rb
    from convexrelu import config_context
    from convexrelu._memory import MemoryBudgetError
    from convexrelu.solvers._cg_inner import margin_rows

    prog = _program(np.random.default_rng(1), "squared", True, False, n=6_000, d=10, k=8)
    assert not rb.low_rank_curvature(prog.n_samples, prog.n_patterns * prog.d_aug)
    first, whole = rb.start_rows_bytes(prog)
    m0 = max(rb._ROWS_PER_DIM * prog.d_aug, 32)
    rows = [margin_rows(prog.X_aug, prog.masks[:, i], prog.patterns.gates[:, i],
                        n_rows=m0 * (1 + rb._ROW_ROUNDS)) for i in range(prog.n_patterns)]
    tracemalloc.start()
    try:
        state = rb._PrimalDual(prog, rows, None, {})
        state.run(1e-9, 3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= first + whole, (peak / 2**20, (first + whole) / 2**20)
    # rounds of rows that never satisfy every row: the pass over every row is checked
    monkeypatch.setattr(rb, "_ROW_ROUNDS", 0)
    monkeypatch.setattr(rb, "_ROW_RTOL", -np.inf)
    every = sum(rb.barrier_bytes(prog))
    assert every > first + whole
    with config_context(memory_budget=(every - 1) / 2**20):
        with pytest.raises(MemoryBudgetError, match="cone rows"):
            RestrictedBarrierSolver().solve(prog)
        inner = _AutoInner(1e-6)
        inner.loop_tol = 1e-6
        assert inner._solve_barrier(prog) is None  # the loop's next path


def _tall_program(rng, n=1200, d=2, k=5, alpha=0.02, fit_output_bias=True, seed=3):
    """A logistic program with many more samples than Newton rows (the sketched path)."""
    X = rng.standard_normal((n, d))
    y = np.sign(X[:, 0] - np.abs(X[:, 1]) + 0.5 * rng.standard_normal(n))
    pats = sample_patterns(X, k, random_state=seed, bias=True)
    return ConvexProgram(X, y, pats, loss="logistic", alpha=alpha, bias=True,
                         fit_output_bias=fit_output_bias)


@pytest.mark.parametrize("ob", [True, False])
def test_sampled_curvature_multiplies_by_the_exact_hessian(rng, ob):
    """``SampledCurvature``'s products are those of the formed ``A^T diag(h) A`` (through
    the design's factors), with and without the output bias's row, its ``dense()`` is that
    matrix and its preconditioner the sketch over the same coordinates."""
    import convexrelu.solvers._restricted_barrier as rb

    prog = _tall_program(rng)
    pd = rb._PrimalDual(prog, [np.arange(prog.n_samples)] * prog.n_patterns)
    assert pd.sketched and not pd.lowrank
    h = rng.uniform(0.0, 0.25, prog.n_samples)
    Q = pd._gram(h)
    sk = pd._sketch(h)
    S = rb.SampledCurvature(pd._factors(), h, True, sk, lambda: pd._gram(h))
    if not ob:
        S, Q, sk = S.without_output_bias(), Q[1:, 1:], sk[1:, 1:]
    assert S.shape == Q.shape
    for _ in range(3):
        z = rng.standard_normal(Q.shape[0])
        np.testing.assert_allclose(S @ z, Q @ z, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(S.dense(), Q, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(S.preconditioner(), sk)


def test_sketch_is_an_unbiased_estimate_of_the_hessian(rng, monkeypatch):
    """Each sketch keeps about ``_SKETCH_ROWS (1 + k d_a)`` rows weighted by their inverse
    inclusion probabilities: the mean of many is the Hessian (within its sampling error),
    and where every row's probability reaches 1 it is the Hessian itself."""
    import convexrelu.solvers._restricted_barrier as rb

    prog = _tall_program(rng, n=2000)
    pd = rb._PrimalDual(prog, [np.arange(prog.n_samples)] * prog.n_patterns)
    h = rng.uniform(0.0, 0.25, prog.n_samples)
    Q = pd._gram(h)
    drawn = []
    gram = rb.weighted_gram

    def spy(A, h_, work=None):
        drawn.append(A[0])
        return gram(A, h_, work)

    monkeypatch.setattr(rb, "weighted_gram", spy)
    mean = np.mean([pd._sketch(h) for _ in range(400)], axis=0)
    assert np.linalg.norm(mean - Q) <= 0.05 * np.linalg.norm(Q)
    # about _SKETCH_ROWS (1 + k d_a) rows each (a sample, not every row)
    c = 1 + prog.n_patterns * prog.d_aug
    assert 2 * c <= np.mean(drawn) <= 6 * c < prog.n_samples
    # reproducible: a new solve's generator draws the same rows
    pd2 = rb._PrimalDual(prog, [np.arange(prog.n_samples)] * prog.n_patterns)
    pd3 = rb._PrimalDual(prog, [np.arange(prog.n_samples)] * prog.n_patterns)
    np.testing.assert_array_equal(pd2._sketch(h), pd3._sketch(h))
    monkeypatch.setattr(rb, "_SKETCH_ROWS", 10**6)
    np.testing.assert_allclose(pd._sketch(h), Q, rtol=1e-12, atol=1e-12)


def test_reduced_newton_solve_with_a_sketch_matches_the_dense_factor(rng, monkeypatch):
    """With ``SampledCurvature`` the reduced factor of the sketch preconditions conjugate
    gradients on the exact matrix: the solve is the exact Newton matrix's (the dense
    factor's) to its rounding, within a fifth as many steps as the system has unknowns
    (so the preconditioner, not the step count, gets it there)."""
    import convexrelu.solvers._restricted_barrier as rb

    prog = _tall_program(rng, n=3000, d=5, k=8)
    assert 1 + 2 * prog.n_patterns * prog.d_aug >= 5 * 19
    monkeypatch.setattr(rb, "_PCG_SKETCH_MAX_ITER", 19)
    pd = rb._PrimalDual(prog, [np.arange(prog.n_samples)] * prog.n_patterns)
    h = rng.uniform(0.0, 0.25, prog.n_samples)
    k, d = prog.n_patterns, prog.d_aug
    Q = pd._gram(h)
    S = rb.SampledCurvature(pd._factors(), h, True, pd._sketch(h), lambda: pd._gram(h))
    B = rng.standard_normal((2 * k, d, d))
    Hb = np.einsum("kij,klj->kil", B, B) + 1e-3 * np.eye(d)
    x, x_dense = _reduced_and_dense(rng, S, Q, Hb[:k], Hb[k:], True, 1e-3, 1e-6)
    np.testing.assert_allclose(x, x_dense, rtol=1e-4, atol=1e-6 * np.abs(x_dense).max())


@pytest.mark.parametrize("ob", [True, False])
def test_sketched_barrier_retries_its_reduced_solve_at_every_step(rng, ob, monkeypatch):
    """Where the sketched conjugate gradients do not converge (forced here: no step
    allowed), the step factors the whole Newton matrix with the exact Hessian, and the
    next step tries the reduced solve again (no switch to the whole matrix for the rest of
    the solve after ``_REDUCED_MAX_FAILURES`` failures, as a formed Hessian's solve
    makes): the same optimum as the formed-Hessian solve."""
    import convexrelu.solvers._restricted_barrier as rb

    prog = _tall_program(rng, n=800, k=4, alpha=0.05, fit_output_bias=ob)
    monkeypatch.setattr(rb, "_SKETCH_MIN", np.inf)
    formed = RestrictedBarrierSolver().solve(prog)
    monkeypatch.undo()
    failed = []
    pcg = rb._pcg

    def spy_pcg(*args, **kwargs):
        out = pcg(*args, **kwargs)
        if kwargs.get("recurrence"):
            failed.append(out is None)
        return out

    monkeypatch.setattr(rb, "_PCG_SKETCH_MAX_ITER", 0)
    monkeypatch.setattr(rb, "_pcg", spy_pcg)
    sol = RestrictedBarrierSolver().solve(prog)
    assert sum(failed) > 2 * rb._REDUCED_MAX_FAILURES  # retried after each failure
    assert sol.info["rel_gap"] <= 1e-5
    assert sol.objective == pytest.approx(formed.objective, rel=1e-9)
    assert prog.max_violation(sol.V, sol.W) <= 1e-12


@pytest.mark.parametrize("ob", [True, False])
def test_sketched_barrier_matches_the_formed_hessian_and_cvxpy(rng, ob, monkeypatch):
    """A program with many more samples than Newton rows is solved with the sketched
    Hessian (its early steps on the sketch, its last ones exact through conjugate
    gradients): the same optimum as with the formed Hessian and as cvxpy's."""
    import convexrelu.solvers._restricted_barrier as rb

    # (at larger sizes cvxpy's own solutions left cone rows violated by up to 2.5)
    prog = _tall_program(rng, n=800, k=4, alpha=0.05, fit_output_bias=ob)
    assert rb._PrimalDual(prog, [np.arange(800)] * 4).sketched
    ref = _reference(prog)
    assert prog.max_violation(ref.V, ref.W) <= 1e-9
    used = {"sketch": 0, "cg": 0}
    sketch, cg = rb._PrimalDual._sketch, rb._pcg

    def spy_sketch(self, h):
        used["sketch"] += 1
        return sketch(self, h)

    def spy_cg(*args, **kwargs):
        used["cg"] += bool(kwargs.get("recurrence"))
        return cg(*args, **kwargs)

    monkeypatch.setattr(rb._PrimalDual, "_sketch", spy_sketch)
    monkeypatch.setattr(rb, "_pcg", spy_cg)
    # the large-sample layout (bool masks, the products fused by row chunks) at this size
    monkeypatch.setattr(rb, "_RMATVEC_CHUNK", 300)
    monkeypatch.setattr(rb, "_MATVEC_CHUNK", 128)
    masks = set()
    matvec = rb.factor_matvec

    def spy_matvec(factors, *args):
        masks.add(factors[1].dtype)
        return matvec(factors, *args)

    monkeypatch.setattr(rb, "factor_matvec", spy_matvec)
    sol = RestrictedBarrierSolver().solve(prog)
    assert used["sketch"] > 0 and used["cg"] > 0 and masks == {np.dtype(bool)}
    # (the certified gap over the program's patterns: 1e-6 and 3e-6 with the formed
    # Hessian as well at this size)
    assert sol.info["rel_gap"] <= 1e-5
    assert sol.objective == pytest.approx(ref.objective, rel=1e-8)
    assert prog.max_violation(sol.V, sol.W) <= 1e-12
    monkeypatch.setattr(rb, "_SKETCH_MIN", np.inf)
    used["sketch"] = 0
    formed = RestrictedBarrierSolver().solve(prog)
    assert used["sketch"] == 0
    assert sol.objective == pytest.approx(formed.objective, rel=1e-9)

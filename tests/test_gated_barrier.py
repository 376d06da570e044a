"""The dual log-barrier path of the gated solver (``method="barrier"``) against a direct
cvxpy/Clarabel solve, FISTA and its own certificates."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from convexrelu.arrangements import enumerate_patterns, sample_patterns
from convexrelu.certificates._gap import gated_duality_gap
from convexrelu.losses import SquaredLoss, get_loss
from convexrelu.regularizers import GroupL2Penalty
from convexrelu.solvers import FistaSolver
from convexrelu.solvers import _gated_barrier
from convexrelu.solvers._fista import solve_gated_fista
from convexrelu.solvers._gated_barrier import DualBarrier

cp = pytest.importorskip("cvxpy")

from test_fast_solvers import reference  # noqa: E402  (the direct cvxpy solve)


def problem(n=20, d=2, bias=True, exact=True, seed=0, P=30):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X[:, 0] - np.abs(X[:, 1]) + 0.3 * rng.standard_normal(n)
    pats = (enumerate_patterns(X, bias=bias) if exact
            else sample_patterns(X, P, random_state=seed, bias=bias))
    return pats.augment(X), pats.masks, y


@pytest.mark.parametrize("output_bias", [False, True])
@pytest.mark.parametrize("exact", [True, False])
def test_barrier_matches_cvxpy_and_is_sparse(output_bias, exact):
    Xa, masks, y = problem(exact=exact)
    loss, beta = get_loss("squared"), 0.3
    ref = reference(loss, Xa, masks, y, beta, relu=False, output_bias=output_bias)
    for tol in (1e-6, 1e-9):
        res = solve_gated_fista(loss, Xa, masks, y, beta, output_bias=output_bias, tol=tol,
                                method="barrier")
        assert res.info["method"] == "barrier" and res.info["barrier"]["steps"] > 0
        assert res.converged
        assert abs(res.objective - ref) <= 1e-6 * abs(ref)
        assert res.gap <= tol * abs(res.objective)
        assert res.objective - ref <= res.gap + 1e-9 * abs(ref)
        # recomputed from scratch: the primal value, and a gap within tol (the returned
        # gap may use a better dual point seen on the way, never a worse one)
        dg = gated_duality_gap(loss, Xa, masks.astype(float), y, res.B, res.output_bias,
                               beta, output_bias=output_bias)
        assert abs(dg.primal - res.objective) <= 1e-12 * abs(ref)
        assert res.gap <= dg.gap + 1e-12 * abs(ref)
        # an exactly sparse network (the polish's point), not the barrier's dense one
        nz = np.linalg.norm(res.B, axis=1) > 0
        assert 0 < nz.sum() < masks.shape[1]
        fista = solve_gated_fista(loss, Xa, masks, y, beta, output_bias=output_bias,
                                  tol=tol, method="fista")
        assert fista.info["method"] == "fista"
        assert abs(fista.objective - res.objective) <= 2 * tol * abs(ref)


def test_barrier_iterates_are_feasible_and_bound_the_optimum():
    """Every dual iterate is strictly feasible, so ``D(lambda)`` is a lower bound at every
    step; every primal point of the path is above the optimum, and both converge."""
    Xa, masks, y = problem(n=25, seed=1)
    loss, beta = get_loss("squared"), 0.2
    ref = reference(loss, Xa, masks, y, beta, relu=False, output_bias=True)
    S = masks.astype(float)
    bar = DualBarrier(loss, Xa, S, y, beta, output_bias=True)
    duals, primals = [], []
    for _ in range(400):  # centre, then divide mu by 8 (as DualBarrier.run does)
        dec = bar.step()
        assert dec is not None
        corr = S.T @ (bar.lam[:, None] * Xa)
        assert np.max(np.linalg.norm(corr, axis=1)) <= beta * (1 + 1e-12)
        assert np.all(bar._slack(bar.Z) > 0)  # strictly inside in its own arithmetic
        assert abs(bar.lam.sum()) <= 1e-9 * max(1.0, np.abs(bar.lam).max())
        duals.append(bar.dual_value())
        if dec <= 0.5 * bar.mu:
            W, c0 = bar.primal_point()
            primals.append(gated_duality_gap(loss, Xa, S, y, W, c0, beta,
                                             output_bias=True).primal)
            bar.mu /= 8.0
            if len(primals) == 12:
                break
    assert max(duals) <= ref + 1e-10 * abs(ref)
    assert min(primals) >= ref - 1e-10 * abs(ref)
    # the dual iterates converge to the optimum; the barrier's primal points (its
    # gradient) more slowly, which is why the polish finishes from their support
    assert ref - max(duals) <= 1e-8 * abs(ref)
    assert min(primals) - ref <= 1e-3 * abs(ref)


def test_barrier_column_loss_matches_fista():
    """A column of a 3-output squared loss (curvature 1/3): the same optimum as FISTA."""
    Xa, masks, y = problem(n=18, seed=2)
    loss = SquaredLoss(n_outputs=3)
    res = solve_gated_fista(loss, Xa, masks, y, 0.1, output_bias=True, tol=1e-8,
                            method="barrier")
    ref = solve_gated_fista(loss, Xa, masks, y, 0.1, output_bias=True, tol=1e-8,
                            method="fista")
    assert res.converged and ref.converged
    assert abs(res.objective - ref.objective) <= 2e-8 * abs(ref.objective)


@pytest.mark.parametrize("case", ["above_alpha_max", "zero_targets"])
def test_barrier_zero_network(case):
    Xa, masks, y = problem(seed=3)
    loss = get_loss("squared")
    beta = 0.3
    if case == "zero_targets":
        y = np.zeros_like(y)
    else:  # beyond alpha_max the zero network is optimal
        beta = 2.0 * np.max(np.linalg.norm(masks.T.astype(float) @ (y[:, None] * Xa),
                                           axis=1))
    res = solve_gated_fista(loss, Xa, masks, y, beta, output_bias=False, tol=1e-8,
                            method="barrier")
    assert res.converged
    assert np.all(res.B == 0.0)
    assert res.objective == pytest.approx(0.5 * y @ y, abs=1e-12)


def test_auto_chooses_the_barrier_where_it_applies(monkeypatch):
    Xa, masks, y = problem()
    sq, lg = get_loss("squared"), get_loss("logistic")
    yl = np.where(y > np.median(y), 1.0, -1.0)

    def method(loss, yy, **kw):
        with warnings.catch_warnings():  # the method is chosen before any iteration
            warnings.simplefilter("ignore", ConvergenceWarning)
            return solve_gated_fista(loss, Xa, masks, yy, 0.3, output_bias=True, tol=1e-3,
                                     max_iter=20, **kw).info["method"]

    assert method(sq, y) == "barrier"  # few samples, more coordinates than samples
    amax = np.max(np.linalg.norm(masks.T.astype(float) @ ((y - y.mean())[:, None] * Xa),
                                 axis=1))
    assert 0.3 <= _gated_barrier.BARRIER_MAX_ALPHA_RATIO * amax

    def at(beta):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return solve_gated_fista(sq, Xa, masks, y, beta, output_bias=True, tol=1e-3,
                                     max_iter=20).info["method"]

    # few active blocks (alpha near alpha_max): FISTA
    assert at(0.5 * amax) == "fista"
    assert at(0.9 * _gated_barrier.BARRIER_MAX_ALPHA_RATIO * amax) == "barrier"
    assert method(lg, yl) == "fista"  # no constant curvature
    assert method(sq, y, W0=np.zeros((masks.shape[1], Xa.shape[1]))) == "fista"
    assert method(sq, y, regularizer=GroupL2Penalty(Xa.shape[1], free_bias=True)) == "fista"
    assert method(sq, y, dtype=np.float32) == "fista"
    monkeypatch.setattr(_gated_barrier, "BARRIER_MAX_SAMPLES", Xa.shape[0] - 1)
    assert method(sq, y) == "fista"  # too many samples for its n x n factor


def test_barrier_refuses_what_it_cannot_solve():
    Xa, masks, y = problem()
    yl = np.where(y > np.median(y), 1.0, -1.0)
    with pytest.raises(ValueError, match="quadratic loss"):
        solve_gated_fista(get_loss("logistic"), Xa, masks, yl, 0.3, output_bias=True,
                          method="barrier")
    with pytest.raises(ValueError, match="penalize_bias=True"):
        solve_gated_fista(get_loss("squared"), Xa, masks, y, 0.3, output_bias=True,
                          regularizer=GroupL2Penalty(Xa.shape[1], free_bias=True),
                          method="barrier")
    with pytest.raises(ValueError, match="float64 on the numpy backend"):
        solve_gated_fista(get_loss("squared"), Xa, masks, y, 0.3, output_bias=True,
                          method="barrier", dtype=np.float32)
    with pytest.raises(ValueError, match="method must be"):
        solve_gated_fista(get_loss("squared"), Xa, masks, y, 0.3, output_bias=True,
                          method="newton")


def test_failed_barrier_hands_over_to_fista(monkeypatch):
    """A barrier whose Newton matrix cannot be factored: FISTA solves the program."""
    Xa, masks, y = problem(seed=4)
    loss = get_loss("squared")
    monkeypatch.setattr(_gated_barrier, "damped_cholesky", lambda H: None)
    res = solve_gated_fista(loss, Xa, masks, y, 0.3, output_bias=True, tol=1e-8,
                            method="barrier")
    assert res.info["method"] == "barrier"
    assert res.converged
    # the barrier's record survives FISTA's point (no Newton step was taken)
    assert res.info["barrier"] == {"steps": 0,
                                   "failed": "the Newton matrix could not be factored"}
    assert res.n_iter > 1
    ref = reference(loss, Xa, masks, y, 0.3, relu=False, output_bias=True)
    assert abs(res.objective - ref) <= 1e-6 * abs(ref)


def test_fista_solver_takes_the_method():
    from convexrelu.program import ConvexProgram

    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, 3))
    y = X[:, 0] - np.abs(X[:, 1])
    pats = sample_patterns(X, 20, random_state=0, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.5, bias=True,
                         penalize_bias=True, formulation="gated_relu")
    a = FistaSolver(tol=1e-8).solve(prog)
    b = FistaSolver(tol=1e-8, method="fista").solve(prog)
    assert a.info["method"] == "barrier" and b.info["method"] == "fista"
    assert a.objective == pytest.approx(b.objective, rel=2e-8)
    assert a.info["rel_gap"] <= 1e-8
    with pytest.raises(ValueError, match="method"):
        FistaSolver(method="newton").solve(prog)


def test_barrier_without_polish_returns_its_certified_point():
    """``polish=False``: the barrier alone to tol, certified by its dual iterate's value
    (a valid lower bound: the returned gap bounds the true suboptimality)."""
    Xa, masks, y = problem(seed=6)
    loss = get_loss("squared")
    ref = reference(loss, Xa, masks, y, 0.3, relu=False, output_bias=True)
    res = solve_gated_fista(loss, Xa, masks, y, 0.3, output_bias=True, tol=1e-7,
                            method="barrier", polish=False)
    assert res.converged and res.info["polish"]["rounds"] == 0
    assert abs(res.objective - ref) <= 1e-6 * abs(ref)
    assert res.gap <= 1e-7 * abs(res.objective)
    assert res.objective - ref <= res.gap + 1e-10 * abs(ref)
    dg = gated_duality_gap(loss, Xa, masks.astype(float), y, res.B, res.output_bias, 0.3,
                           output_bias=True)
    assert abs(dg.primal - res.objective) <= 1e-12 * abs(ref)
    # auto does not take the barrier without the polish (it would not be sparse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert solve_gated_fista(loss, Xa, masks, y, 0.3, output_bias=True, tol=1e-6,
                                 max_iter=20, polish=False).info["method"] == "fista"


@pytest.mark.parametrize("output_bias", [False, True])
def test_barrier_without_patterns(output_bias):
    """No pattern at all: the network is the output bias alone (no BLAS call on an empty
    factor)."""
    rng = np.random.default_rng(7)
    Xa, y = rng.standard_normal((10, 3)), rng.standard_normal(10)
    res = solve_gated_fista(get_loss("squared"), Xa, np.zeros((10, 0), bool), y, 0.3,
                            output_bias=output_bias, method="barrier")
    yc = y - y.mean() if output_bias else y
    assert res.converged and res.B.shape == (0, 3)
    assert res.objective == pytest.approx(0.5 * yc @ yc, rel=1e-9)


def test_refused_polish_is_reported_and_the_result_stays_sound():
    """A polish refused (``polish_max_vars=1``): said in ``info["polish"]``; what is
    returned (the barrier's point, or FISTA's from it) carries a valid gap, and the
    barrier's record and its Newton steps stay in ``info`` and ``n_iter``."""
    Xa, masks, y = problem(n=20, seed=8)
    loss = get_loss("squared")
    ref = reference(loss, Xa, masks, y, 0.05, relu=False, output_bias=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = solve_gated_fista(loss, Xa, masks, y, 0.05, output_bias=True, tol=1e-10,
                                method="barrier", polish_max_vars=1, max_iter=400)
    assert "too large" in res.info["polish"]["info"]
    steps = res.info["barrier"]["steps"]
    assert 0 < steps <= res.n_iter <= 400
    assert res.objective - ref <= res.gap + 1e-12 * abs(ref)
    assert res.gap >= -1e-12 * abs(ref)


def test_dense_barrier_point_is_pruned_within_its_own_certificate():
    """The polish refused and the barrier's own (dense) point certified: its smallest
    blocks are zeroed as far as its own certificate stays within tol."""
    Xa, masks, y = problem(n=20, seed=8)
    loss = get_loss("squared")
    res = solve_gated_fista(loss, Xa, masks, y, 0.05, output_bias=True, tol=1e-3,
                            method="barrier", polish_max_vars=1)
    assert res.converged and "too large" in res.info["polish"]["info"]
    dg = gated_duality_gap(loss, Xa, masks.astype(float), y, res.B, res.output_bias, 0.05,
                           output_bias=True)
    assert dg.gap <= 1e-3 * abs(dg.primal)  # its own certificate, not only D(lambda)'s
    nz = np.count_nonzero(np.linalg.norm(res.B, axis=1))
    assert nz < 0.9 * masks.shape[1]  # pruned (the dense point had every block)

"""Gated FISTA and the ReLU solver against a direct cvxpy/Clarabel solve written here, on the
objective value (STYLE rule 9)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from convexrelu.arrangements import enumerate_patterns, sample_patterns
from convexrelu.losses import get_loss
from convexrelu._polish import repair_feasibility
from convexrelu.certificates._gap import (
    best_dual_scale,
    dual_point,
    fit_output_shift,
    gated_duality_gap,
    relu_multiplier_gap,
)
from convexrelu.regularizers import GroupL2Penalty
from convexrelu.solvers._fista import solve_gated_fista

cp = pytest.importorskip("cvxpy")

TOL = 1e-7  # solver gap tolerance; objectives must agree with cvxpy to 1e-6


def reference(loss, Xa, masks, y, beta, *, relu, output_bias, regularizer=None):
    """Direct cvxpy/Clarabel solve of the gated or ReLU program (tolerances 1e-10)."""
    n, d = Xa.shape
    P = masks.shape[1]
    Dm = masks.astype(float)
    reg = GroupL2Penalty(d) if regularizer is None else regularizer
    W = cp.Variable((P, d))
    c = cp.Variable() if output_bias else 0.0
    cons = []
    if relu:
        V = cp.Variable((P, d))
        U = V - W
        A = 2 * Dm - 1
        cons = [cp.multiply(A, Xa @ V.T) >= 0, cp.multiply(A, Xa @ W.T) >= 0]
        pen = reg.to_cvxpy(V) + reg.to_cvxpy(W)
    else:
        U = W
        pen = reg.to_cvxpy(W)
    z = cp.sum(cp.multiply(Dm, Xa @ U.T), axis=1) + c
    prob = cp.Problem(cp.Minimize(loss.cvxpy_value(z, y) + beta * pen), cons)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    return prob.value


def make_problem(loss_name, bias, exact, seed=0, n=14, d=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X[:, 0] - np.abs(X[:, 1]) + 0.3 * rng.standard_normal(n)
    if loss_name == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    pats = (enumerate_patterns(X, bias=bias) if exact
            else sample_patterns(X, 30, random_state=seed, bias=bias))
    return get_loss(loss_name), pats.augment(X), pats, y


CASES = [(ln, b, e) for ln in ("squared", "logistic") for b in (False, True)
         for e in (True, False)]


@pytest.mark.parametrize("loss_name,bias,exact", CASES)
def test_gated_fista_matches_cvxpy(loss_name, bias, exact):
    loss, Xa, pats, y = make_problem(loss_name, bias, exact)
    beta = 0.3
    ref = reference(loss, Xa, pats.masks, y, beta, relu=False, output_bias=bias)
    res = solve_gated_fista(loss, Xa, pats.masks, y, beta, output_bias=bias, tol=TOL)
    assert res.converged
    assert abs(res.objective - ref) <= 1e-6 * abs(ref)
    assert res.gap <= TOL * abs(res.objective)
    # the certified gap bounds the true suboptimality
    assert res.objective - ref <= res.gap + 1e-9 * abs(ref)


# unpenalised hidden biases with the logistic loss are left out: a free bias on a pattern
# whose active samples share one label runs to infinity (no attained optimum)
POLISH_CASES = [(ln, b, np_) for ln in ("squared", "logistic") for b in (False, True)
                for np_ in (False, True) if not np_ or (b and ln == "squared")]


# the logistic case with a free bias takes 18 s (cvxpy's reference): in the slow run
@pytest.mark.parametrize("loss_name,bias,unpen", [
    pytest.param(*c, marks=pytest.mark.slow) if c == ("logistic", True, False) else c
    for c in POLISH_CASES])
def test_gated_polish_matches_cvxpy(loss_name, bias, unpen):
    """FISTA to a loose gap, then the active-set Newton polish: the objective matches
    cvxpy to 1e-6 and the returned certified gap over all patterns honours tol."""
    # unpenalised hidden biases: sampled patterns with [masks, 1] of rank < n (with all
    # patterns the free biases interpolate and the optimum is 0)
    loss, Xa, pats, y = make_problem(loss_name, bias, not unpen, n=80 if unpen else 20)
    reg = GroupL2Penalty(Xa.shape[1], free_bias=unpen)
    beta = 0.3
    ref = reference(loss, Xa, pats.masks, y, beta, relu=False, output_bias=bias,
                    regularizer=reg)
    for tol in (1e-6, 1e-9):
        res = solve_gated_fista(loss, Xa, pats.masks, y, beta, output_bias=bias,
                                regularizer=reg, tol=tol, polish=True, polish_tol=0.3,
                                method="fista")
        assert res.converged
        assert res.info["polish"]["rounds"] >= 1 and res.info["polish"]["newton_steps"] >= 1
        if loss_name == "squared":  # rounds ended early (blocks added before the end)
            assert res.info["polish"]["early_ends"] >= 1
        assert abs(res.objective - ref) <= 1e-6 * abs(ref)
        assert res.gap <= tol * abs(res.objective)
        assert res.objective - ref <= res.gap + 1e-9 * abs(ref)
        # the reported gap is the certificate recomputed from scratch at the returned point
        dg = gated_duality_gap(loss, Xa, pats.masks.astype(float), y, res.B,
                               res.output_bias, beta, output_bias=bias, regularizer=reg)
        assert abs(dg.primal - res.objective) <= 1e-12 * abs(ref)
        assert dg.gap <= tol * abs(dg.primal) or res.gap < dg.gap  # best dual seen
        assert dg.gap >= -1e-12 * abs(ref) and res.gap >= -1e-12 * abs(ref)
        # the history (used by the benchmarks) ends at the certified gap
        assert res.history[-1][3] <= tol * abs(res.history[-1][2])


@pytest.mark.parametrize("unpen,output_bias", [(False, True), (True, True), (False, False)])
def test_chunked_polish_design_matches_the_formed_one(unpen, output_bias):
    """The polish's design in row chunks (data too large to form it) gives the formed
    design's products: A^T g, A^T A over several chunks, and the columns left after
    dropping blocks."""
    from convexrelu.solvers import _fista as F

    rng = np.random.default_rng(4)
    n, d, P = 53, 5, 9
    Xa = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])
    S = (Xa @ rng.standard_normal((d, P)) > 0).astype(float)
    reg = GroupL2Penalty(d, free_bias=unpen)
    act = np.array([0, 2, 3, 7])
    A = F._polish_columns(Xa, S, act, reg, output_bias)
    C = F._ChunkedColumns(Xa, S, act, reg, output_bias)
    assert C.shape == A.shape
    g = rng.standard_normal(n)
    np.testing.assert_allclose(C.rmatvec(g), A.T @ g, rtol=1e-12, atol=1e-12)
    old = F._POLISH_CHUNK
    try:
        F._POLISH_CHUNK = 7 * A.shape[1]  # 7 rows per chunk: 8 chunks, the last short
        np.testing.assert_allclose(C.gram(), A.T @ A, rtol=1e-12, atol=1e-11)
        F._POLISH_CHUNK = 5 * P  # A^T g over chunks of 5 rows
        np.testing.assert_allclose(C.rmatvec(g), A.T @ g, rtol=1e-12, atol=1e-12)
    finally:
        F._POLISH_CHUNK = old
    keep = np.array([True, False, True, False])
    k = reg.penalized_dim
    cols = np.ones(A.shape[1], bool)
    cols[:act.size * k] = np.repeat(keep, k)
    np.testing.assert_allclose(C.drop_blocks(keep).rmatvec(g), A[:, cols].T @ g,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("unpen", [False, True])
def test_gated_polish_in_row_chunks_matches_cvxpy(monkeypatch, unpen):
    """With the design over the polish's size limit (a quadratic loss), the polish works on
    row chunks instead of stopping: same optimum as cvxpy, certified."""
    from convexrelu.solvers import _fista as F

    # 30 sampled patterns of 150 samples: fewer restricted columns than samples
    loss, Xa, pats, y = make_problem("squared", True, False, n=150)
    reg = GroupL2Penalty(Xa.shape[1], free_bias=unpen)
    beta = 0.3
    ref = reference(loss, Xa, pats.masks, y, beta, relu=False, output_bias=True,
                    regularizer=reg)
    monkeypatch.setattr(F, "_POLISH_MAX_DESIGN", 10)
    monkeypatch.setattr(F, "_POLISH_CHUNK", 40)
    res = solve_gated_fista(loss, Xa, pats.masks, y, beta, output_bias=True, regularizer=reg,
                            tol=1e-9, polish=True, polish_tol=0.3)
    assert "info" not in res.info["polish"]
    assert res.info["polish"]["newton_steps"] >= 1
    assert res.converged and res.gap <= 1e-9 * abs(res.objective)
    assert abs(res.objective - ref) <= 1e-6 * abs(ref)
    # a non-quadratic loss still refuses a design over the limit (its A^T diag(h) A
    # would be formed at every step)
    lg, Xl, pl, yl = make_problem("logistic", True, True)
    res = solve_gated_fista(lg, Xl, pl.masks, yl, beta, output_bias=True, tol=1e-6,
                            polish=True, polish_tol=0.3)
    assert "too large" in res.info["polish"].get("info", "")


@pytest.mark.slow  # default-run time (CI on a loaded 2-core machine)
def test_gated_polish_sampled_patterns_and_off():
    """Polish over sampled patterns (support changes: blocks are dropped and added), and
    ``polish=False`` gives the same optimum."""
    loss, Xa, pats, y = make_problem("squared", True, False, n=40, d=3)
    beta = 0.1
    ref = reference(loss, Xa, pats.masks, y, beta, relu=False, output_bias=True)
    on = solve_gated_fista(loss, Xa, pats.masks, y, beta, output_bias=True, tol=1e-8,
                           polish=True, polish_tol=1.0)
    off = solve_gated_fista(loss, Xa, pats.masks, y, beta, output_bias=True, tol=1e-8,
                            polish=False, max_iter=200000)
    assert off.info["polish"]["rounds"] == 0
    for res in (on, off):
        assert res.converged and res.gap <= 1e-8 * abs(res.objective)
        assert abs(res.objective - ref) <= 1e-6 * abs(ref)


def test_newton_direction_schur_matches_dense():
    """The sample-space (Schur complement) Newton step equals the dense solve."""
    from convexrelu._newton import norm_derivatives
    from convexrelu.solvers._fista import _newton_direction

    rng = np.random.default_rng(0)
    for n, m, k, nf in [(20, 8, 3, 5), (50, 3, 4, 0), (10, 5, 3, 1)]:
        K = m * k + nf
        A = rng.standard_normal((n, K))
        sh = rng.random(n) + 0.1
        grad = rng.standard_normal(K)
        W = rng.standard_normal((m, k))
        r, U, Hn = norm_derivatives(W, 0.7)
        H = (A * sh[:, None]).T @ (A * sh[:, None])
        for i in range(m):
            blk = slice(i * k, (i + 1) * k)
            H[blk, blk] += 0.7 / r[i] * (np.eye(k) - np.outer(U[i], U[i]))
        step = _newton_direction(A, sh, grad, U, r, Hn, 0.7, m, k)
        assert np.linalg.norm(H @ step + grad) <= 1e-8 * np.linalg.norm(grad)
    # block columns S_i o Xk (the solver's case): the Khatri-Rao form of the same system
    n, m, k, nf = 25, 9, 3, 4
    Xk = rng.standard_normal((n, k))
    Sa = (rng.random((n, m)) < 0.6).astype(float)
    A = np.hstack([(Sa[:, :, None] * Xk[:, None, :]).reshape(n, m * k),
                   rng.standard_normal((n, nf))])
    sh = rng.random(n) + 0.1
    grad = rng.standard_normal(m * k + nf)
    W = rng.standard_normal((m, k))
    r, U, Hn = norm_derivatives(W, 0.7)
    generic = _newton_direction(A, sh, grad, U, r, Hn, 0.7, m, k)
    structured = _newton_direction(A, sh, grad, U, r, Hn, 0.7, m, k, Xk=Xk, Sa=Sa)
    assert np.linalg.norm(generic - structured) <= 1e-8 * np.linalg.norm(generic)
    # with the polish's cache: the sample-space matrix goes to one buffer, reused by the
    # next step (other curvatures and radii), and the steps are the same as without it
    cache: dict = {}
    for scale in (1.0, 2.5):
        r2 = r * scale
        sh2 = sh * scale
        plain = _newton_direction(A, sh2, grad, U, r2, Hn, 0.7, m, k, Xk=Xk, Sa=Sa)
        cached = _newton_direction(A, sh2, grad, U, r2, Hn, 0.7, m, k, Xk=Xk, Sa=Sa,
                                   cache=cache)
        np.testing.assert_allclose(cached, plain, rtol=1e-12, atol=1e-12)
        if scale == 1.0:
            buf = cache["N"]
        assert cache["N"] is buf and buf.shape == (n, n)
    # the solver's own case: boolean masks, n >= 512, more columns than samples: N
    # formed and factored in float32 only (its buffer kept), or, where that is switched
    # off, formed in float64 with a float32 factor refined in float64 (spd_solver)
    n, m, k = 600, 30, 25
    Xk = rng.standard_normal((n, k))
    Sa = rng.random((n, m)) < 0.6
    A = (Sa[:, :, None] * Xk[:, None, :]).reshape(n, m * k)
    W = rng.standard_normal((m, k))
    r, U, Hn = norm_derivatives(W, 0.7)
    grad = rng.standard_normal(m * k)
    H = A.T @ A
    for i in range(m):
        blk = slice(i * k, (i + 1) * k)
        H[blk, blk] += 0.7 / r[i] * (np.eye(k) - np.outer(U[i], U[i]))
    sh = np.ones(n)
    plain = _newton_direction(A, sh, grad, U, r, Hn, 0.7, m, k, Xk=Xk, Sa=Sa)
    cache = {}
    for _ in range(2):
        cached = _newton_direction(A, sh, grad, U, r, Hn, 0.7, m, k, Xk=Xk, Sa=Sa,
                                   cache=cache)
        np.testing.assert_allclose(cached, plain, rtol=1e-9, atol=1e-12)
    N32 = cache["N32"]
    assert N32.shape == (n, n) and N32.dtype == np.float32 and "spd_f32" not in cache
    assert not np.any(np.tril(N32.T, -1))  # the upper factor; the lower triangle stays 0
    # the second call reused the first one's factor (same support and radii)
    assert cache["schur32_reused"] == 1 and "schur32_off" not in cache
    # float32 solves, unrefined but checked: a Newton step, not an exact solve
    assert np.linalg.norm(H @ cached + grad) <= 1e-3 * np.linalg.norm(grad)
    off = {"schur32_off": True}
    exact = _newton_direction(A, sh, grad, U, r, Hn, 0.7, m, k, Xk=Xk, Sa=Sa, cache=off)
    assert off["spd_f32"].shape == (n, n) and off["spd_f32"].dtype == np.float32
    # (one float32 solve refined once in float64)
    assert np.linalg.norm(H @ exact + grad) <= 1e-5 * np.linalg.norm(grad)
    assert np.linalg.norm(cached - exact) <= 1e-3 * np.linalg.norm(exact)


@pytest.mark.parametrize("varying", [False, True])
def test_newton_direction_float32_schur_checks_and_falls_back(monkeypatch, varying):
    """The float32 sample-space step (n >= 512): equal to the dense Newton step to the
    check's accuracy, with a constant curvature (squared loss) and a varying one; the
    factor of an earlier step is reused only when the support is the same and the radii
    close, and only when its check passes; a step whose check fails is computed again
    with N in float64, which the rest of the polish then keeps."""
    from convexrelu._newton import norm_derivatives
    from convexrelu.solvers import _fista as F

    rng = np.random.default_rng(21)
    n, m, k = 560, 28, 24
    Xk = rng.standard_normal((n, k))
    Sa = rng.random((n, m)) < 0.5
    A = (Sa[:, :, None] * Xk[:, None, :]).reshape(n, m * k)
    A = np.hstack([A, np.ones((n, 1))])  # an output bias: a free column
    sh = rng.random(n) + 0.2 if varying else np.full(n, 0.8)
    W = rng.standard_normal((m, k))

    def dense_step(r, U):
        C = A * sh[:, None]
        H = C.T @ C
        for i in range(m):
            blk = slice(i * k, (i + 1) * k)
            H[blk, blk] += 0.4 / r[i] * (np.eye(k) - np.outer(U[i], U[i]))
        return H

    grad = rng.standard_normal(m * k + 1)
    cache: dict = {}
    for scale, reused in ((1.0, 0), (1.0001, 1), (3.0, 1)):  # radii close: reused;
        r, U, Hn = norm_derivatives(W * scale, 0.4)      # 3x: a new factor
        step = F._newton_direction(A, sh, grad, U, r, Hn, 0.4, m, k, Xk=Xk, Sa=Sa,
                                   cache=cache)
        H = dense_step(r, U)
        ref = np.linalg.solve(H, -grad)
        assert np.linalg.norm(step - ref) <= 2e-3 * np.linalg.norm(ref)
        assert cache.get("schur32_reused", 0) == reused
    # another support (one block fewer; or as many blocks, one of them another
    # pattern): never the old factor
    r, U, Hn = norm_derivatives(W[1:], 0.4)
    F._newton_direction(np.hstack([A[:, k:m * k], A[:, -1:]]), sh,
                        np.r_[grad[k:m * k], grad[-1:]], U, r, Hn, 0.4, m - 1, k, Xk=Xk,
                        Sa=Sa[:, 1:], cache=cache)
    assert cache.get("schur32_reused", 0) == 1
    r, U, Hn = norm_derivatives(W, 0.4)  # the radii of the factor in the cache
    F._newton_direction(A, sh, grad, U, r, Hn, 0.4, m, k, Xk=Xk, Sa=Sa, cache=cache)
    assert cache["schur32_reused"] == 1  # (the factor of the step before: m - 1 blocks)
    Sb = Sa.copy()
    Sb[:, 0] = ~Sb[:, 0]
    Ab = np.hstack([(Sb[:, :, None] * Xk[:, None, :]).reshape(n, m * k), np.ones((n, 1))])
    F._newton_direction(Ab, sh, grad, U, r, Hn, 0.4, m, k, Xk=Xk, Sa=Sb, cache=cache)
    assert cache["schur32_reused"] == 1
    # the check fails (a tolerance of 0): this step and the later ones use N in float64
    monkeypatch.setattr(F, "_MIXED_MAX_CORRECTION", 0.0)
    r, U, Hn = norm_derivatives(W, 0.4)
    fresh: dict = {}
    step = F._newton_direction(A, sh, grad, U, r, Hn, 0.4, m, k, Xk=Xk, Sa=Sa, cache=fresh)
    assert fresh["schur32_off"] is True and "spd_f32" in fresh
    H = dense_step(r, U)
    assert np.linalg.norm(H @ step + grad) <= 1e-6 * np.linalg.norm(grad)
    del fresh["spd_f32"]
    F._newton_direction(A, sh, grad, U, r, Hn, 0.4, m, k, Xk=Xk, Sa=Sa, cache=fresh)
    assert "spd_f32" in fresh and "schur32_reused" not in fresh


def test_newton_direction_sample_space_with_no_active_block():
    """No active block, more free columns than samples (n >= 512): N is the identity;
    the step is finite, the same with and without the polish's cache, twice."""
    from convexrelu.solvers._fista import _newton_direction

    rng = np.random.default_rng(22)
    n, k, nf = 520, 4, 600
    Xk = rng.standard_normal((n, k))
    A = rng.standard_normal((n, nf))
    grad = A.T @ rng.standard_normal(n)
    args = (A, np.ones(n), grad, np.zeros((0, k)), np.zeros(0), np.zeros((0, k, k)), 0.5,
            0, k)
    ref = _newton_direction(*args, Xk=Xk, Sa=np.zeros((n, 0), bool))
    assert ref is not None and np.all(np.isfinite(ref))
    cache: dict = {}
    for _ in range(2):
        got = _newton_direction(*args, Xk=Xk, Sa=np.zeros((n, 0), bool), cache=cache)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    # the minimum-norm least-squares step: A step = -A (A^T A)^+ grad direction
    assert np.linalg.norm(A.T @ (A @ ref) + grad) <= 1e-6 * np.linalg.norm(grad)


@pytest.mark.parametrize("unpen,output_bias", [(False, False), (True, True), (False, True)])
def test_polish_columns_are_the_block_products(unpen, output_bias):
    """The restricted design, written in place block by block: the same entries as the
    products ``S_i o Xa`` side by side, C-ordered (also with no active block)."""
    from convexrelu.solvers._fista import _polish_columns

    rng = np.random.default_rng(4)
    n, d, P = 9, 4, 6
    Xa = rng.standard_normal((n, d))
    S = rng.random((n, P)) < 0.5
    reg = GroupL2Penalty(d, free_bias=unpen)
    for act in (np.array([1, 3, 4]), np.zeros(0, int)):
        cols = [S[:, i:i + 1] * reg.penalized(Xa) for i in act]
        if unpen:
            cols += [S[:, i:i + 1] * reg.unpenalized(Xa) for i in range(P)]
        if output_bias:
            cols.append(np.ones((n, 1)))
        ref = np.hstack(cols) if cols else np.zeros((n, 0))
        A = _polish_columns(Xa, S, act, reg, output_bias)
        assert A.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(A, ref)


@pytest.mark.parametrize("unpen,output_bias", [(False, False), (True, True), (False, True)])
def test_khatri_rao_design_gives_the_formed_designs_step(unpen, output_bias):
    """The polish's implicit design (more columns than samples, never formed): the same
    ``A^T g``, free columns, dropped blocks and Newton step as the formed design."""
    from convexrelu._newton import norm_derivatives
    from convexrelu.solvers._fista import (_KhatriRaoColumns, _newton_direction,
                                           _polish_columns)

    rng = np.random.default_rng(3)
    n, d, P = 30, 4, 12
    Xa = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])
    S = (rng.random((n, P)) < 0.5).astype(float)
    reg = GroupL2Penalty(d, free_bias=unpen)
    k = reg.penalized_dim
    act = np.array([0, 2, 3, 5, 7, 8, 10, 11])
    A = _polish_columns(Xa, S, act, reg, output_bias)
    KR = _KhatriRaoColumns(Xa, S, act, reg, output_bias)
    assert KR.shape == A.shape and A.shape[1] > n
    g = rng.standard_normal(n)
    np.testing.assert_allclose(KR.rmatvec(g), A.T @ g, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(KR.free_columns(), A[:, act.size * k:])
    np.testing.assert_array_equal(KR.dense(), A)
    keep = np.ones(act.size, bool)
    keep[[1, 4]] = False
    cols = np.ones(A.shape[1], bool)
    cols[:act.size * k] = np.repeat(keep, k)
    np.testing.assert_array_equal(KR.drop_blocks(keep).dense(), A[:, cols])
    m = act.size
    W = rng.standard_normal((m, k))
    r, U, Hn = norm_derivatives(W, 0.5)
    sh = rng.random(n) + 0.2
    grad = rng.standard_normal(A.shape[1])
    kw = dict(Xk=Xa[:, :k], Sa=S[:, act])
    formed = _newton_direction(A, sh, grad, U, r, Hn, 0.5, m, k, **kw)
    implicit = _newton_direction(KR, sh, grad, U, r, Hn, 0.5, m, k, **kw)
    np.testing.assert_allclose(implicit, formed, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("beta", [0.05, 0.5])
def test_polish_with_more_columns_than_samples_matches_cvxpy(monkeypatch, beta):
    """The polish on the implicit design (K > n), and (beta = 0.5) its switch to the
    formed design once dropped blocks leave K <= n: cvxpy's optimum, certified."""
    from convexrelu.solvers import _fista

    formed = []
    dense = _fista._KhatriRaoColumns.dense
    monkeypatch.setattr(_fista._KhatriRaoColumns, "dense",
                        lambda self: formed.append(1) or dense(self))
    loss, Xa, pats, y = make_problem("squared", True, True, n=16)
    ref = reference(loss, Xa, pats.masks, y, beta, relu=False, output_bias=True)
    res = solve_gated_fista(loss, Xa, pats.masks, y, beta, output_bias=True, tol=1e-9,
                            polish=True, polish_tol=0.3, method="fista")
    assert res.converged and res.info["polish"]["newton_steps"] >= 1
    assert np.count_nonzero(np.linalg.norm(res.B, axis=1)) * Xa.shape[1] > Xa.shape[0]
    assert len(formed) == (1 if beta == 0.5 else 0)
    assert abs(res.objective - ref) <= 1e-6 * abs(ref)
    assert res.objective - ref <= res.gap + 1e-9 * abs(ref)


RELU_CASES = [(ln, b, e) for ln in ("squared", "logistic")
              for b in ("none", "penalized", "free") for e in (True, False)]


def make_program(loss_name, bias, exact, seed=0, n=14, d=2, alpha=0.3, formulation="relu"):
    from convexrelu.program import ConvexProgram

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X[:, 0] - np.abs(X[:, 1]) + 0.3 * rng.standard_normal(n)
    if loss_name == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    b = bias != "none"
    pats = (enumerate_patterns(X, bias=b) if exact
            else sample_patterns(X, 30, random_state=seed, bias=b))
    return ConvexProgram(X, y, pats, loss=loss_name, alpha=alpha, bias=b,
                         penalize_bias=(bias == "penalized"), fit_output_bias=b,
                         formulation=formulation)


def program_reference(prog, relu=True):
    return reference(prog.loss, prog.X_aug, prog.masks, prog.y, prog.alpha, relu=relu,
                     output_bias=prog.fit_output_bias, regularizer=prog.regularizer)


@pytest.mark.parametrize("loss_name,bias,exact", RELU_CASES)
def test_relu_solver_matches_cvxpy(loss_name, bias, exact):
    from convexrelu.solvers import ReluFastSolver

    prog = make_program(loss_name, bias, exact)
    ref = program_reference(prog)
    tol = 1e-6
    sol = ReluFastSolver(tol=tol).solve(prog)
    n = prog.n_samples
    assert sol.status == "optimal"
    assert abs(sol.objective * n - ref) <= 1e-6 * abs(ref)
    assert sol.info["rel_gap"] <= tol
    assert sol.objective * n - ref <= sol.gap * n + 1e-9 * abs(ref)
    assert prog.max_violation(sol.V, sol.W) <= 1e-9


def test_solver_classes():
    from convexrelu.solvers import ColumnGenerationSolver, ReluFastSolver
    from convexrelu.solvers._fista import FistaSolver

    prog = make_program("squared", "none", False)
    ref = program_reference(prog) / prog.n_samples
    for solver in (ReluFastSolver(tol=1e-6), ColumnGenerationSolver(tol=1e-6)):
        sol = solver.solve(prog)
        assert sol.status == "optimal" and sol.formulation == "relu"
        assert abs(sol.objective - ref) <= 1e-6 * abs(ref)
        assert abs(prog.objective(sol.V, sol.W, sol.output_bias) - sol.objective) <= 1e-12
        assert sol.gap <= 1e-6 * abs(sol.objective)
        assert sol.info["patterns_exact"] is False
    gprog = make_program("logistic", "penalized", True, formulation="gated_relu")
    gref = program_reference(gprog, relu=False) / gprog.n_samples
    sol = FistaSolver(tol=1e-7).solve(gprog)
    assert abs(sol.objective - gref) <= 1e-6 * abs(gref)
    assert np.all(sol.W == 0)
    with pytest.raises(ValueError, match="cannot solve formulation"):
        FistaSolver().solve(prog)
    hp = make_program("logistic", "none", False, formulation="gated_relu")
    hp = type(hp)(hp.X, hp.y, hp.patterns, loss="hinge", alpha=0.3, bias=False,
                  formulation="gated_relu")
    with pytest.raises(ValueError, match="not smooth"):
        FistaSolver().solve(hp)


def test_relaxation_gap_visible():
    """The gated optimum is a lower bound on the ReLU optimum (docs/mathematics.rst §3.4)."""
    from convexrelu.solvers import ReluFastSolver

    prog = make_program("squared", "penalized", True)
    g = solve_gated_fista(prog.loss, prog.X_aug, prog.masks, prog.y, 0.3, output_bias=True,
                          tol=TOL)
    r = ReluFastSolver(tol=1e-6).solve(prog)
    assert g.objective <= r.objective * prog.n_samples * (1 + 1e-6)


def test_convergence_warning_with_remedy():
    loss, Xa, pats, y = make_problem("squared", True, True)
    with pytest.warns(ConvergenceWarning, match="Increase max_iter"):
        res = solve_gated_fista(loss, Xa, pats.masks, y, 0.3, output_bias=True,
                                tol=1e-12, max_iter=5)
    assert not res.converged and res.n_iter >= 1


def test_float32_within_1e4():
    """Gated FISTA in float32 agrees with float64 to 1e-4 (the ReLU AL solver in float32
    was measured at 1.3e-4 and is not held to this bound; the polish solver is float64)."""
    loss, Xa, pats, y = make_problem("squared", False, False)
    r64 = solve_gated_fista(loss, Xa, pats.masks, y, 0.3, tol=5e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r32 = solve_gated_fista(loss, Xa, pats.masks, y, 0.3, tol=1e-5, dtype=np.float32)
    assert abs(r32.objective - r64.objective) <= 1e-4 * abs(r64.objective)


def test_gap_of_reference_point_is_small_and_nonnegative():
    loss, Xa, pats, y = make_problem("logistic", True, False)
    res = solve_gated_fista(loss, Xa, pats.masks, y, 0.3, output_bias=True, tol=1e-8)
    dg = gated_duality_gap(loss, Xa, pats.masks.astype(float), y, res.B, res.output_bias, 0.3,
                           output_bias=True)
    assert -1e-9 <= dg.gap <= 1e-6
    assert abs(dg.lam.sum()) <= 1e-8  # free output bias: 1^T lambda = 0


def test_relu_gap_valid_at_arbitrary_point():
    """Any feasible point and any mu >= 0 give primal >= reference >= dual."""
    loss, Xa, pats, y = make_problem("squared", True, True)
    rng = np.random.default_rng(3)
    M = pats.masks.astype(float)
    P = M.shape[1]
    S = np.hstack([M, -M])
    signs = np.hstack([M, M]) > 0
    B0 = 0.1 * rng.standard_normal((2 * P, Xa.shape[1]))
    B, _ = repair_feasibility(Xa, signs, B0, np.hstack([pats.gates] * 2))
    ref = reference(loss, Xa, pats.masks, y, 0.3, relu=True, output_bias=True)
    for mu in (np.zeros_like(S), rng.random(S.shape)):
        dg = relu_multiplier_gap(loss, Xa, S, signs, y, B, 0.0, 0.3, mu, output_bias=True)
        assert dg.dual <= ref + 1e-8 <= dg.primal + 2e-8


def test_dual_helpers():
    loss = get_loss("logistic")
    y = np.array([1.0, -1.0, 1.0, 1.0])
    z = np.array([0.3, 0.1, -2.0, 1.0])
    delta = fit_output_shift(loss, z, y)
    assert abs(loss.gradient(z + delta, y).sum()) <= 1e-10
    lam, _ = dual_point(loss, z, y, output_bias=True)
    assert np.all((y * lam >= 0) & (y * lam <= 1))
    s, val = best_dual_scale(get_loss("squared"), np.array([1.0, -1.0]),
                             np.array([2.0, 0.0]), 0.5)
    assert s == 0.5 and np.isclose(val, 0.5 * 2 - 0.5 * 0.25 * 2)
    # one class only: no finite output bias, lambda = 0
    lam, _ = dual_point(loss, z, np.ones(4), output_bias=True)
    assert np.all(lam == 0)


def test_input_errors():
    loss, Xa, pats, y = make_problem("squared", False, True)
    with pytest.raises(ValueError, match="not smooth"):
        solve_gated_fista("hinge", Xa, pats.masks, np.sign(y), 0.3)
    with pytest.raises(ValueError, match="masks must have shape"):
        solve_gated_fista(loss, Xa, pats.masks[:-1], y, 0.3)
    with pytest.raises(ValueError, match="y must have shape"):
        solve_gated_fista(loss, Xa, pats.masks, y[:-1], 0.3)
    with pytest.raises(ValueError, match="alpha"):
        solve_gated_fista(loss, Xa, pats.masks, y, -1.0)
    with pytest.raises(ValueError, match="dtype"):
        solve_gated_fista(loss, Xa, pats.masks, y, 0.3, dtype=np.int64)
    with pytest.raises(ValueError, match="regularizer is for blocks of length"):
        solve_gated_fista(loss, Xa, pats.masks, y, 0.3,
                          regularizer=GroupL2Penalty(Xa.shape[1] + 1))


def test_lipschitz_bound_matches_dense_spectrum_and_is_cached():
    from convexrelu.solvers._fista import _LIPSCHITZ_CACHE, lipschitz_bound

    rng = np.random.default_rng(11)
    for n in (50, 600):  # exact eigvalsh, then Lanczos on the dense matrix
        X = rng.standard_normal((n, 4))
        S = (rng.random((n, 30)) > 0.5).astype(float)
        for ob in (False, True):
            K = (X @ X.T) * (S @ S.T) + (1.0 if ob else 0.0)
            top = float(np.linalg.eigvalsh(K)[-1])
            L = lipschitz_bound(X, S, output_bias=ob)
            assert top <= L <= top * (1 + 1e-8)
            assert lipschitz_bound(X.copy(), S.copy(), output_bias=ob) == L  # cache hit
            # Fortran-ordered masks (as the solvers pass them): hashed without a copy,
            # the same value, then a cache hit
            SF = np.asfortranarray(S)
            LF = lipschitz_bound(X, SF, output_bias=ob)
            assert LF == pytest.approx(L, rel=1e-10)
            assert lipschitz_bound(X, np.asfortranarray(S.copy()), output_bias=ob) == LF
    assert 0 < len(_LIPSCHITZ_CACHE) <= 8


def test_lipschitz_bound_on_the_operator(monkeypatch):
    """Beyond the dense size: Lanczos on the operator (a short basis), inflated by 1 %:
    at least the top eigenvalue, at most 1 % above it."""
    from convexrelu.solvers import _fista as F

    monkeypatch.setattr(F, "_LIPSCHITZ_DENSE_N", 100)
    rng = np.random.default_rng(12)
    for n, p in ((400, 30), (700, 8)):
        X = np.hstack([rng.standard_normal((n, 4)), np.ones((n, 1))])
        S = (X @ rng.standard_normal((5, p)) > 0).astype(float)
        for ob in (False, True):
            K = (X @ X.T) * (S @ S.T) + (1.0 if ob else 0.0)
            top = float(np.linalg.eigvalsh(K)[-1])
            L = F.lipschitz_bound(X, S, output_bias=ob)
            assert top <= L <= 1.01 * top * (1 + 1e-9)


@pytest.mark.parametrize("n,m", [(60, 3), (12, 5)])  # K <= n (K x K) and K > n (Schur)
def test_newton_direction_cache_gives_the_same_steps(n, m):
    """The polish reuses A^T A (constant curvature) and Xk Xk^T across Newton steps; the
    cached steps equal the uncached ones, also after blocks are dropped."""
    from convexrelu._newton import norm_derivatives
    from convexrelu.regularizers import GroupL2Penalty
    from convexrelu.solvers._fista import _newton_direction, _polish_columns, _shrink_gram

    rng = np.random.default_rng(3)
    k, P = 3, 6
    Xa = rng.standard_normal((n, k))
    S = (rng.random((n, P)) > 0.5).astype(float)
    act = np.arange(m)
    A = _polish_columns(Xa, S, act, GroupL2Penalty(k), False)
    U = rng.standard_normal((m, k))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    r = rng.random(m) + 0.5
    sh = np.full(n, 0.5)
    _, _, Hn = norm_derivatives(r[:, None] * U, 0.3)
    grad = rng.standard_normal(m * k)
    cache: dict = {}
    for _ in range(2):  # the second call uses the cached products
        got = _newton_direction(A, sh, grad, U, r, Hn, 0.3, m, k, Xk=Xa, Sa=S[:, act],
                                cache=cache)
        ref = _newton_direction(A, sh, grad, U, r, Hn, 0.3, m, k, Xk=Xa, Sa=S[:, act])
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    xx = [key for key in cache if isinstance(key, tuple) and key[0] == "XX"]
    assert ("gram" in cache) == (m * k <= n) and bool(xx) == (m * k > n)
    if m * k <= n:  # drop the first block: the cached gram is restricted, not recomputed
        keep = np.repeat(np.arange(m) > 0, k)
        A2 = A[:, keep]
        _shrink_gram(cache, A, A2, keep)
        assert cache["gram"][0] is A2
        args = (A2, sh, grad[keep], U[1:], r[1:], Hn[1:], 0.3, m - 1, k)
        np.testing.assert_allclose(
            _newton_direction(*args, Xk=Xa, Sa=S[:, act[1:]], cache=cache),
            _newton_direction(*args, Xk=Xa, Sa=S[:, act[1:]]), rtol=1e-10, atol=1e-12)
    # a varying curvature (logistic) is never cached
    sh2 = rng.random(n) + 0.1
    c2: dict = {}
    np.testing.assert_allclose(
        _newton_direction(A, sh2, grad, U, r, Hn, 0.3, m, k, Xk=Xa, Sa=S[:, act], cache=c2),
        _newton_direction(A, sh2, grad, U, r, Hn, 0.3, m, k, Xk=Xa, Sa=S[:, act]),
        rtol=1e-10, atol=1e-12)
    assert "gram" not in c2


@pytest.mark.parametrize("loss_name", ["squared", "logistic"])
def test_single_output_rough_stage_runs_in_float32(monkeypatch, loss_name):
    """FISTA's stage before the float64 polish runs in float32 and stays there (no
    product promoted to float64 by a float64 scalar: the momentum, the output bias);
    its objective is recomputed in float64, the result is the all-float64 solve's, and
    a float32 stage that is the last one reports the returned point's float64 value."""
    from convexrelu.solvers import _fista as F

    rng = np.random.default_rng(31)
    n = 1200  # above the dual barrier's sample limit: FISTA + polish
    X = rng.standard_normal((n, 3))
    y = X[:, 0] - np.abs(X[:, 1]) + 0.1 * rng.standard_normal(n)
    if loss_name == "logistic":  # (labels -1 / +1)
        y = np.where(y > np.median(y), 1.0, -1.0)
    pats = sample_patterns(X, 20, random_state=0, bias=True)
    Xa = pats.augment(X)
    seen, dtypes = [], set()
    core = F.fista_core

    def spy(**kw):
        adjoint = kw["adjoint"]

        def adj(g):
            dtypes.add((np.dtype(kw["xp"].dtype), g.dtype))
            return adjoint(g)
        kw["adjoint"] = adj
        seen.append((np.dtype(kw["xp"].dtype), kw["tol"]))
        return core(**kw)

    monkeypatch.setattr(F, "fista_core", spy)
    beta = 0.05 * n
    r = solve_gated_fista(loss_name, Xa, pats.masks, y, beta, output_bias=True, tol=1e-8,
                          method="fista")
    assert seen[0] == (np.float32, 2e-2) and r.converged
    assert (np.dtype(np.float32), np.dtype(np.float64)) not in dtypes
    assert (np.dtype(np.float32), np.dtype(np.float32)) in dtypes
    loss = get_loss(loss_name)

    def value(B, c):
        z = np.einsum("nd,pd,np->n", Xa, B, pats.masks) + c
        return loss.value(z, y) + beta * np.linalg.norm(B, axis=1).sum()

    assert r.B.dtype == np.float64
    assert abs(value(r.B, r.output_bias) - r.objective) <= 1e-10 * abs(r.objective)
    last = solve_gated_fista(loss_name, Xa, pats.masks, y, beta, output_bias=True,
                             tol=5e-3, polish_tol=5e-3, method="fista")
    assert seen[-1] == (np.float32, 5e-3) and last.converged
    assert abs(value(last.B, last.output_bias) - last.objective) <= 1e-12 * abs(last.objective)
    assert r.objective - 1e-12 * abs(r.objective) <= last.objective <= \
        r.objective + 5e-3 * abs(r.objective)
    # stopped by max_iter inside the float32 stage: a float64 point and its own value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        short = solve_gated_fista(loss_name, Xa, pats.masks, y, beta, output_bias=True,
                                  tol=1e-8, max_iter=15, method="fista")
    assert seen[-1][0] == np.float32 and not short.converged
    assert short.B.dtype == np.float64 and short.gap >= 0.0
    assert abs(value(short.B, short.output_bias) - short.objective) <= \
        1e-12 * abs(short.objective)
    monkeypatch.setattr(F, "_ROUGH_STAGE_TOL", np.inf)  # every stage in float64
    seen.clear()
    r64 = solve_gated_fista(loss_name, Xa, pats.masks, y, beta, output_bias=True, tol=1e-8,
                            method="fista")
    assert seen and all(dt == np.float64 for dt, _ in seen)
    assert abs(r.objective - r64.objective) <= 1e-7 * abs(r64.objective)


@pytest.mark.parametrize("chunk", [None, 5, 8])
def test_polish_ratio_test_of_all_blocks_is_the_block_by_block_one(chunk, monkeypatch):
    """``ratio_test`` (one pass by chunks of rows: 5 or 8 of 37 rows, or one chunk) finds
    the step and the (block, row) that a loop over the blocks, one product each, finds:
    the smallest step below ``tmax``, the first block and row of a tie; free rows only."""
    from convexrelu import _polish as polish
    from convexrelu._newton import boundary_steps

    if chunk is not None:
        monkeypatch.setattr(polish, "_RATIO_CHUNK", chunk)
    rng = np.random.default_rng(8)
    n, d, J = 37, 4, 6
    Xa = rng.standard_normal((n, d))
    masks = rng.random((n, J)) < 0.5
    free = rng.random((n, J)) < 0.8
    X0, X1 = rng.standard_normal((d, J)), rng.standard_normal((d, J))
    X0[:, 3], X1[:, 3] = X0[:, 1], X1[:, 1]  # a tie: block 1 comes first
    masks[:, 3], free[:, 3] = masks[:, 1], free[:, 1]

    def loop(tmax):
        hit = None
        for j in range(J):
            a = np.where(masks[:, j], 1.0, -1.0)
            t = boundary_steps(a * (Xa @ X0[:, j]), a * (Xa @ X1[:, j]), free[:, j])
            m = int(np.argmin(t))
            if t[m] < tmax:
                tmax, hit = float(t[m]), (j, m)
        return tmax, hit

    for tmax in (1.0, 1e9, 1e-12):
        want = loop(tmax)
        got = polish.ratio_test(Xa, X0, X1, masks, free, tmax)
        assert got[1] == want[1]
        assert got[0] == pytest.approx(want[0], rel=1e-12)
    assert polish.ratio_test(Xa, X0, X1, masks, free, 1e9)[1] is not None
    # rows of nonnegative slack under x0 only (as the polish's): nothing below a tiny tmax
    free &= np.where(masks, 1.0, -1.0) * (Xa @ X0) > 1e-6
    assert polish.ratio_test(Xa, X0, X1, masks, free, 1e-12) == (1e-12, None)
    assert loop(1e-12) == (1e-12, None)


def test_repair_feasibility_in_sample_blocks(monkeypatch):
    """The repair works through the samples in blocks (no (n, blocks) arrays: five of
    168 MB at n = 750,000): the same repaired blocks and violation as over all samples
    at once, every block inside its cone afterwards."""
    import convexrelu._polish as polish

    _, Xa, pats, _ = make_problem("squared", True, True)
    rng = np.random.default_rng(4)
    M = pats.masks
    signs = np.hstack([M, M]) > 0
    gates = np.hstack([pats.gates] * 2)
    B0 = rng.standard_normal((2 * M.shape[1], Xa.shape[1]))
    # over all samples at once
    A = np.where(signs, 1.0, -1.0)
    viol = np.maximum(-A * (Xa @ B0.T), 0.0)
    Gq = A * (Xa @ gates)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(viol > 0, viol / np.where(Gq > 0, Gq, np.nan), 0.0)
    ref = B0 + (np.nan_to_num(need, nan=0.0).max(axis=0) * (1 + 1e-9))[:, None] * gates.T
    scale = np.max(np.linalg.norm(B0, axis=1)) * np.linalg.norm(Xa, 2)
    assert viol.max() > 0
    monkeypatch.setattr(polish, "_REPAIR_ENTRIES", 7 * B0.shape[0])  # 7 samples a block
    B, worst = repair_feasibility(Xa, signs, B0, gates)
    np.testing.assert_array_equal(B, ref)  # the same products, sample by sample
    assert worst == pytest.approx(viol.max() / scale, rel=1e-12)
    assert np.min(A * (Xa @ B.T)) >= -1e-12
    B1, worst1 = repair_feasibility(Xa, signs, B0, None)  # no gates: measured, unchanged
    np.testing.assert_array_equal(B1, B0)
    assert worst1 == worst

    # no samples or no blocks: nothing violated, nothing moved (no division by a zero scale)
    for Xe, Se, Be in ((Xa[:0], signs[:0], 0 * B0), (0 * Xa[:, :0], signs[:, :0], B0[:0, :0])):
        Bn, wn = repair_feasibility(Xe, Se, Be, None if Be.size == 0 else gates)
        assert wn == 0.0 and np.array_equal(Bn, Be)

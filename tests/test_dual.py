"""Tests of the exact dual-constraint evaluation M(lambda) (docs/mathematics.rst §4.2, §8.2, §8.5,
§9.22)."""

import itertools
import warnings

import numpy as np
import pytest

from convexrelu.arrangements import ActivationPatterns, enumerate_patterns
from convexrelu.certificates import dual_constraint
from convexrelu.certificates._dual import _prepare, pattern_value, pattern_value_socp

cp = pytest.importorskip("cvxpy")

CLARABEL = dict(solver="CLARABEL", tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)


def exact_patterns(X, bias):
    """All cells by brute force over sign vectors: one max-margin LP each (test oracle)."""
    from scipy.optimize import linprog

    Xa = np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X
    n, d = Xa.shape
    Xn = Xa / np.linalg.norm(Xa, axis=1, keepdims=True)
    masks, gates = [], []
    for s in itertools.product([1.0, -1.0], repeat=n):
        s = np.array(s)
        A = np.hstack([-(s[:, None] * Xn), np.ones((n, 1))])
        res = linprog(np.r_[np.zeros(d), -1.0], A_ub=A, b_ub=np.zeros(n),
                      bounds=[(-1, 1)] * d + [(None, 1)], method="highs")
        if res.status == 0 and -res.fun > 1e-9:
            masks.append(s > 0)
            gates.append(res.x[:d])
    return ActivationPatterns.from_masks(X, np.array(masks).T, np.array(gates).T, bias=bias,
                                         exact=True)


_SOCP_CACHE = {}


def socp_value(Xa, mask, c, free_bias):
    """Direct SOCP max c^T x, x in K, ||x||_pen <= 1 (independent oracle, built once per data)."""
    key = (Xa.tobytes(), Xa.shape, free_bias)
    if key not in _SOCP_CACHE:
        A = cp.Parameter(Xa.shape[0])
        cc = cp.Parameter(Xa.shape[1])
        x = cp.Variable(Xa.shape[1])
        nrm = cp.norm(x[:-1]) if free_bias else cp.norm(x)
        cons = [cp.multiply(A, Xa @ x) >= 0, nrm <= 1]
        if free_bias:
            cons.append(cp.abs(x[-1]) <= 100.0)
        _SOCP_CACHE[key] = (cp.Problem(cp.Maximize(cc @ x), cons), A, cc)
    prob, A, cc = _SOCP_CACHE[key]
    A.value = np.where(mask, 1.0, -1.0)
    cc.value = np.asarray(c, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(**CLARABEL)
    return prob.value


@pytest.fixture(scope="module")
def data_bias():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((7, 2))
    return X, exact_patterns(X, bias=True)


@pytest.fixture(scope="module")
def data_nobias():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 3))
    return X, exact_patterns(X, bias=False)


def _centred_problem(X, pats, free_bias, seed):
    """``(Xt, R, masks, lambda)``: the translated data of a pattern set and a centred
    Gaussian dual point."""
    lam = np.random.default_rng(seed).standard_normal(X.shape[0])
    lam -= lam.mean()
    Xt, _, R = _prepare(pats.augment(X), free_bias)
    return Xt, R, pats.masks, lam


@pytest.mark.parametrize("free_bias", [False, True])
def test_pattern_value_matches_direct_socp(data_bias, free_bias):
    """Per-pattern value (NNLS/bvls, verified) == direct SOCP; docs/mathematics.rst §8.2 free-bias
    formula."""
    X, pats = data_bias
    Xa = pats.augment(X)
    Xt, R, M, lam = _centred_problem(X, pats, free_bias, seed=0)
    for i in range(0, pats.n_patterns, 3):
        for sgn in (1, -1):
            c = sgn * Xt.T @ (M[:, i] * lam)
            U, L, x, _ = pattern_value(Xt, M[:, i], c, free_bias=free_bias, R=R)
            ref = socp_value(Xa, M[:, i], sgn * Xa.T @ (M[:, i] * lam), free_bias)
            assert U >= L - 1e-12
            assert abs(U - ref) <= 1e-6 * (1 + abs(ref))
            if x is not None:  # the returned point is feasible and attains L
                assert np.all(np.where(M[:, i], 1, -1) * (Xt @ x) >= -1e-9)


def test_pattern_value_socp_fallback_agrees(data_bias):
    X, pats = data_bias
    lam = np.random.default_rng(1).standard_normal(X.shape[0])
    Xa = pats.augment(X)
    M = pats.masks
    for i in range(0, pats.n_patterns, 7):
        c = Xa.T @ (M[:, i] * lam)
        U, *_ = pattern_value(Xa, M[:, i], c)
        U2, L2, _ = pattern_value_socp(Xa, M[:, i], c)
        assert abs(U - U2) <= 1e-7 * (1 + U)
        assert L2 <= U + 1e-9


def test_pattern_value_socp_failure_gives_a_valid_bound(data_bias, monkeypatch):
    """Where Clarabel fails twice (it did on a projection of a digits certificate), the
    SOCP fallback raises nothing: its bound is that of mu = 0 (the value without the
    cone, valid and loose), and pattern_value keeps the smaller of that and its own
    rounds' bound, never below the exact value."""
    import cvxpy as cp

    from convexrelu.certificates._dual import _pattern_value

    X, pats = data_bias
    lam = np.random.default_rng(2).standard_normal(X.shape[0])
    Xa = pats.augment(X)
    M = pats.masks
    exact = []
    for i in range(0, pats.n_patterns, 7):
        c = Xa.T @ (M[:, i] * lam)
        exact.append((i, c, pattern_value(Xa, M[:, i], c)[0]))

    Xt, _, R = _prepare(Xa, True)  # a free bias: the rounds, then the SOCP
    free = []
    for i, c, _ in exact:
        cf = Xt.T @ (M[:, i] * (lam - lam.mean()))
        free.append((i, cf, pattern_value(Xt, M[:, i], cf, free_bias=True, R=R)[0]))
    calls = []

    def fail(self, *args, **kwargs):
        calls.append(1)
        raise cp.error.SolverError("Solver 'CLARABEL' failed.")

    monkeypatch.setattr(cp.Problem, "solve", fail)
    for i, c, U in exact:
        U2, L2, x2 = pattern_value_socp(Xa, M[:, i], c)
        assert x2 is None and L2 == 0.0
        assert U2 == pytest.approx(np.linalg.norm(c), rel=1e-12)  # mu = 0
        assert U2 >= U - 1e-12 * (1 + U)
    calls.clear()
    from convexrelu.certificates import _dual

    monkeypatch.setattr(_dual, "_VERIFY_RTOL", -1.0)  # no early verification: the SOCP
    for i, c, U in free:
        for rounds in (0, 1):  # straight to the failing SOCP, or after one round
            U3 = _pattern_value(Xt, M[:, i], c, free_bias=True, R=R, max_rounds=rounds,
                                init=None)[0]
            assert U3 >= U - 1e-9 * (1 + U)  # valid: never below the exact value
            assert np.isfinite(U3) or np.all(M[:, i])
    assert calls  # the failing solver was reached


@pytest.mark.parametrize("fixture,penalize",
                         [("data_bias", True), ("data_bias", False), ("data_nobias", True)])
def test_M_chain_sampled_exact_bound(request, fixture, penalize):
    """docs/mathematics.rst §9.22: sampled <= exact(projection) = exact(SOCP) <= max ||c_i||."""
    X, pats = request.getfixturevalue(fixture)
    rng = np.random.default_rng(2)
    lam = rng.standard_normal(X.shape[0])
    lam -= lam.mean()
    free = pats.bias and not penalize
    res = dual_constraint(pats, X, lam, penalize_bias=penalize)
    Xa = pats.augment(X)
    M = pats.masks
    socp = max(socp_value(Xa, M[:, i], s * Xa.T @ (M[:, i] * lam), free)
               for i in range(pats.n_patterns) for s in (1, -1))
    assert abs(res.value - socp) <= 1e-6 * (1 + socp)
    assert res.exact and not res.conservative
    assert res.gate_lower <= res.value + 1e-12
    # attained by the returned direction: sign * lam^T (X_aug x)_+ = M, ||x||_pen = 1
    x = res.direction
    att = res.sign * lam @ np.maximum(Xa @ x, 0.0)
    assert abs(att - res.value) <= 1e-7 * (1 + res.value)
    assert abs(np.linalg.norm(x[:-1] if free else x) - 1) < 1e-9
    if not free:
        cheap = max(np.linalg.norm(Xa.T @ (M[:, i] * lam)) for i in range(pats.n_patterns))
        assert res.value <= cheap + 1e-12
    from convexrelu.arrangements import sample_patterns

    sp = sample_patterns(X, 5, random_state=0, bias=pats.bias)
    rs = dual_constraint(sp, X, lam, penalize_bias=penalize)
    assert rs.value <= res.value + 1e-9 and not rs.exact


def test_whitened_closed_form():
    """docs/mathematics.rst §9.17: X X^T = I (n <= d) gives M(lambda) = max(||lambda_+||,
    ||lambda_-||)."""
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 3)))
    X = Q.T  # (3, 5), orthonormal rows
    pats = exact_patterns(X, bias=False)
    assert pats.n_patterns == 8
    for _ in range(3):
        lam = rng.standard_normal(3)
        res = dual_constraint(pats, X, lam)
        ref = max(np.linalg.norm(np.maximum(lam, 0)), np.linalg.norm(np.minimum(lam, 0)))
        assert abs(res.value - ref) <= 1e-9


def test_block_streaming_is_invariant(data_bias):
    X, pats = data_bias
    lam = np.random.default_rng(6).standard_normal(X.shape[0])
    lam -= lam.mean()
    a = dual_constraint(pats, X, lam, penalize_bias=False, block_size=3)
    b = dual_constraint(pats, X, lam, penalize_bias=False, block_size=10_000)
    assert abs(a.value - b.value) <= 1e-12 * (1 + a.value)
    assert a.n_refined <= 2 * pats.n_patterns


def test_vector_dual_is_conservative_upper_bound():
    """Several outputs: max_i sigma_max(Lambda^T D_i X) >= the true value (grid, d = 2)."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((6, 2))
    pats = exact_patterns(X, bias=False)
    Lam = rng.standard_normal((6, 3))
    res = dual_constraint(pats, X, Lam)
    th = np.linspace(0, 2 * np.pi, 20001)
    U = np.vstack([np.cos(th), np.sin(th)])
    grid = np.max(np.linalg.norm(Lam.T @ np.maximum(X @ U, 0), axis=0))
    assert res.conservative
    assert res.value >= grid - 1e-9
    assert res.lower <= grid + 1e-9


def test_free_bias_uncentred_lambda_is_infinite(data_bias):
    X, pats = data_bias
    lam = np.ones(X.shape[0])
    with pytest.warns(RuntimeWarning, match="not centred"):
        res = dual_constraint(pats, X, lam, penalize_bias=False)
    assert res.value == np.inf


def test_other_data_rejected(data_bias):
    X, pats = data_bias
    with pytest.raises(ValueError, match="computed on"):
        dual_constraint(pats, X + 1.0, np.zeros(X.shape[0]))


def _sweep_data(kind, rng):
    if kind == "gaussian":
        return rng.standard_normal((7, 2))
    if kind == "grid":  # shared coordinates: points on verticals through each other
        return np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 2)], dtype=float)
    # discretised: repeated first coordinates, points on the axes, a zero row
    return np.array([[0.0, 1.0], [0.0, -2.0], [1.0, 0.0], [1.0, 3.0], [-1.0, 0.0],
                     [0.0, 0.0], [2.0, -1.0], [-1.0, 2.0]])


@pytest.mark.parametrize("kind", ["gaussian", "grid", "discretised"])
@pytest.mark.parametrize("bias", [True, False])
def test_sweep_2d_equals_listed_patterns(bias, kind):
    """The exact 2-D angular sweep equals bound-then-refine over all listed patterns,
    also when points share a coordinate with a sweep centre (an event at angle 0)."""
    from convexrelu.certificates._dual import dual_constraint_2d

    rng = np.random.default_rng(9)
    X = _sweep_data(kind, rng)
    n = X.shape[0]
    # the LP oracle cannot take a zero row; enumerate_patterns is itself checked against
    # brute force on degenerate data in test_arrangements.py
    pats = exact_patterns(X, bias=bias) if kind == "gaussian" else \
        enumerate_patterns(X, bias=bias)
    for _ in range(3):
        lam = rng.standard_normal(n)
        lam -= lam.mean()
        a = dual_constraint(pats, X, lam, penalize_bias=False)
        b = dual_constraint_2d(X, lam, bias=bias)
        assert abs(a.value - b.value) <= 1e-10 * (1 + a.value)
        att = b.sign * lam @ np.maximum(pats.augment(X) @ b.direction, 0.0)
        assert abs(att - b.value) <= 1e-10 * (1 + b.value)


# ------------------------------------------------------------------ pricing warm starts
@pytest.mark.parametrize("fixture,penalize",
                         [("data_bias", True), ("data_bias", False), ("data_nobias", True)])
def test_warm_bounds_are_sound_and_tight_nearby(request, fixture, penalize):
    """A correction G^T mu kept at one dual point bounds M_i at any other (weak duality,
    docs/mathematics.rst §4.2), and is tight again at the point it came from."""
    from convexrelu.certificates._dual import warm_bounds

    X, pats = request.getfixturevalue(fixture)
    free = pats.bias and not penalize
    Xa = pats.augment(X)
    Xt, _, R = _prepare(Xa, free)
    rng = np.random.default_rng(7)
    lam = rng.standard_normal(X.shape[0])
    lam -= lam.mean()
    M = pats.masks
    C = Xt.T @ (M * lam[:, None])  # (d_aug, P)
    for sgn in (1, -1):
        A = np.full((pats.n_patterns, Xt.shape[1]), np.nan)
        exact = np.zeros(pats.n_patterns)
        for i in range(pats.n_patterns):
            U, _, _, fb, a = pattern_value(Xt, M[:, i], sgn * C[:, i], free_bias=free, R=R,
                                           correction=True)
            exact[i] = U
            if a is not None:
                A[i] = a
        same = warm_bounds(sgn * C, A, M, free, R)
        ok = np.isfinite(same)
        assert np.all(np.abs(same[ok] - exact[ok]) <= 1e-7 * (1 + exact[ok]))
        for scale in (0.01, 0.3):  # another dual point: never below the exact values
            lam2 = lam + scale * rng.standard_normal(lam.size)
            lam2 -= lam2.mean()
            C2 = sgn * Xt.T @ (M * lam2[:, None])
            b2 = warm_bounds(C2, A, M, free, R)
            for i in range(pats.n_patterns):
                ref = pattern_value(Xt, M[:, i], C2[:, i], free_bias=free, R=R)[0]
                assert b2[i] >= ref - 1e-9 * (1 + ref)


@pytest.mark.parametrize("penalize", [True, False])
def test_dual_constraint_with_multipliers_and_threshold(data_bias, penalize):
    """Kept multipliers change how many patterns are refined, never the value; a threshold
    keeps the value a certified bound: at most the threshold when nothing exceeds it, at
    least the exact maximum always, and a violating pattern when one exists."""
    from convexrelu.certificates._dual import PricingMultipliers

    X, pats = data_bias
    rng = np.random.default_rng(11)
    mult = PricingMultipliers()
    lam = rng.standard_normal(X.shape[0])
    refined = []
    for step in range(4):
        lam = lam + 0.02 * rng.standard_normal(lam.size)
        lam -= lam.mean()
        cold = dual_constraint(pats, X, lam, penalize_bias=penalize)
        warm = dual_constraint(pats, X, lam, penalize_bias=penalize, multipliers=mult)
        assert abs(warm.value - cold.value) <= 1e-9 * (1 + cold.value)
        refined.append((cold.n_refined, warm.n_refined))
    assert mult.rows and mult.faces
    assert sum(w for _, w in refined[1:]) < sum(c for c, _ in refined[1:])
    Xa = pats.augment(X)
    free = pats.bias and not penalize
    for t in (0.5 * cold.value, 0.999 * cold.value, 1.5 * cold.value):
        res = dual_constraint(pats, X, lam, penalize_bias=penalize, threshold=t,
                              multipliers=PricingMultipliers())
        assert res.value >= cold.value * (1 - 1e-9)
        if cold.value <= t:
            assert res.value <= t
        else:
            i = res.pattern_index
            Xt, _, R = _prepare(Xa, free)
            c = res.sign * Xt.T @ (pats.masks[:, i] * lam)
            assert pattern_value(Xt, pats.masks[:, i], c, free_bias=free, R=R)[0] > t


def test_socp_fallback_keeps_cvxpy_accuracy_warnings_to_itself(data_bias):
    """The SOCP fallback's bound comes from explicit multipliers: cvxpy's "Solution may be
    inaccurate" is not shown to the user (it leaked from a classifier fit)."""
    X, pats = data_bias
    lam = np.random.default_rng(1).standard_normal(X.shape[0])
    Xa = pats.augment(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(0, pats.n_patterns, 7):
            pattern_value_socp(Xa, pats.masks[:, i], Xa.T @ (pats.masks[:, i] * lam))
    assert not [w for w in caught if "Solution may be inaccurate" in str(w.message)]


def test_free_bias_value_of_a_cell_with_one_inactive_sample():
    """A free-bias cell with every sample active but one: ``c``'s bias part is ``-lambda_j``,
    at rounding level beside ``||c||``, and the weighted projection keeps the wrong face.
    The exact active set with the equality gives the SOCP's value without the SOCP
    fallback (digits: 17 of 127 pattern values went to the SOCP, 0.3 s each)."""
    from convexrelu.certificates._dual import _project_cone_free, _upper

    rng = np.random.default_rng(3)
    n, d = 400, 12
    X = rng.standard_normal((n, d))
    Xa = np.hstack([X, np.ones((n, 1))])
    j = int(np.argmin(X[:, 0]))
    mask = np.ones(n, bool)
    mask[j] = False  # the cell of the gate (1, 0, ..., 0, -X[j, 0] - eps): realizable
    lam = rng.standard_normal(n)
    lam -= lam.mean()
    lam[j] = -1e-7 * np.abs(lam).max()  # the bias part of c: -lambda_j > 0, tiny
    lam[np.flatnonzero(mask)] -= (lam.sum()) / mask.sum()
    Xt, shift, R = _prepare(Xa, True)
    c = Xt.T @ (mask * lam)
    U, L, x, fallback = pattern_value(Xt, mask, c, free_bias=True, R=R)
    U2, L2, _ = pattern_value_socp(Xt, mask, c, free_bias=True, R=R)
    assert not fallback
    assert L2 - 1e-9 * np.linalg.norm(c) <= U <= U2 + 1e-9 * np.linalg.norm(c)
    assert U - L <= 1e-9 * np.linalg.norm(c)
    # the exact active set alone: mu >= 0, the equality holds, the bound is the value
    G = np.where(mask, 1.0, -1.0)[:, None] * Xt
    mu, rows, nu = _project_cone_free(G, c)
    assert np.all(mu >= 0)
    r = c + G[rows].T @ mu
    assert abs(r[-1]) <= 1e-12 * np.linalg.norm(c)
    assert _upper(r, True, R, False) == pytest.approx(U2, rel=1e-8)


def test_free_bias_active_set_never_undercuts_the_socp():
    """Soundness of the exact free-bias active set on random cells, integer-grid data and
    both signs: its bound (from explicit mu >= 0) is never below the SOCP's primal value,
    and no larger than the SOCP's bound."""
    from convexrelu.certificates._dual import _project_cone_free, _upper

    rng = np.random.default_rng(1)
    n_checked = 0
    for trial in range(60):
        n, d = int(rng.integers(5, 40)), int(rng.integers(1, 5))
        X = rng.standard_normal((n, d))
        if trial % 3 == 0:
            X = np.round(X)
        Xa = np.hstack([X, np.ones((n, 1))])
        mask = Xa @ rng.standard_normal(d + 1) >= 0
        lam = rng.standard_normal(n)
        lam -= lam.mean()
        c = (1 if trial % 2 else -1) * Xa.T @ (mask * lam)
        G = np.where(mask, 1.0, -1.0)[:, None] * Xa
        R = float(np.max(np.linalg.norm(X - X.mean(0), axis=1)))
        out = _project_cone_free(G, c)
        if out is None:
            continue
        mu, rows, nu = out
        assert np.all(mu >= 0)
        U = _upper(c + G[rows].T @ mu, True, R, bool(mask.all()))
        U2, L2, _ = pattern_value_socp(Xa, mask, c, free_bias=True, R=R)
        scale = 1.0 + np.linalg.norm(c)
        assert U >= L2 - 1e-7 * scale
        if np.isfinite(U2):
            assert U <= U2 + 1e-6 * scale
        n_checked += 1
    assert n_checked >= 40


@pytest.mark.parametrize("free_bias", [False, True])
def test_pricing_stops_once_the_bound_is_below_the_threshold(data_bias, free_bias):
    """pattern_value(..., stop_below=t): a pattern whose value is below t gets a certified
    bound in [value, t] (it cannot violate; digits: one pricing pass over 500 patterns
    25.2 s -> 0.83 s), and a pattern above t gets its exact value."""
    X, pats = data_bias
    Xt, R, M, lam = _centred_problem(X, pats, free_bias, seed=2)
    n_early = n_exact = 0
    for i in range(0, pats.n_patterns, 2):
        c = Xt.T @ (M[:, i] * lam)
        U, L, _, _ = pattern_value(Xt, M[:, i], c, free_bias=free_bias, R=R)
        if not np.isfinite(U) or U <= 0:
            continue
        for t in (0.5 * U, 1.5 * U):
            U2, L2, x2, _ = pattern_value(Xt, M[:, i], c, free_bias=free_bias, R=R,
                                          stop_below=t)
            assert U2 >= L - 1e-9 * (1 + U)  # still an upper bound on the value
            if t > U:
                assert U2 <= t
                n_early += x2 is None
            else:
                assert U2 == pytest.approx(U, rel=1e-9, abs=1e-12)
                n_exact += 1
    assert n_exact > 0 and n_early > 0


def test_free_bias_projection_on_badly_scaled_features():
    """Features of scale 1e8: after the row scaling the bias column is ~1e-8 and a KKT
    solve of the exact free-bias active set can lose its equality; the warm start then
    falls back to the cold one instead of looping (it hung). The value is the exact
    maximum, checked against a brute force over the directions of the plane (d = 2: for
    each unit direction ``u`` the feasible biases are an interval, the objective linear
    in the bias). (A least-squares KKT solve, which cut its smallest singular value,
    stopped at a loose bound of 3.26e8 here.)"""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 2)) * 1e8
    lam = rng.standard_normal(8)
    lam -= lam.mean()
    pats = enumerate_patterns(X, bias=True)
    res = dual_constraint(pats, X, lam, penalize_bias=False)
    th = np.linspace(0.0, 2.0 * np.pi, 100001)
    U = np.stack([np.cos(th), np.sin(th)])
    t = -(X @ U)  # active rows: b >= t; inactive rows: b <= t
    brute = 0.0
    for m in np.asarray(pats.masks, bool).T:
        lo = np.where(m[:, None], t, -np.inf).max(axis=0)
        hi = np.where(~m[:, None], t, np.inf).min(axis=0)
        for s in (1.0, -1.0):
            c = s * np.append(X.T @ (m * lam), (m * lam).sum())
            b = hi if c[2] > 0 else lo
            ok = (lo <= hi) & np.isfinite(b)
            val = c[:2] @ U[:, ok] + c[2] * b[ok]
            brute = max(brute, float(val.max(initial=0.0)))
    assert res.value >= brute * (1 - 1e-9)  # a bound
    assert res.value == pytest.approx(brute, rel=1e-8)  # the maximum
    assert res.lower == pytest.approx(brute, rel=1e-8)


def test_candidate_rows_are_the_extreme_rows_of_random_projections():
    """The free-bias cheap bound's rows (n above k): for each of k / 2 fixed random
    directions the rows of largest and smallest projection, as the plain (n, k / 2)
    product's arg-reductions give them."""
    from convexrelu.certificates._dual import _candidate_rows

    rng = np.random.default_rng(3)
    Xt = np.hstack([rng.standard_normal((500, 4)), np.ones((500, 1))])
    rows = _candidate_rows(Xt[:, :-1], k=64)
    dirs = np.random.default_rng(0).standard_normal((4, 32))
    proj = Xt[:, :-1] @ dirs
    expected = np.unique(np.concatenate([proj.argmax(axis=0), proj.argmin(axis=0)]))
    np.testing.assert_array_equal(rows, expected)
    assert rows.size <= 64
    np.testing.assert_array_equal(_candidate_rows(Xt[:40, :-1], k=64), np.arange(40))


def test_cached_candidate_rows_follow_the_data():
    """The pricing's candidate rows are remembered for the last data array and recomputed
    for another one (or the same one changed), equal to the translated data's rows."""
    from convexrelu.certificates._dual import (_cached_candidate_rows, _candidate_rows,
                                               _prepare)

    rng = np.random.default_rng(4)
    X = rng.standard_normal((1500, 3))
    Xt, _, _ = _prepare(np.hstack([X, np.ones((1500, 1))]), True)
    rows = _cached_candidate_rows(X)
    np.testing.assert_array_equal(rows, _candidate_rows(Xt[:, :-1]))
    assert _cached_candidate_rows(X) is rows
    X2 = rng.standard_normal((1200, 3))
    assert _cached_candidate_rows(X2).max() < 1200
    X[:] = rng.standard_normal((1500, 3))
    np.testing.assert_array_equal(_cached_candidate_rows(X), _candidate_rows(X))


@pytest.mark.parametrize("penalize", [True, False])
def test_pattern_value_from_any_face_is_the_same(penalize):
    """The projection warm-started from any rows (the face at another dual point, random
    rows, every row) gives the value of the cold start; the face it reports starts the
    same projection at its own optimum."""
    from convexrelu.certificates._dual import _pattern_value

    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 3))
    pats = ActivationPatterns.from_gates(X, rng.standard_normal((4, 30)), bias=True)
    free = not penalize
    Xt, _, R = _prepare(pats.augment(X), free)
    n = X.shape[0]
    for i in range(pats.n_patterns):
        lam = rng.standard_normal(n)
        lam -= lam.mean()
        lam2 = lam + 0.05 * rng.standard_normal(n)
        lam2 -= lam2.mean()
        mask = pats.masks[:, i]
        face, face2 = [], []
        ref = _pattern_value(Xt, mask, Xt.T @ (mask * lam), free_bias=free, R=R,
                             max_rounds=60, init=None, face_out=face)
        c2 = Xt.T @ (mask * lam2)
        ref2 = _pattern_value(Xt, mask, c2, free_bias=free, R=R, max_rounds=60, init=None,
                              face_out=face2)
        for init in (face[0] if face else None, face2[0] if face2 else None,
                     rng.choice(n, 5, replace=False), np.arange(n)):
            U = pattern_value(Xt, mask, c2, free_bias=free, R=R, init=init)[0]
            assert U == pytest.approx(ref2[0], rel=1e-9, abs=1e-10 * np.linalg.norm(c2))
        assert ref[0] >= 0.0


@pytest.mark.parametrize("penalize", [True, False])
def test_pricing_refines_no_pattern_past_the_chunks_largest_value(data_bias, penalize,
                                                                  monkeypatch):
    """In pricing mode (a threshold) only a chunk's largest value counts: once a violation
    is found, each later refinement stops as soon as its bound is at most the largest value
    so far (not the threshold). The value stays a certified bound and the pattern named
    violates."""
    import convexrelu.certificates._dual as dual

    X, pats = data_bias
    rng = np.random.default_rng(5)
    lam = rng.standard_normal(X.shape[0])
    lam -= lam.mean()
    exact = dual_constraint(pats, X, lam, penalize_bias=penalize)
    calls = []
    real = dual._pattern_value

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append((kwargs["stop_below"], out[0], out[2] is not None))
        return out

    monkeypatch.setattr(dual, "_pattern_value", spy)
    t = 0.3 * exact.value
    res = dual_constraint(pats, X, lam, penalize_bias=penalize, threshold=t)
    seen = list(calls)
    assert res.value >= exact.value * (1 - 1e-9)
    i = res.pattern_index
    Xt, _, R = _prepare(pats.augment(X), pats.bias and not penalize)
    c = res.sign * Xt.T @ (pats.masks[:, i] * lam)
    assert pattern_value(Xt, pats.masks[:, i], c, free_bias=pats.bias and not penalize,
                         R=R)[0] > t
    best = -np.inf
    raised = 0
    for stop, U, _ in seen:  # one chunk: one pass, its running maximum
        assert stop == max(t, best)
        raised += stop > t
        best = max(best, U)
    assert raised > 0


def test_candidate_rows_in_sample_blocks_match_one_product(monkeypatch):
    # the free-bias bound's rows: the extreme samples along fixed random directions, found
    # block by block (no (k / 2) x n product: 0.9 GB at n = 225,000); the same rows as the
    # whole product's arg-reductions, ties (repeated samples) going to the first sample
    import convexrelu.certificates._dual as dual

    rng = np.random.default_rng(3)
    P = rng.standard_normal((500, 6))
    P[400:] = P[:100]  # repeats: ties across blocks
    monkeypatch.setattr(dual, "_CANDIDATE_BLOCK", 37)
    rows = dual._candidate_rows(P, k=64)
    dirs = np.random.default_rng(0).standard_normal((6, 32))
    proj = dirs.T @ P.T
    ref = np.unique(np.concatenate([proj.argmax(axis=1), proj.argmin(axis=1)]))
    np.testing.assert_array_equal(rows, ref)
    assert rows.max() < 400  # a repeat never replaces its first occurrence


def _screening_problem(free, n=500, d=4, seed=12):
    """Translated data, masks and a centred dual point with enough rows to screen."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    pats = ActivationPatterns.from_gates(X, rng.standard_normal((d + 1, 12)), bias=True)
    Xt, _, R = _prepare(pats.augment(X), free)
    lam = rng.standard_normal(n)
    lam -= lam.mean()
    return Xt, R, pats.masks, lam


@pytest.mark.parametrize("penalize", [True, False])
@pytest.mark.parametrize("compiled", [False, True])
def test_screened_projection_gives_the_unscreened_value(penalize, compiled, monkeypatch):
    """Past ``_SCREEN_FROM_ROWS`` rows (given the data's row norms) a pattern's cone is
    projected over working sets of its rows, never the whole ``n x d`` matrix at once:
    the same value as the whole cone's projection to 1e-9 (exact or early-stopped below
    the same threshold), from a cold start and from a face, with faces indexing the
    data's rows."""
    from convexrelu.certificates import _dual

    free = not penalize
    Xt, R, M, lam = _screening_problem(free)
    n = Xt.shape[0]
    monkeypatch.setattr(_dual, "_SCREEN_FROM_ROWS", 100)
    monkeypatch.setattr(_dual, "_SCREEN_ADD", 3)  # (2 d_aug = 10 a round): several rounds
    sizes = []
    real = _dual._project_cone

    def spy(Gn, c, *args, **kwargs):
        sizes.append(Gn.shape[0])
        return real(Gn, c, *args, **kwargs)

    monkeypatch.setattr(_dual, "_project_cone", spy)
    n_exact = n_early = 0
    for i in range(M.shape[1]):
        for sgn in (1.0, -1.0):
            c = sgn * Xt.T @ (M[:, i] * lam)
            kw = dict(free_bias=free, R=R, max_rounds=60, compiled=compiled)
            face, face_s = [], []
            ref = _dual._pattern_value(Xt, M[:, i], c, init=None, face_out=face, **kw)
            sizes.clear()
            scr = _dual._pattern_value(Xt, M[:, i], c, init=None, face_out=face_s,
                                       rows=_dual._RowNorms(), **kw)
            assert sizes and max(sizes) < n  # only working sets of rows were projected
            tol = 1e-9 * (1 + ref[0])
            assert scr[0] == pytest.approx(ref[0], abs=tol)
            assert scr[1] <= scr[0] + tol and scr[3] == ref[3]
            if face_s and face_s[0].size:
                assert face_s[0].max() < n
                warm = _dual._pattern_value(Xt, M[:, i], c, init=face_s[0],
                                            rows=_dual._RowNorms(), **kw)
                assert warm[0] == pytest.approx(ref[0], abs=tol)
            if not np.isfinite(ref[0]) or ref[0] <= 1e-9:
                continue
            for t in (0.5 * ref[0], 1.5 * ref[0]):
                U = _dual._pattern_value(Xt, M[:, i], c, init=None, stop_below=t,
                                         rows=_dual._RowNorms(), **kw)[0]
                assert U >= ref[1] - tol  # a bound on the value
                if t > ref[0]:
                    assert U <= t
                    n_early += 1
                else:
                    assert U == pytest.approx(ref[0], abs=tol)
                    n_exact += 1
    assert n_exact and n_early


def test_screened_free_bias_active_set_gives_the_whole_cones(monkeypatch):
    """The exact free-bias active set (the equality kept) over working sets of rows gives
    the bound of the whole cone's, from a few rows."""
    from convexrelu.certificates import _dual

    Xt, R, M, lam = _screening_problem(True, seed=13)
    monkeypatch.setattr(_dual, "_SCREEN_ADD", 3)
    norms = np.linalg.norm(Xt, axis=1)
    compared = 0
    for i in range(M.shape[1]):
        sgn = np.where(M[:, i], 1.0, -1.0)
        c = Xt.T @ (M[:, i] * lam)
        whole = _dual._project_cone_free(sgn[:, None] * Xt, c)
        few = _dual._project_free_screened(Xt, sgn, norms, c, np.zeros(0, int),
                                           np.arange(0, Xt.shape[0], 50))
        if whole is None:
            continue
        assert few is not None
        bounds = []
        for mu, rows, _ in (whole, few):
            assert np.all(mu >= 0)
            r = c + (sgn[rows, None] * Xt[rows]).T @ mu
            bounds.append(_dual._upper(r, True, R, bool(np.all(M[:, i]))))
        assert bounds[1] == pytest.approx(bounds[0], rel=1e-9, abs=1e-9)
        compared += 1
    assert compared >= 6


@pytest.mark.parametrize("penalize", [True, False])
def test_dual_constraint_with_screened_cones_is_the_same(penalize, monkeypatch):
    """M(lambda) over a pattern set, with and without the screened projections, cold and
    in pricing mode; inside ``shared_preparation`` (a pricing's chunks) the data is
    prepared once, and the preparation is released at its end."""
    from convexrelu._parallel import subset
    from convexrelu.certificates import _dual

    rng = np.random.default_rng(14)
    X = rng.standard_normal((400, 3))
    pats = ActivationPatterns.from_gates(X, rng.standard_normal((4, 40)), bias=True)
    lam = rng.standard_normal(400)
    lam -= lam.mean()
    ref = dual_constraint(pats, X, lam, penalize_bias=penalize)
    monkeypatch.setattr(_dual, "_SCREEN_FROM_ROWS", 100)
    scr = dual_constraint(pats, X, lam, penalize_bias=penalize)
    assert scr.value == pytest.approx(ref.value, rel=1e-9)
    assert scr.pattern_index == ref.pattern_index
    screened = []
    real_screened = _dual._project_screened
    monkeypatch.setattr(_dual, "_project_screened",
                        lambda *a, **k: screened.append(1) or real_screened(*a, **k))
    assert dual_constraint(pats, X, lam, penalize_bias=penalize).value == scr.value
    assert screened  # the screened path ran
    calls = []
    real = _dual._prepare
    monkeypatch.setattr(_dual, "_prepare", lambda *a: calls.append(1) or real(*a))
    with _dual.shared_preparation():
        parts = [dual_constraint(subset(pats, s, s + 10), X, lam, penalize_bias=penalize,
                                 threshold=0.5 * ref.value) for s in range(0, 40, 10)]
        assert len(calls) == 1
        assert _dual._SHARED.cache
    assert _dual._SHARED.cache is None
    assert max(p.value for p in parts) >= ref.value * (1 - 1e-9)
    dual_constraint(pats, X, lam, penalize_bias=penalize)
    assert len(calls) == 2  # outside: prepared again
    with _dual.shared_preparation():
        # a dual point given as a list; other data of the same shape is still refused
        listed = dual_constraint(pats, X, list(lam), penalize_bias=penalize)
        assert listed.value == pytest.approx(ref.value, rel=1e-9)
        with pytest.raises(ValueError, match="other data"):
            dual_constraint(pats, X + 1.0, lam, penalize_bias=penalize)
    # a kept preparation (a working-set loop's pricing passes): the data prepared once
    # for every use, the dual points' entries released after each
    keep, before = {}, len(calls)
    lam2 = lam[::-1].copy()
    fresh = dual_constraint(pats, X, lam2, penalize_bias=penalize).value
    for point, want in ((lam, ref.value), (lam2, fresh)):
        with _dual.shared_preparation(keep):
            got = dual_constraint(pats, X, point, penalize_bias=penalize)
        assert got.value == pytest.approx(want, rel=1e-12)
        assert keep and all(key[0] not in _dual._PER_DUAL_POINT for key in keep)
        assert _dual._SHARED.cache is None
    assert len(calls) == before + 2  # lam2 outside, then once for both kept uses


@pytest.mark.parametrize("entries", [None, 1, 20, 21])
def test_masked_sums_by_row_chunks(entries, monkeypatch):
    """``masked_sums`` is ``XL.T @ masks`` whatever its row chunks (one row, 5 of 23 rows
    with 4 columns: a shorter last chunk, or the whole)."""
    from convexrelu.certificates import _dual

    rng = np.random.default_rng(3)
    XL, masks = rng.standard_normal((23, 3)), rng.random((23, 4)) < 0.5
    if entries is not None:
        monkeypatch.setattr(_dual, "_MASKED_SUM_ENTRIES", entries)
        monkeypatch.setattr(_dual, "_MASKED_SUM_MIN_ROWS", 1)
    np.testing.assert_allclose(_dual.masked_sums(XL, masks), XL.T @ masks.astype(float),
                               rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("free", [False, True])
def test_screened_projection_reaching_every_row_solves_the_whole_cone(free, monkeypatch):
    """A working set that grows to every row is solved once more (the whole problem), and
    one whose rounds run out falls back to the whole cone: the same values either way."""
    from convexrelu.certificates import _dual

    Xt, R, M, lam = _screening_problem(free, n=120, d=3, seed=15)
    refs = []
    for i in range(M.shape[1]):
        c = Xt.T @ (M[:, i] * lam)
        refs.append(_dual._pattern_value(Xt, M[:, i], c, free_bias=free, R=R, max_rounds=60,
                                         init=None)[0])
    monkeypatch.setattr(_dual, "_SCREEN_FROM_ROWS", 10)
    for add, rounds in ((60, 50), (8, 1)):  # every row in two rounds; out of rounds
        monkeypatch.setattr(_dual, "_SCREEN_ADD", add)
        monkeypatch.setattr(_dual, "_SCREEN_ROUNDS", rounds)
        for i in range(M.shape[1]):
            c = Xt.T @ (M[:, i] * lam)
            U = _dual._pattern_value(Xt, M[:, i], c, free_bias=free, R=R, max_rounds=60,
                                     init=None, rows=_dual._RowNorms())[0]
            assert U == pytest.approx(refs[i], abs=1e-9 * (1 + refs[i]))
    norms = _dual._RowNorms()
    norms.plain(Xt)
    with pytest.raises(ValueError, match="shape"):
        norms.plain(Xt[:10])


def _degenerate_free_cone(name="degenerate"):
    """A working set of one pattern's cone rows from a ``make_regression(n, 20)`` ReLU
    solve's pricing (``G = A X_aug``, free bias: ``|G_{j,d+1}| = 1``), its ``c`` and the
    warm face; the optimum is degenerate (more rows nearly active than dimensions).
    ``"degenerate"``: 447 rows at ``n = 10^6``, where the LU factor's run cycled between
    two faces; ``"cycle"``: 427 rows at ``n = 3 10^5``, where the least squares' run
    (without the exchange step) ran out of rounds."""
    import os

    z = np.load(os.path.join(os.path.dirname(__file__), "data", f"{name}_free_cone.npz"))
    return z["G"], z["c"], z["init"]


def _free_primal_value(G, c, x):
    """``c^T x`` where ``x`` (penalised part of unit norm) is feasible: ``G x >= 0`` up to
    rounding (an independent check of a bound: weak duality)."""
    d = G.shape[1] - 1
    assert abs(np.linalg.norm(x[:d]) - 1.0) < 1e-12
    assert np.all(G @ x >= -1e-12 * np.linalg.norm(G, axis=1))
    return float(c @ x)


@pytest.mark.parametrize("lu", [False, True])
@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("name", ["degenerate", "cycle"])
def test_free_bias_active_set_on_a_degenerate_face(name, lu, warm):
    """On a degenerate face the entering row's multiplier came out negative (the system
    with it singular to working precision): it left at once and entered again until the
    rounds ran out, and the value went to the last resort (at 10^6 rows one pattern then
    took 300 s in the SOCP). The exchange step (``pivot``) and the end at a recurring set
    give a value; with the least squares (the first try) the exact maximum, matched by a
    feasible point, with the LU factor within 1e-9 of ``||c||``."""
    from convexrelu.certificates._dual import _project_cone_free, _upper

    G, c, init = _degenerate_free_cone(name)
    out = _project_cone_free(G, c, init=init if warm else None, lu=lu)
    assert out is not None
    mu, rows, nu = out
    assert np.all(mu >= 0)
    r = c + G[rows].T @ mu
    U = _upper(r, True, float(np.linalg.norm(G, axis=1).max()), False)
    # the primal point of the face that the least-squares run found (its value is a lower
    # bound on the maximum, the bound U an upper one)
    ref = _project_cone_free(G, c, lu=False)
    rr = c + G[ref[1]].T @ ref[0]
    d = G.shape[1] - 1
    u = rr[:d] / np.linalg.norm(rr[:d])
    t = -(G[:, :d] @ u) / G[:, d]  # the bias at which row j is active
    lo = t[G[:, d] > 0].max()  # rows of positive bias coefficient: b >= t_j
    hi = t[G[:, d] < 0].min()
    assert lo <= hi + 1e-12
    L = _free_primal_value(G, c, np.append(u, lo if c[d] < 0 else hi))
    scale = float(np.linalg.norm(c))
    assert U >= L - 1e-12 * scale
    assert U - L <= (1e-12 if not lu else 1e-9) * scale


def test_pattern_value_on_a_degenerate_face_needs_no_last_resort():
    """The same cone as a pattern of data (rows ``x_j = A_j G_j``, last column ones): the
    value verifies against its primal point without the constraint-generation rounds or
    the SOCP."""
    import convexrelu.certificates._dual as dual

    G, c, init = _degenerate_free_cone()
    mask = G[:, -1] > 0
    Xa = np.where(mask, 1.0, -1.0)[:, None] * G
    R = float(np.linalg.norm(Xa, axis=1).max())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dual, "pattern_value_socp", lambda *a, **k: pytest.fail("SOCP"))
        U, L, x, fb = dual.pattern_value(Xa, mask, c, free_bias=True, R=R, init=init)
    assert not fb
    assert U - L <= 1e-9 * np.linalg.norm(c)
    assert _free_primal_value(G, c, x) == pytest.approx(L, rel=1e-12)


def test_large_cones_skip_the_last_resorts_socp(monkeypatch):
    """Above ``_SOCP_MAX_ROWS`` rows the value's last resort returns the smallest certified
    bound it found instead of solving the SOCP (300 s at 10^6 rows); that bound is at
    least the maximum (here: every verification refused, so every stage runs)."""
    import convexrelu.certificates._dual as dual

    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 3))
    Xa = np.hstack([X, np.ones((60, 1))])
    mask = Xa @ rng.standard_normal(4) > 0
    c = Xa.T @ (mask * rng.standard_normal(60))
    R = float(np.linalg.norm(Xa, axis=1).max())
    for fb in (False, True):
        exact = dual.pattern_value(Xa, mask, c, free_bias=fb, R=R)
        with monkeypatch.context() as mp:
            mp.setattr(dual, "_VERIFY_RTOL", -1.0)  # nothing verifies: the last resort
            mp.setattr(dual, "_SOCP_MAX_ROWS", 10)
            mp.setattr(dual, "pattern_value_socp", lambda *a, **k: pytest.fail("SOCP"))
            U, L, x, fallback = dual.pattern_value(Xa, mask, c, free_bias=fb, R=R)
        assert fallback
        assert U >= exact[0] * (1 - 1e-12)  # a bound
        assert U <= exact[0] * (1 + 1e-6)  # the smallest found: near the maximum here
        # the lower value: the best primal point of every stage (the projections' too)
        assert L <= exact[0] * (1 + 1e-12)
        assert L == pytest.approx(exact[1], rel=1e-9) and x is not None
        assert float(c @ x) == pytest.approx(L, rel=1e-12)


@pytest.mark.parametrize("n", [0, 1, 6, 1000])
def test_masked_extremes_and_cone_signs_are_the_where_ones(n):
    """The branch-free ``_masked_max`` (and the minimum over the other rows through it)
    and ``cone_signs`` give what ``np.where`` gives, empty and one-sided masks included."""
    from convexrelu.arrangements._patterns import cone_signs
    from convexrelu.certificates._dual import _masked_max

    rng = np.random.default_rng(n)
    t = rng.standard_normal(n)
    for m in (rng.random(n) < 0.5, np.ones(n, bool), np.zeros(n, bool)):
        assert _masked_max(t, m) == np.where(m, t, -np.inf).max(initial=-np.inf)
        assert -_masked_max(-t, ~m) == np.where(m, np.inf, t).min(initial=np.inf)
        np.testing.assert_array_equal(cone_signs(m), np.where(m, 1.0, -1.0))
        np.testing.assert_array_equal(cone_signs(m.astype(float) * 3), np.where(m, 1.0, -1.0))


@pytest.mark.parametrize("scale", [1.0, 1e-42, 1e30])
@pytest.mark.parametrize("weighted", [False, True])
def test_single_precision_screening_selects_the_double_precision_rows(scale, weighted,
                                                                      monkeypatch):
    """``_most_violated_rows`` read first in single precision gives the rows the double
    product gives: every violated row where there are at most ``add``, else the ``add``
    most violated; rows within rounding of the boundary decided in double precision,
    skipped rows never, and a tiny or huge ``v`` neither underflows nor overflows. With
    too many candidates it computes the whole double product."""
    from convexrelu.certificates import _dual

    rng = np.random.default_rng(21)
    n, d = 3000, 6
    Xa = rng.standard_normal((n, d))
    Xa[:, -1] = 1.0
    Xa[5, :-1] = 0.0  # the bias alone
    v = rng.standard_normal(d)
    sgn = np.where(Xa @ v > 0, 1.0, -1.0)  # v inside the cone of every row ...
    bump = rng.choice(n, 40, replace=False)
    sgn[bump] *= -1.0  # ... but these
    near = rng.choice(n, 30, replace=False)  # rows a hair inside or outside
    colw = _dual._weights(d, True, _dual._BIAS_WEIGHT) if weighted else None
    w = v if colw is None else colw * v
    wp = w[:-1]  # (the bias column stays ones)
    Xa[near, :-1] -= np.outer(Xa[near] @ w / (wp @ wp), wp)  # on the boundary ...
    Xa[near, :-1] += np.outer(rng.choice([-1e-11, 1e-11], near.size), wp / np.linalg.norm(wp))
    v = v * scale
    norms = np.linalg.norm(Xa * (1.0 if colw is None else colw), axis=1)
    rinv = _dual._inverse_norms(norms)
    single = _dual._RowNorms().single(Xa, weighted)
    assert single[1] and single[0].shape == (n, d - 1)  # the bias column left out
    assert not _dual._RowNorms().single(Xa[:, ::-1].copy(), weighted)[1]
    tol = 1e-13 * float(np.linalg.norm(v))
    skip = bump[:5]
    calls = []
    real = _dual._row_values
    monkeypatch.setattr(_dual, "_row_values", lambda *a: calls.append(1) or real(*a))
    for add in (8, 64, 500):
        want = _dual._most_violated_rows(Xa, None, sgn, colw, v, rinv, skip, tol, add)
        got = _dual._most_violated_rows(Xa, single, sgn, colw, v, rinv, skip, tol, add)
        np.testing.assert_array_equal(np.sort(got), np.sort(want))
        assert not np.isin(skip, got).any()
        g = real(Xa, sgn, colw, v, rinv)
        g[skip] = np.inf
        assert want.size == min(add, np.count_nonzero(g < -tol)) > 0
    if not weighted:  # (weighted, the bias dominates: rows within rounding, some fall back)
        assert len(calls) == 3  # the whole double product: the references only
    before = len(calls)
    monkeypatch.setattr(_dual, "_SINGLE_MAX_SHARE", 0.0)  # too many: the whole product
    got = _dual._most_violated_rows(Xa, single, sgn, colw, v, rinv, skip, tol, 64)
    assert len(calls) == before + 1
    np.testing.assert_array_equal(
        np.sort(got), np.sort(_dual._most_violated_rows(Xa, None, sgn, colw, v, rinv, skip,
                                                        tol, 64)))


@pytest.mark.parametrize("case", ["plain", "tiny_v", "tiny_rows", "huge_data",
                                  "huge_product"])
def test_single_precision_screening_without_a_bias_column_and_at_extremes(
        case, monkeypatch):
    """The single-precision first look with no bias column (d = 22, every column in the
    single product): the rows of the double product, also for ``v`` of 1e-170 (its
    rounding bound computed without underflow), rows of norm 1e-30 against a ``v`` of
    1e-10 (products below the normal range), and data or products beyond single
    precision's range (then the whole double product)."""
    from convexrelu.certificates import _dual

    rng = np.random.default_rng(33)
    n, d = 2000, 22
    Xa = rng.standard_normal((n, d))
    v = rng.standard_normal(d)
    sgn = np.where(Xa @ v > 0, 1.0, -1.0)
    sgn[rng.choice(n, 25, replace=False)] *= -1.0
    near = rng.choice(n, 40, replace=False)
    Xa[near] -= np.outer(Xa[near] @ v / (v @ v), v)
    Xa[near] += np.outer(rng.choice([-1e-9, 1e-9], near.size), v / np.linalg.norm(v))
    if case == "tiny_v":
        v = v * 1e-170
    elif case == "tiny_rows":  # their products with v below single's normal range
        Xa[near[:10]] *= 1e-30
        v = v * 1e-10
    elif case == "huge_data":
        Xa[7] = 1e39 * np.sign(v)
        sgn[7] = -1.0
    elif case == "huge_product":
        Xa[7] *= 1e20
        v = v * 1e19
    norms = np.linalg.norm(Xa, axis=1)
    rinv = _dual._inverse_norms(norms)
    single = _dual._RowNorms().single(Xa)
    assert not single[1]  # no column of ones: every column in the single product
    calls = []
    real = _dual._row_values
    monkeypatch.setattr(_dual, "_row_values", lambda *a: calls.append(1) or real(*a))
    tol = 1e-13 * float(np.linalg.norm(v))
    skip = np.sort(rng.choice(n, 30, replace=False))
    for add in (8, 64):
        want = _dual._most_violated_rows(Xa, None, sgn, None, v, rinv, skip, tol, add)
        got = _dual._most_violated_rows(Xa, single, sgn, None, v, rinv, skip, tol, add)
        assert want.size
        np.testing.assert_array_equal(np.sort(got), np.sort(want))
    if case != "tiny_rows":  # (there the bound's absolute terms may send it to the whole)
        whole = case in ("huge_data", "huge_product")
        assert len(calls) == (4 if whole else 2)  # the references, and the fallbacks

"""Tests of the branch-and-bound bound on M(lambda) (docs/mathematics.rst §4.2, §8.2, §8.5)
against the enumeration-based value."""

import zlib

import numpy as np
import pytest

from convexrelu.arrangements import enumerate_patterns
from convexrelu.certificates import dual_constraint
from convexrelu.certificates._bnb import (_NodeSolver, _Problem, _simplex_fan, _Node,
                                          dual_constraint_bnb)

MODES = {"nobias": (False, True), "penalised": (True, True), "free": (True, False)}


def _data(kind, rng):
    if kind == "random":
        return rng.standard_normal((12, 3))
    if kind == "degenerate":  # duplicates, a zero row, collinear points, rank 2 in R^3
        B = rng.standard_normal((6, 2))
        X = np.vstack([B, B[:2], 2.0 * B[:1], [[0.0, 0.0]], B[3:4] + B[4:5]])
        return X @ rng.standard_normal((2, 3))
    if kind == "grid":  # integer grid: many collinear triples and parallel hyperplanes
        g = np.arange(-1, 2, dtype=float)
        X = np.array([[a, b] for a in g for b in g] + [[2.0, 1.0], [1.0, -2.0], [2.0, 2.0]])
        return X
    raise ValueError(kind)


def _exact(X, lam, bias, penalize_bias):
    pats = enumerate_patterns(X, bias=bias, progress=False)
    return dual_constraint(pats, X, lam, penalize_bias=penalize_bias).value


def _attained(X, lam, bias, res):
    Xa = np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X
    return res.sign * float(lam @ np.maximum(Xa @ res.direction, 0.0))


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("kind", ["random", "degenerate", "grid"])
@pytest.mark.parametrize("flip", [1.0, -1.0])
def test_bnb_matches_enumeration(mode, kind, flip):
    """Sound (UB >= M), closed to tol, and the maximiser attains the lower bound; both signs
    of lambda (M^+ and M^- swap roles)."""
    bias, pen = MODES[mode]
    rng = np.random.default_rng(zlib.crc32(f"{mode}-{kind}".encode()))
    X = _data(kind, rng)
    lam = flip * rng.standard_normal(X.shape[0])
    if bias and not pen:
        lam -= lam.mean()
    M = _exact(X, lam, bias, pen)
    res = dual_constraint_bnb(X, lam, bias=bias, penalize_bias=pen, tol=1e-6, random_state=0)
    assert res.upper >= M - 1e-9 * max(M, 1.0)
    assert res.lower <= M + 1e-9 * max(M, 1.0)
    assert res.closed
    assert abs(res.upper - M) <= 1e-6 * M + 1e-12
    assert res.upper - res.lower <= 1e-6 * res.lower + 1e-12
    # the maximiser is feasible (norm 1 on the penalised part) and attains the lower bound
    d = X.shape[1]
    nrm = np.linalg.norm(res.direction[:d]) if (bias and not pen) else \
        np.linalg.norm(res.direction)
    assert nrm == pytest.approx(1.0, abs=1e-9)
    assert _attained(X, lam, bias, res) == pytest.approx(res.lower, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_bnb_anytime_bound_is_valid(mode):
    """Stopped after 1, 5 or 20 nodes (or by the clock), the upper bound still covers M."""
    bias, pen = MODES[mode]
    rng = np.random.default_rng(7)
    X = rng.standard_normal((14, 3))
    lam = rng.standard_normal(14)
    if bias and not pen:
        lam -= lam.mean()
    M = _exact(X, lam, bias, pen)
    for k in (1, 5, 20):
        res = dual_constraint_bnb(X, lam, bias=bias, penalize_bias=pen, max_nodes=k,
                                  random_state=0)
        assert res.n_nodes <= k
        assert res.upper >= M - 1e-9 * M
        assert res.lower <= M + 1e-9 * M
        assert res.closed == (res.upper - res.lower <= 1e-6 * res.lower)
        if not res.closed:
            assert res.info["stopped"] == "max_nodes"
    res = dual_constraint_bnb(X, lam, bias=bias, penalize_bias=pen, time_limit=1e-3,
                              random_state=0)
    assert res.upper >= M - 1e-9 * M


@pytest.mark.parametrize("free", [False, True])
def test_node_certificate_valid_for_any_multipliers(free):
    """The Lagrangian node bound holds for random (not optimal) multipliers: it is never
    below f at sampled points of the cone (docs/mathematics.rst §8.5)."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((15, 2))
    lam = rng.standard_normal(15)
    lam -= lam.mean()
    prob = _Problem(X, lam, True, free)
    solver = _NodeSolver(prob)
    for V, masks, nid in _simplex_fan(prob.D):
        for s in (1, -1):
            node = _Node(s, V, masks, nid, np.inf)
            for _ in range(5):
                sigma = rng.uniform(0, 1, 15)
                y = rng.standard_normal(prob.D)
                U = solver.certify(node, sigma, y)
                T = rng.exponential(size=(400, V.shape[0]))
                P = T @ V  # points of the cone
                nu = np.linalg.norm(P[:, :-1] if free else P, axis=1)
                P = P / nu[:, None]
                if free:
                    P = P[np.abs(P[:, -1]) <= prob.R]
                vals = s * np.maximum(P @ prob.Z.T, 0.0) @ lam
                assert U >= vals.max() - 1e-12


def test_bnb_zero_dual_point_and_rank_deficiency():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 3))
    res = dual_constraint_bnb(X, np.zeros(10), bias=True, penalize_bias=False)
    assert res.closed and res.upper == 0.0 and res.lower == 0.0
    # a rank-1 data set in R^4: M = max(|lam^T (X u)_+|) over the line's two directions
    X1 = np.outer(rng.standard_normal(8), rng.standard_normal(4))
    lam = rng.standard_normal(8)
    res = dual_constraint_bnb(X1, lam, bias=False)
    a = X1 @ (X1[0] / np.linalg.norm(X1[0]))
    M = max(abs(lam @ np.maximum(a, 0)), abs(lam @ np.maximum(-a, 0)))
    assert res.closed and res.upper == pytest.approx(M, rel=1e-6)


def test_bnb_progress_callback():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 2))
    lam = rng.standard_normal(12)
    seen = []
    res = dual_constraint_bnb(X, lam, bias=False, progress=seen.append)
    assert seen and seen[-1]["n_nodes"] == res.n_nodes
    assert {"n_nodes", "time", "lower", "upper", "n_open"} <= set(seen[-1])


def test_bnb_errors():
    X = np.random.default_rng(0).standard_normal((6, 2))
    lam = np.arange(6.0)
    with pytest.raises(ValueError, match="lam must have shape"):
        dual_constraint_bnb(X, lam[:5], bias=False)
    with pytest.raises(ValueError, match="NaN or infinity"):
        dual_constraint_bnb(X, np.r_[lam[:5], np.nan], bias=False)
    with pytest.raises(ValueError, match="not centred"):
        dual_constraint_bnb(X, lam, bias=True, penalize_bias=False)
    with pytest.raises(ValueError, match="tol must be"):
        dual_constraint_bnb(X, lam, bias=False, tol=0.0)
    with pytest.raises(ValueError, match="time_limit must be"):
        dual_constraint_bnb(X, lam, bias=False, time_limit=-1.0)
    with pytest.raises(ValueError, match="max_nodes must be"):
        dual_constraint_bnb(X, lam, bias=False, max_nodes=0)
    with pytest.raises(ValueError, match="X is empty"):
        dual_constraint_bnb(np.zeros((0, 2)), lam, bias=False)


@pytest.mark.parametrize("mode", ["nobias", "free"])
def test_bnb_triangle_bounds_sound(monkeypatch, mode):
    """With the per-row triangle (chord) bounds switched on, bounds stay valid at every node
    limit and the search still closes on the enumeration value."""
    from convexrelu.certificates import _bnb

    monkeypatch.setattr(_bnb, "_TRIANGLES", True)
    bias, pen = MODES[mode]
    rng = np.random.default_rng(5)
    X = rng.standard_normal((14, 3))
    lam = rng.standard_normal(14)
    if bias and not pen:
        lam -= lam.mean()
    M = _exact(X, lam, bias, pen)
    for k in (1, 5, None):
        res = dual_constraint_bnb(X, lam, bias=bias, penalize_bias=pen, max_nodes=k,
                                  random_state=0)
        assert res.upper >= M - 1e-9 * M
    assert res.closed and abs(res.upper - M) <= 1e-6 * M

"""Tests of the alternative node solvers of the branch and bound on M(lambda)
(docs/mathematics.rst §4.2, §8.2): least-distance programs (NNLS) and the active-set method
warm-started from the parent's multipliers. Their node bounds are sound (never below the
node's optimum), as tight as the conic program's, and the searches they drive still match
enumeration."""

import copy
import zlib

import numpy as np
import pytest

from convexrelu.arrangements import enumerate_patterns
from convexrelu.certificates import _bnb, dual_constraint
from convexrelu.certificates._bnb import (_Node, _NodeSolver, _Problem, _simplex_fan, _split,
                                          dual_constraint_bnb)

MODES = {"nobias": (False, True), "penalised": (True, True), "free": (True, False)}


def _data(kind, rng):
    """As in test_bnb: random, degenerate (duplicates, a zero row, rank 2) or grid data."""
    if kind == "random":
        return rng.standard_normal((12, 3))
    if kind == "degenerate":
        B = rng.standard_normal((6, 2))
        X = np.vstack([B, B[:2], 2.0 * B[:1], [[0.0, 0.0]], B[3:4] + B[4:5]])
        return X @ rng.standard_normal((2, 3))
    g = np.arange(-1, 2, dtype=float)
    return np.array([[a, b] for a in g for b in g] + [[2.0, 1.0], [1.0, -2.0], [2.0, 2.0]])


def _exact(X, lam, bias, penalize_bias):
    pats = enumerate_patterns(X, bias=bias, progress=False)
    return dual_constraint(pats, X, lam, penalize_bias=penalize_bias).value


def _gauge(prob, x):
    if prob.free:
        return max(float(np.linalg.norm(x[:-1])), abs(float(x[-1])) / prob.R)
    return float(np.linalg.norm(x))


def _relaxation_value(prob, node, t):
    """The relaxation's objective at ray weights ``t`` scaled into Omega: a value the
    relaxation attains, so a lower bound on every valid node bound."""
    x = node.V.T @ t
    nu = _gauge(prob, x)
    if nu <= 0:
        return 0.0
    t = t / nu
    sl = node.sign * prob.lam
    g = np.maximum(prob.Z @ node.V.T, 0.0) @ t  # per row: sum_j t_j (z_i^T v_j)_+
    h_env = float(np.where(sl > 0, sl, 0.0) @ g)
    k = float(np.where(sl < 0, -sl, 0.0) @ np.maximum(prob.Z @ (node.V.T @ t), 0.0))
    return h_env - k


def _sampled_max(prob, node, rng, k=300):
    """max of s f over random points of the cone scaled into Omega (the true node value)."""
    P = rng.exponential(size=(k, node.V.shape[0])) @ node.V
    nu = np.array([_gauge(prob, x) for x in P])
    P = P[nu > 0] / nu[nu > 0, None]
    return float(np.max(node.sign * np.maximum(P @ prob.Z.T, 0.0) @ prob.lam, initial=0.0))


def _nodes(prob, rng):
    """Root cones, random sub-cones and children of random splits, both signs."""
    out = []
    for V, masks, nid in _simplex_fan(prob.D):
        W = np.abs(rng.standard_normal((prob.D, prob.D))) + 0.2 * np.eye(prob.D)
        V2 = W @ V
        V2 /= np.linalg.norm(V2, axis=1, keepdims=True)
        for s in (1, -1):
            for VV in (V, V2):
                node = _Node(s, VV, masks, nid, np.inf)
                out.append(node)
                a = prob.Z[rng.integers(prob.Z.shape[0])]
                if np.linalg.norm(a) > 0:
                    for child in _split(node, a / np.linalg.norm(a), prob.D):
                        child.bound = np.inf
                        out.append(child)
    return out


@pytest.mark.parametrize("mode", sorted(MODES))
def test_ldp_node_bound_sound_and_tight(mode):
    """On random nodes (many seeds) the least-distance bound is never below the node's
    optimum (the relaxation value at the conic solution, sampled points of the cone) and
    never above the conic program's bound by more than its tolerance."""
    bias, pen = MODES[mode]
    used = 0
    for seed in range(3):
        rng = np.random.default_rng(zlib.crc32(f"{mode}-{seed}".encode()))
        n, d = 12, 2 + seed % 2
        X = rng.standard_normal((n, d))
        lam = rng.standard_normal(n)
        if bias and not pen:
            lam -= lam.mean()
        prob = _Problem(X, lam, bias, bias and not pen)
        solver = _NodeSolver(prob)
        for node in _nodes(prob, rng):
            ref = solver.solve_conic(copy.copy(node))
            out = solver.solve_ldp(copy.copy(node))
            if out is None:
                continue
            used += 1
            bound, t, x, _ = out
            scale = max(abs(ref[0]), 1e-12)
            assert bound >= _sampled_max(prob, node, rng) - 1e-12 * scale
            if ref[1] is not None:
                assert bound >= _relaxation_value(prob, node, ref[1]) - 1e-9 * scale
            assert bound <= ref[0] + 1e-6 * scale + 1e-9
            # the multipliers' own maximiser is a point of the relaxation: below the bound
            assert _relaxation_value(prob, node, t) <= bound + 1e-9 * scale
    assert used >= 20  # the least-distance path did run (not only fallbacks)


def test_ldp_unsettled_bound_is_kept_sound_and_leaves_fall_back():
    """Stopped after one round (signs not settled), the least-distance path keeps its
    certified bound, which is still sound; a leaf (no crossing h row) is never left with
    such a bound (the conic program runs) and the search still closes on M."""
    rng = np.random.default_rng(9)
    X = rng.standard_normal((14, 3))
    lam = rng.standard_normal(14)
    lam -= lam.mean()
    prob = _Problem(X, lam, True, True)
    solver = _NodeSolver(prob)
    kept = 0
    for node in _nodes(prob, rng):
        before = solver.fallback_reasons["unsettled"]
        out = solver.solve_ldp(copy.copy(node), max_rounds=1)
        if solver.fallback_reasons["unsettled"] == before:
            continue
        if out is None:
            continue
        kept += 1
        assert out[3].size > 0  # not a leaf
        assert out[0] >= _sampled_max(prob, node, rng) - 1e-12 * max(abs(out[0]), 1.0)
    assert kept >= 1
    M = _exact(X, lam, True, False)
    res = dual_constraint_bnb(X, lam, bias=True, penalize_bias=False, random_state=0)
    assert res.closed and abs(res.upper - M) <= 1e-6 * M and res.upper >= M * (1 - 1e-9)


def test_line_search_is_exact():
    """The breakpoint line search maximises the concave piecewise quadratic Psi on [0, 1]
    (checked against a fine grid, many seeds, including a maximum at a breakpoint)."""
    for seed in range(40):
        rng = np.random.default_rng(seed)
        m, du, K = 6, 3, 15
        t = rng.exponential(size=m)
        d = rng.standard_normal(m)
        c = 3.0 * rng.standard_normal(m)
        Vu = rng.standard_normal((m, du))
        AN = rng.standard_normal((K, m))
        wN = rng.exponential(size=K)
        if seed % 4 == 0:
            Vu = np.zeros((m, du))  # piecewise linear: the maximum sits at a breakpoint

        def psi(s):  # s: array of step lengths
            x = t[None, :] + np.asarray(s, dtype=float)[:, None] * d[None, :]
            return x @ c - 0.5 * np.sum((x @ Vu) ** 2, axis=1) - \
                np.maximum(x @ AN.T, 0.0) @ wN

        s_star = _NodeSolver._line_search(t, d, c, Vu, AN, wN)
        assert 0.0 <= s_star <= 1.0
        grid = float(psi(np.linspace(0.0, 1.0, 4001)).max())
        best = float(psi([s_star])[0])
        assert best >= grid - 1e-9 * (1 + abs(grid))


def test_ldp_certificate_valid_for_perturbed_multipliers():
    """The bound of the least-distance path is certify() at its multipliers: perturbing
    them (any sigma in [0, 1], any y) never gives a value below the node's optimum."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((14, 3))
    lam = rng.standard_normal(14)
    prob = _Problem(X, lam, False, False)
    solver = _NodeSolver(prob)
    for node in _nodes(prob, rng)[:12]:
        best = _sampled_max(prob, node, rng)
        for _ in range(5):
            sigma = rng.uniform(0, 1, 14)
            y = rng.standard_normal(prob.D)
            assert solver.certify(node, sigma, y) >= best - 1e-12


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("kind", ["random", "degenerate", "grid"])
def test_bnb_with_ldp_nodes_matches_enumeration(monkeypatch, mode, kind):
    """The search driven by the least-distance node solver closes on the enumerated M."""
    monkeypatch.setattr(_bnb, "_NODE_SOLVER", "ldp")
    bias, pen = MODES[mode]
    rng = np.random.default_rng(zlib.crc32(f"ldp-{mode}-{kind}".encode()))
    X = _data(kind, rng)
    for flip in (1.0, -1.0):
        lam = flip * rng.standard_normal(X.shape[0])
        if bias and not pen:
            lam -= lam.mean()
        M = _exact(X, lam, bias, pen)
        res = dual_constraint_bnb(X, lam, bias=bias, penalize_bias=pen, tol=1e-6,
                                  random_state=0)
        assert res.info["node_solver"] == "ldp" and res.info["n_ldp"] > 0
        assert res.upper >= M - 1e-9 * max(M, 1.0)
        assert res.closed and abs(res.upper - M) <= 1e-6 * M + 1e-12
        for k in (1, 5):  # anytime bounds stay valid
            r = dual_constraint_bnb(X, lam, bias=bias, penalize_bias=pen, max_nodes=k,
                                    random_state=0)
            assert r.upper >= M - 1e-9 * max(M, 1.0)


def test_ldp_falls_back_to_the_conic_program_and_counts_it(monkeypatch):
    """A root cone containing the pure-bias direction makes the least-distance program at
    ``y_b = 0`` infeasible (free bias): the node goes to Clarabel, counted."""
    monkeypatch.setattr(_bnb, "_NODE_SOLVER", "ldp")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 2))
    lam = rng.standard_normal(12)
    lam -= lam.mean()
    prob = _Problem(X, lam, True, True)
    solver = _NodeSolver(prob)
    fell = 0
    for V, masks, nid in _simplex_fan(prob.D):
        for s in (1, -1):
            node = _Node(s, V, masks, nid, np.inf)
            before = solver.conic_fallbacks
            got = solver.solve(copy.copy(node))
            if solver.conic_fallbacks > before:
                fell += 1
                assert got[0] == pytest.approx(solver.solve_conic(copy.copy(node))[0],
                                               rel=1e-12)
    assert fell >= 1
    assert sum(solver.fallback_reasons.values()) == solver.conic_fallbacks
    res = dual_constraint_bnb(X, lam, bias=True, penalize_bias=False, random_state=0)
    assert res.info["conic_fallbacks"] >= 1 and res.info["node_solver"] == "ldp"


def _solved_tree(prob, solver, rng, depth=3, width=3):
    """Children of conic- or active-set-solved parents down to ``depth`` (with the
    parents' multipliers attached), both signs, a few root cones."""
    out = []
    for V, masks, nid in _simplex_fan(prob.D)[:2]:
        for s in (1, -1):
            level = [_Node(s, V, masks, nid, np.inf)]
            for _ in range(depth):
                nxt = []
                for nd in level:
                    nd.bound, nd.t, nd.x, nd.cross_P = solver.solve(nd)
                    if nd.cross_P.size == 0:
                        continue
                    a = prob.Z[_bnb._branch_row(prob, nd)]
                    for ch in _split(nd, a / np.linalg.norm(a), prob.D):
                        ch.bound, ch.x, ch.mult = nd.bound, nd.x, nd.mult
                        nxt.append(ch)
                rng.shuffle(nxt)
                level = nxt[:width]
                out.extend(level)
    return out


@pytest.mark.parametrize("mode", sorted(MODES))
def test_active_set_node_bound_sound_and_tight(monkeypatch, mode):
    """The warm-started active-set bound of child nodes (many seeds) is never below the
    node's optimum (relaxation value at the conic solution, sampled cone points), never
    above the parent's bound, and equals the conic bound to its tolerance."""
    monkeypatch.setattr(_bnb, "_NODE_SOLVER", "active_set")
    bias, pen = MODES[mode]
    used = 0
    for seed in range(4):
        rng = np.random.default_rng(zlib.crc32(f"as-{mode}-{seed}".encode()))
        n, d = 14, 2 + seed % 2
        X = rng.standard_normal((n, d))
        lam = rng.standard_normal(n)
        if bias and not pen:
            lam -= lam.mean()
        prob = _Problem(X, lam, bias, bias and not pen)
        solver = _NodeSolver(prob)
        for node in _solved_tree(prob, solver, rng):
            ref = solver.solve_conic(copy.copy(node))
            out = solver.solve_as(copy.copy(node))
            if out is None:
                continue
            used += 1
            bound, t, x, _ = out
            scale = max(abs(ref[0]), 1e-12)
            assert bound <= node.bound
            assert bound >= _sampled_max(prob, node, rng) - 1e-12 * scale
            if ref[1] is not None:
                assert bound >= _relaxation_value(prob, node, ref[1]) - 1e-9 * scale
            assert bound == pytest.approx(ref[0], rel=1e-6, abs=1e-8)
    assert used >= 20


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("kind", ["random", "degenerate", "grid"])
def test_bnb_with_active_set_nodes_matches_enumeration(monkeypatch, mode, kind):
    """The search driven by the active-set node solver closes on the enumerated M, and its
    anytime bounds stay valid; Clarabel runs only where the method cannot (counted)."""
    monkeypatch.setattr(_bnb, "_NODE_SOLVER", "active_set")
    bias, pen = MODES[mode]
    rng = np.random.default_rng(zlib.crc32(f"as-{mode}-{kind}".encode()))
    X = _data(kind, rng)
    for flip in (1.0, -1.0):
        lam = flip * rng.standard_normal(X.shape[0])
        if bias and not pen:
            lam -= lam.mean()
        M = _exact(X, lam, bias, pen)
        res = dual_constraint_bnb(X, lam, bias=bias, penalize_bias=pen, tol=1e-6,
                                  random_state=0)
        info = res.info
        assert info["node_solver"] == "active_set" and info["n_active_set"] > 0
        assert info["n_active_set"] + info["conic_fallbacks"] == res.n_nodes
        assert res.upper >= M - 1e-9 * max(M, 1.0)
        assert res.closed and abs(res.upper - M) <= 1e-6 * M + 1e-12
        for k in (3, 10):
            r = dual_constraint_bnb(X, lam, bias=bias, penalize_bias=pen, max_nodes=k,
                                    random_state=0)
            assert r.upper >= M - 1e-9 * max(M, 1.0)


def test_active_set_needs_parent_multipliers():
    """A root has no parent multipliers: the active-set path declines (the conic program
    runs, counted as a fallback by solve)."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((10, 2))
    lam = rng.standard_normal(10)
    prob = _Problem(X, lam, False, False)
    solver = _NodeSolver(prob)
    V, masks, nid = _simplex_fan(prob.D)[0]
    node = _Node(1, V, masks, nid, np.inf)
    assert solver.solve_as(node) is None

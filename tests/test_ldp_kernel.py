"""The compiled least-distance program of the branch and bound (numba, optional).

Checked against independent computations: its NNLS against scipy's, the whole program
against the numpy path (scipy's NNLS and LAPACK's LU), and a branch-and-bound search
run both ways.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("numba")

from convexrelu.certificates import _bnb, _ldp_kernel  # noqa: E402
from convexrelu.certificates._bnb import _NodeSolver, _Problem  # noqa: E402


@pytest.fixture(scope="module")
def kern():
    k = _ldp_kernel.kernel()
    assert k is not None, "numba is installed, so the kernel must compile"
    return k


def _nnls_cases(rng):
    for trial in range(60):
        m, n = int(rng.integers(1, 30)), int(rng.integers(1, 60))
        A = rng.standard_normal((m, n))
        if trial % 4 == 1:  # repeated and zero columns
            A[:, n // 2:] = A[:, :n - n // 2]
            A[:, 0] = 0.0
        if trial % 4 == 2:  # rank deficient
            r = max(1, m // 3)
            A = rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
        if trial % 4 == 3:  # integer grid, many ties
            A = rng.integers(-2, 3, (m, n)).astype(float)
        b = rng.standard_normal(m)
        yield A, b


def test_nnls_matches_scipy(kern):
    """Lawson-Hanson on the updated QR factor: the same residual as scipy's NNLS (the
    minimiser may differ where the columns are dependent), a non-negative point, and
    the optimality conditions ``w = A^T (b - A x) <= tol``, ``w_j = 0`` where ``x_j > 0``."""
    from scipy.optimize import nnls

    rng = np.random.default_rng(0)
    for A, b in _nnls_cases(rng):
        x, ok = _ldp_kernel._nnls(A, b, 50 * A.shape[1])
        assert ok
        ref = nnls(A, b, maxiter=50 * A.shape[1])[0]
        assert np.all(x >= 0)
        r, rref = np.linalg.norm(A @ x - b), np.linalg.norm(A @ ref - b)
        assert r == pytest.approx(rref, rel=1e-8, abs=1e-10)
        w = A.T @ (b - A @ x)
        scale = np.abs(A).sum(axis=0).max() * max(np.linalg.norm(b), 1.0)
        assert w.max() <= 1e-8 * scale
        assert np.all(np.abs(w[x > 0]) <= 1e-8 * scale)


def _programs(rng, n_cases=40):
    for trial in range(n_cases):
        du, m = int(rng.integers(2, 9)), int(rng.integers(3, 150))
        K = int(rng.integers(0, 40 if trial % 5 == 0 else 8))
        e = rng.standard_normal(du)
        Vu = e / np.linalg.norm(e) + 0.5 * rng.standard_normal((m, du))
        if trial % 6 == 3:  # repeated rays
            Vu[m // 2:] = Vu[:m - m // 2]
        Vu /= np.linalg.norm(Vu, axis=1, keepdims=True)
        c = rng.standard_normal(m) + (0.5 if trial % 3 else -2.0)
        HF = 0.3 * rng.standard_normal((m, K))
        yield Vu, c, HF


@pytest.mark.parametrize("rays_all", [0, 24, 10 ** 6])
def test_compiled_program_matches_numpy_path(monkeypatch, rays_all, kern):
    """The compiled program against the numpy path on the same programs (working set on
    and off): the same feasibility, norm and point; multipliers ``t >= 0``; warm starts
    from the optimum's own rays give the same optimum. Some programs have a singular KKT
    system, whose polish the kernel hands back to numpy (``NEEDS_LSTSQ``)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 5))
    solver = _NodeSolver(_Problem(X, rng.standard_normal(20), True, True))
    monkeypatch.setattr(_bnb, "_LDP_RAYS_ALL", rays_all)
    monkeypatch.setattr(_bnb, "_LDP_RAYS_ALL_COMPILED", rays_all)
    polish = _NodeSolver._ldp_polish
    handed = [0]  # compiled solves whose singular KKT system numpy's polish solved

    def counted(*args):
        handed[0] += 1
        return polish(*args)

    n_feasible = n_infeasible = 0
    for Vu, c, HF in _programs(rng, 80):
        monkeypatch.setattr(_bnb, "_LDP_COMPILED", False)
        ref = solver._ldp(Vu, c, HF, 10.0)
        monkeypatch.setattr(_bnb, "_LDP_COMPILED", True)
        monkeypatch.setattr(_NodeSolver, "_ldp_polish", staticmethod(counted))
        out = solver._ldp(Vu, c, HF, 10.0)
        monkeypatch.setattr(_NodeSolver, "_ldp_polish", staticmethod(polish))
        if ref is None:
            assert out is None
            n_infeasible += 1
            continue
        n_feasible += 1
        y, sigma, t, nrm, viol = out
        assert nrm + viol == pytest.approx(ref[3] + ref[4], rel=1e-6, abs=1e-9)
        if ref[4] <= 1e-9 * max(ref[3], 1.0):  # a unique optimum: the same point
            np.testing.assert_allclose(y, ref[0], rtol=1e-5, atol=1e-7)
        assert np.all(t >= 0) and t.shape == (Vu.shape[0],)
        assert np.all((sigma >= 0) & (sigma <= 1))
        warm = solver._ldp(Vu, c, HF, 10.0, hint=(np.flatnonzero(t > 0), y))
        assert warm[3] + warm[4] == pytest.approx(nrm + viol, rel=1e-6, abs=1e-9)
    assert n_feasible >= 30 and n_infeasible >= 6
    assert handed[0] >= 1  # the singular-KKT hand-over ran


def test_nnls_columns_of_very_different_scales(kern):
    """Columns whose norms span 1e-6..1e6: each one's optimality test is in its own scale,
    so the residual is scipy's (an absolute tolerance stopped early on small columns)."""
    from scipy.optimize import nnls

    rng = np.random.default_rng(3)
    for _ in range(40):
        m, n = int(rng.integers(3, 15)), int(rng.integers(3, 30))
        A = rng.standard_normal((m, n)) * 10.0 ** rng.uniform(-6, 6, n)
        b = rng.standard_normal(m)
        x, ok = _ldp_kernel._nnls(A, b, 50 * n)
        assert ok and np.all(x >= 0)
        ref = nnls(A, b, maxiter=50 * n)[0]
        r, rref = np.linalg.norm(A @ x - b), np.linalg.norm(A @ ref - b)
        assert r <= rref * (1 + 1e-6) + 1e-9 * np.linalg.norm(b)


def test_nnls_reports_its_iteration_limit(kern):
    """``ok`` is False when the iterations run out (the kernel's status 2: the caller
    falls back to the conic program)."""
    rng = np.random.default_rng(4)
    A = rng.standard_normal((10, 20))
    b = A @ np.abs(rng.standard_normal(20))
    x, ok = _ldp_kernel._nnls(A, b, 2)
    assert not ok
    x, ok = _ldp_kernel._nnls(A, b, 1000)
    assert ok


def test_kernel_arguments_keep_one_signature(kern):
    """Read-only, Fortran-ordered, float32 and integer inputs all reach the kernel as
    C-ordered writable float64: no second compilation."""
    arr = _ldp_kernel.as_argument
    ro = np.ones((3, 2))
    ro.flags.writeable = False
    for a in (ro, np.asfortranarray(np.ones((3, 2))), np.ones((3, 2), np.float32),
              np.ones((3, 2), int)):
        b = arr(a)
        assert b.dtype == np.float64 and b.flags.c_contiguous and b.flags.writeable
    before = len(kern.signatures)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 3))
    lam = rng.standard_normal(12)
    lam -= lam.mean()
    _bnb.dual_constraint_bnb(X, lam, bias=True, penalize_bias=False, time_limit=30,
                             random_state=0)
    assert len(kern.signatures) == before


def test_compiled_program_infeasible_and_degenerate(kern):
    """``v^T y >= 1`` and ``-v^T y >= 1`` together: infeasible (status 1); a program with
    every ``c <= 0``: ``y = 0``."""
    rng = np.random.default_rng(2)
    V = rng.standard_normal((40, 6))
    args = (10.0, 1.0, 1e-3, _bnb._NO_RAYS, _bnb._NO_Y, 0, 4, 24, 8, 1e-12, 1e-10)
    out = kern(np.vstack([V, -V]), np.ones(80), np.zeros((80, 0)), *args)
    assert out[0] == 1
    out = kern(V, -np.ones(40), np.zeros((40, 0)), *args)
    assert out[0] == 0 and np.linalg.norm(out[1]) == 0.0 and out[5] == 0.0


@pytest.mark.slow  # moved to the slow step: the default run took 292 s in CI
@pytest.mark.parametrize("rank,n,bias", [(3, 40, True), (4, 25, False), (5, 18, True)])
def test_bnb_compiled_and_numpy_paths_agree(monkeypatch, rank, n, bias, kern):
    """A whole search with the compiled program and with the numpy one: both close and
    prove the same ``M`` within the tolerance, and both match the enumeration."""
    from convexrelu.arrangements import enumerate_patterns
    from convexrelu.certificates import dual_constraint

    rng = np.random.default_rng(rank)
    X = rng.standard_normal((n, rank))
    lam = rng.standard_normal(n)
    lam -= lam.mean()  # free bias: M is finite only for a centred lam
    pats = enumerate_patterns(X, bias=bias, progress=False)
    exact = dual_constraint(pats, X, lam, penalize_bias=False).value
    vals = []
    for compiled in (True, False):
        monkeypatch.setattr(_bnb, "_LDP_COMPILED", compiled)
        res = _bnb.dual_constraint_bnb(X, lam, bias=bias, penalize_bias=False, tol=1e-6,
                                       time_limit=60, random_state=0)
        assert res.closed
        assert res.upper >= exact * (1 - 1e-9)
        assert res.upper <= exact * (1 + 2e-6)
        vals.append(res.upper)
    assert vals[0] == pytest.approx(vals[1], rel=2e-6)


def test_kernel_build_failure_warns_and_the_numpy_path_runs(monkeypatch):
    """numba installed but unable to build (e.g. no writable cache folder): a
    RuntimeWarning that says so and how to fix it, no kernel, and searches still run."""
    import numba

    def broken(*args, **kwargs):
        raise RuntimeError("cannot cache function: no locator available")

    monkeypatch.setattr(numba, "njit", broken)
    monkeypatch.setattr(_ldp_kernel, "_TRIED", False)
    monkeypatch.setattr(_ldp_kernel, "_KERNEL", None)
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        assert _ldp_kernel.kernel() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # decided once: no second warning
        assert _ldp_kernel.kernel() is None
    rng = np.random.default_rng(1)
    X = rng.standard_normal((15, 3))
    lam = rng.standard_normal(15)
    res = _bnb.dual_constraint_bnb(X, lam, bias=False, time_limit=30, random_state=0)
    assert res.closed and res.info["n_ldp"] > 0


# ------------------------------------------------------------- the compiled cone projection
@pytest.fixture(scope="module")
def kernels():
    """The compiled projection and bounded least squares (numba is installed, so both
    must build: a failed build would let the tests below compare numpy with numpy)."""
    assert _ldp_kernel.projection_kernel() is not None
    assert _ldp_kernel.bvls_kernel() is not None


def _cones(rng, n_cases=40):
    """Unit rows ``Gn`` (n x d) of varied shapes: random, repeated rows, rank deficient,
    more dimensions than rows, an integer grid (ties); and a vector ``c``."""
    for trial in range(n_cases):
        d, n = int(rng.integers(2, 14)), int(rng.integers(1, 200))
        G = rng.standard_normal((n, d))
        if trial % 5 == 1:
            G[n // 2:] = G[:n - n // 2]
        if trial % 5 == 2:
            r = max(1, d // 3)
            G = rng.standard_normal((n, r)) @ rng.standard_normal((r, d))
        if trial % 5 == 3:
            G = rng.integers(-2, 3, (n, d)).astype(float)
            G[np.all(G == 0, axis=1)] = 1.0
        G /= np.linalg.norm(G, axis=1, keepdims=True)
        yield G, rng.standard_normal(d) * 10.0 ** rng.integers(-3, 4)


def test_compiled_cone_projection_matches_numpy_and_scipy(kernels):
    """``_project_cone(compiled=True)`` (Lawson-Hanson on an updated QR factor, compiled)
    against the numpy path and scipy's NNLS: the same value ``||proj_K(c)||``, a point of
    the cone, the face's multipliers positive; warm starts from the optimum's face, a
    wrong guess and indices out of range end at the same value."""
    from scipy.optimize import nnls

    from convexrelu.certificates._dual import _project_cone

    rng = np.random.default_rng(3)
    for Gn, c in _cones(rng):
        val, u, rows = _project_cone(Gn, c, compiled=True)
        ref, _, _ = _project_cone(Gn, c, compiled=False)
        mu = nnls(Gn.T, -c, maxiter=100 * Gn.shape[0])[0]
        exact = np.linalg.norm(c + Gn.T @ mu)
        scale = np.linalg.norm(c)
        assert val == pytest.approx(ref, rel=1e-9, abs=1e-11 * scale)
        assert val == pytest.approx(exact, rel=1e-8, abs=1e-11 * scale)
        assert val == pytest.approx(np.linalg.norm(u), rel=1e-14)
        assert np.all(Gn @ u >= -1e-9 * scale)
        # u = c + Gn^T mu with mu > 0 on the rows returned: u - c lies in their cone
        m = nnls(Gn[rows].T, u - c)[0] if rows.size else np.zeros(0)
        assert np.linalg.norm(Gn[rows].T @ m - (u - c)) <= 1e-9 * max(scale, 1.0)
        for init in (rows, rng.choice(Gn.shape[0], min(3, Gn.shape[0]), replace=False),
                     np.array([0, Gn.shape[0] + 5, -1, 0])):
            v2, _, _ = _project_cone(Gn, c, init=init, compiled=True)
            assert v2 == pytest.approx(val, rel=1e-9, abs=1e-11 * scale)


def test_compiled_projection_stops_early_with_a_valid_bound(kernels):
    """With a threshold the compiled iteration stops once its bound is at most it: the
    returned value is then a certified bound (``||c + Gn^T mu||`` for ``mu >= 0``, so at
    least the exact value) within the threshold; below the exact value it runs to the
    end. Where numpy's check of the stop disagrees (rounding), it runs on to the end."""
    from convexrelu.certificates._dual import _project_cone

    rng = np.random.default_rng(4)
    stopped = 0
    for Gn, c in _cones(rng, 30):
        exact = _project_cone(Gn, c, compiled=False)[0]
        scale = np.linalg.norm(c)
        for t in (1.5 * exact + 1e-3 * scale, 1.01 * exact + 1e-9 * scale, 0.5 * exact):
            def stop(P, mu, u):
                return float(np.linalg.norm(u)) <= t
            val, u, rows = _project_cone(Gn, c, stop=stop, stop_spec=(t, 0.0, 0.0, False),
                                         compiled=True)
            assert val >= exact * (1 - 1e-12) - 1e-13 * scale
            if t > exact:
                assert val <= t
                stopped += val > exact * (1 + 1e-9)
            else:
                assert val == pytest.approx(exact, rel=1e-9, abs=1e-11 * scale)
        # the kernel stops, numpy's check says no: the projection goes on to the end
        val, _, _ = _project_cone(Gn, c, stop=lambda P, mu, u: False,
                                  stop_spec=(10 * scale, 0.0, 0.0, False), compiled=True)
        assert val == pytest.approx(exact, rel=1e-9, abs=1e-11 * scale)
    assert stopped >= 5  # some stopped before the end


@pytest.mark.parametrize("free_bias", [False, True])
def test_compiled_pattern_values_match_numpy(free_bias, kernels):
    """``pattern_value`` with the compiled projections against the numpy path, on random
    cells, with and without a free hidden bias, exact and with a pricing threshold: the
    same certified value (exact), or a bound within the threshold that is at least the
    exact value."""
    from convexrelu.certificates._dual import _pattern_value

    rng = np.random.default_rng(5)
    n, d = 60, 4
    X = rng.standard_normal((n, d))
    Xa = np.hstack([X, np.ones((n, 1))])
    n_early = 0
    for _ in range(25):
        w = rng.standard_normal(d + 1)
        mask = Xa @ w >= 0
        c = Xa.T @ (mask * rng.standard_normal(n))
        kw = dict(free_bias=free_bias, R=3.0, max_rounds=60, init=None)
        ref = _pattern_value(Xa, mask, c, **kw)
        out = _pattern_value(Xa, mask, c, compiled=True, **kw)
        tiny = 1e-10 * np.linalg.norm(c)  # values at rounding level: zero
        assert out[0] == pytest.approx(ref[0], rel=1e-8, abs=tiny)
        assert out[1] <= out[0] * (1 + 1e-9) + tiny
        t = 1.2 * ref[0]
        cut = _pattern_value(Xa, mask, c, stop_below=t, compiled=True, **kw)
        assert ref[0] * (1 - 1e-8) - tiny <= cut[0] <= t + tiny
        n_early += cut[2] is None and cut[0] > tiny  # stopped at a bound, no point
    assert n_early >= 3


def _count_calls(monkeypatch, module, name):
    """Replace ``module.name`` by a wrapper that records each call; the list of calls."""
    calls = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_dual_constraints_are_the_same_with_compiled_projections(monkeypatch, kernels):
    """A whole pricing pass (several dual points) and ReLU solves: the same values,
    maximisers and objective with the compiled projections as with numpy's, whether every
    refinement, none or those after the first few are compiled; a working-set loop counts
    its refinements round after round and switches once it has made enough."""
    from convexrelu.arrangements import sample_patterns
    from convexrelu.certificates import _dual
    from convexrelu.program import ConvexProgram
    from convexrelu.solvers import _column_generation, get_solver

    rng = np.random.default_rng(6)
    X = rng.standard_normal((80, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(float)
    pats = sample_patterns(X, 60, random_state=0, bias=True)
    lams = [rng.standard_normal(80) for _ in range(3)]
    lams = [lam - lam.mean() for lam in lams]
    runs = {}
    for lim, before in ((None, None), (0, None), (20, [0, 10, 30])):
        monkeypatch.setattr(_dual, "_PROJECTION_COMPILED_AFTER", lim)
        runs[lim] = _dual.dual_constraints(pats, X, lams, penalize_bias=False,
                                           refined_before=before)
    for lim in (0, 20):
        for a, b in zip(runs[lim], runs[None]):
            assert a.value == pytest.approx(b.value, rel=1e-9)
            assert a.pattern_index == b.pattern_index and a.sign == b.sign
            assert a.n_refined == b.n_refined > 0
    # a working-set loop: the pricing oracle counts its refinements; past the limit the
    # projections run compiled (counted), and the solution is the same
    calls = _count_calls(monkeypatch, _dual, "_project_cone_compiled")
    prog = ConvexProgram(X, y, pats, loss="logistic", alpha=0.05, bias=True)
    sols, n_calls = [], []
    for lim in (None, 30):
        monkeypatch.setattr(_dual, "_PROJECTION_COMPILED_AFTER", lim)
        calls.clear()
        sols.append(get_solver("relu", tol=1e-8).solve(prog))
        n_calls.append(len(calls))
    assert n_calls[0] == 0 and n_calls[1] > 0
    assert sols[1].objective == pytest.approx(sols[0].objective, rel=1e-9)
    assert sols[1].info["rel_gap"] <= 1e-8
    oracle = _column_generation._PatternOracle(pats, X, penalize_bias=False, n_chunks=3,
                                               gated=False, beta=1.0)
    oracle.evaluate(lams[0])
    first = oracle.n_refined
    oracle.evaluate(lams[0])
    assert 0 < first < oracle.n_refined


def test_compiled_projections_switch_on_sooner_for_larger_cones(monkeypatch, kernels):
    """The number of refinements before a pass projects compiled falls with the cones'
    size (``n x d_aug`` beyond the reference): counted kernel calls, the same values."""
    from convexrelu.arrangements import sample_patterns
    from convexrelu.certificates import _dual

    assert _dual._compiled_after(569, 31) == _dual._PROJECTION_COMPILED_AFTER
    assert _dual._compiled_after(100, 5) == _dual._PROJECTION_COMPILED_AFTER
    assert _dual._compiled_after(1797, 65) == int(np.ceil(
        _dual._PROJECTION_COMPILED_AFTER * 569 * 31 / (1797 * 65)))
    assert _dual._compiled_after(10 ** 7, 100) == 1
    rng = np.random.default_rng(8)
    X = rng.standard_normal((60, 12))
    pats = sample_patterns(X, 200, random_state=1, bias=True)
    lam = rng.standard_normal(60)
    lam -= lam.mean()
    calls = _count_calls(monkeypatch, _dual, "_project_cone_compiled")
    monkeypatch.setattr(_dual, "_PROJECTION_COMPILED_AFTER", None)
    ref = _dual.dual_constraints(pats, X, [lam], penalize_bias=False)[0]
    assert not calls and ref.n_refined > 20
    monkeypatch.setattr(_dual, "_PROJECTION_COMPILED_AFTER", 40)
    # the cones: the 60 rows of X_aug (13 columns)
    n_d = 60 * 13
    for size, after in ((n_d, 40), (n_d // 4, 10)):
        monkeypatch.setattr(_dual, "_PROJECTION_REFERENCE_SIZE", size)
        assert _dual._compiled_after(60, 13) == after
        calls.clear()
        out = _dual.dual_constraints(pats, X, [lam], penalize_bias=False)[0]
        assert out.value == pytest.approx(ref.value, rel=1e-9)
        assert out.n_refined == ref.n_refined
        assert len(calls) == max(ref.n_refined - after, 0)


def _record_certificates(monkeypatch):
    """Record each cone projection (whether compiled) and, per restricted barrier
    certificate, ``(multipliers.refined_before, [compiled per projection])``: the lists
    ``(calls, certs)``."""
    from convexrelu.certificates import _dual
    from convexrelu.solvers import _restricted_barrier

    calls, certs = [], []
    project, gap = _dual._project_cone, _restricted_barrier.duality_gap

    def counted(*args, **kwargs):
        calls.append(bool(kwargs.get("compiled", False)))
        return project(*args, **kwargs)

    def recorded(*args, multipliers=None):
        calls.clear()
        out = gap(*args, multipliers=multipliers)
        certs.append((multipliers.refined_before, list(calls)))
        return out

    monkeypatch.setattr(_dual, "_project_cone", counted)
    monkeypatch.setattr(_restricted_barrier, "duality_gap", recorded)
    return calls, certs


def test_restricted_certificates_count_the_loops_refinements(monkeypatch, kernels):
    """A working-set loop hands its pricing's refinement count to the restricted barrier,
    whose certificate counts it as its own history: once the loop has switched to the
    compiled projections, so has each later certificate, from its first projection."""
    from convexrelu.arrangements import sample_patterns
    from convexrelu.certificates import _dual
    from convexrelu.program import ConvexProgram
    from convexrelu.solvers import get_solver

    rng = np.random.default_rng(6)
    X = rng.standard_normal((80, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(float)
    pats = sample_patterns(X, 60, random_state=0, bias=True)
    prog = ConvexProgram(X, y, pats, loss="logistic", alpha=0.05, bias=True)
    calls, certs = _record_certificates(monkeypatch)
    sols = {}
    for lim in (None, 30):
        monkeypatch.setattr(_dual, "_PROJECTION_COMPILED_AFTER", lim)
        certs.clear()
        sols[lim] = get_solver("relu", tol=1e-8).solve(prog)
        before = [b for b, _ in certs]
        assert len(certs) >= 3 and before[0] == 0
        assert before == sorted(before) and before[-1] > 30
        for b, c in certs:
            assert c  # each certificate refines
            if lim is None:
                assert not any(c)
            elif b >= lim:
                assert all(c)
    assert sols[30].objective == pytest.approx(sols[None].objective, rel=1e-9)
    assert sols[30].info["rel_gap"] <= 1e-8
    # a certificate evaluated alone with such multipliers: compiled from the start
    m = _dual.PricingMultipliers()
    m.refined_before = 30
    lam = rng.standard_normal(80)
    lam -= lam.mean()
    calls.clear()
    a = _dual.dual_constraint(pats, X, lam, penalize_bias=False, multipliers=m)
    assert calls and all(calls) and len(calls) == a.n_refined
    monkeypatch.setattr(_dual, "_PROJECTION_COMPILED_AFTER", None)
    b = _dual.dual_constraint(pats, X, lam, penalize_bias=False)
    assert a.value == pytest.approx(b.value, rel=1e-9)


def test_grown_fits_restricted_certificates_count_the_listed_pricing(monkeypatch, kernels):
    """A default estimator fit over sampled patterns (the working-set loop priced by the
    listed patterns and a local search): its restricted certificates count the listed
    pricing's refinements, and project compiled once those reach the limit."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    import convexrelu
    from convexrelu.certificates import _dual

    X, y = load_breast_cancer(return_X_y=True)
    X, y = StandardScaler().fit_transform(X)[:120, :6], y[:120]
    calls, certs = _record_certificates(monkeypatch)
    monkeypatch.setattr(_dual, "_PROJECTION_COMPILED_AFTER", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convexrelu.ConvexReLUClassifier(alpha=1e-3, random_state=0).fit(X, y)
    later = [c for b, c in certs if b >= 100]
    assert later and max(b for b, _ in certs) > 100
    assert all(all(c) for c in later) and any(c for c in later)


def test_compiled_projection_unavailable_falls_back_to_numpy(monkeypatch):
    """No kernel (numba missing or unable to build): ``compiled=True`` is numpy's path,
    with the same results."""
    from convexrelu.certificates._dual import _project_cone

    monkeypatch.setitem(_ldp_kernel._COMPILED, "_nnls_core", None)
    rng = np.random.default_rng(7)
    for Gn, c in _cones(rng, 8):
        a = _project_cone(Gn, c, compiled=True)
        b = _project_cone(Gn, c, compiled=False)
        assert a[0] == b[0] and np.array_equal(a[2], b[2])


# ------------------------------------------------------- the compiled bounded least squares
def _bvls_cases(rng, n_cases=80):
    for trial in range(n_cases):
        m, n = int(rng.integers(1, 25)), int(rng.integers(1, 120))
        A = rng.standard_normal((m, n))
        if trial % 4 == 1:  # repeated columns
            A[:, n // 2:] = A[:, :n - n // 2]
        if trial % 4 == 2:  # rank deficient
            r = max(1, m // 3)
            A = rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
        b = 3.0 * rng.standard_normal(m)
        upper = rng.uniform(0.0, 2.0, n)
        upper[rng.random(n) < 0.1] = 0.0  # boxes of zero width
        # the DCA step's start: the bounds of the current point's pattern, and a few
        # interior values
        w0 = np.where(rng.random(n) < 0.5, upper, 0.0)
        if trial % 5 == 4:
            w0 = np.where(rng.random(n) < 0.2, 0.5 * upper, w0)
        yield A, b, upper, w0


def test_compiled_bvls_matches_numpy_and_scipy(monkeypatch, kernels):
    """``_search._bvls`` compiled (``_ldp_kernel._bvls_core``: the free columns' QR factor
    updated) against its numpy path and scipy's BVLS: a point in the box with the same
    residual norm (the residual of a least-squares problem over a box is unique)."""
    from scipy.optimize import lsq_linear

    from convexrelu.certificates import _search

    rng = np.random.default_rng(8)
    for A, b, upper, w0 in _bvls_cases(rng):
        monkeypatch.setattr(_search, "_BVLS_COMPILED_FROM", 0)
        w, ok = _search._bvls(A, b, upper, w0)
        monkeypatch.setattr(_search, "_BVLS_COMPILED_FROM", 10 ** 12)
        wn, okn = _search._bvls(A, b, upper, w0)
        ref = lsq_linear(A, b, bounds=(np.zeros_like(upper), np.maximum(upper, 1e-300)),
                         method="bvls").x
        assert ok and okn
        assert np.all(w >= 0) and np.all(w <= upper)
        r, rn, rr = (np.linalg.norm(A @ x - b) for x in (w, wn, ref))
        assert r == pytest.approx(rn, rel=1e-9, abs=1e-10)
        # scipy's interior solve can stop a little above the optimum
        assert r <= rr * (1 + 1e-8) + 1e-10
        # optimality: no bound's gradient points inward (beyond rounding)
        s = A.T @ (b - A @ w)
        live = upper > 1e-12 * upper.max(initial=0.0)
        tol = 1e-9 * (np.linalg.norm(A, axis=0) * (np.linalg.norm(b) + 1.0)) + 1e-12
        assert np.all(s[live & (w <= 0)] <= tol[live & (w <= 0)])
        assert np.all(-s[live & (w >= upper)] <= tol[live & (w >= upper)])


def test_compiled_bvls_reports_its_iteration_limit(kernels):
    """Out of iterations: ``ok`` is False and the point is still in the box."""
    rng = np.random.default_rng(9)
    A = rng.standard_normal((10, 40))
    b = 5.0 * rng.standard_normal(10)
    upper = np.ones(40)
    w, ok = _ldp_kernel.bvls_kernel()(A, b, upper, np.zeros(40), 1)
    assert not ok and np.all((w >= 0) & (w <= upper))
    w, ok = _ldp_kernel.bvls_kernel()(A, b, upper, np.zeros(40), 1000)
    assert ok


def test_local_search_on_larger_data_runs_every_bvls_compiled(monkeypatch, kernels):
    """From ``_BVLS_COMPILED_DATA`` entries of data on, every DCA step's bounded least
    squares runs compiled, however small its matrix; below, none of them does (with the
    matrix-size rule switched off); the same maximiser's value either way."""
    from convexrelu.certificates import _search

    rng = np.random.default_rng(11)
    X = rng.standard_normal((300, 6))
    Xa = np.hstack([X, np.ones((300, 1))])
    lam = rng.standard_normal(300)
    lam -= lam.mean()
    kernel = _ldp_kernel.bvls_kernel()
    compiled, solves = [], []

    def counted(*args):
        compiled.append(args[0].size)
        return kernel(*args)

    orig = _search._bvls

    def spy(A, *args, **kwargs):
        solves.append(A.size)
        return orig(A, *args, **kwargs)

    monkeypatch.setattr(_ldp_kernel, "bvls_kernel", lambda: counted)
    monkeypatch.setattr(_search, "_bvls", spy)
    monkeypatch.setattr(_search, "_BVLS_COMPILED_FROM", 10 ** 12)
    vals = []
    for lim, want in ((Xa.size + 1, "numpy"), (Xa.size, "compiled")):
        compiled.clear()
        solves.clear()
        monkeypatch.setattr(_search, "_BVLS_COMPILED_DATA", lim)
        vals.append(_search.search_violators(Xa, lam, free_bias=True, random_state=0)[0]
                    .value)
        assert solves and max(solves) < 10 ** 12
        if want == "numpy":
            assert compiled == []
        else:
            assert compiled == solves  # every one, each the first call of its solve
    assert vals[0] == pytest.approx(vals[1], rel=1e-6)


def test_local_search_is_the_same_search_with_the_compiled_bvls(monkeypatch, kernels):
    """``search_violators`` with the DCA steps' BVLS compiled: a maximiser of the same
    value (up to rounding) as with numpy's, on a dual point with many negative rows."""
    from convexrelu.certificates import _search

    rng = np.random.default_rng(10)
    X = rng.standard_normal((400, 6))
    Xa = np.hstack([X, np.ones((400, 1))])
    lam = rng.standard_normal(400)
    lam -= lam.mean()
    calls = []
    kernel = _ldp_kernel.bvls_kernel()

    def counted(*args):
        calls.append(1)
        return kernel(*args)

    monkeypatch.setattr(_ldp_kernel, "bvls_kernel", lambda: counted)
    vals = []
    n_calls = []
    for lim in (0, 10 ** 12):
        monkeypatch.setattr(_search, "_BVLS_COMPILED_FROM", lim)
        for free in (False, True):
            res = _search.search_violators(Xa, lam, free_bias=free, random_state=0)
            vals.append(res[0].value)
        n_calls.append(len(calls))
    assert vals[0] == pytest.approx(vals[2], rel=1e-6)
    assert vals[1] == pytest.approx(vals[3], rel=1e-6)
    assert n_calls[0] > 0 and n_calls[1] == n_calls[0]  # compiled, then numpy only

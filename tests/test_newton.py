"""Tests of the shared Newton pieces (convexrelu._newton)."""

import numpy as np
import pytest

from convexrelu._newton import (backtrack, boundary_steps, damped_cholesky, max_step,
                                newton_step, norm_derivatives)


def test_norm_derivatives_match_finite_differences():
    rng = np.random.default_rng(0)
    P = rng.standard_normal((4, 3))
    beta, h = 0.7, 1e-6
    r, U, H = norm_derivatives(P, beta)
    np.testing.assert_allclose(r, np.linalg.norm(P, axis=1), rtol=1e-14)
    for j in range(4):
        f = lambda p: beta * np.linalg.norm(p)  # noqa: E731
        E = np.eye(3)
        g = np.array([(f(P[j] + h * e) - f(P[j] - h * e)) / (2 * h) for e in E])
        np.testing.assert_allclose(beta * U[j], g, atol=1e-8)
        q = 1e-4
        Hfd = np.array([[(f(P[j] + q * a + q * b) - f(P[j] + q * a - q * b)
                          - f(P[j] - q * a + q * b) + f(P[j] - q * a - q * b)) / (4 * q * q)
                         for b in E] for a in E])
        np.testing.assert_allclose(H[j], Hfd, atol=1e-6)
    # the smoothed norm, and no Hessian on request
    r2, U2, H2 = norm_derivatives(P, beta, floor=0.5, hessian=False)
    assert H2 is None
    np.testing.assert_allclose(r2, np.sqrt(np.sum(P ** 2, axis=1) + 0.25), rtol=1e-14)


def test_newton_step_solves_and_damps_a_singular_matrix():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((6, 4))
    H = A.T @ A
    g = rng.standard_normal(4)
    np.testing.assert_allclose(newton_step(H, g), -np.linalg.solve(H, g), rtol=1e-8)
    # rank one (semi-definite): the shift makes the factorisation succeed
    v = rng.standard_normal(4)
    Hs = np.outer(v, v)
    step = newton_step(Hs, v)
    assert step is not None and np.all(np.isfinite(step))
    assert damped_cholesky(-np.eye(3)) is None  # negative definite: no small shift helps


def test_newton_step_in_a_work_buffer_is_the_same():
    """With ``work`` the shifted matrix is factored in a buffer kept there: the same
    steps (also of a semi-definite matrix that needs the shift), no new factor array,
    and ``H`` left untouched."""
    rng = np.random.default_rng(2)
    A = rng.standard_normal((9, 5))
    v = rng.standard_normal(5)
    work: dict = {}
    for H in (A.T @ A, np.outer(v, v)):
        H0 = H.copy()
        g = rng.standard_normal(5)
        for _ in range(2):
            np.testing.assert_allclose(newton_step(H, g, work=work), newton_step(H, g),
                                       rtol=1e-12, atol=1e-12)
            cf = damped_cholesky(H, work=work)
            assert np.shares_memory(cf[0], work["cholesky"])
        np.testing.assert_array_equal(H, H0)
    assert damped_cholesky(-np.eye(3), work=work) is None


def test_boundary_steps_and_max_step():
    s = np.array([1.0, 2.0, 0.0, -1e-3, 5.0])
    ds = np.array([-1.0, -4.0, 1.0, -1.0, -1.0])
    t = boundary_steps(s, ds)
    np.testing.assert_array_equal(t, [1.0, 0.5, np.inf, 0.0, 5.0])
    assert max_step(s, ds) == 0.0
    mask = np.array([True, True, True, False, False])
    assert max_step(s, ds, mask) == 0.5
    assert max_step(s, np.ones(5)) == np.inf


def test_backtrack_armijo():
    def f(t):
        return (t - 0.3) ** 2, t

    f0, slope = f(0.0)[0], -0.6  # f'(0)
    t, val, payload = backtrack(f, f0, slope)
    assert t == 0.5 and payload == 0.5 and val <= f0 + 1e-4 * t * slope
    # a single test (max_tries=1) that fails
    assert backtrack(f, f0, slope, t=1.0, max_tries=1) is None
    # an ascent direction is never accepted, except flat steps below flat_below
    assert backtrack(lambda t: (f0 + t, None), f0, 1.0, max_tries=5) is None
    flat = backtrack(lambda t: (f0, None), f0, -1.0, t=1e-4, flat_below=1e-3)
    assert flat is not None and flat[0] == pytest.approx(1e-4)


def test_spd_solver_mixed_precision_is_accurate_and_falls_back():
    """spd_solver: float32 factor refined once in float64 where H is well conditioned
    (order >= 512), the float64 factor where it is not or H is small; None if H is not
    positive definite."""
    from convexrelu._newton import spd_solver

    rng = np.random.default_rng(0)
    n = 600
    A = rng.standard_normal((n, 2 * n)) / np.sqrt(2 * n)
    B = rng.standard_normal((n, 3))
    # N = I + A A^T (the Woodbury matrix of the gated polish): well conditioned
    H = np.eye(n) + A @ A.T
    solve = spd_solver(H)
    X = solve(B)
    assert solve.float32_solves == 1
    assert np.linalg.norm(H @ X - B) <= 1e-9 * np.linalg.norm(B)
    # ill conditioned (condition 1e7, 1e12): the refinement step is too large or the
    # float32 factor fails; the float64 factor of damped_cholesky answers
    from scipy.linalg import cho_solve

    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    for cond in (1e7, 1e12):
        Hb = (Q * np.logspace(0, np.log10(cond), n)) @ Q.T
        Hb = (Hb + Hb.T) / 2
        solve = spd_solver(Hb)
        X = solve(B)
        assert solve.float32_solves == 0
        np.testing.assert_allclose(X, cho_solve(damped_cholesky(Hb), B), rtol=1e-10,
                                   atol=1e-12)
    # small: float64 only
    small = spd_solver(H[:50, :50])
    Xs = small(B[:50])
    assert small.float32_solves == 0
    np.testing.assert_allclose(H[:50, :50] @ Xs, B[:50], atol=1e-12)
    # not positive definite (after every shift damped_cholesky tries)
    assert spd_solver(-np.eye(600)) is None


def test_spd_solver_work_buffer_is_reused_and_gives_the_same_solves():
    """spd_solver(H, work): the float32 factor is formed in the caller's buffer (no new
    ``n x n`` array per call) and the solves equal those without it; H is not modified."""
    from convexrelu._newton import spd_solver, work_buffer

    rng = np.random.default_rng(1)
    n = 600
    work: dict = {}
    buf = None
    for scale in (1.0, 3.0):
        A = rng.standard_normal((n, 2 * n)) / np.sqrt(2 * n)
        H = np.eye(n) + scale * (A @ A.T)
        H0 = H.copy()
        B = rng.standard_normal((n, 4))
        Xw = spd_solver(H, work)(B)
        X = spd_solver(H)(B)
        np.testing.assert_allclose(Xw, X, rtol=1e-12, atol=1e-14)
        assert np.linalg.norm(H @ Xw - B) <= 1e-9 * np.linalg.norm(B)
        np.testing.assert_array_equal(H, H0)
        if buf is None:
            buf = work["spd_f32"]
        assert work["spd_f32"] is buf and buf.dtype == np.float32  # the same buffer
    # work_buffer: kept per key, shape and dtype; None without a dict
    assert work_buffer(None, "x", (3, 3)) is None
    a = work_buffer(work, "x", (3, 3))
    assert work_buffer(work, "x", (3, 3)) is a
    assert work_buffer(work, "x", (4, 3)) is not a
    assert work_buffer(work, "x", (4, 3), np.float32).dtype == np.float32


def test_work_buffer_that_grows_serves_varying_shapes_from_one_array():
    """``work_buffer(grow=True)``: a C-ordered view of the front of one flat array for
    shapes that change from call to call (a Woodbury matrix over a varying subset of
    samples), replaced only by a larger one."""
    from convexrelu._newton import work_buffer

    work: dict = {}
    a = work_buffer(work, "C", (5, 5), grow=True)
    assert a.shape == (5, 5) and a.flags.c_contiguous
    flat = work["C"]
    b = work_buffer(work, "C", (3, 4), grow=True)  # smaller: the same memory
    assert b.shape == (3, 4) and b.flags.c_contiguous and np.shares_memory(b, flat)
    assert work["C"] is flat
    c = work_buffer(work, "C", (6, 6), grow=True)  # larger: a new array
    assert c.shape == (6, 6) and work["C"] is not flat and work["C"].size == 36
    assert work_buffer(work, "C", (2, 2), np.float32, grow=True).dtype == np.float32
    assert work_buffer(None, "C", (2, 2), grow=True) is None


def test_weighted_gram_in_row_chunks_matches_the_scaled_design(monkeypatch):
    """``A^T diag(h) A`` over chunks of rows (one buffer, BLAS syrk into one output)
    equals the product of the whole scaled design, with negative weights as zero, both
    triangles filled and C-ordered; the buffer is reused as the shape changes."""
    import convexrelu._newton as nw

    rng = np.random.default_rng(3)
    work = {}
    for chunk in (1 << 21, 300 * 7):  # one chunk; several (256 rows, and a remainder)
        monkeypatch.setattr(nw, "_GRAM_CHUNK_ENTRIES", chunk)
        for n, c in ((1000, 7), (613, 7), (40, 12), (0, 5)):
            A = rng.standard_normal((n, c))
            h = rng.random(n) - 0.2  # some negative: count as zero
            B = A * np.sqrt(np.maximum(h, 0.0))[:, None]
            Q = nw.weighted_gram(A, h, work)
            assert Q.flags.c_contiguous and Q.shape == (c, c)
            np.testing.assert_array_equal(Q, Q.T)
            np.testing.assert_allclose(Q, B.T @ B, rtol=1e-13, atol=1e-12)
            np.testing.assert_allclose(nw.weighted_gram(A, h), Q, rtol=1e-13, atol=1e-12)
    assert list(work) == ["weighted_gram"]


def test_weighted_gram_of_a_design_given_by_its_rows(monkeypatch):
    """A design never formed whole: ``(n, c, fill)`` gives the same Gram matrix as the
    array, over several chunks."""
    import convexrelu._newton as nw

    monkeypatch.setattr(nw, "_GRAM_CHUNK_ENTRIES", 256 * 9)
    rng = np.random.default_rng(4)
    A = rng.standard_normal((700, 9))
    h = rng.random(700)
    calls = []

    def fill(a, b, s, out):
        calls.append((a, b))
        return np.multiply(A[a:b], s[:, None], out=out)
    Q = nw.weighted_gram((700, 9, fill), h)
    assert calls == [(0, 256), (256, 512), (512, 700)]
    np.testing.assert_allclose(Q, nw.weighted_gram(A, h), rtol=1e-14, atol=1e-13)
    np.testing.assert_allclose(Q, A.T @ (h[:, None] * A), rtol=1e-12, atol=1e-12)

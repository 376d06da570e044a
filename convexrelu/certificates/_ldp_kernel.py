"""Compiled least-distance program of the branch and bound's node bound (optional numba).

The node bound of :mod:`convexrelu.certificates._bnb` solves, several times per node, the
least-distance program ``min ||y||^2 + eps ||sigma||^2`` s.t. ``Vu y + HF sigma >= c``,
``0 <= sigma <= 1`` as a non-negative least-squares problem (Lawson and Hanson, *Solving
Least Squares Problems*, 1974, ch. 23), over a working set of rays, followed by an exact
solve of its KKT system on the active set. The programs are tiny (a median of 11 rows and
26 columns at rank 7), so in numpy and scipy most of their cost is the interpreter: about
a hundred small array calls per program. :func:`ldp_solve` is the same computation in one
compiled function, with its own Lawson-Hanson NNLS on an incrementally updated QR factor
(Householder to add a column, Givens rotations to remove one).

numba is optional (the ``fast`` extra): :func:`kernel` returns None without it, and the
branch and bound then runs its numpy path. The compiled code is cached on disk
(``cache=True``), so the compilation (about 12 s) is paid once per installation. A search
compiles (or loads) it before its clock starts, and each worker process loads it (about
0.6 s, inside the clock) before its first batch; a worker without the cache (a Dask
worker on another machine) compiles it there.

Every output only feeds the node's Lagrangian certificate, which is valid for any
multipliers: an inaccurate solve loosens a bound, never invalidates it.

Two more active-set solvers share the NNLS's updated QR factor, each compiled on first
use (:func:`projection_kernel`, :func:`bvls_kernel`; about 9 and 5 s, then cached):

* :func:`_nnls_core`, the NNLS with a warm start and an early stop, is the cone projection
  of ``certificates._dual._project_cone`` (every pattern's value in pricing and in the
  certificates), about 4x faster than its numpy loop on breast cancer's 569 x 31 cones;
  a pass switches to it after ``_dual._compiled_after`` refinements (1,000 on cones of
  that size, proportionally fewer on larger ones: about 150 on digits' 1,797 x 65). Its
  bounds are recomputed in numpy from the returned multipliers, so they stay certified
  whatever the rounding.
* :func:`_bvls_core`, bounded-variable least squares from a warm start, is the DCA step
  of the local search (``certificates._search._bvls``) on matrices of at least
  ``_search._BVLS_COMPILED_FROM`` entries, and on every matrix of a search whose data
  has at least ``_search._BVLS_COMPILED_DATA`` entries.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

_KERNEL = None  # the compiled ldp_solve, built on first use
_LOCK = threading.Lock()
NEEDS_LSTSQ = 3  # ldp_solve's status: solved, but the polish's KKT system is singular
_TRIED = False
_COMPILED = {}  # the other compiled helpers (projection_kernel, bvls_kernel) by name


def _nnls(A, b, maxiter):
    """``argmin_{x >= 0} ||A x - b||`` by Lawson and Hanson's active-set method.

    The passive columns' QR factor ``Q^T A_P = R`` is updated as columns enter
    (one Householder reflection) and leave (Givens rotations). Returns ``(x, ok)``;
    ``ok`` is False when ``maxiter`` iterations (column additions and inner steps
    together) did not finish.
    """
    x, status = _nnls_core(A, b, maxiter, np.zeros(0, np.int64), -1.0, 0.0, 0.0, False)
    return x, status != 1


def _stop_bound(res, wlast, R, all_active):
    """The certified bound of the residual ``u = -res`` of :func:`_nnls_core`'s early stop:
    ``||u||`` (``wlast == 0``), else the free-bias bound of ``certificates._dual._upper``
    at ``r = (u_{1:d}, u_{d+1} / wlast)``."""
    m = res.shape[0]
    if wlast == 0.0:
        s = 0.0
        for i in range(m):
            s += res[i] * res[i]
        return np.sqrt(s)
    s = 0.0
    for i in range(m - 1):
        s += res[i] * res[i]
    base = np.sqrt(s)
    eps = -res[m - 1] / wlast
    if all_active and eps > 0:
        if eps > 1e-12 * (1.0 + base):
            return np.inf
        eps = 0.0
    return base + abs(eps) * R


def _add_column(A, j, Q, R, qtb, order, p):
    """Add column ``j`` to the factor as its ``p``-th: ``v = Q^T a_j``, then a Householder
    reflection zeroes ``v[p+1:]``. False (nothing changed) where ``a_j`` is numerically in
    the span of the passive columns."""
    m = A.shape[0]
    v = np.zeros(m)
    for r in range(m):
        a_rj = A[r, j]
        if a_rj != 0.0:
            for i in range(m):
                v[i] += Q[r, i] * a_rj
    sig = 0.0
    for i in range(p, m):
        sig += v[i] * v[i]
    sig = np.sqrt(sig)
    cn = 0.0
    for i in range(m):
        cn += A[i, j] * A[i, j]
    cn = np.sqrt(cn)
    if sig <= 1e-12 * cn:
        return False
    alpha = -sig if v[p] >= 0 else sig
    h = v[p:].copy()
    h[0] -= alpha
    hh = 0.0
    for i in range(h.shape[0]):
        hh += h[i] * h[i]
    if hh > 0:
        # Q <- Q H on columns p.., qtb <- H qtb on rows p..
        for r in range(m):
            s = 0.0
            for i in range(h.shape[0]):
                s += Q[r, p + i] * h[i]
            f = 2.0 * s / hh
            for i in range(h.shape[0]):
                Q[r, p + i] -= f * h[i]
        s = 0.0
        for i in range(h.shape[0]):
            s += qtb[p + i] * h[i]
        f = 2.0 * s / hh
        for i in range(h.shape[0]):
            qtb[p + i] -= f * h[i]
    for i in range(p):
        R[i, p] = v[i]
    R[p, p] = alpha
    for i in range(p + 1, m):
        R[i, p] = 0.0
    order[p] = j
    return True


def _nnls_core(A, b, maxiter, init, stop_below, wlast, R_, all_active):
    """:func:`_nnls` with a warm start and an early stop (the cone projections of
    ``certificates._dual._project_cone``).

    ``init``: columns to start passive (those numerically dependent on the ones before are
    skipped; the set is then shrunk, as in Lawson and Hanson's inner loop, until its
    least-squares coefficients are all positive). ``stop_below >= 0``: before each column
    enters, stop once the bound :func:`_stop_bound` of the residual (``wlast``, ``R_``,
    ``all_active``) is at most it. Returns ``(x, status)``: 0 solved, 1 the iterations ran
    out, 2 stopped early.
    """
    m, n = A.shape
    x = np.zeros(n)
    Q = np.eye(m)
    R = np.zeros((m, min(m, n)))
    qtb = b.copy()
    order = np.empty(min(m, n), np.int64)  # passive columns, in the factor's order
    passive = np.zeros(n, np.bool_)
    blocked = np.zeros(n, np.bool_)  # dependent on the passive set: skip until x moves
    p = 0
    eps = np.finfo(np.float64).eps
    # w_j = a_j^T r is compared with a tolerance in a_j's own scale (columns of very
    # different norms: a small column's significant w_j is not mistaken for zero)
    bnorm = 0.0
    for i in range(m):
        bnorm = max(bnorm, abs(b[i]))
    coltol = np.empty(n)
    for j in range(n):
        s = 0.0
        for i in range(m):
            s += abs(A[i, j])
        coltol[j] = 10.0 * max(m, n) * eps * max(s * bnorm, 1e-300)
    z = np.zeros(min(m, n))
    for k in range(init.shape[0]):  # the warm start's passive set
        j = init[k]
        if p >= m or j < 0 or j >= n or passive[j]:
            continue
        if _add_column(A, j, Q, R, qtb, order, p):
            passive[j] = True
            p += 1
    none = np.zeros(0)
    while p > 0:  # shrink it until its coefficients are positive
        _backsolve(R, qtb, p, z)
        if _take_inside(z, x, order, p, none):
            break
        k = p - 1
        while k >= 0:
            if not z[k] > 0.0:
                passive[order[k]] = False
                _remove_column(Q, R, qtb, order, p, k)
                p -= 1
            k -= 1
    it = 0
    while True:
        it += 1
        if it > maxiter:
            return x, 1
        # dual w = A^T (b - A x), in loops (tiny sizes: BLAS calls cost more than this)
        res = b.copy()
        for k in range(p):
            jj = order[k]
            xj = x[jj]
            for i in range(m):
                res[i] -= A[i, jj] * xj
        if stop_below >= 0.0 and _stop_bound(res, wlast, R_, all_active) <= stop_below:
            return x, 2
        w = np.zeros(n)
        for i in range(m):
            ri = res[i]
            if ri != 0.0:
                for j in range(n):
                    w[j] += A[i, j] * ri
        jbest = -1
        wbest = 0.0
        for j in range(n):
            if not passive[j] and not blocked[j] and w[j] > coltol[j] and w[j] > wbest:
                wbest = w[j]
                jbest = j
        if jbest < 0 or p >= m:
            return x, 0
        j = jbest
        if not _add_column(A, j, Q, R, qtb, order, p):
            blocked[j] = True  # (numerically) in the span of the passive columns
            continue
        passive[j] = True
        p += 1
        # the new column must enter with a positive coefficient (else: reject it)
        _backsolve(R, qtb, p, z)
        if not z[p - 1] > 0.0:  # (the factor of the first p - 1 columns is unchanged)
            p -= 1
            passive[j] = False
            blocked[j] = True
            continue
        while True:
            it += 1
            if it > maxiter:
                return x, 1
            if _take_inside(z, x, order, p, none):
                break
            # step from x towards z until the first passive coefficient reaches zero
            step = 1.0
            kmin = -1
            for k in range(p):
                if not z[k] > 0.0:
                    xk = x[order[k]]
                    r_ = xk / (xk - z[k]) if xk - z[k] > 0 else 0.0
                    if r_ < step or kmin < 0:
                        step = r_
                        kmin = k
            for k in range(p):
                jj = order[k]
                x[jj] += step * (z[k] - x[jj])
            x[order[kmin]] = 0.0
            # remove every passive column at zero (the one that stopped the step first)
            k = p - 1
            while k >= 0:
                jj = order[k]
                if k == kmin or x[jj] <= 0.0:
                    x[jj] = 0.0
                    passive[jj] = False
                    _remove_column(Q, R, qtb, order, p, k)
                    p -= 1
                k -= 1
            _backsolve(R, qtb, p, z)
        blocked[:] = False


def _bvls_core(A, b, upper, w0, maxiter):
    """``min_{0 <= w <= upper} ||A w - b||`` warm-started at ``w0``: the active-set method
    of ``certificates._search._bvls`` (Stark and Parker's BVLS, one bound freed at a time,
    largest violation first), compiled, with the free columns' QR factor updated as they
    enter (Householder) and leave (Givens) instead of a least-squares solve per step.
    Columns numerically dependent on the free ones stay where they are until the point
    moves. Returns ``(w, ok)``; ``w`` is always in the box; ``ok`` False when ``maxiter``
    outer iterations did not finish.
    """
    m, n = A.shape
    w = np.empty(n)
    umax = 0.0
    for j in range(n):
        umax = max(umax, upper[j])
    # boxes of (nearly) zero width stay at 0: freeing them only cycles between the bounds
    live = np.empty(n, np.bool_)
    for j in range(n):
        live[j] = upper[j] > 1e-12 * umax
        w[j] = min(max(w0[j], 0.0), upper[j]) if live[j] else 0.0
    col = np.zeros(n)
    for i in range(m):
        for j in range(n):
            col[j] += A[i, j] * A[i, j]
    for j in range(n):
        col[j] = np.sqrt(col[j])
    bn = 0.0
    for i in range(m):
        bn += b[i] * b[i]
    bn = np.sqrt(bn)
    Q = np.eye(m)
    R = np.zeros((m, m))
    qtb = np.zeros(m)
    order = np.empty(m, np.int64)
    z = np.zeros(m)
    p = 0
    free = np.zeros(n, np.bool_)
    blocked = np.zeros(n, np.bool_)
    fixed = np.zeros(m)
    it = 0
    while it < maxiter:  # (a column found dependent does not count: at most n of them)
        Aw = np.dot(A, w)  # BLAS (gemv)
        nAw = 0.0
        for i in range(m):
            nAw += Aw[i] * Aw[i]
        den = bn + np.sqrt(nAw)
        s = np.dot(b - Aw, A)  # minus the gradient, A^T (b - A w)
        jbest = -1
        vbest = 1e-13
        for j in range(n):
            if not live[j] or free[j] or blocked[j]:
                continue
            v = 0.0
            if w[j] <= 0.0:
                v += s[j]
            if w[j] >= upper[j]:
                v -= s[j]
            if 0.0 < w[j] < upper[j]:  # fixed inside its box (from w0): either sign
                v = abs(s[j])
            v /= col[j] * den + 1e-300
            if v > vbest:
                vbest = v
                jbest = j
        if jbest < 0:
            return w, True
        j = jbest
        if p >= m or not _add_column(A, j, Q, R, qtb, order, p):
            blocked[j] = True
            continue
        it += 1
        free[j] = True
        p += 1
        # A w over the variables not free, updated as variables are fixed
        for i in range(m):
            fixed[i] = Aw[i]
        for k in range(p):
            jj = order[k]
            for i in range(m):
                fixed[i] -= A[i, jj] * w[jj]
        for _inner in range(n + 1):
            for i in range(m):  # qtb = Q^T (b - fixed)
                t = 0.0
                for r in range(m):
                    t += Q[r, i] * (b[r] - fixed[r])
                qtb[i] = t
            _backsolve(R, qtb, p, z)
            if _take_inside(z, w, order, p, upper):
                break
            # step from w_F towards z until the first bound
            step = 1.0
            for k in range(p):
                jj = order[k]
                d = z[k] - w[jj]
                if z[k] < 0.0 and d < 0.0:
                    step = min(step, -w[jj] / d)
                elif z[k] > upper[jj] and d > 0.0:
                    step = min(step, (upper[jj] - w[jj]) / d)
            step = max(step, 0.0)
            nhit = 0
            for k in range(p):
                jj = order[k]
                w[jj] = min(max(w[jj] + step * (z[k] - w[jj]), 0.0), upper[jj])
                if w[jj] <= 1e-14 * (1.0 + upper[jj]) or w[jj] >= upper[jj] * (1.0 - 1e-14):
                    nhit += 1
            if nhit == 0:  # rounding: fix the variable nearest its bound
                kbest = 0
                gap = np.inf
                for k in range(p):
                    jj = order[k]
                    g = min(w[jj], upper[jj] - w[jj])
                    if g < gap:
                        gap = g
                        kbest = k
                jj = order[kbest]
                w[jj] = 0.0 if w[jj] <= upper[jj] - w[jj] else upper[jj]
            k = p - 1
            while k >= 0:
                jj = order[k]
                lo = w[jj] <= 1e-14 * (1.0 + upper[jj])
                hi = w[jj] >= upper[jj] * (1.0 - 1e-14)
                if lo or hi:
                    w[jj] = 0.0 if lo else upper[jj]
                    for i in range(m):
                        fixed[i] += A[i, jj] * w[jj]
                    free[jj] = False
                    _remove_column(Q, R, qtb, order, p, k)
                    p -= 1
                k -= 1
            if p == 0:
                break
        blocked[:] = False
    return w, False


def _take_inside(z, x, order, p, upper):
    """``x[order[:p]] = z[:p]`` and True where every ``z[k]`` lies in its box, else False
    (``x`` unchanged): ``z > 0`` with ``upper`` empty (NNLS), ``0 <= z <= upper`` (of the
    column) otherwise. A NaN is outside."""
    for k in range(p):
        if upper.shape[0] == 0:
            if not z[k] > 0.0:
                return False
        elif not 0.0 <= z[k] <= upper[order[k]]:
            return False
    for k in range(p):
        x[order[k]] = z[k]
    return True


def _backsolve(R, qtb, p, z):
    """``z[:p] = R[:p, :p]^{-1} qtb[:p]`` (upper triangular)."""
    for i in range(p - 1, -1, -1):
        s = qtb[i]
        for k in range(i + 1, p):
            s -= R[i, k] * z[k]
        z[i] = s / R[i, i]


def _remove_column(Q, R, qtb, order, p, k):
    """Drop the factor's column ``k`` and restore the triangle with Givens rotations."""
    m = Q.shape[0]
    for c in range(k, p - 1):
        order[c] = order[c + 1]
        for i in range(m):
            R[i, c] = R[i, c + 1]
    for i in range(m):
        R[i, p - 1] = 0.0
    for c in range(k, p - 1):
        a, bb = R[c, c], R[c + 1, c]
        if bb == 0.0:
            continue
        r = np.hypot(a, bb)
        cs, sn = a / r, bb / r
        for col in range(c, p - 1):
            u, v = R[c, col], R[c + 1, col]
            R[c, col] = cs * u + sn * v
            R[c + 1, col] = -sn * u + cs * v
        R[c + 1, c] = 0.0
        u, v = qtb[c], qtb[c + 1]
        qtb[c] = cs * u + sn * v
        qtb[c + 1] = -sn * u + cs * v
        for i in range(m):
            u, v = Q[i, c], Q[i, c + 1]
            Q[i, c] = cs * u + sn * v
            Q[i, c + 1] = -sn * u + cs * v


def _lu_solve(K, rhs, min_pivot):
    """``K^{-1} rhs`` by LU with partial pivoting; ``(x, ok)``, ``ok`` False where a pivot
    is zero or at most ``min_pivot`` times the largest (singular to working precision)."""
    n = K.shape[0]
    A = K.copy()
    x = rhs.copy()
    for c in range(n):
        piv = c
        big = abs(A[c, c])
        for r in range(c + 1, n):
            if abs(A[r, c]) > big:
                big = abs(A[r, c])
                piv = r
        if big == 0.0:
            return x, False
        if piv != c:
            for k in range(n):
                A[c, k], A[piv, k] = A[piv, k], A[c, k]
            x[c], x[piv] = x[piv], x[c]
        for r in range(c + 1, n):
            f = A[r, c] / A[c, c]
            if f != 0.0:
                for k in range(c + 1, n):
                    A[r, k] -= f * A[c, k]
                x[r] -= f * x[c]
    pmax = 0.0
    pmin = np.inf
    for c in range(n):
        pmax = max(pmax, abs(A[c, c]))
        pmin = min(pmin, abs(A[c, c]))
    if not pmin > min_pivot * pmax:
        return x, False
    for i in range(n - 1, -1, -1):
        s = x[i]
        for k in range(i + 1, n):
            s -= A[i, k] * x[k]
        x[i] = s / A[i, i]
    return x, True


def _norm_viol(Vu, HF, c, yy, ss, T):
    """``(||y||, max(c - Vu y - HF sigma)_+ T)``: a point's norm and priced violation."""
    r = c - Vu @ yy
    if HF.shape[1]:
        r = r - HF @ ss
    viol = 0.0
    for i in range(r.shape[0]):
        viol = max(viol, r[i])
    return np.sqrt(np.sum(yy * yy)), viol * T


def ldp_solve(Vu, c, HF, T, S, re, hint_rays, y0, rays_all, rays_start, rays_add,
              rays_passes, rays_tol, pivot):
    """The least-distance program of ``_NodeSolver._ldp``, compiled.

    ``S`` is the scale of ``c`` and ``re = sqrt(eps)``; ``hint_rays`` (int, possibly
    empty) and ``y0`` (empty: none) are the warm start; the ``rays_*`` constants are
    ``_bnb``'s ``_LDP_RAYS_*``. Returns ``(status, y, sigma, t, ||y||, violation * T,
    ray passes)``; status 0 is a solution, 1 an infeasible program, 2 a failed solve,
    :data:`NEEDS_LSTSQ` a solution before its polish, whose KKT system is singular (the
    caller polishes it by least squares; compiling ``lstsq`` would cost 3.5 s).
    """
    m, du = Vu.shape
    K = HF.shape[1]
    nr = du + K + 1
    nc = m + 2 * K
    E = np.zeros((nr, nc))
    for j in range(m):
        for i in range(du):
            E[i, j] = Vu[j, i]
        E[nr - 1, j] = c[j] / S
        for i in range(K):
            E[du + i, j] = HF[j, i] / (S * re)
    for i in range(K):
        E[du + i, m + i] = 1.0
        E[du + i, m + K + i] = -1.0
        E[nr - 1, m + K + i] = -re
    rhs = np.zeros(nr)
    rhs[nr - 1] = 1.0
    passes = 0
    y = np.zeros(du)
    sigma = np.zeros(K)
    t = np.zeros(m)
    u = np.zeros(nc)
    done = False
    if m > rays_all:
        W = np.zeros(m, np.bool_)
        lead = c.copy()
        if y0.shape[0] == du:
            lead = c - Vu @ y0
        ratio = np.empty(m)
        for j in range(m):
            s = 0.0
            for i in range(du):
                s += Vu[j, i] * Vu[j, i]
            ratio[j] = lead[j] / (np.sqrt(s) + 1e-300)
        k0 = min(m, rays_start + du)
        top = np.argsort(-ratio)
        for k in range(k0):
            W[top[k]] = True
        for k in range(hint_rays.shape[0]):
            if hint_rays[k] < m:
                W[hint_rays[k]] = True
        tol = rays_tol * S
        for _ in range(rays_passes):
            nw = 0
            for j in range(m):
                if W[j]:
                    nw += 1
            cols = np.empty(nw + 2 * K, np.int64)
            k = 0
            for j in range(m):
                if W[j]:
                    cols[k] = j
                    k += 1
            for j in range(2 * K):
                cols[nw + j] = m + j
            Ew = np.ascontiguousarray(E[:, cols])
            uw, ok = _nnls(Ew, rhs, 20 * cols.shape[0])
            if not ok:
                return 2, y, sigma, t, 0.0, 0.0, passes
            passes += 1
            denom = 1.0 - np.sum(Ew[nr - 1] * uw)
            feasible = np.isfinite(denom) and denom > 1e-12
            nworst = 0
            r = np.empty(0)
            if feasible:
                xs = (Ew[:nr - 1] @ uw) / denom
                r = c - S * (Vu @ xs[:du])
                if K:
                    r -= HF @ (xs[du:] / re)
                for j in range(m):
                    if W[j]:
                        r[j] = -np.inf
                    elif r[j] > tol:
                        nworst += 1
            if not feasible or nworst == 0:
                for k in range(cols.shape[0]):
                    u[cols[k]] = uw[k]
                done = True
                break
            if nworst > rays_add:
                top = np.argsort(-r)
                for k in range(rays_add):
                    W[top[k]] = True
            else:
                for j in range(m):
                    if r[j] > tol:
                        W[j] = True
    if not done:
        u, ok = _nnls(E, rhs, 20 * nc)
        if not ok:
            return 2, y, sigma, t, 0.0, 0.0, passes
    denom = 1.0 - np.sum(E[nr - 1] * u)
    if not (np.isfinite(denom) and denom > 1e-12):
        return 1, y, sigma, t, 0.0, 0.0, passes
    xs = (E[:nr - 1] @ u) / denom
    y = S * xs[:du]
    for i in range(K):
        sigma[i] = min(max(xs[du + i] / re, 0.0), 1.0)
    t = S * u[:m] / denom
    # polish: solve the KKT system of the active set exactly; keep the better point
    nrm, viol = _norm_viol(Vu, HF, c, y, sigma, T)
    tmax = 0.0
    for j in range(m):
        tmax = max(tmax, t[j])
    J = np.flatnonzero(t > 1e-9 * max(tmax, 1e-300))
    nJ = J.shape[0]
    if nJ == 0:
        return 0, y, sigma, t, nrm, viol, passes
    frac = (sigma > 1e-6) & (sigma < 1 - 1e-6)
    Ff = np.flatnonzero(frac)
    nF = Ff.shape[0]
    sb = np.where(sigma >= 0.5, 1.0, 0.0)
    VJ = Vu[J]
    Kk = np.zeros((nJ + nF, nJ + nF))
    Kk[:nJ, :nJ] = VJ @ VJ.T
    rhs2 = np.zeros(nJ + nF)
    for a in range(nJ):
        s = c[J[a]]
        for i in range(K):
            if not frac[i]:
                s -= HF[J[a], i] * sb[i]
        rhs2[a] = s
        for b in range(nF):
            Kk[a, nJ + b] = HF[J[a], Ff[b]]
            Kk[nJ + b, a] = HF[J[a], Ff[b]]
    sol, ok = _lu_solve(Kk, rhs2, pivot)
    if not ok:  # singular: the caller's minimum-norm polish (LAPACK, not compiled here)
        return NEEDS_LSTSQ, y, sigma, t, nrm, viol, passes
    if not np.all(np.isfinite(sol)):
        return 0, y, sigma, t, nrm, viol, passes
    sp_ = sb.copy()
    for b in range(nF):
        sp_[Ff[b]] = min(max(sol[nJ + b], 0.0), 1.0)
    yp = VJ.T @ sol[:nJ]
    nrm2, viol2 = _norm_viol(Vu, HF, c, yp, sp_, T)
    if nrm2 + viol2 < nrm + viol:
        t = np.zeros(m)
        for a in range(nJ):
            t[J[a]] = max(sol[a], 0.0)
        return 0, yp, sp_, t, nrm2, viol2, passes
    return 0, y, sigma, t, nrm, viol, passes


def as_argument(a):
    """``a`` as the kernel's array type: C-ordered, writable float64 (another layout,
    dtype or a read-only array would make numba compile a second signature)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    return a if a.flags.writeable else a.copy()


def kernel():
    """The compiled :func:`ldp_solve`, or None when numba is not installed (or fails).

    Thread-safe: the first caller builds it while the others wait.
    """
    global _KERNEL, _TRIED
    if _TRIED:
        return _KERNEL
    with _LOCK:
        if not _TRIED:
            _KERNEL = _build()
            _TRIED = True
    return _KERNEL


def projection_kernel():
    """The compiled :func:`_nnls_core` (the cone projections of pricing and of the
    certificates), or None when numba is not installed (or fails). Thread-safe."""
    return _compiled("_nnls_core", "cone projection")


def bvls_kernel():
    """The compiled :func:`_bvls_core` (the local search's DCA steps), or None when numba
    is not installed (or fails). Thread-safe."""
    return _compiled("_bvls_core", "bounded least squares")


def _compiled(name: str, what: str):
    """The compiled helper ``name``, built (or loaded from numba's cache) on first use."""
    if name in _COMPILED:
        return _COMPILED[name]
    with _LOCK:
        if name not in _COMPILED:
            _COMPILED[name] = _build_helper(name, what)
    return _COMPILED[name]


#: the helpers compiled by either build, shared (each compiled once per process)
_HELPERS = ("_take_inside", "_backsolve", "_remove_column", "_add_column", "_stop_bound",
            "_nnls_core", "_bvls_core", "_nnls", "_lu_solve", "_norm_viol")


def _jit():
    """numba's decorator, after the module's helpers were replaced by their compiled
    dispatchers (so that compiled callers call compiled code)."""
    import numba

    jit = numba.njit(cache=True, nogil=True)
    g = globals()
    for name in _HELPERS:
        if not hasattr(g[name], "py_func"):  # not compiled yet
            g[name] = jit(g[name])
    return jit


def _build():
    try:
        import numba  # noqa: F401
    except ImportError:
        return None
    try:
        k = _jit()(ldp_solve)
        # compile now (or load the on-disk cache), with the argument types of every call
        V = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
        k(V, np.ones(3), np.zeros((3, 1)), 1.0, 1.0, 1e-3, np.zeros(0, np.int64),
          np.zeros(0), 24, 4, 24, 8, 1e-12, 1e-10)
        return k
    except Exception as exc:  # e.g. no writable cache directory: the numpy path
        warnings.warn("numba is installed but the branch and bound's compiled node "
                      f"program could not be built ({type(exc).__name__}: {exc}); the "
                      "numpy path runs instead (the same program, about 1.7x slower). "
                      "Set NUMBA_CACHE_DIR to a writable folder to fix a cache error.",
                      RuntimeWarning, stacklevel=3)
        return None


def _build_helper(name: str, what: str):
    try:
        import numba  # noqa: F401
    except ImportError:
        return None
    try:
        _jit()
        k = globals()[name]
        # compile now (or load the on-disk cache), with the argument types of every call
        if name == "_nnls_core":
            k(np.eye(2), np.ones(2), 10, np.zeros(1, np.int64), 0.5, 0.0, 0.0, False)
        else:
            k(np.eye(2), np.ones(2), np.ones(2), np.zeros(2), 10)
        return k
    except Exception as exc:  # e.g. no writable cache directory: the numpy path
        warnings.warn(f"numba is installed but the compiled {what} could not be built "
                      f"({type(exc).__name__}: {exc}); the numpy path runs instead (the "
                      "same computation, slower). Set NUMBA_CACHE_DIR to a writable folder "
                      "to fix a cache error.", RuntimeWarning, stacklevel=3)
        return None

"""The pieces every Newton method of the package shares.

Three Newton-type methods minimise a smooth loss plus the group penalty
``beta * sum_j ||p_j||`` (``p_j`` the penalised coordinates of block ``j``, a
:class:`~convexrelu.regularizers.GroupL2Penalty`), which is smooth wherever every
``p_j != 0``:

* the structured interior point of the ReLU program (:mod:`convexrelu.solvers._relu_ipm`),
* the active-set polish of the gated program (:func:`convexrelu.solvers._fista.newton_polish`),
* the polish of a restricted ReLU program on its support and binding cone rows
  (:func:`convexrelu._polish.polish_support`).

They share, from this module:

* :func:`norm_derivatives`: the gradient ``beta u_j`` and the Hessian blocks
  ``beta / ||p_j|| (I - u_j u_j^T)`` (``u_j = p_j / ||p_j||``) of the penalty;
* :func:`newton_step`: the step ``-(H + mu I)^{-1} g`` of the regularised Newton (normal)
  equations by a Cholesky factorisation whose shift ``mu`` grows from a tiny multiple of
  the mean diagonal until the factorisation succeeds (:func:`damped_cholesky`);
* :func:`spd_solver`: solves with a large positive definite matrix (the gated polish's
  ``n x n`` Woodbury matrix, where its float32-only form fails its check) by a float32
  Cholesky factor refined once in float64, or the float64 factor where float32 is not
  accurate enough;
* :func:`lu_solve`: a small dense solve by LAPACK's LU (``gesv``) called directly, or
  None where the matrix is singular to a given pivot ratio (the caller's fallback then
  runs): the cone projections' passive sets and the branch and bound's KKT polish;
* :func:`boundary_steps`: the ratio test, the step at which ``s + t ds`` reaches ``0``
  (a cone row becoming active, a block's norm reaching zero, an interior-point slack);
* :func:`backtrack`: the Armijo backtracking line search
  ``f(t) <= f(0) + c_1 t f'(0)``.

The loss's own derivatives come from the loss (``loss.gradient``, ``loss.curvature``,
``loss.constant_curvature``); the interior point's step length is its
fraction-to-the-boundary rule on :func:`boundary_steps`, not a line search (a
primal-dual path-following method has no merit function to decrease).

References
----------
J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006
(Algorithm 3.1, backtracking; Section 3.4, modified Cholesky; Section 19.2, the
fraction to the boundary).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

__all__ = ["backtrack", "boundary_steps", "damped_cholesky", "lu_solve", "max_step",
           "newton_step", "norm_derivatives"]


def norm_derivatives(Pb: np.ndarray, beta: float, floor: float = 0.0, *,
                     hessian: bool = True, out: Optional[np.ndarray] = None
                     ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Radii, gradient and Hessian blocks of ``beta * sum_j ||p_j||``.

    Parameters
    ----------
    Pb : ndarray of shape (m, k)
        The penalised parts ``p_j`` (rows), all nonzero (or ``floor > 0``).
    beta : float
    floor : float, default=0.0
        Smoothing: ``r_j = sqrt(||p_j||^2 + floor^2)`` replaces ``||p_j||``.
    hessian : bool, default=True
        Whether to form the Hessian blocks (``None`` is returned otherwise).
    out : ndarray of shape (m, k, k), optional
        Add the Hessian blocks to this array in place (and return it as ``H``).

    Returns
    -------
    r : ndarray of shape (m,)
        ``r_j``.
    U : ndarray of shape (m, k)
        ``u_j = p_j / r_j``; the gradient is ``beta * U``.
    H : ndarray of shape (m, k, k) or None
        ``beta / r_j (I - u_j u_j^T)``.
    """
    r = np.sqrt(np.einsum("ij,ij->i", Pb, Pb) + floor * floor)
    U = Pb / r[:, None]
    if not hessian:
        return r, U, None
    k = Pb.shape[1]
    H = np.zeros((Pb.shape[0], k, k)) if out is None else out
    idx = np.arange(k)
    H[:, idx, idx] += (beta / r)[:, None]
    H -= (beta / r)[:, None, None] * U[:, :, None] * U[:, None, :]
    return r, U, H


def damped_cholesky(H: np.ndarray, rel_shift: float = 1e-12, tries: int = 8,
                    work: Optional[dict] = None):
    """Cholesky factor (``scipy.linalg.cho_factor``) of ``H + mu I``.

    ``mu`` is ``rel_shift * mean(diag H)``, multiplied by 100 after every failed
    factorisation (``tries`` in all); ``None`` if none succeeds. With ``work`` the
    shifted copy is factored in a buffer kept there (:func:`work_buffer`): no fresh
    array, and none of its page faults, per call (the factor is valid until the next
    call with the same ``work``; ``H`` must then be symmetric in both triangles).
    """
    from scipy.linalg import LinAlgError, cho_factor

    mu = rel_shift * max(float(np.mean(np.diag(H))), np.finfo(float).tiny) if H.size else 1.0
    diag = np.diag_indices(H.shape[0])
    for _ in range(tries):
        buf = work_buffer(work, "cholesky", H.shape)
        if buf is None:
            Hm = H.copy()  # H + mu I without the identity matrix and its temporaries
        else:  # the transpose (Fortran-ordered) is factored in place; H is symmetric
            np.copyto(buf, H)
            Hm = buf.T
        Hm[diag] += mu
        try:
            return cho_factor(Hm, lower=False, overwrite_a=True, check_finite=False)
        except LinAlgError:
            mu *= 100.0
    return None


#: below this order a float64 factor is cheap enough (see spd_solver)
_MIXED_MIN_ORDER = 512
#: the float32 solve is kept when its refinement step is below this fraction of it (the
#: error left is then about the square of that fraction, relative)
_MIXED_MAX_CORRECTION = 1e-3


def work_buffer(work: Optional[dict], key: str, shape, dtype=np.float64, grow: bool = False
                ) -> Optional[np.ndarray]:
    """An uninitialised array kept in ``work`` under ``key`` for repeated calls of the
    same shape (``None`` without ``work``: the caller allocates). ``grow=True``: the
    shape may change from call to call (a matrix over a varying subset of samples), and
    the array is a C-ordered view of the front of one flat buffer, replaced only by a
    larger one.

    Newton loops that form a large matrix at every step (an ``n x n`` Schur complement,
    its float32 copy, a Woodbury product) write into such buffers instead of new arrays:
    a fresh array of many megabytes costs its page faults at every step, which on this
    project's machine made the first solve of the digits gated polish take 11.4 s
    instead of 6.3 s (and later ones vary by 30 %).
    """
    if work is None:
        return None
    buf = work.get(key)
    shape = tuple(int(x) for x in shape)
    if grow:
        size = int(np.prod(shape))
        if buf is None or buf.ndim != 1 or buf.size < size or buf.dtype != np.dtype(dtype):
            buf = work[key] = np.empty(size, dtype)
        return buf[:size].reshape(shape)
    if buf is None or buf.shape != shape or buf.dtype != np.dtype(dtype):
        buf = work[key] = np.empty(shape, dtype)
    return buf


#: rows of the scaled design per chunk of :func:`weighted_gram` (about 16 MB a chunk)
_GRAM_CHUNK_ENTRIES = 1 << 21


def weighted_gram(A, h: np.ndarray, work: Optional[dict] = None) -> np.ndarray:
    """``A^T diag(h) A`` for ``h >= 0`` (negative entries count as zero), both triangles.

    ``A``: an ``n x c`` array, or ``(n, c, fill)`` for a design given by its rows:
    ``fill(a, b, s, out)`` writes rows ``a:b`` of ``A`` times ``s`` (``sqrt(h[a:b])``)
    into ``out`` (``(b - a) x c``) and returns it (a design that is never formed whole).

    The rows scaled by ``sqrt(h)`` go through one buffer of ``_GRAM_CHUNK_ENTRIES``
    entries (kept in ``work``), each chunk a symmetric rank-k update (BLAS ``syrk``) of one
    output: no scaled copy of the whole design, which doubled the interior point's peak at
    large ``n``. Measured against ``B^T B`` with ``B = diag(sqrt h) A`` (one BLAS thread,
    random, three runs alternately): 225,000 x 400 0.73 s against 0.86 s, 75,000 x 841
    0.94-1.08 s either way; equal to 2e-15 relative."""
    from scipy.linalg.blas import dsyrk

    if isinstance(A, tuple):
        n, c, fill = A
    else:
        A = np.asarray(A, np.float64)
        n, c = A.shape

        def fill(a, b, s, out):
            return np.multiply(A[a:b], s[:, None], out=out)
    if n == 0 or c == 0:
        return np.zeros((c, c))
    s = np.sqrt(np.maximum(np.asarray(h, np.float64), 0.0))
    rows = max(256, _GRAM_CHUNK_ENTRIES // max(c, 1))
    Q = np.zeros((c, c), order="F")
    buf = work_buffer(work, "weighted_gram", (min(rows, n), c), grow=True)
    if buf is None:
        buf = np.empty((min(rows, n), c))
    for a in range(0, n, rows):
        m = min(rows, n - a)
        B = fill(a, a + m, s[a:a + m], buf[:m])
        # the chunk's transpose is Fortran-ordered: no copy; the upper triangle of Q
        Q = dsyrk(1.0, B.T, beta=1.0, c=Q, trans=0, lower=0, overwrite_c=1)
    il = np.tril_indices(c, -1)
    Q[il] = Q.T[il]
    return Q.T  # symmetric: its transpose is C-ordered, no copy


def spd_solver(H: np.ndarray, work: Optional[dict] = None
               ) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    """``solve(B) ~= H^{-1} B`` for a symmetric positive definite ``H`` (float64).

    From order ``_MIXED_MIN_ORDER`` on, the factor is a float32 Cholesky factor (2.6
    times faster than float64 at order 1,797 on one thread) and every solve is refined
    once against ``H`` in float64 (iterative refinement: ``X += H^{-1}_{32} (B - H X)``).
    The refinement step estimates the error of the float32 solution; when it exceeds
    ``_MIXED_MAX_CORRECTION`` of the solution (``H`` too ill-conditioned for float32:
    the error left after the step would exceed about its square), or the float32 factor
    fails, the float64 factor of :func:`damped_cholesky` is used from then on. ``None``
    when no factor exists.

    ``work`` (a dict kept by the caller across calls of the same order) holds the
    float32 matrix that is factored in place, so repeated calls allocate no new
    ``n x n`` array (fresh ones cost their page faults at every call: on the digits
    polish, ``n = 1,797``, a few milliseconds per factor and more on a busy machine). A
    factor from an earlier call is overwritten: use each solver before the next call.
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    state = {"cf64": None}

    def exact():
        if state["cf64"] is None:
            state["cf64"] = damped_cholesky(H)
        return state["cf64"]

    cf32 = None
    if H.shape[0] >= _MIXED_MIN_ORDER:
        try:
            buf = work_buffer(work, "spd_f32", H.shape, np.float32)
            if buf is None:
                H32 = H.astype(np.float32)
            else:  # H is symmetric: its transpose, Fortran-ordered, is factored in place
                np.copyto(buf, H, casting="same_kind")
                H32 = buf.T
            cf32 = cho_factor(H32, lower=False, overwrite_a=True, check_finite=False)
            if not np.all(np.isfinite(np.diagonal(cf32[0]))):
                cf32 = None
        except LinAlgError:
            cf32 = None
    if cf32 is None and exact() is None:
        return None

    def solve(B):
        if state["cf64"] is None:
            X = cho_solve(cf32, B.astype(np.float32), check_finite=False).astype(np.float64)
            dX = cho_solve(cf32, (B - H @ X).astype(np.float32), check_finite=False)
            if np.linalg.norm(dX) <= _MIXED_MAX_CORRECTION * np.linalg.norm(X) or \
                    exact() is None:  # (no float64 factor: the refined point is the best)
                solve.float32_solves += 1
                return X + dX
        return cho_solve(state["cf64"], B, check_finite=False)

    solve.float32_solves = 0  # solves answered in float32 (refined)
    return solve


def lu_solve(A: np.ndarray, b: np.ndarray, min_pivot: float = 0.0) -> Optional[np.ndarray]:
    """``A^{-1} b`` for a small dense ``A`` by LAPACK's LU solve (``gesv``, what
    ``np.linalg.solve`` runs, without its per-call checks: 1 us against 3.6 us at order
    8), or None where the factor is singular or a pivot is at most ``min_pivot`` times
    the largest (singular to working precision: the solution is then one of many)."""
    from scipy.linalg.lapack import dgesv

    lu, _, sol, info = dgesv(A, b)
    if info != 0:
        return None
    if min_pivot > 0.0:
        piv = np.abs(np.diagonal(lu))
        if not piv.min(initial=np.inf) > min_pivot * piv.max(initial=0.0):
            return None
    return sol


def newton_step(H: np.ndarray, g: np.ndarray, rel_shift: float = 1e-12,
                work: Optional[dict] = None) -> Optional[np.ndarray]:
    """The regularised Newton step ``-(H + mu I)^{-1} g`` (:func:`damped_cholesky`, its
    factor in ``work``'s buffer when given); ``None`` when no shift makes ``H + mu I``
    numerically positive definite."""
    from scipy.linalg import cho_solve

    cf = damped_cholesky(H, rel_shift, work=work)
    return None if cf is None else -cho_solve(cf, g, check_finite=False)


def boundary_steps(s: np.ndarray, ds: np.ndarray, mask=None) -> np.ndarray:
    """The ratio test: per entry, the step ``t >= 0`` at which ``s + t ds`` reaches ``0``.

    ``max(s, 0) / -ds`` where ``ds < 0`` (and ``mask`` is true), ``inf`` elsewhere.
    """
    neg = ds < 0 if mask is None else (ds < 0) & mask
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(neg, np.maximum(s, 0.0) / -ds, np.inf)


def max_step(s: np.ndarray, ds: np.ndarray, mask=None) -> float:
    """The largest ``t`` keeping ``s + t ds >= 0`` (``inf`` if ``ds >= 0`` everywhere)."""
    return float(np.min(boundary_steps(s, ds, mask), initial=np.inf))


def backtrack(trial: Callable, f0: float, slope: float, *, t: float = 1.0,
              c1: float = 1e-4, shrink: float = 0.5, max_tries: int = 40,
              flat_below: float = 0.0):
    """Armijo backtracking line search.

    Tries ``t, shrink t, shrink^2 t, ...`` (``max_tries`` in all) and accepts the first
    with ``f(t) <= f0 + c1 t slope`` (``slope < 0``, the directional derivative), or,
    for ``t < flat_below``, with ``f(t) <= f0`` (rounding can hide the decrease of a
    tiny step).

    Parameters
    ----------
    trial : callable
        ``trial(t) -> (f(t), payload)``.

    Returns
    -------
    tuple or None
        ``(t, f(t), payload)`` of the accepted step, ``None`` if none is accepted.
    """
    for _ in range(max_tries):
        f, payload = trial(t)
        if f <= f0 + c1 * t * slope or (t < flat_below and f <= f0):
            return t, f, payload
        t *= shrink
    return None

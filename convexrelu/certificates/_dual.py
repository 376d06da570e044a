"""Exact evaluation of the dual-constraint functional ``M(lambda)`` (docs/mathematics.rst §4.2,
§8.2, §8.5).

For a dual point :math:`\\lambda \\in \\mathbb R^n` and augmented data :math:`\\tilde X`,

.. math::

    M(\\lambda) = \\max_i \\max(M_i^+, M_i^-), \\qquad
    M_i^\\pm = \\max_{x \\in K_i,\\ \\|x\\|_{\\rm pen} \\le 1} \\pm c_i^\\top x,
    \\qquad c_i = \\tilde X^\\top D_i \\lambda,

with :math:`K_i = \\{x : A_i \\tilde X x \\ge 0\\}` and :math:`\\|x\\|_{\\rm pen}` the full norm
(no hidden bias, or a penalised one) or the norm of the weight part :math:`x_{1:d}` (free
hidden bias, docs/mathematics.rst §8.2). By conic duality, for every :math:`\\mu \\ge 0`,

.. math::

    M_i^+ \\le \\big\\|(c_i + \\tilde X^\\top A_i \\mu)_{1:d}\\big\\|
        + \\big|(c_i + \\tilde X^\\top A_i \\mu)_{d+1}\\big|\\, R ,

where :math:`R` bounds :math:`|b|` on the feasible set (the second term is absent when the
norm is the full norm; with a free bias the exact value is the minimum over :math:`\\mu`
with :math:`(\\cdot)_{d+1} = 0`). Every value returned here is such a *certified upper
bound* built from an explicit :math:`\\mu \\ge 0`, so a certificate that uses it is sound
whatever the accuracy of the inner solver. The multipliers come from a constraint-generation
loop around ``scipy.optimize.lsq_linear(method="bvls")`` (never ``scipy.optimize.nnls``,
docs/mathematics.rst §8.4), and each value is *verified*: a primal feasible point must attain it
to a
relative ``1e-9``; otherwise a small Clarabel SOCP is solved and its multipliers used.

Patterns are streamed in blocks; the cheap bounds
:math:`M_i^\\pm \\le \\|c_i\\|` (or :math:`\\|c_{i,1:d}\\| + |c_{i,d+1}|R`) of a whole block come
from one matrix product, and exact values are computed only while a bound still exceeds
the best exact value found (bound-then-refine, docs/mathematics.rst §8.5).

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact polynomial-time
convex optimization formulations for two-layer networks", ICML 2020.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..arrangements._patterns import cone_signs
from ._sweep import SweepPricer

__all__ = ["DualConstraintValue", "dual_constraint", "pattern_value", "pattern_value_socp"]

_VERIFY_RTOL = 1e-9
# pricing mode (dual_constraint with a threshold): once a chunk has found a violation by
# more than 1e-3, it refines at most this many patterns (largest bounds first); far from
# the optimum every bound exceeds the threshold and refining a chunk to its exact maximum
# cost most of a working-set round (diabetes, 2000 sampled patterns: 1,400-1,700
# refinements per round, 150-1,100 with this cap)
_PRICING_REFINE = 8
#: violators a chunk's collecting pass refines to their values (every_violator) before it
#: goes on as the usual pass (a loop adds at most n_add patterns a round)
_COLLECT_MAX = 8


@dataclass
class DualConstraintValue:
    """The value of ``M(lambda)`` over a pattern set and its maximiser.

    Attributes
    ----------
    value : float
        ``M(lambda)`` over the patterns checked: a certified upper bound, equal to the
        exact value up to the verification tolerance (relative ``1e-9``), except where a
        pattern's value went to the last resort on a cone of more than 50,000 rows
        (counted in ``n_fallbacks``): that value is the smallest certified bound found,
        and ``value - lower`` says how far it may be above the maximum. For a vector
        dual point (several outputs) it is the conservative bound
        ``max_i sigma_max(Lambda^T D_i X_aug)`` (see ``conservative``).
    lower : float
        A lower bound on ``M(lambda)``: the value attained by ``direction`` (or by the
        best gate for a conservative evaluation).
    direction : ndarray of shape (d_aug,)
        The maximiser ``x* = (u*, b*)`` in the original coordinates, normalised so that
        its penalised norm is 1 (the most violating neuron, with sign ``sign``).
    sign : int
        ``+1`` when the maximum is ``M_i^+`` (a neuron with positive output weight),
        ``-1`` for ``M_i^-``.
    pattern_index : int
        Index of the maximising pattern in the pattern set (``-1`` if there is none).
    exact : bool
        Whether the pattern set is the complete arrangement (``patterns.exact``): only
        then is ``value`` the true ``M(lambda)``; over a sample it underestimates it.
    conservative : bool
        ``True`` when ``value`` is only an upper bound (vector dual point).
    n_patterns_checked : int
        Number of patterns whose bound was evaluated.
    n_refined : int
        Number of patterns whose exact value was computed.
    n_fallbacks : int
        Number of per-pattern values that needed the last resort (the SOCP fallback; on
        cones of more than 50,000 rows the smallest certified bound found, no SOCP).
    gate_lower : float
        The cheap lower bound ``max_k |lambda^T (X_aug g_k)_+| / ||g_k||_pen`` over gates.
    violators : tuple of (float, int)
        With ``every_violator`` (``dual_constraints``): the value and pattern index of
        every pattern above the threshold (a pattern may appear once per sign).
    """

    value: float
    lower: float
    direction: np.ndarray
    sign: int
    pattern_index: int
    exact: bool
    conservative: bool = False
    n_patterns_checked: int = 0
    n_refined: int = 0
    n_fallbacks: int = 0
    gate_lower: float = 0.0
    violators: tuple = ()
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- one pattern
def _weights(d_aug: int, free_bias: bool, w: float) -> np.ndarray:
    wv = np.ones(d_aug)
    if free_bias:
        wv[-1] = w
    return wv


def _upper(r: np.ndarray, free_bias: bool, R: float, all_active: bool) -> float:
    """Certified upper bound from the residual ``r = c + G^T mu`` (``mu >= 0``)."""
    if not free_bias:
        return float(np.linalg.norm(r))
    eps = float(r[-1])
    base = float(np.linalg.norm(r[:-1]))
    if all_active and eps > 0:
        # b is unbounded above on the all-active cell: the bound is only finite when
        # (c + G^T mu)_{d+1} <= 0; rounding-level positives (a centred lambda) are ignored.
        if eps > 1e-12 * (1.0 + base):
            return float("inf")
        eps = 0.0
    return base + abs(eps) * R


def _masked_max(t: np.ndarray, mask: np.ndarray) -> float:
    """``max(t[mask])`` (``-inf`` where no entry is in ``mask``) for finite ``t`` of
    magnitude below ``1e300``, branch-free: 10^6 random entries in 1.5 ms, where
    ``np.where(mask, t, -inf).max()`` took 3.9 ms and ``max(where=)`` 6.3 ms."""
    if not mask.any():
        return -np.inf
    v = t * mask
    v -= (~mask) * 1e300
    return float(v.max())


def _primal(c: np.ndarray, Xa: np.ndarray, mask: np.ndarray, u: np.ndarray, free_bias: bool,
            b_hint: float = 0.0, norms: Optional[np.ndarray] = None):
    """A feasible point built from the direction ``u`` and its value ``c^T x`` (or None).

    The cone's rows ``G_j = A_j x_j`` (``A = 2 D - I``) are read from the data ``Xa`` and
    the ``mask`` (never formed); ``norms``: the rows' norms ``||x_j||`` where known."""
    if not free_bias:
        nu = np.linalg.norm(u)
        if nu == 0:
            return None
        x = u / nu
        s = cone_signs(mask) * (Xa @ x)  # = G x (a sign flip is exact)
        scale = np.linalg.norm(Xa, axis=1) if norms is None else norms
        if np.any(s < -1e-12 * scale):
            return None
        return float(c @ x), x
    d = u.shape[0] - 1
    nu = np.linalg.norm(u[:d])
    if nu == 0:
        return None
    uu = u[:d] / nu
    # constraints A_j (x_j^T u + b) >= 0: active rows b >= -x_j^T u, inactive b <= -x_j^T u
    t = -(Xa @ np.append(uu, 0.0))  # = -x_j^T u (the whole rows: a column slice was copied)
    lo = _masked_max(t, mask)
    hi = -_masked_max(-t, ~mask)
    if lo > hi + 1e-9 * (1.0 + abs(lo)):  # a boundary point, up to rounding, is kept
        return None
    hi = max(hi, lo)
    if c[d] > 0 and np.isfinite(hi):
        b = hi
    elif c[d] < 0 and np.isfinite(lo):
        b = lo
    else:  # unbounded side with a rounding-level coefficient: any point will do
        b = min(max(b_hint if np.isfinite(b_hint) else 0.0, lo), hi)
    if not np.isfinite(b):
        return None
    x = np.concatenate([uu, [b]])
    return float(c @ x), x


def _equality_polish(GS: np.ndarray, c: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Re-solve on the support of ``mu`` with ``(c + GS^T mu)_{d+1} = 0`` exactly (KKT system).

    Returns ``(mu, nu)``: the polished multipliers and the multiplier ``nu`` of the equality
    (``None`` when the polish failed and ``mu`` is returned unchanged).
    """
    T = np.flatnonzero(mu > 1e-12 * float(np.max(mu, initial=0.0)))
    if T.size == 0:
        return mu, None
    H = GS[T, :-1].T  # (d, t)
    g = GS[T, -1]  # (t,)
    t = T.size
    K = np.zeros((t + 1, t + 1))
    K[:t, :t] = H.T @ H
    K[:t, t] = g
    K[t, :t] = g
    rhs = np.concatenate([-H.T @ c[:-1], [-c[-1]]])
    sol = np.linalg.lstsq(K, rhs, rcond=None)[0]
    m2 = sol[:t]
    if np.all(m2 >= -1e-14 * float(np.max(np.abs(m2), initial=1.0))) and \
            np.all(np.isfinite(m2)):
        m2 = np.maximum(m2, 0.0)
        out = np.zeros_like(mu)
        out[T] = m2
        r_old = c + GS.T @ mu
        r_new = c + GS.T @ out
        if abs(r_new[-1]) <= abs(r_old[-1]):
            return out, float(sol[t])
    return mu, None


def _lawson_hanson(P, mu, passive, gradient, scale: float, max_iter: int, stop=None,
                   keep_one: bool = False, pivot=None):
    """Lawson and Hanson's active-set iteration, shared by the cone projections.

    ``P`` (indices) and ``mu > 0`` (their multipliers) are the start; ``passive(P)`` is the
    unconstrained optimum of the multipliers on ``P``, ``gradient(P, mu)`` the reduced
    gradient over every row (optimal when ``>= 0`` off ``P``). A row of negative gradient
    enters; a passive optimum leaving ``mu > 0`` is met by a step back along the segment
    and the rows that reach zero leave. ``stop(P, mu)``, after each step: end early when
    True. Returns ``(P, mu, ok)``; ``ok`` is False when the rounds ran out, or (with
    ``keep_one``, for an equality that needs a row) when the passive set emptied.

    ``pivot(P, mu, j)``: where the entering row ``j``'s passive multiplier comes out not
    positive (impossible in exact arithmetic, its gradient being negative: the passive
    system with it is singular to working precision, and the step back would drop it
    again at once, the same row entering at every round), the step along the ray that
    raises ``j``'s multiplier from the system without it instead: ``(P, mu, done)``
    after it, ``done`` True where that ray does not descend either (``j``'s gradient was
    rounding: the iteration ends, ``ok`` True), or None (it gives up, ``ok`` False).
    With ``pivot`` a passive set met again (the objective decreases strictly in exact
    arithmetic, so no set recurs: rounding, the entering rows' gradients at its level)
    ends the iteration too, ``ok`` True (the caller verifies the value against a primal
    point).
    """
    seen = set()
    for _ in range(max_iter):
        w = gradient(P, mu)
        w[P] = np.inf
        j = int(np.argmin(w))
        if w[j] >= -1e-13 * scale:
            return P, mu, True
        P = np.append(P, j)
        mu = np.append(mu, 0.0)
        for _inner in range(P.size + 1):
            s = passive(P)
            if _inner == 0 and pivot is not None and not s[-1] > 0:
                out = pivot(P[:-1], mu[:-1], j)
                if out is None or out[2]:
                    return P[:-1], mu[:-1], out is not None
                P, mu = out[:2]
                break
            if np.all(s > 0):
                mu = s
                break
            neg = s <= 0
            den = mu[neg] - s[neg]
            a = float(np.min(np.where(den > 0, mu[neg] / np.where(den > 0, den, 1.0), 0.0)))
            mu = mu + a * (s - mu)
            keep = mu > 1e-15 * scale
            if np.all(keep):  # rounding: drop the smallest to make progress
                keep[int(np.argmin(mu))] = False
            P, mu = P[keep], mu[keep]
            if P.size == 0:
                if keep_one:
                    return P, mu, False
                break
        if stop is not None and stop(P, np.maximum(mu, 0.0)):
            return P, mu, True
        if pivot is not None:
            key = tuple(np.sort(P).tolist())
            if key in seen:
                return P, mu, True
            seen.add(key)
    return P, mu, False


#: a bound-then-refine pass over the patterns (:func:`dual_constraints`, one dual point)
#: projects compiled (numba, the ``fast`` extra) once this many refinements were made
#: before it (``refined_before``: a working-set loop's earlier pricing rounds) and in it,
#: for cones of at most ``_PROJECTION_REFERENCE_SIZE`` entries (``n x d_aug``); for
#: larger cones proportionally fewer (:func:`_compiled_after`). Loading numba costs 0.6 s
#: and 100 MB, which about 1,400 projections at 0.6 ms in numpy and 0.15 ms compiled pay
#: back (breast cancer, 569 x 31); a default fit makes a few hundred in all. A function
#: of the dual point's own history (with a working-set loop's restricted certificates,
#: the loop's pricing refinements: ``PricingMultipliers.refined_before``), the data's
#: shape and the fixed chunks (never of ``n_jobs``, of the other dual points evaluated
#: with it, or of what ran before in the process): the same inputs take the same path.
#: With ``n_jobs > 1`` the pricing runs in workers, and a certificate in the main process
#: may then load numba itself. None: always numpy's path
_PROJECTION_COMPILED_AFTER = 1000
#: the cone size (``n x d_aug`` entries) at which ``_PROJECTION_COMPILED_AFTER`` holds
#: as it is; a projection's cost grows with it (digits, 1,797 x 65: 5.6 ms each in numpy
#: against 0.6 ms for breast cancer's 569 x 31)
_PROJECTION_REFERENCE_SIZE = 569 * 31


def _compiled_after(n: int, d: int) -> Optional[int]:
    """The refinements after which a pass over cones of ``n x d`` entries projects
    compiled: ``_PROJECTION_COMPILED_AFTER`` scaled down by the cones' size beyond
    ``_PROJECTION_REFERENCE_SIZE`` (at least 1), or None (never)."""
    lim = _PROJECTION_COMPILED_AFTER
    if lim is None:
        return None
    scale = min(1.0, _PROJECTION_REFERENCE_SIZE / max(int(n) * int(d), 1))
    return max(1, int(np.ceil(lim * scale))) if lim > 0 else int(lim)


def _projection_kernel(compiled: bool):
    """The compiled projection (:func:`._ldp_kernel.projection_kernel`) where asked for
    and available, else None (the numpy path)."""
    if not compiled:
        return None
    from . import _ldp_kernel

    return _ldp_kernel.projection_kernel()


def _project_cone_compiled(kern, Gn, c, max_iter, init, stop, stop_spec):
    """:func:`_project_cone` by the compiled Lawson-Hanson iteration (an updated QR factor
    of the passive rows; :func:`._ldp_kernel._nnls_core`): the same problem, the same
    returns. Where ``stop`` is given without ``stop_spec`` the iteration runs to the end."""
    from ._ldp_kernel import as_argument

    A = as_argument(Gn.T)
    b = as_argument(-np.asarray(c, dtype=np.float64))
    ini = np.zeros(0, np.int64) if init is None else np.asarray(init, np.int64).ravel()
    sb, wl, R, aa = (-1.0, 0.0, 0.0, False) if stop_spec is None or stop is None else \
        (float(stop_spec[0]), float(stop_spec[1]), float(stop_spec[2]), bool(stop_spec[3]))
    if not sb >= 0.0:
        sb = -1.0
    maxit = 4 * max_iter + 4 * Gn.shape[1]
    x, status = kern(A, b, maxit, ini, sb, wl, R, aa)
    rows = np.flatnonzero(x > 0)
    mu = x[rows]
    u = c + Gn[rows].T @ mu
    if status == 2 and not stop(rows, mu, u):
        # the compiled test and numpy's differ by rounding: run on to the end from there
        x, status = kern(A, b, maxit, rows.astype(np.int64), -1.0, wl, R, aa)
        rows = np.flatnonzero(x > 0)
        mu = x[rows]
        u = c + Gn[rows].T @ mu
    return float(np.linalg.norm(u)), u, rows


def _project_cone(Gn: np.ndarray, c: np.ndarray, max_iter: int = 200,
                  init: Optional[np.ndarray] = None, stop=None, stop_spec=None,
                  compiled: bool = False):
    """``min_{mu >= 0} ||c + Gn^T mu||`` by Lawson-Hanson (``Gn``: unit rows, ``n x d``).

    ``u = c + Gn^T mu`` is the projection of ``c`` onto ``K = {u : Gn u >= 0}`` (Moreau,
    docs/mathematics.rst §4.2), so ``||u|| = max_{u' in K, ||u'|| <= 1} c^T u'``. Whatever the
    accuracy of
    the iteration, ``||c + Gn^T mu||`` with the returned ``mu >= 0`` is a valid upper bound
    on that value (it is recomputed from the clipped multipliers). Returns
    ``(bound, u, rows)`` with ``rows`` the rows of positive multiplier (the face of ``u``).
    ``init``: rows to start from (a guess of the face, e.g. from interior-point
    multipliers; indices outside the rows are ignored), shrunk until their least-squares
    multipliers are positive, from which the iteration starts. ``stop``: a
    function of ``(rows, mu, u)`` (multipliers ``mu >= 0`` of ``rows``, ``u = c + Gn^T mu``)
    after each step; the iteration ends early when it returns True (pricing: a bound
    already below the threshold). ``stop_spec``: the same test as ``(stop_below, wlast, R,
    all_active)`` for the compiled projection (:func:`_project_cone_compiled`), which
    checks it in the compiled loop (``stop`` then only confirms its early end).
    ``compiled``: project with the compiled kernel where numba is installed.
    """
    scale = float(np.linalg.norm(c))
    if scale == 0.0:
        return 0.0, c.copy(), np.zeros(0, int)
    kern = _projection_kernel(compiled)
    if kern is not None:
        return _project_cone_compiled(kern, Gn, c, max_iter, init, stop, stop_spec)
    Pset = np.zeros(0, int) if init is None else np.unique(np.asarray(init, int))
    Pset = Pset[(Pset >= 0) & (Pset < Gn.shape[0])]
    mu = np.zeros(0)
    while Pset.size:  # warm start: shrink the guessed face until its multipliers are > 0
        Gp = Gn[Pset]
        s = np.linalg.lstsq(Gp.T, -c, rcond=None)[0]
        if np.all(s > 0):
            mu = s
            break
        Pset = Pset[s > 0]

    from .._newton import lu_solve

    def passive(P):  # tens of times per projection; a singular Gram: the least squares
        Gp = Gn[P]
        sol = lu_solve(Gp @ Gp.T, Gp @ c)
        return -sol if sol is not None else np.linalg.lstsq(Gp.T, -c, rcond=None)[0]

    Pset, mu, _ = _lawson_hanson(
        Pset, mu, passive, lambda P, m: Gn @ (c + Gn[P].T @ m), scale, max_iter,
        stop=None if stop is None else (lambda P, m: stop(P, m, c + Gn[P].T @ m)))
    mu = np.maximum(mu, 0.0)
    u = c + Gn[Pset].T @ mu
    return float(np.linalg.norm(u)), u, Pset[mu > 0]


def _project_cone_free(G: np.ndarray, c: np.ndarray, init=None, max_iter: int = 300,
                       lu: bool = False):
    """``min ||r_{1:d}||`` over ``r = c + G^T mu``, ``mu >= 0``, ``r_{d+1} = 0`` (the dual of
    the free-bias pattern value), by a primal active set with the equality kept exactly.

    Lawson-Hanson with one equality: every iterate satisfies ``g^T mu = -c_{d+1}``
    (``g = G[:, -1]``), each passive set's KKT system fixes ``mu`` and the equality's
    multiplier ``nu``, a row enters where ``G_j[:d]^T r_{1:d} + nu g_j < 0``, and a step
    back along the segment keeps ``mu >= 0``. The weighted projection's penalty on
    ``r_{d+1}`` is not enough when ``c_{d+1}`` is at rounding level beside ``||c||`` (the
    cell of every sample but one, its ``c_{d+1} = -lambda_j``); this is exact there.
    Returns ``(mu, rows, nu)`` (``mu >= 0`` over ``rows``) or None when it fails (the
    equality is infeasible, or the iteration stalls); any returned ``mu >= 0`` gives a
    certified bound whatever its accuracy (:func:`_upper`).

    The KKT systems are solved by least squares, or with ``lu`` by an LU factor (the
    least squares as its fallback). With many more rows than dimensions (10^5-10^6
    samples) the face is degenerate: a system with the entering row is singular to
    working precision, the least squares cut its smallest singular value, and the
    entering row's multiplier came out negative, so it left at once and entered again
    until the rounds ran out (:func:`_lawson_hanson`'s ``pivot`` now exchanges it for a
    row of the face instead). With badly scaled features (a bias column of 1e-8 after
    the row scaling) the cut instead stopped the iteration at a loose bound, where the
    LU factor's solution is exact; :func:`_pattern_value` retries with ``lu`` where the
    first value does not verify.
    """
    n, d1 = G.shape
    d = d1 - 1
    rown = np.linalg.norm(G, axis=1)
    nz = np.flatnonzero(rown > 0)
    if nz.size == 0:
        return None
    Gn = G[nz] / rown[nz, None]  # unit rows: mu rescales, the problem does not change
    H, g = Gn[:, :d], Gn[:, d]
    cu, cb = np.asarray(c[:d], np.float64), float(c[d])
    scale = float(np.linalg.norm(c)) + 1e-300
    from .._newton import lu_solve

    def system(P):  # the KKT matrix of the passive set P (its rows and the equality)
        HP, gP = H[P], g[P]
        t = P.size
        K = np.zeros((t + 1, t + 1))
        K[:t, :t] = HP @ HP.T
        K[:t, t] = gP
        K[t, :t] = gP
        return K, HP

    def kkt(P):
        t = P.size
        K, HP = system(P)
        rhs = np.concatenate([-HP @ cu, [-cb]])
        if lu:
            sol = lu_solve(K, rhs)
            if sol is None or not np.all(np.isfinite(sol)):
                sol = np.linalg.lstsq(K, rhs, rcond=None)[0]
        else:
            sol = np.linalg.lstsq(K, rhs, rcond=None)[0]
        return sol[:t], float(sol[t])

    if init is not None and len(init):
        pos = np.full(n, -1)
        pos[nz] = np.arange(nz.size)
        P = np.unique(pos[np.asarray(init, int)])
        P = P[P >= 0]
    else:
        P = np.zeros(0, int)
    mu = np.zeros(0)
    if P.size:  # warm start: shrink the guessed face until its KKT multipliers are > 0
        while P.size:
            s, _ = kkt(P)
            if np.all(s > 0):
                if abs(float(g[P] @ s) + cb) <= 1e-12 * scale:
                    mu = s
                    break
                # the KKT solve lost the equality (a tiny bias column after the row
                # scaling, below lstsq's cutoff): the cold start below instead
                P = P[:0]
                break
            P = P[s > 0]
    if P.size == 0:
        if cb == 0.0:
            return None  # the equality holds at mu = 0; rows enter only in pairs
        # one row of the sign that meets the equality, the one with the smallest residual
        cand = np.flatnonzero(g * cb < 0)
        if cand.size == 0:
            return None  # infeasible: the cell's bias is unbounded in c's direction
        m0 = -cb / g[cand]
        val = 2.0 * m0 * (H[cand] @ cu) + m0 * m0 * np.einsum("ij,ij->i", H[cand], H[cand])
        j = int(cand[int(np.argmin(val))])
        P, mu = np.array([j]), np.array([-cb / g[j]])

    def gradient(P, m):
        _, nu = kkt(P)
        return H @ (cu + H[P].T @ m) + nu * g

    def pivot(P, m, j):
        # raise row j's multiplier t from 0 with the others the KKT optimum on P at each t
        # (linear in t, from the system on P alone): r(t) = r + t q. The step is the
        # smaller of the line's minimum -r^T q / q^T q (> 0: r^T q is j's gradient) and
        # the first multiplier of P reaching zero, which then leaves (an exchange: the
        # passive set keeps its size where the system with j is singular)
        t = P.size
        K, HP = system(P)
        rhs = np.concatenate([-HP @ H[j], [-g[j]]])
        sol = lu_solve(K, rhs) if t else None
        if sol is None or not np.all(np.isfinite(sol)):
            return None
        dm = sol[:t]
        q = HP.T @ dm + H[j]
        slope = float((cu + HP.T @ m) @ q)
        qq = float(q @ q)
        if not slope < 0:  # no descent along the exact ray: optimal to working precision
            return P, m, True
        step = -slope / qq if qq > 0 else np.inf
        neg = dm < 0
        leave = -1
        if np.any(neg):
            ratios = m[neg] / -dm[neg]
            k = int(np.argmin(ratios))
            if ratios[k] < step:
                step, leave = float(ratios[k]), int(np.flatnonzero(neg)[k])
        if not np.isfinite(step):
            return None
        m2 = np.append(m + step * dm, step)
        keep = m2 > 1e-15 * scale
        if leave >= 0:
            keep[leave] = False
        return np.append(P, j)[keep], m2[keep], False

    P, mu, ok = _lawson_hanson(P, mu, lambda P: kkt(P)[0], gradient, scale, max_iter,
                               keep_one=True, pivot=pivot)
    if not ok:
        return None
    mu = np.maximum(mu, 0.0)
    _, nu = kkt(P)
    return mu / rown[nz[P]], nz[P], nu


#: the weight of the bias coordinate in the free-bias projection (its residual there is
#: then nearly zero: docs/mathematics.rst §8.2)
_BIAS_WEIGHT = 1e4
#: cones of at least this many rows are projected over working sets of their rows
#: (:func:`_over_row_sets`) where the data's row norms are given (pricing, certificates)
_SCREEN_FROM_ROWS = 8192
#: rows added to a working set per round: the most violated, at least this many
_SCREEN_ADD = 64
#: rounds of a screened projection before it gives up (the caller's fallback then runs)
_SCREEN_ROUNDS = 50
#: cones of more rows than this skip the value's last resort's SOCP (cvxpy): at 10^6
#: rows it took 300 s for one pattern of a make_regression(10^6, 20) pricing pass. The
#: value is then the smallest certified bound found (explicit multipliers ``mu >= 0``),
#: ``lower`` the best primal point's value (the gap between them is reported, not hidden)
_SOCP_MAX_ROWS = 50_000


class _RowNorms:
    """The norms of the rows of the (translated) augmented data ``X_aug``, shared by every
    pattern's cone: the cone's rows are ``A_j x_j`` (``A = 2 D - I``), so their norms are
    the data's whatever the pattern. Computed once per pass over the patterns (one ``n x
    d_aug`` pass each, where forming every pattern's cone matrix was several), on first
    use; the data is given at each use (a worker gets it separately), and only its single
    precision copy is kept (:meth:`single`)."""

    def __init__(self):
        self._plain = self._weighted = self._single = None
        self._shape = None

    def _check(self, Xa):
        if self._shape is None:
            self._shape = Xa.shape
        elif Xa.shape != self._shape:
            raise ValueError(f"row norms of data of shape {self._shape} asked for data of "
                             f"shape {Xa.shape}")

    def plain(self, Xa: np.ndarray) -> np.ndarray:
        """``||x_j||``."""
        self._check(Xa)
        if self._plain is None:
            self._plain = np.linalg.norm(Xa, axis=1)
        return self._plain

    def single(self, Xa: np.ndarray, weighted: bool = False) -> tuple:
        """``(data, ones, xmax, ratio, rmax, rinv)``: the data in single precision, the
        screening's first look at the rows (:func:`_most_violated_rows`), without its last
        column where that is all ones (``ones``: the bias, added in double precision:
        weighted by ``_BIAS_WEIGHT``, it would swamp a single-precision sum); ``xmax`` its
        largest magnitude (``inf`` beyond single precision's range); ``ratio``, the largest
        ``||x_j'|| / n_j`` (``x_j'`` the row without that column, ``n_j`` its
        :meth:`plain` or, ``weighted``, :meth:`weighted` norm) and ``rmax`` the largest
        ``1 / n_j``, over the rows of nonzero norm: the scales of its rounding; ``rinv``
        the ``1 / n_j`` (0 where ``n_j = 0``), formed once for every pattern's cone."""
        self._check(Xa)
        if self._single is None:
            ones = bool(Xa.shape[1]) and bool(np.all(Xa[:, -1] == 1.0))
            part = Xa[:, :-1] if ones else Xa
            with np.errstate(over="ignore"):
                X32 = part.astype(np.float32)
            self._single = (X32, ones, float(np.max(np.abs(X32), initial=0.0)),
                            np.sqrt(np.einsum("ij,ij->i", part, part)), {})
        X32, ones, xmax, pn, scales = self._single
        if weighted not in scales:
            rinv = _inverse_norms(self.weighted(Xa) if weighted else self.plain(Xa))
            scales[weighted] = (float(np.max(pn * rinv, initial=0.0)),
                                float(np.max(rinv, initial=0.0)), rinv)
        return (X32, ones, xmax) + scales[weighted]

    def weighted(self, Xa: np.ndarray) -> np.ndarray:
        """``||x_j||`` with the bias coordinate weighted by ``_BIAS_WEIGHT``."""
        self._check(Xa)
        if self._weighted is None:
            self._weighted = np.linalg.norm(
                Xa * _weights(Xa.shape[1], True, _BIAS_WEIGHT), axis=1)
        return self._weighted


def _row_values(Xa, sgn, colw, v, rinv):
    """``Gn_j^T v`` on every row of the cone of unit rows ``Gn_j = sgn_j (x_j * colw) /
    norms_j`` (``rinv``: ``1 / norms``, 0 on rows of zero norm), by one product with the
    data."""
    return sgn * (Xa @ (v if colw is None else colw * v)) * rinv


def _inverse_norms(norms):
    """``1 / norms``, 0 where a norm is 0 (a zero row constrains nothing)."""
    live = norms > 0
    return np.where(live, 1.0 / np.where(live, norms, 1.0), 0.0)


def _most_violated(g, tol, add):
    """The rows of ``g < -tol``, only the ``add`` most negative where there are more."""
    bad = np.flatnonzero(g < -tol)
    if bad.size > add:
        bad = bad[np.argpartition(g[bad], add)[:add]]
    return bad


#: a single-precision screening product is checked in double precision on at most this
#: fraction of the rows (else the whole double product)
_SINGLE_MAX_SHARE = 0.125


def _most_violated_rows(Xa, single, sgn, colw, v, rinv, skip, tol, add, sr=None):
    """:func:`_most_violated` of the row values ``Gn_j^T v`` (:func:`_row_values`) with the
    rows ``skip`` (indices or a bool mask) left out: the same rows, read first in single
    precision where ``single`` (:meth:`_RowNorms.single`) is given (``sr``: ``sgn *
    rinv``, formed here when not given).

    The product with the data's columns in single precision (the bias column of ones
    left out, its term added in double) is within ``delta = 2 (d + 5) (2^-24 r ||w'|| +
    2^-52 (r ||w'|| + |w_b| m))`` (and absolute terms for results below the normal range)
    of the double one after the rows' scaling by ``1 /
    n_j`` (``w = colw * v``, ``w'`` without its bias entry ``w_b`` in that case; ``r``
    and ``m`` the largest ``||x_j'|| / n_j`` and ``1 / n_j``, :meth:`_RowNorms.single`):
    each row's sum ``x_j'^T w'`` of ``d`` products, inputs rounded, is within ``(d + 3)
    2^-24 sum_k |x_jk w_k|`` of the exact one whatever the order of the sum, at most
    ``(d + 3) 2^-24 ||x_j'|| ||w'||``, and the double product within ``(d + 1) 2^-53``
    times its terms' sum; twice that for safety. With the bias weighted, ``r`` is about
    ``1 / _BIAS_WEIGHT`` (a make_regression(10^5, 20) ReLU solve's pricing checked 0.05 %
    of the rows in double precision on average, 1.5 % with ``r = 1``). So only
    the rows whose value so computed is below ``-tol + delta`` can be violated and, of
    those, only the ones within ``2 delta`` of the ``add``-th smallest can be among the
    ``add`` most violated: those rows are computed in double precision and ranked (the
    same rows as the whole double product's, but for a row within the last bit of the
    threshold or of the ``add``-th value: a product over gathered rows can round
    differently). The whole double product is computed instead where they are more than
    ``_SINGLE_MAX_SHARE`` of the rows, and where the single sums could overflow. The data
    is memory-bound here: the single product reads half the bytes."""
    def whole():
        g = _row_values(Xa, sgn, colw, v, rinv)
        g[skip] = np.inf
        return _most_violated(g, tol, add)

    if single is None:
        return whole()
    X32, ones, xmax, ratio, rmax = single[:5]
    w = v if colw is None else colw * v
    wp = w[:-1] if ones else w
    d = Xa.shape[1]
    top = float(np.max(np.abs(wp), initial=0.0))
    if top == 0.0 or not (np.isfinite(top) and np.all(np.isfinite(w))):
        return whole()
    # scaled to a largest entry of 1 where single precision would underflow or overflow
    scaled = not 1e-20 < top < 1e20
    ws, s = (wp / top, top) if scaled else (wp, 1.0)
    l1 = float(np.sum(np.abs(ws)))
    if not xmax * l1 < 1e37:  # the single sums could overflow (or the data is not finite)
        return whole()
    nv = top * float(np.linalg.norm(wp / top))  # (its squares do not underflow)
    delta = 2.0 * (d + 5) * (2.0 ** -24 * nv * ratio + 2.0 ** -52 * (
        nv * ratio + (abs(w[-1]) * rmax if ones else 0.0))) \
        + (d + 2) * rmax * (2.0 ** -140 * (1.0 + xmax + l1) * s  # single underflow
                            + 2.0 ** -1000 * (1.0 + xmax) * (1.0 + float(np.sum(np.abs(w)))))
    if not np.isfinite(delta):
        return whole()
    if sr is None:
        sr = sgn * rinv
    gs = X32 @ ws.astype(np.float32)
    gs = np.add(gs, w[-1] / top if ones and scaled else w[-1] if ones else 0.0,
                dtype=np.float64)  # (cast in the same pass)
    gs *= (top * sr) if scaled else sr
    if skip.dtype != bool:
        gs[skip] = np.inf
    cand = np.flatnonzero(gs < -tol + delta)
    if cand.size and skip.dtype == bool:
        cand = cand[~skip[cand]]
    if cand.size > add:
        gc = gs[cand]
        kth = float(np.partition(gc, add - 1)[add - 1])
        cand = cand[gc <= min(kth + 2.0 * delta, -tol + delta)]
    if cand.size > _SINGLE_MAX_SHARE * Xa.shape[0]:
        return whole()
    g = sgn[cand] * (Xa[cand] @ w) * rinv[cand]
    return cand[_most_violated(g, tol, add)]


def _over_row_sets(Xa, sgn, colw, norms, S, solve, scale, single=None):
    """Constraint generation over the rows of a cone ``{v : Gn v >= 0}`` whose unit rows
    ``Gn_j = sgn_j (x_j * colw) / norms_j`` (``colw`` None: ones) are read from the data.

    ``solve(S)`` solves the problem restricted to the rows ``S`` (sorted indices) and
    returns ``(out, v)``: its result, and the vector whose row values ``Gn_j^T v`` must be
    ``>= 0`` on every row for it to solve the whole problem (None: ``out`` is final, an
    early stop). Rows violated by more than ``1e-13 scale`` enter, the most violated
    first (``_SCREEN_ADD`` or more a round), until none is left: one product with the
    data a round instead of one per active-set step. Once ``S`` holds every row of
    nonzero norm, that solve is final. Returns ``(out, S)`` (``out`` None where ``solve``
    failed), or ``(None, S)`` when ``_SCREEN_ROUNDS`` rounds did not finish."""
    rinv = _inverse_norms(norms) if single is None else single[5]
    n_live = int(np.count_nonzero(norms > 0))
    sr = None if single is None else sgn * rinv
    add = max(_SCREEN_ADD, 2 * Xa.shape[1])
    for _ in range(_SCREEN_ROUNDS):
        out, v = solve(S)
        if v is None:
            return out, S
        bad = _most_violated_rows(Xa, single, sgn, colw, v, rinv, S, 1e-13 * scale, add,
                                  sr)
        if bad.size == 0:
            return out, S
        S = np.union1d(S, bad)
        if S.size >= n_live:  # every row: the whole problem
            return solve(S)[0], S
    return None, S


def _start_rows(Xa, sgn, colw, norms, v, init, scale, single=None):
    """The first working set of a screened projection of ``v``: the rows ``init`` (a
    guessed face) where given, else the ``_SCREEN_ADD`` (or more) most violated by ``v``
    (with a face, the first round's check finds the rows it misses: one product with the
    data fewer)."""
    live = norms > 0
    ini = np.zeros(0, int) if init is None else np.asarray(init, int).ravel()
    ini = ini[(ini >= 0) & (ini < Xa.shape[0])]
    ini = np.unique(ini[live[ini]])
    if ini.size:
        return ini, ini
    rinv = _inverse_norms(norms) if single is None else single[5]
    bad = _most_violated_rows(Xa, single, sgn, colw, v, rinv, ~live,
                              1e-13 * scale, max(_SCREEN_ADD, 2 * Xa.shape[1]))
    return np.sort(bad), ini


def _project_screened(Xa, sgn, colw, norms, c, init, stop, stop_spec, compiled,
                      keep_rows=False, single=None):
    """:func:`_project_cone` of ``c`` onto the cone of the unit rows ``sgn_j (x_j * colw)
    / norms_j`` (rows of zero norm left out), over working sets of its rows
    (:func:`_over_row_sets`): the same ``(bound, u, rows)``, ``rows`` indexing ``Xa``.
    ``stop(rows, mu, u)`` as :func:`_project_cone`'s with rows indexing ``Xa``; an early
    stop on a working set is final (its multipliers are valid for the whole cone).
    ``keep_rows``: the last working set as a fourth element."""
    scale = float(np.linalg.norm(c))
    S, ini = _start_rows(Xa, sgn, colw, norms, c, init, scale, single)
    face = ini
    hit = []

    def solve(S):
        nonlocal face
        if S.size == 0:
            return (scale, np.array(c, dtype=np.float64), np.zeros(0, int)), c
        Gs = sgn[S, None] * Xa[S]
        if colw is not None:
            Gs *= colw
        Gs /= norms[S, None]

        def stop_s(P, mu, u):
            if stop(S[P], mu, u):
                hit.append(True)
                return True
            return False

        U, u, f = _project_cone(Gs, c, init=np.searchsorted(S, np.intersect1d(face, S)),
                                stop=None if stop is None else stop_s,
                                stop_spec=stop_spec, compiled=compiled)
        face = S[f]
        return (U, u, face), None if hit else u

    while True:
        out, S = _over_row_sets(Xa, sgn, colw, norms, S, solve, scale, single)
        if out is not None:
            return out + (S,) if keep_rows else out
        # the rounds ran out: the whole cone (every row a working set)
        S = np.flatnonzero(norms > 0)


def _project_free_screened(Xa, sgn, norms, c, init, S, lu=False, single=None):
    """:func:`_project_cone_free` over working sets of the cone's rows (starting from
    ``S``, which holds ``init``): the same ``(mu, rows, nu)`` with ``rows`` indexing
    ``Xa``, or None."""
    d = Xa.shape[1] - 1
    face = np.asarray(init, int)
    scale = float(np.linalg.norm(c)) + 1e-300

    failed = []

    def solve(S):
        nonlocal face
        ex = _project_cone_free(sgn[S, None] * Xa[S], c,
                                init=np.searchsorted(S, np.intersect1d(face, S)), lu=lu)
        if ex is None:
            failed.append(True)
            return None, None
        mu, rows, nu = ex
        face = S[rows]
        r = c + (sgn[S[rows], None] * Xa[S[rows]]).T @ mu
        return (mu, S[rows], nu), np.concatenate([r[:d], [nu]])

    out, S = _over_row_sets(Xa, sgn, None, norms, np.asarray(S, int), solve, scale,
                            single)
    if out is None and not failed:
        # the rounds ran out: the whole cone. (Where the active set fails on a working
        # set, None and the caller's last resort: in the make_regression(3e5, 20) ReLU
        # solve, before the exchange step (_lawson_hanson's pivot), the whole cone's
        # active set failed too for 6 of 7 such patterns, at 1.5 s each, against 0.5-0.8
        # s for the last resort.)
        return _project_cone_free(sgn[:, None] * Xa, c, init=face, lu=lu)
    return out


def _nonzero_positions(init, nz):
    """The rows ``init`` (indices into all rows) among the nonzero rows ``nz`` (a mask),
    as positions in ``G[nz]``; None for no ``init``."""
    if init is None:
        return None
    init = np.asarray(init, int)
    init = init[(init >= 0) & (init < nz.size)]
    return (np.cumsum(nz) - 1)[init[nz[init]]]


def pattern_value(Xa: np.ndarray, mask: np.ndarray, c: np.ndarray, *, free_bias: bool = False,
                  R: float = 0.0, max_rounds: int = 60, init=None, correction: bool = False,
                  stop_below: Optional[float] = None):
    """``max_{x in K, ||x||_pen <= 1} c^T x`` for one pattern, with a certified upper bound.

    Parameters
    ----------
    Xa : ndarray of shape (n_samples, d_aug)
        Augmented data (with a free bias: its last column is ones).
    mask : ndarray of shape (n_samples,), bool
        The pattern ``d_i``; the cone is ``K = {x : A X_aug x >= 0}``, ``A = 2 D - I``.
    c : ndarray of shape (d_aug,)
        The linear objective (``±X_aug^T D lambda``).
    free_bias : bool, default=False
        Penalise only ``x_{1:d}`` (docs/mathematics.rst §8.2).
    R : float
        A bound on ``|b|`` over the feasible set (``max_j ||x_j||``), used with a free bias.
    max_rounds : int, default=60
        Constraint-generation rounds before the SOCP fallback.
    init : array-like of int, optional
        Rows guessed to be on the face of the maximiser (e.g. an interior point's
        largest cone multipliers, or the face at an earlier dual point): warm start of
        the projection.
    stop_below : float, optional
        Pricing: stop as soon as the certified upper bound is at most this (the pattern
        cannot violate); ``upper`` is then that bound, ``lower`` is 0 and ``x`` None.

    Returns
    -------
    upper : float
        Certified upper bound (dual value of explicit multipliers ``mu >= 0``).
    lower : float
        Value of a primal feasible point (``-inf`` when none was built).
    x : ndarray of shape (d_aug,) or None
        That primal point (penalised norm 1).
    fallback : bool
        Whether the SOCP fallback was used.
    a : ndarray of shape (d_aug,) or None
        Only with ``correction=True``: ``G^T mu``, the multipliers' part of the residual
        ``r = c + G^T mu`` the upper bound was computed from (None after the SOCP
        fallback). For any other ``c'`` and ``t >= 0``, ``c' + t a`` is the residual of the
        multipliers ``t mu >= 0``: a certified bound for ``c'`` with no solve
        (:func:`warm_bounds`).
    """
    out = _pattern_value(Xa, mask, c, free_bias=free_bias, R=R, max_rounds=max_rounds,
                         init=init, stop_below=stop_below)
    return out if correction else out[:4]


def _pattern_value(Xa, mask, c, *, free_bias, R, max_rounds, init, stop_below=None,
                   face_out=None, compiled=False, rows=None):
    """:func:`pattern_value` with the correction ``a = r - c`` as a fifth element.

    ``init`` warm-starts the projection with either norm here (a free bias: the weighted
    one). ``face_out``: a list, given the face of the projection (the rows of positive
    multiplier, indices into ``Xa``) where one was computed, the next evaluation's
    ``init`` (pricing: :class:`PricingMultipliers`). ``compiled``: the projections by the
    compiled kernel (:func:`_project_cone`). ``rows``: the :class:`_RowNorms` of ``Xa``
    (its rows' norms, computed once for every pattern of a pass); with at least
    ``_SCREEN_FROM_ROWS`` rows the projections then run over working sets of the cone's
    rows (:func:`_over_row_sets`) and the ``n x d_aug`` cone matrix is formed only by the
    last resort (the constraint-generation rounds below, after both projections)."""
    from scipy.optimize import lsq_linear

    # (a column of a block of masks is strided: one contiguous copy for the n-row passes)
    mask = np.ascontiguousarray(mask, dtype=bool)
    A = cone_signs(mask)
    d_aug = Xa.shape[1]
    screen = rows is not None and Xa.shape[0] >= _SCREEN_FROM_ROWS
    G = None if screen else A[:, None] * Xa

    def G_of(idx):  # the cone's rows idx
        return G[idx] if G is not None else A[idx, None] * Xa[idx]

    found = (0.0, None)  # the best primal point of the stages before the last resort

    def keep_best(prim):
        nonlocal found
        if prim is not None and prim[1] is not None and prim[0] > found[0]:
            found = prim

    if not free_bias:
        # full norm: Moreau, max_{x in K, ||x|| <= 1} c^T x = ||proj_K(c)||, computed by an
        # exact Lawson-Hanson projection; its bound ||c + Gn^T mu|| uses explicit mu >= 0
        c = np.asarray(c, dtype=np.float64)
        stop = None if stop_below is None else \
            (lambda P, mu, u: float(np.linalg.norm(u)) <= stop_below)
        spec = (stop_below, 0.0, 0.0, False)
        if screen:
            norms = rows.plain(Xa)
            U, u, face = _project_screened(Xa, A, None, norms, c, init, stop, spec, compiled,
                                           single=rows.single(Xa, False))
        else:
            norms = np.linalg.norm(G, axis=1)
            nz = norms > 0
            Gn = G[nz] / norms[nz, None]
            U, u, face = _project_cone(Gn, c, init=_nonzero_positions(init, nz), stop=stop,
                                       stop_spec=spec, compiled=compiled)
            face = np.flatnonzero(nz)[face]
        if face_out is not None:
            face_out.append(face)
        scale_c = float(np.linalg.norm(c)) + 1e-300
        if U <= 1e-15 * scale_c or (stop_below is not None and U <= stop_below):
            return max(U, 0.0), 0.0, None, False, u - c
        prim = _primal(c, Xa, mask, u, False, norms=norms)
        keep_best(prim)
        if prim is not None and U - prim[0] <= _VERIFY_RTOL * scale_c:
            return U, prim[0], prim[1], False, u - c
    else:
        # free bias: the same exact projection with the bias coordinate weighted by w, so
        # that (c + G^T mu)_{d+1} ~ 0; the bound is recomputed unweighted from the explicit
        # mu >= 0 (its residual in the bias coordinate costs |r_{d+1}| R), and a primal
        # point built from the direction checks it to the verification tolerance
        wgt = _BIAS_WEIGHT
        colw = _weights(d_aug, True, wgt)
        if screen:
            rown = rows.weighted(Xa)
        else:
            Gw = G * colw
            rown = np.linalg.norm(Gw, axis=1)
        cw = np.asarray(c, dtype=np.float64) * colw
        all_active = bool(np.all(mask))
        early = []

        def stop_at(idx, mu_w):
            # the unweighted bound of these multipliers (mu >= 0 whatever the weights)
            r_ = c + G_of(idx).T @ (mu_w / rown[idx])
            U_ = _upper(r_, True, R, all_active)
            if U_ <= stop_below:
                early.append((U_, r_))
                return True
            return False

        spec = (stop_below, wgt, R, all_active)
        if screen:
            stop = None if stop_below is None else (lambda idx, mu_w, u: stop_at(idx, mu_w))
            _, _, face, S = _project_screened(Xa, A, colw, rown, cw, init, stop, spec,
                                              compiled, keep_rows=True,
                                              single=rows.single(Xa, True))
        else:
            nz = rown > 0
            nzi = np.flatnonzero(nz)
            stop = None if stop_below is None else \
                (lambda P, mu_w, u: stop_at(nzi[P], mu_w))
            _, _, face = _project_cone(Gw[nz] / rown[nz, None], cw,
                                       init=_nonzero_positions(init, nz), stop=stop,
                                       stop_spec=spec, compiled=compiled)
            face = nzi[face]
        if face_out is not None:
            face_out.append(face)
        if early:
            return max(early[0][0], 0.0), 0.0, None, False, early[0][1] - c
        scale_c = float(np.linalg.norm(c)) + 1e-300
        nu = None
        if face.size:
            Gf = G_of(face)
            mu = np.linalg.lstsq((Gf * colw / rown[face, None]).T, -cw, rcond=None)[0]
            mu = np.maximum(mu, 0.0) / rown[face]
            mu, nu = _equality_polish(Gf, c, mu)  # (c + G^T mu)_{d+1} = 0 exactly
            r = c + Gf.T @ mu
        else:
            r = np.asarray(c, dtype=np.float64).copy()
        U = _upper(r, True, R, all_active)
        tight = (U, r)  # the smallest certified bound so far (the SOCP's stand-in)
        if np.isfinite(U):
            if U <= 1e-15 * scale_c:
                return max(U, 0.0), 0.0, None, False, r - c
            nr1 = float(np.linalg.norm(r[:-1]))
            xs = r if nu is None or nr1 == 0 else np.concatenate([r[:-1], [nu]]) / nr1
            prim = _primal(c, Xa, mask, xs, True, b_hint=float(xs[-1]))
            keep_best(prim)
            if prim is None or prim[0] <= 0.0:
                prim = (0.0, None)  # x = 0 is feasible: the value is >= 0
            if U - prim[0] <= _VERIFY_RTOL * scale_c:
                return U, prim[0], prim[1], False, r - c
        # the weighted projection's face was not the optimum's: the exact active set (its
        # KKT systems by least squares, then by an LU factor: _project_cone_free)
        for lu in (False, True):
            if screen:
                ex = _project_free_screened(Xa, A, rows.plain(Xa), c, face, S, lu=lu,
                                            single=rows.single(Xa, False))
            else:
                ex = _project_cone_free(G, c, init=face, lu=lu)
            if ex is None:
                continue
            mu, rows2, nu = ex
            r = c + G_of(rows2).T @ mu
            U = _upper(r, True, R, all_active)
            if U < tight[0]:
                tight = (U, r)
            nr1 = float(np.linalg.norm(r[:-1]))
            if np.isfinite(U) and nr1 > 0:
                if U <= 1e-15 * scale_c:
                    return max(U, 0.0), 0.0, None, False, r - c
                xs = np.concatenate([r[:-1], [nu]]) / nr1
                prim = _primal(c, Xa, mask, xs, True, b_hint=float(xs[-1]))
                keep_best(prim)
                if prim is None or prim[0] <= 0.0:
                    prim = (0.0, None)
                if U - prim[0] <= _VERIFY_RTOL * scale_c:
                    return U, prim[0], prim[1], False, r - c
    if G is None:  # the last resort: the whole cone matrix
        G = A[:, None] * Xa
    if not free_bias:
        tight = (U, u)
    all_active = bool(free_bias and np.all(mask))
    scale_c = float(np.linalg.norm(c)) + 1e-300
    wv = _weights(d_aug, free_bias, _BIAS_WEIGHT)
    rownorm = np.linalg.norm(G, axis=1) + 1e-300
    S = np.zeros(0, dtype=int)
    mu = np.zeros(0)
    add = max(2 * d_aug, 8)
    best = found  # (x = 0 is feasible: the value is >= 0)
    U = np.inf  # the rounds' last bound (valid: any mu >= 0 gives one)
    for _ in range(max_rounds):
        if S.size:
            B = (G[S] * wv[None, :]).T
            res = lsq_linear(B, -wv * c, bounds=(0.0, np.inf), method="bvls")
            mu = np.maximum(res.x, 0.0)
            nu = None
            if free_bias:
                mu, nu = _equality_polish(G[S], c, mu)
            r = c + G[S].T @ mu
        else:
            r = c.copy()
            nu = None
        U = _upper(r, free_bias, R, all_active)
        nr = np.linalg.norm(wv * r)
        if nr <= 1e-15 * scale_c or U <= 1e-15 * scale_c:
            return max(U, 0.0), 0.0, None, False, r - c
        xs = wv * wv * r / nr  # maximiser of the weighted relaxation
        if nu is not None:  # exact equality: b is the equality's multiplier
            nr1 = np.linalg.norm(r[:-1])
            if nr1 > 0:
                xs = np.concatenate([r[:-1], [nu]]) / nr1
        viol = (G @ xs) / rownorm
        prim = _primal(c, Xa, mask, xs, free_bias, b_hint=float(xs[-1]))
        if prim is not None:
            L, x = prim
            if L > best[0]:
                best = (L, x)
        if U - best[0] <= _VERIFY_RTOL * scale_c:
            return U, best[0], best[1], False, r - c
        if U < tight[0]:
            tight = (U, r)
        viol[S] = np.inf  # (the rows in S are not new; no set difference over n rows)
        bad = _most_violated(viol, 1e-13, add)  # (a partition, not a sort of all)
        if bad.size == 0:
            break
        S = np.union1d(S, bad)
    if Xa.shape[0] > _SOCP_MAX_ROWS:
        return tight[0], best[0], best[1], True, tight[1] - c
    U2, L2, x2 = pattern_value_socp(Xa, mask, c, free_bias=free_bias, R=R)
    if best[0] > L2:
        L2, x2 = best
    # both are upper bounds (from multipliers mu >= 0): the SOCP's where its solver
    # failed is the loose one of mu = 0
    return min(U2, U), L2, x2, True, None


def pattern_value_socp(Xa: np.ndarray, mask: np.ndarray, c: np.ndarray, *,
                       free_bias: bool = False, R: float = 0.0):
    """The same value by a direct SOCP (cvxpy + Clarabel with tight tolerances).

    Returns ``(upper, lower, x)``: the upper bound is recomputed from the SOCP's cone
    multipliers (clipped to ``mu >= 0``), so it is certified whatever the solver accuracy.
    Where the solver fails twice (tight, then default tolerances), the bound is that of
    ``mu = 0`` (valid, loose: the value without the cone) and ``x`` is None; it raises
    nothing.
    """
    import cvxpy as cp

    mask = np.asarray(mask, dtype=bool)
    A = cone_signs(mask)
    G = A[:, None] * Xa
    d_aug = Xa.shape[1]
    x = cp.Variable(d_aug)
    norm_part = x[: d_aug - 1] if free_bias else x
    cons = [G @ x >= 0, cp.norm(norm_part, 2) <= 1]
    if free_bias:
        cons.append(cp.abs(x[-1]) <= 10.0 * (R + 1.0))  # keeps the all-active cell bounded
    prob = cp.Problem(cp.Maximize(c @ x), cons)
    with warnings.catch_warnings():
        # the bound below is recomputed from the explicit multipliers, whatever the
        # solver's accuracy: its "Solution may be inaccurate" is not for the user
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        solved = False
        for opts in ({"tol_gap_abs": 1e-11, "tol_gap_rel": 1e-11, "tol_feas": 1e-11}, {}):
            try:
                prob.solve(solver="CLARABEL", **opts)
                solved = True
                break
            except cp.error.SolverError:
                continue  # (Clarabel failed on a digits certificate's projection)
    dual = cons[0].dual_value if solved else None
    mu = np.zeros(G.shape[0]) if dual is None else \
        np.maximum(np.asarray(dual, dtype=float).reshape(-1), 0.0)
    r = c + G.T @ mu
    all_active = bool(free_bias and np.all(mask))
    U = _upper(r, free_bias, R, all_active)
    xv = None if (not solved or x.value is None) else np.asarray(x.value, dtype=float)
    L = 0.0
    if xv is not None:
        prim = _primal(c, Xa, mask, xv, free_bias, b_hint=float(xv[-1]))
        if prim is not None and prim[0] > L:
            L, xv = prim
    if not np.isfinite(U) and np.isfinite(L) and solved and prob.status == "optimal" \
            and not all_active:
        U = float(prob.value)  # pragma: no cover
    return U, L, xv


# --------------------------------------------------------------------------- all patterns
def _prepare(Xa: np.ndarray, free_bias: bool):
    """Translate the data (free bias only) so that ``R = max ||x_j||`` is small."""
    if not free_bias:
        return Xa, np.zeros(Xa.shape[1] - 1), 0.0
    shift = Xa[:, :-1].mean(axis=0)
    Xt = Xa.copy()
    Xt[:, :-1] -= shift
    R = float(np.max(np.linalg.norm(Xt[:, :-1], axis=1))) if Xt.shape[0] else 0.0
    return Xt, shift, R


def _candidate_rows(P: np.ndarray, k: int = 1024) -> np.ndarray:
    """Rows used by the free-bias cheap bound: all rows (up to ``k``), or a spread-out
    subset (the extreme rows of ``P``, the data without the bias column, along ``k / 2``
    fixed random directions). Every row tried can only tighten the bound; all ``n`` of
    them cost one ``n x block`` product per block of patterns."""
    n = P.shape[0]
    if n <= k:
        return np.arange(n)
    rng = np.random.default_rng(0)
    dirs = rng.standard_normal((P.shape[1], k // 2))
    # (k / 2, block): the arg-reductions run along contiguous rows (along axis 0 of the
    # (n, k / 2) product they took 18x longer: 0.24 s against 0.013 s at n = 10,000, 3.7 s
    # against 0.13 s at n = 100,000, once per pricing call); the samples in blocks of
    # _CANDIDATE_BLOCK (the whole (k / 2, n) product was 0.9 GB at n = 225,000, a fit's
    # peak)
    hi, lo = np.full(k // 2, -np.inf), np.full(k // 2, np.inf)
    arg_hi, arg_lo = np.zeros(k // 2, np.intp), np.zeros(k // 2, np.intp)
    at = np.arange(k // 2)
    for s in range(0, n, _CANDIDATE_BLOCK):
        proj = dirs.T @ P[s:s + _CANDIDATE_BLOCK].T
        for arg, best, pick, better in ((arg_hi, hi, proj.argmax(axis=1), np.greater),
                                        (arg_lo, lo, proj.argmin(axis=1), np.less)):
            val = proj[at, pick]
            new = better(val, best)  # strictly: the first such row, as one product's
            best[new], arg[new] = val[new], pick[new] + s
    return np.unique(np.concatenate([arg_hi, arg_lo]))


# samples per block of _candidate_rows's projections (16 MB of them at k = 1024)
_CANDIDATE_BLOCK = 4096


_CANDIDATE_CACHE: dict = {}


def _cached_candidate_rows(X: np.ndarray) -> np.ndarray:
    """:func:`_candidate_rows` of the data ``X`` (the rows, ``n x d``; a translation of
    the data does not change which rows are extreme along a direction), remembered for the
    last array seen: pricing calls :func:`dual_constraint` once per chunk of patterns and
    per round on the same data (0.13 s per call at n = 100,000, a fifth of a whole
    make_regression(100000, 20) ReLU solve). The key is the array's identity, address,
    shape and a sample of its entries; any row set gives a valid bound (only its
    tightness depends on the rows), so a stale entry could never make a bound unsound."""
    flat = X.reshape(-1)
    sample = flat[::max(1, flat.size // 64)].tobytes() if flat.size else b""
    key = (id(X), X.__array_interface__["data"][0], X.shape, sample)
    rows = _CANDIDATE_CACHE.get(key)
    if rows is None:
        rows = _candidate_rows(X)
        _CANDIDATE_CACHE.clear()
        _CANDIDATE_CACHE[key] = rows
    return rows


def _cheap_bounds(C: np.ndarray, masks: np.ndarray, Xt: np.ndarray, R: float,
                  cand_rows, act=None) -> np.ndarray:
    """Upper bounds on ``M_i^+`` (row 0) and ``M_i^-`` (row 1) for a block of patterns.

    Without a free bias: ``||c_i||``. With one (``cand_rows`` given): for any row ``k``
    with ``A_k = -sign(c_{i,d+1})`` (inactive for ``+c``), the multiplier
    ``mu = |c_{d+1}| e_k`` zeroes the bias coordinate, so
    ``M_i^+ <= ||c_{1:d} - c_{d+1} x_k||``; also ``M_i^+ <= ||c_{1:d}|| + |c_{d+1}| R``
    except on the all-active cell (``b`` unbounded above there). ``act``: the masks'
    rows ``cand_rows`` when already taken (they do not depend on ``C``).
    """
    if cand_rows is None:
        nb = np.linalg.norm(C, axis=0)
        return np.vstack([nb, nb])
    cw, cb = C[:-1], C[-1]
    base = np.linalg.norm(cw, axis=0)
    rb = base + np.abs(cb) * R
    allact = np.all(masks, axis=0)
    rb_plus = np.where(allact & (cb > 0), np.inf, rb)
    rb_minus = np.where(allact & (cb < 0), np.inf, rb)
    Pk = Xt[cand_rows, :-1]  # (k, d)
    # f[k, i] = ||c_{1:d} - c_{d+1} x_k||
    f2 = (base ** 2)[None, :] - 2.0 * cb[None, :] * (Pk @ cw) + \
        (cb ** 2)[None, :] * np.sum(Pk ** 2, axis=1)[:, None]
    f = np.sqrt(np.maximum(f2, 0.0)) * (1.0 + 1e-12) + 1e-300
    act = masks[cand_rows] if act is None else act
    f_inact = np.where(~act, f, np.inf).min(axis=0)
    f_act = np.where(act, f, np.inf).min(axis=0)
    pos = cb >= 0
    bp = np.minimum(rb_plus, np.where(pos, f_inact, f_act))
    bm = np.minimum(rb_minus, np.where(pos, f_act, f_inact))
    return np.vstack([bp, bm])


def warm_bounds(C: np.ndarray, A: np.ndarray, masks: np.ndarray, free_bias: bool,
                R: float) -> np.ndarray:
    """Certified bounds on ``M_i^{sign}`` from earlier multipliers, no solve.

    ``C`` (d_aug, m): the patterns' ``c_i = X_aug^T D_i lambda`` at the current dual point;
    ``A`` (m, d_aug): corrections ``a_i = G_i^T mu_i`` (``mu_i >= 0``) kept from an earlier
    refinement of ``sign * c_i`` (NaN rows: none kept). For every ``t >= 0`` the residual
    ``sign c_i + t a_i`` belongs to the multipliers ``t mu_i >= 0``, so its
    :func:`_upper` value bounds ``M_i`` (weak duality, docs/mathematics.rst §4.2); the
    bound is taken at ``t = 1`` and at the ``t`` minimising ``||sign c_i + t a_i||``.
    Near a converged dual point the multipliers change little and the bound is within
    ``O(||Delta c_i||)`` of the exact value. Returns the (m,) bounds (inf where none is
    kept), inflated by ``1e-12`` relatively for rounding.
    """
    m = C.shape[1]
    out = np.full(m, np.inf)
    ok = ~np.isnan(A[:, 0])
    if not np.any(ok):
        return out
    c = C[:, ok].T  # (k, d_aug)
    a = A[ok]
    aa = np.einsum("kd,kd->k", a, a)
    t = np.where(aa > 0, np.maximum(-np.einsum("kd,kd->k", c, a) / np.where(aa > 0, aa, 1.0),
                                    0.0), 1.0)
    best = np.full(c.shape[0], np.inf)
    allact = np.all(masks[:, ok], axis=0) if free_bias else None
    for tt in (np.ones_like(t), t):
        r = c + tt[:, None] * a
        if not free_bias:
            b = np.linalg.norm(r, axis=1)
        else:
            base = np.linalg.norm(r[:, :-1], axis=1)
            eps = r[:, -1]
            b = base + np.abs(eps) * R
            # the all-active cell: b unbounded above, finite only for a nonpositive last entry
            b = np.where(allact, np.where(eps > 1e-12 * (1.0 + base), np.inf, base), b)
        best = np.minimum(best, b)
    out[ok] = best * (1.0 + 1e-12)
    return out


def _subset(rows: dict, start: int, stop: int) -> dict:
    """The entries of ``rows`` with keys in ``start:stop`` (the shorter loop of the two)."""
    if len(rows) <= stop - start:
        return {k: v for k, v in rows.items() if start <= k < stop}
    return {k: rows[k] for k in range(start, stop) if k in rows}


class PricingMultipliers:
    """Multipliers kept between evaluations of :func:`dual_constraint` on one pattern set.

    Each refinement of a pattern's value leaves the correction ``a = G^T mu`` of its
    certified bound (:func:`pattern_value` with ``correction=True``); at the next dual
    point :func:`warm_bounds` turns it into a certified bound with one product, so only
    the patterns whose warm bound still exceeds the running maximum are refined again. A
    working-set loop's dual points change little from round to round, and this is what
    makes repeated pricing cheap. Tied to one pattern set, one ``X`` and one
    ``penalize_bias``: the owner (a pricing oracle) keeps it with them.
    """

    def __init__(self) -> None:
        self.rows: dict = {}  # pattern index -> (2, d_aug): signs +1, -1 (NaN: none)
        # pattern index -> [face for +1, face for -1] (None: none): the rows of positive
        # multiplier, where the refinement of that pattern and sign starts next time
        self.faces: dict = {}
        # refinements made before for the dual points these multipliers serve (a
        # working-set loop's pricing, for its restricted programs' certificates): counted
        # with a pass's own by :func:`_compiled_after`
        self.refined_before = 0

    def update(self, new: dict, faces: Optional[dict] = None) -> None:
        """Merge ``{(index, sign_row): a}`` from a chunk's refinements, and their faces
        ``{(index, sign_row): rows}``."""
        for (k, srow), a in new.items():
            cur = self.rows.get(k)
            if cur is None:
                cur = np.full((2, a.shape[0]), np.nan)
                self.rows[k] = cur
            cur[srow] = a
        for (k, srow), face in (faces or {}).items():
            self.faces.setdefault(k, [None, None])[srow] = face


_SHARED = threading.local()


@contextmanager
def shared_preparation(keep: Optional[dict] = None):
    """Within it, the evaluations of the dual constraint over chunks of one pattern set
    (a pricing's, :class:`convexrelu.solvers._column_generation._PatternOracle`) share
    their preparation of the data: the augmented and translated data, the rows' norms and
    the products with the dual points, made once instead of once per chunk (each an
    ``n x d_aug`` array). Released at the end; chunks evaluated in other processes
    prepare their own. Thread-local. The arrays given to the evaluations (the data, the
    dual points) must not change inside it: they are recognised by identity.

    ``keep``: a dict that holds the preparation from one use to the next (a working-set
    loop's pricing passes over the same data): what does not depend on the dual points
    stays in it at the end (the data's check, its augmented and translated copies, the
    rows' norms: at ``n = 10^6`` several seconds a pass), the rest is released."""
    outer = getattr(_SHARED, "cache", None)
    if outer is None:
        _SHARED.cache = {} if keep is None else keep
    try:
        yield
    finally:
        if outer is None:
            _SHARED.cache = None
            if keep is not None:
                for key in [key for key in keep if key[0] in _PER_DUAL_POINT]:
                    del keep[key]


#: the entries of a shared preparation made for the dual points (not kept)
_PER_DUAL_POINT = ("lams", "XL")


def _shared(key: tuple, make):
    """``make()``, kept for the same ``key`` inside :func:`shared_preparation`. The key's
    arrays are compared by identity, and the entry holds them (an identity cannot be
    reused while it lives)."""
    cache = getattr(_SHARED, "cache", None)
    if cache is None:
        return make()
    ids = tuple(k if isinstance(k, (str, int, float, bool, type(None))) else id(k)
                for k in key)
    hit = cache.get(ids)
    if hit is None:
        hit = cache[ids] = (key, make())
    return hit[1]


def dual_constraint(patterns, X, lam, *, penalize_bias: bool = True,
                    block_size: int = 8192, refine: bool = True,
                    n_jobs=None, multipliers: Optional[PricingMultipliers] = None,
                    threshold: Optional[float] = None) -> DualConstraintValue:
    """Evaluate ``M(lambda)`` over a pattern set, bound-then-refine (docs/mathematics.rst §4.2,
    §8.5).

    Parameters
    ----------
    patterns : ActivationPatterns
        Exact or sampled patterns of ``X`` (``patterns.bias`` decides ``X_aug``).
    X : array-like of shape (n_samples, n_features)
    lam : array-like of shape (n_samples,) or (n_samples, n_outputs)
        The dual point. With a free hidden bias (``patterns.bias`` and not
        ``penalize_bias``) it must be centred (``1^T lambda = 0``), otherwise constant
        neurons make ``M`` infinite.
    penalize_bias : bool, default=True
        With ``patterns.bias``: whether the hidden bias is penalised (full norm) or free
        (norm of the weight part only, docs/mathematics.rst §8.2). Ignored without bias.
    block_size : int, default=8192
        Patterns per block (memory ``~ 8 * n_samples * block_size`` bytes).
    refine : bool, default=True
        Compute exact values; with ``False`` only the cheap upper bounds (conservative).
    n_jobs : int or None, default=None
        Chunks of the pattern set evaluated in parallel by joblib (``None``: one worker
        unless in a ``joblib.parallel_config`` context; ``-1``: all). Under
        ``joblib.parallel_config(backend="dask")`` the chunks run on the workers of a
        Dask cluster, which regenerate the masks from the gates. The chunks do not depend
        on ``n_jobs``, so the value, the maximiser and ``lower`` are the same for every
        ``n_jobs`` and backend.
    multipliers : optional
        A ``PricingMultipliers`` holding the multipliers of earlier evaluations on the
        same patterns, ``X`` and ``penalize_bias`` (scalar ``lam`` only): their warm
        bounds (``G^T mu`` of each refinement, valid at any dual point by weak duality)
        spare the refinement of every pattern they already bound below the running
        maximum, and this call's refinements are added to them. The bound stays certified;
        the maximiser found can differ from a cold evaluation's only among patterns
        whose values tie to within the refinement's accuracy. Its ``refined_before``
        counts as refinements made before this call (``dual_constraints``).
    threshold : float, optional
        Pricing mode. Patterns whose cheap or warm bound is at most ``threshold`` are not
        refined, and once a chunk of patterns has found a value above ``threshold (1 +
        1e-3)`` (a clear violation) it refines at most a few more (the largest bounds
        first). ``value`` stays a certified upper bound on
        ``M``: at most ``threshold`` when nothing exceeds it, otherwise possibly above the
        exact maximum, with ``pattern_index`` a violating pattern (not necessarily the
        maximiser) and ``lower`` its value. This is what a pricing step needs: a
        violator per chunk while there are some, and a valid bound when there are none.

    Returns
    -------
    DualConstraintValue
    """
    from .._parallel import chunk_ranges, map_chunks

    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim == 2 and lam.shape[1] == 1:
        lam = lam[:, 0]
    if lam.ndim == 2:
        X = np.asarray(X, dtype=np.float64)
        patterns.check_data(X)
        Xa = patterns.augment(X)
        free_bias = bool(patterns.bias and not penalize_bias)
        Xt, shift, R = _prepare(Xa, free_bias)
        ranges = chunk_ranges(patterns.n_patterns, _chunk_size(block_size))
        parts = map_chunks(_vector_chunk, patterns, ranges, Xa,
                           (Xt, shift, R, lam, free_bias, block_size), n_jobs)
        return _merge_vector(parts, patterns, shift, free_bias, Xa.shape[1])
    return dual_constraints(patterns, X, [lam], penalize_bias=penalize_bias,
                            block_size=block_size, refine=refine, n_jobs=n_jobs,
                            multipliers=[multipliers], thresholds=[threshold])[0]


def dual_constraints(patterns, X, lams, *, penalize_bias: bool = True,
                     block_size: int = 8192, refine: bool = True, n_jobs=None,
                     multipliers=None, thresholds=None, refined_before=None,
                     every_violator=False) -> list:
    """:func:`dual_constraint` at several scalar dual points, in one pass over the masks.

    The one-vs-rest classes of a classifier and the outputs of a multi-output regression
    have one dual point each over the same patterns: each block of masks is unpacked once
    and ``X_aug^T D_i lambda`` of all the dual points is one product; the refinements are
    each dual point's own. The results are those of :func:`dual_constraint` called on each
    dual point alone.

    Parameters
    ----------
    patterns, X, penalize_bias, block_size, refine, n_jobs
        As in :func:`dual_constraint`.
    lams : sequence of array-like of shape (n_samples,)
    multipliers, thresholds : sequence, optional
        One ``PricingMultipliers`` (or None) and one threshold (or None) per dual point.
    refined_before : sequence of int, optional
        Per dual point, the refinements made for it before this call (a working-set
        loop's earlier rounds; default 0): with :func:`_compiled_after` they decide
        when its pass switches to the compiled cone projection (numba, where installed).
    every_violator : bool or sequence of bool, default=False
        With thresholds (per dual point where a sequence): every pattern whose value is
        above the dual point's threshold is refined to that value and listed in
        ``violators``, up to ``_COLLECT_MAX`` a chunk (otherwise, and beyond those, a
        pattern below the largest value found so far is refined only until it is shown
        below it).

    Returns
    -------
    list of DualConstraintValue
        One per dual point, in order.
    """
    from .._parallel import chunk_ranges, map_chunks

    X = np.asarray(X, dtype=np.float64)
    # (a digest of all of X: once per pricing, not once per chunk)
    _shared(("checked", X, patterns.n_samples, patterns.n_features, patterns.bias,
             patterns.fingerprint), lambda: patterns.check_data(X) or True)
    Xa = _shared(("augment", X, patterns.bias), lambda: patterns.augment(X))
    lams = _shared(("lams", *lams), lambda: [np.asarray(lam, dtype=np.float64).reshape(-1)
                                             for lam in lams])
    for lam in lams:
        if lam.shape[0] != X.shape[0]:
            raise ValueError(f"each dual point needs {X.shape[0]} entries (one per sample); "
                             f"got {lam.shape[0]}.")
    k = len(lams)
    multipliers = [None] * k if multipliers is None else list(multipliers)
    thresholds = [None] * k if thresholds is None else list(thresholds)
    free_bias = bool(patterns.bias and not penalize_bias)
    Xt, shift, R = _shared(("prepare", Xa, free_bias), lambda: _prepare(Xa, free_bias))
    norms = _shared(("norms", Xt), _RowNorms) if Xt.shape[0] >= _SCREEN_FROM_ROWS else None
    d_aug = Xa.shape[1]
    ranges = chunk_ranges(patterns.n_patterns, _chunk_size(block_size))
    cand_rows = _cached_candidate_rows(X) if free_bias else None
    if cand_rows is not None:  # the cheap bound holds a (rows x block) matrix: cap it
        block_size = max(64, min(block_size, (1 << 22) // max(cand_rows.size, 1)))
    warms = [None if m is None else (m.rows, m.faces) for m in multipliers]
    collect = [bool(every_violator)] * k if np.ndim(every_violator) == 0 else \
        [bool(c) for c in every_violator]
    before = [0] * k if refined_before is None else [int(r) for r in refined_before]
    before = [b if m is None else max(b, int(getattr(m, "refined_before", 0)))
              for b, m in zip(before, multipliers)]
    parts = map_chunks(_scalar_chunk, patterns, ranges, Xa,
                       (Xt, lams, shift, R, cand_rows, free_bias, refine, block_size, warms,
                        thresholds, before, norms, collect), n_jobs)
    return [_merge_scalar([part[j] for part in parts], patterns, multipliers[j], shift,
                          free_bias, refine, d_aug) for j in range(k)]


def _merge_scalar(parts, patterns, multipliers, shift, free_bias, refine, d_aug):
    """One dual point's :class:`DualConstraintValue` from its chunks' results (in chunk
    order, with the strict comparisons of one long pass)."""
    best_U = -np.inf
    best_L = -np.inf
    best_x = np.zeros(d_aug)
    best_sign, best_idx = 1, -1
    gate_lower = 0.0
    gate_best = (0.0, np.zeros(d_aug), 1, -1)
    n_checked = n_refined = n_fallbacks = 0
    violators = []
    for part in parts:
        (U, L, x, sgn, idx), (glow, gbest), counts, new, viol = part
        violators.extend(viol)
        if multipliers is not None:
            multipliers.update(*new)
        if U > best_U:
            best_U, best_L, best_x, best_sign, best_idx = U, L, x, sgn, idx
        if glow > gate_lower:
            gate_lower, gate_best = glow, gbest
        n_checked, n_refined, n_fallbacks = (a + b for a, b in
                                             zip((n_checked, n_refined, n_fallbacks), counts))
    if patterns.n_patterns == 0:
        best_U = 0.0
    if not refine:
        _, gx, gs, gi = gate_best
        best_x, best_sign, best_L = gx, gs, gate_lower
    direction = best_x.copy()
    if free_bias:
        direction[-1] = direction[-1] - shift @ direction[:-1]
    if not np.isfinite(best_U):
        from .._warnings import user_stacklevel

        warnings.warn("M(lambda) is infinite: the dual point is not centred although the "
                      "hidden bias is free (constant neurons are unpenalised).", RuntimeWarning,
                      stacklevel=user_stacklevel())
    return DualConstraintValue(
        value=max(float(best_U), 0.0), lower=float(max(best_L, gate_lower)), direction=direction,
        sign=int(best_sign), pattern_index=int(best_idx), exact=bool(patterns.exact),
        conservative=not refine, n_patterns_checked=n_checked, n_refined=n_refined,
        n_fallbacks=n_fallbacks, gate_lower=gate_lower, violators=tuple(violators),
    )


def _chunk_size(block_size: int) -> int:
    """Patterns per parallel chunk: a whole number of blocks, independent of ``n_jobs``."""
    from .._parallel import CHUNK_SIZE

    b = max(1, int(block_size))
    return b * max(1, CHUNK_SIZE // b)


#: entries of each row chunk of the masks in :func:`masked_sums`, in chunks of at least
#: ``_MASKED_SUM_MIN_ROWS`` rows (8 rows a chunk of 8,192 patterns were 4x slower)
_MASKED_SUM_ENTRIES = 1 << 16
_MASKED_SUM_MIN_ROWS = 64


def masked_sums(XL: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``XL.T @ masks`` for bool ``masks`` (n x b), by chunks of rows: each chunk of the
    masks is cast to floats on its own, where the whole product cast all of them at once
    (an ``n x b`` float64 temporary: 800 MB at ``n = 10^6``, ``b = 100``; the chunked
    product took 0.16 s against 0.22-0.55 s there, one BLAS thread)."""
    n, b = masks.shape
    out = np.zeros((XL.shape[1], b))
    step = max(_MASKED_SUM_MIN_ROWS, _MASKED_SUM_ENTRIES // max(b, 1))
    for a in range(0, n, step):
        # (cast explicitly: matmul's own cast of a column-major chunk, the layout of
        # unpacked masks, was 3x slower)
        out += XL[a:a + step].T @ masks[a:a + step].astype(np.float64)
    return out


def _scalar_chunk(patterns, offset, Xt, lams, shift, R, cand_rows, free_bias, refine,
                  block_size, warms=None, thresholds=None, refined_before=None, norms=None,
                  every_violator=None):
    """Bound-then-refine over one chunk of patterns for one or several dual points
    (indices reported from ``offset``), in one pass over the chunk's masks.

    ``lams``: a list of ``(n,)`` dual points (the one-vs-rest classes or outputs of a fit
    evaluated together: each block of masks is unpacked once and ``X_aug^T D_i lambda`` of
    all of them is one product); ``warms`` and ``thresholds``: one entry per dual point
    (see :class:`_ScalarPass`), as ``refined_before`` (the refinements made before, per
    dual point). ``norms``: the :class:`_RowNorms` of ``Xt`` (large ``n``: the cones'
    projections over working sets of their rows), or None. Returns one result per dual
    point, each as :meth:`_ScalarPass.result`.
    """
    k = len(lams)
    warms = [None] * k if warms is None else warms
    thresholds = [None] * k if thresholds is None else thresholds
    before = [0] * k if refined_before is None else refined_before
    d_aug = Xt.shape[1]
    collect = [False] * k if every_violator is None else every_violator
    passes = [_ScalarPass(d_aug, R, cand_rows, free_bias, refine, w, t, b, c)
              for w, t, b, c in zip(warms, thresholds, before, collect)]
    # (n, k d_aug): the columns of every dual point side by side
    XL = _shared(("XL", Xt, *lams), lambda: Xt * np.asarray(lams[0], np.float64)[:, None]
                 if k == 1 else np.hstack([Xt * np.asarray(lam, np.float64)[:, None]
                                           for lam in lams]))
    for start, masks, gates in patterns.iter_blocks(block_size):
        start += offset
        CC = masked_sums(XL, masks)  # (k d_aug, b): c_i = X_aug^T D_i lam, every lam
        Gt = gates.copy()
        if free_bias:
            Gt[-1] += shift @ Gt[:-1]
        gn = np.linalg.norm(Gt[:-1] if free_bias else Gt, axis=0)
        act = None if cand_rows is None else masks[cand_rows]
        for j, ps in enumerate(passes):
            ps.block(start, masks, CC[j * d_aug:(j + 1) * d_aug], Gt, gn, Xt, act, norms)
    return [ps.result() for ps in passes]


class _ScalarPass:
    """The state of one dual point's bound-then-refine over a chunk of patterns.

    ``warm``: None, or the corrections and faces kept by :class:`PricingMultipliers`
    (``(rows, faces)``, dicts by pattern index; only the chunk's entries are read).
    Bounds at most ``threshold`` are not refined (the largest of them counts as the
    chunk's value when no refined value exceeds it); with ``threshold`` the pass also
    stops refining once it has found a value above ``threshold (1 + 1e-3)`` and refined
    ``_PRICING_REFINE`` patterns, and the largest bound left unrefined then raises the
    chunk's value (a certified bound, not the exact maximum). ``every_violator`` (with a
    threshold): every bound above the threshold is refined, with the threshold as its
    early stop, and each value above it listed (``violators``), until ``_COLLECT_MAX`` are
    listed; the pass then goes on as above.
    """

    def __init__(self, d_aug, R, cand_rows, free_bias, refine, warm=None, threshold=None,
                 refined_before=0, every_violator=False):
        self.d_aug, self.R, self.cand_rows = d_aug, R, cand_rows
        # every pattern above the threshold refined to its value and listed (not only
        # the chunk's largest): a working-set loop's later pricing passes
        self.collect = bool(every_violator and threshold is not None and refine)
        self.violators = []
        self.refined_before = int(refined_before)
        self.free_bias, self.refine, self.warm = free_bias, refine, warm
        self.floor = -np.inf if threshold is None else float(threshold)
        self.threshold = threshold
        # a violation by more than 1e-3 relative: this round is far from the optimum, and
        # a bound above the exact maximum costs nothing; a smaller one is refined to the
        # end (near the optimum the working set's own patterns sit at the threshold)
        self.strong = np.inf if threshold is None else self.floor + 1e-3 * abs(self.floor)
        self.chunk_refined = 0
        self.top = (-np.inf, 1, -1)  # the largest bound left unrefined: (bound, sign, index)
        self.best_U = self.best_L = -np.inf
        self.best_x = np.zeros(d_aug)
        self.best_sign, self.best_idx = 1, -1
        self.gate_lower = 0.0
        self.gate_best = (0.0, np.zeros(d_aug), 1, -1)
        self.n_checked = self.n_refined = self.n_fallbacks = 0
        self.new, self.new_faces = {}, {}

    def block(self, start, masks, C, Gt, gn, Xt, act, norms=None):
        """One block of patterns: ``C`` (d_aug, b) their ``X_aug^T D_i lambda``, ``Gt`` and
        ``gn`` their (translated) gates and the gates' norms, ``act`` the masks' candidate
        rows (free bias) or None, ``norms`` the :class:`_RowNorms` of ``Xt`` or None."""
        b = masks.shape[1]
        self.n_checked += b
        bounds = _cheap_bounds(C, masks, Xt, self.R, self.cand_rows, act)  # (2, b): +1, -1
        faces = {}
        if self.warm is not None and self.refine:
            rows = _subset(self.warm[0], start, start + b)
            faces = _subset(self.warm[1], start, start + b)
            if rows:
                A = np.full((2, b, self.d_aug), np.nan)
                for k, v in rows.items():
                    A[:, k - start] = v
                bounds[0] = np.minimum(bounds[0], warm_bounds(C, A[0], masks, self.free_bias,
                                                              self.R))
                bounds[1] = np.minimum(bounds[1], warm_bounds(-C, A[1], masks, self.free_bias,
                                                              self.R))
        # cheap lower bound from the gates
        gv = np.einsum("db,db->b", C, Gt)
        glow = np.abs(gv) / np.where(gn > 0, gn, np.inf)
        if b:
            k = int(np.argmax(glow))
            if glow[k] > self.gate_lower:
                self.gate_lower = float(glow[k])
                self.gate_best = (self.gate_lower, Gt[:, k] / gn[k], 1 if gv[k] >= 0 else -1,
                                  start + k)
        if not self.refine:
            flat = int(np.argmax(bounds)) if b else -1
            if b and bounds.flat[flat] > self.best_U:
                self.best_U, self.best_idx = float(bounds.flat[flat]), start + flat % b
            return
        # (collecting: every bound above the threshold, and the largest below it, which
        # is left unrefined as the chunk's value where nothing violates)
        cand = np.flatnonzero(bounds.ravel() > (min(self.floor, self.best_U) if self.collect
                                                else self.best_U))
        cand = cand[np.argsort(-bounds.ravel()[cand], kind="stable")]
        for f in cand:
            if bounds.flat[f] <= self.best_U and not self.collect:
                break
            if bounds.flat[f] <= self.floor or (self.best_U > self.strong and not self.collect
                                                and self.chunk_refined >= _PRICING_REFINE):
                # below the threshold, or enough refined: kept as a bound
                if bounds.flat[f] > self.top[0]:
                    self.top = (float(bounds.flat[f]), 1 if f < b else -1, start + f % b)
                break
            sgn = 1 if f < b else -1
            k = f % b
            srow = 0 if sgn > 0 else 1
            face = []
            U, L, x, fb, a = _pattern_value(
                Xt, masks[:, k], sgn * C[:, k], free_bias=self.free_bias, R=self.R,
                max_rounds=60, init=faces.get(start + k, (None, None))[srow],
                # only the chunk's largest value counts: a pattern at most the largest so
                # far (a violation, above the threshold) need not be refined to the end
                stop_below=None if self.threshold is None else
                self.floor if self.collect else max(self.floor, self.best_U),
                face_out=face if self.warm is not None else None,
                compiled=self._compiled(Xt), rows=norms)
            if self.warm is not None and a is not None:
                self.new[(start + k, srow)] = a
            if face:
                self.new_faces[(start + k, srow)] = face[0]
            self.n_fallbacks += int(fb)
            self.n_refined += 1
            self.chunk_refined += 1
            if self.collect and U > self.floor:
                self.violators.append((float(U), start + k))
                if len(self.violators) >= _COLLECT_MAX:  # enough: the usual pass from here
                    self.collect = False
            if U > self.best_U:
                self.best_U, self.best_L = U, L
                self.best_sign, self.best_idx = sgn, start + k
                self.best_x = np.zeros(self.d_aug) if x is None else x

    def _compiled(self, Xt) -> bool:
        """Whether the next refinement (cones of the rows of ``Xt``) projects compiled
        (:func:`_compiled_after`)."""
        lim = _compiled_after(*Xt.shape)
        return lim is not None and self.refined_before + self.n_refined >= lim

    def result(self):
        """``((U, L, x, sign, index), (gate_lower, gate_best), (n_checked, n_refined,
        n_fallbacks), new)``: the chunk's best as one pass over it leaves it and, with
        ``warm``, the corrections and faces of this pass's refinements (``({(index,
        sign_row): a}, {(index, sign_row): rows})``)."""
        best = (self.best_U, self.best_L, self.best_x, self.best_sign, self.best_idx)
        if self.top[0] > self.best_U:  # bounds left unrefined: the value is their maximum
            if self.best_U > self.floor and self.best_idx >= 0:
                # a violation found: it stays the chunk's
                best = (self.top[0],) + best[1:]
            else:
                U, sgn, idx = self.top
                best = (U, -np.inf, np.zeros(self.d_aug), sgn, idx)
        return (best, (self.gate_lower, self.gate_best),
                (self.n_checked, self.n_refined, self.n_fallbacks),
                (self.new, self.new_faces), self.violators)


def _vector_chunk(patterns, offset, Xt, shift, R, Lam, free_bias, block_size):
    """One chunk of the conservative bound for a vector dual point (see below)."""
    n, d_aug = Xt.shape
    c = Lam.shape[1]
    XL = (Xt[:, :, None] * Lam[:, None, :]).reshape(n, d_aug * c)
    best_U, best_idx = 0.0, -1
    gate_lower, gate_x = 0.0, np.zeros(d_aug)
    n_checked = 0
    for start, masks, gates in patterns.iter_blocks(block_size):
        start += offset
        b = masks.shape[1]
        n_checked += b
        C = masked_sums(XL, masks).T.reshape(b, d_aug, c)  # C[k] = X_aug^T D_k Lambda
        if free_bias:
            bound = np.linalg.norm(C[:, :-1, :], ord=2, axis=(1, 2)) + \
                np.linalg.norm(C[:, -1, :], axis=1) * R
            bound[np.all(masks, axis=0)] = np.inf
        else:
            bound = np.linalg.norm(C, ord=2, axis=(1, 2))
        k = int(np.argmax(bound)) if b else -1
        if b and bound[k] > best_U:
            best_U, best_idx = float(bound[k]), start + k
        Gt = gates.copy()
        if free_bias:
            Gt[-1] += shift @ Gt[:-1]
        gn = np.linalg.norm(Gt[:-1] if free_bias else Gt, axis=0)
        gv = np.linalg.norm(np.einsum("bdc,db->bc", C, Gt), axis=1) / np.where(gn > 0, gn, 1.0)
        j = int(np.argmax(gv)) if b else -1
        if b and gv[j] > gate_lower:
            gate_lower, gate_x = float(gv[j]), Gt[:, j] / gn[j]
    return best_U, best_idx, gate_lower, gate_x, n_checked


def _merge_vector(parts, patterns, shift, free_bias, d_aug):
    """Conservative bound ``max_i sigma_max(Lambda^T D_i X_aug)`` for a vector dual point,
    from the chunks' results (in chunk order)."""
    best_U, best_idx = 0.0, -1
    gate_lower, gate_x = 0.0, np.zeros(d_aug)
    n_checked = 0
    for U, idx, glow, gx, nc in parts:
        if U > best_U:
            best_U, best_idx = U, idx
        if glow > gate_lower:
            gate_lower, gate_x = glow, gx
        n_checked += nc
    direction = gate_x.copy()
    if free_bias:
        direction[-1] = direction[-1] - shift @ direction[:-1]
    return DualConstraintValue(
        value=best_U, lower=gate_lower, direction=direction, sign=1, pattern_index=best_idx,
        exact=bool(patterns.exact), conservative=True, n_patterns_checked=n_checked,
        gate_lower=gate_lower,
    )


# --------------------------------------------------------------------------- 2-D sweep
def dual_constraint_2d(X, lam, *, bias: bool) -> DualConstraintValue:
    """Exact ``M(lambda)`` for two features by angular sweeps, without listing patterns.

    Covers the whole arrangement (every pattern of ``X`` or of ``[X, 1]`` with a *free*
    hidden bias) in ``O(n^2 log n)`` time (free bias) or ``O(n log n)`` (no bias). With a
    free bias the maximiser passes through a data point (the functional is piecewise
    linear in ``b`` and ``1^T lambda = 0``), so sweeping the direction around every data
    point is exhaustive (docs/mathematics.rst §2.3 item 1, §8.2).

    Parameters
    ----------
    X : ndarray of shape (n_samples, 2)
    lam : ndarray of shape (n_samples,)
        With ``bias=True`` it must be centred.
    bias : bool
        Free (unpenalised) hidden bias, or no hidden bias.

    Returns
    -------
    DualConstraintValue
        ``pattern_index`` is ``-1`` (the maximiser lies on a cell boundary).
    """
    X = np.asarray(X, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"dual_constraint_2d needs data with two features; got shape {X.shape}.")
    values, U, signs = SweepPricer(X, bias=bias).per_centre(lam)
    k = int(np.argmax(values))
    v, u, sgn = float(values[k]), U[k], int(signs[k])
    if bias:
        tot = float(np.linalg.norm(X.T @ lam))
        if abs(lam.sum()) > 1e-12 * (1.0 + np.abs(lam).sum()):
            warnings.warn("M(lambda) is infinite: the dual point is not centred although the "
                          "hidden bias is free (constant neurons are unpenalised).",
                          RuntimeWarning, stacklevel=2)
            v = float("inf")
        direction = np.array([u[0], u[1], -float(X[k] @ u)])
        if tot > v:
            v = tot
            uu = X.T @ lam / tot
            direction = np.array([uu[0], uu[1], -float(np.min(X @ uu))])
            sgn = 1
    else:
        direction = np.asarray(u, dtype=float)
    value = max(float(v), 0.0)
    return DualConstraintValue(value=value, lower=value, direction=direction, sign=int(sgn),
                               pattern_index=-1, exact=True, info={"method": "sweep2d"})

r"""Structured primal-dual interior-point method for the ReLU program, squared loss.

The program (docs/mathematics.rst §3.1, sum form, ``B = [V; W]`` with ``J = 2P`` blocks ``b_j``,
signed
masks ``S = [D, -D]``, cone signs ``a_j = 2 D_i - 1``, ``c`` the loss's output count, every
block coordinate penalised):

.. math::

    \min_{B, c_0}\ \frac1{2c}\Big\|\sum_j S_j \tilde X b_j + c_0 - y\Big\|^2
        + \beta \sum_j \|b_j\| \quad\text{s.t.}\quad
        s_j = a_j \odot \tilde X b_j \ge 0 .

Every iterate is strictly inside every cone, so ``b_j != 0`` and the norms are smooth
there: no second-order-cone variables are needed. Primal-dual Newton steps on
``grad f(B) - G^T z = 0``, ``s * z = target`` (``z >= 0`` the cone multipliers, rows of
``Xa`` equal to zero carry no constraint) with Mehrotra's predictor-corrector
(``sigma = (mu_aff / mu)^3``) and a fraction-to-the-boundary rule (0.99). The Newton
matrix is block diagonal plus a rank-``n`` coupling,

.. math:: H = \operatorname{blockdiag}\big(\tilde X^T \operatorname{diag}(z_j / s_j)
          \tilde X + \beta (I - u_j u_j^T) / \|b_j\|\big) + \tfrac1c \tilde A^T
          \tilde A ,

(``d x d`` per block; ``\tilde A = [S_j \tilde X]``, centred when the output bias
``c_0`` is free: minimising over ``c_0`` first centres the residual). Each step costs one
batched ``d x d`` Cholesky (diagonally scaled; eigen-decomposition fallback), the
``n x n`` matrix ``c I + \tilde A H_{blk}^{-1} \tilde A^T`` (one product of
``n x Jd`` factors: the Woodbury identity) and its Cholesky factor, two solves with one
step of iterative refinement — no ``(Jd) x (Jd)`` system and no generic sparse conic
solver. The block Hessians ``Xa^T diag(w_j) Xa`` of all blocks come from one product
``W^T (Xa ⊗ Xa)``. Blocks at numerical zero (``||b_j|| <= 1e-12 max``) leave the
iteration (their slacks would underflow). Interior iterates keep every block slightly
nonzero: once the gap is certified, the smallest blocks are zeroed while the sum of their
first-order effects ``(||Xa^T S_j lambda|| + beta) ||b_j||`` stays within half the slack
``tol * primal - gap``, the others are re-centred (at most 6 steps, certified at each)
and, if that fails, the point certified before is kept. (Going on past the first
certified point does not help: off the central path the residual's dual point certifies
only about the square root of the primal accuracy — measured on diabetes P=500, the gap
rose from 6e-7 to 3.5e-6 while the primal value kept decreasing.)

Certificate: the multipliers ``z >= 0`` are cone multipliers, so
:func:`_certificate` turns ``(lambda = -grad l, z)`` into a **valid** lower bound
whatever the accuracy of the iterate (the blocks whose multiplier bound exceeds ``beta``
are refined by an exact cone projection warm-started on the rows of largest ``z_j``). It is
evaluated once the complementarity ``s^T z`` (the gap on the central path) is below
``tol / 2`` of the primal, and again after each tenfold decrease.

A free (unpenalised) hidden bias makes this barrier problem unbounded (the ``V`` and ``W``
blocks of an all-active pattern can grow along the bias at no cost); that case is left to
the other paths of :class:`~convexrelu.solvers.ReluFastSolver`.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from ..arrangements._patterns import cone_signs
from .._newton import max_step, norm_derivatives
from ..certificates._dual import pattern_value
from ..certificates._gap import DualGap, dual_point
from ..losses import SquaredLoss
from ..regularizers import GroupL2Penalty

__all__ = ["solve_relu_barrier", "BarrierResult"]


class BarrierResult:
    """Output of :func:`solve_relu_barrier` (sum form)."""

    def __init__(self, B, c0, primal, gap, dual_lam, history, n_newton, converged, mu):
        self.B, self.c0, self.primal, self.gap = B, c0, primal, gap
        self.lam, self.history, self.n_newton = dual_lam, history, n_newton
        self.converged, self.mu = converged, mu


#: the range of the start's block length (see solve_relu_barrier)
_START_MIN, _START_MAX = 1e-4, 1e4


def _interior_start(Xa, A, gates, rmask):
    """Blocks along their gates (interior of each cone); None when a gate is on a boundary."""
    Bg = np.vstack([gates.T, gates.T])  # (2P, d): the gate of each block's pattern
    s = A * (Xa @ Bg.T)
    s_r = s[rmask]
    scale = np.abs(s_r).max(axis=0)
    if np.any(s_r <= 1e-10 * np.maximum(scale, 1e-300)):
        return None
    return Bg / np.linalg.norm(Bg, axis=1, keepdims=True)


def _negligible(Xa, S, B, dg, beta, tol):
    """Blocks whose removal is negligible: zeroing block ``j`` moves the objective by at most
    ``(||Xa^T S_j lambda|| + beta) ||b_j||`` to first order; the smallest blocks are taken
    while the sum of these bounds stays within half the slack ``tol * primal - gap``."""
    nb = np.linalg.norm(B, axis=1)
    out = np.zeros(nb.shape, bool)
    budget = 0.5 * (tol * abs(dg.primal) - dg.gap)
    if budget <= 0:
        return out
    lam = np.asarray(dg.lam) / max(float(dg.scale), 1e-300)
    cj = np.linalg.norm(Xa.T @ (S * lam[:, None]), axis=0)
    order = np.argsort(nb)
    k = int(np.searchsorted(np.cumsum(((cj + beta) * nb)[order]), budget, side="right"))
    k = min(k, nb.size - 1)
    out[order[:k]] = nb[order[:k]] > 0
    return out


def _certificate(loss, Xa, masks, S, A, rmask, y, B, c0, beta, z, output_bias):
    """Certified duality gap at ``(B, c0)`` from the residual's dual point ``lambda`` and
    the cone multipliers ``z`` (full-norm penalty).

    Block ``j``'s bound is ``||Xa^T (S_j lambda + A_j z_j)||`` (valid for any ``z >= 0``,
    docs/mathematics.rst §4.2); the blocks where it exceeds ``beta`` are refined by the
    certificate core's exact per-pattern value
    (:func:`~convexrelu.certificates._dual.pattern_value`), warm-started on the rows of
    largest ``z_j`` (the interior point's guess of the face); its result is again
    ``||c_j + G_j^T mu_j||`` for explicit ``mu_j >= 0``. Returns a ``DualGap``.
    """
    d = Xa.shape[1]
    zhat = np.einsum("ij,ij->i", S, Xa @ B.T) + c0
    primal = float(loss.value(zhat, y)) + beta * float(np.linalg.norm(B, axis=1).sum())
    lam, delta = dual_point(loss, zhat, y, output_bias=output_bias)
    zz = np.where(rmask[:, None], np.maximum(z, 0.0), 0.0)
    C = (Xa.T @ (S * lam[:, None])).T  # c_j = Xa^T S_j lambda
    nrm = np.linalg.norm(C + (Xa.T @ (A * zz)).T, axis=1)
    rown = np.linalg.norm(Xa, axis=1)
    for j in np.argsort(-nrm):
        if nrm[j] <= beta:
            break
        zj = zz[:, j] * rown  # multipliers of the normalised rows
        init = np.argsort(-zj)[:d - 1]
        init = init[zj[init] > 1e-8 * max(float(zj.max(initial=0.0)), 1e-300)]
        val = pattern_value(Xa, A[:, j] > 0, C[j], init=init)[0]
        nrm[j] = min(nrm[j], val)
    bound = float(nrm.max(initial=0.0))
    s, dual = loss.best_dual_scale(lam, y, np.inf if bound == 0.0 else beta / bound)
    return DualGap(primal, dual, primal - dual, s * lam, s, bound, delta, nrm)


def _centre(v, on):
    return v - v.mean(axis=0) if on else v


class _Kkt:
    """Factorised Newton matrix ``blockdiag(H_j) + (1/c) A~^T A~`` (block Woodbury).

    ``H_j = Xa^T diag(w_j) Xa + beta (I - u_j u_j^T) / ||p_j||`` on the penalised
    coordinates (``w``: the linear-cone weights, ``z / s`` primal-dual, ``mu / s^2``
    primal; ``u_j = p_j / ||p_j||``).
    """

    def __init__(self, Xa, S, XX, w, B, beta, reg, floor, output_bias, c, masks=None,
                 pat=None):
        n, d = Xa.shape
        J = B.shape[0]
        H = (w.T @ XX).reshape(J, d, d)
        # the group norm's curvature beta / ||p_j|| (I - u_j u_j^T) (shared Newton helper)
        k = reg.penalized_dim
        norm_derivatives(reg.penalized(B), beta, floor, out=H[:, :k, :k])
        # symmetric diagonal scaling keeps the factors accurate when w spans many orders
        # of magnitude (binding rows: z / s -> inf); blocks whose Cholesky fails (rounding)
        # get an eigen-decomposition with the tiny eigenvalues clipped
        dg = np.sqrt(np.maximum(np.einsum("jaa->ja", H), 1e-300))
        Hs = H / (dg[:, :, None] * dg[:, None, :])
        try:
            Li = np.linalg.inv(np.linalg.cholesky(Hs))
        except np.linalg.LinAlgError:
            lam, Q = np.linalg.eigh(Hs)
            lam = np.maximum(lam, 1e-14 * lam[:, -1:])
            Li = np.swapaxes(Q, 1, 2) / np.sqrt(lam)[:, :, None]  # Hs^{-1} = Li^T Li
        Linv = Li / dg[:, None, :]  # H^{-1} = Linv^T Linv
        self.H = H
        self.Hinv = np.swapaxes(Linv, 1, 2) @ Linv
        if pat is None:  # one factor per block
            Z = Xa @ Linv.reshape(J * d, d).T  # column (j, k) = Xa Linv_j[k]
            Z = _centre((Z.reshape(n, J, d) * S[:, :, None]).reshape(n, -1), output_bias)
        else:
            # the V and W blocks of a pattern share its mask (S_j = +-D_i): sum their
            # inverses first, halving the width of the n x n product
            used, inv = np.unique(pat, return_inverse=True)
            Hp = np.zeros((used.size, d, d))
            np.add.at(Hp, inv, self.Hinv)
            ev, Q = np.linalg.eigh(Hp)
            F = Q * np.sqrt(np.maximum(ev, 0.0))[:, None, :]  # Hp = F F^T
            Z = Xa @ np.swapaxes(F, 1, 2).reshape(used.size * d, d).T
            Z = Z.reshape(n, used.size, d) * masks[:, used, None]
            Z = _centre(Z.reshape(n, -1), output_bias)
        K = Z @ Z.T
        K[np.diag_indices(n)] += c
        self.cK = np.linalg.cholesky(K)
        self.Xa, self.S, self.ob, self.c = Xa, S, output_bias, c

    def solve(self, g, refine: int = 1):
        """``-H^{-1} g`` for ``g`` of shape ``(J, d)`` (``refine`` steps of iterative
        refinement against the unfactorised matrix)."""
        x = self._solve(g)
        for _ in range(refine):
            x = x + self._solve(g + self.matvec(x))
        return x

    def matvec(self, x):
        """``H x`` (block part plus the coupling)."""
        Xa, S = self.Xa, self.S
        Ax = _centre(np.einsum("ij,ij->i", S, Xa @ x.T), self.ob)
        return (np.einsum("jab,jb->ja", self.H, x)
                + (Xa.T @ (S * _centre(Ax, self.ob)[:, None])).T / self.c)

    def _solve(self, g):
        from scipy.linalg import solve_triangular

        Xa, S = self.Xa, self.S
        u = -np.einsum("jab,jb->ja", self.Hinv, g)
        Au = _centre(np.einsum("ij,ij->i", S, Xa @ u.T), self.ob)
        w = solve_triangular(self.cK, Au, lower=True)
        w = solve_triangular(self.cK.T, w, lower=False)
        back = (Xa.T @ (S * _centre(w, self.ob)[:, None])).T  # A~^T w, (J, d)
        return u - np.einsum("jab,jb->ja", self.Hinv, back)


def _gradient(Xa, S, A, rmask, yc, B, lin, beta, c, reg, floor, output_bias):
    """Gradient of ``f + beta sum ||p_j|| - sum lin_ji log s_ji`` (``lin`` array or scalar).

    Returns ``(g, s, r)``.
    """
    U = Xa @ B.T
    s = A * U
    r = _centre(np.einsum("ij,ij->i", S, U), output_bias) - yc
    inv_s = np.where(rmask[:, None], 1.0 / np.where(rmask[:, None], s, 1.0), 0.0)
    g = (Xa.T @ (S * r[:, None])).T / c - (Xa.T @ (A * (lin * inv_s))).T
    nrm = norm_derivatives(reg.penalized(B), beta, floor, hessian=False)[0]
    reg.penalized(g)[...] += beta * reg.penalized(B) / nrm[:, None]
    return g, s, r


def _newton(Xa, S, A, rmask, XX, yc, B, mu, beta, c, reg, output_bias, floor=0.0):
    """Primal barrier gradient and Newton step of ``F_mu`` at ``B`` (tests).

    Returns ``(g, step)``, both of shape ``(J, d)``.
    """
    g, s, r = _gradient(Xa, S, A, rmask, yc, B, mu, beta, c, reg, floor, output_bias)
    inv_s = np.where(rmask[:, None], 1.0 / np.where(rmask[:, None], s, 1.0), 0.0)
    kkt = _Kkt(Xa, S, XX, mu * inv_s * inv_s, B, beta, reg, floor, output_bias, c)
    return g, kkt.solve(g)


def _lin_term(Xa, A, v):
    """``-G^T v`` per block: ``-(Xa^T (A * v))^T``."""
    return -(Xa.T @ (A * v)).T


def _max_step(s, ds, rmask, z, dz):
    """Largest ``a`` keeping ``s + a ds > 0`` and ``z + a dz > 0`` on the constraint rows
    (the shared ratio test)."""
    R = rmask[:, None]
    return min(max_step(s, ds, R), max_step(z, dz, R))


def solve_relu_barrier(Xa: np.ndarray, masks: np.ndarray, y: np.ndarray, beta: float, *,
                       gates: np.ndarray, regularizer: Optional[GroupL2Penalty] = None,
                       output_bias: bool = False, loss=None, tol: float = 1e-6,
                       sigma: float = 10.0, max_newton: int = 400,
                       time_limit: Optional[float] = None, verbose: int = 0):
    """Path-following barrier method for the ReLU program (squared loss, one output).

    Parameters
    ----------
    Xa : ndarray (n, d)
        Augmented data (bias column included when the program has a hidden bias).
    masks : ndarray (n, P), bool
    y : ndarray (n,)
    beta : float
        Sum-form regularisation (``alpha`` of the program).
    gates : ndarray (d, P)
        A gate of each pattern (``masks == Xa @ gates > 0``); strictly interior points
        of the cones start the path.
    regularizer : GroupL2Penalty, optional
        The group penalty (default: every block coordinate penalised, the only case the
        barrier handles).
    output_bias : bool
        Free output bias ``c0``.
    loss : Loss, optional
        A quadratic loss (``loss.constant_curvature(y)`` is not None, e.g.
        ``SquaredLoss(n_outputs=c)``: ``(1/2c) ||r||^2``); default the squared loss.
    tol : float
        Target relative duality gap (certified).

    Returns a :class:`BarrierResult`, or None when a gate is not strictly inside its cone
    (the caller then uses another method).
    """
    t_start = time.perf_counter()
    Xa = np.ascontiguousarray(Xa, np.float64)
    y = np.asarray(y, np.float64).ravel()
    loss = SquaredLoss() if loss is None else loss
    curv = loss.constant_curvature(y)
    if curv is None:
        raise ValueError(f"the interior point needs a quadratic loss; {loss!r} is not.")
    c = 1.0 / curv
    n, d = Xa.shape
    M = np.asarray(masks, bool)
    P = M.shape[1]
    J = 2 * P
    reg = GroupL2Penalty(d) if regularizer is None else regularizer
    if reg.free:
        raise ValueError("solve_relu_barrier needs every block coordinate penalised (got "
                         f"{reg!r}): with a free hidden bias the barrier problem is "
                         "unbounded.")
    Mf = M.astype(np.float64)
    S = np.hstack([Mf, -Mf])  # (n, J)
    signs = np.hstack([M, M])
    A = cone_signs(signs)
    rmask = np.linalg.norm(Xa, axis=1) > 0
    R = rmask[:, None]  # rows carrying a constraint
    B = _interior_start(Xa, A, np.asarray(gates, np.float64), rmask)
    if B is None:
        return None
    yc = y - y.mean() if output_bias else y
    XX = (Xa[:, :, None] * Xa[:, None, :]).reshape(n, d * d)
    m_rows = float(rmask.sum() * J)
    floor = 0.0
    # start: the gates (zero prediction), the barrier's multipliers at mu0 = f0 / m_rows;
    # Mehrotra's predictor-corrector from there. The blocks' common length makes the
    # start's penalty beta J t equal to its loss f0 (unit blocks made the penalty 40
    # times the loss on the one-vs-rest digits programs, and the first ~25 of 101 steps
    # went to lengths near 1e-3 while the objective passed 1e11; balanced: 41 steps,
    # 75.2 -> 33.4 s; breast cancer P = 500: 54 -> 43 steps; diabetes P = 200: 47 both)
    f0 = 0.5 * float(yc @ yc) / c
    t0 = f0 / (beta * J) if beta > 0 and J > 0 else 0.0
    if np.isfinite(t0) and t0 > 0:  # (within 1e-4..1e4: no underflowing slacks)
        B = B * float(np.clip(t0, _START_MIN, _START_MAX))
    s = A * (Xa @ B.T)
    mu = max(f0, 1e-12) / m_rows
    z = np.where(R, mu / np.where(R, s, 1.0), 0.0)
    history = []
    n_newton = 0
    converged = False
    dg = None

    def yhat(B):
        return np.einsum("ij,ij->i", S, Xa @ B.T)

    live = np.ones(J, bool)
    next_check = 0.5 * tol
    sparse_pass, kept = 0, None
    while n_newton < max_newton:
        n_newton += 1
        # blocks at numerical zero leave the iteration (their slacks would underflow)
        nb = np.linalg.norm(B, axis=1)
        dead = live & (nb <= 1e-12 * float(nb.max(initial=0.0)))
        if np.any(dead):
            B[dead] = 0.0
            live &= ~dead
        Sl, Al, Bl, zl = S[:, live], A[:, live], B[live], z[:, live]
        # gradient without the barrier of the linear rows (the affine-scaling direction)
        g0, sl, r = _gradient(Xa, Sl, Al, rmask, yc, Bl, 0.0, beta, c, reg, floor,
                              output_bias)
        inv_s = np.where(R, 1.0 / np.where(R, sl, 1.0), 0.0)
        w = zl * inv_s
        try:
            kkt = _Kkt(Xa, Sl, XX, w, Bl, beta, reg, floor, output_bias, c, masks=Mf,
                       pat=np.flatnonzero(live) % P)
        except np.linalg.LinAlgError:
            break
        nrm = norm_derivatives(reg.penalized(Bl), beta, hessian=False)[0]
        primal = 0.5 * float(r @ r) / c + beta * float(nrm.sum())
        m_live = float(rmask.sum() * live.sum())
        mu = float(np.sum(sl[rmask] * zl[rmask])) / m_live
        if mu * m_live <= next_check * primal:
            # complementarity is the gap on the central path: certify (valid for any
            # multipliers; blocks above beta refined by an exact cone projection)
            next_check = 0.1 * mu * m_live / primal
            c0 = float(np.mean(y - yhat(B))) if output_bias else 0.0
            dg = _certificate(loss, Xa, Mf, S, A, rmask, y, B, c0, beta, z, output_bias)
            history.append((n_newton, time.perf_counter() - t_start, dg.primal, dg.gap, mu))
            if verbose:
                print(f"certificate: primal {dg.primal:.12e} rel. gap "
                      f"{dg.gap / max(abs(dg.primal), 1e-300):.3e}")
            if sparse_pass:
                if dg.gap <= tol * abs(dg.primal):
                    converged = True
                    break
            elif dg.gap <= tol * abs(dg.primal):
                small = _negligible(Xa, S, B, dg, beta, tol) & live
                if not np.any(small):
                    converged = True
                    break
                # interior iterates keep every block slightly nonzero: zero the negligible
                # ones (0 lies in every cone), re-centre the others and certify again; the
                # point certified now is the fallback
                sparse_pass = n_newton + 6
                kept = (B.copy(), z.copy(), dg)
                B[small] = 0.0
                live &= ~small
                next_check = np.inf  # certify every re-centring step
                continue
        if sparse_pass and n_newton >= sparse_pass:
            break
        # Newton right-hand side: gradient - G^T (target / s); predictor: target 0;
        # corrector: target sigma mu - ds_aff dz_aff, sigma = (mu_aff / mu)^3 (Mehrotra)
        dxa = kkt.solve(g0)
        dsa = Al * (Xa @ dxa.T)
        dza = -zl - w * dsa
        aa = min(1.0, _max_step(sl, dsa, rmask, zl, dza))
        mu_aff = float(np.sum(((sl + aa * dsa) * (zl + aa * dza))[rmask])) / m_live
        sig = min(1.0, (mu_aff / max(mu, 1e-300)) ** 3)
        tgt = np.where(R, sig * mu - dsa * dza, 0.0)
        dx = kkt.solve(g0 + _lin_term(Xa, Al, tgt * inv_s))
        ds = Al * (Xa @ dx.T)
        dz = np.where(R, -zl + tgt * inv_s - w * ds, 0.0)
        a = min(1.0, 0.99 * _max_step(sl, ds, rmask, zl, dz))
        B[live] = Bl + a * dx
        z[:, live] = zl + a * dz
        if verbose:
            print(f"it {n_newton}: primal {primal:.12e} mu*m/primal "
                  f"{mu * m_live / max(primal, 1e-300):.3e} sigma {sig:.2e} step {a:.3f} "
                  f"live {int(live.sum())}")
        if time_limit is not None and time.perf_counter() - t_start > time_limit:
            break
    if not converged and kept is not None:  # the sparsified point did not certify
        B, z, dg = kept
        converged = True
    c0 = float(np.mean(y - yhat(B))) if output_bias else 0.0
    if dg is None or not converged:
        dg = _certificate(loss, Xa, Mf, S, A, rmask, y, B, c0, beta, z, output_bias)
        converged = dg.gap <= tol * abs(dg.primal)
    return BarrierResult(B, c0, dg.primal, dg.gap, dg.lam, history, n_newton, converged, mu)

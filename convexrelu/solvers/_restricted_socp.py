r"""A primal-dual interior point with second-order cones for the restricted ReLU program of
the working-set loop, squared loss.

The working-set loop (:mod:`._column_generation`) solves, round after round, the ReLU
program over ``k`` patterns (tens to a few hundred) of ``n`` samples. With epigraph
variables ``t_j`` for the group norms it is a conic quadratic program:

.. math::

    \min_{c_0, b_j, t_j}\ \ell\Big(c_0\mathbf 1 + \sum_{i} D_iX_a(v_i - w_i)\Big)
    + \beta\sum_j t_j
    \quad\text{s.t.}\quad (2D_i - I)X_a b_j \ge 0,\ \ (t_j, P b_j) \in
    \mathcal Q^{1 + p},

with ``b_j`` the ``2k`` blocks ``[V; W]``, ``P`` the penalised coordinates (all but a
free hidden bias) and ``\mathcal Q`` the second-order cone. The method is the one of
CVXOPT's ``coneqp`` (Vandenberghe 2010): Nesterov-Todd scaling of every cone, Mehrotra's
predictor-corrector, one step length for the primal and dual variables (0.99 of the way to
the boundary). Unlike the smoothed norms of
:class:`~._restricted_barrier.RestrictedBarrierSolver` (whose Newton steps slow down where
a block tends to zero, 90-105 steps on diabetes), the cones keep the Newton system
well-scaled at zero blocks: 20-30 steps.

**The Newton system.** The epigraph variables are eliminated cone by cone, which leaves,
over ``(c_0, B)``, the matrix ``c\,\bar A^T\bar A + \operatorname{blockdiag}(H_j) + \rho I``
(``\bar A = [\mathbf 1, D_1X_a, \dots, -D_1X_a, \dots]``, ``c`` the loss's constant
curvature, ``H_j`` the scaled rows and cone of block ``j``, ``\rho = 10^{-6}\mu`` a
vanishing proximal term that keeps the directions a free bias opens definite; without it
the iteration diverged). ``y`` is scaled to unit variance inside the solve (the squared
loss is homogeneous, so this is exact): from the unscaled diabetes targets the steps
stayed short for 40 iterations. The system is solved either

* densely, one diagonally scaled LAPACK Cholesky factor of ``1 + 2kd_a`` rows, when
  ``n >= 2 k d_a``;
* or, with fewer samples than columns, through the Woodbury identity: the output bias is
  eliminated (which centres the design), the blocks are inverted one by one
  (``d_a x d_a``, eigenvalues floored at ``10^{-12}`` of the largest), and the
  ``n x n`` matrix ``I / c + \sum_i \bar A_i (H_{v_i}^{-1} + H_{w_i}^{-1}) \bar A_i^T`` is
  formed as one symmetric product and factored. Blocks whose only curvature in some
  direction is ``\rho`` (a free bias in an all-active cell) make that inverse inexact, so
  it preconditions conjugate gradients on the exact matrix (a few steps); when they do not
  converge, the dense factor takes over for the rest of the solve (up to 2,000 rows,
  otherwise the solve fails and the caller falls back to Clarabel).

Every cone row of every block is kept (``O(n d_a^2)`` per block and step to form, cheap
next to the factorisation), so one solve serves and no row is re-added.

**Accuracy.** Rounding in the cones (``t - ||P b||`` of active blocks) stalls the iteration
near a relative gap of ``1e-8`` to ``1e-6`` on late, larger programs; the iterate of
smallest gap is returned then, optimal if that gap is below ``1e-6``. So the working-set
loop (:class:`._column_generation._AutoInner`) uses it only while its certified gap is
large, and Clarabel for its last rounds; it also stops using it for a loop once a solve
needs more than 45 Newton steps (an interpolating ``alpha``: 60-90). Its results are
judged like every restricted solve: by the loop's certificate over all patterns.

References
----------
L. Vandenberghe, "The CVXOPT linear and quadratic cone program solvers", 2010.
Y. Nesterov and M. J. Todd, "Primal-dual interior-point methods for self-scaled cones",
SIAM J. Optim. 8(2), 1998. S. Mehrotra, SIAM J. Optim. 2(4), 1992.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from ..arrangements._patterns import cone_signs
from .._newton import max_step
from ..program import ConvexProgram, ConvexSolution
from ._base import BaseSolver
from ._cg_inner import target_scale
from ._restricted_barrier import _factor, interior_solution, newton_matrix

__all__ = ["RestrictedSocpSolver"]

_FRAC = 0.99  # fraction to the boundary
_PROX = 1e-6      # the proximal weight, times mu
_MIN_STEP = 1e-3  # a shorter step ends the iteration (rounding)
_STALL_GAP = 1e-6  # the relative gap accepted when rounding ends it (at the best iterate
_STALL_RES = 1e-7  # whose relative dual residual is below this)
_CG_ITER = 30     # conjugate-gradient steps per Newton solve (Woodbury preconditioner)
_CG_RTOL = 1e-12  # their relative residual
_CG_LOOSE = 1e-8  # accepted after _CG_ITER steps
_DENSE_MAX = 2000  # the dense factor's largest size when conjugate gradients fail


# --------------------------------------------------------------------------- cone algebra
def _jnorm(x):
    """``sqrt(x_0^2 - ||x_1||^2)`` per row (rows inside the cone)."""
    n1 = np.linalg.norm(x[:, 1:], axis=1)
    return np.sqrt(np.maximum((x[:, 0] - n1) * (x[:, 0] + n1), 0.0))


def _nt_scaling(s, z):
    """Nesterov-Todd scalings of the second-order cones (rows of ``s`` and ``z``).

    Returns ``(W, Winv, lam)``: ``W`` symmetric with ``W z = W^{-1} s = lam``.
    """
    ns, nz = _jnorm(s), _jnorm(z)
    sb, zb = s / ns[:, None], z / nz[:, None]
    gamma = np.sqrt(np.maximum((1.0 + np.einsum("ij,ij->i", sb, zb)) / 2.0, 1e-300))
    Jz = zb.copy()
    Jz[:, 1:] *= -1.0
    wb = (sb + Jz) / (2.0 * gamma[:, None])
    # W = eta (2 v v^T - J), v = (wb + e) / sqrt(2 (wb_0 + 1))
    v = wb.copy()
    v[:, 0] += 1.0
    v /= np.sqrt(2.0 * (wb[:, :1] + 1.0))
    eta = np.sqrt(ns / nz)
    m = s.shape[1]
    J = -np.eye(m)
    J[0, 0] = 1.0
    W = eta[:, None, None] * (2.0 * v[:, :, None] * v[:, None, :] - J)
    Jv = v.copy()
    Jv[:, 1:] *= -1.0
    Winv = (2.0 * Jv[:, :, None] * Jv[:, None, :] - J) / eta[:, None, None]
    lam = np.einsum("ijk,ik->ij", W, z)
    return W, Winv, lam


def _jprod(u, v):
    """Jordan product ``u o v = (u^T v, u_0 v_1 + v_0 u_1)`` per row."""
    out = np.empty_like(u)
    out[:, 0] = np.einsum("ij,ij->i", u, v)
    out[:, 1:] = u[:, :1] * v[:, 1:] + v[:, :1] * u[:, 1:]
    return out


def _jdiv(u, v):
    """``x`` with ``u o x = v`` per row (``u`` inside the cone)."""
    det = (u[:, 0] - np.linalg.norm(u[:, 1:], axis=1)) * \
        (u[:, 0] + np.linalg.norm(u[:, 1:], axis=1))
    x = np.empty_like(v)
    x[:, 0] = (u[:, 0] * v[:, 0] - np.einsum("ij,ij->i", u[:, 1:], v[:, 1:])) / det
    x[:, 1:] = (v[:, 1:] - x[:, :1] * u[:, 1:]) / u[:, :1]
    return x


def _soc_step(s, ds):
    """The largest ``a`` keeping every row of ``s + a ds`` in the cone (``inf`` if none)."""
    a = ds[:, 0] ** 2 - np.einsum("ij,ij->i", ds[:, 1:], ds[:, 1:])
    b = s[:, 0] * ds[:, 0] - np.einsum("ij,ij->i", s[:, 1:], ds[:, 1:])
    c = _jnorm(s) ** 2
    D = b * b - a * c
    hit = (a < 0) | ((b < 0) & (D >= 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(hit, c / (np.sqrt(np.maximum(D, 0.0)) - b), np.inf)
    t = np.where(hit & ~(t > 0), 0.0, t)
    return float(np.min(t, initial=np.inf))


# --------------------------------------------------------------------------- the iteration
class _State:
    """Blocks ``B = [V; W]`` (``2k x d_a``), epigraphs ``t``, output bias ``c0``; the cone
    rows' slacks ``S`` (``n_r x 2k``, every nonzero row of ``X_a``) and multipliers ``Z``;
    the second-order cones' slacks ``(t_j, P b_j)`` and multipliers ``zq``."""

    def __init__(self, program: ConvexProgram):
        Xa = program.X_aug
        n, d = Xa.shape
        k = program.n_patterns
        self.n, self.d, self.k = n, d, k
        masks = np.asarray(program.masks, bool)
        self.masks = masks
        self.Xa = Xa
        self.loss = program.loss
        self.cc = float(program.loss.constant_curvature(program.y))
        # the squared loss is homogeneous: solve for y / sigma with beta / sigma (weights
        # of order one, like the start), then scale back by sigma (``scale``)
        y = np.asarray(program.y, np.float64)
        self.scale = target_scale(y)
        self.y = y / self.scale
        self.beta = float(program.alpha) / self.scale
        self.p = program.regularizer.penalized_dim
        self.ob = bool(program.fit_output_bias)
        nz = np.any(Xa != 0, axis=1)
        self.Xr = Xa[nz]
        sg = cone_signs(masks[nz])
        self.sg = np.hstack([sg, sg])  # (n_r, 2k): the cone signs of [V; W]
        self.XX = (self.Xr[:, :, None] * self.Xr[:, None, :]).reshape(self.Xr.shape[0], -1)
        # the design of (V - W): A_i = D_i X_a, (n, k, d)
        self.Ab = masks[:, :, None] * Xa[:, None, :]
        self.Af = self.Ab.reshape(n, k * d)  # a view: the design of (V - W).ravel()
        gates = program.patterns.gates
        G = (gates / np.maximum(np.linalg.norm(gates, axis=0), 1e-300)).T  # (k, d)
        B = np.vstack([0.1 * G, 0.1 * G])
        S = self.sg * (self.Xr @ B.T)
        need = np.max(np.where(S < 1e-9, (1e-9 - S) / np.maximum(
            self.sg * (self.Xr @ np.vstack([G, G]).T), 1e-300), 0.0), axis=0, initial=0.0)
        B += need[:, None] * np.vstack([G, G])
        self.B, self.c0 = B, 0.0
        pn = np.linalg.norm(B[:, :self.p], axis=1)
        self.t = 1.5 * pn + 0.05
        self.nu = self.Xr.shape[0] * 2 * k + 2 * k  # the barrier's degree
        self.woodbury = n < 2 * k * d
        self.n_dense = 0  # Newton steps solved by the dense factor in the Woodbury case
        self._Q = None

    # ------------------------------------------------------------------ evaluations
    def z_of(self, B, c0):
        U = B[:self.k] - B[self.k:]
        return self.Af @ U.ravel() + (c0 if self.ob else 0.0)

    def slacks(self, B, t):
        S = self.sg * (self.Xr @ B.T)
        sq = np.column_stack([t, B[:, :self.p]])
        return S, sq

    def objective(self, B, c0):
        return float(self.loss.value(self.z_of(B, c0), self.y)) + self.beta * float(
            np.sum(np.linalg.norm(B[:, :self.p], axis=1)))

    def gradient(self, B, c0):
        """The loss's gradient in ``(c0, B)``."""
        g = self.loss.gradient(self.z_of(B, c0), self.y)
        Gu = (self.Af.T @ g).reshape(self.k, self.d)
        return (float(np.sum(g)) if self.ob else 0.0), np.vstack([Gu, -Gu])

    # ------------------------------------------------------------------ linear algebra
    def factor(self, Hb, rho):
        """A solve with ``c Abar^T Abar + blockdiag(Hb) + rho I`` over ``(c0, B)``."""
        if not self.woodbury:
            return self._dense(Hb, rho)
        return self._woodbury(Hb, rho)

    @property
    def Q(self):
        """``c A^T A`` over ``(c0, V - W)`` (formed when first needed)."""
        if self._Q is None:
            A = np.empty((self.n, 1 + self.k * self.d))
            A[:, 0] = 1.0
            A[:, 1:] = self.Af
            self._Q = self.cc * (A.T @ A)
        return self._Q

    def _dense(self, Hb, rho):
        """One diagonally scaled Cholesky factor of the whole matrix."""
        k, d = self.k, self.d
        o = 1 if self.ob else 0
        Q = self.Q if self.ob else self.Q[1:, 1:]
        chol = _factor(newton_matrix(Q, Hb + rho * np.eye(d), self.ob, rho))

        def solve(rc, rB):
            x = chol(np.concatenate([np.atleast_1d(rc)[:o], rB.ravel()]))
            return (float(x[0]) if o else 0.0), x[o:].reshape(2 * k, d)
        return solve

    def _woodbury(self, Hb, rho):
        """Woodbury-preconditioned conjugate gradients (``n x n`` factor); the dense factor
        when they do not converge, for this step and the rest of the solve."""
        k, d, n = self.k, self.d, self.n
        o = 1 if self.ob else 0
        # Woodbury: eliminate c0 (centres the design), invert the blocks, factor n x n.
        # Blocks whose only curvature in some direction is rho (a free bias in an
        # all-active cell) make the inverse ill-conditioned, so the eigenvalues are
        # floored and the result is a preconditioner of conjugate gradients on the exact
        # matrix (a few steps; the dense factor when they do not converge)
        cc = self.cc
        Hr = Hb + rho * np.eye(d)
        ev, Ev = np.linalg.eigh(Hr)
        ev = np.maximum(ev, 1e-12 * np.max(ev, axis=1, keepdims=True) + 1e-300)
        Hinv = np.matmul(Ev / ev[:, None, :], np.swapaxes(Ev, 1, 2))
        Ssum = Hinv[:k] + Hinv[k:]
        if o:
            kappa = cc / (cc * n + rho)
            tau = (1.0 - np.sqrt(max(1.0 - kappa * n, 0.0))) / n
            Abar = self.Ab - tau * self.Ab.sum(axis=0)[None]
        else:
            Abar = self.Ab
        Af = Abar.reshape(n, k * d)
        try:  # K = G G^T with G_i = Abar_i L_i, S_i = L_i L_i^T: one symmetric product
            L = np.linalg.cholesky(Ssum)
            G = np.swapaxes(np.matmul(np.swapaxes(Abar, 0, 1), L), 0, 1).reshape(n, k * d)
            K = G @ G.T
        except np.linalg.LinAlgError:
            Y = np.matmul(np.swapaxes(Abar, 0, 1), Ssum)  # (k, n, d)
            Y = np.swapaxes(Y, 0, 1).reshape(n, k * d)
            K = Y @ Af.T
            K = 0.5 * (K + K.T)
        K[np.diag_indices(n)] += 1.0 / cc
        cf = None
        for shift in (0.0, 1e-12, 1e-9, 1e-6):
            try:
                Ks = K if not shift else K + shift * float(np.max(np.diag(K))) * np.eye(n)
                cf = cho_factor(Ks, lower=False, check_finite=False)
                break
            except LinAlgError:
                continue
        if cf is None:
            raise np.linalg.LinAlgError("the interior point's reduced matrix is not "
                                        "positive definite")
        colsum = self.Ab.sum(axis=0) if o else None
        A0 = self.Af

        def apply(c0, B):  # the exact matrix times (c0, B)
            U = B[:k] - B[k:]
            r = A0 @ U.ravel() + (c0 if o else 0.0)
            g = cc * (A0.T @ r).reshape(k, d)
            out = np.matmul(Hr, B[:, :, None])[:, :, 0] + np.vstack([g, -g])
            return (cc * float(np.sum(r)) + rho * c0 if o else 0.0), out

        def precond(rc, rB):
            if o:  # eliminate c0: c0 = (rc - cc 1^T A B) / (cc n + rho)
                rB = rB.copy()
                shift = cc * rc / (cc * n + rho) * colsum
                rB[:k] -= shift
                rB[k:] += shift
            u = np.matmul(Hinv, rB[:, :, None])[:, :, 0]
            Au = Af @ (u[:k] - u[k:]).ravel()
            w = cho_solve(cf, Au, check_finite=False)
            At = (Af.T @ w).reshape(k, d)
            x = u - np.matmul(Hinv, np.vstack([At, -At])[:, :, None])[:, :, 0]
            if o:
                U = x[:k] - x[k:]
                c0 = (rc - cc * float(np.einsum("kd,kd->", colsum, U))) / (cc * n + rho)
            else:
                c0 = 0.0
            return c0, x

        dense = []

        def solve(rc, rB):
            """Preconditioned conjugate gradients from the preconditioner's solution."""
            if dense:
                return dense[0](rc, rB)
            bn = np.sqrt(rc * rc + float(np.sum(rB * rB)))
            xc, xB = precond(rc, rB)
            ac, aB = apply(xc, xB)
            qc, qB = rc - ac, rB - aB
            zc, zB = precond(qc, qB)
            pc, pB = zc, zB
            rz = qc * zc + float(np.sum(qB * zB))
            for _ in range(_CG_ITER):
                if np.sqrt(qc * qc + float(np.sum(qB * qB))) <= _CG_RTOL * bn:
                    return xc, xB
                ac, aB = apply(pc, pB)
                pAp = pc * ac + float(np.sum(pB * aB))
                if not pAp > 0:
                    break
                a = rz / pAp
                xc, xB = xc + a * pc, xB + a * pB
                qc, qB = qc - a * ac, qB - a * aB
                zc, zB = precond(qc, qB)
                rz_new = qc * zc + float(np.sum(qB * zB))
                pc, pB = zc + (rz_new / rz) * pc, zB + (rz_new / rz) * pB
                rz = rz_new
            if np.sqrt(qc * qc + float(np.sum(qB * qB))) <= _CG_LOOSE * bn:
                return xc, xB
            # ill-conditioned beyond the preconditioner (late steps): dense from here on,
            # where that factor is affordable
            if 1 + 2 * k * d > _DENSE_MAX:
                raise np.linalg.LinAlgError("conjugate gradients did not converge")
            self.woodbury = False
            self.n_dense += 1
            dense.append(self._dense(Hb, rho))
            return dense[0](rc, rB)
        return solve

    # ------------------------------------------------------------------ the iteration
    def run(self, tol: float, max_iter: int):
        """Mehrotra predictor-corrector; ``(steps, converged)``."""
        k2, p, d = 2 * self.k, self.p, self.d
        if self.ob:  # the zero network's best output bias
            self.c0 = float(np.mean(self.y))
        f = self.objective(self.B, self.c0)
        mu = max(f, 1e-300) / self.nu
        # the cones' multipliers at (beta, 0) (their dual residual is zero), the epigraphs
        # at mu / beta (centred complementarity t beta = mu when the blocks are small)
        self.t = np.maximum(self.t, mu / max(self.beta, 1e-300))
        S, sq = self.slacks(self.B, self.t)
        Z = mu / S
        zq = np.zeros_like(sq)
        zq[:, 0] = self.beta
        e = np.zeros(1 + p)
        e[0] = 1.0
        best = (np.inf, None, None, None)
        for it in range(1, int(max_iter) + 1):
            rho = _PROX * mu
            gc, gB = self.gradient(self.B, self.c0)
            # the dual residual: grad f + rho x - F^T z (rows, cones)
            rB = gB + rho * self.B - (self.Xr.T @ (self.sg * Z)).T
            rB[:, :p] -= zq[:, 1:]
            rt = self.beta - zq[:, 0]
            rc = (gc + rho * self.c0) if self.ob else 0.0
            W, Winv, lam = _nt_scaling(sq, zq)
            T = np.matmul(Winv, Winv)
            # blocks: rows and the cone with t eliminated
            Hb = (Z / S).T @ self.XX
            Hb = Hb.reshape(k2, d, d)
            Ttt, Ttb, Tbb = T[:, 0, 0], T[:, 1:, 0], T[:, 1:, 1:]
            Hb[:, :p, :p] += Tbb - Ttb[:, :, None] * Ttb[:, None, :] / Ttt[:, None, None]
            solve = self.factor(Hb, rho)
            gap = float(np.sum(S * Z) + np.sum(sq * zq))
            f = self.objective(self.B, self.c0)
            scale = max(1.0, float(np.max(np.abs(gB))), self.beta)
            res = max(float(np.max(np.abs(rB))), float(np.max(np.abs(rt))), abs(rc)) / scale
            if gap <= tol * max(abs(f), 1e-300) and res <= 1e-9:
                return it - 1, True
            if res <= _STALL_RES and gap / max(abs(f), 1e-300) < best[0]:
                best = (gap / max(abs(f), 1e-300), self.B, self.t, self.c0)

            def direction(rcl, rcq):
                """``(dc, dB, dt, dS, dsq, dZ, dzq)`` for the complementarity targets
                ``rcl`` (rows) and ``rcq`` (cones)."""
                ul = rcl / S  # W^{-1}(lam \ r_c) for the rows
                uq = np.einsum("jab,jb->ja", Winv, _jdiv(lam, rcq))
                bB = -rB + (self.Xr.T @ (self.sg * ul)).T
                bB[:, :p] += uq[:, 1:]
                bt = -rt + uq[:, 0]
                bB[:, :p] -= Ttb * (bt / Ttt)[:, None]
                dc, dB = solve(-rc, bB)
                dt = (bt - np.einsum("jb,jb->j", Ttb, dB[:, :p])) / Ttt
                dS, dsq = self.slacks(dB, dt)
                dZ = ul - (Z / S) * dS
                dzq = uq - np.einsum("jab,jb->ja", T, dsq)
                return dc, dB, dt, dS, dsq, dZ, dzq

            def step(dS, dsq, dZ, dzq):
                return min(max_step(S, dS), max_step(Z, dZ), _soc_step(sq, dsq),
                           _soc_step(zq, dzq))

            # predictor
            lam_l = np.sqrt(S * Z)
            aff = direction(-S * Z, -_jprod(lam, lam))
            a = min(1.0, step(*aff[3:]))
            gap_aff = float(np.sum((S + a * aff[3]) * (Z + a * aff[5]))
                            + np.sum((sq + a * aff[4]) * (zq + a * aff[6])))
            sigma = min(1.0, max(gap_aff / max(gap, 1e-300), 0.0)) ** 3
            mu = gap / self.nu
            # corrector: the second-order terms of the predictor
            dsl = aff[3] * np.sqrt(Z / S)
            dzl = aff[5] * np.sqrt(S / Z)
            rcl = -lam_l * lam_l + sigma * mu - dsl * dzl
            dsw = np.einsum("jab,jb->ja", Winv, aff[4])
            dzw = np.einsum("jab,jb->ja", W, aff[6])
            rcq = -_jprod(lam, lam) + sigma * mu * e - _jprod(dsw, dzw)
            dc, dB, dt, dS, dsq, dZ, dzq = direction(rcl, rcq)
            a = min(1.0, _FRAC * step(dS, dsq, dZ, dzq))
            if not (a > _MIN_STEP) or not np.all(np.isfinite(dB)):
                # rounding stops the iteration (a multiplier of a zero block on its cone's
                # boundary): the current point, if its gap is small enough
                return it - 1, self._restore(best)
            self.B = self.B + a * dB
            self.t = self.t + a * dt
            self.c0 = self.c0 + a * dc
            S, sq = self.slacks(self.B, self.t)
            Z = Z + a * dZ
            zq = zq + a * dzq
            mu = float(np.sum(S * Z) + np.sum(sq * zq)) / self.nu
        return max_iter, self._restore(best)

    def _restore(self, best) -> bool:
        """Back to the iterate of smallest relative gap (with a small dual residual) when
        rounding or the step budget ends the iteration; whether its gap is acceptable."""
        if best[1] is None:
            return False
        _, self.B, self.t, self.c0 = best
        return best[0] <= _STALL_GAP


class RestrictedSocpSolver(BaseSolver):
    """Primal-dual interior point with second-order cones for restricted ReLU programs of a
    quadratic loss with one output; see the module docstring.

    Parameters
    ----------
    tol : float, default=1e-8
        Complementarity gap ``s^T z`` at which the iteration stops, relative to the
        objective (with the dual residual below ``1e-9`` relative). Rounding limits it to
        about ``1e-9``: a solve that stalls before ``tol`` returns its iterate of smallest
        gap (dual residual below ``1e-7``), optimal if that gap is below ``1e-7``.
    max_iter : int, default=100
        Newton steps.
    """

    _loss_required_attr = ("value", "gradient")
    _formulations = ("relu",)
    _tol_is_gap = False  # tol is the complementarity gap, not the certified duality gap

    def __init__(self, tol: float = 1e-8, max_iter: int = 100) -> None:
        self.tol = tol
        self.max_iter = max_iter

    def _certificate_tol(self) -> float:
        return max(100.0 * self.tol, 1e-8)

    @staticmethod
    def memory_bytes(program: ConvexProgram) -> int:
        """Bytes of the dense pieces the solve forms."""
        n, k, d = program.n_samples, program.n_patterns, program.d_aug
        N = 1 + 2 * k * d
        dense = n * n if n < 2 * k * d else 2 * N * N
        return 8 * (3 * n * k * d + n * d * d + dense)

    def _solve(self, program: ConvexProgram, warm_start=None) -> ConvexSolution:
        if program.n_outputs != 1 or program.loss.constant_curvature(program.y) is None:
            raise ValueError("RestrictedSocpSolver handles one output and a quadratic loss; "
                             f"got {program.loss!r} with {program.n_outputs} outputs.")
        t0 = time.perf_counter()
        state = _State(program)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            n_iter, ok = state.run(self.tol, self.max_iter)
        if not np.all(np.isfinite(state.B)) or not np.isfinite(state.c0):
            raise np.linalg.LinAlgError("the interior point diverged")
        k = program.n_patterns
        return interior_solution(
            program, state.scale * state.B[:k], state.scale * state.B[k:],
            state.scale * state.c0, ok, n_iter, t0,
            {"woodbury": bool(state.n < 2 * k * program.d_aug),
             "dense_steps_after_woodbury": int(state.n_dense)})

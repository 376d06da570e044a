r"""A dense barrier method for the restricted ReLU program of the working-set loop.

The working-set loop (:mod:`._column_generation`) solves, round after round, the ReLU
program over ``k`` patterns (tens, at most a few hundred) of ``n`` samples:

.. math::

    \min_{c_0, v_i, w_i}\ \ell\Big(\sum_i D_iX_a(v_i - w_i) + c_0\mathbf 1;\ y\Big)
    + \beta\sum_i \rho(v_i) + \rho(w_i)
    \quad\text{s.t.}\quad (2D_i - I)X_av_i \ge 0,\ (2D_i - I)X_aw_i \ge 0,

for any loss with a curvature (squared, logistic, Huber). A generic conic solver sees a
dense ``n x k d_a`` coupling block and factors it without BLAS: on ``load_digits``
(``n = 1347``, ``d_a = 65``, 20 patterns, logistic loss) cvxpy + Clarabel did not finish
one restricted solve in 90 s. Here the structure is used instead:

* **Primal log barrier** ``t (\ell + \beta\sum\rho) - \sum\log s + \tfrac\epsilon2\|x\|^2``
  over the cone rows ``s = (2D_i - I)X_a b``: first each block's
  :func:`~._cg_inner.margin_rows`, and if the solution violates any other row, a second
  solve over all ``n`` rows (their barrier Hessians cost ``O(n d_a^2)`` per block, little
  beside the factorisation), so the solution satisfies every row. Iterates stay strictly inside
  every cone, so each ``b != 0`` and the group norms are smooth there. The small proximal
  term (``epsilon = 1`` against ``t`` growing to ``~10^{12}``) keeps the barrier bounded
  along the costless directions a free hidden bias opens (the blocks of an all-active
  pattern can grow together along the bias).
* **Damped Newton steps** (fraction to the boundary, Armijo backtracking on the barrier
  function), ``t`` multiplied by ``_T_FACTOR`` once the Newton decrement is small, until
  the barrier's duality-gap bound ``m / t`` is below ``tol`` of the objective.
* **The Newton system in ``1 + k d_a`` unknowns.** The loss couples the blocks only
  through ``u_i = v_i - w_i``: with ``Q = \bar A^T \operatorname{diag}(\ell'') \bar A``
  (``\bar A = [1, D_1X_a, \dots, D_kX_a]``) and the block Hessians ``H_v``, ``H_w`` of the
  barrier and the norms, eliminating ``v + w`` leaves
  ``(tQ + \operatorname{diag}(\epsilon, K_1, \dots, K_k))\,\xi = r`` with the parallel
  sums ``K_i = H_{v_i}(H_{v_i} + H_{w_i})^{-1}H_{w_i}``: one dense Cholesky factor of size
  ``1 + k d_a`` (LAPACK) per step, half the width of the ``(v, w)`` system. ``Q`` is formed
  once per solve for a quadratic loss, once per step otherwise (``O(n (k d_a)^2)``).

Used by the working-set loop's inner solver for non-quadratic losses and for restricted
programs too large for the compressed Clarabel solve (:class:`._column_generation._AutoInner`).
Its result is judged like every restricted solve: by the loop's certificate over all
patterns.

References
----------
S. Boyd and L. Vandenberghe, *Convex Optimization*, Cambridge University Press, 2004
(Section 11.3, the barrier method; Section 9.5, damped Newton).
"""

from __future__ import annotations

import time

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from .._newton import max_step, norm_derivatives
from .._polish import repair_feasibility
from ..program import ConvexProgram, ConvexSolution
from ._base import BaseSolver
from ._cg_inner import margin_rows

__all__ = ["RestrictedBarrierSolver"]

_T_FACTOR = 20.0   # barrier parameter growth per centring
_CENTRED = 1.0     # Newton decrement^2 / 2 below which a point counts as centred
_EPS = 1.0         # the proximal term's weight (barrier units)
_ROW_RTOL = 1e-9   # a row violated beyond this (relative) calls for the solve over all rows


class RestrictedBarrierSolver(BaseSolver):
    """Barrier method for small restricted ReLU programs (one output, any loss with a
    curvature); see the module docstring.

    Parameters
    ----------
    tol : float, default=1e-10
        Relative accuracy of the barrier (its duality-gap bound ``m / t`` over the
        objective).
    max_iter : int, default=400
        Newton steps in all.
    """

    _loss_required_attr = ("value", "gradient", "curvature")
    _formulations = ("relu",)

    def __init__(self, tol: float = 1e-10, max_iter: int = 400) -> None:
        self.tol = tol
        self.max_iter = max_iter

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def design_entries(program: ConvexProgram) -> int:
        """Entries of the dense design ``[1, D_1X_a, ..., D_kX_a]`` the solve forms."""
        return program.n_samples * (1 + program.n_patterns * program.d_aug)

    def _solve(self, program: ConvexProgram, warm_start=None) -> ConvexSolution:
        if program.n_outputs != 1 or program.loss.curvature(
                np.zeros(program.n_samples), program.y) is None:
            raise ValueError("RestrictedBarrierSolver handles one output and a loss with a "
                             f"curvature; got {program.loss!r} with {program.n_outputs} "
                             "outputs.")
        t0 = time.perf_counter()
        Xa = program.X_aug
        n, d = Xa.shape
        k = program.n_patterns
        masks = np.asarray(program.masks, bool)
        signs = program.signs
        gates = program.patterns.gates
        # first each block's margin rows; if the solution violates another row, a cold
        # solve over every nonzero row (moving the blocks back inside along their gates
        # and resuming cost more: on digits the objective rose from 332 to 444 after one
        # such move). Measured (whole grown fits, one BLAS thread): breast cancer 23.5 s
        # this way, 30.3 s with every row from the start.
        nz = np.flatnonzero(np.any(Xa != 0, axis=1))
        rows = [margin_rows(Xa, masks[:, i], gates[:, i]) for i in range(k)]
        n_iter, status = 0, "optimal"
        for attempt in range(2):
            state = _Barrier(program, rows, warm_start)
            it, ok = state.run(self.tol, self.max_iter)
            n_iter += it
            status = "optimal" if ok else "optimal_inaccurate"
            if attempt or all(r.size == nz.size for r in rows):
                break
            B = np.vstack([state.V, state.W])
            scale = max(float(np.max(np.linalg.norm(B, axis=1), initial=0.0)), 1e-300)
            tol_rows = _ROW_RTOL * np.linalg.norm(Xa, axis=1) * scale
            S = np.hstack([signs * (Xa @ state.V.T), signs * (Xa @ state.W.T)])
            if not np.any(S < -tol_rows[:, None]):
                break
            rows = [nz] * k
        V, W, c0 = state.V, state.W, state.c0
        B, _ = repair_feasibility(Xa, np.hstack([masks, masks]), np.vstack([V, W]),
                                  np.hstack([gates, gates]))
        V, W = B[:k], B[k:]
        if program.regularizer.free:
            V, W = _lower_common_bias(Xa, masks, V, W)
        z = program.predict(V, W, c0)
        return ConvexSolution(
            V=V, W=W, output_bias=c0, objective=program.objective(V, W, c0),
            dual=-program.loss.gradient(z, program.y), status=status,
            n_iter=max(1, n_iter), solve_time=time.perf_counter() - t0, formulation="relu",
            info={"rows_kept": int(sum(r.size for r in rows)), "rows_total": int(n * k)})


def _lower_common_bias(Xa, masks, V, W):
    """Move the free bias of both blocks of a pattern down together, as far as the active
    rows allow: the predictions and the penalty do not change (``v_i - w_i`` is kept),
    and the costless growth the barrier's interior allows is removed."""
    V, W = V.copy(), W.copy()
    for i in range(V.shape[0]):
        act = masks[:, i]
        if not act.any():
            continue
        sv = Xa[act] @ V[i]
        sw = Xa[act] @ W[i]
        delta = min(float(sv.min()), float(sw.min()))
        if delta > 0:
            V[i, -1] -= delta
            W[i, -1] -= delta
    return V, W


class _Barrier:
    """The barrier iteration's state: blocks, output bias, rows and barrier parameter."""

    def __init__(self, program: ConvexProgram, rows, warm_start):
        self.p = program
        self.Xa = program.X_aug
        self.k = program.n_patterns
        self.d = program.d_aug
        self.masks = np.asarray(program.masks, bool)
        self.gates = program.patterns.gates
        self.y = program.y
        self.loss = program.loss
        self.beta = float(program.alpha)
        self.reg = program.regularizer
        self.ob = bool(program.fit_output_bias)
        n = self.Xa.shape[0]
        # the dense design [1, D_1 Xa, ..., D_k Xa] (the output bias column first)
        A = np.empty((n, 1 + self.k * self.d))
        A[:, 0] = 1.0
        A[:, 1:] = (self.masks[:, :, None] * self.Xa[:, None, :]).reshape(n, -1)
        self.A = A
        cc = self.loss.constant_curvature(self.y)
        self.Q0 = None if cc is None else float(cc) * (A.T @ A)
        self.set_rows(rows)
        gn = np.linalg.norm(self.gates, axis=0)
        G = (self.gates / np.maximum(gn, 1e-300)).T  # unit gates, (k, d)
        self.V, self.W, self.c0 = 1e-3 * G, 1e-3 * G, 0.0
        if warm_start is not None and np.shape(warm_start.V) == (self.k, self.d):
            self.V = np.asarray(warm_start.V, np.float64) + 1e-3 * G
            self.W = np.asarray(warm_start.W, np.float64) + 1e-3 * G
            self.c0 = float(np.ravel(warm_start.output_bias)[0]) if self.ob else 0.0
        self._interior()
        self.t = None

    def set_rows(self, rows):
        """Cone rows per pattern: ``G_i = (2 D_i - I)[R_i] X_a[R_i]``."""
        self.rows = [np.asarray(r, np.intp) for r in rows]
        self.G = [np.where(self.masks[r, i], 1.0, -1.0)[:, None] * self.Xa[r]
                  for i, r in enumerate(self.rows)]
        self.m = 2 * sum(r.size for r in self.rows)

    def _interior(self):
        """Move each block along its gate until all its kept rows have positive slack."""
        for B in (self.V, self.W):
            for i in range(self.k):
                G = self.G[i]
                if G.shape[0] == 0:
                    continue
                s = G @ B[i]
                sg = G @ self.gates[:, i]
                need = np.max((1e-6 * max(np.linalg.norm(B[i]), 1e-3) - s)
                              / np.maximum(sg, 1e-300), initial=0.0)
                if need > 0:
                    B[i] += need * self.gates[:, i]

    # ------------------------------------------------------------------ evaluations
    def _z(self, V, W, c0):
        U = self.Xa @ (V - W).T
        return (U * self.masks).sum(axis=1) + (c0 if self.ob else 0.0)

    def _slacks(self, V, W):
        sv = [G @ V[i] for i, G in enumerate(self.G)]
        sw = [G @ W[i] for i, G in enumerate(self.G)]
        return sv, sw

    def _floor(self, t):
        """The norms' smoothing ``sqrt(||p||^2 + floor^2)``: zero when every coordinate is
        penalised (an interior block is never zero); with a free hidden bias a block of an
        all-active pattern can sit at ``p = 0`` inside its cone, where the norm has a kink,
        so it is smoothed by a floor whose cost stays below a tenth of the barrier's gap."""
        if not self.reg.free or t is None:
            return 0.0
        return 0.1 * self.m / (t * 2 * max(self.k, 1) * max(self.beta, 1e-300))

    def _f(self, V, W, c0, floor=0.0):
        z = self._z(V, W, c0)
        P = self.reg.penalized
        pen = float(np.sum(np.sqrt(np.einsum("ij,ij->i", P(V), P(V)) + floor * floor))
                    + np.sum(np.sqrt(np.einsum("ij,ij->i", P(W), P(W)) + floor * floor)))
        return float(self.loss.value(z, self.y)) + self.beta * pen

    def _F(self, V, W, c0, t):
        """The barrier function (``inf`` outside the interior)."""
        sv, sw = self._slacks(V, W)
        logs = 0.0
        for s in sv + sw:
            if s.size and float(s.min()) <= 0:
                return np.inf
            logs += float(np.sum(np.log(s)))
        prox = 0.5 * _EPS * (float(np.sum(V * V) + np.sum(W * W)) + c0 * c0)
        return t * self._f(V, W, c0, self._floor(t)) - logs + prox

    # ------------------------------------------------------------------ Newton
    def _step(self, t):
        """The Newton step ``(dV, dW, dc)`` and the decrement ``-g^T step``."""
        V, W, c0 = self.V, self.W, self.c0
        k, d = self.k, self.d
        z = self._z(V, W, c0)
        gl = self.loss.gradient(z, self.y)
        ga = self.A.T @ gl  # (1 + k d,)
        gu = ga[1:].reshape(k, d)
        kp = self.reg.penalized_dim
        Hv = np.zeros((k, d, d))
        Hw = np.zeros((k, d, d))
        fl = self._floor(t)
        _, Uv, _ = norm_derivatives(self.reg.penalized(V), t * self.beta, fl,
                                    out=Hv[:, :kp, :kp])
        _, Uw, _ = norm_derivatives(self.reg.penalized(W), t * self.beta, fl,
                                    out=Hw[:, :kp, :kp])
        gv = t * gu + _EPS * V
        gw = -t * gu + _EPS * W
        gv[:, :kp] += t * self.beta * Uv
        gw[:, :kp] += t * self.beta * Uw
        sv, sw = self._slacks(V, W)
        for i, G in enumerate(self.G):
            if G.shape[0] == 0:
                continue
            iv, iw = 1.0 / sv[i], 1.0 / sw[i]
            gv[i] -= G.T @ iv
            gw[i] -= G.T @ iw
            Hv[i] += (G * (iv * iv)[:, None]).T @ G
            Hw[i] += (G * (iw * iw)[:, None]).T @ G
        idx = np.arange(d)
        Hv[:, idx, idx] += _EPS
        Hw[:, idx, idx] += _EPS
        if self.Q0 is not None:
            tQ = t * self.Q0
        else:
            h = self.loss.curvature(z, self.y)
            tQ = t * (self.A.T @ (self.A * h[:, None]))
        ob = self.ob
        o = 1 if ob else 0
        if not ob:  # no output bias: its row and column go
            tQ = tQ[1:, 1:]
        # the Newton matrix over (c0, V, W): the loss couples the blocks through V - W
        kd = k * d
        N = o + 2 * kd
        H = np.empty((N, N))
        H[:o + kd, :o + kd] = tQ
        Quu = tQ[o:, o:]
        H[o + kd:, o + kd:] = Quu
        H[o:o + kd, o + kd:] = -Quu
        H[o + kd:, o:o + kd] = -Quu
        if ob:
            H[0, o + kd:] = -tQ[0, o:]
            H[o + kd:, 0] = -tQ[o:, 0]
            H[0, 0] += _EPS
        for i in range(k):
            a0, b0 = o + i * d, o + kd + i * d
            H[a0:a0 + d, a0:a0 + d] += Hv[i]
            H[b0:b0 + d, b0:b0 + d] += Hw[i]
        gc = t * ga[0] + _EPS * c0 if ob else 0.0
        g = np.concatenate([np.atleast_1d(gc)[:o], gv.ravel(), gw.ravel()])
        x = -self._factor(H)(g)
        dec = -float(g @ x)
        return (x[o:o + kd].reshape(k, d), x[o + kd:].reshape(k, d),
                float(x[0]) if ob else 0.0, dec)

    @staticmethod
    def _factor(S):
        """A solve with ``S`` (diagonally scaled Cholesky, shifted if it fails)."""
        dg = np.sqrt(np.maximum(np.diag(S), 1e-300))
        Ss = S / np.outer(dg, dg)
        shift = 0.0
        for _ in range(6):
            try:
                if shift:
                    Ss[np.diag_indices_from(Ss)] += shift
                cf = cho_factor(Ss, lower=False, overwrite_a=False, check_finite=False)
                return lambda rhs: cho_solve(cf, rhs / dg, check_finite=False) / dg
            except LinAlgError:
                shift = 1e-12 if not shift else shift * 100.0
        raise np.linalg.LinAlgError("the barrier's Newton matrix is not positive definite")

    def run(self, tol: float, max_iter: int):
        """Barrier iterations until ``m / t <= tol * f``; returns ``(steps, converged)``."""
        f = max(self._f(self.V, self.W, self.c0), 1e-300)
        if self.t is None:
            self.t = max(self.m, 1) / f
        it = 0
        while it < max_iter:
            # centre
            for _ in range(60):
                if it >= max_iter:
                    break
                dV, dW, dc, dec = self._step(self.t)
                it += 1
                if not np.isfinite(dec) or dec <= 0:
                    break
                moved = self._move(dV, dW, dc, dec)
                if not moved or dec / 2 <= _CENTRED:
                    break
            f = max(self._f(self.V, self.W, self.c0), 1e-300)
            if self.m / self.t <= tol * f:
                return it, True
            self.t *= _T_FACTOR
        return it, False

    def _move(self, dV, dW, dc, dec):
        """Fraction to the boundary, then Armijo backtracking on the barrier function."""
        sv, sw = self._slacks(self.V, self.W)
        dsv, dsw = self._slacks(dV, dW)
        a = 1.0
        for s, ds in zip(sv + sw, dsv + dsw):
            if s.size:
                a = min(a, 0.99 * max_step(s, ds))
        if dec < 0.5:
            # near the centre: the full (boundary-safe) step; an Armijo test would compare
            # barrier values of size t f ~ 1e12 f, below their rounding
            self.V, self.W, self.c0 = self.V + a * dV, self.W + a * dW, self.c0 + a * dc
            return True
        F0 = self._F(self.V, self.W, self.c0, self.t)
        for _ in range(40):
            Vn, Wn, cn = self.V + a * dV, self.W + a * dW, self.c0 + a * dc
            if self._F(Vn, Wn, cn, self.t) <= F0 - 0.25 * a * dec:
                self.V, self.W, self.c0 = Vn, Wn, cn
                return True
            a *= 0.5
        return False

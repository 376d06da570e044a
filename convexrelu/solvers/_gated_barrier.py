r"""Dual log-barrier Newton method for the gated group lasso with a quadratic loss.

For a loss of constant curvature ``h`` (the squared loss, ``h = 1/c``) and every block
coordinate penalised, the dual of the gated program (docs/mathematics.rst §3.4, §4.1) is

.. math::

    \max_\lambda\ D(\lambda) = \lambda^T y - \frac{1}{2h}\|\lambda\|^2
    \quad\text{s.t.}\quad \|z_i\| \le \beta,\ z_i = \tilde X^T D_i \lambda
    \quad (\text{and } 1^T\lambda = 0 \text{ with a free output bias}),

a problem in ``n`` unknowns however many patterns there are. The barrier method
minimises ``-D(lambda) - mu sum_i log(beta^2 - ||z_i||^2)`` by damped Newton steps and
divides ``mu`` by ``sigma`` after each centring. Every iterate is strictly dual feasible,
so ``D(lambda)`` is a **valid lower bound** at every step, and the barrier's gradient
gives the primal point ``b_i = 2 mu z_i / (beta^2 - ||z_i||^2)`` (its residual is
``lambda / h`` on the central path; the output bias is the multiplier of
``1^T lambda = 0``). With ``q_i = beta^2 - ||z_i||^2``, ``a_i = 2 mu / q_i`` and
``c_i = 4 mu / q_i^2``, the Newton matrix is

.. math:: H = I / h + (\tilde X \tilde X^T) \circ (S\,\mathrm{diag}(a)\,S^T)
          + R\,\mathrm{diag}(c)\,R^T, \qquad R_{:, i} = D_i \tilde X z_i ,

(the masks' Khatri-Rao structure: ``O(n^2 P + n P d)`` to form, no ``(P d) x (P d)``
matrix) and one ``n x n`` Cholesky factor per step. Where ``n`` is small and ``P d``
large (many active groups: scnn's ``lam = 1e-3`` problems on diabetes and breast cancer
at ``P = 500``) this takes 30–50 steps of 10–15 ms where FISTA needs thousands of
iterations. The barrier's primal point has every block nonzero; the caller hands its
support (the blocks whose constraint is nearly tight) to the active-set Newton polish,
which returns an exactly sparse network.

This is the log-barrier method of Boyd & Vandenberghe, *Convex Optimization* (2004),
section 11.3, applied to the dual; the gated program and its dual are those of Mishkin, Sahiner
& Pilanci, "Fast convex optimization for two-layer ReLU networks" (ICML 2022).
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from .._newton import backtrack, damped_cholesky
from ..certificates._gap import pattern_correlations, predict

__all__ = ["BARRIER_MAX_ALPHA_RATIO", "DualBarrier", "barrier_applies"]

#: the largest number of samples the barrier is chosen for by ``method="auto"``: its step
#: factors an ``n x n`` matrix (``n^3 / 3`` flops). On the digits one-vs-rest programs
#: (``n = 1,797``, P = 100) a step costs 75 ms and 45 steps a program: 4.4 s each,
#: against about 0.6 s each for FISTA + polish, the ten jointly.
BARRIER_MAX_SAMPLES = 1000
#: ``method="auto"`` takes the barrier only for ``beta`` at most this fraction of
#: ``alpha_max`` (the smallest ``beta`` whose optimum is zero): with few active blocks
#: FISTA converges in few iterations. scnn's ``lam = 1e-3`` programs at P = 500, barrier
#: against FISTA (seconds): diabetes at 0.5 / 0.2 / 0.05 / 0.01 ``alpha_max`` 0.26/0.06,
#: 0.40/0.10, 0.44/0.22, 0.46/1.09; breast cancer 0.64/0.42, 1.05/0.35, 1.22/1.05,
#: 0.86/2.20
BARRIER_MAX_ALPHA_RATIO = 0.03
#: bounds of the cut of :meth:`DualBarrier.tight` (relative slack of a nearly tight block)
SUPPORT_MIN_CUT, SUPPORT_MAX_CUT = 1e-8, 1e-1
#: a point is centred once the Newton decrement of ``phi / mu`` is below this
_CENTRED = 0.5


def barrier_applies(loss, y, regularizer, n_samples: int, n_vars: int) -> bool:
    """Whether ``method="auto"`` may take the dual barrier: a quadratic loss, every block
    coordinate penalised (a free hidden bias adds one equality per pattern), at most
    ``BARRIER_MAX_SAMPLES`` samples and at least as many variables as samples (the
    caller also checks ``BARRIER_MAX_ALPHA_RATIO``)."""
    return (loss.constant_curvature(y) is not None and not regularizer.free
            and n_samples <= BARRIER_MAX_SAMPLES and n_vars >= n_samples)


class DualBarrier:
    """The dual barrier iteration on one program, resumable (:meth:`run` to a gap, then
    again to a smaller one from where it stopped).

    Parameters
    ----------
    loss : Loss
        A loss of constant curvature (``loss.constant_curvature(y)`` not None).
    Xa : ndarray of shape (n_samples, d_aug)
    S : ndarray of shape (n_samples, n_patterns), float
    y : ndarray of shape (n_samples,)
    beta : float
    output_bias : bool
    sigma : float, default=8.0
        Factor by which ``mu`` decreases after each centring.
    """

    def __init__(self, loss, Xa, S, y, beta: float, *, output_bias: bool,
                 sigma: float = 8.0) -> None:
        self.loss, self.y = loss, np.asarray(y, np.float64)
        self.Xa = np.asarray(Xa, np.float64)
        self.S = np.asarray(S, np.float64)
        self.beta, self.b2 = float(beta), float(beta) ** 2
        self.ob, self.sigma = bool(output_bias), float(sigma)
        self.h = float(loss.constant_curvature(self.y))
        n, P = self.S.shape
        self.K = self.Xa @ self.Xa.T
        self.lam = np.zeros(n)
        self.Z = np.zeros((P, self.Xa.shape[1]))
        yc = self.y - self.y.mean() if self.ob else self.y
        # the barrier's gap bound 2 mu P equals the primal value at zero
        self.mu = max(0.25 * self.h * float(yc @ yc) / max(P, 1), np.finfo(float).tiny)
        self._H = np.zeros((n, n), order="F")  # the Newton matrix's buffer
        self._best: Optional[dict] = None
        self.newton_primal = np.zeros_like(self.Z)
        self.mu_centred = self.mu
        self.n_steps = 0
        self.failed: Optional[str] = None

    # ---------------------------------------------------------------- pieces
    def _corr(self, v):
        return pattern_correlations(self.Xa, self.S, v)

    def _slack(self, Z):
        return self.b2 - np.einsum("ij,ij->i", Z, Z)

    def _phi(self, lam, Z) -> float:
        q = self._slack(Z)
        if np.any(q <= 0.0):
            return np.inf
        return -self.loss.dual_objective(lam, self.y) - self.mu * float(np.sum(np.log(q)))

    def primal_point(self, W=None):
        """``(W, c0)``: the barrier's primal point at the current dual iterate, or ``W``
        given (the output bias re-fitted to the blocks' predictions)."""
        if W is None:
            W = (2.0 * self.mu / self._slack(self.Z))[:, None] * self.Z
        c0 = 0.0
        if self.ob:
            c0 = float(np.mean(self.y - self.predict(W)))
        return W, c0

    def predict(self, W):
        return predict(self.Xa, self.S, W)

    def dual_value(self) -> float:
        """``D(lambda)`` at the current iterate: a valid lower bound. The iterate is
        strictly feasible in the iteration's arithmetic; here ``1^T lambda = 0`` is
        restored exactly and the correlations recomputed, and ``lambda`` is scaled back
        into the constraints wherever rounding put it a hair outside
        (``loss.best_dual_scale``)."""
        lam = self.lam - self.lam.mean() if self.ob else self.lam
        C = self._corr(lam)
        bound = float(np.sqrt(np.max(np.einsum("ij,ij->i", C, C), initial=0.0)))
        _, dual = self.loss.best_dual_scale(lam, self.y,
                                            np.inf if bound == 0.0 else self.beta / bound)
        return float(dual)

    def tight(self, primal: float) -> np.ndarray:
        """The blocks whose dual constraint is nearly tight at the last centred point.

        Near the central path an active block has ``q_i ~ 2 mu beta / ||b_i||`` (so
        ``q_i / beta^2 ~ 2 mu / (beta ||b_i||)``) while an inactive one keeps ``q_i`` of
        order ``beta^2``: the cut is ``q_i / beta^2 <= sqrt(2 mu P / primal)``, the
        square root of the barrier's relative gap bound (a block is missed only if its
        penalty is below ``sqrt`` of that gap over ``P`` of the objective; the polish
        adds it back as a violator)."""
        r = 2.0 * self.mu_centred * self.S.shape[1] / max(abs(primal), 1e-300)
        cut = min(max(np.sqrt(r), SUPPORT_MIN_CUT), SUPPORT_MAX_CUT)
        return self._slack(self.Z) <= cut * self.b2

    # ---------------------------------------------------------------- one step
    def step(self) -> Optional[float]:
        """One damped Newton step on the barrier problem at the current ``mu``; returns
        the Newton decrement ``-grad^T step`` (``None`` when the step failed)."""
        from scipy.linalg import cho_solve
        from scipy.linalg.blas import dsyrk

        n = self.lam.size
        q = self._slack(self.Z)
        a = 2.0 * self.mu / q
        grad = self.lam / self.h - self.y + self.predict(a[:, None] * self.Z)
        R = self.S * (self.Xa @ self.Z.T)
        # the upper triangle only (symmetric rank-P updates: half the flops of a GEMM),
        # in a Fortran-ordered buffer kept across steps whose lower triangle stays zero
        # (the factor reads only the upper one: damped_cholesky without ``work``, whose
        # in-place variant reads the lower triangle, must not be given this matrix)
        H = self._H
        if q.size:
            H = dsyrk(1.0, (self.S * np.sqrt(a)).T, c=H, trans=1, lower=0, beta=0.0,
                      overwrite_c=1)
            H *= self.K
            H = dsyrk(1.0, (R * (2.0 * np.sqrt(self.mu) / q)).T, c=H, trans=1, lower=0,
                      beta=1.0, overwrite_c=1)
        else:  # no pattern: the loss's curvature alone
            H[...] = 0.0
        H[np.diag_indices(n)] += 1.0 / self.h
        cf = damped_cholesky(H)
        if cf is None:
            self.failed = "the Newton matrix could not be factored"
            return None
        if self.ob:  # keep 1^T lambda = 0: the multiplier of the equality
            sol = cho_solve(cf, np.column_stack([grad, np.ones(n)]), check_finite=False)
            nu = -sol[:, 0].sum() / sol[:, 1].sum()
            dl = -(sol[:, 0] + nu * sol[:, 1])
        else:
            dl = -cho_solve(cf, grad, check_finite=False)
        dec = -float(grad @ dl)
        if not np.isfinite(dec):
            self.failed = "the Newton step is not finite"
            return None
        dZ = self._corr(dl)
        # the primal point of the full Newton step, b_i(z_i + dz_i) to first order: its
        # residual matches lambda + dl to first order, so it is far more accurate than
        # b_i(z_i) at a point that is only roughly centred
        zdz = np.einsum("ij,ij->i", self.Z, dZ)
        self.newton_primal = a[:, None] * (self.Z + dZ) + \
            ((4.0 * self.mu / (q * q)) * zdz)[:, None] * self.Z
        # the largest step keeping every ||z_i + t dz_i|| < beta (a quadratic per block)
        A2 = np.einsum("ij,ij->i", dZ, dZ)
        B1 = np.einsum("ij,ij->i", self.Z, dZ)
        with np.errstate(divide="ignore", invalid="ignore"):
            tb = np.where(A2 > 0, (-B1 + np.sqrt(B1 * B1 + A2 * q)) / A2, np.inf)
        t0 = min(1.0, 0.99 * float(np.min(tb, initial=np.inf)))
        f0 = self._phi(self.lam, self.Z)

        def trial(t):
            Zt = self.Z + t * dZ
            return self._phi(self.lam + t * dl, Zt), Zt

        acc = backtrack(trial, f0, -dec, t=t0, c1=0.25, flat_below=1e-10)
        self.n_steps += 1
        if acc is None:
            self.failed = "the line search failed"
            return None
        t, _, Zt = acc
        self.lam = self.lam + t * dl
        self.Z = Zt
        if self.n_steps % 10 == 0:  # no drift from the updates (kept where it is feasible)
            Zr = self._corr(self.lam)
            if np.all(self._slack(Zr) > 0.0):
                self.Z = Zr
        return dec

    # ---------------------------------------------------------------- the path
    def run(self, rel_gap: float, certify, best_dual: float = -np.inf, *,
            max_steps: int = 500, deadline: Optional[float] = None,
            history: Optional[list] = None, t_start: Optional[float] = None,
            verbose: int = 0) -> dict:
        """Centre and decrease ``mu`` until the relative gap of the barrier's primal point
        is at most ``rel_gap``.

        ``certify(W, c0) -> DualGap`` evaluates the primal point (its own dual point from
        the residual); the barrier's ``D(lambda)`` is a second lower bound. Returns
        ``{"W", "c", "primal", "dg", "best_dual", "converged"}`` (``dg``: ``certify``'s
        value at ``W``) for the point of lowest primal
        value seen (``W`` is ``None`` before the first centring).
        """
        t_start = time.perf_counter() if t_start is None else t_start
        out = self._best or {"W": None, "c": 0.0, "primal": np.inf}
        out["best_dual"] = max(best_dual, out.get("best_dual", -np.inf))
        out["converged"] = False
        steps = 0
        while steps < max_steps and self.failed is None:
            if deadline is not None and time.perf_counter() > deadline:
                break
            dec = self.step()
            steps += 1
            if dec is None:
                break
            if dec > _CENTRED * self.mu:  # not centred yet (Newton decrement of phi / mu)
                continue
            W, c0 = self.primal_point(self.newton_primal)
            dg = certify(W, c0)
            self.mu_centred = self.mu
            out["best_dual"] = max(out["best_dual"], dg.dual, self.dual_value())
            if dg.primal <= out["primal"]:
                out.update(W=W, c=c0, primal=dg.primal, dg=dg)
            gap = out["primal"] - out["best_dual"]
            if history is not None:
                history.append((self.n_steps, time.perf_counter() - t_start,
                                out["primal"], gap))
            if verbose:
                print(f"barrier step {self.n_steps}: mu {self.mu:.3e} primal "
                      f"{out['primal']:.12e} gap {gap:.3e}")
            self.mu /= self.sigma
            if gap <= rel_gap * abs(out["primal"]):
                out["converged"] = True
                break
            if 2.0 * self.mu * self.S.shape[1] <= 1e-14 * max(abs(out["primal"]), 1e-300):
                # the barrier's own gap bound is at the rounding of the objective
                self.failed = "mu reached the rounding level of the objective"
        self._best = out
        return out

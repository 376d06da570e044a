"""Duality gaps of the gated (C-GReLU) and ReLU (CVX) convex programs.

Both programs are sum-reduced (docs/mathematics.rst §1.2, §3.1, §3.4) on augmented data ``Xa``
(``n_samples x d_aug``) with masks ``D`` (``n_samples x n_patterns``) and an optional free
output bias ``c0``:

.. math::

    \\text{gated:}\\ \\min_{W, c_0}\\ \\ell\\Big(\\sum_i D_i\\tilde X w_i + c_0; y\\Big)
        + \\beta \\sum_i \\|w_i\\|_{\\rm pen},

    \\text{relu:}\\ \\min_{V, W, c_0}\\ \\ell\\Big(\\sum_i D_i\\tilde X (v_i - w_i) + c_0; y\\Big)
        + \\beta \\sum_i (\\|v_i\\| + \\|w_i\\|)
        \\ \\text{ s.t. } A_i\\tilde X v_i \\ge 0,\\ A_i\\tilde X w_i \\ge 0 .

The dual point is built from the primal iterate the way celer does it (docs/mathematics.rst §4.1,
§8.3):

1. ``lam = -grad l(y_hat)``; with a free output bias the dual gains ``1^T lam = 0``, so the
   output bias is first re-fitted (a 1-D root of ``sum(grad l(y_hat + delta))``: closed
   form for the squared loss, where it centres ``lam``; bisection otherwise, which keeps
   ``y_i lam_i`` inside ``[0, 1]`` for the logistic loss).
2. ``lam`` is scaled by ``s in [0, min(beta / M(lam), max_dual_scale)]`` maximising
   ``D(s lam)`` (closed form for the squared loss, a bounded 1-D search otherwise), where
   ``M`` is the dual-constraint functional of the program:

   * gated: ``M(lam) = max_i ||Xa^T D_i lam||`` (exact);
   * relu: the finite SOCP form of the dual (docs/mathematics.rst §4.2): with cone multipliers
     ``mu_j >= 0`` the constraint is ``max_j ||Xa^T (S_j lam + A_j mu_j)|| <= beta``;
     any ``mu >= 0`` gives a valid bound (the augmented-Lagrangian multipliers make it
     tight at convergence). The cheap bound ``mu = 0`` is the gated dual constraint and
     cannot certify below the relaxation gap ``p* - p*_G``.

The gap ``P - D(s lam)`` is then a certified upper bound on the suboptimality ``P - p*``
over the given pattern set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..arrangements._patterns import cone_signs
from ..regularizers import GroupL2Penalty

__all__ = [
    "DualGap",
    "within_tol",
    "relative_gap",
    "predict",
    "pattern_correlations",
    "fit_output_shift",
    "dual_point",
    "best_dual_scale",
    "gated_duality_gap",
    "relu_multiplier_gap",
    "range_basis",
]


@dataclass
class DualGap:
    """A primal value, a dual value and a feasible dual point.

    Attributes
    ----------
    primal : float
        Sum-reduced primal objective of the iterate.
    dual : float
        ``D(scale * lam)``, a lower bound on the optimum over the pattern set.
    gap : float
        ``primal - dual`` (``>= 0`` up to rounding for a feasible primal point).
    lam : ndarray of shape (n_samples,)
        The feasible dual point ``scale * lam``.
    scale : float
        The scale applied to the unscaled dual point.
    bound : float
        The value of ``M(lam)`` (or its upper bound) for the unscaled ``lam``.
    output_shift : float
        The output-bias correction used to build ``lam`` (0 without an output bias).
    """

    primal: float
    dual: float
    gap: float
    lam: np.ndarray
    scale: float
    bound: float
    output_shift: float = 0.0
    block_bounds: Optional[np.ndarray] = None

    @property
    def rel_gap(self) -> float:
        return relative_gap(self.gap, self.primal)


def predict(Xa: np.ndarray, S: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``sum_i S_i Xa b_i`` for all blocks at once: ``rowsum(Xa * (S @ B))`` for floating
    masks (an ``n x d_aug`` product: 5x faster than ``((Xa @ B.T) * S).sum(1)`` at
    ``n = 10^5``, ``P = 100``, which stays for boolean masks: no float copy of them)."""
    if np.issubdtype(np.asarray(S).dtype, np.floating):
        return np.einsum("nd,nd->n", Xa, S @ B)
    return np.einsum("nq,nq->n", Xa @ B.T, S)


def pattern_correlations(Xa: np.ndarray, S: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Rows ``c_i = Xa^T S_i lam`` for every block, shape ``(n_blocks, d_aug)``.

    ``lam`` of shape ``(n, k)`` (the dual points of ``k`` outputs or one-vs-rest classes)
    gives shape ``(n_blocks, k, d_aug)``, all from one product with ``S`` (one pass over
    the masks)."""
    if lam.ndim == 1:
        return S.T @ (lam[:, None] * Xa)
    n, d = Xa.shape
    XL = (lam[:, :, None] * Xa[:, None, :]).reshape(n, -1)
    return (S.T @ XL).reshape(S.shape[1], lam.shape[1], d)


def fit_output_shift(loss, z: np.ndarray, y: np.ndarray):
    """``delta`` minimising ``l(z + delta; y)``: the loss's own :meth:`~Loss.output_shift`."""
    return loss.output_shift(z, y)


def dual_point(loss, z: np.ndarray, y: np.ndarray, *, output_bias: bool):
    """Unscaled dual point ``-grad l(z + delta)`` and the output shift ``delta``.

    Without an output bias ``delta = 0``. With one, ``delta`` re-fits the output bias so
    that ``1^T lam = 0`` (docs/mathematics.rst §8.3); if that is impossible (no finite
    minimiser) ``lam = 0`` is returned, the trivially feasible dual point.
    """
    z = np.asarray(z, dtype=np.float64)
    if not output_bias:
        return -loss.gradient(z, y), (0.0 if z.ndim == 1 else np.zeros(z.shape[1]))
    delta = loss.output_shift(z, y)
    if not np.all(np.isfinite(delta)):
        return np.zeros_like(z), (0.0 if z.ndim == 1 else np.zeros(z.shape[1]))
    lam = -loss.gradient(z + delta, y)
    if loss.constant_curvature(y) is not None:
        lam = lam - lam.mean(axis=0)  # exact centring against rounding (quadratic loss)
    return lam, (float(delta) if z.ndim == 1 else np.asarray(delta, dtype=np.float64))


def best_dual_scale(loss, lam: np.ndarray, y: np.ndarray, s_max: float
                    ) -> tuple[float, float]:
    """``(s, D(s lam))`` with ``s in [0, s_max]`` maximising ``D(s lam)``: the loss's own
    :meth:`~Loss.best_dual_scale` (a closed form where the loss has one)."""
    return loss.best_dual_scale(lam, y, s_max)


def within_tol(gap: float, primal: float, tol: float) -> bool:
    """The one stopping / optimality decision: ``gap <= tol * |primal|``.

    Every solver's convergence test, the estimators' ``certificate_.optimal`` and
    :func:`convexrelu.certify` use it, so that they cannot disagree.
    """
    return bool(gap <= tol * abs(primal))


def relative_gap(gap: float, primal: float) -> float:
    """``gap / |primal|`` (with a floor at the smallest positive float)."""
    return float(gap) / max(abs(float(primal)), np.finfo(float).tiny)


def gated_duality_gap(loss, Xa, masks, y, W, c0, beta, *, output_bias: bool,
                      regularizer: Optional[GroupL2Penalty] = None,
                      z: Optional[np.ndarray] = None,
                      null_basis: Optional[np.ndarray] = None,
                      primal: Optional[float] = None, bound_fn=None) -> DualGap:
    """Duality gap of the gated program at ``(W, c0)``.

    Parameters
    ----------
    masks : ndarray of shape (n_samples, n_patterns), float
    W : ndarray of shape (n_patterns, d_aug)
    regularizer : GroupL2Penalty, optional
        The group penalty (default: every coordinate of ``W``'s blocks penalised). With a
        free hidden bias (``regularizer.free``) the dual also needs ``1^T D_i lam = 0``
        for every pattern; ``lam`` is projected onto that subspace with ``null_basis``
        (an orthonormal basis of the range of ``[masks, 1]``), a valid but possibly weak
        choice.
    z : ndarray of shape (n_samples,), optional
        ``predict(Xa, masks, W) + c0`` if already computed.
    primal : float, optional
        The primal value at ``(W, c0)`` if already computed (then ``W`` is not used).
    bound_fn : callable, optional
        ``bound_fn(lam) -> max_i ||Xa_pen^T D_i lam||`` computed elsewhere (e.g. on the
        solver's array backend); then ``Xa`` and ``masks`` are not used.
    """
    if regularizer is None:
        regularizer = GroupL2Penalty(np.shape(W if Xa is None else Xa)[-1])
    if z is None:
        z = predict(Xa, masks, W) + c0
    if primal is None:
        primal = float(loss.value(z, y)) + beta * regularizer.value(W)
    lam, delta = dual_point(loss, z, y, output_bias=output_bias)
    if regularizer.free:
        if null_basis is None:
            null_basis = range_basis(masks, output_bias=True)
        nrm0 = float(np.linalg.norm(lam))
        for _ in range(2):  # project twice: rounding of the first pass is O(eps ||lam||)
            lam = lam - null_basis @ (null_basis.T @ lam)
        if float(np.linalg.norm(lam)) <= 1e-9 * nrm0:
            # nothing but rounding is left: its direction is arbitrary and it meets
            # 1^T D_i lam = 0 only to O(eps ||lam_0||), so scaling it up would give an
            # invalid bound (seen when [masks, 1] spans R^n); use the feasible lam = 0
            lam = np.zeros_like(lam)
    if bound_fn is not None:
        bound = float(bound_fn(lam))
    else:
        corr = pattern_correlations(regularizer.penalized(Xa), masks, lam)
        bound = float(np.max(np.linalg.norm(corr, axis=1))) if corr.size else 0.0
    s_max = np.inf if bound == 0.0 else beta / bound
    s, dual = best_dual_scale(loss, lam, y, s_max)
    return DualGap(primal, dual, primal - dual, s * lam, s, bound, delta)


def range_basis(masks: np.ndarray, *, output_bias: bool) -> np.ndarray:
    """Orthonormal basis of the range of ``[masks, 1]`` (or ``masks``)."""
    M = np.hstack([masks, np.ones((masks.shape[0], 1))]) if output_bias else masks
    U, sv, _ = np.linalg.svd(M, full_matrices=False)
    r = int(np.sum(sv > sv[0] * max(M.shape) * np.finfo(float).eps)) if sv.size else 0
    return U[:, :r]


def relu_multiplier_gap(loss, Xa, S, signs, y, B, c0, beta, mu, *, output_bias: bool,
                        regularizer: Optional[GroupL2Penalty] = None, max_refine: int = 100
                        ) -> DualGap:
    """Certified duality gap of the ReLU program at a *feasible* ``(B, c0)``.

    Parameters
    ----------
    S : ndarray of shape (n_samples, n_blocks)
        Signed masks (``[D, -D]`` for ``B = [V; W]``).
    signs : ndarray of shape (n_samples, n_blocks), bool
        Pattern of each block (``A = 2 signs - 1``).
    mu : ndarray of shape (n_samples, n_blocks)
        Any nonnegative cone multipliers (the better, the tighter the bound).
    regularizer : GroupL2Penalty, optional
        The group penalty (default: every coordinate penalised).
    max_refine : int
        The blocks whose bound exceeds ``beta`` are refined, largest first, by solving
        ``min_{mu_j >= 0} ||Xa^T (S_j lam + A_j mu_j)||`` exactly (``lsq_linear``, BVLS;
        docs/mathematics.rst §4.2 / §8.4), at most ``max_refine`` of them (the stop rule of
        docs/mathematics.rst §8.5:
        once the next block's bound is below the best refined value, the max is known).
    """
    if regularizer is None:
        regularizer = GroupL2Penalty(Xa.shape[1])
    A = cone_signs(signs)
    z = predict(Xa, S, B) + c0
    primal = float(loss.value(z, y)) + beta * regularizer.value(B)
    lam, delta = dual_point(loss, z, y, output_bias=output_bias)
    mu = np.maximum(np.asarray(mu, np.float64), 0.0)
    R = multiplier_residuals(Xa, A, S, lam, mu, regularizer)
    nrm = _block_bounds(R, Xa, A, S, lam, beta, regularizer, max_refine)
    bound = float(np.max(nrm)) if nrm.size else 0.0
    if not np.isfinite(bound):
        lam = np.zeros_like(lam)
        bound = 0.0
    s, dual = best_dual_scale(loss, lam, y, np.inf if bound == 0.0 else beta / bound)
    return DualGap(primal, dual, primal - dual, s * lam, s, bound, delta, nrm)


def multiplier_residuals(Xa, A, S, lam, mu, regularizer: GroupL2Penalty):
    """Rows ``Xa^T (S_j lam + A_j mu_j)`` (penalised part; bias equality enforced)."""
    if regularizer.free:
        mu = _fix_bias_equality(Xa, A, S, lam, mu, regularizer)
        with np.errstate(invalid="ignore"):
            return (S * lam[:, None] + A * mu).T @ regularizer.penalized(Xa)
    return (S * lam[:, None] + A * mu).T @ Xa


def _block_bounds(R, Xa, A, S, lam, beta, regularizer: GroupL2Penalty, max_refine):
    """Per-block upper bounds on ``M_j`` (refined for the largest ones)."""
    with np.errstate(invalid="ignore"):
        nrm = np.linalg.norm(R, axis=1)
    nrm[~np.isfinite(nrm)] = np.inf
    if max_refine > 0 and nrm.size and np.max(nrm) > beta:
        _refine_bounds(Xa, A, S, lam, nrm, beta, regularizer.free, max_refine)
    return nrm


def _refine_bounds(Xa, A, S, lam, nrm, beta, free_bias, max_refine):
    """In place: ``nrm[j] <- min(nrm[j], exact M_j)`` for the largest bounds (see above).

    Each exact value is the certificate core's per-pattern cone value
    (:func:`~convexrelu.certificates._dual.pattern_value`, a certified upper bound).
    """
    from ._dual import _prepare, pattern_value

    Xt, _, R = _prepare(Xa, free_bias)
    order = np.argsort(-nrm)
    best = -np.inf
    for cnt, j in enumerate(order):
        if nrm[j] <= max(best, beta) or cnt >= max_refine:
            break
        c = Xt.T @ (S[:, j] * lam)
        val = pattern_value(Xt, A[:, j] > 0, c, free_bias=free_bias, R=R)[0]
        nrm[j] = min(nrm[j], float(val) if np.isfinite(val) else np.inf)
        best = max(best, nrm[j])


def _fix_bias_equality(Xa, A, S, lam, mu, regularizer: GroupL2Penalty):
    """Adjust ``mu >= 0`` so that ``1^T (S_j lam + A_j mu_j) = 0`` for every block.

    ``r_j > 0``: add ``r_j`` to ``mu`` at the inactive sample of smallest ``||x_i||``
    (or, for an all-active block, scale ``mu_j`` down when that suffices); ``r_j < 0``:
    symmetric. Blocks where neither works get ``mu_j = inf`` (infeasible: bound inf).
    Residuals below ``1e-12`` of the magnitudes involved are treated as rounding errors.
    """
    mu = mu.copy()
    ones = regularizer.unpenalized(Xa).sum(axis=1)  # the bias column: 1 for [X, 1]
    a = (S * lam[:, None]).T @ ones
    r = a + (A * mu).T @ ones
    xn = regularizer.norms(Xa)
    cols = np.arange(A.shape[1])
    # residuals at the rounding level of the centring (|r| <= 1e-12 sum|.|) count as zero
    rtol = 1e-12 * ((np.abs(S) * np.abs(lam)[:, None]).T @ np.abs(ones) + mu.T @ np.abs(ones))
    for sgn in (1.0, -1.0):
        # sgn = 1: need to decrease r (add at A = -1); sgn = -1: increase (add at A = +1)
        need = sgn * r > rtol
        if not np.any(need):
            continue
        cand = np.where(A == -sgn, xn[:, None], np.inf)
        idx = np.argmin(cand, axis=0)
        has = np.isfinite(cand[idx, cols])
        add = need & has
        mu[idx[add], cols[add]] += np.abs(r[add])
        rest = need & ~has
        if np.any(rest):
            tot = mu[:, rest].sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                fac = np.where(tot > 0, -sgn * a[rest] / tot, np.inf)  # needs 0 <= fac <= 1
            ok = (fac >= 0) & (fac <= 1)
            sub = mu[:, rest]
            sub[:, ok] *= fac[ok]
            sub[:, ~ok] = np.inf
            mu[:, rest] = sub
    return mu


def centred_dual(program) -> bool:
    """Whether the program's dual point must satisfy ``1^T lambda = 0``.

    With a free output bias, or with a free hidden bias when the all-active pattern is in
    the program (its neuron ``u = 0, b > 0`` is then a free constant). Otherwise the
    constant is not free and centring would only loosen the bound.
    """
    if program.fit_output_bias:
        return True
    if not program.regularizer.free:
        return False
    return bool(np.any(np.all(program.masks[np.any(program.X_aug != 0, axis=1)], axis=0)))


def duality_gap(program, V, W, c0, multipliers=None) -> Optional[DualGap]:
    """The certified duality gap of a point of a ``"relu"`` or ``"gated_relu"`` program.

    The dual point is the residual's (output bias re-fitted, docs/mathematics.rst §8.3),
    scaled to feasibility by ``beta / M(lambda)`` with ``M`` evaluated over **every**
    pattern of the program: exactly per pattern for ``"relu"``
    (:func:`~convexrelu.certificates.dual_constraint`, bound-then-refine) and in closed
    form for ``"gated_relu"``. Sum form (divide by ``n_samples`` for scikit-learn's
    normalisation). With several outputs the program is a sum of independent scalar
    programs over shared patterns and their gaps add up. Returns ``None`` for the
    constrained formulations and for non-smooth losses (a subgradient is not a dual point:
    :func:`~convexrelu.certificates.certify` maximises the hinge dual over its margin box
    instead). ``multipliers``: a ``PricingMultipliers`` of the program's patterns (one
    output): earlier multipliers that start its refinements (never change the value
    beyond rounding; their ``refined_before`` can switch the projections to the compiled
    kernel).
    """
    if program.formulation not in ("relu", "gated_relu") or not program.loss.smooth:
        return None
    V = np.asarray(V, np.float64)
    W = np.zeros_like(V) if W is None else np.asarray(W, np.float64)
    if program.n_outputs > 1:
        loss = program.loss
        if not hasattr(loss, "n_outputs") or loss.multi_output:
            return None
        import copy

        col = copy.copy(loss)
        col.n_outputs = program.n_outputs
        c0 = np.broadcast_to(np.asarray(c0, np.float64), (program.n_outputs,))
        parts = [_scalar_gap(program, col, program.y[:, k], V[k], W[k], float(c0[k]))
                 for k in range(program.n_outputs)]
        primal = sum(p.primal for p in parts)
        dual = sum(p.dual for p in parts)
        return DualGap(primal, dual, primal - dual, np.column_stack([p.lam for p in parts]),
                       min(p.scale for p in parts), max(p.bound for p in parts))
    return _scalar_gap(program, program.loss, program.y, V, W, float(np.ravel(c0)[0]),
                       multipliers)


def _scalar_gap(program, loss, y, V, W, c0, multipliers=None) -> DualGap:
    from ._dual import dual_constraint

    Xa, masks = program.X_aug, program.masks
    reg = program.regularizer
    z = predict(Xa, masks, V - W) + c0
    pen = reg.value(V) + reg.value(W)
    beta = program.alpha
    primal = float(loss.value(z, y)) + beta * pen
    free_bias = reg.free
    if program.formulation == "gated_relu":
        return gated_duality_gap(loss, Xa, masks, y, V, c0, beta,
                                 output_bias=program.fit_output_bias, regularizer=reg, z=z,
                                 primal=primal)
    lam, delta = dual_point(loss, z, y, output_bias=centred_dual(program))
    dv = dual_constraint(program.patterns, program.X, lam, penalize_bias=not free_bias,
                         multipliers=multipliers)
    M = float(dv.value)
    if not np.isfinite(M):
        lam, M = np.zeros_like(lam), 0.0
    s, dual = loss.best_dual_scale(lam, y, np.inf if M == 0 else beta / M)
    return DualGap(primal, dual, primal - dual, s * lam, s, M, delta)

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

__all__ = ["backtrack", "boundary_steps", "damped_cholesky", "max_step", "newton_step",
           "norm_derivatives"]


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


def damped_cholesky(H: np.ndarray, rel_shift: float = 1e-12, tries: int = 8):
    """Cholesky factor (``scipy.linalg.cho_factor``) of ``H + mu I``.

    ``mu`` is ``rel_shift * mean(diag H)``, multiplied by 100 after every failed
    factorisation (``tries`` in all); ``None`` if none succeeds.
    """
    from scipy.linalg import LinAlgError, cho_factor

    mu = rel_shift * max(float(np.mean(np.diag(H))), np.finfo(float).tiny) if H.size else 1.0
    eye = np.eye(H.shape[0])
    for _ in range(tries):
        try:
            return cho_factor(H + mu * eye, lower=False, check_finite=False)
        except LinAlgError:
            mu *= 100.0
    return None


def newton_step(H: np.ndarray, g: np.ndarray, rel_shift: float = 1e-12
                ) -> Optional[np.ndarray]:
    """The regularised Newton step ``-(H + mu I)^{-1} g`` (:func:`damped_cholesky`);
    ``None`` when no shift makes ``H + mu I`` numerically positive definite."""
    from scipy.linalg import cho_solve

    cf = damped_cholesky(H, rel_shift)
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

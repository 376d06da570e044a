"""Regularisation paths: ``alpha_max``, a geometric grid, warm starts, strong rules.

For the convex program (docs/mathematics.rst §3.1, §3.4, sum form with ``beta = alpha``) the
network is
zero (only the output bias is fitted) exactly when the zero point satisfies the KKT
conditions, i.e. when the dual point of the zero network is dual feasible:

.. math::

    \\alpha \\ge \\alpha_{\\max} = M(\\lambda_0),\\qquad
    \\lambda_0 = -\\nabla\\ell(c_0^\\star\\mathbf 1;\\ y),

with :math:`c_0^\\star` the best constant (docs/mathematics.rst §8.3; for the squared loss
:math:`\\lambda_0 = y - \\bar y`) and ``M`` the dual-constraint functional over all
patterns (docs/mathematics.rst §4.2; the gated functional for ``"gated_relu"``).

Along a decreasing grid ``alpha_max = a_0 > a_1 > ...`` each problem starts from the
previous solution's support plus the patterns kept by the sequential strong rule
(Tibshirani et al. 2012): keep pattern ``i`` when its score at the previous dual point,
``||(X_aug^T D_i lambda_prev)_pen||``, is at least ``2 a_k - a_{k-1}``. The strong rule is
a heuristic (and the score is the gated value, an upper bound on the ReLU one only
without a free hidden bias); exactness comes from the column-generation loop
(:class:`~convexrelu.solvers.ColumnGenerationSolver`), which certifies every path point
over all patterns and adds whatever the screening discarded wrongly.

References
----------
R. Tibshirani, J. Bien, J. Friedman, T. Hastie, N. Simon, J. Taylor and R. J. Tibshirani,
"Strong rules for discarding predictors in lasso-type problems", JRSS B, 2012.
M. Pilanci and T. Ergen, "Neural networks are convex regularizers", ICML 2020.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from ..program import ConvexProgram, ConvexSolution
from ._base import BaseSolver
from ._column_generation import ColumnGenerationSolver, _block_sizes, _oracle_for
from ..certificates._gap import dual_point, pattern_correlations

__all__ = ["RegularizationPath", "alpha_max", "regularization_path"]


@dataclass
class RegularizationPath:
    """Solutions of the convex program along a decreasing grid of ``alpha``.

    Attributes
    ----------
    alphas : ndarray of shape (n_alphas,)
        The grid, in decreasing order.
    alpha_max : float
        Smallest ``alpha`` whose solution is the zero network (output bias only).
    objectives : ndarray of shape (n_alphas,)
        Objectives in scikit-learn's normalisation (docs/mathematics.rst §8.1).
    rel_gaps : ndarray of shape (n_alphas,)
        Certified relative duality gaps (over all patterns when the set is exact).
    n_neurons : ndarray of shape (n_alphas,)
        Nonzero blocks of each solution.
    n_screened : ndarray of shape (n_alphas,)
        Size of the starting working set (previous support plus strong-rule survivors).
    times : ndarray of shape (n_alphas,)
        Seconds per path point.
    solutions : list of ConvexSolution
        Over the full pattern set (sparse).
    patterns : ActivationPatterns
    """

    alphas: np.ndarray
    alpha_max: float
    objectives: np.ndarray
    rel_gaps: np.ndarray
    n_neurons: np.ndarray
    n_screened: np.ndarray
    times: np.ndarray
    solutions: list = field(default_factory=list)
    patterns: object = None


def _program(X, y, patterns, *, loss, bias, penalize_bias, fit_output_bias, formulation,
             random_state=None) -> ConvexProgram:
    from ..arrangements import ActivationPatterns, enumerate_patterns, sample_patterns

    if isinstance(patterns, str):
        if patterns != "exact":
            raise ValueError(f"patterns must be 'exact', a positive int or an "
                             f"ActivationPatterns; got {patterns!r}.")
        pats = enumerate_patterns(X, bias=bias)
    elif isinstance(patterns, numbers.Integral) and not isinstance(patterns, bool):
        pats = sample_patterns(X, int(patterns), random_state=random_state, bias=bias)
    elif isinstance(patterns, ActivationPatterns):
        pats = patterns
    else:
        raise ValueError(f"patterns must be 'exact', a positive int or an ActivationPatterns; "
                         f"got {type(patterns).__name__}.")
    return ConvexProgram(X, y, pats, loss=loss, alpha=1.0, bias=bias,
                         penalize_bias=penalize_bias, fit_output_bias=fit_output_bias,
                         formulation=formulation)


def _zero_dual(program: ConvexProgram) -> np.ndarray:
    free_bias = program.regularizer.free
    lam, _ = dual_point(program.loss, np.zeros(program.n_samples), program.y,
                        output_bias=program.fit_output_bias or free_bias)
    return lam


def _alpha_max(program: ConvexProgram, n_jobs=None) -> float:
    # the exact maximum, not a pricing bound
    M, _ = _oracle_for(program, 1, n_jobs, pricing=False).evaluate(_zero_dual(program))
    return float(M)


def alpha_max(X, y, *, loss="squared", patterns="exact", bias: bool = True,
              penalize_bias: bool = False, fit_output_bias: bool = True,
              formulation: str = "relu", random_state=None, n_jobs=None) -> float:
    """The smallest ``alpha`` at which the optimal network is zero.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    loss : {"squared", "logistic"} or Loss, default="squared"
    patterns : "exact", int or ActivationPatterns, default="exact"
        ``alpha_max`` over that pattern set (only ``"exact"`` or an exact set gives the
        value for networks of every width).
    bias, penalize_bias, fit_output_bias : bool
        As in :class:`~convexrelu.program.ConvexProgram`.
    formulation : {"relu", "gated_relu"}, default="relu"
    random_state : int, Generator or None
        For sampled patterns.
    n_jobs : int or None, default=None
        Chunks of the pattern set evaluated in parallel by joblib (a Dask cluster under
        ``joblib.parallel_config(backend="dask")``); the value does not depend on it.

    Returns
    -------
    float
        ``M(lambda_0)`` in scikit-learn's ``alpha`` units (docs/mathematics.rst §8.1).
    """
    return _alpha_max(_program(X, y, patterns, loss=loss, bias=bias,
                               penalize_bias=penalize_bias, fit_output_bias=fit_output_bias,
                               formulation=formulation, random_state=random_state),
                      n_jobs=n_jobs)


def _strong_rule(program: ConvexProgram, lam: np.ndarray, threshold: float,
                 block_size: int = 8192) -> np.ndarray:
    """Indices of the patterns whose score ``||(X_aug^T D_i lam)_pen||`` >= threshold."""
    Xp = program.regularizer.penalized(program.X_aug)
    keep = []
    for start, masks, _ in program.patterns.iter_blocks(block_size):
        score = np.linalg.norm(pattern_correlations(Xp, masks, lam), axis=1)
        keep.append(start + np.flatnonzero(score >= threshold))
    return np.concatenate(keep) if keep else np.zeros(0, dtype=int)


def regularization_path(X, y, alphas=None, *, n_alphas: int = 10, eps: float = 1e-2,
                        loss="squared", patterns="exact", bias: bool = True,
                        penalize_bias: bool = False, fit_output_bias: bool = True,
                        formulation: str = "relu", solver: Union[str, BaseSolver] = "cvxpy",
                        tol: float = 1e-6, screening: bool = True,
                        max_screened: Optional[int] = 200, max_iter: int = 100,
                        random_state=None, verbose: int = 0,
                        n_jobs=None) -> RegularizationPath:
    """Solve the convex program along a decreasing grid of ``alpha`` with warm starts.

    Each point minimises (sum form, docs/mathematics.rst §3.1)

    .. math::

        \\ell\\Big(\\sum_i D_iX(v_i - w_i) + c_0; y\\Big)
        + \\alpha\\sum_i \\big(\\rho(v_i) + \\rho(w_i)\\big)
        \\ \\text{ s.t. }\\ A_iXv_i \\ge 0,\\ A_iXw_i \\ge 0,

    by column generation started from the previous support plus the strong-rule
    survivors, to a certified relative gap ``tol``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    alphas : array-like, optional
        The grid (sorted into decreasing order). Default: ``n_alphas`` values from
        ``alpha_max`` down to ``eps * alpha_max``, geometrically spaced.
    n_alphas : int, default=10
    eps : float, default=1e-2
    loss, patterns, bias, penalize_bias, fit_output_bias, formulation, random_state
        As in :func:`alpha_max`.
    solver : str or BaseSolver, default="cvxpy"
        Inner solver of the restricted programs.
    tol : float, default=1e-6
        Certified relative duality gap of every path point.
    screening : bool, default=True
        Start each point from the strong-rule survivors (else from the previous support).
    max_screened : int or None, default=200
        Keep at most this many strong-rule survivors (the best scores).
    max_iter : int, default=100
        Column-generation rounds per path point.
    verbose : int, default=0
    n_jobs : int or None, default=None
        The pricing of every column-generation round (and ``alpha_max``) evaluates chunks
        of the pattern set in parallel through joblib (``None``: one worker unless in a
        ``joblib.parallel_config`` context; a Dask cluster under
        ``parallel_config(backend="dask")``). The path points stay sequential (each is
        warm-started from the previous one); the result does not depend on ``n_jobs``.

    Returns
    -------
    RegularizationPath
    """
    if not isinstance(n_alphas, numbers.Integral) or isinstance(n_alphas, bool) or n_alphas < 1:
        raise ValueError(f"n_alphas must be a positive int; got {n_alphas!r}.")
    if not (isinstance(eps, numbers.Real) and 0 < eps < 1):
        raise ValueError(f"eps must be a float in (0, 1); got {eps!r}.")
    program = _program(X, y, patterns, loss=loss, bias=bias, penalize_bias=penalize_bias,
                       fit_output_bias=fit_output_bias, formulation=formulation,
                       random_state=random_state)
    amax = _alpha_max(program, n_jobs)
    if alphas is None:
        alphas = amax * np.geomspace(1.0, eps, int(n_alphas)) if amax > 0 else np.zeros(1)
    alphas = np.sort(np.asarray(alphas, dtype=np.float64).ravel())[::-1]
    # alpha = 0 only where the zero network is optimal at every alpha (amax = 0): elsewhere
    # the program interpolates and the pricing divides by alpha
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0) or (
            amax > 0 and np.any(alphas == 0)):
        raise ValueError(f"alphas must be a non-empty array of floats > 0; got {alphas!r}.")
    cg = ColumnGenerationSolver(inner=solver, tol=tol, max_iter=max_iter, verbose=verbose,
                                n_jobs=n_jobs)
    lam_prev, a_prev = _zero_dual(program), max(amax, float(alphas[0]))
    support = np.zeros(0, dtype=int)
    out = {k: [] for k in ("obj", "gap", "nn", "ns", "t")}
    sols: list[ConvexSolution] = []
    for a in alphas:
        t0 = time.perf_counter()
        prog = program.with_alpha(float(a))
        start = support
        if screening and a < amax:
            cand = _strong_rule(prog, lam_prev, 2.0 * a - a_prev)
            if max_screened is not None and cand.size > max_screened:
                Xp = prog.regularizer.penalized(prog.X_aug)
                score = np.linalg.norm(pattern_correlations(
                    Xp, prog.patterns.masks_block(0, prog.n_patterns)[:, cand], lam_prev),
                    axis=1)
                cand = cand[np.argsort(-score)[:max_screened]]
            start = np.union1d(support, cand)
        sol = cg._solve_from(prog, start)
        sols.append(sol)
        support = np.flatnonzero(_block_sizes(prog, sol.V, sol.W) > 0)
        lam_prev, a_prev = np.asarray(sol.dual, np.float64), float(a)
        out["obj"].append(sol.objective)
        out["gap"].append(sol.info["rel_gap"])
        out["nn"].append(int(support.size))
        out["ns"].append(int(start.size))
        out["t"].append(time.perf_counter() - t0)
    return RegularizationPath(alphas=alphas, alpha_max=amax,
                              objectives=np.array(out["obj"]), rel_gaps=np.array(out["gap"]),
                              n_neurons=np.array(out["nn"]), n_screened=np.array(out["ns"]),
                              times=np.array(out["t"]), solutions=sols,
                              patterns=program.patterns)

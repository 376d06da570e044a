"""ReLU (cone-constrained) solver: interior point, or gated support + column generation.

The program is (CVX) of docs/mathematics.rst §3.1 with the conventions of §10.2/§10.3 (sum-reduced,
``beta = alpha``). :class:`ReluFastSolver` picks a path:

* **Interior point** (default for the squared loss when every block coordinate is
  penalised: no hidden bias, or ``penalize_bias=True``): the structured primal-dual
  method of :mod:`._relu_ipm` on all patterns at once — Newton steps whose
  ``(2Pd) x (2Pd)`` system is reduced by the block Woodbury identity to one ``n x n``
  Cholesky factor per step, Mehrotra's predictor-corrector, about 40-60 steps — certified
  over every pattern of the program by the cone multipliers it carries (warm-started exact
  cone projections). Chosen by measurement over the alternatives below: on diabetes
  (n=442, d=11 with bias, scnn ``lam = 1e-3``, one BLAS thread) it certifies a relative
  gap below 1e-6 in 1.4 s at P=100, 3.3 s at P=200 and 12.7 s at P=500, where the
  active-set path below took 20 s at P=100 and 50 s at P=200, cvxpy + Clarabel 30 s at
  P=100 (to 3.6e-6) and did not finish within 60 s at P=200, and the augmented
  Lagrangian (:mod:`._relu_admm`) stood at a relative gap of 0.94 after 60 s at P=100.
  Its cost is dominated by the ``n x n`` product (``n^2 P d`` per step), so it is slower
  for large ``n`` (breast cancer n=569, d=31, P=500: about 50-65 s).
* **Active set** (``method="active_set"``, and the continuation when the interior point
  does not certify ``tol``; full-norm penalty): :func:`_active_set_relu` below.
* **Gated support + restricted Clarabel** (free hidden bias: the barrier problem is then
  unbounded, since the ``V`` and ``W`` blocks of an all-active pattern can grow along the
  bias at no cost): stages 1-3 below.

Gated support + restricted Clarabel, in three stages:

1. **Support estimate.** The gated relaxation (docs/mathematics.rst §3.4) over all patterns by
FISTA +
   active-set Newton (:func:`~convexrelu.solvers._fista.solve_gated_fista`), loosely
   (relative gap ``gated_tol``): the patterns whose gated block is nonzero form the
   initial working set (both signs: ``v_i`` and ``w_i`` of each kept pattern).
2. **Exact restricted solve.** The ReLU program over the working set only, handed to
   Clarabel by :class:`~convexrelu.solvers._cg_inner.CompressedReluSolver` (squared loss
   written as a quadratic in ``theta = (c0, v_i - w_i)`` when that is smaller than ``n``;
   facet-row reduction only for ``d_aug <= 3``: in higher dimension nearly every row is
   a facet and the convex hulls cost more than they save — measured on diabetes with
   98 patterns, ``d_aug = 11``: 100 s with the hulls, 8.4 s without).
3. **Certificate over all patterns.** ``lambda = -grad l(y_hat)`` (output bias re-fitted
   when free, docs/mathematics.rst §8.3) and ``M(lambda)`` over **every** pattern of the program,
   exact
   per pattern (:func:`convexrelu.certificates.dual_constraint`, certified upper bounds
   from explicit multipliers). The gap ``P(S) - max_k D(s_k lambda_k)`` with
   ``s_k <= beta / M(lambda_k)`` is a valid bound by weak duality. Stop when it is
   ``<= tol * P(S)``; otherwise add the most violating pattern of each of ``n_add``
   chunks of the patterns outside the working set and go back to 2. The stopping rule is
   the duality gap, never a gradient norm.

**Active-set path (no conic solver).** When every coordinate of a block is penalised
(``penalize_bias=True`` or no hidden bias) the Clarabel stage is replaced by
:func:`_active_set_relu`: start from zero; certify over all patterns by an exact
Lawson-Hanson cone projection per block (:func:`_cone_certificate`; the bound of each
block is ``||c_j + G_j^T mu_j||`` with explicit ``mu_j >= 0``, so valid whatever the
iteration's accuracy); the ``n_add`` most violating blocks enter along their projection
with the projection's face as binding rows; then
:func:`~convexrelu.solvers._cg_inner.polish_support` with ``drop_rows=True`` (active-set
Newton: binding rows as equalities, ratio test adds rows, rows with a negative multiplier
are released, blocks reaching zero leave). Measured on diabetes P=100 (penalised bias,
scnn lam 1e-3): 13 rounds, relative gap 1.4e-8, objective 1.6e-11 relative below cvxpy's,
but ~30 s (polish ~60%: about 2000 single-row face changes, one Newton step each;
certificate ~30%). The free-bias case keeps the Clarabel path below.

Only the squared loss with one output is handled natively; other losses (logistic,
hinge) fall back to :class:`~convexrelu.solvers.CvxpySolver` on the full program (a
``UserWarning`` says so), since the compressed Clarabel inner solve is squared-loss only.

Measurements of the Clarabel and active-set paths (diabetes, penalised bias, P=100,
before the interior point existed): the gated support holds almost every pattern (98 of
100), so the restricted program is nearly the full one; the restricted Clarabel solve
with all ``n = 442`` rows per block took ~8 s and ended inaccurate, the facet-row version
spent ~100 s on 10-D convex hulls; row generation took 252 s.
"""

from __future__ import annotations

import time
from typing import Optional
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..losses import SquaredLoss
from ..program import ConvexProgram, ConvexSolution
from ._base import BaseSolver
from ._cg_inner import CompressedReluSolver
from ._dual_gap import best_dual_scale, dual_point
from ._relu_admm import repair_feasibility

__all__ = ["ReluFastSolver"]

_VIOLATION_RTOL = 1e-9  # M_i > beta (1 + this) counts as a violating pattern


def _certificate_text(exact: bool) -> str:
    return ("duality gap over all patterns of the arrangement" if exact else
            "duality gap over the given (sampled) patterns only: not a proof of global "
            "optimality")


def _subset(patterns, idx: np.ndarray):
    """The patterns ``idx`` (sorted indices) of a pattern set, as an ActivationPatterns."""
    from ..arrangements import ActivationPatterns

    return ActivationPatterns(patterns.packed[idx], patterns.gates[:, idx],
                              n_samples=patterns.n_samples, n_features=patterns.n_features,
                              bias=patterns.bias, exact=False, min_margin=patterns.min_margin,
                              fingerprint=patterns.fingerprint, method=patterns.method)


def _certify(program: ConvexProgram, lam: np.ndarray, inside: np.ndarray, n_chunks: int):
    """``M(lambda)`` over all patterns and candidate violators outside ``inside``.

    Returns ``(M, cands)`` with ``cands`` a list of ``(M_j, j)`` (one maximiser per chunk
    of the patterns outside the working set).
    """
    from ..certificates import dual_constraint

    P = program.n_patterns
    pen = program.penalize_bias or not program.bias
    groups = []
    if inside.size:
        groups.append((inside, False))
    out = np.setdiff1d(np.arange(P), inside)
    if out.size:
        for part in np.array_split(out, min(max(1, int(n_chunks)), out.size)):
            groups.append((part, True))
    M, cands = 0.0, []
    for idx, candidate in groups:
        dv = dual_constraint(_subset(program.patterns, idx), program.X, lam,
                             penalize_bias=pen)
        M = max(M, float(dv.value))
        if candidate and dv.pattern_index >= 0:
            cands.append((float(dv.value), int(idx[dv.pattern_index])))
    return M, cands


class ReluFastSolver(BaseSolver):
    """``"relu"`` solver, certified over all the program's patterns to a relative duality
    gap ``<= tol``: a structured interior-point method (squared loss, penalised blocks;
    ``method``), else gated support -> exact restricted solve -> certify over all
    patterns -> add violating patterns (column generation).

    Parameters
    ----------
    tol : float, default=1e-6
        Relative duality-gap tolerance, certified over all the program's patterns.
    max_iter : int, default=50
        Rounds of (restricted solve, certificate).
    n_add : int, default=20
        Violating patterns added per round (one per chunk of the patterns outside the
        working set).
    gated_tol : float, default=1e-3
        Relative gap of the gated FISTA stage (it only selects patterns).
    gated_max_iter : int, default=2000
    inner_tol : float, default=1e-10
        Clarabel tolerances of the restricted solves (the certified gap is limited by the
        accuracy of ``lambda`` derived from them: 1e-10 stalled at a relative gap 1.1e-5 on
        a small near-interpolating test problem, 1e-12 at 1.3e-6; but 1e-12 made Clarabel stop
        short on diabetes P=100, so 1e-10 is the default).
    threshold : float, default=1e-6
        Gated blocks above ``threshold * max`` enter the initial working set.
    verbose : int, default=0
    time_limit : float, optional
        Seconds after which no new round starts (benchmarks); the solution then carries
        the certified gap of its last round and a ``ConvergenceWarning``.
    method : {"auto", "barrier", "active_set"}, default="auto"
        ``"barrier"``: the structured interior-point method of :mod:`._relu_ipm`
        (squared loss, every block coordinate penalised — with a free hidden bias the
        barrier problem is unbounded — and every pattern's gate strictly inside its cone).
        ``"active_set"``: the column generation below. ``"auto"``: the barrier method,
        continued by the active-set path (warm-started at the barrier's point, full-norm
        penalty) or the Clarabel path when it does not certify ``tol``. The barrier method
        does not use ``warm_start``.
    max_newton : int, default=200
        Newton steps of the barrier method.

    Notes
    -----
    ``solution.info``: ``rel_gap``, ``history`` (``(round, seconds, primal, gap,
    working-set size)``), ``support`` (patterns with a nonzero block), ``gated_time``.
    A certificate over a sampled pattern set is not a proof of global optimality over
    the full arrangement (``info["certificate"]`` says which).
    """

    _loss_required_attr = ("value", "gradient", "dual_objective", "max_dual_scale")
    _formulations = ("relu",)

    def __init__(self, tol: float = 1e-6, max_iter: int = 50, n_add: int = 20,
                 gated_tol: float = 1e-3, gated_max_iter: int = 2000,
                 inner_tol: float = 1e-10, threshold: float = 1e-6, verbose: int = 0,
                 time_limit: Optional[float] = None, method: str = "auto",
                 max_newton: int = 200) -> None:
        self.tol = tol
        self.max_iter = max_iter
        self.n_add = n_add
        self.gated_tol = gated_tol
        self.gated_max_iter = gated_max_iter
        self.inner_tol = inner_tol
        self.threshold = threshold
        self.verbose = verbose
        self.time_limit = time_limit
        self.method = method
        self.max_newton = max_newton

    # ------------------------------------------------------------------ helpers
    def _check(self):
        if not (isinstance(self.tol, (int, float)) and 0 < self.tol < 1):
            raise ValueError(f"tol must be a float in (0, 1); got {self.tol!r}.")
        if self.method not in ("auto", "barrier", "active_set"):
            raise ValueError(f"method must be 'auto', 'barrier' or 'active_set'; got "
                             f"{self.method!r}.")
        for name in ("max_iter", "n_add", "gated_max_iter", "max_newton"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}.")
        tl = self.time_limit
        if tl is not None and (isinstance(tl, bool) or not isinstance(tl, (int, float))
                               or not tl > 0):
            raise ValueError(f"time_limit must be None or a positive number of seconds; "
                             f"got {tl!r}.")

    def _initial_set(self, program: ConvexProgram, warm_start) -> tuple:
        from ._fista import solve_gated_fista

        P, da = program.n_patterns, program.d_aug
        if warm_start is not None:
            V0, W0 = np.asarray(warm_start.V), np.asarray(warm_start.W)
            if V0.shape == (P, da):
                nrm = np.maximum(np.linalg.norm(V0, axis=1), np.linalg.norm(W0, axis=1))
                return np.flatnonzero(nrm > 0), 0.0
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # a free hidden bias makes the gated problem degenerate: penalise it here
            g = solve_gated_fista(program.loss, program.X_aug, program.masks, program.y,
                                  program.alpha, output_bias=program.fit_output_bias,
                                  tol=self.gated_tol, max_iter=self.gated_max_iter)
        nrm = np.linalg.norm(g.B, axis=1)
        top = float(nrm.max(initial=0.0))
        idx = np.flatnonzero(nrm > self.threshold * top) if top > 0 else np.zeros(0, int)
        return idx, time.perf_counter() - t

    # ------------------------------------------------------------------ the solve
    def _solve(self, program: ConvexProgram, warm_start=None) -> ConvexSolution:
        self._check()
        if program.n_outputs != 1:
            raise ValueError(f"ReluFastSolver handles one output; the program has "
                             f"{program.n_outputs}. Fit one program per output.")
        if not isinstance(program.loss, SquaredLoss):
            return self._fallback(program, warm_start)
        t0 = time.perf_counter()
        full_norm = program.n_penalized == program.d_aug
        if self.method == "barrier" and not full_norm:
            raise ValueError(
                "method='barrier' needs every block coordinate penalised: with a free hidden "
                "bias the barrier problem is unbounded (the V and W blocks of an all-active "
                "pattern can grow along the bias at no cost). Use method='auto' or "
                "'active_set', or penalize_bias=True.")
        if self.method in ("auto", "barrier") and full_norm:
            sol = self._solve_barrier(program, t0)
            out_of_time = (self.time_limit is not None
                           and time.perf_counter() - t0 >= self.time_limit)
            if sol is not None and (sol.status == "optimal" or self.method == "barrier"
                                    or out_of_time):
                if sol.status != "optimal":
                    warnings.warn(
                        f"ReluFastSolver (barrier) did not reach the relative duality gap "
                        f"tol={self.tol:g} in max_newton={self.max_newton} Newton steps / "
                        f"time_limit={self.time_limit} s (relative gap "
                        f"{sol.info['rel_gap']:.3g}). Increase max_newton or time_limit"
                        + (", or use method='auto' (active-set continuation)."
                           if self.method == "barrier" else "."),
                        ConvergenceWarning, stacklevel=3)
                return sol
            if sol is not None:
                warm_start = sol  # the active-set path continues from the barrier's point
        loss, y, beta = program.loss, program.y, program.alpha
        n, P, da = program.n_samples, program.n_patterns, program.d_aug
        free_bias = program.bias and not program.penalize_bias
        ob = program.fit_output_bias or free_bias
        if program.n_penalized == da:
            return self._solve_active_set(program, warm_start, t0)
        inner = CompressedReluSolver(tol=self.inner_tol, reduce_rows=da <= 3)
        idx, gated_time = self._initial_set(program, warm_start)
        V = np.zeros((P, da))
        W = np.zeros((P, da))
        c0 = 0.0
        z = np.zeros(n)
        best_dual, history, n_inner = -np.inf, [], 0
        converged = stalled = False
        rnd = 0
        for rnd in range(1, int(self.max_iter) + 1):
            if idx.size:
                sub = program.restrict(idx)
                with warnings.catch_warnings():
                    # the restricted solve is judged by the certificate below
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    sol = inner.solve(sub)
                n_inner += int(sol.n_iter)
                signs = np.hstack([sub.masks, sub.masks])
                B = np.vstack([sol.V, sol.W])
                # interior-point noise: drop blocks below 1e-9 of the largest before the
                # gate-direction repair (which would otherwise inflate them)
                nb = np.linalg.norm(B, axis=1)
                B[nb <= 1e-9 * max(float(nb.max(initial=0.0)), 1e-300)] = 0.0
                B, _ = repair_feasibility(sub.X_aug, signs, B,
                                          np.hstack([sub.patterns.gates] * 2))
                V[:] = 0.0
                W[:] = 0.0
                V[idx], W[idx] = B[:idx.size], B[idx.size:]
                c0 = float(np.ravel(sol.output_bias)[0]) if program.fit_output_bias else 0.0
            z = program.predict(V, W, c0)
            primal = float(loss.value(z, y)) + beta * program.penalty(V, W)
            lam, _ = dual_point(loss, z, y, output_bias=ob)
            M, cands = _certify(program, lam, idx, self.n_add)
            _, dual = best_dual_scale(loss, lam, y, np.inf if M == 0 else beta / M)
            best_dual = max(best_dual, dual)
            gap = primal - best_dual
            history.append((rnd, time.perf_counter() - t0, primal, gap, int(idx.size)))
            if self.verbose:
                print(f"round {rnd}: {idx.size} patterns, primal {primal:.12e}, "
                      f"M/alpha {M / max(beta, 1e-300):.10f}, rel. gap "
                      f"{gap / max(abs(primal), 1e-300):.3e}")
            if gap <= self.tol * abs(primal):
                converged = True
                break
            if self.time_limit is not None and time.perf_counter() - t0 > self.time_limit:
                break
            new = [j for v, j in sorted(cands, key=lambda c: -c[0])
                   if v > beta * (1 + _VIOLATION_RTOL)]
            if not new:
                stalled = True
                break
            if rnd < self.max_iter:
                idx = np.union1d(idx, np.asarray(new, int))
        sol = self._solution(program, V, W, c0, primal, gap, lam, converged, max(1, rnd), t0,
                             history=history, rounds=rnd, inner_iterations=n_inner,
                             working_set=idx.copy(), gated_time=gated_time)
        rel = sol.info["rel_gap"]
        if not converged and stalled:
            warnings.warn(
                f"ReluFastSolver stopped at a certified relative gap {rel:.3g} > "
                f"tol={self.tol:g}: no pattern violates the dual constraint beyond rounding, "
                "so the accuracy of the restricted Clarabel solve limits the gap. Lower "
                "inner_tol or loosen tol.", ConvergenceWarning, stacklevel=3)
        elif not converged:
            self._warn_rounds(rel, stacklevel=4)
        return sol

    def _solve_barrier(self, program, t0):
        """The structured interior-point method (:mod:`._relu_ipm`); None if it cannot start."""
        from ._relu_ipm import solve_relu_barrier

        P = program.n_patterns
        r = solve_relu_barrier(program.X_aug, program.masks, program.y, program.alpha,
                               gates=program.patterns.gates, n_penalized=program.n_penalized,
                               output_bias=program.fit_output_bias,
                               c=float(program.loss._c(program.y)), tol=self.tol,
                               max_newton=self.max_newton, time_limit=self.time_limit,
                               verbose=self.verbose)
        if r is None:
            return None
        V, W = r.B[:P].copy(), r.B[P:].copy()
        return self._solution(program, V, W, r.c0, r.primal, r.gap, r.lam, r.converged,
                              r.n_newton, t0, support_rtol=1e-9, history=r.history,
                              method="barrier", newton_steps=r.n_newton)

    def _solve_active_set(self, program, warm_start, t0):
        """Column generation + active-set Newton (no conic solver); full-norm penalty."""
        P, da = program.n_patterns, program.d_aug
        V0 = W0 = None
        if warm_start is not None and np.shape(warm_start.V) == (P, da):
            B0, _ = repair_feasibility(program.X_aug, np.hstack([program.masks] * 2),
                                       np.vstack([warm_start.V, warm_start.W]),
                                       np.hstack([program.patterns.gates] * 2))
            V0, W0 = B0[:P], B0[P:]
        V, W, c0, primal, gap, history, converged, rnd = _active_set_relu(
            program, tol=self.tol, max_rounds=self.max_iter, n_add=self.n_add,
            verbose=self.verbose, V0=V0, W0=W0, time_limit=self.time_limit)
        z = program.predict(V, W, c0)
        lam, _ = dual_point(program.loss, z, program.y, output_bias=program.fit_output_bias)
        sol = self._solution(program, V, W, c0, primal, gap, lam, converged, max(1, rnd), t0,
                             history=history, rounds=rnd, method="active_set")
        rel = sol.info["rel_gap"]
        if not converged:
            self._warn_rounds(rel, stacklevel=5)
        return sol

    def _solution(self, program, V, W, c0, primal, gap, lam, converged, n_iter, t0, *,
                  support_rtol=0.0, **info):
        """The :class:`ConvexSolution` of any path (sum-form ``primal``/``gap``)."""
        n, k = program.n_samples, program.n_penalized
        size = np.maximum(np.linalg.norm(V[:, :k], axis=1), np.linalg.norm(W[:, :k], axis=1))
        exact = bool(program.patterns.exact)
        return ConvexSolution(
            V=V, W=W, output_bias=c0, objective=primal / n, dual=np.asarray(lam, float),
            status="optimal" if converged else "max_iter_reached", n_iter=n_iter,
            solve_time=time.perf_counter() - t0, gap=gap / n, formulation="relu",
            info={"rel_gap": gap / max(abs(primal), np.finfo(float).tiny),
                  "support": np.flatnonzero(
                      size > support_rtol * max(float(size.max(initial=0.0)), 1e-300)
                      if support_rtol > 0 else size > 0),
                  "tol": self.tol, "patterns_exact": exact,
                  "certificate": _certificate_text(exact), **info})

    def _warn_rounds(self, rel, stacklevel):
        warnings.warn(
            f"ReluFastSolver did not reach the relative duality gap tol={self.tol:g} in "
            f"max_iter={self.max_iter} rounds / time_limit={self.time_limit} s (relative "
            f"gap {rel:.3g}). Increase max_iter, time_limit or n_add (patterns added "
            "per round), or loosen tol.", ConvergenceWarning, stacklevel=stacklevel)

    def _fallback(self, program, warm_start):
        from .cvxpy_solver import CvxpySolver

        warnings.warn(f"ReluFastSolver handles the squared loss natively; "
                      f"{type(program.loss).__name__} is solved by CvxpySolver on the full "
                      "program instead.", UserWarning, stacklevel=3)
        return CvxpySolver(tol=min(self.inner_tol, 1e-8)).solve(program, warm_start)


# --------------------------------------------------------------------------- active set
def _project_cone(Gn: np.ndarray, c: np.ndarray, max_iter: int = 200,
                  init: Optional[np.ndarray] = None):
    """``min_{mu >= 0} ||c + Gn^T mu||`` by Lawson-Hanson (``Gn``: unit rows, ``n x d``).

    ``u = c + Gn^T mu`` is the projection of ``c`` onto ``K = {u : Gn u >= 0}`` (Moreau,
    docs/mathematics.rst §4.2), so ``||u|| = max_{u' in K, ||u'|| <= 1} c^T u'``. Whatever the
    accuracy of
    the iteration, ``||c + Gn^T mu||`` with the returned ``mu >= 0`` is a valid upper bound
    on that value (it is recomputed from the clipped multipliers). Returns
    ``(bound, u, rows)`` with ``rows`` the rows of positive multiplier (the face of ``u``).
    ``init``: rows to start from (a guess of the face, e.g. from interior-point
    multipliers); the iteration then starts with them passive at ``mu = 0``.
    """
    scale = float(np.linalg.norm(c))
    if scale == 0.0:
        return 0.0, c.copy(), np.zeros(0, int)
    Pset = np.zeros(0, int) if init is None else np.unique(np.asarray(init, int))
    mu = np.zeros(0)
    while Pset.size:  # warm start: shrink the guessed face until its multipliers are > 0
        Gp = Gn[Pset]
        s = np.linalg.lstsq(Gp.T, -c, rcond=None)[0]
        if np.all(s > 0):
            mu = s
            break
        Pset = Pset[s > 0]
    u = c + Gn[Pset].T @ mu
    for _ in range(max_iter):
        w = Gn @ u
        w[Pset] = np.inf
        j = int(np.argmin(w))
        if w[j] >= -1e-13 * scale:
            break
        Pset = np.append(Pset, j)
        mu = np.append(mu, 0.0)
        for _inner in range(Pset.size + 1):
            Gp = Gn[Pset]
            try:
                s = -np.linalg.solve(Gp @ Gp.T, Gp @ c)
            except np.linalg.LinAlgError:
                s = np.linalg.lstsq(Gp.T, -c, rcond=None)[0]
            if np.all(s > 0):
                mu = s
                break
            neg = s <= 0
            den = mu[neg] - s[neg]
            alpha = float(np.min(np.where(den > 0, mu[neg] / np.where(den > 0, den, 1.0),
                                          0.0)))
            mu = mu + alpha * (s - mu)
            keep = mu > 1e-15 * scale
            if np.all(keep):  # rounding: drop the smallest to make progress
                keep[int(np.argmin(mu))] = False
            Pset, mu = Pset[keep], mu[keep]
            if Pset.size == 0:
                break
        u = c + Gn[Pset].T @ mu
    mu = np.maximum(mu, 0.0)
    u = c + Gn[Pset].T @ mu
    return float(np.linalg.norm(u)), u, Pset[mu > 0]


def _cone_certificate(Xa: np.ndarray, masks: np.ndarray, lam: np.ndarray, beta: float,
                      skip: Optional[np.ndarray] = None):
    """Upper bounds on ``M_j`` for every block ``j`` of ``[V; W]`` (full-norm penalty).

    Blocks whose cheap bound ``||c_j||`` exceeds ``beta`` are refined by the exact cone
    projection (:func:`_project_cone`); the bound of every block is then the norm of
    ``c_j + G_j^T mu_j`` for an explicit ``mu_j >= 0`` (or ``||c_j||``, ``mu = 0``), so
    ``max_j`` of the result is a certified upper bound on ``M(lambda)`` over the pattern
    set (docs/mathematics.rst §4.2). Returns ``(bounds, directions, rows)`` (``directions[j]`` the
    projection, ``rows[j]`` its face, for the refined blocks).
    """
    P = masks.shape[1]
    C = (masks * lam[:, None]).T @ Xa  # (P, d_aug): c_i = Xa^T D_i lam
    C2 = np.vstack([C, -C])
    bounds = np.linalg.norm(C2, axis=1)
    dirs, rows = {}, {}
    rown = np.linalg.norm(Xa, axis=1)
    nz = rown > 0
    Xn = Xa[nz] / rown[nz, None]
    mk = masks[nz]
    for j in np.flatnonzero(bounds > beta):
        i = j % P
        Gn = np.where(mk[:, i], 1.0, -1.0)[:, None] * Xn
        val, u, rr = _project_cone(Gn, C2[j])
        bounds[j] = min(bounds[j], val)
        dirs[int(j)] = u
        rows[int(j)] = np.flatnonzero(nz)[rr]
    return bounds, dirs, rows


def _active_set_relu(program: ConvexProgram, *, tol: float, max_rounds: int, n_add: int,
                     verbose: int = 0, V0=None, W0=None, time_limit=None):
    """Column generation + active-set Newton for the ReLU program (squared loss, full norm).

    Returns ``(V, W, c0, primal, gap, history, converged, rounds)`` (sum form).
    """
    from ._cg_inner import polish_support

    t0 = time.perf_counter()
    loss, y, beta = program.loss, np.asarray(program.y, float).ravel(), float(program.alpha)
    Xa, masks = program.X_aug, np.asarray(program.masks, bool)
    n, P, da = program.n_samples, program.n_patterns, program.d_aug
    ob = bool(program.fit_output_bias)
    V = np.zeros((P, da)) if V0 is None else np.array(V0, float)
    W = np.zeros((P, da)) if W0 is None else np.array(W0, float)
    c0 = float(np.mean(y)) if ob else 0.0
    Dx = masks[:, :, None] * Xa[:, None, :]  # (n, P, d_aug)
    history, best_dual, converged = [], -np.inf, False
    primal = gap = np.inf
    rnd = 0
    for rnd in range(1, int(max_rounds) + 1):
        z = program.predict(V, W, c0)
        primal = float(loss.value(z, y)) + beta * program.penalty(V, W)
        lam, _ = dual_point(loss, z, y, output_bias=ob)
        bounds, dirs, rows = _cone_certificate(Xa, masks, lam, beta)
        M = float(bounds.max(initial=0.0))
        _, dual = best_dual_scale(loss, lam, y, np.inf if M == 0 else beta / M)
        best_dual = max(best_dual, dual)
        gap = primal - best_dual
        nb = int(np.sum(np.linalg.norm(np.vstack([V, W]), axis=1) > 0))
        history.append((rnd, time.perf_counter() - t0, primal, gap, nb))
        if verbose:
            print(f"round {rnd}: {nb} blocks, primal {primal:.12e}, M/beta "
                  f"{M / beta:.10f}, rel. gap {gap / max(abs(primal), 1e-300):.3e}")
        if gap <= tol * abs(primal):
            converged = True
            break
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            break
        B = np.vstack([V, W])
        active = np.linalg.norm(B, axis=1) > 0
        viol = np.flatnonzero((bounds > beta * (1 + _VIOLATION_RTOL)) & ~active)
        viol = viol[np.argsort(-bounds[viol])][:n_add]
        seed = {}
        for j in viol:
            u = dirs[int(j)]
            nu = float(np.linalg.norm(u))
            s = 1.0 if j < P else -1.0
            col = s * (Dx[:, j % P, :] @ (u / nu))
            t = (bounds[j] - beta) / max(float(col @ col), 1e-300) / max(len(viol), 1)
            B[j] = t * u / nu
            seed[int(j)] = rows[int(j)]
        Vn, Wn = B[:P], B[P:]
        out = polish_support(program, Vn, Wn, c0, drop_rtol=1e-12, rows=seed,
                             drop_rows=True, max_newton=500, max_changes=5000)
        if out is not None:
            Vp, Wp, cp = out
            fp = program.objective(Vp, Wp, cp) * n
            fn = program.objective(Vn, Wn, c0) * n
            if program.max_violation(Vp, Wp) <= 1e-9 and fp <= fn:
                Vn, Wn, c0 = Vp, Wp, cp
        V, W = Vn, Wn
    return V, W, c0, primal, gap, history, converged, rnd

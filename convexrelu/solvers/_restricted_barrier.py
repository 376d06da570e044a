r"""A dense primal-dual interior point for the restricted ReLU program of the working-set loop.

The working-set loop (:mod:`._column_generation`) solves, round after round, the ReLU
program over ``k`` patterns (tens, at most a few hundred) of ``n`` samples:

.. math::

    \min_{c_0, v_i, w_i}\ \ell\Big(\sum_i D_iX_a(v_i - w_i) + c_0\mathbf 1;\ y\Big)
    + \beta\sum_i \rho(v_i) + \rho(w_i)
    \quad\text{s.t.}\quad (2D_i - I)X_av_i \ge 0,\ (2D_i - I)X_aw_i \ge 0,

for any loss with a curvature (squared, logistic, Huber). A generic conic solver sees a
dense ``n x k d_a`` coupling block and factors it without BLAS (cvxpy + Clarabel: 5.9 s
for 20 patterns of breast cancer, logistic loss). Here the structure is used instead:

* **Primal-dual path following** with Mehrotra's predictor-corrector on the cone rows
  ``s = (2D_i - I)X_a b >= 0`` and their multipliers ``z >= 0``; the iterates stay strictly
  inside every cone, so each ``b != 0`` there and the group norms are smooth (with a free
  hidden bias the blocks of an all-active pattern can sit at ``p = 0`` inside their cone:
  their norms are smoothed by ``sqrt(||p||^2 + f^2)`` with ``f`` below a tenth of the
  complementarity gap's share). A proximal term ``(mu / 2)||x||^2``, vanishing with the
  barrier parameter ``mu``, keeps the Newton matrix definite along the costless directions
  a free bias opens. Stops once ``s^T z <= tol`` times the objective (20-30 steps on the
  tests' problems). After a short step the centring parameter is raised (at least
  ``3 (1 - a)^2`` after a step ``a``, non-quadratic losses).
* **The linear block.** With a free hidden bias the all-active pattern's pair
  ``(v, w)`` is one linear block: ``v`` free (no cone rows), ``w = 0``
  (:func:`linear_blocks`), returned as the pair ``v = (p, c)``, ``w = (0, c - b)`` in its
  cones (:func:`linear_pairs`). As a pair its optimum is a segment (any anti-parallel split
  of ``p``), along which the iterates wandered with steps cut by the line search.
* **Open blocks.** A block whose cone rows are all active (the all-active pattern with a
  free hidden bias) has no row that bounds its bias, so no barrier holds its penalised
  part away from zero either: heading to zero it can sit far above the smoothing, where
  the smoothed norm is nearly linear along it and the Newton step overshoots through the
  kink. Where the line search cuts a step by more than 8x, the step of a Newton matrix
  that gives those norms a radial curvature of at least ``0.1 beta / r`` replaces it.
* **Rows**: each block starts from its ``32 d_a`` :func:`~._cg_inner.margin_rows` (every
  row where there are fewer); while the
  solution violates any other row, the violated rows and each block's nearest rows under
  its solution are added and the solve runs again (three times at most, then over all
  ``n`` rows, whose Hessians cost ``O(n d_a^2)`` per block), so the solution satisfies
  every row.
* **The Newton matrix.** The loss couples the blocks only through ``u_i = v_i - w_i``:
  with ``Q = \bar A^T \operatorname{diag}(\ell'') \bar A`` (``\bar A = [1, D_1X_a, \dots,
  D_kX_a]``; formed once per solve for a quadratic loss, every fifth step otherwise
  until the gap is below ``1e-3`` relative)
  and the block Hessians ``H_v``,
  ``H_w`` of the norms and the cone rows, the matrix over ``(c_0, V, W)`` is
  ``E^T Q E + \operatorname{blockdiag}(H_v, H_w)``. Eliminating ``v + w`` leaves a
  system of half the size, ``Q`` plus the block-diagonal parallel sums
  ``(H_v^{-1} + H_w^{-1})^{-1}`` (:func:`reduced_newton_solver`: 8x fewer flops in the
  factor). The block Hessians reach ``10^{12}`` and more along the path, and this reduced
  solve alone lost digits (residuals stalled at ``10^{-6}`` relative on breast cancer, wine
  and digits), so it preconditions conjugate gradients on the exact matrix; a step where
  they do not get within ``10^{-5}`` relative is solved by one diagonally scaled LAPACK
  Cholesky factor of the whole matrix (``1 + 2 k d_a`` rows), and so is the rest of the
  solve after three such steps. Measured on a 17-pattern digits program (one BLAS thread,
  36 Newton steps, the same objective to 10 digits): 9.9 s with the whole factor, 6.1-7.3 s
  with the reduced one.
* **Fewer samples than rows.** Where ``n`` is small against ``k d_a`` (by a flop count),
  ``Q`` is never formed (:class:`LowRankCurvature`): the reduced system
  ``U^T U + P`` (``U = diag(\sqrt{\ell''})\bar A``) is solved through the ``n x n``
  matrix ``I + Y Y^T``, ``Y = U \operatorname{blockdiag}(L_i^{-T})``, ``P_i = L_iL_i^T``
  (Woodbury), the output bias by its Schur complement, with the exact curvature at every
  step. Measured on a 56-pattern program of breast cancer (569 samples, 1,736 reduced
  rows; one BLAS thread, the same objective to 2e-11): 17.1 s in 80 steps with the
  lagged, formed ``Q``; 10.5 s in 52 steps so.
* **Many more samples than rows** (``n >= 32 (1 + k d_a)``, a non-quadratic loss): forming
  ``Q`` costs ``n (1 + k d_a)^2`` flops (57 % of a default ``make_classification(100000,
  20)`` fit, py-spy). Each step forms instead a sketch of ``Q`` from about ``4 (1 + k d_a)`` rows,
  drawn with probabilities mixing uniform ones and ones proportional to ``\ell''_j
  ||\bar a_j||^2`` and weighted by their inverses (an unbiased estimate of ``Q``;
  :class:`SampledCurvature`). While the gap is above ``1e-3`` relative the sketch stands
  for ``Q`` in the Newton matrix (as the lagged ``Q`` did: the gradient is exact); below
  it the reduced factor of the sketch preconditions conjugate gradients on the exact
  matrix, whose products with ``Q`` go through ``X_a`` and the masks (``O(n k d_a)``), so
  the last steps are exact Newton steps.
* **Late on the path** the block Hessians ``H_v``, ``H_w`` alone reach condition numbers
  of ``10^{16}`` (a zero block: every row active; an active block: its radial direction
  held by ``rho`` alone), where their own factors fail. The reduced solve therefore works
  in the coordinates ``s = v + w``, ``u = v - w`` and factors only ``H_v + H_w`` (no
  worse conditioned than the better of the two); the parallel sums, positive in exact
  arithmetic, lose their smallest eigenvalues to rounding there and are shifted by
  ``1e-14`` of their largest diagonal entry in the Woodbury factor (a preconditioner: the
  conjugate gradients run on the exact matrix); where the Woodbury factor fails all the
  same, ``Q`` is formed. Measured on breast cancer (P=500, logistic, ``alpha=1e-3``,
  seven restricted programs of 20-67 patterns, one BLAS thread, the same objective to
  1e-14): 11-15 of each program's 52-55 steps had factored the whole matrix (``1 + 2 k
  d_a`` = 4,000 rows, 0.75 s each) and the working-set solve took 85-90 s; with no
  factor of ``H_v``, ``H_w`` 44 s, with the shifted parallel sums too 31 s, no step
  factoring the whole matrix.
* **Resumed solves.** The working-set loop solves its logistic programs roughly (to a
  complementarity gap of ``1e-3``) while its certified gap is large, then the last one
  exactly, over the blocks the rough solve kept. A warm start from a solution moves every
  block a unit gate into its cone and starts again from ``mu = f / m`` (its first steps
  re-centre); that exact solve instead goes on from the rough solve's blocks and cone
  multipliers, at its ``mu`` (:meth:`RestrictedBarrierSolver._resumable`; the same data,
  every block over every row, each pattern among the rough solve's, every block left out
  below 2e-3 of the largest), and closes its gap to a tenth of ``tol``. Measured (digits,
  class 0 against the rest, P = 100, one BLAS thread): 35 Newton steps, 9.2 s -> 9 steps;
  breast cancer P = 500: 24 -> 13 steps; the same objectives to 1e-9. Started so
  with new patterns as well (at a tenth of their unit gates) it took more steps than the
  warm start, so only subsets resume, and a resumed solve not converged within 40 steps
  gives way to the warm start.

Used by the working-set loop's inner solver for non-quadratic losses
(:class:`._column_generation._AutoInner`). Its result is judged like every restricted
solve: by the loop's certificate over all patterns.

References
----------
S. Mehrotra, "On the implementation of a primal-dual interior point method", SIAM J.
Optim. 2(4), 1992. J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
Springer, 2006 (Chapter 19).
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from ..arrangements._patterns import cone_signs
from .._memory import _budget_bytes, check_memory
from .._newton import (_GRAM_CHUNK_ENTRIES, max_step, norm_derivatives, weighted_gram,
                       work_buffer)
from .._polish import repair_feasibility
from ..certificates._dual import PricingMultipliers, _prepare
from ..certificates._gap import duality_gap
from ..program import ConvexProgram, ConvexSolution, masked_predictions
from ._base import BaseSolver
from ._cg_inner import margin_rows

__all__ = ["RestrictedBarrierSolver"]

_SIGMA_MIN = 1e-3  # the merit's barrier weight of a non-quadratic loss, at least this times mu
# a non-quadratic loss's Q = A^T diag(l'') A (n (k d)^2 flops, 43 % of a
# make_classification(20000, 20) fit's time) is recomputed every _LAG steps while the
# relative gap is above _EXACT_Q_GAP, at every step below it (a lagged Q to the end left
# a certified gap of 1.7e-6 on a test problem); the gradient is always exact. Measured
# (one BLAS thread, the same objective to 8 digits): digits, 20 patterns, 100 steps in
# 27.7 s against 52 s with Q at every step; never recomputing Q stopped 0.1 % high
# Tried and dropped: Q formed at most every 10 steps, with conjugate gradients on the exact
# Hessian's products A^T (l'' * (A x)) preconditioned by the older Q's reduced factor (Q
# formed again where they did not converge within 1e-4): a 38-pattern program of
# make_classification(20000, 20) took 25.0-25.8 s instead of 27.8-30.2 s, but the whole fit
# of digits (class 8 against the rest) 71-81 s instead of 66-72 s, alternately (three of
# its programs needed 73-79 Newton steps instead of 67-71)
_LAG = 5
# from this many samples per Newton row (n >= _SKETCH_MIN (1 + k d_a)) a non-quadratic
# loss's Hessian is sketched from about _SKETCH_ROWS (1 + k d_a) rows at every step
# (SampledCurvature). Measured (one BLAS thread; make_classification(n, 20), P = 100
# sampled patterns, logistic, solver="relu", tol 1e-6; the scale benchmark's
# make_classification rows; the same objectives to 1e-9): n = 10^5 at 0.03 alpha_max
# 29.03 s against 73.23 s with the Hessian formed at every step (its restricted programs
# of 20-44 patterns, n / (1 + k d_a) = 108-238; 32.09 against 79.00 s in a run at a
# threshold of 16); n = 10^4, where only the first program (20 patterns, n / (1 + k d_a)
# = 24) had been sketched at a threshold of 16: 3.62-3.98 s against 3.56-3.65 s (hence
# 32: there it is not sketched); n = 20,000 at 0.003 alpha_max, programs of 20-85
# patterns, threshold 8 (every program with n / (1 + k d_a) from 11 on sketched): 57.5 s
# against 43.8 s. Rows per sketch (threshold 32): 2 or 4 (1 + k d_a) with no consistent
# winner, the paths' Newton steps varying with the draws (n = 10^5: 19.1 against 30.5 s
# at 0.03 alpha_max, 47.0 against 35.7 s at 0.01)
_SKETCH_MIN = 32
_SKETCH_ROWS = 4
_EXACT_Q_GAP = 1e-3
_PROX = 1.0        # the proximal term's weight, times mu
# the radial curvature of an open block's norm (its cone rows all active, the hidden bias
# free: the all-active pattern), at least this times beta / r in the safeguarded Newton
# matrix, whose step replaces one the line search cut by more than 8x. Measured (one BLAS
# thread) on a 51-pattern program of make_classification(20000, 20): its all-active
# block's penalised part, heading to zero, sat at 1e-6 with a smoothing floor of 1e-8,
# each Newton step moved it 1e-3 through the kink and the line search cut the steps to
# 1e-3..1e-5: 93 steps, 81.7 s (77 steps, 42.6 s with Q's rank-k update); with the
# safeguard 61 steps, 31.9 s, the objective 6e-9 (relative) higher and the restricted
# certificate 6e-9. The safeguarded matrix at every step: 53 steps, but where the block is
# active at the optimum (digits) its certificate stopped at 1e-7 (the slowed radial
# convergence); a radial curvature of 0.3 or 1: 52 and 51 steps, objectives 1e-6 and 1e-5
# higher; 0.01: 63 steps. Setting the block's penalised part to zero after the solve
# lowered the objective but moved the dual point (the certificate 2e-6)
_OPEN_RADIAL = 0.1
_PIN = 1e10  # a linear block's w = 0: its curvature, times v's largest diagonal entry
# after a step of length a < 1, Mehrotra's centring parameter of a non-quadratic loss is at
# least _RECENTRE (1 - a)^2 (a short step: the iterate is near the boundary, centre it; a
# quadratic loss takes its steps without the merit's line search, and with this a
# squared-loss test's iterates wandered for 200 steps instead of converging). Measured
# on the 51-pattern program above (one BLAS thread): 61 steps, 31.9 s without it, 39 steps,
# 16.4 s with it (1: 50 steps; 10: 50 steps); the default fit of make_classification(20000,
# 20), random_state=0: 353.7 s with neither this nor the radial safeguard, 356.5 s with
# this alone, 239.8 s with both (the same test accuracy, 0.85); digits, random_state 0 and
# 1: 111.0 and 117.4 s with neither, 117.9 and 122.4 s with both, 137.2 s and 137.2 s with
# this alone, 365.1 and 123.7 s with the safeguard alone
_RECENTRE = 3.0
_ROW_RTOL = 1e-9   # a row violated beyond this (relative) is added to its block's rows
_ROW_ROUNDS = 3    # solves with added rows before the solve over every row
# each block's first rows: its 32 d_a margin rows (all rows where there are fewer). Fewer
# rows made more solves violate other rows and solve again, and a solve over fewer rows was
# no faster per Newton step (the row Hessians cost k n d_a^2 at most, the loss's Q n (k d_a)^2).
# Measured (one BLAS thread): digits, class 8 against the rest, the whole fit 174 s with
# 4 d_a rows (every solve ran twice), 95 s with 16 d_a, 65 s with every row (32 d_a);
# make_classification(20000, 20), a 38-pattern program: 51 s with 4 d_a rows (two solves),
# 27 s with 32 d_a and 26 s with 100 d_a (one solve each), 50 s with all 15,000 rows (80 steps)
_ROWS_PER_DIM = 32


class RestrictedBarrierSolver(BaseSolver):
    """Primal-dual interior point for small restricted ReLU programs (one output, any loss
    with a curvature); see the module docstring.

    Parameters
    ----------
    tol : float, default=1e-10
        Complementarity gap ``s^T z`` at which the iteration stops, relative to the
        objective.
    max_iter : int, default=200
        Newton steps per pass over the rows.
    """

    _loss_required_attr = ("value", "gradient", "curvature")
    _formulations = ("relu",)
    _tol_is_gap = False  # tol is the complementarity gap, not the certified duality gap

    def __init__(self, tol: float = 1e-10, max_iter: int = 200) -> None:
        self.tol = tol
        self.max_iter = max_iter

    # the last solve's final primal-dual state, by pattern (:meth:`_resumable`)
    _state = None
    # the last solve's Gram A^T A of a quadratic loss, by pattern (_PrimalDual._gram_ones)
    _grams = None
    # set by a working-set loop: the refinements its pricing has made, which the
    # certificate counts as its own history (certificates._dual._compiled_after: its cone
    # projections run compiled once the loop's have)
    refined_before = 0

    def _keep_state(self, program, state, ok) -> None:
        """Keep the final primal-dual state of a converged solve whose blocks all kept
        every row (and no linear block): the next solve of a program over some of its
        patterns resumes from it (:meth:`_resumable`)."""
        self._state = None
        if ok and getattr(state, "zv", None) is not None and state._sgn is not None and \
                state.linear.size == 0 and \
                all(r.size == state.Xa.shape[0] for r in state.rows):
            keys = {r.tobytes(): i for i, r in enumerate(program.patterns.packed)}
            # each block's effect on the predictions (the working-set loop's measure)
            size = program.block_effects(state.V, state.W)
            self._state = dict(keys=keys, X=program.X_aug, y=program.y, alpha=program.alpha,
                               loss=program.loss, ob=program.fit_output_bias,
                               free=program.regularizer.free, tol=float(self.tol),
                               size=size, V=state.V.copy(), W=state.W.copy(),
                               c0=float(state.c0), zv=[z.copy() for z in state.zv],
                               zw=[z.copy() for z in state.zw])

    def _resumable(self, program, rows):
        """``(V, W, c0, zv, zw)`` of the kept state on ``program``'s patterns for the
        working-set loop's exact solve after a rough one, over the blocks that rough solve
        kept; else None. Only where the last solve stopped at a looser ``tol`` than this
        one's, on the same data (the same ``X_aug`` and ``y`` objects), loss, ``alpha``,
        output bias and penalty, every block over every row, every pattern of
        ``program`` among the last solve's and every block left out below
        ``_RESUME_DROP_RTOL`` of the largest (by its effect on the predictions).

        The rough solve stopped at a complementarity gap of ``1e-3`` on the central path;
        its blocks and multipliers, less the dropped blocks, are a start near that path
        from which the barrier goes on at the same ``mu``: a warm start from the solution
        alone moves every block a unit gate into its cone and starts again from
        ``mu = f / m``, its first steps re-centring. (A state at the new ``tol`` already,
        or with a large block left out, would stop after a step on its complementarity
        gap alone, far from the optimum.)"""
        st = self._state
        if st is None or st["X"] is not program.X_aug or st["y"] is not program.y or \
                st["alpha"] != program.alpha or st["loss"] is not program.loss or \
                st["ob"] != program.fit_output_bias or \
                st["free"] != program.regularizer.free or not st["tol"] > self.tol:
            return None
        n = program.n_samples
        if any(np.size(r) != n for r in rows):
            return None
        idx = [st["keys"].get(r.tobytes()) for r in program.patterns.packed]
        if any(i is None for i in idx):
            return None
        left = np.ones(st["size"].size, bool)
        left[idx] = False
        if np.any(st["size"][left] > _RESUME_DROP_RTOL * float(st["size"].max(initial=0.0))):
            return None
        return (st["V"][idx], st["W"][idx], st["c0"], [st["zv"][i] for i in idx],
                [st["zw"][i] for i in idx])

    def _certificate_tol(self) -> float:
        # the certificate (the residual's dual point, BaseSolver) is looser than the
        # complementarity gap, and steps past tol do not tighten it: on a test's logistic
        # problem over all its rows it went 7e-9, 1e-8, 2e-8, 4e-8, 4e-8, 7e-8, 2e-7 at
        # s^T z = 1e-7 ... 1e-13 times the objective, while the objective settled to 1e-14
        return max(100.0 * self.tol, 1e-7)

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
        n = Xa.shape[0]
        k = program.n_patterns
        masks = np.asarray(program.masks, bool)
        gates = program.patterns.gates
        # first each block's margin rows; while the solution violates other rows, a cold
        # solve over the rows so far, the violated ones and each block's nearest rows under
        # its solution (moving the blocks back inside along their gates and resuming cost
        # more: on digits the objective rose from 332 to 444 after one such move); after
        # _ROW_ROUNDS such solves, every nonzero row. Measured (make_classification(20000,
        # 20), 14 patterns, one BLAS thread): the margin rows' solve took 2.6 s and the
        # solve over all 15,000 rows that followed it did not finish in 300 s
        nz = np.flatnonzero(np.any(Xa != 0, axis=1))
        m0 = max(_ROWS_PER_DIM * program.d_aug, 32)
        lin = set(linear_blocks(program).tolist())  # no cone rows (see linear_blocks)
        none = np.zeros(0, np.intp)
        norms = np.linalg.norm(Xa, axis=1)
        rows = [none if i in lin else margin_rows(Xa, masks[:, i], gates[:, i], n_rows=m0,
                                                  norms=norms)
                for i in range(k)]
        rn = np.maximum(norms, 1e-300)
        n_iter, ok = 0, False
        start = _warm_point(program, warm_start)
        resume = None if start is None else self._resumable(program, rows)
        work: dict = {}  # the Newton steps' buffers, for every round of rows
        if self._grams is None:
            self._grams = {}
        work["grams"] = self._grams
        # the whole Newton matrix as the reduced solve's fallback where it fits (always
        # where the loss's Hessian is formed: it then has no other)
        steps, whole = barrier_bytes(program)
        dense_ok = not low_rank_curvature(n, k * program.d_aug) or \
            steps + whole <= _budget_bytes()
        kd = k * program.d_aug
        for attempt in range(_ROW_ROUNDS + 2):
            # this pass's pieces must fit the budget (the loop admitted the program on its
            # first rows' charge, start_rows_bytes; the rounds add rows without a cap, the
            # last goes over every row): else MemoryBudgetError, the loop's next path
            st_, wh_ = barrier_bytes(program, rows=max((r.size for r in rows), default=0))
            check_memory(st_ + (0 if low_rank_curvature(n, kd) else wh_),
                         f"the restricted interior point over {attempt and 'more' or 'its'} "
                         "cone rows", "the working-set loop's other paths take the program")
            # each state holds its own cone rows' vectors (and, few samples, its dense
            # design): the last one goes first (two at once doubled the peak on large n)
            state = None
            state = _PrimalDual(program, rows, start, work, dense_ok,
                                resume if attempt == 0 else None)
            if state.z0 is not None:
                # resumed: it converges within a few steps or the warm start takes over
                it, ok = state.run(self.tol * _RESUME_TOL,
                                   min(self.max_iter, _RESUME_MAX_ITER))
                n_iter += it
                if not ok:
                    state = None
                    state = _PrimalDual(program, rows, start, work, dense_ok)
                    it, ok = state.run(self.tol, self.max_iter)
                    n_iter += it
            else:
                it, ok = state.run(self.tol, self.max_iter)
                n_iter += it
            self._keep_state(program, state, ok)
            state.V, state.W = linear_pairs(program, state.V, state.W, state.linear)
            if all(r.size == nz.size or i in lin for i, r in enumerate(rows)):
                break
            B = np.vstack([state.V, state.W])
            scale = max(float(np.max(np.linalg.norm(B, axis=1), initial=0.0)), 1e-300)
            m = max(2 * program.d_aug, 16)
            bad, near = violated_rows(Xa, masks, state.V, state.W, rn, nz,
                                      _ROW_RTOL * scale, m, skip=sorted(lin))
            if not any(b.size for b in bad):
                break
            if attempt >= _ROW_ROUNDS:  # every row (its pieces checked at the loop's top)
                rows = [none if i in lin else nz for i in range(k)]
                continue
            for i in range(k):
                if bad[i].size:
                    rows[i] = np.union1d(rows[i], np.union1d(bad[i], near[i]))
        sol = interior_solution(
            program, state.V, state.W, state.c0, ok, n_iter, t0,
            {"rows_kept": int(sum(r.size for r in rows)), "rows_total": int(n * k)})
        if self._certify_solution:
            # the certificate (BaseSolver._finish keeps it), its projections started from
            # the cone multipliers of the last Newton step
            mult = _cone_multipliers(program, state)
            mult.refined_before = int(self.refined_before)
            dg = duality_gap(program, sol.V, sol.W, sol.output_bias, multipliers=mult)
            sol.gap = dg.gap / n
            sol.info.update(rel_gap=dg.rel_gap, dual_bound=dg.bound)
        return sol


#: rows per chunk of :func:`violated_rows`
_CHECK_CHUNK = 8192


def violated_rows(Xa, masks, V, W, rn, nz, tol, m, skip=()):
    """The cone rows each block pair violates, and its nearest rows, in one pass over the
    data by chunks of rows.

    The normalised slacks of row ``j`` under pattern ``i``'s blocks are ``a_ji x_j^T
    v_i / ||x_j||`` and ``a_ji x_j^T w_i / ||x_j||`` (``a = 2 D - 1``); row ``j`` is
    violated when the smaller is below ``-tol``. Returns ``(bad, near)``, lists over the
    ``k`` patterns of index arrays: ``bad[i]`` the violated rows (empty for the
    patterns of ``skip``), ``near[i]`` the ``m`` rows of ``nz`` (the data's nonzero
    rows) of smallest slack under ``v_i`` and the ``m`` under ``w_i`` (only where
    ``bad[i]`` is not empty). Each chunk's ``n x 2k`` slacks stay in cache and only
    each chunk's ``m`` smallest per block are kept (the whole ``n x k`` arrays and a
    sort of every column were 0.66 s of a 10^6-row check at ``k = 23``).
    """
    n, k = Xa.shape[0], V.shape[0]
    VW = np.vstack([V, W]).T  # (d_aug, 2k)
    live = np.zeros(n, bool)
    live[nz] = True
    bad_parts = [[] for _ in range(k)]
    cand_val, cand_idx = [], []  # per chunk: (m', 2k) smallest slacks and their rows
    for a in range(0, n, _CHECK_CHUNK):
        b = min(a + _CHECK_CHUNK, n)
        S = Xa[a:b] @ VW
        S *= (1.0 / rn[a:b])[:, None]
        sg = cone_signs(masks[a:b])
        S[:, :k] *= sg
        S[:, k:] *= sg
        low = np.minimum(S[:, :k], S[:, k:]) < -tol
        if len(skip):
            low[:, skip] = False
        for i in np.flatnonzero(low.any(axis=0)):
            bad_parts[i].append(a + np.flatnonzero(low[:, i]))
        S[~live[a:b]] = np.inf  # rows of zero norm are never near
        q = min(m, b - a)
        idx = np.argpartition(S, q - 1, axis=0)[:q] if q < b - a else \
            np.broadcast_to(np.arange(b - a)[:, None], S.shape)
        cand_val.append(np.take_along_axis(S, idx, axis=0))
        cand_idx.append(a + idx)
    bad = [np.concatenate(p) if p else np.zeros(0, np.intp) for p in bad_parts]
    near = [np.zeros(0, np.intp)] * k
    if any(b_.size for b_ in bad) and cand_val:
        cv, ci = np.vstack(cand_val), np.vstack(cand_idx)
        for i in range(k):
            if not bad[i].size:
                continue
            picks = []
            for col in (i, k + i):
                v = cv[:, col]
                q = min(m, int(np.count_nonzero(np.isfinite(v))))
                if q:
                    picks.append(ci[np.argpartition(v, q - 1)[:q], col])
            near[i] = np.unique(np.concatenate(picks)) if picks else np.zeros(0, np.intp)
    return bad, near


# a warm start's blocks start this many unit gates inside their cones (v and w alike).
# Measured on the seven restricted programs of breast cancer at P = 500, alpha = 1e-3
# (logistic, 16-46 patterns; each started from the previous one's solution, the first
# cold), Newton steps in all: 390 cold, 377 / 300 / 281 / 286 / 295 at 0.01 / 0.1 / 1 /
# 3 / 10, the objectives equal to 1e-11. At tol 1e-8, with the 26 programs of a default
# digits fit (d_a = 65): cold 349 + 679 steps, 0.1: 267 + 524, 0.3: 253 + 534, 1: 243 +
# 562, 3: 254 + 588; an offset relative to the largest warm block (0.01-0.1 of it) was no
# better there and worse on small problems (n = 120, 10 patterns, squared and logistic
# losses: 453 steps in all at 1, 661 at 0.03 of the largest block, 679 cold)
_WARM_OFFSET = 1.0
# Newton steps of a resumed solve (RestrictedBarrierSolver._resumable) before the warm
# start from its solution replaces it
_RESUME_MAX_ITER = 40
# ... and closes its complementarity gap to this fraction of tol: its few steps leave the
# residual's dual point rougher than a longer solve's (test programs of 120 samples: 5 of
# 8 resumed solves certified 1.5e-6 to 7.4e-6 at tol; at 0.1 tol 2 of 8, 1.5e-6 and
# 1.8e-6, as many as of the warm starts, in 0-3 more steps; at 0.01 tol none)
_RESUME_TOL = 0.1
# a resumed solve leaves out only blocks below this (relative to the largest, by their
# effect on the predictions): twice the working-set loop's _ROUGH_DROP_RTOL
_RESUME_DROP_RTOL = 2e-3


def _warm_point(program: ConvexProgram, warm_start):
    """``(V, W, c0)`` of a warm start of ``program``'s shape (its blocks feasible), or
    None."""
    if warm_start is None:
        return None
    V0 = np.asarray(warm_start.V, np.float64)
    W0 = np.asarray(warm_start.W, np.float64)
    shape = (program.n_patterns, program.d_aug)
    if V0.shape != shape or W0.shape != shape or not (np.all(np.isfinite(V0))
                                                      and np.all(np.isfinite(W0))):
        return None
    c0 = float(np.ravel(warm_start.output_bias)[0]) if program.fit_output_bias and \
        np.size(warm_start.output_bias) else 0.0
    return V0, W0, c0 if np.isfinite(c0) else 0.0


def _cone_multipliers(program: ConvexProgram, state) -> PricingMultipliers:
    """The interior point's cone multipliers as the certificate's warm start.

    At the restricted optimum ``c_i + G_i^T z_{v,i} = beta u_{v,i}`` and ``-c_i + G_i^T
    z_{w,i} = beta u_{w,i}`` (``c_i = X_aug^T D_i lambda``): each block's multipliers give
    the pattern's correction ``a = G_i^T z`` for the sign of its block (+1: ``v``, -1:
    ``w``, :func:`~convexrelu.certificates._dual.warm_bounds`: a bound with no solve)
    and its largest ones the face where the exact projection starts. Rows in the
    certificate's coordinates (:func:`~convexrelu.certificates._dual._prepare`)."""
    mult = PricingMultipliers()
    zs = (getattr(state, "zv", None), getattr(state, "zw", None))
    if zs[0] is None:
        return mult
    Xt, _, _ = _prepare(program.X_aug, program.regularizer.free)
    d = Xt.shape[1]
    for i, r in enumerate(state.rows):
        if r.size == 0:
            continue
        A = np.full((2, d), np.nan)
        faces = [None, None]
        G = np.where(state.masks[r, i], 1.0, -1.0)[:, None] * Xt[r]  # the block's cone rows
        rn = np.linalg.norm(G, axis=1)
        for srow in (0, 1):
            z = np.maximum(np.asarray(zs[srow][i], np.float64), 0.0)
            A[srow] = G.T @ z
            zn = z * rn  # multipliers of the unit rows
            top = np.argsort(-zn)[:d - 1]
            faces[srow] = r[top[zn[top] > 1e-8 * max(float(zn.max(initial=0.0)), 1e-300)]]
        mult.rows[i] = A
        mult.faces[i] = faces
    return mult


def linear_blocks(program: ConvexProgram) -> np.ndarray:
    """Patterns whose pair ``(v, w)`` is one linear block: all rows active and the hidden
    bias free.

    There every ``v - w = (p, b)`` is the difference of a pair in the cones with the
    penalty ``||p||`` (``v = (p, c)``, ``w = (0, c - b)``, ``c`` large enough), and no
    pair does better, since ``||p_v|| + ||p_w|| >= ||p_v - p_w||``. Kept as a pair, the
    optimum is a segment (any anti-parallel split of ``p``), along which the interior
    point wandered: on a 15-pattern digits program 35 of its 66 Newton steps were cut
    short by the line search while this block's residual stayed near 30.
    """
    if not program.regularizer.free:
        return np.zeros(0, np.intp)
    masks = np.asarray(program.masks, bool)
    lin = np.flatnonzero(masks.all(axis=0)).astype(np.intp)
    # no cone row at all would be left (the all-active pattern alone): the barrier's
    # parameter and its norms' smoothing scale with the rows, so the pair keeps them
    return lin if lin.size < masks.shape[1] else np.zeros(0, np.intp)


def linear_pairs(program: ConvexProgram, V, W, linear):
    """Each linear block's ``u = v - w = (p, b)`` as the pair ``v = (p, c)``,
    ``w = (0, c - b)`` with the least ``c`` that puts both in their cones (the same
    predictions, the penalty ``||p||``)."""
    if len(linear) == 0:
        return V, W
    V, W = V.copy(), W.copy()
    Xa = program.X_aug
    kp = program.regularizer.penalized_dim
    for i in linear:
        u = V[i] - W[i]
        c = max(float(np.max(-(Xa[:, :kp] @ u[:kp]), initial=0.0)), float(u[-1]))
        V[i, :kp], V[i, kp:] = u[:kp], c
        W[i, :kp], W[i, kp:] = 0.0, c - u[-1]
    return V, W


def interior_solution(program, V, W, c0, ok, n_iter, t0, info) -> ConvexSolution:
    """An interior point's blocks as a solution: moved into their cones (rounding), the
    free bias's costless common growth removed, the objective and dual point evaluated."""
    Xa, k = program.X_aug, program.n_patterns
    masks = np.asarray(program.masks, bool)
    gates = program.patterns.gates
    B, _ = repair_feasibility(Xa, np.hstack([masks, masks]), np.vstack([V, W]),
                              np.hstack([gates, gates]))
    V, W = B[:k], B[k:]
    if program.regularizer.free:
        V, W = _lower_common_bias(Xa, masks, V, W)
    z = program.predict(V, W, c0)
    return ConvexSolution(
        V=V, W=W, output_bias=c0, objective=program.objective(V, W, c0),
        dual=-program.loss.gradient(z, program.y),
        status="optimal" if ok else "optimal_inaccurate",
        n_iter=max(1, n_iter), solve_time=time.perf_counter() - t0, formulation="relu",
        info=info)


#: rows per chunk of the design's transposed products (:func:`factor_rmatvec`); with more
#: rows than this the factors' masks are bools in row-major order (:func:`factor_masks`)
_RMATVEC_CHUNK = 16384
#: rows per chunk of :func:`factor_matvec`'s fused products (both passes over a chunk
#: while it is in cache). Measured (one BLAS thread, random masks, ``d_a = 21``): 225,000
#: rows and 50 patterns 40.8 ms a product against 57.3 ms as two whole passes over
#: column-major float masks (41.9 / 42.5 ms with chunks of 2,048 / 1,024 rows); 75,000
#: rows and 27 patterns 9.1 against 10.4 ms
_MATVEC_CHUNK = 4096
#: entries of each chunk of :func:`_lower_common_bias`'s values (8 MB)
_LOWER_ENTRIES = 1 << 20


def _lower_common_bias(Xa, masks, V, W):
    """Move the free bias of both blocks of a pattern down together, as far as the active
    rows allow: the predictions and the penalty do not change (``v_i - w_i`` is kept),
    and the costless growth the interior allows is removed."""
    V, W = V.copy(), W.copy()
    k = V.shape[0]
    if k == 0:
        return V, W
    # every block's values on a chunk of rows in one product, the minimum over each
    # pattern's active rows (one pass over the data for all patterns; a pass per pattern
    # took 0.52-0.53 s a call on 10^6 x 21 data with 23 patterns, one BLAS thread, against
    # 0.33 s; np.where, not a reduction's where=, which is twice as slow)
    B = np.vstack([V, W]).T
    delta = np.full(k, np.inf)
    step = max(1, _LOWER_ENTRIES // (2 * k))
    for a in range(0, Xa.shape[0], step):
        vals = Xa[a:a + step] @ B
        act = masks[a:a + step]
        low = np.minimum(np.where(act, vals[:, :k], np.inf).min(axis=0, initial=np.inf),
                         np.where(act, vals[:, k:], np.inf).min(axis=0, initial=np.inf))
        np.minimum(delta, low, out=delta)
    move = np.isfinite(delta) & (delta > 0)
    V[move, -1] -= delta[move]
    W[move, -1] -= delta[move]
    return V, W


def newton_matrix(Q: np.ndarray, Hb: np.ndarray, ob: bool, rho: float) -> np.ndarray:
    """``E^T Q E + blockdiag(Hb)`` over ``(c0, V, W)`` (``c0`` only with an output bias,
    ``+ rho`` on it), ``E`` mapping it to ``(c0, V - W)``; ``Hb``: the ``2k`` blocks of
    ``[V; W]``, ``Q`` over ``(c0, V - W)`` (without ``c0`` when ``ob`` is False)."""
    o = 1 if ob else 0
    kd = Q.shape[0] - o
    d = Hb.shape[1]
    H = np.empty((o + 2 * kd, o + 2 * kd))
    H[:o + kd, :o + kd] = Q
    Quu = Q[o:, o:]
    H[o + kd:, o + kd:] = Quu
    H[o:o + kd, o + kd:] = -Quu
    H[o + kd:, o:o + kd] = -Quu
    if ob:
        H[0, o + kd:] = -Q[0, o:]
        H[o + kd:, 0] = -Q[o:, 0]
        H[0, 0] += rho
    for j in range(Hb.shape[0]):
        a0 = o + j * d
        H[a0:a0 + d, a0:a0 + d] += Hb[j]
    return H


def _factor(S: np.ndarray, work: Optional[dict] = None):
    """A solve with the SPD matrix ``S`` (diagonally scaled Cholesky, shifted if needed);
    ``work``: the scaled copy is factored in its buffer (:func:`work_buffer`: a solve
    from an earlier call with the same ``work`` is then overwritten)."""
    dg = np.sqrt(np.maximum(np.diag(S), 1e-300))
    inv = 1.0 / dg
    shift = 0.0
    for _ in range(6):
        try:
            # scaled afresh for each shift (factored in place)
            Ss = np.multiply(S, inv[:, None],
                             out=work_buffer(work, "factor", S.shape, grow=True))
            Ss *= inv[None, :]
            if shift:
                Ss[np.diag_indices_from(Ss)] += shift
            # symmetric: its transpose is the same matrix in LAPACK's (Fortran) order,
            # factored in place (a C-ordered matrix is copied first: 4.2 ms against 2.7
            # at order 569)
            cf = cho_factor(Ss.T, lower=False, overwrite_a=True, check_finite=False)
            return lambda rhs: cho_solve(cf, rhs * inv, check_finite=False) * inv
        except LinAlgError:
            shift = 1e-12 if not shift else shift * 100.0
    raise np.linalg.LinAlgError("the interior point's Newton matrix is not positive definite")


def factor_masks(masks: np.ndarray) -> np.ndarray:
    """The masks (``n x k``) as the products through the design's factors read them:
    floats up to ``_RMATVEC_CHUNK`` rows (whole-array products); beyond, bools in
    row-major order, one contiguous piece per chunk of rows (``n k`` bytes instead of the
    ``8 n k`` of floats: 11 against 90 MB at 225,000 rows and 50 patterns)."""
    if masks.shape[0] <= _RMATVEC_CHUNK:
        return np.asarray(masks, np.float64)
    return np.ascontiguousarray(masks, dtype=bool)


def factor_rmatvec(Xa: np.ndarray, M: np.ndarray, r: np.ndarray, ob: bool) -> np.ndarray:
    """``A^T r`` for the design ``A = [1, D_1X_a, ..., D_kX_a]`` (its first column only
    with ``ob``) through its factors ``X_a`` and the masks ``M`` (``n x k``, floats or
    bools: :func:`factor_masks`)."""
    o = 1 if ob else 0
    n, k = M.shape
    out = np.empty(o + k * Xa.shape[1])
    if o:
        out[0] = r.sum()
    if n <= _RMATVEC_CHUNK:
        out[o:] = ((M * r[:, None]).T @ Xa).ravel()
        return out
    # by chunks of rows: the scaled masks stay in cache instead of an n x k temporary
    # written and read again (10^6 x 21 data, 23 patterns, one BLAS thread: 50 ms against
    # 66 ms a product with column-major masks, 53 against 70 with row-major ones)
    acc = np.zeros((k, Xa.shape[1]))
    # the buffer in the masks' layout (a restricted program's own masks are column-major;
    # the barrier's factor_masks, beyond _RMATVEC_CHUNK rows, row-major bools)
    buf = np.empty((k, _RMATVEC_CHUNK)).T if M.flags.f_contiguous and not \
        M.flags.c_contiguous else np.empty((_RMATVEC_CHUNK, k))
    for a in range(0, n, _RMATVEC_CHUNK):
        b = min(a + _RMATVEC_CHUNK, n)
        T = np.multiply(M[a:b], r[a:b, None], out=buf[:b - a])
        acc += T.T @ Xa[a:b]
    out[o:] = acc.ravel()
    return out


class LowRankCurvature:
    r"""The loss's Hessian ``Q = A^T diag(h) A`` over ``(c0, V - W)`` kept as its factors,
    for ``n`` samples fewer than its ``1 + k d`` rows: products cost ``O(n k d)`` and
    ``Q + blockdiag(rho, P)`` is solved through an ``n x n`` matrix (Woodbury) instead of
    a factor of order ``1 + k d``.

    ``A``: the dense design ``[1, D_1X_a, ..., D_kX_a]`` (its first column only when ``ob``),
    ``h >= 0``: the loss's curvature per sample, ``blocks``: the blocks ``D_iX_a`` of ``A``
    transposed, ``(k, d, n)`` (:func:`design_blocks`; formed here when not given),
    ``factors``: ``(X_a, masks)`` (the masks ``n x k``, :func:`factor_masks`) of which
    ``A`` is made, for products through them (``O(n k d)`` flops on ``n (k + d)`` numbers
    instead of the ``n k d`` of ``A``: the products of the conjugate gradients are then
    compute-bound).
    """

    def __init__(self, A: np.ndarray, h: np.ndarray, ob: bool, blocks=None,
                 work: Optional[dict] = None, drop: Optional[float] = None,
                 factors: Optional[tuple] = None) -> None:
        self.factors = factors
        self.A = A if ob else A[:, 1:]
        self.h = np.maximum(np.asarray(h, float), 0.0)
        self.ob = bool(ob)
        self.shape = (self.A.shape[1], self.A.shape[1])
        self.blocks = blocks
        # the Newton loop's buffers for the (k, d, n) and n x n arrays of factor_plus
        # (:func:`work_buffer`; each call overwrites the previous call's solve)
        self.work = work
        # the leverage left out of the Woodbury matrix (kept_samples)
        self.drop = _LEVERAGE_DROP if drop is None else float(drop)

    def __matmul__(self, z):
        if self.factors is None or np.ndim(z) != 1:
            return self.A.T @ (self.h * (self.A @ z))
        return factor_matvec(self.factors, self.h, self.ob, z)

    def rmatvec(self, r):
        """``A^T r`` (through the design's factors where given)."""
        if self.factors is None:
            return self.A.T @ r
        return factor_rmatvec(*self.factors, r, self.ob)

    def dense(self) -> np.ndarray:
        return weighted_gram(self.A, self.h, self.work)

    def factor_plus(self, P: np.ndarray, rho: float):
        """A solve with ``Q + blockdiag(rho, P)`` (``rho`` on ``c0`` only with an output
        bias), or None where a factor fails. With ``P_i = L_i L_i^T``, ``U = diag(sqrt h)
        A_u`` and ``Y = U blockdiag(L^{-T})`` (``n x k d``), ``(U^T U + P)^{-1} = L^{-T}
        (I - Y^T (I + Y Y^T)^{-1} Y) L^{-1}`` (Woodbury, symmetrically scaled: ``I + Y
        Y^T`` has no eigenvalue below 1); the output bias is eliminated by its Schur
        complement. Where rounding leaves some ``P_i`` slightly indefinite its factor is
        that of ``P_i`` plus ``_P_SHIFTS`` times its largest diagonal entry (the solve is
        then a preconditioner: :func:`reduced_newton_solver` refines it on the exact
        matrix). With ``drop > 0`` the samples of least leverage are left out of the
        Woodbury matrix (and of the output bias's rows): :func:`kept_samples`, again a
        preconditioner."""
        k, d = P.shape[0], P.shape[1]
        o = 1 if self.ob else 0
        Au = self.A[:, o:]
        if self.blocks is None:
            self.blocks = design_blocks(Au, k, d)
        Li = None
        for shift in _P_SHIFTS:
            try:
                Li = np.linalg.inv(np.linalg.cholesky(
                    P + shift * _block_scale(P) if shift else P))
                break
            except np.linalg.LinAlgError:
                continue
        if Li is None:
            return None
        # Y^T (k d x n) from the blocks' (k, d, n) layout with no copy: L_i^{-1} (D_iX_a)^T
        # scaled by sqrt(h) per sample
        n = self.blocks.shape[2]
        YT = np.matmul(Li, self.blocks, out=work_buffer(self.work, "YT", (k, d, n))
                       ).reshape(k * d, n)
        YT *= np.sqrt(self.h)
        keep = kept_samples(YT, self.drop)
        if keep is not None:  # the samples of least leverage left out (kept_samples)
            n = keep.size
            YT = np.take(YT, keep, axis=1, mode="clip",  # no buffered copy of out
                         out=work_buffer(self.work, "YTk", (k * d, n), grow=True))
        Y = YT.T
        C = np.matmul(Y, YT, out=work_buffer(self.work, "C", (n, n), grow=True))
        C[np.diag_indices_from(C)] += 1.0  # symmetric rank-k (syrk)
        try:
            Cf = _factor(C, self.work)
        except np.linalg.LinAlgError:
            return None

        def Kinv(r):  # (U^T U + P)^{-1} r, r of k d entries
            s = np.einsum("kij,kj->ki", Li, r.reshape(k, d)).ravel()
            t = (s - Y.T @ Cf(Y @ s)).reshape(k, d)
            return np.einsum("kji,kj->ki", Li, t).ravel()
        if not o:
            return Kinv
        hk = self.h
        if keep is not None:  # the left-out samples' coupling of c0 and u left out too
            hk = np.zeros_like(self.h)
            hk[keep] = self.h[keep]
        q0u = self.rmatvec(hk)[o:]
        kq = Kinv(q0u)
        # c0's own curvature stays whole (no leverage bounds what a left-out sample adds
        # there: one active in no pattern has none): the Schur complement is at least
        # rho plus the left-out samples' curvature
        schur = float(np.sum(self.h)) + rho - float(q0u @ kq)
        if not schur > 0:
            return None

        def solve(rhs):
            ku = Kinv(rhs[1:])
            x0 = (rhs[0] - float(q0u @ ku)) / schur
            return np.concatenate([[x0], ku - kq * x0])
        return solve


# the Woodbury matrix of LowRankCurvature.factor_plus leaves out the samples of least
# leverage, as many as keep their leverages' sum within this: a preconditioner whose
# matrix is the exact one less a positive semidefinite part of trace at most this, so
# that the conjugate gradients' matrix has its eigenvalues in [1, 1 + this] (within
# sqrt(this) + this of 1 with an output bias; kept_samples)
_LEVERAGE_DROP = 0.1


def kept_samples(YT: np.ndarray, drop: float = _LEVERAGE_DROP) -> Optional[np.ndarray]:
    """The samples (columns of ``YT = (U L^{-T})^T``, ``k d x n``) kept in the Woodbury
    matrix ``I + Y Y^T``, sorted; None to keep them all.

    ``lev_j = ||Y_j||^2`` is sample ``j``'s leverage against the blocks' part ``P = L
    L^T``. Leaving out a set ``R`` of samples turns ``K = U^T U + P`` into ``M = K -
    U_R^T U_R``; since ``M >= P``, ``M^{-1} K`` has its eigenvalues in ``[1, 1 +
    L]``, ``L = sum_{j in R} lev_j``: the samples of least leverage whose sum stays
    within ``drop`` are left out (a sample-space factor of order ``n - |R|``; the
    conjugate gradients of :func:`reduced_newton_solver` run on the exact matrix). With
    an output bias its own curvature stays whole and only the left-out samples'
    coupling of it with the blocks goes: the eigenvalues are then within
    ``sqrt(L) + L`` of 1. Measured on
    digits, class 0 against the rest (P = 100, ``alpha = 1e-3``, logistic; restricted
    programs of 38-40 patterns, one BLAS thread): a median of 854 of the 1,797 samples
    kept at ``drop = 0.05``, 671 at 0.3 (all of them late on the path, where the block
    Hessians are large); the whole ``solver="relu"`` solve 63.6 s with every sample,
    51.9 s at 0.1 (52-53 s at 0.3 and 1: the factor's savings go to more conjugate
    gradient steps), the same 219-220 Newton steps and objective to 4e-10."""
    if not drop > 0 or YT.shape[1] < 2:
        return None
    lev = np.einsum("ij,ij->j", YT, YT)
    order = np.argsort(lev)
    # one sample at least stays (no empty factor)
    n_out = min(int(np.searchsorted(np.cumsum(lev[order]), drop, side="right")),
                lev.size - 1)
    if n_out == 0:
        return None
    return np.sort(order[n_out:])


class SampledCurvature:
    r"""The loss's Hessian ``Q = A^T diag(h) A`` over ``(c0, V - W)`` for many more
    samples than its rows: products with the exact ``Q`` through the design's factors
    ``(X_a, masks)`` (:func:`factor_masks`; ``O(n k d)`` flops), and ``sketch``, the same
    sum over a sample of the rows, each weighted by its inverse inclusion probability (an
    unbiased estimate of ``Q``, :meth:`_PrimalDual._sketch`), whose reduced factor
    preconditions the conjugate gradients of :func:`reduced_newton_solver` on the exact matrix.
    ``exact()`` forms ``Q`` (with its output bias row; only the whole-matrix fallback
    does)."""

    def __init__(self, factors: tuple, h: np.ndarray, ob: bool, sketch: np.ndarray,
                 exact) -> None:
        self.factors = factors
        self.h = np.maximum(np.asarray(h, float), 0.0)
        self.ob = bool(ob)
        self.sketch = sketch
        self.exact = exact
        self._formed = None
        o = 0 if ob else 1
        self.shape = (sketch.shape[0] - o, sketch.shape[1] - o)

    def without_output_bias(self) -> "SampledCurvature":
        out = SampledCurvature(self.factors, self.h, False, self.sketch, self.exact)
        out._formed = self._formed
        return out

    def preconditioner(self) -> np.ndarray:
        """The sketch over this operator's coordinates (a copy)."""
        return self.sketch.copy() if self.ob else self.sketch[1:, 1:].copy()

    def __matmul__(self, z):
        return factor_matvec(self.factors, self.h, self.ob, z)

    def dense(self) -> np.ndarray:
        """The exact ``Q`` (formed once per step: the main and the safeguarded solve's
        fallbacks share it)."""
        if self._formed is None:
            self._formed = self.exact()
        return self._formed if self.ob else self._formed[1:, 1:]


def factor_matvec(factors: tuple, h: np.ndarray, ob: bool, z: np.ndarray) -> np.ndarray:
    """``A^T diag(h) A z`` for the design ``A = [1, D_1X_a, ..., D_kX_a]`` (its first
    column only with ``ob``) through its factors ``(X_a, masks)`` (:func:`factor_masks`).
    Beyond ``_RMATVEC_CHUNK`` rows both passes run on each chunk of ``_MATVEC_CHUNK`` rows
    in turn, while its rows and masks are in cache."""
    Xa, M = factors
    o = 1 if ob else 0
    n, k = M.shape
    Z = z[o:].reshape(k, -1).T
    if n <= _RMATVEC_CHUNK:
        t = np.einsum("ij,ij->i", M, Xa @ Z)
        if o:
            t += z[0]
        return factor_rmatvec(Xa, M, h * t, ob)
    Z = np.ascontiguousarray(Z)
    acc = np.zeros((k, Xa.shape[1]))
    buf = np.empty((_MATVEC_CHUNK, k))
    total = 0.0
    for a in range(0, n, _MATVEC_CHUNK):
        b = min(a + _MATVEC_CHUNK, n)
        Xc, Mc = Xa[a:b], M[a:b]
        T = np.matmul(Xc, Z, out=buf[:b - a])   # (D_i X_a v_i) of the chunk's rows,
        T *= Mc                                 # masked
        t = T.sum(axis=1)                       # A z on the chunk
        if o:
            t += z[0]
        t *= h[a:b]
        if o:
            total += float(t.sum())
        acc += np.multiply(Mc, t[:, None], out=T).T @ Xc
    out = np.empty(o + acc.size)
    if o:
        out[0] = total
    out[o:] = acc.ravel()
    return out


def low_rank_curvature(n: int, kd: int) -> bool:
    """Whether the interior point keeps the loss's Hessian as its factors
    (:class:`LowRankCurvature`) for ``n`` samples and ``kd`` block coordinates: an ``n x
    n`` Woodbury matrix per step (``n^2 k d + n^3 / 3`` flops, fewer where
    :func:`kept_samples` leaves samples out) against ``(k d)^3 / 3`` for the reduced
    factor and ``n (k d)^2 / 2`` for forming the Hessian."""
    return n * n * kd + n ** 3 / 3.0 < kd ** 3 / 3.0 + n * kd * kd / 2.0


# the interior point's vectors over its cone rows (slacks, multipliers, their steps, the
# line search's trials, the masks as floats and signs), in arrays of n x k: measured with
# tracemalloc over every row, d_a = 21, n = 10^5: peaks of 240 MB at k = 12 and 921 MB at
# k = 48 (25 and 24 such arrays; measured before the masks of the products through the
# design's factors became bools beyond _RMATVEC_CHUNK rows, factor_masks: an upper bound
# since, by up to 7 n k bytes)
_ROW_VECTORS = 25


def barrier_bytes(program: ConvexProgram, rows: Optional[int] = None) -> tuple:
    """``(every step's, the fallback's)``: bytes of the dense pieces the barrier's steps
    use, and of the whole Newton matrix's factor (``1 + 2 k d_a`` rows, the matrix and its
    scaled copy) that a step whose reduced solve fails falls back to. Where the loss's
    Hessian stays as its factors (:func:`low_rank_curvature`) the steps use the design,
    the Woodbury factor's buffers and, where that factor fails, the formed reduced matrix
    (``1 + k d_a`` rows); otherwise the cone rows' vectors (``_ROW_VECTORS`` arrays of
    ``rows x k``), their matrices where kept (up to ``_G_STORED`` entries), the masks as
    floats (bools beyond ``_RMATVEC_CHUNK`` rows: the estimate is then an upper bound) and
    three more ``n x k`` arrays, four ``n x d_a`` temporaries, one chunk of the
    design's rows and the loss's Hessian (the design itself is never formed; the whole
    matrix is then always there to fall back to). ``rows``: the cone rows each block keeps
    (None: every row, as a solve's last pass over the rows)."""
    n, kd = program.n_samples, program.n_patterns * program.d_aug
    r = n if rows is None else min(n, int(rows))
    if low_rank_curvature(n, kd):  # the dense design (the Woodbury factor's blocks)
        design = 8 * RestrictedBarrierSolver.design_entries(program)
    else:  # never formed: the cone rows' vectors, a chunk of its rows, its Gram matrix
        chunk = min(n, max(256, _GRAM_CHUNK_ENTRIES // (1 + kd))) * (1 + kd)
        k = program.n_patterns
        design = 8 * (_ROW_VECTORS * r * k + (0 if r == n else 4 * n * k)
                      + min(r * kd, _G_STORED) + 4 * n * program.d_aug + chunk
                      + (1 + kd) ** 2)
    # the rows' outer products of the cone rows' Hessians (_outer_products_used), formed
    # where every block keeps every row (from the start up to _ROWS_PER_DIM d_a samples,
    # after the row rounds at any n)
    d = program.d_aug
    if _outer_products_used(n, d, program.n_patterns) and r == n:
        design += 8 * (n * d * (d + 1) // 2)
    whole = 8 * 2 * (1 + 2 * kd) ** 2
    if low_rank_curvature(n, kd):
        return design + 8 * (3 * kd * n + 2 * n * n + 3 * (1 + kd) ** 2), whole
    return design, whole


def start_rows_bytes(program: ConvexProgram) -> tuple:
    """:func:`barrier_bytes` of a solve's passes before its last (each block over its
    ``_ROWS_PER_DIM d_a`` margin rows and the rows its ``_ROW_ROUNDS`` rounds add, counted
    as many again a round: an estimate, a round adds the violated rows and each block's
    ``2 d_a`` nearest): what the working-set loop charges. A solve that must go on
    over every row checks that pass's own charge first (:class:`MemoryBudgetError`, and
    the loop's next path). Measured, make_regression(10^6, 20): every row charged 4.6 GB
    at 23 patterns, above the default budget of 2 GiB, and the programs went to the
    augmented Lagrangian (which did not converge there), while the barrier's process
    peaked at 2.7 GB with every pass over the margin rows."""
    m0 = max(_ROWS_PER_DIM * program.d_aug, 32)
    return barrier_bytes(program, rows=m0 * (1 + _ROW_ROUNDS))


def design_blocks(Au: np.ndarray, k: int, d: int) -> np.ndarray:
    """The blocks ``D_iX_a`` of the design ``Au = [D_1X_a, ..., D_kX_a]`` (``n x k d``)
    transposed, ``(k, d, n)`` contiguous."""
    return np.ascontiguousarray(Au.reshape(Au.shape[0], k, d).transpose(1, 2, 0))


# P (the blocks' parallel sums, at least rho / 2 in exact arithmetic) loses its smallest
# eigenvalues to rounding late on the path (-1e-11 where its largest is 1e6: 70 of 322
# Newton steps on breast cancer, P=500, each then forming and factoring the whole reduced
# matrix); the Woodbury factor then takes P plus these multiples of each block's largest
# diagonal entry: a preconditioner only, the conjugate gradients on the exact matrix
# correct it
_P_SHIFTS = (0.0, 1e-14, 1e-12)


def _block_scale(P: np.ndarray) -> np.ndarray:
    """``max_j P_i[j, j] I`` for each block ``i`` of ``P`` (``(k, d, d)``)."""
    d = P.shape[1]
    return np.max(np.diagonal(P, axis1=1, axis2=2), axis=1)[:, None, None] * np.eye(d)


def _dense(Q) -> np.ndarray:
    return Q.dense() if isinstance(Q, (LowRankCurvature, SampledCurvature)) else Q


_PCG_RTOL = 1e-12    # relative residual at which the reduced solve's refinement stops
_PCG_ACCEPT = 1e-5   # ... and beyond which it is rejected (the dense factor instead)
_PCG_MAX_ITER = 10
# with a sketch's factor (SampledCurvature) the conjugate gradients stop at this relative
# residual (their recurrence's; the true one is checked once, against _PCG_ACCEPT) or
# after this many steps, a product with the exact Q each
_PCG_SKETCH_RTOL = 1e-11
_PCG_SKETCH_MAX_ITER = 40
# failed reduced solves after which a solve factors H itself: _REDUCED_MAX_FAILURES once a
# reduced solve has succeeded, _REDUCED_MAX_EARLY before that. The first steps can fail in a
# row (the start's slacks of rows on a gate's hyperplane are ~1e-9, the block Hessians'
# condition numbers ~1e16), and the rest succeed; a failed attempt costs about a reduced
# factor, an eighth of the whole one. Measured on the digits programs of a default fit
# (class 8 against the rest, 16 and 19 patterns, one BLAS thread): 9-10 failures at the
# start, none after; counting them sent the whole solve to the dense factor, 9.5 s and
# 17.7 s, against 5.4 s and 8.2 s with the same objectives and 48-51 steps
_REDUCED_MAX_FAILURES = 3
_REDUCED_MAX_EARLY = 20
# the start's multipliers are mu / max(s, _Z_FLOOR median(s)) instead of mu / s: a row on
# (or next to) a gate's hyperplane starts with a slack of ~1e-9, where mu / s^2 put ~1e13
# into the block Hessians, and the first steps' reduced solves failed. Measured (one BLAS
# thread; every restricted program of a default fit, replayed with the same tolerance):
# digits (27 programs) 50.3 s and 1,098 Newton steps -> 40.3 s and 980, make_classification(
# 5000, 20) (6 programs) 15.7 s and 395 -> 14.1 s and 379, breast cancer and wine within a
# step or two; objectives within 4e-8 relative (3e-2: 38.9 s on digits)
_Z_FLOOR = 1e-2
# the cone rows' Hessians come from the rows' outer products (n x d_a (d_a + 1) / 2,
# formed once per pass over the rows, read at every step) up to this many entries (4 MB: a
# cache's size) whatever the number of patterns; breast cancer (n = 569, d_a = 31: 2.3 MB),
# 50 patterns, 1.2 ms a step against 5.6 block by block
_OUTER_MAX = 1 << 19
# and up to this many (64 MB) where the program has at least _OUTER_MIN_PATTERNS patterns:
# one product over all blocks then beats the blocks' own products once the outer products
# are formed (48 ms at n = 1,797, d_a = 65). Measured (one BLAS thread, n = 1,797, d_a =
# 65, random weights), a step's cone-row Hessians block by block against from the outer
# products: 5.1 / 4.0 ms at 5 patterns, 10.3 / 4.9 at 10, 36.6 / 13.8 at 40, 73.6 / 27.8
# at 80; at 3 patterns 3.2 / 3.4. Whole fits (2026-12-06): the default digits fit (n =
# 1,347: 22 MB) 31.4 and 29.7 s block by block against 28.0 and 26.9 s with this rule and
# the compiled projections' rule of that day (an earlier measurement, when only 4 MB were
# allowed, had the outer products slower there: 16.1-16.6 s against 13.9-15.2 s over its
# 26 restricted programs, every size of program alike)
_OUTER_LARGE = 1 << 23
_OUTER_MIN_PATTERNS = 8


def _outer_products_used(n: int, d: int, k: int) -> bool:
    """Whether a program of ``k`` patterns over ``n`` rows of ``d`` entries, every block
    keeping every row, forms its cone rows' Hessians from the rows' outer products
    (``n d (d + 1) / 2`` entries: ``_OUTER_MAX``, or ``_OUTER_LARGE`` from
    ``_OUTER_MIN_PATTERNS`` patterns on)."""
    size = n * d * (d + 1) // 2
    return size <= _OUTER_MAX or (k >= _OUTER_MIN_PATTERNS and size <= _OUTER_LARGE)


def reduced_newton_solver(Q, Hv: np.ndarray, Hw: np.ndarray, ob: bool, rho: float,
                          accept: float = _PCG_ACCEPT):
    """A solve with ``H = E^T Q E + blockdiag(rho, Hv, Hw)`` (:func:`newton_matrix`) through
    a factor of half its size, or None when that factor fails. ``Q``: the formed matrix,
    a :class:`LowRankCurvature` (the half-size system then solved by its Woodbury
    matrix) or a :class:`SampledCurvature` (its sketch factored, the conjugate gradients
    on the exact ``Q``'s products).

    In the coordinates ``s = v + w``, ``u = v - w`` (``S = Hv + Hw``, ``D = Hv - Hw``, per
    block) the rows of ``H x = g`` summed give ``S s + D u = 2 (g_v + g_w)`` and the
    system over ``z = (c0, u)`` is ``(Q + blockdiag(rho, P)) z = (g_0, (g_v - g_w - D
    S^{-1} (g_v + g_w)) / 2)``, where ``P_i = (Hv_i^{-1} + Hw_i^{-1})^{-1} = Hv_i S_i^{-1}
    Hw_i = (S_i - D_i S_i^{-1} D_i) / 4``; then ``s = S^{-1} (2 (g_v + g_w) - D u)``,
    ``v = (s + u) / 2``, ``w = (s - u) / 2``: one Cholesky factor of order ``1 + k d``
    instead of ``1 + 2 k d`` (8x fewer flops), and ``k`` factors of order ``d``, of ``S``
    only (``Hv``, ``Hw`` alone reach condition numbers of ``1e16``). Along the central
    path the block Hessians reach ``1e12`` and more, and the reduced solve alone can lose
    digits (residuals of ``1e-6`` relative were seen), so it preconditions conjugate
    gradients on the exact ``H`` (a product with ``Q`` and the blocks per step, until the
    true residual stops falling: its floor is then the conditioning's, as the dense
    factor's is); the returned ``solve(g)`` gives ``H^{-1} g``, or None when the residual
    stays above ``accept`` relative (``_PCG_ACCEPT``; the caller then factors ``H``).
    """
    k, d = Hv.shape[0], Hv.shape[1]
    o = 1 if ob else 0
    kd = k * d
    try:
        Fs = np.linalg.cholesky(Hv + Hw)                                  # (k, d, d)
    except np.linalg.LinAlgError:
        return None
    Fi = np.linalg.inv(Fs)  # the triangular factor's inverse, once (a solve: two products)
    D = Hv - Hw
    # P_i = Hv (Hv + Hw)^{-1} Hw = (F^{-1} Hv)^T (F^{-1} Hw), F F^T = Hv + Hw
    P = np.matmul(np.swapaxes(np.matmul(Fi, Hv), 1, 2), np.matmul(Fi, Hw))
    P = 0.5 * (P + np.swapaxes(P, 1, 2))
    Mf = Q.factor_plus(P, rho) if isinstance(Q, LowRankCurvature) else None
    sketched = isinstance(Q, SampledCurvature)
    if Mf is None:  # the formed matrix (also where the Woodbury factor failed)
        M = Q.preconditioner() if sketched else _dense(Q).copy()
        for i in range(k):
            a = o + i * d
            M[a:a + d, a:a + d] += P[i]
        if ob:
            M[0, 0] += rho
        try:
            Mf = _factor(M)
        except np.linalg.LinAlgError:
            return None

    def s_solve(r):  # (Hv + Hw)^{-1} r for the batch of blocks
        return np.einsum("kji,kj->ki", Fi, np.einsum("kij,kj->ki", Fi, r))

    def apply_H(x):  # the exact H times x over (c0, V, W)
        v = x[o:o + kd].reshape(k, d)
        w = x[o + kd:].reshape(k, d)
        z = np.concatenate([x[:o], (v - w).ravel()])
        qz = Q @ z
        qu = qz[o:].reshape(k, d)
        out = np.empty_like(x)
        if o:
            out[0] = qz[0] + rho * x[0]
        out[o:o + kd] = (qu + np.einsum("kij,kj->ki", Hv, v)).ravel()
        out[o + kd:] = (-qu + np.einsum("kij,kj->ki", Hw, w)).ravel()
        return out

    def precond(g):  # the reduced solve (exact in exact arithmetic)
        # in the coordinates s = v + w, u = v - w only Hv + Hw is factored (Hv and Hw
        # alone reach condition numbers of 1e16 late on the path, where their factors fail)
        gv = g[o:o + kd].reshape(k, d)
        gw = g[o + kd:].reshape(k, d)
        gs = gv + gw
        ru = 0.5 * (gv - gw - np.einsum("kij,kj->ki", D, s_solve(gs)))
        z = Mf(np.concatenate([g[:o], ru.ravel()]))
        u = z[o:].reshape(k, d)
        s_ = s_solve(2.0 * gs - np.einsum("kij,kj->ki", D, u))
        out = np.empty_like(g)
        if o:
            out[0] = z[0]
        out[o:o + kd] = (0.5 * (s_ + u)).ravel()
        out[o + kd:] = (0.5 * (s_ - u)).ravel()
        return out

    def solve(g):
        gn = float(np.linalg.norm(g))
        if gn == 0.0:
            return np.zeros_like(g)
        return _pcg(g, gn, precond(g), apply_H, precond, accept, recurrence=sketched)
    return solve


def _pcg(g, gn, x, apply_H, precond, accept, recurrence=False):
    """Preconditioned conjugate gradients on ``H x = g`` from ``x``: ``x``, or None where
    its residual stays above ``accept`` relative (the caller then factors ``H``).

    With an exact preconditioner (the reduced factor of ``H`` itself) they correct
    rounding: each step's residual is the true one, and they stop when it no longer
    halves (its floor is rounding's). With the sketch's factor (``recurrence``,
    :class:`SampledCurvature`) they run on the recurrence's residual (one product with
    ``H`` a step) to ``_PCG_SKETCH_RTOL`` or ``_PCG_SKETCH_MAX_ITER`` steps, and the true
    residual is checked once at the end."""
    r = g - apply_H(x)
    rn = float(np.linalg.norm(r))
    rtol, max_iter = (_PCG_SKETCH_RTOL, _PCG_SKETCH_MAX_ITER) if recurrence else \
        (_PCG_RTOL, _PCG_MAX_ITER)
    zr = precond(r)
    p = zr.copy()
    rz = float(r @ zr)
    for _ in range(max_iter):
        if rn <= rtol * gn:
            break
        Hp = apply_H(p)
        pHp = float(p @ Hp)
        if not pHp > 0:
            break
        a = rz / pHp
        x_new = x + a * p
        # the true residual where the preconditioner is exact: the floor is rounding's
        r_new = r - a * Hp if recurrence else g - apply_H(x_new)
        rn_new = float(np.linalg.norm(r_new))
        if not recurrence and not rn_new < 0.5 * rn:  # no progress: keep the best
            if rn_new < rn:
                x, rn = x_new, rn_new
            break
        x, r, rn = x_new, r_new, rn_new
        zr = precond(r)
        rz_new = float(r @ zr)
        p = zr + (rz_new / rz) * p
        rz = rz_new
    if recurrence:
        rn = float(np.linalg.norm(g - apply_H(x)))
    # the dense factor's own residuals reach 1e-7 relative early on the central path
    # (digits, 17 patterns); a reduced solve that cannot get within _PCG_ACCEPT of the
    # right-hand side is not used
    return x if rn <= accept * gn else None


# the blocks' cone rows are kept as matrices up to this many entries in all (32 MB); past
# it (every block over most rows of a large sample) each is formed where it is used
_G_STORED = 1 << 22


class _ConeRows:
    """The blocks' kept cone rows ``G_i = diag(2 D_i - 1) X_a[r_i]``, each formed when
    read: a sequence of ``k`` matrices that holds no array of their total size (every
    block over every row of a large sample is the size of the design)."""

    def __init__(self, Xa: np.ndarray, masks: np.ndarray, rows) -> None:
        self.Xa, self.masks, self.rows = Xa, masks, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> np.ndarray:
        r = self.rows[i]
        return np.where(self.masks[r, i], 1.0, -1.0)[:, None] * self.Xa[r]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class _PrimalDual:
    """The iteration's state: blocks ``V``, ``W``, output bias ``c0`` and the cone rows."""

    def __init__(self, program: ConvexProgram, rows, start=None, work=None,
                 dense_ok: bool = True, resume=None):
        self.Xa = program.X_aug
        # whether a step may factor the whole Newton matrix (RestrictedBarrierSolver._solve,
        # barrier_bytes)
        self.dense_ok = bool(dense_ok)
        n = self.Xa.shape[0]
        # the Woodbury factor's buffers, reused at every step (and, given, every round)
        self._work: dict = {} if work is None else work
        self.k, self.d = program.n_patterns, program.d_aug
        self.masks = np.asarray(program.masks, bool)
        self.y, self.loss = program.y, program.loss
        self.beta = float(program.alpha)
        self.reg = program.regularizer
        self.ob = bool(program.fit_output_bias)
        # the dense design [1, D_1 Xa, ..., D_k Xa] is formed only where the loss's
        # Hessian stays as its factors (fewer samples than Newton rows: the Woodbury
        # factor's blocks) or where asked for (A); elsewhere its products go through X_a
        # and the masks, and its Gram matrix row chunk by row chunk (weighted_gram), so
        # that large n holds no n x k d_a array (make_regression(10^6, 20): ~2 GB at 12
        # patterns, above the memory budget, which sent the restricted programs to the
        # augmented Lagrangian)
        self._A = None
        cc = self.loss.constant_curvature(self.y)
        self.quadratic = cc is not None
        self._Q, self._q_age, self._exact_q = None, 0, False
        self._design_blocks = None
        self._mask_f = None
        self._outer = None  # the rows' outer products (the cone rows' Hessians, _parts)
        self._last_ap = 1.0
        self._z_held = None  # (V, W, c0, predictions) of the iterate (_z_now)
        # the reduced Newton solve's failures (counted from its first success, when it has
        # one) and whether it has succeeded: dense from _REDUCED_MAX_FAILURES (or _EARLY)
        self._reduced_failures, self._reduced_ok = 0, False
        # fewer samples than Newton rows: the loss's Hessian stays as its factors
        # (LowRankCurvature: an n x n Woodbury matrix per step, n^2 k d + n^3 / 3 flops,
        # against (k d)^3 / 3 for the reduced factor and n (k d)^2 for forming Q)
        self.lowrank = low_rank_curvature(n, self.k * self.d)
        # many more samples than Newton rows: a sketch of the loss's Hessian at every step
        # (SampledCurvature), its inclusion weights' row factor and generator formed once
        self.sketched = cc is None and not self.lowrank and \
            n >= _SKETCH_MIN * (1 + self.k * self.d)
        self._row_weight, self._rng = None, None
        self.Q0 = None if cc is None or self.lowrank else \
            float(cc) * self._gram_ones(program.patterns.packed)
        self._cc = cc
        # the all-active pattern with a free hidden bias: its pair is one linear block
        # (v free, w = 0, no cone rows; mapped back by linear_pairs)
        self.linear = linear_blocks(program)
        lin = set(self.linear.tolist())
        rows = [np.zeros(0, np.intp) if i in lin else r for i, r in enumerate(rows)]
        self.rows = [np.asarray(r, np.intp) for r in rows]
        self.m = 2 * sum(r.size for r in self.rows)
        # every block keeps every row (n up to 32 d_a, and after the row rounds), or none
        # (a linear block): the slacks of all blocks are one product with X_a instead of
        # 2k matrix-vector products (11 % of the solves of a digits fit)
        self._sgn = cone_signs(self.masks.T) \
            if all(r.size == n or i in lin for i, r in enumerate(self.rows)) else None
        # the blocks' kept cone rows G_i = diag(2 D_i - 1) X_a[rows]; where they would
        # hold more than _G_STORED entries (every block over most rows of a large sample:
        # the size of the design), each is formed when used instead (_ConeRows)
        self.G = _ConeRows(self.Xa, self.masks, self.rows)
        if (self.m // 2) * self.d <= _G_STORED:
            self.G = list(self.G)
        # blocks whose kept cone rows are all active: with a free hidden bias nothing
        # bounds the bias, so their slacks stay away from zero as the penalised part does;
        # and the linear blocks, whose penalised part can head to zero as well
        self.open_blocks = np.asarray(sorted(set(
            [i for i, r in enumerate(self.rows) if self.reg.free and r.size
             and bool(self.masks[r, i].all())] + self.linear.tolist())), np.intp)
        gates = program.patterns.gates
        G = (gates / np.maximum(np.linalg.norm(gates, axis=0), 1e-300)).T  # unit gates
        # start at a tenth of the unit gates (v - w = 0: the zero network). Measured
        # Newton steps (breast cancer, 20 patterns, logistic): 59 from 1e-3, 43 from 1e-2,
        # 33 from 0.1, 37 from 1
        self.V, self.W, self.c0 = 0.1 * G, 0.1 * G.copy(), 0.0
        if start is not None:
            # a warm start (the previous restricted program's solution): its blocks moved
            # _WARM_OFFSET unit gates into their cones, v - w (the predictions) unchanged;
            # a linear block's pair as its one block v - w
            V0, W0, c0 = start
            self.V, self.W, self.c0 = V0 + _WARM_OFFSET * G, W0 + _WARM_OFFSET * G, c0
            self.V[self.linear] = V0[self.linear] - W0[self.linear]
        self.W[self.linear] = 0.0
        # a resumed solve (RestrictedBarrierSolver._resumable): the kept blocks, multipliers
        # and (from them) mu as they were, where every slack is still positive
        self.z0 = None
        if resume is not None and not self.linear.size:
            V0, W0, c0, zv, zw = resume
            sv, sw = self._slacks(V0, W0)
            if all(np.all(s_ > 0) for s_ in sv + sw) and \
                    all(np.all(z_ > 0) for z_ in zv + zw):
                self.V, self.W, self.c0 = V0.copy(), W0.copy(), float(c0)
                self.z0 = ([z_.copy() for z_ in zv], [z_.copy() for z_ in zw])
        for B in (self.V, self.W):  # strictly inside the kept rows
            for i, Gi in enumerate(self.G):
                if Gi.shape[0]:
                    s, sg = Gi @ B[i], Gi @ gates[:, i]
                    need = np.max((1e-9 - s) / np.maximum(sg, 1e-300), initial=0.0)
                    B[i] += max(need, 0.0) * gates[:, i]

    # ------------------------------------------------------------------ the design
    @property
    def A(self) -> np.ndarray:
        """The dense design ``[1, D_1X_a, ..., D_kX_a]`` (the output bias column first),
        formed on first use block by block (no temporary of its size)."""
        if self._A is None:
            n = self.Xa.shape[0]
            self._A = self._fill_design(0, n, np.ones(n), np.empty((n, 1 + self.k * self.d)))
        return self._A

    def _fill_design(self, a: int, b: int, s: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Rows ``a:b`` of the design times ``s`` into ``out`` (:meth:`_fill_rows`)."""
        return self._fill_rows(slice(a, b), s, out)

    def _At(self, r: np.ndarray) -> np.ndarray:
        """``A^T r`` (through ``X_a`` and the masks where the design is not formed)."""
        if self._A is not None:
            return self._A.T @ r
        return factor_rmatvec(*self._factors(), r, True)

    def _sketch(self, h: np.ndarray) -> np.ndarray:
        """An unbiased estimate of ``A^T diag(h) A`` from about ``_SKETCH_ROWS (1 + k d)``
        rows (:class:`SampledCurvature`): row ``j`` is kept with probability ``pi_j =
        min(1, m p_j)``, ``p_j`` half uniform and half proportional to ``h_j ||a_j||^2``
        (``||a_j||^2 = 1 + ||x_j||^2`` times its active patterns), and weighted by ``1 /
        pi_j``; the draws are reproducible (one generator per solve, seeded)."""
        n, c = self.Xa.shape[0], 1 + self.k * self.d
        if self._row_weight is None:
            self._row_weight = 1.0 + np.einsum("ij,ij->i", self.Xa, self.Xa) * \
                np.count_nonzero(self.masks, axis=1)
            self._rng = np.random.default_rng(0)
        h = np.maximum(np.asarray(h, np.float64), 0.0)
        w = h * self._row_weight
        total = float(w.sum())
        p = 0.5 / n + (0.5 * w / total if total > 0 else 0.5 / n)
        pi = np.minimum(1.0, _SKETCH_ROWS * c * p)
        rows = np.flatnonzero(self._rng.random(n) < pi)
        return weighted_gram(
            (rows.size, c, lambda a, b, s, out: self._fill_rows(rows[a:b], s, out)),
            h[rows] / pi[rows], self._work)

    def _gram(self, h: np.ndarray) -> np.ndarray:
        """``A^T diag(h) A`` by row chunks (:func:`weighted_gram`), the chunks of an
        unformed design filled from ``X_a`` and the masks."""
        if self._A is not None:
            return weighted_gram(self._A, h, self._work)
        return weighted_gram((self.Xa.shape[0], 1 + self.k * self.d, self._fill_design), h,
                             self._work)

    def _gram_ones(self, packed) -> np.ndarray:
        """``A^T A``, the quadratic loss's Gram (formed once per solve), with the blocks
        of the last solve's patterns copied from it (the solver's ``work["grams"]``): a
        block ``X_a^T D_i D_j X_a`` depends on its two patterns alone, and consecutive
        working sets share all but a few, so only the new patterns' columns are formed
        (:meth:`_gram_columns`, one chunked pass over the rows active in a new pattern:
        about ``1 / k`` of the flops with one pattern new of ``k``, half active). Measured,
        make_regression(10^6, 20): the Gram took 36.8 s of a 250 s solve formed whole
        each time."""
        n, k, d = self.Xa.shape[0], self.k, self.d
        cache = self._work.get("grams")
        keys = [r.tobytes() for r in packed]
        held = None
        if cache is not None and cache.get("X") is self.Xa and cache.get("d") == d:
            held = {key: i for i, key in enumerate(cache["keys"])}
        old = None if held is None else [held.get(key, -1) for key in keys]
        new = [] if old is None else [i for i, j in enumerate(old) if j < 0]
        if old is None or 2 * len(new) >= k:  # nothing kept, or mostly new: all of it
            Q = self._gram(np.ones(n))
        else:
            def cols(pos):  # the design's columns: the output bias's, then these blocks'
                return np.concatenate([[0]] + [1 + p * d + np.arange(d) for p in pos])
            kept = [i for i in range(k) if old[i] >= 0]
            Q = np.empty((1 + k * d, 1 + k * d))
            a, b = cols(kept), cols([old[i] for i in kept])
            Q[np.ix_(a, a)] = cache["Q"][np.ix_(b, b)]
            if new:
                c = cols(new)[1:]
                Qc = self._gram_columns(new)
                Q[:, c] = Qc
                Q[c, :] = Qc.T
        if cache is not None:  # (Q is not changed after: Q0 is a scaled copy)
            cache.update(X=self.Xa, d=d, keys=keys, Q=Q)
        return Q

    def _gram_columns(self, new) -> np.ndarray:
        """``(A^T A)[:, cols]``, the columns of the blocks of the patterns ``new`` (their
        positions): those design columns ``D_p X_a`` vanish off the patterns' active rows,
        so the sum runs over the rows active in at least one of them, by row chunks of the
        design there (filled from ``X_a`` and the masks), all their columns at once (one
        product a chunk). Measured (10^6 x 21 data, 23 patterns, half the rows active in
        each, column-major masks, one BLAS thread): one pattern's columns in 0.58 s
        against 1.03 s summed over every row; five or eleven new patterns within 2 % of
        it (their rows are nearly all rows)."""
        c, d = 1 + self.k * self.d, self.d
        cs = np.concatenate([1 + p * d + np.arange(d) for p in new])
        act = np.flatnonzero(self.masks[:, new].any(axis=1))
        n = self.Xa.shape[0]
        rows = max(256, _GRAM_CHUNK_ENTRIES // max(c, 1))
        out = np.zeros((c, cs.size))
        if act.size == 0:
            return out
        buf = np.empty((min(rows, act.size), c))
        ones = np.ones(min(rows, act.size))
        for a in range(0, act.size, rows):
            m = min(rows, act.size - a)
            # (where they cover every row, contiguous slices: no gather)
            rows_ = slice(a, a + m) if act.size == n else act[a:a + m]
            B = self._fill_rows(rows_, ones[:m], buf[:m])
            out += B.T @ B[:, cs]
        return out

    def _fill_rows(self, idx, s: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The design's rows ``idx`` (a slice, read in place, or indices, gathered) times
        ``s`` into ``out``, pattern by pattern."""
        Xr, Mr, d = self.Xa[idx], self.masks[idx], self.d
        out[:, 0] = s
        for i in range(self.k):
            np.multiply(Xr, (Mr[:, i] * s)[:, None], out=out[:, 1 + i * d:1 + (i + 1) * d])
        return out

    # ------------------------------------------------------------------ evaluations
    def _z(self, V, W, c0):
        # the program's chunked masked sum over the bool masks (57 ms against 69 ms with
        # the float masks at 10^6 x 21 data, 23 patterns)
        z = masked_predictions(self.Xa, (V - W).T, self.masks)
        return z + c0 if self.ob else z

    def _rows(self, B):
        """The kept cone rows' values ``G_i b_i`` of each block (a list over blocks)."""
        if self._sgn is not None:
            out = list(self._sgn * (B @ self.Xa.T))
            for i in self.linear:
                out[i] = out[i][:0]
            return out
        return [G @ B[i] for i, G in enumerate(self.G)]

    def _rows_t(self, T):
        """``G_i^T t_i`` of each block, shape (k, d_a), for per-row values ``T``."""
        if self._sgn is not None:
            if self.linear.size:  # no rows: a zero row of the product
                n = self.Xa.shape[0]
                T = [np.zeros(n) if t.size == 0 else t for t in T]
            return (self._sgn * np.asarray(T)) @ self.Xa
        return np.array([G.T @ T[i] if G.shape[0] else np.zeros(self.d)
                         for i, G in enumerate(self.G)]).reshape(self.k, self.d)

    def _slacks(self, V, W):
        return self._rows(V), self._rows(W)

    def _z_now(self, V, W, c0):
        """:meth:`_z`, the iterate's kept from its last computation where ``V`` and ``W``
        are the same arrays (the step's objective and the next Newton matrix's gradient
        read the same predictions: one ``n x k d_a`` pass instead of three a step)."""
        held = self._z_held
        if held is not None and held[0] is V and held[1] is W and held[2] == c0:
            return held[3]
        z = self._z(V, W, c0)
        self._z_held = (V, W, c0, z)
        return z

    def _f(self):
        pen = self.reg.value(self.V) + self.reg.value(self.W)
        return float(self.loss.value(self._z_now(self.V, self.W, self.c0), self.y)) \
            + self.beta * pen

    def _merit(self, V, W, c0, z, slacks, mu_t, rho, floor):
        """The barrier merit ``f + (rho / 2)||x||^2 - mu_t sum log s`` (``inf`` outside),
        with the norms smoothed as in :meth:`_parts`, at ``(V, W, c0)`` whose
        predictions are ``z`` and cone rows' values ``slacks`` (a list over blocks)."""
        logs = 0.0
        for s in slacks:
            if s.size:
                if float(s.min()) <= 0:
                    return np.inf
                logs += float(np.sum(np.log(s)))
        P = self.reg.penalized
        pen = sum(float(np.sum(np.sqrt(np.einsum("ij,ij->i", P(B), P(B)) + floor * floor)))
                  for B in (V, W))
        f = float(self.loss.value(z, self.y)) + self.beta * pen
        prox = 0.5 * rho * (float(np.sum(V * V) + np.sum(W * W)) + c0 * c0)
        return f + prox - mu_t * logs

    def _line_search(self, a, dV, dW, dc, mu_t, mu, slope):
        """Armijo backtracking on the barrier merit at ``mu_t`` from step ``a``.

        The predictions and the cone rows' values are linear in the step: each trial
        combines those of the point and of the direction, one product each per line
        search (a product per trial was 10 % of a make_classification(100000, 20) fit)."""
        rho, floor = _PROX * mu, self._floor(mu)
        z0, dz = self._z(self.V, self.W, self.c0), self._z(dV, dW, dc)
        s0, ds = sum(self._slacks(self.V, self.W), []), sum(self._slacks(dV, dW), [])
        m0 = self._merit(self.V, self.W, self.c0, z0, s0, mu_t, rho, floor)
        for _ in range(40):
            m1 = self._merit(self.V + a * dV, self.W + a * dW, self.c0 + a * dc,
                             z0 + a * dz, [s + a * t for s, t in zip(s0, ds)], mu_t, rho,
                             floor)
            if m1 <= m0 + 1e-4 * a * min(slope, 0.0):
                return a
            a *= 0.5
        return a

    def _blocks(self):
        """The design's blocks in the Woodbury factor's layout (:func:`design_blocks`),
        formed once."""
        if self._design_blocks is None:
            self._design_blocks = design_blocks(self.A[:, 1:], self.k, self.d)
        return self._design_blocks

    def _factors(self):
        """``(X_a, masks)``, the design's factors (:class:`LowRankCurvature`,
        :class:`SampledCurvature`; the masks as :func:`factor_masks` gives them)."""
        if self._mask_f is None:
            # one conversion for every round of rows of the solve (its work dict)
            held = self._work.get("mask_f")
            if held is not None and held[0] is self.masks:
                self._mask_f = held[1]
            else:
                self._mask_f = factor_masks(self.masks)
                self._work["mask_f"] = (self.masks, self._mask_f)
        return self.Xa, self._mask_f

    def _floor(self, mu):
        """The norms' smoothing: zero when every coordinate is penalised."""
        if not self.reg.free:
            return 0.0
        return 0.1 * mu * self.m / (2 * max(self.k, 1) * max(self.beta, 1e-300))

    # ------------------------------------------------------------------ Newton
    def _parts(self, mu, zv, zw):
        """The gradient of ``f + beta sum rho + (prox / 2)||x||^2`` (no barrier term), the
        slacks and a solve ``-H^{-1} g`` with the primal-dual Newton matrix."""
        V, W, c0 = self.V, self.W, self.c0
        k, d, ob = self.k, self.d, self.ob
        z = self._z_now(V, W, c0)
        ga = self._At(self.loss.gradient(z, self.y))
        gu = ga[1:].reshape(k, d)
        kp = self.reg.penalized_dim
        floor = self._floor(mu)
        rho = _PROX * mu
        Hv, Hw = np.zeros((k, d, d)), np.zeros((k, d, d))
        rv, Uv, _ = norm_derivatives(self.reg.penalized(V), self.beta, floor,
                                     out=Hv[:, :kp, :kp])
        rw, Uw, _ = norm_derivatives(self.reg.penalized(W), self.beta, floor,
                                     out=Hw[:, :kp, :kp])
        # a block whose cone rows leave its free bias open: no barrier stops its
        # penalised part at zero, and the smoothed norm's radial curvature floor^2 / r^3
        # (far below beta / r once r >> floor) lets the Newton step overshoot through the
        # kink; the safeguarded Newton matrix gives those norms a radial curvature of at
        # least _OPEN_RADIAL beta / r
        j = self.open_blocks
        gv, gw = gu + rho * V, -gu + rho * W
        gv[:, :kp] += self.beta * Uv
        gw[:, :kp] += self.beta * Uw
        sv, sw = self._slacks(V, W)
        if self._sgn is not None and _outer_products_used(self.Xa.shape[0], d, self.k):
            # every block over every row (its signs square away): X_a^T diag(z / s) X_a
            # of all blocks as one product with the upper triangles of the rows' outer
            # products x x^T (n x d_a (d_a + 1) / 2, formed once): 5.6 ms -> 1.2 ms a
            # step at k = 50, n = 569, d_a = 31
            iu, ju = np.triu_indices(d)
            off = iu != ju
            if self._outer is None:  # row chunks: no temporaries of its size
                n = self.Xa.shape[0]
                self._outer = np.empty((n, iu.size))
                step = max(1, (1 << 18) // max(iu.size, 1))
                for a in range(0, n, step):
                    np.multiply(self.Xa[a:a + step, iu], self.Xa[a:a + step, ju],
                                out=self._outer[a:a + step])
            Wt = np.zeros((2 * self.k, self.Xa.shape[0]))  # z / s of the V and W blocks
            for i, (z_, s_) in enumerate(zip(zv + zw, sv + sw)):
                if s_.size:
                    Wt[i] = z_ / s_
            T = Wt @ self._outer
            for H, Tb in ((Hv, T[:self.k]), (Hw, T[self.k:])):
                H[:, iu, ju] += Tb
                H[:, ju[off], iu[off]] += Tb[:, off]
        else:
            for i, G in enumerate(self.G):
                if G.shape[0]:
                    Gv = G * np.sqrt(zv[i] / sv[i])[:, None]  # B^T B: a rank-k update
                    Gw = G * np.sqrt(zw[i] / sw[i])[:, None]
                    Hv[i] += Gv.T @ Gv
                    Hw[i] += Gw.T @ Gw
        idx = np.arange(d)
        Hv[:, idx, idx] += rho
        Hw[:, idx, idx] += rho
        for i in self.linear:  # w = 0 held: no gradient, a curvature far above v's
            gw[i] = 0.0
            Hw[i, idx, idx] += _PIN * max(1.0, float(np.max(np.diagonal(Hv[i]))))
        if self.Q0 is not None:
            Q = self.Q0
        elif self.lowrank and self._cc is not None:
            Q = LowRankCurvature(self.A, np.full(self.A.shape[0], float(self._cc)), True,
                                 self._blocks(), self._work, factors=self._factors())
        else:
            h = self.loss.curvature(z, self.y)
            if self._Q is None or self._exact_q or self.lowrank or self.sketched \
                    or self._q_age >= _LAG - 1:
                if self.lowrank:  # Q is not formed: the exact curvature at every step
                    self._Q = LowRankCurvature(self.A, h, True, self._blocks(), self._work,
                                               factors=self._factors())
                elif self.sketched:  # a sketch at every step (SampledCurvature)
                    sketch = self._sketch(h)
                    self._Q = sketch if not self._exact_q else SampledCurvature(
                        self._factors(), h, True, sketch, lambda h=h: self._gram(h))
                else:
                    # symmetric rank-k updates over chunks of rows (half the flops of
                    # A^T (h A); make_classification(20000, 20), 15,000 x 1,072, one BLAS
                    # thread: 0.47 s against 0.86 s), no scaled copy of the design
                    self._Q = self._gram(h)
                self._q_age = 0
            else:
                self._q_age += 1
            Q = self._Q
        if not ob:  # no output bias: its row and column go
            Q = LowRankCurvature(Q.A, Q.h, False, Q.blocks, Q.work, Q.drop, Q.factors) \
                if isinstance(Q, LowRankCurvature) \
                else Q.without_output_bias() if isinstance(Q, SampledCurvature) \
                else Q[1:, 1:]
        gc = ga[0] + rho * c0 if ob else 0.0

        def safeguarded():  # formed only where the line search cut a step
            Sv, Sw = Hv.copy(), Hw.copy()
            for S, r_, U_ in ((Sv, rv, Uv), (Sw, rw, Uw)):
                S[j, :kp, :kp] += ((_OPEN_RADIAL * self.beta / r_[j])[:, None, None]
                                   * U_[j][:, :, None] * U_[j][:, None, :])
            return self._solver(Q, Sv, Sw, rho)
        return gv, gw, gc, sv, sw, self._solver(Q, Hv, Hw, rho), \
            (safeguarded if j.size and not self.quadratic else None)

    def _solver(self, Q, Hv, Hw, rho):
        """``-H^{-1} g`` for ``H = E^T Q E + blockdiag(Hv, Hw) (+ rho on c0)`` (``E`` maps
        ``(c0, V, W)`` to ``(c0, V - W)``): by the reduced factor of
        :func:`reduced_newton_solver` where it converges, else one Cholesky factor of
        ``H`` (for the rest of the solve after ``_REDUCED_MAX_FAILURES`` failures since
        its first success, or ``_REDUCED_MAX_EARLY`` before one). Where that matrix does
        not fit the memory budget (``dense_ok`` False, :func:`barrier_bytes`), the reduced
        solve's refined direction whatever its residual."""
        k, d, ob = self.k, self.d, self.ob
        o, kd = (1 if ob else 0), k * d
        if not self.dense_ok:
            # no room for the whole matrix: the reduced solve's refined direction whatever
            # its residual (the line search on the merit judges it)
            chol = reduced_newton_solver(Q, Hv, Hw, ob, rho, accept=np.inf)
            if chol is None:
                raise LinAlgError("the reduced Newton matrix is not positive definite and "
                                  "the whole matrix does not fit the memory budget")

            def refined(rhs):
                x = chol(rhs)
                if x is None:  # a residual that is not finite
                    raise LinAlgError("the reduced Newton solve did not give a finite "
                                      "residual and the whole matrix does not fit the "
                                      "memory budget")
                return x
            return self._directions(refined, k, d, o, kd)
        # a sketched Hessian (SampledCurvature) tries the reduced solve at every step: its
        # failures cost a few products with Q, the whole matrix forming Q (n (1 + k d)^2
        # flops). Measured (one BLAS thread; the default ConvexReLUClassifier(random_state=0)
        # fit of make_classification(300000, 20, random_state=0), 225,000 training rows):
        # 6 of its 191 sketched solves failed, after 8-9 conjugate-gradient steps each, and
        # the rule below then formed Q for every later step of their restricted solves: 32
        # formations, 32.4 s of a 146.4 s fit (the barrier 89.8 s, 173 Newton steps); tried
        # at every step, 4 failures, 2 formations (1.1 s), the fit 120.1 s (the barrier 58.5
        # s, 152 steps), the same accuracy, the objective 0.3540497 against 0.3540507
        limit = np.inf if isinstance(Q, SampledCurvature) else \
            _REDUCED_MAX_FAILURES if self._reduced_ok else _REDUCED_MAX_EARLY
        chol = None if self._reduced_failures >= limit else \
            reduced_newton_solver(Q, Hv, Hw, ob, rho)
        reduced = chol is not None
        if chol is None:
            self._reduced_failures += 1
            chol = _factor(newton_matrix(_dense(Q), np.concatenate([Hv, Hw]), ob, rho))

        dense = []  # the whole matrix's factor, once a reduced solve of this step failed

        def solve(rhs):
            x = None if dense else chol(rhs)
            if x is not None and reduced and not self._reduced_ok:  # its first success
                self._reduced_ok, self._reduced_failures = True, 0
            if x is None:  # the reduced solve did not converge: the dense factor
                if not dense:
                    self._reduced_failures += 1
                    dense.append(_factor(newton_matrix(_dense(Q),
                                                       np.concatenate([Hv, Hw]), ob,
                                                       rho)))
                x = dense[0](rhs)
            return x
        return self._directions(solve, k, d, o, kd)

    def _directions(self, solve_rhs, k, d, o, kd):
        """``solve(gv, gw, gc)``: the step ``-H^{-1} g`` split into ``(dV, dW, dc)``, for a
        ``solve_rhs`` of the stacked right-hand side ``(gc, gv, gw)``."""
        def solve(gv, gw, gc):
            rhs = np.concatenate([np.atleast_1d(gc)[:o], gv.ravel(), gw.ravel()])
            x = -solve_rhs(rhs)
            return (x[o:o + kd].reshape(k, d), x[o + kd:].reshape(k, d),
                    float(x[0]) if o else 0.0)
        return solve

    def run(self, tol: float, max_iter: int):
        """Mehrotra predictor-corrector until ``s^T z <= tol f``; ``(steps, converged)``."""
        k = self.k
        sv, sw = self._slacks(self.V, self.W)
        if self.z0 is not None:  # resumed: the multipliers kept, mu from them
            zv, zw = self.z0
            mu = sum(float(s @ z) for s, z in zip(sv + sw, zv + zw)) / max(self.m, 1)
            if self.sketched:  # already below the sketch's gap: exact steps from the first
                self._exact_q = mu * self.m <= _EXACT_Q_GAP * max(self._f(), 1e-300)
        else:
            mu = max(self._f(), 1e-300) / max(self.m, 1)
            # the first multipliers: mu / s, except on rows whose slack is below _Z_FLOOR
            # times the median slack (see there)
            kept = [s for s in sv + sw if s.size]
            floor = _Z_FLOOR * float(np.median(np.concatenate(kept))) if kept else 0.0
            zv = [mu / np.maximum(s, floor) for s in sv]
            zw = [mu / np.maximum(s, floor) for s in sw]
        for it in range(1, int(max_iter) + 1):
            gv, gw, gc, sv, sw, solve, safeguarded = self._parts(mu, zv, zw)

            def direction(tv, tw, solve):
                """The Newton direction for the row targets ``t`` (``s z -> t``)."""
                rv = gv - self._rows_t([t_ / s_ for t_, s_ in zip(tv, sv)])
                rw = gw - self._rows_t([t_ / s_ for t_, s_ in zip(tw, sw)])
                dV, dW, dc = solve(rv, rw, gc)
                dsv, dsw = self._slacks(dV, dW)
                dzv = [-(zv[i] * (sv[i] + dsv[i]) - tv[i]) / sv[i] for i in range(k)]
                dzw = [-(zw[i] * (sw[i] + dsw[i]) - tw[i]) / sw[i] for i in range(k)]
                slope = float(np.sum(rv * dV) + np.sum(rw * dW) + gc * dc)
                return (dV, dW, dc), dsv + dsw, dzv + dzw, slope

            def steps(ds, dz, frac):  # the ratio tests over every block's rows at once
                ap = min(1.0, frac * max_step(np.concatenate(sv + sw), np.concatenate(ds)))
                ad = min(1.0, frac * max_step(np.concatenate(zv + zw), np.concatenate(dz)))
                return ap, ad

            def mehrotra(solve):
                """Mehrotra's predictor-corrector step with this Newton solve."""
                ap_full = np.inf
                _, ds, dz, _ = direction([0.0 * s for s in sv], [0.0 * s for s in sw],
                                         solve)
                ap, ad = steps(ds, dz, 1.0)
                gap_aff = sum(float((s + ap * a) @ (z + ad * b))
                              for s, a, z, b in zip(sv + sw, ds, zv + zw, dz))
                sigma = min(1.0, (gap_aff / max(mu * self.m, 1e-300)) ** 3)
                if not self.quadratic:  # after a short step, more centring (_RECENTRE)
                    sigma = max(sigma, min(1.0, _RECENTRE * (1.0 - self._last_ap) ** 2))
                t = [sigma * mu - a * b for a, b in zip(ds, dz)]
                (dV, dW, dc), ds, dz, _ = direction(t[:k], t[k:], solve)
                ap, ad = steps(ds, dz, 0.99)
                if not self.quadratic:
                    # a non-quadratic loss: a line search on the barrier merit at sigma mu
                    # (full steps diverged on logistic problems of nearly separable
                    # classes: iris, one class against the rest, blocks grew to 100);
                    # when the corrector is no descent direction of that merit, the plain
                    # barrier direction (same factor) replaces it
                    mu_t = max(sigma, _SIGMA_MIN) * mu
                    grad_v = gv - self._rows_t([mu_t / s_ for s_ in sv])
                    grad_w = gw - self._rows_t([mu_t / s_ for s_ in sw])
                    slope = float(np.sum(grad_v * dV) + np.sum(grad_w * dW) + gc * dc)
                    if slope >= 0:
                        t = [mu_t * np.ones_like(s_) for s_ in sv + sw]
                        (dV, dW, dc), ds, dz, slope = direction(t[:k], t[k:], solve)
                        ap, ad = steps(ds, dz, 0.99)
                    ap_full = ap
                    ap = self._line_search(ap, dV, dW, dc, mu_t, mu, slope)
                    ad = min(ad, ap)
                return (dV, dW, dc), dz, ap, ad, ap_full

            (dV, dW, dc), dz, ap, ad, ap_full = mehrotra(solve)
            if safeguarded is not None and ap < ap_full / 8:
                # the line search cut the step: an open block's norm crossed its kink;
                # the safeguarded Newton matrix's step instead where it goes further
                alt = mehrotra(safeguarded())
                if alt[2] >= ap:
                    (dV, dW, dc), dz, ap, ad, ap_full = alt
            self._last_ap = ap
            self.V, self.W, self.c0 = self.V + ap * dV, self.W + ap * dW, self.c0 + ap * dc
            self.W[self.linear] = 0.0
            zs = [z + ad * b for z, b in zip(zv + zw, dz)]
            zv, zw = zs[:k], zs[k:]
            self.zv, self.zw = zv, zw  # the cone multipliers (the certificate's start)
            sv, sw = self._slacks(self.V, self.W)
            gap = sum(float(s @ z) for s, z in zip(sv + sw, zv + zw))
            mu = gap / max(self.m, 1)
            # the last decades of the gap with the exact Hessian (a lagged one left the
            # certified gap at 1.7e-6 on a test problem)
            f = self._f()
            self._exact_q = gap <= _EXACT_Q_GAP * max(f, 1e-300)
            # the complementarity gap: the dual residual of near-zero blocks (whose norm's
            # gradient turns with every rounding error) need not follow, the objective does
            if gap <= tol * max(f, 1e-300):
                return it, True
        return max_iter, False

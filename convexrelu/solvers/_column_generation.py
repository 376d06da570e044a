"""Column generation: the global optimum over all patterns from a small working set.

The ReLU program (CVX, docs/mathematics.rst §3.1) over *all* activation patterns is a group lasso
with
``2P`` blocks, ``P`` up to millions. Its dual constraint is ``M(lambda) <= beta`` with
``M`` evaluated pattern by pattern (docs/mathematics.rst §4.2), so (docs/mathematics.rst §8.5):

1. solve the program restricted to a working set ``S`` of patterns (any inner solver);
2. build the dual point ``lambda = -grad l(y_hat)`` (output bias re-fitted, docs/mathematics.rst
§8.3)
   and evaluate ``M(lambda)`` over **every** pattern, streamed in blocks by
   :func:`convexrelu.certificates.dual_constraint` (or, for two features with a free or
   no hidden bias, by the exact angular sweep of
   :func:`convexrelu.certificates._dual.dual_constraint_2d`, which never lists patterns);
3. the certified gap is ``P(S) - max_k D(s_k lambda_k)`` with ``s_k = beta / M(lambda_k)``
   (weak duality over the full pattern set); stop when it is below ``tol * P``;
4. otherwise add the most violating pattern of each of ``n_add`` chunks of the pattern
   set (the maximiser of ``M_i`` is the Frank–Wolfe / column-generation direction) and
   go back to 1. Patterns whose blocks are zero after a restricted solve leave the
   working set at once.

Adding a pattern whose ``M_i > beta`` strictly lowers the restricted optimum, and there
are finitely many patterns, so the loop terminates at the optimum of the full program.

Inner solver. ``inner="auto"`` (default) uses
:class:`~convexrelu.solvers._cg_inner.CompressedReluSolver` for the squared loss with one
output (Gram/QR-compressed loss, cone rows reduced to each cell's facets, every solution
checked against all ``n`` rows), and cvxpy/Clarabel otherwise; when the restricted
program's dense design ``n x (k d_aug)`` has more than ``10^7`` entries (both conic paths
build it), the augmented Lagrangian :class:`~convexrelu.solvers._relu_al.ReluALSolver`
(memory ``O(n k)``). For the squared loss, once
the relative gap is below ``_POLISH_RGAP`` each restricted solution is refined by
:func:`~convexrelu.solvers._cg_inner.polish_support` (Newton on the support with the
binding cone rows as equalities; kept only when feasible and not worse): interior-point
solutions leave the dual constraint violated by ~``1e-6`` relative, which stalled the
certified gap at ~``4e-6``; after the polish it closes to ~``1e-10``. Blocks below
``_DROP_RTOL = 1e-6`` of the largest count as zero (they leave the working set after two
rounds). In the 2-D sweep case the per-round pricing uses
:class:`~convexrelu.certificates._sweep.SweepPricer` (event order sorted once per data
set); the final certificate is always ``dual_constraint_2d``.

Measured (``OMP_NUM_THREADS=1 python benchmarks/bench_column_generation.py``), ``n = 1000``
points in 2-D with a hidden bias (999,002 patterns), ``alpha = 1``, 2-core machine: with
``inner="cvxpy"`` the run was unfinished after 460 s; with ``inner="auto"`` it takes
11-19 s and 35 rounds (10.8 s in a quiet run; certified relative gap ~1.5e-10 over all
patterns; ~0.3-1 s per
restricted solve of ~100 patterns, ~0.15 s per pricing sweep, ~1 s for the final
certified sweep). Before the polish, the row-accumulation fix (``_cg_inner._ROW_RTOL``)
and the qdldl factorisation it took 104 s and stalled at a gap of 4.4e-6.

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact polynomial-time
convex optimization formulations for two-layer networks", ICML 2020.
G. B. Dantzig and P. Wolfe, "Decomposition principle for linear programs", Oper. Res.,
1960 (column generation).
"""

from __future__ import annotations

import numbers
import time
import warnings
from typing import Optional, Union

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn.utils._param_validation import Interval

from .._memory import MemoryBudgetError
from .._warnings import muted_convergence, warn_convergence
from ..certificates._dual import PricingMultipliers
from ..certificates._sweep import SweepPricer
from ..certificates._gap import (centred_dual, dual_point, pattern_correlations,
                                 relative_gap, within_tol)
from ..program import ConvexProgram, ConvexSolution
from ._base import BaseSolver, certificate_text, get_solver
from ._cg_inner import CompressedReluSolver, polish_support, repair_feasibility
from ._relu_al import ReluALSolver, _polisher
from ._restricted_barrier import (RestrictedBarrierSolver, interior_solution,
                                  low_rank_curvature, start_rows_bytes)
from ._restricted_socp import RestrictedSocpSolver

__all__ = ["ColumnGenerationSolver", "column_generation"]

_VIOLATION_RTOL = 1e-9  # M_i > beta (1 + this) counts as a violation
# a neuron found by the local search of a grown fit joins the working set only above
# beta (1 + _SEARCH_RTOL): the last rounds of a digits class added neurons of 1.0003-1.003
# beta, each a restricted solve of the largest program, for 1e-4 of the objective, while the
# fitted network's own search certificate found violations of ~1e-2 all the same. Measured
# (default digits fit, random_state=0, one BLAS thread): 36.1 s -> 29.8 s, the objective
# 0.728874 -> 0.728884, the certificate's violation 8.2e-3 both (3e-3: 27.3 s, 0.728925)
_SEARCH_RTOL = 1e-3
_DROP_RTOL = 1e-6  # blocks below this (relative to the largest) count as zero
_POLISH_RGAP = 1e-2  # polish the restricted solutions once the relative gap is below this
# while the loop's certified relative gap is above this, a quadratic restricted program goes
# to the second-order-cone interior point (RestrictedSocpSolver, accurate to ~1e-8-1e-6
# relative: rounding stalls it there on late rounds), below it to compressed Clarabel
# (1e-10), and the loop never ends on a rough solve (it solves the kept blocks exactly and
# prices again), so the final network is sparse: on diabetes the cone solver taking every
# round left 146 neurons, down to 3.5e-8 of the largest (18 with Clarabel). Dropping the
# rough solves' blocks below 1e-4 (instead of _DROP_RTOL) stalled a test's loop at 2e-7
_ROUGH_RGAP = 1e-2
_ROUGH_TOL = 1e-7  # the cone solver's relative complementarity gap on rough solves
# a rough solve that needs more Newton steps than _SOCP_SLOW_ITER (or fails) hands the rest
# of the loop to Clarabel: at an interpolating alpha (diabetes, alpha = 1, 120-190
# patterns) it needed 60-90 steps and dense factors of 2 k d_a = 4,000 rows (a fit 2.7x
# slower than with Clarabel), where the default alpha's programs need 19-36
_SOCP_SLOW_ITER = 45
_SOCP_MAX_ITER = 60
# ... and so does its second failure (one failure alone does not: with the all-active
# pattern in the sample, whose free bias and the output bias shift the predictions alike,
# one of diabetes's rough programs stalled with a dual residual above 1e-7, and the
# programs after it were solved in 29-31 steps)
_SOCP_MAX_FAILURES = 2
# the loosest complementarity gap (relative) of a restricted barrier solve, for a loop tol
# of 1e-6 and above. Measured (breast cancer, P = 500, alpha = 1e-3, logistic, warm
# starts, one BLAS thread): 281 Newton steps over the loop's seven programs at 1e-10, 243
# at 1e-8, the certified gap of the loop 7e-11 and 9e-10, the objectives within 3e-10
_BARRIER_LOOSEST = 1e-8
# a non-quadratic restricted program's rough solve (while the certified gap is above
# _ROUGH_RGAP) stops the barrier at this complementarity gap, and its blocks below
# _ROUGH_DROP_RTOL of the largest leave the working set (a rough solve's idle blocks are
# not at zero). Measured (digits one-vs-rest, P = 100, alpha = 1e-3, logistic, tol 1e-6,
# one class at a time on a quiet machine, numpy on one BLAS thread and scipy's Cholesky
# factors on two): classes 0 / 1 / 3 50.6 / 61.9 / 65.9 s against
# 50.0 / 71.6 / 70.0 s with exact solves, the same objectives to 1e-8; rough tol 1e-4 or
# 1e-2 within a few %; kept blocks at _DROP_RTOL: 66 s on class 0 (52-57 patterns per
# program instead of 38-40); dropped below 1e-2: 58.6 / 91.1 s (more rounds). Not in a
# loop that prices by a local search (an oracle with ``confirm``: grown fits), where the
# rough points' dual sent the search after neurons the exact ones do not want: the
# default digits fit (random_state=0) went from 34 s to 46 s
_BARRIER_ROUGH_TOL = 1e-3
# _AutoInner._barrier_again tightens the restricted interior point's gap down to this
_BARRIER_TIGHTEST = 1e-13
# a non-quadratic restricted program solved by cvxpy is polished (_AutoInner._polish_cvxpy)
# where its certified gap is above this share of the loop's tol
_CVXPY_POLISH_RGAP = 1e-2
_ROUGH_DROP_RTOL = 1e-3
_BNB_STOP_ABOVE = 1e-3  # branch-and-bound pricing stops at a violation M > beta (1 + this)
#: ... after bounding this fraction more nodes than it had when it found the first one
#: (more violating cells per round, often a closed search; see _BnBOracle)
_BNB_COLLECT = 1.0


# --------------------------------------------------------------------------- oracles
class _PatternOracle:
    """``M(lambda)`` over a listed pattern set, chunk by chunk (docs/mathematics.rst §4.2, §8.5).

    Each chunk is evaluated by :func:`convexrelu.certificates.dual_constraint` (certified
    upper bound, bound-then-refine); the maximum over chunks is ``M`` over the whole set,
    and each chunk's maximiser is a candidate column (after the oracle's first pass, with a
    threshold, every pattern above it as well: ``every_violator``). ``gated=True``
    evaluates the gated dual constraint ``max_i ||X_aug^T D_i lambda||`` instead (exact,
    no cone). The chunks run in parallel through joblib (``n_jobs``, or a Dask cluster under
    ``joblib.parallel_config(backend="dask")``, see :mod:`convexrelu._parallel`); they
    do not depend on ``n_jobs``, so neither do the value and the candidates.
    """

    def __init__(self, patterns, X, *, penalize_bias: bool, n_chunks: int, gated: bool,
                 block_size: int = 8192, n_jobs=None, beta: Optional[float] = None,
                 X_aug: Optional[np.ndarray] = None):
        self.patterns = patterns
        self.X = X
        # the program's augmented data, where given: the pricing reads it instead of a copy
        self.X_aug = X_aug
        self.penalize_bias = penalize_bias
        self.gated = gated
        self.block_size = block_size
        self.n_jobs = n_jobs
        P = patterns.n_patterns
        size = max(1, -(-P // max(1, int(n_chunks))))
        self.chunks = [(s, min(P, s + size)) for s in range(0, P, size)]
        self.exact = bool(patterns.exact)
        # the refinements' multipliers, kept from round to round (warm bounds); values
        # below beta are not refined (only violations and a valid bound are needed)
        self.multipliers = PricingMultipliers()
        self.threshold = None if beta is None else float(beta) * (1 + _VIOLATION_RTOL)
        # refinements made by the earlier rounds: from _dual._compiled_after of them the
        # cone projections run compiled (certificates._dual)
        self.n_refined = 0
        # the preparation of the data shared by every pricing pass (shared_preparation)
        self._prep: dict = {}
        # the first pass lists each chunk's best pattern (a loop from the zero network
        # finds many violators there, and the chunk's others need not be refined to their
        # values); the later ones every violating pattern, so that a round adds all it
        # can (measured, make_regression(10^6, 20) ReLU: two rounds fewer, see
        # _PatternOracle.evaluate_many)
        self.every_violator = False

    def evaluate(self, lam):
        """``(M, candidates)``; candidates are ``(value, index)`` pairs."""
        return self.evaluate_many([self], [lam])[0]

    def evaluate_steps(self, lam):
        """:meth:`evaluate` as a step of a working-set loop run in lock-step with others
        (:func:`_drive`): the loop yields the request and the driver answers the requests
        of all loops over the same patterns at once (:meth:`evaluate_many`)."""
        return (yield (self, lam))

    def joint_key(self) -> tuple:
        """Oracles with equal keys price the same masks the same way (one pass serves
        them all)."""
        return (id(self.patterns), id(self.X), self.penalize_bias, self.gated,
                self.block_size, tuple(self.chunks), self.n_jobs)

    @staticmethod
    def evaluate_many(oracles, lams) -> list:
        """:meth:`evaluate` of each oracle at its dual point (oracles of equal
        :meth:`joint_key`: the one-vs-rest classes or the outputs of one fit), in one pass
        over the masks: each block is unpacked once and the products ``X_aug^T D_i
        lambda`` of all dual points are one matrix product; the refinements, multipliers
        and results are each oracle's own, as if evaluated alone."""
        from .._parallel import map_chunks

        from ..certificates._dual import _shared, shared_preparation

        o = oracles[0]
        lams = [np.asarray(lam, np.float64) for lam in lams]
        if o.gated:
            Xa = o.patterns.augment(o.X) if o.X_aug is None else o.X_aug
            parts = map_chunks(_gated_chunk, o.patterns, o.chunks, Xa,
                               (Xa, lams, o.block_size), o.n_jobs)
        else:
            # the chunks evaluated here share one preparation of the data
            with shared_preparation(o._prep):
                X = np.asarray(o.X, np.float64)  # (one conversion for every chunk)
                Xa = _shared(("augment", X, o.patterns.bias),
                             lambda: o.patterns.augment(X) if o.X_aug is None else o.X_aug)
                parts = map_chunks(_relu_chunk, o.patterns, o.chunks, Xa,
                                   (X, lams, o.penalize_bias, o.block_size,
                                    [(q.multipliers.rows, q.multipliers.faces)
                                     for q in oracles],
                                    [q.threshold for q in oracles],
                                    [q.n_refined for q in oracles],
                                    [q.every_violator for q in oracles]),
                                   o.n_jobs)
            for j, q in enumerate(oracles):
                for part in parts:
                    q.multipliers.rows.update(part[j][1][0])
                    q.multipliers.faces.update(part[j][1][1])
                    q.n_refined += part[j][1][2]
                # after the first pass, every violating pattern is a candidate
                q.every_violator = q.threshold is not None
            parts = [[res for res, _ in part] for part in parts]
        out = []
        for j in range(len(oracles)):
            cands = []
            for part in parts:
                c = part[j]
                cands.extend([] if c is None else c if isinstance(c, list) else [c])
            out.append((max((v for v, _ in cands), default=0.0), cands))
        return out


def _relu_chunk(patterns, start, X, lams, penalize_bias, block_size, warms, thresholds,
                refined_before=None, every_violator=False):
    """For each dual point of ``lams``: a list of ``(value, index)`` candidates, the
    chunk's maximiser (``every_violator``: and every pattern above the threshold) or
    none (an empty chunk), and the chunk's multipliers after the evaluation (its
    ``warms`` entry's rows and faces of the chunk, updated; keyed by index in the whole
    set) with the chunk's number of refinements. ``refined_before``: each dual point's
    refinements in the earlier rounds (``dual_constraints``: when its projections switch
    to the compiled kernel)."""
    from ..certificates._dual import _subset, dual_constraints

    stop = start + patterns.n_patterns
    mults = []
    for rows, faces in warms:
        mult = PricingMultipliers()
        mult.rows = {k - start: v for k, v in _subset(rows, start, stop).items()}
        mult.faces = {k - start: v for k, v in _subset(faces, start, stop).items()}
        mults.append(mult)
    dvs = dual_constraints(patterns, X, lams, penalize_bias=penalize_bias,
                           block_size=block_size, n_jobs=1, multipliers=mults,
                           thresholds=thresholds, refined_before=refined_before,
                           every_violator=every_violator)
    out = []
    for dv, mult in zip(dvs, mults):
        rows = {k + start: v for k, v in mult.rows.items()}
        faces = {k + start: v for k, v in mult.faces.items()}
        best = [] if dv.pattern_index < 0 else \
            [(float(dv.value), start + int(dv.pattern_index))]
        if dv.violators:  # by pattern, its larger sign's value; the maximiser among them
            top = {}
            for v, i in dv.violators:
                top[int(i)] = max(float(v), top.get(int(i), -np.inf))
            best = [(v, start + i) for i, v in sorted(top.items())
                    if not (best and start + i == best[0][1])] + best
        out.append((best, (rows, faces, dv.n_refined)))
    return out


def _gated_chunk(patterns, start, Xa, lams, block_size):
    """For each dual point of ``lams``: ``(max_i ||X_aug^T D_i lambda|| over the chunk,
    its index)`` or None."""
    best = [None] * len(lams)
    L = np.column_stack(lams)
    for s, masks, _ in patterns.iter_blocks(block_size):
        N = np.linalg.norm(pattern_correlations(Xa, masks, L), axis=2)  # (b, k)
        for j in range(len(lams)):
            nrm = N[:, j]
            if nrm.size:
                k = int(np.argmax(nrm))
                if best[j] is None or nrm[k] > best[j][0]:
                    best[j] = (float(nrm[k]), start + s + k)
    return best


class _SweepOracle:
    """Exact ``M(lambda)`` over **all** cells for two features (free or no hidden bias).

    The value is :func:`~convexrelu.certificates._dual.dual_constraint_2d`; candidate
    columns come from the same angular sweep run on groups of centres (one maximiser per
    group), so several violating neurons are found per round. Each maximiser lies on a
    cell boundary; both adjacent cells contain it and are proposed as gates.
    """

    exact = True

    def __init__(self, X, *, bias: bool, n_chunks: int):
        self.X = X
        self.bias = bias
        self.Xa = np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X
        n = X.shape[0]
        size = max(1, -(-n // max(1, int(n_chunks))))
        self.chunks = [(s, min(n, s + size)) for s in range(0, n, size)] if bias else []
        self._pricer = None

    def evaluate(self, lam, *, final: bool = False):
        from ..certificates._dual import dual_constraint_2d

        if final or not self.bias:
            dv = dual_constraint_2d(self.X, lam, bias=self.bias)
            return dv.value, [(dv.value, dv.direction)]
        if self._pricer is None:  # the event order around every centre, sorted once
            self._pricer = SweepPricer(self.X, bias=True)
        values, U, _ = self._pricer.per_centre(lam)
        cands = []
        for s, e in self.chunks:
            k = s + int(np.argmax(values[s:e]))
            u = U[k]
            cands.append((float(values[k]), np.array([u[0], u[1], -float(self.X[k] @ u)])))
        tot = float(np.linalg.norm(self.X.T @ lam))  # the all-active cell, b -> +inf
        if tot > 0:
            u = self.X.T @ lam / tot
            cands.append((tot, np.array([u[0], u[1], 1.0 - float(np.min(self.X @ u))])))
        M = max(v for v, _ in cands)
        return M, cands


class _SearchOracle:
    """Sampled patterns, then a local search beyond them (heuristic pricing).

    When the pattern arrangement is too large to list, the program's patterns are a
    sample, and the optimum over them can be far from the optimum over all patterns
    (docs/mathematics.rst §8.5). This oracle prices by two means:

    * the sampled patterns, exactly (:class:`_PatternOracle`; each chunk's maximiser is
      returned as its gate);
    * a multistart local search for the most violating neurons over the whole
      arrangement (:func:`~convexrelu.certificates.search_violators`, started also from
      the best sampled gates), returning their directions as gates.

    :meth:`evaluate` prices the sample until nothing in it violates the dual constraint
    beyond ``tol``; then the loop calls :meth:`confirm`, which searches. While searches
    find violators (from the start with ``search_first``, for a working set seeded with
    the optimum over the sample), :meth:`evaluate` searches first (a search costs a
    fraction of an exact pass over the sample) and prices the sample once a search finds
    nothing; the loop stops when neither finds a violator within ``tol``. The loop runs on a
    :class:`_GateWorkingSet`, so neurons found by the search join the working set
    although no listed pattern holds them. A value found by the search is a *lower*
    estimate of ``M(lambda)``: the gap of the result is a heuristic, never a proof
    (``exact = False``). The searches share a budget of ``max_searches`` calls and
    ``search_time`` seconds (None: no time limit, so the result does not depend on the
    machine's speed); once it is spent only the sample is priced. A neuron the search
    finds counts only when its value exceeds ``beta (1 + search_tol)`` (the search's own
    resolution, coarser than the certified gap's; ``stats["best_ratio"]`` keeps the largest
    value found, whatever it is).
    """

    exact = False

    def __init__(self, patterns, X, *, beta: float, penalize_bias: bool, n_chunks: int,
                 max_searches: int, search_time: float, n_starts: int = 8,
                 n_samples: int = 256, search_first: bool = False, random_state=None,
                 search_tol: float = 0.0):
        self.listed = _PatternOracle(patterns, X, penalize_bias=penalize_bias,
                                     n_chunks=n_chunks, gated=False, beta=beta)
        self.gates = patterns.gates
        self.Xa = patterns.augment(X)
        self.beta = float(beta)
        self.free_bias = bool(patterns.bias and not penalize_bias)
        self.n_add = max(1, int(n_chunks))
        self.max_searches = int(max_searches)
        self.search_time = None if search_time is None else float(search_time)
        self.n_starts, self.n_samples = int(n_starts), int(n_samples)
        self.search_tol = float(search_tol)
        self.rng = np.random.default_rng(random_state)
        self._starts = None
        self._searched = None  # (dual point, result) of the last search
        self._growing = bool(search_first)  # search before pricing the sample
        self._last = "listed"  # what the last evaluate priced
        self.stats = {"n_searches": 0, "search_time": 0.0, "n_found": 0,
                      "best_ratio": 0.0}

    @property
    def n_refined(self) -> int:
        """The refinements made by the listed patterns' pricing
        (:attr:`_PatternOracle.n_refined`): the history the loop's restricted
        certificates count (certificates._dual._compiled_after)."""
        return self.listed.n_refined

    def _budget_left(self) -> float:
        if self.stats["n_searches"] >= self.max_searches:
            return 0.0
        if self.search_time is None:
            return np.inf
        return self.search_time - self.stats["search_time"]

    def _price_listed(self, lam):
        """``(M over the sampled patterns, candidates as (value, gate))``, a step of a
        lock-step loop (:func:`_drive`)."""
        self._last = "listed"
        M, cands = yield from self.listed.evaluate_steps(lam)
        out = [(v, self.gates[:, k]) for v, k in cands]
        top = sorted(out, key=lambda c: -c[0])[:self.n_starts]
        self._starts = np.array([g for _, g in top]) if top else None
        return M, out

    def _search(self, lam):
        """``(best value found, candidates as (value, gate))`` by local search."""
        from ..certificates._search import search_violators

        t = time.perf_counter()
        self._last = "search"
        lam = np.asarray(lam, np.float64)
        lam_c = lam - lam.mean() if self.free_bias else lam
        found = search_violators(self.Xa, lam_c, free_bias=self.free_bias,
                                 starts=self._starts, n_starts=self.n_starts,
                                 n_samples=self.n_samples, top_k=self.n_add,
                                 time_limit=None if self.search_time is None
                                 else max(self._budget_left(), 1e-3),
                                 random_state=int(self.rng.integers(2**31 - 1)))
        # values at the loop's own dual point (lam_c differs from lam only by the rounding
        # of the output bias's optimality condition)
        cands = [(float(c.sign * lam @ np.maximum(self.Xa @ c.direction, 0.0)), c.direction)
                 for c in found]
        best = max((v for v, _ in cands), default=0.0)
        self.stats["n_searches"] += 1
        self.stats["search_time"] += time.perf_counter() - t
        self.stats["best_ratio"] = max(self.stats["best_ratio"], best / self.beta)
        if self.search_tol > 0:  # below the search's resolution: not a new round
            cands = [(v, g) for v, g in cands if v > self.beta * (1 + self.search_tol)]
            best = max((v for v, _ in cands), default=0.0)
        n_viol = sum(v > self.beta * (1 + _VIOLATION_RTOL) for v, _ in cands)
        self.stats["n_found"] += n_viol
        self._growing = n_viol > 0
        self._searched = (lam.copy(), (best, cands))
        return best, cands

    def evaluate(self, lam):
        """``(M, candidates as (value, gate))``: a search while searches find violators,
        else the sampled patterns."""
        return _drive([self.evaluate_steps(lam)])[0]

    def confirm(self, lam, beta: float):
        """The other means of pricing, when the last :meth:`evaluate` found no violator
        beyond ``tol``: the sample after a search, a search after the sample (``(0.0,
        [])`` once the search budget is spent)."""
        return _drive([self.confirm_steps(lam, beta)])[0]

    def evaluate_steps(self, lam):
        """:meth:`evaluate` as steps of a lock-step loop (:func:`_drive`)."""
        if self._growing and self._budget_left() > 0:
            best, cands = self._search(lam)
            if self._growing:
                return best, cands
        return (yield from self._price_listed(lam))

    def confirm_steps(self, lam, beta: float):
        """:meth:`confirm` as steps of a lock-step loop (:func:`_drive`)."""
        if self._last == "search":
            self._growing = False
            return (yield from self._price_listed(lam))
        if self._budget_left() <= 0:
            return 0.0, []
        if self._searched is not None and np.array_equal(self._searched[0], lam):
            # this very dual point was searched just before the sample was priced (it
            # found nothing to add): the same answer, not a second search
            return self._searched[1]
        return self._search(lam)


class _BnBOracle:
    """A proven ``M(lambda)`` over **all** cells by branch and bound, no pattern listed.

    Each evaluation runs :func:`~convexrelu.certificates._bnb.dual_constraint_bnb` in
    decision mode: it stops once a neuron above ``beta (1 + 1e-3)`` has been found and
    it has bounded as many nodes again as it needed to find it (``collect``; the
    candidate columns are the best maxima found, one per cell), or once the proven upper
    bound falls below ``beta (1 + tol / 4)``; otherwise it closes (small violations are
    then exact, so a violation the restricted solve leaves in its own cells shows in the
    gap). The value returned is the proven upper bound, so the loop's gap is certified
    whichever way the search stopped, and the loop stops only once ``M <= beta (1 + tol
    / 4)`` is proven (docs/mathematics.rst §8.5). Used past enumeration up to data rank
    10 (tests against enumeration on small problems).

    Search first: each evaluation starts with a multistart local search
    (:func:`~convexrelu.certificates.search_violators`, from the last candidates); when
    it finds neurons above ``beta (1 + 1e-3)`` they are the round's columns and no branch
    and bound runs (the value returned is then ``inf``: that round certifies nothing, and
    the loop's certified gap stays the best of the rounds priced by branch and bound).
    The branch and bound runs once the search finds nothing, so the loop still stops only
    on a proof.

    Why ``collect``: late in the loop the search finds nothing and the branch and bound
    finds its first violation only after 10,000-36,000 nodes, one cell at a time; going
    on for as many nodes again returns 20-25 violating cells, and the last rounds close
    (``M`` proven). On ``python -m benchmarks bnb --cg 6:300 --n-jobs 2`` (rank 6,
    ``n = 300``, two workers) the loop stopped at a certified gap of 0.16 after 49 rounds
    and 304 s without it, and reaches the optimum (gap 1e-7) in 37 rounds and 296.5 s
    with it (README).
    """

    exact = True

    def __init__(self, X, *, bias: bool, penalize_bias: bool, beta: float, tol: float,
                 time_limit: Optional[float] = None, random_state=0, n_jobs=None,
                 search_first: bool = True):
        self.X = X
        self.n_jobs = n_jobs
        self.search_first = bool(search_first)
        self.rng = np.random.default_rng(random_state)
        self.stats = {"n_searches": 0, "search_rounds": 0, "search_time": 0.0}
        self.bias = bool(bias)
        self.free = self.bias and not penalize_bias
        self.beta = float(beta)
        self.tol = float(tol)
        self.time_limit = time_limit
        self.random_state = random_state
        self.n_calls = 0
        self.time = 0.0
        self._starts = None  # the previous call's candidates: the next call's first starts

    def evaluate(self, lam, *, final: bool = False):
        from ..certificates._bnb import dual_constraint_bnb

        lam = np.asarray(lam, dtype=np.float64)
        centred = abs(float(lam.sum())) <= 1e-12 * (1.0 + float(np.abs(lam).sum()))
        if self.free and not centred:
            # M = inf (constant neurons are unpenalised); price with the centred point
            lam_b, M = lam - lam.mean(), np.inf
        else:
            lam_b, M = lam, None
        Xa = np.hstack([self.X, np.ones((self.X.shape[0], 1))]) if self.bias else self.X
        if self.search_first and not final:
            cands = self._search(Xa, lam, lam_b)
            if cands:
                return np.inf, cands
        t = max(self.tol / 4, 1e-12)
        res = dual_constraint_bnb(self.X, lam_b, bias=self.bias, penalize_bias=not self.free,
                                  tol=t, threshold=self.beta * (1 + t),
                                  stop_above=self.beta * (1 + _BNB_STOP_ABOVE),
                                  collect=_BNB_COLLECT, starts=self._starts,
                                  time_limit=self.time_limit,
                                  random_state=self.random_state, n_jobs=self.n_jobs)
        self.n_calls += 1
        self.time += res.time
        if M is None:
            M = float(res.upper)
        cands = []
        self._starts = np.array([x for _, x, _ in res.info["candidates"]]) \
            if res.info["candidates"] else None
        for v, x, sgn in res.info["candidates"]:
            if v <= self.beta * (1 + _VIOLATION_RTOL) and cands:
                break  # not a violation: the loop would not add it (sorted, best first)
            cands.extend((v, g) for g in _vertex_gates(Xa, x, sgn * lam_b)[:1])
        return M, cands

    def _search(self, Xa, lam, lam_b) -> list:
        """Columns ``(value, gate)`` above ``beta (1 + 1e-3)`` found by a local search
        (empty when it finds none); its directions start the next call."""
        from ..certificates._search import search_violators

        t = time.perf_counter()
        found = search_violators(Xa, lam_b, free_bias=self.free, starts=self._starts,
                                 n_starts=8, top_k=16,
                                 random_state=int(self.rng.integers(2**31 - 1)))
        cands = []
        for c in found:
            v = float(c.sign * lam @ np.maximum(Xa @ c.direction, 0.0))
            if v > self.beta * (1 + _BNB_STOP_ABOVE):
                cands.extend((v, g) for g in _vertex_gates(Xa, c.direction,
                                                           c.sign * lam_b)[:1])
        self.stats["n_searches"] += 1
        self.stats["search_time"] += time.perf_counter() - t
        if cands:
            self.stats["search_rounds"] += 1
            self._starts = np.array([c.direction for c in found])
        return cands


def _vertex_gates(Xa: np.ndarray, x: np.ndarray, slam: np.ndarray) -> list:
    """A central gate of a cell whose closure holds ``x`` (empty if none is found).

    A branch-and-bound maximiser often lies where several hyperplanes ``x_i^T g = 0``
    meet. Every cell whose closure holds ``x`` has a maximum of at least the value at
    ``x`` (``x`` satisfies the cell's closed cone constraints, and the tied rows add
    nothing there); the preferred one turns the tied rows with ``slam_i > 0`` on and the
    others off, the fallbacks are those of :func:`_cell_gates`. The gate returned is the
    cell's centre (largest normalised margin, a small LP), not a point near ``x``: the
    feasibility repair of the loop moves blocks along their gate and divides by its
    margins.
    """
    t = Xa @ x
    rn = np.linalg.norm(Xa, axis=1)
    tie = (np.abs(t) <= 1e-9 * rn * max(float(np.linalg.norm(x)), 1e-300)) & (rn > 0)
    signs = np.where(t > 0, 1.0, -1.0)
    signs[tie] = np.where(slam[tie] > 0, 1.0, -1.0)
    tries = [signs] + [np.where(Xa @ g > 0, 1.0, -1.0) for g in _cell_gates(Xa, x)] \
        if np.any(tie) else [signs]
    for sg in tries:
        g = _central_gate(Xa, rn, sg)
        if g is not None:
            return [g]
    return []


def _central_gate(Xa, rn, signs):
    """``argmax_{||g||_inf <= 1} min_i signs_i x_i^T g / ||x_i||`` (None if not positive)."""
    from scipy.optimize import linprog

    nz = rn > 0
    A = signs[nz, None] * Xa[nz] / rn[nz, None]
    d = Xa.shape[1]
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.hstack([-A, np.ones((A.shape[0], 1))]),
                  b_ub=np.zeros(A.shape[0]), bounds=[(-1.0, 1.0)] * d + [(None, 1.0)],
                  method="highs")
    if res.status != 0 or -res.fun <= 1e-12:
        return None
    g = res.x[:d]
    if not np.all(np.where(signs[nz] > 0, Xa[nz] @ g > 0, Xa[nz] @ g < 0)):
        return None
    return g


def _bnb_can_price(X, bias: bool, max_rank: Optional[int] = None) -> bool:
    """Whether :class:`_BnBOracle` is the pricing oracle for ``X`` beyond enumeration."""
    from ..certificates._certify import _BNB_MAX_RANK, _data_rank

    return _data_rank(X, bias) <= (_BNB_MAX_RANK if max_rank is None else max_rank)


def _cell_gates(Xa: np.ndarray, x: np.ndarray, n_random: int = 8) -> list:
    """Strict interior points of cells whose closure holds ``x``.

    ``x`` on no row's hyperplane is its own cell's gate. Otherwise the tied rows (``X_a x
    = 0``: they add nothing to ``lambda^T (X_a x)_+``, so ``x`` attains its value in every
    adjacent cell, whose closed cone holds it) are put all on one side, then all on the
    other, by a step along their normalised sum. Where neither is a cell (several tied
    rows pointing different ways, as on integer-valued data such as pixels), steps along
    fixed pseudo-random directions give cells with some of the tied rows on each side (at
    most two gates in all). Only with no such cell found (``n_random`` tries) is the list
    empty.
    """
    t = Xa @ x
    rn = np.linalg.norm(Xa, axis=1)
    tie = np.abs(t) <= 1e-9 * rn * max(float(np.linalg.norm(x)), 1e-300)
    tie &= rn > 0
    if not np.any(tie):
        return [x]
    free = ~tie & (rn > 0)
    margin = float(np.min(np.abs(t[free]))) if np.any(free) else 1.0

    def step(d, want=None):
        """``x + eps d`` if it keeps the free rows' signs and leaves no tied row at zero
        (and, with ``want``, puts every tied row on that side), else None."""
        eps = 0.5 * margin / (float(rn.max()) * max(float(np.linalg.norm(d)), 1e-300))
        g = x + eps * d
        tg = Xa @ g
        side = tg[tie] if want is None else want * tg[tie]
        ok_tie = np.all(side > 0) if want is not None else \
            np.all(np.abs(side) > 1e-12 * rn[tie] * float(np.linalg.norm(g)))
        return g if ok_tie and np.all(np.sign(tg[free]) == np.sign(t[free])) else None

    d = (Xa[tie] / rn[tie, None]).sum(axis=0)
    out = [g for g in (step(sgn * d, sgn) for sgn in (1.0, -1.0)) if g is not None]
    if not out:
        rng = np.random.default_rng(0)
        for _ in range(int(n_random)):
            g = step(rng.standard_normal(x.shape[0]))
            if g is not None:
                out.append(g)
                if len(out) == 2:
                    break
    return out


# --------------------------------------------------------------------------- working sets
class _IndexWorkingSet:
    """A working set of indices into a listed pattern set."""

    def __init__(self, program: ConvexProgram, oracle):
        self.full = program
        self.d_aug = program.d_aug
        self.patterns = program.patterns
        self.idx = np.zeros(0, dtype=int)
        self.idle = np.zeros(0, dtype=int)
        self._lookup = None
        self.oracle = oracle

    def _index_of_gate(self, g):
        """Index of the pattern ``1[X_aug g > 0]`` in the full set (``-1`` if absent)."""
        if self._lookup is None:
            w = np.random.default_rng(0).integers(1, 2**61, self.patterns.packed.shape[1],
                                                  dtype=np.int64)
            keys = self.patterns.packed.astype(np.int64) @ w
            order = np.argsort(keys, kind="stable")
            self._lookup = (w, keys[order], order)
        w, keys, order = self._lookup
        Xa = self.full.X_aug
        m = Xa @ g > 0
        m[~np.any(Xa != 0, axis=1)] = False
        row = np.packbits(m, bitorder="little")
        key = row.astype(np.int64) @ w
        lo, hi = np.searchsorted(keys, [key, key + 1])
        for j in order[lo:hi]:
            if np.array_equal(self.patterns.packed[j], row):
                return int(j)
        return -1

    def add(self, cands, beta: float, n_max: int) -> int:
        new = []
        for v, key in sorted(cands, key=lambda c: -c[0]):
            if v <= beta * (1 + _VIOLATION_RTOL):
                break
            keys = [key] if np.ndim(key) == 0 else \
                [self._index_of_gate(g) for g in _cell_gates(self.full.X_aug, key)]
            new.extend(int(k) for k in keys if k >= 0)
        new = [k for k in dict.fromkeys(new) if k not in set(self.idx.tolist())][:n_max]
        self.idx = np.concatenate([self.idx, np.asarray(new, dtype=int)])
        self.idle = np.concatenate([self.idle, np.zeros(len(new), dtype=int)])
        return len(new)

    def program(self) -> ConvexProgram:
        return self.full.restrict(self.idx)

    def keep(self, active: np.ndarray) -> None:
        self.idle = np.where(active, 0, self.idle + 1)
        k = self.idle < 1
        self.idx, self.idle = self.idx[k], self.idle[k]

    def embed(self, V, W):
        P, da = self.full.n_patterns, self.full.d_aug
        VF, WF = np.zeros((P, da)), np.zeros((P, da))
        VF[self.idx], WF[self.idx] = V, W
        return VF, WF, self.patterns


class _GateWorkingSet:
    """A working set of gates (no listed pattern set: the 2-D sweep, the branch and bound
    and the local search).

    A gate whose blocks are zero after a restricted solve leaves at once (the restricted
    optimum does not change, so it still decreases strictly from round to round and the
    loop cannot cycle; a pricing step that needs the gate again finds it). Kept for a
    second round, idle gates made the restricted programs of a grown fit about twice as
    large as their supports. Measured (default fits, one BLAS thread, random_state=0):
    digits 72.9 s -> 52.8 s (the restricted solves 46.9 s -> 26.3 s; objective 0.728876
    -> 0.728874), make_classification(5000, 20) 21.0 s -> 14.7 s (objective up 9e-7
    relative), diabetes 4.1 s -> 2.9 s (1451.95 -> 1451.85); breast cancer, wine and iris
    the same objectives. Listed patterns (:class:`_IndexWorkingSet`) leave the same way:
    the breast cancer row of ``python -m benchmarks scale`` (P = 500, logistic) 25.5 s ->
    20.4 s, the same objective.
    """

    def __init__(self, make_program, Xa: np.ndarray, X: np.ndarray, bias: bool):
        self.make_program = make_program
        self.Xa, self.X, self.bias = Xa, X, bias
        self.G = np.zeros((Xa.shape[1], 0))
        self.idle = np.zeros(0, dtype=int)
        self._pats = None

    def add(self, cands, beta: float, n_max: int) -> int:
        from ..arrangements import ActivationPatterns

        new = []
        for v, x in sorted(cands, key=lambda c: -c[0]):
            if v <= beta * (1 + _VIOLATION_RTOL):
                break
            new.extend(_cell_gates(self.Xa, x))
        if not new:
            return 0
        before = self.G.shape[1]
        G = np.hstack([self.G, np.array(new[:2 * n_max]).T])
        pats = ActivationPatterns.from_gates(self.X, G, bias=self.bias)
        # from_gates keeps the first gate of each pattern, in order
        self.idle = np.concatenate([self.idle, np.zeros(pats.n_patterns - before, dtype=int)])
        self.G, self._pats = pats.gates, pats
        return pats.n_patterns - before

    def program(self) -> ConvexProgram:
        return self.make_program(self._pats)

    def keep(self, active: np.ndarray) -> None:
        from ..arrangements import ActivationPatterns

        self.idle = np.where(active, 0, self.idle + 1)
        k = self.idle < 1
        self.G, self.idle = self.G[:, k], self.idle[k]
        self._pats = ActivationPatterns.from_gates(self.X, self.G, bias=self.bias)

    def embed(self, V, W):
        return V, W, self._pats


# --------------------------------------------------------------------------- the loop
def _block_sizes(program: ConvexProgram, V, W) -> np.ndarray:
    return np.maximum(program.regularizer.norms(V), program.regularizer.norms(W))


class _Clock:
    """Seconds a solve has run. Alone it runs from its creation; run in lock-step with
    others (:func:`_drive`) it runs only while its own steps do, plus the joint pricing
    that served it."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.since: Optional[float] = time.perf_counter()

    def __call__(self) -> float:
        running = 0.0 if self.since is None else time.perf_counter() - self.since
        return self.spent + running

    def pause(self) -> None:
        if self.since is not None:
            self.spent += time.perf_counter() - self.since
            self.since = None

    def resume(self) -> None:
        if self.since is None:
            self.since = time.perf_counter()


def _drive(loops, clocks=None) -> list:
    """Run generators of pricing steps (working-set loops, :func:`_run_steps`) in
    lock-step and return their results.

    A loop yields ``(oracle, lam)`` where it needs a listed pattern set priced
    (:meth:`_PatternOracle.evaluate_steps`); once every unfinished loop has yielded (or
    finished), the requests on the same masks are answered together by
    :meth:`_PatternOracle.evaluate_many` (one pass over the masks for all the one-vs-rest
    classes or outputs of a fit), and the loops resume, one after the other. With one
    loop this is the plain loop. ``clocks``: one :class:`_Clock` per loop, running only
    during that loop's steps and the pricing that served it.
    """
    clocks = [_Clock() for _ in loops] if clocks is None else clocks
    for c in clocks:
        c.pause()
    out = [None] * len(loops)
    answers = {j: None for j in range(len(loops))}
    while answers:
        asked = []
        for j in sorted(answers):
            clocks[j].resume()
            try:
                asked.append((j, loops[j].send(answers[j])))
            except StopIteration as stop:
                out[j] = stop.value
            clocks[j].pause()
        groups: dict = {}
        for j, (oracle, lam) in asked:
            groups.setdefault(oracle.joint_key(), []).append((j, oracle, lam))
        answers = {}
        for group in groups.values():
            t = time.perf_counter()
            res = _PatternOracle.evaluate_many([o for _, o, _ in group],
                                               [lam for *_, lam in group])
            t = time.perf_counter() - t
            for (j, _, _), r in zip(group, res):
                answers[j] = r
                clocks[j].spent += t
    for c in clocks:
        c.resume()
    return out


def _ask(oracle, name: str, *args):
    """``oracle.<name>(*args)``, as steps of a lock-step loop where the oracle offers
    them (``<name>_steps``, a generator of pricing requests)."""
    steps = getattr(oracle, name + "_steps", None)
    if steps is None:
        return getattr(oracle, name)(*args)
    return (yield from steps(*args))


def _run(ws, oracle, **kwargs):
    """The column-generation loop; returns the pieces of the solution."""
    return _drive([_run_steps(ws, oracle, **kwargs)])[0]


def _run_steps(ws, oracle, *, loss, y, alpha, n_samples, output_bias, free_bias, formulation,
               inner: BaseSolver, tol, max_iter, n_add, verbose, initial=None, polish=True,
               time_limit=None, clock=None):
    """The column-generation loop as a generator of pricing requests (:func:`_drive`);
    returns the pieces of the solution. ``clock``: the :class:`_Clock` of the solve that
    runs the loop (its time is the solve's own when run in lock-step with others); the
    loop's time counts from its start."""
    clock = _Clock() if clock is None else clock
    base = clock()

    def elapsed() -> float:
        return clock() - base
    gated = formulation == "gated_relu"
    z = np.zeros(n_samples)
    lam, delta = dual_point(loss, z, y, output_bias=output_bias)
    primal = float(loss.value(z + delta, y))
    best_dual, history = -np.inf, []
    gap = np.inf
    V = W = None
    c0 = delta
    converged, n_inner, stalled, added = False, 0, False, 0
    rough = False  # the last restricted solve was a rough one (_ROUGH_RGAP)
    rough_over = False  # a rough solve's pricing was within tol: exact solves from then on
    if hasattr(inner, "loop_tol"):
        inner.loop_tol = float(tol)
    if initial is not None:
        ws.add(initial, -np.inf, len(initial))
    rnd = 0
    for rnd in range(1, int(max_iter) + 1):
        closing = False  # this round's solve: the exact one after a rough solve within tol
        if rnd > 1 or initial is None or ws_size(ws) == 0:
            M, cands = yield from _ask(oracle, "evaluate", lam)
            s, dual = loss.best_dual_scale(lam, y, np.inf if M == 0 else alpha / M)
            # a heuristic oracle's earlier values were priced on fewer patterns: only the
            # current round's dual value counts
            best_dual = dual if hasattr(oracle, "confirm") else max(best_dual, dual)
            gap = primal - best_dual
            history.append((rnd - 1, elapsed(), primal, gap, ws_size(ws)))
            if verbose:
                print(f"round {rnd - 1}: {ws_size(ws)} patterns, primal {primal:.10e}, "
                      f"M/alpha {M / max(alpha, 1e-300):.8f}, gap {gap:.3e}")
            if within_tol(gap, primal, tol):
                if isinstance(oracle, _SweepOracle):  # confirm with the public evaluation
                    M, _ = oracle.evaluate(lam, final=True)
                    s, dual = loss.best_dual_scale(lam, y, np.inf if M == 0 else alpha / M)
                    best_dual = dual
                    gap = primal - best_dual
                if within_tol(gap, primal, tol) and hasattr(oracle, "confirm"):
                    # nothing listed violates: look beyond the listed patterns
                    M2, extra = (yield from _ask(oracle, "confirm", lam, alpha))
                    if M2 > M:
                        M, cands = M2, extra
                        _, best_dual = loss.best_dual_scale(lam, y, alpha / M)
                        gap = primal - best_dual
                        history.append((rnd - 1, elapsed(), primal, gap,
                                        ws_size(ws)))
                if within_tol(gap, primal, tol) and not rough:
                    converged = True
                    break
            if time_limit is not None and elapsed() > time_limit:
                break
            if within_tol(gap, primal, tol):
                # after a rough solve: its kept blocks exactly, then price again; no rough
                # solve after this (its pruned working set could otherwise alternate with
                # the exact one's, each re-adding what the other dropped)
                added, rough_over, closing = 0, True, True
            else:
                added = ws.add(cands, alpha, n_add)
                if added == 0 and hasattr(oracle, "confirm"):
                    # nothing listed violates, yet the gap is above tol (the restricted
                    # solve's accuracy): the other pricing (a search) may still find
                    # violators
                    M2, extra = (yield from _ask(oracle, "confirm", lam, alpha))
                    if M2 > M:
                        M = M2
                        _, best_dual = loss.best_dual_scale(lam, y, alpha / M)
                        gap = primal - best_dual
                        history.append((rnd - 1, elapsed(), primal, gap,
                                        ws_size(ws)))
                    added = ws.add(extra, alpha, n_add)
                if added == 0 and not rough:
                    # nothing violates beyond rounding: the inner accuracy limits
                    stalled = True
                    break
        # a rough restricted solve while the certified gap is large (an exact one after a
        # rough solve that left nothing to add)
        rough = bool(hasattr(inner, "rough") and not gated and np.isfinite(gap)
                     and added != 0 and not rough_over and gap > _ROUGH_RGAP * abs(primal)
                     and (loss.constant_curvature(y) is not None
                          or not hasattr(oracle, "confirm")))
        if hasattr(inner, "rough"):
            inner.rough = rough
        _hand_refinements(inner, oracle)
        prog = ws.program()
        V, W, c0, z, primal, it = _restricted_solve(inner, prog, loss, y, alpha, gated,
                                                    polish, gap)
        # whether the inner solver took the rough path (its exact paths need no re-solve)
        rough = rough and bool(getattr(inner, "solved_rough", True))
        n_inner += it
        lam, delta = dual_point(loss, z, y, output_bias=output_bias)
        # a block is active by its effect on the predictions, ||D_i X_aug b_i||
        size = prog.block_effects(V, W)
        drop = _ROUGH_DROP_RTOL if rough and loss.constant_curvature(y) is None \
            else _DROP_RTOL
        active = size > drop * max(float(size.max(initial=0.0)), 1e-300)
        VF, WF, pats = ws.embed(V, W)
        ws.keep(active)
        if closing and not rough and within_tol(primal - best_dual, primal, tol):
            # the exact solve over the kept blocks is within tol of the dual bound already
            # certified over all patterns (any feasible network's objective minus it bounds
            # its gap): no pricing again (measured, make_regression(10^5, 20) ReLU: a fifth
            # pricing pass of 2.5 s in a 14 s solve). The returned dual point is this
            # solve's own (a warm start for what follows, as after the time limit's exact
            # re-solve below); the gap is the earlier point's certified bound's
            gap = primal - best_dual
            converged = True
            history.append((rnd, elapsed(), primal, gap, ws_size(ws)))
            break
    else:
        if isinstance(oracle, _SweepOracle):
            M, _ = oracle.evaluate(lam, final=True)
        else:
            M, _ = yield from _ask(oracle, "evaluate", lam)
        s, dual = loss.best_dual_scale(lam, y, np.inf if M == 0 else alpha / M)
        best_dual = max(best_dual, dual)
        gap = primal - best_dual
        converged = within_tol(gap, primal, tol)
        history.append((rnd, elapsed(), primal, gap, ws_size(ws)))
    if hasattr(inner, "rough"):
        inner.rough = False
        if rough and V is not None and ws_size(ws):
            # the loop stopped (rounds, time) right after a rough restricted solve: the
            # kept blocks solved exactly, so the network carries no interior-point dust
            # (kept if within 1e-6 of the rough objective: dropped blocks were idle)
            _hand_refinements(inner, oracle)
            prog = ws.program()
            V2, W2, c2, z2, p2, it = _restricted_solve(inner, prog, loss, y, alpha, gated,
                                                       polish, 0.0)
            n_inner += it
            if p2 <= primal + 1e-6 * abs(primal):
                V, W, c0, primal = V2, W2, c2, p2
                lam, _ = dual_point(loss, z2, y, output_bias=output_bias)
                gap = primal - best_dual
                converged = within_tol(gap, primal, tol)
                VF, WF, pats = ws.embed(V, W)
    if V is None:  # the zero network is optimal
        VF, WF, pats = ws.embed(np.zeros((0, ws.d_aug)), np.zeros((0, ws.d_aug))) \
            if isinstance(ws, _IndexWorkingSet) else (None, None, None)
    return dict(V=VF, W=WF, patterns=pats, c0=c0, primal=primal, gap=gap, lam=lam,
                converged=bool(converged), stalled=stalled, rounds=rnd, n_inner=n_inner,
                history=history,
                time=elapsed(), exact=bool(oracle.exact))


def _hand_refinements(inner, oracle) -> None:
    """Give the inner solver the pricing's refinement count before a restricted solve
    (its certificate counts them as its own history: certificates._dual._compiled_after)."""
    if hasattr(inner, "refined_before"):
        inner.refined_before = int(getattr(oracle, "n_refined", 0))


def _restricted_solve(inner, prog, loss, y, alpha, gated, polish, gap):
    """One restricted solve, its blocks moved into their cones and (a quadratic loss, near
    the optimum) polished; ``(V, W, c0, z, primal, inner iterations)``."""
    with muted_convergence(), warnings.catch_warnings():
        # the restricted solve is judged by the certificate over all patterns
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        sol = inner.solve(prog)
    V, W = np.asarray(sol.V, np.float64), np.asarray(sol.W, np.float64)
    if not gated:
        signs = np.hstack([prog.masks, prog.masks])
        B, _ = repair_feasibility(prog.X_aug, signs, np.vstack([V, W]),
                                  np.hstack([prog.patterns.gates] * 2))
        V, W = B[:prog.n_patterns], B[prog.n_patterns:]
    c0 = float(np.ravel(sol.output_bias)[0]) if prog.fit_output_bias else 0.0
    z = prog.predict(V, W, c0)
    primal = float(loss.value(z, y)) + alpha * prog.penalty(V, W)
    if polish and not gated and loss.constant_curvature(y) is not None and \
            (not np.isfinite(gap) or within_tol(gap, primal, _POLISH_RGAP)):
        V, W, c0, z, primal = _polish(prog, V, W, c0, z, primal, loss, y, alpha)
    return V, W, c0, z, primal, int(sol.n_iter)


def _polish(prog, V, W, c0, z, primal, loss, y, alpha):
    """Active-set Newton polish of the restricted solution; kept only if it is feasible
    and does not increase the objective (its optimality is judged by the certificate)."""
    try:
        out = polish_support(prog, V, W, c0, drop_rtol=_DROP_RTOL)
    except (np.linalg.LinAlgError, ValueError):  # pragma: no cover - defensive
        out = None
    if out is None:
        return V, W, c0, z, primal
    V2, W2, c2 = out
    signs = np.hstack([prog.masks, prog.masks])
    B, _ = repair_feasibility(prog.X_aug, signs, np.vstack([V2, W2]),
                              np.hstack([prog.patterns.gates] * 2))
    V2, W2 = B[:prog.n_patterns], B[prog.n_patterns:]
    z2 = prog.predict(V2, W2, c2)
    p2 = float(loss.value(z2, y)) + alpha * prog.penalty(V2, W2)
    if p2 <= primal:
        return V2, W2, c2, z2, p2
    return V, W, c0, z, primal


def ws_size(ws) -> int:
    return int(ws.idx.size) if isinstance(ws, _IndexWorkingSet) else int(ws.G.shape[1])


def _solution(res, *, n_samples, formulation, tol, max_iter, d_aug) -> ConvexSolution:
    V, W = res["V"], res["W"]
    if V is None:
        V = W = np.zeros((0, d_aug))
    if res["stalled"]:
        hint = ("No pattern violates the dual constraint beyond rounding, so the accuracy of "
                "the restricted solves limits the gap: loosen tol (or, calling the solver "
                "directly, tighten its inner_tol).")
    else:
        hint = ("Increase max_iter (rounds; now {}) or n_add (columns added per round), "
                "raise time_limit, or loosen tol.".format(max_iter))
    return ConvexSolution(
        V=V, W=W, output_bias=float(res["c0"]), objective=res["primal"] / n_samples,
        dual=np.asarray(res["lam"], np.float64),
        status="optimal" if res["converged"] else "max_iter_reached",
        n_iter=max(1, int(res["rounds"])), solve_time=res["time"],
        gap=res["gap"] / n_samples, formulation=formulation,
        info={"rel_gap": relative_gap(res["gap"], res["primal"]), "history": res["history"],
              "rounds": res["rounds"], "inner_iterations": res["n_inner"],
              "patterns": res["patterns"], "patterns_exact": res["exact"], "tol": tol,
              "certificate": certificate_text(res["exact"]), "hint": hint})


class _AutoInner(BaseSolver):
    """``inner="auto"``: the compressed facet-row Clarabel solver for the squared loss
    with one output and the ``"relu"`` formulation, cvxpy/Clarabel otherwise; the
    augmented Lagrangian (:class:`~convexrelu.solvers._relu_al.ReluALSolver`, linear in
    ``n`` per iteration, memory ``O(n k)``) when the restricted program's dense design
    ``n x (k d_aug)`` has more than ``_MAX_DESIGN`` entries: both conic paths build it
    (and ``2 k n`` cone rows of ``d_aug`` entries), which is what exhausted memory at
    ``n = 15,000`` (a 500 MB allocation); and, for a non-quadratic loss, when the cvxpy
    problem would exceed the memory budget (``convexrelu.set_config``).

    Below the budget the conic paths stay: on a restricted program of wine (n=133,
    d_aug=14, logistic) the augmented Lagrangian took 36 s where cvxpy took 16 s for the
    same certified loop.

    A non-quadratic loss with a curvature (logistic, Huber) goes to the dense barrier
    method (:class:`~convexrelu.solvers._restricted_barrier.RestrictedBarrierSolver`)
    from ``_BARRIER_MIN_DESIGN`` design entries ``n (1 + k d_aug)`` on (below, cvxpy),
    while its Newton matrix has at most ``_BARRIER_MAX_N`` rows and at most
    ``_BARRIER_ROWS_PER_SAMPLE`` per sample, and its dense pieces fit the memory budget;
    it also takes a quadratic restricted program on which Clarabel fails, and one whose
    design exceeds ``_MAX_DESIGN`` (:meth:`_large_quadratic`: before the augmented
    Lagrangian); a non-quadratic
    one whose barrier solve runs out of Newton steps is solved again by cvxpy (the better
    point is kept). While the loop's certified gap is large (``rough``, set by the loop,
    ``_ROUGH_RGAP``), the barrier solves a non-quadratic program only to
    ``_BARRIER_ROUGH_TOL``, and a quadratic program goes to the second-order-cone
    interior point
    (:class:`~convexrelu.solvers._restricted_socp.RestrictedSocpSolver`) first, until one
    of its solves needs more than ``_SOCP_SLOW_ITER`` Newton steps or a second one fails
    (``_SOCP_MAX_FAILURES``). Measured (one
    BLAS thread, 20 sampled patterns, logistic, 0.03 alpha_max, free hidden bias, the same
    objective to 8 digits): breast cancer 2.4 s against 5.2 s for
    cvxpy + Clarabel and 12.8 s for the augmented Lagrangian; digits (class 9 against the
    rest, ``d_aug = 65``) 52 s against 157 s for cvxpy + Clarabel.
    """

    # Newton matrix rows: a 288 MB matrix. Raised from 4,000: breast cancer at alpha = 1e-3
    # (569 samples, 65 patterns, 4,031 rows) took 25 s in the barrier (certified 6.7e-11)
    # where the augmented Lagrangian stopped at a relative gap of 0.73 after 42 s and
    # cvxpy's SCS fallback ran for minutes; the scale benchmark's ReLU row went from
    # timed out (> 300 s) to 138 s
    _BARRIER_MAX_N = 6000
    # ... and this many where the loss's Hessian stays as its factors (fewer samples than
    # Newton rows: low_rank_curvature; its n x n Woodbury matrix is what each step
    # factors). Measured (digits, class 1 against the rest, P = 100, alpha = 1e-3,
    # logistic, one BLAS thread): its third restricted program (52 patterns, 6,761 rows)
    # went to the augmented Lagrangian, which left the loop at a certified gap of 0.51
    # after 463 s (time limit 600 s); with the barrier 51 Newton steps, 20.7 s, and the
    # whole solve certified 4.1e-9 in 103 s. Raised from 10,000 to 16,000 where the
    # pieces every step uses fit the memory budget (start_rows_bytes; the whole Newton
    # matrix, the fallback of a failed reduced solve, only where it fits as well): class
    # 8's fifth program (85 patterns, 11,051 rows) went to the augmented Lagrangian, which
    # did not converge; with the barrier (and the rough solves: 78 patterns) 39 Newton
    # steps, 16.5 s, and the class certified 6.8e-9 in 113 s
    _BARRIER_MAX_N_LOW_RANK = 16_000
    # below this many design entries n (1 + k d_aug) (design_entries) cvxpy + Clarabel
    # takes the program (its point then polished: _polish_cvxpy). Lowered from 30,000 (set
    # when whole iris fits took 4.4-4.8 s with the barrier on every restricted program
    # against 1.6-2.0 s) after measuring again (one BLAS thread, random_state=0; the
    # restricted programs of default CV fits, each solved by both to the same objective):
    # breast cancer, 2 patterns of 340 samples (21,400 entries), 0.05-0.13 s against
    # 0.69-1.37 s for cvxpy; wine, 9,000-15,000 entries, 0.06-0.09 s against 0.10-0.33 s;
    # iris, 3,200-11,300 entries, 0.05-0.18 s against 0.06-0.23 s (cvxpy faster on some
    # of 3,000-5,000). Whole CV fits, alternately with the 30,000 threshold: breast cancer
    # 40.8 / 28.5 s -> 4.2 / 3.3 s, wine 21.3 / 16.2 s -> 9.2 / 7.6 s, iris 15.6 / 14.3 s
    # -> 11.9 / 9.6 s; their plain fits within 0.3 s. Programs of a few samples (4 patterns
    # of 40 samples: 680 entries) stay with cvxpy, the reference path
    _BARRIER_MIN_DESIGN = 2_000
    # nor beyond this many Newton rows per sample: the barrier's factor costs (2 k d)^3 / 3
    # where Clarabel's grows with n (k d)^2 (breast cancer, 20 patterns, 1,241 rows for 426
    # samples: 2.4 s against 5.2 s for cvxpy; 60 patterns, 3,721 rows: 34.8 s against 14.7 s,
    # before the rank-k Hessians and the open-block safeguard). Raised from 5 to 8: breast
    # cancer at alpha = 1e-3 (569 samples, 56 patterns, 3,473 rows), where Clarabel fails and
    # SCS takes over, the barrier solved it in 17.4 s (certified 4.8e-11) and cvxpy took 200 s
    # to an inaccurate point 1.7% higher (relative gap 0.30)
    _BARRIER_ROWS_PER_SAMPLE = 8

    _MAX_DESIGN = 10_000_000  # entries (80 MB in float64)
    _BARRIER_ACCEPT_RGAP = 1e-6  # a converged barrier solve's certificate kept (no cvxpy)

    # the loop certifies every restricted solution over all patterns: no certificate over
    # the restricted program here, nor in the quadratic paths below (two per solve cost 7 %
    # of a default diabetes fit)
    _certify_solution = False

    def __init__(self, tol: float) -> None:
        self.tol = tol
        self._fast = CompressedReluSolver(tol=tol)
        self._fast._certify_solution = False
        self._cvxpy = None
        self._al = None
        self._barrier = None
        self._barrier_tol = None  # its tol on exact solves (rough ones: _BARRIER_ROUGH_TOL)
        self._socp = None
        self._socp_slow = False
        self._socp_failures = 0
        self._last = None
        # set by the loop: a quadratic program may go to the cone solver, a non-quadratic
        # one is solved by the barrier to _BARRIER_ROUGH_TOL
        self.rough = False
        self.solved_rough = False  # read by the loop: the last solve was a rough one
        self.loop_tol = 0.0  # set by the loop: its certified relative gap tol
        # set by the loop: its pricing's refinements so far (the barrier's certificate
        # projects compiled once they are many: certificates._dual._compiled_after)
        self.refined_before = 0

    def _warm(self, program):
        """The previous restricted solution mapped onto ``program``'s patterns (the loop
        adds and drops patterns between rounds; the kept ones start where they were)."""
        if self._last is None:
            return None
        prev, sol = self._last
        if prev.n_samples != program.n_samples or prev.d_aug != program.d_aug or \
                np.shape(sol.V) != (prev.n_patterns, prev.d_aug):
            return None
        rows = {r.tobytes(): i for i, r in enumerate(prev.patterns.packed)}
        V0, W0 = np.zeros((program.n_patterns, program.d_aug)), \
            np.zeros((program.n_patterns, program.d_aug))
        for j, r in enumerate(program.patterns.packed):
            i = rows.get(r.tobytes())
            if i is not None:
                V0[j], W0[j] = sol.V[i], sol.W[i]
        return ConvexSolution(V=V0, W=W0, output_bias=sol.output_bias, objective=np.nan,
                              dual=np.zeros(0), status="warm_start", n_iter=0,
                              solve_time=0.0)

    # bytes per (sample, pattern, column) of a cvxpy restricted problem (the estimators'
    # measured figure): above the memory budget the augmented Lagrangian solves it instead
    # (make_classification(20000, 20): a 5.1 GiB allocation inside cvxpy)
    _CVXPY_BYTES_PER_ENTRY = 500
    # and never beyond this many bytes, whatever the budget: on digits (a restricted
    # program of 32 patterns, 4,161 Newton rows, past the barrier's limit) the cvxpy solve
    # reached 2.8 GB of resident memory and was killed under a 4 GiB address-space cap
    _CVXPY_MAX_BYTES = 2**30

    def _cvxpy_fits(self, program) -> bool:
        from .._memory import _budget_bytes

        size = program.n_samples * program.n_patterns * program.d_aug
        return self._CVXPY_BYTES_PER_ENTRY * size <= min(_budget_bytes(),
                                                         self._CVXPY_MAX_BYTES)

    def _barrier_fits(self, program) -> bool:
        """Whether the dense barrier takes this restricted program (a non-quadratic loss,
        :meth:`_barrier_can`, and where it is faster than cvxpy)."""
        if program.loss.constant_curvature(program.y) is not None:
            return False
        design = RestrictedBarrierSolver.design_entries(program)
        return self._BARRIER_MIN_DESIGN <= design and self._barrier_takes(program)

    def _barrier_takes(self, program) -> bool:
        """:meth:`_barrier_can`, with at most ``_BARRIER_ROWS_PER_SAMPLE`` Newton rows per
        sample."""
        N = 1 + 2 * program.n_patterns * program.d_aug
        return (self._barrier_can(program)
                and N <= self._BARRIER_ROWS_PER_SAMPLE * program.n_samples)

    def _large_quadratic(self, program) -> bool:
        """Whether a quadratic restricted program's dense design exceeds ``_MAX_DESIGN``
        (no conic path) and the barrier takes it (its loss Hessian formed once, the cone
        rows a few per dimension: make_regression(100000, 20), P = 100 at 0.1 alpha_max,
        19-27 patterns per restricted program, one BLAS thread: 10-16 s per solve, the
        whole loop 121 s to a certified 1.3e-12, where the augmented Lagrangian's loop
        did not finish in 600 s)."""
        return (program.n_samples * program.n_patterns * program.d_aug > self._MAX_DESIGN
                and self._barrier_takes(program))

    @staticmethod
    def _newton_program(program) -> bool:
        """A ReLU program of one output whose loss is smooth with a curvature: what the
        dense barrier and the active-set Newton polish of a non-quadratic loss take."""
        return (program.formulation == "relu" and program.n_outputs == 1
                and program.loss.smooth and program.loss.curvature(
                    np.zeros(program.n_samples), program.y) is not None)

    def _barrier_can(self, program) -> bool:
        """Whether the dense barrier can solve this restricted program at all (one output,
        a smooth loss with a curvature, at most ``_BARRIER_MAX_N`` Newton rows, or
        ``_BARRIER_MAX_N_LOW_RANK`` where its loss Hessian stays as its factors, its dense
        pieces within the memory budget)."""
        from .._memory import _budget_bytes

        if not self._newton_program(program):
            return False
        kd, n = program.n_patterns * program.d_aug, program.n_samples
        N = 1 + 2 * kd
        steps, whole = start_rows_bytes(program)
        if low_rank_curvature(n, kd):
            # the whole Newton matrix only where it fits (the barrier checks)
            return N <= self._BARRIER_MAX_N_LOW_RANK and steps <= _budget_bytes()
        return N <= self._BARRIER_MAX_N and steps + whole <= _budget_bytes()

    def _socp_fits(self, program) -> bool:
        """Whether the second-order-cone interior point takes this (quadratic, one output)
        restricted program: its dense pieces within the memory budget."""
        from .._memory import _budget_bytes

        return (program.formulation == "relu" and program.n_outputs == 1
                and RestrictedSocpSolver.memory_bytes(program) <= _budget_bytes())

    def _solve_socp(self, program):
        """The second-order-cone interior point's solve; ``None`` when it fails or stops
        short (compressed Clarabel then solves the program)."""
        if self._socp_slow:
            return None
        if self._socp is None:
            self._socp = RestrictedSocpSolver(tol=_ROUGH_TOL, max_iter=_SOCP_MAX_ITER)
            self._socp._certify_solution = False
        try:
            with muted_convergence(), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                sol = self._socp.solve(program)
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            sol = None
        failed = sol is None or sol.status != "optimal"
        self._socp_failures += failed
        if self._socp_failures >= _SOCP_MAX_FAILURES or (
                not failed and sol.n_iter > _SOCP_SLOW_ITER):
            # programs on which it is slow (many active blocks: an interpolating alpha)
            # stay slow for this loop: compressed Clarabel from here on
            self._socp_slow = True
        return None if failed else sol

    _again = None  # the tighter solve of _barrier_again, while _solve_barrier runs

    def _solve_barrier(self, program):
        self._again = None
        if self._barrier is None:
            # the complementarity gap it closes: 1e-2 of the loop's tol (set before the
            # loop's first solve), from this solver's tol up to _BARRIER_LOOSEST (the
            # barrier's certificate does not tighten much below ~1e-8 whatever its gap:
            # see RestrictedBarrierSolver._certificate_tol)
            self._barrier = RestrictedBarrierSolver(
                tol=max(self.tol, 1e-10, min(_BARRIER_LOOSEST, 1e-2 * self.loop_tol)))
        if self._barrier_tol is None:
            self._barrier_tol = self._barrier.tol
        # while the loop's certified gap is large, a non-quadratic program only to
        # _BARRIER_ROUGH_TOL (the loop solves its last program exactly)
        rough = self.rough and program.loss.constant_curvature(program.y) is None
        self._barrier.tol = max(_BARRIER_ROUGH_TOL, self._barrier_tol) if rough \
            else self._barrier_tol
        # its certificate over the restricted program decides only whether cvxpy solves a
        # non-quadratic program again (_accept_barrier): not computed where cvxpy cannot
        # (digits one-vs-rest, P = 100: 1-2 % of a class's time)
        self._barrier._certify_solution = bool(
            program.loss.constant_curvature(program.y) is None and self._cvxpy_fits(program))
        self._barrier.refined_before = self.refined_before
        with muted_convergence(), warnings.catch_warnings():
            # judged by the loop's certificate over all patterns
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                sol = self._barrier.solve(program, self._warm(program))
            except (np.linalg.LinAlgError, MemoryBudgetError):
                # a failed factor (a reduced solve's where the whole matrix does not fit
                # the budget), or a pass over every row that does not fit it: the paths
                # below (cvxpy, or the augmented Lagrangian where cvxpy does not fit)
                return None
        self.solved_rough = self.solved_rough or rough
        out = self._accept_barrier(program, sol)
        # its own point kept (RestrictedBarrierSolver._state): the first solve's, or the
        # tighter one's (_barrier_again)
        self._from_barrier = out is sol or out is self._again
        self._again = None
        return out

    def _accept_barrier(self, program, sol):
        """The barrier's solution where :meth:`_barrier_accepted`, else the better of its
        active-set polish and (a non-quadratic program that fits) cvxpy's solve."""
        # "optimal": its certificate over the restricted program within 1e-7 (the barrier's
        # certificate tol; on digits one solve stopped at 2.9e-8 after 40 Newton steps, 5.5 s,
        # and a cvxpy re-solve took minutes). A solve that converged but certified a gap
        # within _BARRIER_ACCEPT_RGAP is kept too: the loop's certificate over all patterns
        # judges it, and on digits a cvxpy re-solve of a 15-pattern program certified at
        # 1.02e-7 took 431 s (the whole fit 598 s instead of 116 s)
        if self._barrier_accepted(program, sol):
            return sol
        # a converged solve whose certificate did not follow: the interior point again, to
        # 1e-2 of its gap, before anything slower (an imbalanced logistic program, 1 %
        # positives of 2,000 samples, 20 patterns: certified 5.4e-6; again 1.1e-9 in 0.4 s,
        # the objective cvxpy's re-solve reached in 93 s)
        again = self._barrier_again(program, sol)
        if again is not None:
            if self._barrier_accepted(program, again):
                return again
            if again.objective <= sol.objective:
                sol = again
        # the complementarity gap closed while the certificate did not (an all-active
        # block with a free hidden bias still moving, its residual falling ~7 % per step),
        # or the Newton steps ran out: the active-set Newton polish from the barrier's point
        pol = self._newton_polish(program, sol, self._barrier)
        if pol is not None and pol.objective <= sol.objective:
            sol = pol
            if self._barrier_accepted(program, sol):
                return sol
        if program.loss.constant_curvature(program.y) is not None or \
                not self._cvxpy_fits(program):
            return sol
        # cvxpy's solve (polished as every cvxpy point of a non-quadratic loss), if better
        ref = self._polish_cvxpy(program, self._solve_cvxpy(program, None))
        if ref.objective < sol.objective:
            # cvxpy's point is an exact solve (a rough request or not)
            self.solved_rough = False
            return ref
        return sol

    def _barrier_again(self, program, sol):
        """The restricted interior point from ``sol`` to 1e-2 of its last gap, or None
        (it stopped at its step limit, its gap is at the floor, or it failed)."""
        held = self._barrier.tol
        if sol.status != "not_converged" or held <= _BARRIER_TIGHTEST or (
                self._barrier_tol is not None and held > self._barrier_tol):
            return None  # (a rough solve: loose by design, judged by the loop)
        self._barrier.tol = max(held * 1e-2, _BARRIER_TIGHTEST)
        try:
            with muted_convergence(), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self._again = self._barrier.solve(program, sol)
            return self._again
        except (np.linalg.LinAlgError, MemoryBudgetError):
            return None
        finally:
            self._barrier.tol = held

    def _barrier_accepted(self, program, sol) -> bool:
        """Whether a barrier (or polished) solution is kept without cvxpy."""
        rel = sol.info.get("rel_gap")
        return bool(sol.status == "optimal" or program.loss.constant_curvature(program.y)
                    is not None or not self._cvxpy_fits(program) or (
                        sol.status == "not_converged" and rel is not None
                        and np.isfinite(rel) and rel <= self._BARRIER_ACCEPT_RGAP))

    def _newton_polish(self, program, sol, solver):
        """The active-set Newton polish (:func:`~convexrelu._polish.polish_support`, true
        active set) of a barrier or cvxpy solution, certified over the restricted program
        by ``solver`` as every solve is; None when it cannot polish. Measured (digits, one
        class against the rest, a 9-pattern logistic program whose barrier solve stopped
        at a certified 8.9e-5 after 56 Newton steps, 2.0 s): 0.15 s to 6e-13, the
        objective 5e-7 lower, where the cvxpy re-solve that followed took 40 s and was no
        better."""
        t0 = time.perf_counter()
        V0, W0 = np.asarray(sol.V, np.float64), np.asarray(sol.W, np.float64)
        c0 = float(np.ravel(sol.output_bias)[0]) if program.fit_output_bias else 0.0
        out = _polisher(program)(V0, W0, c0)
        if out is None:
            return None
        V, W, c = out
        pol = interior_solution(program, V, W, c if program.fit_output_bias else 0.0,
                                True, 0, t0, dict(sol.info, polished=True))
        pol.n_iter, pol.solve_time = sol.n_iter, sol.solve_time + pol.solve_time
        pol.info.pop("rel_gap", None)
        with muted_convergence(), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # judged as the solve is
            return solver._finish(program, pol)

    def _polish_cvxpy(self, program, sol):
        """cvxpy's solution of a non-quadratic program (one output, a loss with a
        curvature), or its active-set Newton polish where cvxpy's certified gap is above
        ``_CVXPY_POLISH_RGAP`` times the loop's tol and the polish certifies a smaller gap
        over the restricted program at an objective no higher (the polish alone can end
        lower but worse certified: a Huber program, 1.5e-4 against 1.5e-6).

        A conic solver's point is accurate in its objective, not in its predictions, and
        the certificate's dual point is the loss's gradient there. Measured: the loop over
        a test's 4 given patterns of 40 samples (logistic, ``tol=1e-6``) stopped at a
        certified 2.8e-5 with a ConvergenceWarning ("the accuracy of the restricted
        solves limits the gap"); with the polish at 1.7e-11, its objective 7e-11 lower
        (relative)."""
        rel = sol.info.get("rel_gap")
        rel = None if rel is None or not np.isfinite(rel) else float(rel)
        if (not self._newton_program(program)
                or program.loss.constant_curvature(program.y) is not None
                or (rel is not None and rel <= _CVXPY_POLISH_RGAP * self.loop_tol)):
            return sol
        pol = self._newton_polish(program, sol, self._cvxpy)
        if pol is None or pol.objective > sol.objective:
            return sol
        prel = pol.info.get("rel_gap")
        if rel is not None and (prel is None or not prel < rel):
            return sol
        return pol

    def _solve_cvxpy(self, program, warm_start):
        if self._cvxpy is None:
            self._cvxpy = get_solver("cvxpy", tol=self.tol)
        with warnings.catch_warnings():
            # cvxpy's own "Solution may be inaccurate" on a restricted solve is not for the
            # user: the status table accepts or refuses the point and the loop's
            # certificate over all patterns judges it (one warning per fit at most)
            warnings.filterwarnings("ignore", message="Solution may be inaccurate",
                                    category=UserWarning)
            return self._cvxpy.solve(program, warm_start)

    def _solve(self, program, warm_start=None):
        # a quadratic program's rough request holds whatever path solves it; a
        # non-quadratic program is solved roughly only by the barrier (_solve_barrier)
        self.solved_rough = bool(self.rough and program.loss.constant_curvature(program.y)
                                 is not None)
        self._from_barrier = False
        sol = self._solve_one(program, warm_start)
        if not self._from_barrier and self._barrier is not None:
            # solved by another path (or the barrier's point replaced): the barrier's kept
            # state is not this solution's, and no later solve resumes from it
            self._barrier._state = None
        # the next restricted program's warm start (the barrier's and the augmented
        # Lagrangian's), mapped onto its patterns by _warm
        self._last = (program, sol)
        return sol

    def _solve_one(self, program, warm_start=None):
        quadratic = (program.formulation == "relu" and program.n_outputs == 1
                     and program.loss.constant_curvature(program.y) is not None)
        if self._barrier_fits(program) or (quadratic and self._large_quadratic(program)):
            sol = self._solve_barrier(program)
            if sol is not None:
                return sol
        if quadratic and self.rough and self._socp_fits(program):
            sol = self._solve_socp(program)
            if sol is not None:
                return sol
        if (program.formulation == "relu" and program.loss.smooth
                and (program.n_samples * program.n_patterns * program.d_aug
                     > self._MAX_DESIGN
                     or (not quadratic and not self._cvxpy_fits(program)))):
            if self._al is None:
                # the polish closes the restricted gap to rounding; 1e-10 is below it
                self._al = ReluALSolver(tol=max(self.tol, 1e-9))
            with muted_convergence(), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                return self._al.solve(program, warm_start or self._warm(program))
        if quadratic:
            try:
                return self._fast.solve(program)
            except RuntimeError:
                # Clarabel's NumericalError on a dense compressed block (measured:
                # make_regression(20000, 20, noise=10), 32 sampled patterns; the barrier
                # solved it in 20 s)
                sol = self._solve_barrier(program) if self._barrier_can(program) else None
                if sol is None:
                    raise
                return sol
        return self._polish_cvxpy(program, self._solve_cvxpy(program, warm_start))


def _inner_solver(inner, inner_tol: float) -> BaseSolver:
    if isinstance(inner, BaseSolver):
        return inner
    if inner == "auto":
        return _AutoInner(inner_tol)
    if inner == "column_generation":
        raise ValueError("inner='column_generation' would recurse; pick another solver "
                         "(e.g. 'cvxpy').")
    return get_solver(inner, tol=inner_tol)


_CG_CONSTRAINTS = {
    "tol": [Interval(numbers.Real, 0, 1, closed="neither")],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "n_add": [Interval(numbers.Integral, 1, None, closed="left")],
    "inner_tol": [Interval(numbers.Real, 0, 1, closed="neither")],
    "verbose": ["verbose"],
    "time_limit": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "n_jobs": [numbers.Integral, None],
}


# --------------------------------------------------------------------------- public API
class ColumnGenerationSolver(BaseSolver):
    """Solve a program over a huge pattern set by column generation (docs/mathematics.rst §8.5).

    Solves the restricted program over a working set with ``inner``, certifies the
    result over **all** of the program's patterns (streamed in blocks, or by the exact
    2-D sweep when the program has two features, exact patterns and a free or no hidden
    bias), adds the most violating patterns and repeats until the certified relative
    gap is at most ``tol``.

    .. math::

        \\text{stop when}\\quad P(S) - \\max_k \\mathcal D\\big(\\tfrac{\\beta}{M(\\lambda_k)}
        \\lambda_k\\big) \\le \\mathrm{tol}\\cdot P(S),

    with ``P(S)`` the objective of the restricted solution (a feasible point of the full
    program) and ``lambda_k`` the dual points of the rounds (weak duality).

    Parameters
    ----------
    inner : str or BaseSolver, default="auto"
        Solver of the restricted programs: ``"auto"`` (the compressed facet-row solver
        for the squared loss with one output and the ``"relu"`` formulation, cvxpy
        otherwise, the dense barrier for logistic and Huber programs of mid size and for
        squared-loss programs whose dense design exceeds ``10^7`` entries, the augmented
        Lagrangian for larger ones) or any name of :func:`get_solver`.
    tol : float, default=1e-6
        Relative duality-gap tolerance over all patterns.
    max_iter : int, default=100
        Column-generation rounds.
    n_add : int, default=16
        Candidate columns per round (one per chunk of the pattern set).
    inner_tol : float, default=1e-10
        Tolerance given to a named inner solver.
    verbose : int, default=0
    n_jobs : int or None, default=None
        Chunks of the pattern set priced in parallel by joblib (``None``: one worker
        unless in a ``joblib.parallel_config`` context); under
        ``joblib.parallel_config(backend="dask")`` they run on a Dask cluster. The result
        does not depend on ``n_jobs``.

    Notes
    -----
    The returned solution lives on the program's full pattern set and is sparse:
    ``info["support"]`` lists the patterns with nonzero blocks. ``warm_start`` seeds the
    working set with the support of a previous solution of the same program.

    References
    ----------
    M. Pilanci and T. Ergen, "Neural networks are convex regularizers", ICML 2020.
    """

    _loss_required_attr = ("value", "gradient", "dual_objective", "max_dual_scale")
    _formulations = ("relu", "gated_relu")

    _parameter_constraints = {**_CG_CONSTRAINTS, "inner": [str, BaseSolver]}

    def __init__(self, inner: Union[str, BaseSolver] = "auto", tol: float = 1e-6,
                 max_iter: int = 100, n_add: int = 16, inner_tol: float = 1e-10,
                 verbose: int = 0, time_limit: Optional[float] = None, n_jobs=None) -> None:
        self.inner = inner
        self.tol = tol
        self.max_iter = max_iter
        self.n_add = n_add
        self.inner_tol = inner_tol
        self.verbose = verbose
        self.time_limit = time_limit
        self.n_jobs = n_jobs

    def _solve(self, program: ConvexProgram, warm_start=None) -> ConvexSolution:
        initial = None
        if warm_start is not None:
            V0, W0 = np.asarray(warm_start.V), np.asarray(warm_start.W)
            if V0.shape == (program.n_patterns, program.d_aug):
                initial = np.flatnonzero(_block_sizes(program, V0, W0) > 0)
        return self._solve_from(program, initial)

    def _solve_from(self, program: ConvexProgram, initial=None) -> ConvexSolution:
        """Column generation starting from the working set ``initial`` (indices)."""
        return _drive([self._solve_from_steps(program, initial)])[0]

    def _solve_from_steps(self, program: ConvexProgram, initial=None, clock=None):
        """:meth:`_solve_from` as a generator of pricing requests (:func:`_drive`), so that
        the loops of several programs over the same patterns price them in one pass."""
        if program.n_outputs != 1:
            raise ValueError(f"ColumnGenerationSolver handles one output; the program has "
                             f"{program.n_outputs}. Fit one program per output.")
        inner = _inner_solver(self.inner, self.inner_tol)
        free_bias = program.regularizer.free
        oracle = _oracle_for(program, self.n_add, self.n_jobs)
        ws = _IndexWorkingSet(program, oracle)
        cands = None if initial is None or len(initial) == 0 else \
            [(np.inf, int(j)) for j in initial]
        res = yield from _run_steps(
            ws, oracle, loss=program.loss, y=program.y, alpha=program.alpha,
            n_samples=program.n_samples, output_bias=centred_dual(program),
            free_bias=free_bias, formulation=program.formulation, inner=inner, tol=self.tol,
            max_iter=self.max_iter, n_add=self.n_add, verbose=self.verbose, initial=cands,
            time_limit=self.time_limit, clock=clock)
        sol = _solution(res, n_samples=program.n_samples, formulation=program.formulation,
                        tol=self.tol, max_iter=self.max_iter, d_aug=program.d_aug)
        sol.info["support"] = np.flatnonzero(_block_sizes(program, sol.V, sol.W) > 0)
        sol.info.pop("patterns")
        return sol


def solve_grown(program: ConvexProgram, *, tol: float = 1e-6, max_iter: int = 100,
                n_add: int = 16, inner_tol: float = 1e-10, max_searches: int = 20,
                search_time: float = 10.0, search_tol: float = _SEARCH_RTOL, initial=None,
                warm_start=None, random_state=None, time_limit: Optional[float] = None,
                verbose: int = 0) -> ConvexSolution:
    """The ReLU program over a sampled pattern set, grown by a local search.

    Runs the working-set loop on gates (:class:`_GateWorkingSet`) with the pricing of
    :class:`_SearchOracle`: every round prices the program's (sampled) patterns; when none
    violates the dual constraint beyond ``tol``, a local search looks for violating
    neurons over the whole arrangement and adds them. The result is the optimum over an
    adaptively grown pattern set: its objective is at most the optimum over the sampled
    patterns (up to ``tol``), and its gap is a heuristic (``info["patterns_exact"]`` is
    False and ``info["certificate"]`` says so).

    Parameters
    ----------
    program : ConvexProgram
        The ``"relu"`` program over the sampled patterns (one output, smooth loss).
    tol, max_iter, n_add, inner_tol, verbose, time_limit
        As in :class:`ColumnGenerationSolver`.
    max_searches : int, default=20
        Local searches at most.
    search_time : float or None, default=10.0
        Seconds for all the searches together; None: no time limit (deterministic for a
        given ``random_state``).
    search_tol : float, default=1e-3
        A neuron the search finds joins the working set only when it violates the dual
        constraint by more than this (relative): smaller violations, at or below the
        local search's own resolution, do not start another round. The sampled patterns
        are priced to ``tol`` as ever; ``info["search"]["best_ratio"]`` is the largest
        ``M / alpha`` any search found, and the fitted network's certificate
        (:func:`~convexrelu.certify`) reports its own search's violation.
    initial : array-like of shape (d_aug, k), optional
        Gates that seed the working set, e.g. those of the support of the optimum over the
        sampled patterns; the loop then searches before pricing the sample again. By
        default (and no ``warm_start``) the ``n_add`` sampled patterns of largest gated
        correlation ``||(X_aug^T D_i lambda_0)_pen||`` at the zero network's dual point
        ``lambda_0`` (the same search-first loop).
    warm_start : ConvexSolution, optional
        A previous result of this function on the same data: its support's gates seed the
        working set (with ``initial``, both).
    random_state : int or None
        Seed of the searches.

    Returns
    -------
    ConvexSolution
        Blocks over ``info["patterns"]`` (the final working set, an
        :class:`~convexrelu.arrangements.ActivationPatterns`); ``info["search"]`` holds the
        searches' counts, time and best ``M / alpha`` found.
    """
    kwargs = dict(tol=tol, max_iter=max_iter, n_add=n_add, inner_tol=inner_tol,
                  max_searches=max_searches, search_time=search_time, search_tol=search_tol,
                  random_state=random_state, time_limit=time_limit, verbose=verbose)
    return solve_grown_columns([program], initial=[initial], warm_start=[warm_start],
                               **kwargs)[0]


def solve_grown_columns(programs, *, initial=None, warm_start=None, **kwargs) -> list:
    """:func:`solve_grown` of several programs over the same sampled patterns (the
    one-vs-rest classes or the outputs of one fit), run in lock-step so that the products
    with the masks are shared: the first working sets come from one pass over the sample
    (the gated correlations of every program's zero-network dual point), and the sample's
    pricing at the programs' dual points is one pass whenever several loops price it
    (:func:`_drive`). Each program's restricted solves and local searches are its own, and
    each result is what :func:`solve_grown` returns for that program alone.

    Parameters
    ----------
    programs : sequence of ConvexProgram
        ``"relu"`` programs with one output each, over the same patterns of the same data.
    initial, warm_start : sequence, optional
        One entry (or None) per program, as in :func:`solve_grown`.
    **kwargs
        The other parameters of :func:`solve_grown`, shared by all programs.

    Returns
    -------
    list of ConvexSolution
    """
    programs = list(programs)
    k = len(programs)
    initial = [None] * k if initial is None else list(initial)
    warm_start = [None] * k if warm_start is None else list(warm_start)
    for p in programs:
        if p.n_outputs != 1 or p.formulation != "relu":
            raise ValueError(f"solve_grown handles the 'relu' formulation with one output; "
                             f"got formulation={p.formulation!r} with {p.n_outputs} outputs.")
    n_add = kwargs.get("n_add", 16)
    # the first working sets: the sample's largest gated correlations at the zero network
    # (the exact pricing of the whole sample cost 0.25 s per digits class), one pass over
    # the masks for all programs; measured (one BLAS thread, random_state 0 and 1,
    # against that pricing): digits 36.0 / 31.0 s against 35.2 / 32.9 s with objectives
    # 0.72887 / 0.72895 against 0.72916 / 0.72919; diabetes 2.1 / 2.9 s against 2.3 /
    # 3.1 s, wine and iris a quarter faster with the same objectives,
    # make_classification(5000, 20) 7.3 s against 13.6 s, its objective 5e-5 higher
    fresh = [j for j in range(k) if initial[j] is None and (
        warm_start[j] is None or warm_start[j].info.get("patterns") is None
        or not warm_start[j].info["patterns"].n_patterns)]
    seeds = dict(zip(fresh, _correlation_seeds_columns([programs[j] for j in fresh], n_add)))
    clocks = [_Clock() for _ in programs]
    loops = [_grown_steps(p, initial[j], warm_start[j], seeds.get(j), clocks[j], **kwargs)
             for j, p in enumerate(programs)]
    return _drive(loops, clocks)


def _grown_steps(program, initial, warm_start, first, clock, *, tol: float = 1e-6,
                 max_iter: int = 100, n_add: int = 16, inner_tol: float = 1e-10,
                 max_searches: int = 20, search_time: float = 10.0,
                 search_tol: float = _SEARCH_RTOL, random_state=None,
                 time_limit: Optional[float] = None, verbose: int = 0):
    """One program's :func:`solve_grown`, as a generator of pricing requests
    (:func:`_drive`); ``first``: the gates of its first working set when neither
    ``initial`` nor ``warm_start`` gives one."""
    from ..arrangements import ActivationPatterns

    free_bias = program.bias and not program.penalize_bias
    X, bias = program.X, program.bias

    def make_program(pats):
        return ConvexProgram(X, program.y, pats, loss=program.loss, alpha=program.alpha,
                             bias=bias, penalize_bias=program.penalize_bias,
                             fit_output_bias=program.fit_output_bias)

    seeds = [] if initial is None else list(np.asarray(initial, np.float64).T)
    prev = None if warm_start is None else warm_start.info.get("patterns")
    if first is not None:
        seeds = list(np.asarray(first).T)
    if prev is not None and prev.n_patterns and prev.n_samples == program.n_samples:
        used = _block_sizes(make_program(prev), np.asarray(warm_start.V),
                            np.asarray(warm_start.W)) > 0
        seeds += list(prev.gates[:, used].T)
    oracle = _SearchOracle(program.patterns, X, beta=program.alpha,
                           penalize_bias=not free_bias, n_chunks=n_add,
                           max_searches=max_searches, search_time=search_time,
                           search_first=bool(seeds), random_state=random_state,
                           search_tol=search_tol)
    ws = _GateWorkingSet(make_program, program.X_aug, X, bias)
    initial = [(np.inf, g) for g in seeds] or None
    res = yield from _run_steps(
        ws, oracle, loss=program.loss, y=program.y, alpha=program.alpha,
        n_samples=program.n_samples, output_bias=centred_dual(program), free_bias=free_bias,
        formulation="relu", inner=_inner_solver("auto", inner_tol), tol=tol,
        max_iter=max_iter, n_add=n_add, verbose=verbose, initial=initial,
        time_limit=time_limit, clock=clock)
    sol = _solution(res, n_samples=program.n_samples, formulation="relu", tol=tol,
                    max_iter=max_iter, d_aug=program.d_aug)
    if sol.info["patterns"] is None:
        sol.info["patterns"] = ActivationPatterns.from_gates(
            X, np.zeros((program.d_aug, 0)), bias=bias)
    sol.info["search"] = dict(oracle.stats)
    sol.info["certificate"] = (
        "duality gap over the sampled patterns and the violating neurons a local search "
        "found: a heuristic, not a proof of global optimality")
    return sol


def _correlation_seeds(program: ConvexProgram, k: int,
                       block_size: Optional[int] = None) -> np.ndarray:
    """The gates of the ``k`` sampled patterns of largest gated correlation
    ``||(X_aug^T D_i lambda)_pen||`` at the zero network's dual point (an upper bound on
    the pattern's ReLU value, in closed form), shape ``(d_aug, k)``: the first working set
    of a grown fit, in one product per block of patterns instead of the exact pricing
    (cone projections) of the whole sample."""
    return _correlation_seeds_columns([program], k, block_size)[0]


def _correlation_seeds_columns(programs, k: int, block_size: Optional[int] = None) -> list:
    """:func:`_correlation_seeds` of each program; programs over the same patterns (the
    classes of a one-vs-rest fit) share one pass over the masks, their dual points side by
    side in one product per block."""
    out = [None] * len(programs)
    groups: dict = {}
    for j, p in enumerate(programs):
        groups.setdefault((id(p.patterns), id(p.X), p.bias, p.regularizer.penalized_dim),
                          []).append(j)
    for idx in groups.values():
        p0 = programs[idx[0]]
        lams = [dual_point(programs[j].loss, np.zeros(p0.n_samples), programs[j].y,
                           output_bias=centred_dual(programs[j]))[0] for j in idx]
        kp = p0.regularizer.penalized_dim
        L = np.column_stack(lams)
        score = np.empty((len(idx), p0.n_patterns))
        if block_size is None:  # the masks of a block as floats: at most 2**24 entries
            block_size = max(1, 2**24 // max(p0.n_samples, 1))
        for s, masks, _ in p0.patterns.iter_blocks(block_size):
            C = pattern_correlations(p0.X_aug, masks, L)  # (b, programs, d_aug)
            score[:, s:s + C.shape[0]] = np.linalg.norm(C[:, :, :kp], axis=2).T
        for m, j in enumerate(idx):
            top = np.argsort(-score[m], kind="stable")[:max(1, int(k))]
            out[j] = p0.patterns.gates[:, np.sort(top)]
    return out


def _oracle_for(program: ConvexProgram, n_chunks: int, n_jobs=None, pricing: bool = True):
    """The exact 2-D sweep when it applies, else the streamed pattern-set evaluation.

    ``pricing``: the value is a certified bound that is exact only at most
    ``program.alpha`` (refinements spared above it, :func:`dual_constraint`'s
    ``threshold``); ``False``: the exact maximum (e.g. ``alpha_max``)."""
    free_bias = program.regularizer.free
    pats = program.patterns
    if (program.formulation == "relu" and pats.exact and program.n_features == 2
            and (free_bias or not program.bias)):
        return _SweepOracle(program.X, bias=program.bias, n_chunks=n_chunks)
    return _PatternOracle(pats, program.X, penalize_bias=not free_bias, n_chunks=n_chunks,
                          gated=program.formulation == "gated_relu", n_jobs=n_jobs,
                          beta=program.alpha if pricing else None, X_aug=program.X_aug)


def column_generation(X, y, *, alpha: float, loss="squared", bias: bool = True,
                      penalize_bias: bool = False, fit_output_bias: bool = True,
                      patterns="exact", inner: Union[str, BaseSolver] = "auto",
                      tol: float = 1e-6, max_iter: int = 100, n_add: int = 16,
                      inner_tol: float = 1e-10, verbose: int = 0,
                      time_limit: Optional[float] = None, random_state=0, n_jobs=None):
    """Globally optimal ReLU program over all patterns, without materialising their masks.

    For two features with a free hidden bias (or none) and ``patterns="exact"``, no
    pattern is ever listed: the dual constraint is evaluated by the exact angular sweep
    and the working set is a set of gates, so ``n = 1000`` points (999,002 patterns with
    a bias) cost memory proportional to the working set only. Otherwise the pattern set
    (``"exact"``: :func:`~convexrelu.arrangements.enumerate_patterns`) is streamed in
    blocks by :func:`~convexrelu.certificates.dual_constraint` and only the working set's
    masks are unpacked.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    alpha : float
        Weight decay (scikit-learn's ``alpha``, docs/mathematics.rst §8.1).
    loss : {"squared", "logistic"} or Loss, default="squared"
    bias, penalize_bias, fit_output_bias : bool
        As in :class:`~convexrelu.program.ConvexProgram`.
    patterns : "exact", "bnb" or ActivationPatterns, default="exact"
        ``"exact"`` lists all patterns; when they are too many to list
        (:class:`~convexrelu.arrangements.PatternLimitError`) and the data rank is at most
        10, it falls back to ``"bnb"``: no pattern is listed, the working set is a set of
        gates and every round is priced by branch and bound
        (:func:`~convexrelu.certificates._bnb.dual_constraint_bnb`, a proven upper bound
        on ``M(lambda)``), so the result is still the global optimum over all patterns,
        certified when the loop stops with ``status="optimal"``.
    inner, tol, max_iter, n_add, inner_tol, verbose, n_jobs
        As in :class:`ColumnGenerationSolver` (``n_jobs`` prices listed patterns in
        parallel, and with ``"bnb"`` bounds the branch and bound's nodes in that many
        worker processes; the 2-D sweep runs here).
    time_limit : float or None, default=None
        Seconds after which the loop stops between rounds (and, with ``"bnb"``, the cap
        on each pricing call).
    random_state : int, Generator or None, default=0
        Seeds the branch and bound's heuristic starts (``"bnb"`` only).

    Returns
    -------
    solution : ConvexSolution
        Blocks over ``patterns_used`` (zero outside the support); ``solution.gap`` and
        ``solution.info["rel_gap"]`` are certified over **all** patterns of the data.
    patterns_used : ActivationPatterns
        The pattern set the rows of ``solution.V`` / ``solution.W`` refer to (the final
        working set in the sweep case, else the full set).
    """
    from .._validation import check_data_matrix
    from ..arrangements import ActivationPatterns, enumerate_patterns

    from sklearn.utils._param_validation import validate_parameter_constraints

    validate_parameter_constraints(
        _CG_CONSTRAINTS, {"tol": tol, "max_iter": max_iter, "n_add": n_add,
                          "inner_tol": inner_tol, "verbose": verbose,
                          "time_limit": time_limit, "n_jobs": n_jobs},
        caller_name="column_generation")
    X = check_data_matrix(X)
    inner = _inner_solver(inner, inner_tol)
    free_bias = bool(bias) and not penalize_bias

    def make_program(pats, a=alpha):
        return ConvexProgram(X, y, pats, loss=loss, alpha=a, bias=bias,
                             penalize_bias=penalize_bias, fit_output_bias=fit_output_bias)

    sweep = isinstance(patterns, str) and patterns == "exact" and X.shape[1] == 2 and \
        (free_bias or not bias)
    if isinstance(patterns, str) and patterns == "exact" and not sweep:
        from ..arrangements import PatternLimitError

        try:
            patterns = enumerate_patterns(X, bias=bias)
        except PatternLimitError as exc:
            if not _bnb_can_price(X, bias):
                raise PatternLimitError(
                    f"{exc} Beyond enumeration the branch and bound prices the columns only "
                    "up to data rank 10.") from None
            patterns = "bnb"
    if isinstance(patterns, str) and (sweep or patterns == "bnb"):
        probe = make_program(ActivationPatterns.from_gates(
            X, np.ones((X.shape[1] + bool(bias), 1)), bias=bias))
        if sweep:
            oracle = _SweepOracle(X, bias=bool(bias), n_chunks=n_add)
        else:
            oracle = _BnBOracle(X, bias=bool(bias), penalize_bias=penalize_bias,
                                beta=probe.alpha, tol=tol, time_limit=time_limit,
                                random_state=random_state, n_jobs=n_jobs)
        ws = _GateWorkingSet(make_program, probe.X_aug, X, bool(bias))
        res = _run(ws, oracle, loss=probe.loss, y=probe.y, alpha=probe.alpha,
                   n_samples=probe.n_samples, output_bias=fit_output_bias or free_bias,
                   free_bias=free_bias, formulation="relu", inner=inner, tol=tol,
                   max_iter=max_iter, n_add=n_add, verbose=verbose, time_limit=time_limit)
        sol = _solution(res, n_samples=probe.n_samples, formulation="relu", tol=tol,
                        max_iter=max_iter, d_aug=probe.d_aug)
        pats = sol.info.pop("patterns")
        if not sweep:
            sol.info["pricing"] = {"method": "branch_and_bound", "calls": oracle.n_calls,
                                   "time": oracle.time, **oracle.stats}
        if not within_tol(sol.gap, sol.objective, tol):
            warn_convergence(f"column_generation stopped at a certified relative duality "
                             f"gap {sol.info['rel_gap']:.3g} over all patterns of the "
                             f"arrangement, above tol={tol:g}. {sol.info['hint']}",
                             stacklevel=2)
        if pats is None:
            pats = ActivationPatterns.from_gates(X, np.zeros((probe.d_aug, 0)), bias=bias)
        return sol, pats
    if isinstance(patterns, str):
        raise ValueError(f"patterns must be 'exact' or an ActivationPatterns, or 'bnb' to "
                         f"price by branch and bound; got {patterns!r}.")
    program = make_program(patterns)
    sol = ColumnGenerationSolver(inner=inner, tol=tol, max_iter=max_iter, n_add=n_add,
                                 verbose=verbose, n_jobs=n_jobs).solve(program)
    return sol, patterns

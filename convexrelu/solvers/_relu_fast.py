"""The ReLU (cone-constrained) program: one entry point, inner method chosen by measurement.

The program is (CVX) of docs/mathematics.rst §3.1 with the conventions of §8.2/§8.3
(sum-reduced, ``beta = alpha``). :class:`ReluFastSolver` (registered as ``"relu"``) picks:

* **Interior point on all patterns** (:mod:`._relu_ipm`) when the loss is quadratic
  (``loss.constant_curvature`` is not None) and every block coordinate is penalised (no
  hidden bias, or ``penalize_bias=True``): Newton steps whose ``(2Pd) x (2Pd)`` system is
  reduced by the block Woodbury identity to one ``n x n`` Cholesky factor, Mehrotra's
  predictor-corrector, certified over every pattern by the cone multipliers it carries.
  Measured on diabetes (n=442, d=11 with bias, one BLAS thread): relative gap below 1e-6
  in 3.3 s at P=200 and 12.7 s at P=500 (``python -m benchmarks solvers``).
  Only up to ``_BARRIER_MAX_N`` samples: each Newton step forms and factors an ``n x n``
  matrix (``O(n^2 P d)``).
* **The augmented Lagrangian on all patterns** (:mod:`._relu_al`) for several outputs
  (squared loss): proximal-gradient steps whose cost is linear in ``n`` (no ``n x n``
  matrix, no ``n x (P d)`` matrix), certified by the cone multipliers it carries and
  finished by the Newton polish on the support. It is not the default for one output:
  measured (2-core machine, one BLAS thread, ``make_regression(6000, 6)``, P=10, free
  hidden bias) it took 52 s where the working-set loop took 25 s, to the same objective.
* **The working-set loop** (:mod:`._column_generation`) otherwise — a free hidden bias
  (the barrier problem is then unbounded: the blocks of the all-active pattern can grow
  along the bias at no cost), a non-quadratic loss, or a barrier run that did not certify
  ``tol``: seeded with the support of the gated relaxation (FISTA, loosely; small
  programs only), the barrier's support or a warm start, else from the zero network;
  each round solves the restricted program (compressed Clarabel for quadratic losses,
  cvxpy otherwise, the augmented Lagrangian when the restricted design
  ``n x (k d_aug)`` exceeds a memory budget), prices every pattern with the
  certificate core's dual constraint and adds the violators, until the certified gap over
  all of the program's patterns is within ``tol``.
"""

from __future__ import annotations

import numbers
import time
import warnings
from typing import Optional

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from .._warnings import muted_convergence
from ..certificates._gap import duality_gap, relative_gap
from ..program import ConvexProgram, ConvexSolution
from ._base import BaseSolver, certificate_text
from ._column_generation import ColumnGenerationSolver, _Clock, _drive

__all__ = ["ReluFastSolver"]


class ReluFastSolver(BaseSolver):
    """The ``"relu"`` solver: certified over all the program's patterns to a relative
    duality gap ``<= tol``.

    Parameters
    ----------
    tol : float, default=1e-6
        Relative duality-gap tolerance, certified over all the program's patterns.
    max_iter : int, default=50
        Rounds of the working-set loop (restricted solve, pricing).
    n_add : int, default=20
        Violating patterns added per round (one per chunk of the pattern set).
    gated_tol : float, default=1e-3
        Relative gap of the gated FISTA seed (it only selects patterns).
    gated_max_iter : int, default=2000
    inner_tol : float, default=1e-10
        Tolerance of the restricted (inner) solves.
    threshold : float, default=1e-6
        Gated blocks above ``threshold * max`` enter the initial working set.
    verbose : int, default=0
    time_limit : float, optional
        Seconds after which no new round or Newton step starts; the solution then carries
        the certified gap it has and a ``ConvergenceWarning``.
    method : {"auto", "barrier", "working_set", "al"}, default="auto"
        ``"barrier"``: the interior point only (quadratic loss, every block coordinate
        penalised, every pattern's gate strictly inside its cone). ``"working_set"``: the
        loop only. ``"al"``: the augmented Lagrangian on all patterns
        (:class:`~convexrelu.solvers._relu_al.ReluALSolver`). ``"auto"``: the augmented
        Lagrangian for several outputs; otherwise the barrier where it applies and
        ``n <= 2000`` (its ``n x n`` matrix), continued by the
        loop (seeded with its support) when it does not certify ``tol``; the loop
        elsewhere.
    max_newton : int, default=200
        Newton steps of the barrier method.

    Notes
    -----
    ``solution.info``: ``rel_gap``, ``method`` and, for the loop, ``history``
    (``(round, seconds, primal, gap, working-set size)``) and ``support``.
    A certificate over a sampled pattern set is not a proof of global optimality over
    the full arrangement (``info["certificate"]`` says which).
    """

    _loss_required_attr = ("value", "gradient", "dual_objective", "max_dual_scale")
    _formulations = ("relu",)
    # the gated seed costs a FISTA solve over all patterns; above this n * P the loop from
    # the zero network is faster (diabetes, n=331, P=2000, a sparse optimum: 27 s with the
    # seed, 12.6 s without)
    _GATED_SEED_MAX_SIZE = 100_000
    # the barrier's Newton step forms an n x n matrix: O(n^2 P d) per step
    _BARRIER_MAX_N = 2000
    _parameter_constraints = {
        "tol": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_add": [Interval(numbers.Integral, 1, None, closed="left")],
        "gated_tol": [Interval(numbers.Real, 0, 1, closed="neither")],
        "gated_max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "inner_tol": [Interval(numbers.Real, 0, 1, closed="neither")],
        "threshold": [Interval(numbers.Real, 0, 1, closed="left")],
        "verbose": ["verbose"],
        "time_limit": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "method": [StrOptions({"auto", "barrier", "working_set", "al"})],
        "max_newton": [Interval(numbers.Integral, 1, None, closed="left")],
    }

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
    @staticmethod
    def barrier_applies(program: ConvexProgram) -> bool:
        """Whether the interior point can solve ``program`` (quadratic loss, one output,
        every block coordinate penalised)."""
        return (program.n_outputs == 1 and not program.regularizer.free
                and program.loss.constant_curvature(program.y) is not None)

    def _gated_support(self, program: ConvexProgram) -> np.ndarray:
        """Patterns of the nonzero blocks of the gated relaxation (FISTA, loosely)."""
        from ._fista import solve_gated_fista

        if not program.loss.smooth:
            return np.zeros(0, int)
        with muted_convergence(), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # a free hidden bias makes the gated problem degenerate: penalise it here
            g = solve_gated_fista(program.loss, program.X_aug, program.masks, program.y,
                                  program.alpha, output_bias=program.fit_output_bias,
                                  tol=self.gated_tol, max_iter=self.gated_max_iter)
        nrm = np.linalg.norm(g.B, axis=1)
        top = float(nrm.max(initial=0.0))
        return np.flatnonzero(nrm > self.threshold * top) if top > 0 else np.zeros(0, int)

    # ------------------------------------------------------------------ the solve
    def use_al(self, program: ConvexProgram) -> bool:
        """Whether ``method="auto"`` solves ``program`` by the augmented Lagrangian."""
        return program.n_outputs > 1

    def _solve(self, program: ConvexProgram, warm_start=None) -> ConvexSolution:
        return _drive([self._solve_steps(program, warm_start)])[0]

    def solve_columns(self, programs, warm_starts=None) -> list:
        """Solve single-output ReLU programs over the same patterns of the same data (the
        one-vs-rest classes of a classifier, the outputs of a multi-output regression)
        together: their working-set loops run in lock-step, so every pricing of the
        pattern set is one pass over its masks for all programs (each program keeps its
        own refinements of the dual constraint). Each solution is the one :meth:`solve`
        gives for its program alone, with its own certificate.

        Parameters
        ----------
        programs : list of ConvexProgram
        warm_starts : list of (ConvexSolution or None), optional

        Returns
        -------
        list of ConvexSolution
        """
        programs = list(programs)
        if not programs or not all(isinstance(p, ConvexProgram) for p in programs):
            raise TypeError("solve_columns expects a non-empty list of ConvexProgram.")
        warm_starts = [None] * len(programs) if warm_starts is None else list(warm_starts)
        if len(warm_starts) != len(programs):
            raise ValueError(f"solve_columns got {len(warm_starts)} warm starts for "
                             f"{len(programs)} programs; give one (or None) per program.")
        self._validate_params()
        for p in programs:
            self._check_capabilities(p)
        clocks = [_Clock() for _ in programs]
        sols = _drive([self._solve_steps(p, w, c)
                       for p, w, c in zip(programs, warm_starts, clocks)], clocks)
        return [self._finish(p, s) for p, s in zip(programs, sols)]

    def _solve_steps(self, program: ConvexProgram, warm_start=None, clock=None):
        """:meth:`_solve` as a generator of pricing requests (:func:`_drive`): the
        working-set loop yields where it prices the pattern set."""
        clock = _Clock() if clock is None else clock
        if program.n_outputs != 1 and self.method in ("barrier", "working_set"):
            raise ValueError(f"ReluFastSolver(method={self.method!r}) handles one output; "
                             f"the program has {program.n_outputs}. Use method='auto' or "
                             "'al', or fit one program per output.")
        if self.method == "al" or (self.method == "auto" and self.use_al(program)):
            return self._solve_al(program, warm_start)
        t0 = time.perf_counter() - clock()  # the start, less the steps of other programs
        barrier_ok = self.barrier_applies(program)
        if self.method == "barrier" and not barrier_ok:
            raise ValueError(
                "method='barrier' needs a quadratic loss and every block coordinate "
                "penalised: with a free hidden bias the barrier problem is unbounded (the V "
                "and W blocks of an all-active pattern can grow along the bias at no cost). "
                "Use method='auto' or 'working_set', or penalize_bias=True.")
        initial = None
        if barrier_ok and (self.method == "barrier" or (
                self.method == "auto" and program.n_samples <= self._BARRIER_MAX_N)):
            sol = self._solve_barrier(program, t0)
            out_of_time = (self.time_limit is not None
                           and time.perf_counter() - t0 >= self.time_limit)
            if sol is not None and (sol.status == "optimal" or self.method == "barrier"
                                    or out_of_time):
                return sol
            if sol is not None:
                initial = np.asarray(sol.info["support"], int)
        if initial is None and warm_start is not None and \
                np.shape(warm_start.V) == (program.n_patterns, program.d_aug):
            nrm = np.maximum(np.linalg.norm(warm_start.V, axis=1),
                             np.linalg.norm(warm_start.W, axis=1))
            initial = np.flatnonzero(nrm > 0)
        gated_time = 0.0
        if initial is None and \
                program.n_samples * program.n_patterns <= self._GATED_SEED_MAX_SIZE:
            t = time.perf_counter()
            initial = self._gated_support(program)
            gated_time = time.perf_counter() - t
        left = None if self.time_limit is None else \
            max(self.time_limit - (time.perf_counter() - t0), 1e-3)
        loop = ColumnGenerationSolver(tol=self.tol, max_iter=self.max_iter, n_add=self.n_add,
                                      inner_tol=self.inner_tol, verbose=self.verbose,
                                      time_limit=left)
        sol = yield from loop._solve_from_steps(program, initial, clock)
        # clock(): this program's own seconds since its start (in lock-step with others,
        # less their steps)
        if sol.status != "optimal" and initial is not None and len(initial) and (
                self.time_limit is None or clock() < self.time_limit):
            # a large seeded working set can leave the restricted solves inaccurate (seen on
            # badly scaled features); the loop from the zero network then grows a small one
            again = yield from loop._solve_from_steps(program, None, clock)
            if again.info["rel_gap"] < sol.info["rel_gap"]:
                sol = again
        sol.info.update(method="working_set", gated_time=gated_time)
        sol.solve_time = clock()
        return sol

    def _solve_al(self, program, warm_start):
        """The augmented Lagrangian on all patterns (:mod:`._relu_al`)."""
        from ._relu_al import ReluALSolver

        al = ReluALSolver(tol=self.tol, max_iter=max(self.max_iter, 60),
                          verbose=self.verbose, time_limit=self.time_limit)
        sol = al._solve(program, warm_start)
        sol.info["method"] = "al"
        return sol

    def _zero_if_better(self, program, objective, t0, n_iter):
        """The zero network (best output bias) when it beats a stopped iterate.

        An interior-point iterate stopped early (``time_limit``, ``max_newton``) follows
        the central path from a strictly feasible start and can be far worse than the zero
        network, which is feasible for every ReLU program; the solver returns the better of
        the two (with its certified gap). None when the iterate is better.
        """
        n = program.n_samples
        c0 = 0.0
        if program.fit_output_bias:
            c0 = float(np.ravel(program.loss.output_shift(np.zeros(n), program.y))[0])
            c0 = c0 if np.isfinite(c0) else 0.0
        Z = np.zeros((program.n_patterns, program.d_aug))
        obj0 = program.objective(Z, Z, c0)
        if not obj0 < objective:
            return None
        dg = duality_gap(program, Z, Z, c0)
        exact = bool(program.patterns.exact)
        return ConvexSolution(
            V=Z, W=Z.copy(), output_bias=c0, objective=obj0, dual=np.asarray(dg.lam, float),
            status="max_iter_reached", n_iter=n_iter, solve_time=time.perf_counter() - t0,
            gap=dg.gap / n, formulation="relu",
            info={"rel_gap": relative_gap(dg.gap, dg.primal), "support": np.zeros(0, int),
                  "tol": self.tol, "patterns_exact": exact,
                  "certificate": certificate_text(exact), "method": "barrier",
                  "newton_steps": n_iter, "zero_network": True})

    def _solve_barrier(self, program, t0):
        """The structured interior-point method (:mod:`._relu_ipm`); None if it cannot start."""
        from ._relu_ipm import solve_relu_barrier

        P = program.n_patterns
        # a slack that reaches exactly zero in rounding (seen in a support solve with
        # tol=1e-12) gives infinite barrier terms; the certificate computed at the end
        # judges the result, and numpy's warnings about it are not the user's
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            r = solve_relu_barrier(program.X_aug, program.masks, program.y, program.alpha,
                                   gates=program.patterns.gates,
                                   regularizer=program.regularizer,
                                   output_bias=program.fit_output_bias, loss=program.loss,
                                   tol=self.tol, max_newton=self.max_newton,
                                   time_limit=self.time_limit, verbose=self.verbose)
        if r is None:
            return None
        V, W = r.B[:P].copy(), r.B[P:].copy()
        n, reg = program.n_samples, program.regularizer
        if not r.converged:
            zero = self._zero_if_better(program, r.primal / n, t0, r.n_newton)
            if zero is not None:
                return zero
        size = np.maximum(reg.norms(V), reg.norms(W))
        exact = bool(program.patterns.exact)
        return ConvexSolution(
            V=V, W=W, output_bias=r.c0, objective=r.primal / n, dual=np.asarray(r.lam, float),
            status="optimal" if r.converged else "max_iter_reached", n_iter=r.n_newton,
            solve_time=time.perf_counter() - t0, gap=r.gap / n, formulation="relu",
            info={"rel_gap": relative_gap(r.gap, r.primal),
                  "support": np.flatnonzero(
                      size > 1e-9 * max(float(size.max(initial=0.0)), 1e-300)),
                  "tol": self.tol, "patterns_exact": exact,
                  "certificate": certificate_text(exact), "history": r.history,
                  "method": "barrier", "newton_steps": r.n_newton})

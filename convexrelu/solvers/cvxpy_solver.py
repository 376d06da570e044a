"""A cvxpy backend: the convex program as one disciplined-parametrised (DPP) problem.

The problem is built once per (data, patterns, loss, formulation) and cached on the
solver; ``alpha`` and ``y`` are ``cp.Parameter`` s, so a new ``alpha`` (a regularisation
path) or new targets only re-solve. Cone constraints, predictions and group norms are
single matrix expressions over a ``(d_aug, n_patterns)`` variable: no Python loop over
patterns.

References
----------
S. Diamond and S. Boyd, "CVXPY: a Python-embedded modeling language for convex
optimization", JMLR 2016. A. Agrawal et al., "Differentiable convex optimization layers"
(DPP), NeurIPS 2019.
"""

from __future__ import annotations

import numbers
import time
from collections import OrderedDict
from typing import Optional

import numpy as np
from sklearn.utils._param_validation import Interval

from .._warnings import warn_convergence
from ..program import ConvexProgram, ConvexSolution
from ._base import BaseSolver

__all__ = ["CvxpySolver"]

_CLARABEL_RETRY = {"equilibrate_max_iter": 50, "static_regularization_constant": 1e-7,
                   "reduced_tol_gap_abs": 1e-4, "reduced_tol_gap_rel": 1e-4,
                   "reduced_tol_feas": 1e-4}
_HINT = "Try another solver, or solve with verbose=True to see the solver's log."
# cvxpy statuses: optimal is accepted, inaccurate is accepted and judged by the
# certificate that ends every solve (BaseSolver.solve), anything else raises
_ACCEPTED = {"optimal": "optimal", "optimal_inaccurate": "optimal_inaccurate"}


class _Built:
    """A compiled cvxpy problem and handles to its variables and parameters."""

    __slots__ = ("problem", "alpha", "y", "V", "W", "c0", "data_constraint", "build_time")


class CvxpySolver(BaseSolver):
    """Solve a :class:`~convexrelu.program.ConvexProgram` with cvxpy.

    For the ``"relu"`` formulation the problem handed to cvxpy is

    .. math::

        \\min_{V, W \\in \\mathbb R^{d_{\\rm aug}\\times P},\\ c_0}\\
        \\ell\\big(\\textstyle\\sum_{\\rm cols}\\,[\\mathrm{masks}\\circ X(V - W)] + c_0;\\ y\\big)
        + \\alpha\\sum_{i}\\big(\\|V_{1:k,i}\\| + \\|W_{1:k,i}\\|\\big)
        \\quad\\text{s.t.}\\quad A\\circ XV \\ge 0,\\ A\\circ XW \\ge 0,

    with ``A = 2 masks - 1`` and ``k`` the number of penalised coordinates.

    Parameters
    ----------
    solver : str, default="CLARABEL"
        Any installed cvxpy solver (``cvxpy.installed_solvers()``).
    tol : float, default=1e-8
        Passed as the solver's gap / feasibility tolerances (Clarabel: ``tol_gap_abs``,
        ``tol_gap_rel``, ``tol_feas``; SCS: ``eps_abs``, ``eps_rel``; ECOS: ``abstol``,
        ``reltol``, ``feastol``). Exponential-cone losses need explicit tight tolerances
        for exact comparisons (docs/mathematics.rst §8.4).
    max_iter : int, default=500
        Iteration limit of the conic solver.
    verbose : bool, default=False
        Print cvxpy's and the solver's log.
    solver_options : dict, optional
        Extra keyword arguments for ``problem.solve``; they override the above.

    Notes
    -----
    The cached cvxpy problems are not pickled with the solver (a Clarabel-solved
    ``cp.Problem`` cannot be pickled); they are rebuilt on demand.
    """

    _loss_required_attr = ("cvxpy_value", "gradient", "value")
    _cache_size = 4
    _tol_is_gap = False  # tol is the conic solver's tolerance
    _parameter_constraints = {
        "solver": [str],
        "tol": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
        "solver_options": [dict, None],
    }
    _convergence_hint = ("Tighten tol (the conic solver's tolerance), increase max_iter, "
                         "standardise X, or use solver='relu' (certified to its own tol).")

    def _certificate_tol(self) -> float:
        """The certified relative gap a solve must reach: ``max(100 tol, 1e-6)`` (the
        conic solver's ``tol`` bounds its own residuals, not our certificate's gap)."""
        return max(100.0 * float(self.tol), 1e-6)

    def __init__(self, solver: str = "CLARABEL", tol: float = 1e-8, max_iter: int = 500,
                 verbose: bool = False, solver_options: Optional[dict] = None) -> None:
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose
        self.solver_options = solver_options
        self._cache: "OrderedDict[str, _Built]" = OrderedDict()

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()
        return state

    # ------------------------------------------------------------------ options
    def _check_solver_name(self) -> str:
        import cvxpy as cp

        name = str(self.solver).upper()
        installed = cp.installed_solvers()
        if name not in installed:
            raise ValueError(f"cvxpy solver {self.solver!r} is not installed; installed "
                             f"solvers are {installed}. Install it or pick one of these.")
        return name

    def _options(self, name: str) -> dict:
        tol, it = float(self.tol), int(self.max_iter)
        if name == "CLARABEL":
            opts = {"tol_gap_abs": tol, "tol_gap_rel": tol, "tol_feas": tol, "max_iter": it}
        elif name == "SCS":
            opts = {"eps_abs": tol, "eps_rel": tol, "max_iters": it}
        elif name == "ECOS":
            opts = {"abstol": tol, "reltol": tol, "feastol": tol, "max_iters": it}
        elif name == "OSQP":
            opts = {"eps_abs": tol, "eps_rel": tol, "max_iter": it}
        else:
            opts = {}
        opts.update(self.solver_options or {})
        return opts

    # ------------------------------------------------------------------ build
    def _build(self, program: ConvexProgram) -> _Built:
        import cvxpy as cp

        t0 = time.perf_counter()
        Xa = program.X_aug
        n, P, da, c = program.n_samples, program.n_patterns, program.d_aug, program.n_outputs
        masks = program.masks.astype(np.float64)
        A = program.signs
        reg = program.regularizer
        form = program.formulation
        relu_type = form != "gated_relu"

        b = _Built()
        b.alpha = cp.Parameter(nonneg=True, name="alpha")
        b.y = cp.Parameter(program.y.shape, name="y")
        b.V, b.W = [], []
        cols, constraints, pen = [], [], 0
        for _ in range(c):
            Vm = cp.Variable((da, P))
            b.V.append(Vm)
            pen = pen + reg.to_cvxpy(Vm, axis=0)
            if relu_type:
                Wm = cp.Variable((da, P))
                b.W.append(Wm)
                pen = pen + reg.to_cvxpy(Wm, axis=0)
                constraints += [cp.multiply(A, Xa @ Vm) >= 0, cp.multiply(A, Xa @ Wm) >= 0]
                diff = Vm - Wm
            else:
                diff = Vm
            cols.append(cp.sum(cp.multiply(masks, Xa @ diff), axis=1))
        z = cols[0] if c == 1 else cp.vstack(cols).T
        b.c0 = None
        if program.fit_output_bias:
            if c == 1:
                b.c0 = cp.Variable()
                z = z + b.c0
            else:
                b.c0 = cp.Variable(c)
                z = z + np.ones((n, 1)) @ cp.reshape(b.c0, (1, c), order="C")
        b.data_constraint = None
        if form in ("relu", "gated_relu"):
            objective = program.loss.cvxpy_value(z, b.y) + b.alpha * pen
        elif form == "min_norm":
            objective = pen
            b.data_constraint = z == b.y
            constraints.append(b.data_constraint)
        else:  # max_margin
            objective = pen
            b.data_constraint = cp.multiply(b.y, z) >= 1
            constraints.append(b.data_constraint)
        b.problem = cp.Problem(cp.Minimize(objective), constraints)
        if not b.problem.is_dcp(dpp=True):  # pragma: no cover - a bug, not user input
            raise RuntimeError("internal error: the cvxpy problem is not DPP; please report.")
        b.build_time = time.perf_counter() - t0
        return b

    def _get(self, program: ConvexProgram) -> tuple[_Built, bool]:
        key = program.structure_key()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key], True
        built = self._build(program)
        self._cache[key] = built
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return built, False

    # ------------------------------------------------------------------ solve
    def _solve(self, program: ConvexProgram, warm_start=None) -> ConvexSolution:
        import cvxpy as cp

        name = self._check_solver_name()
        built, cached = self._get(program)
        built.alpha.value = program.alpha
        built.y.value = program.y
        if warm_start is not None:
            self._set_warm_start(built, program, warm_start)
        t0 = time.perf_counter()
        opts = self._options(name)
        try:
            built.problem.solve(solver=name, verbose=bool(self.verbose),
                                warm_start=warm_start is not None, **opts)
        except cp.error.SolverError as exc:
            if name != "CLARABEL" or self.solver_options:
                raise RuntimeError(f"cvxpy solver {name} failed on {program!r}: {exc} "
                                   f"{_HINT}") from exc
            # Clarabel stalls ("insufficient progress") on nearly separable logistic
            # problems with tiny alpha: retry once with stronger equilibration and
            # regularisation; the result is then reported as inaccurate at worst.
            opts.update(_CLARABEL_RETRY)
            try:
                # warm_start=False: a fresh Clarabel solver (cvxpy >= 1.7 otherwise updates
                # the cached one, which refuses to change its equilibration settings)
                built.problem.solve(solver=name, verbose=bool(self.verbose),
                                    warm_start=False, **opts)
            except cp.error.SolverError as exc2:
                if "SCS" not in cp.installed_solvers():
                    raise RuntimeError(
                        f"cvxpy solver {name} failed on {program!r}, also with the retry "
                        f"options {_CLARABEL_RETRY}: {exc2} Standardise X, increase alpha, "
                        f"or {_HINT[0].lower()}{_HINT[1:]}") from exc2
                warn_convergence(
                    f"Clarabel failed on {program!r} ({exc2}); falling back to SCS, whose "
                    "solution is less accurate. Standardise X or increase alpha for an "
                    "accurate solve.", stacklevel=3)
                name = "SCS"
                try:
                    built.problem.solve(solver="SCS", verbose=bool(self.verbose),
                                        warm_start=False,
                                        eps_abs=max(self.tol, 1e-6),
                                        eps_rel=max(self.tol, 1e-6),
                                        max_iters=max(20 * int(self.max_iter), 10000))
                except cp.error.SolverError as exc3:
                    raise RuntimeError(f"cvxpy solvers CLARABEL and SCS failed on "
                                       f"{program!r}: {exc3} Standardise X or increase "
                                       "alpha.") from exc3
        wall = time.perf_counter() - t0
        status = built.problem.status
        if status not in _ACCEPTED:
            extra = ""
            if program.formulation == "min_norm" and status in (cp.INFEASIBLE,
                                                                cp.INFEASIBLE_INACCURATE):
                extra = (" The targets cannot be interpolated with these patterns "
                         "(use formulation='relu' with a small alpha).")
            raise RuntimeError(f"cvxpy solver {name} returned status {status!r} on "
                               f"{program!r}.{extra} {_HINT}")
        return self._extract(built, program, status, wall, 0.0 if cached else
                             built.build_time)

    def _set_warm_start(self, built: _Built, program: ConvexProgram, sol) -> None:
        V = np.asarray(sol.V, dtype=np.float64).reshape(program.n_outputs, program.n_patterns,
                                                        program.d_aug)
        W = np.asarray(sol.W, dtype=np.float64).reshape(V.shape)
        for j, Vm in enumerate(built.V):
            Vm.value = V[j].T
        for j, Wm in enumerate(built.W):
            Wm.value = W[j].T
        if built.c0 is not None:
            built.c0.value = np.reshape(np.asarray(sol.output_bias, dtype=np.float64),
                                        built.c0.shape)

    def _extract(self, built: _Built, program: ConvexProgram, status: str, wall: float,
                 build_time: float) -> ConvexSolution:
        c = program.n_outputs

        def val(var):
            v = var.value
            return np.zeros(var.shape) if v is None else np.asarray(v, dtype=np.float64)

        V = np.stack([val(Vm).T for Vm in built.V])
        if built.W:
            W = np.stack([val(Wm).T for Wm in built.W])
        else:
            W = np.zeros_like(V)
        if c == 1:
            V, W = V[0], W[0]
        if built.c0 is None:
            c0 = 0.0 if c == 1 else np.zeros(c)
        else:
            c0 = float(val(built.c0)) if c == 1 else val(built.c0)
        if program.formulation in ("relu", "gated_relu"):
            dual = program.dual_point(V, W, c0)
        else:
            mult = built.data_constraint.dual_value
            dual = np.zeros(program.y.shape) if mult is None else np.asarray(mult, float)
            if program.formulation == "max_margin":
                dual = program.y * dual  # lambda = y * mu (docs/mathematics.rst §3.3)
            else:
                dual = -dual  # cvxpy's sign for z == y: lambda^T y = R*
            dual = dual.reshape(program.y.shape)
        stats = built.problem.solver_stats
        n_iter = getattr(stats, "num_iters", None) or 1
        solve_time = getattr(stats, "solve_time", None) or wall
        return ConvexSolution(
            V=V, W=W, output_bias=c0, objective=program.objective(V, W, c0), dual=dual,
            status=status, n_iter=int(max(1, n_iter)), solve_time=float(solve_time),
            build_time=float(build_time), gap=None, formulation=program.formulation,
            info={"problem_value": float(built.problem.value), "wall_time": wall,
                  "solver": str(self.solver).upper()},
        )

"""The solver interface (skglm style: solvers declare what they need from the loss).

Every solve goes through :meth:`BaseSolver.solve`: it validates the solver's
hyper-parameters (scikit-learn's ``_parameter_constraints``), checks the loss's and the
formulation's capabilities, calls the solver's ``_solve`` and **ends with the one
certificate** of :mod:`convexrelu.certificates._gap` (the duality gap over every pattern
of the program), deciding convergence with its single ``within_tol`` rule and issuing at
most one ``ConvergenceWarning``, with the solver's own remedy.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Optional

from sklearn.utils._param_validation import validate_parameter_constraints

from .._warnings import warn_convergence
from ..certificates._gap import duality_gap, relative_gap, within_tol
from ..losses import Loss
from ..program import FORMULATIONS, ConvexProgram, ConvexSolution

__all__ = ["BaseSolver", "SOLVERS", "get_solver", "solver_class"]


def certificate_text(exact: bool) -> str:
    """What a solver's certificate covers."""
    return ("duality gap over all patterns of the arrangement" if exact else
            "duality gap over the given (sampled) patterns only: not a proof of global "
            "optimality")


class BaseSolver:
    """Base class of the solvers of a :class:`~convexrelu.program.ConvexProgram`.

    Subclasses implement ``_solve`` and declare

    * ``_loss_required_attr``: methods the loss must implement; an entry may be a tuple
      of alternatives (any one of them suffices);
    * ``_formulations``: the formulations they can solve;
    * ``_parameter_constraints``: the domains of their hyper-parameters, in
      scikit-learn's vocabulary (checked before any work);
    * ``_convergence_hint``: what to change when the certified gap stays above ``tol``.

    :meth:`solve` checks all of them and raises an error naming what is wrong before any
    work is done, then certifies the result.
    """

    _loss_required_attr: tuple = ()
    _formulations: tuple = FORMULATIONS
    _parameter_constraints: dict = {}
    _convergence_hint: str = "Increase max_iter or loosen tol."
    _tol_is_gap: bool = True  # ``tol`` is the certified relative duality gap
    # the certificate at the end of every solve; off only for the working-set loop's
    # restricted solves, which the loop judges by its own certificate over all patterns
    _certify_solution: bool = True

    def solve(self, program: ConvexProgram, warm_start: Optional[ConvexSolution] = None
              ) -> ConvexSolution:
        """Solve ``program``; ``warm_start`` is a previous solution of the same shape.

        Parameters
        ----------
        program : ConvexProgram
        warm_start : ConvexSolution, optional

        Returns
        -------
        ConvexSolution
            With ``gap`` (sklearn normalisation) and ``info["rel_gap"]`` certified over
            every pattern of the program, and ``status`` ``"optimal"`` exactly when the
            relative gap is within the solver's ``tol``.

        Warns
        -----
        ConvergenceWarning
            Once, when the certified relative gap exceeds ``tol``, with a remedy.
        """
        if not isinstance(program, ConvexProgram):
            raise TypeError(f"{type(self).__name__}.solve expects a ConvexProgram; got "
                            f"{type(program).__name__}.")
        self._validate_params()
        self._check_capabilities(program)
        sol = self._solve(program, warm_start)
        return self._finish(program, sol)

    # ------------------------------------------------------------------ checks
    def _validate_params(self) -> None:
        if self._parameter_constraints:
            params = {k: getattr(self, k) for k in self._parameter_constraints}
            validate_parameter_constraints(self._parameter_constraints, params,
                                           caller_name=type(self).__name__)

    def _check_capabilities(self, program: ConvexProgram) -> None:
        name = type(self).__name__
        if program.formulation not in self._formulations:
            raise ValueError(f"{name} cannot solve formulation={program.formulation!r}; it "
                             f"supports {list(self._formulations)}.")
        loss = program.loss
        missing = []
        for req in self._loss_required_attr:
            alternatives = req if isinstance(req, tuple) else (req,)
            if not any(_implements(loss, attr) for attr in alternatives):
                missing.append(" or ".join(alternatives))
        if missing:
            raise ValueError(f"{name} needs the loss to implement {missing}; "
                             f"{type(loss).__name__} does not. Implement them or use "
                             "another solver.")

    # ------------------------------------------------------------------ certificate
    def _finish(self, program: ConvexProgram, sol: ConvexSolution) -> ConvexSolution:
        """The one certificate at the end of every solve, and at most one warning."""
        if program.formulation not in ("relu", "gated_relu") or not self._certify_solution:
            return sol  # min_norm / max_margin: constrained programs, the solver's status
        if sol.gap is None or not sol.info.get("certified", True):
            dg = duality_gap(program, sol.V, sol.W, sol.output_bias)
            if dg is not None:
                n = program.n_samples
                sol.gap = dg.gap / n
                sol.info["rel_gap"] = dg.rel_gap
                sol.info["dual_bound"] = dg.bound
        if sol.gap is None:
            return sol
        rel = sol.info.get("rel_gap")
        if rel is None:
            rel = relative_gap(sol.gap, sol.objective)
            sol.info["rel_gap"] = rel
        tol = self._certificate_tol()
        if tol is None:
            return sol
        ok = within_tol(sol.gap, sol.objective, tol)
        if ok:
            if sol.status in ("max_iter_reached", "optimal_inaccurate"):
                sol.status = "optimal"
        else:
            if sol.status == "optimal":
                sol.status = "not_converged"
            hint = sol.info.get("hint") or self._convergence_hint
            where = ("over all patterns of the arrangement" if program.patterns.exact else
                     "over the program's (sampled) patterns")
            warn_convergence(
                f"{type(self).__name__} stopped at a certified relative duality gap "
                f"{rel:.3g} {where}, above tol={tol:g}. {hint}", stacklevel=3)
        return sol

    def _certificate_tol(self) -> Optional[float]:
        """The relative gap a solve must certify (the solver's ``tol``)."""
        return getattr(self, "tol", None)

    def _solve(self, program, warm_start):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_params(self) -> dict:
        """The hyper-parameters (the constructor's arguments)."""
        return {k: getattr(self, k) for k in _init_params(type(self))}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def _init_params(cls) -> list:
    sig = inspect.signature(cls.__init__)
    return [k for k, p in sig.parameters.items()
            if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _implements(loss, attr: str) -> bool:
    """The loss has ``attr`` and, for a :class:`Loss`, overrides the abstract stub."""
    impl = getattr(type(loss), attr, None)
    if impl is None:
        return False
    base = getattr(Loss, attr, None)
    return not (isinstance(loss, Loss) and base is not None and impl is base)


# name -> (module, class); imported on demand so that ``import convexrelu`` stays light
SOLVERS = {
    "cvxpy": ("cvxpy_solver", "CvxpySolver"),
    "fista": ("_fista", "FistaSolver"),
    "relu": ("_relu_fast", "ReluFastSolver"),
    "column_generation": ("_column_generation", "ColumnGenerationSolver"),
}


def solver_class(name: str):
    """The class registered under ``name``."""
    if not isinstance(name, str) or name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; valid names are {sorted(SOLVERS)} (or "
                         "pass a convexrelu.solvers.BaseSolver instance).")
    module, cls = SOLVERS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def get_solver(solver, **params) -> BaseSolver:
    """A solver instance from a registered name, or pass an instance through.

    Registered names (``SOLVERS``): ``"cvxpy"`` (:class:`CvxpySolver`, the reference),
    ``"fista"`` (gated ReLU, :class:`FistaSolver`), ``"relu"`` (the ReLU program,
    :class:`ReluFastSolver`) and ``"column_generation"``
    (:class:`ColumnGenerationSolver`, the working-set loop with explicit control).

    Parameters
    ----------
    solver : str or BaseSolver
    **params
        Hyper-parameters of the solver's constructor.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid names), or a parameter the
        solver does not take (the message lists those it does).
    """
    if isinstance(solver, BaseSolver):
        if params:
            raise ValueError(f"parameters {sorted(params)} were given with a solver "
                             f"instance {solver!r}; set them on the instance instead.")
        return solver
    cls = solver_class(solver)
    accepted = _init_params(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"solver {solver!r} ({cls.__name__}) does not take "
                         f"{', '.join(map(repr, unknown))}; its parameters are "
                         f"{accepted}.")
    return cls(**params)

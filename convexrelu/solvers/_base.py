"""The solver interface (skglm style: solvers declare what they need from the loss)."""

from __future__ import annotations

from typing import Optional

from ..losses import Loss
from ..program import FORMULATIONS, ConvexProgram, ConvexSolution

__all__ = ["BaseSolver", "SOLVERS", "get_solver"]


class BaseSolver:
    """Base class of the solvers of a :class:`~convexrelu.program.ConvexProgram`.

    Subclasses implement :meth:`_solve` and declare

    * ``_loss_required_attr``: methods the loss must implement; an entry may be a tuple
      of alternatives (any one of them suffices);
    * ``_formulations``: the formulations they can solve.

    :meth:`solve` checks both and raises a ``ValueError`` naming what is missing before
    any work is done.
    """

    _loss_required_attr: tuple = ()
    _formulations: tuple = FORMULATIONS

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
        """
        if not isinstance(program, ConvexProgram):
            raise TypeError(f"{type(self).__name__}.solve expects a ConvexProgram; got "
                            f"{type(program).__name__}.")
        self._check_capabilities(program)
        return self._solve(program, warm_start)

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

    def _solve(self, program, warm_start):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()
                           if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


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
    "polish": ("_relu_admm", "ReluPolishSolver"),
    "relu_al": ("_relu_admm", "ReluALSolver"),
    "column_generation": ("_column_generation", "ColumnGenerationSolver"),
    "relu_fast": ("_relu_fast", "ReluFastSolver"),
}


def get_solver(solver, **params) -> BaseSolver:
    """A solver instance from a registered name, or pass an instance through.

    Registered names: ``"cvxpy"`` (:class:`CvxpySolver`), ``"fista"`` (gated ReLU,
    :class:`FistaSolver`), ``"polish"`` (:class:`ReluPolishSolver`), ``"relu_al"``
    (:class:`ReluALSolver`), ``"relu_fast"`` (:class:`ReluFastSolver`) and
    ``"column_generation"`` (:class:`ColumnGenerationSolver`). ``params`` that the
    solver's constructor does not take (e.g. ``max_iter`` for ``"polish"``) are dropped,
    so callers such as the estimators can pass their common ``tol`` / ``max_iter`` /
    ``verbose`` to any solver.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid names).
    """
    import importlib
    import inspect

    if isinstance(solver, BaseSolver):
        return solver
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid names are {sorted(SOLVERS)} (or "
                         "pass a convexrelu.solvers.BaseSolver instance).")
    module, name = SOLVERS[solver]
    cls = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in params.items() if k in accepted})

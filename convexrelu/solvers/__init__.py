"""Solvers of the convex program: a strategy class per backend, one file each.

A solver holds only hyper-parameters; ``solver.solve(program)`` returns a
:class:`convexrelu.program.ConvexSolution`. Each solver declares what it needs from the
loss (``_loss_required_attr``) and which formulations it handles; :class:`BaseSolver`
checks both before solving and names what is missing. :func:`get_solver` maps the
registered names (``SOLVERS``) to classes.
"""

from ._base import SOLVERS, BaseSolver, get_solver
from ._column_generation import ColumnGenerationSolver, column_generation
from ._fista import FistaSolver
from ._path import RegularizationPath, alpha_max, regularization_path
from ._relu_admm import ReluALSolver, ReluPolishSolver
from ._relu_fast import ReluFastSolver
from .cvxpy_solver import CvxpySolver

__all__ = ["BaseSolver", "ColumnGenerationSolver", "CvxpySolver", "FistaSolver",
           "RegularizationPath", "ReluALSolver", "ReluFastSolver", "ReluPolishSolver",
           "SOLVERS", "alpha_max", "column_generation", "get_solver", "regularization_path"]

"""Solvers of the convex program: a strategy class per method, one file each.

A solver holds only hyper-parameters; ``solver.solve(program)`` returns a
:class:`convexrelu.program.ConvexSolution` whose duality gap is certified over every
pattern of the program by the one certificate of :mod:`convexrelu.certificates`. Each
solver declares what it needs from the loss (``_loss_required_attr``), which
formulations it handles and the domains of its hyper-parameters; :class:`BaseSolver`
checks all of them before solving and names what is wrong. :func:`get_solver` maps the
registered names (``SOLVERS``) to classes; :func:`choose_solver` is the estimators'
``solver="auto"``.
"""

from ._auto import choose_solver
from ._base import SOLVERS, BaseSolver, get_solver
from ._column_generation import ColumnGenerationSolver, column_generation
from ._fista import FistaSolver
from ._path import RegularizationPath, alpha_max, regularization_path
from ._relu_al import ReluALSolver
from ._relu_fast import ReluFastSolver
from .cvxpy_solver import CvxpySolver

__all__ = ["BaseSolver", "ColumnGenerationSolver", "CvxpySolver", "FistaSolver",
           "RegularizationPath", "ReluALSolver", "ReluFastSolver", "SOLVERS", "alpha_max",
           "choose_solver", "column_generation", "get_solver", "regularization_path"]

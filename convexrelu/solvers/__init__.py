"""Solvers of the convex program: a strategy class per backend, one file each.

A solver holds only hyper-parameters; ``solver.solve(program)`` returns a
:class:`convexrelu.program.ConvexSolution`. Each solver declares what it needs from the
loss (``_loss_required_attr``) and which formulations it handles; :class:`BaseSolver`
checks both before solving and names what is missing.
"""

from ._base import BaseSolver, get_solver
from .cvxpy_solver import CvxpySolver

__all__ = ["BaseSolver", "CvxpySolver", "get_solver"]

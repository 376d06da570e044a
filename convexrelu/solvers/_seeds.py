"""Seeds of a restricted ReLU solve: the gated support.

The ReLU program (docs/mathematics.rst §3.1) restricted to a subset of the patterns is a
smaller program of the same form; the working-set loop
(:mod:`~convexrelu.solvers._column_generation`) grows such a subset from a *seed*. The
gated relaxation (docs/mathematics.rst §3.4) is cheap to solve (FISTA, no cone
constraints), and the patterns of its nonzero blocks are where a ReLU solution tends to
put its neurons: its support is the seed used here.

:func:`solve_on_gated_support` is the estimators' ``formulation="gated_relu"``: the
gated solution fixes the patterns, and the ReLU program restricted to them gives the
network (a feasible point of the full ReLU program, so never below its optimum).
"""

from __future__ import annotations

import numpy as np

from ..program import ConvexProgram, ConvexSolution
from ._base import BaseSolver

__all__ = ["gated_support", "solve_on_gated_support"]


def gated_support(program: ConvexProgram, V: np.ndarray, *, rtol: float = 1e-6
                  ) -> np.ndarray:
    """The patterns whose block of ``V`` is nonzero, as a boolean mask.

    A block counts when its penalty ``rho(v_i)`` (``program.regularizer``) exceeds
    ``rtol`` times the largest; when every block is zero, every pattern is kept.

    Parameters
    ----------
    program : ConvexProgram
    V : ndarray of shape (n_patterns, d_aug)
        Blocks of a (gated) solution.
    rtol : float, default=1e-6

    Returns
    -------
    ndarray of shape (n_patterns,), bool
    """
    size = program.regularizer.norms(V)
    used = size > rtol * max(float(size.max(initial=0.0)), 1e-300)
    if not np.any(used):
        used[:] = True
    return used


def solve_on_gated_support(program: ConvexProgram, gated: ConvexSolution,
                           solver: BaseSolver, *, rtol: float = 1e-6) -> ConvexSolution:
    """Solve the ReLU program restricted to the support of a gated solution.

    Parameters
    ----------
    program : ConvexProgram
        The program ``gated`` solves (any formulation; its ``"relu"`` form is solved).
    gated : ConvexSolution
        A solution of the gated relaxation of ``program``.
    solver : BaseSolver
        A solver of the ``"relu"`` formulation.
    rtol : float, default=1e-6
        Support threshold (:func:`gated_support`).

    Returns
    -------
    ConvexSolution
        The solution of the restricted ReLU program; ``V`` and ``W`` have one block per
        pattern of the support, in the program's pattern order.
    """
    used = gated_support(program, gated.V, rtol=rtol)
    return solver.solve(program.with_formulation("relu").restrict(used))

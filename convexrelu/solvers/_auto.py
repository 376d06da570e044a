"""``solver="auto"``: the fastest correct solver for a program, by capability and measurement.

* ``"relu"`` formulation: :class:`~convexrelu.solvers.ReluFastSolver` for smooth losses
  (cvxpy for the hinge loss, whose subgradient gives no dual point to price with). It
  runs the structured interior point on all patterns when the loss is quadratic and every
  block coordinate is penalised and ``n <= 2000`` (diabetes, P=200: 4.0 s against 86.5 s
  for cvxpy + Clarabel, ``python -m benchmarks solvers``; above 2000 samples its ``n x n``
  Newton matrix costs too much), the augmented Lagrangian
  (:class:`~convexrelu.solvers._relu_al.ReluALSolver`, linear in ``n`` per iteration) for
  several outputs, and otherwise the working-set loop whose restricted programs stay
  small (compressed Clarabel for quadratic losses, cvxpy for the others, the augmented
  Lagrangian once the restricted design ``n x (k d_aug)`` exceeds 10^7 entries). No conic
  problem over the whole pattern set is ever built.
* ``"gated_relu"``: :class:`~convexrelu.solvers.FistaSolver` for smooth losses (FISTA +
  Newton polish: 2.7x-21x faster than cvxpy + Clarabel in the same benchmark), cvxpy for
  the hinge loss.
* ``"min_norm"`` / ``"max_margin"`` (constrained programs): cvxpy.
"""

from __future__ import annotations

from ..losses import get_loss

__all__ = ["choose_solver"]


def choose_solver(formulation: str, loss) -> str:
    """The registered solver name that ``solver="auto"`` uses.

    Parameters
    ----------
    formulation : {"relu", "gated_relu", "min_norm", "max_margin"}
    loss : str or Loss

    Returns
    -------
    str
        A key of :data:`convexrelu.solvers.SOLVERS`.
    """
    loss = get_loss(loss)
    if formulation == "relu":
        # a non-smooth loss (hinge) has no unique residual dual point to price patterns
        # with: the full conic program is solved instead
        return "relu" if loss.smooth else "cvxpy"
    if formulation == "gated_relu":
        return "fista" if loss.smooth else "cvxpy"
    return "cvxpy"

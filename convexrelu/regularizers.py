"""The group penalty of the convex program: value, prox, dual norm and cvxpy expression.

Every block ``b`` (a row of ``V`` or ``W``, of length ``d_aug``) is penalised by

.. math::

    \\rho(b) = \\|b_{\\rm pen}\\|_2 ,

where ``b_pen`` is the whole block, or every coordinate but the last when the network's
hidden bias is not penalised (the *free* hidden bias, docs/mathematics.rst §8.2). The
program's penalty is :math:`\\sum_j \\rho(b_j)` over the blocks.

:class:`GroupL2Penalty` is the one place that knows which coordinates are penalised: the
solvers and certificates take it instead of a count of coordinates, and ask it for the
penalised (or free) part of a block, of the data columns or of a dual residual.

References
----------
M. Yuan and Y. Lin, "Model selection and estimation in regression with grouped
variables", J. R. Statist. Soc. B, 2006.
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact polynomial-time
convex optimization formulations for two-layer networks", ICML 2020.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["GroupL2Penalty"]


class GroupL2Penalty:
    """Sum of the Euclidean norms of the blocks' penalised coordinates.

    .. math::

        R(B) = \\sum_j \\|(b_j)_{1:k}\\|_2, \\qquad
        k = d_{\\rm aug} - 1 \\text{ with a free hidden bias, } d_{\\rm aug}
        \\text{ otherwise}.

    Blocks are the rows of ``B`` (any leading shape: ``(n_blocks, d_aug)`` or
    ``(n_outputs, n_blocks, d_aug)``); the coordinates are on the last axis. The methods
    that only slice (:meth:`penalized`, :meth:`unpenalized`) also work on torch tensors.

    Parameters
    ----------
    d_aug : int
        Length of a block (``n_features`` plus one with a hidden bias).
    free_bias : bool, default=False
        Whether the last coordinate (the hidden bias) is left unpenalised.

    Attributes
    ----------
    d_aug : int
    free : bool
        Whether there is an unpenalised coordinate.
    penalized_dim : int
        Number of penalised coordinates ``k``.

    Raises
    ------
    ValueError
        If ``d_aug`` is not a positive integer, or ``free_bias=True`` with ``d_aug < 2``.

    Examples
    --------
    >>> import numpy as np
    >>> from convexrelu.regularizers import GroupL2Penalty
    >>> pen = GroupL2Penalty(3, free_bias=True)
    >>> pen.value(np.array([[3.0, 4.0, 10.0]]))
    5.0
    """

    def __init__(self, d_aug: int, *, free_bias: bool = False) -> None:
        if (isinstance(d_aug, bool) or not isinstance(d_aug, numbers.Integral)
                or d_aug < 1):
            raise ValueError(f"d_aug must be a positive int; got {d_aug!r}.")
        if free_bias and d_aug < 2:
            raise ValueError("free_bias=True needs a block with a bias coordinate "
                             f"(d_aug >= 2); got d_aug={d_aug}.")
        self.d_aug = int(d_aug)
        self.free = bool(free_bias)
        self.penalized_dim = self.d_aug - 1 if self.free else self.d_aug

    # ------------------------------------------------------------------ views
    def penalized(self, B):
        """The penalised coordinates ``B[..., :k]`` (a view; numpy, torch or cvxpy)."""
        return B[..., :self.penalized_dim]

    def unpenalized(self, B):
        """The free coordinates ``B[..., k:]`` (empty without a free hidden bias)."""
        return B[..., self.penalized_dim:]

    # ------------------------------------------------------------------ numpy
    def norms(self, B) -> np.ndarray:
        """``rho(b)`` of every block: the norms over the last axis of :meth:`penalized`."""
        return np.linalg.norm(self.penalized(np.asarray(B)), axis=-1)

    def value(self, B) -> float:
        """``sum_j rho(b_j)`` over every block of ``B``."""
        return float(self.norms(B).sum())

    def prox(self, B, t: float) -> np.ndarray:
        """The proximal operator of ``t R``: group soft-thresholding.

        .. math:: \\operatorname{prox}_{tR}(B)_j
                  = \\Big(1 - \\frac{t}{\\|(b_j)_{\\rm pen}\\|}\\Big)_+ (b_j)_{\\rm pen}

        on the penalised coordinates; the free coordinates are returned unchanged.
        Returns a new array of ``B``'s dtype.
        """
        B = np.asarray(B)
        Bp = self.penalized(B)
        nrm = np.linalg.norm(Bp, axis=-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            fac = np.where(nrm > t, 1.0 - t / nrm, 0.0)
        if not self.free:
            return B * fac.astype(B.dtype)
        out = B.copy()
        self.penalized(out)[...] = Bp * fac.astype(B.dtype)
        return out

    def dual_norm(self, R) -> float:
        """The dual norm ``sup {<B, R> : R(B) <= 1}`` of the penalty.

        ``max_j ||(r_j)_pen||`` when the free coordinates of ``R`` are zero, ``inf``
        otherwise (a free coordinate is unbounded). A dual point ``lambda`` is feasible
        for the gated program iff the dual norm of the rows ``X_aug^T D_i lambda`` is at
        most ``alpha`` (docs/mathematics.rst §4.1).
        """
        R = np.asarray(R)
        if R.size == 0:
            return 0.0
        if self.free and np.any(self.unpenalized(R) != 0):
            return float("inf")
        return float(np.max(self.norms(R)))

    # ------------------------------------------------------------------ cvxpy
    def to_cvxpy(self, expr, *, axis: int = 1):
        """The penalty of the blocks of a 2-D cvxpy expression.

        Parameters
        ----------
        expr : cvxpy expression of shape (n_blocks, d_aug), or (d_aug, n_blocks)
        axis : {1, 0}, default=1
            The axis holding a block's coordinates (``1``: blocks are rows; ``0``: blocks
            are columns).

        Returns
        -------
        cvxpy expression
            ``sum_j ||(b_j)_pen||_2`` (convex, DPP).
        """
        import cvxpy as cp

        if axis not in (0, 1):
            raise ValueError(f"axis must be 0 or 1; got {axis!r}.")
        k = self.penalized_dim
        part = expr[:, :k] if axis == 1 else expr[:k]
        return cp.sum(cp.norm(part, 2, axis=axis))

    # ------------------------------------------------------------------ misc
    def __eq__(self, other) -> bool:
        return (isinstance(other, GroupL2Penalty) and other.d_aug == self.d_aug
                and other.free == self.free)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.d_aug, self.free))

    def __repr__(self) -> str:
        return f"GroupL2Penalty(d_aug={self.d_aug}, free_bias={self.free})"

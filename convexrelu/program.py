"""The convex training program of a two-layer ReLU network (Pilanci & Ergen, 2020).

:class:`ConvexProgram` holds the data, the activation patterns, the loss, the group
penalty (:class:`~convexrelu.regularizers.GroupL2Penalty`) and its weight ``alpha`` of the
convex program; a solver (:mod:`convexrelu.solvers`) turns
it into a :class:`ConvexSolution`. No solver code lives here: the program only knows how
to evaluate its objective and its predictions, vectorised over all patterns.

With ``X_aug = X`` (or ``[X, 1]`` with a hidden bias), patterns ``D_i = diag(d_i)``,
signed patterns ``A_i = 2 D_i - I`` and ``beta = alpha`` (docs/mathematics.rst §8.1), the ``"relu"``
formulation is

.. math::

    \\min_{\\{v_i, w_i\\},\\ c_0}\\ \\ell\\Big(\\sum_{i=1}^P D_i X_{\\rm aug}(v_i - w_i)
    + c_0\\mathbf 1;\\ y\\Big) + \\alpha\\sum_{i=1}^P\\big(\\rho(v_i) + \\rho(w_i)\\big)
    \\quad\\text{s.t.}\\quad A_i X_{\\rm aug} v_i \\ge 0,\\ A_i X_{\\rm aug} w_i \\ge 0,

where :math:`\\rho(v) = \\|v_{1:d}\\|_2` when the hidden bias is not penalised
(docs/mathematics.rst §8.2)
and :math:`\\|v\\|_2` otherwise, and :math:`c_0` is the free output bias (docs/mathematics.rst
§8.3). The
objective reported to users is this value divided by ``n_samples`` (scikit-learn's MLP
normalisation).

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact polynomial-time
convex optimization formulations for two-layer networks", ICML 2020.
A. Mishkin, A. Sahiner and M. Pilanci, "Fast convex optimization for two-layer ReLU
networks: equivalent model classes and cone decompositions", ICML 2022.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

import numpy as np

from ._memory import check_memory
from ._validation import check_data_matrix, check_nonneg_float
from .losses import Loss, get_loss
from .regularizers import GroupL2Penalty

#: rows per chunk of :func:`masked_predictions`
_PREDICT_CHUNK = 8192


def _masked_chunks(X: np.ndarray, D: np.ndarray, masks: np.ndarray):
    """Yield ``(rows, X[rows] @ D, masks[rows])`` by chunks of ``_PREDICT_CHUNK`` rows:
    the ``n x P`` product stays in cache, and the masks' chunk is copied row-major (a
    program's masks are column-major, where einsum is slow on bool)."""
    for a in range(0, X.shape[0], _PREDICT_CHUNK):
        rows = slice(a, a + _PREDICT_CHUNK)
        yield rows, X[rows] @ D, np.ascontiguousarray(masks[rows])


def masked_predictions(X: np.ndarray, D: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``sum_i masks[:, i] * (X @ D[:, i])``, the predictions of one output's blocks
    ``D`` (``d_aug x P``), by chunks of rows (:func:`_masked_chunks`; 10^6 x 21 data,
    23 patterns, one BLAS thread: 58 ms against 165 ms for the whole product and its
    masked sum)."""
    out = np.empty(X.shape[0])
    for rows, T, m in _masked_chunks(X, D, masks):
        out[rows] = np.einsum("ij,ij->i", T, m)
    return out


__all__ = ["ConvexProgram", "ConvexSolution", "Formulation", "FORMULATIONS"]

Formulation = Literal["relu", "gated_relu", "min_norm", "max_margin"]
FORMULATIONS = ("relu", "gated_relu", "min_norm", "max_margin")


@dataclass
class ConvexSolution:
    """A solution of a :class:`ConvexProgram`.

    Attributes
    ----------
    V : ndarray of shape (n_patterns, d_aug) or (n_outputs, n_patterns, d_aug)
        Positive blocks ``v_i`` (for ``"gated_relu"``: the gated weights ``w_i``).
    W : ndarray of the same shape as ``V``
        Negative blocks ``w_i`` (zeros for ``"gated_relu"``).
    output_bias : float or ndarray of shape (n_outputs,)
        The free output bias ``c0`` (``0`` when it is not fitted).
    objective : float
        The objective in scikit-learn's normalisation, ``p / n_samples``
        (for ``"min_norm"`` / ``"max_margin"``: the group norm ``R``, not divided).
    dual : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        The dual point ``lambda = -grad l_sum(y_hat)`` (sum form, docs/mathematics.rst §0); for
        ``"min_norm"`` / ``"max_margin"`` the multiplier of the data constraints.
    status : str
        The solver's status string (``"optimal"``, ``"optimal_inaccurate"``, ...).
    n_iter : int
        Iterations of the underlying solver (``>= 1``).
    solve_time : float
        Seconds spent in the numerical solve.
    build_time : float
        Seconds spent building / compiling the problem (``0`` on a cached re-solve).
    gap : float or None
        A duality gap when the solver reports one.
    formulation : str
    """

    V: np.ndarray
    W: np.ndarray
    output_bias: Union[float, np.ndarray]
    objective: float
    dual: np.ndarray
    status: str
    n_iter: int
    solve_time: float
    build_time: float = 0.0
    gap: Optional[float] = None
    formulation: str = "relu"
    info: dict = field(default_factory=dict)


def _check_alpha(alpha) -> float:
    return check_nonneg_float(alpha, "alpha")


def _check_formulation(formulation, loss: Loss, bias: bool, penalize_bias: bool) -> None:
    """Raise ValueError on an unknown formulation or one the loss / bias cannot pose."""
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {list(FORMULATIONS)}; got "
                         f"{formulation!r}.")
    if formulation == "min_norm" and loss.name != "squared":
        raise ValueError("formulation='min_norm' interpolates real targets and needs "
                         f"loss='squared'; got loss={loss.name!r}.")
    if formulation == "gated_relu" and bias and not penalize_bias:
        raise ValueError(
            "formulation='gated_relu' with an unpenalised hidden bias is degenerate: a "
            "gated neuron with u = 0 is a free multiple of its gate's indicator, so any "
            "targets are fitted at zero cost. Use penalize_bias=True (or bias=False)."
        )
    if formulation == "max_margin" and loss.name == "squared":
        raise ValueError("formulation='max_margin' needs binary labels and a "
                         "classification loss ('logistic' or 'hinge'); got 'squared'.")


class ConvexProgram:
    """Data, activation patterns, loss and ``alpha`` of the convex program (CVX).

    The program is stored in the sum-reduced form of docs/mathematics.rst §3 with ``beta =
    alpha``; the
    user-facing objective is that value divided by ``n_samples`` (docs/mathematics.rst §8.1),
    equal to
    scikit-learn's ``MLPRegressor.loss_`` for the same network.

    Formulations (``V``, ``W`` are ``(n_patterns, d_aug)`` arrays of blocks):

    * ``"relu"`` (CVX, docs/mathematics.rst §3.1): the exact equivalent of the ReLU
      training problem.

      .. math::

          \\min\\ \\ell\\Big(\\sum_i D_iX(v_i - w_i) + c_0;\\ y\\Big)
          + \\alpha\\sum_i\\big(\\rho(v_i) + \\rho(w_i)\\big)
          \\ \\text{ s.t. }\\ A_iXv_i\\ge0,\\ A_iXw_i\\ge0 .

    * ``"gated_relu"`` (C-GReLU, docs/mathematics.rst §3.4): the same without cone
      constraints and with one block per pattern (stored in ``V``; ``W = 0``); a lower
      bound on ``"relu"``.
    * ``"min_norm"`` (docs/mathematics.rst §3.2, the limit ``alpha -> 0``): minimise
      :math:`\\sum_i \\rho(v_i)+\\rho(w_i)` subject to the cone constraints and
      :math:`\\sum_iD_iX(v_i-w_i) + c_0 = y` (squared loss only).
    * ``"max_margin"`` (docs/mathematics.rst §3.3): the same with :math:`y\\circ(\\ldots)\\ge 1`
      (binary labels in ``{-1, +1}``).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data (without the bias column).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets; encoded with ``loss.encode_targets``. Several outputs are supported by
        the squared loss only: they are independent scalar programs over shared patterns
        (exact for a network whose second layer is block-diagonal, one sub-network per
        output; docs/mathematics.rst §3.7).
    patterns : ActivationPatterns
        Patterns computed on ``X`` (``patterns.check_data(X)`` is called).
    loss : {"squared", "logistic", "hinge"} or Loss
    alpha : float
        Weight decay (scikit-learn's ``alpha``), ``>= 0``.
    bias : bool
        Whether the network has a hidden bias; must match ``patterns.bias``.
    penalize_bias : bool, default=False
        Penalise the hidden bias with the weights (Pilanci–Ergen convention).
    fit_output_bias : bool, default=True
        Fit a free, unpenalised output bias ``c0``.
    formulation : {"relu", "gated_relu", "min_norm", "max_margin"}, default="relu"

    Attributes
    ----------
    X_aug : ndarray of shape (n_samples, d_aug)
    y : ndarray
        Encoded targets.
    masks : ndarray of shape (n_samples, n_patterns), bool
    signs : ndarray of shape (n_samples, n_patterns)
        ``A = 2 * masks - 1``.
    regularizer : GroupL2Penalty
        The group penalty ``rho`` of a block (every coordinate, or all but the free
        hidden bias); :meth:`penalty` is its value.

    Raises
    ------
    ValueError
        On bad data, patterns computed on other data, a ``bias`` that disagrees with the
        patterns, or an unknown formulation / unsupported loss combination.
    """

    def __init__(self, X, y, patterns, *, loss: Union[str, Loss], alpha: float, bias: bool,
                 penalize_bias: bool = False, fit_output_bias: bool = True,
                 formulation: Formulation = "relu") -> None:
        X = check_data_matrix(X)
        if formulation not in FORMULATIONS:
            _check_formulation(formulation, None, bias, penalize_bias)
        if not hasattr(patterns, "check_data") or not hasattr(patterns, "masks"):
            raise TypeError("patterns must be an ActivationPatterns (from enumerate_patterns "
                            f"or sample_patterns); got {type(patterns).__name__}.")
        patterns.check_data(X)
        if bool(bias) != bool(patterns.bias):
            raise ValueError(
                f"bias={bool(bias)} but the patterns were computed with bias="
                f"{patterns.bias}; recompute them with the same bias setting."
            )
        self.loss = get_loss(loss)
        self.alpha = _check_alpha(alpha)
        yy = self.loss.encode_targets(y)
        if yy.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {yy.shape[0]}; they must "
                             "match.")
        _check_formulation(formulation, self.loss, bias, penalize_bias)
        self.X = X
        self.y = yy
        self.patterns = patterns
        self.bias = bool(bias)
        self.penalize_bias = bool(penalize_bias)
        self.fit_output_bias = bool(fit_output_bias)
        self.formulation = formulation
        self.X_aug = patterns.augment(X)
        # the bool masks and their float64 signs
        check_memory(9 * X.shape[0] * patterns.n_patterns,
                     f"the masks of {patterns.n_patterns} patterns over {X.shape[0]} samples",
                     "use fewer patterns (max_patterns) or fewer samples")
        self.masks = patterns.masks
        self._signs = None  # their float64 signs, formed on first use (signs)
        self.regularizer = GroupL2Penalty(self.X_aug.shape[1],
                                          free_bias=self.bias and not self.penalize_bias)

    @property
    def signs(self) -> np.ndarray:
        """The cone signs ``2 D - 1`` of the masks, float64 of shape (n_samples,
        n_patterns), formed on first use (the solvers that work by chunks of rows never
        form them: ``8 n P`` bytes, 800 MB at ``n = 10^6``, ``P = 100``)."""
        if getattr(self, "_signs", None) is None:  # (a program pickled before: no _signs)
            self._signs = 2.0 * self.masks - 1.0
        return self._signs

    # ------------------------------------------------------------------ shapes
    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def d_aug(self) -> int:
        return int(self.X_aug.shape[1])

    @property
    def n_patterns(self) -> int:
        return int(self.masks.shape[1])

    @property
    def n_outputs(self) -> int:
        return 1 if self.y.ndim == 1 else int(self.y.shape[1])

    def structure_key(self) -> str:
        """A digest of everything but ``alpha`` and ``y`` (the solvers' cache key)."""
        h = hashlib.sha1(np.ascontiguousarray(self.X_aug).tobytes())
        h.update(np.ascontiguousarray(self.patterns.packed).tobytes())
        h.update(repr((self.X_aug.shape, self.n_patterns, repr(self.loss), self.formulation,
                       self.penalize_bias, self.fit_output_bias, self.y.shape)).encode())
        return h.hexdigest()

    # ------------------------------------------------------------------ evaluation
    def _blocks(self, V, W):
        V = np.asarray(V, dtype=np.float64)
        W = np.zeros_like(V) if W is None else np.asarray(W, dtype=np.float64)
        expect = (self.n_patterns, self.d_aug)
        if self.n_outputs > 1:
            expect = (self.n_outputs,) + expect
        if V.shape != expect or W.shape != expect:
            raise ValueError(f"V and W must have shape {expect}; got {V.shape} and {W.shape}.")
        return V, W

    def predict(self, V, W=None, c0=0.0) -> np.ndarray:
        """Predictions of a convex point on the training data.

        .. math::

            \\hat y = \\sum_i D_iX_{\\rm aug}(v_i - w_i) + c_0 .

        Vectorised: ``((X_aug @ (V - W).T) * masks).sum(1)``, by chunks of rows.

        Parameters
        ----------
        V, W : ndarray of shape (n_patterns, d_aug) (or (n_outputs, n_patterns, d_aug))
        c0 : float or ndarray of shape (n_outputs,), default=0.0

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        V, W = self._blocks(V, W)
        if self.n_outputs == 1:
            return masked_predictions(self.X_aug, (V - W).T, self.masks) \
                + float(np.ravel(c0)[0])
        Z = np.einsum("nd,kpd,np->nk", self.X_aug, V - W, self.masks)
        return Z + np.broadcast_to(np.asarray(c0, dtype=np.float64), (self.n_outputs,))

    def penalty(self, V, W=None) -> float:
        """Group penalty :math:`\\sum_i \\rho(v_i) + \\rho(w_i)` (not multiplied by alpha)."""
        V, W = self._blocks(V, W)
        return self.regularizer.value(V) + self.regularizer.value(W)

    def block_effects(self, V, W) -> np.ndarray:
        """Each pattern's effect on the predictions, ``max(||D_i X_aug v_i||, ||D_i X_aug
        w_i||)`` (one output; the weights' norms are not comparable across patterns when
        the features are badly scaled)."""
        V, W = np.asarray(V, np.float64), np.asarray(W, np.float64)
        k = V.shape[0]
        sq = np.zeros(2 * k)
        for _, T, m in _masked_chunks(self.X_aug, np.vstack([V, W]).T, self.masks):
            T[:, :k] *= m
            T[:, k:] *= m
            sq += np.einsum("ij,ij->j", T, T)
        nrm = np.sqrt(sq)
        return np.maximum(nrm[:k], nrm[k:])

    def objective(self, V, W=None, c0=0.0) -> float:
        """The objective in scikit-learn's normalisation (sum form divided by ``n``).

        For ``"relu"`` / ``"gated_relu"``:
        :math:`\\frac1n[\\ell(\\hat y; y) + \\alpha\\sum_i\\rho(v_i)+\\rho(w_i)]`; for
        ``"min_norm"`` / ``"max_margin"`` the group norm :math:`\\sum_i\\rho(v_i)+\\rho(w_i)`
        (constraints are not checked here, see :meth:`max_violation`).
        """
        if self.formulation in ("min_norm", "max_margin"):
            return self.penalty(V, W)
        z = self.predict(V, W, c0)
        return float((self.loss.value(z, self.y) + self.alpha * self.penalty(V, W))
                     / self.n_samples)

    def dual_point(self, V, W=None, c0=0.0) -> np.ndarray:
        """``lambda = -grad l_sum(y_hat)`` at the predictions of ``(V, W, c0)``."""
        return -self.loss.gradient(self.predict(V, W, c0), self.y)

    def max_violation(self, V, W=None) -> float:
        """Largest cone-constraint violation ``max(0, -A_i X_aug v_i)`` over all blocks."""
        V, W = self._blocks(V, W)
        worst = 0.0
        for B in (V, W):
            B = B.reshape(-1, self.n_patterns, self.d_aug)
            for Bk in B:
                worst = max(worst, float(np.max(-(self.X_aug @ Bk.T) * self.signs,
                                                initial=0.0)))
        return worst

    def with_alpha(self, alpha: float) -> "ConvexProgram":
        """A shallow copy with another ``alpha`` (same data and patterns)."""
        new = object.__new__(ConvexProgram)
        new.__dict__.update(self.__dict__)
        new.alpha = _check_alpha(alpha)
        return new

    def with_formulation(self, formulation: Formulation) -> "ConvexProgram":
        """A shallow copy posing another formulation of the same data, patterns, loss and
        ``alpha`` (e.g. the ``"relu"`` program of a ``"gated_relu"`` one).

        Raises
        ------
        ValueError
            If the loss or the bias setting cannot pose ``formulation`` (the same checks
            as the constructor).
        """
        _check_formulation(formulation, self.loss, self.bias, self.penalize_bias)
        new = object.__new__(ConvexProgram)
        new.__dict__.update(self.__dict__)
        new.formulation = formulation
        return new

    def restrict(self, keep) -> "ConvexProgram":
        """The same program over a subset of the patterns (an index array or bool mask)."""
        from .arrangements import ActivationPatterns

        keep = np.arange(self.n_patterns)[np.asarray(keep)]
        p = self.patterns
        sub = ActivationPatterns(p.packed[keep], p.gates[:, keep], n_samples=p.n_samples,
                                 n_features=p.n_features, bias=p.bias, exact=False,
                                 min_margin=p.min_margin, fingerprint=p.fingerprint,
                                 method=p.method)
        new = object.__new__(ConvexProgram)
        new.__dict__.update(self.__dict__)
        new.patterns = sub
        new.masks = self.masks[:, keep]
        new._signs = None
        return new

    def __repr__(self) -> str:
        return (f"ConvexProgram(n_samples={self.n_samples}, n_features={self.n_features}, "
                f"n_patterns={self.n_patterns}, loss={self.loss.name!r}, alpha={self.alpha:g}, "
                f"bias={self.bias}, formulation={self.formulation!r})")

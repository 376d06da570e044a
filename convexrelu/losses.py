"""Convex losses of the prediction vector: value, gradient, dual objective, cvxpy form.

Every loss is **sum-reduced** over samples (docs/mathematics.rst §1.2) and acts on targets in its
internal
encoding (see :meth:`Loss.encode_targets`): squared loss on float targets of shape
``(n_samples,)`` or ``(n_samples, n_outputs)``, logistic and hinge losses on labels in
``{-1, +1}``. The dual variable follows the convention ``lambda = -gradient(z, y)`` and the
dual objective is

.. math::

    \\mathcal D(\\lambda) = -\\ell^*(-\\lambda),
    \\qquad \\ell^*(s) = \\sup_z\\ s^\\top z - \\ell(z; y),

so that Fenchel–Young reads :math:`\\mathcal D(\\lambda) \\le \\ell(z) + \\lambda^\\top z`,
with equality exactly when :math:`\\lambda = -\\nabla\\ell(z)`.

The classes are small and stateless, in the spirit of skglm's datafits: a solver asks a
loss for what it needs (``smooth``, ``lipschitz``, ``gradient``, ``cvxpy_value``) and never
inspects its type.

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact polynomial-time
convex optimization formulations for two-layer networks", ICML 2020.
"""

from __future__ import annotations

from typing import Literal, Union

import numpy as np

__all__ = ["Loss", "SquaredLoss", "LogisticLoss", "HingeLoss", "get_loss", "LossName"]

LossName = Literal["squared", "logistic", "hinge"]


def _as_float_array(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} is complex ({arr.dtype}); only real values are supported.")
    try:
        arr = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be numeric; got dtype {np.asarray(a).dtype} ({exc})."
        ) from None
    return arr


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    """``-p log p - (1-p) log(1-p)`` with ``0 log 0 = 0`` (nats), for ``p`` in [0, 1]."""
    p = np.clip(p, 0.0, 1.0)
    q = 1.0 - p
    out = np.zeros_like(p)
    mp = p > 0
    mq = q > 0
    out[mp] -= p[mp] * np.log(p[mp])
    out[mq] -= q[mq] * np.log(q[mq])
    return out


class Loss:
    """Base class of the sum-reduced convex losses.

    Subclasses set :attr:`name` and :attr:`smooth` and implement :meth:`value`,
    :meth:`gradient`, :meth:`dual_objective`, :meth:`max_dual_scale`,
    :meth:`cvxpy_value` and :meth:`encode_targets`.

    Attributes
    ----------
    name : str
        ``"squared"``, ``"logistic"`` or ``"hinge"``.
    smooth : bool
        Whether the gradient is Lipschitz (``lipschitz`` is then finite).
    lipschitz : float
        A Lipschitz constant of ``z -> gradient(z, y)`` (``inf`` for non-smooth losses).
    """

    name: str = ""
    smooth: bool = False
    lipschitz: float = float("inf")

    # ---------------------------------------------------------------- interface
    def value(self, z, y) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def gradient(self, z, y) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def dual_objective(self, lam, y) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def max_dual_scale(self, lam, y) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def cvxpy_value(self, z, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_targets(self, y) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers
    def dual_point(self, z, y) -> np.ndarray:
        """The dual point ``lambda = -gradient(z, y)`` of docs/mathematics.rst §0."""
        return -self.gradient(z, y)

    def _pair(self, z, y, zname: str = "z") -> tuple[np.ndarray, np.ndarray]:
        z = _as_float_array(z, zname)
        y = _as_float_array(y, "y")
        if z.shape != y.shape:
            raise ValueError(
                f"{zname} and y must have the same shape; got {zname}.shape={z.shape} and "
                f"y.shape={y.shape}. Encode the targets with loss.encode_targets(y) first."
            )
        return z, y

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


class SquaredLoss(Loss):
    """Squared loss, scaled like scikit-learn's ``MLPRegressor``.

    For targets of shape ``(n_samples,)`` (``c = 1``) or ``(n_samples, c)``:

    .. math::

        \\ell(Z; Y) = \\frac{1}{2c}\\|Z - Y\\|_F^2,\\qquad
        \\nabla\\ell = \\frac{1}{c}(Z - Y),\\qquad
        \\mathcal D(\\Lambda) = \\langle\\Lambda, Y\\rangle - \\frac c2\\|\\Lambda\\|_F^2 .

    (The conjugate of :math:`\\frac1{2c}\\|Z-Y\\|^2` is
    :math:`\\ell^*(S) = \\langle S, Y\\rangle + \\frac c2\\|S\\|^2`, so
    :math:`\\mathcal D(\\Lambda) = -\\ell^*(-\\Lambda)` is as above.) With ``c = 1`` this
    is the table entry of docs/mathematics.rst §1.2; the factor ``1/c`` reproduces scikit-learn's
    mean
    over all ``n * c`` entries after the overall ``1/n`` of the objective.
    """

    name = "squared"
    smooth = True

    @staticmethod
    def _c(y: np.ndarray) -> int:
        return 1 if y.ndim < 2 else int(y.shape[1])

    @property
    def lipschitz(self) -> float:  # type: ignore[override]
        """``1`` (an upper bound for ``1/c``)."""
        return 1.0

    def value(self, z, y) -> float:
        """``(1/(2c)) ||z - y||^2``."""
        z, y = self._pair(z, y)
        r = z - y
        return float(0.5 * np.sum(r * r) / self._c(y))

    def gradient(self, z, y) -> np.ndarray:
        """``(z - y) / c``."""
        z, y = self._pair(z, y)
        return (z - y) / self._c(y)

    def dual_objective(self, lam, y) -> float:
        """``<lam, y> - (c/2) ||lam||^2`` (finite everywhere)."""
        lam, y = self._pair(lam, y, "lam")
        c = self._c(y)
        return float(np.sum(lam * y) - 0.5 * c * np.sum(lam * lam))

    def max_dual_scale(self, lam, y) -> float:
        """``inf``: the dual objective has full domain."""
        self._pair(lam, y, "lam")
        return float("inf")

    def cvxpy_value(self, z, y):
        """``cp.sum_squares(z - y) / (2c)``; ``y`` may be a ``cp.Parameter``."""
        import cvxpy as cp

        shape = tuple(getattr(y, "shape", np.shape(y)))
        c = 1 if len(shape) < 2 else int(shape[1])
        return cp.sum_squares(z - y) / (2.0 * c)

    def encode_targets(self, y) -> np.ndarray:
        """Float targets of shape ``(n,)`` or ``(n, c)``; a column ``(n, 1)`` is flattened.

        Raises
        ------
        ValueError
            If ``y`` is not numeric, not 1-D/2-D, empty or not finite.
        """
        y = _as_float_array(y, "y")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim not in (1, 2) or y.shape[0] == 0:
            raise ValueError(
                "y must be of shape (n_samples,) or (n_samples, n_outputs) with "
                f"n_samples >= 1; got shape {y.shape}."
            )
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity; the squared loss needs finite targets.")
        return y


class _BinaryLoss(Loss):
    """Shared pieces of the losses on labels ``y`` in ``{-1, +1}``."""

    def _pair(self, z, y, zname: str = "z"):
        z, y = super()._pair(z, y, zname)
        if z.ndim != 1:
            raise ValueError(
                f"the {self.name} loss takes one output: {zname} and y must be 1-D of shape "
                f"(n_samples,); got shape {z.shape}."
            )
        return z, y

    def encode_targets(self, y) -> np.ndarray:
        """Labels as ``{-1, +1}`` floats.

        ``{-1, +1}`` labels are kept, ``{0, 1}`` labels map to ``2y - 1``, and any other
        pair of labels maps its sorted classes ``classes[0] -> -1``,
        ``classes[1] -> +1`` (scikit-learn's positive class is ``classes_[1]``).

        Raises
        ------
        ValueError
            If ``y`` is not 1-D, empty, or does not hold exactly two classes.
        """
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1 or arr.shape[0] == 0:
            raise ValueError(
                f"y for the {self.name} loss must be a 1-D array of binary labels; got shape "
                f"{arr.shape}."
            )
        if arr.dtype.kind in "biuf":
            a = arr.astype(np.float64)
            if not np.all(np.isfinite(a)):
                raise ValueError("y contains NaN or infinity; pass binary labels.")
            vals = set(np.unique(a).tolist())
            if vals <= {-1.0, 1.0}:
                return a
            if vals <= {0.0, 1.0}:
                return 2.0 * a - 1.0
        classes = np.unique(arr)
        if classes.shape[0] != 2:
            shown = classes[:10].tolist()
            raise ValueError(
                f"the {self.name} loss needs exactly two classes; y holds {classes.shape[0]} "
                f"distinct value(s) {shown}{'...' if classes.shape[0] > 10 else ''}. Use the "
                "squared loss for regression or one-vs-rest for several classes."
            )
        return np.where(arr == classes[1], 1.0, -1.0)

    def max_dual_scale(self, lam, y) -> float:
        """Largest ``s >= 0`` with ``0 <= s * y_i * lam_i <= 1`` for all ``i``.

        ``0`` if some ``y_i lam_i < 0``; ``inf`` if all ``y_i lam_i == 0``.
        """
        lam, y = self._pair(lam, y, "lam")
        t = y * lam
        if np.any(t < 0):
            return 0.0
        tmax = float(np.max(t)) if t.size else 0.0
        return float("inf") if tmax <= 0 else 1.0 / tmax

    def _in_domain(self, t: np.ndarray) -> bool:
        return bool(np.all((t >= 0) & (t <= 1)))


class LogisticLoss(_BinaryLoss):
    """Logistic loss on one logit per sample, labels in ``{-1, +1}``.

    .. math::

        \\ell(z; y) = \\sum_i \\log(1 + e^{-y_i z_i}),\\qquad
        \\lambda_i = y_i\\,\\sigma(-y_i z_i),\\qquad
        \\mathcal D(\\lambda) = \\sum_i H(y_i\\lambda_i)\\ \\text{ on } 0 \\le y_i\\lambda_i \\le 1,

    with :math:`H` the binary entropy in nats (:math:`0\\log0 = 0`). Equals scikit-learn's
    binary log-loss of ``MLPClassifier`` times ``n`` (labels ``{0, 1}`` -> ``2t - 1``).
    """

    name = "logistic"
    smooth = True
    lipschitz = 0.25

    def value(self, z, y) -> float:
        """``sum_i log(1 + exp(-y_i z_i))`` computed with ``np.logaddexp``."""
        z, y = self._pair(z, y)
        return float(np.sum(np.logaddexp(0.0, -y * z)))

    def gradient(self, z, y) -> np.ndarray:
        """``-y_i sigma(-y_i z_i)``."""
        z, y = self._pair(z, y)
        from scipy.special import expit

        return -y * expit(-y * z)

    def dual_objective(self, lam, y) -> float:
        """``sum_i H(y_i lam_i)``, ``-inf`` unless ``0 <= y_i lam_i <= 1`` for all ``i``."""
        lam, y = self._pair(lam, y, "lam")
        t = y * lam
        if not self._in_domain(t):
            return float("-inf")
        return float(np.sum(_binary_entropy(t)))

    def cvxpy_value(self, z, y):
        """``cp.sum(cp.logistic(-cp.multiply(y, z)))``."""
        import cvxpy as cp

        return cp.sum(cp.logistic(-cp.multiply(y, z)))


class HingeLoss(_BinaryLoss):
    """Hinge loss, labels in ``{-1, +1}``.

    .. math::

        \\ell(z; y) = \\sum_i \\max(0, 1 - y_i z_i),\\qquad
        \\mathcal D(\\lambda) = \\sum_i y_i\\lambda_i\\ \\text{ on } 0 \\le y_i\\lambda_i \\le 1 .

    :meth:`gradient` returns the subgradient with :math:`\\theta_i = 1` where
    :math:`y_iz_i < 1` and :math:`0` elsewhere.
    """

    name = "hinge"
    smooth = False
    lipschitz = float("inf")

    def value(self, z, y) -> float:
        """``sum_i max(0, 1 - y_i z_i)``."""
        z, y = self._pair(z, y)
        return float(np.sum(np.maximum(0.0, 1.0 - y * z)))

    def gradient(self, z, y) -> np.ndarray:
        """A subgradient: ``-y_i`` where ``y_i z_i < 1``, ``0`` elsewhere."""
        z, y = self._pair(z, y)
        return np.where(y * z < 1.0, -y, 0.0)

    def dual_objective(self, lam, y) -> float:
        """``sum_i y_i lam_i``, ``-inf`` unless ``0 <= y_i lam_i <= 1`` for all ``i``."""
        lam, y = self._pair(lam, y, "lam")
        t = y * lam
        if not self._in_domain(t):
            return float("-inf")
        return float(np.sum(t))

    def cvxpy_value(self, z, y):
        """``cp.sum(cp.pos(1 - cp.multiply(y, z)))``."""
        import cvxpy as cp

        return cp.sum(cp.pos(1 - cp.multiply(y, z)))


_LOSSES = {"squared": SquaredLoss, "logistic": LogisticLoss, "hinge": HingeLoss}


def get_loss(loss: Union[str, Loss]) -> Loss:
    """Return a :class:`Loss` from its name or pass an instance through.

    Parameters
    ----------
    loss : {"squared", "logistic", "hinge"} or Loss

    Returns
    -------
    Loss

    Raises
    ------
    ValueError
        For an unknown name or an object that is not a :class:`Loss`.
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in _LOSSES:
        return _LOSSES[loss]()
    raise ValueError(
        f"unknown loss {loss!r}; valid names are {sorted(_LOSSES)} (or pass a "
        "convexrelu.losses.Loss instance)."
    )

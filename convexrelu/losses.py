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

import copy
from typing import Literal, Optional, Union

import numpy as np
from scipy.special import expit

__all__ = ["Loss", "SquaredLoss", "HuberLoss", "LogisticLoss", "HingeLoss", "SoftmaxLoss",
           "get_loss", "loss_names", "LOSSES", "LossName"]

LossName = Literal["squared", "huber", "logistic", "hinge", "softmax"]

_LOSSES: dict = {}


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


def shift_invariant(loss) -> bool:
    """Whether ``loss`` (a :class:`Loss`) is declared shift-invariant by its own class
    (:attr:`Loss.shift_invariant`; a subclass does not inherit the declaration)."""
    return bool(type(loss).__dict__.get("shift_invariant", False))


class Loss:
    """Base class of the sum-reduced convex losses.

    A loss carries all of its own mathematics, so that no solver or certificate needs to
    know which loss it is (skglm's datafits are the model). Subclasses set :attr:`name`,
    :attr:`task` and :attr:`smooth` and implement :meth:`value`, :meth:`gradient`,
    :meth:`dual_objective`, :meth:`max_dual_scale`, :meth:`cvxpy_value`,
    :meth:`torch_value` and :meth:`encode_targets`; they may override the generic
    :meth:`curvature`, :meth:`output_shift` and :meth:`best_dual_scale` with closed forms.
    Defining a subclass with a ``name`` registers it: :func:`get_loss` then finds it and
    the estimators, solvers, certificates, trainer and CLI accept it by name.

    Attributes
    ----------
    name : str
        The registered name (``"squared"``, ``"logistic"``, ...).
    task : {"regression", "classification"}
        Which estimator family may use the loss.
    smooth : bool
        Whether the gradient is Lipschitz (``lipschitz`` is then finite).
    lipschitz : float
        A Lipschitz constant of ``z -> gradient(z, y)`` (``inf`` for non-smooth losses).
    multi_output : bool
        Whether the loss acts on ``(n_samples, n_outputs)`` arrays jointly.
    shift_invariant : bool
        Whether the loss depends on predictions and targets only through ``z - y``: a
        regressor then solves each target shifted by its median (the free output bias
        absorbs the shift; the solvers keep their digits on a target far from 0). Read
        only from the class that declares it, so a subclass that changes :meth:`value`
        is not taken as invariant unless it says so.
    """

    name: str = ""
    task: str = "regression"
    smooth: bool = False
    lipschitz: float = float("inf")
    multi_output: bool = False
    shift_invariant: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name") and not cls.__name__.startswith("_"):
            _LOSSES[cls.name] = cls

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

    def torch_value(self, z, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_targets(self, y) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---------------------------------------------------------------- generic mathematics
    def curvature(self, z, y) -> Optional[np.ndarray]:
        """Diagonal of the Hessian of ``z -> value(z, y)``; ``None`` if it has none.

        Newton-type solvers use it; a loss without second derivatives (hinge) returns
        ``None`` and those solvers are not offered for it.
        """
        return None

    def constant_curvature(self, y) -> Optional[float]:
        """``h`` when the Hessian is ``h * I`` everywhere (a quadratic loss), else ``None``.

        Solvers that need a quadratic loss (the interior point, the compressed conic
        inner solve) check this capability.
        """
        return None

    def dual_point(self, z, y) -> np.ndarray:
        """The dual point ``lambda = -gradient(z, y)`` (docs/mathematics.rst §0)."""
        return -self.gradient(z, y)

    def output_shift(self, z, y):
        """``delta`` minimising ``value(z + delta, y)`` (per output column).

        At ``z + delta`` the dual point sums to zero, ``1^T lambda = 0``, which is the
        dual constraint of a free output bias (docs/mathematics.rst §8.3). Generic: bisection
        on the monotone derivative. Returns ``nan`` where no finite minimiser exists
        (e.g. the logistic loss with one class).
        """
        z, y = self._pair(z, y)
        if z.ndim == 2:
            return np.array([self._shift_1d(z, y, k) for k in range(z.shape[1])])
        return self._shift_1d(z, y, None)

    def _shift_1d(self, z, y, k) -> float:
        def h(delta: float) -> float:
            if k is None:
                return float(np.sum(self.gradient(z + delta, y)))
            zz = z.copy()
            zz[:, k] += delta
            return float(np.sum(self.gradient(zz, y)[:, k]))

        h0 = h(0.0)
        if h0 == 0.0:
            return 0.0
        step = 1.0
        lo, hi = (0.0, step) if h0 < 0 else (-step, 0.0)
        for _ in range(80):  # bracket the root (h is non-decreasing in delta)
            if h(lo) <= 0.0 <= h(hi):
                break
            step *= 2.0
            if h0 < 0:
                lo, hi = hi, hi + step
            else:
                lo, hi = lo - step, lo
        else:
            return float("nan")
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if h(mid) < 0.0:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def best_dual_scale(self, lam, y, s_max: float) -> tuple[float, float]:
        """``(s, D(s lam))`` with ``s in [0, s_max]`` maximising the concave ``D(s lam)``.

        ``s_max`` is further capped by :meth:`max_dual_scale` (the domain of the dual).
        Generic: a bounded scalar search (closed forms in the subclasses where they exist).
        """
        from scipy.optimize import minimize_scalar

        lam = np.asarray(lam, dtype=np.float64)
        s_max = min(float(s_max), float(self.max_dual_scale(lam, y)))

        def neg(s: float) -> float:
            val = self.dual_objective(s * lam, y)
            return -val if np.isfinite(val) else np.inf

        hi = s_max
        if not np.isfinite(hi):
            hi = 1.0
            while neg(2 * hi) < neg(hi) and hi < 1e12:
                hi *= 2
            hi *= 2
        cands = [(0.0, -neg(0.0)), (hi, -neg(hi))]
        s1 = min(1.0, hi)
        cands.append((s1, -neg(s1)))
        if hi > 0:
            res = minimize_scalar(neg, bounds=(0.0, hi), method="bounded",
                                  options={"xatol": 1e-10 * hi})
            cands.append((float(res.x), -float(res.fun)))
        s, val = max(cands, key=lambda t: t[1])
        return float(s), float(val)

    def column_loss(self, n_outputs: int) -> "Loss":
        """The loss of one column of an ``n_outputs``-output problem, solved on its own.

        scikit-learn averages a regression loss over all ``n * n_outputs`` entries, so a
        column keeps the share ``1 / n_outputs`` (losses with an ``n_outputs`` parameter);
        for one output the loss itself.

        Raises
        ------
        ValueError
            For a loss without per-column scaling and ``n_outputs > 1``.
        """
        if int(n_outputs) == 1:
            return self
        if "n_outputs" not in self.__dict__:
            raise ValueError(f"{self!r} cannot be split into columns; fit one output or use "
                             "a loss with an n_outputs parameter (squared, huber).")
        new = copy.copy(self)
        new.n_outputs = int(n_outputs)
        return new

    # ---------------------------------------------------------------- helpers
    def _pair(self, z, y, zname: str = "z") -> tuple[np.ndarray, np.ndarray]:
        z = _as_float_array(z, zname)
        y = _as_float_array(y, "y")
        if z.shape != y.shape:
            raise ValueError(
                f"{zname} and y must have the same shape; got {zname}.shape={z.shape} and "
                f"y.shape={y.shape}. Encode the targets with loss.encode_targets(y) first."
            )
        return z, y

    def _params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._params() == other._params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self._params().items()))))


def _output_count(y: np.ndarray, n_outputs: Optional[int]) -> int:
    if n_outputs is not None:
        return int(n_outputs)
    return 1 if y.ndim < 2 else int(y.shape[1])


def _check_n_outputs(n_outputs) -> Optional[int]:
    if n_outputs is None:
        return None
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, (int, np.integer)) \
            or n_outputs < 1:
        raise ValueError(f"n_outputs must be None or a positive int; got {n_outputs!r}.")
    return int(n_outputs)


def _encode_real_targets(y, name: str) -> np.ndarray:
    y = _as_float_array(y, "y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2) or y.shape[0] == 0:
        raise ValueError(
            "y must be of shape (n_samples,) or (n_samples, n_outputs) with "
            f"n_samples >= 1; got shape {y.shape}."
        )
    if not np.all(np.isfinite(y)):
        raise ValueError(f"y contains NaN or infinity; the {name} loss needs finite targets.")
    return y


class _RegressionLoss(Loss):
    """Shared pieces of the losses on real targets with scikit-learn's ``1/c`` output share:
    the ``n_outputs`` parameter, the Lipschitz bound and the target encoding."""

    smooth = True

    def _c(self, y: np.ndarray) -> int:
        return _output_count(y, self.n_outputs)

    @property
    def lipschitz(self) -> float:  # type: ignore[override]
        """``1`` (an upper bound for ``1/c``)."""
        return 1.0

    def best_dual_scale(self, lam, y, s_max: float) -> tuple[float, float]:
        """Closed form ``s = clip(<lam, y> / (c ||lam||^2), 0, s_max)`` (the dual of both
        losses is ``<lam, y> - (c/2)||lam||^2``), ``s_max`` capped by the dual domain."""
        lam, y = self._pair(lam, y, "lam")
        s_max = min(float(s_max), self.max_dual_scale(lam, y))
        nrm2 = float(np.sum(lam * lam)) * self._c(y)
        s = 0.0 if nrm2 == 0.0 else float(np.clip(np.sum(lam * y) / nrm2, 0.0, s_max))
        return s, float(self.dual_objective(s * lam, y))

    def encode_targets(self, y) -> np.ndarray:
        """Float targets of shape ``(n,)`` or ``(n, c)``; a column ``(n, 1)`` is flattened.

        Raises
        ------
        ValueError
            If ``y`` is not numeric, not 1-D/2-D, empty or not finite.
        """
        return _encode_real_targets(y, self.name)


class SquaredLoss(_RegressionLoss):
    """Squared loss, scaled like scikit-learn's ``MLPRegressor``.

    For targets of shape ``(n_samples,)`` or ``(n_samples, c)``:

    .. math::

        \\ell(Z; Y) = \\frac{1}{2c}\\|Z - Y\\|_F^2,\\qquad
        \\nabla\\ell = \\frac{1}{c}(Z - Y),\\qquad
        \\mathcal D(\\Lambda) = \\langle\\Lambda, Y\\rangle - \\frac c2\\|\\Lambda\\|_F^2 .

    (The conjugate of :math:`\\frac1{2c}\\|Z-Y\\|^2` is
    :math:`\\ell^*(S) = \\langle S, Y\\rangle + \\frac c2\\|S\\|^2`.) scikit-learn averages
    the squared loss over all ``n * c`` entries, hence the factor ``1/c``.

    Parameters
    ----------
    n_outputs : int or None, default=None
        ``c``. ``None`` takes it from the shape of ``y`` (``1`` for a vector). A column of
        a ``c``-output problem solved on its own passes ``n_outputs=c``, so that the
        column's program keeps its share ``1/c`` of the loss.
    """

    name = "squared"
    shift_invariant = True

    def __init__(self, n_outputs: Optional[int] = None) -> None:
        self.n_outputs = _check_n_outputs(n_outputs)

    def _params(self) -> dict:
        return {} if self.n_outputs is None else {"n_outputs": self.n_outputs}

    def value(self, z, y) -> float:
        """``(1/(2c)) ||z - y||^2``."""
        z, y = self._pair(z, y)
        r = z - y
        return float(0.5 * np.sum(r * r) / self._c(y))

    def gradient(self, z, y) -> np.ndarray:
        """``(z - y) / c``."""
        z, y = self._pair(z, y)
        return (z - y) / self._c(y)

    def curvature(self, z, y) -> np.ndarray:
        """``1/c`` everywhere."""
        z, y = self._pair(z, y)
        return np.full(z.shape, 1.0 / self._c(y))

    def constant_curvature(self, y) -> float:
        """``1/c``: the loss is quadratic."""
        return 1.0 / self._c(np.asarray(y))

    def dual_objective(self, lam, y) -> float:
        """``<lam, y> - (c/2) ||lam||^2`` (finite everywhere)."""
        lam, y = self._pair(lam, y, "lam")
        c = self._c(y)
        return float(np.sum(lam * y) - 0.5 * c * np.sum(lam * lam))

    def max_dual_scale(self, lam, y) -> float:
        """``inf``: the dual objective has full domain."""
        self._pair(lam, y, "lam")
        return float("inf")

    def output_shift(self, z, y):
        """Closed form: the mean residual ``mean(y - z)`` (per column)."""
        z, y = self._pair(z, y)
        return np.mean(y - z, axis=0) if z.ndim == 2 else float(np.mean(y - z))

    def cvxpy_value(self, z, y):
        """``cp.sum_squares(z - y) / (2c)``; ``y`` may be a ``cp.Parameter``."""
        import cvxpy as cp

        shape = tuple(getattr(y, "shape", np.shape(y)))
        c = self.n_outputs or (1 if len(shape) < 2 else int(shape[1]))
        return cp.sum_squares(z - y) / (2.0 * c)

    def torch_value(self, z, y):
        """``((z - y)^2).sum() / (2c)`` on torch tensors."""
        c = self.n_outputs or (1 if y.dim() < 2 else int(y.shape[1]))
        return 0.5 * ((z - y) ** 2).sum() / c


class HuberLoss(_RegressionLoss):
    """Huber loss (robust regression), with the same ``1/c`` scaling as :class:`SquaredLoss`.

    With the residual :math:`r = z - y` and threshold :math:`\\delta > 0`,

    .. math::

        \\ell(z; y) = \\frac1c\\sum_i \\phi_\\delta(r_i),\\qquad
        \\phi_\\delta(r) = \\begin{cases} r^2/2 & |r| \\le \\delta \\\\
        \\delta(|r| - \\delta/2) & |r| > \\delta \\end{cases},

        \\lambda_i = -\\tfrac1c\\,\\operatorname{clip}(r_i, -\\delta, \\delta),\\qquad
        \\mathcal D(\\lambda) = \\langle\\lambda, y\\rangle - \\frac c2\\|\\lambda\\|^2
        \\ \\text{ on } |\\lambda_i| \\le \\delta / c .

    (The conjugate of :math:`\\phi_\\delta` is :math:`s^2/2` on :math:`|s|\\le\\delta`.)
    Large residuals cost linearly, so outliers pull the fit less than under the squared
    loss; as :math:`\\delta\\to\\infty` it is the squared loss.

    Parameters
    ----------
    delta : float, default=1.0
        The threshold between the quadratic and the linear part, in the units of ``y``.
    n_outputs : int or None, default=None
        As in :class:`SquaredLoss`.

    References
    ----------
    P. J. Huber, "Robust estimation of a location parameter", Ann. Math. Statist., 1964.
    """

    name = "huber"
    shift_invariant = True

    def __init__(self, delta: float = 1.0, n_outputs: Optional[int] = None) -> None:
        try:
            d = float(delta)
        except (TypeError, ValueError):
            raise ValueError(f"delta must be a positive float; got {delta!r}.") from None
        if not (np.isfinite(d) and d > 0):
            raise ValueError(f"delta must be a positive float; got {delta!r}.")
        self.delta = d
        self.n_outputs = _check_n_outputs(n_outputs)

    def _params(self) -> dict:
        out = {"delta": self.delta}
        if self.n_outputs is not None:
            out["n_outputs"] = self.n_outputs
        return out

    def value(self, z, y) -> float:
        """``(1/c) sum_i phi_delta(z_i - y_i)``."""
        z, y = self._pair(z, y)
        a = np.abs(z - y)
        d = self.delta
        return float(np.sum(np.where(a <= d, 0.5 * a * a, d * (a - 0.5 * d))) / self._c(y))

    def gradient(self, z, y) -> np.ndarray:
        """``clip(z - y, -delta, delta) / c``."""
        z, y = self._pair(z, y)
        return np.clip(z - y, -self.delta, self.delta) / self._c(y)

    def curvature(self, z, y) -> np.ndarray:
        """``1/c`` where ``|z - y| < delta``, ``0`` elsewhere."""
        z, y = self._pair(z, y)
        return np.where(np.abs(z - y) < self.delta, 1.0 / self._c(y), 0.0)

    def dual_objective(self, lam, y) -> float:
        """``<lam, y> - (c/2)||lam||^2``; ``-inf`` unless ``|lam_i| <= delta / c``."""
        lam, y = self._pair(lam, y, "lam")
        c = self._c(y)
        if np.any(np.abs(lam) > self.delta / c * (1 + 1e-12)):
            return float("-inf")
        return float(np.sum(lam * y) - 0.5 * c * np.sum(lam * lam))

    def max_dual_scale(self, lam, y) -> float:
        """``delta / (c max|lam_i|)`` (``inf`` for ``lam = 0``)."""
        lam, y = self._pair(lam, y, "lam")
        m = float(np.max(np.abs(lam), initial=0.0))
        return float("inf") if m == 0 else self.delta / (self._c(y) * m)

    def cvxpy_value(self, z, y):
        """``cp.sum(cp.huber(z - y, delta)) / (2c)`` (cvxpy's huber is twice ours)."""
        import cvxpy as cp

        shape = tuple(getattr(y, "shape", np.shape(y)))
        c = self.n_outputs or (1 if len(shape) < 2 else int(shape[1]))
        return cp.sum(cp.huber(z - y, self.delta)) / (2.0 * c)

    def torch_value(self, z, y):
        """``torch.nn.functional.huber_loss(z, y, reduction="sum", delta=delta) / c``."""
        import torch

        c = self.n_outputs or (1 if y.dim() < 2 else int(y.shape[1]))
        return torch.nn.functional.huber_loss(z, y, reduction="sum", delta=self.delta) / c


class _BinaryLoss(Loss):
    """Shared pieces of the losses on labels ``y`` in ``{-1, +1}``."""

    task = "classification"

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
        return -y * expit(-y * z)

    def curvature(self, z, y) -> np.ndarray:
        """``sigma(z_i) (1 - sigma(z_i))``."""
        z, y = self._pair(z, y)
        p = expit(-y * z)
        return (y * y) * p * (1.0 - p)

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

    def torch_value(self, z, y):
        """``softplus(-y z).sum()`` on torch tensors."""
        import torch

        return torch.nn.functional.softplus(-y * z).sum()


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

    def torch_value(self, z, y):
        """``clamp(1 - y z, min=0).sum()`` on torch tensors."""
        import torch

        return torch.clamp(1.0 - y * z, min=0.0).sum()


class SoftmaxLoss(Loss):
    """Softmax cross-entropy over ``c`` classes, sum-reduced, one-hot targets ``Y``.

    .. math::

        \\ell(Z; Y) = \\sum_i \\big[\\operatorname{lse}(Z_{i:}) - \\langle Y_{i:}, Z_{i:}
        \\rangle\\big],\\qquad \\Lambda = Y - \\operatorname{softmax}(Z),\\qquad
        \\mathcal D(\\Lambda) = \\sum_i \\operatorname{Ent}(Y_{i:} - \\Lambda_{i:})

    on rows ``Y_{i:} - Lambda_{i:}`` in the simplex (docs/mathematics.rst §1.2). This is the
    loss of scikit-learn's ``MLPClassifier`` with more than two classes (times ``n``).
    """

    name = "softmax"
    task = "classification"
    smooth = True
    lipschitz = 1.0
    multi_output = True

    def _pair(self, z, y, zname: str = "z"):
        z, y = super()._pair(z, y, zname)
        if z.ndim != 2 or z.shape[1] < 2:
            raise ValueError(f"the softmax loss needs (n_samples, n_classes) arrays with at "
                             f"least 2 classes; got {zname} of shape {z.shape}.")
        return z, y

    @staticmethod
    def _logp(Z):
        Z = Z - Z.max(axis=1, keepdims=True)
        return Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))

    def value(self, z, y) -> float:
        """``-sum(Y * log_softmax(Z))``."""
        z, y = self._pair(z, y)
        return float(-np.sum(self._logp(z) * y))

    def gradient(self, z, y) -> np.ndarray:
        """``softmax(Z) - Y``."""
        z, y = self._pair(z, y)
        return np.exp(self._logp(z)) - y

    def dual_objective(self, lam, y) -> float:
        """``sum_i Ent(Y_i - Lambda_i)``; ``-inf`` outside the simplex."""
        lam, y = self._pair(lam, y, "lam")
        Q = y - lam
        if np.any(Q < -1e-12) or np.any(np.abs(Q.sum(axis=1) - 1) > 1e-9):
            return float("-inf")
        Q = np.clip(Q, 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(Q > 0, -Q * np.log(np.where(Q > 0, Q, 1.0)), 0.0)
        return float(np.sum(t))

    def max_dual_scale(self, lam, y) -> float:
        """``1`` (a valid cap: ``Y - s Lambda`` stays in the simplex for ``s in [0, 1]``
        when ``Lambda = Y - softmax``)."""
        return 1.0

    def output_shift(self, z, y):
        """Newton's method on the output biases (the loss is invariant along ``1``, so
        steps use the pseudo-inverse of the Hessian ``sum_i diag(p_i) - p_i p_i^T``)."""
        z, y = self._pair(z, y)
        n, c = z.shape
        delta = np.zeros(c)
        f = self.value(z, y)
        for _ in range(50):
            P = np.exp(self._logp(z + delta))
            g = (P - y).sum(axis=0)
            if np.max(np.abs(g)) <= 1e-13 * n:
                break
            H = np.diag(P.sum(axis=0)) - P.T @ P
            step = np.linalg.lstsq(H, g, rcond=None)[0]
            t = 1.0
            f_new = f
            while t > 1e-10:
                f_new = self.value(z + delta - t * step, y)
                if f_new <= f + 1e-14 * max(1.0, abs(f)):
                    break
                t *= 0.5
            delta = delta - t * step
            f = f_new
        return delta

    def cvxpy_value(self, z, y):
        """``sum(log_sum_exp(Z, axis=1)) - sum(Y * Z)``."""
        import cvxpy as cp

        return cp.sum(cp.log_sum_exp(z, axis=1)) - cp.sum(cp.multiply(y, z))

    def torch_value(self, z, y):
        """``-(Y * log_softmax(Z)).sum()`` on torch tensors."""
        import torch

        return -(y * torch.log_softmax(z, dim=1)).sum()

    def encode_targets(self, y) -> np.ndarray:
        """One-hot targets of shape ``(n, c)``: a one-hot matrix is kept, 1-D labels are
        encoded over their sorted classes.

        Raises
        ------
        ValueError
            For fewer than two classes or a matrix whose rows are not one-hot.
        """
        arr = np.asarray(y)
        if arr.ndim == 2:
            Y = _as_float_array(arr, "y")
            if Y.shape[1] < 2 or not np.all((Y == 0) | (Y == 1)) or \
                    not np.all(Y.sum(axis=1) == 1):
                raise ValueError("y for the softmax loss must be class labels or a one-hot "
                                 f"matrix with >= 2 columns; got shape {Y.shape}.")
            return Y
        if arr.ndim != 1 or arr.shape[0] == 0:
            raise ValueError(f"y for the softmax loss must be 1-D class labels; got shape "
                             f"{arr.shape}.")
        classes, idx = np.unique(arr, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError("the softmax loss needs at least two classes; y holds "
                             f"{classes.shape[0]}.")
        return np.eye(classes.shape[0])[idx]


def get_loss(loss: Union[str, Loss]) -> Loss:
    """Return a :class:`Loss` from its registered name or pass an instance through.

    Parameters
    ----------
    loss : str or Loss
        A registered name (``LOSSES``: ``"squared"``, ``"huber"``, ``"logistic"``,
        ``"hinge"``, ``"softmax"``, and any subclass of :class:`Loss` defined with a
        ``name``) or an instance.

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


def loss_names(task: Optional[str] = None) -> list:
    """Registered loss names, optionally only those of one ``task``."""
    return sorted(k for k, cls in _LOSSES.items() if task is None or cls.task == task)


LOSSES = _LOSSES

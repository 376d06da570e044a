"""Quantities logged along a gradient-flow trajectory (numpy only).

A monitor is called by :func:`train_gradient_flow` every ``record_every`` steps with a
:class:`TrainingState` (numpy copies of the weights, the gradient of the training
objective, the predictions, ...) and returns a dict of floats or arrays; the trainer
stacks them into ``history.monitors[monitor.name]``. Every monitor states its cost per
call; none of them touches torch.

Monitors
--------
:class:`ConservationMonitor`
    ``||alpha_j||^2 - ||u_j||^2`` per neuron (conserved by gradient flow when
    ``alpha = 0``; Wang & Pilanci 2022, docs/mathematics.rst §5.1, §9 item 30).
:class:`RayleighMonitor`
    Rayleigh quotient of the tangent kernel in the direction of the loss gradient, the
    extreme eigenvalues of the kernel and the PL ratio (Robin, Scaman & Lelarge 2022,
    docs/mathematics.rst §7.2).
:class:`ProxyPLMonitor`
    Proxy-PL ratio ``||grad f||^a / (g - xi)`` and its running minimum, and the
    proxy-convexity inner product with a reference network (Frei & Gu 2021, docs/mathematics.rst
    §6.4).
:class:`CertificateMonitor`
    The dual certificate of the current network (:func:`convexrelu.certify`).
:class:`AlignmentMonitor`
    Cosines between the neurons and given reference directions.

References
----------
Y. Wang and M. Pilanci, "The convex geometry of backpropagation: neural network gradient
flows converge to extreme points of the dual convex program", ICLR 2022.

S. Frei and Q. Gu, "Proxy convexity: a unified framework for the analysis of neural
networks trained by gradient descent", NeurIPS 2021.

D. A. R. Robin, K. Scaman and M. Lelarge, "Convergence beyond the over-parameterized
regime using Rayleigh quotients", NeurIPS 2022.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import numpy as np

__all__ = [
    "TrainingState",
    "Monitor",
    "ConservationMonitor",
    "RayleighMonitor",
    "ProxyPLMonitor",
    "CertificateMonitor",
    "AlignmentMonitor",
    "network_jacobian",
    "flatten_parameters",
]


# ---------------------------------------------------------------------------- state
@dataclass
class TrainingState:
    """What a monitor sees at a recorded step (numpy, float64).

    Attributes
    ----------
    step : int
        Number of gradient steps taken so far.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Targets in the loss's internal encoding (``{-1, +1}`` for binary losses).
    loss : Loss
        The sum-reduced loss (:mod:`convexrelu.losses`).
    alpha : float
        Weight-decay coefficient of the objective (scikit-learn normalisation).
    weights : dict
        ``W1`` (m, d), ``b1`` (m,), ``W2`` (c, m), ``b2`` (c,) at this step.
    gradients : dict
        Gradient of the training objective ``J`` with respect to the *trained*
        parameters, same keys (missing keys are not trained).
    predictions : ndarray of shape (n_samples, n_outputs)
    output_gradient : ndarray of shape (n_samples, n_outputs)
        Gradient of the data term ``(1/n) loss_sum`` with respect to the predictions.
    objective : float
        ``J`` (data term plus weight decay).
    data_loss : float
        ``(1/n) loss_sum`` alone.
    bias : bool
        Whether the net has biases.
    negative_slope : float
        Activation slope for negative inputs (``0`` for the ReLU).
    penalize_bias : bool
        Whether ``b1`` is in the weight decay.
    trained : tuple of str
        Names of the trained parameter arrays, in the flattening order of
        :func:`flatten_parameters`.
    """

    step: int
    X: np.ndarray
    y: np.ndarray
    loss: object
    alpha: float
    weights: dict
    gradients: dict
    predictions: np.ndarray
    output_gradient: np.ndarray
    objective: float
    data_loss: float
    bias: bool = True
    negative_slope: float = 0.0
    penalize_bias: bool = False
    trained: tuple = ("W1", "b1", "W2", "b2")

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def theta(self) -> np.ndarray:
        """The trained parameters as one flat vector."""
        return flatten_parameters(self.weights, self.trained)

    @property
    def grad(self) -> np.ndarray:
        """Gradient of ``J`` as one flat vector (same order as :attr:`theta`)."""
        return flatten_parameters(self.gradients, self.trained)

    @property
    def network(self):
        """The current weights as a :class:`convexrelu.ReLUNet` (ReLU nets only)."""
        from ..network import ReLUNet

        if self.negative_slope != 0.0:
            raise ValueError("the network is a leaky ReLU net (negative_slope="
                             f"{self.negative_slope}); a ReLUNet holds ReLU networks only.")
        w = self.weights
        return ReLUNet(w["W1"], w["b1"], w["W2"], w["b2"])


def flatten_parameters(arrays, names: Sequence[str] = ("W1", "b1", "W2", "b2")) -> np.ndarray:
    """Concatenate ``arrays[name].ravel()`` (C order) for ``name`` in ``names``.

    ``arrays`` may be a dict or an object with those attributes (e.g. a ``ReLUNet``).
    """
    get = arrays.get if isinstance(arrays, dict) else (lambda k: getattr(arrays, k))
    return np.concatenate([np.asarray(get(k), dtype=np.float64).ravel() for k in names])


def network_jacobian(X, W1, b1, W2, b2=None, *, negative_slope: float = 0.0,
                     trained: Sequence[str] = ("W1", "b1", "W2", "b2")) -> np.ndarray:
    """Analytic Jacobian ``d yhat / d theta`` of a two-layer (leaky) ReLU net.

    With ``s_ij = act'(x_i^T u_j + b_j)`` (``1`` if positive, else ``negative_slope``,
    torch's convention at ``0``):

    .. math::

        \\frac{\\partial\\hat y_{ik}}{\\partial W_{1,jl}} = W_{2,kj}s_{ij}x_{il},\\quad
        \\frac{\\partial\\hat y_{ik}}{\\partial b_{1,j}} = W_{2,kj}s_{ij},\\quad
        \\frac{\\partial\\hat y_{ik}}{\\partial W_{2,kj}} = a(x_i^\\top u_j + b_j),
        \\quad \\frac{\\partial\\hat y_{ik}}{\\partial b_{2,k}} = 1 .

    with ``a`` the activation.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    W1, b1, W2, b2 : ndarrays
        Weights in ``ReLUNet`` shapes.
    negative_slope : float, default=0.0
    trained : sequence of str, default=("W1", "b1", "W2", "b2")
        Which parameter arrays are columns of the Jacobian, in this order.

    Returns
    -------
    J : ndarray of shape (n_samples, n_outputs, n_params)
        Cost ``O(n c p)`` time and memory, ``p`` the number of trained parameters.
    """
    X = np.asarray(X, dtype=np.float64)
    W1 = np.asarray(W1, dtype=np.float64)
    W2 = np.asarray(W2, dtype=np.float64).reshape(-1, W1.shape[0])
    n, d = X.shape
    m = W1.shape[0]
    c = W2.shape[0]
    b1 = np.zeros(m) if b1 is None else np.asarray(b1, dtype=np.float64)
    pre = X @ W1.T + b1
    pos = pre > 0
    s = np.where(pos, 1.0, negative_slope)
    act = np.where(pos, pre, negative_slope * pre)
    blocks = []
    for name in trained:
        if name == "W1":
            blocks.append((W2[None, :, :, None] * s[:, None, :, None]
                           * X[:, None, None, :]).reshape(n, c, m * d))
        elif name == "b1":
            blocks.append(W2[None, :, :] * s[:, None, :])
        elif name == "W2":
            blk = np.zeros((n, c, c, m))
            for k in range(c):
                blk[:, k, k, :] = act
            blocks.append(blk.reshape(n, c, c * m))
        elif name == "b2":
            blocks.append(np.broadcast_to(np.eye(c), (n, c, c)).copy())
        else:
            raise ValueError(f"unknown parameter name {name!r}; expected W1, b1, W2 or b2.")
    return np.concatenate(blocks, axis=2)


# ---------------------------------------------------------------------------- base
class Monitor:
    """Base class: ``__call__(state) -> dict`` of floats / arrays.

    Subclasses may override :meth:`start`, called once before training with the first
    state, e.g. to store initial values. ``name`` is the key under
    ``history.monitors``; ``every`` evaluates the monitor only at every ``every``-th
    recorded step (``NaN`` / previous-shape placeholders are not stored: the monitor's
    own ``step`` record, added by the trainer, says when it ran).
    """

    name: str = "monitor"
    every: int = 1

    def start(self, state: TrainingState) -> None:
        """Called once with the initial state (default: nothing)."""

    def __call__(self, state: TrainingState) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


def _neuron_norms_sq(state: TrainingState, include_bias: Optional[bool]):
    w = state.weights
    inc = state.bias if include_bias is None else include_bias
    u2 = np.sum(w["W1"] ** 2, axis=1)
    if inc:
        u2 = u2 + w["b1"] ** 2
    a2 = np.sum(w["W2"] ** 2, axis=0)
    return a2, u2


class ConservationMonitor(Monitor):
    """``||alpha_j||^2 - ||u_j||^2`` per neuron (docs/mathematics.rst §5.1, §9 item 30).

    For the unregularised objective (``alpha = 0``) gradient flow conserves
    ``||alpha_j||^2 - ||u_j||^2 - b_j^2`` for every neuron (the hidden bias is part of
    ``u_j``: it is the weight of the constant input ``1``); gradient *descent* drifts by
    ``O(lr)`` over a fixed time horizon. The output bias plays no role.

    Parameters
    ----------
    include_bias : bool or None, default=None
        Whether ``b_j^2`` is subtracted; ``None`` means "when the net has biases", which
        is the conserved quantity.
    name : str, default="conservation"

    Records
    -------
    balance : ndarray of shape (n_neurons,)
        ``||alpha_j||^2 - ||u_j||^2``.
    drift : float
        ``max_j |balance_j(t) - balance_j(0)|``.
    relative_drift : float
        ``drift / max(max_j (||alpha_j(0)||^2 + ||u_j(0)||^2), tiny)``.

    Notes
    -----
    Cost per call ``O(m (d + c))``.
    """

    def __init__(self, *, include_bias: Optional[bool] = None, name: str = "conservation"):
        self.include_bias = include_bias
        self.name = name
        self._initial = None
        self._scale = 1.0

    def start(self, state: TrainingState) -> None:
        a2, u2 = _neuron_norms_sq(state, self.include_bias)
        self._initial = a2 - u2
        self._scale = max(float(np.max(a2 + u2)) if a2.size else 0.0, 1e-300)

    def __call__(self, state: TrainingState) -> dict:
        a2, u2 = _neuron_norms_sq(state, self.include_bias)
        bal = a2 - u2
        if self._initial is None:
            self._initial = bal.copy()
        drift = float(np.max(np.abs(bal - self._initial))) if bal.size else 0.0
        return {"balance": bal, "drift": drift, "relative_drift": drift / self._scale}


class RayleighMonitor(Monitor):
    """Rayleigh quotient of the tangent kernel along the loss gradient (docs/mathematics.rst §7.2).

    With ``Jac = d yhat / d theta`` (over the trained parameters, all outputs stacked),
    ``K = Jac Jac^T`` and ``g = d(data term)/d yhat`` (for the squared loss
    ``g = r / n``, ``r = yhat - y``),

    .. math::

        \\rho_t = \\frac{g^\\top K g}{\\|g\\|^2} = \\frac{\\|J_{\\rm ac}^\\top g\\|^2}{\\|g\\|^2},
        \\qquad \\frac{\\|\\nabla L\\|^2}{L} = \\frac{2}{n c}\\,\\rho_t
        \\quad\\text{for } L = \\frac1{2nc}\\|r\\|^2 .

    The identity is exact for the squared loss without weight decay; ``identity_error``
    compares it with the trainer's *actual* gradient.

    Parameters
    ----------
    eigenvalues : bool, default=True
        Compute ``lambda_min(K)`` and ``lambda_max(K)`` (``O((n c)^3)``); set False for
        large ``n``.
    name : str, default="rayleigh"

    Records
    -------
    rho : float
        ``||Jac^T g||^2 / ||g||^2`` (``nan`` when ``g = 0``).
    lambda_min, lambda_max : float
        Extreme eigenvalues of ``K`` (``nan`` when ``eigenvalues=False``).
    grad_norm_sq : float
        ``||grad J||^2`` from the trainer's gradient.
    pl_ratio : float
        ``||grad J||^2 / J``.
    pl_ratio_rayleigh : float
        ``(2 / (n c)) rho`` (squared loss) — equal to ``pl_ratio`` when ``alpha = 0``.
    identity_error : float
        ``|pl_ratio - pl_ratio_rayleigh| / pl_ratio`` (squared loss, ``alpha = 0``;
        ``nan`` otherwise).

    Notes
    -----
    Cost per call: the Jacobian takes ``O(n c p)`` time and memory, ``p`` the number of
    trained parameters; the eigenvalues ``O((n c)^3)``.
    """

    def __init__(self, *, eigenvalues: bool = True, name: str = "rayleigh"):
        self.eigenvalues = bool(eigenvalues)
        self.name = name

    def __call__(self, state: TrainingState) -> dict:
        w = state.weights
        jac = network_jacobian(state.X, w["W1"], w["b1"], w["W2"], w["b2"],
                               negative_slope=state.negative_slope, trained=state.trained)
        n, c, p = jac.shape
        jac = jac.reshape(n * c, p)
        g = state.output_gradient.reshape(n * c)
        gg = float(g @ g)
        jtg = jac.T @ g
        rho = float(jtg @ jtg) / gg if gg > 0 else float("nan")
        lmin = lmax = float("nan")
        if self.eigenvalues:
            ev = np.linalg.eigvalsh(jac @ jac.T)
            lmin, lmax = float(ev[0]), float(ev[-1])
        grad = state.grad
        gn2 = float(grad @ grad)
        obj = state.objective
        pl = gn2 / obj if obj > 0 else float("nan")
        if state.loss.name == "squared":
            pl_r = 2.0 * rho / (n * c)
        else:
            pl_r = float("nan")
        if state.loss.name == "squared" and state.alpha == 0 and pl > 0:
            err = abs(pl - pl_r) / pl
        else:
            err = float("nan")
        return {"rho": rho, "lambda_min": lmin, "lambda_max": lmax, "grad_norm_sq": gn2,
                "pl_ratio": pl, "pl_ratio_rayleigh": pl_r, "identity_error": err}


ProxyName = Union[str, Callable[[TrainingState], float]]


class ProxyPLMonitor(Monitor):
    """Proxy-PL ratio and proxy-convexity inner product (Frei & Gu 2021; docs/mathematics.rst §6.4).

    Logs

    .. math::

        \\rho_{\\rm PL}(t) = \\frac{\\|\\nabla f(w_t)\\|^{a}}{g(w_t) - \\xi},

    its running minimum (the empirical proxy-PL constant ``mu`` in the normalisation
    ``||grad f||^a >= mu (g - xi)``; Frei & Gu write the constant as ``mu / 2``), and,
    when a reference ``v`` is given, ``<grad f(w_t), w_t - v>`` and its ratio to ``g``
    (e.g. ``>= 2c`` for a single leaky neuron with ``g = F``, docs/mathematics.rst §6.3).
    ``f`` is the training objective ``J`` and ``grad f`` the trainer's gradient.

    Parameters
    ----------
    proxy : {"loss", "dual", "error"} or callable, default="loss"
        ``g``: ``"loss"`` is the data term ``(1/n) loss_sum``; ``"dual"`` is
        ``(1/n) sum_i -l'(y_i yhat_i)``, i.e. ``mean(y * lambda)`` with
        ``lambda = -grad loss_sum`` (binary losses only; for the logistic loss
        ``2 g >= `` the 0-1 error); ``"error"`` the training 0-1 error (binary losses);
        a callable receives the :class:`TrainingState` and returns ``g``.
    exponent : float, default=2.0
        ``a``.
    xi : float, default=0.0
    reference : ReLUNet, dict or ndarray, optional
        Reference weights ``v`` (same shapes as the trained net, or a flat vector over the
        trained parameters).
    name : str, default="proxy_pl"

    Records
    -------
    grad_norm, proxy, ratio, running_min : float
    inner : float
        ``<grad f(w_t), w_t - v>`` (``nan`` without a reference).
    inner_over_proxy : float
        ``inner / (g - xi)``.

    Notes
    -----
    Cost per call ``O(p + n c)``.
    """

    def __init__(self, *, proxy: ProxyName = "loss", exponent: float = 2.0, xi: float = 0.0,
                 reference=None, name: str = "proxy_pl"):
        if not callable(proxy) and proxy not in ("loss", "dual", "error"):
            raise ValueError(f"proxy must be 'loss', 'dual', 'error' or a callable; got "
                             f"{proxy!r}.")
        self.proxy = proxy
        self.exponent = float(exponent)
        self.xi = float(xi)
        self.reference = reference
        self.name = name
        self._running_min = float("inf")
        self._v = None

    def start(self, state: TrainingState) -> None:
        self._running_min = float("inf")
        self._v = None
        if self.reference is not None:
            ref = self.reference
            if isinstance(ref, np.ndarray) and ref.ndim == 1:
                v = np.asarray(ref, dtype=np.float64)
            else:
                v = flatten_parameters(ref, state.trained)
            if v.shape != state.theta.shape:
                raise ValueError(f"reference has {v.size} trained parameters but the network "
                                 f"has {state.theta.size}; pass weights of the same shapes.")
            self._v = v
        if not callable(self.proxy) and self.proxy in ("dual", "error") \
                and state.loss.name == "squared":
            raise ValueError(f"proxy={self.proxy!r} needs a binary loss (logistic or hinge); "
                             "the squared loss was used. Use proxy='loss' or a callable.")

    def _g(self, state: TrainingState) -> float:
        if callable(self.proxy):
            return float(self.proxy(state))
        if self.proxy == "loss":
            return float(state.data_loss)
        z = state.predictions[:, 0]
        y = state.y.reshape(-1)
        if self.proxy == "dual":
            lam = -state.output_gradient[:, 0] * state.n_samples  # sum-form lambda
            return float(np.mean(y * lam))
        return float(np.mean(np.sign(z) != y))

    def __call__(self, state: TrainingState) -> dict:
        if self._v is None and self.reference is not None:
            self.start(state)
        grad = state.grad
        gn = float(np.linalg.norm(grad))
        g = self._g(state)
        denom = g - self.xi
        ratio = gn ** self.exponent / denom if denom > 0 else float("inf")
        self._running_min = min(self._running_min, ratio)
        inner = float(grad @ (state.theta - self._v)) if self._v is not None else float("nan")
        return {"grad_norm": gn, "proxy": g, "ratio": ratio, "running_min": self._running_min,
                "inner": inner, "inner_over_proxy": inner / denom if denom > 0 else float("nan")}

    def fit_exponent(self, history) -> float:
        """Fitted proxy-PL exponent ``a`` from a finished history.

        Regresses ``log ||grad f||`` on ``log(g - xi)`` over the records with
        ``g > xi`` and ``grad f != 0`` (docs/mathematics.rst §6.4); with slope ``s`` the returned
        exponent is ``a = 1 / s`` (``||grad f||^a`` is then proportional to ``g - xi``).
        ``nan`` with fewer than two usable records.
        """
        rec = history.monitors[self.name]
        gn = np.asarray(rec["grad_norm"], dtype=float)
        g = np.asarray(rec["proxy"], dtype=float) - self.xi
        ok = (gn > 0) & (g > 0) & np.isfinite(gn) & np.isfinite(g)
        if np.count_nonzero(ok) < 2 or np.ptp(np.log(g[ok])) == 0:
            return float("nan")
        slope = np.polyfit(np.log(g[ok]), np.log(gn[ok]), 1)[0]
        return float(1.0 / slope) if slope != 0 else float("inf")


class CertificateMonitor(Monitor):
    """Dual certificate of the current network (:func:`convexrelu.certify`).

    Parameters
    ----------
    every : int, default=1
        Evaluate at every ``every``-th recorded step only (certificates are expensive).
    name : str, default="certificate"
    **certify_kwargs
        Passed to :func:`convexrelu.certify` (e.g. ``patterns=...``).

    Records
    -------
    lower_bound, gap, relative_gap, dual_ratio : float
        ``dual_ratio`` is ``M(lambda) / beta``.
    optimal : bool

    Notes
    -----
    Cost per call: one certificate, ``O(P)`` small projections over the ``P``
    activation patterns (docs/mathematics.rst §4.5) — by far the most expensive monitor. ReLU nets
    (``negative_slope = 0``) only.
    """

    def __init__(self, *, every: int = 1, name: str = "certificate", **certify_kwargs):
        if int(every) < 1:
            raise ValueError(f"every must be an int >= 1; got {every!r}.")
        self.every = int(every)
        self.name = name
        self.certify_kwargs = certify_kwargs

    def __call__(self, state: TrainingState) -> dict:
        from ..certificates import certify

        y = state.y[:, 0] if state.y.ndim == 2 and state.y.shape[1] == 1 else state.y
        kw = {"penalize_bias": state.penalize_bias, **self.certify_kwargs}
        cert = certify(state.network, state.X, y, alpha=state.alpha, loss=state.loss.name, **kw)
        return {"lower_bound": float(cert.lower_bound), "gap": float(cert.gap),
                "relative_gap": float(cert.relative_gap),
                "dual_ratio": float(getattr(cert, "dual_ratio", np.nan)),
                "optimal": bool(cert.optimal)}


class AlignmentMonitor(Monitor):
    """Cosine of each neuron with given reference directions.

    Parameters
    ----------
    directions : array-like of shape (n_directions, n_features) or (n_directions, n_features + 1)
        Reference directions, e.g. the neurons of the convex solution
        (``network_.W1``) or the extreme directions of the dual (docs/mathematics.rst §5.1). With
        ``n_features + 1`` columns the neuron is ``(u_j, b_j)``.
    name : str, default="alignment"

    Records
    -------
    cosine : ndarray of shape (n_neurons, n_directions)
        ``<u_j, w_k> / (||u_j|| ||w_k||)`` (``0`` for a zero neuron).
    best : ndarray of shape (n_neurons,)
        ``max_k cosine_jk``.

    Notes
    -----
    Cost per call ``O(m k d)``.
    """

    def __init__(self, directions, *, name: str = "alignment"):
        D = np.asarray(directions, dtype=np.float64)
        if D.ndim == 1:
            D = D[None, :]
        if D.ndim != 2 or D.shape[0] == 0:
            raise ValueError(f"directions must be 2-D of shape (n_directions, n_features); "
                             f"got shape {np.shape(directions)}.")
        nrm = np.linalg.norm(D, axis=1)
        if np.any(nrm == 0):
            raise ValueError("directions contains a zero row; drop it (a zero direction has "
                             "no cosine).")
        self.directions = D / nrm[:, None]
        self.name = name

    @classmethod
    def from_network(cls, network, *, include_bias: bool = False, tol: float = 1e-12,
                     name: str = "alignment") -> "AlignmentMonitor":
        """Reference directions = the nonzero neurons ``u_j`` (or ``(u_j, b_j)``) of a net."""
        U = np.hstack([network.W1, network.b1[:, None]]) if include_bias else network.W1
        keep = np.linalg.norm(U, axis=1) > tol
        return cls(U[keep], name=name)

    def __call__(self, state: TrainingState) -> dict:
        w = state.weights
        k, dd = self.directions.shape
        d = w["W1"].shape[1]
        if dd == d:
            U = w["W1"]
        elif dd == d + 1:
            U = np.hstack([w["W1"], w["b1"][:, None]])
        else:
            raise ValueError(f"directions have {dd} columns but the network has {d} features; "
                             f"pass {d} or {d + 1} (with the bias) columns.")
        nrm = np.linalg.norm(U, axis=1)
        Un = U / np.where(nrm > 0, nrm, 1.0)[:, None]
        cos = Un @ self.directions.T
        return {"cosine": cos, "best": cos.max(axis=1)}

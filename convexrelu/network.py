"""Two-layer ReLU networks and the maps between networks and the convex program.

A :class:`ReLUNet` holds plain numpy weights in torch ``nn.Linear`` shapes,

.. math::

    f(x) = W_2\\,(W_1 x + b_1)_+ + b_2,

and provides the objective in scikit-learn's normalisation (docs/mathematics.rst §8.1), balancing
(§1.3), pruning to at most ``n`` neurons (§3.1), the convex -> network map (§3.5, §8.2)
and the network -> convex grouping (§3.6), and conversions to and from scikit-learn and
torch.

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact polynomial-time
convex optimization formulations for two-layer networks", ICML 2020.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

import numpy as np

from ._validation import augment, check_data_matrix
from .losses import Loss, get_loss

__all__ = ["ReLUNet"]

_ARRAY_KEYS = ("W1", "b1", "W2", "b2")


def _weight(a, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} is complex ({arr.dtype}); network weights must be real.")
    try:
        arr = np.array(arr, dtype=np.float64)  # copy
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be numeric; got dtype {np.asarray(a).dtype} ({exc})."
        ) from None
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got a {arr.ndim}-D array of shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity; network weights must be finite.")
    return arr


def _import_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this feature needs PyTorch; install it with `pip install convexrelu[torch]`."
        ) from exc
    return torch


def _caratheodory_reduce(A: np.ndarray, s: np.ndarray, cost: np.ndarray,
                         tol: float) -> np.ndarray:
    """Nonnegative ``s'`` with ``A s' = A s``, ``cost^T s' <= cost^T s`` and independent support.

    docs/mathematics.rst §3.1. ``A`` has unit columns, ``s > 0`` and ``cost > 0``. The
    columns are visited once, in order, against a basis ``B`` of kept columns with a thin
    QR factorisation ``A[:, B] = Q R``. With ``a_j = A[:, B] c + r`` (``r`` orthogonal
    to the span) and ``w = (-c, 1)`` on ``B + [j]``, ``A[:, B + [j]] w = r``: column ``j``
    joins ``B`` (classical Gram–Schmidt, reorthogonalised once) when
    ``||r|| > tol ||w||``, i.e. when ``w`` is not a numerical null vector (the test of a
    singular value ``<= tol``, without the SVD), and ``||r|| > n eps`` (a smaller
    residual is rounding noise that would spoil the orthogonality of ``Q``). Otherwise
    ``w`` is one, oriented so that ``cost^T w >= 0`` (it then has a positive entry), and
    ``s`` moves to ``s - tau w`` with the largest ``tau`` keeping ``s >= 0``: at least one
    of ``B + [j]`` reaches zero. Dead basis columns leave the factorisation
    (``scipy.linalg.qr_delete``, Givens rotations) and ``j`` is tested again, so every
    step removes a column and there are at most ``A.shape[1]`` steps; ``A s`` moves by
    ``tau r`` per step, with ``||r|| <= max(tol ||w||, n eps)``.

    Returns
    -------
    ndarray of shape (n_columns,)
        The new coefficients; zero exactly for removed columns, and the positive ones
        sit on at most ``A.shape[0]`` linearly independent columns.
    """
    from scipy.linalg import qr_delete, solve_triangular

    n, m = A.shape
    s = np.array(s, dtype=np.float64)
    # below this a residual is rounding noise, and r / rho would not be orthogonal to Q
    floor = n * np.finfo(np.float64).eps
    basis: list = []
    Q = np.zeros((n, 0))
    R = np.zeros((0, 0))
    for j in range(m):
        a = A[:, j]
        while s[j] > 0:
            q = Q.T @ a
            r = a - Q @ q
            dq = Q.T @ r  # "twice is enough": one reorthogonalisation
            q += dq
            r -= Q @ dq
            rho = float(np.linalg.norm(r))
            c = solve_triangular(R, q, check_finite=False)
            w = np.append(-c, 1.0)  # A[:, B + [j]] @ w = r
            if len(basis) < n and rho > max(tol * float(np.linalg.norm(w)), floor):
                k = len(basis)
                R = np.block([[R, q[:, None]], [np.zeros((1, k)), np.array([[rho]])]])
                Q = np.hstack([Q, (r / rho)[:, None]])
                basis.append(j)
                break
            idx = np.array(basis + [j], dtype=np.intp)
            if float(cost[idx] @ w) < 0:
                w = -w
            sv = s[idx]
            ratio = np.full(w.size, np.inf)
            pos = w > 0
            ratio[pos] = sv[pos] / w[pos]
            k = int(np.argmin(ratio))  # w has a positive entry: cost > 0, cost^T w >= 0
            sv = np.maximum(sv - ratio[k] * w, 0.0)
            sv[k] = 0.0
            s[idx] = sv
            for p in np.flatnonzero(sv[:-1] <= 0)[::-1]:  # dead basis columns
                Q, R = qr_delete(Q, R, int(p), which="col", overwrite_qr=True,
                                 check_finite=False)
                k = R.shape[1]  # a square Q (full basis) is downdated as a full QR
                Q, R = Q[:, :k], R[:k]
                del basis[p]
    return s


class ReLUNet:
    """A two-layer ReLU network ``f(x) = W2 relu(W1 x + b1) + b2``.

    Parameters
    ----------
    W1 : array-like of shape (n_neurons, n_features)
        First-layer weights (rows ``u_j``), as ``torch.nn.Linear.weight``.
    b1 : array-like of shape (n_neurons,) or None
        Hidden biases; ``None`` means zeros.
    W2 : array-like of shape (n_outputs, n_neurons) or (n_neurons,)
        Second-layer weights (columns ``alpha_j``); a 1-D array means one output.
    b2 : array-like of shape (n_outputs,), scalar or None
        Output bias; ``None`` means zeros.

    Raises
    ------
    ValueError
        If a weight is not numeric, has the wrong shape or is not finite.

    Notes
    -----
    The training objective (:meth:`objective`) is scikit-learn's

    .. math::

        J = \\frac1n\\Big[\\ell_{\\rm sum}(f(X); y)
            + \\frac\\alpha2\\big(\\|W_1\\|_F^2 + \\|W_2\\|_F^2\\big)\\Big],

    with the hidden bias joining :math:`W_1` in the penalty when ``penalize_bias=True``.
    """

    def __init__(self, W1, b1, W2, b2) -> None:
        W1 = _weight(W1, "W1", 2)
        m, d = W1.shape
        b1 = np.zeros(m) if b1 is None else _weight(b1, "b1", 1)
        if b1.shape != (m,):
            raise ValueError(f"b1 must have shape (n_neurons,) = ({m},) to match W1 of shape "
                             f"{W1.shape}; got {b1.shape}.")
        W2 = np.asarray(W2)
        W2 = _weight(W2, "W2", 2 if W2.ndim != 1 else 1)
        if W2.ndim == 1:
            W2 = W2[None, :]
        if W2.shape[1] != m:
            raise ValueError(f"W2 must have shape (n_outputs, n_neurons) with n_neurons = {m} "
                             f"(rows of W1); got {W2.shape}.")
        c = W2.shape[0]
        if c < 1:
            raise ValueError("W2 must have at least one row (one output); got shape "
                             f"{W2.shape}.")
        if b2 is None:
            b2 = np.zeros(c)
        else:
            b2 = np.asarray(b2)
            b2 = _weight(b2.reshape(1) if b2.ndim == 0 else b2, "b2", 1)
        if b2.shape != (c,):
            raise ValueError(f"b2 must have shape (n_outputs,) = ({c},) to match W2 of shape "
                             f"{W2.shape}; got {b2.shape}.")
        self.W1, self.b1, self.W2, self.b2 = W1, b1, W2, b2

    # ------------------------------------------------------------------ basics
    @property
    def n_neurons(self) -> int:
        """Number of hidden neurons ``m``."""
        return int(self.W1.shape[0])

    @property
    def n_features(self) -> int:
        """Number of input features ``d``."""
        return int(self.W1.shape[1])

    @property
    def n_outputs(self) -> int:
        """Number of outputs ``c``."""
        return int(self.W2.shape[0])

    def __repr__(self) -> str:
        return (f"ReLUNet(n_features={self.n_features}, n_neurons={self.n_neurons}, "
                f"n_outputs={self.n_outputs})")

    def copy(self) -> "ReLUNet":
        """A deep copy."""
        return ReLUNet(self.W1, self.b1, self.W2, self.b2)

    def _check_X(self, X, name: str = "X") -> np.ndarray:
        X = check_data_matrix(X, name=name)
        if X.shape[1] != self.n_features:
            raise ValueError(f"{name} has {X.shape[1]} features, but this network expects "
                             f"{self.n_features} (W1 has shape {self.W1.shape}).")
        return X

    def _check_scalar_output(self, what: str) -> None:
        if self.n_outputs != 1:
            raise ValueError(f"{what} is defined for one output; this network has "
                             f"{self.n_outputs} outputs. Split it into one network per output.")

    def hidden(self, X) -> np.ndarray:
        """Hidden activations ``relu(X W1^T + b1)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        H : ndarray of shape (n_samples, n_neurons)
        """
        X = self._check_X(X)
        return np.maximum(X @ self.W1.T + self.b1, 0.0)

    def predict(self, X) -> np.ndarray:
        """Raw outputs (logits for classification).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) if one output else (n_samples, n_outputs)
        """
        out = self.hidden(X) @ self.W2.T + self.b2
        return out[:, 0] if self.n_outputs == 1 else out

    # ------------------------------------------------------------------ norms
    def _penalised_first_layer(self, penalize_bias: bool) -> np.ndarray:
        return np.hstack([self.W1, self.b1[:, None]]) if penalize_bias else self.W1

    def weight_decay(self, penalize_bias: bool = False) -> float:
        """``(1/2)(||W1||^2 + ||W2||^2 [+ ||b1||^2])``."""
        U = self._penalised_first_layer(penalize_bias)
        return float(0.5 * (np.sum(U * U) + np.sum(self.W2 * self.W2)))

    def path_norm(self, penalize_bias: bool = False) -> float:
        """``sum_j ||u_j|| ||alpha_j||`` (``u_j`` includes ``b_j`` when ``penalize_bias``).

        By AM–GM, ``path_norm() <= weight_decay()``, with equality for a balanced net.
        """
        U = self._penalised_first_layer(penalize_bias)
        return float(np.sum(np.linalg.norm(U, axis=1) * np.linalg.norm(self.W2, axis=0)))

    def objective(self, X, y, alpha: float, loss: Union[str, Loss] = "squared",
                  penalize_bias: bool = False) -> float:
        """scikit-learn's MLP objective of this network (docs/mathematics.rst §8.1).

        .. math::

            J = \\frac1n\\Big[\\ell_{\\rm sum}(f(X); y)
                + \\frac\\alpha2\\big(\\|W_1\\|_F^2 + \\|W_2\\|_F^2\\,[+\\|b_1\\|^2]\\big)\\Big].

        For the squared loss this equals ``MLPRegressor.loss_``; for the logistic loss on a
        binary problem it equals ``MLPClassifier.loss_`` (up to sklearn's clipping of
        probabilities at machine epsilon).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets; for the logistic / hinge losses any two labels (``{0, 1}``,
            ``{-1, +1}``, strings, ...), see :meth:`Loss.encode_targets`.
        alpha : float
            Weight-decay coefficient (scikit-learn's ``alpha``), ``>= 0``.
        loss : {"squared", "logistic", "hinge"} or Loss, default="squared"
        penalize_bias : bool, default=False
            Penalise the hidden bias together with ``W1``.

        Returns
        -------
        float
        """
        loss_ = get_loss(loss)
        alpha = float(alpha)
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a float in the range [0.0, inf); got {alpha}.")
        z = self.predict(X)
        yy = loss_.encode_targets(y)
        if yy.shape != z.shape:
            raise ValueError(f"y has shape {np.shape(y)} but the network predicts shape "
                             f"{z.shape}; pass one target column per output.")
        n = z.shape[0]
        return float((loss_.value(z, yy) + alpha * self.weight_decay(penalize_bias)) / n)

    # ------------------------------------------------------------------ rescalings
    def _absorb_constant_neurons(self, penalize_bias: bool, tol: float = 0.0) -> "ReLUNet":
        """Move neurons with ``u_j = 0`` (constant ``relu(b_j)``) into the output bias."""
        W1, b1, W2, b2 = self.W1.copy(), self.b1.copy(), self.W2.copy(), self.b2.copy()
        if penalize_bias:
            return ReLUNet(W1, b1, W2, b2)
        const = np.linalg.norm(W1, axis=1) <= tol
        if np.any(const):
            b2 = b2 + W2[:, const] @ np.maximum(b1[const], 0.0)
            W1[const] = 0.0
            b1[const] = 0.0
            W2[:, const] = 0.0
        return ReLUNet(W1, b1, W2, b2)

    def balance(self, penalize_bias: bool = False) -> "ReLUNet":
        """Rescale every neuron so that ``||u_j|| = ||alpha_j||`` (docs/mathematics.rst §1.3).

        Neuron ``j`` becomes ``(s u_j, s b_j, alpha_j / s)`` with
        ``s = sqrt(||alpha_j|| / ||u_j||)``, where ``u_j`` includes ``b_j`` when
        ``penalize_bias``. Predictions are unchanged (positive homogeneity of the ReLU)
        and ``weight_decay()`` becomes ``path_norm()``, so the objective never increases.
        Neurons with ``alpha_j = 0`` or ``(u_j, b_j) = 0`` compute zero and are zeroed; with
        an unpenalised bias, a neuron with ``u_j = 0`` is the constant
        ``relu(b_j) alpha_j`` and is moved into the output bias.

        Returns
        -------
        ReLUNet
        """
        net = self._absorb_constant_neurons(penalize_bias)
        W1, b1, W2, b2 = net.W1, net.b1, net.W2, net.b2
        nu = np.linalg.norm(net._penalised_first_layer(penalize_bias), axis=1)
        na = np.linalg.norm(W2, axis=0)
        live = (nu > 0) & (na > 0)
        s = np.zeros_like(nu)
        s[live] = np.sqrt(na[live] / nu[live])
        W1 = W1 * s[:, None]
        b1 = b1 * s
        inv = np.zeros_like(s)
        inv[live] = 1.0 / s[live]
        W2 = W2 * inv[None, :]
        return ReLUNet(W1, b1, W2, b2)

    def threshold(self, tol: float = 1e-8, X=None, penalize_bias: bool = False) -> "ReLUNet":
        """Remove negligible neurons.

        A neuron is removed when its contribution ``||(u_j, b_j)|| ||alpha_j||`` is at most
        ``tol`` times the largest one, or (when ``X`` is given) when it is inactive on
        every sample of ``X``. With an unpenalised bias, constant neurons (``u_j = 0``) are
        first moved into the output bias. Removing inactive neurons leaves predictions on
        ``X`` unchanged; removing tiny ones changes them by at most the removed
        contributions.

        Parameters
        ----------
        tol : float, default=1e-8
            Relative threshold, ``>= 0``.
        X : array-like of shape (n_samples, n_features), optional
        penalize_bias : bool, default=False

        Returns
        -------
        ReLUNet
        """
        tol = float(tol)
        if not np.isfinite(tol) or tol < 0:
            raise ValueError(f"tol must be a float in the range [0.0, inf); got {tol}.")
        net = self._absorb_constant_neurons(penalize_bias)
        full = np.hstack([net.W1, net.b1[:, None]])
        t = np.linalg.norm(full, axis=1) * np.linalg.norm(net.W2, axis=0)
        tmax = float(t.max()) if t.size else 0.0
        keep = (t > tol * tmax) & (t > 0)
        if X is not None:
            keep &= np.any(net.hidden(X) > 0, axis=0)
        return ReLUNet(net.W1[keep], net.b1[keep], net.W2[:, keep], net.b2)

    def prune(self, X, penalize_bias: bool = False, rtol: Optional[float] = None) -> "ReLUNet":
        """Reduce to at most ``n_samples`` active neurons without changing predictions on X.

        docs/mathematics.rst §3.1 (``prune_to_n``): write the predictions as
        ``f(X) - b2 = sum_j t_j a_j`` with ``t_j = ||u_j|| |alpha_j|`` and
        ``a_j = sign(alpha_j) relu(X_aug u~_j / ||u_j||)`` (``X_aug = [X, 1]``,
        ``u~_j = (u_j, b_j)``, ``||u_j||`` the penalised norm). While the ``a_j`` are
        linearly dependent, move ``t`` along a null vector ``z`` oriented so that
        ``sum z >= 0`` until a coefficient vanishes: one neuron dies, predictions on X are
        unchanged and the path norm ``sum_j t_j`` does not increase. The result is
        balanced, has at most ``rank [a_j] <= n_samples`` neurons, and neurons inactive on
        all of ``X`` are removed.

        The neurons are visited once, in order, against a basis of linearly independent
        kept neurons held as a thin QR factorisation: a neuron outside the span of the
        basis joins it; one inside it gives the null vector ``z`` (its coefficients in the
        basis), and each such step removes at least one neuron. So there are at most
        ``n_neurons`` steps, each costing ``O(n_samples * n_kept)`` (a triangular solve
        and, when a basis neuron dies, a Givens downdate of the factorisation), and no
        neuron is ever revisited: the loop cannot cycle.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        penalize_bias : bool, default=False
            Whether ``||u_j||`` includes ``b_j``. With ``False``, constant neurons
            (``u_j = 0``) are first moved into the output bias.
        rtol : float, optional
            Rank tolerance on the unit columns ``a_j / ||a_j||``: neuron ``j`` counts as
            dependent on the kept ones when a combination ``w`` of them and of it, with
            ``w_j = 1``, has ``||A w|| <= rtol ||w||`` (a singular value at most
            ``rtol``); removing it then moves the predictions by at most ``rtol`` times
            the coefficients moved. Default ``max(n_samples, n_neurons) * eps``; a residual
            below ``n_samples * eps`` always counts as dependent.

        Returns
        -------
        ReLUNet

        Raises
        ------
        ValueError
            If the network has several outputs, ``X`` does not match it, or ``rtol`` is
            negative or not finite.
        """
        self._check_scalar_output("prune")
        X = self._check_X(X)
        if rtol is not None:
            rtol = float(rtol)
            if not np.isfinite(rtol) or rtol < 0:
                raise ValueError(f"rtol must be a float in the range [0.0, inf) or None; "
                                 f"got {rtol}.")
        net = self._absorb_constant_neurons(penalize_bias)
        Xa = augment(X, True)
        U = np.hstack([net.W1, net.b1[:, None]])
        norms = np.linalg.norm(net._penalised_first_layer(penalize_bias), axis=1)
        alpha = net.W2[0]
        t = norms * np.abs(alpha)
        keep = t > 0
        Uhat = U[keep] / norms[keep, None]
        sgn = np.sign(alpha[keep])
        t = t[keep]
        A = np.maximum(Xa @ Uhat.T, 0.0) * sgn[None, :]
        alive = np.any(A != 0, axis=0)
        Uhat, sgn, t, A = Uhat[alive], sgn[alive], t[alive], A[:, alive]
        if t.size:
            cn = np.linalg.norm(A, axis=0)
            if rtol is None:
                rtol = max(A.shape) * np.finfo(np.float64).eps
            # in the unit columns a_j / ||a_j|| the coefficients are t_j ||a_j|| and the
            # path norm is sum_j (t_j ||a_j||) / ||a_j||
            coef = _caratheodory_reduce(A / cn, t * cn, 1.0 / cn, rtol)
            live = coef > 0
            Uhat, sgn, t = Uhat[live], sgn[live], coef[live] / cn[live]
        root = np.sqrt(t)
        W1a = Uhat * root[:, None]
        return ReLUNet(W1a[:, :-1], W1a[:, -1], (sgn * root)[None, :], net.b2)

    # ------------------------------------------------------------------ convex maps
    @classmethod
    def from_convex(
        cls,
        V,
        W=None,
        *,
        bias: bool,
        output_bias: float = 0.0,
        penalize_bias: bool = False,
        tol: float = 1e-8,
    ) -> "ReLUNet":
        """Map a point of the convex program (CVX) to a network (docs/mathematics.rst §3.5, §8.2).

        Each nonzero block ``v_i`` becomes one neuron with ``alpha = +sqrt(rho)`` and
        ``(u, b) = v_i / alpha``, each ``w_i`` one with ``alpha = -sqrt(rho)`` and
        ``(u, b) = w_i / sqrt(rho)``, where ``rho`` is the penalised norm of the block:
        ``||v_i||`` without bias or with ``penalize_bias``, ``||v_{i,1:d}||`` otherwise.
        The network is balanced and its (NC) objective equals the convex objective
        ``l(sum_i D_i X_aug (v_i - w_i) + c0) + alpha sum_i (rho(v_i) + rho(w_i))``
        whenever the blocks are cone-feasible (``A_i X_aug v_i >= 0``).

        Blocks whose full norm is at most ``tol`` times the largest are dropped. With an
        unpenalised bias, a block whose weight part is negligible
        (``rho <= tol * max``) is a constant: on a cone-feasible point it is either
        ``v_{d+1} > 0`` on the all-active pattern (every row active), which is added to
        the output bias with the block's sign, or it computes zero and is dropped. This
        relies on cone feasibility; the data are not needed.

        Parameters
        ----------
        V : array-like of shape (n_patterns, d_aug)
            Positive blocks ``v_i`` (``d_aug = n_features + 1`` when ``bias``).
        W : array-like of shape (n_patterns, d_aug), optional
            Negative blocks ``w_i``; ``None`` means zeros.
        bias : bool
            Whether the blocks act on ``[X, 1]`` (hidden bias).
        output_bias : float, default=0.0
            The free output bias ``c0``.
        penalize_bias : bool, default=False
            Whether the hidden bias is penalised (only meaningful with ``bias``).
        tol : float, default=1e-8
            Relative threshold for zero blocks.

        Returns
        -------
        ReLUNet
            A one-output network with one neuron per nonzero block.
        """
        V = _weight(V, "V", 2)
        W = np.zeros_like(V) if W is None else _weight(W, "W", 2)
        if W.shape != V.shape:
            raise ValueError(f"V and W must have the same shape (n_patterns, d_aug); got "
                             f"V.shape={V.shape} and W.shape={W.shape}.")
        tol = float(tol)
        if not np.isfinite(tol) or tol < 0:
            raise ValueError(f"tol must be a float in the range [0.0, inf); got {tol}.")
        d_aug = V.shape[1]
        d = d_aug - 1 if bias else d_aug
        if d < 1:
            raise ValueError(f"with bias={bias} the blocks need at least {2 if bias else 1} "
                             f"columns; got shape {V.shape}.")
        ob = np.asarray(output_bias, dtype=np.float64)
        if ob.size != 1 or not np.isfinite(ob).all():
            raise ValueError(f"output_bias must be a finite scalar; got {output_bias!r}.")
        c0 = float(ob.reshape(-1)[0])
        blocks = np.vstack([V, W])
        signs = np.concatenate([np.ones(V.shape[0]), -np.ones(W.shape[0])])
        full = np.linalg.norm(blocks, axis=1)
        scale = float(full.max()) if full.size else 0.0
        nz = full > tol * scale
        if scale == 0.0:
            nz[:] = False
        blocks, signs = blocks[nz], signs[nz]
        free_bias = bias and not penalize_bias
        rho = np.linalg.norm(blocks[:, :d] if free_bias else blocks, axis=1)
        neuron = rho > tol * scale
        if free_bias:
            const = ~neuron
            offs = blocks[const, d]
            c0 += float(np.sum(signs[const] * np.maximum(offs, 0.0)))
        blocks, signs, rho = blocks[neuron], signs[neuron], rho[neuron]
        a = np.sqrt(rho)
        Ua = blocks / a[:, None]
        if bias:
            W1, b1 = Ua[:, :d], Ua[:, d]
        else:
            W1, b1 = Ua, np.zeros(Ua.shape[0])
        W1 = W1.reshape(-1, d)
        return cls(W1, b1, (signs * a)[None, :], np.array([c0]))

    def to_convex(self, X, patterns=None, *, bias: Optional[bool] = None, tol: float = 1e-12):
        """Group neurons by activation pattern into convex variables (docs/mathematics.rst §3.6).

        For each pattern ``D`` realised by a neuron,
        ``v_D = sum_{j: D(u_j) = D, alpha_j > 0} |alpha_j| (u_j, b_j)`` and
        ``w_D`` likewise over ``alpha_j < 0``. Predictions are identical
        (``sum_D D X_aug (v_D - w_D) + b2 = f(X)``), every block is in its cone
        (``A_D X_aug v_D >= 0``), and the convex regulariser is at most the path norm.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        patterns : ActivationPatterns or array-like of shape (n_samples, n_patterns), optional
            When given, blocks are aligned with these patterns (a neuron lying on a cell
            boundary joins a pattern whose closed cone contains it) and zero blocks are
            returned for unused patterns. When omitted, the groups are the distinct
            patterns ``1[X_aug u~_j > 0]`` of the neurons.
        bias : bool, optional
            Whether to use ``X_aug = [X, 1]``. Default: ``patterns.bias`` for an
            :class:`ActivationPatterns`, else ``True`` iff some hidden bias is nonzero.
        tol : float, default=1e-12
            ``|x~_i^T u~_j| <= tol * ||x~_i|| ||u~_j||`` counts as a tie when matching
            neurons to given patterns.

        Returns
        -------
        V, W : ndarray of shape (n_groups, d_aug)
        masks : ndarray of shape (n_samples, n_groups), dtype bool
        """
        self._check_scalar_output("to_convex")
        X = self._check_X(X)
        given_masks = None
        if patterns is not None:
            if hasattr(patterns, "masks") and hasattr(patterns, "bias"):
                if hasattr(patterns, "check_data"):
                    patterns.check_data(X)
                if bias is not None and bool(bias) != bool(patterns.bias):
                    raise ValueError(f"bias={bias} contradicts patterns.bias={patterns.bias}.")
                bias = bool(patterns.bias)
                given_masks = np.asarray(patterns.masks, dtype=bool)
            else:
                given_masks = np.asarray(patterns)
                if given_masks.ndim != 2 or given_masks.shape[0] != X.shape[0]:
                    raise ValueError(f"patterns must be an ActivationPatterns or a boolean array "
                                     f"of shape (n_samples, n_patterns) = ({X.shape[0]}, P); got "
                                     f"shape {given_masks.shape}.")
                given_masks = given_masks.astype(bool)
        if bias is None:
            bias = bool(np.any(self.b1 != 0))
        if not bias and np.any(self.b1 != 0):
            raise ValueError("bias=False but the network has nonzero hidden biases; use "
                             "bias=True (patterns of [X, 1]).")
        Xa = augment(X, bias)
        U = np.hstack([self.W1, self.b1[:, None]]) if bias else self.W1.copy()
        alpha = self.W2[0]
        live = (alpha != 0) & np.any(U != 0, axis=1)
        U, alpha = U[live], alpha[live]
        S = Xa @ U.T  # (n, m)
        pos = S > 0
        if given_masks is None:
            keys, group = np.unique(pos.T, axis=0, return_inverse=True)
            masks = keys.T.astype(bool)
        else:
            masks = given_masks
            scale = np.linalg.norm(Xa, axis=1)[:, None] * np.linalg.norm(U, axis=1)[None, :]
            sgn = np.where(S > tol * scale, 1, np.where(S < -tol * scale, -1, 0))
            need = np.sum(sgn != 0, axis=0)
            Mf = masks.astype(np.float64)
            agree = (sgn > 0).T.astype(np.float64) @ Mf + (sgn < 0).T.astype(np.float64) @ (1 - Mf)
            ok = agree >= need[:, None] - 0.5
            if U.shape[0] and not np.all(ok.any(axis=1)):
                bad = int(np.flatnonzero(~ok.any(axis=1))[0])
                raise ValueError(f"neuron {bad} has an activation pattern on X that is not in "
                                 "`patterns` (a sampled pattern set?); pass patterns=None to "
                                 "group by the neurons' own patterns.")
            group = np.argmax(ok, axis=1) if U.shape[0] else np.zeros(0, dtype=int)
        group = np.asarray(group).reshape(-1)
        G = masks.shape[1]
        V = np.zeros((G, Xa.shape[1]))
        W = np.zeros((G, Xa.shape[1]))
        contrib = np.abs(alpha)[:, None] * U
        np.add.at(V, group[alpha > 0], contrib[alpha > 0])
        np.add.at(W, group[alpha < 0], contrib[alpha < 0])
        return V, W, masks

    # ------------------------------------------------------------------ arrays
    def to_arrays(self, prefix: str = "") -> dict:
        """Plain arrays ``W1, b1, W2, b2`` (keys prefixed by ``prefix``) for ``np.savez``."""
        return {prefix + k: getattr(self, k).copy() for k in _ARRAY_KEYS}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "") -> "ReLUNet":
        """Inverse of :meth:`to_arrays` (a dict or an ``np.load`` result).

        Raises
        ------
        ValueError
            If a key is missing.
        """
        keys = set(getattr(arrays, "files", None) or arrays.keys())
        missing = [prefix + k for k in _ARRAY_KEYS if prefix + k not in keys]
        if missing:
            raise ValueError(f"arrays lack {missing}; expected the keys written by "
                             f"ReLUNet.to_arrays(prefix={prefix!r}), found {sorted(keys)}.")
        return cls(*(np.asarray(arrays[prefix + k]) for k in _ARRAY_KEYS))

    # ------------------------------------------------------------------ sklearn
    @classmethod
    def from_sklearn(cls, mlp) -> "ReLUNet":
        """Read the weights of a fitted ``MLPRegressor`` / ``MLPClassifier``.

        The estimator must use ``activation='relu'`` and exactly one hidden layer. A
        binary ``MLPClassifier`` gives one output, the logit of ``classes_[1]``; a
        multi-class one gives the softmax logits.

        Raises
        ------
        ValueError
            If the estimator is not fitted, not a ReLU net, not one hidden layer, or a
            regressor whose output is not the identity (``loss="poisson"``).
        """
        coefs = getattr(mlp, "coefs_", None)
        ints = getattr(mlp, "intercepts_", None)
        if coefs is None or ints is None:
            raise ValueError(f"{type(mlp).__name__} is not a fitted scikit-learn MLP (no "
                             "coefs_/intercepts_); call fit first.")
        act = getattr(mlp, "activation", None)
        if act != "relu":
            raise ValueError(f"only activation='relu' is supported; the estimator uses "
                             f"activation={act!r}.")
        if len(coefs) != 2:
            raise ValueError(f"only one hidden layer is supported; the estimator has "
                             f"{len(coefs) - 1} hidden layers (hidden_layer_sizes="
                             f"{getattr(mlp, 'hidden_layer_sizes', '?')}).")
        out = getattr(mlp, "out_activation_", None)
        if not hasattr(mlp, "classes_") and out not in (None, "identity"):
            # MLPRegressor(loss="poisson") predicts exp of its last layer: read as a plain
            # network, its predictions were off by up to 10 and its "objective" the
            # squared loss's
            raise ValueError(f"only a regressor with an identity output is supported; this "
                             f"one applies {out!r} to its output (loss="
                             f"{getattr(mlp, 'loss', '?')!r}), which no ReLUNet computes.")
        return cls(np.asarray(coefs[0]).T, ints[0], np.asarray(coefs[1]).T, ints[1])

    def to_sklearn(self, kind: Literal["regressor", "classifier"] = "regressor",
                   classes=None, alpha: float = 0.0):
        """A fitted scikit-learn MLP with these weights.

        A ``ReLUNet`` does not know what it was trained for: ``kind`` alone decides the
        exported model, and the default is an ``MLPRegressor`` whose ``predict`` returns
        the raw outputs (the logits, for the network of a classifier). To export a fitted
        estimator as the matching scikit-learn model, use
        :meth:`ConvexReLUClassifier.to_sklearn <convexrelu.ConvexReLUClassifier.to_sklearn>`
        or :meth:`ConvexReLURegressor.to_sklearn <convexrelu.ConvexReLURegressor.to_sklearn>`.

        Parameters
        ----------
        kind : {"regressor", "classifier"}, default="regressor"
            ``"regressor"``: an ``MLPRegressor``, ``predict`` equal to :meth:`predict`
            (flattened to shape (n_samples,) for one output, as scikit-learn does).
            ``"classifier"``: an ``MLPClassifier``. With one output it has a logistic
            output unit: ``predict_proba[:, 1]`` is the sigmoid of the output and
            ``predict`` is ``classes[1]`` where the output is positive. With ``c > 1``
            outputs it has a softmax output layer (scikit-learn's only multi-class
            output): ``predict`` is the class of the largest output and
            ``predict_proba`` is the softmax of the outputs. That is not the normalised
            one-vs-rest sigmoids of :meth:`ConvexReLUClassifier.predict_proba
            <convexrelu.ConvexReLUClassifier.predict_proba>`: the predicted classes agree,
            the probabilities do not.
        classes : array-like, optional
            Class labels for ``kind="classifier"`` (default ``[0, 1]`` for one output,
            ``range(n_outputs)`` otherwise). One output needs two classes (the output is
            the logit of ``classes[1]``); ``c > 1`` outputs need ``c`` classes, output
            ``k`` belonging to ``classes[k]``.
        alpha : float, default=0.0
            Stored as the estimator's ``alpha``.

        Returns
        -------
        MLPRegressor or MLPClassifier
            ``predict`` (and ``predict_proba``) work; ``loss_`` is not meaningful
            (the estimator was initialised by one ``partial_fit`` on dummy data and its
            weights then overwritten).

        Raises
        ------
        ValueError
            If ``kind`` is unknown or ``classes`` does not match the number of outputs.
        """
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        m, d, c = self.n_neurons, self.n_features, self.n_outputs
        W1, b1, W2 = self.W1, self.b1, self.W2
        if m == 0:  # sklearn needs at least one hidden unit: add a silent one
            W1, b1, W2 = np.zeros((1, d)), np.zeros(1), np.zeros((c, 1))
            m = 1
        X0 = np.zeros((2, d))
        if kind == "regressor":
            est = MLPRegressor(hidden_layer_sizes=(m,), activation="relu", solver="adam",
                               alpha=alpha)
            y0 = np.zeros(2) if c == 1 else np.zeros((2, c))
            est.partial_fit(X0, y0)
        elif kind == "classifier":
            if classes is None:
                classes = np.array([0, 1]) if c == 1 else np.arange(c)
            classes = np.asarray(classes)
            n_cls = np.unique(classes).shape[0]
            expect = 2 if c == 1 else c
            if n_cls != expect or classes.shape[0] != n_cls:
                raise ValueError(f"a classifier with {c} output(s) needs {expect} distinct "
                                 f"classes; got classes={classes.tolist()}.")
            est = MLPClassifier(hidden_layer_sizes=(m,), activation="relu", solver="adam",
                                alpha=alpha)
            X0 = np.zeros((n_cls, d))
            est.partial_fit(X0, classes, classes=classes)
        else:
            raise ValueError(f"kind must be 'regressor' or 'classifier'; got {kind!r}.")
        est.coefs_ = [W1.T.copy(), W2.T.copy()]
        est.intercepts_ = [b1.copy(), self.b2.copy()]
        return est

    # ------------------------------------------------------------------ torch
    @classmethod
    def from_torch(cls, module) -> "ReLUNet":
        """Read a torch two-layer ReLU module.

        Supported: ``nn.Sequential(nn.Linear, nn.ReLU, nn.Linear)``, or any module whose
        submodules contain exactly two ``nn.Linear`` and one ``nn.ReLU`` (the first Linear
        in registration order is the hidden layer).

        Raises
        ------
        ImportError
            If torch is not installed.
        ValueError
            For any other architecture.
        """
        torch = _import_torch()
        nn = torch.nn
        if not isinstance(module, nn.Module):
            raise ValueError(f"from_torch expects a torch.nn.Module; got {type(module).__name__}.")
        supported = ("supported: nn.Sequential(nn.Linear, nn.ReLU, nn.Linear) or a module "
                     "with exactly two nn.Linear layers and one nn.ReLU between them")
        subs = [mod for mod in module.modules() if mod is not module]
        if isinstance(module, nn.Sequential):
            kinds = [type(mod) for mod in module]
            if kinds != [nn.Linear, nn.ReLU, nn.Linear]:
                raise ValueError(f"unsupported nn.Sequential of {[k.__name__ for k in kinds]}; "
                                 f"{supported}.")
        linears = [mod for mod in subs if isinstance(mod, nn.Linear)]
        relus = [mod for mod in subs if isinstance(mod, nn.ReLU)]
        others = [type(mod).__name__ for mod in subs
                  if not isinstance(mod, (nn.Linear, nn.ReLU, nn.Sequential, nn.Identity))]
        if len(linears) != 2 or len(relus) != 1 or others:
            raise ValueError(f"unsupported module {type(module).__name__} with "
                             f"{len(linears)} nn.Linear, {len(relus)} nn.ReLU and other "
                             f"layers {others}; {supported}.")
        l1, l2 = linears
        if l1.out_features != l2.in_features:
            raise ValueError(f"the two nn.Linear layers do not chain: {l1.out_features} hidden "
                             f"outputs vs {l2.in_features} inputs; {supported}.")

        def arr(p, shape):
            if p is None:
                return np.zeros(shape)
            return p.detach().cpu().to(torch.float64).numpy().copy()

        return cls(arr(l1.weight, None), arr(l1.bias, (l1.out_features,)),
                   arr(l2.weight, None), arr(l2.bias, (l2.out_features,)))

    def to_torch(self, dtype=None):
        """``nn.Sequential(nn.Linear(d, m), nn.ReLU(), nn.Linear(m, c))`` with these weights.

        Parameters
        ----------
        dtype : torch.dtype, optional
            Default ``torch.float64``.

        Returns
        -------
        torch.nn.Sequential
            A module mapping a tensor of shape (n_samples, n_features) to one of shape
            (n_samples, n_outputs), like every ``nn.Linear``: for one output that is
            (n_samples, 1), where :meth:`predict` returns shape (n_samples,)
            (``module(x)[:, 0]`` or ``.squeeze(1)`` matches it).

        Raises
        ------
        ImportError
            If torch is not installed.
        """
        torch = _import_torch()
        nn = torch.nn
        dtype = torch.float64 if dtype is None else dtype
        m, d, c = self.n_neurons, self.n_features, self.n_outputs
        model = nn.Sequential(nn.Linear(d, m), nn.ReLU(), nn.Linear(m, c)).to(dtype)
        with torch.no_grad():
            model[0].weight.copy_(torch.as_tensor(self.W1, dtype=dtype))
            model[0].bias.copy_(torch.as_tensor(self.b1, dtype=dtype))
            model[2].weight.copy_(torch.as_tensor(self.W2, dtype=dtype))
            model[2].bias.copy_(torch.as_tensor(self.b2, dtype=dtype))
        return model

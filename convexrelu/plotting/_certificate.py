"""The dual functional of a certificate on the unit circle of 2-D inputs (docs/mathematics.rst
§4.2, §4.5)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_certificate"]


def _profile(X: np.ndarray, lam: np.ndarray, theta: np.ndarray, hidden_bias: bool,
             penalize_bias: bool):
    """The dual functional along the input directions ``e_theta = (cos theta, sin theta)``.

    Returns ``(upper, lower)``, arrays of shape ``(n_angles,)``:

    * no hidden bias: ``upper = lower = lambda^T (X e_theta)_+`` (one signed curve);
    * free hidden bias: ``upper = max_b lambda^T (X e_theta + b)_+`` and
      ``lower = min_b lambda^T (X e_theta + b)_+`` (the bias chosen optimally per direction;
      the functional is piecewise linear in ``b``, so the extremes sit at ``b = -x_k^T
      e_theta`` or at ``b -> -inf`` where it is 0);
    * penalised hidden bias: the extremes of ``lambda^T (r X e_theta + b)_+`` over the
      half circle ``r^2 + b^2 = 1, r >= 0`` (piecewise ``a cos(phi) + c sin(phi)`` between
      the breakpoints ``tan(phi) = -x_k^T e_theta``, maximised in closed form per piece).

    In every case ``max_theta max(upper, -lower) = M(lambda)``.
    """
    E = np.stack([np.cos(theta), np.sin(theta)])  # (2, K)
    S = (X @ E).T  # (K, n): s_i = x_i^T e_theta
    if not hidden_bias:
        f = np.maximum(S, 0.0) @ lam
        return f, f
    order = np.argsort(-S, axis=1)  # descending s: the active set grows along this order
    Ss = np.take_along_axis(S, order, axis=1)
    L = lam[order]
    CL = np.cumsum(L, axis=1)  # sum of lambda over the active prefix
    CS = np.cumsum(L * Ss, axis=1)  # sum of lambda_i s_i over the active prefix
    if not penalize_bias:
        # value at b = -s_(p): sum_{q <= p} lambda_(q) (s_(q) - s_(p))
        V = CS - Ss * CL
        upper = np.maximum(V.max(axis=1), 0.0)
        lower = np.minimum(V.min(axis=1), 0.0)
        return upper, lower
    # penalised bias: (r, b) = (cos phi, sin phi), phi in [-pi/2, pi/2]; sample i is active
    # for phi > phi_i = -atan(s_i). On [phi_(p), phi_(p+1)] the value is
    # a_p cos(phi) + c_p sin(phi) with (a_p, c_p) = (CS_p, CL_p).
    phi = -np.arctan(Ss)  # ascending along the order
    phi_next = np.concatenate([phi[:, 1:], np.full((phi.shape[0], 1), np.pi / 2)], axis=1)
    ends = CS * np.cos(phi) + CL * np.sin(phi)  # value at the left end of each piece
    top = CL[:, -1:]  # phi = pi/2: the constant neuron b = 1, all samples active
    R = np.hypot(CS, CL)
    best_up = np.maximum(np.max(ends, axis=1, keepdims=True), top)
    best_lo = np.minimum(np.min(ends, axis=1, keepdims=True), top)
    psi = np.arctan2(CL, CS)  # direction maximising a cos + c sin
    inside = (psi >= phi) & (psi <= phi_next)
    best_up = np.maximum(best_up, np.max(np.where(inside, R, -np.inf), axis=1, keepdims=True))
    psi_m = np.arctan2(-CL, -CS)  # direction minimising it
    inside_m = (psi_m >= phi) & (psi_m <= phi_next)
    best_lo = np.minimum(best_lo, np.min(np.where(inside_m, -R, np.inf), axis=1,
                                         keepdims=True))
    return np.maximum(best_up[:, 0], 0.0), np.minimum(best_lo[:, 0], 0.0)


def _value_at(X: np.ndarray, lam: np.ndarray, u: np.ndarray, b: float) -> float:
    return float(lam @ np.maximum(X @ u + b, 0.0))


def plot_certificate(cert_or_model, X, y=None, *, network=None, ax=None,
                     n_angles: int = 2001, alpha=None, loss=None, show_neurons: bool = True,
                     **certify_kwargs):
    """Draw the dual functional ``u -> lambda^T (X u)_+`` of a certificate on the unit circle.

    The certificate (docs/mathematics.rst §4.5) is a statement about this one function of the
    direction
    ``u`` of a hidden neuron: the network is globally optimal when its maximum
    ``M(lambda)`` over unit directions does not exceed ``beta`` (the weight decay in the
    sum form) and every neuron sits at the level ``+-beta``. The figure shows, against the
    angle ``theta`` of ``u = (cos theta, sin theta)`` (degrees on the x-axis):

    * the dual functional of the *unscaled* dual point ``lambda = -grad l(y_hat)`` (output
      bias re-fitted), whose maximum is the certificate's ``M(lambda)``;
    * the levels ``+beta`` and ``-beta`` allowed by the dual constraint (the certificate's
      ``dual_ratio`` is ``M(lambda) / beta``);
    * the network's neurons as markers at their own direction and value (triangles up for
      a positive output weight, down for a negative one): at a global optimum each sits on
      ``+beta`` or ``-beta`` and the curve nowhere leaves the band;
    * the most violating direction (a star at ``sign * M(lambda)``), the neuron to add to
      lower the objective when the curve leaves the band.

    **Hidden biases.** A neuron is ``(u, b)``; the plot parametrises it by the 2-D input
    direction ``u`` and takes, for each direction, the *optimal* bias:

    * free hidden bias (the default, docs/mathematics.rst §8.2; only ``||u||`` is penalised): two
    curves,
      ``max_b lambda^T (X u + b)_+`` (upper) and ``min_b lambda^T (X u + b)_+`` (lower),
      ``u`` on the unit circle and ``b`` over the real line;
    * penalised hidden bias: the same envelopes with ``(||u||, b)`` on the half circle
      ``||u||^2 + b^2 = 1`` (so a direction stands for the whole half-plane of neurons with
      that input direction);
    * no hidden bias: the single signed curve ``lambda^T (X u)_+``.

    In every case the largest absolute value on the plot is ``M(lambda)``: the angles of
    the maximiser and of the neurons are added to the grid, so the plotted maximum equals
    the certificate's value up to rounding.

    Parameters
    ----------
    cert_or_model : Certificate, ReLUNet, torch module or fitted MLPRegressor / MLPClassifier
        A certificate from :func:`convexrelu.certify` computed on ``X``, or a model to
        certify first (with ``y``, ``alpha``, ``loss`` and ``certify_kwargs``).
    X : array-like of shape (n_samples, 2)
        The training inputs (two features).
    y : array-like of shape (n_samples,), optional
        Targets; needed only when a model is given.
    network : ReLUNet, optional
        The network whose neurons are drawn when a certificate is given (a model's own
        neurons are drawn automatically).
    ax : matplotlib Axes, optional
    n_angles : int, default=2001
        Number of grid angles in ``[0, 360)`` degrees.
    alpha, loss : optional
        Passed to :func:`convexrelu.certify` with a model.
    show_neurons : bool, default=True
    **certify_kwargs
        Further arguments of :func:`convexrelu.certify` (``penalize_bias``,
        ``reduction``, ...), with a model.

    Returns
    -------
    ax : matplotlib Axes
        The curves carry the gids ``"dual-functional"`` (no bias) or
        ``"dual-functional-upper"`` / ``"dual-functional-lower"``.

    Raises
    ------
    ValueError
        If ``X`` does not have two features, the certificate has several outputs, or its
        dual point is zero (then its direction is lost: pass the model instead).

    References
    ----------
    M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact
    polynomial-time convex optimization formulations for two-layer networks", ICML 2020.
    """
    from .._validation import check_data_matrix
    from ..certificates import Certificate, certify

    X = check_data_matrix(X)
    if X.shape[1] != 2:
        raise ValueError(f"plot_certificate draws the dual functional on the unit circle of "
                         f"2-D inputs; X has {X.shape[1]} features. For other data use "
                         "Certificate.summary() (or project X to two features).")
    n_angles = int(n_angles)
    if n_angles < 8:
        raise ValueError(f"n_angles must be at least 8; got {n_angles}.")
    if isinstance(cert_or_model, Certificate):
        cert = cert_or_model
    else:
        if y is None:
            raise ValueError("y is required to certify a model; pass the training targets "
                             "(or pass a Certificate).")
        from ..certificates._certify import _as_network

        cert = certify(cert_or_model, X, y, alpha=alpha, loss=loss, **certify_kwargs)
        if network is None:
            network = _as_network(cert_or_model, alpha, loss)[0]
    dual = np.asarray(cert.dual, dtype=float)
    if dual.ndim != 1 or cert.conservative:
        raise ValueError("plot_certificate needs a one-output certificate (a scalar dual "
                         "point); this one has several outputs or a conservative bound. "
                         "Certify each output separately.")
    if dual.shape[0] != X.shape[0]:
        raise ValueError(f"the certificate has {dual.shape[0]} samples but X has "
                         f"{X.shape[0]}; pass the X the certificate was computed on.")
    if not cert.dual_scale > 0 or not np.any(dual != 0):
        raise ValueError("the certificate's dual point is zero (dual_scale = 0), so the "
                         "direction of lambda is lost; pass the model, X and y instead.")
    if network is not None and network.n_features != 2:
        raise ValueError(f"network has {network.n_features} features; X has 2.")
    # the network's own residual (the neurons sit on +-beta at a stationary point), also
    # when the bound used a refitted dual point
    lam = np.asarray(cert.info.get("residual_dual", dual / cert.dual_scale), dtype=float)
    M = float(cert.info.get("M_residual", cert.info.get("M", cert.dual_ratio * cert.beta)))
    beta = float(cert.beta)
    hidden_bias, penalize_bias = bool(cert.hidden_bias), bool(cert.penalize_bias)

    # ---- angles: a uniform grid plus the maximiser's and the neurons' angles
    theta = np.linspace(0.0, 2 * np.pi, n_angles, endpoint=False)
    extra = []
    direction = np.asarray(cert.info.get("residual_direction",
                                         cert.info.get("direction", np.zeros(0))), dtype=float)
    star = None
    if direction.size >= 2 and np.linalg.norm(direction[:2]) > 0:
        t_star = float(np.arctan2(direction[1], direction[0])) % (2 * np.pi)
        extra.append(t_star)
        star = (t_star, int(cert.info.get("residual_sign", cert.info.get("sign", 1))) * M)
    marks = []
    if network is not None and show_neurons:
        W2 = network.W2[0] if network.n_outputs == 1 else None
        for j in range(network.n_neurons if W2 is not None else 0):
            u, b, a = network.W1[j], float(network.b1[j]), float(W2[j])
            nu = float(np.linalg.norm(u))
            if nu == 0 or a == 0:
                continue  # a constant or silent neuron has no direction
            scale = float(np.hypot(nu, b)) if (hidden_bias and penalize_bias) else nu
            t_j = float(np.arctan2(u[1], u[0])) % (2 * np.pi)
            extra.append(t_j)
            marks.append((t_j, _value_at(X, lam, u / scale, b / scale if hidden_bias else 0.0),
                          np.sign(a)))
    theta = np.unique(np.concatenate([theta, np.asarray(extra, dtype=float)]))
    upper, lower = _profile(X, lam, theta, hidden_bias, penalize_bias)

    from ._arrangement import _import_pyplot

    plt = _import_pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    deg = np.degrees(theta)
    if hidden_bias:
        what = "free b" if not penalize_bias else "(|u|, b) on the half circle"
        ax.plot(deg, upper, color="C0", lw=1.5, gid="dual-functional-upper",
                label=rf"$\max_b\ \lambda^\top(Xu+b)_+$ ({what})")
        ax.plot(deg, lower, color="C1", lw=1.5, gid="dual-functional-lower",
                label=r"$\min_b\ \lambda^\top(Xu+b)_+$")
    else:
        ax.plot(deg, upper, color="C0", lw=1.5, gid="dual-functional",
                label=r"$\lambda^\top(Xu)_+$")
    ax.axhline(beta, color="k", ls="--", lw=1, label=r"$\pm\beta$ (constraint level)")
    ax.axhline(-beta, color="k", ls="--", lw=1)
    ax.axhline(0.0, color="0.8", lw=0.8, zorder=0)
    if marks:
        mk = np.array(marks)
        pos, neg = mk[:, 2] > 0, mk[:, 2] < 0
        if np.any(pos):
            ax.plot(np.degrees(mk[pos, 0]), mk[pos, 1], "^", color="C2", ms=7, ls="none",
                    label="neurons (output weight > 0)")
        if np.any(neg):
            ax.plot(np.degrees(mk[neg, 0]), mk[neg, 1], "v", color="C3", ms=7, ls="none",
                    label="neurons (output weight < 0)")
    if star is not None:
        lab = ("most violating direction" if M > beta * (1 + max(cert.tol, 1e-9))
               else "maximiser (no violation)")
        ax.plot(np.degrees(star[0]), star[1], "*", color="C4", ms=14, ls="none",
                label=f"{lab}, $M(\\lambda)/\\beta$ = {M / beta:.4g}" if beta > 0 else lab)
    verdict = ("certified optimal" if cert.optimal else
               "not certified (sampled patterns)" if not cert.exact else "not optimal")
    ax.set_title(f"dual functional on the unit circle: {verdict}, "
                 f"relative gap {cert.relative_gap:.2e}")
    ax.set_xlabel(r"direction $\theta$ of $u = (\cos\theta, \sin\theta)$ [degrees]")
    ax.set_ylabel(r"$\lambda^\top(Xu+b)_+$" if hidden_bias else r"$\lambda^\top(Xu)_+$")
    ax.set_xlim(0, 360)
    ax.set_xticks(np.arange(0, 361, 45))
    ax.legend(fontsize="small", loc="best")
    return ax

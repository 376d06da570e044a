"""A narrow net stuck above the optimum, exposed by the certificate.

Gradient descent on a width-2 two-layer ReLU net (1-D data, weight decay ``alpha``)
converges to a stationary point — the gradient vanishes — whose objective is well above
the global optimum ``p*`` of the convex program. Nothing in the training curve says so;
the certificate (docs/mathematics.rst §4.5) does: the dual point ``lambda`` built from the residual
violates the dual constraint, ``M(lambda) / beta > 1``, the lower bound is far below the
objective, and the maximiser of ``|lambda^T (X u + b)_+|`` is a neuron whose addition
lowers the objective. Adding it and training on escapes the stationary point.

In 1-D with a free hidden bias a unit neuron is ``(x - t)_+`` or ``(t - x)_+`` with its
kink at ``t``; the figure draws ``|lambda^T (±(x - t))_+| / beta`` over ``t``: wherever
it exceeds 1, a new neuron with that kink would pay for its weight decay.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import Stopwatch, pyplot, save_figure
from .one_d_regression import ALPHA, make_data

__all__ = ["run"]

DESCRIPTION = ("a narrow net stuck above the optimum; the certificate exposes it and "
               "names the violating neuron")


def run(out_dir: Path, fast: bool = False) -> int:
    """Run the demo: print the certificate and write ``stuck_gradient_descent.png``.

    Parameters
    ----------
    out_dir : Path
    fast : bool, default=False
        Fewer gradient steps (for the test suite).

    Returns
    -------
    int
        Exit code ``0``.
    """
    from ..certificates import certify
    from ..estimators import ConvexReLURegressor
    from ..nonconvex import train_gradient_flow

    width = 2
    lr = 0.1
    n_steps, n_more = (400, 200) if fast else (4000, 2000)
    X, y = make_data(12)
    print(f"Data: 12 points, y = sin(2x) + noise (the one_d_regression data); alpha = "
          f"{ALPHA}.")
    clock = Stopwatch()
    est = ConvexReLURegressor(alpha=ALPHA, patterns="exact", tol=1e-9).fit(X, y)
    p_star = float(est.objective_)
    print(f"Convex program over all patterns: p* = {p_star:.8f} ({est.n_neurons_} neurons).")

    h = train_gradient_flow(X, y, n_neurons=width, alpha=ALPHA, lr=lr, n_steps=n_steps,
                            init_scale=0.3, random_state=0,
                            record_every=max(1, n_steps // 200))
    net = h.network
    J = net.objective(X, y, ALPHA)
    print(f"\nGradient descent, width {width}, lr = {lr}, {n_steps} steps: J = {J:.8f}, "
          f"||grad J|| = {h.grad_norm[-1]:.2e} (from {h.grad_norm[0]:.2e}): a stationary "
          f"point, {J - p_star:.4f} ({(J - p_star) / p_star:.1%}) above p*.")
    cert = certify(net, X, y, alpha=ALPHA, loss="squared")
    print("Certificate of the width-2 net:")
    print("  " + str(cert).replace("\n", "\n  "))
    vn = cert.violating_neuron
    if vn is None:  # pragma: no cover - the data are chosen so that this does not happen
        print("No violating neuron: the net is dual feasible.")
        return 1
    kink = -vn.bias / vn.weight[0] if vn.weight[0] != 0 else float("nan")
    print(f"Violating neuron: u = {vn.weight[0]:+.3f}, b = {vn.bias:+.3f} (kink at x = "
          f"{kink:+.3f}), output sign {vn.sign:+d}, sign*lambda^T(Xu + b)_+ = "
          f"{vn.dual_value:.4f} > beta = {ALPHA}.")
    bigger = vn.add_to(net)
    J_add = bigger.objective(X, y, ALPHA)
    print(f"Adding it with the certified step: J {J:.8f} -> {J_add:.8f} (decrease "
          f"{J - J_add:.3e}; the certificate predicted {vn.objective_decrease:.3e}).")
    h2 = train_gradient_flow(X, y, init=bigger, alpha=ALPHA, lr=lr, n_steps=n_more,
                             record_every=max(1, n_more // 100))
    net2 = h2.network
    J2 = net2.objective(X, y, ALPHA)
    cert2 = certify(net2, X, y, alpha=ALPHA, loss="squared")
    print(f"Training the width-{width + 1} net on for {n_more} steps: J = {J2:.8f}, "
          f"{(J2 - p_star) / p_star:.2%} above p*; new certificate M(lambda)/beta = "
          f"{cert2.dual_ratio:.4f}, gap {cert2.gap:.3e}.")
    print(f"Computed in {clock}.")

    # the dual functional over the kink position (unit |u| = 1, free bias)
    lam = cert.dual / cert.dual_scale
    grid = np.linspace(X.min() - 0.5, X.max() + 0.5, 801)
    Z = X[:, 0][None, :] - grid[:, None]  # x_i - t
    g_up = np.maximum(Z, 0.0) @ lam / ALPHA   # neuron (x - t)_+
    g_down = np.maximum(-Z, 0.0) @ lam / ALPHA  # neuron (t - x)_+
    print(f"max over kinks of |lambda^T(±(x - t))_+| / beta = "
          f"{max(np.abs(g_up).max(), np.abs(g_down).max()):.4f} (certificate: "
          f"{cert.dual_ratio:.4f}).")

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    xs = np.linspace(X.min() - 0.3, X.max() + 0.3, 400)[:, None]
    ax.plot(xs[:, 0], est.network_.predict(xs), "k--", label=f"global optimum, J = {p_star:.4f}")
    ax.plot(xs[:, 0], net.predict(xs), color="C1", label=f"GD width {width} (stuck), J = {J:.4f}")
    ax.plot(xs[:, 0], net2.predict(xs), color="C2",
            label=f"+ violating neuron, trained on, J = {J2:.4f}")
    ax.axvline(kink, color="C3", ls=":", label=f"kink of the violating neuron, x = {kink:.2f}")
    ax.scatter(X[:, 0], y, color="C0", zorder=3, s=25, label="data")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title("fits", fontsize=10)
    ax.legend(fontsize=7)

    ax = axes[1]
    ax.plot(grid, np.abs(g_up), color="C0", label="|λᵀ(x − t)₊| / β")
    ax.plot(grid, np.abs(g_down), color="C4", label="|λᵀ(t − x)₊| / β")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="dual feasibility: ≤ 1")
    ax.axvline(kink, color="C3", ls=":")
    ax.plot(X[:, 0], np.zeros(len(X)), "|", color="k", ms=8)
    ax.set_xlabel("kink position t of a unit neuron")
    ax.set_title(f"certificate of the stuck net: M(λ)/β = {cert.dual_ratio:.3f}", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[2]
    t1 = h.steps
    t2 = h.steps[-1] + h2.steps
    ax.semilogy(t1, h.objective - p_star, color="C1", label=f"width {width}: J_t − p*")
    ax.semilogy(t2, np.maximum(h2.objective - p_star, 1e-16), color="C2",
                label=f"after adding the neuron (width {width + 1})")
    ax.axhline(cert.gap, color="C1", ls=":", label=f"certificate gap J − LB = {cert.gap:.3f}")
    ax.set_xlabel("step")
    ax.set_ylabel("J_t − p*")
    ax.set_title("training curve: flat for the stuck net", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle("Gradient descent stuck at a stationary point, and what the certificate says")
    fig.tight_layout()
    save_figure(fig, out_dir, "stuck_gradient_descent.png")
    return 0

"""Frei & Gu: a proxy-PL inequality for a leaky-ReLU net, and the ReLU contrast.

A two-layer net ``f(x) = sum_j a_j act(u_j^T x)`` with a fixed second layer
``a_j = ±1/sqrt(m)`` is trained on linearly separable data (``||x_i|| <= 1``, margin
``gamma`` with respect to a unit ``v``) by gradient descent on the logistic loss. With
the proxy ``G(W) = (1/n) sum_i -l'(y_i f(x_i))`` (and ``2 G >=`` the 0-1 training
error), pairing the gradient with ``V = (a_j v)_j`` gives, for a leaky ReLU of slope
``c``, the proxy-PL inequality (docs/mathematics.rst §6.3 item 2)

.. math::

    \\|\\nabla L(W)\\|_F \\ \\ge\\ c\\,\\gamma\\, G(W),

so ``G`` — and the training error — is driven to zero. For the ReLU (``c = 0``) the
floor is ``0`` and the inequality says nothing: from an initialisation where every
neuron points at the wrong class, the ReLU net stalls with ``G`` bounded away from zero
and a vanishing gradient, while the leaky net started at the same weights trains.
Here the neurons with ``a_j > 0`` start inactive on every sample (the data lie in the
half-plane ``x_2 > 0``): a ReLU net can then never output a positive value.

References
----------
S. Frei and Q. Gu, "Proxy convexity: a unified framework for the analysis of neural
networks trained by gradient descent", NeurIPS 2021.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import Stopwatch, pyplot, save_figure

__all__ = ["run", "make_data"]

DESCRIPTION = ("Frei & Gu: running proxy-PL ratio of a leaky-ReLU net vs its floor c*gamma, "
               "and the ReLU contrast")

SLOPE = 0.2
MARGIN = 0.1


def make_data(n_samples: int, *, random_state=0):
    """Points with ``x_2 in [0.2, 0.6]`` and ``MARGIN <= |x_1| <= 0.75``, labelled ``sign(x_1)``.

    ``||x_i|| <= 1``; the second coordinate plays the role of a constant bias feature
    (all data lie in the half-plane ``x_2 > 0``), so a neuron can be inactive on every
    sample.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,)
    gamma : float
        The margin ``min_i y_i x_{i1}`` (``>= MARGIN``) with respect to ``v = e_1``.
    """
    rng = np.random.default_rng(random_state)
    x1 = rng.uniform(MARGIN, 0.75, n_samples) * np.where(np.arange(n_samples) % 2, 1.0, -1.0)
    x2 = rng.uniform(0.2, 0.6, n_samples)
    X = np.c_[x1, x2]
    y = np.sign(x1)
    return X, y, float(np.min(y * X[:, 0]))


def _init(m: int, random_state=0):
    """Neurons voting ``+`` (``a_j > 0``) start dead: ``u_j ≈ (0, -1)``, inactive on all data."""
    from ..network import ReLUNet

    rng = np.random.default_rng(random_state)
    a = np.where(np.arange(m) % 2 == 0, 1.0, -1.0) / np.sqrt(m)
    W1 = 0.3 * rng.standard_normal((m, 2))
    W1[a > 0] = np.array([0.0, -1.0]) + 0.05 * rng.standard_normal((int(np.sum(a > 0)), 2))
    return ReLUNet(W1, None, a[None, :], None)


def run(out_dir: Path, fast: bool = False) -> int:
    """Run the demo: print the proxy-PL ratios and write ``proxy_pl.png``.

    Parameters
    ----------
    out_dir : Path
    fast : bool, default=False
        Fewer samples and steps (for the test suite).

    Returns
    -------
    int
        Exit code ``0``.
    """
    from ..nonconvex import ProxyPLMonitor, train_gradient_flow

    n_samples, n_steps = (30, 150) if fast else (80, 2000)
    m, lr = 8, 0.5
    X, y, gamma = make_data(n_samples, random_state=0)
    init = _init(m, random_state=0)
    print(f"Data: {n_samples} points with x_2 in [0.2, 0.6], {MARGIN} <= |x_1| <= 0.75, "
          f"y = sign(x_1): ||x|| <= 1, separable with margin gamma = {gamma:.4f} (v = e_1).")
    print(f"Net: m = {m} neurons, fixed a_j = ±1/sqrt(m); first layer trained by GD on the "
          f"logistic loss, lr = {lr}, {n_steps} steps; at initialisation the neurons with "
          "a_j > 0 are inactive on every sample (u_j ~ (0, -1)).")
    clock = Stopwatch()
    runs = {}
    for name, slope in (("leaky", SLOPE), ("relu", 0.0)):
        mons = [ProxyPLMonitor(proxy="dual", exponent=1.0),
                ProxyPLMonitor(proxy="error", exponent=1.0, name="error")]
        h = train_gradient_flow(X, y, init=init, loss="logistic", lr=lr, n_steps=n_steps,
                                bias=False, negative_slope=slope, train_output_layer=False,
                                record_every=max(1, n_steps // 300), monitors=mons)
        rec, err = h.monitors["proxy_pl"], h.monitors["error"]
        runs[name] = (h, rec, err, mons[0])
        floor = slope * gamma
        print(f"\n{name} (slope c = {slope}): floor c*gamma = {floor:.4f}")
        lf = SLOPE * gamma
        print(f"  running min of ||grad L|| / G = {rec['running_min'][-1]:.4f} "
              f"({'>=' if rec['running_min'][-1] >= floor else '<'} its floor {floor:.4f}; "
              f"{'>=' if rec['running_min'][-1] >= lf else '<'} the leaky floor {lf:.4f}); "
              f"final ratio {rec['ratio'][-1]:.4f}")
        print(f"  G: {rec['proxy'][0]:.4f} -> {rec['proxy'][-1]:.4f}; training error: "
              f"{err['proxy'][0]:.3f} -> {err['proxy'][-1]:.3f}; error <= 2G at every "
              f"record: {bool(np.all(err['proxy'] <= 2 * rec['proxy'] + 1e-12))}")
        print(f"  ||grad L||: {rec['grad_norm'][0]:.3e} -> {rec['grad_norm'][-1]:.3e}; "
              f"fitted proxy-PL exponent {mons[0].fit_exponent(h):.3f}")
    print(f"\nComputed in {clock}.")

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    cols = {"leaky": "C0", "relu": "C3"}
    for name, (h, rec, err, _) in runs.items():
        lab = f"leaky ReLU, c = {SLOPE}" if name == "leaky" else "ReLU, c = 0"
        axes[0].semilogy(rec["step"], rec["ratio"], color=cols[name], label=f"{lab}: ratio")
        axes[0].semilogy(rec["step"], rec["running_min"], color=cols[name], ls=":", lw=1)
        axes[1].semilogy(rec["step"], rec["proxy"], color=cols[name], label=f"{lab}: G")
        axes[1].plot(err["step"], np.maximum(err["proxy"], 1e-4), color=cols[name], ls="--",
                     lw=1, label=f"{lab}: 0-1 error (floored at 1e-4)")
    axes[0].axhline(SLOPE * gamma, color="k", ls="--", label=f"floor cγ = {SLOPE * gamma:.3f}")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("‖∇L‖ / G  (dotted: running min)")
    axes[0].set_title("proxy-PL ratio (exponent 1, ξ = 0)", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("step")
    axes[1].set_title("proxy G = mean −ℓ′(y f) and training error", fontsize=10)
    axes[1].legend(fontsize=7)
    ax = axes[2]
    G1, G2 = np.meshgrid(np.linspace(-0.85, 0.85, 200), np.linspace(0.1, 0.7, 120))
    P = np.c_[G1.ravel(), G2.ravel()]
    for name, (h, *_rest) in runs.items():
        w = h.weights
        pre = P @ w["W1"].T
        act = np.where(pre > 0, pre, (SLOPE if name == "leaky" else 0.0) * pre)
        f = (act @ w["W2"].T)[:, 0].reshape(G1.shape)
        ax.contour(G1, G2, f, levels=[0.0], colors=cols[name], linewidths=1.5)
        ax.plot([], [], color=cols[name], label=f"{name}: decision boundary f = 0")
    ax.scatter(X[:, 0], X[:, 1], c=np.where(y > 0, "C0", "C3"), s=14, edgecolors="k",
               linewidths=0.3)
    ax.set_title("final decision boundaries f = 0", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.suptitle("Proxy PL inequality ‖∇L‖ ≥ cγ·G (Frei & Gu 2021): leaky ReLU vs ReLU "
                 "from the same initialisation")
    fig.tight_layout()
    save_figure(fig, out_dir, "proxy_pl.png")
    return 0

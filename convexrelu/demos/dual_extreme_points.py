"""Wang & Pilanci: max-margin training converges to the extreme points of the dual.

On orthogonally separable data (``x_i^T x_j > 0`` within a class, ``<= 0`` across;
docs/mathematics.rst §5.4) a bias-free two-layer ReLU net is trained from a small initialisation by
normalised gradient descent on the logistic loss (a time-reparametrised gradient flow on
``log L``, docs/mathematics.rst §5.5). Two things are measured:

* the normalised margin ``min_i y_i f(x_i) / sum_j |alpha_j| ||u_j||`` against
  ``1 / R_mm``, where ``R_mm`` is the optimal value of the convex max-margin program
  (docs/mathematics.rst §3.3) — no network has a larger normalised margin;
* each neuron's direction against the maximisers of ``u -> s lambda^T (X u)_+`` on the
  sphere (``s`` the sign of its output weight): the dual-extreme directions, both for the
  current dual point ``lambda_t = y * sigma(-y f)`` (the flow's own) and for the optimal
  dual ``lambda*`` of the convex program (its limit).

For orthogonally separable data with ``y * lambda >= 0`` the maximiser is explicit:
``u_s ∝ sum_{i: s lambda_i > 0} s lambda_i x_i`` (docs/mathematics.rst §5.4).

References
----------
Y. Wang and M. Pilanci, "The convex geometry of backpropagation: neural network gradient
flows converge to extreme points of the dual convex program", ICLR 2022.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import Stopwatch, pyplot, save_figure

__all__ = ["run", "orthogonally_separable_data", "max_margin_dual", "normalized_margin",
           "extreme_directions", "neuron_dual_values", "logistic_dual_direction"]

DESCRIPTION = ("Wang & Pilanci: max-margin training; neurons reach the dual-extreme "
               "directions, the margin 1/R_mm")


def orthogonally_separable_data(n_samples: int = 10, *, random_state=0):
    """2-D orthogonally separable data: two cones of half-angle 35° pointing apart.

    Positive points have angles in ``[-35°, 35°]``, negative ones in ``[145°, 215°]``,
    radii in ``[0.5, 1.5]``: inner products are positive within a class (angles differ by
    less than 90°) and negative across (by more than 90°).

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,)
        Labels in ``{-1, +1}``.
    """
    rng = np.random.default_rng(random_state)
    n_pos = n_samples // 2
    ang = np.radians(np.r_[rng.uniform(-35, 35, n_pos), rng.uniform(145, 215, n_samples - n_pos)])
    r = rng.uniform(0.5, 1.5, n_samples)
    X = np.c_[r * np.cos(ang), r * np.sin(ang)]
    y = np.r_[np.ones(n_pos), -np.ones(n_samples - n_pos)]
    return X, y


def max_margin_dual(X, y):
    """Solve the convex max-margin program (bias-free, no output bias; docs/mathematics.rst §3.3).

    .. math::

        R_{\\rm mm} = \\min \\sum_i \\|v_i\\| + \\|w_i\\| \\ \\text{ s.t. }\\
        y\\circ\\sum_i D_iX(v_i - w_i)\\ge 1,\\ (2D_i - I)Xv_i\\ge0,\\ (2D_i - I)Xw_i\\ge0

    over all activation patterns of ``X``.

    Returns
    -------
    R_mm : float
    lam : ndarray of shape (n_samples,)
        The optimal dual point ``lambda*`` (``y * lambda* >= 0``, ``y^T lambda* = R_mm``).
    """
    from ..arrangements import enumerate_patterns
    from ..program import ConvexProgram
    from ..solvers.cvxpy_solver import CvxpySolver

    pats = enumerate_patterns(X, bias=False)
    prog = ConvexProgram(X, y, pats, loss="logistic", alpha=0.0, bias=False,
                         fit_output_bias=False, formulation="max_margin")
    sol = CvxpySolver(tol=1e-10).solve(prog)
    return float(sol.objective), np.asarray(sol.dual, dtype=float)


def normalized_margin(W1, W2, X, y) -> float:
    """``min_i y_i f(x_i) / sum_j |alpha_j| ||u_j||`` of a bias-free net (at most 1/R_mm)."""
    W1 = np.asarray(W1, float)
    a = np.asarray(W2, float).reshape(-1)
    f = np.maximum(X @ W1.T, 0.0) @ a
    path = float(np.sum(np.abs(a) * np.linalg.norm(W1, axis=1)))
    return float(np.min(y * f) / path) if path > 0 else float("nan")


def extreme_directions(X, lam):
    """Maximisers of ``u -> s lambda^T (X u)_+`` over unit ``u``, for ``s = +1, -1``.

    Valid for orthogonally separable data and ``y * lambda >= 0`` (docs/mathematics.rst §5.4),
    where the
    maximiser is ``sum_{i: s lambda_i > 0} s lambda_i x_i`` normalised, and the maximum is
    its norm.

    Returns
    -------
    directions : ndarray of shape (2, n_features)
        Row 0 for ``s = +1``, row 1 for ``s = -1``.
    values : ndarray of shape (2,)
        ``M_+(lambda)``, ``M_-(lambda)``; ``M(lambda)`` is their maximum.
    """
    dirs, vals = [], []
    for s in (1.0, -1.0):
        w = np.maximum(s * lam, 0.0)
        c = X.T @ w
        nrm = float(np.linalg.norm(c))
        dirs.append(c / nrm if nrm > 0 else c)
        vals.append(nrm)
    return np.array(dirs), np.array(vals)


def neuron_dual_values(W1, W2, X, lam):
    """``sign(alpha_j) lambda^T (X u_j / ||u_j||)_+ / M_sign(lambda)`` for every neuron.

    ``1`` means that neuron ``j`` sits at a dual-extreme direction (docs/mathematics.rst §9 item
    29).
    """
    W1 = np.asarray(W1, float)
    a = np.asarray(W2, float).reshape(-1)
    _, vals = extreme_directions(X, lam)
    U = W1 / np.maximum(np.linalg.norm(W1, axis=1), 1e-300)[:, None]
    s = np.where(a >= 0, 1.0, -1.0)
    return s * (np.maximum(X @ U.T, 0.0).T @ lam) / np.where(s > 0, vals[0], vals[1])


def logistic_dual_direction(W1, W2, X, y):
    """``lambda_t = y * sigma(-y f)`` of a bias-free net, rescaled to ``max |lambda| = 1``.

    Computed in log space, so that it stays exact when every ``sigma(-y_i f_i)``
    underflows (large margins); the dual-extreme directions depend only on its direction.
    """
    f = np.maximum(X @ np.asarray(W1).T, 0.0) @ np.asarray(W2).reshape(-1)
    log_s = -np.logaddexp(0.0, y * f)  # log sigma(-y f)
    return y * np.exp(log_s - log_s.max())


def run(out_dir: Path, fast: bool = False) -> int:
    """Run the demo: print margins and alignments, write ``dual_extreme_points.png``.

    Parameters
    ----------
    out_dir : Path
    fast : bool, default=False
        Fewer neurons and a larger step (for the test suite).

    Returns
    -------
    int
        Exit code ``0``.
    """
    from ..nonconvex import train_gradient_flow

    n_samples = 10
    n_neurons, lr, n_steps = (10, 0.05, 700) if fast else (20, 0.01, 4000)
    X, y = orthogonally_separable_data(n_samples, random_state=0)
    G = X @ X.T
    same = y[:, None] == y[None, :]
    print(f"Data: {n_samples} points in 2-D (seed 0), orthogonally separable: "
          f"min within-class x_i.x_j = {G[same].min():.3f} > 0, max across = "
          f"{G[~same].max():.3f} <= 0.")
    clock = Stopwatch()
    R_mm, lam_star = max_margin_dual(X, y)
    dirs_star, vals_star = extreme_directions(X, lam_star)
    ang_star = np.degrees(np.arctan2(dirs_star[:, 1], dirs_star[:, 0]))
    print(f"Convex max-margin program (exact patterns): R_mm = {R_mm:.6f}, 1/R_mm = "
          f"{1 / R_mm:.6f}; y.lambda* = {y @ lam_star:.6f}; M(lambda*) = "
          f"{vals_star.max():.6f}; dual-extreme directions at {ang_star[0]:.2f}° (s = +1) "
          f"and {ang_star[1]:.2f}° (s = -1).")

    h = train_gradient_flow(X, y, n_neurons=n_neurons, loss="logistic", lr=lr,
                            n_steps=n_steps, init_scale=1e-3, normalized=True, bias=False,
                            output_bias=False, random_state=0,
                            record_every=max(1, n_steps // 400), max_snapshots=400)
    W1, W2 = h.weights["W1"], h.weights["W2"]
    gamma = normalized_margin(W1, W2, X, y)
    print(f"\nNormalised GD on log L: m = {n_neurons}, init scale 1e-3, lr = {lr}, "
          f"{h.n_steps} steps (stops when L underflows), final L = {h.final_objective:.2e}.")
    print(f"Normalised margin {gamma:.6f} vs 1/R_mm = {1 / R_mm:.6f}: ratio "
          f"{gamma * R_mm:.5f}.")
    mag = np.abs(W2[0]) * np.linalg.norm(W1, axis=1)
    active = mag >= 1e-3 * mag.max()
    lam_t = logistic_dual_direction(W1, W2, X, y)
    dirs_t, _ = extreme_directions(X, lam_t)
    val_t = neuron_dual_values(W1, W2, X, lam_t)[active]
    val_s = neuron_dual_values(W1, W2, X, lam_star)[active]
    U = W1[active] / np.linalg.norm(W1[active], axis=1)[:, None]
    s_idx = np.where(W2[0, active] >= 0, 0, 1)
    cos_t = np.sum(U * dirs_t[s_idx], axis=1)
    cos_s = np.sum(U * dirs_star[s_idx], axis=1)
    print(f"Active neurons (|alpha_j| ||u_j|| >= 1e-3 max): {active.sum()} of {n_neurons} "
          f"({np.sum(W2[0, active] > 0)} positive, {np.sum(W2[0, active] < 0)} negative).")
    print(f"  s lambda_t^T (X u_j)_+ / M_s(lambda_t): min {val_t.min():.6f}  (current dual; "
          f"angle to its extreme direction <= {np.degrees(np.arccos(min(1, cos_t.min()))):.3f}°)")
    print(f"  s lambda*^T (X u_j)_+ / M_s(lambda*):   min {val_s.min():.6f}  (optimal dual; "
          f"angle <= {np.degrees(np.arccos(min(1, cos_s.min()))):.2f}°)")
    print(f"Computed in {clock}.")

    # trajectories from the snapshots
    steps = h.snapshot_steps
    margins = np.array([normalized_margin(a, b, X, y) for a, b in zip(h.W1, h.W2)])
    ang = np.degrees(np.unwrap(np.arctan2(h.W1[:, :, 1], h.W1[:, :, 0]), axis=0))  # (S, m)
    ang -= 360.0 * np.floor((ang[-1] + 270.0) / 360.0)  # final angles in [-270, 90)
    mag_t = np.abs(h.W2[:, 0, :]) * np.linalg.norm(h.W1, axis=2)

    plt = pyplot()
    fig = plt.figure(figsize=(15, 4.8))
    ax = fig.add_subplot(1, 3, 1, projection="polar")
    phi = np.linspace(-np.pi, np.pi, 1441)
    Ug = np.c_[np.cos(phi), np.sin(phi)]
    val = np.maximum(X @ Ug.T, 0.0).T @ lam_star / vals_star.max()
    ax.plot(phi, 1 + np.maximum(val, 0), color="C0",
            label="1 + λ*ᵀ(Xu)₊ / M  (positive neurons)")
    ax.plot(phi, 1 + np.maximum(-val, 0), color="C3",
            label="1 − λ*ᵀ(Xu)₊ / M  (negative neurons)")
    r_max = 2.2
    for k in range(n_neurons):
        col = "C0" if W2[0, k] >= 0 else "C3"
        w = 0.25 + 0.75 * (mag[k] / mag.max())
        ax.annotate("", xy=(np.arctan2(W1[k, 1], W1[k, 0]), 1 + mag[k] / mag.max()),
                    xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=col, lw=w))
    for j, col in enumerate(("C0", "C3")):
        ax.plot([np.radians(ang_star[j])] * 2, [0, r_max], ls="--", color=col, lw=0.8)
    ang_x = np.arctan2(X[:, 1], X[:, 0])
    ax.scatter(ang_x, np.linalg.norm(X, axis=1), c=np.where(y > 0, "C0", "C3"), marker="o",
               s=18, edgecolors="k", linewidths=0.4, zorder=3)
    ax.set_ylim(0, r_max)
    ax.set_yticklabels([])
    ax.set_title("dual functional on the circle, final neurons (arrows),\n"
                 "data (dots), dual-extreme directions (dashed)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(-0.25, -0.2))

    ax = fig.add_subplot(1, 3, 2)
    for k in range(n_neurons):
        col = "C0" if W2[0, k] >= 0 else "C3"
        ax.plot(steps, ang[:, k], color=col, alpha=0.3 + 0.7 * float(active[k]), lw=1)
    for j, col in enumerate(("C0", "C3")):
        ax.axhline((ang_star[j] + 270.0) % 360.0 - 270.0, color=col, ls="--", lw=1,
                   label=f"extreme direction of λ*, s = {'+' if j == 0 else '−'}: "
                         f"{ang_star[j]:.1f}°")
    ax.set_xlabel("step")
    ax.set_ylabel("neuron angle (degrees)")
    ax.set_title("neuron directions during training", fontsize=10)
    ax.legend(fontsize=7)

    ax = fig.add_subplot(1, 3, 3)
    ax.plot(steps, margins * R_mm, color="C2", label="normalised margin × R_mm")
    ax.axhline(1.0, color="k", ls="--", label="1 (= 1/R_mm, the convex optimum)")
    ax.set_ylim(max(-0.5, min(0.0, np.nanmin(margins * R_mm))), 1.05)
    ax2 = ax.twinx()
    ax2.semilogy(steps, mag_t.sum(axis=1), color="0.6", lw=0.8)
    ax2.set_ylabel("path norm Σ|α_j|‖u_j‖ (grey)", color="0.4")
    ax.set_xlabel("step")
    ax.set_ylabel("γ(θ_t) · R_mm")
    ax.set_title(f"final γ·R_mm = {gamma * R_mm:.4f}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Normalised gradient descent on orthogonally separable data "
                 "(Wang & Pilanci 2022)")
    fig.tight_layout()
    save_figure(fig, out_dir, "dual_extreme_points.png")
    return 0

"""Robin, Scaman & Lelarge: linear convergence below the over-parameterised regime.

An under-parameterised teacher–student problem: a bias-free two-layer ReLU teacher with
2 neurons labels ``n`` Gaussian points in 2-D; a student with 4 neurons (``p = 12``
parameters, ``p < n``) is trained by gradient descent on the squared loss without weight
decay. The tangent kernel ``K_t = Jac Jac^T`` is ``n x n`` of rank at most ``p``, so
``lambda_min(K_t) = 0``: the NTK argument ``||grad L||^2 >= (2/n) lambda_min(K) L``
gives nothing. The Rayleigh quotient in the residual direction (docs/mathematics.rst §7.2)

.. math::

    \\rho_t = \\frac{r^\\top K_t r}{r^\\top r},\\qquad
    \\frac{\\|\\nabla L\\|^2}{L} = \\frac2n\\,\\rho_t \\quad (L = \\tfrac1{2n}\\|r\\|^2),

stays bounded away from zero instead, which is a PL inequality along the trajectory:
the loss decays linearly (geometrically), and the fitted KL exponent is 1.

References
----------
D. A. R. Robin, K. Scaman and M. Lelarge, "Convergence beyond the over-parameterized
regime using Rayleigh quotients", NeurIPS 2022.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import Stopwatch, pyplot, save_figure

__all__ = ["run"]

DESCRIPTION = ("Robin, Scaman & Lelarge: lambda_min(K) = 0, yet a bounded Rayleigh quotient "
               "and linear loss decay")


def run(out_dir: Path, fast: bool = False) -> int:
    """Run the demo: print the kernel quantities and write ``rayleigh_quotient.png``.

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
    from ..network import ReLUNet
    from ..nonconvex import RayleighMonitor, train_gradient_flow

    n, n_steps = (40, 300) if fast else (200, 2000)
    lr, d, m = 0.2, 2, 4
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, d))
    teacher = ReLUNet(np.array([[1.0, 0.5], [-0.6, 1.0]]), None, np.array([[1.0, -0.8]]), None)
    y = teacher.predict(X)
    W1 = np.vstack([teacher.W1 + 0.2 * rng.standard_normal((2, d)),
                    0.3 * rng.standard_normal((m - 2, d))])
    W2 = np.hstack([teacher.W2 + 0.2 * rng.standard_normal((1, 2)),
                    0.1 * rng.standard_normal((1, m - 2))])
    p = m * (d + 1)
    print(f"Teacher: 2 bias-free ReLU neurons in 2-D; {n} Gaussian inputs (seed 1).")
    print(f"Student: {m} neurons, p = {p} parameters < n = {n}; squared loss "
          f"L = (1/2n)||r||^2, no weight decay; GD with lr = {lr}, {n_steps} steps, "
          "initialised near the teacher (two perturbed teacher neurons + two small ones).")
    clock = Stopwatch()
    h = train_gradient_flow(X, y, init=ReLUNet(W1, None, W2, None), alpha=0.0, lr=lr,
                            n_steps=n_steps, bias=False, record_every=max(1, n_steps // 100),
                            monitors=[RayleighMonitor()])
    r = h.monitors["rayleigh"]
    L = h.objective
    print(f"\nlambda_min(K_t): max |.| over the run = {np.max(np.abs(r['lambda_min'])):.2e} "
          f"(lambda_max from {r['lambda_max'].min():.1f} to {r['lambda_max'].max():.1f})")
    print(f"rho_t: min {np.nanmin(r['rho']):.3f}, max {np.nanmax(r['rho']):.3f}")
    print(f"identity ||grad L||^2 / L = (2/n) rho_t: max relative error "
          f"{np.nanmax(r['identity_error']):.1e}")
    start = n_steps // 5
    keep = (h.steps >= start) & (L > 0)
    slope = np.polyfit(h.steps[keep], np.log(L[keep]), 1)[0]
    print(f"loss: {L[0]:.3e} -> {L[-1]:.3e}; fitted log L slope after step {start}: "
          f"{slope:.4f} per step (a factor {np.exp(-slope * 100):.3g} every 100 steps)")
    print(f"gradient flow: d log L / dt = -(2/n) rho_t, so min rho bounds the decay by "
          f"about lr (2/n) min rho = {lr * 2 / n * np.nanmin(r['rho']):.4f} per step")
    print(f"fitted KL exponent (slope of log ||grad L||^2 vs log L, after step {start}): "
          f"{h.fit_kl_exponent(start=start):.3f}  (1 = PL regime)")
    print(f"Computed in {clock}.")

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    ax.semilogy(h.steps, L, color="C0", label="L_t")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"loss decays linearly: slope {slope:.3f} per step in log L", fontsize=10)
    ax.legend()
    ax = axes[1]
    st = r["step"]
    ax.semilogy(st, r["rho"], color="C2", label="ρ_t = rᵀK r / rᵀr")
    ax.semilogy(st, r["lambda_max"], color="C1", ls="--", label="λ_max(K_t)")
    ax.semilogy(st, np.maximum(np.abs(r["lambda_min"]), 1e-18), color="C3", ls=":",
                label="|λ_min(K_t)| (rank K ≤ p < n)")
    ax.set_xlabel("step")
    ax.set_title("tangent kernel: Rayleigh quotient vs extreme eigenvalues", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.loglog(L[1:], h.grad_norm[1:] ** 2, ".", color="C0", ms=4, label="‖∇L‖² vs L")
    pl = r["pl_ratio"]
    ax.loglog(L, (2.0 / n) * r["rho"] * L, color="C2", lw=1, label="(2/n) ρ_t L_t")
    ax.set_xlabel("L")
    ax.set_ylabel("‖∇L‖²")
    ax.set_title(f"KL exponent {h.fit_kl_exponent(start=start):.3f}; "
                 f"‖∇L‖²/L ∈ [{np.nanmin(pl):.3g}, {np.nanmax(pl):.3g}]", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle(f"Under-parameterised teacher–student (p = {p} < n = {n}): "
                 "λ_min(K) = 0, yet PL along the trajectory (Robin, Scaman & Lelarge 2022)")
    fig.tight_layout()
    save_figure(fig, out_dir, "rayleigh_quotient.png")
    return 0

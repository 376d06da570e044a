"""1-D regression: the convex optimum against gradient descent at widths 2, 10 and 50.

The training problem (docs/mathematics.rst §8.1, scikit-learn's normalisation)

.. math::

    J(\\theta) = \\frac1n\\Big[\\frac12\\sum_i (f_\\theta(x_i) - y_i)^2
        + \\frac\\alpha2\\big(\\|W_1\\|_F^2 + \\|W_2\\|_F^2\\big)\\Big]

is solved exactly by the convex program over all activation patterns of ``[x, 1]``
(:func:`convexrelu.compare_gradient_flow`), and networks of widths 2, 10 and 50 are
trained by full-batch gradient descent (a discretised gradient flow) on the same ``J``.
Every final network is certified with :func:`convexrelu.certify`: the certified lower
bound is never above the optimum, and the wide nets are certified optimal while the
narrow one is not.

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact polynomial-time
convex optimization formulations for two-layer networks", ICML 2020.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import Stopwatch, pyplot, save_figure

__all__ = ["run", "make_data"]

DESCRIPTION = ("1-D regression: convex optimum vs gradient descent at widths 2, 10, 50, "
               "with certificates")

ALPHA = 0.3
INIT_SCALE = 0.3
WIDTHS = (2, 10, 50)


def make_data(n_samples: int = 12, *, random_state: int = 0):
    """A smooth 1-D target with noise: ``y = sin(2x) + 0.1 N(0, 1)``, ``x ~ U[-2, 2]``.

    Returns
    -------
    X : ndarray of shape (n_samples, 1)
    y : ndarray of shape (n_samples,)
    """
    rng = np.random.default_rng(random_state)
    x = np.sort(rng.uniform(-2.0, 2.0, n_samples))
    y = np.sin(2.0 * x) + 0.1 * rng.standard_normal(n_samples)
    return x[:, None], y


def run(out_dir: Path, fast: bool = False) -> int:
    """Run the demo: print the comparison table and write ``one_d_regression.png``.

    Parameters
    ----------
    out_dir : Path
        Folder of the figure (created when missing).
    fast : bool, default=False
        300 instead of 3000 gradient steps (for the test suite).

    Returns
    -------
    int
        Exit code ``0``.
    """
    from ..nonconvex import compare_gradient_flow

    n_samples = 12
    seeds = (0,)
    n_steps = 300 if fast else 3000
    lr = 0.1
    X, y = make_data(n_samples)
    print(f"Data: {n_samples} points, x ~ U[-2, 2], y = sin(2x) + 0.1 N(0, 1) (seed 0).")
    print(f"Objective J = (1/n)[(1/2)||f(X) - y||^2 + (alpha/2)(||W1||^2 + ||W2||^2)], "
          f"alpha = {ALPHA}; hidden and output biases unpenalised.")
    print(f"Gradient descent: lr = {lr}, {n_steps} steps, widths {WIDTHS}, seed "
          f"{seeds[0]}, init_scale = {INIT_SCALE}.\n")
    clock = Stopwatch()
    res = compare_gradient_flow(X, y, alpha=ALPHA, widths=WIDTHS, seeds=seeds,
                                n_steps=n_steps, lr=lr, init_scale=INIT_SCALE,
                                progress=False, record_every=max(1, n_steps // 200))
    print(res.table(digits=4))
    opt_neurons = int(np.count_nonzero(np.abs(res.optimum_network.W2[0]) > 1e-8))
    print(f"Convex optimum p* = {res.optimum:.8f} with {opt_neurons} active neurons "
          f"({'exact' if res.exact_patterns else 'sampled'} patterns).")
    for r in res.runs:
        verdict = "certified optimal" if r["certified_optimal"] else "NOT certified"
        print(f"  width {r['width']:>2}, seed {r['seed']}: J - p* = "
              f"{r['gap_to_optimum']:+.2e}, certificate gap J - LB = "
              f"{r['certificate_gap']:.2e}, M(lambda)/beta = {r['dual_ratio']:.4f} "
              f"-> {verdict}")
    below = [r for r in res.runs if r["objective"] < res.optimum - 1e-8 * abs(res.optimum)]
    print(f"Runs below the convex optimum: {len(below)} (there can be none).")
    print(f"Computed in {clock}.")

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    grid = np.linspace(X.min() - 0.3, X.max() + 0.3, 400)[:, None]
    cmap = plt.get_cmap("viridis")
    for k, width in enumerate(WIDTHS):
        i = next(i for i, r in enumerate(res.runs) if r["width"] == width)
        ax.plot(grid[:, 0], res.histories[i].network.predict(grid), lw=1.5,
                color=cmap(k / max(1, len(WIDTHS) - 1)),
                label=f"GD, m = {width}: J − p* = {res.runs[i]['gap_to_optimum']:.1e}")
    ax.plot(grid[:, 0], res.optimum_network.predict(grid), "k--", lw=1.5,
            label=f"convex optimum ({opt_neurons} neurons)")
    ax.scatter(X[:, 0], y, color="C3", zorder=3, s=25, label="data")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title(f"fitted curves (seed {seeds[0]}), α = {ALPHA}")
    ax.legend(fontsize=8)

    res.plot(ax=axes[1])
    axes[1].set_title("objective gap J_t − p* along gradient descent")

    ax = axes[2]
    labels = [f"m={r['width']}\ns={r['seed']}" for r in res.runs]
    pos = np.arange(len(res.runs))
    tiny = 1e-16
    gap = np.array([max(r["gap_to_optimum"], tiny) for r in res.runs])
    cgap = np.array([max(r["certificate_gap"], tiny) for r in res.runs])
    ax.bar(pos - 0.2, gap, width=0.4, color="C0", label="J − p* (true suboptimality)")
    ax.bar(pos + 0.2, cgap, width=0.4, color="C1", label="J − LB (certificate gap)")
    for p, r in zip(pos, res.runs):
        ax.text(p, cgap[p] * 2.0, "✓" if r["certified_optimal"] else "✗", ha="center",
                color="green" if r["certified_optimal"] else "red", fontsize=12)
    ax.set_yscale("log")
    ax.set_xticks(pos)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_title("certificates: ✓ certified optimal (rel. gap ≤ 1e-6)")
    ax.legend(fontsize=8, loc="lower left")
    fig.suptitle("Two-layer ReLU nets on 1-D data: gradient descent vs the global optimum "
                 "of the convex program")
    fig.tight_layout()
    save_figure(fig, out_dir, "one_d_regression.png")
    return 0

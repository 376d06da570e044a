"""The hyperplane arrangement of 2-D data: exact cells against sampled Gaussian gates.

Each sample ``x_i`` splits the space of a hidden neuron's weights ``u`` by the hyperplane
``x_i^T u = 0`` (or ``x_i^T u + b = 0`` with a bias); the cells are the activation
patterns ``1[X u > 0]`` that index the blocks of the convex program (docs/mathematics.rst §2). The
demo
enumerates them exactly, compares the count with Cover's formula, and shows how many a
sample of Gaussian gates finds: thin cells are hit with probability equal to their solid
angle, so sampling misses some — and a convex program or certificate over sampled
patterns is then only a restriction, not a proof.
"""

from __future__ import annotations

from math import comb
from pathlib import Path

import numpy as np

from ._common import Stopwatch, pyplot, save_figure

__all__ = ["run"]

DESCRIPTION = "hyperplane arrangement of 2-D data: exact cells vs sampled Gaussian gates"


def _cover(n: int, r: int) -> int:
    """``C(n, r) = 2 sum_{k < r} binom(n - 1, k)`` (docs/mathematics.rst §2.2)."""
    return 2 * sum(comb(n - 1, k) for k in range(r))


def run(out_dir: Path, fast: bool = False) -> int:
    """Run the demo: print the counts and write ``arrangement_2d.png``.

    Parameters
    ----------
    out_dir : Path
    fast : bool, default=False
        Fewer samples for the coverage curve.

    Returns
    -------
    int
        Exit code ``0``.
    """
    from ..arrangements import count_patterns, enumerate_patterns, sample_patterns

    n_samples = 7
    n_gates = 12
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n_samples, 2))
    print(f"Data: {n_samples} Gaussian points in the plane (seed 3).")
    clock = Stopwatch()
    exact = enumerate_patterns(X, bias=False)
    exact_b = enumerate_patterns(X, bias=True)
    print(f"\nNo hidden bias: {exact.n_patterns} cells (exact enumeration); Cover's formula "
          f"C(n, 2) = 2n = {_cover(n_samples, 2)}; count_patterns = "
          f"{count_patterns(X, bias=False)}.")
    print(f"Hidden bias ([X, 1], rank 3): {exact_b.n_patterns} cells; Cover's formula "
          f"C(n, 3) = {_cover(n_samples, 3)}; count_patterns = "
          f"{count_patterns(X, bias=True)}.")

    sampled = sample_patterns(X, n_gates, random_state=0, bias=False)
    sampled_b = sample_patterns(X, n_gates, random_state=0, bias=True)
    print(f"\n{n_gates} Gaussian gates find {sampled.n_patterns} of {exact.n_patterns} cells "
          f"without bias and {sampled_b.n_patterns} of {exact_b.n_patterns} with a bias.")

    # coverage curve: distinct cells found against the number of gates
    n_max = 2000 if fast else 100000
    sizes = np.unique(np.logspace(0, np.log10(n_max), 25).astype(int))
    big = sample_patterns(X, n_max, random_state=1, bias=True)
    masks = exact_b.masks.T  # (P, n)
    code = {m.tobytes(): j for j, m in enumerate(masks)}
    gates = np.random.default_rng(1).standard_normal((3, n_max))
    hit = (exact_b.augment(X) @ gates > 0).T  # (n_max, n)
    cell = np.array([code[h.tobytes()] for h in hit])
    found = [np.unique(cell[:k]).size for k in sizes]
    freq = np.bincount(cell, minlength=exact_b.n_patterns) / n_max
    first = next((int(k) for k, f in zip(sizes, found) if f == exact_b.n_patterns), None)
    print(f"Coverage with a bias: {big.n_patterns} of {exact_b.n_patterns} cells after "
          f"{n_max} gates" + (f" (all found by {first} gates)." if first else "."))
    counts = np.bincount(cell, minlength=exact_b.n_patterns)
    print(f"Hit frequencies (solid-angle fractions) range from {freq.min():.2e} to "
          f"{freq.max():.3f}: the thinnest cell was hit {counts.min()} time(s) in "
          f"{n_max} gates.")
    print(f"Computed in {clock}.")

    plt = pyplot()
    from ..plotting import plot_arrangement

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    plot_arrangement(X, bias=False, patterns=exact, sampled=sampled, ax=axes[0])
    axes[0].set_title(f"no bias: {exact.n_patterns} cells; {n_gates} sampled gates (×) "
                      f"find {sampled.n_patterns}", fontsize=10)
    plot_arrangement(X, bias=True, patterns=exact_b, sampled=sampled_b, ax=axes[1])
    axes[1].set_title(f"with bias, slice b = 1: {exact_b.n_patterns} cells in all; "
                      f"{n_gates} gates find {sampled_b.n_patterns}", fontsize=10)
    ax = axes[2]
    ax.semilogx(sizes, found, "o-", ms=3, label="cells found by sampled gates")
    ax.axhline(exact_b.n_patterns, color="k", ls="--",
               label=f"exact count {exact_b.n_patterns} = C({n_samples}, 3)")
    ax.set_xlabel("number of Gaussian gates")
    ax.set_ylabel("distinct activation patterns")
    ax.set_title("sampling finds the thin cells last (with bias)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, out_dir, "arrangement_2d.png")
    return 0

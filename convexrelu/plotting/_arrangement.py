"""The hyperplane arrangement of 2-D data, drawn in the plane of the gate ``u``."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_arrangement"]


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib, which is not installed; "
            "install it with `pip install convexrelu[plot]`."
        ) from None
    return plt


def _pattern_index(patterns, masks: np.ndarray) -> np.ndarray:
    """Index in ``patterns`` of each row of ``masks`` (k, n) bool; -1 when absent."""
    keys = np.packbits(masks, axis=1, bitorder="little")
    width = keys.shape[1]
    void = np.dtype((np.void, width))
    table = {bytes(row): j for j, row in enumerate(patterns.packed)}
    uniq, inv = np.unique(np.ascontiguousarray(keys).view(void)[:, 0], return_inverse=True)
    idx = np.array([table.get(bytes(u), -1) for u in uniq], dtype=np.int64)
    return idx[inv.ravel()]


def _auto_extent(X: np.ndarray, offset: float) -> float:
    """Half-width of a square window showing the vertices of the affine line arrangement."""
    nz = np.any(X != 0, axis=1)
    Xn = X[nz]
    if len(Xn) == 0:
        return 1.0
    # foot of each line x^T u + offset = 0 nearest the origin
    feet = np.abs(offset) / np.linalg.norm(Xn, axis=1)
    pts = [feet]
    if len(Xn) >= 2:
        i, j = np.triu_indices(len(Xn), k=1)
        if len(i) > 200_000:  # subsample pairs for large data
            pick = np.random.default_rng(0).choice(len(i), 200_000, replace=False)
            i, j = i[pick], j[pick]
        A = np.stack([Xn[i], Xn[j]], axis=1)                  # (K, 2, 2)
        det = np.linalg.det(A)
        ok = np.abs(det) > 1e-12 * np.linalg.norm(Xn[i], axis=1) * np.linalg.norm(Xn[j], axis=1)
        if ok.any():
            V = np.linalg.solve(A[ok], np.full((int(ok.sum()), 2, 1), -float(offset)))[:, :, 0]
            pts.append(np.max(np.abs(V), axis=1))
    r = np.concatenate(pts)
    # a robust window: near-parallel lines meet far away and would squash the picture
    half = float(np.quantile(r, 0.95)) if len(r) > 20 else float(r.max())
    return 1.15 * half if half > 0 else 1.0


def plot_arrangement(
    X,
    *,
    bias: bool = False,
    patterns=None,
    sampled=None,
    ax=None,
    show_gates: bool = True,
    offset: float = 1.0,
    extent: float | None = None,
    resolution: int = 400,
    cmap: str = "tab20",
):
    """Draw the cells (activation patterns) of the arrangement of 2-D data.

    Each sample ``x_i`` defines a line in the plane of the gate ``u = (u_1, u_2)`` of a
    hidden neuron; the cells between the lines are the activation patterns
    ``1[X_aug g > 0]``. Each cell is filled with its own colour (cells are told apart
    by classifying a fine grid of ``u`` by pattern) and marked with its gate.

    - ``bias=False``: the lines through the origin ``{u : x_i^T u = 0}``; the cells are
      the sectors between them, all of which meet the window ``[-1, 1]^2``. A gate is
      drawn at radius 0.8 along its direction (cells are cones, so it stays inside).
    - ``bias=True``: the gates are ``g = (u, b)`` and the arrangement lives in
      :math:`\\mathbb R^3`. The picture is the **slice** ``b = offset`` (default
      ``b = 1``): the affine lines ``{u : x_i^T u + offset = 0}``. Every cell is an open
      cone, so it meets the slice ``b = +1``, the slice ``b = -1``, or both; draw both
      (``offset=1`` and ``offset=-1``) to see every cell. A gate is drawn at
      ``g[:2] * offset / g[2]`` when ``g[2]`` has the sign of ``offset``. The window is
      chosen to hold 95% of the vertices of the slice; a cell lying wholly outside it
      is not visible (the title says how many cells are).

    Parameters
    ----------
    X : array-like of shape (n_samples, 2)
    bias : bool, default=False
        Arrangement of ``[X, 1]`` (neurons with a hidden bias), drawn in a slice.
    patterns : ActivationPatterns or None, default=None
        The cells to colour; ``None`` enumerates them exactly with
        :func:`convexrelu.enumerate_patterns`. Grid points whose pattern is not in this
        set (possible when it is sampled) are left white.
    sampled : ActivationPatterns or None, default=None
        A sampled set (e.g. from :func:`convexrelu.sample_patterns`) on the same data:
        its gates are overlaid with ``x`` markers and the cells it missed are greyed
        out, so one sees which (thin) cells sampling did not find.
    ax : matplotlib Axes or None, default=None
        Where to draw; ``None`` uses ``plt.gca()``.
    show_gates : bool, default=True
        Mark the gate of each cell (dots) and the sampled gates (crosses).
    offset : float, default=1.0
        With ``bias=True``, the value of ``b`` of the slice drawn (nonzero).
    extent : float or None, default=None
        Half-width of the square window; ``None`` chooses it from the data.
    resolution : int, default=400
        Grid points per side used to colour the cells.
    cmap : str, default="tab20"
        A qualitative matplotlib colormap; cell ``j`` gets colour ``j mod cmap.N``.

    Returns
    -------
    ax : matplotlib Axes

    References
    ----------
    M. Pilanci and T. Ergen, "Neural networks are convex regularizers", ICML 2020.
    """
    from .._validation import augment, check_data_matrix
    from ..arrangements import enumerate_patterns

    X = check_data_matrix(X)
    if X.shape[1] != 2:
        raise ValueError(
            f"plot_arrangement draws 2-D data; X has {X.shape[1]} features. Project the "
            "data to two features first (e.g. with sklearn.decomposition.PCA(2))."
        )
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False; got {bias!r}.")
    bias = bool(bias)
    if not np.isfinite(offset) or offset == 0:
        raise ValueError(f"offset must be a nonzero finite number (the slice b = offset); "
                         f"got {offset!r}.")
    for name, pats in (("patterns", patterns), ("sampled", sampled)):
        if pats is None:
            continue
        if pats.bias != bias:
            raise ValueError(f"{name} were computed with bias={pats.bias} but bias={bias} "
                             f"was asked for; pass bias={pats.bias} or recompute {name}.")
        pats.check_data(X)
    resolution = int(resolution)
    if resolution < 2:
        raise ValueError(f"resolution must be an int >= 2; got {resolution}.")

    plt = _import_pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    if ax is None:
        ax = plt.gca()
    if patterns is None:
        patterns = enumerate_patterns(X, bias=bias)
    Xa = augment(X, bias)
    b = float(offset) if bias else 0.0
    if extent is None:
        extent = _auto_extent(X, b) if bias else 1.0
    extent = float(extent)

    # classify a grid of u by pattern
    t = np.linspace(-extent, extent, resolution)
    U1, U2 = np.meshgrid(t, t)
    grid = np.column_stack([U1.ravel(), U2.ravel()])
    if bias:
        grid = np.column_stack([grid, np.full(len(grid), b)])
    zero = ~np.any(Xa != 0, axis=1)
    idx = np.empty(len(grid), dtype=np.int64)
    chunk = max(1, 4_000_000 // max(Xa.shape[0], 1))
    for s in range(0, len(grid), chunk):
        m = grid[s:s + chunk] @ Xa.T > 0
        m[:, zero] = False
        idx[s:s + chunk] = _pattern_index(patterns, m)
    idx = idx.reshape(U1.shape)

    base = plt.get_cmap(cmap)
    n_col = getattr(base, "N", 20)
    colours = base(np.arange(min(n_col, 256)) % n_col)
    img = np.where(idx >= 0, idx % len(colours), -1).astype(float)
    img = np.ma.masked_less(img, 0)
    ax.imshow(img, origin="lower", extent=(-extent, extent, -extent, extent),
              cmap=ListedColormap(colours), vmin=-0.5, vmax=len(colours) - 0.5,
              interpolation="nearest", alpha=0.55, zorder=0)
    visible = np.unique(idx[idx >= 0])

    handles = []
    if sampled is not None:
        found = set(bytes(r) for r in sampled.packed)
        missed = np.array([bytes(r) not in found for r in patterns.packed], dtype=bool)
        grey = np.ma.masked_where(~((idx >= 0) & missed[np.maximum(idx, 0)]),
                                  np.ones(idx.shape))
        ax.imshow(grey, origin="lower", extent=(-extent, extent, -extent, extent),
                  cmap=ListedColormap(["0.55"]), vmin=0, vmax=1, interpolation="nearest",
                  alpha=0.85, zorder=1)
        n_vis_missed = int(np.sum(missed[visible]))
        handles.append(Patch(facecolor="0.55", label=f"missed by sampling "
                             f"({int(missed.sum())} of {patterns.n_patterns})"))

    # the lines x_i^T u + b = 0
    lw = 1.0 if X.shape[0] <= 30 else 0.5
    for x in X:
        nrm2 = float(x @ x)
        if nrm2 == 0:
            continue
        foot = -b * x / nrm2
        ax.axline(tuple(foot), tuple(foot + np.array([-x[1], x[0]])), color="k",
                  linewidth=lw, alpha=0.8, zorder=2)

    def _gate_points(G):
        G = np.asarray(G, dtype=float)
        if not bias:
            P = G / np.linalg.norm(G, axis=0, keepdims=True)
            return 0.8 * extent * P.T
        ok = G[2] * b > 0
        P = (G[:2, ok] * (b / G[2, ok])).T
        inside = np.all(np.abs(P) <= extent, axis=1)
        return P[inside]

    if show_gates:
        P = _gate_points(patterns.gates)
        label = "gate of a cell" + ("" if patterns.exact else " (given set)")
        handles.append(ax.scatter(P[:, 0], P[:, 1], s=14, c="k", marker="o", zorder=3,
                                  label=label))
        if sampled is not None:
            S = _gate_points(sampled.gates)
            handles.append(ax.scatter(S[:, 0], S[:, 1], s=30, c="crimson", marker="x",
                                      linewidths=1.2, zorder=4, label="sampled gate"))

    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("$u_1$")
    ax.set_ylabel("$u_2$")
    kind = "exact" if patterns.exact else "sampled"
    if bias:
        title = (f"slice b = {b:g}: {len(visible)} of {patterns.n_patterns} cells "
                 f"({kind}) visible")
    else:
        title = f"{patterns.n_patterns} cells ({kind}) of {X.shape[0]} lines through 0"
    if sampled is not None:
        title += f"\nsampling found {sampled.n_patterns} of {patterns.n_patterns}"
        if bias:
            title += f"; {n_vis_missed} missed cells visible"
    ax.set_title(title, fontsize=10)
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
    return ax

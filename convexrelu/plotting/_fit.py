"""Plot of a fitted network's prediction function over one or two features."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_fit"]


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib; install it with "
                          "`pip install convexrelu[plot]`.") from exc
    return plt


def plot_fit(model, X, y, *, ax=None, feature_names=None, show_kinks: bool = True,
             resolution: int = 200, title: str | None = None):
    """Plot the prediction function of a network (or fitted estimator) and the data.

    One feature: the fitted curve over the data range with the data points and the
    kinks (``x = -b_j / w_j``) of the neurons. Two features: a colour map of the
    predictions with the data points on top, coloured by target on the same scale, and
    each neuron's kink line ``w_j^T x + b_j = 0``.

    Parameters
    ----------
    model : ReLUNet or fitted estimator
        Anything with ``predict``; a ``network_`` attribute is used for the kinks.
    X : array-like of shape (n_samples, 1 or 2)
    y : array-like of shape (n_samples,)
    ax : matplotlib Axes, optional
        Created when ``None``.
    feature_names : sequence of str, optional
    show_kinks : bool, default=True
    resolution : int, default=200
        Grid points per axis.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    plt = _import_pyplot()
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if X.ndim != 2 or X.shape[1] not in (1, 2):
        raise ValueError(f"plot_fit shows one or two features; got X of shape {X.shape}.")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    net = getattr(model, "network_", model)
    names = list(feature_names) if feature_names is not None else [
        f"x{j}" for j in range(X.shape[1])]
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.08 * np.maximum(hi - lo, 1e-12)
    lo, hi = lo - pad, hi + pad
    W1 = getattr(net, "W1", np.zeros((0, X.shape[1])))
    b1 = getattr(net, "b1", np.zeros(W1.shape[0]))
    if X.shape[1] == 1:
        grid = np.linspace(lo[0], hi[0], resolution)[:, None]
        ax.plot(grid[:, 0], np.ravel(model.predict(grid)), color="C1", lw=2, label="fit")
        ax.scatter(X[:, 0], y, s=18, color="C0", label="data", zorder=3)
        if show_kinks:
            for w, b in zip(W1[:, 0], b1):
                if w != 0 and lo[0] <= -b / w <= hi[0]:
                    ax.axvline(-b / w, color="0.6", lw=0.6, ls=":")
        ax.set_xlabel(names[0])
        ax.set_ylabel("y")
        ax.legend(loc="best")
    else:
        gx = np.linspace(lo[0], hi[0], resolution)
        gy = np.linspace(lo[1], hi[1], resolution)
        GX, GY = np.meshgrid(gx, gy)
        Z = np.ravel(model.predict(np.column_stack([GX.ravel(), GY.ravel()]))).reshape(GX.shape)
        # colour scale of the data (extrapolation far from the data would swamp it)
        fitted = np.ravel(model.predict(X))
        vmin = float(min(fitted.min(), y.min()))
        vmax = float(max(fitted.max(), y.max()))
        mesh = ax.pcolormesh(GX, GY, Z, cmap="viridis", vmin=vmin, vmax=vmax, shading="auto")
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="viridis", vmin=vmin, vmax=vmax, s=22,
                   edgecolors="white", linewidths=0.7, zorder=3)
        if show_kinks:
            for w, b in zip(W1, b1):
                if abs(w[1]) > abs(w[0]):
                    ax.plot(gx, -(w[0] * gx + b) / w[1], color="white", lw=0.8, alpha=0.7)
                elif w[0] != 0:
                    ax.plot(-(w[1] * gy + b) / w[0], gy, color="white", lw=0.8, alpha=0.7)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.figure.colorbar(mesh, ax=ax, label="prediction", extend="both")
    if title:
        ax.set_title(title)
    return ax

"""Gradient descent at several widths and seeds against the convex program's optimum."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ._trainer import TrainingHistory, train_gradient_flow

__all__ = ["compare_gradient_flow", "ComparisonResult"]


@dataclass(repr=False)
class ComparisonResult:
    """Outcome of :func:`compare_gradient_flow`.

    Attributes
    ----------
    optimum : float
        Objective of the convex program's solution (scikit-learn normalisation); the
        global optimum over all widths when ``exact_patterns`` is True, otherwise only an
        upper bound on it (the optimum over the patterns used).
    exact_patterns : bool
    optimum_network : ReLUNet
        The convex solution mapped to a network.
    runs : list of dict
        One per (width, seed): ``width``, ``seed``, ``objective`` (final ``J``),
        ``gap_to_optimum`` (``objective - optimum``), ``relative_gap_to_optimum``,
        ``lower_bound``, ``certificate_gap``, ``certified_optimal``, ``dual_ratio``
        (``nan`` / None when certificates are off or the run diverged; a diverged run has
        ``objective = inf``), ``n_neurons`` (active neurons of the final net),
        ``pattern_changes`` (total over neurons), ``status``.
    histories : list of TrainingHistory
        Same order as ``runs``.
    alpha : float
    loss : str
    """

    optimum: float
    exact_patterns: bool
    optimum_network: object
    runs: list = field(default_factory=list)
    histories: list = field(default_factory=list)
    alpha: float = 0.0
    loss: str = "squared"

    def table(self, *, digits: int = 3) -> str:
        """The runs as a markdown table (one row per width and seed).

        Parameters
        ----------
        digits : int, default=3
            Significant digits of the floats.

        Returns
        -------
        str
        """
        def f(v):
            if v is None:
                return "—"
            if isinstance(v, (bool, np.bool_)):
                return "yes" if v else "no"
            if isinstance(v, (int, np.integer)):
                return str(int(v))
            v = float(v)
            return "—" if not math.isfinite(v) else f"{v:.{digits}g}"

        kind = "global optimum" if self.exact_patterns else "optimum over sampled patterns"
        head = (f"convex {kind}: {self.optimum:.{max(digits, 6)}g} "
                f"(loss={self.loss}, alpha={self.alpha:g})\n\n")
        cols = ["width", "seed", "objective", "gap_to_optimum", "relative_gap_to_optimum",
                "lower_bound", "certificate_gap", "certified_optimal", "n_neurons"]
        titles = ["width", "seed", "final J", "J − p*", "(J − p*)/p*", "certified LB",
                  "certificate gap", "certified optimal", "active neurons"]
        lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
        for r in self.runs:
            lines.append("| " + " | ".join(f(r.get(k)) for k in cols) + " |")
        return head + "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return (f"ComparisonResult(optimum={self.optimum:.6g}, "
                f"exact_patterns={self.exact_patterns}, runs={len(self.runs)})")

    def __str__(self) -> str:
        return self.table()

    def plot(self, ax=None):
        """``J_t - optimum`` against the step, log scale, one curve per run.

        Parameters
        ----------
        ax : matplotlib Axes, optional

        Returns
        -------
        ax : matplotlib Axes
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("plotting needs matplotlib; install it with "
                              "`pip install convexrelu[plot]`.") from exc
        if ax is None:
            _, ax = plt.subplots()
        widths = sorted({r["width"] for r in self.runs})
        cmap = plt.get_cmap("viridis")
        labelled = set()
        for r, h in zip(self.runs, self.histories):
            k = widths.index(r["width"])
            color = cmap(k / max(1, len(widths) - 1))
            gap = np.maximum(h.objective - self.optimum, np.finfo(float).tiny)
            label = None if r["width"] in labelled else f"m = {r['width']}"
            labelled.add(r["width"])
            ax.semilogy(h.steps, gap, color=color, alpha=0.8, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel("objective − convex optimum")
        ax.set_title("gradient descent vs the convex optimum")
        ax.legend()
        return ax


def compare_gradient_flow(
    X,
    y,
    *,
    alpha: float,
    loss: str = "squared",
    widths: Sequence[int] = (2, 10, 50),
    seeds: Sequence[int] = (0, 1, 2),
    n_steps: int = 20000,
    lr: float = 1e-2,
    patterns="exact",
    bias: bool = True,
    penalize_bias: bool = False,
    certify: bool = True,
    estimator_params: Optional[dict] = None,
    certify_params: Optional[dict] = None,
    progress: Optional[bool] = None,
    **train_params,
) -> ComparisonResult:
    """Train gradient descent at several widths and seeds and compare with the global optimum.

    Solves the convex program (:class:`convexrelu.ConvexReLURegressor`, or
    :class:`convexrelu.ConvexReLUClassifier` for a binary loss) for the value
    :math:`p^*` of

    .. math::

        \\min_\\theta\\ J(\\theta) = \\frac1n\\Big[\\sum_i\\ell(\\hat y_i; y_i)
        + \\frac\\alpha2\\big(\\|W_1\\|_F^2 + \\|W_2\\|_F^2\\big)\\Big]

    over all widths, trains :func:`train_gradient_flow` on the same ``J`` for every
    width and seed, and certifies each final network with :func:`convexrelu.certify`
    (lower bound ``LB <= p* <= J``). With exact patterns every run satisfies
    ``J >= p*`` up to the solver tolerance; narrow nets typically stop above it.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    alpha : float
        Weight decay (scikit-learn normalisation); must be ``> 0`` for the convex program
        to have a minimiser.
    loss : {"squared", "logistic", "hinge"}, default="squared"
    widths : sequence of int, default=(2, 10, 50)
    seeds : sequence of int, default=(0, 1, 2)
    n_steps : int, default=20000
    lr : float, default=1e-2
    patterns : {"exact", "auto"}, int or ActivationPatterns, default="exact"
        Passed to the estimator; ``"exact"`` enumerates every activation pattern.
    bias : bool, default=True
        Hidden-layer bias (the output bias is always free, as in the convex program).
    penalize_bias : bool, default=False
        Penalise the hidden bias with ``W1`` (Pilanci–Ergen convention), everywhere.
    certify : bool, default=True
        Certify every final network (the expensive part for large pattern counts).
    estimator_params, certify_params : dict, optional
        Extra keyword arguments of the estimator (default ``tol=1e-9``) and of
        :func:`convexrelu.certify`.
    progress : bool, optional
        Progress bar over the runs (default: when there are more than 3 runs and stderr is
        a terminal; never in a log file).
    **train_params
        Passed to :func:`train_gradient_flow` (``init_scale``, ``record_every``, ...).

    Returns
    -------
    ComparisonResult

    Raises
    ------
    ValueError
        If ``alpha <= 0``, ``widths`` or ``seeds`` is empty, or the loss is unknown.
    """
    from ..losses import get_loss

    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a float in the range (0.0, inf) for the convex "
                         f"program to have a minimiser; got {alpha!r}.")
    widths = [int(w) for w in widths]
    seeds = list(seeds)
    if not widths or not seeds:
        raise ValueError(f"widths and seeds must be non-empty; got widths={widths}, "
                         f"seeds={seeds}.")
    loss_name = get_loss(loss).name
    est_params = dict(estimator_params or {})
    est_params.setdefault("patterns", patterns)
    est_params.setdefault("bias", bias)
    est_params.setdefault("penalize_bias", penalize_bias)
    est_params.setdefault("tol", 1e-9)  # the comparison needs p* more accurately than GD
    if loss_name == "squared":
        from ..estimators import ConvexReLURegressor

        est = ConvexReLURegressor(alpha=alpha, **est_params).fit(X, y)
    else:
        from ..estimators import ConvexReLUClassifier

        est = ConvexReLUClassifier(alpha=alpha, loss=loss_name, **est_params).fit(X, y)
    optimum = float(est.objective_)
    exact = bool(getattr(est, "exact_patterns_", False))

    if certify:
        from ..certificates import certify as certify_fn
    runs, histories = [], []
    pairs = [(w, s) for w in widths for s in seeds]
    from .._progress import progress_bar

    bar = progress_bar(total=len(pairs), desc="compare_gradient_flow", unit="run",
                       progress=progress, large=len(pairs) > 3)
    try:
        for width, seed in pairs:
            h: TrainingHistory = train_gradient_flow(
                X, y, n_neurons=width, alpha=alpha, loss=loss_name, lr=lr, n_steps=n_steps,
                bias=bias, output_bias=True, penalize_bias=penalize_bias, random_state=seed,
                progress=False, **train_params)
            diverged = h.status == "diverged" or h.network is None
            obj = (float("inf") if diverged else
                   h.network.objective(X, y, alpha, loss=loss_name, penalize_bias=penalize_bias))
            row = {"width": width, "seed": seed, "objective": obj,
                   "gap_to_optimum": obj - optimum,
                   "relative_gap_to_optimum": (obj - optimum) / max(abs(optimum), 1e-300),
                   "lower_bound": float("nan"), "certificate_gap": float("nan"),
                   "certified_optimal": None, "dual_ratio": float("nan"),
                   "n_neurons": 0 if diverged else int(np.count_nonzero(
                       (np.linalg.norm(h.network.W1, axis=1) > 1e-8)
                       & (np.linalg.norm(h.network.W2, axis=0) > 1e-8))),
                   "pattern_changes": int(h.pattern_changes.sum()),
                   "status": h.status}
            if certify and not diverged:  # a diverged net has no meaningful certificate
                kw = {"penalize_bias": penalize_bias, **(certify_params or {})}
                cert = certify_fn(h.network, X, y, alpha=alpha, loss=loss_name, **kw)
                row.update(lower_bound=float(cert.lower_bound),
                           certificate_gap=float(cert.gap),
                           certified_optimal=bool(cert.optimal),
                           dual_ratio=float(getattr(cert, "dual_ratio", np.nan)))
            runs.append(row)
            histories.append(h)
            if bar is not None:
                bar.update(1)
            if h.interrupted:
                break
    except KeyboardInterrupt:
        pass
    finally:
        if bar is not None:
            bar.close()
    return ComparisonResult(optimum=optimum, exact_patterns=exact,
                            optimum_network=est.network_, runs=runs, histories=histories,
                            alpha=alpha, loss=loss_name)

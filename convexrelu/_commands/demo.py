"""``convexrelu demo [NAME]``: short self-contained demonstrations.

Demos are registered in :data:`DEMOS` as ``name -> (description, function)``, where
``function(out_dir: Path, fast: bool) -> int`` runs the demo, prints its results, writes
its files under ``out_dir`` and returns an exit code. ``convexrelu demo`` without a name
runs ``"fit"``; ``convexrelu demo --list`` prints one name per line followed by a short
description.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "run a demonstration (default: a globally optimal fit on the diabetes data)"

DEFAULT_DEMO = "fit"


def _demo_fit(out_dir: Path, fast: bool) -> int:
    """Globally optimal ReLU net on two diabetes features vs. scikit-learn's MLPRegressor."""
    import warnings

    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    from ..arrangements import enumerate_patterns
    from ..estimators import ConvexReLURegressor
    from ..network import ReLUNet

    n_samples = 24 if fast else 40
    alpha = 0.1
    seeds = range(2 if fast else 3)
    data = load_diabetes()
    cols = [data.feature_names.index("bmi"), data.feature_names.index("s5")]
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(data.data.shape[0], n_samples, replace=False))
    X = data.data[idx][:, cols]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = data.target[idx]
    y = (y - y.mean()) / y.std()
    print(f"Data: load_diabetes, features bmi and s5 (standardised), {n_samples} of "
          f"{data.data.shape[0]} rows (seed 0), target standardised.")
    print(f"Objective (scikit-learn's MLPRegressor loss_): J = (1/n)[ (1/2)||f(X) - y||^2 + "
          f"(alpha/2)(||W1||^2 + ||W2||^2) ],  alpha = {alpha}")

    t0 = time.perf_counter()
    pats = enumerate_patterns(X, bias=True)
    t_enum = time.perf_counter() - t0
    print(f"\nActivation patterns of [X, 1]: {pats.n_patterns} (exact enumeration, "
          f"{t_enum:.2f} s)")

    t0 = time.perf_counter()
    reg = ConvexReLURegressor(alpha=alpha, patterns=pats, tol=1e-8).fit(X, y)
    t_fit = time.perf_counter() - t0
    j_net = reg.network_.objective(X, y, alpha)
    print(f"Convex program (cvxpy/Clarabel): {2 * pats.n_patterns} blocks, solved and "
          f"certified in {t_fit:.1f} s")
    print(f"  global optimum p* / n  = {reg.objective_:.8f}")
    print(f"  network objective J    = {j_net:.8f}   (mapped back, pruned)")
    print(f"  hidden neurons         = {reg.n_neurons_}")

    width = max(100, 2 * n_samples)
    print(f"\nMLPRegressor(hidden_layer_sizes=({width},), activation='relu', solver='lbfgs', "
          f"alpha={alpha}), {len(seeds)} seeds:")
    best = np.inf
    for seed in seeds:
        mlp = MLPRegressor(hidden_layer_sizes=(width,), activation="relu", solver="lbfgs",
                           alpha=alpha, max_iter=2000, tol=1e-10, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(X, y)
        j = ReLUNet.from_sklearn(mlp).objective(X, y, alpha)
        best = min(best, j)
        print(f"  seed {seed}: loss_ = {mlp.loss_:.8f}   J(final weights) = {j:.8f}   "
              f"above optimum by {j - reg.objective_:+.2e}")
    print(f"  best MLP objective {best:.8f} vs global optimum {reg.objective_:.8f} "
          f"(difference {best - reg.objective_:+.2e}; it can never be negative beyond "
          "solver tolerance)")

    cert = reg.certificate_   # computed by fit over the same exact patterns
    print("\nCertificate of the fitted network (dual bound over all patterns):")
    print("  " + cert.summary().replace("\n", "\n  "))

    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..plotting._fit import plot_fit
    except ImportError:
        print("\nmatplotlib is not installed: no figure (pip install convexrelu[plot]).")
    else:
        fig, ax = plt.subplots(figsize=(6.4, 5.2))
        plot_fit(reg, X, y, ax=ax, feature_names=["bmi (standardised)", "s5 (standardised)"],
                 title=f"Globally optimal ReLU net: {reg.n_neurons_} neurons, "
                       f"J = {reg.objective_:.4f}")
        path = out_dir / "fit.png"
        tmp = out_dir / ".fit.png.tmp"
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
        plt.close(fig)
        tmp.replace(path)
        print(f"\nFigure written to {path}")
    return 0


def _teaching_demo(name: str):
    """``function(out_dir, fast)`` running :mod:`convexrelu.demos` module ``name``."""
    def func(out_dir: Path, fast: bool) -> int:
        from .. import demos

        return demos.get(name).run(out_dir, fast=fast)

    func.__name__ = f"_demo_{name}"
    return func


def _teaching_demos() -> dict:
    from .. import demos

    return {name: (demos.get(name).DESCRIPTION, _teaching_demo(name)) for name in demos.NAMES}


#: demo name -> (one-line description, function(out_dir, fast) -> exit code)
DEMOS = {
    "fit": ("globally optimal ReLU fit of two diabetes features, compared with "
            "MLPRegressor(lbfgs)", _demo_fit),
    **_teaching_demos(),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", default=DEFAULT_DEMO, metavar="NAME",
                        help=f"which demo to run (default: {DEFAULT_DEMO}; see --list)")
    parser.add_argument("--list", action="store_true", help="list the demos and exit")
    parser.add_argument("--out", metavar="DIR", default="convexrelu-demo",
                        help="folder for the demo's files (default: ./convexrelu-demo)")
    parser.add_argument("--fast", action="store_true",
                        help="a smaller, quicker version of the demo")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    if args.list:
        width = max(len(name) for name in DEMOS)
        for name, (desc, _) in DEMOS.items():
            print(f"{name:<{width}}  {desc}")
        return 0
    if args.name not in DEMOS:
        raise UsageError(f"unknown demo {args.name!r}; available: {sorted(DEMOS)} "
                         "(see `convexrelu demo --list`).")
    _, func = DEMOS[args.name]
    return int(func(Path(args.out), bool(args.fast)) or 0)

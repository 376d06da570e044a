"""Grown patterns against ten times as many sampled ones (issue: real data with defaults).

When a data set has too many activation patterns to list, the default fit samples a few
hundred of them and grows the set by a local search for violating neurons. This
benchmark checks what the growth buys: for each data set it fits the default estimator
(one process, one BLAS thread), then solves the same program (same ``alpha_``, same
loss and bias) over **ten times as many** sampled patterns (drawn as the estimators draw
them: the all-active gate first, then Gaussian gates) with the certified ``"relu"``
solver, and reports both objectives. The growth is worth it when the default fit's
objective is no higher than the optimum over the larger sample; that optimum is bracketed
by the larger solve's objective and its certified gap (``objective - gap`` is a lower
bound on it).

Binary classification and single-output regression only (one program each).

``python -m benchmarks growth [--datasets diabetes breast_cancer] [--factor 10]
[--time-limit 600] [--out PATH]``
"""

from __future__ import annotations

import argparse
import time
import warnings

__all__ = ["main", "compare"]

DEFAULT_DATASETS = ("diabetes", "breast_cancer")


def compare(name: str, factor: int = 10, time_limit: float = 600.0,
            random_state: int = 0, **params) -> dict:
    """The default fit's objective and the optimum over ``factor`` times its sample
    (``params``: estimator parameters other than the defaults, for small tests)."""
    import numpy as np

    from convexrelu import ConvexProgram, ConvexReLUClassifier, ConvexReLURegressor
    from convexrelu.arrangements import sample_patterns
    from convexrelu.solvers import get_solver

    from .bench_realdata import load

    Xtr, _, ytr, _, task = load(name)
    est = (ConvexReLURegressor if task == "regression" else ConvexReLUClassifier)(
        random_state=random_state, certify=False, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        est.fit(Xtr, ytr)
        fit_time = time.perf_counter() - t
    if est.exact_patterns_:
        raise ValueError(f"{name}: the default fit listed every pattern; nothing to compare")
    n_sample = est.patterns_.n_patterns
    if task == "regression":
        y = np.asarray(ytr, float)
    else:  # the estimator's own encoding of a binary problem: +-1 targets, one logit
        if len(est.classes_) != 2:
            raise ValueError(f"{name}: {len(est.classes_)} classes; binary only")
        y = np.where(np.asarray(ytr) == est.classes_[1], 1.0, -1.0)
    # sampled as the estimators sample (the all-active gate first, with a bias)
    big = sample_patterns(Xtr, factor * n_sample, random_state=random_state + 1,
                          bias=est.bias, linear=True)
    prog = ConvexProgram(Xtr, y, big, loss=est.loss, alpha=est.alpha_, bias=est.bias,
                         penalize_bias=est.penalize_bias)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        sol = get_solver("relu", tol=1e-6, time_limit=time_limit).solve(prog)
        big_time = time.perf_counter() - t
    # one scale: objective_ is the fitted network's sklearn objective (mean loss plus
    # alpha / (2n) times the squared weights), which is the convex program's objective
    # per sample at a balanced network (docs/mathematics.rst §8.3)
    ours = float(est.objective_)
    return dict(dataset=name, alpha=float(est.alpha_), n_sample=int(n_sample),
                n_big=int(big.n_patterns), ours=ours, fit_time=fit_time,
                big_upper=float(sol.objective), big_lower=float(sol.objective - sol.gap),
                big_status=sol.status, big_time=big_time)


def table(rows) -> str:
    out = ["| data set | alpha | default fit: sampled → grown, objective, time | "
           "program over 10× sampled: objective [certified lower bound], time | "
           "default ≤ larger-sample optimum |",
           "|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['dataset']} | | {r['error']} | | |")
            continue
        met = ("yes (below its lower bound)" if r["ours"] <= r["big_lower"] else
               "yes" if r["ours"] <= r["big_upper"] else "no")
        out.append(
            f"| {r['dataset']} | {r['alpha']:.4g} | {r['n_sample']} patterns, "
            f"{r['ours']:.6g}, {r['fit_time']:.1f} s | {r['n_big']} patterns, "
            f"{r['big_upper']:.6g} [{r['big_lower']:.6g}], {r['big_time']:.1f} s "
            f"({r['big_status']}) | {met} |")
    return "\n".join(out)


def main(argv=None, command=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--time-limit", type=float, default=600.0,
                    help="seconds for the larger-sample solve")
    ap.add_argument("--out", default=None, help="also write the markdown here (atomically)")
    args = ap.parse_args(argv)
    rows = []
    for name in args.datasets:
        try:
            rows.append(compare(name, args.factor, args.time_limit))
        except ValueError as exc:
            rows.append({"dataset": name, "error": str(exc)})
    text = (f"`{command or 'python -m benchmarks growth'}`\n\n" + table(rows) + "\n")
    print(text)
    if args.out:
        from convexrelu._io import atomic_write_text

        atomic_write_text(args.out, text)
    return 0

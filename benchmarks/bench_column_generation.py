"""Benchmark: exact global optimum by column generation (docs/mathematics.rst §8.5) in 2-D with
bias.

Data: ``n`` points uniform in ``[-1, 1]^2``, ``y = sin(3 x1) cos(2 x2) + 0.1 noise``,
squared loss, free hidden bias, free output bias; ``alpha`` is scikit-learn's
(docs/mathematics.rst §8.1). The arrangement of ``[X, 1]`` has ``n^2 - n + 2`` patterns (999,002 at
``n = 1000``).

For each ``n`` of ``--n-small`` the script times the full cvxpy/Clarabel program over all
patterns and :func:`convexrelu.solvers.column_generation` (same problem), and reports
both objectives and the time ratio. Then it times column generation alone at
``--n-large`` (the full program does not fit in memory there: the masks alone are
``n * P`` bytes, ~1 GB, and the cvxpy problem far more), with the certified relative
gap over all patterns.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_column_generation.py
[--n-small 30 60] [--n-large 1000] [--alpha 1.0] [--inner auto]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, 2))
    y = np.sin(3 * X[:, 0]) * np.cos(2 * X[:, 1]) + 0.1 * rng.standard_normal(n)
    return X, y


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-small", type=int, nargs="*", default=[30, 60])
    parser.add_argument("--n-large", type=int, default=1000)
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="scikit-learn alpha (sum-form beta = alpha)")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inner", default="auto",
                        help="inner solver of column generation ('auto': compressed "
                             "facet-row Clarabel for the squared loss; 'cvxpy')")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)

    from convexrelu.arrangements import count_patterns, enumerate_patterns
    from convexrelu.program import ConvexProgram
    from convexrelu.solvers import CvxpySolver, column_generation

    print("| n | patterns | full cvxpy (s) | column generation (s) | ratio | objective "
          "(full) | objective (CG) | CG rel. gap | CG rounds | neurons |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.n_small:
        X, y = _data(n, args.seed)
        pats = enumerate_patterns(X, bias=True)
        prog = ConvexProgram(X, y, pats, loss="squared", alpha=args.alpha, bias=True)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = CvxpySolver(tol=1e-10).solve(prog)
        t_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        sol, used = column_generation(X, y, alpha=args.alpha, tol=args.tol,
                                      max_iter=args.max_iter, inner=args.inner,
                                      verbose=args.verbose)
        t_cg = time.perf_counter() - t0
        nn = int(np.sum(np.any(sol.V != 0, axis=1)) + np.sum(np.any(sol.W != 0, axis=1)))
        print(f"| {n} | {pats.n_patterns} | {t_full:.2f} | {t_cg:.2f} | "
              f"{t_full / t_cg:.2f} | {ref.objective:.10g} | {sol.objective:.10g} | "
              f"{sol.info['rel_gap']:.2e} | {sol.info['rounds']} | {nn} |", flush=True)
    if args.n_large:
        n = args.n_large
        X, y = _data(n, args.seed)
        P = count_patterns(X, bias=True)
        t0 = time.perf_counter()
        sol, used = column_generation(X, y, alpha=args.alpha, tol=args.tol,
                                      max_iter=args.max_iter, inner=args.inner,
                                      verbose=args.verbose)
        t_cg = time.perf_counter() - t0
        nn = int(np.sum(np.any(sol.V != 0, axis=1)) + np.sum(np.any(sol.W != 0, axis=1)))
        print(f"| {n} | {P} | (not run: too large) | {t_cg:.2f} | - | - | "
              f"{sol.objective:.10g} | {sol.info['rel_gap']:.2e} | {sol.info['rounds']} | "
              f"{nn} |", flush=True)
        print(f"\nn={n}: status {sol.status}, working set {used.n_patterns} patterns, "
              f"time in rounds: {[round(h[1], 1) for h in sol.info['history']]}")
        print(f"n={n}: {sol.info['rel_gap']:.2e} certified relative gap over all {P} "
              f"patterns ({sol.info['certificate']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

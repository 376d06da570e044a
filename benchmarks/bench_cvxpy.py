"""Time the cvxpy fit of the convex program on load_diabetes (standardised, hidden bias).

Usage: python benchmarks/bench_cvxpy.py [--patterns 100 500 2000] [--alpha 1e-3]

Prints a markdown table: sampled pattern count, build time (cvxpy problem construction),
first solve (cvxpy compile + Clarabel), DPP re-solve with a new alpha, objective.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> int:
    from sklearn.datasets import load_diabetes

    from convexrelu.arrangements import sample_patterns
    from convexrelu.program import ConvexProgram
    from convexrelu.solvers import CvxpySolver

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--alpha", type=float, default=1e-3)
    parser.add_argument("--tol", type=float, default=1e-8)
    args = parser.parse_args(argv)

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    n, d = X.shape
    print(f"load_diabetes: n={n}, d={d} (+bias), alpha={args.alpha}, Clarabel tol={args.tol}\n")
    print("| sampled gates | patterns | build (s) | first solve (s) | DPP re-solve (s) "
          "| objective | status |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for P in args.patterns:
        pats = sample_patterns(X, P, random_state=0, bias=True)
        prog = ConvexProgram(X, y, pats, loss="squared", alpha=args.alpha, bias=True)
        solver = CvxpySolver(tol=args.tol)
        t0 = time.perf_counter()
        built, _ = solver._get(prog)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        sol = solver.solve(prog)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        solver.solve(prog.with_alpha(2 * args.alpha))
        again = time.perf_counter() - t0
        print(f"| {P} | {pats.n_patterns} | {build:.2f} | {first:.2f} | {again:.2f} | "
              f"{sol.objective:.6f} | {sol.status} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

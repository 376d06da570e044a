"""Restricted-program benchmark: the working-set loop's inner solvers on the same programs
(``python -m benchmarks restricted``).

A restricted program is the ReLU program over ``k`` sampled patterns of a data set (X
standardised, 25 % held out as in ``python -m benchmarks realdata``, a free hidden bias,
``alpha = 0.03 alpha_max``: the default estimators' share up to 1,500 training
samples). Every solver gets the same program in the same process, one after the other,
and the table reports its time, its objective's excess over the best objective of the
row (relative), and its status:

* ``socp``: the second-order-cone interior point
  (:class:`convexrelu.solvers._restricted_socp.RestrictedSocpSolver`, squared loss);
* ``clarabel``: the compressed Clarabel solve
  (:class:`convexrelu.solvers._cg_inner.CompressedReluSolver`, squared loss);
* ``barrier``: the dense barrier interior point
  (:class:`convexrelu.solvers._restricted_barrier.RestrictedBarrierSolver`);
* ``cvxpy``: cvxpy + Clarabel on the generic formulation (``--cvxpy``; slow).

Times include no certificate (the working-set loop certifies over all patterns itself).
Run with one BLAS thread (``OMP_NUM_THREADS=1``) to compare like with like.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

_SOLVERS = ("socp", "clarabel", "barrier", "cvxpy")


def _program(name: str, k: int, seed: int):
    import numpy as np

    from benchmarks.bench_realdata import load
    from convexrelu.arrangements import sample_patterns
    from convexrelu.certificates._gap import dual_point
    from convexrelu.program import ConvexProgram

    Xtr, _, ytr, _, task = load(name)
    loss = "squared" if task == "regression" else "logistic"
    y = ytr if task == "regression" else np.where(ytr == np.unique(ytr)[0], 1.0, -1.0)
    pats = sample_patterns(Xtr, k, random_state=seed, bias=True)
    prog = ConvexProgram(Xtr, y, pats, loss=loss, alpha=1.0, bias=True,
                         penalize_bias=False)
    lam, _ = dual_point(prog.loss, np.zeros(len(y)), prog.y, output_bias=True)
    amax = float(np.max(np.linalg.norm((prog.masks * lam[:, None]).T
                                       @ prog.X_aug[:, :-1], axis=1)))
    return ConvexProgram(Xtr, y, pats, loss=loss, alpha=0.03 * amax, bias=True,
                         penalize_bias=False)


def _solver(name: str):
    from convexrelu.solvers import get_solver
    from convexrelu.solvers._cg_inner import CompressedReluSolver
    from convexrelu.solvers._restricted_barrier import RestrictedBarrierSolver
    from convexrelu.solvers._restricted_socp import RestrictedSocpSolver

    s = {"socp": RestrictedSocpSolver, "clarabel": CompressedReluSolver,
         "barrier": RestrictedBarrierSolver}.get(name)
    s = s() if s is not None else get_solver("cvxpy", tol=1e-10)
    s._certify_solution = False
    return s


def main(argv=None, command: str = "python -m benchmarks restricted") -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="diabetes",
                        help="a data set of `python -m benchmarks realdata`")
    parser.add_argument("--patterns", type=int, nargs="+", default=[20, 42, 70])
    parser.add_argument("--solvers", nargs="+", choices=_SOLVERS,
                        default=["socp", "clarabel"])
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs per solver (alternating); the table keeps the fastest")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rows = []
    for k in args.patterns:
        prog = _program(args.dataset, k, args.seed)
        out = {}
        for _ in range(args.repeat):
            for name in args.solvers:
                solver = _solver(name)
                t = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        sol = solver.solve(prog)
                    res = (time.perf_counter() - t, float(sol.objective), sol.status,
                           int(sol.n_iter))
                except Exception as exc:  # a failing solver is a row, not a crash
                    res = (time.perf_counter() - t, float("nan"), f"error: {exc}", 0)
                if name not in out or res[0] < out[name][0]:
                    out[name] = res
        best = min((r[1] for r in out.values() if r[1] == r[1]), default=float("nan"))
        for name, (el, obj, status, it) in out.items():
            rows.append((k, prog.d_aug, prog.n_samples, name, el, (obj - best) / abs(best),
                         status, it))
        print(f"k={k} done", file=sys.stderr, flush=True)

    print(f"`{command}`\n")
    print(f"{args.dataset}: ReLU program over k sampled patterns, alpha = 0.03 alpha_max, "
          "free hidden bias\n")
    print("| k | d_aug | n | solver | time | objective excess (rel.) | status | iterations |")
    print("|---:|---:|---:|---|---:|---:|---|---:|")
    for k, d, n, name, el, ex, status, it in rows:
        print(f"| {k} | {d} | {n} | {name} | {el:.2f} s | {ex:.1e} | {status} | {it} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: first-order solvers vs cvxpy + Clarabel on the same convex programs.

Problem (scnn's regression example): ``load_diabetes`` standardised, hidden bias
(penalised, the Pilanci–Ergen / scnn convention), ``P = 500`` sampled gates
(``random_state=0``), squared loss, scnn's ``lam = 1e-3``. scnn minimises
``1/(2n) ||y_hat - y||^2 + lam * sum ||w_i||``; times ``n`` this is the sum-reduced program
with ``beta = alpha = lam * n``. No output bias (as scnn).

Compared, each on the identical program:

* gated ReLU: ``solve_gated_fista`` vs ``CvxpySolver`` (Clarabel);
* ReLU: ``solve_relu_al`` (augmented Lagrangian + FISTA), ``solve_relu_gated_polish``
  (gated FISTA -> cvxpy on the used patterns -> column generation) vs ``CvxpySolver``.

Every result is certified with the same duality gap (``convexrelu.solvers._dual_gap``);
reported: time to a relative gap ``<= tol`` (default 1e-6), objective, gap, time ratio.
BLAS threads are pinned to one (set before numpy is imported). A warm-up solve of a tiny
problem pays import / compile costs first.

Usage::

    python benchmarks/bench_solvers.py [--tol 1e-6] [--n-patterns 500] [--out table.md]
"""

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402


def _problem(n_patterns: int, lam: float, formulation: str):
    from sklearn.datasets import load_diabetes

    from convexrelu.arrangements import sample_patterns
    from convexrelu.program import ConvexProgram

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    pats = sample_patterns(X, n_patterns, random_state=0, bias=True)
    return ConvexProgram(X, y, pats, loss="squared", alpha=lam * X.shape[0], bias=True,
                         penalize_bias=True, fit_output_bias=False, formulation=formulation)


def _certify(prog, V, W, c0):
    """Certified sum-form (primal, gap) of a point of ``prog`` over its patterns."""
    from convexrelu.solvers._dual_gap import gated_duality_gap, relu_multiplier_gap
    from convexrelu.solvers._relu_admm import repair_feasibility

    Xa, M = prog.X_aug, prog.masks.astype(float)
    if prog.formulation == "gated_relu":
        dg = gated_duality_gap(prog.loss, Xa, M, prog.y, V, c0, prog.alpha,
                               output_bias=prog.fit_output_bias)
        return dg.primal, dg.gap
    signs = np.hstack([M, M]) > 0
    B, _ = repair_feasibility(Xa, signs, np.vstack([V, W]),
                              np.hstack([prog.patterns.gates] * 2))
    S = np.hstack([M, -M])
    dg = relu_multiplier_gap(prog.loss, Xa, S, signs, prog.y, B, c0, prog.alpha,
                             np.zeros_like(S), output_bias=prog.fit_output_bias,
                             max_refine=S.shape[1])
    return dg.primal, dg.gap


def _milestones(history):
    """``{rel_gap_target: seconds}`` from a solver history ``(it, s, primal, gap)``."""
    out = {}
    for target in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
        hit = [h[1] for h in history if h[3] <= target * abs(h[2])]
        out[f"{target:g}"] = f"{hit[0]:.2f}s" if hit else "not reached"
    return out


def _run_cvxpy(prog, tol):
    from convexrelu.solvers import CvxpySolver

    t = time.perf_counter()
    sol = CvxpySolver(tol=tol, max_iter=1000).solve(prog)
    elapsed = time.perf_counter() - t
    primal, gap = _certify(prog, sol.V, sol.W, float(np.ravel(sol.output_bias)[0]))
    return elapsed, primal, gap, sol.n_iter


def main(argv=None) -> int:
    from convexrelu.solvers._fista import solve_gated_fista
    from convexrelu.solvers._relu_admm import solve_relu_al, solve_relu_gated_polish

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--n-patterns", type=int, default=500)
    ap.add_argument("--lam", type=float, default=1e-3)
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    ap.add_argument("--skip-relu-al", action="store_true")
    ap.add_argument("--max-iter", type=int, default=5000,
                    help="iteration cap of the first-order solvers")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")

    # warm-up (imports, cvxpy canonicalisation code paths)
    small = _problem(20, args.lam, "relu")
    _run_cvxpy(small, 1e-6)

    rows = []
    gp = _problem(args.n_patterns, args.lam, "gated_relu")
    print(gp)
    Xa, M = gp.X_aug, gp.masks
    t = time.perf_counter()
    r = solve_gated_fista("squared", Xa, M, gp.y, gp.alpha, output_bias=False, tol=args.tol,
                          max_iter=args.max_iter)
    print("FISTA time to relative gap:", _milestones(r.history))
    tf = time.perf_counter() - t
    tc, pc, gc, itc = _run_cvxpy(gp, 1e-8)
    rows.append(("gated", "FISTA", tf, r.objective, r.gap / abs(r.objective), r.n_iter))
    rows.append(("gated", "cvxpy+Clarabel (tol 1e-8)", tc, pc, gc / abs(pc), itc))

    rp = _problem(args.n_patterns, args.lam, "relu")
    tc, pc, gc, itc = _run_cvxpy(rp, 1e-8)
    rows.append(("relu", "cvxpy+Clarabel (tol 1e-8)", tc, pc, gc / abs(pc), itc))
    t = time.perf_counter()
    r = solve_relu_gated_polish(rp, tol=args.tol)
    tpol = time.perf_counter() - t
    rows.append(("relu", f"gated FISTA + cvxpy polish ({r.info['n_kept']} patterns, "
                 f"{r.info['rounds']} rounds)", tpol, r.objective,
                 r.gap / abs(r.objective), r.n_iter))
    if not args.skip_relu_al:
        t = time.perf_counter()
        r = solve_relu_al("squared", rp.X_aug, rp.masks, rp.y, rp.alpha, output_bias=False,
                          gates=rp.patterns.gates, tol=args.tol, max_iter=args.max_iter)
        print("AL time to relative gap:", _milestones(r.history))
        ta = time.perf_counter() - t
        rows.append(("relu", "augmented Lagrangian + FISTA", ta, r.objective,
                     r.gap / abs(r.objective), r.n_iter))

    ref = {f: next(row[2] for row in rows if row[0] == f and row[1].startswith("cvxpy"))
           for f in ("gated", "relu")}
    lines = [f"diabetes (n=442, d=10 + bias), P={args.n_patterns} sampled gates, "
             f"alpha = {args.lam} * n = {gp.alpha:g}, target relative gap {args.tol:g}, "
             "1 BLAS thread", "",
             "| problem | solver | time (s) | objective (sum form) | certified rel. gap | "
             "iterations | time / cvxpy |",
             "|---|---|---|---|---|---|---|"]
    for f, name, tt, obj, rg, it in rows:
        lines.append(f"| {f} | {name} | {tt:.2f} | {obj:.10f} | {rg:.1e} | {it} | "
                     f"{tt / ref[f]:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: proven ``M(lambda)`` by branch and bound, beyond exact enumeration.

For Gaussian data with a free hidden bias (rank = n_features + 1) and ``lambda`` the
centred residual of a scikit-learn ``MLPRegressor`` (20 ReLU units, lbfgs, ``alpha=1``:
the sum-form dual point of docs/mathematics.rst §4.5, §8.1), each row runs
:func:`convexrelu.certificates._bnb.dual_constraint_bnb` to a relative gap of ``1e-6``
with a wall-clock cap (default 60 s) and reports the time, the nodes, the node rate,
upper/lower and the final gap, once per node solver given (``--node-solver``; the
conic-program fallbacks of the warm-started solvers are counted). Rows small enough for
exact enumeration also run ``dual_constraint(enumerate_patterns(...))`` in the same
process and report the ratio of the two times and the agreement of the values. The last
row is the diabetes data set (rank 11, far beyond enumeration): where the proven bound
stands after the cap.

Timings: wall clock (``time.perf_counter``) and this process's CPU time
(``time.process_time``), which is less sensitive to other jobs on a shared machine;
BLAS is pinned to one thread unless the environment sets it.

Usage::

    python -m benchmarks bnb [--quick] [--time-limit 60] [--cpu] [--out results.md]
        [--node-solver ldp,clarabel]   # each row once per node solver, in one process
        [--n-jobs 1,2]                 # each row once per number of worker processes
    python -m benchmarks bnb --cg 6:300 [--time-limit 60] [--n-jobs 2]
        # column generation, cap 4x+60 s
"""

from __future__ import annotations

import os
import sys

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

#: (rank, n_samples) of the main table (Gaussian data, free bias: n_features = rank - 1)
CASES = [(5, 2000), (6, 1000), (7, 300), (8, 150)]
#: (rank, n_samples) small enough to compare with exact enumeration
ENUM_CASES = [(4, 40), (5, 20)]
QUICK_CASES = [(4, 40), (5, 60)]
QUICK_ENUM = [(4, 30)]


def _residual(X, y, seed):
    from sklearn.neural_network import MLPRegressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPRegressor(hidden_layer_sizes=(20,), alpha=1.0, solver="lbfgs", max_iter=500,
                           random_state=seed).fit(X, y)
    lam = y - mlp.predict(X)
    return lam - lam.mean()


def _gaussian(rank, n, seed):
    rng = np.random.default_rng(seed)
    d = rank - 1
    X = rng.standard_normal((n, d))
    y = np.sin(X @ rng.standard_normal(d)) + 0.1 * rng.standard_normal(n)
    return X, _residual(X, y, seed)


def _run_bnb(X, lam, time_limit, seed, cpu=False, node_solver="ldp", n_jobs=1):
    from convexrelu.certificates import _bnb

    old = _bnb._NODE_SOLVER
    _bnb._NODE_SOLVER = node_solver
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        # with workers the cap is the wall clock (this process's CPU time misses theirs)
        res = _bnb.dual_constraint_bnb(X, lam, bias=True, penalize_bias=False, tol=1e-6,
                                       time_limit=time_limit, random_state=seed,
                                       timer=time.process_time if cpu and n_jobs == 1
                                       else None, n_jobs=n_jobs)
        res.time = time.perf_counter() - t0  # the wall column, whichever clock capped it
    finally:
        _bnb._NODE_SOLVER = old
    return res, time.process_time() - c0


def _gaussian_xy(rank, n, seed):
    rng = np.random.default_rng(seed)
    d = rank - 1
    X = rng.standard_normal((n, d))
    y = np.sin(X @ rng.standard_normal(d)) + 0.1 * rng.standard_normal(n)
    return X, y


def _run_cg(rank, n, alpha, seed, time_limit, n_jobs=1):
    """The exact global optimum by column generation priced by branch and bound."""
    from convexrelu.solvers._column_generation import column_generation

    X, y = _gaussian_xy(rank, n, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol, pats = column_generation(X, y, alpha=alpha, bias=True, penalize_bias=False,
                                      patterns="bnb", tol=1e-6, max_iter=500,
                                      time_limit=time_limit, random_state=seed,
                                      n_jobs=n_jobs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    pr = sol.info.get("pricing", {})
    return (f"| column generation, Gaussian, alpha={alpha:g} | {rank} | {n} | {n_jobs} | "
            f"{wall:.1f} | {cpu:.1f} | {sol.info['rounds']} rounds, {pats.n_patterns} patterns | "
            f"{pr.get('time', 0.0):.1f} s in {pr.get('calls', 0)} pricing calls | "
            f"{sol.info['rel_gap']:.1e} | {sol.status} |")


def _run_enum(X, lam):
    from convexrelu.arrangements import enumerate_patterns
    from convexrelu.certificates import dual_constraint

    t0, c0 = time.perf_counter(), time.process_time()
    pats = enumerate_patterns(X, bias=True, progress=False)
    val = dual_constraint(pats, X, lam, penalize_bias=False)
    return val.value, pats.n_patterns, time.perf_counter() - t0, time.process_time() - c0


def _row(label, rank, n, res, cpu, enum=None):
    gap = (res.upper - res.lower) / res.lower if res.lower > 0 else float("inf")
    workers = res.info.get("n_workers", 1)
    # ms of node work per node: this process's CPU time alone, or the wall clock times
    # the workers once they run (this process's CPU time then misses theirs)
    rate = 1e3 * (cpu if workers == 1 else res.time * workers) / max(res.n_nodes, 1)
    ratio = res.upper / res.lower if res.lower > 0 else float("inf")
    cells = [label, str(rank), str(n), str(workers), res.info.get("node_solver", "-"),
             str(res.info.get("conic_fallbacks", 0)), f"{res.time:.1f}", f"{cpu:.1f}",
             str(res.n_nodes), f"{rate:.2f}", f"{res.upper:.9g}", f"{ratio:.4f}", f"{gap:.1e}",
             "yes" if res.closed else "no"]
    if enum is None:
        cells += ["-", "-", "-"]
    else:
        M, P, te, ce = enum
        agree = abs(res.upper - M) <= 1e-6 * M and res.upper >= M - 1e-9 * M
        cells += [f"{P:,}", f"{te:.1f} ({ce:.1f})",
                  f"{ce / max(cpu, 1e-9):.1f}x {'ok' if agree else 'MISMATCH'}"]
    return "| " + " | ".join(cells) + " |"


def main(argv=None, command: str | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small rows only (seconds)")
    parser.add_argument("--time-limit", type=float, default=60.0,
                        help="wall-clock cap per row in seconds (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-diabetes", action="store_true")
    parser.add_argument("--rows", type=str, default=None,
                        help="comma-separated rank:n pairs replacing the main rows")
    parser.add_argument("--out", type=str, default=None, help="also write the table here")
    parser.add_argument("--cg", type=str, default=None, metavar="RANK:N",
                        help="only the column-generation row: the exact global optimum "
                        "priced by branch and bound (e.g. 6:300)")
    parser.add_argument("--alpha", type=float, default=1.0, help="alpha of the --cg row")
    parser.add_argument("--node-solver", type=str, default="ldp",
                        help="comma-separated node solvers, each row run once per solver in "
                        "this process: ldp (default), active_set, clarabel")
    parser.add_argument("--cpu", action="store_true",
                        help="cap each branch and bound by this process's CPU time instead "
                        "of the wall clock (a shared, loaded machine; rows with workers "
                        "keep the wall clock)")
    parser.add_argument("--n-jobs", type=str, default="1",
                        help="comma-separated numbers of worker processes bounding the "
                        "nodes, each row run once per value (default 1: this process)")
    args = parser.parse_args(argv)
    if command is None:
        command = " ".join(["python benchmarks/bench_bnb.py", *map(shlex.quote, argv or [])])
    if args.cg:
        rank, n = (int(v) for v in args.cg.split(":"))
        head = ["## Exact global optimum: column generation priced by branch and bound", "",
                f"- command: `{command}`",
                f"- load average {os.getloadavg()[0]:.1f} at start, OMP_NUM_THREADS="
                f"{os.environ.get('OMP_NUM_THREADS')}", "",
                "| problem | rank | n | workers | wall s | cpu s (this process) | loop | "
                "pricing | certified rel. gap | status |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        print("\n".join(head), flush=True)
        row = _run_cg(rank, n, args.alpha, args.seed, 4 * args.time_limit + 60,
                      int(args.n_jobs.split(",")[0]))
        print(row, flush=True)
        if args.out:
            with open(args.out, "w") as fh:
                fh.write("\n".join(head + [row]) + "\n")
        return 0
    cases = QUICK_CASES if args.quick else CASES
    enum_cases = QUICK_ENUM if args.quick else ENUM_CASES
    if args.rows:
        cases = [tuple(int(v) for v in r.split(":")) for r in args.rows.split(",")]
    lines = [
        "## Proven M(lambda) by cone-envelope branch and bound (tol 1e-6)",
        "",
        f"- command: `{command}`",
        f"- python {platform.python_version()}, {platform.machine()}, nproc "
        f"{os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        f"- Gaussian data + free hidden bias; lambda = centred MLPRegressor residual; cap "
        f"{args.time_limit:g} s {'CPU' if args.cpu else 'wall'} per row (wall with workers); "
        "ms/node: CPU time per node (with workers: wall time x workers); enum/bnb in CPU "
        "time; cpu s: this process only",
        "",
        "| data | rank | n | workers | node solver | Clarabel fallbacks | wall s | cpu s | nodes "
        "| ms/node | upper | upper/lower | rel. gap | closed | patterns | enum wall s (cpu) "
        "| enum/bnb |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    solvers = [v.strip() for v in args.node_solver.split(",") if v.strip()]
    bad = [v for v in solvers if v not in ("ldp", "active_set", "clarabel")]
    if bad:
        parser.error(f"--node-solver: unknown {bad}; choose from ldp, active_set, clarabel")
    try:
        jobs = [int(v) for v in args.n_jobs.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--n-jobs: comma-separated ints expected; got {args.n_jobs!r}")
    runs = [(sv, nj) for nj in jobs for sv in solvers]
    rows = []
    for rank, n in enum_cases:
        X, lam = _gaussian(rank, n, args.seed)
        enum = _run_enum(X, lam)
        for sv, nj in runs:
            res, cpu = _run_bnb(X, lam, args.time_limit, args.seed, args.cpu, sv, nj)
            rows.append(_row("Gaussian", rank, n, res, cpu, enum))
            print(rows[-1], flush=True)
    for rank, n in cases:
        X, lam = _gaussian(rank, n, args.seed)
        for sv, nj in runs:
            res, cpu = _run_bnb(X, lam, args.time_limit, args.seed, args.cpu, sv, nj)
            rows.append(_row("Gaussian", rank, n, res, cpu))
            print(rows[-1], flush=True)
    if not args.no_diabetes and not args.quick:
        from sklearn.datasets import load_diabetes

        Xd, yd = load_diabetes(return_X_y=True)
        lam = _residual(Xd, yd, args.seed)
        for sv, nj in runs:
            res, cpu = _run_bnb(Xd, lam, args.time_limit, args.seed, args.cpu, sv, nj)
            rows.append(_row("diabetes", Xd.shape[1] + 1, Xd.shape[0], res, cpu))
            print(rows[-1], flush=True)
            print(f"\ndiabetes ({sv}, {nj} workers) after {res.time:.0f} s: lower "
                  f"{res.lower:.9g} <= M <= "
                  f"upper {res.upper:.9g} (upper/lower = {res.upper / res.lower:.4f})",
                  flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines + rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Scale benchmark: the ReLU and gated ReLU programs as ``n`` grows (``python -m benchmarks
scale``).

Every row runs in its own Python child process (one BLAS thread, a wall-clock cap and an
address-space cap, :func:`benchmarks.bench_realdata.run_child`) and reports the solve time
measured in the child, the child's peak RSS, the objective (scikit-learn normalisation,
``J / n``) and the certified relative duality gap over the program's patterns.

Rows:

* ``load_breast_cancer`` (standardised, all 569 rows), logistic loss, ``alpha=1e-3``,
  P=500 sampled patterns, the ReLU program by ``solver="relu"`` (goal <= 10 s);
* ``load_digits`` one-vs-rest (10 binary logistic programs over shared P=100 patterns,
  ``alpha=1e-3``), the ReLU programs to gap 1e-6 (goal <= 60 s, all ten): in one process
  (the classes' working-set loops in lock-step), and the classes spread over two worker
  processes (``joblib``, one BLAS thread each; each class its own loop, as
  ``ConvexReLUClassifier(n_jobs=2)`` runs them; peak RSS: the largest process, not the
  total of the three);
* the same digits programs, **the interior point's floor**: each class's working-set loop
  run first (not timed), then only the restricted program over the patterns its solution
  uses, solved once from the restricted interior point's cold start at the loop's exact
  tolerance (1e-8) and certified over all the program's patterns: what the digits row
  would cost if the loop knew its final working sets at once (``--rows "known working
  sets"``; the loop's time and this row's together, about six minutes);
* ``make_regression(n, 20, noise=10)`` (X standardised, y centred and scaled) with P=100
  patterns at ``0.1 alpha_max``: gated ReLU (the gated solver's default: FISTA at these
  sizes; the dual barrier on the small "our regime" rows) and ReLU (``solver="relu"``, and its
  augmented Lagrangian forced, ``method="al"``) to gap 1e-6 at ``n = 1e4`` and ``1e5``,
  and both at ``n = 1e6`` (the gated one 3.4 GB peak RSS, it also ran under an 8 GB cap;
  the ReLU one about 18 minutes and 6.4 GB: run it with ``--time-limit 1500
  --memory-limit 12`` and the package's memory budget raised,
  ``CONVEXRELU_MEMORY_BUDGET=8192``, or its restricted programs go to the augmented
  Lagrangian, which does not converge there);
* ``make_classification(n, 20, random_state=0)`` (X standardised), logistic loss, P=100
  patterns at ``0.03 alpha_max`` (the classifiers' default share up to 1,500 training
  samples, and from 450,000; ``run_row``'s ``ratio``
  does not apply to these rows), the ReLU program by
  ``solver="relu"`` at ``n = 1e4`` and ``1e5``: with many more samples than Newton rows
  the restricted interior point sketches the loss's Hessian; the "formed Hessian" rows
  solve the same program with the Hessian formed at every step, as before the sketch
  (the sketch's speed-up is the ratio of the two rows);
* gated ReLU at ``n = 1e4`` and ``5e4``, d=20, P=100, ``0.1 alpha_max`` (no hidden bias,
  unit group penalties: adelie's regime), and on the solver benchmark's diabetes and
  breast cancer problems at P=500, scnn's ``lam = 1e-3`` (``alpha = lam n``, squared
  loss, many active groups: our regime), side by side with adelie
  (``adelie.matrix.convex_relu(gated=True)``, ``grpnet`` on a 10-point path ending at the
  same ``lambda = alpha / n``) and celer (``GroupLasso`` on the explicit ``n x (P d)``
  matrix); their objectives are evaluated by our program. adelie and celer are optional:
  a missing one gives a "not installed" row.

``--quick`` runs the same rows at tiny sizes (well under a minute). The table goes to
stdout and, with ``--out``, to a file written atomically (default under
``benchmarks/results/`` for a full run).
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

from benchmarks.bench_realdata import GB, MB, run_child  # noqa: E402

TARGET = "benchmarks.bench_scale:run_row"


# ------------------------------------------------------------------ data and programs
def _regression(n, d, seed=0):
    from sklearn.datasets import make_regression
    from sklearn.preprocessing import StandardScaler

    X, y = make_regression(n, d, noise=10, random_state=seed)
    X = StandardScaler().fit_transform(X)
    return X, (y - y.mean()) / y.std()


def _alpha_max(program):
    """Smallest alpha with the zero network optimal for the gated program (no hidden bias
    penalty difference: the bound over the penalised coordinates)."""
    import numpy as np

    from convexrelu.certificates._gap import dual_point

    lam, _ = dual_point(program.loss, np.zeros(program.n_samples), program.y,
                        output_bias=program.fit_output_bias)
    C = (program.masks * lam[:, None]).T @ program.regularizer.penalized(program.X_aug)
    return float(np.max(np.linalg.norm(C, axis=1)))


def _program(kind, n, P, d=20, bias=True, formulation="relu", ratio=0.1, seed=0):
    import numpy as np
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    from convexrelu.arrangements import sample_patterns
    from convexrelu.program import ConvexProgram

    if kind in ("diabetes_lam", "breast_cancer_lam"):
        # the solver benchmark's problem (scnn's lam = 1e-3: alpha = lam n, squared loss,
        # every coordinate penalised, no output bias; its P random gates)
        from benchmarks.bench_solvers import build, problems

        pb = problems(keys=[kind[:-len("_lam")]])[0]
        return build(pb.X, pb.y, pb.bias, P, formulation, lam=1e-3, seed=seed)
    if kind == "classification":
        from sklearn.datasets import make_classification

        X, y = make_classification(n, d, random_state=seed)
        X = StandardScaler().fit_transform(X)
        pats = sample_patterns(X, P, random_state=seed, bias=bias)
        prog = ConvexProgram(X, y.astype(float), pats, loss="logistic", alpha=1.0,
                             bias=bias, formulation=formulation)
        return [prog.with_alpha(ratio * _alpha_max(prog))]
    if kind == "regression":
        X, y = _regression(n, d, seed)
        pen = formulation == "gated_relu" and bias
        pats = sample_patterns(X, P, random_state=seed, bias=bias)
        prog = ConvexProgram(X, y, pats, loss="squared", alpha=1.0, bias=bias,
                             penalize_bias=pen, formulation=formulation)
        return [prog.with_alpha(ratio * _alpha_max(prog))]
    X, y = getattr(datasets, f"load_{kind}")(return_X_y=True)
    if n:
        X, y = X[:n], y[:n]
    X = StandardScaler().fit_transform(X)
    pats = sample_patterns(X, P, random_state=seed, bias=bias)
    classes = np.unique(y)
    cols = [classes[-1]] if classes.size == 2 else list(classes)
    return [ConvexProgram(X, (y == c).astype(float), pats, loss="logistic", alpha=1e-3,
                          bias=bias, formulation=formulation) for c in cols]


# ------------------------------------------------------------------ the rows (children)
def run_row(method, kind, n, P, d=20, bias=True, ratio=0.1, time_limit=None):
    """One row, in the child process: build the programs, solve, report (a dict)."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    if method == "relu_formed":  # the loss's Hessian formed at every step (no sketch)
        from convexrelu.solvers import _restricted_barrier as rb

        held = rb._SKETCH_MIN
        rb._SKETCH_MIN = float("inf")
        try:
            out = run_row("relu", kind, n, P, d, bias, ratio, time_limit)
        finally:
            rb._SKETCH_MIN = held
        out["method"] += ", formed Hessian"
        return out
    formulation = "gated_relu" if method in ("gated", "adelie", "celer") else "relu"
    if kind == "classification":
        ratio = 0.03
    progs = _program(kind, n, P, d=d, bias=bias, formulation=formulation, ratio=ratio)
    out = {"n": progs[0].n_samples, "d_aug": progs[0].d_aug, "P": progs[0].n_patterns,
           "programs": len(progs), "alpha": progs[0].alpha}
    t0 = time.perf_counter()
    objective, gaps, methods = 0.0, [], set()
    if method == "relu_jobs":
        # the one-vs-rest classes over two worker processes, each class's loop alone
        from joblib import Parallel, delayed

        # the row's time limit shared: each class gets what is left when it starts
        end = None if time_limit is None else time.time() + time_limit
        res = Parallel(n_jobs=2)(delayed(_solve_relu)(p, end) for p in progs)
        for obj, gap, meth, _ in res:
            objective += obj
            gaps.append(gap)
            methods.add(meth)
        out["worker_rss"] = max(r[3] for r in res)
        progs = []
    seconds = None  # the time the row reports, where it is not the whole of the above
    if method == "relu_known":
        seconds, objective, gaps, out["kept"] = _known_working_sets(progs, time_limit)
        methods.add("barrier, known working sets")
        progs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if method == "relu" and len(progs) > 1:
            # one-vs-rest: the classes' working-set loops in lock-step, every pricing of
            # the patterns one pass over the masks for all classes
            from convexrelu.solvers import get_solver

            solver = get_solver("relu", tol=1e-6, time_limit=time_limit)
            for sol in solver.solve_columns(progs):
                objective += sol.objective
                gaps.append(float(sol.info["rel_gap"]))
                methods.add(str(sol.info.get("method", method)))
            progs = []
        for prog in progs:
            if method in ("relu", "relu_al", "gated"):
                from convexrelu.solvers import get_solver

                if method == "gated":
                    solver = get_solver("fista", tol=1e-6)
                else:  # "relu": solver="auto"'s choice; "relu_al": the AL forced
                    solver = get_solver("relu", tol=1e-6, time_limit=time_limit,
                                        method="al" if method == "relu_al" else "auto")
                sol = solver.solve(prog)
                objective += sol.objective
                gaps.append(float(sol.info["rel_gap"]))
                methods.add(str(sol.info.get("method", method)))
            else:
                V, c0 = (_adelie if method == "adelie" else _celer)(prog)
                objective += prog.objective(V, None, c0)
                methods.add(method)
    out.update(seconds=time.perf_counter() - t0 if seconds is None else seconds,
               objective=objective,
               rel_gap=max(gaps) if gaps else float("nan"), method="/".join(sorted(methods)))
    if method in ("adelie", "celer"):
        from convexrelu.certificates._gap import duality_gap

        dg = duality_gap(progs[0], V, np.zeros_like(V), c0)
        out["rel_gap"] = float(dg.rel_gap)
    return out


def _known_working_sets(progs, time_limit=None):
    """The restricted interior point's floor on these programs: each program's working-set
    loop run first (not timed) for the patterns its solution uses, then the restricted
    program over those patterns solved once, from the interior point's cold start, at the
    tolerance the loop's exact restricted solves use (1e-8). ``(seconds of those solves,
    total objective, certified relative gaps over each program's patterns, patterns kept
    per program)``: what the working-set loop would cost if it knew its final working set
    at once."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    from convexrelu.certificates._gap import duality_gap
    from convexrelu.solvers import get_solver
    from convexrelu.solvers._restricted_barrier import RestrictedBarrierSolver

    seconds, objective, gaps, kept = 0.0, 0.0, [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for prog in progs:
            loop = get_solver("relu", tol=1e-6, time_limit=time_limit).solve(prog)
            keep = np.flatnonzero(np.any(loop.V != 0, axis=1) | np.any(loop.W != 0, axis=1))
            kept.append(int(keep.size))
            V, W = np.zeros_like(loop.V), np.zeros_like(loop.W)
            sol = loop  # (the zero network optimal: nothing to solve, the loop's bias)
            if keep.size:
                barrier = RestrictedBarrierSolver(tol=1e-8)
                # no certificate over the restricted program inside the timed solve: the
                # loop does not ask for one either where cvxpy could not re-solve it
                # (_AutoInner._solve_barrier); the certificate over all patterns follows
                barrier._certify_solution = False
                t = time.perf_counter()
                sol = barrier.solve(prog.restrict(keep))
                seconds += time.perf_counter() - t
                V[keep], W[keep] = sol.V, sol.W
            c0 = float(np.ravel(sol.output_bias)[0]) if prog.fit_output_bias else 0.0
            objective += prog.objective(V, W, c0)
            gaps.append(float(duality_gap(prog, V, W, c0).rel_gap))
    return seconds, objective, gaps, kept


def _solve_relu(prog, end):
    """One ReLU program to gap 1e-6 in a worker, by the wall-clock time ``end`` (or None):
    ``(objective, gap, method, peak RSS of the worker)``."""
    import resource
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from convexrelu.solvers import get_solver

    time_limit = None if end is None else max(end - time.time(), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = get_solver("relu", tol=1e-6, time_limit=time_limit).solve(prog)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return (sol.objective, float(sol.info["rel_gap"]), str(sol.info.get("method", "relu")),
            int(rss))


def _adelie(prog):
    import adelie as ad
    import numpy as np

    n, P, d = prog.n_samples, prog.n_patterns, prog.d_aug
    X = np.asfortranarray(prog.X_aug)
    mat = ad.matrix.convex_relu(X, np.asfortranarray(prog.masks), gated=True)
    lmda = prog.alpha / n  # adelie: (1/2n)||r||^2 + lambda sum ||b_g||
    lmax = _alpha_max(prog) / n
    state = ad.grpnet(mat, ad.glm.gaussian(prog.y), groups=np.arange(0, P * d, d),
                      penalty=np.ones(P), lmda_path=np.geomspace(lmax, lmda, 10), tol=1e-10,
                      intercept=prog.fit_output_bias, early_exit=False,
                      progress_bar=False, adev_tol=1.0)
    beta = np.asarray(state.betas[-1].todense()).ravel()
    c0 = float(state.intercepts[-1]) if prog.fit_output_bias else 0.0
    return beta.reshape(P, d), c0


def _celer(prog):
    from celer import GroupLasso

    n, P, d = prog.n_samples, prog.n_patterns, prog.d_aug
    Xe = (prog.masks[:, :, None] * prog.X_aug[:, None, :]).reshape(n, P * d)
    est = GroupLasso(groups=d, alpha=prog.alpha / n, tol=1e-10, max_iter=1000,
                     fit_intercept=prog.fit_output_bias).fit(Xe, prog.y)
    return est.coef_.reshape(P, d), float(est.intercept_)


# ------------------------------------------------------------------ the table
def rows_for(quick: bool):
    """``(label, method, kind, n, P, d, bias)`` of every row."""
    if quick:
        return [
            ("breast cancer, ReLU", "relu", "breast_cancer", 80, 10, 0, True),
            ("digits one-vs-rest, ReLU", "relu", "digits", 60, 4, 0, True),
            ("digits one-vs-rest, ReLU, 2 processes", "relu_jobs", "digits", 60, 4, 0, True),
            ("digits, ReLU over the known working sets", "relu_known", "digits", 60, 4, 0,
             True),
            ("make_regression, gated", "gated", "regression", 300, 10, 6, True),
            ("make_regression, ReLU", "relu", "regression", 300, 10, 6, True),
            ("make_regression, ReLU (n x 10)", "relu", "regression", 3000, 10, 6, True),
            ("make_regression, ReLU (n x 20)", "relu", "regression", 6000, 10, 6, True),
            ("make_regression, ReLU by the AL (n x 20)", "relu_al", "regression", 6000, 10, 6,
             True),
            ("make_classification, ReLU", "relu", "classification", 2000, 6, 4, True),
            ("make_classification, ReLU, formed Hessian", "relu_formed", "classification",
             2000, 6, 4, True),
            ("adelie regime: ours (gated)", "gated", "regression", 300, 10, 6, False),
            ("adelie regime: adelie", "adelie", "regression", 300, 10, 6, False),
            ("adelie regime: celer", "celer", "regression", 300, 10, 6, False),
            ("our regime, diabetes lam=1e-3: ours (gated)", "gated", "diabetes_lam", 0, 10, 0,
             True),
            ("our regime, diabetes lam=1e-3: adelie", "adelie", "diabetes_lam", 0, 10, 0, True),
            ("our regime, diabetes lam=1e-3: celer", "celer", "diabetes_lam", 0, 10, 0, True),
        ]
    return [
        ("breast cancer P=500, ReLU", "relu", "breast_cancer", 0, 500, 0, True),
        ("digits one-vs-rest P=100, ReLU", "relu", "digits", 0, 100, 0, True),
        ("digits one-vs-rest P=100, ReLU, 2 processes", "relu_jobs", "digits", 0, 100, 0,
         True),
        ("digits P=100, ReLU over the known working sets", "relu_known", "digits", 0, 100,
         0, True),
        ("make_regression n=1e4, gated", "gated", "regression", 10_000, 100, 20, True),
        ("make_regression n=1e4, ReLU", "relu", "regression", 10_000, 100, 20, True),
        ("make_regression n=1e4, ReLU by the AL", "relu_al", "regression", 10_000, 100, 20,
         True),
        ("make_regression n=1e5, gated", "gated", "regression", 100_000, 100, 20, True),
        ("make_regression n=1e5, ReLU", "relu", "regression", 100_000, 100, 20, True),
        ("make_regression n=1e6, gated", "gated", "regression", 1_000_000, 100, 20, True),
        ("make_regression n=1e6, ReLU", "relu", "regression", 1_000_000, 100, 20, True),
        ("make_classification n=1e4, ReLU", "relu", "classification", 10_000, 100, 20, True),
        ("make_classification n=1e4, ReLU, formed Hessian", "relu_formed", "classification",
         10_000, 100, 20, True),
        ("make_classification n=1e5, ReLU", "relu", "classification", 100_000, 100, 20,
         True),
        ("make_classification n=1e5, ReLU, formed Hessian", "relu_formed", "classification",
         100_000, 100, 20, True),
        ("adelie regime n=1e4: ours (gated)", "gated", "regression", 10_000, 100, 20, False),
        ("adelie regime n=1e4: adelie", "adelie", "regression", 10_000, 100, 20, False),
        ("adelie regime n=1e4: celer", "celer", "regression", 10_000, 100, 20, False),
        ("adelie regime n=5e4: ours (gated)", "gated", "regression", 50_000, 100, 20, False),
        ("adelie regime n=5e4: adelie", "adelie", "regression", 50_000, 100, 20, False),
        ("adelie regime n=5e4: celer", "celer", "regression", 50_000, 100, 20, False),
        ("our regime, diabetes P=500 lam=1e-3: ours (gated)", "gated", "diabetes_lam", 0,
         500, 0, True),
        ("our regime, diabetes P=500 lam=1e-3: adelie", "adelie", "diabetes_lam", 0, 500, 0,
         True),
        ("our regime, diabetes P=500 lam=1e-3: celer", "celer", "diabetes_lam", 0, 500, 0,
         True),
        ("our regime, breast cancer P=500 lam=1e-3: ours (gated)", "gated",
         "breast_cancer_lam", 0, 500, 0, True),
        ("our regime, breast cancer P=500 lam=1e-3: adelie", "adelie", "breast_cancer_lam",
         0, 500, 0, True),
        ("our regime, breast cancer P=500 lam=1e-3: celer", "celer", "breast_cancer_lam", 0,
         500, 0, True),
    ]


def _missing(method):
    import importlib.util

    need = {"adelie": "adelie", "celer": "celer"}.get(method)
    return need if need and importlib.util.find_spec(need) is None else None


def _fmt(x, spec):
    try:
        return format(float(x), spec)
    except (TypeError, ValueError):
        return "-"


def main(argv=None, command=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks scale", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (well under a minute)")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="seconds per row (default 600, quick 60)")
    ap.add_argument("--memory-limit", type=float, default=8.0, help="GB of address space")
    ap.add_argument("--out", default=None, help="also write the markdown here (atomically)")
    ap.add_argument("--rows", nargs="+", default=None, metavar="TEXT",
                    help="only the rows whose label contains one of these texts")
    args = ap.parse_args(argv)
    limit = args.time_limit or (60.0 if args.quick else 600.0)
    lines = ["# Scale benchmark", "",
             f"- command: `{command or 'python -m benchmarks scale'}`",
             f"- one BLAS thread per row, each row in its own process, {limit:g} s and "
             f"{args.memory_limit:g} GB (RLIMIT_AS) per row; time measured in the child "
             "(solve only), peak RSS of the child; objective in scikit-learn's "
             "normalisation; gap: the certified relative duality gap over the program's "
             "patterns (for adelie / celer: the certificate core's gap of their point)", "",
             "| row | n | d_aug | P | programs | method | seconds | peak RSS (MB) | "
             "objective | rel. gap |", "|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for label, method, kind, n, P, d, bias in rows_for(args.quick):
        if args.rows and not any(t in label for t in args.rows):
            continue
        miss = _missing(method)
        if miss:
            line = f"| {label} | | | | | {miss} not installed | - | - | - | - |"
        else:
            oc = run_child(TARGET, dict(method=method, kind=kind, n=n, P=P, d=d or 20,
                                        bias=bias, time_limit=limit),
                           time_limit=limit + 60, memory_limit=int(args.memory_limit * GB))
            if oc.status == "ok":
                r = oc.result
                rss = max(oc.peak_rss, r.get("worker_rss", 0))  # the largest process
                line = (f"| {label} | {r['n']} | {r['d_aug']} | {r['P']} | {r['programs']} "
                        f"| {r['method']} | {_fmt(r['seconds'], '.2f')} | "
                        f"{_fmt(rss / MB, '.0f')} | {_fmt(r['objective'], '.8g')} | "
                        f"{_fmt(r['rel_gap'], '.2e')} |")
            else:
                line = (f"| {label} | | | | | {oc.status}: {oc.message} | "
                        f"{_fmt(oc.wall, '.1f')} | {_fmt(oc.peak_rss / MB, '.0f')} | - | - |")
        lines.append(line)
        print(line, flush=True)
    out = args.out
    if out is None and not args.quick and not args.rows:
        out = str(ROOT / "benchmarks" / "results" / "scale.md")
    if out:
        from convexrelu._io import atomic_write_text

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Benchmark: convexrelu's first-order solvers vs scnn (pyscnn) vs cvxpy + Clarabel.

Every solver gets the **same program**: the same data, the same gates (the gates are
sampled once, turned into patterns with ``ActivationPatterns.from_gates`` and the kept
gates are handed to scnn), the same objective. scnn minimises
``1/(2n) ||y_hat - y||^2 + lam * sum ||w_i||`` (bias column appended to ``X`` and
penalised with the block); times ``n`` this is our sum-reduced program with
``alpha = lam * n``, and its objective value *is* our normalised objective (checked at
run time on scnn's weights: the two evaluations are printed and must agree). scnn is run
with ``unitize_data=False`` on the same standardised data.

Reported per problem (one BLAS thread for everything, ``threadpoolctl``; torch one
thread): time to a certified relative duality gap <= 1e-6 (ours: first gap check below
it; others: their total time, flagged when their final point does not reach it), final
objective in our normalisation, certified relative gap of the returned point (the same
certificate code for every solver), number of neurons (nonzero blocks), time ratios.
Per-iteration efficiency: one FISTA iteration vs the two dense products it needs
(forward ``rowsum(Xa * (S @ W))`` and adjoint ``S^T (g * Xa)``) timed in the same run.

Usage::

    python -m benchmarks.bench_solvers [--out table.md] [--time-limit 60] [--quick]
    python benchmarks/bench_solvers.py [same options]
"""

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TARGET = 1e-6


# ---------------------------------------------------------------------------- problems
def _std(X):
    return (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)


def problems(quick=False):
    """``(name, X, y, bias, P, scnn_dtype)`` of the issue's table."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    Xd, yd = load_diabetes(return_X_y=True)
    Xd, yd = _std(Xd), (yd - yd.mean()) / yd.std()
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xb, yb = _std(Xb), yb.astype(float)
    rng = np.random.default_rng(0)
    Xs = rng.standard_normal((500, 50))
    U = rng.standard_normal((50, 5))
    ys = np.maximum(Xs @ U, 0) @ rng.standard_normal(5) + 0.1 * rng.standard_normal(500)
    ys = (ys - ys.mean()) / ys.std()
    P = 100 if quick else 500
    return [
        ("diabetes, bias, P=%d" % P, Xd, yd, True, P, "float32"),
        ("breast_cancer, bias, P=%d" % P, Xb, yb, True, P, "float32"),
        ("synthetic teacher n=500 d=50, P=100", Xs, ys, False, 100, "float32"),
        ("diabetes, no bias, P=%d, float64" % P, Xd, yd, False, P, "float64"),
    ]


def build(X, y, bias, P, formulation, lam, seed=0):
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.program import ConvexProgram

    Xa = np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X
    G = np.random.default_rng(seed).standard_normal((Xa.shape[1], P))
    G = G[:, np.any(Xa @ G > 0, axis=0)]  # scnn drops the all-zero pattern
    pats = ActivationPatterns.from_gates(X, G, bias=bias)
    return ConvexProgram(X, y, pats, loss="squared", alpha=lam * X.shape[0], bias=bias,
                         penalize_bias=True, fit_output_bias=False, formulation=formulation)


# ------------------------------------------------------------------------ certificates
def certify(prog, V, W):
    """Certified sum-form ``(primal, gap)`` of ``(V, W)`` (our code for every solver)."""
    from convexrelu.solvers._dual_gap import gated_duality_gap, relu_multiplier_gap
    from convexrelu.solvers._relu_admm import repair_feasibility

    Xa, M = prog.X_aug, prog.masks.astype(float)
    if prog.formulation == "gated_relu":
        dg = gated_duality_gap(prog.loss, Xa, M, prog.y, V, 0.0, prog.alpha,
                               output_bias=False)
        return dg.primal, dg.gap
    signs = np.hstack([M, M]) > 0
    B, _ = repair_feasibility(Xa, signs, np.vstack([V, W]),
                              np.hstack([prog.patterns.gates] * 2))
    S = np.hstack([M, -M])
    dg = relu_multiplier_gap(prog.loss, Xa, S, signs, prog.y, B, 0.0, prog.alpha,
                             np.zeros_like(S), output_bias=False, max_refine=S.shape[1])
    return dg.primal, dg.gap


def neurons(*blocks):
    return int(sum(np.sum(np.linalg.norm(b, axis=1) > 1e-10 * max(1.0, np.abs(b).max()))
                   for b in blocks))


# ----------------------------------------------------------------------- the solvers
def _pin():
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def run_ours(prog, time_limit, polish=True):
    from convexrelu.solvers._fista import solve_gated_fista
    from convexrelu.solvers._relu_admm import solve_relu_al

    t = time.perf_counter()
    if prog.formulation == "gated_relu":
        r = solve_gated_fista("squared", prog.X_aug, prog.masks, prog.y, prog.alpha,
                              tol=TARGET, max_iter=10 ** 7, time_limit=time_limit,
                              polish=polish)
        V, W = r.B, np.zeros_like(r.B)
    else:
        r = solve_relu_al("squared", prog.X_aug, prog.masks, prog.y, prog.alpha,
                          gates=prog.patterns.gates, tol=TARGET, max_iter=10 ** 7,
                          time_limit=time_limit)
        P = prog.n_patterns
        V, W = r.B[:P], r.B[P:]
    elapsed = time.perf_counter() - t
    hit = [h[1] for h in r.history if h[3] <= TARGET * abs(h[2])]
    return {"time": hit[0] if hit else elapsed, "reached": bool(hit), "V": V, "W": W,
            "iters": r.n_iter}


def run_relu_fast(prog):
    """:class:`~convexrelu.solvers.ReluFastSolver` (gated support, exact restricted
    Clarabel solve, certificate over all patterns); time = its total time."""
    from convexrelu.solvers import ReluFastSolver

    t = time.perf_counter()
    sol = ReluFastSolver(tol=TARGET).solve(prog)
    elapsed = time.perf_counter() - t
    return {"time": elapsed, "reached": sol.info["rel_gap"] <= TARGET, "V": sol.V,
            "W": sol.W, "iters": sol.n_iter, "own_rel_gap": sol.info["rel_gap"]}


def _scnn_child(prog, lam, dtype, q):
    _pin()
    from scnn.metrics import Metrics
    from scnn.models import ConvexGatedReLU, ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL, RFISTA

    X, y, bias = prog.X, prog.y, prog.bias
    G = prog.patterns.gates
    Gw, Gb = (G[:-1], G[-1]) if bias else (G, None)
    if prog.formulation == "gated_relu":
        model = ConvexGatedReLU(Gw, c=1, bias=bias, G_bias=Gb)
        solver = RFISTA(model, max_iters=10000, tol=1e-10)
    else:
        model = ConvexReLU(Gw, c=1, bias=bias, G_bias=Gb)
        solver = AL(model)
    t = time.perf_counter()
    cm, _ = optimize_model(model, solver, Metrics(), X, y, regularizer=NeuronGL1(lam),
                           return_convex=True, unitize_data=False, dtype=dtype)
    elapsed = time.perf_counter() - t
    par = [np.asarray(p, np.float64) for p in cm.parameters]

    def block(w, b):
        return np.hstack([w[0], b[0][:, None]]) if bias else w[0]

    if prog.formulation == "gated_relu":
        V, W = block(*par[:2]) if bias else par[0][0], None
    else:
        V, W = (block(par[0], par[1]), block(par[2], par[3])) if bias else (par[0][0],
                                                                            par[1][0])
    # scnn reorders/deduplicates the patterns: re-evaluate on its own gates
    Gs = np.vstack([cm.G, cm.G_bias[None, :]]) if bias else cm.G
    q.put({"time": elapsed, "V": V, "W": W, "G": Gs})


def _cvxpy_child(prog, q):
    _pin()
    from convexrelu.solvers import CvxpySolver

    t = time.perf_counter()
    sol = CvxpySolver(tol=1e-10, max_iter=1000).solve(prog)
    q.put({"time": time.perf_counter() - t, "V": sol.V, "W": sol.W, "G": None})


def _child(target, args, q):
    """Run one solver in the child; a crash is reported as such, not as a time-out."""
    try:
        target(*args, q)
    except Exception as exc:  # the baseline libraries may fail on a problem
        q.put({"error": f"{type(exc).__name__}: {str(exc)[:80]}"})


def run_capped(target, args, timeout):
    """Run ``target(*args, queue)`` in a child process, at most ``timeout`` seconds.

    Returns the child's result dict, ``{"error": message}`` when the solver raised, or
    None on time-out.
    """
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(target, args, q))
    p.start()
    try:
        out = q.get(timeout=timeout)
    except Exception:
        out = None
    p.join(5)
    if p.is_alive():
        p.terminate()
        p.join()
    return out


def evaluate(prog, out):
    """Objective (our normalisation), certified rel. gap and neurons of a child's result."""
    if out is None or "error" in out:
        return None
    from convexrelu.program import ConvexProgram

    V, W = out["V"], out["W"]
    if out["G"] is not None:  # scnn's pattern order: same set, re-built from its gates
        from convexrelu.arrangements import ActivationPatterns

        pats = ActivationPatterns.from_gates(prog.X, out["G"], bias=prog.bias)
        if pats.n_patterns != out["G"].shape[1]:
            return None
        prog = ConvexProgram(prog.X, prog.y, pats, loss="squared", alpha=prog.alpha,
                             bias=prog.bias, penalize_bias=True, fit_output_bias=False,
                             formulation=prog.formulation)
    if W is None:
        W = np.zeros_like(V)
    primal, gap = certify(prog, V, W)
    return {"obj": primal / prog.n_samples, "rel_gap": gap / abs(primal),
            "neurons": neurons(V, W) if prog.formulation == "relu" else neurons(V)}


def per_iteration(prog, reps=200):
    """Seconds of one FISTA iteration vs the two dense products (same data, same run)."""
    from convexrelu.solvers._fista import solve_gated_fista

    Xa, S = prog.X_aug, prog.masks.astype(np.float64)
    B = np.random.default_rng(0).standard_normal((S.shape[1], Xa.shape[1]))
    g = np.random.default_rng(1).standard_normal(Xa.shape[0])
    t = time.perf_counter()
    for _ in range(reps):
        np.einsum("ij,ij->i", Xa, S @ B)
        S.T @ (g[:, None] * Xa)
    t_prod = (time.perf_counter() - t) / reps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        r = solve_gated_fista("squared", Xa, prog.masks, prog.y, prog.alpha, tol=1e-300,
                              max_iter=reps, check_every=10 ** 9, polish=False)
        t_it = (time.perf_counter() - t) / r.n_iter
    return t_it, t_prod


# ------------------------------------------------------------------------------ main
def fmt_time(res, ev):
    if res is None:
        return "timed out"
    if "error" in res:
        return f"failed ({res['error']})"
    s = f"{res['time']:.2f}"
    return s if ev is not None and ev["rel_gap"] <= TARGET else s + " (gap not reached)"


def main(argv=None, command=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lam", type=float, default=1e-3, help="scnn's lam (alpha = lam * n)")
    ap.add_argument("--time-limit", type=float, default=60.0,
                    help="cap (s) on every single solver run")
    ap.add_argument("--relu-patterns", type=int, nargs="+", default=[100, 200],
                    help="P of the ReLU comparison (diabetes, bias)")
    ap.add_argument("--quick", action="store_true", help="P=100 everywhere (smoke run)")
    ap.add_argument("--skip-scnn", action="store_true")
    ap.add_argument("--skip-relu", action="store_true", help="only the gated-ReLU table")
    ap.add_argument("--skip-gated", action="store_true", help="only the ReLU table")
    ap.add_argument("--relu-al", action="store_true",
                    help="also run convexrelu's augmented Lagrangian in the ReLU table")
    ap.add_argument("--no-polish", action="store_true",
                    help="gated FISTA without the active-set Newton polish")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    command = command or "python benchmarks/bench_solvers.py " + " ".join(argv or sys.argv[1:])
    warnings.simplefilter("ignore")
    _pin()
    lines = [f"Command: `{command}`", "",
             f"One BLAS thread, squared loss, scnn lam={args.lam:g} (alpha = lam * n), "
             f"target relative gap {TARGET:g}, every run capped at {args.time_limit:g} s. "
             "Times in seconds; ratio = other / ours (> 1: ours faster).", "",
             "### Gated ReLU", "",
             "| problem | solver | time to 1e-6 (s) | objective | rel. gap | neurons | "
             "time ratio |", "|---|---|---|---|---|---|---|"]
    eff = []
    for name, X, y, bias, P, sdt in ([] if args.skip_gated else problems(args.quick)):
        prog = build(X, y, bias, P, "gated_relu", args.lam)
        print(f"== {name}: {prog.n_patterns} patterns", flush=True)
        ours = run_ours(prog, args.time_limit, polish=not args.no_polish)
        ev_o = evaluate(prog, {**ours, "G": None})
        label = "convexrelu FISTA (float64)" if args.no_polish else \
            "convexrelu FISTA + Newton polish (float64)"
        rows = [(label, ours, ev_o)]
        if not args.skip_scnn:
            r = run_capped(_scnn_child, (prog, args.lam, sdt), args.time_limit)
            rows.append((f"scnn R-FISTA tol 1e-10 ({sdt})", r, evaluate(prog, r)))
        r = run_capped(_cvxpy_child, (prog,), args.time_limit)
        rows.append(("cvxpy + Clarabel (tol 1e-10)", r, evaluate(prog, r)))
        for label, res, ev in rows:
            ratio = "" if res is None or "error" in res else f"{res['time'] / ours['time']:.2f}"
            obj = "-" if ev is None else f"{ev['obj']:.10f}"
            gap = "-" if ev is None else f"{ev['rel_gap']:.1e}"
            nn = "-" if ev is None else str(ev["neurons"])
            lines.append(f"| {name} | {label} | {fmt_time(res, ev)} | {obj} | {gap} | {nn} "
                         f"| {ratio} |")
            print(lines[-1], flush=True)
        eff.append((name, *per_iteration(prog)))
    if not args.skip_relu:
        lines += ["", "### ReLU (cone-constrained), diabetes with bias", "",
                  "| P | solver | time to 1e-6 (s) | objective | rel. gap | neurons | "
                  "time ratio |", "|---|---|---|---|---|---|---|"]
    name, X, y, bias, _, _ = problems()[0]
    for P in ([] if args.skip_relu else args.relu_patterns):
        prog = build(X, y, bias, P, "relu", args.lam)
        print(f"== ReLU P={P}: {prog.n_patterns} patterns", flush=True)
        ours = run_relu_fast(prog)
        rows = [("convexrelu relu_fast (active-set Newton + certificate)", ours,
                 evaluate(prog, {**ours, "G": None}))]
        if args.relu_al:
            r = run_ours(prog, args.time_limit)
            rows.append(("convexrelu augmented Lagrangian", r,
                         evaluate(prog, {**r, "G": None})))
        if not args.skip_scnn:
            r = run_capped(_scnn_child, (prog, args.lam, "float32"), args.time_limit)
            rows.append(("scnn augmented Lagrangian (float32)", r, evaluate(prog, r)))
        r = run_capped(_cvxpy_child, (prog,), args.time_limit)
        rows.append(("cvxpy + Clarabel (tol 1e-10)", r, evaluate(prog, r)))
        for label, res, ev in rows:
            ratio = "" if res is None or "error" in res else f"{res['time'] / ours['time']:.2f}"
            obj = "-" if ev is None else f"{ev['obj']:.10f}"
            gap = "-" if ev is None else f"{ev['rel_gap']:.1e}"
            nn = "-" if ev is None else str(ev["neurons"])
            lines.append(f"| {prog.n_patterns} | {label} | {fmt_time(res, ev)} | {obj} | {gap} "
                         f"| {nn} | {ratio} |")
            print(lines[-1], flush=True)
    lines += ["", "### Per-iteration efficiency (gated FISTA, float64, numpy)", "",
              "| problem | one iteration (ms) | forward + adjoint products (ms) | ratio |",
              "|---|---|---|---|"]
    for name, t_it, t_prod in eff:
        lines.append(f"| {name} | {1e3 * t_it:.3f} | {1e3 * t_prod:.3f} | "
                     f"{t_it / t_prod:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

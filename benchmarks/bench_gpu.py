"""Benchmark: gated FISTA on numpy, torch on the CPU and torch on a GPU; joint one-vs-rest.

Two tables, one run (issue 12, items 2 and 3):

* **digits one-vs-rest** (``load_digits``, n=1797, 10 classes, constant pixels dropped,
  standardised, hidden bias penalised, squared loss on the one-hot targets, no output
  bias, P=100 gates: the ``digits`` problem of ``benchmarks/bench_solvers.py``, same
  programs and scaling, see there) at scnn's ``lam = 1e-3`` and at ``0.1 lam_max``: the
  joint solve (:func:`~convexrelu.solvers._fista.solve_gated_fista_multi`, all 10
  programs in one loop, FISTA + Newton polish) on numpy (float64; and float32 FISTA
  stage + float64 polish), torch CPU, torch CUDA (float64 and float32) when present, the
  same 10 programs one after the other (the previous path), and scnn's R-FISTA
  (``tol=1e-10``, float32 and float64, in a child process capped at ``--time-limit``).
  Every point is judged by the same certificate (``bench_solvers.evaluate``: objective,
  certified relative gap); ratio = scnn time / ours.
* **scale**: ``make_regression(n, 20)`` (standardised), hidden bias penalised, squared
  loss with an output bias, P=100 sampled gates, ``alpha = 0.1 alpha_max``, gated FISTA +
  polish to a certified relative gap of 1e-6 at ``n`` in ``--sizes``: numpy, torch CPU,
  torch CUDA float64 / float32. Without CUDA the GPU rows are skipped (said so in the
  output) and the CPU rows run at ``--cpu-sizes`` (default 10,000; ``--quick``: 2,000).

* **ReLU by the augmented Lagrangian** (:func:`~convexrelu.solvers._relu_al.solve_relu_al`,
  float64; it refuses float32): the same ``make_regression`` programs with the ReLU
  formulation, a fixed budget of ``--al-outer`` multiplier steps of at most
  ``--al-inner`` inner iterations on each backend (the AL does not reach 1e-6 on these
  programs within its defaults, so the rows compare the cost of the same iterations:
  time, inner iterations, ms per inner iteration, and the primal against numpy's). The
  time includes the host's feasibility repair and certificate after each outer step.

Tolerances: float64 on any backend gives the numpy result to 1e-6 (relative objective);
float32 iterations stop earlier (their rounding limits the certified gap, ~1e-4 to 1e-5
relative; the certificate itself is computed in float64), reported as measured.

One BLAS thread and one torch thread for the CPU rows (``threadpoolctl``); the GPU rows
use the device. Times in seconds, to the end of the solve (all outputs certified).

Measured (this machine: 2 shared cores under a varying load, no GPU, so times are
indicative; ``python -m benchmarks gpu --time-limit 150``, one BLAS thread; all our rows
certified below 2e-7, scnn stops at a certified 7e-4 / 1.3e-4). digits at lam=1e-3:
joint numpy float64 28.3 s, joint float32 FISTA + float64 polish 18.7 s, joint torch
CPU float64 26.6 s, one program after the other 28.3 s, scnn R-FISTA 32.1 s (float32) /
37.1 s (float64): scnn / ours 1.13, 1.72, 1.21, 1.13. At 0.1 lam_max (5.44e-3): 6.2 s,
4.2 s, 6.7 s, 6.5 s against scnn 20.4 / 20.0 s: 3.20, 4.72, 2.98, 3.07. At lam=1e-3 the
Newton polish is about half of the time (about 40-80 Newton steps over the 10 outputs,
each an ``n x n`` Cholesky of the Schur complement, n=1797), which the joint loop does
not share (every output has its own support); on a CPU the shared products do not reduce
the flops of the FISTA stage, only the number of calls, so joint and one-by-one take
about the same time there (the joint loop is for devices where calls are what costs).
make_regression n=10,000: numpy 2.4 s, torch CPU 2.8 s, same objective to 1e-16.

On an NVIDIA H200 (one lease, 2026-12-04): ``benchmarks/results/gpu_h200.md``.

Usage::

    python -m benchmarks gpu [--quick] [--time-limit 120] [--sizes 10000 100000 1000000]
        [--cpu-sizes 10000] [--skip-scnn] [--skip-digits] [--skip-scale] [--skip-al]
        [--al-outer 5] [--al-inner 200] [--out PATH]
"""

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TARGET = 1e-6


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _sync():
    if _cuda():
        import torch

        torch.cuda.synchronize()


def _configs(cuda: bool, digits: bool):
    """(label, kwargs of the solve) for each backend row."""
    rows = [("numpy float64", dict(backend="numpy"))]
    if digits:
        rows.append(("numpy float32 FISTA + float64 polish",
                     dict(backend="numpy", dtype=np.float32, polish=True, polish_tol=5e-3)))
    if _torch():
        rows.append(("torch cpu float64", dict(backend="torch", device="cpu")))
    if cuda:
        rows.append(("torch cuda float64", dict(backend="torch", device="cuda")))
        rows.append(("torch cuda float32 FISTA + float64 polish",
                     dict(backend="torch", device="cuda", dtype=np.float32, polish=True,
                          polish_tol=5e-3)))
    return rows


# ------------------------------------------------------------------------------ digits
def digits_table(args, cuda: bool) -> list:
    from benchmarks import bench_solvers as bs
    from convexrelu.solvers._fista import solve_gated_fista_multi

    n_samples = bs.QUICK_DIGITS_SAMPLES if args.quick else None
    P = bs.QUICK_P if args.quick else 100
    X, Y = bs.load_digits_ovr(n_samples)
    n, c = Y.shape
    progs = bs.build(X, Y, True, P, "gated_relu", 1.0)
    p0 = progs[0]
    # lam_max: every program's alpha_max = max_i ||Xa^T D_i y_k|| (full squared loss,
    # no output bias), alpha_k = lam n c
    Xa, S = p0.X_aug, p0.masks.astype(float)
    amax = max(float(np.max(np.linalg.norm(S.T @ (Y[:, k:k + 1] * Xa), axis=1)))
               for k in range(c))
    lam_max = amax / (n * c)
    lines = [f"### digits one-vs-rest (n={n}, {c} outputs, P={p0.n_patterns} patterns), "
             "gated, squared loss", "",
             "| lam | solver | time (s) | objective | certified rel. gap | scnn / ours |",
             "|---|---|---|---|---|---|"]
    for lam, lam_name in ((1e-3, "1e-3"), (0.1 * lam_max, f"0.1 lam_max = {0.1 * lam_max:.3g}")):
        progs = bs.build(X, Y, True, P, "gated_relu", lam)
        p0 = progs[0]
        rows = []
        for label, kw in _configs(cuda, True):
            _sync()
            t = time.perf_counter()
            r = solve_gated_fista_multi("squared", p0.X_aug, p0.masks, Y, p0.alpha,
                                        tol=TARGET, max_iter=10 ** 7,
                                        time_limit=args.time_limit, **kw)
            _sync()
            el = time.perf_counter() - t
            ev = bs.evaluate(progs, {"V": list(np.asarray(r.B, np.float64)),
                                     "W": [None] * c, "G": None})
            rows.append((f"convexrelu joint, {label}", el, ev))
            _progress(rows[-1])
        t = time.perf_counter()
        seq = bs.run_ours(progs, args.time_limit, joint=False)
        el = time.perf_counter() - t
        rows.append(("convexrelu one program after the other, numpy float64", el,
                     bs.evaluate(progs, seq)))
        _progress(rows[-1])
        ours = rows[0][1]
        scnn = []
        if not args.skip_scnn:
            for sdt in ("float32", "float64"):
                r = bs.run_capped(bs._scnn_child, (progs, lam, sdt), args.time_limit)
                if r is None or "error" in r:
                    scnn.append((f"scnn R-FISTA tol 1e-10 ({sdt})", None,
                                 "timed out" if r is None else r["error"]))
                else:
                    scnn.append((f"scnn R-FISTA tol 1e-10 ({sdt})", r["time"],
                                 bs.evaluate(progs, r)))
                _progress(scnn[-1])
        best_scnn = min((s[1] for s in scnn if s[1] is not None), default=None)
        for label, el, ev in rows + scnn:
            if el is None:
                lines.append(f"| {lam_name} | {label} | {ev} | - | - | - |")
                continue
            ratio = "" if best_scnn is None or label.startswith("scnn") else \
                f"{best_scnn / el:.2f}"
            obj = "-" if ev is None else f"{ev['obj']:.10f}"
            gap = "-" if ev is None else f"{ev['rel_gap']:.1e}"
            lines.append(f"| {lam_name} | {label} | {el:.2f} | {obj} | {gap} | {ratio} |")
        del ours
    lines += ["", "scnn / ours: the faster of scnn's two runs over our time (> 1: ours "
              "faster); scnn stops on its own criterion (its gap column shows what it "
              "certifies).", ""]
    return lines


# ------------------------------------------------------------------------------- scale
def regression_problem(n, P=100, seed=0):
    from sklearn.datasets import make_regression

    from convexrelu.arrangements import ActivationPatterns

    X, y = make_regression(n_samples=n, n_features=20, noise=10.0, random_state=seed)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    Xa = np.hstack([X, np.ones((n, 1))])
    G = np.random.default_rng(seed).standard_normal((Xa.shape[1], P))
    pats = ActivationPatterns.from_gates(X, G, bias=True)
    S = pats.masks
    lam0 = y - y.mean()  # the dual point at the zero network (output bias fitted)
    amax = float(np.max(np.linalg.norm(S.T @ (lam0[:, None] * Xa), axis=1)))
    return Xa, S, y, 0.1 * amax


def scale_table(args, cuda: bool) -> list:
    from convexrelu.solvers._fista import solve_gated_fista

    # on a GPU every size (the CPU rows run up to max(--cpu-sizes)); without one the CPU sizes
    sizes = sorted(set(args.sizes) | set(args.cpu_sizes)) if cuda else args.cpu_sizes
    lines = ["### make_regression(n, 20), P=100, gated, alpha = 0.1 alpha_max", ""]
    if not cuda:
        lines += ["GPU rows skipped: torch.cuda.is_available() is False (or torch is not "
                  f"installed); CPU rows at n = {', '.join(map(str, sizes))}.", ""]
    lines += ["| n | backend | time (s) | iterations | objective (sum form) | certified rel. "
              "gap | objective vs numpy |", "|---|---|---|---|---|---|---|"]
    for n in sizes:
        Xa, S, y, alpha = regression_problem(int(n))
        ref = None
        for label, kw in _configs(cuda, False):
            if kw["backend"] != "torch" or kw.get("device") != "cuda":
                if n > max(args.cpu_sizes) and not args.cpu_all:
                    lines.append(f"| {n} | {label} | skipped (n > --cpu-sizes) | | | | |")
                    continue
            _sync()
            t = time.perf_counter()
            r = solve_gated_fista("squared", Xa, S, y, alpha, output_bias=True, tol=TARGET,
                                  max_iter=10 ** 7, time_limit=args.time_limit, **kw)
            _sync()
            el = time.perf_counter() - t
            if ref is None:
                ref = r.objective
            diff = abs(r.objective - ref) / abs(ref)
            lines.append(f"| {n} | {label} | {el:.2f} | {r.n_iter} | {r.objective:.10g} | "
                         f"{r.rel_gap:.1e} | {diff:.1e} |")
            _progress(lines[-1])
    return lines + [""]


def al_table(args, cuda: bool) -> list:
    """The ReLU program by the augmented Lagrangian on each backend: a fixed budget of
    outer steps, so every backend runs the same iterations (float64; see the docstring)."""
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.certificates._gap import centred_dual
    from convexrelu.program import ConvexProgram
    from convexrelu.solvers._relu_al import solve_relu_al

    sizes = sorted(set(args.sizes) | set(args.cpu_sizes)) if cuda else args.cpu_sizes
    lines = [f"### make_regression(n, 20), P=100, ReLU by the augmented Lagrangian "
             f"(float64), alpha = 0.1 alpha_max, {args.al_outer} outer steps of at most "
             f"{args.al_inner} inner iterations", ""]
    if not cuda:
        lines += ["GPU rows skipped (no CUDA).", ""]
    lines += ["| n | backend | time (s) | inner iterations | ms per inner iteration | "
              "primal (sum form) | certified rel. gap | primal vs numpy |",
              "|---|---|---|---|---|---|---|---|"]
    for n in sizes:
        Xa, S, y, alpha = regression_problem(int(n))
        X = Xa[:, :-1]
        G = np.random.default_rng(0).standard_normal((Xa.shape[1], S.shape[1]))
        prog = ConvexProgram(X, y, ActivationPatterns.from_gates(X, G, bias=True),
                             loss="squared", alpha=alpha / n, bias=True, formulation="relu")
        ref = None
        for label, kw in _configs(cuda, False):
            on_gpu = kw.get("device") == "cuda"
            if "dtype" in kw:
                continue  # float64 only (the AL refuses float32)
            if not on_gpu and n > max(args.cpu_sizes) and not args.cpu_all:
                lines.append(f"| {n} | {label} | skipped (n > --cpu-sizes) | | | | | |")
                continue
            _sync()
            t = time.perf_counter()
            r = solve_relu_al(prog.loss, prog.X_aug, prog.masks, prog.y, prog.alpha * n,
                              gates=prog.patterns.gates, regularizer=prog.regularizer,
                              output_bias=True, centred=centred_dual(prog), tol=TARGET,
                              max_outer=args.al_outer, max_inner=args.al_inner,
                              time_limit=args.time_limit, backend=kw["backend"],
                              device=kw.get("device"))
            _sync()
            el = time.perf_counter() - t
            if ref is None:
                ref = r["primal"]
            lines.append(
                f"| {n} | {label} | {el:.2f} | {r['n_inner']} | "
                f"{1e3 * el / max(r['n_inner'], 1):.2f} | {r['primal']:.10g} | "
                f"{r['gap'] / abs(r['primal']):.1e} | "
                f"{abs(r['primal'] - ref) / abs(ref):.1e} |")
            _progress(lines[-1])
    return lines + ["", "A fixed budget (the AL does not reach 1e-6 on these programs within "
                    "its defaults): the rows compare the cost of the same iterations; the "
                    "time includes the host's feasibility repair and certificate after "
                    "each outer step.", ""]


def _progress(msg):
    print(msg, file=sys.stderr, flush=True)


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: digits on 150 samples with P=10, scale at n=2000, "
                    "no scnn")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="cap (s) on each solve (default 120; --quick: 10)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help="n of the scale table on a GPU (default 10000 100000 1000000; "
                    "--quick: the CPU sizes)")
    ap.add_argument("--cpu-sizes", type=int, nargs="+", default=None,
                    help="n of the CPU rows (default 10000; --quick: 2000)")
    ap.add_argument("--cpu-all", action="store_true",
                    help="also run the CPU rows at every n of --sizes")
    ap.add_argument("--skip-scnn", action="store_true")
    ap.add_argument("--skip-digits", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-al", action="store_true",
                    help="skip the augmented Lagrangian (ReLU) table")
    ap.add_argument("--al-outer", type=int, default=None,
                    help="outer (multiplier) steps of each AL row (default 5; --quick: 2)")
    ap.add_argument("--al-inner", type=int, default=None,
                    help="inner iterations per outer step of each AL row (default 200; "
                    "--quick: 50)")
    ap.add_argument("--out", default=None, help="also write the markdown here")
    args = ap.parse_args(argv)
    if args.time_limit is None:
        args.time_limit = 10.0 if args.quick else 120.0
    if args.cpu_sizes is None:
        args.cpu_sizes = [2000] if args.quick else [10_000]
    if args.al_outer is None:
        args.al_outer = 2 if args.quick else 5
    if args.al_inner is None:
        args.al_inner = 50 if args.quick else 200
    if args.sizes is None:
        args.sizes = list(args.cpu_sizes) if args.quick else [10_000, 100_000, 1_000_000]
    if args.quick:
        args.skip_scnn = True
    return args


def main(argv=None, command=None) -> int:
    args = _parse(argv)
    command = command or "python benchmarks/bench_gpu.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    from threadpoolctl import threadpool_limits

    threads = None
    if _torch():
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
    try:
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = _run(args, command)
    finally:
        if threads is not None:
            torch.set_num_threads(threads)
    print(text)
    if args.out:
        from convexrelu._io import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 0


def _run(args, command) -> str:
    cuda = _cuda()
    lines = [f"Command: `{command}`", "",
             "CUDA: " + ("yes, " + __import__("torch").cuda.get_device_name(0) if cuda
                         else "no (GPU rows skipped)"), ""]
    if not args.skip_digits:
        lines += digits_table(args, cuda)
    if not args.skip_scale:
        lines += scale_table(args, cuda)
    if not args.skip_al:
        lines += al_table(args, cuda)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: convexrelu's solvers vs scnn (pyscnn) vs cvxpy + Clarabel, gated and ReLU.

One command writes the whole markdown table: a gated-ReLU table, a ReLU (cone-constrained)
table and a per-iteration table, over these problems (``--problems`` selects some):

* ``diabetes``: diabetes (n=442, d=10, standardised, centred target), hidden bias,
  P=500 sampled gates;
* ``breast_cancer``: breast cancer (n=569, d=30, standardised, 0/1 target), bias, P=500;
* ``synthetic``: teacher network, n=500, d=50, no bias, P=100;
* ``diabetes_nobias``: diabetes without bias, P=500, scnn in float64;
* ``digits``: load_digits (n=1797, 10 classes; the 3 constant pixel columns dropped, the
  other 61 standardised), bias, P=100, **one-vs-rest**: 10 single-output programs sharing
  the same gates, program ``k`` with the one-hot target ``y_k = 1[class == k]`` (0/1).

In the ReLU table the same problems (same gates; ``--relu-problems``, default all those
of ``--problems``), plus diabetes with bias at each P of ``--relu-patterns`` (default 100
200). ``--quick`` is a smoke run: P=10 (digits: its first 150 samples), 5 s caps, ReLU
table on diabetes only, no P sweep.

Solvers. Gated: ours = the gated solver's default (``method="auto"``: the dual
log-barrier Newton method for few samples and many active blocks, FISTA otherwise) +
active-set Newton polish (float64, stops at a certified relative gap <= 1e-6; the row's
label says which ran; the joint one-vs-rest solve's first FISTA stage, up to the polish's
start, runs its products in float32), scnn R-FISTA (tol 1e-10), cvxpy + Clarabel (tol 1e-10).
ReLU: ours = ``ReluFastSolver(tol=1e-6, time_limit=cap)`` (structured primal-dual
interior-point method, certified over all the program's patterns), scnn's augmented
Lagrangian ``scnn.solvers.AL``, cvxpy + Clarabel. Every solver gets the **same program**
(the same data, the same gates: sampled once, turned into patterns with
``ActivationPatterns.from_gates``, the kept gates handed to scnn) and the same cap
``--time-limit`` on its whole run (for a one-vs-rest problem: on all 10 programs
together; scnn and cvxpy run in a child process killed at the cap, "timed out"; a solver
that raises is reported "failed (...)"). Every returned point is judged by the **same
certificate code** (:func:`certify`), which gives its primal value and a certified
duality gap (for the ReLU formulation after repairing any cone violation).

Scaling. scnn with ``c`` outputs minimises (``scnn/private/models/model.py``:
``_scaling = scaling * self.c`` with ``scaling = n``)

    1/(2 n c) ||Y_hat - Y||_F^2 + lam * sum_{k, i} ||w_{k,i}||,

the group being one (output ``k``, neuron ``i``) block of the ``(c, p, d)`` weights
(``group_l1_penalty``: ``lam * sum(sqrt(sum(w ** 2, axis=-1)))``), bias column appended
to ``X`` and penalised with the block. This is convexrelu's multi-output objective
(``ConvexProgram`` with ``Y`` of shape ``(n, c)``: the squared loss averaged over the
``n c`` entries, scikit-learn's normalisation) with ``alpha = lam * n``; it decouples into
``c`` single-output programs, program ``k`` with target ``Y[:, k]`` and
``alpha_k = lam * n * c``, and the objective is the **mean over k** of their objectives
(each the sum form divided by ``n``). For ``c = 1`` this is ``alpha = lam * n``. scnn runs
once with ``c = 10`` on the one-hot ``Y`` (its groups do not couple the outputs), with
``unitize_data=False`` on the same standardised data; its weights are split into the 10
programs' blocks. scnn is handed ``X`` with the bias column already appended and the full
gates, with ``bias=False``: the same internal problem as its ``bias=True`` (which appends
the column and stacks the gate biases under the gates), avoiding scnn 0.0.x's
``ConvexReLU.set_parameters``, which raises AssertionError for ``bias=True`` after the
solve. At run time scnn's own objective at its own weights (its internal model,
its dtype) is compared with ours at the same weights; the largest relative difference is
printed under the table.

Reported per problem (one BLAS thread for everything, ``threadpoolctl``; torch one thread):
time to a certified relative duality gap <= 1e-6 (ours: first gap check below it; the
gated one-vs-rest programs solved jointly by ``solve_gated_fista_multi``, as scnn solves
its ``c`` outputs, and timed as a whole; the ReLU ones one after the other, within the
cap in all, summed; others: their total time, flagged "(gap not reached)" when
their point does not reach it), objective in our normalisation (mean over one-vs-rest
programs), certified relative gap ``sum_k gap_k / sum_k primal_k``, neurons (nonzero
blocks, summed over programs), time ratio other / ours. Per-iteration efficiency: one
gated FISTA iteration vs the two dense products it needs (forward
``rowsum(Xa * (S @ W))`` and adjoint ``S^T (g * Xa)``), for digits on one of its programs.

Usage::

    python -m benchmarks solvers [--out table.md] [--time-limit 60] [--quick]
        [--problems KEY ...] [--relu-problems all|none|KEY ...] [--skip-scnn]
    python benchmarks/bench_solvers.py [same options]

The full default run takes up to about (5 + 7) problems x 3 solvers x ``--time-limit``
(60 s), in practice about 20-30 minutes; ``--quick`` well under a minute.
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
from typing import NamedTuple  # noqa: E402

import numpy as np  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TARGET = 1e-6
PROBLEM_KEYS = ("diabetes", "breast_cancer", "synthetic", "diabetes_nobias", "digits")
QUICK_P = 10
QUICK_DIGITS_SAMPLES = 150


# ---------------------------------------------------------------------------- problems
class Problem(NamedTuple):
    key: str
    name: str
    X: np.ndarray
    y: np.ndarray  # (n,) or (n, c): c one-vs-rest programs
    bias: bool
    P: int
    scnn_dtype: str


def _std(X):
    return (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)


def load_digits_ovr(n_samples=None):
    """load_digits, constant pixels dropped, standardised; one-hot ``Y`` of shape (n, 10)."""
    from sklearn.datasets import load_digits

    X, t = load_digits(return_X_y=True)
    if n_samples is not None:
        X, t = X[:n_samples], t[:n_samples]
    X = _std(X[:, X.std(0) > 0])
    return X, (t[:, None] == np.arange(10)).astype(float)


def problems(quick=False, keys=None):
    """The :class:`Problem` s of the issue's table (``keys``: a subset of PROBLEM_KEYS)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    keys = PROBLEM_KEYS if keys is None else keys
    out = []
    P = QUICK_P if quick else 500
    if "diabetes" in keys or "diabetes_nobias" in keys:
        Xd, yd = load_diabetes(return_X_y=True)
        Xd, yd = _std(Xd), (yd - yd.mean()) / yd.std()
    if "diabetes" in keys:
        out.append(Problem("diabetes", "diabetes, bias, P=%d" % P, Xd, yd, True, P,
                           "float32"))
    if "breast_cancer" in keys:
        Xb, yb = load_breast_cancer(return_X_y=True)
        out.append(Problem("breast_cancer", "breast_cancer, bias, P=%d" % P, _std(Xb),
                           yb.astype(float), True, P, "float32"))
    if "synthetic" in keys:
        rng = np.random.default_rng(0)
        Xs = rng.standard_normal((500, 50))
        U = rng.standard_normal((50, 5))
        ys = np.maximum(Xs @ U, 0) @ rng.standard_normal(5) + 0.1 * rng.standard_normal(500)
        Ps = QUICK_P if quick else 100
        out.append(Problem("synthetic", "synthetic teacher n=500 d=50, P=%d" % Ps, Xs,
                           (ys - ys.mean()) / ys.std(), False, Ps, "float32"))
    if "diabetes_nobias" in keys:
        out.append(Problem("diabetes_nobias", "diabetes, no bias, P=%d, float64" % P, Xd, yd,
                           False, P, "float64"))
    if "digits" in keys:
        n = QUICK_DIGITS_SAMPLES if quick else None
        Xg, Yg = load_digits_ovr(n)
        Pg = QUICK_P if quick else 100
        out.append(Problem("digits", f"digits 10-class one-vs-rest n={Xg.shape[0]}, bias, "
                           f"P={Pg}", Xg, Yg, True, Pg, "float32"))
    return out


def build(X, y, bias, P, formulation, lam, seed=0):
    """The programs of one problem: one per column of ``y``, all on the same patterns.

    ``alpha = lam * n * c`` for each of the ``c`` programs (``c = 1``: ``lam * n``), so that
    the mean of their objectives is scnn's objective with ``lam`` (module docstring).
    """
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.program import ConvexProgram

    Y = y[:, None] if y.ndim == 1 else y
    Xa = np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X
    G = np.random.default_rng(seed).standard_normal((Xa.shape[1], P))
    G = G[:, np.any(Xa @ G > 0, axis=0)]  # scnn drops the all-zero pattern
    pats = ActivationPatterns.from_gates(X, G, bias=bias)
    alpha = lam * X.shape[0] * Y.shape[1]
    return [ConvexProgram(X, Y[:, k], pats, loss="squared", alpha=alpha, bias=bias,
                          penalize_bias=True, fit_output_bias=False, formulation=formulation)
            for k in range(Y.shape[1])]


# ------------------------------------------------------------------------ certificates
def certify(prog, V, W):
    """Certified sum-form ``(primal, gap)`` of ``(V, W)``: the certificate core's gap over
    all of the program's patterns (the same code for every solver), after repairing any
    cone violation of a ReLU point along the gates."""
    from convexrelu._polish import repair_feasibility
    from convexrelu.certificates._gap import duality_gap

    if prog.formulation == "relu":
        M = prog.masks
        B, _ = repair_feasibility(prog.X_aug, np.hstack([M, M]), np.vstack([V, W]),
                                  np.hstack([prog.patterns.gates] * 2))
        V, W = B[:prog.n_patterns], B[prog.n_patterns:]
    dg = duality_gap(prog, V, W, 0.0)
    return dg.primal, dg.gap


def neurons(*blocks):
    return int(sum(np.sum(np.linalg.norm(b, axis=1) > 1e-10 * max(1.0, np.abs(b).max()))
                   for b in blocks))


def evaluate(progs, out):
    """Objective, certified relative gap and neurons of a solver's result on ``progs``.

    ``out["V"]``, ``out["W"]``: one block array per program (``W`` None: gated).
    Objective = mean over programs of ``primal_k / n`` (our normalisation); relative gap =
    ``sum_k gap_k / sum_k primal_k``; neurons = total; ``raw_obj``: the same mean of
    ``prog.objective`` at the returned point itself (no feasibility repair).
    """
    if out is None or "error" in out:
        return None
    from convexrelu.program import ConvexProgram

    if out["G"] is not None:  # scnn's pattern order: same set, re-built from its gates
        from convexrelu.arrangements import ActivationPatterns

        p0 = progs[0]
        pats = ActivationPatterns.from_gates(p0.X, out["G"], bias=p0.bias)
        if pats.n_patterns != out["G"].shape[1]:
            return None
        progs = [ConvexProgram(p.X, p.y, pats, loss="squared", alpha=p.alpha, bias=p.bias,
                               penalize_bias=True, fit_output_bias=False,
                               formulation=p.formulation) for p in progs]
    primal = gap = raw = 0.0
    nn = 0
    for prog, V, W in zip(progs, out["V"], out["W"]):
        W = np.zeros_like(V) if W is None else W
        p, g = certify(prog, V, W)
        primal, gap = primal + p, gap + g
        raw += prog.objective(V, W)
        nn += neurons(V, W) if prog.formulation == "relu" else neurons(V)
    c, n = len(progs), progs[0].n_samples
    return {"obj": primal / (n * c), "rel_gap": gap / abs(primal), "neurons": nn,
            "raw_obj": raw / c}


# ----------------------------------------------------------------------- the solvers
def _pin():
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _each_program(progs, time_limit, solve_one):
    """Solve ``progs`` one after the other within ``time_limit`` seconds in all.

    ``solve_one(prog, seconds_left) -> (time_to_target or None, V, W, n_iter)``. Programs
    left when the time is up keep ``V = W = 0`` (certified as such). Time = sum of the
    times to target when every program reached it, else the total time.
    """
    t0 = time.perf_counter()
    Vs, Ws, hits, iters = [], [], [], 0
    for prog in progs:
        left = time_limit - (time.perf_counter() - t0)
        if left <= 0:
            Vs.append(np.zeros((prog.n_patterns, prog.d_aug)))
            Ws.append(np.zeros_like(Vs[-1]))
            hits.append(None)
            continue
        hit, V, W, k = solve_one(prog, left)
        Vs.append(V)
        Ws.append(W)
        hits.append(hit)
        iters += k
    elapsed = time.perf_counter() - t0
    reached = all(h is not None for h in hits)
    return {"time": sum(hits) if reached else elapsed, "reached": reached, "V": Vs, "W": Ws,
            "iters": iters, "G": None}


def run_ours(progs, time_limit, polish=True, joint=True):
    """The gated solver (its default method, + Newton polish; ``out["method"]`` says which
    ran); several programs (one-vs-rest) **jointly** by
    :func:`~convexrelu.solvers._fista.solve_gated_fista_multi` (every product serves all
    of them, as scnn's one model with ``c`` outputs does; time = the whole joint solve)
    unless ``joint=False`` (one after the other)."""
    from convexrelu.solvers._fista import solve_gated_fista, solve_gated_fista_multi

    if joint and len(progs) > 1:
        p0 = progs[0]
        t = time.perf_counter()
        r = solve_gated_fista_multi("squared", p0.X_aug, p0.masks,
                                    np.column_stack([p.y for p in progs]), p0.alpha,
                                    tol=TARGET, max_iter=10 ** 7, time_limit=time_limit,
                                    polish=polish)
        elapsed = time.perf_counter() - t
        return {"time": elapsed, "reached": bool(r.converged),
                "V": list(np.asarray(r.B, np.float64)), "W": [None] * len(progs),
                "iters": int(r.n_iter), "G": None}

    methods = set()

    def one(prog, left):
        r = solve_gated_fista("squared", prog.X_aug, prog.masks, prog.y, prog.alpha,
                              tol=TARGET, max_iter=10 ** 7, time_limit=left, polish=polish)
        methods.add(r.info["method"])
        V, W = r.B, np.zeros_like(r.B)
        if r.info["method"] == "barrier":  # its whole time: the returned sparse point
            hit = [r.time] if r.converged else []
        else:
            hit = [h[1] for h in r.history if h[3] <= TARGET * abs(h[2])]
        return (hit[0] if hit else None), V, W, r.n_iter

    out = _each_program(progs, time_limit, one)
    out["method"] = "/".join(sorted(methods))
    return out


def run_relu_fast(progs, time_limit):
    """:class:`~convexrelu.solvers.ReluFastSolver` (interior point, certificate over all
    patterns); time = its total time per program."""
    from convexrelu.solvers import ReluFastSolver

    def one(prog, left):
        t = time.perf_counter()
        sol = ReluFastSolver(tol=TARGET, time_limit=left).solve(prog)
        elapsed = time.perf_counter() - t
        return (elapsed if sol.info["rel_gap"] <= TARGET else None), sol.V, sol.W, \
            sol.n_iter

    return _each_program(progs, time_limit, one)


def _scnn_child(progs, lam, dtype, q):
    """scnn on all ``progs`` at once: ``c = len(progs)`` outputs, target columns = ys.

    scnn gets ``X_aug`` (the bias column already appended, as scnn's own ``add_bias_col``
    does) and the full gates ``(d_aug, P)`` with ``bias=False``: the same internal problem
    as scnn's ``bias=True`` (which appends the column and stacks ``G_bias`` under ``G``),
    without its public ``ConvexReLU.set_parameters``, which fails for ``bias=True``
    (it checks ``parameters[2].shape == (c, p)`` and reads ``parameters[4]`` of a list of 4).
    """
    _pin()
    import lab
    from scnn.metrics import Metrics
    from scnn.models import ConvexGatedReLU, ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.private.interface.models import build_internal_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL, RFISTA

    p0 = progs[0]
    Xa, c = p0.X_aug, len(progs)
    Y = np.column_stack([p.y for p in progs])
    gated = p0.formulation == "gated_relu"
    if gated:
        model = ConvexGatedReLU(p0.patterns.gates, c=c)
        solver = RFISTA(model, max_iters=10000, tol=1e-10)
    else:
        model = ConvexReLU(p0.patterns.gates, c=c)
        solver = AL(model)
    t = time.perf_counter()
    cm, _ = optimize_model(model, solver, Metrics(), Xa, Y, regularizer=NeuronGL1(lam),
                           return_convex=True, unitize_data=False, dtype=dtype)
    elapsed = time.perf_counter() - t
    par = [np.asarray(p, np.float64) for p in cm.parameters]  # each (c, p, d_aug)
    V = list(par[0])
    W = [None] * c if gated else list(par[1])
    # scnn's own objective at its weights: its internal model, its dtype
    internal = build_internal_model(cm, NeuronGL1(lam), Xa)
    w = par[0] if gated else np.stack(par[:2])

    def tensor(a):
        return lab.tensor(a, dtype=lab.get_dtype())

    own = float(internal.objective(tensor(Xa), tensor(Y), w=tensor(w),
                                   ignore_lagrange_penalty=True))
    # scnn reorders/deduplicates the patterns: re-evaluate on its own gates
    q.put({"time": elapsed, "V": V, "W": W, "G": np.asarray(cm.G), "scnn_obj": own})


def _cvxpy_child(progs, q):
    """cvxpy + Clarabel on every program, one after the other (one cap for all)."""
    _pin()
    from convexrelu.solvers import CvxpySolver

    t = time.perf_counter()
    sols = [CvxpySolver(tol=1e-10, max_iter=1000).solve(p) for p in progs]
    q.put({"time": time.perf_counter() - t, "V": [s.V for s in sols],
           "W": [s.W for s in sols], "G": None})


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


def table_row(problem, label, res, ev, ours_time):
    ratio = "" if res is None or "error" in res else f"{res['time'] / ours_time:.2f}"
    obj = "-" if ev is None else f"{ev['obj']:.10f}"
    gap = "-" if ev is None else f"{ev['rel_gap']:.1e}"
    nn = "-" if ev is None else str(ev["neurons"])
    return f"| {problem} | {label} | {fmt_time(res, ev)} | {obj} | {gap} | {nn} | {ratio} |"


def write_atomic(path, text):
    """Write ``text`` to ``path`` atomically (the package's temp-file + rename writer)."""
    from convexrelu._io import atomic_write_text

    atomic_write_text(path, text)


def _progress(msg):
    print(msg, file=sys.stderr, flush=True)


def _header(args, scnn_note):
    """What was run, in words (printed above the tables)."""
    gated = "FISTA" if args.no_polish else \
        "solver (method='auto': the dual barrier or FISTA) + active-set Newton polish"
    return [
        "Squared loss, no output bias, hidden bias penalised with the weights, one BLAS "
        "thread. Solvers: gated ReLU: convexrelu gated " + gated + " (float64), scnn "
        "R-FISTA (tol 1e-10), cvxpy + Clarabel (tol 1e-10); ReLU: convexrelu "
        "ReluFastSolver(tol=1e-6, time_limit=cap), scnn augmented Lagrangian (AL defaults), "
        "cvxpy + Clarabel (tol 1e-10). Same program for every solver: same data, same gates "
        "(P = gates sampled once, patterns = distinct ones, via "
        "ActivationPatterns.from_gates), every returned point judged by the same "
        "certificate code (for ReLU after repairing cone violations: objective and gap are "
        f"those of the repaired, feasible point). Target relative gap {TARGET:g}; every "
        f"solver's whole run on a problem (all its programs) capped at {args.time_limit:g} "
        f"s (ReLU table: {args.relu_time_limit:g} s). Times in seconds; ratio = other / "
        "ours (> 1: ours faster; a baseline that timed out gives no ratio: it is above "
        "cap / ours).", "",
        f"Scaling: scnn lam={args.lam:g}; scnn minimises 1/(2nc) ||Y_hat - Y||^2 + lam * "
        "sum_{k,i} ||w_ki|| (c outputs, one group per (output, neuron)), i.e. our sum-form "
        "program with alpha = lam * n for c = 1. scnn gets X with the bias column appended "
        "and bias=False (its own bias=True path does the same, then fails in "
        "ConvexReLU.set_parameters). Objectives in our normalisation (sum form / n). "
        + scnn_note, "",
        "One-vs-rest (digits): 10 single-output programs on the same gates, program k with "
        "target 1[class == k] (0/1) and alpha_k = lam * n * 10; objective = mean of the 10 "
        "objectives (= the 10-output objective, squared loss averaged over the n * 10 "
        "entries, alpha = lam * n: what scnn minimises with c = 10); rel. gap = sum of gaps "
        "/ sum of primals; neurons and times summed over the 10 programs (ours: one after "
        "the other within the one cap). scnn runs once with c = 10 (its groups do not "
        "couple the outputs); cvxpy solves the 10 programs in one child process.", ""]


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lam", type=float, default=1e-3, help="scnn's lam (alpha = lam * n)")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="cap (s) on every solver's run on a problem (default 60; "
                    "--quick: 5)")
    ap.add_argument("--relu-time-limit", type=float, default=None,
                    help="cap (s) on every solver's run in the ReLU table (default: "
                    "--time-limit); the baselines need longer than the gated ones")
    ap.add_argument("--problems", nargs="+", choices=PROBLEM_KEYS, default=list(PROBLEM_KEYS),
                    help="problems of the gated table (default: all)")
    ap.add_argument("--relu-problems", nargs="+", default=None,
                    choices=("all", "none") + PROBLEM_KEYS,
                    help="problems of the ReLU table: all (= those of --problems; default), "
                    "none, or some keys (--quick: diabetes)")
    ap.add_argument("--relu-patterns", type=int, nargs="*", default=None,
                    help="extra ReLU rows: diabetes, bias, at these P (default 100 200; "
                    "--quick: none)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: P=10, digits on 150 samples, 5 s caps, ReLU table on "
                    "diabetes only, no P sweep")
    ap.add_argument("--skip-scnn", action="store_true")
    ap.add_argument("--skip-relu", action="store_true", help="only the gated-ReLU table")
    ap.add_argument("--skip-gated", action="store_true", help="no gated-ReLU table")
    ap.add_argument("--no-polish", action="store_true",
                    help="gated FISTA without the active-set Newton polish")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    if args.time_limit is None:
        args.time_limit = 5.0 if args.quick else 60.0
    if args.relu_time_limit is None:
        args.relu_time_limit = args.time_limit
    if args.relu_patterns is None:
        args.relu_patterns = [] if args.quick else [100, 200]
    rp = args.relu_problems or (["diabetes"] if args.quick else ["all"])
    if "all" in rp:
        args.relu_problems = list(args.problems)
    elif "none" in rp:
        args.relu_problems = []
    else:
        args.relu_problems = rp
    if args.skip_relu:
        args.relu_problems, args.relu_patterns = [], []
    return args


def _solve_rows(progs, formulation, problem, args, sdt, checks):
    """Run every solver on ``progs``; return the table lines."""
    cap = args.time_limit if formulation == "gated_relu" else args.relu_time_limit
    if formulation == "gated_relu":
        ours = run_ours(progs, cap, polish=not args.no_polish)
        method = {"barrier": "dual barrier", "fista": "FISTA"}.get(
            ours.get("method", "fista"), ours.get("method", "fista"))
        if method == "FISTA" and len(progs) > 1 and not args.no_polish:
            # the joint solve's first stage (to the polish's start) runs in float32
            method = "FISTA (first stage float32)"
        label = f"convexrelu {method} (float64)" if args.no_polish else \
            f"convexrelu {method} + Newton polish (float64)"
        rows = [(label, ours, evaluate(progs, ours))]
    else:
        ours = run_relu_fast(progs, cap)
        rows = [("convexrelu relu (interior point / working set + certificate)", ours,
                 evaluate(progs, ours))]
    if not args.skip_scnn:
        r = run_capped(_scnn_child, (progs, args.lam, sdt), cap)
        ev = evaluate(progs, r)
        name = f"scnn R-FISTA tol 1e-10 ({sdt})" if formulation == "gated_relu" else \
            f"scnn augmented Lagrangian ({sdt})"
        rows.append((name, r, ev))
        if ev is not None:
            diff = abs(ev["raw_obj"] - r["scnn_obj"]) / abs(r["scnn_obj"])
            checks.append((problem, formulation, r["scnn_obj"], ev["raw_obj"], diff))
            _progress(f"   scnn objective check: scnn {r['scnn_obj']:.10g}, ours at scnn's "
                      f"weights {ev['raw_obj']:.10g}, rel. diff {diff:.1e}")
    r = run_capped(_cvxpy_child, (progs,), cap)
    rows.append(("cvxpy + Clarabel (tol 1e-10)", r, evaluate(progs, r)))
    lines = []
    for label, res, ev in rows:
        lines.append(table_row(problem, label, res, ev, ours["time"]))
        _progress(lines[-1])
    return lines


def main(argv=None, command=None) -> int:
    args = _parse(argv)
    command = command or "python benchmarks/bench_solvers.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    warnings.simplefilter("ignore")
    _pin()
    scnn_note = ""
    if not args.skip_scnn:
        try:  # imported here once, so that every forked child has it
            import scnn.optimize  # noqa: F401
        except ImportError:
            args.skip_scnn = True
            scnn_note = "scnn (pyscnn) is not installed: its rows are omitted."
    import convexrelu.solvers  # noqa: F401

    head = ["| problem | solver | time to 1e-6 (s) | objective | rel. gap | neurons | "
            "time ratio |", "|---|---|---|---|---|---|---|"]
    lines = [f"Command: `{command}`", ""] + _header(args, scnn_note)
    checks, eff = [], []
    t_start = time.perf_counter()
    try:
        if not args.skip_gated:
            lines += ["### Gated ReLU", ""] + head
            for pb in problems(args.quick, args.problems):
                progs = build(pb.X, pb.y, pb.bias, pb.P, "gated_relu", args.lam)
                name = f"{pb.name} ({progs[0].n_patterns} patterns)"
                _progress(f"== gated: {name}, {len(progs)} program(s)")
                lines += _solve_rows(progs, "gated_relu", name, args, pb.scnn_dtype, checks)
                reps = 20 if args.quick else 200
                eff.append((name + (" (one of its 10 programs)" if len(progs) > 1 else ""),
                            *per_iteration(progs[0], reps)))
        relu = [(pb, pb.P) for pb in problems(args.quick, args.relu_problems)]
        if args.relu_patterns:
            dia = problems(args.quick, ["diabetes"])[0]
            relu += [(dia._replace(name="diabetes, bias, P=%d" % P), P)
                     for P in args.relu_patterns]
        if relu:
            lines += ["", "### ReLU (cone-constrained)", ""] + head
        for pb, P in relu:
            progs = build(pb.X, pb.y, pb.bias, P, "relu", args.lam)
            name = f"{pb.name} ({progs[0].n_patterns} patterns)"
            _progress(f"== ReLU: {name}, {len(progs)} program(s)")
            lines += _solve_rows(progs, "relu", name, args, pb.scnn_dtype, checks)
    except KeyboardInterrupt:
        lines += ["", "**Interrupted**: the rows above are what was computed."]
    if eff:
        lines += ["", "### Per-iteration efficiency (gated FISTA, float64, numpy)", "",
                  "| problem | one iteration (ms) | forward + adjoint products (ms) | ratio |",
                  "|---|---|---|---|"]
        lines += [f"| {name} | {1e3 * t_it:.3f} | {1e3 * t_prod:.3f} | {t_it / t_prod:.2f} |"
                  for name, t_it, t_prod in eff]
    if checks:
        worst = max(checks, key=lambda c: c[4])
        lines += ["", "scnn objective check (scnn's own objective at its weights, its internal "
                  "model and dtype, vs ours at the same weights): largest relative difference "
                  f"{worst[4]:.1e} ({worst[0]}, {worst[1]}; scnn {worst[2]:.10g}, ours "
                  f"{worst[3]:.10g}) over {len(checks)} runs."]
    lines += ["", f"Total wall time {time.perf_counter() - t_start:.0f} s."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_atomic(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: exact enumeration of activation patterns (cells per second, peak memory).

Times :func:`convexrelu.enumerate_patterns` on Gaussian data (fixed seed) for
``(n_samples, rank)`` in {(1000, 3) = 2-D data with a bias, (200, 3), (100, 4), (40, 5)},
and compares it, on smaller instances, with a plain incremental-LP enumerator written
here: keep the sign vectors of the cells of the first ``k`` hyperplanes, extend each by
``+1`` and ``-1`` for hyperplane ``k + 1`` and keep the extension iff the LP

.. math::

    \\max_{u, t}\\ t \\quad \\text{s.t.}\\quad s_i z_i^\\top u \\ge t\\ (i \\le k + 1),\\quad
    \\|u\\|_\\infty \\le 1,\\quad t \\le 1

(``z_i`` the normalised rows) has ``t* > 1e-12``: one scipy HiGHS LP per candidate cell
per added hyperplane. Both are run on the same instance and their cell sets are checked
to be equal; the ratio of cells per second is reported.

Timings are wall-clock (``time.perf_counter``), best of several runs for runs under a
second. Peak memory is ``tracemalloc``'s peak (numpy registers its array buffers with
tracemalloc) during a separate, untimed run: the memory the enumeration allocates, not the
process RSS. BLAS is pinned to one thread (``OMP_NUM_THREADS`` etc. set to 1 before numpy
is imported) unless the environment already sets it; the header reports what was used.

Usage::

    python -m benchmarks [--quick] [--out results.md]
    python benchmarks/bench_enumeration.py [--quick] [--out results.md]
    convexrelu bench [--quick]
"""

from __future__ import annotations

import os
import sys

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_NUMPY_WAS_IMPORTED = "numpy" in sys.modules
_PINNED = [v for v in _THREAD_VARS if v not in os.environ]
for _v in _PINNED:
    os.environ[_v] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

#: (label, n_samples, n_features, bias) of the main table; rank = n_features + bias
CASES = [
    ("2-D + bias", 1000, 2, True),
    ("3-D", 200, 3, False),
    ("4-D", 100, 4, False),
    ("5-D", 40, 5, False),
]
#: instances small enough for the incremental-LP enumerator (about 40 s in all)
LP_CASES = [
    ("3-D", 25, 3, False),
    ("4-D", 15, 4, False),
    ("5-D", 12, 5, False),
]
QUICK_CASES = [
    ("2-D + bias", 200, 2, True),
    ("3-D", 60, 3, False),
    ("4-D", 25, 4, False),
    ("5-D", 14, 5, False),
]
QUICK_LP_CASES = [
    ("3-D", 10, 3, False),
    ("4-D", 8, 4, False),
]
SEED = 0


def gaussian_data(n_samples: int, n_features: int, seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n_samples, n_features))


# --------------------------------------------------------------------------- reference
def incremental_lp_patterns(Xa: np.ndarray, tol: float = 1e-12) -> tuple[np.ndarray, int]:
    """Cells of the central arrangement of the rows of ``Xa`` by incremental LPs.

    Returns ``(masks, n_lps)`` with ``masks`` (n_cells, n_samples) bool. Rows must be
    nonzero. Deliberately plain: no witness reuse, no pruning.
    """
    from scipy.optimize import linprog

    n, d = Xa.shape
    Z = Xa / np.linalg.norm(Xa, axis=1, keepdims=True)
    c = np.r_[np.zeros(d), -1.0]
    bounds = [(-1.0, 1.0)] * d + [(None, 1.0)]
    cells = [np.array([1.0]), np.array([-1.0])]
    n_lps = 0
    for k in range(1, n):
        Zk = Z[: k + 1]
        extended = []
        for s in cells:
            for sk in (1.0, -1.0):
                t = np.r_[s, sk]
                A = np.hstack([-(t[:, None] * Zk), np.ones((k + 1, 1))])
                res = linprog(c, A_ub=A, b_ub=np.zeros(k + 1), bounds=bounds, method="highs")
                n_lps += 1
                if res.status == 0 and -res.fun > tol:
                    extended.append(t)
        cells = extended
    return np.array(cells) > 0, n_lps


# --------------------------------------------------------------------------- measuring
def _time_enumeration(X, bias, min_total=1.0, max_repeat=5):
    """Best wall time of enumerate_patterns over repeats (one run if it takes > 1 s)."""
    from convexrelu import enumerate_patterns

    best, total, reps, pats = np.inf, 0.0, 0, None
    while reps < max_repeat and (reps == 0 or total < min_total):
        t0 = time.perf_counter()
        pats = enumerate_patterns(X, bias=bias, max_patterns=None, progress=False)
        dt = time.perf_counter() - t0
        best, total, reps = min(best, dt), total + dt, reps + 1
    return pats, best, reps


def _peak_memory(X, bias):
    from convexrelu import enumerate_patterns

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        enumerate_patterns(X, bias=bias, max_patterns=None, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


_LIMITER = []


def _limit_threads():
    """Pin BLAS to one thread at run time (when numpy was imported before this module)."""
    if not _LIMITER:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            _LIMITER.append(None)
        else:
            _LIMITER.append(threadpool_limits(limits=1))
    return _LIMITER[0]


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def _machine_lines(command: str) -> list[str]:
    ncpu = os.cpu_count()
    try:
        avail = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        avail = ncpu
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads = ", ".join(f"{v}={os.environ.get(v)}" for v in _THREAD_VARS)
    origin = "set to 1 by the benchmark" if _PINNED else "from the environment"
    if _NUMPY_WAS_IMPORTED and _PINNED:
        origin += (" and applied with threadpoolctl, numpy having been imported first"
                   if _limit_threads() is not None else
                   " (numpy was already imported, so the setting may not apply)")
    blas = ""
    try:
        from threadpoolctl import threadpool_info

        info = threadpool_info()
        blas = "; BLAS threads in use: " + ", ".join(
            f"{i.get('internal_api')}={i.get('num_threads')}" for i in info) if info else ""
    except ImportError:
        pass
    import scipy

    import convexrelu

    return [
        f"- command: `{command}`",
        f"- machine: {model}; nproc = {avail} (of {ncpu}); Python {platform.python_version()},"
        f" numpy {np.__version__}, scipy {scipy.__version__}, convexrelu "
        f"{convexrelu.__version__}",
        f"- threads: {threads} ({origin}){blas}",
        f"- data: standard Gaussian, `np.random.default_rng({SEED})`; timings are wall-clock, "
        "best of up to 5 runs for runs under 1 s; peak memory is tracemalloc's peak "
        "(numpy buffers included) in a separate untimed run",
    ]


def run_benchmark(cases, lp_cases, *, log=print) -> str:
    """Run both tables and return them as markdown (partial tables on Ctrl-C)."""
    from convexrelu import cover_bound
    from convexrelu._validation import augment

    rows = []
    lp_rows = []
    interrupted = False
    try:
        for label, n, d, bias in cases:
            X = gaussian_data(n, d)
            rank = d + int(bias)
            log(f"[bench] enumerate_patterns: {label}, n={n}, rank={rank} ...")
            pats, best, reps = _time_enumeration(X, bias)
            peak = _peak_memory(X, bias)
            rows.append(
                f"| {label} | {n} | {rank} | {pats.n_patterns:,} | "
                f"{cover_bound(n, rank):,} | {best:.3f} | {reps} | "
                f"{_fmt_rate(pats.n_patterns / best)} | {peak / 2**20:.1f} |"
            )
        if lp_cases:  # pay scipy's import and HiGHS start-up outside the timings
            incremental_lp_patterns(gaussian_data(4, 3))
        for label, n, d, bias in lp_cases:
            X = gaussian_data(n, d)
            Xa = augment(X, bias)
            rank = d + int(bias)
            log(f"[bench] incremental LP vs enumerate_patterns: {label}, n={n}, rank={rank} ...")
            t0 = time.perf_counter()
            lp_masks, n_lps = incremental_lp_patterns(Xa)
            t_lp = time.perf_counter() - t0
            pats, best, _ = _time_enumeration(X, bias)
            same = (set(map(bytes, np.packbits(lp_masks, axis=1)))
                    == set(map(bytes, np.packbits(pats.masks.T, axis=1))))
            r_lp = len(lp_masks) / t_lp
            r_en = pats.n_patterns / best
            lp_rows.append(
                f"| {label} | {n} | {rank} | {pats.n_patterns:,} | "
                f"{'yes' if same else 'NO'} | {n_lps:,} | {t_lp:.2f} | {_fmt_rate(r_lp)} | "
                f"{best * 1e3:.2f} ms | {_fmt_rate(r_en)} | {r_en / r_lp:,.0f}x |"
            )
    except KeyboardInterrupt:
        interrupted = True
        log("[bench] interrupted: reporting the rows already measured")
    out = [
        "### Exact enumeration: `enumerate_patterns`",
        "",
        "| data | n_samples | rank | cells | Cover bound | time (s) | runs | cells/s "
        "| peak MB (tracemalloc) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "### Against a plain incremental-LP enumerator (same instances)",
        "",
        "| data | n_samples | rank | cells | same cells | LPs | LP time (s) | LP cells/s "
        "| enumerate_patterns time | cells/s | ratio |",
        "|---|---:|---:|---:|:-:|---:|---:|---:|---:|---:|---:|",
        *lp_rows,
    ]
    if interrupted:
        out += ["", "_Interrupted: the tables hold only the cases that finished._"]
    return "\n".join(out) + "\n"


def main(argv=None, *, command: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark exact enumeration of activation patterns (cells/s, memory) "
                    "against a plain incremental-LP enumerator.")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (a few seconds): checks that the benchmark runs")
    parser.add_argument("--out", metavar="PATH", default=None,
                        help="also write the markdown table to this file (atomically)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if command is None:
        command = " ".join(["python", "benchmarks/bench_enumeration.py",
                            *map(shlex.quote, argv)])
    cases, lp_cases = (QUICK_CASES, QUICK_LP_CASES) if args.quick else (CASES, LP_CASES)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if _NUMPY_WAS_IMPORTED and _PINNED:
        _limit_threads()
    t0 = time.perf_counter()
    tables = run_benchmark(cases, lp_cases, log=log)
    text = "\n".join([
        "## Benchmark: activation-pattern enumeration" + (" (--quick)" if args.quick else ""),
        "",
        *_machine_lines(command),
        f"- total benchmark time: {time.perf_counter() - t0:.1f} s",
        "",
        tables,
    ])
    print(text)
    if args.out is not None:
        from convexrelu._io import atomic_write_text

        path = atomic_write_text(args.out, text)
        print(f"written {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # `python benchmarks/bench_enumeration.py`: make the package importable from a checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())

"""Benchmark: exact certificate of a trained network on 1,000 points in 2-D with bias.

The arrangement of ``[X, 1]`` has ``2 (1 + 999 + C(999, 2)) = 999,002`` activation
patterns. The script trains a scikit-learn ``MLPRegressor`` (lbfgs), then times
(a) the exact enumeration and (b) the certificate over all patterns (bound-then-refine,
docs/mathematics.rst §8.5), and reports the peak memory (``tracemalloc`` for Python allocations and
``ru_maxrss`` for the process).

With ``--listed --n-jobs N`` the listed patterns are evaluated in chunks by ``N`` joblib
workers (loky processes). With ``--listed --dask`` the certificate is computed twice, here
(one process) and on a Dask cluster (``--scheduler ADDRESS``, or a ``LocalCluster`` of
``--dask-workers`` one-thread worker processes) through
``joblib.parallel_config(backend="dask")``, and the two bounds are compared (they must be
identical).

Run: ``python benchmarks/bench_certify.py [--n-samples 1000] [--seed 0] [--listed]
[--n-jobs N] [--dask [--dask-workers 2] [--scheduler tcp://host:8786]]``.

Measured 2026-12-02 on the 2-core development machine shared with other jobs (load
average 10-13), ``OMP_NUM_THREADS=1``, ``--dask``, identical bounds every time:
``--n-samples 300`` (89,702 patterns) 70 s in one process, 120 s on a two-worker
LocalCluster; ``--n-samples 500`` (249,502 patterns) 306 s and 234 s. ``--n-samples 300
--listed --n-jobs 2``: 103 s. Measured 2026-12-03 (load average about 1, other fits
running beside it), ``--dask`` at the default 1,000 points (999,002 patterns): 379 s in one
process, 282 s on the two-worker LocalCluster (1.35x), the identical bound and maximiser.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
import warnings

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-neurons", type=int, default=50)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--listed", action="store_true",
                        help="enumerate and stream all patterns instead of the 2-D sweep")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="joblib workers for the listed patterns (default: one process)")
    parser.add_argument("--dask", action="store_true",
                        help="also certify on a Dask cluster and compare (implies --listed)")
    parser.add_argument("--dask-workers", type=int, default=2,
                        help="workers of the LocalCluster started by --dask")
    parser.add_argument("--scheduler", default=None,
                        help="address of a running Dask scheduler (instead of a LocalCluster)")
    args = parser.parse_args(argv)
    if args.dask:
        args.listed = True

    from sklearn.neural_network import MLPRegressor

    from convexrelu import certify, enumerate_patterns

    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.n_samples, 2))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.standard_normal(args.n_samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPRegressor(hidden_layer_sizes=(args.n_neurons,), alpha=args.alpha,
                           solver="lbfgs", max_iter=3000, tol=1e-10,
                           random_state=args.seed).fit(X, y)

    if not args.dask:  # tracing slows the allocations down: off when comparing times
        tracemalloc.start()
    t0 = time.perf_counter()
    if args.listed:  # enumerate every pattern and stream them (bound-then-refine)
        pats = enumerate_patterns(X, bias=True, progress=False)
    else:  # patterns="exact": two features with a free bias use the exact angular sweep
        pats = "exact"
    t1 = time.perf_counter()
    cert = certify(mlp, X, y, patterns=pats, n_jobs=args.n_jobs)
    t2 = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()  # (0, 0) when not tracing
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)

    print(f"n_samples={args.n_samples}  d=2 + bias  n_patterns={cert.n_patterns_checked}  "
          f"method={'listed patterns' if args.listed else 'angular sweep'}")
    print(f"enumeration        {t1 - t0:8.2f} s")
    print(f"certificate        {t2 - t1:8.2f} s  (patterns refined exactly: "
          f"{cert.info.get('n_refined')}, SOCP fallbacks: {cert.info.get('n_fallbacks')})")
    print(f"total              {t2 - t0:8.2f} s   (goal <= 30 s)")
    print(f"peak traced memory {peak / 2**20:8.1f} MiB; max RSS {rss:.1f} MiB (goal <= 2 GB)")
    print(cert.summary(), flush=True)
    if args.dask:
        _dask_row(args, mlp, X, y, pats, cert, t2 - t1)
    return 0


def _dask_row(args, mlp, X, y, pats, local, local_time):
    """The same certificate on a Dask cluster; its time beside the local one."""
    import joblib
    from distributed import Client, LocalCluster

    from convexrelu import certify

    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.dask_workers, processes=True,
                               threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
    try:
        n_workers = len(client.scheduler_info()["workers"])
        t0 = time.perf_counter()
        with joblib.parallel_config(backend="dask"):
            dist = certify(mlp, X, y, patterns=pats)
        t = time.perf_counter() - t0
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    from convexrelu._parallel import _REGEN_MARGIN

    ship = "gates (the workers regenerate the masks)" if pats.min_margin > _REGEN_MARGIN \
        else "packed masks (gates too close to a cell boundary to regenerate them)"
    print(f"chunks shipped as {ship}; smallest normalised margin {pats.min_margin:.3g}")
    same = (dist.lower_bound == local.lower_bound and dist.gap == local.gap
            and dist.info["pattern_index"] == local.info["pattern_index"])
    print(f"certificate, one process        {local_time:8.2f} s   lower bound "
          f"{local.lower_bound:.17g}")
    print(f"certificate, Dask ({n_workers} workers)   {t:8.2f} s   lower bound "
          f"{dist.lower_bound:.17g}   ({'identical' if same else 'DIFFERENT'} bound and "
          f"maximiser; speed-up {local_time / t:.2f}x)")


if __name__ == "__main__":
    raise SystemExit(main())

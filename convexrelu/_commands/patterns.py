"""``convexrelu patterns FILE``: the activation patterns of a data file.

Reads a table (CSV with an optional header row, .npy, or .npz holding ``X``), counts or
samples the activation patterns of its rows (of ``[X, 1]`` with ``--bias``) and prints
what was found. A CSV or .npy table may hold a target column, which is not a feature:
name it with ``--target COLUMN`` (it is dropped, as ``convexrelu fit`` and ``certify``
do) or pass ``--no-target`` to use every column; one of the two is required. In an .npz
file ``X`` holds the features (a ``y`` array is never used). ``--out`` writes the
patterns (bit-packed masks and gates) to an .npz file atomically, readable with
``ActivationPatterns.from_arrays(np.load(path))``.
"""

from __future__ import annotations

import argparse
import time

HELP = "enumerate (or sample) the activation patterns of a data file"

_DEFAULT_MAX_PATTERNS = 2_000_000  # the library's default (enumerate_patterns)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE",
                        help="data: .csv/.tsv (header row optional), .npy, or .npz with X")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--target", metavar="COLUMN", default=None,
                     help="name or index of the target column, dropped from the features "
                          "(as in `convexrelu fit`); for .csv/.tsv/.npy data pass this or "
                          "--no-target")
    who.add_argument("--no-target", action="store_true",
                     help="every column of a .csv/.tsv/.npy file is a feature (the file "
                          "holds no target column)")
    parser.add_argument("--bias", action="store_true",
                        help="patterns of [X, 1] (neurons with a hidden bias)")
    parser.add_argument("--sample", metavar="N", type=int, default=None,
                        help="sample N Gaussian gates instead of enumerating exactly")
    parser.add_argument("--random-state", metavar="S", type=int, default=None,
                        help="seed for --sample")
    parser.add_argument("--max-patterns", metavar="M", type=int, default=_DEFAULT_MAX_PATTERNS,
                        help="refuse an exact enumeration with more than M patterns "
                             f"(default {_DEFAULT_MAX_PATTERNS:,})")
    parser.add_argument("--out", metavar="PATH", default=None,
                        help="write masks and gates to this .npz file (atomically)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from .. import __version__
    from .._io import atomic_savez, load_table
    from .._validation import augment, check_data_matrix
    from ..arrangements import cover_bound, enumerate_patterns, sample_patterns
    from ..cli import UsageError

    try:
        X, _, _ = load_table(args.file, target=args.target)
        X = check_data_matrix(X, name=f"the data in {args.file}")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.target is None and not args.no_target and \
            Path(args.file).suffix.lower() != ".npz":
        raise UsageError(f"which columns of {args.file} are features? Pass --target COLUMN "
                         "to drop the target column (as for `convexrelu fit`), or "
                         "--no-target if every column is a feature.")
    if args.sample is not None and args.sample < 1:
        raise UsageError(f"--sample must be a positive number of gates; got {args.sample}.")
    if args.max_patterns < 1:
        raise UsageError(f"--max-patterns must be >= 1; got {args.max_patterns}.")
    if args.random_state is not None and args.sample is None:
        raise UsageError("--random-state only applies with --sample N; exact enumeration "
                         "is deterministic.")

    n_samples, n_features = X.shape
    rank = int(np.linalg.matrix_rank(augment(X, args.bias)))
    t0 = time.perf_counter()
    try:
        if args.sample is None:
            pats = enumerate_patterns(X, bias=args.bias, max_patterns=args.max_patterns)
        else:
            pats = sample_patterns(X, args.sample, random_state=args.random_state,
                                   bias=args.bias)
    except ValueError as exc:  # PatternLimitError is a ValueError
        raise UsageError(str(exc).replace("sample_patterns(X, n_patterns)", "--sample N")
                         .replace("max_patterns", "--max-patterns")) from None
    elapsed = time.perf_counter() - t0

    kind = "exact" if pats.exact else f"sampled ({args.sample:,} gates)"
    print(f"data            {args.file}")
    print(f"n_samples       {n_samples}")
    print(f"n_features      {n_features}{' (+ bias)' if args.bias else ''}")
    print(f"rank            {rank}")
    print(f"n_patterns      {pats.n_patterns:,}  [{kind}]")
    if not pats.exact:
        print(f"cover_bound     {cover_bound(n_samples, rank):,}  (upper bound on the exact "
              "count; sampled sets usually miss thin cells)")
    print(f"time            {elapsed:.3f} s")
    print(f"thinnest margin {pats.min_margin:.3e}  (min |x_i^T g| / (|x_i| |g|) over cells)")
    if args.out is not None:
        header = dict(command="patterns", version=__version__, data=str(args.file),
                      target=args.target,
                      n_samples=n_samples, n_features=n_features, bias=bool(args.bias),
                      rank=rank, n_patterns=pats.n_patterns, exact=bool(pats.exact),
                      sample=args.sample, random_state=args.random_state,
                      min_margin=float(pats.min_margin))
        try:
            path = atomic_savez(args.out, header=header, **pats.to_arrays())
        except OSError as exc:
            raise UsageError(f"could not write {args.out!r}: {exc}") from None
        print(f"written         {path}")
    return 0

r"""
One-dimensional regression: convex optimum vs gradient descent
==============================================================

Networks of widths 2, 10 and 50 are trained by full-batch gradient descent on 1-D data
and compared with the global optimum of the convex program; every final network is
certified. The wide nets reach the optimum, the narrow one stays above it, and the
certificate says by how much.

The numbers are computed when the example runs (they are printed below). Run it with
``python examples/one_d_regression.py [--out DIR] [--fast]`` or ``convexrelu demo
one_d_regression``; it prints what it measures and writes its figure into ``DIR``
(default ``./convexrelu-demo``). ``--fast`` is a smaller, quicker version. The code is
in :mod:`convexrelu.demos.one_d_regression`.
"""

import argparse
import sys
from pathlib import Path

from convexrelu.demos import one_d_regression


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=one_d_regression.DESCRIPTION)
    parser.add_argument("--out", metavar="DIR", default="convexrelu-demo",
                        help="folder for the figures (default: ./convexrelu-demo)")
    parser.add_argument("--fast", action="store_true", help="a smaller, quicker version")
    args = parser.parse_args(argv)
    return one_d_regression.run(Path(args.out), fast=args.fast)


if __name__ == "__main__":
    status = main()
    if status:  # exit only on failure: sphinx-gallery runs this file in-process
        sys.exit(status)

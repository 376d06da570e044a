r"""
Frei & Gu: a proxy-PL inequality and the ReLU contrast
======================================================

The proxy-PL ratio of a leaky-ReLU network on linearly separable data stays above its
floor :math:`c\gamma` and the training error is driven to zero; a ReLU network from the
same start stalls (:doc:`/mathematics` §6).

The numbers are computed when the example runs (they are printed below). Run it with
``python examples/proxy_pl.py [--out DIR] [--fast]`` or ``convexrelu demo proxy_pl``; it
prints what it measures and writes its figure into ``DIR`` (default ``./convexrelu-
demo``). ``--fast`` is a smaller, quicker version. The code is in
:mod:`convexrelu.demos.proxy_pl`.
"""

import argparse
import sys
from pathlib import Path

from convexrelu.demos import proxy_pl


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=proxy_pl.DESCRIPTION)
    parser.add_argument("--out", metavar="DIR", default="convexrelu-demo",
                        help="folder for the figures (default: ./convexrelu-demo)")
    parser.add_argument("--fast", action="store_true", help="a smaller, quicker version")
    args = parser.parse_args(argv)
    return proxy_pl.run(Path(args.out), fast=args.fast)


if __name__ == "__main__":
    status = main()
    if status:  # exit only on failure: sphinx-gallery runs this file in-process
        sys.exit(status)

r"""
A narrow network stuck above the optimum
========================================

Gradient descent on a width-2 network converges to a stationary point well above the
global optimum. The training curve does not show it; the certificate does, and names the
neuron whose addition lowers the objective (:doc:`/mathematics` §4.4, §4.5).

The numbers are computed when the example runs (they are printed below). Run it with
``python examples/stuck_gradient_descent.py [--out DIR] [--fast]`` or ``convexrelu demo
stuck_gradient_descent``; it prints what it measures and writes its figure into ``DIR``
(default ``./convexrelu-demo``). ``--fast`` is a smaller, quicker version. The code is
in :mod:`convexrelu.demos.stuck_gradient_descent`.
"""

import argparse
import sys
from pathlib import Path

from convexrelu.demos import stuck_gradient_descent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=stuck_gradient_descent.DESCRIPTION)
    parser.add_argument("--out", metavar="DIR", default="convexrelu-demo",
                        help="folder for the figures (default: ./convexrelu-demo)")
    parser.add_argument("--fast", action="store_true", help="a smaller, quicker version")
    args = parser.parse_args(argv)
    return stuck_gradient_descent.run(Path(args.out), fast=args.fast)


if __name__ == "__main__":
    status = main()
    if status:  # exit only on failure: sphinx-gallery runs this file in-process
        sys.exit(status)

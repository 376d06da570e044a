r"""
Wang & Pilanci: neurons reach the extreme points of the dual
============================================================

A bias-free ReLU net is trained by normalised gradient descent on orthogonally separable
data. The normalised margin approaches :math:`1/R_{\mathrm{mm}}` of the convex max-
margin program and the neurons turn to the maximisers of :math:`\pm\lambda^\top(Xu)_+`
(:doc:`/mathematics` §5).

The numbers are computed when the example runs (they are printed below). Run it with
``python examples/dual_extreme_points.py [--out DIR] [--fast]`` or ``convexrelu demo
dual_extreme_points``; it prints what it measures and writes its figure into ``DIR``
(default ``./convexrelu-demo``). ``--fast`` is a smaller, quicker version. The code is
in :mod:`convexrelu.demos.dual_extreme_points`.
"""

import argparse
import sys
from pathlib import Path

from convexrelu.demos import dual_extreme_points


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=dual_extreme_points.DESCRIPTION)
    parser.add_argument("--out", metavar="DIR", default="convexrelu-demo",
                        help="folder for the figures (default: ./convexrelu-demo)")
    parser.add_argument("--fast", action="store_true", help="a smaller, quicker version")
    args = parser.parse_args(argv)
    return dual_extreme_points.run(Path(args.out), fast=args.fast)


if __name__ == "__main__":
    status = main()
    if status:  # exit only on failure: sphinx-gallery runs this file in-process
        sys.exit(status)

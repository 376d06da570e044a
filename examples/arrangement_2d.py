r"""
The arrangement of 2-D data: exact cells vs sampled gates
=========================================================

The activation patterns of 2-D data with a bias are the cells of a line arrangement.
They are enumerated exactly and compared with Cover's formula and with what Gaussian
gates find: thin cells are missed, so a program or certificate over sampled patterns is
only a restriction, not a proof (:doc:`/mathematics` §2.2, §2.3).

The numbers are computed when the example runs (they are printed below). Run it with
``python examples/arrangement_2d.py [--out DIR] [--fast]`` or ``convexrelu demo
arrangement_2d``; it prints what it measures and writes its figure into ``DIR`` (default
``./convexrelu-demo``). ``--fast`` is a smaller, quicker version. The code is in
:mod:`convexrelu.demos.arrangement_2d`.
"""

import argparse
import sys
from pathlib import Path

from convexrelu.demos import arrangement_2d


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=arrangement_2d.DESCRIPTION)
    parser.add_argument("--out", metavar="DIR", default="convexrelu-demo",
                        help="folder for the figures (default: ./convexrelu-demo)")
    parser.add_argument("--fast", action="store_true", help="a smaller, quicker version")
    args = parser.parse_args(argv)
    return arrangement_2d.run(Path(args.out), fast=args.fast)


if __name__ == "__main__":
    status = main()
    if status:  # exit only on failure: sphinx-gallery runs this file in-process
        sys.exit(status)

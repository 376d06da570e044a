r"""
Robin, Scaman & Lelarge: Rayleigh quotients below over-parameterisation
=======================================================================

An under-parameterised student (fewer parameters than samples) has a singular tangent
kernel, yet the Rayleigh quotient in the residual direction stays bounded away from zero
and the loss decays linearly (:doc:`/mathematics` §7).

The numbers are computed when the example runs (they are printed below). Run it with
``python examples/rayleigh_quotient.py [--out DIR] [--fast]`` or ``convexrelu demo
rayleigh_quotient``; it prints what it measures and writes its figure into ``DIR``
(default ``./convexrelu-demo``). ``--fast`` is a smaller, quicker version. The code is
in :mod:`convexrelu.demos.rayleigh_quotient`.
"""

import argparse
import sys
from pathlib import Path

from convexrelu.demos import rayleigh_quotient


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=rayleigh_quotient.DESCRIPTION)
    parser.add_argument("--out", metavar="DIR", default="convexrelu-demo",
                        help="folder for the figures (default: ./convexrelu-demo)")
    parser.add_argument("--fast", action="store_true", help="a smaller, quicker version")
    args = parser.parse_args(argv)
    return rayleigh_quotient.run(Path(args.out), fast=args.fast)


if __name__ == "__main__":
    status = main()
    if status:  # exit only on failure: sphinx-gallery runs this file in-process
        sys.exit(status)

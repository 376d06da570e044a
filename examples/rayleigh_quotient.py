"""Teaching demo `rayleigh_quotient` (see `convexrelu.demos.rayleigh_quotient`).

Run `python examples/rayleigh_quotient.py [--out DIR] [--fast]`, or equivalently
`convexrelu demo rayleigh_quotient [--out DIR] [--fast]`. Prints the measured numbers and writes the
PNG figure(s) into DIR (default: ./convexrelu-demo).
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
    sys.exit(main())

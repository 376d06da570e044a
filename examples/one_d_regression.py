"""Teaching demo `one_d_regression` (see `convexrelu.demos.one_d_regression`).

Run `python examples/one_d_regression.py [--out DIR] [--fast]`, or equivalently
`convexrelu demo one_d_regression [--out DIR] [--fast]`. Prints the measured numbers and writes the
PNG figure(s) into DIR (default: ./convexrelu-demo).
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
    sys.exit(main())

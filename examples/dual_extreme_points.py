"""Teaching demo `dual_extreme_points` (see `convexrelu.demos.dual_extreme_points`).

Run `python examples/dual_extreme_points.py [--out DIR] [--fast]`, or equivalently
`convexrelu demo dual_extreme_points [--out DIR] [--fast]`. Prints the measured numbers
and writes the PNG figure(s) into DIR (default: ./convexrelu-demo).
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
    sys.exit(main())

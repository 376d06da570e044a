"""Teaching demo `stuck_gradient_descent` (see `convexrelu.demos.stuck_gradient_descent`).

Run `python examples/stuck_gradient_descent.py [--out DIR] [--fast]`, or equivalently
`convexrelu demo stuck_gradient_descent [--out DIR] [--fast]`. Prints the measured
numbers and writes the PNG figure(s) into DIR (default: ./convexrelu-demo).
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
    sys.exit(main())

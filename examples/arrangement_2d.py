"""Teaching demo `arrangement_2d` (see `convexrelu.demos.arrangement_2d`).

Run `python examples/arrangement_2d.py [--out DIR] [--fast]`, or equivalently
`convexrelu demo arrangement_2d [--out DIR] [--fast]`. Prints the measured numbers and writes the
PNG figure(s) into DIR (default: ./convexrelu-demo).
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
    sys.exit(main())

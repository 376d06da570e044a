"""Teaching demo `proxy_pl` (see `convexrelu.demos.proxy_pl`).

Run `python examples/proxy_pl.py [--out DIR] [--fast]`, or equivalently
`convexrelu demo proxy_pl [--out DIR] [--fast]`. Prints the measured numbers and writes the
PNG figure(s) into DIR (default: ./convexrelu-demo).
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
    sys.exit(main())

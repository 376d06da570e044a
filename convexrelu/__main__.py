"""``python -m convexrelu``: the command-line tool (the ``convexrelu`` command)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m benchmarks [--quick] [--out PATH]``: the enumeration benchmark.

The other benchmark scripts of this folder (``bench_*.py``) are listed at the end; run one
with ``python -m benchmarks.<name>``.
"""

import shlex
import sys
from pathlib import Path

from .bench_enumeration import main


def _others() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("bench_*.py") if p.stem != "bench_enumeration")


if __name__ == "__main__":
    argv = sys.argv[1:]
    rc = main(argv, command=" ".join(["python -m benchmarks", *map(shlex.quote, argv)]))
    others = _others()
    if others:
        print("Other benchmarks in this folder: "
              + ", ".join(f"`python -m benchmarks.{name}`" for name in others), file=sys.stderr)
    sys.exit(rc)

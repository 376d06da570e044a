"""``convexrelu bench [--quick]``: run the enumeration benchmark of a source checkout.

The benchmarks are not installed with the package; this command looks for
``benchmarks/bench_enumeration.py`` next to the ``convexrelu`` package folder (an editable
install or a checkout) and runs its ``main``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
from pathlib import Path

HELP = "time exact pattern enumeration against an incremental-LP enumerator (source checkout)"


def _script() -> Path:
    return Path(__file__).resolve().parents[2] / "benchmarks" / "bench_enumeration.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (a few seconds): checks that the benchmark runs")
    parser.add_argument("--out", metavar="PATH", default=None,
                        help="also write the markdown table to this file (atomically)")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    script = _script()
    if not script.is_file():
        raise UsageError(
            f"the benchmarks are not installed with the package and {script} does not exist. "
            "Run this command from a source checkout (git clone ...; pip install -e .), or "
            "run `python -m benchmarks` in the repository root."
        )
    spec = importlib.util.spec_from_file_location("_convexrelu_bench_enumeration", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = (["--quick"] if args.quick else []) + (["--out", args.out] if args.out else [])
    return int(module.main(argv, command=" ".join(["convexrelu bench",
                                                   *map(shlex.quote, argv)])) or 0)

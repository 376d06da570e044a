"""``python -m benchmarks [SUITE] [options]``: run one benchmark suite of this folder.

Without a suite name it runs the enumeration benchmark (``--quick``, ``--out PATH``).
Suites: ``enumeration``, ``certify``, ``cvxpy``, ``solvers``, ``column_generation``,
``realdata``, ``growth``, ``bnb``, ``gpu``, ``scale``, ``restricted``; each is
``benchmarks/bench_<suite>.py`` and takes its own options (``python -m benchmarks SUITE --help``).
"""

import importlib
import inspect
import shlex
import sys
from pathlib import Path


def _suites() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(p.stem[len("bench_"):] for p in here.glob("bench_*.py"))


def main(argv) -> int:
    suites = _suites()
    name = "enumeration"
    if argv and not argv[0].startswith("-"):
        name, argv = argv[0], argv[1:]
        if name not in suites:
            print(f"unknown benchmark suite {name!r}; available: {', '.join(suites)}",
                  file=sys.stderr)
            return 2
    module = importlib.import_module(f"benchmarks.bench_{name}")
    command = " ".join(["python -m benchmarks", *([name] if name != "enumeration" else []),
                        *map(shlex.quote, argv)])
    if "command" in inspect.signature(module.main).parameters:
        rc = module.main(argv, command=command)
    else:
        rc = module.main(argv)
    if name == "enumeration":
        others = [s for s in suites if s != "enumeration"]
        print("Other suites: " + ", ".join(f"`python -m benchmarks {s}`" for s in others),
              file=sys.stderr)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

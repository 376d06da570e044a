"""Command-line interface: ``convexrelu <command> ...``.

Each sub-command lives in its own module under :mod:`convexrelu._commands`, which exposes
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. This file only
dispatches; it holds no mathematics.

Exit codes: 0 success (for ``certify``: certified optimal), 1 a negative answer (for
``certify``: not optimal or not certified), 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

__all__ = ["main", "COMMANDS"]

#: sub-command name -> module under convexrelu._commands
COMMANDS = {
    "demo": "demo",
    "patterns": "patterns",
    "fit": "fit",
    "predict": "predict",
    "certify": "certify",
    "bench": "bench",
}


from ._commands import UsageError  # noqa: E402  (one class, also under ``python -m``)


def _build_parser(modules: dict) -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="convexrelu",
        description="Globally optimal two-layer ReLU networks and their certificates. "
                    "With no arguments, runs 'convexrelu demo' (the main job: fits, "
                    "certifies, prints and plots into ./convexrelu-demo/).",
    )
    parser.add_argument("--version", action="version", version=f"convexrelu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in modules.items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
    return parser


def _load_modules() -> dict:
    modules = {}
    for name, modname in COMMANDS.items():
        try:
            modules[name] = importlib.import_module(f"convexrelu._commands.{modname}")
        except ModuleNotFoundError as exc:
            if exc.name == f"convexrelu._commands.{modname}":
                continue  # command not shipped in this build
            raise
    return modules


def main(argv=None) -> int:
    """Entry point of the ``convexrelu`` console script. Returns the exit code."""
    modules = _load_modules()
    parser = _build_parser(modules)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["demo"]  # the main job: no arguments needed
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(modules[args.command].run(args) or 0)
    except UsageError as exc:
        print(f"convexrelu {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"convexrelu {args.command}: interrupted; nothing was written.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (`convexrelu predict ... | head`): stop quietly,
        # and point stdout at devnull so that the interpreter's final flush cannot fail
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # stdout without a file descriptor
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by the pipe


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

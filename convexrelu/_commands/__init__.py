"""Sub-commands of the ``convexrelu`` CLI (one module each) and their shared helpers."""


class UsageError(Exception):
    """Bad input detected by a command; printed without a traceback, exit code 2."""

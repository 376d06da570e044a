"""One progress bar for long work: enumeration, gradient-flow training, comparisons.

Every bar of the package is made by :func:`progress_bar`, which decides once whether it
is drawn (:func:`show_progress`):

* ``progress=False``: never;
* ``progress=None`` (the default of the public functions): only for long work, and only
  when the bar's stream is interactive (a terminal, or a Jupyter kernel where tqdm draws
  a widget). In a log file or on CI, where every ``\\r`` refresh would become a line of
  the log, nothing is written;
* ``progress=True``: always; in a non-interactive stream the bar is refreshed at most
  every :data:`LOG_INTERVAL` seconds, so that a log gets a few lines, not hundreds.
"""

from __future__ import annotations

import sys

__all__ = ["progress_bar", "show_progress", "is_interactive"]

#: seconds between refreshes of a bar in a terminal
TTY_INTERVAL = 0.5
#: seconds between refreshes of an explicitly requested bar in a log file
LOG_INTERVAL = 30.0


def is_interactive(stream=None) -> bool:
    """Whether ``stream`` (default ``sys.stderr``) is shown live to a person.

    True for a terminal and for the output streams of a Jupyter kernel (where
    ``tqdm.auto`` draws a widget); False for files, pipes, captured output and CI logs.
    """
    stream = sys.stderr if stream is None else stream
    if stream is None:  # pythonw: no console at all
        return False
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False
    return type(stream).__module__.split(".")[0] == "ipykernel"


def show_progress(progress, *, large: bool = True, stream=None) -> bool:
    """Decide whether a progress bar is drawn.

    Parameters
    ----------
    progress : bool or None
        The user's choice: True always, False never, None automatic.
    large : bool, default=True
        Whether the work is long enough to deserve a bar (used when ``progress`` is None).
    stream : file-like, optional
        Where the bar would be written (default ``sys.stderr``).

    Returns
    -------
    bool
        ``progress`` when it is True or False; with None, ``large`` and the stream is
        interactive (:func:`is_interactive`).
    """
    if progress is None:
        return bool(large) and is_interactive(stream)
    return bool(progress)


def progress_bar(iterable=None, *, total=None, desc=None, unit="it", progress=None,
                 large: bool = True, leave: bool = True, file=None):
    """A ``tqdm`` bar (``tqdm.auto``) whose display is decided once by :func:`show_progress`.

    Parameters
    ----------
    iterable : iterable, optional
        Wrapped as by ``tqdm(iterable)``.
    total : int, optional
        Number of expected updates.
    desc, unit : str
        tqdm's description and unit.
    progress : bool or None, default=None
        True always, False never, None when ``large`` and the stream is interactive.
    large : bool, default=True
        Whether the work is long enough for an automatic bar.
    leave : bool, default=True
        Keep the finished bar on screen.
    file : file-like, optional
        The stream (default ``sys.stderr``).

    Returns
    -------
    tqdm.tqdm
        Disabled (it writes nothing; ``update`` and ``close`` are cheap no-ops) when no
        bar is to be drawn.
    """
    from tqdm.auto import tqdm

    stream = sys.stderr if file is None else file
    show = show_progress(progress, large=large, stream=stream)
    interval = TTY_INTERVAL if is_interactive(stream) else LOG_INTERVAL
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=file,
                disable=not show, mininterval=interval, maxinterval=max(10.0, interval))

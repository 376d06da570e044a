"""Where a warning should point: the user's line, not a frame inside the library.

A warning raised deep inside ``fit`` passes through frames of this package and of
scikit-learn (``BaseEstimator.fit`` is wrapped by ``sklearn.base._fit_context``), so a
fixed ``stacklevel`` points at whichever wrapper happens to sit there.
:func:`user_stacklevel` walks the stack instead, like ``warnings.warn``'s
``skip_file_prefixes`` (Python 3.12+ only; this works from Python 3.10).
"""

from __future__ import annotations

import contextvars
import os
import sys
import warnings
from contextlib import contextmanager

__all__ = ["kept_filters", "muted_convergence", "user_stacklevel", "warn_convergence"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: packages whose frames sit between the user's call and ours (fit wrappers, the
#: joblib loop of cross_val_score and GridSearchCV)
_WRAPPERS = ("sklearn", "joblib")


def _skipped_prefixes() -> tuple:
    prefixes = [_PACKAGE_DIR]
    for name in _WRAPPERS:
        mod = sys.modules.get(name)
        path = getattr(mod, "__file__", None)
        if path:
            prefixes.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return tuple(prefixes)


def user_stacklevel() -> int:
    """``stacklevel`` for a ``warnings.warn`` made by the caller of this function.

    The warning is attributed to the first frame outside convexrelu and scikit-learn:
    the user's line that called ``fit`` (or ``cross_val_score``, ...).

    Returns
    -------
    int
        ``1`` is the calling function itself; when every frame is inside the library
        (a library-internal caller) the outermost frame is used.
    """
    prefixes = _skipped_prefixes()
    frame = sys._getframe(1)  # the function that calls warnings.warn: stacklevel 1
    level = 1
    while frame.f_back is not None and \
            os.path.abspath(frame.f_code.co_filename).startswith(prefixes):
        frame = frame.f_back
        level += 1
    return level


@contextmanager
def kept_filters():
    """Restore the process's warning filters when a parallel section ends.

    joblib's thread backend runs the workers in this process, and
    ``warnings.catch_warnings`` (in our solvers and in other libraries) is not thread-safe
    before Python 3.14: each block restores the filter list it saved on entry, so two
    threads that leave their blocks out of order leave one block's entries in the global
    list. Measured: after 10 of 15 threaded one-vs-rest fits the filters had an extra
    entry. Process backends never touch this process's filters.
    """
    saved = warnings.filters[:]
    try:
        yield
    finally:
        if warnings.filters != saved:
            warnings.filters[:] = saved
            mutated = getattr(warnings, "_filters_mutated", None)
            if mutated is not None:  # (as catch_warnings' exit does: drop cached lookups)
                mutated()


#: whether this thread (or task) is inside :func:`muted_convergence`: a context variable,
#: so one thread's muting never touches another's, unlike the process-wide filter list
_MUTED = contextvars.ContextVar("convexrelu_muted_convergence", default=False)


@contextmanager
def muted_convergence():
    """Silence the package's own ``ConvergenceWarning`` in this thread only.

    Inner solves whose gap the caller judges itself (column generation's restricted
    programs, a gated solve's seed) used ``warnings.catch_warnings()`` +
    ``simplefilter("ignore", ConvergenceWarning)`` alone. Under joblib's thread
    backend that is racy before Python 3.14: one worker's block restores the filters
    while another's is still running, and the other's inner warning escaped to the user
    now and then. The package's warnings go through :func:`warn_convergence`, which
    checks this thread's flag first; the callers keep their ``catch_warnings`` block for
    other libraries' warnings.
    """
    token = _MUTED.set(True)
    try:
        yield
    finally:
        _MUTED.reset(token)


def warn_convergence(message: str, stacklevel: int = 1) -> None:
    """``warnings.warn(message, ConvergenceWarning, stacklevel)`` unless this thread is
    inside :func:`muted_convergence` (``stacklevel`` as for ``warnings.warn`` called
    where this function is)."""
    if _MUTED.get():
        return
    from sklearn.exceptions import ConvergenceWarning

    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel + 1)

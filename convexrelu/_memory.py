"""The memory budget: refuse, before allocating, a problem too large to fit.

The fit's largest arrays grow with the data and the pattern set: the masks of ``P``
patterns over ``n`` samples (``n * P`` bytes, and a ``float64`` copy of their signs in a
:class:`~convexrelu.program.ConvexProgram`), the dense design of a restricted solve
(``n * k * d_aug`` floats for ``k`` patterns), and a conic problem over all patterns. A
data set too large for the machine would otherwise end in an out-of-memory kill after
minutes of work. Each such allocation is estimated first, and a
:class:`MemoryBudgetError` that names the estimate, the budget and what to change is
raised when the estimate exceeds the budget.

The budget is a module-level setting, as scikit-learn's ``working_memory``:
:func:`set_config` / :func:`config_context` (in MiB; the environment variable
``CONVEXRELU_MEMORY_BUDGET`` sets the initial value).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

__all__ = ["MemoryBudgetError", "get_config", "set_config", "config_context",
           "check_memory", "block_size"]

_DEFAULT_BUDGET_MIB = 2048.0


def _initial_budget() -> float:
    raw = os.environ.get("CONVEXRELU_MEMORY_BUDGET")
    if raw is None:
        return _DEFAULT_BUDGET_MIB
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"CONVEXRELU_MEMORY_BUDGET must be a number of MiB; got "
                         f"{raw!r}.") from None
    if not value > 0:
        raise ValueError(f"CONVEXRELU_MEMORY_BUDGET must be a positive number of MiB; got "
                         f"{raw!r}.")
    return value


_config = {"memory_budget": _initial_budget()}
_lock = threading.Lock()


class MemoryBudgetError(MemoryError, ValueError):
    """A problem whose estimated memory exceeds the budget, refused before allocating.

    A subclass of both ``MemoryError`` and ``ValueError`` (the input is too large for
    the settings). Its message names the estimate, the budget and what to change.

    Attributes
    ----------
    estimate : int
        Estimated bytes of the refused allocation.
    budget : int
        The budget in bytes (``memory_budget`` MiB).
    """

    def __init__(self, message: str, *, estimate: int, budget: int) -> None:
        super().__init__(message)
        self.estimate = int(estimate)
        self.budget = int(budget)


def get_config() -> dict:
    """The current settings of convexrelu.

    Returns
    -------
    dict
        ``{"memory_budget": MiB}``.
    """
    return dict(_config)


def set_config(memory_budget=None) -> None:
    """Set convexrelu's global settings.

    Parameters
    ----------
    memory_budget : float, optional
        Largest memory, in MiB, that one of the fit's large arrays (pattern masks, a
        restricted solve's design, a conic problem) may take; a larger one is refused
        with :class:`MemoryBudgetError` before it is allocated. Default 2048 MiB (or the
        environment variable ``CONVEXRELU_MEMORY_BUDGET``). ``None`` leaves it unchanged.

    Raises
    ------
    ValueError
        If ``memory_budget`` is not a positive number.
    """
    if memory_budget is None:
        return
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float)) \
            or not memory_budget > 0 or memory_budget != memory_budget:
        raise ValueError(f"memory_budget must be a positive number of MiB (e.g. 4096); got "
                         f"{memory_budget!r}.")
    with _lock:
        _config["memory_budget"] = float(memory_budget)


@contextmanager
def config_context(*, memory_budget=None):
    """Temporarily change the settings of :func:`set_config` inside a ``with`` block.

    Parameters
    ----------
    memory_budget : float, optional
        As in :func:`set_config`.

    Examples
    --------
    >>> import convexrelu
    >>> with convexrelu.config_context(memory_budget=512):
    ...     convexrelu.get_config()["memory_budget"]
    512.0
    """
    old = get_config()
    set_config(memory_budget=memory_budget)
    try:
        yield
    finally:
        with _lock:
            _config.update(old)


def _budget_bytes() -> int:
    return int(_config["memory_budget"] * 2**20)


def _fmt(nbytes: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{int(nbytes)} bytes"


def check_memory(nbytes: float, what: str, remedy: str) -> None:
    """Raise :class:`MemoryBudgetError` when ``nbytes`` exceeds the budget.

    Parameters
    ----------
    nbytes : float
        Estimated size of the allocation.
    what : str
        What would be allocated, e.g. ``"the masks of 2000 patterns over 15000 samples"``.
    remedy : str
        What the user can change, e.g. ``"lower max_patterns"``.
    """
    budget = _budget_bytes()
    if nbytes > budget:
        raise MemoryBudgetError(
            f"{what} would need about {_fmt(nbytes)}, above the memory budget of "
            f"{_fmt(budget)}. To fit, {remedy}; or raise the budget with "
            f"convexrelu.set_config(memory_budget=MiB) (or the environment variable "
            f"CONVEXRELU_MEMORY_BUDGET) if the machine has the memory.",
            estimate=int(nbytes), budget=budget)


def block_size(bytes_per_item: float, *, maximum: int, share: float = 0.25) -> int:
    """Items per block so that one block takes at most ``share`` of the budget (>= 1)."""
    per = max(float(bytes_per_item), 1.0)
    return int(max(1, min(int(maximum), (share * _budget_bytes()) // per)))

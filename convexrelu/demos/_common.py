"""Shared helpers of the teaching demos: headless matplotlib and atomic PNG writes."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["pyplot", "save_figure", "Stopwatch"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (the demos never open a window).

    Raises
    ------
    ImportError
        If matplotlib is missing, naming the extra to install.
    """
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the demos draw figures with matplotlib; install it with "
                          "`pip install convexrelu[plot]`.") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_dir: Path, name: str, *, dpi: int = 120) -> Path:
    """Write ``fig`` to ``out_dir / name`` atomically (temporary file, then rename).

    Parameters
    ----------
    fig : matplotlib Figure
        Closed after writing.
    out_dir : Path
        Created when missing.
    name : str
        File name ending in ``.png``.
    dpi : int, default=120

    Returns
    -------
    Path
        The written file.
    """
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    tmp = out_dir / f".{name}.{os.getpid()}.tmp"
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
        tmp.replace(path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    print(f"Figure written to {path}")
    return path


class Stopwatch:
    """Wall-clock seconds since construction (``str`` gives ``"1.23 s"``)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def __str__(self) -> str:
        return f"{self.seconds:.2f} s"

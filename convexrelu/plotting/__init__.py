"""Teaching figures (matplotlib, imported inside each function: ``pip install convexrelu[plot]``).

Every ``plot_*`` takes ``ax=None`` and returns the axes. One private module per figure
family; a family whose module is not part of this build is simply absent.
"""

from ._arrangement import plot_arrangement

__all__ = ["plot_arrangement"]

try:
    from ._fit import plot_fit  # noqa: F401
except ImportError:  # module not part of this build
    pass
else:
    __all__.append("plot_fit")

try:
    from ._certificate import plot_certificate  # noqa: F401
except ImportError:  # module not part of this build
    pass
else:
    __all__.append("plot_certificate")

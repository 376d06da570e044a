"""Hyperplane arrangements of the data: activation patterns, exact and sampled."""

from ._enumerate import (
    PatternLimitError,
    count_patterns,
    cover_bound,
    enumerate_patterns,
    sample_patterns,
)
from ._patterns import ActivationPatterns

__all__ = [
    "ActivationPatterns",
    "PatternLimitError",
    "count_patterns",
    "cover_bound",
    "enumerate_patterns",
    "sample_patterns",
]

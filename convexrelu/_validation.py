"""Input validation shared by every public entry point."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_data_matrix", "augment", "check_positive_int", "check_random_state",
           "warn_poorly_scaled"]

# Features beyond these scales lose the patterns' and the solvers' accuracy (measured on
# 30 x 3 Gaussian data, one column shifted or all scaled: an offset of 1e3 standard
# deviations stopped the enumeration with an internal error, 1e5 gave duplicate patterns;
# features scaled by 1e7 fitted the zero network, by 3e6 still the right one)
_MAX_OFFSET = 1e3  # |mean| over the standard deviation of a feature
_MAX_SCALE = 1e6   # the largest |x_ij|
# ... and tiny data: standardised diabetes times 1e-6 fitted a network of test R^2 0.0006
# (0.36 at scale 1) that stopped short of tol; with exact patterns on two features the fit
# broke down from 1e-5 (the bias coordinate, 1, dwarfs the features)
_MIN_SCALE = 1e-4  # the largest |x_ij|, where X is not all zero


def check_data_matrix(X, *, name: str = "X", min_samples: int = 1) -> np.ndarray:
    """Return ``X`` as a 2-D float64 array or raise a ``ValueError`` saying what is wrong.

    Rejects non-numeric, complex, 1-D / 3-D, empty and non-finite input with a message
    naming the argument, what was received, and what to do instead.
    """
    if X is None:
        raise ValueError(f"{name} is None; pass an array-like of shape (n_samples, n_features).")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # pragma: no cover - exotic containers
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} is complex ({arr.dtype}); only real-valued data is supported.")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{name} must be numeric; got an array of dtype {arr.dtype} that cannot be "
                f"converted to float ({exc}). Encode categorical columns as numbers first."
            ) from None
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        hint = (" Reshape your data with X.reshape(-1, 1) if it has a single feature "
                "or X.reshape(1, -1) if it contains a single sample.") if arr.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_features); got {arr.ndim}-D array "
            f"of shape {arr.shape}.{hint}"
        )
    if arr.shape[0] < min_samples or arr.shape[1] < 1:
        raise ValueError(
            f"{name} is empty: shape {arr.shape}; at least {min_samples} sample(s) and one "
            "feature are required."
        )
    if not np.all(np.isfinite(arr)):
        bad = "NaN" if np.isnan(arr).any() else "infinity"
        raise ValueError(
            f"{name} contains {bad}; remove or impute those entries (e.g. with "
            "sklearn.impute.SimpleImputer) before fitting."
        )
    return arr


def warn_poorly_scaled(X: np.ndarray, stacklevel: int = 2) -> bool:
    """Warn (``UserWarning``) when a feature of ``X`` sits far from the origin against its
    spread (``|mean| > 1e3 std``), any entry exceeds ``1e6`` in magnitude, or every entry
    is below ``1e-4`` (and not all are zero).

    The patterns of such data are computed and its programs solved in floating point
    beside a bias coordinate of 1: the enumeration, the solvers and the certificate lose
    their accuracy there (an internal error, or the zero network fitted and certified on
    features scaled by 1e7). Standardising X first is the remedy; MLPs ask for it too.
    Returns whether it warned.
    """
    import warnings

    X = np.asarray(X, dtype=np.float64)
    if X.size == 0:
        return False
    # no n x d temporaries (10^6 x 20 data: 160 MB each): the mean, the mean square and
    # the extremes; the variance's rounding is far below what the offset test needs
    mean = X.mean(axis=0)
    std = np.sqrt(np.maximum(np.einsum("ij,ij->j", X, X) / X.shape[0] - mean * mean, 0.0))
    offset = np.abs(mean) > _MAX_OFFSET * std
    # a constant feature is not an offset (the bias coordinate spans it; only its
    # magnitude can harm, the test below), whatever the mean square's rounding says
    hi, lo = X.max(axis=0), X.min(axis=0)  # one pass each, shared by both tests
    offset &= hi > lo
    big = max(float(hi.max()), -float(lo.min()))
    tiny = 0.0 < big < _MIN_SCALE
    if not offset.any() and big <= _MAX_SCALE and not tiny:
        return False
    if tiny:
        what = (f"every entry is below {_MIN_SCALE:g} in magnitude (the largest is "
                f"{big:.4g})")
    elif offset.any():
        j = int(np.flatnonzero(offset)[np.argmax(np.abs(mean[offset]))])
        what = (f"feature {j} has mean {mean[j]:.4g} and standard deviation {std[j]:.4g} "
                f"(offsets beyond {_MAX_OFFSET:g} standard deviations)")
    else:
        j = int(np.argmax(np.maximum(hi, -lo)))
        what = (f"feature {j} reaches {big:.4g} in magnitude (entries beyond "
                f"{_MAX_SCALE:g})")
    warnings.warn(f"X is poorly scaled: {what}. The activation patterns, the solvers and "
                  "the certificate lose their accuracy on such data (the fit can fail or "
                  "return the zero network). Standardise X first, e.g. "
                  "make_pipeline(StandardScaler(), ...) from scikit-learn.",
                  UserWarning, stacklevel=stacklevel)
    return True


def augment(X: np.ndarray, bias: bool) -> np.ndarray:
    """``[X, 1]`` when ``bias`` else ``X`` (float64)."""
    X = np.asarray(X, dtype=np.float64)
    if not bias:
        return X
    return np.hstack([X, np.ones((X.shape[0], 1))])


def check_nonneg_float(value, name: str) -> float:
    """``value`` as a finite float >= 0, or a TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in the range [0.0, inf); got {value!r} of "
                        f"type {type(value).__name__}.")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a float in the range [0.0, inf); got {value}.")
    return value


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}; got {value!r} of type "
                        f"{type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}.")
    return int(value)


def check_random_state(random_state, name: str = "random_state") -> np.random.Generator:
    """A ``numpy.random.Generator`` from None, an int seed, a Generator or a RandomState."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"{name} must be a non-negative int, a numpy Generator or None; "
                             f"got {random_state}.")
        return np.random.default_rng(int(random_state))
    raise ValueError(
        f"{name} must be None, a non-negative int, a numpy.random.Generator or a "
        f"numpy.random.RandomState; got {random_state!r} of type {type(random_state).__name__}."
    )

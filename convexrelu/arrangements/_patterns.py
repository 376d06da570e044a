"""The :class:`ActivationPatterns` container shared by every consumer of patterns."""

from __future__ import annotations

import hashlib
from typing import Iterator

import numpy as np

from .._validation import augment, check_data_matrix

__all__ = ["ActivationPatterns", "data_fingerprint"]


def cone_signs(mask) -> np.ndarray:
    """``np.where(mask, 1.0, -1.0)``, the cone signs ``2 D - 1`` of masks (any shape; a
    nonzero entry counts as active), by arithmetic: a branch per entry on random masks
    was 3.7 ms against 0.4 ms for 10^6 entries, and the solvers form them per pattern
    and per pass over the data."""
    m = np.asarray(mask)
    if m.dtype != bool:
        m = m != 0
    out = np.multiply(m, 2.0)
    out -= 1.0
    return out


def data_fingerprint(X: np.ndarray, bias: bool) -> str:
    """A short digest of the data a pattern set was computed on."""
    Xa = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    h = hashlib.sha1(Xa.tobytes())
    h.update(repr((Xa.shape, bool(bias))).encode())
    return h.hexdigest()[:16]


class ActivationPatterns:
    """Activation patterns of a data matrix: the cells of its hyperplane arrangement.

    Pattern ``j`` is the 0/1 vector ``masks[:, j] = 1[X_aug @ gates[:, j] > 0]``, where
    ``X_aug = X`` (or ``[X, 1]`` when ``bias=True``). Masks are stored bit-packed
    (one row of ``ceil(n_samples / 8)`` bytes per pattern) so that a million patterns
    on a thousand samples take 125 MB instead of 1 GB; :attr:`masks` unpacks them all,
    :meth:`iter_blocks` streams them.

    Zero rows of ``X_aug`` (all-zero samples, which cannot occur with ``bias=True``)
    never split a cell; their mask value is always ``False``: the ReLU of such a sample
    is ``0`` for every neuron, so the value is immaterial to every consumer.

    Parameters
    ----------
    packed : ndarray of shape (n_patterns, ceil(n_samples / 8)), dtype uint8
        Masks packed with ``np.packbits(..., axis=1, bitorder="little")`` (row ``j`` is
        pattern ``j``).
    gates : ndarray of shape (n_features + bias, n_patterns)
        A strict interior point of each cell (``X_aug @ gates[:, j]`` is nonzero on every
        nonzero row of ``X_aug`` and positive exactly where the mask is ``True``). For
        sampled patterns these are the sampled Gaussian directions.
    n_samples : int
    n_features : int
        Number of features of ``X`` (without the bias column).
    bias : bool
        Whether the arrangement is that of ``[X, 1]`` (hidden bias) or of ``X``.
    exact : bool
        ``True`` when the set is the complete set of cells of the arrangement.
    min_margin : float
        The smallest normalised margin ``min_i |x_i^T g| / (||x_i|| ||g||)`` over cells and
        nonzero rows: how close to degenerate the data are. ``nan`` when unknown.
    fingerprint : str
        Digest of the data, used to reject a pattern set computed on other data.
    method : str
        How the set was obtained ("rank1", "sweep2d", "rays", "sampled", "gates").
    """

    def __init__(
        self,
        packed: np.ndarray,
        gates: np.ndarray,
        *,
        n_samples: int,
        n_features: int,
        bias: bool,
        exact: bool,
        min_margin: float = float("nan"),
        fingerprint: str = "",
        method: str = "",
    ) -> None:
        self.packed = np.ascontiguousarray(packed, dtype=np.uint8)
        self.gates = np.ascontiguousarray(gates, dtype=np.float64)
        self.n_samples = int(n_samples)
        self.n_features = int(n_features)
        self.bias = bool(bias)
        self.exact = bool(exact)
        self.min_margin = float(min_margin)
        self.fingerprint = fingerprint
        self.method = method
        if self.packed.shape[0] != self.gates.shape[1]:
            raise ValueError(
                f"packed has {self.packed.shape[0]} patterns but gates has "
                f"{self.gates.shape[1]}; they must describe the same patterns."
            )

    # ------------------------------------------------------------------ basic views
    @property
    def n_patterns(self) -> int:
        return int(self.packed.shape[0])

    def __len__(self) -> int:
        return self.n_patterns

    @property
    def masks(self) -> np.ndarray:
        """bool ndarray of shape (n_samples, n_patterns): all masks, unpacked."""
        return self.masks_block(0, self.n_patterns)

    def masks_block(self, start: int, stop: int) -> np.ndarray:
        """Unpack the masks of patterns ``start:stop`` as (n_samples, stop - start) bool."""
        bits = np.unpackbits(self.packed[start:stop], axis=1, count=self.n_samples,
                             bitorder="little")
        return bits.T.astype(bool)

    def iter_blocks(self, block_size: int = 65536) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(start, masks, gates)`` for consecutive blocks of patterns.

        ``masks`` has shape (n_samples, b) and ``gates`` (n_features + bias, b).
        """
        block_size = max(1, int(block_size))
        for start in range(0, self.n_patterns, block_size):
            stop = min(self.n_patterns, start + block_size)
            yield start, self.masks_block(start, stop), self.gates[:, start:stop]

    def __repr__(self) -> str:
        kind = "exact" if self.exact else "sampled"
        return (
            f"ActivationPatterns(n_patterns={self.n_patterns}, n_samples={self.n_samples}, "
            f"n_features={self.n_features}, bias={self.bias}, {kind}, "
            f"min_margin={self.min_margin:.3g})"
        )

    # ------------------------------------------------------------------ data checks
    def augment(self, X: np.ndarray) -> np.ndarray:
        """Return ``X`` or ``[X, 1]`` as this pattern set expects."""
        return augment(np.asarray(X, dtype=np.float64), self.bias)

    def check_data(self, X, *, name: str = "X") -> None:
        """Raise ``ValueError`` when the patterns were computed on other data."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape != (self.n_samples, self.n_features):
            raise ValueError(
                f"These activation patterns were computed on data of shape "
                f"({self.n_samples}, {self.n_features}) but {name} has shape {X.shape}. "
                "Recompute them with enumerate_patterns or sample_patterns on this data."
            )
        if self.fingerprint and data_fingerprint(X, self.bias) != self.fingerprint:
            raise ValueError(
                f"These activation patterns were computed on other data than {name} "
                "(same shape, different values). Recompute them with enumerate_patterns "
                "or sample_patterns on this data."
            )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_masks(
        cls,
        X,
        masks: np.ndarray,
        gates: np.ndarray,
        *,
        bias: bool = False,
        exact: bool,
        method: str = "",
        min_margin: float | None = None,
    ) -> "ActivationPatterns":
        """Build from an (n_samples, n_patterns) bool array and matching gates."""
        X = check_data_matrix(X)
        masks = np.asarray(masks, dtype=bool)
        packed = np.packbits(masks.T, axis=1, bitorder="little")
        if min_margin is None:
            min_margin = _min_margin(augment(X, bias), np.asarray(gates, dtype=np.float64))
        return cls(packed, gates, n_samples=X.shape[0], n_features=X.shape[1], bias=bias,
                   exact=exact, min_margin=min_margin, fingerprint=data_fingerprint(X, bias),
                   method=method)

    @classmethod
    def from_gates(cls, X, G, *, bias: bool = False) -> "ActivationPatterns":
        """Patterns ``1[X_aug @ g > 0]`` of user-given gates, deduplicated, ``exact=False``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        G : array-like of shape (n_features + bias, n_gates)
            One gate per column. Gates that give the same pattern are merged (the first
            is kept); order is otherwise preserved.
        bias : bool, default=False
        """
        X = check_data_matrix(X)
        Xa = augment(X, bias)
        G = np.asarray(G, dtype=np.float64)
        if G.ndim != 2 or G.shape[0] != Xa.shape[1]:
            raise ValueError(
                f"G must have shape (n_features{' + 1' if bias else ''}, n_gates) = "
                f"({Xa.shape[1]}, n_gates); got {G.shape}."
            )
        if not np.all(np.isfinite(G)):
            raise ValueError("G contains NaN or infinity; gates must be finite.")
        masks = Xa @ G > 0
        masks[~np.any(Xa != 0, axis=1)] = False
        packed = np.packbits(masks.T, axis=1, bitorder="little")
        _, first = np.unique(packed, axis=0, return_index=True)
        keep = np.sort(first)
        return cls(packed[keep], G[:, keep], n_samples=X.shape[0], n_features=X.shape[1],
                   bias=bias, exact=False, min_margin=_min_margin(Xa, G[:, keep]),
                   fingerprint=data_fingerprint(X, bias), method="gates")

    # ------------------------------------------------------------------ persistence
    def to_arrays(self) -> dict:
        """Plain arrays for ``np.savez`` (see ``convexrelu.cli`` and ``from_arrays``)."""
        return {
            "packed": self.packed,
            "gates": self.gates,
            "masks_shape": np.array([self.n_samples, self.n_patterns]),
            "meta": np.array([self.n_features, int(self.bias), int(self.exact)]),
            "min_margin": np.array(self.min_margin),
            "fingerprint": np.array(self.fingerprint),
            "method": np.array(self.method),
        }

    @classmethod
    def from_arrays(cls, arrays) -> "ActivationPatterns":
        n_samples, _ = (int(v) for v in arrays["masks_shape"])
        n_features, bias, exact = (int(v) for v in arrays["meta"])
        return cls(arrays["packed"], arrays["gates"], n_samples=n_samples,
                   n_features=n_features, bias=bool(bias), exact=bool(exact),
                   min_margin=float(arrays["min_margin"]),
                   fingerprint=str(arrays["fingerprint"]), method=str(arrays["method"]))


def _min_margin(Xa: np.ndarray, G: np.ndarray, block: int = 65536) -> float:
    """min over patterns and nonzero rows of |x^T g| / (||x|| ||g||)."""
    norms = np.linalg.norm(Xa, axis=1)
    nz = norms > 0
    if not np.any(nz) or G.shape[1] == 0:
        return float("nan")
    Xn = Xa[nz] / norms[nz, None]
    best = np.inf
    for s in range(0, G.shape[1], block):
        g = G[:, s:s + block]
        g = g / np.linalg.norm(g, axis=0)
        best = min(best, float(np.min(np.abs(Xn @ g))))
    return best

"""Chunked evaluation over a pattern set, in parallel through joblib (and Dask).

The exact certificate (:func:`convexrelu.certificates.dual_constraint`) and the pricing
step of column generation evaluate a function of every activation pattern and keep the
maximum. Here the pattern set is cut into chunks of consecutive patterns whose boundaries
do not depend on the number of workers, each chunk is evaluated by the same function
(locally, or by joblib workers: processes, threads, or a Dask cluster through
``joblib.parallel_config(backend="dask")``), and the per-chunk results are merged in
chunk order, so the result is the same whatever runs it.

A chunk is shipped to a worker as its gates (``n_features + bias`` numbers per pattern)
and a digest of its bit-packed masks, not as the masks themselves (``n_samples / 8``
bytes per pattern): the worker regenerates the masks ``1[X_aug g > 0]`` and checks them
against the digest. Gates closer to a cell boundary than ``_REGEN_MARGIN`` (or a digest
mismatch, e.g. user-given masks that differ from their gates) make the chunk travel with
its masks instead.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ._warnings import kept_filters

__all__ = ["PatternChunk", "chunk_ranges", "map_chunks", "resolve_n_jobs", "subset"]

#: patterns per chunk (a multiple of the default block size of 8192); each chunk starts
#: its bound-then-refine afresh, so smaller chunks refine a few more patterns
CHUNK_SIZE = 16384
#: smaller pattern sets are evaluated here: starting workers and shipping the data
#: costs more than it saves (a 74-pattern column generation took 0.5 s in one process
#: and 11 s with ``n_jobs=2`` on loky processes)
MIN_PARALLEL_PATTERNS = 2 * CHUNK_SIZE
#: smallest normalised margin of the gates for the workers to regenerate the masks
_REGEN_MARGIN = 1e-9


def resolve_n_jobs(n_jobs) -> int:
    """Number of workers joblib would use for ``n_jobs`` (honours ``parallel_config``)."""
    import numbers

    from joblib import effective_n_jobs

    if n_jobs is not None and (not isinstance(n_jobs, numbers.Integral)
                               or isinstance(n_jobs, bool) or n_jobs == 0):
        raise ValueError(f"n_jobs must be a nonzero int (-1: all cores, -2: all but one) or "
                         f"None (one worker unless in a joblib.parallel_config context); got "
                         f"{n_jobs!r}.")
    return int(effective_n_jobs(n_jobs))


def chunk_ranges(n_patterns: int, chunk_size: int = CHUNK_SIZE) -> list:
    """``[(start, stop), ...]``: consecutive chunks of at most ``chunk_size`` patterns."""
    size = max(1, int(chunk_size))
    return [(s, min(n_patterns, s + size)) for s in range(0, n_patterns, size)]


def _digest(packed: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(packed).data, digest_size=16).digest()


class PatternChunk:
    """Patterns ``start:stop`` of a set, as shipped to a worker.

    Parameters
    ----------
    patterns : ActivationPatterns
        The full set.
    start, stop : int
    ship_masks : bool
        Carry the packed masks; otherwise carry only the gates and a digest of the masks,
        and let :meth:`patterns` regenerate them.
    """

    def __init__(self, patterns, start: int, stop: int, *, ship_masks: bool):
        self.start, self.stop = int(start), int(stop)
        self.gates = np.ascontiguousarray(patterns.gates[:, start:stop])
        packed = patterns.packed[start:stop]
        self.packed = packed if ship_masks else None
        self.digest = None if ship_masks else _digest(packed)
        self.meta = dict(n_samples=patterns.n_samples, n_features=patterns.n_features,
                         bias=patterns.bias, exact=False, min_margin=patterns.min_margin,
                         fingerprint=patterns.fingerprint, method=patterns.method)

    def with_masks(self, patterns) -> "PatternChunk":
        """The same chunk carrying its masks (after a digest mismatch)."""
        return PatternChunk(patterns, self.start, self.stop, ship_masks=True)

    def patterns(self, Xa: np.ndarray):
        """The chunk as an ActivationPatterns, or ``None`` when the regenerated masks do
        not match the digest of the original ones."""
        from .arrangements import ActivationPatterns

        packed = self.packed
        if packed is None:
            masks = Xa @ self.gates > 0
            masks[~np.any(Xa != 0, axis=1)] = False
            packed = np.packbits(masks.T, axis=1, bitorder="little")
            if _digest(packed) != self.digest:
                return None
        return ActivationPatterns(packed, self.gates, **self.meta)


def make_chunks(patterns, ranges, *, threads: bool) -> list:
    """One :class:`PatternChunk` per range; the masks travel only when needed (threads
    share them; gates too close to a cell boundary cannot regenerate them safely)."""
    margin = patterns.min_margin
    regen = not threads and np.isfinite(margin) and margin > _REGEN_MARGIN
    return [PatternChunk(patterns, s, e, ship_masks=not regen) for s, e in ranges]


def subset(patterns, start: int, stop: int):
    """Patterns ``start:stop`` of a pattern set, as an ActivationPatterns (views)."""
    from .arrangements import ActivationPatterns

    return ActivationPatterns(patterns.packed[start:stop], patterns.gates[:, start:stop],
                              n_samples=patterns.n_samples, n_features=patterns.n_features,
                              bias=patterns.bias, exact=False, min_margin=patterns.min_margin,
                              fingerprint=patterns.fingerprint, method=patterns.method)


def map_chunks(func, patterns, ranges, Xa, args, n_jobs) -> list:
    """``[func(chunk, start, *args) for each (start, stop) in ranges]`` through joblib.

    ``chunk`` is the ActivationPatterns of patterns ``start:stop`` (local indices
    ``0..b-1``). ``func`` must be a module-level function (it is pickled for process and
    Dask workers); ``Xa`` is the augmented data the masks are regenerated from on a
    worker (``patterns.augment(X)``). ``args`` go unchanged to every call; joblib's Dask
    backend scatters the large arrays among them once instead of once per chunk. With
    one effective worker (``n_jobs=None`` outside a ``parallel_config`` context, or 1)
    the chunks run here, one after the other, on views of the masks; so they do for
    fewer than ``MIN_PARALLEL_PATTERNS`` patterns.
    """
    n_workers = resolve_n_jobs(n_jobs)
    if n_workers == 1 or len(ranges) <= 1 or patterns.n_patterns < MIN_PARALLEL_PATTERNS:
        return [func(subset(patterns, s, e), s, *args) for s, e in ranges]
    from sklearn.utils.parallel import Parallel, delayed

    from joblib.parallel import get_active_backend

    backend = get_active_backend()[0]
    chunks = make_chunks(patterns, ranges, threads=bool(getattr(backend, "uses_threads", False)))
    with kept_filters():  # threads leave catch_warnings out of order
        out = Parallel(n_jobs=n_jobs)(delayed(_run_chunk)(func, ch, Xa, *args)
                                      for ch in chunks)
        redo = [i for i, r in enumerate(out) if r is _MISMATCH]
        again = Parallel(n_jobs=n_jobs)(
            delayed(_run_chunk)(func, chunks[i].with_masks(patterns), Xa, *args)
            for i in redo) if redo else []
    for i, r in zip(redo, again):
        out[i] = r
    return out


class _Mismatch:
    """Returned by a worker whose regenerated masks differ from the original ones."""

    def __reduce__(self):
        return (_mismatch, ())


def _mismatch():
    return _MISMATCH


_MISMATCH = _Mismatch()


def _run_chunk(func, chunk: PatternChunk, Xa, *args):
    pats = chunk.patterns(Xa)
    if pats is None:
        return _MISMATCH
    return func(pats, chunk.start, *args)

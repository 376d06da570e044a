"""Reading data files and writing output files atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["load_table", "atomic_savez", "atomic_write_text"]


def load_table(path, *, target: str | None = None):
    """Load CSV / .npy / .npz data.

    Returns ``(X, y, columns)``; ``y`` is None when ``target`` is None. A CSV may have a
    header row (used for column names); ``target`` is a column name or an integer index.
    An .npz file must hold ``X`` (and ``y`` when a target is asked for, or a column of X
    named by index). Raises ``ValueError`` with a readable message on bad input.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"data file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    columns = None
    if suffix == ".npy":
        data = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if "X" not in z:
                raise ValueError(f"{path} holds arrays {sorted(z.files)}; expected one named 'X'"
                                 " (and optionally 'y').")
            X = np.asarray(z["X"], dtype=np.float64)
            if target is not None and "y" in z and not _is_int(target):
                return X, np.asarray(z["y"]), None
            if target is None and "y" in z:
                return X, np.asarray(z["y"]), None
            data = X
    elif suffix in (".csv", ".txt", ".tsv"):
        delim = "\t" if suffix == ".tsv" else ","
        with open(path) as fh:
            first = fh.readline()
        fields = [f.strip() for f in first.strip().split(delim)]
        has_header = any(not _is_float(f) for f in fields if f)
        if has_header:
            columns = fields
        try:
            data = np.loadtxt(path, delimiter=delim, skiprows=1 if has_header else 0, ndmin=2)
        except ValueError as exc:
            raise ValueError(f"could not read {path} as numeric CSV: {exc}") from None
    else:
        raise ValueError(f"unsupported data file {str(path)!r}: use .csv, .tsv, .npy or .npz.")
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if target is None:
        return data, None, columns
    if _is_int(target):
        idx = int(target)
    elif columns is not None and target in columns:
        idx = columns.index(target)
    else:
        raise ValueError(f"target column {target!r} not found; columns are "
                         f"{columns if columns else list(range(data.shape[1]))}.")
    if not -data.shape[1] <= idx < data.shape[1]:
        raise ValueError(f"target column index {idx} out of range for {data.shape[1]} columns.")
    y = data[:, idx]
    X = np.delete(data, idx % data.shape[1], axis=1)
    if columns is not None:
        columns = [c for i, c in enumerate(columns) if i != idx % data.shape[1]]
    return X, y, columns


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _is_int(s) -> bool:
    try:
        int(s)
        return True
    except (TypeError, ValueError):
        return False


def atomic_savez(path, header: dict | None = None, **arrays) -> Path:
    """``np.savez_compressed`` to a temporary file in the same folder, then rename.

    An interrupted write leaves no partial file. ``header`` (JSON-serialisable) is stored
    as the array ``__header__`` holding a JSON string.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    if header is not None:
        arrays["__header__"] = np.array(json.dumps(header))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_header(npz) -> dict:
    """The JSON header written by :func:`atomic_savez`, or ``{}``."""
    if "__header__" in npz.files:
        return json.loads(str(npz["__header__"]))
    return {}

"""Reading data files and writing output files atomically."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

__all__ = ["load_table", "read_npz", "read_npy", "read_header", "atomic_savez",
           "atomic_write_text"]


def _text_columns(data: np.ndarray) -> list:
    """Indices of the columns of a text table that are not all numbers (an empty cell is
    not a number)."""
    out = []
    for j in range(data.shape[1]):
        try:
            data[:, j].astype(np.float64)  # one conversion per column, not per cell
        except ValueError:
            out.append(j)
    return out


def _fields(line, delim: str) -> list:
    """The stripped fields of one CSV line (or of a record already split: a list);
    quoted fields (R's ``write.csv`` quotes every text field and column name) lose their
    quotes and may hold the delimiter."""
    if isinstance(line, list):
        return line
    if '"' not in line:
        return [f.strip() for f in line.split(delim)]
    return [f.strip() for f in next(csv.reader([line], delimiter=delim,
                                               skipinitialspace=True))]


def _skip_notes(lines: list, delim: str) -> list:
    """``lines`` without the comment lines (``#``) at the top of an unquoted CSV (a note,
    an exporter's banner), which were read as its header. A single comment line is kept
    as the header, without its ``#``, where it names as many columns as the data have,
    each name without blanks, and no header follows it (``numpy.savetxt(...,
    header="a,b,y")`` writes ``# a,b,y``; ``# exported by tool, v2`` over two columns is a
    note)."""
    k = 0
    while k < len(lines) and lines[k].lstrip().startswith("#"):
        k += 1
    if k == 0 or k == len(lines):
        return lines
    notes, rest = lines[:k], lines[k:]
    if k == 1 and not _is_header(rest, delim):
        last = notes[0].lstrip()[1:].strip()
        names = _fields(last, delim)
        if len(names) == len(_fields(rest[0], delim)) and \
                not any(len(f.split()) != 1 for f in names) and \
                _is_header([last] + rest, delim):
            return [last] + rest
    return rest


def _is_header(lines: list, delim: str) -> bool:
    """Whether the first of a CSV's non-empty ``lines`` names the columns: text where the
    next row has a number (a first row whose only text is in columns that hold text all
    along, class labels, is data: UCI's headerless ``iris.data``)."""
    fields = _fields(lines[0], delim)
    text = [j for j, f in enumerate(fields) if f and not _is_float(f)]
    nxt = _fields(lines[1], delim) if len(lines) > 1 else []
    return bool(text) and (not nxt or len(nxt) != len(fields)
                           or any(_is_float(nxt[j]) for j in text))


def target_name(path, target) -> str:
    """The name of the column ``target`` (a name, or an integer index into a CSV with a
    header row) as a model records it, so that ``convexrelu predict`` can skip it."""
    path = Path(path)
    if not _is_int(target) or path.suffix.lower() not in (".csv", ".txt", ".tsv"):
        return str(target)
    delim = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, encoding="utf-8-sig") as fh:
            lines = []
            for line in fh:
                if line.strip():
                    lines.append(line.rstrip("\r\n"))
                if len(lines) == 2:
                    break
    except (OSError, UnicodeDecodeError):
        return str(target)
    if not lines or not _is_header(lines, delim):
        return str(target)
    fields = _fields(lines[0], delim)
    idx = int(target)
    return fields[idx] if -len(fields) <= idx < len(fields) else str(target)


def _target_index(target, columns, n_columns: int) -> int:
    """The column index of ``target`` (a name or an integer index), or a ``ValueError``
    saying that it is not there."""
    if _is_int(target):
        idx = int(target)
    elif columns is not None and target in columns:
        idx = columns.index(target)
    else:
        raise ValueError(f"target column {target!r} not found; columns are "
                         f"{columns if columns else list(range(n_columns))}.")
    if not -n_columns <= idx < n_columns:
        raise ValueError(f"target column index {idx} out of range for {n_columns} columns.")
    return idx % n_columns


def _first_text(col: np.ndarray) -> str:
    """The first cell of a column that is not a number."""
    return str(next(v for v in col if not _is_float(v)))


def load_table(path, *, target: str | None = None, labels: str | None = None):
    """Load CSV / .npy / .npz data.

    Returns ``(X, y, columns)``; ``y`` is None when ``target`` is None. A CSV may have a
    header row (used for column names); ``target`` is a column name or an integer index.
    The target column of a CSV may hold text (class labels, returned as strings); every
    other column must be numeric, except the column named ``labels`` (the target of the
    model that reads the file: ``convexrelu predict``), which is dropped.
    An .npz file must hold ``X`` (and ``y`` when a target is asked for, or a column of X
    named by index). Raises ``ValueError`` with a one-line message saying what was wrong
    with the file (empty, header only, not numeric, damaged, ...).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"data file {str(path)!r} does not exist.")
    if path.is_dir():
        raise ValueError(f"data file {str(path)!r} is a directory, not a file.")
    suffix = path.suffix.lower()
    columns = None
    if suffix == ".npy":
        data = read_npy(path)
    elif suffix == ".npz":
        z = read_npz(path)
        if "X" not in z:
            raise ValueError(f"{path} holds arrays {sorted(z)}; expected one named 'X'"
                             " (and optionally 'y').")
        X = np.asarray(z["X"], dtype=np.float64)
        _check_rows(X, path)
        if "y" in z and (target is None or not _is_int(target)):
            return X, np.asarray(z["y"]), None
        data = X
    elif suffix in (".csv", ".txt", ".tsv"):
        data, columns = _read_csv(path, "\t" if suffix == ".tsv" else ",")
    else:
        raise ValueError(f"unsupported data file {str(path)!r}: use .csv, .tsv, .npy or .npz.")
    text = None
    if data.dtype.kind == "U" and suffix in (".csv", ".txt", ".tsv"):
        # a CSV with text: class labels in the target column only
        if labels is not None and columns is not None and labels in columns:
            drop = columns.index(labels)
            data = np.delete(data, drop, axis=1)
            columns = [c for i, c in enumerate(columns) if i != drop]
        text = _text_columns(data)
        tidx = None
        if target is not None:
            tidx = _target_index(target, columns, data.shape[1])
        bad = [j for j in text if j != tidx]
        for j in bad + ([tidx] if tidx in text else []):
            empty = np.flatnonzero(data[:, j] == "")
            if empty.size:
                name = repr(columns[j]) if columns is not None else str(j)
                raise ValueError(f"column {name} of {path} has an empty cell (data row "
                                 f"{int(empty[0]) + 1}); fill or drop the missing values "
                                 "first.")
        if bad:
            j = bad[0]
            name = repr(columns[j]) if columns is not None else str(j)
            raise ValueError(
                f"column {name} of {path} is not numeric (it holds "
                f"{_first_text(data[:, j])!r}); only the target column may hold text "
                "(class labels). Encode the other columns as numbers (e.g. one-hot) first.")
        if text:  # the target's labels as text, the features as numbers
            y = data[:, tidx]
            X = np.delete(data, tidx, axis=1).astype(np.float64)
            _check_rows(X, path)
            if columns is not None:
                columns = [c for i, c in enumerate(columns) if i != tidx]
            return X, y, columns
    try:
        data = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path} holds a {data.dtype} array; expected numbers.") from None
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise ValueError(f"{path} holds an array of shape {data.shape}; expected a table "
                         "(n_samples, n_columns).")
    _check_rows(data, path)
    if target is None:
        return data, None, columns
    idx = _target_index(target, columns, data.shape[1])
    y = data[:, idx]
    X = np.delete(data, idx % data.shape[1], axis=1)
    if columns is not None:
        columns = [c for i, c in enumerate(columns) if i != idx % data.shape[1]]
    return X, y, columns


def _check_rows(data, path) -> None:
    if data.shape[0] == 0:
        raise ValueError(f"{path} holds no data rows (an array of shape {data.shape}).")


def _read_csv(path: Path, delim: str):
    """Numbers of a CSV/TSV with an optional header row -> ``(data, columns or None)``."""
    name = "TSV" if delim == "\t" else "CSV"
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file (it is not UTF-8); expected a {name} "
                         "of numbers with an optional header row.") from None
    except OSError as exc:
        raise ValueError(f"cannot open {path}: {exc.strerror or exc}.") from None
    quoted = '"' in text
    if quoted:
        # records, each a list of fields (a quoted field may hold the delimiter or a
        # line break)
        lines = [[f.strip() for f in rec] for rec in csv.reader(
            io.StringIO(text), delimiter=delim, skipinitialspace=True)]
        lines = [rec for rec in lines if any(rec)]
    else:
        lines = _skip_notes([line for line in text.splitlines() if line.strip()], delim)
    if not lines:
        raise ValueError(f"{path} is empty; expected a {name} of numbers with an optional "
                         "header row of column names.")
    fields = _fields(lines[0], delim)
    columns = fields if _is_header(lines, delim) else None
    rows = lines[1:] if columns is not None else lines
    if not rows:
        raise ValueError(f"{path} has a header row ({', '.join(fields)}) but no data rows.")
    if columns is not None:
        dup = sorted({c for c in columns if columns.count(c) > 1})
        if dup:
            raise ValueError(f"the header row of {path} names column(s) {dup} more than once; "
                             "column names must be unique.")
    if quoted:
        data = _read_quoted(rows, path, name)
        if columns is not None and data.shape[1] != len(columns):
            raise ValueError(f"the header row of {path} names {len(columns)} columns "
                             f"({', '.join(columns)}) but the data rows have "
                             f"{data.shape[1]}.")
        return data, columns
    try:
        data = np.loadtxt(rows, delimiter=delim, ndmin=2)
    except ValueError as exc:
        # text in some column: read as text; load_table keeps it in the target column
        # only (class labels), and names any other column that is not numeric
        try:
            data = np.char.strip(np.loadtxt(rows, delimiter=delim, ndmin=2, dtype=str))
        except ValueError:
            raise ValueError(f"could not read {path} as numeric {name}: {exc}") from None
    if columns is not None and data.shape[1] != len(columns):
        raise ValueError(f"the header row of {path} names {len(columns)} columns "
                         f"({', '.join(columns)}) but the data rows have {data.shape[1]}.")
    return data, columns


def _read_quoted(table: list, path: Path, name: str) -> np.ndarray:
    """The data records (lists of fields) of a CSV with quoted fields: numbers, or text
    where a column holds any (as ``_read_csv``'s text fallback)."""
    widths = [len(row) for row in table]
    usual = Counter(widths).most_common(1)[0][0]  # (a tie: the first row's width)
    if any(w != usual for w in widths):
        k = next(i for i, w in enumerate(widths) if w != usual)
        raise ValueError(f"could not read {path} as a {name}: data row {k + 1} has "
                         f"{widths[k]} fields, the other rows {usual}.")
    data = np.array(table, dtype=str)
    try:
        return data.astype(np.float64)
    except ValueError:
        return data


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"
_NPZ_WHAT = "an .npz archive (a zip of arrays written by numpy.savez or `convexrelu fit`)"


def _sniff(path: Path, magic: bytes, what: str) -> None:
    """Check the first bytes of ``path`` before numpy opens it; one-line ``ValueError``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise ValueError(f"cannot open {path}: {exc.strerror or exc}.") from None
    if head.startswith(magic):
        return
    if not head:
        raise ValueError(f"{path} is empty (0 bytes); expected {what}.")
    if head.startswith(_NPY_MAGIC):
        found = "a single .npy array"
    elif head.startswith(_ZIP_MAGIC):
        found = "a zip archive, not a single .npy array (name it .npz)"
    else:
        try:
            head.decode("utf-8")
            text = True
        except UnicodeDecodeError as exc:  # text cut inside a character is still text
            text = exc.reason == "unexpected end of data"
        found = "a text file" if text else "neither an .npy nor an .npz file (unknown format)"
    raise ValueError(f"{path} is {found}; expected {what}.")


def read_npy(path) -> np.ndarray:
    """The array of an .npy file, read without pickles; ``ValueError`` on a bad file."""
    path = Path(path)
    _sniff(path, _NPY_MAGIC, "an .npy array (written by numpy.save)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(f"{path} holds an array of Python objects; only numeric arrays "
                             "are read (pickled data is never loaded).") from None
        raise ValueError(f"{path} is a damaged .npy file: {exc}") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is a damaged or truncated .npy file: {exc}") from None


def read_npz(path) -> dict:
    """All arrays of an .npz archive, read eagerly and without pickles.

    Raises ``ValueError`` with a one-line message when the file is not an .npz archive
    (a text file, a single .npy array, ...), is damaged or truncated, or holds an
    array of Python objects (pickled data is never loaded).
    """
    import zipfile
    import zlib

    path = Path(path)
    _sniff(path, _ZIP_MAGIC, _NPZ_WHAT)
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for name in z.files:
                try:
                    arrays[name] = z[name]
                except ValueError as exc:
                    if "allow_pickle" in str(exc):
                        raise ValueError(
                            f"{path} holds an array of Python objects ({name!r}); only "
                            "numeric arrays are read (pickled data is never loaded).") from None
                    raise
                if not isinstance(arrays[name], np.ndarray):  # numpy returns raw bytes
                    raise ValueError(f"its member {name!r} is not an .npy array.")
    except ValueError as exc:
        if "pickled data is never loaded" in str(exc):
            raise
        raise ValueError(f"{path} is a damaged .npz archive: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError) as exc:
        raise ValueError(f"{path} is a damaged or truncated .npz archive "
                         f"({type(exc).__name__}: {exc}).") from None
    return arrays


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


def _temp_beside(path: Path):
    """``(fd, name)`` of a new hidden file beside ``path`` with the mode ``open()`` gives
    (``0o666`` less the umask, applied by the kernel; ``mkstemp``'s files are ``0o600``,
    which the rename kept)."""
    import secrets

    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}.")


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
    fd, tmp = _temp_beside(path)
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
    fd, tmp = _temp_beside(path)
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
    """The JSON header written by :func:`atomic_savez`, or ``{}``.

    ``npz`` is a dict from :func:`read_npz` (or an ``np.load`` result). Raises
    ``ValueError`` when the header is not a JSON object.
    """
    keys = getattr(npz, "files", None) or npz.keys()
    if "__header__" not in keys:
        return {}
    try:
        header = json.loads(str(npz["__header__"]))
    except ValueError:
        raise ValueError("its JSON header (__header__) is damaged.") from None
    if not isinstance(header, dict):
        raise ValueError(f"its JSON header (__header__) is a {type(header).__name__}, not an "
                         "object.")
    return header

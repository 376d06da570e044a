"""``convexrelu predict MODEL FILE``: predictions of a model written by ``convexrelu fit``.

The model is an .npz file holding the network's arrays and a JSON header (no pickle).
When both the model and the data file name their columns (a CSV header row), the
features are matched by name, in any order; a missing or unknown column is refused. A
column named like the fit's target is dropped. Without names the columns are taken in
order. Predictions go to ``--out`` (CSV) or stdout.
"""

from __future__ import annotations

import argparse

HELP = "predict with a model file written by `convexrelu fit`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model .npz written by convexrelu fit")
    parser.add_argument("file", metavar="FILE",
                        help="data: .csv/.tsv, .npy or .npz with X; a CSV header row is "
                             "matched to the model's feature names (any order; the target "
                             "column, if present, is dropped), otherwise columns are taken "
                             "in order")
    parser.add_argument("--out", metavar="PATH", default=None,
                        help="write predictions to this CSV file (default: stdout)")


def _load_model(path):
    """``(ReLUNet, header)`` from a model file; :class:`UsageError` with one line if bad."""
    from pathlib import Path

    from .._io import read_header, read_npz
    from ..network import ReLUNet
    from . import UsageError
    from .fit import FORMAT

    if not Path(path).is_file():
        raise UsageError(f"model file {str(path)!r} does not exist.")
    try:
        z = read_npz(path)
        header = read_header(z)
    except ValueError as exc:
        msg = str(exc)
        if msg.startswith("its "):
            msg = f"{path}: {msg}"
        raise UsageError(f"cannot read model: {msg}") from None
    if header.get("format") != FORMAT:
        raise UsageError(f"{path} is not a convexrelu model file (written by "
                         "`convexrelu fit`): it has no convexrelu-model header.")
    try:
        net = ReLUNet.from_arrays(z)
    except ValueError as exc:
        raise UsageError(f"cannot read model {path}: {exc}") from None
    return net, header


def _align_features(X, columns, header, data_file, *, target=None, command="predict"):
    """The model's features of ``X``, in the model's order, matched by column name.

    ``columns`` are the data file's column names (None without a header row) and
    ``header`` the model's JSON header (``feature_names``, ``n_features``). With names on
    both sides the columns are picked by name (a note on stderr says when they were
    reordered); a missing or unknown name is refused. Without names the columns are
    taken in order and only their count is checked. ``target`` (a column name) is dropped.
    """
    import sys

    from . import UsageError

    names = header.get("feature_names")
    n_features = int(header.get("n_features") or len(names or []) or X.shape[1])
    if columns is not None and target is not None and target in columns:
        keep = [i for i, c in enumerate(columns) if c != target]
        X, columns = X[:, keep], [columns[i] for i in keep]
    if names is None or columns is None:
        if X.shape[1] != n_features:
            raise UsageError(f"{data_file} has {X.shape[1]} feature columns but the model "
                             f"expects {n_features}"
                             + (f" ({', '.join(map(str, names))})" if names else "") + ".")
        return X
    names = [str(c) for c in names]
    missing = [c for c in names if c not in columns]
    unknown = [c for c in columns if c not in names]
    if missing or unknown:
        what = "; ".join(part for part in (
            f"missing {missing}" if missing else "", f"unknown {unknown}" if unknown else "")
            if part)
        raise UsageError(f"the columns of {data_file} do not match the model's features: "
                         f"expected {names} (in any order), found {columns} ({what}). "
                         "Rename or remove columns so that the names match.")
    order = [columns.index(c) for c in names]
    if order != list(range(len(names))):
        print(f"convexrelu {command}: note: columns of {data_file} taken by name in the "
              f"model's order ({', '.join(names)}).", file=sys.stderr)
    return X[:, order]


def run(args: argparse.Namespace) -> int:
    import io
    import sys

    import numpy as np

    from .._io import atomic_write_text, load_table
    from . import UsageError

    net, header = _load_model(args.model)
    try:
        X, _, columns = load_table(args.file, labels=header.get("target"))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    X = _align_features(X, columns, dict(header, n_features=net.n_features), args.file,
                        target=header.get("target"))
    try:
        z = net.predict(X)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if header.get("kind") == "classifier":
        classes = np.asarray(header["classes"])
        pred = classes[(z > 0).astype(int)] if z.ndim == 1 else classes[np.argmax(z, axis=1)]
    else:
        pred = z
    buf = io.StringIO()
    pred = np.asarray(pred)
    if pred.ndim == 1:
        pred = pred[:, None]
    names = (["prediction"] if pred.shape[1] == 1
             else [f"prediction_{j}" for j in range(pred.shape[1])])
    buf.write(",".join(names) + "\n")
    for row in pred:
        buf.write(",".join(repr(float(v)) if np.issubdtype(pred.dtype, np.number) else str(v)
                           for v in row) + "\n")
    if args.out is None:
        sys.stdout.write(buf.getvalue())
    else:
        path = atomic_write_text(args.out, buf.getvalue())
        print(f"{pred.shape[0]} predictions written to {path}")
    return 0

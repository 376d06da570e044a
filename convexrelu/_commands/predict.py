"""``convexrelu predict MODEL FILE``: predictions of a model written by ``convexrelu fit``.

The model is an .npz file holding the network's arrays and a JSON header (no pickle).
The data file must have the model's features in the same order (a column named like
the fit's target, if present, is dropped). Predictions go to ``--out`` (CSV) or stdout.
"""

from __future__ import annotations

import argparse

HELP = "predict with a model file written by `convexrelu fit`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model .npz written by convexrelu fit")
    parser.add_argument("file", metavar="FILE", help="data: .csv/.tsv, .npy or .npz with X")
    parser.add_argument("--out", metavar="PATH", default=None,
                        help="write predictions to this CSV file (default: stdout)")


def _load_model(path):
    import numpy as np

    from .._io import read_header
    from ..cli import UsageError
    from ..network import ReLUNet
    from .fit import FORMAT

    try:
        with np.load(path, allow_pickle=False) as z:
            header = read_header(z)
            if header.get("format") != FORMAT:
                raise UsageError(f"{path} is not a convexrelu model file (written by "
                                 "`convexrelu fit`).")
            net = ReLUNet.from_arrays(z)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read model {path}: {exc}") from None
    return net, header


def run(args: argparse.Namespace) -> int:
    import io
    import sys

    import numpy as np

    from .._io import atomic_write_text, load_table
    from ..cli import UsageError

    net, header = _load_model(args.model)
    try:
        X, _, columns = load_table(args.file)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    target = header.get("target")
    if columns is not None and target in columns and X.shape[1] == net.n_features + 1:
        keep = [i for i, c in enumerate(columns) if c != target]
        X = X[:, keep]
    if X.shape[1] != net.n_features:
        raise UsageError(f"{args.file} has {X.shape[1]} feature columns but the model "
                         f"expects {net.n_features} ({header.get('feature_names')}).")
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

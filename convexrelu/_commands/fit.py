"""``convexrelu fit FILE --target COLUMN [--alpha A]``: fit a globally optimal ReLU network.

Reads a table (CSV with an optional header row, .npy, or .npz), fits
:class:`~convexrelu.ConvexReLURegressor` (or the classifier with ``--classify``) and writes
the network's arrays plus a JSON header to an .npz file (atomically; never a pickle). The
file is read back by ``convexrelu predict``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

HELP = "fit a globally optimal two-layer ReLU network to a data file"

FORMAT = "convexrelu-model"
FORMAT_VERSION = 1


def _patterns_arg(value: str):
    if value in ("exact", "auto"):
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--patterns must be 'exact', 'auto' or a number of sampled patterns; got "
            f"{value!r}.") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--patterns N needs N >= 1; got {n}.")
    return n


def _alpha_arg(value: str):
    if value == "auto":
        return value
    try:
        a = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--alpha must be 'auto' or a number > 0; got {value!r}.") from None
    return a


def _loss_choices() -> list:
    from ..losses import loss_names

    return [n for n in loss_names() if n != "softmax"]


def _option_names(text: str) -> str:
    """The estimator's parameter names in a message, as this command's options."""
    for lib, cli in (("sample_patterns(X, n_patterns)", "--patterns N"),
                     ("patterns='exact'", "--patterns exact"),
                     ("max_patterns", "--max-patterns")):
        text = text.replace(lib, cli)
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE",
                        help="data: .csv/.tsv (header row optional), .npy, or .npz with X, y")
    parser.add_argument("--target", metavar="COLUMN", required=True,
                        help="name or index of the target column")
    parser.add_argument("--alpha", metavar="A|auto", type=_alpha_arg, default="auto",
                        help="weight decay (scikit-learn's MLP alpha), > 0; 'auto' "
                             "(default): the estimators' default, a share of a bound on "
                             "the weight decay above which the optimum is zero (0.03 up "
                             "to 1,500 samples, 0.01 from 13,500 to 50,000, 0.03 again "
                             "from 450,000)")
    parser.add_argument("--patterns", metavar="exact|auto|N", type=_patterns_arg,
                        default="auto",
                        help="all patterns ('exact'), all if at most --max-patterns else "
                             "sampled ('auto', default), or N sampled patterns")
    parser.add_argument("--max-patterns", metavar="M", type=int, default=2000,
                        help="largest pattern count for exact/auto (default 2000)")
    parser.add_argument("--bias", dest="bias", action="store_true", default=True,
                        help="hidden-layer bias (default)")
    parser.add_argument("--no-bias", dest="bias", action="store_false",
                        help="no hidden-layer bias")
    parser.add_argument("--classify", action="store_true",
                        help="classification (logistic loss) instead of regression")
    parser.add_argument("--loss", choices=_loss_choices(), default=None,
                        help="the loss (default: squared, or logistic with --classify); a "
                             "classification loss implies --classify")
    parser.add_argument("--random-state", metavar="S", type=int, default=None,
                        help="seed for sampled patterns")
    parser.add_argument("--out", metavar="PATH", default="model.npz",
                        help="output model file (default model.npz)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import __version__
    from .._io import atomic_savez, load_table, target_name
    from ..cli import UsageError
    from ..estimators import ConvexReLUClassifier, ConvexReLURegressor

    if args.alpha != "auto" and (not np.isfinite(args.alpha) or args.alpha <= 0):
        raise UsageError(f"--alpha must be 'auto' or a finite number > 0; got {args.alpha}.")
    if args.max_patterns < 1:
        raise UsageError(f"--max-patterns must be >= 1; got {args.max_patterns}.")
    try:
        X, y, columns = load_table(args.file, target=args.target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    from ..losses import get_loss

    if args.loss is not None and get_loss(args.loss).task == "classification":
        args.classify = True
    loss = args.loss or ("logistic" if args.classify else "squared")
    if args.classify and get_loss(loss).task != "classification":
        raise UsageError(f"--classify needs a classification loss; got --loss {loss}.")
    if not args.classify and getattr(y, "dtype", None) is not None and y.dtype.kind == "U":
        raise UsageError(f"the target column {args.target!r} holds text (e.g. {str(y[0])!r}):"
                         " class labels; pass --classify, or encode it as numbers for a "
                         "regression.")
    Est = ConvexReLUClassifier if args.classify else ConvexReLURegressor
    est = Est(alpha=args.alpha, loss=loss, patterns=args.patterns, bias=args.bias,
              max_patterns=args.max_patterns, random_state=args.random_state)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X, y)
    except ValueError as exc:
        raise UsageError(_option_names(str(exc))) from None
    elapsed = time.perf_counter() - t0
    seen = set()
    for w in caught:  # one line each, in the command's words, not a library source line
        msg = _option_names(" ".join(str(w.message).split()))
        if msg not in seen:
            seen.add(msg)
            print(f"convexrelu fit: warning: {msg}", file=sys.stderr)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "convexrelu_version": __version__,
        "kind": "classifier" if args.classify else "regressor",
        "alpha": float(est.alpha_),
        "loss": loss,
        "bias": bool(args.bias),
        "objective": est.objective_,
        "n_neurons": est.n_neurons_,
        "n_patterns": int(est.patterns_.n_patterns),
        "exact_patterns": est.exact_patterns_,
        "status": str(est.solution_status_),
        "feature_names": columns,
        "target": target_name(args.file, args.target),  # a name: predict skips it
        "n_features": int(X.shape[1]),
        "data_file": str(args.file),
    }
    arrays = est.network_.to_arrays()
    if args.classify:
        classes = est.classes_
        header["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
    path = atomic_savez(args.out, header=header, **arrays)
    kind = "exact" if est.exact_patterns_ else "sampled (not a certified global optimum)"
    print(f"fitted {X.shape[0]} samples x {X.shape[1]} features in {elapsed:.2f} s")
    print(f"patterns: {est.patterns_.n_patterns} ({kind})")
    if args.alpha == "auto":
        print(f"alpha (auto): {est.alpha_:.6g}")
    print(f"objective (sklearn normalisation): {est.objective_:.10g}")
    print(f"hidden neurons: {est.n_neurons_}")
    print(f"model written to {path}")
    return 0

"""``convexrelu certify MODEL DATA --target COLUMN``: is a trained network globally optimal?

MODEL is one of

* an .npz file written by ``convexrelu fit`` (arrays and a JSON header, no pickle);
* a torch ``state_dict`` (.pt / .pth) of two ``nn.Linear`` layers with a ReLU between,
  read with ``torch.load(..., weights_only=True)`` (no code is executed); ``--alpha`` is
  required because a state_dict does not record the weight decay;
* only with ``--trust-pickle``: a pickled, fitted scikit-learn ``MLPRegressor`` /
  ``MLPClassifier`` (.pkl / .pickle / .joblib). Unpickling runs code from the file, so
  without the flag such a file is refused before it is opened.

The certificate (:func:`convexrelu.certify`, docs/mathematics.rst §4.5) bounds the training
objective of
every two-layer ReLU network of any width from below and reports the gap. Exit status:
0 certified globally optimal, 1 not optimal or not certified (for instance with sampled
patterns), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

HELP = "certify (or refute) the global optimality of a trained two-layer ReLU network"

_NPZ = (".npz",)
_TORCH = (".pt", ".pth")
_PICKLE = (".pkl", ".pickle", ".joblib")


def _loss_choices() -> list:
    from ..losses import loss_names

    return [*loss_names(), "mse"]


def _patterns_arg(value: str):
    if value in ("auto", "exact"):
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--patterns must be 'auto', 'exact' or a number of sampled patterns; got "
            f"{value!r}."
        ) from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--patterns N needs N >= 1; got {n}.")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="model: .npz from `convexrelu fit`, a torch state_dict "
                             "(.pt/.pth), or with --trust-pickle a pickled scikit-learn MLP "
                             "(.pkl/.pickle/.joblib)")
    parser.add_argument("data", metavar="DATA",
                        help="training data: .csv/.tsv (header row optional), .npy, or .npz "
                             "with X, y")
    parser.add_argument("--target", metavar="COLUMN", required=True,
                        help="name or index of the target column")
    parser.add_argument("--alpha", metavar="A", type=float, default=None,
                        help="weight decay (scikit-learn's alpha; with --reduction mean/sum "
                             "torch's weight_decay). Default: from the model (.npz, sklearn); "
                             "required for a torch state_dict")
    parser.add_argument("--loss", choices=_loss_choices(), default=None,
                        help="training loss (default: from the model, else squared; 'mse' "
                             "is torch's MSELoss (z - y)^2)")
    parser.add_argument("--reduction", choices=("sklearn", "mean", "sum"), default="sklearn",
                        help="normalisation of the objective (default sklearn; 'mean' for a "
                             "torch loss with reduction='mean' and SGD weight_decay)")
    parser.add_argument("--patterns", metavar="auto|exact|N", type=_patterns_arg,
                        default="auto",
                        help="'auto' (default): all activation patterns when they can be "
                             "listed; else, for one output and a data rank of at most 10, a "
                             "branch and bound over all patterns (a proof); else a local "
                             "search for violating neurons (heuristic, never a proof); "
                             "'exact': all patterns or an error; N: N sampled patterns (a "
                             "quick look, never a proof)")
    parser.add_argument("--tol", metavar="T", type=float, default=1e-6,
                        help="relative-gap tolerance for 'optimal' (default 1e-6)")
    parser.add_argument("--random-state", metavar="S", type=int, default=None,
                        help="seed for --patterns N")
    parser.add_argument("--json", action="store_true",
                        help="print the certificate as JSON instead of a summary")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow a pickled scikit-learn model (unpickling runs code from "
                             "the file: only for files you trust)")


# --------------------------------------------------------------------------- loading
def _load_state_dict(path):
    """A :class:`ReLUNet` from a torch state_dict of two ``nn.Linear`` layers."""
    import numpy as np

    from ..cli import UsageError
    from ..network import ReLUNet

    try:
        import torch
    except ImportError:
        raise UsageError("reading a torch state_dict needs PyTorch; install it with "
                         "`pip install convexrelu[torch]`.") from None
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise UsageError(
            f"cannot read {path} with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            "Save the weights with torch.save(model.state_dict(), path), not the whole "
            "module.") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UsageError(f"{path} does not hold a state_dict (a dict of tensors); got "
                         f"{type(sd).__name__}. Save it with "
                         "torch.save(model.state_dict(), path).")
    supported = ("supported: two nn.Linear layers with a ReLU between, e.g. "
                 "nn.Sequential(nn.Linear(d, m), nn.ReLU(), nn.Linear(m, c))")
    keys = list(sd)
    weights = [k for k in keys if k.endswith("weight")]
    others = [k for k in keys if not (k.endswith("weight") or k.endswith("bias"))]
    if len(weights) != 2 or others or any(sd[k].ndim != 2 for k in weights):
        shapes = {k: tuple(sd[k].shape) for k in keys}
        raise UsageError(f"unsupported architecture in {path}: the state_dict holds "
                         f"{shapes}; {supported}.")
    arrays = []
    for wk in weights:
        bk = wk[: -len("weight")] + "bias"
        if bk in sd and sd[bk].ndim != 1:
            raise UsageError(f"unsupported architecture in {path}: {bk} has shape "
                             f"{tuple(sd[bk].shape)}; {supported}.")
        if not sd[wk].is_floating_point():
            raise UsageError(f"{wk} in {path} has dtype {sd[wk].dtype}; network weights must "
                             "be floating point.")
        w = sd[wk].detach().to(torch.float64).numpy()
        b = sd[bk].detach().to(torch.float64).numpy() if bk in sd else None
        arrays.append((w, b))
    if len([k for k in keys if k.endswith("bias")]) > sum(
            (w[: -len("weight")] + "bias") in sd for w in weights):
        raise UsageError(f"unsupported architecture in {path}: bias tensors without a "
                         f"matching weight ({keys}); {supported}.")
    (W1, b1), (W2, b2) = arrays
    if W1.shape[0] != W2.shape[1]:
        raise UsageError(f"the two layers in {path} do not chain: {weights[0]} has shape "
                         f"{W1.shape} ({W1.shape[0]} hidden units) but {weights[1]} has shape "
                         f"{W2.shape}; {supported}.")
    try:
        net = ReLUNet(W1, b1, W2, b2 if b2 is not None else np.zeros(W2.shape[0]))
    except ValueError as exc:
        raise UsageError(f"bad weights in {path}: {exc}") from None
    return net, b1 is not None


def _load_pickle(path):
    """A fitted scikit-learn MLP from a trusted pickle / joblib file."""
    from ..cli import UsageError

    try:
        if str(path).lower().endswith(".joblib"):
            import joblib

            obj = joblib.load(path)
        else:
            import pickle

            with open(path, "rb") as fh:
                obj = pickle.load(fh)
    except Exception as exc:
        raise UsageError(f"cannot unpickle {path}: {type(exc).__name__}: {exc}") from None
    name = type(obj).__name__
    if name not in ("MLPRegressor", "MLPClassifier"):
        raise UsageError(f"{path} holds a {name}; a pickled model must be a fitted "
                         "scikit-learn MLPRegressor or MLPClassifier (activation='relu', one "
                         "hidden layer).")
    return obj


def _split_outputs(net):
    """One-output sub-networks of a block-diagonal network (``None`` if not block-diagonal)."""
    import numpy as np

    from ..network import ReLUNet

    used = net.W2 != 0
    if np.any(used.sum(axis=0) > 1):
        return None
    return [ReLUNet(net.W1[used[j]], net.b1[used[j]], net.W2[j, used[j]][None, :],
                    net.b2[j:j + 1]) for j in range(net.n_outputs)]


# --------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from .._io import load_table
    from ..certificates import certify
    from ..cli import UsageError

    path = Path(args.model)
    suffix = path.suffix.lower()
    if suffix not in _NPZ + _TORCH + _PICKLE:
        raise UsageError(f"unsupported model file {str(path)!r}: use an .npz written by "
                         "`convexrelu fit`, a torch state_dict (.pt/.pth) or, with "
                         "--trust-pickle, a pickled scikit-learn MLP (.pkl/.pickle/.joblib).")
    if suffix in _PICKLE and not args.trust_pickle:
        # refuse before the file is opened: unpickling executes code from it
        raise UsageError(f"{str(path)!r} is a pickle; loading it runs code from the file. "
                         "Pass --trust-pickle if you trust its source, or save the network "
                         "as a torch state_dict / `convexrelu fit` .npz instead. Nothing was "
                         "loaded.")
    if not path.is_file():
        raise UsageError(f"model file {str(path)!r} does not exist.")
    if args.alpha is not None and (not np.isfinite(args.alpha) or args.alpha < 0):
        raise UsageError(f"--alpha must be a finite number >= 0; got {args.alpha}.")
    if not np.isfinite(args.tol) or args.tol < 0:
        raise UsageError(f"--tol must be a finite number >= 0; got {args.tol}.")
    if args.random_state is not None and args.patterns == "exact":
        raise UsageError("--random-state only applies with --patterns N or auto (local "
                         "search); the exact certificate is deterministic.")
    try:
        X, y, columns = load_table(args.data, target=args.target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    kw = dict(loss=args.loss, patterns=args.patterns, tol=args.tol,
              reduction=args.reduction, random_state=args.random_state)
    alpha = args.alpha
    if args.reduction != "sklearn":
        kw["weight_decay"], alpha = alpha, None
    jobs = []  # (label, model, y, certify kwargs)
    if suffix in _NPZ:
        from .predict import _align_features, _load_model

        net, header = _load_model(path)
        X = _align_features(X, columns, dict(header, n_features=net.n_features), args.data,
                            command="certify")
        kind = f"convexrelu {header.get('kind', 'regressor')}"
        if alpha is None and args.reduction == "sklearn":
            alpha = header.get("alpha")
        kw["hidden_bias"] = bool(header.get("bias", True))
        classes = header.get("classes")
        if kw["loss"] is None and header.get("loss"):
            kw["loss"] = header["loss"]
        if header.get("kind") == "classifier":
            if kw["loss"] is None:
                kw["loss"] = "logistic"
            classes = np.asarray(classes)
            labels = np.asarray(y)
            if classes.dtype.kind in "fiub":
                known = np.isin(labels, classes.astype(float))
            else:
                known = np.isin(labels.astype(str), classes.astype(str))
                labels = labels.astype(str)
                classes = classes.astype(str)
            if not np.all(known):
                raise UsageError(f"the target column {args.target!r} holds labels "
                                 f"{np.unique(labels[~known]).tolist()} that are not among the "
                                 f"model's classes {classes.tolist()}.")
            if len(classes) == 2:
                yy = [np.where(labels == classes[1], 1.0, -1.0)]
            else:  # one-vs-rest: one binary problem per class (`convexrelu fit --classify`)
                yy = [np.where(labels == c, 1.0, -1.0) for c in classes]
        else:
            yy = [y] if net.n_outputs == 1 else None
        if net.n_outputs > 1:
            parts = _split_outputs(net)
            if parts is None or yy is None:
                raise UsageError(f"{path} has {net.n_outputs} outputs but the data has one "
                                 f"target column {args.target!r}; certify a one-output model.")
            jobs = [(f"output {j} ({classes[j]})" if classes is not None else f"output {j}",
                     parts[j], yy[j]) for j in range(net.n_outputs)]
        else:
            jobs = [(None, net, yy[0])]
    elif suffix in _TORCH:
        if alpha is None and kw.get("weight_decay") is None:
            raise UsageError("a torch state_dict does not record the weight decay: pass "
                             "--alpha A (scikit-learn's normalisation) or --reduction mean "
                             "--alpha WD (torch's SGD weight_decay).")
        net, has_bias = _load_state_dict(path)
        kind = "torch state_dict"
        kw["hidden_bias"] = has_bias or bool(np.any(net.b1 != 0))
        jobs = [(None, net, y)]
    else:
        model = _load_pickle(path)
        kind = f"scikit-learn {type(model).__name__}"
        names = getattr(model, "feature_names_in_", None)
        if names is not None:
            from .predict import _align_features

            X = _align_features(X, columns, {"feature_names": [str(c) for c in names]},
                                args.data, command="certify")
        jobs = [(None, model, y)]

    # feature-count check with the file names in the message (all jobs share one model)
    first = jobs[0][1]
    n_in = first.n_features if hasattr(first, "n_features") else \
        getattr(first, "n_features_in_", None)
    if n_in is not None and X.shape[1] != n_in:
        raise UsageError(f"{args.data} has {X.shape[1]} feature columns (after removing the "
                         f"target {args.target!r}) but the model expects {n_in}; pass the "
                         "training data with the same features in the same order.")

    certs = []
    seen = set()
    for label, model, target in jobs:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cert = certify(model, X, target, alpha=alpha, **kw)
        except (ValueError, TypeError) as exc:
            # the library names its parameters; the command has options
            raise UsageError(str(exc).replace("patterns=N", "--patterns N")) from None
        for w in caught:  # one line each on stderr, not a library source line
            msg = " ".join(str(w.message).split())
            if msg not in seen:
                seen.add(msg)
                print(f"convexrelu certify: warning: {msg}", file=sys.stderr)
        certs.append((label, cert))

    optimal = all(c.optimal for _, c in certs)
    if args.json:
        if len(certs) == 1:
            out = certs[0][1].to_dict()
        else:
            out = {"optimal": optimal, "outputs": [dict(c.to_dict(), output=label)
                                                   for label, c in certs]}
        print(json.dumps(out))
    else:
        print(f"model: {path} ({kind}); data: {args.data}, {X.shape[0]} samples x "
              f"{X.shape[1]} features")
        for label, c in certs:
            if label is not None:
                print(f"-- {label} (one-vs-rest / per-output problem)")
            print(c.summary())
    return 0 if optimal else 1

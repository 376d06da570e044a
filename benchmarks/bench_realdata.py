"""Benchmark: default fits on real data sets, each in its own capped child process.

One command writes one markdown table: for every data set and model, the fit time (wall
and CPU seconds of the ``fit`` call), the peak resident memory of the child process, the
training objective ``J`` (scikit-learn's normalisation where it is defined), the test
score (R² for regression, accuracy for classification), the number of neurons and what
the certificate says, and whether the goals below are met.

Data sets (``--datasets``): ``diabetes``, ``breast_cancer``, ``iris``, ``wine``,
``digits``, ``linnerud`` (3 outputs: multi-output regression), ``regression_20k``
(``make_regression(20000, 20, noise=10, random_state=0)``) and ``classification_20k``
(``make_classification(20000, 20, random_state=0)``); ``regression_100k`` and
``classification_100k`` (the same generators at 100,000 samples; only when named:
``--datasets regression_100k classification_100k``, goal 600 s, five times the 20,000-row
sets' for five times the rows); ``tiny_regression`` and ``tiny_classification`` (60
samples, 2 features) are the ``--quick`` smoke-test sets.
25 % of the samples are held out (``train_test_split(..., test_size=0.25,
random_state=0)``, stratified for classification); ``X`` is standardised with the
training split's mean and standard deviation (a constant column is only centred); the
regression targets are left as they are.

Models (``--models``):

* ``plain``: ``ConvexReLURegressor()`` / ``ConvexReLUClassifier()``, no arguments;
* ``cv``: ``ConvexReLURegressorCV()`` / ``ConvexReLUClassifierCV()`` when convexrelu has
  them, else the row says "not available";
* ``mlp``: ``MLPRegressor`` / ``MLPClassifier(max_iter=2000, random_state=0)``;
* ``hgb``: ``HistGradientBoostingRegressor`` / ``Classifier(random_state=0)`` (several
  outputs: one per output through ``MultiOutputRegressor``);
* ``scnn``: scnn's gated ReLU (pyscnn; R-FISTA with its default ``max_iters`` and ``tol``,
  float32), squared loss, on the same gates count as the default fit's patterns, with the
  default fit's ``alpha`` converted to scnn's ``lam`` by the conversion of
  :mod:`benchmarks.bench_solvers` (``build``: ``alpha = lam * n`` for scnn's ``c``-output
  objective); regression targets centred (scnn has no output bias), classes one-hot
  (0/1, predicted class = largest output). Its objective and certified gap are those of
  the gated program over its gates (``bench_solvers.evaluate``), not a ReLU-network
  certificate;
* ``gridsearch`` (``diabetes`` and ``tiny_regression`` only):
  ``GridSearchCV(ConvexReLURegressor(), {"alpha": [300, 1000, 3000, 10000]}, cv=3)``
  (a grid around the default fit's ``alpha_``, 986 on this split).

Every fit runs in a fresh Python child process (:func:`run_child`) with one BLAS thread
(``OMP_NUM_THREADS=1`` and friends in its environment, ``--threads``), an address-space
cap (``resource.setrlimit(RLIMIT_AS)`` in the child, ``--memory-limit`` GB, 1 GB = 2**30
bytes) and a wall-clock cap (``--time-limit`` seconds, the whole child: imports, data and
fit; the process group is killed at the cap). Its peak RSS is ``ru_maxrss`` of that child
from ``os.wait4``. A capped, killed or crashed child is a row that says so ("timed out >
600 s", "memory > 4 GB", "error: ..."); the benchmark itself goes on.

Goals (from the issue): the default fit (``plain``) within 5 s on iris, wine and
diabetes, 30 s for the other data sets with n <= 2000 and 120 s at n = 20,000; peak RSS
<= 2 GB (``plain``, ``cv``, ``gridsearch``); the CV model's test score >= the default
MLP's; the grid search within 60 s.

Usage::

    python -m benchmarks realdata [--datasets KEY ...] [--models KEY ...]
        [--time-limit 600] [--memory-limit 4] [--jobs 1] [--budget SECONDS]
        [--quick] [--out table.md]

The full run is at most (8 data sets x 5 models + 1) children x ``--time-limit``; with
today's solvers many default fits reach the cap. ``--budget`` stops starting new
children after that many seconds (the rows left say "not run").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, Optional

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

GB = 2 ** 30
MB = 2 ** 20
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

# key: (task, n_samples of the whole data set, goal seconds of the default fit)
DATASETS = {
    "diabetes": ("regression", 442, 5.0),
    "breast_cancer": ("classification", 569, 30.0),
    "iris": ("classification", 150, 5.0),
    "wine": ("classification", 178, 5.0),
    "digits": ("classification", 1797, 30.0),
    "linnerud": ("regression", 20, 30.0),
    "regression_20k": ("regression", 20000, 120.0),
    "classification_20k": ("classification", 20000, 120.0),
    "regression_100k": ("regression", 100000, 600.0),
    "classification_100k": ("classification", 100000, 600.0),
    "tiny_regression": ("regression", 60, 5.0),
    "tiny_classification": ("classification", 60, 5.0),
}
# the 100,000-row sets run only when named (3-5 minutes for the classifier alone)
FULL_DATASETS = tuple(k for k in DATASETS if not k.startswith("tiny_")
                      and not k.endswith("_100k"))
QUICK_DATASETS = ("tiny_regression", "tiny_classification")
MODELS = ("plain", "cv", "mlp", "hgb", "scnn", "gridsearch")
GRIDSEARCH_DATASETS = ("diabetes", "tiny_regression")
# around the default fit's alpha_ on diabetes (985.8 = 0.03 alpha_max; the targets are not
# scaled): an absolute grid of 1e-3 to 1, the scale of the old default alpha=1e-3, lies
# deep in the interpolating regime (every fit keeps 100+ neurons; one fit at alpha = 1 took
# 96 s) and is not a search a user of the default would run
GRID_ALPHAS = (300.0, 1000.0, 3000.0, 10000.0)
RSS_GOAL = 2 * GB
GRIDSEARCH_GOAL = 60.0

# the bootstrap of every child: python -c BOOT SPEC.json
BOOT = ("import sys; from benchmarks.bench_realdata import _child_main; "
        "sys.exit(_child_main(sys.argv[1]))")
MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "bad_alloc",
                  "memory allocation of", "out of memory", "Unable to allocate")


# ------------------------------------------------------------------ child processes
class ChildOutcome(NamedTuple):
    """What one child process gave back.

    ``status``: ``"ok"`` (``result`` is the target's dict), ``"timeout"``, ``"memory"``
    (MemoryError in the child, or it died with an allocation failure on its stderr) or
    ``"error"`` (``message``: one line). ``peak_rss``: ``ru_maxrss`` of the child in bytes
    (up to the kill for a capped child); ``cpu``: its user + system seconds; ``wall``: its
    wall-clock seconds.
    """

    status: str
    result: Optional[dict]
    message: str
    wall: float
    cpu: float
    peak_rss: int


def _one_line(text, limit=160, last=False):
    """The first (``last``: the last) non-empty line of ``text``, at most ``limit`` chars."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    line = (lines[-1] if last else lines[0]) if lines else ""
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _child_main(spec_path) -> int:
    """Entry point of a child: cap its memory, run the target, write the outcome as JSON."""
    with open(spec_path) as fh:
        spec = json.load(fh)
    if spec.get("memory_limit"):
        cap = int(spec["memory_limit"])
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    out = {}
    try:
        import importlib

        module, func = spec["target"].split(":")
        out = {"status": "ok",
               "result": getattr(importlib.import_module(module), func)(**spec["kwargs"])}
    except MemoryError as exc:
        out = {"status": "memory", "message": f"{type(exc).__name__}: {_one_line(exc)}"}
    except Exception as exc:  # the row reports it; the benchmark goes on
        out = {"status": "error", "message": f"{type(exc).__name__}: {_one_line(exc)}"}
    with open(spec["result_path"], "w") as fh:
        json.dump(out, fh, default=_jsonable)
    return 0


def _jsonable(x):
    try:
        return x.item()  # numpy scalars
    except AttributeError:
        return str(x)


def run_child(target, kwargs, time_limit, memory_limit=None, threads=1, pythonpath=()):
    """Run ``target(**kwargs)`` in a fresh Python child process with caps.

    Parameters
    ----------
    target : str
        ``"module:function"``, importable in the child (the repository root and
        ``pythonpath`` are on its ``PYTHONPATH``); it must return a JSON-serialisable dict.
    kwargs : dict
        JSON-serialisable keyword arguments.
    time_limit : float
        Wall-clock seconds; the child's process group is killed (SIGKILL) at the cap.
    memory_limit : int or None
        Bytes of address space (``RLIMIT_AS``, set in the child before it imports the
        target); None: no cap.
    threads : int
        BLAS / OpenMP threads of the child (its environment).

    Returns
    -------
    ChildOutcome
    """
    with tempfile.TemporaryDirectory(prefix="bench_realdata_") as tmp:
        spec_path, result_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "out.json")
        with open(spec_path, "w") as fh:
            json.dump({"target": target, "kwargs": kwargs, "memory_limit": memory_limit,
                       "result_path": result_path}, fh)
        env = dict(os.environ)
        env.update({v: str(threads) for v in THREAD_VARS})
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), *map(str, pythonpath)]
            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        log_path = os.path.join(tmp, "log.txt")
        t0 = time.perf_counter()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-c", BOOT, spec_path], cwd=str(ROOT),
                                    env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, start_new_session=True)
        timed_out, delay = False, 0.01
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > time_limit:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the child and its helpers
                except ProcessLookupError:  # pragma: no cover - exited meanwhile
                    pass
                pid, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(delay)
            delay = min(2 * delay, 0.2)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        rss = int(usage.ru_maxrss) * 1024  # Linux: KiB
        cpu = usage.ru_utime + usage.ru_stime
        if timed_out:
            return ChildOutcome("timeout", None, f"timed out > {time_limit:g} s", wall, cpu,
                                rss)
        out = None
        if os.path.exists(result_path):
            with open(result_path) as fh:
                try:
                    out = json.load(fh)
                except ValueError:
                    out = None
        with open(log_path, errors="replace") as fh:
            log_text = fh.read()
    if out is not None:
        return ChildOutcome(out["status"], out.get("result"), out.get("message", ""), wall,
                            cpu, rss)
    code = proc.returncode
    how = (f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}")
    last = _one_line(log_text, last=True)
    status = "memory" if any(m in log_text for m in MEMORY_MARKERS) else "error"
    return ChildOutcome(status, None, how + (f": {last}" if last else ""), wall, cpu, rss)


# ------------------------------------------------------------------------ the fits
def load(name):
    """``(X_train, X_test, y_train, y_test, task)`` of a data set key (module docstring)."""
    import numpy as np
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    task = DATASETS[name][0]
    if name in ("regression_20k", "regression_100k"):
        X, y = datasets.make_regression(DATASETS[name][1], 20, noise=10, random_state=0)
    elif name in ("classification_20k", "classification_100k"):
        X, y = datasets.make_classification(DATASETS[name][1], 20, random_state=0)
    elif name == "tiny_regression":
        X, y = datasets.make_regression(60, 2, noise=1.0, random_state=0)
    elif name == "tiny_classification":
        X, y = datasets.make_classification(60, 2, n_informative=2, n_redundant=0,
                                            random_state=0)
    else:
        X, y = getattr(datasets, "load_" + name)(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.25, random_state=0,
        stratify=y if task == "classification" else None)
    mean, std = Xtr.mean(0), Xtr.std(0)
    std = np.where(std > 0, std, 1.0)
    return (Xtr - mean) / std, (Xte - mean) / std, ytr, yte, task


def _timed_fit(est, X, y):
    """Fit, returning ``(wall seconds, CPU seconds, warnings)`` of the fit call only."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        t, c = time.perf_counter(), time.process_time()
        est.fit(X, y)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    seen = {}
    for w in caught:
        key = f"{w.category.__name__}: {_one_line(w.message, 150)}"
        seen[key] = seen.get(key, 0) + 1
    return wall, cpu, [f"{k} (x{v})" if v > 1 else k for k, v in seen.items()]


def describe_certificate(cert, n_patterns=None):
    """What a convexrelu certificate (or a list of them, one per output) says, in words.

    "optimal (exact)", "not optimal, rel. gap 3e-02 (exact)", "heuristic: best violation
    M/β=1.7" or "sampled, not a proof (...)"; for a list, the worst output.
    """
    if cert is None:
        return "none"
    if isinstance(cert, (list, tuple)):
        if not cert:
            return "none"
        worst = max(cert, key=lambda c: (not c.optimal, not c.exact, c.relative_gap))
        return describe_certificate(worst, n_patterns) + f" [worst of {len(cert)} outputs]"
    info = getattr(cert, "info", None) or {}
    kind = str(getattr(cert, "kind", None) or info.get("kind") or info.get("method") or "")
    over = f"{cert.n_patterns_checked} patterns"
    cons = ", conservative bound" if getattr(cert, "conservative", False) else ""
    if cert.exact and cert.optimal:
        return f"optimal (exact, {over}{cons})"
    if cert.exact:
        return f"not optimal, rel. gap {cert.relative_gap:.0e} (exact, {over}{cons})"
    if getattr(cert, "heuristic", False) or "heuristic" in kind.lower() or \
            kind == "local_search":
        return (f"heuristic (local search): best violation M/β={cert.dual_ratio:.2g}, "
                "not a proof")
    return (f"sampled, not a proof (rel. gap {cert.relative_gap:.0e} over {over}, "
            f"M/β={cert.dual_ratio:.2g})")


def _convexrelu_model(name):
    """``getattr(convexrelu, name)``, else from ``convexrelu._cv``; None when absent."""
    import importlib

    import convexrelu

    cls = getattr(convexrelu, name, None)
    if cls is None:
        try:
            cls = getattr(importlib.import_module("convexrelu._cv"), name, None)
        except ImportError:
            cls = None
    return cls


def _ours_summary(est, task, n_classes, alpha_note=""):
    """J, neurons and certificate of a convexrelu estimator (or a CV / search wrapper)."""
    inner = getattr(est, "best_estimator_", None) or est
    obj = getattr(inner, "objective_", getattr(est, "objective_", None))
    cert = getattr(est, "certificate_", getattr(inner, "certificate_", None))
    nn = getattr(inner, "n_neurons_", getattr(est, "n_neurons_", None))
    pats = getattr(inner, "patterns_", None)
    alpha = getattr(inner, "alpha_", getattr(est, "alpha_", getattr(inner, "alpha", None)))
    if task == "regression":
        loss = "sq"
    elif n_classes == 2:
        loss = "logistic"
    else:
        loss = f"sum of {n_classes} one-vs-rest logistic"
    label = f"{loss}, α={alpha:g}" if isinstance(alpha, (int, float)) else loss
    return {"J": obj, "J_label": label + alpha_note, "neurons": nn,
            "certificate": describe_certificate(cert),
            "n_patterns": None if pats is None else int(pats.n_patterns)}


def _mlp_summary(mlp, X, y, task):
    """Exact ``J`` (sklearn's ``MLP*`` loss incl. the L2 term) and live neurons of an MLP."""
    import numpy as np
    from sklearn.metrics import log_loss

    n = X.shape[0]
    if task == "regression":
        loss = 0.5 * float(np.mean((mlp.predict(X).reshape(np.shape(y)) - y) ** 2))
        what = "sq"
    else:
        loss = float(log_loss(y, mlp.predict_proba(X), labels=mlp.classes_))
        what = "logistic" if len(mlp.classes_) == 2 else "softmax"
    pen = 0.5 * mlp.alpha * sum(float(np.sum(W ** 2)) for W in mlp.coefs_) / n
    W1, b1 = mlp.coefs_[0], mlp.intercepts_[0]
    live = (np.max(X @ W1 + b1, axis=0) > 0) & (np.linalg.norm(mlp.coefs_[1], axis=1) > 0)
    return {"J": loss + pen, "J_label": f"{what}, α={mlp.alpha:g}", "neurons": int(live.sum()),
            "certificate": "none"}


def _fit_scnn(Xtr, Xte, ytr, yte, task):
    """scnn's gated ReLU (module docstring); returns the row's fields."""
    import warnings

    import numpy as np

    try:
        from scnn.metrics import Metrics
        from scnn.models import ConvexGatedReLU
        from scnn.optimize import optimize_model
        from scnn.regularizers import NeuronGL1
        from scnn.solvers import RFISTA
    except Exception as exc:
        return {"unavailable": f"scnn does not import ({type(exc).__name__}: "
                f"{_one_line(exc, 80)}); pip install pyscnn"}
    from benchmarks import bench_solvers
    from convexrelu import ConvexReLUClassifier, ConvexReLURegressor

    default = ConvexReLURegressor() if task == "regression" else ConvexReLUClassifier()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pats = default._get_patterns(Xtr)
    P = pats.n_patterns  # the default fit's pattern count
    if task == "regression":
        offset = ytr.mean(0)
        Y = (ytr - offset).reshape(ytr.shape[0], -1)
        Yfit = ytr.reshape(ytr.shape[0], -1)
    else:
        classes = np.unique(ytr)
        Y = (ytr[:, None] == classes[None, :]).astype(float)
        Yfit = np.where(Y > 0, 1.0, -1.0)[:, 1:] if classes.size == 2 else \
            np.where(Y > 0, 1.0, -1.0)
    n = Xtr.shape[0]
    # the default fit's alpha ("auto" resolved on its own patterns)
    alpha = default._resolve_alpha(Xtr, Yfit, default.loss, pats)
    lam = alpha / n  # bench_solvers.build: alpha = lam * n (scnn's c-output form)
    progs = bench_solvers.build(Xtr, Y, True, P, "gated_relu", lam)
    p0 = progs[0]
    model = ConvexGatedReLU(p0.patterns.gates, c=Y.shape[1])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        t, c = time.perf_counter(), time.process_time()
        cm, _ = optimize_model(model, RFISTA(model), Metrics(), p0.X_aug, Y,
                               regularizer=NeuronGL1(lam), return_convex=True,
                               unitize_data=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    V = [np.asarray(v, np.float64) for v in cm.parameters[0]]  # c blocks (p, d + 1)
    G = np.asarray(cm.G, np.float64)
    ev = bench_solvers.evaluate(progs, {"V": V, "W": [None] * len(V), "G": G})
    Xa = np.hstack([Xte, np.ones((Xte.shape[0], 1))])
    mask = Xa @ G > 0
    Z = np.column_stack([((Xa @ v.T) * mask).sum(1) for v in V])
    if task == "regression":
        from sklearn.metrics import r2_score

        pred = Z + offset
        score = float(r2_score(yte, pred.reshape(np.shape(yte))))
    else:
        score = float(np.mean(classes[np.argmax(Z, axis=1)] == yte))
    label = f"gated sq, penalised bias, α={alpha:g} (lam={lam:.3g})"
    cert = "-" if ev is None else (
        f"gated program only: rel. gap {ev['rel_gap']:.0e} over its {G.shape[1]} gates, "
        "not a ReLU certificate")
    return {"fit_time": wall, "cpu_time": cpu, "rss_before": rss0,
            "J": None if ev is None else ev["obj"],
            "J_label": label, "test_score": score,
            "neurons": None if ev is None else ev["neurons"], "certificate": cert,
            "warnings": sorted({f"{w.category.__name__}: {_one_line(w.message, 150)}"
                                for w in caught}), "n_patterns": int(G.shape[1])}


def fit_one(dataset, model):
    """Fit one model on one data set (in a child process); the row's fields as a dict.

    Keys: ``fit_time``, ``cpu_time`` (of the fit call), ``rss_before`` (bytes, after the
    imports and the data, before the fit), ``J``, ``J_label``, ``test_score``,
    ``neurons``, ``certificate``, ``warnings``; or ``unavailable`` (a sentence).
    """
    import numpy as np

    Xtr, Xte, ytr, yte, task = load(dataset)
    reg = task == "regression"
    n_classes = None if reg else len(np.unique(ytr))
    if model == "scnn":
        return _fit_scnn(Xtr, Xte, ytr, yte, task)
    from convexrelu import ConvexReLUClassifier, ConvexReLURegressor

    note = ""
    if model == "plain":
        est = ConvexReLURegressor() if reg else ConvexReLUClassifier()
    elif model == "cv":
        name = "ConvexReLURegressorCV" if reg else "ConvexReLUClassifierCV"
        cls = _convexrelu_model(name)
        if cls is None:
            return {"unavailable": f"not available (convexrelu has no {name})"}
        est = cls()
    elif model == "gridsearch":
        from sklearn.model_selection import GridSearchCV

        est = GridSearchCV(ConvexReLURegressor(), {"alpha": list(GRID_ALPHAS)}, cv=3)
        note = " (best of the grid)"
    elif model == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        est = (MLPRegressor if reg else MLPClassifier)(max_iter=2000, random_state=0)
    elif model == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.ensemble import HistGradientBoostingRegressor

        est = (HistGradientBoostingRegressor if reg else HistGradientBoostingClassifier)(
            random_state=0)
        if reg and np.ndim(ytr) == 2:
            from sklearn.multioutput import MultiOutputRegressor

            est = MultiOutputRegressor(est)
            note = " (one model per output)"
    else:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    wall, cpu, warns = _timed_fit(est, Xtr, ytr)
    out = {"fit_time": wall, "cpu_time": cpu, "rss_before": rss0, "warnings": warns,
           "test_score": float(est.score(Xte, yte)), "note": note}
    if model == "mlp":
        out.update(_mlp_summary(est, Xtr, ytr, task))
    elif model == "hgb":
        out.update({"J": None, "J_label": "", "neurons": None, "certificate": "none"})
    else:
        out.update(_ours_summary(est, task, n_classes, note if model == "gridsearch" else ""))
        if model == "gridsearch":
            out["note"] = f" (best alpha={est.best_params_['alpha']:g})"
    return out


# ------------------------------------------------------------------------ the table
class Job(NamedTuple):
    dataset: str
    model: str


def jobs_for(datasets, models):
    """The (data set, model) pairs, data set by data set; grid search on its data sets."""
    out = []
    for ds in datasets:
        for m in models:
            if m == "gridsearch" and ds not in GRIDSEARCH_DATASETS:
                continue
            out.append(Job(ds, m))
    return out


def model_label(model, task):
    reg = task == "regression"
    return {
        "plain": "ours: ConvexReLURegressor()" if reg else "ours: ConvexReLUClassifier()",
        "cv": "ours: ConvexReLURegressorCV()" if reg else "ours: ConvexReLUClassifierCV()",
        "mlp": ("MLPRegressor" if reg else "MLPClassifier") + "(max_iter=2000, random_state=0)",
        "hgb": ("HistGradientBoostingRegressor" if reg else "HistGradientBoostingClassifier")
        + "(random_state=0)",
        "scnn": "scnn gated ReLU (R-FISTA defaults, float32)",
        "gridsearch": "GridSearchCV(ConvexReLURegressor(), alpha in {"
        + ", ".join(f"{a:g}" for a in GRID_ALPHAS) + "}, cv=3)",
    }[model]


def _mb(nbytes):
    return f"{nbytes / MB:.0f}"


def _fmt(x, spec=".4g"):
    return "-" if x is None else format(x, spec)


def _status_text(oc, args):
    if oc is None:
        return "not run (--budget spent)"
    if oc.status == "timeout":
        return f"timed out > {args.time_limit:g} s"
    if oc.status == "memory" and (oc.message or "").startswith("MemoryBudgetError"):
        # refused before allocating (convexrelu.set_config(memory_budget=...))
        return f"refused by the memory budget: {_one_line(oc.message, 200)}"
    if oc.status == "memory":
        return f"memory > {args.memory_limit:g} GB"
    if oc.status == "error":
        return f"error: {oc.message}"
    if oc.result and "unavailable" in oc.result:
        return oc.result["unavailable"]
    return None


def goals(job, oc, mlp_score, args):
    """The goal cells of one row: list of ``(goal, met)`` with met True/False/None."""
    out = []
    ok = oc is not None and oc.status == "ok" and oc.result and "unavailable" not in oc.result
    if oc is None or (oc.result and "unavailable" in oc.result):
        return out
    if job.model in ("plain", "gridsearch"):
        limit = DATASETS[job.dataset][2] if job.model == "plain" else GRIDSEARCH_GOAL
        met = ok and oc.result["fit_time"] <= limit
        out.append((f"time ≤ {limit:g} s", met))
    if job.model in ("plain", "cv", "gridsearch"):
        if oc.status == "memory":
            out.append(("RSS ≤ 2 GB", False))
        elif oc.peak_rss > RSS_GOAL:
            out.append(("RSS ≤ 2 GB", False))
        else:
            out.append(("RSS ≤ 2 GB", True if ok else None))
    if job.model == "cv":
        met = None if not ok or mlp_score is None else oc.result["test_score"] >= mlp_score
        out.append(("score ≥ MLP's", met if ok else False))
    return out


def _goal_text(gs):
    word = {True: "yes", False: "no", None: "unknown"}
    return "; ".join(f"{g}: {word[m]}" for g, m in gs) if gs else ""


def table(jobs, outcomes, args):
    """The markdown lines of the table, the goal summary and the warnings."""
    head = ["| data set | model | fit time (s) | fit CPU (s) | peak RSS (MB) | train J "
            "| test score | neurons | certificate | goal met? |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    mlp_scores = {}
    for job, oc in zip(jobs, outcomes):
        if job.model == "mlp" and oc is not None and oc.status == "ok":
            mlp_scores[job.dataset] = oc.result["test_score"]
    rows, notes, summary = [], [], []
    for job, oc in zip(jobs, outcomes):
        task, n_all, _ = DATASETS[job.dataset]
        ds = f"{job.dataset} (n={n_all}, {'R²' if task == 'regression' else 'accuracy'})"
        label = model_label(job.model, task)
        gs = goals(job, oc, mlp_scores.get(job.dataset), args)
        summary += [(job, g, m) for g, m in gs]
        bad = _status_text(oc, args)
        if bad is not None:
            rss = "-" if oc is None or oc.status == "ok" else \
                f"≥ {_mb(oc.peak_rss)} (killed)" if oc.status == "timeout" else _mb(oc.peak_rss)
            rows.append(f"| {ds} | {label} | {bad} | - | {rss} | - | - | - | - | "
                        f"{_goal_text(gs)} |")
            if oc is not None and oc.status == "memory" and oc.message:
                notes.append(f"- {job.dataset} / {job.model}: {oc.message}")
            continue
        r = oc.result
        label += r.get("note", "")
        J = "-" if r.get("J") is None else f"{r['J']:.4g} ({r['J_label']})"
        rss = f"{_mb(oc.peak_rss)} (before fit {_mb(r.get('rss_before', 0))})"
        cert = r["certificate"]
        if r.get("n_patterns") and job.model in ("plain", "cv", "gridsearch"):
            cert += f"; fitted over {r['n_patterns']} patterns"
        rows.append(f"| {ds} | {label} | {r['fit_time']:.2f} | {r['cpu_time']:.2f} | {rss} | "
                    f"{J} | {r['test_score']:.4f} | {_fmt(r.get('neurons'), 'd')} | {cert} "
                    f"| {_goal_text(gs)} |")
        for w in r.get("warnings", [])[:3]:
            notes.append(f"- {job.dataset} / {job.model}: {w}")
    lines = head + rows
    if summary:
        met = sum(1 for *_, m in summary if m)
        lines += ["", f"Goals met: {met} of {len(summary)} checked "
                  f"({sum(1 for *_, m in summary if m is False)} not met, "
                  f"{sum(1 for *_, m in summary if m is None)} unknown)."]
        missed = [f"{j.dataset} / {j.model}: {g}" for j, g, m in summary if m is False]
        if missed:
            lines.append("Not met: " + "; ".join(missed) + ".")
    if notes:
        lines += ["", "Warnings raised during the fits (first 3 distinct per row) and the "
                  "failed allocations:", ""] + notes
    return lines


def header(args, command):
    import platform

    try:
        load1 = "%.1f/%.1f/%.1f" % os.getloadavg()
    except OSError:  # pragma: no cover
        load1 = "?"
    return [
        f"Command: `{command}`", "",
        f"Machine: {os.cpu_count()} CPUs, load average {load1} at the start; Python "
        f"{platform.python_version()}. Each fit in its own child process with "
        f"{args.threads} BLAS thread(s), capped at {args.time_limit:g} s wall clock (the "
        f"whole child) and {args.memory_limit:g} GB of address space (RLIMIT_AS; GB = 2**30 "
        "bytes, MB = 2**20). Fit time and CPU: the `fit` call only; peak RSS: ru_maxrss of "
        "the child (imports and data included; the RSS before the fit in brackets). 25 % "
        "test split (random_state=0, stratified for classification), X standardised with "
        "the training split's statistics, regression targets as they are. Train J: the "
        "model's training objective in scikit-learn's normalisation (its loss and alpha in "
        "brackets; ours: `objective_`, MLP: computed from its weights, scnn: its gated "
        "program's objective with the default fit's alpha, lam = alpha / n as in "
        "benchmarks/bench_solvers.py). Test score: R² (uniform average over outputs) or "
        "accuracy. Neurons: ours `n_neurons_` (pruned network), MLP: hidden units active "
        "on some training sample, scnn: nonzero (output, gate) blocks. A row capped for "
        "memory counts as RSS > 2 GB (it asked for more than the cap).", ""]


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=None,
                    help="data sets (default: all but the tiny ones; --quick: the tiny ones)")
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                    help="models (default: all)")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="wall-clock cap (s) of each child (default 600; --quick: 60)")
    ap.add_argument("--memory-limit", type=float, default=4.0,
                    help="address-space cap (GB = 2**30 bytes) of each child (default 4)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads per child")
    ap.add_argument("--jobs", type=int, default=1,
                    help="children run at the same time (default 1; more skews the times)")
    ap.add_argument("--budget", type=float, default=None,
                    help="start no child after this many seconds of the whole run")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run on the two tiny synthetic data sets, 60 s caps")
    ap.add_argument("--out", default=None, help="also write the markdown here (atomically)")
    args = ap.parse_args(argv)
    if args.datasets is None:
        args.datasets = list(QUICK_DATASETS if args.quick else FULL_DATASETS)
    if args.time_limit is None:
        args.time_limit = 60.0 if args.quick else 600.0
    if args.time_limit <= 0 or args.memory_limit <= 0 or args.jobs < 1 or args.threads < 1:
        ap.error("--time-limit, --memory-limit, --jobs and --threads must be positive")
    return args


def _progress(msg):
    print(msg, file=sys.stderr, flush=True)


def main(argv=None, command=None) -> int:
    args = _parse(argv)
    command = command or "python benchmarks/bench_realdata.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    jobs = jobs_for(args.datasets, args.models)
    lines = header(args, command)
    t_start = time.perf_counter()
    outcomes = [None] * len(jobs)

    def work(i):
        if args.budget is not None and time.perf_counter() - t_start > args.budget:
            return
        job = jobs[i]
        oc = run_child("benchmarks.bench_realdata:fit_one",
                       {"dataset": job.dataset, "model": job.model}, args.time_limit,
                       int(args.memory_limit * GB), args.threads)
        outcomes[i] = oc
        what = _status_text(oc, args) or f"{oc.result['fit_time']:.2f} s"
        _progress(f"[{time.perf_counter() - t_start:6.0f} s] {job.dataset} / {job.model}: "
                  f"{what}, peak RSS {_mb(oc.peak_rss)} MB")

    interrupted = False
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(work, range(len(jobs))))
    except KeyboardInterrupt:  # pragma: no cover - interactive
        interrupted = True
    lines += table(jobs, outcomes, args)
    if interrupted:  # pragma: no cover
        lines += ["", "**Interrupted**: the rows above are what was computed."]
    lines += ["", f"Total wall time {time.perf_counter() - t_start:.0f} s."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        from convexrelu._io import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

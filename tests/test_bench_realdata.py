"""The real-data benchmark (benchmarks/bench_realdata.py): its capped child processes
(time-out, memory cap, crash, peak RSS), how rows and goals are reported, the MLP
objective it computes, and one ``--quick`` run end to end. No timing is asserted."""

import os
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
SELF = "test_bench_realdata"  # this module, imported by the children through pythonpath

pytestmark = pytest.mark.skipif(not (ROOT / "benchmarks" / "bench_realdata.py").exists(),
                                reason="benchmarks folder not present")


@pytest.fixture
def bench():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import bench_realdata
    finally:
        sys.path.remove(str(ROOT))
    return bench_realdata


# ----------------------------------------------------------- targets run by the children
def child_sleep(seconds):
    time.sleep(seconds)
    return {"slept": seconds}


def child_allocate(nbytes):
    block = bytearray(nbytes)  # zero-filled: every page touched
    return {"n": len(block), "threads": os.environ.get("OMP_NUM_THREADS")}


def child_raise():
    raise ValueError("bad input\nsecond line")


def child_abort(message):
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os.abort()


def run(bench, func, kwargs, time_limit=30.0, memory=None):
    return bench.run_child(f"{SELF}:{func}", kwargs, time_limit, memory, pythonpath=[HERE])


# ------------------------------------------------------------------- child processes
def test_child_result_threads_and_peak_rss(bench):
    oc = run(bench, "child_allocate", {"nbytes": 200 * 2 ** 20}, memory=2 * 2 ** 30)
    assert oc.status == "ok", oc.message
    assert oc.result == {"n": 200 * 2 ** 20, "threads": "1"}  # one BLAS thread by default
    assert oc.peak_rss >= 200 * 2 ** 20  # ru_maxrss of that child, from wait4
    assert oc.cpu >= 0 and oc.wall > 0


def test_child_timeout_is_reported_and_killed(bench):
    t = time.perf_counter()
    oc = run(bench, "child_sleep", {"seconds": 60}, time_limit=1.0)
    assert time.perf_counter() - t < 30
    assert oc.status == "timeout" and oc.result is None
    assert oc.message == "timed out > 1 s"


def test_child_memory_cap(bench):
    oc = run(bench, "child_allocate", {"nbytes": 2 * 2 ** 30}, memory=512 * 2 ** 20)
    assert oc.status == "memory", oc
    assert "MemoryError" in oc.message
    # a forked child starts with the parent's resident pages (counted in its ru_maxrss),
    # so a long test session's parent adds to the child's own peak under the cap
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert oc.peak_rss < 512 * 2 ** 20 + parent_peak


def test_child_exception_and_crash(bench):
    oc = run(bench, "child_raise", {})
    assert (oc.status, oc.message) == ("error", "ValueError: bad input")
    oc = run(bench, "child_abort", {"message": "something broke"})
    assert oc.status == "error"
    assert oc.message == "killed by SIGABRT: something broke"
    # an allocation failure outside Python (e.g. Rust or C++) is a memory failure
    oc = run(bench, "child_abort", {"message": "memory allocation of 80000 bytes failed"})
    assert oc.status == "memory"


# ------------------------------------------------------------------ rows and goals
def cert(**kw):
    base = dict(exact=True, optimal=True, relative_gap=1e-8, n_patterns_checked=12,
                conservative=False, dual_ratio=1.0, info={})
    base.update(kw)
    return SimpleNamespace(**base)


def test_describe_certificate(bench):
    d = bench.describe_certificate
    assert d(None) == "none"
    assert d(cert()) == "optimal (exact, 12 patterns)"
    assert d(cert(optimal=False, relative_gap=0.031)) == \
        "not optimal, rel. gap 3e-02 (exact, 12 patterns)"
    assert d(cert(exact=False, optimal=False, relative_gap=0.5, dual_ratio=1.7)) == \
        "sampled, not a proof (rel. gap 5e-01 over 12 patterns, M/β=1.7)"
    assert d(cert(exact=False, optimal=False, dual_ratio=1.7, info={"method": "heuristic"})) \
        == "heuristic (local search): best violation M/β=1.7, not a proof"
    assert d(cert(exact=False, optimal=False, dual_ratio=1.2, heuristic=True)) \
        == "heuristic (local search): best violation M/β=1.2, not a proof"
    worst = d([cert(), cert(optimal=False, relative_gap=0.2), cert()])
    assert worst == "not optimal, rel. gap 2e-01 (exact, 12 patterns) [worst of 3 outputs]"


def outcome(bench, status, result=None, rss=100 * 2 ** 20, message=""):
    return bench.ChildOutcome(status, result, message, 1.0, 1.0, rss)


def fit(t, score, **kw):
    r = dict(fit_time=t, cpu_time=t, rss_before=0, J=0.5, J_label="sq", test_score=score,
             neurons=3, certificate="optimal (exact, 12 patterns)", warnings=[])
    r.update(kw)
    return r


def test_table_reports_failures_and_goals(bench):
    args = bench._parse(["--time-limit", "600", "--datasets", "iris"])
    J = bench.Job
    jobs = [J("iris", "plain"), J("iris", "cv"), J("iris", "mlp"), J("iris", "hgb"),
            J("iris", "scnn"), J("diabetes", "plain"), J("diabetes", "gridsearch"),
            J("wine", "cv"), J("wine", "mlp"), J("digits", "plain")]
    outs = [outcome(bench, "timeout", rss=3 * 2 ** 30),
            outcome(bench, "ok", fit(2.0, 0.95, warnings=["UserWarning: sampled"])),
            outcome(bench, "ok", fit(1.0, 0.9)),
            outcome(bench, "memory", message="MemoryError: Unable to allocate 3 GiB"),
            outcome(bench, "error", message="killed by SIGSEGV"),
            outcome(bench, "ok", fit(4.0, 0.5)),
            None,
            outcome(bench, "ok", {"unavailable": "not available (convexrelu has no X)"}),
            outcome(bench, "ok", fit(1.0, 0.9)),
            outcome(bench, "ok", fit(31.0, 0.9, rss_before=2 ** 20), rss=3 * 2 ** 30)]
    rows = [ln for ln in bench.table(jobs, outs, args) if ln.startswith("| ")][1:]
    assert len(rows) == len(jobs)
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    assert cells[0][2] == "timed out > 600 s" and cells[0][4] == "≥ 3072 (killed)"
    assert cells[0][9] == "time ≤ 5 s: no; RSS ≤ 2 GB: no"
    assert cells[1][9] == "RSS ≤ 2 GB: yes; score ≥ MLP's: yes"  # 0.95 >= 0.9
    assert cells[3][2] == "memory > 4 GB"
    assert cells[4][2] == "error: killed by SIGSEGV"
    assert cells[5][9] == "time ≤ 5 s: yes; RSS ≤ 2 GB: yes"
    assert cells[6][2] == "not run (--budget spent)"
    assert cells[7][2] == "not available (convexrelu has no X)" and cells[7][9] == ""
    assert cells[9][4] == "3072 (before fit 1)"
    assert cells[9][9] == "time ≤ 30 s: no; RSS ≤ 2 GB: no"
    text = "\n".join(bench.table(jobs, outs, args))
    assert "Goals met: 4 of 8 checked (4 not met, 0 unknown)." in text
    assert "- iris / cv: UserWarning: sampled" in text
    assert "- iris / hgb: MemoryError: Unable to allocate 3 GiB" in text


def test_cv_goal_compares_with_the_mlp_row(bench):
    args = bench._parse([])
    jobs = [bench.Job("wine", "cv"), bench.Job("wine", "mlp")]
    outs = [outcome(bench, "ok", fit(1.0, 0.80)), outcome(bench, "ok", fit(1.0, 0.85))]
    assert bench.goals(jobs[0], outs[0], 0.85, args)[-1] == ("score ≥ MLP's", False)
    assert bench.goals(jobs[0], outs[0], None, args)[-1] == ("score ≥ MLP's", None)
    assert "score ≥ MLP's: no" in "\n".join(bench.table(jobs, outs, args))


def test_jobs_and_parse(bench):
    jobs = bench.jobs_for(["iris", "diabetes"], ["plain", "gridsearch"])
    assert jobs == [("iris", "plain"), ("diabetes", "plain"), ("diabetes", "gridsearch")]
    args = bench._parse(["--quick"])
    assert args.datasets == list(bench.QUICK_DATASETS) and args.time_limit == 60
    args = bench._parse([])
    assert args.datasets == list(bench.FULL_DATASETS)
    assert (args.time_limit, args.memory_limit, args.threads) == (600, 4, 1)
    with pytest.raises(SystemExit):
        bench._parse(["--time-limit", "0"])


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_mlp_objective_matches_sklearn_loss(bench, task):
    """J of an MLP = sklearn's own final loss (lbfgs stores the exact value)."""
    import warnings

    import numpy as np
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    kw = dict(hidden_layer_sizes=(7,), alpha=0.3, solver="lbfgs", max_iter=30,
              random_state=0)
    if task == "regression":
        y, est = X @ [1.0, -2.0, 0.5], MLPRegressor(**kw)
    else:
        y = rng.integers(0, 2 if task == "binary" else 3, 40)
        est = MLPClassifier(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    out = bench._mlp_summary(est, X, y, "regression" if task == "regression" else "clf")
    assert out["J"] == pytest.approx(est.loss_, rel=1e-6)
    assert 0 < out["neurons"] <= 7 and out["certificate"] == "none"


# ------------------------------------------------------------------------ end to end
def test_budget_zero_runs_no_child(bench, tmp_path, capsys):
    path = tmp_path / "t.md"
    assert bench.main(["--quick", "--budget", "0", "--out", str(path)], command="CMD") == 0
    text = path.read_text()
    assert text.startswith("Command: `CMD`")
    assert text.count("not run (--budget spent)") == len(
        bench.jobs_for(bench.QUICK_DATASETS, bench.MODELS))
    assert capsys.readouterr().out.strip() == text.strip()


def test_quick_run_one_child(bench, tmp_path):
    path = tmp_path / "t.md"
    bench.main(["--quick", "--datasets", "tiny_classification", "--models", "hgb",
                "--out", str(path)])
    rows = [ln for ln in path.read_text().splitlines()
            if ln.startswith("| tiny_classification")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == "HistGradientBoostingClassifier(random_state=0)"
    float(cells[2]), float(cells[3])  # fit time and CPU are numbers
    assert 0.0 <= float(cells[6]) <= 1.0  # accuracy


@pytest.mark.slow
def test_scnn_row(bench):
    pytest.importorskip("scnn")
    out = bench.fit_one("tiny_regression", "scnn")
    assert out["test_score"] > 0.5 and out["J"] > 0
    assert out["certificate"].startswith("gated program only")


def test_memory_budget_refusal_is_its_own_status(bench):
    args = bench._parse(["--time-limit", "60"])
    msg = ("MemoryBudgetError: the masks of up to 2000 patterns over 15000 samples would "
           "need about 486 MiB, above the memory budget of 100 MiB.")
    text = bench._status_text(outcome(bench, "memory", message=msg), args)
    assert text.startswith("refused by the memory budget: MemoryBudgetError: the masks")
    assert bench._status_text(outcome(bench, "memory", message="MemoryError: x"), args) == \
        "memory > 4 GB"


def test_growth_benchmark_compares_on_one_scale(tmp_path):
    """benchmarks growth: the default (grown) fit against the program over ten times its
    sample at the same alpha; both objectives on the per-sample scale, the larger
    solve's certified lower bound below its objective, the table written atomically."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import bench_growth

    row = bench_growth.compare("tiny_regression", factor=10, time_limit=60,
                               max_patterns=12)
    assert row["n_sample"] <= 12 and row["n_big"] > row["n_sample"]
    assert row["big_lower"] <= row["big_upper"] + 1e-12
    # the grown fit is at least as good as the optimum over 10x its sample, up to tol
    assert row["ours"] <= row["big_upper"] * (1 + 1e-5)
    out = tmp_path / "growth.md"
    assert bench_growth.main(["--datasets", "tiny_regression", "--out", str(out)]) == 0
    text = out.read_text()
    assert "tiny_regression" in text and "listed every pattern" in text


def test_the_100k_sets_run_only_when_named(bench):
    assert not any(k.endswith("_100k") for k in bench.FULL_DATASETS)
    args = bench._parse(["--datasets", "regression_100k", "classification_100k"])
    assert args.datasets == ["regression_100k", "classification_100k"]
    Xtr, Xte, ytr, yte, task = bench.load("classification_100k")
    assert task == "classification" and Xtr.shape == (75000, 20) and Xte.shape[0] == 25000
    Xtr, _, ytr, _, task = bench.load("regression_100k")
    assert task == "regression" and Xtr.shape == (75000, 20) and ytr.dtype.kind == "f"

"""The solver benchmark (benchmarks/bench_solvers.py): one-vs-rest digits programs, the
objective aggregation and scnn's scaling checked against independent numpy, and the
`--quick` markdown output. No timing is asserted."""

import os
import queue
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LAM = 1e-3

pytestmark = pytest.mark.skipif(not (ROOT / "benchmarks" / "bench_solvers.py").exists(),
                                reason="benchmarks folder not present")


@pytest.fixture
def bench(monkeypatch):
    # importing the benchmark pins BLAS threads in os.environ: keep that out of the session
    monkeypatch.setattr(os, "environ", dict(os.environ))
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import bench_solvers
    finally:
        sys.path.remove(str(ROOT))
    monkeypatch.setattr(bench_solvers, "_pin", lambda: None)  # no global thread limits
    return bench_solvers


def numpy_objective(Xa, masks, Y, V, W, lam):
    """scnn's c-output objective 1/(2nc)||Y_hat - Y||^2 + lam sum_{k,i} ||block||, from
    scratch (V, W: (c, P, d_aug); the hidden bias is the last column, penalised)."""
    n, c = Y.shape
    Z = np.stack([sum(masks[:, i] * (Xa @ (V[k, i] - W[k, i])) for i in range(V.shape[1]))
                  for k in range(c)], axis=1)
    pen = np.sqrt((V ** 2).sum(-1)).sum() + np.sqrt((W ** 2).sum(-1)).sum()
    return 0.5 * ((Z - Y) ** 2).sum() / (n * c) + lam * pen


def digits_programs(bench, formulation, n=60, P=8):
    X, Y = bench.load_digits_ovr(n)
    return X, Y, bench.build(X, Y, True, P, formulation, LAM)


def test_load_digits_ovr(bench):
    X, Y = bench.load_digits_ovr(100)
    assert X.shape[0] == Y.shape[0] == 100 and Y.shape[1] == 10
    assert np.all(np.isfinite(X)) and np.allclose(X.std(0), 1.0)  # constant pixels dropped
    np.testing.assert_array_equal(Y.sum(1), 1.0)  # one-hot, 0/1
    Xf, _ = bench.load_digits_ovr()
    assert Xf.shape == (1797, 61)


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
def test_one_vs_rest_programs_and_aggregation(bench, formulation):
    X, Y, progs = digits_programs(bench, formulation)
    n, c = Y.shape
    assert len(progs) == c == 10
    p0 = progs[0]
    for k, prog in enumerate(progs):
        np.testing.assert_array_equal(prog.y, Y[:, k])
        np.testing.assert_array_equal(prog.masks, p0.masks)  # the same gates / patterns
        assert prog.alpha == pytest.approx(LAM * n * c, rel=1e-15)
        assert prog.formulation == formulation and not prog.fit_output_bias
    Xa = np.hstack([X, np.ones((n, 1))])
    np.testing.assert_array_equal(p0.X_aug, Xa)
    rng = np.random.default_rng(0)
    V = 0.1 * rng.standard_normal((c, p0.n_patterns, Xa.shape[1]))
    W = 0.1 * rng.standard_normal(V.shape) if formulation == "relu" else np.zeros_like(V)
    ref = numpy_objective(Xa, p0.masks.astype(float), Y, V, W, LAM)
    # mean over the one-vs-rest programs of our objectives == scnn's c-output objective
    assert np.mean([p.objective(V[k], W[k]) for k, p in enumerate(progs)]) == \
        pytest.approx(ref, rel=1e-10)
    ev = bench.evaluate(progs, {"V": list(V), "W": list(W) if formulation == "relu"
                                else [None] * c, "G": None})
    assert ev["raw_obj"] == pytest.approx(ref, rel=1e-10)
    cert = [bench.certify(p, V[k], W[k]) for k, p in enumerate(progs)]
    primal = sum(pr for pr, _ in cert)
    assert ev["obj"] == pytest.approx(primal / (n * c), rel=1e-12)
    assert ev["rel_gap"] == pytest.approx(sum(g for _, g in cert) / primal, rel=1e-12)
    if formulation == "gated_relu":  # no repair: the certified primal is the objective
        assert ev["obj"] == pytest.approx(ref, rel=1e-10)
        assert ev["neurons"] == c * p0.n_patterns


def test_ours_one_vs_rest_jointly_equals_one_after_the_other(bench):
    """run_ours solves the one-vs-rest programs jointly (as scnn solves its c outputs);
    the points, as judged by the benchmark's certificate, are those of one program after
    the other: both reach the target at the same objective."""
    _, _, progs = digits_programs(bench, "gated_relu")
    joint = bench.run_ours(progs, 60)
    seq = bench.run_ours(progs, 60, joint=False)
    assert joint["reached"] and seq["reached"] and len(joint["V"]) == len(progs)
    ej, es = bench.evaluate(progs, joint), bench.evaluate(progs, seq)
    assert ej["rel_gap"] <= bench.TARGET and es["rel_gap"] <= bench.TARGET
    assert ej["obj"] == pytest.approx(es["obj"], rel=2e-6)


def test_single_output_scaling(bench):
    X, Y = bench.load_digits_ovr(60)
    (prog,) = bench.build(X, Y[:, 3], True, 8, "gated_relu", LAM)
    assert prog.alpha == pytest.approx(LAM * 60)
    V = np.random.default_rng(1).standard_normal((prog.n_patterns, prog.d_aug))
    ref = numpy_objective(prog.X_aug, prog.masks.astype(float), Y[:, [3]], V[None],
                          np.zeros((1,) + V.shape), LAM)
    assert prog.objective(V) == pytest.approx(ref, rel=1e-10)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scnn divides by zero norms
def test_scnn_digits_ten_outputs_matches_our_programs(bench):
    """scnn with c = 10 on the one-hot targets: its own objective at its weights equals
    ours (mean over the 10 programs) and the numpy formula; its groups are per
    (output, neuron), so its blocks are the 10 programs' blocks."""
    pytest.importorskip("scnn")
    X, Y, progs = digits_programs(bench, "gated_relu", n=60, P=5)
    q = queue.Queue()
    bench._scnn_child(progs, LAM, "float64", q)
    out = q.get_nowait()
    assert "error" not in out
    assert len(out["V"]) == 10 and out["G"].shape[0] == X.shape[1] + 1
    Xa = progs[0].X_aug
    masks = (Xa @ out["G"] > 0).astype(float)
    V = np.stack(out["V"])
    ref = numpy_objective(Xa, masks, Y, V, np.zeros_like(V), LAM)
    assert out["scnn_obj"] == pytest.approx(ref, rel=1e-8)
    ev = bench.evaluate(progs, out)
    assert ev["raw_obj"] == pytest.approx(ref, rel=1e-10)
    assert ev["obj"] == pytest.approx(ref, rel=1e-10)
    assert 0 <= ev["rel_gap"] < 1e-2  # R-FISTA near its optimum


def _run(args, tmp_path, timeout=120):
    out = tmp_path / "solvers.md"
    res = subprocess.run([sys.executable, "-m", "benchmarks", "solvers", "--quick",
                          *args, "--out", str(out)], capture_output=True, text=True,
                         cwd=ROOT, timeout=timeout,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert text == res.stdout  # the file holds exactly the printed markdown
    assert not list(tmp_path.glob(".bench_solvers.*"))  # no temporary file left
    return text


DIGITS = "| digits 10-class one-vs-rest n=150, bias, P=10 (10 patterns) | "


@pytest.mark.slow  # default-run time (CI on a loaded 2-core machine)
def test_quick_gated_digits_skip_scnn(tmp_path):
    text = _run(["--skip-scnn", "--problems", "digits", "--skip-relu"], tmp_path)
    assert "Command: `python -m benchmarks solvers --quick --skip-scnn --problems digits" in text
    assert "alpha_k = lam * n * 10" in text and "mean of the 10" in text
    assert "### Gated ReLU" in text and "### ReLU" not in text
    assert DIGITS + "convexrelu FISTA (first stage float32) + Newton polish (float64) | " \
        in text
    assert DIGITS + "cvxpy + Clarabel (tol 1e-10) | " in text
    assert "scnn" not in text.split("### Gated ReLU")[1]
    assert "### Per-iteration efficiency" in text and "(one of its 10 programs)" in text


@pytest.mark.slow
def test_quick_whole_table_skip_scnn(tmp_path):
    text = _run(["--skip-scnn", "--relu-patterns", "12"], tmp_path, timeout=300)
    gated, relu = text.split("### Gated ReLU")[1].split("### ReLU (cone-constrained)")
    for name in ("diabetes, bias, P=10", "breast_cancer, bias, P=10",
                 "synthetic teacher n=500 d=50, P=10", "diabetes, no bias, P=10, float64",
                 "digits 10-class one-vs-rest n=150, bias, P=10"):
        assert f"| {name} (" in gated
    assert "| diabetes, bias, P=10 (10 patterns) | convexrelu relu" in relu
    assert "| diabetes, bias, P=12 (" in relu
    assert "scnn" not in gated + relu.split("### Per-iteration")[0]


@pytest.mark.slow
def test_quick_relu_digits_with_scnn(tmp_path):
    pytest.importorskip("scnn")
    text = _run(["--problems", "digits", "--relu-problems", "all", "--skip-gated",
                 "--time-limit", "60"], tmp_path,
                timeout=400)
    relu = text.split("### ReLU (cone-constrained)")[1]
    for label in ("convexrelu relu", "scnn augmented Lagrangian (float32)",
                  "cvxpy + Clarabel"):
        assert DIGITS + label in relu
    assert "scnn objective check" in text

"""The enumeration benchmark: `--quick` runs fast and prints its tables."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / "benchmarks" / "bench_enumeration.py").exists(),
                    reason="benchmarks folder not present")
@pytest.mark.slow  # default-run time (CI on a loaded 2-core machine)
def test_bench_quick_cli(tmp_path):
    out = tmp_path / "bench.md"
    res = subprocess.run([sys.executable, "-c", "import sys; from convexrelu.cli import main; "
                          "sys.exit(main(sys.argv[1:]))", "bench", "--quick", "--out", str(out)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr  # (speed lives in the benchmark, not here)
    text = res.stdout
    assert "| data | n_samples | rank | cells |" in text
    assert "LP cells/s" in text and "| yes |" in text and "| NO |" not in text
    assert "- command: `convexrelu bench --quick --out" in text and "nproc" in text
    assert out.read_text() in text + "\n"


@pytest.mark.slow  # moved to the slow step: the default run took 339 s in CI
def test_python_m_benchmarks_quick():
    res = subprocess.run([sys.executable, "-m", "benchmarks", "--quick"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "- command: `python -m benchmarks --quick`" in res.stdout
    assert "peak MB (tracemalloc)" in res.stdout


def test_incremental_lp_matches_enumeration(rng, monkeypatch):
    # importing the benchmark pins BLAS threads in os.environ: keep that out of the session
    monkeypatch.setattr(os, "environ", dict(os.environ))
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.bench_enumeration import incremental_lp_patterns
    finally:
        sys.path.remove(str(ROOT))
    from convexrelu import enumerate_patterns

    X = rng.standard_normal((7, 3))
    masks, n_lps = incremental_lp_patterns(X)
    ref = enumerate_patterns(X)
    assert set(map(bytes, np.packbits(masks, axis=1))) == \
        set(map(bytes, np.packbits(ref.masks.T, axis=1)))
    assert n_lps >= len(masks)


def test_bench_without_checkout(monkeypatch, tmp_path, capsys):
    from convexrelu._commands import bench
    from convexrelu.cli import main

    monkeypatch.setattr(bench, "_script", lambda: tmp_path / "missing.py")
    assert main(["bench", "--quick"]) == 2
    assert "source checkout" in capsys.readouterr().err


@pytest.mark.slow  # default-run time (CI on a loaded 2-core machine)
def test_python_m_benchmarks_dispatches_suites():
    """`python -m benchmarks SUITE` runs bench_SUITE.py; an unknown suite is exit 2."""
    run = [sys.executable, "-m", "benchmarks"]
    res = subprocess.run(run + ["nope"], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert res.returncode == 2
    assert ("available: bnb, certify, column_generation, cvxpy, enumeration, gpu, "
            "growth, realdata, restricted, scale, solvers" in res.stderr)
    for suite in ("solvers", "column_generation", "certify", "cvxpy", "realdata", "bnb",
                  "gpu", "scale", "growth", "restricted"):
        res = subprocess.run(run + [suite, "--help"], capture_output=True, text=True,
                             cwd=ROOT, timeout=60)
        assert res.returncode == 0, res.stderr
        assert "usage:" in res.stdout

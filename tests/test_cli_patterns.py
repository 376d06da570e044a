"""`convexrelu patterns`: round trip, sampling, bad input (exit 2), atomic output."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from convexrelu import enumerate_patterns
from convexrelu.arrangements import ActivationPatterns
from convexrelu.cli import main


@pytest.fixture
def csv_file(tmp_path, rng):
    X = rng.standard_normal((30, 3))
    path = tmp_path / "data.csv"
    np.savetxt(path, X, delimiter=",", header="a,b,c", comments="")
    return path, X


def test_round_trip_csv(csv_file, tmp_path, capsys):
    path, X = csv_file
    out = tmp_path / "masks.npz"
    assert main(["patterns", str(path), "--no-target", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    ref = enumerate_patterns(X)
    assert f"n_patterns      {ref.n_patterns:,}  [exact]" in text
    assert "n_samples       30" in text and "rank            3" in text
    assert "thinnest margin" in text and "time" in text
    with np.load(out) as z:
        pats = ActivationPatterns.from_arrays(z)
        header = json.loads(str(z["__header__"]))
    assert pats.exact and header["exact"] and header["n_patterns"] == ref.n_patterns
    np.testing.assert_array_equal(pats.masks, ref.masks)
    np.testing.assert_array_equal(pats.gates, ref.gates)
    pats.check_data(X)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "masks.npz"]


def test_target_column_and_bias(csv_file, tmp_path, capsys):
    path, X = csv_file
    out = tmp_path / "m.npz"
    assert main(["patterns", str(path), "--target", "c", "--bias", "--out", str(out)]) == 0
    ref = enumerate_patterns(X[:, :2], bias=True)
    with np.load(out) as z:
        pats = ActivationPatterns.from_arrays(z)
    assert pats.bias and pats.n_features == 2
    np.testing.assert_array_equal(pats.masks, ref.masks)
    assert "(+ bias)" in capsys.readouterr().out


def test_npy_input(tmp_path, rng, capsys):
    X = rng.standard_normal((12, 2))
    np.save(tmp_path / "X.npy", X)
    assert main(["patterns", str(tmp_path / "X.npy"), "--no-target"]) == 0
    assert "n_patterns      24  [exact]" in capsys.readouterr().out


def test_sample(csv_file, tmp_path, capsys):
    path, X = csv_file
    out = tmp_path / "s.npz"
    args = ["patterns", str(path), "--no-target", "--sample", "50", "--random-state", "3",
            "--out", str(out)]
    assert main(args) == 0
    assert "[sampled (50 gates)]" in capsys.readouterr().out
    with np.load(out) as z:
        pats = ActivationPatterns.from_arrays(z)
    assert not pats.exact and 1 <= pats.n_patterns <= 50
    exact = set(map(bytes, enumerate_patterns(X).packed))
    assert set(map(bytes, pats.packed)) <= exact
    # reproducible with the same seed
    out2 = tmp_path / "s2.npz"
    assert main(args[:-1] + [str(out2)]) == 0
    with np.load(out2) as z:
        np.testing.assert_array_equal(z["packed"], pats.packed)


@pytest.mark.parametrize("case, match", [
    ("missing", "does not exist"),
    ("nan", "contains NaN"),
    ("text", "numeric"),
    ("limit", r"more than --max-patterns=10.*--sample N"),
    ("bad_sample", "--sample must be a positive"),
    ("seed_without_sample", "--random-state only applies with --sample"),
    ("bad_target", "target column 'zz' not found"),
    ("no_target", r"which columns of .*data.csv are features\? Pass --target COLUMN .* or "
                  "--no-target"),
])
def test_bad_input_exit_2(case, match, csv_file, tmp_path, capsys):
    path, X = csv_file
    args = ["patterns", str(path)] + ([] if case in ("bad_target", "no_target") else
                                      ["--no-target"])
    if case == "missing":
        args = ["patterns", str(tmp_path / "nope.csv"), "--no-target"]
    elif case == "nan":
        bad = tmp_path / "nan.csv"
        Xn = X.copy()
        Xn[3, 1] = np.nan
        np.savetxt(bad, Xn, delimiter=",")
        args = ["patterns", str(bad), "--no-target"]
    elif case == "text":
        bad = tmp_path / "text.csv"
        bad.write_text("a,b\n1,2\n3,hello\n")
        args = ["patterns", str(bad), "--no-target"]
    elif case == "limit":
        args += ["--max-patterns", "10"]
    elif case == "bad_sample":
        args += ["--sample", "0"]
    elif case == "seed_without_sample":
        args += ["--random-state", "1"]
    elif case == "bad_target":
        args += ["--target", "zz"]
    out = tmp_path / "never.npz"
    assert main(args + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convexrelu patterns: error: ")
    assert re.search(match, err), err
    assert not out.exists()


def test_interrupted_write_leaves_nothing(csv_file, tmp_path, monkeypatch, capsys):
    path, _ = csv_file
    outdir = tmp_path / "out"
    outdir.mkdir()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", boom)
    assert main(["patterns", str(path), "--no-target", "--out", str(outdir / "masks.npz")]) \
        == 130
    assert "interrupted; nothing was written" in capsys.readouterr().err
    assert list(outdir.iterdir()) == []  # neither the file nor a temporary file


def test_console_script_subprocess(csv_file, tmp_path):
    path, _ = csv_file
    res = subprocess.run([sys.executable, "-c", "import sys; from convexrelu.cli import main; "
                          "sys.exit(main(sys.argv[1:]))", "patterns", str(tmp_path / "x.csv")],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert "does not exist" in res.stderr and "Traceback" not in res.stderr


def test_target_rule(tmp_path, rng, capsys):
    """A CSV with a target column: --target drops it, --no-target keeps every column, and
    an .npz holding X (and y) needs neither: X is the features."""
    X = rng.standard_normal((15, 2))
    path = tmp_path / "d.csv"
    np.savetxt(path, np.column_stack([X, X[:, 0] ** 2]), delimiter=",", header="a,b,y",
               comments="")
    assert main(["patterns", str(path), "--bias"]) == 2  # README's example used to count y
    assert "--no-target" in capsys.readouterr().err
    assert main(["patterns", str(path), "--bias", "--target", "y"]) == 0
    out = capsys.readouterr().out
    assert "n_features      2 (+ bias)" in out
    assert f"n_patterns      {enumerate_patterns(X, bias=True).n_patterns:,}" in out
    assert main(["patterns", str(path), "--bias", "--no-target"]) == 0
    assert "n_features      3 (+ bias)" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # one or the other
        main(["patterns", str(path), "--target", "y", "--no-target"])
    assert "not allowed with" in capsys.readouterr().err
    npz = tmp_path / "d.npz"
    np.savez(npz, X=X, y=X[:, 0] ** 2)
    assert main(["patterns", str(npz), "--bias"]) == 0
    assert "n_features      2 (+ bias)" in capsys.readouterr().out

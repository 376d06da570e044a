"""CLI: convexrelu fit / predict / demo."""

import numpy as np
import pytest

from convexrelu.cli import main


@pytest.fixture
def data_csv(tmp_path, rng):
    X = rng.standard_normal((10, 2))
    y = np.abs(X[:, 0]) + 0.5 * X[:, 1]
    path = tmp_path / "d.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,t", comments="")
    return path, X, y


def test_fit_predict_round_trip(tmp_path, data_csv, capsys):
    from convexrelu.estimators import ConvexReLURegressor

    path, X, y = data_csv
    model = tmp_path / "m.npz"
    assert main(["fit", str(path), "--target", "t", "--alpha", "0.01", "--patterns", "exact",
                 "--out", str(model)]) == 0
    assert "objective" in capsys.readouterr().out
    with np.load(model, allow_pickle=False) as z:
        assert {"W1", "b1", "W2", "b2", "__header__"} <= set(z.files)
    preds = tmp_path / "p.csv"
    assert main(["predict", str(model), str(path), "--out", str(preds)]) == 0
    got = np.loadtxt(preds, delimiter=",", skiprows=1)
    ref = ConvexReLURegressor(alpha=0.01, patterns="exact").fit(X, y).predict(X)
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_fit_classifier_and_no_bias(tmp_path, data_csv, capsys):
    path, X, y = data_csv
    lab = tmp_path / "c.csv"
    np.savetxt(lab, np.column_stack([X, y > 1]), delimiter=",", header="a,b,t", comments="")
    model = tmp_path / "c.npz"
    assert main(["fit", str(lab), "--target", "t", "--alpha", "0.5", "--no-bias",
                 "--classify", "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(lab)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "prediction" and len(out) == 11


def test_fit_alpha_auto_is_the_default(tmp_path, data_csv, capsys):
    """Without --alpha (or with --alpha auto) the command fits at the estimators' default
    and says which alpha that was; the model file records it; 0 is refused as the
    estimators refuse it."""
    from contextlib import nullcontext

    from convexrelu import ConvexReLURegressor
    from convexrelu._io import read_header, read_npz

    path, X, y = data_csv
    model = tmp_path / "a.npz"
    for extra in ([], ["--alpha", "auto"]):
        assert main(["fit", str(path), "--target", "t", "--patterns", "exact", "--out",
                     str(model)] + extra) == 0
        out = capsys.readouterr().out
        ref = ConvexReLURegressor(patterns="exact").fit(X, y)
        assert f"alpha (auto): {ref.alpha_:.6g}" in out
        assert read_header(read_npz(model))["alpha"] == pytest.approx(ref.alpha_, rel=1e-12)
    for bad in ("0", "tiny"):
        with pytest.raises(SystemExit) if bad == "tiny" else nullcontext():
            assert main(["fit", str(path), "--target", "t", "--alpha", bad]) == 2
        assert "--alpha" in capsys.readouterr().err


def _fit_predict_labels(tmp_path, path, names, capsys):
    """``fit --classify`` on the ``species`` column of ``path``, then ``predict``: one
    printed label per row (one line each), mostly right. Returns the model's path."""
    model = tmp_path / "m.npz"
    assert main(["fit", str(path), "--target", "species", "--classify", "--alpha", "0.1",
                 "--patterns", "20", "--random-state", "0", "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "prediction" and len(out) == len(names) + 1
    assert set(out[1:]) <= set(names) and np.mean(np.array(out[1:]) == names) > 0.9
    return model


def test_fit_text_class_labels(tmp_path, capsys):
    """A classifier's target column may hold text labels (iris's species): fit reads them,
    predict prints them and skips that column of its data file; text in a feature column
    is refused naming the column (it was 'could not convert string' for the whole file)."""
    from sklearn.datasets import load_iris

    X, t = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    names = np.array(["setosa", "versicolor", "virginica"])[t]
    rows = ["a,b,c,d,species"] + [",".join([*(f"{v:.6f}" for v in x), f" {s}"])
                                  for x, s in zip(X, names)]
    path = tmp_path / "iris.csv"
    path.write_text("\n".join(rows) + "\n")
    model = _fit_predict_labels(tmp_path, path, names, capsys)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,colour,y\n1,red,0\n2,blue,1\n3,red,0\n")
    assert main(["fit", str(bad), "--target", "y", "--classify", "--alpha", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "column 'colour'" in err and "'red'" in err and "Encode" in err
    assert main(["fit", str(path), "--target", "a", "--alpha", "0.1"]) == 2
    assert "column 'species'" in capsys.readouterr().err  # a regression on text labels
    assert main(["fit", str(path), "--target", "species", "--alpha", "0.1"]) == 2
    assert "pass --classify" in capsys.readouterr().err
    # the target by index: the model records its name, and predict skips it
    assert main(["fit", str(path), "--target", "4", "--classify", "--alpha", "0.1",
                 "--patterns", "20", "--random-state", "0", "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(path)]) == 0
    assert len(capsys.readouterr().out.split()) == 151
    # UCI's headerless iris.data: the first row is data, not column names
    plain = tmp_path / "iris.data"
    plain.write_text("\n".join(rows[1:]) + "\n")
    from convexrelu._io import load_table
    Xp, yp, cols = load_table(_as_csv(plain), target=4)
    assert Xp.shape == (150, 4) and cols is None and list(yp[:1]) == ["setosa"]
    # an empty cell: refused, naming the column and the row (it became a class '')
    holes = tmp_path / "holes.csv"
    holes.write_text("a,y\n1,0\n2,\n3,1\n")
    assert main(["fit", str(holes), "--target", "y", "--classify", "--alpha", "0.1"]) == 2
    assert "column 'y'" in (err := capsys.readouterr().err) and "empty cell (data row 2)" in err


def test_fit_quoted_csv(tmp_path, capsys):
    """R's ``write.csv`` quotes every column name and text field (and a field may hold
    the delimiter): the quotes are not part of the names or the labels (``--target
    species`` was "not found" against ``"species"``, and predictions printed quoted)."""
    from sklearn.datasets import load_iris

    from convexrelu._io import load_table

    X, t = load_iris(return_X_y=True)
    X, t = X[::3], t[::3]  # 50 rows
    X = (X - X.mean(0)) / X.std(0)
    names = np.array(["setosa", "versicolor", "virginica, the third"])[t]
    rows = ['"","a","b","c","d","species"'] + [
        ",".join([f'"{i + 1}"', *(f"{v:.6f}" for v in x), f'"{s}"'])
        for i, (x, s) in enumerate(zip(X, names))]
    path = tmp_path / "iris.csv"
    path.write_text("\n".join(rows) + "\n")
    Xl, yl, cols = load_table(path, target="species")
    assert cols == ["", "a", "b", "c", "d"] and set(yl) == set(names)
    np.testing.assert_allclose(Xl[:, 1:], X, atol=1e-6)
    np.testing.assert_array_equal(Xl[:, 0], np.arange(1, 51))  # quoted numbers
    _fit_predict_labels(tmp_path, path, names, capsys)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('"a","y"\n1,"p",9\n2,"q"\n3,"r"\n')
    with pytest.raises(ValueError, match="data row 1 has 3 fields, the other rows 2"):
        load_table(ragged, target="y")
    # a quoted label over two lines (the file was split into lines before the quotes
    # were read: the label became 'pq')
    lines = tmp_path / "lines.csv"
    lines.write_text('a,y\n1,"p\nq"\n\n2,"r"\n')
    assert list(load_table(lines, target="y")[1]) == ["p\nq", "r"]
    # a quoted value starting with "#" is data, not a comment (a first version dropped it)
    hashed = tmp_path / "hashed.csv"
    hashed.write_text('"y","a"\n"#1",2\n"b",3\n')
    assert list(load_table(hashed, target="y")[1]) == ["#1", "b"]
    # two widths as common as each other: the first row's is the usual one
    tie = tmp_path / "tie.csv"
    tie.write_text('"a","y"\n1,"p"\n2,"q",3\n')
    with pytest.raises(ValueError, match="data row 2 has 3 fields, the other rows 2"):
        load_table(tie, target="y")


def test_csv_comment_lines_at_the_top(tmp_path):
    """Comment lines at the top of an unquoted CSV were read as its header ("the header
    row names 1 columns (# my data) but the data rows have 3"). They are skipped; the
    last is the header where it names the data's columns and no header follows
    (``numpy.savetxt``'s ``header=``)."""
    from convexrelu._io import load_table

    data = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 1.0]])
    body = "\n".join(",".join(f"{v:g}" for v in row) for row in data) + "\n"
    cases = {"# my data\n# two notes\na,b,y\n": ["a", "b"], "# my data\n": None,
             "# exported by tool, v2, 2026\n": None, "# note\n# a,b,y\n": None}
    for head, cols in cases.items():
        path = tmp_path / "notes.csv"
        path.write_text(head + body)
        X, y, names = load_table(path, target="y" if cols else None)
        np.testing.assert_array_equal(X, data[:, :2] if cols else data)
        assert names == cols
    saved = tmp_path / "saved.csv"
    np.savetxt(saved, data, delimiter=",", header="a,b,y")
    X, y, names = load_table(saved, target="y")
    np.testing.assert_array_equal(y, data[:, 2])
    assert names == ["a", "b"]


def _as_csv(path):
    new = path.with_suffix(".csv")
    new.write_text(path.read_text())
    return new


def test_cli_errors(tmp_path, data_csv, capsys):
    path, _, _ = data_csv
    assert main(["fit", str(path), "--target", "zz", "--alpha", "0.1"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["fit", str(path), "--target", "t", "--alpha", "-1"]) == 2
    assert "--alpha" in capsys.readouterr().err
    assert main(["predict", str(path), str(path)]) == 2
    with pytest.raises(SystemExit):
        main(["fit", str(path), "--target", "t", "--alpha", "1", "--patterns", "many"])
    bad = tmp_path / "x.npz"
    np.savez(bad, W1=np.zeros((1, 2)))
    assert main(["predict", str(bad), str(path)]) == 2
    assert "not a convexrelu model" in capsys.readouterr().err


def test_demo_list_and_unknown(capsys):
    assert main(["demo", "--list"]) == 0
    assert capsys.readouterr().out.split()[0] == "fit"
    assert main(["demo", "nope"]) == 2


@pytest.mark.slow
def test_demo_fit_fast(tmp_path, capsys):
    assert main(["demo", "--fast", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "fit.png").exists()
    assert "global optimum" in capsys.readouterr().out


def test_fit_pattern_limit_in_the_commands_words(tmp_path, rng, capsys):
    """The estimator's warning and error speak of --max-patterns / --patterns, on one line,
    not of max_patterns with a library source line."""
    # rank 13 with the bias: beyond the branch and bound, so --patterns exact refuses
    X = rng.standard_normal((15, 12))
    path = tmp_path / "w.csv"
    names = ",".join(f"x{j}" for j in range(12))
    np.savetxt(path, np.column_stack([X, X[:, 0]]), delimiter=",", header=names + ",t",
               comments="")
    argv = ["fit", str(path), "--target", "t", "--alpha", "0.1", "--max-patterns", "10",
            "--out", str(tmp_path / "m.npz")]
    assert main(argv + ["--random-state", "0"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("convexrelu fit: warning: X has more than --max-patterns=10 ")
    assert err.count("\n") == 1 and "pass --patterns exact to never sample" in err
    assert "max_patterns" not in err and "UserWarning" not in err
    assert main(argv + ["--patterns", "exact"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convexrelu fit: error: --patterns exact: ")
    assert "more than --max-patterns=10" in err and "Use --patterns N" in err
    assert "max_patterns" not in err and "sample_patterns" not in err

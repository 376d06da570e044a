"""CLI: broken files, empty tables and column names give one error line and exit 2."""

import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from convexrelu.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A training CSV, a model fitted on it, and a collection of bad files."""
    d = tmp_path_factory.mktemp("cli_input")
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12, 2))
    y = np.abs(X[:, 0]) + 0.5 * X[:, 1]
    data = d / "d.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header="a,b,t", comments="")
    model = d / "m.npz"
    assert main(["fit", str(data), "--target", "t", "--alpha", "0.1", "--patterns", "exact",
                 "--out", str(model)]) == 0
    bad = {}
    bad["corrupt"] = d / "corrupt.npz"
    bad["corrupt"].write_bytes(b"PK\x03\x04" + b"garbage" * 20)
    bad["truncated"] = d / "truncated.npz"
    bad["truncated"].write_bytes(model.read_bytes()[:200])
    bad["text"] = d / "text.npz"
    bad["text"].write_text("W1,b1\n1,2\n")
    bad["empty"] = d / "empty.npz"
    bad["empty"].write_bytes(b"")
    bad["npy"] = d / "npy.npz"
    with open(bad["npy"], "wb") as fh:
        np.save(fh, X)
    bad["objects"] = d / "objects.npz"
    np.savez(bad["objects"], X=np.array([{"a": 1}], dtype=object))
    return d, data, model, X, y, bad


BAD_NPZ = [("corrupt", "damaged or truncated .npz"), ("truncated", "damaged or truncated .npz"),
           ("text", "is a text file; expected an .npz archive"),
           ("empty", r"is empty \(0 bytes\)"), ("npy", "is a single .npy array"),
           ("objects", "array of Python objects")]


def _one_error_line(err, command):
    assert err.startswith(f"convexrelu {command}: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "allow_pickle" not in err  # never point users at unsafe loading


@pytest.mark.parametrize("kind, match", BAD_NPZ)
@pytest.mark.parametrize("command", ["predict", "certify"])
def test_bad_model_file_exit_2(files, capsys, kind, match, command):
    """A broken model is bad input (2), never "not optimal" (1) or a traceback."""
    _, data, _, _, _, bad = files
    argv = [command, str(bad[kind]), str(data)] + (["--target", "t"] if command == "certify"
                                                   else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    _one_error_line(err, command)
    assert str(bad[kind]) in err
    assert re.search(match, err), err


@pytest.mark.parametrize("kind, match", BAD_NPZ)
def test_bad_data_npz_exit_2(files, capsys, kind, match):
    _, _, _, _, _, bad = files
    assert main(["fit", str(bad[kind]), "--target", "y", "--alpha", "0.1"]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "fit")
    assert re.search(match, err), err


def test_bad_data_npy(files, tmp_path, capsys):
    _, _, _, _, _, bad = files
    text = tmp_path / "t.npy"
    text.write_text("1,2,3\n")
    assert main(["patterns", str(text), "--no-target"]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "patterns")
    assert "is a text file; expected an .npy array" in err


def test_console_script_has_no_traceback(files):
    """The same through a real process: exit status 2 and one line on stderr."""
    _, data, _, _, _, bad = files
    # python -m convexrelu is the same tool ("No module named convexrelu.__main__")
    for module in ("convexrelu.cli", "convexrelu"):
        res = subprocess.run([sys.executable, "-m", module, "certify",
                              str(bad["corrupt"]), str(data), "--target", "t"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2
        _one_error_line(res.stderr, "certify")


# --------------------------------------------------------------------------- tables
@pytest.mark.parametrize("content, match", [
    ("", r"is empty; expected a CSV of numbers"),
    ("\n\n", r"is empty; expected a CSV of numbers"),
    ("a,b,t\n", r"has a header row \(a, b, t\) but no data rows"),
    ("a,b,t\n1,2,3,4\n", r"header row .* names 3 columns \(a, b, t\) but the data rows have 4"),
    ("a,a,t\n1,2,3\n", r"names column\(s\) \['a'\] more than once"),
])
def test_empty_and_malformed_csv(tmp_path, capsys, content, match):
    path = tmp_path / "x.csv"
    path.write_text(content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "loadtxt: input contained no data" leaked
        code = main(["fit", str(path), "--target", "t", "--alpha", "0.1"])
    assert code == 2
    err = capsys.readouterr().err
    _one_error_line(err, "fit")
    assert re.search(match, err), err


def test_binary_csv(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xff\xfe\x00\x01\x80")
    assert main(["fit", str(path), "--target", "0", "--alpha", "0.1"]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "fit")
    assert "is not a text file" in err


def test_csv_with_byte_order_mark(tmp_path, capsys):
    """A CSV saved by a spreadsheet (UTF-8 with BOM) keeps its first column name."""
    path = tmp_path / "x.csv"
    path.write_bytes("a,b,t\n1,2,3\n2,1,0\n3,3,1\n".encode("utf-8-sig"))
    assert main(["patterns", str(path), "--target", "a"]) == 0
    assert "n_features      2" in capsys.readouterr().out


# --------------------------------------------------------------------------- names
def _predictions(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr()
    return np.loadtxt(out.out.splitlines()[1:], delimiter=","), out.err


def test_predict_matches_columns_by_name(files, tmp_path, capsys):
    _, data, model, X, y, _ = files
    ref, err = _predictions(capsys, ["predict", str(model), str(data)])
    assert err == ""
    swapped = tmp_path / "swapped.csv"
    np.savetxt(swapped, X[:, ::-1], delimiter=",", header="b,a", comments="")
    got, err = _predictions(capsys, ["predict", str(model), str(swapped)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert "note: columns of" in err and "taken by name" in err
    # with the target first, too
    mixed = tmp_path / "mixed.csv"
    np.savetxt(mixed, np.column_stack([y, X[:, 1], X[:, 0]]), delimiter=",",
               header="t,b,a", comments="")
    got, _ = _predictions(capsys, ["predict", str(model), str(mixed)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("header, match", [
    ("a,c", r"expected \['a', 'b'\] \(in any order\), found \['a', 'c'\] \(missing \['b'\]; "
            r"unknown \['c'\]\)"),
    ("a,b,extra", r"found \['a', 'b', 'extra'\] \(unknown \['extra'\]\)"),
    ("b", r"found \['b'\] \(missing \['a'\]\)"),
])
def test_predict_refuses_unknown_or_missing_names(files, tmp_path, capsys, header, match):
    _, _, model, X, _, _ = files
    path = tmp_path / "x.csv"
    cols = header.split(",")
    np.savetxt(path, np.ones((3, len(cols))), delimiter=",", header=header, comments="")
    assert main(["predict", str(model), str(path)]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "predict")
    assert re.search(match, err), err


def test_predict_without_names_uses_column_order(files, tmp_path, capsys):
    _, data, model, X, _, _ = files
    ref, _ = _predictions(capsys, ["predict", str(model), str(data)])
    plain = tmp_path / "plain.csv"
    np.savetxt(plain, X, delimiter=",")
    got, _ = _predictions(capsys, ["predict", str(model), str(plain)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    np.savetxt(plain, X[:, :1], delimiter=",")
    assert main(["predict", str(model), str(plain)]) == 2
    assert "has 1 feature columns but the model expects 2 (a, b)" in capsys.readouterr().err


def test_certify_matches_columns_by_name(files, tmp_path, capsys):
    _, data, model, X, y, _ = files
    assert main(["certify", str(model), str(data), "--target", "t"]) == 0
    capsys.readouterr()
    swapped = tmp_path / "swapped.csv"
    np.savetxt(swapped, np.column_stack([y, X[:, 1], X[:, 0]]), delimiter=",",
               header="t,b,a", comments="")
    assert main(["certify", str(model), str(swapped), "--target", "t"]) == 0
    out = capsys.readouterr()
    assert "CERTIFIED" in out.out and "taken by name" in out.err
    renamed = tmp_path / "renamed.csv"
    np.savetxt(renamed, np.column_stack([X, y]), delimiter=",", header="a,c,t", comments="")
    assert main(["certify", str(model), str(renamed), "--target", "t"]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "certify")
    assert "missing ['b']" in err


# --------------------------------------------------------------------------- pipes
class _ClosedPipe:
    """stdout whose reader went away (`convexrelu predict ... | head -1`)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass


def test_closed_pipe_is_quiet(files, monkeypatch, capsys):
    _, data, model, _, _, _ = files
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["predict", str(model), str(data)]) == 141  # 128 + SIGPIPE, like a shell
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- _io raise sites
def _make(tmp_path, case):
    import json
    import zipfile

    if case == "directory":
        (tmp_path / "dir.csv").mkdir()
        return tmp_path / "dir.csv"
    if case == "strings":
        np.save(tmp_path / "s.npy", np.array(["a", "b"]))
        return tmp_path / "s.npy"
    if case == "3d":
        np.save(tmp_path / "c.npy", np.ones((2, 2, 2)))
        return tmp_path / "c.npy"
    if case == "no_rows":
        np.savez(tmp_path / "z.npz", X=np.ones((0, 2)))
        return tmp_path / "z.npz"
    if case == "zip_as_npy":
        np.savez(tmp_path / "z.npz", X=np.ones((2, 2)))
        (tmp_path / "z.npz").rename(tmp_path / "z.npy")
        return tmp_path / "z.npy"
    if case == "binary":
        (tmp_path / "b.npz").write_bytes(b"\xff\xfe\x00\x93garbage")
        return tmp_path / "b.npz"
    if case == "npy_truncated":
        np.save(tmp_path / "t.npy", np.ones((10, 3)))
        (tmp_path / "t.npy").write_bytes((tmp_path / "t.npy").read_bytes()[:150])
        return tmp_path / "t.npy"
    if case == "npy_objects":
        np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return tmp_path / "o.npy"
    if case == "bad_member":
        with zipfile.ZipFile(tmp_path / "m.npz", "w") as z:
            z.writestr("X.npy", b"garbage")
        return tmp_path / "m.npz"
    if case == "no_X":
        np.savez(tmp_path / "n.npz", A=np.ones((2, 2)))
        return tmp_path / "n.npz"
    if case in ("bad_json", "json_list"):
        np.savez(tmp_path / "h.npz", X=np.ones((2, 2)),
                 __header__=np.array("{oops" if case == "bad_json" else json.dumps([1])))
        return tmp_path / "h.npz"
    raise AssertionError(case)


@pytest.mark.parametrize("case, match", [
    ("directory", "is a directory, not a file"),
    ("strings", r"holds a <U1 array; expected numbers"),
    ("3d", r"holds an array of shape \(2, 2, 2\); expected a table"),
    ("no_rows", r"holds no data rows \(an array of shape \(0, 2\)\)"),
    ("zip_as_npy", r"is a zip archive, not a single .npy array \(name it .npz\)"),
    ("binary", r"is neither an .npy nor an .npz file \(unknown format\)"),
    ("npy_truncated", "is a damaged .npy file"),
    ("npy_objects", r"holds an array of Python objects; only numeric arrays"),
    ("bad_member", r"is a damaged .npz archive: its member 'X' is not an .npy array"),
    ("no_X", r"holds arrays \['A'\]; expected one named 'X'"),
])
def test_load_table_raise_sites(tmp_path, case, match):
    from convexrelu._io import load_table

    with pytest.raises(ValueError, match=match):
        load_table(_make(tmp_path, case))


@pytest.mark.parametrize("case, match", [
    ("bad_json", r"its JSON header \(__header__\) is damaged"),
    ("json_list", r"its JSON header \(__header__\) is a list, not an object"),
])
def test_read_header_raise_sites(tmp_path, case, match, capsys):
    from convexrelu._io import read_header, read_npz

    path = _make(tmp_path, case)
    with pytest.raises(ValueError, match=match):
        read_header(read_npz(path))
    # through the CLI: one line naming the file
    assert main(["predict", str(path), str(path)]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "predict")
    assert f"cannot read model: {path}: its JSON header" in err


def test_unreadable_file(tmp_path, monkeypatch):
    from convexrelu import _io

    path = tmp_path / "m.npz"
    np.savez(path, X=np.ones((2, 2)))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_io, "open", refuse, raising=False)  # found before the builtin
    with pytest.raises(ValueError, match=r"cannot open .*m.npz: Permission denied\."):
        _io.read_npz(path)


def test_model_file_missing_or_incomplete(files, tmp_path, capsys):
    from convexrelu._io import atomic_savez

    _, data, _, _, _, _ = files
    assert main(["predict", str(tmp_path / "nope.npz"), str(data)]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "predict")
    assert "model file" in err and "does not exist" in err
    partial = atomic_savez(tmp_path / "p.npz", header={"format": "convexrelu-model"},
                           W1=np.ones((1, 2)))
    assert main(["predict", str(partial), str(data)]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "predict")
    assert "cannot read model" in err and "arrays lack" in err


def test_written_files_get_the_umask_mode(tmp_path):
    """The atomic writers' files have the mode ``open()`` gives (``0o666`` less the
    umask), not ``mkstemp``'s ``0o600``, which the rename kept (``fit --out`` wrote files
    only their owner could read)."""
    import os
    import stat

    from convexrelu._io import atomic_savez, atomic_write_text

    old = os.umask(0o022)
    try:
        a = atomic_savez(tmp_path / "m.npz", W1=np.ones((1, 2)))
        b = atomic_write_text(tmp_path / "p.csv", "x\n1\n")
        os.umask(0o077)
        c = atomic_write_text(tmp_path / "q.csv", "x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(b).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(c).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "p.csv", "q.csv"]


def test_text_file_cut_inside_a_character(tmp_path):
    """The first 512 bytes of a UTF-8 text may end inside a character: still a text file."""
    from convexrelu._io import read_npz

    path = tmp_path / "notes.npz"
    path.write_bytes(b"x" * 511 + "é".encode("utf-8"))  # 'é' is 2 bytes: byte 512 splits it
    with pytest.raises(ValueError, match="is a text file; expected an .npz archive"):
        read_npz(path)


def test_unreadable_csv(tmp_path, monkeypatch):
    from convexrelu import _io

    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_io, "open", refuse, raising=False)
    with pytest.raises(ValueError, match=r"cannot open .*d.csv: Permission denied\."):
        _io.load_table(path)

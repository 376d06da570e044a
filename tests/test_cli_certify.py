"""CLI: convexrelu certify MODEL DATA --target COLUMN (exit codes, outputs, bad input)."""

import json
import pickle
import warnings

import numpy as np
import pytest

from convexrelu import ReLUNet, certify
from convexrelu.cli import main


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Data, a certified-optimal .npz model from `convexrelu fit`, and its data."""
    d = tmp_path_factory.mktemp("certify")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 2))
    y = np.abs(X[:, 0]) + 0.3 * X[:, 1]
    data = d / "d.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header="a,b,t", comments="")
    model = d / "m.npz"
    assert main(["fit", str(data), "--target", "t", "--alpha", "0.1", "--patterns", "exact",
                 "--out", str(model)]) == 0
    return d, data, model, X, y


def _run(capsys, argv):
    code = main(["certify", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


# --------------------------------------------------------------------------- model kinds
def test_npz_model_certified(workdir, capsys):
    _, data, model, X, y = workdir
    code, out, err = _run(capsys, [model, data, "--target", "t"])
    assert code == 0, err
    assert "CERTIFIED globally optimal" in out and "(all patterns)" in out
    # the alpha comes from the model's header; the same numbers as the library call
    net = ReLUNet.from_arrays(np.load(model))
    ref = certify(net, X, y, alpha=0.1, hidden_bias=True)
    assert f"{ref.objective:.10g}" in out


def test_npz_model_json(workdir, capsys):
    _, data, model, X, y = workdir
    code, out, _ = _run(capsys, [model, data, "--target", "t", "--json"])
    assert code == 0
    d = json.loads(out)
    assert d["optimal"] is True and d["exact"] is True
    assert d["relative_gap"] <= 1e-6 and d["lower_bound"] <= d["objective"]
    assert len(d["dual"]) == X.shape[0]


def test_npz_model_wrong_alpha_not_optimal(workdir, capsys):
    # the same network judged against a much larger weight decay is not optimal: exit 1
    _, data, model, _, _ = workdir
    code, out, _ = _run(capsys, [model, data, "--target", "t", "--alpha", "5"])
    assert code == 1
    assert "not certified optimal" in out


def test_sampled_patterns_exit_1(workdir, capsys):
    _, data, model, _, _ = workdir
    code, out, _ = _run(capsys, [model, data, "--target", "t", "--patterns", "30",
                                 "--random-state", "0"])
    assert code == 1  # never a proof, even for the optimal network
    assert "NOT a proof" in out and "SAMPLE" in out
    code, out, _ = _run(capsys, [model, data, "--target", "t", "--patterns", "30", "--json"])
    assert code == 1 and json.loads(out)["exact"] is False


def test_npz_classifier(workdir, capsys):
    d, _, _, X, y = workdir
    lab = d / "c.csv"
    np.savetxt(lab, np.column_stack([X, np.where(y > 0.8, 7, 3)]), delimiter=",",
               header="a,b,t", comments="")
    model = d / "c.npz"
    assert main(["fit", str(lab), "--target", "t", "--alpha", "0.2", "--classify",
                 "--patterns", "exact", "--out", str(model)]) == 0
    capsys.readouterr()
    code, out, _ = _run(capsys, [model, lab, "--target", "t", "--json"])
    cert = json.loads(out)
    assert cert["loss"] == "logistic" and cert["exact"] is True
    assert cert["lower_bound"] <= cert["objective"]
    assert code == (0 if cert["optimal"] else 1)
    net = ReLUNet.from_arrays(np.load(model))
    ref = certify(net, X, np.where(y > 0.8, 1.0, -1.0), alpha=0.2, loss="logistic",
                  hidden_bias=True)
    assert cert["objective"] == pytest.approx(ref.objective, rel=1e-12)
    # three classes: one certificate per one-vs-rest problem of `convexrelu fit --classify`
    lab3 = d / "c3.csv"
    np.savetxt(lab3, np.column_stack([X, np.digitize(y, [0.5, 1.0])]), delimiter=",",
               header="a,b,t", comments="")
    m3 = d / "c3.npz"
    assert main(["fit", str(lab3), "--target", "t", "--alpha", "0.2", "--classify",
                 "--patterns", "exact", "--out", str(m3)]) == 0
    capsys.readouterr()
    code, out, _ = _run(capsys, [m3, lab3, "--target", "t", "--json"])
    res = json.loads(out)
    assert len(res["outputs"]) == 3 and code == (0 if res["optimal"] else 1)
    assert all(c["exact"] and c["lower_bound"] <= c["objective"] for c in res["outputs"])
    code, out, _ = _run(capsys, [m3, lab3, "--target", "t"])
    assert out.count("-- output") == 3
    # labels the model never saw
    bad = d / "c_bad.csv"
    np.savetxt(bad, np.column_stack([X, np.where(y > 0.8, 7, 5)]), delimiter=",",
               header="a,b,t", comments="")
    code, _, err = _run(capsys, [model, bad, "--target", "t"])
    assert code == 2 and "not among the model's classes" in err


def test_torch_state_dict(workdir, capsys):
    torch = pytest.importorskip("torch")
    d, data, _, X, y = workdir
    torch.manual_seed(0)
    mod = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
    path = d / "m.pt"
    torch.save(mod.state_dict(), path)
    code, out, err = _run(capsys, [path, data, "--target", "t", "--alpha", "0.1", "--json"])
    assert code == 1, err  # a random network is far from optimal
    cert = json.loads(out)
    ref = certify(mod.double(), X, y, alpha=0.1)
    assert cert["objective"] == pytest.approx(ref.objective, rel=1e-6)
    assert cert["lower_bound"] == pytest.approx(ref.lower_bound, rel=1e-6)
    assert cert["violating_neuron"]["objective_decrease"] > 0
    # torch conventions: MSELoss(reduction='mean') with SGD weight_decay
    code, out, _ = _run(capsys, [path, data, "--target", "t", "--alpha", "0.01",
                                 "--reduction", "mean", "--loss", "mse", "--json"])
    ref = certify(mod, X, y, weight_decay=0.01, reduction="mean", loss="mse")
    assert code == 1 and json.loads(out)["objective"] == pytest.approx(ref.objective, rel=1e-6)
    # the readable summary names the model kind
    code, out, _ = _run(capsys, [path, data, "--target", "t", "--alpha", "0.1"])
    assert code == 1 and "torch state_dict" in out and "objective" in out


def test_torch_state_dict_errors(workdir, capsys):
    torch = pytest.importorskip("torch")
    d, data, _, _, _ = workdir
    mod = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
    path = d / "ok.pt"
    torch.save(mod.state_dict(), path)
    code, _, err = _run(capsys, [path, data, "--target", "t"])
    assert code == 2 and "--alpha" in err  # a state_dict does not record the weight decay
    deep = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4),
                               torch.nn.ReLU(), torch.nn.Linear(4, 1))
    torch.save(deep.state_dict(), d / "deep.pt")
    code, _, err = _run(capsys, [d / "deep.pt", data, "--target", "t", "--alpha", "0.1"])
    assert code == 2 and "unsupported architecture" in err and "two nn.Linear" in err
    bn = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(),
                             torch.nn.Linear(4, 1))
    torch.save(bn.state_dict(), d / "bn.pt")
    code, _, err = _run(capsys, [d / "bn.pt", data, "--target", "t", "--alpha", "0.1"])
    assert code == 2 and "unsupported architecture" in err
    nan = {k: v.clone() for k, v in mod.state_dict().items()}
    nan["0.weight"][0, 0] = float("nan")
    torch.save(nan, d / "nan.pt")
    code, _, err = _run(capsys, [d / "nan.pt", data, "--target", "t", "--alpha", "0.1"])
    assert code == 2 and "NaN" in err
    wide = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
    torch.save(wide.state_dict(), d / "wide.pt")
    code, _, err = _run(capsys, [d / "wide.pt", data, "--target", "t", "--alpha", "0.1"])
    assert code == 2 and "2 feature columns" in err and "expects 3" in err
    torch.save(mod, d / "whole.pt")  # a whole module, not a state_dict: refused, not run
    code, _, err = _run(capsys, [d / "whole.pt", data, "--target", "t", "--alpha", "0.1"])
    assert code == 2 and "weights_only=True" in err and "state_dict" in err
    torch.save({"0.weight": torch.zeros(5, 2), "2.weight": torch.zeros(1, 4)}, d / "chain.pt")
    code, _, err = _run(capsys, [d / "chain.pt", data, "--target", "t", "--alpha", "0.1"])
    assert code == 2 and "do not chain" in err


@pytest.fixture(scope="module")
def sklearn_pickle(workdir):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    d, _, _, X, y = workdir
    mlp = MLPRegressor(hidden_layer_sizes=(6,), alpha=0.1, solver="lbfgs", max_iter=200,
                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
    path = d / "mlp.pkl"
    with open(path, "wb") as fh:
        pickle.dump(mlp, fh)
    return path, mlp


def test_sklearn_pickle(workdir, sklearn_pickle, capsys):
    _, data, _, X, y = workdir
    path, mlp = sklearn_pickle
    code, out, _ = _run(capsys, [path, data, "--target", "t", "--trust-pickle", "--json"])
    cert = json.loads(out)
    assert cert["objective"] == pytest.approx(mlp.loss_, rel=1e-9)  # alpha from the model
    ref = certify(mlp, X, y)
    assert cert["lower_bound"] == pytest.approx(ref.lower_bound, rel=1e-9)
    assert code == (0 if ref.optimal else 1)
    import joblib

    jl = path.with_suffix(".joblib")
    joblib.dump(mlp, jl)
    code2, out2, _ = _run(capsys, [jl, data, "--target", "t", "--trust-pickle", "--json"])
    assert code2 == code and json.loads(out2)["objective"] == cert["objective"]


def test_pickle_refused_without_flag(workdir, capsys):
    d, data, _, _, _ = workdir
    # a pickle whose loading would leave a trace: it must not be unpickled
    marker = d / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = d / "evil.pkl"
    with open(path, "wb") as fh:
        pickle.dump(Evil(), fh)
    for suffix in (".pkl", ".pickle", ".joblib"):
        p = path.with_suffix(suffix)
        if p != path:
            p.write_bytes(path.read_bytes())
        code, out, err = _run(capsys, [p, data, "--target", "t"])
        assert code == 2 and "--trust-pickle" in err and "Nothing was loaded" in err
        assert out == ""
    assert not marker.exists()
    # with the flag, a pickle of something else is rejected by type (after loading)
    with open(d / "other.pkl", "wb") as fh:
        pickle.dump({"a": 1}, fh)
    code, _, err = _run(capsys, [d / "other.pkl", data, "--target", "t", "--trust-pickle"])
    assert code == 2 and "MLPRegressor or MLPClassifier" in err


def test_sklearn_wrong_architecture(workdir, capsys):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    d, data, _, X, y = workdir
    for kw, msg in [({"hidden_layer_sizes": (4, 4)}, "one hidden layer"),
                    ({"activation": "tanh"}, "activation='relu'")]:
        mlp = MLPRegressor(max_iter=5, random_state=0, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(X, y)
        path = d / "arch.pkl"
        with open(path, "wb") as fh:
            pickle.dump(mlp, fh)
        code, _, err = _run(capsys, [path, data, "--target", "t", "--trust-pickle"])
        assert code == 2 and msg in err


# --------------------------------------------------------------------------- bad input
def test_bad_input(workdir, capsys, tmp_path):
    d, data, model, X, y = workdir
    code, _, err = _run(capsys, [tmp_path / "missing.npz", data, "--target", "t"])
    assert code == 2 and "does not exist" in err
    code, _, err = _run(capsys, [model, tmp_path / "missing.csv", "--target", "t"])
    assert code == 2 and "does not exist" in err
    code, _, err = _run(capsys, [model, data, "--target", "zz"])
    assert code == 2 and "not found" in err
    code, _, err = _run(capsys, [d / "d.csv", data, "--target", "t"])
    assert code == 2 and "unsupported model file" in err
    code, _, err = _run(capsys, [model, data, "--target", "t", "--alpha", "-1"])
    assert code == 2 and "--alpha" in err
    code, _, err = _run(capsys, [model, data, "--target", "t", "--tol", "nan"])
    assert code == 2 and "--tol" in err
    code, _, err = _run(capsys, [model, data, "--target", "t", "--patterns", "exact",
                                 "--random-state", "1"])
    assert code == 2 and "--patterns N" in err
    with pytest.raises(SystemExit):
        main(["certify", str(model), str(data), "--target", "t", "--patterns", "some"])
    capsys.readouterr()
    # feature-count mismatch: a 3-feature table for a 2-feature model (named, then not)
    wide = tmp_path / "w.csv"
    np.savetxt(wide, np.column_stack([X, X[:, 0], y]), delimiter=",", header="a,b,c,t",
               comments="")
    code, _, err = _run(capsys, [model, wide, "--target", "t"])
    assert code == 2 and "unknown ['c']" in err and "expected ['a', 'b']" in err
    np.savetxt(wide, np.column_stack([X, X[:, 0], y]), delimiter=",")
    code, _, err = _run(capsys, [model, wide, "--target", "3"])
    assert code == 2 and "3 feature columns" in err and "expects 2" in err
    # an .npz that is not a convexrelu model, and one with NaN weights
    np.savez(tmp_path / "x.npz", W1=np.zeros((1, 2)))
    code, _, err = _run(capsys, [tmp_path / "x.npz", data, "--target", "t"])
    assert code == 2 and "not a convexrelu model" in err
    with np.load(model) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["W2"] = arrays["W2"].copy()
    arrays["W2"][0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    code, _, err = _run(capsys, [tmp_path / "nan.npz", data, "--target", "t"])
    assert code == 2 and "NaN" in err
    # a loss that does not fit the model (logistic on real-valued targets)
    code, _, err = _run(capsys, [model, data, "--target", "t", "--loss", "softmax"])
    assert code == 2 and "softmax" in err


def test_library_warnings_become_one_line(workdir, capsys, monkeypatch):
    """A warning inside certify is printed once as 'convexrelu certify: warning: ...'."""
    import convexrelu.certificates as certificates

    real = certificates.certify

    def noisy(*args, **kwargs):
        warnings.warn("Solution may be\n inaccurate.", UserWarning)
        warnings.warn("Solution may be\n inaccurate.", UserWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(certificates, "certify", noisy)
    _, data, model, _, _ = workdir
    code, out, err = _run(capsys, [model, data, "--target", "t", "--json"])
    assert code == 0 and json.loads(out)["optimal"]
    assert err == "convexrelu certify: warning: Solution may be inaccurate.\n"

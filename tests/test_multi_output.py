"""Joint multi-output gated solves (issue 12, item 2): one FISTA loop for the ``c``
independent column programs over shared patterns (docs/mathematics.rst §3.7), checked
against the column-by-column solves, cvxpy, and across the numpy / torch backends
(item 3: torch on the CPU here, the same comparisons on CUDA when a GPU is present)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from convexrelu import ConvexReLUClassifier, ConvexReLURegressor
from convexrelu.arrangements import sample_patterns
from convexrelu.losses import get_loss
from convexrelu.program import ConvexProgram
from convexrelu.regularizers import GroupL2Penalty
from convexrelu.solvers import CvxpySolver
from convexrelu.solvers._fista import FistaSolver, solve_gated_fista, solve_gated_fista_multi

TOL = 1e-8


def data(c=3, n=40, d=3, P=12, seed=0, binary=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = np.column_stack([X[:, 0] - np.abs(X[:, 1]), X[:, 1] ** 2, np.sin(X[:, 2]),
                         X.sum(1)][:c]) + 0.1 * rng.standard_normal((n, c))
    if binary:
        Y = np.where(Y > np.median(Y, 0), 1.0, -1.0)
    pats = sample_patterns(X, P, random_state=seed, bias=True)
    return X, Y, pats


CASES = [("squared", False), ("squared", True), ("logistic", True)]


@pytest.mark.parametrize("loss_name,output_bias", CASES)
def test_joint_matches_sequential(loss_name, output_bias):
    X, Y, pats = data(binary=loss_name == "logistic")
    c = Y.shape[1]
    loss = get_loss(loss_name)
    if loss_name == "squared":
        loss = loss.column_loss(c)
    Xa = pats.augment(X)
    rm = solve_gated_fista_multi(loss, Xa, pats.masks, Y, 0.3, output_bias=output_bias,
                                 tol=TOL)
    assert rm.converged and rm.B.shape == (c, pats.n_patterns, Xa.shape[1])
    assert rm.dual.shape == (X.shape[0], c) and rm.output_bias.shape == (c,)
    total = 0.0
    for k in range(c):
        rs = solve_gated_fista(loss, Xa, pats.masks, Y[:, k], 0.3, output_bias=output_bias,
                               tol=TOL)
        col = rm.info["columns"][k]
        assert col["converged"] and col["rel_gap"] <= TOL
        assert abs(col["objective"] - rs.objective) <= 1e-7 * abs(rs.objective)
        # the reported objective is that of the returned point
        z = np.einsum("nd,pd,np->n", Xa, rm.B[k], pats.masks) + rm.output_bias[k]
        val = loss.value(z, Y[:, k]) + 0.3 * np.linalg.norm(rm.B[k], axis=1).sum()
        assert abs(val - col["objective"]) <= 1e-10 * abs(val)
        total += rs.objective
    assert abs(rm.objective - total) <= 1e-7 * total


def test_multi_output_program_fista_matches_cvxpy():
    X, Y, pats = data()
    prog = ConvexProgram(X, Y, pats, loss="squared", alpha=0.2, bias=True,
                         penalize_bias=True, formulation="gated_relu")
    sf = FistaSolver(tol=TOL).solve(prog)  # raised "handles one output" before
    sc = CvxpySolver(tol=1e-10).solve(prog)
    assert sf.V.shape == (3, pats.n_patterns, X.shape[1] + 1)
    assert np.shape(sf.output_bias) == (3,)
    assert sf.status == "optimal" and sf.info["rel_gap"] <= TOL
    assert abs(sf.objective - sc.objective) <= 1e-6 * abs(sc.objective)
    assert abs(prog.objective(sf.V, sf.W, sf.output_bias) - sf.objective) <= \
        1e-10 * sf.objective


def test_one_vs_rest_solve_columns_matches_cvxpy():
    X, Y, pats = data(binary=True)
    progs = [ConvexProgram(X, Y[:, k], pats, loss="logistic", alpha=0.3, bias=True,
                           penalize_bias=True, formulation="gated_relu") for k in range(3)]
    sols = FistaSolver(tol=TOL).solve_columns(progs)
    for p, s in zip(progs, sols):
        ref = CvxpySolver(tol=1e-10).solve(p)
        assert s.status == "optimal" and s.info["joint_columns"] == 3
        assert abs(s.objective - ref.objective) <= 1e-6 * abs(ref.objective)
        assert abs(p.objective(s.V, s.W, s.output_bias) - s.objective) <= 1e-10


def test_warm_start_and_partial_penalty():
    X, Y, pats = data()
    Xa = pats.augment(X)
    loss = get_loss("squared").column_loss(3)
    kw = dict(output_bias=True, tol=TOL,
              regularizer=GroupL2Penalty(Xa.shape[1], free_bias=True))
    r = solve_gated_fista_multi(loss, Xa, pats.masks, Y, 0.3, **kw)
    r2 = solve_gated_fista_multi(loss, Xa, pats.masks, Y, 0.3, W0=r.B,
                                 c0=r.output_bias, **kw)
    assert r.converged and r2.converged and r2.n_iter <= r.n_iter
    for k in range(3):
        rs = solve_gated_fista(loss, Xa, pats.masks, Y[:, k], 0.3, **kw)
        assert abs(r.info["columns"][k]["objective"] - rs.objective) <= 1e-7 * rs.objective


def test_max_iter_warns_and_reports_columns():
    X, Y, pats = data()
    with pytest.warns(ConvergenceWarning, match="joint outputs"):
        r = solve_gated_fista_multi("squared", pats.augment(X), pats.masks, Y, 0.01,
                                    tol=1e-12, max_iter=3, polish=False)
    assert not r.converged and r.n_iter == 3
    assert all(np.isfinite(col["objective"]) for col in r.info["columns"])


def test_errors():
    X, Y, pats = data()
    Xa = pats.augment(X)
    with pytest.raises(ValueError, match="Y must have shape"):
        solve_gated_fista_multi("squared", Xa, pats.masks, Y[:, 0], 0.3)
    with pytest.raises(ValueError, match="Y must have shape"):
        solve_gated_fista_multi("squared", Xa, pats.masks, Y[:5], 0.3)
    with pytest.raises(ValueError, match="W0 must have shape"):
        solve_gated_fista_multi("squared", Xa, pats.masks, Y, 0.3, W0=np.zeros((2, 2, 2)))
    p1 = ConvexProgram(X, Y[:, 0], pats, loss="squared", alpha=0.3, bias=True,
                       penalize_bias=True, formulation="gated_relu")
    p2 = p1.with_alpha(0.5)
    with pytest.raises(ValueError, match="differ only in their targets"):
        FistaSolver().solve_columns([p1, p2])
    with pytest.raises(TypeError, match="non-empty list of ConvexProgram"):
        FistaSolver().solve_columns([])
    pm = ConvexProgram(X, Y, pats, loss="squared", alpha=0.3, bias=True,
                       penalize_bias=True, formulation="gated_relu")
    with pytest.raises(ValueError, match="handles one output"):
        FistaSolver().solve_columns([pm])


def test_softmax_program_is_refused():
    X, Y, pats = data()
    labels = np.argmax(Y, axis=1)
    prog = ConvexProgram(X, labels, pats, loss="softmax", alpha=0.3, bias=True,
                         penalize_bias=True, formulation="gated_relu")
    assert prog.n_outputs > 1
    with pytest.raises(ValueError, match="cannot be split into columns"):
        FistaSolver().solve(prog)


def test_estimators_use_the_joint_path(monkeypatch):
    X, Y, pats = data(c=3, n=30)
    labels = np.argmax(Y, axis=1)
    calls = []
    orig = FistaSolver.solve_columns

    def spy(self, programs, warm_starts=None):
        calls.append(len(programs))
        return orig(self, programs, warm_starts)

    monkeypatch.setattr(FistaSolver, "solve_columns", spy)
    kw = dict(alpha=0.05, patterns=pats, formulation="gated_relu", penalize_bias=True,
              certify=False)
    clf = ConvexReLUClassifier(**kw).fit(X, labels)
    assert calls == [3]
    reg = ConvexReLURegressor(**kw).fit(X, Y)
    assert calls == [3, 3]
    # the same fit with the torch backend (CPU) through a solver instance
    clf_t = ConvexReLUClassifier(**{**kw, "solver": FistaSolver(tol=1e-6, backend="torch",
                                                                device="cpu")}).fit(X, labels)
    assert calls == [3, 3, 3]
    assert abs(clf_t.objective_ - clf.objective_) <= 1e-6 * clf.objective_
    assert np.array_equal(clf_t.predict(X), clf.predict(X))
    assert reg.predict(X).shape == Y.shape


def test_gated_networks_are_judged_at_the_users_tol(monkeypatch):
    """formulation="gated_relu": the network is the ReLU program on the gated support,
    solved below tol (1e-8); a column that misses 1e-8 but meets tol is optimal and
    silent, one that misses tol warns once, in terms of tol (not the internal 1e-8)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    import convexrelu.solvers._column_generation as cg

    # cvxpy's restricted points as they come (the loop's Newton polish of them would
    # close the second column's gap): a column that misses 1e-8, as a harder program's can
    monkeypatch.setattr(cg, "_CVXPY_POLISH_RGAP", np.inf)

    X, Y, pats = data(c=3, n=30)
    labels = np.argmax(Y, axis=1)
    kw = dict(alpha=0.05, patterns=pats, formulation="gated_relu", penalize_bias=True,
              certify=False)
    # these columns' networks stop at certified gaps 1.6e-9, 2.9e-5 and 1.6e-7
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = ConvexReLUClassifier(tol=1e-4, **kw).fit(X, labels)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert clf.solution_status_ == "optimal"
    with pytest.warns(ConvergenceWarning) as record:
        ConvexReLUClassifier(tol=1e-6, **kw).fit(X, labels)
    msgs = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    assert len(msgs) == 1 and "tol=1e-06" in msgs[0] and "1e-08" not in msgs[0]


# ------------------------------------------------------------------ backends (item 3)
torch = pytest.importorskip("torch")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# float32 iterations: the certificate is computed in float64 but the iterates carry
# float32 rounding, so objectives agree with float64 to about 1e-4 relative (documented
# in benchmarks/bench_gpu.py and the FistaSolver docstring)
F32_RTOL = 1e-4


def _backend_case(device, dtype, loss_name):
    X, Y, pats = data(binary=loss_name == "logistic")
    loss = get_loss(loss_name)
    if loss_name == "squared":
        loss = loss.column_loss(3)
    Xa = pats.augment(X)
    ref = solve_gated_fista_multi(loss, Xa, pats.masks, Y, 0.3, output_bias=True, tol=TOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = solve_gated_fista_multi(loss, Xa, pats.masks, Y, 0.3, output_bias=True,
                                    tol=TOL if dtype == np.float64 else 5e-5, dtype=dtype,
                                    backend="torch", device=device,
                                    max_iter=10000 if dtype == np.float64 else 1500)
    assert r.info["backend"] == "torch" and r.info["device"].startswith(device)
    assert isinstance(r.B, np.ndarray) and r.B.dtype == np.dtype(dtype)
    rtol = 1e-6 if dtype == np.float64 else F32_RTOL
    for a, b in zip(r.info["columns"], ref.info["columns"]):
        assert abs(a["objective"] - b["objective"]) <= rtol * abs(b["objective"])
    if dtype == np.float64:
        assert r.converged


@pytest.mark.parametrize("dtype, loss_name", [
    (np.float64, "squared"), (np.float32, "squared"), (np.float64, "logistic"),
    pytest.param(np.float32, "logistic", marks=pytest.mark.slow)])  # 15 s: the slow run
def test_torch_cpu_matches_numpy(dtype, loss_name):
    _backend_case("cpu", dtype, loss_name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss_name", ["squared", "logistic"])
def test_cuda_matches_numpy(dtype, loss_name):
    _backend_case("cuda", dtype, loss_name)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_single_output_solver_on_torch(device, dtype):
    """FistaSolver on torch (float32 included) against numpy, through the solver class
    (the certificate's bound on the backend, the polish on the host)."""
    X, Y, pats = data()
    prog = ConvexProgram(X, Y[:, 0], pats, loss="squared", alpha=0.3, bias=True,
                         penalize_bias=True, formulation="gated_relu")
    ref = FistaSolver(tol=TOL).solve(prog)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        s = FistaSolver(tol=TOL if dtype == "float64" else 1e-5, backend="torch",
                        device=device, dtype=dtype,
                        max_iter=10000 if dtype == "float64" else 1500).solve(prog)
    rtol = 1e-6 if dtype == "float64" else F32_RTOL
    assert abs(s.objective - ref.objective) <= rtol * ref.objective
    assert s.info["device"].startswith(device)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_estimator_on_cuda():
    X, Y, pats = data(c=3, n=30)
    labels = np.argmax(Y, axis=1)
    kw = dict(alpha=0.05, patterns=pats, formulation="gated_relu", penalize_bias=True,
              certify=False)
    ref = ConvexReLUClassifier(**kw).fit(X, labels)
    gpu = ConvexReLUClassifier(**kw, solver=FistaSolver(backend="torch",
                                                        device="cuda")).fit(X, labels)
    assert abs(gpu.objective_ - ref.objective_) <= 1e-6 * ref.objective_


def test_group_shrink_of_rows_below_the_threshold_does_not_overflow():
    """Rows at or below the threshold get factor 0 without dividing by the smallest
    float (``thresh / tiny`` overflowed: a RuntimeWarning reached users of a class with
    one sample); the others are shrunk exactly."""
    from convexrelu.solvers._fista import ArrayBackend

    B = 10 * np.array([[0.0, 0.0, 1.0], [3.0, 4.0, 2.0], [0.3, 0.4, -1.0]])
    names = ["numpy", "torch"]  # (the module needs torch)
    for name in names:
        xb = ArrayBackend(name)
        for free in (False, True):
            reg = GroupL2Penalty(3, free_bias=free)
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                out = xb.to_numpy(xb.group_shrink(xb.asarray(B), 10.0, reg))
            pen = B[:, :2] if free else B
            nrm = np.linalg.norm(pen, axis=1)
            fac = np.maximum(1.0 - 10.0 / np.maximum(nrm, 1e-300), 0.0)
            want = B * fac[:, None] if not free else np.c_[B[:, :2] * fac[:, None], B[:, 2]]
            np.testing.assert_allclose(out, want, rtol=1e-12, atol=0)


def test_power_lipschitz_on_torch_matches_eigvalsh():
    """The Lipschitz constant of large problems on a torch backend is computed on its
    device (power iterations), not by ARPACK on the host: it must bound the exact one."""
    from convexrelu.solvers._fista import ArrayBackend, _power_lipschitz

    X, _, pats = data(n=80)
    Xa, S = pats.augment(X), pats.masks.astype(float)
    for ob in (False, True):
        K = (Xa @ Xa.T) * (S @ S.T) + (1.0 if ob else 0.0)
        exact = np.linalg.eigvalsh(K)[-1]
        val = _power_lipschitz(ArrayBackend("torch", device=DEVICES[-1]), Xa, S, ob)
        assert exact <= val <= 1.011 * exact


@pytest.mark.parametrize("loss_name", ["squared", "logistic"])
def test_rough_first_stage_runs_in_float32(monkeypatch, loss_name):
    """Before the float64 polish, the joint FISTA stage that only reaches polish_tol runs
    its products in float32; its certificates and the objective it hands on are float64
    (the reported objective is the returned point's), and the result is the all-float64
    solve's."""
    from convexrelu.solvers import _fista as F

    X, Y, pats = data(binary=loss_name == "logistic", n=60, P=15, seed=3)
    loss = get_loss(loss_name)
    if loss_name == "squared":
        loss = loss.column_loss(Y.shape[1])
    Xa = pats.augment(X)
    seen = []
    core = F._fista_multi_core

    def spy(**kw):
        seen.append((np.dtype(kw["xp"].dtype), np.min(kw["stage_tol"])))
        return core(**kw)

    monkeypatch.setattr(F, "_fista_multi_core", spy)
    # (a backend instance, as the estimators pass it, or its name)
    r = solve_gated_fista_multi(loss, Xa, pats.masks, Y, 0.2, output_bias=True, tol=TOL,
                                backend=F.get_backend("numpy"))
    assert seen[0] == (np.float32, 2e-2)
    assert all(dt == np.float64 for dt, st in seen if st < F._ROUGH_STAGE_TOL)
    # a rough stage that is the last one: its objective is the returned point's, in
    # float64, and so is its certified gap
    seen.clear()
    rr = solve_gated_fista_multi(loss, Xa, pats.masks, Y, 0.2, output_bias=True, tol=5e-3,
                                 polish_tol=5e-3)
    assert seen == [(np.float32, 5e-3)] and rr.converged
    for k, col in enumerate(rr.info["columns"]):
        z = np.einsum("nd,pd,np->n", Xa, rr.B[k], pats.masks) + rr.output_bias[k]
        val = loss.value(z, Y[:, k]) + 0.2 * np.linalg.norm(rr.B[k], axis=1).sum()
        assert abs(val - col["objective"]) <= 1e-12 * abs(val)
        assert col["rel_gap"] <= 5e-3
        ref = solve_gated_fista(loss, Xa, pats.masks, Y[:, k], 0.2, output_bias=True,
                                tol=TOL).objective
        assert ref - 1e-12 * abs(ref) <= col["objective"] <= ref + 5e-3 * abs(ref)
    seen.clear()
    monkeypatch.setattr(F, "_ROUGH_STAGE_TOL", np.inf)  # every stage in float64
    seen.clear()
    r64 = solve_gated_fista_multi(loss, Xa, pats.masks, Y, 0.2, output_bias=True, tol=TOL)
    assert seen and all(dt == np.float64 for dt, _ in seen)
    assert r.converged and r64.converged
    assert r.B.dtype == np.float64
    for k, col in enumerate(r.info["columns"]):
        assert col["rel_gap"] <= TOL
        ref = r64.info["columns"][k]["objective"]
        assert abs(col["objective"] - ref) <= 1e-7 * abs(ref)
        z = np.einsum("nd,pd,np->n", Xa, r.B[k], pats.masks) + r.output_bias[k]
        val = loss.value(z, Y[:, k]) + 0.2 * np.linalg.norm(r.B[k], axis=1).sum()
        assert abs(val - col["objective"]) <= 1e-10 * abs(val)

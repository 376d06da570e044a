"""ReluALSolver: the ReLU program by an augmented Lagrangian (linear in n per iteration)."""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from convexrelu.arrangements import sample_patterns
from convexrelu.certificates._gap import duality_gap
from convexrelu.program import ConvexProgram
from convexrelu.solvers import ReluFastSolver, get_solver
from convexrelu.solvers._column_generation import ColumnGenerationSolver, _AutoInner
from convexrelu.solvers._relu_al import ReluALSolver, operator_norm_sq


def _program(loss="squared", bias=True, penalize_bias=False, n=24, d=2, P=12, seed=0,
             outputs=1, alpha=0.2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X[:, 0] ** 2 - X[:, 1] + 0.1 * rng.standard_normal(n)
    if loss == "logistic":
        y = (y > np.median(y)).astype(float)
    if outputs > 1:
        y = np.column_stack([y, np.abs(X[:, 1]) - X[:, 0]])
    pats = sample_patterns(X, P, random_state=seed, bias=bias)
    return ConvexProgram(X, y, pats, loss=loss, alpha=alpha, bias=bias,
                         penalize_bias=penalize_bias)


def _reference(prog):
    with warnings.catch_warnings():  # its own gap check is looser than the comparison
        warnings.simplefilter("ignore", ConvergenceWarning)
        return get_solver("cvxpy", tol=1e-10).solve(prog).objective


@pytest.mark.parametrize("loss", ["squared", "logistic", "huber"])
@pytest.mark.parametrize("bias,penalize_bias", [(True, False), (True, True), (False, False)])
def test_matches_cvxpy(loss, bias, penalize_bias):
    prog = _program(loss, bias, penalize_bias)
    sol = ReluALSolver(tol=1e-8).solve(prog)
    ref = _reference(prog)
    assert sol.status == "optimal"
    assert abs(sol.objective - ref) <= 1e-6 * abs(ref)
    assert prog.max_violation(sol.V, sol.W) <= 1e-12
    assert sol.info["method"] == "augmented_lagrangian"


def test_two_outputs_match_cvxpy_and_auto_uses_it():
    prog = _program("squared", outputs=2)
    ref = _reference(prog)
    sol = ReluALSolver(tol=1e-8).solve(prog)
    assert sol.V.shape == (2, prog.n_patterns, prog.d_aug)
    assert abs(sol.objective - ref) <= 1e-6 * abs(ref)
    auto = ReluFastSolver(tol=1e-8).solve(prog)  # several outputs: the AL
    assert auto.info["method"] == "al"
    assert abs(auto.objective - ref) <= 1e-6 * abs(ref)


def test_reported_gap_is_a_certificate_of_the_core():
    """The reported gap (the core's multiplier bound) is at least the core's exact gap of
    the returned point, and both are within tol."""
    prog = _program("logistic", P=10)
    sol = ReluALSolver(tol=1e-7).solve(prog)
    exact = duality_gap(prog, sol.V, sol.W, sol.output_bias)
    n = prog.n_samples
    assert exact.gap / n <= sol.gap * (1 + 1e-9) + 1e-15
    assert sol.info["rel_gap"] <= 1e-7 and exact.rel_gap <= 1e-7
    assert np.isclose(exact.primal / n, sol.objective, rtol=1e-12)


def test_memory_is_linear_in_n():
    """No n x n (nor n x P d) array: the peak stays far below one n x n float64 matrix."""
    prog = _program("squared", n=3000, d=2, P=6, alpha=50.0)
    n = prog.n_samples
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ReluALSolver(tol=1e-6, max_iter=2, max_inner=20).solve(prog)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.1 * n * n * 8


def test_operator_norm_estimate():
    prog = _program("squared", n=30, P=8)
    S = prog.masks.astype(float)
    K = (prog.X_aug @ prog.X_aug.T) * (S @ S.T) + 1.0
    exact = np.linalg.eigvalsh(K)[-1]
    est = operator_norm_sq(prog.X_aug, S, output_bias=True, n_iter=200)
    assert est <= exact * (1 + 1e-9) and est >= 0.99 * exact


def test_working_set_inner_switches_to_al_above_the_budget(monkeypatch):
    prog = _program("logistic", P=16)
    ref = _reference(prog)
    monkeypatch.setattr(_AutoInner, "_MAX_DESIGN", 0)
    inner = _AutoInner(1e-10)
    sol = ColumnGenerationSolver(inner=inner, tol=1e-8).solve(prog)
    assert inner._al is not None and inner._cvxpy is None
    assert abs(sol.objective - ref) <= 1e-6 * abs(ref)


def test_method_al_on_relu_fast_and_errors():
    prog = _program("squared", P=8)
    sol = ReluFastSolver(method="al", tol=1e-8).solve(prog)
    assert sol.info["method"] == "al" and sol.status == "optimal"
    hinge = ConvexProgram(prog.X, np.sign(prog.y - np.median(prog.y)), prog.patterns,
                          loss="hinge", alpha=0.1, bias=True)
    with pytest.raises(ValueError, match="ReluALSolver needs a smooth loss"):
        ReluALSolver()._solve(hinge)
    with pytest.raises(ValueError, match="The 'max_inner' parameter of ReluALSolver"):
        ReluALSolver(max_inner=0).solve(prog)
    multi = _program("squared", outputs=2, P=6)
    with pytest.raises(ValueError, match=r"ReluFastSolver\(method='working_set'\) handles "
                                         "one output"):
        ReluFastSolver(method="working_set").solve(multi)


def test_barrier_is_not_used_above_its_size_cap(monkeypatch):
    """Above _BARRIER_MAX_N samples the n x n Newton matrix is not formed: the loop runs."""
    prog = _program("squared", bias=True, penalize_bias=True, P=8)
    assert ReluFastSolver().solve(prog).info["method"] == "barrier"
    monkeypatch.setattr(ReluFastSolver, "_BARRIER_MAX_N", prog.n_samples - 1)
    sol = ReluFastSolver(tol=1e-8).solve(prog)
    assert sol.info["method"] == "working_set"
    assert abs(sol.objective - _reference(prog)) <= 1e-6 * _reference(prog)


def test_working_set_al_inner_is_warm_started(monkeypatch):
    """Between rounds the AL inner starts from the previous restricted solution, mapped
    onto the new working set by pattern identity."""
    prog = _program("squared", P=12)
    inner = _AutoInner(1e-10)
    monkeypatch.setattr(_AutoInner, "_MAX_DESIGN", 0)
    # a large squared-loss program goes to the barrier first: keep it on the AL here
    monkeypatch.setattr(_AutoInner, "_large_quadratic", lambda self, program: False)
    first = prog.restrict(np.arange(6))
    sol = inner.solve(first)
    warm = inner._warm(prog.restrict(np.arange(3, 9)))
    assert warm.V.shape == (6, prog.d_aug)
    np.testing.assert_array_equal(warm.V[:3], sol.V[3:6])
    np.testing.assert_array_equal(warm.W[3:], 0.0)
    assert warm.output_bias == sol.output_bias


def test_polish_support_smooth_loss_is_opt_in():
    """polish_support stays quadratic-only by default (certify relies on it); with
    smooth_loss=True it polishes a logistic program's restricted solution to its optimum."""
    from convexrelu._polish import polish_support

    prog = _program("logistic", P=8)
    rough = ReluALSolver(tol=1e-2, polish=False).solve(prog)
    assert polish_support(prog, rough.V, rough.W, rough.output_bias) is None
    V, W, c0 = polish_support(prog, rough.V, rough.W, rough.output_bias, drop_rows=True,
                              smooth_loss=True)
    assert prog.objective(V, W, c0) <= rough.objective
    assert prog.max_violation(V, W) <= 1e-9


# ------------------------------------------------------------------ torch backends
def _torch_devices():
    torch = pytest.importorskip("torch")
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _backend_case(device, loss, bias, penalize_bias):
    prog = _program(loss, bias, penalize_bias)
    ref = ReluALSolver(tol=1e-8).solve(prog)
    sol = ReluALSolver(tol=1e-8, backend="torch", device=device).solve(prog)
    assert ref.status == sol.status == "optimal"
    assert sol.info["backend"] == "torch" and sol.info["device"].startswith(device)
    assert abs(sol.objective - ref.objective) <= 1e-6 * abs(ref.objective)
    assert prog.max_violation(sol.V, sol.W) <= 1e-12
    # the certificate is the core's, computed on the host from the returned point
    dg = duality_gap(prog, sol.V, sol.W, sol.output_bias)
    assert dg.primal / prog.n_samples == pytest.approx(sol.objective, rel=1e-9)


@pytest.mark.parametrize("loss,bias,penalize_bias", [
    ("squared", True, False), ("logistic", True, True), ("huber", False, False)])
def test_torch_cpu_matches_numpy(loss, bias, penalize_bias):
    _backend_case("cpu", loss, bias, penalize_bias)


@pytest.mark.gpu
@pytest.mark.parametrize("loss,bias,penalize_bias", [
    ("squared", True, False), ("logistic", True, True), ("huber", False, False)])
def test_cuda_matches_numpy(loss, bias, penalize_bias):
    if "cuda" not in _torch_devices():
        pytest.skip("CUDA is not available")
    _backend_case("cuda", loss, bias, penalize_bias)


def test_operator_norm_on_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    from convexrelu.solvers._fista import ArrayBackend

    prog = _program(n=60, P=8)
    M = prog.masks.astype(float)
    S = np.hstack([M, -M])
    ref = operator_norm_sq(prog.X_aug, S, output_bias=True)
    xp = ArrayBackend("torch", device=_torch_devices()[-1])
    val = operator_norm_sq(xp.asarray(prog.X_aug), None, output_bias=True, xp=xp,
                           S_T=xp.asarray(S.T))
    assert val == pytest.approx(ref, rel=1e-12)
    assert isinstance(xp.asarray(S.T), torch.Tensor)


def test_float32_is_refused_with_a_reason():
    from convexrelu.solvers._relu_al import solve_relu_al

    prog = _program()
    with pytest.raises(ValueError, match="float64 only"):
        solve_relu_al(prog.loss, prog.X_aug, prog.masks, prog.y, prog.alpha,
                      gates=prog.patterns.gates, regularizer=prog.regularizer,
                      output_bias=True, centred=True, backend="torch", dtype=np.float32)
    with pytest.raises(ValueError, match="dtype"):
        ReluALSolver(dtype="float32").solve(prog)


def test_never_worse_than_its_start():
    """One multiplier step at the initial (small) penalty ends outside the cones; the
    returned point is still no worse than the starting point (zero network, warm start)."""
    prog = _program("squared", n=60, P=16, alpha=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = ReluALSolver(max_iter=1, max_inner=20, polish=False).solve(prog)
        # the zero network (output bias 0: the cold start's)
        assert one.objective <= 0.5 * float(prog.y @ prog.y) / prog.n_samples + 1e-12
        ref = ReluALSolver(tol=1e-8).solve(prog)
        warm = ReluALSolver(max_iter=1, max_inner=5, polish=False).solve(
            prog, warm_start=ref)
    assert warm.objective <= ref.objective * (1 + 1e-9)
    assert prog.max_violation(warm.V, warm.W) <= 1e-12

"""numpy and torch backends of the first-order solvers give the same results (issue 6.3)."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from convexrelu.arrangements import sample_patterns
from convexrelu.program import ConvexProgram
from convexrelu.solvers._fista import ArrayBackend, FistaSolver, solve_gated_fista

torch = pytest.importorskip("torch")

TOL = 1e-7


def make(loss_name, bias, seed=0, n=20, d=2, P=12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X[:, 0] - np.abs(X[:, 1]) + 0.3 * rng.standard_normal(n)
    if loss_name == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    pats = sample_patterns(X, P, random_state=seed, bias=bias)
    return pats.augment(X), pats, y


CASES = [(ln, b) for ln in ("squared", "logistic") for b in (False, True)]


@pytest.mark.parametrize("loss_name,bias", CASES)
def test_gated_numpy_torch_agree(loss_name, bias):
    Xa, pats, y = make(loss_name, bias)
    kw = dict(output_bias=bias, tol=TOL, max_iter=20000)
    rn = solve_gated_fista(loss_name, Xa, pats.masks, y, 0.2, backend="numpy", **kw)
    rt = solve_gated_fista(loss_name, Xa, pats.masks, y, 0.2, backend="torch",
                           device="cpu", **kw)
    assert rn.converged and rt.converged
    assert rt.info["backend"] == "torch" and rn.info["backend"] == "numpy"
    assert abs(rn.objective - rt.objective) <= 1e-6 * abs(rn.objective)
    assert isinstance(rt.B, np.ndarray) and rt.B.dtype == np.float64
    # same arithmetic up to rounding: the iterates themselves agree closely
    np.testing.assert_allclose(rn.B, rt.B, atol=1e-5 * max(1.0, np.abs(rn.B).max()))


@pytest.mark.slow  # 26 s: the float64 agreement runs in the default suite
def test_float32_torch_and_numpy():
    Xa, pats, y = make("squared", True)
    r64 = solve_gated_fista("squared", Xa, pats.masks, y, 0.2, output_bias=True, tol=TOL)
    for backend in ("numpy", "torch"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            r32 = solve_gated_fista("squared", Xa, pats.masks, y, 0.2, output_bias=True,
                                    tol=1e-5, dtype=np.float32, backend=backend)
        assert r32.B.dtype == np.float32
        assert abs(r32.objective - r64.objective) <= 1e-4 * abs(r64.objective)


def test_solver_classes_backend_parameter():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((16, 2))
    y = X[:, 0] - np.abs(X[:, 1])
    pats = sample_patterns(X, 10, random_state=1, bias=True)
    gp = ConvexProgram(X, y, pats, loss="squared", alpha=0.3, bias=True,
                       penalize_bias=True, formulation="gated_relu")
    sn = FistaSolver(tol=1e-7).solve(gp)
    st = FistaSolver(tol=1e-7, backend="torch", device="cpu").solve(gp)
    assert abs(sn.objective - st.objective) <= 1e-6 * abs(sn.objective)
    # a loss with only a torch_value runs on torch through autograd (the Huber loss)
    hp = ConvexProgram(X, y, pats, loss="huber", alpha=0.3, bias=True, penalize_bias=True,
                       formulation="gated_relu")
    hn = FistaSolver(tol=1e-7).solve(hp)
    ht = FistaSolver(tol=1e-7, backend="torch").solve(hp)
    assert abs(hn.objective - ht.objective) <= 1e-6 * abs(hn.objective)


def test_backend_errors():
    with pytest.raises(ValueError, match="backend must be"):
        ArrayBackend("jax")
    with pytest.raises(ValueError, match="needs backend='torch'"):
        ArrayBackend("numpy", device="cuda")
    with pytest.raises(ValueError, match="dtype must be"):
        ArrayBackend("torch", dtype=np.int32)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda.is_available"):
            ArrayBackend("torch", device="cuda")


def test_torch_not_imported_by_solvers_and_clear_error_without_it():
    code = (
        "import sys\n"
        "import convexrelu.solvers, convexrelu.solvers._fista, convexrelu.solvers._relu_fast\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "sys.modules['torch'] = None  # simulate a missing torch\n"
        "from convexrelu.solvers._fista import ArrayBackend\n"
        "try:\n"
        "    ArrayBackend('torch')\n"
        "except ImportError as e:\n"
        "    assert 'pip install torch' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("loss_name,bias", CASES)
def test_cuda_matches_numpy(loss_name, bias):
    Xa, pats, y = make(loss_name, bias)
    kw = dict(output_bias=bias, tol=TOL, max_iter=20000)
    rn = solve_gated_fista(loss_name, Xa, pats.masks, y, 0.2, **kw)
    rc = solve_gated_fista(loss_name, Xa, pats.masks, y, 0.2, backend="torch",
                           device="cuda", **kw)
    assert rc.converged and rc.info["device"].startswith("cuda")
    assert abs(rn.objective - rc.objective) <= 1e-6 * abs(rn.objective)

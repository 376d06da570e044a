"""Gradient-flow trainer of convexrelu.nonconvex (docs/mathematics.rst §8.1, §5.5, §9 items 9,
30)."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from convexrelu.network import ReLUNet  # noqa: E402
from convexrelu.nonconvex import (  # noqa: E402
    ComparisonResult,
    Monitor,
    TrainingHistory,
    TwoLayerReLU,
    compare_gradient_flow,
    network_jacobian,
    train_gradient_flow,
)


class _Capture(Monitor):
    """Keeps every TrainingState it sees."""

    name = "capture"

    def __init__(self):
        self.states = []

    def __call__(self, state):
        self.states.append(state)
        return {}


class _Interrupt(Monitor):
    name = "interrupt"

    def __init__(self, at):
        self.at = at

    def __call__(self, state):
        if state.step >= self.at:
            raise KeyboardInterrupt
        return {"value": float(state.step)}


def _numpy_gradient(state, penalize_bias=False):
    """Analytic gradient of J = (1/n)[loss_sum + (alpha/2)(||W1||^2 + ||W2||^2)]."""
    w = state.weights
    jac = network_jacobian(state.X, w["W1"], w["b1"], w["W2"], w["b2"], trained=state.trained)
    n, c, p = jac.shape
    grad = jac.reshape(n * c, p).T @ state.output_gradient.reshape(n * c)
    out, k = {}, 0
    for name in state.trained:
        size = w[name].size
        out[name] = grad[k:k + size].reshape(w[name].shape)
        k += size
    out["W1"] = out["W1"] + state.alpha / n * w["W1"]
    if "W2" in out:
        out["W2"] = out["W2"] + state.alpha / n * w["W2"]
    if penalize_bias:
        out["b1"] = out["b1"] + state.alpha / n * w["b1"]
    return out


@pytest.mark.parametrize("loss, penalize_bias, n_out", [
    ("squared", False, 1), ("squared", True, 2), ("logistic", False, 1), ("hinge", False, 1),
])
def test_torch_gradient_equals_analytic_gradient(rng, loss, penalize_bias, n_out):
    X = rng.standard_normal((9, 3))
    if loss == "squared":
        y = rng.standard_normal((9, n_out)) if n_out > 1 else rng.standard_normal(9)
    else:
        y = rng.integers(0, 2, 9)
    cap = _Capture()
    train_gradient_flow(X, y, n_neurons=4, alpha=0.3, loss=loss, lr=0.05, n_steps=6,
                        record_every=3, random_state=0, penalize_bias=penalize_bias,
                        monitors=[cap])
    assert len(cap.states) == 3
    for st in cap.states:
        ref = _numpy_gradient(st, penalize_bias)
        for k in st.trained:
            np.testing.assert_allclose(st.gradients[k], ref[k], rtol=0, atol=1e-10)


def test_objective_matches_relunet_and_sklearn_normalisation(rng):
    X = rng.standard_normal((10, 2))
    y = rng.standard_normal(10)
    h = train_gradient_flow(X, y, n_neurons=3, alpha=0.2, lr=0.05, n_steps=30,
                            random_state=0, record_every=10)
    assert isinstance(h.network, ReLUNet)
    assert h.final_objective == pytest.approx(h.network.objective(X, y, 0.2), rel=1e-12)
    np.testing.assert_array_equal(h.steps, [0, 10, 20, 30])
    assert h.status == "completed" and not h.interrupted and h.n_steps == 30
    # numpy only: picklable without torch objects
    h2 = pickle.loads(pickle.dumps(h))
    np.testing.assert_array_equal(h2.objective, h.objective)
    # the logistic loss on {0, 1} labels is the same objective as on {-1, +1}
    yb = (y > 0).astype(int)
    h01 = train_gradient_flow(X, yb, n_neurons=3, alpha=0.2, loss="logistic", lr=0.05,
                              n_steps=10, random_state=0)
    hpm = train_gradient_flow(X, 2 * yb - 1, n_neurons=3, alpha=0.2, loss="logistic",
                              lr=0.05, n_steps=10, random_state=0)
    np.testing.assert_allclose(h01.objective, hpm.objective, rtol=1e-14)
    assert h01.final_objective == pytest.approx(
        h01.network.objective(X, yb, 0.2, loss="logistic"), rel=1e-12)


def test_objective_non_increasing_for_small_steps(rng):
    X = rng.standard_normal((15, 2))
    y = rng.standard_normal(15)
    h = train_gradient_flow(X, y, n_neurons=5, alpha=0.1, lr=0.01, n_steps=200,
                            record_every=1, random_state=3)
    assert np.all(np.diff(h.objective) <= 1e-14)
    assert h.objective[-1] < h.objective[0]


def test_snapshots_and_pattern_changes(rng):
    X = rng.standard_normal((8, 2))
    y = rng.standard_normal(8)
    h = train_gradient_flow(X, y, n_neurons=4, lr=0.1, n_steps=100, record_every=1,
                            max_snapshots=10, random_state=0)
    assert h.steps.size == 101
    assert 2 <= h.snapshot_steps.size <= 11 and h.snapshot_steps[-1] == 100
    assert h.W1.shape == (h.snapshot_steps.size, 4, 2)
    assert h.b1.shape == (h.snapshot_steps.size, 4)
    assert h.W2.shape == (h.snapshot_steps.size, 1, 4)
    np.testing.assert_array_equal(h.W1[-1], h.network.W1)
    assert h.pattern_changes.shape == (4,) and h.pattern_changes.dtype.kind == "i"
    assert np.all((h.pattern_changes >= 0) & (h.pattern_changes <= 100))


def test_pattern_changes_counted(rng):
    # one neuron whose hyperplane sweeps across the data: every crossing is counted
    X = np.linspace(-1, 1, 5)[:, None]
    y = 10.0 * np.ones(5)
    init = ReLUNet([[1.0]], [-0.99], [[1.0]], [0.0])
    h = train_gradient_flow(X, y, init=init, lr=0.05, n_steps=40)
    assert h.pattern_changes[0] >= 2


def test_balanced_and_small_init(rng):
    X = rng.standard_normal((6, 2))
    y = rng.standard_normal(6)
    h = train_gradient_flow(X, y, n_neurons=5, n_steps=0, init_scale=1e-3,
                            balanced_init=True, random_state=0)
    u = np.sqrt(np.sum(h.network.W1 ** 2, axis=1) + h.network.b1 ** 2)
    np.testing.assert_allclose(np.abs(h.network.W2[0]), u, rtol=1e-12)
    assert np.max(u) < 1e-2
    assert h.steps.tolist() == [0]
    # the same seed gives the same initialisation
    h2 = train_gradient_flow(X, y, n_neurons=5, n_steps=0, init_scale=1e-3,
                             balanced_init=True, random_state=0)
    np.testing.assert_array_equal(h.network.W1, h2.network.W1)


def test_normalized_gd_on_separable_logistic(rng):
    """Normalised GD (step on log L, docs/mathematics.rst §5.5) keeps making progress as L -> 0."""
    X = rng.standard_normal((12, 2))
    y = np.sign(X[:, 0] + 0.1)
    kw = dict(n_neurons=6, loss="logistic", n_steps=300, random_state=0, bias=False,
              init_scale=0.1, record_every=50)
    hn = train_gradient_flow(X, y, lr=0.1, normalized=True, **kw)
    assert hn.normalized
    assert np.all(np.diff(hn.objective) < 0)
    assert hn.final_objective < 1e-3
    margins = y * hn.network.predict(X)
    assert np.all(margins > 0)


def test_keyboard_interrupt_returns_partial_history(rng):
    X = rng.standard_normal((6, 2))
    y = rng.standard_normal(6)
    h = train_gradient_flow(X, y, n_neurons=3, lr=0.05, n_steps=100, record_every=10,
                            random_state=0, monitors=[_Interrupt(at=40)])
    assert h.interrupted and h.status == "interrupted"
    np.testing.assert_array_equal(h.steps, [0, 10, 20, 30])
    assert h.objective.shape == h.loss.shape == h.grad_norm.shape == (4,)
    np.testing.assert_array_equal(h.monitors["interrupt"]["step"], [0, 10, 20, 30])
    assert h.n_steps == 40
    assert isinstance(h.network, ReLUNet)


def test_divergence_warns_and_stops(rng):
    X = 10 * rng.standard_normal((6, 2))
    y = rng.standard_normal(6)
    with pytest.warns(RuntimeWarning, match="Reduce lr"):
        h = train_gradient_flow(X, y, n_neurons=3, lr=1e3, n_steps=200, random_state=0)
    assert h.status == "diverged" and h.n_steps < 200


def test_module_roundtrip_and_leaky(rng):
    net = ReLUNet(rng.standard_normal((3, 2)), rng.standard_normal(3),
                  rng.standard_normal((1, 3)), [0.5])
    mod = TwoLayerReLU.from_network(net)
    X = rng.standard_normal((5, 2))
    out = mod(torch.as_tensor(X)).detach().numpy()[:, 0]
    np.testing.assert_allclose(out, net.predict(X), atol=1e-14)
    back = mod.to_network()
    np.testing.assert_array_equal(back.W1, net.W1)
    assert mod.hidden.weight.dtype == torch.float64
    leaky = TwoLayerReLU(2, 3, negative_slope=0.1)
    with pytest.raises(ValueError, match="leaky ReLU"):
        leaky.to_network()
    with pytest.raises(ValueError, match="bias=False, but the network has nonzero biases"):
        TwoLayerReLU.from_network(net, bias=False)
    # ReLUNet.from_torch reads the plain module
    np.testing.assert_allclose(ReLUNet.from_torch(mod).W2, net.W2)


def test_float32_runs(rng):
    X = rng.standard_normal((6, 2))
    y = rng.standard_normal(6)
    h = train_gradient_flow(X, y, n_neurons=3, lr=0.05, n_steps=20, dtype="float32",
                            random_state=0)
    h64 = train_gradient_flow(X, y, n_neurons=3, lr=0.05, n_steps=20, random_state=0)
    np.testing.assert_allclose(h.objective, h64.objective, rtol=1e-4)


def test_input_errors(rng):
    X = rng.standard_normal((6, 2))
    y = rng.standard_normal(6)
    with pytest.raises(ValueError, match="n_neurons is required"):
        train_gradient_flow(X, y)
    with pytest.raises(ValueError, match=r"lr must be a float in the range \(0.0, inf\)"):
        train_gradient_flow(X, y, n_neurons=2, lr=-1.0)
    with pytest.raises(ValueError, match=r"alpha must be a float in the range \[0.0, inf\)"):
        train_gradient_flow(X, y, n_neurons=2, alpha=-1.0)
    with pytest.raises(ValueError, match="X has 6 samples but y has 5"):
        train_gradient_flow(X, y[:5], n_neurons=2)
    with pytest.raises(ValueError, match="device must be"):
        train_gradient_flow(X, y, n_neurons=2, device="banana")
    with pytest.raises(ValueError, match="dtype must be 'float64' or 'float32'"):
        train_gradient_flow(X, y, n_neurons=2, dtype="int8")
    with pytest.raises(ValueError, match="monitor names must be unique"):
        train_gradient_flow(X, y, n_neurons=2, monitors=[_Capture(), _Capture()])
    with pytest.raises(TypeError, match="monitors must be Monitor instances"):
        train_gradient_flow(X, y, n_neurons=2, monitors=[3])
    init = ReLUNet(np.ones((2, 2)), None, np.ones((1, 2)), None)
    with pytest.raises(ValueError, match="n_neurons=3 but init has 2 neurons"):
        train_gradient_flow(X, y, n_neurons=3, init=init)
    with pytest.raises(ValueError, match="init has 2 features but X has 3"):
        train_gradient_flow(np.ones((6, 3)), y, init=init)
    with pytest.raises(ValueError, match="bias=False, but init has nonzero biases"):
        train_gradient_flow(X, y, init=ReLUNet(np.ones((2, 2)), [1.0, 0.0], np.ones((1, 2)),
                                               None), bias=False)
    with pytest.raises(ValueError, match="two classes"):
        train_gradient_flow(X, np.arange(6), n_neurons=2, loss="logistic")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_cuda_unavailable_raises(rng):
    with pytest.raises(ValueError, match="torch.cuda.is_available\\(\\) is False"):
        train_gradient_flow(rng.standard_normal((4, 2)), np.ones(4), n_neurons=2,
                            device="cuda")


@pytest.mark.gpu
def test_cuda_matches_cpu(rng):
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    X = rng.standard_normal((20, 3))
    y = rng.standard_normal(20)
    kw = dict(n_neurons=8, alpha=0.1, lr=0.05, n_steps=200, random_state=0, record_every=50)
    hc = train_gradient_flow(X, y, device="cpu", **kw)
    hg = train_gradient_flow(X, y, device="cuda", **kw)
    np.testing.assert_allclose(hg.objective, hc.objective, rtol=1e-10)


def test_missing_torch_message():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import convexrelu.nonconvex\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert "pip install convexrelu[torch]" in out.stdout


def test_progress_bar_runs(rng, capsys):
    X = rng.standard_normal((4, 2))
    h = train_gradient_flow(X, np.ones(4), n_neurons=2, n_steps=20, record_every=5,
                            progress=True, random_state=0)
    assert h.status == "completed"
    assert "gradient flow" in capsys.readouterr().err


# ----------------------------------------------------------------- vs the convex optimum
def _tiny_problem():
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 2)), rng.standard_normal(5)


ALPHA = 1.0  # p* = 0.2674 with 4 active neurons (the best constant gives 0.357)


def _convex_optimum(X, y, alpha):
    est_mod = pytest.importorskip("convexrelu.estimators")
    est = est_mod.ConvexReLURegressor(alpha=alpha, patterns="exact", tol=1e-10).fit(X, y)
    assert est.exact_patterns_
    return est.objective_


def test_wide_net_reaches_the_convex_optimum_and_never_beats_it():
    """docs/mathematics.rst §9 item 9: GD never goes below p* (any width); a wide net gets within
    1e-4."""
    X, y = _tiny_problem()
    p_star = _convex_optimum(X, y, ALPHA)
    h = train_gradient_flow(X, y, n_neurons=20, alpha=ALPHA, lr=0.2, n_steps=300,
                            init_scale=0.1, random_state=0, record_every=50)
    assert np.min(h.objective) >= p_star * (1 - 1e-8)
    assert (h.final_objective - p_star) / p_star < 1e-4
    h1 = train_gradient_flow(X, y, n_neurons=2, alpha=ALPHA, lr=0.2, n_steps=100,
                             random_state=0, record_every=10)
    assert np.min(h1.objective) >= p_star * (1 - 1e-8)


def test_compare_gradient_flow_table_and_plot():
    pytest.importorskip("convexrelu.estimators")
    X, y = _tiny_problem()
    try:
        from convexrelu.certificates import certify  # noqa: F401
        do_cert = True
    except ImportError:
        do_cert = False
    res = compare_gradient_flow(X, y, alpha=ALPHA, widths=(1, 8), seeds=(0,), n_steps=200,
                                lr=0.2, certify=do_cert, progress=False, record_every=20)
    assert isinstance(res, ComparisonResult) and res.exact_patterns
    assert len(res.runs) == 2 and len(res.histories) == 2
    assert all(isinstance(h, TrainingHistory) for h in res.histories)
    for r in res.runs:
        assert r["gap_to_optimum"] >= -1e-8 * abs(res.optimum)
        if do_cert:
            assert r["lower_bound"] <= res.optimum + 1e-6
    table = res.table()
    assert table.count("\n|") == 4 and "certified LB" in table
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    ax = res.plot()
    assert ax.get_yscale() == "log" and len(ax.lines) == 2
    with pytest.raises(ValueError, match=r"alpha must be a float in the range \(0.0, inf\)"):
        compare_gradient_flow(X, y, alpha=0.0)
    with pytest.raises(ValueError, match="widths and seeds must be non-empty"):
        compare_gradient_flow(X, y, alpha=0.1, widths=())

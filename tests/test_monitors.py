"""Monitors of convexrelu.nonconvex (docs/mathematics.rst §5.1, §6.3–6.4, §7.2, §9 items 30–33)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from convexrelu.network import ReLUNet  # noqa: E402
from convexrelu.nonconvex import (  # noqa: E402
    AlignmentMonitor,
    CertificateMonitor,
    ConservationMonitor,
    ProxyPLMonitor,
    RayleighMonitor,
    TrainingHistory,
    network_jacobian,
    train_gradient_flow,
)


@pytest.fixture
def data(rng):
    X = rng.standard_normal((12, 3))
    y = rng.standard_normal(12)
    return X, y


def test_jacobian_matches_autograd(rng):
    X = rng.standard_normal((7, 3))
    W1, b1 = rng.standard_normal((4, 3)), rng.standard_normal(4)
    W2, b2 = rng.standard_normal((2, 4)), rng.standard_normal(2)
    for slope in (0.0, 0.2):
        jac = network_jacobian(X, W1, b1, W2, b2, negative_slope=slope)
        Xt = torch.as_tensor(X)
        sizes = [W1.size, b1.size, W2.size, b2.size]

        def f(theta):
            a, b, c, d = torch.split(theta, sizes)
            pre = Xt @ a.reshape(4, 3).T + b
            act = torch.nn.functional.leaky_relu(pre, slope)
            return act @ c.reshape(2, 4).T + d

        theta = torch.as_tensor(np.concatenate([W1.ravel(), b1, W2.ravel(), b2]))
        ref = torch.autograd.functional.jacobian(f, theta).numpy()
        np.testing.assert_allclose(jac, ref, rtol=0, atol=1e-12)
    sub = network_jacobian(X, W1, b1, W2, b2, trained=("W1",))
    np.testing.assert_allclose(sub, network_jacobian(X, W1, b1, W2, b2)[:, :, :12], atol=0)
    with pytest.raises(ValueError, match="unknown parameter name 'W3'"):
        network_jacobian(X, W1, b1, W2, b2, trained=("W3",))


def test_rayleigh_identity_exact(data):
    """||grad L||^2 / L = (2/n) rho_t with the trainer's own gradient (docs/mathematics.rst
    §7.2)."""
    X, y = data
    h = train_gradient_flow(X, y, n_neurons=5, alpha=0.0, lr=0.05, n_steps=60,
                            record_every=10, random_state=0, monitors=[RayleighMonitor()])
    r = h.monitors["rayleigh"]
    assert r["rho"].shape == (7,)
    assert np.max(r["identity_error"]) < 1e-10
    np.testing.assert_allclose(r["pl_ratio"], 2.0 / X.shape[0] * r["rho"], rtol=1e-10)
    np.testing.assert_allclose(r["grad_norm_sq"], h.grad_norm ** 2, rtol=1e-12)
    assert np.all(r["lambda_min"] <= r["rho"] + 1e-12)
    assert np.all(r["rho"] <= r["lambda_max"] + 1e-12)


def test_rayleigh_with_weight_decay_reports_no_identity(data):
    X, y = data
    h = train_gradient_flow(X, y, n_neurons=3, alpha=0.1, lr=0.05, n_steps=5,
                            random_state=0, monitors=[RayleighMonitor(eigenvalues=False)])
    r = h.monitors["rayleigh"]
    assert np.all(np.isnan(r["identity_error"])) and np.all(np.isnan(r["lambda_min"]))
    assert np.all(np.isfinite(r["rho"]))


def test_teacher_student_under_parameterised():
    """docs/mathematics.rst §9 item 33: lambda_min(K) ~ 0 (n > p) while rho_t stays positive; L
    decays
    geometrically (fitted KL exponent ~ 1)."""
    rng = np.random.default_rng(1)
    n, d = 40, 2
    X = rng.standard_normal((n, d))
    teacher = ReLUNet(np.array([[1.0, 0.5], [-0.6, 1.0]]), None, np.array([[1.0, -0.8]]),
                      None)
    y = teacher.predict(X)
    W1 = np.vstack([teacher.W1 + 0.1 * rng.standard_normal((2, d)),
                    0.1 * rng.standard_normal((1, d))])
    W2 = np.hstack([teacher.W2 + 0.1 * rng.standard_normal((1, 2)), [[0.05]]])
    h = train_gradient_flow(X, y, init=ReLUNet(W1, None, W2, None), alpha=0.0, lr=0.2,
                            n_steps=600, bias=False, record_every=20,
                            monitors=[RayleighMonitor()])
    r = h.monitors["rayleigh"]
    p = 3 * d + 3
    assert p < n
    assert np.max(np.abs(r["lambda_min"])) < 1e-10 * np.min(r["lambda_max"])
    assert np.min(r["rho"]) > 1.0
    assert h.objective[-1] < 1e-5 * h.objective[0]
    assert h.fit_kl_exponent(start=100) == pytest.approx(1.0, abs=0.05)
    # geometric decay: every 100 steps the loss shrinks by a similar factor (> 3)
    L = h.objective[5::5]
    ratios = L[:-1] / L[1:]
    assert np.all(ratios > 3.0)


def test_conservation_drift_shrinks_with_step(rng):
    """docs/mathematics.rst §9 item 30: drift of alpha_j^2 - ||u_j||^2 over a fixed time is
    O(lr)."""
    X = rng.standard_normal((10, 2))
    y = rng.standard_normal(10)
    drifts = []
    for lr, steps in ((0.02, 50), (0.002, 500)):
        h = train_gradient_flow(X, y, n_neurons=4, alpha=0.0, lr=lr, n_steps=steps,
                                random_state=1, record_every=steps,
                                monitors=[ConservationMonitor()])
        drifts.append(h.monitors["conservation"]["drift"][-1])
    assert drifts[0] > 0
    assert 5.0 < drifts[0] / drifts[1] < 20.0


def test_conservation_balanced_init(data):
    X, y = data
    h = train_gradient_flow(X, y, n_neurons=6, lr=0.01, n_steps=20, balanced_init=True,
                            random_state=0, monitors=[ConservationMonitor()])
    bal = h.monitors["conservation"]["balance"]
    assert bal.shape == (h.steps.size, 6)
    assert np.max(np.abs(bal[0])) < 1e-12
    assert np.max(np.abs(bal[-1])) < 0.05  # O(lr^2 ||grad||^2) per step
    # without the bias term the quantity is not conserved
    h2 = train_gradient_flow(X, y, n_neurons=6, lr=0.01, n_steps=1, balanced_init=True,
                             random_state=0, monitors=[ConservationMonitor(include_bias=False)])
    assert np.max(np.abs(h2.monitors["conservation"]["balance"][0])) > 1e-6


def test_proxy_convexity_single_leaky_neuron(rng):
    """docs/mathematics.rst §9 item 32: <grad F(w_t), w_t - v> >= 2 c F(w_t) along GD."""
    n, d, c = 50, 3, 0.2
    X = rng.standard_normal((n, d))
    v = rng.standard_normal(d)
    pre = X @ v
    y = np.where(pre > 0, pre, c * pre)
    init = ReLUNet(rng.standard_normal((1, d)), None, np.ones((1, 1)), None)
    ref = ReLUNet(v[None, :], None, np.ones((1, 1)), None)
    mon = ProxyPLMonitor(reference=ref)
    h = train_gradient_flow(X, y, init=init, alpha=0.0, lr=0.1, n_steps=200, bias=False,
                            negative_slope=c, train_output_layer=False, record_every=5,
                            monitors=[mon])
    rec = h.monitors["proxy_pl"]
    assert h.network is None and h.weights["W2"][0, 0] == 1.0
    np.testing.assert_allclose(rec["proxy"], h.loss)
    assert np.all(rec["inner_over_proxy"] >= 2 * c)
    assert rec["running_min"][-1] == pytest.approx(np.min(rec["ratio"]))
    assert h.objective[-1] < 1e-3 * h.objective[0]


def test_proxy_pl_two_layer_leaky_logistic(rng):
    """docs/mathematics.rst §9 item 31: ||grad L|| / G >= c gamma (exponent 1, dual proxy) and
    0-1 error <= 2 G, with a fixed second layer a_j = +-1/sqrt(m)."""
    d, m, c, gamma = 3, 8, 0.2, 0.1
    v = np.array([1.0, 0.0, 0.0])
    Z = rng.standard_normal((400, d))
    Z /= np.maximum(1.0, np.linalg.norm(Z, axis=1))[:, None]
    Z = Z[np.abs(Z @ v) >= gamma][:60]
    X, y = Z, np.sign(Z @ v)
    a = np.where(np.arange(m) % 2 == 0, 1.0, -1.0) / np.sqrt(m)
    init = ReLUNet(0.01 * rng.standard_normal((m, d)), None, a[None, :], None)
    mons = [ProxyPLMonitor(proxy="dual", exponent=1.0),
            ProxyPLMonitor(proxy="error", exponent=1.0, name="error")]
    h = train_gradient_flow(X, y, init=init, loss="logistic", lr=0.5, n_steps=150,
                            bias=False, negative_slope=c, train_output_layer=False,
                            record_every=10, monitors=mons)
    rec, err = h.monitors["proxy_pl"], h.monitors["error"]
    assert np.min(rec["ratio"]) >= c * gamma
    assert np.all(err["proxy"] <= 2 * rec["proxy"] + 1e-12)
    assert err["proxy"][-1] == 0.0
    assert np.isfinite(mons[0].fit_exponent(h))


def test_proxy_monitor_errors(data):
    X, y = data
    with pytest.raises(ValueError, match="proxy must be 'loss', 'dual', 'error'"):
        ProxyPLMonitor(proxy="margin")
    with pytest.raises(ValueError, match="needs a binary loss"):
        train_gradient_flow(X, y, n_neurons=2, n_steps=1, random_state=0,
                            monitors=[ProxyPLMonitor(proxy="dual")])
    with pytest.raises(ValueError, match="reference has 3 trained parameters"):
        train_gradient_flow(X, y, n_neurons=2, n_steps=1, random_state=0,
                            monitors=[ProxyPLMonitor(reference=np.zeros(3))])
    mon = ProxyPLMonitor(proxy=lambda s: s.data_loss + 1.0, xi=1.0, exponent=2.0)
    h = train_gradient_flow(X, y, n_neurons=2, n_steps=3, random_state=0, monitors=[mon])
    np.testing.assert_allclose(h.monitors["proxy_pl"]["ratio"],
                               h.grad_norm ** 2 / h.loss, rtol=1e-10)


def test_alignment_monitor(data):
    X, y = data
    dirs = np.eye(3)
    h = train_gradient_flow(X, y, n_neurons=4, n_steps=2, random_state=0,
                            monitors=[AlignmentMonitor(2.0 * dirs)])
    cos = h.monitors["alignment"]["cosine"]
    assert cos.shape == (3, 4, 3)
    W1 = h.W1[-1]
    np.testing.assert_allclose(cos[-1], W1 / np.linalg.norm(W1, axis=1)[:, None], atol=1e-12)
    np.testing.assert_allclose(h.monitors["alignment"]["best"][-1], cos[-1].max(axis=1))
    ref = ReLUNet(np.array([[1.0, 0, 0], [0, 0, 0]]), [1.0, 0.0], np.ones((1, 2)), None)
    mon = AlignmentMonitor.from_network(ref, include_bias=True)
    assert mon.directions.shape == (1, 4)
    np.testing.assert_allclose(mon.directions, [[2 ** -0.5, 0, 0, 2 ** -0.5]])
    with pytest.raises(ValueError, match="zero row"):
        AlignmentMonitor(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="directions have 5 columns"):
        train_gradient_flow(X, y, n_neurons=2, n_steps=1, random_state=0,
                            monitors=[AlignmentMonitor(np.ones((1, 5)))])


def test_certificate_monitor(data):
    X, y = data
    X, y = X[:6, :2], y[:6]
    mon = CertificateMonitor(every=2)
    h = train_gradient_flow(X, y, n_neurons=3, alpha=0.1, lr=0.05, n_steps=40,
                            record_every=10, random_state=0, monitors=[mon])
    rec = h.monitors["certificate"]
    np.testing.assert_array_equal(rec["step"], [0, 20, 40])
    assert np.all(rec["lower_bound"] <= h.objective[::2] + 1e-9)
    assert np.all(rec["gap"] >= -1e-9)
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        CertificateMonitor(every=0)


def test_fit_kl_exponent_on_synthetic_history():
    steps = np.arange(10)
    L = 0.5 ** steps
    hist = TrainingHistory(steps=steps, objective=L, loss=L, grad_norm=np.sqrt(3.0 * L ** 1.5),
                           network=None, weights={}, snapshot_steps=steps[:0],
                           W1=np.zeros((0, 1, 1)), b1=np.zeros((0, 1)), W2=np.zeros((0, 1, 1)),
                           pattern_changes=np.zeros(1, int))
    assert hist.fit_kl_exponent() == pytest.approx(1.5)
    assert np.isnan(hist.fit_kl_exponent(start=9))

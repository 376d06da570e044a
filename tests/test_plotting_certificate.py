"""plot_certificate: the dual functional on the unit circle (docs/mathematics.rst §4.2, §4.5)."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from convexrelu import ReLUNet, certify  # noqa: E402
from convexrelu.plotting import plot_certificate  # noqa: E402


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((25, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1]
    net = ReLUNet(rng.standard_normal((4, 2)), rng.standard_normal(4),
                  rng.standard_normal((1, 4)), [0.1])
    return X, y, net


def _curves(ax):
    return [ln for ln in ax.lines if (ln.get_gid() or "").startswith("dual-functional")]


def _brute_force_M(X, lam, hidden_bias, penalize_bias):
    """An independent fine-grid maximum of |lambda^T (X u + b)_+| (a lower bound on M)."""
    th = np.linspace(0, 2 * np.pi, 1441)
    S = X @ np.stack([np.cos(th), np.sin(th)])  # (n, K)
    if not hidden_bias:
        return float(np.max(np.abs(np.maximum(S, 0.0).T @ lam)))
    best = 0.0
    if not penalize_bias:
        grid = np.linspace(-4, 4, 641)  # b
        for b in grid:
            best = max(best, float(np.max(np.abs(np.maximum(S + b, 0.0).T @ lam))))
    else:
        grid = np.linspace(-np.pi / 2, np.pi / 2, 641)  # (|u|, b) = (cos, sin)
        for ph in grid:
            arg = S * np.cos(ph) + np.sin(ph)
            best = max(best, float(np.max(np.abs(np.maximum(arg, 0.0).T @ lam))))
    return best


@pytest.mark.parametrize("hidden_bias,penalize_bias", [(False, False), (True, False),
                                                       (True, True)])
def test_curve_maximum_is_M(data, tmp_path, hidden_bias, penalize_bias):
    X, y, net = data
    if not hidden_bias:
        net = ReLUNet(net.W1, None, net.W2, net.b2)
    cert = certify(net, X, y, alpha=0.1, hidden_bias=hidden_bias, penalize_bias=penalize_bias)
    ax = plot_certificate(cert, X, network=net)
    curves = _curves(ax)
    assert len(curves) == (2 if hidden_bias else 1)
    plotted = max(float(np.max(np.abs(ln.get_ydata()))) for ln in curves)
    M = cert.info["M_residual"]  # the plot shows the network's own residual
    # the maximiser's angle is on the grid: the plotted maximum is M itself
    assert plotted == pytest.approx(M, rel=1e-8)
    # an independent sampled fine grid over (u, b) gets within the grid error below M
    lam = cert.info["residual_dual"]
    bf = _brute_force_M(X, lam, hidden_bias, penalize_bias)
    assert bf <= M * (1 + 1e-9)
    assert bf == pytest.approx(M, rel=2e-3)
    # every plotted value is a value of the functional: never above M
    for ln in curves:
        assert np.all(np.abs(ln.get_ydata()) <= M * (1 + 1e-9))
    # the beta band and the markers (4 neurons, the violating direction)
    ys = [ln.get_ydata() for ln in ax.lines]
    assert any(np.allclose(v, cert.beta) for v in ys) and any(np.allclose(v, -cert.beta)
                                                              for v in ys)
    labels = [ln.get_label() for ln in ax.lines]
    assert any("most violating direction" in s for s in labels)  # M / beta >> 1 here
    n_marks = sum(len(ln.get_xdata()) for ln in ax.lines if "neurons" in ln.get_label())
    assert n_marks == 4
    path = tmp_path / f"cert_{hidden_bias}_{penalize_bias}.png"
    ax.figure.savefig(path)
    assert path.stat().st_size > 1000
    plt.close(ax.figure)


def test_optimal_network_sits_on_beta(tmp_path):
    from convexrelu import ConvexReLURegressor

    rng = np.random.default_rng(4)
    X = rng.standard_normal((10, 2))
    y = np.abs(X[:, 0]) - 0.5 * X[:, 1]
    reg = ConvexReLURegressor(alpha=0.05, patterns="exact").fit(X, y)
    assert reg.certificate_.optimal
    fig, ax = plt.subplots()
    out = plot_certificate(reg.network_, X, y, alpha=0.05, ax=ax)
    assert out is ax
    beta = reg.certificate_.beta
    plotted = max(float(np.max(np.abs(ln.get_ydata()))) for ln in _curves(ax))
    assert plotted <= beta * (1 + 1e-5)  # dual feasible: the curve stays inside the band
    marks = [ln for ln in ax.lines if "neurons" in ln.get_label()]
    vals = np.concatenate([np.abs(ln.get_ydata()) for ln in marks])
    assert np.all(vals <= beta * (1 + 1e-5))
    # the neurons that carry the fit sit at +-beta (KKT); neurons whose weight is a tiny
    # share of the path norm (left by a solve to a relative gap of 1e-6) may sit below it
    net = reg.network_
    share = np.linalg.norm(net.W1, axis=1) * np.abs(net.W2[0])
    share = share / share.sum()
    order = np.argsort(-share)[:int(np.sum(share > 1e-2))]
    assert order.size >= 2
    assert np.sum(np.isclose(vals, beta, rtol=1e-4)) >= order.size
    assert "certified optimal" in ax.get_title()
    fig.savefig(tmp_path / "opt.png")
    plt.close(fig)


def test_errors(data):
    X, y, net = data
    rng = np.random.default_rng(0)
    X3 = rng.standard_normal((8, 3))
    net3 = ReLUNet(rng.standard_normal((2, 3)), None, rng.standard_normal((1, 2)), None)
    cert3 = certify(net3, X3, rng.standard_normal(8), alpha=0.1)
    with pytest.raises(ValueError, match="2-D inputs; X has 3 features"):
        plot_certificate(cert3, X3)
    with pytest.raises(ValueError, match="y is required"):
        plot_certificate(net, X)
    cert = certify(net, X, y, alpha=0.1)
    with pytest.raises(ValueError, match="the certificate has 25 samples but X has 5"):
        plot_certificate(cert, X[:5])
    with pytest.raises(ValueError, match="n_angles must be at least 8"):
        plot_certificate(cert, X, n_angles=3)
    two = ReLUNet(net.W1, net.b1, np.vstack([net.W2, net.W2]), [0.0, 0.0])
    cert2 = certify(two, X, np.column_stack([y, y]), alpha=0.1)
    with pytest.raises(ValueError, match="one-output certificate"):
        plot_certificate(cert2, X)
    plt.close("all")

"""Wang & Pilanci on orthogonally separable data (docs/mathematics.rst §5.4–5.5, §9 item 29).

Normalised gradient descent on the logistic loss from a small initialisation: the
normalised margin approaches ``1/R_mm`` (the convex max-margin program's optimum) and
every active neuron sits at the dual-extreme direction of its sign.

Normalised GD steps on ``log J`` with a fixed ``lr``. It follows the gradient flow only
while ``lr`` times the curvature of ``log J`` is small, and that curvature grows with the
margins ``q_i = y_i f(x_i)``: once ``lr * min_i q_i`` is large the direction zigzags
between support vectors and the normalised margin drops by up to 2% from one step to the
next. (Measured on these data: with ``lr=0.05`` the zigzag starts at ``min q ~ 200``, and
the margin at the step where ``J`` underflows, ``min q ~ 708``, was anything from 0.984 to
0.996 of ``1/R_mm`` over seeds; with ``lr=0.005`` the run is stable up to the underflow and
ends at 0.9994-0.9995 for every seed.) So the fast margin test stops inside the stable window
(``lr=0.05``, 600 steps, ``min q`` between 50 and 160) and the slow test runs the stable
step size to the underflow. The neuron directions converge also during the zigzag (it is
in the relative scale of the positive and negative neurons), so the direction test runs
to the underflow.
"""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("cvxpy")

from convexrelu.demos.dual_extreme_points import (  # noqa: E402
    extreme_directions,
    logistic_dual_direction,
    max_margin_dual,
    neuron_dual_values,
    normalized_margin,
    orthogonally_separable_data,
)
from convexrelu.nonconvex import train_gradient_flow  # noqa: E402


def _train(X, y, *, lr, n_steps, record_every, random_state=0):
    return train_gradient_flow(X, y, n_neurons=10, loss="logistic", lr=lr, n_steps=n_steps,
                               init_scale=1e-3, normalized=True, bias=False,
                               output_bias=False, random_state=random_state,
                               record_every=record_every, progress=False)


def _margins(h, X, y):
    return np.array([normalized_margin(a, b, X, y) for a, b in zip(h.W1, h.W2)])


def _min_q(h, X, y):
    """``min_i y_i f(x_i)`` of the final net (the scale that sets the stability of lr)."""
    f = np.maximum(X @ h.weights["W1"].T, 0.0) @ h.weights["W2"][0]
    return float(np.min(y * f))


@pytest.fixture(scope="module")
def data():
    X, y = orthogonally_separable_data(10, random_state=0)
    R_mm, lam_star = max_margin_dual(X, y)
    return X, y, R_mm, lam_star


@pytest.fixture(scope="module")
def trained(data):
    """Stopped by the step count inside the stable window (``min q`` < 200)."""
    X, y, R_mm, lam_star = data
    h = _train(X, y, lr=0.05, n_steps=600, record_every=10)
    return X, y, R_mm, lam_star, h


@pytest.fixture(scope="module")
def trained_to_underflow(data):
    """Run until ``J`` underflows; the neuron directions converge also while the margin
    zigzags (the zigzag is in the relative scale of the two neuron groups)."""
    X, y, R_mm, lam_star = data
    h = _train(X, y, lr=0.05, n_steps=2000, record_every=50)
    assert h.status == "completed" and h.n_steps < 2000 and h.network is not None
    return X, y, R_mm, lam_star, h


def test_normalized_margin_reaches_one_over_R_mm(trained):
    X, y, R_mm, _, h = trained
    # stopped by the step count inside the stable window, not by the loss underflowing
    assert h.status == "completed" and h.n_steps == 600 and h.network is not None
    assert 10.0 <= _min_q(h, X, y) <= 200.0
    W1, W2 = h.weights["W1"], h.weights["W2"]
    gamma = normalized_margin(W1, W2, X, y)
    assert gamma * R_mm >= 0.99
    assert gamma * R_mm <= 1.0 + 1e-6  # 1/R_mm is the largest normalised margin of any net
    # along the run too: never above 1/R_mm
    margins = _margins(h, X, y)
    assert np.nanmax(margins) * R_mm <= 1.0 + 1e-6
    # the last 50 steps follow the flow: the margin no longer zigzags
    assert np.all(np.diff(margins[-6:]) * R_mm >= -1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("random_state", [0, 1])
def test_normalized_margin_stable_step_to_underflow(data, random_state):
    """With a stable step size the run reaches the loss underflow still on the flow."""
    X, y, R_mm, _ = data
    h = _train(X, y, lr=0.005, n_steps=20000, record_every=100, random_state=random_state)
    # stopped because J underflowed (the margins reached ~708), with finite weights
    assert h.status == "completed" and h.n_steps < 20000 and h.network is not None
    assert _min_q(h, X, y) >= 600.0
    margins = _margins(h, X, y) * R_mm
    assert margins[-1] >= 0.999
    assert np.nanmax(margins) <= 1.0 + 1e-6
    # the late phase (last 800 steps) is monotone: no zigzag between support vectors
    assert np.all(np.diff(margins[-8:]) >= -1e-4)


def test_active_neurons_sit_at_dual_extreme_directions(trained_to_underflow):
    X, y, _, lam_star, h = trained_to_underflow
    W1, W2 = h.weights["W1"], h.weights["W2"]
    mag = np.abs(W2[0]) * np.linalg.norm(W1, axis=1)
    active = mag >= 1e-3 * mag.max()
    assert np.any(W2[0, active] > 0) and np.any(W2[0, active] < 0)  # both extreme points used
    lam_t = logistic_dual_direction(W1, W2, X, y)
    for lam in (lam_t, lam_star):
        vals = neuron_dual_values(W1, W2, X, lam)[active]
        assert np.all(vals >= 0.999)
        assert np.all(vals <= 1.0 + 1e-9)
        dirs, _ = extreme_directions(X, lam)
        U = W1[active] / np.linalg.norm(W1[active], axis=1)[:, None]
        cos = np.sum(U * dirs[np.where(W2[0, active] >= 0, 0, 1)], axis=1)
        assert np.all(cos >= np.cos(np.radians(3.0)))

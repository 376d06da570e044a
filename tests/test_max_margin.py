"""Wang & Pilanci on orthogonally separable data (docs/mathematics.rst §5.4–5.5, §8 item 29).

Normalised gradient descent on the logistic loss from a small initialisation: the
normalised margin reaches at least 0.99 of ``1/R_mm`` (the convex max-margin program's
optimum) and every active neuron sits at the dual-extreme direction of its sign.
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


@pytest.fixture(scope="module")
def trained():
    X, y = orthogonally_separable_data(10, random_state=0)
    R_mm, lam_star = max_margin_dual(X, y)
    h = train_gradient_flow(X, y, n_neurons=10, loss="logistic", lr=0.05, n_steps=700,
                            init_scale=1e-3, normalized=True, bias=False, output_bias=False,
                            random_state=0, record_every=50)
    return X, y, R_mm, lam_star, h


def test_normalized_margin_reaches_one_over_R_mm(trained):
    X, y, R_mm, _, h = trained
    W1, W2 = h.weights["W1"], h.weights["W2"]
    gamma = normalized_margin(W1, W2, X, y)
    assert gamma * R_mm >= 0.99
    assert gamma * R_mm <= 1.0 + 1e-6  # 1/R_mm is the largest normalised margin of any net
    # along the run too: never above 1/R_mm
    margins = [normalized_margin(a, b, X, y) for a, b in zip(h.W1, h.W2)]
    assert np.nanmax(margins) * R_mm <= 1.0 + 1e-6
    # the run stopped cleanly when the loss underflowed (no NaN weights)
    assert h.status == "completed" and h.network is not None


def test_active_neurons_sit_at_dual_extreme_directions(trained):
    X, y, _, lam_star, h = trained
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

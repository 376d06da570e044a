"""Tests of convexrelu.network.ReLUNet (docs/mathematics.rst §9 items 8, 11, 12, 13 and
conversions)."""

import sys
import warnings

import numpy as np
import pytest

from convexrelu._validation import augment
from convexrelu.losses import get_loss
from convexrelu.network import ReLUNet


def random_net(rng, d=3, m=5, c=1, bias=True):
    b1 = rng.normal(size=m) if bias else np.zeros(m)
    return ReLUNet(rng.normal(size=(m, d)), b1, rng.normal(size=(c, m)), rng.normal(size=c))


def convex_objective(X, y, V, W, masks, alpha, *, bias, penalize_bias=False, c0=0.0,
                     loss="squared"):
    """(1/n)[l(sum_i D_i X_aug (v_i - w_i) + c0) + alpha sum_i (rho(v_i) + rho(w_i))]."""
    loss = get_loss(loss)
    Xa = augment(X, bias)
    z = np.sum(masks * (Xa @ (V - W).T), axis=1) + c0
    d = X.shape[1]
    part = (lambda B: B[:, :d]) if (bias and not penalize_bias) else (lambda B: B)
    reg = np.linalg.norm(part(V), axis=1).sum() + np.linalg.norm(part(W), axis=1).sum()
    return (loss.value(z, loss.encode_targets(y)) + alpha * reg) / X.shape[0], z


def random_convex_point(rng, X, P, bias):
    """A cone-feasible point of (CVX) built from random gates g_i: v_i, w_i in K_i."""
    Xa = augment(X, bias)
    G = rng.normal(size=(P, Xa.shape[1]))
    masks = Xa @ G.T > 0
    A = 2.0 * masks - 1.0
    V = G * rng.uniform(0.2, 2.0, size=(P, 1))
    W = np.zeros_like(V)
    for i in range(P):
        h = rng.normal(size=Xa.shape[1])
        eps = 1.0
        while np.any(A[:, i] * (Xa @ (G[i] + eps * h)) < 0):
            eps /= 2
        W[i] = rng.uniform(0.2, 2.0) * (G[i] + eps * h)
        assert np.all(A[:, i] * (Xa @ W[i]) >= 0)
    V[rng.random(P) < 0.2] = 0.0  # some empty blocks
    return V, W, masks


# --------------------------------------------------------------------------- basics
def test_shapes_predict_hidden():
    rng = np.random.default_rng(0)
    net = random_net(rng, d=3, m=4, c=1)
    X = rng.normal(size=(6, 3))
    assert (net.n_features, net.n_neurons, net.n_outputs) == (3, 4, 1)
    H = net.hidden(X)
    assert H.shape == (6, 4) and np.all(H >= 0)
    p = net.predict(X)
    assert p.shape == (6,)
    np.testing.assert_allclose(p, H @ net.W2[0] + net.b2[0])
    net2 = random_net(rng, d=3, m=4, c=2)
    assert net2.predict(X).shape == (6, 2)
    assert "n_neurons=4" in repr(net)
    # 1-D W2, scalar b2 and None biases
    net3 = ReLUNet(net.W1, None, net.W2[0], 0.5)
    assert net3.n_outputs == 1 and net3.b2[0] == 0.5 and np.all(net3.b1 == 0)
    net4 = ReLUNet(net.W1, net.b1, net.W2, None)
    assert net4.b2[0] == 0.0
    cp = net.copy()
    cp.W1[0, 0] += 1
    assert net.W1[0, 0] != cp.W1[0, 0]


@pytest.mark.parametrize("args,match", [
    ((np.ones((2, 2)) * 1j, None, np.ones(2), None), "W1 is complex"),
    ((np.array([["a", "b"]]), None, np.ones(1), None), "W1 must be numeric"),
    ((np.ones(2), None, np.ones(2), None), "W1 must be 2-D"),
    ((np.array([[np.nan, 1.0]]), None, np.ones(1), None), "W1 contains NaN"),
    ((np.ones((2, 2)), np.ones(3), np.ones(2), None), r"b1 must have shape \(n_neurons,\)"),
    ((np.ones((2, 2)), np.ones((2, 1)), np.ones(2), None), "b1 must be 1-D"),
    ((np.ones((2, 2)), None, np.ones((1, 3)), None), "W2 must have shape"),
    ((np.ones((2, 2)), None, np.ones((1, 1, 2)), None), "W2 must be 2-D"),
    ((np.ones((2, 2)), None, np.zeros((0, 2)), None), "at least one row"),
    ((np.ones((2, 2)), None, np.ones((1, 2)), np.ones(2)), r"b2 must have shape"),
    ((np.ones((2, 2)), None, np.ones((1, 2)), np.inf), "b2 contains NaN or infinity"),
])
def test_constructor_errors(args, match):
    with pytest.raises(ValueError, match=match):
        ReLUNet(*args)


def test_predict_checks_X():
    net = random_net(np.random.default_rng(0), d=3)
    with pytest.raises(ValueError, match="X has 2 features, but this network expects 3"):
        net.predict(np.ones((4, 2)))
    with pytest.raises(ValueError, match="2-D"):
        net.predict(np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        net.hidden(np.full((2, 3), np.nan))


# --------------------------------------------------------------------------- objective
def test_objective_formula():
    rng = np.random.default_rng(1)
    net = random_net(rng, d=2, m=3)
    X, y = rng.normal(size=(5, 2)), rng.normal(size=5)
    r = net.predict(X) - y
    wd = np.sum(net.W1 ** 2) + np.sum(net.W2 ** 2)
    assert net.objective(X, y, 0.3) == pytest.approx((0.5 * r @ r + 0.15 * wd) / 5)
    wdb = wd + np.sum(net.b1 ** 2)
    assert net.objective(X, y, 0.3, penalize_bias=True) == pytest.approx(
        (0.5 * r @ r + 0.15 * wdb) / 5)
    # labels {0,1}, {-1,1} and strings give the same logistic objective
    t = (rng.random(5) < 0.5).astype(int)
    t[:2] = [0, 1]
    a = net.objective(X, t, 0.1, loss="logistic")
    assert a == pytest.approx(net.objective(X, 2 * t - 1, 0.1, loss="logistic"))
    assert a == pytest.approx(net.objective(X, np.where(t == 1, "yes", "no"), 0.1,
                                            loss="logistic"))


def test_objective_errors():
    rng = np.random.default_rng(2)
    net = random_net(rng, d=2, m=3)
    X = rng.normal(size=(4, 2))
    with pytest.raises(ValueError, match=r"alpha must be a float in the range \[0.0, inf\)"):
        net.objective(X, np.zeros(4), -1.0)
    with pytest.raises(ValueError, match="y has shape"):
        net.objective(X, np.zeros((4, 2)), 1.0)
    with pytest.raises(ValueError, match="unknown loss"):
        net.objective(X, np.zeros(4), 1.0, loss="l1")


# --------------------------------------------------------------------------- balancing (item 11)
@pytest.mark.parametrize("penalize_bias", [False, True])
@pytest.mark.parametrize("c", [1, 2])
def test_balance(penalize_bias, c):
    rng = np.random.default_rng(3)
    net = random_net(rng, d=3, m=8, c=c)
    net.W2[:, 0] = 0.0  # a neuron with alpha = 0
    net.W1[1] = 0.0     # a constant neuron relu(b_1) alpha_1
    net.b1[1] = 0.7
    X = rng.normal(size=(10, 3))
    y = rng.normal(size=(10, c)) if c > 1 else rng.normal(size=10)
    bal = net.balance(penalize_bias)
    np.testing.assert_allclose(bal.predict(X), net.predict(X), atol=1e-12)
    assert net.weight_decay(penalize_bias) >= net.path_norm(penalize_bias)
    assert bal.weight_decay(penalize_bias) == pytest.approx(bal.path_norm(penalize_bias),
                                                            abs=1e-12)
    assert bal.path_norm(penalize_bias) <= net.path_norm(penalize_bias) + 1e-12
    assert bal.objective(X, y, 0.5, penalize_bias=penalize_bias) <= net.objective(
        X, y, 0.5, penalize_bias=penalize_bias) + 1e-12
    U = bal.W1 if not penalize_bias else np.hstack([bal.W1, bal.b1[:, None]])
    np.testing.assert_allclose(np.linalg.norm(U, axis=1), np.linalg.norm(bal.W2, axis=0),
                               atol=1e-12)


# --------------------------------------------------------------------------- threshold
def test_threshold():
    rng = np.random.default_rng(4)
    net = random_net(rng, d=2, m=6)
    net.W2[0, 2] = 1e-12
    X = rng.normal(size=(8, 2))
    net.W1[3] = [1.0, 0.0]
    net.b1[3] = -100.0  # dead on X
    thr = net.threshold(1e-8)
    assert thr.n_neurons == 5
    np.testing.assert_allclose(thr.predict(X), net.predict(X), atol=1e-9)
    thr2 = net.threshold(1e-8, X=X)
    assert thr2.n_neurons == 4
    np.testing.assert_allclose(thr2.predict(X), net.predict(X), atol=1e-9)
    with pytest.raises(ValueError, match=r"tol must be a float in the range \[0.0, inf\)"):
        net.threshold(-1.0)


# --------------------------------------------------------------------------- from_convex (item 8)
@pytest.mark.parametrize("bias,penalize_bias", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("loss", ["squared", "logistic", "hinge"])
def test_from_convex_objective_equals_convex_objective(bias, penalize_bias, loss):
    rng = np.random.default_rng(5)
    n, d = 9, 3
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n) if loss == "squared" else np.where(rng.random(n) < 0.5, -1, 1)
    V, W, masks = random_convex_point(rng, X, 7, bias)
    c0 = 0.3
    if bias and not penalize_bias:
        # constant blocks: offset on the all-active pattern, and a zero function
        V = np.vstack([V, np.r_[np.zeros(d), 0.7], np.r_[np.zeros(d), -0.4]])
        W = np.vstack([W, np.zeros(d + 1), np.zeros(d + 1)])
        masks = np.hstack([masks, np.ones((n, 1), bool), np.zeros((n, 1), bool)])
    alpha = 0.37
    val, z = convex_objective(X, y, V, W, masks, alpha, bias=bias,
                              penalize_bias=penalize_bias, c0=c0, loss=loss)
    net = ReLUNet.from_convex(V, W, bias=bias, output_bias=c0, penalize_bias=penalize_bias)
    np.testing.assert_allclose(net.predict(X), z, atol=1e-10)
    assert net.objective(X, y, alpha, loss=loss, penalize_bias=penalize_bias) == \
        pytest.approx(val, rel=1e-10)
    # the mapped net is balanced
    assert net.weight_decay(penalize_bias) == pytest.approx(net.path_norm(penalize_bias))
    n_blocks = np.sum(np.linalg.norm(V, axis=1) > 0) + np.sum(np.linalg.norm(W, axis=1) > 0)
    if bias and not penalize_bias:
        n_blocks -= 2  # the two constant blocks are not neurons
        assert net.b2[0] == pytest.approx(c0 + 0.7)
    assert net.n_neurons == n_blocks


def test_from_convex_edge_cases_and_errors():
    net = ReLUNet.from_convex(np.zeros((3, 2)), None, bias=False)
    assert net.n_neurons == 0 and net.predict(np.ones((2, 2))).tolist() == [0.0, 0.0]
    net = ReLUNet.from_convex(np.array([[3.0, 4.0]]), bias=False)
    np.testing.assert_allclose(net.W1, [[3 / np.sqrt(5), 4 / np.sqrt(5)]])
    assert net.W2[0, 0] == pytest.approx(np.sqrt(5))
    with pytest.raises(ValueError, match="V and W must have the same shape"):
        ReLUNet.from_convex(np.zeros((3, 2)), np.zeros((2, 2)), bias=False)
    with pytest.raises(ValueError, match=r"tol must be a float in the range"):
        ReLUNet.from_convex(np.zeros((3, 2)), bias=False, tol=-1)
    with pytest.raises(ValueError, match="at least 2 columns"):
        ReLUNet.from_convex(np.zeros((3, 1)), bias=True)
    with pytest.raises(ValueError, match="output_bias must be a finite scalar"):
        ReLUNet.from_convex(np.zeros((3, 2)), bias=False, output_bias=[1.0, 2.0])
    with pytest.raises(ValueError, match="V must be 2-D"):
        ReLUNet.from_convex(np.zeros(3), bias=False)


# --------------------------------------------------------------------------- grouping (item 12)
@pytest.mark.parametrize("bias", [False, True])
def test_to_convex_grouping(bias):
    rng = np.random.default_rng(6)
    n, d, m = 6, 2, 30
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n)
    net = random_net(rng, d=d, m=m, bias=bias)
    V, W, masks = net.to_convex(X)
    assert masks.shape == (n, V.shape[0]) and masks.dtype == bool
    assert V.shape[0] < m  # neurons share patterns
    Xa = augment(X, bias)
    A = 2.0 * masks - 1.0
    assert np.all(A * (Xa @ V.T) >= -1e-12) and np.all(A * (Xa @ W.T) >= -1e-12)
    alpha = 0.2
    for pb in ([False, True] if bias else [False]):
        val, z = convex_objective(X, y, V, W, masks, alpha, bias=bias, penalize_bias=pb,
                                  c0=net.b2[0])
        np.testing.assert_allclose(z, net.predict(X), atol=1e-12)
        assert val <= net.objective(X, y, alpha, penalize_bias=pb) + 1e-12
        reg = (val * n - get_loss("squared").value(z, y)) / alpha
        assert reg <= net.path_norm(pb) + 1e-10
    back = ReLUNet.from_convex(V, W, bias=bias, output_bias=net.b2[0], penalize_bias=True)
    np.testing.assert_allclose(back.predict(X), net.predict(X), atol=1e-10)
    assert back.objective(X, y, alpha, penalize_bias=True) <= \
        net.objective(X, y, alpha, penalize_bias=True) + 1e-12


def test_to_convex_with_given_patterns():
    rng = np.random.default_rng(7)
    n, d = 7, 2
    X = rng.normal(size=(n, d))
    G = rng.normal(size=(d + 1, 4000))
    all_masks = np.unique((augment(X, True) @ G > 0).T, axis=0).T
    net = random_net(rng, d=d, m=12, bias=True)
    # a neuron lying on the hyperplane of sample 0 (a tie)
    net.W1[0] = [X[0, 1], -X[0, 0]]
    net.b1[0] = 0.0
    V, W, masks = net.to_convex(X, all_masks)
    assert V.shape == (all_masks.shape[1], d + 1)
    np.testing.assert_array_equal(masks, all_masks)
    z = np.sum(masks * (augment(X, True) @ (V - W).T), axis=1) + net.b2[0]
    np.testing.assert_allclose(z, net.predict(X), atol=1e-12)
    A = 2.0 * masks - 1.0
    assert np.all(A * (augment(X, True) @ V.T) >= -1e-12)

    class Stub:  # anything with masks / bias (like ActivationPatterns)
        def __init__(self, masks, bias):
            self.masks, self.bias = masks, bias

    V2, W2, _ = net.to_convex(X, Stub(all_masks, True))
    np.testing.assert_allclose(V2, V)
    with pytest.raises(ValueError, match="contradicts patterns.bias"):
        net.to_convex(X, Stub(all_masks, True), bias=False)
    with pytest.raises(ValueError, match="patterns must be an ActivationPatterns"):
        net.to_convex(X, all_masks[:3])
    with pytest.raises(ValueError, match="not in `patterns`"):
        net.to_convex(X, all_masks[:, :1])
    with pytest.raises(ValueError, match="nonzero hidden biases"):
        net.to_convex(X, bias=False)
    with pytest.raises(ValueError, match="to_convex is defined for one output"):
        random_net(rng, d=d, c=2).to_convex(X)


def test_to_convex_with_activation_patterns():
    from convexrelu.arrangements import ActivationPatterns

    rng = np.random.default_rng(8)
    X = rng.normal(size=(6, 2))
    pats = ActivationPatterns.from_gates(X, rng.normal(size=(3, 3000)), bias=True)
    net = random_net(rng, d=2, m=5)
    V, W, masks = net.to_convex(X, pats)
    z = np.sum(masks * (augment(X, True) @ (V - W).T), axis=1) + net.b2[0]
    np.testing.assert_allclose(z, net.predict(X), atol=1e-12)


# --------------------------------------------------------------------------- pruning (item 13)
@pytest.mark.parametrize("bias,penalize_bias", [(False, False), (True, False), (True, True)])
def test_prune_random_nets(bias, penalize_bias):
    rng = np.random.default_rng(9)
    n, d, m = 10, 3, 40
    for _ in range(3):
        X = rng.normal(size=(n, d))
        net = random_net(rng, d=d, m=m, bias=bias)
        if bias:
            net.W1[0] = 0.0  # a constant neuron
            net.b1[0] = 1.3
        pr = net.prune(X, penalize_bias=penalize_bias)
        assert pr.n_neurons <= n
        np.testing.assert_allclose(pr.predict(X), net.predict(X), atol=1e-10)
        assert pr.path_norm(penalize_bias) <= net.path_norm(penalize_bias) + 1e-10
        assert pr.weight_decay(penalize_bias) == pytest.approx(pr.path_norm(penalize_bias))


def test_prune_errors():
    rng = np.random.default_rng(10)
    net = random_net(rng, d=2, c=2)
    with pytest.raises(ValueError, match="prune is defined for one output"):
        net.prune(np.ones((3, 2)))
    with pytest.raises(ValueError, match="X has 3 features"):
        random_net(rng, d=2).prune(np.ones((3, 3)))


def _activation_rank(net, X, penalize_bias=False):
    """Numerical rank of the unit columns ``a_j / ||a_j||`` of the active neurons."""
    A = np.maximum(augment(X, True) @ np.hstack([net.W1, net.b1[:, None]]).T, 0.0)
    A = A[:, np.any(A > 0, axis=0)]
    return np.linalg.matrix_rank(A / np.linalg.norm(A, axis=0)) if A.size else 0


def test_prune_many_neurons_operation_count(monkeypatch):
    """400 neurons on 40 points (the size an exact-pattern fit hands to prune): one pass.

    The former implementation took one full SVD per removed neuron (360 here, each
    O(m^3) with the m x m right factor; ~2 s/call under a multi-threaded BLAS, and minutes
    for a few thousand neurons). Now no SVD, and at most one triangular solve per neuron
    and per removal.
    """
    import scipy.linalg

    calls = {"svd": 0, "solve_triangular": 0}
    svd, solve = np.linalg.svd, scipy.linalg.solve_triangular

    def counting_svd(*args, **kwargs):
        calls["svd"] += 1
        return svd(*args, **kwargs)

    def counting_solve(*args, **kwargs):
        calls["solve_triangular"] += 1
        return solve(*args, **kwargs)

    monkeypatch.setattr(np.linalg, "svd", counting_svd)
    monkeypatch.setattr(scipy.linalg, "solve_triangular", counting_solve)
    rng = np.random.default_rng(30)
    n, m = 40, 400
    X = rng.uniform(-1, 1, size=(n, 2))
    net = random_net(rng, d=2, m=m)
    pr = net.prune(X)
    assert calls["svd"] == 0
    assert calls["solve_triangular"] <= 2 * m
    assert pr.n_neurons <= n
    f, g = net.predict(X), pr.predict(X)
    assert np.max(np.abs(g - f)) <= 1e-12 * np.max(np.abs(f))
    assert pr.path_norm() <= net.path_norm() * (1 + 1e-14)


@pytest.mark.parametrize("seed", range(4))
def test_prune_keeps_at_most_the_numerical_rank(seed):
    """One-feature nets: many nearly dependent ReLU columns. A neuron is kept only if no
    combination ``w`` with it has ``||A w|| <= rtol ||w||``, so the kept columns have full
    numerical rank (a test on the distance from the span alone kept 21 columns of rank 20
    on such a net)."""
    rng = np.random.default_rng(100 + seed)
    n, m = 26, 48
    X = rng.normal(size=(n, 1))
    net = random_net(rng, d=1, m=m)
    pr = net.prune(X)
    assert pr.n_neurons <= _activation_rank(net, X)
    assert _activation_rank(pr, X) == pr.n_neurons
    np.testing.assert_allclose(pr.predict(X), net.predict(X), atol=1e-12 * net.path_norm())
    assert pr.path_norm() <= net.path_norm() * (1 + 1e-14)


def test_prune_duplicates_low_rank_and_rtol():
    rng = np.random.default_rng(31)
    X = np.repeat(rng.normal(size=(4, 2)), 3, axis=0)  # 12 rows, 4 distinct
    net = random_net(rng, d=2, m=30)
    twins = ReLUNet(np.vstack([net.W1, 2.0 * net.W1]), np.r_[net.b1, 2.0 * net.b1],
                    np.hstack([net.W2, 0.5 * net.W2]), net.b2)  # each neuron twice
    for pb in (False, True):
        pr = twins.prune(X, penalize_bias=pb)
        assert pr.n_neurons <= 4  # the rank of anything computed on 4 distinct points
        np.testing.assert_allclose(pr.predict(X), twins.predict(X), atol=1e-12 * 30)
        assert pr.path_norm(pb) <= twins.path_norm(pb) * (1 + 1e-14)
    # rtol=0 keeps every column with a nonzero rounding residual, but never more than
    # n_samples (the basis then spans R^n); rtol is validated
    pr = twins.prune(X, rtol=0.0)
    assert pr.n_neurons <= X.shape[0]
    np.testing.assert_allclose(pr.predict(X), twins.predict(X), atol=1e-12 * 30)
    with pytest.raises(ValueError, match=r"rtol must be a float in the range \[0.0, inf\)"):
        net.prune(X, rtol=-1.0)
    with pytest.raises(ValueError, match=r"rtol must be a float in the range \[0.0, inf\)"):
        net.prune(X, rtol=float("nan"))


def test_optimal_net_prune_and_map():
    """Solve a small (CVX) with cvxpy; mapped net reproduces p*, pruning keeps it."""
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(11)
    n, d, alpha = 5, 2, 0.05
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    masks = np.unique((X @ rng.normal(size=(d, 2000)) > 0).T, axis=0).T.astype(float)
    P = masks.shape[1]
    V, W = cp.Variable((P, d)), cp.Variable((P, d))
    A = 2 * masks - 1
    z = cp.sum(cp.multiply(masks, X @ (V - W).T), axis=1)
    reg = cp.sum(cp.norm(V, 2, axis=1)) + cp.sum(cp.norm(W, 2, axis=1))
    cons = [cp.multiply(A, X @ V.T) >= 0, cp.multiply(A, X @ W.T) >= 0]
    prob = cp.Problem(cp.Minimize((0.5 * cp.sum_squares(z - y) + alpha * reg) / n), cons)
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    net = ReLUNet.from_convex(V.value, W.value, bias=False, tol=1e-6)
    p_star = prob.value
    assert net.objective(X, y, alpha) == pytest.approx(p_star, rel=1e-6)
    # interior-point output: many tiny blocks; pruning keeps predictions and objective
    dense = ReLUNet.from_convex(V.value, W.value, bias=False, tol=1e-12)
    assert dense.n_neurons > n
    pr = dense.prune(X)
    assert pr.n_neurons <= n
    np.testing.assert_allclose(pr.predict(X), dense.predict(X), atol=1e-10)
    assert pr.objective(X, y, alpha) == pytest.approx(p_star, rel=1e-6)
    assert pr.objective(X, y, alpha) <= dense.objective(X, y, alpha) + 1e-12
    # duplicate neurons split into unequal parts: a redundant optimal net
    big = ReLUNet(np.vstack([0.6 * net.W1, 0.8 * net.W1]), None,
                  np.hstack([0.6 * net.W2, 0.8 * net.W2]), 0.0)  # 0.36 + 0.64 = 1
    big = big.balance()
    np.testing.assert_allclose(big.predict(X), net.predict(X), atol=1e-10)
    pr = big.prune(X)
    assert pr.n_neurons <= n
    np.testing.assert_allclose(pr.predict(X), net.predict(X), atol=1e-10)
    assert pr.objective(X, y, alpha) == pytest.approx(p_star, rel=1e-6)


# --------------------------------------------------------------------------- arrays
def test_arrays_round_trip(tmp_path):
    rng = np.random.default_rng(12)
    net = random_net(rng, d=3, m=4, c=2)
    path = tmp_path / "net.npz"
    np.savez(path, **net.to_arrays(prefix="net_"))
    with np.load(path, allow_pickle=False) as z:
        back = ReLUNet.from_arrays(z, prefix="net_")
    X = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert ReLUNet.from_arrays(net.to_arrays()).n_neurons == 4
    with pytest.raises(ValueError, match=r"arrays lack \['W2'\]"):
        ReLUNet.from_arrays({k: v for k, v in net.to_arrays().items() if k != "W2"})


# --------------------------------------------------------------------------- sklearn
def _fit_sklearn(kind, y, X, alpha=0.1, layers=(8,), activation="relu"):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPRegressor if kind == "regressor" else MLPClassifier
    mlp = cls(hidden_layer_sizes=layers, activation=activation, solver="lbfgs", alpha=alpha,
              max_iter=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
    return mlp


@pytest.mark.parametrize("c", [1, 2])
def test_sklearn_regressor_round_trip(c):
    rng = np.random.default_rng(13)
    X = rng.normal(size=(30, 3))
    y = rng.normal(size=30) if c == 1 else rng.normal(size=(30, c))
    mlp = _fit_sklearn("regressor", y, X)
    net = ReLUNet.from_sklearn(mlp)
    assert net.n_outputs == c
    np.testing.assert_allclose(net.predict(X), mlp.predict(X), atol=1e-10)
    assert net.objective(X, y, mlp.alpha) == pytest.approx(mlp.loss_, rel=1e-10)
    est = net.to_sklearn("regressor", alpha=mlp.alpha)
    np.testing.assert_allclose(est.predict(X), net.predict(X), atol=1e-8)
    assert est.n_features_in_ == 3


def test_sklearn_classifier_round_trip():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(30, 2))
    labels = np.where(X[:, 0] * X[:, 1] + 0.3 * rng.normal(size=30) > 0, "pos", "neg")
    mlp = _fit_sklearn("classifier", labels, X, alpha=1.0)
    net = ReLUNet.from_sklearn(mlp)
    assert net.n_outputs == 1
    logit = net.predict(X)
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), mlp.predict_proba(X)[:, 1],
                               atol=1e-10)
    assert net.objective(X, labels, mlp.alpha, loss="logistic") == pytest.approx(
        mlp.loss_, rel=1e-10)
    est = net.to_sklearn("classifier", classes=mlp.classes_)
    np.testing.assert_array_equal(est.predict(X), mlp.predict(X))
    np.testing.assert_allclose(est.predict_proba(X), mlp.predict_proba(X), atol=1e-8)
    est2 = net.to_sklearn("classifier")
    np.testing.assert_array_equal(est2.predict(X), (logit > 0).astype(int))


def test_sklearn_multiclass_to_from():
    rng = np.random.default_rng(15)
    net = random_net(rng, d=2, m=4, c=3)
    X = rng.normal(size=(10, 2))
    est = net.to_sklearn("classifier")
    np.testing.assert_array_equal(est.predict(X), np.argmax(net.predict(X), axis=1))
    back = ReLUNet.from_sklearn(est)
    np.testing.assert_allclose(back.predict(X), net.predict(X))
    empty = ReLUNet(np.zeros((0, 2)), None, np.zeros((1, 0)), 1.5)
    np.testing.assert_allclose(empty.to_sklearn().predict(X), 1.5)


def test_sklearn_errors():
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(16)
    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    with pytest.raises(ValueError, match="not a fitted scikit-learn MLP"):
        ReLUNet.from_sklearn(MLPRegressor())
    with pytest.raises(ValueError, match="only activation='relu' is supported"):
        ReLUNet.from_sklearn(_fit_sklearn("regressor", y, X, activation="tanh"))
    with pytest.raises(ValueError, match="only one hidden layer is supported"):
        ReLUNet.from_sklearn(_fit_sklearn("regressor", y, X, layers=(3, 3)))
    net = random_net(rng, d=2)
    with pytest.raises(ValueError, match="needs 2 distinct classes"):
        net.to_sklearn("classifier", classes=[0, 1, 2])
    with pytest.raises(ValueError, match="kind must be 'regressor' or 'classifier'"):
        net.to_sklearn("ranker")


# --------------------------------------------------------------------------- torch
def test_torch_round_trip():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(17)
    net = random_net(rng, d=3, m=5, c=2)
    X = rng.normal(size=(6, 3))
    mod = net.to_torch()
    assert mod[0].weight.dtype == torch.float64
    out = mod(torch.as_tensor(X)).detach().numpy()
    np.testing.assert_allclose(out, net.predict(X), atol=1e-12)
    back = ReLUNet.from_torch(mod)
    np.testing.assert_array_equal(back.W1, net.W1)
    np.testing.assert_array_equal(back.b2, net.b2)
    mod32 = net.to_torch(dtype=torch.float32)
    assert ReLUNet.from_torch(mod32).predict(X) == pytest.approx(net.predict(X), abs=1e-4)

    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(3, 4, bias=False)
            self.act = torch.nn.ReLU()
            self.out = torch.nn.Linear(4, 1)

        def forward(self, x):
            return self.out(self.act(self.hidden(x)))

    custom = Custom().double()
    got = ReLUNet.from_torch(custom)
    np.testing.assert_allclose(got.predict(X), custom(torch.as_tensor(X)).detach().numpy()[:, 0],
                               atol=1e-12)
    assert np.all(got.b1 == 0)


def test_torch_errors(monkeypatch):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    with pytest.raises(ValueError, match="expects a torch.nn.Module"):
        ReLUNet.from_torch("net")
    with pytest.raises(ValueError, match="unsupported nn.Sequential.*supported"):
        ReLUNet.from_torch(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)))
    with pytest.raises(ValueError, match="unsupported nn.Sequential"):
        ReLUNet.from_torch(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3),
                                         nn.ReLU(), nn.Linear(3, 1)))

    class Wrapper(nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

    with pytest.raises(ValueError, match="3 nn.Linear, 2 nn.ReLU"):
        ReLUNet.from_torch(Wrapper(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3),
                                                 nn.ReLU(), nn.Linear(3, 1))))
    with pytest.raises(ValueError, match="other layers \\['Dropout'\\]"):
        ReLUNet.from_torch(Wrapper(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(),
                                                 nn.Linear(3, 1))))

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 3)
            self.r = nn.ReLU()
            self.b = nn.Linear(4, 1)

    with pytest.raises(ValueError, match="do not chain"):
        ReLUNet.from_torch(Broken())
    net = random_net(np.random.default_rng(0))
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install convexrelu\[torch\]"):
        net.to_torch()
    with pytest.raises(ImportError, match=r"pip install convexrelu\[torch\]"):
        ReLUNet.from_torch(object())


# --------------------------------------------------------------------------- estimator exports
def _blobs(rng, n_per, centres):
    X = np.vstack([c + 0.6 * rng.normal(size=(n_per, 2)) for c in centres])
    y = np.repeat(np.arange(len(centres)), n_per)
    return X, y


def test_classifier_to_sklearn_binary_agrees():
    from sklearn.neural_network import MLPClassifier

    from convexrelu import ConvexReLUClassifier

    rng = np.random.default_rng(40)
    X, y = _blobs(rng, 6, [(-1.0, 0.0), (1.0, 0.3)])
    labels = np.array(["neg", "pos"])[y]
    clf = ConvexReLUClassifier(alpha=0.1, patterns="exact", certify=False).fit(X, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # two classes: the export is faithful, no warning
        mlp = clf.to_sklearn()
    assert isinstance(mlp, MLPClassifier) and mlp.out_activation_ == "logistic"
    np.testing.assert_array_equal(mlp.classes_, clf.classes_)
    assert mlp.alpha == clf.alpha
    Xt = rng.normal(size=(20, 2))
    np.testing.assert_array_equal(mlp.predict(Xt), clf.predict(Xt))
    np.testing.assert_allclose(mlp.predict_proba(Xt), clf.predict_proba(Xt), atol=1e-12)
    # the network alone exports what kind says: by default an MLPRegressor of the logits
    reg = clf.network_.to_sklearn()
    assert type(reg).__name__ == "MLPRegressor"
    np.testing.assert_allclose(reg.predict(Xt), clf.decision_function(Xt), atol=1e-12)


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_classifier_to_sklearn_multiclass_softmax_warns(loss):
    """Three classes: sklearn's MLPClassifier is a softmax; argmax agrees, probabilities
    (softmax of the logits vs normalised one-vs-rest sigmoids) do not."""
    from scipy.special import expit, softmax

    from convexrelu import ConvexReLUClassifier

    rng = np.random.default_rng(41)
    X, y = _blobs(rng, 4, [(-1.5, 0.0), (1.5, 0.0), (0.0, 1.5)])
    clf = ConvexReLUClassifier(alpha=0.3, loss=loss, patterns="exact", certify=False)
    clf.fit(X, y)
    with pytest.warns(UserWarning, match="output layer is a softmax: predict agrees"):
        mlp = clf.to_sklearn()
    assert mlp.out_activation_ == "softmax"
    Xt = rng.normal(scale=1.5, size=(40, 2))
    np.testing.assert_array_equal(mlp.predict(Xt), clf.predict(Xt))
    z = clf.decision_function(Xt)
    np.testing.assert_allclose(mlp.predict_proba(Xt), softmax(z, axis=1), atol=1e-12)
    ovr = expit(z) / expit(z).sum(axis=1, keepdims=True)
    if loss == "logistic":
        np.testing.assert_allclose(clf.predict_proba(Xt), ovr, atol=1e-12)
    # the documented difference is real, and the most probable class is the same
    assert np.max(np.abs(mlp.predict_proba(Xt) - ovr)) > 1e-2
    np.testing.assert_array_equal(np.argmax(mlp.predict_proba(Xt), 1), np.argmax(ovr, 1))


def test_regressor_to_sklearn_agrees():
    from sklearn.neural_network import MLPRegressor

    from convexrelu import ConvexReLURegressor

    rng = np.random.default_rng(42)
    X = rng.normal(size=(10, 2))
    y = np.abs(X[:, 0]) - X[:, 1]
    Xt = rng.normal(size=(15, 2))
    reg = ConvexReLURegressor(alpha=0.1, patterns="exact", certify=False).fit(X, y)
    mlp = reg.to_sklearn()
    assert isinstance(mlp, MLPRegressor) and mlp.alpha == reg.alpha
    np.testing.assert_allclose(mlp.predict(Xt), reg.predict(Xt), atol=1e-12)
    # one target column: the estimator keeps (n, 1), MLPRegressor flattens (documented)
    reg2 = ConvexReLURegressor(alpha=0.1, patterns="exact", certify=False).fit(X, y[:, None])
    mlp2 = reg2.to_sklearn()
    assert reg2.predict(Xt).shape == (15, 1) and mlp2.predict(Xt).shape == (15,)
    np.testing.assert_allclose(mlp2.predict(Xt), reg2.predict(Xt)[:, 0], atol=1e-12)


@pytest.mark.parametrize("c", [1, 3])
def test_torch_output_shape(c):
    """to_torch returns (n, n_outputs), also (n, 1) for one output; predict (n,) then."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(43)
    net = random_net(rng, d=2, m=4, c=c)
    X = rng.normal(size=(7, 2))
    out = net.to_torch()(torch.as_tensor(X)).detach().numpy()
    assert out.shape == (7, c)
    assert net.predict(X).shape == ((7,) if c == 1 else (7, c))
    np.testing.assert_allclose(out[:, 0] if c == 1 else out, net.predict(X), atol=1e-12)

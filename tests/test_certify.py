"""Tests of certify() (docs/mathematics.rst §4.4, §4.5, §9 items 20-28, §8.1-§8.3)."""

import json
import warnings

import numpy as np
import pytest

from convexrelu import ReLUNet, certify
from convexrelu.certificates import Certificate

from test_dual import CLARABEL, exact_patterns  # noqa: E402  (tests/ is on sys.path)

cp = pytest.importorskip("cvxpy")


def convex_optimum(X, y, pats, beta, loss="squared", free_bias=True, output_bias=True):
    """Independent direct solve of (CVX) over exact patterns (sum form, docs/mathematics.rst §3.1,
    §8.2).

    Returns ``(p_star_sum, V, W, c0)``.
    """
    Xa = pats.augment(X)
    M = pats.masks.astype(float)
    A = 2 * M - 1
    P, da = M.shape[1], Xa.shape[1]
    d = da - 1 if free_bias and pats.bias else da
    V = cp.Variable((P, da))
    W = cp.Variable((P, da))
    c0 = cp.Variable() if output_bias else 0.0
    pred = cp.sum(cp.multiply(M, Xa @ (V - W).T), axis=1) + c0
    cons = [cp.multiply(A, Xa @ V.T) >= 0, cp.multiply(A, Xa @ W.T) >= 0]
    pen = cp.sum(cp.norm(V[:, :d], axis=1)) + cp.sum(cp.norm(W[:, :d], axis=1))
    if loss == "squared":
        fit = 0.5 * cp.sum_squares(pred - y)
    elif loss == "logistic":
        fit = cp.sum(cp.logistic(-cp.multiply(y, pred)))
    else:
        fit = cp.sum(cp.pos(1 - cp.multiply(y, pred)))
    prob = cp.Problem(cp.Minimize(fit + beta * pen), cons)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(**CLARABEL)
    cval = float(c0.value) if output_bias else 0.0
    return prob.value, V.value, W.value, cval


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((7, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1]
    pats = exact_patterns(X, bias=True)
    return X, y, pats


@pytest.fixture(scope="module")
def squared_opt(problem):
    X, y, pats = problem
    beta = 0.3
    p, V, W, c0 = convex_optimum(X, y, pats, beta)
    return beta, p, V, W, c0


def random_net(rng, m, d, scale=1.0, bias=True):
    return ReLUNet(scale * rng.standard_normal((m, d)),
                   scale * rng.standard_normal(m) if bias else None,
                   scale * rng.standard_normal((1, m)), rng.standard_normal(1))


def test_soundness_random_nets(problem, squared_opt):
    X, y, pats = problem
    beta, p, *_ = squared_opt
    n = X.shape[0]
    rng = np.random.default_rng(0)
    for m in (1, 3, 10):
        net = random_net(rng, m, 2, scale=0.7)
        cert = certify(net, X, y, alpha=beta, patterns=pats)
        assert cert.lower_bound <= p / n + 1e-9
        assert cert.objective >= p / n - 1e-9
        assert cert.gap >= cert.objective - p / n - 1e-9
        assert cert.exact and not cert.optimal


def test_tightness_at_convex_optimum(problem, squared_opt):
    """docs/mathematics.rst §9.23: the mapped optimal net is certified, M(lambda*) = beta, LB =
    p*."""
    X, y, pats = problem
    beta, p, V, W, c0 = squared_opt
    net = ReLUNet.from_convex(V, W, bias=True, output_bias=c0, tol=1e-7)
    cert = certify(net, X, y, alpha=beta, patterns=pats)
    n = X.shape[0]
    assert abs(cert.objective - p / n) <= 1e-6 * p / n
    assert cert.relative_gap <= 1e-6
    assert cert.optimal
    assert abs(cert.dual_ratio - 1) <= 1e-5
    assert cert.violating_neuron is None or cert.violating_neuron.objective_decrease < 1e-9
    assert "CERTIFIED" in cert.summary()


def test_refutation_and_violating_neuron(problem, squared_opt):
    """A net above the optimum is never optimal; its violating neuron lowers J."""
    X, y, pats = problem
    beta, p, *_ = squared_opt
    rng = np.random.default_rng(1)
    for _ in range(3):
        net = random_net(rng, 2, 2, scale=0.5)
        cert = certify(net, X, y, alpha=beta, patterns=pats)
        assert not cert.optimal and cert.dual_ratio > 1
        vn = cert.violating_neuron
        assert vn is not None and vn.objective_decrease > 0
        new = vn.add_to(net)
        J0 = net.objective(X, y, beta)
        J1 = new.objective(X, y, beta)
        assert J1 < J0
        assert abs((J0 - J1) - vn.objective_decrease) <= 1e-9 * (1 + J0)
        assert "globally optimal" not in cert.summary() or "not certified" in cert.summary()


def test_objective_equals_sklearn_loss(problem, squared_opt):
    from sklearn.neural_network import MLPRegressor

    X, y, pats = problem
    beta, p, *_ = squared_opt
    for seed in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlp = MLPRegressor(hidden_layer_sizes=(8,), alpha=beta, solver="lbfgs",
                               max_iter=2000, random_state=seed).fit(X, y)
        cert = certify(mlp, X, y, patterns=pats)
        assert abs(cert.objective - mlp.loss_) <= 1e-12 * (1 + mlp.loss_)
        assert cert.lower_bound <= p / X.shape[0] + 1e-9  # soundness on sklearn MLPs
        assert cert.beta == beta


def test_logistic_soundness_and_tightness(problem):
    from sklearn.neural_network import MLPClassifier

    X, y, pats = problem
    yb = np.where(y > np.median(y), 1.0, -1.0)
    beta = 0.2
    p, V, W, c0 = convex_optimum(X, yb, pats, beta, loss="logistic")
    n = X.shape[0]
    net = ReLUNet.from_convex(V, W, bias=True, output_bias=c0, tol=1e-7)
    cert = certify(net, X, yb, alpha=beta, loss="logistic", patterns=pats)
    assert cert.relative_gap <= 1e-5 and cert.lower_bound <= p / n + 1e-8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(hidden_layer_sizes=(6,), alpha=beta, solver="lbfgs",
                            max_iter=500, random_state=0).fit(X, (yb > 0).astype(int))
    c2 = certify(mlp, X, (yb > 0).astype(int), patterns=pats)
    assert c2.loss == "logistic"
    assert abs(c2.objective - mlp.loss_) <= 1e-6 * (1 + mlp.loss_)
    assert c2.lower_bound <= p / n + 1e-8


def test_no_bias_soundness():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((7, 2))
    y = X[:, 0] ** 2 - X[:, 1]
    pats = exact_patterns(X, bias=False)
    beta = 0.2
    p, V, W, c0 = convex_optimum(X, y, pats, beta, free_bias=False)
    n = X.shape[0]
    for m in (2, 6):
        net = random_net(rng, m, 2, bias=False)
        cert = certify(net, X, y, alpha=beta, patterns=pats, hidden_bias=False)
        assert cert.lower_bound <= p / n + 1e-9 <= cert.objective + 2e-9
    opt = ReLUNet.from_convex(V, W, bias=False, output_bias=c0, tol=1e-7)
    cert = certify(opt, X, y, alpha=beta, patterns=pats, hidden_bias=False)
    assert cert.optimal and cert.relative_gap <= 1e-6


def test_penalized_bias_soundness(problem):
    X, y, pats = problem
    beta = 0.3
    p, V, W, c0 = convex_optimum(X, y, pats, beta, free_bias=False)
    n = X.shape[0]
    net = ReLUNet.from_convex(V, W, bias=True, penalize_bias=True, output_bias=c0, tol=1e-7)
    cert = certify(net, X, y, alpha=beta, patterns=pats, penalize_bias=True)
    assert cert.relative_gap <= 1e-6 and cert.optimal
    rng = np.random.default_rng(3)
    cert2 = certify(random_net(rng, 4, 2), X, y, alpha=beta, patterns=pats,
                    penalize_bias=True)
    assert cert2.lower_bound <= p / n + 1e-9


def test_same_weights_same_certificate(problem):
    torch = pytest.importorskip("torch")
    X, y, pats = problem
    rng = np.random.default_rng(4)
    net = random_net(rng, 5, 2)
    c1 = certify(net, X, y, alpha=0.3, patterns=pats)
    c2 = certify(net.to_torch(), X, y, alpha=0.3, patterns=pats)
    mlp = net.to_sklearn(alpha=0.3)
    c3 = certify(mlp, X, y, patterns=pats)
    for c in (c2, c3):
        assert abs(c.objective - c1.objective) <= 1e-12
        assert abs(c.lower_bound - c1.lower_bound) <= 1e-12
        assert abs(c.dual_ratio - c1.dual_ratio) <= 1e-12
    assert isinstance(torch.nn.Module, type)


def test_torch_module_soundness(problem, squared_opt):
    torch = pytest.importorskip("torch")
    X, y, pats = problem
    beta, p, *_ = squared_opt
    torch.manual_seed(0)
    mod = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))
    cert = certify(mod, X, y, alpha=beta, patterns=pats)
    assert cert.hidden_bias and cert.lower_bound <= p / X.shape[0] + 1e-9


def test_loss_scaling_consistency(problem):
    """docs/mathematics.rst §9.25: sklearn / mean / sum normalisations give the same M/beta and
    rel. gap."""
    X, y, pats = problem
    n = X.shape[0]
    net = random_net(np.random.default_rng(5), 4, 2)
    alpha = 0.3
    a = certify(net, X, y, alpha=alpha, patterns=pats)
    b = certify(net, X, y, weight_decay=alpha / n, reduction="mean", patterns=pats)
    c = certify(net, X, y, weight_decay=alpha, reduction="sum", patterns=pats)
    d = certify(net, X, y, weight_decay=2 * alpha / n, reduction="mean", loss="mse",
                patterns=pats)  # torch MSELoss + SGD(weight_decay)
    for o in (b, c, d):
        assert abs(o.dual_ratio - a.dual_ratio) <= 1e-10 * a.dual_ratio
        assert abs(o.relative_gap - a.relative_gap) <= 1e-10
    assert abs(b.objective - a.objective) <= 1e-12
    assert abs(c.objective - n * a.objective) <= 1e-10
    assert abs(d.objective - 2 * a.objective) <= 1e-12


@pytest.mark.slow  # moved to the slow step: the default run took 292 s in CI
def test_hinge_tau_recovers_p_star(problem):
    """docs/mathematics.rst §9.26: tau = 1e-3 recovers LB = p*; any tau gives LB <= p*."""
    X, y, pats = problem
    yb = np.where(y > np.median(y), 1.0, -1.0)
    beta = 0.2
    p, V, W, c0 = convex_optimum(X, yb, pats, beta, loss="hinge")
    n = X.shape[0]
    net = ReLUNet.from_convex(V, W, bias=True, output_bias=c0, tol=1e-7)
    cert = certify(net, X, yb, alpha=beta, loss="hinge", patterns=pats, hinge_tau=1e-3)
    assert abs(cert.lower_bound - p / n) <= 1e-5 * (1 + p / n)
    for tau in (0.0, 1e-2, 0.3):
        c = certify(net, X, yb, alpha=beta, loss="hinge", patterns=pats, hinge_tau=tau)
        assert c.lower_bound <= p / n + 1e-7


def test_sampled_is_not_a_proof(problem):
    X, y, _ = problem
    net = random_net(np.random.default_rng(6), 3, 2)
    cert = certify(net, X, y, alpha=0.3, patterns=3, random_state=0)
    assert not cert.exact and not cert.optimal
    s = cert.summary()
    assert "NOT a proof" in s and "sample" in s.lower()
    assert "CERTIFIED" not in s


def test_exact_default_uses_enumeration(problem, squared_opt):
    X, y, pats = problem
    beta, p, V, W, c0 = squared_opt
    net = ReLUNet.from_convex(V, W, bias=True, output_bias=c0, tol=1e-7)
    cert = certify(net, X, y, alpha=beta)
    assert cert.n_patterns_checked == pats.n_patterns and cert.optimal


def test_to_dict_is_json(problem):
    X, y, pats = problem
    cert = certify(random_net(np.random.default_rng(7), 3, 2), X, y, alpha=0.3, patterns=pats)
    d = json.loads(json.dumps(cert.to_dict()))
    assert d["exact"] is True and d["optimal"] is False
    assert isinstance(cert, Certificate)
    assert len(cert.stationarity_residuals) == 3 and len(cert.balance_residuals) == 3


def test_kkt_residuals_vanish_at_optimum(problem, squared_opt):
    X, y, pats = problem
    beta, p, V, W, c0 = squared_opt
    net = ReLUNet.from_convex(V, W, bias=True, output_bias=c0, tol=1e-7)
    cert = certify(net, X, y, alpha=beta, patterns=pats)
    assert np.max(cert.balance_residuals) <= 1e-10
    big = np.abs(net.W2[0]) >= 1e-2 * np.max(np.abs(net.W2[0]))  # interior-point dust aside
    assert np.max(cert.stationarity_residuals[big]) <= 1e-5


def test_vector_output_and_softmax_are_conservative(problem):
    """docs/mathematics.rst §9.28: multi-output LB <= every net's objective (weak duality)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X, y, pats = problem
    Y = np.column_stack([y, -y ** 2])
    objs, lbs = [], []
    for seed in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlp = MLPRegressor(hidden_layer_sizes=(5,), alpha=0.3, solver="lbfgs",
                               max_iter=300 * (seed + 1), random_state=seed).fit(X, Y)
        c = certify(mlp, X, Y, patterns=pats)
        assert c.conservative and not c.optimal
        assert abs(c.objective - mlp.loss_) <= 1e-12
        objs.append(c.objective)
        lbs.append(c.lower_bound)
    assert max(lbs) <= min(objs) + 1e-12
    lab = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(5,), alpha=0.3, solver="lbfgs",
                            max_iter=300, random_state=0).fit(X, lab)
    c = certify(clf, X, lab, patterns=pats)
    assert c.loss == "softmax" and c.conservative and not c.optimal
    assert c.lower_bound <= c.objective
    assert abs(c.objective - clf.loss_) <= 1e-6


def test_errors(problem):
    from sklearn.neural_network import MLPRegressor

    X, y, pats = problem
    net = random_net(np.random.default_rng(8), 3, 2)
    with pytest.raises(ValueError, match="features"):
        certify(net, X[:, :1], y, alpha=0.1)
    with pytest.raises(ValueError, match="alpha is required"):
        certify(net, X, y)
    with pytest.raises(ValueError, match="alpha must be"):
        certify(net, X, y, alpha=-1.0)
    with pytest.raises(ValueError, match="reduction must be"):
        certify(net, X, y, alpha=0.1, reduction="avg")
    with pytest.raises(ValueError, match="weight_decay is for"):
        certify(net, X, y, weight_decay=0.1)
    with pytest.raises(ValueError, match="either alpha or weight_decay"):
        certify(net, X, y, alpha=0.1, weight_decay=0.1, reduction="sum")
    with pytest.raises(ValueError, match="patterns must be"):
        certify(net, X, y, alpha=0.1, patterns="all")
    with pytest.raises(ValueError, match="patterns must be"):
        certify(net, X, y, alpha=0.1, patterns=2.5)
    with pytest.raises(ValueError, match="bias=True"):
        certify(random_net(np.random.default_rng(0), 2, 2, bias=False), X, y, alpha=0.1,
                patterns=pats, hidden_bias=False)
    with pytest.raises(ValueError, match="hidden_bias=False"):
        certify(net, X, y, alpha=0.1, hidden_bias=False)
    with pytest.raises(TypeError, match="model must be"):
        certify("net.npz", X, y, alpha=0.1)
    from convexrelu import ConvexReLURegressor
    reg = ConvexReLURegressor(alpha=0.1, patterns="exact").fit(X, y)
    with pytest.raises(TypeError, match="got ConvexReLURegressor. .*model.certificate_.*"
                       "model.network_ with alpha=model.alpha_"):
        certify(reg, X, y)
    from convexrelu import ConvexReLUClassifier
    labels = np.arange(len(y)) % 3
    clf = ConvexReLUClassifier(alpha=0.1, patterns=5, random_state=0).fit(X, labels)
    with pytest.raises(TypeError, match=r"model.certificate_ \(one per output or class of "
                       r"several\)\.$"):  # its network is not one logistic program
        certify(clf, X, labels)
    with pytest.raises(ValueError, match="samples"):
        certify(net, X, y[:-1], alpha=0.1, patterns=pats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deep = MLPRegressor(hidden_layer_sizes=(3, 3), max_iter=5).fit(X, y)
        tanh = MLPRegressor(hidden_layer_sizes=(3,), activation="tanh", max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match="one hidden layer"):
        certify(deep, X, y)
    with pytest.raises(ValueError, match="relu"):
        certify(tanh, X, y)
    with pytest.raises(ValueError, match="NaN"):
        certify(ReLUNet([[np.nan, 0.0]], [0.0], [[1.0]], [0.0]), X, y, alpha=0.1)
    with pytest.raises(ValueError, match="NaN"):
        certify(net, np.where(X > 1, np.nan, X), y, alpha=0.1)
    with pytest.raises(ValueError, match="logistic loss takes one output"):
        certify(ReLUNet(np.ones((2, 2)), None, np.ones((2, 2)), None), X, np.c_[y, y],
                alpha=0.1, loss="logistic", patterns=pats)


def test_torch_architecture_errors(problem):
    torch = pytest.importorskip("torch")
    X, y, _ = problem
    deep = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 3),
                               torch.nn.ReLU(), torch.nn.Linear(3, 1))
    with pytest.raises(ValueError, match="unsupported"):
        certify(deep, X, y, alpha=0.1)
    mod = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    with torch.no_grad():
        mod[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        certify(mod, X, y, alpha=0.1)


def test_models_that_compute_more_than_their_layers_are_refused(problem):
    """A torch module whose forward adds to its two layers (here a sigmoid and a skip
    connection) was certified as the plain network of those layers; an MLPRegressor
    with loss="poisson" (exp of its last layer) was read as a plain network whose
    predictions differed from the model's by up to 10."""
    torch = pytest.importorskip("torch")
    X, y, _ = problem

    class Odd(torch.nn.Module):
        def __init__(self, skip):
            super().__init__()
            self.fc1, self.act = torch.nn.Linear(2, 5), torch.nn.ReLU()
            self.fc2, self.skip = torch.nn.Linear(5, 1), skip

        def forward(self, x):
            z = self.fc2(self.act(self.fc1(x)))
            return torch.sigmoid(z) + x[:, :1] if self.skip else z

    torch.manual_seed(0)
    with pytest.raises(ValueError, match="forward differs from the two-layer ReLU"):
        certify(Odd(True), X, y, alpha=0.1)
    plain = Odd(False)  # the same layers, computing exactly the network: accepted
    cert = certify(plain, X, y, alpha=0.1)
    assert cert.objective == pytest.approx(
        certify(ReLUNet.from_torch(plain), X, y, alpha=0.1).objective, rel=1e-12)
    from sklearn.neural_network import MLPRegressor

    try:
        mlp = MLPRegressor(hidden_layer_sizes=(4,), loss="poisson", max_iter=50,
                           random_state=0)
    except TypeError:  # scikit-learn before the poisson loss
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X, np.exp(y))
    for read in (lambda: certify(mlp, X, np.exp(y)), lambda: ReLUNet.from_sklearn(mlp)):
        with pytest.raises(ValueError, match="identity output"):
            read()


def test_support_polish_beyond_the_memory_budget_is_skipped():
    """The certificate's support polish of a wide network (a torch module of 2,048 hidden
    units on 100 features, 300 samples) asked numpy for 319 GiB: a bare MemoryError out
    of certify. Beyond the memory budget the polish now polishes nothing (None: certify
    then uses the network's own dual point)."""
    from convexrelu import ConvexReLURegressor, config_context
    from convexrelu._polish import polish_support
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.program import ConvexProgram

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = np.abs(X[:, 0]) - X[:, 1] + 0.1 * rng.standard_normal(40)
    net = ConvexReLURegressor(alpha=0.05, max_patterns=50, random_state=0).fit(X, y).network_
    G = np.hstack([net.W1, net.b1[:, None]]).T
    pats = ActivationPatterns.from_gates(X, G, bias=True)
    V, W, _ = net.to_convex(X, pats)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.05 * 40, bias=True)
    assert polish_support(prog, V, W, float(net.b2[0])) is not None
    with config_context(memory_budget=0.01):  # MiB: below its design and Gram
        assert polish_support(prog, V, W, float(net.b2[0])) is None


@pytest.mark.slow  # moved to the slow step: the default run took 339 s in CI
def test_vector_output_free_bias_bound_is_finite_and_sound():
    """Several outputs with a free hidden bias: the joint conservative bound is infinite,
    the per-column bound sqrt(sum_k M_k^2) is finite; the lower bound stays below the
    objective of every network we can build (each is an upper bound on the optimum)."""
    import warnings

    from sklearn.neural_network import MLPRegressor

    from convexrelu import ConvexReLURegressor

    rng = np.random.default_rng(3)
    X = rng.standard_normal((14, 2))
    Y = np.c_[np.abs(X[:, 0]), X[:, 1] ** 2]
    objs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(3):
            mlp = MLPRegressor(hidden_layer_sizes=(20,), alpha=0.1, solver="lbfgs",
                               max_iter=3000, random_state=seed).fit(X, Y)
            objs.append(mlp.loss_)
        cert = certify(mlp, X, Y)
    est = ConvexReLURegressor(alpha=0.1, patterns="exact").fit(X, Y)
    objs.append(est.network_.objective(X, Y, 0.1))
    assert cert.conservative and cert.exact and not cert.optimal
    assert np.isfinite(cert.dual_ratio) and cert.lower_bound > 0
    assert cert.lower_bound <= min(objs) + 1e-10


@pytest.mark.slow  # moved to the slow step: the default run took 292 s in CI
def test_softmax_bound_is_finite_and_below_trained_networks():
    """Softmax (3 classes): the output biases are re-fitted so the dual point meets
    1^T Lambda = 0 exactly; the bound is finite, flagged conservative, and below the
    objective of every trained network (each an upper bound on the optimum)."""
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier

    X, y = load_iris(return_X_y=True)
    X, y = X[::6, :2], y[::6]
    X = (X - X.mean(0)) / X.std(0)
    losses, certs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(4):
            mlp = MLPClassifier(hidden_layer_sizes=(30,), alpha=0.1, solver="lbfgs",
                                max_iter=5000, tol=1e-10, random_state=seed).fit(X, y)
            losses.append(mlp.loss_)
            certs.append(certify(mlp, X, y))
    for cert, loss in zip(certs, losses):
        assert cert.conservative and not cert.optimal
        assert cert.objective == pytest.approx(loss, rel=1e-10)
        assert 0 < cert.lower_bound <= min(losses) + 1e-10

"""Tests of convexrelu.losses: values, gradients, conjugates, cvxpy forms, errors."""

import numpy as np
import pytest
from scipy.optimize import minimize

from convexrelu.losses import HingeLoss, Loss, LogisticLoss, SquaredLoss, get_loss

ALL = ["squared", "logistic", "hinge"]


def _data(name, rng, n=7, c=None):
    if name == "squared":
        shape = (n,) if c is None else (n, c)
        return rng.normal(size=shape), rng.normal(size=shape)
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return rng.normal(size=n), y


def test_get_loss_names_and_instances():
    for name, cls in zip(ALL, [SquaredLoss, LogisticLoss, HingeLoss]):
        loss = get_loss(name)
        assert isinstance(loss, cls) and loss.name == name
        assert get_loss(loss) is loss
    assert get_loss("squared").smooth and get_loss("logistic").smooth
    assert not get_loss("hinge").smooth
    assert get_loss("squared") == SquaredLoss() and hash(SquaredLoss()) == hash(SquaredLoss())
    assert "LogisticLoss" in repr(LogisticLoss())


@pytest.mark.parametrize("bad", ["mse", 3, None])
def test_get_loss_unknown(bad):
    with pytest.raises(ValueError, match="unknown loss .*valid names are"):
        get_loss(bad)


def test_values_by_hand():
    z = np.array([0.5, -1.0, 2.0])
    y = np.array([1.0, -1.0, -1.0])
    assert SquaredLoss().value(z, y) == pytest.approx(0.5 * (0.25 + 0 + 9))
    assert LogisticLoss().value(z, y) == pytest.approx(np.sum(np.log1p(np.exp(-y * z))))
    assert HingeLoss().value(z, y) == pytest.approx(0.5 + 0 + 3)
    Z = np.arange(6.0).reshape(3, 2)
    assert SquaredLoss().value(Z, np.zeros((3, 2))) == pytest.approx(np.sum(Z ** 2) / 4)


def test_logistic_is_stable_for_large_margins():
    z = np.array([1e4, -1e4])
    y = np.array([1.0, 1.0])
    assert LogisticLoss().value(z, y) == pytest.approx(1e4)
    g = LogisticLoss().gradient(z, y)
    assert np.all(np.isfinite(g)) and g[0] == pytest.approx(0) and g[1] == pytest.approx(-1)


@pytest.mark.parametrize("name,c", [("squared", None), ("squared", 3), ("logistic", None),
                                    ("hinge", None)])
def test_gradient_finite_differences(name, c):
    rng = np.random.default_rng(0)
    loss = get_loss(name)
    z, y = _data(name, rng, c=c)
    if name == "hinge":  # stay away from the kink
        z = np.where(np.abs(1 - y * z) < 0.1, z + 0.3, z)
    g = loss.gradient(z, y)
    h = 1e-6
    fd = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[idx] = h
        fd[idx] = (loss.value(z + e, y) - loss.value(z - e, y)) / (2 * h)
    np.testing.assert_allclose(g, fd, atol=1e-7)
    np.testing.assert_allclose(loss.dual_point(z, y), -g)


@pytest.mark.parametrize("name,c", [("squared", None), ("squared", 2), ("logistic", None),
                                    ("hinge", None)])
def test_fenchel_young_equality_at_gradient(name, c):
    rng = np.random.default_rng(1)
    loss = get_loss(name)
    z, y = _data(name, rng, c=c)
    lam = -loss.gradient(z, y)
    assert loss.dual_objective(lam, y) == pytest.approx(loss.value(z, y) + np.sum(lam * z),
                                                        abs=1e-10)
    # Fenchel-Young inequality at other points
    for _ in range(5):
        z2, _ = _data(name, rng, c=c)
        assert loss.dual_objective(lam, y) <= loss.value(z2, y) + np.sum(lam * z2) + 1e-12


@pytest.mark.parametrize("name,c", [("squared", None), ("squared", 2), ("logistic", None),
                                    ("hinge", None)])
def test_dual_objective_is_minus_conjugate(name, c):
    """D(lam) = inf_z l(z) + lam^T z, by numeric minimisation at random dual points."""
    rng = np.random.default_rng(2)
    loss = get_loss(name)
    n = 4
    _, y = _data(name, rng, n=n, c=c)
    for _ in range(3):
        if name == "squared":
            lam = rng.normal(size=y.shape)
        else:
            lam = y * rng.uniform(0.05, 0.95, size=n)
        shape = y.shape

        def f(zf):
            zz = zf.reshape(shape)
            return loss.value(zz, y) + np.sum(lam * zz)

        if name == "hinge":
            # l(z) + lam^T z is piecewise linear; its infimum is attained at y_i z_i = 1
            z_star = y.copy()
            val = f(z_star)
            for _ in range(20):
                assert f(rng.normal(scale=3, size=n)) >= val - 1e-12
        else:
            val = minimize(f, np.zeros(y.size), method="BFGS", options={"gtol": 1e-10}).fun
        assert loss.dual_objective(lam, y) == pytest.approx(val, abs=1e-7)


def test_squared_multi_output_scaling():
    """With c outputs, l = ||Z-Y||^2/(2c) and D(L) = <L,Y> - (c/2)||L||^2."""
    rng = np.random.default_rng(3)
    Z, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    loss = SquaredLoss()
    assert loss.value(Z, Y) == pytest.approx(np.mean((Z - Y) ** 2) / 2 * 5)
    L = rng.normal(size=(5, 3))
    assert loss.dual_objective(L, Y) == pytest.approx(np.sum(L * Y) - 1.5 * np.sum(L ** 2))
    np.testing.assert_allclose(loss.gradient(Z, Y), (Z - Y) / 3)


@pytest.mark.parametrize("name", ["logistic", "hinge"])
def test_dual_domain_and_max_scale(name):
    loss = get_loss(name)
    y = np.array([1.0, -1.0, 1.0])
    lam = np.array([0.5, -0.25, 0.1])
    s = loss.max_dual_scale(lam, y)
    assert s == pytest.approx(2.0)
    assert np.isfinite(loss.dual_objective(s * lam, y))
    assert loss.dual_objective(1.01 * s * lam, y) == -np.inf
    assert loss.dual_objective(-lam, y) == -np.inf
    assert loss.max_dual_scale(-lam, y) == 0.0
    assert loss.max_dual_scale(np.zeros(3), y) == np.inf


def test_logistic_entropy_zero_log_zero():
    y = np.array([1.0, -1.0])
    assert LogisticLoss().dual_objective(np.array([1.0, 0.0]), y) == 0.0
    assert LogisticLoss().dual_objective(np.array([0.5, -0.5]), y) == pytest.approx(2 * np.log(2))


def test_squared_max_scale_inf():
    assert SquaredLoss().max_dual_scale(np.ones(3), np.zeros(3)) == np.inf


@pytest.mark.parametrize("name", ["logistic", "hinge"])
def test_weak_duality_sanity(name):
    """D(lam) <= l(z) + lam^T z for every feasible lam, random z (Fenchel-Young)."""
    rng = np.random.default_rng(4)
    loss = get_loss(name)
    for _ in range(50):
        z, y = _data(name, rng)
        lam = y * rng.uniform(0, 1, size=y.size)
        assert loss.dual_objective(lam, y) <= loss.value(z, y) + lam @ z + 1e-12


@pytest.mark.parametrize("name,c", [("squared", None), ("squared", 2), ("logistic", None),
                                    ("hinge", None)])
@pytest.mark.parametrize("param", [False, True])
def test_cvxpy_value_matches(name, c, param):
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(5)
    loss = get_loss(name)
    z, y = _data(name, rng, c=c)
    zc = cp.Constant(z)
    if param:
        yp = cp.Parameter(y.shape)
        yp.value = y
        expr = loss.cvxpy_value(zc, yp)
    else:
        expr = loss.cvxpy_value(zc, y)
    assert expr.is_convex()
    assert float(expr.value) == pytest.approx(loss.value(z, y), rel=1e-10)


def test_cvxpy_dpp_problem():
    cp = pytest.importorskip("cvxpy")
    y = cp.Parameter(3)
    z = cp.Variable(3)
    for name in ALL:
        prob = cp.Problem(cp.Minimize(get_loss(name).cvxpy_value(z, y)))
        assert prob.is_dcp(dpp=True)


def test_encode_targets_binary():
    loss = LogisticLoss()
    np.testing.assert_array_equal(loss.encode_targets([0, 1, 1]), [-1, 1, 1])
    np.testing.assert_array_equal(loss.encode_targets([-1, 1, 1]), [-1, 1, 1])
    np.testing.assert_array_equal(loss.encode_targets([1, 1]), [1, 1])
    np.testing.assert_array_equal(loss.encode_targets(["b", "a", "b"]), [1, -1, 1])
    np.testing.assert_array_equal(loss.encode_targets([3, 7, 3]), [-1, 1, -1])
    np.testing.assert_array_equal(HingeLoss().encode_targets(np.array([[0], [1]])), [-1, 1])


def test_encode_targets_errors():
    with pytest.raises(ValueError, match="exactly two classes"):
        LogisticLoss().encode_targets([0, 1, 2])
    with pytest.raises(ValueError, match="exactly two classes"):
        HingeLoss().encode_targets(["a"])
    with pytest.raises(ValueError, match="1-D array of binary labels"):
        LogisticLoss().encode_targets(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        LogisticLoss().encode_targets([0.0, np.nan])
    with pytest.raises(ValueError, match="NaN or infinity"):
        SquaredLoss().encode_targets([0.0, np.inf])
    with pytest.raises(ValueError, match="of shape"):
        SquaredLoss().encode_targets(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="must be numeric"):
        SquaredLoss().encode_targets(["a", "b"])
    with pytest.raises(ValueError, match="complex"):
        SquaredLoss().encode_targets(np.array([1j]))
    np.testing.assert_array_equal(SquaredLoss().encode_targets([[1.0], [2.0]]), [1, 2])


def test_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        SquaredLoss().value(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="one output"):
        LogisticLoss().value(np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="lam and y must have the same shape"):
        HingeLoss().dual_objective(np.zeros(2), np.ones(3))


def test_base_class_is_abstract():
    assert issubclass(SquaredLoss, Loss)
    with pytest.raises(NotImplementedError):
        Loss().value(np.zeros(1), np.zeros(1))

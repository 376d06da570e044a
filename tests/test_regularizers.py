"""Tests of the group penalty (convexrelu.regularizers)."""

import numpy as np
import pytest
from scipy.optimize import minimize

from convexrelu.arrangements import enumerate_patterns
from convexrelu.program import ConvexProgram
from convexrelu.regularizers import GroupL2Penalty


@pytest.fixture
def blocks():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((5, 3))
    B[1] *= 0.05  # a block shrunk to zero by the prox below
    return B


@pytest.mark.parametrize("free", [False, True])
def test_value_and_norms(blocks, free):
    pen = GroupL2Penalty(3, free_bias=free)
    k = 2 if free else 3
    expect = np.linalg.norm(blocks[:, :k], axis=1)
    np.testing.assert_allclose(pen.norms(blocks), expect, rtol=1e-15)
    assert pen.value(blocks) == pytest.approx(expect.sum(), rel=1e-15)
    # any leading shape: (n_outputs, n_blocks, d_aug)
    stacked = np.stack([blocks, 2 * blocks])
    assert pen.norms(stacked).shape == (2, 5)
    assert pen.value(stacked) == pytest.approx(3 * expect.sum(), rel=1e-14)
    assert pen.penalized_dim == k and pen.free is free
    assert pen.penalized(blocks).shape == (5, k)
    assert pen.unpenalized(blocks).shape == (5, 3 - k)


@pytest.mark.parametrize("free", [False, True])
def test_prox_is_the_minimiser(blocks, free):
    """prox_{tR}(B) minimises 1/2 ||X - B||^2 + t R(X) (brute force, BFGS per block)."""
    pen = GroupL2Penalty(3, free_bias=free)
    t = 0.4
    P = pen.prox(blocks, t)
    assert P.shape == blocks.shape and P is not blocks

    def obj(x, b):
        return 0.5 * np.sum((x - b) ** 2) + t * pen.value(x[None])

    for b, p in zip(blocks, P):
        res = minimize(obj, b, args=(b,), method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
        assert obj(p, b) <= res.fun + 1e-10
        assert obj(p, b) <= obj(b, b) + 1e-15
    # the shrunk block's penalised part is exactly zero; free coordinates are unchanged
    assert np.all(pen.penalized(P[1]) == 0.0)
    if free:
        np.testing.assert_array_equal(pen.unpenalized(P), pen.unpenalized(blocks))


def test_prox_partial_closed_form():
    B = np.array([[3.0, 4.0, 7.0], [0.3, 0.4, 1.0]])
    out = GroupL2Penalty(3, free_bias=True).prox(B, 1.0)
    np.testing.assert_allclose(out, [[2.4, 3.2, 7.0], [0.0, 0.0, 1.0]], atol=1e-12)


@pytest.mark.parametrize("free", [False, True])
def test_dual_norm_identities(blocks, free):
    """Fenchel-Young <B, R> <= R(B) R*(R), with equality at the maximiser, and Moreau's
    decomposition B = prox_{tR}(B) + t proj_{R* <= 1}(B / t)."""
    pen = GroupL2Penalty(3, free_bias=free)
    rng = np.random.default_rng(1)
    R = rng.standard_normal((5, 3))
    if free:
        pen.unpenalized(R)[...] = 0.0
    dn = pen.dual_norm(R)
    assert dn == pytest.approx(np.max(np.linalg.norm(R, axis=1)), rel=1e-15)
    for _ in range(20):
        B = rng.standard_normal((5, 3))
        assert np.vdot(B, R) <= pen.value(B) * dn + 1e-12
    j = int(np.argmax(pen.norms(R)))
    B = np.zeros((5, 3))
    B[j] = R[j] / np.linalg.norm(R[j])
    assert np.vdot(B, R) == pytest.approx(pen.value(B) * dn, rel=1e-14)
    # Moreau: the residual of the prox lies in the dual ball of radius t
    t = 0.7
    Z = rng.standard_normal((5, 3)) * 2
    Q = (Z - pen.prox(Z, t)) / t
    assert pen.dual_norm(Q) <= 1 + 1e-12
    assert np.vdot(Z - t * Q, Q) == pytest.approx(pen.value(Z - t * Q), abs=1e-12)


def test_dual_norm_free_coordinate_is_unbounded():
    pen = GroupL2Penalty(3, free_bias=True)
    assert pen.dual_norm(np.array([[1.0, 0.0, 1e-3]])) == np.inf
    assert pen.dual_norm(np.array([[3.0, 4.0, 0.0]])) == 5.0
    assert pen.dual_norm(np.zeros((0, 3))) == 0.0
    assert GroupL2Penalty(3).dual_norm(np.array([[1.0, 0.0, 1e-3]])) > 1.0


@pytest.mark.parametrize("free", [False, True])
def test_to_cvxpy_value(blocks, free):
    cp = pytest.importorskip("cvxpy")
    pen = GroupL2Penalty(3, free_bias=free)
    for axis, val in ((1, blocks), (0, blocks.T)):
        X = cp.Variable(val.shape)
        X.value = val
        expr = pen.to_cvxpy(X, axis=axis)
        assert expr.is_convex() and expr.is_dcp(dpp=True)
        assert float(expr.value) == pytest.approx(pen.value(blocks), rel=1e-12)
    with pytest.raises(ValueError, match="axis must be 0 or 1"):
        pen.to_cvxpy(cp.Variable((5, 3)), axis=2)


@pytest.mark.parametrize("bias,penalize_bias,free", [(True, False, True), (True, True, False),
                                                     (False, False, False)])
def test_program_regularizer(bias, penalize_bias, free):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((8, 2))
    y = rng.standard_normal(8)
    pats = enumerate_patterns(X, bias=bias)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=bias,
                         penalize_bias=penalize_bias)
    reg = prog.regularizer
    assert reg == GroupL2Penalty(prog.d_aug, free_bias=free)
    assert hash(reg) == hash(GroupL2Penalty(prog.d_aug, free_bias=free))
    assert "free_bias=" in repr(reg)
    V = rng.standard_normal((prog.n_patterns, prog.d_aug))
    W = rng.standard_normal((prog.n_patterns, prog.d_aug))
    assert prog.penalty(V, W) == pytest.approx(reg.value(V) + reg.value(W), rel=1e-15)
    assert prog.restrict([0, 1]).regularizer == reg


def test_errors():
    with pytest.raises(ValueError, match="d_aug must be a positive int"):
        GroupL2Penalty(0)
    with pytest.raises(ValueError, match="d_aug must be a positive int"):
        GroupL2Penalty(2.0)
    with pytest.raises(ValueError, match="free_bias=True needs a block with a bias"):
        GroupL2Penalty(1, free_bias=True)

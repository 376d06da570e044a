"""ConvexProgram: vectorised evaluation, validation, restrictions."""

import numpy as np
import pytest

from convexrelu.arrangements import ActivationPatterns, enumerate_patterns
from convexrelu.program import ConvexProgram


def _data(rng, n=7, d=2):
    return rng.standard_normal((n, d)), rng.standard_normal(n)


@pytest.mark.parametrize("chunk", [None, 3])
@pytest.mark.parametrize("bias", [False, True])
def test_predict_and_objective_match_loop(rng, bias, chunk, monkeypatch):
    """The predictions and the objective against a loop over the patterns; ``chunk``:
    the predictions summed over chunks of 3 rows (7 rows: the last chunk shorter)."""
    if chunk is not None:
        import convexrelu.program as program_module

        monkeypatch.setattr(program_module, "_PREDICT_CHUNK", chunk)
    X, y = _data(rng)
    pats = enumerate_patterns(X, bias=bias)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.3, bias=bias)
    V = rng.standard_normal((pats.n_patterns, prog.d_aug))
    W = rng.standard_normal((pats.n_patterns, prog.d_aug))
    Xa = pats.augment(X)
    z = sum(pats.masks[:, i] * (Xa @ (V[i] - W[i])) for i in range(pats.n_patterns)) + 0.5
    np.testing.assert_allclose(prog.predict(V, W, 0.5), z, rtol=1e-12, atol=1e-12)
    k = X.shape[1] if bias else Xa.shape[1]
    pen = sum(np.linalg.norm(V[i, :k]) + np.linalg.norm(W[i, :k])
              for i in range(pats.n_patterns))
    expect = (0.5 * np.sum((z - y) ** 2) + 0.3 * pen) / X.shape[0]
    assert prog.objective(V, W, 0.5) == pytest.approx(expect, rel=1e-12)
    np.testing.assert_allclose(prog.dual_point(V, W, 0.5), y - z, atol=1e-12)


@pytest.mark.parametrize("chunk", [None, 3])
def test_block_effects_and_lazy_signs(rng, chunk, monkeypatch):
    """``block_effects`` (by chunks of rows: 3 of 7 rows, the last shorter) is
    ``max(||D_i X_a v_i||, ||D_i X_a w_i||)``; the float signs ``2 D - 1`` are formed on
    first use only, and a restricted program forms its own from its masks."""
    if chunk is not None:
        import convexrelu.program as program_module

        monkeypatch.setattr(program_module, "_PREDICT_CHUNK", chunk)
    X, y = _data(rng)
    pats = enumerate_patterns(X, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.3, bias=True)
    P = pats.n_patterns
    V, W = rng.standard_normal((P, prog.d_aug)), rng.standard_normal((P, prog.d_aug))
    Xa = pats.augment(X)
    want = [max(np.linalg.norm(pats.masks[:, i] * (Xa @ V[i])),
                np.linalg.norm(pats.masks[:, i] * (Xa @ W[i]))) for i in range(P)]
    np.testing.assert_allclose(prog.block_effects(V, W), want, rtol=1e-12)
    assert prog._signs is None
    sub = prog.restrict([2, 0])
    np.testing.assert_array_equal(prog.signs, 2.0 * pats.masks - 1.0)
    assert sub._signs is None
    np.testing.assert_array_equal(sub.signs, 2.0 * pats.masks[:, [2, 0]] - 1.0)
    assert prog.signs is prog.signs  # formed once
    old = prog.with_alpha(0.5)  # a program pickled before the signs were lazy
    del old.__dict__["_signs"]
    old.__dict__["signs"] = None
    np.testing.assert_array_equal(old.signs, 2.0 * pats.masks - 1.0)


def test_multi_output_predict(rng):
    X, _ = _data(rng)
    Y = rng.standard_normal((7, 3))
    pats = enumerate_patterns(X)
    prog = ConvexProgram(X, Y, pats, loss="squared", alpha=0.1, bias=False)
    V = rng.standard_normal((3, pats.n_patterns, 2))
    Z = prog.predict(V, np.zeros_like(V), np.array([1.0, 2.0, 3.0]))
    for k in range(3):
        single = ConvexProgram(X, Y[:, k], pats, loss="squared", alpha=0.1, bias=False)
        np.testing.assert_allclose(Z[:, k], single.predict(V[k]) + k + 1, atol=1e-12)


def test_max_violation_zero_on_gates(rng):
    X, y = _data(rng)
    pats = enumerate_patterns(X, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True)
    assert prog.max_violation(pats.gates.T, pats.gates.T) == 0.0
    assert prog.max_violation(-pats.gates.T) > 0


def test_restrict_and_with_alpha(rng):
    X, y = _data(rng)
    pats = enumerate_patterns(X)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=False)
    sub = prog.restrict([0, 2])
    assert sub.n_patterns == 2 and not sub.patterns.exact
    np.testing.assert_array_equal(sub.masks, pats.masks[:, [0, 2]])
    assert prog.with_alpha(2.0).alpha == 2.0 and prog.alpha == 0.1
    assert prog.structure_key() == prog.with_alpha(5.0).structure_key()


def test_with_formulation(rng):
    X, y = _data(rng)
    pats = enumerate_patterns(X, bias=True)
    gated = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True,
                          penalize_bias=True, formulation="gated_relu")
    relu = gated.with_formulation("relu")
    assert relu.formulation == "relu" and gated.formulation == "gated_relu"
    ref = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True, penalize_bias=True)
    assert relu.structure_key() == ref.structure_key()
    assert relu.regularizer == ref.regularizer
    free = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True)
    with pytest.raises(ValueError, match="degenerate"):
        free.with_formulation("gated_relu")
    with pytest.raises(ValueError, match="formulation must be one of"):
        free.with_formulation("x")


def test_errors(rng):
    X, y = _data(rng)
    pats = enumerate_patterns(X, bias=True)
    with pytest.raises(ValueError, match="computed on other data"):
        ConvexProgram(X + 1, y, pats, loss="squared", alpha=0.1, bias=True)
    with pytest.raises(ValueError, match="shape"):
        ConvexProgram(X[:5], y[:5], pats, loss="squared", alpha=0.1, bias=True)
    with pytest.raises(ValueError, match="bias=False but the patterns"):
        ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=False)
    with pytest.raises(ValueError, match="formulation must be one of"):
        ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True, formulation="x")
    with pytest.raises(ValueError, match="alpha must be a float in the range"):
        ConvexProgram(X, y, pats, loss="squared", alpha=-1.0, bias=True)
    with pytest.raises(TypeError, match="alpha must be a float"):
        ConvexProgram(X, y, pats, loss="squared", alpha="big", bias=True)
    with pytest.raises(ValueError, match="degenerate"):
        ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True,
                      formulation="gated_relu")
    with pytest.raises(ValueError, match="needs loss='squared'"):
        ConvexProgram(X, np.sign(y), pats, loss="logistic", alpha=0.1, bias=True,
                      formulation="min_norm")
    with pytest.raises(ValueError, match="binary labels"):
        ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True,
                      formulation="max_margin")
    with pytest.raises(TypeError, match="ActivationPatterns"):
        ConvexProgram(X, y, np.ones((7, 3)), loss="squared", alpha=0.1, bias=True)
    with pytest.raises(ValueError, match="samples but y has"):
        ConvexProgram(X, y[:3], pats, loss="squared", alpha=0.1, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True)
    with pytest.raises(ValueError, match="V and W must have shape"):
        prog.objective(np.zeros((2, 3)))


def test_from_gates_patterns_accepted(rng):
    X, y = _data(rng)
    pats = ActivationPatterns.from_gates(X, rng.standard_normal((2, 50)))
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=False)
    assert prog.n_patterns == pats.n_patterns
    assert "n_patterns" in repr(prog)

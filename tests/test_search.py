"""Tests of the local search for violating neurons and of ``certify(patterns="auto")``
(docs/mathematics.rst §4.2, §4.5, §8.2, §8.5)."""

import numpy as np
import pytest

from convexrelu.arrangements import PatternLimitError, enumerate_patterns
from convexrelu.certificates import certify, dual_constraint, search_violators
from convexrelu.certificates._dual import _prepare, pattern_value
from convexrelu.certificates._search import _best_bias, _bvls
from convexrelu.network import ReLUNet

MODES = [("none", False, False), ("penalised", True, False), ("free", True, True)]


def _data(kind, n, d, seed):
    rng = np.random.default_rng(seed)
    if kind == "grid":  # integer grid: repeated, collinear and parallel rows
        X = rng.integers(-2, 3, size=(n, d)).astype(float)
    else:
        X = rng.standard_normal((n, d))
    lam = rng.standard_normal(n)
    return X, lam


def _exact_per_sign(X, lam, bias, free):
    """``max_{x feasible} sigma lam^T (X_aug x)_+`` for both signs, over all patterns."""
    pats = enumerate_patterns(X, bias=bias)
    Xa = pats.augment(X)
    Xt, _, R = _prepare(Xa, free)
    out = {1: 0.0, -1: 0.0}
    for _, masks, _ in pats.iter_blocks(4096):
        for k in range(masks.shape[1]):
            m = masks[:, k]
            c = Xt.T @ (m * lam)
            for s in (1, -1):
                out[s] = max(out[s], pattern_value(Xt, m, s * c, free_bias=free, R=R)[0])
    return out, Xa


def _attained(Xa, lam, cand):
    return cand.sign * float(lam @ np.maximum(Xa @ cand.direction, 0.0))


@pytest.mark.parametrize("mode,bias,free", MODES)
@pytest.mark.parametrize("kind,n,d,seed", [("gauss", 9, 2, 0), ("gauss", 8, 3, 1),
                                           ("grid", 10, 2, 2), ("grid", 9, 3, 3)])
def test_search_is_sound_and_finds_the_exact_maximum(mode, bias, free, kind, n, d, seed):
    X, lam = _data(kind, n, d, seed)
    if free:
        lam = lam - lam.mean()
    exact, Xa = _exact_per_sign(X, lam, bias, free)
    for s in (1, -1):
        c = search_violators(Xa, lam, free_bias=free, sign=s, random_state=0)[0]
        assert c.sign == s
        # soundness: the value of a feasible point can never exceed the exact maximum
        assert c.value <= exact[s] + 1e-9
        # easy instances: the search finds the maximum
        assert c.value >= exact[s] - 1e-7 * (1.0 + exact[s])


@pytest.mark.parametrize("mode,bias,free", MODES)
def test_direction_attains_value_and_is_normalised(mode, bias, free):
    X, lam = _data("gauss", 14, 3, 4)
    if free:
        lam = lam - lam.mean()
    Xa = np.hstack([X, np.ones((14, 1))]) if bias else X
    cands = search_violators(Xa, lam, free_bias=free, top_k=4, random_state=1)
    assert 1 <= len(cands) <= 4
    vals = [c.value for c in cands]
    assert vals == sorted(vals, reverse=True)
    keys = {(c.sign, c.mask.tobytes()) for c in cands}
    assert len(keys) == len(cands)  # distinct patterns
    for c in cands:
        assert c.value == pytest.approx(_attained(Xa, lam, c), rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(c.mask, Xa @ c.direction > 0)
        norm = np.linalg.norm(c.direction[:-1] if free else c.direction)
        assert norm == pytest.approx(1.0, rel=1e-12)
    # never above the exact M(lambda) over all listed patterns
    M = dual_constraint(enumerate_patterns(X, bias=bias), X, lam,
                        penalize_bias=not free).value
    assert cands[0].value <= M + 1e-9


def test_reproducible_with_random_state():
    X, lam = _data("gauss", 50, 6, 5)
    lam -= lam.mean()
    Xa = np.hstack([X, np.ones((50, 1))])
    a = search_violators(Xa, lam, free_bias=True, random_state=3, top_k=3)
    b = search_violators(Xa, lam, free_bias=True, random_state=3, top_k=3)
    assert [c.value for c in a] == [c.value for c in b]
    for ca, cb in zip(a, b):
        np.testing.assert_array_equal(ca.direction, cb.direction)


def test_beats_random_gates_in_high_dimension():
    """Rank 13: the search finds at least what 20,000 Gaussian gates find."""
    X, lam = _data("gauss", 150, 12, 6)
    lam = np.sign(X[:, 0] * X[:, 1]) + 0.3 * lam  # a structured residual
    lam -= lam.mean()
    Xa = np.hstack([X, np.ones((150, 1))])
    rng = np.random.default_rng(0)
    G = rng.standard_normal((13, 20_000))
    gates = np.max(np.abs(lam @ np.maximum(Xa @ G, 0.0)) / np.linalg.norm(G[:-1], axis=0))
    best = search_violators(Xa, lam, free_bias=True, n_samples=2000, random_state=0)[0]
    assert best.value >= gates
    assert best.value == pytest.approx(_attained(Xa, lam, best), rel=1e-12)


def test_user_start_at_the_maximiser_is_kept():
    X, lam = _data("gauss", 12, 3, 7)
    lam -= lam.mean()
    Xa = np.hstack([X, np.ones((12, 1))])
    dv = dual_constraint(enumerate_patterns(X, bias=True), X, lam, penalize_bias=False)
    c = search_violators(Xa, lam, free_bias=True, sign=dv.sign, n_starts=0, n_samples=0,
                         max_row_starts=0, starts=dv.direction, random_state=0)[0]
    assert c.origin == "user"
    assert c.value == pytest.approx(dv.value, rel=1e-9)


def test_time_limit_returns_a_feasible_candidate():
    X, lam = _data("gauss", 300, 10, 8)
    Xa = X
    c = search_violators(Xa, lam, time_limit=1e-4, random_state=0)[0]
    assert c.value == pytest.approx(_attained(Xa, lam, c), rel=1e-12, abs=1e-12)
    assert c.info["time"] < 5.0


def test_best_bias_matches_a_grid_of_biases():
    rng = np.random.default_rng(9)
    P = rng.standard_normal((15, 4))
    lam = rng.standard_normal(15)
    lam -= lam.mean()
    v, b = _best_bias(P, lam)
    grid = np.concatenate([-P.ravel(), np.linspace(-5, 5, 2001)])
    for j in range(4):
        f = [lam @ np.maximum(P[:, j] + t, 0.0) for t in grid]
        assert v[j] == pytest.approx(max(f), abs=1e-12)
        assert lam @ np.maximum(P[:, j] + b[j], 0.0) == pytest.approx(v[j], abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_bvls_matches_scipy(seed):
    """The DCA step's warm-started box least squares reaches scipy's BVLS optimum, from any
    start in the box, with a heavy equality row, badly scaled columns and empty boxes."""
    from scipy.optimize import lsq_linear

    rng = np.random.default_rng(seed)
    for trial in range(40):
        d, m = int(rng.integers(2, 14)), int(rng.integers(1, 160))
        if trial % 10 == 9:  # wide: the DCA step on all rows of a large data set
            d, m = 21, int(rng.integers(1000, 3000))
        A = rng.standard_normal((d, m)) * 10.0 ** rng.uniform(-2, 2, m)
        if trial % 3 == 0:
            A = np.vstack([A, 1e4 * np.ones((1, m))])
        b = 10 * rng.standard_normal(A.shape[0])
        upper = rng.uniform(0, 2, m) * (rng.random(m) > 0.05)
        if m >= 1000:  # small boxes, as the dual weights of many rows: bounds bind
            upper *= 1e-3
        w0 = np.where(rng.random(m) < 0.5, upper, 0.0)
        w, ok = _bvls(A, b, upper, w0)
        assert ok
        assert np.all(w >= 0) and np.all(w <= upper)
        ref = lsq_linear(A, b, bounds=(np.zeros(m), upper + 1e-300), method="bvls").x
        f, f_ref = np.linalg.norm(A @ w - b), np.linalg.norm(A @ np.clip(ref, 0, upper) - b)
        assert f <= f_ref * (1 + 1e-9) + 1e-12


def test_search_rejects_bad_input():
    X, lam = _data("gauss", 10, 3, 10)
    Xa = np.hstack([X, np.ones((10, 1))])
    with pytest.raises(ValueError, match="must be centred"):
        search_violators(Xa, lam + 1.0, free_bias=True)
    lam = lam - lam.mean()
    with pytest.raises(ValueError, match="non-empty 2-D"):
        search_violators(Xa[:, 0], lam)
    with pytest.raises(ValueError, match=r"lam must have shape \(10,\)"):
        search_violators(Xa, lam[:5])
    with pytest.raises(ValueError, match="must be finite"):
        search_violators(Xa, np.full(10, np.nan))
    with pytest.raises(ValueError, match="last column of Xa must be ones"):
        search_violators(X, lam, free_bias=True)
    with pytest.raises(ValueError, match="sign must be 1, -1 or None"):
        search_violators(Xa, lam, sign=2)
    with pytest.raises(ValueError, match="time_limit must be a positive"):
        search_violators(Xa, lam, time_limit=0)
    with pytest.raises(ValueError, match=r"starts must be a finite array of shape \(k, 4\)"):
        search_violators(Xa, lam, starts=np.ones((2, 3)))
    with pytest.raises(TypeError, match="n_starts must be an int"):
        search_violators(Xa, lam, n_starts=1.5)


# --------------------------------------------------------------------------- certify
def _net(rng, m, d):
    return ReLUNet(rng.standard_normal((m, d)), rng.standard_normal(m),
                   rng.standard_normal((1, m)), np.zeros(1))


def test_certify_auto_is_heuristic_when_patterns_are_too_many():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 12))
    y = rng.standard_normal(60)
    net = _net(rng, 5, 12)
    with pytest.raises(PatternLimitError):
        certify(net, X, y, alpha=0.1, patterns="exact")
    cert = certify(net, X, y, alpha=0.1, random_state=0)  # patterns="auto" is the default
    assert cert.method == "local_search" and cert.heuristic
    assert cert.exact is False and cert.optimal is False
    text = cert.summary()
    assert "heuristic: the best violating neuron found by local search; not a proof of " \
           "global optimality" in text
    assert "NOT valid" in text and "CERTIFIED" not in text
    d = cert.to_dict()
    assert d["method"] == "local_search" and d["heuristic"] is True and d["optimal"] is False
    # the reported violating neuron attains the reported M(lambda)
    vn = cert.violating_neuron
    assert vn is not None and vn.objective_decrease > 0
    lam = cert.dual / cert.dual_scale
    a = np.maximum(X @ vn.weight + vn.bias, 0.0)
    assert vn.sign * lam @ a == pytest.approx(cert.info["M"], rel=1e-9)
    # reproducible
    again = certify(net, X, y, alpha=0.1, random_state=0)
    assert again.info["M"] == cert.info["M"]


def test_certify_auto_never_calls_a_heuristic_result_optimal():
    """Even a dual-feasible search result (huge alpha) is not reported optimal."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 12))
    y = rng.standard_normal(60)
    net = ReLUNet(np.zeros((1, 12)), np.zeros(1), np.zeros((1, 1)), np.array([y.mean()]))
    cert = certify(net, X, y, alpha=1e6, random_state=0, tol=1.0)
    assert cert.dual_ratio < 1 and cert.relative_gap <= 1.0
    assert cert.optimal is False and cert.heuristic
    assert "heuristic" in cert.summary()


@pytest.mark.parametrize("d,bias", [(2, True), (2, False), (3, True)])
def test_certify_auto_equals_exact_when_patterns_can_be_listed(d, bias):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((25, d))
    y = rng.standard_normal(25)
    net = _net(rng, 4, d)
    if not bias:
        net = ReLUNet(net.W1, np.zeros(4), net.W2, net.b2)
    a = certify(net, X, y, alpha=0.1, hidden_bias=bias)
    b = certify(net, X, y, alpha=0.1, hidden_bias=bias, patterns="exact")
    assert a.method == b.method == ("sweep2d" if d == 2 else "enumerated")
    assert a.exact and not a.heuristic
    assert a.to_json() == b.to_json()


def test_certify_patterns_string_is_checked():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((10, 2))
    with pytest.raises(ValueError, match="patterns must be 'auto', 'exact'"):
        certify(_net(rng, 2, 2), X, np.zeros(10), alpha=0.1, patterns="all")


def test_cli_patterns_default_is_auto():
    import argparse

    from convexrelu._commands.certify import _patterns_arg, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["m.npz", "d.csv", "--target", "t"])
    assert args.patterns == "auto"
    assert _patterns_arg("auto") == "auto" and _patterns_arg("7") == 7
    with pytest.raises(argparse.ArgumentTypeError, match="'auto', 'exact' or a number"):
        _patterns_arg("many")


def test_start_signs_restrict_user_starts():
    X, lam = _data("gauss", 30, 4, 11)
    lam -= lam.mean()
    Xa = np.hstack([X, np.ones((30, 1))])
    starts = np.random.default_rng(0).standard_normal((3, 5))
    kw = dict(free_bias=True, n_starts=0, n_samples=0, max_row_starts=0, starts=starts,
              top_k=10, random_state=0)
    both = search_violators(Xa, lam, **kw)
    assert {c.sign for c in both} == {1, -1}
    plus = search_violators(Xa, lam, start_signs=[1, 1, 1], **kw)
    assert {c.sign for c in plus} == {1}
    with pytest.raises(ValueError, match="start_signs must hold one sign"):
        search_violators(Xa, lam, starts=starts, start_signs=[1, 0, 1])


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["load_diabetes", "load_breast_cancer"])
def test_search_beats_random_gates_on_real_data(loader):
    """Rank 11 / 31 with a free hidden bias: 10^5 Gaussian gates fall well short."""
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.neural_network import MLPRegressor

    X, y = getattr(datasets, loader)(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (y - y.mean()) / y.std()
    mlp = MLPRegressor(hidden_layer_sizes=(50,), alpha=1e-3, max_iter=2000,
                       random_state=0).fit(X, y)
    lam = y - mlp.predict(X)
    lam -= lam.mean()
    Xa = np.hstack([X, np.ones((X.shape[0], 1))])
    rng = np.random.default_rng(0)
    gates = 0.0
    for _ in range(50):
        G = rng.standard_normal((Xa.shape[1], 2000))
        v = np.abs(lam @ np.maximum(Xa @ G, 0.0)) / np.linalg.norm(G[:-1], axis=0)
        gates = max(gates, float(v.max()))
    best = search_violators(Xa, lam, free_bias=True, random_state=0)[0]
    assert best.value == pytest.approx(_attained(Xa, lam, best), rel=1e-12)
    assert best.value >= 1.2 * gates


def test_certify_auto_heuristic_with_two_outputs():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((60, 12))
    Y = rng.standard_normal((60, 2))
    net = ReLUNet(rng.standard_normal((4, 12)), rng.standard_normal(4),
                  rng.standard_normal((2, 4)), np.zeros(2))
    cert = certify(net, X, Y, alpha=0.1, random_state=0)
    assert cert.heuristic and cert.conservative and not cert.optimal
    # the per-column search values combine as sqrt(M_1^2 + M_2^2) >= each column's value
    lam = cert.dual / cert.dual_scale
    Xa = np.hstack([X, np.ones((60, 1))])
    for k in range(2):
        c = search_violators(Xa, lam[:, k] - lam[:, k].mean(), free_bias=True, random_state=0)
        assert c[0].value <= cert.info["M"] + 1e-9


# ------------------------------------------------------------- search on a row sample
def _fitted_residual(n, d, seed):
    """Data with a bias column and the residual of its least-squares fit (a dual point
    with zero linear moments ``X_aug^T lam``, as at a fitted output layer)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + np.maximum(X[:, -1], 0.0) \
        + 0.1 * rng.standard_normal(n)
    Xa = np.hstack([X, np.ones((n, 1))])
    return X, Xa, y - Xa @ np.linalg.lstsq(Xa, y, rcond=None)[0]


def test_subsample_dual_keeps_the_linear_moments():
    from convexrelu.certificates._search import _subsample_dual

    _, Xa, lam = _fitted_residual(500, 4, 0)
    rows = np.sort(np.random.default_rng(1).choice(500, 60, replace=False))
    XS, ls = _subsample_dual(Xa, lam, rows, free_bias=True)
    np.testing.assert_array_equal(XS, Xa[rows])
    np.testing.assert_allclose(XS.T @ ls, Xa.T @ lam, atol=1e-9 * np.abs(lam).sum())
    assert abs(ls.sum()) <= 1e-12 * np.abs(ls).sum()
    # without the correction the sample's moments are far off (what misled the search)
    raw = lam[rows] * 500 / 60
    assert np.linalg.norm(XS.T @ raw - Xa.T @ lam) > 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_search_on_a_row_sample_finds_the_exact_maximum(seed):
    """150 rows, rank 3: the 30-row search refined on all rows reaches the enumerated
    M(lambda); every value is attained on all rows."""
    X, Xa, lam = _fitted_residual(150, 2, seed)
    M = dual_constraint(enumerate_patterns(X, bias=True), X, lam, penalize_bias=False).value
    cands = search_violators(Xa, lam, free_bias=True, max_rows=30, top_k=5, random_state=0)
    assert cands[0].info["n_rows_searched"] == 30
    assert cands[0].value == pytest.approx(M, rel=1e-9)
    for c in cands:
        assert c.value <= M * (1 + 1e-12)
        assert c.value == pytest.approx(_attained(Xa, lam, c), rel=1e-12)
        np.testing.assert_array_equal(c.mask, Xa @ c.direction > 0)
        assert np.linalg.norm(c.direction[:-1]) == pytest.approx(1.0, rel=1e-12)


def test_search_on_a_row_sample_matches_the_whole_search():
    """1,500 rows, rank 7: 200 sampled rows reach the whole-data search's value."""
    _, Xa, lam = _fitted_residual(1500, 6, 3)
    whole = search_violators(Xa, lam, free_bias=True, max_rows=None, random_state=0)[0]
    assert "n_rows_searched" not in whole.info
    for seed in range(2):
        part = search_violators(Xa, lam, free_bias=True, max_rows=200, random_state=seed)
        assert part[0].value >= 0.999 * whole.value
        assert part[0].value == pytest.approx(_attained(Xa, lam, part[0]), rel=1e-12)


def test_search_on_a_row_sample_keeps_user_starts_and_is_reproducible():
    X, lam = _data("gauss", 80, 2, 12)
    lam -= lam.mean()
    Xa = np.hstack([X, np.ones((80, 1))])
    dv = dual_constraint(enumerate_patterns(X, bias=True), X, lam, penalize_bias=False)
    kw = dict(free_bias=True, max_rows=20, top_k=3)
    c = search_violators(Xa, lam, sign=dv.sign, starts=dv.direction, n_starts=0,
                         n_samples=0, max_row_starts=0, random_state=0, **kw)[0]
    assert c.origin == "user" and c.value == pytest.approx(dv.value, rel=1e-9)
    a = search_violators(Xa, lam, random_state=5, **kw)
    b = search_violators(Xa, lam, random_state=5, **kw)
    assert [x.value for x in a] == [x.value for x in b]
    with pytest.raises(ValueError, match="max_rows"):
        search_violators(Xa, lam, free_bias=True, max_rows=1)


@pytest.mark.parametrize("numpy_path", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_bvls_on_a_working_set_reaches_the_whole_problems_optimum(seed, numpy_path,
                                                                  monkeypatch):
    """From ``_BVLS_SCREEN_FROM`` variables on (a DCA step over every row of a large data
    set), ``_bvls`` solves on a working set of its variables and checks every variable on
    the whole problem: the whole solve's residual (unique), no bound's gradient pointing
    inward anywhere; with one round allowed and few variables added, or once its working
    set holds half the variables (seed 2), it finishes on the whole problem, at the same
    optimum."""
    from convexrelu.certificates import _search

    if numpy_path:
        monkeypatch.setattr(_search, "_BVLS_COMPILED_FROM", 10 ** 12)
    rng = np.random.default_rng(seed)
    d, m = 21, 6000
    A = rng.standard_normal((d, m)) * 10.0 ** rng.uniform(-1, 1, m)
    if seed == 1:  # the heavy equality row of a free bias
        A = np.vstack([A, 1e3 * np.ones((1, m))])
    b = 10 * rng.standard_normal(A.shape[0])
    upper = 1e-3 * rng.uniform(0, 2, m) * (rng.random(m) > 0.05)
    w0 = np.where(rng.random(m) < 0.5, upper, 0.0)
    if seed == 2:  # a start strictly inside some boxes, and boxes of nearly zero width
        w0 = np.where(rng.random(m) < 0.1, 0.5 * upper, w0)
        tiny = rng.random(m) < 0.05
        upper[tiny] = 1e-18
        w0[tiny] = upper[tiny]
    inner = []
    orig = _search._bvls

    def spy(A_, *args, screen=True, **kwargs):
        if not screen:
            inner.append(A_.shape[1])
        return orig(A_, *args, screen=screen, **kwargs)

    monkeypatch.setattr(_search, "_bvls", spy)
    w, ok = _search._bvls(A, b, upper, w0)
    assert ok and inner and min(inner) < m
    if seed < 2:  # working sets only, no solve of the whole problem
        assert max(inner) < m
    else:  # its working set passed half the variables: the whole problem from there
        # (the numpy path's whole solve is over the boxes of nonzero width)
        whole_at = inner.index(max(inner))
        assert 2 * max(inner[:whole_at]) <= m < 2 * (max(inner[:whole_at])
                                                     + _search._BVLS_SCREEN_ADD)
        assert max(inner) > 0.9 * m
    inner.clear()
    whole, ok_whole = _search._bvls(A, b, upper, w0, screen=False)
    assert ok_whole
    assert np.all(w >= 0) and np.all(w <= upper)
    r, r_whole = np.linalg.norm(A @ w - b), np.linalg.norm(A @ whole - b)
    assert r == pytest.approx(r_whole, rel=1e-9, abs=1e-12)
    s = A.T @ (b - A @ w)
    live = upper > 1e-12 * upper.max()
    tol = 1e-9 * (np.linalg.norm(A, axis=0) * (np.linalg.norm(b) + 1.0)) + 1e-12
    assert np.all(s[live & (w <= 0)] <= tol[live & (w <= 0)])
    assert np.all(-s[live & (w >= upper)] <= tol[live & (w >= upper)])
    assert np.all(w[~live] == 0.0)  # boxes of zero width at 0, as the whole solve has them
    monkeypatch.setattr(_search, "_BVLS_SCREEN_ROUNDS", 1)
    monkeypatch.setattr(_search, "_BVLS_SCREEN_ADD", 8)
    w1, ok1 = _search._bvls(A, b, upper, w0)
    assert ok1 and m in inner  # it finished on the whole problem
    assert np.linalg.norm(A @ w1 - b) == pytest.approx(r_whole, rel=1e-9, abs=1e-12)


def _dca_reference(Xt, x, lam_s, free):
    """A DCA step computed from scratch (rows copied, the heavy equality row's weight and
    the bounded least squares solved whole, by scipy): the maximiser of ``g^T x - k(x)``."""
    from scipy.optimize import lsq_linear

    neg = lam_s < 0
    act = Xt @ x > 0
    g = Xt[~neg & act].T @ lam_s[~neg & act]
    XN = Xt[neg]
    if free:
        W = 1e3 * (1.0 + float(np.max(np.linalg.norm(XN[:, :-1], axis=1))))
        A = np.vstack([XN[:, :-1].T, W * np.ones((1, XN.shape[0]))])
        rhs = np.concatenate([g[:-1], [W * g[-1]]])
    else:
        A, rhs = XN.T, g
    upper = -lam_s[neg]
    w = lsq_linear(A, rhs, bounds=(np.zeros_like(upper), upper), method="bvls",
                   tol=1e-14).x
    return g - XN.T @ w


@pytest.mark.parametrize("screen", [False, True])
@pytest.mark.parametrize("free", [False, True])
def test_dca_step_keeps_the_negative_rows_and_matches_a_whole_computation(
        free, screen, monkeypatch):
    """The DCA step reads the negative rows' dual matrix, its columns' norms (which the
    working-set least squares uses: ``screen``) and weights from the search's problem (the
    same for every step of a sign's refinements): the step equals one computed from
    scratch; the arrays are reused for the same rows and weights and made again for
    others."""
    from convexrelu.certificates import _search

    if screen:  # every DCA step's least squares on a working set, with the kept norms
        monkeypatch.setattr(_search, "_BVLS_SCREEN_FROM", 16)
        seen = []
        screened = _search._bvls_screened

        def spy(A, b, upper, w0, max_iter, compiled, col=None):
            seen.append(col)
            return screened(A, b, upper, w0, max_iter, compiled, col)

        monkeypatch.setattr(_search, "_bvls_screened", spy)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 4))
    Xa = np.hstack([X, np.ones((300, 1))])
    # small negative weights: the bounded least squares keeps a residual (a direction)
    lam = np.abs(rng.standard_normal(300))
    lam[rng.random(300) < 0.5] *= -0.05
    lam -= lam.mean() if free else 0.0
    prob = _search._Problem(Xa, lam, free)
    neg = lam < 0
    first = prob.negative_rows(lam, neg)
    assert prob.negative_rows(lam, neg) is first  # kept for the same rows and weights
    checked = 0
    for _ in range(40):  # points with a positive value and a step with a direction
        x = prob.complete(rng.standard_normal((5, 1)), lam)[:, 0]
        r = _dca_reference(prob.Xt, x, lam, free)
        if not (prob.values(x[:, None], lam)[0] > 0
                and np.linalg.norm(r[:-1] if free else r) > 1e-3):
            continue
        checked += 1
        step = _search._dca_step(prob, x, lam, neg)
        np.testing.assert_allclose(step, prob.complete(r[:, None], lam)[:, 0], rtol=1e-7,
                                   atol=1e-9)
    assert checked >= 5
    if screen:
        assert seen and all(c is first[2] for c in seen)
    assert prob.negative_rows(lam, neg.copy()) is not first  # other rows' arrays: again
    assert prob.negative_rows(lam.copy(), neg) is not first  # other weights: again
    other = prob.negative_rows(-lam, -lam < 0)
    np.testing.assert_array_equal(other[0], lam[lam > 0])
    assert other[1].shape[1] == int(np.sum(lam > 0))


@pytest.mark.parametrize("dca_first", [False, True])
def test_refinement_ends_where_no_move_improves(dca_first, monkeypatch):
    """A refinement tries the fixed-point step first, or from ``_DCA_FIRST_FROM`` rows the
    DCA step first; either way it returns a point with its value that none of the three
    moves improves, at least as high as its start."""
    from convexrelu.certificates import _search

    monkeypatch.setattr(_search, "_DCA_FIRST_FROM", 100 if dca_first else 10 ** 9)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 3))
    Xa = np.hstack([X, np.ones((400, 1))])
    lam = rng.standard_normal(400)
    lam -= lam.mean()
    prob = _search._Problem(Xa, lam, True)
    neg = lam < 0
    order = []
    dca, fp = _search._dca_step, _search._Problem.complete

    def spy_dca(*args):
        order.append("dca")
        return dca(*args)

    def spy_complete(self, D, lam_s):
        order.append("complete")
        return fp(self, D, lam_s)

    for _ in range(3):
        x0 = prob.complete(rng.standard_normal((4, 1)), lam)[:, 0]
        v0 = float(prob.values(x0[:, None], lam)[0])
        monkeypatch.setattr(_search, "_dca_step", spy_dca)
        monkeypatch.setattr(_search._Problem, "complete", spy_complete)
        order.clear()
        x, v, steps = _search._refine(prob, x0, v0, lam, neg, 50, None, True)
        monkeypatch.undo()
        monkeypatch.setattr(_search, "_DCA_FIRST_FROM", 100 if dca_first else 10 ** 9)
        assert order[0] == ("dca" if dca_first else "complete") and steps >= 3
        assert v >= v0 and v == pytest.approx(float(prob.values(x[:, None], lam)[0]),
                                              rel=1e-12)
        tol = 1e-12 * abs(v) + 1e-300
        act = prob.Xt @ x > 0
        moves = [prob.complete((prob.Xt.T @ (act * lam))[:, None], lam)[:, 0],
                 _search._dca_step(prob, x, lam, neg), _search._polish(prob, x, lam)]
        for xn in moves:
            if xn is not None:
                assert float(prob.values(xn[:, None], lam)[0]) <= v + tol

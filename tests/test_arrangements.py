import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from convexrelu import (
    ActivationPatterns,
    PatternLimitError,
    count_patterns,
    cover_bound,
    enumerate_patterns,
    sample_patterns,
)
from conftest import brute_force_patterns


def _aug(X, bias):
    return np.hstack([X, np.ones((len(X), 1))]) if bias else X


def whitney_count(Xa):
    """Zaslavsky / Whitney: sum over subsets of distinct hyperplanes (exponential oracle)."""
    rows = [r / np.linalg.norm(r) for r in Xa if np.linalg.norm(r) > 0]
    distinct = []
    for r in rows:
        if not any(min(np.abs(r - q).max(), np.abs(r + q).max()) < 1e-12 for q in distinct):
            distinct.append(r)
    total = 0
    H = np.array(distinct)
    for k in range(len(H) + 1):
        for S in itertools.combinations(range(len(H)), k):
            rank = np.linalg.matrix_rank(H[list(S)]) if S else 0
            total += (-1) ** (k - rank)
    return abs(total)


def check_against_brute_force(X, bias):
    pats = enumerate_patterns(X, bias=bias)
    got = set(map(tuple, pats.masks.T))
    assert len(got) == pats.n_patterns  # all columns distinct
    assert got == brute_force_patterns(_aug(X, bias))
    assert pats.exact
    return pats


def check_gates(X, pats):
    Xa = _aug(X, pats.bias)
    vals = Xa @ pats.gates
    nz = np.linalg.norm(Xa, axis=1) > 0
    assert np.all(vals[nz] != 0)
    np.testing.assert_array_equal(vals[nz] > 0, pats.masks[nz])
    assert not pats.masks[~nz].any()


DEGENERATE = {
    "grid3x3": np.array([[i, j] for i in range(3) for j in range(3)], float),
    "parallel_antiparallel_zero": np.array(
        [[1, 0], [2, 0], [-1, 0], [0, 1], [1, 1], [0, 0]], float),
    "collinear": np.c_[np.linspace(0, 1, 6), 2 * np.linspace(0, 1, 6) + 1],
    "repeated_rows_3d": np.vstack([np.eye(3), np.eye(3), [[1, 1, 0], [-2, -2, 0]]]),
    "coplanar_normals": np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1],
                                  [1, 0, 1], [1, 1, 1], [2, 1, 1]], float),
    "integer_4d": np.random.default_rng(3).integers(-1, 2, size=(9, 4)).astype(float),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
@pytest.mark.parametrize("bias", [False, True])
def test_degenerate_equals_brute_force_and_whitney(name, bias):
    X = DEGENERATE[name]
    if bias and X.shape[1] >= 4:
        X = X[:7]
    pats = check_against_brute_force(X, bias)
    check_gates(X, pats)
    assert pats.n_patterns == whitney_count(_aug(X, bias)) == count_patterns(X, bias=bias)


@pytest.mark.parametrize("n,d", [(6, 2), (7, 3), (8, 3), (7, 4)])
@pytest.mark.parametrize("bias", [False, True])
def test_random_equals_brute_force(n, d, bias):
    X = np.random.default_rng(n * 10 + d).standard_normal((n, d))
    pats = check_against_brute_force(X, bias)
    check_gates(X, pats)


@pytest.mark.parametrize("n,d,expected", [(5, 2, 10), (6, 3, 32), (8, 3, 58), (10, 3, 92),
                                          (7, 4, 84), (9, 5, 326), (40, 4, None),
                                          (25, 5, None)])
def test_cover_formula_general_position(n, d, expected):
    X = np.random.default_rng(n + d).standard_normal((n, d))
    pats = enumerate_patterns(X)
    assert pats.n_patterns == cover_bound(n, d) == count_patterns(X)
    if expected is not None:
        assert pats.n_patterns == expected
    check_gates(X, pats)


def test_bias_count_and_rank_deficient():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, 2))
    assert enumerate_patterns(X, bias=True).n_patterns == 44 == cover_bound(7, 3)
    Z = rng.standard_normal((8, 2)) @ rng.standard_normal((2, 5))
    pats = enumerate_patterns(Z)
    assert pats.n_patterns == 16 == cover_bound(8, 2)
    check_gates(Z, pats)


def test_2d_count_is_twice_the_distinct_lines():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((6, 2))
    X = np.vstack([base, 3 * base[:2], -base[2:4], [[0, 0]]])
    pats = enumerate_patterns(X)
    assert pats.n_patterns == 2 * 6 == count_patterns(X)
    check_gates(X, pats)


def test_trivial_cases():
    assert enumerate_patterns(np.zeros((3, 2))).n_patterns == 1
    assert count_patterns(np.zeros((3, 2))) == 1
    X = np.array([[1.0, 2.0], [2.0, 4.0], [-1.0, -2.0]])
    pats = enumerate_patterns(X)
    assert pats.n_patterns == 2
    check_gates(X, pats)
    assert cover_bound(0, 3) == 1 and cover_bound(3, 5) == 8


def test_thin_cells_are_not_lost():
    # three lines nearly concurrent: a triangle cell of width ~1e-7 in the bias picture
    X = np.array([[0.0], [1.0], [2.0]])
    eps = 1e-7
    X = np.c_[X, 2 * X[:, 0] + np.array([0, eps, 0])]  # almost collinear points
    pats = enumerate_patterns(X, bias=True)
    # general position (not exactly collinear): Cover's count, 8 cells
    assert pats.n_patterns == cover_bound(3, 3) == 8
    assert 0 < pats.min_margin < 1e-6
    # every gate checked in exact rational arithmetic (an LP oracle is too coarse here)
    from fractions import Fraction
    Xa = [[Fraction(v) for v in row] for row in _aug(X, True)]
    for j in range(pats.n_patterns):
        g = [Fraction(v) for v in pats.gates[:, j]]
        signs = [sum(a * b for a, b in zip(row, g)) > 0 for row in Xa]
        assert signs == list(pats.masks[:, j])
    assert len(set(map(tuple, pats.masks.T))) == 8


def test_sampled_patterns_belong_to_exact_set_and_converge():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((5, 2))
    exact = set(map(tuple, enumerate_patterns(X).masks.T))
    sampled = sample_patterns(X, 2000, random_state=0)
    assert not sampled.exact
    got = set(map(tuple, sampled.masks.T))
    assert got <= exact and got == exact  # 2000 gates find all 10 cells here
    check_gates(X, sampled)
    few = sample_patterns(X, 3, random_state=0)
    assert few.n_patterns <= 3
    assert set(map(tuple, few.masks.T)) <= exact


def test_sampling_frequencies_match_arc_lengths():
    # docs/mathematics.rst §9 item 6: in 2-D a cell is hit with probability arc / 2 pi
    rng = np.random.default_rng(5)
    X = rng.standard_normal((4, 2))
    pats = enumerate_patterns(X)
    G = rng.standard_normal((2, 40000))
    hits = (X @ G > 0)
    keys = {tuple(c): j for j, c in enumerate(pats.masks.T)}
    counts = np.zeros(pats.n_patterns)
    for c in hits.T:
        counts[keys[tuple(c)]] += 1
    theta = np.sort(np.concatenate([np.arctan2(X[:, 1], X[:, 0]) + np.pi / 2,
                                    np.arctan2(X[:, 1], X[:, 0]) - np.pi / 2]) % (2 * np.pi))
    arcs = np.diff(np.r_[theta, theta[0] + 2 * np.pi]) / (2 * np.pi)
    mids = (theta + np.diff(np.r_[theta, theta[0] + 2 * np.pi]) / 2)
    expect = np.zeros(pats.n_patterns)
    for a, mid in zip(arcs, mids):
        expect[keys[tuple(X @ [np.cos(mid), np.sin(mid)] > 0)]] = a
    np.testing.assert_allclose(counts / G.shape[1], expect, atol=0.01)


def test_from_gates_and_blocks_and_roundtrip(tmp_path):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((9, 3))
    pats = enumerate_patterns(X, bias=True)
    again = ActivationPatterns.from_gates(X, pats.gates, bias=True)
    np.testing.assert_array_equal(again.masks, pats.masks)
    blocks = [m for _, m, _ in pats.iter_blocks(7)]
    np.testing.assert_array_equal(np.hstack(blocks), pats.masks)
    np.savez(tmp_path / "p.npz", **pats.to_arrays())
    with np.load(tmp_path / "p.npz") as z:
        back = ActivationPatterns.from_arrays(z)
    np.testing.assert_array_equal(back.masks, pats.masks)
    assert back.exact and back.bias and back.fingerprint == pats.fingerprint
    back.check_data(X)
    with pytest.raises(ValueError, match="computed on other data"):
        back.check_data(X + 1)
    with pytest.raises(ValueError, match="computed on data of shape"):
        back.check_data(X[:3])
    with pytest.raises(ValueError, match="G must have shape"):
        ActivationPatterns.from_gates(X, rng.standard_normal((3, 4)), bias=True)
    with pytest.raises(ValueError, match="G contains NaN"):
        ActivationPatterns.from_gates(X, np.full((4, 2), np.nan), bias=True)
    assert "exact" in repr(pats)


def test_limit_refuses_with_count_and_advice():
    X = np.random.default_rng(7).standard_normal((60, 2))
    with pytest.raises(PatternLimitError, match=r"3,542 activation patterns.*sample_patterns"):
        enumerate_patterns(X, bias=True, max_patterns=1000)
    X = np.random.default_rng(7).standard_normal((40, 6))
    with pytest.raises(PatternLimitError, match="may have up to .*fewer features|PCA"):
        enumerate_patterns(X, max_patterns=10_000)


@pytest.mark.parametrize("bad,match", [
    (np.array([[np.nan, 1.0]]), "contains NaN"),
    (np.array([[np.inf, 1.0]]), "contains infinity"),
    (np.zeros((0, 2)), "is empty"),
    (np.zeros(3), "must be 2-D.*reshape"),
    (np.array([["a", "b"]]), "must be numeric"),
    (np.array([[1 + 1j, 0]]), "complex"),
    (None, "is None"),
])
def test_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        enumerate_patterns(bad)
    with pytest.raises(ValueError, match=match):
        sample_patterns(bad, 5)
    with pytest.raises(ValueError, match=match):
        count_patterns(bad)


def test_bad_arguments():
    X = np.eye(3)
    with pytest.raises(ValueError, match="n_patterns must be an int >= 1; got 0"):
        sample_patterns(X, 0)
    with pytest.raises(TypeError, match="n_patterns must be an int"):
        sample_patterns(X, 2.5)
    with pytest.raises(ValueError, match="random_state must be"):
        sample_patterns(X, 5, random_state="seed")
    with pytest.raises(ValueError, match="non-negative"):
        sample_patterns(X, 5, random_state=-1)
    with pytest.raises(TypeError, match="bias must be True or False"):
        enumerate_patterns(X, bias="yes")
    with pytest.raises(ValueError, match="max_patterns must be an int >= 1"):
        enumerate_patterns(X, max_patterns=0)
    # reproducible sampling
    a = sample_patterns(X, 10, random_state=3)
    b = sample_patterns(X, 10, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(a.masks, b.masks)
    sample_patterns(X, 10, random_state=np.random.RandomState(0))


@settings(max_examples=25, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 6), st.integers(1, 3)),
              elements=st.integers(-2, 2)),
       st.booleans())
def test_property_integer_data(Xi, bias):
    X = Xi.astype(float)
    pats = enumerate_patterns(X, bias=bias)
    assert set(map(tuple, pats.masks.T)) == brute_force_patterns(_aug(X, bias))
    assert pats.n_patterns == count_patterns(X, bias=bias) == whitney_count(_aug(X, bias))
    check_gates(X, pats)


@settings(max_examples=10, deadline=None)
@given(st.integers(2, 7), st.integers(1, 3), st.integers(0, 2**31 - 1), st.booleans(),
       st.integers(0, 3))
@pytest.mark.slow  # moved to the slow step: the default run took 339 s in CI
def test_property_random_with_repeats(n, d, seed, bias, n_repeat):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if n_repeat:
        X = np.vstack([X, X[rng.integers(0, n, n_repeat)] * rng.choice([-2.0, 1.0], (n_repeat, 1))])
    pats = enumerate_patterns(X, bias=bias)
    assert set(map(tuple, pats.masks.T)) == brute_force_patterns(_aug(X, bias))
    check_gates(X, pats)


@pytest.mark.slow
def test_million_patterns_1000_points_with_bias():
    X = np.random.default_rng(0).standard_normal((1000, 2))
    pats = enumerate_patterns(X, bias=True)
    assert pats.n_patterns == 999_002 == count_patterns(X, bias=True)
    assert pats.packed.nbytes == 999_002 * 125
    blk = pats.masks_block(0, 5000)
    vals = np.c_[X, np.ones(1000)] @ pats.gates[:, :5000]
    np.testing.assert_array_equal(vals > 0, blk)


@pytest.mark.parametrize("kind", ["gaussian", "integer_grid", "repeats"])
def test_count_lower_bound_never_exceeds_the_exact_count(kind, monkeypatch):
    from convexrelu.arrangements import _enumerate as en

    rng = np.random.default_rng(11)
    if kind == "gaussian":
        X = rng.standard_normal((40, 3))
    elif kind == "integer_grid":
        X = rng.integers(-2, 3, size=(40, 3)).astype(float)
    else:
        X = np.repeat(rng.standard_normal((10, 3)), 4, axis=0)
    monkeypatch.setattr(en, "_LOWER_BOUND_ROWS", 12)  # the bound's subset path at n = 40
    Xa = np.hstack([X, np.ones((X.shape[0], 1))])
    low = en._count_lower_bound(Xa)
    exact = enumerate_patterns(X, bias=True, max_patterns=None).n_patterns
    assert 0 < low <= exact
    # a limit below the bound refuses before the rows are grouped, and says "at least"
    with pytest.raises(PatternLimitError, match="at least .* activation patterns"):
        enumerate_patterns(X, bias=True, max_patterns=low - 1)


def test_count_lower_bound_with_a_target_stops_early():
    """With a target, the bound counts nested row subsets and stops at the first count
    above it: never more than the full bound (the same rows' superset), and above the
    target when the full bound is."""
    from convexrelu.arrangements import _enumerate as en

    X = np.random.default_rng(3).standard_normal((400, 5))
    Xa = np.hstack([X, np.ones((400, 1))])
    full = en._count_lower_bound(Xa)
    for target in (100, 3000, full - 1, full, 10 * full):
        low = en._count_lower_bound(Xa, target)
        assert 0 < low <= full
        assert low > target or low == full
    assert en._count_lower_bound(Xa, 100) < full  # 64 rows already exceed 100: stopped there


def test_large_data_refused_quickly():
    import time

    X = np.random.default_rng(12).standard_normal((15000, 20))
    t = time.perf_counter()
    with pytest.raises(PatternLimitError, match="at least"):
        enumerate_patterns(X, bias=True, max_patterns=2000)
    assert time.perf_counter() - t < 10  # grouping 15,000 rows took 17 s before


def test_sampled_patterns_with_the_linear_gate():
    rng = np.random.default_rng(13)
    X = rng.standard_normal((50, 4))
    pats = sample_patterns(X, 20, random_state=0, bias=True, linear=True)
    assert pats.masks[:, 0].all()  # every sample active, first
    np.testing.assert_array_equal(pats.gates[:, 0], [0, 0, 0, 0, 1])
    assert pats.n_patterns <= 20  # n_patterns gates in all
    plain = sample_patterns(X, 19, random_state=0, bias=True)
    np.testing.assert_array_equal(pats.masks[:, 1:], plain.masks)
    # without a bias there is no such gate: the same as the plain sample
    nob = sample_patterns(X, 20, random_state=0, linear=True)
    np.testing.assert_array_equal(nob.masks, sample_patterns(X, 20, random_state=0).masks)
    check_gates(X, pats)


@pytest.mark.parametrize("bias", [True, False])
def test_badly_scaled_columns_enumerate_as_the_standardised_data(rng, bias):
    """A raw Unix timestamp beside the bias (rows nearly parallel: the rank-3 count spent
    minutes in rational arithmetic, and the enumeration failed with an internal error) or
    a column scaled by 1e9: the sign vectors of ``X_aug u`` are those of ``X_aug A w`` for
    any invertible ``A``, so the patterns are the standardised data's (centring is such an
    ``A`` only with a bias), and the gates reproduce them on the raw data."""
    X = rng.standard_normal((120, 2))
    raw = np.c_[1.6e9 + 1e7 * X[:, 0], X[:, 1]] if bias else np.c_[1e9 * X[:, 0], X[:, 1]]
    pats = enumerate_patterns(raw, bias=bias)
    ref = enumerate_patterns(X, bias=bias)
    assert pats.n_patterns == ref.n_patterns == count_patterns(raw, bias=bias)
    assert set(map(bytes, pats.packed)) == set(map(bytes, ref.packed))
    assert np.array_equal(_aug(raw, bias) @ pats.gates > 0, pats.masks)
    assert 0 < pats.min_margin < ref.min_margin  # measured on the raw rows


@pytest.mark.parametrize("offset", [[5000.0, 0.0], [1e7, 0.0], [1.6e9, 1.6e9], [0.0, 3e4]])
def test_offset_degenerate_data_stay_exact(offset):
    """Degenerate data (an integer grid; ten collinear points among others) shifted by a
    large offset: the same patterns as unshifted, because the columns are shifted back by
    a data value (exact on integers) before the enumeration; whitening them through the
    SVD lost the collinearities (an internal error at +5,000, 198 patterns instead of 174
    at +1e7, both unnoticed by the count check, which saw the same whitened rows)."""
    grid = np.array(list(itertools.product(range(4), range(4))), float)
    t = np.arange(10.0)
    points = np.r_[np.c_[t, 2 * t + 1], np.random.default_rng(0).integers(0, 10, (6, 2))]
    for X in (grid, points):
        raw = X + np.asarray(offset)
        pats = enumerate_patterns(raw, bias=True)
        ref = enumerate_patterns(X, bias=True)
        assert set(map(bytes, pats.packed)) == set(map(bytes, ref.packed))
        assert count_patterns(raw, bias=True) == pats.n_patterns == \
            (174 if X is grid else 170)  # (the unshifted sets: brute force, measured)
        assert np.array_equal(_aug(raw, True) @ pats.gates > 0, pats.masks)


@pytest.mark.parametrize("make", [
    # (the raw data, the same data without the offsets and extreme scales)
    lambda b: (b[:, :1] + 1e9, b[:, :1]),                      # one raw timestamp feature
    lambda b: (np.c_[b[:, 0] * 1e-300, b[:, 1] + 1e9], b),     # a tiny column beside it
    lambda b: (np.c_[np.zeros(8), b[:, 1] + 1e12], np.c_[np.zeros(8), b[:, 1]]),
    lambda b: (np.c_[(b[:, 0] + 1) * 1e-310, b[:, 1] + 1e9], b + [1, 0]),  # subnormal
])
def test_offset_features_whose_raw_rank_collapses(make):
    """A feature shifted by 1e9 beside the bias has a singular value below the rank's
    tolerance: the raw rank was 1 and the enumeration returned 2 patterns (with
    count_patterns agreeing), flagged exact. The columns are shifted back first wherever
    the rank is not full; a subnormal column's scale stays finite."""
    raw, ref_X = make(np.random.default_rng(1).integers(0, 5, (8, 2)).astype(float))
    pats = enumerate_patterns(raw, bias=True)
    ref = enumerate_patterns(ref_X, bias=True)
    assert set(map(bytes, pats.packed)) == set(map(bytes, ref.packed))
    assert pats.n_patterns == count_patterns(raw, bias=True)

"""The memory budget: too large a problem is refused, before allocating, with a message
naming the estimate, the budget and what to change."""

import numpy as np
import pytest

import convexrelu
from convexrelu import (ConvexProgram, ConvexReLUClassifier, ConvexReLURegressor,
                        MemoryBudgetError, config_context, get_config, sample_patterns,
                        set_config)
from convexrelu._memory import block_size, check_memory


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    return X, np.abs(X[:, 0]) + 0.1 * rng.standard_normal(60)


def test_default_budget_and_context():
    before = get_config()["memory_budget"]
    with config_context(memory_budget=3):
        assert get_config()["memory_budget"] == 3.0
    assert get_config()["memory_budget"] == before


@pytest.mark.parametrize("bad", [0, -1, "1GB", True, float("nan")])
def test_set_config_rejects_bad_budget(bad):
    with pytest.raises(ValueError, match="memory_budget must be a positive number of MiB"):
        set_config(memory_budget=bad)


def test_env_variable_is_checked(monkeypatch):
    from convexrelu import _memory

    monkeypatch.setenv("CONVEXRELU_MEMORY_BUDGET", "lots")
    with pytest.raises(ValueError, match="CONVEXRELU_MEMORY_BUDGET must be a number"):
        _memory._initial_budget()
    monkeypatch.setenv("CONVEXRELU_MEMORY_BUDGET", "-5")
    with pytest.raises(ValueError, match="CONVEXRELU_MEMORY_BUDGET must be a positive"):
        _memory._initial_budget()
    monkeypatch.setenv("CONVEXRELU_MEMORY_BUDGET", "100")
    assert _memory._initial_budget() == 100.0


def test_error_is_memory_and_value_error():
    with config_context(memory_budget=1):
        with pytest.raises(MemoryError) as info:
            check_memory(2 * 2**20, "a thing", "make it smaller")
    err = info.value
    assert isinstance(err, ValueError)
    assert err.estimate == 2 * 2**20 and err.budget == 2**20
    msg = str(err)
    assert "a thing would need about 2 MiB" in msg and "budget of 1 MiB" in msg
    assert "make it smaller" in msg and "set_config(memory_budget=" in msg


def test_block_size_follows_budget():
    with config_context(memory_budget=1):
        assert block_size(8 * 1000, maximum=4096) == 32  # a quarter of 1 MiB / 8000 bytes
        assert block_size(2**30, maximum=4096) == 1
    with config_context(memory_budget=2048):
        assert block_size(8 * 1000, maximum=4096) == 4096


def test_estimator_refuses_before_sampling(data, monkeypatch):
    X, y = data
    import convexrelu.estimators as est

    def boom(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("patterns were sampled before the memory check")

    monkeypatch.setattr(est, "sample_patterns", boom)
    with config_context(memory_budget=0.01):  # 10 KiB
        # X's patterns are too many to list: the grown fit's 500 sampled ones are checked
        # 10 KiB hold 10 of the 17 * 60 bytes a pattern takes: the remedy says so
        with pytest.raises(MemoryBudgetError, match=r"up to 500 patterns over 60 samples.*"
                           r"lower max_patterns \(at most 10 fit the budget\)"):
            ConvexReLURegressor().fit(X, y)
        with pytest.raises(MemoryBudgetError, match=r"lower patterns \(the number of sampled"):
            ConvexReLUClassifier(patterns=500).fit(X, y > 1)


def test_estimator_checks_the_patterns_it_uses_not_max_patterns(data):
    # the budget holds the grown fit's 500 sampled patterns (17 * 60 * 500 bytes) but not
    # max_patterns=2000 of them: the fit goes on (it was refused for max_patterns)
    X, y = data
    est = ConvexReLURegressor(random_state=0)
    assert 17 * 60 * 500 < 2**20 < 17 * 60 * est.max_patterns
    with config_context(memory_budget=1):
        with pytest.warns(UserWarning, match="fitting over 500 sampled patterns"):
            est.fit(X, y)
    assert not est.patterns_.exact
    assert est.score(X, y) > 0.5  # |x_0| + noise: a real fit, not the mean


def test_grown_fit_samples_as_many_patterns_as_the_budget_holds(data, monkeypatch):
    # 17 * 60 bytes a pattern: 0.3 MiB holds 308 of the grown fit's 500; it samples 308
    # and says why; 0.04 MiB holds 41, below the least it samples (50): refused
    X, y = data
    import convexrelu.estimators as est_mod

    drawn = []
    orig = est_mod.sample_patterns

    def spy(X, n, **kw):
        drawn.append(n)
        return orig(X, n, **kw)

    monkeypatch.setattr(est_mod, "sample_patterns", spy)
    with config_context(memory_budget=0.3):
        with pytest.warns(UserWarning, match=r"fitting over 308 sampled patterns \(as many "
                          r"as the memory budget holds over these samples\)"):
            est = ConvexReLURegressor(random_state=0).fit(X, y)
    assert drawn == [308] and est.score(X, y) > 0.5
    with config_context(memory_budget=0.04):
        with pytest.raises(MemoryBudgetError, match=r"up to 500 patterns over 60 samples.*"
                           r"at most 41 fit the budget"):
            ConvexReLURegressor(random_state=0).fit(X, y)
    # not grown (the gated formulation samples max_patterns): no adaptation
    with config_context(memory_budget=0.3):
        with pytest.raises(MemoryBudgetError, match="up to 2000 patterns"):
            ConvexReLURegressor(formulation="gated_relu", penalize_bias=True).fit(X, y)


def test_estimator_checks_the_listed_patterns_after_enumerating():
    # one feature and a bias: 2 n = 120 patterns, listed (packed while enumerating); the
    # program's masks of all 120 (17 * 60 * 120 bytes) are refused before they are formed
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 1))
    y = np.abs(X[:, 0])
    with config_context(memory_budget=0.1):  # 100 KiB < 122 KB
        with pytest.raises(MemoryBudgetError, match=r"all 120 activation patterns of X over "
                           r"60 samples.*lower max_patterns below 120 \(patterns are then "
                           r"sampled: min\(max_patterns, 500\) of them for a grown fit; "
                           r"at most 102 fit the budget\)"):
            ConvexReLURegressor().fit(X, y)
        # "exact" never samples: the remedy says how to sample instead
        with pytest.raises(MemoryBudgetError, match=r"pass patterns='auto' with "
                           r"max_patterns below 120 \(patterns are then sampled; at most "
                           r"102 fit the budget\)"):
            ConvexReLURegressor(patterns="exact").fit(X, y)
    with config_context(memory_budget=0.2):
        est = ConvexReLURegressor().fit(X, y)
    assert est.patterns_.exact and est.patterns_.n_patterns == 120


def test_estimator_refuses_given_patterns(data):
    X, y = data
    pats = sample_patterns(X, 50, random_state=0, bias=True)
    with config_context(memory_budget=0.04):  # 40 KiB < 17 * 60 * 50 bytes
        with pytest.raises(MemoryBudgetError, match="the given 50 patterns.*pass fewer"):
            ConvexReLURegressor(patterns=pats).fit(X, y)


def test_program_refuses(data):
    X, y = data
    pats = sample_patterns(X, 50, random_state=0, bias=True)
    with config_context(memory_budget=0.02):  # 20 KiB < 9 * 60 * 50 bytes
        with pytest.raises(MemoryBudgetError, match="masks of 50 patterns over 60 samples"):
            ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True)


def test_cvxpy_problem_refused(data):
    X, y = data
    with config_context(memory_budget=1):
        # 500 * 60 * 30 * 5 bytes = 4.3 MiB > 1 MiB; the masks themselves fit
        with pytest.raises(MemoryBudgetError, match="a cvxpy problem over 30 patterns.*"
                           "solver='auto'"):
            ConvexReLURegressor(patterns=30, solver="cvxpy", random_state=0).fit(X, y)


def test_restricted_solve_refused(data):
    from convexrelu.solvers._cg_inner import CompressedReluSolver

    X, y = data
    pats = sample_patterns(X, 20, random_state=0, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True)
    with config_context(memory_budget=0.1):  # the 60 x 101 design (twice), its Gram: 179 KB
        with pytest.raises(MemoryBudgetError, match="restricted solve over 101 columns"):
            CompressedReluSolver().solve(prog)


def test_fit_within_budget_unchanged(data):
    X, y = data
    with config_context(memory_budget=64):
        reg = ConvexReLURegressor(patterns=20, random_state=0, certify=False).fit(X, y)
    assert np.isfinite(reg.objective_)
    assert convexrelu.get_config()["memory_budget"] == get_config()["memory_budget"]

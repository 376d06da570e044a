"""A sampled pattern set grown by the local search for violating neurons
(``_SearchOracle``, ``solve_grown`` and the estimators' sampled fits;
docs/mathematics.rst §4.2, §8.5)."""

import warnings

import numpy as np
import pytest

from convexrelu import ConvexProgram, ConvexReLUClassifier, ConvexReLURegressor
from convexrelu.arrangements import sample_patterns
from convexrelu.certificates import dual_constraint, search_violators
from convexrelu.solvers import get_solver
from convexrelu.solvers._column_generation import _SearchOracle, solve_grown


@pytest.fixture
def problem():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3))
    y = np.abs(X[:, 0]) - np.maximum(X[:, 1], 0) + 0.1 * rng.standard_normal(40)
    pats = sample_patterns(X, 4, random_state=0, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.5, bias=True)
    return X, y, pats, prog


def test_grown_optimum_is_below_the_sampled_one(problem):
    X, y, pats, prog = problem
    base = get_solver("relu", tol=1e-8).solve(prog)
    sol = solve_grown(prog, tol=1e-8, max_searches=3, search_time=1.0, random_state=0)
    grown = sol.info["patterns"]
    assert sol.objective < base.objective * (1 - 1e-2)
    # the grown working set holds patterns the sample does not
    sampled = {bytes(r) for r in pats.packed}
    assert any(bytes(r) not in sampled for r in grown.packed)
    assert sol.V.shape == (grown.n_patterns, prog.d_aug)
    # the objective is that of the returned blocks over the grown patterns
    full = ConvexProgram(X, y, grown, loss="squared", alpha=0.5, bias=True)
    assert sol.objective == pytest.approx(full.objective(sol.V, sol.W, sol.output_bias),
                                          rel=1e-9)
    # labelled a heuristic, never a proof over the arrangement
    assert sol.info["patterns_exact"] is False
    assert "heuristic" in sol.info["certificate"]
    st = sol.info["search"]
    assert 1 <= st["n_searches"] <= 3 and st["n_found"] >= 1 and st["best_ratio"] > 1


@pytest.mark.slow
def test_stops_when_neither_the_sample_nor_the_search_finds_a_violator(problem):
    # search_tol=0: every violation the search finds counts (the default 1e-3 stops
    # below the search's resolution, test_search_violations_below_search_tol_start_no_round)
    X, y, pats, prog = problem
    sol = solve_grown(prog, tol=1e-8, max_searches=50, search_time=30.0, search_tol=0.0,
                      random_state=0)
    assert sol.status == "optimal" and sol.info["search"]["n_searches"] < 50
    # at the final dual point: the sample and a fresh search find nothing beyond tol
    lam = sol.dual - sol.dual.mean()
    Xa = pats.augment(X)
    best = search_violators(Xa, lam, free_bias=True, random_state=1)[0]
    assert best.value <= prog.alpha * (1 + 1e-4)
    assert dual_constraint(pats, X, lam, penalize_bias=False).value <= prog.alpha * (1 + 1e-4)


def test_no_search_budget_is_the_sampled_optimum(problem):
    X, y, pats, prog = problem
    base = get_solver("relu", tol=1e-8).solve(prog)
    sol = solve_grown(prog, tol=1e-8, max_searches=0, random_state=0)
    assert sol.info["search"]["n_searches"] == 0
    assert sol.objective == pytest.approx(base.objective, rel=1e-6)


def test_seeded_working_set_searches_first(problem):
    X, y, pats, prog = problem
    oracle = _SearchOracle(pats, X, beta=prog.alpha, penalize_bias=False, n_chunks=4,
                           max_searches=3, search_time=5.0, search_first=True,
                           random_state=0)
    lam = y - y.mean()
    M, cands = oracle.evaluate(lam)
    assert oracle.stats["n_searches"] == 1 and M > prog.alpha
    Xa = pats.augment(X)
    for v, g in cands:  # each candidate's value is attained by its gate
        assert v == pytest.approx(max(lam @ np.maximum(Xa @ g, 0),
                                      -lam @ np.maximum(Xa @ g, 0)), rel=1e-9)
    # confirm after a search prices the sample
    M2, _ = oracle.confirm(lam, prog.alpha)
    assert oracle._last == "listed" and oracle.stats["n_searches"] == 1


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_first_working_set_is_the_largest_gated_correlations(monkeypatch, loss):
    """A grown fit starts from the ``n_add`` sampled patterns of largest gated correlation
    ``||(X_aug^T D_i lambda_0)_pen||`` at the zero network's dual point (one product per
    block of patterns, no cone projection), the search first; brute force over the
    patterns, blocks smaller than the sample."""
    import convexrelu.solvers._column_generation as cg
    from convexrelu.certificates._gap import centred_dual, dual_point

    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 3))
    y = np.abs(X[:, 0]) - np.maximum(X[:, 1], 0) + 0.1 * rng.standard_normal(60)
    if loss == "logistic":
        y = np.sign(y - np.median(y))
    pats = sample_patterns(X, 30, random_state=0, bias=True)
    prog = ConvexProgram(X, y, pats, loss=loss, alpha=0.5, bias=True)
    lam, _ = dual_point(prog.loss, np.zeros(60), y, output_bias=centred_dual(prog))
    Xa = prog.X_aug
    score = [np.linalg.norm((Xa.T @ (prog.masks[:, i] * lam))[:3]) for i in range(30)]
    top = np.sort(np.argsort(score)[::-1][:5])
    seeds = cg._correlation_seeds(prog, 5, block_size=7)
    assert np.array_equal(seeds, pats.gates[:, top])
    first = []
    orig = cg._GateWorkingSet.add

    def spy(self, cands, beta, n_max):
        if not first:
            first.append(np.array([g for _, g in cands]).T)
        return orig(self, cands, beta, n_max)

    monkeypatch.setattr(cg._GateWorkingSet, "add", spy)
    sol = solve_grown(prog, tol=1e-8, n_add=5, max_searches=2, random_state=0)
    assert np.array_equal(first[0], pats.gates[:, top])
    assert sol.info["search"]["n_searches"] >= 1


def test_search_violations_below_search_tol_start_no_round(problem, monkeypatch):
    """A neuron the search finds joins the working set only above ``alpha (1 +
    search_tol)``; below, the loop stops (the sample priced as ever) and the largest ratio
    found is still reported. Here every search returns the sample optimum's most violating
    neuron, scaled to violate by exactly 5e-4."""
    import convexrelu.solvers._column_generation as cg
    from convexrelu.certificates._search import Candidate

    X, y, pats, prog = problem
    Xa = pats.augment(X)

    def fake_search(Xa_, lam, **kw):
        # the best neuron found, scaled so that its value (homogeneous in the
        # direction, which the oracle uses as a gate) is alpha (1 + 5e-4)
        c = real(Xa_, lam, **kw)[0]
        v = float(c.sign * lam @ np.maximum(Xa @ c.direction, 0.0))
        scale = prog.alpha * (1 + 5e-4) / v
        return [Candidate(value=v * scale, direction=c.direction * scale, sign=c.sign,
                          mask=c.mask, origin=c.origin)]

    import convexrelu.certificates._search as srch
    real = srch.search_violators
    monkeypatch.setattr(srch, "search_violators", fake_search)
    added = []
    orig = cg._GateWorkingSet.add

    def spy(self, cands, beta, n_max):
        n = orig(self, cands, beta, n_max)
        added.append(n)
        return n

    monkeypatch.setattr(cg._GateWorkingSet, "add", spy)
    coarse = solve_grown(prog, tol=1e-8, max_searches=3, search_tol=1e-3, random_state=0)
    assert coarse.info["search"]["n_found"] == 0
    assert coarse.info["search"]["best_ratio"] == pytest.approx(1 + 5e-4, rel=1e-9)
    n_coarse = len(added)
    added.clear()
    fine = solve_grown(prog, tol=1e-8, max_searches=3, search_tol=0.0, random_state=0)
    assert fine.info["search"]["n_found"] >= 1 and len(added) > n_coarse


def test_no_second_search_at_the_same_dual_point(problem, monkeypatch):
    """A search that found nothing to add, then the sample priced: the confirmation at
    the same dual point returns that search's answer instead of searching again (with
    another seed); at another dual point it searches."""
    import convexrelu.certificates._search as srch

    X, y, pats, prog = problem
    calls = []
    real = srch.search_violators

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(srch, "search_violators", counted)
    oracle = _SearchOracle(pats, X, beta=1e6, penalize_bias=False, n_chunks=4,
                           max_searches=5, search_time=None, search_first=True,
                           random_state=0)  # beta so large that nothing violates
    lam = y - y.mean()
    oracle.evaluate(lam)  # a search (nothing found), then the sample
    assert len(calls) == 1 and oracle._last == "listed"
    first = oracle._searched[1]
    assert oracle.confirm(lam, 1e6) == first and len(calls) == 1
    oracle.confirm(lam + 1e-3 * np.sign(lam), 1e6)
    assert len(calls) == 2


def test_grown_rejects_other_formulations(problem):
    X, y, pats, _ = problem
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.5, bias=True,
                         penalize_bias=True, formulation="gated_relu")
    with pytest.raises(ValueError, match="solve_grown handles the 'relu' formulation"):
        solve_grown(prog)


@pytest.fixture
def small_budget(monkeypatch):
    from convexrelu.estimators import _ConvexReLUBase

    monkeypatch.setattr(_ConvexReLUBase, "_MAX_SEARCHES", 3)


def _fallback_fit(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the sampling fallback's warning
        return ConvexReLURegressor(alpha=0.5 / 40, max_patterns=4, random_state=0,
                                   **kw).fit(X, y)


def test_auto_fallback_grows(problem, small_budget):
    X, y, _, _ = problem
    grown = _fallback_fit(X, y, certify=False)
    sampled = ConvexReLURegressor(alpha=0.5 / 40, patterns=grown.patterns_,
                                  certify=False).fit(X, y)
    assert grown.objective_ < sampled.objective_ * (1 - 1e-2)
    assert grown.objective_ == pytest.approx(
        grown.network_.objective(X, y, grown.alpha_), rel=1e-6)


def test_grown_fit_is_reproducible(problem, small_budget):
    X, y, _, _ = problem
    a, b = _fallback_fit(X, y, certify=False), _fallback_fit(X, y, certify=False)
    assert a.objective_ == b.objective_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.slow
def test_auto_fallback_certificate_is_heuristic(problem, small_budget):
    X, y, _, _ = problem
    cert = _fallback_fit(X, y).certificate_  # 4 x 10 < the arrangement: a local search
    assert cert.method == "local_search" and cert.heuristic
    assert not cert.optimal and not cert.exact


def test_explicit_int_patterns_do_not_grow(problem, small_budget):
    X, y, _, _ = problem
    a = ConvexReLURegressor(alpha=0.5 / 40, patterns=4, random_state=0, certify=False)
    # an int samples as sample_patterns(..., linear=True) does: the all-active gate first
    b = ConvexReLURegressor(alpha=0.5 / 40, patterns=sample_patterns(X, 4, random_state=0,
                                                                     bias=True, linear=True),
                            certify=False)
    assert a.fit(X, y).objective_ == pytest.approx(b.fit(X, y).objective_, rel=1e-9)


@pytest.mark.slow
def test_classifier_auto_fallback_grows(small_budget):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        grown = ConvexReLUClassifier(alpha=0.05, max_patterns=4, random_state=0,
                                     certify=False).fit(X, y)
    sampled = ConvexReLUClassifier(alpha=0.05, patterns=grown.patterns_,
                                   certify=False).fit(X, y)
    assert grown.objective_ < sampled.objective_


def test_grown_fit_starts_from_a_small_sample():
    """A grown default fit samples _GROWN_SAMPLE patterns, not max_patterns: the search
    finds the neurons that matter (the warning says how many it sampled)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    y = np.abs(X[:, 0]) + 0.1 * rng.standard_normal(40)
    est = ConvexReLURegressor(random_state=0, max_patterns=600, certify=False)
    est._GROWN_SAMPLE = 30  # an instance attribute: the class default stays
    with pytest.warns(UserWarning, match="over 30 sampled patterns instead, grown by a "
                                         "local search"):
        est.fit(X, y)
    assert est.patterns_.n_patterns <= 30 and not est.exact_patterns_
    relu = ConvexReLURegressor(random_state=0, max_patterns=600, certify=False,
                               solver="relu")
    with pytest.warns(UserWarning, match="over 600 sampled patterns instead\\. "):
        relu.fit(X, y)
    assert 30 < relu.patterns_.n_patterns <= 600  # distinct sampled patterns


def test_loop_searches_when_the_sample_has_no_violator_but_the_gap_is_open(problem):
    """A stall of the listed pricing (nothing it can add, gap above tol: e.g. the
    restricted solve's accuracy) is not the end when the oracle has another pricing: the loop asks
    it (the search) before stopping. Regression: a grown classifier on breast cancer
    stopped there without a single search (objective 0.208 against 0.143 with them)."""
    from convexrelu.certificates._gap import centred_dual
    from convexrelu.solvers._column_generation import (_GateWorkingSet, _inner_solver,
                                                       _run)

    X, y, pats, prog = problem
    asked = []

    def found(lam, seed):
        lam_c = lam - lam.mean()
        out = search_violators(prog.X_aug, lam_c, free_bias=True, top_k=8,
                               random_state=seed)
        return [(float(c.sign * lam @ np.maximum(prog.X_aug @ c.direction, 0.0)),
                 c.direction) for c in out]

    class ListedOnce:
        """The sample: violators at the first round; after it none it can add (its value
        stays above beta, as when its violators are already in the working set)."""
        exact = False
        calls = 0

        def evaluate(self, lam):
            self.calls += 1
            if self.calls == 1:
                cands = found(lam, 0)
                return max(v for v, _ in cands), cands
            return 1.5 * prog.alpha, []

        def confirm(self, lam, beta):
            asked.append(1)
            cands = found(lam, len(asked))
            return max((v for v, _ in cands), default=0.0), cands

    def make_program(p):
        return ConvexProgram(X, y, p, loss="squared", alpha=prog.alpha, bias=True)

    ws = _GateWorkingSet(make_program, prog.X_aug, X, True)
    _run(ws, ListedOnce(), loss=prog.loss, y=prog.y, alpha=prog.alpha,
         n_samples=prog.n_samples, output_bias=centred_dual(prog), free_bias=True,
         formulation="relu", inner=_inner_solver("auto", 1e-10), tol=1e-8, max_iter=6,
         n_add=8,
         verbose=0, polish=False)
    assert asked  # the open gap with nothing listed asked for a search


def test_patterns_added_per_round_shrink_with_the_width(monkeypatch):
    """A grown fit adds at most 300 // d_aug patterns per round (between 4 and 20), so its
    restricted programs stay small while the support is unknown: on 40 features the
    solve_grown_columns call gets n_add = 7 and no working set exceeds what two rounds
    add."""
    import convexrelu.solvers._column_generation as cg
    from convexrelu.estimators import _grown_n_add

    widths = (3, 11, 15, 16, 31, 65, 1000)
    assert [_grown_n_add(d) for d in widths] == [20, 20, 20, 18, 9, 4, 4]
    seen, sizes = {}, []
    orig_grown, orig_solve = cg.solve_grown_columns, cg._restricted_solve

    def spy_grown(progs, **kw):
        seen["n_add"] = kw["n_add"]
        return orig_grown(progs, **kw)

    def spy_solve(inner, prog, *a, **kw):
        sizes.append(prog.n_patterns)
        return orig_solve(inner, prog, *a, **kw)

    monkeypatch.setattr(cg, "solve_grown_columns", spy_grown)
    monkeypatch.setattr(cg, "_restricted_solve", spy_solve)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 40))
    y = np.maximum(X[:, 0], 0) - X[:, 1] + 0.1 * rng.standard_normal(80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ConvexReLURegressor(random_state=0, certify=False, max_iter=2).fit(X, y)
    assert seen["n_add"] == 7
    assert sizes and sizes[0] <= 2 * 7


def test_cell_gates_of_a_neuron_on_opposite_tied_rows():
    """A neuron on the hyperplanes of rows pointing opposite ways (duplicated or
    mirrored samples, as on integer-valued pixels): no cell holds all tied rows on one
    side, yet every adjacent cell's closed cone holds the neuron. Gates of such cells are
    returned (the loop used to drop these candidates and stall with a large violation)."""
    import convexrelu.solvers._column_generation as cg

    Xa = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.5],
                   [0.3, 1.0, -0.2], [0.0, -1.0, 1.0]])
    x = np.array([0.0, 1.0, 0.0])
    t = Xa @ x
    tie = np.abs(t) < 1e-12
    assert tie.sum() == 3
    gates = cg._cell_gates(Xa, x)
    assert 1 <= len(gates) <= 2
    for g in gates:
        tg = Xa @ g
        assert np.all(np.abs(tg) > 0)  # strictly inside a cell
        assert np.all(np.sign(tg[~tie]) == np.sign(t[~tie]))  # the cell of x's closure
        assert tg[0] * tg[1] < 0  # the mirrored rows on opposite sides
    # a neuron off every hyperplane is its own gate; all tied rows on one side works too
    assert len(cg._cell_gates(Xa, np.array([1.0, 1.0, 0.1]))) == 1
    assert len(cg._cell_gates(Xa[[0, 2, 3, 4, 5]], x)) == 2


def test_grown_working_set_takes_a_violator_on_degenerate_ties():
    """The gate working set adds a candidate whose neuron lies on several tied rows
    pointing different ways (it returned no new pattern before)."""
    import convexrelu.solvers._column_generation as cg

    rng = np.random.default_rng(0)
    X = rng.integers(1, 4, size=(30, 2)).astype(float) * rng.choice([-1.0, 1.0], (30, 1))
    # tied at x below: one far row against two near ones on the other side, so the step
    # along their normalised sum leaves a tied row at the wrong sign either way
    X = np.vstack([X, [[10.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]]])
    y = rng.standard_normal(33)
    pats = sample_patterns(X, 5, random_state=0, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.5, bias=True)

    def make_program(p):
        return ConvexProgram(X, y, p, loss="squared", alpha=0.5, bias=True)

    ws = cg._GateWorkingSet(make_program, prog.X_aug, X, True)
    x = np.array([0.0, 1.0, 0.0])  # on the hyperplane of every row with x_2 = 0
    assert np.sum(np.abs(prog.X_aug @ x) < 1e-12) == 3
    assert ws.add([(2.0, x)], 1.0, 4) >= 1
    G = ws.program().patterns.gates
    assert np.all(np.abs(prog.X_aug @ G) > 0)

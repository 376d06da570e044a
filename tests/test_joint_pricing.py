"""One pass over the masks for several dual points: the one-vs-rest classes and the
outputs of a fit priced together (``dual_constraints``, ``_PatternOracle.evaluate_many``,
the lock-step working-set loops of ``solve_grown_columns`` and the estimators'
sampled fits)."""

import time
import warnings

import numpy as np
import pytest

import convexrelu.solvers._column_generation as cg
from convexrelu import ConvexProgram, ConvexReLUClassifier, ConvexReLURegressor
from convexrelu.arrangements import enumerate_patterns, sample_patterns
from convexrelu.certificates import dual_constraint
from convexrelu.certificates._dual import PricingMultipliers, dual_constraints


@pytest.fixture
def sizes(monkeypatch):
    """The number of oracles each joint pricing call served, in call order."""
    seen = []
    orig = cg._PatternOracle.evaluate_many

    def spy(oracles, lams):
        seen.append(len(oracles))
        return orig(oracles, lams)

    monkeypatch.setattr(cg._PatternOracle, "evaluate_many", staticmethod(spy))
    return seen


def _lams(n, k, seed):
    rng = np.random.default_rng(seed)
    L = rng.standard_normal((n, k))
    return [L[:, j] - L[:, j].mean() for j in range(k)]


def _same_value(a, b):
    assert a.value == pytest.approx(b.value, rel=1e-12, abs=1e-14)
    assert a.lower == pytest.approx(b.lower, rel=1e-12, abs=1e-14)
    assert a.pattern_index == b.pattern_index and a.sign == b.sign
    assert (a.n_patterns_checked, a.n_refined) == (b.n_patterns_checked, b.n_refined)
    np.testing.assert_allclose(a.direction, b.direction, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bias, penalize_bias", [(True, False), (True, True), (False, True)])
def test_dual_constraints_equal_one_evaluation_per_dual_point(bias, penalize_bias):
    """Free, penalised and no hidden bias; small blocks (several per chunk): each result
    is the one ``dual_constraint`` gives for that dual point alone."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    pats = enumerate_patterns(X, bias=bias)
    assert pats.n_patterns > 4 * 37
    lams = _lams(20, 4, 1)
    joint = dual_constraints(pats, X, lams, penalize_bias=penalize_bias, block_size=37)
    assert len(joint) == 4
    for lam, dv in zip(lams, joint):
        _same_value(dv, dual_constraint(pats, X, lam, penalize_bias=penalize_bias,
                                        block_size=37))


def test_dual_constraints_keep_each_dual_points_multipliers_and_threshold():
    """Pricing mode: per dual point its own threshold and warm multipliers, updated as
    the separate evaluations update theirs; a second call with the warm bounds gives the
    separate second calls' results."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((60, 3))
    pats = sample_patterns(X, 300, random_state=0, bias=True)
    lams = _lams(60, 3, 3)
    ref = [dual_constraint(pats, X, lam, penalize_bias=False).value for lam in lams]
    thr = [0.5 * ref[0], 2.0 * ref[1], 0.9 * ref[2]]  # a violation, none, a violation
    mj = [PricingMultipliers() for _ in lams]
    ms = [PricingMultipliers() for _ in lams]
    for rnd in range(2):
        pts = [lam + 0.01 * rnd * np.roll(lam, 1) for lam in lams]
        pts = [p - p.mean() for p in pts]
        joint = dual_constraints(pats, X, pts, penalize_bias=False, multipliers=mj,
                                 thresholds=thr, block_size=64)
        for j, p in enumerate(pts):
            alone = dual_constraint(pats, X, p, penalize_bias=False, multipliers=ms[j],
                                    threshold=thr[j], block_size=64)
            _same_value(joint[j], alone)
            assert mj[j].rows.keys() == ms[j].rows.keys()
            for key in ms[j].rows:
                np.testing.assert_allclose(mj[j].rows[key], ms[j].rows[key], rtol=1e-10,
                                           equal_nan=True)
    # the one without a violation is bounded by its threshold, the others exceed theirs
    assert joint[1].value <= thr[1] and joint[0].value > thr[0] and joint[2].value > thr[2]


def test_dual_constraints_reject_a_dual_point_of_the_wrong_length():
    X = np.random.default_rng(0).standard_normal((20, 2))
    pats = enumerate_patterns(X, bias=True)
    with pytest.raises(ValueError, match="one per sample"):
        dual_constraints(pats, X, [np.zeros(20), np.zeros(19)])


@pytest.mark.parametrize("gated", [False, True])
def test_pattern_oracles_priced_together_equal_alone(gated):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((70, 4))
    pats = sample_patterns(X, 200, random_state=1, bias=True)
    lams = _lams(70, 3, 5)
    make = [lambda: cg._PatternOracle(pats, X, penalize_bias=False, n_chunks=5, gated=gated,
                                      beta=0.3) for _ in lams]
    together = [m() for m in make]
    alone = [m() for m in make]
    assert len({o.joint_key() for o in together}) == 1
    for _ in range(2):  # the second time with the multipliers the first one kept
        res = cg._PatternOracle.evaluate_many(together, lams)
        for o, lam, (M, cands) in zip(alone, lams, res):
            M1, cands1 = o.evaluate(lam)
            assert M == pytest.approx(M1, rel=1e-12)
            assert [i for _, i in cands] == [i for _, i in cands1]
        lams = [lam + 0.02 * np.roll(lam, 3) for lam in lams]
        lams = [lam - lam.mean() for lam in lams]
    if not gated:
        for a, b in zip(together, alone):
            assert a.multipliers.rows.keys() == b.multipliers.rows.keys()
        # loops at different rounds priced together: each oracle lists its candidates as
        # it would alone (the first pass each chunk's best, the later every violator)
        late, fresh = make[0](), make[1]()
        late.evaluate(lams[0])
        late_alone, fresh_alone = make[0](), make[1]()
        late_alone.evaluate(lams[0])
        assert late.every_violator and not fresh.every_violator
        res = cg._PatternOracle.evaluate_many([fresh, late], [lams[1], lams[0]])
        for (M, cands), o, lam in zip(res, (fresh_alone, late_alone), (lams[1], lams[0])):
            M1, cands1 = o.evaluate(lam)
            assert M == pytest.approx(M1, rel=1e-12)
            assert [i for _, i in cands] == [i for _, i in cands1]


def test_drive_answers_the_loops_requests_together_and_keeps_their_own_time(sizes):
    """Two loops price the same patterns and a third other patterns: the first round
    answers the two in one joint call, the other alone; a loop that finishes early stops
    asking; each clock counts its own loop's steps and pricing, not the other loops'."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((30, 2))
    pats = enumerate_patterns(X, bias=True)
    other = sample_patterns(X, 20, random_state=0, bias=True)
    o1, o2 = (cg._PatternOracle(pats, X, penalize_bias=False, n_chunks=2, gated=False)
              for _ in range(2))
    o3 = cg._PatternOracle(other, X, penalize_bias=False, n_chunks=2, gated=False)
    lams = _lams(30, 3, 7)

    def loop(oracle, lam, rounds, nap):
        vals = []
        for _ in range(rounds):
            time.sleep(nap)
            M, _ = yield from oracle.evaluate_steps(lam)
            vals.append(M)
        return vals

    clocks = [cg._Clock() for _ in range(3)]
    out = cg._drive([loop(o1, lams[0], 2, 0.0), loop(o2, lams[1], 1, 0.0),
                     loop(o3, lams[2], 2, 0.2)], clocks)
    spent = [c() for c in clocks]
    assert sorted(sizes) == [1, 1, 1, 2]  # round 1: {o1, o2} and {o3}; round 2: o1, o3
    for o, lam, vals, r in zip((o1, o2, o3), lams, out, (2, 1, 2)):
        assert len(vals) == r
        assert vals[0] == pytest.approx(o.evaluate(lam)[0], rel=1e-12)
    # the third loop slept 0.4 s in its own steps: on its clock, not on the others'
    assert spent[2] >= 0.4 and spent[0] < 0.3 and spent[1] < 0.3


def _three_class_problem():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((90, 6))
    y = np.argmax(X[:, :3] + 0.3 * rng.standard_normal((90, 3)), axis=1)
    return X, y


@pytest.mark.slow  # moved to the slow step: the default run took 339 s in CI
def test_solve_grown_columns_equal_solve_grown_per_program():
    """Programs of the same sampled patterns solved in lock-step: each result equals the
    program's own solve_grown (objective, status, grown support)."""
    X, y = _three_class_problem()
    pats = sample_patterns(X, 40, random_state=0, bias=True)
    progs = [ConvexProgram(X, np.where(y == c, 1.0, -1.0), pats, loss="logistic", alpha=0.05,
                           bias=True) for c in range(3)]
    kw = dict(tol=1e-8, n_add=6, max_searches=3, search_time=None, random_state=0)
    joint = cg.solve_grown_columns(progs, **kw)
    for prog, sol in zip(progs, joint):
        alone = cg.solve_grown(prog, **kw)
        assert sol.status == alone.status
        assert sol.objective == pytest.approx(alone.objective, rel=1e-9)
        assert sol.info["patterns"].n_patterns == alone.info["patterns"].n_patterns
        assert sol.info["search"]["n_searches"] == alone.info["search"]["n_searches"]
        assert "heuristic" in sol.info["certificate"]


def test_solve_grown_columns_seeds_every_program_in_one_pass():
    X, y = _three_class_problem()
    pats = sample_patterns(X, 40, random_state=0, bias=True)
    progs = [ConvexProgram(X, np.where(y == c, 1.0, -1.0), pats, loss="logistic", alpha=0.05,
                           bias=True) for c in range(3)]
    joint = cg._correlation_seeds_columns(progs, 5, block_size=7)
    for prog, seeds in zip(progs, joint):
        assert np.array_equal(seeds, cg._correlation_seeds(prog, 5))


@pytest.mark.slow  # default-run time (294 s in CI on 2026-12-05, the limit 300)
def test_one_vs_rest_fit_prices_all_classes_in_one_pass(sizes, monkeypatch):
    """A default (sampled, grown) one-vs-rest fit: the sample's pricing serves all classes
    at once, and the fit equals the one whose classes are solved one after the other."""
    X, y = _three_class_problem()
    kw = dict(max_patterns=40, random_state=0, certify=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joint = ConvexReLUClassifier(**kw).fit(X, y)
        assert joint.exact_patterns_ is False and sizes and max(sizes) == 3
        monkeypatch.setattr(ConvexReLUClassifier, "_joint_columns",
                            lambda self, X, Y, *a: [None] * Y.shape[1])
        sizes.clear()
        alone = ConvexReLUClassifier(**kw).fit(X, y)
    assert sizes and max(sizes) == 1
    assert joint.objective_ == pytest.approx(alone.objective_, rel=1e-9)
    np.testing.assert_allclose(joint.decision_function(X), alone.decision_function(X),
                               rtol=1e-6, atol=1e-8)


def test_multi_output_regression_prices_all_outputs_in_one_pass(sizes):
    rng = np.random.default_rng(9)
    X = rng.standard_normal((80, 6))
    Y = np.column_stack([np.maximum(X[:, 0], 0), X[:, 1] - np.abs(X[:, 2])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = ConvexReLURegressor(max_patterns=40, random_state=0, certify=False).fit(X, Y)
    assert est.exact_patterns_ is False and max(sizes) == 2
    assert est.predict(X).shape == (80, 2)


@pytest.mark.slow  # moved to the slow step: the default run took 339 s in CI
def test_relu_solver_solve_columns_equal_solve_per_program(sizes):
    """The working-set loops of one-vs-rest programs over listed patterns, in lock-step:
    each solution equals the program's own solve (objective, status, certificate), and
    the pricing calls served several programs at once."""
    from convexrelu.solvers import get_solver

    X, y = _three_class_problem()
    X = X[:25, :3]  # three features: the listed patterns priced (not the 2-D sweep)
    y = y[:25]
    pats = enumerate_patterns(X, bias=True)
    progs = [ConvexProgram(X, np.where(y == c, 1.0, -1.0), pats, loss="logistic", alpha=0.2,
                           bias=True) for c in range(3)]
    solver = get_solver("relu", tol=1e-5)
    joint = solver.solve_columns(progs)
    assert max(sizes) == 3
    for prog, sol in zip(progs, joint):
        alone = solver.solve(prog)
        assert sol.status == alone.status == "optimal"
        assert sol.objective == pytest.approx(alone.objective, rel=1e-9)
        assert sol.info["rel_gap"] <= 1e-5 and sol.info["method"] == "working_set"
    with pytest.raises(ValueError, match="one \\(or None\\) per program"):
        solver.solve_columns(progs, [None])
    with pytest.raises(TypeError, match="non-empty list of ConvexProgram"):
        solver.solve_columns([])


@pytest.mark.slow  # moved to the slow step: the default run took 339 s in CI
def test_exact_one_vs_rest_fit_prices_all_classes_in_one_pass(sizes, monkeypatch):
    """Listed patterns: the classes' working-set loops share every pricing of the pattern
    set, and the fit equals the one solved class by class."""
    X, y = _three_class_problem()
    X = X[:25, :3]
    y = y[:25]
    kw = dict(alpha=0.2, patterns="exact", max_patterns=50_000, random_state=0,
              certify=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joint = ConvexReLUClassifier(**kw).fit(X, y)
        assert joint.exact_patterns_ is True and max(sizes) == 3
        monkeypatch.setattr(ConvexReLUClassifier, "_joint_columns",
                            lambda self, X, Y, *a: [None] * Y.shape[1])
        alone = ConvexReLUClassifier(**kw).fit(X, y)
    assert joint.objective_ == pytest.approx(alone.objective_, rel=1e-8)

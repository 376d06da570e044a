"""Column generation (docs/mathematics.rst §8.5) against the full cvxpy program, and the solver
registry."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from convexrelu.arrangements import enumerate_patterns, sample_patterns
from convexrelu.program import ConvexProgram
from convexrelu.solvers import (SOLVERS, BaseSolver, ColumnGenerationSolver, CvxpySolver,
                                FistaSolver, ReluFastSolver, column_generation, get_solver)

RTOL = 1e-6  # between converged solvers (STYLE rule 9)


def _data(rng, n, d, loss):
    X = rng.standard_normal((n, d))
    y = np.sin(2 * X[:, 0]) + 0.3 * rng.standard_normal(n)
    if loss == "logistic":
        y = np.where(y > 0, 1.0, -1.0)
    return X, y


def _reference(prog):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # an inaccurate reference is a bug
        return CvxpySolver(tol=1e-10).solve(prog)


# (features, hidden bias, penalised hidden bias): the 2-D cases exercise the exact sweep
# oracle, the 3-D and penalised cases the streamed pattern-set oracle
CASES = [(2, True, False), (2, False, False), (2, True, True), (3, False, False)]


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("d, bias, penalize_bias", CASES)
def test_same_optimum_as_full_program(rng, loss, d, bias, penalize_bias):
    X, y = _data(rng, 9, d, loss)
    alpha = 0.1 if loss == "squared" else 0.05
    prog = ConvexProgram(X, y, enumerate_patterns(X, bias=bias), loss=loss, alpha=alpha,
                         bias=bias, penalize_bias=penalize_bias)
    ref = _reference(prog)
    with warnings.catch_warnings():
        # logistic: Clarabel's exponential-cone multipliers limit the certified gap to
        # ~1e-5 (the objective still matches); that stall is reported by a warning
        warnings.simplefilter("ignore" if loss == "logistic" else "error", ConvergenceWarning)
        sol = ColumnGenerationSolver(tol=1e-7).solve(prog)
    assert abs(sol.objective - ref.objective) <= RTOL * abs(ref.objective)
    # the certificate closes over all patterns, and the solution is sparse and feasible
    assert 0 <= sol.info["rel_gap"] <= (1e-7 if loss == "squared" else 1e-4)
    assert sol.info["patterns_exact"] is True
    assert sol.V.shape == (prog.n_patterns, prog.d_aug)
    assert len(sol.info["support"]) < prog.n_patterns
    assert prog.max_violation(sol.V, sol.W) <= 1e-9
    assert sol.objective == pytest.approx(prog.objective(sol.V, sol.W, sol.output_bias),
                                          rel=1e-12)


def test_function_without_listing_patterns_2d_bias(rng):
    X, y = _data(rng, 12, 2, "squared")
    full = ConvexProgram(X, y, enumerate_patterns(X, bias=True), loss="squared", alpha=0.05,
                         bias=True)
    ref = _reference(full)
    sol, used = column_generation(X, y, alpha=0.05, tol=1e-6)
    assert used.method == "gates" and used.n_patterns < full.n_patterns
    assert sol.V.shape == (used.n_patterns, 3)
    assert abs(sol.objective - ref.objective) <= RTOL * ref.objective
    assert sol.info["rel_gap"] <= 1e-6
    # the returned blocks evaluated on their own pattern set give the reported objective
    own = ConvexProgram(X, y, used, loss="squared", alpha=0.05, bias=True)
    own_objective = own.objective(sol.V, sol.W, sol.output_bias)
    assert own_objective == pytest.approx(sol.objective, rel=1e-12)


def test_function_listed_patterns_and_gated(rng):
    X, y = _data(rng, 8, 3, "squared")
    sol, pats = column_generation(X, y, alpha=0.1, bias=False, tol=1e-7)
    ref = _reference(ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=False))
    assert pats.exact and abs(sol.objective - ref.objective) <= RTOL * ref.objective
    gated = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=False,
                          formulation="gated_relu")
    gsol = ColumnGenerationSolver(tol=1e-7).solve(gated)
    gref = _reference(gated)
    assert abs(gsol.objective - gref.objective) <= RTOL * gref.objective


def test_sampled_patterns_are_not_called_exact(rng):
    X, y = _data(rng, 10, 2, "squared")
    pats = sample_patterns(X, 30, random_state=0, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True)
    sol = ColumnGenerationSolver(tol=1e-7).solve(prog)
    assert sol.info["patterns_exact"] is False and "not a proof" in sol.info["certificate"]
    assert abs(sol.objective - _reference(prog).objective) <= RTOL * sol.objective


def test_warm_start_seeds_the_working_set(rng):
    X, y = _data(rng, 9, 2, "squared")
    prog = ConvexProgram(X, y, enumerate_patterns(X, bias=True), loss="squared", alpha=0.1,
                         bias=True)
    cold = ColumnGenerationSolver(tol=1e-7).solve(prog)
    warm = ColumnGenerationSolver(tol=1e-7).solve(prog, warm_start=cold)
    assert warm.info["rounds"] <= cold.info["rounds"]
    assert warm.objective == pytest.approx(cold.objective, rel=RTOL)


def test_convergence_warning_with_remedy(rng):
    X, y = _data(rng, 12, 2, "squared")
    prog = ConvexProgram(X, y, enumerate_patterns(X, bias=True), loss="squared", alpha=0.01,
                         bias=True)
    with pytest.warns(ConvergenceWarning, match="Increase max_iter \\(rounds; now 1\\)"):
        sol = ColumnGenerationSolver(max_iter=1, n_add=1).solve(prog)
    assert sol.status == "max_iter_reached" and sol.info["rel_gap"] > 1e-6


def test_zero_network_above_alpha_max(rng):
    X, y = _data(rng, 8, 2, "squared")
    prog = ConvexProgram(X, y, enumerate_patterns(X, bias=True), loss="squared", alpha=1e3,
                         bias=True)
    sol = ColumnGenerationSolver().solve(prog)
    assert sol.status == "optimal" and not np.any(sol.V) and not np.any(sol.W)
    assert sol.output_bias == pytest.approx(np.mean(y), rel=1e-12)


def test_input_errors(rng):
    X, y = _data(rng, 6, 2, "squared")
    pats = enumerate_patterns(X, bias=False)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=False)
    with pytest.raises(ValueError, match="The 'tol' parameter of ColumnGenerationSolver must "
                                         "be a float in the range \\(0.0, 1.0\\). Got 0 instead"):
        ColumnGenerationSolver(tol=0).solve(prog)
    with pytest.raises(ValueError, match="The 'max_iter' parameter of ColumnGeneration"):
        ColumnGenerationSolver(max_iter=0).solve(prog)
    with pytest.raises(ValueError, match="The 'tol' parameter of column_generation"):
        column_generation(X, y, alpha=0.1, tol=2.0)
    with pytest.raises(ValueError, match="inner='column_generation' would recurse"):
        ColumnGenerationSolver(inner="column_generation").solve(prog)
    with pytest.raises(ValueError, match="unknown solver 'nope'; valid names are"):
        ColumnGenerationSolver(inner="nope").solve(prog)
    multi = ConvexProgram(X, np.c_[y, y], pats, loss="squared", alpha=0.1, bias=False)
    with pytest.raises(ValueError, match="handles one output; the program has 2"):
        ColumnGenerationSolver().solve(multi)
    with pytest.raises(ValueError, match="patterns must be 'exact' or an ActivationPatterns"):
        column_generation(X, y, alpha=0.1, bias=False, patterns="all")


def test_registry():
    expected = {"cvxpy": CvxpySolver, "fista": FistaSolver, "relu": ReluFastSolver,
                "column_generation": ColumnGenerationSolver}
    assert set(expected) == set(SOLVERS)
    for name, cls in expected.items():
        solver = get_solver(name, tol=1e-7, max_iter=7, verbose=False)
        assert type(solver) is cls and solver.tol == 1e-7
    # parameters a solver does not take raise, naming those it takes
    with pytest.raises(ValueError, match="does not take 'n_add'; its parameters are"):
        get_solver("fista", n_add=7)
    assert get_solver("column_generation", max_iter=7).max_iter == 7
    inst = ColumnGenerationSolver()
    assert get_solver(inst) is inst and isinstance(inst, BaseSolver)
    with pytest.raises(ValueError, match="set them on the instance"):
        get_solver(inst, tol=1e-3)
    msg = ("unknown solver 'nope'; valid names are \\['column_generation', 'cvxpy', 'fista', "
           "'relu'\\]")
    with pytest.raises(ValueError, match=msg):
        get_solver("nope")


def test_estimator_accepts_registered_names(rng):
    from convexrelu.estimators import ConvexReLURegressor

    X, y = _data(rng, 10, 2, "squared")
    ref = ConvexReLURegressor(alpha=0.1, patterns="exact").fit(X, y)
    cg = ConvexReLURegressor(alpha=0.1, patterns="exact", solver="column_generation").fit(X, y)
    assert cg.objective_ == pytest.approx(ref.objective_, rel=RTOL)
    with pytest.raises(ValueError, match="The 'solver' parameter of ConvexReLURegressor"):
        ConvexReLURegressor(solver="nope").fit(X, y)


# --------------------------------------------------------------------------- fast inner
def test_facet_rows_cut_out_the_same_cone(rng):
    from scipy.optimize import linprog

    from convexrelu.solvers._cg_inner import facet_rows

    X = rng.uniform(-1, 1, (40, 2))
    pats = enumerate_patterns(X, bias=True)
    Xa = pats.augment(X)
    masks = pats.masks
    picks = rng.choice(pats.n_patterns, 25, replace=False)
    n_kept = []
    for i in picks:
        rows = facet_rows(Xa, masks[:, i], pats.gates[:, i])
        n_kept.append(rows.size)
        A = np.where(masks[:, i], 1.0, -1.0)[:, None] * Xa
        # min a_j^T v over {a_F v >= 0, |v|_inf <= 1} is >= 0 for every dropped row j
        for j in np.setdiff1d(np.arange(X.shape[0]), rows):
            res = linprog(A[j], A_ub=-A[rows], b_ub=np.zeros(rows.size), bounds=[(-1, 1)] * 3,
                          method="highs")
            assert res.status == 0 and res.fun >= -1e-9
    assert np.mean(n_kept) < 8  # a 2-D cell has few sides


@pytest.mark.parametrize("fit_output_bias", [True, False])
def test_compressed_inner_matches_uncompressed_and_cvxpy(rng, fit_output_bias):
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.solvers._cg_inner import CompressedReluSolver

    X, y = _data(rng, 60, 2, "squared")
    G = rng.standard_normal((3, 12))
    prog = ConvexProgram(X, y, ActivationPatterns.from_gates(X, G, bias=True),
                         loss="squared", alpha=0.5, bias=True, fit_output_bias=fit_output_bias)
    ref = _reference(prog)
    sols = {(c, r): CompressedReluSolver(compress=c, reduce_rows=r).solve(prog)
            for c in (True, False) for r in (True, False)}
    base = sols[(False, False)].objective
    for (c, r), s in sols.items():
        assert abs(s.objective - base) <= 1e-8 * base, (c, r)
        assert prog.max_violation(s.V, s.W) <= 1e-9
        if r:
            assert s.info["rows_kept"] < s.info["rows_total"] / 4
    assert abs(base - ref.objective) <= 1e-8 * ref.objective


def test_compressed_inner_is_homogeneous_in_the_targets(rng):
    """y and alpha scaled by 1e4 (targets in the thousands, as make_regression's): the
    solution scales by 1e4 and the status stays optimal (the solve scales y itself)."""
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.solvers._cg_inner import CompressedReluSolver

    X, y = _data(rng, 60, 2, "squared")
    G = rng.standard_normal((3, 12))
    pats = ActivationPatterns.from_gates(X, G, bias=True)
    a = CompressedReluSolver().solve(ConvexProgram(X, y, pats, loss="squared", alpha=0.5,
                                                   bias=True))
    b = CompressedReluSolver().solve(ConvexProgram(X, 1e4 * y, pats, loss="squared",
                                                   alpha=0.5e4, bias=True))
    assert a.status == b.status == "optimal"
    assert abs(b.objective - 1e8 * a.objective) <= 1e-7 * 1e8 * a.objective
    np.testing.assert_allclose(b.V, 1e4 * a.V, atol=1e-5 * 1e4 * np.abs(a.V).max())


def test_inner_readds_rows_missing_from_the_facets(rng):
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.solvers._cg_inner import CompressedReluSolver

    X, y = _data(rng, 50, 2, "squared")
    G = rng.standard_normal((3, 8))
    prog = ConvexProgram(X, y, ActivationPatterns.from_gates(X, G, bias=True),
                         loss="squared", alpha=0.2, bias=True)
    solver = CompressedReluSolver()
    good = solver.solve(prog)
    # corrupt the facet cache: keep one row per block, the check over all rows repairs it
    for key in list(solver._facets):
        solver._facets[key] = solver._facets[key][:1]
    fixed = solver.solve(prog)
    # rounding-level only (the solver re-adds rows violated beyond 1e-8 relative)
    scale = np.abs(np.vstack([fixed.V, fixed.W])).max() * np.abs(prog.X_aug).max()
    assert prog.max_violation(fixed.V, fixed.W) <= 1e-8 * scale
    assert fixed.info["rows_kept"] > 2 * prog.n_patterns  # rows were re-added
    assert fixed.objective == pytest.approx(good.objective, rel=1e-8)


@pytest.mark.slow  # default-run time (294 s in CI on 2026-12-05, the limit 300)
def test_auto_inner_is_fast_solver_for_squared_loss(rng):
    from convexrelu.solvers._cg_inner import CompressedReluSolver
    from convexrelu.solvers._column_generation import _inner_solver

    X, y = _data(rng, 40, 2, "squared")
    full = ConvexProgram(X, y, enumerate_patterns(X, bias=True), loss="squared", alpha=0.05,
                         bias=True)
    ref = _reference(full)
    inner = _inner_solver("auto", 1e-10)
    assert isinstance(inner._fast, CompressedReluSolver)
    sol, used = column_generation(X, y, alpha=0.05, tol=1e-6, inner=inner)
    assert abs(sol.objective - ref.objective) <= RTOL * ref.objective
    assert sol.info["rel_gap"] <= 1e-6 and len(inner._fast._facets) > 0


# --------------------------------------------------------------------------- top-k sweep, polish
@pytest.mark.parametrize("bias", [True, False])
def test_sweep_pricer_matches_brute_force_over_listed_patterns(rng, bias):
    from convexrelu.certificates import dual_constraint
    from convexrelu.certificates._sweep import SweepPricer

    X = rng.uniform(-1, 1, (14, 2))
    lam = rng.standard_normal(14)
    lam -= lam.mean()
    pats = enumerate_patterns(X, bias=bias)
    brute = dual_constraint(pats, X, lam, penalize_bias=False).value
    pricer = SweepPricer(X, bias=bias)
    values, U, _ = pricer.per_centre(lam)
    theta = np.linspace(0, 2 * np.pi, 20001)
    grid = np.stack([np.cos(theta), np.sin(theta)])
    for k in range(values.size):  # each centre: an independent fine angular grid
        F = np.abs(lam @ np.maximum((X - pricer.centres[k]) @ grid, 0.0))
        # (the maximum can sit at a kink of the piecewise-linear profile: first-order grid error)
        assert F.max() - 1e-12 <= values[k] <= F.max() * (1 + 1e-3) + 1e-9
    M, cands = pricer.top_k(lam, 5)
    assert M == pytest.approx(brute, rel=1e-9)
    assert 1 <= len(cands) <= 5 and cands[0][0] == pytest.approx(M, rel=1e-12)
    assert all(a[0] >= b[0] for a, b in zip(cands, cands[1:]))
    Xa = np.hstack([X, np.ones((14, 1))]) if bias else X
    for v, x in cands:  # every listed neuron attains its value, which is <= M
        if np.isfinite(x).all() and np.linalg.norm(x[:2]) > 0 and v < M * (1 + 1e-12) and \
                not (bias and v == pytest.approx(np.linalg.norm(X.T @ lam))):
            attained = abs(lam @ np.maximum(Xa @ x, 0.0)) / np.linalg.norm(x[:2])
            assert attained == pytest.approx(v, rel=1e-9, abs=1e-12)
        assert v <= brute * (1 + 1e-9)
    assert pricer.top_k(lam, 5, threshold=M)[1] == []


def test_polish_reaches_the_optimum_and_never_undercuts_it(rng):
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu._polish import polish_support
    from convexrelu.solvers._cg_inner import CompressedReluSolver

    X, y = _data(rng, 60, 2, "squared")
    G = rng.standard_normal((3, 14))
    prog = ConvexProgram(X, y, ActivationPatterns.from_gates(X, G, bias=True),
                         loss="squared", alpha=0.5, bias=True)
    ref = _reference(prog)
    rough = CompressedReluSolver(tol=1e-6).solve(prog)
    V, W, c0 = polish_support(prog, rough.V, rough.W, rough.output_bias)
    p_ref = prog.objective(ref.V, ref.W, ref.output_bias)
    p_pol = prog.objective(V, W, c0)
    assert prog.max_violation(V, W) <= 1e-12
    # feasible, so never below the optimum (up to the reference's own 1e-10 accuracy)
    assert p_pol >= p_ref * (1 - 1e-10)
    assert p_pol - p_ref <= 1e-9 * p_ref
    assert prog.objective(rough.V, rough.W, rough.output_bias) - p_ref > p_pol - p_ref


@pytest.mark.slow  # moved to the slow step: the default run took 339 s in CI
def test_reported_gap_is_never_below_the_true_suboptimality(rng):
    from convexrelu.certificates import dual_constraint
    from convexrelu.certificates._gap import best_dual_scale, dual_point

    X, y = _data(rng, 25, 2, "squared")
    full = ConvexProgram(X, y, enumerate_patterns(X, bias=True), loss="squared", alpha=0.05,
                         bias=True)
    p_ref = _reference(full).objective * full.n_samples
    for tol in (1e-3, 1e-8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sol, used = column_generation(X, y, alpha=0.05, tol=tol)
        prog = ConvexProgram(X, y, used, loss="squared", alpha=0.05, bias=True)
        P = prog.objective(sol.V, sol.W, sol.output_bias) * prog.n_samples
        assert sol.objective * prog.n_samples == pytest.approx(P, rel=1e-12)
        assert sol.gap * prog.n_samples >= P - p_ref - 1e-9 * p_ref
        # the final dual point, certified independently over the listed arrangement
        z = prog.predict(sol.V, sol.W, sol.output_bias)
        lam, _ = dual_point(prog.loss, z, y, output_bias=True)
        M = dual_constraint(full.patterns, X, lam, penalize_bias=False).value
        _, dual = best_dual_scale(prog.loss, lam, y, 0.05 / M)
        assert dual <= p_ref * (1 + 1e-9)
        if tol == 1e-8:
            assert (P - dual) / P <= 1e-7


@pytest.mark.slow  # default-run time (CI on a loaded 2-core machine)
def test_inner_cvxpy_inaccurate_warning_does_not_reach_the_user(monkeypatch):
    """cvxpy warns "Solution may be inaccurate" on some restricted logistic solves (seen on
    breast cancer); the working-set loop judges the point by its certificate, so the
    warning is not passed on to the user."""
    from convexrelu.solvers._column_generation import _AutoInner

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    y = (X[:, 0] > 0).astype(float)
    pats = enumerate_patterns(X, bias=True)
    prog = ConvexProgram(X, y, pats, loss="logistic", alpha=0.5, bias=True)
    real = CvxpySolver.solve

    def noisy(self, program, warm_start=None):
        warnings.warn("Solution may be inaccurate. Try another solver, adjusting the solver "
                      "settings, or solve with verbose=True for more information.")
        return real(self, program, warm_start)

    monkeypatch.setattr(CvxpySolver, "solve", noisy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sol = _AutoInner(1e-6).solve(prog)
    assert np.isfinite(sol.objective) and sol.info["rel_gap"] < 1e-3
    assert not [w for w in caught if "inaccurate" in str(w.message)]


def test_margin_rows_are_the_smallest_normalised_margins(rng):
    """margin_rows: the nonzero rows of the m smallest margins ``a_j^T gate / ||a_j||``,
    ties taken in index order (a stable sort's first m), sorted; every nonzero row when
    there are at most m."""
    from convexrelu.solvers._cg_inner import margin_rows

    for n, d, scale, zero in ((60, 3, None, True), (500, 5, None, True), (400, 4, 2.0, True),
                              (300, 4, None, False), (300, 3, 2.0, False)):
        X = rng.standard_normal((n, d))
        if scale is not None:  # integer data: many equal margins
            X = np.round(scale * X)
        X[np.all(X == 0, axis=1)] = 1.0
        if zero:
            X[::9] = 0.0
        gate = rng.standard_normal(d) if scale is None else np.round(3 * rng.standard_normal(d))
        mask = X @ gate > 0
        A = np.where(mask, 1.0, -1.0)[:, None] * X
        rn = np.linalg.norm(A, axis=1)
        nz = np.flatnonzero(rn > 0)
        marg = (A[nz] @ gate) / rn[nz]
        for m in (None, 7, 1):
            mm = max(4 * d, 32) if m is None else m
            ref = np.sort(nz[np.argsort(marg, kind="stable")[:mm]])
            assert np.array_equal(margin_rows(X, mask, gate, n_rows=m), ref)
            # the rows' norms given (a solve's patterns share them): the same rows
            assert np.array_equal(margin_rows(X, mask, gate, n_rows=m,
                                              norms=np.linalg.norm(X, axis=1)), ref)
    assert np.array_equal(margin_rows(X[:10], mask[:10], gate, n_rows=50),
                          np.flatnonzero(np.any(X[:10] != 0, axis=1)))
    assert margin_rows(X, mask, gate, n_rows=0).size == 0
    bad = np.full(X.shape[1], np.nan)  # margins that are not numbers: no error
    assert margin_rows(X, mask, bad, n_rows=5).size == 5


@pytest.mark.parametrize("penalize_bias", [False, True])
def test_margin_rows_give_the_all_rows_optimum(rng, penalize_bias):
    """Beyond d_aug = 3 each block starts from its margin rows; the check over every row
    re-adds what the solution violates, so the optimum is the one over all rows."""
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.solvers._cg_inner import CompressedReluSolver, margin_rows

    X = rng.standard_normal((120, 5))
    y = np.maximum(X[:, 0] + X[:, 1], 0) - np.abs(X[:, 2]) + 0.1 * rng.standard_normal(120)
    G = rng.standard_normal((6, 10))
    prog = ConvexProgram(X, y, ActivationPatterns.from_gates(X, G, bias=True),
                         loss="squared", alpha=0.5, bias=True, penalize_bias=penalize_bias)
    full = CompressedReluSolver(reduce_rows=False).solve(prog)
    fast = CompressedReluSolver().solve(prog)
    assert abs(fast.objective - full.objective) <= 1e-8 * full.objective
    assert prog.max_violation(fast.V, fast.W) <= 1e-9
    assert fast.info["rows_kept"] < full.info["rows_kept"]
    rows = margin_rows(prog.X_aug, prog.masks[:, 0], prog.patterns.gates[:, 0], n_rows=7)
    marg = np.where(prog.masks[:, 0], 1, -1) * (prog.X_aug @ prog.patterns.gates[:, 0]) \
        / np.linalg.norm(prog.X_aug, axis=1)
    assert rows.size == 7 and np.max(marg[rows]) <= np.min(np.delete(marg, rows)) + 1e-15


def test_auto_inner_avoids_a_cvxpy_problem_beyond_the_memory_budget(rng):
    """A non-quadratic restricted program whose cvxpy problem would exceed the memory
    budget goes to the augmented Lagrangian (linear in n), not to a raw MemoryError
    inside cvxpy (make_classification(20000, 20) asked for 5.1 GiB); the same optimum."""
    import convexrelu
    from convexrelu.arrangements import sample_patterns
    from convexrelu.solvers._column_generation import _AutoInner

    X = rng.standard_normal((60, 3))
    y = np.where(X[:, 0] + np.abs(X[:, 1]) > 0.5, 1.0, -1.0)
    prog = ConvexProgram(X, y, sample_patterns(X, 3, random_state=0, bias=True),
                         loss="logistic", alpha=0.5, bias=True)
    roomy = _AutoInner(1e-10)
    ref = roomy.solve(prog)
    assert roomy._cvxpy is not None and roomy._al is None
    tight = _AutoInner(1e-10)
    with convexrelu.config_context(memory_budget=0.2):  # MiB: below 500 B * n * k * d
        sol = tight.solve(prog)
    assert tight._cvxpy is None and tight._al is not None
    assert sol.objective == pytest.approx(ref.objective, rel=1e-5)
    # and whatever the budget, never a cvxpy problem beyond _CVXPY_MAX_BYTES (digits: a
    # 2.8 GB cvxpy solve was killed under a 4 GiB cap)
    capped = _AutoInner(1e-10)
    capped._CVXPY_MAX_BYTES = 100_000  # below 500 B * n * k * d_aug = 360,000
    with convexrelu.config_context(memory_budget=1000.0):
        sol = capped.solve(prog)
    assert capped._cvxpy is None and capped._al is not None
    assert sol.objective == pytest.approx(ref.objective, rel=1e-5)


def test_zero_blocks_leave_the_working_set_at_once(rng):
    """A pattern (listed or a gate) whose blocks are zero after a restricted solve leaves
    the working set in that round; the active ones stay."""
    from convexrelu.arrangements import sample_patterns
    from convexrelu.solvers._column_generation import _GateWorkingSet, _IndexWorkingSet

    X = rng.standard_normal((30, 3))
    pats = sample_patterns(X, 6, random_state=0, bias=True)
    prog = ConvexProgram(X, rng.standard_normal(30), pats, loss="squared", alpha=0.1,
                         bias=True)
    ws = _IndexWorkingSet(prog, None)
    ws.add([(1.0, i) for i in range(6)], 0.1, 6)
    active = np.array([True, False, True, False, False, True])
    kept = ws.idx[active]
    ws.keep(active)
    np.testing.assert_array_equal(ws.idx, kept)
    gw = _GateWorkingSet(lambda p: p, prog.X_aug, X, True)
    gw.add([(1.0, g) for g in pats.gates.T], 0.1, 6)
    G0 = gw.G.copy()
    on = np.zeros(G0.shape[1], bool)
    on[[0, 2]] = True
    gw.keep(on)
    np.testing.assert_array_equal(gw.G, G0[:, on])


def _small_logistic(seed):
    """4 given patterns of 40 samples, logistic loss: a program cvxpy (Clarabel) solves
    to its objective, not to the certificate's accuracy (certified 3e-5 to 3e-4)."""
    from convexrelu.arrangements import ActivationPatterns

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((40, 3))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)
    G = rng.standard_normal((4, 4))
    return ConvexProgram(X, y, ActivationPatterns.from_gates(X, G, bias=True),
                         loss="logistic", alpha=0.05, bias=True)


@pytest.mark.parametrize("seed", [0, 7])
def test_small_logistic_program_certifies_tol(seed):
    """Regression: the working-set loop took cvxpy's restricted solution of a small
    logistic program as it was, and stopped at a certified 3e-5 / 7e-5 (above tol,
    with a ConvergenceWarning); its active-set polish certifies within tol."""
    prog = _small_logistic(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = CvxpySolver(tol=1e-10).solve(prog)
    assert ref.info["rel_gap"] > 1e-6  # the conic point alone does not certify tol
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sol = ReluFastSolver(tol=1e-6).solve(prog)
    assert sol.info["rel_gap"] <= 1e-6
    assert prog.max_violation(sol.V, sol.W) <= 1e-9
    # cvxpy's objective is accurate: the two agree, ours no higher
    assert sol.objective <= ref.objective * (1 + 1e-12)
    assert sol.objective >= ref.objective * (1 - 1e-6)


def _cvxpy_point(seed=0):
    """``_small_logistic(seed)``, an inner solver of a loop at ``tol=1e-6`` and cvxpy's
    restricted point as it comes."""
    from convexrelu.solvers._column_generation import _AutoInner

    prog = _small_logistic(seed)
    inner = _AutoInner(1e-10)
    inner.loop_tol = 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return prog, inner, inner._solve_cvxpy(prog, None)


def test_cvxpy_restricted_solutions_are_polished_only_where_it_helps(rng):
    prog, inner, raw = _cvxpy_point()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pol = inner._polish_cvxpy(prog, raw)
    assert pol.info.get("polished") and pol.info["rel_gap"] < 1e-8 < raw.info["rel_gap"]
    assert pol.objective <= raw.objective and prog.max_violation(pol.V, pol.W) <= 1e-9
    # a quadratic program's point, and one already within the loop's needs, as they were
    X, y = _data(rng, 30, 2, "squared")
    quad = ConvexProgram(X, y, sample_patterns(X, 4, bias=True, random_state=0),
                         loss="squared", alpha=0.1, bias=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        qsol = inner._solve_cvxpy(quad, None)
    assert inner._polish_cvxpy(quad, qsol) is qsol
    inner.loop_tol = 1.0  # raw's gap is within 1e-2 of it
    assert inner._polish_cvxpy(prog, raw) is raw


def test_a_polish_is_kept_only_if_it_certifies_better_at_no_higher_objective(monkeypatch):
    """The two rules of _polish_cvxpy: a polished point with a higher objective, or one
    whose certified gap is not smaller (a Huber program's polish ended 2.5e-10 lower but
    certified 1.5e-4 against 1.5e-6), leaves cvxpy's point as it was."""
    import copy

    prog, inner, raw = _cvxpy_point()

    def polished(dobj, gap):
        pol = copy.copy(raw)
        pol.info = dict(raw.info, rel_gap=gap, polished=True)
        pol.objective = raw.objective + dobj
        return pol

    rgap = raw.info["rel_gap"]
    for dobj, gap, kept in ((-1e-12, 1e-3 * rgap, True), (1e-12, 1e-3 * rgap, False),
                            (-1e-12, rgap, False), (-1e-12, 10 * rgap, False),
                            (-1e-12, None, False)):
        monkeypatch.setattr(inner, "_newton_polish",
                            lambda program, sol, solver: polished(dobj, gap))
        out = inner._polish_cvxpy(prog, raw)
        assert (out is not raw) == kept, (dobj, gap)
    # no polish at all: cvxpy's point
    monkeypatch.setattr(inner, "_newton_polish", lambda program, sol, solver: None)
    assert inner._polish_cvxpy(prog, raw) is raw
    # a gap that is not a number: polished, kept on its objective alone
    nan = copy.copy(raw)
    nan.info = dict(raw.info, rel_gap=float("nan"))
    monkeypatch.setattr(inner, "_newton_polish",
                        lambda program, sol, solver: polished(-1e-12, 1e-3 * rgap))
    assert inner._polish_cvxpy(prog, nan) is not nan


def test_the_barriers_cvxpy_fallback_is_polished_as_well(monkeypatch):
    """A barrier solve that is not accepted (its Newton steps ran out) and cannot be
    polished falls back to cvxpy; that point is polished as every cvxpy point of a
    logistic program is (unpolished it certified up to 5e-5 on such programs)."""
    from convexrelu.arrangements import ActivationPatterns
    from convexrelu.solvers._column_generation import _AutoInner
    from convexrelu.solvers._restricted_barrier import RestrictedBarrierSolver

    rng = np.random.default_rng(0)
    X = rng.standard_normal((130, 3))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)
    prog = ConvexProgram(X, y, ActivationPatterns.from_gates(X, rng.standard_normal((4, 4)),
                                                             bias=True),
                         loss="logistic", alpha=0.05, bias=True)
    inner = _AutoInner(1e-10)
    inner.loop_tol = 1e-6
    inner._barrier = RestrictedBarrierSolver(tol=1e-10, max_iter=3)
    newton = inner._newton_polish
    monkeypatch.setattr(inner, "_newton_polish", lambda program, sol, solver: (
        None if solver is inner._barrier else newton(program, sol, solver)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = inner._barrier.solve(prog)
        assert not inner._barrier_accepted(prog, sol)
        out = inner._accept_barrier(prog, sol)
        raw = inner._solve_cvxpy(prog, None)
    assert out.info.get("polished") and out.info["rel_gap"] <= 1e-8 < raw.info["rel_gap"]
    assert out.objective <= raw.objective and prog.max_violation(out.V, out.W) <= 1e-9


def test_pricing_keeps_its_data_preparation_across_passes(monkeypatch):
    """The pattern oracle's passes share one preparation of the data (the program's own
    augmented data, the translated copy, the rows' norms): prepared at the first pass
    only, nothing of a dual point kept after a pass, and the same values as a fresh
    oracle's."""
    from convexrelu.arrangements import sample_patterns
    from convexrelu.certificates import _dual
    from convexrelu.program import ConvexProgram
    from convexrelu.solvers._column_generation import _oracle_for

    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 3))
    y = rng.standard_normal(300)
    pats = sample_patterns(X, 30, random_state=0, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=1.0, bias=True)
    calls = []
    real = _dual._prepare
    monkeypatch.setattr(_dual, "_prepare", lambda *a: calls.append(1) or real(*a))
    oracle = _oracle_for(prog, 5)
    values = []
    for s in range(3):
        lam = rng.standard_normal(300)
        lam -= lam.mean()
        fresh = _oracle_for(prog, 5)
        fresh.every_violator = s > 0  # (the kept one lists every violator after its first)
        values.append((oracle.evaluate(lam), fresh.evaluate(lam)))
        assert not any(key[0] in _dual._PER_DUAL_POINT for key in oracle._prep)
    assert len(calls) == 1 + 3  # the kept oracle once, each fresh one once
    assert any(entry[1] is prog.X_aug for entry in oracle._prep.values())
    for (M, cands), (M2, cands2) in values:
        assert M == pytest.approx(M2, rel=1e-12)
        assert [i for _, i in cands] == [i for _, i in cands2]


def test_later_pricing_passes_list_every_violating_pattern(monkeypatch):
    """The pattern oracle's first pass lists each chunk's best pattern; the later ones
    every pattern above the threshold (each computed alone is above it; one entry a
    pattern, its larger sign), the chunks' best ones among them, with the same value
    ``M``; with nothing above the threshold, each chunk's certified value; with
    ``_COLLECT_MAX`` reached, the usual pass and the same ``M``."""
    from convexrelu._parallel import subset
    from convexrelu.arrangements import sample_patterns
    from convexrelu.certificates import _dual, dual_constraint
    from convexrelu.program import ConvexProgram
    from convexrelu.solvers._column_generation import _oracle_for

    rng = np.random.default_rng(6)
    X = rng.standard_normal((200, 3))
    y = rng.standard_normal(200)
    pats = sample_patterns(X, 40, random_state=0, bias=True)
    lam = y - y.mean()
    one = [dual_constraint(subset(pats, i, i + 1), X, lam, penalize_bias=False).value
           for i in range(40)]
    alpha = float(np.sort(one)[-12])  # eleven patterns above it
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=alpha, bias=True)
    oracle = _oracle_for(prog, 4)  # chunks of 10 patterns
    M1, first = oracle.evaluate(lam)
    assert oracle.every_violator
    M2, later = oracle.evaluate(lam)
    above = {i for i in range(40) if one[i] > oracle.threshold}
    assert len(first) == 4 and len(above) >= 8
    assert {i for v, i in later if v > oracle.threshold} == above
    assert {i for _, i in first} <= {i for _, i in later}
    assert M2 == pytest.approx(M1, rel=1e-9) and M1 == pytest.approx(max(one), rel=1e-9)
    assert len({i for _, i in later}) == len(later)  # one entry a pattern
    for v, i in later:
        if i in above:
            assert v == pytest.approx(one[i], rel=1e-7)
    # no pattern above the threshold on a later pass: each chunk's certified value
    high = ConvexProgram(X, y, pats, loss="squared", alpha=1.5 * max(one), bias=True)
    quiet = _oracle_for(high, 4)
    quiet.evaluate(lam)
    M3, cands = quiet.evaluate(lam)
    assert quiet.every_violator and len(cands) == 4
    assert M3 >= max(one) * (1 - 1e-9)
    # at most _COLLECT_MAX refined to their values a chunk, then the usual pass
    monkeypatch.setattr(_dual, "_COLLECT_MAX", 1)
    capped = _oracle_for(prog, 4)
    capped.evaluate(lam)
    M4, few = capped.evaluate(lam)
    assert M4 == pytest.approx(max(one), rel=1e-9)
    assert 4 <= len(few) <= 8 and {i for v, i in few if v > oracle.threshold} <= above


def test_a_barrier_certificate_short_of_tol_is_tightened_before_cvxpy(monkeypatch):
    """A restricted logistic program (1 % positives of 2,000 samples, 20 patterns) whose
    interior point converged while its certificate stopped at 5.4e-6: the loop re-solved
    it with cvxpy (93 s, Clarabel then SCS), to the objective that the same interior point
    reaches in 0.4 s at 1e-2 of its gap (certified 1.1e-9)."""
    import warnings

    from sklearn.datasets import make_classification

    from convexrelu import ConvexReLUClassifier
    from convexrelu.solvers import _column_generation as cg

    def no_cvxpy(self, *args, **kwargs):
        raise AssertionError("the restricted program went to cvxpy")

    monkeypatch.setattr(cg._AutoInner, "_solve_cvxpy", no_cvxpy)
    # the program measured: alpha="auto" at 0.03 alpha_max, as before its share fell with n
    monkeypatch.setattr(ConvexReLUClassifier, "_ALPHA_REF_SAMPLES", 10 ** 9)
    X, y = make_classification(2000, 10, weights=[0.99], flip_y=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the sampling notice
        clf = ConvexReLUClassifier(random_state=0, certify=False).fit(X, y)
    assert clf.solution_status_ == "optimal"
    # the objective cvxpy's re-solve reached (the fit before the change, 52.5 s)
    assert clf.objective_ == pytest.approx(0.0059849523221351545, rel=1e-9)

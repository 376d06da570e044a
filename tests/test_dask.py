"""Parallel and distributed evaluation (convexrelu._parallel): joblib threads, processes and a
Dask LocalCluster give the same results as the sequential run."""

import logging
import warnings

import joblib
import numpy as np
import pytest

import convexrelu._parallel as par
from convexrelu import ConvexReLURegressorCV, ReLUNet, certify, enumerate_patterns
from convexrelu.arrangements import ActivationPatterns
from convexrelu.certificates import dual_constraint
from convexrelu.program import ConvexProgram
from convexrelu.solvers import ColumnGenerationSolver, column_generation, regularization_path


@pytest.fixture(scope="module")
def dask_client():
    """A two-worker, one-thread-each cluster of processes (skipped without distributed)."""
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           dashboard_address=None,
                                           silence_logs=logging.ERROR)
        client = distributed.Client(cluster)
    client.run(lambda: __import__("convexrelu.certificates"))  # workers import once, here
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 16 patterns, so that a small pattern set spans several workers' tasks."""
    monkeypatch.setattr(par, "CHUNK_SIZE", 16)
    monkeypatch.setattr(par, "MIN_PARALLEL_PATTERNS", 0)


def _data(seed=0, n=12, d=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    lam = rng.standard_normal(n)
    return X, lam - lam.mean()


def _assert_same(a, b):
    assert a.value == b.value and a.lower == b.lower and a.sign == b.sign
    assert a.pattern_index == b.pattern_index and a.gate_lower == b.gate_lower
    assert a.n_patterns_checked == b.n_patterns_checked and a.n_refined == b.n_refined
    np.testing.assert_array_equal(a.direction, b.direction)


# --------------------------------------------------------------------------- no cluster
@pytest.mark.parametrize("penalize_bias", [True, False])
def test_threads_give_the_sequential_result(small_chunks, penalize_bias):
    X, lam = _data()
    pats = enumerate_patterns(X, bias=True)
    assert pats.n_patterns > 4 * par.CHUNK_SIZE
    one = dual_constraint(pats, X, lam, penalize_bias=penalize_bias, block_size=8)
    with joblib.parallel_config(backend="threading"):
        two = dual_constraint(pats, X, lam, penalize_bias=penalize_bias, block_size=8,
                              n_jobs=2)
    _assert_same(one, two)


def test_chunks_do_not_change_the_value(monkeypatch):
    # chunked bound-then-refine finds the same maximum as one pass over the set (with a
    # free bias the maximiser lies on a cell boundary: adjacent cells tie, and which one
    # is reported depends on the order, which is why the chunks never depend on n_jobs)
    X, lam = _data(1)
    pats = enumerate_patterns(X, bias=True)
    whole = dual_constraint(pats, X, lam, penalize_bias=False)
    monkeypatch.setattr(par, "CHUNK_SIZE", 8)
    chunked = dual_constraint(pats, X, lam, penalize_bias=False, block_size=4)
    assert chunked.value == whole.value
    assert chunked.n_patterns_checked == whole.n_patterns_checked == pats.n_patterns


def test_chunk_regenerates_its_masks_and_detects_a_mismatch():
    X, _ = _data()
    pats = enumerate_patterns(X, bias=True)
    Xa = pats.augment(X)
    chunk = par.make_chunks(pats, [(5, 40)], threads=False)[0]
    assert chunk.packed is None and chunk.gates.shape == (4, 35)  # gates travel, not masks
    np.testing.assert_array_equal(chunk.patterns(Xa).masks, pats.masks[:, 5:40])
    # masks that their gates do not produce (user-given): the digest catches it
    masks = pats.masks.copy()
    masks[:, [5, 6]] = masks[:, [6, 5]]
    odd = ActivationPatterns.from_masks(X, masks, pats.gates, bias=True, exact=True)
    chunk = par.make_chunks(odd, [(5, 40)], threads=False)[0]
    assert chunk.patterns(Xa) is None
    np.testing.assert_array_equal(chunk.with_masks(odd).patterns(Xa).masks, masks[:, 5:40])
    # gates on a cell boundary (unknown margin): the masks travel with the chunk
    near = ActivationPatterns(pats.packed, pats.gates, n_samples=12, n_features=3, bias=True,
                              exact=True)
    assert par.make_chunks(near, [(0, 4)], threads=False)[0].packed is not None
    # threads share the masks
    assert par.make_chunks(pats, [(0, 4)], threads=True)[0].packed is not None


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_n_jobs_is_checked(bad):
    X, lam = _data()
    pats = enumerate_patterns(X, bias=True)
    with pytest.raises(ValueError, match="n_jobs must be a nonzero int .* or None"):
        dual_constraint(pats, X, lam, n_jobs=bad)
    net = ReLUNet(np.ones((1, 3)), np.zeros(1), np.ones((1, 1)), np.zeros(1))
    with pytest.raises(ValueError, match="n_jobs must be a nonzero int .* or None .*; got"):
        certify(net, X, lam, alpha=0.1, patterns="search", n_jobs=bad)  # lists nothing


# --------------------------------------------------------------------------- Dask
def _ran_on_the_cluster(client, run):
    from distributed import get_task_stream

    with get_task_stream(client) as ts:
        out = run()
    assert len(ts.data) > 0, "nothing ran on the Dask workers"
    return out


@pytest.mark.parametrize("penalize_bias", [True, False])
def test_dask_dual_constraint_is_identical(dask_client, small_chunks, penalize_bias):
    X, lam = _data(2, n=10, d=2)
    pats = enumerate_patterns(X, bias=True)
    local = dual_constraint(pats, X, lam, penalize_bias=penalize_bias, block_size=8)

    def run():
        with joblib.parallel_config(backend="dask"):
            return dual_constraint(pats, X, lam, penalize_bias=penalize_bias, block_size=8)

    _assert_same(local, _ran_on_the_cluster(dask_client, run))
    # several outputs (the conservative bound)
    L = np.random.default_rng(3).standard_normal((10, 2))
    local = dual_constraint(pats, X, L, block_size=8)
    with joblib.parallel_config(backend="dask"):
        _assert_same(local, dual_constraint(pats, X, L, block_size=8))


def test_dask_with_masks_that_differ_from_their_gates(dask_client, small_chunks):
    X, lam = _data(4, n=10, d=2)
    pats = enumerate_patterns(X, bias=True)
    masks = pats.masks.copy()
    masks[:, [20, 21]] = masks[:, [21, 20]]  # the workers' regenerated masks differ
    odd = ActivationPatterns.from_masks(X, masks, pats.gates, bias=True, exact=True)
    local = dual_constraint(odd, X, lam, block_size=8)
    with joblib.parallel_config(backend="dask"):
        _assert_same(local, dual_constraint(odd, X, lam, block_size=8))


def test_dask_certificate_is_identical(dask_client, small_chunks):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12, 2))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(12)
    net = ReLUNet(rng.standard_normal((3, 2)), rng.standard_normal(3),
                  rng.standard_normal((1, 3)), np.zeros(1))
    pats = enumerate_patterns(X, bias=True)  # listed, not the 2-D sweep
    local = certify(net, X, y, alpha=0.1, patterns=pats)
    with joblib.parallel_config(backend="dask"):
        dist = certify(net, X, y, alpha=0.1, patterns=pats)
    assert local.lower_bound == dist.lower_bound and local.gap == dist.gap
    assert local.info["pattern_index"] == dist.info["pattern_index"]
    np.testing.assert_array_equal(local.info["direction"], dist.info["direction"])
    assert local.n_patterns_checked == dist.n_patterns_checked == pats.n_patterns


@pytest.mark.slow  # a few seconds: many small tasks
@pytest.mark.parametrize("formulation", ["relu", "gated_relu"])
def test_dask_column_generation_is_identical(dask_client, small_chunks, formulation):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((9, 2))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(9)
    pats = enumerate_patterns(X, bias=True)
    prog = ConvexProgram(X, y, pats, loss="squared", alpha=0.1, bias=True,
                         penalize_bias=True, formulation=formulation)
    local = ColumnGenerationSolver(tol=1e-7, n_add=4).solve(prog)
    with joblib.parallel_config(backend="dask"):
        dist = ColumnGenerationSolver(tol=1e-7, n_add=4, n_jobs=-1).solve(prog)
    assert local.objective == dist.objective and local.gap == dist.gap
    np.testing.assert_array_equal(local.info["support"], dist.info["support"])
    if formulation == "relu":  # the function passes n_jobs on
        with joblib.parallel_config(backend="threading"):
            sol, _ = column_generation(X, y, alpha=0.1, penalize_bias=True, patterns=pats,
                                       n_add=4, tol=1e-7, n_jobs=2)
        assert sol.objective == local.objective


@pytest.mark.slow  # a few seconds: many small tasks
def test_dask_regularization_path_is_identical(dask_client, small_chunks):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((9, 2))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(9)
    pats = enumerate_patterns(X, bias=True)
    kw = dict(n_alphas=3, eps=0.2, patterns=pats, penalize_bias=True)
    local = regularization_path(X, y, **kw)
    with joblib.parallel_config(backend="dask"):
        dist = regularization_path(X, y, **kw)
    assert local.alpha_max == dist.alpha_max
    np.testing.assert_array_equal(local.objectives, dist.objectives)
    np.testing.assert_array_equal(local.rel_gaps, dist.rel_gaps)
    np.testing.assert_array_equal(local.n_neurons, dist.n_neurons)


@pytest.mark.slow  # a few seconds: many small tasks
def test_dask_cross_validation_is_identical(dask_client):
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30, 2))
    y = np.abs(X[:, 0]) - X[:, 1] + 0.3 * rng.standard_normal(30)
    kw = dict(alphas=3, cv=3, patterns=10, random_state=0, solver="relu", penalize_bias=True,
              certify=False)
    local = ConvexReLURegressorCV(**kw).fit(X, y)

    def run():
        with joblib.parallel_config(backend="dask"):
            return ConvexReLURegressorCV(n_jobs=-1, **kw).fit(X, y)

    dist = _ran_on_the_cluster(dask_client, run)
    np.testing.assert_array_equal(local.objective_path_, dist.objective_path_)
    np.testing.assert_array_equal(local.cv_results_["mean_test_score"],
                                  dist.cv_results_["mean_test_score"])
    assert local.alpha_ == dist.alpha_


def test_dask_branch_and_bound_nodes_on_the_cluster(dask_client, monkeypatch):
    """Under the Dask joblib backend the branch and bound's nodes are bounded on the
    cluster's workers; the proven value agrees with enumeration (to the search's tol:
    the node order, and so the last digits, depend on the workers' timing)."""
    from convexrelu.certificates import _bnb

    monkeypatch.setattr(_bnb, "_PARALLEL_AFTER", 0.0)
    X, lam = _data(6, n=20, d=3)
    M = dual_constraint(enumerate_patterns(X, bias=True), X, lam, penalize_bias=False).value

    def run():
        with joblib.parallel_config(backend="dask"):
            return _bnb.dual_constraint_bnb(X, lam, bias=True, penalize_bias=False,
                                            tol=1e-6, random_state=0)

    res = _ran_on_the_cluster(dask_client, run)
    assert res.info["n_workers"] >= 2
    assert res.closed and res.upper >= M * (1 - 1e-12) and res.upper <= M * (1 + 1e-6)

"""Shared fixtures and test helpers."""

import itertools
import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def brute_force_patterns(Xa, tol=1e-9):
    """Every sign vector tested for strict feasibility by an LP (the test oracle).

    Returns the set of masks (tuples of bools over the rows of ``Xa``); zero rows get False.
    """
    from scipy.optimize import linprog

    n, d = Xa.shape
    nrm = np.linalg.norm(Xa, axis=1)
    idx = np.nonzero(nrm > 0)[0]
    Xn = Xa[idx] / nrm[idx, None]
    out = set()
    for s in itertools.product([1.0, -1.0], repeat=len(idx)):
        s = np.array(s)
        A = np.hstack([-(s[:, None] * Xn), np.ones((len(idx), 1))])
        res = linprog(np.r_[np.zeros(d), -1.0], A_ub=A, b_ub=np.zeros(len(idx)),
                      bounds=[(-1, 1)] * d + [(None, 1)], method="highs")
        if res.status == 0 and -res.fun > tol:
            m = np.zeros(n, bool)
            m[idx] = s > 0
            out.add(tuple(m))
    return out


# scikit-learn's contract repeats its training checks on read-only memory maps (and float32
# memory maps); the slowest estimator configurations run those repeats with the slow tests.
_SLOW_CONTRACT_REPEATS = ("check_classifiers_train(readonly_memmap=True",
                          "check_regressors_train(readonly_memmap=True")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (item.originalname == "test_sklearn_contract"
                and any(s in item.name for s in _SLOW_CONTRACT_REPEATS)):
            item.add_marker(pytest.mark.slow)

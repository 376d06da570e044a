"""Estimators carry ``certificate_`` after fit (docs/mathematics.rst §4.5; STYLE rule 4)."""

import warnings

import numpy as np
import pytest

from convexrelu import ConvexReLUClassifier, ConvexReLURegressor, certify
from convexrelu.certificates import Certificate
from convexrelu.solvers import CvxpySolver


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12, 2))
    y = np.abs(X[:, 0]) + 0.3 * X[:, 1]
    return X, y


@pytest.mark.parametrize("bias", [True, False])
def test_exact_fit_is_certified(data, bias):
    X, y = data
    reg = ConvexReLURegressor(alpha=0.05, patterns="exact", bias=bias).fit(X, y)
    cert = reg.certificate_
    assert isinstance(cert, Certificate)
    assert cert.exact and cert.optimal and cert.relative_gap <= 1e-6
    assert cert.hidden_bias == bias
    # the certificate is about the fitted network, in the estimator's normalisation
    assert cert.objective == pytest.approx(reg.network_.objective(X, y, 0.05), rel=1e-12)
    assert cert.objective == pytest.approx(reg.objective_, rel=1e-6)
    assert cert.lower_bound <= cert.objective
    # an independent certificate of the same network agrees
    ref = certify(reg.network_, X, y, alpha=0.05, hidden_bias=bias)
    assert ref.lower_bound == pytest.approx(cert.lower_bound, rel=1e-9)


def test_sampled_fit_is_not_a_proof(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = ConvexReLURegressor(alpha=0.05, patterns=15, random_state=0).fit(X, y)
    cert = reg.certificate_
    assert not reg.exact_patterns_
    # the arrangement is small: the sampled fit is checked against all of it, and it is
    # (correctly) not the global optimum
    assert cert.exact is True and cert.optimal is False
    assert cert.n_patterns_checked > reg.patterns_.n_patterns
    assert "not certified optimal" in cert.summary()
    # a larger arrangement (> 10 x max_patterns): a labelled local search, never a proof
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = ConvexReLURegressor(alpha=0.05, max_patterns=5, random_state=0).fit(X, y)
    cert = reg.certificate_
    assert cert.method == "local_search" and cert.heuristic
    assert cert.exact is False and cert.optimal is False
    assert "not a proof" in cert.summary()


def test_certify_false_and_solver_instance(data):
    X, y = data
    reg = ConvexReLURegressor(alpha=0.05, patterns="exact", certify=False).fit(X, y)
    assert reg.certificate_ is None
    # a user-given solver is not re-tuned; the certificate reports what it reached
    reg = ConvexReLURegressor(alpha=0.05, patterns="exact",
                              solver=CvxpySolver(tol=1e-10)).fit(X, y)
    assert reg.certificate_.optimal and reg.certificate_.relative_gap <= 1e-6
    with pytest.raises(ValueError, match="The 'certify' parameter of ConvexReLURegressor"):
        ConvexReLURegressor(certify="yes").fit(X, y)


def test_multioutput_and_classifiers(data):
    X, y = data
    Y = np.column_stack([y, X[:, 1] ** 2])
    reg = ConvexReLURegressor(alpha=0.05, patterns="exact").fit(X, Y)
    assert isinstance(reg.certificate_, list) and len(reg.certificate_) == 2
    assert all(c.optimal for c in reg.certificate_)
    # each output's problem is its share of objective_ (the column loss keeps 1/c)
    assert sum(c.objective for c in reg.certificate_) == pytest.approx(reg.objective_,
                                                                       rel=1e-10)
    lab = np.where(y > 0.8, "hi", "lo")
    clf = ConvexReLUClassifier(alpha=0.05, patterns="exact").fit(X, lab)
    cert = clf.certificate_
    assert cert.loss == "logistic" and cert.exact and cert.optimal
    assert cert.objective == pytest.approx(clf.objective_, rel=1e-6)
    lab3 = np.digitize(y, [0.5, 1.0])
    clf3 = ConvexReLUClassifier(alpha=0.05, patterns="exact").fit(X, lab3)
    assert len(clf3.certificate_) == 3
    assert all(c.exact and c.lower_bound <= c.objective for c in clf3.certificate_)
    assert sum(c.objective for c in clf3.certificate_) == pytest.approx(clf3.objective_,
                                                                        rel=1e-6)

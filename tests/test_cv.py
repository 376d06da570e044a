"""Tests of ConvexReLURegressorCV / ConvexReLUClassifierCV (convexrelu._cv)."""

import inspect
import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from convexrelu import (ActivationPatterns, ConvexReLUClassifier, ConvexReLUClassifierCV,
                        ConvexReLURegressor, ConvexReLURegressorCV, enumerate_patterns,
                        sample_patterns)
from convexrelu._cv import (_PASSTHROUGH, _PATH_PATTERNS, _path_patterns,
                            _restrict_patterns, _select)

# small and fast: a few sampled patterns; the ReLU solver (squared loss), cvxpy (classifiers)
FAST_REG = dict(patterns=10, random_state=0, solver="relu", penalize_bias=True,
                certify=False)
FAST_CLF = dict(patterns=8, random_state=0, solver="cvxpy", penalize_bias=True,
                certify=False)


@pytest.fixture
def reg_data(rng):
    X = rng.standard_normal((30, 2))
    return X, np.abs(X[:, 0]) - X[:, 1] + 0.3 * rng.standard_normal(30)


def test_alpha_is_argmax_of_mean_score(reg_data):
    X, y = reg_data
    reg = ConvexReLURegressorCV(alphas=3, cv=3, alpha_selection="best", **FAST_REG).fit(X, y)
    res = reg.cv_results_
    best = int(np.argmax(res["mean_test_score"]))
    assert reg.alpha_ == reg.alphas_[best] == res["param_alpha"][best]
    assert reg.best_score_ == res["mean_test_score"][best] and res["rank_test_score"][best] == 1
    splits = np.column_stack([res[f"split{k}_test_score"] for k in range(3)])
    np.testing.assert_allclose(res["mean_test_score"], splits.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(res["std_test_score"], splits.std(axis=1), rtol=1e-12)
    assert np.all(res["mean_fit_time"] > 0) and reg.objective_path_.shape == (3, 3)
    # the default grid: geometric, from alpha_max_ down to eps * alpha_max_
    np.testing.assert_allclose(reg.alphas_, reg.alpha_max_ * np.geomspace(1, 1e-2, 3))
    # delegation to the refitted plain estimator
    assert reg.best_estimator_.alpha == reg.alpha_
    np.testing.assert_array_equal(reg.predict(X), reg.best_estimator_.predict(X))
    assert reg.score(X, y) == reg.best_estimator_.score(X, y)
    assert reg.network_ is reg.best_estimator_.network_ and reg.n_features_in_ == 2
    assert reg.objective_ == reg.best_estimator_.objective_ and reg.certificate_ is None


def test_cv_results_match_cross_val_score(reg_data):
    """Same folds, same patterns rule (10 gates seeded by random_state per fold)."""
    X, y = reg_data
    alphas = [3.0, 0.03]
    cv = KFold(3, shuffle=True, random_state=1)
    reg = ConvexReLURegressorCV(alphas=alphas, cv=cv, path_tol=None, **FAST_REG).fit(X, y)
    for k, a in enumerate(alphas):
        ref = cross_val_score(ConvexReLURegressor(alpha=a, **FAST_REG), X, y, cv=cv)
        got = [reg.cv_results_[f"split{j}_test_score"][k] for j in range(3)]
        np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-10)


def test_warm_path_matches_cold_fits(reg_data):
    X, y = reg_data
    cv = KFold(3)
    params = dict(FAST_REG, patterns=6, solver="fista", formulation="gated_relu", tol=1e-8)
    reg = ConvexReLURegressorCV(alphas=[1.0, 0.03], cv=cv, refit=False, path_tol=None,
                                **params).fit(X, y)
    for j, (train, _) in enumerate(cv.split(X)):
        for k, a in enumerate(reg.alphas_):
            cold = ConvexReLURegressor(alpha=a, **params).fit(X[train], y[train])
            assert reg.objective_path_[k, j] == pytest.approx(cold.objective_, rel=1e-6)


def test_n_jobs_gives_identical_results(reg_data):
    X, y = reg_data
    one = ConvexReLURegressorCV(alphas=2, cv=3, n_jobs=1, **FAST_REG).fit(X, y)
    with joblib.parallel_config(backend="threading"):
        two = ConvexReLURegressorCV(alphas=2, cv=3, n_jobs=2, **FAST_REG).fit(X, y)
    for key in ("mean_test_score", "split0_test_score", "split2_test_score", "param_alpha"):
        np.testing.assert_array_equal(one.cv_results_[key], two.cv_results_[key])
    np.testing.assert_array_equal(one.objective_path_, two.objective_path_)
    assert one.alpha_ == two.alpha_


@pytest.mark.slow
def test_n_jobs_loky_gives_identical_results(reg_data):
    X, y = reg_data
    one = ConvexReLURegressorCV(alphas=3, cv=3, n_jobs=1, **FAST_REG).fit(X, y)
    with joblib.parallel_config(backend="loky"):
        two = ConvexReLURegressorCV(alphas=3, cv=3, n_jobs=2, **FAST_REG).fit(X, y)
    np.testing.assert_array_equal(one.objective_path_, two.objective_path_)
    np.testing.assert_array_equal(one.cv_results_["mean_test_score"],
                                  two.cv_results_["mean_test_score"])


def test_alpha_max_is_where_the_network_vanishes(reg_data):
    """At alpha_max_ the optimum is the zero network's objective; below it, smaller."""
    X, y = reg_data
    Y = np.column_stack([y, 2 * y + X[:, 1]])  # two outputs: alpha_max is the largest / 2
    params = FAST_REG
    for target in (y, Y):
        reg = ConvexReLURegressorCV(alphas=1, cv=2, **params).fit(X, target)
        zero = 0.5 * np.mean(np.var(target, axis=0))  # (1/n) (1/(2c)) ||Y - mean||^2
        assert reg.alphas_[0] == reg.alpha_max_
        assert reg.objective_ == pytest.approx(zero, rel=1e-6)
        below = ConvexReLURegressor(alpha=0.9 * reg.alpha_max_,
                                    **dict(params, patterns=reg.patterns_)).fit(X, target)
        assert below.objective_ < zero * (1 - 1e-4)


# cvxpy on the logistic / hinge programs of these tiny folds stops a little above tol
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_classifier_three_classes(rng):
    X = rng.standard_normal((30, 2))
    y = np.where(X[:, 0] > 0.5, "a", np.where(X[:, 1] > 0, "b", "c"))
    clf = ConvexReLUClassifierCV(alphas=2, cv=3, path_tol=None, **FAST_CLF).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, ["a", "b", "c"])
    assert clf.alpha_ in clf.alphas_ and clf.alphas_[0] == clf.alpha_max_
    P = clf.predict_proba(X)
    assert P.shape == (30, 3) and np.allclose(P.sum(axis=1), 1)
    assert clf.decision_function(X).shape == (30, 3)
    # score() is the accuracy; the alpha are ranked by the validation log loss
    assert set(clf.predict(X)) <= {"a", "b", "c"} and 0 <= clf.score(X, y) <= 1
    assert clf.score(X, y) == np.mean(clf.predict(X) == y)
    # stratified folds by default, as cross_val_score does for a classifier
    plain = ConvexReLUClassifier(alpha=clf.alphas_[1], **FAST_CLF)
    ref = cross_val_score(plain, X, y, cv=StratifiedKFold(3), scoring="neg_log_loss")
    got = [clf.cv_results_[f"split{j}_test_score"][1] for j in range(3)]
    # the path's fit is warm-started from the larger alpha's: the same optimum to tol,
    # which moves the log loss (unlike the predicted labels) in its fifth digit
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert clf.best_score_ == clf.cv_results_["mean_test_score"][clf.best_index_] < 0
    # scoring="accuracy": the accuracy ranks them, as cross_val_score's default
    acc = ConvexReLUClassifierCV(alphas=2, cv=3, path_tol=None, scoring="accuracy",
                                 **FAST_CLF).fit(X, y)
    ref = cross_val_score(plain, X, y, cv=StratifiedKFold(3))
    got = [acc.cv_results_[f"split{j}_test_score"][1] for j in range(3)]
    np.testing.assert_allclose(got, ref, rtol=1e-8)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.slow  # moved to the slow step: the default run took 339 s in CI
def test_n_jobs_runs_the_folds_then_the_refits_classes_in_parallel(rng):
    """n_jobs=2: the folds in parallel, then the refit's one-vs-rest classes (the refit
    is the plain estimator with n_jobs=2; the path's fits keep one job each); the same
    scores, alpha and network as one job."""
    X = rng.standard_normal((36, 2))
    y = np.where(X[:, 0] > 0.5, 0, np.where(X[:, 1] > 0, 1, 2))
    params = dict(alphas=2, cv=3, path_tol=None, **FAST_CLF)
    one = ConvexReLUClassifierCV(**params).fit(X, y)
    two = ConvexReLUClassifierCV(n_jobs=2, **params).fit(X, y)
    assert two.best_estimator_.n_jobs == 2 and one.best_estimator_.n_jobs is None
    assert two.alpha_ == one.alpha_
    np.testing.assert_array_equal(two.cv_results_["mean_test_score"],
                                  one.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(two.network_.W1, one.network_.W1)
    np.testing.assert_array_equal(two.network_.W2, one.network_.W2)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_log_loss_scores_a_class_the_fold_did_not_train_on(rng):
    # unstratified folds: class 2 (two samples, both in the second fold) is absent from
    # the first fold's training data. Its validation samples cost -log(eps) each, not an
    # error (scikit-learn's log_loss refuses labels it was not told about)
    X = rng.standard_normal((20, 2))
    y = np.r_[np.zeros(9, int), np.ones(9, int), [2, 2]]
    y[:9:2], y[9:18:2] = 1, 0
    clf = ConvexReLUClassifierCV(alphas=[0.5], cv=KFold(2), refit=False, path_tol=None,
                                 **FAST_CLF).fit(X, y)
    first = clf.cv_results_["split1_test_score"][0]
    test = np.arange(10, 20)
    fold = ConvexReLUClassifier(alpha=0.5, **FAST_CLF).fit(X[:10], y[:10])
    P = fold.predict_proba(X[test])
    col = {c: j for j, c in enumerate(fold.classes_)}
    p = np.array([P[i, col[c]] if c in col else 0.0 for i, c in enumerate(y[test])])
    expected = np.mean(np.log(np.maximum(p, np.finfo(float).eps)))
    assert first == pytest.approx(expected, rel=1e-8)
    assert np.isfinite(first) and first < np.log(np.finfo(float).eps) * 2 / 10 + 1e-9


# cvxpy on the logistic / hinge programs of these tiny folds stops a little above tol
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_classifier_hinge_has_no_predict_proba(rng):
    X = rng.standard_normal((24, 2))
    y = (X[:, 0] > 0).astype(int)
    clf = ConvexReLUClassifierCV(alphas=[1.0, 0.1], cv=2, loss="hinge", **FAST_CLF).fit(X, y)
    assert not hasattr(clf, "predict_proba")
    with pytest.raises(AttributeError, match="no attribute 'predict_proba'") as exc:
        clf.predict_proba(X)
    assert "not available with loss='hinge'" in str(exc.value.__cause__)
    assert clf.decision_function(X).shape == (24,)
    # no probabilities: the accuracy ranks the alpha
    ref = cross_val_score(ConvexReLUClassifier(alpha=0.1, loss="hinge", **FAST_CLF), X, y,
                          cv=StratifiedKFold(2))
    got = [clf.cv_results_[f"split{j}_test_score"][1] for j in range(2)]
    np.testing.assert_allclose(got, ref, rtol=1e-8)


def test_gridsearchcv_on_the_plain_estimator(reg_data):
    X, y = reg_data
    alphas = [3.0, 0.03]
    gs = GridSearchCV(ConvexReLURegressor(**FAST_REG), {"alpha": alphas}, cv=3).fit(X, y)
    reg = ConvexReLURegressorCV(alphas=alphas, cv=3, alpha_selection="best", path_tol=None,
                                **FAST_REG).fit(X, y)
    np.testing.assert_allclose(reg.cv_results_["mean_test_score"],
                               gs.cv_results_["mean_test_score"], rtol=1e-8)
    assert reg.alpha_ == gs.best_params_["alpha"]


def test_scoring_and_given_patterns(rng):
    X = rng.standard_normal((8, 2))
    y = X[:, 0] ** 2
    pats = enumerate_patterns(X, bias=True)
    reg = ConvexReLURegressorCV(alphas=[1.0, 0.1], cv=2, scoring="neg_mean_squared_error",
                                patterns=pats, solver="cvxpy", penalize_bias=True,
                                certify=False).fit(X, y)
    assert np.all(reg.cv_results_["mean_test_score"] <= 0)
    assert reg.score(X, y) == pytest.approx(-np.mean((reg.predict(X) - y) ** 2))
    assert reg.best_estimator_.patterns is pats


def test_restricted_patterns_are_the_fold_patterns(rng):
    X = rng.standard_normal((10, 2))
    rows = np.array([0, 2, 3, 5, 8, 9])
    sub = _restrict_patterns(enumerate_patterns(X, bias=True), X[rows], rows)
    ref = enumerate_patterns(X[rows], bias=True)
    assert sub.exact and set(map(bytes, sub.packed)) == set(map(bytes, ref.packed))
    # sampled: identical to sampling on the fold with the same seed (same gates, same order)
    sub = _restrict_patterns(sample_patterns(X, 15, random_state=3, bias=True), X[rows],
                             rows)
    ref = sample_patterns(X[rows], 15, random_state=3, bias=True)
    np.testing.assert_array_equal(sub.packed, ref.packed)
    np.testing.assert_array_equal(sub.gates, ref.gates)
    assert not sub.exact
    # the masks restricted to the rows: the full set's gates evaluated on the fold
    for pats in (enumerate_patterns(X, bias=True),
                 sample_patterns(X, 15, random_state=3, bias=True)):
        by_rows = _restrict_patterns(pats, X[rows], rows)
        by_gates = ActivationPatterns.from_gates(X[rows], pats.gates, bias=True)
        np.testing.assert_array_equal(by_rows.packed, by_gates.packed)
        assert by_rows.exact == pats.exact


def test_restricted_patterns_of_offset_data_are_exact():
    """Collinear points at thirds, shifted by 1e7: the enumeration's masks are exact, but
    its gates, mapped back from the shifted columns, do not reproduce 37 of the 102 in
    floating point, and a fold's patterns rebuilt from them were 50 of the true 54
    (flagged exact). Restricting the masks to the fold's rows is exact."""
    t = np.arange(8) / 3
    X = np.r_[np.c_[t, 2 * t + 1], np.random.default_rng(2).standard_normal((3, 2))]
    raw = X + 1e7
    rows = np.flatnonzero(np.arange(len(X)) % 4 != 0)
    sub = _restrict_patterns(enumerate_patterns(raw, bias=True), raw[rows], rows)
    ref = enumerate_patterns(raw[rows], bias=True)  # (54: Whitney's count, exactly)
    assert sub.exact and set(map(bytes, sub.packed)) == set(map(bytes, ref.packed))
    assert ref.n_patterns == 54


@pytest.mark.parametrize("Est", [ConvexReLURegressorCV, ConvexReLUClassifierCV])
def test_dataframe_columns_are_checked_as_by_the_plain_estimator(rng, Est):
    """Fitted on a DataFrame, the CV estimators check the columns where they predict:
    best_estimator_ was refit on the validated array, so every predict on a DataFrame
    warned that it was "fitted without feature names", and reordered columns were
    taken silently (predictions off by up to 167 on diabetes)."""
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(rng.standard_normal((60, 3)), columns=["a", "b", "c"])
    y = np.abs(X["a"]) + 0.5 * X["b"]
    y = y > y.median() if Est is ConvexReLUClassifierCV else y
    est = Est(cv=2, n_alphas=3, max_patterns=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the sampling notice
        est.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = est.predict(X)
        est.score(X, y)
        if Est is ConvexReLUClassifierCV:
            est.predict_proba(X)
    np.testing.assert_array_equal(pred, est.best_estimator_.predict(X))
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(X[["c", "b", "a"]])


def test_certify_only_on_refit(reg_data):
    X, y = reg_data
    reg = ConvexReLURegressorCV(alphas=2, cv=2, **dict(FAST_REG, certify=True)).fit(X, y)
    assert reg.certificate_ is reg.best_estimator_.certificate_
    assert reg.certificate_ is not None
    assert reg.certificate_.objective == pytest.approx(reg.objective_, rel=1e-12)


@pytest.mark.parametrize("Est, Plain", [(ConvexReLURegressorCV, ConvexReLURegressor),
                                        (ConvexReLUClassifierCV, ConvexReLUClassifier)])
def test_passthrough_defaults_follow_the_plain_estimator(Est, Plain):
    cv_defaults = {k: p.default for k, p in inspect.signature(Est).parameters.items()}
    plain = {k: p.default for k, p in inspect.signature(Plain).parameters.items()}
    for name in _PASSTHROUGH:
        assert cv_defaults[name] == plain[name], name


def test_bad_parameters(reg_data):
    X, y = reg_data
    with pytest.raises(ValueError, match="alphas must be a non-empty array"):
        ConvexReLURegressorCV(alphas=[], **FAST_REG).fit(X, y)
    with pytest.raises(ValueError, match="alphas must be a non-empty array"):
        ConvexReLURegressorCV(alphas=[1.0, -1.0], **FAST_REG).fit(X, y)
    with pytest.raises(ValueError, match="alphas must be a non-empty array"):
        ConvexReLURegressorCV(alphas=[np.nan], **FAST_REG).fit(X, y)
    with pytest.raises(ValueError, match="finite floats > 0"):  # 0 ran for minutes
        ConvexReLURegressorCV(alphas=[1.0, 0.0], **FAST_REG).fit(X, y)
    with pytest.raises(ValueError, match="floats > 0"):
        __import__("convexrelu").regularization_path(X, y, alphas=[1.0, 0.0])


def test_poorly_scaled_warning_once_per_cv_fit(reg_data):
    """The scaling warning comes once, from the refit at the user's line, not once per
    fold and alpha (13 times under the default filters)."""
    X, y = reg_data
    Xs = X.copy()
    Xs[:, 0] = 2e6 + 1e5 * X[:, 0]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("default")
        ConvexReLURegressorCV(n_alphas=2, cv=2, **FAST_REG).fit(Xs, y)
    scaled = [r for r in rec if "poorly scaled" in str(r.message)]
    assert len(scaled) == 1 and scaled[0].filename == __file__
    with pytest.raises(ValueError, match="'eps' parameter of ConvexReLURegressorCV"):
        ConvexReLURegressorCV(eps=1.5).fit(X, y)
    with pytest.raises(ValueError, match="'alphas' parameter of ConvexReLURegressorCV"):
        ConvexReLURegressorCV(alphas=0).fit(X, y)
    with pytest.raises(ValueError, match="'scoring' parameter of ConvexReLURegressorCV"):
        ConvexReLURegressorCV(scoring="no_such_score").fit(X, y)
    with pytest.raises(ValueError, match="'cv' parameter of ConvexReLURegressorCV"):
        ConvexReLURegressorCV(cv="five").fit(X, y)
    with pytest.raises(ValueError, match="'solver' parameter of ConvexReLURegressorCV"):
        ConvexReLURegressorCV(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="'loss' parameter of ConvexReLUClassifierCV"):
        ConvexReLUClassifierCV(loss="squared").fit(X, y > 0)
    X8, y8 = X[:8], y[:8]
    with pytest.raises(ValueError, match="computed with bias=False"):
        ConvexReLURegressorCV(patterns=enumerate_patterns(X8, bias=False)).fit(X8, y8)
    with pytest.raises(ValueError, match="computed on other data"):
        ConvexReLURegressorCV(patterns=enumerate_patterns(X8 + 1, bias=True)).fit(X8, y8)
    with pytest.raises(ValueError, match="at least 2 classes"):
        ConvexReLUClassifierCV(**FAST_CLF).fit(X, np.zeros(30))


def test_refit_false(reg_data):
    X, y = reg_data
    reg = ConvexReLURegressorCV(alphas=2, cv=2, **FAST_REG).fit(X, y)
    reg.set_params(refit=False).fit(X, y)  # drops the previous fit's refit
    assert reg.alpha_ in reg.alphas_ and not hasattr(reg, "best_estimator_")
    assert not hasattr(reg, "network_")
    assert not hasattr(reg, "predict") and not hasattr(reg, "score")
    with pytest.raises(AttributeError, match="no attribute 'predict'") as exc:
        reg.predict(X)
    assert "refit=False; set refit=True" in str(exc.value.__cause__)


def test_all_nan_scores_raise(reg_data):
    X, y = reg_data

    def nan_scorer(est, X, y):
        return np.nan

    with pytest.raises(ValueError, match="Every cross-validation score is NaN"):
        ConvexReLURegressorCV(alphas=2, cv=2, scoring=nan_scorer, **FAST_REG).fit(X, y)


def test_constant_target_grid_is_relative_to_one(rng):
    X = rng.standard_normal((12, 2))
    reg = ConvexReLURegressorCV(alphas=2, cv=2, scoring="neg_mean_squared_error",
                                **FAST_REG).fit(X, np.full(12, 3.0))
    assert reg.alpha_max_ == 0
    np.testing.assert_allclose(reg.alphas_, [1.0, 1e-2])
    np.testing.assert_allclose(reg.predict(X), 3.0)


@parametrize_with_checks([
    ConvexReLURegressorCV(alphas=2, cv=2, **dict(FAST_REG, patterns=4, solver="cvxpy")),
])
def test_sklearn_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


@pytest.mark.slow  # about 20 s: check_classifiers_train fits 3 one-vs-rest programs x 5
@parametrize_with_checks([
    ConvexReLUClassifierCV(alphas=2, cv=2, loss="hinge", **dict(FAST_CLF, patterns=10)),
])
def test_sklearn_contract_classifier(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def _peak_at_one(est, X, y):
    """A scorer that peaks at alpha = 1, whatever the fit."""
    return -abs(np.log10(est.alpha))


def test_early_stopping_of_the_path(reg_data):
    X, y = reg_data
    alphas = [10.0, 1.0, 0.1, 0.01, 0.001]
    reg = ConvexReLURegressorCV(alphas=alphas, cv=3, scoring=_peak_at_one,
                                **FAST_REG).fit(X, y)
    res = reg.cv_results_
    # best at alpha=1, two worse ones (0.1, 0.01), then the path stops: 0.001 not fitted
    assert reg.alpha_ == 1.0 and res["rank_test_score"][1] == 1
    assert np.all(np.isfinite(res["mean_test_score"][:4]))
    assert np.isnan(res["mean_test_score"][4]) and np.isnan(res["split0_test_score"][4])
    assert res["rank_test_score"][4] == 5 and np.isnan(reg.objective_path_[4]).all()
    assert np.isnan(res["mean_fit_time"][4])
    one = ConvexReLURegressorCV(alphas=alphas, cv=3, scoring=_peak_at_one, n_iter_no_change=1,
                                **FAST_REG).fit(X, y)
    assert np.isnan(one.cv_results_["mean_test_score"][3:]).all()
    full = ConvexReLURegressorCV(alphas=alphas, cv=3, scoring=_peak_at_one,
                                 n_iter_no_change=None, **FAST_REG).fit(X, y)
    assert np.all(np.isfinite(full.cv_results_["mean_test_score"]))
    np.testing.assert_array_equal(full.cv_results_["mean_test_score"][:4],
                                  res["mean_test_score"][:4])


def test_n_iter_no_change_is_checked(reg_data):
    X, y = reg_data
    with pytest.raises(ValueError, match="'n_iter_no_change' parameter of ConvexReLURegressorCV"):
        ConvexReLURegressorCV(n_iter_no_change=0, **FAST_REG).fit(X, y)


def test_ties_do_not_stop_the_path(reg_data):
    X, y = reg_data
    reg = ConvexReLURegressorCV(alphas=[1.0, 0.3, 0.1, 0.03], cv=2, n_iter_no_change=1,
                                scoring=lambda est, X, y: 0.5, **FAST_REG).fit(X, y)
    assert np.all(reg.cv_results_["mean_test_score"] == 0.5)
    assert reg.alpha_ == 1.0  # ties: the largest alpha, as documented


def test_select_one_standard_error_rule():
    mean = np.array([0.1, 0.50, 0.52, 0.55, np.nan])
    std = np.array([0.0, 0.04, 0.04, 0.06, np.nan])
    # best 0.55 (index 3), one standard error 0.06 / sqrt(5 - 1) = 0.03: the largest alpha
    # (first index) with a mean >= 0.52 is index 2
    assert _select(mean, std, 5, "1se") == 2
    assert _select(mean, std, 5, "best") == 3
    assert _select(mean, std, 1, "1se") == 3  # one split: no standard error, the best
    assert _select(np.array([np.nan, 0.3, 0.3]), np.zeros(3), 3, "1se") == 1  # NaN never


def _noisy_peak(est, X, y):
    """Peaks at alpha = 0.01 by 0.01 per decade; a fold-dependent offset of about +-1."""
    return -0.01 * abs(np.log10(est.alpha / 0.01)) + 10 * float(np.mean(X[:, 0]))


def test_one_standard_error_rule_picks_a_larger_alpha(reg_data):
    X, y = reg_data
    alphas = [1.0, 0.1, 0.01, 0.001]
    kw = dict(alphas=alphas, cv=3, scoring=_noisy_peak, n_iter_no_change=None, refit=False,
              **FAST_REG)
    best = ConvexReLURegressorCV(alpha_selection="best", **kw).fit(X, y)
    one = ConvexReLURegressorCV(**kw).fit(X, y)  # "1se" is the default
    assert best.alpha_ == 0.01
    assert one.alpha_ == 1.0  # within one standard error of the best (the folds' spread)
    res = one.cv_results_
    se = res["std_test_score"][2] / np.sqrt(2)
    assert res["mean_test_score"][0] >= res["mean_test_score"][2] - se
    assert one.best_score_ == res["mean_test_score"][0]
    np.testing.assert_array_equal(res["mean_test_score"], best.cv_results_["mean_test_score"])


def test_default_selection_rules():
    """1se for the regressor (R^2), the best mean score for the classifier (accuracy)."""
    assert ConvexReLURegressorCV().alpha_selection == "1se"
    assert ConvexReLUClassifierCV().alpha_selection == "best"
    with pytest.raises(ValueError, match="'alpha_selection' parameter of ConvexReLUClassifierCV"):
        ConvexReLUClassifierCV(alpha_selection="min").fit(np.eye(4), [0, 1, 0, 1])


def test_path_patterns_check_the_budget_on_what_they_hold(rng):
    """The path's patterns are checked against the memory budget as sampled (200 of them)
    or as listed (the count found), not as max_patterns=2000."""
    from convexrelu import MemoryBudgetError, config_context

    X = rng.standard_normal((300, 4))  # far more than 2000 patterns with a bias
    # 17 * 300 * 200 bytes = 1.0 MB fit in 2 MiB; 17 * 300 * 2000 = 10.2 MB would not
    with config_context(memory_budget=2):
        pats = _path_patterns(ConvexReLURegressor(random_state=0), X)
    assert not pats.exact and pats.n_patterns == _PATH_PATTERNS
    with config_context(memory_budget=0.5):
        with pytest.raises(MemoryBudgetError, match=f"up to {_PATH_PATTERNS} patterns over "
                           "300 samples"):
            _path_patterns(ConvexReLURegressor(random_state=0), X)
    line = X[:, :1]  # 600 patterns, listed: 17 * 300 * 600 bytes = 3.1 MB
    with config_context(memory_budget=2):
        with pytest.raises(MemoryBudgetError, match="all 600 activation patterns of X"):
            _path_patterns(ConvexReLURegressor(), line)
    with config_context(memory_budget=4):
        assert _path_patterns(ConvexReLURegressor(), line).n_patterns == 600


def test_path_patterns_sample_fewer_than_the_plain_estimator(rng):
    X = rng.standard_normal((40, 4))  # far more than 2000 patterns with a bias
    pats = _path_patterns(ConvexReLURegressor(random_state=0), X)
    ref = sample_patterns(X, _PATH_PATTERNS, random_state=0, bias=True, linear=True)
    assert not pats.exact and _PATH_PATTERNS < ConvexReLURegressor().max_patterns
    np.testing.assert_array_equal(pats.gates, ref.gates)
    few = _path_patterns(ConvexReLURegressor(random_state=0, max_patterns=50), X)
    assert few.gates.shape[1] <= 50  # never more than max_patterns
    small = X[:6, :2]  # listed when within max_patterns, as the plain estimator does
    assert _path_patterns(ConvexReLURegressor(), small).exact
    assert _path_patterns(ConvexReLURegressor(patterns=7, random_state=0),
                          X).gates.shape[1] == 7


def test_one_sampling_warning_per_fit(reg_data):
    """Beyond max_patterns: the sampling warning once, not once per fold and refit."""
    X, y = reg_data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ConvexReLURegressorCV(alphas=[1.0, 0.3], cv=2, patterns="auto", max_patterns=15,
                              random_state=0, certify=False).fit(X, y)
    sampling = [w for w in caught if "max_patterns=15" in str(w.message)]
    assert len(sampling) == 1 and sampling[0].filename == __file__


def test_path_fits_do_not_warn_only_the_refit(reg_data):
    """Solver warnings of the path's fits (one per fold and alpha) are not the user's."""
    X, y = reg_data
    params = dict(FAST_REG, patterns=6, solver="fista", formulation="gated_relu", max_iter=1,
                  tol=1e-12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ConvexReLURegressorCV(alphas=[1.0, 0.1, 0.01], cv=3, n_iter_no_change=None,
                              **params).fit(X, y)
    assert sum(issubclass(w.category, ConvergenceWarning) for w in caught) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ConvexReLURegressorCV(alphas=[1.0, 0.1, 0.01], cv=3, refit=False, **params).fit(X, y)
    assert not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def _tol_of_the_fit(est, X, y):
    return est.tol


def test_path_tol_loosens_the_path_not_the_refit(reg_data):
    """The path's fits use max(tol, path_tol); the refit and path_tol=None use tol."""
    X, y = reg_data
    kw = dict(alphas=[0.1, 0.03], cv=2, scoring=_tol_of_the_fit, **FAST_REG)
    loose = ConvexReLURegressorCV(path_tol=1e-3, **kw).fit(X, y)
    assert np.all(loose.cv_results_["mean_test_score"] == 1e-3)
    assert loose.best_estimator_.tol == 1e-6
    exact = ConvexReLURegressorCV(path_tol=None, **kw).fit(X, y)
    assert np.all(exact.cv_results_["mean_test_score"] == 1e-6)
    tight = ConvexReLURegressorCV(path_tol=1e-3, **dict(kw, tol=1e-2)).fit(X, y)
    assert np.all(tight.cv_results_["mean_test_score"] == 1e-2)  # never tighter than tol
    assert ConvexReLURegressorCV().path_tol == 1e-3
    with pytest.raises(ValueError, match="'path_tol' parameter of ConvexReLURegressorCV"):
        ConvexReLURegressorCV(path_tol=0.0, **FAST_REG).fit(X, y)

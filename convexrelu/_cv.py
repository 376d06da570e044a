"""Cross-validated choice of ``alpha`` for the convex ReLU estimators.

:class:`ConvexReLURegressorCV` and :class:`ConvexReLUClassifierCV` follow
scikit-learn's ``LassoCV`` / ``LogisticRegressionCV``: a geometric grid of ``alpha``
relative to ``alpha_max`` (the smallest ``alpha`` whose optimal network is zero,
docs/mathematics.rst §4.2, §8.3), one warm-started path per fold from the largest
``alpha`` down, the largest ``alpha`` whose mean validation score is within one standard
error of the best one (or the best one), and a refit on all the data. The estimators are
composed of :class:`~convexrelu.ConvexReLURegressor` /
:class:`~convexrelu.ConvexReLUClassifier` (no numerical code here) and
:func:`convexrelu.alpha_max`.

``alpha`` is not scale-invariant: for the squared loss ``alpha_max`` is proportional to
the scale of ``y`` (the zero network's dual point is ``y - mean(y)``) and it grows with
``n`` (the loss is summed over the samples, the penalty is not), so a grid relative to
``alpha_max`` is the meaningful default, not an absolute value.
"""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
from sklearn.base import (BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, clone,
                          is_classifier)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import check_cv
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted, validate_data

from .arrangements import (ActivationPatterns, PatternLimitError, enumerate_patterns,
                           sample_patterns)
from .estimators import ConvexReLUClassifier, ConvexReLURegressor, _seed
from .losses import get_loss
from .solvers import alpha_max
from ._warnings import kept_filters, muted_convergence

__all__ = ["ConvexReLURegressorCV", "ConvexReLUClassifierCV"]

# parameters passed unchanged to the plain estimator (their constraints are its own)
_PASSTHROUGH = ("loss", "patterns", "bias", "penalize_bias", "formulation", "solver", "tol",
                "max_iter", "max_patterns", "random_state", "verbose", "certify")
# fitted attributes copied from the refitted plain estimator
_REFIT_ATTRIBUTES = ("network_", "objective_", "certificate_", "n_neurons_", "patterns_",
                     "exact_patterns_", "n_iter_")


def _restrict_patterns(pats: ActivationPatterns, X_fold: np.ndarray,
                       rows) -> ActivationPatterns:
    """The patterns of a subset of the rows (``X_fold``, the rows ``rows`` of the data).

    Every cell of the arrangement of a subset of the hyperplanes contains a cell of the
    full arrangement, so the full set's masks restricted to the rows give every pattern of
    the subset (the set stays exact when it was exact); duplicates are merged, the first
    kept with its gate. Restricting the masks is exact whatever the gates' accuracy (the
    gates of data with a huge offset need not reproduce their masks in floating point).
    """
    masks = np.asarray(pats.masks, dtype=bool)[np.asarray(rows)]
    packed = np.packbits(masks.T, axis=1, bitorder="little")
    first = np.sort(np.unique(packed, axis=0, return_index=True)[1])
    return ActivationPatterns.from_masks(X_fold, masks[:, first], pats.gates[:, first],
                                         bias=pats.bias, exact=pats.exact,
                                         method="restricted")


# patterns="auto" beyond max_patterns: each fold's path runs over this many sampled
# gates, not grown (the plain estimator's fit samples more and grows them). Measured on
# diabetes (one 80/20 split of the training data, 0.03 alpha_max, squared loss): 2000
# sampled patterns 15.7 s per fit, 200 patterns 3.2 s, with the same best alpha on the
# validation rows
_PATH_PATTERNS = 200


def _path_patterns(estimator, X_train) -> ActivationPatterns | str:
    """The pattern set of one fold's path (the same for every ``alpha``: warm starts).

    ``patterns="auto"`` lists the fold's patterns when there are at most ``max_patterns``,
    as the plain estimator does, and otherwise samples ``_PATH_PATTERNS`` gates (not
    ``max_patterns``) and does not grow them: the path's fits only rank the ``alpha``,
    the refit on all the data is the plain estimator's own fit. An int or an
    ``ActivationPatterns`` is the plain estimator's rule; ``"exact"`` beyond enumeration
    (column generation priced by branch and bound, no list) stays ``"exact"``.
    """
    p = estimator.patterns
    if isinstance(p, str) and p == "auto":
        n = X_train.shape[0]
        try:  # the budget checked on the count found (the enumeration packs its masks)
            pats = enumerate_patterns(X_train, bias=estimator.bias,
                                      max_patterns=estimator.max_patterns)
        except PatternLimitError:
            n_sample = min(_PATH_PATTERNS, estimator.max_patterns)
            estimator._check_pattern_memory(n, n_sample, given=False)
            return sample_patterns(X_train, n_sample,
                                   random_state=_seed(estimator.random_state),
                                   bias=estimator.bias, linear=True)
        estimator._check_pattern_memory(n, pats.n_patterns, given=False, listed=True)
        return pats
    pats = estimator._get_patterns(X_train)
    return "exact" if pats is None else pats


def _neg_log_loss(estimator, X, y) -> float:
    """Minus the mean log loss ``-log p(y_i | x_i)`` of ``estimator.predict_proba`` on
    ``(X, y)``: scikit-learn's ``neg_log_loss`` (probabilities clipped at the machine
    epsilon), except that a label the fold's training data lacked is not an error: its
    probability is 0, so it costs ``-log(eps)``."""
    P = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    classes = np.asarray(estimator.classes_)
    y = np.asarray(y)
    idx = np.clip(np.searchsorted(classes, y), 0, classes.size - 1)
    p = np.where(classes[idx] == y, P[np.arange(y.shape[0]), idx], 0.0)
    return -float(np.mean(-np.log(np.clip(p, np.finfo(np.float64).eps, 1.0))))


def _fit_path(estimator, X, y, train, test, alphas, scorer, patterns, n_iter_no_change=None):
    """Fit one fold's path from the largest ``alpha`` down with warm starts; score it.

    ``patterns`` is the fold's pattern set, or None to compute it on the fold's training
    data (:func:`_path_patterns`); the same set then serves every ``alpha``, so warm
    starts apply. With ``n_iter_no_change`` the path stops after that many consecutive
    ``alpha`` whose validation score is below the fold's best; the ``alpha`` not fitted
    get NaN.
    """
    X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]
    if patterns is None:
        patterns = _path_patterns(estimator, X_train)
    estimator.set_params(patterns=patterns, warm_start=True, certify=False)
    out = np.full((4, len(alphas)), np.nan)
    best, worse = -np.inf, 0
    for k, a in enumerate(alphas):
        estimator.set_params(alpha=float(a))
        t0 = time.perf_counter()
        with muted_convergence(), warnings.catch_warnings():
            # a path fit stopping a little above tol still ranks its alpha; the refit's
            # warnings are the user's (at most one per fit, not one per fold and alpha)
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            warnings.filterwarnings("ignore", message="Solution may be inaccurate",
                                    category=UserWarning)
            # said once, by the refit on all the data, at the user's line
            warnings.filterwarnings("ignore", message="X is poorly scaled",
                                    category=UserWarning)
            estimator.fit(X_train, y_train)
        t1 = time.perf_counter()
        out[0, k] = scorer(estimator, X_test, y_test)
        out[1:, k] = t1 - t0, time.perf_counter() - t1, estimator.objective_
        if out[0, k] > best:
            best, worse = out[0, k], 0
        elif not out[0, k] == best:  # a tie (e.g. the same accuracy) is not a drop
            worse += 1
        if n_iter_no_change is not None and worse >= n_iter_no_change:
            break
    return out


def _select(mean: np.ndarray, std: np.ndarray, n_splits: int, rule: str) -> int:
    """Index of the chosen ``alpha`` (``alphas`` decreasing; NaN means are never chosen).

    ``"best"``: the best mean score (the largest ``alpha`` on ties). ``"1se"``: the
    largest ``alpha`` whose mean score is within one standard error of the best one,
    ``std / sqrt(n_splits - 1)`` of the best ``alpha``'s fold scores (glmnet's
    ``lambda.1se``; with a single split, the best).
    """
    filled = np.where(np.isnan(mean), -np.inf, mean)
    best = int(np.argmax(filled))
    if rule == "best" or n_splits < 2:
        return best
    threshold = filled[best] - std[best] / np.sqrt(n_splits - 1)
    return int(np.flatnonzero(filled >= threshold)[0])


class _ConvexReLUCVBase:
    """Shared logic of the cross-validated estimators (a mixin: first in the bases, so
    that its ``score`` takes precedence over ``RegressorMixin`` / ``ClassifierMixin``)."""

    _estimator_class: type = ConvexReLURegressor
    _cv_constraints: dict = {
        "alphas": ["array-like", Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_alphas": [Interval(numbers.Integral, 1, None, closed="left")],
        "eps": [Interval(numbers.Real, 0, 1, closed="neither")],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "n_jobs": [numbers.Integral, None],
        "refit": ["boolean"],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "alpha_selection": [StrOptions({"1se", "best"})],
        "path_tol": [Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    # ------------------------------------------------------------------ pieces
    def _base_params(self) -> dict:
        names = self._estimator_class._get_param_names()
        # n_jobs parallelises the folds (and the refit's outputs, set there), not the
        # path fits' outputs
        return {k: getattr(self, k) for k in names
                if k not in ("alpha", "warm_start", "n_jobs") and hasattr(self, k)}

    def _base_estimator(self):
        return self._estimator_class(**self._base_params())

    def _targets(self, y):
        """``(columns of the scalar programs, each column's loss)`` for ``alpha_max``."""
        raise NotImplementedError  # pragma: no cover - abstract (each CV estimator defines it)

    def _full_patterns(self, X) -> ActivationPatterns:
        if isinstance(self.patterns, ActivationPatterns):
            self.patterns.check_data(X)
            if self.patterns.bias != bool(self.bias):
                raise ValueError(f"bias={self.bias} but the given patterns were computed "
                                 f"with bias={self.patterns.bias}; recompute them or change "
                                 "bias.")
            return self.patterns
        return self._base_estimator()._get_patterns(X)

    def _alpha_grid(self, X, y, pats):
        """``(alphas in decreasing order, alpha_max)``: the largest over the columns."""
        cols, loss = self._targets(y)
        amax = max(alpha_max(X, c, loss=loss, patterns=pats, bias=self.bias,
                             penalize_bias=self.penalize_bias, formulation="relu")
                   for c in cols)
        if self.alphas is None or isinstance(self.alphas, numbers.Integral):
            n_alphas = self.n_alphas if self.alphas is None else int(self.alphas)
            # amax = 0 (e.g. constant y): the zero network is optimal for every alpha, any
            # grid will do; the one relative to 1 keeps the programs well conditioned
            top = amax if np.isfinite(amax) and amax > 0 else 1.0
            return top * np.geomspace(1.0, self.eps, n_alphas), amax
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
            raise ValueError(f"alphas must be a non-empty array of finite floats > 0 (or an "
                             f"int: the number of grid points, or None); got "
                             f"{self.alphas!r}.")
        return np.sort(alphas)[::-1], amax

    def _selection_scorer(self, base):
        """The scorer that ranks the ``alpha``: ``scoring``; None is the plain estimator's
        ``score`` (the classifier overrides it)."""
        return check_scoring(base, scoring=self.scoring)

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y, groups):
        base = self._base_estimator()
        pats = self._full_patterns(X)
        alphas, self.alpha_max_ = self._alpha_grid(X, y, pats)
        cv = check_cv(self.cv, y, classifier=is_classifier(self))
        splits = list(cv.split(X, y, groups))
        scorer = self._selection_scorer(base)
        given = isinstance(self.patterns, ActivationPatterns)
        path_est = clone(base)
        if self.path_tol is not None:
            path_est.set_params(tol=max(self.tol, self.path_tol))
        with kept_filters():  # threads leave catch_warnings out of order
            paths = Parallel(n_jobs=self.n_jobs)(
                delayed(_fit_path)(clone(path_est), X, y, train, test, alphas, scorer,
                                   _restrict_patterns(pats, X[train], train) if given
                                   else None,
                                   self.n_iter_no_change)
                for train, test in splits)
        paths = np.stack(paths, axis=-1)  # (4, n_alphas, n_splits)
        scores, fit_times, score_times, objectives = paths
        self.alphas_ = alphas
        self.objective_path_ = objectives
        self.n_splits_ = len(splits)
        self.cv_results_ = _cv_results(alphas, scores, fit_times, score_times)
        self.best_index_ = _select(self.cv_results_["mean_test_score"],
                                   self.cv_results_["std_test_score"], len(splits),
                                   self.alpha_selection)
        self.alpha_ = float(alphas[self.best_index_])
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        for name in _REFIT_ATTRIBUTES + ("best_estimator_", "refit_time_"):
            self.__dict__.pop(name, None)  # a previous fit's, when refit is now False
        if self.refit:
            t0 = time.perf_counter()
            # sampled patterns (too many to list) are grown by the refit's own local search
            # when the plain estimator's rule is "auto": it draws the same sample again
            grow = (not pats.exact and isinstance(self.patterns, str)
                    and self.patterns == "auto")
            # the folds are done: n_jobs now solves the refit's outputs in parallel
            best = clone(base).set_params(alpha=self.alpha_,
                                          patterns="auto" if grow else pats,
                                          n_jobs=self.n_jobs)
            with warnings.catch_warnings():
                # the sampling warning was given once, by the grid's pattern set above
                warnings.filterwarnings("ignore", message="X has more than max_patterns",
                                        category=UserWarning)
                self.best_estimator_ = best.fit(X, y)
            if hasattr(self, "feature_names_in_"):
                # fitted on the array validated above: the names let best_estimator_ (to
                # which predict and score delegate) check a DataFrame's columns (without
                # them it warned on every DataFrame and took reordered columns silently)
                best.feature_names_in_ = self.feature_names_in_
            self.refit_time_ = time.perf_counter() - t0
            for name in _REFIT_ATTRIBUTES:
                setattr(self, name, getattr(best, name))
        return self

    # ------------------------------------------------------------------ delegation
    def _refitted(self):
        if not self.refit:
            raise AttributeError("This method needs the refitted best_estimator_, which is "
                                 "not computed with refit=False; set refit=True.")
        return True

    @available_if(_refitted)
    def predict(self, X) -> np.ndarray:
        """Predictions of ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    @available_if(_refitted)
    def score(self, X, y) -> float:
        """Score of ``best_estimator_`` on ``(X, y)`` with ``scoring``.

        ``scoring=None`` is the plain estimator's ``score`` (R^2 / accuracy).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        float
        """
        check_is_fitted(self, "best_estimator_")
        return float(check_scoring(self.best_estimator_, scoring=self.scoring)(
            self.best_estimator_, X, y))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _cv_results(alphas, scores, fit_times, score_times) -> dict:
    """A ``GridSearchCV``-style ``cv_results_`` (one row per alpha, decreasing)."""
    res = {"mean_fit_time": fit_times.mean(axis=1), "std_fit_time": fit_times.std(axis=1),
           "mean_score_time": score_times.mean(axis=1),
           "std_score_time": score_times.std(axis=1),
           "param_alpha": np.asarray(alphas, dtype=np.float64).copy(),
           "params": [{"alpha": float(a)} for a in alphas]}
    for k in range(scores.shape[1]):
        res[f"split{k}_test_score"] = scores[:, k].copy()
    mean = scores.mean(axis=1)
    res["mean_test_score"] = mean
    res["std_test_score"] = scores.std(axis=1)
    if np.all(np.isnan(mean)):
        raise ValueError("Every cross-validation score is NaN; check scoring and the data "
                         "(e.g. a test fold with a single sample gives an undefined R^2).")
    # as GridSearchCV: NaN ranks last, ties share the smallest rank
    filled = np.where(np.isnan(mean), np.nanmin(mean) - 1.0, mean)
    from scipy.stats import rankdata

    res["rank_test_score"] = rankdata(-filled, method="min").astype(np.int32)
    return res


# a fold's path stops after this many alphas in a row below its best validation score:
# the path runs from alpha_max down, and the small-alpha end (many neurons) is the slow one
_N_ITER_NO_CHANGE = 2

# The default grid (n_alphas=7, eps=1e-2). Measured: 5-fold CV on the training 75% of
# diabetes, iris, wine and linnerud (train_test_split(random_state=0), standardised X), 200
# sampled patterns per fold, 13 alphas from alpha_max to 1e-3 alpha_max. The best mean
# score fell at alpha / alpha_max = 0.01 (diabetes, R^2 0.535 +- 0.052), 0.0056 (iris,
# accuracy 0.964), 0.0032 (wine, 0.978) and 1 (linnerud: the zero network); the
# one-standard-error choice at 0.1 (diabetes 0.510), 0.056 (iris 0.955), 0.1 (wine 0.970)
# and 1. Below 0.01 the fits took 8-16 s per fold on diabetes against 0.6 s at 0.1. The
# plain estimator fitted on the whole diabetes training split scored test R^2 0.38, 0.35,
# 0.28 and 0.12 at alpha = 1741, 808, 375 and 174 (0.1 to 0.01 of that split's alpha_max
# over 2000 sampled patterns), the default MLPRegressor 0.28: hence "1se" by default.

_DOC_GRID = """alphas : None, int or array-like, default=None
        The ``alpha`` grid. None: ``n_alphas`` values from ``alpha_max`` down to
        ``eps * alpha_max``, geometrically spaced (from 1 down to ``eps`` when
        ``alpha_max = 0``, e.g. for a constant target, where every ``alpha`` gives the
        zero network); an int: that many such values; an array: those values (sorted
        into decreasing order). ``alpha_max`` is the smallest ``alpha`` at which the
        zero network (output bias only) is optimal over the pattern set of the training
        data (:func:`convexrelu.alpha_max`, ReLU formulation; docs/mathematics.rst §4.2,
        §8.3). With sampled patterns it is the value over the sample, a lower estimate of
        the value over all patterns (a sampled pattern set restricts the dual
        constraint).
    n_alphas : int, default=7
        Number of grid points when ``alphas`` is None.
    eps : float in (0, 1), default=1e-2
        The grid's smallest value over ``alpha_max``. Measured on diabetes, iris, wine
        and linnerud (5 folds, 13 ``alpha`` down to ``1e-3 alpha_max``): the
        one-standard-error choice fell between ``0.056`` and ``1 alpha_max`` (the best
        mean score between ``0.0032`` and ``1 alpha_max``), and the fits below
        ``1e-2 alpha_max`` (many neurons) took 8-16 s per fold on diabetes against 0.6 s
        at ``0.1 alpha_max``.
    cv : int, cross-validation generator or iterable, default=None
        As in scikit-learn (``sklearn.model_selection.check_cv``): None is 5-fold"""

_DOC_REST = """scoring : str, callable or None, default=None
        The validation score that ranks the ``alpha``: a scikit-learn scorer name or a
        callable ``scorer(estimator, X, y)``. None: the regressor's R^2 (its ``score``);
        the classifier's validation log loss (negated, as ``"neg_log_loss"``) with
        ``loss="logistic"``, its accuracy with a loss that has no probabilities. ``score``
        uses ``scoring``, and with None it is the plain estimator's ``score`` (R^2 /
        accuracy).
    n_jobs : int or None, default=None
        Folds fitted in parallel by joblib (honours ``joblib.parallel_config``); then the
        refit's outputs (one-vs-rest classes, regression columns), as the plain
        estimator's ``n_jobs``.
    refit : bool, default=True
        Refit the plain estimator on all the data at ``alpha_``.
    alpha_selection : {"1se", "best"}, default="1se" (regressor), "best" (classifier)
        How ``alpha_`` is chosen from the mean validation scores. ``"1se"``: the largest
        ``alpha`` whose mean score is at least the best mean score minus one standard
        error, ``std_test_score / sqrt(n_splits - 1)`` of the best ``alpha`` (the
        "one-standard-error rule" of Breiman et al. and glmnet's ``lambda.1se``): the
        most regularised network that the validation scores cannot tell from the best,
        which is also the cheapest to refit. ``"best"``: the best mean score (the largest
        ``alpha`` on ties), as ``GridSearchCV``, ``LassoCV`` and ``LogisticRegressionCV``
        choose. The regressor's default is ``"1se"``: on diabetes the best mean R^2 falls
        at a small ``alpha`` whose refit generalises worse than a larger one within the
        folds' noise. The classifier's is ``"best"`` (glmnet's ``lambda.min``): with
        accuracy as the score, one standard error over small folds spans much of the
        path (on wine, 133 training samples, ``"1se"`` chose ``0.215 alpha_max`` where
        the best mean accuracy was at ``0.1``); with the default log loss both rules
        chose the same ``alpha`` on iris, wine and breast cancer.
    path_tol : float or None, default=1e-3
        ``tol`` of the path's fits (the larger of ``tol`` and ``path_tol``); None: ``tol``,
        as ``cross_val_score`` of the plain estimator. The refit uses ``tol``. The path
        only ranks the ``alpha``: on breast cancer (one 80/20 split of the training data,
        200 sampled patterns, 7 ``alpha`` from ``alpha_max`` to ``1e-2 alpha_max``) the
        path took 87 s at ``tol=1e-3`` against 159 s at ``1e-6``, with the same validation
        accuracy at every ``alpha``.
    n_iter_no_change : int or None, default=2
        Early stopping of each fold's path: stop after this many ``alpha`` in a row whose
        validation score is below the best one of the fold so far (ties do not count; the
        path runs from ``alpha_max`` down, and its small-``alpha`` end, with many neurons,
        is the slow part). The ``alpha`` a fold did not fit get NaN scores, fit times and
        objectives, and a NaN mean score (ranked last, as ``GridSearchCV`` ranks failed
        fits). None fits the whole grid on every fold.
    patterns : {"auto", "exact"}, int or ActivationPatterns, default="auto"
        As in the plain estimator, applied to each fold's training data (``"exact"``
        enumerates, an int samples with ``random_state``), i.e. the patterns
        ``cross_val_score`` of the plain estimator would use; that set then serves the
        whole path of the fold (warm starts). ``"auto"`` lists the fold's patterns when
        there are at most ``max_patterns``, and otherwise samples 200 gates with
        ``random_state`` (at most ``max_patterns``), neither ``max_patterns`` nor grown as
        the plain estimator's fit does: the path only ranks the ``alpha``, and its fits
        are the slow part of the search. An :class:`ActivationPatterns` must be
        computed on the training ``X``; each fold uses its gates restricted to the fold's
        rows (every pattern of the fold's data when the set is exact). The refit uses the
        pattern set of all the training data (also the one of ``alpha_max``), so
        ``best_estimator_.patterns`` is an ``ActivationPatterns``; except when ``"auto"``
        had to sample (too many patterns to list): the refit then keeps ``"auto"``, so
        that the plain estimator grows the sample by its local search for violating
        neurons (the path's fits do not, for speed). The warning that patterns are
        sampled is given once per fit."""

_DOC_ATTRS = """alpha_ : float
        The chosen ``alpha`` (``alpha_selection``).
    alphas_ : ndarray of shape (n_alphas,)
        The grid, in decreasing order.
    alpha_max_ : float
        ``alpha_max`` of the training data over the refit's pattern set (computed also
        when ``alphas`` is given).
    cv_results_ : dict of ndarrays
        As ``GridSearchCV.cv_results_``, one row per ``alphas_`` entry: ``param_alpha``,
        ``params``, ``split{k}_test_score``, ``mean_test_score``, ``std_test_score``,
        ``rank_test_score``, ``mean_fit_time``, ``std_fit_time``, ``mean_score_time``,
        ``std_score_time`` (fit times of warm-started fits).
    best_index_ : int
    best_score_ : float
        ``cv_results_["mean_test_score"][best_index_]`` (with ``"1se"``, not necessarily
        the top of ``rank_test_score``, which ranks the mean scores), in the units of the
        selection's score (``scoring``; the classifier's default: minus the mean
        validation log loss).
    objective_path_ : ndarray of shape (n_alphas, n_splits)
        Training objective of each fold's fit along the path (NaN past a fold's early
        stop, see ``n_iter_no_change``).
    n_splits_ : int
    best_estimator_ : estimator
        The plain estimator refitted on all the data at ``alpha_`` (``refit=True``).
    refit_time_ : float
    network_, objective_, certificate_, n_neurons_, patterns_, exact_patterns_, n_iter_
        Those of ``best_estimator_`` (``refit=True``; ``n_iter_`` is the refit's).
    n_features_in_ : int"""


class ConvexReLURegressorCV(_ConvexReLUCVBase, RegressorMixin, BaseEstimator):
    __doc__ = f"""Two-layer ReLU regression network with ``alpha`` chosen by cross-validation.

    For each ``alpha`` of a decreasing grid and each fold,
    :class:`~convexrelu.ConvexReLURegressor` minimises on the fold's training data

    .. math::

        J(\\theta) = \\frac1n\\Big[\\sum_{{i=1}}^n \\tfrac12\\big(f_\\theta(x_i) - y_i\\big)^2
        + \\frac{{\\alpha}}{{2}}\\big(\\|W_1\\|_F^2 + \\|W_2\\|_F^2\\big)\\Big]

    to global optimality over the fold's activation patterns, from the largest ``alpha``
    down with warm starts (one estimator and one pattern set per fold, ``certify=False``);
    ``alpha_`` is the largest ``alpha`` within one standard error of the best mean
    validation score (``alpha_selection``), and the plain estimator is refitted on
    all the data at ``alpha_`` (certified when ``certify=True``). Modelled on
    scikit-learn's ``LassoCV``.

    Parameters
    ----------
    {_DOC_GRID}
        (``KFold``), an int that many folds.
    {_DOC_REST}
    loss, bias, penalize_bias, formulation, solver, tol, max_iter, max_patterns, \
random_state, verbose
        Passed to :class:`~convexrelu.ConvexReLURegressor` (``alpha_max`` is computed for
        ``loss``, each output's column keeping its share of the mean).
    certify : bool, default=True
        Certify the refitted network only (the path is fitted with ``certify=False``).

    Attributes
    ----------
    {_DOC_ATTRS}

    See Also
    --------
    ConvexReLURegressor : the estimator at one ``alpha`` (scikit-learn's ``LassoCV`` is
        the model of this interface).

    References
    ----------
    M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact
    polynomial-time convex optimization formulations for two-layer networks", ICML 2020.
    J. Friedman, T. Hastie and R. Tibshirani, "Regularization paths for generalized linear
    models via coordinate descent", J. Stat. Softw., 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from convexrelu import ConvexReLURegressorCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 2)); y = np.abs(X[:, 0]) + 0.1 * rng.standard_normal(40)
    >>> reg = ConvexReLURegressorCV(alphas=3, cv=3, patterns=20, random_state=0,
    ...                             solver="relu", penalize_bias=True).fit(X, y)
    >>> reg.alphas_.shape, bool(reg.alpha_ in reg.alphas_)
    ((3,), True)
    """

    _estimator_class = ConvexReLURegressor
    _parameter_constraints: dict = {
        **_ConvexReLUCVBase._cv_constraints,
        **{k: ConvexReLURegressor._parameter_constraints[k] for k in _PASSTHROUGH},
    }

    def __init__(self, alphas=None, *, n_alphas: int = 7, eps: float = 1e-2, cv=None,
                 scoring=None, n_jobs=None, refit: bool = True,
                 n_iter_no_change=_N_ITER_NO_CHANGE, alpha_selection="1se",
                 path_tol=1e-3,
                 patterns="auto",
                 loss="squared", bias: bool = True, penalize_bias: bool = False,
                 formulation: str = "relu", solver="auto", tol: float = 1e-6, max_iter=None,
                 max_patterns: int = 2000, random_state=None, verbose: bool = False,
                 certify: bool = True) -> None:
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.refit = refit
        self.n_iter_no_change = n_iter_no_change
        self.alpha_selection = alpha_selection
        self.path_tol = path_tol
        self.patterns = patterns
        self.loss = loss
        self.bias = bias
        self.penalize_bias = penalize_bias
        self.formulation = formulation
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.max_patterns = max_patterns
        self.random_state = random_state
        self.verbose = verbose
        self.certify = certify

    def _targets(self, y):
        Y = y[:, None] if y.ndim == 1 else y
        # each output is a scalar program whose loss keeps the share 1/c (column_loss)
        return [Y[:, j] for j in range(Y.shape[1])], get_loss(self.loss).column_loss(
            Y.shape[1])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None):
        """Choose ``alpha`` by cross-validation, then refit on all the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group splitter passed as ``cv``.

        Returns
        -------
        self : ConvexReLURegressorCV
        """
        X, y = validate_data(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True)
        return self._fit(X, np.asarray(y, dtype=np.float64), groups)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class ConvexReLUClassifierCV(_ConvexReLUCVBase, ClassifierMixin, BaseEstimator):
    __doc__ = f"""Two-layer ReLU classification network with ``alpha`` chosen by cross-validation.

    For each ``alpha`` of a decreasing grid and each (stratified) fold,
    :class:`~convexrelu.ConvexReLUClassifier` minimises on the fold's training data
    scikit-learn's ``MLPClassifier`` objective (one one-vs-rest program per class for
    more than two classes)

    .. math::

        J(\\theta) = \\frac1n\\Big[\\sum_{{i=1}}^n \\varphi\\big(f_\\theta(x_i); y_i\\big)
        + \\frac{{\\alpha}}{{2}}\\big(\\|W_1\\|_F^2 + \\|W_2\\|_F^2\\big)\\Big]

    to global optimality over the fold's activation patterns, from the largest ``alpha``
    down with warm starts (one estimator and one pattern set per fold, ``certify=False``);
    ``alpha_`` has the best mean validation score (the largest one on ties;
    ``alpha_selection``), and the plain estimator is refitted on all the data at
    ``alpha_`` (certified when ``certify=True``). Modelled on scikit-learn's
    ``LogisticRegressionCV``; the default score is the validation log loss (with
    ``loss="logistic"``: the loss the network is fitted to, as glmnet's default
    deviance), not the accuracy, which ties between ``alpha`` on small folds.

    Parameters
    ----------
    {_DOC_GRID}
        (``StratifiedKFold``), an int that many stratified folds. For more than two
        classes ``alpha_max`` is the largest of the one-vs-rest values.
    {_DOC_REST}
    loss : str or Loss, default="logistic"
        As in :class:`~convexrelu.ConvexReLUClassifier`.
    bias, penalize_bias, formulation, solver, tol, max_iter, max_patterns, random_state, \
verbose
        Passed to :class:`~convexrelu.ConvexReLUClassifier`.
    certify : bool, default=True
        Certify the refitted network only (the path is fitted with ``certify=False``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    {_DOC_ATTRS}

    See Also
    --------
    ConvexReLUClassifier : the estimator at one ``alpha`` (scikit-learn's
        ``LogisticRegressionCV`` is the model of this interface).

    References
    ----------
    M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact
    polynomial-time convex optimization formulations for two-layer networks", ICML 2020.
    """

    _estimator_class = ConvexReLUClassifier
    _parameter_constraints: dict = {
        **_ConvexReLUCVBase._cv_constraints,
        **{k: ConvexReLUClassifier._parameter_constraints[k] for k in _PASSTHROUGH},
    }

    def __init__(self, alphas=None, *, n_alphas: int = 7, eps: float = 1e-2, cv=None,
                 scoring=None, n_jobs=None, refit: bool = True,
                 n_iter_no_change=_N_ITER_NO_CHANGE, alpha_selection="best",
                 path_tol=1e-3,
                 patterns="auto",
                 loss="logistic", bias: bool = True, penalize_bias: bool = False,
                 formulation: str = "relu", solver="auto", tol: float = 1e-6, max_iter=None,
                 max_patterns: int = 2000, random_state=None, verbose: bool = False,
                 certify: bool = True) -> None:
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.refit = refit
        self.n_iter_no_change = n_iter_no_change
        self.alpha_selection = alpha_selection
        self.path_tol = path_tol
        self.patterns = patterns
        self.loss = loss
        self.bias = bias
        self.penalize_bias = penalize_bias
        self.formulation = formulation
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.max_patterns = max_patterns
        self.random_state = random_state
        self.verbose = verbose
        self.certify = certify

    def _selection_scorer(self, base):
        # the validation log loss by default (a classifier with probabilities): the
        # accuracy of small folds ties between alphas and ranked too large an alpha.
        # Measured (25 % held out, random_state=0 split, standardised X, CV seeds 0-3):
        # test accuracy 0.974 -> 1.000 on iris and 0.978 -> 1.000 on wine, the same 0.958
        # on breast cancer; CV fit 15-17 s -> 16-17 s (iris), 14-15 s -> 18-24 s (wine:
        # the log loss kept improving down the grid, so the paths did not stop early; in
        # the realdata benchmark iris 14.0 -> 22.3 s, wine 15.1 -> 25.0 s)
        if self.scoring is None and hasattr(base, "predict_proba"):
            return _neg_log_loss
        return super()._selection_scorer(base)

    def _targets(self, y):
        classes, yi = np.unique(y, return_inverse=True)
        # the plain classifier's +-1 columns: classes_[1] for two classes, else one vs rest
        positive = [1] if classes.size == 2 else range(classes.size)
        return [np.where(yi == k, 1.0, -1.0) for k in positive], self.loss

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None):
        """Choose ``alpha`` by (stratified) cross-validation, then refit on all the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group splitter passed as ``cv``.

        Returns
        -------
        self : ConvexReLUClassifierCV
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValueError(f"ConvexReLUClassifierCV needs samples of at least 2 classes in "
                             f"the data; got only one class: {self.classes_[0]!r}.")
        return self._fit(X, y, groups)

    @available_if(_ConvexReLUCVBase._refitted)
    def decision_function(self, X) -> np.ndarray:
        """Logits of ``best_estimator_``: (n_samples,) for two classes, else (n_samples,
        n_classes)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.decision_function(X)

    def _proba_available(self):
        """``predict_proba`` exists when the plain classifier with this ``loss`` has it."""
        self._refitted()
        if not hasattr(self._estimator_class(loss=self.loss), "predict_proba"):
            raise AttributeError(f"predict_proba is not available with loss={self.loss!r} "
                                 "(ConvexReLUClassifier has it only with loss='logistic').")
        return True

    @available_if(_proba_available)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of ``best_estimator_`` (``loss='logistic'`` only).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @available_if(_proba_available)
    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_log_proba(X)

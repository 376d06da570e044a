"""scikit-learn estimators that train two-layer ReLU networks to global optimality.

The estimators only compose the pieces: activation patterns
(:mod:`convexrelu.arrangements`), the convex program (:mod:`convexrelu.program`), a
solver (:mod:`convexrelu.solvers`) and the map back to a network
(:class:`convexrelu.network.ReLUNet`). They minimise scikit-learn's ``MLPRegressor`` /
``MLPClassifier`` objective for one hidden ReLU layer of any width,

.. math::

    J(\\theta) = \\frac1n\\Big[\\sum_{i=1}^n \\varphi(f_\\theta(x_i); y_i)
    + \\frac{\\alpha}{2}\\big(\\|W_1\\|_F^2 + \\|W_2\\|_F^2\\big)\\Big],

through its convex equivalent (Pilanci & Ergen, 2020). With exact patterns the fitted
network is a global minimiser over all widths; with sampled patterns it is the optimum
over the sampled patterns only (an upper bound on the global optimum).

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact polynomial-time
convex optimization formulations for two-layer networks", ICML 2020.
"""

from __future__ import annotations

import numbers
import os
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from joblib import effective_n_jobs
from sklearn.utils._available_if import available_if
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted, validate_data

from ._memory import _budget_bytes, block_size, check_memory
from .arrangements import ActivationPatterns, PatternLimitError, enumerate_patterns
from .arrangements import sample_patterns
from .losses import Loss, get_loss, loss_names, shift_invariant
from .network import ReLUNet
from .program import ConvexProgram
from .regularizers import GroupL2Penalty
from .solvers import SOLVERS, BaseSolver, CvxpySolver, choose_solver, get_solver
from ._warnings import kept_filters, muted_convergence, warn_convergence
from .solvers._base import solver_class
from .solvers._seeds import solve_on_gated_support

__all__ = ["ConvexReLURegressor", "ConvexReLUClassifier"]


def _seed(random_state) -> int | None:
    """An int seed (or None) from sklearn-style ``random_state``."""
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    return random_state  # a Generator is accepted by sample_patterns


# patterns a grown fit adds per round: at most _GROWN_COLUMNS // d_aug (between 4 and 20),
# so that a restricted program's Newton matrix (2 k d_aug rows) stays small while the
# support is unknown. Measured (one BLAS thread, random_state=0, the same objectives): a
# digits class against the rest (d_aug = 65) solved its first 20-pattern logistic program
# in 51 Newton steps, 25.5 s, and the network kept 2 neurons; with 4 patterns per round,
# 0.4 s + 0.7 s (two passes over the rows), the fit 41.5 s -> 12.2 s; breast cancer
# (d_aug = 31) 4.5 s -> 2.5 s with 9 per round
_GROWN_COLUMNS = 300


# BLAS threads while a fit solves (threadpoolctl; restored afterwards). The solves are many
# small dense products and factors (tens to a few thousand rows), where a second BLAS
# thread costs more than it gains. Measured on a 2-core machine (default estimators,
# alternately with OMP_NUM_THREADS=1 and 2): diabetes 10.9 / 12.0 s against 12.4 / 13.5 s,
# breast cancer 2.3 s against 3.1 s, digits class 8 against the rest 97 s against 147 s
_FIT_BLAS_THREADS = 1


def _fit_threads():
    """The context in which a fit solves: ``_FIT_BLAS_THREADS`` BLAS threads."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=_FIT_BLAS_THREADS, user_api="blas")


def _column_in_worker(est, parent_pid, X, y, loss, pats, solver, warm, pre):
    """:meth:`_ConvexReLUBase._column` in a joblib worker, with one BLAS thread. In another
    process the warnings it raises are recorded and returned (they would be lost there);
    in the caller's process (a thread backend) they are raised as they come, because
    recording warnings is not thread-safe."""
    with _fit_threads():
        if os.getpid() == parent_pid:
            return est._column(X, y, loss, pats, solver, warm, pre) + ([],)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = est._column(X, y, loss, pats, solver, warm, pre)
    return out + (list(caught),)


def _grown_n_add(d_aug: int) -> int:
    """Patterns added per round of a grown fit (see ``_GROWN_COLUMNS``)."""
    return int(min(20, max(4, _GROWN_COLUMNS // max(int(d_aug), 1))))


def _patterns_key(pats) -> str:
    """A digest of the pattern set (bias flag and bit-packed masks) for warm starts."""
    import hashlib

    h = hashlib.sha1(np.ascontiguousarray(pats.packed).tobytes())
    return f"{pats.bias}:{pats.n_patterns}:{h.hexdigest()}"


def _warn_scale(X) -> None:
    """:func:`~convexrelu._validation.warn_poorly_scaled`, pointing at the user's line."""
    from ._validation import warn_poorly_scaled
    from ._warnings import user_stacklevel

    warn_poorly_scaled(X, stacklevel=user_stacklevel() + 1)  # warned one frame below


class _ConvexReLUBase(BaseEstimator):
    """Shared fit logic of the two estimators."""

    _parameter_constraints: dict = {
        # alpha > 0: at 0 the program interpolates, the working-set pricing divides by
        # alpha, and the program refuses it (cvxpy alone solved it)
        "alpha": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "patterns": [StrOptions({"exact", "auto"}), Interval(numbers.Integral, 1, None,
                                                             closed="left"),
                     ActivationPatterns],
        "max_patterns": [Interval(numbers.Integral, 1, None, closed="left")],
        "bias": ["boolean"],
        "penalize_bias": ["boolean"],
        "formulation": [StrOptions({"relu", "gated_relu"})],
        "solver": [StrOptions(set(SOLVERS) | {"auto"}), BaseSolver],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "certify": ["boolean"],
        "warm_start": ["boolean"],
        "n_jobs": [numbers.Integral, None],
    }

    # ------------------------------------------------------------------ patterns
    def _get_patterns(self, X: np.ndarray) -> ActivationPatterns:
        p = self.patterns
        if isinstance(p, bool):  # an int to Python, so _parameter_constraints lets it pass
            raise ValueError(
                f"The 'patterns' parameter of {type(self).__name__} must be 'exact', 'auto', "
                "an int >= 1 (that many sampled patterns) or an ActivationPatterns; a bool "
                f"is not a number of patterns. Got {p!r} instead.")
        if isinstance(p, ActivationPatterns):
            p.check_data(X)
            if p.bias != bool(self.bias):
                raise ValueError(f"bias={self.bias} but the given patterns were computed with "
                                 f"bias={p.bias}; recompute them or change bias.")
            self._check_pattern_memory(X.shape[0], p.n_patterns, given=True)
            return p
        if isinstance(p, numbers.Integral) and not isinstance(p, bool):
            self._check_pattern_memory(X.shape[0], int(p), given=False)
            return sample_patterns(X, int(p), random_state=_seed(self.random_state),
                                   bias=self.bias, linear=True)
        try:
            # the enumeration holds its masks packed (n / 8 bytes a pattern): the budget
            # is checked on the count it found, before the program's masks are formed
            pats = enumerate_patterns(X, bias=self.bias, max_patterns=self.max_patterns,
                                      progress=bool(self.verbose) or None)
        except PatternLimitError as exc:
            if p == "exact":
                if self._bnb_prices(X):
                    return None  # no list: column generation priced by branch and bound
                raise ValueError(
                    f"patterns='exact': {exc} Beyond enumeration, 'exact' is solved by "
                    "column generation priced by branch and bound only for "
                    "formulation='relu', solver 'auto', 'relu' or 'column_generation' and a "
                    "data rank at most 10.") from None
        else:
            self._check_pattern_memory(X.shape[0], pats.n_patterns, given=False,
                                       listed=True)
            return pats
        from ._warnings import user_stacklevel

        grows = self._will_grow()
        n_sample = min(self.max_patterns, self._GROWN_SAMPLE) if grows else self.max_patterns
        held = ""
        if grows:
            # a grown fit's sample only seeds its search: where the memory budget holds
            # fewer patterns over these samples (from about 250,000 rows at the default
            # budget), it samples as many as it holds, down to _GROWN_SAMPLE_MIN
            fit = self._patterns_in_budget(X.shape[0])
            if self._GROWN_SAMPLE_MIN <= fit < n_sample:
                n_sample = int(fit)
                held = " (as many as the memory budget holds over these samples)"
        elif self._conic_auto():
            # solver="auto" solves a non-smooth loss (hinge) as one conic problem over all
            # the patterns, whose time and memory grow with their number: a sample of
            # max_patterns was refused by its memory check (200 x 10 data: 2 GiB over 2000
            # patterns), and took 158 s on 150 x 10 data. It samples _CONIC_SAMPLE, or as
            # many as the memory budget holds
            fit = self._conic_patterns_in_budget(X.shape[0], X.shape[1] + bool(self.bias))
            if min(fit, self._CONIC_SAMPLE) < n_sample:
                n_sample = int(max(1, min(fit, self._CONIC_SAMPLE)))
                held = (f" (one conic problem over all of them: solver='auto' solves the "
                        f"{get_loss(self.loss).name} loss so; {self._CONIC_SAMPLE} at most"
                        + (", as many as the memory budget holds" if fit < self._CONIC_SAMPLE
                           else "") + ")")
        self._check_pattern_memory(X.shape[0], n_sample, given=False)
        how = ", grown by a local search for violating neurons" if grows else ""
        warnings.warn(
            f"X has more than max_patterns={self.max_patterns} activation patterns; fitting "
            f"over {n_sample} sampled patterns{held} instead{how}. The result is the "
            "optimum over "
            "the patterns it used (an upper bound on the global optimum), not a certified "
            "global optimum. Raise max_patterns, "
            "reduce n_features, or pass patterns='exact' to never sample (the global optimum "
            "by column generation priced by branch and bound up to data rank 10, an error "
            "beyond).", UserWarning,
            stacklevel=user_stacklevel())  # the user's line, past sklearn's fit wrapper
        return sample_patterns(X, n_sample, random_state=_seed(self.random_state),
                               bias=self.bias, linear=True)

    # a grown fit starts from this many sampled patterns (at most max_patterns): the local
    # search finds the neurons that matter, so a larger sample only costs pricing time.
    # Measured (diabetes, 25% held out, defaults otherwise, 2-core machine under load):
    # 250 / 500 / 1000 / 2000 sampled patterns reached the objectives 1444.9 / 1451.0 /
    # 1445.6 / 1445.1 in 8.2 / 6.5 / 13.9 / 15.9 s, all with test R^2 0.357-0.358
    _GROWN_SAMPLE = 500
    # a sampled fit solved as one conic problem (solver="auto" with a non-smooth loss:
    # the hinge) samples this many (at most max_patterns). Measured (make_classification
    # (200, 10), 25% held out, hinge, one BLAS thread, the machine under load): 100 / 200 /
    # 400 patterns 6.0 / 11.1 / 30.2 s, test accuracy 0.94 / 0.96 / 0.96
    _CONIC_SAMPLE = 200
    # ... and at least this many where the memory budget holds fewer than _GROWN_SAMPLE
    # (below it the fit is refused: lower max_patterns or raise the budget). Measured
    # (make_regression(10^6, 20), 750,000 training rows, the default 2 GiB budget: 168
    # patterns, one BLAS thread): 47.8 s, test R^2 0.9963, peak RSS 4,052 MB
    _GROWN_SAMPLE_MIN = 50

    def _will_grow(self) -> bool:
        """Whether a sampled fit will be grown (:meth:`_grows`, decided before sampling)."""
        return (isinstance(self.patterns, str) and self.patterns == "auto"
                and isinstance(self.solver, str) and self.solver == "auto"
                and self.formulation == "relu" and self._solver_name(self.loss) == "relu")

    # bytes per (sample, pattern) of a fit: the bool masks and their float64 signs in the
    # ConvexProgram (9), plus the float64 products X_aug @ G of sampling (8)
    _BYTES_PER_MASK_ENTRY = 17
    # bytes per (sample, pattern, feature) of a cvxpy problem over all patterns (measured:
    # breast cancer, 426 x 31 with bias, 2000 patterns, 14.5 GB peak RSS)
    _CVXPY_BYTES_PER_ENTRY = 500

    def _conic_auto(self) -> bool:
        """Whether ``solver="auto"`` resolves to the conic problem over all patterns (a
        non-smooth loss: no residual dual point to price patterns with)."""
        return (isinstance(self.solver, str) and self.solver == "auto"
                and self._solver_name(self.loss) == "cvxpy")

    def _conic_patterns_in_budget(self, n: int, d_aug: int) -> int:
        """How many patterns a cvxpy problem over ``n`` samples and ``d_aug`` columns can
        hold within the memory budget."""
        return _budget_bytes() // max(self._CVXPY_BYTES_PER_ENTRY * n * d_aug, 1)

    def _patterns_in_budget(self, n: int) -> int:
        """How many patterns' masks over ``n`` samples the memory budget holds."""
        return _budget_bytes() // max(self._BYTES_PER_MASK_ENTRY * n, 1)

    def _check_pattern_memory(self, n: int, n_patterns: int, *, given: bool,
                              listed: bool = False) -> None:
        """Refuse a pattern set too large for the memory budget, before the program's
        masks are formed (``listed``: the ``n_patterns`` patterns the enumeration found)."""
        what = (f"the masks of the given {n_patterns} patterns over {n} samples" if given
                else f"the masks of all {n_patterns} activation patterns of X over {n} "
                "samples" if listed
                else f"the masks of up to {n_patterns} patterns over {n} samples")
        fit = self._patterns_in_budget(n)  # named in the remedy
        most = f"at most {fit} fit the budget" if fit >= 1 else ""
        at_most = f" ({most})" if most else ""
        if given:
            remedy = "pass fewer patterns" + at_most
        elif listed:
            sampled = "patterns are then sampled" if self.patterns == "exact" else \
                ("patterns are then sampled: min(max_patterns, "
                 f"{self._GROWN_SAMPLE}) of them for a grown fit")
            sampled = f" ({sampled}; {most})" if most else f" ({sampled})"
            remedy = (f"pass patterns='auto' with max_patterns below {n_patterns}{sampled}"
                      if self.patterns == "exact"
                      else f"lower max_patterns below {n_patterns}{sampled}")
        elif isinstance(self.patterns, numbers.Integral):
            remedy = "lower patterns (the number of sampled patterns)" + at_most
        else:
            remedy = "lower max_patterns" + at_most
        check_memory(self._BYTES_PER_MASK_ENTRY * n * n_patterns, what,
                     remedy + " or fit on fewer samples")

    def _bnb_prices(self, X) -> bool:
        """Whether ``patterns="exact"`` beyond enumeration is solved by column generation
        priced by branch and bound (the ReLU formulation, a working-set solver, data rank
        at most 10)."""
        from .solvers._column_generation import _bnb_can_price

        return (self.formulation == "relu" and isinstance(self.solver, str)
                and self.solver in ("auto", "relu", "column_generation")
                and _bnb_can_price(X, bool(self.bias)))

    def _solve_outputs_bnb(self, X, Y, loss, const):
        """``patterns="exact"`` beyond enumeration (:meth:`_solve_outputs` without a list).

        Each column is solved by column generation priced by branch and bound
        (:func:`~convexrelu.solvers._column_generation.column_generation` with
        ``patterns="bnb"``): the global optimum over all patterns, none listed. Each
        column's network is certified by the branch and bound (``certify(...,
        patterns="bnb")``). ``patterns_`` becomes the union of the final working sets.
        The columns flagged in ``const`` (constant targets) get the constant network.
        """
        from .solvers._column_generation import column_generation

        loss = get_loss(loss)
        col_loss = loss.column_loss(Y.shape[1]) if loss.task == "regression" else loss
        out = []
        gates = [np.zeros((X.shape[1] + self.bias, 0))]
        for j in range(Y.shape[1]):
            if const[j]:
                out.append(self._constant_column(X, Y[:, j], col_loss, None))
                continue
            sol, used = column_generation(
                X, Y[:, j], alpha=self.alpha_, loss=col_loss, bias=self.bias,
                penalize_bias=self.penalize_bias, patterns="bnb", tol=self.tol,
                verbose=int(bool(self.verbose)), random_state=_seed(self.random_state),
                n_jobs=self.n_jobs, **self._max_iter_param())
            net = ReLUNet.from_convex(sol.V, sol.W, bias=self.bias,
                                      output_bias=sol.output_bias,
                                      penalize_bias=self.penalize_bias, tol=1e-9)
            if net.n_neurons > 0:
                net = net.prune(X, penalize_bias=self.penalize_bias)
            net, obj, status = self._no_worse_than_constant(X, Y[:, j], col_loss, net,
                                                            sol.status)
            cert = self._certify_one(X, Y[:, j], col_loss, None, net) if self.certify \
                else None
            out.append((net, sol.n_iter, status, None, cert, obj))
            gates.append(used.gates)
        self._bnb_patterns = ActivationPatterns.from_gates(X, np.hstack(gates), bias=self.bias)
        return self._gather(out, None, Y.shape[1])

    def _solver_name(self, loss) -> str:
        """The registered solver name (``solver="auto"`` resolved for the problem)."""
        if self.solver == "auto":
            return choose_solver(self.formulation, loss)
        return self.solver

    def _solver(self, loss) -> BaseSolver:
        if isinstance(self.solver, BaseSolver):
            return self.solver
        name = self._solver_name(loss)
        # tol is a certified relative gap; a conic backend's tol bounds its own residuals,
        # which must be tighter for the gap to follow
        tol = self.tol if solver_class(name)._tol_is_gap else self.tol * 1e-2
        return get_solver(name, tol=tol, verbose=bool(self.verbose), **self._max_iter_param())

    def _max_iter_param(self) -> dict:
        """``max_iter`` for the solver, or nothing (the solver's own default) when None."""
        return {} if self.max_iter is None else {"max_iter": self.max_iter}

    # alpha="auto": this share of alpha_max up to _ALPHA_REF_SAMPLES training samples.
    # Measured (25% held out, 200 sampled patterns) on diabetes / breast cancer / iris /
    # wine (331 / 426 / 112 / 133 training samples), test score at 1e-1, 3e-2, 1e-2
    # alpha_max: 0.399/0.888/0.921/0.978, 0.368/0.944/0.974/1.0, 0.291/0.965/0.974/1.0
    # against the default MLP's 0.283/0.972/0.974/1.0; 3e-2 is within 0.03 of the MLP
    # everywhere and sparser (faster) than 1e-2
    _ALPHA_RATIO = 3e-2
    # ... and beyond it the share falls as 1 / sqrt(n) (alpha_max grows as n, the penalty
    # that holds back a given noise level as sqrt(n)), to at least _ALPHA_MIN_RATIO.
    # Measured (25% held out, X standardised, one BLAS thread, two runs at a time on the
    # 2-core machine; test score and fit time at 3e-2 and at 1e-2, the rule's share from
    # 13,500 training samples): make_friedman1(20000, 10, noise=1) 0.890 / 11.2 s and
    # 0.926 / 14.5 s (3e-3: 0.945 / 34.9 s; MLP 0.957); make_classification(20000, 20)
    # 0.849 / 27.2 s and 0.861 / 42.7 s (MLP 0.857); a 5-class make_classification(20000,
    # 20, n_informative=10, n_classes=5) 0.805 / 199.4 s and 0.843 / 230.6 s (alone;
    # 5e-3: 0.852 / 415.4 s; MLP 0.908). The share holds up to 1,500 samples, not only up
    # to the 400 or so of the measurements above: digits (1,347 training samples) at
    # 1.63e-2 (0.03 sqrt(400 / n)) scored 0.980 against 0.976 in nearly twice the time
    # (56.0 s against 31.8 s), where its default fit is held to 30 s
    _ALPHA_REF_SAMPLES = 1500
    _ALPHA_MIN_RATIO = 1e-2
    # ... and from _ALPHA_LARGE_SAMPLES it rises again, as 0.01 sqrt(n / 50,000), to 3e-2
    # (from 450,000): there the gain of a small share fades while its cost does not
    # (make_classification(n, 20), 0.01 against 0.03 the same day: +0.015 of accuracy
    # for 1.5 times the time at 75,000 samples, +0.008 for 1.6 times at 150,000, +0.004
    # for 2.6 times at 225,000; the 750,000-row fit took 597 s at 0.03)
    _ALPHA_LARGE_SAMPLES = 50_000

    @classmethod
    def _auto_ratio(cls, n_samples: int) -> float:
        """The share of ``alpha_max`` that ``alpha="auto"`` takes for ``n_samples``
        training samples: ``0.03`` up to 1,500 samples, ``0.03 sqrt(1500 / n)`` beyond,
        at least ``0.01`` (from 13,500 samples), and from 50,000 samples
        ``0.01 sqrt(n / 50000)``, at most ``0.03`` (from 450,000)."""
        n = max(int(n_samples), 1)
        if n > cls._ALPHA_LARGE_SAMPLES:
            share = cls._ALPHA_MIN_RATIO * np.sqrt(n / cls._ALPHA_LARGE_SAMPLES)
        else:
            share = cls._ALPHA_RATIO * np.sqrt(cls._ALPHA_REF_SAMPLES / n)
        return float(np.clip(share, cls._ALPHA_MIN_RATIO, cls._ALPHA_RATIO))

    def _resolve_alpha(self, X, Y, loss, pats) -> float:
        """``alpha_``: the given ``alpha``, or ``_auto_ratio(n) * alpha_max`` for
        ``"auto"``.

        ``alpha_max`` here is the gated bound ``max_i ||X_aug^T D_i lambda_0||`` at the
        zero network (output bias only) over the fit's patterns: one matrix product, and
        an upper bound on the ReLU program's ``alpha_max``. With a free hidden bias the
        program does not change when a feature is shifted (the bias absorbs it), so the
        bound is taken over the centred features: the same up to rounding on centred X,
        and ``alpha_`` no longer grows with a column's offset (a ``year`` column of values
        near 2000 made it hundreds of times the ReLU ``alpha_max``: the zero network).
        """
        if not (isinstance(self.alpha, str) and self.alpha == "auto"):
            return float(self.alpha)
        if pats is None:  # patterns="exact" beyond enumeration: alpha_max over a sample
            pats = sample_patterns(X, self.max_patterns, random_state=_seed(self.random_state),
                                   bias=self.bias, linear=True)
        from .certificates._gap import dual_point, pattern_correlations

        loss = get_loss(loss)
        col_loss = loss.column_loss(Y.shape[1]) if loss.task == "regression" else loss
        Xa = pats.augment(X)
        reg = GroupL2Penalty(Xa.shape[1], free_bias=self.bias and not self.penalize_bias)
        top = 0.0
        lams = [dual_point(col_loss, np.zeros(X.shape[0]), col_loss.encode_targets(Y[:, j]),
                           output_bias=True)[0] for j in range(Y.shape[1])]
        Xp, L = reg.penalized(Xa), np.column_stack(lams)
        if reg.free:  # shift-invariant: the bound of the centred features
            Xp = Xp - Xp.mean(axis=0)
        # one pass over the masks for all columns, blocks of their float64 copies within
        # a quarter of the budget
        for _, masks, _ in pats.iter_blocks(block_size(8 * X.shape[0], maximum=4096)):
            C = pattern_correlations(Xp, masks.astype(np.float64), L)  # X_pen^T D_i lam_j
            top = max(top, float(np.max(np.linalg.norm(C, axis=2), initial=0.0)))
        if top == 0.0:
            return 1.0  # constant targets: any alpha gives the zero network
        return self._auto_ratio(X.shape[0]) * top

    def _solve_outputs(self, X, Y, loss, pats):
        """Solve one scalar program per column of ``Y``; return networks, totals, certificates.

        A regression loss keeps each column's share ``1/c`` of scikit-learn's mean over
        ``n * c`` entries (:meth:`~convexrelu.losses.Loss.column_loss`); a classifier's
        one-vs-rest columns are binary problems of their own. ``objective_`` is the
        objective of the fitted network itself (the sum of the columns' sub-networks'
        objectives). With ``certify=True`` each column's network is certified
        (docs/mathematics.rst §4.5) over the same patterns.
        """
        loss = get_loss(loss)
        col_loss = loss.column_loss(Y.shape[1]) if loss.task == "regression" else loss
        n_cols = Y.shape[1]
        # a constant regression column: the constant network, no solve (a relative gap
        # cannot close on an optimum of 0); the other columns are solved as usual
        const = np.ptp(Y, axis=0) == 0 if loss.task == "regression" else np.zeros(n_cols, bool)
        if pats is None:
            return self._solve_outputs_bnb(X, Y, loss, const)
        if const.all():
            out = [self._constant_column(X, Y[:, j], col_loss, pats) for j in range(n_cols)]
            return self._gather(out, pats, n_cols)
        todo = np.flatnonzero(~const)
        solver = self._solver(col_loss)
        warm = self._warm_solutions(pats, n_cols)
        jobs = min(effective_n_jobs(self.n_jobs), todo.size) if todo.size > 1 else 1
        joint = dict(zip(todo, self._joint_columns(X, Y[:, todo], col_loss, pats, solver,
                                                   [warm[j] for j in todo], jobs)))
        if jobs > 1:
            # independent columns (one-vs-rest classes, regression outputs) in parallel,
            # each with one BLAS thread; warnings raised in a worker are raised here
            with kept_filters():  # threads leave catch_warnings out of order
                solved = Parallel(n_jobs=jobs)(
                    delayed(_column_in_worker)(self, os.getpid(), X, Y[:, j], col_loss,
                                               pats, solver, warm[j], joint[j])
                    for j in todo)
            # once per text, at the user's line (in a worker process the frames that
            # warned lead to joblib's worker loop, not to the line that called fit)
            from ._warnings import user_stacklevel

            seen = set()
            for *_, caught in solved:
                for w in caught:
                    key = (str(w.message), w.category)
                    if key not in seen:
                        seen.add(key)
                        warnings.warn(w.message, w.category, stacklevel=user_stacklevel())
            solved = dict(zip(todo, (r[:-1] for r in solved)))
        else:
            solved = {j: self._column(X, Y[:, j], col_loss, pats, solver, warm[j], joint[j])
                      for j in todo}
        out = [solved[j] if j in solved else self._constant_column(X, Y[:, j], col_loss, pats)
               for j in range(n_cols)]
        return self._gather(out, pats, n_cols)

    def _gather(self, out, pats, n_cols):
        """:meth:`_solve_outputs`'s result from its columns' :meth:`_column` tuples; the
        first-stage solutions are kept for the next fit's warm start (not with
        ``pats=None``, the branch and bound's fits, which have none)."""
        nets, objective, n_iter, statuses, certs, first = [], 0.0, 0, [], [], []
        for net, it, status, sol, cert, obj in out:
            first.append(sol)
            objective += obj
            n_iter = max(n_iter, it)
            statuses.append(status)
            nets.append(net)
            certs.append(cert)
        if pats is not None:
            self._warm_ = {"key": (_patterns_key(pats), self.formulation, n_cols),
                           "solutions": first}
        self._warn_constant(statuses)
        return nets, objective, n_iter, statuses, certs

    def _constant_column(self, X, y, loss, pats):
        """:meth:`_column` for a constant regression column: the constant network is
        optimal (no loss, no penalty), with no solve and no first-stage solution."""
        net = self._constant_network(X, y, loss)
        cert = self._certify_one(X, y, loss, pats, net) if self.certify else None
        obj = net.objective(X, y, self.alpha_, loss, penalize_bias=self.penalize_bias)
        return net, 1, "optimal", None, cert, obj

    def _column(self, X, y, loss, pats, solver, warm, pre):
        """One column's network and certificate: ``(net, n_iter, status, first-stage
        solution, certificate or None, objective of the network)``."""
        keep = []
        net, it, status = self._solve_one(X, y, loss, pats, solver, warm=warm, keep=keep,
                                          pre=pre)
        net, obj, status = self._no_worse_than_constant(X, y, loss, net, status)
        cert = self._certify_one(X, y, loss, pats, net) if self.certify else None
        return net, it, status, keep[0], cert, obj

    # _no_worse_than_constant: a network above the constant one's objective by more than
    # this (relative) is replaced by it (and reported beyond the fit's tol)
    _CONSTANT_RTOL = 1e-12

    def _no_worse_than_constant(self, X, y, loss, net, status):
        """``(net, objective, status)``: the column's network, or the constant network (no
        neuron, the best output bias) where that one's objective is lower.

        The constant network is feasible for every program, so the optimum is never above
        it; a solved network above it is a numerical failure, seen on poorly scaled data
        (a raw Unix timestamp as a feature: the solver's products cancel to garbage and the
        prediction was off by 144 on a target of unit scale). It is replaced, and its
        certificate then shows the gap honestly; where the excess is beyond ``tol``
        (relative) the status becomes ``"constant_network"``, which the fit reports in one
        convergence warning (:meth:`_warn_constant`).
        """
        obj = net.objective(X, y, self.alpha_, loss, penalize_bias=self.penalize_bias)
        const = self._constant_network(X, y, loss)
        obj0 = const.objective(X, y, self.alpha_, loss, penalize_bias=self.penalize_bias)
        # relative to the constant network's objective, or (a constant target, whose
        # optimum is 0) to the loss of zero predictions
        zero = float(loss.value(np.zeros(X.shape[0]), loss.encode_targets(y)))
        scale = max(abs(obj0), abs(zero) / X.shape[0]) or 1.0  # (y = 0: rounding only)
        if not obj > obj0 + self._CONSTANT_RTOL * scale:
            return net, obj, status
        if obj <= obj0 + self.tol * scale:
            return const, obj0, status  # within the fit's tolerance: no failure to report
        return const, obj0, "constant_network"

    @staticmethod
    def _warn_constant(statuses) -> None:
        """One convergence warning for the columns whose network :meth:`_no_worse_than_constant`
        replaced (at the user's line)."""
        bad = [j for j, s in enumerate(statuses) if s == "constant_network"]
        if not bad:
            return
        from ._warnings import user_stacklevel

        which = "" if len(statuses) == 1 else \
            f" (output or class {', '.join(map(str, bad))} of {len(statuses)})"
        warn_convergence(
            f"The solved network's objective was above the constant network's (no "
            f"neuron, the best output bias){which}, which every program admits: the "
            "solve failed numerically, and the constant network is returned "
            "(solution_status_ 'constant_network'). Standardise X (e.g. "
            "make_pipeline(StandardScaler(), ...)), or check it for huge values.",
            stacklevel=user_stacklevel())

    @staticmethod
    def _constant_network(X, y, loss) -> ReLUNet:
        """The network without neurons whose output bias minimises the loss."""
        c0 = float(np.ravel(loss.output_shift(np.zeros(X.shape[0]),
                                              loss.encode_targets(y)))[0])
        return ReLUNet(np.zeros((0, X.shape[1])), np.zeros(0), np.zeros((1, 0)),
                       np.array([c0 if np.isfinite(c0) else 0.0]))

    def _certify_one(self, X, y, loss, pats, net):
        """The certificate of one column's network (its own scalar problem, docs/mathematics.rst
        §4.5); ``pats=None`` (``patterns="exact"`` beyond enumeration): by the branch and
        bound."""
        from .certificates import certify

        if pats is None:
            return certify(net, X, y, alpha=self.alpha_, loss=loss, patterns="bnb",
                           tol=self.tol, hidden_bias=self.bias,
                           penalize_bias=self.penalize_bias,
                           random_state=_seed(self.random_state), n_jobs=self.n_jobs)
        free_or_none = not (self.bias and self.penalize_bias)
        if pats.exact:
            # two features: the exact angular sweep is faster than the listed patterns
            patterns = "exact" if (X.shape[1] == 2 and free_or_none and loss.smooth) \
                else pats
        else:
            # sampled patterns: against every network of any width, exactly when the
            # arrangement is small enough to list (10 x max_patterns), else by a local
            # search for violating neurons (heuristic, never called a proof)
            try:
                patterns = enumerate_patterns(X, bias=self.bias,
                                              max_patterns=10 * self.max_patterns)
            except PatternLimitError:
                patterns = "search"
        return certify(net, X, y, alpha=self.alpha_, loss=loss, patterns=patterns,
                       tol=self.tol, hidden_bias=self.bias, penalize_bias=self.penalize_bias)

    def _set_certificate(self, certs, names=None) -> None:
        """``certificate_``: one certificate, or one per column, each marked with its
        column (``info["scope"]``): it certifies that column's sub-network for that
        column's problem alone, not the block-diagonal network against networks whose
        hidden neurons serve several columns."""
        if len(certs) > 1 and self.certify:
            for j, cert in enumerate(certs):
                cert.info["scope"] = (f"output {j} of {len(certs)}" if names is None else
                                      f"the one-vs-rest problem of class {names[j]!r}")
        self.certificate_ = None if not self.certify else (
            certs[0] if len(certs) == 1 else list(certs))

    def _warm_solutions(self, pats, n_cols):
        """The previous fit's first-stage solutions when ``warm_start`` applies, else Nones.

        They are reused only for the same patterns (same masks), formulation and number
        of outputs; ``alpha`` (or ``y``) may change, which is what a path needs.
        """
        prev = getattr(self, "_warm_", None)
        if not self.warm_start or prev is None:
            return [None] * n_cols
        key = (_patterns_key(pats), self.formulation, n_cols)
        return list(prev["solutions"]) if prev["key"] == key else [None] * n_cols

    def _joint_columns(self, X, Y, loss, pats, solver, warm, jobs):
        """The first-stage solutions of all columns (one-vs-rest classes, regression
        outputs) at once where they can share their products with the masks, else Nones
        (each column is then solved in :meth:`_solve_one`):

        * gated: :meth:`FistaSolver.solve_columns
          <convexrelu.solvers.FistaSolver.solve_columns>`, one loop whose every product
          serves all columns;
        * ReLU with one job: the columns' working-set loops in lock-step, every pricing
          of the pattern set one pass over its masks for all of them (a sampled fit:
          :func:`~convexrelu.solvers._column_generation.solve_grown_columns`; else the
          solver's ``solve_columns``). With several jobs the columns run in parallel
          instead.
        """
        n_cols = Y.shape[1]
        none = [None] * n_cols
        if n_cols < 2:
            return none
        if self.formulation == "gated_relu":
            if not hasattr(solver, "solve_columns"):
                return none
            progs = [ConvexProgram(X, Y[:, j], pats, loss=loss, alpha=self.alpha_,
                                   bias=self.bias, penalize_bias=self.penalize_bias,
                                   formulation="gated_relu") for j in range(n_cols)]
            return solver.solve_columns(progs, warm)
        if jobs > 1 or self.formulation != "relu":
            return none
        progs = [self._program(X, Y[:, j], loss, pats) for j in range(n_cols)]
        if self._grows(pats, loss):
            return self._solve_grown(progs, warm)
        if hasattr(solver, "solve_columns") and "relu" in solver._formulations:
            return solver.solve_columns(progs, warm)
        return none

    def _program(self, X, y, loss, pats):
        return ConvexProgram(X, y, pats, loss=loss, alpha=self.alpha_, bias=self.bias,
                             penalize_bias=self.penalize_bias, formulation=self.formulation)

    def _solve_one(self, X, y, loss, pats, solver, warm=None, keep=None, pre=None):
        """One column: solve (or take the jointly solved ``pre``), map to a network,
        prune. Returns ``(net, n_iter, status)``."""
        prog = self._program(X, y, loss, pats)
        if self.formulation not in solver._formulations:
            raise ValueError(
                f"solver {self.solver!r} cannot solve formulation={self.formulation!r} (it "
                f"handles {list(solver._formulations)}). Use solver='auto', or "
                "formulation='gated_relu' with solver='fista'.")
        if isinstance(solver, CvxpySolver) and pre is None:  # a conic problem, all patterns
            fit = self._conic_patterns_in_budget(prog.n_samples, prog.d_aug)
            p = self.patterns
            remedy = (f"pass patterns={fit} or fewer" if isinstance(p, numbers.Integral)
                      else f"pass at most {fit} patterns" if isinstance(p, ActivationPatterns)
                      else f"lower max_patterns (about {fit} fit) or pass patterns=<a number "
                      "of sampled patterns>")
            remedy = (f"{remedy}: solver='auto' solves the {get_loss(loss).name} loss as "
                      "this conic problem (loss='logistic' takes the working-set solver, "
                      "which never forms it)" if self._conic_auto() else
                      f"use solver='auto' (never a conic problem over all patterns with a "
                      f"smooth loss), or {remedy}")
            check_memory(self._CVXPY_BYTES_PER_ENTRY * prog.n_samples * prog.n_patterns
                         * prog.d_aug,
                         f"a cvxpy problem over {prog.n_patterns} patterns of {prog.n_samples} "
                         f"samples and {prog.d_aug} columns", remedy)
        if self._grows(pats, loss) and pre is None:
            # one working-set loop prices the sample and grows it (no solve over the
            # sample first: the loop would price the same patterns again)
            sol = self._solve_grown([prog], [warm])[0]
        else:
            sol = solver.solve(prog, warm_start=warm) if pre is None else pre
        if keep is not None:
            keep.append(sol)
        n_iter = sol.n_iter
        if self.formulation == "gated_relu":
            # the network: the ReLU program restricted to the gated solution's support
            own = "relu" in solver._formulations  # the user's solver, at the user's tol
            relu_solver = solver if own else get_solver(
                "relu", tol=min(self.tol, 1e-8), verbose=bool(self.verbose))
            gated_ok = sol.status == "optimal"
            if own and gated_ok:
                sol = solve_on_gated_support(prog, sol, relu_solver)
            else:
                # a failed gated solve has warned already (one convergence warning per
                # fit); the solver made here aims below tol and is judged against tol
                # below
                with muted_convergence(), warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    sol = solve_on_gated_support(prog, sol, relu_solver)
            gap = float(sol.info.get("rel_gap", np.nan))
            # judged here: the solver made here missed its 1e-8 after a gated solve that
            # converged (the user's solver has spoken for itself; a failed gated solve's
            # status stands, it has warned; no gap, nothing to judge)
            judged = not own and gated_ok and sol.status != "optimal" and \
                not np.isnan(gap)
            if judged and gap <= self.tol:
                # 1e-8 missed (a flat logistic optimum: the dual point from the
                # predictions is only as accurate as they are), tol met
                sol.status = "optimal"
            elif judged:
                warn_convergence(
                    f"The ReLU network on the gated solution's support stopped at a "
                    f"certified relative duality gap {gap:.2e} (over its patterns), above "
                    f"tol={self.tol:g}. Loosen tol, or raise alpha (nearly separable "
                    "classes with a small alpha make the optimum flat).", stacklevel=2)
            n_iter += sol.n_iter
        net = ReLUNet.from_convex(sol.V, sol.W, bias=self.bias, output_bias=sol.output_bias,
                                  penalize_bias=self.penalize_bias, tol=1e-9)
        if net.n_neurons > 0:
            net = net.prune(X, penalize_bias=self.penalize_bias)
        return net, n_iter, sol.status

    # the growth of a sampled fit (solve_grown): at most this many local searches (counted,
    # not timed, so that a fit does not depend on the machine's speed). Measured (2000
    # sampled patterns, 0.03 alpha_max, a 2-core machine under load): diabetes 1515.5
    # over the sample, 1468.3 grown with 2 searches, 1445.1 with 13, 1470.2 over 20,000
    # sampled patterns; breast cancer 0.2215 over the sample, 0.1530 grown (3 searches; the
    # growth stopped by itself), 0.1912 over 20,000 sampled patterns
    _MAX_SEARCHES = 5

    def _grows(self, pats, loss) -> bool:
        """Whether the fit grows its pattern set by local search: ``patterns="auto"`` fell
        back to sampling, ``solver="auto"`` resolved to ``"relu"``, ReLU formulation."""
        return not pats.exact and self._will_grow()

    def _solve_grown(self, progs, warm):
        """The optima over the sampled patterns of the programs ``progs`` (one per column,
        solved in lock-step), each grown by a local search for violating neurons
        (:func:`~convexrelu.solvers._column_generation.solve_grown_columns`); ``warm``: per
        program a previous grown solution (``warm_start``), whose support seeds the
        working set, or None."""
        from .solvers._column_generation import solve_grown_columns

        from ._warnings import user_stacklevel

        rounds = {} if self.max_iter is None else {"max_iter": self.max_iter}
        warm = [None if w is None or w.info.get("patterns") is None else w for w in warm]
        sols = solve_grown_columns(progs, warm_start=warm, tol=self.tol,
                                   n_add=_grown_n_add(progs[0].d_aug),
                                   max_searches=self._MAX_SEARCHES, search_time=None,
                                   random_state=_seed(self.random_state),
                                   verbose=int(bool(self.verbose)), **rounds)
        short = [s for s in sols if s.status != "optimal"]
        if short:  # one warning for the programs solved together, as other solves warn
            gap = max(float(s.info.get("rel_gap", np.nan)) for s in short)
            what = "" if len(sols) == 1 else f" on {len(short)} of its {len(sols)} programs"
            warn_convergence(f"the grown fit stopped short of tol={self.tol:g}{what} (a "
                             f"relative duality gap of {gap:.3g} over the patterns it used). "
                             f"{short[0].info['hint']}", stacklevel=user_stacklevel())
        return sols

    @staticmethod
    def _stack(nets) -> ReLUNet:
        """One network with a block-diagonal second layer (one sub-network per output)."""
        if len(nets) == 1:
            return nets[0]
        W1 = np.vstack([n.W1 for n in nets])
        b1 = np.concatenate([n.b1 for n in nets])
        W2 = np.zeros((len(nets), W1.shape[0]))
        s = 0
        for j, n in enumerate(nets):
            W2[j, s:s + n.n_neurons] = n.W2[0]
            s += n.n_neurons
        b2 = np.concatenate([n.b2 for n in nets])
        return ReLUNet(W1, b1, W2, b2)

    def _set_fitted(self, X, nets, objective, n_iter, statuses, pats):
        self.network_ = self._stack(nets)
        self.objective_ = float(objective)
        self.n_neurons_ = int(self.network_.n_neurons)
        exact = pats is None or bool(pats.exact)
        if pats is None:  # column generation priced by branch and bound: the working sets
            pats = self.__dict__.pop("_bnb_patterns")
        self.patterns_ = pats
        self.exact_patterns_ = exact
        self.n_iter_ = int(max(1, n_iter))
        self.solution_status_ = statuses[0] if len(set(statuses)) == 1 else statuses

    def _raw(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.network_.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class ConvexReLURegressor(RegressorMixin, _ConvexReLUBase):
    """Two-layer ReLU regression network trained to global optimality.

    Minimises scikit-learn's ``MLPRegressor`` objective (one hidden ReLU layer, any
    width, weight decay ``alpha``, unpenalised biases) by solving the equivalent convex
    program over the activation patterns of the data (docs/mathematics.rst §3.1, §8.1):

    .. math::

        \\min_{\\{v_i, w_i\\}, c_0}\\ \\frac1n\\Big[\\frac12\\Big\\|\\sum_i D_iX(v_i - w_i)
        + c_0 - y\\Big\\|^2 + \\alpha\\sum_i\\big(\\|v_i\\| + \\|w_i\\|\\big)\\Big]
        \\ \\text{ s.t. }\\ (2D_i - I)Xv_i \\ge 0,\\ (2D_i - I)Xw_i \\ge 0 .

    Several targets are fitted as independent scalar problems over shared patterns: the
    exact optimum for a network with a block-diagonal second layer (one sub-network per
    output, docs/mathematics.rst §3.7).

    Parameters
    ----------
    alpha : float or "auto", default="auto"
        Weight decay, with scikit-learn's ``MLPRegressor`` meaning. ``"auto"``:
        ``r(n) * alpha_max``, where ``alpha_max = max_i ||X_c^T D_i lambda_0||`` (the
        residual ``lambda_0`` of the output bias alone, over the fit's patterns; ``X_c``
        the features, centred when the hidden bias is free) is an upper bound on the scale
        above which the optimum is the zero network (:func:`convexrelu.alpha_max`, which
        the CV estimators use, is that scale exactly, at the cost of pricing every
        pattern), and ``r(n) = 0.03`` up to 1,500 training samples, ``0.03 sqrt(1500 /
        n)`` beyond, at least ``0.01`` (``alpha_max`` grows as ``n``, the penalty a noise
        level needs as ``sqrt(n)``: a fixed share underfits larger data), and from 50,000
        samples ``0.01 sqrt(n / 50000)`` up to ``0.03`` again from 450,000 (there a
        smaller share's gain fades while its cost does not). It is relative,
        so invariant to the scale of ``y`` and, with a free hidden bias, to shifting a
        feature; an absolute default is a trap (at ``alpha=1e-3`` the global optimum
        interpolates ``load_diabetes``: train R² 1.00, test R² -0.70).
        The value used is ``alpha_``; :class:`ConvexReLURegressorCV` chooses it by
        cross-validation.
    loss : {"squared", "huber"} or Loss, default="squared"
        The data term: scikit-learn's squared loss, or the Huber loss (robust regression;
        ``HuberLoss(delta=...)`` to set its threshold), or any registered regression
        :class:`~convexrelu.losses.Loss`.
    patterns : {"auto", "exact"}, int or ActivationPatterns, default="auto"
        ``"exact"``: all patterns; beyond ``max_patterns`` (ReLU formulation, solver
        ``"auto"``, ``"relu"`` or ``"column_generation"``, data rank at most 10) the global
        optimum over all patterns by column generation priced by branch and bound, none
        listed (``patterns_`` then holds the final working set), an error otherwise;
        ``"auto"``: all
        patterns when there are at most ``max_patterns``, else sampled patterns with a
        ``UserWarning``: with ``solver="auto"`` and the ReLU formulation, 500 of them (or
        ``max_patterns`` if fewer) grown by a local search for violating neurons: one
        working-set loop prices the sample and adds the neurons the search
        (:func:`~convexrelu.certificates.search_violators`) finds to violate the dual
        constraint, until neither the sample nor the search finds one or 5 searches are
        spent (a count, not a time: the fit is reproducible); the fit is then the
        optimum over the grown set, at most the optimum over the sample; with a
        non-smooth loss (the classifier's ``loss="hinge"``), which ``solver="auto"``
        solves as one conic problem over all the patterns, 200 of them (or
        ``max_patterns``, or as many as the memory budget holds, if fewer), not grown.
        An int: that many sampled gates (not grown). With ``bias=True`` every sample starts with the
        all-active pattern (``sample_patterns(..., linear=True)``: a neuron affine on the
        data, which Gaussian gates almost never draw), then Gaussian gates; an
        :class:`~convexrelu.arrangements.ActivationPatterns` computed on the training X
        (not grown). Memory: patterns whose masks would exceed the memory budget
        (:func:`convexrelu.set_config`) are refused with a
        :class:`~convexrelu.MemoryBudgetError` before they are allocated. The budget
        is checked for the patterns the fit holds: those the enumeration lists (it runs
        first, its masks packed in bits), or the sampled ones (``min(max_patterns,
        500)`` for a grown fit, ``max_patterns`` otherwise), not for ``max_patterns``
        listed ones. Where the budget holds fewer than 500 patterns over the training
        samples, a grown fit samples as many as it holds (at least 50; the warning says
        so).
    bias : bool, default=True
        Hidden-layer bias.
    penalize_bias : bool, default=False
        Penalise the hidden bias with the weights (Pilanci–Ergen convention).
    formulation : {"relu", "gated_relu"}, default="relu"
        ``"gated_relu"`` first solves the gated relaxation (needs ``penalize_bias=True``
        when ``bias=True``) and then the ReLU program restricted to the patterns it uses.
    solver : "auto", str or BaseSolver, default="auto"
        ``"auto"`` (:func:`convexrelu.solvers.choose_solver`): ``"relu"`` for the ReLU
        formulation (an interior point or a working-set loop, never a conic problem over
        the whole pattern set), ``"fista"`` for the gated one. Or a registered name
        (``convexrelu.solvers.SOLVERS``: ``"relu"``, ``"fista"``, ``"cvxpy"``,
        ``"column_generation"``) or a solver instance. The gated solver runs on torch,
        on the CPU or a GPU, when given as an instance:
        ``solver=FistaSolver(backend="torch", device="cuda", dtype="float64")`` (its
        ``tol`` and ``max_iter`` are then its own); with several outputs its gated
        stage solves all of them jointly (``FistaSolver.solve_columns``). The ReLU
        program that follows the gated stage is solved on the CPU.
    tol : float, default=1e-6
        Relative duality-gap tolerance (certified by every solver).
    max_iter : int or None, default=None
        Solver iteration limit; None uses the solver's own default (rounds of the
        working-set loop for "relu", iterations for "fista" and cvxpy/Clarabel).
    max_patterns : int, default=2000
        Largest number of patterns for ``"exact"`` / ``"auto"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the sampled patterns.
    verbose : bool, default=False
    certify : bool, default=True
        Certify the fitted network after the solve (:func:`convexrelu.certify`,
        docs/mathematics.rst §4.5; ``tol`` is the relative-gap tolerance of
        ``certificate_.optimal``). The solver itself already certifies its solution over
        the program's patterns; this certifies the fitted network against every network
        of any width. It costs one pass over the patterns (an angular sweep for two
        features); ``False`` skips it, e.g. inside a grid search.
    warm_start : bool, default=False
        Start the solver from the previous ``fit``'s solution when the pattern set, the
        formulation and the number of outputs are unchanged (e.g. refitting with a new
        ``alpha`` along a path, see :func:`convexrelu.regularization_path`). The
        first-order solvers and column generation use it; cvxpy/Clarabel (an
        interior-point method) cannot and ignores it.
    n_jobs : int or None, default=None
        The outputs' programs solved in parallel by joblib (honours
        ``joblib.parallel_config``): the columns of a multi-output ``y``, the classes of
        a one-vs-rest classifier (more than two classes). None is one job (unless in a
        ``joblib.parallel_config`` context), -1 all processors. Each job solves with one
        BLAS thread. With an int ``random_state`` the result is the same as with one job;
        a ``RandomState`` or ``Generator`` is copied to each job, so the jobs' draws differ
        from one job's sequence of draws. With ``patterns="exact"`` past enumeration
        (branch and bound), the outputs run one after the other and ``n_jobs`` worker
        processes bound the branch and bound's nodes instead.

    Attributes
    ----------
    alpha_ : float
        The weight decay used (``alpha``, or its value for ``"auto"``).
    network_ : ReLUNet
        The fitted network (pruned to at most ``n_samples`` neurons per output).
    objective_ : float
        The convex optimum in scikit-learn's normalisation (comparable with
        ``MLPRegressor.loss_``).
    n_neurons_ : int
    patterns_ : ActivationPatterns
        The listed or sampled patterns (a grown fit's network may use patterns beyond
        them, see ``patterns``).
    exact_patterns_ : bool
        Whether the program was solved over the complete pattern set (then
        ``objective_`` is the global optimum over all widths, with several outputs over
        the networks with one sub-network per output): ``patterns_`` is that set,
        or, for ``patterns="exact"`` beyond enumeration, the working set of the column
        generation priced by branch and bound.
    n_iter_ : int
    solution_status_ : str
        The solver's status (``"optimal"``, ``"max_iter_reached"``, ...; a list with one
        per output or class where they differ); ``"constant_network"`` where the solve
        ended above the objective of the constant network (no neuron, the best output
        bias), a numerical failure, and that network was returned.
    certificate_ : Certificate, list of Certificate or None
        The duality-gap certificate of ``network_`` against every two-layer ReLU network
        of any width (``None`` with ``certify=False``). It checks all patterns
        (``certificate_.exact``, and ``optimal`` when the relative gap is within ``tol``)
        when ``patterns_`` is exact. With sampled patterns it checks the whole arrangement
        when it has at most ``10 * max_patterns`` patterns, and otherwise reports the best
        violating neuron a local search finds (``heuristic``, never a proof). With several
        outputs, one certificate per output's scalar problem (its share of
        ``objective_``; ``info["scope"]`` names it): ``optimal`` there means globally
        optimal for that output alone. A network whose hidden neurons serve several
        outputs can reach a lower ``objective_`` than the block-diagonal fit;
        ``certify(network_, X, Y)`` bounds those too, conservatively.
    n_features_in_ : int

    Notes
    -----
    ``fit`` runs its solves with one BLAS thread (through ``threadpoolctl``; the
    setting is restored afterwards): they are many small dense products and
    factorisations, and on a 2-core machine a second thread made default fits
    1.1-1.5x slower (diabetes, breast cancer, digits).

    References
    ----------
    M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact
    polynomial-time convex optimization formulations for two-layer networks", ICML 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from convexrelu import ConvexReLURegressor
    >>> X = np.linspace(-1, 1, 8)[:, None]; y = np.abs(X[:, 0])
    >>> reg = ConvexReLURegressor(alpha=1e-3, patterns="exact").fit(X, y)
    >>> reg.exact_patterns_
    True
    """

    _parameter_constraints: dict = {
        **_ConvexReLUBase._parameter_constraints,
        "loss": [StrOptions(set(loss_names("regression"))), Loss],
    }

    def __init__(self, alpha="auto", *, loss="squared", patterns="auto",
                 bias: bool = True, penalize_bias: bool = False, formulation: str = "relu",
                 solver="auto", tol: float = 1e-6, max_iter=None, max_patterns: int = 2000,
                 random_state=None, verbose: bool = False, certify: bool = True,
                 warm_start: bool = False, n_jobs=None) -> None:
        self.alpha = alpha
        self.loss = loss
        self.patterns = patterns
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
        self.warm_start = warm_start
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the globally optimal network over the chosen patterns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self : ConvexReLURegressor
        """
        X, y = validate_data(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True)
        _warn_scale(X)
        y = np.asarray(y, dtype=np.float64)
        self._y_ndim = y.ndim
        Y = y[:, None] if y.ndim == 1 else y
        # the output bias is free, so a shift of a target column changes nothing but that
        # bias: the programs are solved on the shifted target and the shift added back. A
        # target far from 0 against its spread (1e5 + N(0, 1)) otherwise lost its digits
        # in the solvers' residuals (a gap of 3e-5 left, 17 neurons instead of 2; 0.1 +
        # one rounding step ran for over ten minutes). Values within a factor of two of the
        # median are shifted exactly (Sterbenz). Only for a loss of z - y (squared, Huber:
        # Loss.shift_invariant). A column that varies only within a few rounding steps of
        # its values is taken as constant, its median (its exact optimum fits that
        # rounding: y = 0.1 with one value one step off took 110 s and 147 neurons).
        med = np.median(Y, axis=0)
        flat = np.ptp(Y, axis=0) <= 4 * np.finfo(np.float64).eps * np.max(np.abs(Y), axis=0)
        Y = np.where(flat, med, Y)
        shift = med if shift_invariant(get_loss(self.loss)) else np.zeros_like(med)
        Y = Y - shift
        with _fit_threads():
            pats = self._get_patterns(X)
            self.alpha_ = self._resolve_alpha(X, Y, self.loss, pats)
            nets, obj, n_iter, st, certs = self._solve_outputs(X, Y, self.loss, pats)
        nets = [ReLUNet(n.W1, n.b1, n.W2, n.b2 + c) for n, c in zip(nets, shift)]
        self._set_fitted(X, nets, obj, n_iter, st, pats)
        self._set_certificate(certs)
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions of ``network_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        out = self._raw(X)
        if self._y_ndim == 2 and out.ndim == 1:
            out = out[:, None]
        return out

    def to_sklearn(self):
        """The fitted network as a fitted scikit-learn ``MLPRegressor``.

        Same weights, so ``predict`` agrees with this estimator's to rounding; for a
        2-D ``y`` with one column the MLP returns shape (n_samples,) where this estimator
        returns (n_samples, 1) (``MLPRegressor`` flattens one output). ``alpha`` is
        copied; the MLP's ``loss_`` is not meaningful (see :meth:`ReLUNet.to_sklearn`).

        Returns
        -------
        sklearn.neural_network.MLPRegressor
        """
        check_is_fitted(self, "network_")
        return self.network_.to_sklearn("regressor", alpha=self.alpha_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class ConvexReLUClassifier(ClassifierMixin, _ConvexReLUBase):
    """Two-layer ReLU classification network trained to global optimality.

    Binary problems minimise scikit-learn's ``MLPClassifier`` objective (logistic loss on
    one logit, weight decay ``alpha``) through the convex program of docs/mathematics.rst §3.1
    with labels
    ``y_i`` in ``{-1, +1}`` (``classes_[1]`` is ``+1``):

    .. math::

        \\min_{\\{v_i, w_i\\}, c_0}\\ \\frac1n\\Big[\\sum_j\\log\\Big(1 + e^{-y_j
        (\\sum_i D_iX(v_i - w_i) + c_0)_j}\\Big) + \\alpha\\sum_i\\big(\\|v_i\\|
        + \\|w_i\\|\\big)\\Big]\\ \\text{ s.t. }\\ (2D_i - I)Xv_i \\ge 0,\\ (2D_i - I)Xw_i\\ge 0.

    With ``c > 2`` classes, one binary one-vs-rest program per class over shared patterns
    (a network with a block-diagonal second layer; ``objective_`` is the sum of the
    ``c`` binary objectives). This is not sklearn's softmax objective.

    Parameters
    ----------
    alpha : float or "auto", default="auto"
        As in :class:`ConvexReLURegressor` (``"auto"``: ``r(n) * alpha_max``, ``r(n)``
        from ``0.03`` up to 1,500 training samples down to ``0.01`` from 13,500 to
        50,000, then up to ``0.03`` again from 450,000).
    loss : {"logistic", "hinge"} or Loss, default="logistic"
    patterns, bias, penalize_bias, formulation, solver, tol, max_iter, max_patterns, \
random_state, verbose, certify, warm_start, n_jobs
        As in :class:`ConvexReLURegressor` (``n_jobs``: the one-vs-rest classes in
        parallel).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    network_ : ReLUNet
        One output (the logit of ``classes_[1]``) for two classes, else one logit per
        class.
    alpha_, objective_, n_neurons_, patterns_, exact_patterns_, n_iter_, solution_status_, \
certificate_, n_features_in_
        As in :class:`ConvexReLURegressor`. With ``c > 2`` classes ``certificate_`` holds
        one certificate per one-vs-rest problem.

    Notes
    -----
    ``fit`` runs its solves with one BLAS thread, as :class:`ConvexReLURegressor` does.

    References
    ----------
    M. Pilanci and T. Ergen, "Neural networks are convex regularizers", ICML 2020.
    """

    _parameter_constraints: dict = {
        **_ConvexReLUBase._parameter_constraints,
        "loss": [StrOptions(set(loss_names("classification")) - {"softmax"}), Loss],
    }

    def __init__(self, alpha="auto", *, loss="logistic", patterns="auto",
                 bias: bool = True, penalize_bias: bool = False, formulation: str = "relu",
                 solver="auto", tol: float = 1e-6, max_iter=None,
                 max_patterns: int = 2000, random_state=None, verbose: bool = False,
                 certify: bool = True, warm_start: bool = False, n_jobs=None) -> None:
        self.alpha = alpha
        self.loss = loss
        self.patterns = patterns
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
        self.warm_start = warm_start
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the globally optimal network over the chosen patterns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).

        Returns
        -------
        self : ConvexReLUClassifier
        """
        from sklearn.utils.multiclass import check_classification_targets

        X, y = validate_data(self, X, y, dtype=np.float64)
        _warn_scale(X)
        check_classification_targets(y)
        classes, yi = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError(f"ConvexReLUClassifier needs samples of at least 2 classes in "
                             f"the data; got only one class: {classes[0]!r}.")
        self.classes_ = classes
        if classes.shape[0] == 2:
            Y = np.where(yi == 1, 1.0, -1.0)[:, None]
        else:
            Y = np.where(yi[:, None] == np.arange(classes.shape[0])[None, :], 1.0, -1.0)
        with _fit_threads():
            pats = self._get_patterns(X)
            self.alpha_ = self._resolve_alpha(X, Y, self.loss, pats)
            nets, obj, n_iter, st, certs = self._solve_outputs(X, Y, self.loss, pats)
        self._set_fitted(X, nets, obj, n_iter, st, pats)
        self._set_certificate(certs, names=[c.item() if hasattr(c, "item") else c
                                            for c in classes])
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logits: shape (n_samples,) for two classes, else (n_samples, n_classes)."""
        return self._raw(X)

    def predict(self, X) -> np.ndarray:
        """Predicted class labels, shape (n_samples,)."""
        z = self.decision_function(X)
        if z.ndim == 1:
            return self.classes_[(z > 0).astype(int)]
        return self.classes_[np.argmax(z, axis=1)]

    def _check_proba(self):
        if get_loss(self.loss).name != "logistic":
            raise AttributeError("predict_proba is available only with loss='logistic'; "
                                 f"this classifier uses loss={self.loss!r}.")
        return True

    @available_if(_check_proba)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (``loss='logistic'`` only).

        The sigmoid of the logit for two classes, normalised one-vs-rest sigmoids
        otherwise.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        from scipy.special import expit

        z = self.decision_function(X)
        if z.ndim == 1:
            p = expit(z)
            return np.column_stack([1.0 - p, p])
        p = expit(z)
        return p / p.sum(axis=1, keepdims=True)

    @available_if(_check_proba)
    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def to_sklearn(self):
        """The fitted network as a fitted scikit-learn ``MLPClassifier``.

        Same weights and ``classes_``. Two classes: the MLP has one logistic output, so
        ``predict`` and ``predict_proba`` agree with this estimator's. More classes:
        ``MLPClassifier`` has a softmax output layer, so ``predict`` (the class of the
        largest logit) agrees, but its ``predict_proba`` is the softmax of the one-vs-rest
        logits, not this estimator's normalised one-vs-rest sigmoids (the two can differ by
        more than 0.1); a ``UserWarning`` says so. With ``loss='hinge'`` the MLP's
        ``predict_proba`` is the sigmoid (softmax) of hinge scores, not a calibrated
        probability. ``alpha`` is copied; ``loss_`` is not meaningful.

        Returns
        -------
        sklearn.neural_network.MLPClassifier

        Warns
        -----
        UserWarning
            With more than two classes (probabilities differ, see above).
        """
        check_is_fitted(self, "network_")
        if self.classes_.shape[0] > 2:
            warnings.warn(
                f"exporting a one-vs-rest network over {self.classes_.shape[0]} classes to an "
                "MLPClassifier, whose output layer is a softmax: predict agrees with this "
                "estimator, predict_proba does not (softmax of the logits instead of "
                "normalised one-vs-rest sigmoids).", UserWarning, stacklevel=2)
        return self.network_.to_sklearn("classifier", classes=self.classes_,
                                        alpha=self.alpha_)

"""Heuristic search for violating neurons when the patterns cannot be enumerated
(docs/mathematics.rst §4.2, §8.2, §8.5).

For a dual point :math:`\\lambda` and augmented data :math:`\\tilde X` (rows
:math:`\\tilde x_i`) the dual constraint is

.. math::

    M(\\lambda) = \\max_{\\sigma = \\pm 1}\\ \\max_{x \\in \\mathcal F}\\
        f_\\sigma(x), \\qquad f_\\sigma(x) = \\sigma\\,\\lambda^\\top(\\tilde X x)_+ ,

with :math:`\\mathcal F` the unit ball (no hidden bias, or a penalised one) or
:math:`\\{(u, b) : \\|u\\| \\le 1\\}` (free hidden bias, :math:`\\mathbf 1^\\top\\lambda = 0`).
When the data's rank is too high to list the activation patterns, :func:`search_violators`
maximises :math:`f_\\sigma` by a multistart local search. Every value it returns is the
value of an explicit feasible point, so it is a *lower* estimate of :math:`M(\\lambda)`; a
search can miss the maximum, so it never proves dual feasibility.

The local moves, all monotone (a move is kept only when the exact value increases):

* **fixed-point step** :math:`x \\leftarrow c(x)/\\|c(x)\\|` with
  :math:`c(x) = \\sigma \\tilde X^\\top D(x) \\lambda`, the maximiser of the linear piece of
  the current cell over the whole ball (vectorised over all starts);
* **DCA step**: write :math:`f_\\sigma = h - k` with
  :math:`h = \\sum_{\\sigma\\lambda_i > 0} \\sigma\\lambda_i (\\tilde x_i^\\top x)_+` and
  :math:`k = \\sum_{\\sigma\\lambda_i < 0} |\\lambda_i| (\\tilde x_i^\\top x)_+`, both convex;
  linearise :math:`h` at :math:`x` (subgradient :math:`g`) and maximise the concave
  :math:`g^\\top x - k(x)` over the ball. Its dual is the box-constrained least-squares
  problem :math:`\\min_{0 \\le w \\le |\\lambda_N|} \\|g - \\tilde X_N^\\top w\\|`
  (an active-set method warm-started at the current point's pattern), whose residual is
  the new direction. It
  can cross many cells at once;
* **cell polish**: the exact maximum over the closed cell of the current pattern, the cone
  projection of :func:`~convexrelu.certificates._dual.pattern_value`.

With a free hidden bias every direction :math:`u` is completed by the exactly optimal bias
:math:`b` (the function is piecewise linear in :math:`b` with breakpoints
:math:`-x_i^\\top u`; one sort per direction).

Measured with a free hidden bias and ``lambda`` the centred residual of an
``MLPRegressor((50,), alpha=1e-3)`` on standardised data: a million random Gaussian gates
reach 80% of the value the search finds on ``load_diabetes`` (442 x 10) and 52% on
``load_breast_cancer`` (569 x 30), in two to three times the search's few seconds. With fixed-point
steps alone the search stops 6% lower on ``load_breast_cancer``; the DCA step closes the
gap (the cell polish alone nearly does too, at a higher cost).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from .._validation import check_positive_int, check_random_state
from ._dual import _prepare, pattern_value

__all__ = ["Candidate", "search_violators"]

_IMPROVE_RTOL = 1e-12
# a search on a row sample (``max_rows``): the refinements on all rows (each costs about as
# much as the whole search on the sample). Measured on make_classification(20000, 20), three
# seeds: 4 gave 100 %, 100 % and 98 % of the whole-data search's value in 9-12 s, 8 gave
# 100 %, 100 % and 99 % in 17-25 s; the whole-data search took 29-33 s
_FULL_REFINE = 4


# the defaults of max_row_starts (64) and n_samples (256). Measured (one BLAS thread; 18
# dual points: the centred residuals of default MLPs and the duals of our default fits on
# diabetes, breast cancer, wine, three digits classes and make_classification(20000, 20);
# three seeds each): against 512 row starts and 4,096 samples, 64 and 1,024 found the same
# or a higher best value on 17 of 18 (up to 1.3 % higher: 512 rows' ascents took the
# refined starts), 0.2 % lower on one (diabetes, our fit's dual), and the search was
# 1.5-4.5x faster (digits 2.0-2.5 s -> 0.4-1.4 s, make_classification 3.0-3.5 s -> 1.2 s).
# 256 samples then found the same values as 1,024 on all 18, 10-45 % faster (the sampled
# pass was 13 % of a default digits fit), and 8 refined starts per sign (n_starts) the same
# as 16 on all 18, 1.3-2x faster (4 fell 1.3 % short on one digits class)
_ROW_STARTS = 64
_SAMPLES = 256


@dataclass
class Candidate:
    """A neuron found by :func:`search_violators`.

    Attributes
    ----------
    value : float
        ``sign * lambda^T (X_aug @ direction)_+``, recomputed from ``direction`` in the
        original coordinates (the value the neuron attains; a lower estimate of
        ``M(lambda)``).
    direction : ndarray of shape (d_aug,)
        ``x = (u, b)`` (or ``u`` without hidden bias), normalised so that its penalised norm
        is 1 (``||u|| = 1`` with a free hidden bias, ``||x|| = 1`` otherwise).
    sign : int
        ``+1`` for a neuron with positive output weight, ``-1`` for a negative one.
    mask : ndarray of shape (n_samples,), bool
        Activation pattern ``X_aug @ direction > 0``.
    origin : str
        Where the best start came from: ``"sample"``, ``"row"``, ``"random"`` or ``"user"``
        (with ``max_rows``, the origin of the start on the row sample).
    """

    value: float
    direction: np.ndarray
    sign: int
    mask: np.ndarray
    origin: str = ""
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers
def _best_bias(P: np.ndarray, lam: np.ndarray):
    """Exact ``max_b sum_i lam_i (p_i + b)_+`` per column of ``P`` (``1^T lam = 0``).

    The function is piecewise linear in ``b`` with breakpoints ``-p_i``; at ``b = -p_(k)``
    (``p_(k)`` the ``k``-th largest) the active rows are the ``k - 1`` largest, so all
    breakpoint values come from cumulative sums of the sorted column. ``b -> -inf`` gives
    ``0`` (the first breakpoint has the same value) and ``b -> +inf`` gives ``lam^T p``
    (the value at the last breakpoint when ``1^T lam = 0``).

    Returns ``(value, b)``, each of shape (n_cols,).
    """
    Q = np.ascontiguousarray(P.T)  # (n_cols, n): sorting along rows is ~3x faster
    B, n = Q.shape
    order = np.argsort(-Q, axis=1)
    Qs = np.take_along_axis(Q, order, axis=1)
    Ls = lam[order]
    V = np.zeros((B, n))
    if n > 1:
        cl = np.cumsum(Ls, axis=1)
        clp = np.cumsum(Ls * Qs, axis=1)
        np.multiply(Qs[:, 1:], cl[:, :-1], out=V[:, 1:])
        np.subtract(clp[:, :-1], V[:, 1:], out=V[:, 1:])
    k = np.argmax(V, axis=1)
    rows = np.arange(B)
    return V[rows, k], -Qs[rows, k]


class _Problem:
    """Data, dual point and feasible set of one search, in translated coordinates."""

    def __init__(self, Xa, lam, free_bias):
        self.free = bool(free_bias)
        if self.free:
            self.Xt, self.shift, self.R = _prepare(Xa, True)
        else:
            self.Xt, self.shift, self.R = Xa, np.zeros(Xa.shape[1] - 1), 0.0
        self.lam = lam
        self.n, self.d_aug = Xa.shape
        self._negative = None

    def negative_rows(self, lam_s: np.ndarray, neg: np.ndarray):
        """The DCA steps' bounded least squares over the rows ``neg`` (where ``lam_s <
        0``), the same at every step of a sign's refinements: ``(w_N, A, col, W, last)``,
        ``A`` the matrix of the dual (``X_N^T``; with a free bias its last row replaced by
        the equality's row of weight ``W``, and ``last`` the rows' own last entries),
        ``col`` its columns' norms. Kept for the last ``(lam_s, neg)`` asked, the same
        arrays (at 225,000 rows the copies and norms were a third of a DCA step's time);
        the rows themselves are not kept."""
        held = self._negative
        if held is not None and held[0] is neg and held[1] is lam_s:
            return held[2]
        self._negative = None  # the other sign's arrays go before these are made
        XN = self.Xt[neg]
        wN = -lam_s[neg]
        A, W, last = None, 1.0, None
        if XN.shape[0]:
            if self.free:
                # equality (g - X_N^T w)_{d+1} = 0 by a heavy row; the bias is then
                # re-optimised exactly, so an inexact equality only costs tightness
                W = 1e3 * (1.0 + float(np.max(np.linalg.norm(XN[:, :-1], axis=1))))
                A = np.vstack([XN[:, :-1].T, W * np.ones((1, XN.shape[0]))])
                last = XN[:, -1].copy()
            else:
                A = np.ascontiguousarray(XN.T)
        del XN
        out = (wN, A, None if A is None else np.linalg.norm(A, axis=0), W, last)
        self._negative = (neg, lam_s, out)
        return out

    def complete(self, D: np.ndarray, lam_s: np.ndarray) -> np.ndarray:
        """Feasible, normalised points from raw directions (columns of ``D``).

        Without a free bias: ``D / ||D||``. With one: ``u = D_{1:d} / ||D_{1:d}||`` and the
        exactly optimal bias. Columns with a zero norm give the zero vector.
        """
        if not self.free:
            nr = np.linalg.norm(D, axis=0)
            return D / np.where(nr > 0, nr, np.inf)
        U = D[:-1]
        nr = np.linalg.norm(U, axis=0)
        U = U / np.where(nr > 0, nr, np.inf)
        _, b = _best_bias(self.Xt[:, :-1] @ U, lam_s)
        return np.vstack([U, b[None, :]])

    def values(self, Xd: np.ndarray, lam_s: np.ndarray) -> np.ndarray:
        return lam_s @ np.maximum(self.Xt @ Xd, 0.0)

    def to_original(self, x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=float)
        if self.free:
            x[-1] = x[-1] - self.shift @ x[:-1]
        return x


def _fixed_point(prob: _Problem, Xd, vals, lam_s, max_iter, deadline):
    """Vectorised ascent ``x <- complete(sigma X^T D(x) lambda)``; keeps improvements only."""
    Xt = prob.Xt
    live = np.ones(Xd.shape[1], dtype=bool)
    n_iter = 0
    for _ in range(max_iter):
        idx = np.flatnonzero(live)
        if idx.size == 0 or (deadline is not None and time.perf_counter() > deadline):
            break
        n_iter += 1
        act = (Xt @ Xd[:, idx]) > 0
        C = Xt.T @ (act * lam_s[:, None])
        Xn = prob.complete(C, lam_s)
        vn = prob.values(Xn, lam_s)
        better = vn > vals[idx] + _IMPROVE_RTOL * np.abs(vals[idx]) + 1e-300
        Xd[:, idx[better]] = Xn[:, better]
        vals[idx[better]] = vn[better]
        live[idx[~better]] = False
    return n_iter


#: ``_bvls`` runs compiled (numba, the ``fast`` extra; ``_ldp_kernel._bvls_core``) on
#: matrices of at least this many entries (the digits and 20,000-sample searches; below
#: it, loading numba, 0.6 s, costs more than a fit's few hundred small solves save)
_BVLS_COMPILED_FROM = 10_000
#: ... and on every matrix of a search whose data ``X_a`` has at least this many entries
#: (a function of the data's shape only): those searches load numba for their large
#: matrices anyway. Measured on the default digits fit (``random_state=0``, 1,347 x 65,
#: one BLAS thread): 1,283 of its 1,880 DCA steps' solves had fewer entries (one class
#: against the rest: the negative rows are the class's ~135 samples) and ran in numpy
_BVLS_COMPILED_DATA = 50_000


#: ``_bvls`` over at least this many variables works on a working set of them
#: (:func:`_bvls_screened`): a DCA step over every row of a large data set, whose
#: optimum moves few of its variables off their bounds but whose solve from ``w0``
#: freed them one at a time, two products with the whole matrix each. Measured (one BLAS
#: thread; the default ``ConvexReLUClassifier(random_state=0)`` fit of
#: ``make_classification(300000, 20, random_state=0)``, 225,000 training rows, the two
#: variants side by side): its 732 solves over 112,500 negative rows took 421.3 s (0.58 s
#: each), and the 623 such solves of the fit on working sets 16.0 s (0.026 s each); the
#: fits 617.8 s against 218.2 s, the same test accuracy (0.885). At 150,000 training rows
#: 13.4 s (281 solves of 75,000 variables, 0.048 s each) against 13.5 s (221, 0.061 s),
#: the fits 118.8 s and 114.8 s
_BVLS_SCREEN_FROM = 4096
#: ... adding at each round the variables whose gradient points into their box, the
#: largest violations first, at most this many (and rounds at most _BVLS_SCREEN_ROUNDS,
#: or until the set holds half the variables, then the whole problem from the point
#: reached)
_BVLS_SCREEN_ADD = 512
#: A round costs two products with the matrix and a solve over the working set; the
#: whole problem from the point reached, about 500 times as much at 375,000 variables.
#: Measured (one BLAS thread; the default fit of ``make_classification(1000000, 20,
#: random_state=0)``, 750,000 training rows, its fifth search replayed): at 30 rounds
#: two of its 27 solves over all 375,000 negative rows still had 11,000-16,000 violators
#: and finished on the whole problem, 34-36 s each; with more rounds they took 43 and 44
#: rounds, 2.8 s each, to the same residual (adding an eighth of the violators a round,
#: or twice as many each round: 8.3-8.8 s and 3.4-4.3 s, larger working sets)
_BVLS_SCREEN_ROUNDS = 200


def _bvls_violations(A, b, upper, w, col, bn):
    """``(viol, A w)``: the bound violations of ``_bvls``'s optimality test at ``w``,
    every variable's: a bound's gradient pointing into the box (a variable strictly
    inside it: either sign), ``|a_j^T r|`` at the scale of ``||a_j||`` times the vectors
    ``r`` is made of (``||b|| + ||A w||``)."""
    Aw = A @ w
    s = A.T @ (b - Aw)  # minus the gradient
    inside = (w > 0.0) & (w < upper)
    scale = col * (bn + float(np.linalg.norm(Aw))) + 1e-300
    return (np.where(w <= 0.0, s, 0.0) + np.where(w >= upper, -s, 0.0)
            + np.where(inside, np.abs(s), 0.0)) / scale, Aw


def _bvls_screened(A, b, upper, w0, max_iter, compiled, col=None):
    """``_bvls`` on a working set of its variables: the others stay at their values in
    ``w0``, the working set's problem (``b`` less their part) is solved, and every
    variable's optimality is checked on the whole problem; the violated ones (at most
    ``_BVLS_SCREEN_ADD``, the largest first) join the set and it is solved again from
    there. The result is the whole problem's optimum (the same test as ``_bvls``'s); each
    round costs two products with ``A`` instead of two per freed variable. Measured: see
    ``_BVLS_SCREEN_FROM``'s users (the DCA steps of a search over all rows). ``col``:
    the columns' norms of ``A``, where the caller keeps them."""
    n = A.shape[1]
    w = np.clip(np.asarray(w0, dtype=np.float64), 0.0, upper)
    if col is None:
        col = np.linalg.norm(A, axis=0)
    bn = float(np.linalg.norm(b))
    live = upper > 1e-12 * float(np.max(upper, initial=0.0))
    w[~live] = 0.0  # boxes of (nearly) zero width stay at 0, as in _bvls
    work = np.zeros(n, dtype=bool)
    for _ in range(_BVLS_SCREEN_ROUNDS):
        viol, Aw = _bvls_violations(A, b, upper, w, col, bn)
        viol[~live] = 0.0
        out = np.flatnonzero((viol > 1e-13) & ~work)
        if out.size == 0:
            if not np.any(viol[work] > 1e-13):
                return w, True
            break  # the working set's own solve stopped short of the whole test
        if out.size > _BVLS_SCREEN_ADD:
            out = out[np.argpartition(-viol[out], _BVLS_SCREEN_ADD)[:_BVLS_SCREEN_ADD]]
        work[out] = True
        # every variable strictly inside its box belongs to the set (it can move)
        work |= (w > 0.0) & (w < upper) & live
        S = np.flatnonzero(work)
        if 2 * S.size > n:  # no longer a small part: the whole problem from here
            break
        rest = b - Aw + A[:, S] @ w[S]
        wS, ok = _bvls(A[:, S], rest, upper[S], w[S], max_iter, compiled, screen=False)
        if not ok:
            break
        w[S] = wS
    return _bvls(A, b, upper, w, max_iter, compiled, screen=False, col=col)


def _bvls(A: np.ndarray, b: np.ndarray, upper: np.ndarray, w0: np.ndarray,
          max_iter: Optional[int] = None, compiled: bool = False, screen: bool = True,
          col: Optional[np.ndarray] = None):
    """``min_{0 <= w <= upper} ||A w - b||`` by an active-set method warm-started at ``w0``.

    Lawson and Hanson's NNLS with two bounds (Stark and Parker's BVLS): the variables at a
    bound whose gradient points inward are freed one at a time (the largest violation
    first), the free ones are solved by least squares and moved back to a bound when the
    solve leaves the box. ``w0`` must lie in the box (at its bounds, typically: the pattern
    of the current point). Returns ``(w, converged)``; ``w`` is always in the box. A DCA
    step's start is the previous point's pattern, so few variables change: measured on
    diabetes's searches, this replaced ``scipy.optimize.lsq_linear(method="bvls")`` (a
    cold start, ~3.6 ms per call) at a fraction of the cost, to the same optimum.
    ``compiled``: run compiled whatever the size (where numba is installed). ``screen``:
    from ``_BVLS_SCREEN_FROM`` variables on, solve on a working set of them
    (:func:`_bvls_screened`; its own solves pass False). ``col``: the columns' norms of
    ``A`` where the caller keeps them (the working set and the numpy path read them).
    """
    upper = np.asarray(upper, dtype=np.float64)
    if screen and A.shape[1] >= _BVLS_SCREEN_FROM:
        return _bvls_screened(A, b, upper, w0, max_iter, compiled, col)
    if compiled or A.size >= _BVLS_COMPILED_FROM:
        from . import _ldp_kernel

        kern = _ldp_kernel.bvls_kernel()
        if kern is not None:  # the same method, compiled (numba, the ``fast`` extra)
            arg = _ldp_kernel.as_argument
            return kern(arg(A), arg(b), arg(upper), arg(w0),
                        4 * A.shape[1] + 20 if max_iter is None else int(max_iter))
    w = np.clip(np.asarray(w0, dtype=np.float64), 0.0, upper)
    # boxes of (nearly) zero width stay at 0: freeing them only cycles between the bounds
    live = np.flatnonzero(upper > 1e-12 * float(np.max(upper, initial=0.0)))
    if live.size < upper.size:
        w[:] = 0.0
        if live.size:
            w[live], ok = _bvls(A[:, live], b, upper[live], w0[live], max_iter, screen=False,
                                col=None if col is None else col[live])
            return w, ok
        return w, True
    m = A.shape[1]
    free = np.zeros(m, dtype=bool)
    if col is None:
        col = np.linalg.norm(A, axis=0)
    bn = float(np.linalg.norm(b))
    max_iter = 4 * m + 20 if max_iter is None else int(max_iter)
    for _ in range(max_iter):
        # optimal when no bound's gradient points inward beyond rounding
        viol, Aw = _bvls_violations(A, b, upper, w, col, bn)
        viol[free] = 0.0
        j = int(np.argmax(viol))
        if viol[j] <= 1e-13:
            return w, True
        free[j] = True
        # A[:, fixed] w[fixed], kept up to date as variables are fixed, instead of a
        # product with (or a copy of) A's fixed columns, all but a few, in every inner
        # step: 11 % of a make_classification(20000, 20) fit; the search there 1.4x faster
        F = np.flatnonzero(free)
        fixed_part = Aw - A[:, F] @ w[F]
        for _inner in range(m + 1):
            AF = A[:, F]
            z = np.linalg.lstsq(AF, b - fixed_part, rcond=None)[0]
            lo, hi = z < 0.0, z > upper[F]
            if not (lo.any() or hi.any()):
                w[F] = z
                break
            # step from w_F towards z until the first bound
            d = z - w[F]
            with np.errstate(divide="ignore", invalid="ignore"):
                t_lo = np.where(lo & (d < 0), -w[F] / d, np.inf)
                t_hi = np.where(hi & (d > 0), (upper[F] - w[F]) / d, np.inf)
            t = float(min(np.min(t_lo), np.min(t_hi), 1.0))
            wf = np.clip(w[F] + max(t, 0.0) * d, 0.0, upper[F])
            at_lo = wf <= 1e-14 * (1.0 + upper[F])
            at_hi = wf >= upper[F] * (1.0 - 1e-14)
            hit = at_lo | at_hi
            if not hit.any():  # rounding: fix the variable nearest its bound
                k = int(np.argmin(np.minimum(wf, upper[F] - wf)))
                hit[k] = True
                at_lo[k] = wf[k] <= upper[F][k] - wf[k]
                at_hi[k] = not at_lo[k]
            wf[at_lo] = 0.0
            wf[at_hi & ~at_lo] = upper[F][at_hi & ~at_lo]
            w[F] = wf
            free[F[hit]] = False
            fixed_part += AF[:, hit] @ wf[hit]
            F = F[~hit]
            if not F.size:
                break
    return w, False


def _dca_step(prob: _Problem, x, lam_s, neg):
    """One DCA step from ``x``: the maximiser of ``g^T x - k(x)`` over the feasible set."""
    Xt = prob.Xt
    act = (Xt @ x) > 0
    # the positive rows active at x: a product with every row (no copy of those rows)
    g = Xt.T @ np.where(act & ~neg, lam_s, 0.0)
    wN, A, col, W, last = prob.negative_rows(lam_s, neg)
    if wN.size == 0:
        return prob.complete(g[:, None], lam_s)[:, 0]
    rhs = np.concatenate([g[:-1], [W * g[-1]]]) if prob.free else g
    upper = np.maximum(wN, 0.0)
    # warm start: the subgradient of k at x (the negative rows active at x at their bound)
    w, ok = _bvls(A, rhs, upper, np.where(act[neg], upper, 0.0),
                  compiled=prob.n * prob.d_aug >= _BVLS_COMPILED_DATA, col=col)
    if not ok:  # pragma: no cover - the active-set method did not settle: scipy's
        from scipy.optimize import lsq_linear

        w = lsq_linear(A, rhs, bounds=(np.zeros_like(upper), upper), method="bvls").x
    w = np.clip(w, 0.0, upper)
    # g - X_N^T w through A (its rows are X_N's columns; with a free bias, the last one's
    # entries are the rows' own)
    r = g - (np.concatenate([A[:-1] @ w, [last @ w]]) if prob.free else A @ w)
    return prob.complete(r[:, None], lam_s)[:, 0]


def _polish(prob: _Problem, x, lam_s):
    """The exact maximiser over the closed cell of ``x`` (cone projection, ``pattern_value``)."""
    act = (prob.Xt @ x) > 0
    c = prob.Xt.T @ (act * lam_s)
    _, _, xp, _ = pattern_value(prob.Xt, act, c, free_bias=prob.free, R=prob.R)
    if xp is None:
        return None
    if prob.free:  # re-optimise the bias exactly for the polished direction
        xp = prob.complete(xp[:, None], lam_s)[:, 0]
    return xp


#: refinements over at least this many rows try the DCA step before the fixed-point step
#: (a whole search's refinements over every row of a large data set, from the row
#: sample's neurons or the user's starts). Measured (one BLAS thread; the six searches
#: over every row of the default ``ConvexReLUClassifier(random_state=0)`` fit of
#: ``make_classification(300000, 20, random_state=0)``, 225,000 training rows, replayed
#: from their recorded dual points and generators): the fixed-point step improved about
#: one point in ten that the DCA step improved, and each of its failures cost a pass
#: over the rows and a sort of them; 51.4 s against 60.3 s for the six, the same best
#: values (to 1e-6 relative; at 75,000 rows 7.2 against 8.5 s, the same values, with
#: another fit on the other core)
_DCA_FIRST_FROM = 4096


def _refine(prob, x, v, lam_s, neg, max_iter, deadline, polish):
    """Monotone moves: a fixed-point step (the cheapest); when it stalls a DCA step; when
    both stall the exact cell polish. Over ``_DCA_FIRST_FROM`` rows or more the DCA step
    comes first, then the fixed-point step. Any success restarts from the first move."""
    n_steps = 0
    moves = ("dca", "fp") if prob.n >= _DCA_FIRST_FROM else ("fp", "dca")
    moves += ("polish",) if polish else ()
    for _ in range(max_iter):
        if deadline is not None and time.perf_counter() > deadline:
            break
        for move in moves:
            n_steps += 1
            if move == "fp":
                act = (prob.Xt @ x) > 0
                xn = prob.complete((prob.Xt.T @ (act * lam_s))[:, None], lam_s)[:, 0]
            elif move == "dca":
                xn = _dca_step(prob, x, lam_s, neg)
            else:
                xn = _polish(prob, x, lam_s)
                if xn is None:
                    continue
            vn = float(prob.values(xn[:, None], lam_s)[0])
            if vn > v + _IMPROVE_RTOL * abs(v) + 1e-300:
                x, v = xn, vn
                break
        else:  # no move improves: a local maximum for these moves
            break
    return x, v, n_steps


def _mask_key(mask: np.ndarray) -> bytes:
    return np.packbits(mask).tobytes()


# --------------------------------------------------------------------------- public API
def search_violators(
    Xa,
    lam,
    *,
    free_bias: bool = False,
    sign: Optional[int] = None,
    n_starts: int = 8,
    n_samples: int = _SAMPLES,
    starts=None,
    start_signs=None,
    top_k: int = 1,
    max_iter: int = 50,
    polish: bool = True,
    time_limit: Optional[float] = None,
    random_state=None,
    batch_size: int = 1024,
    max_row_starts: int = _ROW_STARTS,
    max_rows: Optional[int] = 2048,
    _start_origins=None,
    _n_refine: Optional[int] = None,
    _start_kept=None,
) -> List[Candidate]:
    """Most violating neurons found by a multistart local search (a heuristic).

    Maximises ``sigma * lambda^T (X_aug x)_+`` over the feasible set (unit penalised norm)
    for ``sigma = +1`` and/or ``-1``. Stages:

    1. **starts**: the user's ``starts``, the data rows ``+-x_i``, ``n_starts`` random
       Gaussian directions and the ``n_starts`` best of ``n_samples`` random directions
       (with a free bias each direction gets its exactly optimal bias);
    2. **fixed-point ascent** on all starts at once (vectorised);
    3. **refinement** of the ``n_starts`` best distinct patterns (and of every user start)
       by DCA steps, fixed-point steps and an exact cell polish, until no move improves.

    With more than ``max_rows`` samples, stages 1-3 run on ``max_rows`` rows drawn at
    random, with ``lambda`` scaled by ``n / max_rows`` and corrected by least squares so
    that its linear moments ``X_aug^T lambda`` equal the whole data's; their best
    neurons then start a refinement on all the data. Without the correction the sample's
    noise in ``lambda^T X_aug x`` (zero on all the data at a fitted output layer) ruled
    the search: measured on ``make_classification(20000, 20)`` (15,000 training rows, the
    centred residual of a logistic fit), the 2,000-row search's neurons reached 0-7 % of
    the whole-data search's value; with it, 72-92 % before and 100 % after the final
    refinement, in 10-13 s instead of 36 s (one BLAS thread).

    Every reported value is attained by the reported direction, so it is a lower estimate
    of ``M(lambda)`` (docs/mathematics.rst §4.2): sound as a *violation* (a neuron that
    improves the network), never a proof that no larger violation exists.

    Parameters
    ----------
    Xa : array-like of shape (n_samples, d_aug)
        Augmented data: ``X`` without hidden bias, ``[X, 1]`` with one (the last column
        must then be ones when ``free_bias``).
    lam : array-like of shape (n_samples,)
        The dual point. With ``free_bias`` it must be centred (``1^T lam = 0``); otherwise
        the constraint is infinite.
    free_bias : bool, default=False
        Hidden bias free (norm on ``u = x[:-1]`` only, docs/mathematics.rst §8.2). With
        ``False`` the full norm of ``x`` is used (no bias, or a penalised one).
    sign : {1, -1} or None, default=None
        Search only this sign of the output weight; ``None`` searches both.
    n_starts : int, default=8
        Random starts, best sampled starts and refined starts (each per sign).
    n_samples : int, default=256
        Random directions in the cheap sampling pass (``0`` to skip it).
    starts : array-like of shape (n_starts_user, d_aug), optional
        Extra starting directions in the original coordinates, e.g. the current
        network's neurons ``[W1, b1]``; each is always refined, with both signs unless
        ``start_signs`` is given.
    start_signs : array-like of shape (n_starts_user,), optional
        Sign (``+1`` / ``-1``) to try each of ``starts`` with, e.g. the signs of the
        network's output weights.
    top_k : int, default=1
        Number of candidates returned (distinct activation patterns, best first).
    max_iter : int, default=50
        Iteration cap of the fixed-point ascent and of each refinement.
    polish : bool, default=True
        Finish each refinement with the exact cell maximum (cone projection).
    time_limit : float, optional
        Wall-clock budget in seconds; the search returns the best found so far when it
        runs out (the sampling pass stops early too).
    random_state : int, Generator or None
        Seed of the random starts and samples.
    batch_size : int, default=1024
        Directions per block in the sampling pass and the fixed-point ascent (memory
        ``~ 8 n batch_size`` bytes).
    max_row_starts : int, default=64
        At most this many data rows (those with the largest ``|lam_i|``) are used as
        starts ``+-x_i``. More row starts do not find more: their fixed-point ascents
        fill the ``n_starts`` refined patterns with near-copies (see ``_ROW_STARTS``).
    max_rows : int or None, default=2048
        Search on this many randomly drawn rows when there are more, then refine the
        best neurons found there on all rows (see above); ``None`` searches all rows.
        Every returned value is still attained on all rows.

    Returns
    -------
    list of Candidate
        At most ``top_k`` candidates, best value first, each with a distinct pattern.

    Raises
    ------
    ValueError
        For inconsistent shapes, non-finite values, a non-centred ``lam`` with a free bias
        or bad parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from convexrelu.certificates import search_violators
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 5))
    >>> lam = rng.standard_normal(40)
    >>> lam -= lam.mean()
    >>> Xa = np.hstack([X, np.ones((40, 1))])
    >>> best = search_violators(Xa, lam, free_bias=True, random_state=0)[0]
    >>> bool(np.isclose(best.value, best.sign * lam @ np.maximum(Xa @ best.direction, 0)))
    True
    """
    t0 = time.perf_counter()
    Xa = np.asarray(Xa, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    if Xa.ndim != 2 or Xa.shape[0] == 0 or Xa.shape[1] == 0:
        raise ValueError(f"Xa must be a non-empty 2-D array (n_samples, d_aug); got shape "
                         f"{Xa.shape}.")
    if lam.ndim == 2 and lam.shape[1] == 1:
        lam = lam[:, 0]
    if lam.shape != (Xa.shape[0],):
        raise ValueError(f"lam must have shape ({Xa.shape[0]},) to match Xa's rows; got "
                         f"{lam.shape}. Search one output at a time.")
    if not (np.all(np.isfinite(Xa)) and np.all(np.isfinite(lam))):
        raise ValueError("Xa and lam must be finite (found NaN or inf).")
    free_bias = bool(free_bias)
    if free_bias:
        if Xa.shape[1] < 2 or not np.all(Xa[:, -1] == 1.0):
            raise ValueError("with free_bias=True the last column of Xa must be ones "
                             "(Xa = [X, 1]).")
        if abs(lam.sum()) > 1e-8 * (1.0 + np.abs(lam).sum()):
            raise ValueError(f"with a free hidden bias lam must be centred (1^T lam = 0; got "
                             f"{lam.sum():.3e}); otherwise M(lambda) is infinite. Subtract "
                             "its mean (re-fit the output bias).")
    if sign is None:
        signs = (1, -1)
    elif sign in (1, -1) and not isinstance(sign, bool):
        signs = (int(sign),)
    else:
        raise ValueError(f"sign must be 1, -1 or None; got {sign!r}.")
    n_starts = check_positive_int(n_starts, "n_starts", minimum=0)
    n_samples = check_positive_int(n_samples, "n_samples", minimum=0)
    top_k = check_positive_int(top_k, "top_k")
    max_iter = check_positive_int(max_iter, "max_iter", minimum=0)
    batch_size = check_positive_int(batch_size, "batch_size")
    max_row_starts = check_positive_int(max_row_starts, "max_row_starts", minimum=0)
    if max_rows is not None:
        max_rows = check_positive_int(max_rows, "max_rows", minimum=2)
    if time_limit is not None:
        time_limit = float(time_limit)
        if not time_limit > 0:
            raise ValueError(f"time_limit must be a positive number of seconds or None; "
                             f"got {time_limit}.")
    deadline = None if time_limit is None else t0 + time_limit
    rng = check_random_state(random_state)
    if max_rows is not None and Xa.shape[0] > max_rows:
        return _search_subsampled(
            Xa, lam, max_rows, rng, t0, free_bias=free_bias, sign=sign, n_starts=n_starts,
            n_samples=n_samples, starts=starts, start_signs=start_signs, top_k=top_k,
            max_iter=max_iter, polish=polish, time_limit=time_limit,
            batch_size=batch_size, max_row_starts=max_row_starts)
    prob = _Problem(Xa, lam, free_bias)
    n, d_aug = Xa.shape
    user = np.zeros((0, d_aug))
    if starts is not None:
        user = np.asarray(starts, dtype=np.float64)
        if user.ndim == 1:
            user = user[None, :]
        if user.ndim != 2 or user.shape[1] != d_aug or not np.all(np.isfinite(user)):
            raise ValueError(f"starts must be a finite array of shape (k, {d_aug}) (rows "
                             f"x = (u, b) in the coordinates of Xa); got shape {user.shape}.")
        if start_signs is not None:
            ss = np.asarray(start_signs)
            if ss.shape != (user.shape[0],) or not np.all(np.isin(ss, (1, -1))):
                raise ValueError(f"start_signs must hold one sign (1 or -1) per start, shape "
                                 f"({user.shape[0]},); got {ss!r}.")
        if free_bias:  # to the translated coordinates used internally
            user = user.copy()
            user[:, -1] = user[:, -1] + user[:, :-1] @ prob.shift

    results = []  # (value, x_translated, sign, origin)
    stats = {"n_sampled": 0, "n_fixed_point_starts": 0, "n_refined": 0, "n_steps": 0,
             "time_sample": 0.0, "time_fixed_point": 0.0, "time_refine": 0.0}
    for sgn in signs:
        lam_s = sgn * lam
        neg = lam_s < 0
        pool, origin = [], []
        mine = user if start_signs is None else user[np.asarray(start_signs) == sgn]
        if mine.shape[0]:
            pool.append(mine.T)
            if _start_origins is None:
                origin += ["user"] * mine.shape[0]
            else:
                so = np.asarray(_start_origins, dtype=object)
                origin += list(so if start_signs is None
                               else so[np.asarray(start_signs) == sgn])
        # the caller's own starts, each always refined (not the row sample's neurons)
        kept = np.ones(mine.shape[0], dtype=bool)
        if _start_kept is not None:
            kept = np.asarray(_start_kept, bool)
            if start_signs is not None:
                kept = kept[np.asarray(start_signs) == sgn]
        rows = prob.Xt.copy()
        if free_bias:
            rows[:, -1] = 0.0
        keep = np.flatnonzero(np.linalg.norm(rows, axis=1) > 0)
        if keep.size > max_row_starts:  # the rows with the largest |lambda_i|
            keep = np.sort(keep[np.argsort(-np.abs(lam[keep]), kind="stable")[:max_row_starts]])
        pool.append(np.hstack([rows[keep].T, -rows[keep].T]))
        origin += ["row"] * (2 * keep.size)
        if n_starts:
            pool.append(rng.standard_normal((d_aug, n_starts)))
            origin += ["random"] * n_starts
        # cheap sampled pass: keep the n_starts best directions
        t1 = time.perf_counter()
        if n_samples and n_starts:
            sv = np.full(0, -np.inf)
            sx = np.zeros((d_aug, 0))
            done = 0
            while done < n_samples:
                if deadline is not None and time.perf_counter() > deadline and done:
                    break
                b = min(batch_size, n_samples - done)
                G = prob.complete(rng.standard_normal((d_aug, b)), lam_s)
                v = prob.values(G, lam_s)
                sv = np.concatenate([sv, v])
                sx = np.hstack([sx, G])
                if sv.size > n_starts:
                    top = np.argpartition(-sv, n_starts - 1)[:n_starts]
                    sv, sx = sv[top], sx[:, top]
                done += b
            stats["n_sampled"] += done
            pool.append(sx)
            origin += ["sample"] * sx.shape[1]
        t2 = time.perf_counter()
        stats["time_sample"] += t2 - t1
        P = np.hstack(pool)
        origin = np.array(origin)
        vals = np.empty(P.shape[1])
        for s0 in range(0, P.shape[1], batch_size):  # blocks keep memory O(n batch_size)
            blk = slice(s0, s0 + batch_size)
            P[:, blk] = prob.complete(P[:, blk], lam_s)
            vals[blk] = prob.values(P[:, blk], lam_s)
            Pb, vb = P[:, blk].copy(), vals[blk].copy()
            _fixed_point(prob, Pb, vb, lam_s, max_iter, deadline)
            P[:, blk], vals[blk] = Pb, vb
        stats["n_fixed_point_starts"] += P.shape[1]
        t3 = time.perf_counter()
        stats["time_fixed_point"] += t3 - t2
        # refine the best distinct patterns, and every user start
        order = np.argsort(-vals, kind="stable")
        chosen, seen = [], set()
        for j in order:
            if len(chosen) >= max(n_starts, 1) and j >= mine.shape[0]:
                continue
            key = _mask_key(prob.Xt @ P[:, j] > 0)
            if key in seen:
                continue
            seen.add(key)
            chosen.append(j)
        n_other = 0  # refined starts that are not the caller's own
        for j in chosen:
            x, v = P[:, j], float(vals[j])
            mine_j = j < mine.shape[0] and kept[j]
            if (_n_refine is None or mine_j or n_other < _n_refine) and \
                    (deadline is None or time.perf_counter() <= deadline):
                n_other += not mine_j
                x, v, ns = _refine(prob, x, v, lam_s, neg, max_iter, deadline, polish)
                stats["n_refined"] += 1
                stats["n_steps"] += ns
            results.append((v, x, sgn, str(origin[j])))
        stats["time_refine"] += time.perf_counter() - t3
    results.sort(key=lambda t: -t[0])
    out, seen = [], set()
    for v, x, sgn, org in results:
        xo = prob.to_original(x)
        mask = (Xa @ xo) > 0
        key = (sgn, _mask_key(mask))
        if key in seen:
            continue
        seen.add(key)
        value = float(sgn * lam @ np.maximum(Xa @ xo, 0.0))
        out.append(Candidate(value=value, direction=xo, sign=int(sgn), mask=mask, origin=org))
        if len(out) >= top_k:
            break
    out.sort(key=lambda c: -c.value)
    stats["time"] = time.perf_counter() - t0
    for c in out:
        c.info = dict(stats)
    return out


def _subsample_dual(Xa: np.ndarray, lam: np.ndarray, rows: np.ndarray, free_bias: bool):
    """``lambda`` on ``rows``, scaled by ``n / len(rows)`` and moved by the least-squares
    correction in the span of ``X_aug[rows]`` that gives it the whole data's linear
    moments ``X_aug^T lambda`` (centred again with a free bias)."""
    XS = Xa[rows]
    ls = lam[rows] * (Xa.shape[0] / rows.size)
    r = Xa.T @ lam - XS.T @ ls
    ls = ls + XS @ np.linalg.lstsq(XS.T @ XS, r, rcond=None)[0]
    if free_bias:
        ls -= ls.mean()
    return XS, ls


def _search_subsampled(Xa, lam, m, rng, t0, *, free_bias, sign, n_starts, n_samples,
                       starts, start_signs, top_k, max_iter, polish, time_limit,
                       batch_size, max_row_starts):
    """:func:`search_violators` on ``m`` random rows, then a refinement of its best
    neurons (and of the user's starts) on all rows."""
    n, d_aug = Xa.shape
    rows = np.sort(rng.choice(n, size=m, replace=False))
    XS, ls = _subsample_dual(Xa, lam, rows, free_bias)

    def left():
        return None if time_limit is None else max(time_limit - (time.perf_counter() - t0),
                                                   1e-3)

    sub = search_violators(XS, ls, free_bias=free_bias, sign=sign, n_starts=n_starts,
                           n_samples=n_samples, starts=starts, start_signs=start_signs,
                           top_k=max(top_k, n_starts, 1), max_iter=max_iter, polish=polish,
                           time_limit=left(), random_state=rng, batch_size=batch_size,
                           max_row_starts=max_row_starts, max_rows=None)
    t_sub = time.perf_counter() - t0
    # the user's starts with each sign they are to be tried with, then the sample's neurons
    signs = (1, -1) if sign is None else (int(sign),)
    S, sg, org, kept = [], [], [], []
    if starts is not None:
        user = np.asarray(starts, dtype=np.float64).reshape(-1, d_aug)
        us = None if start_signs is None else np.asarray(start_signs)
        for i, x in enumerate(user):
            for s in (signs if us is None else (int(us[i]),)):
                if s in signs:
                    S.append(x), sg.append(s), org.append("user"), kept.append(True)
    for c in sub:
        S.append(c.direction), sg.append(c.sign), org.append(c.origin), kept.append(False)
    if not S:  # pragma: no cover - the sample's search always returns a candidate
        return []
    out = search_violators(Xa, lam, free_bias=free_bias, sign=sign, n_starts=0,
                           n_samples=0, starts=np.array(S), start_signs=np.array(sg),
                           top_k=top_k, max_iter=max_iter, polish=polish,
                           time_limit=left(), batch_size=batch_size, max_row_starts=0,
                           max_rows=None, _start_origins=org,
                           _n_refine=_FULL_REFINE, _start_kept=kept)
    info_sub = sub[0].info if sub else {}
    for c in out:
        c.info = dict(c.info, n_rows_searched=int(m), time_subsample=float(t_sub),
                      n_sampled=info_sub.get("n_sampled", 0),
                      time=time.perf_counter() - t0)
    return out

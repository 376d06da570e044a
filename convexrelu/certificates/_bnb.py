"""A proven upper bound on ``M(lambda)`` by cone-envelope branch and bound (no enumeration).

The dual constraint (docs/mathematics.rst §4.2, §8.2) needs

.. math::

    M(\\lambda) = \\max_{x \\in \\Omega} |f(x)|, \\qquad
    f(x) = \\lambda^\\top (\\tilde X x)_+ ,

with :math:`\\tilde X = X` or :math:`[X, \\mathbf 1]`, :math:`\\Omega` the unit ball (no hidden
bias, or a penalised one) or, with a free hidden bias, :math:`\\{(u, b) : \\|u\\| \\le 1\\}`.
Enumerating the activation patterns (docs/mathematics.rst §2.3) costs :math:`O((n/r)^r)` and
stops at rank 4-5. This module searches the arrangement instead.

For a sign :math:`s = \\pm 1` write :math:`s f = h - k` with

.. math::

    h(x) = \\sum_{s\\lambda_i > 0} s\\lambda_i (\\tilde x_i^\\top x)_+, \\qquad
    k(x) = \\sum_{s\\lambda_i < 0} |\\lambda_i| (\\tilde x_i^\\top x)_+ ,

both convex and positively homogeneous (sublinear). A node of the search is a pointed
polyhedral cone :math:`C = \\operatorname{cone}(v_1, \\dots, v_m)` kept with its extreme rays.
Since :math:`h` is sublinear, :math:`h(\\sum_j t_j v_j) \\le \\sum_j t_j h(v_j)`, the exact concave
envelope of :math:`h` on :math:`C`, while :math:`k(x) \\ge \\sum_i |\\lambda_i| \\sigma_i
\\tilde x_i^\\top x` for every :math:`\\sigma \\in [0, 1]^{N}`. Hence, for every
:math:`\\sigma \\in [0,1]^N` and every :math:`y`, with :math:`p_\\sigma = \\sum_{s\\lambda_i<0}
|\\lambda_i|\\sigma_i\\tilde x_i` and :math:`c_j = h(v_j) - v_j^\\top p_\\sigma`,

.. math::

    \\max_{x \\in C \\cap \\Omega} s f(x) \\;\\le\\; \\|y\\|_{\\Omega^*}
        + \\max_j \\frac{(c_j - v_j^\\top y)_+}{\\|v_j\\|} \\cdot
        \\frac{\\|e\\|_{\\Omega^*}}{\\gamma},
    \\qquad \\gamma = \\min_j \\frac{e^\\top v_j}{\\|v_j\\|} > 0 ,

a Lagrangian bound valid for *any* multipliers (:math:`\\sum_j t_j \\|v_j\\| \\le
e^\\top x / \\gamma`, :math:`e` the mean ray). The multipliers solve the node dual of the
concave-envelope relaxation :math:`\\max_{t \\ge 0,\\, V^\\top t \\in \\Omega} \\sum_j t_j
h(v_j) - k(V^\\top t)`. By default (``_NODE_SOLVER = "ldp"``) they come from
least-distance programs (Lawson and Hanson; non-negative least squares with ``D + |F| + 1``
rows): with the multipliers of all but a few ``k`` rows ``F`` fixed to :math:`\\{0, 1\\}`
by the sign of :math:`\\tilde x_i^\\top x` at the current point, the dual is
:math:`\\min \\|y\\|` over a polyhedron; an exact line search on the ray-weight dual
(concave, piecewise quadratic) keeps the sign updates monotone, and the search starts from
the parent's maximiser and fractional rows (warm start). With a free bias the bias part
:math:`y_b` is kept at 0 and proved optimal by weak duality (else probed). Where
this does not apply (a cone containing the pure-bias direction, an inaccurate or
unsettled program) the node is handed to a small conic program solved by Clarabel (only
the :math:`k` rows near the parent's maximiser as variables, the others joining when the
maximiser contradicts their sign: constraint generation); these fallbacks are counted. In
both cases the bound reported is the one recomputed from the multipliers, never a solver's
objective.
Branching splits a cone by the hyperplane of a row with :math:`s\\lambda_i > 0` (so every
split follows the arrangement); the extreme rays of the two children are updated
incrementally (double description, combinatorial adjacency test).
When no such row crosses a cone, :math:`h` is linear on it and the node bound is exact.
Both signs share one best-first tree and one incumbent: a fixed-point ascent from random
starts, refined by DC ascent (:math:`x \\leftarrow \\arg\\max_\\Omega g^\\top x - k(x)`,
:math:`g \\in \\partial h(x)`) and applied to node maximisers during the search; every lower
bound is a value of :math:`f` itself, attained by the reported direction.

With a free hidden bias the data are centred first (:math:`R = \\max_i \\|x_i\\|`); for a
centred :math:`\\lambda` the maximum over :math:`b` is attained at a breakpoint
:math:`b = -x_i^\\top u`, so :math:`\\Omega = \\{\\|u\\| \\le 1, |b| \\le R\\}` loses nothing
and :math:`\\|y\\|_{\\Omega^*} = \\|y_u\\| + R |y_b|`. A rounding-level
:math:`\\mathbf 1^\\top\\lambda` (relative ``1e-12``) is treated as zero, as in
:func:`~convexrelu.certificates.dual_constraint`.

Soundness holds up to floating-point rounding (at the ``1e-13`` relative level of the ray
arithmetic); the solver's accuracy only affects how tight the bound is.

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact polynomial-time
convex optimization formulations for two-layer networks", ICML 2020.
R. Horst and H. Tuy, "Global Optimization: Deterministic Approaches", Springer, 1996
(conical branch and bound, concave envelopes).
K. Fukuda and A. Prodon, "Double description method revisited", Combinatorics and
Computer Science, LNCS 1120, 1996.
P. D. Tao and L. T. H. An, "Convex analysis approach to d.c. programming: theory,
algorithms and applications", Acta Math. Vietnamica 22, 1997 (the DC heuristic).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .._newton import lu_solve
from .._validation import augment, check_data_matrix, check_positive_int, check_random_state
from . import _ldp_kernel

__all__ = ["BnBResult", "dual_constraint_bnb"]

_N_STARTS = 16  # random starts of the fixed-point heuristic per sign
_N_DCA = 4  # of which the best few are refined by DC ascent
_POOL = 4096  # best points kept for the candidates of a pricing call
_TRIANGLES = False  # per-row chord bounds of h where they cut the envelope (see solve)
_VAR_COS = 0.05  # k rows this close (cosine) to the reference point enter the program
_ZERO_TOL = 1e-13  # |a^T v| <= tol * ||a|| (unit rays): the ray lies on the hyperplane
#: node solver: "ldp" (least-distance programs by NNLS with an exact line search, warm-
#: started from the parent's maximiser and fractional rows; the default), "active_set" (a
#: primal active-set method started at the parent's multipliers) or "clarabel" (the conic
#: program). The first two hand a node to Clarabel where they cannot bound it (counted).
_NODE_SOLVER = "ldp"
_LDP_EPS = 1e-6  # weight of the multipliers sigma in the regularised least-distance program
_LDP_COS = 1e-3  # k rows this close (cosine) to the parent's maximiser start as variables
_AS_RELEASE = 0.999  # active set: release the bounds violated by this fraction of the worst
_LDP_MAX_VAR = 40  # more free multipliers than this: the conic program (NNLS cost ~K^3)
_LDP_FREE_WRONG = 20  # at most this many contradicted signs become free at once
_LDP_RAYS_ALL = 24  # nodes of at most this many rays: every ray in the least-distance NNLS
_LDP_RAYS_START = 4  # else it starts with dim + this many rays (and the previous round's)
_LDP_RAYS_ADD = 24  # ... and adds at most this many of the violated rays per pass
_LDP_RAYS_PASSES = 8  # passes before the NNLS takes every ray
_LDP_RAYS_TOL = 1e-12  # a ray is violated beyond this fraction of the scale of c
#: signs still moving after max_rounds: keep the best certified (valid, looser) bound and
#: let the children refine it, except at leaves (True: the conic program every time)
_LDP_UNSETTLED_FALLBACK = False
#: the least-distance program compiled by numba where it is installed (the ``fast``
#: extra; :mod:`._ldp_kernel`), else numpy and scipy's NNLS: the same program
_LDP_COMPILED = True
#: compiled, the NNLS over every ray is cheaper than the working set's passes up to this
#: many rays (the per-column cost is what the working set saves, and compiled it is small:
#: 7 % faster searches at ranks 6-8 than with ``_LDP_RAYS_ALL``, the same nodes)
_LDP_RAYS_ALL_COMPILED = 400
_NO_RAYS = np.zeros(0, np.int64)
_NO_Y = np.zeros(0)


def _vnorm(x):
    """``||x||`` of a vector (what ``np.linalg.norm`` computes, without its per-call
    overhead: a few microseconds, and these run several times per node)."""
    return math.sqrt(float(x @ x))


@dataclass
class BnBResult:
    """The outcome of :func:`dual_constraint_bnb`.

    Attributes
    ----------
    upper : float
        A proven upper bound on ``M(lambda)`` (valid whenever the search stopped).
    lower : float
        ``|lambda^T (X_aug direction)_+|``: the value attained by ``direction``.
    direction : ndarray of shape (d_aug,)
        The best point found, ``x = (u, b)`` in the original coordinates, with
        ``||u|| = 1`` (free bias) or ``||x|| = 1``.
    sign : int
        ``+1`` when ``lambda^T (X_aug direction)_+ = lower``, ``-1`` when it is ``-lower``.
    closed : bool
        ``upper - lower <= tol * max(lower, tiny)`` (``tiny = 1e-12`` times the trivial bound
        ``sum_i |lambda_i| ||x_aug_i||``).
    n_nodes : int
        Node bounds computed (a few least-distance programs, or one to a few small conic
        programs, each).
    time : float
        Wall-clock seconds.
    n_open : int
        Nodes still open when the search stopped.
    info : dict
        ``rank``, ``heuristic_lower`` (the incumbent before the search), ``n_leaves``,
        ``max_rays``, ``solver_failures``, ``node_solver``, ``conic_fallbacks`` (nodes
        the warm-started path handed to Clarabel) and ``fallback_reasons``, ``n_ldp``
        (least-distance programs solved), ``n_active_set`` and ``active_set_moves`` (the
        ``"active_set"`` node solver), ``stopped`` (``"closed"``, ``"max_nodes"``,
        ``"time_limit"``, ``"exhausted"`` (no node left open, yet the largest leaf bound
        is above the gap: the bound is valid but not closed), or with ``threshold``
        ``"below"`` / ``"above"``), ``candidates``
        (the 32 best points found, one per sign and activation pattern, as
        ``(value, direction, sign)``, best first: the columns of a pricing call),
        ``n_workers`` (the processes that bounded nodes: 1 unless ``n_jobs > 1`` and
        the search ran long enough to start them).
    """

    upper: float
    lower: float
    direction: np.ndarray
    sign: int
    closed: bool
    n_nodes: int
    time: float
    n_open: int = 0
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- the problem
class _Problem:
    """Reduced data ``Z`` (rows ``z_i``) in coordinates of the row space, and helpers."""

    def __init__(self, X, lam, bias, free):
        self.free = free
        n = X.shape[0]
        if free:
            self.shift = X.mean(axis=0)
            Xc = X - self.shift
        else:
            self.shift = np.zeros(X.shape[1] + int(bias))
            Xc = augment(X, bias)
        # orthonormal basis of the row space (directions outside it only waste norm)
        if Xc.size and np.any(Xc):
            _, sv, Vt = np.linalg.svd(Xc, full_matrices=False)
            r = int(np.sum(sv > 1e-12 * sv[0]))
        else:
            Vt, r = np.zeros((0, Xc.shape[1])), 0
        self.Q = Vt[:r].T  # (d or d_aug, r)
        Zu = Xc @ self.Q
        if free:
            self.Z = np.hstack([Zu, np.ones((n, 1))])
            self.R = float(np.max(np.linalg.norm(Zu, axis=1))) if r else 0.0
        else:
            self.Z = Zu
            self.R = 0.0
        self.Du = r
        self.D = self.Z.shape[1]
        self.lam = lam
        self.rownorm = np.linalg.norm(self.Z, axis=1)

    # -- norms on Omega -----------------------------------------------------------------
    def dual_norm(self, y):
        if self.free:
            return _vnorm(y[:-1]) + self.R * abs(float(y[-1]))
        return _vnorm(y)

    def normalise(self, x):
        """Scale ``x`` onto the boundary of Omega's norm part (None if impossible)."""
        nu = _vnorm(x[:-1]) if self.free else _vnorm(x)
        if not np.isfinite(nu) or nu <= 0:
            return None
        return x / nu

    # -- objective ------------------------------------------------------------------------
    def value(self, x, s):
        return float(s * (self.lam @ np.maximum(self.Z @ x, 0.0)))

    def best_bias(self, u, s):
        """Exact ``max_b s lam^T (Z_u u + b)_+`` (a breakpoint ``b = -z_i^T u``)."""
        p = self.Z[:, :-1] @ u
        order = np.argsort(-p, kind="stable")
        ps = p[order]
        ls = s * self.lam[order]
        S1 = np.cumsum(ls * ps)
        S0 = np.cumsum(ls)
        vals = S1 - ps * S0
        k = int(np.argmax(vals))
        return float(-ps[k]), float(vals[k])

    def evaluate(self, x, s):
        """Value of the normalised ``x`` (with the best bias when it is free)."""
        x = self.normalise(np.asarray(x, dtype=float))
        if x is None:
            return 0.0, None
        if self.free:
            b, _ = self.best_bias(x[:-1], s)
            x = np.concatenate([x[:-1], [b]])
        return self.value(x, s), x

    def fixed_point(self, x, s, iters=30):
        """Ascent by ``x <- argmax_{Omega} grad^T x`` (a DC / cell-polish step) from ``x``."""
        best_v, x = self.evaluate(x, s)
        if x is None:
            return 0.0, None
        best_x = x
        last = None
        for _ in range(iters):
            mask = self.Z @ x > 0
            key = mask.tobytes()
            if key == last:
                break
            last = key
            c = self.Z.T @ np.where(mask, s * self.lam, 0.0)
            v, xn = self.evaluate(c, s)
            if xn is None:
                break
            x = xn
            if v > best_v:
                best_v, best_x = v, xn
        return best_v, best_x

    def dca(self, x, s, iters=8):
        """DC ascent: ``x <- argmax_{Omega} g^T x - k(x)``, ``g`` a subgradient of ``h`` at ``x``.

        Monotone (``f(x_{k+1}) >= g^T x_{k+1} - k(x_{k+1}) >= f(x_k)``); each step is one
        small concave program (Clarabel), ``k`` kept exact.
        """
        import clarabel
        import scipy.sparse as sp

        best_v, x = self.evaluate(x, s)
        if x is None:
            return 0.0, None
        best_x = x
        sl = s * self.lam
        Nrows = np.flatnonzero(sl < 0)
        w = -sl[Nrows]
        ZN = self.Z[Nrows]
        K = Nrows.size
        D = self.D
        du = D - 1 if self.free else D
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        # rows: [s >= 0 (K) | Z_N x - s <= 0 (K) | |b| <= R (2, free) | SOC (1 + du)]
        blocks = [[None, -sp.identity(K)], [sp.csc_matrix(ZN), -sp.identity(K)]]
        n_nonneg = 2 * K
        bl = [np.zeros(2 * K)]
        if self.free:
            eb = np.zeros((2, D))
            eb[0, -1], eb[1, -1] = 1.0, -1.0
            blocks.append([sp.csc_matrix(eb), None])
            bl.append(np.full(2, self.R))
            n_nonneg += 2
        soc = np.zeros((1 + du, D))
        soc[1:, :du] = -np.eye(du)
        blocks.append([sp.csc_matrix(soc), None])
        bl.append(np.concatenate([[1.0], np.zeros(du)]))
        if K == 0:
            Amat = sp.vstack([b[0] for b in blocks if b[0] is not None], format="csc")
            bl = bl[1:]
        else:
            Amat = sp.bmat(blocks, format="csc")
        bvec = np.concatenate(bl)
        cones = [clarabel.NonnegativeConeT(n_nonneg), clarabel.SecondOrderConeT(1 + du)] \
            if n_nonneg else [clarabel.SecondOrderConeT(1 + du)]
        Pm = sp.csc_matrix((D + K, D + K))
        for _ in range(iters):
            act = (self.Z @ x > 0) & (sl > 0)
            g = self.Z.T @ np.where(act, sl, 0.0)
            q = np.concatenate([-g, w])
            try:
                sol = clarabel.DefaultSolver(Pm, q, Amat, bvec, cones, settings).solve()
                xn = np.asarray(sol.x)[:D]
            except Exception:  # pragma: no cover - solver failure: stop the ascent
                break
            v, xn = self.evaluate(xn, s)
            if xn is None or v <= best_v * (1 + 1e-12):
                if xn is not None and v > best_v:
                    best_v, best_x = v, xn
                break
            best_v, best_x, x = v, xn, xn
        return best_v, best_x

    def cell_polish(self, x, s):
        """Exact maximum over the cell of ``x`` (docs/mathematics.rst §4.2), re-evaluated."""
        from ._dual import pattern_value

        mask = self.Z @ x > 0
        c = self.Z.T @ np.where(mask, s * self.lam, 0.0)
        try:
            _, _, xc, _ = pattern_value(self.Z, mask, c, free_bias=self.free, R=self.R,
                                        max_rounds=20)
        except Exception:  # pragma: no cover - numerical failure: keep the point
            return self.evaluate(x, s)
        if xc is None:
            return 0.0, None
        return self.evaluate(xc, s)


# --------------------------------------------------------------------------- nodes
class _Node:
    __slots__ = ("sign", "V", "masks", "next_id", "bound", "depth", "t", "x",
                 "cross_P", "var_rows", "mult", "src", "ray_hint")

    def __init__(self, sign, V, masks, next_id, bound, depth=0):
        self.sign = sign
        self.V = V  # (m, D) unit rays
        self.masks = masks  # (m, n_constraints) bool: the facets tight at each ray
        self.next_id = next_id
        self.bound = bound
        self.depth = depth
        self.t = None
        self.x = None
        self.cross_P = None
        self.var_rows = None  # k rows whose multiplier was fractional in the parent
        self.mult = None  # the parent's (crossing k rows, their sigma, y): a warm start
        self.src = None  # (kept parent rays, the pairs (p, q) of parent rays of the new ones)
        # (rays, y): the rays kept from or made of the parent's rays of positive weight and
        # the parent's least-distance point (a warm start of the NNLS's working set)
        self.ray_hint = None

    @property
    def n_rays(self):
        return self.V.shape[0]

    def __reduce__(self):
        # nodes travel to and from the worker processes in every batch: as plain bytes,
        # since joblib's memmapping reducer inspects each ndarray it pickles and a node
        # holds up to nine small ones (the masks as bits)
        return _unpack_node, (_pack_node(self),)


class _Packed:
    """A node as the bytes of :func:`_pack_node`: the children a worker process returns.
    The searching process only orders them by bound and sends them on, so it never
    rebuilds their arrays (with two workers that was a third of its own CPU time); the
    worker that bounds one unpacks it (:meth:`_Worker.run`)."""

    __slots__ = ("state",)

    def __init__(self, state):
        self.state = state

    @property
    def bound(self):
        return self.state[2]

    @property
    def n_rays(self):
        return self.state[4][1][0]  # V's shape

    def node(self):
        return _unpack_node(self.state)

    def __reduce__(self):
        return _Packed, (self.state,)


def _pack_array(a):
    return None if a is None else (a.dtype.str, a.shape, a.tobytes())


def _unpack_array(b):
    return None if b is None else np.frombuffer(b[2], dtype=b[0]).reshape(b[1]).copy()


def _pack_node(node):
    masks = node.masks
    hint = node.ray_hint
    return (node.sign, node.next_id, node.bound, node.depth, _pack_array(node.V),
            masks.shape, np.packbits(masks, axis=None).tobytes(), _pack_array(node.t),
            _pack_array(node.x), _pack_array(node.cross_P), _pack_array(node.var_rows),
            node.mult, node.src,
            None if hint is None else (_pack_array(hint[0]), _pack_array(hint[1])))


def _unpack_node(state):
    (sign, next_id, bound, depth, V, mshape, mbits, t, x, cross_P, var_rows, mult, src,
     hint) = state
    masks = np.unpackbits(np.frombuffer(mbits, dtype=np.uint8),
                          count=int(np.prod(mshape)))
    node = _Node(sign, _unpack_array(V), masks.reshape(mshape).astype(bool), next_id, bound,
                 depth)
    node.t, node.x, node.cross_P = _unpack_array(t), _unpack_array(x), _unpack_array(cross_P)
    node.var_rows, node.mult, node.src = _unpack_array(var_rows), mult, src
    node.ray_hint = None if hint is None else (_unpack_array(hint[0]),
                                               _unpack_array(hint[1]))
    return node


def _simplex_fan(D):
    """``D + 1`` simplicial cones covering ``R^D`` (around a regular simplex's vertices).

    Returns ``(V, masks, n_constraints)`` per cone: unit rays and the boolean matrix of the
    facets tight at each ray (facet ``j``, opposite to ray ``j``, is tight at the others).
    """
    if D == 1:
        W = np.array([[1.0], [-1.0]])
    else:
        E = np.eye(D + 1) - 1.0 / (D + 1)
        U, _, _ = np.linalg.svd(E)
        W = E @ U[:, :D]  # D+1 vertices in R^D, sum zero
        W /= np.linalg.norm(W, axis=1, keepdims=True)
    cones = []
    for k in range(W.shape[0]):
        V = np.delete(W, k, axis=0)
        masks = ~np.eye(V.shape[0], dtype=bool)
        cones.append((V, masks, V.shape[0]))
    return cones


def _adjacent_pairs(masks, pos, neg, D):
    """Pairs ``(p, q)`` of adjacent extreme rays (combinatorial test of double description).

    ``p`` and ``q`` are adjacent iff their common tight set has at least ``D - 2`` facets
    and no other ray is tight on all of them.
    """
    Mf = masks.astype(np.float32)  # counts below 2^24 are exact in float32
    cnt = Mf[pos] @ Mf[neg].T  # |common tight set| for every pair
    ip, iq = np.nonzero(cnt >= D - 2)
    if ip.size == 0:
        return pos[:0], neg[:0]
    P, Q = pos[ip], neg[iq]
    common = Mf[P] * Mf[Q]  # (k, c)
    contain = (common @ Mf.T) >= cnt[ip, iq][:, None] - 0.5  # ray r is tight on all of them
    ok = contain.sum(axis=1) == 2  # only p and q themselves
    return P[ok], Q[ok]


def _split(node, a, D):
    """The two children of ``node`` cut by the hyperplane ``a^T x = 0`` (``a`` unit)."""
    V, masks = node.V, node.masks
    vals = V @ a
    pos = np.flatnonzero(vals > _ZERO_TOL)
    neg = np.flatnonzero(vals < -_ZERO_TOL)
    zero = np.flatnonzero(np.abs(vals) <= _ZERO_TOL)
    P, Q = (pos[:0], neg[:0]) if D == 1 else _adjacent_pairs(masks, pos, neg, D)
    # one new facet column: tight at the rays on the hyperplane and at the new rays
    grown = np.hstack([masks, np.zeros((masks.shape[0], 1), dtype=bool)])
    grown[zero, -1] = True
    new_rays = vals[P, None] * V[Q] - vals[Q, None] * V[P]  # on the hyperplane
    nv = np.linalg.norm(new_rays, axis=1)
    ok = nv > 0
    new_rays = new_rays[ok] / nv[ok, None]
    new_masks = grown[P[ok]] & grown[Q[ok]]
    new_masks[:, -1] = True
    children = []
    for side in (pos, neg):
        if side.size == 0:
            continue
        keep = np.concatenate([side, zero])
        child = _Node(node.sign, np.vstack([V[keep], new_rays]),
                      np.vstack([grown[keep], new_masks]), node.next_id + 1, node.bound,
                      node.depth + 1)
        child.src = (keep, P[ok], Q[ok])
        children.append(child)
    return children


# --------------------------------------------------------------------------- node bound
def _kkt_solve(K, rhs):
    """``K^{-1} rhs`` for the small KKT matrix of the least-distance polish: an LU solve,
    or the minimum-norm least squares (SVD) where ``K`` is singular to working precision
    (a pivot below ``_KKT_PIVOT`` times the largest, or a failed factor). A singular
    ``K`` (linearly dependent rays or rows, condition numbers of 1e16-1e18 in the tests)
    has many solutions and the LU solve returns an arbitrary one, whose multipliers,
    clipped to their bounds, can make a worse point than the minimum-norm one. None when
    both fail."""
    sol = lu_solve(K, rhs, _KKT_PIVOT)
    if sol is not None:
        return sol
    try:
        return np.linalg.lstsq(K, rhs, rcond=1e-13)[0]
    except np.linalg.LinAlgError:  # pragma: no cover - keep the NNLS point
        return None


_KKT_PIVOT = 1e-10


class _NodeSolver:
    """Concave-envelope relaxation of one cone, and its certified Lagrangian bound."""

    def __init__(self, prob: _Problem):
        self.p = prob
        self.failures = 0
        self.conic_fallbacks = 0  # nodes the least-distance path handed to Clarabel
        self.n_ldp = 0  # least-distance programs solved
        self.ldp_ray_passes = 0  # their NNLS solves over a working set of rays
        self.n_as = 0  # nodes bounded by the warm-started active-set method
        self.as_moves = {"add": 0, "fix": 0, "drop": 0, "release": 0, "step": 0}
        # why the least-distance path handed a node to Clarabel
        self.fallback_reasons = {"free_rows": 0, "inexact": 0, "slab": 0, "unsettled": 0}
        import clarabel

        self.clarabel = clarabel
        self.settings = clarabel.DefaultSettings()
        self.settings.verbose = False
        self.settings.tol_gap_abs = 1e-10
        self.settings.tol_gap_rel = 1e-9
        self.settings.tol_feas = 1e-9
        self.settings.max_iter = 200
        self._ray_sum = (None, 0.0)  # (rays, ray_sum_bound(rays)) of the last node

    def counters(self):
        """The solver's counts, flat (added up over the workers of a parallel search)."""
        out = {"failures": self.failures, "conic_fallbacks": self.conic_fallbacks,
               "n_ldp": self.n_ldp, "ldp_ray_passes": self.ldp_ray_passes, "n_as": self.n_as}
        out.update({"as_" + k: v for k, v in self.as_moves.items()})
        out.update({"fb_" + k: v for k, v in self.fallback_reasons.items()})
        return out

    def pieces(self, node):
        """Ray values ``h(v_j)``, the linear part of ``k``, and the crossing rows."""
        p = self.p
        s = node.sign
        V = node.V
        A = p.Z @ V.T  # (n, m)
        thr = _ZERO_TOL * p.rownorm[:, None]
        amax = A.max(axis=1)
        amin = A.min(axis=1)
        sl = s * p.lam
        P = sl > 0
        Nn = sl < 0
        g = np.maximum(A[P], 0.0).T @ sl[P]  # h(v_j), exact over all rows of h
        crossP = np.flatnonzero(P & (amax > thr[:, 0]) & (amin < -thr[:, 0]))
        w = -sl
        lin = Nn & (amin >= -thr[:, 0])
        crossN = np.flatnonzero(Nn & ~lin & (amax > thr[:, 0]))
        return A, g, crossP, crossN, lin, w

    def certify(self, node, sigma_full, y, g=None, tri=None):
        """The Lagrangian bound of the module docstring for multipliers ``(sigma, y)``.

        ``g`` (the ray values ``h(v_j)``) is recomputed unless given. ``tri = (rows, A,
        alpha, beta, rho)`` replaces, for those ``h`` rows, the envelope by the mixture
        ``rho * envelope + (1 - rho) * (alpha z_i^T x + beta)`` of the envelope and the
        triangle (chord) bound of ``(z_i^T x)_+`` on ``[l_i, u_i]``, valid for any
        ``rho in [0, 1]``; the constant ``sum lam_i (1 - rho_i) beta_i`` is added.
        """
        p = self.p
        V = node.V
        s = node.sign
        sl = s * p.lam
        if g is None:
            P = sl > 0
            g = np.maximum(p.Z[P] @ V.T, 0.0).T @ sl[P]
        w = np.where(sl < 0, -sl, 0.0)
        psig = p.Z.T @ (w * np.clip(sigma_full, 0.0, 1.0))
        c = g - V @ psig
        const = 0.0
        if tri is not None and tri[0].size:
            rows, AT, alpha, beta, rho = tri
            lt = sl[rows] * (1.0 - np.clip(rho, 0.0, 1.0))
            c = c - np.maximum(AT, 0.0).T @ lt + AT.T @ (lt * alpha)
            const = float(lt @ beta)
        return self.bound_from(V, c, y) + const

    def bound_from(self, V, c, y):
        """``||y||_{Omega^*} + max_j (c_j - v_j^T y)_+ T``: :meth:`certify` for the
        ray coefficients ``c_j = h(v_j) - v_j^T p_sigma`` already formed."""
        eps = float((c - V @ y).max()) if c.size else 0.0
        val = self.p.dual_norm(y)
        if eps > 0:
            T = self.ray_sum_bound(V)
            if not np.isfinite(T):
                return float("inf")
            val += eps * T
        return val

    def ray_sum_bound(self, V):
        """``T >= sum_j t_j`` for every ``x = V^T t`` in ``C cap Omega`` (unit rays)."""
        cached = self._ray_sum  # one read: (rays, bound) stay a pair
        if cached[0] is V:  # the node being bounded
            return cached[1]
        e = V.sum(axis=0)
        ne = np.linalg.norm(e)
        gamma = float(np.min(V @ e)) / ne if ne > 0 else 0.0
        T = self.p.dual_norm(e / ne) / gamma if gamma > 0 else float("inf")
        if not np.isfinite(T):
            # the rays' sum is no valid direction (a wide cone: seen at leaves of rank 5-6
            # with a free bias, whose bound then never moved below the parent's): any d
            # with V d > 0 serves, T = ||d||_{Omega^*} / min_j v_j^T d; the least-distance
            # d of V d >= 1 is the tightest for the unit ball (its program's dual is max
            # sum t_j over V^T t in the ball), valid but looser with a free bias
            out = self._ldp(V, np.ones(V.shape[0]), np.zeros((V.shape[0], 0)), 1.0)
            if out is not None:
                d = out[0]
                gamma = float(np.min(V @ d))
                if gamma > 0:
                    T = self.p.dual_norm(d) / gamma
        self._ray_sum = (V, T)
        return T

    def _program(self, V, gl, B, wN, AT=None, alpha=None, beta=None, lamT=None):
        """Solve the node's relaxation (Clarabel); return ``(t, sigma, rho, y)`` or None.

        ``max_{t >= 0, V^T t in Omega} gl^T t - sum_i w_i (b_i^T t)_+ + sum_T lam_i r_i``
        with ``r_i <= sum_j t_j (A_ij)_+`` and ``r_i <= alpha_i A_i t + beta_i`` for the
        triangle rows ``T`` (whose envelope is not in ``gl``). ``sigma``, ``rho`` and ``y``
        are the multipliers of the ``k`` rows, of the envelope rows and of ``Omega``.
        """
        import scipy.sparse as sp

        p = self.p
        m, D = V.shape
        K = B.shape[0]
        KT = 0 if AT is None else AT.shape[0]
        Vu = V[:, :-1] if p.free else V
        du = Vu.shape[1]
        # variables [t (m) | s (K) | r (KT)]; rows [t >= 0 | s >= 0 | B t - s <= 0 |
        # r - (A_T)_+ t <= 0 | r - alpha A_T t <= beta | |v_b^T t| <= R (free) | SOC]
        r_s, r_B, r_E, r_T = m, m + K, m + 2 * K, m + 2 * K + KT
        r_box = m + 2 * K + 2 * KT
        n_nonneg = r_box + (2 if p.free else 0)
        n_rows = n_nonneg + 1 + du
        c_s, c_r = m, m + K
        nv = m + K + KT
        # one dense block matrix, converted once (the blocks are small and mostly dense;
        # this is several times cheaper than assembling triplets in Python)
        Ad = np.zeros((n_rows, nv))
        Ad[np.arange(m), np.arange(m)] = -1.0
        if K:
            Ad[r_s + np.arange(K), c_s + np.arange(K)] = -1.0
            Ad[r_B:r_B + K, :m] = B
            Ad[r_B + np.arange(K), c_s + np.arange(K)] = -1.0
        if KT:
            Ad[r_E:r_E + KT, :m] = -np.maximum(AT, 0.0)
            Ad[r_E + np.arange(KT), c_r + np.arange(KT)] = 1.0
            Ad[r_T:r_T + KT, :m] = -alpha[:, None] * AT
            Ad[r_T + np.arange(KT), c_r + np.arange(KT)] = 1.0
        if p.free:
            Ad[r_box, :m] = V[:, -1]
            Ad[r_box + 1, :m] = -V[:, -1]
        Ad[n_nonneg + 1:n_nonneg + 1 + du, :m] = -Vu.T
        Amat = sp.csc_matrix(Ad)
        bvec = np.zeros(n_rows)
        if KT:
            bvec[r_T:r_T + KT] = beta
        if p.free:
            bvec[r_box:r_box + 2] = p.R
        bvec[n_nonneg] = 1.0
        q = np.concatenate([-gl, wN, -lamT if KT else np.zeros(0)])
        Pm = sp.csc_matrix((nv, nv))
        cones = [self.clarabel.NonnegativeConeT(n_nonneg),
                 self.clarabel.SecondOrderConeT(1 + du)]
        try:
            sol = self.clarabel.DefaultSolver(Pm, q, Amat, bvec, cones, self.settings).solve()
            xs = np.asarray(sol.x)
            zs = np.asarray(sol.z)
        except Exception:  # pragma: no cover - solver failure
            return None
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(zs))):  # pragma: no cover
            return None
        t = np.maximum(xs[:m], 0.0)
        sigma = np.clip(zs[r_B:r_B + K] / np.where(wN > 0, wN, 1.0), 0.0, 1.0)
        rho = np.clip(zs[r_E:r_E + KT] / lamT, 0.0, 1.0) if KT else np.zeros(0)
        y = np.empty(D)
        y[:du] = -zs[n_nonneg + 1:n_nonneg + 1 + du]
        if p.free:
            y[-1] = zs[r_box] - zs[r_box + 1]
        return t, sigma, rho, y

    def solve(self, node, prune_at=-np.inf):
        """Bound the node; return ``(bound, t, x, crossP)`` (``_NODE_SOLVER`` chooses how).

        The least-distance path (:meth:`solve_ldp`) is used unless the triangle bounds are
        on or it cannot apply (an infeasible or failed least-distance program: then the
        conic program, counted in ``conic_fallbacks``).
        """
        if _NODE_SOLVER == "ldp" and not _TRIANGLES:
            out = self.solve_ldp(node, prune_at)
            if out is not None:
                return out
            self.conic_fallbacks += 1
        if _NODE_SOLVER == "active_set" and not _TRIANGLES:
            out = self.solve_as(node, prune_at)
            if out is not None:
                self.n_as += 1
                return out
            self.conic_fallbacks += 1
        return self.solve_conic(node, prune_at)

    def solve_conic(self, node, prune_at=-np.inf, max_rounds=4):
        """Bound the node by the conic program; return ``(bound, t, x, crossP)``.

        The ``k`` rows crossing the cone enter the program only when needed (constraint
        generation): the others keep the multiplier ``sigma_i in {0, 1}`` of their sign at
        a reference point (the parent's maximiser), which gives a valid bound for any
        choice; a row joins the program when the maximiser found contradicts its fixed
        sign. The loop stops early once the certified bound is below ``prune_at``.
        """
        p = self.p
        V = node.V
        A, g, crossP, crossN, lin, w = self.pieces(node)
        xref = node.x if node.x is not None else V.sum(axis=0)
        ZN = p.Z[crossN]
        sref = ZN @ xref
        scale_ref = p.rownorm[crossN] * (np.linalg.norm(xref) + 1e-300)
        fixed_on = sref > 0
        var = np.abs(sref) <= _VAR_COS * scale_ref
        sigma = np.zeros(p.Z.shape[0])
        sigma[lin] = 1.0
        # triangle (chord) bounds of the crossing h rows on [l_i, u_i] (wide cones)
        sl = node.sign * p.lam
        AP = A[crossP]
        lamP = sl[crossP]
        Tsum = self.ray_sum_bound(V)
        ns = (np.linalg.norm(p.Z[crossP, :-1], axis=1) + p.R) if p.free else p.rownorm[crossP]
        with np.errstate(invalid="ignore"):
            u = np.minimum(ns, Tsum * np.maximum(AP, 0.0).max(axis=1, initial=0.0))
            lo = -np.minimum(ns, Tsum * np.maximum(-AP, 0.0).max(axis=1, initial=0.0))
        width = u - lo
        ok_tri = np.isfinite(width) & (width > 0)
        alpha = np.where(ok_tri, u / np.where(ok_tri, width, 1.0), 0.0)
        beta = np.where(ok_tri, -u * lo / np.where(ok_tri, width, 1.0), 0.0)
        tri_on = np.zeros(crossP.size, dtype=bool)
        best = (node.bound, None, None)
        for rnd in range(max_rounds + 1):
            if rnd == max_rounds:
                var[:] = True
            on = fixed_on & ~var
            sig = sigma.copy()
            sig[crossN[on]] = 1.0
            klin = p.Z.T @ (w * sig)
            AT = AP[tri_on]
            gl = g - V @ klin - np.maximum(AT, 0.0).T @ lamP[tri_on]
            res = self._program(V, gl, A[crossN[var]], w[crossN[var]], AT, alpha[tri_on],
                                beta[tri_on], lamP[tri_on])
            if res is None:  # pragma: no cover - keep the parent's bound
                self.failures += 1
                break
            t, sv, rho, y = res
            sig[crossN[var]] = sv
            tri = (crossP[tri_on], AT, alpha[tri_on], beta[tri_on], rho)
            bound = self.certify(node, sig, y, g, tri)
            x = V.T @ t
            if bound < best[0] or best[1] is None:
                best = (min(bound, node.bound), t, x)
                if not tri_on.any():  # plain (sigma, y): a warm start for the children
                    node.mult = (crossN, sig[crossN].copy(), y.copy())
            if bound <= prune_at or rnd == max_rounds:
                break
            sx = ZN @ x
            tolx = 1e-9 * p.rownorm[crossN] * (np.linalg.norm(x) + 1e-300)
            wrong = ~var & (((sx < -tolx) & fixed_on) | ((sx > tolx) & ~fixed_on))
            env = np.maximum(AP, 0.0) @ t
            cut = _TRIANGLES & ok_tri & ~tri_on & (alpha * (AP @ t) + beta < env * (1 - 1e-6))
            if not wrong.any() and not cut.any():
                break
            var |= wrong
            tri_on |= cut
        return best[0], best[1], best[2], crossP

    # -- the warm-started active-set path -------------------------------------------------
    def solve_as(self, node, prune_at=-np.inf, max_iter=80):
        """Bound a child node from its parent's multipliers; ``(bound, t, x, crossP)``.

        The node dual (module docstring) with ``Omega``'s bias part fixed,
        ``min 1/2 ||y_u||^2`` s.t. ``V_u y_u + H sigma >= c - eta v_b``,
        ``0 <= sigma <= 1`` (``H`` the crossing ``k`` rows, ``eta = y_b`` the parent's), is a
        small convex quadratic program. The parent's multipliers are feasible for every
        child (a child's rays are parent rays or positive combinations of two, ``h`` is
        sublinear, and the rows that stop crossing move to their exact multiplier ``0`` or
        ``1``, which only adds slack), so a primal active-set method starts there:
        multipliers at a bound are fixed, the working set holds the tight rays and the
        equality-constrained step is a linear system of size at most ``D + |free| + |W|``;
        every iterate stays feasible. The bound returned is :meth:`certify` at the final
        multipliers: valid whatever the iteration did. ``None`` (the conic program then
        runs) without parent multipliers or when the method does not settle.
        """
        mult = node.mult
        if mult is None:
            return None
        p = self.p
        V = node.V
        m = V.shape[0]
        n = p.Z.shape[0]
        A, g, crossP, crossN, lin, w = self.pieces(node)
        rows, srows, yprev = mult
        full = np.zeros(n)
        full[rows] = srows
        base = np.zeros(n)
        base[lin] = 1.0
        K = crossN.size
        sig = np.clip(full[crossN], 0.0, 1.0)
        if p.free:
            # the bias part y_b = eta stays 0: optimal while the slab |x_b| <= R is inactive
            # (checked at the end); a parent with y_b != 0 goes to the conic program
            Vu, eta = V[:, :-1], 0.0
            y = yprev[:-1].copy()
            if abs(float(yprev[-1])) > 1e-9 * max(float(np.linalg.norm(y)), 1e-300):
                self.fallback_reasons["slab"] += 1
                return None
        else:
            Vu, eta = V, 0.0
            y = yprev.copy()
        du = Vu.shape[1]
        c = g - V @ (p.Z.T @ (w * base))
        if p.free:
            c = c - eta * V[:, -1]
        H = (A[crossN] * w[crossN, None]).T  # (m, K): H_ji = w_i z_i^T v_j
        scale = max(float(np.linalg.norm(y)), 1e-300)
        slack = Vu @ y + H @ sig - c
        if slack.min(initial=0.0) < -1e-9 * (scale + float(np.abs(c).max(initial=0.0))):
            return None  # not feasible (rounding in the parent): the conic program
        free = (sig > 0.0) & (sig < 1.0)
        W = list(np.flatnonzero(slack <= 1e-12 * (scale + np.abs(c))))[:du]
        settled = False
        lam = np.zeros(0)
        for _ in range(max_iter):
            F = np.flatnonzero(free)
            nW, f = len(W), F.size
            N = du + f + nW
            Mk = np.zeros((N, N))
            Mk[:du, :du] = np.eye(du)
            if nW:
                VW = Vu[W]
                HWF = H[W][:, F]
                Mk[:du, du + f:] = -VW.T
                Mk[du:du + f, du + f:] = -HWF.T
                Mk[du + f:, :du] = VW
                Mk[du + f:, du:du + f] = HWF
            rhs = np.zeros(N)
            rhs[:du] = -y
            try:
                sol = np.linalg.solve(Mk, rhs)
                if not np.all(np.isfinite(sol)):
                    raise np.linalg.LinAlgError
            except np.linalg.LinAlgError:  # dependent constraints: least squares
                sol = np.linalg.lstsq(Mk, rhs, rcond=1e-12)[0]
            py, pF, lam = sol[:du], sol[du:du + f], sol[du + f:]
            if np.linalg.norm(py) <= 1e-10 * scale and \
                    np.max(np.abs(pF), initial=0.0) <= 1e-10:
                # stationary on the working set: check the multipliers
                q = H[W].T @ lam if nW else np.zeros(K)  # w_i z_i^T x
                viol_lo = np.where(~free & (sig <= 0.0), q, 0.0)
                viol_hi = np.where(~free & (sig >= 1.0), -q, 0.0)
                vb = np.maximum(viol_lo, viol_hi)
                ib = int(np.argmax(vb)) if K else -1
                jl = int(np.argmin(lam)) if nW else -1
                worst_b = vb[ib] if K else 0.0
                worst_l = -lam[jl] if nW else 0.0
                thr = 1e-9 * max(float(np.max(np.abs(lam), initial=0.0)), 1e-300) * \
                    max(float(np.max(np.abs(H), initial=0.0)), 1.0)
                if max(worst_b, worst_l) <= thr:
                    settled = True
                    break
                if worst_l >= worst_b:
                    W.pop(jl)
                    self.as_moves["drop"] += 1
                else:  # release every multiplier whose bound the signs contradict
                    rel = vb > max(thr, _AS_RELEASE * worst_b)
                    free |= rel
                    self.as_moves["release"] += int(rel.sum())
                continue
            # ratio test along the step (every iterate stays feasible)
            d_r = Vu @ py + H[:, F] @ pF
            alpha, block = 1.0, None
            inW = np.zeros(m, dtype=bool)
            inW[W] = True
            dec = ~inW & (d_r < -1e-15 * (np.abs(Vu) @ np.abs(py) + 1e-300))
            if dec.any():
                ar = np.maximum(slack[dec], 0.0) / -d_r[dec]
                k = int(np.argmin(ar))
                if ar[k] < alpha:
                    alpha, block = float(ar[k]), ("ray", int(np.flatnonzero(dec)[k]))
            if f:
                sF = sig[F]
                with np.errstate(divide="ignore", invalid="ignore"):
                    asig = np.where(pF < 0, sF / -pF, np.where(pF > 0, (1 - sF) / pF, np.inf))
                k = int(np.argmin(asig))
                if asig[k] < alpha:
                    alpha, block = float(asig[k]), ("sig", int(F[k]))
            y = y + alpha * py
            if f:
                sig[F] = np.clip(sig[F] + alpha * pF, 0.0, 1.0)
            self.as_moves["step"] += 1
            if block is not None and block[0] == "ray":
                W.append(block[1])
                self.as_moves["add"] += 1
            elif block is not None:
                self.as_moves["fix"] += 1
                i = block[1]
                sig[i] = 0.0 if sig[i] < 0.5 else 1.0
                free[i] = False
            slack = Vu @ y + H @ sig - c
            if float(np.linalg.norm(y)) <= prune_at:
                break  # a feasible point already prunes the node
        pruned = float(np.linalg.norm(y)) <= prune_at
        if not settled and not pruned:
            self.fallback_reasons["unsettled"] += 1
            return None
        t = np.zeros(m)
        if len(W) and lam.size == len(W):
            t[W] = np.maximum(lam, 0.0)
        x = V.T @ t
        if p.free and settled and not pruned:
            # 0 is in the subdifferential of ||y_u(eta)|| + R |eta| at eta = 0 iff the
            # maximiser's bias |x_b| <= R ||x_u|| (x_u = y / ||y|| up to scale)
            if abs(float(x[-1])) > p.R * (1 + 1e-9) * float(np.linalg.norm(x[:-1])):
                self.fallback_reasons["slab"] += 1
                return None
        sfull = base.copy()
        sfull[crossN] = sig
        yfull = np.concatenate([y, [eta]]) if p.free else y
        bound = self.certify(node, sfull, yfull, g)
        if settled and not pruned and bound > (1.0 + 1e-6) * p.dual_norm(yfull) + 1e-12:
            # the settled multipliers miss feasibility by rounding, and the ray-sum bound
            # of a thin cone prices that miss far above their value (a test's node: 9.71
            # against 3.60): the conic program instead
            self.fallback_reasons["inexact"] += 1
            return None
        node.mult = (crossN, sig, yfull)
        return min(bound, node.bound), (t if np.any(t) else None), \
            (x if np.any(t) else node.x), crossP

    # -- the least-distance path --------------------------------------------------------
    def _ldp(self, Vu, c, HF, T, scale=None, hint=None):
        """``min ||y||^2 + eps ||sigma||^2`` s.t. ``Vu y + HF sigma >= c``, ``0 <= sigma <= 1``.

        A least-distance program (Lawson and Hanson, ch. 23), solved as the non-negative
        least-squares problem ``min_{u >= 0} ||E u - e||`` with ``E = [G^T; h^T]`` of size
        ``(dim(y) + K + 1) x (m + 2K)``; the tiny weight ``eps`` on ``sigma`` (in units of the
        scaled problem) makes the objective strictly convex and moves the optimum by a
        relative ``~eps K`` at most. Returns ``(y, sigma, t)`` with ``t >= 0`` the
        multipliers of the rows of ``Vu`` (the relaxation's ray weights), ``||y||`` and the
        violation priced by ``T`` (the ray-sum bound), or ``None`` when the program is
        infeasible or the solver fails. Any output only feeds
        :meth:`certify`, so its accuracy affects the tightness of the bound, never its
        validity.
        """
        m, du = Vu.shape
        K = HF.shape[1]
        S = float(np.max(np.abs(c), initial=0.0))
        if not np.isfinite(S):  # pragma: no cover - defensive
            return None
        if scale is not None and np.isfinite(scale) and 0 < scale < S:
            S = scale  # the expected value: eps is then relative to the optimum
        S = S if S > 0 else 1.0
        re = np.sqrt(_LDP_EPS)
        kern = _ldp_kernel.kernel() if _LDP_COMPILED else None
        if kern is not None:  # the same program, compiled (numba)
            rays, y0 = (None, None) if hint is None else hint
            arr = _ldp_kernel.as_argument  # one signature: C-ordered, writable float64
            status, y, sigma, t, nrm, viol, passes = kern(
                arr(Vu), arr(c), arr(HF), float(T), float(S), float(re),
                _NO_RAYS if rays is None else rays.astype(np.int64),
                _NO_Y if y0 is None else arr(y0),
                _LDP_RAYS_ALL_COMPILED, _LDP_RAYS_START, _LDP_RAYS_ADD, _LDP_RAYS_PASSES,
                _LDP_RAYS_TOL, _KKT_PIVOT)
            self.n_ldp += 1
            self.ldp_ray_passes += passes
            if status == _ldp_kernel.NEEDS_LSTSQ:  # a singular KKT system: numpy's polish
                return self._ldp_polish(Vu, c, HF, T, y, sigma, t)
            return None if status else (y, sigma, t, nrm, viol)
        E = np.zeros((du + K + 1, m + 2 * K))
        E[:du, :m] = Vu.T
        E[-1, :m] = c / S
        if K:
            E[du:du + K, :m] = HF.T / (S * re)
            idx = np.arange(K)
            E[du + idx, m + idx] = 1.0
            E[du + idx, m + K + idx] = -1.0
            E[-1, m + K:] = -re
        rhs = np.zeros(du + K + 1)
        rhs[-1] = 1.0
        self.n_ldp += 1
        u = self._ldp_nnls(E, rhs, Vu, c, HF, S, re, hint)
        if u is None:
            return None
        denom = 1.0 - float(E[-1] @ u)
        if not (np.isfinite(denom) and denom > 1e-12):
            return None  # infeasible (the residual vanishes)
        xs = (E[:-1] @ u) / denom
        y = S * xs[:du]
        sigma = np.clip(xs[du:] / re, 0.0, 1.0)
        t = S * u[:m] / denom
        return self._ldp_polish(Vu, c, HF, T, y, sigma, t)

    @staticmethod
    def _ldp_polish(Vu, c, HF, T, y, sigma, t):
        """The polish of :meth:`_ldp`: ``(y, sigma, t, ||y||, violation * T)``.

        The regularised program only identifies the active set (rays with ``t_j > 0``,
        fractional ``sigma_i``); its KKT system is solved exactly (:func:`_kkt_solve`) and
        whichever point is better (norm plus the violation priced by the ray-sum bound
        ``T``) is kept.
        """
        m = Vu.shape[0]

        def norm_viol(yy, ss):
            viol = float(np.max(c - Vu @ yy - HF @ ss, initial=0.0))
            return _vnorm(yy), max(viol, 0.0) * T

        J = np.flatnonzero(t > 1e-9 * max(float(t.max(initial=0.0)), 1e-300))
        frac = (sigma > 1e-6) & (sigma < 1 - 1e-6)
        sb = np.where(sigma >= 0.5, 1.0, 0.0)
        Ff = np.flatnonzero(frac)
        VJ, HJ = Vu[J], HF[J][:, Ff]
        nJ, nF = J.size, Ff.size
        nv = norm_viol(y, sigma)
        if nJ:
            Kk = np.zeros((nJ + nF, nJ + nF))
            Kk[:nJ, :nJ] = VJ @ VJ.T
            Kk[:nJ, nJ:] = HJ
            Kk[nJ:, :nJ] = HJ.T
            rhs2 = np.concatenate([c[J] - HF[J][:, ~frac] @ sb[~frac], np.zeros(nF)])
            sol = _kkt_solve(Kk, rhs2)
            if sol is not None and np.all(np.isfinite(sol)):
                sp_ = sb.copy()
                sp_[Ff] = np.clip(sol[nJ:], 0.0, 1.0)
                yp = VJ.T @ sol[:nJ]
                nvp = norm_viol(yp, sp_)
                if nvp[0] + nvp[1] < nv[0] + nv[1]:
                    t = np.zeros(m)
                    t[J] = np.maximum(sol[:nJ], 0.0)
                    y, sigma, nv = yp, sp_, nvp
        return y, sigma, t, nv[0], nv[1]

    def _ldp_nnls(self, E, rhs, Vu, c, HF, S, re, hint=None):
        """The non-negative least squares of :meth:`_ldp` over a working set of rays.

        Most of a node's rays (its cone's extreme rays: a median of 75-140 at rank 7-8)
        carry no weight at the optimum, and the solve's cost grows with the columns
        (``~1.3 us`` each). The program is first solved with the ``sigma`` columns, the
        rays of ``hint = (rays, y)`` (those of positive weight in the previous round of
        the same node, or in its parent) and the ``dim + _LDP_RAYS_START`` rays most
        violated at the hint's point ``y`` (without one: of largest ``c_j / ||v_j||``,
        each one's own least distance); the ray constraints its point violates join, at
        most ``_LDP_RAYS_ADD`` per pass, until none does: that point is then the whole
        program's optimum (optimal for a relaxation and feasible). A restricted program
        that is infeasible proves the whole one infeasible. ``u`` over every column, or
        None where the solver fails.
        """
        from scipy.optimize import nnls

        def solve(Ew):  # the NNLS over these columns of E, or None
            try:
                return nnls(Ew, rhs, maxiter=20 * Ew.shape[1])[0]
            except Exception:  # pragma: no cover - iteration limit or numerical failure
                return None

        m, du = Vu.shape
        K = HF.shape[1]
        if m <= _LDP_RAYS_ALL:
            return solve(E)
        rays, y0 = (None, None) if hint is None else hint
        lead = c if y0 is None or y0.shape[0] != du else c - Vu @ y0
        ratio = lead / (np.sqrt(np.einsum("ij,ij->i", Vu, Vu)) + 1e-300)
        k0 = min(m, _LDP_RAYS_START + du)
        W = np.zeros(m, bool)
        W[np.argpartition(-ratio, k0 - 1)[:k0]] = True
        if rays is not None and rays.size:
            W[rays[rays < m]] = True
        tol = _LDP_RAYS_TOL * S
        for _ in range(_LDP_RAYS_PASSES):
            cols = np.concatenate([np.flatnonzero(W), np.arange(m, E.shape[1])])
            Ew = E[:, cols]
            uw = solve(Ew)
            if uw is None:
                return None
            self.ldp_ray_passes += 1
            denom = 1.0 - float(Ew[-1] @ uw)
            feasible = np.isfinite(denom) and denom > 1e-12
            if feasible:
                xs = (Ew[:-1] @ uw) / denom
                r = c - S * (Vu @ xs[:du])
                if K:
                    r -= HF @ (xs[du:] / re)
                r[W] = -np.inf
                worst = np.flatnonzero(r > tol)
            if not feasible or worst.size == 0:
                # infeasible already with these rays (so is the whole program), or a
                # point no ray violates: the whole program's solution
                u = np.zeros(E.shape[1])
                u[cols] = uw
                return u
            if worst.size > _LDP_RAYS_ADD:
                worst = worst[np.argpartition(-r[worst], _LDP_RAYS_ADD - 1)[:_LDP_RAYS_ADD]]
            W[worst] = True
        return solve(E)  # the passes ran out: every ray

    def _ldp_omega(self, V, c, HF, scale=None, hint=None):
        """The least-distance program for ``Omega`` at ``y_b = 0``: ``(y, sigma, t)``.

        Without a free bias ``Omega`` is the unit ball and :meth:`_ldp` is the node dual.
        With a free bias the dual norm is ``||y_u|| + R |y_b|``; for a fixed ``y_b = eta``
        the node dual is the least-distance program in ``y_u`` with right-hand side
        ``c - eta v_b``; ``eta = 0`` is optimal unless the slab ``|x_b| <= R`` is active
        (:meth:`_slab_active`). ``None`` when the program is infeasible or its point is
        not feasible to a relative ``1e-7``.
        """
        p = self.p
        T = self.ray_sum_bound(V)
        T = T if np.isfinite(T) else 1e6
        floor = 1e-6 * float(np.max(np.abs(c), initial=0.0)) + 1e-300
        out = self._ldp(V[:, :-1] if p.free else V, c, HF, T, scale, hint)
        if out is None or out[4] > 1e-7 * max(out[3], floor):
            return None
        y, sigma, t = out[:3]
        if p.free:
            y = np.concatenate([y, [0.0]])
        return y, sigma, t

    def _eta_zero_proved(self, V, c, HF, y, t):
        """Whether the multipliers ``t`` prove ``eta = y_b = 0`` optimal (free bias).

        For ray weights ``t >= 0``, ``L(eta) >= D(t) - eta x_b`` with the dual value
        ``D(t) = (c^T t - sum_F (HF^T t)_+) / ||V_u^T t||`` and ``x_b = v_b^T t /
        ||V_u^T t||`` (weak duality of the least-distance program), so
        ``||y_u(eta)|| + R |eta| >= D(t)`` for every ``eta`` when ``|x_b| <= R``; with
        ``D(t) >= ||y_u||`` to a relative ``1e-9`` the point at ``eta = 0`` is optimal.
        """
        p = self.p
        nu = _vnorm(V[:, :-1].T @ t)
        if nu <= 0:
            return False
        xb = float(V[:, -1] @ t) / nu
        dual = (float(c @ t) - float(np.maximum(HF.T @ t, 0.0).sum())) / nu
        val = _vnorm(y[:-1])
        return abs(xb) <= p.R and dual >= val * (1 - 1e-9)

    def _slab_active(self, V, c, HF, y, scale=None):
        """Whether ``eta = y_b != 0`` may beat ``eta = 0`` (free bias; see :meth:`_ldp_omega`).

        ``B(eta) = min ||y_u|| + R |eta|`` is convex in ``eta``, so ``eta = 0`` is optimal
        when neither probe ``eta = +-delta`` improves on it; a failed probe counts as
        active.
        """
        p = self.p
        val = _vnorm(y[:-1])
        if p.R <= 0 or val <= 0:
            return False
        T = self.ray_sum_bound(V)
        T = T if np.isfinite(T) else 1e6
        Vu, vb = V[:, :-1], V[:, -1]
        delta = 1e-3 * val / p.R
        for eta in (delta, -delta):
            pr = self._ldp(Vu, c - eta * vb, HF, T, scale)
            if pr is None or pr[3] + pr[4] + p.R * delta < val * (1 - 1e-12):
                return True
        return False

    def solve_ldp(self, node, prune_at=-np.inf, max_rounds=12):
        """Bound the node by least-distance programs; ``(bound, t, x, crossP)`` or ``None``.

        In ray weights ``t >= 0`` the node relaxation with ``Omega``'s bias part dropped
        (``y_b = 0``) is ``max Psi(t) = c^T t - ||V_u^T t||^2 / 2 - sum_i w_i (z_i^T V^T
        t)_+`` over the crossing ``k`` rows (concave, piecewise quadratic). With the
        multipliers ``sigma_i`` of all but a few rows ``F`` fixed to ``0`` or ``1`` its
        dual is the least-distance program of :meth:`_ldp_omega`, whose solution ``t'``
        maximises a majorant of ``Psi`` that is exact at the current point; an exact line
        search on ``Psi`` from the current ``t`` towards ``t'`` (over the breakpoints of
        the ``(.)_+`` terms) keeps the iteration monotone, the signs are re-read at the
        new point, and rows whose breakpoint stopped the search become free. Warm start
        from the parent: its maximiser fixes the first signs and its fractional rows
        start free. The program's multipliers are optimal once the signs agree with its
        own maximiser (complementary slackness). Every round's bound is :meth:`certify`
        at the multipliers found: valid whatever their accuracy. ``None`` when a program
        is infeasible or inaccurate or too many rows are free (the conic path then runs);
        when the signs do not settle in ``max_rounds`` the best certified bound is kept,
        except at a leaf (``_LDP_UNSETTLED_FALLBACK``).
        """
        p = self.p
        V = node.V
        A, g, crossP, crossN, lin, w = self.pieces(node)
        Vu = V[:, :-1] if p.free else V
        AN = A[crossN]  # (K, m): z_i^T v_j
        wN = w[crossN]
        base = np.zeros(p.Z.shape[0])
        base[lin] = 1.0
        c0 = g - V @ (p.Z.T @ (w * base))
        xref = node.x if node.x is not None else V.sum(axis=0)
        ZN = p.Z[crossN]
        sref = ZN @ xref
        rn = p.rownorm[crossN]
        on = sref > 0
        var = np.abs(sref) <= _LDP_COS * rn * (_vnorm(xref) + 1e-300)
        if node.var_rows is not None and node.var_rows.size:
            chosen = np.zeros(p.Z.shape[0], bool)
            chosen[node.var_rows] = True
            var |= chosen[crossN]  # (np.isin, in 3 us instead of 46)
        best = (node.bound, None, None)
        t = None
        # the rays of positive weight in the last round (the parent's in the first)
        hint = node.ray_hint
        for _ in range(max_rounds):
            if var.sum() > _LDP_MAX_VAR:
                self.fallback_reasons["free_rows"] += 1
                return None
            fixed_on = on & ~var
            c = c0 - AN[fixed_on].T @ wN[fixed_on]
            HF = (AN[var] * wN[var, None]).T
            out = self._ldp_omega(V, c, HF, best[0], hint)
            if out is None:  # infeasible or inaccurate: the conic program
                self.fallback_reasons["inexact"] += 1
                return None
            y, sF, tn = out
            hint = (np.flatnonzero(tn > 0), y[:-1] if p.free else y)
            xn = V.T @ tn
            an = AN @ tn
            tol = 1e-9 * rn * (_vnorm(xn) + 1e-300)
            wrong = ~var & (((an < -tol) & on) | ((an > tol) & ~on))
            if p.free and not wrong.any() and not self._eta_zero_proved(V, c, HF, y, tn) \
                    and self._slab_active(V, c, HF, y, best[0]):
                self.fallback_reasons["slab"] += 1
                return None  # the slab |x_b| <= R binds: the conic program
            sN = fixed_on.astype(np.float64)
            sN[var] = sF
            # certify(node, sigma, y, g) with sigma = base + these rows (c0 holds base)
            bound = self.bound_from(V, c0 - AN.T @ (wN * sN), y)
            if bound < best[0] or best[1] is None:
                best = (min(bound, node.bound), tn, xn)
            node.var_rows = crossN[var][(sF > 1e-9) & (sF < 1 - 1e-9)]
            if bound <= prune_at or not wrong.any():
                break
            if wrong.sum() <= _LDP_FREE_WRONG and var.sum() + wrong.sum() <= _LDP_MAX_VAR:
                var |= wrong  # few contradicted signs: let the program choose them
                continue
            # exact line search on Psi from t towards tn, then re-read the signs
            if t is not None:
                tn = t + self._line_search(t, tn - t, c0, Vu, AN, wN) * (tn - t)
            t = tn
            a = AN @ t
            tol = 1e-9 * rn * (_vnorm(V.T @ t) + 1e-300)
            var |= np.abs(a) <= tol
            on = a > 0
        else:
            self.fallback_reasons["unsettled"] += 1
            # a leaf's bound is final (it is never split again): it must be exact
            if _LDP_UNSETTLED_FALLBACK or best[1] is None or crossP.size == 0:
                return None  # else keep the best certified bound of the rounds
        node.ray_hint = hint  # its children's warm start (see _branch)
        return best[0], best[1], best[2], crossP

    @staticmethod
    def _line_search(t, d, c, Vu, AN, wN):
        """``argmax_{0 <= s <= 1} Psi(t + s d)`` for the concave piecewise quadratic
        ``Psi(t) = c^T t - ||Vu^T t||^2 / 2 - sum_i wN_i (AN_i t)_+`` (breakpoints sorted)."""
        u0, du = Vu.T @ t, Vu.T @ d
        Q = float(du @ du)
        a, b = AN @ t, AN @ d
        act0 = (a > 0) | ((a == 0) & (b > 0))
        s0 = float(c @ d - u0 @ du - wN[act0] @ b[act0])
        with np.errstate(divide="ignore", invalid="ignore"):
            br = np.where(b != 0, -a / b, -1.0)
        inside = (br > 0) & (br < 1)
        order = np.argsort(br[inside])
        bk = br[inside][order]
        J = (wN[inside] * np.abs(b[inside]))[order]
        cumJ = np.concatenate([[0.0], np.cumsum(J)])
        ends = np.concatenate([bk, [1.0]])
        starts = np.concatenate([[0.0], bk])
        d_minus = s0 - cumJ - ends * Q  # derivative at the end of each segment
        d_plus = s0 - cumJ[1:] - bk * Q  # just after each breakpoint
        k1 = int(np.argmax(d_minus <= 0)) if np.any(d_minus <= 0) else None
        k2 = int(np.argmax(d_plus <= 0)) if np.any(d_plus <= 0) else None
        if k1 is None and k2 is None:
            return 1.0
        if k2 is None or (k1 is not None and k1 <= k2):
            if Q <= 0:
                return float(starts[k1])
            return float(np.clip((s0 - cumJ[k1]) / Q, starts[k1], ends[k1]))
        return float(bk[k2])


# --------------------------------------------------------------------------- main entry
# --------------------------------------------------------------------------- node work
#: seconds of node work per batch sent to a worker process (the batch size follows from
#: the node time measured before the workers start, within [4, _BATCH_MAX] nodes): each
#: batch costs the searching process a few milliseconds of its own time (pickling, the
#: executor's threads), which on a 2-core machine the workers lose. Rank 8, n = 150 with
#: two workers closed in 91 s at 0.04 s per batch, 76 s at 0.1 s
_BATCH_SECONDS = 0.1
_BATCH_MAX = 256
#: the search runs here for this long before it starts workers (most calls close sooner,
#: and starting worker processes costs about a second)
_PARALLEL_AFTER = 1.0


class _Worker:
    """Bounds nodes: the node relaxation, the value of its maximiser, and the heuristics
    (DC ascent near the incumbent, a cell polish at leaves) that it triggers.

    One lives in the searching process; with ``n_jobs > 1`` each worker process keeps one
    per search (:func:`_remote_batch`). ``dca_time`` is kept at most a fifth of the time
    since ``t0`` (the heuristic's share of the search).
    """

    def __init__(self, prob, clock, t0, dca_time=0.0):
        self.prob = prob
        self.solver = _NodeSolver(prob)
        self.clock = clock
        self.t0 = t0
        self.dca_time = dca_time

    def run(self, nodes, inc, tol, tiny):
        """Bound and branch ``nodes``; return ``(outcomes, offers, counter deltas)``.

        ``outcomes`` holds, per node, ``(bound, leaf, children)``: the node's bound,
        whether ``h`` is linear on it (the bound is then exact), and its two children
        (:func:`_branch`), or ``None`` for a leaf or a node the bound prunes at ``inc``.
        ``offers`` are ``(value, x, sign)`` attained by the points found; ``inc`` is the
        incumbent value when the batch was sent (raised here by the batch's own offers).
        """
        prob, solver, clock = self.prob, self.solver, self.clock
        nodes = [nd.node() if isinstance(nd, _Packed) else nd for nd in nodes]
        before = solver.counters()
        offers, outcomes = [], []

        def offer(v, x, s):
            nonlocal inc
            if x is not None:
                offers.append((v, x, s))
                inc = max(inc, v)

        for node in nodes:
            nb, t, x, crossP = solver.solve(node, inc + tol * max(inc, tiny))
            node.bound, node.t, node.x, node.cross_P = nb, t, x, crossP
            leaf = crossP.size == 0
            if x is not None:
                v, xx = prob.evaluate(x, node.sign)
                offer(v, xx, node.sign)
                if xx is not None and v > inc * (1 - 1e-2) and \
                        self.dca_time <= 0.2 * (clock() - self.t0):
                    t1 = clock()
                    offer(*prob.dca(xx, node.sign), node.sign)
                    self.dca_time += clock() - t1
                if leaf and xx is not None and node.bound - inc > tol * max(inc, tiny):
                    # h is linear on the cone: the exact maximum over the cell
                    offer(*prob.cell_polish(xx, node.sign), node.sign)
            pruned = node.bound - inc <= tol * max(inc, tiny)
            children = None if leaf or pruned else _branch(prob, node)
            outcomes.append((node.bound, leaf, children))
        after = solver.counters()
        return outcomes, offers, {k: after[k] - before[k] for k in after}


def _branch(prob, node):
    """The children of a bounded node, cut by the ``h`` row whose envelope gap at the
    relaxation's maximiser is largest; they start from the parent's bound, maximiser and
    multipliers (warm start)."""
    i = _branch_row(prob, node)
    children = _split(node, prob.Z[i] / prob.rownorm[i], prob.D)
    on = None if node.t is None else node.t > 0
    for child in children:
        child.x = node.x
        child.var_rows = node.var_rows
        # the parent's multipliers warm-start only the active-set path (a quarter of
        # a node's pickled size, sent to and from the workers with every node)
        child.mult = node.mult if _NODE_SOLVER == "active_set" else None
        if on is not None and on.size == node.V.shape[0]:
            keep, P, Q = child.src
            child.ray_hint = (np.flatnonzero(np.concatenate([on[keep], on[P] | on[Q]])),
                              None if node.ray_hint is None else node.ray_hint[1])
        child.src = None
    return children


_REMOTE = {}  # (search token, thread) -> the worker's _Worker for that search
_MISSING = "missing"  # a worker process without the search's problem: send it again


def _remote_batch(token, prob, nodes, inc, tol, tiny):
    """:meth:`_Worker.run` in a worker process (one cached ``_Worker`` per search).

    ``prob`` travels only with a search's first batches; a worker that has not seen it
    answers :data:`_MISSING` and the batch is sent again with it.
    """
    import threading

    key = (token, threading.get_ident())  # a Dask worker may run tasks in threads
    w = _REMOTE.get(key)
    if w is None:
        if prob is None:
            return _MISSING
        for k in [k for k in list(_REMOTE) if k[0] != token]:
            _REMOTE.pop(k, None)  # a new search: drop the previous ones' problems
        if _LDP_COMPILED:
            _ldp_kernel.kernel()  # loaded (or compiled) before the worker's first batch
        w = _REMOTE[key] = _Worker(prob, time.perf_counter, time.perf_counter())
    outcomes, offers, delta = w.run(nodes, inc, tol, tiny)
    # the children go back packed: the searching process does not rebuild them (_Packed)
    outcomes = [(b, leaf, None if ch is None else [_Packed(_pack_node(c)) for c in ch])
                for b, leaf, ch in outcomes]
    return outcomes, offers, delta


class _Done:
    """A finished local batch, answering like a ``concurrent.futures.Future``."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def _node_executor(n_jobs):
    """``(executor, n_workers)`` for a parallel search, or ``(None, 1)``.

    Processes from joblib's reusable loky executor (the one ``joblib.Parallel`` uses); under
    ``joblib.parallel_config(backend="dask")`` the Dask client's executor (its workers).
    Thread backends gain nothing (the node work holds the GIL): one worker.
    """
    from .._parallel import resolve_n_jobs

    n = resolve_n_jobs(n_jobs)
    if n <= 1:
        return None, 1
    from joblib.parallel import get_active_backend

    backend = get_active_backend()[0]
    client = getattr(backend, "client", None)
    if client is not None and hasattr(client, "get_executor"):
        return client.get_executor(), n
    if getattr(backend, "uses_threads", False):
        return None, 1
    # joblib's own factory of loky's reusable executor (joblib's Parallel reuses the same
    # executor and expects what this factory sets on it); one BLAS thread per worker
    from joblib.executor import get_memmapping_executor

    env = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                            "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}
    return get_memmapping_executor(n, env=env), n


def _check_lam(lam, n):
    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim == 2 and lam.shape[1] == 1:
        lam = lam[:, 0]
    if lam.ndim != 1 or lam.shape[0] != n:
        raise ValueError(f"lam must have shape ({n},) (one dual value per sample); got shape "
                         f"{lam.shape}. For several outputs certify each output separately.")
    if not np.all(np.isfinite(lam)):
        raise ValueError("lam contains NaN or infinity; pass a finite dual point.")
    return lam


def dual_constraint_bnb(X, lam, *, bias: bool, penalize_bias: bool = True, tol: float = 1e-6,
                        time_limit: float | None = None, max_nodes: int | None = None,
                        threshold: float | None = None, stop_above: float | None = None,
                        collect: float = 0.0, starts=None, progress=None, random_state=None,
                        timer=None, n_jobs=None) -> BnBResult:
    """Proven bounds on ``M(lambda)`` by cone-envelope branch and bound, without enumeration.

    Computes an upper bound ``upper`` and an attained value ``lower`` with
    ``lower <= M(lambda) <= upper``,

    .. math::

        M(\\lambda) = \\max_{x \\in \\Omega} |\\lambda^\\top (\\tilde X x)_+| ,

    stopping when ``upper - lower <= tol * max(lower, tiny)`` or at a limit; the upper bound
    is valid whenever the search stops (module docstring, docs/mathematics.rst §4.2, §8.2).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    lam : array-like of shape (n_samples,)
        The dual point. With a free hidden bias it must be centred (``1^T lam = 0``),
        otherwise ``M`` is infinite.
    bias : bool
        Whether the neurons have a hidden bias (``X_aug = [X, 1]``).
    penalize_bias : bool, default=True
        With ``bias``: the bias is penalised (``Omega`` is the unit ball of ``(u, b)``) or
        free (``||u|| <= 1``, docs/mathematics.rst §8.2). Ignored without bias.
    tol : float, default=1e-6
        Relative gap at which the search stops.
    time_limit : float or None, default=None
        Seconds after which the search stops (the bound is then looser but valid).
    max_nodes : int or None, default=None
        Node bounds computed before the search stops.
    threshold : float or None, default=None
        Decision mode (pricing, docs/mathematics.rst §8.5): also stop as soon as
        ``upper <= threshold`` (proved ``M <= threshold``, ``info["stopped"] = "below"``)
        or ``lower > stop_above`` (a direction above it was found, ``"above"``).
    stop_above : float or None, default=None
        See ``threshold``; defaults to ``threshold``.
    collect : float, default=0.0
        Decision mode: once a direction above ``stop_above`` is found, go on searching
        until ``(1 + collect)`` times the nodes bounded by then (or until the search
        closes, which it then often does) before stopping with ``"above"``. The
        candidates (``info["candidates"]``) then hold more directions above it, and a
        closed search proves ``M`` itself. Column generation priced by branch and bound
        uses it: a round whose violation is found late (after thousands of nodes, near
        the optimum) returns more columns, and the loop needs fewer such rounds.
    starts : array-like of shape (k, d_aug) or None, default=None
        Extra starting points of the heuristic (``x = (u, b)`` in the original
        coordinates, e.g. the previous round's columns in a pricing loop), tried for both
        signs before the random starts.
    progress : callable or bool or None, default=None
        ``True`` prints a status line to stderr about every two seconds; a callable is
        called as ``progress(info)`` with a dict (``n_nodes``, ``time``, ``lower``,
        ``upper``, ``n_open``) at the same rate.
    random_state : int, numpy Generator or None, default=None
        Seeds the heuristic's random starts.
    timer : callable or None, default=None
        Returns seconds; ``time_limit`` and ``BnBResult.time`` are measured with it.
        Default ``time.perf_counter`` (wall clock); ``time.process_time`` makes
        ``time_limit`` a CPU-time budget of this process (measurements on a shared
        machine; with ``n_jobs > 1`` it does not count the workers' time).
    n_jobs : int or None, default=None
        Worker processes that bound the nodes (``-1``: all cores). The search starts in
        this process and hands its nodes to the workers, in batches, once it has run for
        a second without closing (starting workers costs about that). The best-first
        order is then kept per batch, so the node count and the bound reached within a
        time limit vary a little from run to run; the bound is valid in every case.
        Under ``joblib.parallel_config(backend="dask")`` the nodes are bounded on the
        Dask cluster's workers. ``None``: one process unless a ``parallel_config``
        context says otherwise.

    Returns
    -------
    BnBResult

    Raises
    ------
    ValueError
        If ``lam`` does not have one entry per sample, is not finite, is not centred with
        a free bias, ``tol`` / ``time_limit`` is not positive, ``threshold`` is NaN,
        ``collect`` is negative or ``n_jobs`` is not a nonzero int or None.

    Notes
    -----
    The number of nodes grows quickly with ``n`` and the rank when ``lambda`` is a
    trained network's residual (``M`` is then a small difference of two large sums, so
    the cones must become narrow before the envelope bound is useful). Measured on the
    2-core development machine (``python -m benchmarks bnb --n-jobs 1,2``, 60 s per
    row): closed to ``1e-6`` in 0.1 s at rank 4, ``n = 40`` (12x faster than
    enumeration); at rank 5, ``n = 2000`` to rank 8, ``n = 150`` a node takes 2.3-3.2
    ms, and after 60 s the upper bound is 1.001-1.68 times the lower one in one process,
    1.00 (rank 5, closed in 33 s) to 1.33 with two workers (``n_jobs=2``). The
    bound is valid whenever the search stops.

    References
    ----------
    M. Pilanci and T. Ergen, "Neural networks are convex regularizers", ICML 2020.
    R. Horst and H. Tuy, "Global Optimization: Deterministic Approaches", Springer, 1996.
    """
    if _LDP_COMPILED:
        _ldp_kernel.kernel()  # compiled (or loaded from numba's cache) before the clock
    clock = time.perf_counter if timer is None else timer
    t_start = clock()
    X = check_data_matrix(X)
    n = X.shape[0]
    lam = _check_lam(lam, n)
    bias = bool(bias)
    free = bias and not bool(penalize_bias)
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive float; got {tol!r}.")
    if time_limit is not None and not (np.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds or None; got "
                         f"{time_limit!r}.")
    if max_nodes is not None:
        max_nodes = check_positive_int(max_nodes, "max_nodes")
    from .._parallel import resolve_n_jobs

    parallel_pending = resolve_n_jobs(n_jobs) > 1
    if threshold is not None and np.isnan(threshold):
        raise ValueError("threshold must be a number or None; got NaN.")
    if stop_above is None:
        stop_above = threshold
    if stop_above is not None and np.isnan(stop_above):
        raise ValueError("stop_above must be a number or None; got NaN.")
    try:
        ok = bool(np.isfinite(collect) and collect >= 0)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"collect must be a non-negative float; got {collect!r}.")
    collect = float(collect)
    rng = check_random_state(random_state)
    if free and abs(lam.sum()) > 1e-12 * (1.0 + np.abs(lam).sum()):
        raise ValueError(
            f"lam is not centred (sum {lam.sum():.3g}) although the hidden bias is free: "
            "M(lambda) is infinite (constant neurons are unpenalised). Centre it first: "
            "lam - lam.mean().")
    prob = _Problem(X, lam, bias, free)
    d_aug = X.shape[1] + int(bias)
    scale = float(np.abs(lam) @ np.linalg.norm(augment(X, bias), axis=1))
    tiny = 1e-12 * scale if scale > 0 else 1e-300

    def to_original(x):
        if x is None:
            return np.zeros(d_aug)
        if free:
            u = prob.Q @ x[:-1]
            return np.concatenate([u, [x[-1] - prob.shift @ u]])
        return prob.Q @ x

    if prob.Du == 0 or scale == 0:  # X = 0 (or lam = 0): M = 0 (up to the constant neuron)
        return BnBResult(upper=0.0, lower=0.0, direction=np.zeros(d_aug), sign=1,
                         closed=True, n_nodes=0, time=clock() - t_start,
                         info={"rank": prob.Du, "stopped": "closed"})

    D = prob.D
    # ---- incumbent: fixed-point ascent from random and data-driven starts, both signs
    inc = [0.0, None, 1]

    # the best points offered (at most _POOL, a min-heap on the value): the candidate
    # columns of a pricing call
    pool = []
    pool_ids = itertools.count()

    def offer(v, x, s):
        if x is not None and v > 0:
            item = (v, next(pool_ids), x, s)
            if len(pool) < _POOL:
                heapq.heappush(pool, item)
            elif v > pool[0][0]:
                heapq.heapreplace(pool, item)
        if x is not None and v > inc[0]:
            inc[0], inc[1], inc[2] = v, x, s

    def out_of_time(fraction=1.0):
        return time_limit is not None and \
            clock() - t_start >= fraction * time_limit

    dca_time = [0.0]

    def dca(x, s):
        t0 = clock()
        offer(*prob.dca(x, s), s)
        dca_time[0] += clock() - t0

    extra = []
    if starts is not None:
        S0 = np.asarray(starts, dtype=np.float64).reshape(-1, d_aug)
        for x in S0[np.all(np.isfinite(S0), axis=1)]:
            if free:  # (u, b) -> reduced (Q^T u, b + shift^T u)
                extra.append(np.concatenate([prob.Q.T @ x[:-1], [x[-1] + prob.shift @ x[:-1]]]))
            else:
                extra.append(prob.Q.T @ x)
    # fixed-point ascent from every start (cheap), DC ascent from the best few per sign
    for s in (1, -1):
        starts_s = list(extra) + [rng.standard_normal(D) for _ in range(_N_STARTS)]
        starts_s.append(prob.Z.T @ np.maximum(s * lam, 0.0))
        found = []
        for x0 in starts_s:
            v, x = prob.fixed_point(x0, s)
            offer(v, x, s)
            if x is not None:
                found.append((v, x))
        found.sort(key=lambda vx: -vx[0])
        for v, x in found[:_N_DCA]:
            if out_of_time(0.25) or (stop_above is not None and inc[0] > stop_above):
                break  # decision mode: a violation is already found, skip the DC ascent
            dca(x, s)
    heuristic_lower = inc[0]

    # ---- roots: a simplex fan per sign, with the trivial bound sum_{h rows} |lam_i| ||z_i||
    Zn = prob.Z
    if free:
        triv = np.linalg.norm(Zn[:, :-1], axis=1) + prob.R
    else:
        triv = prob.rownorm
    heap = []
    counter = itertools.count()
    for s in (1, -1):
        sl = s * lam
        b0 = float(np.maximum(sl, 0.0) @ triv)
        for V, masks, nid in _simplex_fan(D):
            node = _Node(s, V, masks, nid, b0)
            heapq.heappush(heap, (-b0, next(counter), node))
    worker = _Worker(prob, clock, t_start, dca_time[0])
    counts = {k: 0 for k in worker.solver.counters()}
    settled = 0.0  # max bound of pruned nodes and exact leaves
    n_nodes = n_leaves = max_rays = 0
    stopped = "closed"
    last_report = clock()
    # batches being bounded: handle -> (future, the nodes' parents' bound, the nodes)
    inflight = {}
    handles = itertools.count()
    executor, n_workers, token = None, 1, None

    def gap_closed(b):
        """``b`` (an upper bound, or a node's bound: then it is pruned) is within ``tol``
        of the incumbent."""
        return b - inc[0] <= tol * max(inc[0], tiny)

    def upper_now():
        top = -heap[0][0] if heap else 0.0
        fly = max((b for _, b, _ in inflight.values()), default=0.0)
        return max(settled, top, fly, inc[0])

    def in_flight():
        return sum(len(b) for _, _, b in inflight.values())

    sent = [0]  # batches sent with the problem

    def send(batch, with_prob):
        return executor.submit(_remote_batch, token, prob if with_prob else None, batch,
                               inc[0], tol, tiny)

    def submit(batch):
        bound = max(nd.bound for nd in batch)
        if executor is None:
            fut = _Done(worker.run(batch, inc[0], tol, tiny))
        else:
            fut = send(batch, sent[0] < 4 * n_workers)
            sent[0] += 1
        inflight[next(handles)] = (fut, bound, batch)

    def integrate(result, nodes):
        nonlocal n_nodes, n_leaves, max_rays, settled
        outcomes, offers, delta = result
        for k, v in delta.items():
            counts[k] = counts.get(k, 0) + v
        for v, x, s in offers:
            offer(v, x, s)
        for node, (bound, leaf, children) in zip(nodes, outcomes):
            n_nodes += 1
            max_rays = max(max_rays, node.n_rays)
            n_leaves += leaf
            if children is None or gap_closed(bound):  # a leaf's bound is exact
                settled = max(settled, bound)
                continue
            for child in children:
                heapq.heappush(heap, (-bound, next(counter), child))

    t_search = clock()
    first_above = None  # nodes bounded when a point above stop_above was first found
    while heap or inflight:
        ub = upper_now()
        if gap_closed(ub):
            break
        if threshold is not None and ub <= threshold:
            stopped = "below"
            break
        if stop_above is not None and inc[0] > stop_above:
            if first_above is None:
                first_above = n_nodes
            if n_nodes >= (1.0 + collect) * first_above:
                stopped = "above"
                break
        if max_nodes is not None and n_nodes >= max_nodes:
            stopped = "max_nodes"
            break
        if out_of_time():
            stopped = "time_limit"
            break
        if progress is not None and progress is not False and \
                clock() - last_report > 2.0:
            last_report = clock()
            status = {"n_nodes": n_nodes, "time": last_report - t_start, "lower": inc[0],
                      "upper": ub, "n_open": len(heap) + in_flight()}
            if callable(progress):
                progress(status)
            else:
                import sys

                print(f"bnb: {n_nodes} nodes, {status['time']:.1f} s, lower {inc[0]:.9g}, "
                      f"upper {ub:.9g}, open {status['n_open']}", file=sys.stderr)
        if parallel_pending and clock() - t_start >= _PARALLEL_AFTER:
            # still open after a while: bound the nodes in worker processes from now on
            parallel_pending = False
            executor, n_workers = _node_executor(n_jobs)
            import uuid

            token = uuid.uuid4().hex
            per_node = (clock() - t_search) / max(n_nodes, 1)
            batch_size = int(np.clip(_BATCH_SECONDS / max(per_node, 1e-6), 4, _BATCH_MAX))
        # send the best open nodes to be bounded (and branched)
        size = 1 if executor is None else batch_size
        slots = 1 if executor is None else n_workers + 1
        while len(inflight) < slots and heap:
            room = size if max_nodes is None else \
                min(size, max_nodes - n_nodes - in_flight())
            batch = []
            while heap and len(batch) < room:
                negb, _, node = heapq.heappop(heap)
                if gap_closed(-negb):
                    settled = max(settled, -negb)
                else:
                    batch.append(node)
            if not batch:
                break
            submit(batch)
        if not inflight:
            continue
        if executor is None:
            done = list(inflight)
        else:
            from concurrent.futures import FIRST_COMPLETED, wait

            futs = {inflight[h][0]: h for h in inflight}
            ready, _ = wait(list(futs), timeout=0.5, return_when=FIRST_COMPLETED)
            done = [futs[f] for f in ready]
        for h in done:
            fut, bound, batch = inflight.pop(h)
            result = fut.result()
            if isinstance(result, str) and result == _MISSING:
                inflight[h] = (send(batch, True), bound, batch)
                continue
            integrate(result, batch)
    else:  # every node bounded: closed, unless a leaf's bound stayed above the gap
        if gap_closed(upper_now()):
            stopped = "closed"
        elif threshold is not None and upper_now() <= threshold:
            stopped = "below"
        else:
            stopped = "exhausted"
    ub = upper_now()
    closed = gap_closed(ub)
    if callable(progress):
        progress({"n_nodes": n_nodes, "time": clock() - t_start, "lower": inc[0],
                  "upper": max(ub, inc[0]), "n_open": len(heap)})
    if closed and stopped not in ("below", "above"):
        stopped = "closed"
    x_best = inc[1]
    lower = inc[0]
    direction = to_original(x_best)
    return BnBResult(
        upper=float(max(ub, lower)), lower=float(lower), direction=direction, sign=int(inc[2]),
        closed=bool(closed), n_nodes=n_nodes, time=clock() - t_start,
        n_open=len(heap) + in_flight(),
        info={"rank": D, "heuristic_lower": heuristic_lower, "n_leaves": n_leaves,
              "max_rays": max_rays, "solver_failures": counts["failures"],
              "conic_fallbacks": counts["conic_fallbacks"], "n_ldp": counts["n_ldp"],
              "ldp_ray_passes": counts["ldp_ray_passes"],
              "n_active_set": counts["n_as"],
              "active_set_moves": {k[3:]: v for k, v in counts.items()
                                   if k.startswith("as_")},
              "fallback_reasons": {k[3:]: v for k, v in counts.items()
                                   if k.startswith("fb_")},
              "n_workers": n_workers,
              "node_solver": "clarabel" if _TRIANGLES else _NODE_SOLVER,
              "stopped": stopped,
              "candidates": _distinct(prob, pool, to_original)},
    )


def _distinct(prob, pool, to_original, k=32):
    """The ``k`` best points offered, one per (sign, activation pattern), best first:
    ``(value, direction, sign)`` in the original coordinates."""
    seen, out = set(), []
    for v, _, x, s in sorted(pool, key=lambda c: (-c[0], c[1])):
        # ties (rounding-level values) count as off: near-identical points share a key
        key = (s, (prob.Z @ x > 1e-9 * prob.rownorm * np.linalg.norm(x)).tobytes())
        if key in seen:
            continue
        seen.add(key)
        out.append((float(v), to_original(x), int(s)))
        if len(out) == k:
            break
    return out


def _branch_row(prob, node):
    """The crossing ``h`` row with the largest envelope gap at the node's maximiser."""
    rows = node.cross_P
    s = node.sign
    Zr = prob.Z[rows]
    A = Zr @ node.V.T  # (k, m)
    lam = s * prob.lam[rows]
    if node.t is not None and np.any(node.t > 0):
        env = np.maximum(A, 0.0) @ node.t
        act = np.maximum(Zr @ node.x, 0.0)
        score = lam * (env - act)
    else:
        score = np.zeros(rows.size)
    if not np.any(score > 0):
        span = np.minimum(A.max(axis=1), -A.min(axis=1)) / prob.rownorm[rows]
        score = lam * span
    return int(rows[int(np.argmax(score))])

"""A fast exact inner solver for column generation: compressed squared loss, facet rows.

The restricted ReLU program over a working set of ``k`` patterns (docs/mathematics.rst §3.1, §8.2),

.. math::

    \\min_{v_i, w_i, c_0}\\ \\tfrac12\\big\\|\\textstyle\\sum_i D_iX_a(v_i - w_i) + c_0\\mathbf 1
    - y\\big\\|^2 + \\beta\\sum_i\\big(\\rho(v_i) + \\rho(w_i)\\big)
    \\quad\\text{s.t.}\\quad (2D_i - I)X_av_i \\ge 0,\\ (2D_i - I)X_aw_i \\ge 0,

is handed to Clarabel directly (no modelling layer) after two exact reductions:

1. **Compressed loss.** With ``B = [1, D_1X_a, ..., D_kX_a]`` (``n x m``, ``m = 1 + k d_a``)
   and ``theta = (c_0, v_1 - w_1, ...)``, ``||B theta - y||^2 = theta^T (B^T B) theta
   - 2 (B^T y)^T theta + ||y||^2`` (``B^T B = R^T R`` for the thin QR ``B = QR``): the
   quadratic has ``m`` unknowns and no ``n``-row data constraint (for ``n = 1000`` and
   ``k = 50`` blocks in 2-D with bias: 151 instead of 1000). It is handed to Clarabel as
   its quadratic objective (one dense ``m x m`` block; the residual/SOC form with ``R``
   made the LDL fill the ``(v, w)`` block and was 2-8x slower). Used only when
   ``m < n``; otherwise the ``n`` residuals are kept.
2. **Facet rows.** The cone ``K_i = {v : a_j^T v >= 0}``, ``a_j = s_j x_{a,j}``, is cut out
   by the rows that are extreme rays of the dual cone ``cone{a_j}``. With an interior
   point ``g`` of ``K_i`` (the pattern's gate, ``a_j^T g > 0``), these are the vertices of
   the convex hull of the points ``a_j / (a_j^T g)`` in the plane ``g^T a = 1``
   (a central projection preserves extreme rays). In 2-D with a bias a cell of an
   arrangement of ``n`` lines has about four sides, so each block keeps ~4 of ``n`` rows.
   The reduction is exact in exact arithmetic; numerically, every solution is checked
   against **all** ``n`` rows of every block, and rows found violated beyond rounding are
   added back before a re-solve. Beyond ``d_a = 3`` the hulls cost more than they save;
   each block then starts from its :func:`margin_rows` (the rows nearest the boundary
   as seen from the gate), and the same check adds the rows the solution violates.

Violations of non-facet rows beyond ``_ROW_RTOL = 1e-6`` (relative) re-add those rows;
smaller ones (interior-point noise) are repaired along each block's gate.

:func:`polish_support` refines a restricted solution by Newton steps on its support with
the binding rows held as equalities (used by the column generation loop).

Only the squared loss, the ``"relu"`` formulation and one output are handled; the column
generation solver falls back to cvxpy otherwise.
"""

from __future__ import annotations

import time
from typing import Optional
from collections import OrderedDict

import numpy as np
from scipy import sparse

from .._memory import check_memory
from .._polish import polish_support, repair_feasibility  # noqa: F401 (re-exported)
from ..program import ConvexProgram, ConvexSolution
from ._base import BaseSolver

__all__ = ["CompressedReluSolver", "facet_rows", "margin_rows", "polish_support",
           "target_scale"]

_METHOD = "qdldl"  # measured 1.3-2x faster than "faer" at 100-220 patterns (n = 1000, 2-D + bias)
# a row violated by more than this (relative to the largest block) is re-added; smaller
# violations are interior-point noise (near-zero blocks point anywhere at ~1e-8 of the
# largest) and are repaired along the block's gate instead: re-adding them made blocks
# collect hundreds of rows and Clarabel's factorisations 10-30x slower
_ROW_RTOL = 1e-6


# Clarabel's statuses, mapped as cvxpy maps them: solved is optimal, "almost" and budget
# stops are inaccurate (the caller's certificate then judges the point), the rest raise
_CLARABEL_STATUS = {
    "Solved": "optimal",
    "AlmostSolved": "optimal_inaccurate",
    "MaxIterations": "optimal_inaccurate",
    "MaxTime": "optimal_inaccurate",
    "InsufficientProgress": "optimal_inaccurate",
    "AlmostPrimalInfeasible": "error",
    "AlmostDualInfeasible": "error",
    "PrimalInfeasible": "error",
    "DualInfeasible": "error",
    "NumericalError": "error",
}


def clarabel_status(status) -> str:
    """Our status for a Clarabel status (``"optimal"`` or ``"optimal_inaccurate"``).

    Raises
    ------
    RuntimeError
        For infeasible, unbounded or numerically failed solves (never expected for the
        restricted ReLU program, which is feasible and bounded).
    """
    name = str(status).split(".")[-1]
    mapped = _CLARABEL_STATUS.get(name, "error")
    if mapped == "error":
        raise RuntimeError(f"Clarabel returned status {name!r} on the restricted ReLU program "
                           "(feasible and bounded by construction). Standardise X, or use "
                           "solver='cvxpy' with verbose=True to see the solver's log.")
    return mapped


def target_scale(y) -> float:
    """The scale ``sigma`` (standard deviation, 1 when it is 0 or not finite) by which a
    restricted solver of the squared loss divides ``y`` and ``alpha``: the loss is
    homogeneous, so the solution for ``y / sigma`` times ``sigma`` is the solution for
    ``y``, and the solver's tolerances and starting points meet weights of order one."""
    sd = float(np.std(np.asarray(y, np.float64)))
    return sd if np.isfinite(sd) and sd > 0 else 1.0


def margin_rows(Xa: np.ndarray, mask: np.ndarray, gate: np.ndarray,
                n_rows: Optional[int] = None, norms: Optional[np.ndarray] = None) -> np.ndarray:
    """The ``n_rows`` cone rows nearest the cell's boundary as seen from its gate.

    The rows ``a_j = (2 mask_j - 1) X_{a,j}`` with the smallest normalised margins
    ``a_j^T gate / ||a_j||``: the likely facets of the cone, without a convex hull (which
    costs more than it saves beyond ``d_a = 3``). Not exact by itself: the solver checks
    every row after each solve and re-adds the violated ones. Default ``n_rows``:
    ``max(4 d_a, 32)``. Returns sorted indices (all nonzero rows when there are fewer).
    ``norms``: the rows' norms ``||X_{a,j}||`` where the caller has them (a solve's
    patterns share them: computed per pattern they were 10 of a make_regression(10^6,
    20) solve's 180 s).
    """
    # ||a_j||: the sign does not change it
    rn = np.linalg.norm(Xa, axis=1) if norms is None else np.asarray(norms, np.float64)
    nz = np.flatnonzero(rn > 0)
    m = max(4 * Xa.shape[1], 32) if n_rows is None else int(n_rows)
    if nz.size <= m:
        return nz
    if m <= 0:
        return nz[:0]
    every = nz.size == Xa.shape[0]  # (no zero row: no copy of the rows)
    sgn = np.where(np.asarray(mask, bool) if every else np.asarray(mask, bool)[nz], 1.0, -1.0)
    # a_j^T gate / ||a_j|| (a sign flip is exact)
    marg = sgn * ((Xa if every else Xa[nz]) @ gate) / (rn if every else rn[nz])
    # the m smallest, ties in index order (a stable sort's first m; a sort of all n
    # margins was half of this function's time at n = 3e5)
    kth = marg[np.argpartition(marg, m - 1)[:m]].max()
    if not np.isfinite(kth):  # (margins that are not numbers: the sort orders them)
        return np.sort(nz[np.argsort(marg, kind="stable")[:m]])
    first = np.flatnonzero(marg < kth)
    first = np.concatenate([first, np.flatnonzero(marg == kth)[:m - first.size]])
    return np.sort(nz[first])


def _null_basis(g: np.ndarray) -> np.ndarray:
    """Orthonormal basis of ``g``'s orthogonal complement, shape (d, d - 1)."""
    Q, _ = np.linalg.qr(np.column_stack([g, np.eye(g.size)]))
    return Q[:, 1:g.size]


def facet_rows(Xa: np.ndarray, mask: np.ndarray, gate: np.ndarray) -> np.ndarray:
    """Rows of ``(2 mask - 1) X_a v >= 0`` that are facets of the cone (indices, sorted).

    The cone ``{v : a_j^T v >= 0}`` with ``a_j = (2 mask_j - 1) X_{a,j}`` equals the cone
    cut out by the returned rows only. ``gate`` must be a strict interior point
    (``a_j^T gate > 0`` on every nonzero row); otherwise every nonzero row is returned.
    Degenerate inputs (fewer than ``d_a`` rows, a failing hull) also return all rows.

    Parameters
    ----------
    Xa : ndarray of shape (n, d_a)
    mask : ndarray of shape (n,), bool
    gate : ndarray of shape (d_a,)

    Returns
    -------
    ndarray of int
    """
    A = np.where(np.asarray(mask, bool), 1.0, -1.0)[:, None] * Xa
    nz = np.flatnonzero(np.any(Xa != 0, axis=1))
    A = A[nz]
    h = A @ gate
    d = Xa.shape[1]
    if nz.size <= d or d < 2 or not np.all(h > 0):
        return nz
    pts = (A @ _null_basis(gate / np.linalg.norm(gate))) / h[:, None]
    if d == 2:
        keep = np.unique([int(np.argmin(pts[:, 0])), int(np.argmax(pts[:, 0]))])
        return nz[keep]
    from scipy.spatial import ConvexHull, QhullError

    try:
        keep = ConvexHull(pts).vertices
    except (QhullError, ValueError):
        return nz
    return np.sort(nz[keep])


def _check_clarabel_memory(n: int, n_cols: int, compress: bool) -> None:
    """Refuse a restricted problem whose dense pieces exceed the memory budget: the design
    ``B`` (n x n_cols) and the temporary it is built from, and its Gram matrix
    (compressed) or ``[-B, I]`` (uncompressed)."""
    dense = 2 * n * n_cols + (n_cols * n_cols if compress and n_cols < n
                              else n * (n_cols + n))
    check_memory(8 * dense, f"a restricted solve over {n_cols} columns and {n} samples",
                 "use fewer patterns (max_patterns) or fewer samples, or a larger alpha "
                 "(fewer active neurons)")


class CompressedReluSolver(BaseSolver):
    """Exact solver of small ReLU programs with the squared loss (column-generation inner).

    Solves the restricted program with Clarabel after compressing the loss by a thin QR
    and reducing each block's cone constraints to its facet rows (see the module
    docstring); the returned blocks satisfy **all** ``n`` cone rows up to rounding
    (checked, rows re-added when needed).

    Parameters
    ----------
    tol : float, default=1e-10
        Clarabel's gap and feasibility tolerances.
    compress : bool, default=True
        Use the QR-compressed loss (``False``: the ``n`` residuals, for tests).
    reduce_rows : bool or "auto", default="auto"
        Start each block from a few rows (``False``: every row): its facet rows for
        ``d_aug <= 3``, else its :func:`margin_rows` (the convex hulls cost more than they
        save in higher dimension: diabetes, 98 patterns, ``d_aug = 11``, 100 s with the
        hulls, 8.4 s with every row). Either way every row is checked after each solve
        and the violated ones are re-added, so the solution satisfies all ``n`` rows
        (measured on diabetes, 25 and 40 sampled patterns, free hidden bias: the same
        objective to 10 digits as with every row, in 0.53x and 0.87x the time).
    max_iter : int, default=500
        Clarabel iteration limit.
    """

    _loss_required_attr = ("value", "gradient")
    _formulations = ("relu",)
    _cache_size = 20000

    def __init__(self, tol: float = 1e-10, compress: bool = True, reduce_rows="auto",
                 max_iter: int = 500) -> None:
        self.tol = tol
        self.compress = compress
        self.reduce_rows = reduce_rows
        self.max_iter = max_iter
        self._facets: OrderedDict = OrderedDict()

    # ------------------------------------------------------------------ facets (cached)
    def _reduce(self, d_aug: int) -> bool:
        return True if self.reduce_rows == "auto" else bool(self.reduce_rows)

    def _rows(self, Xa, masks, gates, X_key) -> list:
        out = []
        reduce = self._reduce(Xa.shape[1])
        for i in range(masks.shape[1]):
            if not reduce:
                out.append(np.flatnonzero(np.any(Xa != 0, axis=1)))
                continue
            key = (X_key, np.packbits(masks[:, i]).tobytes())
            rows = self._facets.get(key)
            if rows is None:
                rows = facet_rows(Xa, masks[:, i], gates[:, i]) if Xa.shape[1] <= 3 \
                    else margin_rows(Xa, masks[:, i], gates[:, i])
                self._facets[key] = rows
                if len(self._facets) > self._cache_size:
                    self._facets.popitem(last=False)
            out.append(rows)
        return out

    def _remember(self, X_key, mask, rows) -> None:
        if self._reduce(X_key[1]):
            self._facets[(X_key, np.packbits(mask).tobytes())] = rows

    # ------------------------------------------------------------------ the solve
    def _solve(self, program: ConvexProgram, warm_start=None) -> ConvexSolution:
        if program.loss.constant_curvature(program.y) is None or program.n_outputs != 1:
            raise ValueError("CompressedReluSolver handles a quadratic loss with one output; "
                             f"got {program.loss!r} with {program.n_outputs} "
                             "outputs. Use solver='cvxpy'.")
        t0 = time.perf_counter()
        Xa = program.X_aug
        masks = np.asarray(program.masks, bool)
        gates = program.patterns.gates
        X_key = (hash(Xa.tobytes()), Xa.shape[1])
        rows = self._rows(Xa, masks, gates, X_key)
        n_iter, status = 0, "optimal"
        # y / sigma and alpha / sigma, scaled back (Clarabel's tolerances are absolute);
        # on make_regression(20000, 20) (objectives ~1e8) the loop's objectives were the
        # same with and without it
        sigma = target_scale(program.y)
        for _ in range(10):
            x, it, status = self._clarabel(program, rows, sigma)
            n_iter += it
            V, W, c0 = self._unpack(program, sigma * x)
            added = False
            norms = np.linalg.norm(np.vstack([V, W]), axis=1)
            scale = max(float(np.max(norms, initial=0.0)), 1e-300)
            tol_rows = _ROW_RTOL * np.linalg.norm(Xa, axis=1)[:, None] * scale
            for B in (V, W):
                Qv = program.signs * (Xa @ B.T)  # (n, k)
                for i in np.flatnonzero(np.any(Qv < -tol_rows, axis=0)):
                    new = np.setdiff1d(np.flatnonzero(Qv[:, i] < -tol_rows[:, 0]), rows[i])
                    if new.size:
                        rows[i] = np.union1d(rows[i], new)
                        self._remember(X_key, masks[:, i], rows[i])
                        added = True
            if not added:
                break
        B, _ = repair_feasibility(Xa, np.hstack([masks, masks]), np.vstack([V, W]),
                                  np.hstack([gates, gates]))
        V, W = B[:program.n_patterns], B[program.n_patterns:]
        z = program.predict(V, W, c0)
        return ConvexSolution(
            V=V, W=W, output_bias=c0, objective=program.objective(V, W, c0),
            dual=-program.loss.gradient(z, program.y), status=status,
            n_iter=max(1, n_iter), solve_time=time.perf_counter() - t0, formulation="relu",
            info={"rows_kept": int(sum(r.size for r in rows)),
                  "rows_total": int(program.n_samples * program.n_patterns)})

    @staticmethod
    def _unpack(program, x):
        k, da = program.n_patterns, program.d_aug
        nb = 1 if program.fit_output_bias else 0
        c0 = float(x[0]) if nb else 0.0
        V = x[nb:nb + k * da].reshape(k, da)
        W = x[nb + k * da:nb + 2 * k * da].reshape(k, da)
        return V.copy(), W.copy(), c0

    def _clarabel(self, program: ConvexProgram, rows: list, sigma: float = 1.0):
        import clarabel

        Xa, y = program.X_aug, np.asarray(program.y, np.float64).ravel()
        masks = np.asarray(program.masks, bool)
        n, da = Xa.shape
        k = program.n_patterns
        nb = 1 if program.fit_output_bias else 0
        npen = program.regularizer.penalized_dim
        c = 1.0 / float(program.loss.constant_curvature(program.y))
        _check_clarabel_memory(n, nb + k * da, self.compress)
        # design of theta = (c0, v_1 - w_1, ..., v_k - w_k), scaled for (1/(2c))||.||^2
        B = np.empty((n, nb + k * da))
        if nb:
            B[:, 0] = 1.0
        B[:, nb:] = (masks[:, :, None] * Xa[:, None, :]).reshape(n, k * da)
        B /= np.sqrt(c)
        yy = y / (np.sqrt(c) * sigma)
        kd = k * da
        it0 = nb + 2 * kd  # t_v (k), t_w (k)
        ith = it0 + 2 * k  # theta = v - w (k d_a)
        ir0 = ith + kd  # residuals (uncompressed form only)
        th = np.concatenate([np.arange(nb), np.arange(ith, ir0)])  # (c0, theta) in x
        if self.compress and B.shape[1] < n:
            # (1/2)||B theta - y||^2 = (1/2) theta^T (B^T B) theta - (B^T y)^T theta + const:
            # the Gram form of the thin QR (B^T B = R^T R), k d_a + 1 unknowns, no n-rows
            H = B.T @ B
            m = 0
            nx = ir0
            iu, ju = np.triu_indices(th.size)
            P = sparse.csc_matrix((H[iu, ju], (th[iu], th[ju])), shape=(nx, nx))
            qobj = np.zeros(nx)
            qobj[th] = -(B.T @ yy)
        else:
            m = n
            nx = ir0 + m
            P = sparse.csc_matrix((np.ones(m), (np.arange(ir0, nx), np.arange(ir0, nx))),
                                  shape=(nx, nx))
            qobj = np.zeros(nx)
        qobj[it0:ith] = program.alpha / sigma
        # zero cone: theta - V + W = 0 (and r - B (c0, theta) = -y uncompressed)
        e = np.arange(kd)
        A_eq = sparse.csc_matrix((np.concatenate([np.ones(kd), -np.ones(kd), np.ones(kd)]),
                                  (np.tile(e, 3), np.concatenate([ith + e, nb + e,
                                                                  nb + kd + e]))),
                                 shape=(kd, nx))
        b_eq = np.zeros(kd)
        if m:
            cols = np.concatenate([th, np.arange(ir0, nx)])
            D = np.hstack([-B, np.eye(m)])
            rr, cc = np.nonzero(D)
            Ar = sparse.csc_matrix((D[rr, cc], (rr, cols[cc])), shape=(m, nx))
            A_eq = sparse.vstack([A_eq, Ar], format="csc")
            b_eq = np.concatenate([b_eq, -yy])
        m = b_eq.size
        # nonnegative cone: a_j^T v_i >= 0 on the kept rows (s = -A x = a^T v)
        ri, ci, vals = [], [], []
        nrow = 0
        for half in range(2):
            for i in range(k):
                r = rows[i]
                if r.size == 0:
                    continue
                Ai = np.where(masks[r, i], 1.0, -1.0)[:, None] * Xa[r]
                off = nb + (half * k + i) * da
                rr = np.repeat(np.arange(nrow, nrow + r.size), da)
                ri.append(rr)
                ci.append(np.tile(np.arange(off, off + da), r.size))
                vals.append(-Ai.ravel())
                nrow += r.size
        A_nn = sparse.csc_matrix((np.concatenate(vals) if vals else np.zeros(0),
                                  (np.concatenate(ri) if ri else np.zeros(0, int),
                                   np.concatenate(ci) if ci else np.zeros(0, int))),
                                 shape=(nrow, nx))
        # second-order cones: (t, v[:npen]) for every block
        ri, ci = [], []
        for half in range(2):
            for i in range(k):
                base = (half * k + i) * (1 + npen)
                off = nb + (half * k + i) * da
                ri.extend(range(base, base + 1 + npen))
                ci.append(it0 + half * k + i)
                ci.extend(range(off, off + npen))
        nsoc = 2 * k * (1 + npen)
        A_soc = sparse.csc_matrix((-np.ones(nsoc), (ri, ci)), shape=(nsoc, nx))
        A = sparse.vstack([A_eq, A_nn, A_soc], format="csc")
        b = np.concatenate([b_eq, np.zeros(nrow + nsoc)])
        cones = [clarabel.ZeroConeT(m)]
        if nrow:
            cones.append(clarabel.NonnegativeConeT(nrow))
        cones += [clarabel.SecondOrderConeT(1 + npen)] * (2 * k)
        st = clarabel.DefaultSettings()
        st.verbose = False
        st.max_iter = int(self.max_iter)
        st.tol_gap_abs = st.tol_gap_rel = st.tol_feas = float(self.tol)
        st.tol_ktratio = min(1e-6, float(self.tol))
        st.direct_solve_method = _METHOD
        solver = clarabel.DefaultSolver(P, qobj, A, b, cones, st)
        sol = solver.solve()
        status = clarabel_status(sol.status)
        return np.asarray(sol.x, np.float64), int(sol.iterations), status

"""The ReLU program by an augmented Lagrangian: per-iteration cost linear in ``n``.

The program is (CVX) of docs/mathematics.rst §3.1 (sum form, ``beta = alpha``) over the
program's patterns, with the blocks stacked as ``B = [V; W]`` (``2P x d_a``), signed masks
``S = [D, -D]`` and cone rows ``Q = A o (X_a B^T) >= 0`` (``A = 2D - I`` for both halves).
For multipliers ``mu >= 0`` (``n x 2P``) and a penalty ``delta > 0`` the augmented
Lagrangian of the cone constraints is

.. math::

    \\mathcal L_\\delta(B, c_0; \\mu) = \\ell\\big(\\textstyle\\sum_j S_jX_ab_j + c_0\\big)
    + \\tfrac1{2\\delta}\\|(\\mu - \\delta Q)_+\\|_F^2 + \\beta\\sum_j\\rho(b_j),

minimised over ``(B, c_0)`` by the accelerated proximal gradient of
:func:`~convexrelu.solvers._fista.fista_core` (group soft-thresholding as the prox, a
backtracking line search); then ``mu <- (mu - delta Q)_+`` and ``delta`` grows while the
cone violation does not shrink fast enough. One inner iteration costs one product
``X_a B^T`` and one ``G^T X_a`` (``n x d_a x 2P`` each) plus elementwise work on
``n x 2P`` arrays: no ``n x n`` matrix, no ``n x (P d_a)`` matrix.

After every outer step the point is made cone-feasible along the gates
(:func:`~convexrelu._polish.repair_feasibility`) and certified by the certificate core's
multiplier bound :func:`~convexrelu.certificates._gap.relu_multiplier_gap` (for any
``mu >= 0``, ``M_j(lambda) <= ||X_a^T(S_j lambda + A_j mu_j)||``, the largest bounds
refined exactly per pattern), so the reported gap is certified over every pattern of the
program at linear cost. For a quadratic loss, once the relative gap is below
``polish_rgap`` the support is refined by the exact Newton polish
(:func:`~convexrelu._polish.polish_support`), which closes the last digits.

Multi-output (squared) programs are independent scalar programs over shared patterns
(docs/mathematics.rst §3.7): each output is solved in turn.

References
----------
A. Mishkin, A. Sahiner and M. Pilanci, "Fast convex optimization for two-layer ReLU
networks: equivalent model classes and cone decompositions", ICML 2022 (the augmented
Lagrangian for the cone-constrained program).
"""

from __future__ import annotations

import copy
import numbers
import time
from typing import Optional

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .._polish import polish_support, repair_feasibility
from ..certificates._gap import centred_dual, relative_gap, relu_multiplier_gap
from ..program import ConvexProgram, ConvexSolution
from ..regularizers import GroupL2Penalty
from ._base import BaseSolver, certificate_text
from ._fista import ArrayBackend, fista_core, get_backend

__all__ = ["ReluALSolver", "solve_relu_al", "operator_norm_sq"]


def operator_norm_sq(Xa, S, *, output_bias: bool, n_iter: int = 30, seed: int = 0,
                     xp: Optional[ArrayBackend] = None, S_T=None) -> float:
    """An estimate of ``||A||^2`` for ``A: (B, c0) -> sum_j S_j X_a b_j + c0 1`` by power
    iteration on ``A A^T`` (products only: no ``n x n`` matrix).

    It is a lower estimate (the line search of the proximal gradient repairs it). With a
    backend ``xp`` the products run there on its arrays ``Xa`` and ``S_T`` (the signed
    masks transposed, ``2P x n``; ``S`` is then not used).
    """
    if xp is None:
        xp = get_backend("numpy")
        Xa = np.asarray(Xa, np.float64)
        S_T = np.asarray(S, np.float64).T
    n = Xa.shape[0]
    x = xp.asarray(np.random.default_rng(seed).standard_normal(n))
    val = 0.0
    for _ in range(n_iter):
        nx = np.sqrt(xp.vdot(x, x))
        if nx == 0.0:
            return 0.0
        x = x * (1.0 / nx)
        u = S_T @ (x[:, None] * Xa)  # A^T x (blocks)
        out = xp.rowdot(Xa, S_T.T @ u)
        if output_bias:
            out = out + xp.total(x)
        val = xp.vdot(x, out)
        x = out
    return max(val, 0.0)


def _al_lipschitz(Xa: np.ndarray, n_iter: int = 30) -> float:
    """``||X_a||_2^2`` (power iteration on ``X_a^T X_a``, ``d_a x d_a``: exact eigvalsh)."""
    return float(np.linalg.eigvalsh(Xa.T @ Xa)[-1])


def solve_relu_al(loss, Xa, masks, y, beta, *, gates, regularizer: GroupL2Penalty,
                  output_bias: bool, centred: bool, tol: float = 1e-6,
                  max_outer: int = 60, max_inner: int = 500, B0=None, c0: float = 0.0,
                  polish=None, polish_rgap: float = 0.3, max_refine: int = 200,
                  time_limit: Optional[float] = None, backend="numpy", device=None,
                  dtype=np.float64, verbose: int = 0) -> dict:
    """Solve one scalar ReLU program by the augmented Lagrangian (see the module docstring).

    Parameters
    ----------
    loss : Loss
        Smooth, sum-reduced, one output.
    Xa : ndarray of shape (n, d_a)
    masks : ndarray of shape (n, P), bool
    y : ndarray of shape (n,)
    beta : float
    gates : ndarray of shape (d_a, P)
        Strict interior points of the cones (feasibility repair).
    regularizer : GroupL2Penalty
        The group penalty of a block (``program.regularizer``).
    output_bias : bool
        Free output bias ``c0``.
    centred : bool
        Whether the dual point must satisfy ``1^T lambda = 0`` (``centred_dual``).
    tol : float
        Relative duality gap to certify.
    max_outer, max_inner : int
        Multiplier updates; proximal-gradient iterations per update.
    B0, c0 : warm start (``B0`` of shape (2P, d_a)).
    polish : callable, optional
        ``polish(V, W, c0) -> (V, W, c0) or None`` (an exact refinement on the support).
    polish_rgap : float
        Relative gap below which ``polish`` is tried.
    max_refine : int
        Blocks refined exactly by the certificate (``relu_multiplier_gap``).
    backend, device, dtype :
        Where the inner iterations and the multiplier updates run
        (:class:`~convexrelu.solvers._fista.ArrayBackend`: ``"numpy"``, or ``"torch"`` on
        ``device``; float64 only, see :class:`ReluALSolver`). The feasibility repair,
        the certificate and the polish run on the host in float64 (one transfer of the
        multipliers per outer step).

    Returns
    -------
    dict
        ``B`` (``[V; W]``, feasible), ``c0``, ``dg`` (the core's
        :class:`~convexrelu.certificates._gap.DualGap` at ``B``), ``converged``,
        ``n_outer``, ``n_inner``, ``history`` (``(outer, seconds, primal, gap, delta)``),
        ``mu``.
    """
    t0 = time.perf_counter()
    xp = get_backend(backend, device, dtype)
    if xp.dtype != np.float64:
        raise ValueError(f"the augmented Lagrangian runs in float64 only; got dtype="
                         f"{xp.dtype}. Use dtype='float64' (on a GPU too), or the gated "
                         "solver FistaSolver for float32 iterations.")
    Xa = np.ascontiguousarray(Xa, np.float64)
    masks = np.asarray(masks, bool)
    y = np.asarray(y, np.float64)
    n, da = Xa.shape
    P = masks.shape[1]
    Mf = masks.astype(np.float64)
    S = np.hstack([Mf, -Mf])  # signed masks of [V; W] (host: the certificate)
    signs2 = np.hstack([masks, masks])
    G2 = np.hstack([gates, gates])
    reg = regularizer
    beta = float(beta)
    # the iterations' arrays on the backend; row-major (blocks x samples) copies of the
    # signed masks and cone signs: the rows of the active blocks are gathered contiguously
    Xd = xp.asarray(Xa)
    Md = xp.asarray(Mf)
    S_T = xp.asarray(S.T)
    A_T = xp.asarray(np.vstack([2.0 * Mf.T - 1.0] * 2))  # cone signs of both halves

    # the quadratic part's curvature: loss (through A) and the AL term (delta ||Xa||^2)
    L_loss = float(loss.lipschitz) * operator_norm_sq(Xd, None, output_bias=output_bias,
                                                      xp=xp, S_T=S_T)
    L_cone = _al_lipschitz(Xa)
    delta = max(L_loss, 1e-12) / max(L_cone, 1e-300)
    fval_z, fvg_z = xp.loss_ops(loss, y)
    state = {"mu": xp.zeros((2 * P, n)), "delta": delta, "mucols": np.zeros(0, int),
             "cache": (None, None, None, None)}

    def gathered(cols):
        """``(S, A, mu)`` rows of ``cols`` (cached for the last column set)."""
        key = cols.tobytes()
        if state["cache"][0] != key:
            ix = xp.index(cols)
            state["cache"] = (key, S_T[ix], A_T[ix], state["mu"][ix])
        return state["cache"][1:]

    def forward(B):
        """The products of the blocks that are nonzero or carry multipliers (the others
        contribute nothing to the predictions or the AL term)."""
        cols = np.union1d(xp.nonzero_rows(B), state["mucols"])
        T = B[xp.index(cols)] @ Xd.T  # (|cols|, n)
        Sc = gathered(cols)[0]
        return _State(xp, cols, T, xp.coldot(Sc, T))

    def _al_terms(st):
        _, Ac, muc = gathered(st.cols)
        R = Ac * st.T
        R *= -state["delta"]
        R += muc
        return Ac, xp.relu_(R)

    def fgrad(st, c):
        f, g = fvg_z(st.z + c if output_bias else st.z)
        Ac, R = _al_terms(st)
        f += 0.5 * xp.vdot(R, R) / state["delta"]
        R *= Ac
        return f, (g, st.cols, R), (xp.total(g) if output_bias else 0.0)

    def adjoint(G):
        g, cols, AR = G
        H = Md.T @ (g[:, None] * Xd)  # rows X_a^T D_i g: one GEMM, every pattern
        out = xp.vstack([H, -H])
        if cols.size:
            out[xp.index(cols)] -= AR @ Xd
        return out

    def fval(st, c):
        _, R = _al_terms(st)
        return fval_z(st.z + c if output_bias else st.z) + \
            0.5 * xp.vdot(R, R) / state["delta"]

    def prox(Z, step):
        return xp.group_shrink(Z, beta * step, reg)

    def penalty(B):
        return beta * xp.total(xp.row_norms(reg.penalized(B)))

    def certify(B, c, mu_):
        return relu_multiplier_gap(loss, Xa, S, signs2, y, B, c, beta, mu_,
                                   output_bias=centred, regularizer=reg,
                                   max_refine=max_refine)

    def host_mu():  # the multipliers (n x 2P) on the host in float64
        return xp.to_numpy(state["mu"]).T

    B = np.zeros((2 * P, da)) if B0 is None else np.array(B0, np.float64)
    c = float(c0) if output_bias else 0.0
    # the starting point (the warm start, or the zero network) is the first candidate: the
    # result is never worse than it, although the first multiplier steps, at a small
    # penalty, end far outside the cones (repaired, 10^5 times the zero network's
    # objective on make_regression(2000, 20), P = 100)
    Bs, _ = repair_feasibility(Xa, signs2, B, G2)
    dg = certify(Bs, c, np.zeros((n, 2 * P)))
    best = (dg.primal, Bs, c, dg)  # (primal, B, c, dg)
    best_dual = dg.dual
    history = []
    n_inner = 0
    L_prev = None
    viol_prev = np.inf
    inner_rtol = 1e-3
    # a larger penalty makes the inner problem ill-conditioned; the multiplier updates
    # reduce the violation at a fixed penalty
    grow_above = 1e-6
    delta_max = 1e4 * delta
    converged = False
    outer = 0
    scale = None
    for outer in range(1, int(max_outer) + 1):
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            break
        if scale is None:  # the size of the gradient of the loss at the zero network
            g0 = loss.gradient(np.full(n, c), y)
            scale = max(float(np.linalg.norm(S.T @ (g0[:, None] * Xa), axis=1).max()),
                        beta, 1e-300)
        r = fista_core(forward=forward, adjoint=adjoint, fgrad=fgrad, fval=fval, prox=prox,
                       penalty=penalty, gap_fn=None, xp=xp, B0=xp.asarray(B), c0=c,
                       output_bias=output_bias, L_max=np.inf, tol=0.0,
                       max_iter=int(max_inner), check_every=1, shrink_L=0.8,
                       L0=L_prev if L_prev is not None else L_loss + delta * L_cone,
                       inner_tol=inner_rtol * scale, time_limit=left)
        n_inner += r.n_iter
        B, c = np.asarray(r.B, np.float64), float(r.output_bias)
        L_prev = float(r.info.get("L", L_prev or 1.0))
        Q_T = A_T * (r.info["B_backend"] @ Xd.T)  # cone rows, blocks x samples
        state["mu"] = xp.relu(state["mu"] - Q_T * state["delta"])
        state["mucols"] = xp.nonzero_rows(state["mu"])
        state["cache"] = (None, None, None, None)
        Bn = np.linalg.norm(B, axis=1)
        viol = max(-float(Q_T.min()), 0.0) / max(
            float(Bn.max(initial=0.0)) * float(np.sqrt(L_cone)), 1e-300)
        del Q_T
        Bf, _ = repair_feasibility(Xa, signs2, B, G2)
        mu_h = host_mu()
        dg = certify(Bf, c, mu_h)
        best_dual = max(best_dual, dg.dual)
        if dg.primal <= best[0]:
            best = (dg.primal, Bf, c, dg)
        gap = best[0] - best_dual
        rg = relative_gap(gap, best[0])
        if polish is not None and rg <= polish_rgap and rg > tol:
            out = polish(Bf[:P], Bf[P:], c)
            if out is not None:
                V2, W2, c2 = out
                Bp, _ = repair_feasibility(Xa, signs2, np.vstack([V2, W2]), G2)
                dgp = certify(Bp, float(c2), mu_h)
                best_dual = max(best_dual, dgp.dual)
                if verbose:
                    print(f"  polished primal {dgp.primal:.10e} gap {dgp.gap:.3e}")
                if dgp.primal <= best[0]:
                    best = (dgp.primal, Bp, float(c2), dgp)
                    B, c = Bp, float(c2)  # the AL continues from the polished point
                gap = best[0] - best_dual
                rg = relative_gap(gap, best[0])
        history.append((outer, time.perf_counter() - t0, best[0], gap, state["delta"]))
        if verbose:
            print(f"AL {outer:3d}  primal {best[0]:.10e}  rel gap {rg:.3e}  viol "
                  f"{viol:.2e}  delta {state['delta']:.2e}  inner {r.n_iter}")
        if rg <= tol:
            converged = True
            break
        # penalty and inner accuracy schedule (the classic rule: grow delta while the
        # violation does not fall by 4x)
        if viol > 0.25 * viol_prev and viol > grow_above and \
                state["delta"] < delta_max:
            state["delta"] *= 4.0
            L_prev = None if L_prev is None else L_prev + 3.0 * state["delta"] / 4 * L_cone
        viol_prev = viol
        inner_rtol = max(0.3 * inner_rtol, 1e-3 * tol)
    _, Bf, c, dg = best
    return dict(B=Bf, c0=c, dg=dg, gap=best[0] - best_dual, primal=best[0],
                converged=converged, n_outer=outer, n_inner=n_inner, history=history,
                mu=host_mu(), time=time.perf_counter() - t0)


def _polisher(prog: ConvexProgram):
    """The active-set Newton polish of ``prog``'s restricted solutions (None on failure)."""
    def polish(V, W, c0):
        try:
            return polish_support(prog, V, W, c0, drop_rtol=1e-6, drop_rows=True,
                                  smooth_loss=True)
        except (np.linalg.LinAlgError, ValueError):  # pragma: no cover - defensive
            return None
    return polish


def _unscaled(dg) -> np.ndarray:
    """The unscaled dual point of a certificate (``ConvexSolution.dual``'s convention)."""
    return dg.lam / dg.scale if dg.scale > 0 else np.asarray(dg.lam, np.float64)


class _State:
    """The proximal-gradient state of a point ``B``: the products ``X_a b_j`` of the blocks
    ``cols`` (rows of ``T``, on the backend ``xp``; every other block is zero and carries
    no multiplier) and the predictions ``z``.

    Linear combinations (the extrapolation of :func:`~._fista.fista_core`) align the
    column sets.
    """

    __slots__ = ("xp", "cols", "T", "z")

    def __init__(self, xp, cols, T, z):
        self.xp, self.cols, self.T, self.z = xp, cols, T, z

    def _combine(self, other, b):
        if self.cols.size == other.cols.size and np.array_equal(self.cols, other.cols):
            return _State(self.xp, self.cols, self.T + b * other.T, self.z + b * other.z)
        xp = self.xp
        cols = np.union1d(self.cols, other.cols)
        T = xp.zeros((cols.size, self.T.shape[1]))
        i = xp.index(np.searchsorted(cols, self.cols))
        j = xp.index(np.searchsorted(cols, other.cols))
        T[i] = self.T
        T[j] = T[j] + b * other.T
        return _State(xp, cols, T, self.z + b * other.z)

    def __add__(self, other):
        return self._combine(other, 1.0)

    def __sub__(self, other):
        return self._combine(other, -1.0)

    def __mul__(self, a):
        return _State(self.xp, self.cols, self.T * a, self.z * a)


def _column_program(program: ConvexProgram, k: int) -> ConvexProgram:
    """Output ``k`` of a multi-output program as a scalar program (same patterns)."""
    new = object.__new__(ConvexProgram)
    new.__dict__.update(program.__dict__)
    loss = copy.copy(program.loss)
    loss.n_outputs = program.n_outputs
    new.loss = loss
    new.y = np.ascontiguousarray(program.y[:, k])
    return new


class ReluALSolver(BaseSolver):
    """The ReLU program by an augmented Lagrangian with an accelerated proximal-gradient
    inner loop; per-iteration cost linear in ``n`` (the method is described in the
    docstring of the module ``convexrelu.solvers._relu_al``).

    Parameters
    ----------
    tol : float, default=1e-6
        Relative duality gap certified over every pattern of the program.
    max_iter : int, default=60
        Multiplier (outer) updates.
    max_inner : int, default=500
        Proximal-gradient iterations per outer update.
    polish : bool, default=True
        Active-set Newton polish on the support (losses with a curvature).
    max_refine : int, default=200
        Blocks whose multiplier bound exceeds ``alpha`` refined exactly by the certificate.
    verbose : int, default=0
    time_limit : float, optional
        Seconds after which no new outer step starts.
    backend : {"numpy", "torch"}, default="numpy"
        Array library of the inner iterations and the multiplier updates. ``"torch"``
        needs PyTorch (``pip install torch``).
    device : str, optional
        torch device (``"cpu"``, ``"cuda"``...); only with ``backend="torch"``. The
        products with ``X_a`` and the masks run there; the feasibility repair, the
        certificate (over every pattern) and the polish run on the host in float64.
    dtype : {"float64"}, default="float64"
        Precision of the iterations. Only float64: in float32 the inner loop's
        extrapolated products drift from the iterates faster than the growing penalty
        tolerates (on small test programs the first multiplier step already ended 300x
        above the optimum and never recovered), so float32 is refused with a clear error.

    Notes
    -----
    ``solution.info``: ``rel_gap``, ``method="augmented_lagrangian"``, ``history``
    (``(outer, seconds, primal, gap, delta)``), ``inner_iterations``, ``support``.
    """

    _loss_required_attr = ("value", "gradient", "dual_objective", "max_dual_scale")
    _formulations = ("relu",)
    _parameter_constraints = {
        "tol": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_inner": [Interval(numbers.Integral, 1, None, closed="left")],
        "polish": ["boolean"],
        "max_refine": [Interval(numbers.Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
        "time_limit": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "backend": [StrOptions({"numpy", "torch"}), object],
        "device": [None, str, object],
        "dtype": [StrOptions({"float64"}), type],
    }
    _convergence_hint = "Increase max_iter (outer updates) or max_inner, or loosen tol."

    def __init__(self, tol: float = 1e-6, max_iter: int = 60, max_inner: int = 500,
                 polish: bool = True, max_refine: int = 200, verbose: int = 0,
                 time_limit: Optional[float] = None, backend: str = "numpy", device=None,
                 dtype: str = "float64") -> None:
        self.tol = tol
        self.max_iter = max_iter
        self.max_inner = max_inner
        self.polish = polish
        self.max_refine = max_refine
        self.verbose = verbose
        self.time_limit = time_limit
        self.backend = backend
        self.device = device
        self.dtype = dtype

    def _solve(self, program: ConvexProgram, warm_start=None) -> ConvexSolution:
        if not program.loss.smooth:
            raise ValueError(f"ReluALSolver needs a smooth loss; got {program.loss.name!r}. "
                             "Use solver='cvxpy' for the hinge loss.")
        if getattr(program.loss, "multi_output", False) and program.n_outputs > 1:
            raise ValueError("ReluALSolver solves each output separately and cannot handle "
                             f"the coupled {program.loss.name!r} loss; fit one-vs-rest "
                             "binary programs instead, or use solver='cvxpy'.")
        t0 = time.perf_counter()
        xp = get_backend(self.backend, self.device, np.dtype(self.dtype))
        c = program.n_outputs
        P, da = program.n_patterns, program.d_aug
        progs = [program] if c == 1 else [_column_program(program, k) for k in range(c)]
        Vs, Ws, cs, parts = [], [], [], []
        for k, prog in enumerate(progs):
            B0, c0 = None, 0.0
            if warm_start is not None:
                V0, W0 = np.asarray(warm_start.V), np.asarray(warm_start.W)
                if c > 1 and V0.shape == (c, P, da):
                    V0, W0 = V0[k], W0[k]
                if V0.shape == (P, da) and W0.shape == (P, da):
                    B0 = np.vstack([V0, W0])
                    c0 = float(np.ravel(warm_start.output_bias)[min(k, np.size(
                        warm_start.output_bias) - 1)])
            left = None if self.time_limit is None else \
                max(self.time_limit - (time.perf_counter() - t0), 1e-3)
            polish = _polisher(prog) if self.polish else None
            r = solve_relu_al(prog.loss, prog.X_aug, prog.masks, prog.y, prog.alpha,
                              gates=prog.patterns.gates, regularizer=prog.regularizer,
                              output_bias=prog.fit_output_bias, centred=centred_dual(prog),
                              tol=self.tol / c if c > 1 else self.tol,
                              max_outer=self.max_iter, max_inner=self.max_inner, B0=B0,
                              c0=c0, polish=polish, max_refine=self.max_refine,
                              time_limit=left, backend=xp, verbose=self.verbose)
            Vs.append(r["B"][:P])
            Ws.append(r["B"][P:])
            cs.append(r["c0"])
            parts.append(r)
        primal = sum(r["primal"] for r in parts)
        gap = sum(r["gap"] for r in parts)
        n = program.n_samples
        if c == 1:
            V, W, c0 = Vs[0], Ws[0], float(cs[0])
            lam = _unscaled(parts[0]["dg"])
        else:
            V, W, c0 = np.stack(Vs), np.stack(Ws), np.asarray(cs, float)
            lam = np.column_stack([_unscaled(r["dg"]) for r in parts])
        reg = program.regularizer
        size = np.maximum(reg.norms(V), reg.norms(W)).reshape(c, P).max(axis=0)
        exact = bool(program.patterns.exact)

        return ConvexSolution(
            V=V, W=W, output_bias=c0, objective=primal / n,
            dual=lam,
            status="optimal" if all(r["converged"] for r in parts) else "max_iter_reached",
            n_iter=max(1, max(r["n_outer"] for r in parts)),
            solve_time=time.perf_counter() - t0, gap=gap / n, formulation="relu",
            info={"rel_gap": relative_gap(gap, primal), "method": "augmented_lagrangian",
                  "history": [h for r in parts for h in r["history"]],
                  "inner_iterations": sum(r["n_inner"] for r in parts),
                  "support": np.flatnonzero(size > 1e-9 * max(float(size.max(initial=0.0)),
                                                              1e-300)),
                  "tol": self.tol, "patterns_exact": exact,
                  "backend": xp.name, "device": str(xp.device), "dtype": str(xp.dtype),
                  "certificate": certificate_text(exact)})

"""Newton polish of a restricted ReLU program on its support, and cone-feasibility repair.

Shared by the solvers (the working-set loop refines each restricted solution) and the
certificates (a network's dual point is refitted on the patterns its neurons use). The
Newton step, the ratio test and the line search are the package's shared ones
(:mod:`convexrelu._newton`); the loss is quadratic (its ``constant_curvature``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import sparse

from .arrangements._patterns import cone_signs
from ._memory import _budget_bytes
from ._newton import backtrack, boundary_steps, newton_step, norm_derivatives
from .program import ConvexProgram

__all__ = ["polish_support", "repair_feasibility"]


def repair_feasibility(Xa: np.ndarray, signs: np.ndarray, B: np.ndarray,
                       gates: Optional[np.ndarray]) -> tuple[np.ndarray, float]:
    """Make every block of ``B`` satisfy ``A_j Xa b_j >= 0``.

    With ``gates`` (interior points of the cones, shape (d_aug, n_blocks)) block ``j``
    moves to ``b_j + tau_j g_j`` with the smallest ``tau_j >= 0`` clearing the violation.
    Returns the repaired blocks and the largest violation before repair, relative to
    ``max_j ||b_j|| * ||Xa||_2``.
    """
    B = np.asarray(B, np.float64)
    scale = max(float(np.max(np.linalg.norm(B, axis=1))) if B.size else 0.0, 1e-300)
    # ||Xa||_2 from the d x d Gram (one pass; an SVD of the n x d data was 5.7 s of a
    # make_regression(10^6, 20) solve)
    G = Xa.T @ Xa
    scale *= max(float(np.sqrt(max(np.linalg.eigvalsh(G)[-1], 0.0))) if G.size else 0.0,
                 1e-300)
    # the samples in blocks: the (n, blocks) slacks and their ratios were five arrays of
    # 168 MB each at n = 750,000 (28 blocks), a large fit's peak
    step = max(1, _REPAIR_ENTRIES // max(B.shape[0], 1))
    worst, tau = 0.0, np.zeros(B.shape[0])
    for s in range(0, Xa.shape[0], step):
        A = cone_signs(signs[s:s + step])
        viol = np.maximum(-(A * (Xa[s:s + step] @ B.T)), 0.0)
        if not viol.size or not np.any(viol > 0):
            continue
        worst = max(worst, float(np.max(viol)))
        if gates is not None:
            Gq = A * (Xa[s:s + step] @ gates)  # > 0 on the nonzero rows for interior gates
            with np.errstate(divide="ignore", invalid="ignore"):
                need = np.where(viol > 0, viol / np.where(Gq > 0, Gq, np.nan), 0.0)
            tau = np.maximum(tau, np.nan_to_num(need, nan=0.0).max(axis=0))
    worst = worst / scale if worst else 0.0  # no rows or no violation: 0 (scale may be 0)
    if gates is None or worst == 0.0:
        return B, worst
    return B + (tau * (1.0 + 1e-9))[:, None] * gates.T, worst


#: rows per chunk of :func:`ratio_test`
_RATIO_CHUNK = 8192


def ratio_test(Xa: np.ndarray, X0: np.ndarray, X1: np.ndarray, masks: np.ndarray,
               free: np.ndarray, tmax: float = 1.0):
    """The polish's ratio test of every block at once: ``(t, hit)``, the smallest step
    ``t < tmax`` at which a free row of a block reaches its cone's boundary and ``hit =
    (block, row)`` (the first block, then the first row, of that step), or ``(tmax,
    None)``.

    Block ``j``'s rows are ``a_i x_i^T (x0_j + t x1_j)`` (``X0``, ``X1``: d_aug x J,
    ``a = 2 D - 1`` from the bool ``masks`` column ``j``, n x J), checked on its ``free``
    rows (bool, n x J). One pass over the data by chunks of rows for all blocks (two
    matrix-vector products per block, as the polish made them, read it ``2 J`` times)."""
    J = X0.shape[1]
    X01 = np.hstack([X0, X1])
    best = np.full(J, np.inf)
    row = np.zeros(J, np.intp)
    for a in range(0, Xa.shape[0], _RATIO_CHUNK):
        T = Xa[a:a + _RATIO_CHUNK] @ X01
        sg = cone_signs(masks[a:a + _RATIO_CHUNK])
        t = boundary_steps(sg * T[:, :J], sg * T[:, J:], free[a:a + _RATIO_CHUNK])
        m = np.argmin(t, axis=0)
        tm = t[m, np.arange(J)]
        better = tm < best  # strictly: the first row of a tie stays
        best[better], row[better] = tm[better], a + m[better]
    hit = None
    for j in range(J):
        if best[j] < tmax:
            tmax, hit = float(best[j]), (j, int(row[j]))
    return tmax, hit


# entries of each block of repair_feasibility's (samples x blocks) arrays (512 KB: they
# stay in cache; 10^6 x 21 data, 46 blocks, one BLAS thread: 1.05-1.11 s against 1.51-1.56
# s with blocks of 8 MB)
_REPAIR_ENTRIES = 1 << 16


def _null_space(F: np.ndarray, d: int) -> np.ndarray:
    """Orthonormal basis of ``{x : F x = 0}`` (``d x q``)."""
    if F.shape[0] == 0:
        return np.eye(d)
    _, s, Vt = np.linalg.svd(F)
    rank = int(np.sum(s > 1e-12 * max(float(s[0]), 1e-300)))
    return Vt[rank:].T.copy()


def _release_rows(blocks, theta, offs, r, c, Xa, masks, reg, make, beta, mult_rtol) -> bool:
    """Release, in every block, the binding row with the most negative multiplier.

    At a stationary point of the face (``x = N z``, ``N^T grad_x f = 0``) the full gradient
    ``grad_x f = s X_a^T D r / c + beta d||x_pen||`` lies in ``range(G_R^T)``; its
    multipliers ``mu = argmin ||G_R^T mu - grad_x f||`` (rows normalised) must be ``>= 0``.
    Returns whether a row was released.
    """
    changed = False
    for j, b in enumerate(blocks):
        if b["rows"].size == 0:
            continue
        x = b["N"] @ theta[offs[j]:offs[j + 1]]
        nx = float(np.linalg.norm(reg.penalized(x)))
        if nx == 0.0:
            continue
        gx = b["s"] * ((masks[:, b["i"]] * r) @ Xa) / c
        reg.penalized(gx)[...] += beta * reg.penalized(x) / nx
        Gr = b["a"][b["rows"], None] * Xa[b["rows"]]
        Gr = Gr / np.linalg.norm(Gr, axis=1)[:, None]
        mu = np.linalg.lstsq(Gr.T, gx, rcond=None)[0]
        k = int(np.argmin(mu))
        if mu[k] < -mult_rtol * beta:
            new = make(b["i"], b["s"], np.delete(b["rows"], k), x)
            if new is not None:
                blocks[j] = new
                changed = True
    return changed


def polish_support(program: ConvexProgram, V: np.ndarray, W: np.ndarray, c0: float, *,
                   drop_rtol: float = 1e-6, bind_rtol: float = 1e-6, max_newton: int = 60,
                   max_changes: int = 200, rows: Optional[dict] = None,
                   drop_rows: bool = False, mult_rtol: float = 1e-9,
                   smooth_loss: bool = False):
    """Active-set Newton polish of a restricted ReLU solution (one output).

    For a quadratic loss (``constant_curvature``) as described below; with
    ``smooth_loss=True``, for another smooth loss with a ``curvature`` (logistic, Huber),
    the same Newton steps with the Hessian ``B^T diag(l''(z)) B`` recomputed at every step
    (otherwise, and for losses without a curvature, ``None``).

    On the support of ``(V, W)`` (blocks above ``drop_rtol`` times the largest) and with
    the binding cone rows (relative slack below ``bind_rtol``; at most ``d_a - 1`` per
    block) held as equalities, the restricted program is smooth: with ``x_j = N_j z_j``
    (``N_j`` a basis of the binding rows' null space) the objective
    ``(1/2c)||B theta - y||^2 + beta sum_j ||(N_j z_j)_pen||`` has the Hessian
    ``B^T B / c + blockdiag(beta N_j^T P^T (I - u u^T) P N_j / ||P N_j z_j||)``. Damped
    Newton steps with a ratio test on the other cone rows (a block that reaches a new row
    gains it as an equality; a block that reaches zero is dropped) and an Armijo line
    search. Interior-point solutions are accurate to ~``1e-6`` relative in the dual
    constraint; this removes that limit when the support and the binding rows are right.
    The returned blocks satisfy every cone row up to rounding; whether they are optimal
    is for the caller's certificate to decide (blocks are never added).

    Options used by the active-set ReLU solver (:mod:`._relu_fast`; the defaults leave the
    behaviour above unchanged):

    * ``rows``: ``{j: row indices}`` for blocks ``j`` of the stacked ``[V; W]`` whose binding
      rows are known (e.g. the active rows of the cone projection that made the block enter);
      they replace the slack-based choice for those blocks.
    * ``drop_rows``: a true active-set method. When Newton has converged on the current
      faces, the cone multipliers ``mu`` of every block (``grad_x f = G_R^T mu``, least
      squares) are checked; the most negative one of each block whose
      ``mu_k < -mult_rtol * beta`` (rows normalised) is released and Newton continues.
      With it, the returned blocks are KKT points of their own cones up to ``mult_rtol``.

    Returns ``(V, W, c0)`` (new arrays) or ``None`` when nothing could be polished.
    """
    Xa = program.X_aug
    y = np.asarray(program.y, np.float64).ravel()
    masks = np.asarray(program.masks, bool)
    n, da = Xa.shape
    k = program.n_patterns
    npen = program.regularizer.penalized_dim
    beta = float(program.alpha)
    nb = 1 if program.fit_output_bias else 0
    loss = program.loss
    curv = loss.constant_curvature(program.y)
    quad = curv is not None
    if not quad and (not smooth_loss or not loss.smooth
                     or loss.curvature(np.zeros(1), y[:1]) is None):
        return None
    c = 1.0 / float(curv) if quad else 1.0

    def smooth(Bm, theta):
        """``(r, loss)``: ``r = c grad l(z)`` (the residual ``z - y`` when quadratic)."""
        z = Bm @ theta
        if quad:
            r = z - y
            return r, 0.5 * float(r @ r) / c
        return loss.gradient(z, y), float(loss.value(z, y))
    rown = np.linalg.norm(Xa, axis=1)
    nzrow = rown > 0
    Xb = np.vstack([V, W])
    size = np.linalg.norm(Xb[:, :npen], axis=1)
    smax = float(size.max(initial=0.0))
    if smax == 0.0:
        return None

    def make(i, sgn, rows, x):
        """One block: pattern ``i``, sign, binding rows, null-space basis and column. The
        cone's rows ``G = A X_a`` (``A`` the signs ``a`` of the mask) are read as ``G v =
        a * (X_a v)`` (a sign flip is exact), never formed (a copy of the data per block
        was most of the polish's memory at n = 1e6)."""
        a = cone_signs(masks[:, i])
        N = _null_space(a[rows, None] * Xa[rows] / rown[rows, None], da)
        if N.shape[1] == 0 or np.linalg.norm(N[:npen]) == 0:
            return None
        free = nzrow.copy()
        free[rows] = False
        XN = Xa @ N
        XN *= masks[:, i, None]
        XN *= sgn
        return dict(i=i, s=sgn, rows=rows, a=a, N=N, free=free, col=XN, z=N.T @ x)

    blocks = []
    for j in np.flatnonzero(size > drop_rtol * smax):
        i, sgn = int(j % k), (1.0 if j < k else -1.0)
        x = Xb[j]
        Gx = cone_signs(masks[:, i]) * (Xa @ x)
        sl = Gx / np.where(nzrow, rown, 1.0) / max(float(np.linalg.norm(x)), 1e-300)
        if rows is not None and int(j) in rows:
            rj = np.asarray(rows[int(j)], int)
            rj = np.sort(rj[np.argsort(sl[rj])][:da - 1])
        else:
            rj = np.flatnonzero(nzrow & (sl <= bind_rtol))
            rj = np.sort(rj[np.argsort(sl[rj])][:da - 1])
        b = make(i, sgn, rj, x)
        if b is not None:
            blocks.append(b)
    if not blocks:
        return None
    # its design (n x columns) and, for a quadratic loss, their Gram within the memory
    # budget, else nothing to polish (a torch network of 2,048 hidden units on 100
    # features asked numpy for 319 GiB in certify)
    cols = nb + sum(b["N"].shape[1] for b in blocks)
    if 8.0 * cols * (n + (cols if quad else 0)) > _budget_bytes():
        return None

    def assemble():
        Bm = np.hstack(([np.ones((n, 1))] if nb else []) + [b["col"] for b in blocks])
        offs = np.cumsum([nb] + [b["N"].shape[1] for b in blocks])
        theta = np.concatenate([np.full(nb, float(c0))] + [b["z"] for b in blocks])
        return Bm, offs, (Bm.T @ Bm / c if quad else None), theta

    pn_cache = [None, None]

    def penalty(theta, offs):
        # one sparse product for all blocks (same value as the sum of per-block norms)
        if pn_cache[0] is not offs:  # rebuilt once per assembled block set
            pn_cache[:] = [offs, sparse.block_diag([b["N"][:npen] for b in blocks],
                                                   format="csr")]
        px = pn_cache[1] @ theta[nb:]
        return float(np.sum(np.linalg.norm(px.reshape(len(blocks), npen), axis=1)))

    rt_cache = [None, None, None]  # the ratio test's masks and free rows, per block set
    Bm, offs, H0, theta = assemble()
    r, f = smooth(Bm, theta)
    f += beta * penalty(theta, offs)
    n_changes = 0
    for _it in range(max_newton):
        g = Bm.T @ r / c
        H = H0.copy() if quad else Bm.T @ (loss.curvature(Bm @ theta, y)[:, None] * Bm)
        # the penalty's gradient and curvature in the blocks' null-space coordinates:
        # PN^T (beta u), PN^T (beta / ||p|| (I - u u^T)) PN with p = PN z
        PNs = [b["N"][:npen] for b in blocks]
        px = np.array([PN @ theta[offs[j]:offs[j + 1]] for j, PN in enumerate(PNs)])
        live = np.flatnonzero(np.einsum("ij,ij->i", px, px) > 0)
        _, U, Hn = norm_derivatives(px[live], beta)
        for q, j in enumerate(live):
            sl = slice(offs[j], offs[j + 1])
            g[sl] += beta * (PNs[j].T @ U[q])
            H[sl, sl] += PNs[j].T @ Hn[q] @ PNs[j]
        step = newton_step(H, g, rel_shift=1e-14)
        if step is None:
            step = -np.linalg.lstsq(H, g, rcond=None)[0]
        dec = -float(g @ step)
        if not np.isfinite(dec) or dec <= 1e-15 * max(abs(f), 1e-300):
            if drop_rows and n_changes < max_changes and _release_rows(
                    blocks, theta, offs, r, c, Xa, masks, program.regularizer, make, beta,
                    mult_rtol):
                n_changes += 1
                c0 = float(theta[0]) if nb else 0.0
                Bm, offs, H0, theta = assemble()
                r, f = smooth(Bm, theta)
                f += beta * penalty(theta, offs)
                continue
            break
        # ratio test on the non-binding rows of every block
        if rt_cache[0] is not offs:  # rebuilt once per assembled block set
            rt_cache[:] = [offs, masks[:, [b["i"] for b in blocks]],
                           np.column_stack([b["free"] for b in blocks])]
        tmax, hit = ratio_test(
            Xa, np.column_stack([b["N"] @ theta[offs[j]:offs[j + 1]]
                                 for j, b in enumerate(blocks)]),
            np.column_stack([b["N"] @ step[offs[j]:offs[j + 1]]
                             for j, b in enumerate(blocks)]),
            rt_cache[1], rt_cache[2])

        def trial(t):
            th2 = theta + t * step
            r2, f2 = smooth(Bm, th2)
            return f2 + beta * penalty(th2, offs), (th2, r2)

        acc = backtrack(trial, f, -dec, t=tmax, flat_below=1e-3)
        if acc is None:
            break
        t, f, (theta, r) = acc
        if hit is not None and t == tmax:
            # a block reached a new cone row: it gains it as an equality or, at zero, leaves
            n_changes += 1
            if n_changes > max_changes:
                break
            c0 = float(theta[0]) if nb else 0.0
            for j, b in enumerate(blocks):
                b["x"] = b["N"] @ theta[offs[j]:offs[j + 1]]
                b["z"] = theta[offs[j]:offs[j + 1]].copy()
            j, row = hit
            b = blocks[j]
            new = None
            if np.linalg.norm(b["x"][:npen]) > 1e-9 * smax and b["rows"].size < da - 1:
                new = make(b["i"], b["s"], np.union1d(b["rows"], [row]), b["x"])
            if new is None:
                blocks.pop(j)
                if not blocks:
                    return None
            else:
                blocks[j] = new
            Bm, offs, H0, theta = assemble()
            r, f = smooth(Bm, theta)
            f += beta * penalty(theta, offs)
    c0 = float(theta[0]) if nb else 0.0
    Vn, Wn = np.zeros_like(V), np.zeros_like(W)
    for j, b in enumerate(blocks):
        x = b["N"] @ theta[offs[j]:offs[j + 1]]
        if b["s"] > 0:
            Vn[b["i"]] = x
        else:
            Wn[b["i"]] = x
    return Vn, Wn, c0

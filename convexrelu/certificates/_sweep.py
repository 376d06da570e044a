"""The 2-D angular sweep (one implementation): exact certificates and top-k pricing.

For two features and a free (or no) hidden bias, the dual-constraint functional
(docs/mathematics.rst §4.2, §8.2, §8.5)

.. math::

    M(\\lambda) = \\max_{k}\\ \\max_{\\|u\\| = 1}\\ \\Big|\\sum_i \\lambda_i\\,
        \\big((x_i - p_k)^\\top u\\big)_+\\Big|

is evaluated by sweeping the direction ``u`` around every centre ``p_k`` (the data points
with a bias, the origin without); :func:`convexrelu.certificates._dual.dual_constraint_2d`
takes the best centre, column generation the best few. The active set around a
centre changes only at the ``2n`` angles ``angle(x_i - p_k) +- pi/2``, and **their order
does not depend on** ``lambda``: :class:`SweepPricer` sorts the events once per data set
and every later evaluation is a gather, a cumulative sum and closed-form arc maxima
(no sort, no trigonometry of the events).

:meth:`SweepPricer.top_k` returns the best neuron of each centre, so that many violating
columns can be added per column-generation round.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SweepPricer"]

_TWOPI = 2.0 * np.pi


class SweepPricer:
    """Per-centre maxima of the 2-D dual functional, with the event order precomputed.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 2)
    bias : bool
        Free hidden bias (centres = data points) or no hidden bias (centre = origin).
    chunk : int, default=256
        Centres processed at once (memory ``~ 100 * n * chunk`` bytes per round).

    Notes
    -----
    Precomputation costs one sort of ``2n`` angles per centre (``O(n^2 log n)`` with a
    bias) and stores ``~ 60 n^2`` bytes (60 MB at ``n = 1000``).
    """

    def __init__(self, X: np.ndarray, *, bias: bool, chunk: int = 256) -> None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != 2:
            raise ValueError(f"SweepPricer needs data with two features; got {X.shape}.")
        self.X = X
        self.bias = bool(bias)
        self.centres = X.copy() if bias else np.zeros((1, 2))
        n = X.shape[0]
        self._blocks = []
        for s0 in range(0, self.centres.shape[0], chunk):
            Pk = self.centres[s0:s0 + chunk]
            V = X[None, :, :] - Pk[:, None, :]  # (K, n, 2)
            zero = np.all(V == 0, axis=2)
            V[zero] = 0.0
            phi = np.arctan2(V[..., 1], V[..., 0])
            enter = np.mod(phi - np.pi / 2, _TWOPI)
            leave = np.mod(phi + np.pi / 2, _TWOPI)
            # active just before angle 0, as the events see it: the active arc (enter,
            # enter + pi) wraps past 2 pi exactly when enter > leave (deciding it from the
            # events keeps a point on the vertical through the centre from counting twice)
            act0 = enter > leave
            act0[zero] = False
            E = np.concatenate([enter, leave], axis=1)  # (K, 2n)
            order = np.argsort(E, axis=1, kind="stable")
            E = np.take_along_axis(E, order, axis=1)
            idx = (order % n).astype(np.int32)
            sgn = np.where(order < n, 1.0, -1.0)
            SV = sgn[..., None] * np.take_along_axis(V, idx[..., None].astype(np.intp), axis=1)
            SV[np.take_along_axis(zero, idx.astype(np.intp), axis=1)] = 0.0
            K = Pk.shape[0]
            A = np.concatenate([np.zeros((K, 1)), E], axis=1)  # arc starts
            B = np.concatenate([E, np.full((K, 1), _TWOPI)], axis=1)  # arc ends
            # arcs of length >= pi (degenerate data only) need the angle test
            long_arc = np.nonzero(B - A >= np.pi - 1e-9)
            self._blocks.append(dict(
                s0=s0, Pk=Pk, act0=act0.astype(np.float64), idx=idx,
                SVx=np.ascontiguousarray(SV[..., 0]), SVy=np.ascontiguousarray(SV[..., 1]),
                A=A, B=B, long_arc=long_arc,
                uax=np.cos(A), uay=np.sin(A), ubx=np.cos(B), uby=np.sin(B)))

    # ------------------------------------------------------------------ evaluation
    def per_centre(self, lam: np.ndarray):
        """Best value, direction and sign around every centre.

        Returns ``(values, U, signs)``: ``values[k] = max_{||u||=1} |sum_i lam_i
        ((x_i - p_k)^T u)_+|``, ``U[k]`` the maximising unit direction and ``signs[k]``
        the sign of the sum there.
        """
        lam = np.asarray(lam, dtype=np.float64).ravel()
        nc = self.centres.shape[0]
        values = np.full(nc, -np.inf)
        U = np.zeros((nc, 2))
        signs = np.ones(nc, dtype=int)
        LX = lam[:, None] * self.X
        for blk in self._blocks:
            Pk, s0 = blk["Pk"], blk["s0"]
            K = Pk.shape[0]
            act0 = blk["act0"]
            # w0[k] = sum_i act0[k, i] lam_i (x_i - p_k), then running sums over events
            w0 = act0 @ LX - (act0 @ lam)[:, None] * Pk
            lg = lam[blk["idx"]]
            Wx = np.empty((K, lg.shape[1] + 1))
            Wy = np.empty_like(Wx)
            Wx[:, 0], Wy[:, 0] = w0[:, 0], w0[:, 1]
            np.cumsum(lg * blk["SVx"], axis=1, out=Wx[:, 1:])
            np.cumsum(lg * blk["SVy"], axis=1, out=Wy[:, 1:])
            Wx[:, 1:] += w0[:, :1]
            Wy[:, 1:] += w0[:, 1:]
            uax, uay, ubx, uby = blk["uax"], blk["uay"], blk["ubx"], blk["uby"]
            nw = np.sqrt(Wx * Wx + Wy * Wy)
            ea = Wx * uax + Wy * uay
            eb = Wx * ubx + Wy * uby
            # w inside the arc (ua, ub) (length < pi): cross(ua, w) >= 0 >= cross(ub, w)
            ca = uax * Wy - uay * Wx
            cb = Wx * uby - Wy * ubx
            ins_p = (ca >= 0) & (cb >= 0)
            ins_m = (ca <= 0) & (cb <= 0)
            la = blk["long_arc"]
            if la[0].size:
                psi = np.mod(np.arctan2(Wy[la], Wx[la]), _TWOPI)
                A, B = blk["A"][la], blk["B"][la]
                ins_p[la] = (psi >= A) & (psi <= B)
                psm = np.mod(psi + np.pi, _TWOPI)
                ins_m[la] = (psm >= A) & (psm <= B)
            rows = np.arange(K)
            for sgn, inside in ((1, ins_p), (-1, ins_m)):
                val = np.where(inside, nw, np.maximum(sgn * ea, sgn * eb))
                j = np.argmax(val, axis=1)
                v = val[rows, j]
                better = v > values[s0:s0 + K]
                if not np.any(better):
                    continue
                kk = rows[better]
                jj = j[better]
                ins = inside[kk, jj] & (nw[kk, jj] > 0)
                w = np.stack([Wx[kk, jj], Wy[kk, jj]], axis=1)
                u_in = sgn * w / np.where(nw[kk, jj] > 0, nw[kk, jj], 1.0)[:, None]
                use_a = (sgn * ea[kk, jj]) >= (sgn * eb[kk, jj])
                u_end = np.where(use_a[:, None],
                                 np.stack([uax[kk, jj], uay[kk, jj]], axis=1),
                                 np.stack([ubx[kk, jj], uby[kk, jj]], axis=1))
                values[s0 + kk] = v[better]
                U[s0 + kk] = np.where(ins[:, None], u_in, u_end)
                signs[s0 + kk] = sgn
        return values, U, signs

    def top_k(self, lam: np.ndarray, k: int, threshold: float = -np.inf):
        """``(M, candidates)``: ``M`` over all centres (and, with a bias, the all-active
        cell) and up to ``k`` candidates ``(value, x)`` with ``value > threshold``, best
        first; ``x = (u, b)`` is the neuron (``b = -p^T u`` through its centre)."""
        values, U, signs = self.per_centre(lam)
        cands = []
        if self.bias:
            tot = float(np.linalg.norm(self.X.T @ lam))  # the all-active cell, b -> +inf
            if tot > 0:
                u = self.X.T @ lam / tot
                cands.append((tot, np.array([u[0], u[1], 1.0 - float(np.min(self.X @ u))])))
        M = max([float(np.max(values, initial=0.0))] + [c[0] for c in cands])
        order = np.argsort(-values, kind="stable")
        for c in order[:k]:
            if values[c] <= threshold:
                break
            u = U[c]
            x = np.array([u[0], u[1], -float(self.centres[c] @ u)]) if self.bias else u.copy()
            cands.append((float(values[c]), x))
        cands = [c for c in cands if c[0] > threshold]
        cands.sort(key=lambda c: -c[0])
        return M, cands[:max(int(k), 1)]

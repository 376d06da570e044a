"""FISTA for the gated-ReLU group lasso (and the shared accelerated proximal-gradient core).

The gated program (docs/mathematics.rst §3.4, sum-reduced, ``beta = alpha``) over augmented data
``Xa = [X, 1]`` (or ``X``), masks ``D_i`` and an optional free output bias ``c0``:

.. math::

    \\min_{W \\in \\mathbb R^{P\\times d_{\\rm aug}},\\ c_0}\\
        \\ell\\Big(\\sum_{i=1}^P D_i\\tilde X w_i + c_0\\,\\mathbf 1;\\ y\\Big)
        + \\beta\\sum_{i=1}^P\\|w_i\\|_{\\rm pen}

where ``||.||_pen`` is the full block norm, or the norm of the first ``d`` coordinates
when the hidden bias is not penalised (docs/mathematics.rst §8.2).

Algorithm: FISTA (Beck & Teboulle 2009) with

* a backtracking line search on the Lipschitz constant ``L`` (start from the exact
  global constant ``lip(l) * lambda_max((Xa Xa^T) o (S S^T) [+ 1 1^T])`` computed once,
  which the squared loss never has to leave; for the logistic loss ``L`` is first
  decreased by a factor 0.8 at every iteration and doubled until the sufficient-decrease
  condition holds, so the local curvature is used);
* adaptive (function-value) restart of the momentum (O'Donoghue & Candès 2015);
* prox = group soft-thresholding ``w <- (1 - t beta / ||w||)_+ w`` (on the penalised
  coordinates only);
* stopping on the relative duality gap (celer's rule), computed every ``check_every``
  iterations by :mod:`convexrelu.certificates._gap`.

Cost per iteration: **one forward and one adjoint product**, both plain GEMMs with small
outputs: ``z = rowsum(Xa * (S @ W))`` and ``grad = S^T (g * Xa)`` (no ``n x P`` temporary,
no loop over patterns). The objective is seen through the linear map ``W -> z``, so the
predictions at the extrapolated point are the same combination of the iterates'
predictions and the line-search value at the new iterate reuses its forward product.
Gap checks (every ``check_every`` iterations) add one adjoint product each, two with dual
extrapolation (Massias, Gramfort & Salmon 2018).

Active-set Newton polish (``polish``, on by default in float64): the residual-based
dual point certifies only about the square root of the primal accuracy, so FISTA alone
needs ~18,000 iterations for a relative gap of 1e-6 on diabetes (P=500) although the
objective is accurate to 1e-6 after ~7,000. FISTA therefore stops at a loose gap
(``polish_tol``, 2e-2) and :func:`newton_polish` takes over: damped Newton steps on the
support (smooth there), blocks whose step crosses the origin are dropped, inactive blocks
violating the dual constraint are added, and the duality gap over **all** patterns is
evaluated after every step (stopping on it, never on a gradient norm); when the polish
does not certify, FISTA resumes from the polished point. With more variables than
samples the Newton system is reduced to sample space by eliminating the tangential
directions (Schur complement; with the Khatri-Rao structure of the columns
``O(n^2 (m + d))`` per step). Measured (``benchmarks/bench_solvers.py --time-limit 90
--skip-relu``, one BLAS thread, loaded 2-core machine): to a certified relative gap of
1e-6, diabetes with bias 3.8 s (FISTA alone ~44 s in an earlier run; scnn R-FISTA at
tol 1e-10 29 s and not certified below 1.5e-3; cvxpy + Clarabel 11 s), breast_cancer
6.9 s (scnn 55 s, cvxpy 58 s).

Backends: the core loop is written against :class:`ArrayBackend` (numpy, or torch on the
CPU or a CUDA device; torch is imported only when asked for). The certificate's scalar
work stays on the host in float64.

Several outputs (``solve_gated_fista_multi``): ``c`` independent programs over the
same patterns (docs/mathematics.rst §3.7; one-vs-rest, multi-output regression) share one
loop whose forward ``rowsum_d((S @ B) o Xa)`` and adjoint ``S^T (G o Xa)`` are single
GEMMs with ``c * d_aug`` columns; step, momentum, restart, certificate and polish are per
output, and a certified output leaves the loop.

Measured (diabetes standardised, hidden bias, P=500 gates, alpha=0.442, one BLAS thread,
on a shared 2-core machine with a load of ~6, so times are indicative): relative gap
1e-6 after ~18,000 iterations in both the previous and the present version (the certified
gap lags the primal: suboptimality 1e-6 is reached after ~7,000 iterations but the
residual-based dual point only certifies ~sqrt of it); per iteration 2.4 ms now against
7.4 ms before (three products per iteration and ``n x P`` temporaries). Dual
extrapolation of the predictions did not shorten this run (FISTA's momentum breaks the
linear-recurrence assumption); it is kept because it costs one product per check.

References
----------
A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear
inverse problems", SIAM J. Imaging Sci., 2009.
B. O'Donoghue and E. Candès, "Adaptive restart for accelerated gradient schemes",
Found. Comput. Math., 2015.
M. Massias, A. Gramfort and J. Salmon, "Celer: a fast solver for the Lasso with dual
extrapolation", ICML 2018.
A. Mishkin, A. Sahiner and M. Pilanci, "Fast convex optimization for two-layer ReLU
networks: equivalent model classes and cone decompositions", ICML 2022.
"""

from __future__ import annotations

import hashlib
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from .._warnings import muted_convergence, warn_convergence
from .._newton import (_MIXED_MAX_CORRECTION, _MIXED_MIN_ORDER, backtrack, boundary_steps,
                       damped_cholesky, newton_step, norm_derivatives, spd_solver,
                       work_buffer)
from ..certificates._gap import (dual_point, gated_duality_gap, pattern_correlations,
                                 predict, range_basis)
from ..regularizers import GroupL2Penalty
from ._base import BaseSolver, _implements
from ._gated_barrier import BARRIER_MAX_ALPHA_RATIO, DualBarrier, barrier_applies

__all__ = ["ArrayBackend", "FastResult", "FistaSolver", "fista_core", "get_backend",
           "lipschitz_bound", "solve_gated_fista", "solve_gated_fista_multi"]


@dataclass
class FastResult:
    """Outcome of a first-order solve (sum-reduced quantities).

    Attributes
    ----------
    B : ndarray of shape (n_blocks, d_aug)
        The blocks (gated: ``W``; relu: ``[V; W]`` stacked).
    output_bias : float
    objective : float
        Sum-reduced primal objective at the returned point.
    gap : float
        Certified duality gap at the returned point (over the pattern set given).
    dual : ndarray of shape (n_samples,)
        Unscaled dual point ``-grad l(y_hat)`` at the returned point (``output_bias``
        re-fitted when free), the convention of ``ConvexSolution.dual``.
    dual_value : float
    n_iter : int
    converged : bool
    history : list of tuple
        ``(iteration, seconds, primal, gap)`` at every gap evaluation.
    time : float
    """

    B: np.ndarray
    output_bias: float
    objective: float
    gap: float
    dual: np.ndarray
    dual_value: float
    n_iter: int
    converged: bool
    history: list = field(default_factory=list)
    time: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def rel_gap(self) -> float:
        return self.gap / max(abs(self.objective), np.finfo(float).tiny)


# ---------------------------------------------------------------------- array backends
_TORCH_HINT = ("backend='torch' needs PyTorch, which is not installed. Install it with "
               "`pip install torch` (CPU wheels: `pip install torch --index-url "
               "https://download.pytorch.org/whl/cpu`), or use backend='numpy'.")


def _import_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_TORCH_HINT) from exc
    return torch


class ArrayBackend:
    """The few array operations of the first-order solvers' core loops, for numpy or torch.

    The solvers are written once against this namespace; arrays are ``numpy.ndarray`` for
    ``"numpy"`` and ``torch.Tensor`` (on ``device``) for ``"torch"``. Only the core loop
    (forward / adjoint products, loss, prox) runs on the backend; the certificate's
    scalar work (output-bias fit, dual scaling) is done on the host in float64.
    torch is imported only when ``name == "torch"``.

    Parameters
    ----------
    name : {"numpy", "torch"}
    device : str or torch.device, optional
        torch only (``"cpu"``, ``"cuda"``, ``"cuda:1"``...); ``None`` means CPU.
    dtype : float64 (default) or float32
    """

    def __init__(self, name: str = "numpy", device=None, dtype=np.float64) -> None:
        if name not in ("numpy", "torch"):
            raise ValueError(f"backend must be 'numpy' or 'torch'; got {name!r}.")
        self.name = name
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64; got {self.dtype}.")
        if name == "numpy":
            if device not in (None, "cpu"):
                raise ValueError(f"device={device!r} needs backend='torch'; the numpy "
                                 "backend runs on the CPU only.")
            self.device = "cpu"
            self._t = None
        else:
            torch = _import_torch()
            self._t = torch
            self.device = torch.device("cpu" if device is None else device)
            if self.device.type == "cuda" and not torch.cuda.is_available():
                raise ValueError(f"device={device!r} but torch.cuda.is_available() is "
                                 "False; use device='cpu'.")
            self.tdtype = torch.float64 if self.dtype == np.float64 else torch.float32

    # conversions
    def asarray(self, a, dtype=None):
        dt = self.dtype if dtype is None else np.dtype(dtype)
        if self._t is None:
            return np.ascontiguousarray(a, dtype=dt)
        t = self._t
        tdt = t.float64 if dt == np.float64 else t.float32
        if isinstance(a, t.Tensor):
            return a.to(device=self.device, dtype=tdt)
        return t.as_tensor(np.ascontiguousarray(a), dtype=tdt, device=self.device)

    def to_numpy(self, a, dtype=np.float64) -> np.ndarray:
        if self._t is not None:
            a = a.detach().cpu().numpy()
        return np.asarray(a, dtype=dtype)

    def zeros(self, shape):
        if self._t is None:
            return np.zeros(shape, self.dtype)
        return self._t.zeros(shape, dtype=self.tdtype, device=self.device)

    def copy(self, a):
        return a.copy() if self._t is None else a.clone()

    # reductions (return Python floats)
    def vdot(self, a, b) -> float:
        if self._t is None:
            return float(np.vdot(a, b))
        return float((a * b).sum())

    def total(self, a) -> float:
        return float(a.sum())

    def row_norms(self, a):
        if self._t is None:
            return np.sqrt(np.einsum("ij,ij->i", a, a))
        return self._t.linalg.vector_norm(a, dim=1)

    def relu(self, a):
        return np.maximum(a, 0) if self._t is None else self._t.clamp_min(a, 0)

    def relu_(self, a):
        """``max(a, 0)`` in place (returns ``a``)."""
        return np.maximum(a, 0.0, out=a) if self._t is None else a.clamp_(min=0.0)

    def rowdot(self, a, b):
        """``(a * b).sum(1)`` without the temporary in numpy."""
        if self._t is None:
            return np.einsum("ij,ij->i", a, b)
        return (a * b).sum(1)

    def coldot(self, a, b):
        """``(a * b).sum(0)`` without the temporary in numpy."""
        if self._t is None:
            return np.einsum("ij,ij->j", a, b)
        return (a * b).sum(0)

    def vstack(self, arrays):
        return np.vstack(arrays) if self._t is None else self._t.cat(list(arrays))

    # indices (host integer arrays in, host integer arrays out)
    def index(self, idx):
        """Host integer indices as an index of this backend's arrays (a torch tensor on
        the device for torch)."""
        if self._t is None:
            return idx
        return self._t.as_tensor(np.asarray(idx), dtype=self._t.long, device=self.device)

    def nonzero_rows(self, a) -> np.ndarray:
        """The sorted host indices of the rows of ``a`` with a nonzero entry."""
        if self._t is None:
            return np.flatnonzero(np.any(a != 0, axis=1))
        return self._t.nonzero((a != 0).any(1)).flatten().cpu().numpy()

    def group_shrink(self, B, thresh: float, regularizer: GroupL2Penalty):
        """The regulariser's prox on the backend: group soft-thresholding
        ``(1 - thresh / ||b_pen||)_+ b_pen`` of every row (free coordinates unchanged)."""
        Bp = regularizer.penalized(B)
        nrm = self.row_norms(Bp)
        # rows at or below the threshold divide by it (factor 0): thresh / tiny overflowed
        # (a RuntimeWarning on a class of one sample), though the factor was right
        floor = max(float(thresh), float(np.finfo(self.dtype).tiny))
        if self._t is None:
            fac = np.maximum(1.0 - thresh / np.maximum(nrm, floor), 0.0).astype(self.dtype)
        else:
            fac = self._t.clamp_min(1.0 - thresh / self._t.clamp_min(nrm, floor), 0.0)
        if not regularizer.free:
            return B * fac[:, None]
        out = self.copy(B)
        regularizer.penalized(out)[...] = Bp * fac[:, None]
        return out

    def loss_ops(self, loss, y: np.ndarray):
        """``(value(z) -> float, value_grad(z) -> (float, grad))`` of a sum-reduced loss.

        A quadratic loss runs on the backend in closed form; on torch any loss with a
        ``torch_value`` runs there with autograd; otherwise the loss's numpy methods are
        used (an ``n``-vector round trip per call on torch).
        """
        yb = self.asarray(y)
        curv = loss.constant_curvature(y)
        if curv is not None:  # a quadratic loss: h/2 ||z - y||^2 on the backend
            h = float(curv)

            def value(z):
                r = z - yb
                return 0.5 * h * self.vdot(r, r)

            def value_grad(z):
                r = z - yb
                return 0.5 * h * self.vdot(r, r), h * r
            return value, value_grad
        if self._t is not None and _implements(loss, "torch_value"):
            torch = self._t

            def value(z):
                with torch.no_grad():
                    return float(loss.torch_value(z, yb))

            def value_grad(z):
                zz = z.detach().requires_grad_(True)
                with torch.enable_grad():
                    v = loss.torch_value(zz, yb)
                    (g,) = torch.autograd.grad(v, zz)
                return float(v.detach()), g.detach()
            return value, value_grad

        def value(z):
            return float(loss.value(self.to_numpy(z), y))

        def value_grad(z):
            zn = self.to_numpy(z)
            return float(loss.value(zn, y)), self.asarray(loss.gradient(zn, y))
        return value, value_grad


def get_backend(backend="numpy", device=None, dtype=np.float64) -> ArrayBackend:
    """An :class:`ArrayBackend` from a name (or pass one through)."""
    if isinstance(backend, ArrayBackend):
        return backend
    return ArrayBackend(backend, device=device, dtype=dtype)


_LIPSCHITZ_CACHE: dict = {}


_LIPSCHITZ_DENSE_N = 3000  # lipschitz_bound is accurate to ~1e-12 up to this many samples


def lipschitz_bound(Xa: np.ndarray, S: np.ndarray, *, output_bias: bool,
                    xp: Optional["ArrayBackend"] = None) -> float:
    """``lambda_max`` of ``(Xa Xa^T) o (S S^T) (+ 1 1^T)``: ``||A||^2`` of the linear map
    ``(B, c0) -> sum_i S_i Xa b_i + c0 1``.

    Exact (``eigvalsh``) for ``n_samples <= 400``, Lanczos (ARPACK) to 1e-12 on the
    operator up to 3000 (inflated by 1e-9); otherwise ARPACK on the operator, inflated
    by 1 %% (the line search repairs any remaining underestimate), or, with a torch
    backend ``xp`` (e.g. on a GPU), power iterations on that device, inflated by 1 %%
    (the host would otherwise do ``O(n P d)`` work per product). Cached for the last 8
    ``(Xa, S)``.
    """
    Xa = np.ascontiguousarray(Xa, dtype=np.float64)
    S = np.asarray(S)
    if not (S.dtype == bool or np.issubdtype(S.dtype, np.number)):
        S = S.astype(np.float64)
    n = Xa.shape[0]
    # one-vs-rest fits and regularisation paths ask again for the same (Xa, S); hashed in
    # place (no copy of the masks: 800 MB at n = 10^6, P = 100), a Fortran-ordered S (as
    # the solvers pass the masks) through its C-ordered transpose: its copy took 0.3 s
    # of every gated solve at n = 10^5, P = 100 (float64 masks), even on a cache hit
    fortran = bool(S.flags.f_contiguous and not S.flags.c_contiguous)
    Sb = S.T if fortran else np.ascontiguousarray(S)
    digest = hashlib.blake2b(digest_size=16)
    for a in (Xa, Sb):
        digest.update(a.reshape(-1).view(np.uint8) if a.size else b"")
    key = (digest.hexdigest(), str(S.dtype), Xa.shape, S.shape, fortran,
           bool(output_bias))
    if key in _LIPSCHITZ_CACHE:
        return _LIPSCHITZ_CACHE[key]
    S = np.asarray(S, dtype=np.float64)

    def keep(val: float) -> float:
        if len(_LIPSCHITZ_CACHE) >= 8:
            _LIPSCHITZ_CACHE.pop(next(iter(_LIPSCHITZ_CACHE)))
        _LIPSCHITZ_CACHE[key] = val
        return val

    if n <= 400:
        K = (Xa @ Xa.T) * (S @ S.T)
        if output_bias:
            K += 1.0
        return keep(float(np.linalg.eigvalsh(K)[-1]))
    if xp is not None and xp._t is not None and n > _LIPSCHITZ_DENSE_N:
        return keep(_power_lipschitz(xp, Xa, S, output_bias))
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    def mv(x):
        x = np.ravel(x)
        out = predict(Xa, S, S.T @ (x[:, None] * Xa))  # no n x P temporary
        return out + x.sum() if output_bias else out

    op = LinearOperator((n, n), matvec=mv, dtype=np.float64)
    if n <= _LIPSCHITZ_DENSE_N:
        # Lanczos to ~1e-12 relative on the operator: the n x n matrix is never formed
        # (digits, n = 1,797: 21 products, 0.03 s, against 0.39 s for a first solve that
        # formed it, most of that the page faults of three fresh n x n arrays)
        val = float(eigsh(op, k=1, which="LA", tol=1e-12, return_eigenvectors=False)[0])
        return keep(val * (1.0 + 1e-9))
    try:
        # a short Lanczos basis: make_regression(100000, 20), P = 100, 7 products
        # instead of 21 (ARPACK's default basis of 20), the value within 1e-7 relative;
        # the 1 % inflation and the line search cover the rest. At n = 10^6 the default
        # took a quarter of the gated solve
        val = eigsh(op, k=1, which="LA", tol=1e-4, ncv=6, return_eigenvectors=False)[0]
    except ArpackNoConvergence:  # pragma: no cover - clustered top eigenvalues
        val = eigsh(op, k=1, which="LA", tol=1e-6, return_eigenvectors=False)[0]
    return 1.01 * float(val)


def _power_lipschitz(xp: "ArrayBackend", Xa: np.ndarray, S: np.ndarray, output_bias: bool,
                     max_iter: int = 1000, rtol: float = 1e-7) -> float:
    """``lambda_max`` of the operator of :func:`lipschitz_bound` by power iterations on the
    torch device of ``xp`` (float64), inflated by 1 %%."""
    torch = xp._t
    Xd = torch.as_tensor(Xa, dtype=torch.float64, device=xp.device)
    Sd = torch.as_tensor(S, dtype=torch.float64, device=xp.device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    v = torch.randn(Xa.shape[0], generator=gen, dtype=torch.float64).to(xp.device)
    v /= torch.linalg.vector_norm(v)
    theta = 0.0
    for _ in range(max_iter):
        w = (Xd * (Sd @ (Sd.T @ (v[:, None] * Xd)))).sum(1)
        if output_bias:
            w = w + v.sum()
        new = float(v @ w)
        nrm = torch.linalg.vector_norm(w)
        if float(nrm) == 0.0:
            break
        v = w / nrm
        if abs(new - theta) <= rtol * abs(new):
            theta = new
            break
        theta = new
    return 1.01 * max(theta, 0.0)


def fista_core(
    *,
    forward: Callable,
    adjoint: Callable,
    fgrad: Callable,
    fval: Callable,
    prox: Callable,
    penalty: Callable,
    gap_fn: Optional[Callable],
    xp: ArrayBackend,
    B0,
    c0: float,
    output_bias: bool,
    L_max: float,
    tol: float,
    max_iter: int,
    check_every: int,
    shrink_L: float,
    L0: Optional[float] = None,
    inner_tol: float = 0.0,
    time_limit: Optional[float] = None,
    verbose: int = 0,
) -> FastResult:
    """Accelerated proximal gradient on ``(B, c0)`` for ``f(forward(B), c0) + penalty(B)``.

    The smooth part is seen through a **linear** map ``forward(B)`` (the predictions, or
    ``Xa @ B.T`` for the augmented Lagrangian): ``fgrad(state, c) -> (f, G, grad_c)``
    with ``grad_B = adjoint(G)``, ``fval(state, c) -> f``. By linearity the state of the
    extrapolated point is the same combination of the states of the iterates, so an
    iteration costs **one forward and one adjoint product** (plus one forward per
    rejected line-search step). ``prox(Z, step)`` is the prox of ``step * h``; ``c0`` is
    free (a plain gradient step).

    With ``gap_fn(B, c, state)`` (a :class:`DualGap`) it stops when
    ``gap <= tol * |primal|``, the gap using the best dual value seen so far (each one is
    a valid lower bound); without it, it runs ``max_iter`` iterations or stops once the
    gradient-mapping norm ``L ||x_new - y||`` is at most ``inner_tol``, and returns the
    last iterate. ``time_limit`` (seconds) stops the loop early (benchmarks).
    """
    t_start = time.perf_counter()
    x_B = xp.copy(B0)
    x_c = float(c0) if output_bias else 0.0
    x_s = forward(x_B)
    yB, yc, y_s = x_B, x_c, x_s
    t = 1.0
    L = float(L_max if L0 is None else min(L0, L_max))
    F_prev = fval(x_s, x_c) + penalty(x_B)
    history: list = []
    best: Optional[tuple] = None  # (B, c, DualGap)
    best_dual = -np.inf
    converged = False
    k = 0
    slack = 1e-12 if xp.dtype == np.float64 else 1e-6
    for k in range(1, max_iter + 1):
        f_y, G, grad_c = fgrad(y_s, yc)
        grad_B = adjoint(G)
        if not output_bias:
            grad_c = 0.0
        if shrink_L < 1.0:
            L = L * shrink_L
        while True:
            nB = prox(yB - grad_B * (1.0 / L), 1.0 / L)
            nc = yc - grad_c / L
            n_s = forward(nB)
            dB = nB - yB
            dc = nc - yc
            if L >= L_max:  # the global constant: sufficient decrease is guaranteed
                f_n = fval(n_s, nc)
                break
            f_n = fval(n_s, nc)
            lin = xp.vdot(grad_B, dB) + grad_c * dc
            quad = 0.5 * L * (xp.vdot(dB, dB) + dc * dc)
            if f_n <= f_y + lin + quad + slack * max(1.0, abs(f_y)):
                break
            L = min(2.0 * L, L_max)
        F_new = f_n + penalty(nB)
        if F_new > F_prev:  # adaptive restart: drop the momentum
            t = 1.0
            yB, yc, y_s = nB, nc, n_s
        else:
            # (Python floats: a numpy float64 momentum would promote float32 iterates,
            # and then every product, to float64)
            t_new = 0.5 * (1.0 + float(np.sqrt(1.0 + 4.0 * t * t)))
            mom = (t - 1.0) / t_new
            yB = nB + (nB - x_B) * mom
            yc = nc + mom * (nc - x_c)
            y_s = n_s + (n_s - x_s) * mom
            t = t_new
        x_B, x_c, x_s, F_prev = nB, nc, n_s, F_new
        if gap_fn is None and inner_tol > 0.0:
            if L * np.sqrt(xp.vdot(dB, dB) + dc * dc) <= inner_tol:
                break
        out_of_time = time_limit is not None and time.perf_counter() - t_start > time_limit
        if gap_fn is not None and (k % check_every == 0 or k == max_iter or out_of_time):
            dg = gap_fn(x_B, x_c, x_s)
            best_dual = max(best_dual, dg.dual)
            gap = dg.primal - best_dual
            history.append((k, time.perf_counter() - t_start, dg.primal, gap))
            if verbose:
                print(f"iter {k:6d}  primal {dg.primal:.10e}  gap {gap:.3e}  L {L:.3e}")
            if best is None or dg.primal <= best[2].primal:
                best = (x_B, x_c, dg)
            if gap <= tol * abs(dg.primal):
                converged = True
                break
        if out_of_time:
            break
    if best is None:
        return FastResult(B=xp.to_numpy(x_B, xp.dtype), output_bias=x_c, objective=F_prev,
                          gap=float("nan"), dual=np.zeros(0), dual_value=float("nan"),
                          n_iter=k, converged=False, history=history,
                          time=time.perf_counter() - t_start,
                          info={"L": L, "B_backend": x_B})
    B, c, dg = best
    gap = dg.primal - best_dual
    return FastResult(
        B=xp.to_numpy(B, xp.dtype), output_bias=float(c) if output_bias else 0.0,
        objective=dg.primal, gap=float(gap), dual=dg.lam, dual_value=best_dual, n_iter=k,
        converged=converged, history=history, time=time.perf_counter() - t_start,
        info={"L": L, "L_max": L_max},
    )


def _check_inputs(loss, Xa, masks, y, beta, tol, max_iter, dtype):
    from ..losses import get_loss

    loss = get_loss(loss)
    if not loss.smooth:
        raise ValueError(
            f"the {loss.name} loss is not smooth; the first-order solvers need a "
            "differentiable loss (squared, huber, logistic). Use the cvxpy solver instead."
        )
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64; got {dtype}.")
    Xa = np.ascontiguousarray(Xa, dtype=dtype)
    masks = np.asarray(masks)
    if masks.ndim != 2 or masks.shape[0] != Xa.shape[0]:
        raise ValueError(
            f"masks must have shape (n_samples, n_patterns) = ({Xa.shape[0]}, P); got "
            f"{masks.shape}."
        )
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.shape[0] != Xa.shape[0]:
        raise ValueError(
            f"y must have shape (n_samples,) = ({Xa.shape[0]},); got {y.shape}. The "
            "first-order solvers handle one output."
        )
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"alpha (beta) must be a float in the range (0.0, inf); got {beta}.")
    if not (tol > 0):
        raise ValueError(f"tol must be a float in the range (0.0, inf); got {tol}.")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be an int >= 1; got {max_iter}.")
    return loss, Xa, masks.astype(dtype), y, dtype


def _warn_not_converged(name: str, res: FastResult, tol: float, max_iter: int) -> None:
    warn_convergence(
        f"{name} did not reach the relative duality gap tol={tol:g} in max_iter={max_iter} "
        f"iterations (relative gap {res.rel_gap:.3g}). Increase max_iter, loosen tol, or "
        "standardise X (poorly scaled features slow first-order methods).",
        stacklevel=3,
    )


def _extrapolate(seq: list) -> Optional[np.ndarray]:
    """Anderson / dual extrapolation (Massias, Gramfort & Salmon 2018) of the last
    ``K + 1`` vectors of a sequence: ``sum_k c_k r_k`` with ``c = (U^T U)^{-1} 1 / ...``,
    ``U`` the successive differences; ``None`` if the system is singular."""
    R = np.asarray(seq)  # (K + 1, n)
    U = np.diff(R, axis=0)
    UU = U @ U.T
    try:
        z = np.linalg.solve(UU, np.ones(UU.shape[0]))
    except np.linalg.LinAlgError:
        return None
    s = z.sum()
    if not np.isfinite(s) or s == 0:
        return None
    c = z / s
    return c @ R[1:]


def _check_regularizer(regularizer: Optional[GroupL2Penalty], d_aug: int) -> GroupL2Penalty:
    """``regularizer`` (every coordinate penalised when None), checked against ``d_aug``."""
    reg = GroupL2Penalty(d_aug) if regularizer is None else regularizer
    if reg.d_aug != d_aug:
        raise ValueError(f"regularizer is for blocks of length {reg.d_aug} but Xa has {d_aug} "
                         "columns; pass the program's own (program.regularizer) or "
                         f"GroupL2Penalty({d_aug}, free_bias=...).")
    return reg


def solve_gated_fista(
    loss,
    Xa: np.ndarray,
    masks: np.ndarray,
    y: np.ndarray,
    beta: float,
    *,
    output_bias: bool = False,
    regularizer: Optional[GroupL2Penalty] = None,
    tol: float = 1e-6,
    max_iter: int = 10000,
    check_every: int = 10,
    W0: Optional[np.ndarray] = None,
    c0: float = 0.0,
    dtype=np.float64,
    backend="numpy",
    device=None,
    extrapolate: int = 5,
    time_limit: Optional[float] = None,
    polish="auto",
    polish_tol: float = 2e-2,
    polish_max_vars: int = 6000,
    method: str = "auto",
    verbose: int = 0,
) -> FastResult:
    """Solve the gated-ReLU group lasso by FISTA (or the dual barrier) to relative
    duality gap ``tol``.

    Parameters
    ----------
    loss : {"squared", "logistic"} or Loss
        A smooth sum-reduced loss.
    Xa : ndarray of shape (n_samples, d_aug)
        Augmented data (``[X, 1]`` with a hidden bias).
    masks : ndarray of shape (n_samples, n_patterns), bool
    y : ndarray of shape (n_samples,)
        Targets in the loss's encoding.
    beta : float
        ``alpha`` (sum-reduced penalty weight).
    output_bias : bool
        Add a free (unpenalised) output bias.
    regularizer : GroupL2Penalty, optional
        The group penalty of a block (e.g. ``program.regularizer``; a free hidden bias is
        left unpenalised); default: the whole block is penalised.
    tol : float
        Relative duality-gap tolerance: stop when ``gap <= tol * |primal|``.
    max_iter, check_every : int
        Iteration cap (FISTA iterations and the barrier's Newton steps together) and
        gap-evaluation period.
    W0, c0 : warm start.
    dtype : float64 (default) or float32.
    backend : {"numpy", "torch"} or ArrayBackend
        Array library of the iterations; ``device`` (torch only) e.g. ``"cuda"``.
    extrapolate : int
        Also try the dual point extrapolated from the last ``extrapolate + 1``
        predictions at every gap check (0 disables it).
    time_limit : float, optional
        Stop after this many seconds (benchmarks; a ConvergenceWarning is issued).
    polish : bool or "auto"
        Active-set Newton polish (:func:`newton_polish`): FISTA runs to the relative gap
        ``max(tol, polish_tol)``, then Newton's method on the support (blocks with a
        nonzero penalised part), adding inactive blocks that violate the dual constraint,
        until the duality gap over **all** patterns is ``<= tol``; if it is not reached,
        FISTA continues from the polished point to a 10x smaller gap and polishes again.
        ``"auto"``: on for float64 and the squared / logistic losses.
    polish_tol : float
        Relative gap at which FISTA hands over to the polish.
    polish_max_vars : int
        Largest restricted problem (variables) the dense Newton polish accepts.
    method : {"auto", "fista", "barrier"}
        ``"barrier"``: the dual log-barrier Newton method
        (:class:`~convexrelu.solvers._gated_barrier.DualBarrier`) to a relative gap of
        ``max(10 tol, 1e-4)``, then the polish on the blocks whose dual constraint is
        nearly tight (again from a 100x smaller barrier gap if the polish does not
        certify); FISTA takes over only if that fails. It starts from ``lambda = 0``:
        ``W0`` and ``c0`` are not used. It needs a quadratic loss and every
        block coordinate penalised, float64 on the numpy backend. ``"auto"`` takes it
        for such programs with at most 1,000 samples, at least as many block coordinates
        as samples, ``beta`` at most 3 % of the smallest ``beta`` whose optimum is zero (many active
        blocks: FISTA is faster with few), the polish on and no warm start (an interior
        point cannot use one); FISTA otherwise.

    Returns
    -------
    FastResult
        ``B`` is ``W`` of shape (n_patterns, d_aug); ``info["polish"]`` summarises the
        polish (rounds, Newton steps, seconds); ``info["method"]`` is ``"fista"`` or
        ``"barrier"`` (``info["barrier"]``: its Newton steps).

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` (or ``time_limit``) is reached before the gap tolerance.
    """
    loss, Xa, S, y, dtype = _check_inputs(loss, Xa, masks, y, beta, tol, max_iter, dtype)
    xp = get_backend(backend, device, dtype)
    P, d_aug = S.shape[1], Xa.shape[1]
    reg = _check_regularizer(regularizer, d_aug)
    L_max = None  # computed when FISTA first runs (the barrier does not need it)
    basis = range_basis(np.asarray(S, np.float64), output_bias=True) if reg.free else None
    Xd, Sd = xp.asarray(Xa), xp.asarray(S)
    # the certificate's correlations in float64 even for float32 iterations
    X64, S64 = (Xd, Sd) if dtype == np.float64 else (xp.asarray(Xa, np.float64),
                                                     xp.asarray(S, np.float64))

    def fista_ops(xb, Xb, Sb) -> dict:
        """FISTA's operators on backend ``xb`` (its dtype) with the data ``Xb``, ``Sb``."""
        fval_z, fvg_z = xb.loss_ops(loss, y)

        def forward(B):  # predictions sum_i D_i Xa b_i = rowsum(Xa * (S @ B)): one GEMM
            return xb.rowdot(Xb, Sb @ B)

        def adjoint(g):  # rows Xa^T D_i g = S^T (g * Xa): one GEMM, no n x P temporary
            return Sb.T @ (g[:, None] * Xb)

        # (the output bias as a Python float: a numpy float64 scalar would promote a
        # float32 z, and then every product, to float64: the masks copied per product)
        def fgrad(z, c):
            f, g = fvg_z(z + float(c) if output_bias else z)
            return f, g, (xb.total(g) if output_bias else 0.0)

        def fval(z, c):
            return fval_z(z + float(c) if output_bias else z)

        def prox(Z, step):
            return xb.group_shrink(Z, beta * step, reg)

        def penalty(B):
            return beta * xb.total(xb.row_norms(reg.penalized(B)))
        return dict(forward=forward, adjoint=adjoint, fgrad=fgrad, fval=fval, prox=prox,
                    penalty=penalty)

    ops = fista_ops(xp, Xd, Sd)

    def bound(lam):  # max_i ||Xa_pen^T D_i lam||
        lb = xp.asarray(lam, np.float64)
        corr = S64.T @ (lb[:, None] * reg.penalized(X64))
        return float(xp.row_norms(corr).max()) if P else 0.0

    z_hist: list = []

    def gap_fn(B, c, z_state):
        z = xp.to_numpy(z_state) + c
        primal = float(loss.value(z, y)) + beta * xp.total(
            xp.row_norms(xp.asarray(reg.penalized(B), np.float64)))
        dg = gated_duality_gap(loss, None, None, y, None, 0.0, beta, output_bias=output_bias,
                               regularizer=reg, z=z, null_basis=basis,
                               primal=primal, bound_fn=bound)
        if extrapolate > 0:
            z_hist.append(z)
            if len(z_hist) > extrapolate + 1:
                z_hist.pop(0)
            if len(z_hist) == extrapolate + 1:
                z_acc = _extrapolate(z_hist)
                if z_acc is not None and np.all(np.isfinite(z_acc)):
                    da = gated_duality_gap(loss, None, None, y, None, 0.0, beta,
                                           output_bias=output_bias,
                                           regularizer=reg, z=z_acc,
                                           null_basis=basis, primal=primal, bound_fn=bound)
                    if da.dual > dg.dual:
                        dg = da
        return dg

    if polish == "auto":
        polish = dtype == np.float64
    polish = bool(polish) and loss.curvature(np.zeros(1), np.ones(1)) is not None
    Xh, Sh = np.asarray(Xa, np.float64), np.asarray(S, np.float64)

    def certify(W, c, z):  # host float64, no extrapolation (the polish's points)
        return gated_duality_gap(loss, Xh, Sh, y, W, c, beta, output_bias=output_bias,
                                 regularizer=reg, z=z, null_basis=basis)

    if method not in ("auto", "fista", "barrier"):
        raise ValueError(f"method must be 'auto', 'fista' or 'barrier'; got {method!r}.")
    n = Xa.shape[0]
    if method == "barrier":
        if loss.constant_curvature(y) is None or reg.free:
            raise ValueError("method='barrier' needs a quadratic loss (e.g. 'squared') and "
                             "every block coordinate penalised (penalize_bias=True); use "
                             "method='fista'.")
        if dtype != np.float64 or xp._t is not None:
            raise ValueError("method='barrier' runs in float64 on the numpy backend; use "
                             "method='fista' for float32 or torch.")
    use_barrier = method == "barrier" or (
        method == "auto" and polish and W0 is None and dtype == np.float64
        and xp._t is None and barrier_applies(loss, y, reg, n, P * reg.penalized_dim)
        and beta <= BARRIER_MAX_ALPHA_RATIO * bound(dual_point(
            loss, np.zeros(n), y, output_bias=output_bias)[0]))

    t_start = time.perf_counter()
    B0 = xp.zeros((P, d_aug)) if W0 is None else xp.asarray(W0)
    stage_tol = max(tol, polish_tol) if polish else tol
    # a stage that only brings the program to a rough gap before the float64 polish runs
    # its products in float32 (its certificates stay float64; its objective is recomputed
    # in float64 below), as solve_gated_fista_multi's first stage
    xp32 = ArrayBackend(xp.name, device=xp.device, dtype=np.float32) if (
        polish and dtype == np.float64) else None
    ops32 = None
    iters_left, n_iter, best_dual = int(max_iter), 0, -np.inf
    history: list = []
    pinfo = {"rounds": 0, "newton_steps": 0, "seconds": 0.0}
    polish_work: dict = {}  # the polish's buffers, kept across its rounds
    res = None
    barrier_info = None
    if use_barrier:
        res, best_dual = _barrier_stage(
            loss, Xh, Sh, y, beta, output_bias=output_bias, regularizer=reg,
            certify=certify, tol=tol, polish_max_vars=polish_max_vars, pinfo=pinfo,
            history=history, time_limit=time_limit, t_start=t_start,
            max_steps=int(max_iter), polish=polish, work=polish_work, verbose=verbose)
        barrier_info = res.info["barrier"]
        n_iter = barrier_info["steps"]  # FISTA's iterations are counted after them
        iters_left -= n_iter
        B0, c0 = xp.asarray(res.B), res.output_bias
        stage_tol = max(tol, 0.1 * min(stage_tol, res.rel_gap))
    while not (res is not None and res.converged):
        if res is not None and (iters_left <= 0 or (
                time_limit is not None and time.perf_counter() - t_start >= time_limit)):
            break
        elapsed = time.perf_counter() - t_start
        z_hist.clear()
        if L_max is None:
            L_max = max(loss.lipschitz * lipschitz_bound(Xa, S, output_bias=output_bias,
                                                         xp=xp), np.finfo(float).tiny)
        rough = xp32 is not None and stage_tol >= _ROUGH_STAGE_TOL
        if rough and ops32 is None:
            ops32 = fista_ops(xp32, xp32.asarray(Xa), xp32.asarray(S))
        elif not rough:  # the later stages run in float64 too: free the copies
            xp32 = ops32 = None
        xs = xp32 if rough else xp
        r = fista_core(
            **(ops32 if rough else ops), gap_fn=gap_fn, xp=xs, B0=xs.asarray(B0), c0=c0,
            output_bias=output_bias, L_max=L_max, tol=stage_tol, max_iter=iters_left,
            check_every=int(check_every),
            shrink_L=1.0 if loss.constant_curvature(y) is not None else 0.8,
            time_limit=None if time_limit is None else max(time_limit - elapsed, 0.0),
            verbose=verbose,
        )
        if rough:  # the float32 stage's point and its objective in float64 (the product
            r.B = np.asarray(r.B, np.float64)  # on the backend: on a GPU, not the host)
            if np.isfinite(r.objective):
                z64 = xp.to_numpy(ops["forward"](xp.asarray(r.B))) + r.output_bias
                r.objective = float(loss.value(z64, y)) + beta * float(
                    np.sum(np.linalg.norm(reg.penalized(r.B), axis=1)))
        history += [(h[0] + n_iter, h[1] + elapsed, h[2], h[3]) for h in r.history]
        n_iter += r.n_iter
        iters_left -= r.n_iter
        if np.isfinite(r.dual_value):
            best_dual = max(best_dual, r.dual_value)
        if res is None or r.objective <= res.objective:
            res = r
        res.gap = res.objective - best_dual
        res.dual_value = best_dual
        res.converged = res.gap <= tol * abs(res.objective)
        elapsed = time.perf_counter() - t_start
        out_of_time = time_limit is not None and elapsed >= time_limit
        if res.converged or not polish or iters_left <= 0 or out_of_time:
            break
        pol = newton_polish(
            loss, Xh, Sh, y, beta, np.asarray(res.B, np.float64), res.output_bias,
            output_bias=output_bias, regularizer=reg, certify=certify, tol=tol,
            best_dual=best_dual, max_vars=polish_max_vars,
            time_limit=None if time_limit is None else time_limit - elapsed,
            work=polish_work, verbose=verbose)
        _count_polish(pinfo, pol, time.perf_counter() - t_start - elapsed)
        if not pol:  # no curvature formula: plain FISTA to tol
            polish, stage_tol = False, tol
            B0, c0 = xp.asarray(res.B), res.output_bias
            continue
        history += [(n_iter, h[0] + elapsed, h[1], h[2]) for h in pol["history"]]
        best_dual = max(best_dual, pol["best_dual"])
        if pol["dg"].primal <= res.objective:
            res.B = pol["W"]  # float64: the certificate is for this point
            res.output_bias = float(pol["c"]) if output_bias else 0.0
            res.objective = pol["dg"].primal
        res.gap = res.objective - best_dual
        res.dual_value = best_dual
        res.converged = res.gap <= tol * abs(res.objective)
        if res.converged:
            break
        if "info" in pol:  # restricted problem too large: plain FISTA to tol
            polish, stage_tol = False, tol
        # not certified: FISTA from the polished point to a 10x smaller gap, then again
        B0, c0 = xp.asarray(res.B), res.output_bias
        if polish:
            stage_tol = max(tol, 0.1 * min(stage_tol, res.rel_gap))
    res.n_iter = max(n_iter, 1)  # the barrier's Newton steps and FISTA's iterations
    res.history = history
    res.time = time.perf_counter() - t_start
    res.info["polish"] = pinfo
    res.info["method"] = "barrier" if use_barrier else "fista"
    if barrier_info is not None:  # (kept where FISTA's point replaced the barrier's)
        res.info["barrier"] = barrier_info
    res.dual = dual_point(loss, predict(np.asarray(Xa, np.float64), np.asarray(S, np.float64),
                                        np.asarray(res.B, np.float64)) + res.output_bias,
                          y, output_bias=output_bias)[0]
    res.info["backend"] = xp.name
    res.info["device"] = str(xp.device)
    if not res.converged:
        _warn_not_converged("Gated FISTA", res, tol, max_iter)
    return res


def _count_polish(pinfo: dict, pol: dict, seconds: float) -> None:
    """Add one :func:`newton_polish` call to the summary ``info["polish"]`` (rounds,
    Newton steps, early ends, seconds, and why it stopped short, if it said)."""
    pinfo["rounds"] += 1
    pinfo["newton_steps"] += pol.get("n_steps", 0)
    pinfo["early_ends"] = pinfo.get("early_ends", 0) + pol.get("early_ends", 0)
    pinfo["seconds"] += seconds
    if "info" in pol:
        pinfo["info"] = pol["info"]


# ------------------------------------------------------------------ the dual barrier
#: relative gap at which the dual barrier first hands its support to the polish
#: (breast cancer, P = 500: 47 barrier steps and 4 polish steps, 0.7-1.0 s in all)
_BARRIER_HANDOVER = 1e-4


def _barrier_stage(loss, Xh, Sh, y, beta, *, output_bias, regularizer, certify, tol,
                   polish_max_vars, pinfo, history, time_limit, t_start, max_steps,
                   polish=True, work=None, verbose=0):
    """The dual barrier (:class:`DualBarrier`) to ``max(10 tol, _BARRIER_HANDOVER)``, then
    :func:`newton_polish` on its nearly tight blocks (:meth:`DualBarrier.tight`); if
    that does not certify, the barrier goes on to a 100x smaller gap and the polish
    starts again. Returns ``(FastResult, best_dual)``: the polished, exactly sparse
    point once its own certificate (its residual's dual point, what ``certify()``
    recomputes from the network) is within ``tol``; otherwise the barrier's point if its
    own certificate is, with its negligible blocks zeroed; otherwise the point of lowest
    objective, not converged (FISTA goes on from it). Without ``polish`` only the
    barrier runs, to ``tol`` by its own dual value ``D(lambda)``: its dense point's
    residual certifies only about the square root of its accuracy (its correlations
    exceed ``beta`` by the residual's error), so the returned gap is ``D``'s."""
    from ._relu_ipm import _negligible

    bar = DualBarrier(loss, Xh, Sh, y, beta, output_bias=output_bias)
    deadline = None if time_limit is None else t_start + time_limit
    target = max(10.0 * tol, _BARRIER_HANDOVER) if polish else tol
    best_dual = -np.inf
    dense = sparse = None  # (W, c, DualGap): the barrier's best point, the polish's

    def cert(W, c):
        return certify(W, c, None)

    def ok(dg):
        return dg.gap <= tol * abs(dg.primal)

    while True:
        out = bar.run(target, cert, best_dual, deadline=deadline, history=history,
                      t_start=t_start, max_steps=max_steps - bar.n_steps, verbose=verbose)
        best_dual = max(best_dual, out["best_dual"])
        if out["W"] is None:
            break
        if dense is None or out["primal"] <= dense[2].primal:
            dense = (out["W"], out["c"], out["dg"])
        W = np.where(bar.tight(out["primal"])[:, None], out["W"], 0.0)
        c = out["c"]
        # the polish on that support, judged with the barrier's dual value (a few steps);
        # then, where the polished point's own certificate is above tol, on from there
        # without it
        for given in (best_dual, -np.inf) if polish else ():
            elapsed = time.perf_counter() - t_start
            pol = newton_polish(loss, Xh, Sh, y, beta, W, c, output_bias=output_bias,
                                regularizer=regularizer, certify=certify, tol=tol,
                                best_dual=given, max_vars=polish_max_vars,
                                time_limit=None if time_limit is None
                                else time_limit - elapsed, work=work, verbose=verbose)
            _count_polish(pinfo, pol, time.perf_counter() - t_start - elapsed)
            if not pol:
                break
            history += [(bar.n_steps, h[0] + elapsed, h[1], h[2]) for h in pol["history"]]
            best_dual = max(best_dual, pol["best_dual"])
            W, c = pol["W"], float(pol["c"]) if output_bias else 0.0
            if sparse is None or pol["dg"].primal <= sparse[2].primal or ok(pol["dg"]):
                sparse = (W, c, pol["dg"])
            if ok(pol["dg"]) or not pol["converged"]:
                break
        late = deadline is not None and time.perf_counter() > deadline
        if (sparse is not None and ok(sparse[2])) or not polish or bar.failed or \
                not out["converged"] or target < tol or late:
            break
        target = max(0.1 * tol, 0.01 * target)
    info = {"barrier": {"steps": bar.n_steps, "failed": bar.failed}}
    if sparse is not None and ok(sparse[2]):
        W, c, dg = sparse
    elif dense is not None and ok(dense[2]):
        # a dense barrier point: zero the smallest blocks whose removal is negligible to
        # first order, and as many of them as keep its own certificate within tol (all
        # of them, else the smaller half, ...: removing them moves the residual, whose
        # dual point judges the network; with the polish refused on a 382-pattern
        # problem, dropping all 355 proposed left tol and none were dropped before)
        W, c, dg = dense
        drop = _negligible(Xh, Sh, W, dg, beta, tol)
        cand = np.flatnonzero(drop)
        cand = cand[np.argsort(np.linalg.norm(W[cand], axis=1), kind="stable")]
        k = cand.size
        while k > 0:
            Wd = W.copy()
            Wd[cand[:k]] = 0.0
            dgd = cert(Wd, c)
            if ok(dgd):
                W, dg = Wd, dgd
                break
            k //= 2
    else:  # FISTA goes on from the lowest point (from zero if the barrier never centred)
        cands = [x for x in (sparse, dense) if x is not None]
        if cands:
            W, c, dg = min(cands, key=lambda x: x[2].primal)
        else:
            W, c = np.zeros((Sh.shape[1], Xh.shape[1])), 0.0
            dg = cert(W, c)
    best_dual = max(best_dual, dg.dual)
    gap = dg.primal - best_dual
    res = FastResult(B=W, output_bias=float(c), objective=dg.primal, gap=gap,
                     dual=np.zeros(0), dual_value=best_dual,
                     converged=gap <= tol * abs(dg.primal), n_iter=0, info=info)
    return res, best_dual


# ------------------------------------------------------------------ second-order polish
def _polish_columns(Xa: np.ndarray, S: np.ndarray, act: np.ndarray,
                    regularizer: GroupL2Penalty, output_bias: bool) -> np.ndarray:
    """Design matrix of the restricted problem: ``[S_act o Xa_pen | S o Xa_free | 1]``.

    Written in place into one C-ordered array (each block product through an ``(n, m,
    k)`` view of its columns): a broadcast product is not C-ordered, so reshaping it
    copied the whole design once more (2 s of a first ``make_regression(10000, 20)``
    polish, 160 MB, most of it page faults)."""
    from numpy.lib.stride_tricks import as_strided

    n = Xa.shape[0]
    Xp = regularizer.penalized(Xa)
    Xf = regularizer.unpenalized(Xa) if regularizer.free else Xa[:, :0]
    act = np.asarray(act)
    kp, kf, P = Xp.shape[1], Xf.shape[1], S.shape[1]
    K = act.size * kp + P * kf + int(output_bias)
    A = np.empty((n, K))
    col = 0
    for Sb, Xb in ((S[:, act], Xp), (S, Xf)):
        m, k = Sb.shape[1], Xb.shape[1]
        if m * k:
            strides = (A.strides[0], k * A.itemsize, A.itemsize)
            view = as_strided(A[:, col:], shape=(n, m, k), strides=strides)
            np.multiply(Sb[:, :, None], Xb[:, None, :], out=view)
        col += m * k
    if output_bias:
        A[:, -1] = 1.0
    return A


# entries of the restricted design newton_polish forms; beyond, a quadratic loss's polish
# works on its row chunks (_ChunkedColumns): make_regression(100000, 20), P = 100 at
# 0.1 alpha_max, 673 columns, was refused and FISTA ran 360 iterations instead of 60
_POLISH_MAX_DESIGN = 50_000_000
_POLISH_CHUNK = 4_000_000  # entries per row chunk of _ChunkedColumns
# a polish round ends (the violating blocks are added) once its Newton decrement is below
# this fraction of the certified gap and blocks outside the support violate: the digits
# one-vs-rest gated benchmark (10 programs, P = 100) 88 -> 62 Newton steps, 13.7 -> 10.9 s
_POLISH_DEC_GAP = 1e-3
# a joint FISTA stage whose every output stops at a certified relative gap of at least
# this (before the Newton polish) runs its products in float32 (solve_gated_fista_multi)
_ROUGH_STAGE_TOL = 1e-3
# a Newton step of the sample-space polish first tries the float32 factor of the step
# before (its check decides) when the support is the same and no radius changed by more
# than this fraction: digits one-vs-rest, 12 of 62 factorisations saved, the same steps
_STALE_W = 0.5
_POLISH_EARLY_RGAP = 1e-5  # ... while the certified relative gap is above this


class _ChunkedColumns:
    """The restricted design of :func:`newton_polish` (:func:`_polish_columns`) never
    formed whole: ``A^T g`` by the Khatri-Rao structure of its blocks and ``A^T A`` (for
    a loss of constant curvature) accumulated over row chunks of ``_POLISH_CHUNK``
    entries, so the memory stays ``O(K^2 + chunk)`` instead of ``O(n K)``."""

    def __init__(self, Xa, S, act, regularizer, output_bias):
        self.Xa, self.S, self.act = Xa, S, np.asarray(act)
        self.reg, self.ob = regularizer, bool(output_bias)
        n, d = Xa.shape
        k = regularizer.penalized_dim
        P = S.shape[1]
        self.shape = (n, self.act.size * k + P * (d - k) + int(self.ob))

    def rmatvec(self, g: np.ndarray) -> np.ndarray:
        """``A^T g``, one row chunk at a time (no ``n x m`` copy of the active masks)."""
        n = self.shape[0]
        step = max(1, _POLISH_CHUNK // max(self.S.shape[1], 1))
        k = self.reg.penalized_dim
        pen = np.zeros((self.act.size, k))
        free = np.zeros((self.S.shape[1], self.Xa.shape[1] - k)) if self.reg.free else None
        for a in range(0, n, step):
            Sc, gX = self.S[a:a + step], g[a:a + step, None] * self.Xa[a:a + step]
            pen += Sc[:, self.act].T @ self.reg.penalized(gX)
            if free is not None:
                free += Sc.T @ self.reg.unpenalized(gX)
        parts = [pen.ravel()] + ([free.ravel()] if free is not None else [])
        if self.ob:
            parts.append(np.array([g.sum()]))
        return np.concatenate(parts)

    def gram(self) -> np.ndarray:
        """``A^T A``, one row chunk at a time."""
        n, K = self.shape
        step = max(1, _POLISH_CHUNK // max(K, 1))
        G = np.zeros((K, K))
        for a in range(0, n, step):
            Ac = _polish_columns(self.Xa[a:a + step], self.S[a:a + step], self.act,
                                 self.reg, self.ob)
            G += Ac.T @ Ac
        return G

    def drop_blocks(self, keep_blocks: np.ndarray) -> "_ChunkedColumns":
        """The design without the penalised columns of the dropped active blocks."""
        return _ChunkedColumns(self.Xa, self.S, self.act[keep_blocks], self.reg, self.ob)


class _KhatriRaoColumns(_ChunkedColumns):
    """The restricted design of :func:`newton_polish` with more columns than samples,
    never formed: the sample-space Newton step (:func:`_newton_direction` with ``Xk``
    and ``Sa``) needs only ``A^T g`` (the Khatri-Rao structure), the free columns and
    the output bias's. Forming the ``n x K`` design (44 MB for a digits program,
    ``n = 1,797``, 50 blocks of 62) and copying it at every dropped block cost 3.8 s of
    the 8 s the polish took on the ten digits programs, most of it the page faults of
    those fresh arrays."""

    def free_columns(self) -> np.ndarray:
        """The unpenalised columns ``[S o Xa_free | 1]`` (``n x (K - m k)``): the design
        with no active block."""
        return _polish_columns(self.Xa, self.S, np.zeros(0, int), self.reg, self.ob)

    def dense(self) -> np.ndarray:
        """The design formed (:func:`_polish_columns`), once blocks were dropped below
        ``K <= n`` and the ``K x K`` path takes over."""
        return _polish_columns(self.Xa, self.S, self.act, self.reg, self.ob)

    def drop_blocks(self, keep_blocks: np.ndarray) -> "_KhatriRaoColumns":
        return _KhatriRaoColumns(self.Xa, self.S, self.act[keep_blocks], self.reg, self.ob)


def _shrink_gram(cache: dict, A_old: np.ndarray, A_new: np.ndarray, keep: np.ndarray
                 ) -> None:
    """Carry the cached ``A^T A`` of :func:`_newton_direction` over to ``A[:, keep]``."""
    gram = cache.get("gram")
    if gram is not None and gram[0] is A_old:
        cache["gram"] = (A_new, gram[1][np.ix_(keep, keep)])


def _newton_direction(A: np.ndarray, sh: np.ndarray, grad: np.ndarray, U: np.ndarray,
                      r: np.ndarray, Hn: np.ndarray, beta: float, m: int, k: int,
                      Xk: Optional[np.ndarray] = None, Sa: Optional[np.ndarray] = None,
                      cache: Optional[dict] = None) -> Optional[np.ndarray]:
    """Newton step ``-H^{-1} grad`` of the restricted problem (damped Cholesky,
    :func:`convexrelu._newton.newton_step`).

    ``H = C^T C + blockdiag_i(beta / r_i (I - u_i u_i^T))`` on the first ``m`` blocks of
    ``k`` columns, ``C = diag(sh) A`` (``n x K``); ``Hn`` holds the norm's blocks
    (:func:`convexrelu._newton.norm_derivatives`). With ``K <= n`` the ``K x K`` matrix is
    factorised (``O(n K^2 + K^3)``). Otherwise the norm curvature acts only on the
    tangential directions, so those are eliminated by a Schur complement in sample space:
    with ``C_r`` the radial (``C_i u_i``) and free columns and ``C_t`` the tangential
    ones, ``N = I + C_t R_t^{-1} C_t^T`` (``n x n``) and the radial/free unknowns solve
    ``C_r^T N^{-1} C_r x_r = -g_r + C_r^T N^{-1} C_t R_t^{-1} g_t``; then
    ``x_t = -R_t^{-1} (g_t + C_t^T N^{-1} (C_r x_r - C_t R_t^{-1} g_t))``:
    ``O(n^2 K + n^3)`` instead of ``O(K^3)``. When the block columns are
    ``S_i o Xk`` (pass ``Xk`` and the active masks ``Sa``), ``C_t R_t^{-1} C_t^T`` is
    ``diag(sh) [(Xk Xk^T) o (Sa diag(r/beta) Sa^T) - a diag(r/beta) a^T] diag(sh)``
    (``a_i = S_i o Xk u_i``): ``O(n^2 (m + k))``. From ``n >= 512`` that ``N`` (the
    identity plus a positive semidefinite matrix) is formed and factored in float32 only,
    its solves checked by one float64 refinement (:func:`_schur32`; the previous step's
    factor tried first where the support is the same and the radii close); where the
    check fails, and for generic columns, ``N`` is formed in float64 and factored by
    :func:`convexrelu._newton.spd_solver` (a float32 factor refined once in float64, or
    the float64 factor where that is not accurate).
    """
    from scipy.linalg import cho_solve

    n, K = A.shape
    if K <= n:
        if cache is not None and sh.size and np.all(sh == sh[0]):
            # constant curvature (squared loss): A^T A is the same at every step of a
            # round (a column subset after drops, see _shrink_gram): form it once
            gram = cache.get("gram")
            if gram is None or gram[0] is not A:
                gram = (A, A.gram() if isinstance(A, _ChunkedColumns) else A.T @ A)
                cache["gram"] = gram
            H = np.multiply(gram[1], float(sh[0]) ** 2,
                            out=work_buffer(cache, "H", gram[1].shape))
        else:
            C = A * sh[:, None]
            H = C.T @ C
        idx = np.arange(m * k).reshape(m, k)
        H[idx[:, :, None], idx[:, None, :]] += Hn
        return newton_step(H, grad, work=cache)
    rb = r / beta
    if Xk is None:  # generic columns: explicit tangential parts
        C3 = A[:, :m * k].reshape(n, m, k) * sh[:, None, None]
        a_rad = np.einsum("nmk,mk->nm", C3, U)
        T = (C3 - a_rad[:, :, None] * U[None]) * np.sqrt(rb)[None, :, None]
        Tm = T.reshape(n, m * k)
        N = Tm @ Tm.T
    else:  # columns S_i o Xk: Khatri-Rao structure, O(n^2 (m + k)) instead of O(n^2 m k)
        a0 = Sa * (Xk @ U.T)
        # Xk Xk^T (float64 [0], float32 upper triangle [2]) formed when first needed;
        # with a cache, kept for the same Xk throughout a polish (and the solve's polish
        # calls): keyed by Xk's memory, and Xk kept with the products, so that no other
        # array can take that address while the entry lives
        entry = [None, Xk, None]
        if cache is not None:
            key = ("XX", Xk.__array_interface__["data"][0], Xk.shape, Xk.strides)
            entry = cache.setdefault(key, entry)
        const = bool(np.all(sh == sh[0]))  # a constant curvature: a scalar, no outer
        w = rb * float(sh[0]) ** 2 if const else rb
        a_rad = sh[:, None] * a0
    free = A.free_columns() if isinstance(A, _KhatriRaoColumns) else A[:, m * k:]
    Cr = np.hstack([a_rad, free * sh[:, None]])
    gpen = grad[:m * k].reshape(m, k)
    g_rad = np.einsum("mk,mk->m", gpen, U)
    gr = np.concatenate([g_rad, grad[m * k:]])
    gt = gpen - g_rad[:, None] * U
    if Xk is None:
        q = np.einsum("nmk,mk->n", C3, rb[:, None] * gt)
    else:
        q = sh * np.einsum("nm,nm->n", Sa, Xk @ (rb[:, None] * gt).T)

    inaccurate = []  # set by finish when a check fails

    def finish(solveN, check=None):
        """The step from a solver of ``N``; ``check(b, e) -> (e, ok)`` refines the one
        single-vector solve and judges the solver's accuracy (``None``: not accurate,
        recorded in ``inaccurate``, or the radial system's factor failed)."""
        Y = solveN(Cr)
        G = Cr.T @ Y
        cfG = damped_cholesky(G)
        if cfG is None:
            return None
        xr = cho_solve(cfG, -gr + Y.T @ q, check_finite=False)
        b = Cr @ xr - q
        e = solveN(b)
        if check is not None:
            e, ok = check(b, e)
            if not ok:
                inaccurate.append(True)
                return None
        if Xk is None:
            v = gpen + np.einsum("nmk,n->mk", C3, e)
        else:
            v = gpen + (Sa * (sh * e)[:, None]).T @ Xk
        v -= np.einsum("mk,mk->m", v, U)[:, None] * U
        step_pen = xr[:m, None] * U - rb[:, None] * v
        return np.concatenate([step_pen.ravel(), xr[m:]])

    if Xk is not None and n >= _MIXED_MIN_ORDER and Sa.shape[1] and \
            not (cache or {}).get("schur32_off"):
        st = None if cache is None else cache.get("N32_state")
        if st is not None and st[0] is entry and st[4] == const and \
                st[1].shape == Sa.shape and np.array_equal(st[1], Sa) and \
                np.max(np.abs(w / st[2] - 1.0)) <= _STALE_W and \
                (const or np.max(np.abs(sh / st[3] - 1.0)) <= _STALE_W):
            # the last factor (the same support, radii and curvatures close) may still be
            # accurate enough: its check decides
            step = finish(*_schur32(Xk, Sa, a0, w, sh, const, rb, entry, cache, stale=True))
            if step is not None:
                cache["schur32_reused"] = cache.get("schur32_reused", 0) + 1
                return step
            inaccurate.clear()  # (a stale factor's failed check says nothing of float32)
        fast = _schur32(Xk, Sa, a0, w, sh, const, rb, entry, cache)
        step = None if fast is None else finish(*fast)
        if step is not None:
            return step
        if cache is not None and (fast is None or inaccurate):
            # float32 not accurate for this polish's N: float64 from here on
            cache["schur32_off"] = True
    if Xk is not None:
        from scipy.linalg.blas import dgemm

        if entry[0] is None:
            entry[0] = Xk @ Xk.T
        XX = entry[0]
        # into the polish's n x n buffer: no new array (page faults) per step
        N = np.matmul(Sa * w, Sa.T, out=work_buffer(cache, "N", XX.shape))
        N *= XX
        # N -= (a0 w) a0^T in place (N symmetric: its transpose is the Fortran array)
        N = dgemm(-1.0, a0 * w, a0, beta=1.0, c=N.T, trans_b=True, overwrite_c=True).T
        if not const:
            N *= np.outer(sh, sh)
    N[np.diag_indices(n)] += 1.0
    # N = I + PSD: a float32 factor, refined (well conditioned)
    solveN = spd_solver(N, cache)
    if solveN is None:
        return None
    return finish(solveN)


def _schur32(Xk, Sa, a0, w, sh, const, rb, entry, cache, stale=False):
    """The sample-space matrix ``N`` of :func:`_newton_direction` (Khatri-Rao columns)
    formed and factored in float32 only, as ``(solve, check)`` for its ``finish``; None
    when the float32 factor fails. ``stale``: the factor left in ``cache`` by the last
    call (the caller checks that it is of the same ``Xk`` and support), not a new one.

    ``N = I + D [(Xk Xk^T) o (Sa W Sa^T) - a0 W a0^T] D`` is accumulated by two
    ``ssyrk`` updates into the upper triangle of a kept Fortran buffer, the Hadamard
    factor ``Xk Xk^T`` kept upper triangular (``entry[2]``, so the lower triangle stays
    zero), and factored in place (``spotrf``). The solves are not refined: a Newton
    direction needs a relative accuracy well below 1, not float64's. ``check`` refines
    the one single-vector solve of the step against ``N`` applied in float64 by its
    structure (``O(n (k + 1) m)``, no ``n x n`` float64 matrix) and accepts the factor
    when that correction is at most ``_MIXED_MAX_CORRECTION`` of the solution;
    otherwise the caller forms ``N`` in float64 (:func:`convexrelu._newton.spd_solver`).
    On the digits one-vs-rest programs (``n = 1,797``) a Newton step took 73 ms with
    the float64 ``N`` and refined float32 solves, and 37 ms this way, with the same
    steps (62 on the ten programs).
    """
    from scipy.linalg.blas import ssyrk
    from scipy.linalg.lapack import spotrf

    n = Xk.shape[0]
    if entry[2] is None:  # X X^T's upper triangle in float32, Fortran-ordered
        XXu = np.zeros((n, n), np.float32, order="F")
        entry[2] = ssyrk(1.0, np.asarray(Xk, np.float32).T, beta=0.0, c=XXu, trans=1,
                         overwrite_c=1)
    XXu = entry[2]
    buf = None if cache is None else cache.get("N32")
    if buf is None or buf.shape != (n, n):
        buf = np.zeros((n, n), np.float32)  # its lower triangle stays 0
        if cache is not None:
            cache["N32"] = buf
    F = buf.T  # Fortran-ordered
    if stale:
        return _schur32_ops(F, Xk, Sa, a0, w, sh, const, rb)
    sw = np.sqrt(w)
    F = ssyrk(1.0, np.asarray((Sa * sw).T, np.float32), beta=0.0, c=F, trans=1,
              overwrite_c=1)
    np.multiply(F, XXu, out=F)
    F = ssyrk(-1.0, np.asarray((a0 * sw).T, np.float32), beta=1.0, c=F, trans=1,
              overwrite_c=1)
    if not const:  # D M D, in place (no n x n temporary)
        sh32 = sh.astype(np.float32)
        F *= sh32[:, None]
        F *= sh32[None, :]
    F[np.diag_indices(n)] += 1.0
    F, info = spotrf(F, lower=0, clean=0, overwrite_a=1)
    if info != 0 or not np.all(np.isfinite(np.diagonal(F))):
        if cache is not None:
            cache.pop("N32_state", None)
        return None
    if cache is not None:
        cache["N32_state"] = (entry, Sa.copy(), w.copy(), sh.copy(), const)
    return _schur32_ops(F, Xk, Sa, a0, w, sh, const, rb)


def _schur32_ops(F, Xk, Sa, a0, w, sh, const, rb):
    """``(solve, check)`` of :func:`_schur32` from the float32 factor ``F`` (upper)."""
    from scipy.linalg import cho_solve

    cf = (F, False)

    def solve(B):
        return cho_solve(cf, np.asarray(B, np.float32), check_finite=False
                         ).astype(np.float64)

    wt = w if const else rb  # the weights of M, with N = I + D M D (D = diag(sh), or 1)
    d = sh if not const else None

    def apply_N(x):
        v = x if d is None else d * x
        T = Xk.T @ (Sa * v[:, None])  # (k, m)
        Mv = np.einsum("nm,nm->n", Sa, Xk @ (T * wt)) - a0 @ (wt * (a0.T @ v))
        return x + (Mv if d is None else d * Mv)

    def check(b, e):
        de = solve(b - apply_N(e))
        return e + de, bool(np.linalg.norm(de) <= _MIXED_MAX_CORRECTION * np.linalg.norm(e))
    return solve, check


def newton_polish(loss, Xa: np.ndarray, S: np.ndarray, y: np.ndarray, beta: float,
                  W: np.ndarray, c: float, *, output_bias: bool, regularizer: GroupL2Penalty,
                  certify: Callable, tol: float, best_dual: float = -np.inf,
                  max_rounds: int = 20,
                  max_newton: int = 50, max_vars: int = 6000, max_add: int = 50,
                  time_limit: Optional[float] = None, work: Optional[dict] = None,
                  verbose: int = 0) -> dict:
    """Active-set Newton polish of the gated group lasso from ``(W, c)`` (float64, host).

    On the support ``act`` (blocks with a nonzero penalised part) the objective
    ``l(A theta) + beta sum_{i in act} ||w_i,pen||`` is smooth, with Hessian
    ``A^T diag(l'') A + blockdiag(beta / ||w|| (I - u u^T))``; the free coordinates
    (unpenalised hidden biases of every block, the output bias) have no penalty.
    Damped Newton steps with an Armijo line search (the shared pieces of
    :mod:`convexrelu._newton`); a block whose step crosses the origin is tried at zero
    (and dropped when that decreases the objective). After every
    step ``certify(W, c, z) -> DualGap`` evaluates the duality gap over **all** patterns;
    the polish stops as soon as ``gap <= tol * |primal|``. When the restricted problem is
    solved but the gap is not small, the inactive blocks violating the dual constraint
    (``||Xa_pen^T D_i lam|| > beta``) are added (at most ``max_add``, largest first, each
    started by one block prox-gradient step) and the next round begins.

    Returns a dict: ``W, c, dg`` (the point of lowest primal value seen), ``best_dual``
    (the best dual value seen, including the ``best_dual`` given), ``converged``,
    ``history`` (``(seconds, primal, gap)`` per step) and ``n_steps``; an empty dict when
    the loss has no curvature formula. It returns early (not converged) when the
    restricted problem would have more than ``max_vars`` variables, or a design of more
    than ``_POLISH_MAX_DESIGN`` entries with a loss of varying curvature (a quadratic
    loss's design that large is worked on in row chunks, :class:`_ChunkedColumns`).
    While the certified relative gap is above ``_POLISH_EARLY_RGAP`` (and in the first
    half of the rounds), a round ends as soon as its Newton decrement is below
    ``_POLISH_DEC_GAP`` times the gap and blocks outside the support violate.
    """
    t0 = time.perf_counter()
    n, d = Xa.shape
    P = S.shape[1]
    k = regularizer.penalized_dim
    W = np.array(W, dtype=np.float64)
    c = float(c) if output_bias else 0.0
    if loss.curvature(np.zeros(1), np.ones(1)) is None:
        return {}

    def zfun(Wc, cc):
        return np.einsum("ij,ij->i", Xa, S @ Wc) + cc

    def phi(Wc, z):
        return float(loss.value(z, y)) + beta * float(np.sum(np.linalg.norm(Wc[:, :k], axis=1)))

    constant = loss.constant_curvature(y) is not None
    viol_norms: dict = {}

    def violators(Wc, zc):
        """Inactive blocks violating the dual constraint at ``zc`` (norms kept)."""
        Cn = pattern_correlations(Xa[:, :k], S, -loss.gradient(zc, y))
        nrm = np.linalg.norm(Cn, axis=1)
        viol_norms.update(Cn=Cn, nrm=nrm)
        inactive = np.linalg.norm(Wc[:, :k], axis=1) == 0
        return np.flatnonzero(inactive & (nrm > beta))

    def chunked_ok(K):
        # a design too large to form: its row chunks serve a quadratic loss (A^T A formed
        # once per round) with fewer columns than samples (the K x K factor)
        return constant and K <= min(n, max_vars)

    z = zfun(W, c)
    dg = certify(W, c, z)
    history: list = []
    best = {"W": W.copy(), "c": c, "dg": dg, "best_dual": max(best_dual, dg.dual),
            "converged": False, "history": history, "n_steps": 0, "early_ends": 0}

    def record(Wc, cc, dgc) -> bool:
        best["best_dual"] = max(best["best_dual"], dgc.dual)
        if dgc.primal <= best["dg"].primal:
            best.update(W=Wc.copy(), c=cc, dg=dgc)
        gap = best["dg"].primal - best["best_dual"]
        history.append((time.perf_counter() - t0, dgc.primal, gap))
        if gap <= tol * abs(best["dg"].primal):
            best["converged"] = True
        return best["converged"]

    if record(W, c, dg):
        return best
    # products and buffers reused across Newton steps (_newton_direction), and across
    # the polish calls of one solve when the caller passes ``work``
    gram_cache: dict = {} if work is None else work
    n_steps = 0
    for rnd in range(max_rounds):
        act = np.flatnonzero(np.linalg.norm(W[:, :k], axis=1) > 0)
        m = act.size
        nfree = P * (d - k)
        K = m * k + nfree + int(output_bias)
        if min(n, K) > max_vars or (n * K > _POLISH_MAX_DESIGN and not chunked_ok(K)):
            best["info"] = f"restricted problem too large ({n} x {K})"
            return best
        if K > n:  # the sample-space step: the design is never formed
            A = _KhatriRaoColumns(Xa, S, act, regularizer, output_bias)
        elif constant or n * K > _POLISH_MAX_DESIGN:
            # a quadratic loss needs only A^T A (once per round, by row chunks) and A^T g:
            # no n x K design, nor its copies at every dropped block (make_regression
            # (10000, 20) at 0.1 alpha_max: 160 MB, and 1.9 s of page faults for one drop)
            A = _ChunkedColumns(Xa, S, act, regularizer, output_bias)
        else:
            A = _polish_columns(Xa, S, act, regularizer, output_bias)
        restricted_done = K == 0  # empty support, no free variable: only add blocks
        viol = None  # the violators at the round's last point, when already found
        for it in range(0 if K == 0 else max_newton):
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                return best
            g = loss.gradient(z, y)
            h = loss.curvature(z, y)
            r, U, Hn = norm_derivatives(regularizer.penalized(W[act]), beta)
            if isinstance(A, _KhatriRaoColumns) and A.shape[1] <= n:
                A = A.dense()  # drops left K <= n: the K x K path needs the columns
            grad = A.rmatvec(g) if isinstance(A, _ChunkedColumns) else A.T @ g
            grad[:m * k] += beta * U.ravel()
            # row chunks: the K x K path only (K <= n); Khatri-Rao: the Schur path
            chunked = type(A) is _ChunkedColumns
            step = _newton_direction(A, np.sqrt(h), grad, U, r, Hn, beta, m, k,
                                     Xk=None if chunked else Xa[:, :k],
                                     Sa=None if chunked else S[:, act], cache=gram_cache)
            if step is None:
                best["info"] = "Hessian factorisation failed"
                return best
            dec = float(grad @ step)  # < 0
            n_steps += 1
            f0 = phi(W, z)
            if -dec <= 1e-15 * max(abs(f0), 1.0):
                restricted_done = True
                break
            gap_now = best["dg"].primal - best["best_dual"]
            if rnd < max_rounds // 2 and gap_now > _POLISH_EARLY_RGAP * abs(best["dg"].primal) \
                    and -dec <= _POLISH_DEC_GAP * gap_now:
                viol = violators(W, z)
                if viol.size:
                    # the restricted problem is solved far below the certified gap, which
                    # blocks outside the support make: add them now (the Newton steps after
                    # this point moved the objective by 1e-9 relative on digits; at 0.1 instead
                    # of _POLISH_DEC_GAP the blocks added from a rough point cycled). Near the
                    # optimum (_POLISH_EARLY_RGAP) and in the last rounds every restricted
                    # problem is solved to the end, as before: below it, a block that only
                    # the unfinished restricted solve made violate was added and dropped
                    # again round after round (a certified gap stuck at 3e-7)
                    best["early_ends"] += 1
                    restricted_done = True
                    break

            def trial(tt, drop=None):
                Wn = W.copy()
                Wn[act, :k] += tt * step[:m * k].reshape(m, k)
                if nfree:
                    Wn[:, k:] += tt * step[m * k:m * k + nfree].reshape(P, d - k)
                cn = c + tt * step[-1] if output_bias else 0.0
                if drop is not None:
                    Wn[act[drop], :k] = 0.0
                zn = zfun(Wn, cn)
                return phi(Wn, zn), (Wn, cn, zn)

            # blocks whose radial coordinate r + t <u, step> reaches 0 for some t <= 1:
            # step to the first such t and drop those blocks (active-set move); each try
            # is one Armijo test, then plain backtracking (the shared line search)
            radial = np.einsum("ij,ij->i", U, step[:m * k].reshape(m, k))
            t_cross = boundary_steps(r, radial)
            acc = None
            if np.sum(t_cross <= 1.0) > 1:  # first try: full step, all crossers dropped
                cross = t_cross <= 1.0
                acc = backtrack(lambda tt: trial(tt, cross), f0, dec, max_tries=1)
            if acc is None and np.min(t_cross, initial=np.inf) <= 1.0:
                tc = float(np.min(t_cross))
                cross = t_cross <= tc * (1.0 + 1e-9)
                acc = backtrack(lambda tt: trial(tt, cross), f0, dec, t=tc, max_tries=1)
            dropped = acc is not None
            if acc is None:
                acc = backtrack(trial, f0, dec)
            if acc is None:
                restricted_done = True
                break
            W, c, z = acc[2]
            dg = certify(W, c, z)
            best["n_steps"] = n_steps
            if verbose:
                print(f"polish round {rnd} step {it}: primal {dg.primal:.12e} "
                      f"gap {dg.gap:.3e} support "
                      f"{int(np.sum(np.linalg.norm(W[:, :k], axis=1) > 0))}")
            if record(W, c, dg):
                return best
            if dropped:  # support shrank: remove the dropped blocks' columns
                keep = np.ones(A.shape[1], bool)
                keep[:m * k] = np.repeat(~cross, k)
                A_old = A
                # (np.compress: a boolean column index of a C-ordered matrix was 30x
                # slower, 111 ms against 4 for 569 x 6,700 on breast cancer)
                A = A.drop_blocks(~cross) if isinstance(A, _ChunkedColumns) else \
                    np.compress(keep, A, axis=1)
                _shrink_gram(gram_cache, A_old, A, keep)
                act = act[~cross]
                m = act.size
                K = A.shape[1]
                if K == 0:
                    restricted_done = True
                    break
        # add the violating inactive blocks (found already where the round ended early)
        if viol is None or not viol.size:
            viol = violators(W, z)
        if viol.size == 0:
            if restricted_done:
                break
            continue
        nrm = viol_norms["nrm"]
        Cn = viol_norms["Cn"]
        viol = viol[np.argsort(-nrm[viol])][:max_add]
        hmax = float(np.max(loss.curvature(z, y)))
        for i in viol:
            Ai = S[:, i:i + 1] * Xa[:, :k]
            Li = hmax * float(np.linalg.norm(Ai, 2) ** 2)
            W[i, :k] = (nrm[i] - beta) / max(Li, np.finfo(float).tiny) * Cn[i] / nrm[i]
        z = zfun(W, c)
    return best


# ---------------------------------------------------------------------- solver class


def _check_single_output(name: str, program) -> None:
    if program.n_outputs != 1:
        raise ValueError(f"{name} handles one output; the program has {program.n_outputs}. "
                         "Use the cvxpy solver or fit one program per output.")


def _to_solution(program, res: FastResult, V, W, *, formulation: str, tol: float):
    """A :class:`~convexrelu.program.ConvexSolution` in the program's normalisation."""
    from ..program import ConvexSolution

    n = program.n_samples
    info = {"rel_gap": res.rel_gap, "gap_sum": res.gap, "objective_sum": res.objective,
            "history": res.history, "patterns_exact": bool(program.patterns.exact),
            "certificate": ("duality gap over all patterns of the arrangement"
                            if program.patterns.exact else
                            "duality gap over the sampled patterns only (not a proof of "
                            "global optimality)"), "tol": tol}
    info.update({k: v for k, v in res.info.items() if k != "mu"})
    return ConvexSolution(
        V=np.asarray(V, np.float64), W=np.asarray(W, np.float64),
        output_bias=(np.asarray(res.output_bias, np.float64) if np.ndim(res.output_bias)
                     else float(res.output_bias)), objective=res.objective / n,
        dual=np.asarray(res.dual, np.float64),
        status="optimal" if res.converged else "max_iter_reached",
        n_iter=max(int(res.n_iter), 1), solve_time=res.time, gap=res.gap / n,
        formulation=formulation, info=info)


class FistaSolver(BaseSolver):
    """FISTA for the ``"gated_relu"`` formulation, stopped on the relative duality gap.

    Parameters
    ----------
    tol : float, default=1e-6
        Relative duality-gap tolerance (``gap <= tol * |objective|``).
    max_iter : int, default=10000
    check_every : int, default=10
        Gap-evaluation period (iterations).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the iterations (the certificate is computed in float64). float64
        gives the same objective on every backend and device to about 1e-6 relative (the
        tests check it); float32 iterations are about twice as fast on a CPU (more on
        most GPUs) but their rounding stops the certified gap near 1e-5 relative, so
        their objectives agree with float64 to about 1e-4 (pass ``polish=True`` to
        finish them with the float64 polish).
    backend : {"numpy", "torch"}, default="numpy"
        Array library of the iterations. ``"torch"`` needs PyTorch (``pip install torch``).
    device : str, optional
        torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``...); only with
        ``backend="torch"``. On a GPU the iterations, the products of the certificate's
        dual bound and (for more than 3000 samples) the Lipschitz constant run on the
        device; the certificate's O(n) scalar work and the Newton polish (second order,
        dense) run on the host in float64. The estimators take such an instance:
        ``ConvexReLUClassifier(formulation="gated_relu", solver=FistaSolver(
        backend="torch", device="cuda"))``.
    polish : bool or "auto", default="auto"
        Active-set Newton polish once FISTA reaches the relative gap ``polish_tol``
        (see ``solve_gated_fista``); ``"auto"``: on in float64.
    polish_tol : float, default=2e-2
    method : {"auto", "fista", "barrier"}, default="auto"
        ``"barrier"``: the dual log-barrier Newton method (Newton steps on the dual, an
        ``n x n`` system per step), then the polish on its support; for a quadratic loss
        with every block coordinate penalised, float64 on numpy. ``"auto"`` takes it for
        such programs with at most 1,000 samples, at least as many block coordinates as
        samples and ``alpha`` at most 3 % of the smallest ``alpha`` whose optimum is zero
        (scnn's ``lam = 1e-3`` problems on diabetes and breast cancer at ``P = 500``:
        5-9x faster than FISTA), FISTA otherwise; several outputs and
        :meth:`solve_columns` always run FISTA jointly.
    verbose : int, default=0

    Notes
    -----
    ``solution.gap`` is in the objective's normalisation (divided by ``n_samples``);
    ``solution.info["rel_gap"]`` is the relative gap.

    A program with several outputs (the squared or Huber loss on ``Y`` of shape
    ``(n, c)``) is ``c`` independent column programs over shared patterns
    (docs/mathematics.rst §3.7); they are solved jointly by
    ``solve_gated_fista_multi`` (one product over the masks per step for all
    outputs), and :meth:`solve_columns` does the same for a list of single-output
    programs (the one-vs-rest columns of a classifier).
    """

    _loss_required_attr = ("value", "gradient", "dual_objective", "max_dual_scale")
    _formulations = ("gated_relu",)
    _parameter_constraints = {
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "check_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"float64", "float32"}), type],
        "backend": [StrOptions({"numpy", "torch"}), object],
        "device": [None, str, object],
        "polish": ["boolean", StrOptions({"auto"})],
        "polish_tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "method": [StrOptions({"auto", "fista", "barrier"})],
        "verbose": ["verbose"],
    }
    _convergence_hint = ("Increase max_iter, loosen tol, or standardise X (poorly scaled "
                         "features slow first-order methods).")

    def __init__(self, tol: float = 1e-6, max_iter: int = 10000, check_every: int = 10,
                 dtype: str = "float64", backend: str = "numpy", device=None,
                 polish="auto", polish_tol: float = 2e-2, method: str = "auto",
                 verbose: int = 0) -> None:
        self.tol = tol
        self.max_iter = max_iter
        self.check_every = check_every
        self.dtype = dtype
        self.backend = backend
        self.device = device
        self.polish = polish
        self.polish_tol = polish_tol
        self.method = method
        self.verbose = verbose

    def _solve(self, program, warm_start=None):
        if program.n_outputs != 1:  # independent column programs, solved jointly
            c = program.n_outputs
            col_loss = program.loss.column_loss(c)
            W0 = None if warm_start is None else np.asarray(warm_start.V, np.float64)
            c0 = None if warm_start is None else warm_start.output_bias
            res = self._solve_multi(program, col_loss, program.y, W0, c0)
            return _to_solution(program, res, res.B, np.zeros_like(res.B),
                                formulation="gated_relu", tol=self.tol)
        xp = get_backend(self.backend, self.device, np.dtype(self.dtype))
        W0 = None if warm_start is None else np.asarray(warm_start.V)
        c0 = 0.0 if warm_start is None else float(np.ravel(warm_start.output_bias)[0])
        with muted_convergence(), warnings.catch_warnings():  # BaseSolver.solve warns
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = solve_gated_fista(
                program.loss, program.X_aug, program.masks, program.y, program.alpha,
                output_bias=program.fit_output_bias, regularizer=program.regularizer,
                tol=self.tol,
                max_iter=self.max_iter, check_every=self.check_every, W0=W0, c0=c0,
                dtype=np.dtype(self.dtype), backend=xp, polish=self.polish,
                polish_tol=self.polish_tol, method=self.method, verbose=self.verbose)
        return _to_solution(program, res, res.B, np.zeros_like(res.B),
                            formulation="gated_relu", tol=self.tol)

    def solve_columns(self, programs, warm_starts=None) -> list:
        """Solve single-output gated programs that share data, patterns and ``alpha``
        **jointly** (one-vs-rest columns, the columns of a multi-output regression).

        The programs are independent scalar programs over the same patterns
        (docs/mathematics.rst §3.7); ``solve_gated_fista_multi`` runs them in one loop
        whose every product serves all of them (one pass over the ``n x P`` masks per
        product). Each returned solution carries its own certificate (its program's
        duality gap), as :meth:`solve` would give it.

        Parameters
        ----------
        programs : list of ConvexProgram
            ``"gated_relu"`` programs with one output each and the same ``X_aug``,
            masks, loss, ``alpha``, ``fit_output_bias`` and penalised coordinates.
        warm_starts : list of (ConvexSolution or None), optional

        Returns
        -------
        list of ConvexSolution

        Raises
        ------
        ValueError
            If the programs differ in anything but their targets, or one has several
            outputs.
        """
        from ..program import ConvexProgram, ConvexSolution

        programs = list(programs)
        if not programs or not all(isinstance(p, ConvexProgram) for p in programs):
            raise TypeError("solve_columns expects a non-empty list of ConvexProgram.")
        self._validate_params()
        p0 = programs[0]
        for p in programs:
            self._check_capabilities(p)
            _check_single_output(type(self).__name__ + ".solve_columns", p)
            same = (p.X_aug.shape == p0.X_aug.shape and p.masks.shape == p0.masks.shape
                    and p.alpha == p0.alpha and p.loss == p0.loss
                    and p.fit_output_bias == p0.fit_output_bias
                    and p.regularizer == p0.regularizer
                    and (p is p0 or (np.array_equal(p.X_aug, p0.X_aug)
                                     and np.array_equal(p.masks, p0.masks))))
            if not same:
                raise ValueError("solve_columns needs programs that differ only in their "
                                 "targets (same data, patterns, loss, alpha and biases); "
                                 "solve the others one by one with solve().")
        c, P, d = len(programs), p0.n_patterns, p0.d_aug
        warm = list(warm_starts) if warm_starts is not None else [None] * c
        W0 = c0 = None
        if any(w is not None for w in warm):
            W0 = np.stack([np.zeros((P, d)) if w is None else np.asarray(w.V, np.float64)
                           for w in warm])
            c0 = np.array([0.0 if w is None else float(np.ravel(w.output_bias)[0])
                           for w in warm])
        res = self._solve_multi(p0, p0.loss, np.column_stack([p.y for p in programs]),
                                W0, c0)
        out = []
        n = p0.n_samples
        for k, (p, col) in enumerate(zip(programs, res.info["columns"])):
            info = {"rel_gap": col["rel_gap"], "gap_sum": col["gap"],
                    "objective_sum": col["objective"], "history": col["history"],
                    "patterns_exact": bool(p.patterns.exact), "tol": self.tol,
                    "joint_columns": c, "backend": res.info["backend"],
                    "device": res.info["device"], "polish": col["polish"]}
            sol = ConvexSolution(
                V=res.B[k].astype(np.float64), W=np.zeros((P, d)),
                output_bias=float(res.output_bias[k]), objective=col["objective"] / n,
                dual=res.dual[:, k].copy(),
                status="optimal" if col["converged"] else "max_iter_reached",
                n_iter=max(int(res.n_iter), 1), solve_time=res.time, gap=col["gap"] / n,
                formulation="gated_relu", info=info)
            out.append(self._finish(p, sol))
        return out

    def _solve_multi(self, program, col_loss, Y, W0, c0) -> FastResult:
        xp = get_backend(self.backend, self.device, np.dtype(self.dtype))
        with muted_convergence(), warnings.catch_warnings():  # BaseSolver.solve warns
            warnings.simplefilter("ignore", ConvergenceWarning)
            return solve_gated_fista_multi(
                col_loss, program.X_aug, program.masks, Y, program.alpha,
                output_bias=program.fit_output_bias, regularizer=program.regularizer, tol=self.tol,
                max_iter=self.max_iter, check_every=self.check_every, W0=W0, c0=c0,
                dtype=np.dtype(self.dtype), backend=xp, polish=self.polish,
                polish_tol=self.polish_tol, verbose=self.verbose)


# ------------------------------------------------------- joint multi-output (c programs)
def _norms_last(xp: ArrayBackend, a):
    """Euclidean norms over the last axis (``(P, c, k) -> (P, c)``)."""
    if xp._t is None:
        return np.sqrt(np.einsum("...k,...k->...", a, a))
    return xp._t.linalg.vector_norm(a, dim=-1)


def _take(xp: ArrayBackend, a, idx, axis: int):
    """``a`` restricted to the indices ``idx`` along ``axis`` (a copy)."""
    if xp._t is None:
        return np.take(a, idx, axis=axis)
    return a.index_select(axis, xp.index(idx))


def _coldot(xp: ArrayBackend, a, b) -> np.ndarray:
    """Per-output inner products of two ``(P, c, d)`` arrays: a float64 ``(c,)`` vector."""
    if xp._t is None:
        return np.einsum("pcd,pcd->c", a, b).astype(np.float64)
    return xp.to_numpy((a * b).sum(dim=(0, 2)))


def _column_loss_ops(xp: ArrayBackend, loss, Y: np.ndarray):
    """``(values(Z) -> (c,), values_grad(Z) -> ((c,), G))`` of a scalar loss applied to
    every column of ``Z`` (``n x c``) against the columns of ``Y``; values in float64 on
    the host, ``G`` on the backend. A quadratic loss runs in closed form on the backend,
    a loss with ``torch_value`` through autograd on torch, anything else through the
    loss's numpy methods column by column."""
    Y = np.asarray(Y, np.float64)
    Yb = xp.asarray(Y)
    curv = loss.constant_curvature(Y[:, 0])
    if curv is not None:
        h = float(curv)

        def values(Z):
            R = Z - Yb
            return 0.5 * h * xp.to_numpy((R * R).sum(0))

        def values_grad(Z):
            R = Z - Yb
            return 0.5 * h * xp.to_numpy((R * R).sum(0)), R * h
        return values, values_grad
    if xp._t is not None and _implements(loss, "torch_value"):
        torch = xp._t

        def stacked(Z):
            return torch.stack([loss.torch_value(Z[:, k], Yb[:, k])
                                for k in range(Z.shape[1])])

        def values(Z):
            with torch.no_grad():
                return xp.to_numpy(stacked(Z))

        def values_grad(Z):
            ZZ = Z.detach().requires_grad_(True)
            with torch.enable_grad():
                v = stacked(ZZ)
                (g,) = torch.autograd.grad(v.sum(), ZZ)
            return xp.to_numpy(v.detach()), g.detach()
        return values, values_grad

    def values(Z):
        Zn = xp.to_numpy(Z)
        return np.array([loss.value(Zn[:, k], Y[:, k]) for k in range(Y.shape[1])])

    def values_grad(Z):
        Zn = xp.to_numpy(Z)
        vals = np.array([loss.value(Zn[:, k], Y[:, k]) for k in range(Y.shape[1])])
        G = np.column_stack([loss.gradient(Zn[:, k], Y[:, k]) for k in range(Y.shape[1])])
        return vals, xp.asarray(G)
    return values, values_grad


class _Captured(Exception):
    """Carries the certificate's unscaled dual point out of ``gated_duality_gap``."""


def _fista_multi_core(*, xp: ArrayBackend, loss, Xd, Sd, Y: np.ndarray, beta: float,
                      regularizer: GroupL2Penalty, output_bias: bool, L_max: float, B0, c0,
                      stage_tol: np.ndarray, max_iter: int, check_every: int,
                      shrink_L: float, gap_fn: Callable, cols: np.ndarray,
                      time_limit: Optional[float] = None, verbose: int = 0) -> tuple:
    """FISTA on ``m`` independent gated programs at once (blocks ``B`` of shape
    ``(P, m, d)``, output biases ``(m,)``): per-output step ``1/L_k``, momentum and
    restart, one forward ``Z = einsum(S @ B, Xa)`` and one adjoint
    ``S^T (G o Xa)`` per iteration for all outputs together. An output leaves the loop
    (its state is dropped from the products) once its certified relative gap is
    ``<= stage_tol``. Returns ``(results, n_iter)``, ``results[col]`` a dict with the
    best point seen (``B`` (P, d) host array, ``c``, the DualGap ``dg``), ``best_dual``,
    ``reached`` and ``history``."""
    t_start = time.perf_counter()
    n, d = Xd.shape[0], Xd.shape[1]
    P = Sd.shape[1]
    cols = np.asarray(cols)
    stage_tol = np.asarray(stage_tol, np.float64).copy()
    m = cols.size

    def forward(B):  # (P, m, d) -> (n, m): one GEMM with m * d columns
        mm = B.shape[1]
        T = (Sd @ B.reshape(P, mm * d)).reshape(n, mm, d)
        if xp._t is None:
            return np.einsum("nmd,nd->nm", T, Xd)
        return xp._t.einsum("nmd,nd->nm", T, Xd)

    def adjoint(G):  # (n, m) -> (P, m, d): one GEMM
        mm = G.shape[1]
        return (Sd.T @ (G[:, :, None] * Xd[:, None, :]).reshape(n, mm * d)).reshape(P, mm, d)

    def penalty(B) -> np.ndarray:
        return beta * xp.to_numpy(_norms_last(xp, regularizer.penalized(B)).sum(0))

    tiny = float(np.finfo(xp.dtype).tiny)

    def prox(Z, thr: np.ndarray):
        Zp = regularizer.penalized(Z)
        nrm = _norms_last(xp, Zp)
        tb = xp.asarray(thr)[None, :]
        if xp._t is None:
            fac = np.maximum(1.0 - tb / np.maximum(nrm, tiny), 0.0).astype(xp.dtype)
        else:
            fac = xp._t.clamp_min(1.0 - tb / xp._t.clamp_min(nrm, tiny), 0.0)
        if not regularizer.free:
            return Z * fac[:, :, None]
        out = xp.copy(Z)
        regularizer.penalized(out)[...] = Zp * fac[:, :, None]
        return out

    def shift(Zs, c):
        return Zs + xp.asarray(c)[None, :] if output_bias else Zs

    fvals, fvg = _column_loss_ops(xp, loss, Y[:, cols])
    x_B = xp.copy(B0)
    x_c = np.array(c0, np.float64) if output_bias else np.zeros(m)
    x_s = forward(x_B)
    yB, yc, y_s = x_B, x_c.copy(), x_s
    t = np.ones(m)
    L = np.full(m, float(L_max))
    F_prev = fvals(shift(x_s, x_c)) + penalty(x_B)
    best: list = [None] * m  # (B host, c, DualGap)
    best_dual = np.full(m, -np.inf)
    hist: list = [[] for _ in range(m)]
    results: dict = {}
    slack = 1e-12 if xp.dtype == np.float64 else 1e-6
    k = 0

    def finish(j, reached):
        col = int(cols[j])
        if best[j] is None:  # never checked: the current point, uncertified
            Bh = xp.to_numpy(x_B[:, j, :], xp.dtype)
            results[col] = {"B": Bh, "c": float(x_c[j]), "dg": None, "best_dual": -np.inf,
                            "reached": False, "history": hist[j]}
            return
        Bh, cj, dg = best[j]
        results[col] = {"B": Bh, "c": cj, "dg": dg, "best_dual": float(best_dual[j]),
                        "reached": bool(reached), "history": hist[j]}

    for k in range(1, max_iter + 1):
        f_y, G = fvg(shift(y_s, yc))
        grad_B = adjoint(G)
        grad_c = xp.to_numpy(G.sum(0)) if output_bias else np.zeros(m)
        if shrink_L < 1.0:
            L = L * shrink_L
        while True:
            inv = 1.0 / L
            nB = prox(yB - grad_B * xp.asarray(inv)[None, :, None], beta * inv)
            nc = yc - grad_c * inv
            n_s = forward(nB)
            dB = nB - yB
            dc = nc - yc
            f_n = fvals(shift(n_s, nc))
            if np.all(L >= L_max):  # the global constant: sufficient decrease holds
                break
            lin = _coldot(xp, grad_B, dB) + grad_c * dc
            quad = 0.5 * L * (_coldot(xp, dB, dB) + dc * dc)
            fail = (f_n > f_y + lin + quad + slack * np.maximum(1.0, np.abs(f_y))) \
                & (L < L_max)
            if not np.any(fail):
                break
            L = np.where(fail, np.minimum(2.0 * L, L_max), L)
        F_new = f_n + penalty(nB)
        restart = F_new > F_prev  # adaptive restart, per output
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        mom = np.where(restart, 0.0, (t - 1.0) / t_new)
        t = np.where(restart, 1.0, t_new)
        mb = xp.asarray(mom)
        yB = nB + (nB - x_B) * mb[None, :, None]
        yc = nc + mom * (nc - x_c)
        y_s = n_s + (n_s - x_s) * mb[None, :]
        x_B, x_c, x_s, F_prev = nB, nc, n_s, F_new
        out_of_time = time_limit is not None and time.perf_counter() - t_start > time_limit
        if not (k % check_every == 0 or k == max_iter or out_of_time):
            continue
        dgs = gap_fn(x_B, x_c, x_s, cols)
        done = np.zeros(m, bool)
        for j, dg in enumerate(dgs):
            best_dual[j] = max(best_dual[j], dg.dual)
            gap = dg.primal - best_dual[j]
            hist[j].append((k, time.perf_counter() - t_start, dg.primal, gap))
            if best[j] is None or dg.primal <= best[j][2].primal:
                best[j] = (xp.to_numpy(x_B[:, j, :], xp.dtype), float(x_c[j]), dg)
            done[j] = gap <= stage_tol[j] * abs(dg.primal)
        if verbose:
            print(f"iter {k:6d}  outputs left {int(m - done.sum())}  primal "
                  f"{sum(g.primal for g in dgs):.10e}")
        if np.any(done):
            for j in np.flatnonzero(done):
                finish(j, True)
            keep = np.flatnonzero(~done)
            if keep.size == 0:
                break
            x_B, yB = _take(xp, x_B, keep, 1), _take(xp, yB, keep, 1)
            x_s, y_s = _take(xp, x_s, keep, 1), _take(xp, y_s, keep, 1)
            x_c, yc, L, t, F_prev = x_c[keep], yc[keep], L[keep], t[keep], F_prev[keep]
            stage_tol, best_dual = stage_tol[keep], best_dual[keep]
            best = [best[j] for j in keep]
            hist = [hist[j] for j in keep]
            cols = cols[keep]
            m = cols.size
            fvals, fvg = _column_loss_ops(xp, loss, Y[:, cols])
        if out_of_time:
            break
    for j in range(m):
        if int(cols[j]) not in results:
            finish(j, False)
    return results, k


def solve_gated_fista_multi(
    loss,
    Xa: np.ndarray,
    masks: np.ndarray,
    Y: np.ndarray,
    beta: float,
    *,
    output_bias: bool = False,
    regularizer: Optional[GroupL2Penalty] = None,
    tol: float = 1e-6,
    max_iter: int = 10000,
    check_every: int = 10,
    W0: Optional[np.ndarray] = None,
    c0=None,
    dtype=np.float64,
    backend="numpy",
    device=None,
    extrapolate: int = 5,
    time_limit: Optional[float] = None,
    polish="auto",
    polish_tol: float = 2e-2,
    polish_max_vars: int = 6000,
    verbose: int = 0,
) -> FastResult:
    """Solve ``c`` gated-ReLU group lassos over the same data and patterns **jointly**.

    Output ``k`` is the scalar program of :func:`solve_gated_fista` with target
    ``Y[:, k]`` and the same ``loss`` (a column loss: for a multi-output regression
    ``loss.column_loss(c)``, which keeps scikit-learn's share ``1/c``; for one-vs-rest the
    binary loss) and ``beta``; the penalty is per output and per block (blocks of shape
    ``(c, P, d_aug)``, docs/mathematics.rst §3.7), so the programs are independent and
    their sum is the multi-output program. One FISTA loop serves all of them: every
    iteration is one forward product ``Z = rowsum_d((S @ B) o Xa)`` and one adjoint
    ``S^T (G o Xa)`` for all outputs (one pass over the ``n x P`` masks each), with a
    step, momentum, restart and line search per output. Each output is certified on its
    own by the certificate core (:func:`~convexrelu.certificates._gap.gated_duality_gap`,
    its dual constraint evaluated for all outputs in one product on the backend) and
    leaves the loop when its relative gap is ``<= tol`` (or ``polish_tol`` before the
    polish, which runs per output on the host in float64, as in
    :func:`solve_gated_fista`). With the polish and ``dtype=float64``, a stage that only
    brings its outputs to ``polish_tol`` (at least ``1e-3``) runs its products in
    float32 on the same backend: its certificates (the dual points' scaling) are
    float64, the objective it hands on is recomputed in float64, and the returned point
    and gap are the float64 polish's (digits one-vs-rest, 250 joint iterations: 1.9 s
    -> 1.0 s).

    Parameters
    ----------
    loss : str or Loss
        A smooth scalar (single-output) loss applied to every column.
    Xa, masks : as in :func:`solve_gated_fista`.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets in the loss's encoding, one column per program.
    beta : float
        ``alpha`` of every column program (sum-reduced).
    W0 : ndarray of shape (n_outputs, n_patterns, d_aug), optional
    c0 : ndarray of shape (n_outputs,), optional
    other parameters
        As in :func:`solve_gated_fista`; ``tol`` applies to every output.

    Returns
    -------
    FastResult
        ``B`` of shape (n_outputs, n_patterns, d_aug), ``output_bias`` of shape
        (n_outputs,), ``objective`` / ``gap`` / ``dual_value`` summed over the outputs,
        ``dual`` of shape (n_samples, n_outputs), ``converged`` when every output is
        certified; ``info["columns"]``: per output ``objective``, ``gap``, ``rel_gap``,
        ``converged``, ``history`` and ``polish``.

    Raises
    ------
    ValueError
        If ``Y`` is not 2-D with one row per sample, or ``W0`` / ``c0`` have the wrong
        shape (and as :func:`solve_gated_fista` for the other inputs).

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` (or ``time_limit``) is reached before every output is certified.
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] < 1:
        raise ValueError(f"Y must have shape (n_samples, n_outputs); got {Y.shape}. For one "
                         "output use solve_gated_fista.")
    if Y.shape[0] != np.shape(Xa)[0]:
        raise ValueError(f"Y must have shape (n_samples, n_outputs) = ({np.shape(Xa)[0]}, "
                         f"c); got {Y.shape}.")
    loss, Xa, S, _, dtype = _check_inputs(loss, Xa, masks, Y[:, 0], beta, tol, max_iter,
                                          dtype)
    xp = get_backend(backend, device, dtype)
    c, P, d_aug = Y.shape[1], S.shape[1], Xa.shape[1]
    reg = _check_regularizer(regularizer, d_aug)
    k_pen = reg.penalized_dim
    W = np.zeros((c, P, d_aug)) if W0 is None else np.array(W0, dtype=np.float64)
    if W.shape != (c, P, d_aug):
        raise ValueError(f"W0 must have shape (n_outputs, n_patterns, d_aug) = "
                         f"{(c, P, d_aug)}; got {W.shape}.")
    cb = np.zeros(c) if (c0 is None or not output_bias) else \
        np.array(np.broadcast_to(np.asarray(c0, np.float64), (c,)))
    L_max = max(loss.lipschitz * lipschitz_bound(Xa, S, output_bias=output_bias, xp=xp),
                np.finfo(float).tiny)
    basis = (range_basis(np.asarray(S, np.float64), output_bias=True)
             if reg.free else None)
    Xd, Sd = xp.asarray(Xa), xp.asarray(S)
    X64, S64 = (Xd, Sd) if dtype == np.float64 else (xp.asarray(Xa, np.float64),
                                                     xp.asarray(S, np.float64))
    n = Xa.shape[0]

    def bounds(Lam: np.ndarray) -> np.ndarray:  # max_i ||Xa_pen^T D_i lam_k||, all k at once
        m = Lam.shape[1]
        if P == 0:
            return np.zeros(m)
        lb = xp.asarray(Lam, np.float64)
        corr = (S64.T @ (lb[:, :, None] * X64[:, None, :k_pen]).reshape(n, m * k_pen)
                ).reshape(P, m, k_pen)
        return xp.to_numpy(_norms_last(xp, corr).max(0) if xp._t is None
                           else _norms_last(xp, corr).amax(0))

    def certify_cols(Z: np.ndarray, primal: np.ndarray, cols) -> list:
        """The core's gap of every output at predictions ``Z`` (n, m)."""
        lams = []
        for j, col in enumerate(cols):
            def capture(lam):
                raise _Captured(lam)
            try:
                gated_duality_gap(loss, None, None, Y[:, col], None, 0.0, beta,
                                  output_bias=output_bias, regularizer=reg,
                                  z=Z[:, j], null_basis=basis, primal=float(primal[j]),
                                  bound_fn=capture)
            except _Captured as cap:
                lams.append(np.asarray(cap.args[0], np.float64))
        M = bounds(np.column_stack(lams))
        return [gated_duality_gap(loss, None, None, Y[:, col], None, 0.0, beta,
                                  output_bias=output_bias, regularizer=reg,
                                  z=Z[:, j], null_basis=basis, primal=float(primal[j]),
                                  bound_fn=lambda lam, b=float(M[j]): b)
                for j, col in enumerate(cols)]

    z_hist: dict = {}

    def gap_fn(B, cvec, Zs, cols) -> list:
        Z = xp.to_numpy(Zs) + (cvec[None, :] if output_bias else 0.0)
        Bp = reg.penalized(B)
        pen = beta * xp.to_numpy(_norms_last(xp, xp.asarray(Bp, np.float64)).sum(0))
        primal = np.array([loss.value(Z[:, j], Y[:, col]) for j, col in enumerate(cols)]) \
            + pen
        dgs = certify_cols(Z, primal, cols)
        if extrapolate > 0:
            acc, where = [], []
            for j, col in enumerate(cols):
                h = z_hist.setdefault(int(col), [])
                h.append(Z[:, j].copy())
                if len(h) > extrapolate + 1:
                    h.pop(0)
                if len(h) == extrapolate + 1:
                    za = _extrapolate(h)
                    if za is not None and np.all(np.isfinite(za)):
                        acc.append(za)
                        where.append(j)
            if acc:
                sub = [cols[j] for j in where]
                das = certify_cols(np.column_stack(acc), primal[where], sub)
                for j, da in zip(where, das):
                    if da.dual > dgs[j].dual:
                        dgs[j] = da
        return dgs

    if polish == "auto":
        polish = dtype == np.float64
    polish = bool(polish) and loss.curvature(np.zeros(1), np.ones(1)) is not None
    Xh, Sh = np.asarray(Xa, np.float64), np.asarray(S, np.float64)
    shrink_L = 1.0 if loss.constant_curvature(Y[:, 0]) is not None else 0.8

    t_start = time.perf_counter()
    objective = np.full(c, np.inf)
    best_dual = np.full(c, -np.inf)
    converged = np.zeros(c, bool)
    polish_on = np.full(c, polish)
    stage_tol = np.full(c, max(tol, polish_tol) if polish else tol)
    pinfo = [{"rounds": 0, "newton_steps": 0, "seconds": 0.0} for _ in range(c)]
    # one set of polish buffers for all columns (the n x n matrices of the sample-space
    # step): fresh ones per column cost their page faults, 1.8 s of a first digits solve
    polish_work: dict = {}
    history: list = [[] for _ in range(c)]
    iters_left, n_iter = int(max_iter), 0
    active = np.arange(c)
    W_start, c_start = W.copy(), cb.copy()
    # a stage that only brings its outputs to a rough gap before the float64 polish runs
    # its products in float32 (its certificates stay float64, and its primal values are
    # recomputed in float64 below): the digits one-vs-rest programs' first stage
    xp32 = ArrayBackend(xp.name, device=xp.device, dtype=np.float32) if (
        polish and dtype == np.float64) else None
    X32 = S32 = None
    while active.size:
        elapsed = time.perf_counter() - t_start
        for col in active:
            z_hist.pop(int(col), None)
        rough = xp32 is not None and bool(np.all(stage_tol[active] >= _ROUGH_STAGE_TOL))
        if rough and X32 is None:
            X32, S32 = xp32.asarray(Xa), xp32.asarray(S)
        elif not rough:  # the later stages run in float64 too: free the copies
            X32 = S32 = xp32 = None
        xs, Xs, Ss = (xp32, X32, S32) if rough else (xp, Xd, Sd)
        B0 = xs.asarray(np.ascontiguousarray(W_start[active].transpose(1, 0, 2)))
        res, k = _fista_multi_core(
            xp=xs, loss=loss, Xd=Xs, Sd=Ss, Y=Y, beta=beta,
            regularizer=reg, output_bias=output_bias,
            L_max=L_max, B0=B0, c0=c_start[active], stage_tol=stage_tol[active],
            max_iter=iters_left, check_every=int(check_every), shrink_L=shrink_L,
            gap_fn=gap_fn, cols=active,
            time_limit=None if time_limit is None else max(time_limit - elapsed, 0.0),
            verbose=verbose)
        for col in active:
            r = res[int(col)]
            history[col] += [(h[0] + n_iter, h[1] + elapsed, h[2], h[3])
                             for h in r["history"]]
            best_dual[col] = max(best_dual[col], r["best_dual"])
            prim = r["dg"].primal if r["dg"] is not None else np.inf
            if rough and np.isfinite(prim):  # the float32 products' value, in float64
                Bc = np.asarray(r["B"], np.float64)
                zc = np.einsum("nd,nd->n", Xh, Sh @ Bc) + (r["c"] if output_bias else 0.0)
                prim = float(loss.value(zc, Y[:, col])) + beta * float(
                    np.sum(np.linalg.norm(reg.penalized(Bc), axis=1)))
            if prim <= objective[col] or not np.isfinite(objective[col]):
                W[col], cb[col] = r["B"], r["c"]
                objective[col] = prim
            converged[col] = bool(np.isfinite(objective[col])) and \
                objective[col] - best_dual[col] <= tol * abs(objective[col])
        n_iter += k
        iters_left -= k
        elapsed = time.perf_counter() - t_start
        out_of_time = time_limit is not None and elapsed >= time_limit
        if iters_left <= 0 or out_of_time:
            break
        nxt = []
        for col in active:
            if converged[col]:
                continue
            if not polish_on[col]:  # stopped by the cap before tol (handled above)
                nxt.append(col)
                continue
            t_pol = time.perf_counter()
            yk = Y[:, col]

            def certify(Wc, cc, z, yk=yk):  # host float64, no extrapolation
                return gated_duality_gap(loss, Xh, Sh, yk, Wc, cc, beta,
                                         output_bias=output_bias, regularizer=reg,
                                         z=z, null_basis=basis)

            left = None if time_limit is None else time_limit - (t_pol - t_start)
            pol = newton_polish(loss, Xh, Sh, yk, beta, W[col].copy(), cb[col],
                                output_bias=output_bias, regularizer=reg,
                                certify=certify, tol=tol, best_dual=best_dual[col],
                                max_vars=polish_max_vars, time_limit=left,
                                work=polish_work, verbose=verbose)
            _count_polish(pinfo[col], pol, time.perf_counter() - t_pol)
            if not pol:  # no curvature formula: plain FISTA to tol
                polish_on[col], stage_tol[col] = False, tol
                nxt.append(col)
                continue
            history[col] += [(n_iter, h[0] + t_pol - t_start, h[1], h[2])
                             for h in pol["history"]]
            best_dual[col] = max(best_dual[col], pol["best_dual"])
            if pol["dg"].primal <= objective[col]:
                W[col] = pol["W"]
                cb[col] = float(pol["c"]) if output_bias else 0.0
                objective[col] = pol["dg"].primal
            gap = objective[col] - best_dual[col]
            converged[col] = gap <= tol * abs(objective[col])
            if converged[col]:
                continue
            if "info" in pol:  # restricted problem too large: plain FISTA to tol
                polish_on[col], stage_tol[col] = False, tol
            else:
                rel = gap / max(abs(objective[col]), np.finfo(float).tiny)
                stage_tol[col] = max(tol, 0.1 * min(stage_tol[col], rel))
            nxt.append(col)
        active = np.asarray(nxt, dtype=int)
        W_start, c_start = W.copy(), cb.copy()
    Z = np.einsum("nd,kpd,np->nk", Xh, W, Sh) + (cb[None, :] if output_bias else 0.0)
    dual = np.column_stack([dual_point(loss, Z[:, k], Y[:, k], output_bias=output_bias)[0]
                            for k in range(c)])
    gaps = objective - best_dual
    columns = [{"objective": float(objective[k]), "gap": float(gaps[k]),
                "rel_gap": float(gaps[k] / max(abs(objective[k]), np.finfo(float).tiny)),
                "converged": bool(converged[k]), "history": history[k], "polish": pinfo[k]}
               for k in range(c)]
    out = FastResult(
        B=W.astype(dtype) if (dtype == np.float32 and not polish) else W,
        output_bias=cb if output_bias else np.zeros(c),
        objective=float(objective.sum()), gap=float(gaps.sum()), dual=dual,
        dual_value=float(best_dual.sum()), n_iter=max(n_iter, 1),
        converged=bool(np.all(converged)),
        history=sorted((h for hs in history for h in hs), key=lambda h: h[1]),
        time=time.perf_counter() - t_start,
        info={"columns": columns, "backend": xp.name, "device": str(xp.device),
              "L_max": L_max})
    if not out.converged:
        _warn_not_converged("Gated FISTA (joint outputs)", out, tol, max_iter)
    return out

"""Full-batch gradient descent as a discretised gradient flow on the package's objective."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence, Union

import numpy as np

from ._module import TwoLayerReLU, resolve_device, resolve_dtype, torch
from ._monitors import Monitor, TrainingState

__all__ = ["train_gradient_flow", "TrainingHistory"]

LossName = Literal["squared", "logistic", "hinge"]


@dataclass
class TrainingHistory:
    """Record of one :func:`train_gradient_flow` run (numpy only, picklable).

    Attributes
    ----------
    steps : ndarray of shape (n_records,)
        Step numbers of the records (``0``, ``record_every``, ..., and the last step).
    objective : ndarray of shape (n_records,)
        Training objective ``J`` (docs/mathematics.rst §8.1) at those steps.
    loss : ndarray of shape (n_records,)
        Data term ``(1/n) loss_sum`` alone.
    grad_norm : ndarray of shape (n_records,)
        ``||grad J||`` (the unnormalised gradient, also for ``normalized=True``).
    network : ReLUNet or None
        Final network (``None`` for a leaky ReLU, ``negative_slope != 0``, and when the
        weights are no longer finite after a divergence; see :attr:`weights`).
    weights : dict
        Final ``W1, b1, W2, b2`` as numpy arrays.
    snapshot_steps : ndarray of shape (n_snapshots,)
        Steps of the thinned neuron snapshots (at most ``max_snapshots``).
    W1, b1, W2 : ndarrays of shapes (n_snapshots, m, d), (n_snapshots, m), (n_snapshots, c, m)
        Neurons at ``snapshot_steps``.
    pattern_changes : ndarray of shape (n_neurons,)
        Number of steps at which neuron ``j``'s activation pattern on the training data
        changed.
    monitors : dict
        ``monitors[name][key]`` is the stacked array of what monitor ``name`` returned
        under ``key`` (first axis: its evaluations; ``"step"`` says when).
    interrupted : bool
        True when training stopped on ``KeyboardInterrupt``: the history then holds
        everything up to the last completed record, and :attr:`network` is the net at
        the step where training stopped.
    status : {"completed", "interrupted", "diverged"}
    n_steps : int
        Gradient steps actually taken.
    lr, alpha : float
    loss_name : str
    normalized : bool
    elapsed : float
        Wall-clock seconds.
    """

    steps: np.ndarray
    objective: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    network: object
    weights: dict
    snapshot_steps: np.ndarray
    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    pattern_changes: np.ndarray
    monitors: dict = field(default_factory=dict)
    interrupted: bool = False
    status: str = "completed"
    n_steps: int = 0
    lr: float = 0.0
    alpha: float = 0.0
    loss_name: str = "squared"
    normalized: bool = False
    elapsed: float = 0.0

    @property
    def final_objective(self) -> float:
        """``J`` at the last record."""
        return float(self.objective[-1])

    def fit_kl_exponent(self, *, offset: float = 0.0, start: int = 0) -> float:
        """Slope of ``log ||grad J||^2`` against ``log(J - offset)`` (docs/mathematics.rst §7.2).

        A Kurdyka–Łojasiewicz inequality ``||grad L||^2 >= C L^theta`` along the run shows
        up as slope ``theta``: ``1`` is the PL regime (linear convergence), ``> 1`` a
        degenerate one.

        Parameters
        ----------
        offset : float, default=0.0
            Subtracted from ``J`` (e.g. the optimal value when ``alpha > 0``).
        start : int, default=0
            Ignore records before step ``start`` (transient).

        Returns
        -------
        float
            The least-squares slope; ``nan`` with fewer than two usable records.
        """
        L = self.objective - offset
        g2 = self.grad_norm ** 2
        ok = (self.steps >= start) & (L > 0) & (g2 > 0) & np.isfinite(L) & np.isfinite(g2)
        if np.count_nonzero(ok) < 2 or np.ptp(np.log(L[ok])) == 0:
            return float("nan")
        return float(np.polyfit(np.log(L[ok]), np.log(g2[ok]), 1)[0])


def _check_positive_float(value, name: str, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a float; got {value!r} of type "
                        f"{type(value).__name__}.") from None
    ok = np.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        rng = "[0.0, inf)" if allow_zero else "(0.0, inf)"
        raise ValueError(f"{name} must be a float in the range {rng}; got {value!r}.")
    return v


def _initial_weights(rng: np.random.Generator, d: int, m: int, c: int, *, init_scale: float,
                     balanced: bool, bias: bool):
    W1 = init_scale * rng.standard_normal((m, d)) / math.sqrt(d)
    b1 = init_scale * rng.standard_normal(m) / math.sqrt(d) if bias else np.zeros(m)
    W2 = init_scale * rng.standard_normal((c, m)) / math.sqrt(m)
    b2 = np.zeros(c)
    if balanced:
        u = np.sqrt(np.sum(W1 ** 2, axis=1) + b1 ** 2)
        a = np.linalg.norm(W2, axis=0)
        W2 = W2 * (u / np.where(a > 0, a, 1.0))[None, :]
    return W1, b1, W2, b2


def train_gradient_flow(
    X,
    y,
    *,
    n_neurons: Optional[int] = None,
    alpha: float = 0.0,
    loss: Union[LossName, object] = "squared",
    lr: float = 1e-2,
    n_steps: int = 1000,
    init_scale: float = 1.0,
    balanced_init: bool = False,
    normalized: bool = False,
    bias: bool = True,
    output_bias: Optional[bool] = None,
    penalize_bias: bool = False,
    negative_slope: float = 0.0,
    train_output_layer: bool = True,
    init=None,
    device="cpu",
    dtype="float64",
    random_state=None,
    record_every: Optional[int] = None,
    max_snapshots: int = 200,
    monitors: Sequence[Monitor] = (),
    progress: Optional[bool] = None,
    num_threads: Optional[int] = None,
) -> TrainingHistory:
    """Train a two-layer ReLU net by full-batch gradient descent on the package objective.

    Gradient descent with step ``lr`` is the explicit-Euler discretisation of the
    gradient flow :math:`\\dot\\theta = -\\nabla J(\\theta)` (time ``t = lr * step``) on
    exactly the objective that :meth:`convexrelu.ReLUNet.objective`, the estimators and
    the certificates use (scikit-learn's normalisation, docs/mathematics.rst §8.1):

    .. math::

        J(\\theta) = \\frac1n\\Big[\\sum_i \\ell(\\hat y_i; y_i)
            + \\frac\\alpha2\\big(\\|W_1\\|_F^2 + \\|W_2\\|_F^2\\big)\\Big],
        \\qquad \\hat y = W_2\\,(W_1 x + b_1)_+ + b_2,

    biases unpenalised (unless ``penalize_bias``). With ``normalized=True`` the step is
    taken on :math:`\\log J`, :math:`\\theta \\leftarrow \\theta - \\mathrm{lr}\\,
    \\nabla J / J`, a time-reparametrised gradient flow that does not stall when the
    logistic loss of a separable problem decays exponentially (max-margin training,
    docs/mathematics.rst §5.5).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets; binary labels (``{-1, +1}``, ``{0, 1}`` or any two classes) for the
        logistic and hinge losses.
    n_neurons : int, optional
        Hidden width ``m``; required unless ``init`` is given.
    alpha : float, default=0.0
        Weight decay (scikit-learn's ``alpha``); ``0`` trains the unregularised loss.
    loss : {"squared", "logistic", "hinge"} or Loss, default="squared"
        The hinge loss is trained with its subgradient.
    lr : float, default=1e-2
        Step size (gradient-flow time per step).
    n_steps : int, default=1000
    init_scale : float, default=1.0
        Initial weights ``W1 ~ init_scale N(0, 1/d)``, ``b1 ~ init_scale N(0, 1/d)``,
        ``W2 ~ init_scale N(0, 1/m)``, ``b2 = 0``; a small value gives the small-
        initialisation regime of Wang & Pilanci.
    balanced_init : bool, default=False
        Rescale the output weights so that ``||alpha_j|| = ||(u_j, b_j)||`` at
        initialisation (the conserved quantity of :class:`ConservationMonitor` is then 0).
    normalized : bool, default=False
        Step on ``log J`` instead of ``J`` (see above). Training stops early once ``J``
        underflows below the smallest normal number of ``dtype`` (the logistic loss of a
        separable problem does so once the margins reach about 700 in float64), where
        the step ``lr / J`` is no longer computed accurately. A fixed ``lr`` follows
        the flow only while ``lr`` times the curvature of ``log J`` is small, and that
        curvature grows with the margins ``y_i f(x_i)``: late in a max-margin run a large
        ``lr`` makes the direction zigzag between support vectors and the normalised
        margin oscillates by up to a few percent (on the 10 orthogonally separable
        points of ``convexrelu.demos.dual_extreme_points``: ``lr=0.05`` from margins of
        about 200 on, while ``lr=0.005`` stays stable until ``J`` underflows).
    bias : bool, default=True
        Whether the hidden layer has a bias.
    output_bias : bool, optional
        Whether the output layer has a bias; default: same as ``bias``. (The convex
        program always has a free output bias, docs/mathematics.rst §8.3.)
    penalize_bias : bool, default=False
        Put ``b1`` in the weight decay (Pilanci–Ergen convention).
    negative_slope : float, default=0.0
        Leaky ReLU slope (``0``: ReLU). With a nonzero slope ``history.network`` is None.
    train_output_layer : bool, default=True
        False freezes ``W2, b2`` at their initial values (Frei & Gu's fixed second layer).
    init : ReLUNet, optional
        Initial weights; overrides ``init_scale`` and ``balanced_init``.
    device : {"cpu", "cuda"} or torch.device, default="cpu"
    dtype : {"float64", "float32"}, default="float64"
    random_state : int, numpy Generator or None, default=None
        Seeds the numpy initialisation (identical on every device).
    record_every : int, optional
        Record objective, gradient norm and monitors every ``record_every`` steps;
        default ``max(1, n_steps // 1000)``. The last step is always recorded.
    max_snapshots : int, default=200
        At most this many neuron snapshots are kept (evenly thinned over the records).
    monitors : sequence of Monitor, default=()
        Evaluated at recorded steps (see :mod:`convexrelu.nonconvex`).
    progress : bool, optional
        tqdm progress bar; default: shown when ``n_steps >= 20000`` and stderr is a
        terminal (never in a log file).
    num_threads : int, optional
        torch CPU threads while training (restored afterwards). Default: one thread for
        small problems (``n_samples * n_neurons * (n_features + n_outputs) < 10**6``),
        where thread start-up costs more than it saves, else torch's setting.

    Returns
    -------
    TrainingHistory
        On ``KeyboardInterrupt`` (also raised inside a monitor) training stops and the
        history so far is returned with ``interrupted=True``. If ``J`` becomes non-finite
        training stops with ``status="diverged"`` and a ``RuntimeWarning``.

    Raises
    ------
    ValueError
        For invalid arguments, ``device="cuda"`` without CUDA, or targets that do not
        fit the loss.

    References
    ----------
    Y. Wang and M. Pilanci, "The convex geometry of backpropagation", ICLR 2022.
    """
    from .._validation import check_data_matrix, check_positive_int, check_random_state
    from ..losses import get_loss

    X = check_data_matrix(X)
    n, d = X.shape
    loss_ = get_loss(loss)
    Y = loss_.encode_targets(y)
    if Y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {Y.shape[0]}; they must match.")
    Y2 = Y[:, None] if Y.ndim == 1 else Y
    c = Y2.shape[1]
    alpha = _check_positive_float(alpha, "alpha", allow_zero=True)
    lr = _check_positive_float(lr, "lr")
    init_scale = _check_positive_float(init_scale, "init_scale")
    n_steps = check_positive_int(n_steps, "n_steps", minimum=0)
    negative_slope = _check_positive_float(negative_slope, "negative_slope", allow_zero=True)
    if record_every is None:
        record_every = max(1, n_steps // 1000)
    record_every = check_positive_int(record_every, "record_every")
    max_snapshots = check_positive_int(max_snapshots, "max_snapshots")
    monitors = list(monitors)
    for mon in monitors:
        if not callable(mon):
            raise TypeError(f"monitors must be Monitor instances (callables taking a "
                            f"TrainingState); got {type(mon).__name__}.")
    names = [getattr(mon, "name", type(mon).__name__) for mon in monitors]
    if len(set(names)) != len(names):
        raise ValueError(f"monitor names must be unique; got {names}. Pass name=... to "
                         "tell them apart.")
    out_bias = bool(bias) if output_bias is None else bool(output_bias)
    dev = resolve_device(device)
    tdtype = resolve_dtype(dtype)

    # ---------------------------------------------------------------- initial weights
    if init is not None:
        W1, b1, W2, b2 = (np.asarray(init.W1, float), np.asarray(init.b1, float),
                          np.asarray(init.W2, float), np.asarray(init.b2, float))
        if W1.shape[1] != d:
            raise ValueError(f"init has {W1.shape[1]} features but X has {d}.")
        if W2.shape[0] != c:
            raise ValueError(f"init has {W2.shape[0]} outputs but y has {c} column(s).")
        if n_neurons is not None and int(n_neurons) != W1.shape[0]:
            raise ValueError(f"n_neurons={n_neurons} but init has {W1.shape[0]} neurons; "
                             "omit n_neurons or make them agree.")
        if (not bias and np.any(b1 != 0)) or (not out_bias and np.any(b2 != 0)):
            raise ValueError("bias=False, but init has nonzero biases; pass bias=True or "
                             "zero them.")
        m = W1.shape[0]
    else:
        if n_neurons is None:
            raise ValueError("n_neurons is required when no init network is given.")
        m = check_positive_int(n_neurons, "n_neurons")
        rng = check_random_state(random_state)
        W1, b1, W2, b2 = _initial_weights(rng, d, m, c, init_scale=init_scale,
                                          balanced=balanced_init, bias=bias)

    model = TwoLayerReLU(d, m, c, bias=bias, output_bias=out_bias,
                         negative_slope=negative_slope, dtype=tdtype,
                         device=dev).set_weights(W1, b1, W2, b2)
    named = {"W1": model.hidden.weight, "W2": model.output.weight}
    if bias:
        named["b1"] = model.hidden.bias
    if out_bias:
        named["b2"] = model.output.bias
    trained = tuple(k for k in ("W1", "b1", "W2", "b2") if k in named
                    and (train_output_layer or k in ("W1", "b1")))
    params = [named[k] for k in trained]
    for k, p in named.items():
        p.requires_grad_(k in trained)

    Xt = torch.as_tensor(X, dtype=tdtype, device=dev)
    Yt = torch.as_tensor(Y2, dtype=tdtype, device=dev)
    name = loss_.name

    def evaluate():
        pre = model.preactivation(Xt)
        z = model.output(model.activation(pre))
        data = (loss_.torch_value(z, Yt) if Y.ndim == 2 else
                loss_.torch_value(z[:, 0], Yt[:, 0])) / n
        pen = torch.sum(model.hidden.weight ** 2) + torch.sum(model.output.weight ** 2)
        if penalize_bias and bias:
            pen = pen + torch.sum(model.hidden.bias ** 2)
        J = data + (alpha / (2.0 * n)) * pen
        return pre, z, data, J

    # ---------------------------------------------------------------- records
    rec_steps, rec_obj, rec_loss, rec_gn = [], [], [], []
    n_records_max = n_steps // record_every + 2
    snap_every = record_every * max(1, math.ceil(n_records_max / max_snapshots))
    snap_steps, snap_W1, snap_b1, snap_W2 = [], [], [], []
    mon_records = {nm: [] for nm in names}
    pattern_changes = torch.zeros(m, dtype=torch.int64, device=dev)
    record_index = 0

    def record(step, z, data, J, grads):
        nonlocal record_index
        data, J = float(data.detach()), float(J.detach())
        weights = model.weights()
        gdict = {k: g.detach().cpu().to(torch.float64).numpy().copy()
                 for k, g in zip(trained, grads)}
        zn = z.detach().cpu().to(torch.float64).numpy()
        with np.errstate(over="ignore", invalid="ignore"):
            gn = math.sqrt(sum(float(np.sum(g * g)) for g in gdict.values()))
        new = {}
        if monitors:
            zz = zn[:, 0] if Y.ndim == 1 else zn
            og = loss_.gradient(zz, Y) / n
            state = TrainingState(
                step=step, X=X, y=Y, loss=loss_, alpha=alpha, weights=weights,
                gradients=gdict, predictions=zn, output_gradient=og.reshape(n, c),
                objective=float(J), data_loss=float(data), bias=bias,
                negative_slope=negative_slope, penalize_bias=penalize_bias, trained=trained)
            if record_index == 0:
                for mon in monitors:
                    mon.start(state)
            for mon, nm in zip(monitors, names):
                if record_index % max(1, int(getattr(mon, "every", 1))) == 0:
                    out = dict(mon(state))
                    out["step"] = step
                    new[nm] = out
        # commit everything at once so that an interrupt leaves consistent records
        for nm, out in new.items():
            mon_records[nm].append(out)
        rec_steps.append(step)
        rec_obj.append(float(J))
        rec_loss.append(float(data))
        rec_gn.append(gn)
        if step % snap_every == 0 or step == n_steps:
            snap_steps.append(step)
            snap_W1.append(weights["W1"])
            snap_b1.append(weights["b1"])
            snap_W2.append(weights["W2"])
        record_index += 1

    if num_threads is None and dev.type == "cpu" and n * m * (d + c) < 10 ** 6:
        num_threads = 1
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(check_positive_int(num_threads, "num_threads"))
    status = "completed"
    step = 0
    t0 = time.perf_counter()
    from .._progress import progress_bar

    bar = progress_bar(total=n_steps, desc="gradient flow", unit="step", progress=progress,
                       large=n_steps >= 20000)
    prev_mask = None
    try:
        while True:
            pre, z, data, J = evaluate()
            mask = pre.detach() > 0
            if prev_mask is not None:
                pattern_changes += torch.any(mask != prev_mask, dim=0).to(torch.int64)
            prev_mask = mask
            Jv = float(J.detach())
            if not math.isfinite(Jv):
                status = "diverged"
                warnings.warn(f"the objective became {Jv} at step {step}; training stopped. "
                              f"Reduce lr (now {lr}) or init_scale.", RuntimeWarning,
                              stacklevel=2)
                break
            grads = torch.autograd.grad(J, params)
            if step % record_every == 0 or step == n_steps:
                record(step, z, data, J, grads)
            if step == n_steps:
                break
            scale = lr / Jv if normalized else lr
            if normalized and not Jv >= torch.finfo(tdtype).tiny:
                break  # J underflowed: the step lr / J would no longer be accurate
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p.sub_(scale * g)
            step += 1
            if bar is not None and step % record_every == 0:
                bar.update(record_every)
                bar.set_postfix(objective=f"{Jv:.4g}", refresh=False)
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        if bar is not None:
            bar.close()
        torch.set_num_threads(old_threads)

    weights = model.weights()
    network = None
    if negative_slope == 0.0 and all(np.all(np.isfinite(w)) for w in weights.values()):
        from ..network import ReLUNet

        network = ReLUNet(weights["W1"], weights["b1"], weights["W2"], weights["b2"])

    def stack(lst, shape):
        return np.stack(lst) if lst else np.zeros((0, *shape))

    monitors_out = {}
    for nm, lst in mon_records.items():
        keys = lst[0].keys() if lst else ()
        monitors_out[nm] = {k: np.asarray([r[k] for r in lst]) for k in keys}

    return TrainingHistory(
        steps=np.asarray(rec_steps, dtype=np.int64),
        objective=np.asarray(rec_obj, dtype=float),
        loss=np.asarray(rec_loss, dtype=float),
        grad_norm=np.asarray(rec_gn, dtype=float),
        network=network,
        weights=weights,
        snapshot_steps=np.asarray(snap_steps, dtype=np.int64),
        W1=stack(snap_W1, (m, d)),
        b1=stack(snap_b1, (m,)),
        W2=stack(snap_W2, (c, m)),
        pattern_changes=pattern_changes.cpu().numpy().astype(np.int64),
        monitors=monitors_out,
        interrupted=status == "interrupted",
        status=status,
        n_steps=int(step),
        lr=lr,
        alpha=alpha,
        loss_name=name,
        normalized=bool(normalized),
        elapsed=time.perf_counter() - t0,
    )

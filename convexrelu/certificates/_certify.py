"""Global-optimality certificates for trained two-layer ReLU networks (docs/mathematics.rst §4.4,
§4.5).

Given any network (any width, not necessarily stationary), :func:`certify` computes

1. the objective ``J`` (scikit-learn's normalisation by default, docs/mathematics.rst §8.1);
2. the dual point ``lambda = -grad l(y_hat)`` (output bias re-fitted, docs/mathematics.rst §8.3);
3. ``M(lambda)`` exactly over all activation patterns (:mod:`._dual`), or, when they
   are too many to list, a proven upper bound by branch and bound (:mod:`._bnb`: exact
   to ``tol`` when it closes within the time limit, a valid but loose bound otherwise),
   or, at ranks beyond it, a heuristic estimate by local search (:mod:`._search`, no
   proof);
4. the best feasible rescaling ``s* lambda`` and the lower bound ``LB = D(s* lambda)``,
   valid for every network of every width (weak duality);
5. the gap ``J - LB``, the most violating neuron and per-neuron KKT residuals.

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact polynomial-time
convex optimization formulations for two-layer networks", ICML 2020.

Y. Wang, J. Lacotte and M. Pilanci, "The hidden convex optimization landscape of
regularized two-layer ReLU networks: an exact characterization of optimal solutions",
ICLR 2022.
"""

from __future__ import annotations

import json
import numbers
import sys
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

import numpy as np

from ..arrangements._patterns import cone_signs
from .._validation import augment, check_data_matrix, check_nonneg_float
from ..losses import Loss, get_loss
from ._dual import dual_constraint, dual_constraints
from .._parallel import resolve_n_jobs
from .._polish import polish_support
from ._gap import dual_point, relative_gap, within_tol

__all__ = ["certify", "Certificate", "ViolatingNeuron", "Reduction"]

Reduction = Literal["sklearn", "mean", "sum"]
_REDUCTIONS = ("sklearn", "mean", "sum")


# --------------------------------------------------------------------------- results
@dataclass
class ViolatingNeuron:
    """The neuron that most violates the dual constraint, and what adding it gains.

    Attributes
    ----------
    weight : ndarray of shape (n_features,)
        First-layer weights ``u`` (unit penalised norm together with ``bias`` when the
        hidden bias is penalised, ``||u|| = 1`` otherwise).
    bias : float
        Hidden bias ``b`` (``0`` without hidden bias).
    sign : int
        Sign of the output weight.
    dual_value : float
        ``sign * lambda^T (X u + b)_+``, equal to ``M(lambda)`` (sum form).
    step : float
        The step ``t >= 0`` of the line search: the neuron is added as
        ``(sqrt(t) u, sqrt(t) b)`` with output weight ``sign * sqrt(t)`` (balanced).
    output_bias_shift : float
        The output-bias correction applied together with the neuron.
    objective_decrease : float
        ``J(net) - J(net + neuron)`` in the certificate's normalisation, output-bias shift
        included (``> 0`` when ``M(lambda) > beta``): the best decrease along this single
        neuron, a lower bound on the suboptimality ``J - p*``, not the gap (its upper bound).
    """

    weight: np.ndarray
    bias: float
    sign: int
    dual_value: float
    step: float
    output_bias_shift: float
    objective_decrease: float

    def add_to(self, net):
        """Return ``net`` with this neuron added (and the output bias shifted).

        Parameters
        ----------
        net : ReLUNet
            A one-output network.

        Returns
        -------
        ReLUNet
        """
        from ..network import ReLUNet

        r = np.sqrt(self.step)
        W1 = np.vstack([net.W1, r * self.weight[None, :]])
        b1 = np.concatenate([net.b1, [r * self.bias]])
        W2 = np.hstack([net.W2, [[self.sign * r]]])
        return ReLUNet(W1, b1, W2, net.b2 + self.output_bias_shift)

    def to_dict(self) -> dict:
        return {
            "weight": self.weight.tolist(), "bias": float(self.bias), "sign": int(self.sign),
            "dual_value": float(self.dual_value), "step": float(self.step),
            "output_bias_shift": float(self.output_bias_shift),
            "objective_decrease": float(self.objective_decrease),
        }


@dataclass
class Certificate:
    """A duality-gap certificate for a trained two-layer ReLU network (docs/mathematics.rst §4.5).

    All numbers are in the normalisation chosen by ``reduction`` (scikit-learn's by
    default: the objective equals ``MLPRegressor.loss_``).

    Attributes
    ----------
    objective : float
        ``J`` of the network (weight-decay form).
    lower_bound : float
        ``D(s* lambda)``, scaled like ``objective``: no network of any width has a smaller
        objective (when ``exact``; over a sample it is not a valid bound).
    gap : float
        ``objective - lower_bound`` (an upper bound on the suboptimality when ``exact``).
    relative_gap : float
        ``gap / max(|objective|, tiny)``.
    exact : bool
        Whether the lower bound is proven: every activation pattern of the data was
        checked, or ``M(lambda)`` was replaced by a proven upper bound (branch and bound).
    conservative : bool
        Whether ``M(lambda)`` was replaced by an upper bound (several outputs, softmax).
        The lower bound is still valid but may be loose.
    optimal : bool
        ``exact and relative_gap <= tol``: the network is certified globally optimal.
    tol : float
    dual : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        The feasible dual point ``s* lambda`` (sum form) whose dual value is the lower
        bound. ``lambda`` is the network's residual ``-grad l``, or, when that gives a
        looser bound (``info["dual_refit"]``), the residual of the restricted program over
        the network's own patterns polished to optimality (quadratic losses): the residual
        of an inaccurate optimum is only as accurate as the square root of the objective.
    dual_ratio : float
        ``M(lambda) / beta`` for the unscaled ``lambda`` (``<= 1`` means dual feasible).
    dual_scale : float
        ``s*``.
    beta : float
        The weight-decay coefficient of the sum form (``alpha`` for sklearn).
    violating_neuron : ViolatingNeuron or None
        The most violating neuron when ``dual_ratio > 1`` (one output only).
    stationarity_residuals : ndarray of shape (n_neurons,)
        ``||grad_{u_j, b_j, alpha_j} J||`` per neuron (docs/mathematics.rst §4.4).
    balance_residuals : ndarray of shape (n_neurons,)
        ``| ||u_j||^2 - ||alpha_j||^2 |`` per neuron (penalised norms).
    n_patterns_checked : int
    loss : str
    reduction : str
    hidden_bias : bool
    penalize_bias : bool
    method : str
        How ``M(lambda)`` was evaluated: ``"enumerated"`` (all listed patterns),
        ``"sweep2d"`` (exact angular sweep, two features), ``"sampled"`` (a sample of the
        patterns: not a proof), ``"patterns"`` (a user-given pattern set),
        ``"branch_and_bound"`` (too many patterns to list: ``M(lambda)`` proven to a
        relative ``tol`` by :func:`~convexrelu.certificates._bnb.dual_constraint_bnb`),
        ``"loose_bound"`` (the branch and bound stopped at ``time_limit``: ``M(lambda)`` is
        replaced by its proven upper bound, so ``s* lambda`` is dual feasible and the lower
        bound is valid but may be loose; ``info["bnb"]`` holds both bounds) or
        ``"local_search"`` (too many patterns to list and a rank beyond the branch and
        bound: heuristic search for the most violating neuron,
        :func:`~convexrelu.certificates.search_violators`; ``exact`` and ``optimal`` are
        False and the lower bound is not valid).
    """

    objective: float
    lower_bound: float
    gap: float
    relative_gap: float
    exact: bool
    conservative: bool
    optimal: bool
    tol: float
    dual: np.ndarray
    dual_ratio: float
    dual_scale: float
    beta: float
    violating_neuron: Optional[ViolatingNeuron]
    stationarity_residuals: np.ndarray
    balance_residuals: np.ndarray
    n_patterns_checked: int
    loss: str
    reduction: str
    hidden_bias: bool
    penalize_bias: bool
    info: dict = field(default_factory=dict)
    method: str = "enumerated"

    @property
    def heuristic(self) -> bool:
        """Whether ``M(lambda)`` comes from a local search (never a proof)."""
        return self.method == "local_search"

    def summary(self) -> str:
        """A short human-readable report."""
        lines = [
            f"objective         {self.objective:.10g}",
            f"lower bound       {self.lower_bound:.10g}"
            + (" (NOT valid: heuristic search)" if self.heuristic else ""),
            f"gap               {self.gap:.3e} "
            f"(relative {self.relative_gap:.3e}, tol {self.tol:g})",
            f"M(lambda) / beta  {self.dual_ratio:.6g}"
            + (" (upper bound)" if self.conservative else ""),
            self._patterns_line(),
        ]
        scope = self.info.get("scope")  # one column of an estimator's several (below)
        if self.optimal:
            verdict = ("CERTIFIED globally optimal: no two-layer ReLU network of any width has "
                       f"an objective lower by more than {self.gap:.3e}.")
            if scope:
                verdict = (f"CERTIFIED globally optimal for {scope} alone: no two-layer ReLU "
                           f"network of any width fitted to it alone has an objective lower "
                           f"by more than {self.gap:.3e}.")
        elif self.heuristic:
            verdict = ("heuristic: the best violating neuron found by local search; not a "
                       "proof of global optimality. The search can miss violations, so "
                       "M(lambda) may be larger and the lower bound is not certified.")
        elif self.method == "loose_bound":
            b = self.info.get("bnb") or {}
            why, hint = {
                "exhausted": ("bounded every node, yet its largest leaf bound stayed above "
                              "the tolerance", "a numerical limit of its node bounds, which "
                              "a longer time_limit does not change"),
                "max_nodes": ("stopped at its node limit",
                              "a larger max_nodes can tighten it"),
            }.get(b.get("stopped"), ("stopped at its time limit",
                                     "a longer time_limit can tighten it"))
            verdict = (f"not certified optimal: the network may be up to {self.gap:.3e} above "
                       "the global optimum. The lower bound is proven but loose: the branch "
                       f"and bound {why}, with {b.get('lower', 0.0):.6g} "
                       f"<= M(lambda) <= {b.get('upper', 0.0):.6g}, and the upper value was "
                       f"used; {hint}.")
        elif not self.exact:
            verdict = ("NOT a proof: the dual constraint was checked over a sample of the "
                       "activation patterns only, so the lower bound is not certified and "
                       "nothing is claimed about global optimality.")
        else:
            verdict = (f"not certified optimal: the network may be up to {self.gap:.3e} above "
                       "the global optimum (relative gap above tol).")
            if self.conservative:
                verdict += (" The dual constraint was bounded conservatively (several "
                            "outputs), so the gap may overestimate the suboptimality.")
        lines.append(verdict)
        if scope:
            lines.append(f"scope             {scope}, one of the fit's independent problems "
                         "(its share of objective_); networks whose hidden neurons serve "
                         "several of them are not covered")
        if self.violating_neuron is not None and self.violating_neuron.objective_decrease > 0:
            v = self.violating_neuron
            dec = v.objective_decrease
            shift = (f"; output bias shifted by {v.output_bias_shift:.3g}"
                     if v.output_bias_shift != 0 else "")
            if self.exact and not self.conservative:
                where = f"the global optimum lies {dec:.3e} to {self.gap:.3e} lower"
            else:
                where = (f"the global optimum lies at least {dec:.3e} lower; over sampled "
                         "patterns the gap is not an upper bound")
            lines.append(f"one-neuron step   adding the most violating neuron (output sign "
                         f"{v.sign:+d}, step t = {v.step:.3g} from a line search along it"
                         f"{shift}) lowers the objective by {dec:.3e}")
            lines.append("                  (the best decrease along that single neuron, a "
                         f"local improvement, not the gap: {where})")
        return "\n".join(lines)

    def _patterns_line(self) -> str:
        if self.heuristic:
            return (f"patterns          too many to list: local search refined "
                    f"{self.n_patterns_checked} cells")
        if self.method in ("branch_and_bound", "loose_bound"):
            b = self.info.get("bnb") or {}
            how = ("proven to the tolerance" if self.method == "branch_and_bound" else
                   "stopped at the time limit: a loose proven bound")
            return (f"patterns          not listed: branch and bound, "
                    f"{self.n_patterns_checked} nodes in {b.get('time', 0.0):.1f} s, "
                    f"M(lambda) {how}")
        return (f"patterns checked  {self.n_patterns_checked}"
                + (" (all patterns)" if self.exact else " (a SAMPLE of the patterns)"))

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary."""
        def f(x):
            return float(x) if np.isfinite(x) else str(x)

        return {
            "objective": f(self.objective), "lower_bound": f(self.lower_bound),
            "gap": f(self.gap), "relative_gap": f(self.relative_gap),
            "exact": bool(self.exact), "conservative": bool(self.conservative),
            "optimal": bool(self.optimal), "tol": float(self.tol),
            "dual_ratio": f(self.dual_ratio), "dual_scale": f(self.dual_scale),
            "beta": float(self.beta),
            "violating_neuron": None if self.violating_neuron is None
            else self.violating_neuron.to_dict(),
            "stationarity_residuals": [float(v) for v in self.stationarity_residuals],
            "balance_residuals": [float(v) for v in self.balance_residuals],
            "n_patterns_checked": int(self.n_patterns_checked), "loss": self.loss,
            "reduction": self.reduction, "hidden_bias": bool(self.hidden_bias),
            "penalize_bias": bool(self.penalize_bias),
            "method": self.method, "heuristic": bool(self.heuristic),
            "dual": np.asarray(self.dual).tolist(),
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


# --------------------------------------------------------------------------- helpers
def _is_torch_module(model) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _check_torch_forward(module, net, X, rows: int = 256) -> None:
    """Refuse a torch module whose ``forward`` is not the network its layers define.

    :meth:`ReLUNet.from_torch` reads the two ``nn.Linear`` layers, not the computation:
    a module that adds a skip connection or an output activation was certified as the
    plain network (its objective 1.12 where the module's squared loss alone was 1.47).
    One forward pass over the first ``rows`` samples is compared with the network's.
    """
    torch = sys.modules["torch"]
    try:
        p = next(module.parameters())
        with torch.no_grad():
            out = module(torch.as_tensor(X[:rows], dtype=p.dtype, device=p.device))
        out = out.detach().cpu().to(torch.float64).numpy()
    except Exception as exc:  # the module's own error, named
        raise ValueError(f"could not run the torch module on X to check that it is the "
                         f"two-layer ReLU network its layers define: {exc}") from exc
    ref = net.predict(X[:rows]).reshape(min(rows, X.shape[0]), -1)
    if out.size != ref.size:
        raise ValueError(f"the torch module returns {out.size // max(ref.shape[0], 1)} "
                         f"outputs per sample, but its layers define {ref.shape[1]}: its "
                         "forward is not Linear -> ReLU -> Linear.")
    out = out.reshape(ref.shape)
    eps = float(torch.finfo(p.dtype).eps) if p.dtype.is_floating_point else 1e-7
    scale = 1.0 + float(np.max(np.abs(ref)))
    err = float(np.max(np.abs(out - ref)))
    if not err <= 1e3 * eps * scale:
        raise ValueError(f"the torch module's forward differs from the two-layer ReLU "
                         f"network its layers define (Linear -> ReLU -> Linear) by up to "
                         f"{err:.3g} on X: a skip connection, an output activation or "
                         "another computation in forward, which the certificate does not "
                         "cover. To certify the network of its two layers alone, pass "
                         "ReLUNet.from_torch(module).")


def _as_network(model, alpha, loss):
    """``(ReLUNet, alpha, loss_name, classes)`` from a ReLUNet, torch module or sklearn MLP."""
    from ..network import ReLUNet

    classes = None
    if isinstance(model, ReLUNet):
        net = model
    elif _is_torch_module(model):
        net = ReLUNet.from_torch(model)
    elif hasattr(model, "coefs_") or type(model).__name__ in ("MLPRegressor", "MLPClassifier"):
        net = ReLUNet.from_sklearn(model)
        if alpha is None:
            alpha = float(model.alpha)
        if hasattr(model, "classes_"):
            classes = np.asarray(model.classes_)
            if loss is None:
                loss = "logistic" if net.n_outputs == 1 else "softmax"
        elif loss is None:
            loss = "squared"
    else:
        hint = ""
        if hasattr(model, "network_") and hasattr(model, "alpha_"):  # a fitted estimator
            hint = (f" A fitted {type(model).__name__} carries its own certificate, "
                    "model.certificate_ (one per output or class of several)")
            classes = getattr(model, "classes_", None)
            if getattr(model.network_, "n_outputs", 1) == 1 and (
                    classes is None or len(classes) <= 2):
                hint += ("; to certify its network again pass model.network_ with "
                         "alpha=model.alpha_ (and the estimator's loss)")
            hint += "."
        raise TypeError(
            f"model must be a convexrelu.ReLUNet, a torch two-layer ReLU module or a fitted "
            f"scikit-learn MLPRegressor/MLPClassifier; got {type(model).__name__}.{hint}"
        )
    if loss is None:
        loss = "squared"
    return net, alpha, loss, classes


def _encode(loss_name, loss_obj, y, net, classes):
    """Targets in the loss's internal encoding, checked against the network's outputs."""
    c = net.n_outputs
    if loss_obj.multi_output and loss_obj.task == "classification":
        yy = np.asarray(y)
        if yy.ndim != 1:
            raise ValueError(f"y for the softmax loss must be 1-D class labels; got shape "
                             f"{yy.shape}.")
        cls = classes if classes is not None else np.unique(yy)
        if len(cls) != c:
            raise ValueError(f"the network has {c} outputs but y holds {len(cls)} classes.")
        idx = np.searchsorted(cls, yy)
        if np.any(idx >= len(cls)) or np.any(cls[np.minimum(idx, len(cls) - 1)] != yy):
            raise ValueError("y holds labels that are not among the classifier's classes_.")
        return np.eye(c)[idx]
    if loss_obj.task == "classification" and classes is not None:
        yy = np.asarray(y)
        if set(np.unique(yy).tolist()) - set(classes.tolist()):
            raise ValueError("y holds labels that are not among the classifier's classes_.")
        return np.where(yy == classes[1], 1.0, -1.0)
    yy = loss_obj.encode_targets(y)
    expect = (yy.shape[0],) if c == 1 else (yy.shape[0], c)
    if yy.shape != expect:
        raise ValueError(f"y has shape {np.shape(y)} but the network has {c} output(s); pass "
                         f"targets of shape {expect}.")
    return yy


def _dual_point(loss, z, y, fit_output_bias):
    """``(lambda, delta)``: ``-grad l(z + delta)`` with the output bias re-fitted (the
    certificate core's dual point, docs/mathematics.rst §8.3)."""
    return dual_point(loss, z, y, output_bias=fit_output_bias)


def _hinge_dual(Xa_masks, y, z, tau, beta, fit_output_bias, Xa, free_bias):
    """Maximise ``sum y_i lambda_i`` over the tau-box and the finite SOCP of docs/mathematics.rst
    §4.2."""
    import cvxpy as cp

    n = y.shape[0]
    margin = y * z
    lo = np.where(margin < 1 - tau, 1.0, 0.0)
    hi = np.where(margin > 1 + tau, 0.0, 1.0)
    t = cp.Variable(n)
    lam = cp.multiply(y, t)
    cons = [t >= lo, t <= hi]
    if fit_output_bias or free_bias:
        cons.append(cp.sum(lam) == 0)
    P = Xa_masks.shape[1]
    d = Xa.shape[1] - 1 if free_bias else Xa.shape[1]
    for i in range(P):
        m = Xa_masks[:, i]
        A = cone_signs(m)
        for sgn in (1, -1):
            mu = cp.Variable(n, nonneg=True)
            r = Xa.T @ (sgn * cp.multiply(m.astype(float), lam) + cp.multiply(A, mu))
            if free_bias:
                cons += [cp.norm(r[:d]) <= beta, r[d] == 0]
            else:
                cons.append(cp.norm(r) <= beta)
    prob = cp.Problem(cp.Maximize(cp.sum(t)), cons)
    try:
        prob.solve(solver="CLARABEL")
    except cp.error.SolverError:  # pragma: no cover - solver failure: use the subgradient
        return None
    if t.value is None:
        return None
    tv = np.clip(t.value, lo, hi)
    if fit_output_bias or free_bias:
        # restore 1^T lambda = 0 exactly inside the box (the solver meets it to ~1e-9)
        r = float(y @ tv)
        slack = np.where(y * r > 0, tv - lo, hi - tv)  # room to move y_i t_i against r
        if r != 0.0 and slack.sum() >= abs(r):
            tv = tv - y * slack * (r / slack.sum())
            tv = np.clip(tv, lo, hi)
    return y * tv


# --------------------------------------------------------------------------- certify
def certify(
    model,
    X,
    y,
    *,
    alpha: Optional[float] = None,
    loss: Union[str, Loss, None] = None,
    patterns="auto",
    tol: float = 1e-6,
    reduction: Reduction = "sklearn",
    weight_decay: Optional[float] = None,
    penalize_bias: bool = False,
    fit_output_bias: bool = True,
    hidden_bias: Optional[bool] = None,
    hinge_tau: float = 1e-3,
    random_state=None,
    time_limit: Optional[float] = 30.0,
    n_jobs=None,
) -> Certificate:
    """Certify a trained two-layer ReLU network against the global optimum (docs/mathematics.rst
    §4.5).

    The certified problem is (sum form, ``beta`` the weight decay)

    .. math::

        \\min_\\theta\\ \\ell\\Big(\\sum_j (X u_j + b_j)_+ \\alpha_j + c_0;\\ y\\Big)
            + \\frac\\beta2 \\sum_j \\big(\\|u_j\\|^2 + \\|\\alpha_j\\|^2\\big)

    over networks of **any** width. With ``lambda = -grad l(y_hat)`` (output bias re-fitted)
    and ``M(lambda) = max_{||u|| <= 1} |lambda^T (X_aug u)_+|`` evaluated exactly over all
    activation patterns, ``s* lambda`` with ``s* <= beta / M`` is dual feasible and

    .. math::

        \\mathrm{LB} = \\mathcal D(s^\\star\\lambda) \\le p^\\star \\le J(\\theta).

    Parameters
    ----------
    model : ReLUNet, torch.nn.Module or fitted MLPRegressor / MLPClassifier
        A two-layer ReLU network (one hidden layer, ``activation='relu'``).
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets (any two labels for binary classification).
    alpha : float, optional
        Weight decay. Default: the sklearn model's ``alpha``; required otherwise.
    loss : {"squared", "logistic", "hinge", "softmax", "mse"} or Loss, optional
        Default: from the sklearn model, else ``"squared"``. ``"squared"`` is
        ``(1/2)(z - y)^2`` per sample; ``"mse"`` is torch's ``MSELoss`` ``(z - y)^2``.
    patterns : "auto", "exact", "bnb", "search", int or ActivationPatterns, default="auto"
        ``"exact"``: all patterns (:func:`convexrelu.enumerate_patterns`; refused with a
        ``PatternLimitError`` when there are too many); ``"auto"``: the same when listing
        is cheap (two features, rank at most 3, or at most 50,000 patterns by Cover's
        bound); otherwise, for one output and a data rank of at most 10, the branch and
        bound (``"bnb"``) within ``time_limit``; beyond that, a heuristic local search for
        the most violating neuron (:func:`~convexrelu.certificates.search_violators`,
        seeded with the network's own neurons): the certificate then has
        ``method="local_search"``, ``exact=False`` and ``optimal=False``, and its lower
        bound is not valid (the search can miss violations); ``"bnb"``: a proven upper
        bound on ``M(lambda)`` by branch and bound without listing patterns (one output;
        ``method="branch_and_bound"`` when it closes to ``tol``, ``"loose_bound"`` when it
        stops at ``time_limit``, both proofs); ``"search"``: the local search directly,
        without trying to list the patterns; an int ``N``: ``N`` sampled Gaussian gates
        (NOT a proof); or a precomputed pattern set.
    tol : float, default=1e-6
        Relative-gap tolerance for ``optimal``.
    reduction : {"sklearn", "mean", "sum"}, default="sklearn"
        Normalisation of the objective (docs/mathematics.rst §1.2, §8.1):

        * ``"sklearn"``: ``J = (1/n) [sum_i phi_i + (alpha/2) ||theta||^2]`` (``loss_``
          of scikit-learn's MLPs);
        * ``"mean"``: ``J = (1/n) sum_i phi_i + (wd/2) ||theta||^2`` (a torch loss with
          ``reduction='mean'`` trained with ``SGD(weight_decay=wd)``);
        * ``"sum"``: ``J = sum_i phi_i + (wd/2) ||theta||^2``.

        The three are positive multiples of one sum-form problem (``beta = alpha``,
        ``n * wd`` and ``wd``), so the relative gap and ``dual_ratio`` do not depend on
        the choice.
    weight_decay : float, optional
        ``wd`` for ``reduction="mean"`` / ``"sum"`` (an alias of ``alpha`` there).
    penalize_bias : bool, default=False
        Penalise the hidden bias together with ``W1`` (Pilanci–Ergen convention).
    fit_output_bias : bool, default=True
        Treat the output bias as a free (unpenalised) parameter; the dual point is then
        built at the re-fitted output bias (docs/mathematics.rst §8.3). With a free hidden bias
        this is
        forced: constant neurons act as an output bias.
    hidden_bias : bool, optional
        Whether the network class has hidden biases. Default: ``True`` for scikit-learn
        and torch models with biases and whenever ``b1`` is nonzero.
    hinge_tau : float, default=1e-3
        Margin tolerance of the hinge certificate (docs/mathematics.rst §4.5): samples with
        ``|y_i f(x_i) - 1| <= tau`` get a free dual value in ``[0, 1]``.
    random_state : int, Generator or None
        For sampled patterns, the local search and the branch and bound's starts.
    time_limit : float or None, default=30.0
        Seconds the branch and bound may spend on one dual point (it may run twice when
        the dual point is refitted); ``None`` runs it until it closes.
    n_jobs : int or None, default=None
        Chunks of the listed patterns evaluated in parallel by joblib
        (:func:`~convexrelu.certificates.dual_constraint`; ``None``: one worker unless in
        a ``joblib.parallel_config`` context, ``-1``: all cores); with branch and
        bound, its nodes bounded in that many worker processes. Under
        ``joblib.parallel_config(backend="dask")`` both run on the workers of a Dask
        cluster. The listed-pattern certificate does not depend on ``n_jobs``; the
        branch and bound's bound is proven in every case, but with workers the node
        order (and so the bound reached within ``time_limit``) varies a little.

    Returns
    -------
    Certificate

    Raises
    ------
    ValueError
        For bad data, weights, parameters, or an unsupported architecture.
    TypeError
        For a model of unsupported type.

    References
    ----------
    M. Pilanci and T. Ergen, "Neural networks are convex regularizers", ICML 2020.
    """
    from ..arrangements import ActivationPatterns

    net, alpha_m, loss_name, classes = _as_network(model, alpha, loss)
    X = check_data_matrix(X)
    if X.shape[1] != net.n_features:
        raise ValueError(f"X has {X.shape[1]} features, but the network expects "
                         f"{net.n_features} (W1 has shape {net.W1.shape}).")
    if _is_torch_module(model):
        _check_torch_forward(model, net, X)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(_REDUCTIONS)}; got {reduction!r}.")
    if weight_decay is not None:
        if reduction == "sklearn":
            raise ValueError("weight_decay is for reduction='mean' or 'sum' (torch "
                             "conventions); with reduction='sklearn' pass alpha.")
        if alpha is not None:
            raise ValueError("pass either alpha or weight_decay, not both.")
        alpha_m = weight_decay
    if alpha_m is None:
        raise ValueError("alpha is required for this model (only scikit-learn models carry "
                         "their own alpha); pass alpha=... (or weight_decay=... with "
                         "reduction='mean'/'sum').")
    coef = check_nonneg_float(alpha_m, "alpha" if weight_decay is None else "weight_decay")
    tol = check_nonneg_float(tol, "tol")
    if time_limit is not None and not (isinstance(time_limit, numbers.Real)
                                       and np.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds or None; got "
                         f"{time_limit!r}.")
    resolve_n_jobs(n_jobs)  # checked here, also where no pattern is listed
    n = X.shape[0]
    # sum form: l_sum + (beta/2)||theta||^2 ; J = kappa * (sum form)
    if reduction == "sklearn":
        beta, kappa = coef, 1.0 / n
    elif reduction == "mean":
        beta, kappa = n * coef, 1.0 / n
    else:
        beta, kappa = coef, 1.0
    factor = 1.0
    if isinstance(loss_name, str) and loss_name == "mse":
        # (z - y)^2 = 2 * (1/2)(z - y)^2: the problem is 2 * [l_sq + (beta/4)||theta||^2]
        loss_name, factor = "squared", 2.0
    loss_obj = get_loss(loss_name)
    if loss_obj.multi_output and net.n_outputs < 2:
        raise ValueError(f"the {loss_obj.name} loss needs a network with >= 2 outputs; use "
                         "loss='logistic' for one logit.")
    lname = loss_obj.name
    if loss_obj.task == "classification" and not loss_obj.multi_output and \
            net.n_outputs != 1:
        raise ValueError(f"the {lname} loss takes one output; this network has "
                         f"{net.n_outputs}. Use loss='softmax' for several classes.")
    beta_s = beta / factor  # beta of the problem  l + (beta_s/2)||theta||^2
    kappa = kappa * factor
    yy = _encode(lname, loss_obj, y, net, classes)
    if yy.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {yy.shape[0]}.")

    if hidden_bias is None:
        hidden_bias = bool(np.any(net.b1 != 0)) or _is_torch_module(model) or \
            hasattr(model, "coefs_") or (isinstance(patterns, ActivationPatterns)
                                         and patterns.bias)
    hidden_bias = bool(hidden_bias)
    if not hidden_bias and np.any(net.b1 != 0):
        raise ValueError("hidden_bias=False but the network has nonzero hidden biases.")
    free_bias = hidden_bias and not penalize_bias
    fit_ob = bool(fit_output_bias) or free_bias

    # ---- primal
    z = net.predict(X)
    Z = z
    pen_W1 = np.hstack([net.W1, net.b1[:, None]]) if (hidden_bias and penalize_bias) else net.W1
    wd = 0.5 * (float(np.sum(pen_W1 ** 2)) + float(np.sum(net.W2 ** 2)))
    primal_s = float(loss_obj.value(Z, yy)) + beta_s * wd
    objective = kappa * primal_s

    # ---- patterns
    sweep = search = bnb = False
    pats = None
    method = "patterns"
    bnb_ok = net.n_outputs == 1 and not loss_obj.multi_output
    if isinstance(patterns, str) and patterns == "search":
        search, method = True, "local_search"
    elif isinstance(patterns, str) and patterns == "bnb":
        if not bnb_ok:
            raise ValueError("patterns='bnb' needs a network with one output (and not the "
                             "softmax loss); certify each output separately, or pass "
                             "patterns='auto'.")
        bnb, method = True, "branch_and_bound"
    elif isinstance(patterns, str):
        if patterns not in ("auto", "exact"):
            raise ValueError(f"patterns must be 'auto', 'exact', 'bnb', 'search', a positive "
                             f"int or an ActivationPatterns; got {patterns!r}.")
        from ..arrangements import PatternLimitError

        # two features with a free (or no) hidden bias: exact angular sweep, no listing
        sweep = X.shape[1] == 2 and net.n_outputs == 1 and (free_bias or not hidden_bias) \
            and loss_obj.smooth
        method = "sweep2d" if sweep else "enumerated"
        if not sweep:
            rank = _data_rank(X, hidden_bias)
            if patterns == "auto" and bnb_ok and rank <= _BNB_MAX_RANK and \
                    not _enumeration_is_cheap(X, hidden_bias, rank):
                bnb, method = True, "branch_and_bound"
            else:
                try:  # refused cheaply (a count bound) before listing anything
                    pats = _enumerate_for_certify(X, hidden_bias)
                except PatternLimitError:
                    if patterns == "exact":
                        raise
                    if bnb_ok and rank <= _BNB_MAX_RANK:
                        bnb, method = True, "branch_and_bound"
                    else:
                        search, method = True, "local_search"
    elif isinstance(patterns, numbers.Integral) and not isinstance(patterns, bool):
        from ..arrangements import sample_patterns

        pats = sample_patterns(X, int(patterns), random_state=random_state, bias=hidden_bias)
        method = "sampled"
    elif isinstance(patterns, ActivationPatterns):
        patterns.check_data(X)
        if patterns.bias != hidden_bias:
            raise ValueError(f"patterns were computed with bias={patterns.bias} but the network "
                             f"class has hidden_bias={hidden_bias}; recompute them with "
                             f"bias={hidden_bias}.")
        pats = patterns
    else:
        raise ValueError(f"patterns must be 'exact', a positive int or an ActivationPatterns; "
                         f"got {type(patterns).__name__}.")

    # ---- dual point
    lam, delta = _dual_point(loss_obj, Z, yy, fit_ob)
    conservative = loss_obj.multi_output or net.n_outputs > 1
    if not loss_obj.smooth and pats is not None and pats.n_patterns <= 400 and n <= 400:
        lam_h = _hinge_dual(pats.masks, yy, Z + delta, float(hinge_tau), beta_s, fit_ob,
                            augment(X, hidden_bias), free_bias)
        if lam_h is not None:
            lam = lam_h
    if loss_obj.multi_output and fit_ob:
        # the output-bias constraint 1^T Lambda = 0 per class: use a feasible point only if
        # centred; otherwise project the rows inside the simplex by mixing with Y (s < 1)
        conservative = True
    bnb_total = [0.0, 0]  # seconds and nodes over both dual points

    def bnb_dual(lam_):
        # each dual point gets its own time_limit
        dv_ = _bnb_dual(X, lam_, hidden_bias, free_bias, tol, time_limit, random_state,
                        n_jobs)
        bnb_total[0] += dv_.info["time"]
        bnb_total[1] += dv_.info["n_nodes"]
        return dv_

    if search:
        dv = _search_dual(net, X, lam, hidden_bias, free_bias, random_state)
        pats_exact = False
    elif bnb:
        dv = bnb_dual(lam)
        pats_exact = True  # a proven upper bound on M(lambda)
    elif sweep:
        from ..arrangements import count_patterns
        from ._dual import dual_constraint_2d

        dv = dual_constraint_2d(X, lam, bias=hidden_bias)
        dv.n_patterns_checked = int(count_patterns(X, bias=hidden_bias))
        pats_exact = True
    else:
        dv = dual_constraint(pats, X, lam, penalize_bias=not free_bias, n_jobs=n_jobs)
        pats_exact = bool(pats.exact)
    Mval = dv.value
    if lam.ndim == 2 and lam.shape[1] > 1 and not search:
        # several outputs: for every neuron a, ||Lambda^T a||_2^2 = sum_k (lambda_k^T a)^2
        # <= sum_k M_k^2 with M_k the exact scalar value of column k, a finite bound
        # where the joint one is not (e.g. a free hidden bias); keep the smaller
        # the columns' values in one pass over the masks
        cols = [dv_k.value for dv_k in dual_constraints(
            pats, X, list(lam.T), penalize_bias=not free_bias, n_jobs=n_jobs)]
        Mcol = float(np.sqrt(np.sum(np.square(cols))))
        if Mcol < Mval:
            Mval = Mcol
    if loss_obj.multi_output and fit_ob and np.any(np.abs(lam.sum(axis=0)) > 1e-10):
        # no feasible rescaling keeps 1^T Lambda = 0: fall back to the trivial bound
        s, LB = 0.0, loss_obj.dual_objective(0 * lam, yy)
    else:
        s_max = np.inf if Mval == 0 else beta_s / Mval
        if not loss_obj.smooth and fit_ob and \
                abs(float(np.sum(lam))) > 1e-9 * (1 + np.abs(lam).sum()):
            s, LB = 0.0, 0.0
        else:
            s, LB = loss_obj.best_dual_scale(lam, yy, s_max)
    LB = float(LB)
    refit, lam_res = False, lam
    if (net.n_outputs == 1 and not conservative and net.n_neurons > 0 and not search
            and loss_obj.constant_curvature(yy) is not None
            and not within_tol(objective - kappa * LB, objective, tol)):
        # the residual's dual point is only as accurate as the square root of the primal
        # accuracy (badly scaled X amplifies it); refit it on the patterns the neurons use
        lam2 = _refit_dual_point(net, X, yy, loss_obj, beta_s, hidden_bias, penalize_bias,
                                 fit_ob)
        if lam2 is not None:
            if sweep:
                from ._dual import dual_constraint_2d

                dv2 = dual_constraint_2d(X, lam2, bias=hidden_bias)
            elif bnb:
                dv2 = bnb_dual(lam2)
            else:
                dv2 = dual_constraint(pats, X, lam2, penalize_bias=not free_bias,
                                      n_jobs=n_jobs)
            M2 = dv2.value
            s2, LB2 = loss_obj.best_dual_scale(lam2, yy, np.inf if M2 == 0 else beta_s / M2)
            if np.isfinite(M2) and LB2 > LB:
                lam, s, LB, refit = lam2, s2, float(LB2), True
    M_residual, dv_residual, lam_residual = Mval, dv, lam_res
    if refit:
        dv2.n_patterns_checked = dv.n_patterns_checked
        Mval, dv = M2, dv2
    lower_bound = kappa * LB
    gap = objective - lower_bound
    rel = relative_gap(gap, objective)
    ratio = float(Mval / beta_s) if beta_s > 0 else (0.0 if Mval == 0 else float("inf"))
    optimal = bool(pats_exact and not conservative and within_tol(gap, objective, tol))
    bnb_info = None
    if bnb:
        bnb_info = dict(dv.info, time=bnb_total[0], n_nodes=bnb_total[1])
        dv.n_patterns_checked = bnb_total[1]
        method = "branch_and_bound" if dv.info["closed"] else "loose_bound"

    # ---- violating neuron
    vn = None
    if bnb and dv_residual.lower > beta_s:
        # the neuron found attains lower, not the (possibly loose) proven upper bound
        import dataclasses

        dv_residual, M_residual = dataclasses.replace(dv_residual, value=dv_residual.lower), \
            dv_residual.lower
    if net.n_outputs == 1 and M_residual > beta_s and np.any(dv_residual.direction != 0):
        vn = _violating_neuron(net, X, yy, loss_obj, dv_residual, beta_s, kappa, hidden_bias,
                               penalize_bias, delta)

    st, bal = _kkt_residuals(net, X, yy, loss_obj, beta_s, hidden_bias, penalize_bias, kappa)
    return Certificate(
        objective=objective, lower_bound=lower_bound, gap=gap, relative_gap=rel,
        exact=pats_exact, conservative=bool(conservative), optimal=optimal, tol=tol,
        dual=s * lam, dual_ratio=ratio, dual_scale=float(s), beta=float(beta_s),
        violating_neuron=vn, stationarity_residuals=st, balance_residuals=bal,
        n_patterns_checked=int(dv.n_patterns_checked), loss=lname, reduction=reduction,
        hidden_bias=hidden_bias, penalize_bias=bool(penalize_bias), method=method,
        info={"M": Mval, "n_refined": dv.n_refined, "n_fallbacks": dv.n_fallbacks,
              "output_bias_shift": delta, "pattern_index": dv.pattern_index,
              "sign": dv.sign, "direction": dv.direction, "gate_lower": dv.gate_lower,
              "primal_sum": primal_s, "kappa": kappa, "dual_refit": refit,
              "M_residual": M_residual, "residual_dual": lam_residual,
              "residual_direction": dv_residual.direction, "residual_sign": dv_residual.sign,
              "search": dict(dv.info) if search else None, "bnb": bnb_info},
    )


def _refit_dual_point(net, X, y, loss, beta, hidden_bias, penalize_bias, fit_ob):
    """A dual point from the restricted program over the network's own patterns.

    The neurons are grouped by activation pattern (docs/mathematics.rst §3.6) and the
    restricted ReLU program on those patterns is polished by Newton's method on its
    support (:func:`convexrelu._polish.polish_support`, quadratic losses); the residual of
    the polished point is the dual point. Any dual point gives a valid bound once scaled
    by ``beta / M`` over all patterns, so this only ever tightens the certificate.
    Returns ``None`` when the polish does not apply.
    """
    from ..arrangements import ActivationPatterns
    from ..program import ConvexProgram

    try:
        G = np.hstack([net.W1, net.b1[:, None]]).T if hidden_bias else net.W1.T
        pats = ActivationPatterns.from_gates(X, G, bias=hidden_bias)
        V, W, _ = net.to_convex(X, pats)
        prog = ConvexProgram(X, y, pats, loss=loss, alpha=beta, bias=hidden_bias,
                             penalize_bias=penalize_bias, fit_output_bias=fit_ob)
        out = polish_support(prog, V, W, float(net.b2[0]) if fit_ob else 0.0)
    except (ValueError, np.linalg.LinAlgError):
        return None
    if out is None:
        return None
    V2, W2, c2 = out
    lam, _ = dual_point(loss, prog.predict(V2, W2, c2), y, output_bias=fit_ob)
    return lam


def _enumerate_for_certify(X, hidden_bias):
    """``enumerate_patterns`` whose refusal names certify's own parameters."""
    import re

    from ..arrangements import PatternLimitError, enumerate_patterns

    try:
        return enumerate_patterns(X, bias=hidden_bias)
    except PatternLimitError as exc:
        # keep the count from the enumerator's message, drop its advice (max_patterns is
        # not a parameter of certify)
        found = re.match(r"(.*?), more than max_patterns=([\d,]+)\.", str(exc), re.DOTALL)
        what = (f"{found.group(1)}, more than the {found.group(2)} an exact certificate "
                "enumerates" if found else "X has too many activation patterns for an exact "
                "certificate")
        raise PatternLimitError(
            f"{what}. Pass patterns=N to check N sampled patterns instead (a quick look, "
            "NOT a proof of global optimality), pass a precomputed ActivationPatterns, or "
            "reduce the number of features.") from None


#: patterns="auto" lists the patterns when Cover's bound is at most this (or rank <= 3)
_ENUM_CHEAP = 50_000
#: and tries the branch and bound up to this data rank (measured with
#: ``python -m benchmarks bnb``: at rank 11, diabetes, the proven bound is still ~80x the
#: value found after 60 s, so a local search is more informative there)
_BNB_MAX_RANK = 10


def _data_rank(X, hidden_bias) -> int:
    """The rank of the augmented data (the dimension the arrangement lives in)."""
    Xa = augment(X, hidden_bias)
    return int(np.linalg.matrix_rank(Xa)) if Xa.size else 0


def _enumeration_is_cheap(X, hidden_bias, rank) -> bool:
    from ..arrangements._enumerate import cover_bound

    return rank <= 3 or cover_bound(X.shape[0], rank) <= _ENUM_CHEAP


def _bnb_dual(X, lam, hidden_bias, free_bias, tol, time_limit, random_state, n_jobs=None):
    """A proven upper bound on ``M(lambda)`` by branch and bound, as a DualConstraintValue.

    ``value`` is the proven upper bound (so ``beta / value`` scales ``lambda`` into the
    dual feasible set whether or not the search closed); ``lower`` and ``direction`` are
    the best neuron found. A dual point that is not centred although the hidden bias is
    free has ``M = inf`` (as in :func:`~convexrelu.certificates.dual_constraint`).
    """
    from ._bnb import dual_constraint_bnb
    from ._dual import DualConstraintValue

    d_aug = X.shape[1] + int(hidden_bias)
    if free_bias and abs(float(lam.sum())) > 1e-12 * (1.0 + float(np.abs(lam).sum())):
        return DualConstraintValue(value=float("inf"), lower=0.0, direction=np.zeros(d_aug),
                                   sign=1, pattern_index=-1, exact=True,
                                   info={"closed": False, "time": 0.0, "upper": np.inf,
                                         "lower": 0.0, "n_nodes": 0})
    res = dual_constraint_bnb(X, lam, bias=hidden_bias, penalize_bias=not free_bias,
                              tol=max(float(tol) / 4, 1e-9), time_limit=time_limit,
                              random_state=random_state, n_jobs=n_jobs)
    info = {"closed": res.closed, "time": res.time, "upper": res.upper, "lower": res.lower,
            "n_nodes": res.n_nodes, "n_open": res.n_open, "stopped": res.info["stopped"]}
    return DualConstraintValue(value=float(res.upper), lower=float(res.lower),
                               direction=res.direction, sign=int(res.sign), pattern_index=-1,
                               exact=True, n_patterns_checked=int(res.n_nodes), info=info)


def _search_dual(net, X, lam, hidden_bias, free_bias, random_state):
    """``M(lambda)`` estimated by a local search (a lower estimate: NOT a proof).

    The network's own neurons are extra starts. Several outputs: each column is searched
    and the values are combined as ``sqrt(sum_k M_k^2)`` (the joint bound's form).
    """
    from ._dual import DualConstraintValue
    from ._search import search_violators

    Xa = augment(X, hidden_bias)
    starts = np.hstack([net.W1, net.b1[:, None]]) if hidden_bias else net.W1
    used = np.linalg.norm(starts, axis=1) > 0
    starts = starts[used]
    # one output: each neuron is tried with the sign of its output weight
    signs = np.where(net.W2[0, used] >= 0, 1, -1) if net.n_outputs == 1 else None
    L = lam[:, None] if lam.ndim == 1 else lam
    best, vals, info = None, [], {"method": "local_search"}
    for k in range(L.shape[1]):
        lk = L[:, k] - L[:, k].mean() if free_bias else L[:, k]
        cand = search_violators(Xa, lk, free_bias=free_bias, starts=starts,
                                start_signs=signs, random_state=random_state)[0]
        vals.append(max(cand.value, 0.0))
        if best is None or cand.value > best.value:
            best = cand
            info.update(cand.info)
    value = vals[0] if len(vals) == 1 else float(np.sqrt(np.sum(np.square(vals))))
    return DualConstraintValue(
        value=float(value), lower=float(best.value), direction=best.direction,
        sign=int(best.sign), pattern_index=-1, exact=False, conservative=len(vals) > 1,
        n_patterns_checked=int(info.get("n_refined", 0)), info=info)


def _violating_neuron(net, X, y, loss, dv, beta, kappa, hidden_bias, penalize_bias, delta):
    """Line search ``t -> l(z + delta + t sign a) + beta t`` for the most violating neuron."""
    from scipy.optimize import minimize_scalar

    x = dv.direction
    Xa = augment(X, hidden_bias)
    a = np.maximum(Xa @ x, 0.0)
    sgn = dv.sign
    z0 = net.predict(X) + delta
    pen = float(np.linalg.norm(x if (penalize_bias or not hidden_bias) else x[:-1]))

    def phi(t):
        return float(loss.value(z0 + t * sgn * a, y)) + beta * t * pen

    f0 = phi(0.0)
    hi = 1.0 / max(float(np.max(np.abs(a))), 1e-300)
    while phi(2 * hi) < phi(hi) and hi < 1e12:
        hi *= 2
    hi *= 2
    res = minimize_scalar(phi, bounds=(0.0, hi), method="bounded", options={"xatol": 1e-12 * hi})
    t = float(res.x) if res.fun < f0 else 0.0
    # J(old) - J(new): the loss changes and the balanced neuron costs beta * t * pen
    dec = kappa * (float(loss.value(net.predict(X), y)) - phi(t))
    u = x[:-1] if hidden_bias else x
    b = float(x[-1]) if hidden_bias else 0.0
    return ViolatingNeuron(weight=np.array(u, dtype=float), bias=b, sign=int(sgn),
                           dual_value=float(dv.value), step=t, output_bias_shift=float(delta),
                           objective_decrease=float(dec))


def _kkt_residuals(net, X, y, loss, beta, hidden_bias, penalize_bias, kappa):
    """Per-neuron gradient norms of the (scaled) objective and balance residuals (§4.4)."""
    Xa = augment(X, hidden_bias)
    U = np.hstack([net.W1, net.b1[:, None]]) if hidden_bias else net.W1
    z = net.predict(X)
    lam = -loss.gradient(z, y)
    Lam = lam[:, None] if lam.ndim == 1 else lam  # (n, c)
    A = net.W2  # (c, m)
    S = Xa @ U.T  # (n, m)
    H = np.maximum(S, 0.0)
    act = (S > 0).astype(float)
    pen = np.ones(U.shape[1])
    if hidden_bias and not penalize_bias:
        pen[-1] = 0.0
    # d/du_j = beta * pen * u_j - X_aug^T (act_j * (Lam alpha_j))
    LA = Lam @ A  # (n, m)
    gU = beta * U * pen[None, :] - ((act * LA).T @ Xa)
    gA = beta * A - Lam.T @ H  # (c, m)
    # a neuron on a kink (x~_i^T u~_j = 0) has a Clarke subdifferential: the activation of a
    # tie row may be any theta in [0, 1]; report the smallest gradient norm over those
    scale = np.linalg.norm(Xa, axis=1)[:, None] * np.linalg.norm(U, axis=1)[None, :]
    ties = np.abs(S) <= 1e-9 * scale
    for j in np.flatnonzero(np.any(ties, axis=0) & (np.linalg.norm(U, axis=1) > 0)):
        from scipy.optimize import lsq_linear

        rows = np.flatnonzero(ties[:, j])
        B = -(Xa[rows] * LA[rows, j][:, None]).T  # d(gU_j)/d(theta)
        res = lsq_linear(B, -gU[j], bounds=(0.0, 1.0))
        gU[j] = gU[j] + B @ res.x
    st = kappa * np.sqrt(np.sum(gU ** 2, axis=1) + np.sum(gA ** 2, axis=0))
    nu2 = np.sum((U * np.sqrt(pen)[None, :]) ** 2, axis=1)
    na2 = np.sum(A ** 2, axis=0)
    return st, np.abs(nu2 - na2)

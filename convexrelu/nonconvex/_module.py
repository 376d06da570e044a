"""The two-layer (leaky) ReLU torch module trained by :func:`train_gradient_flow`.

This is one of the few modules of the package that import torch at the top; it is only
loaded through :mod:`convexrelu.nonconvex`, which ``import convexrelu`` does not import.
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "convexrelu.nonconvex needs PyTorch; install it with `pip install convexrelu[torch]`."
    ) from exc

__all__ = ["TwoLayerReLU", "resolve_device", "resolve_dtype"]


def resolve_device(device: Union[str, "torch.device"]) -> "torch.device":
    """A ``torch.device``; raises if CUDA is requested but unavailable.

    Raises
    ------
    ValueError
        If ``device`` is not a valid torch device string, or names CUDA while
        ``torch.cuda.is_available()`` is False.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:<index>' or a torch.device; "
                         f"got {device!r} ({exc}).") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but torch.cuda.is_available() is "
                         "False; use device='cpu' or install a CUDA build of PyTorch.")
    return dev


def resolve_dtype(dtype) -> "torch.dtype":
    """``torch.float64`` (default) or ``torch.float32`` from a dtype or its name.

    Raises
    ------
    ValueError
        For any other dtype.
    """
    table = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32,
             "float": torch.float32, torch.float64: torch.float64, torch.float32: torch.float32,
             np.float64: torch.float64, np.float32: torch.float32}
    try:
        return table[dtype]
    except (KeyError, TypeError):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}.") from None


class TwoLayerReLU(nn.Module):
    """``x -> W2 act(W1 x + b1) + b2`` with ``act`` the (leaky) ReLU, float64 by default.

    Parameters
    ----------
    n_features : int
        Input dimension ``d``.
    n_neurons : int
        Hidden width ``m``.
    n_outputs : int, default=1
        Output dimension ``c``.
    bias : bool, default=True
        Whether the hidden layer has a bias.
    output_bias : bool, optional
        Whether the output layer has a bias; default: same as ``bias``.
    negative_slope : float, default=0.0
        Slope of the activation for negative inputs: ``0`` is the ReLU, ``c in (0, 1]``
        the leaky ReLU of Frei & Gu's examples (docs/mathematics.rst §6.3).
    dtype : torch.dtype, default=torch.float64
    device : str or torch.device, default="cpu"

    Notes
    -----
    The submodules are ``self.hidden = nn.Linear(d, m)``, ``self.act`` (``nn.ReLU`` or
    ``nn.LeakyReLU``) and ``self.output = nn.Linear(m, c)``, in torch's shapes (so
    :meth:`convexrelu.ReLUNet.from_torch` reads a ReLU module), the same as
    :class:`convexrelu.ReLUNet` (``W1`` of shape ``(m, d)``,
    ``W2`` of shape ``(c, m)``). The derivative of the activation at ``0`` is torch's
    (``0`` for the ReLU, ``negative_slope`` for the leaky ReLU).
    """

    def __init__(self, n_features: int, n_neurons: int, n_outputs: int = 1, *,
                 bias: bool = True, output_bias: Optional[bool] = None,
                 negative_slope: float = 0.0, dtype=torch.float64, device="cpu") -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)
        self.hidden = nn.Linear(n_features, n_neurons, bias=bias, dtype=dtype, device=device)
        self.act = nn.ReLU() if self.negative_slope == 0.0 else nn.LeakyReLU(self.negative_slope)
        output_bias = bias if output_bias is None else bool(output_bias)
        self.output = nn.Linear(n_neurons, n_outputs, bias=output_bias, dtype=dtype,
                                device=device)

    def activation(self, pre: "torch.Tensor") -> "torch.Tensor":
        """The (leaky) ReLU."""
        return self.act(pre)

    def preactivation(self, X: "torch.Tensor") -> "torch.Tensor":
        """``X W1^T + b1`` of shape ``(n_samples, n_neurons)``."""
        return self.hidden(X)

    def forward(self, X: "torch.Tensor") -> "torch.Tensor":  # noqa: D401
        """Outputs of shape ``(n_samples, n_outputs)``."""
        return self.output(self.activation(self.hidden(X)))

    # ------------------------------------------------------------------ numpy I/O
    def set_weights(self, W1, b1, W2, b2) -> "TwoLayerReLU":
        """Copy numpy weights (``ReLUNet`` shapes) into the module; returns ``self``."""
        with torch.no_grad():
            ref = self.hidden.weight
            self.hidden.weight.copy_(torch.as_tensor(np.asarray(W1), dtype=ref.dtype))
            self.output.weight.copy_(torch.as_tensor(np.asarray(W2).reshape(
                self.output.weight.shape), dtype=ref.dtype))
            if self.hidden.bias is not None:
                self.hidden.bias.copy_(torch.as_tensor(np.asarray(b1), dtype=ref.dtype))
            if self.output.bias is not None:
                self.output.bias.copy_(torch.as_tensor(np.asarray(b2).reshape(-1),
                                                       dtype=ref.dtype))
        return self

    def weights(self) -> dict:
        """``{"W1", "b1", "W2", "b2"}`` as float64 numpy copies (zero biases when absent)."""
        def arr(p):
            return p.detach().cpu().to(torch.float64).numpy().copy()

        m, c = self.hidden.out_features, self.output.out_features
        return {
            "W1": arr(self.hidden.weight),
            "b1": arr(self.hidden.bias) if self.hidden.bias is not None else np.zeros(m),
            "W2": arr(self.output.weight),
            "b2": arr(self.output.bias) if self.output.bias is not None else np.zeros(c),
        }

    def to_network(self):
        """The weights as a :class:`convexrelu.ReLUNet`.

        Raises
        ------
        ValueError
            If ``negative_slope != 0``: a ``ReLUNet`` is a ReLU network.
        """
        if self.negative_slope != 0.0:
            raise ValueError(f"this module uses a leaky ReLU (negative_slope="
                             f"{self.negative_slope}); a ReLUNet holds ReLU networks only. Use "
                             ".weights() for the raw arrays.")
        from ..network import ReLUNet

        w = self.weights()
        return ReLUNet(w["W1"], w["b1"], w["W2"], w["b2"])

    @classmethod
    def from_network(cls, network, *, bias: bool = True, output_bias: Optional[bool] = None,
                     negative_slope: float = 0.0, dtype=torch.float64,
                     device="cpu") -> "TwoLayerReLU":
        """A module holding the weights of a :class:`convexrelu.ReLUNet`.

        Raises
        ------
        ValueError
            If a bias is switched off but the network's is nonzero.
        """
        output_bias = bias if output_bias is None else bool(output_bias)
        if (not bias and np.any(network.b1 != 0)) or (not output_bias
                                                      and np.any(network.b2 != 0)):
            raise ValueError("bias=False, but the network has nonzero biases; pass bias=True "
                             "or zero the biases first.")
        mod = cls(network.n_features, network.n_neurons, network.n_outputs, bias=bias,
                  output_bias=output_bias, negative_slope=negative_slope, dtype=dtype,
                  device=device)
        return mod.set_weights(network.W1, network.b1, network.W2, network.b2)

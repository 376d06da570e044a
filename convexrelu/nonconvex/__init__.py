"""Non-convex training of two-layer ReLU nets with torch, and what to watch along the way.

This subpackage is the only part of :mod:`convexrelu` that imports torch; ``import
convexrelu`` does not load it. It provides

* :class:`TwoLayerReLU`, a float64 ``Linear -> (leaky) ReLU -> Linear`` torch module;
* :func:`train_gradient_flow`, full-batch gradient descent (a discretised gradient flow)
  on exactly the objective of :meth:`convexrelu.ReLUNet.objective` (docs/mathematics.rst §8.1),
  returning a numpy-only :class:`TrainingHistory`;
* monitors evaluated along the run: :class:`ConservationMonitor`,
  :class:`RayleighMonitor`, :class:`ProxyPLMonitor`, :class:`CertificateMonitor`,
  :class:`AlignmentMonitor`;
* :func:`compare_gradient_flow`, gradient descent at several widths and seeds against the
  global optimum of the convex program, each final network certified.

Raises
------
ImportError
    On import, if torch is missing: install it with ``pip install convexrelu[torch]``.
"""

from ._module import TwoLayerReLU
from ._monitors import (
    AlignmentMonitor,
    CertificateMonitor,
    ConservationMonitor,
    Monitor,
    ProxyPLMonitor,
    RayleighMonitor,
    TrainingState,
    flatten_parameters,
    network_jacobian,
)
from ._trainer import TrainingHistory, train_gradient_flow
from ._compare import ComparisonResult, compare_gradient_flow

__all__ = [
    "TwoLayerReLU",
    "train_gradient_flow",
    "TrainingHistory",
    "TrainingState",
    "Monitor",
    "ConservationMonitor",
    "RayleighMonitor",
    "ProxyPLMonitor",
    "CertificateMonitor",
    "AlignmentMonitor",
    "network_jacobian",
    "flatten_parameters",
    "compare_gradient_flow",
    "ComparisonResult",
]

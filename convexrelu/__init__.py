"""convexrelu: two-layer ReLU networks trained to global optimality, with certificates.

The training problem of a two-layer ReLU network with weight decay equals a convex
program, a group lasso with cone constraints with one block per activation pattern of
the data (Pilanci & Ergen, 2020). convexrelu enumerates those patterns exactly, solves
the program, maps the solution back to an ordinary network, and certifies any trained
network with a dual bound.

Public names are loaded lazily: ``import convexrelu`` imports neither torch nor
matplotlib, nor cvxpy until a solver is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    # arrangements
    "ActivationPatterns": "convexrelu.arrangements",
    "enumerate_patterns": "convexrelu.arrangements",
    "sample_patterns": "convexrelu.arrangements",
    "count_patterns": "convexrelu.arrangements",
    "cover_bound": "convexrelu.arrangements",
    "PatternLimitError": "convexrelu.arrangements",
    # losses and networks
    "SquaredLoss": "convexrelu.losses",
    "LogisticLoss": "convexrelu.losses",
    "HingeLoss": "convexrelu.losses",
    "get_loss": "convexrelu.losses",
    "ReLUNet": "convexrelu.network",
    # convex program and estimators
    "ConvexProgram": "convexrelu.program",
    "ConvexSolution": "convexrelu.program",
    "ConvexReLURegressor": "convexrelu.estimators",
    "ConvexReLUClassifier": "convexrelu.estimators",
    "ConvexReLURegressorCV": "convexrelu._cv",
    "ConvexReLUClassifierCV": "convexrelu._cv",
    # solvers
    "regularization_path": "convexrelu.solvers",
    "alpha_max": "convexrelu.solvers",
    "column_generation": "convexrelu.solvers",
    # certificates
    "certify": "convexrelu.certificates",
    "Certificate": "convexrelu.certificates",
    "ViolatingNeuron": "convexrelu.certificates",
    "dual_constraint": "convexrelu.certificates",
    # settings
    "set_config": "convexrelu._memory",
    "get_config": "convexrelu._memory",
    "config_context": "convexrelu._memory",
    "MemoryBudgetError": "convexrelu._memory",
    # non-convex training (torch)
    "train_gradient_flow": "convexrelu.nonconvex",
    "compare_gradient_flow": "convexrelu.nonconvex",
    "TrainingHistory": "convexrelu.nonconvex",
    "ComparisonResult": "convexrelu.nonconvex",
    "TwoLayerReLU": "convexrelu.nonconvex",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'convexrelu' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)

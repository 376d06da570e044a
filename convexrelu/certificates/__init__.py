"""Optimality certificates: exact dual-constraint evaluation, duality gap, violating neuron.

:func:`certify` checks any trained two-layer ReLU network (a :class:`~convexrelu.ReLUNet`,
a torch module or a fitted scikit-learn MLP) against the global optimum of its training
problem over networks of every width (docs/mathematics.rst §4.5); :func:`dual_constraint` evaluates
``M(lambda)`` exactly over a set of activation patterns (docs/mathematics.rst §4.2, §8.5);
:func:`search_violators` looks for the most violating neuron by local search when the
patterns are too many to list (a heuristic, never a proof).
"""

from ._bnb import BnBResult, dual_constraint_bnb
from ._certify import Certificate, ViolatingNeuron, certify
from ._dual import DualConstraintValue, dual_constraint
from ._search import Candidate, search_violators

__all__ = ["certify", "Certificate", "ViolatingNeuron", "dual_constraint",
           "DualConstraintValue", "search_violators", "Candidate", "dual_constraint_bnb",
           "BnBResult"]

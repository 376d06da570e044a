"""
Certify a trained network
=========================

:func:`convexrelu.certify` takes a trained two-layer ReLU network — here a fitted
scikit-learn ``MLPRegressor`` — and returns a lower bound that no network of any width
can go below (the dual bound of :doc:`/mathematics` §4.5, evaluated exactly over every
activation pattern). The gap between the network's objective and the bound says how far
it may be from the global optimum; the convex fit closes it.

How far an ``lbfgs``-trained MLP stops above the bound depends on the scikit-learn and
SciPy versions; the numbers below were computed when this page was built.

Run it with ``python examples/certify.py [--fast]``.
"""

import sys

import matplotlib.pyplot as plt
import numpy as np
from sklearn.neural_network import MLPRegressor

from convexrelu import ConvexReLURegressor, certify
from convexrelu.plotting import plot_certificate

n_samples = 24 if "--fast" in sys.argv else 40
rng = np.random.default_rng(0)
X = rng.standard_normal((n_samples, 2))
y = np.abs(X[:, 0]) - 0.5 * X[:, 1] + 0.1 * rng.standard_normal(n_samples)

# %%
# A scikit-learn MLP with 20 hidden neurons; ``alpha`` and the loss come from the model.
mlp = MLPRegressor(hidden_layer_sizes=(20,), alpha=0.1, solver="lbfgs",
                   max_iter=5000, random_state=0).fit(X, y)
cert = certify(mlp, X, y)
print(cert.summary())

# %%
# The globally optimal network for the same objective, certified.
reg = ConvexReLURegressor(alpha=0.1, patterns="exact").fit(X, y)
print(reg.certificate_.summary())

# %%
# The certificate is a statement about one function of a neuron's input direction
# ``u``: the dual functional ``u -> lambda^T (X u + b)_+``. A network is globally optimal
# when it stays within ``[-beta, beta]`` and every neuron sits on the boundary. Left:
# the MLP (the curve leaves the band; the star is the neuron to add). Right: the convex
# fit.
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
plot_certificate(cert, X, network=None, ax=axes[0])
axes[0].set_title("MLPRegressor (lbfgs)")
plot_certificate(reg.certificate_, X, network=reg.network_, ax=axes[1])
axes[1].set_title("ConvexReLURegressor")
plt.show()

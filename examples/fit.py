"""
Fit a globally optimal ReLU network
===================================

:class:`~convexrelu.ConvexReLURegressor` enumerates every activation pattern of the data
(with a hidden bias: of ``[X, 1]``), solves the convex program, maps its solution back to
a two-layer ReLU network and certifies it. Here: 40 rows of scikit-learn's diabetes data,
features bmi and s5, standardised. The objective is scikit-learn's, so ``objective_`` is
directly comparable with an ``MLPRegressor``'s ``loss_`` at the same ``alpha``.

Run it with ``python examples/fit.py [--fast]``.
"""

import sys

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes

import convexrelu as cr
from convexrelu.plotting import plot_fit

n_samples = 24 if "--fast" in sys.argv else 40

X, y = load_diabetes(return_X_y=True)
X, y = X[:n_samples, [2, 8]], y[:n_samples]            # features bmi and s5
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()

# %%
# Fit: exact patterns, so the certificate is a proof of global optimality.
reg = cr.ConvexReLURegressor(alpha=0.1, patterns="exact").fit(X, y)
print(f"activation patterns: {reg.patterns_.n_patterns}")
print(f"objective (global optimum): {reg.objective_:.6f}")
print(f"hidden neurons after pruning: {reg.n_neurons_}")
print(reg.certificate_.summary())

# %%
# The network is an ordinary ReLU network; as a scikit-learn ``MLPRegressor`` it makes
# the same predictions.
mlp = reg.network_.to_sklearn()
print(f"largest prediction difference: {np.abs(mlp.predict(X) - reg.predict(X)).max():.1e}")

# %%
# The fitted function over the two features, with each neuron's kink line.
fig, ax = plt.subplots(figsize=(6, 5))
plot_fit(reg, X, y, ax=ax, feature_names=["bmi", "s5"],
         title=f"globally optimal fit, {reg.n_neurons_} neurons")
plt.show()

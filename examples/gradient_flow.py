"""
Gradient flow against the convex optimum
========================================

:func:`convexrelu.compare_gradient_flow` trains the ordinary, non-convex network by
full-batch gradient descent with a small step (a discretised gradient flow) at several
widths and seeds, on exactly the objective of the convex program, and certifies every
final network. A narrow network gets stuck well above the global optimum; a wide one gets
close, and the certificate says how much each could still improve.

Needs torch (``pip install convexrelu[torch]``). Run it with
``python examples/gradient_flow.py [--fast]``.
"""

import sys

import matplotlib.pyplot as plt
import numpy as np

import convexrelu as cr

n_steps = 1000 if "--fast" in sys.argv else 4000

rng = np.random.default_rng(0)
X = np.sort(rng.uniform(-2, 2, (12, 1)), axis=0)
y = np.sin(2 * X[:, 0])

# %%
# Widths 2 and 20, two seeds each; the table lists the final objective, its distance to
# the optimum ``p*`` and the certificate of each run.
res = cr.compare_gradient_flow(X, y, alpha=0.1, widths=(2, 20), seeds=(0, 1),
                               lr=0.05, n_steps=n_steps, progress=False)
print(res)

# %%
# ``J_t - p*`` along training, one curve per run.
fig, ax = plt.subplots(figsize=(6, 4))
res.plot(ax=ax)
plt.show()

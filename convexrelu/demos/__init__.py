"""Teaching demos: each module exposes ``run(out_dir, fast=False) -> int`` and ``DESCRIPTION``.

Every demo computes and prints the numbers it shows, writes its PNG figures into
``out_dir`` (matplotlib Agg, atomic writes) and runs in under a minute on a laptop CPU
(``fast=True`` is a much smaller version for the test suite). They are registered in
``convexrelu demo`` (see ``convexrelu demo --list``) and wrapped by ``examples/*.py``.

* :mod:`~convexrelu.demos.one_d_regression` — the convex optimum vs gradient descent at
  widths 2, 10, 50, with certificates;
* :mod:`~convexrelu.demos.arrangement_2d` — exact cells vs sampled gates;
* :mod:`~convexrelu.demos.dual_extreme_points` — Wang & Pilanci, max-margin training;
* :mod:`~convexrelu.demos.stuck_gradient_descent` — a narrow net stuck above the optimum;
* :mod:`~convexrelu.demos.proxy_pl` — Frei & Gu, proxy PL and the ReLU contrast;
* :mod:`~convexrelu.demos.rayleigh_quotient` — Robin, Scaman & Lelarge, Rayleigh quotients.

Importing this package imports neither torch nor matplotlib; each ``run`` does.
"""

import importlib

#: demo name -> module name, in presentation order
NAMES = ("one_d_regression", "arrangement_2d", "dual_extreme_points",
         "stuck_gradient_descent", "proxy_pl", "rayleigh_quotient")

__all__ = ["NAMES", "get"]


def get(name: str):
    """The module of demo ``name`` (imported on demand)."""
    if name not in NAMES:
        raise ValueError(f"unknown demo {name!r}; available: {list(NAMES)}.")
    return importlib.import_module(f"{__name__}.{name}")

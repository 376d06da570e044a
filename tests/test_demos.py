"""Teaching demos (issue 5 item 4): each runs headless in fast mode and writes its PNG."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from convexrelu.cli import main  # noqa: E402
from convexrelu.demos import NAMES  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: what each demo must print (its own measured quantities)
EXPECTED_OUTPUT = {
    "one_d_regression": ["p* =", "certificate gap", "Runs below the convex optimum: 0"],
    "arrangement_2d": ["Cover's formula", "Gaussian gates find"],
    "dual_extreme_points": ["Normalised margin", "1/R_mm", "M_s(lambda*)"],
    "stuck_gradient_descent": ["M(lambda) / beta", "Violating neuron", "above p*"],
    "proxy_pl": ["running min of ||grad L|| / G", "floor"],
    "rayleigh_quotient": ["lambda_min(K_t)", "rho_t: min", "fitted KL exponent"],
}


@pytest.mark.parametrize("name", NAMES)
def test_demo_runs_headless_and_writes_png(name, tmp_path, capsys):
    assert main(["demo", name, "--fast", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for text in EXPECTED_OUTPUT[name]:
        assert text in out
    pngs = sorted(tmp_path.glob("*.png"))
    assert [p.name for p in pngs] == [f"{name}.png"]
    data = pngs[0].read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed, not left behind


def test_demo_list_names_all_seven(capsys):
    assert main(["demo", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == ["fit", *NAMES]
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # name, then description


def test_unknown_demo_module_raises():
    from convexrelu import demos

    with pytest.raises(ValueError, match="unknown demo 'nope'"):
        demos.get("nope")


def test_dual_extreme_helpers_on_the_optimal_dual():
    """On orthogonally separable data, lambda* has M_+ = M_- = 1 and y^T lambda* = R_mm
    (docs/mathematics.rst §5.4, §9 item 27): the helpers the demo prints agree with the convex
    program."""
    pytest.importorskip("cvxpy")
    from convexrelu.demos.dual_extreme_points import (
        extreme_directions,
        max_margin_dual,
        orthogonally_separable_data,
    )

    X, y = orthogonally_separable_data(8, random_state=1)
    G = X @ X.T
    same = y[:, None] == y[None, :]
    assert np.all(G[same] > 0) and np.all(G[~same] <= 0)
    R_mm, lam = max_margin_dual(X, y)
    assert float(y @ lam) == pytest.approx(R_mm, rel=1e-6)
    assert np.all(y * lam >= -1e-8)
    dirs, vals = extreme_directions(X, lam)
    np.testing.assert_allclose(vals, 1.0, rtol=1e-5)
    # the closed-form maximiser beats every direction on a fine grid of the circle
    phi = np.linspace(-np.pi, np.pi, 20001)
    U = np.c_[np.cos(phi), np.sin(phi)]
    F = np.maximum(X @ U.T, 0.0).T @ lam
    assert F.max() <= vals[0] * (1 + 1e-9) and -F.min() <= vals[1] * (1 + 1e-9)
    assert float(np.maximum(X @ dirs[0], 0) @ lam) == pytest.approx(vals[0], rel=1e-12)

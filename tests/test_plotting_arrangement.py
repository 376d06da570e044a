"""plot_arrangement (Agg backend) and the lazy-import guarantee of `import convexrelu`."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from convexrelu import enumerate_patterns, sample_patterns

os.environ.setdefault("MPLBACKEND", "Agg")


def test_import_convexrelu_imports_neither_matplotlib_nor_torch():
    code = ("import convexrelu, sys; convexrelu.enumerate_patterns; "
            "import convexrelu.arrangements; "
            "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith(('matplotlib', 'torch')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_import_plotting_does_not_import_matplotlib():
    code = ("import sys, convexrelu.plotting as p; p.plot_arrangement; "
            "assert 'matplotlib' not in sys.modules")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_missing_matplotlib_says_which_extra(monkeypatch, rng):
    from convexrelu.plotting import plot_arrangement

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install convexrelu\[plot\]"):
        plot_arrangement(rng.standard_normal((5, 2)))


@pytest.fixture
def plt():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


@pytest.fixture
def X2(rng):
    return rng.standard_normal((7, 2))


def _colours_in(ax):
    img = ax.get_images()[0].get_array()
    return np.unique(np.asarray(img)[~np.ma.getmaskarray(img)])


def test_no_bias(plt, X2, tmp_path):
    from convexrelu.plotting import plot_arrangement

    fig, ax = plt.subplots()
    out = plot_arrangement(X2, ax=ax)
    assert out is ax
    assert "14 cells (exact)" in ax.get_title()          # 2n sectors
    assert len(ax.lines) == 7                             # one line per sample
    assert ax.collections[0].get_offsets().shape == (14, 2)  # one gate per cell
    assert len(_colours_in(ax)) == 14                     # every sector visible
    fig.savefig(tmp_path / "nobias.png")
    assert (tmp_path / "nobias.png").stat().st_size > 1000


@pytest.mark.parametrize("offset", [1.0, -1.0])
def test_bias_slice(plt, X2, tmp_path, offset):
    from convexrelu.plotting import plot_arrangement

    pats = enumerate_patterns(X2, bias=True)
    fig, ax = plt.subplots()
    plot_arrangement(X2, bias=True, patterns=pats, ax=ax, offset=offset)
    assert f"slice b = {offset:g}" in ax.get_title()
    gates = np.asarray(ax.collections[0].get_offsets())
    # gates drawn are those with b of the slice's sign, scaled into the slice
    n_side = int(np.sum(pats.gates[2] * offset > 0))
    assert 0 < len(gates) <= n_side
    Xa = np.hstack([X2, np.ones((7, 1))])
    fig.savefig(tmp_path / f"bias{offset:+g}.png")
    assert (tmp_path / f"bias{offset:+g}.png").stat().st_size > 1000
    # a drawn gate lies in its own cell: its pattern is a pattern of the set
    pt = np.column_stack([gates, np.full(len(gates), offset)])
    found = set(map(bytes, np.packbits(Xa @ pt.T > 0, axis=0, bitorder="little").T))
    assert found <= set(map(bytes, pats.packed))


def test_two_slices_show_every_cell(plt):
    # every cell is an open cone, so it meets b = +1 or b = -1. Three lines in general
    # position: 8 cells in R^3, 7 in each slice (a triangle and its 6 neighbours)
    from convexrelu.plotting import plot_arrangement

    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    pats = enumerate_patterns(X, bias=True)
    assert pats.n_patterns == 8
    for offset in (1.0, -1.0):
        fig, ax = plt.subplots()
        plot_arrangement(X, bias=True, patterns=pats, ax=ax, offset=offset, extent=4.0)
        k, total = map(int, re.search(r"(\d+) of (\d+) cells", ax.get_title()).groups())
        assert (k, total) == (7, 8)
        assert len(_colours_in(ax)) == 7


def test_sampled_overlay(plt, X2, tmp_path):
    from convexrelu.plotting import plot_arrangement

    sampled = sample_patterns(X2, 6, random_state=0, bias=True)
    fig, ax = plt.subplots()
    plot_arrangement(X2, bias=True, sampled=sampled, ax=ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lab.startswith("missed by sampling") for lab in labels)
    assert "sampled gate" in labels
    assert f"sampling found {sampled.n_patterns} of" in ax.get_title()
    assert len(ax.get_images()) == 2                      # cells + grey missed cells
    fig.savefig(tmp_path / "sampled.png")
    assert (tmp_path / "sampled.png").stat().st_size > 1000


def test_default_axes(plt, X2):
    from convexrelu.plotting import plot_arrangement

    ax = plot_arrangement(X2, show_gates=False)
    assert ax is plt.gca() and not ax.collections


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(X=np.ones((4, 3))), ValueError, "draws 2-D data; X has 3 features"),
    (dict(offset=0.0, bias=True), ValueError, "offset must be a nonzero"),
    (dict(bias=1), TypeError, "bias must be True or False"),
    (dict(resolution=1), ValueError, "resolution must be an int >= 2"),
    (dict(patterns="bias"), ValueError, "computed with bias=True but bias=False"),
    (dict(sampled="other"), ValueError, "computed on other data"),
])
def test_errors(plt, X2, kwargs, err, match):
    from convexrelu.plotting import plot_arrangement

    kwargs = dict(kwargs)
    X = kwargs.pop("X", X2)
    if kwargs.get("patterns") == "bias":
        kwargs["patterns"] = enumerate_patterns(X2, bias=True)
    if kwargs.get("sampled") == "other":
        kwargs["sampled"] = sample_patterns(X2 + 1.0, 5, random_state=0)
    with pytest.raises(err, match=match):
        plot_arrangement(X, **kwargs)

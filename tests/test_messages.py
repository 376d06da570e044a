"""What the user reads: certify's refusal, the certificate summary, estimator warnings."""

import warnings

import numpy as np
import pytest

from convexrelu import ConvexReLURegressor, PatternLimitError, ReLUNet, certify


# --------------------------------------------------------------------------- certify
def test_certify_pattern_limit_names_certify_parameters(rng):
    """The refusal points to certify's own options, not enumerate_patterns' max_patterns."""
    X = rng.standard_normal((300, 12))
    net = ReLUNet(rng.standard_normal((3, 12)), np.zeros(3), rng.standard_normal((1, 3)),
                  np.zeros(1))
    with pytest.raises(PatternLimitError, match=r"patterns=N .*NOT a proof") as info:
        certify(net, X, X[:, 0], alpha=0.1, patterns="exact")
    msg = str(info.value)
    assert "max_patterns" not in msg and "sample_patterns" not in msg
    assert "n_samples=300, rank 12" in msg and "2,000,000" in msg


def test_cli_certify_pattern_limit_names_the_option(tmp_path, rng, capsys):
    from convexrelu.cli import main

    X = rng.standard_normal((300, 12))
    net = ReLUNet(rng.standard_normal((3, 12)), np.zeros(3), rng.standard_normal((1, 3)),
                  np.zeros(1))
    model = tmp_path / "m.npz"
    from convexrelu._io import atomic_savez

    atomic_savez(model, header={"format": "convexrelu-model", "kind": "regressor",
                                "alpha": 0.1, "bias": False, "feature_names": None,
                                "n_features": 12}, **net.to_arrays())
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=X[:, 0])
    assert main(["certify", str(model), str(data), "--target", "y", "--patterns",
                 "exact"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convexrelu certify: error: ") and err.count("\n") == 1
    assert "--patterns N" in err and "max_patterns" not in err


@pytest.fixture(scope="module")
def far_from_optimal():
    """A 2-feature net far above the optimum: M(lambda)/beta >> 1."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2))
    y = np.abs(X[:, 0])
    net = ReLUNet(rng.standard_normal((3, 2)), rng.standard_normal(3),
                  0.01 * rng.standard_normal((1, 3)), np.zeros(1))
    return net, X, y


def test_summary_explains_the_violating_neuron(far_from_optimal):
    net, X, y = far_from_optimal
    cert = certify(net, X, y, alpha=0.1)
    v = cert.violating_neuron
    assert cert.exact and v is not None and 0 < v.objective_decrease <= cert.gap
    text = cert.summary()
    assert f"step t = {v.step:.3g}" in text
    assert f"lowers the objective by {v.objective_decrease:.3e}" in text
    assert "along that single neuron" in text and "not the gap" in text
    # what the numbers mean: the optimum lies between the one-step decrease and the gap
    assert f"lies {v.objective_decrease:.3e} to {cert.gap:.3e} lower" in text


def test_summary_violating_neuron_sampled(far_from_optimal):
    net, X, y = far_from_optimal
    cert = certify(net, X, y, alpha=0.1, patterns=40, random_state=0)
    assert not cert.exact and cert.violating_neuron is not None
    text = cert.summary()
    assert "at least" in text and "the gap is not an upper bound" in text


# --------------------------------------------------------------------------- estimators
def test_sampling_warning_points_at_the_callers_line(rng):
    X = rng.standard_normal((20, 3))
    y = X[:, 0]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ConvexReLURegressor(alpha=0.1, max_patterns=10, certify=False).fit(X, y)
    hits = [x for x in w if "sampled patterns instead" in str(x.message)]
    assert len(hits) == 1
    assert hits[0].filename == __file__, hits[0].filename


def test_sampling_warning_through_cross_val_score(rng):
    from sklearn.model_selection import cross_val_score

    X = rng.standard_normal((20, 3))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        cross_val_score(ConvexReLURegressor(alpha=0.1, max_patterns=10, certify=False),
                        X, X[:, 0], cv=2)
    hits = [x for x in w if "sampled patterns instead" in str(x.message)]
    assert hits and all(x.filename == __file__ for x in hits)


def test_patterns_bool_rejected(rng):
    """True is an int >= 1 to Python: it used to pass as "auto" silently."""
    X = rng.standard_normal((8, 2))
    with pytest.raises(ValueError, match=r"'patterns' parameter of ConvexReLURegressor .* a "
                                         "bool is not a number of patterns. Got True instead"):
        ConvexReLURegressor(patterns=True).fit(X, X[:, 0])
    with pytest.raises(ValueError, match=r"'patterns' parameter .*Got False instead"):
        ConvexReLURegressor(patterns=False).fit(X, X[:, 0])  # sklearn's own check (0 < 1)


def test_user_stacklevel_skips_library_frames():
    """A frame whose file is inside the package is skipped; the test's own frame is not."""
    import os

    from convexrelu import _warnings

    assert _warnings.user_stacklevel() == 1  # called from here: this frame is the user's
    ns = {"user_stacklevel": _warnings.user_stacklevel}
    fake = os.path.join(_warnings._PACKAGE_DIR, "_fake_module.py")
    exec(compile("def inner():\n    return user_stacklevel()\n"
                 "def outer():\n    return inner()\n", fake, "exec"), ns)
    assert ns["inner"]() == 2 and ns["outer"]() == 3


def test_certify_pattern_limit_other_wording(rng, monkeypatch):
    """Whatever the enumerator's wording, certify's refusal gives certify's own advice."""
    import convexrelu.arrangements as arrangements

    def refuse(X, **kwargs):
        raise PatternLimitError("too many cells")

    monkeypatch.setattr(arrangements, "enumerate_patterns", refuse)
    X = rng.standard_normal((10, 3))
    net = ReLUNet(rng.standard_normal((2, 3)), np.zeros(2), rng.standard_normal((1, 2)),
                  np.zeros(1))
    with pytest.raises(PatternLimitError, match=r"^X has too many activation patterns for "
                                                r"an exact certificate\. Pass patterns=N"):
        certify(net, X, X[:, 0], alpha=0.1, patterns="exact")

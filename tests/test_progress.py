"""Progress bars: drawn in a terminal, silent in a log file (convexrelu._progress)."""

import io
import os
import sys

import numpy as np
import pytest

from convexrelu._progress import is_interactive, progress_bar, show_progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("progress, large, tty, shown", [
    (None, True, True, True),      # automatic: long work in a terminal
    (None, True, False, False),    # automatic: never in a log file
    (None, False, True, False),    # automatic: short work never
    (True, False, False, True),    # asked for: always
    (True, True, True, True),
    (False, True, True, False),    # refused: never
])
def test_show_progress_decision(progress, large, tty, shown):
    stream = _Terminal() if tty else io.StringIO()
    assert show_progress(progress, large=large, stream=stream) is shown


def test_is_interactive():
    assert is_interactive(_Terminal())
    assert not is_interactive(io.StringIO())
    assert not is_interactive(object())  # no isatty at all
    closed = io.StringIO()
    closed.close()
    assert not is_interactive(closed)


def test_no_carriage_returns_in_a_log_file(tmp_path):
    """stderr redirected to a file: an automatic bar writes nothing at all."""
    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        assert not os.isatty(fh.fileno())
        bar = progress_bar(total=1000, desc="work", progress=None, large=True, file=fh)
        for _ in range(1000):
            bar.update(1)
        bar.close()
    assert log.read_text() == ""


def test_explicit_bar_in_a_log_file_is_throttled(tmp_path):
    """progress=True in a log file: drawn, but not refreshed at every update."""
    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        bar = progress_bar(total=1000, desc="work", progress=True, file=fh)
        for _ in range(1000):
            bar.update(1)
        bar.close()
    text = log.read_text()
    assert "work" in text and "1000/1000" in text
    assert text.count("\r") <= 3  # the first draw and the final one, not 1000 refreshes


def test_terminal_bar_is_drawn():
    term = _Terminal()
    bar = progress_bar(range(5), total=5, desc="work", progress=None, file=term)
    assert list(bar) == list(range(5))
    assert "work" in term.getvalue()


def test_enumeration_bar_silent_when_stderr_is_not_a_terminal(capsys):
    """The enumerator's automatic bar (large enumerations) stays silent under capture."""
    from convexrelu.arrangements._enumerate import _progress_bar

    assert not sys.stderr.isatty()
    bar = _progress_bar(None, 10 ** 6, "lines")
    bar.update(10 ** 5)
    bar.close()
    assert capsys.readouterr().err == ""


def test_compare_gradient_flow_bar_silent_when_stderr_is_not_a_terminal(capsys):
    pytest.importorskip("torch")
    from convexrelu.nonconvex import compare_gradient_flow

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 2)), rng.standard_normal(5)
    # four runs: more than 3, so the automatic bar was drawn before
    res = compare_gradient_flow(X, y, alpha=1.0, widths=(1, 2), seeds=(0, 1), n_steps=10,
                                lr=0.1, certify=False, record_every=5)
    assert len(res.runs) == 4
    err = capsys.readouterr().err
    assert "\r" not in err and "compare_gradient_flow" not in err


@pytest.mark.slow
def test_training_bar_silent_when_stderr_is_not_a_terminal(capsys):
    pytest.importorskip("torch")
    from convexrelu.nonconvex import train_gradient_flow

    X = np.random.default_rng(0).standard_normal((5, 2))
    h = train_gradient_flow(X, X[:, 0], n_neurons=2, alpha=0.1, lr=0.1, n_steps=20000,
                            record_every=5000, random_state=0)
    assert h.status == "completed"
    assert "\r" not in capsys.readouterr().err

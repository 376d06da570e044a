"""The code a user reads runs, and prints what the text says it prints.

Every ```python block of README.md and every ``.. code-block:: python`` of the user guide
(``docs/**/*.rst``) is run in a fresh interpreter that imports this checkout. When the
block is followed directly by a ```text block (``.. code-block:: text`` in reST), that
block is its expected standard output, compared line by line:

* a line that is just ``...`` stands for any number of lines (including none);
* ``...`` inside a line stands for any text (digits the text does not quote, such as
  solver round-off or numbers that depend on other libraries' versions);
* every number the text quotes is checked to the digits quoted: integers exactly, other
  numbers to within one unit of their last quoted digit (so that a rounding flip of the
  next digit on another platform does not fail the test);
* all other text must match, up to runs of white space.

A text block introduced by ``<!-- test: output of `convexrelu ARGS` -->`` (README) is the
expected output of that command, run the same way. A block marked ``slow`` (the README
comment contains ``slow``; in reST a comment ``.. test: slow`` before the block) runs in
the slow step (``pytest -m slow``); the others run in the default suite.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: generated or third-party reST under docs/ that is not ours to run
DOCS_SKIP = ("_build", "auto_examples", "api/generated", "_templates")

NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(rf"(\.\.\.|{NUMBER})")


@dataclass
class Snippet:
    """One runnable block and the output the text quotes for it."""

    source: str            # "README.md:12"
    kind: str              # "python" or "command"
    code: str              # python source, or the command line after "convexrelu"
    expected: Optional[str]
    slow: bool

    @property
    def id(self) -> str:
        return self.source


# ------------------------------------------------------------------ extraction
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARKER = re.compile(r"<!--\s*test:(.*?)-->", re.S)


def markdown_snippets(text: str, name: str) -> List[Snippet]:
    """The runnable blocks of a markdown file (see the module docstring)."""
    fences = list(_FENCE.finditer(text))
    snippets = []
    used_as_output = set()
    for k, fence in enumerate(fences):
        lang, body = fence.group(1), fence.group(2)
        line = text.count("\n", 0, fence.start()) + 1
        before = text[fences[k - 1].end() if k else 0:fence.start()]
        marker = _MARKER.findall(before.strip().splitlines()[-1]) if before.strip() else []
        marker = marker[0] if marker else ""
        if lang == "python":
            expected = None
            if k + 1 < len(fences):
                nxt = fences[k + 1]
                gap = text[fence.end():nxt.start()]
                if nxt.group(1) == "text" and not gap.strip():
                    expected = nxt.group(2)
                    used_as_output.add(k + 1)
            snippets.append(Snippet(f"{name}:{line}", "python", body, expected,
                                    "slow" in marker))
        elif lang == "text" and "output of" in marker:
            command = re.search(r"output of\s+`convexrelu\s*([^`]*)`", marker)
            if command is None:
                raise ValueError(f"{name}:{line}: a test marker names no `convexrelu ...` "
                                 f"command: {marker!r}")
            snippets.append(Snippet(f"{name}:{line}", "command", command.group(1), body,
                                    "slow" in marker))
    return snippets


_RST_BLOCK = re.compile(r"^\.\. code-block:: (\w+)[ \t]*\n((?:[ \t]*\n|[ \t]+[^\n]*\n)*)",
                        re.M)


def _dedent_block(block: str) -> str:
    lines = block.split("\n")
    body = [ln for ln in lines if ln.strip()]
    if not body:
        return ""
    indent = min(len(ln) - len(ln.lstrip()) for ln in body)
    text = "\n".join(ln[indent:] for ln in lines)
    return text.strip("\n") + "\n"


def rst_snippets(text: str, name: str) -> List[Snippet]:
    """The ``.. code-block:: python`` blocks of a reST file, with their quoted output."""
    blocks = list(_RST_BLOCK.finditer(text))
    snippets = []
    for k, block in enumerate(blocks):
        if block.group(1) != "python":
            continue
        line = text.count("\n", 0, block.start()) + 1
        before = text[:block.start()].rstrip().splitlines()
        slow = bool(before) and before[-1].strip().startswith(".. test:") and \
            "slow" in before[-1]
        expected = None
        if k + 1 < len(blocks) and blocks[k + 1].group(1) == "text" and \
                blocks[k + 1].start() == block.end():
            expected = _dedent_block(blocks[k + 1].group(2))
        snippets.append(Snippet(f"{name}:{line}", "python", _dedent_block(block.group(2)),
                                expected, slow))
    return snippets


def all_snippets() -> List[Snippet]:
    """Every runnable block of README.md and of the reST sources under docs/."""
    snippets = markdown_snippets(README.read_text(encoding="utf-8"), "README.md")
    for path in sorted(DOCS.rglob("*.rst")):
        rel = path.relative_to(DOCS).as_posix()
        if any(rel.startswith(skip) for skip in DOCS_SKIP):
            continue
        snippets += rst_snippets(path.read_text(encoding="utf-8"),
                                 path.relative_to(ROOT).as_posix())
    return snippets


# ------------------------------------------------------------------ comparison
def _unit(number: str) -> float:
    """One unit in the last quoted digit of ``number`` (``"0.1640"`` -> 1e-4)."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def _is_integer(number: str) -> bool:
    return "." not in number and "e" not in number.lower()


def _line_pattern(expected: str):
    """A regex for one expected line and the quoted numbers, in order."""
    parts, numbers = [], []
    for token in _TOKEN.split(expected.strip()):
        if not token:
            continue
        if token == "...":
            parts.append(".*?")
        elif re.fullmatch(NUMBER, token):
            parts.append(f"({NUMBER})")
            numbers.append(token)
        else:
            parts.append("".join(r"\s+" if piece.isspace() else re.escape(piece)
                                 for piece in re.split(r"(\s+)", token) if piece))
    return re.compile("".join(parts)), numbers


def line_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` (one line) is what ``expected`` quotes (see module docstring)."""
    pattern, numbers = _line_pattern(expected)
    m = pattern.fullmatch(actual.strip())
    if m is None:
        return False
    for quoted, got in zip(numbers, m.groups()):
        if _is_integer(quoted):
            if not _is_integer(got) or int(got) != int(quoted):
                return False
        elif abs(float(got) - float(quoted)) > _unit(quoted) * (1 + 1e-9):
            return False
    return True


def _lines(text: str) -> List[str]:
    lines = [ln.rstrip() for ln in text.strip("\n").split("\n")]
    return lines if any(lines) else []


def output_matches(expected: str, actual: str) -> Optional[str]:
    """``None`` when ``actual`` is what ``expected`` quotes, else a description of the
    first expected line that could not be matched."""
    exp, act = _lines(expected), _lines(actual)
    best = [0]   # furthest expected line reached, for the error message
    memo = {}

    def match(i: int, j: int) -> bool:
        key = (i, j)
        if key in memo:
            return memo[key]
        best[0] = max(best[0], i)
        if i == len(exp):
            ok = j == len(act)
        elif exp[i].strip() == "...":
            ok = any(match(i + 1, jj) for jj in range(j, len(act) + 1))
        elif j < len(act) and (exp[i].strip() == act[j].strip() == "" or
                               (exp[i].strip() and line_matches(exp[i], act[j]))):
            ok = match(i + 1, j + 1)
        else:
            ok = False
        memo[key] = ok
        return ok

    if match(0, 0):
        return None
    i = min(best[0], len(exp) - 1)
    return (f"expected line {i + 1} not found where the text quotes it:\n  {exp[i]!r}\n"
            f"--- actual output ---\n{actual}")


# ------------------------------------------------------------------ running
def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_snippet(snippet: Snippet, cwd: Path) -> subprocess.CompletedProcess:
    """Run one block in a fresh interpreter importing this checkout."""
    if snippet.kind == "python":
        args = [sys.executable, "-c", snippet.code]
    else:
        args = [sys.executable, "-m", "convexrelu.cli", *shlex.split(snippet.code)]
    return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=900)


SNIPPETS = all_snippets()


@pytest.mark.parametrize("snippet", [
    pytest.param(s, id=s.id, marks=[pytest.mark.slow] if s.slow else [])
    for s in SNIPPETS])
def test_snippet_runs_and_prints_what_the_text_quotes(snippet, tmp_path):
    proc = run_snippet(snippet, tmp_path)
    assert proc.returncode == 0, (f"{snippet.source} failed (exit {proc.returncode}):\n"
                                  f"{proc.stderr[-4000:]}")
    if snippet.expected is not None:
        problem = output_matches(snippet.expected, proc.stdout)
        assert problem is None, f"{snippet.source}: {problem}"


# ------------------------------------------------------------------ fast checks
def test_snippets_are_found_and_every_one_has_its_output_quoted():
    """README.md has its ten-line example and the main job's output; the user guide
    has its own runnable blocks; every block that prints is compared."""
    readme = [s for s in SNIPPETS if s.source.startswith("README.md")]
    assert [s.kind for s in readme].count("python") >= 1
    assert any(s.kind == "command" and s.code.split()[:1] == ["demo"] for s in readme)
    assert any(s.source.startswith("docs/") for s in SNIPPETS)
    assert all(s.expected is not None for s in SNIPPETS)


def test_readme_starts_with_exactly_two_commands():
    text = README.read_text(encoding="utf-8")
    first = _FENCE.search(text)
    assert first.group(1) == "bash"
    assert "## Two commands" in text[:first.start()]
    assert text[:first.start()].count("\n## ") == 1, "the two commands come first"
    commands = [ln for ln in first.group(2).splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(commands) == 2
    assert commands[0].endswith("convexrelu demo")
    assert commands[1].endswith("python -m pytest")


def test_ten_line_example_is_short():
    first_python = next(s for s in SNIPPETS if s.source.startswith("README.md")
                        and s.kind == "python")
    assert len([ln for ln in first_python.code.splitlines() if ln.strip()]) <= 11


@pytest.mark.parametrize("expected, actual", [
    ("objective 0.16402474", "objective  0.1640247387"),       # more digits printed
    ("objective 0.16402474", "objective 0.16402475"),          # last digit +1
    ("gap ... (relative ..., tol 1e-08)", "gap 9.891e-12 (relative 6.030e-11, tol 1e-08)"),
    ("lower bound 0.11035234...", "lower bound 0.1103523414"),
    ("patterns checked 1558 (all patterns)", "patterns checked  1558 (all patterns)"),
])
def test_line_matches_quoted_digits(expected, actual):
    assert line_matches(expected, actual)


@pytest.mark.parametrize("expected, actual", [
    ("objective 0.16402474", "objective 0.16402476"),          # off by 2 in the last digit
    ("patterns checked 1558 (all patterns)", "patterns checked 1559 (all patterns)"),
    ("patterns checked 1558 (all patterns)", "patterns checked 1558.0 (all patterns)"),
    ("CERTIFIED globally optimal", "not certified optimal"),
    ("29% above", "14% above"),
])
def test_line_mismatches_are_caught(expected, actual):
    assert not line_matches(expected, actual)


def test_output_ellipsis_lines_and_missing_lines():
    actual = "a 1\nb 2\nc 3\nd 4\n"
    assert output_matches("a 1\n...\nd 4\n", actual) is None
    assert output_matches("...\nc 3\n...", actual) is None
    assert output_matches("a 1\nd 4\n", actual) is not None      # lines may not vanish
    problem = output_matches("a 1\n...\ne 5\n", actual)
    assert problem is not None and "'e 5'" in problem


def test_rst_and_markdown_extraction():
    md = ("x\n<!-- test: slow -->\n```python\nprint(1)\n```\n\n```text\n1\n```\n"
          "<!-- test: output of `convexrelu demo --list` -->\n```text\nfit ...\n```\n")
    py, cmd = markdown_snippets(md, "m.md")
    assert (py.kind, py.code, py.expected, py.slow) == ("python", "print(1)\n", "1\n", True)
    assert (cmd.kind, cmd.code, cmd.expected, cmd.slow) == (
        "command", "demo --list", "fit ...\n", False)
    rst = (".. test: slow\n\n.. code-block:: python\n\n   print(2)\n   print(3)\n\n"
           ".. code-block:: text\n\n   2\n   3\n\nAfter.\n")
    (snip,) = rst_snippets(rst, "r.rst")
    assert (snip.code, snip.expected, snip.slow) == ("print(2)\nprint(3)\n", "2\n3\n", True)

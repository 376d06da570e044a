"""Every reference a user sees resolves inside the repository.

* Each ``§x.y`` cited by the package, its tests, benchmarks, examples, README and docs
  (they all cite ``docs/mathematics.rst``) names a section of docs/mathematics.rst, whose
  titles carry their numbers.
* Each relative link or image of README.md points at a file of the repository.
* docs/api.rst documents every public name (``__all__`` of the package and of its
  public subpackages).

The Sphinx build itself (``-W -n``, in .ci/run) checks the references inside docs/.
"""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MATH = ROOT / "docs" / "mathematics.rst"

#: the numbering the docstrings rely on: section -> number of subsections
SECTIONS = {0: 0, 1: 4, 2: 3, 3: 7, 4: 5, 5: 5, 6: 4, 7: 2, 8: 5, 9: 33}

CITING = [ROOT / "README.md", *sorted((ROOT / "convexrelu").rglob("*.py")),
          *sorted((ROOT / "tests").glob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py")),
          *sorted((ROOT / "examples").glob("*.py")),
          *[p for p in sorted((ROOT / "docs").rglob("*.rst"))
            if not any(part in p.parts for part in ("_build", "auto_examples", "generated"))]]


def math_anchors():
    """The section numbers docs/mathematics.rst defines (``.. _math-4.5:`` labels)."""
    return set(re.findall(r"^\.\. _math-([\d.]+):$", MATH.read_text(encoding="utf-8"),
                          re.M))


def test_mathematics_page_has_the_cited_numbering():
    expected = {str(s) for s in SECTIONS}
    expected |= {f"{s}.{k}" for s, n in SECTIONS.items() for k in range(1, n + 1)}
    assert math_anchors() == expected


def test_mathematics_titles_carry_their_numbers():
    """Each anchor is followed by a title that starts with its own number, so a reader
    finds "§4.5" by searching the page."""
    text = MATH.read_text(encoding="utf-8")
    for num in math_anchors():
        m = re.search(rf"^\.\. _math-{re.escape(num)}:\n\n(.+)$", text, re.M)
        assert m is not None, num
        title = m.group(1)
        if num.startswith("9."):
            assert title.startswith(f"**{num}** "), title
        else:
            assert title.startswith(f"§{num} "), title


def test_mathematics_page_has_no_internal_status_tags():
    text = MATH.read_text(encoding="utf-8")
    assert not re.search(r"\[(V|D|R)(\]|[,;+ ])", text)
    assert "MATH" not in text


def _citations():
    for path in CITING:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"§(\d+(?:\.\d+)?)(?:\s+items?\s+([\d ,\-–and]+))?", text):
            yield path, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)


def test_every_section_citation_resolves():
    anchors = math_anchors()
    bad = []
    n = 0
    for path, line, num, items in _citations():
        n += 1
        where = f"{path.relative_to(ROOT)}:{line}"
        if num not in anchors:
            bad.append(f"{where}: §{num}")
        if items and "." not in num and num != "9":
            bad.append(f"{where}: §{num} has no numbered items (the identities are §9)")
        for item in re.findall(r"\d+", items or "") if num == "9" else ():
            if f"{num}.{item}" not in anchors:
                bad.append(f"{where}: §{num} item {item}")
    assert n > 50          # the package does cite the page
    assert not bad, "citations of docs/mathematics.rst that name no section:\n" + \
        "\n".join(bad)


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
    assert targets
    missing = [t for t in targets if "://" not in t and not (ROOT / t.split("#")[0]).exists()]
    assert not missing


def test_readme_has_no_stale_internal_references():
    """The README quotes no file users do not have and no internal tracker."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for word in ("MATH", "INTERFACES.md", "issue"):
        assert word not in text


# ------------------------------------------------------------------ API reference
PUBLIC_MODULES = ["convexrelu", "convexrelu.arrangements", "convexrelu.losses",
                  "convexrelu.regularizers", "convexrelu.network", "convexrelu.program",
                  "convexrelu.solvers",
                  "convexrelu.certificates", "convexrelu.nonconvex", "convexrelu.plotting",
                  "convexrelu.demos"]


def documented_names():
    """Fully qualified names listed in docs/api.rst autosummary tables."""
    names, module, in_table = set(), None, False
    for line in (ROOT / "docs" / "api.rst").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\.\. currentmodule:: (\S+)", line)
        if m:
            module = m.group(1)
        if line.startswith(".. autosummary::"):
            in_table = True
            continue
        if in_table:
            if line.strip().startswith(":") or not line.strip():
                continue
            if line.startswith("   "):
                names.add(f"{module}.{line.strip()}")
                continue
            in_table = False
    return names


@pytest.mark.parametrize("modname", PUBLIC_MODULES)
def test_api_reference_lists_every_public_name(modname):
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:  # torch is optional
        pytest.skip(f"{modname} needs an optional dependency: {exc}")
    top = importlib.import_module("convexrelu")
    documented = documented_names()
    missing = []
    for name in module.__all__:
        if f"{modname}.{name}" in documented:
            continue
        if name in top.__all__ and f"convexrelu.{name}" in documented:
            if getattr(top, name) is getattr(module, name):
                continue
        missing.append(f"{modname}.{name}")
    assert not missing, f"add these to docs/api.rst: {missing}"

"""Sphinx configuration of the convexrelu documentation.

Build with ``make -C docs html`` or ``python -m sphinx -W --keep-going -n docs docs/_build/html``
(after ``pip install -e ".[docs]"``). The build needs no network. Set
``CONVEXRELU_DOCS_FAST=1`` to run the example gallery at a reduced size (what CI does).
"""

import os
import re
import shutil
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))                 # gallery_helpers, api_aliases
sys.path.insert(0, str(HERE.parent))          # the package itself, from this checkout
os.environ.setdefault("MPLBACKEND", "Agg")

import convexrelu  # noqa: E402

project = "convexrelu"
author = "the convexrelu developers"
copyright = "2026, the convexrelu developers"
version = release = convexrelu.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "api_aliases",
]

# MathJax for offline viewing: the ``sphinx-mathjax-offline`` package (in the ``docs``
# extra) ships MathJax 3 and copies it into ``_static/mathjax``; without it the pages
# reference MathJax's CDN (the build itself never needs the network either way).
try:
    import importlib.util

    if importlib.util.find_spec("sphinx-mathjax-offline") is not None:
        extensions.append("sphinx-mathjax-offline")
except (ImportError, ValueError):  # pragma: no cover - depends on the environment
    pass

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.json", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "literal"     # `x` in docstrings is code, as in scikit-learn's docs
nitpicky = True

# Names that are not ours and have no inventory here (the build is offline, so no
# intersphinx): the standard library's, numpy's, scikit-learn's, torch's and
# matplotlib's types as they appear in signatures and numpydoc "Parameters" sections.
nitpick_ignore_regex = [
    # third-party and standard-library types (no intersphinx inventory offline)
    ("py:class", r"(numpy|np|scipy|sklearn|torch|matplotlib|cvxpy|pathlib|collections"
                 r"|typing|os|io|argparse|abc)\..*"),
    ("py:class", r"(ndarray|array-like|array_like|ArrayLike|Path|PathLike|Axes|Figure"
                 r"|Module|Tensor|Sequential|MLPRegressor|MLPClassifier|Generator"
                 r"|RandomState|BaseEstimator|RegressorMixin|ClassifierMixin)"),
    # builtins and numpydoc type vocabulary
    ("py:class", r"(int|float|bool|str|dict|list|tuple|set|bytes|callable|Callable|object"
                 r"|None|Any|Iterator|Iterable|Sequence|Mapping|type|slice|complex)"),
]

# -- autodoc / autosummary / numpydoc ------------------------------------------------
autosummary_generate = True
# regenerate the API pages on every build, so that a renamed or removed name leaves no
# stale page behind (they are cheap to write)
shutil.rmtree(HERE / "api" / "generated", ignore_errors=True)
autosummary_imported_members = False
autodoc_typehints = "none"          # numpydoc sections carry the types
autodoc_default_options = {"members": True, "undoc-members": True}
autoclass_content = "class"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = False
numpydoc_validation_checks = set()


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document only members defined in convexrelu (not those inherited from
    scikit-learn's BaseEstimator, such as ``set_fit_request``, or from ``object``)."""
    module = getattr(obj, "__module__", None)
    if what == "class" and callable(obj) and module and not module.startswith("convexrelu"):
        return True
    return None


_SECTION = re.compile(r"^([A-Z][A-Za-z ]+)\n-{3,}$")


def _records_into_notes(app, what, name, obj, options, lines):
    """The monitors document the keys they record in a "Records" section, which numpydoc
    does not know (it would drop it). Render it inside "Notes" as a definition list."""
    text = "\n".join(lines)
    if "\nRecords\n-------" not in "\n" + text:
        return
    blocks, current = [], ["", []]
    for line, nxt in zip(lines, lines[1:] + [""]):
        if _SECTION.match(f"{line}\n{nxt}"):
            blocks.append(current)
            current = [line, []]
        elif not re.fullmatch(r"-{3,}", line) or not current[1] == []:
            current[1].append(line)
    blocks.append(current)
    records = [b for b in blocks if b[0] == "Records"]
    blocks = [b for b in blocks if b[0] != "Records"]
    extra = ["**Records** (the keys this monitor adds to each record):", ""]
    for rec in records:
        for line in rec[1]:
            if line.strip() and not line.startswith(" "):
                names, _, kind = line.partition(" : ")
                extra.append(f"* ``{names.strip()}`` ({kind.strip()})")
            elif line.strip():
                extra.append("  " + line.strip())
    extra.append("")
    notes = [b for b in blocks if b[0] == "Notes"]
    if notes:
        notes[0][1] = extra + [""] + notes[0][1]
    else:
        blocks.append(["Notes", extra])
    out = []
    for title, body in blocks:
        if title:
            out += [title, "-" * len(title)]
        out += body
    lines[:] = out


# numpydoc also reads the raw docstrings (for signatures and summaries) and warns about the
# unknown "Records" section there; the rendered pages get it through _records_into_notes
warnings.filterwarnings("ignore", message="Unknown section Records", category=UserWarning)


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
    # before numpydoc (priority 500) parses the sections
    app.connect("autodoc-process-docstring", _records_into_notes, priority=400)


# -- sphinx-gallery --------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",          # run every example, not only plot_*.py
    "ignore_pattern": r"__init__\.py",
    "reset_argv": "gallery_helpers.reset_argv",
    "image_scrapers": ("matplotlib", "gallery_helpers.png_scraper"),
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "capture_repr": (),
    "min_reported_time": 1,
    "write_computation_times": False,   # its page loads scripts from a CDN
}

# -- HTML ------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"convexrelu {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []
html_show_sourcelink = False


# -- the command-line reference: each command's --help, captured at build time ---------
def _write_cli_help():
    """Write ``user_guide/cli_help/<command>.txt`` from the installed argparse parsers, so
    that the CLI page can never drift from the code."""
    import subprocess

    out = HERE / "user_guide" / "cli_help"
    out.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(HERE.parent), os.environ.get("PYTHONPATH", "")]), COLUMNS="88")
    for command in ("", "demo", "fit", "predict", "certify", "patterns", "bench"):
        args = [sys.executable, "-m", "convexrelu.cli", *([command] if command else []),
                "--help"]
        text = subprocess.run(args, env=env, capture_output=True, text=True,
                              check=True).stdout
        (out / f"{command or 'convexrelu'}.txt").write_text(text)


_write_cli_help()

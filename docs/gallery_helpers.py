"""Helpers of the sphinx-gallery configuration (importable, so the config stays picklable).

The six teaching demos write PNG files instead of leaving matplotlib figures open, so
:func:`reset_argv` hands each example ``--out DIR`` (a fresh folder per example) and
:func:`png_scraper` embeds the PNG files written there. With ``CONVEXRELU_DOCS_FAST=1``
each example also gets ``--fast`` (a smaller, quicker version), which is what CI uses.
"""

import os
import shutil
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="convexrelu-gallery-"))
_SEEN = set()


def fast() -> bool:
    """Whether the gallery runs at reduced size (``CONVEXRELU_DOCS_FAST`` set and not 0)."""
    return os.environ.get("CONVEXRELU_DOCS_FAST", "0") not in ("", "0")


def out_dir(src_file) -> Path:
    """The folder example ``src_file`` writes its figures into during the build."""
    return _ROOT / Path(src_file).stem


def reset_argv(gallery_conf, script_vars):
    """Command-line arguments of each example: ``--out DIR`` and, in fast mode, ``--fast``."""
    argv = ["--out", str(out_dir(script_vars["src_file"]))]
    return argv + (["--fast"] if fast() else [])


def png_scraper(block, block_vars, gallery_conf):
    """Embed the PNG files the example wrote into its ``--out`` folder since the last block."""
    from sphinx_gallery.scrapers import figure_rst

    folder = out_dir(block_vars["src_file"])
    if not folder.is_dir():
        return ""
    new = sorted(p for p in folder.glob("*.png") if p not in _SEEN)
    paths = []
    for png in new:
        _SEEN.add(png)
        target = next(block_vars["image_path_iterator"])
        shutil.copyfile(png, target)
        paths.append(target)
    return figure_rst(paths, gallery_conf["src_dir"])

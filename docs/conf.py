"""Sphinx configuration (numpydoc, sphinx-gallery, pydata theme).

Build with ``make -C docs html`` (warnings are errors).  The package is imported from the
checkout this file lives in, so an editable install is not required; the docs extra
(``pip install -e ".[docs]"``) provides Sphinx and its extensions.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "sphinxext"))

# must follow the sys.path insertion above so that this checkout's package is documented
import sklearn_bnn  # noqa: E402

project = "sklearn-bnn"
author = "sklearn-bnn developers"
copyright = "sklearn-bnn developers"
release = version = sklearn_bnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "auto_examples/*.ipynb", "auto_examples/*.py"]
root_doc = "index"
default_role = "literal"

# ---------------------------------------------------------------------- autodoc / numpydoc
autosummary_generate = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # numpydoc sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Docstrings cite papers as [SGL20]_, [SY21]_, [SYF20]_, [YZ19]_.  numpydoc renames the
# citations a docstring defines itself (so the same label in many docstrings does not
# clash); a docstring that cites a label it does not define resolves to references.rst.

# ------------------------------------------------------------------------- sphinx-gallery
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "doc_module": ("sklearn_bnn",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"sklearn_bnn": None},
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    # Examples run with warnings as errors (docs/sphinxext/strict_warnings.py): a
    # FitFailedWarning, a ConvergenceWarning or a nan's RuntimeWarning fails the example,
    # and a failing example fails the build (only_warn_on_example_error=False).
    "reset_modules": ("matplotlib", "strict_warnings.reset_warnings"),
    "reset_modules_order": "both",
    "only_warn_on_example_error": False,
    "abort_on_example_error": False,
}

# ----------------------------------------------------------------------------- intersphinx
# The inventories are fetched over the network.  On a machine without one (the CI and
# build machines of this project) the links are skipped instead of failing a -W build;
# SKLEARN_BNN_INTERSPHINX=1 forces them on, =0 off.
_INVENTORIES = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
}


def _online() -> bool:
    setting = os.environ.get("SKLEARN_BNN_INTERSPHINX", "auto")
    if setting in ("0", "1"):
        return setting == "1"
    try:
        socket.getaddrinfo("docs.python.org", 443)
    except OSError:
        return False
    return True


intersphinx_mapping = _INVENTORIES if _online() else {}

# --------------------------------------------------------------------------------- output
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-bnn {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_static_path: list[str] = []

# matplotlib runs headless inside sphinx-gallery
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="Matplotlib is currently using agg, which is a non-GUI backend",
)

"""Gallery examples run with warnings as errors.

sphinx-gallery runs every example in the build's own process and shows what it prints,
warnings included, on the rendered page; a warning does not fail the build.  So a
``FitFailedWarning`` (a grid candidate that raised), a ``ConvergenceWarning`` or a
``RuntimeWarning`` from a ``nan`` would be published instead of noticed.  ``reset_warnings``
is a sphinx-gallery ``reset_modules`` hook (``docs/conf.py``): before each example it turns
every warning into an exception, so the example fails and the build with it; after the
example it puts the build's own filters back.

The few warnings ignored are not about the example's results: matplotlib's note that the
headless Agg backend cannot show a window (``plt.show()`` in an example).
"""

from __future__ import annotations

import warnings

_SAVED: list = []


def reset_warnings(gallery_conf, fname, when):
    """Warnings are errors while an example runs (``when="before"``); restored after."""
    if when == "before":
        if not _SAVED:
            _SAVED.append(list(warnings.filters))
        warnings.simplefilter("error")
        warnings.filterwarnings(
            "ignore", category=UserWarning, message=".*non-interactive, and thus cannot be shown"
        )
        warnings.filterwarnings(
            "ignore", category=UserWarning, message="Matplotlib is currently using agg"
        )
    elif _SAVED:
        warnings.filters[:] = _SAVED.pop()
        warnings._filters_mutated()

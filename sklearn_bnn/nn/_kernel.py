"""Moved to :mod:`sklearn_bnn.deploy._kernel` (torch-free).

This name stays an alias of that module, so code and pickles naming
``sklearn_bnn.nn._kernel`` see the same objects and module state.
"""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("sklearn_bnn.deploy._kernel")

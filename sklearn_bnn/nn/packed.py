"""Moved to :mod:`sklearn_bnn.deploy.packed` (torch-free).

This name stays an alias of that module, so code and pickles naming
``sklearn_bnn.nn.packed`` see the same objects and module state.
"""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("sklearn_bnn.deploy.packed")

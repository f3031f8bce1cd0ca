"""Moved to :mod:`sklearn_bnn.deploy._kernel` (torch-free); kept so that code and pickles
naming ``sklearn_bnn.nn._kernel`` keep working."""

from ..deploy._kernel import *  # noqa: F403
from ..deploy._kernel import __all__  # noqa: F401

"""Moved to :mod:`sklearn_bnn.deploy.packed` (torch-free); kept so that code and pickles
naming ``sklearn_bnn.nn.packed`` keep working."""

from ..deploy.packed import *  # noqa: F403
from ..deploy.packed import __all__  # noqa: F401

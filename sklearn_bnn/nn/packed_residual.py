"""Moved to :mod:`sklearn_bnn.deploy.packed_residual` (torch-free); kept so that code and pickles
naming ``sklearn_bnn.nn.packed_residual`` keep working."""

from ..deploy.packed_residual import *  # noqa: F403
from ..deploy.packed_residual import __all__  # noqa: F401

"""Moved to :mod:`sklearn_bnn.deploy.c_export` (torch-free); kept so that code and pickles
naming ``sklearn_bnn.nn.c_export`` keep working."""

from ..deploy.c_export import *  # noqa: F403
from ..deploy.c_export import __all__  # noqa: F401

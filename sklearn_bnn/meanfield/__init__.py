r"""Mean-field solver for binary networks at initialisation (numpy and scipy only).

Signal propagation of [SGL20]_ for the forward passes of :mod:`sklearn_bnn.nn`: length
(q), correlation (c) and slope (chi) maps per surrogate and neuron noise
(:mod:`.maps`), fixed points, depth scales and the critical initialisation
(:mod:`.critical`), Gauss-Hermite expectations (:mod:`.quadrature`) and plots
(:mod:`.plot`, matplotlib imported lazily).  This package never imports torch.

References
----------
.. [SGL20] G. Stamatescu, F. Gerace, C. Lucibello, I. Fuss, L. White. Critical
   initialisation in continuous approximations of binary neural networks. ICLR 2020,
   arXiv:1902.00177.
"""

from . import residual  # noqa: F401  (the residual 1-bit family: sklearn_bnn.meanfield.residual)
from .critical import CriticalInit, FixedPoint, critical_init, fixed_point, phase_diagram
from .maps import NOISE_NAMES, SURROGATES, Propagation, propagate

__all__ = [
    "NOISE_NAMES",
    "SURROGATES",
    "CriticalInit",
    "FixedPoint",
    "Propagation",
    "critical_init",
    "fixed_point",
    "phase_diagram",
    "propagate",
]

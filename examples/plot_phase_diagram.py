"""
=====================================================
Phase diagrams of binary networks at initialisation
=====================================================

The mean-field solver :mod:`sklearn_bnn.meanfield` computes, for each training surrogate and
neuron noise, the slope :math:`\\chi_1` of the correlation map at its fixed point and the
correlation depth scale :math:`\\xi_c = -1/\\ln \\chi_{c^*}` over the second moment of the
weight means :math:`\\sigma_m^2` and the bias variance :math:`\\sigma_b^2` (Stamatescu et al.,
ICLR 2020).

Deep signal propagation needs :math:`\\chi_1` near 1 (long :math:`\\xi_c`); networks train up to
about :math:`6\\,\\xi_c` layers [SGL20]_.

The last figure shows why a fixed-point picture alone misleads at finite depth for the
deterministic surrogate with sign neurons: with :math:`\\sigma_b^2 \\to 0` the field shrinks
geometrically while the correlation is carried along (a long transient), so
:func:`~sklearn_bnn.meanfield.critical_init` uses a depth-aware criterion there.
"""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sklearn_bnn.meanfield import critical_init  # noqa: E402
from sklearn_bnn.meanfield.plot import plot_phase_diagram, plot_propagation  # noqa: E402

# %%
# One row per surrogate: chi_1 (red above 1: chaotic, blue below: ordered; the black line is
# chi_1 = 1 where it exists) and log10 xi_c.
cases = [
    ("deterministic", "sign", None),
    ("deterministic", "gaussian", None),
    ("lrt", "gaussian", None),
    ("lrt_continuous", "gaussian", math.sqrt(2 / math.pi)),  # slope-1 erf neuron
    ("sampled", "gaussian", None),
]
sigma_m2 = np.linspace(0.05, 1.0, 20)
sigma_b2 = np.linspace(0.0, 0.2, 9)
fig, axes = plt.subplots(len(cases), 2, figsize=(9, 3.0 * len(cases)), constrained_layout=True)
for row, (surrogate, noise, scale) in zip(axes, cases):
    plot_phase_diagram(surrogate, noise, sigma_m2, sigma_b2, noise_scale=scale, axes=row)

# %%
# The open point, in numbers: q shrinks while c survives when sigma_b2 = 0 ...
plot_propagation("deterministic", "sign", (0.5, 0.9, 0.99), sigma_b2=0.0, depth=30)
# ... and with a small bias the collapse shows up as c -> 1.
plot_propagation("deterministic", "sign", (0.5, 0.9, 0.99), sigma_b2=1e-3, depth=30)

# %%
# What ``init="critical"`` picks, per depth.
for depth in (10, 20, 30):
    ci = critical_init("deterministic", "sign", depth=depth)
    print(f"depth {depth:2d}: {ci.message}")

r"""Gaussian expectations by Gauss-Hermite quadrature (numpy and scipy only).

The mean-field maps of [SGL20]_ are expectations of a neuron function over one Gaussian field,
:math:`E[f(u)]` with :math:`u \sim N(0, q)`, or over a pair of correlated fields,
:math:`E[f(u_a) g(u_b)]` with

.. math::
    u_a = \sqrt{q_a}\, z_1, \qquad
    u_b = \sqrt{q_b}\,\big(c z_1 + \sqrt{1 - c^2}\, z_2\big), \qquad z_1, z_2 \sim N(0, 1).

Both use the probabilists' Gauss-Hermite rule of :func:`scipy.special.roots_hermitenorm`
(weight :math:`e^{-z^2/2}`), normalised so that the weights sum to one.  With the default
``n_points=101`` the rule integrates smooth neuron functions (erf, tanh, the Gaussian-smoothed
hardtanh) to about 1e-10; a kink (hardtanh) or a jump (sign) converges only like
``1 / n_points``, which is why the maps use the closed forms of :mod:`.maps` for
erf-type and sign neurons and keep quadrature for the rest.

References
----------
.. [SGL20] G. Stamatescu, F. Gerace, C. Lucibello, I. Fuss, L. White. Critical
   initialisation in continuous approximations of binary neural networks. ICLR 2020,
   arXiv:1902.00177.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy.special import roots_hermitenorm

__all__ = ["gauss_hermite", "expect_1d", "expect_2d"]

#: Default number of Gauss-Hermite nodes per dimension.
N_POINTS = 101

ArrayFn = Callable[[np.ndarray], np.ndarray]


@lru_cache(maxsize=16)
def _rule(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = roots_hermitenorm(n_points)
    weights = weights / weights.sum()
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def gauss_hermite(n_points: int = N_POINTS) -> tuple[np.ndarray, np.ndarray]:
    r"""Nodes and weights for :math:`E[f(z)]`, :math:`z \sim N(0, 1)`: ``sum(w * f(z))``.

    Parameters
    ----------
    n_points : int, default=101
        Number of nodes (at least 2).

    Returns
    -------
    nodes, weights : ndarray of shape (n_points,)
        Read-only arrays; the weights sum to one.

    Examples
    --------
    >>> from sklearn_bnn.meanfield.quadrature import gauss_hermite
    >>> z, w = gauss_hermite(20)
    >>> round(float(w @ z**4), 10)   # E[z^4] = 3
    3.0
    """
    if not isinstance(n_points, int | np.integer) or n_points < 2:
        raise ValueError(f"n_points={n_points!r} must be an integer >= 2.")
    return _rule(int(n_points))


def expect_1d(f: ArrayFn, q: float, n_points: int = N_POINTS) -> float:
    r""":math:`E[f(u)]` for :math:`u \sim N(0, q)`.

    Parameters
    ----------
    f : callable
        Vectorised function of a numpy array.
    q : float
        Variance of the field (>= 0).
    n_points : int, default=101
        Gauss-Hermite nodes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bnn.meanfield.quadrature import expect_1d
    >>> round(expect_1d(np.square, 2.5), 10)
    2.5
    """
    if not q >= 0.0:
        raise ValueError(f"q={q!r}: the variance of the field must be >= 0.")
    z, w = gauss_hermite(n_points)
    return float(w @ f(np.sqrt(q) * z))


def expect_2d(
    f: ArrayFn,
    g: ArrayFn,
    q_a: float,
    q_b: float,
    c: float,
    n_points: int = N_POINTS,
) -> float:
    r""":math:`E[f(u_a) g(u_b)]` for zero-mean Gaussian fields of variances ``q_a``, ``q_b``
    and correlation ``c`` (tensor-product Gauss-Hermite rule).

    Examples
    --------
    >>> from sklearn_bnn.meanfield.quadrature import expect_2d
    >>> round(expect_2d(lambda u: u, lambda u: u, 2.0, 0.5, 0.3), 10)   # the covariance
    0.3
    """
    if not (q_a >= 0.0 and q_b >= 0.0):
        raise ValueError(f"q_a={q_a!r}, q_b={q_b!r}: field variances must be >= 0.")
    if not -1.0 <= c <= 1.0:
        raise ValueError(f"c={c!r}: a correlation must lie in [-1, 1].")
    z, w = gauss_hermite(n_points)
    z1, z2 = z[:, None], z[None, :]
    u_a = np.sqrt(q_a) * z1
    u_b = np.sqrt(q_b) * (c * z1 + np.sqrt(max(1.0 - c * c, 0.0)) * z2)
    return float(w @ (f(u_a) * g(u_b)) @ w)

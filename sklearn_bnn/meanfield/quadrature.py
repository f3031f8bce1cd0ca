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

__all__ = ["expect_1d", "expect_2d", "gauss_hermite", "hardtanh_expect_2d"]

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


@lru_cache(maxsize=8)
def _kink_tables(n_points: int):
    z, w = _rule(n_points)
    W = np.concatenate([[0.0], np.cumsum(w)])
    WZ = np.concatenate([[0.0], np.cumsum(w * z)])
    keep = w > 1e-25 * w.max()  # outer nodes that can change a sum at double precision
    return z, W, WZ, z[keep], w[keep]


def hardtanh_expect_2d(q_a, q_b, c, s: float, n_points: int):
    r"""The tensor Gauss-Hermite sums of :func:`expect_2d` for the hardtanh neuron, fast.

    Returns ``(E[hardtanh(u_a/s) hardtanh(u_b/s)], E[1{|u_a|<=s} 1{|u_b|<=s}] / s^2)`` as the
    ``n_points`` x ``n_points`` rule of :func:`expect_2d` computes them (same nodes, same
    weights, the same numbers up to rounding), but in :math:`O(n \log n)` instead of
    :math:`O(n^2)`: for each outer node the inner sum over a piecewise-linear function is
    read from prefix sums of ``w`` and ``w z`` between the two nodes where the argument
    crosses :math:`\pm s`.  ``q_a``, ``q_b``, ``c`` broadcast (arrays of any shape).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bnn.meanfield.quadrature import expect_2d, hardtanh_expect_2d
    >>> f = lambda u: np.clip(u, -1, 1)
    >>> fast = hardtanh_expect_2d(0.8, 0.8, 0.3, 1.0, 301)[0]
    >>> bool(abs(float(fast) - expect_2d(f, f, 0.8, 0.8, 0.3, 301)) < 1e-14)
    True
    """
    z, W, WZ, zo, wo = _kink_tables(int(n_points))
    q_a, q_b, c = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (q_a, q_b, c)))
    shape = q_a.shape
    sa = np.sqrt(q_a).reshape(-1, 1)
    sb = np.sqrt(q_b).reshape(-1, 1)
    cc = c.reshape(-1, 1)
    ua = sa * zo
    fa = np.clip(ua / s, -1.0, 1.0)
    ga = (np.abs(ua) <= s) / s
    beta = sb * (cc * zo)
    gamma = sb * np.sqrt(np.maximum(1.0 - cc * cc, 0.0))
    n = z.size
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = (-s - beta) / gamma
        hi = (s - beta) / gamma
    L = np.searchsorted(z, lo.ravel(), "left").reshape(lo.shape)
    R = np.searchsorted(z, hi.ravel(), "right").reshape(hi.shape)
    flat = np.broadcast_to(gamma <= 0.0, L.shape)
    if flat.any():  # |c| = 1 (or q_b = 0): the inner argument does not depend on z_j
        b = beta[flat]
        L[flat] = np.where(b > s, 0, np.where(b < -s, n, 0))
        R[flat] = np.where(b > s, 0, np.where(b < -s, n, n))
    WL, WR = W[L], W[R]
    slope_part = beta * (WR - WL) + np.where(flat, 0.0, gamma * (WZ[R] - WZ[L]))
    inner = (W[-1] - WR) - WL + slope_part / s
    inner_d = (WR - WL) / s
    C2 = (fa * inner) @ wo
    D = (ga * inner_d) @ wo
    return C2.reshape(shape), D.reshape(shape)

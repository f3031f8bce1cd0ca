r"""``propagate`` for many :math:`\sigma_m^2` at once (the search of :func:`.critical_init`).

:func:`log_sensitivity` returns :math:`\log\prod_l \chi^l`, the ``log_chi_product`` of
:func:`~sklearn_bnn.meanfield.propagate` for two inputs of equal length, for a whole vector
of :math:`\sigma_m^2` with numpy broadcasting: one pass through the layers instead of one
:func:`~sklearn_bnn.meanfield.propagate` call per value.  It computes the same numbers as
:func:`~sklearn_bnn.meanfield.propagate` (up to rounding, about 1e-13 relative per layer):

* erf-type and sign neurons: the same closed forms, vectorised;
* hardtanh (uniform noise, S2/S3): the same 301-node Gauss-Hermite sums, read from prefix
  sums (:func:`~.quadrature.hardtanh_expect_2d`);
* tanh (logistic noise, S2/S3): the 101-node rule in Mehler form,
  :math:`E[\phi(u_a)\phi(u_b)] = \sum_n a_n^2 c^n` with the normalised Hermite coefficients
  :math:`a_n` of :math:`\phi(\sqrt q z)` computed by the same 1-d rule (80 terms; agrees with
  the 2-d tensor rule to 1e-15 for :math:`q \le 1`, :math:`|c| \le 1`);
* Gaussian-smoothed hardtanh (S1, uniform noise): with :math:`\Sigma \ge 0.1` the smoothing
  and the field add up to one Gaussian of variance :math:`T = q + \Sigma + 10^{-4}`, so the
  maps are those of :math:`\operatorname{hardtanh}(x/s)`, :math:`x \sim N(0, T)`, at
  correlation :math:`\rho = k/T`, summed exactly from the closed-form Hermite coefficients
  of hardtanh (the 101-node rule on the smoothed neuron agrees with them to 1e-7 there);
  with :math:`\Sigma < 0.1` (first layer, :math:`\sigma_m^2 > 0.9`) the smoothed neuron is
  nearly kinked and the 101-node tensor rule of :func:`~sklearn_bnn.meanfield.propagate` is
  used as it is (its error there, up to a few 1e-2 at :math:`\Sigma = 10^{-3}`, is part of
  the numbers this module reproduces).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import ndtr

from .._constants import VARIANCE_EPS, erf_noise_std
from .maps import (
    _KINK_POINTS,
    SURROGATES,
    _npdf,
    _smoothed_hardtanh_mean,
    _smoothed_hardtanh_slope,
    effective_bias_variance,
)
from .quadrature import N_POINTS, gauss_hermite, hardtanh_expect_2d

_MEHLER_TERMS = 80
_SMOOTH_SIGMA_MIN = 0.1  # below: the smoothed hardtanh is integrated as propagate does
_HT_RHO_MAX = 0.95
_HT_TERMS_MAX = 1200


def _hermite_normalised(x: np.ndarray, n_terms: int) -> np.ndarray:
    """``He_n(x) / sqrt(n!)`` for n < n_terms, shape (n_terms,) + x.shape."""
    x = np.asarray(x, dtype=float)
    H = np.empty((n_terms,) + x.shape)
    H[0] = 1.0
    if n_terms > 1:
        H[1] = x
    for m in range(1, n_terms - 1):
        H[m + 1] = (x * H[m] - math.sqrt(m) * H[m - 1]) / math.sqrt(m + 1)
    return H


@lru_cache(maxsize=4)
def _mehler_basis(n_points: int, n_terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z, w = gauss_hermite(n_points)
    Hw = (_hermite_normalised(z, n_terms) * w).T  # (n_points, n_terms): a = f(z) @ Hw
    return z, w, Hw


@lru_cache(maxsize=32)
def _hardtanh_series(T: float, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of E[ht(x_a/s) ht(x_b/s)] and E[ht'(x_a) ht'(x_b)] in powers of rho,
    x ~ N(0, T) (closed-form Hermite coefficients of hardtanh and of its step derivative)."""
    beta = s / math.sqrt(T)
    alpha = 1.0 / beta
    h = _hermite_normalised(np.array(beta), _HT_TERMS_MAX + 1)  # h_m(beta)
    n = np.arange(_HT_TERMS_MAX)
    pdf = _npdf(beta)
    F = np.zeros(_HT_TERMS_MAX)
    D = np.zeros(_HT_TERMS_MAX)
    F[1] = (alpha * (2.0 * ndtr(beta) - 1.0)) ** 2
    odd = n[(n >= 3) & (n % 2 == 1)]
    F[odd] = (2.0 * alpha * pdf) ** 2 * h[odd - 2] ** 2 / (odd * (odd - 1.0))
    D[0] = ((2.0 * ndtr(beta) - 1.0) / s) ** 2
    even = n[(n >= 2) & (n % 2 == 0)]
    D[even] = (2.0 * pdf / s) ** 2 * h[even - 1] ** 2 / even
    return F, D


def _series(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    m = float(np.max(np.abs(x))) if x.size else 0.0
    n = _HT_TERMS_MAX if m >= _HT_RHO_MAX else min(
        _HT_TERMS_MAX, int(math.log(1e-18) / math.log(max(m, 1e-3))) + 20
    )
    return (x[:, None] ** np.arange(n)) @ coef[:n]


def _erf_moments(V, q, k):
    da = V + q
    with np.errstate(divide="ignore", invalid="ignore"):
        Q2 = np.where(da > 0, 2.0 / math.pi * np.arcsin(np.clip(q / da, -1.0, 1.0)), 0.0)
        C2 = np.where(da > 0, 2.0 / math.pi * np.arcsin(np.clip(k / da, -1.0, 1.0)), 0.0)
        det = da * da - k * k
        D = np.where(det > 1e-300, 2.0 / math.pi / np.sqrt(det), np.inf)
    return Q2, C2, D


def _tanh_moments(s, q, k):
    z, w, Hw = _mehler_basis(N_POINTS, _MEHLER_TERMS)
    sq = np.sqrt(q)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.clip(np.where(q > 0, k / q, 0.0), -1.0, 1.0)
    t = np.tanh(sq[:, None] * z / (2.0 * s))
    f, g = t, (1.0 - t * t) / (2.0 * s)
    Q2 = (f * f) @ w
    a, b = f @ Hw, g @ Hw
    P = c[:, None] ** np.arange(_MEHLER_TERMS)
    return Q2, np.sum(a * a * P, axis=1), np.sum(b * b * P, axis=1)


def _hardtanh_moments(s, q, k):
    z, w = gauss_hermite(_KINK_POINTS)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.clip(np.where(q > 0, k / q, 0.0), -1.0, 1.0)
    Q2 = np.clip(np.sqrt(q)[:, None] * z / s, -1.0, 1.0) ** 2 @ w
    C2, D = hardtanh_expect_2d(q, q, c, s, _KINK_POINTS)
    return Q2, C2, D


def _smoothed_hardtanh_quadrature(s, q, k, sig):
    """What propagate computes for S1 + uniform noise: 101-node rule on the smoothed neuron."""
    z, w = gauss_hermite(N_POINTS)
    keep = w > 1e-25 * w.max()  # the other nodes change no sum at double precision
    z, w = z[keep], w[keep]
    sd = np.sqrt(sig + VARIANCE_EPS)[:, None, None]
    sq = np.sqrt(q)[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.clip(np.where(q > 0, k / q, 0.0), -1.0, 1.0)[:, None, None]

    def phi(mu):
        return _smoothed_hardtanh_mean(mu, s, sd)

    def dphi(mu):
        return _smoothed_hardtanh_slope(mu, s, sd)

    z1, z2 = z[None, :, None], z[None, None, :]
    ua = sq * z1
    ub = sq * (c * z1 + np.sqrt(np.maximum(1.0 - c * c, 0.0)) * z2)
    pa = phi(ua)  # (B, n, 1)
    Q2 = (pa[:, :, 0] ** 2) @ w
    C2 = np.einsum("i,bij,j->b", w, pa * phi(ub), w)
    D = np.einsum("i,bij,j->b", w, dphi(ua) * dphi(ub), w)
    return Q2, C2, D


def _smoothed_hardtanh_moments(s, q, k, sig):
    Q2, C2, D = (np.empty_like(q) for _ in range(3))
    T = q + sig + VARIANCE_EPS
    series = (sig >= _SMOOTH_SIGMA_MIN) & (q / T < _HT_RHO_MAX) & (np.abs(k / T) < _HT_RHO_MAX)
    if (~series).any():
        i = ~series
        Q2[i], C2[i], D[i] = _smoothed_hardtanh_quadrature(s, q[i], k[i], sig[i])
    for Tu in np.unique(np.round(T[series], 12)):
        i = series & (np.round(T, 12) == Tu)
        Fc, Dc = _hardtanh_series(float(Tu), float(s))
        Q2[i] = _series(Fc, q[i] / T[i])
        C2[i] = _series(Fc, k[i] / T[i])
        D[i] = _series(Dc, k[i] / T[i])
    return Q2, C2, D


#: Models :func:`log_sensitivity` vectorises.
BATCHED = ("deterministic", "lrt", "lrt_continuous", "binary")


def _layer_moments(spec, noise, s, k2, q, k, sig):
    """``(E[phi_a^2], E[phi_a phi_b], E[phi'_a phi'_b])`` of one layer, vectorised."""
    if spec.ignores_noise:  # the 1-bit network: sign units
        return _erf_moments(0.0, q, k)
    if spec.smoothed and noise == "uniform":
        sig_k = (sig + VARIANCE_EPS) / k2 - VARIANCE_EPS
        return _smoothed_hardtanh_moments(s / math.sqrt(k2), q, k, sig_k)
    if spec.smoothed:
        s_eff = erf_noise_std(noise, s)
        return _erf_moments((sig + VARIANCE_EPS + s_eff * s_eff) / k2, q, k)
    if noise in ("sign", "gaussian"):
        return _erf_moments(erf_noise_std(noise, s) ** 2, q, k)
    if noise == "logistic":
        return _tanh_moments(s, q, k)
    return _hardtanh_moments(s, q, k)


def log_sensitivity(
    surrogate: str,
    noise: str,
    s: float,
    sigma_m2: np.ndarray,
    sigma_b2: float,
    depth: int,
    q0: float = 1.0,
    c0: float = 0.5,
    slope: float = 1.0,
) -> np.ndarray:
    """``propagate(surrogate, noise, m, sigma_b2, depth, q0, c0, s).log_chi_product`` for
    every ``m`` in ``sigma_m2`` (the surrogates of :data:`BATCHED`)."""
    if surrogate not in BATCHED:
        raise ValueError(
            f"log_sensitivity: surrogate={surrogate!r} is not supported. "
            f"Valid values: {', '.join(map(repr, BATCHED))}."
        )
    spec = SURROGATES[surrogate]
    sm2 = np.asarray(sigma_m2, dtype=float).ravel()
    sb2 = effective_bias_variance(surrogate, sm2, float(sigma_b2))
    a = np.ones_like(sm2) if spec.shared_weights else sm2  # covariance slope of the field
    Q = np.full(sm2.shape, float(q0))
    C = np.full(sm2.shape, float(c0) * float(q0))
    total = np.zeros(sm2.shape)
    prev = None
    k2 = float(slope) ** 2  # S1 neuron m(slope * h): noise scale s / slope, variance / slope^2
    for layer in range(depth + 1):
        first = layer == 0
        T = Q if (first or spec.real_units_variance) else 1.0
        sig = (1.0 - sm2) * Q if first else np.maximum(1.0 - sm2 * Q, 0.0)
        k = a * C + sb2
        if spec.smoothed:
            q = sm2 * Q + sb2
        elif spec.real_units_variance:
            q = Q + sb2
        else:
            q = T + sb2 + np.zeros_like(sm2)
        Q2, C2, D = _layer_moments(spec, noise, s, k2, q, k, sig)
        if spec.binary_units:
            Q2 = np.ones_like(sm2)
        if prev is not None:
            pq, pD = prev
            with np.errstate(invalid="ignore", divide="ignore"):
                chi = np.where(q * q > 0, a * np.sqrt(pq * pq) * pD / np.sqrt(q * q), np.nan)
                total += np.log(chi)
        if layer == depth:
            break
        prev = (q, D)
        Q, C = Q2, C2
    return total

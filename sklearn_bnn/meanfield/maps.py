r"""Mean-field maps of binary networks at initialisation [SGL20]_: q-map, c-map and slope chi.

Every map here describes *exactly* the networks of :mod:`sklearn_bnn.nn` at a random
initialisation: weight means :math:`M_{ij} = \pm\sigma_m` with random signs
(:func:`sklearn_bnn.init.two_point`), biases :math:`b_i \sim N(0, \sigma_b^2)`, the
:math:`1/\sqrt N` field convention, a real first-layer input, and the forward passes of
:mod:`sklearn_bnn.nn.surrogates`.  The solver itself is numpy/scipy only (no torch).

What is tracked
---------------
Write :math:`Q^{l} = \frac1N\sum_j (y^l_j)^2` and :math:`C^l = \frac1N\sum_j y^l_{a,j} y^l_{b,j}`
for what layer :math:`l` passes upward (:math:`y^0 = x^0`, the real input of length
:math:`q_0 = |x|^2/N_0` and correlation :math:`c_0`).  Layer :math:`l` has a field
(pre-activation) :math:`h^l`; ``propagate`` reports, per layer,

* ``q[l]`` :math:`= \frac1N\sum_i (h^l_i)^2`, the second moment of the field *as the network
  computes it*: :math:`\bar h` for ``"deterministic"`` (S1), the sampled field
  :math:`\bar h + \sqrt\Sigma\,\varepsilon` for ``"lrt"``/``"lrt_continuous"``, the field of the
  sampled weights for ``"sampled"`` and of :math:`\operatorname{sign}(M)` for ``"binary"``;
* ``c[l]``, the correlation of the fields of the two inputs;
* ``chi[l]`` :math:`= \partial c^{l+1}/\partial c^l`, the slope of the correlation map;
* ``grad_gain[l]`` :math:`= a\,E[\phi_l'(h)^2]`, the mean squared singular value of the
  Jacobian :math:`\partial h^{l+1}/\partial h^l` (how the squared norm of a back-propagated
  gradient changes per layer).  At a fixed point of the q-map, ``chi = grad_gain``; during a
  transient they differ by :math:`q^{l}/q^{l+1}`.

Per surrogate (:math:`T^{l-1} = Q^0 = q_0` for the first layer, 1 above it since hidden
units are :math:`\pm1`; :math:`a = \sigma_m^2` unless stated):

.. list-table::
   :header-rows: 1

   * - surrogate
     - field variance
     - field covariance
     - what goes up: :math:`y =`
   * - ``"deterministic"`` S1
     - :math:`\sigma_m^2 Q + \sigma_b^2`
     - :math:`\sigma_m^2 C + \sigma_b^2`
     - :math:`E[\phi(\bar h + \sqrt{\Sigma} z)]`, :math:`\Sigma = T - \sigma_m^2 Q`
   * - ``"lrt"`` S3
     - :math:`T + \sigma_b^2`
     - :math:`\sigma_m^2 C + \sigma_b^2`
     - :math:`\phi(h)`, noise mean of the neuron
   * - ``"lrt_continuous"`` S2
     - :math:`Q + \sigma_b^2`
     - :math:`\sigma_m^2 C + \sigma_b^2`
     - :math:`\phi(h)`, real
   * - ``"sampled"``
     - :math:`T + \sigma_b^2`
     - :math:`C + \sigma_b^2` (:math:`a=1`)
     - :math:`\operatorname{sign}(h - Z)`, so :math:`E[y_a y_b] = E[\phi_a\phi_b]`
   * - ``"binary"``
     - :math:`T + \sigma_b^2`
     - :math:`C + \sigma_b^2` (:math:`a=1`)
     - :math:`\operatorname{sign}(h)`

(The S1 variance :math:`\Sigma` has :math:`T = Q^0` and :math:`Q = Q^0` on the first layer,
i.e. :math:`\Sigma = (1 - \sigma_m^2) q_0`, exactly as
:meth:`~sklearn_bnn.nn.layers.StochasticBinaryLinear.moments`; the network adds ``1e-4`` to it,
and so does this module.)

Two points where the package's networks differ from the textbook mean-field formulas and
this module follows the networks: (i) ``"sampled"`` draws *one* weight sample shared by the whole
batch, so the two inputs see the same :math:`S`; with random-sign means, :math:`S` is then a
fair :math:`\pm1` matrix and the maps of the sampled network do **not** depend on
:math:`\sigma_m^2` at all (the textbook :math:`\sigma_m^2 E[\phi_a\phi_b]` covariance
holds for independent weight draws per example, which is ``"lrt"``).  (ii) ``"binary"``
ignores the neuron noise (it uses :math:`\operatorname{sign}` units).

Neurons (:math:`s` the noise scale).  In S1 the neuron is the Gaussian-smoothed mean
``noise.gaussian_mean(hbar, Sigma + 1e-4)``: :math:`\operatorname{erf}(h/\sqrt{2V})` with
:math:`V = \Sigma + 10^{-4} + s_\text{eff}^2`, :math:`s_\text{eff} = 0` (sign), :math:`s`
(gaussian), :math:`s\sqrt{8/\pi}` (logistic, the probit approximation the network uses), and the
closed-form smoothed hardtanh for uniform noise.  In S2/S3/sampled the neuron is the pointwise
noise mean :math:`\phi(h) = 2F(h) - 1`: sign, :math:`\operatorname{erf}(h/\sqrt2 s)`,
:math:`\tanh(h/2s)`, :math:`\operatorname{hardtanh}(h/s)`.  Expectations of erf-type and sign
neurons use the closed forms

.. math::
    E[\phi_a\phi_b] = \tfrac{2}{\pi}\arcsin\frac{k}{\sqrt{(V+q_a)(V+q_b)}}, \qquad
    E[\phi'_a\phi'_b] = \frac{2/\pi}{\sqrt{(V+q_a)(V+q_b) - k^2}}

(:math:`k` the covariance); the others use Gauss-Hermite quadrature
(:mod:`.quadrature`).

References
----------
.. [SGL20] G. Stamatescu, F. Gerace, C. Lucibello, I. Fuss, L. White. Critical
   initialisation in continuous approximations of binary neural networks. ICLR 2020,
   arXiv:1902.00177.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erf, ndtr

from .._constants import DEFAULT_NOISE_SCALE, NOISE_NAMES, VARIANCE_EPS, erf_noise_std
from .quadrature import expect_1d, expect_2d, hardtanh_expect_2d

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _npdf(z):
    return np.exp(-0.5 * z * z) / _SQRT_2PI


__all__ = [
    "NOISE_NAMES",
    "SURROGATES",
    "Neuron",
    "Propagation",
    "default_noise_scale",
    "layer_neuron",
    "propagate",
]

# NOISE_NAMES, the default scales, VARIANCE_EPS and the probit approximation of logistic
# noise are shared with the network: defined once in :mod:`sklearn_bnn._constants`.
_DEFAULT_SCALE = DEFAULT_NOISE_SCALE
_KINK_POINTS = 301  # Gauss-Hermite nodes for kinked (hardtanh) neurons


@dataclass(frozen=True)
class _Surrogate:
    smoothed: bool  # S1: neuron is the Gaussian-smoothed mean over Sigma
    shared_weights: bool  # covariance slope 1 (sampled, binary) instead of sigma_m2
    binary_units: bool  # units are +-1 upward (T = 1 above the first layer, Q' = 1)
    real_units_variance: bool  # S2: field variance Q + sb2 (real units)
    ignores_noise: bool = False  # the 1-bit network: sign units whatever the noise
    folds_bias: bool = False  # biases enter as thresholds b / mean|M| (the 1-bit network)
    critical_by: str | None = None  # the model critical_init judges it by (None: itself)


#: Surrogates the maps describe (S1, S3, S2, the sampled SBN, the 1-bit network).
SURROGATES: dict[str, _Surrogate] = {
    "deterministic": _Surrogate(True, False, False, False),
    "lrt": _Surrogate(False, False, False, False),
    "lrt_continuous": _Surrogate(False, False, False, True),
    "sampled": _Surrogate(False, True, True, False, critical_by="lrt"),
    "binary": _Surrogate(False, True, True, False, ignores_noise=True, folds_bias=True),
}


def default_noise_scale(noise: str) -> float:
    """Default scale of a noise model (as :mod:`sklearn_bnn.nn.noise`): 0 for sign, else 1.

    Examples
    --------
    >>> from sklearn_bnn.meanfield.maps import default_noise_scale
    >>> default_noise_scale("sign"), default_noise_scale("logistic")
    (0.0, 1.0)
    """
    _check_noise(noise)
    return _DEFAULT_SCALE[noise]


def _check_noise(noise: str) -> None:
    if noise not in NOISE_NAMES:
        valid = ", ".join(map(repr, NOISE_NAMES))
        raise ValueError(f"noise={noise!r} is not valid. Valid values: {valid}.")


def _check_surrogate(surrogate: str) -> _Surrogate:
    if surrogate not in SURROGATES:
        raise ValueError(
            f"surrogate={surrogate!r} is not valid. Valid values: "
            f"{', '.join(map(repr, SURROGATES))}."
        )
    return SURROGATES[surrogate]


@dataclass(frozen=True)
class Neuron:
    r"""What a layer applies to its field, for the mean-field maps.

    ``erf_var`` is :math:`V` when :math:`\phi(h) = \operatorname{erf}(h/\sqrt{2V})` exactly
    (:math:`V = 0`: :math:`\operatorname{sign}`); closed forms are then used.  Otherwise
    ``phi`` and ``dphi`` are integrated by Gauss-Hermite quadrature with ``n_points`` nodes.
    ``hardtanh_scale`` is :math:`s` when :math:`\phi(h) = \operatorname{hardtanh}(h/s)`: the
    same Gauss-Hermite sums are then read from prefix sums
    (:func:`~sklearn_bnn.meanfield.quadrature.hardtanh_expect_2d`, identical numbers, much faster).

    Examples
    --------
    The sign neuron, :math:`V = 0`, at the field variance 1 and covariance 0.5:
    :math:`E[\phi_a\phi_b] = \tfrac{2}{\pi}\arcsin 0.5 = 1/3`.

    >>> import numpy as np
    >>> from sklearn_bnn.meanfield.maps import Neuron
    >>> sign = Neuron(np.sign, np.zeros_like, erf_var=0.0)
    >>> np.round(sign.second_moments(1.0, 1.0, 0.5)[:3], 4)
    array([1.    , 1.    , 0.3333])
    """

    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    erf_var: float | None = None
    n_points: int = 101
    hardtanh_scale: float | None = None

    def second_moments(self, q_a: float, q_b: float, k: float) -> tuple[float, float, float, float]:
        """``E[phi_a^2], E[phi_b^2], E[phi_a phi_b], E[phi'_a phi'_b]`` for field variances
        ``q_a, q_b`` and covariance ``k``."""
        if self.erf_var is not None:
            v = self.erf_var
            da, db = v + q_a, v + q_b
            def cross(kk: float) -> float:
                if da <= 0.0 or db <= 0.0:
                    return 0.0
                return 2.0 / math.pi * math.asin(float(np.clip(kk / math.sqrt(da * db), -1.0, 1.0)))
            det = da * db - k * k
            d = 2.0 / math.pi / math.sqrt(det) if det > 1e-300 else math.inf
            return cross(q_a), cross(q_b), cross(k), d
        sa, sb = math.sqrt(q_a), math.sqrt(q_b)
        c = k / (sa * sb) if sa * sb > 0 else 0.0
        c = float(np.clip(c, -1.0, 1.0))
        n = self.n_points

        def sq(u):
            return self.phi(u) ** 2

        e_a = expect_1d(sq, q_a, n)
        if self.hardtanh_scale is not None:
            C2, D = hardtanh_expect_2d(q_a, q_b, c, self.hardtanh_scale, n)
            return e_a, e_a if q_b == q_a else expect_1d(sq, q_b, n), float(C2), float(D)
        return (
            e_a,
            e_a if q_b == q_a else expect_1d(sq, q_b, n),
            expect_2d(self.phi, self.phi, q_a, q_b, c, n),
            expect_2d(self.dphi, self.dphi, q_a, q_b, c, n),
        )

    def grad_moment(self, q: float) -> float:
        r""":math:`E[\phi'(h)^2]`, :math:`h \sim N(0, q)`."""
        if self.erf_var is not None:
            return self.second_moments(q, q, q)[3]
        return expect_1d(lambda h: self.dphi(h) ** 2, q, self.n_points)


def _smoothed_hardtanh_mean(mu, s, sd):
    r""":math:`E[\operatorname{hardtanh}((\mu + sd\,z)/s)]`, :math:`z \sim N(0, 1)` (broadcasts)."""
    a_hi, a_lo = (s - mu) / sd, (-s - mu) / sd
    c_hi, c_lo = ndtr(a_hi), ndtr(a_lo)
    return 1.0 - c_hi - c_lo + (mu * (c_hi - c_lo) + sd * (_npdf(a_lo) - _npdf(a_hi))) / s


def _smoothed_hardtanh_slope(mu, s, sd):
    r"""Derivative of :func:`_smoothed_hardtanh_mean` in :math:`\mu` (broadcasts)."""
    return (ndtr((s - mu) / sd) - ndtr((-s - mu) / sd)) / s


def _smoothed_hardtanh(s: float, var: float) -> Neuron:
    sd = math.sqrt(var)
    return Neuron(lambda mu: _smoothed_hardtanh_mean(mu, s, sd),
                  lambda mu: _smoothed_hardtanh_slope(mu, s, sd))


def _pointwise(noise: str, s: float) -> Neuron:
    if noise == "sign":
        return Neuron(np.sign, np.zeros_like, erf_var=0.0)
    if noise == "gaussian":
        return Neuron(lambda h: erf(h / (math.sqrt(2.0) * s)), None, erf_var=s * s)  # type: ignore[arg-type]
    if noise == "logistic":
        return Neuron(
            lambda h: np.tanh(h / (2.0 * s)),
            lambda h: (1.0 - np.tanh(h / (2.0 * s)) ** 2) / (2.0 * s),
        )
    return Neuron(  # uniform on [-s, s]: hardtanh(h / s)
        lambda h: np.clip(h / s, -1.0, 1.0),
        lambda h: (np.abs(h) <= s).astype(float) / s,
        n_points=_KINK_POINTS,
        hardtanh_scale=s,
    )


def layer_neuron(
    surrogate: str, noise: str, noise_scale: float, sigma: float = 0.0, slope: float = 1.0
) -> Neuron:
    r"""The neuron a layer of ``surrogate`` applies to its field.

    ``sigma`` is the S1 field variance :math:`\Sigma` (ignored by the other surrogates).
    ``slope`` :math:`k` is the S1 neuron's slope (:func:`sklearn_bnn.nn.surrogates.neuron_mean`):
    the neuron is :math:`m(k h)` with :math:`m` the Gaussian-smoothed mean, which is the
    smoothed mean of the same noise with scale :math:`s/k` over variance
    :math:`(\Sigma + 10^{-4})/k^2`.

    Examples
    --------
    >>> from sklearn_bnn.meanfield.maps import layer_neuron
    >>> layer_neuron("deterministic", "gaussian", 1.0, sigma=0.5).erf_var
    1.5001
    """
    spec = _check_surrogate(surrogate)
    _check_noise(noise)
    if spec.ignores_noise:
        return _pointwise("sign", 0.0)
    if spec.smoothed:
        var = (sigma + VARIANCE_EPS) / (slope * slope)
        if noise == "uniform":
            return _smoothed_hardtanh(noise_scale / slope, var)
        s_eff = erf_noise_std(noise, noise_scale) / slope
        return Neuron(None, None, erf_var=var + s_eff * s_eff)  # type: ignore[arg-type]
    if noise == "sign" and spec.real_units_variance:
        raise ValueError(
            "surrogate='lrt_continuous' needs a continuous neuron; noise='sign' is not valid "
            "with it. Valid noises: 'gaussian', 'logistic', 'uniform'."
        )
    return _pointwise(noise, noise_scale)


@dataclass(frozen=True)
class Propagation:
    """Layer-by-layer mean-field quantities (arrays of length ``depth``, index 0 = layer 1).

    Attributes
    ----------
    q : ndarray
        Second moment of each layer's field, :math:`\\frac1N\\sum_i h_i^2` (input a).
    c : ndarray
        Correlation of the fields of the two inputs.
    chi : ndarray
        Slope :math:`\\partial c^{l+1} / \\partial c^l` of the correlation map at layer l.
    grad_gain : ndarray
        :math:`a E[\\phi'(h^l)^2]`: per-layer gain of a back-propagated squared gradient norm.
    q_act : ndarray
        Second moment :math:`Q^l` of what layer l passes upward.

    Examples
    --------
    >>> from sklearn_bnn.meanfield import propagate
    >>> p = propagate("binary", "sign", 0.5, 0.0, depth=3, c0=0.5)
    >>> p.q_act                  # hidden units are +-1
    array([1., 1., 1.])
    >>> p.chi.round(4)           # slope of the c-map at each layer's correlation
    array([0.7351, 0.6752, 0.6521])
    >>> round(p.log_chi_product, 4)
    -1.128
    """

    q: np.ndarray
    c: np.ndarray
    chi: np.ndarray
    grad_gain: np.ndarray
    q_act: np.ndarray

    @property
    def log_chi_product(self) -> float:
        """:math:`\\log \\prod_l \\chi^l = \\log \\partial c^L/\\partial c^0`-type sensitivity."""
        with np.errstate(divide="ignore"):
            return float(np.sum(np.log(self.chi)))

    @property
    def log_grad_gain(self) -> float:
        """:math:`\\log \\prod_{l<L} a E[\\phi'^2]`: squared-gradient gain from the top binary
        layer down to the first one."""
        with np.errstate(divide="ignore"):
            return float(np.sum(np.log(self.grad_gain[:-1])))


def _validate(sigma_m2: float, sigma_b2: float) -> None:
    if not (0.0 <= sigma_m2 <= 1.0):
        raise ValueError(
            f"sigma_m2={sigma_m2!r} must lie in [0, 1]: it is the second moment of weight "
            "means in [-1, 1]."
        )
    if not (sigma_b2 >= 0.0 and math.isfinite(sigma_b2)):
        raise ValueError(f"sigma_b2={sigma_b2!r} must be a finite number >= 0.")


def _check_slope(surrogate: str, slope: float) -> float:
    slope = float(slope)
    if not (slope > 0.0 and math.isfinite(slope)):
        raise ValueError(f"slope={slope!r} must be a finite number > 0.")
    if slope != 1.0 and not SURROGATES[surrogate].smoothed:
        raise ValueError(
            f"slope={slope!r} applies to surrogate='deterministic' only (the slope of the S1 "
            f"neuron); surrogate={surrogate!r} takes slope=1.0."
        )
    return slope


def _resolve_scale(noise: str, noise_scale: float | None) -> float:
    _check_noise(noise)
    s = _DEFAULT_SCALE[noise] if noise_scale is None else float(noise_scale)
    if noise != "sign" and not s > 0.0:
        raise ValueError(f"noise_scale={noise_scale!r} must be > 0 for noise={noise!r}.")
    return s


def effective_bias_variance(surrogate: str, sigma_m2, sigma_b2):
    r"""The bias variance the forward pass of ``surrogate`` sees.

    The 1-bit network (``"binary"``) folds each bias into its threshold as
    :math:`b_i / \operatorname{mean}_j |M_{ij}|`
    (:meth:`~sklearn_bnn.nn.layers.StochasticBinaryLinear.binary_parameters`); with means
    :math:`\pm\sigma_m` that is :math:`b_i/\sigma_m`, variance
    :math:`\sigma_b^2/\sigma_m^2`.  The other passes use the biases as they are.
    Broadcasts over arrays of ``sigma_m2``.

    Examples
    --------
    >>> from sklearn_bnn.meanfield.maps import effective_bias_variance
    >>> float(effective_bias_variance("binary", 0.5, 0.01))
    0.02
    >>> effective_bias_variance("lrt", 0.5, 0.01)
    0.01
    """
    if not _check_surrogate(surrogate).folds_bias:
        return sigma_b2
    return sigma_b2 / np.maximum(sigma_m2, 1e-12)


def _field(spec: _Surrogate, sigma_m2, sigma_b2, Q_a, Q_b, C, first):
    """Field variances (q_a, q_b), covariance k and S1 variances (Sigma_a, Sigma_b)."""
    real_inputs = first or (not spec.binary_units and spec.real_units_variance)
    t_a, t_b = (Q_a, Q_b) if real_inputs else (1.0, 1.0)
    if first:
        sig_a, sig_b = (1.0 - sigma_m2) * Q_a, (1.0 - sigma_m2) * Q_b
    else:
        sig_a, sig_b = max(1.0 - sigma_m2 * Q_a, 0.0), max(1.0 - sigma_m2 * Q_b, 0.0)
    a = 1.0 if spec.shared_weights else sigma_m2
    k = a * C + sigma_b2
    if spec.smoothed:
        return sigma_m2 * Q_a + sigma_b2, sigma_m2 * Q_b + sigma_b2, k, sig_a, sig_b
    if spec.real_units_variance:
        return Q_a + sigma_b2, Q_b + sigma_b2, k, 0.0, 0.0
    return t_a + sigma_b2, t_b + sigma_b2, k, 0.0, 0.0


def _layer(spec, surrogate, noise, s, sigma_m2, sigma_b2, Q_a, Q_b, C, first, slope=1.0):
    q_a, q_b, k, sig_a, sig_b = _field(spec, sigma_m2, sigma_b2, Q_a, Q_b, C, first)
    na = layer_neuron(surrogate, noise, s, sig_a, slope)
    nb = na if sig_b == sig_a else layer_neuron(surrogate, noise, s, sig_b, slope)
    if na is nb:
        Qa2, Qb2, C2, D = na.second_moments(q_a, q_b, k)
        g = na.grad_moment(q_a)
    else:  # unequal input lengths in S1: different smoothing per input (rare; quadrature)
        fa = na.phi if na.erf_var is None else (lambda h, v=na.erf_var: erf(h / math.sqrt(2 * v)))
        fb = nb.phi if nb.erf_var is None else (lambda h, v=nb.erf_var: erf(h / math.sqrt(2 * v)))
        c = float(np.clip(k / math.sqrt(q_a * q_b), -1, 1)) if q_a * q_b > 0 else 0.0
        Qa2 = na.second_moments(q_a, q_a, q_a)[0]
        Qb2 = nb.second_moments(q_b, q_b, q_b)[0]
        C2 = expect_2d(fa, fb, q_a, q_b, c)
        D = math.sqrt(na.grad_moment(q_a) * nb.grad_moment(q_b))  # slope used only for c ~ 1
        g = na.grad_moment(q_a)
    if spec.binary_units:
        Qa2 = Qb2 = 1.0
    a = 1.0 if spec.shared_weights else sigma_m2
    return q_a, q_b, k, Qa2, Qb2, C2, D, a * g, a


def propagate(
    surrogate: str,
    noise: str,
    sigma_m2: float,
    sigma_b2: float,
    depth: int,
    q0: float = 1.0,
    c0: float = 0.5,
    noise_scale: float | None = None,
    slope: float = 1.0,
) -> Propagation:
    r"""Propagate length, correlation and slopes through ``depth`` binary layers.

    Two inputs of equal length :math:`q_0 = |x|^2 / N_0` and correlation :math:`c_0` enter a
    network initialised with weight means :math:`\pm\sqrt{\sigma_m^2}` and biases
    :math:`N(0, \sigma_b^2)`; the mean-field (width :math:`\to\infty`) maps of [SGL20]_ for the
    package's forward pass ``surrogate`` give per layer the quantities of :class:`Propagation`
    (see the module docstring for their exact definition).

    Parameters
    ----------
    surrogate : {"deterministic", "lrt", "lrt_continuous", "sampled", "binary"}
        Forward pass: S1, S3 (LRT, binary neurons), S2 (LRT, continuous neurons), one sample
        of the SBN (weights shared by the batch), the 1-bit network.
    noise : {"sign", "gaussian", "logistic", "uniform"}
        Neuron noise.
    sigma_m2 : float in [0, 1]
        Second moment of the weight means.
    sigma_b2 : float >= 0, or array of shape (depth,)
        Bias variance, or one per layer (e.g. the realised :math:`\frac1N\sum_i b_i^2` of a
        finite network).
    depth : int >= 1
        Number of binary layers.
    q0 : float, default=1.0
        Input length :math:`|x|^2/N_0` (1 for standardised features).
    c0 : float in [-1, 1], default=0.5
        Input correlation.
    noise_scale : float, optional
        Noise scale ``s``; default as :mod:`sklearn_bnn.nn.noise` (1, or 0 for sign).
    slope : float > 0, default=1.0
        Slope of the S1 neuron (``"deterministic"`` only; see :func:`layer_neuron`).

    Returns
    -------
    Propagation
        Arrays ``q``, ``c``, ``chi``, ``grad_gain``, ``q_act`` of length ``depth``.

    Examples
    --------
    >>> from sklearn_bnn.meanfield import propagate
    >>> p = propagate("binary", "sign", 0.5, 0.0, depth=3, c0=0.5)
    >>> p.c.round(4)          # first layer keeps c0; then c' = (2/pi) arcsin c
    array([0.5   , 0.3333, 0.2163])
    >>> p = propagate("deterministic", "sign", 0.9, 0.0, depth=30)
    >>> round(float(p.c[-1]), 3), float(p.q[-1]) < 1e-6   # c survives, q collapses (open point)
    (0.375, True)
    """
    spec = _check_surrogate(surrogate)
    s = _resolve_scale(noise, noise_scale)
    slope = _check_slope(surrogate, slope)
    if not (isinstance(depth, int | np.integer) and depth >= 1):
        raise ValueError(f"depth={depth!r} must be an integer >= 1.")
    sb2 = np.broadcast_to(np.asarray(sigma_b2, dtype=float), (depth,)) if np.ndim(sigma_b2) else (
        np.full(depth, float(sigma_b2))
    )
    if np.ndim(sigma_b2) and np.shape(sigma_b2) != (depth,):
        raise ValueError(
            f"sigma_b2 has shape {np.shape(sigma_b2)}; give a float or one value per layer, "
            f"shape ({depth},)."
        )
    for v in sb2:
        _validate(sigma_m2, float(v))
    sb2 = effective_bias_variance(surrogate, sigma_m2, sb2)
    if not q0 > 0.0:
        raise ValueError(f"q0={q0!r} must be > 0.")
    if not -1.0 <= c0 <= 1.0:
        raise ValueError(f"c0={c0!r} must lie in [-1, 1].")
    q = np.empty(depth)
    c = np.empty(depth)
    chi = np.empty(depth)
    gain = np.empty(depth)
    q_act = np.empty(depth)
    Q_a = Q_b = float(q0)
    C = float(c0) * float(q0)
    prev = None  # (q_a, q_b, D, a) of the layer below, to finish its chi
    for layer in range(depth + 1):
        q_a, q_b, k, Qa2, Qb2, C2, D, g, a = _layer(
            spec, surrogate, noise, s, sigma_m2, float(sb2[min(layer, depth - 1)]), Q_a, Q_b, C,
            layer == 0, slope,
        )
        if prev is not None:
            pq_a, pq_b, pD, pa = prev
            with np.errstate(invalid="ignore"):
                num = pa * math.sqrt(pq_a * pq_b) * pD
            chi[layer - 1] = num / math.sqrt(q_a * q_b) if q_a * q_b > 0 else math.nan
        if layer == depth:
            break
        q[layer] = q_a
        c[layer] = k / math.sqrt(q_a * q_b) if q_a * q_b > 0 else math.nan
        gain[layer] = g
        q_act[layer] = Qa2
        prev = (q_a, q_b, D, a)
        Q_a, Q_b, C = Qa2, Qb2, C2
    return Propagation(q=q, c=c, chi=chi, grad_gain=gain, q_act=q_act)

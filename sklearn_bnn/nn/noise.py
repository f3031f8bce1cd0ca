r"""Neuron noise models of a stochastic binary network.

A stochastic binary neuron with pre-activation (field) :math:`a` outputs

.. math::  x = \operatorname{sign}(a - Z), \qquad Z \sim F \text{ i.i.d.},

so that :math:`P(x = +1 \mid a) = F(a)` and the neuron mean is
:math:`\phi(a) = E[x \mid a] = 2F(a) - 1` [SY21]_.  Each noise model is one small object
that gives, side by side,

* ``cdf(a)``: :math:`F(a)`;
* ``phi(a)``: the neuron mean :math:`2F(a) - 1`, which is also the matched
  straight-through proxy of [SY21]_ (its derivative ``dphi`` is the backward factor);
* ``dphi(a)``: :math:`2F'(a)`;
* ``sample(a, generator)``: a draw of :math:`\operatorname{sign}(a - Z)`;
* ``gaussian_mean(mu, var)``: :math:`E[\phi(h)]` for :math:`h \sim N(\mu, \mathrm{var})`,
  the neuron mean after integrating a Gaussian field, which is what the deterministic
  surrogate S1 of [SGL20]_ propagates.

.. list-table::
   :header-rows: 1

   * - noise ``Z``
     - :math:`\phi(a) = 2F(a)-1`
     - :math:`E[\phi(h)],\ h\sim N(\mu,v)`
   * - none (``"sign"``)
     - :math:`\operatorname{sign}(a)`
     - :math:`\operatorname{erf}(\mu/\sqrt{2v})`
   * - :math:`N(0, s^2)` (``"gaussian"``)
     - :math:`\operatorname{erf}(a/\sqrt2 s)`
     - :math:`\operatorname{erf}(\mu/\sqrt{2(v+s^2)})`
   * - logistic, scale :math:`s` (``"logistic"``)
     - :math:`\tanh(a/2s)`
     - probit approximation, see :class:`LogisticNoise`
   * - uniform on :math:`[-s, s]` (``"uniform"``)
     - :math:`\operatorname{hardtanh}(a/s)`
     - closed form, see :class:`UniformNoise`

References
----------
.. [SGL20] G. Stamatescu, F. Gerace, C. Lucibello, I. Fuss, L. White. Critical
   initialisation in continuous approximations of binary neural networks. ICLR 2020,
   arXiv:1902.00177.
.. [SY21] A. Shekhovtsov, V. Yanush. Reintroducing straight-through estimators as
   principled methods for stochastic binary networks. GCPR 2021, arXiv:2006.06880.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._constants import DEFAULT_NOISE_SCALE, NOISE_NAMES, erf_noise_std
from .._registry import Registry

__all__ = [
    "NOISES",
    "GaussianNoise",
    "LogisticNoise",
    "NoiseModel",
    "SignNoise",
    "UniformNoise",
    "get_noise",
]

_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _std_normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(z / _SQRT2))


def _std_normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z) / _SQRT_2PI


def _pm1(condition: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Exactly +1 where ``condition`` holds and -1 elsewhere, as ``dtype``.

    ``torch.where(condition, 1.0, -1.0)`` gives the same values; this form is used because
    it is faster on the CPU (see docs/benchmarks.rst).
    """
    return condition.to(dtype).mul_(2.0).sub_(1.0)


#: 1 as a zero-dimensional tensor: it broadcasts to any shape, dtype and device unpromoted
_ONE = torch.ones(())


def _sign(x: torch.Tensor) -> torch.Tensor:
    """Sign with ``sign(0) = +1``, so that every output is exactly +-1.

    The values of ``_pm1(x >= 0, x.dtype)`` (for a NaN, the sign of its sign bit), without
    a gradient; computed as 1 with the sign of ``x + 0.0``, which turns -0.0 into +0.0:
    two elementwise passes and no bool temporary, cheaper on the CPU than the comparison
    (``tests/test_noise.py`` checks the values).
    """
    return torch.copysign(_ONE, x.detach() + 0.0)


@dataclass(frozen=True)
class NoiseModel:
    r"""Base class: a neuron noise distribution ``Z`` with scale ``scale``.

    A subclass sets ``name`` and implements ``cdf``, ``dphi`` and ``draw`` (and ``phi``
    where it has a faster form).  The mean under a Gaussian field is
    :math:`\operatorname{erf}(\mu/\sqrt{2(v + c)})` for every noise whose ``erf_variance``
    :math:`c` is not ``None`` (one definition, :func:`sklearn_bnn._constants.erf_noise_std`,
    shared with the mean-field solver); a noise of another form overrides ``gaussian_mean``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn import NoiseModel, get_noise
    >>> noise = get_noise("gaussian")
    >>> isinstance(noise, NoiseModel), noise.name, noise.scale
    (True, 'gaussian', 1.0)
    >>> a = torch.tensor([-1.0, 0.0, 1.0])
    >>> noise.phi(a)
    tensor([-0.6827,  0.0000,  0.6827])
    >>> noise.dphi(a)
    tensor([0.4839, 0.7979, 0.4839])
    >>> noise.sample(a, torch.Generator().manual_seed(0)).abs().unique()
    tensor([1.])
    """

    scale: float = 1.0
    name = "base"

    def cdf(self, a: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def phi(self, a: torch.Tensor) -> torch.Tensor:
        r"""Neuron mean :math:`2F(a) - 1` (the matched ST proxy)."""
        return 2.0 * self.cdf(a) - 1.0

    def dphi(self, a: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def draw(self, shape, generator=None, device=None, dtype=torch.float32):
        """Draw noise ``Z`` of the given shape."""
        raise NotImplementedError  # pragma: no cover - abstract

    def sample(self, a: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Sample the binary neuron :math:`\operatorname{sign}(a - Z)` (no gradient)."""
        z = self.draw(a.shape, generator=generator, device=a.device, dtype=a.dtype)
        return _sign(a - z)

    def gaussian_mean(self, mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        r""":math:`E[\phi(h)]` for :math:`h \sim N(\mu, \mathrm{var})`.

        :math:`\operatorname{erf}(\mu/\sqrt{2(\mathrm{var} + c)})`, :math:`c` the
        ``erf_variance`` (the sign neuron: :math:`c = 0`, the literal S1 map of [SGL20]_).
        """
        c = self.erf_variance
        if c is None:  # pragma: no cover - a noise of another form overrides this method
            raise NotImplementedError
        return torch.erf(mu / torch.sqrt(2.0 * (var + c)))

    @property
    def erf_variance(self) -> float | None:
        r"""The :math:`c` in ``gaussian_mean(mu, v)`` :math:`= \mathrm{erf}(\mu/\sqrt{2(v+c)})`.

        ``None`` when the mean under a Gaussian field has another form.  The deterministic
        surrogate uses it to run that map with a hand-written backward.
        """
        if self.name not in NOISE_NAMES:  # a user's noise model: no erf form known
            return None
        std = erf_noise_std(self.name, self.scale)
        return None if std is None else std * std

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale!r})"


@dataclass(frozen=True, repr=False)
class SignNoise(NoiseModel):
    r"""No neuron noise: the deterministic sign neuron, :math:`\phi = \operatorname{sign}`.

    Its derivative is a Dirac delta, so it has no straight-through proxy of its own
    (``dphi`` raises).  Under a Gaussian field the mean is
    :math:`\operatorname{erf}(\mu / \sqrt{2 v})`, the literal S1 map of [SGL20]_.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.noise import SignNoise
    >>> SignNoise().phi(torch.tensor([-0.5, 0.0, 2.0]))
    tensor([-1.,  1.,  1.])
    """

    scale: float = DEFAULT_NOISE_SCALE["sign"]
    name = "sign"

    def cdf(self, a):
        return (a >= 0).to(a.dtype)

    def phi(self, a):
        return _sign(a)

    def dphi(self, a):
        raise ValueError(
            "noise='sign' has no straight-through proxy: its derivative is a Dirac delta. "
            "Use noise='gaussian', 'logistic' or 'uniform' with a sampled estimator."
        )

    def draw(self, shape, generator=None, device=None, dtype=torch.float32):
        return torch.zeros(shape, device=device, dtype=dtype)



@dataclass(frozen=True, repr=False)
class GaussianNoise(NoiseModel):
    r"""Gaussian neuron noise :math:`Z \sim N(0, s^2)`, :math:`\phi(a) = \mathrm{erf}(a/\sqrt2 s)`.

    Backward factor :math:`2F'(a) = (2/s)\,\mathcal N(a/s)`; under a Gaussian field the mean
    is exact: :math:`\operatorname{erf}(\mu / \sqrt{2(v + s^2)})` [SGL20]_.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.noise import GaussianNoise
    >>> GaussianNoise(1.0).phi(torch.tensor([0.0]))
    tensor([0.])
    """

    scale: float = DEFAULT_NOISE_SCALE["gaussian"]
    name = "gaussian"

    def cdf(self, a):
        return _std_normal_cdf(a / self.scale)

    def phi(self, a):
        return torch.erf(a / (_SQRT2 * self.scale))

    def dphi(self, a):
        return 2.0 / self.scale * _std_normal_pdf(a / self.scale)

    def draw(self, shape, generator=None, device=None, dtype=torch.float32):
        return self.scale * torch.randn(shape, generator=generator, device=device, dtype=dtype)



@dataclass(frozen=True, repr=False)
class LogisticNoise(NoiseModel):
    r"""Logistic neuron noise of scale :math:`s`: :math:`\phi(a) = \tanh(a / 2s)`.

    Backward factor :math:`2F'(a) = (2/s)\,\sigma(a/s)(1-\sigma(a/s))` [SY21]_.  The mean
    under a Gaussian field has no closed form; it uses the probit approximation
    :math:`\sigma(x) \approx \Phi(\sqrt{\pi/8}\,x)`, i.e. Gaussian noise of standard
    deviation :math:`s\sqrt{8/\pi}` (absolute error on :math:`\phi` below 0.04, and smaller
    once averaged over a Gaussian field).

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.noise import LogisticNoise
    >>> LogisticNoise(0.5).phi(torch.tensor([1.0]))
    tensor([0.7616])
    """

    scale: float = DEFAULT_NOISE_SCALE["logistic"]
    name = "logistic"

    def cdf(self, a):
        return torch.sigmoid(a / self.scale)

    def phi(self, a):
        return torch.tanh(a / (2.0 * self.scale))

    def dphi(self, a):
        p = torch.sigmoid(a / self.scale)
        return 2.0 / self.scale * p * (1.0 - p)

    def draw(self, shape, generator=None, device=None, dtype=torch.float32):
        u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        u = u.clamp(torch.finfo(dtype).tiny, 1.0 - torch.finfo(dtype).eps)
        return self.scale * (torch.log(u) - torch.log1p(-u))



@dataclass(frozen=True, repr=False)
class UniformNoise(NoiseModel):
    r"""Uniform neuron noise on :math:`[-s, s]`: :math:`\phi(a) = \operatorname{hardtanh}(a/s)`.

    Backward factor :math:`(1/s)\,1[|a| \le s]`: the clipped-identity straight-through
    estimator, here with a stochastic forward [SY21]_.  Under a Gaussian field
    :math:`h \sim N(\mu, v)`, with :math:`\alpha_\pm = (\pm s - \mu)/\sqrt v`,

    .. math::
        E[\operatorname{hardtanh}(h/s)] = 1 - \Phi(\alpha_+) - \Phi(\alpha_-)
        + \tfrac{1}{s}\big[\mu(\Phi(\alpha_+) - \Phi(\alpha_-))
        + \sqrt v\,(\mathcal N(\alpha_-) - \mathcal N(\alpha_+))\big].

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.noise import UniformNoise
    >>> UniformNoise().phi(torch.tensor([-3.0, 0.5]))
    tensor([-1.0000,  0.5000])
    """

    scale: float = DEFAULT_NOISE_SCALE["uniform"]
    name = "uniform"

    def cdf(self, a):
        return ((a / self.scale + 1.0) / 2.0).clamp(0.0, 1.0)

    def phi(self, a):
        return torch.nn.functional.hardtanh(a / self.scale)

    def dphi(self, a):
        return (a.abs() <= self.scale).to(a.dtype) / self.scale

    def draw(self, shape, generator=None, device=None, dtype=torch.float32):
        u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return self.scale * (2.0 * u - 1.0)

    def gaussian_mean(self, mu, var):
        s = self.scale
        sd = torch.sqrt(var)
        a_hi = (s - mu) / sd
        a_lo = (-s - mu) / sd
        c_hi, c_lo = _std_normal_cdf(a_hi), _std_normal_cdf(a_lo)
        inside = mu * (c_hi - c_lo) + sd * (_std_normal_pdf(a_lo) - _std_normal_pdf(a_hi))
        return (1.0 - c_hi) - c_lo + inside / s


#: The ``noise`` option: names mapped to :class:`NoiseModel` classes (built with scale 1 by
#: :func:`get_noise`).
NOISES: Registry[type[NoiseModel]] = Registry(
    "noise",
    {
        "sign": SignNoise,
        "gaussian": GaussianNoise,
        "logistic": LogisticNoise,
        "uniform": UniformNoise,
    },
)


def get_noise(noise: str | NoiseModel) -> NoiseModel:
    """Resolve a noise name (default scale) or pass a :class:`NoiseModel` through.

    Examples
    --------
    >>> from sklearn_bnn.nn.noise import get_noise
    >>> get_noise("logistic")
    LogisticNoise(scale=1.0)
    """
    if isinstance(noise, NoiseModel):
        return noise
    return NOISES.lookup(noise)()

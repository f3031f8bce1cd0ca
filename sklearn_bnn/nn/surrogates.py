r"""Forward passes of a :class:`~sklearn_bnn.nn.network.BinaryNetwork`, one registry entry each.

A forward pass maps the real input to the real features fed to the output head.

* ``"deterministic"`` (S1 of [SGL20]_): propagate means analytically.  Each layer computes
  the CLT mean and variance of its field (:meth:`StochasticBinaryLinear.moments`) and the
  neuron mean integrated over that Gaussian field (``noise.gaussian_mean``).  No sampling;
  exact autograd, through the variance too.
* ``"binary"``: the deterministic 1-bit network, :math:`W = \operatorname{sign}(M)`,
  :math:`x = \operatorname{sign}(h)`.
* ``"sampled"``: one draw of the stochastic binary network itself (Bernoulli weights, one
  draw per call shared by the batch, and neurons :math:`\operatorname{sign}(h - Z)` drawn per
  example).  Used for Monte-Carlo prediction.
* ``"lrt"`` (S3 of [SGL20]_): local reparameterisation with binary neurons.  The field is
  sampled by reparameterisation, :math:`h = \bar h + \sqrt{\Sigma}\,\varepsilon`,
  :math:`\varepsilon \sim N(0, I)`, and the neuron *mean* :math:`\phi(h)` is passed up (the
  binary neuron itself is not sampled; its randomness enters the next layer through the
  :math:`-M^2\bar x^2` term of :math:`\Sigma`).  Plain autograd gives the gradient of the
  surrogate.  Sampling the neurons too needs a gradient estimator
  (:mod:`sklearn_bnn.nn.estimators`, ``"st"``).
* ``"lrt_tanh"`` (S2 of [SGL20]_): local reparameterisation with *continuous* neurons
  :math:`x = \tanh(h)`, the LR-net setting of binary weights only (Shayer et al. 2018).  The
  next layer sees real inputs, so its variance is :math:`\tfrac1N\sum_j (1 - M_{ij}^2)x_j^2`.
  The neuron noise is ignored.  A documented option of :class:`BinaryNetwork.forward`; it is
  not one of the classifier's ``surrogate`` values.

References
----------
.. [SGL20] G. Stamatescu et al. Critical initialisation in continuous approximations of
   binary neural networks. ICLR 2020, arXiv:1902.00177.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._registry import Registry
from .noise import _sign

#: Added to the field variance before the neuron mean is taken, so that
#: ``erf(h / sqrt(2 var))`` stays finite when :math:`\Sigma \to 0` (first layer with
#: :math:`M \to \pm 1` and noise ``"sign"``).  Fields are O(1) in the 1/sqrt(N) convention,
#: so 1e-4 changes no mean by more than about 1e-4 where the variance is O(1).
VARIANCE_EPS = 1e-4


def deterministic(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    """S1: deterministic mean propagation (see module docstring)."""
    mean, sq_mean = x, x * x
    for layer in net.layers:
        hbar, var = layer.moments(mean, sq_mean)
        mean, sq_mean = net.noise.gaussian_mean(hbar, var + VARIANCE_EPS), None
    return mean


def binary(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    """The 1-bit network: sign weights, sign units."""
    for layer in net.layers:
        x = _sign(layer.binary_forward(x))
    return x


def _field_noise(hbar: torch.Tensor, generator) -> torch.Tensor:
    return torch.randn(hbar.shape, generator=generator, device=hbar.device, dtype=hbar.dtype)


def lrt(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    r"""S3: :math:`h = \bar h + \sqrt{\Sigma + \epsilon}\,\varepsilon`, pass :math:`\phi(h)` up.

    Reparameterised, so autograd differentiates the sample w.r.t. the means, the biases and
    (through :math:`\Sigma`) the squared means.  ``VARIANCE_EPS`` keeps the square root
    differentiable where :math:`\Sigma = 0`.
    """
    mean, sq_mean = x, x * x
    for layer in net.layers:
        hbar, var = layer.moments(mean, sq_mean)
        h = hbar + torch.sqrt(var + VARIANCE_EPS) * _field_noise(hbar, generator)
        mean, sq_mean = net.noise.phi(h), None
    return mean


def lrt_tanh(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    r"""S2: :math:`h = \bar h + \sqrt{\Sigma + \epsilon}\,\varepsilon`, :math:`x = \tanh(h)` (real)."""
    for layer in net.layers:
        hbar, var = layer.moments(x, x * x)
        x = torch.tanh(hbar + torch.sqrt(var + VARIANCE_EPS) * _field_noise(hbar, generator))
    return x


def sampled(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    """One sample of the SBN: Bernoulli weights, noisy sign neurons (no gradient rule)."""
    for layer in net.layers:
        x = net.noise.sample(layer.sample_forward(x, generator), generator)
    return x


ForwardFn = Callable[..., torch.Tensor]

FORWARDS: Registry[ForwardFn] = Registry(
    "forward pass",
    {
        "deterministic": deterministic,
        "binary": binary,
        "sampled": sampled,
        "lrt": lrt,
        "lrt_tanh": lrt_tanh,
    },
)


#: Prediction networks: the ``inference`` option of the estimator, mapped to the forward
#: pass it runs and the number of passes averaged (``None``: ``n_mc_samples``).
INFERENCE: Registry[tuple[str, int | None]] = Registry(
    "inference",
    {"binary": ("binary", 1), "surrogate": ("deterministic", 1), "mc": ("sampled", None)},
)

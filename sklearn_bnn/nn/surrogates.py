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
* ``"lrt_continuous"`` (S2 of [SGL20]_): local reparameterisation with *continuous*
  neurons :math:`x = \phi(h)`, :math:`\phi = 2F - 1` the neuron noise's mean, real-valued
  (the LR-net setting of binary weights only, Shayer et al. 2018).  The next layer sees
  real inputs, so its variance is :math:`\tfrac1N\sum_j (1 - M_{ij}^2)x_j^2`.  It is the
  forward pass of the estimator's ``surrogate="lrt_continuous"`` and the model of the same
  name in :mod:`sklearn_bnn.meanfield` (the one surrogate with an exact critical point).
  It needs a continuous :math:`\phi`: noise ``"sign"`` is rejected
  (:mod:`sklearn_bnn.nn.spec`).
* ``"lrt_tanh"``: S2 with :math:`x = \tanh(h)` whatever the noise, the LR-net neuron; the
  same as ``"lrt_continuous"`` with logistic noise of scale 1/2.  A documented option of
  :meth:`BinaryNetwork.forward`, not a ``surrogate`` value.

References
----------
.. [SGL20] G. Stamatescu et al. Critical initialisation in continuous approximations of
   binary neural networks. ICLR 2020, arXiv:1902.00177.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._constants import UNIT_SLOPE, VARIANCE_EPS
from .._registry import Registry
from .noise import _sign

__all__ = [
    "FORWARDS",
    "INFERENCE",
    "UNIT_SLOPE",
    "VARIANCE_EPS",
    "binary",
    "deterministic",
    "lrt",
    "lrt_continuous",
    "lrt_tanh",
    "neuron_mean",
    "sampled",
]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def deterministic(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    """S1: deterministic mean propagation (see module docstring).

    Returns the means of the last binary layer's units, in :math:`(-1, 1)`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.surrogates import deterministic
    >>> _ = torch.manual_seed(0)
    >>> net = BinaryNetwork(3, (4,), 2)
    >>> _ = initialize_network(net, 0.25)
    >>> deterministic(net, torch.ones(2, 3))
    tensor([[-0.4873, -0.1727,  0.1727,  0.1727],
            [-0.4873, -0.1727,  0.1727,  0.1727]], grad_fn=<ErfMeanBackward>)
    """
    mean, sq_mean = x, x * x
    slope = getattr(net, "slope", 1.0)  # the committed GPU fixture's network predates it
    for layer in net.layers:
        hbar, var = layer.moments(mean, sq_mean)
        mean, sq_mean = neuron_mean(net.noise, hbar, var, slope), None
    return mean


def neuron_mean(noise, hbar: torch.Tensor, var: torch.Tensor, slope: float = 1.0) -> torch.Tensor:
    r"""``noise.gaussian_mean(slope * hbar, var + VARIANCE_EPS)``, the S1 neuron.

    With ``slope=1`` this is the exact mean of a noisy sign unit whose field is Gaussian
    with mean :math:`\bar h` and variance :math:`\Sigma` [SGL20]_.  A ``slope`` :math:`k > 1`
    is an inverse temperature: for sign noise the neuron becomes
    :math:`\operatorname{erf}(k\bar h/\sqrt{2\Sigma})`, and :data:`UNIT_SLOPE` makes its
    slope in the normalised field :math:`u = \bar h/\sqrt\Sigma` equal to 1 (the
    "slope-1 map", which trains deep S1 networks that the exact mean does not: the depth
    experiment, :doc:`/benchmarks` and the user guide's "Trainable depth" page).

    Noises whose mean is :math:`\operatorname{erf}(\bar h / \sqrt{2(\Sigma + c)})`
    (``noise.erf_variance`` is not ``None``) go through :class:`ErfMean`, which computes
    the same ops in the same order with a hand-written backward.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn import get_noise
    >>> from sklearn_bnn.nn.surrogates import UNIT_SLOPE, neuron_mean
    >>> hbar, var = torch.tensor([0.01]), torch.tensor([1.0 - 1e-4])   # Sigma + 1e-4 = 1
    >>> (neuron_mean(get_noise("sign"), hbar, var) / hbar).round(decimals=3)  # sqrt(2/pi)
    tensor([0.7980])
    >>> (neuron_mean(get_noise("sign"), hbar, var, UNIT_SLOPE) / hbar).round(decimals=3)
    tensor([1.])
    """
    if slope != 1.0:
        hbar = hbar * slope
    c = getattr(noise, "erf_variance", None)
    if c is None:
        return noise.gaussian_mean(hbar, var + VARIANCE_EPS)
    return ErfMean.apply(hbar, var, c)


class ErfMean(torch.autograd.Function):
    r""":math:`z = \mathrm{erf}(u)`, :math:`u = \bar h/t`, :math:`t = \sqrt{2(\Sigma+\epsilon+c)}`.

    :math:`\epsilon` is :data:`VARIANCE_EPS`, :math:`c` the noise's ``erf_variance``.
    Backward, with :math:`G_u = G_z\,\tfrac{2}{\sqrt\pi} e^{-u^2}`,

    .. math::
        \nabla_{\bar h} = G_u / t, \qquad \nabla_\Sigma = -\nabla_{\bar h}\, u / t,

    since :math:`\partial t / \partial \Sigma = 1/t`.  In place where possible: two
    tensors (:math:`u`, :math:`t`) are kept for the backward.
    """

    @staticmethod
    def forward(ctx, hbar, var, c):
        t = var + VARIANCE_EPS  # the order of the reference: (var + eps) + c, times 2
        if c:
            t.add_(c)
        t.mul_(2.0).sqrt_()
        u = hbar / t
        ctx.save_for_backward(u, t)
        return torch.erf(u)

    @staticmethod
    def backward(ctx, g_z):
        u, t = ctx.saved_tensors
        g_h = torch.mul(u, u).neg_().exp_().mul_(g_z).mul_(_TWO_OVER_SQRT_PI).div_(t)
        g_v = torch.mul(g_h, u).div_(t).neg_() if ctx.needs_input_grad[1] else None
        return g_h, g_v, None


def binary(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    """The 1-bit network: sign weights, sign units.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.surrogates import binary
    >>> _ = torch.manual_seed(0)
    >>> net = BinaryNetwork(3, (4,), 2)
    >>> _ = initialize_network(net, 0.25)
    >>> binary(net, torch.ones(2, 3))
    tensor([[-1., -1.,  1.,  1.],
            [-1., -1.,  1.,  1.]])
    """
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

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.surrogates import lrt
    >>> _ = torch.manual_seed(0)
    >>> net = BinaryNetwork(3, (4,), 2)
    >>> _ = initialize_network(net, 0.25)
    >>> h = lrt(net, torch.ones(2, 3), torch.Generator().manual_seed(0))
    >>> h.shape, bool(h.abs().max() < 1)
    (torch.Size([2, 4]), True)
    """
    mean, sq_mean = x, x * x
    for layer in net.layers:
        hbar, var = layer.moments(mean, sq_mean)
        h = hbar + torch.sqrt(var + VARIANCE_EPS) * _field_noise(hbar, generator)
        mean, sq_mean = net.noise.phi(h), None
    return mean


def _lrt_field(layer, x, generator) -> torch.Tensor:
    r"""A reparameterised field draw :math:`\bar h + \sqrt{\Sigma + \epsilon}\,\varepsilon`
    for real inputs ``x``."""
    hbar, var = layer.moments(x, x * x)
    return hbar + torch.sqrt(var + VARIANCE_EPS) * _field_noise(hbar, generator)


def lrt_continuous(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    r"""S2: :math:`h = \bar h + \sqrt{\Sigma + \epsilon}\,\varepsilon`, :math:`x = \phi(h)` (real).

    :math:`\phi` is the neuron noise's mean ``net.noise.phi`` (erf for Gaussian noise,
    :math:`\tanh(h/2s)` for logistic, hardtanh for uniform); every layer passes real values.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.surrogates import lrt_continuous
    >>> _ = torch.manual_seed(0)
    >>> net = BinaryNetwork(3, (4,), 2, noise="uniform")
    >>> _ = initialize_network(net, 0.25)
    >>> x = lrt_continuous(net, torch.ones(2, 3), torch.Generator().manual_seed(0))
    >>> x.shape, bool(x.abs().max() <= 1)
    (torch.Size([2, 4]), True)
    """
    for layer in net.layers:
        x = net.noise.phi(_lrt_field(layer, x, generator))
    return x


def lrt_tanh(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    r"""S2 with the LR-net neuron :math:`x = \tanh(h)`, whatever ``net.noise``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.surrogates import lrt_tanh
    >>> _ = torch.manual_seed(0)
    >>> net = BinaryNetwork(3, (4,), 2)
    >>> _ = initialize_network(net, 0.25)
    >>> lrt_tanh(net, torch.ones(2, 3), torch.Generator().manual_seed(0)).shape
    torch.Size([2, 4])
    """
    for layer in net.layers:
        x = torch.tanh(_lrt_field(layer, x, generator))
    return x


def sampled(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    """One sample of the SBN: Bernoulli weights, noisy sign neurons (no gradient rule).

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.surrogates import sampled
    >>> _ = torch.manual_seed(0)
    >>> net = BinaryNetwork(3, (4,), 2)
    >>> _ = initialize_network(net, 0.25)
    >>> x = sampled(net, torch.ones(2, 3), torch.Generator().manual_seed(0))
    >>> x.shape, sorted(x.unique().tolist())
    (torch.Size([2, 4]), [-1.0, 1.0])
    """
    for layer in net.layers:
        x = net.noise.sample(layer.sample_forward(x, generator), generator)
    return x


ForwardFn = Callable[..., torch.Tensor]

#: Forward passes by name: the training surrogates and the prediction networks
#: (see :data:`INFERENCE`).
FORWARDS: Registry[ForwardFn] = Registry(
    "forward pass",
    {
        "deterministic": deterministic,
        "binary": binary,
        "sampled": sampled,
        "lrt": lrt,
        "lrt_continuous": lrt_continuous,
        "lrt_tanh": lrt_tanh,
    },
)


#: Prediction networks: the ``inference`` option of the estimator, mapped to the forward
#: pass it runs and the number of passes averaged (``None``: ``n_mc_samples``).
INFERENCE: Registry[tuple[str, int | None]] = Registry(
    "inference",
    {"binary": ("binary", 1), "surrogate": ("deterministic", 1), "mc": ("sampled", None)},
)

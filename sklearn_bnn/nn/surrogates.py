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
* ``"lrt"``: local reparameterisation (S2/S3); declared, not available yet.

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


def sampled(net, x: torch.Tensor, generator=None) -> torch.Tensor:
    """One sample of the SBN: Bernoulli weights, noisy sign neurons (no gradient rule)."""
    for layer in net.layers:
        x = net.noise.sample(layer.sample_forward(x, generator), generator)
    return x


ForwardFn = Callable[..., torch.Tensor]

FORWARDS: Registry[ForwardFn] = Registry(
    "forward pass",
    {"deterministic": deterministic, "binary": binary, "sampled": sampled},
    pending={"lrt": "local reparameterisation lands with the sampled-training issue"},
)


#: Prediction networks: the ``inference`` option of the estimator, mapped to the forward
#: pass it runs and the number of passes averaged (``None``: ``n_mc_samples``).
INFERENCE: Registry[tuple[str, int | None]] = Registry(
    "inference",
    {"binary": ("binary", 1), "surrogate": ("deterministic", 1), "mc": ("sampled", None)},
)

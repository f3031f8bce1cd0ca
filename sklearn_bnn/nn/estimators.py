r"""Gradient estimators for sampled binary units, and which surrogate each one serves.

Training a stochastic binary network means minimising :math:`E_{S, x}[L]` over the weight
means :math:`M`, the biases and the real head.  A *training objective* is one small unit

.. code-block:: python

    objective(net, x, y, sample_loss, generator=None) -> (surrogate, logits)

where ``sample_loss(logits, y)`` gives per-sample losses (logits may carry extra dimensions
between the sample and the class axis), ``surrogate`` is a scalar whose value is the mean
sampled loss and whose ``backward()`` leaves the estimator's gradient in every parameter,
and ``logits`` are those of the sampled path.  One objective per (surrogate, estimator) pair:

======================  ============================================================
``gradient_estimator``  objective
======================  ============================================================
``"auto"``              exact autograd where nothing binary is sampled
                        (``"deterministic"``, ``"lrt"``, ``"lrt_continuous"``),
                        noise-matched ST otherwise (``"sampled"``, and ``"binary"``:
                        the deterministic 1-bit network trained through ST)
``"st"``                straight-through with the proxy matched to the noise [SY21]_
``"psa"``               path sample-analytic [SYF20]_ (logistic noise)
``"reinforce"``         score function with a baseline
``"arm"``               augment-REINFORCE-merge [YZ19]_, layer by layer
======================  ============================================================

All sampled estimators draw one set of weights per call (shared by the batch) and
neurons per example, i.e. the network the ``"sampled"`` forward pass draws.  Which
estimators apply to which surrogate, what ``"auto"`` means and which noise an estimator
needs are read from :data:`~sklearn_bnn.nn.spec.SURROGATE_SPECS`; the tables here
(:data:`COMBINATIONS`, :data:`AUTO`, :data:`TRAINING`, :data:`REAL_FIRST_LAYER_MODES`)
are views derived from it.

References
----------
.. [SY21] A. Shekhovtsov, V. Yanush. Reintroducing straight-through estimators as
   principled methods for stochastic binary networks. GCPR 2021, arXiv:2006.06880.
.. [SYF20] A. Shekhovtsov, V. Yanush, B. Flach. Path sample-analytic gradient estimators
   for stochastic binary networks. NeurIPS 2020, arXiv:2006.03143.
.. [YZ19] M. Yin, M. Zhou. ARM: augment-REINFORCE-merge gradient for stochastic binary
   networks. ICLR 2019, arXiv:1807.11143.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .. import _fast_step
from .._constants import VARIANCE_EPS
from .._registry import Registry
from .exact import cross_entropy_loss
from .noise import NOISES, LogisticNoise, NoiseModel, _pm1, _sign
from .residual import TRAIN_MODE as RESIDUAL_TRAIN_MODE
from .residual import ResidualStraightThrough
from .spec import (
    AUTO,  # noqa: F401 - importable here as before; derived from the specs
    COMBINATIONS,
    EXACT,
    REAL_FIRST_LAYER_MODES,
    SURROGATE_SPECS,
    check_noise,
    surrogate_spec,
)
from .spec import train_mode as _train_mode
from .surrogates import FORWARDS

SampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = [
    "ARM",
    "COMBINATIONS",
    "ESTIMATORS",
    "PROXIES",
    "PSA_CHUNK",
    "TRAINING",
    "PathSampleAnalytic",
    "Reinforce",
    "StraightThrough",
    "autograd_objective",
    "cross_entropy_loss",
    "psa_chunk",
    "resolve_first_layer",
    "straight_through_sign",
    "training_forward",
]


def _with_value(value: torch.Tensor, gradient_terms: torch.Tensor) -> torch.Tensor:
    """A scalar equal to ``value`` whose gradient is that of ``gradient_terms``."""
    return value.detach() + (gradient_terms - gradient_terms.detach())


def _uniform(shape, like: torch.Tensor, generator) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def _sample_weights(layer, generator) -> torch.Tensor:
    """One Bernoulli draw of the layer's weights, :math:`P(S=+1) = (1+M)/2` (detached).

    A real layer (:class:`~sklearn_bnn.nn.layers.RealLinear`) has nothing to draw: its
    weights are returned as they are.
    """
    m = layer.weight.detach()
    if layer.real:
        return m
    return _pm1(2.0 * _uniform(m.shape, m, generator) < 1.0 + m, m.dtype)


# ----------------------------------------------------------------------- exact autograd
def autograd_objective(forward: str):
    """Objective of a reparameterised or deterministic forward pass: plain autograd.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.estimators import autograd_objective
    >>> net = BinaryNetwork(3, (4,), 2)
    >>> surrogate, logits = autograd_objective("deterministic")(
    ...     net, torch.randn(5, 3), torch.zeros(5, dtype=torch.long), cross_entropy_loss)
    >>> logits.shape
    torch.Size([5, 2])
    """
    FORWARDS.lookup(forward)

    def objective(net, x, y, sample_loss, generator=None):
        logits = net(x, mode=forward, generator=generator)
        return sample_loss(logits, y).mean(), logits

    objective.forward = forward
    return objective


# ------------------------------------------------------------------ straight-through
def _hardtanh(a, s):
    return F.hardtanh(a / s)


def _tanh(a, s):
    return torch.tanh(a / (2.0 * s))


def _erf(a, s):
    return torch.erf(a / (math.sqrt(2.0) * s))


def _approxsign(a, s):
    u = (a / s).clamp(-1.0, 1.0)
    return 2.0 * u - u * u.abs()


#: Straight-through proxies :math:`\tilde\phi(a)`: the backward factor is
#: :math:`\tilde\phi'(a)`.  ``"matched"`` is the noise model's own mean :math:`2F(a)-1`
#: [SY21]_; the named ones use the noise's scale :math:`s`.
#:
#: ==============  ==========================================  ===================================
#: proxy           :math:`\tilde\phi(a)`                       backward :math:`\tilde\phi'(a)`
#: ==============  ==========================================  ===================================
#: ``hardtanh``    :math:`\mathrm{hardtanh}(a/s)` (uniform)    :math:`\tfrac1s 1[|a| \le s]`
#: ``tanh``        :math:`\tanh(a/2s)` (logistic)              :math:`\tfrac2s\sigma(1-\sigma)(a/s)`
#: ``erf``         :math:`\mathrm{erf}(a/\sqrt2 s)` (normal)   :math:`\tfrac{2}{s}\mathcal N(a/s)`
#: ``approxsign``  :math:`2u - u|u|`, :math:`u = a/s` clipped  :math:`\tfrac1s(2-2|u|)1[|a|\le s]`
#: ==============  ==========================================  ===================================
PROXIES: Registry[Callable] = Registry(
    "proxy",
    {
        "matched": None,
        "hardtanh": _hardtanh,
        "tanh": _tanh,
        "erf": _erf,
        "approxsign": _approxsign,
    },
)


def straight_through_sign(
    a: torch.Tensor, noise: NoiseModel, proxy: str = "matched", generator=None
):
    r"""Sample :math:`x = \operatorname{sign}(a - Z)`; backward through the proxy.

    .. math::
        x = \operatorname{sign}(a - Z) \quad\text{(forward)}, \qquad
        \frac{\partial x}{\partial a} := \tilde\phi'(a) \quad\text{(backward)},

    with :math:`\tilde\phi = 2F - 1` the noise's own mean for ``proxy="matched"`` (the
    principled ST of [SY21]_: it backpropagates through :math:`E[x \mid a]`), or a named
    entry of :data:`PROXIES`, which may deliberately mismatch the noise.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.estimators import straight_through_sign
    >>> from sklearn_bnn.nn.noise import UniformNoise
    >>> a = torch.tensor([0.5, 2.0], requires_grad=True)
    >>> straight_through_sign(a, UniformNoise(), "approxsign").sum().backward()
    >>> a.grad
    tensor([1., 0.])
    """
    fn = PROXIES.lookup(proxy)
    soft = noise.phi(a) if fn is None else fn(a, noise.scale)
    return noise.sample(a.detach(), generator) + (soft - soft.detach())


def _st_sampled(net, x, proxy, generator):
    """Weights: identity ST on the means (mirror descent); neurons: ST through the proxy."""
    for layer in net.layers:
        m = layer.weight
        w = _sample_weights(layer, generator) + (m - m.detach())
        a = layer.field(x, w)
        x = straight_through_sign(a, net.noise, proxy, generator)
    return x


def _st_lrt(net, x, proxy, generator):
    """Fields by local reparameterisation, neurons sampled with ST through the proxy."""
    mean, sq_mean = x, x * x
    for layer in net.layers:
        hbar, var = layer.moments(mean, sq_mean)
        eps = torch.randn(hbar.shape, generator=generator, device=hbar.device, dtype=hbar.dtype)
        h = hbar + torch.sqrt(var + VARIANCE_EPS) * eps
        mean, sq_mean = straight_through_sign(h, net.noise, proxy, generator), None
    return mean


class BinaryST(torch.autograd.Function):
    r"""One layer of the 1-bit network with the noise-matched ST backward, fused.

    Forward, as :meth:`StochasticBinaryLinear.binary_forward` and the sign unit, with
    :math:`s = 1/\sqrt N`, :math:`\alpha_i = \operatorname{mean}_j |M_{ij}|` and
    :math:`\theta_i = b_i/\alpha_i`:

    .. math::
        a = s\, x \operatorname{sign}(M)^\top + \theta, \qquad x' = \operatorname{sign}(a).

    Backward, for the upstream gradient :math:`G` of :math:`x'` and
    :math:`G_a = G \odot \phi'(a)` (:math:`\phi` the noise's mean, the matched proxy):

    .. math::
        \nabla_x = s\, G_a \operatorname{sign}(M), \qquad
        \nabla_M = s\, G_a^\top x - \frac{b \odot \textstyle\sum_b G_a}{N \alpha^2}
        \operatorname{sgn}(M), \qquad
        \nabla_b = \frac{\textstyle\sum_b G_a}{\alpha},

    the first term of :math:`\nabla_M` being the identity ST on the means and the second
    the exact gradient through :math:`\alpha` (zero where the clamp of :math:`\alpha` at
    1e-12 is active; :math:`\operatorname{sgn}(0) = 0` as autograd's ``abs``).  The same
    values as the autograd graph of :func:`_st_binary_autograd` to round-off, with three
    matrix products and a handful of elementwise passes per layer instead of about twenty
    autograd nodes.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, layer, noise, code_start=None):
        # the values: the layer's own definition of its 1-bit form (binary_parameters,
        # binary_field), as the exporter reads it; ``weight`` and ``bias`` are its parameters
        offset, alpha_raw = layer._binary_offset()  # binary_parameters' offset, and alpha
        w = layer.sign_matrix()  # binary_parameters' signs as +-1
        a = layer.binary_field(_fast_step.pm1_linear(x, w, code_start), offset)
        ctx.save_for_backward(x, w, noise.dphi(a), weight, bias, alpha_raw)
        ctx.scale = layer.scale
        return _sign(a)

    @staticmethod
    def backward(ctx, g_out):
        x, w, dphi, weight, bias, alpha_raw = ctx.saved_tensors
        s = ctx.scale
        # alpha of binary_parameters and where its clamp is inactive (the derivative's domain)
        alpha, active = alpha_raw.clamp_min(1e-12), alpha_raw >= 1e-12
        g_a = g_out * dphi
        g_sum = g_a.sum(dim=0)
        need = ctx.needs_input_grad
        grad_x = torch.mm(g_a, w).mul_(s) if need[0] else None
        grad_w = grad_b = None
        if need[1]:
            coef = torch.where(active, bias * g_sum / (alpha * alpha) / weight.shape[1], 0.0)
            # minus coef * sgn(M) in one pass (exact products: sgn is 0 or +-1)
            grad_w = torch.mm(g_a.t(), x).mul_(s)
            grad_w.addcmul_(coef[:, None], torch.sign(weight), value=-1.0)
        if need[2]:
            grad_b = g_sum / alpha
        return grad_x, grad_w, grad_b, None, None, None


class RealST(torch.autograd.Function):
    r"""A real first layer (:class:`~sklearn_bnn.nn.layers.RealLinear`) and its sign units
    with the noise-matched ST backward, fused.

    Forward :math:`a = s\, x W^\top + b`, :math:`x' = \operatorname{sign}(a)`; backward,
    with :math:`G_a = G \odot \phi'(a)`: :math:`\nabla_x = s\, G_a W`,
    :math:`\nabla_W = s\, G_a^\top x`, :math:`\nabla_b = \sum_b G_a` (what autograd
    gives for :meth:`RealLinear.field` followed by the ST unit, to round-off).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, layer, noise):
        a = layer.field(x)  # the layer's own field; ``weight``, ``bias`` are its parameters
        ctx.save_for_backward(x, weight, noise.dphi(a))
        ctx.scale = layer.scale
        return _sign(a)

    @staticmethod
    def backward(ctx, g_out):
        x, weight, dphi = ctx.saved_tensors
        g_a = g_out * dphi
        need = ctx.needs_input_grad
        grad_x = torch.mm(g_a, weight).mul_(ctx.scale) if need[0] else None
        grad_w = torch.mm(g_a.t(), x).mul_(ctx.scale) if need[1] else None
        grad_b = g_a.sum(dim=0) if need[2] else None
        return grad_x, grad_w, grad_b, None, None


def _st_binary(net, x, proxy, generator):
    r"""The 1-bit network (the SBN's mode) forward, ST backward.

    Forward exactly :meth:`StochasticBinaryLinear.binary_forward` and the sign unit:
    :math:`h = \operatorname{sign}(M)x/\sqrt N + b/\bar{|M|}`, :math:`x' = \operatorname{sign}(h)`.
    Backward: identity ST on the means, :math:`w = \operatorname{sign}(M) + (M -
    \operatorname{stopgrad} M)`, and the proxy's derivative for the units.  Nothing is
    sampled: ``generator`` is unused.  With the matched proxy each layer is one
    :class:`BinaryST` (or :class:`RealST` for a real first layer: the same gradients,
    fused); other proxies run :func:`_st_binary_autograd`.  A :math:`\pm 1` layer's
    product with its input's :math:`\pm 1` columns is exact in integers
    (:func:`sklearn_bnn._fast_step.pm1_linear`): from the network's ``code_start`` in the
    first layer (the input code's bits), every column in the later ones (sign units).
    """
    if proxy != "matched":
        return _st_binary_autograd(net, x, proxy, generator)
    start = getattr(net, "code_start", None)  # None in a network pickled before it existed
    for layer in net.layers:
        if layer.real:
            x = RealST.apply(x, layer.weight, layer.bias, layer, net.noise)
        else:
            x = BinaryST.apply(x, layer.weight, layer.bias, layer, net.noise, start)
        start = 0  # the next layer reads this one's sign units
    return x


def _st_binary_autograd(net, x, proxy, generator):
    """:func:`_st_binary` written with autograd (any proxy; the reference for BinaryST)."""
    fn = PROXIES.lookup(proxy)
    for layer in net.layers:
        if layer.real:
            a = layer.field(x)
        else:
            signs, offset = layer.binary_parameters()  # the one definition of the 1-bit layer
            m = layer.weight
            w = _pm1(signs, m.dtype) + (m - m.detach())
            a = layer.binary_field(F.linear(x, w), offset)
        soft = net.noise.phi(a) if fn is None else fn(a, net.noise.scale)
        x = _sign(a.detach()) + (soft - soft.detach())
    return x


#: The straight-through version of each forward pass that samples binary neurons.
_ST_BY_FORWARD = {"sampled": _st_sampled, "lrt": _st_lrt, "binary": _st_binary}

#: Straight-through paths by surrogate: every surrogate whose spec lists ``"st"``.
_ST_PATHS = {
    name: _ST_BY_FORWARD[spec.forward]
    for name, spec in SURROGATE_SPECS.items()
    if "st" in spec.estimators
}


@dataclass(frozen=True)
class StraightThrough:
    r"""Straight-through estimator for a stochastic binary network [SY21]_.

    Forward: one sample of the network.  Backward, per unit,
    :math:`\partial x / \partial a := \tilde\phi'(a)` (see :func:`straight_through_sign`);
    with ``surrogate="sampled"`` the weights are drawn Bernoulli and differentiated with
    the identity ST on their means,
    :math:`w = S + (M - \operatorname{stopgrad} M)`.  This is mirror descent on the latent
    weights with a uniform :math:`F_w` [SY21]_: projected SGD on :math:`M = E[w] \in [-1, 1]`
    (the projection is :meth:`BinaryNetwork.project_`), BinaryConnect's latent clipping.
    An L2 penalty ``alpha`` on the means plays the role of the KL term to the uniform prior
    (the KL of a Bernoulli of mean :math:`M` to the fair coin is
    :math:`\tfrac12 M^2 + O(M^4)`).  With ``surrogate="lrt"`` the fields are sampled by
    local reparameterisation (exact autograd for the weights) and only the neurons use ST.
    With ``surrogate="binary"`` nothing is sampled: the forward pass is the deterministic
    1-bit network itself (the mode of the SBN, :math:`W = \operatorname{sign}(M)`,
    :math:`x = \operatorname{sign}(h)`), and both rules above give the backward pass.  This
    is BinaryConnect / BinaryNet training (Courbariaux et al. 2015, Hubara et al. 2016) with
    the noise-matched proxy in place of their hard-tanh; it optimises the deployed network's
    own loss, which is why it is the classifier's default (measurements in
    ``benchmarks/onebit.py``).

    ST is unbiased for one layer with a multilinear head; its bias comes from depth and
    nonlinearity.  Deep ST is PSA linearised [SYF20]_.  Cost: one backprop.

    Parameters
    ----------
    proxy : str, default="matched"
        A key of :data:`PROXIES`.
    surrogate : {"sampled", "lrt", "binary"}, default="sampled"

    Examples
    --------
    An objective returns the mean sampled loss, whose ``backward()`` leaves the ST
    gradient in every parameter:

    >>> import torch
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.estimators import StraightThrough
    >>> from sklearn_bnn.nn.exact import cross_entropy_loss
    >>> _ = torch.manual_seed(0)
    >>> net = BinaryNetwork(3, (4,), 2)
    >>> _ = initialize_network(net, 0.25)
    >>> x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 0, 1])
    >>> loss, logits = StraightThrough()(net, x, y, cross_entropy_loss)
    >>> loss.backward()
    >>> logits.shape, net.layers[0].weight.grad.shape
    (torch.Size([6, 2]), torch.Size([4, 3]))
    """

    proxy: str = "matched"
    surrogate: str = "sampled"

    def __post_init__(self):
        PROXIES.lookup(self.proxy)
        if self.surrogate not in _ST_PATHS:
            raise ValueError(
                f"StraightThrough(surrogate={self.surrogate!r}) is not valid. "
                f"Valid values: {', '.join(map(repr, _ST_PATHS))}."
            )

    @property
    def forward(self) -> str:
        """Forward pass for validation losses: the network the training pass runs."""
        return SURROGATE_SPECS[self.surrogate].forward

    def __call__(self, net, x, y, sample_loss, generator=None):
        if self.proxy == "matched":
            _check_proxy(net.noise)  # the sign neuron has no proxy: raise early and clearly
        features = _ST_PATHS[self.surrogate](net, x, self.proxy, generator)
        if sample_loss is cross_entropy_loss and features.dim() == 2 and _plain_linear(net.head):
            losses, logits = LinearCrossEntropy.apply(features, net.head.weight, net.head.bias, y)
            return losses.mean(), logits
        logits = net.head(features)
        return sample_loss(logits, y).mean(), logits


def _plain_linear(module) -> bool:
    """Whether calling ``module`` is exactly ``F.linear(x, weight, bias)``: a
    :class:`torch.nn.Linear` with a bias and no forward hooks."""
    hooks = (module._forward_hooks, module._forward_pre_hooks,
             torch.nn.modules.module._global_forward_hooks,
             torch.nn.modules.module._global_forward_pre_hooks)  # fmt: skip
    return type(module) is torch.nn.Linear and module.bias is not None and not any(hooks)


def _check_proxy(noise: NoiseModel) -> None:
    """Raise if ``noise`` has no straight-through proxy (``noise.dphi``); checked once per
    noise model (the noise models are frozen dataclasses), every time for an unhashable one."""
    try:
        hash(noise)
    except TypeError:
        noise.dphi(torch.zeros(1, 0))
    else:
        _check_proxy_once(noise)


@functools.cache
def _check_proxy_once(noise: NoiseModel) -> None:
    noise.dphi(torch.zeros(1, 0))


class LinearCrossEntropy(torch.autograd.Function):
    r"""A linear head and :func:`~sklearn_bnn.nn.exact.cross_entropy_loss` as one autograd node.

    Forward: the same operations as ``cross_entropy_loss(F.linear(x, W, b), y)``: logits
    :math:`z = x W^\top + b` and :math:`\ell_b = t_b + \log\sum_c e^{z_{bc} - t_b}
    - z_{b y_b}` with :math:`t_b = \max_c z_{bc}`; returns the losses and the logits (not
    differentiable).  Backward, for an upstream gradient :math:`g` that is positive (a
    mean's: the straight-through objective),

    .. math::
        G_{bc} = \frac{g_b}{S_b}\, e^{z_{bc} - t_b} - g_b\,[c = y_b], \quad
        S_b = \textstyle\sum_c e^{z_{bc} - t_b}, \qquad
        \nabla_x = G W, \quad \nabla_W = G^\top x, \quad \nabla_b = \textstyle\sum_b G,

    the very operations that autograd runs through the written-out graph and ``addmm``'s
    backward (for :math:`g_b > 0` the ``+ 0`` that autograd's scatter adds to the other
    entries changes no bit), so values and gradients are autograd's bit for bit
    (``tests/test_fast_step.py``), in one node instead of about a dozen.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, y):
        logits = F.linear(x, weight, bias)
        top = logits.amax(-1, keepdim=True)
        e = (logits - top).exp()
        s = e.sum(-1)
        index = y.reshape(y.shape[0], 1)
        ctx.save_for_backward(x, weight, e, s, index)
        ctx.mark_non_differentiable(logits)
        losses = s.log() + top.squeeze(-1) - logits.gather(-1, index).squeeze(-1)
        return losses, logits

    @staticmethod
    def backward(ctx, g, _):
        x, weight, e, s, index = ctx.saved_tensors
        g_z = (g / s).unsqueeze(-1) * e
        g_z.scatter_add_(-1, index, g.neg().unsqueeze(-1))
        need = ctx.needs_input_grad
        grad_x = g_z.mm(weight) if need[0] else None
        grad_w = g_z.t().mm(x) if need[1] else None
        grad_b = g_z.sum(0) if need[2] else None
        return grad_x, grad_w, grad_b, None


# -------------------------------------------------------------- one sampled path
@dataclass
class _Path:
    """One sample of the SBN: per layer the input, sampled weights, field and output."""

    inputs: list
    weights: list
    fields: list
    outputs: list


def _sample_path(net, x, generator, u_weights=None, u_units=None) -> _Path:
    r"""Draw weights and neurons; fields keep their graph to the biases only.

    With ``u_weights``/``u_units`` given (uniform numbers per weight and per unit), the
    draws are :math:`S = +1 \iff u < (1+M)/2` and :math:`x = +1 \iff u < F(a)`.
    """
    path = _Path([], [], [], [])
    for k, layer in enumerate(net.layers):
        m = layer.weight.detach()
        if u_weights is None:
            s = _sample_weights(layer, generator)
        else:
            s = _pm1(u_weights[k] < (1.0 + m) / 2.0, m.dtype)
        a = layer.field(x, s)
        if u_units is None:
            out = net.noise.sample(a.detach(), generator)
        else:
            out = _pm1(u_units[k] < net.noise.cdf(a.detach()), a.dtype)
        path.inputs.append(x)
        path.weights.append(s)
        path.fields.append(a)
        path.outputs.append(out)
        x = out
    return path


def _estimator_surrogate(net, path, loss_value, grad_fields, grad_means, head_term):
    r"""Scalar with value ``loss_value`` and gradient: :math:`\sum G_a a + \sum G_M M` + head."""
    terms = head_term
    for layer, a, ga, gm in zip(net.layers, path.fields, grad_fields, grad_means):
        terms = terms + (ga.detach() * a).sum() + (gm.detach() * layer.weight).sum()
    return _with_value(loss_value, terms)


def _head_losses(net, features, y, sample_loss):
    """Per-sample losses with gradient to the head only."""
    logits = net.head(features.detach())
    return sample_loss(logits, y), logits


# ------------------------------------------------------------------------- REINFORCE
def _log_prob_units(noise, a, x):
    """:math:`\\log P(x \\mid a)`; the field ``a`` keeps its graph."""
    if isinstance(noise, LogisticNoise):
        return F.logsigmoid(x * a / noise.scale)
    p = noise.cdf(a)
    tiny = torch.finfo(a.dtype).tiny
    return torch.where(x > 0, p, 1.0 - p).clamp_min(tiny).log()


@dataclass(frozen=True)
class Reinforce:
    r"""Score-function (REINFORCE) estimator with the mean-field loss as baseline.

    .. math::
        \hat g = \big(L(x) - c\big)\,\nabla \log p(S, x) + \nabla_{\text{head}} L(x),

    with :math:`\log p = \sum_k \log p(S^k \mid M^k) + \sum_k \log p(x^k \mid a^k)`,
    :math:`p(S \mid M) = (1 + SM)/2`, :math:`p(x \mid a) = F(xa)`-style per unit.  The
    baseline :math:`c_b` is the loss of the deterministic surrogate S1 on example ``b``
    (detached): it depends on the parameters and the input only, so the estimator stays
    unbiased (Williams 1992); the weights, shared by the batch, use the batch mean
    :math:`\bar L - \bar c`.  Unbiased, high variance: a test reference and baseline.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.estimators import Reinforce
    >>> from sklearn_bnn.nn.exact import cross_entropy_loss
    >>> _ = torch.manual_seed(0)
    >>> net = BinaryNetwork(3, (4,), 2)
    >>> _ = initialize_network(net, 0.25)
    >>> x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 0, 1])
    >>> loss, logits = Reinforce()(net, x, y, cross_entropy_loss)
    >>> loss.backward()
    >>> net.layers[0].weight.grad.shape
    torch.Size([4, 3])
    """

    forward = "sampled"

    def __call__(self, net, x, y, sample_loss, generator=None):
        path = _sample_path(net, x, generator)
        losses, logits = _head_losses(net, path.outputs[-1], y, sample_loss)
        with torch.no_grad():
            baseline = sample_loss(net(x, mode="deterministic"), y)
        advantage = (losses - baseline).detach()
        log_units = sum(
            _log_prob_units(net.noise, a, o).sum(-1)
            for a, o in zip(path.fields, path.outputs, strict=True)
        )
        log_weights = sum(
            ((1.0 + s * layer.weight) / 2.0).clamp_min(torch.finfo(s.dtype).tiny).log().sum()
            for layer, s in zip(net.layers, path.weights)
        )
        score = (advantage * log_units).mean() + advantage.mean() * log_weights
        return _with_value(losses.mean(), losses.mean() + score), logits


# ------------------------------------------------------------------------------- ARM
@dataclass(frozen=True)
class ARM:
    r"""Augment-REINFORCE-merge [YZ19]_, one stochastic stage at a time.

    For a Bernoulli vector :math:`z` with :math:`P(z=1) = p`, :math:`u \sim U(0,1)`:

    .. math::
        \frac{\partial E[f]}{\partial p}
        = E_u\Big[\big(f(1[u > 1-p]) - f(1[u < p])\big)\,\frac{u - \tfrac12}{p(1-p)}\Big].

    The network is a chain of stages: for each layer the weights
    (:math:`p = (1+M)/2`, so :math:`\partial/\partial M = \tfrac12\,\partial/\partial p`) and
    then the neurons (:math:`p = F(a)`, so
    :math:`\partial/\partial a = F'(a)\,\partial/\partial p`).
    The base path draws :math:`z = 1[u < p]` at every stage; for each stage the antithetic
    :math:`1[u > 1-p]` is propagated to the loss with the same uniforms downstream (common
    random numbers), an unbiased estimate of :math:`E[L \mid \text{stages} \le t]`.  Cost:
    :math:`2L + 1` partial forward passes.  Where :math:`p(1-p) = 0` both draws agree and the
    term is 0 (so at :math:`M = \pm 1` exactly the weight gradient is not estimated).

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.estimators import ARM
    >>> from sklearn_bnn.nn.exact import cross_entropy_loss
    >>> _ = torch.manual_seed(0)
    >>> net = BinaryNetwork(3, (4, 4), 2)
    >>> _ = initialize_network(net, 0.25)
    >>> x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 0, 1])
    >>> loss, logits = ARM()(net, x, y, cross_entropy_loss)
    >>> loss.backward()
    >>> [tuple(layer.weight.grad.shape) for layer in net.layers]
    [(4, 3), (4, 4)]
    """

    forward = "sampled"

    def __call__(self, net, x, y, sample_loss, generator=None):
        layers = list(net.layers)
        u_w = [_uniform(layer.weight.shape, x, generator) for layer in layers]
        u_x = [_uniform((x.shape[0], layer.out_features), x, generator) for layer in layers]
        path = _sample_path(net, x, generator, u_w, u_x)
        losses, logits = _head_losses(net, path.outputs[-1], y, sample_loss)
        base = losses.detach()
        n = x.shape[0]
        grad_a, grad_m = [], []
        with torch.no_grad():
            for k, layer in enumerate(layers):
                m = layer.weight.detach()
                p_w = (1.0 + m) / 2.0
                anti = _pm1(u_w[k] > 1.0 - p_w, m.dtype)
                f_anti = self._tail(net, k, path.inputs[k], anti, u_w, u_x, y, sample_loss)
                grad_m.append((f_anti - base).mean() * self._ratio(u_w[k], p_w, 0.5))

                a = path.fields[k].detach()
                p_x = net.noise.cdf(a)
                anti = _pm1(u_x[k] > 1.0 - p_x, a.dtype)
                f_anti = self._tail(net, k + 1, anti, None, u_w, u_x, y, sample_loss)
                dp_da = net.noise.dphi(a) / 2.0
                grad_a.append((f_anti - base)[:, None] / n * self._ratio(u_x[k], p_x, dp_da))
        surrogate = _estimator_surrogate(net, path, losses.mean(), grad_a, grad_m, losses.mean())
        return surrogate, logits

    @staticmethod
    def _ratio(u, p, dp):
        """:math:`(u - 1/2)\\,dp / (p(1-p))`, 0 where :math:`p(1-p) = 0`."""
        var = p * (1.0 - p)
        safe = torch.where(var > 0, var, torch.ones_like(var))
        return torch.where(var > 0, (u - 0.5) * dp / safe, torch.zeros_like(var))

    @staticmethod
    def _tail(net, k, x, weights, u_w, u_x, y, sample_loss):
        """Per-sample loss from layer ``k`` on, given its input ``x`` (and weights, if given)."""
        for j in range(k, len(net.layers)):
            layer = net.layers[j]
            s = weights if j == k and weights is not None else None
            if s is None:
                m = layer.weight
                s = _pm1(u_w[j] < (1.0 + m) / 2.0, m.dtype)
            a = layer.field(x, s)
            x = _pm1(u_x[j] < net.noise.cdf(a), a.dtype)
        return sample_loss(net.head(x), y)


# ------------------------------------------------------------------------------- PSA
#: Elements per chunk of the first layer's per-connection tensor (real inputs), by device
#: type: small on the CPU (the chunk stays in cache), large elsewhere (fewer kernel launches).
PSA_CHUNK = {"cpu": 2**20, "default": 2**22}


def psa_chunk(device: torch.device) -> int:
    """Elements per chunk of PSA's first-layer per-connection tensor on ``device``.

    Examples
    --------
    >>> from sklearn_bnn.nn.estimators import psa_chunk
    >>> psa_chunk("cpu")
    1048576
    """
    return PSA_CHUNK.get(torch.device(device).type, PSA_CHUNK["default"])


@dataclass(frozen=True)
class PathSampleAnalytic:
    r"""Path sample-analytic (PSA) estimator [SYF20]_ for logistic neuron noise.

    One path :math:`\hat x^k \sim p(x^k \mid a^k)`, :math:`P(x=+1 \mid a) = \sigma(a/s)`, is
    sampled forward.  The last binary layer is summed analytically (Rao-Blackwellised):

    .. math::
        E = \tfrac{1}{N_L}\textstyle\sum_i \big[P(\hat x_i) f(\hat x)
            + (1 - P(\hat x_i))\, f(\hat x^{\downarrow i})\big],
        \qquad g^L_i = f(\hat x^{\downarrow i}) - f(\hat x),

    (:math:`\downarrow i`: unit :math:`i` flipped), which also gives the head's gradient.
    Going down, with :math:`c^k_j = \hat x^k_j g^k_j` and
    :math:`\delta_{ji} = \sigma((a_j - 2 W_{ji}\hat x_i/\sqrt N)/s) - \sigma(a_j/s)` (the change
    of :math:`P(x_j = +1)` when input :math:`i`, or weight :math:`W_{ji}`, flips),

    .. math::
        \frac{\partial E}{\partial a^k_j} = -\hat x^k_j\,\sigma'(a^k_j/s)\,g^k_j / s, \quad
        g^{k-1}_i = -\textstyle\sum_j c^k_j\,\delta_{ji}, \quad
        \frac{\partial E}{\partial M^k_{ji}}
        = \tfrac12 W_{ji} \textstyle\sum_b c^k_{bj}\,\delta_{bji}.

    The last line is the local expectation over the binary weight :math:`W_{ji}` (drawn
    once per batch, :math:`P(W=+1) = (1+M)/2`), the same flip argument as for the units: a
    generalisation of [SYF20]_ (deterministic real weights there) to the SBN's stochastic
    weights.  With one stochastic layer the estimator is the unbiased local-expectation
    gradient.

    **Cost.**  With :math:`\pm1` weights and :math:`\pm1` inputs, :math:`t = W_{ji}\hat x_i`
    takes two values, so :math:`\delta = A_j + t\,B_j` with
    :math:`A = \tfrac12(\sigma_+ + \sigma_-) - \sigma(a/s)`,
    :math:`B = \tfrac12(\sigma_+ - \sigma_-)`, :math:`\sigma_\pm = \sigma((a \mp 2/\sqrt N)/s)`,
    and the sums over :math:`i` and :math:`b` are matrix products (one extra GEMM each).  Only
    the first layer, whose inputs are real, evaluates :math:`\delta_{bji}` per connection
    (one sigmoid each), in chunks of :func:`psa_chunk` elements and only for the weight
    gradient; no :math:`B \times N_\text{in} \times N_\text{out}` tensor is formed.  The
    analytic last layer costs one head evaluation per unit of the last layer; with the
    cross-entropy loss on the CPU these are two small matrix products
    (:meth:`_flipped_losses`) instead of a :math:`B \times N_L \times C` tensor.

    Examples
    --------
    PSA needs logistic neuron noise:

    >>> import torch
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.estimators import PathSampleAnalytic
    >>> from sklearn_bnn.nn.exact import cross_entropy_loss
    >>> _ = torch.manual_seed(0)
    >>> net = BinaryNetwork(3, (4, 4), 2, noise="logistic")
    >>> _ = initialize_network(net, 0.25)
    >>> x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 0, 1])
    >>> loss, logits = PathSampleAnalytic()(net, x, y, cross_entropy_loss)
    >>> loss.backward()
    >>> [tuple(layer.weight.grad.shape) for layer in net.layers]
    [(4, 3), (4, 4)]
    >>> PathSampleAnalytic()(BinaryNetwork(3, (4,), 2), x, y, cross_entropy_loss)
    Traceback (most recent call last):
    ...
    ValueError: gradient_estimator='psa' needs noise='logistic' (PSA is derived for ...
    """

    forward = "sampled"

    def __call__(self, net, x, y, sample_loss, generator=None):
        noise = net.noise
        if not isinstance(noise, LogisticNoise):
            raise ValueError(  # noqa: TRY004 - a value of the noise option, as elsewhere
                f"gradient_estimator='psa' needs noise='logistic' (PSA is derived for "
                f"P(x=+1|a) = sigmoid(a/s)); got noise={noise.name!r}."
            )
        s = noise.scale
        path = _sample_path(net, x, generator)
        n = x.shape[0]
        xl = path.outputs[-1]
        # analytic last layer: the head on the path and on every single flip
        logits = net.head(xl)
        f = sample_loss(logits, y)
        f_flip = self._flipped_losses(logits, xl, net.head.weight, y, sample_loss)
        with torch.no_grad():
            p_keep = torch.sigmoid(xl * path.fields[-1] / s)
            pi = (1.0 - p_keep) / xl.shape[1]
            g = (f_flip - f[:, None]).detach() / n  # derivative of the batch mean
        head = (f * (1.0 - pi.sum(1)) + (pi * f_flip).sum(1)).mean()

        grad_a, grad_m = [None] * len(net.layers), [None] * len(net.layers)
        with torch.no_grad():
            for k in range(len(net.layers) - 1, -1, -1):
                layer = net.layers[k]
                a, xo = path.fields[k].detach(), path.outputs[k]
                xin, w = path.inputs[k], path.weights[k]
                sig = torch.sigmoid(a / s)
                grad_a[k] = -xo * sig * (1.0 - sig) / s * g
                if k == 0:
                    grad_m[k] = self._first_layer_means(a, xin, w, xo * g, layer.scale, s)
                    break
                grad_m[k], g = self._binary_layer(a, xo, xin, w, g, layer.scale, s)
        f_path = f.detach().mean()
        surrogate = _estimator_surrogate(net, path, f_path, grad_a, grad_m, head)
        return surrogate, logits

    @staticmethod
    def _flipped_losses(logits, xl, w_head, y, sample_loss):
        r"""Per-sample losses with one last-layer unit flipped, shape ``(B, N_L)``.

        Flipping :math:`\hat x_i` changes the logits by :math:`-2\hat x_i W_{:,i}` (``w_head``
        is ``(C, N_L)``).  In general the flipped logits ``(B, N_L, C)`` go through
        ``sample_loss``.  For :func:`~sklearn_bnn.nn.exact.cross_entropy_loss` the same
        values come from matrix products: with :math:`p_{bc} = e^{z_{bc} - t_b}`,

        .. math::
            \log\textstyle\sum_c e^{z_{bc} - 2\hat x_{bi} W_{ci}}
            = t_b + m^\pm_i + \log \textstyle\sum_c p_{bc}\, e^{\mp 2 W_{ci} - m^\pm_i}
            \quad (\hat x_{bi} = \pm 1),

        i.e. ``p @ E+`` and ``p @ E-``, with :math:`m^\pm_i = \max_c(\mp 2W_{ci})` so that
        no exponent is positive.  The sum is at least
        :math:`e^{-(m^+_i + m^-_i)}` (its term at :math:`\arg\max_c z_{bc}`), so the form is
        used while :math:`m^+_i + m^-_i = 2(\max_c W_{ci} - \min_c W_{ci})` stays below
        :math:`-\tfrac12\log(\text{tiny})` of the dtype (the sum is then at least
        :math:`\sqrt{\text{tiny}}`: no underflow, full relative precision; 43.7 in float32).
        Beyond it, for any other loss (sample weights included) and off the CPU (where the
        check would synchronise the device every step) the general path runs.  Both give
        the same values and gradients up to rounding.
        """
        if sample_loss is cross_entropy_loss and logits.dim() == 2 and logits.device.type == "cpu":
            w2 = 2.0 * w_head
            with torch.no_grad():
                top = logits.amax(-1, keepdim=True)
                m_plus, m_minus = (-w2).amax(0), w2.amax(0)
                limit = -0.5 * math.log(torch.finfo(logits.dtype).tiny)
                fast = bool((m_plus + m_minus).max() < limit)
            if fast:
                p = (logits - top).exp()
                on = (1.0 + xl) * 0.5  # 1 where x = +1, 0 where x = -1: an exact selection
                off = 1.0 - on  # (torch.where is several times slower on the CPU)
                q = on * (p @ (-w2 - m_plus).exp()) + off * (p @ (w2 - m_minus).exp())
                lse = top + (on * m_plus + off * m_minus) + q.log()
                target = logits.gather(1, y[:, None]) - xl * w2.index_select(0, y)
                return lse - target
        flipped = logits[:, None, :] - 2.0 * xl[:, :, None] * w_head.T[None]  # (B, N_L, C)
        return sample_loss(flipped, y)

    @staticmethod
    def _binary_layer(a, xo, xin, w, g, scale, s):
        r"""Weight-mean gradient and :math:`g^{k-1}` of a layer with :math:`\pm1` inputs.

        :math:`\delta_{bji} = A_{bj} + W_{ji}\hat x_{bi} B_{bj}`, so
        :math:`\tfrac12 W_{ji}\sum_b c_{bj}\delta_{bji} = \tfrac12 W_{ji}\sum_b c_{bj}A_{bj}
        + \tfrac12\sum_b c_{bj}B_{bj}\hat x_{bi}` and
        :math:`g^{k-1}_{bi} = -\sum_j c_{bj}A_{bj} - \hat x_{bi}\sum_j c_{bj}B_{bj}W_{ji}`:
        two matrix products, no per-connection tensor.
        """
        c = xo * g
        d = 2.0 * scale
        sig = torch.sigmoid(a / s)
        sig_p, sig_m = torch.sigmoid((a - d) / s), torch.sigmoid((a + d) / s)
        ca = c * (0.5 * (sig_p + sig_m) - sig)
        cb = c * (0.5 * (sig_p - sig_m))
        grad_m = 0.5 * w * ca.sum(0)[:, None] + 0.5 * cb.T @ xin
        g_below = -ca.sum(1, keepdim=True) - xin * (cb @ w)
        return grad_m, g_below

    @staticmethod
    def _first_layer_means(a, xin, w, c, scale, s):
        r""":math:`\tfrac12 W_{ji}\sum_b c_{bj}\delta_{bji}` for real inputs, chunked.

        The per-connection tensor :math:`\sigma((a_{bj} - 2 W_{ji} x_{bi}/\sqrt N)/s)` is laid
        out ``(inputs, b, N_out)`` (the broadcasts run along the contiguous output axis) in
        one buffer of at most :func:`psa_chunk` elements, reused for every chunk of inputs
        (and of ``b`` when one input's slab is larger): per chunk one ``addcmul`` writes the
        argument, then ``sigmoid_``, ``mul_`` by :math:`c` and a sum over ``b``.  Small
        chunks stay in cache on the CPU and no large buffer is allocated per call.
        """
        n_out, n_in = w.shape
        n = a.shape[0]
        chunk = psa_chunk(a.device)
        rows = min(n, max(1, chunk // n_out))
        cols = min(n_in, max(1, chunk // (rows * n_out)))
        a_s = a / s
        u = xin * (-2.0 * scale / s)  # the argument is a/s + u W
        w_t = w.T.contiguous()
        acc = torch.zeros(n_in, n_out, dtype=a.dtype, device=a.device)
        buf = torch.empty(cols * rows * n_out, dtype=a.dtype, device=a.device)
        for start in range(0, n, rows):
            ab, cb = a_s[start : start + rows], c[start : start + rows]
            ub = u[start : start + rows].T.contiguous()  # (N_in, b)
            r = ab.shape[0]
            for i in range(0, n_in, cols):
                k = min(cols, n_in - i)
                view = buf[: k * r * n_out].view(k, r, n_out)  # (inputs, b, N_out)
                torch.addcmul(ab[None], ub[i : i + k, :, None], w_t[i : i + k, None, :], out=view)
                acc[i : i + k] += view.sigmoid_().mul_(cb).sum(1)
        out = acc.T - (c * torch.sigmoid(a_s)).sum(0)[:, None]
        return 0.5 * w * out


# ------------------------------------------------------------------------- registries
#: Gradient estimators (the user-facing names).  Each entry is the objective it trains
#: with on the ``"sampled"`` surrogate; ``"auto"`` resolves per surrogate through ``AUTO``.
ESTIMATORS: Registry[object] = Registry(
    "gradient_estimator",
    {
        "auto": "auto",
        "st": StraightThrough(),
        "psa": PathSampleAnalytic(),
        "reinforce": Reinforce(),
        "arm": ARM(),
    },
)

def _objective(spec, estimator: str):
    """The training objective of ``spec``'s surrogate with ``estimator``."""
    chosen = spec.auto if estimator == "auto" else estimator
    if chosen == EXACT:
        return autograd_objective(spec.forward)
    if chosen == "st":
        return StraightThrough(surrogate=spec.name)
    return ESTIMATORS[chosen]


#: Training objectives by train-mode name (what :func:`training_forward` returns), one per
#: distinct mode of :data:`~sklearn_bnn.nn.spec.SURROGATE_SPECS`.
TRAINING: Registry[Callable] = Registry(
    "train mode",
    {
        spec.train_mode(estimator): _objective(spec, estimator)
        for spec in SURROGATE_SPECS.values()
        for estimator in spec.estimators
    }
    | {RESIDUAL_TRAIN_MODE: ResidualStraightThrough()},
)

#: Estimators that require a particular noise model: name -> (noise class, its name).
_NOISE_REQUIRED = {
    estimator: (NOISES[noise], noise)
    for spec in SURROGATE_SPECS.values()
    for estimator, noise in spec.noise_required
}


def training_forward(surrogate: str, estimator: str, noise: NoiseModel | None = None) -> str:
    """Name of the training mode (a key of :data:`TRAINING`) for ``surrogate`` and ``estimator``.

    Exact-autograd modes are forward-pass names (keys of ``FORWARDS``); sampled modes are
    ``"<surrogate>+<estimator>"``.  Raises a :class:`ValueError` naming the valid
    combinations when the pair makes no sense, and one naming what is wrong when ``noise``
    is given and does not fit (:func:`~sklearn_bnn.nn.spec.check_noise`).  Everything is
    read from :data:`~sklearn_bnn.nn.spec.SURROGATE_SPECS`.

    Examples
    --------
    >>> from sklearn_bnn.nn.estimators import training_forward
    >>> training_forward("deterministic", "auto")
    'deterministic'
    >>> training_forward("sampled", "auto")
    'sampled+st'
    >>> training_forward("deterministic", "psa")
    Traceback (most recent call last):
    ...
    ValueError: gradient_estimator='psa' does not apply to surrogate='deterministic'. Valid
    combinations: deterministic: auto; lrt: auto, st; lrt_continuous: auto; sampled: auto,
    st, psa, reinforce, arm; binary: auto, st.
    """
    if surrogate not in SURROGATE_SPECS and surrogate in FORWARDS:
        raise ValueError(
            f"surrogate={surrogate!r} is not a training surrogate. "
            f"Valid values: {', '.join(map(repr, SURROGATE_SPECS))}."
        )
    surrogate_spec(surrogate)
    ESTIMATORS.lookup(estimator)
    name = _train_mode(surrogate, estimator)
    if noise is not None:
        check_noise(surrogate, estimator, noise)
    return name


def resolve_first_layer(first_layer: str, train_mode: str) -> str:
    """The first layer's kind for ``train_mode``: ``"auto"`` is ``"binary"`` (every weight of
    the plain network :math:`\\pm 1`; the input code is already bits).

    Raises a :class:`ValueError` when ``"real"`` is asked of a mode that cannot train it
    (only :data:`REAL_FIRST_LAYER_MODES` can).

    Examples
    --------
    >>> from sklearn_bnn.nn.estimators import resolve_first_layer
    >>> resolve_first_layer("auto", "binary+st"), resolve_first_layer("real", "binary+st")
    ('binary', 'real')
    >>> resolve_first_layer("real", "sampled+psa")
    Traceback (most recent call last):
    ...
    ValueError: first_layer='real' trains with ...
    """
    if first_layer == "auto":
        return "binary"
    if first_layer == "real" and train_mode not in REAL_FIRST_LAYER_MODES:
        raise ValueError(
            f"first_layer='real' trains with the training modes {REAL_FIRST_LAYER_MODES!r} "
            f"(surrogate+gradient_estimator); got {train_mode!r}, whose estimator is defined "
            "for binary weights only. Use first_layer='binary' or 'auto'."
        )
    return first_layer


#: Surrogates the classifier offers (its ``surrogate`` parameter): every entry of
#: :data:`~sklearn_bnn.nn.spec.SURROGATE_SPECS`, mapped to its name.
SURROGATES: Registry[str] = Registry("surrogate", {name: name for name in SURROGATE_SPECS})

r"""The stochastic binary dense layer.

A layer holds the *means* :math:`M_{ij} = E[S_{ij}] \in [-1, 1]` of independent binary
weights :math:`S_{ij} \in \{-1, +1\}` (so :math:`P(S_{ij} = +1) = (1 + M_{ij})/2`) and a real
bias :math:`b`.  The field uses the :math:`1/\sqrt{N}` convention of [SGL20]_:

.. math::  h = \frac{1}{\sqrt{N_\text{in}}} S x + b.

**Parameterisation.**  The learned parameter *is* the mean :math:`M`, kept in
:math:`[-1, 1]` by projection after every optimiser step (:meth:`project_`).  This is the
mirror-descent view of latent weights in [SY21]_ with uniform :math:`F_w`: projected SGD on
:math:`E[w]`, i.e. BinaryConnect's latent clipping.  We prefer it to a smooth map such as
:math:`M = \tanh\theta` because the critical initialisation puts means near :math:`\pm 1`,
where :math:`\tanh' = 1 - M^2` would all but freeze learning (at :math:`M^2 = 0.99` a step on
:math:`\theta` moves :math:`M` a hundred times less than a step on :math:`M`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .noise import _pm1, _sign

__all__ = [
    "RealLinear",
    "StochasticBinaryLinear",
]


class StochasticBinaryLinear(nn.Module):
    r"""Dense layer with :math:`\pm 1` weights of learned means and a real bias.

    Parameters
    ----------
    in_features, out_features : int
        Fan-in :math:`N_\text{in}` and fan-out.

    Attributes
    ----------
    weight : torch.nn.Parameter of shape (out_features, in_features)
        The weight means :math:`M \in [-1, 1]`.
    bias : torch.nn.Parameter of shape (out_features,)
        Real bias :math:`b`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.layers import StochasticBinaryLinear
    >>> layer = StochasticBinaryLinear(4, 3)
    >>> with torch.no_grad():
    ...     _ = layer.weight.fill_(0.5)
    >>> mean, var = layer.moments(torch.ones(1, 4), torch.ones(1, 4))
    >>> mean.shape, float(var[0, 0])
    (torch.Size([1, 3]), 0.75)
    """

    #: Whether the deployed layer keeps real weights (see :class:`RealLinear`).
    real = False

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = 1.0 / math.sqrt(in_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    def moments(self, mean: torch.Tensor, sq_mean: torch.Tensor | None = None):
        r"""Mean and variance of the field under the CLT (S1 of [SGL20]_).

        With independent inputs of mean :math:`\bar x_j` and second moment
        :math:`E[x_j^2]` (``sq_mean``; ``None`` means :math:`x_j = \pm 1`, so 1),

        .. math::
            \bar h_i = \tfrac{1}{\sqrt N}\textstyle\sum_j M_{ij}\bar x_j + b_i, \qquad
            \Sigma_{ii} = \tfrac1N \textstyle\sum_j \big(E[x_j^2] - M_{ij}^2 \bar x_j^2\big).

        For a real input (first layer) :math:`E[x_j^2] = \bar x_j^2 = x_j^2` and
        :math:`\Sigma = \tfrac1N\sum_j (1 - M_{ij}^2)x_j^2`; for :math:`\pm 1` units
        :math:`\Sigma = 1 - \tfrac1N\sum_j M_{ij}^2 \bar x_j^2`.  Two matrix products;
        the gradient flows through both (unlike expectation backpropagation, [SGL20]_).
        Forward and backward are written out in :class:`FieldMoments` (fewer passes over
        memory than autograd's, same formulas).
        """
        return FieldMoments.apply(mean, sq_mean, self.weight, self.bias, self.scale)

    def binary_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The 1-bit layer: weight signs and one real offset per unit.

        The surrogate's mean field is :math:`\bar h_i = \sum_j M_{ij} x_j/\sqrt N + b_i`.
        Replacing :math:`M_{ij}` by :math:`\alpha_i \operatorname{sign}(M_{ij})` with
        :math:`\alpha_i = \operatorname{mean}_j |M_{ij}|` (the scaling of XNOR-Net,
        Rastegari et al. 2016) and dividing by :math:`\alpha_i > 0`, which leaves the sign
        unit unchanged, gives binary weights and one real offset per unit,
        :math:`\theta_i = b_i/\alpha_i`.  This is the single definition of the 1-bit
        layer: :meth:`binary_forward` and the exporter
        (:mod:`sklearn_bnn.deploy.packed`) both read it.

        Returns
        -------
        signs : torch.Tensor of bool, shape (out_features, in_features)
            :math:`\operatorname{sign}(M_{ij}) = +1` where ``True``; ``sign(0) = +1``.
        offset : torch.Tensor of shape (out_features,)
            :math:`\theta_i = b_i / \alpha_i` (:math:`\alpha_i` clamped at 1e-12).
        """
        offset, _ = self._binary_offset()
        return self.sign_matrix() > 0, offset

    def _binary_offset(self) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The offset :math:`\theta` of :meth:`binary_parameters` and the unclamped
        :math:`\alpha_i = \operatorname{mean}_j |M_{ij}|` it is computed from (which the
        fused straight-through backward, :class:`~sklearn_bnn.nn.estimators.BinaryST`,
        differentiates).  A subclass that redefines :meth:`binary_parameters` redefines
        this too."""
        alpha = self.weight.abs().mean(dim=1)
        return self.bias / alpha.clamp_min(1e-12), alpha

    def sign_matrix(self) -> torch.Tensor:
        r"""The signs of :meth:`binary_parameters` as :math:`\pm 1` of the weights' dtype
        (no gradient): the matrix the 1-bit forward passes multiply by."""
        return _sign(self.weight)

    def binary_field(self, dot: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        r"""Field :math:`d_i/\sqrt N + \theta_i` of the dot product ``dot`` :math:`= d_i`.

        :math:`d_i = \sum_j \operatorname{sign}(M_{ij}) x_j`.  Kept apart so that the
        exporter evaluates the very same floating-point operations when it folds
        :math:`\theta_i` into a threshold on the dot product.  Must stay non-decreasing in
        ``dot``.
        """
        return dot * self.scale + offset

    def field(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        r"""Field :math:`W x/\sqrt N + b` of the weights ``weight`` (default: the layer's
        parameter, the means :math:`M`, or the real weights of :class:`RealLinear`).

        The one place the field of given weights is written: sampled weights
        (:meth:`sample_forward`, the estimators' sampled paths) pass their draw.  Computed
        as :meth:`binary_field` of the dot product, so that every pass rounds alike.
        """
        return self.binary_field(F.linear(x, self.weight if weight is None else weight), self.bias)

    def binary_forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""Field of the 1-bit network, up to a positive per-unit factor.

        :math:`\sum_j \operatorname{sign}(M_{ij}) x_j/\sqrt N + b_i/\alpha_i`: binary weights
        and one real threshold per unit (see :meth:`binary_parameters`).
        """
        offset, _ = self._binary_offset()
        return self.binary_field(F.linear(x, self.sign_matrix()), offset)

    def sample_forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        r"""Field with one Bernoulli draw :math:`S \sim P(S=+1) = (1+M)/2` of the weights."""
        m = self.weight
        u = torch.rand(m.shape, generator=generator, device=m.device, dtype=m.dtype)
        return self.field(x, _pm1(2.0 * u < 1.0 + m, m.dtype))

    @torch.no_grad()
    def project_(self) -> None:
        """Project the means back onto :math:`[-1, 1]` (in place)."""
        self.weight.clamp_(-1.0, 1.0)


class RealLinear(StochasticBinaryLinear):
    r"""A first layer with real weights and :math:`\pm 1` units (``first_layer="real"``).

    The common practice of binary networks (XNOR-Net, Bi-Real Net) keeps the layer that
    reads the real input at higher precision: :math:`h = W x/\sqrt N + b` with real
    :math:`W \in [-1, 1]` (the same parameter, projection and initialisation as the means
    of :class:`StochasticBinaryLinear`, now used as they are) and the units that follow
    are the usual noisy sign units.  Nothing about the weights is random, so the field is
    deterministic: :meth:`moments` returns variance 0 and every forward pass
    (:meth:`binary_forward`, :meth:`sample_forward`) computes the same field.  The deployed
    network keeps this layer as a float32 matrix and a threshold per unit
    (:mod:`sklearn_bnn.deploy.packed`); every later layer stays 1-bit.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.layers import RealLinear
    >>> layer = RealLinear(2, 1)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[0.5, -0.25]]))
    >>> x = torch.tensor([[1.0, 2.0]])
    >>> layer.binary_forward(x), layer.moments(x, x * x)[1]
    (tensor([[0.]], grad_fn=<AddBackward0>), tensor([[0.]]))
    """

    #: The deployed layer is real: :meth:`binary_parameters` returns the weights themselves.
    real = True

    def moments(self, mean: torch.Tensor, sq_mean: torch.Tensor | None = None):
        r"""Mean :math:`W\bar x/\sqrt N + b` and variance 0 of the (deterministic) field."""
        hbar = self.field(mean)
        return hbar, torch.zeros_like(hbar)

    def binary_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The deployed layer: the real weights and the bias (no folding, no rescaling)."""
        return self.weight, self.bias

    def binary_forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""Field of the deployed layer: the dot product :math:`Wx` summed in float64 and
        rounded once to the network's dtype, then :meth:`binary_field`, as the exported
        network computes it (:mod:`sklearn_bnn.deploy.packed`)."""
        dot = F.linear(x.double(), self.weight.double()).to(x.dtype)
        return self.binary_field(dot, self.bias)

    def sample_forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        r"""Field :math:`W x/\sqrt N + b` (nothing to sample)."""
        return self.field(x)


class FieldMoments(torch.autograd.Function):
    r"""CLT moments of a layer's field, forward and backward side by side.

    Forward, with :math:`s = 1/\sqrt{N_\text{in}}`, :math:`T = s^2\sum_j E[x_j^2]`
    (:math:`T = 1` for :math:`\pm 1` inputs) and :math:`q = \bar x^2` elementwise,

    .. math::
        \bar h = s\,\bar x M^\top + b, \qquad
        \Sigma = \max\big(T - s^2\, q\,(M^2)^\top,\ 0\big).

    Backward, for upstream gradients :math:`G_h` and :math:`G_\Sigma` (the latter zeroed
    where the clamp was active, :math:`T - s^2 q (M^2)^\top < 0`, as ``clamp_min`` does),

    .. math::
        \nabla_{\bar x} = s\,G_h M - 2 s^2\,\bar x \odot (G_\Sigma M^2), \qquad
        \nabla_M = s\,G_h^\top \bar x - 2 s^2\, M \odot (G_\Sigma^\top q), \qquad
        \nabla_b = \textstyle\sum_b G_h, \qquad
        \nabla_{E[x^2]} = s^2 \textstyle\sum_i G_{\Sigma, i}.

    Six matrix products (two forward, four backward); the backward's scalar factors ride
    in the products' epilogue (``addmm_``), the forward works in place and the clamp mask
    is kept as booleans, so a layer makes about half the elementwise passes over memory of
    autograd's op-by-op graph and keeps fewer tensors for the backward.  The forward
    values are bit for bit those of the formulas written with ``F.linear``; the gradients
    agree to round-off.  Inputs may have leading batch dimensions.
    """

    @staticmethod
    def forward(ctx, mean, sq_mean, weight, bias, scale):
        # The same ops in the same order as the formulas written with F.linear (so the
        # values are bit for bit those of autograd's version), in place where possible.
        x = mean.reshape(-1, mean.shape[-1])
        s2 = scale**2
        hbar = torch.mm(x, weight.t()).mul_(scale).add_(bias)
        q = x * x
        w2 = weight * weight
        var = torch.mm(q, w2.t()).mul_(s2).neg_()
        if sq_mean is None:
            var.add_(1.0)
        else:
            var.add_(sq_mean.reshape(-1, sq_mean.shape[-1]).sum(dim=-1, keepdim=True) * s2)
        # Clamp round-off only; the epsilon that keeps erf(h / sqrt(2 var)) finite lives in
        # the surrogate, which knows whether the neuron adds noise variance of its own.
        clamped = var < 0
        var.clamp_min_(0.0)
        ctx.save_for_backward(x, q, weight, w2, clamped)
        ctx.scale = scale
        ctx.in_shape = mean.shape
        ctx.sq_shape = None if sq_mean is None else sq_mean.shape
        out = (*mean.shape[:-1], weight.shape[0])
        return hbar.reshape(out), var.reshape(out)

    @staticmethod
    def backward(ctx, g_h, g_v):
        x, q, weight, w2, clamped = ctx.saved_tensors
        s, s2 = ctx.scale, ctx.scale**2
        g_h = g_h.reshape(-1, g_h.shape[-1])
        g_v = g_v.reshape(-1, g_v.shape[-1]).masked_fill(clamped, 0.0)
        need = ctx.needs_input_grad
        grad_mean = grad_sq = grad_w = grad_b = None
        if need[0]:
            grad_mean = torch.mm(g_v, w2).mul_(x).addmm_(g_h, weight, beta=-2.0 * s2, alpha=s)
            grad_mean = grad_mean.reshape(ctx.in_shape)
        if need[1]:
            grad_sq = (g_v.sum(dim=-1, keepdim=True) * s2).expand(-1, x.shape[-1])
            grad_sq = grad_sq.reshape(ctx.sq_shape)
        if need[2]:
            grad_w = torch.mm(g_v.t(), q).mul_(weight).addmm_(g_h.t(), x, beta=-2.0 * s2, alpha=s)
        if need[3]:
            grad_b = g_h.sum(dim=0)
        return grad_mean, grad_sq, grad_w, grad_b, None

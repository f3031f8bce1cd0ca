r"""Exact expected loss of a tiny stochastic binary network, and its gradient, by enumeration.

The ground truth against which every gradient estimator is tested [SYF20]_.  For one
example :math:`x^0` the network is a Markov chain over layers: the weight rows
:math:`S^k_{j\cdot}` are independent of each other and each one is used once, so given the
layer below the units of layer :math:`k` are independent with

.. math::
    P(x^k_j = +1 \mid x^{k-1}) = \sum_{w \in \{\pm1\}^{N_{k-1}}}
        \Big(\prod_i \tfrac{1 + w_i M^k_{ji}}{2}\Big)\,
        F\big(\tfrac{1}{\sqrt{N_{k-1}}} w \cdot x^{k-1} + b^k_j\big),

(the weight states of one row are enumerated), and

.. math::
    E[L] = \sum_{x^L} P(x^L \mid x^0)\, L(\text{head}(x^L), y), \qquad
    P(x^k \mid x^0) = \sum_{x^{k-1}} P(x^{k-1} \mid x^0) \prod_j P(x^k_j \mid x^{k-1}),

a product of :math:`2^{N_{k-1}} \times 2^{N_k}` transition matrices.  Everything is float64
and differentiable, so ``torch.autograd`` gives the exact gradient with respect to the
weight means, the biases and the real head.  Shared weights across a batch change nothing:
the expected loss of a batch is the mean of per-example expectations.

Cost grows as :math:`2^{N_{k-1}} \cdot 2^{N_k}` and :math:`2^{N_{k-1}}` weight states per
row; widths above about 10 raise a :class:`ValueError`.

References
----------
.. [SYF20] A. Shekhovtsov, V. Yanush, B. Flach. Path sample-analytic gradient estimators
   for stochastic binary networks. NeurIPS 2020, arXiv:2006.03143.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

__all__ = [
    "MAX_ENUMERATION",
    "all_states",
    "cross_entropy_loss",
    "exact_gradient",
    "expected_loss",
    "expected_sample_loss",
    "logistic_loss",
    "make_toy",
    "state_distribution",
]

#: Largest number of enumerated configurations in one tensor (rows x states x units).
MAX_ENUMERATION = 2**26

SampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def all_states(n: int, dtype=torch.float64, device=None) -> torch.Tensor:
    r"""All :math:`2^n` vectors of :math:`\pm 1`, shape ``(2**n, n)`` (first unit slowest).

    Examples
    --------
    >>> from sklearn_bnn.nn.exact import all_states
    >>> all_states(2)
    tensor([[-1., -1.],
            [-1.,  1.],
            [ 1., -1.],
            [ 1.,  1.]], dtype=torch.float64)
    """
    codes = torch.arange(2**n, device=device)
    bits = (codes[:, None] >> torch.arange(n - 1, -1, -1, device=device)) & 1
    return (2 * bits - 1).to(dtype)


def cross_entropy_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Per-sample cross-entropy for logits of shape ``(n_samples, ..., n_classes)``.

    :math:`\log\sum_c e^{z_c} - z_y`, written out: on CPU it is several times faster than
    ``F.cross_entropy`` for the many short rows of PSA's flipped logits.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.exact import cross_entropy_loss
    >>> cross_entropy_loss(torch.tensor([[2.0, 0.0], [0.0, 0.0]]), torch.tensor([0, 1]))
    tensor([0.1269, 0.6931])
    """
    top = logits.detach().amax(-1, keepdim=True)
    lse = (logits - top).exp().sum(-1).log() + top.squeeze(-1)
    index = y.reshape(y.shape[0], *([1] * (logits.dim() - 1)))
    index = index.expand(*logits.shape[:-1], 1)
    return lse - logits.gather(-1, index).squeeze(-1)


def _check_size(what: str, n: int) -> None:
    if n > MAX_ENUMERATION:
        raise ValueError(
            f"exact enumeration of this network needs {n} {what}, more than "
            f"MAX_ENUMERATION={MAX_ENUMERATION}: use layers of at most about 10 units "
            "and few input features."
        )


def _unit_on_probability(layer, noise, inputs: torch.Tensor) -> torch.Tensor:
    r""":math:`P(x_j = +1 \mid \text{input})` for each row of ``inputs``, weights summed out.

    ``inputs`` has shape ``(n_rows, N_in)`` (real features or :math:`\pm1` states); returns
    ``(n_rows, N_out)``.
    """
    m = layer.weight.to(torch.float64)
    b = layer.bias.to(torch.float64)
    n_out, n_in = m.shape
    _check_size("weight configurations", inputs.shape[0] * 2**n_in * n_out)
    w = all_states(n_in, device=m.device)  # (K, N_in)
    # P(row j = w) = prod_i (1 + w_i M_ji)/2                     -> (N_out, K)
    p_row = ((1.0 + w[None, :, :] * m[:, None, :]) / 2.0).prod(-1)
    field = inputs @ w.T * layer.scale  # (n_rows, K)
    on = noise.cdf(field[:, None, :] + b[None, :, None])  # (n_rows, N_out, K)
    return (on * p_row[None]).sum(-1)


def _state_probability(on: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """``prod_j P(x_j = s_j)`` for every state ``s``: ``(n_rows, N)`` x ``(2**N, N)``."""
    pick = torch.where(states[None] > 0, on[:, None, :], 1.0 - on[:, None, :])
    return pick.prod(-1)


def state_distribution(net, x: torch.Tensor) -> torch.Tensor:
    r""":math:`P(x^L = s \mid x^0)` for every state ``s`` of the last binary layer.

    Returns a float64 tensor of shape ``(n_samples, 2**N_L)``; the states are ordered as
    :func:`all_states`.

    Examples
    --------
    A freshly built network has means and biases 0, so every unit is a fair coin:

    >>> import torch
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.exact import state_distribution
    >>> net = BinaryNetwork(3, (2,), 2)
    >>> state_distribution(net, torch.ones(1, 3))
    tensor([[0.2500, 0.2500, 0.2500, 0.2500]], dtype=torch.float64, grad_fn=<ProdBackward1>)
    """
    x = x.to(torch.float64)
    first, *rest = net.layers
    for layer in net.layers:
        _check_size("layer states", 2 ** layer.out_features * max(layer.in_features, 1))
    states = all_states(first.out_features, device=x.device)
    dist = _state_probability(_unit_on_probability(first, net.noise, x), states)
    for layer in rest:
        # transition matrix T[s_in, s_out]
        on = _unit_on_probability(layer, net.noise, states)
        states = all_states(layer.out_features, device=x.device)
        dist = dist @ _state_probability(on, states)
    return dist


def expected_sample_loss(
    net, x: torch.Tensor, y: torch.Tensor, sample_loss: SampleLoss | None = None
):
    r"""Exact :math:`E[L_b]` for every example ``b``, float64, shape ``(n_samples,)``.

    Parameters
    ----------
    net : BinaryNetwork
        A tiny network (layers of at most about 10 units).
    x : tensor of shape (n_samples, n_features)
    y : tensor of shape (n_samples,)
        Targets, passed to ``sample_loss``.
    sample_loss : callable, default=cross-entropy
        ``sample_loss(logits, y)`` with logits of shape ``(n_samples, n_states, n_outputs)``
        returns per-sample losses of shape ``(n_samples, n_states)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.exact import expected_sample_loss
    >>> net = BinaryNetwork(2, (3,), 2, noise="logistic").double()
    >>> expected_sample_loss(net, torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])).shape
    torch.Size([4])
    """
    sample_loss = cross_entropy_loss if sample_loss is None else sample_loss
    dist = state_distribution(net, x)
    states = all_states(net.layers[-1].out_features, device=dist.device)
    w, b = net.head.weight.to(torch.float64), net.head.bias.to(torch.float64)
    logits = F.linear(states, w, b)  # (n_states, n_outputs)
    losses = sample_loss(logits.expand(x.shape[0], *logits.shape), y)
    return (dist * losses).sum(-1)


def expected_loss(net, x, y, sample_loss: SampleLoss | None = None) -> torch.Tensor:
    r"""Exact expected loss averaged over the examples (a float64 scalar).

    Examples
    --------
    With means and biases 0 and a zero head every logit is 0, so the loss is
    :math:`\log 2`:

    >>> import torch
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.exact import expected_loss
    >>> net = BinaryNetwork(3, (2,), 2)
    >>> _ = torch.nn.init.zeros_(net.head.weight), torch.nn.init.zeros_(net.head.bias)
    >>> expected_loss(net, torch.randn(4, 3), torch.tensor([0, 1, 1, 0]))
    tensor(0.6931, dtype=torch.float64, grad_fn=<MeanBackward0>)
    """
    return expected_sample_loss(net, x, y, sample_loss).mean()


def exact_gradient(net, x, y, sample_loss: SampleLoss | None = None) -> dict[str, torch.Tensor]:
    """Exact gradient of :func:`expected_loss` for every parameter, by name (float64).

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> from sklearn_bnn.nn.exact import exact_gradient
    >>> net = BinaryNetwork(2, (3, 3), 2, noise="gaussian").double()
    >>> x, y = torch.randn(5, 2, dtype=torch.float64), torch.zeros(5, dtype=torch.long)
    >>> grads = exact_gradient(net, x, y)
    >>> sorted(grads)
    ['head.bias', 'head.weight', 'layers.0.bias', 'layers.0.weight', 'layers.1.bias',
     'layers.1.weight']
    """
    names, params = zip(*net.named_parameters())
    loss = expected_loss(net, x, y, sample_loss)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return {
        n: (torch.zeros_like(p, dtype=torch.float64) if g is None else g.to(torch.float64))
        for n, p, g in zip(names, params, grads)
    }


def make_toy(n_samples: int = 200, generator: torch.Generator | None = None):
    r"""The 2-D toy problem of [SYF20]_: float64 ``x`` of shape ``(n, 2)``, ``y`` in {-1, +1}.

    Class +1 is uniform on :math:`[-\pi/2, \pi/2] \times [0, 1]`; class -1 uniform on the
    region :math:`y < \cos x` of that rectangle (by rejection).  Half the points each.

    Examples
    --------
    >>> from sklearn_bnn.nn.exact import make_toy
    >>> x, y = make_toy(10)
    >>> x.shape, int(y.sum())
    (torch.Size([10, 2]), 0)
    """
    half = n_samples // 2

    def rect(n):
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        return torch.stack([(u[:, 0] - 0.5) * torch.pi, u[:, 1]], 1)

    pos = rect(half)
    neg = torch.empty(0, 2, dtype=torch.float64)
    while len(neg) < n_samples - half:
        cand = rect(2 * (n_samples - half))
        neg = torch.cat([neg, cand[cand[:, 1] < torch.cos(cand[:, 0])]])
    x = torch.cat([pos, neg[: n_samples - half]])
    y = torch.cat([torch.ones(half), -torch.ones(n_samples - half)]).to(torch.float64)
    return x, y


def logistic_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Per-sample :math:`\log(1 + e^{-y z})` for one logit, ``y`` in {-1, +1}.

    Logits have shape ``(n, ..., 1)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.exact import logistic_loss
    >>> logistic_loss(torch.tensor([[0.0], [2.0]]), torch.tensor([1.0, -1.0]))
    tensor([0.6931, 2.1269])
    """
    target = y.reshape(y.shape[0], *([1] * (logits.dim() - 2)))
    return F.softplus(-target * logits[..., 0])

r"""The residual 1-bit network: binary blocks on a real residual stream.

Every hidden layer after the first is a :math:`\pm 1`-weight layer reading :math:`\pm 1`
units, as in :class:`~sklearn_bnn.nn.network.BinaryNetwork`; what changes is what the
units are the signs *of*.  A real stream :math:`h^l \in \mathbb R^N` runs through the
network and each block adds its binary layer's output to it (the real-valued shortcut of
Bi-Real Net, Liu et al. 2018, and ReActNet, Liu et al. 2020):

.. math::
    h^1 = \tfrac{1}{\sqrt{N_0}} W^0 x + b^0, \qquad
    h^{l+1} = h^l + \big(d^l \odot \gamma^l s\big) + \beta^l, \qquad
    d^l = \operatorname{sign}(M^l)\,\operatorname{sign}(h^l),

with :math:`s = 1/\sqrt N`, the integer dot product :math:`d^l` (an XNOR-popcount in the
deployed network), a real per-unit branch scale :math:`\gamma^l` and offset
:math:`\beta^l` (the block's bias); the head reads :math:`\operatorname{sign}(h^L)`.  The
first layer keeps real weights (``first_layer="real"`` of ``BinaryNetwork``).  The deployed
network is exact: an integer popcount, then real multiply-adds in a fixed order
(:mod:`sklearn_bnn.deploy.packed_residual` reproduces them bit for bit).

Why: the plain 1-bit network contracts input correlations by :math:`\le 0.64` a layer and
has no initialisation that changes it (``docs/user_guide/depth.rst``); the residual stream
turns that geometric decay into a power law for any branch scale, and a depth-scaled branch
:math:`\gamma = \alpha_L`, :math:`\alpha_L^2 = \kappa q^1/(L-1)`, makes the maps depth
independent (:mod:`sklearn_bnn.meanfield.residual`).

Training is the package's default for the 1-bit network: the forward pass *is* the deployed
network, the backward pass is the noise-matched straight-through estimator [SY21]_ (identity
on the weight means, :math:`\phi'(h)` through each sign unit):
:class:`ResidualStraightThrough`, training mode :data:`TRAIN_MODE`.

References
----------
.. [SY21] A. Shekhovtsov, V. Yanush. Reintroducing straight-through estimators as
   principled methods for stochastic binary networks. GCPR 2021, arXiv:2006.06880.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .layers import RealLinear, StochasticBinaryLinear
from .noise import NoiseModel, _pm1, _sign, get_noise

__all__ = [
    "MODES",
    "TRAIN_MODE",
    "ResidualBinaryNetwork",
    "ResidualStraightThrough",
    "initialize_residual",
]

#: Forward passes of :meth:`ResidualBinaryNetwork.forward`.
MODES = ("binary", "sampled")
#: Name of the straight-through training mode (a key of
#: :data:`sklearn_bnn.nn.estimators.TRAINING`).
TRAIN_MODE = "residual+st"


class ResidualBinaryNetwork(nn.Module):
    r"""Binary blocks with real residual additions, a real first layer and a real head.

    Same interface as :class:`~sklearn_bnn.nn.network.BinaryNetwork` (``forward(x, mode)``,
    ``features``, ``head``, ``layers``, ``project_()``, ``weight_signs()``); see the module
    docstring for the network.

    Parameters
    ----------
    n_features : int
        Number of input features.
    hidden_layer_sizes : sequence of int
        Width of each hidden layer; all equal (the stream's width).  The first is the real
        layer, each further one a binary block.
    n_outputs : int
        Number of logits.
    noise : str or NoiseModel, default="gaussian"
        Neuron noise: its mean is the straight-through proxy, and ``"sampled"`` draws it.
    slope : float, default=1.0
        Accepted for the estimator's interface; the 1-bit forward pass has no slope.
    first_layer : {"real"}, default="real"
        The layer that reads the input (the stream needs a real first field).
    branch_scale : float >= 0, default=1.0
        Initial :math:`\gamma^l_i` of every block (1: the Bi-Real / batch-norm practice;
        :func:`initialize_residual` with ``init="critical"`` sets the depth-scaled value).

    Attributes
    ----------
    layers : torch.nn.ModuleList
        :class:`~sklearn_bnn.nn.layers.RealLinear`, then one
        :class:`~sklearn_bnn.nn.layers.StochasticBinaryLinear` per block (its bias is
        :math:`\beta^l`).
    branch_scale : torch.nn.Parameter of shape (n_blocks, width)
        :math:`\gamma^l`.
    head : torch.nn.Linear

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.residual import ResidualBinaryNetwork
    >>> net = ResidualBinaryNetwork(4, (8, 8, 8), 3)
    >>> x = torch.randn(5, 4)
    >>> tuple(net(x, "binary").shape), net.features(x, "binary").abs().unique()
    ((5, 3), tensor([1.]))
    >>> net(x, "deterministic")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    ValueError: mode='deterministic' is not a forward pass of ResidualBinaryNetwork. Valid
    values: 'binary', 'sampled'.
    """

    def __init__(
        self,
        n_features: int,
        hidden_layer_sizes,
        n_outputs: int,
        noise: str | NoiseModel = "gaussian",
        slope: float = 1.0,
        first_layer: str = "real",
        branch_scale: float = 1.0,
    ) -> None:
        super().__init__()
        sizes = [int(v) for v in hidden_layer_sizes]
        if not sizes or len(set(sizes)) != 1:
            raise ValueError(
                f"hidden_layer_sizes={tuple(sizes)!r}: a ResidualBinaryNetwork needs at least "
                "one hidden layer and all of the same width (the residual stream's)."
            )
        if first_layer != "real":
            raise ValueError(
                f"first_layer={first_layer!r} is not valid for a ResidualBinaryNetwork. Valid "
                "values: 'real' (the stream starts from a real field)."
            )
        branch_scale = float(branch_scale)
        if not (branch_scale >= 0.0 and branch_scale < float("inf")):
            raise ValueError(f"branch_scale={branch_scale!r} must be a finite number >= 0.")
        width = sizes[0]
        self.noise = get_noise(noise)
        self.slope = float(slope)
        self.first_layer = first_layer
        self.layers = nn.ModuleList(
            [RealLinear(int(n_features), width)]
            + [StochasticBinaryLinear(width, width) for _ in sizes[1:]]
        )
        self.branch_scale = nn.Parameter(torch.full((len(sizes) - 1, width), branch_scale))
        self.head = nn.Linear(width, int(n_outputs))

    @property
    def n_blocks(self) -> int:
        """Number of binary blocks (hidden layers after the first)."""
        return len(self.layers) - 1

    def block_coef(self, block: int) -> torch.Tensor:
        r""":math:`\gamma^l s` of block ``block`` (0-based): the float32 numbers the deployed
        network multiplies the integer dot product by (the exporter stores these)."""
        return self.branch_scale[block] * self.layers[block + 1].scale

    def _block(self, h, block, unit, weights):
        """Block ``block`` (0-based): ``(h + dot * coef) + beta``, the deployed order
        (:mod:`sklearn_bnn.deploy.packed_residual`)."""
        layer = self.layers[block + 1]
        dot = F.linear(unit(h), weights(layer))
        return h + dot * self.block_coef(block) + layer.bias

    def _stream(self, x, unit, weights, first, record=None):
        h = first(x)
        for block in range(self.n_blocks):
            if record is not None:
                record.append(h)
            h = self._block(h, block, unit, weights)
        if record is not None:
            record.append(h)
        return unit(h)

    def streams(self, x: torch.Tensor) -> list[torch.Tensor]:
        r"""The residual stream :math:`h^1, \dots, h^L` of the ``"binary"`` forward pass."""
        record = []
        self._stream(x, _sign, _signs, self.layers[0].binary_forward, record)
        return record

    def features(self, x: torch.Tensor, mode: str = "binary", generator=None) -> torch.Tensor:
        r""":math:`\pm 1` units read by the head under forward pass ``mode``.

        ``"binary"``: the deployed network (:math:`\operatorname{sign}(M)`, sign units).
        ``"sampled"``: one draw of the stochastic network (Bernoulli weights
        :math:`P(S=+1) = (1+M)/2` shared by the batch, units
        :math:`\operatorname{sign}(h - Z)` drawn per example); for Monte-Carlo prediction.
        """
        if mode == "binary":
            return self._stream(x, _sign, _signs, self.layers[0].binary_forward)
        if mode == "sampled":
            def unit(h):
                return self.noise.sample(h, generator)

            def weights(layer):
                m = layer.weight
                u = torch.rand(m.shape, generator=generator, device=m.device, dtype=m.dtype)
                return _pm1(2.0 * u < 1.0 + m, m.dtype)

            return self._stream(x, unit, weights, self.layers[0].binary_forward)
        raise ValueError(
            f"mode={mode!r} is not a forward pass of ResidualBinaryNetwork. Valid values: "
            f"{', '.join(map(repr, MODES))}."
        )

    def forward(self, x: torch.Tensor, mode: str = "binary", generator=None) -> torch.Tensor:
        """Logits under forward pass ``mode`` (one of :data:`MODES`)."""
        return self.head(self.features(x, mode, generator))

    def straight_through(self, x: torch.Tensor, proxy: str = "matched", generator=None):
        r"""The ``"binary"`` features, with the straight-through backward.

        Forward: bit for bit :meth:`features` ``(x, "binary")`` (the additive ST terms are
        exact zeros).  Backward: :math:`\partial \operatorname{sign}(h)/\partial h :=
        \tilde\phi'(h)`, the proxy (``"matched"``: the noise's mean :math:`\phi`; or a key of
        :data:`~sklearn_bnn.nn.estimators.PROXIES`), and the identity on the weight means,
        :math:`w = \operatorname{sign}(M) + (M - \operatorname{stopgrad} M)` [SY21]_;
        exact autograd for the real first layer, the branch scales, offsets and head.
        """
        from .estimators import PROXIES  # estimators imports the network modules

        fn = PROXIES.lookup(proxy)
        noise = self.noise
        if fn is None:
            noise.dphi(x[:1, :0])  # the sign neuron has no proxy: raise early and clearly

        def unit(h):
            soft = noise.phi(h) if fn is None else fn(h, noise.scale)
            return _sign(h.detach()) + (soft - soft.detach())

        def weights(layer):
            m = layer.weight
            return _signs(layer) + (m - m.detach())

        return self._stream(x, unit, weights, self.layers[0].binary_forward)

    def project_(self) -> None:
        """Keep every weight mean in :math:`[-1, 1]` (call after each optimiser step)."""
        for layer in self.layers:
            layer.project_()

    def binary_weights(self) -> list[nn.Parameter]:
        """The weight means of the :math:`\\pm 1` blocks (the real first layer excluded)."""
        return [layer.weight for layer in self.layers[1:]]

    def weight_signs(self) -> list[torch.Tensor]:
        r"""The 1-bit weights :math:`\operatorname{sign}(M)` of each layer (as bools)."""
        return [layer.weight.detach() >= 0 for layer in self.layers]


def _signs(layer) -> torch.Tensor:
    return layer.sign_matrix()


@dataclass(frozen=True)
class ResidualStraightThrough:
    r"""Training objective of a :class:`ResidualBinaryNetwork`: ST on the deployed network.

    ``objective(net, x, y, sample_loss, generator=None) -> (loss, logits)``, the contract
    of :mod:`sklearn_bnn.nn.estimators`: the loss is the deployed network's mean loss, its
    ``backward()`` leaves the straight-through gradient
    (:meth:`ResidualBinaryNetwork.straight_through`).

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn.exact import cross_entropy_loss
    >>> from sklearn_bnn.nn.residual import ResidualBinaryNetwork, ResidualStraightThrough
    >>> net = ResidualBinaryNetwork(3, (4, 4), 2)
    >>> loss, logits = ResidualStraightThrough()(
    ...     net, torch.randn(6, 3), torch.zeros(6, dtype=torch.long), cross_entropy_loss)
    >>> loss.backward()
    >>> net.branch_scale.grad.shape, net.layers[1].weight.grad.shape
    (torch.Size([1, 4]), torch.Size([4, 4]))
    """

    proxy: str = "matched"
    #: Forward pass for validation losses: the deployed network.
    forward = "binary"

    def __call__(self, net, x, y, sample_loss, generator=None):
        logits = net.head(net.straight_through(x, self.proxy, generator))
        return sample_loss(logits, y).mean(), logits


@torch.no_grad()
def initialize_residual(net: ResidualBinaryNetwork, init, **critical) -> dict:
    r"""Initialise a :class:`ResidualBinaryNetwork` in place; returns a record.

    ``init="critical"`` draws what :func:`sklearn_bnn.meanfield.residual.critical_init`
    returns for this depth (keyword arguments ``critical`` go to it): means
    :math:`\pm\sqrt{\sigma_m^2}` everywhere, first-layer biases :math:`N(0, \sigma_b^2)`,
    block offsets :math:`\beta = 0` and the depth-scaled branch scale :math:`\gamma = \alpha_L`.
    Any other ``init`` (``"glorot"``, ``"he"``, ``"uniform"``, :math:`\sigma_m^2`, or a pair)
    draws the weights and biases of every layer as :func:`sklearn_bnn.init.initialize_network`
    does and leaves the branch scales at the constructor's ``branch_scale``.

    Examples
    --------
    >>> from sklearn_bnn.nn.residual import ResidualBinaryNetwork, initialize_residual
    >>> net = ResidualBinaryNetwork(4, (8,) * 5, 2)
    >>> record = initialize_residual(net, "critical")
    >>> sigma_m2 = record["critical"]["sigma_m2"]
    >>> round(record["alpha"] ** 2 * 4 / sigma_m2, 6), net.layers[1].bias.abs().max().item()
    (1.0, 0.0)
    """
    from ..init import initialize_network, two_point
    from ..meanfield.residual import critical_init

    if not (isinstance(init, str) and init == "critical"):
        record = initialize_network(net, init, "deterministic")
        record["alpha"] = float(net.branch_scale.abs().mean()) if net.n_blocks else None
        return record
    answer = critical_init(len(net.layers), **critical)
    record = {"init": init, "sigma_m2": [], "sigma_b2": [], "critical": answer.as_dict()}
    for i, layer in enumerate(net.layers):
        sb2 = answer.sigma_b2 if i == 0 else answer.sigma_beta2
        drawn = two_point(answer.sigma_m2, sb2)(layer.in_features, layer.out_features)
        layer.weight.copy_(drawn.weight)
        layer.bias.copy_(drawn.bias)
        record["sigma_m2"].append(drawn.sigma_m2)
        record["sigma_b2"].append(drawn.sigma_b2)
    net.branch_scale.fill_(answer.alpha)
    net.head.reset_parameters()
    record["alpha"] = answer.alpha
    return record

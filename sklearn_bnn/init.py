r"""Initialisation schemes for the weight means and biases of a binary network.

A scheme is one registry entry: given a layer's fan-in and fan-out it samples the weight
means :math:`M \in [-1, 1]` and biases, and reports the second moment
:math:`\sigma_m^2 = E[M^2]` and bias variance :math:`\sigma_b^2` it used.  In the mean-field
theory of [SGL20]_ only these two numbers matter for wide layers.

.. list-table::
   :header-rows: 1

   * - ``init``
     - weight means
     - :math:`\sigma_m^2`
   * - ``"glorot"``
     - :math:`U(-a, a)`, :math:`a = \sqrt{6/(n_\text{in}+n_\text{out})}`
     - :math:`2/(n_\text{in}+n_\text{out})`
   * - ``"he"``
     - :math:`N(0, 2/n_\text{in})`, clipped to :math:`[-1, 1]`
     - about :math:`2/n_\text{in}`
   * - ``"uniform"``
     - :math:`U(-1, 1)`
     - :math:`1/3`
   * - float ``s``
     - :math:`\pm\sqrt s` with random signs
     - :math:`s`
   * - ``(s, s_b)``
     - as ``s``, biases :math:`N(0, s_b)`
     - :math:`s`
   * - ``"critical"``
     - :math:`\pm\sqrt s` with random signs, biases :math:`N(0, s_b)`, ``(s, s_b)`` from
       :func:`~sklearn_bnn.meanfield.critical_init`
     - chosen by :func:`~sklearn_bnn.meanfield.critical_init`

Named schemes and plain floats start biases at zero.  Glorot and He are the float-network
rules applied to the means: in the :math:`1/\sqrt N` convention of this package they put
:math:`\sigma_m^2 \approx 0`, deep in the ordered phase, where [SGL20]_ shows deep binary
networks do not train.  The :math:`\pm\sqrt s` two-point law is the one with every
:math:`|M_{ij}|` equal, so that :math:`\operatorname{sign}(M)` is a fair coin and every
weight is equally far from flipping.

``"critical"`` asks the mean-field solver for the model of the training surrogate (its
:class:`~sklearn_bnn.nn.spec.SurrogateSpec` names it), the neuron noise and the depth of the
network (an :class:`InitContext`) and draws the two-point law with the second moment it
returns; every :class:`LayerInit` it draws carries the solver's answer in ``critical`` (a
:class:`~sklearn_bnn.meanfield.CriticalInit`), and :func:`initialize_network` records it under
``"critical"``.  It means something for every surrogate: where an exact :math:`\chi_1 = 1`
exists the solver goes there, otherwise it uses the documented depth-aware maximum of
:math:`\partial c^L/\partial c^0` of the surrogate's own map
(:mod:`sklearn_bnn.meanfield.critical`), the 1-bit network (``surrogate="binary"``, the
default) included.

A real first layer (``first_layer="real"``) draws the same two-point law: its weights are the
means themselves.  For the 1-bit network that is exactly the map the solver uses (the first
field's correlation, :math:`(c_0 q_0 + b)/(q_0 + b)` with :math:`b = \sigma_b^2/\sigma_m^2`,
is the same whether its weights are :math:`\operatorname{sign}(M)` or :math:`M`); for the
continuous surrogates the real layer's field is deterministic where the solver's first layer
adds the CLT variance :math:`(1 - \sigma_m^2) q_0`, a first-layer difference the solver does
not model.

References
----------
.. [SGL20] G. Stamatescu et al. Critical initialisation in continuous approximations of
   binary neural networks. ICLR 2020, arXiv:1902.00177.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._registry import Registry
from .nn.spec import MEANFIELD_MODELS, surrogate_spec

__all__ = [
    "DEFAULT_SIGMA_M2",
    "INITS",
    "InitContext",
    "LayerInit",
    "initialize_network",
    "resolve_init",
    "two_point",
]

#: Default second moment of the weight means (the estimator's ``init`` default).  Small
#: means keep :math:`\operatorname{sign}(M)` free to flip during training, which the 1-bit
#: network needs; large means train the surrogate as well but barely move the signs
#: (measured: :doc:`/benchmarks`).  Deep networks need ``init="critical"``.
DEFAULT_SIGMA_M2 = 0.05


@dataclass(frozen=True)
class InitContext:
    """What a scheme may need to know about the network it initialises.

    ``surrogate`` is the training surrogate name, ``noise`` the
    :class:`~sklearn_bnn.nn.noise.NoiseModel`, ``depth`` the number of binary layers,
    ``slope`` the slope of the S1 neuron (``BinaryNetwork.slope``).

    Examples
    --------
    >>> from sklearn_bnn.init import InitContext, resolve_init
    >>> from sklearn_bnn.nn import GaussianNoise
    >>> context = InitContext(surrogate="deterministic", noise=GaussianNoise(1.0), depth=10)
    >>> layer = resolve_init("critical", context)(fan_in=4, fan_out=3)
    >>> layer.critical.criterion, layer.critical.depth
    ('depth-aware max dc_L/dc_0', 10)
    """

    surrogate: str = "deterministic"
    noise: object = None
    depth: int = 1
    slope: float = 1.0


@dataclass(frozen=True)
class LayerInit:
    """What an init scheme drew for one layer.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.init import two_point
    >>> _ = torch.manual_seed(0)
    >>> layer = two_point(0.25)(fan_in=3, fan_out=2)
    >>> layer
    LayerInit(weight=tensor([[-0.5000,  0.5000, -0.5000],
            [-0.5000, -0.5000,  0.5000]]), bias=tensor([0., -0.]), sigma_m2=0.25, ...)
    """

    weight: torch.Tensor
    bias: torch.Tensor
    sigma_m2: float
    sigma_b2: float
    #: The solver's answer (a :class:`~sklearn_bnn.meanfield.CriticalInit`) for ``"critical"``.
    critical: object = None


def _random_signs(shape) -> torch.Tensor:
    return torch.where(torch.rand(shape) < 0.5, -1.0, 1.0)


def two_point(sigma_m2: float, sigma_b2: float = 0.0) -> Callable[[int, int], LayerInit]:
    r"""Means :math:`\pm\sqrt{\sigma_m^2}` with random signs, biases :math:`N(0, \sigma_b^2)`.

    Returns the per-layer drawing function ``draw(fan_in, fan_out) -> LayerInit``.

    Examples
    --------
    >>> from sklearn_bnn.init import two_point
    >>> layer = two_point(0.64, 0.01)(fan_in=100, fan_out=50)
    >>> layer.weight.shape, layer.weight.abs().unique(), layer.bias.shape
    (torch.Size([50, 100]), tensor([0.8000]), torch.Size([50]))
    """

    def draw(fan_in: int, fan_out: int) -> LayerInit:
        weight = math.sqrt(sigma_m2) * _random_signs((fan_out, fan_in))
        bias = math.sqrt(sigma_b2) * torch.randn(fan_out)
        return LayerInit(weight, bias, float(sigma_m2), float(sigma_b2))

    return draw


def _glorot(fan_in: int, fan_out: int) -> LayerInit:
    a = math.sqrt(6.0 / (fan_in + fan_out))
    weight = (2.0 * torch.rand(fan_out, fan_in) - 1.0) * min(a, 1.0)
    return LayerInit(weight, torch.zeros(fan_out), min(a, 1.0) ** 2 / 3.0, 0.0)


def _he(fan_in: int, fan_out: int) -> LayerInit:
    weight = (torch.randn(fan_out, fan_in) * math.sqrt(2.0 / fan_in)).clamp(-1.0, 1.0)
    return LayerInit(weight, torch.zeros(fan_out), float(weight.pow(2).mean()), 0.0)


def _uniform(fan_in: int, fan_out: int) -> LayerInit:
    weight = 2.0 * torch.rand(fan_out, fan_in) - 1.0
    return LayerInit(weight, torch.zeros(fan_out), 1.0 / 3.0, 0.0)


Draw = Callable[[int, int], LayerInit]

#: Training surrogates mapped to the mean-field model ``init="critical"`` asks (derived from
#: :data:`~sklearn_bnn.nn.spec.SURROGATE_SPECS`).
_MEANFIELD_SURROGATE = MEANFIELD_MODELS


def _critical(context: InitContext) -> Draw:
    """``init="critical"``: the mean-field solver's choice for this surrogate, noise and depth."""
    from . import meanfield  # numpy/scipy only; imported here to keep ``import`` light

    spec = surrogate_spec(context.surrogate)
    noise = context.noise
    name = getattr(noise, "name", "gaussian" if noise is None else noise)
    scale = getattr(noise, "scale", None)
    answer = meanfield.critical_init(
        spec.meanfield, name, depth=int(context.depth), noise_scale=scale, slope=context.slope
    )
    base = two_point(answer.sigma_m2, answer.sigma_b2)

    def draw(fan_in: int, fan_out: int) -> LayerInit:
        drawn = base(fan_in, fan_out)
        return LayerInit(drawn.weight, drawn.bias, drawn.sigma_m2, drawn.sigma_b2, answer)

    return draw


#: Named schemes: each entry maps an :class:`InitContext` to a per-layer drawing function
#: ``draw(fan_in, fan_out) -> LayerInit``.
INITS: Registry[Callable[[InitContext], Draw]] = Registry(
    "init",
    {
        "critical": _critical,
        "glorot": lambda ctx: _glorot,
        "he": lambda ctx: _he,
        "uniform": lambda ctx: _uniform,
    },
)


def resolve_init(init, context: InitContext | None = None) -> Draw:
    """Map an ``init`` value to a per-layer drawing function, validating it.

    Examples
    --------
    >>> from sklearn_bnn.init import resolve_init
    >>> layer = resolve_init(0.81)(fan_in=3, fan_out=2)
    >>> layer.weight.abs().unique()
    tensor([0.9000])
    >>> resolve_init((2.0, 0.0))
    Traceback (most recent call last):
    ...
    ValueError: init=(2.0, 0.0): sigma_m^2 must lie in [0, 1] (the means live in [-1, 1]) ...
    """
    if isinstance(init, str):
        return INITS.lookup(init)(context or InitContext())
    if isinstance(init, numbers.Real) and not isinstance(init, bool):
        pair = (float(init), 0.0)
    elif (
        isinstance(init, tuple | list)
        and len(init) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in init)
    ):
        pair = (float(init[0]), float(init[1]))
    else:
        raise ValueError(
            f"init={init!r} is not valid. Valid values: one of {sorted(INITS.names)}, "
            "a float sigma_m^2 in [0, 1], or a pair (sigma_m^2, sigma_b^2)."
        )
    if not (0.0 <= pair[0] <= 1.0 and pair[1] >= 0.0 and all(map(math.isfinite, pair))):
        raise ValueError(
            f"init={init!r}: sigma_m^2 must lie in [0, 1] (the means live in [-1, 1]) "
            "and sigma_b^2 must be >= 0."
        )
    return two_point(*pair)


@torch.no_grad()
def initialize_network(network, init, surrogate: str = "deterministic") -> dict:
    """Draw the means and biases of every binary layer of ``network`` in place.

    Uses torch's global random number generator (the estimator seeds it inside a forked
    RNG state).  Returns a record of what was chosen, per layer.

    Examples
    --------
    >>> from sklearn_bnn.init import initialize_network
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> net = BinaryNetwork(4, (8, 8), 2)
    >>> initialize_network(net, (0.5, 0.01))
    {'init': (0.5, 0.01), 'sigma_m2': [0.5, 0.5], 'sigma_b2': [0.01, 0.01], 'critical': None}
    >>> net.layers[0].weight.detach().abs().unique()
    tensor([0.7071])
    """
    context = InitContext(
        surrogate=surrogate,
        noise=network.noise,
        depth=len(network.layers),
        slope=network.slope,
    )
    draw = resolve_init(init, context)
    record = {"init": init, "sigma_m2": [], "sigma_b2": [], "critical": None}
    for layer in network.layers:
        drawn = draw(layer.in_features, layer.out_features)
        layer.weight.copy_(drawn.weight)
        layer.bias.copy_(drawn.bias)
        record["sigma_m2"].append(drawn.sigma_m2)
        record["sigma_b2"].append(drawn.sigma_b2)
        if drawn.critical is not None:
            record["critical"] = drawn.critical.as_dict()
    network.head.reset_parameters()
    return record

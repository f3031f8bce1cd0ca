"""The stochastic binary network: binary hidden layers and a real output head."""

from __future__ import annotations

import torch
from torch import nn

from .layers import RealLinear, StochasticBinaryLinear
from .noise import NoiseModel, get_noise
from .surrogates import FORWARDS

__all__ = [
    "FIRST_LAYERS",
    "BinaryNetwork",
]

#: The ``first_layer`` option: the class of the layer that reads the real input.
FIRST_LAYERS = {"binary": StochasticBinaryLinear, "real": RealLinear}


class BinaryNetwork(nn.Module):
    r"""A stochastic binary network with a real-valued output layer.

    Hidden layers are :class:`~sklearn_bnn.nn.layers.StochasticBinaryLinear` with
    :math:`\pm 1` units of neuron noise ``noise``; the input stays real (standardised
    features) and the head is an ordinary :class:`torch.nn.Linear` producing logits.

    Parameters
    ----------
    n_features : int
        Number of input features.
    hidden_layer_sizes : sequence of int
        Width of each binary hidden layer (at least one layer).
    n_outputs : int
        Number of logits.
    noise : str or NoiseModel, default="gaussian"
        Neuron noise (see :mod:`sklearn_bnn.nn.noise`).
    slope : float > 0, default=1.0
        Slope (inverse temperature) of the deterministic surrogate's neuron: S1 computes
        ``neuron_mean(noise, slope * hbar, var)``.  1 is the exact mean of the stochastic
        network; :data:`~sklearn_bnn.nn.surrogates.UNIT_SLOPE` (:math:`\sqrt{\pi/2}`) gives
        the sign neuron slope 1 in the normalised field, which is what makes deep S1
        networks train (see :func:`~sklearn_bnn.nn.surrogates.neuron_mean`).  The other
        forward passes ignore it.
    first_layer : {"binary", "real"}, default="binary"
        The layer that reads the input: binary weights like the others, or real weights
        (:class:`~sklearn_bnn.nn.layers.RealLinear`) followed by the same sign units.
    code_start : int or None, default=None
        The first input column from which every input value is exactly :math:`\pm 1`
        (the bits of a :class:`~sklearn_bnn.encoding.ThermometerEncoder`, which follow
        its ``keep_raw`` features), or ``None``.  The straight-through training of the
        1-bit network then computes those columns' product with the first layer's
        :math:`\pm 1` weights exactly in integers
        (:func:`sklearn_bnn._fast_step.pm1_linear`); on its fast path a value that is not
        :math:`\pm 1` there would be truncated to an integer, so the estimators set it
        from their fitted code only.

    Examples
    --------
    >>> import torch
    >>> from sklearn_bnn.nn import BinaryNetwork
    >>> net = BinaryNetwork(4, (8, 8), 3)
    >>> x = torch.randn(5, 4)
    >>> [tuple(net(x, mode).shape) for mode in ("deterministic", "binary", "sampled")]
    [(5, 3), (5, 3), (5, 3)]
    """

    def __init__(
        self,
        n_features: int,
        hidden_layer_sizes,
        n_outputs: int,
        noise: str | NoiseModel = "gaussian",
        slope: float = 1.0,
        first_layer: str = "binary",
        code_start: int | None = None,
    ) -> None:
        super().__init__()
        sizes = [int(n_features), *map(int, hidden_layer_sizes)]
        if code_start is not None and not 0 <= int(code_start) <= sizes[0]:
            raise ValueError(f"code_start={code_start!r} must lie in [0, n_features={sizes[0]}].")
        self.code_start = None if code_start is None else int(code_start)
        if len(sizes) < 2:
            raise ValueError("a BinaryNetwork needs at least one hidden layer")
        self.noise = get_noise(noise)
        slope = float(slope)
        if not (slope > 0.0 and slope < float("inf")):
            raise ValueError(f"slope={slope!r} must be a finite number > 0.")
        self.slope = slope
        if first_layer not in FIRST_LAYERS:
            raise ValueError(
                f"first_layer={first_layer!r} is not valid. Valid values: "
                f"{', '.join(map(repr, FIRST_LAYERS))}."
            )
        self.first_layer = first_layer
        classes = [FIRST_LAYERS[first_layer]] + [StochasticBinaryLinear] * (len(sizes) - 2)
        self.layers = nn.ModuleList(
            cls(n_in, n_out) for cls, n_in, n_out in zip(classes, sizes[:-1], sizes[1:])
        )
        self.head = nn.Linear(sizes[-1], int(n_outputs))

    def features(self, x: torch.Tensor, mode: str = "deterministic", generator=None):
        """Output of the last binary layer under forward pass ``mode``."""
        return FORWARDS[mode](self, x, generator)

    def forward(self, x: torch.Tensor, mode: str = "deterministic", generator=None):
        """Logits under forward pass ``mode`` (a key of
        :data:`~sklearn_bnn.nn.surrogates.FORWARDS`)."""
        return self.head(self.features(x, mode, generator))

    def project_(self) -> None:
        """Keep every weight mean in :math:`[-1, 1]` (call after each optimiser step)."""
        for layer in self.layers:
            layer.project_()

    def binary_weights(self) -> list[nn.Parameter]:
        """The weight means of the :math:`\\pm 1` layers (a real first layer excluded): the
        latent weights whose signs are the deployed 1-bit weights."""
        return [layer.weight for layer in self.layers if not isinstance(layer, RealLinear)]

    def weight_signs(self) -> list[torch.Tensor]:
        """The 1-bit weights :math:`\\operatorname{sign}(M)` of each binary layer (as bools)."""
        return [layer.weight.detach() >= 0 for layer in self.layers]

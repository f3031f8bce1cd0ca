"""The one bridge from a torch module to the torch-free artefact of :mod:`sklearn_bnn.deploy`.

The estimators' ``export_binary`` is the one public way to export (it adds what lives on
the estimator: the input code, the linear term, the classes, or the task with the head that
carries the regression target's scale); these functions read the torch module's part only
and stay private to the package.
"""

from __future__ import annotations

import numpy as np
import torch

from ..deploy.packed import (
    DEFAULT_BACKEND,
    InputCode,
    PackedBinaryNetwork,
    PackedLayer,
    _float_keys,
)
from ..deploy.packed_residual import PackedResidualNetwork

# The estimators' export_binary() is the public way in; these stay internal to the package.
__all__: list[str] = []


def pack_module(
    network,
    classes=None,
    *,
    input_offset: np.ndarray | None = None,
    input_scale: np.ndarray | None = None,
    code: InputCode | None = None,
    backend: str = DEFAULT_BACKEND,
    head: tuple[np.ndarray, np.ndarray] | None = None,
    task: str = "classification",
    target_ndim: int | None = None,
) -> PackedBinaryNetwork:
    r"""Export the 1-bit network of a :class:`~sklearn_bnn.nn.network.BinaryNetwork`.

    Reads each layer's :meth:`binary_parameters` and folds its offset into a threshold
    on the dot product by evaluating the layer's own ``binary_field`` with torch (see
    the docstring of :mod:`sklearn_bnn.deploy.packed`).

    Parameters
    ----------
    network : BinaryNetwork
        Any device and float dtype; hidden layers need fewer than :math:`2^{24}` inputs
        (float32) so that their :math:`\pm 1` dot products are exact.
    classes : array-like of shape (n_outputs,), default=None
        Labels for :meth:`predict`.
    input_offset, input_scale, code, backend, task, target_ndim
        As in the constructor.
    head : (weight, bias), default=None
        The head to export instead of the module's (a regressor's, with its target
        scaling folded in).

    Returns
    -------
    PackedBinaryNetwork

    Raises
    ------
    ValueError
        A parameter is NaN or infinite (the constructor's checks).
    """
    layers = []
    with torch.no_grad():
        for k, layer in enumerate(network.layers):
            signs, offset = layer.binary_parameters()
            if k == 0:
                threshold = _field_threshold(layer, offset)
            else:
                threshold = _popcount_threshold(layer, offset)
            shape = (layer.out_features, layer.in_features)
            if getattr(layer, "real", False):  # real weights: kept as they are
                weight = signs.detach().cpu().numpy().copy()
                layers.append(PackedLayer(shape, np.zeros(0, np.uint8), threshold, weight))
                continue
            flat = signs.detach().cpu().numpy().reshape(-1)
            layers.append(PackedLayer(shape, np.packbits(flat), threshold))
        head_weight, head_bias = _head(network.head) if head is None else head
    return PackedBinaryNetwork(
        layers,
        head_weight,
        head_bias,
        classes,
        input_offset=input_offset,
        input_scale=input_scale,
        code=code,
        backend=backend,
        task=task,
        target_ndim=target_ndim,
    )


def _head(head) -> tuple[np.ndarray, np.ndarray]:
    """A torch linear head's weight and bias as numpy copies."""
    with torch.no_grad():
        return head.weight.detach().cpu().numpy().copy(), head.bias.detach().cpu().numpy().copy()


def pack_residual(
    module,
    classes=None,
    code: InputCode | None = None,
    backend: str = DEFAULT_BACKEND,
    *,
    head: tuple[np.ndarray, np.ndarray] | None = None,
    task: str = "classification",
    target_ndim: int | None = None,
) -> PackedResidualNetwork:
    """Export a :class:`~sklearn_bnn.nn.residual.ResidualBinaryNetwork` (torch, float32).

    ``head``, ``task`` and ``target_ndim`` as in :func:`pack_module`; ValueError for a NaN
    or infinite parameter.
    """
    head_weight, head_bias = _head(module.head) if head is None else head
    with torch.no_grad():
        first = module.layers[0]
        n_blocks = module.n_blocks
        coef = [module.block_coef(b).cpu().numpy() for b in range(n_blocks)]
        width = first.out_features
        return PackedResidualNetwork(
            first.weight.cpu().numpy(),
            first.bias.cpu().numpy(),
            np.float32(first.scale),
            np.stack([layer.weight.cpu().numpy() >= 0 for layer in module.layers[1:]])
            if n_blocks
            else np.zeros((0, width, width), bool),
            np.stack(coef) if n_blocks else np.zeros((0, width), np.float32),
            np.stack([layer.bias.cpu().numpy() for layer in module.layers[1:]])
            if n_blocks
            else np.zeros((0, width), np.float32),
            head_weight,
            head_bias,
            classes,
            code,
            backend,
            task=task,
            target_ndim=target_ndim,
        )


def _field_threshold(layer, offset) -> np.ndarray:
    """Smallest float v per unit with ``binary_field(v) >= 0`` (bisection over floats)."""
    dtype = np.dtype(str(offset.dtype).replace("torch.", ""))

    def fires(values: np.ndarray) -> np.ndarray:
        v = torch.from_numpy(np.ascontiguousarray(values)).to(offset.device)
        return (layer.binary_field(v[None, :], offset) >= 0)[0].cpu().numpy()

    n_out = offset.shape[0]
    to_key, from_key = _float_keys(dtype)
    lo = np.broadcast_to(to_key(-np.inf), (n_out,)).copy()
    hi = np.broadcast_to(to_key(np.inf), (n_out,)).copy()
    always = fires(from_key(lo))
    never = ~fires(from_key(hi))
    lo[always | never] = hi[always | never] - 1  # nothing to search
    while (hi - lo > 1).any():
        mid = lo + (hi - lo) // 2
        up = fires(from_key(mid))
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    threshold = from_key(hi).copy()
    threshold[always] = -np.inf
    threshold[never] = np.inf
    return threshold


def _popcount_threshold(layer, offset) -> np.ndarray:
    """Largest popcount P per unit with ``binary_field(N - 2 p) >= 0`` for all p <= P."""
    n_in = layer.in_features
    if offset.dtype == torch.float32 and n_in >= 2**24:
        raise ValueError(f"a float32 layer with {n_in} >= 2**24 inputs has inexact +-1 sums")
    dots = torch.arange(n_in, -n_in - 1, -2, dtype=offset.dtype, device=offset.device)
    fires = (layer.binary_field(dots[:, None], offset) >= 0).cpu().numpy()  # (p = 0..N, out)
    count = fires.sum(axis=0)
    if not np.array_equal(fires, np.arange(n_in + 1)[:, None] < count):
        raise RuntimeError("binary_field is not non-decreasing in the dot product")
    return (count - 1).astype(np.int16 if n_in < 2**15 else np.int32)

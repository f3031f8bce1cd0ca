"""The deployed artefact: the exported 1-bit network, with numpy alone.

Nothing here imports torch, skorch or scikit-learn: a device that runs an exported network
needs ``numpy`` (and a C compiler for the optional native kernel).  The estimators'
``export_binary()`` builds these objects; :func:`load` reads any saved one back.

* :class:`PackedBinaryNetwork`: the plain family (``architecture="plain"``).
* :class:`PackedResidualNetwork`: the residual family (``architecture="residual"``).
* :func:`load`: a saved file of either family, told apart by its header.
* :mod:`sklearn_bnn.deploy.onnx_graph`: the ONNX graph of either family, with the ``onnx``
  package and numpy (not imported here: ``from sklearn_bnn.deploy import onnx_graph``).

Each network knows its ``task`` (:data:`TASKS`): a classifier's export predicts labels, a
regressor's predicts its targets; the task is recorded in the saved file.
"""

from __future__ import annotations

from ._kernel import NativeKernelError, NativeKernelWarning
from .packed import (
    BACKENDS,
    DEFAULT_BACKEND,
    InputCode,
    LinearTerm,
    PackedBinaryNetwork,
    PackedFormatError,
    PackedLayer,
    TASKS,
    linear_term,
    thermometer_code,
)
from .packed_residual import PackedResidualNetwork

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "InputCode",
    "LinearTerm",
    "NativeKernelError",
    "NativeKernelWarning",
    "PackedBinaryNetwork",
    "PackedFormatError",
    "PackedLayer",
    "PackedResidualNetwork",
    "TASKS",
    "linear_term",
    "load",
    "thermometer_code",
]

_FAMILIES = {cls.format_name(): cls for cls in (PackedBinaryNetwork, PackedResidualNetwork)}


def load(file, **kwargs):
    """Load a network saved by ``save`` of either family.

    Parameters
    ----------
    file : str, path-like or binary file object
    **kwargs
        Passed to the family's ``load`` (``backend``).

    Returns
    -------
    PackedBinaryNetwork or PackedResidualNetwork
        The family named in the header, with the task recorded there (files written
        before the task was recorded are classifications).

    Raises
    ------
    PackedFormatError
        The file is not a network saved by sklearn-bnn, or it is malformed.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sklearn_bnn import deploy
    >>> first = deploy.PackedLayer((2, 3), np.packbits([1, 0, 1, 0, 0, 1]), np.zeros(2, np.float32))
    >>> net = deploy.PackedBinaryNetwork(
    ...     [first], np.ones((1, 2), np.float32), np.zeros(1, np.float32), task="regression")
    >>> f = io.BytesIO()
    >>> net.save(f)
    >>> loaded = deploy.load(io.BytesIO(f.getvalue()))
    >>> type(loaded).__name__, loaded.task, loaded.predict(np.ones((2, 3))).shape
    ('PackedBinaryNetwork', 'regression', (2,))
    """
    from .packed import read_format_name

    name = read_format_name(file)
    if name not in _FAMILIES:
        raise PackedFormatError(
            f"not a saved sklearn-bnn network: the header names the format {name!r}; "
            f"valid formats: {sorted(_FAMILIES)}."
        )
    return _FAMILIES[name].load(file, **kwargs)

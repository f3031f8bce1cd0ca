"""The deployed artefact: the exported 1-bit network, with numpy alone.

Nothing here imports torch, skorch or scikit-learn: a device that runs an exported network
needs ``numpy`` (and a C compiler for the optional native kernel).  The estimators'
``export_binary()`` builds these objects; :func:`load` reads any saved one back.

* :class:`PackedBinaryNetwork`: the plain family (``architecture="plain"``).
* :class:`PackedResidualNetwork`: the residual family (``architecture="residual"``).
* :func:`load`: a saved file of either family, told apart by its header.
"""

from __future__ import annotations

from .packed import (
    BACKENDS,
    DEFAULT_BACKEND,
    InputCode,
    LinearTerm,
    PackedBinaryNetwork,
    PackedFormatError,
    PackedLayer,
    linear_term,
    thermometer_code,
)
from .packed_residual import PackedResidualNetwork

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "InputCode",
    "LinearTerm",
    "PackedBinaryNetwork",
    "PackedFormatError",
    "PackedLayer",
    "PackedResidualNetwork",
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

    Raises
    ------
    PackedFormatError
        The file is not a network saved by sklearn-bnn, or it is malformed.
    """
    from .packed import read_format_name

    name = read_format_name(file)
    if name not in _FAMILIES:
        raise PackedFormatError(
            f"not a saved sklearn-bnn network: the header names the format {name!r}; "
            f"valid formats: {sorted(_FAMILIES)}."
        )
    return _FAMILIES[name].load(file, **kwargs)

"""sklearn-bnn: stochastic binary neural networks as scikit-learn estimators.

:class:`BinaryNetClassifier` and :class:`BinaryNetRegressor`: binary (+-1) weights and
activations, trained through continuous surrogates of the stochastic network, predicting
with the 1-bit network itself.

The names below are imported on first use, so ``import sklearn_bnn.deploy`` (the exported
network, numpy alone) and ``import sklearn_bnn.meanfield`` do not import torch.
"""

import importlib as _importlib

__version__ = "0.1.0"

# public name -> submodule that defines it
_LAZY = {
    "BinaryNetClassifier": ".classifier",
    "BinaryNetRegressor": ".regressor",
    "ModelSummary": "._base",
    "PackedBinaryNetwork": ".deploy.packed",
    "PackedFormatError": ".deploy.packed",
    "PackedResidualNetwork": ".deploy.packed_residual",
    "TrainingDivergedError": "._training",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

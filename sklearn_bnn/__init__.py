"""sklearn-bnn: stochastic binary neural networks as scikit-learn estimators.

:class:`BinaryNetClassifier` and :class:`BinaryNetRegressor`: binary (+-1) weights and
activations, trained through continuous surrogates of the stochastic network, predicting
with the 1-bit network itself.
"""

from ._training import TrainingDivergedError
from ._base import ModelSummary
from .classifier import BinaryNetClassifier
from .nn.packed import PackedBinaryNetwork, PackedFormatError
from .regressor import BinaryNetRegressor

__version__ = "0.1.0"

__all__ = [
    "BinaryNetClassifier",
    "BinaryNetRegressor",
    "ModelSummary",
    "PackedBinaryNetwork",
    "PackedFormatError",
    "TrainingDivergedError",
    "__version__",
]

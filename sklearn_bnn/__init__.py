"""sklearn-bnn: stochastic binary neural networks as scikit-learn estimators.

Binary (+-1) weights and activations, trained through continuous surrogates of the
stochastic network, predicting with the 1-bit network itself.
"""

from ._training import TrainingDivergedError
from .classifier import BinaryNetClassifier, ModelSummary
from .nn.packed import PackedBinaryNetwork, PackedFormatError

__version__ = "0.1.0"

__all__ = [
    "BinaryNetClassifier",
    "ModelSummary",
    "PackedBinaryNetwork",
    "PackedFormatError",
    "TrainingDivergedError",
    "__version__",
]

"""PyTorch side of sklearn-bnn: noise models, binary layers, forward passes, the network.

Nothing here knows about scikit-learn.
"""

from .estimators import (
    COMBINATIONS,
    ESTIMATORS,
    PROXIES,
    SURROGATES,
    TRAINING,
    resolve_first_layer,
    training_forward,
)
from .layers import RealLinear, StochasticBinaryLinear
from .network import FIRST_LAYERS, BinaryNetwork
from .noise import (
    NOISES,
    GaussianNoise,
    LogisticNoise,
    NoiseModel,
    SignNoise,
    UniformNoise,
    get_noise,
)
from ..deploy.packed import PackedBinaryNetwork, PackedFormatError
from .surrogates import FORWARDS, INFERENCE

__all__ = [
    "COMBINATIONS",
    "ESTIMATORS",
    "FIRST_LAYERS",
    "FORWARDS",
    "INFERENCE",
    "NOISES",
    "PROXIES",
    "SURROGATES",
    "TRAINING",
    "BinaryNetwork",
    "GaussianNoise",
    "LogisticNoise",
    "NoiseModel",
    "PackedBinaryNetwork",
    "PackedFormatError",
    "RealLinear",
    "SignNoise",
    "StochasticBinaryLinear",
    "UniformNoise",
    "get_noise",
    "resolve_first_layer",
    "training_forward",
]

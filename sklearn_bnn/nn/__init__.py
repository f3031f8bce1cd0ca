"""PyTorch side of sklearn-bnn: noise models, binary layers, forward passes, the network.

Nothing here knows about scikit-learn.
"""

from .estimators import COMBINATIONS, ESTIMATORS, PROXIES, SURROGATES, TRAINING, training_forward
from .estimators import resolve_first_layer
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
from .packed import PackedBinaryNetwork, PackedFormatError
from .surrogates import FORWARDS, INFERENCE

__all__ = [
    "BinaryNetwork",
    "COMBINATIONS",
    "ESTIMATORS",
    "FIRST_LAYERS",
    "FORWARDS",
    "INFERENCE",
    "PROXIES",
    "TRAINING",
    "GaussianNoise",
    "LogisticNoise",
    "NOISES",
    "NoiseModel",
    "PackedBinaryNetwork",
    "PackedFormatError",
    "RealLinear",
    "SignNoise",
    "StochasticBinaryLinear",
    "SURROGATES",
    "UniformNoise",
    "get_noise",
    "resolve_first_layer",
    "training_forward",
]

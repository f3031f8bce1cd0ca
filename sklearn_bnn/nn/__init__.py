"""PyTorch side of sklearn-bnn: noise models, binary layers, forward passes, the network.

Nothing here knows about scikit-learn.
"""

from .estimators import COMBINATIONS, ESTIMATORS, PROXIES, SURROGATES, TRAINING, training_forward
from .layers import StochasticBinaryLinear
from .network import BinaryNetwork
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
    "SignNoise",
    "StochasticBinaryLinear",
    "SURROGATES",
    "UniformNoise",
    "get_noise",
    "training_forward",
]

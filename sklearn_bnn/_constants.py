r"""Constants shared by the torch side (:mod:`sklearn_bnn.nn`) and the mean-field solver.

The solver (:mod:`sklearn_bnn.meanfield`) describes exactly the networks of
:mod:`sklearn_bnn.nn`, and never imports torch; the numbers both sides must agree on are
defined here, once, in plain Python, so that they cannot drift apart.

Examples
--------
>>> from sklearn_bnn._constants import DEFAULT_NOISE_SCALE, erf_noise_std
>>> DEFAULT_NOISE_SCALE["sign"], DEFAULT_NOISE_SCALE["gaussian"]
(0.0, 1.0)
>>> erf_noise_std("gaussian", 0.5), erf_noise_std("uniform", 1.0) is None
(0.5, True)
"""

from __future__ import annotations

import math

__all__ = [
    "DEFAULT_NOISE_SCALE",
    "NOISE_NAMES",
    "PROBIT_LAMBDA",
    "UNIT_SLOPE",
    "VARIANCE_EPS",
    "erf_noise_std",
]

#: Neuron noise models, by name (:data:`sklearn_bnn.nn.noise.NOISES` holds their classes).
NOISE_NAMES = ("sign", "gaussian", "logistic", "uniform")

#: Default scale of each noise model: the sign neuron has none, the others scale 1.
DEFAULT_NOISE_SCALE = {"sign": 0.0, "gaussian": 1.0, "logistic": 1.0, "uniform": 1.0}

#: Added to the field variance before the S1 neuron mean is taken, so that
#: ``erf(h / sqrt(2 var))`` stays finite when :math:`\Sigma \to 0` (first layer with
#: :math:`M \to \pm 1` and noise ``"sign"``), and under the square root of the LRT passes.
#: Fields are O(1) in the 1/sqrt(N) convention, so 1e-4 changes no mean by more than about
#: 1e-4 where the variance is O(1).
VARIANCE_EPS = 1e-4

#: The slope that gives the S1 sign neuron unit slope in the normalised field:
#: :math:`\frac{d}{du}\operatorname{erf}(k u/\sqrt2)|_{u=0} = k\sqrt{2/\pi} = 1`.
UNIT_SLOPE = math.sqrt(math.pi / 2.0)

#: The probit approximation :math:`\sigma(x) \approx \Phi(\lambda x)`,
#: :math:`\lambda = \sqrt{\pi/8}`: logistic noise of scale :math:`s` behaves like Gaussian
#: noise of standard deviation :math:`s/\lambda`.
PROBIT_LAMBDA = math.sqrt(math.pi / 8.0)


def erf_noise_std(noise: str, scale: float) -> float | None:
    r"""Standard deviation :math:`s_\text{eff}` of the Gaussian noise a neuron behaves as.

    The mean of a noisy sign neuron under a Gaussian field :math:`h \sim N(\mu, v)` is
    :math:`\operatorname{erf}(\mu / \sqrt{2(v + s_\text{eff}^2)})` with :math:`s_\text{eff} =
    0` (sign), :math:`s` (Gaussian), :math:`s/\lambda` (logistic, the probit
    approximation, :data:`PROBIT_LAMBDA`); ``None`` for uniform noise, whose mean has
    another closed form.

    Parameters
    ----------
    noise : {"sign", "gaussian", "logistic", "uniform"}
    scale : float
        The noise scale :math:`s`.

    Returns
    -------
    float or None

    Examples
    --------
    >>> from sklearn_bnn._constants import erf_noise_std
    >>> erf_noise_std("sign", 0.0), round(erf_noise_std("logistic", 1.0), 4)
    (0.0, 1.5958)
    """
    if noise == "sign":
        return 0.0
    if noise == "gaussian":
        return float(scale)
    if noise == "logistic":
        return float(scale) / PROBIT_LAMBDA
    if noise == "uniform":
        return None
    raise ValueError(
        f"noise={noise!r} is not valid. Valid values: {', '.join(map(repr, NOISE_NAMES))}."
    )

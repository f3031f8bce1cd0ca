r"""Gradient estimators for sampled binary units, and which surrogate each one serves.

``"auto"`` means exact autograd wherever nothing binary is sampled (the deterministic
surrogate S1), and the noise-matched straight-through estimator of [SY21]_ otherwise.
The other estimators (``"st"``, ``"psa"`` [SYF20]_, ``"reinforce"``, ``"arm"``) are declared
here and land with the sampled-training issue; asking for one now raises a clear error.

A pair (surrogate, estimator) is valid only if the estimator has something to estimate:
the deterministic surrogate samples nothing, so only ``"auto"`` (exact autograd) fits it.

References
----------
.. [SY21] A. Shekhovtsov, V. Yanush. Reintroducing straight-through estimators as
   principled methods for stochastic binary networks. GCPR 2021, arXiv:2006.06880.
.. [SYF20] A. Shekhovtsov, V. Yanush, B. Flach. Path sample-analytic gradient estimators
   for stochastic binary networks. NeurIPS 2020, arXiv:2006.03143.
"""

from __future__ import annotations

from .._registry import Registry
from .surrogates import FORWARDS

_LATER = "lands with the sampled-training issue"

#: Gradient estimators.  Each implemented entry is the name of the forward pass that
#: trains with it; "auto" resolves per surrogate through ``AUTO``.
ESTIMATORS: Registry[str] = Registry(
    "gradient_estimator",
    {"auto": "auto"},
    pending={"st": _LATER, "psa": _LATER, "reinforce": _LATER, "arm": _LATER},
)

#: The estimators that make sense for each surrogate.
COMBINATIONS: dict[str, tuple[str, ...]] = {
    "deterministic": ("auto",),
    "lrt": ("auto", "st", "psa"),
    "sampled": ("auto", "st", "psa", "reinforce", "arm"),
}

#: Training surrogates, each mapped to the forward pass it trains through.  A surrogate
#: that samples binary units needs a gradient estimator, so it is pending until they land.
SURROGATES: Registry[str] = Registry(
    "surrogate",
    {"deterministic": "deterministic"},
    pending={"lrt": _LATER, "sampled": _LATER},
)


def training_forward(surrogate: str, estimator: str) -> str:
    """Name of the forward pass that trains ``surrogate`` with ``estimator``.

    Raises a :class:`ValueError` naming the valid combinations when the pair makes no sense,
    and one saying so when a declared option is not available yet.

    Examples
    --------
    >>> from sklearn_bnn.nn.estimators import training_forward
    >>> training_forward("deterministic", "auto")
    'deterministic'
    >>> training_forward("deterministic", "psa")
    Traceback (most recent call last):
    ...
    ValueError: gradient_estimator='psa' does not apply to surrogate='deterministic'. Valid combinations: deterministic: auto; lrt: auto, st, psa; sampled: auto, st, psa, reinforce, arm.
    """
    if surrogate not in COMBINATIONS:
        SURROGATES.lookup(surrogate)  # raises with the list of valid names
    if estimator not in COMBINATIONS[surrogate]:
        if estimator not in ESTIMATORS.names:
            ESTIMATORS.lookup(estimator)  # unknown names get the registry's message
        valid = "; ".join(f"{s}: {', '.join(e)}" for s, e in COMBINATIONS.items())
        raise ValueError(
            f"gradient_estimator={estimator!r} does not apply to surrogate={surrogate!r}. "
            f"Valid combinations: {valid}."
        )
    ESTIMATORS.lookup(estimator)
    name = SURROGATES.lookup(surrogate)
    FORWARDS.lookup(name)
    return name

r"""One frozen spec per training surrogate: every fact about it, in one place.

A *surrogate* is what the estimator's ``surrogate`` option selects: the network that
training differentiates.  Its :class:`SurrogateSpec` says which forward pass it runs, which
gradient estimators apply and what ``"auto"`` means, which neuron noise it needs, whether
``compile=True`` and ``slope`` apply, which mean-field model ``init="critical"`` asks, and
which of its training modes can train a real first layer.  The tables other modules read
(:data:`~sklearn_bnn.nn.estimators.COMBINATIONS`, :data:`~sklearn_bnn.nn.estimators.AUTO`,
:data:`~sklearn_bnn.nn.estimators.REAL_FIRST_LAYER_MODES`, the straight-through paths, the
noise requirements, the init's mean-field models) are *derived* from
:data:`SURROGATE_SPECS`, and so is every validation message: adding a surrogate is adding
one entry here (and its forward pass to :data:`~sklearn_bnn.nn.surrogates.FORWARDS`).

============================  ===========================  ==========================
``surrogate``                 training (``"auto"``)        ``init="critical"``
============================  ===========================  ==========================
``"deterministic"`` (S1)      exact autograd               depth-aware max
``"lrt"`` (S3)                exact autograd (reparam.)    depth-aware max
``"lrt_continuous"`` (S2)     exact autograd (reparam.)    exact where it exists
``"sampled"`` (the SBN)       noise-matched ST             as ``"lrt"``
``"binary"`` (1-bit network)  noise-matched ST             depth-aware max
============================  ===========================  ==========================

"Depth-aware max" is the :math:`\sigma_m^2` that maximises :math:`\partial c^L/\partial c^0`
of the surrogate's own mean-field map at the network's depth
(:func:`sklearn_bnn.meanfield.critical_init`).

The user-facing name of S2 is ``"lrt_continuous"``, the name of its mean-field model, so
that the estimator and the solver use one word for one model.

Examples
--------
>>> from sklearn_bnn.nn.spec import SURROGATE_SPECS, surrogate_spec
>>> list(SURROGATE_SPECS)
['deterministic', 'lrt', 'lrt_continuous', 'sampled', 'binary']
>>> spec = surrogate_spec("binary")
>>> spec.forward, spec.estimators, spec.train_mode("auto"), spec.meanfield
('binary', ('auto', 'st'), 'binary+st', 'binary')
>>> surrogate_spec("binari")
Traceback (most recent call last):
...
ValueError: surrogate='binari' is not a valid value. Valid values: 'deterministic', 'lrt',
'lrt_continuous', 'sampled', 'binary'. Did you mean 'binary'?
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._constants import UNIT_SLOPE
from .._registry import Registry
from .noise import NOISES
from .surrogates import FORWARDS

__all__ = [
    "AUTO",
    "COMBINATIONS",
    "COMPILED_SURROGATES",
    "MEANFIELD_MODELS",
    "REAL_FIRST_LAYER_MODES",
    "SURROGATE_SPECS",
    "SurrogateSpec",
    "check_compile",
    "check_noise",
    "resolve_slope",
    "surrogate_spec",
    "train_mode",
]

#: What ``gradient_estimator="auto"`` may resolve to besides a named estimator: exact
#: autograd through the spec's forward pass (nothing binary is sampled).
EXACT = "exact"


@dataclass(frozen=True)
class SurrogateSpec:
    """Everything the package knows about one training surrogate.

    Parameters
    ----------
    name : str
        The ``surrogate`` value.
    forward : str
        Its forward pass, a key of :data:`~sklearn_bnn.nn.surrogates.FORWARDS` (the pass
        validation losses and exact training run).
    estimators : tuple of str
        The ``gradient_estimator`` values that apply, ``"auto"`` first.
    auto : str
        What ``"auto"`` trains with: ``"exact"`` (autograd through ``forward``) or an
        estimator name (``"st"``).
    meanfield : str
        The model :func:`sklearn_bnn.meanfield.critical_init` is asked for (a key of
        :data:`sklearn_bnn.meanfield.SURROGATES`).
    critical : str
        What ``init="critical"`` does for it, one sentence (shown in docs and messages).
    exact_critical : bool, default=False
        Whether its mean-field map has an exact critical point (:math:`\\chi_1 = 1` with
        :math:`c = 1` a fixed point) for some noise.
    compilable : bool, default=False
        Whether ``compile=True`` applies (``torch.compile`` of the training step speeds it
        up; ``benchmarks/speed.py``).
    accepts_slope : bool, default=False
        Whether its neuron has a ``slope`` (the S1 neuron only).
    noise_required : tuple of (str, str), default=()
        ``(estimator, noise)`` pairs: the estimator is derived for that noise only.
    noise_excluded : tuple of (str, str), default=()
        ``(noise, reason)`` pairs: noises the surrogate cannot use, with the reason.
    real_first_layer : tuple of str, default=("auto", "st")
        Estimators with which it trains a real first layer (``first_layer="real"``): those
        whose weights enter by their means or a draw.  PSA, REINFORCE and ARM are rules for
        binary weights (flips, log-probabilities of draws) that a real weight does not have.

    Examples
    --------
    >>> from sklearn_bnn.nn.spec import surrogate_spec
    >>> spec = surrogate_spec("sampled")
    >>> spec.train_modes
    ('sampled+st', 'sampled+psa', 'sampled+reinforce', 'sampled+arm')
    >>> spec.real_first_layer_modes
    ('sampled+st',)
    """

    name: str
    forward: str
    estimators: tuple[str, ...]
    auto: str
    meanfield: str
    critical: str
    exact_critical: bool = False
    compilable: bool = False
    accepts_slope: bool = False
    noise_required: tuple[tuple[str, str], ...] = ()
    noise_excluded: tuple[tuple[str, str], ...] = ()
    real_first_layer: tuple[str, ...] = ("auto", "st")

    def __post_init__(self) -> None:
        FORWARDS.lookup(self.forward)
        if not self.estimators or self.estimators[0] != "auto":
            raise ValueError(f"{self.name}: estimators must start with 'auto'")
        if self.auto != EXACT and self.auto not in self.estimators:
            raise ValueError(f"{self.name}: auto={self.auto!r} is not one of its estimators")

    def train_mode(self, estimator: str) -> str:
        """The training mode (a key of :data:`~sklearn_bnn.nn.estimators.TRAINING`).

        Exact modes are forward-pass names; sampled ones ``"<surrogate>+<estimator>"``.
        """
        if estimator == "auto":
            estimator = self.auto
        return self.forward if estimator == EXACT else f"{self.name}+{estimator}"

    @property
    def train_modes(self) -> tuple[str, ...]:
        """Its distinct training modes, in the order of :attr:`estimators`."""
        return tuple(dict.fromkeys(self.train_mode(e) for e in self.estimators))

    @property
    def real_first_layer_modes(self) -> tuple[str, ...]:
        """Its training modes that train a real first layer."""
        chosen = (e for e in self.estimators if e in self.real_first_layer)
        return tuple(dict.fromkeys(self.train_mode(e) for e in chosen))

    def samples_neurons(self, estimator: str) -> bool:
        """Whether ``estimator`` (``"auto"`` resolved) samples binary neurons with ST."""
        return (self.auto if estimator == "auto" else estimator) == "st"


_NO_SIGN = (
    (
        "sign",
        (
            "S2 passes the neuron mean phi(h) upward and needs it continuous; "
            "the sign neuron's is a step"
        ),
    ),
)

#: The training surrogates, by ``surrogate`` value.
SURROGATE_SPECS: Registry[SurrogateSpec] = Registry(
    "surrogate",
    {
        spec.name: spec
        for spec in (
            SurrogateSpec(
                name="deterministic",
                forward="deterministic",
                estimators=("auto",),
                auto=EXACT,
                meanfield="deterministic",
                critical="depth-aware maximum of dc_L/dc_0 of the S1 map (no exact critical "
                "point; with slope='unit' the optimum nears sigma_m^2 = 1)",
                compilable=True,
                accepts_slope=True,
            ),
            SurrogateSpec(
                name="lrt",
                forward="lrt",
                estimators=("auto", "st"),
                auto=EXACT,
                meanfield="lrt",
                critical="depth-aware maximum of dc_L/dc_0 of the S3 map (S3 has no "
                "critical point)",
            ),
            SurrogateSpec(
                name="lrt_continuous",
                forward="lrt_continuous",
                estimators=("auto",),
                auto=EXACT,
                meanfield="lrt_continuous",
                critical="the exact critical point chi_1 = 1 where it exists (sigma_m^2 = 1, "
                "sigma_b^2 = 0 for a slope-1 neuron), else the depth-aware maximum of "
                "dc_L/dc_0 of the S2 map",
                exact_critical=True,
                noise_excluded=_NO_SIGN,
            ),
            SurrogateSpec(
                name="sampled",
                forward="sampled",
                estimators=("auto", "st", "psa", "reinforce", "arm"),
                auto="st",
                meanfield="sampled",
                critical="as surrogate='lrt': the expected network follows the S3 chain",
                noise_required=(("psa", "logistic"),),
            ),
            SurrogateSpec(
                name="binary",
                forward="binary",
                estimators=("auto", "st"),
                auto="st",
                meanfield="binary",
                critical="depth-aware maximum of dc_L/dc_0 of the 1-bit map "
                "c' = (2/pi) arcsin((c + b)/(1 + b)), b = sigma_b^2/sigma_m^2 (never critical)",
                compilable=True,
            ),
        )
    },
)

# ------------------------------------------------------------------ derived tables
#: The estimators that make sense for each surrogate (``"auto"`` first).
COMBINATIONS: dict[str, tuple[str, ...]] = {n: s.estimators for n, s in SURROGATE_SPECS.items()}

#: What ``gradient_estimator="auto"`` trains with, per surrogate (a training mode).
AUTO: dict[str, str] = {n: s.train_mode("auto") for n, s in SURROGATE_SPECS.items()}

#: Training modes that train a real first layer (``first_layer="real"``).
REAL_FIRST_LAYER_MODES: tuple[str, ...] = tuple(
    mode for s in SURROGATE_SPECS.values() for mode in s.real_first_layer_modes
)

#: Surrogates whose training step ``compile=True`` compiles.
COMPILED_SURROGATES: frozenset[str] = frozenset(
    n for n, s in SURROGATE_SPECS.items() if s.compilable
)

#: The mean-field model ``init="critical"`` asks for each surrogate.
MEANFIELD_MODELS: dict[str, str] = {n: s.meanfield for n, s in SURROGATE_SPECS.items()}


# ------------------------------------------------------------------------ helpers
def surrogate_spec(name) -> SurrogateSpec:
    """The spec of ``surrogate=name``; a :class:`ValueError` listing the valid names otherwise.

    Examples
    --------
    >>> from sklearn_bnn.nn.spec import surrogate_spec
    >>> surrogate_spec("deterministic").accepts_slope
    True
    """
    return SURROGATE_SPECS.lookup(name)


def train_mode(surrogate: str, estimator: str) -> str:
    """The training mode for ``surrogate`` and ``gradient_estimator``, validated.

    Raises a :class:`ValueError` naming the valid combinations when the pair makes no sense.

    Examples
    --------
    >>> from sklearn_bnn.nn.spec import train_mode
    >>> train_mode("lrt", "st"), train_mode("lrt_continuous", "auto")
    ('lrt+st', 'lrt_continuous')
    """
    spec = surrogate_spec(surrogate)
    if estimator not in spec.estimators:
        valid = "; ".join(f"{n}: {', '.join(e)}" for n, e in COMBINATIONS.items())
        raise ValueError(
            f"gradient_estimator={estimator!r} does not apply to surrogate={surrogate!r}. "
            f"Valid combinations: {valid}."
        )
    return spec.train_mode(estimator)


def check_noise(surrogate: str, estimator: str, noise) -> None:
    """Reject a neuron noise that ``surrogate`` or its ``estimator`` cannot use.

    ``noise`` is a :class:`~sklearn_bnn.nn.noise.NoiseModel`.  Checks the spec's
    ``noise_excluded`` and ``noise_required``, and that a mode sampling binary neurons with
    straight-through has a proxy (the sign neuron has none).

    Examples
    --------
    >>> from sklearn_bnn.nn import get_noise
    >>> from sklearn_bnn.nn.spec import check_noise
    >>> check_noise("lrt_continuous", "auto", get_noise("sign"))
    Traceback (most recent call last):
    ...
    ValueError: surrogate='lrt_continuous' cannot use noise='sign': S2 passes the neuron mean
    phi(h) upward and needs it continuous; the sign neuron's is a step. Valid noises:
    'gaussian', 'logistic', 'uniform'.
    """
    spec = surrogate_spec(surrogate)
    name = getattr(noise, "name", noise)
    excluded = dict(spec.noise_excluded)
    if name in excluded:
        valid = ", ".join(repr(n) for n in NOISES if n not in excluded)
        raise ValueError(
            f"surrogate={surrogate!r} cannot use noise={name!r}: {excluded[name]}. "
            f"Valid noises: {valid}."
        )
    required = dict(spec.noise_required).get(estimator)
    if required is not None and not isinstance(noise, NOISES[required]):
        raise ValueError(
            f"gradient_estimator={estimator!r} needs noise={required!r}; got noise={name!r}."
        )
    if spec.samples_neurons(estimator):
        try:
            noise.dphi(torch.zeros(1))
        except ValueError as exc:
            raise ValueError(
                f"surrogate={surrogate!r} with gradient_estimator={estimator!r} samples "
                f"binary neurons and needs a straight-through proxy: {exc}"
            ) from None


def resolve_slope(slope, surrogate: str) -> float:
    """The S1 neuron slope as a float: ``"unit"`` is :data:`~sklearn_bnn._constants.UNIT_SLOPE`.

    A slope other than 1 needs a surrogate whose spec ``accepts_slope``.

    Examples
    --------
    >>> from sklearn_bnn.nn.spec import resolve_slope
    >>> round(resolve_slope("unit", "deterministic"), 4)
    1.2533
    >>> resolve_slope(2.0, "binary")
    Traceback (most recent call last):
    ...
    ValueError: slope=2.0 applies to surrogate in ('deterministic',) only (the slope of its
    mean-field neuron); with surrogate='binary' use slope=1.0, and set the neuron's
    temperature through the noise scale, e.g. noise=GaussianNoise(0.5).
    """
    value = UNIT_SLOPE if isinstance(slope, str) and slope == "unit" else float(slope)
    if value != 1.0 and not surrogate_spec(surrogate).accepts_slope:
        valid = tuple(n for n, s in SURROGATE_SPECS.items() if s.accepts_slope)
        raise ValueError(
            f"slope={slope!r} applies to surrogate in {valid!r} only (the slope of its "
            f"mean-field neuron); with surrogate={surrogate!r} use slope=1.0, and set the "
            "neuron's temperature through the noise scale, e.g. noise=GaussianNoise(0.5)."
        )
    return value


def check_compile(compile: bool, surrogate: str) -> None:
    """Reject ``compile=True`` for a surrogate whose spec is not ``compilable``.

    Examples
    --------
    >>> from sklearn_bnn.nn.spec import check_compile
    >>> check_compile(True, "binary")
    >>> check_compile(True, "lrt")
    Traceback (most recent call last):
    ...
    ValueError: compile=True applies to surrogate in ['binary', 'deterministic'], where
    torch.compile speeds up training (benchmarks/speed.py); got surrogate='lrt'. Use
    compile=False.
    """
    if compile and not surrogate_spec(surrogate).compilable:
        raise ValueError(
            f"compile=True applies to surrogate in {sorted(COMPILED_SURROGATES)!r}, where "
            f"torch.compile speeds up training (benchmarks/speed.py); got "
            f"surrogate={surrogate!r}. Use compile=False."
        )

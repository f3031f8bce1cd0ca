"""One frozen spec per network architecture: the estimators' ``architecture`` option.

An *architecture* is the shape of the deployed network; the surrogate
(:mod:`sklearn_bnn.nn.spec`) is how it is trained.  Each :class:`ArchitectureSpec` says which
torch module builds it, how a ``(surrogate, gradient_estimator, noise)`` choice becomes a
training mode, which first layers and ``inference`` values apply, how ``init`` draws it and
which numpy artefact exports it.  The estimator reads everything from
:data:`ARCHITECTURES`; it never branches on the name.

================  =============================================  =============================
``architecture``  network                                        trained by
================  =============================================  =============================
``"plain"``       stacked :math:`\\pm 1` layers                   any surrogate and estimator
``"residual"``    :math:`\\pm 1` blocks added to a real stream    the 1-bit network (ST)
================  =============================================  =============================

The residual family and why it trains deep: :ref:`depth` and
:mod:`sklearn_bnn.meanfield.residual`.

Examples
--------
>>> from sklearn_bnn.nn.architecture import ARCHITECTURES
>>> list(ARCHITECTURES)
['plain', 'residual']
>>> ARCHITECTURES["residual"].train_mode("binary", "auto", None)
'residual+st'
>>> ARCHITECTURES["residual"].train_mode("deterministic", "auto", None)
Traceback (most recent call last):
...
ValueError: architecture='residual' trains the deployed 1-bit network itself: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .._registry import Registry
from .estimators import resolve_first_layer, training_forward
from .network import BinaryNetwork
from .noise import NoiseModel
from ..deploy.packed import PackedBinaryNetwork
from ..deploy.packed_residual import PackedResidualNetwork
from .bridge import pack_module, pack_residual
from .residual import TRAIN_MODE, ResidualBinaryNetwork

__all__ = ["ARCHITECTURES", "ArchitectureSpec"]


def _plain_init(net, init, surrogate: str) -> dict:
    from ..init import initialize_network

    return initialize_network(net, init, surrogate)


def _residual_init(net, init, surrogate: str) -> dict:
    from .residual import initialize_residual

    return initialize_residual(net, init)


def _residual_train_mode(surrogate: str, estimator: str, noise: NoiseModel | None) -> str:
    if surrogate != "binary" or estimator not in ("auto", "st"):
        raise ValueError(
            "architecture='residual' trains the deployed 1-bit network itself: it needs "
            "surrogate='binary' with gradient_estimator in ('auto', 'st'); got "
            f"surrogate={surrogate!r}, gradient_estimator={estimator!r}."
        )
    if noise is not None and noise.name == "sign":
        raise ValueError(
            "architecture='residual' needs a noise with a straight-through proxy (its mean); "
            "noise='sign' has none. Valid values: 'gaussian', 'logistic', 'uniform' or a "
            "NoiseModel with a smooth mean."
        )
    return TRAIN_MODE


def _residual_first_layer(first_layer: str, train_mode: str) -> str:
    if first_layer not in ("auto", "real"):
        raise ValueError(
            f"first_layer={first_layer!r} does not apply to architecture='residual': its "
            "stream starts from a real field. Valid values: 'auto', 'real'."
        )
    return "real"


@dataclass(frozen=True)
class ArchitectureSpec:
    """Everything the estimators need to know about one ``architecture`` value.

    Parameters
    ----------
    name : str
        The option value.
    module : type
        The torch module (``module(n_features, hidden_layer_sizes, n_outputs, noise=,
        slope=, first_layer=)``).
    packed : type
        The numpy artefact (:mod:`sklearn_bnn.deploy`).
    export : callable
        ``export(module, classes=, code=, ...)`` reads the torch module into ``packed``
        (:mod:`sklearn_bnn.nn.bridge`).
    train_mode : callable
        ``(surrogate, gradient_estimator, noise) -> training mode`` (a key of
        :data:`~sklearn_bnn.nn.estimators.TRAINING`); raises on a combination that does
        not apply.
    first_layer : callable
        ``(first_layer, train_mode) -> "real" | "binary"``; raises when not valid.
    initialize : callable
        ``(module, init, surrogate) -> record`` draws the module in place.
    learning_rate_init : float
        What ``learning_rate_init="auto"`` means for it: Adam's rate for the real
        parameters (3e-3 plain; 1e-2 residual, whose deep real stream and per-block scales
        need the larger steps, ``benchmarks/network_alone.py``).
    linear_learning_rate_init : float or None
        The same with the linear term on (``linear=True``), where the network starts from
        the linear term's fit and learns what it leaves: 1e-3 plain (the larger steps
        overfit the small tables, ``benchmarks/results/ablation_cpu.txt``, column
        ``BNN[rate3e-3]``); ``None`` keeps ``learning_rate_init`` (residual).  A term that
        is all zero (a first ``partial_fit`` batch of one class) counts as none.
    inference : tuple of str
        The ``inference`` values that apply.
    equal_widths : bool
        Whether every hidden layer must have the same width.
    compilable : bool
        Whether ``compile=True`` may apply (then the surrogate's spec decides).
    reads_code : bool
        Whether ``module`` takes ``code_start=``, the first column of the input code's
        :math:`\\pm 1` bits (:class:`~sklearn_bnn.nn.BinaryNetwork`), which its first
        :math:`\\pm 1` layer multiplies exactly in integers during training.

    Examples
    --------
    >>> from sklearn_bnn.nn.architecture import ARCHITECTURES
    >>> spec = ARCHITECTURES["residual"]
    >>> spec.module.__name__, spec.packed.__name__, spec.inference
    ('ResidualBinaryNetwork', 'PackedResidualNetwork', ('binary', 'mc'))
    >>> spec.check((32, 16), "binary", False)
    Traceback (most recent call last):
    ...
    ValueError: architecture='residual' adds every block to one stream: all ...
    """

    name: str
    module: type
    packed: type
    export: Callable
    train_mode: Callable[[str, str, NoiseModel | None], str]
    first_layer: Callable[[str, str], str]
    initialize: Callable
    learning_rate_init: float = 3e-3
    linear_learning_rate_init: float | None = 1e-3
    inference: tuple[str, ...] = ("binary", "surrogate", "mc")
    equal_widths: bool = False
    compilable: bool = True
    reads_code: bool = False

    def check(self, sizes, inference: str, compile: bool) -> None:
        """Reject hidden sizes, ``inference`` or ``compile`` that do not apply."""
        if self.equal_widths and len(set(sizes)) > 1:
            raise ValueError(
                f"architecture={self.name!r} adds every block to one stream: all "
                f"hidden_layer_sizes must be equal, got {tuple(sizes)!r}."
            )
        if inference not in self.inference:
            raise ValueError(
                f"inference={inference!r} does not apply to architecture={self.name!r} "
                f"(it has no surrogate read-out). Valid values: "
                f"{', '.join(map(repr, self.inference))}."
            )
        if compile and not self.compilable:
            raise ValueError(
                f"compile=True does not apply to architecture={self.name!r}. Use compile=False."
            )


#: The ``architecture`` option: one :class:`ArchitectureSpec` per value.
ARCHITECTURES: Registry[ArchitectureSpec] = Registry(
    "architecture",
    {
        spec.name: spec
        for spec in (
            ArchitectureSpec(
                name="plain",
                module=BinaryNetwork,
                packed=PackedBinaryNetwork,
                export=pack_module,
                train_mode=lambda s, e, noise: training_forward(s, e, noise=noise),
                first_layer=resolve_first_layer,
                initialize=_plain_init,
                reads_code=True,
            ),
            ArchitectureSpec(
                name="residual",
                module=ResidualBinaryNetwork,
                packed=PackedResidualNetwork,
                export=pack_residual,
                train_mode=_residual_train_mode,
                first_layer=_residual_first_layer,
                initialize=_residual_init,
                learning_rate_init=1e-2,
                linear_learning_rate_init=None,
                inference=("binary", "mc"),
                equal_widths=True,
                compilable=False,
            ),
        )
    },
)

r"""Mean-field maps of the residual 1-bit network (numpy only; never torch).

The network (:class:`sklearn_bnn.nn.residual.ResidualBinaryNetwork`) carries a real
*residual stream* :math:`h^l \in \mathbb R^N` and adds to it, block by block, a binary
layer read from the stream's signs (the Bi-Real Net / ReActNet practice):

.. math::
    h^1 = \tfrac{1}{\sqrt{N_0}} W^0 x + b^0, \qquad
    h^{l+1} = \rho\, h^l + \gamma^l \odot \tfrac{1}{\sqrt N} S^l \operatorname{sign}(h^l)
              + \beta^l, \quad l = 1, \dots, L-1,

with a real first layer :math:`W^0`, :math:`\pm 1` weights :math:`S^l = \operatorname{sign}(M^l)`,
:math:`\pm 1` units, and per-unit real branch scales :math:`\gamma^l` and offsets
:math:`\beta^l`; the head reads :math:`\operatorname{sign}(h^L)`.  :math:`\rho = 1` is the
residual network; :math:`\rho = 0` with :math:`\gamma = 1` is the plain 1-bit network of
:mod:`sklearn_bnn.nn.network` (threshold :math:`\beta`), kept here as the reference.

**Maps at initialisation** (width :math:`N \to \infty`).  Random signs :math:`S^l`, a constant
branch scale :math:`\gamma^l_i = \alpha_l`, offsets :math:`\beta^l_i \sim N(0, \sigma_\beta^2)`,
first-layer weights of second moment :math:`\sigma_m^2` and biases of variance
:math:`\sigma_b^2`.  Two inputs of length :math:`q_0` and correlation :math:`c_0` give
:math:`q^1 = \sigma_m^2 q_0 + \sigma_b^2`, :math:`c^1 = (\sigma_m^2 q_0 c_0 + \sigma_b^2)/q^1`.
The branch of a block is a sum of :math:`N` independent :math:`\pm 1` terms of fresh random
sign, so (CLT) it is Gaussian with variance 1, uncorrelated with the stream it is added to
(its signs are independent of everything below), and the two inputs' branches have the
correlation of their units, :math:`E[\operatorname{sign} u_a \operatorname{sign} u_b] =
\tfrac{2}{\pi}\arcsin c` (Gaussian stream).  Hence

.. math::
    q^{l+1} = \rho^2 q^l + \alpha_l^2 + \sigma_\beta^2, \qquad
    c^{l+1} = \frac{\rho^2 q^l c^l + \alpha_l^2\,\tfrac{2}{\pi}\arcsin c^l + \sigma_\beta^2}
                   {q^{l+1}}, \qquad
    \chi^l = \frac{\partial c^{l+1}}{\partial c^l}
           = \frac{\rho^2 q^l + \alpha_l^2\,\tfrac{2}{\pi}(1 - (c^l)^2)^{-1/2}}{q^{l+1}}.

The sign is scale-free: only the ratios :math:`\alpha_l^2/q^1` and :math:`\sigma_\beta^2/q^1`
matter.  The *weight means' magnitude does not enter at all* (the forward pass uses
:math:`\operatorname{sign}(M)` and a separate real scale), except through the real first
layer's :math:`\sigma_m^2`, which sets :math:`q^1`; for the binary blocks
:math:`\sigma_m^2` only sets how easily training flips signs.

**What the residual stream changes.**  The plain network (:math:`\rho = 0`) contracts
correlations towards its fixed point :math:`c^*` geometrically, with slope
:math:`\chi_{c^*} = \tfrac{2}{\pi}/((1 + \sigma_\beta^2)\sqrt{1 - \rho_*^2}) \le 0.64`:
:math:`\xi_c = -1/\ln\chi_{c^*} \approx 2.2` layers and a trainable depth of about
:math:`6\xi_c \approx 13`.  With :math:`\rho = 1` and a constant :math:`\alpha`,
:math:`q^l` grows linearly and the same contraction acts at rate :math:`1/l`: in
:math:`t = \ln l` the deviation :math:`c^l - c^*` obeys :math:`dc/dt = -(1 - \chi_{c^*})(c - c^*)`,
so it decays as the power :math:`l^{-(1-\chi_{c^*})}` (:math:`l^{-0.36}` at
:math:`\sigma_\beta^2 = 0`), never exponentially: :math:`\xi_c = \infty` for every
:math:`\alpha > 0`, the residual family sits at the edge of chaos whatever its init (the
sign-unit case of Yang & Schoenholz 2017).  With the depth-scaled branch
:math:`\alpha^2 = \kappa\,q^1/(L-1)` the stream ends at :math:`q^L = (1 + \kappa) q^1` for
every depth and the maps converge to an :math:`L`-independent limit (an ODE in
:math:`l/L`): :math:`\partial c^L/\partial c^0` and the squared-gradient gain stay of order
one at any depth.

**Trainable depth.**  For a geometric map :math:`\partial c^L/\partial c^0 \approx
\chi^L = e^{-L/\xi_c}`, so "trainable to about :math:`k\,\xi_c` layers" (:math:`k \approx 6`,
Schoenholz et al. 2017) is "trainable while :math:`\ln \partial c^L/\partial c^0 \ge -k`".
:func:`trainable_depth` applies that form, which needs no exponential decay, to any of these
maps.

**Backward (straight-through).**  Trained by the noise-matched straight-through estimator,
the block's Jacobian is :math:`\rho I + \operatorname{diag}(\gamma)\,S
\operatorname{diag}(\phi'(h))/\sqrt N`, with :math:`\phi` the noise's mean (the proxy); a
back-propagated squared gradient norm gains
:math:`g^l = \rho^2 + \alpha_l^2\,E[\phi'(h^l)^2]`, :math:`h^l \sim N(0, q^l)` per block.

References
----------
Yang & Schoenholz, Mean field residual networks: on the edge of chaos, NeurIPS 2017;
Liu et al., Bi-Real Net, ECCV 2018; Liu et al., ReActNet, ECCV 2020; Schoenholz et al.,
Deep information propagation, ICLR 2017; Stamatescu et al., ICLR 2020 (arXiv:1902.00177).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

__all__ = [
    "DEFAULT_BRANCH_SHARE",
    "DEFAULT_SIGMA_M2",
    "ResidualCriticalInit",
    "ResidualPropagation",
    "critical_init",
    "propagate",
    "trainable_depth",
]

#: :math:`\kappa` of the depth-scaled branch :math:`\alpha^2 = \kappa q^1/(L-1)`: the blocks
#: together add :math:`\kappa` times the first layer's variance to the stream.  A design
#: choice (``benchmarks/deep.py`` measures 0.25, 1 and 4; see ``docs/user_guide/depth.rst``).
DEFAULT_BRANCH_SHARE = 1.0
#: Second moment of the weight means that ``critical_init`` draws.  It does not enter the
#: forward maps of the binary blocks (sign(M) only); it sets the real first layer's
#: :math:`q^1` (and so :math:`\alpha` in absolute units) and how easily training flips signs.
#: Chosen by measurement against 0.5 (``benchmarks/results/deep_cpu.txt``, ``res-m0.5``), as
#: the package's :data:`sklearn_bnn.init.DEFAULT_SIGMA_M2` for the plain 1-bit network.
DEFAULT_SIGMA_M2 = 0.05
#: Schoenholz et al.: trainable to about this many correlation depth scales.
TRAINABLE_DEPTH_FACTOR = 6.0

_TWO_OVER_PI = 2.0 / math.pi
_NOISES = ("gaussian", "logistic", "uniform", "sign")


def _proxy_grad_moment(noise: str, s: float, q: float) -> float:
    r""":math:`E[\phi'(h)^2]`, :math:`h \sim N(0, q)`, for the straight-through proxy of ``noise``.

    Gaussian :math:`\operatorname{erf}(a/\sqrt2 s)`: :math:`\tfrac{2}{\pi s^2}(1 + 2q/s^2)^{-1/2}`;
    uniform :math:`\operatorname{hardtanh}(a/s)`: :math:`s^{-2}\operatorname{erf}(s/\sqrt{2q})`;
    logistic :math:`\tanh(a/2s)`: Gauss-Hermite quadrature.  ``"sign"`` has no proxy: nan.
    """
    if noise == "gaussian":
        return _TWO_OVER_PI / (s * s) / math.sqrt(1.0 + 2.0 * q / (s * s))
    if noise == "uniform":
        return float(erf(s / math.sqrt(2.0 * q))) / (s * s) if q > 0 else 1.0 / (s * s)
    if noise == "logistic":
        z, w = np.polynomial.hermite_e.hermegauss(101)
        d = 0.5 / s / np.cosh(math.sqrt(q) * z / (2.0 * s)) ** 2
        return float(np.sum(w * d * d) / np.sum(w))
    return math.nan


def _per_block(name: str, value, n_blocks: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n_blocks, float(arr))
    if arr.shape != (n_blocks,):
        raise ValueError(
            f"{name} has shape {arr.shape}; give a float or one value per block, "
            f"shape ({n_blocks},)."
        )
    if not (np.all(np.isfinite(arr)) and np.all(arr >= 0.0)):
        raise ValueError(f"{name} must be finite and >= 0; got {value!r}.")
    return arr


def _check_depth(depth) -> int:
    if not (isinstance(depth, int | np.integer) and depth >= 1):
        raise ValueError(f"depth={depth!r} must be an integer >= 1 (hidden layers).")
    return int(depth)


def _check_noise(noise: str, noise_scale: float | None) -> float:
    if noise not in _NOISES:
        raise ValueError(f"noise={noise!r} is not valid. Valid values: {', '.join(_NOISES)}.")
    s = (0.0 if noise == "sign" else 1.0) if noise_scale is None else float(noise_scale)
    if noise != "sign" and not s > 0.0:
        raise ValueError(f"noise_scale={noise_scale!r} must be > 0 for noise={noise!r}.")
    return s


@dataclass(frozen=True)
class ResidualPropagation:
    r"""Per-layer quantities of :func:`propagate` (index 0: the first layer's field).

    Attributes
    ----------
    q : ndarray of shape (depth,)
        Stream second moment :math:`q^l = \tfrac1N\sum_i (h^l_i)^2`.
    c : ndarray of shape (depth,)
        Stream correlation of the two inputs.
    chi : ndarray of shape (depth,)
        ``chi[0]`` :math:`= \partial c^1/\partial c_0` (first layer), ``chi[l]``
        :math:`= \partial c^{l+1}/\partial c^l` (block ``l``).
    grad_gain : ndarray of shape (depth - 1,)
        Straight-through squared-gradient gain of each block (nan for noise ``"sign"``).
    unit_c : ndarray of shape (depth,)
        Correlation of the :math:`\pm 1` units, :math:`\tfrac{2}{\pi}\arcsin c^l`.

    Examples
    --------
    >>> from sklearn_bnn.meanfield.residual import propagate
    >>> p = propagate(3, alpha2=1.0, q0=1.0, c0=0.5)
    >>> p.q                                 # q grows by alpha^2 per block
    array([1., 2., 3.])
    >>> round(p.sensitivity, 4)             # dc^L/dc_0
    0.7809
    """

    q: np.ndarray
    c: np.ndarray
    chi: np.ndarray
    grad_gain: np.ndarray
    unit_c: np.ndarray

    @property
    def log_sensitivity(self) -> float:
        r""":math:`\ln \partial c^L/\partial c_0 = \sum_l \ln\chi^l`."""
        with np.errstate(divide="ignore"):
            return float(np.sum(np.log(self.chi)))

    @property
    def sensitivity(self) -> float:
        r""":math:`\partial c^L/\partial c_0`."""
        return math.exp(self.log_sensitivity)

    @property
    def log_grad_gain(self) -> float:
        r""":math:`\ln \prod_l g^l`: squared-gradient gain from the top block to the first."""
        return float(np.sum(np.log(self.grad_gain)))


def propagate(
    depth: int,
    alpha2,
    sigma_beta2=0.0,
    *,
    skip: float = 1.0,
    sigma_m2: float = 1.0,
    sigma_b2: float = 0.0,
    q0: float = 1.0,
    c0: float = 0.5,
    noise: str = "gaussian",
    noise_scale: float | None = None,
) -> ResidualPropagation:
    r"""Propagate length, correlation and slopes through a residual 1-bit network.

    See the module docstring for the maps.

    Parameters
    ----------
    depth : int >= 1
        Hidden layers: the real first layer and ``depth - 1`` binary blocks.
    alpha2 : float or array of shape (depth - 1,)
        Branch scale squared, :math:`\alpha_l^2` (the realised
        :math:`\tfrac1N\sum_i (\gamma^l_i)^2` of a finite network).
    sigma_beta2 : float or array of shape (depth - 1,), default=0.0
        Variance of the branch offsets :math:`\beta^l`.
    skip : float, default=1.0
        Weight :math:`\rho` of the identity path: 1 residual, 0 the plain 1-bit network.
    sigma_m2, sigma_b2 : float, default=1.0, 0.0
        Second moment of the first layer's weights and variance of its biases.
    q0, c0 : float, default=1.0, 0.5
        Length :math:`|x|^2/N_0` of both inputs and their correlation.
    noise : {"gaussian", "logistic", "uniform", "sign"}, default="gaussian"
        Neuron noise whose mean is the straight-through proxy (``grad_gain`` only; the
        forward maps are those of the sign unit).
    noise_scale : float, optional
        Its scale (default 1).

    Returns
    -------
    ResidualPropagation

    Examples
    --------
    The plain 1-bit network (``skip=0``) contracts correlations by about 0.64 a layer; the
    residual stream with a depth-scaled branch keeps them:

    >>> from sklearn_bnn.meanfield.residual import propagate
    >>> float(f"{propagate(30, 1.0, skip=0.0).sensitivity:.2g}")
    2.6e-06
    >>> round(propagate(30, 1.0 / 29).sensitivity, 3)
    0.821
    """
    depth = _check_depth(depth)
    s = _check_noise(noise, noise_scale)
    n_blocks = depth - 1
    a2 = _per_block("alpha2", alpha2, n_blocks)
    b2 = _per_block("sigma_beta2", sigma_beta2, n_blocks)
    if not (0.0 <= sigma_m2 <= 1.0 and sigma_b2 >= 0.0 and q0 > 0.0 and -1.0 <= c0 <= 1.0):
        raise ValueError(
            f"need 0 <= sigma_m2 <= 1, sigma_b2 >= 0, q0 > 0 and -1 <= c0 <= 1; got "
            f"sigma_m2={sigma_m2!r}, sigma_b2={sigma_b2!r}, q0={q0!r}, c0={c0!r}."
        )
    rho2 = float(skip) ** 2
    q, c, chi = np.empty(depth), np.empty(depth), np.empty(depth)
    gain = np.empty(n_blocks)
    q[0] = sigma_m2 * q0 + sigma_b2
    if not q[0] > 0.0:
        raise ValueError("the first layer's field has zero variance (sigma_m2 = sigma_b2 = 0).")
    c[0] = (sigma_m2 * q0 * c0 + sigma_b2) / q[0]
    chi[0] = sigma_m2 * q0 / q[0]
    for i in range(n_blocks):
        q_next = rho2 * q[i] + a2[i] + b2[i]
        if not q_next > 0.0:
            raise ValueError(f"block {i + 1} leaves a stream of zero variance.")
        cl = float(np.clip(c[i], -1.0, 1.0))
        arcs = _TWO_OVER_PI * math.asin(cl)
        c[i + 1] = (rho2 * q[i] * cl + a2[i] * arcs + b2[i]) / q_next
        slope = math.inf if abs(cl) >= 1.0 else _TWO_OVER_PI / math.sqrt(1.0 - cl * cl)
        chi[i + 1] = (rho2 * q[i] + a2[i] * slope) / q_next
        gain[i] = rho2 + a2[i] * _proxy_grad_moment(noise, s, q[i])
        q[i + 1] = q_next
    unit_c = _TWO_OVER_PI * np.arcsin(np.clip(c, -1.0, 1.0))
    return ResidualPropagation(q=q, c=c, chi=chi, grad_gain=gain, unit_c=unit_c)


def trainable_depth(
    alpha2=None,
    sigma_beta2: float = 0.0,
    *,
    skip: float = 1.0,
    depth_scaled: bool = False,
    branch_share: float = DEFAULT_BRANCH_SHARE,
    k: float = TRAINABLE_DEPTH_FACTOR,
    max_depth: int = 10_000,
    **kwargs,
) -> float:
    r"""Largest depth :math:`L` with :math:`\ln \partial c^L/\partial c_0 \ge -k`.

    For a geometric map this is :math:`k\,\xi_c` (the rule of Schoenholz et al. 2017 with
    :math:`k \approx 6`); it needs no exponential decay, so it applies to the residual maps,
    whose correlation decays as a power of depth.

    Parameters
    ----------
    alpha2 : float, optional
        Constant branch scale squared (``depth_scaled=False``).
    sigma_beta2 : float, default=0.0
    skip : float, default=1.0
        1 residual, 0 the plain 1-bit network.
    depth_scaled : bool, default=False
        Use :math:`\alpha^2 = \kappa q^1/(L-1)` at each depth :math:`L` (``branch_share``
        :math:`= \kappa`) instead of ``alpha2``.
    branch_share : float, default=1.0
    k : float, default=6.0
    max_depth : int, default=10000
        Returns ``inf`` when the criterion still holds there.
    **kwargs
        Passed to :func:`propagate` (``sigma_m2``, ``q0``, ``c0``, ...).

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_bnn.meanfield.residual import trainable_depth
    >>> trainable_depth(1.0, skip=0.0)            # the plain 1-bit network: ~ 6 xi_c
    14.0
    >>> trainable_depth(1.0), trainable_depth(depth_scaled=True)
    (inf, inf)
    """
    if depth_scaled:
        def log_sens(depth):
            a2 = _depth_scaled_alpha2(depth, branch_share, kwargs.get("sigma_m2", 1.0),
                                      kwargs.get("sigma_b2", 0.0), kwargs.get("q0", 1.0))
            return propagate(depth, a2, sigma_beta2, skip=skip, **kwargs).log_sensitivity

        lo, hi = 1, int(max_depth)
        if log_sens(hi) >= -k:
            return math.inf
        while hi - lo > 1:  # the depth-scaled sensitivity is monotone in depth
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if log_sens(mid) >= -k else (lo, mid)
        return float(lo)
    if alpha2 is None:
        raise ValueError("give alpha2, or depth_scaled=True.")
    p = propagate(int(max_depth), float(alpha2), sigma_beta2, skip=skip, **kwargs)
    with np.errstate(divide="ignore"):
        cum = np.cumsum(np.log(p.chi))
    below = np.flatnonzero(cum < -k)
    return math.inf if below.size == 0 else float(below[0])


def _depth_scaled_alpha2(depth, branch_share, sigma_m2, sigma_b2, q0) -> float:
    q1 = sigma_m2 * q0 + sigma_b2
    return branch_share * q1 / max(depth - 1, 1)


@dataclass(frozen=True)
class ResidualCriticalInit:
    r"""What :func:`critical_init` chose for the residual 1-bit network, and why.

    Attributes
    ----------
    sigma_m2 : float
        Weight means :math:`\pm\sqrt{\sigma_m^2}` (the real first layer's weights too).
    sigma_b2 : float
        Variance of the first layer's biases.
    alpha : float
        Initial branch scale :math:`\gamma^l_i = \alpha` of every block.
    sigma_beta2 : float
        Variance of the branch offsets :math:`\beta^l` (the blocks' biases).
    branch_share : float
        :math:`\kappa` in :math:`\alpha^2 = \kappa q^1/(L-1)`.
    depth : int
    criterion : str
    correlation_sensitivity : float
        :math:`\partial c^L/\partial c_0` at this init (:math:`q_0 = 1`, :math:`c_0 = 0.5`).
    grad_gain : float
        Straight-through squared-gradient gain through all blocks (Gaussian proxy, scale 1).
    trainable_depth : float
        :func:`trainable_depth` of this family (``inf``: no finite bound).
    message : str

    Examples
    --------
    >>> from sklearn_bnn.meanfield.residual import critical_init
    >>> ci = critical_init(10)
    >>> ci.criterion, ci.depth, sorted(ci.as_dict())[:3]
    ('depth-scaled branch', 10, ['alpha', 'branch_share', 'correlation_sensitivity'])
    """

    sigma_m2: float
    sigma_b2: float
    alpha: float
    sigma_beta2: float
    branch_share: float
    depth: int
    criterion: str
    correlation_sensitivity: float
    grad_gain: float
    trainable_depth: float
    message: str

    def as_dict(self) -> dict:
        """Plain-python summary (for the estimator's ``critical_init_``)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def critical_init(
    depth: int,
    *,
    sigma_m2: float = DEFAULT_SIGMA_M2,
    sigma_b2: float = 0.0,
    branch_share: float = DEFAULT_BRANCH_SHARE,
    q0: float = 1.0,
) -> ResidualCriticalInit:
    r"""The critical initialisation of the residual 1-bit network of depth ``depth``.

    Criterion (``"depth-scaled branch"``): the residual maps have :math:`\xi_c = \infty` for
    every branch scale (module docstring), so what remains to choose is how much the blocks
    together move the stream.  The branch scale is :math:`\alpha^2 = \kappa q^1/(L-1)`
    (:math:`q^1 = \sigma_m^2 q_0 + \sigma_b^2`), which makes the maps, hence
    :math:`\partial c^L/\partial c_0` and the gradient gain, converge to depth-independent
    values of order one; the branch offsets start at zero, which maximises
    :math:`\partial c^L/\partial c_0` among the inits that add the same variance
    (an offset adds correlation but no slope).  :math:`\partial c^L/\partial c_0` itself
    decreases monotonically in :math:`\kappa` (1 at :math:`\kappa = 0`, where the blocks do
    nothing), so :math:`\kappa` is not chosen by it; ``branch_share`` is a documented choice.

    Parameters
    ----------
    depth : int >= 1
        Hidden layers (the real first layer and ``depth - 1`` blocks).
    sigma_m2 : float in (0, 1], default=0.5
        Second moment of the weight means (all layers).
    sigma_b2 : float >= 0, default=0.0
        Variance of the first layer's biases.
    branch_share : float > 0, default=1.0
        :math:`\kappa`.
    q0 : float > 0, default=1.0
        Input length (1 for standardised features).

    Returns
    -------
    ResidualCriticalInit

    Examples
    --------
    >>> from sklearn_bnn.meanfield.residual import critical_init
    >>> ci = critical_init(30)
    >>> round(ci.alpha ** 2 * 29 / ci.sigma_m2, 6), ci.sigma_beta2, ci.trainable_depth
    (1.0, 0.0, inf)
    >>> round(ci.correlation_sensitivity, 3)
    0.821
    """
    depth = _check_depth(depth)
    if not (0.0 < sigma_m2 <= 1.0):
        raise ValueError(f"sigma_m2={sigma_m2!r} must lie in (0, 1].")
    if not (branch_share > 0.0 and math.isfinite(branch_share)):
        raise ValueError(f"branch_share={branch_share!r} must be a finite number > 0.")
    alpha2 = _depth_scaled_alpha2(depth, branch_share, sigma_m2, sigma_b2, q0)
    p = propagate(depth, alpha2, 0.0, sigma_m2=sigma_m2, sigma_b2=sigma_b2, q0=q0, c0=0.5)
    td = trainable_depth(depth_scaled=True, branch_share=branch_share, sigma_m2=sigma_m2,
                         sigma_b2=sigma_b2, q0=q0)
    sens = p.sensitivity
    gain = math.exp(p.log_grad_gain)
    msg = (
        f"residual 1-bit network, depth {depth}: branch scale alpha={math.sqrt(alpha2):.4g} "
        f"(alpha^2 = {branch_share:g} q1/(L-1)), offsets 0; dc_L/dc_0={sens:.3g}, "
        f"gradient gain {gain:.3g}; xi_c = inf (power-law correlation decay)"
    )
    return ResidualCriticalInit(
        float(sigma_m2), float(sigma_b2), math.sqrt(alpha2), 0.0, float(branch_share), depth,
        "depth-scaled branch", sens, gain, td, msg,
    )

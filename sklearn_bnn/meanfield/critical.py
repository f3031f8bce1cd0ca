r"""Fixed points, depth scales and the critical initialisation [SGL20]_.

What "critical" means here (an open point of the theory, settled with numbers)
------------------------------------------------------------------------------
1. **Exact.** Where the fixed-point slope :math:`\chi_1(\sigma_m^2, \sigma_b^2) = 1` has a
   solution with :math:`\sigma_m^2 \le 1` (at the requested :math:`\sigma_b^2`) *and*
   :math:`c = 1` is a fixed point of the correlation map there (so :math:`\xi_c = \infty`),
   :func:`critical_init` returns it (criterion ``"exact chi_1=1"``).  For the surrogates of
   this package that happens only for S2 (``"lrt_continuous"``) at :math:`\sigma_m^2 = 1`
   (at :math:`\sigma_b^2 = 0` with a slope-1 neuron: uniform noise of scale 1, logistic of
   scale 1/2, Gaussian of scale :math:`\sqrt{2/\pi}`), the corner of [SGL20]_.  S1 never
   has one (its neuron, Gaussian-smoothed by the field variance, is at most as steep as the
   sign map: literal sign map's :math:`\chi_1 < 0.71`); S3 and the sampled network never have
   :math:`c = 1` as a fixed point (:math:`c'(1) = (\sigma_m^2 E[\phi^2] + \sigma_b^2)/(1 +
   \sigma_b^2) < 1`), so :math:`\chi_1 = 1` there is not criticality.
2. **Depth-aware**, otherwise.  For the deterministic surrogate with the literal
   sign-neuron map, :math:`\chi_1 < 1` for every :math:`\sigma_m^2 \le 1` once
   :math:`\sigma_b^2 > 0` (fixed-point :math:`\chi_1 \approx 0.64\,\sigma_m^2` as
   :math:`\sigma_b^2 \to 0^+`), yet at :math:`\sigma_b^2 = 0` correlations survive a long
   transient because the field shrinks (:math:`q^L \approx (0.64\sigma_m^2)^L`) and the map
   becomes linear.  That transient is not a working network: the squared-gradient gain falls
   just as fast.  Numbers from :func:`~sklearn_bnn.meanfield.propagate` (``"deterministic"``,
   noise ``"sign"``, :math:`q_0 = 1`, :math:`c_0 = 0.5`):

   ======  ==========  ===========  ===================  ======================  ===========
   depth   sigma_b2    sigma_m2     q^L                  grad gain (L-1 layers)  dc^L/dc^0
   ======  ==========  ===========  ===================  ======================  ===========
   10      0           0.5          1.8e-5               3.9e-5                  0.985
   10      0           0.9          8.4e-3               2.3e-2                  0.840
   30      0           0.9          1.2e-7               3.3e-7                  0.840
   10      1e-3        0.5          1.5e-3               3.9e-5                  3.7e-3
   10      1e-3        0.9          1.1e-2               2.3e-2                  0.565
   10      1e-3        0.95         1.9e-2               6.8e-2                  **0.603**
   10      1e-3        0.99         3.6e-2               0.45                    0.521
   30      1e-3        0.9          2.3e-3               3.2e-7                  2.5e-5
   30      1e-3        0.99         2.7e-3               4.3e-5                  4.4e-4
   ======  ==========  ===========  ===================  ======================  ===========

   With :math:`\sigma_b^2 = 0` the correlation sensitivity :math:`\partial c^L/\partial c^0`
   is near 1 for *every* :math:`\sigma_m^2` (largest for the smallest!) while the signal and
   the gradient vanish geometrically: a criterion built on it would pick the ordered phase.
   A small bias (default :math:`\sigma_b^2 = 10^{-3}`) puts a floor under :math:`q` so that a
   collapsed signal shows up as :math:`c^L \to 1`, and then the depth-:math:`L` sensitivity

   .. math::  S_L(\sigma_m^2) = \prod_{l=1}^{L} \chi^l = \partial c^{L+1} / \partial c^1
              \quad (\text{along the trajectory from } q_0 = 1,\ c_0 = 0.5)

   penalises both failure modes: collapse onto :math:`c = 1` (ordered) and decorrelation
   (means near :math:`\pm 1` make the first layers sign-like).  The depth-aware critical
   init is :math:`\arg\max_{\sigma_m^2 \in [0.01, 0.99]} S_L` (criterion
   ``"depth-aware max dc_L/dc_0"``).  It picks 0.945 at depth 10 for the literal sign map,
   and it reports how small :math:`S_L` is: depth 30 with the literal map keeps only
   :math:`S_L \sim 4\cdot10^{-4}` of the correlation signal.  How the chosen
   :math:`\sigma_m^2` compares with the best-training band at each depth, for S1 (literal
   and unit slope) and S3, is measured by ``benchmarks/depth.py`` (the user guide's
   "Trainable depth" page and :doc:`/benchmarks`).  The unit slope (``slope`` below,
   :data:`sklearn_bnn._constants.UNIT_SLOPE`) makes the per-layer factor
   :math:`\sigma_m^2` instead of :math:`\tfrac2\pi\sigma_m^2`.  The upper bound 0.99
   (not 1) is deliberate: at :math:`\sigma_m^2 = 1` the first-layer variance
   :math:`(1 - \sigma_m^2) q_0` vanishes (only the network's 1e-4 remains) and the
   surrogate degenerates into the 1-bit network.
3. **The 1-bit network** (``"binary"``) is never critical: its correlation map is
   :math:`c' = \tfrac2\pi\arcsin((c + b)/(1 + b))` with the threshold variance
   :math:`b = \sigma_b^2/\sigma_m^2` (each bias is folded into a threshold
   :math:`b_i/\operatorname{mean}_j|M_{ij}|`), whose slope at its fixed point lies between
   0.5 and :math:`2/\pi`.  Its forward pass depends on the init through :math:`b` only, so
   the same depth-aware criterion applies: :math:`S_L` grows as :math:`b` shrinks, and at a
   given :math:`\sigma_b^2` the argmax is the largest :math:`\sigma_m^2` searched (0.99).

Without a depth, the criterion is the fixed point's: the :math:`\sigma_m^2 \le 0.99` with
the largest :math:`\xi_c`.

References
----------
.. [SGL20] G. Stamatescu, F. Gerace, C. Lucibello, I. Fuss, L. White. Critical
   initialisation in continuous approximations of binary neural networks. ICLR 2020,
   arXiv:1902.00177.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from ._batch import log_sensitivity
from .maps import (
    SURROGATES,
    _check_slope,
    _check_surrogate,
    _layer,
    _resolve_scale,
    _validate,
    effective_bias_variance,
    layer_neuron,
)

__all__ = [
    "CriticalInit",
    "FixedPoint",
    "critical_init",
    "critical_model",
    "fixed_point",
    "phase_diagram",
]

#: Bias variance used by the depth-aware criterion when none is given.
DEFAULT_SIGMA_B2 = 1e-3
#: Range of sigma_m^2 searched by the depth-aware criterion.
SIGMA_M2_RANGE = (0.01, 0.99)
#: Schoenholz et al.: networks train up to about this many correlation depth scales.
TRAINABLE_DEPTH_FACTOR = 6.0


@dataclass(frozen=True)
class FixedPoint:
    """Fixed point of the hidden-layer maps.

    Attributes
    ----------
    q_star : float
        Field second moment :math:`q^*` at the fixed point.
    c_star : float
        Stable fixed point of the correlation map.
    chi_1 : float
        :math:`a E[\\phi'(h)^2]` at :math:`q^*` (slope of the c-map at :math:`c = 1`).
    chi_c : float
        Slope of the c-map at :math:`c^*`.
    xi_c : float
        Correlation depth scale :math:`-1/\\ln \\chi_{c^*}` (inf when marginal).

    Examples
    --------
    >>> from sklearn_bnn.meanfield import fixed_point
    >>> fp = fixed_point("lrt_continuous", "uniform", 1.0, 0.0)
    >>> fp.chi_1, fp.xi_c, fp.trainable_depth
    (1.0, inf, inf)
    """

    q_star: float
    c_star: float
    chi_1: float
    chi_c: float
    xi_c: float

    @property
    def trainable_depth(self) -> float:
        """About ``6 * xi_c`` (Schoenholz et al. 2017; [SGL20]_ on MNIST)."""
        return TRAINABLE_DEPTH_FACTOR * self.xi_c


def _hidden(surrogate, noise, s, sm2, sb2, Q, C, slope=1.0):
    spec = SURROGATES[surrogate]
    return _layer(spec, surrogate, noise, s, sm2, sb2, Q, Q, C, False, slope)


def fixed_point(
    surrogate: str,
    noise: str,
    sigma_m2: float,
    sigma_b2: float,
    noise_scale: float | None = None,
    slope: float = 1.0,
) -> FixedPoint:
    r"""Fixed point :math:`q^*, c^*` of the hidden-layer maps, :math:`\chi_1` and :math:`\xi_c`.

    :math:`\chi_1 = a E[\phi'(h)^2]`, :math:`h \sim N(0, q^*)` (:math:`a = \sigma_m^2`, or 1
    for ``"sampled"``/``"binary"``), equal to :math:`\partial c'/\partial c` at :math:`c = 1`
    whenever :math:`c = 1` is a fixed point.  For the deterministic surrogate at
    :math:`\sigma_b^2 = 0` the only fixed point is :math:`q^* = 0` and the values reported are
    the :math:`\sigma_b^2 \to 0^+` limit (see :mod:`.critical` for why the transient there is
    not criticality).  :math:`\xi_c = -1/\ln\chi_{c^*}` [SGL20]_.

    Examples
    --------
    >>> from sklearn_bnn.meanfield import fixed_point
    >>> fp = fixed_point("deterministic", "sign", 0.5, 0.0)
    >>> round(fp.chi_1, 4), fp.q_star        # (2/pi) * 0.5, the open point's limit
    (0.3183, 0.0)
    >>> fixed_point("lrt_continuous", "uniform", 1.0, 0.0).chi_1
    1.0
    """
    _check_surrogate(surrogate)
    s = _resolve_scale(noise, noise_scale)
    slope = _check_slope(surrogate, slope)
    _validate(sigma_m2, sigma_b2)
    spec = SURROGATES[surrogate]
    sb2 = float(effective_bias_variance(surrogate, sigma_m2, sigma_b2))

    def qmap(Q):
        return _hidden(surrogate, noise, s, sigma_m2, sb2, Q, Q, slope)[3]

    if spec.binary_units:
        Q = 1.0
    elif not spec.smoothed and not spec.real_units_variance:  # S3: field variance fixed
        Q = qmap(1.0)
    else:
        g0 = qmap(0.0)
        if g0 <= 0.0:
            Q = 0.0
        else:
            g1 = qmap(1.0) - 1.0
            Q = 1.0 if g1 >= 0.0 else brentq(lambda v: qmap(v) - v, 0.0, 1.0, xtol=1e-14)
    q_a, _, _, _, _, _, _, gain, a = _hidden(surrogate, noise, s, sigma_m2, sb2, Q, Q, slope)
    q_star = q_a
    chi_1 = gain

    # Work directly in field correlation: next field cov = a C'(q*, c) + sb2.
    sig = max(1.0 - sigma_m2 * Q, 0.0) if spec.smoothed else 0.0
    nrn = layer_neuron(surrogate, noise, s, sig, slope)

    def c_next(c):
        if q_star <= 0.0:
            return c
        _, _, C2, _ = nrn.second_moments(q_star, q_star, c * q_star)
        return (a * C2 + sb2) / q_star

    def c_map_slope(c):
        if q_star <= 0.0:
            return chi_1
        D = nrn.second_moments(q_star, q_star, c * q_star)[3]
        return a * D

    if q_star <= 0.0 or abs(c_next(1.0) - 1.0) < 1e-10 and chi_1 <= 1.0 + 1e-9:
        c_star, chi_c = 1.0, chi_1
    else:
        hi = 1.0 if c_next(1.0) < 1.0 - 1e-10 else 1.0 - 1e-6
        lo = -1.0 + 1e-12
        f_lo, f_hi = c_next(lo) - lo, c_next(hi) - hi
        if f_lo * f_hi > 0:
            c_star = hi
        else:
            c_star = brentq(lambda c: c_next(c) - c, lo, hi, xtol=1e-13)
        chi_c = c_map_slope(c_star)
    if chi_c >= 1.0 - 1e-12:
        xi_c = math.inf
    else:
        xi_c = -1.0 / math.log(chi_c) if chi_c > 0.0 else 0.0
    return FixedPoint(float(q_star), float(c_star), float(chi_1), float(chi_c), float(xi_c))


@dataclass(frozen=True)
class CriticalInit:
    """What :func:`critical_init` chose and why.

    Attributes
    ----------
    sigma_m2, sigma_b2 : float
        The init: means :math:`\\pm\\sqrt{\\sigma_m^2}`, biases :math:`N(0, \\sigma_b^2)`.
    criterion : str
        ``"exact chi_1=1"``, ``"depth-aware max dc_L/dc_0"`` or ``"max xi_c"``.
    exact : bool
        Whether an exact critical point :math:`\\chi_1 = 1` exists (and was used).
    message : str
        One line for humans.
    fixed_point : FixedPoint
        Fixed point at the chosen init.
    depth : int or None
        Depth the criterion used.
    correlation_sensitivity : float or None
        :math:`\\partial c^L/\\partial c^0` at the chosen init (depth-aware criterion).
    slope : float
        Slope of the S1 neuron the answer is for.

    Examples
    --------
    >>> from sklearn_bnn.meanfield import critical_init
    >>> ci = critical_init("lrt_continuous", "uniform", sigma_b2=0.0)
    >>> ci.exact, ci.sigma_m2, ci.sigma_b2
    (True, 1.0, 0.0)
    >>> sorted(ci.as_dict())  # doctest: +NORMALIZE_WHITESPACE
    ['chi_1', 'correlation_sensitivity', 'criterion', 'depth', 'exact', 'message',
     'q_star', 'sigma_b2', 'sigma_m2', 'slope', 'trainable_depth', 'xi_c']
    """

    sigma_m2: float
    sigma_b2: float
    criterion: str
    exact: bool
    message: str
    fixed_point: FixedPoint
    depth: int | None = None
    correlation_sensitivity: float | None = None
    slope: float = 1.0

    def as_dict(self) -> dict:
        """Plain-python summary (for ``critical_init_`` of the estimator)."""
        fp = self.fixed_point
        return {
            "sigma_m2": self.sigma_m2,
            "sigma_b2": self.sigma_b2,
            "criterion": self.criterion,
            "exact": self.exact,
            "message": self.message,
            "depth": self.depth,
            "q_star": fp.q_star,
            "chi_1": fp.chi_1,
            "xi_c": fp.xi_c,
            "trainable_depth": fp.trainable_depth,
            "correlation_sensitivity": self.correlation_sensitivity,
            "slope": self.slope,
        }


def _exact(surrogate, noise, s, sigma_b2, slope=1.0):
    """sigma_m2 with chi_1 = 1 *and* c = 1 a fixed point of the c-map (xi_c infinite), or None.

    chi_1 = 1 alone is not criticality where c = 1 is not a fixed point (S2 unless
    sigma_m2 = 1, S3 and the sampled network always): there the stable c* < 1 has a slope < 1.
    """
    def f(sm2):
        return fixed_point(surrogate, noise, sm2, sigma_b2, s, slope).chi_1 - 1.0

    hi = f(1.0)
    if not math.isfinite(hi) or hi < -1e-9:
        return None
    if abs(hi) <= 1e-9:
        sm2 = 1.0
    else:
        lo = 1e-6
        if f(lo) > 0.0:
            return None
        sm2 = brentq(f, lo, 1.0, xtol=1e-12)
    fp = fixed_point(surrogate, noise, sm2, sigma_b2, s, slope)
    return sm2 if fp.c_star > 1.0 - 1e-9 and abs(fp.chi_1 - 1.0) < 1e-6 else None


#: Points of the first grid over SIGMA_M2_RANGE, and of the two zoomed grids that follow.
_GRID_POINTS = 25
_ZOOM_POINTS = (17, 9)


def _depth_aware_argmax(theory, noise, s, sb2, depth, grid, slope=1.0):
    """argmax of the depth-``depth`` log sensitivity over ``grid``, then two zoomed grids
    around the best point (each evaluated in one vectorised pass, :mod:`._batch`); the final
    spacing is 0.08 / 16 / 8 = 6e-4 for the default 25-point grid.  Returns (sigma_m2, log S)."""
    vals = log_sensitivity(theory, noise, s, grid, sb2, depth, slope=slope)
    i = int(np.argmax(vals))
    best, best_val = float(grid[i]), float(vals[i])
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    for n in _ZOOM_POINTS:
        xs = np.linspace(a, b, n)
        v = log_sensitivity(theory, noise, s, xs, sb2, depth, slope=slope)
        j = int(np.argmax(v))
        if v[j] > best_val:
            best, best_val = float(xs[j]), float(v[j])
        else:
            j = int(np.argmin(np.abs(xs - best)))
        a, b = xs[max(j - 1, 0)], xs[min(j + 1, n - 1)]
    return best, best_val


def critical_model(surrogate: str) -> str:
    """The mean-field model :func:`critical_init` judges ``surrogate`` by.

    ``"sampled"`` is judged by ``"lrt"`` (see :func:`critical_init`); every other model by
    itself.

    Examples
    --------
    >>> from sklearn_bnn.meanfield.critical import critical_model
    >>> critical_model("sampled"), critical_model("binary")
    ('lrt', 'binary')
    """
    return _check_surrogate(surrogate).critical_by or surrogate


def critical_init(
    surrogate: str,
    noise: str,
    depth: int | None = None,
    sigma_b2: float | None = None,
    noise_scale: float | None = None,
    slope: float = 1.0,
) -> CriticalInit:
    r"""The critical initialisation of a binary network (see :mod:`.critical` for the criterion).

    Parameters
    ----------
    surrogate : str
        As in :func:`~sklearn_bnn.meanfield.propagate`.  ``"sampled"`` uses the ``"lrt"``
        criterion (at init, one weight sample of random-sign means is a fair ±1 matrix for any
        :math:`\sigma_m^2`, so the sampled forward alone cannot choose it; the trained object,
        the expected network, follows the LRT Markov chain).  ``"binary"`` (the 1-bit
        network) has no critical point; it gets the depth-aware criterion on its own map,
        which depends on :math:`\sigma_b^2/\sigma_m^2` only (see :mod:`.critical`).
    noise : {"sign", "gaussian", "logistic", "uniform"}
    depth : int, optional
        Number of binary layers; enables the depth-aware criterion.
    sigma_b2 : float, optional
        Bias variance; default ``1e-3``.
    noise_scale : float, optional
    slope : float > 0, default=1.0
        Slope of the S1 neuron (``surrogate="deterministic"`` only), as
        ``BinaryNetClassifier(slope=...)``; :data:`sklearn_bnn.nn.surrogates.UNIT_SLOPE`
        moves the critical line into reach: :math:`\chi_1 \to 1` as
        :math:`(\sigma_m^2, \sigma_b^2) \to (1, 0)`.

    Returns
    -------
    CriticalInit

    Examples
    --------
    >>> from sklearn_bnn.meanfield import critical_init
    >>> ci = critical_init("lrt_continuous", "uniform", sigma_b2=0.0)   # hardtanh, slope 1
    >>> ci.criterion, ci.sigma_m2, ci.fixed_point.chi_1
    ('exact chi_1=1', 1.0, 1.0)
    >>> ci = critical_init("deterministic", "sign", depth=10)
    >>> ci.criterion, round(ci.sigma_m2, 2), ci.exact
    ('depth-aware max dc_L/dc_0', 0.95, False)
    >>> critical_init("binary", "gaussian", depth=10).sigma_m2   # b = sigma_b2/sigma_m2 smallest
    0.99
    """
    theory = critical_model(surrogate)
    s = _resolve_scale(noise, noise_scale)
    slope = _check_slope(surrogate, slope)
    sb2 = DEFAULT_SIGMA_B2 if sigma_b2 is None else float(sigma_b2)
    _validate(0.5, sb2)
    if depth is not None and not (isinstance(depth, int | np.integer) and depth >= 1):
        raise ValueError(f"depth={depth!r} must be a positive integer or None.")
    sm2 = _exact(theory, noise, s, sb2, slope)
    if sm2 is not None:
        fp = fixed_point(theory, noise, sm2, sb2, s, slope)
        return CriticalInit(
            sm2, sb2, "exact chi_1=1", True,
            f"exact critical point: chi_1 = 1 at sigma_m2={sm2:.4g}, sigma_b2={sb2:.3g}",
            fp, depth, slope=slope,
        )
    lo, hi = SIGMA_M2_RANGE
    grid = np.linspace(lo, hi, _GRID_POINTS)
    if depth is None:
        def score(v):
            return -fixed_point(theory, noise, v, sb2, s, slope).xi_c
        criterion = "max xi_c"
        vals = np.array([score(v) for v in grid])
        i = int(np.argmin(vals))
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(score, bounds=(a, b), method="bounded", options={"xatol": 1e-4})
        sm2 = float(res.x) if res.fun <= vals[i] else float(grid[i])
        sens = None
    else:
        criterion = "depth-aware max dc_L/dc_0"
        sm2, log_sens = _depth_aware_argmax(theory, noise, s, sb2, int(depth), grid, slope)
        sens = float(math.exp(log_sens))
    fp = fixed_point(theory, noise, sm2, sb2, s, slope)
    msg = (
        f"no exact critical point at sigma_b2={sb2:.3g}; "
        f"{criterion}: sigma_m2={sm2:.4g}, chi_1={fp.chi_1:.3g}, xi_c={fp.xi_c:.3g}"
        + ("" if sens is None else f", dc_L/dc_0={sens:.3g} over {depth} layers")
    )
    return CriticalInit(sm2, sb2, criterion, False, msg, fp, depth, sens, slope)


def phase_diagram(
    surrogate: str,
    noise: str,
    sigma_m2: np.ndarray | None = None,
    sigma_b2: np.ndarray | None = None,
    noise_scale: float | None = None,
    slope: float = 1.0,
) -> dict[str, np.ndarray]:
    r""":math:`\chi_1` and :math:`\xi_c` over a grid of :math:`(\sigma_m^2, \sigma_b^2)`.

    Returns
    -------
    dict
        ``sigma_m2`` (n,), ``sigma_b2`` (m,), ``chi_1`` and ``xi_c`` of shape (m, n).

    Examples
    --------
    >>> from sklearn_bnn.meanfield import phase_diagram
    >>> pd = phase_diagram("deterministic", "sign", [0.5, 0.9], [0.01, 0.1])
    >>> pd["chi_1"].shape, bool((pd["chi_1"] < 1).all())
    ((2, 2), True)
    """
    sm = np.linspace(0.05, 1.0, 20) if sigma_m2 is None else np.asarray(sigma_m2, float)
    sb = np.linspace(0.0, 0.2, 11) if sigma_b2 is None else np.asarray(sigma_b2, float)
    chi = np.empty((sb.size, sm.size))
    xi = np.empty_like(chi)
    for i, b in enumerate(sb):
        for j, m in enumerate(sm):
            fp = fixed_point(surrogate, noise, float(m), float(b), noise_scale, slope)
            chi[i, j], xi[i, j] = fp.chi_1, fp.xi_c
    return {"sigma_m2": sm, "sigma_b2": sb, "chi_1": chi, "xi_c": xi}

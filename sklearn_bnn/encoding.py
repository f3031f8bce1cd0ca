r"""Input encodings for the first layer: quantile thermometer codes.

A binary first layer on :math:`d` real features computes
:math:`\sum_j \operatorname{sign}(M_{ij})\, x_j`: it can only draw hyperplanes whose normals
lie in :math:`\{-1, +1\}^d`, and every feature enters every unit with the same magnitude.
A *thermometer code* gives each feature :math:`x_j` extra :math:`\pm 1` inputs

.. math::  b_{jk} = \begin{cases} +1 & x_j \ge t_{jk} \\ -1 & \text{otherwise} \end{cases}
    \qquad (k = 1, \dots, K_j),

at thresholds :math:`t_{jk}` from the training data's quantiles, each moved to the middle of
the gap between the two adjacent distinct training values around it (as histogram gradient
boosting places its bin edges): no training value sits on a threshold (unless two
distinct training values are adjacent float32 numbers, when the threshold is the upper
one), so two float32 computations of the same scaled input that differ by an ulp give the
same code wherever adjacent training values are more than two ulps apart.  Through
binary weights :math:`s_{jk}` a unit then sees :math:`\sum_k s_{jk} b_{jk}`, a step function of
:math:`x_j` with :math:`K_j + 1` levels that need not be monotone: the layer learns a
per-feature response curve, the way a tree splits a feature, and heavy tails or outliers
move no more than one threshold.  Keeping the raw (standardised) features beside the code
(``keep_raw=True``) keeps the linear directions too.  A real first layer
(``first_layer="real"``, the estimators' default) weighs the bits with real weights, a
learned step function of each feature all the same.

The thresholds are float32 numbers compared with the float32 input, so the code is the same
bit for bit in numpy, torch, ONNX and C (:class:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork`
stores ``feature`` and ``threshold`` arrays and applies them exactly).

:class:`ThermometerEncoder` is a scikit-learn transformer;
:class:`~sklearn_bnn.BinaryNetClassifier` fits one itself when ``encoding`` asks for it, so
that the exported 1-bit network includes its input code.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from .deploy.packed import InputCode, thermometer_code

__all__ = ["CUT_FRACTION", "ENCODINGS", "ThermometerEncoder"]

#: The ``encoding`` values of the estimators: name -> (keep the raw features, thermometer
#: bits).  ``"raw"`` is no encoding.
ENCODINGS: dict[str, tuple[bool, bool]] = {
    "raw": (True, False),
    "thermometer": (False, True),
    "raw+thermometer": (True, True),
}

# Rows used to place the quantiles (a seeded subsample beyond it), as KBinsDiscretizer.
_QUANTILE_ROWS = 200_000


#: Where in the gap between two adjacent distinct training values a threshold sits, as a
#: fraction of the gap from the lower value: (3 - sqrt 5) / 2, the golden section, not one
#: half.  On a grid (integers, prices in cents, any value standardised from them) the
#: midpoint of a gap around one missing grid value *is* that value, so a new row holding it
#: would sit exactly on the threshold; ``m`` grid steps times the golden section is never
#: a whole number of steps (at least ``1 / (sqrt(5) m)`` of a step away).
CUT_FRACTION = (3 - 5**0.5) / 2


def _column_thresholds(cuts: np.ndarray, column: np.ndarray) -> np.ndarray:
    """The distinct quantile cuts above the column's minimum (a cut at the minimum is a
    constant bit), each moved into the gap between the adjacent distinct values of
    ``column`` that holds it, at :data:`CUT_FRACTION` of it (histogram gradient boosting
    places its bin edges at the midpoints): no training value sits on a threshold, nor a
    new value on the grid the training values lie on, so a rounding of one ulp cannot move
    such a row across one, and every training row keeps the bit the cut gave it.  A column
    with two or more distinct values whose cuts all sit at its minimum (a rare level, e.g.
    a one-hot column) gets one bit, between its two lowest values."""
    values = np.unique(column)
    if len(values) < 2:
        return values[:0]
    t = np.unique(cuts)
    t = t[t > values[0]]
    gap = np.searchsorted(values, t, side="left") if len(t) else np.array([1])
    return _cut_points(values[gap - 1], values[gap])


def _cut_points(below: np.ndarray, above: np.ndarray) -> np.ndarray:
    """A float32 threshold ``t`` with ``below < t <= above``, at :data:`CUT_FRACTION` of
    the gap where float32 allows."""
    below64, above64 = below.astype(np.float64), above.astype(np.float64)
    t = (below64 + CUT_FRACTION * (above64 - below64)).astype(np.float32)
    return np.where(t > below, t, above).astype(np.float32)


class ThermometerEncoder(TransformerMixin, BaseEstimator):
    r"""Quantile thermometer code of every feature, :math:`\pm 1` (float32).

    Parameters
    ----------
    n_bins : int, default=8
        Quantile bins per feature, so at most ``n_bins - 1`` thresholds (bits) per feature;
        fewer where the feature has few distinct values (a binary feature gets one bit,
        even when one of its values is rare); a constant feature gets none.
    keep_raw : bool, default=True
        Put the input features (as float32) before the bits.
    random_state : int, RandomState instance or None, default=None
        Seeds the row subsample used for the quantiles on more than 200,000 rows.

    Attributes
    ----------
    feature_ : ndarray of int, shape (n_bits,)
        Input column of each bit.
    threshold_ : ndarray of float32, shape (n_bits,)
        Bit :math:`k` is +1 iff ``X[:, feature_[k]] >= threshold_[k]``; each threshold lies
        between two adjacent distinct training values of its feature, at
        :data:`CUT_FRACTION` (the golden section) of the gap from the lower one.
    n_features_in_ : int
    n_features_out_ : int
    first_bit_ : int
        Output column of the first bit: ``n_features_in_`` with ``keep_raw``, else 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bnn.encoding import ThermometerEncoder
    >>> X = np.arange(8, dtype=float).reshape(-1, 1)
    >>> enc = ThermometerEncoder(n_bins=4, keep_raw=False).fit(X)
    >>> enc.threshold_  # the cuts 1.75, 3.5, 5.25, moved into their gaps of the values
    array([1.381966, 3.381966, 5.381966], dtype=float32)
    >>> enc.transform(X[[0, 4, 7]])
    array([[-1., -1., -1.],
           [ 1.,  1., -1.],
           [ 1.,  1.,  1.]], dtype=float32)
    """

    _parameter_constraints: dict = {
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "keep_raw": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, n_bins=8, *, keep_raw=True, random_state=None):
        self.n_bins = n_bins
        self.keep_raw = keep_raw
        self.random_state = random_state

    def fit(self, X, y=None):
        """Place the thresholds at the quantiles of each column of ``X``."""
        self._validate_params()
        X = validate_data(self, X, dtype=np.float32)
        rows = X
        if len(X) > _QUANTILE_ROWS:
            rng = check_random_state(self.random_state)
            rows = X[rng.choice(len(X), _QUANTILE_ROWS, replace=False)]
        levels = np.arange(1, self.n_bins) / self.n_bins
        cuts = np.quantile(rows.astype(np.float64), levels, axis=0).astype(np.float32)
        features, thresholds = [], []
        for j in range(X.shape[1]):
            t = _column_thresholds(cuts[:, j], X[:, j])
            features.append(np.full(len(t), j, dtype=np.intp))
            thresholds.append(t)
        self.feature_ = np.concatenate(features)
        self.threshold_ = np.concatenate(thresholds).astype(np.float32)
        self.n_features_out_ = X.shape[1] * self.keep_raw + len(self.feature_)
        if self.n_features_out_ == 0:
            raise ValueError(
                "ThermometerEncoder(keep_raw=False) found no feature with two distinct "
                "values, so the code would be empty. Give it varying features, or keep_raw=True."
            )
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def transform(self, X):
        """The code of ``X``: float32, shape (n_samples, ``n_features_out_``)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return thermometer_code(X, self.feature_, self.threshold_, self.keep_raw)

    @property
    def first_bit_(self) -> int:
        """Output column of the first bit: the raw features come first when kept."""
        check_is_fitted(self)
        return self.n_features_in_ if self.keep_raw else 0

    def input_code(self) -> InputCode:
        """The fitted code as the packed network stores it."""
        check_is_fitted(self)
        feature = self.feature_.astype(np.int32)
        return InputCode(self.n_features_in_, feature, self.threshold_, self.keep_raw)

    def get_feature_names_out(self, input_features=None):
        """Raw names, then ``"<name> >= <threshold>"`` per bit."""
        from sklearn.utils.validation import _check_feature_names_in

        names = _check_feature_names_in(self, input_features)
        bits = [f"{names[j]} >= {t:g}" for j, t in zip(self.feature_, self.threshold_)]
        return np.asarray([*(names if self.keep_raw else []), *bits], dtype=object)

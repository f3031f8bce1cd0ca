"""BinaryNetClassifier: a stochastic binary neural network as a scikit-learn classifier.

This module is plumbing only: parameters, validation, labels, devices, seeding and the
fitted attributes.  The math lives in :mod:`sklearn_bnn.nn` and the loop in
:mod:`sklearn_bnn._training`.
"""

from __future__ import annotations

import copy
import io
import pickle
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call, check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._training import (
    ANNEALED,
    EpochCheckpoint,
    FiniteLoss,
    FlipRatio,
    LearningRateSchedule,
    SBNNet,
    SCHEDULES,
    auto_batch_size,
    auto_epochs,
    fused_adam,
    TensorBatches,
    TensorData,
    TrainingDivergedError,
    ValidAccuracy,
    forward_proba,
    get_rng_state,
    history_without_batches,
    set_rng_state,
    to_numpy,
)
from .encoding import ENCODINGS, ThermometerEncoder
from .init import DEFAULT_SIGMA_M2, INITS, initialize_network, resolve_init
from .nn import COMBINATIONS, ESTIMATORS, INFERENCE, NOISES, SURROGATES, BinaryNetwork, NoiseModel
from .nn import FIRST_LAYERS, get_noise, resolve_first_layer, training_forward
from .nn.packed import PackedBinaryNetwork
from .nn.surrogates import UNIT_SLOPE

__all__ = ["BinaryNetClassifier", "ModelSummary"]

#: Layout of the fitted state that ``__getstate__`` writes; ``__setstate__`` reads this
#: one and older ones.  Bump it when a change makes old pickles unreadable, and teach
#: ``__setstate__`` to migrate what it can.  (Pickles written before the format was
#: recorded are format 0: the same layout without ``_rng_state``.)
_PICKLE_FORMAT = 1

#: Largest magnitude the network can take in: it computes in float32.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32_range(X: np.ndarray) -> None:
    """Reject finite float64 values that would become +-inf when cast to float32."""
    if X.dtype == np.float64 and X.size:
        largest = max(float(X.max()), -float(X.min()))  # 4x faster than np.abs(X).max()
        if largest > _FLOAT32_MAX:
            raise ValueError(
                f"X has values too large for float32 (largest |x| = {largest:.3g} > "
                f"{_FLOAT32_MAX:.3g}); the network computes in float32. Standardise the "
                "features, e.g. with sklearn.preprocessing.StandardScaler."
            )


#: Surrogates whose training step ``compile=True`` compiles (``benchmarks/speed.py``).
_COMPILED_SURROGATES = frozenset({"deterministic", "binary"})


#: Sparse inputs accepted (densified: the network's first layer is a dense product).
_SPARSE_FORMATS = ("csr", "csc")


def _dense(X):
    """A sparse matrix as a dense array (the values ``validate_data`` checked)."""
    return X.toarray() if sp.issparse(X) else X


def _resolve_device(device) -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; otherwise check the device exists."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid device. Valid values: 'auto', 'cpu', "
            "'cuda', 'cuda:<index>' or a torch.device."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, which is not available on this machine. "
            "Use device='auto' or device='cpu'."
        )
    return dev


def _place(net, device) -> None:
    """Move a fitted skorch net (module, criterion, Adam's moments) to ``device``."""
    net.device = device
    net.module_.to(device)
    net.criterion_.to(device)
    # load_state_dict casts the optimiser's state to its parameters' device
    net.optimizer_.load_state_dict(net.optimizer_.state_dict())


def _resolve_slope(slope, surrogate) -> float:
    """The S1 neuron slope as a float; a slope other than 1 needs the deterministic surrogate."""
    value = UNIT_SLOPE if isinstance(slope, str) and slope == "unit" else float(slope)
    if value != 1.0 and surrogate != "deterministic":
        raise ValueError(
            f"slope={slope!r} applies to surrogate='deterministic' only (the slope of its "
            f"mean-field neuron); with surrogate={surrogate!r} use slope=1.0, and set the "
            "neuron's temperature through the noise scale, e.g. noise=GaussianNoise(0.5)."
        )
    return value


class BinaryNetClassifier(ClassifierMixin, BaseEstimator):
    r"""Stochastic binary neural network classifier (+-1 weights, +-1 activations).

    Hidden layers have binary weights :math:`S_{ij} \in \{-1, +1\}` with learned means
    :math:`M_{ij} = E[S_{ij}]` and binary units :math:`x = \operatorname{sign}(h - Z)` with
    neuron noise :math:`Z`; the output layer is real.  Training minimises the expected
    cross-entropy through a continuous surrogate of the stochastic network [SGL20]_ or a
    gradient estimator for sampled units [SY21]_ [SYF20]_.  Prediction uses, by default,
    the deterministic 1-bit network :math:`W = \operatorname{sign}(M)`,
    :math:`x = \operatorname{sign}(h)`.  With the defaults the first layer keeps real
    weights and reads the features and a thermometer code of each (``first_layer``,
    ``encoding``; :ref:`tabular`); every later hidden layer is 1-bit.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(128, 128)
        Width of each hidden layer of sign units (at least one).
    surrogate : {"binary", "deterministic", "lrt", "sampled"}, default="binary"
        How the training forward pass treats randomness.

        - ``"binary"``: the deterministic 1-bit network itself (the SBN's mode,
          :math:`W = \operatorname{sign}(M)`, :math:`x = \operatorname{sign}(h)`), trained
          by straight-through with the noise-matched proxy [SY21]_ and identity ST on the
          means.  It optimises the network ``predict`` deploys, and is the default because
          it closes the gap between the surrogate and the 1-bit network (measured in
          :ref:`onebit-benchmark`).
        - ``"deterministic"``: means and variances propagated analytically (S1 of [SGL20]_);
          exact autograd.  The best ``inference="surrogate"`` and ``"mc"`` accuracy, the
          setting of the mean-field theory (``init="critical"``); its 1-bit network loses
          accuracy, badly at depth.
        - ``"lrt"``: Gaussian fields by local reparameterisation, neuron means passed up
          (S3); with ``gradient_estimator="st"`` the neurons are sampled too.
        - ``"sampled"``: Bernoulli weights and noisy sign neurons drawn from the SBN, with a
          gradient estimator for the sampled units.
    gradient_estimator : {"auto", "st", "psa", "reinforce", "arm"}, default="auto"
        Gradient rule for sampled binary units (:mod:`sklearn_bnn.nn.estimators`).
        ``"auto"`` is exact autograd where nothing binary is sampled (``"deterministic"``,
        ``"lrt"``) and the noise-matched straight-through ``"st"`` otherwise.  ``"psa"``
        needs ``noise="logistic"``.  Valid pairs: deterministic: auto; lrt: auto, st;
        sampled: auto, st, psa, reinforce, arm; binary: auto, st.  Others raise a
        ``ValueError`` that lists them.
    noise : {"sign", "gaussian", "logistic", "uniform"} or NoiseModel, default="gaussian"
        Neuron noise :math:`Z` (default scale 1), or a
        :class:`~sklearn_bnn.nn.NoiseModel` instance for another scale.
    slope : float > 0 or "unit", default=1.0
        Slope (inverse temperature) of the deterministic surrogate's neuron, which becomes
        ``erf(slope * hbar / sqrt(2 (Sigma + s^2)))`` (see
        :func:`~sklearn_bnn.nn.surrogates.neuron_mean`).  1 is the exact mean of the
        stochastic network; ``"unit"`` is :math:`\sqrt{\pi/2}`, which gives the sign
        neuron unit slope in the normalised field.  Only ``surrogate="deterministic"``
        uses it (any other value raises a ``ValueError`` with other surrogates).  It
        decides how deep S1 trains: digits, width 128, ``noise="sign"``, 20 epochs, depth
        50, ``init="critical"``: training accuracy 0.42 at slope 1, 0.99 at ``"unit"``
        (``benchmarks/depth.py``).  ``init="critical"`` takes it into account.
    init : {"glorot", "he", "uniform", "critical"}, float or (float, float), default=0.05
        Initialisation of the weight means: a named scheme, the second moment
        :math:`\sigma_m^2 \in [0, 1]` of means drawn as :math:`\pm\sigma_m`, or a pair
        :math:`(\sigma_m^2, \sigma_b^2)`. See :mod:`sklearn_bnn.init`. ``"critical"``
        asks the mean-field solver (:func:`sklearn_bnn.meanfield.critical_init`) for the
        surrogate, noise and depth at hand; it is not the default yet (see the note on
        ``noise``: with Gaussian noise S1 has no critical point).
    inference : {"binary", "surrogate", "mc"}, default="binary"
        Network used by ``predict``: the 1-bit network, the surrogate's deterministic
        output, or the stochastic network averaged over ``n_mc_samples`` draws (seeded
        from ``random_state``, so repeated calls agree).
    n_mc_samples : int, default=32
        Number of Monte-Carlo draws for ``inference="mc"``.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn's linear models:
        ``{label: weight}`` (classes not named weigh 1), ``"balanced"`` for
        ``n_samples / (n_classes * np.bincount(y))`` computed on the ``y`` of each
        ``fit``, or ``None`` for equal weights.  Multiplied with ``sample_weight``, so a
        fit with ``class_weight`` is the fit with ``sample_weight`` set to
        :func:`~sklearn.utils.class_weight.compute_sample_weight` of it.  With early
        stopping the validation accuracy is weighted the same way.  ``partial_fit``
        accepts a dict only (``"balanced"`` needs the whole ``y``).
    alpha : float, default=0.0
        L2 penalty on weights (means and head), scaled as in ``MLPClassifier``.
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is the power of two nearest below
        ``n_samples / 16``, clipped to [64, 1024] (:ref:`tabular`).
    learning_rate_init : float, default=3e-3
        Adam's (initial) learning rate.
    learning_rate : {"cosine", "constant"}, default="cosine"
        Schedule of the learning rate over the epochs of each ``fit``: ``"cosine"``
        anneals it towards 0 (the 1-bit network settles; a fit that completes the schedule
        does not warn), ``"constant"`` keeps ``learning_rate_init``.  ``partial_fit``
        trains at ``learning_rate_init``.  See :ref:`tabular`.
    encoding : {"raw+thermometer", "thermometer", "raw"}, default="raw+thermometer"
        Input of the first layer: the features, a quantile thermometer code of each
        feature (:class:`~sklearn_bnn.encoding.ThermometerEncoder`, fitted on the first
        ``fit`` and part of the export), or both.
    n_bins : int >= 2, default=8
        Quantile bins of the thermometer code (at most ``n_bins - 1`` bits per feature).
    first_layer : {"auto", "real", "binary"}, default="auto"
        Weights of the layer that reads the input: real (float32; every later hidden
        layer is 1-bit) or :math:`\pm 1` like the others.  ``"real"`` trains with the
        estimators ``"auto"`` and ``"st"`` only; ``"auto"`` is ``"real"`` there and
        ``"binary"`` with ``"psa"``, ``"reinforce"`` and ``"arm"``.  See :ref:`tabular`.
    max_iter : int or "auto", default="auto"
        Number of epochs (the schedule's length); ``"auto"`` is ``40_000 / n_samples``
        clipped to [10, 20].
    shuffle : bool, default=True
        Shuffle the samples in each epoch.
    tol : float, default=1e-4
        Improvement of the monitored score (training loss, or validation accuracy with
        ``early_stopping``) below which an epoch counts as no improvement.
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the data, stop when its accuracy
        (of the ``inference`` network) stops improving, and restore the best weights.
        With the default schedule (at most 20 epochs) and ``n_iter_no_change=50`` it
        never stops early: it selects the best epoch.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping.
    n_iter_no_change : int, default=50
        Epochs without improvement before stopping.  Larger than ``MLPClassifier``'s 10:
        the straight-through training loss of the 1-bit network is noisy and stops
        improving long before its accuracy does (and the default schedule is shorter).
    warm_start : bool, default=False
        Reuse the previous fit's weights, optimiser state and random stream: with
        ``learning_rate="constant"`` and without early stopping, fits of ``a`` then ``b``
        epochs give exactly the model of one fit of ``a + b`` epochs (and so do
        ``partial_fit`` calls, one epoch each); with ``"cosine"`` each ``fit`` runs a new
        cycle.  Changing ``hidden_layer_sizes``, ``noise``, ``slope``, ``first_layer``,
        ``encoding`` or ``n_bins`` between such fits raises a ``ValueError``: the fitted
        network cannot continue as another one.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when available, else CPU.  A warm start on another device
        (a model fitted or unpickled on the CPU, refitted where ``"auto"`` finds CUDA)
        moves the network and the optimiser's state there.
    compile : bool, default=False
        Run each training step's forward pass and loss through :func:`torch.compile`
        (prediction stays eager; with ``sample_weight``, ``"binary"`` trains eagerly, since
        its compiled step covers the unweighted loss only).  Only for ``surrogate``
        ``"deterministic"`` and ``"binary"``, where it measured faster (2-core CPU, 100k
        rows, hidden (1024,)*3, batch 1024: 0.94x and 0.77x the eager epoch); the others
        measured slower compiled
        (one step, same sizes: sampled+st 1.29x, lrt 1.14x the eager time) and are
        refused with a ``ValueError``.  Compilation costs seconds on the first fit of an
        architecture (3-8 s on 2 cores), so it pays on large data sets only; the speed-ups
        measured are in :ref:`speed-benchmark`.  Needs a working torch.compile backend (a
        C++ compiler on CPU); a failure raises a ``RuntimeError`` that says so, and
        leaves the estimator as it was.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the validation split and Monte-Carlo prediction.
        Torch's global RNG state is left as it was.
    verbose : int, default=0
        ``1`` prints one table row per epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during fit.
    encoder_ : ThermometerEncoder or None
        The fitted input code (``None`` with ``encoding="raw"``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.
    n_iter_ : int
        Number of epochs run (over all fits when warm-starting).
    loss_curve_ : list of float
        Training loss per epoch.
    best_loss_ : float or None
        Lowest training loss (``None`` with early stopping, as in ``MLPClassifier``).
    validation_scores_ : list of float or None
        Validation accuracy per epoch with early stopping, else ``None``.
    best_validation_score_ : float or None
        Best validation accuracy with early stopping, else ``None``.
    coefs_ : list of ndarray
        Weight means of each hidden layer (real weights for a real first layer), shape
        (n_in, n_out), then the real head; the first layer's ``n_in`` is the width of the
        input code (``encoder_.n_features_out_``) when there is one.
    intercepts_ : list of ndarray
        Biases of each layer, the head last.
    n_layers_ : int
        Number of layers including input and output (as ``MLPClassifier``).
    n_outputs_ : int
        Number of logits (one per class).
    history_ : list of dict
        Per epoch: ``train_loss``, ``flip_ratio``, ``lr``, ``dur``; with early stopping also
        ``valid_loss``, ``valid_acc`` (accuracy of the ``inference`` network, which early
        stopping monitors: the 1-bit score by default) and ``valid_acc_binary`` (the 1-bit
        network's, whatever ``inference`` is).
    flip_ratio_ : ndarray of shape (`n_iter_`,)
        Fraction of 1-bit weights :math:`\operatorname{sign}(M)` that changed per epoch.
    init_ : dict
        The init actually drawn: the ``init`` value and per-layer ``sigma_m2``, ``sigma_b2``.
    critical_init_ : dict or None
        With ``init="critical"``, what the mean-field solver chose and by which criterion
        (see :func:`sklearn_bnn.meanfield.critical_init`); else ``None``.
    device_ : torch.device
        Device the network lives on.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : Float multi-layer perceptron.

    References
    ----------
    .. [SGL20] G. Stamatescu, F. Gerace, C. Lucibello, I. Fuss, L. White. Critical
       initialisation in continuous approximations of binary neural networks. ICLR 2020,
       arXiv:1902.00177.
    .. [SY21] A. Shekhovtsov, V. Yanush. Reintroducing straight-through estimators as
       principled methods for stochastic binary networks. GCPR 2021, arXiv:2006.06880.
    .. [SYF20] A. Shekhovtsov, V. Yanush, B. Flach. Path sample-analytic gradient
       estimators for stochastic binary networks. NeurIPS 2020, arXiv:2006.03143.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_bnn import BinaryNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(
    ...     StandardScaler(),
    ...     BinaryNetClassifier((32,), max_iter=100, random_state=0),
    ... ).fit(X, y)
    >>> clf.score(X, y) > 0.85
    True
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "surrogate": [StrOptions(set(COMBINATIONS))],
        "gradient_estimator": [StrOptions(ESTIMATORS.names)],
        "noise": [StrOptions(NOISES.names), NoiseModel],
        "slope": [StrOptions({"unit"}), Interval(Real, 0, None, closed="neither")],
        "init": [
            StrOptions(INITS.names),
            Interval(Real, 0, 1, closed="both"),
            tuple,
            list,
        ],
        "inference": [StrOptions(INFERENCE.names)],
        "n_mc_samples": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [StrOptions(set(SCHEDULES))],
        "encoding": [StrOptions(set(ENCODINGS))],
        "first_layer": [StrOptions({"auto", *FIRST_LAYERS})],
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "max_iter": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "compile": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(128, 128),
        *,
        surrogate="binary",
        gradient_estimator="auto",
        noise="gaussian",
        slope=1.0,
        init=DEFAULT_SIGMA_M2,
        inference="binary",
        n_mc_samples=32,
        class_weight=None,
        alpha=0.0,
        batch_size="auto",
        learning_rate_init=3e-3,
        learning_rate="cosine",
        encoding="raw+thermometer",
        n_bins=8,
        first_layer="auto",
        max_iter="auto",
        shuffle=True,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=50,
        warm_start=False,
        device="auto",
        compile=False,
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.surrogate = surrogate
        self.gradient_estimator = gradient_estimator
        self.noise = noise
        self.slope = slope
        self.init = init
        self.inference = inference
        self.n_mc_samples = n_mc_samples
        self.class_weight = class_weight
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.encoding = encoding
        self.n_bins = n_bins
        self.first_layer = first_layer
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.device = device
        self.compile = compile
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network to data ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense, or sparse CSR/CSC); standardise it (e.g. with
            ``StandardScaler``): the first layer reads the features, scaled by
            1/sqrt(n_inputs).
        y : array-like of shape (n_samples,)
            Class labels (strings, integers, any hashable labels).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the loss.

        Returns
        -------
        self : BinaryNetClassifier
            The fitted estimator.

        Raises
        ------
        TrainingDivergedError
            When a training loss becomes NaN or infinite (too high a
            ``learning_rate_init``, or unscaled features); the estimator is left as it
            was before the call.

        Notes
        -----
        A fit that raises leaves the estimator exactly as it was before the call (unfitted,
        or the previous model with ``warm_start``).  Interrupting a fit (Ctrl-C, i.e.
        ``KeyboardInterrupt``) keeps the model of the last completed epoch (with
        ``early_stopping``, the best validation epoch), warns, and returns; an interrupt
        in the first epoch propagates and leaves the estimator as before.
        """
        return self._fit(X, y, sample_weight, incremental=False, classes=None)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on ``X``, ``y`` (continuing from the current state).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All classes that will ever appear; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : BinaryNetClassifier
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _fit(self, X, y, sample_weight, incremental, classes):
        # Everything that can be rejected is checked before any state is touched.
        noise = get_noise(self.noise)
        train_mode = training_forward(self.surrogate, self.gradient_estimator, noise=noise)
        resolve_first_layer(self.first_layer, train_mode)
        SURROGATES.lookup(self.surrogate)
        _resolve_slope(self.slope, self.surrogate)
        resolve_init(self.init)
        INFERENCE.lookup(self.inference)
        device = _resolve_device(self.device)
        if self.compile and self.surrogate not in _COMPILED_SURROGATES:
            raise ValueError(
                f"compile=True applies to surrogate in {sorted(_COMPILED_SURROGATES)!r}, where "
                f"torch.compile measurably speeds up training; got surrogate={self.surrogate!r} "
                "(measured slower or failing to compile there). Use compile=False."
            )
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) or (sizes < 1).any():
            raise ValueError(
                "hidden_layer_sizes must be a non-empty sequence of positive integers, "
                f"got {self.hidden_layer_sizes!r}."
            )

        saved = self._snapshot()
        try:
            if incremental:
                first = _check_partial_fit_first_call(self, classes)
            else:
                first = not (self.warm_start and hasattr(self, "net_"))
            if not first:
                self._check_same_network(sizes, noise, train_mode)
            self._fit_inner(X, y, sample_weight, incremental, first, train_mode, noise, device, tuple(int(s) for s in sizes))
        except BaseException:
            self._restore(saved)
            raise
        return self

    def _check_same_network(self, sizes, noise, train_mode) -> None:
        """A warm start or ``partial_fit`` continues the fitted network: refuse to redefine it.

        ``hidden_layer_sizes``, ``noise``, ``slope``, ``first_layer`` and the input code
        (``encoding``, ``n_bins``) define the network; changing them with ``set_params``
        and fitting again would otherwise silently keep the old one.
        """
        module = self.net_.module_
        encoder = getattr(self, "encoder_", None)
        fitted = {
            "hidden_layer_sizes": tuple(layer.out_features for layer in module.layers),
            "noise": module.noise,
            "slope": getattr(module, "slope", 1.0),  # modules pickled before slope existed
            "first_layer": getattr(module, "first_layer", "binary"),
            "encoding": "raw" if encoder is None else self._fitted_encoding(encoder),
            "n_bins": None if encoder is None else encoder.n_bins,
        }
        asked = {
            "hidden_layer_sizes": tuple(int(s) for s in sizes),
            "noise": noise,
            "slope": _resolve_slope(self.slope, self.surrogate),
            "first_layer": resolve_first_layer(self.first_layer, train_mode),
            "encoding": self.encoding,
            "n_bins": self.n_bins if self._encodes() else None,
        }
        changed = [name for name in fitted if fitted[name] != asked[name]]
        if changed:
            detail = "; ".join(f"{n}: fitted {fitted[n]!r}, now {asked[n]!r}" for n in changed)
            raise ValueError(
                f"warm_start=True and partial_fit continue the fitted network, but "
                f"{', '.join(changed)} changed since it was fitted ({detail}). Set them back, "
                "or fit a new network with warm_start=False (or a fresh estimator)."
            )

    @staticmethod
    def _fitted_encoding(encoder) -> str:
        return next(k for k, v in ENCODINGS.items() if v == (encoder.keep_raw, True))

    def _snapshot(self):
        """State to restore if a fit fails half-way: attributes and, if any, weights."""
        state = dict(self.__dict__)
        net = state.get("net_")
        weights = None
        if net is not None:
            weights = (
                copy.deepcopy(net.module_.state_dict()),
                copy.deepcopy(net.optimizer_.state_dict()),
                len(net.history),
            )
        return state, weights

    def _restore(self, saved):
        state, weights = saved
        self.__dict__.clear()
        self.__dict__.update(state)
        if weights is not None:
            module_state, optim_state, n_epochs = weights
            if torch.device(self.net_.device) != self.device_:
                _place(self.net_, self.device_)  # a failed fit had moved it
            self.net_.module_.load_state_dict(module_state)
            self.net_.optimizer_.load_state_dict(optim_state)
            del self.net_.history[n_epochs:]

    def _fit_inner(self, X, y, sample_weight, incremental, first, train_mode, noise, device, sizes):
        X, y = validate_data(
            self, X, y, reset=first, dtype=(np.float32, np.float64), y_numeric=False,
            accept_sparse=_SPARSE_FORMATS,
        )
        X = _dense(X)
        _check_float32_range(X)
        check_classification_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float32, ensure_non_negative=True
            )

        if first:
            # partial_fit's first call has set classes_ from its ``classes`` argument
            labels = np.asarray(self.classes_) if incremental else np.unique(y)
            if len(labels) < 2:
                raise ValueError(
                    f"BinaryNetClassifier needs samples of at least 2 classes in the data; "
                    f"got 1 class: {labels.tolist()!r}."
                )
            self.classes_ = labels
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(
                f"y contains labels {unseen.tolist()!r} not seen in the first fit; "
                f"known classes: {self.classes_.tolist()!r}."
            )
        y_enc = np.searchsorted(self.classes_, y)
        sample_weight = self._class_weighted(y, y_enc, sample_weight, incremental)

        if first:
            self._seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        seed = self._seed + (len(self.net_.history) if not first else 0)

        early_stopping = self.early_stopping and not incremental
        if early_stopping:
            try:
                split = train_test_split(
                    np.arange(len(y_enc)),
                    test_size=self.validation_fraction,
                    stratify=y_enc,
                    random_state=seed,
                )
            except ValueError as exc:
                raise ValueError(
                    f"early_stopping=True cannot hold out a stratified validation_fraction="
                    f"{self.validation_fraction} of {len(y_enc)} samples in "
                    f"{len(self.classes_)} classes (smallest class: "
                    f"{np.bincount(y_enc).min()} samples): {exc} Use more samples, a "
                    "larger validation_fraction, or early_stopping=False."
                ) from exc
        else:
            split = (slice(None), None)  # a view: torch.tensor below makes the one copy

        if first:
            # placed on the training rows (not the early-stopping validation rows)
            self.encoder_ = self._make_encoder().fit(X[split[0]]) if self._encodes() else None
        Z = self._encode(X)

        def tensors(idx):
            w = None if sample_weight is None else torch.tensor(sample_weight[idx], device=device)
            return TensorData(
                torch.tensor(Z[idx], dtype=torch.float32, device=device),
                torch.as_tensor(y_enc[idx], dtype=torch.long, device=device),
                w,
            )

        train = tensors(split[0])
        valid = tensors(split[1]) if split[1] is not None else None
        auto = self.batch_size == "auto"
        batch_size = min(auto_batch_size(len(train)) if auto else self.batch_size, len(train))
        n_epochs = auto_epochs(len(train)) if self.max_iter == "auto" else self.max_iter
        epochs = 1 if incremental else n_epochs

        forks = [device.index or 0] if device.type == "cuda" else []
        n_rows = 0 if first else len(self.net_.history)
        with torch.random.fork_rng(devices=forks):
            if first or getattr(self, "_rng_state", None) is None:
                torch.manual_seed(seed)
            else:  # continue the torch RNG stream: resumed fits equal uninterrupted ones
                set_rng_state(self._rng_state, device)
            if first:
                net = self._build_net(sizes, noise, device, train_mode)
                self.init_ = initialize_network(net.module_, self.init, self.surrogate)
                self.critical_init_ = self.init_.get("critical")
                net.module_.to(device)
                self.net_ = net
                self.device_ = device
            net = self.net_
            if torch.device(net.device) != device:
                # a warm start on another device: device="auto" resolving to CUDA for a
                # model fitted (or unpickled) on the CPU, or the reverse
                _place(net, device)
                self.device_ = device
            params = dict(
                batch_size=batch_size,
                train_split=predefined_split(valid) if valid is not None else None,
                callbacks=self._callbacks(early_stopping, incremental, n_epochs),
                verbose=self.verbose,
                alpha=self.alpha,
                train_mode=train_mode,
                jit_step=self.compile,
            )
            if net.lr != self.learning_rate_init:  # skorch updates the optimiser's lr in place
                params["lr"] = self.learning_rate_init
            net.set_params(**params)
            net.initialize_callbacks()  # set_params(callbacks=...) alone keeps the old ones
            # set directly: skorch's set_params on an initialised net only accepts
            # prefixed keys of modules and criteria
            net.iterator_train__shuffle = self.shuffle
            try:
                # skorch ends the loop quietly on KeyboardInterrupt (and EpochCheckpoint
                # rolls back to the last completed epoch); anything else propagates
                # and _fit restores the estimator as it was.
                net.partial_fit(train, None, epochs=epochs)
            except TrainingDivergedError as exc:
                raise TrainingDivergedError(
                    f"{exc} The largest |feature| in X is {float(np.abs(X).max()):.3g}."
                ) from exc
            except RuntimeError as exc:
                if "overflow" not in str(exc):
                    raise
                # e.g. Adam's step size lr / (1 - beta1) beyond float32's range
                raise TrainingDivergedError(
                    f"training diverged: {exc}. Lower learning_rate_init "
                    f"(now {self.learning_rate_init:g})."
                ) from exc
            self._rng_state = get_rng_state(device)

        n_done = len(net.history) - n_rows
        stopper = dict(net.callbacks_).get("early_stopping")
        stopped_early = stopper is not None and stopper.misses_ >= stopper.patience
        if n_done < epochs and not stopped_early:
            if n_done == 0:  # nothing of this fit to keep: _fit restores the estimator
                raise KeyboardInterrupt
            warnings.warn(
                f"Training interrupted by user after {n_done} of {epochs} epoch(s); "
                "keeping the weights of "
                + ("the best validation epoch." if early_stopping else "the last completed epoch."),
                UserWarning,
            )
        self._collect(net, early_stopping)
        ran_out = self._epochs_this_fit == n_epochs and not self._stopped_early
        if not incremental and ran_out and self.learning_rate not in ANNEALED:
            warnings.warn(
                f"Stochastic optimizer: maximum iterations ({n_epochs}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
            )

    def _class_weighted(self, y, y_enc, sample_weight, incremental):
        """``sample_weight`` times the ``class_weight`` of each sample's class (float32).

        Per class of ``classes_`` (not of this ``y``: a ``partial_fit`` batch may lack some),
        so equal to :func:`~sklearn.utils.class_weight.compute_sample_weight` on a ``y``
        that holds every class.
        """
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: the class "
                "frequencies of one batch are not those of the data. Pass a dict computed on "
                "all of y, e.g. dict(zip(classes, compute_class_weight('balanced', "
                "classes=classes, y=y))), or use fit."
            )
        per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        weight = per_class[y_enc].astype(np.float32)
        return weight if sample_weight is None else weight * sample_weight

    def _encodes(self) -> bool:
        return ENCODINGS[self.encoding][1]

    def _make_encoder(self) -> ThermometerEncoder:
        keep_raw = ENCODINGS[self.encoding][0]
        return ThermometerEncoder(self.n_bins, keep_raw=keep_raw, random_state=self._seed)

    def _encode(self, X: np.ndarray) -> np.ndarray:
        """The network's input: ``X`` itself, or its code under the fitted encoder."""
        encoder = getattr(self, "encoder_", None)
        return X if encoder is None else encoder.transform(X)

    def _build_net(self, sizes, noise, device, train_mode) -> SBNNet:
        encoder = self.encoder_
        n_inputs = self.n_features_in_ if encoder is None else encoder.n_features_out_
        net = SBNNet(
            BinaryNetwork,
            module__n_features=n_inputs,
            module__hidden_layer_sizes=sizes,
            module__n_outputs=len(self.classes_),
            module__noise=noise,
            module__slope=_resolve_slope(self.slope, self.surrogate),
            module__first_layer=resolve_first_layer(self.first_layer, train_mode),
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            optimizer__fused=fused_adam(device.type),
            lr=self.learning_rate_init,
            max_epochs=1,  # each fit passes its number of epochs
            iterator_train=TensorBatches,
            iterator_valid=TensorBatches,
            train_split=None,
            device=device,
            callbacks=self._callbacks(False, True, 1),
            train_mode=train_mode,
            alpha=self.alpha,
            jit_step=self.compile,
            verbose=self.verbose,
        )
        net.initialize()
        return net

    def _callbacks(self, early_stopping: bool, incremental: bool, n_epochs: int) -> list:
        # partial_fit trains one epoch at a time: no schedule to follow
        schedule = "constant" if incremental else self.learning_rate
        callbacks = [
            ("lr_schedule", LearningRateSchedule(schedule, self.learning_rate_init, n_epochs)),
            ("finite_loss", FiniteLoss()),
            ("flip_ratio", FlipRatio()),
            *self._accuracy_callbacks(),
            ("checkpoint", EpochCheckpoint()),  # before early_stopping: see its docstring
        ]
        if incremental:  # one epoch: nothing to stop
            return callbacks
        stopper = EarlyStopping(
            monitor="valid_acc" if early_stopping else "train_loss",
            lower_is_better=not early_stopping,
            patience=self.n_iter_no_change,
            threshold=self.tol,
            threshold_mode="abs",
            load_best=early_stopping,
            sink=print,
        )
        return [*callbacks, ("early_stopping", stopper)]

    def _valid_proba(self, module, X):
        forward, n = INFERENCE[self.inference]
        n = self.n_mc_samples if n is None else n
        return forward_proba(module, X, forward, n, seed=self._seed)

    def _accuracy_callbacks(self) -> list:
        """Validation accuracy of the ``inference`` network and of the 1-bit one (once if same)."""
        if INFERENCE[self.inference] == INFERENCE["binary"]:
            return [("valid_acc", ValidAccuracy(self._valid_proba, ("valid_acc", "valid_acc_binary")))]
        return [
            ("valid_acc", ValidAccuracy(self._valid_proba)),
            ("valid_acc_binary", ValidAccuracy(self._binary_proba, ("valid_acc_binary",))),
        ]

    def _binary_proba(self, module, X):
        return forward_proba(module, X, "binary")

    def _collect(self, net, early_stopping):
        """Fitted attributes from the skorch history (all epochs, as MLPClassifier)."""
        history = history_without_batches(net.history)
        before = getattr(self, "n_iter_", 0) if hasattr(self, "history_") else 0
        self.history_ = history
        self.n_iter_ = len(history)
        self._epochs_this_fit = self.n_iter_ - before
        self.loss_curve_ = [row["train_loss"] for row in history]
        self.flip_ratio_ = np.array([row.get("flip_ratio", np.nan) for row in history])
        stopper = dict(net.callbacks_).get("early_stopping")
        self._stopped_early = stopper is not None and stopper.misses_ >= stopper.patience
        if stopper is not None and getattr(stopper, "best_model_weights_", None) is not None:
            stopper.best_model_weights_ = None  # already loaded; keep pickles small
        if early_stopping:
            self.validation_scores_ = [row["valid_acc"] for row in history if "valid_acc" in row]
            self.best_validation_score_ = max(self.validation_scores_)
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_)
        self.n_layers_ = len(net.module_.layers) + 2
        self.n_outputs_ = net.module_.head.out_features

    # --------------------------------------------------------------- prediction
    def _proba_tensor(self, X) -> torch.Tensor:
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, dtype=(np.float32, np.float64), accept_sparse=_SPARSE_FORMATS
        )
        X = _dense(X)
        _check_float32_range(X)
        device = self.net_.device
        # a read-only array (pandas copy-on-write, memmaps) would make torch warn
        Z = self._encode(X)
        X32 = Z.astype(np.float32, copy=not Z.flags.writeable)
        Xt = torch.as_tensor(X32, device=device)
        proba = self._valid_proba(self.net_.module_, Xt)
        bad = ~torch.isfinite(proba).all(dim=1)
        if bad.any():
            raise ValueError(
                f"The {self.inference!r} network's output is not finite for "
                f"{int(bad.sum())} of {len(X)} samples (largest |feature| there: "
                f"{float(np.abs(X[to_numpy(bad)]).max()):.3g}): such values overflow its "
                "float32 arithmetic. Standardise the features, e.g. with "
                "sklearn.preprocessing.StandardScaler, as for fit."
            )
        return proba

    def predict_proba(self, X):
        """Class probabilities of the ``inference`` network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return to_numpy(self._proba_tensor(X)).astype(np.float64)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels (deterministic unless ``inference="mc"``, which is seeded).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self._proba_tensor(X)
        return self.classes_[to_numpy(proba.argmax(dim=1))]

    # -------------------------------------------------------------- inspection
    @property
    def coefs_(self) -> list[np.ndarray]:
        check_is_fitted(self)
        module = self.net_.module_
        return [to_numpy(layer.weight).T.copy() for layer in module.layers] + [
            to_numpy(module.head.weight).T.copy()
        ]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        check_is_fitted(self)
        module = self.net_.module_
        return [to_numpy(layer.bias).copy() for layer in module.layers] + [
            to_numpy(module.head.bias).copy()
        ]

    def export_binary(self) -> PackedBinaryNetwork:
        """The deployable network as a numpy-only artefact (no torch, no pickle).

        Every :math:`\pm 1` layer is bit-packed; a real first layer is a float32 matrix,
        and the input code a list of thresholds.

        Its ``predict`` returns this estimator's ``predict`` with ``inference="binary"``,
        whatever ``inference`` is set to (see :mod:`sklearn_bnn.nn.packed` for the exactness
        argument); ``save``/``load`` write and read one ``.npz`` file.

        Returns
        -------
        PackedBinaryNetwork
            With ``classes_`` set to this estimator's labels.
        """
        check_is_fitted(self)
        encoder = getattr(self, "encoder_", None)
        code = None if encoder is None else encoder.input_code()
        return PackedBinaryNetwork.from_module(self.net_.module_, classes=self.classes_, code=code)

    def summary(self) -> "ModelSummary":
        """Per layer: parameters, 1-bit weights, bytes as float32 and bit-packed.

        ``packed_bytes`` are the arrays of :meth:`export_binary` (the input code's
        thresholds and feature indices, packed signs or a real first layer's float32
        matrix, folded thresholds, float32 head).

        Returns
        -------
        ModelSummary
            ``rows`` holds one dict per layer; ``files`` the on-disk sizes of the saved
            packed network and of the float32 state dict (``torch.save``); ``str()`` gives
            a table.
        """
        check_is_fitted(self)
        rows = []
        module = self.net_.module_
        packed = self.export_binary()
        packed_bytes = packed.layer_nbytes()
        if packed.code is not None:
            n_code = len(packed.code.threshold)
            rows.append(
                {
                    "layer": "input code",
                    "shape": (packed.n_features_in_, packed.code.n_outputs),
                    "params": n_code,
                    "binary_weights": 0,
                    "float32_bytes": 4 * n_code,
                    "packed_bytes": packed.code.nbytes,
                }
            )
        for i, layer in enumerate(module.layers):
            n_w, n_b = layer.weight.numel(), layer.bias.numel()
            rows.append(
                {
                    "layer": f"{'real' if layer.real else 'binary'} {i + 1}",
                    "shape": (layer.in_features, layer.out_features),
                    "params": n_w + n_b,
                    "binary_weights": 0 if layer.real else n_w,
                    "float32_bytes": 4 * (n_w + n_b),
                    "packed_bytes": packed_bytes[i],
                }
            )
        head = module.head
        n_head = head.weight.numel() + head.bias.numel()
        rows.append(
            {
                "layer": "head (real)",
                "shape": (head.in_features, head.out_features),
                "params": n_head,
                "binary_weights": 0,
                "float32_bytes": 4 * n_head,
                "packed_bytes": packed_bytes[-1],
            }
        )
        packed_file, state_dict = io.BytesIO(), io.BytesIO()
        packed.save(packed_file)
        torch.save(module.state_dict(), state_dict)
        files = {
            "packed_file": len(packed_file.getvalue()),
            "float32_state_dict": len(state_dict.getvalue()),
        }
        return ModelSummary(rows, files)

    # ------------------------------------------------------------- persistence
    def __getstate__(self):
        from . import __version__

        state = super().__getstate__()
        state["_sklearn_bnn_version"] = __version__
        state["_sklearn_bnn_pickle_format"] = _PICKLE_FORMAT
        return state

    def __setstate__(self, state):
        from . import __version__

        state = dict(state)
        version = state.pop("_sklearn_bnn_version", None)
        layout = state.pop("_sklearn_bnn_pickle_format", 0)
        if layout > _PICKLE_FORMAT:
            raise pickle.UnpicklingError(
                f"This BinaryNetClassifier was saved by sklearn-bnn {version} (fitted-state "
                f"format {layout}); sklearn-bnn {__version__} reads formats up to "
                f"{_PICKLE_FORMAT}. Upgrade sklearn-bnn, or refit the model with this version."
            )
        if version is not None and version != __version__:
            warnings.warn(
                f"Unpickling a BinaryNetClassifier saved by sklearn-bnn {version} with "
                f"sklearn-bnn {__version__}: the format is readable, but results may differ. "
                "Refit (or save again) with this version to silence this warning.",
                UserWarning,
            )
        # the committed CUDA fixture (tests/data) was pickled before these parameters
        legacy = dict(slope=1.0, compile=False, learning_rate="constant", encoding="raw",
                      n_bins=8, first_layer="binary")
        if "net_" in state:  # a fitted state: no code was fitted then
            legacy["encoder_"] = None
        for key, value in legacy.items():
            state.setdefault(key, value)
        super().__setstate__(state)
        if "net_" in self.__dict__:  # skorch maps a CUDA-trained net to the CPU if need be
            self.device_ = torch.device(self.net_.device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = False
        return tags


class ModelSummary:
    """Table of :meth:`BinaryNetClassifier.summary`; ``rows`` and ``files`` hold the numbers.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_bnn import BinaryNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> clf = BinaryNetClassifier((8, 8), max_iter=5, random_state=0).fit(X, y)
    >>> summary = clf.summary()
    >>> summary.total
    {'params': 391, 'binary_weights': 64, 'float32_bytes': 1564, 'packed_bytes': 1412}
    >>> summary
          layer    shape  params  binary_weights  float32_bytes  packed_bytes
    -----------  -------  ------  --------------  -------------  ------------
     input code  (4, 32)      28               0            112           224
         real 1  (32, 8)     264               0           1056          1056
       binary 2   (8, 8)      72              64            288            24
    head (real)   (8, 3)      27               0            108           108
          total              391              64           1564          1412
    on disk: packed file ... bytes, float32 state dict ... bytes (...x smaller)
    """

    columns = ("layer", "shape", "params", "binary_weights", "float32_bytes", "packed_bytes")

    def __init__(self, rows: list[dict], files: dict | None = None) -> None:
        self.rows = rows
        self.files = files

    @property
    def total(self) -> dict:
        return {
            c: sum(r[c] for r in self.rows)
            for c in ("params", "binary_weights", "float32_bytes", "packed_bytes")
        }

    def __str__(self) -> str:
        body = [[str(r[c]) for c in self.columns] for r in self.rows]
        t = self.total
        body.append(["total", "", *(str(t[c]) for c in self.columns[2:])])
        widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(self.columns)]
        fmt = "  ".join(f"{{:>{w}}}" for w in widths)
        lines = [fmt.format(*self.columns), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*b) for b in body]
        if self.files:
            f = self.files
            lines.append(
                f"on disk: packed file {f['packed_file']} bytes, float32 state dict "
                f"{f['float32_state_dict']} bytes "
                f"({f['float32_state_dict'] / f['packed_file']:.1f}x smaller)"
            )
        return "\n".join(lines)

    __repr__ = __str__

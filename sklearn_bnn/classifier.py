"""BinaryNetClassifier: a stochastic binary neural network as a scikit-learn classifier.

A thin subclass of :class:`~sklearn_bnn._base.BaseBinaryNetwork`: the cross-entropy loss,
class labels and class weights, ``predict_proba``/``predict`` and the classifier's tags.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import _check_partial_fit_first_call, check_classification_targets

from ._base import LINEAR_ALPHA_GRID, BaseBinaryNetwork, ModelSummary  # noqa: F401
from ._training import softmax
from .init import DEFAULT_SIGMA_M2
from .deploy.packed import PackedBinaryNetwork

__all__ = ["BinaryNetClassifier", "ModelSummary"]


#: Iterations of the linear term's solver (lbfgs), as benchmarks/tabular.py gives
#: LogisticRegression.
_LINEAR_MAX_ITER = 1000


class BinaryNetClassifier(ClassifierMixin, BaseBinaryNetwork):
    r"""Stochastic binary neural network classifier (+-1 weights, +-1 activations).

    Hidden layers have binary weights :math:`S_{ij} \in \{-1, +1\}` with learned means
    :math:`M_{ij} = E[S_{ij}]` and binary units :math:`x = \operatorname{sign}(h - Z)` with
    neuron noise :math:`Z`; the output layer is real.  Training minimises the expected
    cross-entropy through a continuous surrogate of the stochastic network [SGL20]_ or a
    gradient estimator for sampled units [SY21]_ [SYF20]_.  Prediction uses, by default,
    the deterministic 1-bit network :math:`W = \operatorname{sign}(M)`,
    :math:`x = \operatorname{sign}(h)`.  With the defaults every hidden layer is
    :math:`\pm 1`, the first one reading the features and a thermometer code of each
    (``first_layer``, ``encoding``); the signs are learned at their own rate
    (``binary_learning_rate``); a real linear term of the input is added to the logits
    (``linear``).  What each part earns is measured in :ref:`tabular`.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(384,)
        Width of each hidden layer of sign units (at least one).  The default is one wide
        layer of :math:`\pm 1` weights on the features and their code (``first_layer``),
        chosen against ``(128, 128)`` on the benchmark suite and checked on tables that
        chose no default (:ref:`tabular-benchmark`); deeper plain networks need care with
        the initialisation (:ref:`depth`).
    architecture : {"plain", "residual"}, default="plain"
        The deployed network's shape (:mod:`sklearn_bnn.nn.architecture`).  ``"plain"``:
        stacked sign layers.  ``"residual"``: a real first layer opens a real stream, and
        every later hidden layer is a block of :math:`\pm 1` weights on the stream's signs
        whose integer dot product, scaled and offset per unit, is added to the stream
        (the Bi-Real practice); the head reads the stream's signs.  It trains the deployed
        network itself (``surrogate="binary"``), needs equal hidden sizes, and keeps
        training at depths where the plain network stops (:ref:`depth`); its export is
        exact (:class:`~sklearn_bnn.deploy.packed_residual.PackedResidualNetwork`), in
        numpy, the native kernel, ONNX and C.
    surrogate : {"binary", "deterministic", "lrt", "lrt_continuous", "sampled"}, default="binary"
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
        - ``"lrt_continuous"``: Gaussian fields by local reparameterisation with continuous
          neurons (S2 of [SGL20]_); exact autograd; not with ``noise="sign"``.
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
        decides how deep S1 trains (measured in :ref:`depth`); ``init="critical"`` takes
        it into account.
    init : {"glorot", "he", "uniform", "critical"}, float or (float, float), default=0.05
        Initialisation of the weight means: a named scheme, the second moment
        :math:`\sigma_m^2 \in [0, 1]` of means drawn as :math:`\pm\sigma_m`, or a pair
        :math:`(\sigma_m^2, \sigma_b^2)`. See :mod:`sklearn_bnn.init`. ``"critical"``
        asks the mean-field solver (:func:`sklearn_bnn.meanfield.critical_init`) for the
        surrogate, noise and depth at hand: the critical point where the surrogate's map
        has one, else the depth-aware maximum of :math:`\partial c^L/\partial c^0` (every
        surrogate, the default ``"binary"`` included; what each does is its spec's
        ``critical``, :mod:`sklearn_bnn.nn.spec`).  With ``architecture="residual"`` it
        asks :func:`sklearn_bnn.meanfield.residual.critical_init` (a depth-scaled branch).
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
    linear : bool, default=True
        Add a real linear term to the logits: a
        :class:`~sklearn.linear_model.LogisticRegression` (of what ``linear_input`` names,
        on the rows ``linear_rows`` names, with the sample and class weights) fitted first,
        kept fixed, while the network learns what it leaves (its logits are added to the
        linear ones).  It is not 1-bit: ``n_inputs * n_classes`` float64 weights, exported
        with the network (:ref:`tabular`).
    linear_alpha : float or "auto", default=1.0
        L2 penalty of the linear term, ``1 / C`` of the logistic regression (0: none);
        ``"auto"`` chooses it from ``np.logspace(-2, 3, 11)`` by
        :class:`~sklearn.linear_model.LogisticRegressionCV` over stratified folds (5, or
        fewer where a class has fewer rows; ``linear_alpha_`` after fit).
    linear_input : {"features", "code"}, default="features"
        What the linear term reads: the features, or the network's input, the features and
        their thermometer code (``encoding``; with ``"raw"``, the features).
    linear_rows : {"train", "all"}, default="train"
        The rows the linear term is fitted on: those the network trains on, or every row
        given to ``fit``, early stopping's held-out rows included (the same without early
        stopping).
    alpha : float, default=0.0
        L2 penalty on the real weights (head, a real first layer), scaled as in
        ``MLPClassifier``; the means of the :math:`\pm 1` layers are not penalised (their
        deployed weights have magnitude 1; a pull towards 0 makes their signs coin flips).
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is the power of two nearest below
        ``n_samples / 8``, clipped to [256, 1024] (all rows when fewer) (:ref:`tabular`).
    learning_rate_init : float or "auto", default="auto"
        Adam's (initial) learning rate for the real parameters; ``"auto"`` is, for
        ``architecture="plain"``, 1e-3 with the linear term (``linear=True``: the network
        learns what the linear term leaves, and larger steps overfit small tables) and 3e-3
        without it; 1e-2 for ``"residual"`` (its real stream and per-block scales, at depth,
        need the larger steps; :ref:`depth`).  See :ref:`tabular`.
    binary_learning_rate : float >= 0, default=0.03
        Adam's (initial) learning rate for the weight means of the :math:`\pm 1` layers,
        whose signs are the deployed 1-bit weights; every real parameter (head, biases, a
        real first layer, the residual stream's scales) trains at ``learning_rate_init``.
        It follows the same schedule.  A sign changes only when its mean crosses zero, and
        Adam moves a mean by at most about this rate per step: over :math:`T` steps of the
        cosine schedule a mean of initial magnitude :math:`\sqrt{\sigma_m^2}` (``init``)
        can flip only if ``binary_learning_rate * T / 2`` exceeds it.  ``0`` freezes the
        :math:`\pm 1` weights at their initial signs (the control of
        ``benchmarks/ablation.py``).  No extra cost per step: one Adam parameter group more.
        See :ref:`tabular`.
    learning_rate : {"cosine", "constant"}, default="cosine"
        Schedule of the learning rate over the epochs of each ``fit``: ``"cosine"``
        anneals it towards 0 (the 1-bit network settles; a fit that completes the schedule
        does not warn), ``"constant"`` keeps ``learning_rate_init``.  ``partial_fit``
        trains at ``learning_rate_init``.  See :ref:`tabular`.
    encoding : {"raw+thermometer", "thermometer", "raw"}, default="raw+thermometer"
        Input of the first layer: the features, a quantile thermometer code of each
        feature (:class:`~sklearn_bnn.encoding.ThermometerEncoder`, fitted on the first
        ``fit`` and part of the export), or both.
    n_bins : int >= 2, default=16
        Quantile bins of the thermometer code (at most ``n_bins - 1`` bits per feature).
    first_layer : {"auto", "real", "binary"}, default="auto"
        Weights of the layer that reads the input: :math:`\pm 1` like the others
        (``"binary"``, what ``"auto"`` is for ``architecture="plain"``), or real (float32;
        trains with the estimators ``"auto"`` and ``"st"`` only).  The residual family's
        first layer is always real (``"auto"`` or ``"real"``).  See :ref:`tabular`.
    max_iter : int or "auto", default="auto"
        Number of epochs (the schedule's length); ``"auto"`` is ``80_000 / n_samples``
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
        ``"deterministic"`` and ``"binary"``, where it measured faster; the others measured
        slower compiled and are refused with a ``ValueError`` (:ref:`speed-benchmark`).
        Compilation costs seconds on the first fit of an architecture, so it pays on large
        data sets only.  Needs a working torch.compile backend (a C++ compiler on CPU); a
        failure raises a ``RuntimeError`` that says so, and leaves the estimator as it was.
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
    linear_coef_, linear_intercept_ : ndarray or None
        The linear term (``linear=True``; else ``None``): one row of ``linear_coef_`` per
        input it reads (``linear_input``), one column per class.
    linear_alpha_ : float or None
        Its L2 penalty, the one ``linear_alpha="auto"`` chose.
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
        Fraction of the :math:`\pm 1` weights :math:`\operatorname{sign}(M)` that changed
        per epoch (a real first layer is not counted).
    layer_flip_ratio_ : ndarray of shape (`n_iter_`, n_binary_layers)
        The same per :math:`\pm 1` layer, in order.
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
        **BaseBinaryNetwork._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }
    _loss = "cross_entropy"
    _valid_key = "valid_acc"

    def __init__(
        self,
        hidden_layer_sizes=(384,),
        *,
        architecture="plain",
        surrogate="binary",
        gradient_estimator="auto",
        noise="gaussian",
        slope=1.0,
        init=DEFAULT_SIGMA_M2,
        inference="binary",
        n_mc_samples=32,
        linear=True,
        linear_alpha=1.0,
        linear_input="features",
        linear_rows="train",
        class_weight=None,
        alpha=0.0,
        batch_size="auto",
        learning_rate_init="auto",
        binary_learning_rate=0.03,
        learning_rate="cosine",
        encoding="raw+thermometer",
        n_bins=16,
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
        super().__init__(
            hidden_layer_sizes, architecture=architecture, surrogate=surrogate,
            gradient_estimator=gradient_estimator,
            noise=noise, slope=slope, init=init, inference=inference,
            n_mc_samples=n_mc_samples, linear=linear, linear_alpha=linear_alpha,
            linear_input=linear_input, linear_rows=linear_rows, alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init, binary_learning_rate=binary_learning_rate,
            learning_rate=learning_rate,
            encoding=encoding, n_bins=n_bins, first_layer=first_layer, max_iter=max_iter,
            shuffle=shuffle, tol=tol, early_stopping=early_stopping,
            validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change,
            warm_start=warm_start, device=device, compile=compile,
            random_state=random_state, verbose=verbose,
        )  # fmt: skip
        self.class_weight = class_weight

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
            Per-sample weights of the loss (multiplied by ``class_weight``).

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
        return self._fit(X, y, sample_weight, incremental=False)

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

    def _first_call(self, incremental, classes) -> bool:
        if incremental:  # sets classes_ from ``classes`` on the first call
            return _check_partial_fit_first_call(self, classes)
        return super()._first_call(incremental, classes)

    def _targets(self, y, sample_weight, first, incremental):
        """Class codes (int64, indices into ``classes_``) and the class-weighted weights."""
        check_classification_targets(y)
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
        codes = np.searchsorted(self.classes_, y).astype(np.int64)
        return codes, self._class_weighted(y, codes, sample_weight, incremental)

    def _class_weighted(self, y, codes, sample_weight, incremental):
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
        weight = per_class[codes].astype(np.float32)
        return weight if sample_weight is None else weight * sample_weight

    def _stratify(self, codes):
        return codes

    def _fit_linear_term(self, X, codes, sample_weight):
        """Logistic regression logits per class of ``classes_``: 0 for a class absent from
        the fitted rows (all 0 when one class is present, as in a first ``partial_fit``
        batch); with two classes ``[0, z]``, which the softmax reads as the logistic model.
        Also the penalty (``"auto"``: LogisticRegressionCV over ``1 / LINEAR_ALPHA_GRID``).
        """
        coef = np.zeros((X.shape[1], len(self.classes_)))
        intercept = np.zeros(len(self.classes_))
        present, counts = np.unique(codes, return_counts=True)
        if len(present) < 2:
            return coef, intercept, self._fixed_alpha()
        model = self._linear_model(counts.min())
        model.fit(X, codes, sample_weight=sample_weight)
        if len(present) == 2:
            coef[:, present[1]], intercept[present[1]] = model.coef_[0], model.intercept_[0]
        else:
            coef[:, present], intercept[present] = model.coef_.T, model.intercept_
        alpha = 1.0 / float(np.ravel(model.C_)[0]) if hasattr(model, "C_") else self.linear_alpha
        return coef, intercept, alpha

    def _fixed_alpha(self):
        return None if self.linear_alpha == "auto" else self.linear_alpha

    def _linear_model(self, smallest: int):
        """The logistic regression of the linear term; ``"auto"`` cross-validates its
        penalty over stratified folds (at most 5, at least 2 rows of each class)."""
        if self.linear_alpha != "auto":
            C = 1.0 / self.linear_alpha if self.linear_alpha > 0 else np.inf
            return LogisticRegression(C=C, max_iter=_LINEAR_MAX_ITER)
        if smallest < 2:
            raise ValueError(
                "linear_alpha='auto' chooses the linear term's penalty by stratified "
                f"cross-validation, which needs at least 2 rows of each class; the smallest "
                f"class has {smallest}. Pass a number as linear_alpha."
            )
        folds = StratifiedKFold(min(5, smallest))
        return LogisticRegressionCV(Cs=1.0 / LINEAR_ALPHA_GRID, cv=folds, max_iter=_LINEAR_MAX_ITER)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    @staticmethod
    def _link(logits: np.ndarray) -> np.ndarray:
        return softmax(logits)

    @staticmethod
    def _valid_score(proba, codes, sample_weight) -> float:
        hit = proba.argmax(1) == codes
        return float(np.average(hit, weights=sample_weight))

    # --------------------------------------------------------------- prediction
    def predict_proba(self, X):
        """Class probabilities of the ``inference`` network.

        The real head and the softmax run in float64 at predict time, so a row's
        probabilities do not depend on the other rows predicted with it, nor on the
        number of torch threads (except with ``inference="mc"``, whose draws do).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self._outputs(X)

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
        proba = self.predict_proba(X)  # first: it checks that the estimator is fitted
        return self.classes_[proba.argmax(axis=1)]

    def export_binary(self) -> PackedBinaryNetwork:
        r"""The deployable network as a numpy-only artefact (no torch, no pickle).

        Every :math:`\pm 1` layer is bit-packed; a real first layer is a float32 matrix,
        and the input code a list of thresholds.

        Its ``predict`` returns this estimator's ``predict`` with ``inference="binary"``,
        whatever ``inference`` is set to (see :mod:`sklearn_bnn.deploy.packed` for the exactness
        argument); ``save``/``load`` write and read one ``.npz`` file.

        Returns
        -------
        PackedBinaryNetwork
            With ``classes_`` set to this estimator's labels.
        """
        return self._packed(classes=self.classes_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags

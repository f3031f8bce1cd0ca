"""BinaryNetRegressor: a stochastic binary neural network as a scikit-learn regressor.

A thin subclass of :class:`~sklearn_bnn._base.BaseBinaryNetwork`: the squared loss, real
(one or several) targets standardised for training, ``predict`` and the regressor's tags;
``score`` is :math:`R^2` (:class:`~sklearn.base.RegressorMixin`).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.utils.validation import check_is_fitted

from ._base import LINEAR_ALPHA_GRID, BaseBinaryNetwork
from .init import DEFAULT_SIGMA_M2
from ._training import head_parameters, r2
from .deploy.packed import PackedBinaryNetwork

__all__ = ["BinaryNetRegressor"]


def _target_moments(Y: np.ndarray, sample_weight) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of each column of ``Y`` (float64), computed on
    ``Y`` divided by its largest magnitude, so that the squares of targets beyond about
    1e154 do not overflow (both results are at most that magnitude)."""
    peak = np.abs(Y).max(axis=0) if len(Y) else np.ones(Y.shape[1])
    peak = np.where(peak > 0, peak, 1.0)
    Z = Y / peak
    mean = np.average(Z, axis=0, weights=sample_weight)
    std = np.sqrt(np.average((Z - mean) ** 2, axis=0, weights=sample_weight))
    return mean * peak, std * peak


class BinaryNetRegressor(RegressorMixin, BaseBinaryNetwork):
    r"""Stochastic binary neural network regressor (+-1 weights, +-1 activations).

    The network of :class:`~sklearn_bnn.BinaryNetClassifier` (binary hidden layers with
    learned weight means, sign units with neuron noise, a real output layer), trained on
    the expected squared error :math:`\tfrac{1}{2}\|f(x) - y\|^2`, as
    :class:`~sklearn.neural_network.MLPRegressor`.  By default ``predict`` runs the
    deterministic 1-bit network, so the fitted model is deployable as bit-packed weights
    (:meth:`export_binary`).  Every surrogate, gradient estimator, noise, init and inference
    mode of the classifier applies: they act on the hidden layers, and the loss enters
    only through the head's outputs (PSA's analytic last layer sums the loss over one unit
    flip at a time, whatever the loss).

    **Targets are standardised for training**, as a user would with a
    :class:`~sklearn.compose.TransformedTargetRegressor`: each target column minus its
    mean, divided by the power of two nearest its standard deviation (1 for a constant
    column; both weighted by ``sample_weight``), and the predictions mapped back.  A power
    of two so that the scaling folds exactly into the real head: the estimator predicts
    with the folded head, and the packed export carries the same head, so the two agree
    bit for bit.  The mean and scale
    of the first ``fit`` (or ``partial_fit`` call) are kept by warm starts.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(256,)
        Width of each hidden layer of sign units (at least one).  One layer of 256 by
        default (the classifier: two of 128), chosen on ``benchmarks/regression.py``.
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
        How the training forward pass treats randomness; see
        :class:`~sklearn_bnn.BinaryNetClassifier`.
    gradient_estimator : {"auto", "st", "psa", "reinforce", "arm"}, default="auto"
        Gradient rule for sampled binary units; the valid pairs are the classifier's.
    noise : {"sign", "gaussian", "logistic", "uniform"} or NoiseModel, default="gaussian"
        Neuron noise :math:`Z`.
    slope : float > 0 or "unit", default=1.0
        Slope of the deterministic surrogate's neuron (``surrogate="deterministic"`` only).
    init : {"glorot", "he", "uniform", "critical"}, float or (float, float), default=0.05
        Initialisation of the weight means (:mod:`sklearn_bnn.init`).
    inference : {"binary", "surrogate", "mc"}, default="binary"
        Network used by ``predict``: the 1-bit network, the surrogate's deterministic
        output, or the mean output of the stochastic network over ``n_mc_samples`` draws.
    n_mc_samples : int, default=32
        Number of Monte-Carlo draws for ``inference="mc"``.
    linear : bool, default=True
        Add a real linear term to the predictions: a ridge regression (of what
        ``linear_input`` names, on the rows ``linear_rows`` names, to the standardised
        targets) fitted first and kept fixed, while the network learns its residuals.  It
        is not 1-bit: ``n_inputs * n_outputs`` float64 weights, exported with the network
        (:ref:`regression`).
    linear_alpha : float or "auto", default="auto"
        L2 penalty of the linear term, Ridge's ``alpha`` (0: least squares); ``"auto"``
        chooses it from ``np.logspace(-2, 3, 11)`` by :class:`~sklearn.linear_model.RidgeCV`'s
        efficient leave-one-out (``linear_alpha_`` after fit).
    linear_input : {"features", "code"}, default="code"
        What the linear term reads: the features, or the network's input, the features and
        their thermometer code (``encoding``; with ``"raw"``, the features): ``n_features``
        plus ``n_features * (n_bins - 1)`` inputs at most, per feature a step function.
    linear_rows : {"train", "all"}, default="all"
        The rows the linear term is fitted on: those the network trains on, or every row
        given to ``fit``, early stopping's held-out rows included (the same without early
        stopping).
    alpha : float, default=0.0
        L2 penalty on the real weights (head, a real first layer), scaled as in
        ``MLPRegressor``; the means of the :math:`\pm 1` layers are not penalised.
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` as in the classifier.
    learning_rate_init : float or "auto", default="auto"
        Adam's (initial) learning rate for the real parameters; ``"auto"`` as in the
        classifier (plain: 1e-3 with the linear term, 3e-3 without; 1e-2 residual).
    binary_learning_rate : float >= 0, default=0.03
        Adam's (initial) learning rate for the weight means of the :math:`\pm 1` layers,
        as in :class:`~sklearn_bnn.BinaryNetClassifier`; ``0`` freezes them at their
        initial signs.
    learning_rate : {"cosine", "constant"}, default="cosine"
        Schedule of the learning rate over the epochs of each ``fit``.
    encoding : {"raw+thermometer", "thermometer", "raw"}, default="raw+thermometer"
        Input of the first layer: the features, a quantile thermometer code, or both.
    n_bins : int >= 2, default=16
        Quantile bins of the thermometer code.
    first_layer : {"auto", "real", "binary"}, default="auto"
        Weights of the layer that reads the input: :math:`\pm 1` (``"auto"`` with the
        plain architecture) or real.
    max_iter : int or "auto", default="auto"
        Number of epochs (the schedule's length); ``"auto"`` is ``80_000 / n_samples``
        clipped to [10, 20], twice that with ``early_stopping`` (the default).
    shuffle : bool, default=True
        Shuffle the samples in each epoch.
    tol : float, default=1e-4
        Improvement of the monitored score (training loss, or validation :math:`R^2`
        with ``early_stopping``) below which an epoch counts as no improvement.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the data, stop when its :math:`R^2` (of the
        ``inference`` network) stops improving, and restore the best weights: the epoch of
        the best validation :math:`R^2` is kept, and a fit whose best epoch comes in the
        first half of the default schedule (at most 40 epochs) stops
        ``n_iter_no_change`` epochs after it.  On by default
        (unlike the classifier): a network fitted on top of the ridge term overfits the
        residual of a small table within its schedule (see :ref:`regression`).  The
        held-out rows do not train the network; the ridge term is fitted on them too
        (``linear_rows="all"``).
    validation_fraction : float, default=0.2
        Held-out fraction for early stopping (twice ``MLPRegressor``'s: the :math:`R^2`
        of a tenth of a few hundred rows is too noisy to choose an epoch by).
    n_iter_no_change : int, default=20
        Epochs without improvement before stopping: half the default schedule, twice
        ``MLPRegressor``'s 10, as the validation :math:`R^2` of a few dozen rows is noisy.
    warm_start : bool, default=False
        Reuse the previous fit's weights, optimiser state, random stream and target
        scaling.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when available, else CPU.
    compile : bool, default=False
        Compile each training step (``surrogate`` ``"deterministic"`` and ``"binary"``).
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the validation split and Monte-Carlo prediction.
    verbose : int, default=0
        ``1`` prints one table row per epoch.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.
    target_mean_, target_scale_ : ndarray of shape (n_outputs,)
        The target standardisation: the network is trained on
        ``(y - target_mean_) / target_scale_``.
    encoder_ : ThermometerEncoder or None
        The fitted input code (``None`` with ``encoding="raw"``).
    linear_coef_, linear_intercept_ : ndarray or None
        The linear term (``linear=True``; else ``None``): one row of ``linear_coef_`` per
        input it reads (``linear_input``), one column per output, on the standardised targets.
    linear_alpha_ : float or None
        Its L2 penalty, the one ``linear_alpha="auto"`` chose.
    n_iter_ : int
        Number of epochs run (over all fits when warm-starting).
    loss_curve_ : list of float
        Training loss per epoch (on the standardised targets).
    best_loss_ : float or None
        Lowest training loss (``None`` with early stopping).
    validation_scores_ : list of float or None
        Validation :math:`R^2` per epoch with early stopping, else ``None``.
    best_validation_score_ : float or None
        Best validation :math:`R^2` with early stopping, else ``None``.
    coefs_, intercepts_ : list of ndarray
        Weights and biases of each layer, the head (on standardised targets) last.
    n_layers_ : int
        Number of layers including input and output.
    n_outputs_ : int
        Number of targets.
    history_ : list of dict
        Per epoch: ``train_loss``, ``flip_ratio``, ``lr``, ``dur``; with early stopping
        also ``valid_loss``, ``valid_r2`` and ``valid_r2_binary``.
    flip_ratio_ : ndarray of shape (`n_iter_`,)
        Fraction of the :math:`\pm 1` weights whose sign changed per epoch.
    layer_flip_ratio_ : ndarray of shape (`n_iter_`, n_binary_layers)
        The same per :math:`\pm 1` layer.
    init_, critical_init_ : dict, dict or None
        The init drawn, and the mean-field solver's choice with ``init="critical"``.
    device_ : torch.device
        Device the network lives on.

    See Also
    --------
    BinaryNetClassifier : The same network for classification.
    sklearn.neural_network.MLPRegressor : Float multi-layer perceptron.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_bnn import BinaryNetRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = make_pipeline(StandardScaler(), BinaryNetRegressor(random_state=0)).fit(X, y)
    >>> reg.score(X, y) > 0.5
    True
    """

    _loss = "squared"
    _valid_key = "valid_r2"
    _min_valid_rows = 2
    # the validation R^2 chooses the epoch: a longer schedule pays here (regression.rst);
    # the classifier's validation accuracy chose worse epochs from it (practical.rst)
    _early_stopping_epochs = 2
    _link = None

    # the defaults of the base, except one wider hidden layer (benchmarks/regression.py)
    def __init__(
        self,
        hidden_layer_sizes=(256,),
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
        linear_alpha="auto",
        linear_input="code",
        linear_rows="all",
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
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=20,
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

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network to data ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense, or sparse CSR/CSC); standardise it.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the loss.

        Returns
        -------
        self : BinaryNetRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train for one epoch on ``X``, ``y`` (continuing from the current state).

        The first call fixes the target standardisation from its ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : BinaryNetRegressor
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _target_checks(self) -> dict:
        return {"multi_output": True, "y_numeric": True}

    def _targets(self, y, sample_weight, first, incremental):
        """Standardised float32 targets of shape (n_samples, n_outputs)."""
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if first:
            self._y_ndim = np.ndim(y)
            self.target_mean_, std = _target_moments(Y, sample_weight)
            safe = np.where(std > 0, std, 1.0)
            self.target_scale_ = np.where(std > 0, 2.0 ** np.round(np.log2(safe)), 1.0)
        elif Y.shape[1] != len(self.target_mean_):
            raise ValueError(
                f"y has {Y.shape[1]} target(s), but the fitted network predicts "
                f"{len(self.target_mean_)}; warm_start and partial_fit continue it."
            )
        return ((Y - self.target_mean_) / self.target_scale_).astype(np.float32), sample_weight

    def _stratify(self, y):
        return None

    def _n_outputs(self) -> int:
        return len(self.target_mean_)

    def _fit_linear_term(self, X, y, sample_weight):
        """Ridge on the standardised targets: coef (n_inputs, n_outputs), intercept and the
        penalty (``"auto"``: RidgeCV's efficient leave-one-out over ``LINEAR_ALPHA_GRID``)."""
        if self.linear_alpha == "auto":
            # one SVD of X serves every alpha's leave-one-out when rows outnumber columns
            # (the covariance's eigendecomposition redoes an O(n p^2) product per alpha)
            mode = "svd" if X.shape[0] > X.shape[1] else None
            model = RidgeCV(alphas=LINEAR_ALPHA_GRID, gcv_mode=mode)
            model.fit(X, y, sample_weight=sample_weight)
        else:
            model = Ridge(alpha=self.linear_alpha).fit(X, y, sample_weight=sample_weight)
        coef = model.coef_.reshape(-1, X.shape[1]).T
        alpha = float(getattr(model, "alpha_", self.linear_alpha))
        return coef, np.atleast_1d(model.intercept_), alpha

    def _linear(self) -> tuple[np.ndarray, np.ndarray]:
        """The linear term with the target scale folded in (exact: a power of 2)."""
        scale = self.target_scale_
        return self.linear_coef_ * scale, self.linear_intercept_ * scale

    def _head(self, module) -> tuple[np.ndarray, np.ndarray]:
        """The head with the target scaling folded in (exact: the scale is a power of 2)."""
        weight, bias = head_parameters(module.head)
        return weight * self.target_scale_[:, None], bias * self.target_scale_ + self.target_mean_

    def _valid_loss(self, outputs, y, sample_weight) -> float:
        # outputs in the units of predict; the training loss is on standardised targets
        standardised = (outputs - self.target_mean_) / self.target_scale_
        return super()._valid_loss(standardised, y, sample_weight)

    def _valid_score(self, outputs, y, sample_weight) -> float:
        targets = y * self.target_scale_ + self.target_mean_
        return r2(targets, outputs, sample_weight)

    # --------------------------------------------------------------- prediction
    def predict(self, X):
        """Predicted targets of the ``inference`` network.

        The real head runs in float64 at predict time, so a row's prediction does not
        depend on the other rows predicted with it, nor on the number of torch threads
        (except with ``inference="mc"``, whose draws do).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        out = self._outputs(X)
        return out[:, 0] if self._y_ndim == 1 else out

    def export_binary(self) -> PackedBinaryNetwork:
        r"""The deployable 1-bit network as a numpy-only artefact (no torch, no pickle).

        Its head is this estimator's head with the target scaling folded in (float64), so
        its :meth:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork.logits` are the predictions
        (a column per target).  It records ``task="regression"`` (in its saved file too):
        its ``predict`` equals this estimator's ``predict`` with ``inference="binary"``,
        shape ``(n_samples,)`` for a 1-D ``y``, and ``predict_proba`` raises; ``to_c`` and
        :func:`sklearn_bnn.onnx.to_onnx` write regression entry points by default.

        Returns
        -------
        PackedBinaryNetwork or PackedResidualNetwork
            The family of ``architecture``.

        Raises
        ------
        ValueError
            The folded head is not finite (targets so large that their scaling overflows).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import make_regression
        >>> from sklearn_bnn import BinaryNetRegressor
        >>> X, y = make_regression(200, 5, noise=1.0, random_state=0)
        >>> reg = BinaryNetRegressor((32,), random_state=0).fit(X, y)
        >>> packed = reg.export_binary()
        >>> packed.task, bool(np.array_equal(packed.predict(X), reg.predict(X)))
        ('regression', True)
        """
        check_is_fitted(self)
        head = self._head(self.net_.module_)
        return self._packed(head=head, task="regression", target_ndim=self._y_ndim)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

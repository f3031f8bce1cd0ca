"""The estimator core shared by :class:`BinaryNetClassifier` and :class:`BinaryNetRegressor`.

:class:`BaseBinaryNetwork` owns everything that does not depend on the task: parameter
validation, tensors and devices, seeding, the skorch loop wiring
(:mod:`sklearn_bnn._training`), warm starts and ``partial_fit``, early stopping,
persistence, :meth:`~BaseBinaryNetwork.summary` and :meth:`~BaseBinaryNetwork.export_binary`.
A subclass states its loss, how targets become tensors, how the network's float64 outputs
become predictions, and how a validation score is computed.  No math lives here: it is in
:mod:`sklearn_bnn.nn`.

``fit`` runs in named steps: :meth:`~BaseBinaryNetwork._resolve_network` checks every
option before any state is touched; :meth:`~BaseBinaryNetwork._prepare` validates the data,
encodes the targets and splits off the validation rows; :meth:`~BaseBinaryNetwork._train`
builds (or continues) the skorch net and runs the epochs;
:meth:`~BaseBinaryNetwork._finish` records the fitted attributes and warns.  A fit that
raises restores the estimator as it was.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._training import (
    ANNEALED,
    SCHEDULES,
    EpochCheckpoint,
    FiniteLoss,
    FlipRatio,
    LearningRateSchedule,
    SBNNet,
    TensorBatches,
    TensorData,
    TrainingDivergedError,
    VALID_LOSSES,
    ValidScore,
    auto_batch_size,
    auto_epochs,
    fused_adam,
    get_rng_state,
    head_parameters,
    history_without_batches,
    network_outputs,
    set_rng_state,
    to_numpy,
)
from .encoding import ENCODINGS, ThermometerEncoder
from .init import DEFAULT_SIGMA_M2, INITS, resolve_init
from .nn import ESTIMATORS, INFERENCE, NOISES, FIRST_LAYERS, NoiseModel, get_noise
from .nn.architecture import ARCHITECTURES
from .deploy.packed import LINEAR_INPUTS, PackedBinaryNetwork, linear_term
from .nn.spec import SURROGATE_SPECS, check_compile, resolve_slope

__all__ = ["BaseBinaryNetwork", "ModelSummary"]

#: Largest magnitude the network can take in: it computes in float32.
_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: ``fit`` warns when the network ``predict`` uses scores this much below the surrogate it
#: was trained through (accuracy, or R^2, on training rows); see ``_check_deployable``.
_DEPLOY_GAP = 0.1
#: Training rows (at most) that check is computed on.
_DEPLOY_ROWS = 2048

#: Sparse inputs accepted (densified: the network's first layer is a dense product).
_SPARSE_FORMATS = ("csr", "csc")


_ADAM_BETA1 = 0.9  # torch.optim.Adam's default, which SBNNet keeps

#: Which rows given to ``fit`` the linear term is fitted on (``linear_rows``): those the
#: network trains on, or every row, early stopping's held-out rows included.  What it reads
#: (``linear_input``) is :data:`~sklearn_bnn.deploy.packed.LINEAR_INPUTS`.
LINEAR_ROWS = ("train", "all")
#: The penalties ``linear_alpha="auto"`` chooses from (by cross-validation).
LINEAR_ALPHA_GRID = np.logspace(-2, 3, 11)


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


def _as_read(X: np.ndarray) -> np.ndarray:
    """``X`` as the network and its linear term read it: float32, widened to float64."""
    return X.astype(np.float32).astype(np.float64)


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


def _check_sizes(hidden_layer_sizes) -> tuple[int, ...]:
    sizes = np.atleast_1d(np.asarray(hidden_layer_sizes))
    integer = np.issubdtype(sizes.dtype, np.integer)
    if sizes.ndim != 1 or sizes.size == 0 or not integer or (sizes < 1).any():
        raise ValueError(
            "hidden_layer_sizes must be a non-empty sequence of positive integers, "
            f"got {hidden_layer_sizes!r}."
        )
    return tuple(int(s) for s in sizes)


@dataclass(frozen=True)
class _Network:
    """What the options resolve to; checked in full before a fit touches any state."""

    architecture: str
    sizes: tuple[int, ...]
    noise: NoiseModel
    train_mode: str
    first_layer: str
    slope: float
    device: torch.device


@dataclass
class _Fit:
    """One call of ``fit`` or ``partial_fit``: its data on the device and its schedule."""

    X: np.ndarray  # the validated features, for error messages
    train: TensorData
    valid: TensorData | None
    first: bool
    incremental: bool
    seed: int
    n_epochs: int  # the schedule's length (max_iter)
    epochs: int  # epochs this call runs (1 for partial_fit)
    n_rows: int = 0  # epochs in the history before this call

    @property
    def early_stopping(self) -> bool:
        return self.valid is not None


class BaseBinaryNetwork(BaseEstimator):
    """Shared core of the binary-network estimators (not for direct use).

    Subclasses set ``_loss`` (a key of :data:`sklearn_bnn._training.LOSSES`) and
    ``_valid_key`` (the history key of the validation score), and implement
    ``_targets``, ``_n_outputs``, ``_link``, ``_valid_score``, ``_stratify`` and
    ``export_binary``.  The defaults of the shared parameters are stated once, in
    ``__init__`` here (a subclass with parameters of its own restates the signature, as
    scikit-learn's estimators must).
    """

    _loss = "cross_entropy"
    _valid_key = "valid_score"
    #: Fewest held-out rows the validation score is defined on (R^2 needs two)
    _min_valid_rows = 1
    #: Factor of the ``"auto"`` epochs with early stopping (:func:`auto_epochs`)
    _early_stopping_epochs = 1
    # methods that the callbacks pickled in tests/data/cuda_model.pkl name (unused)
    _valid_proba = _binary_proba = None

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "architecture": [StrOptions(ARCHITECTURES.names)],
        "surrogate": [StrOptions(set(SURROGATE_SPECS))],
        "gradient_estimator": [StrOptions(ESTIMATORS.names)],
        "noise": [StrOptions(NOISES.names), NoiseModel],
        "slope": [StrOptions({"unit"}), Interval(Real, 0, None, closed="neither")],
        "init": [StrOptions(INITS.names), Interval(Real, 0, 1, closed="both"), tuple, list],
        "inference": [StrOptions(INFERENCE.names)],
        "n_mc_samples": [Interval(Integral, 1, None, closed="left")],
        "linear": ["boolean"],
        "linear_alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "linear_input": [StrOptions(set(LINEAR_INPUTS))],
        "linear_rows": [StrOptions(set(LINEAR_ROWS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "binary_learning_rate": [Interval(Real, 0, None, closed="left")],
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.architecture = architecture
        self.surrogate = surrogate
        self.gradient_estimator = gradient_estimator
        self.noise = noise
        self.slope = slope
        self.init = init
        self.inference = inference
        self.n_mc_samples = n_mc_samples
        self.linear = linear
        self.linear_alpha = linear_alpha
        self.linear_input = linear_input
        self.linear_rows = linear_rows
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.binary_learning_rate = binary_learning_rate
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
    def _fit(self, X, y, sample_weight, incremental, classes=None):
        network = self._resolve_network()
        saved = self._snapshot()
        try:
            first = self._first_call(incremental, classes)
            if not first:
                self._check_same_network(network)
            fit = self._prepare(X, y, sample_weight, first, incremental, network.device)
            net = self._train(fit, network)
            self._finish(net, fit)
        except BaseException:
            self._restore(saved)
            raise
        return self

    def _resolve_network(self) -> _Network:
        """Every option checked, and resolved, before a fit touches any state."""
        architecture = ARCHITECTURES.lookup(self.architecture)
        noise = get_noise(self.noise)
        train_mode = architecture.train_mode(self.surrogate, self.gradient_estimator, noise)
        sizes = _check_sizes(self.hidden_layer_sizes)
        resolve_init(self.init)
        INFERENCE.lookup(self.inference)
        architecture.check(sizes, self.inference, self.compile)
        check_compile(self.compile, self.surrogate)
        return _Network(
            architecture=architecture.name,
            sizes=sizes,
            noise=noise,
            train_mode=train_mode,
            first_layer=architecture.first_layer(self.first_layer, train_mode),
            slope=resolve_slope(self.slope, self.surrogate),
            device=_resolve_device(self.device),
        )

    def _first_call(self, incremental: bool, classes) -> bool:
        """Whether this call builds a new network (else it continues the fitted one)."""
        if incremental:
            return not hasattr(self, "net_")
        return not (self.warm_start and hasattr(self, "net_"))

    def _check_same_network(self, network: _Network) -> None:
        """A warm start or ``partial_fit`` continues the fitted network: refuse to redefine it.

        ``architecture``, ``hidden_layer_sizes``, ``noise``, ``slope``, ``first_layer``, the
        input code (``encoding``, ``n_bins``) and the linear term (``linear``,
        ``linear_alpha``, ``linear_input``, ``linear_rows``) define the network;
        changing them with ``set_params`` and fitting again would otherwise silently
        keep the old one.
        """
        fitted, asked = self._fitted_network(), self._asked_network(network)
        changed = [name for name in fitted if fitted[name] != asked[name]]
        if changed:
            detail = "; ".join(f"{n}: fitted {fitted[n]!r}, now {asked[n]!r}" for n in changed)
            raise ValueError(
                f"warm_start=True and partial_fit continue the fitted network, but "
                f"{', '.join(changed)} changed since it was fitted ({detail}). Set them back, "
                "or fit a new network with warm_start=False (or a fresh estimator)."
            )

    def _fitted_network(self) -> dict:
        module, encoder = self.net_.module_, self.encoder_
        encoding = None
        if encoder is not None:
            encoding = next(k for k, v in ENCODINGS.items() if v == (encoder.keep_raw, True))
        architecture = next(a.name for a in ARCHITECTURES.values() if type(module) is a.module)
        return {
            "architecture": architecture,
            "hidden_layer_sizes": tuple(layer.out_features for layer in module.layers),
            "noise": module.noise,
            "slope": module.slope,
            "first_layer": module.first_layer,
            "encoding": "raw" if encoder is None else encoding,
            "n_bins": None if encoder is None else encoder.n_bins,
            "linear": self.linear_coef_ is not None,
            "linear_alpha": self._linear_alpha,
            "linear_input": self._linear_input,
            "linear_rows": self._linear_rows,
        }

    def _asked_network(self, network: _Network) -> dict:
        return {
            "architecture": network.architecture,
            "hidden_layer_sizes": network.sizes,
            "noise": network.noise,
            "slope": network.slope,
            "first_layer": network.first_layer,
            "encoding": self.encoding,
            "n_bins": self.n_bins if self._encodes() else None,
            "linear": self.linear,
            "linear_alpha": self.linear_alpha if self.linear else None,
            "linear_input": self.linear_input if self.linear else None,
            "linear_rows": self.linear_rows if self.linear else None,
        }

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

    def _restore(self, saved) -> None:
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

    # ----------------------------------------------------------------- the data
    def _validate_X(self, X, *y, reset=False):
        """``validate_data`` as every method needs it; dense X, or ``(X, y)`` given ``y``."""
        kwargs = {"dtype": (np.float32, np.float64), "accept_sparse": _SPARSE_FORMATS}
        if y:
            X, y = validate_data(self, X, *y, reset=reset, **kwargs, **self._target_checks())
        else:
            X = validate_data(self, X, reset=reset, **kwargs)
        X = _dense(X)
        _check_float32_range(X)
        return (X, y) if isinstance(y, np.ndarray) else X

    def _target_checks(self) -> dict:
        """Keyword arguments of ``validate_data`` for ``y``."""
        return {}

    def _prepare(self, X, y, sample_weight, first, incremental, device) -> _Fit:
        """Validated data on ``device``, split for early stopping, and this call's schedule."""
        X, y = self._validate_X(X, y, reset=first)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float32, ensure_non_negative=True
            )
        y, sample_weight = self._targets(y, sample_weight, first, incremental)
        seed = self._fit_seed(first)
        early_stopping = self.early_stopping and not incremental
        train_rows, valid_rows = self._split(y, seed) if early_stopping else (slice(None), None)
        Z = None
        if first:  # placed on the training rows (not the early-stopping validation rows)
            self.encoder_ = self._make_encoder().fit(X[train_rows]) if self._encodes() else None
            Z = self._encode(X)
            rows = slice(None) if self.linear_rows == "all" else train_rows
            w_rows = None if sample_weight is None else sample_weight[rows]
            self._fit_linear(X[rows], Z[rows], y[rows], w_rows)
        Z = self._encode(X) if Z is None else Z
        offset, offset64 = self._linear_offsets(X, Z)

        def tensors(rows):
            w = None if sample_weight is None else torch.tensor(sample_weight[rows], device=device)
            Xt = torch.tensor(Z[rows], dtype=torch.float32, device=device)
            yt = torch.as_tensor(y[rows], device=device)
            if offset is None:
                return TensorData(Xt, yt, w)
            ot = torch.tensor(offset[rows], dtype=torch.float32, device=device)
            return TensorData(Xt, yt, w, ot, offset64[rows])

        factor = self._early_stopping_epochs if early_stopping else 1
        n_epochs = auto_epochs(len(y), factor) if self.max_iter == "auto" else self.max_iter
        return _Fit(
            X=X,
            train=tensors(train_rows),
            valid=None if valid_rows is None else tensors(valid_rows),
            first=first,
            incremental=incremental,
            seed=seed,
            n_epochs=n_epochs,
            epochs=1 if incremental else n_epochs,
            n_rows=0 if first else len(self.net_.history),
        )

    def _fit_seed(self, first: bool) -> int:
        """The seed of this call: drawn on the first fit, then advanced by the epochs run."""
        if first:
            self._seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            return self._seed
        return self._seed + len(self.net_.history)

    def _split(self, y, seed):
        """Training and validation rows for early stopping (stratified for classifiers)."""
        stratify = self._stratify(y)
        try:
            train, valid = train_test_split(
                np.arange(len(y)), test_size=self.validation_fraction, stratify=stratify,
                random_state=seed,
            )  # fmt: skip
        except ValueError as exc:
            smallest = "" if stratify is None else (
                f" in {len(np.unique(stratify))} classes (smallest class: "
                f"{np.unique(stratify, return_counts=True)[1].min()} samples)"
            )  # fmt: skip
            raise ValueError(
                f"early_stopping=True cannot hold out a {'stratified ' * bool(smallest)}"
                f"validation_fraction={self.validation_fraction} of {len(y)} samples"
                f"{smallest}: {exc} Use more samples, a larger validation_fraction, or "
                "early_stopping=False."
            ) from exc
        if len(valid) < self._min_valid_rows:
            raise ValueError(
                f"early_stopping=True holds out {len(valid)} of {len(y)} samples "
                f"(validation_fraction={self.validation_fraction}); its validation score "
                f"needs at least {self._min_valid_rows}. Use more samples, a larger "
                "validation_fraction, or early_stopping=False."
            )
        return train, valid

    def _fit_linear(self, X, Z, y, sample_weight) -> None:
        """The linear term (``linear=True``) of ``X`` (whose code is ``Z``) as
        :meth:`_linear_read` gives it, fitted once, before the network, on the rows
        ``linear_rows`` names; the network then learns what it leaves."""
        self._linear_alpha = self.linear_alpha if self.linear else None
        self._linear_input = self.linear_input if self.linear else None
        self._linear_rows = self.linear_rows if self.linear else None
        self.linear_coef_ = self.linear_intercept_ = self.linear_alpha_ = None
        if self.linear:
            term = self._fit_linear_term(self._linear_read(X, Z), y, sample_weight)
            self.linear_coef_, self.linear_intercept_, self.linear_alpha_ = term

    def _linear_reads(self) -> str:
        """What the fitted linear term reads: ``"code"``, or ``"features"`` (also where
        ``linear_input="code"`` has no code to read, ``encoding="raw"``)."""
        if self._linear_input == "code" and self.encoder_ is not None:
            return "code"
        return "features"

    def _linear_read(self, X, Z=None) -> np.ndarray:
        """What the linear term reads, as float64 of float32 values: the features
        (``linear_input="features"``) or the network's input, their code (``"code"``,
        ``Z`` if given, else the code of ``X``)."""
        if self._linear_reads() == "features":
            return _as_read(X)
        return _as_read(self._encode(X) if Z is None else Z)

    def _linear(self) -> tuple[np.ndarray, np.ndarray]:
        """The linear term's coef and intercept in the units of the outputs ``predict``
        uses (those of ``export_binary``)."""
        return self.linear_coef_, self.linear_intercept_

    def _linear_offsets(self, X, Z=None):
        """The linear term of ``X`` (whose network input is ``Z``, if given): as the training
        loss adds it (to the network's raw outputs) and as the outputs of ``predict`` add
        it; ``(None, None)`` without one."""
        if self.linear_coef_ is None:
            return None, None
        Xr = self._linear_read(X, Z)
        offset64 = linear_term(Xr, *self._linear())
        return linear_term(Xr, self.linear_coef_, self.linear_intercept_), offset64

    def _encodes(self) -> bool:
        return ENCODINGS[self.encoding][1]

    def _make_encoder(self) -> ThermometerEncoder:
        keep_raw = ENCODINGS[self.encoding][0]
        return ThermometerEncoder(self.n_bins, keep_raw=keep_raw, random_state=self._seed)

    def _encode(self, X: np.ndarray) -> np.ndarray:
        """The network's input: ``X`` itself, or its code under the fitted encoder."""
        return X if self.encoder_ is None else self.encoder_.transform(X)

    # ------------------------------------------------------------- the training
    def _train(self, fit: _Fit, network: _Network) -> SBNNet:
        """Build or continue the skorch net and run this call's epochs on its own RNG stream."""
        device = network.device
        forks = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=forks):
            if fit.first or self._rng_state is None:
                torch.manual_seed(fit.seed)
            else:  # continue the torch RNG stream: resumed fits equal uninterrupted ones
                set_rng_state(self._rng_state, device)
            net = self._build_net(network) if fit.first else self._continued_net(device)
            self._configure(net, fit, network)
            self._run_epochs(net, fit)
            self._rng_state = get_rng_state(device)
        return net

    def _module_kwargs(self, network: _Network) -> dict:
        """Arguments of :class:`~sklearn_bnn.nn.BinaryNetwork`: the one place they are built."""
        encoder = self.encoder_
        n_inputs = self.n_features_in_ if encoder is None else encoder.n_features_out_
        kwargs = dict(
            n_features=n_inputs,
            hidden_layer_sizes=network.sizes,
            n_outputs=self._n_outputs(),
            noise=network.noise,
            slope=network.slope,
            first_layer=network.first_layer,
        )
        if ARCHITECTURES[network.architecture].reads_code and encoder is not None:
            kwargs["code_start"] = encoder.first_bit_
        return kwargs

    def _build_net(self, network: _Network) -> SBNNet:
        module_kwargs = {f"module__{k}": v for k, v in self._module_kwargs(network).items()}
        architecture = ARCHITECTURES[network.architecture]
        net = SBNNet(
            architecture.module,
            **module_kwargs,
            criterion=torch.nn.MSELoss,  # unused: SBNNet.get_loss computes the loss
            optimizer=torch.optim.Adam,
            optimizer__fused=fused_adam(network.device.type),
            lr=self._learning_rate(),
            binary_lr=self.binary_learning_rate,
            max_epochs=1,  # each fit passes its number of epochs
            iterator_train=TensorBatches,
            iterator_valid=TensorBatches,
            train_split=None,
            device=network.device,
            callbacks=self._callbacks(False, True, 1),
            loss=self._loss,
            train_mode=network.train_mode,
        )
        net.initialize()
        self.init_ = architecture.initialize(net.module_, self.init, self.surrogate)
        if self.linear:  # the network starts as nothing added to the fitted linear term
            with torch.no_grad():
                net.module_.head.weight.zero_()
                net.module_.head.bias.zero_()
        self.critical_init_ = self.init_.get("critical")
        net.module_.to(network.device)
        self.net_, self.device_ = net, network.device
        return net

    def _continued_net(self, device) -> SBNNet:
        net = self.net_
        if torch.device(net.device) != device:
            # a warm start on another device: device="auto" resolving to CUDA for a model
            # fitted (or unpickled) on the CPU, or the reverse
            _place(net, device)
            self.device_ = device
        return net

    def _configure(self, net: SBNNet, fit: _Fit, network: _Network) -> None:
        """This call's batch size, validation data, callbacks and training options."""
        n_train = len(fit.train)
        batch_size = auto_batch_size(n_train) if self.batch_size == "auto" else self.batch_size
        params = dict(
            batch_size=min(batch_size, n_train),
            train_split=None if fit.valid is None else predefined_split(fit.valid),
            callbacks=self._callbacks(fit.early_stopping, fit.incremental, fit.n_epochs),
            verbose=self.verbose,
            alpha=self.alpha,
            train_mode=network.train_mode,
            jit_step=self.compile,
        )
        if net.lr != self._learning_rate():  # skorch updates the optimiser's lr in place
            params["lr"] = self._learning_rate()
        net.set_params(**params)
        net.initialize_callbacks()  # set_params(callbacks=...) alone keeps the old ones
        # set directly: skorch's set_params on an initialised net only accepts prefixed
        # keys of modules and criteria
        net.iterator_train__shuffle = self.shuffle

    def _run_epochs(self, net: SBNNet, fit: _Fit) -> None:
        """skorch ends the loop quietly on ``KeyboardInterrupt`` (and ``EpochCheckpoint``
        rolls back to the last completed epoch); anything else propagates and ``_fit``
        restores the estimator as it was."""
        self._check_penalty(net)
        try:
            net.partial_fit(fit.train, None, epochs=fit.epochs)
        except TrainingDivergedError as exc:
            raise TrainingDivergedError(
                f"{exc} The largest |feature| in X is {float(np.abs(fit.X).max()):.3g}."
            ) from exc
        except RuntimeError as exc:
            rate = max(self._learning_rate(), self.binary_learning_rate)
            if "overflow" not in str(exc) or rate / (1 - _ADAM_BETA1) <= _FLOAT32_MAX:
                raise
            # Adam's step size lr / (1 - beta1) beyond float32's range: a setting, not
            # a divergence
            raise TrainingDivergedError(
                f"Adam's step size, the learning rate / (1 - beta1) = {rate:g} / "
                f"{1 - _ADAM_BETA1:g}, overflows float32 ({exc}). Lower learning_rate_init "
                f"(now {self._learning_rate():g}) and binary_learning_rate (now "
                f"{self.binary_learning_rate:g})."
            ) from exc

    def _learning_rate(self) -> float:
        """``learning_rate_init``, with ``"auto"`` resolved by the architecture and by
        whether the network learns what a linear term leaves."""
        if not isinstance(self.learning_rate_init, str):
            return self.learning_rate_init
        spec = ARCHITECTURES.lookup(self.architecture)
        if self._over_linear_term() and spec.linear_learning_rate_init is not None:
            return spec.linear_learning_rate_init
        return spec.learning_rate_init

    def _over_linear_term(self) -> bool:
        """``linear=True`` with a fitted term that is not all zero (a first ``partial_fit``
        batch of one class fits none: the network then learns alone)."""
        if not hasattr(self, "linear_coef_"):
            return bool(self.linear)
        if self.linear_coef_ is None:
            return False
        return bool(np.any(self.linear_coef_) or np.any(self.linear_intercept_))

    def _check_penalty(self, net: SBNNet) -> None:
        """Refuse an ``alpha`` whose L2 penalty is not a float32 number at the start."""
        if self.alpha == 0:
            return
        with torch.no_grad():
            penalty = float(net._penalty(1.0))
        if not np.isfinite(penalty):
            raise ValueError(
                f"alpha={self.alpha:g} is too large: the L2 penalty 0.5 * alpha * ||W||^2 "
                f"over the real weights is {penalty} in float32 (largest float32: "
                f"{_FLOAT32_MAX:.3g}) before the first step. Use a smaller alpha; the "
                "penalty is divided by the number of training samples, as in MLPClassifier."
            )

    def _callbacks(self, early_stopping: bool, incremental: bool, n_epochs: int) -> list:
        # partial_fit trains one epoch at a time: no schedule to follow
        schedule = "constant" if incremental else self.learning_rate
        callbacks = [
            (
                "lr_schedule",
                LearningRateSchedule(
                    schedule, self._learning_rate(), n_epochs, self.binary_learning_rate
                ),
            ),
            ("finite_loss", FiniteLoss()),
            ("flip_ratio", FlipRatio()),
            *self._score_callbacks(),
            ("checkpoint", EpochCheckpoint()),  # before early_stopping: see its docstring
        ]
        if incremental:  # one epoch: nothing to stop
            return callbacks
        stopper = EarlyStopping(
            monitor=self._valid_key if early_stopping else "train_loss",
            lower_is_better=not early_stopping,
            patience=self.n_iter_no_change,
            threshold=self.tol,
            threshold_mode="abs",
            load_best=early_stopping,
            sink=print,
        )
        return [*callbacks, ("early_stopping", stopper)]

    def _score_callbacks(self) -> list:
        """Validation score of the ``inference`` network and of the 1-bit one (once if same).

        Each records the validation loss too when its network is the one the training
        mode computes that loss with (a single forward pass; ``mc`` draws never are)."""
        key, binary_key = self._valid_key, f"{self._valid_key}_binary"
        mode, n = INFERENCE[self.inference]

        def scorer(outputs, keys, mode):
            return ValidScore(
                outputs, self._valid_score, keys, loss=self._valid_loss, link=self._link,
                mode=mode,
            )  # fmt: skip

        if (mode, n) == INFERENCE["binary"]:
            return [(key, scorer(self._module_outputs, (key, binary_key), mode))]
        return [
            (key, scorer(self._module_outputs, (key,), mode if n == 1 else None)),
            (binary_key, scorer(self._binary_outputs, (binary_key,), INFERENCE["binary"][0])),
        ]

    def _finish(self, net: SBNNet, fit: _Fit) -> None:
        """Fitted attributes; warn on an interrupted fit or an unfinished constant schedule."""
        stopper = dict(net.callbacks_).get("early_stopping")
        stopped_early = stopper is not None and stopper.misses_ >= stopper.patience
        if stopper is not None:
            stopper.best_model_weights_ = None  # already loaded; keep pickles small
        n_done = len(net.history) - fit.n_rows
        if n_done < fit.epochs and not stopped_early:
            if n_done == 0:  # nothing of this fit to keep: _fit restores the estimator
                raise KeyboardInterrupt
            kept = "the best validation epoch" if fit.early_stopping else "the last completed epoch"
            warnings.warn(
                f"Training interrupted by user after {n_done} of {fit.epochs} epoch(s); "
                f"keeping the weights of {kept}.",
                UserWarning,
            )
        self._collect(net, fit.early_stopping)
        if not fit.incremental:
            self._check_deployable(net.module_, fit.train)
        ran_out = n_done == fit.n_epochs and not stopped_early
        if not fit.incremental and ran_out and self.learning_rate not in ANNEALED:
            warnings.warn(
                f"Stochastic optimizer: maximum iterations ({fit.n_epochs}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
            )

    def _check_deployable(self, module, data: TensorData) -> None:
        """Warn when ``predict``'s 1-bit network is far below the surrogate it was trained
        through (the S1 read-out, ``inference="surrogate"``), on training rows."""
        trained_as = SURROGATE_SPECS[self.surrogate].forward
        if INFERENCE[self.inference] != INFERENCE["binary"] or trained_as == "binary":
            return
        n = len(data)
        rows = np.sort(np.random.default_rng(self._seed).permutation(n)[:_DEPLOY_ROWS])
        X, y = data.X[rows], to_numpy(data.y[rows])
        w = None if data.sample_weight is None else to_numpy(data.sample_weight[rows])
        offset = None if data.offset64 is None else data.offset64[rows]
        mode, _ = INFERENCE["surrogate"]
        head = self._head(module)
        outputs = (
            network_outputs(
                module, X, mode, 1, seed=self._seed, link=self._link, head=head, offset=offset
            ),
            self._binary_outputs(module, X, offset),
        )
        scores = [self._valid_score(out, y, w) for out in outputs]
        if scores[1] < scores[0] - _DEPLOY_GAP:
            warnings.warn(
                f"The 1-bit network that predict uses (inference='binary') scores "
                f"{scores[1]:.3f} on the training data, far below the surrogate it was trained "
                f"through (surrogate={self.surrogate!r}: {scores[0]:.3f} with "
                "inference='surrogate'). Predict with inference='surrogate' or 'mc' "
                "(set_params, no refit), or train the 1-bit network itself: "
                "surrogate='binary' (the default), with architecture='residual' for deep "
                "networks.",
                UserWarning,
            )

    def _collect(self, net: SBNNet, early_stopping: bool) -> None:
        """Fitted attributes from the skorch history (all epochs, as the MLP estimators)."""
        history = history_without_batches(net.history)
        self.history_ = history
        self.n_iter_ = len(history)
        self.loss_curve_ = [row["train_loss"] for row in history]
        self.flip_ratio_ = np.array([row.get("flip_ratio", np.nan) for row in history])
        n_binary = len(net.module_.binary_weights())
        self.layer_flip_ratio_ = np.array(
            [row.get("layer_flip_ratio", [np.nan] * n_binary) for row in history], dtype=float
        ).reshape(len(history), n_binary)
        if early_stopping:
            key = self._valid_key
            self.validation_scores_ = [row[key] for row in history if key in row]
            self.best_validation_score_ = max(self.validation_scores_)
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_)
        self.n_layers_ = len(net.module_.layers) + 2
        self.n_outputs_ = net.module_.head.out_features

    # --------------------------------------------------------------- prediction
    def _head(self, module) -> tuple[np.ndarray, np.ndarray]:
        """The head's float64 weight and bias that predictions use."""
        return head_parameters(module.head)

    def _module_outputs(
        self, module, X: torch.Tensor, offset=None, exact=True, link=True
    ) -> np.ndarray:
        """Float64 outputs (after ``_link``; ``link=False``: before) of the ``inference``
        network on tensor ``X``, plus ``offset`` (the linear term, float64) before the link
        (``exact``: see :func:`~sklearn_bnn._training.float64_head`)."""
        mode, n = INFERENCE[self.inference]
        n = self.n_mc_samples if n is None else n
        head = self._head(module)
        return network_outputs(
            module, X, mode, n, seed=self._seed, link=self._link if link else None,
            head=head, offset=offset, exact=exact,
        )  # fmt: skip

    def _binary_outputs(
        self, module, X: torch.Tensor, offset=None, exact=True, link=True
    ) -> np.ndarray:
        head = self._head(module)
        return network_outputs(
            module, X, "binary", link=self._link if link else None, head=head, offset=offset,
            exact=exact,
        )  # fmt: skip

    def _valid_loss(self, outputs: np.ndarray, y: np.ndarray, sample_weight) -> float:
        """The training loss (no penalty) of float64 outputs before the link, the linear
        term added, on validation targets ``y`` as ``_targets`` encodes them."""
        return VALID_LOSSES[self._loss](outputs, y, sample_weight)

    def _outputs(self, X) -> np.ndarray:
        """Validated ``X`` through the fitted ``inference`` network: float64 outputs."""
        check_is_fitted(self)
        X = self._validate_X(X)
        Z = self._encode(X)
        # a read-only array (pandas copy-on-write, memmaps) would make torch warn
        Z32 = Z.astype(np.float32, copy=not Z.flags.writeable)
        _, offset = self._linear_offsets(X, Z)
        Zt = torch.as_tensor(Z32, device=self.device_)
        out = self._module_outputs(self.net_.module_, Zt, offset)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise ValueError(
                f"The {self.inference!r} network's output is not finite for "
                f"{int(bad.sum())} of {len(X)} samples (largest |feature| there: "
                f"{float(np.abs(X[bad]).max()):.3g}): such values overflow its "
                "float32 arithmetic. Standardise the features, e.g. with "
                "sklearn.preprocessing.StandardScaler, as for fit."
            )
        return out

    # -------------------------------------------------------------- inspection
    @property
    def coefs_(self) -> list[np.ndarray]:
        check_is_fitted(self)
        module = self.net_.module_
        return [layer.weight.detach().cpu().numpy().T.copy() for layer in module.layers] + [
            module.head.weight.detach().cpu().numpy().T.copy()
        ]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        check_is_fitted(self)
        module = self.net_.module_
        return [layer.bias.detach().cpu().numpy().copy() for layer in module.layers] + [
            module.head.bias.detach().cpu().numpy().copy()
        ]

    def _packed(self, **kwargs) -> PackedBinaryNetwork:
        check_is_fitted(self)
        code = None if self.encoder_ is None else self.encoder_.input_code()
        export = ARCHITECTURES[self.architecture].export
        packed = export(self.net_.module_, code=code, **kwargs)
        if self.linear_coef_ is not None:
            packed.set_linear(*self._linear(), reads=self._linear_reads())
        return packed

    def summary(self) -> ModelSummary:
        """Per layer: parameters, 1-bit weights, bytes as float32 and bit-packed.

        ``packed_bytes`` are the arrays of ``export_binary()`` (the input code's
        thresholds and feature indices, packed signs or a real first layer's float32
        matrix, folded thresholds, the head: float32, or float64 with a regressor's
        target scaling folded in).

        Returns
        -------
        ModelSummary
            ``rows`` holds one dict per layer; ``files`` the on-disk sizes of the saved
            packed network and of the float32 state dict (``torch.save``); ``str()`` gives
            a table.
        """
        check_is_fitted(self)
        module = self.net_.module_
        packed = self.export_binary()
        packed_bytes = packed.layer_nbytes()
        rows = [] if packed.code is None else [_code_row(packed)]
        for i, layer in enumerate(module.layers):
            kind = "real" if layer.real else "binary"
            rows.append(_layer_row(f"{kind} {i + 1}", layer, packed_bytes[i], not layer.real))
        rows.extend(_other_rows(module))
        rows.append(_layer_row("head (real)", module.head, packed_bytes[-1], False))
        if packed.linear_coef is not None:
            rows.append(_linear_row(packed))
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
        return state

    def __setstate__(self, state):
        from . import __version__

        state = dict(state)
        version = state.pop("_sklearn_bnn_version", None)
        if version is not None and version != __version__:
            warnings.warn(
                f"Unpickling a {type(self).__name__} saved by sklearn-bnn {version} with "
                f"sklearn-bnn {__version__}: results may differ. Refit (or save again) with "
                "this version to silence this warning.",
                UserWarning,
            )
        if "net_" in state and "encoder_" not in state:
            # the committed CUDA fixture (tests/data/cuda_model.pkl) was pickled before
            # these parameters and attributes existed: its values
            state = {**_FIXTURE_DEFAULTS, **state}
        if "linear_input" not in state:  # pickled before the linear term could read the code
            fitted = state.get("linear_coef_") is not None
            state.update(linear_input="features", linear_rows="train", linear_alpha_=None)
            state.update(_linear_input="features" if fitted else None)
            state.update(_linear_rows="train" if fitted else None)
        if "binary_learning_rate" not in state:  # pickled before the +-1 layers had a rate
            state["binary_learning_rate"] = state.get("learning_rate_init", 1e-3)
        super().__setstate__(state)
        if "net_" in self.__dict__:  # skorch maps a CUDA-trained net to the CPU if need be
            self.device_ = torch.device(self.net_.device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        return tags


#: What ``tests/data/cuda_model.pkl`` lacks (see ``__setstate__``).
_FIXTURE_DEFAULTS = dict(
    architecture="plain", slope=1.0, compile=False, learning_rate="constant", encoding="raw",
    n_bins=8,
    first_layer="binary", encoder_=None, _rng_state=None, class_weight=None,
    linear=False, linear_alpha=1.0, linear_coef_=None, linear_intercept_=None,
    _linear_alpha=None,
)  # fmt: skip


def _code_row(packed) -> dict:
    n_code = len(packed.code.threshold)
    return {
        "layer": "input code",
        "shape": (packed.n_features_in_, packed.code.n_outputs),
        "params": n_code,
        "binary_weights": 0,
        "float32_bytes": 4 * n_code,
        "packed_bytes": packed.code.nbytes,
    }


def _other_rows(module) -> list[dict]:
    """Parameters outside the layers and the head (a residual network's branch scales);
    their packed bytes are counted with the blocks that use them."""
    other = [
        (name, p) for name, p in module.named_parameters()
        if not name.startswith(("layers.", "head."))
    ]  # fmt: skip
    return [
        {
            "layer": f"{name} (real)",
            "shape": tuple(p.shape),
            "params": p.numel(),
            "binary_weights": 0,
            "float32_bytes": 4 * p.numel(),
            "packed_bytes": 0,
        }
        for name, p in other
    ]


def _linear_row(packed) -> dict:
    n = packed.linear_coef.size + packed.linear_intercept.size
    return {
        "layer": "linear term (real)",
        "shape": packed.linear_coef.shape,
        "params": n,
        "binary_weights": 0,
        "float32_bytes": 4 * n,
        "packed_bytes": packed._linear_nbytes(),
    }


def _layer_row(name, layer, packed_bytes, binary) -> dict:
    n_w, n_b = layer.weight.numel(), layer.bias.numel()
    return {
        "layer": name,
        "shape": (layer.in_features, layer.out_features),
        "params": n_w + n_b,
        "binary_weights": n_w if binary else 0,
        "float32_bytes": 4 * (n_w + n_b),
        "packed_bytes": packed_bytes,
    }


class ModelSummary:
    """Table of an estimator's ``summary()``; ``rows`` and ``files`` hold the numbers.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_bnn import BinaryNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> clf = BinaryNetClassifier((8, 8), max_iter=5, random_state=0).fit(X, y)
    >>> summary = clf.summary()
    >>> summary.total
    {'params': 658, 'binary_weights': 544, 'float32_bytes': 2632, 'packed_bytes': 792}
    >>> summary
                 layer    shape  params  binary_weights  float32_bytes  packed_bytes
    ------------------  -------  ------  --------------  -------------  ------------
            input code  (4, 60)      56               0            224           448
              binary 1  (60, 8)     488             480           1952            92
              binary 2   (8, 8)      72              64            288            24
           head (real)   (8, 3)      27               0            108           108
    linear term (real)   (4, 3)      15               0             60           120
                 total              658             544           2632           792
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

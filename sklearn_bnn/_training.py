"""The training loop: skorch inside, in small overridable steps and callbacks.

Users never see skorch: the estimators (:mod:`sklearn_bnn._base`) build a
:class:`SBNNet` (a :class:`skorch.NeuralNet`) and drives it.  What this module adds:

* data that already lives on the device as tensors, served in slices
  (:class:`TensorData`, :class:`TensorBatches`): no per-row Python, no per-batch host to
  device copy;
* the loss (cross-entropy or squared error, :data:`LOSSES`, optionally sample-weighted,
  plus the ``alpha`` L2 term scaled as in :class:`~sklearn.neural_network.MLPClassifier`);
* projection of the weight means (and a real first layer's weights) onto [-1, 1] after
  each optimiser step;
* the learning-rate schedule of each fit (:class:`LearningRateSchedule`) and the ``"auto"``
  epochs and batch size (:func:`auto_epochs`, :func:`auto_batch_size`);
* callbacks: divergence guard, fraction of flipped weight signs per epoch, validation
  score of the prediction network, and an end-of-epoch checkpoint so that an
  interrupted fit (``KeyboardInterrupt``) ends on the last completed epoch.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator
from scipy.special import logsumexp
from torch.nn import functional as F

from . import _fast_step
from .nn import FORWARDS, TRAINING
from .nn.exact import cross_entropy_loss


class TrainingDivergedError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_bnn import BinaryNetClassifier, TrainingDivergedError
    >>> X, y = load_iris(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> clf = BinaryNetClassifier((8,), surrogate="deterministic", first_layer="binary",
    ...                           encoding="raw", random_state=0)
    >>> try:
    ...     clf.fit(X * 1e30, y)                 # far from standardised
    ... except TrainingDivergedError as exc:
    ...     print(exc)
    training diverged: the loss became nan in epoch 1. Lower learning_rate_init (now 0.003)
    or standardise the features. The largest |feature| in X is 3.09e+30.
    """


class TensorData(torch.utils.data.Dataset):
    """Features, encoded targets and optional sample weights as tensors on one device.

    The estimators' linear term, when there is one: ``offset`` (a float32 tensor, a row
    per sample) is what the training loss adds to the network's outputs, ``offset64``
    (float64 numpy) what the outputs that predictions and scores use add (the same term,
    in the units of ``predict``).
    """

    def __init__(self, X, y, sample_weight=None, offset=None, offset64=None) -> None:
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.offset, self.offset64 = offset, offset64

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):  # rows, for generic torch code; training uses slices
        return self.X[i], self.y[i]


class TensorBatches:
    """Iterate over a :class:`TensorData` in mini-batches by slicing (or gathering).

    Yields ``(X, y)`` or, with sample weights or offsets,
    ``({"X": X, "sample_weight": w, "offset": o}, y)`` (``None`` for what is absent).
    Shuffling draws a permutation from torch's RNG on the data's device.
    """

    def __init__(self, dataset: TensorData, batch_size: int, shuffle: bool = False) -> None:
        self.dataset, self.batch_size, self.shuffle = dataset, int(batch_size), shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        data = self.dataset
        n = len(data)
        order = torch.randperm(n, device=data.X.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                idx = slice(start, start + self.batch_size)
            else:
                idx = order[start : start + self.batch_size]
            X, y = data.X[idx], data.y[idx]
            w, offset = data.sample_weight, data.offset
            if w is None and offset is None:
                yield X, y
            else:
                w = None if w is None else w[idx]
                offset = None if offset is None else offset[idx]
                yield {"X": X, "sample_weight": w, "offset": offset}, y


class SBNNet(NeuralNet):
    """skorch net for a :class:`~sklearn_bnn.nn.network.BinaryNetwork`.

    Parameters (beyond :class:`skorch.NeuralNet`'s)
    ----------------------------------------------
    train_mode : str
        A key of :data:`~sklearn_bnn.nn.TRAINING` (what
        :func:`~sklearn_bnn.nn.training_forward` returns).  Forward-pass names
        (``"deterministic"``, ``"lrt"``) train by exact autograd through that pass; the
        others (``"sampled+psa"``, ...) train with the estimator's objective, and their
        validation loss is that of the objective's forward pass.
    alpha : float
        L2 penalty, ``0.5 * alpha * ||W||^2 / n_batch`` as in MLPClassifier.
    loss : {"cross_entropy", "squared"}
        A key of :data:`LOSSES`: softmax cross-entropy on class codes, or half the mean
        squared error over the outputs (as :class:`~sklearn.neural_network.MLPRegressor`).
    binary_lr : float or None
        Adam's learning rate for the latent weights of the :math:`\\pm 1` layers
        (``module_.binary_weights()``), a parameter group of its own (marked ``"binary"``);
        ``None``: ``lr`` like every other parameter.
    jit_step : bool
        Run the training step's forward pass and loss (the objective, for sampled modes)
        through :func:`torch.compile`; the optimiser step, projection and prediction stay
        eager.  Not skorch's ``compile``, which would replace ``module_`` by a wrapper
        whose state-dict keys differ.  See :class:`~sklearn_bnn.BinaryNetClassifier`'s
        ``compile`` for where it measurably helps.
    """

    def __init__(
        self,
        *args,
        train_mode: str = "deterministic",
        alpha: float = 0.0,
        jit_step: bool = False,
        loss: str = "cross_entropy",
        binary_lr: float | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.binary_lr = binary_lr
        self.loss = loss
        self.train_mode = train_mode
        self.alpha = alpha
        self.jit_step = jit_step

    def initialize_optimizer(self, triggered_directly=None):
        """skorch's optimiser, with the latent weights of the :math:`\\pm 1` layers in a
        parameter group of their own at ``binary_lr`` (the real parameters keep ``lr``)."""
        named = list(self.get_all_learnable_params())
        args, kwargs = self.get_params_for_optimizer("optimizer", named)
        latents = {id(p) for p in self.module_.binary_weights()}
        if self.binary_lr is None or not latents or "params" in kwargs or not args:
            return super().initialize_optimizer()
        params = [p for group in args[0] for p in _group_params(group)]
        real = [p for p in params if id(p) not in latents]
        binary = [p for p in params if id(p) in latents]
        groups = [{"params": real}, {"params": binary, "lr": self.binary_lr, "binary": True}]
        self.optimizer_ = self.optimizer(groups, *args[1:], **kwargs)
        return self

    def get_default_callbacks(self):
        # skorch's PrintLog formats a table every epoch even when it prints nothing; its
        # PassthroughScoring callbacks ("train_loss", "valid_loss") average the batch losses
        # by slicing the history, which run_single_epoch records directly
        drop = {"train_loss", "valid_loss"} | (set() if self.verbose else {"print_log"})
        return [c for c in super().get_default_callbacks() if c[0] not in drop]

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self._best_losses = {}  # per prefix, the lowest epoch loss of this fit

    def _set_training(self, training=True):
        # skorch calls this on every batch, and Module.train() walks every submodule each
        # time (~5% of a small model's step: digits, hidden (8,), batch 16); skip it when
        # the module and criterion are already in the requested mode.
        names = self._modules + self._criteria
        modules = [getattr(self, name + "_", None) for name in names]
        if any(isinstance(m, torch.nn.Module) and m.training != training for m in modules):
            super()._set_training(training)

    def _forward_mode(self) -> str:
        if self.train_mode in FORWARDS:
            return self.train_mode
        return TRAINING.lookup(self.train_mode).forward

    def infer(self, x, **fit_params):
        if isinstance(x, Mapping):
            x = x["X"]
        if self.jit_step and self.module_.training:
            forward = self._compiled("forward", lambda: torch.compile(self.module_))
            return forward(x, mode=self._forward_mode())
        return self.module_(x, mode=self._forward_mode())

    def _compiled(self, key, build):
        """The compiled callable ``key`` for the current ``module_``, built on first use.

        Kept per module (a new fit builds a new network) and never pickled.  Dynamo compiles
        on the first call; a failure there (no C++ compiler for the CPU backend, say) is
        re-raised naming the way out.
        """
        cache = self.__dict__.setdefault("_compiled_cache", {})
        if cache.get("module") is not self.module_:
            cache.clear()
            cache["module"] = self.module_
        if key not in cache:
            cache[key] = _named_failures(build())
        return cache[key]

    def _penalty(self, total):
        """``0.5 * alpha * ||W||^2 / total`` over the real weights (head, a real first layer).

        The latent means of the :math:`\\pm 1` layers are not penalised: their deployed
        weights have magnitude 1 whatever the mean, and a pull towards zero only makes
        their signs coin flips (the 1-bit network then parts from the surrogate).
        """
        latents = {id(p) for p in self.module_.binary_weights()}
        params = self.module_.named_parameters()
        penalty = sum(
            p.pow(2).sum() for n, p in params if n.endswith("weight") and id(p) not in latents
        )
        return 0.5 * self.alpha * penalty / total

    def _losses(self):
        """(per-sample loss of the autograd modes, per-sample loss of the estimators)."""
        return LOSSES[self.loss]

    def get_loss(self, y_pred, y_true, X=None, training=False):
        offset = X.get("offset") if isinstance(X, Mapping) else None
        losses = self._losses()[0](y_pred if offset is None else y_pred + offset, y_true)
        if isinstance(X, Mapping) and X.get("sample_weight") is not None:
            w = X["sample_weight"]
            total = w.sum()
            loss = (w * losses).sum() / total
        else:
            total = losses.shape[0]
            loss = losses.mean()
        if self.alpha and training:
            loss = loss + self._penalty(total)
        return loss

    def train_step_single(self, batch, **fit_params):
        """Exact autograd for forward-pass modes; otherwise the estimator's objective.

        The objective's scalar has the sampled (weighted) mean loss as value and the
        estimator's gradient as gradient; the ``alpha`` penalty is added and differentiated
        exactly.
        """
        if self.train_mode in FORWARDS:
            return super().train_step_single(batch, **fit_params)
        objective = TRAINING.lookup(self.train_mode)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x, w, offset = _unpack(Xi)
        base = self._losses()[1]
        sample_loss, total = _weighted(_offset(base, offset), w, x.shape[0])
        if self.jit_step and w is None:
            module = self.module_
            # the offset (the linear term) is an argument, so one compiled step serves
            # every batch
            step = self._compiled(
                self.train_mode,
                lambda: torch.compile(
                    lambda x, y, o: objective(module, x, y, _offset(base, o))
                ),
            )
            loss, y_pred = step(x, yi, offset)
        else:
            loss, y_pred = objective(self.module_, x, yi, sample_loss)
        if self.alpha:
            loss = loss + self._penalty(total)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        """skorch's step without its closure: zero the gradients, compute them, step every
        optimiser once, then project the weights onto [-1, 1].

        The same operations in the same order as :meth:`skorch.NeuralNet.train_step` (whose
        optimiser closure is called exactly once by Adam), without the closure and the step
        accumulator.  The zeroing, the step and the hooks to call are
        :mod:`sklearn_bnn._fast_step`'s: on its fast path without an ``on_grad_computed``
        notification that no callback listens to, and without torch's profiler labels
        around ``zero_grad`` and ``step``.
        """
        optimizers = [getattr(self, name + "_") for name in self._optimizers]
        for optimizer in optimizers:
            _zero_grad(optimizer)
        step = self.train_step_single(batch, **fit_params)
        hooks = _fast_step.listeners(self, "on_grad_computed")
        if hooks:
            params = TeeGenerator(self.get_all_learnable_params())
            for hook in hooks:
                hook(self, named_parameters=params, batch=batch, training=True)
        for optimizer in optimizers:
            _optimizer_step(optimizer)
        self.module_.project_()
        return step

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch, without a device-to-host copy per batch.

        skorch records each batch loss with ``loss.item()``, which on a GPU waits for that
        batch to finish before the next one can be queued.  Here the losses stay on the
        device and are copied once, at the end of the epoch, into the same history entries
        (``<prefix>_loss``, ``<prefix>_batch_size`` per batch, ``<prefix>_batch_count``).
        Batch callbacks therefore see no loss in the history; :class:`FiniteLoss` checks
        the epoch's losses at its end.  The validation pass is skipped when a
        :class:`ValidScore` records the validation loss from the same network's outputs
        (:meth:`ValidScore.records_loss`): the epoch then has no validation batches.
        """
        if iterator is None or (not training and self._valid_loss_recorded()):
            return
        rows = self.history[-1]["batches"]
        first = len(rows)
        losses = []
        # the net's own hook (a new history row) and the callbacks' (on the fast path only
        # those that define one)
        begin = _fast_step.listeners(self, "on_batch_begin")
        end = _fast_step.listeners(self, "on_batch_end")
        key = prefix + "_batch_size"
        for batch in iterator:
            for hook in begin:
                hook(self, batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            rows[-1][key] = len(batch[1])  # y: always a tensor here
            for hook in end:
                hook(self, batch=batch, training=training, **step)
        values = torch.stack(losses).tolist() if losses else []
        for row, value in zip(rows[first:], values):
            row[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", len(values))
        if values:  # the epoch's loss: the batch losses' mean weighted by batch size
            self.record_loss(prefix, np.average(values, weights=[row[key] for row in rows[first:]]))

    def record_loss(self, prefix: str, loss) -> None:
        """Record the epoch's ``<prefix>_loss`` and ``<prefix>_loss_best``, whether it is
        the lowest of this fit: what skorch's ``PassthroughScoring`` records."""
        best = self.__dict__.setdefault("_best_losses", {})
        is_best = loss < best.get(prefix, np.inf)
        if is_best:
            best[prefix] = loss
        self.history.record(prefix + "_loss", loss)
        self.history.record(prefix + "_loss_best", bool(is_best))

    def _valid_loss_recorded(self) -> bool:
        """Whether a callback (:class:`ValidScore`) records ``valid_loss`` from its own
        forward pass over the validation rows, which skorch's pass would repeat."""
        return any(
            callable(getattr(cb, "records_loss", None)) and cb.records_loss(self)
            for _, cb in self.callbacks_
        )

    def __getstate__(self):
        # The classifier sets the validation split for each fit; it holds the validation
        # data as device tensors, which skorch would pickle outside the map_location path
        # (so a CUDA-trained model would not load on a CPU-only machine).
        state = super().__getstate__()
        state["train_split"] = None
        state.pop("_compiled_cache", None)  # compiled code is rebuilt on the next training step
        state.pop("_best_losses", None)  # within a fit only
        return state

    def __setstate__(self, state):
        # the committed CUDA fixture (tests/data) was pickled before these parameters
        state = {"jit_step": False, "loss": "cross_entropy", "binary_lr": None, **state}
        super().__setstate__(state)


def _group_params(group) -> list:
    """The parameters of one entry of an optimiser's parameter list (a tensor or a group)."""
    return list(group["params"]) if isinstance(group, Mapping) else [group]


def squared_loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Per-sample half mean squared error over the outputs, :math:`\tfrac{1}{2K}\|z - y\|^2`.

    ``outputs`` of shape ``(n_samples, ..., n_outputs)`` (PSA's flipped outputs carry an
    extra axis), ``y`` of shape ``(n_samples, n_outputs)``.  Its batch mean is
    :class:`~sklearn.neural_network.MLPRegressor`'s ``squared_error`` loss.
    """
    target = y.reshape(y.shape[0], *([1] * (outputs.dim() - 2)), y.shape[-1])
    return 0.5 * (outputs - target).pow(2).mean(-1)


def _softmax_cross_entropy(logits, y):
    return F.cross_entropy(logits, y, reduction="none")


def _weighted_mean(losses: np.ndarray, sample_weight: np.ndarray | None) -> float:
    return float(np.average(losses, weights=sample_weight))


def mean_squared_loss(
    outputs: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> float:
    """:func:`squared_loss` of float64 numpy ``outputs`` (the linear term added), averaged
    over the rows with ``sample_weight`` (``None``: equal weights)."""
    y, outputs = y.reshape(len(y), -1), outputs.reshape(len(outputs), -1)
    return _weighted_mean(0.5 * ((outputs - y) ** 2).mean(axis=1), sample_weight)


def mean_cross_entropy(
    logits: np.ndarray, codes: np.ndarray, sample_weight: np.ndarray | None = None
) -> float:
    """Softmax cross-entropy of float64 numpy ``logits`` (the linear term added) on class
    codes, averaged over the rows with ``sample_weight`` (``None``: equal weights)."""
    log_total = logsumexp(logits, axis=1)
    picked = np.take_along_axis(logits, codes.reshape(-1, 1).astype(np.intp), axis=1)[:, 0]
    return _weighted_mean(log_total - picked, sample_weight)


#: The same losses in float64 numpy, averaged over the rows (weighted): the validation
#: loss that :class:`ValidScore` records from its own forward pass.
VALID_LOSSES = {"cross_entropy": mean_cross_entropy, "squared": mean_squared_loss}


#: Losses by name (``SBNNet``'s ``loss``): the per-sample loss of the exact-autograd modes
#: and the one handed to the gradient estimators' objectives (PSA has a fast path for
#: :func:`~sklearn_bnn.nn.exact.cross_entropy_loss` itself).
LOSSES = {
    "cross_entropy": (_softmax_cross_entropy, cross_entropy_loss),
    "squared": (squared_loss, squared_loss),
}


def _unpack(Xi):
    """``(X, sample_weight, offset)`` of a batch's features (see :class:`TensorBatches`)."""
    if isinstance(Xi, Mapping):
        return Xi["X"], Xi.get("sample_weight"), Xi.get("offset")
    return Xi, None, None


def _offset(per_sample, offset):
    """The per-sample loss of the outputs plus ``offset`` (the linear term), or as it is."""
    if offset is None:
        return per_sample

    def sample_loss(outputs, y):
        shift = offset.reshape(offset.shape[0], *([1] * (outputs.dim() - 2)), offset.shape[1])
        return per_sample(outputs + shift, y)

    return sample_loss


def _weighted(per_sample, w, n):
    """``(sample_loss, total)``: the loss scaled by ``w / mean(w)``, and the penalty's divisor."""
    if w is None:
        return per_sample, n
    scale = w / w.mean()

    def sample_loss(outputs, y):
        losses = per_sample(outputs, y)
        return losses * scale.reshape(-1, *([1] * (losses.dim() - 1)))

    return sample_loss, w.sum()


def _named_failures(fn):
    """Wrap a :func:`torch.compile` result so that a compiler failure says what to do."""

    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
                raise RuntimeError(
                    f"compile=True: torch.compile failed ({type(exc).__name__}: {exc}). "
                    "Use compile=False (the default) to train without it."
                ) from exc
            raise

    return call


#: The fast step's public functions (:mod:`sklearn_bnn._fast_step`) under the names that
#: :class:`SBNNet` calls, which tests/test_binary_learning.py imports and
#: benchmarks/profile_fit.py times (it replaces these names in this module).
_zero_grad = _fast_step.zero_grad
_optimizer_step = _fast_step.optimizer_step


class FiniteLoss(Callback):
    """Raise :class:`TrainingDivergedError` after an epoch with a non-finite batch loss.

    Checked once per epoch, when :meth:`SBNNet.run_single_epoch` has copied the epoch's
    losses from the device (a check per batch would wait for every batch on a GPU).
    """

    def on_epoch_end(self, net, **kwargs):
        for row in net.history[-1]["batches"]:
            loss = row.get("train_loss")
            if loss is not None and not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"training diverged: the loss became {loss} in epoch {len(net.history)}. "
                    f"Lower learning_rate_init (now {net.lr}) or standardise the features."
                )


class FlipRatio(Callback):
    """Record, per epoch, the fraction of the :math:`\\pm 1` weights sign(M) that changed:
    over all of them (``flip_ratio``) and per :math:`\\pm 1` layer (``layer_flip_ratio``).
    A real first layer is not counted (its weights are not signs).

    The signs taken at the end of an epoch are those at the start of the next one unless a
    parameter was modified in between (its version counter tells), so they are reused
    (on :mod:`sklearn_bnn._fast_step`'s fast path; the plain path takes them again).
    """

    def on_train_begin(self, net, **kwargs):
        self._last = None

    def on_epoch_begin(self, net, **kwargs):
        last = getattr(self, "_last", None)
        versions = _fast_step.parameter_versions(net.module_)
        if last is not None and versions is not None and last[1] == versions:
            self._signs = last[0]
        else:
            self._signs = _all_signs(net.module_)
        self._last = None

    def on_epoch_end(self, net, **kwargs):
        now = _all_signs(net.module_)
        counts = [(a != b).sum() for a, b in zip(now, self._signs)]
        flipped = torch.stack(counts).tolist() if counts else []
        sizes = [signs.numel() for signs in now]
        net.history.record("flip_ratio", sum(flipped) / max(sum(sizes), 1))
        net.history.record("layer_flip_ratio", [f / n for f, n in zip(flipped, sizes)])
        del self._signs
        self._last = (now, _fast_step.parameter_versions(net.module_))

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_signs", None)  # device tensors, needed within an epoch only
        state.pop("_last", None)
        return state


def _all_signs(module) -> list[torch.Tensor]:
    """The signs of each :math:`\\pm 1` layer's latent weights (``binary_weights()``)."""
    return [w.detach() >= 0 for w in module.binary_weights()]


def _clone_tensors(tree):
    """A copy of nested dicts, lists and tuples with every tensor cloned (far cheaper than
    :func:`copy.deepcopy` of an optimiser's state dict, which is taken every epoch)."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone()
    if isinstance(tree, dict):
        return {key: _clone_tensors(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_clone_tensors(value) for value in tree)
    return tree


class _Snapshot:
    """Copies of the module's state, the optimiser's state and hyper-parameters and the RNG.

    Taken at every epoch's end, so made cheap: the tensors are copied into the previous
    snapshot's copies (:func:`sklearn_bnn._fast_step.copy_into`) when the layout is
    unchanged (the same state names, optimiser state keys and shapes), cloned otherwise.
    :meth:`restore` puts back what ``load_state_dict`` of the module's and the optimiser's
    state dicts would (the optimiser's state tensors become the copies themselves).
    """

    def __init__(self, layout, copies, values, groups, rng):
        self.layout, self.copies, self.values, self.groups, self.rng = (
            layout, copies, values, groups, rng
        )  # fmt: skip

    @classmethod
    def take(cls, net, previous: _Snapshot | None) -> _Snapshot:
        module_state = net.module_.state_dict()
        names = tuple(module_state)
        tensors = [t.detach() for t in module_state.values()]
        state = net.optimizer_.state
        keys = tuple((param, tuple(entry)) for param, entry in state.items())
        values = {}  # non-tensor optimiser state, copied by value
        for param, entry in state.items():
            for key, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors.append(value.detach())
                else:
                    values[param, key] = copy.deepcopy(value)
        layout = (names, keys, [(t.shape, t.dtype, t.device) for t in tensors])
        if previous is not None and _same_layout(previous.layout, layout):
            copies = previous.copies
            _fast_step.copy_into(copies, tensors)
        else:
            copies = [t.clone() for t in tensors]
        groups = [
            _clone_tensors({k: v for k, v in group.items() if k != "params"})
            for group in net.optimizer_.param_groups
        ]
        return cls(layout, copies, values, groups, get_rng_state(net.device))

    def restore(self, net) -> None:
        names, keys, _ = self.layout
        module_copies = iter(self.copies[: len(names)])
        net.module_.load_state_dict(dict(zip(names, module_copies)))
        optimizer = net.optimizer_
        rest = iter(self.copies[len(names) :])
        optimizer.state.clear()
        for param, entry_keys in keys:
            optimizer.state[param] = {
                key: self.values[param, key] if (param, key) in self.values else next(rest)
                for key in entry_keys
            }
        for group, saved in zip(optimizer.param_groups, self.groups):
            group.update(saved)
        set_rng_state(self.rng, net.device)


def _same_layout(a, b) -> bool:
    """Whether two snapshot layouts have the same names, state keys and tensor shapes."""
    return (
        a[0] == b[0]
        and len(a[1]) == len(b[1])
        and all(p is q and k == m for (p, k), (q, m) in zip(a[1], b[1]))
        and a[2] == b[2]
    )


class EpochCheckpoint(Callback):
    """Roll an interrupted fit back to the end of its last completed epoch.

    skorch catches ``KeyboardInterrupt`` inside its loop (early stopping raises one too)
    and ends training normally.  A user's interrupt usually lands in the middle of an
    epoch: the weights then belong to no recorded epoch and the history's last row is
    unfinished.  This callback keeps, at the end of each epoch, the module's and the
    optimiser's state and the torch RNG state; at the end of training, if the history
    has a row after the last completed epoch, it drops that row and restores the
    checkpoint.  The fitted model is then exactly the model of an
    uninterrupted run of that many epochs, and a warm-started fit resumes it exactly.

    Placed before ``EarlyStopping`` so that the epoch on which early stopping fires is
    checkpointed, and so that early stopping's ``load_best`` still has the last word.
    The copies live in memory only during training (never pickled).
    """

    def on_train_begin(self, net, **kwargs):
        self.n_rows_ = len(net.history)  # complete epochs so far
        self._state = None

    def on_epoch_end(self, net, **kwargs):
        self.n_rows_ = len(net.history)
        self._state = _Snapshot.take(net, self._state)

    def on_train_end(self, net, **kwargs):
        if len(net.history) > self.n_rows_:
            del net.history[self.n_rows_ :]
            if self._state is not None:  # else no epoch of this fit completed
                self._state.restore(net)
        self._state = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_state"] = None
        return state


def get_rng_state(device) -> tuple:
    """Torch's global RNG state for the CPU and, on CUDA, for ``device``, as numpy bytes.

    numpy, not tensors: the estimator pickles this, and only skorch's own blobs go through
    ``map_location`` (a pickle must load on a machine without the training device).
    """
    device = torch.device(device)
    cuda = torch.cuda.get_rng_state(device).numpy() if device.type == "cuda" else None
    return torch.get_rng_state().numpy(), cuda


def set_rng_state(state: tuple, device) -> None:
    """Inverse of :func:`get_rng_state`; a CUDA state is used only on a CUDA device."""
    cpu, cuda = state
    torch.set_rng_state(torch.from_numpy(np.asarray(cpu, dtype=np.uint8)).clone())
    device = torch.device(device)
    if cuda is not None and device.type == "cuda":
        torch.cuda.set_rng_state(torch.from_numpy(np.asarray(cuda, dtype=np.uint8)).clone(), device)


def _constant(epoch: int, n_epochs: int) -> float:
    return 1.0


def _cosine(epoch: int, n_epochs: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * epoch / n_epochs))


@functools.cache
def fused_adam(device_type: str) -> bool:
    """Whether this torch offers Adam's fused kernel on ``device_type`` (CPU: torch >= 2.4).

    One kernel for every parameter instead of a Python loop over them: the optimiser
    step of a small network costs several times less (``benchmarks/tabular.py``), with
    the same update to round-off.
    """
    try:
        param = torch.zeros(1, device=device_type, requires_grad=True)
        torch.optim.Adam([param], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def auto_batch_size(n_samples: int) -> int:
    """``batch_size="auto"``: the power of two nearest below ``n_samples / 8``, in
    [256, 1024] (all rows when fewer).

    About 8 to 16 steps per epoch on tables of 4,000 to 16,000 rows, where a step's fixed
    cost dominates and larger batches keep the fit within ``MLPClassifier``'s time, and at
    least 256 rows per step on small tables: the straight-through step is noisy
    (measured in :ref:`tabular-benchmark`).
    """
    power = 2 ** int(math.floor(math.log2(max(n_samples, 1) / 8))) if n_samples >= 8 else 1
    return int(min(max(power, 256), 1024, max(n_samples, 1)))


def auto_epochs(n_samples: int, factor: int = 1) -> int:
    """``max_iter="auto"``: ``80_000 / n_samples`` epochs, clipped to [10, 20], times
    ``factor``.

    The cosine schedule anneals over this many epochs: 20 on tables of up to 4,000 rows,
    fewer on larger ones (10 from 8,000 rows), which have more steps per epoch.  The
    :math:`\\pm 1` weights need steps to change sign (``binary_learning_rate``); the
    floor of 10 epochs is for the large non-linear tables of ``benchmarks/tabular.py``
    (:ref:`tabular-benchmark`).  ``factor`` is 2 for the regressor with early stopping,
    whose held-out rows choose the epoch that is kept (:ref:`regression`); 1 otherwise.
    """
    return factor * int(min(max(round(80_000 / max(n_samples, 1)), 10), 20))


#: Learning-rate schedules (the estimators' ``learning_rate``): factor of
#: ``learning_rate_init`` in epoch ``epoch`` (from 0) of a fit of ``n_epochs`` epochs.
SCHEDULES = {"constant": _constant, "cosine": _cosine}
#: Schedules that anneal the rate towards 0 over ``max_iter`` epochs: a fit that runs them
#: to the end has done what it was designed to do (no ``ConvergenceWarning``).
ANNEALED = frozenset({"cosine"})


class LearningRateSchedule(Callback):
    """Set the optimiser's learning rate at the start of every epoch of a fit.

    Epoch :math:`e` of a fit of :math:`E` epochs runs at ``lr * SCHEDULES[name](e, E)``;
    the count restarts with every ``fit`` (a warm start begins a new cycle) and the rate
    of each epoch is recorded in the history as ``lr``.  The parameter group of the
    :math:`\\pm 1` latent weights (marked ``"binary"``, :meth:`SBNNet.initialize_optimizer`)
    follows the same schedule from ``binary_lr`` (recorded as ``binary_lr``).
    """

    def __init__(
        self, name: str, lr: float, n_epochs: int, binary_lr: float | None = None
    ) -> None:
        self.name, self.lr, self.n_epochs = name, lr, n_epochs
        self.binary_lr = binary_lr

    def on_train_begin(self, net, **kwargs):
        self.epoch_ = 0

    def on_epoch_begin(self, net, **kwargs):
        factor = SCHEDULES[self.name](self.epoch_, self.n_epochs)
        lr = self.lr * factor
        binary_lr = lr if self.binary_lr is None else self.binary_lr * factor
        for group in net.optimizer_.param_groups:
            group["lr"] = binary_lr if group.get("binary") else lr
        net.history.record("lr", lr)
        net.history.record("binary_lr", binary_lr)
        self.epoch_ += 1


class ValidScore(Callback):
    """Record, under each of ``keys``, a validation score of the network ``outputs`` runs.

    ``outputs(module, X, offset, exact=False, link=True)`` gives the network's float64
    outputs (numpy; ``offset`` the data's float64 linear term, or ``None``; ``exact=False``:
    the head as a matrix product, see :func:`float64_head`; ``link=False``: before the
    link) and ``score(outputs, y, sample_weight)`` the score (numpy arrays; weights may be
    ``None``).  Several keys when two recorded scores are the same network's (computed
    once).

    With ``loss`` (``loss(raw_outputs, y, sample_weight)``, e.g. of :data:`VALID_LOSSES`),
    ``link`` (the estimator's, or ``None``) and ``mode`` (the forward pass ``outputs``
    runs), the callback also records ``valid_loss`` and ``valid_loss_best`` when ``mode``
    is the forward pass the net computes its validation loss with
    (:meth:`records_loss`): one forward pass over the validation rows then gives both,
    and :meth:`SBNNet.run_single_epoch` skips skorch's own, which would repeat it (in
    float32, batch by batch).
    """

    def __init__(
        self, outputs, score, keys: tuple[str, ...], loss=None, link=None, mode=None
    ) -> None:
        self.outputs, self.score, self.keys = outputs, score, tuple(keys)
        self.loss, self.link, self.mode = loss, link, mode

    def records_loss(self, net) -> bool:
        """Whether this callback records the validation loss of ``net`` (see above)."""
        mode = getattr(self, "mode", None)  # None in pickles from before it
        return mode is not None and getattr(self, "loss", None) is not None and (
            net._forward_mode() == mode
        )

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        if dataset_valid is None:
            return
        w = dataset_valid.sample_weight
        w = None if w is None else to_numpy(w)
        y = to_numpy(dataset_valid.y)
        X, offset = dataset_valid.X, dataset_valid.offset64
        if self.records_loss(net):
            outputs = self.outputs(net.module_, X, offset, exact=False, link=False)
            net.record_loss("valid", self.loss(outputs, y, w))
            if self.link is not None:
                outputs = self.link(outputs)
        else:
            outputs = self.outputs(net.module_, X, offset, exact=False)
        value = self.score(outputs, y, w)
        for key in self.keys:
            net.history.record(key, float(value))


#: The name of :class:`ValidScore` in the committed CUDA fixture (tests/data/cuda_model.pkl).
ValidAccuracy = ValidScore


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float64 ``z``, in place (numpy: each row's result is the same
    whatever rows are computed with it)."""
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def r2(y: np.ndarray, outputs: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """:func:`sklearn.metrics.r2_score` (its defaults: outputs averaged uniformly, a
    constant target scores 1 when fitted exactly, else 0) of float64 arrays of shape
    ``(n_samples, n_outputs)`` that are already validated: the per-epoch validation score
    of early stopping, where ``r2_score``'s input checks cost a fifth of a small table's
    epoch.
    """
    y, outputs = y.reshape(len(y), -1), outputs.reshape(len(outputs), -1)
    # R^2 is scale-free: a power of 2 keeps the squares of targets near 1e+-300 finite
    top = max(np.abs(y).max(initial=0.0), np.abs(outputs).max(initial=0.0))
    if 0.0 < top < np.inf:
        scale = np.ldexp(1.0, -np.frexp(top)[1])
        y, outputs = y * scale, outputs * scale
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    w = w.reshape(-1, 1)
    residual = (w * (y - outputs) ** 2).sum(axis=0)
    mean = (w * y).sum(axis=0) / w.sum()
    total = (w * (y - mean) ** 2).sum(axis=0)
    safe = total != 0
    scores = np.where(residual == 0, 1.0, 0.0)
    scores[safe] = 1.0 - residual[safe] / total[safe]
    return float(scores.mean())


def head_parameters(head: torch.nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    """The real head's weight ``(n_outputs, n_units)`` and bias as float64 numpy arrays."""
    return to_numpy(head.weight).astype(np.float64), to_numpy(head.bias).astype(np.float64)


def float64_head(
    features: torch.Tensor, weight: np.ndarray, bias: np.ndarray, exact: bool = True
) -> np.ndarray:
    r"""A real head on ``features`` in float64, summed in a fixed order: row by row exact.

    ``weight`` of shape ``(n_outputs, n_units)`` and ``bias`` (float64; by default
    :func:`head_parameters`).  Float32 features times float32 weights multiply exactly in
    float64, and the sum over units is accumulated unit by unit with elementwise
    operations, so each row's output is the same whatever other rows, batch split or
    thread count (a matrix product picks its kernel and summation order by shape).  For
    :math:`\pm 1` features (the 1-bit network) the sum is exact, so it equals the head of
    the packed export (:meth:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork.logits`).

    ``exact=False`` takes a float64 matrix product instead: the same outputs to round-off,
    without the guarantee, and without a Python loop over the units (the per-epoch
    validation score of early stopping, which sums over its rows anyway).
    """
    if not exact:
        return to_numpy(features).astype(np.float64) @ weight.T + bias
    f = np.asfortranarray(to_numpy(features), dtype=np.float64)
    out = np.zeros((len(f), weight.shape[0]))
    for j in range(weight.shape[1]):
        out += f[:, j, None] * weight[:, j]
    out += bias
    return out


#: Fewest rows a prediction runs through the hidden layers at once: CPU float32 matrix
#: products take other kernels, with other rounding, for a few rows (1-11 rows measured at
#: hidden (128, 128) on two threads), so smaller chunks are padded to this many.
MIN_PREDICT_ROWS = 16


def _features(module, chunk, mode, generator):
    n = len(chunk)
    if 0 < n < MIN_PREDICT_ROWS:
        chunk = torch.cat([chunk, chunk[-1:].expand(MIN_PREDICT_ROWS - n, -1)])
    return module.features(chunk, mode, generator)[:n]


@torch.no_grad()
def network_outputs(
    module,
    X: torch.Tensor,
    mode: str,
    n_samples: int = 1,
    seed: int | None = None,
    link=None,
    head: tuple[np.ndarray, np.ndarray] | None = None,
    batch_size: int = 8192,
    offset: np.ndarray | None = None,
    exact: bool = True,
) -> np.ndarray:
    """Float64 outputs of ``module`` on ``X`` under forward pass ``mode``, as numpy.

    The hidden layers run in torch (at least :data:`MIN_PREDICT_ROWS` rows at a time),
    the head in float64 (:func:`float64_head`, with ``head``'s weight and bias, by default
    the module's own), plus ``offset`` (float64, a row per row of ``X``: the linear term),
    then ``link`` (e.g. :func:`softmax`; ``None``: the real outputs):
    each row's output is the same whatever rows it is predicted with (``exact=False``:
    to round-off only, see :func:`float64_head`).  With ``n_samples > 1``
    the outputs of that many forward passes are averaged, each drawn from a generator seeded
    with ``seed`` (so the result is reproducible).
    """
    was_training = module.training
    module.eval()
    generator = None
    if n_samples > 1 or seed is not None:
        generator = torch.Generator(device=X.device)
        generator.manual_seed(int(seed or 0))
    weight, bias = head_parameters(module.head) if head is None else head
    out = []
    for start, chunk in zip(range(0, len(X), batch_size), X.split(batch_size)):
        shift = None if offset is None else offset[start : start + len(chunk)]
        total = 0.0
        for _ in range(n_samples):
            z = float64_head(_features(module, chunk, mode, generator), weight, bias, exact)
            if shift is not None:
                z += shift
            total = total + (z if link is None else link(z))
        out.append(total / n_samples)
    module.train(was_training)
    return np.concatenate(out) if out else np.empty((0, module.head.out_features))


def history_without_batches(history) -> list[dict]:
    """The skorch history as a list of per-epoch dicts, batch records dropped."""
    return [{k: v for k, v in row.items() if k != "batches"} for row in history]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()

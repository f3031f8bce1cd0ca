"""The fast default training path computes bit for bit what the plain path computes.

The plain path is frozen here: skorch's own ``train_step`` (optimiser closure, step
accumulator, ``on_grad_computed``) and ``notify`` for every batch hook, the straight-through
loss through autograd of :func:`~sklearn_bnn.nn.exact.cross_entropy_loss`, the former
``BinaryST`` backward (alpha recomputed, ``sub_`` of the product) and ``FlipRatio`` taking
the signs at every epoch's start, counted per layer.  A seeded fit through each must give
equal tensors.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch.optim.optimizer import register_optimizer_step_pre_hook

from sklearn_bnn import BinaryNetClassifier
from sklearn_bnn import _training as training
from sklearn_bnn.nn import BinaryNetwork, estimators, get_noise
from sklearn_bnn.nn.estimators import BinaryST, LinearCrossEntropy
from sklearn_bnn.nn.exact import cross_entropy_loss

X_WINE, Y_WINE = load_wine(return_X_y=True)
X_WINE = (X_WINE - X_WINE.mean(0)) / X_WINE.std(0)


class PlainNet(training.SBNNet):
    """skorch's step and epoch loop as they were before the fast path."""

    def train_step(self, batch, **fit_params):
        step = NeuralNet.train_step(self, batch, **fit_params)
        self.module_.project_()
        return step

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        rows = self.history[-1]["batches"]
        first = len(rows)
        losses = []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            rows[-1][prefix + "_batch_size"] = len(batch[1])
            self.notify("on_batch_end", batch=batch, training=training, **step)
        values = torch.stack(losses).tolist() if losses else []
        for row, value in zip(rows[first:], values):
            row[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", len(values))


def plain_binary_st_backward(ctx, g_out):
    """The BinaryST backward before the fast path (alpha from the weights, sub_ of coef * sgn)."""
    x, w, dphi, weight, bias, _ = ctx.saved_tensors
    s = ctx.scale
    alpha_raw = weight.abs().mean(dim=1)
    alpha, active = alpha_raw.clamp_min(1e-12), alpha_raw >= 1e-12
    g_a = g_out * dphi
    g_sum = g_a.sum(dim=0)
    need = ctx.needs_input_grad
    grad_x = torch.mm(g_a, w).mul_(s) if need[0] else None
    grad_w = grad_b = None
    if need[1]:
        coef = torch.where(active, bias * g_sum / (alpha * alpha) / weight.shape[1], 0.0)
        grad_w = torch.mm(g_a.t(), x).mul_(s).sub_(coef[:, None] * torch.sign(weight))
    if need[2]:
        grad_b = g_sum / alpha
    return grad_x, grad_w, grad_b, None, None


def plain_flip_begin(self, net, **kwargs):
    self._signs = net.module_.weight_signs()


def plain_flip_end(self, net, **kwargs):
    """FlipRatio before the fast path: signs at every epoch's start, a count per layer."""
    now = net.module_.weight_signs()
    flipped = torch.stack([(a != b).sum() for a, b in zip(self._signs, now)]).sum().item()
    net.history.record("flip_ratio", flipped / sum(a.numel() for a in now))


@pytest.fixture
def plain_path(monkeypatch):
    """Switch every fast piece of the default fit to its plain reference."""

    def switch():
        monkeypatch.setattr("sklearn_bnn._base.SBNNet", PlainNet)
        monkeypatch.setattr(BinaryST, "backward", staticmethod(plain_binary_st_backward))
        # a loss that is not cross_entropy_loss itself runs through autograd
        losses = dict(training.LOSSES)
        autograd_loss = lambda z, y: cross_entropy_loss(z, y)  # noqa: E731
        losses["cross_entropy"] = (losses["cross_entropy"][0], autograd_loss)
        monkeypatch.setattr(training, "LOSSES", losses)
        monkeypatch.setattr(training.FlipRatio, "on_epoch_begin", plain_flip_begin)
        monkeypatch.setattr(training.FlipRatio, "on_epoch_end", plain_flip_end)

    return switch


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _fit(sample_weight=None, **params):
    clf = BinaryNetClassifier(**{"random_state": 0, "max_iter": 4, **params})
    return clf.fit(X_WINE, Y_WINE, sample_weight=sample_weight)


def _assert_same_fit(fast, plain):
    a, b = fast.net_.module_.state_dict(), plain.net_.module_.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    a, b = fast.net_.optimizer_.state_dict()["state"], plain.net_.optimizer_.state_dict()["state"]
    for key in a:
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert fast.loss_curve_ == plain.loss_curve_
    np.testing.assert_array_equal(fast.flip_ratio_, plain.flip_ratio_)
    np.testing.assert_array_equal(fast.predict_proba(X_WINE), plain.predict_proba(X_WINE))


@pytest.mark.parametrize(
    "params",
    [{}, {"first_layer": "binary"}, {"alpha": 1e-3, "batch_size": 50}],
    ids=["default", "binary-first-layer", "alpha"],
)
def test_fast_fit_equals_plain_fit(plain_path, threads, params):
    fast = _fit(**params)
    plain_path()
    plain = _fit(**params)
    _assert_same_fit(fast, plain)


def test_fast_fit_equals_plain_fit_with_sample_weights(plain_path, threads):
    w = np.linspace(0.5, 2.0, len(Y_WINE))
    fast = _fit(sample_weight=w)
    plain_path()
    _assert_same_fit(fast, _fit(sample_weight=w))


def test_the_plain_path_is_really_switched(plain_path):
    """The control: the reference fit does not run the fast pieces."""
    calls = []
    forward = LinearCrossEntropy.forward

    def counted(ctx, *args):
        calls.append(1)
        return forward(ctx, *args)

    plain_path()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LinearCrossEntropy, "forward", staticmethod(counted))
        clf = _fit()
    assert not calls and isinstance(clf.net_, PlainNet)


@pytest.mark.parametrize("scale", [1.0, 30.0], ids=["moderate", "saturated"])
@pytest.mark.parametrize("shape", [(64, 128, 3), (14, 128, 10), (5, 3, 2)])
def test_linear_cross_entropy_node_is_autograd_bit_for_bit(threads, scale, shape):
    n, k, c = shape
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(n, k, generator=gen).sign().requires_grad_()  # +-1 features, as the ST path
    head = torch.nn.Linear(k, c)
    with torch.no_grad():
        head.weight.mul_(scale)
    y = torch.randint(0, c, (n,), generator=gen)
    inputs = (x, head.weight, head.bias)
    losses, logits = LinearCrossEntropy.apply(*inputs, y)
    grads = torch.autograd.grad(losses.mean(), inputs)
    ref_logits = head(x)
    ref = cross_entropy_loss(ref_logits, y)
    ref_grads = torch.autograd.grad(ref.mean(), inputs)
    assert torch.equal(logits, ref_logits.detach()) and torch.equal(losses.detach(), ref.detach())
    for grad, ref_grad in zip(grads, ref_grads):
        assert torch.equal(grad, ref_grad)
    # and the logits' gradient is the softmax minus the one-hot code (an independent reference)
    one_hot = torch.eye(c, dtype=torch.double)[y]
    g_z = (torch.softmax(ref_logits.detach().double(), 1) - one_hot) / n
    torch.testing.assert_close(grads[2].double(), g_z.sum(0), rtol=1e-5, atol=1e-6)


def test_optimizer_step_hooks_still_run(threads):
    calls = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: calls.append(1)
    )
    try:
        clf = _fit(max_iter=1, batch_size=64)  # 178 rows: three steps, the last ragged
    finally:
        handle.remove()
    assert len(calls) == clf.history_[0]["train_batch_count"] == 3


def test_listeners_are_what_notify_calls():
    class Counting(Callback):
        def on_batch_end(self, net, **kwargs):
            pass

    net = training.SBNNet(
        BinaryNetwork, criterion=torch.nn.MSELoss, module__n_features=2,
        module__hidden_layer_sizes=(3,), module__n_outputs=2, callbacks=[("count", Counting())],
    )
    net.initialize()
    ends = training._listeners(net, "on_batch_end")
    assert [type(h.__self__) for h in ends] == [Counting]
    begins = training._listeners(net, "on_batch_begin")
    assert [h.__self__ for h in begins] == [net]  # the net's own hook: a new history row
    assert training._listeners(net, "on_grad_computed") == []


def test_proxy_check_still_raises_for_sign_noise():
    net = BinaryNetwork(3, (4,), 2, noise="sign")
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    for _ in range(2):  # the check is cached only when it passes
        with pytest.raises(ValueError, match="no straight-through proxy"):
            estimators.StraightThrough(surrogate="binary")(net, x, y, cross_entropy_loss)
    assert get_noise("gaussian").dphi(torch.zeros(1)).item() > 0


def test_epoch_snapshot_restores_what_load_state_dict_would():
    net = _fit(max_iter=2).net_
    module_ref = {k: v.clone() for k, v in net.module_.state_dict().items()}
    optim_ref = training._clone_tensors(net.optimizer_.state_dict())
    first = training._Snapshot.take(net, None)
    second = training._Snapshot.take(net, first)  # same layout: copied into first's tensors
    assert second.copies is first.copies
    with torch.no_grad():  # what later steps would do
        for p in net.module_.parameters():
            p.add_(0.25)
        for entry in net.optimizer_.state.values():
            for value in entry.values():
                value.mul_(3.0)
    net.optimizer_.param_groups[0]["lr"] = 0.5
    second.restore(net)
    for key, value in net.module_.state_dict().items():
        assert torch.equal(value, module_ref[key]), key
    optim = net.optimizer_.state_dict()
    assert optim["param_groups"] == optim_ref["param_groups"]
    assert optim["state"].keys() == optim_ref["state"].keys()
    for index, entry in optim["state"].items():
        for key, value in entry.items():
            assert torch.equal(value, optim_ref["state"][index][key]), (index, key)


def test_the_fast_fit_calls_fused_adam_directly(monkeypatch):
    """The control of the equality tests: after its first step Adam's kernels are called
    directly (the plain path runs ``optimizer.step()`` every time)."""
    direct = []
    step = training._fused_adam_step

    def counted(optimizer):
        direct.append(step(optimizer))
        return direct[-1]

    monkeypatch.setattr(training, "_fused_adam_step", counted)
    clf = _fit(max_iter=2)
    n_steps = sum(row["train_batch_count"] for row in clf.history_)
    assert direct == [False] + [True] * (n_steps - 1)

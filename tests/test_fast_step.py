"""The fast default training path computes bit for bit what the plain path computes.

The plain path is frozen here: skorch's own ``train_step`` (optimiser closure, step
accumulator, ``on_grad_computed``) and ``notify`` for every batch hook, the straight-through
loss through autograd of :func:`~sklearn_bnn.nn.exact.cross_entropy_loss`, the former
``BinaryST`` backward (alpha recomputed, ``sub_`` of the product) and ``FlipRatio`` taking
the signs at every epoch's start, counted per layer.  A seeded fit through each must give
equal tensors.

The private torch calls live in :mod:`sklearn_bnn._fast_step`, behind its switch (the flag
``FAST_STEP``, the environment variable ``SKLEARN_BNN_FAST_STEP`` and the verified torch
range): fits with the switch off, or on a torch outside the range, must equal the fast
fit too, and must not reach the private calls.
"""

import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch.optim.optimizer import register_optimizer_step_pre_hook

from sklearn_bnn import BinaryNetClassifier
from sklearn_bnn import _fast_step as fast_step
from sklearn_bnn import _training as training
from sklearn_bnn.nn import BinaryNetwork, estimators, get_noise
from sklearn_bnn.nn.estimators import BinaryST, LinearCrossEntropy
from sklearn_bnn.nn.exact import cross_entropy_loss

X_WINE, Y_WINE = load_wine(return_X_y=True)
X_WINE = (X_WINE - X_WINE.mean(0)) / X_WINE.std(0)

needs_fast_path = pytest.mark.skipif(
    not fast_step.VERIFIED_TORCH[0] <= fast_step.TORCH_VERSION < fast_step.VERIFIED_TORCH[1],
    reason=f"torch {torch.__version__} is outside the fast step's verified range: "
    "every fit takes the plain path",
)


@pytest.fixture(autouse=True)
def switch_at_its_default(monkeypatch):
    """The switch as a user gets it (whatever this shell's SKLEARN_BNN_FAST_STEP says)."""
    monkeypatch.delenv(fast_step.ENV_VAR, raising=False)
    monkeypatch.setattr(fast_step, "FAST_STEP", None)


class PlainNet(training.SBNNet):
    """skorch's step and epoch loop as they were before the fast path."""

    def get_default_callbacks(self):
        # skorch's own: PassthroughScoring averages the epoch's batch losses from the history
        return NeuralNet.get_default_callbacks(self)

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
    return grad_x, grad_w, grad_b, None, None, None


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
        monkeypatch.setattr(fast_step, "FAST_STEP", False)  # the epoch snapshot's copies

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
    # batch losses, rates, flip ratios (per layer where both record them), not durations
    for a, b in zip(fast.net_.history, plain.net_.history, strict=True):
        keys = (a.keys() & b.keys()) - {"dur"}
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
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


@needs_fast_path
def test_listeners_are_what_notify_calls(monkeypatch):
    class Counting(Callback):
        def on_batch_end(self, net, **kwargs):
            pass

    net = training.SBNNet(
        BinaryNetwork, criterion=torch.nn.MSELoss, module__n_features=2,
        module__hidden_layer_sizes=(3,), module__n_outputs=2, callbacks=[("count", Counting())],
    )
    net.initialize()
    ends = fast_step.listeners(net, "on_batch_end")
    assert [type(h.__self__) for h in ends] == [Counting]
    begins = fast_step.listeners(net, "on_batch_begin")
    assert [h.__self__ for h in begins] == [net]  # the net's own hook: a new history row
    assert fast_step.listeners(net, "on_grad_computed") == []
    # the plain path: every hook that notify calls, the empty ones included
    monkeypatch.setattr(fast_step, "FAST_STEP", False)
    everyone = [net, *(cb for _, cb in net.callbacks_)]
    for hook in ("on_batch_begin", "on_batch_end", "on_grad_computed"):
        hooks = fast_step.listeners(net, hook)
        assert [h.__self__ for h in hooks] == everyone
        assert [h.__func__ for h in hooks] == [getattr(type(o), hook) for o in everyone]


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


@needs_fast_path
@pytest.mark.parametrize("batch_size", ["auto", 64])
def test_the_fast_fit_calls_fused_adam_directly(monkeypatch, batch_size):
    """The control of the equality tests: after its first step Adam's kernels are called
    directly, for both parameter groups (the real parameters and the latent weights of the
    +-1 layers); the plain path runs ``optimizer.step()`` every time."""
    direct = []
    step = fast_step._fused_adam_step

    def counted(optimizer):
        direct.append(step(optimizer))
        return direct[-1]

    monkeypatch.setattr(fast_step, "_fused_adam_step", counted)
    clf = _fit(max_iter=2, batch_size=batch_size)
    groups = clf.net_.optimizer_.param_groups
    assert [bool(g.get("binary")) for g in groups] == [False, True]
    n_steps = sum(row["train_batch_count"] for row in clf.history_)
    assert direct == [False] + [True] * (n_steps - 1)
    # each group's step count is the number of steps: every one of them took every step
    for group in groups:
        for p in group["params"]:
            assert clf.net_.optimizer_.state[p]["step"].item() == n_steps


# --- the switch of sklearn_bnn._fast_step -----------------------------------------------

#: How each test turns the fast path off: the environment variable, the module's flag, or
#: a torch release on either side of the verified range (the switch reads
#: ``fast_step.TORCH_VERSION``; the torch that runs is this one).
SWITCHES = {
    "env": lambda mp: mp.setenv(fast_step.ENV_VAR, "0"),
    "flag": lambda mp: mp.setattr(fast_step, "FAST_STEP", False),
    "torch-2.1": lambda mp: mp.setattr(fast_step, "TORCH_VERSION", (2, 1)),
    "torch-next": lambda mp: mp.setattr(
        fast_step, "TORCH_VERSION", fast_step.VERIFIED_TORCH[1]
    ),
}

#: Seeded fits on wine: the defaults (one batch per epoch; two Adam groups, the latent
#: weights of the +-1 layers at binary_learning_rate), several ragged batches, sample
#: weights, and two groups at rates of their own.
CASES = {
    "default": {},
    "batches": {"batch_size": 64},
    "sample-weight": {"batch_size": 64, "sample_weight": np.linspace(0.5, 2.0, len(Y_WINE))},
    "two-groups": {"batch_size": 50, "learning_rate_init": 2e-3, "binary_learning_rate": 0.1},
}


def _spy(monkeypatch, name, calls):
    """Record, for every call of ``torch.<name>``, the module it was called from."""
    real = getattr(torch, name)

    def spy(*args, **kwargs):
        calls.append(sys._getframe(1).f_globals.get("__name__"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, name, spy)


@pytest.mark.parametrize(
    "version, on",
    [((2, 1), False), ((2, 3), False), ((2, 4), True), ((2, 13), True), ((2, 14), True),
     ((2, 15), False), ((3, 0), False), ((0, 0), False)],
)  # fmt: skip
def test_the_switch_reads_the_flag_the_environment_and_the_torch_version(
    monkeypatch, version, on
):
    monkeypatch.setattr(fast_step, "TORCH_VERSION", version)
    assert fast_step.enabled() is on
    for value, allowed in [("1", True), ("0", False), (" OFF ", False), ("yes", True)]:
        monkeypatch.setenv(fast_step.ENV_VAR, value)
        assert fast_step.enabled() is (on and allowed)
    monkeypatch.setattr(fast_step, "FAST_STEP", True)  # the flag overrides the variable
    assert fast_step.enabled() is on  # but never the torch range
    monkeypatch.setattr(fast_step, "FAST_STEP", False)
    monkeypatch.delenv(fast_step.ENV_VAR)
    assert fast_step.enabled() is False


def test_torch_release_parsing():
    assert fast_step._release("2.13.0+cpu") == (2, 13)
    assert fast_step._release("2.4.0a0+git1234") == (2, 4)
    assert fast_step._release("10.2") == (10, 2)
    assert fast_step._release("nightly") == (0, 0)
    assert fast_step.TORCH_VERSION == fast_step._release(torch.__version__)


@needs_fast_path
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("switch", list(SWITCHES))
def test_switched_off_fit_equals_fast_fit(monkeypatch, switch, case):
    """The plain path is the reference: the same seeded fit, bit for bit, through either."""
    params = dict(CASES[case])
    fast = _fit(**params)
    assert len(fast.net_.optimizer_.param_groups) == 2
    with pytest.MonkeyPatch.context() as mp:
        SWITCHES[switch](mp)
        assert not fast_step.enabled()
        plain = _fit(**params)
    _assert_same_fit(fast, plain)
    assert [row.keys() for row in fast.history_] == [row.keys() for row in plain.history_]
    if case == "two-groups":
        rates = [g["lr"] for g in plain.net_.optimizer_.param_groups]
        assert rates == [g["lr"] for g in fast.net_.optimizer_.param_groups]
        assert rates[1] / rates[0] == pytest.approx(50.0)


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_switched_off_fit_calls_no_private_torch_function(monkeypatch, switch):
    """With the switch off, sklearn_bnn never calls torch's private functions (torch's own
    optimiser step still does), zeroes and steps through the optimiser's public methods
    once per batch, and the fast step's direct call never runs."""
    private = ("_fused_adam_", "_foreach_add_", "_foreach_copy_")
    calls = {name: [] for name in private}
    for name in private:
        _spy(monkeypatch, name, calls[name])
    zeroed, stepped = [], []
    zero_grad = torch.optim.Optimizer.zero_grad

    def counted_zero_grad(self, set_to_none=True):
        zeroed.append(set_to_none)
        return zero_grad(self, set_to_none)

    def never(optimizer):
        raise AssertionError("the fast step ran with the switch off")

    monkeypatch.setattr(torch.optim.Optimizer, "zero_grad", counted_zero_grad)
    monkeypatch.setattr(fast_step, "_fused_adam_step", never)
    SWITCHES[switch](monkeypatch)
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: stepped.append(1))
    try:
        clf = _fit(batch_size=64, max_iter=3)
    finally:
        handle.remove()
    n_steps = sum(row["train_batch_count"] for row in clf.history_)
    assert n_steps == 9
    assert zeroed == [True] * n_steps and len(stepped) == n_steps
    for name in private:
        assert not [m for m in calls[name] if m.startswith("sklearn_bnn")], name
    # Adam's own step: one kernel call per parameter group and step
    assert calls["_fused_adam_"] == ["torch.optim.adam"] * (2 * n_steps)


@needs_fast_path
def test_fast_fit_calls_the_private_functions_from_one_module(monkeypatch):
    """The control of the previous test: on the fast path the direct calls happen, all of
    them from sklearn_bnn._fast_step, and the optimiser's public zero_grad is not used."""
    private = ("_fused_adam_", "_foreach_add_", "_foreach_copy_")
    calls = {name: [] for name in private}
    for name in private:
        _spy(monkeypatch, name, calls[name])
    zeroed = []
    monkeypatch.setattr(torch.optim.Optimizer, "zero_grad", lambda *a, **k: zeroed.append(1))
    clf = _fit(batch_size=64, max_iter=3)
    n_steps = sum(row["train_batch_count"] for row in clf.history_)
    ours = {name: [m for m in calls[name] if m.startswith("sklearn_bnn")] for name in private}
    assert set().union(*ours.values()) == {"sklearn_bnn._fast_step"}
    # the first step initialises Adam's state through torch's own step; then two groups
    # per step, directly
    first, rest = ["torch.optim.adam"] * 2, ["sklearn_bnn._fast_step"] * (2 * (n_steps - 1))
    assert calls["_fused_adam_"] == first + rest
    assert len(ours["_foreach_copy_"]) == len(clf.history_) - 1  # snapshots after the first
    assert not zeroed


def test_a_fit_on_an_old_torch_takes_the_plain_path(monkeypatch):
    """pyproject admits torch 2.1: there the switch is off, and Adam is not fused on the CPU
    (fused CPU kernels came with torch 2.4).  Simulated: the switch reads 2.1 and the
    estimator's probe says no fused Adam; fused Adam's kernel must not run at all."""

    def never(*args, **kwargs):
        raise AssertionError("fused Adam ran on a simulated torch 2.1")

    def fit():
        return _fit(batch_size=64, max_iter=3, sample_weight=np.linspace(0.5, 2.0, 178))

    direct = fast_step._fused_adam_step
    monkeypatch.setattr("sklearn_bnn._base.fused_adam", lambda device_type: False)
    monkeypatch.setattr(torch, "_fused_adam_", never)
    monkeypatch.setattr(fast_step, "_fused_adam_step", never)
    monkeypatch.setattr(fast_step, "TORCH_VERSION", (2, 1))
    old = fit()
    assert not old.net_.optimizer_.defaults["fused"]
    assert old.n_iter_ == 3 and np.isfinite(old.loss_curve_).all()
    assert old.score(X_WINE, Y_WINE) > 0.8
    # the same non-fused fit on the fast path: the direct call declines a non-fused Adam,
    # and the undecorated step runs
    monkeypatch.setattr(fast_step, "_fused_adam_step", direct)
    monkeypatch.setattr(fast_step, "TORCH_VERSION", fast_step.VERIFIED_TORCH[0])
    if fast_step.enabled():
        torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # torch wraps Adam.step
        undecorated, calls = torch.optim.Adam.step.__wrapped__, []

        def counted(optimizer):
            calls.append(1)
            return undecorated(optimizer)

        monkeypatch.setattr(torch.optim.Adam.step, "__wrapped__", counted)
        fast = fit()
        _assert_same_fit(fast, old)
        assert len(calls) == sum(row["train_batch_count"] for row in fast.history_)


# ------------------------------------------------------- the +-1 columns' product (int8)
def _pm1(shape, gen):
    return torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)


@pytest.mark.parametrize("n_code", [0, 1, 2, 17, 31, 32, 64, 823])
@pytest.mark.parametrize("rows", [1, 2, 37, 300])
def test_pm1_linear_same_bits_on_both_paths(monkeypatch, threads, n_code, rows):
    """pm1_linear: from INT8_MIN_COLUMNS +-1 columns on, the fast path (torch._int_mm on
    the CPU) gives the plain path's bits, the +-1 columns' product is the exact integer,
    and the whole is F.linear to round-off; with fewer, F.linear itself."""
    start = 5  # real columns, then the code
    with torch.no_grad():
        gen = torch.Generator().manual_seed(rows + n_code)
        x = torch.cat([torch.randn(rows, start, generator=gen) * 3, _pm1((rows, n_code), gen)], 1)
        w = _pm1((11, start + n_code), gen)
        calls = []
        int_mm = torch._int_mm
        monkeypatch.setattr(torch, "_int_mm", lambda *a: calls.append(1) or int_mm(*a))
        monkeypatch.setattr(fast_step, "FAST_STEP", True)
        fast = fast_step.pm1_linear(x, w, start)
        split = n_code >= fast_step.INT8_MIN_COLUMNS and fast_step._HAS_INT8
        assert len(calls) == (split and fast_step.enabled())
        if not split:  # one F.linear over all columns, as without a code
            assert torch.equal(fast, torch.nn.functional.linear(x, w))
        monkeypatch.setattr(fast_step, "FAST_STEP", False)
        plain = fast_step.pm1_linear(x, w, start)
        assert len(calls) <= 1  # the plain path never calls it
        assert torch.equal(fast, plain)
        exact = x[:, start:].double() @ w[:, start:].double().t()
        for flag in (True, False):
            monkeypatch.setattr(fast_step, "FAST_STEP", flag)
            code = fast_step.pm1_linear(x[:, start:], w[:, start:], 0)
            assert torch.equal(code.double(), exact)
        reference = x.double() @ w.double().t()
        torch.testing.assert_close(fast.double(), reference, rtol=1e-6, atol=1e-5)
        assert torch.equal(fast_step.pm1_linear(x, w, None), torch.nn.functional.linear(x, w))


@pytest.mark.skipif(not fast_step._HAS_INT8, reason="torch without oneDNN")
def test_default_fit_multiplies_the_code_and_the_sign_units_in_int8(monkeypatch):
    """Every training step of a default-style fit takes the int8 product in each +-1
    layer: the first (the code's bits after the raw features) and the next (sign units)."""
    X = np.random.default_rng(0).standard_normal((300, 6))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    calls = []
    int_mm = torch._int_mm
    monkeypatch.setattr(torch, "_int_mm", lambda a, b: calls.append(a.shape[1]) or int_mm(a, b))
    monkeypatch.setattr(fast_step, "FAST_STEP", True)
    clf = BinaryNetClassifier((40, 40), max_iter=2, batch_size=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    n_bits = clf.encoder_.n_features_out_ - clf.encoder_.first_bit_
    assert n_bits >= fast_step.INT8_MIN_COLUMNS
    assert calls == [n_bits, 40] * 6  # 2 epochs of 3 steps, two layers each


def test_code_start_follows_the_fitted_code():
    """The estimators tell the network where the +-1 bits of their code start: after the
    raw features, at 0 without them, nowhere without a code or in the residual family."""
    X = np.random.default_rng(0).standard_normal((60, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    expected = {"raw+thermometer": 4, "thermometer": 0, "raw": None}
    for encoding, start in expected.items():
        clf = BinaryNetClassifier((8,), encoding=encoding, max_iter=1, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = clf.fit(X, y).net_.module_
        assert module.code_start == start, encoding
        if start is not None:
            assert module.layers[0].in_features == clf.encoder_.n_features_out_ > start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        residual = BinaryNetClassifier((8, 8), architecture="residual", max_iter=1).fit(X, y)
    assert not hasattr(residual.net_.module_, "code_start")
    with pytest.raises(ValueError, match="code_start=5 must lie in"):
        BinaryNetwork(4, (8,), 2, code_start=5)

"""The +-1 weights learn: their optimiser group, flips at the defaults, and the frozen control.

References: a numpy implementation of Adam (Kingma & Ba, Algorithm 1, as torch states it) for
the update rule of each parameter group; a model with frozen signs
(``binary_learning_rate=0``) for the credit of the flips.
"""

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor
from sklearn_bnn._training import _optimizer_step, _zero_grad

pytestmark = pytest.mark.usefixtures("one_thread_module")


def _checkerboard(n=1200, seed=0):
    """A 2-D checkerboard of 3 x 3 cells: a linear model scores about one half on it."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, size=(n, 2))
    cells = np.floor((X + 1.5) / 1.0).astype(int)
    y = (cells.sum(axis=1) % 2).astype(int)
    return X, y


def _adam_reference(p, grads, lr, betas=(0.9, 0.999), eps=1e-8):
    """Parameter after Adam steps with the gradients ``grads`` (float64, torch's rule)."""
    m, v, p = np.zeros_like(p), np.zeros_like(p), p.astype(np.float64).copy()
    for t, g in enumerate(grads, start=1):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("architecture", ["plain", "residual"])
def test_binary_group_follows_adam_at_its_own_rate(architecture):
    X, y = _checkerboard(200)
    clf = BinaryNetClassifier(
        (16, 16), architecture=architecture, max_iter=1, learning_rate="constant",
        learning_rate_init=1e-3, binary_learning_rate=0.05, random_state=0,
    ).fit(X, y)  # fmt: skip
    module, optimizer = clf.net_.module_, clf.net_.optimizer_
    latents = module.binary_weights()
    groups = optimizer.param_groups
    binary = [g for g in groups if g.get("binary")]
    assert len(binary) == 1 and binary[0]["lr"] == 0.05
    assert {id(p) for p in binary[0]["params"]} == {id(p) for p in latents}
    real = [p for g in groups if not g.get("binary") for p in g["params"]]
    assert {id(p) for p in real}.isdisjoint(id(p) for p in latents)
    assert all(g["lr"] == 1e-3 for g in groups if not g.get("binary"))
    # fresh state, three steps of known gradients: the direct fused call (from the second
    # step) and torch's own step must both follow the reference rule of each group
    optimizer.state.clear()
    rng = np.random.default_rng(1)
    params = [p for g in groups for p in g["params"]]
    start = [p.detach().double().numpy().copy() for p in params]
    grads = [[rng.normal(size=p.shape) for _ in range(3)] for p in params]
    for step in range(3):
        _zero_grad(optimizer)
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g[step], dtype=p.dtype)
        _optimizer_step(optimizer)
    rates = {id(p): g["lr"] for g in groups for p in g["params"]}
    for p, p0, g in zip(params, start, grads):
        expected = _adam_reference(p0, g, rates[id(p)])
        np.testing.assert_allclose(p.detach().double().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "architecture, linear, rate",
    [("plain", True, 1e-3), ("plain", False, 3e-3), ("residual", True, 1e-2),
     ("residual", False, 1e-2)],
)  # fmt: skip
@pytest.mark.parametrize("Estimator", [BinaryNetClassifier, BinaryNetRegressor])
def test_auto_rate_of_the_real_parameters(Estimator, architecture, linear, rate):
    """``learning_rate_init="auto"``: a plain network over the linear term learns what it
    leaves at the smaller rate; alone, and in the residual family, the architecture's."""
    X, y = _checkerboard(64)
    est = Estimator(
        (8, 8), architecture=architecture, linear=linear, max_iter=1,
        learning_rate="constant", random_state=0,
    ).fit(X, y)  # fmt: skip
    assert est.history_[0]["lr"] == rate
    assert all(g["lr"] == rate for g in est.net_.optimizer_.param_groups if not g.get("binary"))
    assert est.history_[0]["binary_lr"] == est.binary_learning_rate


def test_auto_rate_without_a_fitted_linear_term():
    """A first ``partial_fit`` batch of one class fits no linear term (all zero): the
    network learns alone, at the network alone's rate."""
    X, y = _checkerboard(64)
    clf = BinaryNetClassifier((8, 8), random_state=0)
    clf.partial_fit(X[y == 0], y[y == 0], classes=[0, 1])
    assert not np.any(clf.linear_coef_)
    assert clf.history_[0]["lr"] == 3e-3


def test_schedule_anneals_both_rates():
    X, y = _checkerboard(300)
    clf = BinaryNetClassifier(
        (8, 8), max_iter=4, learning_rate_init=2e-3, binary_learning_rate=0.02, random_state=0
    ).fit(X, y)
    lr = np.array([row["lr"] for row in clf.history_])
    blr = np.array([row["binary_lr"] for row in clf.history_])
    np.testing.assert_allclose(blr / lr, 10.0)
    assert blr[0] == 0.02 and np.all(np.diff(blr) < 0)


def test_signs_flip_at_defaults_and_beat_frozen_signs():
    """At the defaults the +-1 weights change sign, and that is what the accuracy rests on:
    the same model with its signs frozen at initialisation is far below it."""
    X, y = _checkerboard()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    learned = BinaryNetClassifier(random_state=0).fit(Xtr, ytr)
    frozen = BinaryNetClassifier(binary_learning_rate=0.0, random_state=0).fit(Xtr, ytr)
    assert learned.flip_ratio_.sum() >= 0.05
    assert learned.layer_flip_ratio_.shape == (learned.n_iter_, len(learned.hidden_layer_sizes))
    assert np.all(learned.layer_flip_ratio_.sum(axis=0) > 0.01)  # every +-1 layer
    assert learned.score(Xte, yte) >= frozen.score(Xte, yte) + 0.05


@pytest.mark.parametrize("Estimator", [BinaryNetClassifier, BinaryNetRegressor])
def test_frozen_control_leaves_every_sign_and_latent_unchanged(Estimator):
    X, y = _checkerboard(400)
    est = Estimator(binary_learning_rate=0.0, max_iter=3, random_state=0).fit(X, y)
    assert est.net_.module_.binary_weights()
    assert np.all(est.flip_ratio_ == 0.0)
    # the default init draws every mean as +-sqrt(sigma_m2): untouched, they still are
    s = np.sqrt(est.init_["sigma_m2"][-1])
    for w in est.net_.module_.binary_weights():
        np.testing.assert_array_equal(np.abs(w.detach().numpy()), np.float32(s))


def test_alpha_penalises_the_real_weights_only():
    """The L2 penalty covers the head and a real first layer, never the +-1 latent means."""
    X, y = _checkerboard(200)
    clf = BinaryNetClassifier((8, 8), first_layer="real", alpha=1.0, max_iter=1, random_state=0)
    clf.fit(X, y)
    module = clf.net_.module_
    real = module.head.weight.pow(2).sum() + module.layers[0].weight.pow(2).sum()
    torch.testing.assert_close(clf.net_._penalty(1.0), 0.5 * real)


@pytest.mark.parametrize("threads", [1, 2])
def test_flips_beat_frozen_signs_on_either_thread_count(threads):
    X, y = _checkerboard()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        learned = BinaryNetClassifier(random_state=0).fit(Xtr, ytr)
        frozen = BinaryNetClassifier(binary_learning_rate=0.0, random_state=0).fit(Xtr, ytr)
    finally:
        torch.set_num_threads(before)
    assert learned.score(Xte, yte) >= frozen.score(Xte, yte) + 0.05

"""Gradient estimators against exact enumeration, independent formulas and each other."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sklearn_bnn.nn import TRAINING, BinaryNetwork, training_forward
from sklearn_bnn.nn.estimators import (
    ESTIMATORS,
    PathSampleAnalytic,
    StraightThrough,
    straight_through_sign,
)
from sklearn_bnn.nn.exact import exact_gradient, expected_loss, logistic_loss, make_toy
from sklearn_bnn.nn.noise import GaussianNoise, LogisticNoise, UniformNoise

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(sizes, noise, seed=0, n_in=2, low=0.9):
    torch.manual_seed(seed)
    net = BinaryNetwork(n_in, sizes, 1, noise=noise).double()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.uniform_(-low, low)
            layer.bias.normal_(0.0, 0.5)
    return net


def _estimates(net, estimator, x, y, names, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = dict(net.named_parameters())
    out = []
    for _ in range(n):
        net.zero_grad()
        surrogate, _ = estimator(net, x, y, logistic_loss, g)
        surrogate.backward()
        out.append(torch.cat([params[k].grad.reshape(-1) for k in names]))
    return torch.stack(out)


def _exact(net, x, y, names):
    grads = exact_gradient(net, x, y, logistic_loss)
    return torch.cat([grads[k].reshape(-1) for k in names])


def _z_scores(samples, exact):
    se = samples.std(0) / samples.shape[0] ** 0.5
    return (samples.mean(0) - exact) / se.clamp_min(1e-12)


X_SMALL, Y_SMALL = make_toy(40, torch.Generator().manual_seed(1))


# ------------------------------------------------------------------ ST proxies
NUMPY_BACKWARD = {
    "hardtanh": lambda a, s: (np.abs(a) <= s) / s,
    "tanh": lambda a, s: (2 / s) * (1 / (1 + np.exp(-a / s))) * (1 - 1 / (1 + np.exp(-a / s))),
    "erf": lambda a, s: (2 / s) * np.exp(-0.5 * (a / s) ** 2) / np.sqrt(2 * np.pi),
    "approxsign": lambda a, s: np.where(np.abs(a) <= s, (2 - 2 * np.abs(a / s)) / s, 0.0),
}


@pytest.mark.parametrize("proxy", sorted(NUMPY_BACKWARD))
def test_st_proxy_backward_matches_numpy_formula(proxy):
    a_np = np.linspace(-3.1, 3.1, 41)
    a = torch.tensor(a_np, requires_grad=True)
    out = straight_through_sign(a, LogisticNoise(0.7), proxy)
    out.sum().backward()
    assert set(out.detach().unique().tolist()) <= {-1.0, 1.0}
    np.testing.assert_allclose(a.grad.numpy(), NUMPY_BACKWARD[proxy](a_np, 0.7), atol=1e-12)


@pytest.mark.parametrize(
    "noise, formula",
    [
        (UniformNoise(1.5), NUMPY_BACKWARD["hardtanh"]),
        (LogisticNoise(0.5), NUMPY_BACKWARD["tanh"]),
        (GaussianNoise(2.0), NUMPY_BACKWARD["erf"]),
    ],
)
def test_matched_st_backward_is_twice_the_noise_density(noise, formula):
    a_np = np.linspace(-3.3, 3.3, 37)
    a = torch.tensor(a_np, requires_grad=True)
    straight_through_sign(a, noise).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), formula(a_np, noise.scale), atol=1e-12)
    # and the forward samples have mean 2F(a) - 1
    many = torch.stack([straight_through_sign(a.detach(), noise) for _ in range(4000)]).mean(0)
    assert np.abs(many.numpy() - noise.phi(a.detach()).numpy()).max() < 0.08


def test_matched_st_refuses_the_sign_neuron():
    net = _net((3,), "sign")
    with pytest.raises(ValueError, match="Dirac"):
        StraightThrough()(net, X_SMALL, Y_SMALL, logistic_loss)
    with pytest.raises(ValueError, match="straight-through"):
        training_forward("sampled", "auto", noise=net.noise)


def test_wrong_st_proxy_is_more_biased_than_the_matched_one():
    net = _net((4,), LogisticNoise())
    names = ["layers.0.weight", "layers.0.bias"]
    exact = _exact(net, X_SMALL, Y_SMALL, names)
    bias = {}
    for proxy in ("matched", "approxsign"):
        g = _estimates(net, StraightThrough(proxy), X_SMALL, Y_SMALL, names, 1500)
        se = (g.var(0).sum() / len(g)).sqrt()
        bias[proxy] = ((g.mean(0) - exact).norm() / exact.norm()).item(), (se / exact.norm()).item()
    (b_ok, se_ok), (b_bad, se_bad) = bias["matched"], bias["approxsign"]
    assert b_bad > 2 * b_ok and b_bad - b_ok > 5 * (se_ok + se_bad), bias


# ---------------------------------------------------------------- unbiasedness
@pytest.mark.parametrize("name", ["psa", "reinforce", "arm"])
def test_one_stochastic_layer_estimators_are_unbiased(name):
    net = _net((4,), LogisticNoise())
    names = [k for k, _ in net.named_parameters()]
    exact = _exact(net, X_SMALL, Y_SMALL, names)
    z = _z_scores(_estimates(net, ESTIMATORS[name], X_SMALL, Y_SMALL, names, 2500), exact)
    assert z.pow(2).mean().sqrt() < 1.5 and z.abs().max() < 4.5, z


@pytest.mark.parametrize("name", ["reinforce", "arm"])
def test_unbiased_references_stay_unbiased_in_depth(name):
    net = _net((3, 3), GaussianNoise(), seed=1)
    names = [k for k, _ in net.named_parameters()]
    exact = _exact(net, X_SMALL, Y_SMALL, names)
    z = _z_scores(_estimates(net, ESTIMATORS[name], X_SMALL, Y_SMALL, names, 2500), exact)
    assert z.pow(2).mean().sqrt() < 1.5 and z.abs().max() < 4.5, z


def test_the_unbiasedness_check_detects_a_biased_estimator():
    net = _net((4,), LogisticNoise())
    names = [k for k, _ in net.named_parameters()]
    exact = _exact(net, X_SMALL, Y_SMALL, names)
    z = _z_scores(_estimates(net, ESTIMATORS["st"], X_SMALL, Y_SMALL, names, 2500), exact)
    assert z.pow(2).mean().sqrt() > 3


# --------------------------------------------------------- PSA implementation
def test_psa_binary_layer_matches_the_per_connection_formula():
    torch.manual_seed(0)
    b, n_in, n_out, scale, s = 7, 5, 6, 0.4, 0.8
    a = torch.randn(b, n_out, dtype=torch.float64)
    xo = torch.randn(b, n_out).sign().double()
    xin = torch.randn(b, n_in).sign().double()
    w = torch.randn(n_out, n_in).sign().double()
    g = torch.randn(b, n_out, dtype=torch.float64)
    grad_m, g_below = PathSampleAnalytic._binary_layer(a, xo, xin, w, g, scale, s)
    # naive: delta[b, j, i] = sigm((a - 2 scale W x)/s) - sigm(a/s)
    delta = torch.sigmoid((a[:, :, None] - 2 * scale * w[None] * xin[:, None, :]) / s)
    delta = delta - torch.sigmoid(a / s)[:, :, None]
    c = xo * g
    assert torch.allclose(grad_m, 0.5 * w * (c[:, :, None] * delta).sum(0))
    assert torch.allclose(g_below, -(c[:, :, None] * delta).sum(1))
    xreal = torch.randn(b, n_in, dtype=torch.float64)
    first = PathSampleAnalytic._first_layer_means(a, xreal, w, c, scale, s)
    delta = torch.sigmoid((a[:, :, None] - 2 * scale * w[None] * xreal[:, None, :]) / s)
    delta = delta - torch.sigmoid(a / s)[:, :, None]
    assert torch.allclose(first, 0.5 * w * (c[:, :, None] * delta).sum(0))


def _psa_reference(net, x, y, sample_loss, generator):
    """PSA as first written (before the speed-up): the slow per-connection formulation.

    The head's flipped logits form the full ``(B, N_L, C)`` tensor and the first layer's
    per-connection term the full ``(B, N_out, N_in)`` tensor, with nothing chunked.
    """
    s = net.noise.scale
    path = _draw_path(net, x, generator)
    n, xl = x.shape[0], path.outputs[-1]
    logits = net.head(xl)
    flipped = logits[:, None, :] - 2.0 * xl[:, :, None] * net.head.weight.T[None]
    f, f_flip = sample_loss(logits, y), sample_loss(flipped, y)
    with torch.no_grad():
        pi = (1.0 - torch.sigmoid(xl * path.fields[-1] / s)) / xl.shape[1]
        g = (f_flip - f[:, None]).detach() / n
    head = (f * (1.0 - pi.sum(1)) + (pi * f_flip).sum(1)).mean()
    grad_a, grad_m = [None] * len(net.layers), [None] * len(net.layers)
    with torch.no_grad():
        for k in range(len(net.layers) - 1, -1, -1):
            layer = net.layers[k]
            a, xo = path.fields[k].detach(), path.outputs[k]
            xin, w = path.inputs[k], path.weights[k]
            sig = torch.sigmoid(a / s)
            grad_a[k] = -xo * sig * (1.0 - sig) / s * g
            c = xo * g
            delta = torch.sigmoid((a[:, :, None] - 2 * layer.scale * w[None] * xin[:, None, :]) / s)
            delta = delta - sig[:, :, None]  # (B, N_out, N_in)
            grad_m[k] = 0.5 * w * (c[:, :, None] * delta).sum(0)
            g = -(c[:, :, None] * delta).sum(1)
    terms = head
    for layer, a, ga, gm in zip(net.layers, path.fields, grad_a, grad_m):
        terms = terms + (ga * a).sum() + (gm * layer.weight).sum()
    surrogate = f.detach().mean() + (terms - terms.detach())
    return surrogate, logits


class _Path:
    def __init__(self):
        self.inputs, self.weights, self.fields, self.outputs = [], [], [], []


def _draw_path(net, x, generator):
    """One SBN sample drawn here, not by the sampler under test: per layer the weight
    uniforms (S = +1 iff u < (1 + M)/2), then logistic unit noise (x = sign(a - Z));
    fields keep their graph to the biases only."""
    path = _Path()
    for layer in net.layers:
        m = layer.weight.detach()
        u = torch.rand(m.shape, generator=generator, dtype=m.dtype)
        w = torch.where(u < (1.0 + m) / 2.0, 1.0, -1.0).to(m.dtype)
        a = x @ w.T / layer.in_features**0.5 + layer.bias
        v = torch.rand(a.shape, generator=generator, dtype=a.dtype)
        z = net.noise.scale * (torch.log(v) - torch.log1p(-v))
        out = torch.where(a.detach() - z >= 0, 1.0, -1.0).to(a.dtype)
        stores = (path.inputs, path.weights, path.fields, path.outputs)
        for store, item in zip(stores, (x, w, a, out), strict=True):
            store.append(item)
        x = out
    return path


def _psa_gradients(objective, net, x, y, loss, seed):
    net.zero_grad()
    surrogate, logits = objective(net, x, y, loss, torch.Generator().manual_seed(seed))
    surrogate.backward()
    grads = {k: p.grad.clone() for k, p in net.named_parameters()}
    return surrogate.detach(), logits.detach(), grads


@pytest.mark.parametrize("chunk", [2**20, 150, 40, 7])  # 1 chunk; 2 inputs; 1 input, 6 rows; 1 row
@pytest.mark.parametrize("head_scale", [1.0, 1000.0])  # 1000: the flips take the general path
def test_psa_matches_the_reference_formulation(monkeypatch, chunk, head_scale):
    """Same path, same value and gradients as the slow formulation (float64, cross-entropy)."""
    from sklearn_bnn.nn import estimators
    from sklearn_bnn.nn.exact import cross_entropy_loss

    monkeypatch.setitem(estimators.PSA_CHUNK, "cpu", chunk)
    torch.manual_seed(3)
    net = BinaryNetwork(5, (6, 7), 4, noise=LogisticNoise(0.7)).double()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.uniform_(-0.9, 0.9)
            layer.bias.normal_(0.0, 0.5)
        net.head.weight.mul_(head_scale)
    x = torch.randn(11, 5, dtype=torch.float64)
    y = torch.randint(0, 4, (11,))
    w = net.head.weight.detach()
    bound = -0.5 * np.log(torch.finfo(torch.float64).tiny)  # _flipped_losses' underflow bound
    assert bool(2 * (w.amax(0) - w.amin(0)).max() < bound) == (head_scale == 1.0)
    for loss in (cross_entropy_loss, lambda z, t: 2.0 * cross_entropy_loss(z, t)):  # fast, general
        for seed in range(3):
            v0, z0, g0 = _psa_gradients(_psa_reference, net, x, y, loss, seed)
            v1, z1, g1 = _psa_gradients(ESTIMATORS["psa"], net, x, y, loss, seed)
            torch.testing.assert_close(v1, v0, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(z1, z0, rtol=0, atol=0)
            for k in g0:
                torch.testing.assert_close(g1[k], g0[k], rtol=1e-10, atol=1e-12, msg=k)


def test_psa_flipped_cross_entropy_by_matrix_products_is_exact_in_float32():
    """The factorised log-sum-exp of the flipped logits against the direct one, float32."""
    from sklearn_bnn.nn.exact import cross_entropy_loss

    torch.manual_seed(0)
    for head_scale in (0.1, 1.0, 5.0, 30.0):  # 30: beyond the no-underflow bound, general path
        xl = torch.randn(64, 33).sign()
        w = (head_scale * torch.randn(10, 33)).requires_grad_()
        b = torch.randn(10, requires_grad=True)
        y = torch.randint(0, 10, (64,))
        logits = xl @ w.T + b
        fast = PathSampleAnalytic._flipped_losses(logits, xl, w, y, cross_entropy_loss)
        flipped = logits[:, None, :] - 2.0 * xl[:, :, None] * w.T[None]
        direct = cross_entropy_loss(flipped, y)
        assert torch.isfinite(fast).all()
        torch.testing.assert_close(fast, direct, rtol=1e-5, atol=1e-5 * (1 + head_scale))
        weights = torch.rand(64, 33)
        g_fast = torch.autograd.grad((weights * fast).sum(), (w, b), retain_graph=True)
        g_direct = torch.autograd.grad((weights * direct).sum(), (w, b))
        for u, v in zip(g_fast, g_direct):
            torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-4)


def test_psa_requires_logistic_noise():
    net = _net((3,), GaussianNoise())
    with pytest.raises(ValueError, match="logistic"):
        ESTIMATORS["psa"](net, X_SMALL, Y_SMALL, logistic_loss)
    with pytest.raises(ValueError, match="noise='logistic'"):
        training_forward("sampled", "psa", noise=GaussianNoise())


# ------------------------------------------------------ the [SYF20] 5-5-5 toy
def test_one_sample_cosine_similarity_orders_psa_st_reinforce():
    """First layer, 1 sample, after a short exact-gradient training (as published)."""
    x, y = make_toy(200, torch.Generator().manual_seed(0))
    net = _net((5, 5, 5), LogisticNoise(0.25), seed=0, low=1.0)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        expected_loss(net, x, y, logistic_loss).backward()
        opt.step()
        with torch.no_grad():  # stay inside (-1, 1): the score function needs full support
            for layer in net.layers:
                layer.weight.clamp_(-0.98, 0.98)
    names = ["layers.0.weight", "layers.0.bias"]
    exact = _exact(net, x, y, names)
    cos = {}
    for name in ("psa", "st", "reinforce"):
        c = F.cosine_similarity(_estimates(net, ESTIMATORS[name], x, y, names, 1500), exact[None])
        cos[name] = c.mean().item(), c.std().item() / len(c) ** 0.5
    for hi, lo in (("psa", "st"), ("st", "reinforce")):
        gap = cos[hi][0] - cos[lo][0]
        assert gap > 3 * (cos[hi][1] ** 2 + cos[lo][1] ** 2) ** 0.5, cos


# ------------------------------------------------------------- combinations
def test_invalid_combinations_name_the_valid_ones():
    with pytest.raises(ValueError, match="Valid combinations: deterministic: auto; lrt: auto, st"):
        training_forward("deterministic", "psa")
    with pytest.raises(ValueError, match="does not apply"):
        training_forward("lrt", "reinforce")
    with pytest.raises(ValueError, match="Did you mean 'psa'"):
        training_forward("sampled", "pas")


@pytest.mark.parametrize(
    "surrogate, estimator, mode",
    [
        ("deterministic", "auto", "deterministic"),
        ("lrt", "auto", "lrt"),
        ("lrt", "st", "lrt+st"),
        ("sampled", "auto", "sampled+st"),
        ("sampled", "psa", "sampled+psa"),
        ("sampled", "arm", "sampled+arm"),
    ],
)
def test_training_modes_resolve_to_objectives(surrogate, estimator, mode):
    assert training_forward(surrogate, estimator, noise=LogisticNoise()) == mode
    net = _net((3,), LogisticNoise())
    surrogate_value, logits = TRAINING[mode](net, X_SMALL, Y_SMALL, logistic_loss)
    surrogate_value.backward()
    assert logits.shape == (40, 1)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("estimator", ["st", "psa", "reinforce", "arm"])
def test_classifier_trains_with_each_estimator(estimator):
    from sklearn.datasets import make_blobs

    from sklearn_bnn import BinaryNetClassifier

    X, y = make_blobs(200, centers=3, n_features=4, cluster_std=0.8, random_state=0)
    clf = BinaryNetClassifier(
        (32,), surrogate="sampled", gradient_estimator=estimator, noise="logistic",
        max_iter=15, learning_rate_init=2e-2, learning_rate="constant", random_state=0,
        # the network trained by each estimator is the subject (no linear term), at the
        # batch size the bars were measured with
        linear=False, batch_size=64,
    )
    with pytest.warns(Warning):  # max_iter reached (ConvergenceWarning)
        clf.fit(X, y, sample_weight=np.ones(len(y)))
    assert np.isfinite(clf.loss_curve_).all()
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X, y) > 0.8


def test_binary_surrogate_forward_is_the_one_bit_network_and_backward_is_st():
    from sklearn_bnn.nn.estimators import TRAINING
    from sklearn_bnn.nn.noise import GaussianNoise

    torch.manual_seed(0)
    net = _net((6, 5), GaussianNoise())
    x = torch.randn(30, 2, dtype=torch.float64)
    y = torch.randint(0, 2, (30,)).double() * 2 - 1
    value, logits = TRAINING["binary+st"](net, x, y, logistic_loss)
    # forward: exactly the deterministic 1-bit network
    torch.testing.assert_close(logits, net(x, "binary"), rtol=0, atol=0)
    value.backward()
    # backward of the last binary layer's bias: through the proxy phi' of the noise,
    # computed by hand for a one-layer network
    net1 = _net((4,), GaussianNoise())
    x1 = torch.randn(30, 2, dtype=torch.float64)
    value, _ = TRAINING["binary+st"](net1, x1, y, logistic_loss)
    value.backward()
    layer = net1.layers[0]
    with torch.no_grad():
        signs, offset = layer.binary_parameters()
        a = layer.binary_field(x1 @ torch.where(signs, 1.0, -1.0).double().T, offset)
        units = torch.where(a >= 0, 1.0, -1.0).double()
        logits = net1.head(units).squeeze(-1)
        dlogit = -y * torch.sigmoid(-y * logits) / len(y)  # d mean softplus(-y z) / dz
        dunits = dlogit[:, None] * net1.head.weight[0]
        alpha = layer.weight.abs().mean(dim=1)
        expected = (dunits * net1.noise.dphi(a)).sum(0) / alpha
    torch.testing.assert_close(layer.bias.grad, expected)

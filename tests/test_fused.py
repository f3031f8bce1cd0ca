"""Hand-written forward/backward units (FieldMoments, ErfMean) against autograd of the formulas."""

import math

import pytest
import torch
from torch.nn import functional as F

from sklearn_bnn.nn import BinaryNetwork, get_noise
from sklearn_bnn.nn.layers import FieldMoments, StochasticBinaryLinear
from sklearn_bnn.nn.surrogates import VARIANCE_EPS, ErfMean, deterministic


def reference_moments(layer, mean, sq_mean):
    """The S1 moments written op by op (what autograd differentiated before the fusion)."""
    m = layer.weight
    hbar = F.linear(mean, m) * layer.scale + layer.bias
    second = F.linear(mean * mean, m * m) * (layer.scale**2)
    total = 1.0 if sq_mean is None else sq_mean.sum(dim=-1, keepdim=True) * (layer.scale**2)
    return hbar, (total - second).clamp_min(0.0)


def reference_deterministic(net, x):
    mean, sq_mean = x, x * x
    for layer in net.layers:
        hbar, var = reference_moments(layer, mean, sq_mean)
        mean, sq_mean = net.noise.gaussian_mean(hbar, var + VARIANCE_EPS), None
    return net.head(mean)


def _net(noise, dtype):
    torch.manual_seed(0)
    net = BinaryNetwork(12, (40, 24, 16), 5, noise=noise).to(dtype)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.uniform_(-1.0, 1.0)
            layer.bias.normal_(0.0, 0.3)
        net.layers[0].weight[:4] = 1.0  # first-layer variance exactly 0 or round-off negative
        net.layers[1].weight[:4] = -1.0
    return net


@pytest.mark.parametrize("noise", ["sign", "gaussian", "logistic", "uniform"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_deterministic_surrogate_matches_reference_formulas(noise, dtype, tol):
    net = _net(noise, dtype)
    x = torch.randn(30, 12, dtype=dtype)
    y = torch.randint(0, 5, (30,))
    got = []
    for forward in (reference_deterministic, lambda n, v: n(v)):
        net.zero_grad()
        logits = forward(net, x)
        F.cross_entropy(logits, y).backward()
        got.append([logits.detach()] + [p.grad.clone() for p in net.parameters()])
    assert torch.equal(got[0][0], got[1][0]), "forward values are bit for bit the reference's"
    for ref, new in zip(*got):
        scale = ref.abs().max().clamp_min(1e-30)
        assert ((ref - new).abs().max() / scale).item() < tol


def test_field_moments_gradcheck_with_leading_dims_and_all_inputs():
    torch.manual_seed(1)
    layer = StochasticBinaryLinear(6, 4).double()
    with torch.no_grad():
        layer.weight.uniform_(-0.9, 0.9)
        layer.bias.normal_()
    mean = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    sq = (mean.detach() ** 2 + 0.5).requires_grad_(True)
    w = layer.weight.detach().clone().requires_grad_(True)
    b = layer.bias.detach().clone().requires_grad_(True)

    def fn(mean, sq, w, b):
        hbar, var = FieldMoments.apply(mean, sq, w, b, layer.scale)
        return hbar.sin(), var.cos()

    assert torch.autograd.gradcheck(fn, (mean, sq, w, b))
    def fn_binary(m, w, b):
        return FieldMoments.apply(m, None, w, b, layer.scale)

    assert torch.autograd.gradcheck(fn_binary, (mean, w, b))


def test_field_moments_clamp_passes_gradient_as_clamp_min_does():
    # M = +-1 with a real input: the variance is 0 up to round-off, where the clamp decides
    layer = StochasticBinaryLinear(3, 2).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0, 1.0], [0.5, 1.0, -1.0]]))
    x = torch.tensor([[1.0, 2.0, 0.3], [0.7, -1.1, 2.0]], dtype=torch.float64)
    grads = []
    for fn in (layer.moments, lambda m, s: reference_moments(layer, m, s)):
        layer.zero_grad()
        _, var = fn(x, x * x)
        (var * torch.tensor([1.0, 3.0], dtype=torch.float64)).sum().backward()
        grads.append((var.detach(), layer.weight.grad.clone()))
    assert torch.equal(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-12, atol=1e-15)


def test_erf_mean_is_noise_gaussian_mean_with_its_gradient():
    h = torch.randn(20, 7, dtype=torch.float64, requires_grad=True)
    v = torch.rand(20, 7, dtype=torch.float64).requires_grad_(True)
    for name in ("sign", "gaussian", "logistic"):
        noise = get_noise(name)
        c = noise.erf_variance
        reference = noise.gaussian_mean(h, v + VARIANCE_EPS)
        torch.testing.assert_close(ErfMean.apply(h, v, c), reference, rtol=0, atol=1e-15)
        assert torch.autograd.gradcheck(lambda h, v, c=c: ErfMean.apply(h, v, c), (h, v))
    assert get_noise("uniform").erf_variance is None


def test_erf_variance_is_the_probit_constant():
    assert get_noise("gaussian").erf_variance == 1.0
    assert get_noise("sign").erf_variance == 0.0
    assert get_noise("logistic").erf_variance == pytest.approx(8.0 / math.pi)


def test_deterministic_forward_accepts_leading_dimensions():
    net = _net("gaussian", torch.float64)
    x = torch.randn(2, 5, 12, dtype=torch.float64)
    flat = deterministic(net, x.reshape(10, 12)).reshape(2, 5, 16)
    torch.testing.assert_close(deterministic(net, x), flat)


def test_pm1_and_sign_are_exactly_where():
    from sklearn_bnn.nn.noise import _pm1, _sign

    condition = torch.rand(1000, generator=torch.Generator().manual_seed(0)) < 0.5
    for dtype in (torch.float32, torch.float64):
        assert torch.equal(_pm1(condition, dtype), torch.where(condition, 1.0, -1.0).to(dtype))
    x = torch.tensor([-0.0, 0.0, -1e-30, 3.0, -2.0])
    assert _sign(x).tolist() == [1.0, 1.0, -1.0, 1.0, -1.0]

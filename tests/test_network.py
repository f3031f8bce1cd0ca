"""The binary layer and the S1 surrogate against Monte Carlo and finite differences."""

import math

import pytest
import torch

from sklearn_bnn.init import initialize_network
from sklearn_bnn.nn import BinaryNetwork, GaussianNoise, StochasticBinaryLinear
from sklearn_bnn.nn.surrogates import FORWARDS, deterministic


def _layer(n_in, n_out, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    layer = StochasticBinaryLinear(n_in, n_out).to(dtype)
    with torch.no_grad():
        layer.weight.uniform_(-0.9, 0.9)
        layer.bias.normal_(0, 0.3)
    return layer


def test_moments_match_monte_carlo_for_real_and_binary_inputs():
    layer = _layer(50, 4)
    g = torch.Generator().manual_seed(1)
    x_real = torch.randn(1, 50, dtype=torch.float64)
    xbar = torch.empty(1, 50, dtype=torch.float64).uniform_(-0.8, 0.8)
    for mean, sq_mean, draw in [
        (x_real, x_real**2, lambda n: x_real.expand(n, 50)),
        (
            xbar,
            None,
            lambda n: torch.where(
                torch.rand(n, 50, generator=g, dtype=torch.float64) < (1 + xbar) / 2, 1.0, -1.0
            ).double(),
        ),
    ]:
        hbar, var = layer.moments(mean, sq_mean)
        # one weight draw per call: 20000 independent (weights, input) draws
        fields = torch.cat([layer.sample_forward(draw(1), g) for _ in range(20_000)])
        torch.testing.assert_close(fields.mean(0, keepdim=True), hbar, atol=0.03, rtol=0)
        torch.testing.assert_close(fields.var(0, keepdim=True), var, atol=0.0, rtol=0.05)


def test_binary_forward_is_sign_network_with_folded_thresholds():
    layer = _layer(6, 3)
    x = torch.randn(8, 6, dtype=torch.float64)
    m = layer.weight.detach()
    alpha = m.abs().mean(1)
    ref = (
        x @ torch.where(m >= 0, 1.0, -1.0).double().T / math.sqrt(6) + layer.bias / alpha
    ).detach()
    torch.testing.assert_close(layer.binary_forward(x), ref)
    # the same sign as the surrogate's mean field with M replaced by alpha * sign(M)
    mean_field = x @ (alpha[:, None] * torch.sign(m)).T / math.sqrt(6) + layer.bias
    assert torch.equal(torch.sign(layer.binary_forward(x)), torch.sign(mean_field))


def test_deterministic_surrogate_gradient_matches_finite_differences():
    torch.manual_seed(0)
    net = BinaryNetwork(3, (5, 4), 2, noise=GaussianNoise(0.7)).double()
    initialize_network(net, 0.6)
    with torch.no_grad():
        net.layers[0].bias.normal_(0, 0.2)
    x = torch.randn(7, 3, dtype=torch.float64)
    params = [p for p in net.parameters()]
    torch.autograd.gradcheck(
        lambda *ps: torch.func.functional_call(
            net, dict(zip([n for n, _ in net.named_parameters()], ps)), (x,)
        ),
        tuple(p.detach().requires_grad_(True) for p in params),
    )


def test_deterministic_surrogate_backpropagates_through_the_variance():
    # d(output)/dM has a term through Sigma = 1 - M^2 xbar^2 / N; removing it changes the gradient
    torch.manual_seed(0)
    layer = _layer(4, 1)
    net = BinaryNetwork(4, (4,), 1).double()
    net.layers[0] = layer
    x = torch.randn(3, 4, dtype=torch.float64)
    full = torch.autograd.grad(deterministic(net, x).sum(), layer.weight)[0]
    hbar, var = layer.moments(x, x * x)
    no_var = torch.autograd.grad(
        net.noise.gaussian_mean(hbar, var.detach() + 1e-4).sum(), layer.weight
    )[0]
    assert (full - no_var).abs().max() > 1e-3


def test_first_layer_with_saturated_means_stays_finite():
    net = BinaryNetwork(3, (4,), 2, noise="sign")
    with torch.no_grad():
        net.layers[0].weight.fill_(1.0)
    x = torch.randn(5, 3, requires_grad=True)
    out = net(x).sum()
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(net.layers[0].weight.grad).all()


def test_surrogate_mean_matches_sampled_network_for_one_wide_layer():
    # CLT is the only approximation of S1 for one layer: its unit means equal the
    # Monte-Carlo means of the sampled SBN up to O(1/sqrt N) and MC error.
    torch.manual_seed(3)
    net = BinaryNetwork(400, (6,), 2, noise=GaussianNoise(0.5)).double()
    initialize_network(net, (0.5, 0.1))
    x = torch.randn(1, 400, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        s1 = FORWARDS["deterministic"](net, x)
        mc = torch.stack([FORWARDS["sampled"](net, x, g) for _ in range(20_000)]).mean(0)
    torch.testing.assert_close(mc, s1, atol=0.03, rtol=0)


def test_projection_keeps_means_in_range():
    net = BinaryNetwork(3, (4, 4), 2)
    with torch.no_grad():
        net.layers[1].weight.fill_(3.0)
    net.project_()
    assert net.layers[1].weight.max() == 1.0


def test_network_needs_a_hidden_layer():
    with pytest.raises(ValueError, match="at least one hidden layer"):
        BinaryNetwork(3, (), 2)


@pytest.mark.parametrize("init,expected", [(0.64, 0.64), ((0.25, 0.5), 0.25), ("uniform", 1 / 3)])
def test_init_second_moment(init, expected):
    torch.manual_seed(0)
    net = BinaryNetwork(300, (300,), 2)
    record = initialize_network(net, init)
    m2 = float(net.layers[0].weight.detach().pow(2).mean())
    assert m2 == pytest.approx(expected, rel=0.02)
    assert record["sigma_m2"][0] == pytest.approx(expected, rel=0.02)
    if isinstance(init, tuple):
        assert float(net.layers[0].bias.var()) == pytest.approx(0.5, rel=0.25)


def test_glorot_and_he_put_the_means_near_zero():
    net = BinaryNetwork(256, (256,), 2)
    for init in ("glorot", "he"):
        record = initialize_network(net, init)
        assert record["sigma_m2"][0] < 0.01

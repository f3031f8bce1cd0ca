"""Exact enumeration of tiny SBNs against Monte Carlo and finite differences; LRT paths."""

import pytest
import torch

from sklearn_bnn.nn import BinaryNetwork
from sklearn_bnn.nn.exact import (
    all_states,
    cross_entropy_loss,
    exact_gradient,
    expected_loss,
    expected_sample_loss,
    logistic_loss,
    make_toy,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(sizes, noise="logistic", seed=0, n_in=2, n_out=1):
    torch.manual_seed(seed)
    net = BinaryNetwork(n_in, sizes, n_out, noise=noise).double()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.uniform_(-0.9, 0.9)
            layer.bias.normal_(0.0, 0.5)
    return net


def test_all_states_enumerates_every_sign_vector_once():
    s = all_states(4)
    assert s.shape == (16, 4)
    assert set(s.unique().tolist()) == {-1.0, 1.0}
    assert len({tuple(r) for r in s.tolist()}) == 16


@pytest.mark.parametrize("noise", ["logistic", "gaussian", "uniform"])
def test_expected_loss_matches_monte_carlo(noise):
    net = _net((3, 2), noise=noise, n_out=2)
    x = torch.randn(4, 2, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0])
    exact = expected_sample_loss(net, x, y).detach()
    n_draws, reps = 400, 50  # each forward call draws one weight sample for its batch
    with torch.no_grad():
        losses = torch.stack(
            [
                cross_entropy_loss(net(x.repeat(reps, 1), mode="sampled"), y.repeat(reps))
                .view(reps, 4)
                .mean(0)
                for _ in range(n_draws)
            ]
        )
    mc, se = losses.mean(0), losses.std(0) / n_draws**0.5
    assert ((mc - exact).abs() < 5 * se + 1e-3).all(), (mc, exact, se)


def test_exact_gradient_matches_finite_differences():
    net = _net((3, 3), noise="gaussian")
    x, y = make_toy(20, torch.Generator().manual_seed(0))
    grads = exact_gradient(net, x, y, logistic_loss)
    h = 1e-6
    for name, p in net.named_parameters():
        flat = p.data.view(-1)
        for i in range(0, flat.numel(), max(1, flat.numel() // 4)):
            old = flat[i].item()
            flat[i] = old + h
            up = expected_loss(net, x, y, logistic_loss).item()
            flat[i] = old - h
            down = expected_loss(net, x, y, logistic_loss).item()
            flat[i] = old
            assert grads[name].view(-1)[i].item() == pytest.approx((up - down) / (2 * h), abs=1e-7)


def test_deterministic_weights_and_sharp_noise_give_the_binary_network():
    net = _net((3, 2), noise="gaussian", n_out=2)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.copy_(torch.sign(layer.weight))
            layer.bias.add_(0.01)  # no field exactly at 0
    net.noise = type(net.noise)(1e-4)
    x = torch.randn(5, 2, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1])
    binary = cross_entropy_loss(net(x, mode="binary"), y)
    assert torch.allclose(expected_sample_loss(net, x, y), binary, atol=1e-6)


def test_too_wide_network_is_refused():
    net = BinaryNetwork(2, (30,), 1)
    with pytest.raises(ValueError, match="exact enumeration"):
        expected_loss(net, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("mode", ["deterministic", "lrt", "lrt_tanh"])
def test_reparameterised_paths_match_finite_differences(mode):
    """S1, S3 and S2 are differentiable with a fixed noise seed: gradcheck in float64."""
    net = _net((4, 3), noise="gaussian", n_in=3, n_out=2)
    x = torch.randn(5, 3, dtype=torch.float64)
    params = [p for _, p in net.named_parameters()]

    def loss(*values):
        out = torch.func.functional_call(
            net,
            dict(zip([n for n, _ in net.named_parameters()], values)),
            (x,),
            {"mode": mode, "generator": torch.Generator().manual_seed(3)},
        )
        return out.sum()

    inputs = tuple(p.detach().clone().requires_grad_() for p in params)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5)


def test_lrt_is_an_unbiased_sample_of_the_s3_field():
    """One LRT layer: the mean of phi(h) over field samples is the S1 Gaussian mean."""
    net = _net((6,), noise="gaussian", n_in=4, n_out=1)
    x = torch.randn(3, 4, dtype=torch.float64)
    with torch.no_grad():
        samples = torch.stack([net.features(x, "lrt") for _ in range(4000)])
        s1 = net.features(x, "deterministic")
    tolerance = 4 * samples.std(0).max().item() / 4000**0.5 + 1e-3
    assert torch.allclose(samples.mean(0), s1, atol=tolerance)

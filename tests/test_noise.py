"""Noise models against independent references: scipy distributions and Monte Carlo."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from sklearn_bnn.nn.noise import (
    NOISES,
    GaussianNoise,
    LogisticNoise,
    SignNoise,
    UniformNoise,
    _sign,
    get_noise,
)
from sklearn_bnn.nn.layers import StochasticBinaryLinear

A = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)

SCIPY_CDF = {
    "gaussian": lambda a, s: stats.norm.cdf(a, scale=s),
    "logistic": lambda a, s: stats.logistic.cdf(a, scale=s),
    "uniform": lambda a, s: stats.uniform.cdf(a, loc=-s, scale=2 * s),
}


@pytest.mark.parametrize("name", ["gaussian", "logistic", "uniform"])
@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_cdf_phi_and_dphi_match_scipy(name, scale):
    noise = NOISES[name](scale)
    a = A.numpy()
    np.testing.assert_allclose(noise.cdf(A).numpy(), SCIPY_CDF[name](a, scale), atol=1e-12)
    np.testing.assert_allclose(noise.phi(A).numpy(), 2 * SCIPY_CDF[name](a, scale) - 1, atol=1e-12)
    # 2F'(a) against a central finite difference of the scipy CDF (away from kinks)
    h = 1e-5
    fd = (SCIPY_CDF[name](a + h, scale) - SCIPY_CDF[name](a - h, scale)) / h
    away = np.abs(np.abs(a) - scale) > 1e-3
    np.testing.assert_allclose(noise.dphi(A).numpy()[away], fd[away], atol=1e-6)


@pytest.mark.parametrize("name", ["gaussian", "logistic", "uniform"])
def test_dphi_is_autograd_of_phi(name):
    noise = NOISES[name](0.7)
    a = A.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(noise.phi(a).sum(), a)
    away = (a.detach().abs() - 0.7).abs() > 1e-6
    torch.testing.assert_close(grad[away], noise.dphi(a.detach())[away])


@pytest.mark.parametrize(
    "noise", [GaussianNoise(0.8), LogisticNoise(0.5), UniformNoise(1.3), SignNoise()]
)
def test_sample_mean_is_phi(noise):
    a = torch.tensor([-1.0, -0.3, 0.2, 0.9], dtype=torch.float64).repeat(200_000, 1)
    g = torch.Generator().manual_seed(0)
    mean = noise.sample(a, g).mean(0)
    assert set(noise.sample(a[:10], g).unique().tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(mean, noise.phi(a[0]), atol=5e-3, rtol=0)


def _quad_gaussian_mean(phi, mu, var):
    sd = math.sqrt(var)

    def f(z):
        return phi(mu + sd * z) * stats.norm.pdf(z)

    kinks = [(-1 - mu) / sd, -mu / sd, (1 - mu) / sd]
    return integrate.quad(f, -12, 12, points=kinks, limit=200)[0]


@pytest.mark.parametrize("mu", [-1.5, -0.2, 0.0, 0.7])
@pytest.mark.parametrize("var", [0.05, 0.5, 2.0])
def test_gaussian_mean_against_quadrature(mu, var):
    exact = {
        "sign": (SignNoise(), lambda h: np.sign(h)),
        "gaussian": (GaussianNoise(0.6), lambda h: 2 * stats.norm.cdf(h, scale=0.6) - 1),
        "uniform": (UniformNoise(0.8), lambda h: np.clip(h / 0.8, -1, 1)),
    }
    mu_t, var_t = torch.tensor(mu, dtype=torch.float64), torch.tensor(var, dtype=torch.float64)
    for noise, phi in exact.values():
        got = float(noise.gaussian_mean(mu_t, var_t))
        assert got == pytest.approx(_quad_gaussian_mean(phi, mu, var), abs=1e-7)
    # logistic uses the probit approximation: documented error below 0.04
    logistic = LogisticNoise(0.5)
    got = float(logistic.gaussian_mean(mu_t, var_t))
    assert got == pytest.approx(_quad_gaussian_mean(lambda h: np.tanh(h / 1.0), mu, var), abs=0.04)


def test_sign_noise_has_no_st_proxy():
    with pytest.raises(ValueError, match="no straight-through proxy"):
        SignNoise().dphi(A)


def test_get_noise_resolves_names_and_instances():
    assert get_noise("uniform") == UniformNoise(1.0)
    custom = GaussianNoise(0.3)
    assert get_noise(custom) is custom
    with pytest.raises(ValueError, match="Did you mean 'gaussian'"):
        get_noise("gausian")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sign_is_plus_minus_one_with_sign_of_zero_plus_one(dtype):
    # the reference is numpy's comparison, independent of the torch implementation
    info = torch.finfo(dtype)
    special = [0.0, -0.0, info.tiny / 4, -info.tiny / 4, info.tiny, -info.tiny, info.max,
               -info.max, math.inf, -math.inf, 1.0, -1.0]  # fmt: skip
    rng = np.random.default_rng(0)
    values = np.concatenate([special, rng.normal(size=500), rng.normal(size=500) * 1e-40])
    x = torch.tensor(values, dtype=dtype, requires_grad=True)
    s = _sign(x)
    expected = np.where(x.detach().numpy() >= 0, 1.0, -1.0)
    assert s.dtype == dtype and s.grad_fn is None
    np.testing.assert_array_equal(s.numpy(), expected)


def test_sign_matrix_is_the_signs_of_binary_parameters():
    layer = StochasticBinaryLinear(7, 5)
    with torch.no_grad():
        layer.weight.normal_()
        layer.weight[0, :3] = torch.tensor([0.0, -0.0, -1e-42])
    signs, _ = layer.binary_parameters()
    w = layer.sign_matrix()
    expected = np.where(layer.weight.detach().numpy() >= 0, 1.0, -1.0)  # numpy's comparison
    np.testing.assert_array_equal(w.numpy(), expected)
    np.testing.assert_array_equal(signs.numpy(), expected > 0)
    assert w[0, 1] == 1.0 and w[0, 2] == -1.0  # -0.0 is a zero: +1

"""Mean-field maps against simulation of the package's own networks, beyond the defaults.

``tests/test_meanfield.py`` checks q and c of S1, the 1-bit and the sampled network at
q0 = 1, c0 = 0.5 and noise scale 1.  Here:

* q and c of every forward pass, ``lrt`` (S3) and ``lrt_tanh`` (S2, which is
  ``lrt_continuous`` with logistic noise of scale 1/2: tanh(h) = 2 sigmoid(h / (1/2)) - 1)
  included, at input lengths q0 != 1, several input correlations c0 (negative too) and
  noise scales != 1;
* ``chi`` and ``grad_gain`` per layer, and the fixed point's ``chi_1``, against gradients of
  the package's networks: back-propagating a random vector v from layer l+1's field to layer
  l's gives ``|J^T v|^2 / |v|^2`` (mean squared singular value of the Jacobian: grad_gain)
  and, for the two inputs of a pair, ``(J_a^T v).(J_b^T v) / |v|^2 = a E[phi'_a phi'_b]``,
  whence ``chi = a E[phi'_a phi'_b] sqrt(q_a q_b / (q'_a q'_b))``.

The theory is evaluated with each network's realised bias energy per layer, as in
``test_meanfield.py``.
"""

import itertools
import math

import numpy as np
import pytest
import torch

from sklearn_bnn.init import initialize_network
from sklearn_bnn.meanfield import fixed_point, propagate
from sklearn_bnn.nn import BinaryNetwork
from sklearn_bnn.nn import surrogates as surrogates_module
from sklearn_bnn.nn.noise import GaussianNoise, LogisticNoise, SignNoise, UniformNoise
from sklearn_bnn.nn.surrogates import VARIANCE_EPS

WIDTH, N_PAIRS, N_SEEDS = 1000, 8, 2
Q_RTOL, C_ATOL, SLOPE_RTOL = 0.05, 0.03, 0.06


def _inputs(q0, c0, n=WIDTH, n_pairs=N_PAIRS, seed=123):
    """Pairs of inputs of length |x|^2 / n = q0 and correlation c0, exactly."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(n, 2 * n_pairs, generator=g, dtype=torch.float64))
    e = basis.T * math.sqrt(n * q0)
    a, b = e[0::2], c0 * e[0::2] + math.sqrt(1 - c0 * c0) * e[1::2]
    return torch.stack([a, b], dim=1).reshape(2 * n_pairs, n).float()


class _RecordPhi:
    """Stands in for the network's noise model and records what ``phi`` is applied to."""

    def __init__(self, noise, log):
        self._noise, self._log = noise, log

    def phi(self, h):
        self._log.append(h)
        return self._noise.phi(h)

    def __getattr__(self, name):
        return getattr(self._noise, name)


def _fields(net, mode, x, generator=None):
    """Every layer's field as the forward pass ``mode`` computes it (kept in the graph
    for ``deterministic`` and ``lrt``)."""
    log, field_noise = [], surrogates_module._field_noise
    if mode == "lrt":
        noise, net.noise = net.noise, _RecordPhi(net.noise, log)
        try:
            net.features(x, mode, generator)
        finally:
            net.noise = noise
        return log
    if mode == "lrt_tanh":  # h = hbar + sqrt(Sigma + eps) e, from the moments and the draws
        moments, draws = [], []

        def record_noise(hbar, gen):
            draws.append(field_noise(hbar, gen))
            return draws[-1]

        surrogates_module._field_noise = record_noise
        method = "moments"
    else:
        method = {
            "deterministic": "moments",
            "binary": "binary_forward",
            "sampled": "sample_forward",
        }[mode]
    for layer in net.layers:
        original = getattr(layer, method)

        def wrapped(*args, _orig=original, **kwargs):
            out = _orig(*args, **kwargs)
            if mode == "lrt_tanh":
                moments.append(out)
            log.append(out[0] if isinstance(out, tuple) else out)
            return out

        setattr(layer, method, wrapped)
    try:
        net.features(x, mode, generator)
    finally:
        for layer in net.layers:
            delattr(layer, method)
        if mode == "lrt_tanh":
            surrogates_module._field_noise = field_noise
    if mode == "lrt_tanh":
        log = [hbar + torch.sqrt(var + VARIANCE_EPS) * e for (hbar, var), e in zip(moments, draws)]
    return log


def _q_c(h):
    h = h.detach().double()
    q = (h**2).mean(-1)
    ha, hb = h[0::2], h[1::2]
    c = (ha * hb).sum(-1) / (ha.norm(dim=-1) * hb.norm(dim=-1))
    return q.mean().item(), c.mean().item(), q


def _network(noise, depth, sm2, sb2, seed):
    torch.manual_seed(seed)
    net = BinaryNetwork(WIDTH, (WIDTH,) * depth, 1, noise=noise)
    initialize_network(net, (sm2, sb2))
    bias2 = np.array([float((layer.bias.detach().double() ** 2).mean()) for layer in net.layers])
    return net, bias2


#: (forward pass, theory's surrogate, noise, noise scale for the theory, q0, c0, sm2, sb2)
CASES = [
    ("lrt", "lrt", GaussianNoise(0.7), 0.7, 2.0, 0.2, 0.6, 0.05),
    ("lrt", "lrt", LogisticNoise(1.5), 1.5, 0.5, 0.8, 0.9, 0.01),
    ("lrt", "lrt", UniformNoise(0.5), 0.5, 1.5, -0.3, 0.4, 0.1),
    ("lrt_tanh", "lrt_continuous", GaussianNoise(), 0.5, 2.5, 0.6, 0.8, 0.05),
    ("lrt_tanh", "lrt_continuous", GaussianNoise(), 0.5, 0.4, 0.3, 0.99, 0.001),
    ("deterministic", "deterministic", GaussianNoise(0.5), 0.5, 2.0, 0.9, 0.7, 0.05),
    ("deterministic", "deterministic", UniformNoise(1.5), 1.5, 0.6, 0.1, 0.9, 0.01),
    ("deterministic", "deterministic", SignNoise(), 0.0, 3.0, -0.5, 0.5, 0.1),
    ("deterministic", "deterministic", LogisticNoise(0.4), 0.4, 0.3, 0.7, 0.95, 0.02),
    ("binary", "binary", GaussianNoise(), 1.0, 2.0, 0.7, 0.5, 0.05),
    ("sampled", "sampled", GaussianNoise(0.4), 0.4, 0.5, 0.4, 0.5, 0.05),
]
DEPTH = 5


@pytest.mark.parametrize(
    "mode, theory, noise, scale, q0, c0, sm2, sb2",
    CASES,
    ids=[f"{c[0]}-{c[2]!r}-q0={c[4]}-c0={c[5]}" for c in CASES],
)
@torch.no_grad()
def test_q_and_c_maps_match_simulation(mode, theory, noise, scale, q0, c0, sm2, sb2):
    x = _inputs(q0, c0)
    q_sim, c_sim, q_th, c_th = [], [], [], []
    # the +-1 weights of the 1-bit and sampled networks fluctuate more: 4 seeds (cheap)
    for seed in range(N_SEEDS if mode not in ("binary", "sampled") else 4):
        net, bias2 = _network(noise, DEPTH, sm2, sb2, seed)
        fields = _fields(net, mode, x, torch.Generator().manual_seed(seed))
        qc = [_q_c(h) for h in fields]
        q_sim.append([q for q, _, _ in qc])
        c_sim.append([c for _, c, _ in qc])
        p = propagate(
            theory,
            noise.name if theory != "lrt_continuous" else "logistic",
            sm2,
            bias2,
            DEPTH,
            q0=q0,
            c0=c0,
            noise_scale=scale if noise.name != "sign" else None,
        )
        q_th.append(p.q)
        c_th.append(p.c)
    q_sim, c_sim = np.mean(q_sim, 0), np.mean(c_sim, 0)
    q_th, c_th = np.mean(q_th, 0), np.mean(c_th, 0)
    np.testing.assert_allclose(q_sim, q_th, rtol=Q_RTOL, err_msg="q")
    np.testing.assert_allclose(c_sim, c_th, atol=C_ATOL, err_msg="c")


def _slopes(net, mode, x, seed):
    """Per layer l < depth - 1: simulated grad_gain and chi (see the module docstring)."""
    with torch.enable_grad():
        fields = _fields(net, mode, x, torch.Generator().manual_seed(seed))
        g = torch.Generator().manual_seed(seed + 99)
        gains, chis = [], []
        for lo, hi in itertools.pairwise(fields):
            v = torch.randn(hi.shape, generator=g)
            v[1::2] = v[0::2]  # the same v for both inputs of a pair
            (jv,) = torch.autograd.grad(hi, lo, v, retain_graph=True)
            jv, v = jv.double(), v.double()
            gain = (jv**2).sum(-1) / (v**2).sum(-1)
            d = (jv[0::2] * jv[1::2]).sum(-1) / (v[0::2] ** 2).sum(-1)
            q_lo, q_hi = (lo.detach().double() ** 2).mean(-1), (hi.detach().double() ** 2).mean(-1)
            ratio = torch.sqrt(q_lo[0::2] * q_lo[1::2] / (q_hi[0::2] * q_hi[1::2]))
            gains.append(gain.mean().item())
            chis.append((d * ratio).mean().item())
    return np.array(gains), np.array(chis)


#: (forward pass, noise, q0, c0, sm2, sb2): S1 and S3, whose fields the gradient reaches
SLOPE_CASES = [
    ("deterministic", GaussianNoise(0.5), 1.0, 0.5, 0.8, 0.05),
    ("deterministic", SignNoise(), 2.0, 0.3, 0.9, 0.01),
    ("deterministic", LogisticNoise(0.3), 0.5, 0.8, 0.99, 0.001),
    ("deterministic", UniformNoise(0.7), 1.5, -0.2, 0.7, 0.1),
    ("lrt", GaussianNoise(0.7), 1.0, 0.5, 0.6, 0.05),
    ("lrt", LogisticNoise(0.5), 2.0, 0.2, 0.9, 0.01),
]


@pytest.mark.parametrize(
    "mode, noise, q0, c0, sm2, sb2",
    SLOPE_CASES,
    ids=[f"{c[0]}-{c[1]!r}-q0={c[2]}" for c in SLOPE_CASES],
)
def test_chi_and_grad_gain_match_simulated_gradients(mode, noise, q0, c0, sm2, sb2):
    x = _inputs(q0, c0)
    sims, theories = [], []
    for seed in range(N_SEEDS):
        net, bias2 = _network(noise, DEPTH, sm2, sb2, seed)
        sims.append(_slopes(net, mode, x, seed))
        p = propagate(
            mode,
            noise.name,
            sm2,
            bias2,
            DEPTH,
            q0=q0,
            c0=c0,
            noise_scale=noise.scale if noise.name != "sign" else None,
        )
        theories.append((p.grad_gain[:-1], p.chi[:-1]))
    gain_sim, chi_sim = np.mean(sims, 0)
    gain_th, chi_th = np.mean(theories, 0)
    np.testing.assert_allclose(gain_sim, gain_th, rtol=SLOPE_RTOL, err_msg="grad_gain")
    np.testing.assert_allclose(chi_sim, chi_th, rtol=SLOPE_RTOL, err_msg="chi")


@pytest.mark.parametrize(
    "mode, noise, sm2, sb2",
    [
        ("deterministic", GaussianNoise(0.5), 0.9, 0.05),
        ("lrt", LogisticNoise(0.5), 0.8, 0.02),
    ],
)
def test_fixed_point_chi_1_matches_the_simulated_gradient_gain_in_depth(mode, noise, sm2, sb2):
    """chi_1 = a E[phi'(h)^2] at q*: the slope of the c-map at c = 1, and the per-layer gain
    of a back-propagated squared gradient norm once q has reached q* (deep layers)."""
    depth = 9
    x = _inputs(1.0, 0.3)
    fp = fixed_point(mode, noise.name, sm2, sb2, noise_scale=noise.scale)
    gains = [
        _slopes(_network(noise, depth, sm2, sb2, seed)[0], mode, x, seed)[0]
        for seed in range(N_SEEDS)
    ]
    deep = np.mean(gains, 0)[-3:]
    assert 0.1 < fp.chi_1 < 0.99  # a fixed point of interest, not a trivial one
    np.testing.assert_allclose(deep, fp.chi_1, rtol=SLOPE_RTOL)

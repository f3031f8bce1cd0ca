"""The residual 1-bit network: mean-field maps against simulation, the critical init's
theory, the exact export and training through the package's own loop.

Simulation follows ``tests/test_meanfield_simulation.py``: width 1000, pairs of inputs of
exact length and correlation, the theory evaluated with each network's realised per-layer
offset energy; tolerances 5% on q, 0.03 on c.
"""

import io
import math

import numpy as np
import pytest
import torch

from sklearn_bnn.meanfield import residual as mf
from sklearn_bnn.nn.exact import cross_entropy_loss
from sklearn_bnn.deploy.packed_residual import PackedResidualNetwork
from sklearn_bnn.nn.residual import (
    TRAIN_MODE,
    ResidualBinaryNetwork,
    ResidualStraightThrough,
    initialize_residual,
)
from sklearn_bnn.nn.bridge import pack_residual

WIDTH, N_PAIRS = 1000, 8
Q_RTOL, C_ATOL, GAIN_RTOL = 0.05, 0.03, 0.06


def _inputs(q0, c0, n=WIDTH, n_pairs=N_PAIRS, seed=123):
    """Pairs of inputs of length |x|^2 / n = q0 and correlation c0, exactly."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(n, 2 * n_pairs, generator=g, dtype=torch.float64))
    e = basis.T * math.sqrt(n * q0)
    a, b = e[0::2], c0 * e[0::2] + math.sqrt(1 - c0 * c0) * e[1::2]
    return torch.stack([a, b], dim=1).reshape(2 * n_pairs, n).float()


def _q_c(h):
    h = h.detach().double()
    ha, hb = h[0::2], h[1::2]
    c = (ha * hb).sum(-1) / (ha.norm(dim=-1) * hb.norm(dim=-1))
    return (h**2).mean().item(), c.mean().item()


@torch.no_grad()
def _network(depth, sm2, sb2, alpha, sbeta2, seed):
    torch.manual_seed(seed)
    net = ResidualBinaryNetwork(WIDTH, (WIDTH,) * depth, 1, branch_scale=alpha)
    initialize_residual(net, (sm2, sb2))  # two-point means, biases N(0, sb2) everywhere
    first = net.layers[0]
    first.bias.normal_(0.0, math.sqrt(sb2))
    for layer in net.layers[1:]:
        layer.bias.normal_(0.0, math.sqrt(sbeta2))
    realised = np.array([float(layer.bias.double().pow(2).mean()) for layer in net.layers])
    return net, realised


#: (q0, c0, sigma_m2, sigma_b2, alpha, sigma_beta2): a depth-scaled critical-like branch,
#: the constant branch of the module default over a small first layer (glorot-like), a
#: negative correlation and branch offsets.
CASES = [
    (1.0, 0.5, 0.5, 0.0, math.sqrt(0.5 / 7), 0.0),
    (1.0, 0.8, 0.03, 0.0, 1.0, 0.0),
    (2.0, -0.4, 0.7, 0.05, 0.5, 0.1),
    (0.5, 0.2, 0.9, 0.01, 0.3, 0.02),
]
DEPTH = 8


@pytest.mark.parametrize("q0, c0, sm2, sb2, alpha, sbeta2", CASES)
@torch.no_grad()
def test_q_and_c_maps_match_simulation(q0, c0, sm2, sb2, alpha, sbeta2):
    x = _inputs(q0, c0)
    for seed in (0, 1):
        net, bias2 = _network(DEPTH, sm2, sb2, alpha, sbeta2, seed)
        theory = mf.propagate(
            DEPTH, alpha**2, bias2[1:], sigma_m2=sm2, sigma_b2=float(bias2[0]), q0=q0, c0=c0
        )
        for layer, h in enumerate(net.streams(x)):
            q, c = _q_c(h)
            assert q == pytest.approx(theory.q[layer], rel=Q_RTOL), (seed, layer)
            assert c == pytest.approx(theory.c[layer], abs=C_ATOL), (seed, layer)


def test_straight_through_gradient_gain_matches_simulation():
    """Per block, |J^T v|^2 / |v|^2 of the ST backward against rho^2 + alpha^2 E[phi'^2]."""
    depth, sm2, alpha = 6, 0.5, 0.6
    net, bias2 = _network(depth, sm2, 0.0, alpha, 0.0, 0)
    x = _inputs(1.0, 0.5)
    theory = mf.propagate(depth, alpha**2, bias2[1:], sigma_m2=sm2, noise="gaussian")
    with torch.no_grad():
        hs = net.streams(x)
    g = torch.Generator().manual_seed(0)

    def unit(h):
        soft = net.noise.phi(h)
        return torch.where(h.detach() >= 0, 1.0, -1.0) + (soft - soft.detach())

    def weights(layer):
        return torch.where(layer.weight.detach() >= 0, 1.0, -1.0)

    for block in range(depth - 1):
        h = hs[block].clone().requires_grad_(True)
        v = torch.randn(h.shape, generator=g)
        (net._block(h, block, unit, weights) * v).sum().backward()
        gain = float((h.grad**2).sum() / (v**2).sum())
        assert gain == pytest.approx(theory.grad_gain[block], rel=GAIN_RTOL), block


def test_sensitivity_is_the_derivative_of_the_correlation_map():
    """Brute force: the product of the slopes is d c^L / d c_0 by central differences."""
    for kwargs in ({"alpha2": 1.0 / 29}, {"alpha2": 1.0, "sigma_beta2": 0.1},
                   {"alpha2": 1.0, "skip": 0.0}):
        alpha2 = kwargs.pop("alpha2")
        eps = 1e-6

        def c_last(c0, alpha2=alpha2, kwargs=kwargs):
            return mf.propagate(30, alpha2, c0=c0, sigma_m2=0.5, **kwargs).c[-1]

        fd = (c_last(0.3 + eps) - c_last(0.3 - eps)) / (2 * eps)
        p = mf.propagate(30, alpha2, c0=0.3, sigma_m2=0.5, **kwargs)
        assert p.sensitivity == pytest.approx(fd, rel=1e-5)


def test_plain_network_is_never_critical():
    """skip=0 is the 1-bit network of the issue: slope 2/pi at c* = 0, about 6 xi_c layers."""
    p = mf.propagate(200, 1.0, skip=0.0, sigma_m2=0.5)
    assert p.chi[-1] == pytest.approx(2 / math.pi, rel=1e-9)
    xi_c = -1.0 / math.log(2 / math.pi)
    assert 6 * xi_c - 2 <= mf.trainable_depth(1.0, skip=0.0, sigma_m2=0.5) <= 6 * xi_c + 2
    with_offsets = mf.propagate(200, 1.0, 0.5, skip=0.0, sigma_m2=0.5)
    assert 0.5 < with_offsets.chi[-1] < 2 / math.pi  # thresholds make it worse, not critical


def test_critical_init_is_depth_independent_and_order_one():
    sens = {L: mf.critical_init(L).correlation_sensitivity for L in (10, 30, 100, 1000)}
    assert all(0.5 < s < 1.0 for s in sens.values())
    assert abs(sens[1000] - sens[30]) < 0.01  # converges: the maps have an L -> inf limit
    for L in (10, 100):
        ci = mf.critical_init(L, sigma_m2=0.3, branch_share=2.0)
        assert ci.alpha**2 == pytest.approx(2.0 * 0.3 / (L - 1))
        assert math.isinf(ci.trainable_depth)
        assert 1.0 < ci.grad_gain < 2.0
    # a constant branch decays as a power law (slowly, never exponentially); the plain
    # network exponentially
    const = [mf.propagate(L, 1.0, sigma_m2=0.03).sensitivity for L in (10, 100, 1000)]
    assert const[0] > const[1] > const[2] > 0.01
    assert mf.propagate(30, 1.0, skip=0.0, sigma_m2=0.5).sensitivity < 1e-5


def test_constant_branch_decays_as_a_power_law():
    """With a constant branch the correlation approaches c* = 0 as l^-(1 - 2/pi): the plain
    map's contraction 2/pi acting at rate 1/l (no exponential depth scale)."""
    c = mf.propagate(20001, 1.0, c0=0.5).c
    exponent = math.log(c[20000] / c[2000]) / math.log(10.0)
    assert exponent == pytest.approx(-(1 - 2 / math.pi), abs=2e-3)


def test_critical_init_maximises_sensitivity_at_its_branch_variance():
    """Brute force over the split of the blocks' variance between scale and offsets: the
    returned init (offsets 0) has the largest d c^L / d c_0; and the sensitivity decreases
    monotonically in the branch share (so the share is a choice, not an optimum)."""
    depth = 30
    ci = mf.critical_init(depth)
    budget = ci.alpha**2 + ci.sigma_beta2
    splits = np.linspace(0.0, budget, 41)
    grid = [mf.propagate(depth, budget - b, b, sigma_m2=ci.sigma_m2).sensitivity for b in splits]
    assert int(np.argmax(grid)) == 0 and ci.sigma_beta2 == 0.0
    assert grid[0] == pytest.approx(ci.correlation_sensitivity)
    shares = [mf.critical_init(depth, branch_share=k).correlation_sensitivity
              for k in (0.1, 0.5, 1.0, 4.0)]
    assert all(np.diff(shares) < 0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="all of the same width"):
        ResidualBinaryNetwork(3, (8, 4), 2)
    with pytest.raises(ValueError, match="first_layer='binary'"):
        ResidualBinaryNetwork(3, (8, 8), 2, first_layer="binary")
    with pytest.raises(ValueError, match="Valid values: 'binary', 'sampled'"):
        ResidualBinaryNetwork(3, (8, 8), 2)(torch.zeros(1, 3), "lrt")
    with pytest.raises(ValueError, match="sigma_beta2 has shape"):
        mf.propagate(5, 0.1, [0.1, 0.2])
    with pytest.raises(ValueError, match="depth=0"):
        mf.critical_init(0)


def _trained_like(seed=0, n_features=7, width=40, depth=6):
    """A network with generic (non-init) parameters, as after training."""
    torch.manual_seed(seed)
    net = ResidualBinaryNetwork(n_features, (width,) * depth, 4)
    initialize_residual(net, "critical")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
        net.project_()
    return net


@pytest.mark.parametrize("backend", ["matmul", "popcount", "native", "auto"])
def test_export_is_bit_exact(backend):
    if backend == "native":
        from sklearn_bnn.deploy import _kernel

        try:
            _kernel.load()
        except _kernel.NativeKernelError as exc:
            pytest.skip(f"native kernel unavailable: {exc}")
    net = _trained_like()
    X = np.random.default_rng(0).normal(size=(300, 7)).astype(np.float32)
    Xt = torch.from_numpy(X)
    packed = pack_residual(net, classes=np.array(["a", "b", "c", "d"]),
                                               backend=backend)
    with torch.no_grad():
        stream = net.streams(Xt)[-1].numpy()
        units = net.features(Xt, "binary").numpy()
        logits = net(Xt, "binary").numpy()
    assert np.array_equal(packed.stream(X), stream)  # every float32 bit of the stream
    assert np.array_equal(packed.transform(X), units)
    np.testing.assert_allclose(packed.logits(X), logits, rtol=0, atol=1e-5)
    assert np.array_equal(packed.predict(X), np.array(list("abcd"))[logits.argmax(1)])
    buf = io.BytesIO()
    packed.save(buf)
    loaded = PackedResidualNetwork.load(io.BytesIO(buf.getvalue()), backend=backend)
    assert np.array_equal(loaded.predict(X), packed.predict(X))
    assert np.array_equal(loaded.stream(X), stream)


def test_straight_through_forward_is_the_deployed_network():
    net = _trained_like(1)
    x = torch.randn(50, 7)
    with torch.no_grad():
        deployed = net.features(x, "binary")
    assert torch.equal(net.straight_through(x), deployed)
    loss, _ = ResidualStraightThrough()(net, x, torch.zeros(50, dtype=torch.long),
                                             cross_entropy_loss)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert net.layers[2].weight.grad.abs().sum() > 0


def test_sampled_forward_draws_binary_units():
    net = _trained_like(2)
    g = torch.Generator().manual_seed(0)
    out = net.features(torch.randn(5, 7), "sampled", g)
    assert set(out.unique().tolist()) <= {-1.0, 1.0}


def test_trains_through_the_package_loop():
    """Smoke test: the skorch loop of the estimator (SBNNet) with the residual objective
    fits a small problem; the deployed network predicts what it trained."""
    from sklearn.datasets import load_digits

    from sklearn_bnn._training import SBNNet, TensorBatches, TensorData

    X, y = load_digits(return_X_y=True)
    X = ((X - X.mean(0)) / (X.std(0) + 1e-6)).astype(np.float32)[:500]
    y = y[:500]
    torch.manual_seed(0)
    net = SBNNet(
        ResidualBinaryNetwork, module__n_features=64, module__hidden_layer_sizes=(32,) * 8,
        module__n_outputs=10, criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam, lr=3e-3, max_epochs=25, batch_size=64,
        iterator_train=TensorBatches, iterator_valid=TensorBatches, train_split=None,
        train_mode=TRAIN_MODE, verbose=0,
    )
    net.initialize()
    initialize_residual(net.module_, "critical")
    net.partial_fit(TensorData(torch.from_numpy(X), torch.from_numpy(y)), None)
    assert net.train_mode == TRAIN_MODE
    packed = pack_residual(net.module_)
    acc = float((packed.predict(X) == y).mean())
    assert acc > 0.9
    assert all(layer.weight.abs().max() <= 1.0 for layer in net.module_.layers)

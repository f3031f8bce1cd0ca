"""init="critical": the registry entry asks the mean-field solver and draws what it chose."""

import math
import warnings

import numpy as np
import pytest
import torch

from sklearn_bnn.init import INITS, InitContext, initialize_network, resolve_init
from sklearn_bnn.meanfield import critical_init
from sklearn_bnn.nn import SURROGATE_SPECS, BinaryNetwork
from sklearn_bnn.nn.noise import get_noise


def test_critical_is_registered_and_available():
    assert "critical" in INITS.available


@pytest.mark.parametrize("surrogate", ["deterministic", "lrt", "sampled"])
@pytest.mark.parametrize("noise", ["sign", "gaussian"])
def test_critical_draws_the_solvers_second_moments(surrogate, noise):
    context = InitContext(surrogate=surrogate, noise=get_noise(noise), depth=12)
    drawn = resolve_init("critical", context)(fan_in=50, fan_out=40)
    expected = critical_init(surrogate, noise, depth=12)
    assert drawn.critical.sigma_m2 == pytest.approx(expected.sigma_m2)
    assert drawn.sigma_m2 == pytest.approx(expected.sigma_m2)
    torch.testing.assert_close(
        drawn.weight.abs(), torch.full((40, 50), expected.sigma_m2**0.5), rtol=1e-6, atol=1e-7
    )


@torch.no_grad()
def test_initialize_network_records_the_critical_answer():
    torch.manual_seed(0)
    net = BinaryNetwork(6, (32,) * 10, 3, noise="sign")
    record = initialize_network(net, "critical")
    answer = record["critical"]
    assert answer["depth"] == 10 and answer["criterion"].startswith("depth-aware")
    assert record["sigma_m2"] == [answer["sigma_m2"]] * 10
    assert all(float(layer.weight.pow(2).mean()) == pytest.approx(answer["sigma_m2"], rel=1e-5)
               for layer in net.layers)


def test_critical_with_unknown_surrogate_raises_naming_the_valid_ones():
    context = InitContext(surrogate="binari", noise=get_noise("sign"), depth=3)
    with pytest.raises(ValueError, match="surrogate='binari'.*'binary'.*Did you mean 'binary'"):
        resolve_init("critical", context)


# ------------------------------------------------------------ every surrogate, binary too
def _binary_map_log_sensitivity(sigma_m2, sigma_b2, depth, c0=0.5, h=1e-5):
    """log dc_{L+1}/dc_1 of the 1-bit network's map, by central finite differences.

    Independent of the solver's code: the map of the issue, c' = (2/pi) arcsin((c+b)/(1+b))
    written as c_{l+1} = ((2/pi) arcsin(c_l) + b)/(1 + b) on field correlations, with the
    threshold variance b = sigma_b^2 / sigma_m^2 and the first field's correlation
    (c0 + b)/(1 + b) (unit-length inputs).
    """
    b = sigma_b2 / sigma_m2

    def last(c):
        for _ in range(depth):
            c = (2.0 / math.pi * math.asin(c) + b) / (1.0 + b)
        return c

    c1 = (c0 + b) / (1.0 + b)
    return math.log((last(c1 + h) - last(c1 - h)) / (2.0 * h))


@pytest.mark.parametrize("depth", [2, 10, 20])
@pytest.mark.parametrize("sigma_b2", [1e-3, 0.05])
def test_binary_critical_maximises_the_one_bit_maps_sensitivity(depth, sigma_b2):
    answer = critical_init("binary", "gaussian", depth=depth, sigma_b2=sigma_b2)
    grid = [0.01 + 0.98 * i / 196 for i in range(197)]  # brute force over the searched range
    values = [_binary_map_log_sensitivity(m, sigma_b2, depth) for m in grid]
    best = max(values)
    chosen = _binary_map_log_sensitivity(answer.sigma_m2, sigma_b2, depth)
    assert chosen >= best - 1e-6
    assert abs(answer.sigma_m2 - grid[values.index(best)]) <= 0.98 / 196 + 1e-9
    assert math.log(answer.correlation_sensitivity) == pytest.approx(chosen, abs=1e-4)
    assert answer.criterion == "depth-aware max dc_L/dc_0" and not answer.exact


@pytest.mark.parametrize("surrogate", list(SURROGATE_SPECS))
def test_critical_means_something_for_every_surrogate(surrogate):
    noise = get_noise("gaussian")
    context = InitContext(surrogate=surrogate, noise=noise, depth=6)
    drawn = resolve_init("critical", context)(fan_in=20, fan_out=10)
    expected = critical_init(SURROGATE_SPECS[surrogate].meanfield, "gaussian", depth=6)
    assert drawn.sigma_m2 == pytest.approx(expected.sigma_m2)
    assert 0.0 < drawn.sigma_m2 <= 1.0 and drawn.critical.depth == 6


@torch.no_grad()
def test_critical_draws_a_real_first_layer_with_the_same_two_point_law():
    torch.manual_seed(0)
    net = BinaryNetwork(8, (32, 32, 32), 3, first_layer="real")
    record = initialize_network(net, "critical", surrogate="binary")
    sm2 = record["critical"]["sigma_m2"]
    assert record["critical"]["depth"] == 3
    for layer in net.layers:
        torch.testing.assert_close(layer.weight.abs(), torch.full_like(layer.weight, sm2**0.5))


@torch.no_grad()
def test_real_and_binary_first_layers_give_the_solvers_first_correlation():
    # The documented decision: the 1-bit network's first field correlation is
    # (c0 q0 + b)/(q0 + b), b = sigma_b^2/sigma_m^2, with sign(M) or M as the weights.
    torch.manual_seed(0)
    n_in, width, sm2, sb2, c0 = 2000, 4000, 0.3, 0.06, 0.5
    u, v = torch.linalg.qr(torch.randn(n_in, 2, dtype=torch.float64))[0].T * n_in**0.5
    x = torch.stack([u, c0 * u + math.sqrt(1 - c0 * c0) * v]).float()  # q0 = 1, corr c0
    b = sb2 / sm2
    for first_layer in ("binary", "real"):
        net = BinaryNetwork(n_in, (width,), 2, first_layer=first_layer)
        initialize_network(net, (sm2, sb2))
        h = net.layers[0].binary_forward(x)
        corr = float((h[0] * h[1]).mean() / (h[0].pow(2).mean() * h[1].pow(2).mean()).sqrt())
        assert corr == pytest.approx((c0 + b) / (1.0 + b), abs=0.03), first_layer


def test_grid_search_over_init_with_the_default_estimator_has_no_failing_candidate():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV

    from sklearn_bnn import BinaryNetClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:240], y[:240]
    grid = {"init": ["critical", "glorot", "he", 0.05]}
    search = GridSearchCV(BinaryNetClassifier(max_iter=3), grid, cv=2, error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4 and all(np.isfinite(scores))
    assert search.cv_results_["params"][0] == {"init": "critical"}

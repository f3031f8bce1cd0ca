"""init="critical": the registry entry asks the mean-field solver and draws what it chose."""

import pytest
import torch

from sklearn_bnn.init import INITS, InitContext, initialize_network, resolve_init
from sklearn_bnn.meanfield import critical_init
from sklearn_bnn.nn import BinaryNetwork
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

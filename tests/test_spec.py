"""One spec per surrogate: the derived tables, the validation messages, S2 selectable."""

import math
import warnings

import pytest
import torch

from sklearn_bnn.nn.architecture import ARCHITECTURES
from sklearn_bnn import _constants
from sklearn_bnn.meanfield import SURROGATES as MEANFIELD_SURROGATES
from sklearn_bnn.meanfield.maps import layer_neuron
from sklearn_bnn.nn import (
    COMBINATIONS,
    FORWARDS,
    SURROGATES,
    TRAINING,
    BinaryNetwork,
    get_noise,
    training_forward,
)
from sklearn_bnn.nn.estimators import _NOISE_REQUIRED, _ST_PATHS, AUTO, REAL_FIRST_LAYER_MODES
from sklearn_bnn.nn.exact import cross_entropy_loss
from sklearn_bnn.nn.noise import LogisticNoise
from sklearn_bnn.nn.spec import (
    COMPILED_SURROGATES,
    MEANFIELD_MODELS,
    SURROGATE_SPECS,
    check_compile,
    resolve_slope,
    surrogate_spec,
)
from sklearn_bnn.nn.surrogates import lrt_continuous, lrt_tanh

# The tables as they were written by hand before the specs (the reference the derived
# views must reproduce), plus S2.
OLD_COMBINATIONS = {
    "deterministic": ("auto",),
    "lrt": ("auto", "st"),
    "sampled": ("auto", "st", "psa", "reinforce", "arm"),
    "binary": ("auto", "st"),
}
OLD_AUTO = {
    "deterministic": "deterministic",
    "lrt": "lrt",
    "sampled": "sampled+st",
    "binary": "binary+st",
}
OLD_REAL_FIRST_LAYER_MODES = {"deterministic", "lrt", "lrt+st", "sampled+st", "binary+st"}


def test_derived_tables_reproduce_the_hand_written_ones_plus_s2():
    assert COMBINATIONS == {**OLD_COMBINATIONS, "lrt_continuous": ("auto",)}
    assert AUTO == {**OLD_AUTO, "lrt_continuous": "lrt_continuous"}
    assert set(REAL_FIRST_LAYER_MODES) == OLD_REAL_FIRST_LAYER_MODES | {"lrt_continuous"}
    assert set(_ST_PATHS) == {"sampled", "lrt", "binary"}
    assert _NOISE_REQUIRED == {"psa": (LogisticNoise, "logistic")}
    assert COMPILED_SURROGATES == {"deterministic", "binary"}
    assert list(SURROGATES) == list(SURROGATE_SPECS)
    assert MEANFIELD_MODELS["sampled"] == "sampled" and MEANFIELD_MODELS["binary"] == "binary"


def test_every_spec_points_at_a_forward_pass_a_mean_field_model_and_training_modes():
    modes = set()
    for name, spec in SURROGATE_SPECS.items():
        assert spec.name == name
        assert spec.forward in FORWARDS
        assert spec.meanfield in MEANFIELD_SURROGATES
        for estimator in spec.estimators:
            mode = training_forward(name, estimator)
            assert mode in TRAINING
            modes.add(mode)
    # every objective is reachable from a surrogate spec or an architecture's
    residual = ARCHITECTURES["residual"].train_mode("binary", "auto", None)
    assert modes | {residual} == set(TRAINING)


def test_specs_are_frozen():
    with pytest.raises(AttributeError):
        surrogate_spec("binary").compilable = False


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: surrogate_spec("lrt_tanh"),
            "Valid values: 'deterministic', 'lrt', 'lrt_continuous', 'sampled', 'binary'",
        ),
        (lambda: training_forward("lrt_tanh", "auto"), "not a training surrogate"),
        (lambda: training_forward("lrt_continuous", "st"), "lrt_continuous: auto; sampled"),
        (lambda: training_forward("sampled", "psa", get_noise("gaussian")),
         "needs noise='logistic'"),
        (lambda: training_forward("binary", "auto", get_noise("sign")),
         "straight-through proxy"),
        (lambda: training_forward("lrt_continuous", "auto", get_noise("sign")),
         "Valid noises: 'gaussian', 'logistic', 'uniform'"),
        (lambda: resolve_slope(2.0, "lrt"), r"surrogate in \('deterministic',\)"),
        (lambda: check_compile(True, "sampled"), r"\['binary', 'deterministic'\]"),
    ],
)
def test_validation_messages_derive_from_the_specs_and_list_valid_values(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_resolve_slope():
    assert resolve_slope("unit", "deterministic") == math.sqrt(math.pi / 2)
    assert resolve_slope(1, "binary") == 1.0
    assert resolve_slope(0.5, "deterministic") == 0.5
    check_compile(False, "sampled")  # nothing to check without compile


def test_noise_constants_agree_between_the_network_and_the_solver():
    for name in _constants.NOISE_NAMES:
        noise = get_noise(name)
        assert noise.scale == _constants.DEFAULT_NOISE_SCALE[name]
        if name == "uniform":
            assert noise.erf_variance is None
            continue
        # the S1 neuron of the solver at Sigma = 0: erf_var = eps + erf_variance
        solver = layer_neuron("deterministic", name, noise.scale, sigma=0.0).erf_var
        assert solver == pytest.approx(_constants.VARIANCE_EPS + noise.erf_variance, rel=1e-12)


def test_s2_forward_with_logistic_half_is_the_tanh_neuron():
    torch.manual_seed(0)
    net = BinaryNetwork(5, (7, 6), 3, noise=LogisticNoise(0.5))
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.uniform_(-0.9, 0.9)
            layer.bias.normal_(0.0, 0.1)
    x = torch.randn(4, 5, dtype=torch.float32)
    a = lrt_continuous(net, x, torch.Generator().manual_seed(3))
    b = lrt_tanh(net, x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("noise", ["gaussian", "logistic", "uniform"])
@pytest.mark.parametrize("first_layer", ["binary", "real"])
def test_binary_network_trains_one_step_with_s2(noise, first_layer):
    torch.manual_seed(0)
    net = BinaryNetwork(6, (16, 16), 3, noise=noise, first_layer=first_layer)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.uniform_(-0.5, 0.5)
    mode = training_forward("lrt_continuous", "auto", net.noise)
    assert mode == "lrt_continuous"
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    before = [p.detach().clone() for p in net.parameters()]
    loss, logits = TRAINING[mode](net, x, y, cross_entropy_loss, torch.Generator().manual_seed(0))
    assert logits.shape == (32, 3) and torch.isfinite(loss)
    torch.optim.SGD(net.parameters(), lr=0.1).zero_grad()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    assert all(not torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True))


def test_classifier_fits_and_predicts_with_s2():
    from sklearn.datasets import load_digits

    from sklearn_bnn import BinaryNetClassifier

    X, y = load_digits(return_X_y=True)
    X = (X[:200] - X[:200].mean(0)) / (X[:200].std(0) + 1e-9)
    clf = BinaryNetClassifier((32,), surrogate="lrt_continuous", max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y[:200])
    assert clf.predict(X[:10]).shape == (10,)

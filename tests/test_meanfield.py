"""Mean-field solver: theory against the package's own networks at init (neural-tangents
style), quadrature against scipy integration, numpy neurons against the torch noise models,
fixed points and the critical init, and the no-torch guarantee of ``sklearn_bnn.meanfield``.

Definitions used for the simulated quantities (those of :mod:`sklearn_bnn.meanfield.maps`):
``q`` of a layer is the mean over units of its squared field as the forward pass computes it
(``hbar`` of ``layer.moments`` for "deterministic", the field of ``binary_forward`` /
``sample_forward`` otherwise), averaged over the two inputs; ``c`` is the cosine between the
two inputs' fields.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.special import erf

from sklearn_bnn.init import initialize_network
from sklearn_bnn.meanfield import critical_init, fixed_point, phase_diagram, propagate
from sklearn_bnn.meanfield.maps import layer_neuron
from sklearn_bnn.meanfield.quadrature import expect_1d, expect_2d
from sklearn_bnn.nn import BinaryNetwork
from sklearn_bnn.nn.noise import NOISES, get_noise
from sklearn_bnn.nn.surrogates import UNIT_SLOPE, neuron_mean

WIDTH = 1000
DEPTH = 20
N_SEEDS = 8  # deterministic surrogate; binary uses the first 5, sampled the first 3 per config
SIGMA_M2 = (0.2, 0.5, 0.99)
SIGMA_B2 = (1e-3, 0.1)
NOISE_NAMES = ("sign", "gaussian", "logistic", "uniform")
Q_RTOL, C_ATOL = 0.05, 0.03


N_PAIRS = 8


def _inputs(c0=0.5, n=WIDTH, n_pairs=N_PAIRS, seed=123):
    """``n_pairs`` pairs of inputs, each input of length |x|^2 / n = 1 and each pair of
    correlation c0, exactly; different pairs are orthogonal.  Several independent pairs per
    network average out the O(sqrt(2 / n)) width fluctuation of each layer's q."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(n, 2 * n_pairs, generator=g, dtype=torch.float64))
    e = basis.T * math.sqrt(n)
    a, b = e[0::2], c0 * e[0::2] + math.sqrt(1 - c0 * c0) * e[1::2]
    return torch.stack([a, b], dim=1).reshape(2 * n_pairs, n).float()  # a0, b0, a1, b1, ...


def _record_fields(net, mode, x, generator=None):
    """Run the network's own forward pass ``mode``, recording every layer's field."""
    fields = []
    method = {"deterministic": "moments", "binary": "binary_forward", "sampled": "sample_forward"}
    method = method[mode]
    for layer in net.layers:
        original = getattr(layer, method)

        def wrapped(*args, _orig=original, **kwargs):
            out = _orig(*args, **kwargs)
            fields.append((out[0] if isinstance(out, tuple) else out).double())
            return out

        setattr(layer, method, wrapped)
    try:
        net.features(x, mode, generator)
    finally:
        for layer in net.layers:
            delattr(layer, method)
    bias2 = np.array([float((layer.bias.double() ** 2).mean()) for layer in net.layers])
    h = torch.stack(fields)  # (depth, 2 * n_pairs, width)
    q = (h**2).mean(-1).mean(-1)
    ha, hb = h[:, 0::2], h[:, 1::2]
    c = (ha * hb).sum(-1) / (ha.norm(dim=-1) * hb.norm(dim=-1))
    return q.numpy(), c.mean(-1).numpy(), bias2


@pytest.fixture(scope="module")
@torch.no_grad()
def simulated():
    """Per (sigma_m2, sigma_b2): simulated (q, c) per seed for each forward pass / noise."""
    x = _inputs()
    out = {}
    for i, sm2 in enumerate(SIGMA_M2):
        for j, sb2 in enumerate(SIGMA_B2):
            runs = {}
            for seed in range(N_SEEDS):
                torch.manual_seed(1000 * i + 100 * j + seed)
                net = BinaryNetwork(WIDTH, (WIDTH,) * DEPTH, 1, noise="sign")
                initialize_network(net, (sm2, sb2))
                for noise in NOISE_NAMES:
                    net.noise = get_noise(noise)
                    runs.setdefault(("deterministic", noise), []).append(
                        _record_fields(net, "deterministic", x)
                    )
                for noise in ("sign", "uniform"):  # the S1 neuron with the unit slope
                    net.noise, net.slope = get_noise(noise), UNIT_SLOPE
                    runs.setdefault(("deterministic-unit", noise), []).append(
                        _record_fields(net, "deterministic", x)
                    )
                    net.slope = 1.0
                if seed < 5:
                    runs.setdefault(("binary", "sign"), []).append(_record_fields(net, "binary", x))
                if seed < 3:  # pooled over the three sigma_m2: 9 samples per sigma_b2
                    net.noise = get_noise("gaussian")
                    gen = torch.Generator().manual_seed(seed)
                    runs.setdefault(("sampled", "gaussian"), []).append(
                        _record_fields(net, "sampled", x, gen)
                    )
            out[sm2, sb2] = runs
    return out


def _theory_mean(runs, surrogate, noise, sm2, slope=1.0):
    """Theory per seed, given that network's realised bias energy per layer, averaged.

    The fluctuation of the simulated q across seeds is dominated by the realised
    (1/N) sum_i b_i^2 of each layer (relative spread sqrt(2/N), about 4.5% at N = 1000, shared
    by every input); conditioning on it is the mean-field statement itself (only empirical
    second moments matter as N grows; those of the two-point weight means are exact)."""
    ps = [propagate(surrogate, noise, sm2, b, DEPTH, q0=1.0, c0=0.5, slope=slope)
          for _, _, b in runs]
    return np.mean([p.q for p in ps], 0), np.mean([p.c for p in ps], 0)


def _compare(q_sim, c_sim, theory, label):
    q_theory, c_theory = theory if isinstance(theory, tuple) else (theory.q, theory.c)
    rel_q = np.abs(q_sim / q_theory - 1.0)
    abs_c = np.abs(c_sim - c_theory)
    if rel_q.max() > Q_RTOL or abs_c.max() > C_ATOL:
        return [
            (
                f"{label}: max rel q error {rel_q.max():.3f} (layer {rel_q.argmax() + 1}), "
                f"max abs c error {abs_c.max():.3f} (layer {abs_c.argmax() + 1})"
            )
        ]
    return []


@pytest.mark.parametrize("noise", NOISE_NAMES)
def test_deterministic_surrogate_matches_simulation(simulated, noise):
    failures = []
    for (sm2, sb2), runs in simulated.items():
        sims = runs["deterministic", noise]
        q_sim, c_sim = np.mean([q for q, _, _ in sims], 0), np.mean([c for _, c, _ in sims], 0)
        theory = _theory_mean(sims, "deterministic", noise, sm2)
        failures += _compare(q_sim, c_sim, theory, f"sm2={sm2} sb2={sb2}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("noise", ["sign", "uniform"])
def test_unit_slope_surrogate_matches_simulation(simulated, noise):
    failures = []
    for (sm2, sb2), runs in simulated.items():
        sims = runs["deterministic-unit", noise]
        q_sim, c_sim = np.mean([q for q, _, _ in sims], 0), np.mean([c for _, c, _ in sims], 0)
        theory = _theory_mean(sims, "deterministic", noise, sm2, slope=UNIT_SLOPE)
        failures += _compare(q_sim, c_sim, theory, f"slope=unit sm2={sm2} sb2={sb2}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("mode,noise", [("binary", "sign"), ("sampled", "gaussian")])
def test_binary_and_sampled_networks_match_simulation(simulated, mode, noise):
    # Both see fair +-1 weights (sign(M), or one Bernoulli draw of random-sign means) whatever
    # sigma_m2 is: the theory says so, and the runs of all sigma_m2 are pooled per sigma_b2.
    # The 1-bit network folds each bias into its threshold as b / mean|M| = b / sigma_m, so
    # its maps depend on sigma_m2 through the bias; it is compared per sigma_m2.
    failures = []
    for sb2 in SIGMA_B2:
        if mode == "sampled":
            theories = [propagate(mode, noise, sm2, sb2, DEPTH) for sm2 in SIGMA_M2]
            for t in theories[1:]:
                np.testing.assert_allclose(t.c, theories[0].c)
            groups = [(0.5, [r for sm2 in SIGMA_M2 for r in simulated[sm2, sb2][mode, noise]])]
        else:
            groups = [(sm2, simulated[sm2, sb2][mode, noise]) for sm2 in SIGMA_M2]
        for sm2, runs in groups:
            q_sim, c_sim = np.mean([q for q, _, _ in runs], 0), np.mean([c for _, c, _ in runs], 0)
            theory = _theory_mean(runs, mode, noise, sm2)
            failures += _compare(q_sim, c_sim, theory, f"{mode} sm2={sm2} sb2={sb2}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("q,c", [(0.3, 0.0), (1.7, 0.6), (0.8, 0.95)])
def test_quadrature_matches_scipy_integration(q, c):
    def f(u):
        return np.tanh(1.3 * u) + 0.2 * u**2

    def g(u):
        return erf(0.7 * u)

    def dens(u):
        return np.exp(-u * u / (2 * q)) / math.sqrt(2 * math.pi * q)

    ref1 = integrate.quad(lambda u: f(u) * dens(u), -np.inf, np.inf)[0]
    assert expect_1d(f, q) == pytest.approx(ref1, abs=1e-9)
    cov = np.array([[q, c * q], [c * q, q]])
    inv, det = np.linalg.inv(cov), np.linalg.det(cov)

    def integrand(v, u):
        z = np.array([u, v])
        return f(u) * g(v) * np.exp(-0.5 * z @ inv @ z) / (2 * math.pi * math.sqrt(det))

    lim = 12 * math.sqrt(q)
    ref2 = integrate.dblquad(integrand, -lim, lim, -lim, lim, epsabs=1e-10)[0]
    assert expect_2d(f, g, q, q, c) == pytest.approx(ref2, abs=1e-7)


@pytest.mark.parametrize(
    "surrogate,noise",
    [("deterministic", "sign"), ("deterministic", "gaussian"), ("deterministic", "logistic"),
     ("lrt", "gaussian")],
)
def test_closed_forms_agree_with_quadrature(surrogate, noise):
    """The erf closed forms used by the maps against plain quadrature."""
    nrn = layer_neuron(surrogate, noise, 0.8, sigma=0.3)
    v = nrn.erf_var
    assert v is not None and v > 0

    def phi(h):
        return erf(h / math.sqrt(2 * v))

    def dphi(h):
        return math.sqrt(2 / (math.pi * v)) * np.exp(-h * h / (2 * v))

    q, c = 0.9, 0.4
    Qa, _, C, D = nrn.second_moments(q, q, c * q)
    assert Qa == pytest.approx(expect_1d(lambda h: phi(h) ** 2, q), abs=1e-10)
    assert C == pytest.approx(expect_2d(phi, phi, q, q, c), abs=1e-10)
    assert D == pytest.approx(expect_2d(dphi, dphi, q, q, c), abs=1e-10)


@pytest.mark.parametrize("noise", NOISE_NAMES)
@pytest.mark.parametrize("scale", [0.5, 1.7])
def test_numpy_neurons_match_torch_noise_models(noise, scale):
    model = NOISES[noise](scale) if noise != "sign" else NOISES[noise]()
    s = model.scale
    h = np.linspace(-3, 3, 41)
    ht = torch.tensor(h, dtype=torch.float64)
    # pointwise neuron (S2/S3/sampled) = noise.phi
    point = layer_neuron("lrt", noise, s)
    ref = model.phi(ht).numpy()
    ours = np.sign(h) if point.erf_var == 0.0 else (
        erf(h / math.sqrt(2 * point.erf_var)) if point.erf_var is not None else point.phi(h)
    )
    np.testing.assert_allclose(np.where(h == 0, ref, ours), ref, atol=1e-12)
    # S1 neuron = noise.gaussian_mean(slope * hbar, Sigma + 1e-4), the torch surrogate's own
    sigma = 0.37
    for slope in (1.0, UNIT_SLOPE, 0.6):
        smooth = layer_neuron("deterministic", noise, s, sigma=sigma, slope=slope)
        var = torch.full_like(ht, sigma)
        ref = neuron_mean(model, ht, var, slope).numpy()
        ours = smooth.phi(h) if smooth.erf_var is None else erf(h / math.sqrt(2 * smooth.erf_var))
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_fixed_point_is_a_fixed_point_of_propagate():
    for surrogate, noise in [("deterministic", "gaussian"), ("lrt_continuous", "logistic"),
                             ("lrt", "uniform"), ("deterministic", "sign")]:
        fp = fixed_point(surrogate, noise, 0.7, 0.05)
        p = propagate(surrogate, noise, 0.7, 0.05, depth=200, c0=0.3)
        assert p.q[-1] == pytest.approx(fp.q_star, rel=1e-6)
        assert p.c[-1] == pytest.approx(fp.c_star, abs=1e-4)
        assert 0 < fp.chi_1 < 1 and fp.xi_c > 0


def test_literal_sign_map_has_no_exact_critical_point():
    # the open point: chi_1 < 0.64 everywhere with sigma_b2 > 0, sigma_m2 <= 1
    pd = phase_diagram("deterministic", "sign", np.linspace(0.05, 1, 12), [1e-3, 0.05, 0.2])
    assert pd["chi_1"].max() < 0.7
    ci = critical_init("deterministic", "sign", depth=20)
    assert not ci.exact and ci.criterion.startswith("depth-aware")
    assert 0.01 <= ci.sigma_m2 <= 0.99


def test_unit_slope_puts_the_critical_line_in_reach():
    # S1 with sign neurons and slope sqrt(pi/2): at sigma_b2 -> 0 the field collapses and the
    # neuron is linear with slope 1 in the normalised field, so chi_1 = sigma_m2 (up to the
    # 1e-4 the network adds to Sigma)
    for sm2 in (0.5, 0.9, 0.99):
        fp = fixed_point("deterministic", "sign", sm2, 0.0, slope=UNIT_SLOPE)
        assert fp.chi_1 == pytest.approx(sm2, rel=1e-3)
        assert fp.xi_c == pytest.approx(-1.0 / math.log(sm2), rel=2e-2)
    literal = fixed_point("deterministic", "sign", 0.99, 0.0)
    assert literal.chi_1 == pytest.approx(0.99 * 2 / math.pi, rel=1e-3)
    # the depth-aware choice moves towards 1 with depth (slope-1 map: 0.64 at depth 5 ...
    # 0.98 at depth 50), and the batched search agrees with propagate
    chosen = [
        critical_init("deterministic", "sign", depth=d, slope=UNIT_SLOPE) for d in (5, 20, 50)
    ]
    assert [round(c.sigma_m2, 2) for c in chosen] == [0.64, 0.9, 0.98]
    for c, d in zip(chosen, (5, 20, 50)):
        p = propagate("deterministic", "sign", c.sigma_m2, c.sigma_b2, d, slope=UNIT_SLOPE)
        assert c.correlation_sensitivity == pytest.approx(math.exp(p.log_chi_product), rel=1e-6)
        assert c.slope == UNIT_SLOPE and c.as_dict()["slope"] == UNIT_SLOPE
    with pytest.raises(ValueError, match="slope=2.0 applies to surrogate='deterministic' only"):
        critical_init("lrt", "gaussian", depth=5, slope=2.0)
    with pytest.raises(ValueError, match="finite number > 0"):
        propagate("deterministic", "sign", 0.5, 0.0, 3, slope=0.0)


def test_exact_critical_point_where_one_exists():
    # S2 with a slope-1 neuron: critical at the corner (1, 0) [SGL20]
    for noise, scale in [("uniform", 1.0), ("logistic", 0.5), ("gaussian", math.sqrt(2 / math.pi))]:
        ci = critical_init("lrt_continuous", noise, sigma_b2=0.0, noise_scale=scale)
        assert ci.exact and ci.criterion == "exact chi_1=1", (noise, ci.message)
        assert ci.sigma_m2 == pytest.approx(1.0)
        assert ci.fixed_point.chi_1 == pytest.approx(1.0, abs=1e-6)
        assert ci.fixed_point.c_star == 1.0
    # ... but not with a bias (chi_1 = 0.985 at sigma_m2 = 1), and chi_1 = 1 in S3 is not
    # criticality: c = 1 is no fixed point there, the stable c* < 1 has a slope < 1.
    assert not critical_init("lrt_continuous", "uniform", sigma_b2=1e-3).exact
    assert fixed_point("lrt", "gaussian", 0.6816, 1e-3, noise_scale=0.3).chi_1 == pytest.approx(
        1.0, abs=1e-3
    )
    ci = critical_init("lrt", "gaussian", noise_scale=0.3)
    assert not ci.exact and ci.fixed_point.xi_c < 5


def test_depth_aware_criterion_maximises_correlation_sensitivity():
    ci = critical_init("deterministic", "sign", depth=10)
    best = propagate("deterministic", "sign", ci.sigma_m2, ci.sigma_b2, 10).log_chi_product
    for sm2 in (0.5, 0.8, 0.9, 0.99):
        assert propagate("deterministic", "sign", sm2, ci.sigma_b2, 10).log_chi_product <= best
    assert ci.correlation_sensitivity == pytest.approx(math.exp(best))


#: (surrogate, noise, depth) solved by critical_init's vectorised search (sigma_b2 = 1e-3)
_SEARCH_CASES = [
    ("deterministic", "sign", 10),
    ("deterministic", "gaussian", 2),
    ("deterministic", "uniform", 1),
    ("deterministic", "uniform", 100),
    ("lrt", "logistic", 100),
    ("lrt", "uniform", 30),
    ("lrt_continuous", "logistic", 10),
    ("lrt_continuous", "uniform", 100),
    ("sampled", "uniform", 50),
    ("binary", "gaussian", 10),
]


def _observed_chi_c(p, c_star):
    """Slope of the c-map at c*, read off the geometric approach of propagate's c to c*."""
    err = np.abs(p.c - c_star)
    ok = (err > 1e-9) & (err < 1e-3)
    ratios = err[1:][ok[1:] & ok[:-1]] / err[:-1][ok[1:] & ok[:-1]]
    assert len(ratios) >= 5, "c did not settle geometrically"
    return float(np.median(ratios[-20:]))


@pytest.mark.parametrize("surrogate, noise, depth", _SEARCH_CASES)
def test_critical_init_is_the_brute_force_optimum(surrogate, noise, depth):
    """Ground truth for the vectorised search (``_batch.log_sensitivity`` + zoomed grids):
    the scalar ``propagate`` evaluated on a brute-force grid of sigma_m2 (25 points over
    [0.01, 0.99], then 11 around the best).  The solver's choice scores at least the grid's
    best and lies within 0.01 of it; the reported sensitivity is propagate's at that choice;
    xi_c = -1/ln chi_c, with chi_c observed as the rate at which propagate's c approaches c*
    over 300 or more layers.  (These replace golden values recorded from an earlier
    implementation.)"""
    theory = "lrt" if surrogate == "sampled" else surrogate
    ci = critical_init(surrogate, noise, depth=depth)
    assert ci.sigma_b2 == 1e-3

    def log_sens(v):
        return propagate(theory, noise, v, 1e-3, depth).log_chi_product

    coarse = np.linspace(0.01, 0.99, 25)
    i = int(np.argmax([log_sens(v) for v in coarse]))
    fine = np.linspace(coarse[max(i - 1, 0)], coarse[min(i + 1, 24)], 11)
    values = [log_sens(v) for v in fine]
    best = int(np.argmax(values))
    assert math.log(ci.correlation_sensitivity) >= values[best] - 1e-5
    assert ci.sigma_m2 == pytest.approx(fine[best], abs=0.01)
    assert math.log(ci.correlation_sensitivity) == pytest.approx(log_sens(ci.sigma_m2), abs=1e-9)
    fp = ci.fixed_point
    n_layers = int(min(max(300, 40 * fp.xi_c), 3000))  # long enough to settle
    long_run = propagate(theory, noise, ci.sigma_m2, 1e-3, n_layers, c0=0.3)
    chi_c = _observed_chi_c(long_run, fp.c_star)
    # 2%: the c-map and its slope are separate quadratures (measured agreement 0.1-1.3%)
    assert fp.chi_c == pytest.approx(chi_c, rel=2e-2)
    assert fp.xi_c == pytest.approx(-1.0 / math.log(chi_c), rel=5e-2)


def test_batched_log_sensitivity_matches_propagate():
    from sklearn_bnn.meanfield._batch import log_sensitivity

    sm2 = np.array([0.05, 0.5, 0.93, 0.99])
    for surrogate, noise in [("deterministic", "uniform"), ("deterministic", "logistic"),
                             ("lrt", "logistic"), ("lrt", "uniform"), ("lrt", "sign"),
                             ("lrt_continuous", "uniform"), ("lrt_continuous", "gaussian"),
                             ("binary", "gaussian"), ("binary", "sign")]:
        s = 0.0 if noise == "sign" else 0.7
        got = log_sensitivity(surrogate, noise, s, sm2, 0.01, 12)
        want = [
            propagate(surrogate, noise, m, 0.01, 12, noise_scale=s).log_chi_product for m in sm2
        ]
        np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=f"{surrogate} {noise}")


@pytest.mark.parametrize("sigma_m2, sigma_b2", [(0.5, 0.0), (0.2, 0.01), (0.9, 0.3)])
def test_binary_fixed_point_is_the_closed_form_with_folded_thresholds(sigma_m2, sigma_b2):
    # c' = ((2/pi) arcsin c + b)/(1 + b), b = sigma_b2/sigma_m2 (bias folded into the
    # threshold b/mean|M|); its fixed point by bisection and its slope there
    b = sigma_b2 / sigma_m2

    def excess(c):
        return (2 / math.pi * math.asin(c) + b) / (1 + b) - c

    lo, hi = -0.999999, 0.999999
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    c_star = 0.5 * (lo + hi)
    chi_c = 2 / math.pi / math.sqrt(1 - c_star**2) / (1 + b)
    fp = fixed_point("binary", "gaussian", sigma_m2, sigma_b2)
    assert fp.c_star == pytest.approx(c_star, abs=1e-9)
    assert fp.chi_c == pytest.approx(chi_c, rel=1e-7)
    assert fp.xi_c == pytest.approx(-1 / math.log(chi_c), rel=1e-7)


def test_glorot_means_are_deep_in_the_ordered_phase():
    sigma_m2 = 2.0 / (2 * 256)  # Glorot on the means, width 256
    fp = fixed_point("deterministic", "gaussian", sigma_m2, 0.0)
    assert fp.chi_1 < 0.01 and fp.xi_c < 0.3


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"surrogate": "lrtt", "noise": "sign"}, "surrogate='lrtt' is not valid"),
        ({"surrogate": "lrt", "noise": "cauchy"}, "noise='cauchy' is not valid"),
        ({"surrogate": "lrt", "noise": "sign", "sigma_m2": 1.5}, "sigma_m2=1.5 must lie in"),
        ({"surrogate": "lrt_continuous", "noise": "sign"}, "needs a continuous neuron"),
    ],
)
def test_invalid_arguments_raise_clear_errors(kwargs, match):
    args = {"sigma_m2": 0.5, "sigma_b2": 0.1, "depth": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        propagate(**args)


def test_meanfield_does_not_import_torch():
    # The package __init__ imports the estimator (and torch); load sklearn_bnn as a bare
    # namespace so that only the meanfield subpackage and what it imports get executed.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import sys, types\n"
        "pkg = types.ModuleType('sklearn_bnn'); "
        f"pkg.__path__ = [{os.path.join(root, 'sklearn_bnn')!r}]\n"
        "sys.modules['sklearn_bnn'] = pkg\n"
        "import sklearn_bnn.meanfield, sklearn_bnn.meanfield.plot, sklearn_bnn.meanfield._cli\n"
        "sklearn_bnn.meanfield.critical_init('deterministic', 'sign', depth=5)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

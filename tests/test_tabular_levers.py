"""The tabular levers: fused 1-bit ST step, thermometer encoding, real first layer,
cosine schedule, sparse input.  References: autograd, numpy written independently."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_bnn import BinaryNetClassifier
from sklearn_bnn.encoding import ThermometerEncoder
from sklearn_bnn.init import initialize_network
from sklearn_bnn.nn import BinaryNetwork, RealLinear
from sklearn_bnn.nn.estimators import _st_binary, _st_binary_autograd

IRIS_X, IRIS_Y = load_iris(return_X_y=True)
IRIS_X = (IRIS_X - IRIS_X.mean(0)) / IRIS_X.std(0)


def _fit(**params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BinaryNetClassifier(random_state=0, **params).fit(IRIS_X, IRIS_Y)


# ------------------------------------------------------------------ fused ST step
@pytest.mark.parametrize("noise", ["gaussian", "logistic", "uniform"])
@pytest.mark.parametrize("first_layer", ["binary", "real"])
@pytest.mark.parametrize("code_start", [None, 0, 3])
def test_fused_binary_st_equals_autograd(noise, first_layer, code_start):
    """BinaryST's hand-written backward == autograd through the unfused graph (float64),
    including the gradient through alpha = mean|M| and a row with a zero mean; with
    ``code_start``, the input's +-1 columns from there on multiplied apart (in integers)."""
    torch.manual_seed(0)
    n_in = 40  # with a code: at least INT8_MIN_COLUMNS +-1 columns, multiplied apart
    net = BinaryNetwork(
        n_in, (33, 17), 3, noise=noise, first_layer=first_layer, code_start=code_start
    ).double()
    initialize_network(net, 0.3)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.add_(0.2 * torch.randn_like(layer.weight)).clamp_(-1, 1)
            layer.bias.normal_()
        net.layers[1].weight[0, 0] = 0.0  # sign(0) = +1 forward, sgn(0) = 0 in d|M|
    x = torch.randn(20, n_in, dtype=torch.float64)
    if code_start is not None:  # a thermometer code's bits from there on
        x[:, code_start:] = torch.where(x[:, code_start:] < 0.3, -1.0, 1.0)
    x.requires_grad_()
    g = torch.randn(20, 17, dtype=torch.float64)
    results = []
    for forward in (_st_binary, _st_binary_autograd):
        net.zero_grad()
        x.grad = None
        out = forward(net, x, "matched", None)
        (out * g).sum().backward()
        results.append(
            [out.detach(), x.grad.clone(), *(p.grad.clone() for p in net.layers.parameters())]
        )
    for fused, reference in zip(*results):
        torch.testing.assert_close(fused, reference, rtol=1e-12, atol=1e-12)
    assert any(p.abs().sum() > 0 for p in results[0][2:])  # gradients are not all zero


# ------------------------------------------------------------------ thermometer code
def test_thermometer_thresholds_are_quantiles_and_bits_count_them():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.standard_normal(500), rng.integers(0, 3, 500), np.ones(500)])
    enc = ThermometerEncoder(n_bins=5).fit(X)
    # column 0: the 4 inner quantiles, each moved into the gap between the adjacent
    # distinct values around it, at the golden section of the gap; column 1: between 0|1
    # and 1|2; column 2: nothing
    x0 = np.unique(X[:, 0].astype(np.float32)).astype(np.float64)
    q = np.quantile(X[:, 0].astype(np.float32).astype(np.float64), [0.2, 0.4, 0.6, 0.8])
    above = np.searchsorted(x0, q.astype(np.float32), side="left")
    golden = (3 - 5**0.5) / 2
    cut = (x0[above - 1] + golden * (x0[above] - x0[above - 1])).astype(np.float32)
    np.testing.assert_array_equal(enc.threshold_[enc.feature_ == 0], cut)
    np.testing.assert_array_equal(enc.threshold_[enc.feature_ == 1], np.float32([0, 1]) + golden)
    assert not (enc.feature_ == 2).any()
    # every training row keeps the bit its quantile cut gives it
    cut_bits = X[:, [0]].astype(np.float32) >= q.astype(np.float32)
    np.testing.assert_array_equal(enc.transform(X)[:, 3:7] > 0, cut_bits)
    Z = enc.transform(X)
    assert Z.dtype == np.float32 and Z.shape == (500, 3 + 6)
    np.testing.assert_array_equal(Z[:, :3], X.astype(np.float32))
    # independent reference: the number of +1 bits of a feature is the number of its
    # thresholds at or below the value
    X32 = X.astype(np.float32)
    for j in (0, 1):
        t = np.sort(enc.threshold_[enc.feature_ == j])
        n_on = ((Z[:, 3:][:, enc.feature_ == j] + 1) / 2).sum(axis=1)
        np.testing.assert_array_equal(n_on, np.searchsorted(t, X32[:, j], side="right"))
    names = enc.get_feature_names_out(["a", "b", "c"])
    assert list(names[:4]) == ["a", "b", "c", f"a >= {enc.threshold_[0]:g}"]


def test_thermometer_without_raw_and_bad_n_bins():
    X = np.arange(10.0).reshape(-1, 1)
    enc = ThermometerEncoder(n_bins=2, keep_raw=False).fit(X)
    np.testing.assert_array_equal(enc.transform(X).ravel(), np.where(X.ravel() >= 4.5, 1, -1))
    # the median 4.5 lies between 4 and 5: the threshold is the golden section of that gap
    assert enc.threshold_[0] == np.float32(4 + (3 - 5**0.5) / 2)
    with pytest.raises(ValueError, match="n_bins"):
        ThermometerEncoder(n_bins=1).fit(X)


@pytest.mark.parametrize("seed", [0, 1])
def test_no_training_value_sits_on_a_threshold(seed):
    # discrete columns put quantile cuts exactly on training values; an ulp of rounding
    # (float32 vs float64 scaling) then moved rows across them
    rng = np.random.default_rng(seed)
    X = np.column_stack([
        rng.integers(0, 17, 400), rng.poisson(2, 400), rng.standard_normal(400),
        np.repeat([0.0, 1.0], [397, 3]),
    ]).astype(np.float32)
    enc = ThermometerEncoder(n_bins=16).fit(X)
    for j in range(X.shape[1]):
        t = enc.threshold_[enc.feature_ == j]
        assert len(t) and not np.isin(t, X[:, j]).any()
    bits = enc.transform(X)[:, X.shape[1]:]
    for direction in (-np.inf, np.inf):
        moved = enc.transform(np.nextafter(X, np.float32(direction)))
        np.testing.assert_array_equal(moved[:, X.shape[1]:], bits)


def test_thresholds_stay_between_adjacent_float32_values():
    # two distinct values one ulp apart: the threshold is the upper one, never the lower
    lo = np.float32(1.0)
    hi = np.nextafter(lo, np.float32(2))
    X = np.array([[lo]] * 5 + [[hi]] * 5, dtype=np.float32)
    enc = ThermometerEncoder(n_bins=2, keep_raw=False).fit(X)
    assert enc.threshold_.tolist() == [hi]
    np.testing.assert_array_equal(enc.transform(X).ravel(), [-1] * 5 + [1] * 5)


@pytest.mark.parametrize("encoding", ["thermometer", "raw+thermometer"])
def test_estimator_encodes_its_inputs(encoding):
    # linear=False: the network's own logits are the whole prediction
    clf = _fit(hidden_layer_sizes=(16,), max_iter=3, encoding=encoding, n_bins=4, linear=False)
    width = clf.encoder_.n_features_out_
    assert clf.net_.module_.layers[0].in_features == width
    assert width == 4 * (encoding == "raw+thermometer") + 4 * 3  # 3 thresholds per feature
    # the network sees exactly the encoder's output
    Z = torch.as_tensor(clf.encoder_.transform(IRIS_X))
    logits = clf.net_.module_(Z, mode="binary")
    np.testing.assert_array_equal(clf.predict(IRIS_X), clf.classes_[logits.argmax(1).numpy()])
    assert _fit(hidden_layer_sizes=(16,), max_iter=3, encoding="raw").encoder_ is None


# ------------------------------------------------------------------ real first layer
def test_real_first_layer_is_used_as_real_weights():
    clf = _fit(hidden_layer_sizes=(16, 8), max_iter=3, first_layer="real", encoding="raw")
    module = clf.net_.module_
    assert isinstance(module.layers[0], RealLinear) and not isinstance(module.layers[1], RealLinear)
    layer = module.layers[0]
    x = torch.as_tensor(IRIS_X, dtype=torch.float32)
    expected = x @ layer.weight.detach().T / math.sqrt(4) + layer.bias.detach()
    torch.testing.assert_close(layer.binary_forward(x).detach(), expected)
    assert len(torch.unique(layer.weight.detach().abs())) > 2  # trained away from +-sigma_m


def test_real_first_layer_rejects_binary_weight_estimators():
    with pytest.raises(ValueError, match="first_layer='real'.*binary weights only"):
        _fit(first_layer="real", surrogate="sampled", gradient_estimator="reinforce")
    assert not hasattr(BinaryNetClassifier(first_layer="real"), "net_")
    auto = _fit(
        hidden_layer_sizes=(8,), max_iter=2, surrogate="sampled", gradient_estimator="reinforce"
    )
    assert auto.net_.module_.first_layer == "binary"
    # "auto" is binary for every plain network (the +-1 weights learn at binary_learning_rate)
    assert _fit(hidden_layer_sizes=(8,), max_iter=2).net_.module_.first_layer == "binary"


# ------------------------------------------------------------------ schedule
def test_cosine_schedule_per_epoch_and_constant_partial_fit():
    clf = _fit(hidden_layer_sizes=(8,), max_iter=4, learning_rate="cosine", learning_rate_init=0.01)
    lrs = [row["lr"] for row in clf.history_]
    np.testing.assert_allclose(
        lrs, [0.01 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    )
    clf.partial_fit(IRIS_X, IRIS_Y)
    assert clf.history_[-1]["lr"] == 0.01


def test_cosine_schedule_reaching_max_iter_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BinaryNetClassifier((8,), max_iter=3, learning_rate="cosine", random_state=0).fit(
            IRIS_X, IRIS_Y
        )


# ------------------------------------------------------------------ sparse input
def test_sparse_input_equals_dense():
    dense = _fit(hidden_layer_sizes=(16,), max_iter=3)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        clf = BinaryNetClassifier((16,), max_iter=3, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(fmt(IRIS_X), IRIS_Y)
        np.testing.assert_array_equal(clf.predict_proba(fmt(IRIS_X)), dense.predict_proba(IRIS_X))


def test_pipeline_with_default_one_hot_encoder():
    """A default OneHotEncoder outputs CSR; the estimator takes it (and so does export)."""
    rng = np.random.default_rng(0)
    X = rng.choice(["red", "green", "blue", "cyan"], (200, 3)).astype(object)
    y = (X[:, 0] == "red") ^ (X[:, 1] == "blue")
    pre = OneHotEncoder()
    assert sp.issparse(pre.fit_transform(X))  # what the estimator receives
    model = make_pipeline(pre, BinaryNetClassifier((32,), max_iter=60, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    assert model.score(X, y) > 0.85  # measured 0.94 (XOR of two colours, 60 epochs)
    Xt = pre.transform(X)
    np.testing.assert_array_equal(model[-1].export_binary().predict(Xt.toarray()), model.predict(X))
    mixed = make_column_transformer(
        (OneHotEncoder(), [0, 1]), (StandardScaler(), [2]), sparse_threshold=1.0
    )
    assert sp.issparse(mixed.fit_transform(np.column_stack([X[:, :2], rng.standard_normal(200)])))


# ------------------------------------------------------------------ exact export
@pytest.mark.parametrize("surrogate", ["binary", "deterministic", "lrt", "sampled"])
@pytest.mark.parametrize(
    ("first_layer", "encoding"),
    [("real", "raw+thermometer"), ("binary", "thermometer"), ("real", "raw")],
)
def test_export_with_code_and_real_first_layer_is_exact(surrogate, first_layer, encoding, tmp_path):
    rng = np.random.default_rng(1)
    X = np.vstack([IRIS_X, rng.standard_normal((300, 4)) * 2])
    X[:40, 1] = np.round(X[:40, 1], 1)  # ties at the thresholds
    clf = _fit(
        hidden_layer_sizes=(24, 16),
        max_iter=4,
        surrogate=surrogate,
        first_layer=first_layer,
        encoding=encoding,
        n_bins=5,
    )
    packed = clf.export_binary()
    assert (packed.layers[0].weight is not None) == (first_layer == "real")
    assert (packed.code is not None) == (encoding != "raw")
    expected = clf.set_params(inference="binary").predict_proba(X)
    for backend in ("matmul", "popcount"):
        packed.backend = backend
        np.testing.assert_array_equal(packed.predict(X), clf.predict(X))
        np.testing.assert_allclose(packed.predict_proba(X), expected, atol=1e-6)
    packed.save(tmp_path / "m.npz")
    loaded = type(packed).load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.logits(X), packed.logits(X))
    assert loaded.n_features_in_ == 4 and loaded.nbytes == packed.nbytes


@pytest.mark.parametrize("change", [{"encoding": "raw"}, {"n_bins": 4}, {"first_layer": "real"}])
def test_warm_start_refuses_a_changed_code_or_first_layer(change):
    clf = _fit(hidden_layer_sizes=(8,), max_iter=2, warm_start=True)
    before = clf.predict_proba(IRIS_X)
    with pytest.raises(ValueError, match=f"{next(iter(change))}.*changed"):
        clf.set_params(**change).fit(IRIS_X, IRIS_Y)
    np.testing.assert_array_equal(clf.predict_proba(IRIS_X), before)


def test_format_1_files_still_load(tmp_path):
    """A file written before format 2 (no first-layer kind, no code) reads as before."""
    import io
    import json
    import zipfile

    packed = _fit(
        hidden_layer_sizes=(8,), max_iter=2, first_layer="binary", encoding="raw", linear=False
    )
    packed = packed.export_binary()
    buffer = io.BytesIO()
    packed.save(buffer)
    arrays = dict(np.load(io.BytesIO(buffer.getvalue())))
    header = json.loads(arrays["header"].tobytes())
    for key in ("n_network_inputs", "first_layer", "code", "linear"):
        del header[key]
    header["version"] = 1
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(tmp_path / "v1.npz", **arrays)
    assert zipfile.is_zipfile(tmp_path / "v1.npz")
    loaded = type(packed).load(tmp_path / "v1.npz")
    np.testing.assert_array_equal(loaded.logits(IRIS_X), packed.logits(IRIS_X))


def test_rare_levels_get_a_bit_and_an_empty_code_is_an_error():
    X = np.zeros((100, 3))
    X[:5, 0] = 1.0  # a one-hot column with 5% ones: every quantile cut sits at 0
    X[:, 1] = np.arange(100)
    enc = ThermometerEncoder(n_bins=8, keep_raw=False).fit(X)
    # one bit, between the two levels: the rare rows are +1, the rest -1
    golden = np.float32((3 - 5**0.5) / 2)
    np.testing.assert_array_equal(enc.threshold_[enc.feature_ == 0], [golden])
    np.testing.assert_array_equal(enc.transform(X)[:, enc.feature_ == 0].ravel() > 0, X[:, 0] > 0)
    assert not (enc.feature_ == 2).any()  # constant: no bit
    with pytest.raises(ValueError, match="no feature with two distinct values"):
        ThermometerEncoder(keep_raw=False).fit(np.ones((20, 3)))
    with pytest.raises(ValueError, match="no feature with two distinct values"):
        BinaryNetClassifier((4,), encoding="thermometer", max_iter=1).fit(
            np.ones((50, 3)), np.arange(50) % 2
        )


def test_a_grid_value_missing_from_training_is_not_on_a_threshold():
    """Integer ages with one missing from the training rows: the midpoint of its gap would
    be that age; the golden-section cut is 0.24 of a step away, so a new row of that
    age keeps its bits when the scaler's rounding moves it one float32 ulp either way."""
    ages = np.repeat(np.arange(20, 60), 5).astype(float)
    train = ages[ages != 41][:, None]
    scaler = StandardScaler().fit(train)
    enc = ThermometerEncoder(n_bins=40, keep_raw=False).fit(scaler.transform(train))
    new = scaler.transform([[41.0]]).astype(np.float32)
    lo, hi = scaler.transform([[40.0], [42.0]]).ravel()
    assert np.float32((lo + hi) / 2) == new[0, 0]  # the midpoint sits on the new row
    step = scaler.transform([[21.0]])[0, 0] - scaler.transform([[20.0]])[0, 0]
    assert np.abs(enc.threshold_ - new[0, 0]).min() > step / 5  # (1 - 2 x 0.382) steps
    moved = [np.nextafter(new, np.float32(d)) for d in (-np.inf, np.inf)]
    for row in moved:
        np.testing.assert_array_equal(enc.transform(row), enc.transform(new))


def test_unfitted_estimator_stays_unfitted_through_pickle():
    import pickle

    from sklearn.exceptions import NotFittedError

    clf = pickle.loads(pickle.dumps(BinaryNetClassifier()))
    with pytest.raises(NotFittedError):
        clf.predict(IRIS_X)


def test_summary_counts_the_input_code_and_the_real_first_layer():
    clf = _fit(hidden_layer_sizes=(8, 8), max_iter=2, first_layer="real")
    rows = {row["layer"]: row for row in clf.summary().rows}
    packed = clf.export_binary()
    assert rows["input code"]["packed_bytes"] == packed.code.nbytes
    assert rows["real 1"]["binary_weights"] == 0 and rows["binary 2"]["binary_weights"] == 64
    assert clf.summary().total["packed_bytes"] == packed.nbytes


def test_all_binary_files_keep_format_1(tmp_path):
    import json

    # linear=False: a linear term raises the version to 3 (tests/test_linear.py)
    for params, version in (({"first_layer": "binary", "encoding": "raw"}, 1), ({}, 2)):
        packed = _fit(hidden_layer_sizes=(8,), max_iter=1, linear=False, **params)
        packed = packed.export_binary()
        packed.save(tmp_path / "m.npz")
        header = json.loads(np.load(tmp_path / "m.npz")["header"].tobytes())
        assert header["version"] == version

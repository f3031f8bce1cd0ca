"""ONNX export: onnxruntime against the estimator's own predict, for every surrogate."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor, PackedBinaryNetwork
from sklearn_bnn.nn import BinaryNetwork
from sklearn_bnn.nn.bridge import pack_module

pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
bnn_onnx = pytest.importorskip("sklearn_bnn.onnx")

pytestmark = pytest.mark.usefixtures("one_thread")

SURROGATES = ("binary", "deterministic", "lrt", "sampled")

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
_rng = np.random.default_rng(0)
# 17 classes, features on scales 0.1 to 10 (the scaler matters), test points off the grid
X_RANDOM = _rng.normal(size=(340, 11)) * _rng.uniform(0.1, 10.0, size=11)
Y_RANDOM = np.arange(340) % 17
X_RANDOM_TEST = _rng.normal(size=(2000, 11)) * 5.0


def fit_pipeline(X, y, surrogate="binary", hidden=(48, 24), seed=0, **params):
    # the all-binary network on raw features (first_layer="real" and the input code are
    # covered by fit_coded below)
    params = {"first_layer": "binary", "encoding": "raw", **params}
    clf = BinaryNetClassifier(
        hidden, surrogate=surrogate, max_iter=2, learning_rate_init=3e-2, random_state=seed,
        **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make_pipeline(StandardScaler(), clf).fit(X, y)


def assert_same_as_predict(model, onnx_model, X):
    label, proba = bnn_onnx.OnnxPredictor(onnx_model).run(X)
    np.testing.assert_array_equal(label, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def digits_pipeline():
    return fit_pipeline(X_DIGITS[::3], Y_DIGITS[::3])


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_digits_pipeline_equals_predict(surrogate):
    pipe = fit_pipeline(X_DIGITS[::3], Y_DIGITS[::3], surrogate, seed=1)
    assert_same_as_predict(pipe, bnn_onnx.to_onnx(pipe, X_DIGITS[:1]), X_DIGITS)


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_random_17_class_pipeline_equals_predict(surrogate):
    pipe = fit_pipeline(X_RANDOM, Y_RANDOM, surrogate, hidden=(37, 70, 9), seed=2)
    onnx_model = bnn_onnx.to_onnx(pipe, X_RANDOM[:1], options={"zipmap": False})
    assert_same_as_predict(pipe, onnx_model, X_RANDOM_TEST)


@pytest.mark.parametrize(
    "surrogate, noise, slope",
    [
        ("deterministic", "gaussian", 1.0),
        ("deterministic", "sign", "unit"),
        ("lrt", "logistic", 1.0),
    ],
)
def test_surrogate_inference_agrees_with_predict(surrogate, noise, slope):
    # the real-valued S1 network in float32: equal up to float32 rounding (here: labels)
    for X, y, X_test in [
        (X_DIGITS[::3], Y_DIGITS[::3], X_DIGITS),
        (X_RANDOM, Y_RANDOM, X_RANDOM_TEST),
    ]:
        clf = BinaryNetClassifier(
            (37, 20),
            surrogate=surrogate,
            noise=noise,
            slope=slope,
            inference="surrogate",
            max_iter=2,
            learning_rate_init=3e-2,
            random_state=3,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe = make_pipeline(StandardScaler(), clf).fit(X, y)
        assert_same_as_predict(pipe, bnn_onnx.to_onnx(pipe, X[:1]), X_test)


def test_column_transformer_pipeline_and_float32_input():
    columns = ColumnTransformer(
        [("scaled", StandardScaler(), list(range(6))), ("kept", "passthrough", [6, 7, 8, 9, 10])]
    )
    clf = BinaryNetClassifier((40,), max_iter=2, learning_rate_init=3e-2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(columns, clf).fit(X_RANDOM, Y_RANDOM)
    assert_same_as_predict(pipe, bnn_onnx.to_onnx(pipe, X_RANDOM[:1]), X_RANDOM_TEST)
    # float32 input: the graph scales in float32 where scikit-learn rounds float64 results,
    # so a unit within an ulp of its threshold may differ (not an exactness claim)
    X32 = X_RANDOM_TEST.astype(np.float32)
    onnx_model = bnn_onnx.to_onnx(pipe, X32[:1], options={"zipmap": False})
    assert onnx_model.graph.input[0].type.tensor_type.elem_type == 1  # FLOAT
    label = bnn_onnx.OnnxPredictor(onnx_model).predict(X32)
    assert np.mean(label == pipe.predict(X32)) >= 0.995


# ------------------------------------------------------------------ classifier conventions
def test_importing_the_module_registers_the_converter():
    code = (
        "import skl2onnx, sklearn_bnn.onnx; "
        "print(sklearn_bnn.onnx.ALIAS in skl2onnx.supported_converters())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_zipmap_options(digits_pipeline):
    # skl2onnx's own to_onnx, its three zipmap settings and nocl
    expected = digits_pipeline.predict(X_DIGITS)
    outputs = {
        True: ["output_label", "output_probability"],
        False: ["label", "probabilities"],
        "columns": ["output_label", *(f"i{c}" for c in range(10))],
    }
    for zipmap, names in outputs.items():
        onnx_model = skl2onnx.to_onnx(digits_pipeline, X_DIGITS[:1], options={"zipmap": zipmap})
        assert [o.name for o in onnx_model.graph.output] == names
        assert_same_as_predict(digits_pipeline, onnx_model, X_DIGITS)
    session = bnn_onnx.OnnxPredictor(skl2onnx.to_onnx(digits_pipeline, X_DIGITS[:1])).session
    label, dicts = session.run(None, {session.get_inputs()[0].name: X_DIGITS[:3]})
    np.testing.assert_array_equal(label, expected[:3])
    assert sorted(dicts[0]) == list(range(10))
    bnn_onnx.register()  # the explicit registration: idempotent
    onnx_model = skl2onnx.to_onnx(digits_pipeline, X_DIGITS[:1], options={"nocl": True})
    np.testing.assert_array_equal(bnn_onnx.OnnxPredictor(onnx_model).predict(X_DIGITS), expected)


@pytest.mark.parametrize("zipmap", [True, False])
def test_string_labels(zipmap):
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    pipe = fit_pipeline(X_DIGITS[::4], names[Y_DIGITS[::4]], hidden=(32,))
    onnx_model = bnn_onnx.to_onnx(pipe, X_DIGITS[:1], options={"zipmap": zipmap})
    label, proba = bnn_onnx.OnnxPredictor(onnx_model).run(X_DIGITS)
    assert label.dtype == object and isinstance(label[0], str)
    np.testing.assert_array_equal(label, pipe.predict(X_DIGITS))
    np.testing.assert_allclose(proba, pipe.predict_proba(X_DIGITS), rtol=0, atol=1e-5)


def test_two_integral_float_labels_become_int64():
    pipe = fit_pipeline(X_RANDOM, np.where(Y_RANDOM % 2 == 0, 1.0, 3.0), hidden=(16,))
    label, proba = bnn_onnx.OnnxPredictor(bnn_onnx.to_onnx(pipe, X_RANDOM[:1])).run(X_RANDOM_TEST)
    assert label.dtype == np.int64 and proba.shape == (len(X_RANDOM_TEST), 2)
    np.testing.assert_array_equal(label, pipe.predict(X_RANDOM_TEST))


# ------------------------------------------------------------------ errors
def test_mc_inference_is_a_clear_error(digits_pipeline):
    digits_pipeline.set_params(binarynetclassifier__inference="mc")
    try:
        with pytest.raises(ValueError, match="inference='mc' does not convert") as exc:
            bnn_onnx.to_onnx(digits_pipeline, X_DIGITS[:1])
        assert "random draws" in str(exc.value)
        assert "inference='binary' converts" in str(exc.value)
    finally:
        digits_pipeline.set_params(binarynetclassifier__inference="binary")


def test_surrogate_inference_with_uniform_noise_is_a_clear_error():
    clf = BinaryNetClassifier((8,), noise="uniform", inference="surrogate", max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_RANDOM, Y_RANDOM)
    with pytest.raises(ValueError, match="noise 'uniform' does not convert"):
        bnn_onnx.to_onnx(clf, X_RANDOM[:1])


def test_opset_below_13_is_refused_and_13_works(digits_pipeline):
    with pytest.raises(ValueError, match="needs opset 13 or higher"):
        bnn_onnx.to_onnx(digits_pipeline, X_DIGITS[:1], target_opset=12)
    onnx_model = bnn_onnx.to_onnx(digits_pipeline, X_DIGITS[:1], target_opset=13)
    assert {o.domain: o.version for o in onnx_model.opset_import}[""] == 13
    assert_same_as_predict(digits_pipeline, onnx_model, X_DIGITS)
    digits_pipeline.set_params(binarynetclassifier__inference="surrogate")  # ReduceSum, Erf
    try:
        onnx_model = bnn_onnx.to_onnx(digits_pipeline, X_DIGITS[:1], target_opset=13)
        assert_same_as_predict(digits_pipeline, onnx_model, X_DIGITS)
    finally:
        digits_pipeline.set_params(binarynetclassifier__inference="binary")
    packed = digits_pipeline[-1].export_binary()
    with pytest.raises(ValueError, match="target_opset=12 is not available"):
        bnn_onnx.to_onnx(packed, target_opset=12)


@pytest.mark.parametrize("missing", ["skl2onnx", "onnx", "onnxruntime"])
def test_missing_onnx_packages_name_the_extra(monkeypatch, digits_pipeline, missing):
    packed = digits_pipeline[-1].export_binary()
    onnx_model = bnn_onnx.to_onnx(packed)
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` raise ImportError
    call = {
        "skl2onnx": lambda: bnn_onnx.to_onnx(digits_pipeline, X_DIGITS[:1]),
        "onnx": lambda: bnn_onnx.to_onnx(packed),
        "onnxruntime": lambda: bnn_onnx.OnnxPredictor(onnx_model),
    }[missing]
    with pytest.raises(ImportError, match=rf"needs the '{missing}' package") as exc:
        call()
    assert 'pip install "sklearn-bnn[onnx]"' in str(exc.value)
    assert "pip install onnx skl2onnx onnxruntime" in str(exc.value)


# ------------------------------------------------------------------ the bare packed network
def random_network(n_features, sizes, n_outputs, seed, dtype=torch.float32):
    torch.manual_seed(seed)
    net = BinaryNetwork(n_features, sizes, n_outputs).to(dtype)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.uniform_(-1.0, 1.0)
            layer.bias.normal_(0.0, 0.5)
    return net


def graph_units(onnx_model, X, n_layers):
    """Every binary layer's units (bool) read from the graph's intermediate outputs."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(onnx_model)
    names = [f"layer{k}_on" for k in range(n_layers)]
    model.graph.output.extend(
        onnx.helper.make_tensor_value_info(n, onnx.TensorProto.BOOL, None) for n in names
    )
    session = bnn_onnx.OnnxPredictor(model).session
    return session.run(names, {"X": np.asarray(X, dtype=np.float64)})


def torch_units(net, X):
    x = torch.as_tensor(X, dtype=net.layers[0].weight.dtype)
    units = []
    with torch.no_grad():
        for layer in net.layers:
            on = layer.binary_forward(x) >= 0
            units.append(on.numpy())
            x = torch.where(on, 1.0, -1.0).to(x.dtype)
    return units


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_packed_network_odd_widths_every_layer(dtype):
    # uniform means in [-1, 1] and N(0, 0.5) biases: many units near their threshold;
    # 7 x 65 and 129 x 8 weights are not whole bytes (the graph drops the padding)
    net = random_network(7, (65, 1, 129, 8), 4, seed=0, dtype=dtype)
    packed = pack_module(net, classes=np.array([3, 5, 7, 11]))
    X = np.random.default_rng(0).normal(size=(2000, 7))
    onnx_model = bnn_onnx.to_onnx(packed)
    for got, expected in zip(graph_units(onnx_model, X, 4), torch_units(net, X)):
        np.testing.assert_array_equal(got, expected)
    label, proba = bnn_onnx.OnnxPredictor(onnx_model).run(X)
    np.testing.assert_array_equal(label, packed.predict(X))
    np.testing.assert_allclose(proba, packed.predict_proba(X), rtol=0, atol=1e-6)


def test_packed_network_exact_ties_give_plus_one():
    # weights exactly +-1 (alpha = 1, offset = bias); scales 1/2 and 1/4 are exact, so
    # integer inputs hit fields of exactly 0 in both layers: the unit must be +1 there
    net = BinaryNetwork(4, (16, 3), 2)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.copy_(torch.as_tensor(rng.choice([-1.0, 1.0], size=layer.weight.shape)))
        net.layers[0].bias.copy_(torch.as_tensor(np.resize([0.0, 0.5, 1.0, -0.5], 16)))
        net.layers[1].bias.copy_(torch.tensor([0.0, 0.5, -0.5]))
    X = np.array(np.meshgrid([-1, 0, 1], [-1, 1], [0, 1], [-1, 1])).reshape(4, -1).T
    with torch.no_grad():
        x = torch.as_tensor(X, dtype=torch.float32)
        h0 = net.layers[0].binary_forward(x)
        h1 = net.layers[1].binary_forward(torch.where(h0 >= 0, 1.0, -1.0))
    assert (h0 == 0).any() and (h1 == 0).any()  # the test exercises ties in both layers
    onnx_model = bnn_onnx.to_onnx(pack_module(net))
    for got, expected in zip(graph_units(onnx_model, X, 2), torch_units(net, X)):
        np.testing.assert_array_equal(got, expected)


def test_packed_network_input_scaling_and_float32_input():
    # linear=False: the export below is rebuilt from the network's parts alone
    pipe = fit_pipeline(X_RANDOM, Y_RANDOM, hidden=(30, 20), linear=False)
    scaler, clf = pipe[0], pipe[-1]
    exported = clf.export_binary()
    packed = PackedBinaryNetwork(
        exported.layers,
        exported.head_weight,
        exported.head_bias,
        exported.classes_,
        input_offset=scaler.mean_,
        input_scale=scaler.scale_,
    )
    label, proba = bnn_onnx.OnnxPredictor(bnn_onnx.to_onnx(packed)).run(X_RANDOM_TEST)
    np.testing.assert_array_equal(label, pipe.predict(X_RANDOM_TEST))
    np.testing.assert_allclose(proba, pipe.predict_proba(X_RANDOM_TEST), rtol=0, atol=1e-5)
    # a float32 input: the same float64 scaling of the float32 values as packed.predict
    X32 = X_RANDOM_TEST.astype(np.float32)
    onnx_model = bnn_onnx.to_onnx(packed, X32[:1])
    np.testing.assert_array_equal(
        bnn_onnx.OnnxPredictor(onnx_model).predict(X32), packed.predict(X32)
    )


def test_stored_as_bits():
    # linear=False: the network's own bytes (a linear term adds float64 coefficients)
    pipe = fit_pipeline(X_DIGITS[::3], Y_DIGITS[::3], hidden=(256, 256), linear=False)
    onnx_model = bnn_onnx.to_onnx(pipe, X_DIGITS[:1], options={"zipmap": False})
    sizes = {t.name: len(t.raw_data) for t in onnx_model.graph.initializer}
    assert sizes["layer0_weight_bits"] == 64 * 256 // 8
    assert sizes["layer1_weight_bits"] == 256 * 256 // 8
    # the file: bits, thresholds, the float32 head, the scaler; far below float32 weights
    assert len(onnx_model.SerializeToString()) < 4 * (64 * 256 + 256 * 256) / 10


# ------------------------------------------------------------------ input code, real first layer
def fit_coded(X, y, surrogate="binary", first_layer="real", encoding="raw+thermometer", seed=0):
    clf = BinaryNetClassifier(
        (24, 12),
        surrogate=surrogate,
        first_layer=first_layer,
        encoding=encoding,
        n_bins=5,
        max_iter=2,
        learning_rate_init=3e-2,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make_pipeline(StandardScaler(), clf).fit(X, y)


def on_thresholds(pipe, X, below=False):
    """One row of ``X`` per code bit whose scaled float32 feature is that bit's threshold
    (``below``: the next float32 down), found among the raw neighbours of the inverse."""
    scaler, code = pipe[0], pipe[-1].encoder_.input_code()
    target = code.threshold
    if below:
        target = np.nextafter(target, np.float32(-np.inf))
    rows = X[np.arange(len(target)) % len(X)].astype(np.float64)
    j = code.feature
    rows[np.arange(len(target)), j] = target * scaler.scale_[j] + scaler.mean_[j]
    scaled = scaler.transform(rows).astype(np.float32)[np.arange(len(target)), j]
    hit = scaled == target
    assert hit.mean() > 0.9  # float64 raw values: the inverse lands on the float32 threshold
    return rows[hit]


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_code_and_real_first_layer_pipelines_equal_predict(surrogate):
    for X, y, X_test in [
        (X_DIGITS[::3], Y_DIGITS[::3], X_DIGITS),
        (X_RANDOM, Y_RANDOM, X_RANDOM_TEST),
    ]:
        pipe = fit_coded(X, y, surrogate)
        clf = pipe[-1]
        assert clf.export_binary().layers[0].weight is not None
        at, below = on_thresholds(pipe, X_test), on_thresholds(pipe, X_test, below=True)
        assert not np.array_equal(pipe.predict_proba(at), pipe.predict_proba(below))
        X_test = np.concatenate([X_test, at, below])
        for inference in ("binary", "surrogate"):
            clf.set_params(inference=inference)
            onnx_model = bnn_onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
            assert_same_as_predict(pipe, onnx_model, X_test)


@pytest.mark.parametrize(
    "first_layer, encoding", [("binary", "thermometer"), ("real", "raw"), ("binary", "raw")]
)
def test_code_or_real_first_layer_alone_equals_predict(first_layer, encoding):
    pipe = fit_coded(X_RANDOM, Y_RANDOM, "deterministic", first_layer, encoding, seed=1)
    X_test = X_RANDOM_TEST
    if encoding != "raw":
        X_test = np.concatenate([X_test, on_thresholds(pipe, X_test)])
    for inference in ("binary", "surrogate"):
        pipe[-1].set_params(inference=inference)
        assert_same_as_predict(pipe, bnn_onnx.to_onnx(pipe, X_RANDOM[:1]), X_test)


def graph_values(onnx_model, X, names):
    """Intermediate float32 tensors of a graph of :func:`to_onnx` on a packed network."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(onnx_model)
    model.graph.output.extend(
        onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names
    )
    session = bnn_onnx.OnnxPredictor(model).session
    return session.run(names, {"X": np.asarray(X)})


@pytest.mark.parametrize("keep_raw", [True, False])
def test_packed_network_code_bits_on_thresholds(keep_raw):
    # the bare packed network, its scaling and code in the graph; a bit is +1 exactly at
    # its threshold and -1 one float32 below (the reference: the definition x >= t)
    encoding = "raw+thermometer" if keep_raw else "thermometer"
    clf = BinaryNetClassifier(
        (20,), first_layer="real", encoding=encoding, n_bins=6, max_iter=1, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_RANDOM, Y_RANDOM)
    packed = clf.export_binary()
    code, n_bits = packed.code, len(packed.code.feature)
    X = X_RANDOM_TEST[np.arange(n_bits)].astype(np.float32)
    below = X.copy()
    X[np.arange(n_bits), code.feature] = code.threshold
    below[np.arange(n_bits), code.feature] = np.nextafter(code.threshold, np.float32(-np.inf))
    onnx_model = bnn_onnx.to_onnx(packed, X[:1])
    weights = {t.name: t for t in onnx_model.graph.initializer}
    assert weights["layer0_weight"].data_type == 1  # float32, widened in the graph
    for rows, sign in ((X, 1.0), (below, -1.0)):
        (bits,) = graph_values(onnx_model, rows, ["code_bits"])
        np.testing.assert_array_equal(bits[np.arange(n_bits), np.arange(n_bits)], sign)
        label, proba = bnn_onnx.OnnxPredictor(onnx_model).run(rows)
        np.testing.assert_array_equal(label, clf.predict(rows))
        np.testing.assert_allclose(proba, clf.predict_proba(rows), rtol=0, atol=1e-5)
    assert not np.array_equal(packed.logits(X), packed.logits(below))


# ------------------------------------------------------------------ the linear term
@pytest.mark.parametrize("inference", ["binary", "surrogate"])
def test_linear_term_pipeline_equals_predict(inference):
    # linear=True: a logistic regression's logits on the (scaled) input added to the
    # network's; the graph adds them feature by feature in float64, as predict does
    pipe = fit_coded(X_RANDOM, Y_RANDOM, "binary")
    clf = pipe[-1].set_params(linear=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X_RANDOM, Y_RANDOM)
    assert clf.export_binary().linear_coef is not None
    clf.set_params(inference=inference)
    onnx_model = bnn_onnx.to_onnx(pipe, X_RANDOM[:1], options={"zipmap": False})
    assert_same_as_predict(pipe, onnx_model, X_RANDOM_TEST)
    assert any(node.op_type == "Split" for node in onnx_model.graph.node)


# ------------------------------------------------------------------ the residual family
X_DIGITS_STD = StandardScaler().fit_transform(X_DIGITS)
#: the network alone, and with the input code and the linear term
RESIDUAL_VARIANTS = {
    "raw": dict(encoding="raw", linear=False),
    "code+linear": dict(encoding="raw+thermometer", n_bins=5, linear=True),
}


def fit_residual(estimator, X, y, variant, hidden=(32,) * 4):
    model = estimator(
        hidden, architecture="residual", max_iter=3, random_state=0, **RESIDUAL_VARIANTS[variant]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


@pytest.fixture(scope="module", params=list(RESIDUAL_VARIANTS))
def residual_classifier(request):
    return fit_residual(BinaryNetClassifier, X_DIGITS_STD, Y_DIGITS, request.param)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_packed_network_stream_bit_for_bit(residual_classifier, dtype):
    clf, X = residual_classifier, X_DIGITS_STD.astype(dtype)
    packed = clf.export_binary()
    onnx_model = bnn_onnx.to_onnx(packed, X[:1])
    n_blocks = len(packed.signs)
    (stream,) = graph_values(onnx_model, X, [f"stream{n_blocks}"])
    np.testing.assert_array_equal(stream, packed.stream(X))  # every float32 bit
    label, proba = bnn_onnx.OnnxPredictor(onnx_model).run(X)
    np.testing.assert_array_equal(label, packed.predict(X))
    np.testing.assert_array_equal(label, clf.predict(X))
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=1e-5)
    sizes = {t.name: len(t.raw_data) for t in onnx_model.graph.initializer}
    assert sizes["block1_weight_bits"] == 32 * 32 // 8  # the blocks' signs stored as bits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_estimator_and_pipeline_equal_predict(residual_classifier, dtype):
    clf = residual_classifier
    X = X_DIGITS_STD.astype(dtype)
    assert_same_as_predict(clf, bnn_onnx.to_onnx(clf, X[:1], options={"zipmap": False}), X)
    assert_same_as_predict(clf, bnn_onnx.to_onnx(clf, X[:1]), X)  # skl2onnx's ZipMap
    pipe = make_pipeline(StandardScaler(), clone(clf))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X_DIGITS, Y_DIGITS)
    X_raw = X_DIGITS.astype(dtype)
    onnx_model = bnn_onnx.to_onnx(pipe, X_raw[:1], options={"zipmap": False})
    if dtype == np.float64:
        assert_same_as_predict(pipe, onnx_model, X_raw)
    else:
        # the graph scales in float32 where scikit-learn rounds float64 results (see
        # test_column_transformer_pipeline_and_float32_input): not an exactness claim
        label, proba = bnn_onnx.OnnxPredictor(onnx_model).run(X_raw)
        assert np.mean(label == pipe.predict(X_raw)) >= 0.995
        np.testing.assert_allclose(proba, pipe.predict_proba(X_raw), rtol=0, atol=1e-3)


@pytest.mark.parametrize("variant", list(RESIDUAL_VARIANTS))
def test_residual_regressor_values(variant):
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    reg = fit_residual(BinaryNetRegressor, X, y, variant, hidden=(24,) * 3)
    expected = reg.predict(X)
    for model in (reg, reg.export_binary()):
        values = bnn_onnx.OnnxPredictor(bnn_onnx.to_onnx(model, X[:1])).predict(X)
        assert values.dtype == np.float64 and values.shape == (len(X), 1)
        np.testing.assert_array_equal(values[:, 0], expected)  # float64 input: bit for bit
        X32 = X.astype(np.float32)
        values = bnn_onnx.OnnxPredictor(bnn_onnx.to_onnx(model, X32[:1])).predict(X32)
        assert values.dtype == np.float32
        np.testing.assert_allclose(values[:, 0], reg.predict(X32), rtol=1e-5)


def test_residual_mc_inference_is_a_clear_error(residual_classifier):
    residual_classifier.set_params(inference="mc")
    try:
        with pytest.raises(ValueError, match="inference='mc' does not convert"):
            bnn_onnx.to_onnx(residual_classifier, X_DIGITS_STD[:1])
    finally:
        residual_classifier.set_params(inference="binary")


# ------------------------------------------------------------------ sklearn_bnn.deploy.onnx_graph
def test_deploy_onnx_graph_is_the_packed_converter(digits_pipeline):
    from sklearn_bnn.deploy import onnx_graph

    packed = digits_pipeline[-1].export_binary()
    assert bnn_onnx.MIN_OPSET == onnx_graph.MIN_OPSET
    # the same graph as sklearn_bnn.onnx.to_onnx, for either input type
    assert (onnx_graph.to_onnx(packed).SerializeToString()
            == bnn_onnx.to_onnx(packed).SerializeToString())
    X32 = X_DIGITS.astype(np.float32)
    model = onnx_graph.to_onnx(packed, dtype=np.float32, task="classification", opset=17)
    assert model.SerializeToString() == bnn_onnx.to_onnx(
        packed, X32[:1], target_opset=17
    ).SerializeToString()
    assert model.graph.input[0].type.tensor_type.elem_type == 1  # FLOAT
    scaled = digits_pipeline[0].transform(X_DIGITS)
    label, _ = bnn_onnx.OnnxPredictor(model).run(scaled.astype(np.float32))
    np.testing.assert_array_equal(label, packed.predict(scaled.astype(np.float32)))
    with pytest.raises(TypeError, match="PackedBinaryNetwork or a PackedResidualNetwork"):
        onnx_graph.to_onnx(digits_pipeline[-1])
    with pytest.raises(ValueError, match="dtype=.* is not valid"):
        onnx_graph.to_onnx(packed, dtype=np.int64)
    with pytest.raises(ValueError, match="opset=12 is not available"):
        onnx_graph.to_onnx(packed, opset=12)
    with pytest.raises(ValueError, match="contradicts the network's own task"):
        onnx_graph.to_onnx(packed, task="regression")


def test_deploy_onnx_graph_imports_no_training_stack():
    code = (
        "import sys, sklearn_bnn.deploy, sklearn_bnn.deploy.onnx_graph; "
        "print([m for m in ('torch', 'sklearn', 'skl2onnx', 'scipy', 'skorch', 'onnx') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # onnx itself only when a graph is written

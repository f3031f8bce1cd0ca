"""Deployment of BinaryNetRegressor: ONNX (skl2onnx converter, packed graph) and C export.

The references are the estimator's own ``predict`` and, for the linear term set by hand on
an export, its definition written out here (intercept, then feature by feature in float64).
"""

import ctypes
import importlib.util
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetRegressor, PackedBinaryNetwork
from sklearn_bnn.deploy.c_export import generate, write
from conftest import fit_quiet

pytestmark = pytest.mark.usefixtures("one_thread")

X_DIAB, Y_DIAB = load_diabetes(return_X_y=True)
# three targets on very different scales (the folded target scaling differs per column)
Y_MULTI = np.column_stack([Y_DIAB, -3e3 * Y_DIAB + 1e5, np.sin(X_DIAB[:, 2] * 40.0)])
_rng = np.random.default_rng(0)
X_TEST = np.concatenate([X_DIAB, _rng.normal(size=(600, 10)) * X_DIAB.std(0) * 2.0])

CC = shutil.which("cc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler 'cc' on PATH")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _has_fma() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " fma " in f.read()
    except OSError:
        return False


#: GCC in its GNU mode with FMA contracts ``acc += v * c`` into a fused multiply-add
#: unless the generated code turns contraction off (this flag set shows that it does).
FMA_FLAGS = ["-std=gnu99", "-O3", "-mfma"] if _has_fma() else ["-std=gnu99", "-O3"]


def fit_regressor(X, y, hidden=(32, 16), seed=0, **params):
    reg = BinaryNetRegressor(hidden, max_iter=3, random_state=seed, **params)
    return fit_quiet(reg, X, y)



def _with_scaler(pipe):
    """The pipeline's export with its StandardScaler inside (input scaling)."""
    scaler, plain = pipe[0], pipe[-1].export_binary()
    return PackedBinaryNetwork(
        plain.layers,
        plain.head_weight,
        plain.head_bias,
        input_offset=scaler.mean_,
        input_scale=scaler.scale_,
        code=plain.code,
        task="regression",
    )

@pytest.fixture(scope="module")
def pipe():
    """StandardScaler + the default regressor (input code, real first layer), 1-D y.

    Without its own linear term: the tests set one by hand on the network's export."""
    reg = BinaryNetRegressor((32, 16), linear=False, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make_pipeline(StandardScaler(), reg).fit(X_DIAB, Y_DIAB)


@pytest.fixture(scope="module")
def multi():
    """An all-binary regressor (raw features) with three targets, on scaled float32 X,
    without its own linear term (the tests set one by hand on its export)."""
    X = StandardScaler().fit_transform(X_DIAB).astype(np.float32)
    params = {"first_layer": "binary", "encoding": "raw", "linear": False}
    reg = fit_regressor(X, Y_MULTI, (40, 24, 8), seed=1, **params)
    return reg, X


def linear_reference(X_network, coef, intercept):
    """The linear term's definition: intercept, then += x_j * coef_j, j ascending, float64."""
    lin = np.tile(intercept, (len(X_network), 1))
    for j in range(coef.shape[0]):
        lin += X_network[:, j, None].astype(np.float64) * coef[j]
    return lin


def with_linear(packed, seed, scale=1.0, task=None):
    """The same network plus a linear term of full-precision float64 values (read as
    ``task``, by default the network's own)."""
    rng = np.random.default_rng(seed)
    n_outputs = len(packed.head_bias)
    coef = rng.normal(size=(packed.n_features_in_, n_outputs)) * scale / 3
    intercept = rng.normal(size=n_outputs) * scale
    return PackedBinaryNetwork(
        packed.layers,
        packed.head_weight,
        packed.head_bias,
        packed.classes_,
        input_offset=packed.input_offset,
        input_scale=packed.input_scale,
        code=packed.code,
        linear_coef=coef,
        linear_intercept=intercept,
        task=packed.task if task is None else task,
    )


def network_input(packed, X):
    """X as the network reads it: scaled in float64 when it has scaling, then float32."""
    X = np.asarray(X, dtype=np.float64)
    if packed.input_scale is not None:
        X = (X - packed.input_offset) / packed.input_scale
    return X.astype(np.float32)


# ------------------------------------------------------------------ ONNX
onnx_deps = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "skl2onnx", "onnxruntime")),
    reason="the [onnx] extra is not installed",
)


def _onnx():
    import skl2onnx

    import sklearn_bnn.onnx as bnn_onnx

    return skl2onnx, bnn_onnx


@onnx_deps
def test_pipeline_converts_with_skl2onnx_bit_for_bit(pipe):
    skl2onnx, bnn_onnx = _onnx()
    model = skl2onnx.to_onnx(pipe, X_DIAB[:1])
    (output,) = model.graph.output
    assert output.name == "variable" and output.type.tensor_type.elem_type == 11  # DOUBLE
    pred = bnn_onnx.OnnxPredictor(model).predict(X_TEST)
    assert pred.shape == (len(X_TEST), 1)  # skl2onnx's regressors: [N, 1] for one target
    np.testing.assert_array_equal(pred[:, 0], pipe.predict(X_TEST))


@onnx_deps
def test_multi_output_float64_and_float32_inputs(multi):
    _, bnn_onnx = _onnx()
    reg, X = multi
    X64 = X.astype(np.float64)
    pred = bnn_onnx.OnnxPredictor(bnn_onnx.to_onnx(reg, X64[:1])).predict(X64)
    np.testing.assert_array_equal(pred, reg.predict(X64))
    # a float32 input gives float32 predictions: the float64 ones, rounded once
    model = bnn_onnx.to_onnx(reg, X[:1])
    assert model.graph.output[0].type.tensor_type.elem_type == 1  # FLOAT
    pred = bnn_onnx.OnnxPredictor(model).predict(X)
    assert pred.dtype == np.float32
    np.testing.assert_array_equal(pred, reg.predict(X).astype(np.float32))


@onnx_deps
def test_packed_regression_graph_knows_its_task(multi):
    _, bnn_onnx = _onnx()
    reg, X = multi
    packed = reg.export_binary()
    assert packed.task == "regression"
    model = bnn_onnx.to_onnx(packed)  # the export's own task
    assert [o.name for o in model.graph.output] == ["variable"]
    predictor = bnn_onnx.OnnxPredictor(model)
    np.testing.assert_array_equal(predictor.predict(X), reg.predict(X))
    with pytest.raises(ValueError, match="use predict"):
        predictor.run(X)
    same = bnn_onnx.to_onnx(packed, task="regression")  # naming its own task is allowed
    assert [o.name for o in same.graph.output] == ["variable"]
    with pytest.raises(ValueError, match="contradicts the network's own task 'regression'"):
        bnn_onnx.to_onnx(packed, task="classification")
    with pytest.raises(ValueError, match="task='regresion' is not valid"):
        bnn_onnx.to_onnx(packed, task="regresion")
    with pytest.raises(ValueError, match="applies to a packed network only"):
        bnn_onnx.to_onnx(reg, X[:1], task="regression")


@onnx_deps
@pytest.mark.parametrize("first_layer, encoding", [("auto", "raw+thermometer"), ("binary", "raw")])
def test_surrogate_inference_agrees_to_float32_rounding(first_layer, encoding):
    _, bnn_onnx = _onnx()
    X = StandardScaler().fit_transform(X_DIAB)
    reg = fit_regressor(
        X, Y_MULTI, inference="surrogate", first_layer=first_layer, encoding=encoding
    )
    pred = bnn_onnx.OnnxPredictor(bnn_onnx.to_onnx(reg, X[:1])).predict(X)
    expected = reg.predict(X)
    # float32 hidden means (torch's and onnxruntime's kernels round differently), then the
    # float64 head: differences of float32 rounding times the head's (scaled) weights
    scale = np.abs(expected).max(axis=0)
    np.testing.assert_allclose(pred, expected, rtol=0, atol=1e-6 * scale.max())
    assert np.all(np.abs(pred - expected) <= 1e-6 * scale)


@onnx_deps
def test_mc_inference_and_opset_are_clear_errors(pipe):
    _, bnn_onnx = _onnx()
    pipe.set_params(binarynetregressor__inference="mc")
    try:
        with pytest.raises(ValueError, match="inference='mc' does not convert"):
            bnn_onnx.to_onnx(pipe, X_DIAB[:1])
    finally:
        pipe.set_params(binarynetregressor__inference="binary")
    with pytest.raises(ValueError, match="too low for a BinaryNetRegressor"):
        bnn_onnx.to_onnx(pipe, X_DIAB[:1], target_opset=12)


@onnx_deps
def test_onnx_linear_term_in_its_order(pipe):
    # a linear term of full-precision float64 values on the scaled input: the graph must
    # sum it in the stated order (a matrix product's order differs in the last bits)
    _, bnn_onnx = _onnx()
    packed = _with_scaler(pipe)
    net = with_linear(packed, seed=2, scale=100.0)
    Z = network_input(net, X_TEST)
    lin = linear_reference(Z, net.linear_coef, net.linear_intercept)
    for opset in (13, 18):  # Split gained an attribute in 18; its "split" input still holds
        model = bnn_onnx.to_onnx(net, task="regression", target_opset=opset)
        pred = bnn_onnx.OnnxPredictor(model).predict(X_TEST)
        np.testing.assert_array_equal(pred, pipe.predict(X_TEST)[:, None] + lin)
    matmul = net.linear_intercept + Z.astype(np.float64) @ net.linear_coef
    assert not np.array_equal(matmul, lin)  # the order is visible in these values


@onnx_deps
def test_onnx_linear_term_of_a_classifier_reading(multi):
    # the term enters the logits that the softmax and the arg max read
    _, bnn_onnx = _onnx()
    reg, X = multi
    net = with_linear(reg.export_binary(), seed=5, scale=30.0, task="classification")
    logits = reg.predict(X) + linear_reference(X, net.linear_coef, net.linear_intercept)
    assert (logits.argmax(axis=1) != reg.predict(X).argmax(axis=1)).any()
    label, proba = bnn_onnx.OnnxPredictor(bnn_onnx.to_onnx(net, X[:1])).run(X)
    np.testing.assert_array_equal(label, logits.argmax(axis=1))
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, softmax, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ C
class CompiledRegressor:
    """The generated C (``task="regression"``) as a shared object, called through ctypes."""

    def __init__(self, net, directory, name="reg", word_bits=64, flags=CFLAGS, task="regression"):
        header, source = write(net, directory, name=name, word_bits=word_bits, task=task)
        self.header = header.read_text()
        library = directory / f"{name}.so"
        command = [CC, *flags, "-shared", "-fPIC", str(source), "-o", str(library), "-lm"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0 and not result.stderr, result.stderr
        self.lib = ctypes.CDLL(str(library))
        self.name, self.n_outputs = name, len(net.head_bias)

    def predict(self, X):
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty((len(X), self.n_outputs))
        getattr(self.lib, f"{self.name}_predict_batch")(
            ctypes.c_void_p(X.ctypes.data), ctypes.c_long(len(X)), ctypes.c_void_p(out.ctypes.data)
        )
        return out

    def predict_one(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.empty(self.n_outputs)
        getattr(self.lib, f"{self.name}_predict")(
            ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(y.ctypes.data)
        )
        return y


@needs_cc
@pytest.mark.parametrize("word_bits", [64, 32])
def test_c_predict_equals_predict_bit_for_bit(pipe, tmp_path, word_bits):
    # the default regressor: input code and real first layer; float32 input as predict
    reg = pipe[-1]
    Z = pipe[0].transform(X_TEST).astype(np.float32)
    compiled = CompiledRegressor(reg.export_binary(), tmp_path, word_bits=word_bits)
    np.testing.assert_array_equal(compiled.predict(Z)[:, 0], reg.predict(Z))
    np.testing.assert_array_equal(compiled.predict_one(Z[7]), reg.predict(Z[7:8]))
    assert "Task:          regression" in compiled.header
    assert "-> 1 outputs" in compiled.header and "Linear term:   none" in compiled.header
    assert "void reg_predict(const float *x, double *y);" in compiled.header
    assert "_classes" not in compiled.header and "predict_proba" not in compiled.header


@needs_cc
def test_c_multi_output_strict_warnings(multi, tmp_path):
    reg, X = multi
    strict = [*CFLAGS, "-Wconversion", "-Wshadow", "-Wstrict-prototypes", "-DBNN_PORTABLE"]
    compiled = CompiledRegressor(reg.export_binary(), tmp_path, word_bits=32, flags=strict)
    np.testing.assert_array_equal(compiled.predict(X), reg.predict(X))
    assert "#define REG_N_OUTPUTS 3" in compiled.header


@needs_cc
@pytest.mark.parametrize("flags", [CFLAGS, FMA_FLAGS], ids=["c99", "gnu99-fma"])
def test_c_linear_term_with_input_scaling_bit_for_bit(pipe, tmp_path, flags):
    # the scaler inside the export, a linear term of full-precision values on its output;
    # the GNU-mode build would fuse the linear term's multiply-adds were it not turned off
    packed = _with_scaler(pipe)
    net = with_linear(packed, seed=3, scale=50.0)
    X32 = X_TEST.astype(np.float32)  # the C reads float32 rows
    expected = pipe.predict(X32.astype(np.float64))[:, None] + linear_reference(
        network_input(net, X32), net.linear_coef, net.linear_intercept
    )
    compiled = CompiledRegressor(net, tmp_path, flags=flags)
    np.testing.assert_array_equal(compiled.predict(X32), expected)
    assert "no fused multiply-add" in compiled.header


@needs_cc
def test_c_linear_term_bytes_and_classifier_mode(multi, tmp_path):
    nm = shutil.which("nm")
    reg, X = multi
    net = with_linear(reg.export_binary(), seed=4, scale=10.0, task="classification")
    expected = reg.predict(X) + linear_reference(X, net.linear_coef, net.linear_intercept)
    compiled = CompiledRegressor(net, tmp_path, name="cls", flags=FMA_FLAGS, task="classification")
    logits = np.empty_like(expected)
    for x, z in zip(X, logits):
        compiled.lib.cls_logits(ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(z.ctypes.data))
    np.testing.assert_array_equal(logits, expected)
    indices = np.empty(len(X), dtype=np.intc)
    compiled.lib.cls_predict_batch(
        ctypes.c_void_p(X.ctypes.data), ctypes.c_long(len(X)), ctypes.c_void_p(indices.ctypes.data)
    )
    np.testing.assert_array_equal(indices, expected.argmax(axis=1))
    if nm is not None:  # the header's byte count includes the linear term's arrays
        obj = tmp_path / "cls.o"
        source = str(tmp_path / "cls.c")  # -O0: -O2 folds small arrays into the code
        subprocess.run([CC, "-std=c99", "-O0", "-c", source, "-o", str(obj)], check=True)
        symbols = subprocess.run([nm, "-S", str(obj)], capture_output=True, text=True).stdout
        sizes = {
            fields[3]: int(fields[1], 16)
            for fields in (line.split() for line in symbols.splitlines())
            if len(fields) == 4 and fields[2] in "rR" and fields[3].startswith("cls_")
        }
        assert sizes["cls_lin_w"] == 8 * net.linear_coef.size
        assert f"Memory:        {sum(sizes.values())} bytes of constants" in compiled.header


def test_c_rejects_an_unknown_or_contrary_task(multi):
    with pytest.raises(ValueError, match="task='regressor' is not valid"):
        generate(multi[0].export_binary(), task="regressor")
    with pytest.raises(ValueError, match="contradicts the network's own task 'regression'"):
        generate(multi[0].export_binary(), task="classification")
    header, _ = generate(multi[0].export_binary())  # the export's own task
    assert "void bnn_predict(const float *x, double *y);" in header


# ------------------------------------------------------------------ linear=True
@pytest.fixture(scope="module")
def linear_pipe():
    """StandardScaler + the default regressor with its linear term, two targets."""
    reg = BinaryNetRegressor((32, 16), linear=True, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make_pipeline(StandardScaler(), reg).fit(X_DIAB, Y_MULTI[:, :2])


def test_the_linear_term_is_on(linear_pipe):
    reg, Z = linear_pipe[-1], linear_pipe[0].transform(X_TEST)
    packed = reg.export_binary()
    assert packed.linear_coef is not None
    without = reg.export_binary()
    without.set_linear(None, None)
    assert np.abs(without.logits(Z) - reg.predict(Z)).min() > 0  # every prediction moves


@onnx_deps
def test_linear_estimator_onnx_bit_for_bit(linear_pipe):
    skl2onnx, bnn_onnx = _onnx()
    pred = bnn_onnx.OnnxPredictor(skl2onnx.to_onnx(linear_pipe, X_DIAB[:1])).predict(X_TEST)
    np.testing.assert_array_equal(pred, linear_pipe.predict(X_TEST))
    reg = linear_pipe[-1]
    reg.set_params(inference="surrogate")
    try:
        model = skl2onnx.to_onnx(linear_pipe, X_DIAB[:1])
        expected = linear_pipe.predict(X_TEST)
    finally:
        reg.set_params(inference="binary")
    pred = bnn_onnx.OnnxPredictor(model).predict(X_TEST)
    scale = np.abs(expected).max(axis=0)  # float32 hidden means, as without the term
    assert np.all(np.abs(pred - expected) <= 1e-6 * scale)


@needs_cc
def test_linear_estimator_c_bit_for_bit(linear_pipe, tmp_path):
    reg = linear_pipe[-1]
    Z = linear_pipe[0].transform(X_TEST).astype(np.float32)
    compiled = CompiledRegressor(reg.export_binary(), tmp_path, flags=[*FMA_FLAGS, "-Werror"])
    np.testing.assert_array_equal(compiled.predict(Z), reg.predict(Z))
    assert "Linear term:   lin = intercept" in compiled.header


# -------------------------------------------- a linear term of the input code (the default)
@pytest.fixture(scope="module", params=["plain", "residual"])
def code_term(request):
    """The default regressor of either family, two targets: its linear term reads the
    features and their code (``linear_input="code"``)."""
    if request.param == "plain":
        return fit_regressor(X_DIAB, Y_MULTI[:, :2])
    return fit_regressor(X_DIAB, Y_MULTI[:, :2], (16, 16, 16), architecture="residual")


def test_code_term_reads_the_code(code_term):
    packed = code_term.export_binary()
    assert packed.linear_input == "code"
    assert packed.linear_coef.shape == (packed.code.n_outputs, 2) and packed.code.n_outputs > 10
    np.testing.assert_array_equal(packed.logits(X_TEST), code_term.predict(X_TEST))


@onnx_deps
def test_code_term_onnx_bit_for_bit(code_term):
    skl2onnx, bnn_onnx = _onnx()
    pred = bnn_onnx.OnnxPredictor(skl2onnx.to_onnx(code_term, X_DIAB[:1])).predict(X_TEST)
    np.testing.assert_array_equal(pred, code_term.predict(X_TEST))


@needs_cc
@pytest.mark.parametrize("flags", [CFLAGS, [*FMA_FLAGS, "-Werror"]])
def test_code_term_c_bit_for_bit(code_term, tmp_path, flags):
    X32 = X_TEST.astype(np.float32)
    compiled = CompiledRegressor(code_term.export_binary(), tmp_path, flags=flags)
    np.testing.assert_array_equal(compiled.predict(X32), code_term.predict(X32))
    assert "(x: the coded input, features then bits)" in compiled.header

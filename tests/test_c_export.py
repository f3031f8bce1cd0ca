"""The C99 export: compiles warning-free, predicts exactly what numpy predicts."""

import ctypes
import shutil
import subprocess

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor, PackedBinaryNetwork
from sklearn_bnn.deploy.c_export import generate
from sklearn_bnn.deploy.packed_residual import PackedResidualNetwork
from sklearn_bnn.nn.bridge import pack_module
from conftest import fit_quiet

pytestmark = pytest.mark.usefixtures("one_thread")

CC = shutil.which("cc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler 'cc' on PATH")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_DIGITS_STD = StandardScaler().fit_transform(X_DIGITS).astype(np.float32)


@pytest.fixture(scope="module")
def digits_net():
    # the network alone (its export against the module), trained as when the tests were
    # written: a linear term would decide the predictions that the first layer should change
    clf = BinaryNetClassifier(
        (64, 64),
        max_iter=3,
        first_layer="binary",
        encoding="raw",
        linear=False,
        learning_rate_init=3e-3,
        batch_size=64,
        random_state=0,
    )
    return fit_quiet(clf, X_DIGITS_STD, Y_DIGITS)


class CompiledNet:
    """The generated C as a shared object, called through ctypes."""

    def __init__(self, net, directory, name="bnn", word_bits=64, extra=()):
        header, source = net.to_c(directory, name=name, word_bits=word_bits)
        self.header = header.read_text()
        library = directory / f"{name}.so"
        command = [CC, *CFLAGS, *extra, "-shared", "-fPIC", str(source), "-o", str(library)]
        result = subprocess.run([*command, "-lm"], capture_output=True, text=True, check=False)
        assert result.returncode == 0 and not result.stderr, result.stderr
        self.lib = ctypes.CDLL(str(library))
        self.name, self.n_classes = name, len(net.classes_)

    def predict_indices(self, X):
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty(len(X), dtype=np.intc)
        function = getattr(self.lib, f"{self.name}_predict_batch")
        function(
            ctypes.c_void_p(X.ctypes.data),
            ctypes.c_long(len(X)),
            out.ctypes.data_as(ctypes.c_void_p),
        )
        return out

    def predict_proba(self, X):
        X = np.ascontiguousarray(X, dtype=np.float32)
        proba = np.empty((len(X), self.n_classes), dtype=np.float32)
        function = getattr(self.lib, f"{self.name}_predict_proba")
        for x, p in zip(X, proba):
            function(ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(p.ctypes.data))
        return proba

    def logits(self, X):
        X = np.ascontiguousarray(X, dtype=np.float32)
        logits = np.empty((len(X), self.n_classes))
        function = getattr(self.lib, f"{self.name}_logits")
        for x, z in zip(X, logits):
            function(ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(z.ctypes.data))
        return logits

    def classes(self, ctype):
        return (ctype * self.n_classes).in_dll(self.lib, f"{self.name}_classes")[:]

    def values(self, X):
        """A regression's predictions, float64, shape (n_samples, n_outputs)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty((len(X), self.n_classes))
        function = getattr(self.lib, f"{self.name}_predict_batch")
        function(
            ctypes.c_void_p(X.ctypes.data),
            ctypes.c_long(len(X)),
            out.ctypes.data_as(ctypes.c_void_p),
        )
        return out

    def stream(self, X, width):
        """A residual network's last stream, float32, shape (n_samples, width)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        h = np.empty((len(X), width), dtype=np.float32)
        function = getattr(self.lib, f"{self.name}_stream")
        for x, row in zip(X, h):
            function(ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(row.ctypes.data))
        return h


def assert_same_as_numpy(compiled, net, X):
    X = np.asarray(X, dtype=np.float32)
    indices = compiled.predict_indices(X)
    np.testing.assert_array_equal(net.classes_[indices], net.predict(X))
    np.testing.assert_allclose(compiled.predict_proba(X), net.predict_proba(X), atol=1e-6)


@needs_cc
@pytest.mark.parametrize(
    "word_bits, extra", [(64, ()), (32, ()), (64, ("-DBNN_PORTABLE",)), (32, ("-DBNN_PORTABLE",))]
)
def test_digits_predictions_identical(digits_net, tmp_path, word_bits, extra):
    net = digits_net.export_binary()
    compiled = CompiledNet(net, tmp_path, word_bits=word_bits, extra=extra)
    assert_same_as_numpy(compiled, net, X_DIGITS_STD)
    np.testing.assert_array_equal(
        net.classes_[compiled.predict_indices(X_DIGITS_STD)], digits_net.predict(X_DIGITS_STD)
    )
    assert compiled.classes(ctypes.c_int32) == list(range(10))
    assert f"Word size:     {word_bits} bits" in compiled.header


def scaled_random_network(seed, classes):
    """A 17-class fit on raw features of very different scales, scaling put into the export."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 13)) * rng.uniform(0.1, 100.0, size=13) + rng.normal(size=13)
    y = classes[np.arange(600) % len(classes)]
    scaler = StandardScaler().fit(X)
    clf = BinaryNetClassifier(
        (37, 70, 9), max_iter=3, first_layer="binary", encoding="raw", random_state=seed
    )
    clf = fit_quiet(clf, scaler.transform(X).astype(np.float32), y)
    plain = clf.export_binary()
    net = PackedBinaryNetwork(
        plain.layers,
        plain.head_weight,
        plain.head_bias,
        plain.classes_,
        input_offset=scaler.mean_,
        input_scale=scaler.scale_,
    )
    return net, X.astype(np.float32)


@needs_cc
@pytest.mark.parametrize("word_bits", [64, 32])
def test_random_data_with_input_scaling_and_string_labels(tmp_path, word_bits):
    labels = np.array([f"class {i}" for i in range(16)] + ['odd "quoted?" \u00e9'])
    net, X = scaled_random_network(0, labels)
    compiled = CompiledNet(net, tmp_path, name="scaled", word_bits=word_bits)
    assert "Input scaling: (x - offset) / scale" in compiled.header
    X_test = np.concatenate([X, X[:500] * 1.5]).astype(np.float32)
    assert_same_as_numpy(compiled, net, X_test)
    names = compiled.classes(ctypes.c_char_p)
    assert [name.decode("utf-8") for name in names] == list(net.classes_)
    assert set(net.classes_) == set(labels)


@needs_cc
def test_real_first_layer_matrix_is_a_float_product(digits_net, tmp_path, monkeypatch):
    net = digits_net.export_binary()
    matrix = net.first_layer_matrix() * np.random.default_rng(0).uniform(0.5, 2.0, size=(64, 64))
    monkeypatch.setattr(net, "first_layer_matrix", lambda: matrix.astype(np.float32))
    compiled = CompiledNet(net, tmp_path)
    assert "First layer:   float matrix" in compiled.header
    assert_same_as_numpy(compiled, net, X_DIGITS_STD)
    binary = digits_net.export_binary()
    changed = net.predict(X_DIGITS_STD) != binary.predict(X_DIGITS_STD)
    assert changed.any()  # the real matrix is used by numpy and C alike


@pytest.fixture(scope="module")
def coded_digits_net():
    clf = BinaryNetClassifier(
        (24, 12),
        max_iter=3,
        first_layer="real",
        encoding="raw+thermometer",
        linear=False,  # the network alone; the linear term's bytes: test_export_regressor.py
        random_state=0,
    )
    return fit_quiet(clf, X_DIGITS_STD, Y_DIGITS)


@needs_cc
@pytest.mark.parametrize("fitted", ["digits_net", "coded_digits_net"])
def test_header_states_the_bytes_of_constants(fitted, tmp_path, request):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no 'nm' to read the object's symbol sizes")
    net = request.getfixturevalue(fitted).export_binary()
    assert_states_its_constants(net, tmp_path, nm)


def assert_states_its_constants(net, tmp_path, nm):
    """The header's bytes of constants are the read-only symbols of the object (-O0: none
    folded into the code)."""
    header, source = net.to_c(tmp_path, name="sized")
    obj = tmp_path / "sized.o"
    subprocess.run([CC, *CFLAGS, "-O0", "-c", str(source), "-o", str(obj)], check=True)
    symbols = subprocess.run([nm, "-S", str(obj)], capture_output=True, text=True, check=True)
    sizes = [
        int(fields[1], 16)
        for fields in (line.split() for line in symbols.stdout.splitlines())
        if len(fields) == 4 and fields[2] in "rR" and fields[3].startswith("sized_")
    ]
    assert f"Memory:        {sum(sizes)} bytes of constants" in header.read_text()


def test_rejects_bad_arguments(digits_net):
    net = digits_net.export_binary()
    with pytest.raises(ValueError, match="not a valid C identifier"):
        generate(net, name="2fast")
    with pytest.raises(ValueError, match="not a valid C identifier"):
        generate(net, name="int")
    with pytest.raises(ValueError, match="use 32 or 64"):
        generate(net, word_bits=16)


@needs_cc
def test_float64_network_strict_warnings_and_float_labels(tmp_path):
    torch = pytest.importorskip("torch")
    from sklearn_bnn.nn import BinaryNetwork

    torch.manual_seed(3)
    module = BinaryNetwork(5, (40, 70), 3).to(torch.float64)
    with torch.no_grad():
        for layer in module.layers:
            layer.weight.uniform_(-1.0, 1.0)
            layer.bias.normal_(0.0, 0.5)
    net = pack_module(module, classes=np.array([0.5, -1.0, 2.0]))
    strict = ("-pedantic", "-Wconversion", "-Wshadow", "-Wstrict-prototypes")
    compiled = CompiledNet(net, tmp_path, name="wide", extra=strict)
    assert "threshold in double" in compiled.header
    X = np.random.default_rng(0).normal(size=(1000, 5))
    indices = np.empty(len(X), dtype=np.intc)
    compiled.lib.wide_predict_batch(
        ctypes.c_void_p(X.ctypes.data), ctypes.c_long(len(X)), ctypes.c_void_p(indices.ctypes.data)
    )
    np.testing.assert_array_equal(net.classes_[indices], net.predict(X))
    assert compiled.classes(ctypes.c_double) == [0.5, -1.0, 2.0]


# ------------------------------------------------------------------ input code, real first layer
def coded_pipeline(X, y, first_layer, encoding, surrogate="binary"):
    """StandardScaler + BinaryNetClassifier, and its export with the scaler put inside."""
    clf = BinaryNetClassifier(
        (24, 12),
        first_layer=first_layer,
        encoding=encoding,
        n_bins=5,
        surrogate=surrogate,
        max_iter=3,
        learning_rate_init=3e-2,
        linear=False,  # the export below is rebuilt from the network's parts alone
        random_state=0,
    )
    pipe = fit_quiet(make_pipeline(StandardScaler(), clf), X, y)
    scaler, plain = pipe[0], clf.export_binary()
    net = PackedBinaryNetwork(
        plain.layers,
        plain.head_weight,
        plain.head_bias,
        plain.classes_,
        input_offset=scaler.mean_,
        input_scale=scaler.scale_,
        code=plain.code,
    )
    return pipe, net


def on_thresholds(code, Z, below=False):
    """One row of ``Z`` (the classifier's float32 input) per code bit, with the bit's
    threshold copied into its feature (``below``: the next float32 down, the bit is -1)."""
    target = code.threshold
    if below:
        target = np.nextafter(target, np.float32(-np.inf))
    rows = Z[np.arange(len(target)) % len(Z)].copy()
    rows[np.arange(len(target)), code.feature] = target
    return rows


def random_17_classes():
    """17 classes, features on scales 0.1 to 30 (float32 values, as float64)."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(510, 9)) * rng.uniform(0.1, 30.0, size=9) + rng.normal(size=9)
    X[:, 0] = np.round(X[:, 0])  # repeated values: thresholds on data points
    return X.astype(np.float32).astype(np.float64), np.arange(510) % 17


@needs_cc
@pytest.mark.parametrize("data", ["digits", "random_17_classes"])
@pytest.mark.parametrize(
    "first_layer, encoding, surrogate",
    [
        ("real", "raw+thermometer", "binary"),
        ("binary", "thermometer", "binary"),
        ("real", "raw", "binary"),
        ("real", "raw+thermometer", "sampled"),
    ],
)
def test_code_and_real_first_layer_match_the_pipeline(
    tmp_path, data, first_layer, encoding, surrogate
):
    X, y = (X_DIGITS, Y_DIGITS) if data == "digits" else random_17_classes()
    pipe, net = coded_pipeline(X, y, first_layer, encoding, surrogate)
    assert (net.layers[0].weight is not None) == (first_layer == "real")
    assert (net.code is not None) == (encoding != "raw")
    # the scaler inside the C: raw float32 inputs (X holds float32 values)
    compiled = CompiledNet(net, tmp_path, name="scaled")
    indices = compiled.predict_indices(X)
    np.testing.assert_array_equal(net.classes_[indices], pipe.predict(X))
    np.testing.assert_allclose(compiled.predict_proba(X), pipe.predict_proba(X), atol=1e-6)
    assert_same_as_numpy(compiled, net, X)
    # the classifier's own export on its scaled float32 input, with rows on the thresholds
    clf, plain = pipe[-1], pipe[-1].export_binary()
    Z = pipe[0].transform(X).astype(np.float32)
    if plain.code is not None:
        at, below = on_thresholds(plain.code, Z), on_thresholds(plain.code, Z, below=True)
        assert not np.array_equal(plain.logits(at), plain.logits(below))  # ties decide
        Z = np.concatenate([Z, at, below])
        assert f"{len(plain.code.feature)} bits" in compiled.header
    else:
        assert "Input code:    none" in compiled.header
    compiled = CompiledNet(plain, tmp_path, name="coded")
    np.testing.assert_array_equal(plain.classes_[compiled.predict_indices(Z)], clf.predict(Z))
    np.testing.assert_allclose(compiled.predict_proba(Z), clf.predict_proba(Z), atol=1e-6)
    np.testing.assert_allclose(compiled.logits(Z), plain.logits(Z), rtol=0, atol=1e-9)
    assert_same_as_numpy(compiled, plain, Z)


@needs_cc
def test_code_strict_warnings_word_32_and_portable(coded_digits_net, tmp_path):
    net = coded_digits_net.export_binary()
    strict = ("-pedantic", "-Wconversion", "-Wshadow", "-Wstrict-prototypes", "-DBNN_PORTABLE")
    compiled = CompiledNet(net, tmp_path, name="strict", word_bits=32, extra=strict)
    assert "First layer:   float matrix" in compiled.header
    assert "the inputs, then" in compiled.header
    assert_same_as_numpy(compiled, net, X_DIGITS_STD)
    source = (tmp_path / "strict.c").read_text()
    assert "malloc" not in source and "float xc[STRICT_N_INPUTS];" in source


@needs_cc
def test_linear_term_logits_bit_for_bit(tmp_path):
    # linear=True: the logistic regression's term in C, compiled where GCC would fuse its
    # multiply-adds (GNU mode, FMA target) were contraction not turned off in the source
    X, y = random_17_classes()
    pipe, _ = coded_pipeline(X, y, "real", "raw+thermometer")
    clf = pipe[-1].set_params(linear=True)
    fit_quiet(pipe, X, y)
    plain = clf.export_binary()
    assert plain.linear_coef is not None and "lin = intercept" in generate(plain)[0]
    try:
        with open("/proc/cpuinfo") as f:
            fma = ("-mfma",) if " fma " in f.read() else ()
    except OSError:
        fma = ()
    compiled = CompiledNet(plain, tmp_path, name="lin", extra=("-std=gnu99", "-O3", *fma))
    Z = pipe[0].transform(X).astype(np.float32)
    np.testing.assert_array_equal(compiled.logits(Z), plain.logits(Z))
    np.testing.assert_array_equal(plain.classes_[compiled.predict_indices(Z)], clf.predict(Z))
    np.testing.assert_allclose(compiled.predict_proba(Z), clf.predict_proba(Z), atol=1e-6)


def _fma_flags():
    """``-mfma`` where the CPU has it: GCC then fuses a * b + c unless told not to."""
    try:
        with open("/proc/cpuinfo") as f:
            return ("-mfma",) if " fma " in f.read() else ()
    except OSError:
        return ()


@needs_cc
def test_one_hidden_layer_portable_has_no_unused_count(tmp_path):
    # no layer with +-1 inputs: the portable popcount would be an unused static function
    clf = fit_quiet(BinaryNetClassifier((16,), max_iter=1, random_state=0), X_DIGITS_STD, Y_DIGITS)
    net = clf.export_binary()
    compiled = CompiledNet(net, tmp_path, name="one", extra=("-DBNN_PORTABLE",))
    assert_same_as_numpy(compiled, net, X_DIGITS_STD)


# ------------------------------------------------------------------ the residual family
X_DIABETES = StandardScaler().fit_transform(load_diabetes().data).astype(np.float32)
Y_DIABETES = load_diabetes().target
#: the network alone, and with the input code and the linear term
RESIDUAL_VARIANTS = {
    "raw": dict(encoding="raw", linear=False),
    "code+linear": dict(encoding="raw+thermometer", n_bins=5, linear=True),
}


@pytest.fixture(scope="module", params=list(RESIDUAL_VARIANTS))
def residual_classifier(request):
    clf = BinaryNetClassifier(
        (32,) * 4, architecture="residual", max_iter=3, random_state=0,
        **RESIDUAL_VARIANTS[request.param],
    )
    return fit_quiet(clf, X_DIGITS_STD, Y_DIGITS)


@pytest.fixture(scope="module", params=list(RESIDUAL_VARIANTS))
def residual_regressor(request):
    reg = BinaryNetRegressor(
        (24,) * 3, architecture="residual", max_iter=5, random_state=0,
        **RESIDUAL_VARIANTS[request.param],
    )
    return fit_quiet(reg, X_DIABETES, Y_DIABETES)


@needs_cc
@pytest.mark.parametrize("word_bits", [64, 32])
def test_residual_classifier_equals_predict(residual_classifier, tmp_path, word_bits):
    clf, X = residual_classifier, X_DIGITS_STD
    net = clf.export_binary()
    assert isinstance(net, PackedResidualNetwork)
    assert (net.code is not None) == (clf.encoding != "raw")
    assert (net.linear_coef is not None) == clf.linear
    compiled = CompiledNet(net, tmp_path, name="res", word_bits=word_bits)
    np.testing.assert_array_equal(compiled.stream(X, 32), net.stream(X))  # every float32 bit
    np.testing.assert_array_equal(net.classes_[compiled.predict_indices(X)], clf.predict(X))
    np.testing.assert_allclose(compiled.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(compiled.logits(X), net.logits(X), rtol=0, atol=1e-9)
    assert_same_as_numpy(compiled, net, X)
    assert compiled.classes(ctypes.c_int32) == list(range(10))
    assert f"Word size:     {word_bits} bits" in compiled.header
    assert "3 residual blocks of 32" in compiled.header


@needs_cc
@pytest.mark.parametrize("word_bits", [64, 32])
def test_residual_regressor_values_equal_predict(residual_regressor, tmp_path, word_bits):
    reg, X = residual_regressor, X_DIABETES
    net = reg.export_binary()
    compiled = CompiledNet(net, tmp_path, name="reg", word_bits=word_bits)
    assert "void reg_predict(const float *x, double *y);" in compiled.header
    np.testing.assert_array_equal(compiled.stream(X, 24), net.stream(X))
    np.testing.assert_array_equal(compiled.values(X)[:, 0], reg.predict(X))
    np.testing.assert_array_equal(compiled.values(X)[:, 0], net.predict(X))


@needs_cc
def test_residual_strict_warnings_portable_and_fused_multiply_add(residual_classifier, tmp_path):
    # GNU mode at -O3 with FMA: GCC would fuse the stream's h + d * k were contraction not
    # turned off in the source; ISO mode with every strict warning and the portable count
    net, X = residual_classifier.export_binary(), X_DIGITS_STD
    strict = ("-pedantic", "-Wconversion", "-Wshadow", "-Wstrict-prototypes", "-DBNN_PORTABLE")
    for name, extra in [("fused", ("-std=gnu99", "-O3", *_fma_flags())), ("strict", strict)]:
        compiled = CompiledNet(net, tmp_path, name=name, word_bits=32, extra=extra)
        np.testing.assert_array_equal(compiled.stream(X, 32), net.stream(X))
        np.testing.assert_array_equal(net.classes_[compiled.predict_indices(X)], net.predict(X))
    source = (tmp_path / "strict.c").read_text()
    assert "malloc" not in source
    nm = shutil.which("nm")
    if nm is not None:
        assert_states_its_constants(net, tmp_path, nm)


@needs_cc
def test_residual_without_blocks_and_constants_bytes(tmp_path):
    nm = shutil.which("nm")
    clf = BinaryNetClassifier((16,), architecture="residual", max_iter=1, random_state=0)
    net = fit_quiet(clf, X_DIGITS_STD, Y_DIGITS).export_binary()
    assert len(net.signs) == 0
    strict = ("-pedantic", "-Wconversion", "-Wshadow", "-Wstrict-prototypes", "-DBNN_PORTABLE")
    compiled = CompiledNet(net, tmp_path, name="flat", extra=strict)
    assert_same_as_numpy(compiled, net, X_DIGITS_STD)
    if nm is not None:
        assert_states_its_constants(net, tmp_path, nm)


def test_residual_rejects_the_other_task_and_nan(residual_regressor, tmp_path):
    net = residual_regressor.export_binary()
    with pytest.raises(ValueError, match="contradicts the network's own task"):
        net.to_c(tmp_path, task="classification")
    net.coef[0, 0] = np.nan
    with pytest.raises(ValueError, match="coef contains NaN"):
        net.to_c(tmp_path)

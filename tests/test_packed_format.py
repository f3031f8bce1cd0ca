"""The saved file of both deployed families: atomic save, bounded and named load errors,
non-finite parameters refused, and the task recorded in the artefact.

The networks here are built from numpy arrays (no torch) except in the regressor tests,
which fit a small :class:`~sklearn_bnn.BinaryNetRegressor`.
"""

import io
import json
import os
import subprocess
import sys
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.datasets import make_regression

from sklearn_bnn import BinaryNetRegressor, deploy
from sklearn_bnn.deploy import (
    InputCode,
    PackedBinaryNetwork,
    PackedFormatError,
    PackedLayer,
    PackedResidualNetwork,
)
from sklearn_bnn.deploy import packed as packed_module
from sklearn_bnn.deploy import packed_residual as residual_module

FAMILIES = ("plain", "residual")
X = np.random.default_rng(1).normal(size=(64, 5))


# ------------------------------------------------------------------ networks
def plain_network(seed=0, *, n_in=5, width=16, real_first=False, **changes):
    """A plain network with an input code, input scaling and a linear term (or, with
    ``real_first``, a real first layer of shape (width, n_in) and nothing else)."""
    rng = np.random.default_rng(seed)
    if real_first:
        weight = rng.normal(size=(width, n_in)).astype(np.float32)
        first = PackedLayer((width, n_in), np.zeros(0, np.uint8), _thresholds(rng, width), weight)
        code, n_inputs, scaling, linear = None, n_in, {}, {}
    else:
        code = InputCode(n_in, np.arange(n_in, dtype=np.int32),
                         rng.normal(size=n_in).astype(np.float32), True)
        n_inputs = code.n_outputs
        signs = rng.random((width, n_inputs)) < 0.5
        first = PackedLayer((width, n_inputs), np.packbits(signs), _thresholds(rng, width))
        scaling = {"input_offset": rng.normal(size=n_in), "input_scale": rng.random(n_in) + 0.5}
        linear = {"linear_coef": rng.normal(size=(n_in, 3)), "linear_intercept": rng.normal(size=3)}
    signs = rng.random((8, width)) < 0.5
    second = PackedLayer((8, width), np.packbits(signs),
                         rng.integers(-1, width + 1, 8).astype(np.int16))
    params = {
        "layers": [first, second],
        "head_weight": rng.normal(size=(3, 8)).astype(np.float32),
        "head_bias": rng.normal(size=3).astype(np.float32),
        "classes": np.array(["a", "b", "c"]),
        "code": code,
        "backend": "matmul",
        **scaling,
        **linear,
    }
    params.update(changes)
    return PackedBinaryNetwork(**params)


def _thresholds(rng, width):
    threshold = rng.normal(size=width).astype(np.float32)
    threshold[:2] = [-np.inf, np.inf]  # always and never +1: valid
    return threshold


def residual_params(seed=0, *, n_in=5, width=8):
    rng = np.random.default_rng(seed)
    return {
        "first_weight": rng.normal(size=(width, n_in)).astype(np.float32),
        "first_bias": rng.normal(size=width).astype(np.float32),
        "first_scale": np.float32(1 / np.sqrt(n_in)),
        "signs": rng.random((2, width, width)) < 0.5,
        "coef": rng.normal(size=(2, width)).astype(np.float32),
        "offset": rng.normal(size=(2, width)).astype(np.float32),
        "head_weight": rng.normal(size=(3, width)).astype(np.float32),
        "head_bias": rng.normal(size=3).astype(np.float32),
        "classes": np.array([4, 5, 6]),
    }


def residual_network(seed=0, *, linear=True, **sizes):
    net = PackedResidualNetwork(**residual_params(seed, **sizes))
    if linear:
        rng = np.random.default_rng(seed + 1)
        net.set_linear(rng.normal(size=(net.n_features_in_, 3)), rng.normal(size=3))
    return net


def network(family, seed=0):
    return plain_network(seed) if family == "plain" else residual_network(seed)


def load(family, file):
    cls = PackedBinaryNetwork if family == "plain" else PackedResidualNetwork
    return cls.load(file)


def saved(net) -> bytes:
    f = io.BytesIO()
    net.save(f)
    return f.getvalue()


def rewrite(data: bytes, fields=None, **arrays) -> bytes:
    """The archive with header fields changed (``None`` removes one) and arrays replaced."""
    with np.load(io.BytesIO(data)) as npz:
        contents = dict(npz)
    if fields is not None:
        header = json.loads(contents["header"].tobytes())
        header.update(fields)
        header = {k: v for k, v in header.items() if v is not None}
        contents["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    contents.update(arrays)
    f = io.BytesIO()
    np.savez_compressed(f, **contents)
    return f.getvalue()


def replace_member(data: bytes, name: str, content: bytes) -> bytes:
    """The zip with the raw bytes of member ``name`` replaced (its sizes as written)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = content if info.filename == name else src.read(info)
            dst.writestr(info.filename, body, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def npy_header(shape, dtype="<f4") -> bytes:
    f = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(f, header)
    return f.getvalue()


def assert_same_predictions(a, b):
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.logits(X), b.logits(X))


# ------------------------------------------------------------------ atomic save
@pytest.mark.parametrize("family", FAMILIES)
def test_interrupted_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, family):
    path = tmp_path / "net.bnn"
    network(family, seed=0).save(path)
    before = path.read_bytes()
    write_array = np.lib.format.write_array
    calls = []

    def interrupted(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # half of the third array, then Ctrl-C
            buffer = io.BytesIO()
            write_array(buffer, array, *args, **kwargs)
            fp.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            raise KeyboardInterrupt
        return write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        network(family, seed=1).save(path)
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["net.bnn"]
    monkeypatch.undo()
    assert_same_predictions(load(family, path), network(family, seed=0))


@pytest.mark.parametrize("family", FAMILIES)
def test_save_writes_exactly_the_given_name(tmp_path, family):
    net = network(family)
    net.save(tmp_path / "m.bin")
    net.save(str(tmp_path / "again.bin"))
    net.save(tmp_path / "again.bin")  # replaces
    assert sorted(os.listdir(tmp_path)) == ["again.bin", "m.bin"]
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "m.bin").stat().st_mode & 0o777 == 0o666 & ~mask  # as open() gives
    assert (tmp_path / "m.bin").read_bytes() == saved(net)  # a file object: the same bytes
    assert_same_predictions(load(family, tmp_path / "m.bin"), net)
    assert_same_predictions(deploy.load(tmp_path / "again.bin"), net)


# ------------------------------------------------------------------ bounded loading
def _big(family):
    """A network whose file is about 500 KB (a 256 x 512 float32 first-layer matrix)."""
    if family == "plain":
        return plain_network(n_in=512, width=256, real_first=True)
    return residual_network(n_in=512, width=256, linear=False)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    "n_values, n_bytes", [(2**40, 64), (16_000_000, 64), (1000, 4000)],
    ids=["8-TiB", "64-MB", "consistent-member"],
)
def test_crafted_shape_is_refused_within_twice_the_file_size(family, n_values, n_bytes):
    data = saved(_big(family))
    # the classes (read after the big matrix) declare n_values float32 numbers, n_bytes given
    crafted = replace_member(data, "classes.npy", npy_header((n_values,)) + b"\0" * n_bytes)
    assert len(crafted) > 400_000
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(PackedFormatError) as refused:
            load(family, io.BytesIO(crafted))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(crafted), (peak, len(crafted))
    assert refused.match("'classes' (has shape|declares)")


@pytest.mark.parametrize("family", FAMILIES)
def test_member_longer_than_its_npy_header_declares_is_refused(family):
    data = saved(network(family))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        bias = z.read("head.bias.npy")
    crafted = replace_member(data, "head.bias.npy", bias + b"\0" * 4096)
    with pytest.raises(PackedFormatError, match="'head.bias' declares 12 bytes of data"):
        load(family, io.BytesIO(crafted))


@pytest.mark.parametrize("family", FAMILIES)
def test_single_byte_corruptions_raise_only_packed_format_error(family):
    net = network(family)
    data = saved(net)
    refused = 0
    for start, change in ((0, lambda b: b ^ 0xFF), (3, lambda b: (b + 1) % 256)):
        for i in range(start, len(data), 7):
            corrupted = data[:i] + bytes([change(data[i])]) + data[i + 1 :]
            try:
                loaded = load(family, io.BytesIO(corrupted))
            except PackedFormatError:
                refused += 1
                continue
            # a byte no check reads (a time stamp, a zip64 field the directory repeats):
            # every array passed its CRC, so the network is the saved one
            assert_same_predictions(loaded, net)
    assert refused > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_nested_or_oversized_header_is_a_packed_format_error(family):
    data = saved(network(family))
    nested = np.frombuffer(b"[" * 100_000 + b"]" * 100_000, np.uint8)  # RecursionError
    oversized = np.frombuffer(b" " * (1 << 20) + b"{}", np.uint8)  # over 1 MiB
    for header in (nested, oversized):
        crafted = rewrite(data, header=header)
        with pytest.raises(PackedFormatError, match="not a readable"):
            load(family, io.BytesIO(crafted))
        with pytest.raises(PackedFormatError, match="not a saved sklearn-bnn network"):
            deploy.load(io.BytesIO(crafted))


# ------------------------------------------------------------------ non-finite values
NAN_AT_LOAD = {
    "plain": ["head.weight", "head.bias", "layer0.threshold", "linear.coef", "code.threshold",
              "input.scale"],
    "residual": ["head.weight", "first.weight", "blocks.coef", "blocks.offset", "linear.coef"],
}


@pytest.mark.parametrize(
    "family, key", [(f, k) for f, keys in NAN_AT_LOAD.items() for k in keys]
)
def test_nan_parameters_are_refused_at_load(family, key):
    data = saved(network(family))
    with np.load(io.BytesIO(data)) as npz:
        array = npz[key].copy()
    array.flat[0] = np.nan
    with pytest.raises(PackedFormatError, match=f"array '{key}' contains NaN"):
        load(family, io.BytesIO(rewrite(data, **{key: array})))


@pytest.mark.parametrize("family", FAMILIES)
def test_infinite_parameters_are_refused_at_load_except_thresholds(family):
    data = saved(network(family))
    key = "head.bias"
    with np.load(io.BytesIO(data)) as npz:
        array = npz[key].copy()
    array[0] = np.inf
    with pytest.raises(PackedFormatError, match=f"array '{key}' contains NaN or infinity"):
        load(family, io.BytesIO(rewrite(data, **{key: array})))
    if family == "plain":  # the first layer's +-inf thresholds (never, always) load
        assert np.isinf(load(family, io.BytesIO(data)).layers[0].threshold).sum() == 2


def test_nan_parameters_are_refused_at_construction():
    net = plain_network()
    first, second = net.layers
    nan_head = net.head_weight.copy()
    nan_head[1, 2] = np.nan
    with pytest.raises(ValueError, match="head_weight contains NaN"):
        plain_network(head_weight=nan_head)
    threshold = first.threshold.copy()
    threshold[3] = np.nan
    nan_first = PackedLayer(first.shape, first.bits, threshold)
    with pytest.raises(ValueError, match=r"layers\[0\].threshold contains NaN"):
        plain_network(layers=[nan_first, second])
    coef = net.linear_coef.copy()
    coef[0, 0] = np.nan
    with pytest.raises(ValueError, match="linear_coef contains NaN"):
        plain_network(linear_coef=coef)
    for name in ("coef", "head_bias", "first_weight"):
        params = residual_params()
        params[name] = params[name].copy()
        params[name].flat[0] = np.nan
        with pytest.raises(ValueError, match=f"{name} contains NaN"):
            PackedResidualNetwork(**params)
    with pytest.raises(ValueError, match="linear_coef contains NaN"):
        residual_network(linear=False).set_linear(coef, np.zeros(3))


def test_c_export_refuses_a_nan_set_after_construction(tmp_path):
    net = plain_network()
    net.head_bias = net.head_bias.copy()
    net.head_bias[0] = np.nan  # not through the constructor
    with pytest.raises(ValueError, match="head_bias contains NaN"):
        net.to_c(tmp_path)
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------ the task
def _fit(y, architecture="plain", seed=0):
    X_reg, _ = make_regression(200, 5, noise=1.0, random_state=seed)
    reg = BinaryNetRegressor((16, 16), architecture=architecture, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X_reg, y)
    return reg, X_reg


def _targets(ndim):
    _, y = make_regression(200, 5, n_targets=2, noise=1.0, random_state=0)
    return {"1-D": y[:, 0], "one column": y[:, :1], "2-D": y}[ndim]


@pytest.mark.parametrize("architecture", ["plain", "residual"])
@pytest.mark.parametrize("ndim", ["1-D", "one column", "2-D"])
def test_regressor_export_predicts_the_regressor_values(tmp_path, architecture, ndim):
    y = _targets(ndim)
    reg, X_reg = _fit(y, architecture)
    packed = reg.export_binary()
    expected = reg.predict(X_reg)
    assert expected.shape == y.shape
    np.testing.assert_array_equal(packed.predict(X_reg), expected)  # shape and values
    assert packed.task == "regression"
    with pytest.raises(ValueError, match="predict_proba applies to a classification network"):
        packed.predict_proba(X_reg)
    with pytest.raises(ValueError, match="task='regression'"):
        packed.decision_function(X_reg)
    packed.save(tmp_path / "reg.bnn")
    loaded = deploy.load(tmp_path / "reg.bnn")
    assert type(loaded) is type(packed) and loaded.task == "regression"
    np.testing.assert_array_equal(loaded.predict(X_reg), expected)


def test_regressor_export_writes_regression_c_by_default(tmp_path):
    reg, _ = _fit(_targets("1-D"))
    header, _ = reg.export_binary().to_c(tmp_path, name="reg")
    assert "void reg_predict(const float *x, double *y);" in header.read_text()
    with pytest.raises(ValueError, match="contradicts the network's own task 'regression'"):
        reg.export_binary().to_c(tmp_path, task="classification")


def test_regression_file_is_format_4_and_a_classification_keeps_the_oldest():
    net = plain_network(task="regression", target_ndim=2)
    header = json.loads(np.load(io.BytesIO(saved(net)))["header"].tobytes())
    assert header["version"] == 4 == packed_module.FORMAT_VERSION - 1
    assert header["task"] == "regression" and header["target_ndim"] == 2
    header = json.loads(np.load(io.BytesIO(saved(plain_network())))["header"].tobytes())
    assert header["version"] == 3 and header["task"] == "classification"
    residual = PackedResidualNetwork(**residual_params(), task="regression")
    header = json.loads(np.load(io.BytesIO(saved(residual)))["header"].tobytes())
    assert header["version"] == 3 == residual_module.FORMAT_VERSION - 1
    assert header["task"] == "regression" and header["width"] == 8


@pytest.mark.parametrize("family", FAMILIES)
def test_files_of_earlier_versions_load_as_classifications(family):
    net = network(family)
    data = saved(net)
    if family == "plain":  # version 3 (a linear term), as the previous version wrote it
        old = rewrite(data, fields={"version": 3, "task": None, "target_ndim": None})
    else:  # version 2 (a linear term): no sizes, no linear flag, no task
        removed = dict.fromkeys(("width", "n_inputs", "n_outputs", "linear", "task",
                                 "target_ndim"))
        old = rewrite(data, fields={"version": 2, **removed})
    header = json.loads(np.load(io.BytesIO(old))["header"].tobytes())
    assert "task" not in header
    loaded = deploy.load(io.BytesIO(old))
    assert type(loaded) is type(net) and loaded.task == "classification"
    assert_same_predictions(loaded, net)


def test_residual_popcount_runs_without_numpy_bitwise_count():
    # numpy < 2.0 has no bitwise_count: the byte-table popcount of packed.py stands in
    script = """
import numpy as np
if hasattr(np, "bitwise_count"):
    del np.bitwise_count
from sklearn_bnn.deploy.packed_residual import PackedResidualNetwork
rng = np.random.default_rng(0)
f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)
net = PackedResidualNetwork(f32(70, 5), f32(70), 0.5, rng.random((3, 70, 70)) < 0.5,
                            f32(3, 70), f32(3, 70), f32(2, 70), f32(2), backend="popcount")
X = rng.normal(size=(300, 5))
units = net.transform(X)
net.backend = "matmul"
assert np.array_equal(units, net.transform(X)) and len(np.unique(units)) == 2
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="no fchmod on this platform")
def test_save_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    from sklearn_bnn.deploy import PackedLayer

    layer = PackedLayer((2, 3), np.packbits([1, 0, 1, 0, 0, 1]), np.zeros(2, np.float32))
    net = PackedBinaryNetwork([layer], np.ones((2, 2), np.float32), np.zeros(2, np.float32))
    path = tmp_path / "m.npz"
    net.save(path)
    os.chmod(path, 0o600)
    net.save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(FileNotFoundError, match="cannot save to .*nodir"):
        net.save(tmp_path / "nodir" / "m.npz")


# ------------------------------------------------- a linear term that reads the input code
def code_reading(family):
    """A network of ``family`` with an input code (5 features, kept, and 5 bits) and a
    linear term that reads it (``linear_input="code"``: 10 inputs)."""
    rng = np.random.default_rng(7)
    if family == "plain":
        net = plain_network()
    else:
        code = InputCode(5, np.arange(5, dtype=np.int32),
                         rng.normal(size=5).astype(np.float32), True)
        net = PackedResidualNetwork(**residual_params(n_in=10), code=code)
    net.set_linear(rng.normal(size=(10, 3)), rng.normal(size=3), reads="code")
    return net


def header_of(data: bytes) -> dict:
    return json.loads(np.load(io.BytesIO(data))["header"].tobytes())


@pytest.mark.parametrize("family", FAMILIES)
def test_a_term_of_the_code_reads_the_code_and_round_trips(family):
    net = code_reading(family)
    data = saved(net)
    header = header_of(data)
    newest = (packed_module if family == "plain" else residual_module).FORMAT_VERSION
    assert header["version"] == newest and header["linear_input"] == "code"
    loaded = load(family, io.BytesIO(data))
    assert loaded.linear_input == "code"
    np.testing.assert_array_equal(loaded.logits(X), net.logits(X))
    # reference: the code written out in numpy, then a plain product with the term
    Xv = net._validate(X).astype(np.float64)
    bits = np.where(Xv[:, net.code.feature] >= net.code.threshold, 1.0, -1.0)
    coded = np.concatenate([Xv, bits], axis=1)
    loaded.set_linear(None, None)
    expected = loaded.logits(X) + coded @ net.linear_coef + net.linear_intercept
    np.testing.assert_allclose(net.logits(X), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_term_of_the_features_keeps_the_older_file(family):
    net = network(family)
    assert "linear_input" not in header_of(saved(net))
    assert net.linear_input == "features"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("reads", ["bogus", 3])
def test_a_bad_linear_input_is_refused(family, reads):
    data = rewrite(saved(code_reading(family)), fields={"linear_input": reads})
    with pytest.raises(PackedFormatError, match="invalid linear_input"):
        load(family, io.BytesIO(data))


def test_a_term_of_the_code_needs_a_code():
    net = plain_network(real_first=True)
    with pytest.raises(ValueError, match="'code' needs an input code"):
        net.set_linear(np.zeros((5, 3)), np.zeros(3), reads="code")
    data = rewrite(saved(plain_network()), fields={"code": None, "linear_input": "code"})
    with pytest.raises(PackedFormatError, match="invalid linear_input 'code'"):
        PackedBinaryNetwork.load(io.BytesIO(data))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_term_of_the_code_is_shaped_as_the_code(family):
    net = code_reading(family)
    with pytest.raises(ValueError, match=r"linear term of the code needs coef of shape \(10, 3\)"):
        net.set_linear(np.zeros((5, 3)), np.zeros(3), reads="code")
    # the file's coef must be shaped as the code too
    data = rewrite(saved(net), **{"linear.coef": np.zeros((5, 3))})
    with pytest.raises(PackedFormatError):
        load(family, io.BytesIO(data))

"""The residual family's exported network: its backends (the native kernel's integer dot
products, the float32 product, numpy's popcount, and ``"auto"``) give the same stream, bit
for bit.  Its C and ONNX exports: ``tests/test_c_export.py`` and ``tests/test_onnx.py``."""

import io
import pickle

import numpy as np
import pytest

from sklearn_bnn.deploy import _kernel, packed, packed_residual
from sklearn_bnn.deploy.packed_residual import PackedResidualNetwork


def native_or_skip():
    try:
        _kernel.load()
    except _kernel.NativeKernelError as exc:
        pytest.skip(f"native kernel unavailable: {exc}")


def random_network(seed, width, n_blocks=4, n_in=9, backend="matmul"):
    """Random parameters; offsets and branch scales small against the first layer's stream,
    so that some units change sign from block to block."""
    rng = np.random.default_rng(seed)

    def f32(*shape, scale=1.0):
        return (scale * rng.normal(size=shape)).astype(np.float32)

    return PackedResidualNetwork(
        f32(width, n_in), f32(width, scale=0.1), np.float32(1 / np.sqrt(n_in)),
        rng.random((n_blocks, width, width)) < 0.5, f32(n_blocks, width, scale=1 / width),
        f32(n_blocks, width, scale=0.05), f32(3, width), f32(3), backend=backend,
    )


def test_backends_are_the_plain_familys():
    # the names, their checks and "auto" are shared with PackedBinaryNetwork
    assert packed_residual.BACKENDS.keys() == packed.BACKENDS.keys()
    assert random_network(0, 8, backend="popcount").backend == "popcount"
    assert random_network(0, 8, backend="auto").backend == "auto"
    with pytest.raises(ValueError, match="backend='gpu' is not available"):
        random_network(0, 8, backend="gpu")
    net = random_network(0, 8)
    with pytest.raises(ValueError, match="is not available"):
        net.backend = "gpu"
    with pytest.raises(ValueError, match="is not available"):
        PackedResidualNetwork.load(io.BytesIO(b""), backend="gpu")


@pytest.mark.parametrize("width", [1, 63, 64, 65, 130])
def test_native_stream_equals_matmul_and_popcount(width):
    native_or_skip()
    net = random_network(width, width, backend="native")
    # more rows than one forward block (4096), so that two blocks run
    X = np.random.default_rng(width).normal(size=(4100, 9)).astype(np.float32)
    stream = net.stream(X)
    for backend in ("matmul", "popcount", "auto"):
        net.backend = backend
        np.testing.assert_array_equal(net.stream(X), stream)  # every float32 bit
    assert set(net._kernels) == {"native", "matmul", "popcount"}  # auto ran native


def test_auto_without_the_kernel_runs_matmul(monkeypatch):
    net = random_network(1, 40, backend="auto")
    X = np.random.default_rng(1).normal(size=(300, 9))
    expected = net.predict_proba(X)
    monkeypatch.setenv("SKLEARN_BNN_NATIVE", "0")
    fresh = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(fresh.predict_proba(X), expected)
    assert set(fresh._kernels) == {"matmul"}


def test_native_network_pickles_saves_and_loads():
    native_or_skip()
    net = random_network(2, 70, backend="native")
    X = np.random.default_rng(2).normal(size=(200, 9))
    expected = net.predict(X)
    clone = pickle.loads(pickle.dumps(net))
    assert clone.backend == "native" and clone._kernels == {}
    np.testing.assert_array_equal(clone.predict(X), expected)
    buffer = io.BytesIO()
    net.save(buffer)
    for backend in ("native", "auto"):
        loaded = PackedResidualNetwork.load(io.BytesIO(buffer.getvalue()), backend=backend)
        assert loaded.backend == backend
        np.testing.assert_array_equal(loaded.stream(X), net.stream(X))


def test_pickle_of_an_earlier_version_loads():
    # before the backend property: a plain "backend" attribute and "_kernels" None
    net = random_network(3, 16)
    X = np.random.default_rng(3).normal(size=(50, 9))
    state = {**net.__dict__, "_kernels": None}
    state["backend"] = state.pop("_backend")
    old = object.__new__(PackedResidualNetwork)
    old.__setstate__(state)
    assert old.backend == "matmul"
    np.testing.assert_array_equal(old.stream(X), net.stream(X))

"""The native XOR + popcount kernel: identical units to an integer reference and to numpy."""

import ctypes
import itertools
import os
import pickle

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from sklearn_bnn.deploy import _kernel
from sklearn_bnn.deploy import packed as packed_module
from sklearn_bnn.deploy.packed import PackedBinaryNetwork, PackedLayer


def _native_or_skip():
    try:
        return _kernel.load()
    except _kernel.NativeKernelError as exc:
        pytest.skip(f"native kernel unavailable: {exc}")


def integer_units(signs, max_mismatch, on):
    """Reference: +-1 integer dot product d, popcount = (N - d) / 2 <= P."""
    s = np.where(signs, 1.0, -1.0)  # integer sums, exact in float64
    x = np.where(on, 1.0, -1.0)
    mismatches = (signs.shape[1] - x @ s.T) / 2
    return mismatches <= max_mismatch


def random_layer(rng, n_in, n_out):
    """Random signs, thresholds over the whole range [-1, N] (ties at every count)."""
    signs = rng.random((n_out, n_in)) < 0.5
    centre = n_in // 2 + rng.integers(-2, 3, n_out)
    max_mismatch = np.clip(centre, -1, n_in)
    max_mismatch[: min(2, n_out)] = [-1, n_in][: min(2, n_out)]  # never and always
    return signs, max_mismatch


@pytest.mark.parametrize(
    "n, n_in, n_out",
    [
        (300, 1, 1),
        (257, 63, 9),
        (129, 64, 64),
        (70, 65, 17),
        (1, 130, 23),
        (0, 7, 3),
        (33, 200, 1000),
        (600, 1000, 260),  # enough work for the kernel's parallel path
    ],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_layer_equals_integer_reference_every_isa(n, n_in, n_out, threads):
    lib = _native_or_skip()
    rng = np.random.default_rng(n + n_in + n_out)
    signs, max_mismatch = random_layer(rng, n_in, n_out)
    on = rng.random((n, n_in)) < 0.5
    expected = integer_units(signs, max_mismatch, on)
    kernel = _kernel.prepare(signs, max_mismatch)
    for isa in range(lib.bnn_best_isa() + 1):
        out = _kernel.run(on, kernel, threads=threads, isa=isa)
        assert out.dtype == bool and out.shape == (n, n_out)
        np.testing.assert_array_equal(out, expected, err_msg=_kernel.ISA_NAMES[isa])


def test_ties_are_counted_as_plus_one():
    _native_or_skip()
    signs = np.ones((1, 70), dtype=bool)
    on = np.zeros((71, 70), dtype=bool)
    for i in range(71):
        on[i, :i] = True  # popcount(s XOR x) = 70 - i
    out = _kernel.run(on, _kernel.prepare(signs, np.array([35])), threads=1)
    np.testing.assert_array_equal(out[:, 0], 70 - np.arange(71) <= 35)


def random_packed_network(seed, sizes=(7, 65, 1, 129, 200, 8), n_outputs=4):
    rng = np.random.default_rng(seed)
    layers = []
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        signs, max_mismatch = random_layer(rng, n_in, n_out)
        threshold = (
            rng.normal(size=n_out).astype(np.float32) if k == 0 else max_mismatch.astype(np.int16)
        )
        layers.append(PackedLayer((n_out, n_in), np.packbits(signs.ravel()), threshold))
    head = rng.normal(size=(n_outputs, sizes[-1])).astype(np.float32)
    return PackedBinaryNetwork(layers, head, rng.normal(size=n_outputs).astype(np.float32))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_samples", [0, 1, 1000])
def test_native_backend_identical_to_numpy_backends(seed, n_samples):
    _native_or_skip()
    net = random_packed_network(seed)
    X = np.random.default_rng(seed).normal(size=(n_samples, 7))
    results = {}
    for backend in ("popcount", "matmul", "native"):
        net.backend = backend
        results[backend] = (net.transform(X), net.logits(X), net.predict(X))
    for backend in ("matmul", "native"):
        for got, want in zip(results[backend], results["popcount"]):
            np.testing.assert_array_equal(got, want)
    assert results["native"][0].shape == (n_samples, 8)


def test_threads_follow_openmp_limits_and_the_override(monkeypatch):
    _native_or_skip()
    monkeypatch.delenv("SKLEARN_BNN_NUM_THREADS", raising=False)
    with threadpool_limits(1):
        assert _kernel.n_threads() == 1
    with threadpool_limits(2):
        assert _kernel.n_threads() == 2
    monkeypatch.setenv("SKLEARN_BNN_NUM_THREADS", "3")
    assert _kernel.n_threads() == 3
    monkeypatch.setenv("SKLEARN_BNN_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="SKLEARN_BNN_NUM_THREADS='many'"):
        _kernel.n_threads()


def test_auto_picks_native_when_available(monkeypatch):
    _native_or_skip()
    net = random_packed_network(0)
    assert net.backend == "auto" == packed_module.DEFAULT_BACKEND
    assert packed_module._resolve_backend("auto") == "native"
    monkeypatch.setenv("SKLEARN_BNN_NATIVE", "0")
    assert packed_module._resolve_backend("auto") == "matmul"


def test_without_compiler_native_raises_and_auto_falls_back(monkeypatch):
    monkeypatch.setattr(_kernel, "_STATE", {})
    monkeypatch.setenv("CC", "no-such-compiler-sklearn-bnn")
    with pytest.raises(_kernel.NativeKernelError, match="needs a C compiler"):
        _kernel.load()
    net = random_packed_network(1)
    with pytest.raises(_kernel.NativeKernelError, match="backend='matmul'"):
        net.backend = "native"
    X = np.random.default_rng(0).normal(size=(50, 7))
    net.backend = "auto"
    with pytest.warns(_kernel.NativeKernelWarning, match="needs a C compiler"):
        assert packed_module._resolve_backend("auto") == "matmul"
    expected = random_packed_network(1)
    expected.backend = "popcount"
    np.testing.assert_array_equal(net.transform(X), expected.transform(X))


def test_unwritable_cache_dir_falls_back_to_a_private_directory(monkeypatch, tmp_path):
    _native_or_skip()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SKLEARN_BNN_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    monkeypatch.setattr(_kernel, "_STATE", {})
    with pytest.warns(_kernel.NativeKernelWarning, match="cannot be created"):
        directory = _kernel._cache_dir()
    assert os.path.isdir(directory) and not directory.startswith(str(blocker))
    monkeypatch.setenv("SKLEARN_BNN_CACHE_DIR", str(tmp_path / "cache"))
    assert _kernel._cache_dir() == str(tmp_path / "cache")
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700  # created private


def test_network_pickles_after_a_native_predict():
    _native_or_skip()
    net = random_packed_network(2)
    net.backend = "native"
    X = np.random.default_rng(2).normal(size=(100, 7))
    expected = net.predict(X)
    clone = pickle.loads(pickle.dumps(net))
    assert clone.backend == "native" and clone._kernels == {}
    np.testing.assert_array_equal(clone.predict(X), expected)


def test_source_is_the_shipped_c_file_and_names_the_library():
    with open(_kernel.SOURCE_FILE) as f:
        source = f.read()
    assert _kernel.SOURCE_FILE.endswith("_kernel.c") and "int bnn_layer(" in source
    flags = _kernel._flag_sets()[0]
    name = _kernel._library_name(source, "cc", flags)
    assert name != _kernel._library_name(source + " ", "cc", flags)
    assert name != _kernel._library_name(source, "cc 2", flags)
    assert name != _kernel._library_name(source, "cc", flags[1:])


def test_a_private_copy_is_loaded_where_open_files_have_no_name(monkeypatch, tmp_path):
    _native_or_skip()
    monkeypatch.setattr(_kernel, "_STATE", {})
    monkeypatch.setattr(_kernel, "_PROC_FD_DIR", str(tmp_path / "no-such-directory"))
    monkeypatch.setenv("SKLEARN_BNN_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(3)
    signs, max_mismatch = random_layer(rng, 100, 20)
    on = rng.random((50, 100)) < 0.5
    out = _kernel.run(on, _kernel.prepare(signs, max_mismatch), threads=1)
    np.testing.assert_array_equal(out, integer_units(signs, max_mismatch, on))
    leftovers = [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the private copy and the build directory are removed


def test_any_load_failure_makes_available_false_with_one_warning(monkeypatch):
    def failing_build():
        raise OSError("disk on fire")

    monkeypatch.setattr(_kernel, "_STATE", {})
    monkeypatch.setattr(_kernel, "_build", failing_build)
    monkeypatch.delenv("SKLEARN_BNN_NATIVE", raising=False)
    with pytest.warns(_kernel.NativeKernelWarning, match="OSError: disk on fire") as caught:
        assert not _kernel.available() and not _kernel.available()
    assert len(caught) == 1
    with pytest.raises(_kernel.NativeKernelError, match="disk on fire"):
        _kernel.load()


def test_a_forked_child_runs_serially(monkeypatch):
    _native_or_skip()
    monkeypatch.setenv("SKLEARN_BNN_NUM_THREADS", "2")
    assert _kernel.n_threads() == 2
    monkeypatch.setitem(_kernel._PROCESS, "forked", True)  # as after os.fork()
    assert _kernel.n_threads() == 1
    rng = np.random.default_rng(4)
    signs, max_mismatch = random_layer(rng, 1000, 260)
    on = rng.random((600, 1000)) < 0.5  # above the parallel threshold
    out = _kernel.run(on, _kernel.prepare(signs, max_mismatch), threads=2)
    np.testing.assert_array_equal(out, integer_units(signs, max_mismatch, on))


def numpy_dots(signs, on):
    """Reference: (2 on - 1) @ (2 signs - 1).T in float32 (integers, exact below 2**24)."""
    x = on.astype(np.float32) * 2 - 1
    s = signs.astype(np.float32) * 2 - 1
    return x @ s.T


@pytest.mark.parametrize(
    "n, n_in, n_out",
    [
        (1, 1, 1),
        (1, 130, 23),
        (300, 1, 5),
        (257, 63, 9),
        (129, 64, 64),
        (70, 65, 17),
        (65, 100, 33),
        (0, 7, 3),
        (33, 200, 1000),
        (600, 1000, 260),  # enough work for the kernel's parallel path
    ],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_dot_equals_numpy_every_isa(n, n_in, n_out, threads):
    lib = _native_or_skip()
    rng = np.random.default_rng(10 * n + n_in + n_out)
    signs = rng.random((n_out, n_in)) < 0.5
    on = rng.random((n, n_in)) < 0.5
    if n > 2:
        on[0], on[1] = signs[0], ~signs[0]  # the extremes +N and -N
    expected = numpy_dots(signs, on)
    kernel = _kernel.prepare_dot(signs)
    for isa in range(lib.bnn_best_isa() + 1):
        out = _kernel.run_dot(on, kernel, threads=threads, isa=isa)
        assert out.dtype == np.int32 and out.shape == (n, n_out)
        np.testing.assert_array_equal(out, expected, err_msg=_kernel.ISA_NAMES[isa])
    if n > 2 and n_out:
        assert out[0, 0] == n_in and out[1, 0] == -n_in


def test_dot_and_units_agree_and_follow_the_fork_rule(monkeypatch):
    _native_or_skip()
    rng = np.random.default_rng(5)
    signs, max_mismatch = random_layer(rng, 1000, 260)
    on = rng.random((600, 1000)) < 0.5  # above the parallel threshold
    monkeypatch.setitem(_kernel._PROCESS, "forked", True)  # as after os.fork(): serial
    dots = _kernel.run_dot(on, _kernel.prepare_dot(signs), threads=2)
    units = _kernel.run(on, _kernel.prepare(signs, max_mismatch), threads=2)
    np.testing.assert_array_equal(dots, numpy_dots(signs, on))
    np.testing.assert_array_equal(units, (1000 - dots) // 2 <= max_mismatch)


def test_run_refuses_units_that_do_not_fit_the_weights():
    _native_or_skip()
    signs = np.ones((3, 70), dtype=bool)
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.run_dot(np.ones((2, 130), dtype=bool), _kernel.prepare_dot(signs))
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.run(np.ones((2, 60), dtype=bool), _kernel.prepare(signs, np.zeros(3)))


def test_popcount_peak_counts_its_work():
    lib = _native_or_skip()
    sink = ctypes.c_uint64()
    for isa in range(lib.bnn_best_isa() + 1):
        done = lib.bnn_popcount_peak(1000, isa, ctypes.byref(sink))
        assert done == 1000 * 12 * (512 if isa == 2 else 64)
        assert sink.value > 0
    rate = _kernel.popcount_peak(0.01)
    assert np.isfinite(rate) and rate > 1e8

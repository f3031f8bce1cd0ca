"""The native kernel's cache can be trusted, and a forked child never waits on OpenMP threads.

Each test builds the kernel in its own cache directory (``SKLEARN_BNN_CACHE_DIR`` under
``tmp_path``) with the module's memoised library reset, so nothing is shared with the
user's cache or with other tests.
"""

import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from sklearn_bnn.deploy import _kernel
from sklearn_bnn.deploy import packed as packed_module
from sklearn_bnn.deploy.packed import PackedBinaryNetwork, PackedLayer

needs_gcc = pytest.mark.skipif(
    shutil.which("gcc") is None, reason="needs gcc to compile a planted library"
)


def _has_compiler():
    return any(shutil.which(name) for name in ("cc", "gcc", "clang"))


needs_compiler = pytest.mark.skipif(
    not _has_compiler(), reason="the native kernel needs a C compiler (cc, gcc or clang)"
)


@pytest.fixture(autouse=True)
def fresh_kernel(tmp_path, monkeypatch):
    """No library loaded yet; a private cache directory; the default build settings."""
    monkeypatch.setattr(_kernel, "_STATE", {})
    for name in ("CC", "SKLEARN_BNN_CFLAGS", "SKLEARN_BNN_NATIVE"):
        monkeypatch.delenv(name, raising=False)
    _use_cache(monkeypatch, _private(tmp_path / "cache"))


def _private(path):
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _use_cache(monkeypatch, path):
    monkeypatch.setenv("SKLEARN_BNN_CACHE_DIR", str(path))
    monkeypatch.setattr(_kernel, "_STATE", {})


def _libraries(directory):
    return sorted(p for p in directory.glob("bnn-kernel-*") if not p.name.endswith(".sha256"))


def _kernel_file_name(tmp_path, monkeypatch):
    """The file name under which the kernel is cached here (built once in a probe cache)."""
    probe = _private(tmp_path / "probe")
    _use_cache(monkeypatch, probe)
    _kernel.load()
    (library,) = _libraries(probe)
    return library.name


PLANTED = r"""
#include <stdint.h>
#include <stdio.h>
__attribute__((constructor)) static void planted(void)
{
    FILE *f = fopen(MARKER, "w");
    if (f) {
        fputs("the planted library ran\n", f);
        fclose(f);
    }
}
int bnn_best_isa(void) { return 0; }
int bnn_max_threads(void) { return 1; }
#ifndef NO_SYMBOL
int bnn_layer(const void *on, int64_t n, int64_t n_in, const void *w, const void *p,
              int64_t n_out, void *scratch, void *out, int n_threads, int isa)
{
    return 0; /* leaves the output unwritten */
}
#endif
"""


def _plant(target, marker, *, no_symbol=False):
    """Compile a library whose constructor writes ``marker`` into ``target``, with the
    SHA-256 record that a genuine build would write; the library's bytes."""
    source = target.parent / f"{target.name}.planted.c"
    source.write_text(PLANTED)
    defines = [f'-DMARKER="{marker}"'] + (["-DNO_SYMBOL"] if no_symbol else [])
    subprocess.run(
        ["gcc", "-shared", "-fPIC", *defines, str(source), "-o", str(target)], check=True
    )
    source.unlink()
    data = target.read_bytes()
    record = target.parent / f"{target.name}.sha256"
    record.write_text(hashlib.sha256(data).hexdigest() + "\n")
    record.chmod(0o600)
    return data


def _layer(seed=0, n=257, n_in=130, n_out=70):
    rng = np.random.default_rng(seed)
    signs = rng.random((n_out, n_in)) < 0.5
    max_mismatch = rng.integers(-1, n_in + 1, n_out)
    on = rng.random((n, n_in)) < 0.5
    return signs, max_mismatch, on


def _numpy_units(signs, max_mismatch, on):
    """The units by the numpy backends "popcount" and "matmul" (which agree)."""
    results = []
    for name in ("popcount", "matmul"):
        prepare, run = packed_module.BACKENDS[name]
        results.append(run(on, prepare(signs, max_mismatch)))
    np.testing.assert_array_equal(results[0], results[1])
    return results[0]


def _assert_native_equals_numpy(threads=None):
    signs, max_mismatch, on = _layer()
    got = _kernel.run(on, _kernel.prepare(signs, max_mismatch), threads=threads)
    np.testing.assert_array_equal(got, _numpy_units(signs, max_mismatch, on))


def _messages(caught, text):
    return [str(w.message) for w in caught if text in str(w.message)]


@needs_gcc
def test_library_in_a_group_writable_cache_is_not_loaded(tmp_path, monkeypatch):
    name = _kernel_file_name(tmp_path, monkeypatch)
    shared, marker = tmp_path / "shared", tmp_path / "marker"
    _private(shared)
    _plant(shared / name, marker)
    shared.chmod(0o775)
    _use_cache(monkeypatch, shared)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _kernel.available()
    assert not marker.exists(), "the planted library was loaded"
    _assert_native_equals_numpy()
    (message,) = _messages(caught, str(shared))
    assert "writable by group or others" in message
    private = _kernel._STATE["private"]
    assert private in message and _libraries(pathlib.Path(private))


@needs_gcc
@pytest.mark.parametrize("link", ["entry", "directory"])
def test_a_symbolic_link_in_the_cache_is_not_followed(tmp_path, monkeypatch, link):
    name = _kernel_file_name(tmp_path, monkeypatch)
    elsewhere, marker = _private(tmp_path / "elsewhere"), tmp_path / "marker"
    planted = _plant(elsewhere / name, marker)
    if link == "entry":  # the cache holds a link to a library, and its genuine-looking record
        cache = _private(tmp_path / "linked-entry")
        (cache / name).symlink_to(elsewhere / name)
        shutil.copy(elsewhere / f"{name}.sha256", cache / f"{name}.sha256")
    else:  # the cache directory itself is a link
        cache = tmp_path / "linked-directory"
        cache.symlink_to(elsewhere, target_is_directory=True)
    _use_cache(monkeypatch, cache)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _kernel.available()
    assert not marker.exists(), "the planted library was loaded"
    _assert_native_equals_numpy()
    assert (elsewhere / name).read_bytes() == planted  # the link's target is left alone
    if link == "entry":
        assert not (cache / name).is_symlink()  # rebuilt: a regular file replaces the link
    else:
        (message,) = _messages(caught, str(cache))
        assert "symbolic link" in message


CHILD = """
import numpy as np
from sklearn_bnn.deploy import _kernel
from sklearn_bnn.deploy import packed
rng = np.random.default_rng(0)
signs, p, on = rng.random((70, 130)) < 0.5, rng.integers(-1, 131, 70), rng.random((257, 130)) < 0.5
want = packed.BACKENDS["popcount"][1](on, packed.BACKENDS["popcount"][0](signs, p))
assert (_kernel.run(on, _kernel.prepare(signs, p)) == want).all()
print("identical")
"""


@needs_compiler
def test_truncated_cached_library_is_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, SKLEARN_BNN_CACHE_DIR=str(cache))

    def child():
        return subprocess.run(
            [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300
        )

    # built by a child: truncating a library this process has mapped would kill it (SIGBUS)
    assert child().returncode == 0
    (library,) = _libraries(cache)
    original = library.read_bytes()
    with open(library, "r+b") as f:  # as a crash before the data reached the disk leaves it
        f.truncate(len(original) // 2)
    # in a subprocess: loading the truncated file used to kill the process (SIGBUS)
    result = child()
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "identical"
    rebuilt = library.read_bytes()
    assert len(rebuilt) == len(original)
    assert (cache / f"{library.name}.sha256").read_text().strip() == (
        hashlib.sha256(rebuilt).hexdigest()
    )
    _kernel._STATE.clear()  # load again, as a new process would
    _assert_native_equals_numpy()


@needs_compiler
@pytest.mark.parametrize("altered", ["library", "record"])
def test_hash_mismatch_leads_to_a_rebuild(tmp_path, altered):
    cache = tmp_path / "cache"
    _kernel.load()
    (library,) = _libraries(cache)
    record = cache / f"{library.name}.sha256"
    original, inode = library.read_bytes(), library.stat().st_ino
    if altered == "library":  # still a loadable library, but not the bytes that were built
        with open(library, "ab") as f:
            f.write(b"\0" * 4096)
    else:
        record.write_text("0" * 64 + "\n")
    _kernel._STATE.clear()  # load again, as a new process would
    _assert_native_equals_numpy()
    assert library.stat().st_ino != inode, "the library was not rebuilt"
    rebuilt = library.read_bytes()
    assert len(rebuilt) == len(original)
    assert record.read_text().strip() == hashlib.sha256(rebuilt).hexdigest()


@needs_compiler
def test_library_without_the_symbol_falls_back_with_one_message(monkeypatch):
    # every build of the kernel then lacks bnn_layer
    monkeypatch.setenv("SKLEARN_BNN_CFLAGS", "-Dbnn_layer=bnn_layer_renamed")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _kernel.available() is False
        assert packed_module._resolve_backend("auto") == "matmul"
        assert packed_module._resolve_backend("auto") == "matmul"
    (message,) = _messages(caught, "native kernel")
    assert "bnn_layer" in message and "'matmul'" in message
    with pytest.raises(_kernel.NativeKernelError, match="bnn_layer"):
        packed_module._check_backend("native")


@needs_gcc
def test_cached_library_without_the_symbol_is_rebuilt(tmp_path, monkeypatch):
    name = _kernel_file_name(tmp_path, monkeypatch)
    cache, marker = _private(tmp_path / "own"), tmp_path / "marker"
    _plant(cache / name, marker, no_symbol=True)  # with its record: passes the hash check
    _use_cache(monkeypatch, cache)
    assert _kernel.available()
    _assert_native_equals_numpy()
    assert marker.exists()  # it was the user's own file, so it was loaded, then replaced
    assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == (
        (cache / f"{name}.sha256").read_text().strip()
    )


@needs_gcc
def test_compiler_command_with_arguments(tmp_path, monkeypatch):
    command = "ccache gcc" if shutil.which("ccache") else "env gcc"
    monkeypatch.setenv("CC", command)
    assert _kernel.available(), f"CC={command!r} did not build the kernel"
    assert len(_libraries(tmp_path / "cache")) == 1
    _assert_native_equals_numpy(threads=1)
    _assert_native_equals_numpy(threads=2)


def _network(seed=0, sizes=(7, 256, 256, 4)):
    """A random +-1 network whose second layer (256 -> 256) runs the kernel's parallel path
    for 4096 rows."""
    rng = np.random.default_rng(seed)
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1])):
        signs = rng.random((n_out, n_in)) < 0.5
        threshold = (
            rng.normal(size=n_out).astype(np.float32)
            if k == 0
            else rng.integers(n_in // 2 - 8, n_in // 2 + 8, n_out).astype(np.int16)
        )
        layers.append(PackedLayer((n_out, n_in), np.packbits(signs.ravel()), threshold))
    head = rng.normal(size=(sizes[-1], sizes[-2])).astype(np.float32)
    return PackedBinaryNetwork(layers, head, rng.normal(size=sizes[-1]).astype(np.float32))


def _wait(pid, limit):
    """The child's exit code, or None if it is still running after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    return None


@needs_compiler
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_finishes_a_predict(monkeypatch):
    monkeypatch.setenv("SKLEARN_BNN_NUM_THREADS", "2")  # predict would ask for 2 threads
    rng = np.random.default_rng(0)
    signs, max_mismatch = rng.random((256, 256)) < 0.5, rng.integers(120, 136, 256)
    on = rng.random((4096, 256)) < 0.5
    kernel = _kernel.prepare(signs, max_mismatch)
    expected = _numpy_units(signs, max_mismatch, on)
    # a parallel region in the parent (4096 x 4 words x 256 units is above the threshold)
    np.testing.assert_array_equal(_kernel.run(on, kernel, threads=2), expected)
    net, X = _network(), rng.normal(size=(4096, 7))
    net.backend = "popcount"
    expected_labels = net.predict(X)
    net.backend = "native"
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if both results are right
        code = 1
        try:
            same = np.array_equal(_kernel.run(on, kernel, threads=2), expected)
            code = 0 if same and np.array_equal(net.predict(X), expected_labels) else 3
        finally:
            os._exit(code)
    code = _wait(pid, 60)
    if code is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child did not finish its predict within 60 s (deadlock)")
    assert code == 0
    np.testing.assert_array_equal(net.predict(X), expected_labels)  # the parent still runs

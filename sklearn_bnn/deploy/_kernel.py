r"""Native 1-bit kernel: XOR + popcount GEMM in C, compiled once and loaded with ctypes.

The ``"native"`` backend of :mod:`sklearn_bnn.deploy.packed` runs each layer with
:math:`\pm 1` inputs through ``bnn_layer`` of ``_kernel.c``: the units (bytes, 1 for
:math:`+1`) are packed into 64-bit words, and unit :math:`i` of the layer is :math:`+1` iff
:math:`\operatorname{popcount}(s_i \oplus x) \le P_i`, exactly the rule of the numpy
backends, so the units are bit-identical.

**Kernel.**  The weights are stored by sets of ``bnn_set_units()`` (32) units,
``(n_sets, n_words, 32)`` words, so that one 512-bit register holds word :math:`k` of 8
units.  Rows are processed in tiles of :data:`TILE_ROWS`, packed once, transposed (word
:math:`k` of consecutive rows side by side), then swept by every set: a register block of 4
rows x 4 groups of 8 units keeps 16 accumulators of 8 counts each, and per word does 4 weight
loads, 4 broadcasts and 16 (XOR, ``VPOPCNTQ``, add), with no horizontal reduction; the
counts of a row are compared with :math:`P` by one vector compare per 8 units and the units
written by one byte store per 32.  The AVX-512 VPOPCNTDQ path is chosen at run time
(``__builtin_cpu_supports``); otherwise a scalar loop with the ``popcnt`` instruction (x86)
or the compiler's popcount, or a portable bit-twiddling popcount (``-DBNN_PORTABLE``).
``bnn_dot`` (:func:`run_dot`) returns the integer :math:`\pm 1` dot products
:math:`N - 2 \operatorname{popcount}(s_i \oplus x)` instead of units, with the same tiles
and threads.  ``bnn_popcount_peak`` (:func:`popcount_peak`) measures the machine's XOR +
popcount rate on one core, the ceiling of the kernel's rate.

**Threads.**  OpenMP over row tiles.  The number of threads is ``omp_get_max_threads()``
of the kernel's OpenMP runtime, so ``OMP_NUM_THREADS`` and
``threadpoolctl.threadpool_limits(n, user_api="openmp")`` (or ``threadpool_limits(n)``)
apply, as for scikit-learn's own OpenMP code; ``SKLEARN_BNN_NUM_THREADS`` overrides both.
Small products run on one thread.  On a machine shared with other jobs, a fork-join
region waits for its slowest thread, so more threads can be much slower than one;
``OMP_DYNAMIC=true`` lets the OpenMP runtime (libgomp) use fewer threads when the load
average says the cores are busy.  Without OpenMP (a compiler lacking ``-fopenmp``) the
kernel runs serially.  One thread enters no OpenMP region at all.  A process forked from
one that imported this module runs the kernel on one thread whatever it asks for
(``os.register_at_fork``): after the parent has run a parallel region, GNU libgomp in a
forked child waits forever for the parent's threads, which the child does not have.

**Build and cache.**  The C source, :data:`SOURCE_FILE` (``_kernel.c`` beside this module),
is compiled on first use with ``$CC`` (split as a shell would, so ``CC="ccache gcc"``
works; else ``cc``, ``gcc``, ``clang``) into a shared object named by a hash of the source,
the compiler's identity and the flags, in ``$SKLEARN_BNN_CACHE_DIR``, else
``$XDG_CACHE_HOME/sklearn-bnn`` or ``~/.cache/sklearn-bnn`` (created with mode 0700).  That
directory is used only if it is not a symbolic link, belongs to the current user, and no
group or other user can write it; otherwise (or when it cannot be created or written) a
private temporary directory is used for the process and a :class:`NativeKernelWarning` says
why, once.  A library is compiled in a private subdirectory, given mode 0700 and fsynced;
its SHA-256 is written atomically to ``<library>.sha256``, and it is renamed into place
(``os.replace``, then an fsync of the directory).  A cached library is opened without
following symbolic links, through a descriptor of the checked directory; it must be a
regular file of the current user that no one else can write, with the recorded SHA-256;
the bytes so checked are the ones loaded (``/proc/self/fd/<fd>`` of the open file, or
elsewhere a private copy).  A missing, truncated, altered or unloadable library is compiled
again and replaces it.  No compiler, or a failing one, raises :class:`NativeKernelError`;
:func:`available` then returns False and warns once.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import os
import platform
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

__all__ = [
    "TILE_ROWS",
    "NativeKernelError",
    "NativeKernelWarning",
    "available",
    "load",
    "popcount_peak",
    "prepare",
    "prepare_dot",
    "run",
    "run_dot",
]

#: Rows per tile (packed once, then swept by every set of units), as in ``_kernel.c``.
TILE_ROWS = 64

#: The kernel's C source, read when the library is built (shipped with the package).
SOURCE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_kernel.c")

#: Instruction sets of the kernel, by the number ``bnn_layer`` returns.
ISA_NAMES = {0: "portable", 1: "popcnt", 2: "avx512-vpopcntdq"}

_BASE_FLAGS = ("-O3", "-std=c99", "-shared", "-fPIC")
#: Names of the source and the library inside a build directory: fixed, so that builds of
#: one source with one compiler and the same flags give the same bytes.
_BUILD_SOURCE, _BUILD_OUTPUT = "bnn_kernel.c", "bnn_kernel.so"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
#: Where the open files of this process are named (Linux); elsewhere a private copy is loaded.
_PROC_FD_DIR = "/proc/self/fd"


class NativeKernelError(RuntimeError):
    """The native kernel cannot be built or loaded here (no C compiler, or it failed).

    Examples
    --------
    >>> from sklearn_bnn.deploy._kernel import NativeKernelError
    >>> issubclass(NativeKernelError, RuntimeError)
    True
    """


class NativeKernelWarning(UserWarning):
    """The native kernel, or its cache directory, is not used; the message says why.

    Examples
    --------
    >>> from sklearn_bnn.deploy import NativeKernelWarning
    >>> issubclass(NativeKernelWarning, UserWarning)
    True
    """


class _Stale(NativeKernelError):
    """A cached library that is not loaded (missing, altered, not the user's): rebuilt."""


class _Untrusted(Exception):
    """A cache directory that is not used; the message says why."""


def _source() -> str:
    try:
        with open(SOURCE_FILE, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise NativeKernelError(
            f"the kernel source {SOURCE_FILE} cannot be read ({exc.strerror or exc})"
        ) from exc


def _compiler() -> list[str]:
    """The C compiler command, its program by full path: ``$CC`` split as a shell would."""
    value = os.environ.get("CC", "")
    try:
        given = shlex.split(value)
    except ValueError as exc:
        raise NativeKernelError(f"CC={value!r} cannot be parsed: {exc}") from None
    commands = [given] if given else [["cc"], ["gcc"], ["clang"]]
    for command in commands:
        path = shutil.which(command[0])
        if path:
            return [path, *command[1:]]
    raise NativeKernelError(
        f"the native backend needs a C compiler, and none was found (looked for "
        f"{', '.join(' '.join(c) for c in commands)}; set $CC). Use backend='matmul' or "
        "'popcount' (numpy), or backend='auto', which falls back to them."
    )


def _compiler_identity(cc: list[str]) -> str:
    """The compiler's resolved program, its arguments and its ``--version`` output."""
    try:
        version = subprocess.run(
            [*cc, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise NativeKernelError(f"the C compiler {shlex.join(cc)} does not run: {exc}") from exc
    return "\0".join([os.path.realpath(cc[0]), *cc[1:], version.stdout])


def _library_name(source: str, identity: str, flags: list[str]) -> str:
    key = "\0".join([source, identity, *flags, platform.machine()])
    return f"bnn-kernel-{hashlib.sha256(key.encode()).hexdigest()[:20]}{_suffix()}"


def _flag_sets() -> list[list[str]]:
    """Flags to try, best first: OpenMP and the x86 fast paths, then plainer builds."""
    extra = os.environ.get("SKLEARN_BNN_CFLAGS", "").split()
    return [
        [*_BASE_FLAGS, "-fopenmp", *extra],
        [*_BASE_FLAGS, *extra],
        [*_BASE_FLAGS, "-DBNN_PORTABLE", *extra],
    ]


def _suffix() -> str:
    return ".dll" if sys.platform == "win32" else ".dylib" if sys.platform == "darwin" else ".so"


# ------------------------------------------------------------------------ cache directory
def _uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def _distrust(st: os.stat_result) -> str | None:
    """Why a file or directory with this status is not trusted (None: it is)."""
    uid = _uid()
    if uid is not None and st.st_uid != uid:
        return f"it belongs to uid {st.st_uid}, not to this user (uid {uid})"
    if uid is not None and st.st_mode & 0o022:
        return f"it is writable by group or others, mode {stat.S_IMODE(st.st_mode):04o}"
    return None


class _Dir:
    """A directory checked once, then used through its descriptor where the platform allows
    (so that a path changed after the check is not followed)."""

    def __init__(self, path: str, fd: int | None) -> None:
        self.path, self.fd = path, fd

    @classmethod
    def open_trusted(cls, path: str) -> _Dir:
        """Create (mode 0700) and open ``path``; raises _Untrusted unless it is the user's."""
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise _Untrusted("it is a symbolic link")
            flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW
            fd = os.open(path, flags) if os.open in os.supports_dir_fd else None
        except OSError as exc:
            raise _Untrusted(f"it cannot be created or opened: {exc.strerror or exc}") from None
        directory = cls(path, fd)
        st = os.fstat(fd) if fd is not None else os.lstat(path)
        reason = _distrust(st)
        if reason is None and not os.access(path, os.W_OK):
            reason = "it is not writable"
        if reason is not None:
            directory.close()
            raise _Untrusted(reason)
        return directory

    def _at(self, name: str) -> str:
        return name if self.fd is not None else os.path.join(self.path, name)

    def open(self, name: str, flags: int, mode: int = 0o600) -> int:
        return os.open(self._at(name), flags, mode, dir_fd=self.fd)

    def replace(self, src: str, dst: str) -> None:
        os.replace(self._at(src), self._at(dst), src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._at(name), dir_fd=self.fd)

    def mkdtemp(self) -> str:
        """A new private (0700) subdirectory; its name."""
        name = f".build-{secrets.token_hex(8)}"
        os.mkdir(self._at(name), 0o700, dir_fd=self.fd)
        return name

    def rmtree(self, name: str) -> None:
        shutil.rmtree(os.path.join(self.path, name), ignore_errors=True)

    def fsync(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):  # not every file system syncs a directory
                os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _cache_path() -> str:
    return os.environ.get("SKLEARN_BNN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "sklearn-bnn",
    )


def _private_dir() -> str:
    """This process's private temporary directory (mode 0700), removed at exit."""
    if "private" not in _STATE:
        path = tempfile.mkdtemp(prefix="sklearn-bnn-kernel-")
        atexit.register(_remove_private, path, os.getpid())
        _STATE["private"] = path
    return _STATE["private"]


def _remove_private(path: str, pid: int) -> None:
    if os.getpid() == pid:  # not from a forked child, which shares the parent's directory
        shutil.rmtree(path, ignore_errors=True)


def _open_cache() -> _Dir:
    """The cache directory if it is trusted, else the private one (saying why, once)."""
    path = _cache_path()
    try:
        if _uid() is None:
            raise _Untrusted("its owner cannot be checked on this platform")
        return _Dir.open_trusted(path)
    except _Untrusted as exc:
        private = _private_dir()
        _warn_once(
            ("cache", path),
            f"sklearn-bnn: the native kernel's cache directory {path} is not used ({exc}); "
            f"the kernel is built in {private} for this process instead",
        )
        return _Dir.open_trusted(private)


def _cache_dir() -> str:
    """The directory the kernel is cached in: the configured one if trusted, else private."""
    directory = _open_cache()
    directory.close()
    return directory.path


# ------------------------------------------------------------------ build, verify, load
def _open_regular(directory: _Dir, name: str) -> int:
    """``name`` opened for reading without following a symbolic link; a regular file."""
    try:
        fd = directory.open(name, _READ_FLAGS)
    except OSError as exc:
        raise _Stale(f"{name} cannot be opened ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _Stale(f"{name} is not a regular file")
    return fd


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb", closefd=False) as f:
        return f.read()


def _read_trusted(directory: _Dir, name: str) -> tuple[int, bytes]:
    """Descriptor and bytes of ``name``, a regular file of the user's that only they can
    write; raises _Stale otherwise."""
    fd = _open_regular(directory, name)
    try:
        reason = _distrust(os.fstat(fd))
        if reason is not None:
            raise _Stale(f"{name}: {reason}")
        return fd, _read_all(fd)
    except BaseException:
        os.close(fd)
        raise


def _write_atomic(directory: _Dir, name: str, data: bytes) -> None:
    """Write ``name`` under a temporary name, fsync it, then rename it into place."""
    tmp = f".{name}.{secrets.token_hex(8)}.tmp"
    fd = directory.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        directory.replace(tmp, name)
    except BaseException:
        directory.unlink(tmp)
        raise


def _compile(cc: list[str], flags: list[str], workdir: str, source: str) -> None:
    """Compile ``source`` to ``_BUILD_OUTPUT`` in the private directory ``workdir``."""
    with open(os.path.join(workdir, _BUILD_SOURCE), "w", encoding="utf-8") as f:
        f.write(source)
    result = subprocess.run(
        [*cc, *flags, _BUILD_SOURCE, "-o", _BUILD_OUTPUT],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise NativeKernelError(
            f"compiling the native kernel with {shlex.join(cc)} {' '.join(flags)} failed:\n"
            f"{result.stderr.strip()[-2000:]}"
        )


#: Descriptors through which libraries were loaded, kept open so that no later library
#: gets the same ``/proc/self/fd/<n>`` name (the dynamic loader reuses a loaded name).
_LOADED_FDS: list[int] = []


def _dlopen(directory: _Dir, name: str, fd: int, data: bytes) -> ctypes.CDLL:
    """Load the library ``name`` whose checked bytes ``data`` are open as ``fd``."""
    if not os.path.isdir(_PROC_FD_DIR):
        return _dlopen_copy(directory, name, data)
    keep = os.dup(fd)
    try:
        lib = ctypes.CDLL(f"{_PROC_FD_DIR}/{keep}")
    except OSError as exc:
        os.close(keep)
        raise NativeKernelError(f"the kernel library {name} cannot be loaded: {exc}") from None
    _LOADED_FDS.append(keep)
    return _declare(lib, name)


def _dlopen_copy(directory: _Dir, name: str, data: bytes) -> ctypes.CDLL:
    """Load ``data`` from a private copy (where open files have no name to load them by)."""
    sub = directory.mkdtemp()
    try:
        copy = os.path.join(sub, _BUILD_OUTPUT)
        fd = directory.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o700)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return _declare(ctypes.CDLL(os.path.join(directory.path, copy)), name)
    finally:
        directory.rmtree(sub)


def _load_cached(directory: _Dir, name: str) -> ctypes.CDLL:
    """The cached library ``name`` if it has the SHA-256 recorded when it was built."""
    record_fd, record = _read_trusted(directory, f"{name}.sha256")
    os.close(record_fd)
    fd, data = _read_trusted(directory, name)
    try:
        if hashlib.sha256(data).hexdigest() != record.decode("ascii", "replace").strip():
            raise _Stale(f"{name} differs from the SHA-256 recorded when it was built")
        return _dlopen(directory, name, fd, data)
    finally:
        os.close(fd)


def _install(directory: _Dir, built: str, name: str) -> tuple[int, bytes]:
    """Make the compiled file ``built`` private and durable, record its SHA-256, rename it to
    ``name``; its descriptor and bytes."""
    fd = _open_regular(directory, built)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o700)
        os.fsync(fd)
        data = _read_all(fd)
        digest = hashlib.sha256(data).hexdigest()
        _write_atomic(directory, f"{name}.sha256", f"{digest}\n".encode())
        directory.replace(built, name)
        directory.fsync()
        return fd, data
    except BaseException:
        os.close(fd)
        raise


def _build_and_load(directory: _Dir, cc: list[str], flags: list[str], name: str) -> ctypes.CDLL:
    """Compile in a private subdirectory, install as ``name``, load the bytes built."""
    sub = directory.mkdtemp()
    try:
        _compile(cc, flags, os.path.join(directory.path, sub), _source())
        fd, data = _install(directory, os.path.join(sub, _BUILD_OUTPUT), name)
    finally:
        directory.rmtree(sub)
    try:
        return _dlopen(directory, name, fd, data)
    finally:
        os.close(fd)


def _load_or_build(directory: _Dir, cc: list[str], flags: list[str], name: str) -> ctypes.CDLL:
    try:
        return _load_cached(directory, name)
    except (NativeKernelError, OSError):
        pass  # missing, altered, not the user's, or not loadable: built again, replacing it
    return _build_and_load(directory, cc, flags, name)


def _build() -> ctypes.CDLL:
    cc = _compiler()
    identity, source = _compiler_identity(cc), _source()
    directory = _open_cache()
    errors: list[str] = []
    try:
        for flags in _flag_sets():
            name = _library_name(source, identity, flags)
            try:
                return _load_or_build(directory, cc, flags, name)
            except (NativeKernelError, OSError, subprocess.SubprocessError) as exc:
                if str(exc) not in errors:
                    errors.append(str(exc))
    finally:
        directory.close()
    raise NativeKernelError("the native kernel could not be built or loaded:\n" + "\n".join(errors))


#: The functions of the kernel library (one missing: the library is rebuilt, or not used).
_SYMBOLS = (
    "bnn_layer",
    "bnn_dot",
    "bnn_best_isa",
    "bnn_max_threads",
    "bnn_set_units",
    "bnn_scratch_words",
    "bnn_popcount_peak",
)


def _declare(lib: ctypes.CDLL, name: str) -> ctypes.CDLL:
    """Declare the kernel's functions; NativeKernelError if the library ``name`` lacks one."""
    ptr, i64, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for symbol in _SYMBOLS:
        if not hasattr(lib, symbol):
            raise NativeKernelError(f"the kernel library {name} has no function {symbol}")
    lib.bnn_layer.argtypes = [ptr, i64, i64, ptr, ptr, i64, ptr, ptr, cint, cint]
    lib.bnn_layer.restype = cint
    lib.bnn_dot.argtypes = [ptr, i64, i64, ptr, i64, ptr, ptr, cint, cint]
    lib.bnn_dot.restype = cint
    lib.bnn_scratch_words.argtypes = [i64, i64]
    lib.bnn_scratch_words.restype = i64
    lib.bnn_popcount_peak.argtypes = [i64, cint, ptr]
    lib.bnn_popcount_peak.restype = i64
    for symbol in ("bnn_best_isa", "bnn_max_threads", "bnn_set_units"):
        getattr(lib, symbol).restype = cint
    return lib


# ------------------------------------------------------------------------ process state
_LOCK = threading.Lock()
_STATE: dict = {}
#: ``forked``: this process was forked from one that had imported this module.
_PROCESS = {"forked": False}


def _after_fork_in_child() -> None:
    """The kernel runs serially from now on (no OpenMP region: GNU libgomp would wait for
    the parent's threads); the lock starts free (another thread may have held it)."""
    global _LOCK
    _PROCESS["forked"] = True
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _warn_once(key, message: str) -> None:
    warned = _STATE.setdefault("warned", set())
    if key not in warned:
        warned.add(key)
        warnings.warn(message, NativeKernelWarning, stacklevel=3)


def load() -> ctypes.CDLL:
    """The compiled kernel (built and cached on first call); raises NativeKernelError."""
    with _LOCK:
        if "lib" not in _STATE and "error" not in _STATE:
            try:
                _STATE["lib"] = _build()
            except NativeKernelError as exc:
                _STATE["error"] = exc
            except Exception as exc:  # any other failure to build or load is reported alike
                _STATE["error"] = NativeKernelError(
                    f"the native kernel could not be built or loaded: {type(exc).__name__}: {exc}"
                )
        if "error" in _STATE:
            raise _STATE["error"]
        return _STATE["lib"]


def available() -> bool:
    """Whether the native kernel loads here (``SKLEARN_BNN_NATIVE=0`` says no).

    The first time it does not, a :class:`NativeKernelWarning` says why.
    """
    if os.environ.get("SKLEARN_BNN_NATIVE", "1") == "0":
        return False
    try:
        load()
    except NativeKernelError as exc:
        _warn_once(
            "unavailable",
            f"sklearn-bnn: the native kernel cannot be used, so backend='auto' runs the numpy "
            f"backend 'matmul': {exc}",
        )
        return False
    return True


def n_threads() -> int:
    """Threads the kernel will use: ``$SKLEARN_BNN_NUM_THREADS`` or OpenMP's maximum; 1 in a
    process forked from one that had imported this module."""
    value = os.environ.get("SKLEARN_BNN_NUM_THREADS")
    requested = None
    if value:
        try:
            requested = max(1, int(value))
        except ValueError:
            raise ValueError(
                f"SKLEARN_BNN_NUM_THREADS={value!r} is not a positive integer."
            ) from None
    if _PROCESS["forked"]:
        return 1
    return requested if requested is not None else int(load().bnn_max_threads())


def _pack_weights(signs: np.ndarray, set_units: int) -> np.ndarray:
    """Sign bits by sets of ``set_units`` units, ``(n_sets, n_words, set_units)`` words: word
    ``k`` of the set's units side by side; padding units and bits 0."""
    n_out, n_in = signs.shape
    n_sets, n_words = -(-n_out // set_units), -(-n_in // 64)
    rows = np.zeros((set_units * n_sets, 8 * n_words), dtype=np.uint8)
    rows[:n_out, : -(-n_in // 8)] = np.packbits(signs, axis=1, bitorder="little")
    words = rows.view("<u8").astype(np.uint64).reshape(n_sets, set_units, n_words)
    return np.ascontiguousarray(words.transpose(0, 2, 1))


def prepare(signs: np.ndarray, max_mismatch: np.ndarray):
    """Weights by sets of units (``bnn_set_units()`` of the library), P as int64, n_out.

    Plain arrays only (no handle to the library), so a network holding them pickles.
    """
    set_units = int(load().bnn_set_units())  # fails here, with the reason, not at a run
    weights = _pack_weights(np.asarray(signs, dtype=bool), set_units)
    n_out = signs.shape[0]
    p = np.full(weights.shape[0] * set_units, -1, dtype=np.int64)
    p[:n_out] = max_mismatch
    return weights, p, n_out


def prepare_dot(signs: np.ndarray):
    """Weights for :func:`run_dot`: the +-1 matrix ``signs`` (bool, True is +1, shape
    ``(n_out, n_in)``) by sets of units, and n_out."""
    set_units = int(load().bnn_set_units())
    return _pack_weights(np.asarray(signs, dtype=bool), set_units), signs.shape[0]


def _threads(threads: int | None) -> int:
    return 1 if _PROCESS["forked"] else n_threads() if threads is None else threads


def _inputs(on: np.ndarray, weights: np.ndarray):
    """``on`` as contiguous bool rows, checked against the prepared weights; the library."""
    lib = load()
    on = np.ascontiguousarray(on, dtype=bool)
    if on.ndim != 2:
        raise ValueError(f"expected 2-D units, got shape {on.shape}")
    if weights.shape[1:] != (-(-on.shape[1] // 64), int(lib.bnn_set_units())):
        raise ValueError(
            f"units with {on.shape[1]} inputs do not fit weights of shape {weights.shape}"
        )
    return lib, on


def run(on: np.ndarray, kernel, *, threads: int | None = None, isa: int = -1) -> np.ndarray:
    """Units (bool) of one layer for bool units ``on``; see ``bnn_layer`` in ``_kernel.c``.

    ``threads``: None for :func:`n_threads`; a forked child runs on one thread whatever is
    asked (no OpenMP region).
    """
    weights, p, n_out = kernel
    return _call("bnn_layer", on, weights, (p.ctypes.data,), n_out, bool, threads, isa)


def run_dot(on: np.ndarray, kernel, *, threads: int | None = None, isa: int = -1) -> np.ndarray:
    """Integer +-1 dot products, int32 of shape ``(n, n_out)``: ``N - 2 popcount(s_i XOR x)``,
    that is ``(2 on - 1) @ (2 signs - 1).T``, for bool units ``on`` of shape ``(n, N)`` and
    ``kernel = prepare_dot(signs)``; see ``bnn_dot`` in ``_kernel.c``.  Threads as
    :func:`run`.
    """
    weights, n_out = kernel
    return _call("bnn_dot", on, weights, (), n_out, np.int32, threads, isa)


def _call(entry: str, on, weights, extra: tuple, n_out: int, dtype, threads, isa) -> np.ndarray:
    """Run kernel function ``entry`` (``bnn_layer`` or ``bnn_dot``, whose arguments differ
    only by ``extra`` after the weights) on rows ``on``: an array of ``dtype``."""
    lib, on = _inputs(on, weights)
    n, n_in = on.shape
    out = np.empty((n, n_out), dtype=dtype)
    if n == 0:
        return out
    scratch = np.empty(lib.bnn_scratch_words(n, n_in), dtype=np.uint64)
    getattr(lib, entry)(
        on.ctypes.data, n, n_in, weights.ctypes.data, *extra, n_out, scratch.ctypes.data,
        out.ctypes.data, _threads(threads), isa,
    )
    return out


def popcount_peak(seconds: float = 0.2, *, isa: int = -1) -> float:
    """The machine's XOR + popcount peak on the calling thread, in binary multiply-adds per
    second: ``bnn_popcount_peak`` (independent XOR, popcount and add chains on registers,
    no memory traffic) timed for about ``seconds``; the best of 5 runs."""
    lib = load()
    sink = ctypes.c_uint64()
    n_iter, rates = 1 << 16, []
    while True:  # calibrate: a run of about seconds / 5
        start = time.perf_counter()
        done = lib.bnn_popcount_peak(n_iter, isa, ctypes.byref(sink))
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 10 or n_iter >= 1 << 40:
            break
        n_iter *= 2
    for _ in range(5):
        start = time.perf_counter()
        done = lib.bnn_popcount_peak(n_iter, isa, ctypes.byref(sink))
        rates.append(done / (time.perf_counter() - start))
    return max(rates)

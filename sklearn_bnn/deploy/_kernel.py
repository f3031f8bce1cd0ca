r"""Native 1-bit kernel: XOR + popcount GEMM in C, compiled once and loaded with ctypes.

The ``"native"`` backend of :mod:`sklearn_bnn.deploy.packed` runs each layer with
:math:`\pm 1` inputs through :func:`bnn_layer` below: the units (bytes, 1 for
:math:`+1`) are packed into 64-bit words, and unit :math:`i` of the layer is :math:`+1` iff
:math:`\operatorname{popcount}(s_i \oplus x) \le P_i`, exactly the rule of the numpy
backends, so the units are bit-identical.

**Kernel.**  Rows are processed in tiles of :data:`TILE_ROWS`; a tile is packed once and
then swept by groups of 8 output units whose weight words are stored interleaved
(``(n_groups, n_words, 8)``), so one 512-bit register holds word :math:`k` of 8 units and
the XOR with a broadcast input word, ``VPOPCNTQ`` and an add accumulate 8 counts at a
time, 4 rows x 2 groups per step, with no horizontal reduction.  The weight group stays in
L1 while the rows of the tile go past it.  The AVX-512 VPOPCNTDQ path is chosen at run time
(``__builtin_cpu_supports``); otherwise a scalar loop with the ``popcnt`` instruction (x86)
or the compiler's popcount, or a portable bit-twiddling popcount (``-DBNN_PORTABLE``).

**Threads.**  OpenMP over row tiles.  The number of threads is ``omp_get_max_threads()``
of the kernel's OpenMP runtime, so ``OMP_NUM_THREADS`` and
``threadpoolctl.threadpool_limits(n, user_api="openmp")`` (or ``threadpool_limits(n)``)
apply, as for scikit-learn's own OpenMP code; ``SKLEARN_BNN_NUM_THREADS`` overrides both.
Small products run on one thread.  On a machine shared with other jobs, a fork-join
region waits for its slowest thread, so more threads can be much slower than one;
``OMP_DYNAMIC=true`` lets the OpenMP runtime (libgomp) use fewer threads when the load
average says the cores are busy.  Without OpenMP (a compiler lacking ``-fopenmp``) the
kernel runs serially.

**Build and cache.**  The C source below is compiled on first use with ``$CC`` (else
``cc``, ``gcc``, ``clang``) into a shared object named by a hash of the source, the
compiler's identity and the flags, in ``$SKLEARN_BNN_CACHE_DIR``, else
``$XDG_CACHE_HOME/sklearn-bnn`` or ``~/.cache/sklearn-bnn``.  It is written under a
temporary name and renamed into place, so concurrent processes never load a half-written
file; when that directory cannot be written (read-only home), a private temporary directory
is used for the process.  No compiler, or a failing one, raises :class:`NativeKernelError`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading

import numpy as np

__all__ = ["TILE_ROWS", "NativeKernelError", "available", "load"]

#: Rows per tile (packed once, then swept by every group of 8 output units).
TILE_ROWS = 32

SOURCE = r"""
/* sklearn-bnn native kernel: units of a +-1-input binary layer by XOR + popcount. */
#include <stddef.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define TILE_ROWS 32
#define MIN_PARALLEL_WORK 2097152 /* word popcounts (about 1 ms) below which one thread runs */

#if !defined(BNN_PORTABLE) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BNN_X86 1
#include <immintrin.h>
#endif

static uint64_t popcount_swar(uint64_t v)
{
    v = v - ((v >> 1) & 0x5555555555555555ULL);
    v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (v * 0x0101010101010101ULL) >> 56;
}

#if !defined(BNN_PORTABLE) && (defined(__GNUC__) || defined(__clang__))
#define BNN_POPCOUNT(v) ((uint64_t)__builtin_popcountll(v))
#else
#define BNN_POPCOUNT(v) popcount_swar(v)
#endif

/* Bytes (0 / non-0) -> words, bit j of word k = byte 64 k + j; padding bits 0. */
static void pack_rows(const uint8_t *on, int64_t rows, int64_t n_in, int64_t n_words,
                      uint64_t *x)
{
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t *src = on + r * n_in;
        for (int64_t k = 0; k < n_words; ++k) {
            int64_t m = n_in - 64 * k < 64 ? n_in - 64 * k : 64;
            uint64_t v = 0;
            for (int64_t j = 0; j < m; ++j)
                v |= (uint64_t)(src[64 * k + j] != 0) << j;
            x[r * n_words + k] = v;
        }
    }
}

/* Scalar tile: w is (n_groups, n_words, 8), p is (8 n_groups) int64. */
#define BNN_SCALAR_TILE(NAME, ATTR)                                                       \
    ATTR static void NAME(const uint64_t *x, int64_t rows, int64_t n_words,               \
                          const uint64_t *w, const int64_t *p, int64_t n_out, uint8_t *out) \
    {                                                                                     \
        int64_t n_groups = (n_out + 7) / 8;                                               \
        for (int64_t g = 0; g < n_groups; ++g) {                                          \
            const uint64_t *wg = w + g * n_words * 8;                                     \
            int64_t m = n_out - 8 * g < 8 ? n_out - 8 * g : 8;                            \
            for (int64_t r = 0; r < rows; ++r) {                                          \
                const uint64_t *xr = x + r * n_words;                                     \
                uint64_t c[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                 \
                for (int64_t k = 0; k < n_words; ++k)                                     \
                    for (int u = 0; u < 8; ++u)                                           \
                        c[u] += BNN_POPCOUNT(wg[8 * k + u] ^ xr[k]);                      \
                for (int64_t u = 0; u < m; ++u)                                           \
                    out[r * n_out + 8 * g + u] = (int64_t)c[u] <= p[8 * g + u];           \
            }                                                                             \
        }                                                                                 \
    }

BNN_SCALAR_TILE(tile_portable, )

#ifdef BNN_X86
BNN_SCALAR_TILE(tile_popcnt, __attribute__((target("popcnt"))))

#define BNN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vpopcntdq")))

BNN_AVX512 static void pack_rows_avx512(const uint8_t *on, int64_t rows, int64_t n_in,
                                        int64_t n_words, uint64_t *x)
{
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t *src = on + r * n_in;
        for (int64_t k = 0; k < n_words; ++k) {
            int64_t m = n_in - 64 * k < 64 ? n_in - 64 * k : 64;
            __mmask64 valid = m == 64 ? ~(__mmask64)0 : (((__mmask64)1 << m) - 1);
            __m512i v = _mm512_maskz_loadu_epi8(valid, src + 64 * k);
            x[r * n_words + k] = (uint64_t)_mm512_test_epi8_mask(v, v);
        }
    }
}

BNN_AVX512 static inline __m512i xor_pop(__m512i acc, __m512i w, uint64_t x)
{
    __m512i b = _mm512_set1_epi64((long long)x);
    return _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(w, b)));
}

static void store_mask(uint8_t *out, __mmask8 mask, int64_t m)
{
    for (int64_t u = 0; u < m; ++u)
        out[u] = (uint8_t)((mask >> u) & 1);
}

/* 4 rows x 1 or 2 groups of 8 units per step; rows past the end repeat the last row. */
BNN_AVX512 static void tile_avx512(const uint64_t *x, int64_t rows, int64_t n_words,
                                   const uint64_t *w, const int64_t *p, int64_t n_out,
                                   uint8_t *out)
{
    int64_t n_groups = (n_out + 7) / 8;
    for (int64_t g = 0; g < n_groups; g += 2) {
        int two = g + 1 < n_groups;
        const uint64_t *w0 = w + g * n_words * 8;
        const uint64_t *w1 = two ? w0 + n_words * 8 : w0;
        __m512i p0 = _mm512_loadu_si512(p + 8 * g);
        __m512i p1 = _mm512_loadu_si512(p + 8 * (two ? g + 1 : g));
        int64_t m0 = n_out - 8 * g < 8 ? n_out - 8 * g : 8;
        int64_t m1 = two ? (n_out - 8 * (g + 1) < 8 ? n_out - 8 * (g + 1) : 8) : 0;
        for (int64_t r = 0; r < rows; r += 4) {
            const uint64_t *x0 = x + r * n_words;
            const uint64_t *x1 = r + 1 < rows ? x0 + n_words : x0;
            const uint64_t *x2 = r + 2 < rows ? x0 + 2 * n_words : x0;
            const uint64_t *x3 = r + 3 < rows ? x0 + 3 * n_words : x0;
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
            __m512i b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int64_t k = 0; k < n_words; ++k) {
                __m512i v0 = _mm512_loadu_si512(w0 + 8 * k);
                __m512i v1 = _mm512_loadu_si512(w1 + 8 * k);
                a0 = xor_pop(a0, v0, x0[k]);
                a1 = xor_pop(a1, v0, x1[k]);
                a2 = xor_pop(a2, v0, x2[k]);
                a3 = xor_pop(a3, v0, x3[k]);
                b0 = xor_pop(b0, v1, x0[k]);
                b1 = xor_pop(b1, v1, x1[k]);
                b2 = xor_pop(b2, v1, x2[k]);
                b3 = xor_pop(b3, v1, x3[k]);
            }
            __m512i a[4] = {a0, a1, a2, a3}, b[4] = {b0, b1, b2, b3};
            for (int64_t i = 0; i < 4 && r + i < rows; ++i) {
                uint8_t *o = out + (r + i) * n_out + 8 * g;
                store_mask(o, _mm512_cmple_epi64_mask(a[i], p0), m0);
                store_mask(o + 8, _mm512_cmple_epi64_mask(b[i], p1), m1);
            }
        }
    }
}
#endif

/* Instruction set used: 2 AVX-512 VPOPCNTDQ, 1 scalar popcnt, 0 portable. */
int bnn_best_isa(void)
{
#ifdef BNN_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512bw"))
        return 2;
    if (__builtin_cpu_supports("popcnt"))
        return 1;
#endif
    return 0;
}

int bnn_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Units of one layer.  on: (n, n_in) bytes; w: (ceil(n_out / 8), n_words, 8) words;
   p: (8 ceil(n_out / 8)) int64; scratch: (n, n_words) words; out: (n, n_out) bytes.
   isa < 0: best available; n_threads < 1: bnn_max_threads().  Returns the isa used. */
int bnn_layer(const uint8_t *on, int64_t n, int64_t n_in, const uint64_t *w, const int64_t *p,
              int64_t n_out, uint64_t *scratch, uint8_t *out, int n_threads, int isa)
{
    int64_t n_words = (n_in + 63) / 64;
    int64_t n_tiles = (n + TILE_ROWS - 1) / TILE_ROWS;
    int best = bnn_best_isa();
    if (isa < 0 || isa > best)
        isa = best;
    if (n_threads < 1)
        n_threads = bnn_max_threads();
    if ((double)n * (double)n_words * (double)n_out < MIN_PARALLEL_WORK)
        n_threads = 1;
    (void)n_threads;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_threads > 1)
#endif
    for (int64_t t = 0; t < n_tiles; ++t) {
        int64_t r0 = t * TILE_ROWS;
        int64_t rows = n - r0 < TILE_ROWS ? n - r0 : TILE_ROWS;
        uint64_t *x = scratch + r0 * n_words;
        uint8_t *o = out + r0 * n_out;
#ifdef BNN_X86
        if (isa == 2) {
            pack_rows_avx512(on + r0 * n_in, rows, n_in, n_words, x);
            tile_avx512(x, rows, n_words, w, p, n_out, o);
            continue;
        }
        pack_rows(on + r0 * n_in, rows, n_in, n_words, x);
        if (isa == 1) {
            tile_popcnt(x, rows, n_words, w, p, n_out, o);
            continue;
        }
#else
        pack_rows(on + r0 * n_in, rows, n_in, n_words, x);
#endif
        tile_portable(x, rows, n_words, w, p, n_out, o);
    }
    return isa;
}
"""

#: Instruction sets of the kernel, by the number ``bnn_layer`` returns.
ISA_NAMES = {0: "portable", 1: "popcnt", 2: "avx512-vpopcntdq"}

_BASE_FLAGS = ("-O3", "-std=c99", "-shared", "-fPIC")


class NativeKernelError(RuntimeError):
    """The native kernel cannot be built or loaded here (no C compiler, or it failed).

    Examples
    --------
    >>> from sklearn_bnn.deploy._kernel import NativeKernelError
    >>> issubclass(NativeKernelError, RuntimeError)
    True
    """


def _compiler() -> str:
    names = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise NativeKernelError(
        f"the native backend needs a C compiler, and none was found (looked for "
        f"{', '.join(names)}; set $CC). Use backend='matmul' or 'popcount' (numpy), or "
        "backend='auto', which falls back to them."
    )


def _cache_dir() -> str:
    """A writable per-user cache directory, or a private temporary one."""
    base = os.environ.get("SKLEARN_BNN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "sklearn-bnn",
    )
    try:
        os.makedirs(base, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=base):
            pass
        return base
    except OSError:
        return tempfile.mkdtemp(prefix="sklearn-bnn-kernel-")


def _compile(cc: str, flags: list[str], path: str) -> None:
    """Compile SOURCE to ``path`` atomically (temporary name, then rename)."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".so.tmp")
    os.close(fd)
    src = tmp[: -len(".so.tmp")] + ".c"
    try:
        with open(src, "w") as f:
            f.write(SOURCE)
        result = subprocess.run(
            [cc, *flags, src, "-o", tmp], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise NativeKernelError(
                f"compiling the native kernel with {cc} {' '.join(flags)} failed:\n"
                f"{result.stderr.strip()[-2000:]}"
            )
        os.replace(tmp, path)
    finally:
        for leftover in (src, tmp):
            if os.path.exists(leftover):
                os.remove(leftover)


def _flag_sets() -> list[list[str]]:
    """Flags to try, best first: OpenMP and the x86 fast paths, then plainer builds."""
    extra = os.environ.get("SKLEARN_BNN_CFLAGS", "").split()
    return [
        [*_BASE_FLAGS, "-fopenmp", *extra],
        [*_BASE_FLAGS, *extra],
        [*_BASE_FLAGS, "-DBNN_PORTABLE", *extra],
    ]


def _build() -> ctypes.CDLL:
    cc = _compiler()
    try:
        version = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise NativeKernelError(f"the C compiler {cc} does not run: {exc}") from exc
    directory = _cache_dir()
    errors = []
    for flags in _flag_sets():
        key = "\0".join([SOURCE, os.path.realpath(cc), version.stdout, *flags, platform.machine()])
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        path = os.path.join(directory, f"bnn-kernel-{digest}{_suffix()}")
        try:
            if not os.path.exists(path):
                _compile(cc, flags, path)
            return _declare(ctypes.CDLL(path))
        except (NativeKernelError, OSError, subprocess.SubprocessError) as exc:
            errors.append(str(exc))
    raise NativeKernelError("the native kernel could not be built:\n" + "\n".join(errors))


def _suffix() -> str:
    return ".dll" if sys.platform == "win32" else ".dylib" if sys.platform == "darwin" else ".so"


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    ptr, i64, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.bnn_layer.argtypes = [ptr, i64, i64, ptr, ptr, i64, ptr, ptr, cint, cint]
    lib.bnn_layer.restype = cint
    lib.bnn_best_isa.restype = cint
    lib.bnn_max_threads.restype = cint
    return lib


_LOCK = threading.Lock()
_STATE: dict = {}


def load() -> ctypes.CDLL:
    """The compiled kernel (built and cached on first call); raises NativeKernelError."""
    with _LOCK:
        if "lib" not in _STATE and "error" not in _STATE:
            try:
                _STATE["lib"] = _build()
            except NativeKernelError as exc:
                _STATE["error"] = exc
        if "error" in _STATE:
            raise _STATE["error"]
        return _STATE["lib"]


def available() -> bool:
    """Whether the native kernel loads here (``SKLEARN_BNN_NATIVE=0`` says no)."""
    if os.environ.get("SKLEARN_BNN_NATIVE", "1") == "0":
        return False
    try:
        load()
    except NativeKernelError:
        return False
    return True


def n_threads() -> int:
    """Threads the kernel will use: ``$SKLEARN_BNN_NUM_THREADS`` or OpenMP's maximum."""
    value = os.environ.get("SKLEARN_BNN_NUM_THREADS")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(
                f"SKLEARN_BNN_NUM_THREADS={value!r} is not a positive integer."
            ) from None
    return int(load().bnn_max_threads())


def prepare(signs: np.ndarray, max_mismatch: np.ndarray):
    """Weights interleaved by groups of 8 units, ``(n_groups, n_words, 8)``; P as int64.

    Plain arrays only (no handle to the library), so a network holding them pickles.
    """
    load()  # fail here, with the reason, rather than at the first run
    n_out, n_in = signs.shape
    n_groups, n_words = -(-n_out // 8), -(-n_in // 64)
    rows = np.zeros((8 * n_groups, 8 * n_words), dtype=np.uint8)
    rows[:n_out, : -(-n_in // 8)] = np.packbits(signs, axis=1, bitorder="little")
    words = rows.view("<u8").astype(np.uint64).reshape(n_groups, 8, n_words)
    weights = np.ascontiguousarray(words.transpose(0, 2, 1))
    p = np.full(8 * n_groups, -1, dtype=np.int64)
    p[:n_out] = max_mismatch
    return weights, p, n_out


def run(on: np.ndarray, kernel, *, threads: int | None = None, isa: int = -1) -> np.ndarray:
    """Units (bool) of one layer for bool units ``on``; see ``bnn_layer`` in SOURCE."""
    weights, p, n_out = kernel
    on = np.ascontiguousarray(on, dtype=bool)
    n, n_in = on.shape
    out = np.empty((n, n_out), dtype=bool)
    if n == 0:
        return out
    scratch = np.empty((n, -(-n_in // 64)), dtype=np.uint64)
    load().bnn_layer(
        on.ctypes.data,
        n,
        n_in,
        weights.ctypes.data,
        p.ctypes.data,
        n_out,
        scratch.ctypes.data,
        out.ctypes.data,
        n_threads() if threads is None else threads,
        isa,
    )
    return out

/* sklearn-bnn native kernel: XOR + popcount GEMM for layers with +-1 inputs.

   bnn_layer: units, +1 iff popcount(s_i XOR x) <= P_i (the numpy backends' rule, exactly).
   bnn_dot:   integer +-1 dot products, N - 2 popcount(s_i XOR x), as int32.

   Layout.  Weights are stored by sets of SET_UNITS units, (n_sets, n_words, SET_UNITS)
   64-bit words (word k of the set's units side by side; padding units and bits are 0), so
   that one 512-bit register holds word k of 8 units.  The rows of a tile are packed once,
   transposed, (n_words, TILE_ROWS) words, so that word k of BLOCK_ROWS consecutive rows lies
   in one cache line.  The AVX-512 tile keeps BLOCK_ROWS x SET_GROUPS accumulators of 8
   counts in registers: per word, SET_GROUPS weight loads, BLOCK_ROWS broadcasts and
   BLOCK_ROWS x SET_GROUPS (XOR, VPOPCNTQ, ADD); the set's weights stay in L1 while the
   row blocks of the tile go past them; the counts of a row are compared with P in one
   vector compare per 8 units and the units written with one byte store per set (masked
   where the set ends past n_out). */
#include <stddef.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef BLOCK_ROWS
#define BLOCK_ROWS 4 /* rows per register block */
#endif
#ifndef SET_GROUPS
#define SET_GROUPS 4 /* groups of 8 units per register block */
#endif
#ifndef TILE_ROWS
#define TILE_ROWS 64 /* rows packed at once (a multiple of BLOCK_ROWS) */
#endif
#if TILE_ROWS % BLOCK_ROWS != 0 || SET_GROUPS < 1 || SET_GROUPS > 8
#error "TILE_ROWS must be a multiple of BLOCK_ROWS, and SET_GROUPS within 1..8"
#endif
#define SET_UNITS (8 * SET_GROUPS)
#define MIN_PARALLEL_WORK 2097152 /* word popcounts below which one thread runs */

#if !defined(BNN_PORTABLE) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BNN_X86 1
#include <immintrin.h>
#endif

#if !defined(BNN_PORTABLE) && (defined(__GNUC__) || defined(__clang__))
#define BNN_POPCOUNT(v) ((uint64_t)__builtin_popcountll(v))
#else
static uint64_t popcount_swar(uint64_t v)
{
    v = v - ((v >> 1) & 0x5555555555555555ULL);
    v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (v * 0x0101010101010101ULL) >> 56;
}
#define BNN_POPCOUNT(v) popcount_swar(v)
#endif

/* The arguments of one bnn_layer or bnn_dot call. */
struct layer_args {
    const uint8_t *on;
    int64_t n, n_in, n_words, n_out;
    const uint64_t *w;
    const int64_t *p; /* NULL: integer dot products into out32 */
    uint64_t *scratch;
    uint8_t *out;
    int32_t *out32;
    int isa;
};

/* Rows (bytes, 0 / non-0) -> transposed words: x[k TILE_ROWS + r], bit j = byte 64 k + j;
   padding bits 0, and rows up to a multiple of BLOCK_ROWS all 0. */
static void pack_rows(const uint8_t *on, int64_t rows, int64_t n_in, int64_t n_words,
                      uint64_t *x)
{
    int64_t padded = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS * BLOCK_ROWS;
    for (int64_t r = 0; r < padded; ++r) {
        for (int64_t k = 0; k < n_words; ++k) {
            int64_t m = n_in - 64 * k < 64 ? n_in - 64 * k : 64;
            uint64_t v = 0;
            for (int64_t j = 0; r < rows && j < m; ++j)
                v |= (uint64_t)(on[r * n_in + 64 * k + j] != 0) << j;
            x[k * TILE_ROWS + r] = v;
        }
    }
}

/* Scalar tile: c[u] += popcount over the words of each row, then the epilogue. */
#define BNN_SCALAR_TILE(NAME, ATTR)                                                       \
    ATTR static void NAME(const struct layer_args *a, const uint64_t *x, int64_t r0,      \
                          int64_t rows)                                                   \
    {                                                                                     \
        int64_t n_sets = (a->n_out + SET_UNITS - 1) / SET_UNITS, n_words = a->n_words;   \
        for (int64_t s = 0; s < n_sets; ++s) {                                            \
            const uint64_t *ws = a->w + s * n_words * SET_UNITS;                          \
            int64_t u0 = s * SET_UNITS;                                                   \
            int64_t m = a->n_out - u0 < SET_UNITS ? a->n_out - u0 : SET_UNITS;            \
            for (int64_t r = 0; r < rows; ++r) {                                          \
                uint64_t c[SET_UNITS] = {0};                                              \
                for (int64_t k = 0; k < n_words; ++k) {                                   \
                    uint64_t xv = x[k * TILE_ROWS + r];                                   \
                    for (int u = 0; u < SET_UNITS; ++u)                                   \
                        c[u] += BNN_POPCOUNT(ws[k * SET_UNITS + u] ^ xv);                 \
                }                                                                         \
                int64_t row = (r0 + r) * a->n_out + u0;                                   \
                for (int64_t u = 0; u < m; ++u) {                                         \
                    if (a->p)                                                             \
                        a->out[row + u] = (int64_t)c[u] <= a->p[u0 + u];                  \
                    else                                                                  \
                        a->out32[row + u] = (int32_t)(a->n_in - 2 * (int64_t)c[u]);       \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }

BNN_SCALAR_TILE(tile_portable, )

#ifdef BNN_X86
BNN_SCALAR_TILE(tile_popcnt, __attribute__((target("popcnt"))))

#define BNN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vpopcntdq")))

BNN_AVX512 static void pack_rows_avx512(const uint8_t *on, int64_t rows, int64_t n_in,
                                        int64_t n_words, uint64_t *x)
{
    int64_t padded = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS * BLOCK_ROWS;
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t *src = on + r * n_in;
        for (int64_t k = 0; k < n_words; ++k) {
            int64_t m = n_in - 64 * k < 64 ? n_in - 64 * k : 64;
            __mmask64 valid = m == 64 ? ~(__mmask64)0 : (((__mmask64)1 << m) - 1);
            __m512i v = _mm512_maskz_loadu_epi8(valid, src + 64 * k);
            x[k * TILE_ROWS + r] = (uint64_t)_mm512_test_epi8_mask(v, v);
        }
    }
    for (int64_t k = 0; k < n_words; ++k)
        for (int64_t r = rows; r < padded; ++r)
            x[k * TILE_ROWS + r] = 0;
}

/* Bytes 0 / 1 of the m <= SET_UNITS units whose bits are set in bits (valid: m low bits). */
BNN_AVX512 static inline void store_units(uint8_t *out, uint64_t bits, __mmask64 valid, int64_t m)
{
#if SET_UNITS == 16
    if (m == 16) {
        _mm_storeu_si128((__m128i *)out, _mm_maskz_set1_epi8((__mmask16)bits, 1));
        return;
    }
#elif SET_UNITS == 32
    if (m == 32) {
        _mm256_storeu_si256((__m256i *)out, _mm256_maskz_set1_epi8((__mmask32)bits, 1));
        return;
    }
#elif SET_UNITS == 64
    if (m == 64) {
        _mm512_storeu_si512(out, _mm512_maskz_set1_epi8(bits, 1));
        return;
    }
#endif
    _mm512_mask_storeu_epi8(out, valid, _mm512_maskz_set1_epi8(bits, 1));
}

/* BLOCK_ROWS x SET_GROUPS accumulators of 8 counts each, in registers. */
BNN_AVX512 static void tile_avx512(const struct layer_args *a, const uint64_t *x, int64_t r0,
                                   int64_t rows)
{
    int64_t n_sets = (a->n_out + SET_UNITS - 1) / SET_UNITS, n_words = a->n_words;
    const __m512i n_in = _mm512_set1_epi64(a->n_in);
    for (int64_t s = 0; s < n_sets; ++s) {
        const uint64_t *ws = a->w + s * n_words * SET_UNITS;
        int64_t u0 = s * SET_UNITS;
        int64_t m = a->n_out - u0 < SET_UNITS ? a->n_out - u0 : SET_UNITS;
        __mmask64 valid = m == 64 ? ~(__mmask64)0 : (((__mmask64)1 << m) - 1);
        __m512i pv[SET_GROUPS];
#pragma GCC unroll 8
        for (int j = 0; j < SET_GROUPS; ++j)
            pv[j] = a->p ? _mm512_loadu_si512(a->p + u0 + 8 * j) : n_in;
        for (int64_t b = 0; b < rows; b += BLOCK_ROWS) {
            __m512i acc[BLOCK_ROWS][SET_GROUPS];
#pragma GCC unroll 32
            for (int i = 0; i < BLOCK_ROWS; ++i)
#pragma GCC unroll 8
                for (int j = 0; j < SET_GROUPS; ++j)
                    acc[i][j] = _mm512_setzero_si512();
            const uint64_t *xk = x + b;
            const uint64_t *wk = ws;
            for (int64_t k = 0; k < n_words; ++k, xk += TILE_ROWS, wk += SET_UNITS) {
                __m512i wv[SET_GROUPS];
#pragma GCC unroll 8
                for (int j = 0; j < SET_GROUPS; ++j)
                    wv[j] = _mm512_loadu_si512(wk + 8 * j);
#pragma GCC unroll 32
                for (int i = 0; i < BLOCK_ROWS; ++i) {
                    __m512i xb = _mm512_set1_epi64((long long)xk[i]);
#pragma GCC unroll 8
                    for (int j = 0; j < SET_GROUPS; ++j)
                        acc[i][j] = _mm512_add_epi64(
                            acc[i][j], _mm512_popcnt_epi64(_mm512_xor_si512(wv[j], xb)));
                }
            }
            int64_t mb = rows - b < BLOCK_ROWS ? rows - b : BLOCK_ROWS;
#pragma GCC unroll 32
            for (int i = 0; i < BLOCK_ROWS; ++i) {
                if (i >= mb)
                    break;
                if (a->p) {
                    uint64_t bits = 0;
#pragma GCC unroll 8
                    for (int j = 0; j < SET_GROUPS; ++j)
                        bits |= (uint64_t)_mm512_cmple_epi64_mask(acc[i][j], pv[j]) << (8 * j);
                    store_units(a->out + (r0 + b + i) * a->n_out + u0, bits, valid, m);
                } else {
                    int32_t *o = a->out32 + (r0 + b + i) * a->n_out + u0;
#pragma GCC unroll 8
                    for (int j = 0; j < SET_GROUPS; ++j) {
                        __m512i d = _mm512_sub_epi64(n_in, _mm512_slli_epi64(acc[i][j], 1));
                        if (m == SET_UNITS)
                            _mm256_storeu_si256((__m256i *)(o + 8 * j), _mm512_cvtepi64_epi32(d));
                        else
                            _mm512_mask_cvtepi64_storeu_epi32(o + 8 * j,
                                                              (__mmask8)(valid >> (8 * j)), d);
                    }
                }
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
    if (__builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
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

/* Units per weight set: prepare() stores the weights as (n_sets, n_words, bnn_set_units()). */
int bnn_set_units(void)
{
    return SET_UNITS;
}

/* Words of scratch that bnn_layer and bnn_dot need for n rows of n_in inputs. */
int64_t bnn_scratch_words(int64_t n, int64_t n_in)
{
    return (n + TILE_ROWS - 1) / TILE_ROWS * TILE_ROWS * ((n_in + 63) / 64);
}

/* Tile t (rows TILE_ROWS t onwards): pack its rows, then sweep every set of units. */
static void layer_tile(const struct layer_args *a, int64_t t)
{
    int64_t r0 = t * TILE_ROWS;
    int64_t rows = a->n - r0 < TILE_ROWS ? a->n - r0 : TILE_ROWS;
    const uint8_t *on = a->on + r0 * a->n_in;
    uint64_t *x = a->scratch + r0 * a->n_words;
#ifdef BNN_X86
    if (a->isa == 2) {
        pack_rows_avx512(on, rows, a->n_in, a->n_words, x);
        tile_avx512(a, x, r0, rows);
        return;
    }
    pack_rows(on, rows, a->n_in, a->n_words, x);
    if (a->isa == 1) {
        tile_popcnt(a, x, r0, rows);
        return;
    }
#else
    pack_rows(on, rows, a->n_in, a->n_words, x);
#endif
    tile_portable(a, x, r0, rows);
}

static int run_tiles(struct layer_args *a, int n_threads, int isa)
{
    int64_t n_tiles = (a->n + TILE_ROWS - 1) / TILE_ROWS;
    int best = bnn_best_isa();
    a->isa = isa < 0 || isa > best ? best : isa;
    if (n_threads < 1)
        n_threads = bnn_max_threads();
    if ((double)a->n * (double)a->n_words * (double)a->n_out < MIN_PARALLEL_WORK)
        n_threads = 1;
    if (n_threads == 1) {
        for (int64_t t = 0; t < n_tiles; ++t)
            layer_tile(a, t);
        return a->isa;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(n_threads)
#endif
    for (int64_t t = 0; t < n_tiles; ++t)
        layer_tile(a, t);
    return a->isa;
}

/* Units of one layer.  on: (n, n_in) bytes; w: (ceil(n_out / SET_UNITS), n_words,
   SET_UNITS) words; p: SET_UNITS ceil(n_out / SET_UNITS) int64; scratch:
   bnn_scratch_words(n, n_in) words; out: (n, n_out) bytes, 1 for +1.
   isa < 0: best available; n_threads < 1: bnn_max_threads().  Returns the isa used.
   When one thread runs (n_threads == 1, or a small product) no OpenMP region is entered:
   a process forked after its parent's OpenMP threads ran can call it with n_threads == 1. */
int bnn_layer(const uint8_t *on, int64_t n, int64_t n_in, const uint64_t *w, const int64_t *p,
              int64_t n_out, uint64_t *scratch, uint8_t *out, int n_threads, int isa)
{
    struct layer_args a = {on, n, n_in, (n_in + 63) / 64, n_out, w, p, scratch, out, NULL, 0};
    return run_tiles(&a, n_threads, isa);
}

/* Integer +-1 dot products of one layer: out[r, i] = n_in - 2 popcount(s_i XOR x_r), int32.
   Arguments, threads and return value as bnn_layer, without p. */
int bnn_dot(const uint8_t *on, int64_t n, int64_t n_in, const uint64_t *w, int64_t n_out,
            uint64_t *scratch, int32_t *out, int n_threads, int isa)
{
    struct layer_args a = {on, n, n_in, (n_in + 63) / 64, n_out, w, NULL, scratch, NULL, out, 0};
    return run_tiles(&a, n_threads, isa);
}

/* ----------------------------------------------------------------- popcount peak
   The machine's XOR + popcount rate on one core: PEAK_CHAINS independent chains
   acc += popcount(w XOR x) on registers, x made opaque to the compiler each step (so that
   nothing is hoisted out of the loop), no loads or stores.  Returns the binary
   multiply-adds done (bits XORed and counted); *sink receives the counts' sum. */
#define PEAK_CHAINS 12
#if defined(__GNUC__) || defined(__clang__)
#define BNN_OPAQUE(v, constraint) __asm__ volatile("" : "+" constraint(v))
#else
#define BNN_OPAQUE(v, constraint) ((void)0)
#endif

#define BNN_SCALAR_PEAK(NAME, ATTR)                                                       \
    ATTR static int64_t NAME(int64_t n_iter, uint64_t *sink)                              \
    {                                                                                     \
        uint64_t acc[PEAK_CHAINS] = {0}, w[PEAK_CHAINS];                                  \
        uint64_t x = 0x9E3779B97F4A7C15ULL;                                               \
        for (int i = 0; i < PEAK_CHAINS; ++i)                                             \
            w[i] = 0xD1B54A32D192ED03ULL * (uint64_t)(i + 1);                             \
        for (int64_t it = 0; it < n_iter; ++it) {                                         \
            BNN_OPAQUE(x, "r");                                                           \
            for (int i = 0; i < PEAK_CHAINS; ++i)                                         \
                acc[i] += BNN_POPCOUNT(w[i] ^ x);                                         \
        }                                                                                 \
        uint64_t total = 0;                                                               \
        for (int i = 0; i < PEAK_CHAINS; ++i)                                             \
            total += acc[i];                                                              \
        *sink = total;                                                                    \
        return n_iter * PEAK_CHAINS * 64;                                                 \
    }

BNN_SCALAR_PEAK(peak_portable, )

#ifdef BNN_X86
BNN_SCALAR_PEAK(peak_popcnt, __attribute__((target("popcnt"))))

BNN_AVX512 static int64_t peak_avx512(int64_t n_iter, uint64_t *sink)
{
    __m512i acc[PEAK_CHAINS], w[PEAK_CHAINS];
    __m512i x = _mm512_set1_epi64((long long)0x9E3779B97F4A7C15ULL);
#pragma GCC unroll 16
    for (int i = 0; i < PEAK_CHAINS; ++i) {
        acc[i] = _mm512_setzero_si512();
        w[i] = _mm512_set1_epi64((long long)(0xD1B54A32D192ED03ULL * (uint64_t)(i + 1)));
    }
    for (int64_t it = 0; it < n_iter; ++it) {
        BNN_OPAQUE(x, "v");
#pragma GCC unroll 16
        for (int i = 0; i < PEAK_CHAINS; ++i)
            acc[i] = _mm512_add_epi64(acc[i], _mm512_popcnt_epi64(_mm512_xor_si512(w[i], x)));
    }
    __m512i total = acc[0];
    for (int i = 1; i < PEAK_CHAINS; ++i)
        total = _mm512_add_epi64(total, acc[i]);
    *sink = (uint64_t)_mm512_reduce_add_epi64(total);
    return n_iter * PEAK_CHAINS * 512;
}
#endif

/* Binary multiply-adds done by n_iter steps of the popcount peak loop of isa (as
   bnn_layer: < 0 the best available); time the call to get the rate. */
int64_t bnn_popcount_peak(int64_t n_iter, int isa, uint64_t *sink)
{
    int best = bnn_best_isa();
    isa = isa < 0 || isa > best ? best : isa;
#ifdef BNN_X86
    if (isa == 2)
        return peak_avx512(n_iter, sink);
    if (isa == 1)
        return peak_popcnt(n_iter, sink);
#endif
    return peak_portable(n_iter, sink);
}

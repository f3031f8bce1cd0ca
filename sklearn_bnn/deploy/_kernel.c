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

/* The arguments of one bnn_layer call. */
struct layer_args {
    const uint8_t *on;
    int64_t n, n_in, n_words, n_out;
    const uint64_t *w;
    const int64_t *p;
    uint64_t *scratch;
    uint8_t *out;
    int isa;
};

/* Tile t of the layer (rows TILE_ROWS t onwards): pack its rows, then sweep every group. */
static void layer_tile(const struct layer_args *a, int64_t t)
{
    int64_t r0 = t * TILE_ROWS;
    int64_t rows = a->n - r0 < TILE_ROWS ? a->n - r0 : TILE_ROWS;
    const uint8_t *on = a->on + r0 * a->n_in;
    uint64_t *x = a->scratch + r0 * a->n_words;
    uint8_t *o = a->out + r0 * a->n_out;
#ifdef BNN_X86
    if (a->isa == 2) {
        pack_rows_avx512(on, rows, a->n_in, a->n_words, x);
        tile_avx512(x, rows, a->n_words, a->w, a->p, a->n_out, o);
        return;
    }
    pack_rows(on, rows, a->n_in, a->n_words, x);
    if (a->isa == 1) {
        tile_popcnt(x, rows, a->n_words, a->w, a->p, a->n_out, o);
        return;
    }
#else
    pack_rows(on, rows, a->n_in, a->n_words, x);
#endif
    tile_portable(x, rows, a->n_words, a->w, a->p, a->n_out, o);
}

/* Units of one layer.  on: (n, n_in) bytes; w: (ceil(n_out / 8), n_words, 8) words;
   p: (8 ceil(n_out / 8)) int64; scratch: (n, n_words) words; out: (n, n_out) bytes.
   isa < 0: best available; n_threads < 1: bnn_max_threads().  Returns the isa used.
   When one thread runs (n_threads == 1, or a small product) no OpenMP region is entered:
   a process forked after its parent's OpenMP threads ran can call it with n_threads == 1. */
int bnn_layer(const uint8_t *on, int64_t n, int64_t n_in, const uint64_t *w, const int64_t *p,
              int64_t n_out, uint64_t *scratch, uint8_t *out, int n_threads, int isa)
{
    struct layer_args a = {on, n, n_in, (n_in + 63) / 64, n_out, w, p, scratch, out, isa};
    int64_t n_tiles = (n + TILE_ROWS - 1) / TILE_ROWS;
    int best = bnn_best_isa();
    if (isa < 0 || isa > best)
        a.isa = best;
    if (n_threads < 1)
        n_threads = bnn_max_threads();
    if ((double)n * (double)a.n_words * (double)n_out < MIN_PARALLEL_WORK)
        n_threads = 1;
    if (n_threads == 1) {
        for (int64_t t = 0; t < n_tiles; ++t)
            layer_tile(&a, t);
        return a.isa;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(n_threads)
#endif
    for (int64_t t = 0; t < n_tiles; ++t)
        layer_tile(&a, t);
    return a.isa;
}

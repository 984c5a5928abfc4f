/* vexp.c: the vector exp kernel and the row passes of vexp.h.
 *
 * 8-lane GCC/Clang vector extensions: AVX2 with -march=native, pairs of SSE
 * registers otherwise; the polynomial uses FMA where the target has it. The helpers that pass vectors by value are static and
 * always inlined, so the -Wpsabi note about their (never used) ABI is off.
 */
#include "nn/vexp.h"

#include <math.h>
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#pragma GCC diagnostic ignored "-Wpsabi"

typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
typedef uint32_t u8 __attribute__((vector_size(32)));
typedef double d4 __attribute__((vector_size(32)));
typedef int64_t l4 __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) f8 f8_splat(float x) { return (f8){x, x, x, x, x, x, x, x}; }
static inline __attribute__((always_inline)) f8 f8_load(const float *p)
{
    f8 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline __attribute__((always_inline)) void f8_store(float *p, f8 v) { memcpy(p, &v, sizeof v); }
/* m ? a : b lane-wise (m from a vector comparison: all ones or zero). */
static inline __attribute__((always_inline)) f8 f8_select(i8 m, f8 a, f8 b)
{
    return (f8)(((i8)a & m) | ((i8)b & ~m));
}

/* a * b + c, fused where the target has FMA (one rounding instead of two). */
#if defined(__FMA__) && defined(__AVX__)
static inline __attribute__((always_inline)) f8 fma8(f8 a, f8 b, f8 c)
{
    return (f8)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
}
#else
static inline __attribute__((always_inline)) f8 fma8(f8 a, f8 b, f8 c) { return a * b + c; }
#endif

/* exp(x) for x <= 88 (NaN and x < -87 give 0). No lower clamp is needed:
 * lanes below -87 (or -inf, or NaN) compute garbage bits that the keep mask
 * clears. */
static inline __attribute__((always_inline)) f8 vexp_core(f8 x)
{
    /* 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits. */
    const f8 magic = f8_splat(12582912.0f);
    i8 keep = x >= f8_splat(-87.0f);
    f8 t = fma8(x, f8_splat(1.44269504088896341f), magic);
    f8 n = t - magic;
    i8 ni = (i8)t - (i8)magic;
    /* r = x - n ln2 with ln2 in two parts (Cody-Waite), |r| <= ln2 / 2. */
    f8 r = fma8(n, f8_splat(-0.693359375f), x);
    r = fma8(n, f8_splat(2.12194440e-4f), r);
    f8 p = f8_splat(1.9875691500e-4f);
    p = fma8(p, r, f8_splat(1.3981999507e-3f));
    p = fma8(p, r, f8_splat(8.3334519073e-3f));
    p = fma8(p, r, f8_splat(4.1665795894e-2f));
    p = fma8(p, r, f8_splat(1.6666665459e-1f));
    p = fma8(p, r, f8_splat(5.0000001201e-1f));
    f8 y = fma8(p, r * r, r) + f8_splat(1.0f);
    /* Unsigned: shifting a negative n is fine modulo 2^32. */
    u8 bits = (u8)y + ((u8)ni << 23);
    return (f8)(bits & (u8)keep);
}

/* exp(x) for any x: larger arguments are clamped to 88 (no overflow). */
static inline __attribute__((always_inline)) f8 vexp_f8(f8 x)
{
    return vexp_core(f8_select(x > f8_splat(88.0f), f8_splat(88.0f), x));
}

/* Any lane of a comparison mask set. */
static inline __attribute__((always_inline)) int any8(i8 m)
{
#if defined(__AVX__)
    return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#else
    l4 t = (l4)m;
    return (t[0] | t[1] | t[2] | t[3]) != 0;
#endif
}

/* a0 += e[0..3], a1 += e[4..7] in double. */
static inline __attribute__((always_inline)) void acc_d(d4 *a0, d4 *a1, f8 e)
{
#if defined(__AVX__)
    *a0 += (d4)_mm256_cvtps_pd(_mm256_castps256_ps128((__m256)e));
    *a1 += (d4)_mm256_cvtps_pd(_mm256_extractf128_ps((__m256)e, 1));
#else
    *a0 += __builtin_convertvector(__builtin_shufflevector(e, e, 0, 1, 2, 3), d4);
    *a1 += __builtin_convertvector(__builtin_shufflevector(e, e, 4, 5, 6, 7), d4);
#endif
}

double sr_vexp_row_lse(const float *row, int64_t n, float *shift, int *bad)
{
    float m = *shift;
    f8 s = f8_splat(m);
    d4 a0 = {0, 0, 0, 0}, a1 = {0, 0, 0, 0};
    i8 nan_m = {0};
    float tail[8];
    for (int64_t j = 0; j < n; j += 8) {
        const float *src = row + j;
        if (j + 8 > n) { /* pad the tail with -inf: exp gives 0 */
            for (int k = 0; k < 8; k++) tail[k] = j + k < n ? row[j + k] : -INFINITY;
            src = tail;
        }
        f8 x = f8_load(src);
        nan_m |= x != x;
        if (__builtin_expect(any8(x > s), 0)) {
            /* Rare once the shift nears the row max: raise it, rescale. */
            float hm = m;
            for (int k = 0; k < 8; k++)
                if (src[k] > hm) hm = src[k];
            double f = exp((double)m - (double)hm); /* 0 when m == -inf */
            a0 *= f;
            a1 *= f;
            m = hm;
            s = f8_splat(m);
        }
        acc_d(&a0, &a1, vexp_core(x - s)); /* x - s <= 0 */
    }
    for (int k = 0; k < 8; k++)
        if (nan_m[k]) *bad = 1;
    if (isinf(m) && m > 0) *bad = 1;
    *shift = m;
    d4 a = a0 + a1;
    return (a[0] + a[1]) + (a[2] + a[3]);
}

/* row[j] = exp(row[j] - shift) * scale in place, n >= 0. */
void sr_vexp_row_scale(float *row, int64_t n, float shift, float scale)
{
    const f8 s = f8_splat(shift), c = f8_splat(scale);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) f8_store(row + j, vexp_core(f8_load(row + j) - s) * c);
    if (j < n) {
        float tail[8];
        for (int k = 0; k < 8; k++) tail[k] = j + k < n ? row[j + k] : -INFINITY;
        f8 e = vexp_core(f8_load(tail) - s) * c;
        for (int k = 0; j + k < n; k++) row[j + k] = e[k];
    }
}


void sr_vexp_array(const float *x, float *y, int64_t n)
{
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) f8_store(y + j, vexp_f8(f8_load(x + j)));
    for (; j < n; j++) {
        float t[8] = {x[j], x[j], x[j], x[j], x[j], x[j], x[j], x[j]};
        y[j] = vexp_f8(f8_load(t))[0];
    }
}

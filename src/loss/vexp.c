/* vexp.c: the vector exp kernel and the row passes of vexp.h.
 *
 * 8-lane GCC/Clang vector extensions: AVX2 with -march=native, pairs of SSE
 * registers otherwise. The helpers that pass vectors by value are static and
 * always inlined, so the -Wpsabi note about their (never used) ABI is off.
 */
#include "loss/vexp.h"

#include <math.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wpsabi"

typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
typedef uint32_t u8 __attribute__((vector_size(32)));
typedef double d4 __attribute__((vector_size(32)));

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

static inline __attribute__((always_inline)) f8 vexp_f8(f8 x)
{
    const f8 lo = f8_splat(-87.0f), hi = f8_splat(88.0f);
    /* 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits. */
    const f8 magic = f8_splat(12582912.0f);
    i8 keep = x >= lo;
    x = f8_select(x < lo, lo, x);
    x = f8_select(x > hi, hi, x);
    f8 t = x * f8_splat(1.44269504088896341f) + magic;
    f8 n = t - magic;
    i8 ni = (i8)t - (i8)magic;
    /* r = x - n ln2 in two parts so the product is exact. */
    f8 r = x - n * f8_splat(0.693359375f);
    r = r - n * f8_splat(-2.12194440e-4f);
    f8 p = f8_splat(1.9875691500e-4f);
    p = p * r + f8_splat(1.3981999507e-3f);
    p = p * r + f8_splat(8.3334519073e-3f);
    p = p * r + f8_splat(4.1665795894e-2f);
    p = p * r + f8_splat(1.6666665459e-1f);
    p = p * r + f8_splat(5.0000001201e-1f);
    f8 y = p * (r * r) + r + f8_splat(1.0f);
    /* Unsigned: shifting a negative n is fine modulo 2^32. */
    u8 bits = (u8)y + ((u8)ni << 23);
    return (f8)(bits & (u8)keep);
}

/* Maximum of row[0..n) (n >= 0; -inf for n == 0). *bad is set to 1 when the
 * row holds a NaN or an infinity, since the selects below would drop NaNs. */
float sr_vexp_row_max(const float *row, int64_t n, int *bad)
{
    f8 m = f8_splat(-INFINITY);
    i8 isnan_m = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        f8 x = f8_load(row + j);
        isnan_m |= x != x;
        m = f8_select(x > m, x, m);
    }
    float mx = -INFINITY;
    for (int k = 0; k < 8; k++) {
        if (isnan_m[k]) *bad = 1;
        if (m[k] > mx) mx = m[k];
    }
    for (; j < n; j++) {
        if (row[j] != row[j]) *bad = 1;
        if (row[j] > mx) mx = row[j];
    }
    if (isinf(mx) && mx > 0) *bad = 1;
    return mx;
}

/* sum_j exp(row[j] - shift) accumulated in double (4 + 4 lanes), n >= 0. */
double sr_vexp_row_sum(const float *row, int64_t n, float shift)
{
    const f8 s = f8_splat(shift);
    d4 a0 = {0, 0, 0, 0}, a1 = {0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        f8 e = vexp_f8(f8_load(row + j) - s);
        a0 += __builtin_convertvector(__builtin_shufflevector(e, e, 0, 1, 2, 3), d4);
        a1 += __builtin_convertvector(__builtin_shufflevector(e, e, 4, 5, 6, 7), d4);
    }
    if (j < n) {
        float tail[8];
        for (int k = 0; k < 8; k++) tail[k] = j + k < n ? row[j + k] : -INFINITY;
        f8 e = vexp_f8(f8_load(tail) - s);
        a0 += __builtin_convertvector(__builtin_shufflevector(e, e, 0, 1, 2, 3), d4);
        a1 += __builtin_convertvector(__builtin_shufflevector(e, e, 4, 5, 6, 7), d4);
    }
    d4 a = a0 + a1;
    return (a[0] + a[1]) + (a[2] + a[3]);
}

/* row[j] = exp(row[j] - shift) * scale in place, n >= 0. */
void sr_vexp_row_scale(float *row, int64_t n, float shift, float scale)
{
    const f8 s = f8_splat(shift), c = f8_splat(scale);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) f8_store(row + j, vexp_f8(f8_load(row + j) - s) * c);
    if (j < n) {
        float tail[8];
        for (int k = 0; k < 8; k++) tail[k] = j + k < n ? row[j + k] : -INFINITY;
        f8 e = vexp_f8(f8_load(tail) - s) * c;
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

/* softmax_fused.c: the AVX-512, AVX-512 + BF16 and AVX2 instances of the
 * fused kernels (softmax_fused_kern.h holds the body) and their dispatch.
 *
 * Each variant is compiled with a function target attribute, so a portable
 * build (no -march=native) still carries both; softmax.c calls one only
 * after sr_cpu_detect says the CPU has it. The exp is vexp.c's kernel
 * (Cody-Waite reduction, degree-5 polynomial, same constants) in intrinsics
 * of each width, without the clamp at 88: arguments are z - running max <= 0.
 */
#include "loss/softmax_fused.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/cpu.h"

sr_status sr_fused_choose(const char *what, const char *name, int *isa, sr_error *err)
{
    static const struct {
        const char *name;
        int isa;
    } known[] = {{"blas", -1}, {"fused-avx512", SR_FUSED_AVX512}, {"fused-avx2", SR_FUSED_AVX2}};
    sr_cpu cpu;
    sr_cpu_detect(&cpu);
    const int has[2] = {cpu.avx512f, cpu.avx2 && cpu.fma}; /* indexed by sr_fused_isa */
    if (!strcmp(name, "auto")) {
        *isa = has[SR_FUSED_AVX512] ? SR_FUSED_AVX512 : has[SR_FUSED_AVX2] ? SR_FUSED_AVX2 : -1;
        return SR_OK;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name, known[i].name)) continue;
        if (known[i].isa >= 0 && !has[known[i].isa])
            SR_FAIL(err, SR_ERR_CONFIG, "%s kernel %s: this CPU lacks %s", what, name,
                    known[i].isa == SR_FUSED_AVX512 ? "AVX-512F" : "AVX2 and FMA");
        *isa = known[i].isa;
        return SR_OK;
    }
    SR_FAIL(err, SR_ERR_CONFIG, "%s kernel '%s': expected blas, auto, fused-avx512 or fused-avx2", what, name);
}

int64_t sr_fused_tile(int64_t d)
{
    int64_t nt = ((int64_t)32768 / d) / 32 * 32; /* 128 KiB of packed V: stays in L2 */
    return nt < 32 ? 32 : nt;
}

int64_t sr_fused_pack_floats(int64_t nt, int64_t d) { return (nt + 31) / 32 * 32 * d; }

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

/* ---- AVX-512: 16 lanes, panels of 32 items ------------------------------- */
#define TGT __attribute__((target("avx512f,avx2,fma")))
#define vf __m512
#define vd __m512d
#define VL 16
#define NRV 2
#ifndef SR_FUSED_MRF512 /* tuning overrides, for experiments */
#define SR_FUSED_MRF512 6
#endif
#ifndef SR_FUSED_MRB512
#define SR_FUSED_MRB512 8
#endif
#define MRF SR_FUSED_MRF512
#define MRB SR_FUSED_MRB512
#define FN(name) name##_avx512
#define VZERO() _mm512_setzero_ps()
#define VDZERO() _mm512_setzero_pd()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, x) _mm512_storeu_ps((p), (x))
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUB(a, b) _mm512_sub_ps((a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VDMUL(a, f) _mm512_mul_pd((a), _mm512_set1_pd(f))
/* Any lane x > m or unordered (NaN): the slow path sorts it out. */
#define ANY_NLE(x, m) (_mm512_cmp_ps_mask((x), (m), _CMP_NLE_UQ) != 0)
#define VEXP(x) FN(vexp)(x)

/* Integer lanes of the exp's exponent trick; the keep mask clears lanes
 * below -87 (and -inf, NaN). */
#define vi __m512i
#define VCASTI(x) _mm512_castps_si512(x)
#define VCASTF(x) _mm512_castsi512_ps(x)
#define VADDI(a, b) _mm512_add_epi32((a), (b))
#define VSUBI(a, b) _mm512_sub_epi32((a), (b))
#define VSHL23(a) _mm512_slli_epi32((a), 23)
#define VKEEP(x, lim) _mm512_cmp_ps_mask((x), (lim), _CMP_GE_OQ)
#define VAPPLY(keep, y) _mm512_maskz_mov_ps((keep), (y))
#define vkeep __mmask16

static inline TGT void acc_d_avx512(__m512d *lo, __m512d *hi, __m512 e)
{
    *lo = _mm512_add_pd(*lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    *hi = _mm512_add_pd(*hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
}
#define ACC_D(lo, hi, e) acc_d_avx512((lo), (hi), (e))

static inline TGT double hsum_d_avx512(__m512d lo, __m512d hi)
{
    double t[8];
    _mm512_storeu_pd(t, _mm512_add_pd(lo, hi));
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}
#define HSUM_D(lo, hi) hsum_d_avx512((lo), (hi))

#include "loss/softmax_fused_kern.h"

/* ---- AVX-512 + BF16: the same tiles, products on bf16 pairs --------------- */
#undef TGT
#undef FN
#define TGT __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl,avx2,fma")))
#define FN(name) name##_bf16
#define KBF16 1
#include "loss/softmax_fused_kern.h"
#undef KBF16

#undef TGT
#undef vf
#undef vd
#undef VL
#undef NRV
#undef MRF
#undef MRB
#undef FN
#undef VZERO
#undef VDZERO
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VFMA
#undef VADD
#undef VSUB
#undef VMUL
#undef VDMUL
#undef ANY_NLE
#undef VEXP
#undef ACC_D
#undef HSUM_D
#undef vi
#undef VCASTI
#undef VCASTF
#undef VADDI
#undef VSUBI
#undef VSHL23
#undef VKEEP
#undef VAPPLY
#undef vkeep

/* ---- AVX2 + FMA: 8 lanes, panels of 16 items ------------------------------ */
#define TGT __attribute__((target("avx2,fma")))
#define VL 8
#define NRV 2
#define MRF 4
#define MRB 4
#define FN(name) name##_avx2
#define vf __m256
#define vd __m256d
#define VZERO() _mm256_setzero_ps()
#define VDZERO() _mm256_setzero_pd()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, x) _mm256_storeu_ps((p), (x))
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSUB(a, b) _mm256_sub_ps((a), (b))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VDMUL(a, f) _mm256_mul_pd((a), _mm256_set1_pd(f))
#define ANY_NLE(x, m) (_mm256_movemask_ps(_mm256_cmp_ps((x), (m), _CMP_NLE_UQ)) != 0)
#define VEXP(x) FN(vexp)(x)

#define vi __m256i
#define VCASTI(x) _mm256_castps_si256(x)
#define VCASTF(x) _mm256_castsi256_ps(x)
#define VADDI(a, b) _mm256_add_epi32((a), (b))
#define VSUBI(a, b) _mm256_sub_epi32((a), (b))
#define VSHL23(a) _mm256_slli_epi32((a), 23)
#define VKEEP(x, lim) _mm256_cmp_ps((x), (lim), _CMP_GE_OQ)
#define VAPPLY(keep, y) _mm256_and_ps((keep), (y))
#define vkeep __m256

static inline TGT void acc_d_avx2(__m256d *lo, __m256d *hi, __m256 e)
{
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}
#define ACC_D(lo, hi, e) acc_d_avx2((lo), (hi), (e))

static inline TGT double hsum_d_avx2(__m256d lo, __m256d hi)
{
    double a[4], b[4];
    _mm256_storeu_pd(a, lo);
    _mm256_storeu_pd(b, hi);
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((b[0] + b[1]) + (b[2] + b[3]));
}
#define HSUM_D(lo, hi) hsum_d_avx2((lo), (hi))

#include "loss/softmax_fused_kern.h"

void sr_fused_forward(sr_fused_isa isa, const float *q, int64_t nq, int64_t d, const float *v, int64_t n,
                      const int64_t *trow, float *pack, sr_lse *part)
{
    if (isa == SR_FUSED_AVX512) forward_avx512(q, nq, d, v, n, trow, pack, part);
    else if (isa == SR_FUSED_AVX512_BF16) forward_bf16(q, nq, d, v, n, trow, pack, part);
    else forward_avx2(q, nq, d, v, n, trow, pack, part);
}

void sr_fused_backward(sr_fused_isa isa, const float *q, int64_t nq, int64_t d, const float *v, int64_t j_lo,
                       int64_t j_hi, const float *mx, const float *scale, const int64_t *trow, float inv_b,
                       float *pack, float *dq, float *dv)
{
    if (isa == SR_FUSED_AVX512) backward_avx512(q, nq, d, v, j_lo, j_hi, mx, scale, trow, inv_b, pack, dq, dv);
    else if (isa == SR_FUSED_AVX512_BF16) backward_bf16(q, nq, d, v, j_lo, j_hi, mx, scale, trow, inv_b, pack, dq, dv);
    else backward_avx2(q, nq, d, v, j_lo, j_hi, mx, scale, trow, inv_b, pack, dq, dv);
}

#else /* not x86: softmax.c never selects these (sr_cpu_detect finds no AVX) */

void sr_fused_forward(sr_fused_isa isa, const float *q, int64_t nq, int64_t d, const float *v, int64_t n,
                      const int64_t *trow, float *pack, sr_lse *part)
{
    (void)isa, (void)q, (void)nq, (void)d, (void)v, (void)n, (void)trow, (void)pack, (void)part;
}

void sr_fused_backward(sr_fused_isa isa, const float *q, int64_t nq, int64_t d, const float *v, int64_t j_lo,
                       int64_t j_hi, const float *mx, const float *scale, const int64_t *trow, float inv_b,
                       float *pack, float *dq, float *dv)
{
    (void)isa, (void)q, (void)nq, (void)d, (void)v, (void)j_lo, (void)j_hi, (void)mx, (void)scale, (void)trow;
    (void)inv_b, (void)pack, (void)dq, (void)dv;
}
#endif

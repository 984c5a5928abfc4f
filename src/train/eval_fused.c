/* eval_fused.c: the AVX-512 and AVX2 instances of the fused top-K kernel
 * (eval_fused_kern.h holds the body), the scalar admission path they share
 * and the dispatch.
 *
 * Items are visited in increasing global id for every query, so the
 * exclusion check is a cursor that only moves forward. The admission test
 * is >= (as in the SGEMM scan): a score equal to the root's goes to the
 * heap, whose rule (smaller id first) decides; NaN fails every ordered
 * compare and never enters.
 */
#include "train/eval_fused.h"

#include <math.h>
#include <string.h>

#include "train/topk_heap.h"

/* One query's running state inside a block: its heap, the admission
 * threshold (heap root once full, else -inf) and its exclusion cursor. */
typedef struct fq_ {
    float *hs;
    int64_t *hid;
    int64_t len, cur, end;
    float thr;
} fq_;

static void fq_load_(fq_ *st, int mr, int64_t i0, int64_t k, const int64_t *excl_indptr,
                     const sr_eval_fused_scratch *scr)
{
    for (int i = 0; i < mr; i++) {
        fq_ *s = &st[i];
        s->hs = scr->hs + (i0 + i) * k;
        s->hid = scr->hid + (i0 + i) * k;
        s->len = scr->hlen[i0 + i];
        s->cur = scr->cursor[i0 + i];
        s->end = excl_indptr ? excl_indptr[i0 + i + 1] : 0;
        s->thr = s->len < k ? -INFINITY : s->hs[0];
    }
}

static void fq_save_(const fq_ *st, int mr, int64_t i0, const sr_eval_fused_scratch *scr)
{
    for (int i = 0; i < mr; i++) {
        scr->hlen[i0 + i] = st[i].len;
        scr->cursor[i0 + i] = st[i].cur;
    }
}

/* The lanes of row (bit j: lane j reached the threshold) that are real
 * items (j < nj), still at or above the threshold (it rises as lanes go in),
 * not -inf and not excluded, offered to the heap. Item j's id: gb + j stride. */
static void fq_offer_(fq_ *s, const float *row, uint64_t bits, int nj, int64_t gb, int64_t stride, int64_t k,
                      const int64_t *excl)
{
    while (bits) {
        const int j = __builtin_ctzll(bits);
        bits &= bits - 1;
        if (j >= nj) break; /* zero-padded lanes of the shard's last panel */
        const float sc = row[j];
        if (!(sc >= s->thr && sc > -INFINITY)) continue;
        const int64_t id = gb + j * stride;
        while (s->cur < s->end && excl[s->cur] < id) s->cur++;
        if (s->cur < s->end && excl[s->cur] == id) continue;
        s->thr = sr_topk_offer(s->hs, s->hid, &s->len, k, sc, id);
    }
}

/* Share `part` of `parts` of the nf floats at p, prefetched into L2: the
 * blocks of one tile fetch the next tile from memory while they compute
 * (otherwise the pack waits on DRAM: ~7 ms a call at 200k items, d = 64,
 * 10% of the call at b = 256). */
static inline void prefetch_share_(const float *p, int64_t nf, int64_t part, int64_t parts)
{
    const int64_t lines = (nf + 15) / 16, lo = lines * part / parts, hi = lines * (part + 1) / parts;
    for (int64_t l = lo; l < hi; l++) __builtin_prefetch(p + l * 16, 0, 2);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

/* 8 rows of 8 floats (src, row stride d) -> 8 rows of the panel (dst, row
 * stride nr): the unpack / shuffle / lane-permute 8 x 8 transpose. */
static inline __attribute__((target("avx2"))) void tr8_(const float *src, int64_t d, float *dst, int64_t nr)
{
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * d);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(dst + i * nr, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        _mm256_storeu_ps(dst + (i + 4) * nr, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
}

/* V rows [j0, j0 + nj) -> panels of d x nr (item fastest), zero-padded:
 * 8 x 8 blocks by tr8_, the row and column remainders one by one. The
 * packing moves n d floats a call against b n d / VL FMAs: a scalar copy
 * cost ~3% at b = 1024 (four times that at evaluate.c's 256 a rank). */
static __attribute__((target("avx2"))) void pack_(const float *v, int64_t j0, int64_t nj, int64_t d, int64_t nr,
                                                  float *pack)
{
    for (int64_t p0 = 0; p0 < nj; p0 += nr) {
        const int64_t w = nj - p0 < nr ? nj - p0 : nr, w8 = w / 8 * 8, d8 = d / 8 * 8;
        const float *src = v + (j0 + p0) * d;
        float *dst = pack + p0 * d;
        if (w < nr) memset(dst, 0, sizeof(float) * (size_t)(nr * d));
        for (int64_t jj = 0; jj < w8; jj += 8)
            for (int64_t kk = 0; kk < d8; kk += 8) tr8_(src + jj * d + kk, d, dst + kk * nr + jj, nr);
        for (int64_t jj = 0; jj < w; jj++)
            for (int64_t kk = jj < w8 ? d8 : 0; kk < d; kk++) dst[kk * nr + jj] = src[jj * d + kk];
    }
}

/* ---- AVX-512: 16 lanes, panels of 48 items, 8 queries a block ------------ */
#define TGT __attribute__((target("avx512f,avx2,fma")))
#define vf __m512
#define VL 16
#ifndef SR_EVAL_FUSED_NRV512 /* tuning overrides, for experiments */
#define SR_EVAL_FUSED_NRV512 3
#endif
#ifndef SR_EVAL_FUSED_MR512
#define SR_EVAL_FUSED_MR512 8
#endif
#define NRV SR_EVAL_FUSED_NRV512
#define MR SR_EVAL_FUSED_MR512
#define FN(name) eval_##name##_avx512
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, x) _mm512_storeu_ps((p), (x))
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
/* Lanes x >= t (ordered: NaN never passes) as bits. */
#define VGE_BITS(x, t) ((uint32_t)_mm512_cmp_ps_mask((x), (t), _CMP_GE_OQ))

#include "train/eval_fused_kern.h"

#undef TGT
#undef vf
#undef VL
#undef NRV
#undef MR
#undef FN
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VFMA
#undef VGE_BITS

/* ---- AVX2 + FMA: 8 lanes, panels of 16 items, 6 queries a block ---------- */
#define TGT __attribute__((target("avx2,fma")))
#define vf __m256
#define VL 8
#define NRV 2
#define MR 6
#define FN(name) eval_##name##_avx2
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, x) _mm256_storeu_ps((p), (x))
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VGE_BITS(x, t) ((uint32_t)_mm256_movemask_ps(_mm256_cmp_ps((x), (t), _CMP_GE_OQ)))

#include "train/eval_fused_kern.h"

static void sweep_(sr_fused_isa isa, const float *q, int64_t nq, int64_t d, const float *v, int64_t n, int64_t g0,
                   int64_t stride, const int64_t *excl_indptr, const int64_t *excl_ids, int64_t k,
                   const sr_eval_fused_scratch *scr)
{
    if (isa == SR_FUSED_AVX512) eval_sweep_avx512(q, nq, d, v, n, g0, stride, excl_indptr, excl_ids, k, scr);
    else eval_sweep_avx2(q, nq, d, v, n, g0, stride, excl_indptr, excl_ids, k, scr);
}

#else /* not x86: eval_kernels.c never selects the fused path (no AVX) */

static void sweep_(sr_fused_isa isa, const float *q, int64_t nq, int64_t d, const float *v, int64_t n, int64_t g0,
                   int64_t stride, const int64_t *excl_indptr, const int64_t *excl_ids, int64_t k,
                   const sr_eval_fused_scratch *scr)
{
    (void)isa, (void)q, (void)nq, (void)d, (void)v, (void)n, (void)g0, (void)stride, (void)excl_indptr;
    (void)excl_ids, (void)k, (void)scr, (void)fq_load_, (void)fq_save_, (void)fq_offer_;
}
#endif

void sr_eval_fused_topk(sr_fused_isa isa, const float *q, int64_t nq, int64_t d, const float *v, int64_t n,
                        int64_t g0, int64_t stride, const int64_t *excl_indptr, const int64_t *excl_ids,
                        int64_t k, const sr_eval_fused_scratch *scr, float *top_score, int64_t *top_id)
{
    for (int64_t i = 0; i < nq; i++) {
        scr->hlen[i] = 0;
        scr->cursor[i] = excl_indptr ? excl_indptr[i] : 0;
    }
    if (n > 0) sweep_(isa, q, nq, d, v, n, g0, stride, excl_indptr, excl_ids, k, scr);
    for (int64_t i = 0; i < nq; i++)
        sr_topk_drain(scr->hs + i * k, scr->hid + i * k, scr->hlen[i], k, top_score + i * k, top_id + i * k);
}

/* eval_fused.c: the AVX-512 and AVX2 instances of the fused top-K kernel
 * (eval_fused_kern.h holds the body), the scalar admission path they share
 * and the dispatch.
 *
 * Items are visited in increasing global id for every query, so the
 * exclusion check is a cursor that only moves forward, and an item equal to
 * the threshold loses the id tie-break to the root (kept for NaN-free
 * symmetry with the SGEMM scan: >= lets the heap's rule decide).
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

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

/* ---- AVX-512: 16 lanes, panels of 32 items, 12 queries a block ----------- */
#define TGT __attribute__((target("avx512f,avx2,fma")))
#define vf __m512
#define VL 16
#ifndef SR_EVAL_FUSED_NRV512 /* tuning overrides, for experiments */
#define SR_EVAL_FUSED_NRV512 2
#endif
#ifndef SR_EVAL_FUSED_MR512
#define SR_EVAL_FUSED_MR512 12
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

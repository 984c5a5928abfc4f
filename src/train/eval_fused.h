/* eval_fused.h: register-tiled full-ranking top-K (the fused twin of the
 * SGEMM + scan in eval_kernels.c; reference: sr_eval_topk_ref).
 *
 * Per block of MR queries x one panel of NR items the scores stay in vector
 * registers; each vector is compared once with its query's admission
 * threshold (the K-th best so far) and only the lanes at or above it go to
 * the query's size-k heap (topk_heap.h), where excluded ids are checked
 * against the query's sorted list. No score buffer, no SGEMM. AVX-512 and
 * AVX2+FMA variants, compiled into every build with target attributes; the
 * caller (eval_kernels.c) checks the CPU first. Covered: 1 <= d <=
 * SR_FUSED_D_MAX. Order, NaN / -inf dropping and (-inf, -1) padding are
 * those of eval_kernels.h; scores equal the SGEMM path's up to float
 * rounding (the d-sum runs in k order with FMAs), so ids can differ only
 * between items whose scores are that close.
 * Pure: caller arrays and sizes only, no allocation, no globals.
 */
#ifndef SR_TRAIN_EVAL_FUSED_H
#define SR_TRAIN_EVAL_FUSED_H

#include <stdint.h>

#include "loss/softmax_fused.h" /* sr_fused_isa, SR_FUSED_D_MAX */

/* Caller scratch of one call over nq queries. */
typedef struct sr_eval_fused_scratch {
    float *pack;     /* SR_EVAL_FUSED_PACK floats: one packed V tile */
    float *hs;       /* nq x k heap scores */
    int64_t *hid;    /* nq x k heap ids */
    int64_t *hlen;   /* nq */
    int64_t *cursor; /* nq: next exclusion entry per query */
} sr_eval_fused_scratch;

/* Floats of the pack buffer, for every covered d: a tile holds at most
 * sr_fused_tile(d) items (~128 KiB of V). */
#define SR_EVAL_FUSED_PACK 32768

/* Top-k of queries q (nq x d) against items v (n x d, row-major; row j has
 * global id g0 + j * stride, increasing). excl_indptr (nq + 1 offsets into
 * excl_ids, sorted global ids per query; NULL: no masking). Writes
 * top_score / top_id (nq x k, best first, padded). */
void sr_eval_fused_topk(sr_fused_isa isa, const float *q, int64_t nq, int64_t d, const float *v, int64_t n,
                        int64_t g0, int64_t stride, const int64_t *excl_indptr, const int64_t *excl_ids,
                        int64_t k, const sr_eval_fused_scratch *scr, float *top_score, int64_t *top_id);

#endif

/* eval_kernels.c: tiled local top-K with exclusion masking, the candidate
 * merge and the sort-based reference.
 *
 * Per tile: one SGEMM (b x nt scores), then per query row: mask the excluded
 * ids that fall in the tile (a per-query cursor walks the sorted exclusion
 * list, since tiles visit global ids in increasing order for both layouts),
 * and feed the row to a size-k min-heap whose root is the worst kept entry.
 * Most items lose to the root, so the scan is a vector compare of 8 scores
 * against the root's score and a skip; only the survivors touch the heap.
 *
 * Threads: like the softmax workspace (softmax.c), the workspace reads
 * OpenBLAS's thread count once at create; with T > 1 an OpenMP team splits
 * the query blocks, each thread running single-threaded SGEMM into its own
 * score block and scanning its own rows (heaps and cursors are per query),
 * so the result is bit-identical to the single-thread path. A custom scorer
 * (sr_topk_ws_set_scorer) may keep state between calls: it runs on one
 * thread.
 *
 * Fused path (sr_topk_ws_set_kernel, eval_fused.h): a register-tiled kernel
 * replaces the SGEMM, the score block and the masking pass; the team splits
 * queries as above, each thread packing its own V tiles.
 */
#include "train/eval_kernels.h"

#include <cblas.h>

#include "core/blocks.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/team.h"
#include "train/eval_fused.h"
#include "train/topk_heap.h"
#if defined(__AVX__)
#include <immintrin.h>
#endif

struct sr_topk_ws {
    sr_mem *mem;
    int64_t b_max, tile, k_max;
    int64_t qb;      /* queries per block (the score block stays in cache) */
    int threads;     /* team size (OpenBLAS's thread count at create, <= blocks) */
    float *scores;   /* threads x qb x tile: each thread's score block */
    float *hs;       /* b_max x k_max heap scores */
    int64_t *hid;    /* b_max x k_max heap ids */
    int64_t *hlen;   /* b_max */
    int64_t *cursor; /* b_max: next exclusion entry to look at */
    sr_score_fn score_fn; /* NULL: dot products by SGEMM */
    void *score_ctx;
    int fused;   /* -1: SGEMM path; else the sr_fused_isa of eval_fused.h */
    float *pack; /* fused only: threads x SR_EVAL_FUSED_PACK floats */
};

/* Queries per block so that a qb x tile score block is about 2 MiB: the
 * SGEMM writes it and the scan reads it back from cache (same reasoning and
 * measurements as the softmax workspace, softmax.c). */
size_t sr_topk_ws_bytes(int64_t b_max, int64_t tile, int64_t k_max)
{
    int64_t qb = sr_blocks_queries(b_max, tile);
    return sizeof(sr_topk_ws) + (size_t)sr_blocks_threads(b_max, qb) * (size_t)qb * (size_t)tile * sizeof(float) +
           (size_t)b_max * (size_t)k_max * (sizeof(float) + sizeof(int64_t)) +
           2 * (size_t)b_max * sizeof(int64_t);
}

sr_status sr_topk_ws_create(sr_topk_ws **out, int64_t b_max, int64_t tile, int64_t k_max, sr_mem *mem,
                            sr_error *err)
{
    *out = NULL;
    if (b_max < 1 || tile < 1 || k_max < 1 || b_max > INT_MAX || tile > INT_MAX)
        SR_FAIL(err, SR_ERR_INTERNAL, "top-k workspace: batch %lld, tile %lld, k %lld", (long long)b_max,
                (long long)tile, (long long)k_max);
    if ((uint64_t)b_max > SIZE_MAX / sizeof(float) / (uint64_t)tile ||
        (uint64_t)b_max > SIZE_MAX / sizeof(int64_t) / (uint64_t)k_max)
        SR_FAIL(err, SR_ERR_NOMEM, "top-k workspace: sizes overflow");
    sr_topk_ws *ws = sr_mem_alloc(mem, sizeof *ws, 1, "top-k workspace", err);
    if (!ws) return err ? err->code : SR_ERR_NOMEM;
    ws->mem = mem;
    ws->score_fn = NULL;
    ws->score_ctx = NULL;
    ws->fused = -1;
    ws->pack = NULL;
    ws->b_max = b_max;
    ws->tile = tile;
    ws->k_max = k_max;
    ws->qb = sr_blocks_queries(b_max, tile);
    ws->threads = sr_blocks_threads(b_max, ws->qb);
    ws->scores = sr_mem_alloc(mem, (size_t)ws->threads * (size_t)ws->qb * (size_t)tile * sizeof(float), 0,
                              "top-k score blocks", err);
    ws->hs = sr_mem_alloc(mem, (size_t)b_max * (size_t)k_max * sizeof(float), 0, "top-k heap scores", err);
    ws->hid = sr_mem_alloc(mem, (size_t)b_max * (size_t)k_max * sizeof(int64_t), 0, "top-k heap ids", err);
    ws->hlen = sr_mem_alloc(mem, (size_t)b_max * sizeof(int64_t), 0, "top-k heap sizes", err);
    ws->cursor = sr_mem_alloc(mem, (size_t)b_max * sizeof(int64_t), 0, "top-k cursors", err);
    if (!ws->scores || !ws->hs || !ws->hid || !ws->hlen || !ws->cursor) {
        sr_topk_ws_destroy(&ws);
        return err ? err->code : SR_ERR_NOMEM;
    }
    *out = ws;
    return SR_OK;
}

void sr_topk_ws_destroy(sr_topk_ws **ws)
{
    if (!ws || !*ws) return;
    sr_topk_ws *w = *ws;
    sr_mem_free(w->mem, w->scores);
    sr_mem_free(w->mem, w->hs);
    sr_mem_free(w->mem, w->hid);
    sr_mem_free(w->mem, w->hlen);
    sr_mem_free(w->mem, w->cursor);
    sr_mem_free(w->mem, w->pack);
    sr_mem_free(w->mem, w);
    *ws = NULL;
}

sr_mem *sr_topk_ws_mem(const sr_topk_ws *ws) { return ws->mem; }

void sr_topk_ws_set_scorer(sr_topk_ws *ws, sr_score_fn fn, void *ctx)
{
    ws->score_fn = fn;
    ws->score_ctx = ctx;
}

/* ---- kernel choice ------------------------------------------------------ */

sr_status sr_topk_ws_set_kernel(sr_topk_ws *ws, const char *name, sr_error *err)
{
    int isa = -1;
    SR_TRY(sr_fused_choose("eval", name, &isa, err));
    if (isa >= 0 && !ws->pack) {
        ws->pack = sr_mem_alloc(ws->mem, (size_t)ws->threads * SR_EVAL_FUSED_PACK * sizeof(float), 0,
                                "top-k fused pack", err);
        if (!ws->pack) return err ? err->code : SR_ERR_NOMEM;
    }
    ws->fused = isa;
    return SR_OK;
}

static int use_fused_(const sr_topk_ws *ws, int64_t d)
{
    return ws->fused >= 0 && !ws->score_fn && d <= SR_FUSED_D_MAX;
}

const char *sr_topk_ws_kernel(const sr_topk_ws *ws, int64_t d)
{
    if (!use_fused_(ws, d)) return "blas";
    return ws->fused == SR_FUSED_AVX512 ? "fused-avx512" : "fused-avx2";
}

/* ---- local top-k --------------------------------------------------------- */

sr_status sr_eval_topk_check(int64_t b, int64_t d, int64_t n_local, const sr_shard *shard, int rank,
                             const int64_t *excl_indptr, const int64_t *excl_ids, int64_t k,
                             const sr_topk_ws *ws, sr_error *err)
{
    if (b < 1 || b > ws->b_max || k < 1 || k > ws->k_max || d < 1 || d > INT_MAX)
        SR_FAIL(err, SR_ERR_INTERNAL,
                "top-k: batch %lld (max %lld), k %lld (max %lld), dimension %lld outside the workspace",
                (long long)b, (long long)ws->b_max, (long long)k, (long long)ws->k_max, (long long)d);
    if (rank < 0 || rank >= shard->p || n_local != sr_shard_count(shard, rank))
        SR_FAIL(err, SR_ERR_INTERNAL, "top-k: rank %d of %d holds %lld rows, not what the shard map says",
                rank, shard->p, (long long)n_local);
    if (!excl_indptr) return SR_OK;
    if (excl_indptr[0] != 0)
        SR_FAIL(err, SR_ERR_DATA, "top-k: exclusion lists start at %lld, not 0", (long long)excl_indptr[0]);
    for (int64_t i = 0; i < b; i++) {
        if (excl_indptr[i + 1] < excl_indptr[i])
            SR_FAIL(err, SR_ERR_DATA, "top-k: exclusion offsets decrease at query %lld", (long long)i);
        for (int64_t e = excl_indptr[i]; e < excl_indptr[i + 1]; e++) {
            int64_t id = excl_ids[e];
            if (id < 0 || id >= shard->n || (e > excl_indptr[i] && id <= excl_ids[e - 1]))
                SR_FAIL(err, SR_ERR_DATA,
                        "top-k: exclusion list of query %lld is not strictly ascending ids in [0, %lld) "
                        "(entry %lld = %lld)",
                        (long long)i, (long long)shard->n, (long long)(e - excl_indptr[i]), (long long)id);
        }
    }
    return SR_OK;
}

typedef float f8_ __attribute__((vector_size(32)));
typedef int32_t i8_ __attribute__((vector_size(32)));
typedef int64_t l4_ __attribute__((vector_size(32)));

/* Any lane of a comparison mask set (vptest on AVX). */
#if defined(__AVX__)
#define ANY8_(m) (!_mm256_testz_si256((__m256i)(m), (__m256i)(m)))
#else
#define ANY8_(m) ((((l4_)(m))[0] | ((l4_)(m))[1] | ((l4_)(m))[2] | ((l4_)(m))[3]) != 0)
#endif

/* Offer the row's scores (global id g0 + j * stride) to the heap. */
static void scan_row_(const float *row, int64_t nt, int64_t g0, int64_t stride, int64_t k, float *hs, int64_t *hid,
                      int64_t *len)
{
    float thr = *len < k ? -INFINITY : hs[0];
    f8_ thr8 = {thr, thr, thr, thr, thr, thr, thr, thr};
    int64_t jj = 0;
    /* Vector prefilter: skip 8 scores at once when none reaches thr (>= keeps
     * ties, which the id rule then decides). */
    for (; jj + 8 <= nt; jj += 8) {
        f8_ x;
        memcpy(&x, row + jj, sizeof x);
        i8_ m = x >= thr8;
        if (!ANY8_(m)) continue;
        for (int u = 0; u < 8; u++) {
            float s = row[jj + u];
            if (s >= thr && s > -INFINITY) /* false for NaN and masked */
                thr = sr_topk_offer(hs, hid, len, k, s, g0 + (jj + u) * stride);
        }
        thr8 = (f8_){thr, thr, thr, thr, thr, thr, thr, thr};
    }
    for (; jj < nt; jj++) {
        float s = row[jj];
        if (s >= thr && s > -INFINITY) thr = sr_topk_offer(hs, hid, len, k, s, g0 + jj * stride);
    }
}

typedef struct topk_ctx_ {
    const float *q, *v;
    int64_t b, d, n_local, k, stride, base;
    const int64_t *excl_indptr, *excl_ids;
    sr_topk_ws *ws;
    float *top_score; /* fused path only: where each thread drains its queries */
    int64_t *top_id;
} topk_ctx_;

/* Scores, masks and scans this thread's query blocks (a contiguous range),
 * tile by tile, so its V tile stays in cache for all its blocks. */
static void topk_worker_(void *arg, const sr_team_part *part)
{
    const topk_ctx_ *c = arg;
    sr_topk_ws *ws = c->ws;
    const int64_t b = c->b, d = c->d, k = c->k, stride = c->stride, qb = ws->qb;
    const int64_t blo = part->lo, bhi = part->hi;
    const int t = part->t;
    const int64_t *excl_indptr = c->excl_indptr, *excl_ids = c->excl_ids;
    float *sc = ws->scores + (size_t)t * (size_t)qb * (size_t)ws->tile;
    for (int64_t j0 = 0; j0 < c->n_local; j0 += ws->tile) {
        int64_t nt = c->n_local - j0 < ws->tile ? c->n_local - j0 : ws->tile;
        const int64_t g0 = c->base + j0 * stride, g_last = c->base + (j0 + nt - 1) * stride;
        for (int64_t blk = blo; blk < bhi; blk++) {
            int64_t i0 = blk * qb, nb = b - i0 < qb ? b - i0 : qb;
            if (ws->score_fn)
                ws->score_fn(ws->score_ctx, c->q + i0 * d, nb, d, j0, j0 + nt, sc);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nt, (int)d, 1.0f,
                            c->q + i0 * d, (int)d, c->v + j0 * d, (int)d, 0.0f, sc, (int)nt);
            for (int64_t i = i0; i < i0 + nb; i++) {
                float *row = sc + (i - i0) * nt;
                if (excl_indptr) {
                    int64_t e = ws->cursor[i], end = excl_indptr[i + 1];
                    while (e < end && excl_ids[e] < g0) e++;
                    for (; e < end && excl_ids[e] <= g_last; e++) {
                        int64_t off = excl_ids[e] - g0;
                        if (off % stride == 0) row[off / stride] = -INFINITY; /* ours, in this tile */
                    }
                    ws->cursor[i] = e;
                }
                scan_row_(row, nt, g0, stride, k, ws->hs + i * k, ws->hid + i * k, &ws->hlen[i]);
            }
        }
    }
}

/* Fused path: thread t takes a contiguous range of FUSED_QUNIT-query units
 * (a multiple of every variant's block height) and sweeps the whole shard,
 * packing each V tile itself, so the lists are the same at every team size. */
#define FUSED_QUNIT 48
static void fused_worker_(void *arg, const sr_team_part *part)
{
    const topk_ctx_ *c = arg;
    sr_topk_ws *ws = c->ws;
    const int64_t k = c->k, i0 = part->lo * FUSED_QUNIT;
    const int64_t i1 = part->hi * FUSED_QUNIT < c->b ? part->hi * FUSED_QUNIT : c->b;
    if (i1 <= i0) return;
    sr_eval_fused_scratch scr = {ws->pack + (size_t)part->t * SR_EVAL_FUSED_PACK, ws->hs + i0 * k,
                                 ws->hid + i0 * k, ws->hlen + i0, ws->cursor + i0};
    sr_eval_fused_topk((sr_fused_isa)ws->fused, c->q + i0 * c->d, i1 - i0, c->d, c->v, c->n_local, c->base,
                       c->stride, c->excl_indptr ? c->excl_indptr + i0 : NULL, c->excl_ids, k, &scr,
                       c->top_score + i0 * k, c->top_id + i0 * k);
}

sr_status sr_eval_topk_local(const float *q, int64_t b, int64_t d, const float *v, int64_t n_local,
                             const sr_shard *shard, int rank, const int64_t *excl_indptr,
                             const int64_t *excl_ids, int64_t k, sr_topk_ws *ws, float *top_score,
                             int64_t *top_id, sr_error *err)
{
    SR_TRY(sr_eval_topk_check(b, d, n_local, shard, rank, excl_indptr, excl_ids, k, ws, err));
    /* Local row j has global id g(j) = base + j * stride in both layouts. */
    const int64_t stride = shard->layout == SR_SHARD_INTERLEAVE ? shard->p : 1;
    const int64_t base = n_local > 0 ? sr_shard_global(shard, rank, 0) : 0;
    for (int64_t i = 0; i < b; i++) {
        ws->hlen[i] = 0;
        ws->cursor[i] = excl_indptr ? excl_indptr[i] : 0;
    }
    topk_ctx_ c = {q, v, b, d, n_local, k, stride, base, excl_indptr, excl_ids, ws, top_score, top_id};
    if (use_fused_(ws, d)) { /* it drains into top_score / top_id itself */
        sr_team_run(ws->threads, (b + FUSED_QUNIT - 1) / FUSED_QUNIT, fused_worker_, &c);
        return SR_OK;
    }
    /* A custom scorer may keep state between calls: one thread. */
    int team = ws->score_fn || n_local == 0 ? 1 : ws->threads;
    sr_team_run(team, (b + ws->qb - 1) / ws->qb, topk_worker_, &c);
    for (int64_t i = 0; i < b; i++)
        sr_topk_drain(ws->hs + i * k, ws->hid + i * k, ws->hlen[i], k, top_score + i * k, top_id + i * k);
    return SR_OK;
}

/* ---- merge ---------------------------------------------------------------- */

/* Entries before the first padding (-1) id. */
static int64_t valid_len_(const int64_t *ids, int64_t k)
{
    int64_t n = 0;
    while (n < k && ids[n] >= 0) n++;
    return n;
}

/* a (k entries, in place) = best k of a and bb, both sorted best first.
 * Merge path: c = how many of bb make the cut (binary search), then a
 * backward merge, which never overwrites an a entry it still has to read. */
static void merge_into_(float *as, int64_t *aid, const float *bs, const int64_t *bid, int64_t k)
{
    int64_t la = valid_len_(aid, k), lb = valid_len_(bid, k);
    int64_t total = la + lb < k ? la + lb : k;
    int64_t lo = total - la > 0 ? total - la : 0, hi = total < lb ? total : lb;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2; /* does bb[mid-1] beat a[total-mid]? */
        int64_t ai = total - mid;
        if (ai >= la || sr_topk_better(bs[mid - 1], bid[mid - 1], as[ai], aid[ai])) lo = mid;
        else hi = mid - 1;
    }
    int64_t ia = total - lo - 1, ib = lo - 1;
    for (int64_t w = total - 1; w >= 0; w--) {
        int take_b = ia < 0 || (ib >= 0 && sr_topk_better(as[ia], aid[ia], bs[ib], bid[ib]));
        if (take_b) {
            as[w] = bs[ib];
            aid[w] = bid[ib];
            ib--;
        } else {
            as[w] = as[ia];
            aid[w] = aid[ia];
            ia--;
        }
    }
    for (int64_t w = total; w < k; w++) {
        as[w] = -INFINITY;
        aid[w] = -1;
    }
}

void sr_eval_topk_merge(int p, int64_t b, int64_t k, const float *cand_score, const int64_t *cand_id,
                        float *top_score, int64_t *top_id)
{
    const int64_t blk = b * k;
    for (int64_t i = 0; i < b; i++) {
        float *os = top_score + i * k;
        int64_t *oid = top_id + i * k;
        for (int64_t j = 0; j < k; j++) {
            os[j] = -INFINITY;
            oid[j] = -1;
        }
        for (int r = 0; r < p; r++) merge_into_(os, oid, cand_score + r * blk + i * k, cand_id + r * blk + i * k, k);
    }
}

/* ---- reference ------------------------------------------------------------ */

typedef struct ref_entry_ {
    double s;
    int64_t id;
} ref_entry_;

static int ref_cmp_(const void *pa, const void *pb)
{
    const ref_entry_ *a = pa, *b = pb;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    return a->id < b->id ? -1 : (a->id > b->id);
}

static int excluded_(const int64_t *ids, int64_t lo, int64_t end, int64_t id)
{
    int64_t hi = end;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < end && ids[lo] == id;
}

sr_status sr_eval_topk_ref(const float *q, int64_t b, int64_t d, const float *v_all, int64_t n,
                           const int64_t *excl_indptr, const int64_t *excl_ids, int64_t k,
                           double *top_score, int64_t *top_id, sr_mem *mem, sr_error *err)
{
    if (b < 1 || d < 1 || n < 0 || k < 1)
        SR_FAIL(err, SR_ERR_INTERNAL, "top-k reference: batch %lld, dim %lld, items %lld, k %lld",
                (long long)b, (long long)d, (long long)n, (long long)k);
    ref_entry_ *all = sr_mem_calloc(mem, (size_t)(n > 0 ? n : 1), sizeof *all, "top-k reference", err);
    if (!all) return err ? err->code : SR_ERR_NOMEM;
    for (int64_t i = 0; i < b; i++) {
        int64_t m = 0;
        for (int64_t j = 0; j < n; j++) {
            if (excl_indptr && excluded_(excl_ids, excl_indptr[i], excl_indptr[i + 1], j)) continue;
            double s = 0.0;
            for (int64_t c = 0; c < d; c++) s += (double)q[i * d + c] * (double)v_all[j * d + c];
            if (isnan(s) || s == -INFINITY) continue;
            all[m].s = s;
            all[m].id = j;
            m++;
        }
        qsort(all, (size_t)m, sizeof *all, ref_cmp_);
        for (int64_t j = 0; j < k; j++) {
            top_score[i * k + j] = j < m ? all[j].s : -INFINITY;
            top_id[i * k + j] = j < m ? all[j].id : -1;
        }
    }
    sr_mem_free(mem, all);
    return SR_OK;
}

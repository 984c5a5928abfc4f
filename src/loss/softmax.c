/* softmax.c: the tiled exact softmax kernels (forward partial, backward).
 *
 * Per tile of the local shard and block of queries: one SGEMM writes the
 * nb x nt logits into the workspace (a block small enough to stay in cache),
 * then row-wise vector passes (vexp.h) fold them: forward, one
 * pass of exp(z - running max) summed in double; backward overwrites the tile
 * with P = exp(z - M) / (B * S) in place, subtracts 1/B at the owned targets,
 * and two SGEMMs accumulate dV_tile and dQ_blk. Rows of one tile are at most
 * `tile` floats (16 KiB at 4096).
 *
 * Threads. The workspace reads OpenBLAS's thread count T once at create (1
 * when bound to one core, as with one rank per core). With T > 1 an OpenMP
 * team of T threads runs the kernel, each thread calling single-threaded
 * SGEMM on its own query blocks with its own logit block and running its own
 * row passes: OpenBLAS's threading of a 128-row GEMM leaves the passes on one
 * thread and costs ~30% on the 2-core dev VM (docs/benchmarks.md). Query
 * blocks are the same qb-row blocks at every T, so the forward triples are
 * bit-identical to the single-thread path. Backward goes in rounds of T
 * blocks: each thread forms P for its block and dQ_blk += P V_tile (so dQ
 * is bit-identical to T = 1 too); after a barrier each thread adds the
 * round's P^T Q products, block by block in block order, into its own slice
 * of dV_tile's rows. dV is deterministic for a given T but not bit-identical
 * across T: OpenBLAS rounds a row slice of an SGEMM differently from the same
 * rows of the whole product (last-bit differences, ~1e-9 relative).
 *
 * Fused path (sr_softmax_ws_set_kernel, softmax_fused.h): register-tiled
 * kernels replace the SGEMMs and the passes where d % 16 == 0. Forward splits
 * queries over the team (triples as at T = 1); backward splits items (dV as
 * at T = 1), threads 1.. adding dQ into their logit blocks, summed in order.
 */
#include "loss/softmax.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "nn/vexp.h"
#include "core/blocks.h"
#include "core/cpu.h"
#include "core/team.h"
#include "loss/softmax_fused.h"

struct sr_softmax_ws {
    sr_mem *mem;
    int64_t b_max;
    int64_t tile;
    int64_t qb;    /* queries per block: a qb x tile block of logits stays in cache */
    int threads;   /* team size (OpenBLAS's thread count at create, <= blocks) */
    float *logits; /* threads x qb x tile: each thread's block of logits, then of P */
    int64_t *trow; /* b_max: local row of the query's target, -1 if not owned */
    float *scale;  /* b_max: 1 / (B * S_i) in backward */
    sr_lse *lse;   /* b_max: the caller's merge buffer */
    void *bufs;    /* the one block behind the four above */
    int fused;     /* -1: SGEMM path; else the sr_fused_isa of the fused kernels */
    int bf16;      /* loss.precision = bf16: the AVX-512 fused kernels on bf16 products */
    float *pack;   /* fused only: threads x FUSED_PACK floats (packed V tiles) */
    float *mx;     /* fused only: b_max merged maxima as floats */
};

/* Pack floats per thread: sr_fused_pack_floats(sr_fused_tile(d), d) <= 32768
 * for every d <= SR_FUSED_D_MAX. */
#define FUSED_PACK ((int64_t)32768)

/* Queries per block: the qb x tile logit block is about 2 MiB (core/blocks.h),
 * so the SGEMM that writes it, the exp pass and the two SGEMMs that read it
 * (backward) find it in L2/L3 instead of main memory. With 16 MiB blocks
 * (1024 x 4096) the step ran at ~35 GFLOP/s on the 2-core dev VM, with
 * 2 MiB blocks at ~50 (docs/benchmarks.md). */

size_t sr_softmax_ws_bytes(int64_t b_max, int64_t tile)
{
    int64_t qb = sr_blocks_queries(b_max, tile);
    const size_t B = (size_t)b_max;
    /* One buffer set: each view rounded up to SR_MEM_ALIGN. */
#define UP(x) (((x) + SR_MEM_ALIGN - 1) / SR_MEM_ALIGN * SR_MEM_ALIGN)
    return UP((size_t)sr_blocks_threads(b_max, qb) * (size_t)qb * (size_t)tile * sizeof(float)) +
           UP(B * sizeof(int64_t)) + UP(B * sizeof(float)) + UP(B * sizeof(sr_lse)) + sizeof(sr_softmax_ws);
#undef UP
}

sr_status sr_softmax_ws_create(sr_softmax_ws **out, int64_t b_max, int64_t tile, sr_mem *mem,
                               sr_error *err)
{
    *out = NULL;
    if (b_max < 1 || tile < 1)
        SR_FAIL(err, SR_ERR_INTERNAL, "softmax workspace: batch %lld, tile %lld (both must be >= 1)",
                (long long)b_max, (long long)tile);
    if (b_max > INT_MAX || tile > INT_MAX)
        SR_FAIL(err, SR_ERR_INTERNAL, "softmax workspace: batch %lld or tile %lld exceeds BLAS's int",
                (long long)b_max, (long long)tile);
    if ((uint64_t)b_max > SIZE_MAX / sizeof(float) / (uint64_t)tile)
        SR_FAIL(err, SR_ERR_NOMEM, "softmax workspace: %lld x %lld floats overflow", (long long)b_max,
                (long long)tile);
    sr_softmax_ws *ws = sr_mem_alloc(mem, sizeof *ws, 1, "softmax workspace", err);
    if (!ws) return err ? err->code : SR_ERR_NOMEM;
    ws->mem = mem;
    ws->b_max = b_max;
    ws->tile = tile;
    ws->qb = sr_blocks_queries(b_max, tile);
    ws->threads = sr_blocks_threads(b_max, ws->qb);
    ws->fused = -1;
    const sr_mem_buf bufs[] = {
        SR_MEM_BUF(ws->logits, (size_t)ws->threads * (size_t)ws->qb * (size_t)tile),
        SR_MEM_BUF(ws->trow, b_max), SR_MEM_BUF(ws->scale, b_max), SR_MEM_BUF(ws->lse, b_max)};
    ws->bufs = sr_mem_bufset_alloc(mem, bufs, 4, "softmax workspace buffers", err);
    if (!ws->bufs) {
        sr_softmax_ws_destroy(&ws);
        return err ? err->code : SR_ERR_NOMEM;
    }
    *out = ws;
    return SR_OK;
}

void sr_softmax_ws_destroy(sr_softmax_ws **ws)
{
    if (!ws || !*ws) return;
    sr_softmax_ws *w = *ws;
    sr_mem_free(w->mem, w->pack);
    sr_mem_free(w->mem, w->mx);
    sr_mem_free(w->mem, w->bufs);
    sr_mem_free(w->mem, w);
    *ws = NULL;
}

sr_lse *sr_softmax_ws_lse(sr_softmax_ws *ws) { return ws->lse; }
int64_t sr_softmax_ws_tile(const sr_softmax_ws *ws) { return ws->tile; }
int64_t sr_softmax_ws_qblock(const sr_softmax_ws *ws) { return ws->qb; }

sr_status sr_softmax_ws_set_kernel(sr_softmax_ws *ws, const char *name, sr_error *err)
{
    int want = -1;
    SR_TRY(sr_fused_choose("softmax", name, &want, err));
    if (want >= 0 && !ws->pack) {
        ws->pack = sr_mem_alloc(ws->mem, (size_t)ws->threads * (size_t)FUSED_PACK * sizeof(float), 0,
                                "softmax fused pack", err);
        ws->mx = sr_mem_alloc(ws->mem, (size_t)ws->b_max * sizeof(float), 0, "softmax fused maxima", err);
        if (!ws->pack || !ws->mx) {
            sr_mem_free(ws->mem, ws->pack);
            sr_mem_free(ws->mem, ws->mx);
            ws->pack = ws->mx = NULL;
            return err ? err->code : SR_ERR_NOMEM;
        }
    }
    ws->fused = want;
    return SR_OK;
}

/* The fused kernels cover d % 16 == 0 up to SR_FUSED_D_MAX. */
static int d_covered_(int64_t d) { return d % 16 == 0 && d <= SR_FUSED_D_MAX; }
static int use_fused_(const sr_softmax_ws *ws, int64_t d) { return ws->fused >= 0 && d_covered_(d); }

/* The variant the fused calls run (bf16 is an AVX-512 one). */
static sr_fused_isa fused_isa_(const sr_softmax_ws *ws)
{
    return ws->bf16 && ws->fused == SR_FUSED_AVX512 ? SR_FUSED_AVX512_BF16 : (sr_fused_isa)ws->fused;
}

const char *sr_softmax_ws_kernel(const sr_softmax_ws *ws, int64_t d)
{
    if (!use_fused_(ws, d)) return "blas";
    sr_fused_isa isa = fused_isa_(ws);
    return isa == SR_FUSED_AVX512_BF16 ? "fused-avx512-bf16" : isa == SR_FUSED_AVX512 ? "fused-avx512" : "fused-avx2";
}

sr_status sr_softmax_ws_set_precision(sr_softmax_ws *ws, const char *name, int64_t d, const sr_cpu *cpu,
                                      sr_error *err)
{
    if (!strcmp(name, "fp32")) {
        ws->bf16 = 0;
        return SR_OK;
    }
    if (strcmp(name, "bf16"))
        SR_FAIL(err, SR_ERR_CONFIG, "loss.precision = %s: expected fp32 or bf16", name);
    sr_cpu own;
    if (!cpu) {
        sr_cpu_detect(&own);
        cpu = &own;
    }
    /* Every CPU with AVX512_BF16 (Cooper Lake, Sapphire Rapids, Zen 4) has
     * the BW and VL the kernel's target attribute also names. */
    if (!cpu->avx512_bf16 || !cpu->avx512f)
        SR_FAIL(err, SR_ERR_CONFIG, "loss.precision = bf16: this CPU lacks AVX512_BF16 (vdpbf16ps); use fp32");
    if (ws->fused != SR_FUSED_AVX512)
        SR_FAIL(err, SR_ERR_CONFIG,
                "loss.precision = bf16 needs loss.kernel = auto or fused-avx512 (bf16 has fused AVX-512 kernels "
                "only), not %s", ws->fused < 0 ? "blas" : "fused-avx2");
    if (!d_covered_(d))
        SR_FAIL(err, SR_ERR_CONFIG,
                "loss.precision = bf16: dimension %lld is not covered by the fused kernels (a multiple of 16, "
                "at most %d)", (long long)d, SR_FUSED_D_MAX);
    ws->bf16 = 1;
    return SR_OK;
}

/* Shared argument checks; fills ws->trow. */
static sr_status check_args_(const char *fn, int64_t b, int64_t d, int64_t n_local,
                             const sr_shard *shard, int rank, const int64_t *targets,
                             sr_softmax_ws *ws, sr_error *err)
{
    if (b < 1 || b > ws->b_max)
        SR_FAIL(err, SR_ERR_INTERNAL, "%s: batch %lld outside [1, %lld] of the workspace", fn,
                (long long)b, (long long)ws->b_max);
    if (d < 1 || d > INT_MAX) SR_FAIL(err, SR_ERR_INTERNAL, "%s: dimension %lld", fn, (long long)d);
    if (ws->bf16 && (!use_fused_(ws, d) || ws->fused != SR_FUSED_AVX512)) /* never fp32 in silence */
        SR_FAIL(err, SR_ERR_CONFIG, "%s: precision bf16 but kernel %s at dimension %lld", fn,
                sr_softmax_ws_kernel(ws, d), (long long)d);
    if (rank < 0 || rank >= shard->p || n_local != sr_shard_count(shard, rank))
        SR_FAIL(err, SR_ERR_INTERNAL, "%s: rank %d holds %lld rows, the shard map says %lld", fn,
                rank, (long long)n_local,
                (long long)(rank >= 0 && rank < shard->p ? sr_shard_count(shard, rank) : -1));
    for (int64_t i = 0; i < b; i++) {
        int64_t t = targets[i];
        if (t < 0 || t >= shard->n)
            SR_FAIL(err, SR_ERR_DATA, "%s: target %lld of query %lld is not an item id in [0, %lld)",
                    fn, (long long)t, (long long)i, (long long)shard->n);
        ws->trow[i] = sr_shard_owner(shard, t) == rank ? sr_shard_local(shard, t) : -1;
    }
    return SR_OK;
}

typedef struct fwd_ctx_ {
    const float *q, *v;
    int64_t b, d, n_local;
    sr_softmax_ws *ws;
    sr_lse *part;
} fwd_ctx_;

/* Forward over this thread's query blocks, tile by tile (the V tile is read
 * once per thread and tile, and stays in cache for its blocks). */
static void fwd_worker_(void *arg, const sr_team_part *part)
{
    const fwd_ctx_ *c = arg;
    sr_softmax_ws *ws = c->ws;
    const int64_t tile = ws->tile, qb = ws->qb, b = c->b, d = c->d;
    const int64_t blo = part->lo, bhi = part->hi;
    float *lg = ws->logits + (size_t)part->t * (size_t)qb * (size_t)tile;
    for (int64_t j0 = 0; j0 < c->n_local; j0 += tile) {
        int64_t nt = c->n_local - j0 < tile ? c->n_local - j0 : tile;
        for (int64_t blk = blo; blk < bhi; blk++) {
            int64_t i0 = blk * qb, nb = b - i0 < qb ? b - i0 : qb;
            /* logits (nb x nt) = Q_blk (nb x d) . V_tile^T; ld = nt keeps rows packed. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nt, (int)d, 1.0f,
                        c->q + i0 * d, (int)d, c->v + j0 * d, (int)d, 0.0f, lg, (int)nt);
            for (int64_t i = 0; i < nb; i++) {
                const float *row = lg + i * nt;
                sr_lse *tr3 = &c->part[i0 + i];
                int64_t tr = ws->trow[i0 + i];
                if (tr >= j0 && tr < j0 + nt) tr3->target = row[tr - j0];
                int bad = 0;
                /* tr3->max is a float logit (or -inf), so the shift is exact. */
                float m = (float)tr3->max;
                double s = sr_vexp_row_lse(row, nt, &m, &bad);
                if (bad) {
                    tr3->sum = NAN; /* poison: the merged loss becomes NaN everywhere */
                    continue;
                }
                tr3->sum = (tr3->sum == 0.0 ? 0.0 : tr3->sum * exp(tr3->max - (double)m)) + s;
                tr3->max = m;
            }
        }
    }
}

/* Fused forward: thread t takes a contiguous range of FUSED_QUNIT-query
 * units and sweeps the whole shard (packing each V tile itself), so every
 * query's triple is the same whatever the team size. */
#define FUSED_QUNIT 48
static void fused_fwd_worker_(void *arg, const sr_team_part *part)
{
    const fwd_ctx_ *c = arg;
    int64_t i0 = part->lo * FUSED_QUNIT, i1 = part->hi * FUSED_QUNIT;
    if (i1 > c->b) i1 = c->b;
    if (i1 <= i0) return;
    sr_fused_forward(fused_isa_(c->ws), c->q + i0 * c->d, i1 - i0, c->d, c->v, c->n_local,
                     c->ws->trow + i0, c->ws->pack + (size_t)part->t * FUSED_PACK, c->part + i0);
}

sr_status sr_softmax_partial(const float *q, int64_t b, int64_t d, const float *v,
                             int64_t n_local, const sr_shard *shard, int rank,
                             const int64_t *targets, sr_softmax_ws *ws, sr_lse *part,
                             sr_error *err)
{
    SR_TRY(check_args_("softmax forward", b, d, n_local, shard, rank, targets, ws, err));
    for (int64_t i = 0; i < b; i++) part[i] = sr_lse_empty();
    fwd_ctx_ c = {q, v, b, d, n_local, ws, part};
    if (n_local > 0 && use_fused_(ws, d))
        sr_team_run(ws->threads, (b + FUSED_QUNIT - 1) / FUSED_QUNIT, fused_fwd_worker_, &c);
    else if (n_local > 0)
        sr_team_run(ws->threads, (b + ws->qb - 1) / ws->qb, fwd_worker_, &c);
    return SR_OK;
}

double sr_softmax_loss(const sr_lse *merged, int64_t b)
{
    double acc = 0.0;
    for (int64_t i = 0; i < b; i++) acc += sr_lse_value(&merged[i]) - merged[i].target;
    return b > 0 ? acc / (double)b : 0.0;
}

typedef struct bwd_ctx_ {
    const float *q, *v;
    int64_t b, d, n_local;
    const sr_lse *merged;
    sr_softmax_ws *ws;
    float *dq, *dv;
} bwd_ctx_;

/* Backward in rounds of nthr query blocks per tile: thread t forms P of block
 * (round + t) in its logit block and adds P V_tile to that block's dQ rows;
 * after a barrier it adds every block's P^T Q of the round, in block order,
 * into its slice of dV_tile's rows; a second barrier frees the blocks. */
static void bwd_worker_(void *arg, const sr_team_part *part)
{
    const int t = part->t, nthr = part->nthr;
    const bwd_ctx_ *c = arg;
    sr_softmax_ws *ws = c->ws;
    const int64_t tile = ws->tile, qb = ws->qb, b = c->b, d = c->d;
    const int64_t nblk = (b + qb - 1) / qb;
    const float inv_b = (float)(1.0 / (double)b);
    const size_t blk_floats = (size_t)qb * (size_t)tile;
    float *lg = ws->logits + (size_t)t * blk_floats;
    for (int64_t j0 = 0; j0 < c->n_local; j0 += tile) {
        int64_t nt = c->n_local - j0 < tile ? c->n_local - j0 : tile;
        const float *vt = c->v + j0 * d;
        /* This thread's rows of dV_tile. */
        int64_t r_lo = nt * t / nthr, r_hi = nt * (t + 1) / nthr;
        for (int64_t round = 0; round < nblk; round += nthr) {
            int64_t blk = round + t;
            if (blk < nblk) {
                int64_t i0 = blk * qb, nb = b - i0 < qb ? b - i0 : qb;
                const float *qblk = c->q + i0 * d;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nt, (int)d, 1.0f,
                            qblk, (int)d, vt, (int)d, 0.0f, lg, (int)nt);
                for (int64_t i = 0; i < nb; i++) {
                    float *row = lg + i * nt;
                    sr_vexp_row_scale(row, nt, (float)c->merged[i0 + i].max, ws->scale[i0 + i]);
                    int64_t tr = ws->trow[i0 + i];
                    if (tr >= j0 && tr < j0 + nt) row[tr - j0] -= inv_b; /* owner only */
                }
                /* dQ_blk (nb x d) += P_blk (nb x nt) . V_tile (nt x d) */
                if (c->dq)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)d, (int)nt, 1.0f,
                                lg, (int)nt, vt, (int)d, j0 == 0 ? 0.0f : 1.0f, c->dq + i0 * d, (int)d);
            }
            if (!c->dv) continue; /* the same on every thread: no barrier needed */
            sr_team_barrier(part);
            /* dV_tile[r_lo, r_hi) (+)= P_blk[:, r_lo:r_hi]^T Q_blk, blocks in order. */
            for (int64_t bb = round; bb < round + nthr && bb < nblk && r_hi > r_lo; bb++) {
                int64_t i0 = bb * qb, nb = b - i0 < qb ? b - i0 : qb;
                const float *p = ws->logits + (size_t)(bb - round) * blk_floats + r_lo;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(r_hi - r_lo), (int)d, (int)nb,
                            1.0f, p, (int)nt, c->q + i0 * d, (int)d, bb == 0 ? 0.0f : 1.0f,
                            c->dv + (j0 + r_lo) * d, (int)d);
            }
            sr_team_barrier(part);
        }
    }
}

/* Fused backward: thread t takes a contiguous range of 32-item units (its
 * dV rows are its own; every query's P over them adds into its dQ). */
static void fused_bwd_worker_(void *arg, const sr_team_part *part)
{
    const bwd_ctx_ *c = arg;
    sr_softmax_ws *ws = c->ws;
    int64_t j0 = part->lo * 32, j1 = part->hi * 32;
    if (j1 > c->n_local) j1 = c->n_local;
    float *dq = c->dq;
    if (dq && part->t > 0) {
        dq = ws->logits + (size_t)part->t * (size_t)ws->qb * (size_t)ws->tile;
        memset(dq, 0, (size_t)c->b * (size_t)c->d * sizeof(float));
    }
    if (j1 <= j0) return;
    sr_fused_backward(fused_isa_(ws), c->q, c->b, c->d, c->v, j0, j1, ws->mx, ws->scale, ws->trow,
                      (float)(1.0 / (double)c->b), ws->pack + (size_t)part->t * FUSED_PACK, dq,
                      c->dv ? c->dv + j0 * c->d : NULL);
}

sr_status sr_softmax_backward(const float *q, int64_t b, int64_t d, const float *v,
                              int64_t n_local, const sr_shard *shard, int rank,
                              const int64_t *targets, const sr_lse *merged, sr_softmax_ws *ws,
                              float *dq, float *dv, sr_error *err)
{
    SR_TRY(check_args_("softmax backward", b, d, n_local, shard, rank, targets, ws, err));
    for (int64_t i = 0; i < b; i++) {
        const sr_lse *t = &merged[i];
        if (!isfinite(t->max) || !isfinite(t->sum) || !(t->sum >= 1.0) || !isfinite(t->target))
            SR_FAIL(err, SR_ERR_NUMERIC,
                    "softmax backward: query %lld has a non-finite log-sum-exp (max %g, sum %g, "
                    "target %g): NaN or infinite embeddings",
                    (long long)i, t->max, t->sum, t->target);
        /* P_ij = exp(z_ij - M_i) / S_i / B: no rounded log Z enters exp. */
        ws->scale[i] = (float)(1.0 / (t->sum * (double)b));
    }
    if (dq && n_local == 0) memset(dq, 0, (size_t)b * (size_t)d * sizeof(float));
    bwd_ctx_ c = {q, v, b, d, n_local, merged, ws, dq, dv};
    if (n_local > 0 && use_fused_(ws, d)) {
        for (int64_t i = 0; i < b; i++) ws->mx[i] = (float)merged[i].max; /* a float logit */
        if (dq) memset(dq, 0, (size_t)b * (size_t)d * sizeof(float));
        /* Threads split the items; threads 1.. add their dQ into their own
         * logit blocks (when b x d fits one), summed below in thread order. */
        int team = ws->threads;
        if (team > 1 && dq && b * d > ws->qb * ws->tile) team = 1;
        sr_team_run(team, (n_local + 31) / 32, fused_bwd_worker_, &c);
        if (dq && team > 1)
            for (int t = 1; t < team; t++) {
                const float *part = ws->logits + (size_t)t * (size_t)ws->qb * (size_t)ws->tile;
                for (int64_t k = 0; k < b * d; k++) dq[k] += part[k];
            }
    } else if (n_local > 0)
        sr_team_run(ws->threads, (b + ws->qb - 1) / ws->qb, bwd_worker_, &c);
    return SR_OK;
}

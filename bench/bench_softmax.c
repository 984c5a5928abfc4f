/* bench_softmax.c: one exact-softmax training step and one full-ranking
 * top-K evaluation over a sharded catalogue, against the OpenBLAS SGEMM rate
 * measured in the same run on the same shapes.
 *
 *   mpirun -np 2 -x OPENBLAS_NUM_THREADS=1 bench_softmax
 *   OPENBLAS_NUM_THREADS=2 mpirun -np 1 bench_softmax
 * Options: --items N (1000000) --dim d (64) --batch B (1024) --tile T (4096)
 *          --k K (20) --steps S (3) --excl E (50 training items per user)
 *
 * Flop count (stated in the output): a step is 4 GEMMs of 2 B N d flops each
 * (forward logits, backward recompute, dV = P^T Q, dQ = P V); eval is 1.
 * The SGEMM reference runs the three tile shapes the step uses (B x T x d
 * NT, T x d x B TN, B x d x T NN) on this rank's own buffers, right before
 * each measured step (so both see the same machine load); "sgemm_gflops" is
 * the rate of the 4-GEMM mix summed over ranks, and "fraction_of_sgemm" is
 * (time the GEMMs alone would take: tiles x mix time, slowest rank) /
 * (measured step time, slowest rank), summed over the steps. The kernels
 * cut the batch into query blocks of qb rows (a ~2 MiB logit block stays in
 * cache), which makes their GEMMs faster than the full B x T shapes, so the
 * same figures are also given against the blocked shapes (qb x T x d):
 * "sgemm_blocked_gflops", "fraction_of_blocked_sgemm". Everything the
 * step allocates goes through sr_mem: its peak must not grow with B x N.
 * Prints one JSON line per configuration on rank 0 (stdout).
 */
#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "comm/comm.h"
#include "comm/shard.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rng.h"
#include "loss/softmax.h"
#include "loss/softmax_mpi.h"
#include "train/eval_kernels.h"
#include "train/eval_mpi.h"

typedef struct opts {
    int64_t items, dim, batch, tile, k, steps, excl;
} opts;

static int64_t arg_i64(int argc, char **argv, const char *name, int64_t def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return strtoll(argv[i + 1], NULL, 10);
    return def;
}

static void die(const sr_comm *c, const sr_error *e)
{
    sr_comm_abort(c, e);
}

/* The three SGEMM shapes of one tile, timed on this rank's own buffers. */
typedef struct gemm_ref {
    int64_t b, d, tile; /* b: rows per call (B, or the kernels' query block) */
    float *cbuf, *dvb, *vt; /* b x tile, tile x d, tile x d */
    const float *q;
    float *dq;
    double t_nt, t_tn, t_nn; /* seconds per call of each shape */
} gemm_ref;

static double time_sgemm(int ta, int tb, int m, int n, int kk, const float *a, int lda, const float *b, int ldb,
                         float *cc, int ldc, int reps);

/* Time each shape (reps calls) now, so the reference sees the same machine
 * load as the measurement next to it. */
static void gemm_ref_measure(gemm_ref *g, int reps)
{
    int b = (int)g->b, d = (int)g->d, t = (int)g->tile;
    g->t_nt = time_sgemm(0, 1, b, t, d, g->q, d, g->vt, d, g->cbuf, t, reps);
    g->t_tn = time_sgemm(1, 0, t, d, b, g->cbuf, t, g->q, d, g->dvb, d, reps);
    g->t_nn = time_sgemm(0, 0, b, d, t, g->cbuf, t, g->vt, d, g->dq, d, reps);
}

static double loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* Seconds for `reps` calls of one SGEMM shape (after one warm-up call). */
static double time_sgemm(int ta, int tb, int m, int n, int kk, const float *a, int lda, const float *b, int ldb,
                         float *cc, int ldc, int reps)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, kk, 1.0f, a,
                lda, b, ldb, 0.0f, cc, ldc);
    double t0 = sr_time_now();
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, kk, 1.0f,
                    a, lda, b, ldb, r == 0 ? 0.0f : 1.0f, cc, ldc);
    return (sr_time_now() - t0) / reps;
}

static double max_over_ranks(const sr_comm *c, double x)
{
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_allreduce_max(c, &x, 1, &e)) die(c, &e);
    return x;
}

static double sum_over_ranks(const sr_comm *c, double x)
{
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_allreduce_sum(c, &x, 1, &e)) die(c, &e);
    return x;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_init(&c, MPI_COMM_WORLD, &e)) die(&c, &e);
    opts o = {arg_i64(argc, argv, "--items", 1000000), arg_i64(argc, argv, "--dim", 64),
              arg_i64(argc, argv, "--batch", 1024),    arg_i64(argc, argv, "--tile", 4096),
              arg_i64(argc, argv, "--k", 20),          arg_i64(argc, argv, "--steps", 3),
              arg_i64(argc, argv, "--excl", 50)};
    const int64_t b = o.batch, d = o.dim, n = o.items;
    sr_shard s;
    if (sr_shard_init_block(&s, n, c.size, NULL, &e)) die(&c, &e);
    const int64_t nr = sr_shard_count(&s, c.rank);
    int threads = openblas_get_num_threads();

    /* Inputs: this rank's rows, the global batch and targets (same on all). */
    sr_mem tables; /* inputs and gradients: O(n_r d + B d), reported apart */
    sr_mem_init(&tables, 0);
    float *v = sr_mem_alloc(&tables, (size_t)(nr * d + 1) * sizeof(float), 0, "item rows", &e);
    float *dv = sr_mem_alloc(&tables, (size_t)(nr * d + 1) * sizeof(float), 0, "item grads", &e);
    float *q = sr_mem_alloc(&tables, (size_t)(b * d) * sizeof(float), 0, "queries", &e);
    float *dq = sr_mem_alloc(&tables, (size_t)(b * d) * sizeof(float), 0, "query grads", &e);
    int64_t *tg = sr_mem_alloc(&tables, (size_t)b * sizeof(int64_t), 0, "targets", &e);
    if (!v || !dv || !q || !dq || !tg) die(&c, &e);
    sr_rng r;
    sr_rng_init(&r, 7, (uint32_t)c.rank, SR_STREAM_INIT);
    for (int64_t i = 0; i < nr * d; i++) v[i] = (float)(0.15 * sr_rng_normal(&r));
    sr_rng_init(&r, 7, 0, SR_STREAM_SYNTH);
    for (int64_t i = 0; i < b * d; i++) q[i] = (float)(0.15 * sr_rng_normal(&r));
    for (int64_t i = 0; i < b; i++) tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);

    /* ---- SGEMM reference on the step's tile shapes ----------------------- */
    const int64_t tile = o.tile < nr ? o.tile : (nr > 0 ? nr : 1);
    sr_mem scratch;
    sr_mem_init(&scratch, 0);
    gemm_ref g = {b, d, tile, NULL, NULL, NULL, q, dq, 0, 0, 0};
    g.cbuf = sr_mem_alloc(&scratch, (size_t)(b * tile) * sizeof(float), 0, "sgemm C", &e);
    g.dvb = sr_mem_alloc(&scratch, (size_t)(tile * d) * sizeof(float), 0, "sgemm dV", &e);
    g.vt = sr_mem_alloc(&scratch, (size_t)(tile * d) * sizeof(float), 1, "sgemm V", &e);
    if (!g.cbuf || !g.dvb || !g.vt) die(&c, &e);
    for (int64_t i = 0; i < b * tile; i++) g.cbuf[i] = 1e-3f;
    if (nr > 0) memcpy(g.vt, v, (size_t)(tile * d) * sizeof(float));
    const double tile_flops = 2.0 * (double)b * (double)tile * (double)d;
    /* The same GEMMs cut into the kernels' query blocks (qb x tile x d). */
    sr_softmax_ws *probe = NULL;
    if (sr_softmax_ws_create(&probe, b, o.tile, NULL, &e)) die(&c, &e);
    const int64_t qb = sr_softmax_ws_qblock(probe);
    sr_softmax_ws_destroy(&probe);
    gemm_ref gb = g;
    gb.b = qb;
    const double blocks = (double)((b + qb - 1) / qb);
    const double tiles_local = nr > 0 ? (double)nr / (double)tile : 0.0;

    /* ---- softmax step ------------------------------------------------------ */
    sr_mem work; /* the step's own allocations */
    sr_mem_init(&work, 0);
    sr_softmax_ws *ws = NULL;
    if (sr_softmax_ws_create(&ws, b, o.tile, &work, &e)) die(&c, &e);
    double loss = 0, best = INFINITY, total = 0, gemm_total = 0, rate_mix = 0, rate_nt = 0;
    double gemm_blk_total = 0, rate_blk = 0;
    for (int64_t it = 0; it <= o.steps; it++) { /* it == 0: warm-up */
        gemm_ref_measure(&g, 3);
        gemm_ref_measure(&gb, 3);
        double mix = 2 * g.t_nt + g.t_tn + g.t_nn; /* one tile's 4 GEMMs */
        double mixb = blocks * (2 * gb.t_nt + gb.t_tn + gb.t_nn);
        double sg = max_over_ranks(&c, tiles_local * mix);
        double sgb = max_over_ranks(&c, tiles_local * mixb);
        double rm = sum_over_ranks(&c, 4 * tile_flops / mix) / 1e9;
        double rb = sum_over_ranks(&c, 4 * tile_flops / mixb) / 1e9;
        double rn = sum_over_ranks(&c, tile_flops / g.t_nt) / 1e9;
        MPI_Barrier(c.comm);
        double t0 = sr_time_now();
        if (sr_softmax_step(&c, q, b, d, v, nr, &s, tg, ws, &loss, dq, dv, &e)) die(&c, &e);
        double t = max_over_ranks(&c, sr_time_now() - t0);
        if (it > 0) {
            total += t;
            gemm_total += sg;
            gemm_blk_total += sgb;
            rate_mix += rm / (double)o.steps;
            rate_blk += rb / (double)o.steps;
            rate_nt += rn / (double)o.steps;
            if (t < best) best = t;
        }
    }
    sr_softmax_ws_destroy(&ws);
    double step_s = total / (double)o.steps;
    double flops = 4.0 * 2.0 * (double)b * (double)n * (double)d;
    double mem_peak = max_over_ranks(&c, (double)work.peak);
    double table_bytes = max_over_ranks(&c, (double)tables.peak);
    double hwm = max_over_ranks(&c, (double)sr_mem_process_peak());
    if (c.rank == 0)
        printf("{\"bench\":\"softmax_step\",\"ranks\":%d,\"blas_threads\":%d,\"items\":%lld,\"dim\":%lld,"
               "\"batch\":%lld,\"tile\":%lld,\"steps\":%lld,\"step_s\":%.4f,\"best_step_s\":%.4f,"
               "\"gflops\":%.2f,\"flop_count\":\"4 GEMMs x 2BNd\",\"sgemm_gflops\":%.2f,"
               "\"sgemm_nt_gflops\":%.2f,\"sgemm_step_s\":%.4f,\"fraction_of_sgemm\":%.3f,"
               "\"qblock\":%lld,\"sgemm_blocked_gflops\":%.2f,\"fraction_of_blocked_sgemm\":%.3f,"
               "\"mem_peak_bytes\":%.0f,\"tables_bytes\":%.0f,\"vmhwm_bytes\":%.0f,\"bxn_bytes\":%.0f,"
               "\"loss\":%.6f,\"loadavg_1m\":%.2f}\n",
               c.size, threads, (long long)n, (long long)d, (long long)b, (long long)o.tile, (long long)o.steps,
               step_s, best, flops / step_s / 1e9, rate_mix, rate_nt, gemm_total / o.steps, gemm_total / total,
               (long long)qb, rate_blk, gemm_blk_total / total,
               mem_peak, table_bytes, hwm, 4.0 * (double)b * (double)n, loss, loadavg());
    fflush(stdout);

    /* ---- full-ranking top-K eval ------------------------------------------ */
    int64_t *indptr = sr_mem_alloc(&tables, (size_t)(b + 1) * sizeof(int64_t), 0, "excl indptr", &e);
    int64_t *excl = sr_mem_alloc(&tables, (size_t)(b * o.excl + 1) * sizeof(int64_t), 0, "excl ids", &e);
    if (!indptr || !excl) die(&c, &e);
    indptr[0] = 0;
    for (int64_t i = 0; i < b; i++) {
        /* E sorted distinct ids: a random start and random gaps. */
        int64_t id = (int64_t)sr_rng_below(&r, (uint64_t)(n / 2 + 1));
        int64_t gap = n / (2 * (o.excl + 1)) + 1;
        for (int64_t j = 0; j < o.excl && id < n; j++) {
            excl[indptr[i] + j] = id;
            id += 1 + (int64_t)sr_rng_below(&r, (uint64_t)gap);
            indptr[i + 1] = indptr[i] + j + 1;
        }
        if (o.excl == 0) indptr[i + 1] = indptr[i];
    }
    sr_mem_init(&work, 0);
    sr_topk_ws *tw = NULL;
    if (sr_topk_ws_create(&tw, b, o.tile, o.k, &work, &e)) die(&c, &e);
    float *ts = sr_mem_alloc(&tables, (size_t)(b * o.k) * sizeof(float), 0, "top scores", &e);
    int64_t *tid = sr_mem_alloc(&tables, (size_t)(b * o.k) * sizeof(int64_t), 0, "top ids", &e);
    if (!ts || !tid) die(&c, &e);
    total = 0;
    best = INFINITY;
    gemm_total = 0;
    gemm_blk_total = 0;
    rate_nt = 0;
    rate_blk = 0;
    for (int64_t it = 0; it <= o.steps; it++) {
        gemm_ref_measure(&g, 3);
        gemm_ref_measure(&gb, 3);
        double sg = max_over_ranks(&c, tiles_local * g.t_nt);
        double sgb = max_over_ranks(&c, tiles_local * blocks * gb.t_nt);
        double rn = sum_over_ranks(&c, tile_flops / g.t_nt) / 1e9;
        double rb = sum_over_ranks(&c, tile_flops / (blocks * gb.t_nt)) / 1e9;
        MPI_Barrier(c.comm);
        double t0 = sr_time_now();
        if (sr_eval_topk(&c, q, b, d, v, nr, &s, indptr, excl, o.k, tw, ts, tid, &e)) die(&c, &e);
        double t = max_over_ranks(&c, sr_time_now() - t0);
        if (it > 0) {
            total += t;
            gemm_total += sg;
            gemm_blk_total += sgb;
            rate_nt += rn / (double)o.steps;
            rate_blk += rb / (double)o.steps;
            if (t < best) best = t;
        }
    }
    sr_topk_ws_destroy(&tw);
    double eval_s = total / (double)o.steps;
    double eflops = 2.0 * (double)b * (double)n * (double)d;
    mem_peak = max_over_ranks(&c, (double)work.peak);
    hwm = max_over_ranks(&c, (double)sr_mem_process_peak());
    if (c.rank == 0)
        printf("{\"bench\":\"eval_topk\",\"ranks\":%d,\"blas_threads\":%d,\"items\":%lld,\"dim\":%lld,"
               "\"batch\":%lld,\"tile\":%lld,\"k\":%lld,\"excl_per_user\":%lld,\"eval_s\":%.4f,\"best_eval_s\":%.4f,"
               "\"gflops\":%.2f,\"flop_count\":\"1 GEMM x 2BNd\",\"sgemm_nt_gflops\":%.2f,\"sgemm_eval_s\":%.4f,"
               "\"fraction_of_sgemm\":%.3f,\"sgemm_blocked_gflops\":%.2f,\"fraction_of_blocked_sgemm\":%.3f,"
               "\"mem_peak_bytes\":%.0f,\"vmhwm_bytes\":%.0f,\"top1_id\":%lld,"
               "\"loadavg_1m\":%.2f}\n",
               c.size, threads, (long long)n, (long long)d, (long long)b, (long long)o.tile, (long long)o.k,
               (long long)o.excl, eval_s, best, eflops / eval_s / 1e9, rate_nt, gemm_total / o.steps,
               gemm_total / total, rate_blk, gemm_blk_total / total, mem_peak, hwm, (long long)tid[0], loadavg());
    fflush(stdout);

    sr_mem_free(&tables, v);
    sr_mem_free(&tables, dv);
    sr_mem_free(&tables, q);
    sr_mem_free(&tables, dq);
    sr_mem_free(&tables, tg);
    sr_mem_free(&tables, indptr);
    sr_mem_free(&tables, excl);
    sr_mem_free(&tables, ts);
    sr_mem_free(&tables, tid);
    sr_mem_free(&scratch, g.cbuf);
    sr_mem_free(&scratch, g.dvb);
    sr_mem_free(&scratch, g.vt);
    sr_shard_destroy(&s);
    sr_comm_destroy(&c);
    MPI_Finalize();
    return 0;
}

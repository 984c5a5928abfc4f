/* bench_softmax.c: one exact-softmax training step and one full-ranking
 * top-K evaluation over a sharded catalogue, against the OpenBLAS SGEMM rate
 * measured in the same run on the same shapes.
 *
 *   mpirun -np 2 -x OPENBLAS_NUM_THREADS=1 bench_softmax
 *   OPENBLAS_NUM_THREADS=2 mpirun -np 1 bench_softmax
 * Options: --items N (1000000) --dim d (64) --batch B (1024) --tile T (4096)
 *          --k K (20) --steps S (3) --excl E (50 training items per user)
 *          --kernels blas,fused-avx512,fused-avx2,fused-avx512-bf16 (the step's
 *          paths, alternated within each round; one JSON line each,
 *          "speedup_vs_blas"; the bf16 one also "speedup_vs_fused_fp32" and
 *          its fraction of the vdpbf16ps peak measured in the same run)
 *          --eval-kernels blas,fused-avx512,fused-avx2 (the same for the eval;
 *          "--kernels none" skips the step); besides wall time, the eval lines
 *          give each rank's local kernel (sr_eval_topk_local, run apart) in
 *          CPU seconds against an FMA peak timed in CPU seconds
 *          ("fraction_of_fma_peak_cpu", the worst rank): on a loaded, shared
 *          machine the wall figures mostly measure the neighbours
 *
 * Flop count (stated in the output): a step is 4 GEMMs of 2 B N d flops each
 * (forward logits, backward recompute, dV = P^T Q, dQ = P V); eval is 1
 * (2 B N d, whichever path: the fused one does the same FMAs in registers).
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

#include "bench_util.h"
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

/* The three SGEMM shapes of one tile, timed on this rank's own buffers. */
typedef struct gemm_ref {
    int64_t b, d, tile; /* b: rows per call (B, or the kernels' query block) */
    float *cbuf, *dvb, *vt; /* b x tile, tile x d, tile x d */
    const float *q;
    float *dq;
    double t_nt, t_tn, t_nn; /* seconds per call of each shape */
} gemm_ref;

/* Time each shape (reps calls) now, so the reference sees the same machine
 * load as the measurement next to it. */
static void gemm_ref_measure(gemm_ref *g, int reps)
{
    int b = (int)g->b, d = (int)g->d, t = (int)g->tile;
    g->t_nt = sr_bench_time_sgemm(0, 1, b, t, d, g->q, d, g->vt, d, g->cbuf, t, reps);
    g->t_tn = sr_bench_time_sgemm(1, 0, t, d, b, g->cbuf, t, g->q, d, g->dvb, d, reps);
    g->t_nn = sr_bench_time_sgemm(0, 0, b, d, t, g->cbuf, t, g->vt, d, g->dq, d, reps);
}

/* 1 where name is one of the comma-separated names in list. */
static int listed_(const char *list, const char *name)
{
    const size_t len = strlen(name);
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (!strncmp(p, name, len) && (p[len] == ',' || p[len] == 0)) return 1;
    return 0;
}

/* The fields both result lines start with. */
static void json_head(sr_bench_json *js, const char *bench, const sr_comm *c, int threads, const opts *o)
{
    sr_bench_json_begin(js, bench);
    sr_bench_json_int(js, "ranks", c->size);
    sr_bench_json_int(js, "blas_threads", threads);
    sr_bench_json_int(js, "items", o->items);
    sr_bench_json_int(js, "dim", o->dim);
    sr_bench_json_int(js, "batch", o->batch);
    sr_bench_json_int(js, "tile", o->tile);
}

/* One scoring path of the eval: its workspace (own sr_mem counter), its
 * output lists and its timings over the measured rounds. */
typedef struct eval_path {
    const char *name;
    sr_mem work;
    sr_topk_ws *ws;
    float *ts;
    int64_t *tid;
    double total, best, load;
    double cpu, frac_cpu; /* local kernel: slowest rank's CPU s, worst rank's fraction of its CPU peak (sums) */
} eval_path;

/* False (with a note on rank 0) when the CPU lacks the path. */
static int eval_path_open(eval_path *P, const char *name, int64_t b, const opts *o, sr_mem *tables,
                          const sr_comm *c)
{
    sr_error e;
    sr_error_clear(&e);
    memset(P, 0, sizeof *P);
    P->name = name;
    P->best = INFINITY;
    sr_mem_init(&P->work, 0);
    if (sr_topk_ws_create(&P->ws, b, o->tile, o->k, &P->work, &e)) sr_comm_abort(c, &e);
    if (sr_topk_ws_set_kernel(P->ws, name, &e) != SR_OK) {
        if (c->rank == 0) fprintf(stderr, "bench_softmax: skipping eval %s: %s\n", name, e.msg);
        sr_topk_ws_destroy(&P->ws);
        return 0;
    }
    P->ts = sr_mem_alloc(tables, (size_t)(b * o->k) * sizeof(float), 0, "top scores", &e);
    P->tid = sr_mem_alloc(tables, (size_t)(b * o->k) * sizeof(int64_t), 0, "top ids", &e);
    if (!P->ts || !P->tid) sr_comm_abort(c, &e);
    return 1;
}

static void eval_path_tally(eval_path *P, double t, int64_t steps)
{
    P->total += t;
    P->load += sr_bench_loadavg() / (double)steps;
    P->best = t < P->best ? t : P->best;
}

/* Fraction of the b x k list entries with the same id on both paths (the
 * fused path's scores differ in the last bits, so near-ties may swap). */
static double eval_path_agree(const eval_path *a, const eval_path *b, int64_t bk)
{
    int64_t same = 0;
    for (int64_t x = 0; x < bk; x++) same += a->tid[x] == b->tid[x];
    return (double)same / (double)bk;
}

static void eval_path_close(eval_path *P, sr_mem *tables)
{
    sr_topk_ws_destroy(&P->ws);
    sr_mem_free(tables, P->ts);
    sr_mem_free(tables, P->tid);
}

/* The eval's inputs and its SGEMM reference, and the sums over the
 * measured rounds (shared by every path). */
typedef struct eval_run {
    const sr_comm *c;
    const opts *o;
    const sr_shard *s;
    const sr_cpu *cpu;
    const float *q, *v;
    int64_t nr;
    const int64_t *indptr, *excl;
    gemm_ref *g, *gb;
    double tiles_local, blocks, tile_flops;
    double gemm_total, gemm_blk_total, rate_nt, rate_blk, peak_cpu;
} eval_run;

/* One round's run of path P: each rank's local kernel alone in CPU time
 * (against pc, this rank's CPU-time FMA peak), then the MPI eval in wall
 * time. On a loaded machine the wall figures mostly measure the
 * neighbours, and the MPI call's CPU time would count the spinning of a
 * rank that waits for a descheduled peer. */
static void eval_once(const eval_run *R, eval_path *P, double pc, int measured)
{
    const sr_comm *c = R->c;
    const int64_t b = R->o->batch, d = R->o->dim, k = R->o->k;
    sr_error e;
    sr_error_clear(&e);
    double c0 = sr_bench_cpu_now();
    if (sr_eval_topk_local(R->q, b, d, R->v, R->nr, R->s, c->rank, R->indptr, R->excl, k, P->ws, P->ts, P->tid, &e))
        sr_comm_abort(c, &e);
    double cs = sr_bench_cpu_now() - c0, fr = 2.0 * (double)(b * R->nr * d) / cs / 1e9 / pc;
    MPI_Barrier(c->comm);
    double t0 = sr_time_now();
    if (sr_eval_topk(c, R->q, b, d, R->v, R->nr, R->s, R->indptr, R->excl, k, P->ws, P->ts, P->tid, &e))
        sr_comm_abort(c, &e);
    double t = sr_bench_max(c, sr_time_now() - t0);
    cs = sr_bench_max(c, cs);
    fr = -sr_bench_max(c, -fr); /* the worst rank */
    if (!measured) return;
    eval_path_tally(P, t, R->o->steps);
    P->cpu += cs;
    P->frac_cpu += fr;
}

/* Warm-up and o->steps measured rounds: the SGEMM reference, the CPU-time
 * peak, then every path, the order rotating each round. */
static void eval_rounds(eval_run *R, eval_path *ep, int ne)
{
    const sr_comm *c = R->c;
    const double steps = (double)R->o->steps;
    for (int64_t it = 0; it <= R->o->steps; it++) {
        gemm_ref_measure(R->g, 3);
        gemm_ref_measure(R->gb, 3);
        double sg = sr_bench_max(c, R->tiles_local * R->g->t_nt);
        double sgb = sr_bench_max(c, R->tiles_local * R->blocks * R->gb->t_nt);
        double rn = sr_bench_sum(c, R->tile_flops / R->g->t_nt) / 1e9;
        double rb = sr_bench_sum(c, R->tile_flops / (R->blocks * R->gb->t_nt)) / 1e9;
        double pc = sr_cpu_fma_peak_cpu_gflops(R->cpu, 0.1), pcs = sr_bench_sum(c, pc);
        if (it > 0) {
            R->gemm_total += sg;
            R->gemm_blk_total += sgb;
            R->rate_nt += rn / steps;
            R->rate_blk += rb / steps;
            R->peak_cpu += pcs / steps;
        }
        for (int x = 0; x < ne; x++) eval_once(R, &ep[(x + it) % ne], pc, it > 0);
    }
}

/* One JSON line a path (rank 0). */
static void eval_report(const eval_run *R, const eval_path *ep, int ne, double peak, int threads)
{
    const opts *o = R->o;
    const double steps = (double)o->steps, eflops = 2.0 * (double)o->batch * (double)o->items * (double)o->dim;
    const eval_path *base = ne > 0 && !strcmp(ep[0].name, "blas") ? &ep[0] : NULL;
    const double hwm = sr_bench_max(R->c, (double)sr_mem_process_peak());
    sr_bench_json js;
    for (int x = 0; x < ne; x++) {
        const eval_path *P = &ep[x];
        double eval_s = P->total / steps, mem_peak = sr_bench_max(R->c, (double)P->work.peak);
        json_head(&js, "eval_topk", R->c, threads, o);
        sr_bench_json_str(&js, "kernel", sr_topk_ws_kernel(P->ws, o->dim));
        sr_bench_json_int(&js, "k", o->k);
        sr_bench_json_int(&js, "excl_per_user", o->excl);
        sr_bench_json_num(&js, "eval_s", eval_s, 4);
        sr_bench_json_num(&js, "best_eval_s", P->best, 4);
        sr_bench_json_num(&js, "gflops", eflops / eval_s / 1e9, 2);
        sr_bench_json_num(&js, "fma_peak_gflops", peak, 1);
        sr_bench_json_num(&js, "fraction_of_fma_peak", eflops / eval_s / 1e9 / peak, 3);
        sr_bench_json_num(&js, "best_fraction_of_fma_peak", eflops / P->best / 1e9 / peak, 3);
        sr_bench_json_num(&js, "local_cpu_s", P->cpu / steps, 4);
        sr_bench_json_num(&js, "fma_peak_cpu_gflops", R->peak_cpu, 1);
        sr_bench_json_num(&js, "fraction_of_fma_peak_cpu", P->frac_cpu / steps, 3);
        if (base) sr_bench_json_num(&js, "speedup_vs_blas", base->total / P->total, 3);
        if (base) sr_bench_json_num(&js, "same_ids_as_blas", eval_path_agree(P, base, o->batch * o->k), 5);
        sr_bench_json_num(&js, "loadavg_1m_mean", P->load, 2);
        sr_bench_json_str(&js, "flop_count", "1 GEMM x 2BNd");
        sr_bench_json_num(&js, "sgemm_nt_gflops", R->rate_nt, 2);
        sr_bench_json_num(&js, "sgemm_eval_s", R->gemm_total / steps, 4);
        sr_bench_json_num(&js, "fraction_of_sgemm", R->gemm_total / P->total, 3);
        sr_bench_json_num(&js, "sgemm_blocked_gflops", R->rate_blk, 2);
        sr_bench_json_num(&js, "fraction_of_blocked_sgemm", R->gemm_blk_total / P->total, 3);
        sr_bench_json_num(&js, "mem_peak_bytes", mem_peak, 0);
        sr_bench_json_num(&js, "vmhwm_bytes", hwm, 0);
        sr_bench_json_int(&js, "top1_id", P->tid[0]);
        sr_bench_json_print(&js, R->c);
    }
}

int main(int argc, char **argv)
{
    sr_comm c;
    sr_bench_start(&argc, &argv, &c);
    sr_error e;
    sr_error_clear(&e);
    opts o = {sr_bench_arg_i64(argc, argv, "--items", 1000000), sr_bench_arg_i64(argc, argv, "--dim", 64),
              sr_bench_arg_i64(argc, argv, "--batch", 1024),    sr_bench_arg_i64(argc, argv, "--tile", 4096),
              sr_bench_arg_i64(argc, argv, "--k", 20),          sr_bench_arg_i64(argc, argv, "--steps", 3),
              sr_bench_arg_i64(argc, argv, "--excl", 50)};
    const int64_t b = o.batch, d = o.dim, n = o.items;
    sr_shard s;
    if (sr_shard_init_block(&s, n, c.size, NULL, &e)) sr_comm_abort(&c, &e);
    const int64_t nr = sr_shard_count(&s, c.rank);
    int threads = openblas_get_num_threads();
    double core_peak = 0, peak = sr_bench_fma_peak(&c, threads, &core_peak);
    double bf16_peak = sr_bench_peak(&c, threads, NULL, sr_cpu_bf16_peak_gflops); /* 0 without AVX512_BF16 */
    sr_cpu cpu;
    sr_cpu_detect(&cpu);
    char cpu_desc[256];
    sr_cpu_describe(&cpu, cpu_desc, sizeof cpu_desc);

    /* Inputs: this rank's rows, the global batch and targets (same on all). */
    sr_mem tables; /* inputs and gradients: O(n_r d + B d), reported apart */
    sr_mem_init(&tables, 0);
    float *v = sr_mem_alloc(&tables, (size_t)(nr * d + 1) * sizeof(float), 0, "item rows", &e);
    float *dv = sr_mem_alloc(&tables, (size_t)(nr * d + 1) * sizeof(float), 0, "item grads", &e);
    float *q = sr_mem_alloc(&tables, (size_t)(b * d) * sizeof(float), 0, "queries", &e);
    float *dq = sr_mem_alloc(&tables, (size_t)(b * d) * sizeof(float), 0, "query grads", &e);
    int64_t *tg = sr_mem_alloc(&tables, (size_t)b * sizeof(int64_t), 0, "targets", &e);
    if (!v || !dv || !q || !dq || !tg) sr_comm_abort(&c, &e);
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
    if (!g.cbuf || !g.dvb || !g.vt) sr_comm_abort(&c, &e);
    for (int64_t i = 0; i < b * tile; i++) g.cbuf[i] = 1e-3f;
    if (nr > 0) memcpy(g.vt, v, (size_t)(tile * d) * sizeof(float));
    const double tile_flops = 2.0 * (double)b * (double)tile * (double)d;
    /* The same GEMMs cut into the kernels' query blocks (qb x tile x d). */
    sr_softmax_ws *probe = NULL;
    if (sr_softmax_ws_create(&probe, b, o.tile, NULL, &e)) sr_comm_abort(&c, &e);
    const int64_t qb = sr_softmax_ws_qblock(probe);
    sr_softmax_ws_destroy(&probe);
    gemm_ref gb = g;
    gb.b = qb;
    const double blocks = (double)((b + qb - 1) / qb);
    const double tiles_local = nr > 0 ? (double)nr / (double)tile : 0.0;

    /* ---- softmax step, each kernel path --------------------------------- */
    /* Paths run alternately within each round (blas, fused-avx512,
     * fused-avx2, fused-avx512-bf16 where the CPU has them), so they share
     * the machine's load; --kernels restricts the set (comma-separated). */
    const char *want = sr_bench_arg_str(argc, argv, "--kernels", "blas,fused-avx512,fused-avx2,fused-avx512-bf16");
    static const char *const names[] = {"blas", "fused-avx512", "fused-avx2", "fused-avx512-bf16"};
    enum { NK = 4, K_FP32 = 1, K_BF16 = 3 };
    sr_mem kwork[NK]; /* the step's own allocations, one counter per path */
    sr_softmax_ws *kws[NK] = {NULL, NULL, NULL, NULL};
    int nk = 0, kidx[NK];
    for (int k = 0; k < NK; k++) {
        if (!listed_(want, names[k])) continue;
        sr_mem_init(&kwork[k], 0);
        if (sr_softmax_ws_create(&kws[k], b, o.tile, &kwork[k], &e)) sr_comm_abort(&c, &e);
        sr_error_clear(&e);
        if (sr_softmax_ws_set_kernel(kws[k], k == K_BF16 ? "fused-avx512" : names[k], &e) != SR_OK ||
            sr_softmax_ws_set_precision(kws[k], k == K_BF16 ? "bf16" : "fp32", d, NULL, &e) != SR_OK) {
            if (c.rank == 0) fprintf(stderr, "bench_softmax: skipping %s: %s\n", names[k], e.msg);
            sr_softmax_ws_destroy(&kws[k]);
            continue;
        }
        kidx[nk++] = k;
    }
    double kloss[NK] = {0}, kbest[NK], ktotal[NK] = {0}, kload[NK] = {0};
    for (int k = 0; k < NK; k++) kbest[k] = INFINITY;
    double gemm_total = 0, rate_mix = 0, rate_nt = 0, gemm_blk_total = 0, rate_blk = 0;
    for (int64_t it = 0; it <= o.steps; it++) { /* it == 0: warm-up */
        gemm_ref_measure(&g, 3);
        gemm_ref_measure(&gb, 3);
        double mix = 2 * g.t_nt + g.t_tn + g.t_nn; /* one tile's 4 GEMMs */
        double mixb = blocks * (2 * gb.t_nt + gb.t_tn + gb.t_nn);
        double sg = sr_bench_max(&c, tiles_local * mix);
        double sgb = sr_bench_max(&c, tiles_local * mixb);
        double rm = sr_bench_sum(&c, 4 * tile_flops / mix) / 1e9;
        double rb = sr_bench_sum(&c, 4 * tile_flops / mixb) / 1e9;
        double rn = sr_bench_sum(&c, tile_flops / g.t_nt) / 1e9;
        if (it > 0) {
            gemm_total += sg;
            gemm_blk_total += sgb;
            rate_mix += rm / (double)o.steps;
            rate_blk += rb / (double)o.steps;
            rate_nt += rn / (double)o.steps;
        }
        for (int kk = 0; kk < nk; kk++) {
            /* Rotate the order each round so no path always runs first. */
            int k = kidx[(kk + it) % nk];
            MPI_Barrier(c.comm);
            double t0 = sr_time_now();
            if (sr_softmax_step(&c, q, b, d, v, nr, &s, tg, kws[k], &kloss[k], dq, dv, &e)) sr_comm_abort(&c, &e);
            double t = sr_bench_max(&c, sr_time_now() - t0);
            if (it > 0) {
                ktotal[k] += t;
                kload[k] += sr_bench_loadavg() / (double)o.steps;
                if (t < kbest[k]) kbest[k] = t;
            }
        }
    }
    const double flops = 4.0 * 2.0 * (double)b * (double)n * (double)d;
    const double blas_s = ktotal[0] > 0 ? ktotal[0] / (double)o.steps : 0;
    double table_bytes = sr_bench_max(&c, (double)tables.peak);
    double hwm = sr_bench_max(&c, (double)sr_mem_process_peak());
    sr_bench_json js;
    for (int kk = 0; kk < nk; kk++) {
        int k = kidx[kk];
        double step_s = ktotal[k] / (double)o.steps;
        double mem_peak = sr_bench_max(&c, (double)kwork[k].peak);
        json_head(&js, "softmax_step", &c, threads, &o);
        sr_bench_json_str(&js, "kernel", sr_softmax_ws_kernel(kws[k], d));
        sr_bench_json_int(&js, "steps", o.steps);
        sr_bench_json_num(&js, "step_s", step_s, 4);
        sr_bench_json_num(&js, "best_step_s", kbest[k], 4);
        sr_bench_json_num(&js, "gflops", flops / step_s / 1e9, 2);
        sr_bench_json_num(&js, "best_gflops", flops / kbest[k] / 1e9, 2);
        sr_bench_json_num(&js, "fma_peak_gflops", peak, 1);
        sr_bench_json_num(&js, "fma_peak_core_gflops", core_peak, 1);
        sr_bench_json_num(&js, "fraction_of_fma_peak", flops / step_s / 1e9 / peak, 3);
        sr_bench_json_num(&js, "best_fraction_of_fma_peak", flops / kbest[k] / 1e9 / peak, 3);
        if (blas_s > 0) sr_bench_json_num(&js, "speedup_vs_blas", blas_s / step_s, 3);
        if (k == K_BF16) {
            sr_bench_json_str(&js, "precision", "bf16");
            if (ktotal[K_FP32] > 0) sr_bench_json_num(&js, "speedup_vs_fused_fp32", ktotal[K_FP32] / ktotal[k], 3);
            sr_bench_json_num(&js, "bf16_peak_gflops", bf16_peak, 1);
            sr_bench_json_num(&js, "best_fraction_of_bf16_peak", flops / kbest[k] / 1e9 / bf16_peak, 3);
        }
        sr_bench_json_str(&js, "cpu", cpu_desc);
        sr_bench_json_str(&js, "flop_count", "4 GEMMs x 2BNd");
        sr_bench_json_num(&js, "sgemm_gflops", rate_mix, 2);
        sr_bench_json_num(&js, "sgemm_nt_gflops", rate_nt, 2);
        sr_bench_json_num(&js, "sgemm_step_s", gemm_total / (double)o.steps, 4);
        sr_bench_json_num(&js, "fraction_of_sgemm", gemm_total / ktotal[k], 3);
        sr_bench_json_int(&js, "qblock", qb);
        sr_bench_json_num(&js, "sgemm_blocked_gflops", rate_blk, 2);
        sr_bench_json_num(&js, "fraction_of_blocked_sgemm", gemm_blk_total / ktotal[k], 3);
        sr_bench_json_num(&js, "mem_peak_bytes", mem_peak, 0);
        sr_bench_json_num(&js, "tables_bytes", table_bytes, 0);
        sr_bench_json_num(&js, "vmhwm_bytes", hwm, 0);
        sr_bench_json_num(&js, "bxn_bytes", 4.0 * (double)b * (double)n, 0);
        sr_bench_json_num(&js, "loadavg_1m", kload[k], 2);
        sr_bench_json_num(&js, "loss", kloss[k], 6);
        sr_bench_json_print(&js, &c);
        sr_softmax_ws_destroy(&kws[k]);
    }

    /* ---- full-ranking top-K eval ------------------------------------------ */
    int64_t *indptr = sr_mem_alloc(&tables, (size_t)(b + 1) * sizeof(int64_t), 0, "excl indptr", &e);
    int64_t *excl = sr_mem_alloc(&tables, (size_t)(b * o.excl + 1) * sizeof(int64_t), 0, "excl ids", &e);
    if (!indptr || !excl) sr_comm_abort(&c, &e);
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
    /* Each scoring path (blas, then the fused variants the CPU has; restrict
     * with --eval-kernels) has its own workspace and counter; the paths take
     * turns within each round, like the step's, so they share the load. */
    const char *ewant = sr_bench_arg_str(argc, argv, "--eval-kernels", "blas,fused-avx512,fused-avx2");
    eval_path ep[NK];
    int ne = 0;
    for (int k = 0; k < NK; k++)
        if (strstr(ewant, names[k]) && eval_path_open(&ep[ne], names[k], b, &o, &tables, &c)) ne++;
    eval_run R = {&c, &o, &s, &cpu, q, v, nr, indptr, excl, &g, &gb, tiles_local, blocks, tile_flops, 0, 0, 0, 0, 0};
    eval_rounds(&R, ep, ne);
    eval_report(&R, ep, ne, peak, threads);
    for (int x = 0; x < ne; x++) eval_path_close(&ep[x], &tables);

    sr_mem_free(&tables, v);
    sr_mem_free(&tables, dv);
    sr_mem_free(&tables, q);
    sr_mem_free(&tables, dq);
    sr_mem_free(&tables, tg);
    sr_mem_free(&tables, indptr);
    sr_mem_free(&tables, excl);
    sr_mem_free(&scratch, g.cbuf);
    sr_mem_free(&scratch, g.dvb);
    sr_mem_free(&scratch, g.vt);
    sr_shard_destroy(&s);
    sr_bench_stop(&c);
    return 0;
}

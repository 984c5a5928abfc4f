/* bench_sampled.c: sampled-softmax (SSM), NCE and hierarchical-softmax (HSM)
 * steps next to the exact softmax step on the same catalogue, batch and
 * machine (issue 4's benchmark).
 *
 *   mpirun -np 2 -x OPENBLAS_NUM_THREADS=1 bench_sampled
 *   OPENBLAS_NUM_THREADS=2 mpirun --bind-to none -np 1 -x OPENBLAS_NUM_THREADS bench_sampled
 * Options: --items N (1000000) --dim d (64) --batch B (1024) --tile T (4096)
 *          --steps S (5) --ks k1,k2,... (64,1024) --exact 0|1 (1) --hsm 0|1 (1)
 *          --proposal uniform|popularity|inbatch|dynamic (uniform)
 *          --losses ssm,nce (both; which sampled losses to run)
 *
 * Each configuration: one warm-up step, then S timed steps (slowest rank,
 * mean; barrier before each). A step is the loss's forward + backward
 * ("step_s"); SSM, NCE and HSM also time the row-sparse Adam update of the
 * rows the step touched ("update_s": item rows for SSM/NCE, tree nodes for
 * HSM), so "step_update_s" is what a training step costs for the loss (the
 * figure to set against bench/torch_ssm.py). "speedup_vs_exact" = exact
 * step_s / this step_s.
 *
 * GEMM part. This file interposes cblas_sgemm (the library is static, so its
 * calls bind to the definition here, which forwards to OpenBLAS through
 * dlsym(RTLD_NEXT)) and adds up the time and flops of every SGEMM inside the
 * timed steps: "gemm_s" and "gemm_gflops" are the step's own GEMMs. After
 * each step the same shapes (for SSM/NCE with shared negatives: B x k_r x d
 * NT logits, B x d x k_r NN dQ, d x k_r x B TN dV^T, k_r the rank's pool) are
 * timed alone with the same OpenBLAS: "sgemm_gflops" (summed over ranks) and
 * "gemm_fraction_of_sgemm" = in-step GEMM rate / that rate, i.e. the
 * fraction of the SGEMM rate the GEMM part reaches. "gemm_share" = gemm_s /
 * step_s (the rest is sampling, gathering rows, the exp passes, the
 * collective and the sparse gradient assembly). HSM's step has no GEMM (one
 * dot product and two axpys per path node): its "flops" = 6 d x mean depth
 * x B is reported with the rate it reaches.
 *
 * Memory: "mem_peak_bytes" is the high-water mark of everything the loss
 * allocated (sr_mem, max over ranks; HSM's includes its node table and Adam
 * state), "vmhwm_bytes" the process peak RSS (the N x d table, its Adam
 * state, and, after the exact step, its dense dV). Popularity counts are
 * Zipf-like (count_j ~ 1e6 / (j + 1)): the HSM tree and the popularity
 * proposal use them. One JSON line per case on rank 0.
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "comm/shard.h"
#include "core/config.h"
#include "core/mem.h"
#include "core/rng.h"
#include "loss/hsm.h"
#include "loss/sampled.h"
#include "loss/softmax.h"
#include "loss/softmax_mpi.h"
#include "nn/optim.h"

/* ---- the SGEMM clock ------------------------------------------------------ */

/* What the interposed cblas_sgemm adds up while `on`. File-scope because an
 * interposed BLAS symbol cannot take a context argument. */
typedef void (*sgemm_fn_)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE,
                          const blasint, const blasint, const blasint, const float, const float *, const blasint,
                          const float *, const blasint, const float, float *, const blasint);

static struct {
    sgemm_fn_ real; /* OpenBLAS's cblas_sgemm, resolved before any thread exists */
    int on;
    double seconds, flops;
} gemm_clock;

void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                 const blasint m, const blasint n, const blasint k, const float alpha, const float *a,
                 const blasint lda, const float *b, const blasint ldb, const float beta, float *c,
                 const blasint ldc)
{
    sgemm_fn_ real = gemm_clock.real;
    if (!gemm_clock.on) {
        real(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    double t0 = sr_time_now();
    real(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    gemm_clock.seconds += sr_time_now() - t0;
    gemm_clock.flops += 2.0 * (double)m * (double)n * (double)k;
}

/* Called first in main: the kernels may call SGEMM from several threads. */
static void gemm_clock_init(void)
{
    void *sym = dlsym(RTLD_NEXT, "cblas_sgemm");
    if (!sym) {
        fprintf(stderr, "bench_sampled: cblas_sgemm not found in the BLAS library\n");
        abort();
    }
    memcpy(&gemm_clock.real, &sym, sizeof gemm_clock.real); /* object to function pointer (POSIX) */
}

static void gemm_clock_start(void)
{
    gemm_clock.seconds = 0;
    gemm_clock.flops = 0;
    gemm_clock.on = 1;
}

static void gemm_clock_stop(void) { gemm_clock.on = 0; }

/* ---- one case ------------------------------------------------------------- */

/* Sums over the timed steps of one configuration. */
typedef struct tally {
    double step, update, gemm_s, gemm_flops, ref_s, ref_flops, best;
} tally;

/* Mean figures over `steps` and the common JSON fields. */
static void print_case(const sr_comm *c, const char *loss_name, const char *prop, int64_t n, int64_t d,
                       int64_t b, int64_t k, int64_t steps, const tally *t, double exact_s, double mem_peak,
                       double hwm, double loss, double extra_flops, double depth)
{
    double step_s = t->step / (double)steps, upd_s = t->update / (double)steps;
    sr_bench_json js;
    sr_bench_json_begin(&js, "sampled_step");
    sr_bench_json_str(&js, "loss_name", loss_name);
    if (prop) sr_bench_json_str(&js, "proposal", prop);
    sr_bench_json_int(&js, "ranks", c->size);
    sr_bench_json_int(&js, "blas_threads", openblas_get_num_threads());
    sr_bench_json_int(&js, "items", n);
    sr_bench_json_int(&js, "dim", d);
    sr_bench_json_int(&js, "batch", b);
    sr_bench_json_int(&js, "k", k);
    sr_bench_json_int(&js, "steps", steps);
    sr_bench_json_num(&js, "step_s", step_s, 5);
    sr_bench_json_num(&js, "best_step_s", t->best, 5);
    if (t->update > 0) {
        sr_bench_json_num(&js, "update_s", upd_s, 5);
        sr_bench_json_num(&js, "step_update_s", step_s + upd_s, 5);
    }
    if (exact_s > 0) sr_bench_json_num(&js, "speedup_vs_exact", exact_s / step_s, 1);
    if (t->gemm_flops > 0) {
        double in_step = t->gemm_flops / t->gemm_s, ref = t->ref_flops / t->ref_s;
        sr_bench_json_num(&js, "gemm_flops_per_step", t->gemm_flops / (double)steps, 0);
        sr_bench_json_num(&js, "gemm_s", t->gemm_s / (double)steps, 5);
        sr_bench_json_num(&js, "gemm_gflops", in_step / 1e9, 2);
        sr_bench_json_num(&js, "sgemm_gflops", ref / 1e9, 2);
        sr_bench_json_num(&js, "gemm_fraction_of_sgemm", in_step / ref, 3);
        sr_bench_json_num(&js, "gemm_share", t->gemm_s / t->step, 3);
        sr_bench_json_num(&js, "step_fraction_of_sgemm", t->gemm_flops / t->step / ref, 3);
    }
    if (extra_flops > 0) {
        sr_bench_json_num(&js, "flops_per_step", extra_flops, 0);
        sr_bench_json_num(&js, "gflops", extra_flops / step_s / 1e9, 2);
        sr_bench_json_num(&js, "mean_depth", depth, 2);
    }
    sr_bench_json_num(&js, "mem_peak_bytes", mem_peak, 0);
    sr_bench_json_num(&js, "vmhwm_bytes", hwm, 0);
    sr_bench_json_num(&js, "loss", loss, 6);
    sr_bench_json_print(&js, c);
}

/* After a step (same load): the three SGEMM shapes of a shared pool of np
 * rows, timed alone on scratch buffers; adds seconds and flops (summed over
 * ranks; seconds of the slowest rank). */
static void sgemm_reference(const sr_comm *c, const float *q, int64_t b, int64_t d, int64_t np, tally *t)
{
    double s = 0, f = 0;
    if (np > 0) {
        float *z = calloc((size_t)(b * np), sizeof(float)), *vc = calloc((size_t)(np * d), sizeof(float));
        float *dq = calloc((size_t)(b * d), sizeof(float)), *dvc = calloc((size_t)(np * d), sizeof(float));
        if (!z || !vc || !dq || !dvc) {
            sr_error e;
            sr_error_set(&e, SR_ERR_NOMEM, __FILE__, __LINE__, "sgemm reference buffers");
            sr_comm_abort(c, &e);
        }
        int B = (int)b, D = (int)d, K = (int)np;
        s = sr_bench_time_sgemm(0, 1, B, K, D, q, D, vc, D, z, K, 3) +
            sr_bench_time_sgemm(0, 0, B, D, K, z, K, vc, D, dq, D, 3) +
            sr_bench_time_sgemm(1, 0, D, K, B, q, D, z, K, dvc, K, 3);
        f = 3 * 2.0 * (double)b * (double)np * (double)d;
        free(z);
        free(vc);
        free(dq);
        free(dvc);
    }
    double fl = sr_bench_sum(c, f);
    t->ref_s += sr_bench_max(c, s);
    t->ref_flops += fl;
}

int main(int argc, char **argv)
{
    gemm_clock_init();
    sr_comm c;
    sr_bench_start(&argc, &argv, &c);
    sr_error e;
    sr_error_clear(&e);
    const int64_t n = sr_bench_arg_i64(argc, argv, "--items", 1000000), d = sr_bench_arg_i64(argc, argv, "--dim", 64);
    const int64_t b = sr_bench_arg_i64(argc, argv, "--batch", 1024);
    const int64_t tile = sr_bench_arg_i64(argc, argv, "--tile", 4096);
    const int64_t steps = sr_bench_arg_i64(argc, argv, "--steps", 5);
    const int64_t do_exact = sr_bench_arg_i64(argc, argv, "--exact", 1);
    const int64_t do_hsm = sr_bench_arg_i64(argc, argv, "--hsm", 1);
    const char *ks_arg = sr_bench_arg_str(argc, argv, "--ks", "64,1024");
    const char *prop = sr_bench_arg_str(argc, argv, "--proposal", "uniform");
    const char *losses = sr_bench_arg_str(argc, argv, "--losses", "ssm,nce");
    sr_shard s;
    if (sr_shard_init_block(&s, n, c.size, NULL, &e)) sr_comm_abort(&c, &e);
    const int64_t nr = sr_shard_count(&s, c.rank);

    sr_mem tables; /* inputs, the item table and its optimiser state */
    sr_mem_init(&tables, 0);
    float *v = sr_mem_alloc(&tables, (size_t)(nr * d + 1) * sizeof(float), 0, "item rows", &e);
    float *q = sr_mem_alloc(&tables, (size_t)(b * d) * sizeof(float), 0, "queries", &e);
    float *dq = sr_mem_alloc(&tables, (size_t)(b * d) * sizeof(float), 0, "query grads", &e);
    int64_t *tg = sr_mem_alloc(&tables, (size_t)b * sizeof(int64_t), 0, "targets", &e);
    int64_t *pop = sr_mem_alloc(&tables, (size_t)n * sizeof(int64_t), 0, "popularity", &e);
    if (!v || !q || !dq || !tg || !pop) sr_comm_abort(&c, &e);
    sr_rng r;
    sr_rng_init(&r, 7, (uint32_t)c.rank, SR_STREAM_INIT);
    for (int64_t i = 0; i < nr * d; i++) v[i] = (float)(0.15 * sr_rng_normal(&r));
    sr_rng_init(&r, 7, 0, SR_STREAM_SYNTH);
    for (int64_t i = 0; i < b * d; i++) q[i] = (float)(0.15 * sr_rng_normal(&r));
    for (int64_t i = 0; i < b; i++) tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);
    for (int64_t j = 0; j < n; j++) pop[j] = (int64_t)(1e6 / (double)(j + 1));

    sr_config cfg;
    sr_config_defaults(&cfg);
    sr_optim opt;
    if (sr_optim_from_config(&opt, &cfg, &e)) sr_comm_abort(&c, &e); /* adam */
    double loss = 0;

    /* ---- exact softmax step (the baseline) ---------------------------------- */
    double exact_s = 0;
    if (do_exact) {
        sr_mem work;
        sr_mem_init(&work, 0);
        float *dv = malloc((size_t)(nr * d + 1) * sizeof(float));
        sr_softmax_ws *ws = NULL;
        if (!dv) sr_error_set(&e, SR_ERR_NOMEM, __FILE__, __LINE__, "exact dV");
        if (!dv || sr_softmax_ws_create(&ws, b, tile, &work, &e)) sr_comm_abort(&c, &e);
        tally t = {0, 0, 0, 0, 0, 0, INFINITY};
        for (int64_t it = 0; it <= steps; it++) {
            /* No SGEMM clock here: with several threads the kernels call
             * SGEMM from an OpenMP team (bench_softmax measures this step). */
            MPI_Barrier(c.comm);
            double t0 = sr_time_now();
            if (sr_softmax_step(&c, q, b, d, v, nr, &s, tg, ws, &loss, dq, dv, &e)) sr_comm_abort(&c, &e);
            double dt = sr_bench_max(&c, sr_time_now() - t0);
            if (it > 0) {
                t.step += dt;
                t.best = dt < t.best ? dt : t.best;
            }
        }
        exact_s = t.step / (double)steps;
        sr_softmax_ws_destroy(&ws);
        free(dv);
        print_case(&c, "softmax", NULL, n, d, b, n, steps, &t, 0, sr_bench_max(&c, (double)work.peak),
                   sr_bench_max(&c, (double)sr_mem_process_peak()), loss, 0, 0);
    }

    /* ---- sampled steps: forward + backward, then Adam on the touched rows ---- */
    sr_optim_state vst;
    if (sr_optim_state_create(&vst, &opt, nr, d, &tables, &e)) sr_comm_abort(&c, &e);
    /* Touch the Adam moments once, as a training run has after its first
     * steps: calloc'd pages would otherwise fault on first touch inside the
     * few timed updates (~2 faults a touched row). */
    memset(vst.m, 0, (size_t)(nr * d) * sizeof(float));
    memset(vst.v, 0, (size_t)(nr * d) * sizeof(float));
    const sr_loss_kind kinds[2] = {SR_LOSS_SSM, SR_LOSS_NCE};
    int64_t gstep = 0; /* the optimiser's step counter runs across cases */
    for (const char *p = ks_arg; p && *p;) {
        int64_t k = strtoll(p, NULL, 10);
        p = strchr(p, ',');
        if (p) p++;
        for (int ki = 0; ki < 2; ki++) {
            if (!strstr(losses, ki == 0 ? "ssm" : "nce")) continue;
            cfg.loss_negatives = k;
            cfg.loss_dns_candidates = 4 * k;
            snprintf(cfg.loss_proposal, sizeof cfg.loss_proposal, "%s", prop);
            sr_mem work;
            sr_mem_init(&work, 0);
            sr_loss_init in = {&c, &cfg, &s, pop, &opt, b, d, &work};
            sr_sampled *sl = NULL;
            if (sr_sampled_create(&sl, kinds[ki], &in, &e)) sr_comm_abort(&c, &e);
            tally t = {0, 0, 0, 0, 0, 0, INFINITY};
            for (int64_t it = 0; it <= steps; it++) {
                sr_item_grad dv;
                MPI_Barrier(c.comm);
                gemm_clock_start();
                double t0 = sr_time_now();
                if (sr_sampled_step(sl, q, b, v, tg, it + 1, &loss, dq, &dv, &e)) sr_comm_abort(&c, &e);
                double t1 = sr_time_now();
                gemm_clock_stop();
                sr_optim_update(&opt, &vst, v, dv.g, dv.rows, dv.n, d, ++gstep);
                double t2 = sr_time_now();
                double dt = sr_bench_max(&c, t1 - t0), du = sr_bench_max(&c, t2 - t1);
                double gs = sr_bench_max(&c, gemm_clock.seconds), gf = sr_bench_sum(&c, gemm_clock.flops);
                sr_sample_view sv;
                sr_sampled_last_sample(sl, &sv);
                if (it > 0) {
                    t.step += dt;
                    t.update += du;
                    t.gemm_s += gs;
                    t.gemm_flops += gf;
                    t.best = dt < t.best ? dt : t.best;
                    sgemm_reference(&c, q, b, d, sv.ptr ? 0 : sv.n, &t);
                }
            }
            sr_sampled_destroy(&sl);
            print_case(&c, kinds[ki] == SR_LOSS_SSM ? "ssm" : "nce", prop, n, d, b, k, steps, &t, exact_s,
                       sr_bench_max(&c, (double)work.peak), sr_bench_max(&c, (double)sr_mem_process_peak()), loss,
                       0, 0);
        }
    }
    sr_optim_state_destroy(&vst, &tables);

    /* ---- hierarchical softmax: step, then Adam on the touched nodes ---------- */
    if (do_hsm) {
        sr_mem work;
        sr_mem_init(&work, 0);
        sr_loss_init in = {&c, &cfg, &s, pop, &opt, b, d, &work};
        sr_hsm *h = NULL;
        if (sr_hsm_create(&h, &in, &e)) sr_comm_abort(&c, &e);
        double depth = 0;
        for (int64_t i = 0; i < b; i++) depth += sr_huffman_depth(sr_hsm_tree(h), tg[i]);
        depth /= (double)b;
        /* Nodes start at zero (hsm.h): put them at the scale of the items so
         * the sigmoids are not all 1/2. */
        const sr_shard *nmap;
        int64_t nn;
        float *w = sr_hsm_params(h, &nmap, &nn);
        sr_rng_init(&r, 9, (uint32_t)c.rank, SR_STREAM_INIT);
        for (int64_t i = 0; i < nn * d; i++) w[i] = (float)(0.15 * sr_rng_normal(&r));
        tally t = {0, 0, 0, 0, 0, 0, INFINITY};
        for (int64_t it = 0; it <= steps; it++) {
            MPI_Barrier(c.comm);
            double t0 = sr_time_now();
            if (sr_hsm_step(h, q, b, tg, &loss, dq, &e)) sr_comm_abort(&c, &e);
            double t1 = sr_time_now();
            sr_hsm_update(h, it + 1);
            double t2 = sr_time_now();
            double dt = sr_bench_max(&c, t1 - t0), du = sr_bench_max(&c, t2 - t1);
            if (it > 0) {
                t.step += dt;
                t.update += du;
                t.best = dt < t.best ? dt : t.best;
            }
        }
        sr_hsm_destroy(&h);
        print_case(&c, "hsm", NULL, n, d, b, 0, steps, &t, exact_s, sr_bench_max(&c, (double)work.peak),
                   sr_bench_max(&c, (double)sr_mem_process_peak()), loss, 6.0 * (double)d * depth * (double)b,
                   depth);
    }

    sr_mem_free(&tables, v);
    sr_mem_free(&tables, q);
    sr_mem_free(&tables, dq);
    sr_mem_free(&tables, tg);
    sr_mem_free(&tables, pop);
    sr_shard_destroy(&s);
    sr_bench_stop(&c);
    return 0;
}

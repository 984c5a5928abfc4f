/* bench_sampled.c: sampled-softmax and NCE steps next to the exact softmax
 * step on the same catalogue, batch and machine.
 *
 *   mpirun -np 2 -x OPENBLAS_NUM_THREADS=1 bench_sampled
 *   OPENBLAS_NUM_THREADS=2 mpirun -np 1 bench_sampled
 * Options: --items N (1000000) --dim d (64) --batch B (1024) --tile T (4096)
 *          --steps S (3) --ks k1,k2,... (64,256,1024,4096)
 *          --proposal uniform|popularity|inbatch|dynamic (uniform)
 *
 * Each configuration: one warm-up step, then S timed steps (slowest rank,
 * mean). "mem_peak_bytes" is the high-water mark of everything the loss
 * allocated (sr_mem, max over ranks), "vmhwm_bytes" the process peak RSS
 * (includes the N x d table and, after the exact step, its dense dV).
 * "speedup_vs_exact" = exact step time / this step time. Popularity counts
 * are Zipf-like (count_j ~ 1e6 / (j + 1)). One JSON line per case, rank 0.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "comm/comm.h"
#include "comm/shard.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rng.h"
#include "loss/sampled.h"
#include "loss/softmax.h"
#include "loss/softmax_mpi.h"

static int64_t arg_i64(int argc, char **argv, const char *name, int64_t def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return strtoll(argv[i + 1], NULL, 10);
    return def;
}

static const char *arg_str(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

static double max_over_ranks(const sr_comm *c, double x)
{
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_allreduce_max(c, &x, 1, &e)) sr_comm_abort(c, &e);
    return x;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_init(&c, MPI_COMM_WORLD, &e)) sr_comm_abort(&c, &e);
    const int64_t n = arg_i64(argc, argv, "--items", 1000000), d = arg_i64(argc, argv, "--dim", 64);
    const int64_t b = arg_i64(argc, argv, "--batch", 1024), tile = arg_i64(argc, argv, "--tile", 4096);
    const int64_t steps = arg_i64(argc, argv, "--steps", 3);
    const char *ks_arg = arg_str(argc, argv, "--ks", "64,256,1024,4096");
    const char *prop = arg_str(argc, argv, "--proposal", "uniform");
    sr_shard s;
    if (sr_shard_init_block(&s, n, c.size, NULL, &e)) sr_comm_abort(&c, &e);
    const int64_t nr = sr_shard_count(&s, c.rank);

    float *v = malloc((size_t)(nr * d + 1) * sizeof(float));
    float *q = malloc((size_t)(b * d) * sizeof(float));
    float *dq = malloc((size_t)(b * d) * sizeof(float));
    int64_t *tg = malloc((size_t)b * sizeof(int64_t));
    int64_t *pop = malloc((size_t)n * sizeof(int64_t));
    if (!v || !q || !dq || !tg || !pop) {
        sr_error_set(&e, SR_ERR_NOMEM, __FILE__, __LINE__, "bench inputs");
        sr_comm_abort(&c, &e);
    }
    sr_rng r;
    sr_rng_init(&r, 7, (uint32_t)c.rank, SR_STREAM_INIT);
    for (int64_t i = 0; i < nr * d; i++) v[i] = (float)(0.15 * sr_rng_normal(&r));
    sr_rng_init(&r, 7, 0, SR_STREAM_SYNTH);
    for (int64_t i = 0; i < b * d; i++) q[i] = (float)(0.15 * sr_rng_normal(&r));
    for (int64_t i = 0; i < b; i++) tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);
    for (int64_t j = 0; j < n; j++) pop[j] = (int64_t)(1e6 / (double)(j + 1));

    /* ---- exact softmax step (the baseline) ---------------------------------- */
    double exact_s = 0, loss = 0;
    {
        sr_mem work;
        sr_mem_init(&work, 0);
        float *dv = malloc((size_t)(nr * d + 1) * sizeof(float));
        sr_softmax_ws *ws = NULL;
        if (!dv || sr_softmax_ws_create(&ws, b, tile, &work, &e)) sr_comm_abort(&c, &e);
        for (int64_t it = 0; it <= steps; it++) {
            MPI_Barrier(c.comm);
            double t0 = sr_time_now();
            if (sr_softmax_step(&c, q, b, d, v, nr, &s, tg, ws, &loss, dq, dv, &e)) sr_comm_abort(&c, &e);
            double t = max_over_ranks(&c, sr_time_now() - t0);
            if (it > 0) exact_s += t / (double)steps;
        }
        sr_softmax_ws_destroy(&ws);
        free(dv);
        double mem_peak = max_over_ranks(&c, (double)work.peak);
        double hwm = max_over_ranks(&c, (double)sr_mem_process_peak());
        if (c.rank == 0)
            printf("{\"bench\":\"sampled_step\",\"loss_name\":\"softmax\",\"ranks\":%d,\"items\":%lld,\"dim\":%lld,"
                   "\"batch\":%lld,\"k\":%lld,\"steps\":%lld,\"step_s\":%.5f,\"mem_peak_bytes\":%.0f,"
                   "\"vmhwm_bytes\":%.0f,\"loss\":%.6f}\n",
                   c.size, (long long)n, (long long)d, (long long)b, (long long)n, (long long)steps, exact_s,
                   mem_peak, hwm, loss);
        fflush(stdout);
    }

    /* ---- sampled steps ------------------------------------------------------- */
    const sr_loss_kind kinds[2] = {SR_LOSS_SSM, SR_LOSS_NCE};
    for (const char *p = ks_arg; p && *p;) {
        int64_t k = strtoll(p, NULL, 10);
        p = strchr(p, ',');
        if (p) p++;
        for (int ki = 0; ki < 2; ki++) {
            sr_config cfg;
            sr_config_defaults(&cfg);
            cfg.loss_negatives = k;
            cfg.loss_dns_candidates = 4 * k;
            snprintf(cfg.loss_proposal, sizeof cfg.loss_proposal, "%s", prop);
            sr_mem work;
            sr_mem_init(&work, 0);
            sr_loss_init in = {&c, &cfg, &s, pop, NULL, b, d, &work};
            sr_sampled *sl = NULL;
            if (sr_sampled_create(&sl, kinds[ki], &in, &e)) sr_comm_abort(&c, &e);
            double step_s = 0, best = INFINITY;
            for (int64_t it = 0; it <= steps; it++) {
                sr_item_grad dv;
                MPI_Barrier(c.comm);
                double t0 = sr_time_now();
                if (sr_sampled_step(sl, q, b, v, tg, it + 1, &loss, dq, &dv, &e)) sr_comm_abort(&c, &e);
                double t = max_over_ranks(&c, sr_time_now() - t0);
                if (it > 0) {
                    step_s += t / (double)steps;
                    best = t < best ? t : best;
                }
            }
            sr_sampled_destroy(&sl);
            double mem_peak = max_over_ranks(&c, (double)work.peak);
            double hwm = max_over_ranks(&c, (double)sr_mem_process_peak());
            if (c.rank == 0)
                printf("{\"bench\":\"sampled_step\",\"loss_name\":\"%s\",\"proposal\":\"%s\",\"ranks\":%d,"
                       "\"items\":%lld,\"dim\":%lld,\"batch\":%lld,\"k\":%lld,\"steps\":%lld,\"step_s\":%.5f,"
                       "\"best_step_s\":%.5f,\"speedup_vs_exact\":%.1f,\"mem_peak_bytes\":%.0f,"
                       "\"vmhwm_bytes\":%.0f,\"loss\":%.6f}\n",
                       kinds[ki] == SR_LOSS_SSM ? "ssm" : "nce", prop, c.size, (long long)n, (long long)d,
                       (long long)b, (long long)k, (long long)steps, step_s, best, exact_s / step_s, mem_peak, hwm,
                       loss);
            fflush(stdout);
        }
    }
    free(v);
    free(q);
    free(dq);
    free(tg);
    free(pop);
    sr_shard_destroy(&s);
    sr_comm_destroy(&c);
    MPI_Finalize();
    return 0;
}

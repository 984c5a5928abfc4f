/* bench_sparsemap.c: one training step of sparsemax, entmax-1.5 and rankmax
 * (sr_sparsemap_step) beside the exact softmax step, with the forward /
 * backward split and peak memory, over a sharded catalogue.
 *
 *   OPENBLAS_NUM_THREADS=1 mpirun -np 2 bench_sparsemap
 *   OPENBLAS_NUM_THREADS=2 mpirun --bind-to none -np 1 bench_sparsemap
 * Options: --items N (1000000) --dim d (64) --batch B (1024) --tile T (4096)
 *          --steps S (2) --scale s (0.15: std of the random embeddings)
 *          --rankmax 1 (also time rankmax) --only NAME (one sparse case:
 *          sparsemax, entmax1.5 or rankmax) --no-softmax 1
 *   SASRec shape, whole catalogue in the support (logits ~1e-3 apart):
 *     --items 3706 --batch 25600 --tile 3706 --scale 0.02
 *   trained-like spread (logit std ~2, supports of a few to ~100 items):
 *     --scale 0.5
 *
 * Softmax phases are timed by calling its kernels in turn (partial, the
 * LSE all-reduce, backward); the sparse maps report their own split
 * (forward pass, threshold search, backward; gemm_s: the SGEMMs of the
 * one-rank block path). Times are the slowest rank's,
 * averaged over S steps after one warm-up. mem_peak_bytes: the loss's own
 * allocations (sr_mem), vmhwm_bytes: the process high-water mark. One JSON
 * line per case on rank 0.
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
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rng.h"
#include "loss/softmax.h"
#include "loss/sparsemap.h"

static int64_t arg_i64(int argc, char **argv, const char *name, int64_t def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return strtoll(argv[i + 1], NULL, 10);
    return def;
}

static double arg_f(int argc, char **argv, const char *name, double def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return strtod(argv[i + 1], NULL);
    return def;
}

static double max_ranks(const sr_comm *c, double x)
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
    const int64_t steps = arg_i64(argc, argv, "--steps", 2);
    const double scale = arg_f(argc, argv, "--scale", 0.15);
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--only")) only = argv[i + 1];
    const int with_softmax = arg_i64(argc, argv, "--no-softmax", 0) == 0;
    sr_shard s;
    if (sr_shard_init_block(&s, n, c.size, NULL, &e)) sr_comm_abort(&c, &e);
    const int64_t nr = sr_shard_count(&s, c.rank);
    float *v = malloc((size_t)(nr * d + 1) * sizeof(float)), *dvd = malloc((size_t)(nr * d + 1) * sizeof(float));
    float *q = malloc((size_t)(b * d) * sizeof(float)), *dq = malloc((size_t)(b * d) * sizeof(float));
    int64_t *tg = malloc((size_t)b * sizeof(int64_t));
    if (!v || !dvd || !q || !dq || !tg) sr_panic(__FILE__, __LINE__, "bench: out of memory");
    sr_rng r;
    sr_rng_init(&r, 7, (uint32_t)c.rank, SR_STREAM_INIT);
    for (int64_t i = 0; i < nr * d; i++) v[i] = (float)(scale * sr_rng_normal(&r));
    sr_rng_init(&r, 7, 0, SR_STREAM_SYNTH);
    for (int64_t i = 0; i < b * d; i++) q[i] = (float)(scale * sr_rng_normal(&r));
    for (int64_t i = 0; i < b; i++) tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);
    const int threads = openblas_get_num_threads();

    /* ---- exact softmax, phase by phase --------------------------------- */
    sr_mem work;
    sr_mem_init(&work, 0);
    sr_softmax_ws *ws = NULL;
    if (sr_softmax_ws_create(&ws, b, tile, &work, &e)) sr_comm_abort(&c, &e);
    double tf = 0, tb = 0, loss = 0;
    for (int64_t it = 0; with_softmax && it <= steps; it++) {
        MPI_Barrier(c.comm);
        double t0 = sr_time_now();
        sr_lse *lse = sr_softmax_ws_lse(ws);
        if (sr_softmax_partial(q, b, d, v, nr, &s, c.rank, tg, ws, lse, &e)) sr_comm_abort(&c, &e);
        if (sr_comm_allreduce_lse(&c, lse, b, &e)) sr_comm_abort(&c, &e);
        loss = sr_softmax_loss(lse, b);
        double t1 = sr_time_now();
        if (sr_softmax_backward(q, b, d, v, nr, &s, c.rank, tg, lse, ws, dq, dvd, &e)) sr_comm_abort(&c, &e);
        double t2 = sr_time_now();
        if (it > 0) {
            tf += max_ranks(&c, t1 - t0);
            tb += max_ranks(&c, t2 - t1);
        }
    }
    sr_softmax_ws_destroy(&ws);
    double sm_step = (tf + tb) / (double)steps, sm_back = tb / (double)steps;
    double peak = max_ranks(&c, (double)work.peak), hwm = max_ranks(&c, (double)sr_mem_process_peak());
    if (c.rank == 0 && with_softmax)
        printf("{\"bench\":\"sparsemap_step\",\"loss\":\"softmax\",\"ranks\":%d,\"blas_threads\":%d,\"items\":%lld,"
               "\"dim\":%lld,\"batch\":%lld,\"tile\":%lld,\"steps\":%lld,\"step_s\":%.4f,\"forward_s\":%.4f,"
               "\"backward_s\":%.4f,\"mem_peak_bytes\":%.0f,\"vmhwm_bytes\":%.0f,\"loss_value\":%.6f}\n",
               c.size, threads, (long long)n, (long long)d, (long long)b, (long long)tile, (long long)steps, sm_step,
               tf / (double)steps, sm_back, peak, hwm, loss);
    fflush(stdout);
    free(dvd);

    /* ---- sparse maps ---------------------------------------------------- */
    const struct {
        sr_loss_kind kind;
        double alpha;
        const char *name;
    } cases[] = {{SR_LOSS_SPARSEMAX, 2.0, "sparsemax"}, {SR_LOSS_ENTMAX, 1.5, "entmax1.5"},
                 {SR_LOSS_RANKMAX, 2.0, "rankmax"}};
    /* rankmax's support is every item above the target (about N/2 at a
     * random init): it runs only with --rankmax 1. */
    const size_t ncases = arg_i64(argc, argv, "--rankmax", 0) ? 3 : 2;
    for (size_t k = 0; k < (only ? 3 : ncases); k++) {
        if (only && strcmp(only, cases[k].name)) continue;
        sr_config cfg;
        sr_config_defaults(&cfg);
        cfg.loss_alpha = cases[k].alpha;
        cfg.loss_rankmax_k = 1;
        cfg.loss_tile = tile;
        sr_mem_init(&work, 0);
        sr_loss_init in = {&c, &cfg, &s, NULL, NULL, b, d, &work};
        sr_sparsemap *sm = NULL;
        if (sr_sparsemap_create(&sm, cases[k].kind, &in, &e)) sr_comm_abort(&c, &e);
        double ts = 0, tfw = 0, tse = 0, tbw = 0, tgm = 0;
        sr_sparsemap_info info;
        sr_item_grad dv;
        for (int64_t it = 0; it <= steps; it++) {
            MPI_Barrier(c.comm);
            double t0 = sr_time_now();
            if (sr_sparsemap_step(sm, q, b, v, tg, it + 1, &loss, dq, &dv, &e)) sr_comm_abort(&c, &e);
            double t = sr_time_now() - t0;
            sr_sparsemap_get_info(sm, &info);
            if (it > 0) {
                ts += max_ranks(&c, t);
                tfw += max_ranks(&c, info.t_forward);
                tse += max_ranks(&c, info.t_search);
                tbw += max_ranks(&c, info.t_backward);
                tgm += max_ranks(&c, info.t_gemm);
            }
        }
        const int64_t *sup = sr_sparsemap_support(sm);
        double mean_sup = 0;
        int64_t max_sup = 0;
        for (int64_t i = 0; i < b; i++) {
            mean_sup += (double)sup[i] / (double)b;
            max_sup = sup[i] > max_sup ? sup[i] : max_sup;
        }
        double st = ts / (double)steps;
        peak = max_ranks(&c, (double)work.peak);
        hwm = max_ranks(&c, (double)sr_mem_process_peak());
        double rows = max_ranks(&c, (double)info.dv_rows);
        if (c.rank == 0)
            printf("{\"bench\":\"sparsemap_step\",\"loss\":\"%s\",\"ranks\":%d,\"blas_threads\":%d,\"items\":%lld,"
                   "\"dim\":%lld,\"batch\":%lld,\"tile\":%lld,\"steps\":%lld,\"step_s\":%.4f,\"forward_s\":%.4f,"
                   "\"search_s\":%.4f,\"backward_s\":%.5f,\"gemm_s\":%.4f,\"backward_over_softmax_backward\":%.5f,"
                   "\"step_over_softmax_step\":%.3f,\"search_rounds\":%lld,\"recompute_rounds\":%lld,"
                   "\"overflow_queries\":%lld,\"support_mean\":%.2f,\"support_max\":%lld,\"dv_rows_max\":%.0f,"
                   "\"mem_peak_bytes\":%.0f,\"vmhwm_bytes\":%.0f,\"loss_value\":%.6f}\n",
                   cases[k].name, c.size, threads, (long long)n, (long long)d, (long long)b, (long long)tile,
                   (long long)steps, st, tfw / (double)steps, tse / (double)steps, tbw / (double)steps, tgm / (double)steps,
                   tbw / (double)steps / sm_back, st / sm_step, (long long)info.rounds,
                   (long long)info.recompute_rounds, (long long)info.overflow_queries, mean_sup, (long long)max_sup,
                   rows, peak, hwm, loss);
        fflush(stdout);
        sr_sparsemap_destroy(&sm);
    }
    free(v);
    free(q);
    free(dq);
    free(tg);
    sr_shard_destroy(&s);
    sr_comm_destroy(&c);
    MPI_Finalize();
    return 0;
}

/* bench_sasrec.c: sequences per second of a SASRec training step of the
 * transformer (forward + backward + all-reduce + Adam), the global batch
 * split over the ranks, and the sharded input lookup + gradient push.
 *
 *   OPENBLAS_NUM_THREADS=2 mpirun -np 1 bench_sasrec
 *   mpirun -np 2 -x OPENBLAS_NUM_THREADS=1 bench_sasrec
 * Options: --batch B (128, global) --len L (200) --dim d (64) --layers (2)
 *          --heads (1) --dropout (0.2) --steps S (5) --items N (3706)
 *          --min-len m (L: every sequence full; smaller: lengths uniform in
 *          [m, L], left-padded, which the attention skips)
 *
 * One warm-up step, then S timed steps; the slowest rank's mean. The item
 * rows come from an N x d table sharded in blocks (lookup) and the gradient
 * of h is a fixed random tensor (no loss: the loss is benchmarked
 * elsewhere). "seq_per_s" = B / step_s. One JSON line on rank 0, with the
 * load average (the machine is shared).
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "comm/shard.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rng.h"
#include "models/mf.h"
#include "models/sasrec.h"
#include "models/seqembed.h"

int main(int argc, char **argv)
{
    sr_comm c;
    sr_bench_start(&argc, &argv, &c);
    const int64_t B = sr_bench_arg_i64(argc, argv, "--batch", 128);
    const int64_t L = sr_bench_arg_i64(argc, argv, "--len", 200);
    const int64_t d = sr_bench_arg_i64(argc, argv, "--dim", 64);
    const int64_t layers = sr_bench_arg_i64(argc, argv, "--layers", 2);
    const int64_t heads = sr_bench_arg_i64(argc, argv, "--heads", 1);
    const double dropout = sr_bench_arg_f(argc, argv, "--dropout", 0.2);
    const int64_t steps = sr_bench_arg_i64(argc, argv, "--steps", 5);
    const int64_t N = sr_bench_arg_i64(argc, argv, "--items", 3706);
    const int64_t min_len = sr_bench_arg_i64(argc, argv, "--min-len", L);
    sr_error e;
    sr_error_clear(&e);
    sr_mem mem;
    sr_mem_init(&mem, 0);
    /* this rank's share of the batch */
    const int64_t q0 = B * c.rank / c.size, nq = B * (c.rank + 1) / c.size - q0;
    sr_shard map;
    if (sr_shard_init_block(&map, N, c.size, NULL, &e)) sr_comm_abort(&c, &e);
    const int64_t nl = sr_shard_count(&map, c.rank);
    float *table = malloc((size_t)(nl > 0 ? nl : 1) * (size_t)d * sizeof(float));
    sr_table_init_normal(table, nl, d, 0.1, 1, 0, &map, c.rank, 0);
    sr_sasrec_opts so = {d, layers, heads, L, dropout, true, N, 1, 0.1};
    sr_optim adam = {SR_OPTIM_ADAM, 1e-3, 0.9, 0.98, 1e-8, 0.0};
    sr_sasrec *m = NULL;
    sr_seqembed *se = NULL;
    if (sr_sasrec_create(&m, &so, &adam, nq > 0 ? nq : 1, &mem, &e)) sr_comm_abort(&c, &e);
    if (sr_seqembed_create(&se, &c, &map, d, &mem, &e)) sr_comm_abort(&c, &e);
    size_t big = (size_t)(nq > 0 ? nq : 1) * (size_t)(L * d);
    float *x = malloc(big * sizeof(float)), *h = malloc(big * sizeof(float));
    float *dh = malloc(big * sizeof(float)), *dx = malloc(big * sizeof(float));
    int64_t *ids = malloc((size_t)(nq > 0 ? nq : 1) * (size_t)L * sizeof(int64_t));
    uint8_t *valid = malloc((size_t)(nq > 0 ? nq : 1) * (size_t)L);
    sr_rng r;
    sr_rng_init(&r, 7, (uint32_t)c.rank, SR_STREAM_SYNTH);
    int64_t positions = 0;
    for (int64_t q = 0; q < nq; q++) {
        int64_t len = min_len + (int64_t)sr_rng_below(&r, (uint64_t)(L - min_len + 1));
        for (int64_t i = 0; i < L; i++) {
            ids[q * L + i] = i < L - len ? -1 : (int64_t)sr_rng_below(&r, (uint64_t)N);
            valid[q * L + i] = ids[q * L + i] >= 0;
            positions += valid[q * L + i];
        }
    }
    for (size_t k = 0; k < big; k++) dh[k] = valid[k / (size_t)d] ? (float)(0.01 * sr_rng_normal(&r)) : 0.0f;
    double t_step = 0, t_best = INFINITY, t_io = 0;
    sr_item_grad g;
    for (int64_t s = 0; s <= steps; s++) {
        MPI_Barrier(c.comm);
        double t0 = sr_time_now();
        if (sr_seqembed_lookup(se, ids, nq * L, table, x, &e)) sr_comm_abort(&c, &e);
        double t1 = sr_time_now();
        sr_sasrec_set_first_seq(m, q0);
        if (sr_sasrec_forward(m, x, valid, nq, true, s + 1, h, &e)) sr_comm_abort(&c, &e);
        if (sr_sasrec_backward(m, dh, dx, &e)) sr_comm_abort(&c, &e);
        if (sr_sasrec_update(m, &c, s + 1, &e)) sr_comm_abort(&c, &e);
        double t2 = sr_time_now();
        if (sr_seqembed_push(se, dx, NULL, &g, &e)) sr_comm_abort(&c, &e);
        double t3 = sr_time_now();
        double step_s = sr_bench_max(&c, t2 - t1), io_s = sr_bench_max(&c, (t1 - t0) + (t3 - t2));
        if (s == 0) continue; /* warm-up */
        t_step += step_s;
        t_io += io_s;
        if (step_s < t_best) t_best = step_s;
    }
    double step_s = t_step / (double)steps;
    double pos_total = sr_bench_sum(&c, (double)positions);
    double mem_peak = sr_bench_max(&c, (double)mem.peak);
    sr_bench_json js;
    sr_bench_json_begin(&js, "sasrec_step");
    sr_bench_json_int(&js, "ranks", c.size);
    sr_bench_json_int(&js, "blas_threads", openblas_get_num_threads());
    sr_bench_json_int(&js, "batch", B);
    sr_bench_json_int(&js, "max_len", L);
    sr_bench_json_int(&js, "dim", d);
    sr_bench_json_int(&js, "layers", layers);
    sr_bench_json_int(&js, "heads", heads);
    sr_bench_json_num(&js, "dropout", dropout, 2);
    sr_bench_json_num(&js, "valid_fraction", pos_total / (double)(B * L), 3);
    sr_bench_json_int(&js, "steps", steps);
    sr_bench_json_num(&js, "step_s", step_s, 5);
    sr_bench_json_num(&js, "best_step_s", t_best, 5);
    sr_bench_json_num(&js, "seq_per_s", (double)B / step_s, 1);
    sr_bench_json_num(&js, "lookup_push_s", t_io / (double)steps, 6);
    sr_bench_json_num(&js, "mem_peak_bytes", mem_peak, 0);
    sr_bench_json_print(&js, &c);
    free(x), free(h), free(dh), free(dx), free(ids), free(valid), free(table);
    sr_seqembed_destroy(&se);
    sr_sasrec_destroy(&m);
    sr_shard_destroy(&map);
    sr_bench_stop(&c);
    return 0;
}

/* bench_lightgcn.c: LightGCN propagation (forward + backward) on Gowalla.
 *
 *   mpirun -np 1 -x OPENBLAS_NUM_THREADS=1 build/bench/bench_lightgcn
 *   mpirun -np 2 -x OPENBLAS_NUM_THREADS=1 build/bench/bench_lightgcn
 * Options: --train PATH (LightGCN "user item item ..." text; default
 *          $SOFTREC_DATA/gowalla/train.txt, else ../shared/data next to the
 *          source tree) --test PATH (only read for the item count; default
 *          test.txt beside train) --layers K (3) --dim d (64) --reps R (10)
 *          --layout block|interleave (block)
 *
 * Every rank scans the text for the sizes and keeps only the rows of its
 * user range (balanced blocks); item degrees are computed by the module
 * (pushed counts), so graph set-up is timed as the trainer will run it.
 * Timed: one warm-up, then R x (forward + backward); "fwd_bwd_s" is the
 * median over reps of the slowest rank, "cpu_s_all_ranks" the median CPU
 * seconds summed over ranks (robust to a loaded machine). Bytes: per round, summed over ranks
 * and the largest rank, next to the full-item-table figure. One JSON line,
 * rank 0; {"skipped": ...} when the data is absent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#include "bench_util.h"
#include "comm/comm.h"
#include "comm/shard.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rng.h"
#include "io/dataset.h"
#include "models/lightgcn.h"

/* Rows of a LightGCN text file (one line per user, users ascending, as the
 * upstream files are). pass 0: max user and item id, edges of users
 * [u0, u1); pass 1: those rows into indptr/items. -2: users out of order. */
typedef struct text_graph {
    int64_t max_user, max_item, nnz_local;
    int64_t *indptr, *items;
} text_graph;

static int scan_(const char *path, int64_t u0, int64_t u1, int pass, text_graph *t)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    int64_t e = 0, last = -1;
    int rc = 0;
    while (getline(&line, &cap, f) > 0) {
        char *p = line, *end;
        long long u = strtoll(p, &end, 10);
        if (end == p) continue;
        if (pass == 0 && u > t->max_user) t->max_user = u;
        int keep = u >= u0 && u < u1;
        if (keep && u <= last) rc = -2;
        if (keep) last = u;
        for (p = end;; p = end) {
            long long i = strtoll(p, &end, 10);
            if (end == p) break;
            if (pass == 0 && i > t->max_item) t->max_item = i;
            if (keep) {
                if (pass == 1) t->items[e] = i;
                e++;
            }
        }
        if (pass == 1 && keep) t->indptr[u - u0 + 1] = e;
    }
    free(line);
    fclose(f);
    if (pass == 0) t->nnz_local = e;
    return rc;
}

/* CPU seconds of this process: on a shared, loaded machine the wall time
 * mostly measures the neighbours; CPU time is what the work itself cost. */
static double cpu_now_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d_(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    sr_comm c;
    sr_bench_start(&argc, &argv, &c);
    sr_error e;
    sr_error_clear(&e);
    char def_train[1024], def_test[1024];
    const char *root = getenv("SOFTREC_DATA");
    if (root) snprintf(def_train, sizeof def_train, "%s/gowalla/train.txt", root);
    else snprintf(def_train, sizeof def_train, "%s/../shared/data/gowalla/train.txt", SR_SOURCE_DIR);
    const char *train = sr_bench_arg_str(argc, argv, "--train", def_train);
    snprintf(def_test, sizeof def_test, "%s", train);
    char *slash = strrchr(def_test, '/');
    snprintf(slash ? slash + 1 : def_test, sizeof def_test - (size_t)(slash ? slash + 1 - def_test : 0), "test.txt");
    const char *test = sr_bench_arg_str(argc, argv, "--test", def_test);
    const int64_t layers = sr_bench_arg_i64(argc, argv, "--layers", 3), d = sr_bench_arg_i64(argc, argv, "--dim", 64);
    const int64_t reps = sr_bench_arg_i64(argc, argv, "--reps", 10);
    const char *layout = sr_bench_arg_str(argc, argv, "--layout", "block");

    text_graph t = {-1, -1, 0, NULL, NULL};
    if (scan_(train, 0, 0, 0, &t) != 0) {
        sr_bench_json j;
        sr_bench_json_begin(&j, "lightgcn");
        sr_bench_json_str(&j, "skipped", "no data (--train, $SOFTREC_DATA)");
        sr_bench_json_print(&j, &c);
        sr_bench_stop(&c);
        return 0;
    }
    scan_(test, 0, 0, 0, &t); /* optional: items only seen in test still get rows */
    const int64_t num_users = t.max_user + 1, num_items = t.max_item + 1;
    int64_t u0, u1;
    sr_dataset_user_range(num_users, c.size, c.rank, &u0, &u1);
    t.max_user = t.max_item = -1;
    if (scan_(train, u0, u1, 0, &t) != 0) {
        sr_error_set(&e, SR_ERR_DATA, __FILE__, __LINE__, "%s: user lines are not in ascending order", train);
        sr_comm_abort(&c, &e);
    }
    t.indptr = calloc((size_t)(u1 - u0 + 1), sizeof *t.indptr);
    t.items = malloc((size_t)(t.nnz_local + 1) * sizeof *t.items);
    if (!t.indptr || !t.items) {
        sr_error_set(&e, SR_ERR_NOMEM, __FILE__, __LINE__, "bench graph");
        sr_comm_abort(&c, &e);
    }
    scan_(train, u0, u1, 1, &t);
    for (int64_t u = 1; u <= u1 - u0; u++) /* users absent from the file keep empty rows */
        if (t.indptr[u] < t.indptr[u - 1]) t.indptr[u] = t.indptr[u - 1];

    sr_shard s;
    if (sr_shard_init_named(&s, layout, num_items, c.size, &e)) sr_comm_abort(&c, &e);
    const int64_t nu = u1 - u0, ni = sr_shard_count(&s, c.rank);
    sr_mem mem;
    sr_mem_init(&mem, 0);
    MPI_Barrier(c.comm);
    double t0 = sr_time_now();
    sr_lgcn *g = NULL;
    if (sr_lgcn_create(&g, &c, &s, u0, u1, num_users, t.indptr, t.items, NULL, layers, NULL, d, &mem, &e))
        sr_comm_abort(&c, &e);
    double create_s = sr_bench_max(&c, sr_time_now() - t0);

    float *eu = malloc((size_t)(nu * d + 1) * sizeof *eu), *ei = malloc((size_t)(ni * d + 1) * sizeof *ei);
    float *ou = malloc((size_t)(nu * d + 1) * sizeof *ou), *oi = malloc((size_t)(ni * d + 1) * sizeof *oi);
    float *gu = malloc((size_t)(nu * d + 1) * sizeof *gu), *gi = malloc((size_t)(ni * d + 1) * sizeof *gi);
    double *times = malloc((size_t)(reps + 1) * sizeof *times), *cpus = malloc((size_t)(reps + 1) * sizeof *cpus);
    if (!eu || !ei || !ou || !oi || !gu || !gi || !times || !cpus) {
        sr_error_set(&e, SR_ERR_NOMEM, __FILE__, __LINE__, "bench tables");
        sr_comm_abort(&c, &e);
    }
    sr_rng r;
    sr_rng_init(&r, 7, (uint32_t)c.rank, SR_STREAM_INIT);
    for (int64_t j = 0; j < nu * d; j++) eu[j] = (float)(0.1 * sr_rng_normal(&r));
    for (int64_t j = 0; j < ni * d; j++) ei[j] = (float)(0.1 * sr_rng_normal(&r));
    for (int64_t it = 0; it <= reps; it++) {
        MPI_Barrier(c.comm);
        t0 = sr_time_now();
        double c0 = cpu_now_();
        if (sr_lgcn_forward(g, eu, ei, ou, oi, &e)) sr_comm_abort(&c, &e);
        /* the output as its own gradient: same work as a real backward */
        if (sr_lgcn_backward(g, ou, oi, gu, gi, &e)) sr_comm_abort(&c, &e);
        times[it] = sr_bench_max(&c, sr_time_now() - t0);
        cpus[it] = sr_bench_sum(&c, cpu_now_() - c0);
    }
    qsort(times + 1, (size_t)reps, sizeof *times, cmp_d_);
    qsort(cpus + 1, (size_t)reps, sizeof *cpus, cmp_d_);
    double med = reps > 0 ? times[1 + reps / 2] : times[0], best = reps > 0 ? times[1] : times[0];
    double cpu_med = reps > 0 ? cpus[1 + reps / 2] : cpus[0], cpu_best = reps > 0 ? cpus[1] : cpus[0];
    double checksum = 0.0;
    for (int64_t j = 0; j < nu * d; j++) checksum += gu[j];
    for (int64_t j = 0; j < ni * d; j++) checksum += gi[j];
    checksum = sr_bench_sum(&c, checksum);
    double rb = (double)sr_lgcn_round_bytes(g), fb = (double)sr_lgcn_full_table_bytes(g);
    double rb_sum = sr_bench_sum(&c, rb), rb_max = sr_bench_max(&c, rb), fb_sum = sr_bench_sum(&c, fb);
    double halo_max = sr_bench_max(&c, (double)sr_lgcn_halo_rows(g));
    double edges = sr_bench_sum(&c, (double)sr_lgcn_local_edges(g));
    double mem_peak = sr_bench_max(&c, (double)mem.peak);
    sr_bench_json j;
    sr_bench_json_begin(&j, "lightgcn");
    sr_bench_json_int(&j, "ranks", c.size);
    sr_bench_json_int(&j, "users", num_users);
    sr_bench_json_int(&j, "items", num_items);
    sr_bench_json_num(&j, "edges", edges, 0);
    sr_bench_json_int(&j, "layers", layers);
    sr_bench_json_int(&j, "dim", d);
    sr_bench_json_str(&j, "layout", layout);
    sr_bench_json_int(&j, "reps", reps);
    sr_bench_json_num(&j, "fwd_bwd_s", med, 5);
    sr_bench_json_num(&j, "fwd_bwd_best_s", best, 5);
    sr_bench_json_num(&j, "cpu_s_all_ranks", cpu_med, 5);
    sr_bench_json_num(&j, "cpu_best_s_all_ranks", cpu_best, 5);
    sr_bench_json_num(&j, "create_s", create_s, 4);
    sr_bench_json_num(&j, "round_bytes_sum", rb_sum, 0);
    sr_bench_json_num(&j, "round_bytes_max_rank", rb_max, 0);
    sr_bench_json_num(&j, "full_table_bytes_sum", fb_sum, 0);
    sr_bench_json_num(&j, "halo_rows_max_rank", halo_max, 0);
    sr_bench_json_num(&j, "mem_peak_bytes", mem_peak, 0);
    sr_bench_json_num(&j, "checksum", checksum, 4);
    sr_bench_json_print(&j, &c);
    sr_lgcn_destroy(&g);
    sr_shard_destroy(&s);
    free(eu), free(ei), free(ou), free(oi), free(gu), free(gi), free(times), free(cpus), free(t.indptr), free(t.items);
    sr_bench_stop(&c);
    return 0;
}

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
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/collectives.h"
#include "comm/comm.h"
#include "comm/shard.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rng.h"
#include "io/dataset.h"
#include "models/lightgcn.h"

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

static double reduce_(const sr_comm *c, double x, int max)
{
    sr_error e;
    sr_error_clear(&e);
    if ((max ? sr_comm_allreduce_max(c, &x, 1, &e) : sr_comm_allreduce_sum(c, &x, 1, &e)) != SR_OK)
        sr_comm_abort(c, &e);
    return x;
}

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
    MPI_Init(&argc, &argv);
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_init(&c, MPI_COMM_WORLD, &e)) sr_comm_abort(&c, &e);
    char def_train[1024], def_test[1024];
    const char *root = getenv("SOFTREC_DATA");
    if (root) snprintf(def_train, sizeof def_train, "%s/gowalla/train.txt", root);
    else snprintf(def_train, sizeof def_train, "%s/../shared/data/gowalla/train.txt", SR_SOURCE_DIR);
    const char *train = arg_str(argc, argv, "--train", def_train);
    snprintf(def_test, sizeof def_test, "%s", train);
    char *slash = strrchr(def_test, '/');
    snprintf(slash ? slash + 1 : def_test, sizeof def_test - (size_t)(slash ? slash + 1 - def_test : 0), "test.txt");
    const char *test = arg_str(argc, argv, "--test", def_test);
    const int64_t layers = arg_i64(argc, argv, "--layers", 3), d = arg_i64(argc, argv, "--dim", 64);
    const int64_t reps = arg_i64(argc, argv, "--reps", 10);
    const char *layout = arg_str(argc, argv, "--layout", "block");

    text_graph t = {-1, -1, 0, NULL, NULL};
    if (scan_(train, 0, 0, 0, &t) != 0) {
        if (c.rank == 0) printf("{\"bench\":\"lightgcn\",\"skipped\":\"no data at %s\"}\n", train);
        sr_comm_destroy(&c);
        MPI_Finalize();
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
    double create_s = reduce_(&c, sr_time_now() - t0, 1);

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
        times[it] = reduce_(&c, sr_time_now() - t0, 1);
        cpus[it] = reduce_(&c, cpu_now_() - c0, 0);
    }
    qsort(times + 1, (size_t)reps, sizeof *times, cmp_d_);
    qsort(cpus + 1, (size_t)reps, sizeof *cpus, cmp_d_);
    double med = reps > 0 ? times[1 + reps / 2] : times[0], best = reps > 0 ? times[1] : times[0];
    double cpu_med = reps > 0 ? cpus[1 + reps / 2] : cpus[0], cpu_best = reps > 0 ? cpus[1] : cpus[0];
    double checksum = 0.0;
    for (int64_t j = 0; j < nu * d; j++) checksum += gu[j];
    for (int64_t j = 0; j < ni * d; j++) checksum += gi[j];
    checksum = reduce_(&c, checksum, 0);
    double rb = (double)sr_lgcn_round_bytes(g), fb = (double)sr_lgcn_full_table_bytes(g);
    double rb_sum = reduce_(&c, rb, 0), rb_max = reduce_(&c, rb, 1), fb_sum = reduce_(&c, fb, 0);
    double halo_max = reduce_(&c, (double)sr_lgcn_halo_rows(g), 1);
    double edges = reduce_(&c, (double)sr_lgcn_local_edges(g), 0);
    double mem_peak = reduce_(&c, (double)mem.peak, 1);
    if (c.rank == 0)
        printf("{\"bench\":\"lightgcn\",\"ranks\":%d,\"users\":%lld,\"items\":%lld,\"edges\":%.0f,\"layers\":%lld,"
               "\"dim\":%lld,\"layout\":\"%s\",\"reps\":%lld,\"fwd_bwd_s\":%.5f,\"fwd_bwd_best_s\":%.5f,"
               "\"cpu_s_all_ranks\":%.5f,\"cpu_best_s_all_ranks\":%.5f,\"create_s\":%.4f,\"round_bytes_sum\":%.0f,\"round_bytes_max_rank\":%.0f,"
               "\"full_table_bytes_sum\":%.0f,\"halo_rows_max_rank\":%.0f,\"mem_peak_bytes\":%.0f,"
               "\"checksum\":%.6e}\n",
               c.size, (long long)num_users, (long long)num_items, edges, (long long)layers, (long long)d, layout,
               (long long)reps, med, best, cpu_med, cpu_best, create_s, rb_sum, rb_max, fb_sum, halo_max, mem_peak, checksum);
    fflush(stdout);
    sr_lgcn_destroy(&g);
    sr_shard_destroy(&s);
    free(eu), free(ei), free(ou), free(oi), free(gu), free(gi), free(times), free(cpus), free(t.indptr), free(t.items);
    sr_comm_destroy(&c);
    MPI_Finalize();
    return 0;
}

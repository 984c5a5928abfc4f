/* test_eval_mpi.c: sr_eval_topk and sr_metrics_allreduce on real ranks (1-4)
 * against the serial reference, which every rank computes in full.
 * Integer-valued embeddings make every score exact, so ids must match
 * exactly, ties included, on every scoring path (blas and the fused
 * variants the CPU has). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/cpu.h"
#include "core/mem.h"
#include "core/rng.h"
#include "harness.h"
#include "train/eval_kernels.h"
#include "train/eval_mpi.h"
#include "train/metrics.h"

static sr_comm g_comm; /* test-only: CUnit tests take no arguments */

static int suite_init(void)
{
    sr_error e;
    sr_error_clear(&e);
    return sr_comm_init(&g_comm, MPI_COMM_WORLD, &e) == SR_OK ? 0 : 1;
}

static int suite_clean(void)
{
    sr_comm_destroy(&g_comm);
    return 0;
}

static void run_case(const sr_shard *s, int64_t b, int64_t d, int64_t k, int64_t tile, uint64_t seed,
                     const char *kernel, const char *what)
{
    const sr_comm *c = &g_comm;
    int64_t n = s->n;
    float *q = malloc((size_t)(b * d) * sizeof(float));
    float *v = malloc((size_t)(n * d) * sizeof(float));
    int64_t *indptr = malloc((size_t)(b + 1) * sizeof(int64_t));
    int64_t *excl = malloc((size_t)(b * n + 1) * sizeof(int64_t));
    int64_t *tptr = malloc((size_t)(b + 1) * sizeof(int64_t));
    int64_t *tests = malloc((size_t)(b * n + 1) * sizeof(int64_t));
    sr_rng r;
    sr_rng_init(&r, seed, 0, 1);
    for (int64_t i = 0; i < b * d; i++) q[i] = (float)((int)sr_rng_below(&r, 5) - 2);
    for (int64_t i = 0; i < n * d; i++) v[i] = (float)((int)sr_rng_below(&r, 5) - 2);
    indptr[0] = tptr[0] = 0;
    for (int64_t i = 0; i < b; i++) {
        int64_t ce = indptr[i], ct = tptr[i];
        for (int64_t j = 0; j < n; j++) {
            double u = sr_rng_uniform(&r);
            if (u < 0.25) excl[ce++] = j;
            else if (u < 0.35 && i % 3 != 1) tests[ct++] = j; /* every third user: no test items */
        }
        indptr[i + 1] = ce;
        tptr[i + 1] = ct;
    }
    int64_t nr = sr_shard_count(s, c->rank);
    float *vr = malloc((size_t)(nr * d + 1) * sizeof(float));
    for (int64_t j = 0; j < nr; j++)
        memcpy(vr + j * d, v + sr_shard_global(s, c->rank, j) * d, (size_t)d * sizeof(float));

    sr_error e;
    sr_error_clear(&e);
    sr_mem m;
    sr_mem_init(&m, 0);
    sr_topk_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_topk_ws_create(&ws, b, tile, k, &m, &e), SR_OK);
    CU_ASSERT_EQUAL_FATAL(sr_topk_ws_set_kernel(ws, kernel, &e), SR_OK);
    float *ts = malloc((size_t)(b * k) * sizeof(float));
    int64_t *tid = malloc((size_t)(b * k) * sizeof(int64_t));
    sr_status st = sr_eval_topk(c, q, b, d, vr, nr, s, indptr, excl, k, ws, ts, tid, &e);
    CU_ASSERT_EQUAL(st, SR_OK);
    if (st) fprintf(stderr, "[rank %d] %s %s: %s\n", c->rank, what, kernel, e.msg);

    double *rs = malloc((size_t)(b * k) * sizeof(double));
    int64_t *rid = malloc((size_t)(b * k) * sizeof(int64_t));
    CU_ASSERT_EQUAL_FATAL(sr_eval_topk_ref(q, b, d, v, n, indptr, excl, k, rs, rid, NULL, &e), SR_OK);
    int bad = 0;
    for (int64_t x = 0; x < b * k; x++)
        if (tid[x] != rid[x] || (double)ts[x] != rs[x]) bad++;
    CU_ASSERT_EQUAL(bad, 0);
    if (bad) fprintf(stderr, "[rank %d] %s %s: %d entries differ\n", c->rank, what, kernel, bad);

    /* Metrics: rank r adds the users i with i % P == r; the all-reduced
     * sums equal the serial sums over all users. */
    int64_t ks[3] = {1, 5, k};
    sr_metrics mine, all;
    CU_ASSERT_EQUAL_FATAL(sr_metrics_init(&mine, ks, 3, &e), SR_OK);
    CU_ASSERT_EQUAL_FATAL(sr_metrics_init(&all, ks, 3, &e), SR_OK);
    for (int64_t i = 0; i < b; i++) {
        if (i % c->size == c->rank)
            sr_metrics_add(&mine, tid + i * k, k, tests + tptr[i], tptr[i + 1] - tptr[i]);
        sr_metrics_add(&all, rid + i * k, k, tests + tptr[i], tptr[i + 1] - tptr[i]);
    }
    CU_ASSERT_EQUAL(sr_metrics_allreduce(c, &mine, &e), SR_OK);
    CU_ASSERT_DOUBLE_EQUAL(mine.users, all.users, 0);
    for (int j = 0; j < 3; j++) {
        CU_ASSERT_DOUBLE_EQUAL(mine.ndcg[j], all.ndcg[j], 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(mine.precision[j], all.precision[j], 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(mine.recall[j], all.recall[j], 1e-12);
    }

    free(rs);
    free(rid);
    free(ts);
    free(tid);
    sr_topk_ws_destroy(&ws);
    CU_ASSERT_EQUAL(m.current, 0);
    free(vr);
    free(q);
    free(v);
    free(indptr);
    free(excl);
    free(tptr);
    free(tests);
}

/* run_case on every scoring path the CPU has (blas, fused-avx512,
 * fused-avx2; the same CPU on every rank of this test). */
static void run_paths(const sr_shard *s, int64_t b, int64_t d, int64_t k, int64_t tile, uint64_t seed,
                      const char *what)
{
    sr_cpu cpu;
    sr_cpu_detect(&cpu);
    run_case(s, b, d, k, tile, seed, "blas", what);
    if (cpu.avx512f) run_case(s, b, d, k, tile, seed, "fused-avx512", what);
    else if (g_comm.rank == 0) fprintf(stderr, "%s: skipping fused-avx512 (this CPU lacks it)\n", what);
    if (cpu.avx2 && cpu.fma) run_case(s, b, d, k, tile, seed, "fused-avx2", what);
    else if (g_comm.rank == 0) fprintf(stderr, "%s: skipping fused-avx2 (this CPU lacks it)\n", what);
}

static void test_topk_block(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 61, sr_test_size(), NULL, &e), SR_OK);
    run_paths(&s, 11, 5, 10, 7, 201, "balanced block");
    run_paths(&s, 11, 5, 61, 64, 202, "k = N (padding)");
    sr_shard_destroy(&s);
}

static void test_topk_uneven_empty(void)
{
    int p = sr_test_size();
    int64_t counts[4] = {0, 0, 0, 0}, n = 40;
    /* The last rank holds everything when p > 1; the others are empty. */
    counts[p - 1] = n;
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, n, p, counts, &e), SR_OK);
    run_paths(&s, 6, 4, 8, 5, 203, "empty ranks");
    sr_shard_destroy(&s);
}

static void test_topk_interleave(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, 37, sr_test_size(), &e), SR_OK);
    run_paths(&s, 8, 6, 12, 4, 204, "interleave");
    sr_shard_destroy(&s);
}

static void test_bad_exclusions_agreed(void)
{
    /* Only rank 0's exclusion list is broken; every rank returns the error. */
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 8, sr_test_size(), NULL, &e), SR_OK);
    sr_topk_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_topk_ws_create(&ws, 1, 4, 2, NULL, &e), SR_OK);
    float q[2] = {1, 1}, v[16] = {0}, ts[2];
    int64_t tid[2], indptr[2] = {0, 2}, excl[2] = {3, g_comm.rank == 0 ? 1 : 5};
    int64_t nr = sr_shard_count(&s, g_comm.rank);
    CU_ASSERT_EQUAL(sr_eval_topk(&g_comm, q, 1, 2, v, nr, &s, indptr, excl, 2, ws, ts, tid, &e), SR_ERR_DATA);
    sr_topk_ws_destroy(&ws);
    sr_shard_destroy(&s);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("eval_mpi", suite_init, suite_clean);
    CU_add_test(s, "topk_block", test_topk_block);
    CU_add_test(s, "topk_uneven_empty", test_topk_uneven_empty);
    CU_add_test(s, "topk_interleave", test_topk_interleave);
    CU_add_test(s, "bad_exclusions_agreed", test_bad_exclusions_agreed);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }

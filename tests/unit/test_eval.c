/* test_eval.c: local top-K with masking over P virtual shards + merge
 * against the sort-based reference, on every scoring path (blas and the
 * fused variants the CPU has); the merge alone; metrics on hand-computed
 * examples.
 *
 * Embeddings are mostly small integers, so every score is an exact integer
 * in float and double whatever the summation order: results must match the
 * reference exactly, ties (there are many) included. test_fused_float_scores
 * uses normal embeddings and allows swaps only between items whose exact
 * scores lie within the float error bound of each other.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/shard.h"
#include "core/cpu.h"
#include "core/mem.h"
#include "core/rng.h"
#include "harness.h"
#include "train/eval_fused.h"
#include "train/eval_kernels.h"
#include "train/metrics.h"

typedef struct eval_problem {
    int64_t b, d, n;
    float *q, *v;
    int64_t *indptr, *excl; /* exclusions, CSR */
} eval_problem;

static void eval_problem_make(eval_problem *p, int64_t b, int64_t d, int64_t n, double excl_rate, uint64_t seed)
{
    p->b = b;
    p->d = d;
    p->n = n;
    p->q = malloc((size_t)(b * d) * sizeof(float));
    p->v = malloc((size_t)(n * d) * sizeof(float));
    p->indptr = malloc((size_t)(b + 1) * sizeof(int64_t));
    p->excl = malloc((size_t)(b * n + 1) * sizeof(int64_t));
    sr_rng r;
    sr_rng_init(&r, seed, 0, 1);
    for (int64_t i = 0; i < b * d; i++) p->q[i] = (float)((int)sr_rng_below(&r, 5) - 2);
    for (int64_t i = 0; i < n * d; i++) p->v[i] = (float)((int)sr_rng_below(&r, 5) - 2);
    p->indptr[0] = 0;
    for (int64_t i = 0; i < b; i++) {
        int64_t c = p->indptr[i];
        /* Query 0 excludes everything: its list is all padding. */
        for (int64_t j = 0; j < n; j++)
            if (i == 0 || sr_rng_uniform(&r) < excl_rate) p->excl[c++] = j;
        p->indptr[i + 1] = c;
    }
}

static void eval_problem_free(eval_problem *p)
{
    free(p->q);
    free(p->v);
    free(p->indptr);
    free(p->excl);
}

/* The scoring paths: blas and the fused variants. A variant the CPU lacks
 * is skipped, with a message the first time. */
static const char *const kernels_[] = {"blas", "fused-avx512", "fused-avx2"};
#define NKERNELS 3

static int kernel_runs_(int i)
{
    static int told[NKERNELS];
    sr_cpu cpu;
    sr_cpu_detect(&cpu);
    int ok = i == 0 || (i == 1 ? cpu.avx512f : cpu.avx2 && cpu.fma);
    if (!ok && !told[i]) fprintf(stderr, "test_eval: skipping %s (this CPU lacks it)\n", kernels_[i]);
    told[i] = 1;
    return ok;
}

/* Top-k over the virtual shards of s with the given path, merged into ts /
 * tid (b x k). */
static void run_topk(const eval_problem *p, const sr_shard *s, int64_t tile, int64_t k, const char *kernel,
                     float *ts, int64_t *tid)
{
    sr_error e;
    sr_error_clear(&e);
    sr_mem m;
    sr_mem_init(&m, 0);
    sr_topk_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_topk_ws_create(&ws, p->b, tile, k, &m, &e), SR_OK);
    CU_ASSERT_EQUAL_FATAL(sr_topk_ws_set_kernel(ws, kernel, &e), SR_OK);
    CU_ASSERT_STRING_EQUAL(sr_topk_ws_kernel(ws, p->d), kernel);
    int64_t bk = p->b * k, d = p->d;
    float *cs = malloc((size_t)(s->p * bk) * sizeof(float));
    int64_t *cid = malloc((size_t)(s->p * bk) * sizeof(int64_t));
    for (int r = 0; r < s->p; r++) {
        int64_t nr = sr_shard_count(s, r);
        float *vr = malloc((size_t)(nr * d + 1) * sizeof(float));
        for (int64_t j = 0; j < nr; j++)
            memcpy(vr + j * d, p->v + sr_shard_global(s, r, j) * d, (size_t)d * sizeof(float));
        CU_ASSERT_EQUAL(sr_eval_topk_local(p->q, p->b, d, vr, nr, s, r, p->indptr, p->excl, k, ws,
                                           cs + r * bk, cid + r * bk, &e),
                        SR_OK);
        free(vr);
    }
    sr_eval_topk_merge(s->p, p->b, k, cs, cid, ts, tid);
    free(cs);
    free(cid);
    sr_topk_ws_destroy(&ws);
    CU_ASSERT_EQUAL(m.current, 0);
}

/* Every path over the virtual shards of s, compared exactly with the
 * reference (integer scores: ties included). */
static void check_topk(const eval_problem *p, const sr_shard *s, int64_t tile, int64_t k, const char *what)
{
    sr_error e;
    sr_error_clear(&e);
    int64_t bk = p->b * k;
    float *ts = malloc((size_t)bk * sizeof(float));
    int64_t *tid = malloc((size_t)bk * sizeof(int64_t));
    double *rs = malloc((size_t)bk * sizeof(double));
    int64_t *rid = malloc((size_t)bk * sizeof(int64_t));
    CU_ASSERT_EQUAL_FATAL(sr_eval_topk_ref(p->q, p->b, p->d, p->v, p->n, p->indptr, p->excl, k, rs, rid, NULL, &e),
                          SR_OK);
    for (int kn = 0; kn < NKERNELS; kn++) {
        if (!kernel_runs_(kn)) continue;
        run_topk(p, s, tile, k, kernels_[kn], ts, tid);
        int bad = 0;
        for (int64_t x = 0; x < bk; x++)
            if (tid[x] != rid[x] || (double)ts[x] != rs[x]) bad++;
        CU_ASSERT_EQUAL(bad, 0);
        if (bad)
            fprintf(stderr, "%s %s (P=%d layout=%d tile=%lld k=%lld): %d entries differ\n", what, kernels_[kn],
                    s->p, (int)s->layout, (long long)tile, (long long)k, bad);
        /* Query 0 excluded every item: all padding. */
        if (p->indptr)
            for (int64_t j = 0; j < k; j++) CU_ASSERT(tid[j] == -1 && isinf(ts[j]) && ts[j] < 0);
    }
    free(ts);
    free(tid);
    free(rs);
    free(rid);
}

static void test_topk_block(void)
{
    eval_problem p;
    eval_problem_make(&p, 9, 6, 50, 0.2, 51);
    const int64_t ks[] = {1, 5, 20, 50};
    const int64_t tiles[] = {3, 8, 13, 64};
    for (int P = 1; P <= 4; P++)
        for (int t = 0; t < 4; t++)
            for (int kk = 0; kk < 4; kk++) {
                sr_shard s;
                sr_error e;
                sr_error_clear(&e);
                CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, P, NULL, &e), SR_OK);
                check_topk(&p, &s, tiles[t], ks[kk], "block");
                sr_shard_destroy(&s);
            }
    eval_problem_free(&p);
}

static void test_topk_uneven_empty_interleave(void)
{
    eval_problem p;
    eval_problem_make(&p, 7, 4, 45, 0.3, 52);
    const int64_t c1[] = {20, 0, 5, 20}, c2[] = {0, 45}, c3[] = {45, 0, 0};
    const int64_t *counts[] = {c1, c2, c3};
    const int ps[] = {4, 2, 3};
    for (int c = 0; c < 3; c++)
        for (int64_t k = 3; k <= 45; k += 21) {
            sr_shard s;
            sr_error e;
            sr_error_clear(&e);
            CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, ps[c], counts[c], &e), SR_OK);
            check_topk(&p, &s, 9, k, "uneven block");
            sr_shard_destroy(&s);
        }
    for (int P = 1; P <= 4; P++)
        for (int64_t tile = 2; tile <= 17; tile += 15) {
            sr_shard s;
            sr_error e;
            sr_error_clear(&e);
            CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, p.n, P, &e), SR_OK);
            check_topk(&p, &s, tile, 10, "interleave");
            check_topk(&p, &s, tile, 44, "interleave");
            sr_shard_destroy(&s);
        }
    eval_problem_free(&p);
}

static void test_topk_no_exclusions_large(void)
{
    /* No exclusion lists, a wider catalogue (vector prefilter and tails). */
    eval_problem p;
    eval_problem_make(&p, 5, 8, 1203, 0.0, 53);
    free(p.indptr);
    p.indptr = NULL;
    for (int P = 1; P <= 4; P += 3) {
        sr_shard s;
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, P, NULL, &e), SR_OK);
        sr_mem m;
        sr_mem_init(&m, 0);
        sr_topk_ws *ws = NULL;
        int64_t k = 30;
        CU_ASSERT_EQUAL_FATAL(sr_topk_ws_create(&ws, p.b, 100, k, &m, &e), SR_OK);
        float *cs = malloc((size_t)(P * p.b * k) * sizeof(float));
        int64_t *cid = malloc((size_t)(P * p.b * k) * sizeof(int64_t));
        for (int r = 0; r < P; r++) {
            int64_t nr = sr_shard_count(&s, r);
            CU_ASSERT_EQUAL(sr_eval_topk_local(p.q, p.b, p.d, p.v + sr_shard_global(&s, r, 0) * p.d, nr, &s, r,
                                               NULL, NULL, k, ws, cs + r * p.b * k, cid + r * p.b * k, &e),
                            SR_OK);
        }
        float ts[150];
        int64_t tid[150], rid[150];
        double rs[150];
        sr_eval_topk_merge(P, p.b, k, cs, cid, ts, tid);
        CU_ASSERT_EQUAL(sr_eval_topk_ref(p.q, p.b, p.d, p.v, p.n, NULL, NULL, k, rs, rid, NULL, &e), SR_OK);
        CU_ASSERT_EQUAL(memcmp(tid, rid, sizeof tid), 0);
        free(cs);
        free(cid);
        sr_topk_ws_destroy(&ws);
        sr_shard_destroy(&s);
    }
    eval_problem_free(&p);
}

/* A tile of 40000 items makes the workspace take queries 16 at a time. */
static void test_topk_query_blocks(void)
{
    eval_problem p;
    eval_problem_make(&p, 40, 5, 90, 0.2, 54);
    for (int P = 1; P <= 3; P++) {
        sr_shard s;
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, p.n, P, &e), SR_OK);
        check_topk(&p, &s, 40000, 7, "query blocks");
        sr_shard_destroy(&s);
    }
    eval_problem_free(&p);
}

/* ---- fused path on float scores ----------------------------------------- */

/* q_i . v_j in double and the float error bound of a d-term dot product
 * (2 d eps sum |q_c v_c|: any summation order, FMA or not). */
static double dot_bound_(const eval_problem *p, int64_t i, int64_t j, double *bound)
{
    double s = 0, a = 0;
    for (int64_t c = 0; c < p->d; c++) {
        double t = (double)p->q[i * p->d + c] * (double)p->v[j * p->d + c];
        s += t;
        a += fabs(t);
    }
    *bound = 2.0 * (double)p->d * FLT_EPSILON * a;
    return s;
}

static int excluded_(const eval_problem *p, int64_t i, int64_t id)
{
    for (int64_t e = p->indptr[i]; e < p->indptr[i + 1]; e++)
        if (p->excl[e] == id) return 1;
    return 0;
}

/* Row i of a path's list against the float64 reference: the same padding;
 * distinct, eligible ids; at each position an item whose exact score is
 * within the two items' bounds of the reference's (so only near-ties may
 * swap) and whose float score is within its own bound. Returns the number
 * of positions whose id differs from the reference's (swaps). */
static int check_close_row_(const eval_problem *p, int64_t i, int64_t k, const float *ts, const int64_t *tid,
                            const double *rs, const int64_t *rid)
{
    int swaps = 0;
    for (int64_t j = 0; j < k; j++) {
        CU_ASSERT_EQUAL((tid[j] < 0), (rid[j] < 0));
        if (tid[j] < 0 || rid[j] < 0) continue;
        CU_ASSERT(tid[j] < p->n && !excluded_(p, i, tid[j]));
        for (int64_t x = 0; x < j; x++) CU_ASSERT(tid[x] != tid[j]);
        double bt, br, st = dot_bound_(p, i, tid[j], &bt);
        (void)dot_bound_(p, i, rid[j], &br);
        CU_ASSERT(fabs(st - rs[j]) <= bt + br);
        CU_ASSERT(fabs((double)ts[j] - st) <= bt);
        swaps += tid[j] != rid[j];
    }
    return swaps;
}

/* Normal embeddings (scores differ from the reference in the last bits),
 * ragged query and item counts against every block shape, K = 1, 20, 100,
 * K above the items a shard holds, masks, both layouts. */
static void test_fused_float_scores(void)
{
    const int64_t dims[] = {64, 16, 33}, ns[] = {2999, 70}, ks[] = {1, 20, 100};
    for (int di = 0; di < 3; di++)
        for (int ni = 0; ni < 2; ni++) {
            eval_problem p;
            eval_problem_make(&p, 37, dims[di], ns[ni], 0.05, 60 + (uint64_t)(di * 2 + ni));
            sr_rng r;
            sr_rng_init(&r, 61, 0, 1);
            for (int64_t x = 0; x < p.b * p.d; x++) p.q[x] = (float)sr_rng_normal(&r);
            for (int64_t x = 0; x < p.n * p.d; x++) p.v[x] = (float)sr_rng_normal(&r);
            for (int P = 1; P <= 3; P += 2)
                for (int ki = 0; ki < 3; ki++) {
                    sr_shard s;
                    sr_error e;
                    sr_error_clear(&e);
                    int inter = ki == 1;
                    CU_ASSERT_EQUAL_FATAL(inter ? sr_shard_init_interleave(&s, p.n, P, &e)
                                                : sr_shard_init_block(&s, p.n, P, NULL, &e),
                                          SR_OK);
                    const int64_t k = ks[ki], bk = p.b * k;
                    float *ts = malloc((size_t)bk * sizeof(float));
                    int64_t *tid = malloc((size_t)bk * sizeof(int64_t));
                    double *rs = malloc((size_t)bk * sizeof(double));
                    int64_t *rid = malloc((size_t)bk * sizeof(int64_t));
                    CU_ASSERT_EQUAL_FATAL(
                        sr_eval_topk_ref(p.q, p.b, p.d, p.v, p.n, p.indptr, p.excl, k, rs, rid, NULL, &e), SR_OK);
                    for (int kn = 0; kn < NKERNELS; kn++) {
                        if (!kernel_runs_(kn)) continue;
                        run_topk(&p, &s, 500, k, kernels_[kn], ts, tid);
                        int swaps = 0;
                        for (int64_t i = 0; i < p.b; i++)
                            swaps += check_close_row_(&p, i, k, ts + i * k, tid + i * k, rs + i * k, rid + i * k);
                        CU_ASSERT(swaps <= bk / 100); /* near-ties are rare with normal scores */
                    }
                    free(ts);
                    free(tid);
                    free(rs);
                    free(rid);
                    sr_shard_destroy(&s);
                }
            eval_problem_free(&p);
        }
}

/* inf and NaN components: the same special scores on every path (q_c = 0
 * against inf is NaN, dropped; +inf scores tie and the id decides; -inf
 * dropped), integers elsewhere so the comparison stays exact. */
static void test_fused_special_values(void)
{
    eval_problem p;
    eval_problem_make(&p, 13, 6, 70, 0.1, 62);
    p.v[3 * 6 + 0] = INFINITY;
    p.v[7 * 6 + 1] = NAN;
    p.v[11 * 6 + 0] = -INFINITY;
    p.v[11 * 6 + 1] = INFINITY;
    p.v[40 * 6 + 2] = INFINITY;
    p.v[41 * 6 + 2] = INFINITY;
    p.v[69 * 6 + 5] = -INFINITY;
    p.q[5 * 6 + 3] = INFINITY; /* a whole query of +-inf / NaN scores */
    for (int P = 1; P <= 2; P++) {
        sr_shard s;
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, p.n, P, NULL, &e), SR_OK);
        check_topk(&p, &s, 16, 5, "special values");
        check_topk(&p, &s, 16, 69, "special values");
        sr_shard_destroy(&s);
    }
    eval_problem_free(&p);
}

/* Kernel names: unknown ones are configuration errors; a custom scorer or a
 * dimension past SR_FUSED_D_MAX takes the SGEMM path. */
static void test_kernel_choice(void)
{
    sr_error e;
    sr_error_clear(&e);
    sr_mem m;
    sr_mem_init(&m, 0);
    sr_topk_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_topk_ws_create(&ws, 8, 64, 4, &m, &e), SR_OK);
    CU_ASSERT_STRING_EQUAL(sr_topk_ws_kernel(ws, 64), "blas");
    CU_ASSERT_EQUAL(sr_topk_ws_set_kernel(ws, "fused", &e), SR_ERR_CONFIG);
    CU_ASSERT(strstr(e.msg, "expected blas, auto") != NULL);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_topk_ws_set_kernel(ws, "auto", &e), SR_OK);
    sr_cpu cpu;
    sr_cpu_detect(&cpu);
    const char *want = cpu.avx512f ? "fused-avx512" : cpu.avx2 && cpu.fma ? "fused-avx2" : "blas";
    CU_ASSERT_STRING_EQUAL(sr_topk_ws_kernel(ws, 64), want);
    CU_ASSERT_STRING_EQUAL(sr_topk_ws_kernel(ws, SR_FUSED_D_MAX + 1), "blas");
    if (!cpu.avx512f) {
        CU_ASSERT_EQUAL(sr_topk_ws_set_kernel(ws, "fused-avx512", &e), SR_ERR_CONFIG);
        sr_error_clear(&e);
    }
    CU_ASSERT_EQUAL(sr_topk_ws_set_kernel(ws, "blas", &e), SR_OK);
    CU_ASSERT_STRING_EQUAL(sr_topk_ws_kernel(ws, 64), "blas");
    sr_topk_ws_destroy(&ws);
    CU_ASSERT_EQUAL(m.current, 0);
}

static void test_merge_ties_and_padding(void)
{
    /* 3 lists, k = 4, one query. Ties on 5.0 across lists: smaller id first. */
    float cs[12] = {5, 5, 1, -INFINITY, /* list 0 */ 7, 5, 5, 0, /* list 1 */ -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t cid[12] = {8, 9, 2, -1, 30, 4, 12, 1, -1, -1, -1, -1};
    float ts[4];
    int64_t tid[4];
    sr_eval_topk_merge(3, 1, 4, cs, cid, ts, tid);
    int64_t want[4] = {30, 4, 8, 9};
    CU_ASSERT_EQUAL(memcmp(tid, want, sizeof want), 0);
    CU_ASSERT_EQUAL(ts[0], 7.0f);
    CU_ASSERT_EQUAL(ts[3], 5.0f);
    /* Fewer than k candidates overall: padded. */
    float cs2[4] = {2, -INFINITY, 3, -INFINITY};
    int64_t cid2[4] = {5, -1, 6, -1};
    float ts2[2];
    int64_t tid2[2];
    sr_eval_topk_merge(2, 1, 2, cs2, cid2, ts2, tid2);
    CU_ASSERT(tid2[0] == 6 && tid2[1] == 5);
    float cs3[4] = {2, -INFINITY, -INFINITY, -INFINITY};
    int64_t cid3[4] = {5, -1, -1, -1};
    sr_eval_topk_merge(2, 1, 2, cs3, cid3, ts2, tid2);
    CU_ASSERT(tid2[0] == 5 && tid2[1] == -1 && isinf(ts2[1]));
}

static void test_exclusion_errors(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 10, 1, NULL, &e), SR_OK);
    sr_topk_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_topk_ws_create(&ws, 2, 4, 3, NULL, &e), SR_OK);
    float q[4] = {1, 0, 0, 1}, v[20] = {0}, ts[6];
    int64_t tid[6];
    int64_t indptr[3] = {0, 2, 3}, unsorted[3] = {4, 2, 7}, range[3] = {1, 2, 10};
    CU_ASSERT_EQUAL(sr_eval_topk_local(q, 2, 2, v, 10, &s, 0, indptr, unsorted, 3, ws, ts, tid, &e), SR_ERR_DATA);
    CU_ASSERT(strstr(e.msg, "query 0") != NULL);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_eval_topk_local(q, 2, 2, v, 10, &s, 0, indptr, range, 3, ws, ts, tid, &e), SR_ERR_DATA);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_eval_topk_local(q, 2, 2, v, 10, &s, 0, indptr, range, 4, ws, ts, tid, &e), SR_ERR_INTERNAL);
    sr_topk_ws_destroy(&ws);
    sr_shard_destroy(&s);
}

/* ---- metrics ------------------------------------------------------------- */

static void test_metrics_hand_computed(void)
{
    /* test = {a, b} = {3, 7}; ranked [a, x, b] = [3, 5, 7]. */
    int64_t test[2] = {3, 7}, ranked[3] = {3, 5, 7}, ks[3] = {1, 2, 3};
    sr_metric_values v[3];
    sr_metrics_user(ranked, 3, test, 2, ks, 3, v);
    CU_ASSERT_DOUBLE_EQUAL(v[2].ndcg, (1.0 + 1.0 / log2(4.0)) / (1.0 + 1.0 / log2(3.0)), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[2].precision, 2.0 / 3.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[2].recall, 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[2].hit, 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(v[2].mrr, 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(v[2].map, (1.0 + 2.0 / 3.0) / 2.0, 1e-15); /* P@1 + P@3 over min(2, 3) */
    /* @1: a hit at rank 1; IDCG over min(2, 1) = 1 position. */
    CU_ASSERT_DOUBLE_EQUAL(v[0].ndcg, 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[0].precision, 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[0].recall, 0.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[0].map, 1.0, 1e-15); /* P@1 over min(2, 1) */
    /* @2: one hit of two. */
    CU_ASSERT_DOUBLE_EQUAL(v[1].ndcg, 1.0 / (1.0 + 1.0 / log2(3.0)), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[1].precision, 0.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[1].recall, 0.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[1].map, 0.5, 1e-15);

    /* Hit only at rank 2, |test| = 3 > K = 2: IDCG over 2 positions. */
    int64_t t2[3] = {1, 2, 9}, r2[2] = {4, 9}, k2 = 2;
    sr_metrics_user(r2, 2, t2, 3, &k2, 1, v);
    CU_ASSERT_DOUBLE_EQUAL(v[0].ndcg, (1.0 / log2(3.0)) / (1.0 + 1.0 / log2(3.0)), 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[0].precision, 0.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[0].recall, 1.0 / 3.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[0].mrr, 0.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[0].map, 0.5 / 2.0, 1e-15);

    /* A padded list (catalogue smaller than K): precision still over K. */
    int64_t r3[4] = {2, -1, -1, -1}, k4 = 4;
    sr_metrics_user(r3, 4, t2, 3, &k4, 1, v);
    CU_ASSERT_DOUBLE_EQUAL(v[0].precision, 0.25, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v[0].ndcg, 1.0 / (1.0 + 1.0 / log2(3.0) + 0.5), 1e-15);
    /* No hits. */
    int64_t r4[2] = {0, 5};
    sr_metrics_user(r4, 2, t2, 3, &k2, 1, v);
    CU_ASSERT(v[0].ndcg == 0.0 && v[0].precision == 0.0 && v[0].recall == 0.0);
    CU_ASSERT(v[0].hit == 0.0 && v[0].mrr == 0.0 && v[0].map == 0.0);
}

/* RecBole's formulation of Hit, MRR and MAP over a 0/1 relevance vector
 * (cumulative sums, in double), the reference twin of sr_metrics_user. */
static void metrics_ref(const int *rel, int64_t K, int64_t n_test, int64_t k, double *hit, double *mrr,
                        double *map)
{
    double cum = 0, sum_pre = 0;
    *hit = *mrr = 0;
    for (int64_t i = 0; i < k && i < K; i++) {
        cum += rel[i];
        sum_pre += rel[i] * cum / (double)(i + 1);
        if (rel[i] && *hit == 0) *hit = 1, *mrr = 1.0 / (double)(i + 1);
    }
    *map = sum_pre / (double)(n_test < k ? n_test : k);
}

static void test_metrics_reference(void)
{
    /* Random ranked lists over 40 items against random test sets. */
    uint64_t x = 12345;
    for (int trial = 0; trial < 500; trial++) {
        int64_t ranked[20], test[10], n_test = 0, ks[3] = {1, 5, 20};
        int in_test[40] = {0}, rel[20];
        for (int i = 0; i < 40; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            if ((x >> 33) % 6 == 0 && n_test < 10) in_test[i] = 1, test[n_test++] = i;
        }
        if (n_test == 0) test[n_test++] = 0, in_test[0] = 1;
        for (int64_t i = 0; i < 20; i++) { /* a permutation prefix of 0..39 */
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            ranked[i] = (int64_t)((i * 7 + (int64_t)(x >> 60)) % 40);
            for (int64_t j = 0; j < i; j++)
                if (ranked[j] == ranked[i]) ranked[i] = (ranked[i] + 1) % 40, j = -1;
            rel[i] = in_test[ranked[i]];
        }
        sr_metric_values v[3];
        sr_metrics_user(ranked, 20, test, n_test, ks, 3, v);
        for (int j = 0; j < 3; j++) {
            double h, m, a;
            metrics_ref(rel, 20, n_test, ks[j], &h, &m, &a);
            CU_ASSERT_DOUBLE_EQUAL(v[j].hit, h, 0);
            CU_ASSERT_DOUBLE_EQUAL(v[j].mrr, m, 1e-15);
            CU_ASSERT_DOUBLE_EQUAL(v[j].map, a, 1e-12);
        }
    }
}

static void test_metrics_accumulate(void)
{
    sr_metrics m, part, fin;
    sr_error e;
    sr_error_clear(&e);
    int64_t ks[2] = {3, 1};
    CU_ASSERT_EQUAL_FATAL(sr_metrics_init(&m, ks, 2, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_metrics_kmax(&m), 3);
    /* Three users: {3,7} ranked [3,5,7]; empty test set (skipped); {5}
     * ranked [1,2,5]. */
    int64_t ranked[9] = {3, 5, 7, 0, 1, 2, 1, 2, 5};
    int64_t indptr[4] = {0, 2, 2, 3}, tests[3] = {3, 7, 5};
    sr_metrics_add_batch(&m, ranked, 3, 3, 3, indptr, tests);
    CU_ASSERT_DOUBLE_EQUAL(m.users, 2.0, 0);
    sr_metrics_finalise(&m, &fin);
    double nd_a = (1.0 + 1.0 / log2(4.0)) / (1.0 + 1.0 / log2(3.0)), nd_b = 1.0 / log2(4.0);
    CU_ASSERT_DOUBLE_EQUAL(fin.ndcg[0], (nd_a + nd_b) / 2, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(fin.precision[0], (2.0 / 3 + 1.0 / 3) / 2, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(fin.recall[0], (1.0 + 1.0) / 2, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(fin.ndcg[1], 0.5, 1e-15);      /* @1: hit, miss */
    CU_ASSERT_DOUBLE_EQUAL(fin.recall[1], 0.25, 1e-15);   /* 1/2 and 0 */
    /* Merging two halves equals adding all; pack/unpack round-trips. */
    CU_ASSERT_EQUAL_FATAL(sr_metrics_init(&part, ks, 2, &e), SR_OK);
    sr_metrics_add(&part, ranked + 6, 3, tests + 2, 1);
    sr_metrics half;
    sr_metrics_init(&half, ks, 2, &e);
    sr_metrics_add(&half, ranked, 3, tests, 2);
    CU_ASSERT_EQUAL(sr_metrics_add(&half, ranked + 3, 3, tests, 0), 0);
    sr_metrics_merge(&half, &part);
    double a[13], b[13];
    sr_metrics_pack(&half, a);
    sr_metrics_pack(&m, b);
    CU_ASSERT_EQUAL(sr_metrics_packed_len(&m), 13);
    for (int j = 0; j < 13; j++) CU_ASSERT_DOUBLE_EQUAL(a[j], b[j], 1e-15);
    sr_metrics_unpack(&part, a);
    CU_ASSERT_DOUBLE_EQUAL(part.users, 2.0, 0);
    /* No users: finalise gives zeros, not NaN. */
    sr_metrics z;
    sr_metrics_init(&z, ks, 2, &e);
    sr_metrics_finalise(&z, &fin);
    CU_ASSERT(fin.ndcg[0] == 0.0 && fin.users == 0.0);
    /* Bad cut-offs are config errors. */
    int64_t bad = 0;
    CU_ASSERT_EQUAL(sr_metrics_init(&z, &bad, 1, &e), SR_ERR_CONFIG);
    CU_ASSERT_EQUAL(sr_metrics_init(&z, ks, 9, &e), SR_ERR_CONFIG);
}

static void test_topk_workspace_accounting(void)
{
    sr_mem m;
    sr_mem_init(&m, 0);
    sr_error e;
    sr_error_clear(&e);
    sr_topk_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_topk_ws_create(&ws, 64, 256, 20, &m, &e), SR_OK);
    CU_ASSERT_EQUAL(m.current, sr_topk_ws_bytes(64, 256, 20));
    CU_ASSERT_PTR_EQUAL(sr_topk_ws_mem(ws), &m);
    sr_topk_ws_destroy(&ws);
    CU_ASSERT_PTR_NULL(ws);
    CU_ASSERT_EQUAL(m.current, 0);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("eval", NULL, NULL);
    CU_add_test(s, "topk_block", test_topk_block);
    CU_add_test(s, "topk_uneven_empty_interleave", test_topk_uneven_empty_interleave);
    CU_add_test(s, "topk_no_exclusions_large", test_topk_no_exclusions_large);
    CU_add_test(s, "topk_query_blocks", test_topk_query_blocks);
    CU_add_test(s, "fused_float_scores", test_fused_float_scores);
    CU_add_test(s, "fused_special_values", test_fused_special_values);
    CU_add_test(s, "kernel_choice", test_kernel_choice);
    CU_add_test(s, "merge_ties_and_padding", test_merge_ties_and_padding);
    CU_add_test(s, "exclusion_errors", test_exclusion_errors);
    CU_add_test(s, "topk_workspace_accounting", test_topk_workspace_accounting);
    CU_add_test(s, "metrics_hand_computed", test_metrics_hand_computed);
    CU_add_test(s, "metrics_reference", test_metrics_reference);
    CU_add_test(s, "metrics_accumulate", test_metrics_accumulate);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }

/* test_softmax_mpi.c: sr_softmax_step on real ranks (1-4) against the float64
 * reference computed by every rank over the whole catalogue.
 *
 * Every rank generates the same global problem from a fixed seed, keeps its
 * shard's rows, runs one step, and checks: the loss (bit-identical on every
 * rank, within 1e-5 of the reference), its dV rows against the reference
 * rows, and the all-reduced partial dQ against the reference dQ. Layouts:
 * balanced blocks, uneven blocks with an empty rank, interleave; with the
 * default (SGEMM) path and with each fused kernel the CPU has, bf16 included
 * (within its derived bound, so the same at every rank count to that bound).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "comm/comm.h"
#include "comm/shard.h"
#include "core/rng.h"
#include "harness.h"
#include "loss/softmax.h"
#include "loss/softmax_mpi.h"

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

/* kernel: sr_softmax_ws_set_kernel's name (NULL: the default path);
 * precision: sr_softmax_ws_set_precision's (NULL: fp32). Allowed error: the
 * fp32 tolerance (1e-5 of the largest reference entry) plus, for bf16, the
 * bound sr_softmax_ref_bf16_bound computes from the data, entry by entry. */
static void run_case_prec(sr_shard *s, int64_t b, int64_t d, int64_t tile, uint64_t seed, const char *what,
                          const char *kernel, const char *precision)
{
    const sr_comm *c = &g_comm;
    int64_t n = s->n;
    float *q = malloc((size_t)(b * d) * sizeof(float));
    float *v = malloc((size_t)(n * d) * sizeof(float));
    int64_t *tg = malloc((size_t)b * sizeof(int64_t));
    sr_rng r;
    sr_rng_init(&r, seed, 0, 1);
    for (int64_t i = 0; i < b * d; i++) q[i] = (float)(0.8 * sr_rng_normal(&r));
    for (int64_t i = 0; i < n * d; i++) v[i] = (float)(0.8 * sr_rng_normal(&r));
    for (int64_t i = 0; i < b; i++) tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);

    int64_t nr = sr_shard_count(s, c->rank);
    float *vr = malloc((size_t)(nr * d + 1) * sizeof(float));
    for (int64_t j = 0; j < nr; j++)
        memcpy(vr + j * d, v + sr_shard_global(s, c->rank, j) * d, (size_t)d * sizeof(float));

    sr_error e;
    sr_error_clear(&e);
    sr_softmax_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, b, tile, NULL, &e), SR_OK);
    if (kernel) CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_set_kernel(ws, kernel, &e), SR_OK);
    if (precision) CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_set_precision(ws, precision, d, NULL, &e), SR_OK);
    float *dq = malloc((size_t)(b * d) * sizeof(float));
    float *dv = malloc((size_t)(nr * d + 1) * sizeof(float));
    double loss = NAN;
    sr_status st = sr_softmax_step(c, q, b, d, vr, nr, s, tg, ws, &loss, dq, dv, &e);
    CU_ASSERT_EQUAL(st, SR_OK);
    if (st) fprintf(stderr, "[rank %d] %s: %s\n", c->rank, what, e.msg);

    double ref_loss;
    double *rdq = malloc((size_t)(b * d) * sizeof(double));
    double *rdv = malloc((size_t)(n * d) * sizeof(double));
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ref(q, b, d, v, n, tg, &ref_loss, rdq, rdv, &e), SR_OK);
    double bl = 0, *bdq = calloc((size_t)(b * d), sizeof(double)), *bdv = calloc((size_t)(n * d), sizeof(double));
    if (precision && !strcmp(precision, "bf16"))
        CU_ASSERT_EQUAL_FATAL(sr_softmax_ref_bf16_bound(q, b, d, v, n, tg, &bl, bdq, bdv, &e), SR_OK);
    CU_ASSERT(fabs(loss - ref_loss) <= bl + 1e-5 * fmax(1.0, fabs(ref_loss)));

    /* Same loss bits on every rank: max and min over ranks agree. */
    double lmax = loss, lmin = -loss;
    CU_ASSERT_EQUAL(sr_comm_allreduce_max(c, &lmax, 1, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_comm_allreduce_max(c, &lmin, 1, &e), SR_OK);
    CU_ASSERT(lmax == -lmin);

    /* dV rows of this shard against the reference rows. */
    /* num: the worst error / allowed ratio; den: the largest reference entry. */
    double num = 0, den = 0;
    for (int64_t j = 0; j < n * d; j++) den = fmax(den, fabs(rdv[j]));
    for (int64_t j = 0; j < nr; j++)
        for (int64_t k = 0; k < d; k++) {
            int64_t g = sr_shard_global(s, c->rank, j) * d + k;
            num = fmax(num, fabs(dv[j * d + k] - rdv[g]) / (bdv[g] + 1e-5 * den));
        }
    CU_ASSERT(num <= 1.0);
    if (!(num <= 1.0)) fprintf(stderr, "[rank %d] %s: dv err / allowed %.3g\n", c->rank, what, num);

    /* Sum of the partial dQ over ranks against the reference. */
    double *sq = malloc((size_t)(b * d) * sizeof(double));
    for (int64_t k = 0; k < b * d; k++) sq[k] = dq[k];
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum(c, sq, b * d, &e), SR_OK);
    num = den = 0;
    for (int64_t k = 0; k < b * d; k++) den = fmax(den, fabs(rdq[k]));
    for (int64_t k = 0; k < b * d; k++) num = fmax(num, fabs(sq[k] - rdq[k]) / (bdq[k] + 1e-5 * den));
    CU_ASSERT(num <= 1.0);
    if (!(num <= 1.0)) fprintf(stderr, "[rank %d] %s: dq err / allowed %.3g\n", c->rank, what, num);

    free(sq);
    free(bdq);
    free(bdv);
    free(rdq);
    free(rdv);
    free(dq);
    free(dv);
    sr_softmax_ws_destroy(&ws);
    free(vr);
    free(q);
    free(v);
    free(tg);
}

static void run_case(sr_shard *s, int64_t b, int64_t d, int64_t tile, uint64_t seed, const char *what)
{
    run_case_prec(s, b, d, tile, seed, what, NULL, NULL);
}

static void test_step_block(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 53, sr_test_size(), NULL, &e), SR_OK);
    run_case(&s, 9, 12, 5, 101, "balanced block");
    run_case(&s, 9, 12, 64, 102, "balanced block, one tile");
    sr_shard_destroy(&s);
}

static void test_step_uneven_empty(void)
{
    /* Rank 1 holds nothing; rank 0 holds most of it. */
    int p = sr_test_size();
    int64_t counts[4] = {0, 0, 0, 0}, n = 41;
    counts[0] = p == 1 ? n : 30;
    for (int r = 2; r < p; r++) counts[r] = r == p - 1 ? n - 30 - 3 * (p - 3) : 3;
    if (p == 2) counts[0] = n;
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, n, p, counts, &e), SR_OK);
    run_case(&s, 7, 8, 4, 103, "uneven block with an empty rank");
    sr_shard_destroy(&s);
}

static void test_step_interleave(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, 30, sr_test_size(), &e), SR_OK);
    run_case(&s, 6, 7, 3, 104, "interleave");
    sr_shard_destroy(&s);
}

static void test_step_bad_target_everywhere(void)
{
    /* A bad target id is seen by every rank before the collective: all
     * return SR_ERR_DATA, nobody hangs. */
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 10, sr_test_size(), NULL, &e), SR_OK);
    int64_t nr = sr_shard_count(&s, g_comm.rank);
    float q[4] = {1, 2, 3, 4}, v[40] = {0}, dq[4], dv[40];
    int64_t tg[2] = {3, 10};
    sr_softmax_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, 2, 4, NULL, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_softmax_step(&g_comm, q, 2, 2, v, nr, &s, tg, ws, NULL, dq, dv, &e), SR_ERR_DATA);
    sr_softmax_ws_destroy(&ws);
    sr_shard_destroy(&s);
}

/* The fused kernels (each variant the CPU has; the same on every rank, one
 * machine) on balanced, uneven-with-an-empty-rank and interleaved shards,
 * with b and n_local off the register blocks. */
static void test_step_fused(void)
{
    static const char *const names[] = {"fused-avx512", "fused-avx2", "fused-avx512"};
    static const char *const precs[] = {"fp32", "fp32", "bf16"};
    static const char *const what[] = {"fused-avx512", "fused-avx2", "fused-avx512 bf16"};
    int p = sr_test_size();
    for (int k = 0; k < 3; k++) {
        sr_softmax_ws *ws = NULL;
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL_FATAL(sr_softmax_ws_create(&ws, 1, 16, NULL, &e), SR_OK);
        sr_status ok = sr_softmax_ws_set_kernel(ws, names[k], &e);
        if (ok == SR_OK) ok = sr_softmax_ws_set_precision(ws, precs[k], 16, NULL, &e);
        sr_softmax_ws_destroy(&ws);
        if (ok != SR_OK) {
            if (g_comm.rank == 0) fprintf(stderr, "  SKIP %s: %s\n", names[k], e.msg);
            continue;
        }
        sr_shard s;
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 203, p, NULL, &e), SR_OK);
        run_case_prec(&s, 13, 32, 4096, 105, what[k], names[k], precs[k]);
        sr_shard_destroy(&s);
        int64_t counts[4] = {0, 0, 0, 0};
        counts[0] = 150; /* rank 1 (if any) holds nothing */
        for (int r = 2; r < p; r++) counts[r] = 53 / (p - 2) + (r == p - 1 ? 53 % (p - 2) : 0);
        if (p <= 2) counts[0] = 203;
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 203, p, counts, &e), SR_OK);
        run_case_prec(&s, 7, 16, 4096, 106, what[k], names[k], precs[k]);
        sr_shard_destroy(&s);
        CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, 97, p, &e), SR_OK);
        run_case_prec(&s, 9, 64, 4096, 107, what[k], names[k], precs[k]);
        sr_shard_destroy(&s);
    }
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("softmax_mpi", suite_init, suite_clean);
    CU_add_test(s, "step_block", test_step_block);
    CU_add_test(s, "step_uneven_empty", test_step_uneven_empty);
    CU_add_test(s, "step_interleave", test_step_interleave);
    CU_add_test(s, "step_bad_target_everywhere", test_step_bad_target_everywhere);
    CU_add_test(s, "step_fused", test_step_fused);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }

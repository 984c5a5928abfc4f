/* test_lightgcn.c: LightGCN propagation on one process.
 *
 *  - the float64 reference reproduces hand-computed values on a 2 x 3 graph
 *    (an item with no edges, users of degree 1 and 2), and so does the
 *    distributed path at P = 1;
 *  - gradient check: L = sum(W_u * u_out) + sum(W_i * i_out); central finite
 *    differences of the reference forward (float64) on every coordinate of
 *    eu and ei equal the reference backward (the reverse-mode recursion with
 *    the explicit transpose), and the float backward (forward of the
 *    gradients) equals the reference backward within 1e-5;
 *  - the float path equals the reference for d = 1, 7, 8, 64, 77, 136 (every
 *    kernel tier and tail) and K = 0..3, with custom layer weights;
 *  - weights (1, 0, .., 0) give the input back bit for bit;
 *  - errors: negative layers, non-finite weights (SR_ERR_CONFIG), an id out
 *    of range, an inconsistent degree array (SR_ERR_DATA), *out NULL after
 *    each; memory accounting returns to zero after destroy.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "harness.h"
#include "models/lightgcn.h"

static sr_comm g_comm;

static int suite_init(void)
{
    sr_error e;
    sr_error_clear(&e);
    return sr_comm_init(&g_comm, MPI_COMM_SELF, &e) == SR_OK ? 0 : 1;
}

static int suite_clean(void)
{
    sr_comm_destroy(&g_comm);
    return 0;
}

static uint64_t mix_(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unif_(uint64_t *s) { return (double)(mix_(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

/* Random graph with an edgeless user (every 4th) and edgeless item 0. */
static int64_t random_graph_(int64_t nu, int64_t ni, uint64_t seed, int64_t *indptr, int64_t *items)
{
    uint64_t s = seed;
    int64_t e = 0;
    indptr[0] = 0;
    for (int64_t u = 0; u < nu; u++) {
        int64_t want = u % 4 == 3 ? 0 : 1 + (int64_t)(mix_(&s) % 4);
        for (int64_t k = 0; k < want; k++) {
            int64_t i = 1 + (int64_t)(mix_(&s) % (uint64_t)(ni - 1));
            int dup = 0;
            for (int64_t f = indptr[u]; f < e; f++) dup |= items[f] == i;
            if (!dup) items[e++] = i;
        }
        indptr[u + 1] = e;
    }
    return e;
}

/* Float path on one rank (block shard of everything). */
static sr_status run_fast_(int64_t nu, int64_t ni, const int64_t *indptr, const int64_t *items, int64_t layers,
                           const double *alpha, int64_t d, const float *eu, const float *ei, float *ou, float *oi,
                           const float *gu, const float *gi, float *dgu, float *dgi, sr_mem *mem)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    if (sr_shard_init_block(&s, ni, 1, NULL, &e) != SR_OK) return e.code;
    sr_lgcn *g = NULL;
    sr_status st = sr_lgcn_create(&g, &g_comm, &s, 0, nu, nu, indptr, items, NULL, layers, alpha, d, mem, &e);
    if (st == SR_OK) st = sr_lgcn_forward(g, eu, ei, ou, oi, &e);
    if (st == SR_OK && gu) st = sr_lgcn_backward(g, gu, gi, dgu, dgi, &e);
    sr_lgcn_destroy(&g);
    sr_shard_destroy(&s);
    return st;
}

static void test_hand_values(void)
{
    /* u0 - {i0, i1}, u1 - {i1}; i2 has no edges. Degrees u: 2, 1; i: 1, 2, 0. */
    const int64_t indptr[3] = {0, 2, 3}, items[3] = {0, 1, 1};
    const double eu[2] = {1, 2}, ei[3] = {3, 5, 7};
    double ou[2], oi[3];
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_FATAL(sr_lgcn_ref_forward(2, 3, indptr, items, 1, NULL, 1, eu, ei, ou, oi, &e) == SR_OK);
    const double r2 = sqrt(2.0);
    const double l1u[2] = {3 / r2 + 5 / 2.0, 5 / r2}, l1i[3] = {1 / r2, 1 / 2.0 + 2 / r2, 0};
    for (int k = 0; k < 2; k++) SR_ASSERT_CLOSE(ou[k], 0.5 * (eu[k] + l1u[k]), 1e-14);
    for (int k = 0; k < 3; k++) SR_ASSERT_CLOSE(oi[k], 0.5 * (ei[k] + l1i[k]), 1e-14);
    CU_ASSERT_EQUAL(oi[2], 3.5); /* no edges: only its own layer-0 share */

    const float feu[2] = {1, 2}, fei[3] = {3, 5, 7};
    float fou[2], foi[3];
    CU_ASSERT_FATAL(run_fast_(2, 3, indptr, items, 1, NULL, 1, feu, fei, fou, foi, NULL, NULL, NULL, NULL, NULL) ==
                    SR_OK);
    for (int k = 0; k < 2; k++) SR_ASSERT_CLOSE(fou[k], ou[k], 1e-6);
    for (int k = 0; k < 3; k++) SR_ASSERT_CLOSE(foi[k], oi[k], 1e-6);
}

static double objective_(int64_t nu, int64_t ni, const int64_t *indptr, const int64_t *items, int64_t layers,
                         const double *alpha, int64_t d, const double *eu, const double *ei, const double *wu,
                         const double *wi, double *ou, double *oi)
{
    sr_error e;
    sr_error_clear(&e);
    if (sr_lgcn_ref_forward(nu, ni, indptr, items, layers, alpha, d, eu, ei, ou, oi, &e) != SR_OK) return NAN;
    double l = 0.0;
    for (int64_t j = 0; j < nu * d; j++) l += wu[j] * ou[j];
    for (int64_t j = 0; j < ni * d; j++) l += wi[j] * oi[j];
    return l;
}

static double max_abs_diff_(const double *a, const double *b, int64_t n)
{
    double m = 0.0;
    for (int64_t j = 0; j < n; j++) m = fmax(m, fabs(a[j] - b[j]));
    return m;
}

static double max_abs_(const double *a, int64_t n)
{
    double m = 0.0;
    for (int64_t j = 0; j < n; j++) m = fmax(m, fabs(a[j]));
    return m;
}

static void test_gradient_check(void)
{
    enum { NU = 9, NI = 11, D = 3, K = 3 };
    int64_t indptr[NU + 1], items[NU * 4];
    random_graph_(NU, NI, 5, indptr, items);
    const double alpha[K + 1] = {0.1, 0.2, 0.3, 0.4};
    uint64_t s = 77;
    double eu[NU * D], ei[NI * D], wu[NU * D], wi[NI * D], ou[NU * D], oi[NI * D];
    double geu[NU * D], gei[NI * D], fdu[NU * D], fdi[NI * D];
    for (int j = 0; j < NU * D; j++) eu[j] = unif_(&s), wu[j] = unif_(&s);
    for (int j = 0; j < NI * D; j++) ei[j] = unif_(&s), wi[j] = unif_(&s);
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_FATAL(sr_lgcn_ref_backward(NU, NI, indptr, items, K, alpha, D, wu, wi, geu, gei, &e) == SR_OK);
    const double h = 1e-3;
    for (int j = 0; j < NU * D + NI * D; j++) {
        double *x = j < NU * D ? &eu[j] : &ei[j - NU * D], x0 = *x;
        *x = x0 + h;
        double lp = objective_(NU, NI, indptr, items, K, alpha, D, eu, ei, wu, wi, ou, oi);
        *x = x0 - h;
        double lm = objective_(NU, NI, indptr, items, K, alpha, D, eu, ei, wu, wi, ou, oi);
        *x = x0;
        (j < NU * D ? fdu : fdi)[j < NU * D ? j : j - NU * D] = (lp - lm) / (2 * h);
    }
    /* L is linear in (eu, ei): differences are exact up to rounding. */
    CU_ASSERT(max_abs_diff_(fdu, geu, NU * D) < 1e-9);
    CU_ASSERT(max_abs_diff_(fdi, gei, NI * D) < 1e-9);
    /* The edgeless item 0 gets alpha_0 W_i only; user 3 alpha_0 W_u only. */
    for (int k = 0; k < D; k++) {
        SR_ASSERT_CLOSE(gei[k], alpha[0] * wi[k], 1e-14);
        SR_ASSERT_CLOSE(geu[3 * D + k], alpha[0] * wu[3 * D + k], 1e-14);
    }
    /* ...and the others do not: the check is not vacuous. */
    CU_ASSERT(fabs(geu[0] - alpha[0] * wu[0]) > 1e-3);

    /* Float backward (forward of W) against the reference gradient. */
    float feu[NU * D], fei[NI * D], fwu[NU * D], fwi[NI * D], fou[NU * D], foi[NI * D], fgu[NU * D], fgi[NI * D];
    for (int j = 0; j < NU * D; j++) feu[j] = (float)eu[j], fwu[j] = (float)wu[j];
    for (int j = 0; j < NI * D; j++) fei[j] = (float)ei[j], fwi[j] = (float)wi[j];
    CU_ASSERT_FATAL(run_fast_(NU, NI, indptr, items, K, alpha, D, feu, fei, fou, foi, fwu, fwi, fgu, fgi, NULL) ==
                    SR_OK);
    double scale = fmax(max_abs_(geu, NU * D), max_abs_(gei, NI * D));
    for (int j = 0; j < NU * D; j++) CU_ASSERT(fabs(fgu[j] - geu[j]) <= 1e-5 * scale);
    for (int j = 0; j < NI * D; j++) CU_ASSERT(fabs(fgi[j] - gei[j]) <= 1e-5 * scale);
}

static void test_kernel_tiers(void)
{
    enum { NU = 30, NI = 25 };
    int64_t indptr[NU + 1], items[NU * 4];
    random_graph_(NU, NI, 11, indptr, items);
    const int64_t dims[6] = {1, 7, 8, 64, 77, 136};
    const double alpha[4] = {0.5, -0.25, 1.5, 0.125};
    for (int t = 0; t < 6; t++)
        for (int64_t layers = 0; layers <= 3; layers++) {
            const int64_t d = dims[t];
            const double *al = layers == 3 ? alpha : NULL;
            uint64_t s = 1000 + (uint64_t)(t * 7 + layers);
            float *eu = malloc((size_t)(NU * d) * sizeof *eu), *ei = malloc((size_t)(NI * d) * sizeof *ei);
            float *ou = malloc((size_t)(NU * d) * sizeof *ou), *oi = malloc((size_t)(NI * d) * sizeof *oi);
            float *gu = malloc((size_t)(NU * d) * sizeof *gu), *gi = malloc((size_t)(NI * d) * sizeof *gi);
            double *deu = malloc((size_t)(NU * d) * sizeof *deu), *dei = malloc((size_t)(NI * d) * sizeof *dei);
            double *rou = malloc((size_t)(NU * d) * sizeof *rou), *roi = malloc((size_t)(NI * d) * sizeof *roi);
            for (int64_t j = 0; j < NU * d; j++) deu[j] = eu[j] = (float)unif_(&s);
            for (int64_t j = 0; j < NI * d; j++) dei[j] = ei[j] = (float)unif_(&s);
            sr_error e;
            sr_error_clear(&e);
            CU_ASSERT_FATAL(sr_lgcn_ref_forward(NU, NI, indptr, items, layers, al, d, deu, dei, rou, roi, &e) == SR_OK);
            sr_mem mem;
            sr_mem_init(&mem, 0);
            CU_ASSERT_FATAL(run_fast_(NU, NI, indptr, items, layers, al, d, eu, ei, ou, oi, eu, ei, gu, gi, &mem) ==
                            SR_OK);
            CU_ASSERT_EQUAL(mem.current, 0);
            CU_ASSERT(mem.peak > 0);
            double scale = fmax(max_abs_(rou, NU * d), max_abs_(roi, NI * d)), m = 0.0;
            for (int64_t j = 0; j < NU * d; j++) m = fmax(m, fabs(ou[j] - rou[j]));
            for (int64_t j = 0; j < NI * d; j++) m = fmax(m, fabs(oi[j] - roi[j]));
            CU_ASSERT(m <= 1e-5 * scale);
            /* backward of the same tables = forward (A symmetric): same bits */
            CU_ASSERT(memcmp(gu, ou, (size_t)(NU * d) * sizeof *gu) == 0);
            CU_ASSERT(memcmp(gi, oi, (size_t)(NI * d) * sizeof *gi) == 0);
            free(eu), free(ei), free(ou), free(oi), free(gu), free(gi), free(deu), free(dei), free(rou), free(roi);
        }
}

static void test_identity_weights(void)
{
    enum { NU = 12, NI = 10, D = 9, K = 2 };
    int64_t indptr[NU + 1], items[NU * 4];
    random_graph_(NU, NI, 3, indptr, items);
    const double alpha[K + 1] = {1, 0, 0};
    uint64_t s = 5;
    float eu[NU * D], ei[NI * D], ou[NU * D], oi[NI * D];
    for (int j = 0; j < NU * D; j++) eu[j] = (float)unif_(&s);
    for (int j = 0; j < NI * D; j++) ei[j] = (float)unif_(&s);
    CU_ASSERT_FATAL(run_fast_(NU, NI, indptr, items, K, alpha, D, eu, ei, ou, oi, NULL, NULL, NULL, NULL, NULL) ==
                    SR_OK);
    CU_ASSERT(memcmp(eu, ou, sizeof eu) == 0);
    CU_ASSERT(memcmp(ei, oi, sizeof ei) == 0);
}

static void test_errors(void)
{
    const int64_t indptr[3] = {0, 2, 3}, items[3] = {0, 1, 1}, bad[3] = {0, 5, 1};
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_FATAL(sr_shard_init_block(&s, 3, 1, NULL, &e) == SR_OK);
    sr_lgcn *g = (sr_lgcn *)&s; /* must be reset to NULL on failure */
    CU_ASSERT_EQUAL(sr_lgcn_create(&g, &g_comm, &s, 0, 2, 2, indptr, items, NULL, -1, NULL, 4, NULL, &e),
                    SR_ERR_CONFIG);
    CU_ASSERT(g == NULL);
    const double nanw[2] = {0.5, NAN};
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_lgcn_create(&g, &g_comm, &s, 0, 2, 2, indptr, items, NULL, 1, nanw, 4, NULL, &e),
                    SR_ERR_CONFIG);
    CU_ASSERT(strstr(e.msg, "layer_weights") != NULL);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_lgcn_create(&g, &g_comm, &s, 0, 2, 2, indptr, bad, NULL, 1, NULL, 4, NULL, &e), SR_ERR_DATA);
    CU_ASSERT(g == NULL);
    CU_ASSERT(strstr(e.msg, "item 5") != NULL);
    const int64_t deg_low[3] = {1, 1, 0}; /* item 1 has 2 edges */
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_lgcn_create(&g, &g_comm, &s, 0, 2, 2, indptr, items, deg_low, 1, NULL, 4, NULL, &e),
                    SR_ERR_DATA);
    CU_ASSERT(g == NULL);
    const int64_t decreasing[3] = {0, 2, 1};
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_lgcn_create(&g, &g_comm, &s, 0, 2, 2, decreasing, items, NULL, 1, NULL, 4, NULL, &e),
                    SR_ERR_DATA);
    /* a correct degree array is accepted, bigger degrees are fine too (the
     * array may count edges other ranks hold) */
    const int64_t deg_ok[3] = {1, 2, 0};
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_lgcn_create(&g, &g_comm, &s, 0, 2, 2, indptr, items, deg_ok, 1, NULL, 4, NULL, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_lgcn_halo_rows(g), 2);
    CU_ASSERT_EQUAL(sr_lgcn_local_edges(g), 3);
    CU_ASSERT_EQUAL(sr_lgcn_alpha(g, 1), 0.5);
    CU_ASSERT_EQUAL(sr_lgcn_round_bytes(g), 0);
    sr_lgcn_destroy(&g);
    CU_ASSERT(g == NULL);
    sr_lgcn_destroy(&g); /* NULL is a no-op */
    sr_shard_destroy(&s);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("lightgcn", suite_init, suite_clean);
    CU_add_test(s, "hand-computed 2 x 3 graph (reference and float path)", test_hand_values);
    CU_add_test(s, "finite differences = reference backward = float backward", test_gradient_check);
    CU_add_test(s, "float path = reference for every kernel tier, K 0..3", test_kernel_tiers);
    CU_add_test(s, "weights (1, 0, 0) return the input bit for bit", test_identity_weights);
    CU_add_test(s, "errors and accounting", test_errors);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }

/* test_jacobian_mpi.c: spectral norms of the prediction maps' Jacobians by
 * distributed power iteration (1-4 ranks) against dense float64 references.
 *
 * Checks: (1) the dense analytic Jacobian (sr_jacobian_dense_ref) equals a
 * central finite difference of the reference map for softmax, sparsemax,
 * entmax 1.5 / 1.3 and rankmax (this validates the rankmax derivation, scale
 * term included); (2) sr_jacobian_norms equals the largest singular value of
 * that dense J (power iteration on J^T J, 20000 steps) within 1e-4, with
 * the reference support sizes, on balanced, uneven-with-an-empty-rank and
 * interleaved shards and block sizes of one query; (3) the known bounds:
 * softmax <= 1/2, sparsemax exactly 1 when |S| >= 2 and 0 when |S| = 1,
 * entmax <= max p^(2 - alpha) <= 1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/rng.h"
#include "harness.h"
#include "analysis/jacobian.h"
#include "loss/sparsemap.h"

static sr_comm g_comm;

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

static double sigma_max(const double *J, int64_t n)
{
    double *x = malloc((size_t)n * sizeof(double)), *y = malloc((size_t)n * sizeof(double));
    double *w = malloc((size_t)n * sizeof(double)), est = 0.0;
    for (int64_t j = 0; j < n; j++) x[j] = 1.0 + 0.01 * (double)j;
    for (int it = 0; it < 20000; it++) {
        double nw = 0.0;
        for (int64_t j = 0; j < n; j++) {
            y[j] = 0.0;
            for (int64_t k = 0; k < n; k++) y[j] += J[j * n + k] * x[k];
        }
        for (int64_t k = 0; k < n; k++) {
            w[k] = 0.0;
            for (int64_t j = 0; j < n; j++) w[k] += J[j * n + k] * y[j];
            nw += w[k] * w[k];
        }
        nw = sqrt(nw);
        if (nw == 0.0) return 0.0;
        est = sqrt(nw);
        for (int64_t k = 0; k < n; k++) x[k] = w[k] / nw;
    }
    free(x);
    free(y);
    free(w);
    return est;
}

typedef struct jk {
    sr_loss_kind kind;
    double alpha;
    const char *name;
} jk;
static const jk KINDS[] = {{SR_LOSS_SOFTMAX, 1.0, "softmax"},   {SR_LOSS_SPARSEMAX, 2.0, "sparsemax"},
                           {SR_LOSS_ENTMAX, 1.5, "entmax1.5"},  {SR_LOSS_ENTMAX, 1.3, "entmax1.3"},
                           {SR_LOSS_RANKMAX, 2.0, "rankmax"}};

static void test_dense_matches_fd(void)
{
    const int64_t n = 9;
    sr_rng r;
    sr_rng_init(&r, 11, 0, 1);
    double z[9], zp[9], pp[9], pm[9], J[81];
    sr_error e;
    sr_error_clear(&e);
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        for (int trial = 0; trial < 4; trial++) {
            for (int64_t j = 0; j < n; j++) z[j] = 1.5 * sr_rng_normal(&r);
            int64_t t = (int64_t)sr_rng_below(&r, (uint64_t)n);
            CU_ASSERT_EQUAL_FATAL(sr_jacobian_dense_ref(KINDS[k].kind, KINDS[k].alpha, z, n, t, J, &e), SR_OK);
            double h = 1e-6, worst = 0.0;
            sr_smap_params prm = sr_smap_params_make(KINDS[k].kind, KINDS[k].alpha, 1e-15);
            for (int64_t c = 0; c < n; c++) {
                memcpy(zp, z, sizeof z);
                zp[c] += h;
                if (KINDS[k].kind == SR_LOSS_SOFTMAX) {
                    double m = -INFINITY, s1 = 0.0, s2 = 0.0;
                    for (int64_t j = 0; j < n; j++) m = fmax(m, zp[j]);
                    for (int64_t j = 0; j < n; j++) s1 += (pp[j] = exp(zp[j] - m));
                    for (int64_t j = 0; j < n; j++) pp[j] /= s1;
                    zp[c] -= 2 * h;
                    for (int64_t j = 0; j < n; j++) s2 += (pm[j] = exp(zp[j] - m));
                    for (int64_t j = 0; j < n; j++) pm[j] /= s2;
                } else {
                    sr_sparsemap_ref_map(&prm, zp, n, t, pp, NULL, NULL, NULL, NULL, &e);
                    zp[c] -= 2 * h;
                    sr_sparsemap_ref_map(&prm, zp, n, t, pm, NULL, NULL, NULL, NULL, &e);
                }
                for (int64_t j = 0; j < n; j++) {
                    if (KINDS[k].kind == SR_LOSS_RANKMAX && j == t) continue; /* p_t: boundary, 0 */
                    worst = fmax(worst, fabs((pp[j] - pm[j]) / (2 * h) - J[j * n + c]));
                }
            }
            CU_ASSERT(worst < 1e-5);
            if (!(worst < 1e-5)) fprintf(stderr, "%s trial %d: dense J vs FD %.3g\n", KINDS[k].name, trial, worst);
        }
    }
}

static void run_layout(const sr_shard *s, const char *layout)
{
    const sr_comm *c = &g_comm;
    const int64_t n = s->n, d = 6, b = 5, nr = sr_shard_count(s, c->rank);
    float *q = malloc((size_t)(b * d) * sizeof(float)), *v = malloc((size_t)(n * d) * sizeof(float));
    float *vr = malloc((size_t)(nr * d + 1) * sizeof(float));
    int64_t tg[5];
    sr_rng r;
    sr_rng_init(&r, 21, 0, 1);
    for (int64_t i = 0; i < n * d; i++) v[i] = (float)(0.7 * sr_rng_normal(&r));
    for (int64_t i = 0; i < b * d; i++) q[i] = (float)(0.7 * sr_rng_normal(&r));
    for (int64_t i = 0; i < b; i++) tg[i] = (int64_t)sr_rng_below(&r, (uint64_t)n);
    /* Query 4: item 2 far above everything (support of one for the sparse maps). */
    for (int64_t k = 0; k < d; k++) {
        q[4 * d + k] = 1.0f;
        v[2 * d + k] = 30.0f;
    }
    for (int64_t j = 0; j < nr; j++)
        memcpy(vr + j * d, v + sr_shard_global(s, c->rank, j) * d, (size_t)d * sizeof(float));
    double *z = malloc((size_t)n * sizeof(double)), *J = malloc((size_t)(n * n) * sizeof(double));
    double *p = malloc((size_t)n * sizeof(double));
    sr_error e;
    sr_error_clear(&e);
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        sr_jacobian_opts o = {KINDS[k].kind, KINDS[k].alpha, 1, 5000, 1e-12, 1e-12, 0, 99, NULL};
        double norm[5];
        int64_t sup[5], it[5];
        for (int pass = 0; pass < 2; pass++) {
            o.mem_budget = pass ? 1 : 0; /* pass 1: blocks of one query */
            CU_ASSERT_EQUAL_FATAL(sr_jacobian_norms(c, q, b, d, vr, nr, s, tg, &o, norm, sup, it, &e), SR_OK);
            for (int64_t i = 0; i < b; i++) {
                for (int64_t j = 0; j < n; j++) {
                    double acc = 0.0;
                    for (int64_t kk = 0; kk < d; kk++) acc += (double)q[i * d + kk] * (double)v[j * d + kk];
                    z[j] = acc;
                }
                CU_ASSERT_EQUAL_FATAL(sr_jacobian_dense_ref(KINDS[k].kind, KINDS[k].alpha, z, n, tg[i], J, &e), SR_OK);
                double ref = sigma_max(J, n);
                int ok = fabs(norm[i] - ref) <= 1e-4 * fmax(ref, 1e-3);
                CU_ASSERT(ok);
                if (!ok)
                    fprintf(stderr, "[rank %d] %s %s q%lld: norm %.8g ref %.8g (iters %lld)\n", c->rank, KINDS[k].name,
                            layout, (long long)i, norm[i], ref, (long long)it[i]);
                if (KINDS[k].kind == SR_LOSS_SOFTMAX) {
                    CU_ASSERT(norm[i] <= 0.5 + 1e-9);
                    CU_ASSERT_EQUAL(sup[i], n);
                } else if (KINDS[k].kind != SR_LOSS_RANKMAX) {
                    sr_smap_params prm = sr_smap_params_make(KINDS[k].kind, KINDS[k].alpha, 1e-14);
                    int64_t rs;
                    sr_sparsemap_ref_map(&prm, z, n, tg[i], p, NULL, &rs, NULL, NULL, &e);
                    CU_ASSERT_EQUAL(sup[i], rs);
                    if (KINDS[k].kind == SR_LOSS_SPARSEMAX) CU_ASSERT(fabs(norm[i] - (rs >= 2 ? 1.0 : 0.0)) <= 1e-9);
                    double gmax = 0.0;
                    for (int64_t j = 0; j < n; j++)
                        if (p[j] > 0.0) gmax = fmax(gmax, pow(p[j], 2.0 - prm.alpha));
                    CU_ASSERT(norm[i] <= gmax + 1e-9 && gmax <= 1.0 + 1e-12);
                    if (i == 4) CU_ASSERT_EQUAL(sup[i], 1); /* far above: support of one, norm 0 */
                }
            }
        }
    }
    free(z);
    free(J);
    free(p);
    free(q);
    free(v);
    free(vr);
}

static void test_norms_block(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 23, sr_test_size(), NULL, &e), SR_OK);
    run_layout(&s, "block");
    sr_shard_destroy(&s);
}

static void test_norms_uneven_empty(void)
{
    int p = sr_test_size();
    int64_t counts[4] = {0, 0, 0, 0}, n = 19;
    counts[0] = p <= 2 ? n : 12;
    for (int r = 2; r < p; r++) counts[r] = r == p - 1 ? n - 12 - 3 * (p - 3) : 3;
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, n, p, counts, &e), SR_OK);
    run_layout(&s, "uneven, empty rank");
    sr_shard_destroy(&s);
}

static void test_norms_interleave(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, 17, sr_test_size(), &e), SR_OK);
    run_layout(&s, "interleave");
    sr_shard_destroy(&s);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("jacobian_mpi", suite_init, suite_clean);
    CU_add_test(s, "dense_matches_fd", test_dense_matches_fd);
    CU_add_test(s, "norms_block", test_norms_block);
    CU_add_test(s, "norms_uneven_empty", test_norms_uneven_empty);
    CU_add_test(s, "norms_interleave", test_norms_interleave);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }

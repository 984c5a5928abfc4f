/* test_sampler_mpi.c: the shard-local sampler on real ranks (1-4).
 *
 * Every rank builds its sampler for its own shard, draws its quota each step
 * from its own stream with the quota uniform from the replicated stream, and
 * the per-item counts are summed over ranks. Facts: the quotas sum to k on
 * every step (all-reduce), the counts pass a chi-square test against k Q(j)
 * (uniform and popularity, uneven blocks with an empty rank, interleave), and
 * fail it against a wrong Q; k = N uniform draws every item exactly once.
 * Chi-square as in tests/unit/test_sampler.c (Wilson-Hilferty, p > 1e-4,
 * fixed seeds, E_j >= 20).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "comm/comm.h"
#include "comm/shard.h"
#include "harness.h"
#include "loss/sampler.h"

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

static double chi2_p(double x, double df)
{
    double z = (cbrt(x / df) - (1.0 - 2.0 / (9.0 * df))) / sqrt(2.0 / (9.0 * df));
    return 0.5 * erfc(z / sqrt(2.0));
}

/* Uneven blocks: rank 1 empty (p >= 2), rank 0 most of it. */
static void uneven(sr_shard *s, int64_t n)
{
    int p = sr_test_size();
    int64_t counts[4] = {0, 0, 0, 0};
    counts[0] = n;
    for (int r = 2; r < p; r++) {
        counts[r] = 4;
        counts[0] -= 4;
    }
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(s, n, p, counts, &e), SR_OK);
}

/* Counts of `steps` draws of k, summed over ranks (same on every rank). */
static void draw_counts(const sr_shard *s, sr_proposal kind, const int64_t *pop, double beta, int64_t k,
                        int64_t steps, double *counts)
{
    const sr_comm *c = &g_comm;
    sr_error e;
    sr_error_clear(&e);
    sr_sampler *sm = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_sampler_create(&sm, s, c->rank, kind, pop, beta, NULL, &e), SR_OK);
    int64_t *rows = malloc((size_t)k * sizeof(int64_t));
    int64_t *kr_all = malloc((size_t)steps * sizeof(int64_t));
    memset(counts, 0, (size_t)s->n * sizeof(double));
    for (int64_t t = 0; t < steps; t++) {
        sr_rng ss, rs;
        sr_sampler_shared_stream(&ss, 23, t + 1);
        sr_sampler_stream(&rs, 23, c->rank, t + 1);
        int64_t kr = sr_sampler_quotas(sm, k, sr_rng_uniform(&ss), NULL);
        kr_all[t] = kr;
        sr_sampler_draw(sm, kr, &rs, rows);
        for (int64_t j = 0; j < kr; j++) counts[sr_shard_global(s, c->rank, rows[j])] += 1;
    }
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum(c, counts, s->n, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_comm_allreduce_sum_i64(c, kr_all, steps, &e), SR_OK);
    int all_k = 1;
    for (int64_t t = 0; t < steps; t++) all_k &= kr_all[t] == k;
    CU_ASSERT(all_k);
    free(kr_all);
    free(rows);
    sr_sampler_destroy(&sm);
}

static void test_chi2(void)
{
    const int64_t n = 53, k = 9, steps = 20000;
    int64_t pop[53];
    for (int j = 0; j < n; j++) pop[j] = j % 4 == 1 ? 0 : (j * 17) % 29;
    double counts[53], expect[53], wrong[53];
    for (int kind = 0; kind < 2; kind++) {
        double W = 0, w[53];
        for (int j = 0; j < n; j++) {
            w[j] = kind ? pow(pop[j] + 1.0, 0.6) : 1.0;
            W += w[j];
        }
        for (int j = 0; j < n; j++) {
            expect[j] = (double)(steps * k) * w[j] / W;
            wrong[j] = (double)(steps * k) * (kind ? 1.0 / n : (j % 2 ? 1.04 : 0.96) / n);
        }
        for (int layout = 0; layout < 2; layout++) {
            sr_shard s;
            sr_error e;
            sr_error_clear(&e);
            if (layout == 0) uneven(&s, n);
            else CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, n, sr_test_size(), &e), SR_OK);
            draw_counts(&s, kind ? SR_PROPOSAL_POPULARITY : SR_PROPOSAL_UNIFORM, pop, 0.6, k, steps, counts);
            double x = 0, xw = 0;
            for (int j = 0; j < n; j++) {
                x += (counts[j] - expect[j]) * (counts[j] - expect[j]) / expect[j];
                xw += (counts[j] - wrong[j]) * (counts[j] - wrong[j]) / wrong[j];
            }
            double pv = chi2_p(x, n - 1.0), pw = chi2_p(xw, n - 1.0);
            CU_ASSERT(pv > 1e-4);
            CU_ASSERT(pw < 1e-6);
            if (sr_test_rank() == 0)
                printf("\n  chi2 %s layout %d np %d: X=%.1f (df %lld) p=%.3g; wrong Q: p=%.3g", kind ? "popularity" : "uniform",
                       layout, sr_test_size(), x, (long long)(n - 1), pv, pw);
            sr_shard_destroy(&s);
        }
    }
}

static void test_exhaustive(void)
{
    const int64_t n = 47;
    sr_shard s;
    uneven(&s, n);
    double counts[47];
    draw_counts(&s, SR_PROPOSAL_UNIFORM, NULL, 1.0, n, 3, counts);
    int ok = 1;
    for (int j = 0; j < n; j++) ok &= counts[j] == 3.0;
    CU_ASSERT(ok);
    sr_shard_destroy(&s);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("sampler_mpi", suite_init, suite_clean);
    CU_add_test(s, "chi2", test_chi2);
    CU_add_test(s, "exhaustive", test_exhaustive);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }

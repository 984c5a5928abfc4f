/* test_sampler.c: alias tables, systematic quotas and shard-local draws over
 * P virtual shards in one process (sampler.h).
 *
 * Facts checked: the alias table encodes w / W exactly (to rounding); quotas
 * sum to k for every u and average to k M_r over u; with k = N uniform every
 * item is drawn exactly once on any shard layout; the empirical counts of
 * many draws pass a chi-square test against k Q(j) for uniform and
 * popularity proposals over uneven layouts with an empty shard, while the
 * same counts fail it against a wrong Q (the test has power); streams
 * reproduce and differ by step.
 *
 * Chi-square: X = sum_j (O_j - E_j)^2 / E_j with E_j = T k Q(j) >= 20, df =
 * N - 1 (the total is fixed: quotas sum to k every draw); p-value by the
 * Wilson-Hilferty normal approximation (accurate to a few percent in p for
 * df >= 30). Fixed seeds make the verdict deterministic; a correct sampler
 * passes p > 1e-4 with probability 0.9999 over seeds, a biased one by 1%
 * of k Q fails at these sample sizes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/shard.h"
#include "core/rng.h"
#include "harness.h"
#include "loss/sampler.h"

/* Upper tail p-value of chi-square(df) at x (Wilson-Hilferty). */
static double chi2_p(double x, double df)
{
    double z = (cbrt(x / df) - (1.0 - 2.0 / (9.0 * df))) / sqrt(2.0 / (9.0 * df));
    return 0.5 * erfc(z / sqrt(2.0));
}

static double chi2_stat(const double *obs, const double *expect, int64_t n)
{
    double x = 0;
    for (int64_t j = 0; j < n; j++) x += (obs[j] - expect[j]) * (obs[j] - expect[j]) / expect[j];
    return x;
}

static void test_alias_exact(void)
{
    sr_error e;
    sr_error_clear(&e);
    double w[7] = {0.5, 3.0, 0.0, 1.25, 7.0, 0.01, 2.0};
    sr_alias a;
    CU_ASSERT_EQUAL_FATAL(sr_alias_build(&a, w, 7, NULL, &e), SR_OK);
    double W = 0, implied[7] = {0};
    for (int j = 0; j < 7; j++) W += w[j];
    for (int i = 0; i < 7; i++) {
        CU_ASSERT(a.prob[i] >= 0.0 && a.prob[i] <= 1.0);
        implied[i] += a.prob[i] / 7.0;
        implied[a.alias[i]] += (1.0 - a.prob[i]) / 7.0;
    }
    for (int j = 0; j < 7; j++) CU_ASSERT(fabs(implied[j] - w[j] / W) < 1e-14);
    CU_ASSERT(implied[2] == 0.0); /* a zero weight is never drawn */
    sr_alias_destroy(&a, NULL);
    double bad[2] = {1.0, -1.0};
    CU_ASSERT_EQUAL(sr_alias_build(&a, bad, 2, NULL, &e), SR_ERR_DATA);
}

/* Uneven layout with an empty shard (p >= 2): sizes 0, 30, 3, 3, ... */
static void uneven(sr_shard *s, int64_t n, int p)
{
    int64_t counts[8] = {0};
    int64_t left = n;
    for (int r = 1; r < p; r++) {
        counts[r] = r == 1 ? n - 3 * (p - 2) : 3;
        left -= counts[r];
    }
    counts[0] = left; /* 0 when p >= 2 */
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(s, n, p, p == 1 ? NULL : counts, &e), SR_OK);
}

static void test_quotas(void)
{
    sr_error e;
    sr_error_clear(&e);
    sr_shard s;
    uneven(&s, 41, 4);
    int64_t pop[41];
    for (int j = 0; j < 41; j++) pop[j] = (j * 7) % 11;
    sr_sampler *sm = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_sampler_create(&sm, &s, 1, SR_PROPOSAL_POPULARITY, pop, 0.75, NULL, &e), SR_OK);
    double W = 0, M[4] = {0};
    for (int j = 0; j < 41; j++) {
        double w = pow(pop[j] + 1.0, 0.75);
        W += w;
        M[sr_shard_owner(&s, j)] += w;
    }
    const int64_t k = 13;
    const int grid = 100000;
    double mean[4] = {0};
    int sums_ok = 1;
    for (int g = 0; g < grid; g++) {
        int64_t qt[4];
        int64_t mine = sr_sampler_quotas(sm, k, (g + 0.5) / grid, qt);
        sums_ok &= qt[0] + qt[1] + qt[2] + qt[3] == k && mine == qt[1] && qt[0] == 0 && qt[1] >= 0 &&
                   qt[2] >= 0 && qt[3] >= 0;
        for (int r = 0; r < 4; r++) mean[r] += (double)qt[r] / grid;
    }
    CU_ASSERT(sums_ok);
    for (int r = 0; r < 4; r++) CU_ASSERT(fabs(mean[r] - k * M[r] / W) < 1e-4);
    sr_sampler_destroy(&sm);
    CU_ASSERT_PTR_NULL(sm);
    sr_shard_destroy(&s);
}

static void test_exhaustive(void)
{
    /* k = N uniform: every item exactly once, whatever the layout and u. */
    sr_error e;
    sr_error_clear(&e);
    for (int layout = 0; layout < 3; layout++) {
        for (int p = 1; p <= 4; p++) {
            sr_shard s;
            const int64_t n = 49;
            if (layout == 0) CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, n, p, NULL, &e), SR_OK);
            if (layout == 1) uneven(&s, n, p);
            if (layout == 2) CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, n, p, &e), SR_OK);
            int count[49] = {0};
            sr_rng ss;
            sr_sampler_shared_stream(&ss, 3, 17);
            double u = sr_rng_uniform(&ss);
            for (int r = 0; r < p; r++) {
                sr_sampler *sm = NULL;
                CU_ASSERT_EQUAL_FATAL(sr_sampler_create(&sm, &s, r, SR_PROPOSAL_UNIFORM, NULL, 1, NULL, &e), SR_OK);
                int64_t kr = sr_sampler_quotas(sm, n, u, NULL);
                CU_ASSERT_EQUAL(kr, sr_shard_count(&s, r));
                int64_t rows[49];
                sr_rng rs;
                sr_sampler_stream(&rs, 3, r, 17);
                sr_sampler_draw(sm, kr, &rs, rows);
                for (int64_t j = 0; j < kr; j++) count[sr_shard_global(&s, r, rows[j])]++;
                CU_ASSERT(sr_sampler_logq(sm, 0) == -log(49.0));
                sr_sampler_destroy(&sm);
            }
            for (int j = 0; j < n; j++) CU_ASSERT_EQUAL(count[j], 1);
            sr_shard_destroy(&s);
        }
    }
}

/* T draws of k over P virtual shards; counts per global id. */
static void draw_counts(const sr_shard *s, sr_proposal kind, const int64_t *pop, double beta, int64_t k,
                        int64_t steps, double *counts)
{
    sr_error e;
    sr_error_clear(&e);
    sr_sampler *sm[8] = {NULL};
    for (int r = 0; r < s->p; r++)
        CU_ASSERT_EQUAL_FATAL(sr_sampler_create(&sm[r], s, r, kind, pop, beta, NULL, &e), SR_OK);
    int64_t *rows = malloc((size_t)k * sizeof(int64_t));
    memset(counts, 0, (size_t)s->n * sizeof(double));
    for (int64_t t = 1; t <= steps; t++) {
        sr_rng ss;
        sr_sampler_shared_stream(&ss, 11, t);
        double u = sr_rng_uniform(&ss);
        int64_t total = 0;
        for (int r = 0; r < s->p; r++) {
            sr_rng rs;
            sr_sampler_stream(&rs, 11, r, t);
            int64_t kr = sr_sampler_quotas(sm[r], k, u, NULL);
            total += kr;
            sr_sampler_draw(sm[r], kr, &rs, rows);
            for (int64_t j = 0; j < kr; j++) counts[sr_shard_global(s, r, rows[j])] += 1;
        }
        CU_ASSERT_EQUAL(total, k);
    }
    free(rows);
    for (int r = 0; r < s->p; r++) sr_sampler_destroy(&sm[r]);
}

static void test_chi2_virtual(void)
{
    const int64_t n = 61, k = 7, steps = 30000;
    int64_t pop[61];
    for (int j = 0; j < n; j++) pop[j] = j % 5 == 0 ? 0 : (j * 13) % 23; /* zeros: the +1 floor */
    double counts[61], expect[61], wrong[61];
    for (int kind = 0; kind < 2; kind++) {
        double W = 0, w[61];
        for (int j = 0; j < n; j++) {
            w[j] = kind ? pow(pop[j] + 1.0, 0.8) : 1.0;
            W += w[j];
        }
        for (int j = 0; j < n; j++) {
            expect[j] = (double)(steps * k) * w[j] / W;
            wrong[j] = (double)(steps * k) * (kind ? 1.0 / n : (j % 2 ? 1.04 : 0.96) / n);
        }
        for (int p = 1; p <= 4; p++) {
            for (int layout = 0; layout < 2; layout++) {
                sr_shard s;
                sr_error e;
                sr_error_clear(&e);
                if (layout == 0) uneven(&s, n, p);
                else CU_ASSERT_EQUAL_FATAL(sr_shard_init_interleave(&s, n, p, &e), SR_OK);
                draw_counts(&s, kind ? SR_PROPOSAL_POPULARITY : SR_PROPOSAL_UNIFORM, pop, 0.8, k, steps, counts);
                double x = chi2_stat(counts, expect, n), pv = chi2_p(x, (double)(n - 1));
                double xw = chi2_stat(counts, wrong, n), pw = chi2_p(xw, (double)(n - 1));
                CU_ASSERT(pv > 1e-4);
                CU_ASSERT(pw < 1e-6);
                if (!(pv > 1e-4) || !(pw < 1e-6))
                    fprintf(stderr, "chi2 %s p=%d layout %d: X=%.1f p=%.3g, wrong X=%.1f p=%.3g\n",
                            kind ? "popularity" : "uniform", p, layout, x, pv, xw, pw);
                sr_shard_destroy(&s);
            }
        }
    }
}

static void test_streams(void)
{
    sr_rng a, b, c, d;
    sr_sampler_stream(&a, 5, 2, 9);
    sr_sampler_stream(&b, 5, 2, 9);
    sr_sampler_stream(&c, 5, 2, 10);
    sr_sampler_shared_stream(&d, 5, 9);
    uint32_t xa = sr_rng_u32(&a), xb = sr_rng_u32(&b), xc = sr_rng_u32(&c), xd = sr_rng_u32(&d);
    CU_ASSERT_EQUAL(xa, xb);
    CU_ASSERT_NOT_EQUAL(xa, xc);
    CU_ASSERT_NOT_EQUAL(xa, xd);
}

static void test_errors(void)
{
    sr_error e;
    sr_error_clear(&e);
    sr_shard s;
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 5, 2, NULL, &e), SR_OK);
    int64_t pop[5] = {1, 2, -3, 4, 5};
    sr_sampler *sm = NULL;
    CU_ASSERT_EQUAL(sr_sampler_create(&sm, &s, 0, SR_PROPOSAL_POPULARITY, pop, 1.0, NULL, &e), SR_ERR_DATA);
    CU_ASSERT_PTR_NULL(sm);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_sampler_create(&sm, &s, 0, SR_PROPOSAL_POPULARITY, NULL, 1.0, NULL, &e), SR_ERR_CONFIG);
    sr_shard_destroy(&s);
}

static void test_memory_counted(void)
{
    sr_error e;
    sr_error_clear(&e);
    sr_shard s;
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 1000, 2, NULL, &e), SR_OK);
    int64_t *pop = calloc(1000, sizeof(int64_t));
    sr_mem m;
    sr_mem_init(&m, 0);
    sr_sampler *sm = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_sampler_create(&sm, &s, 1, SR_PROPOSAL_POPULARITY, pop, 1.0, &m, &e), SR_OK);
    CU_ASSERT(m.current > 500 * 3 * sizeof(double)); /* alias table + log weights of 500 rows */
    sr_sampler_destroy(&sm);
    CU_ASSERT_EQUAL(m.current, 0);
    free(pop);
    sr_shard_destroy(&s);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("sampler", NULL, NULL);
    CU_add_test(s, "alias_exact", test_alias_exact);
    CU_add_test(s, "quotas", test_quotas);
    CU_add_test(s, "exhaustive", test_exhaustive);
    CU_add_test(s, "chi2_virtual", test_chi2_virtual);
    CU_add_test(s, "streams", test_streams);
    CU_add_test(s, "errors", test_errors);
    CU_add_test(s, "memory_counted", test_memory_counted);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }

/* test_sampled.c: the sampled losses in one process (1 rank).
 *
 * Facts: double-precision finite differences of the float64 twin, with the
 * sample of a real step held fixed, match the twin's analytic dq and dv for
 * ssm, nce and bpr (every proposal, shared and per-query); the corrections
 * the step reports equal log(k Q(j)) computed here from the counts, and the
 * ssm positive is not corrected (the loss written out by hand for b = 1);
 * the logits stay finite for large scores (logits near 60); bpr at
 * B = 20,000 needs O(B d) bytes, not a B x B buffer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/config.h"
#include "core/mem.h"
#include "core/rng.h"
#include "harness.h"
#include "analysis/lse_bias.h"
#include "loss/sampled.h"

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

enum { N = 23, B = 5, D = 4 };

typedef struct fixture {
    float q[B * D], v[N * D];
    int64_t tg[B], pop[N];
    sr_shard s;
    sr_config cfg;
    sr_sampled *sl;
    sr_sample_view view;
    double loss;
} fixture;

static void fixture_make(fixture *f, sr_loss_kind kind, const char *prop, int64_t k, bool shared, double scale)
{
    sr_rng r;
    sr_rng_init(&r, 4242, 0, 1);
    for (int i = 0; i < B * D; i++) f->q[i] = (float)(scale * sr_rng_normal(&r));
    for (int i = 0; i < N * D; i++) f->v[i] = (float)(scale * sr_rng_normal(&r));
    for (int i = 0; i < B; i++) f->tg[i] = (int64_t)sr_rng_below(&r, N);
    for (int j = 0; j < N; j++) f->pop[j] = j % 4 ? (int64_t)sr_rng_below(&r, 30) : 0;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&f->s, N, 1, NULL, &e), SR_OK);
    sr_config_defaults(&f->cfg);
    f->cfg.loss_negatives = k;
    f->cfg.loss_dns_candidates = 2 * k;
    f->cfg.loss_shared_negatives = shared;
    f->cfg.loss_proposal_beta = 0.5;
    snprintf(f->cfg.loss_proposal, sizeof f->cfg.loss_proposal, "%s", prop);
    sr_loss_init in = {&g_comm, &f->cfg, &f->s, f->pop, NULL, B, D, NULL};
    f->sl = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_sampled_create(&f->sl, kind, &in, &e), SR_OK);
    float dq[B * D];
    sr_item_grad dv;
    CU_ASSERT_EQUAL_FATAL(sr_sampled_step(f->sl, f->q, B, f->v, f->tg, 3, &f->loss, dq, &dv, &e), SR_OK);
    sr_sampled_last_sample(f->sl, &f->view);
}

static void fixture_free(fixture *f)
{
    sr_sampled_destroy(&f->sl);
    sr_shard_destroy(&f->s);
}

static double ref_loss(fixture *f)
{
    double l;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_sampled_ref(&f->view, 1, f->q, B, D, f->v, N, f->tg, &l, NULL, NULL, &e), SR_OK);
    return l;
}

/* Central difference in x[idx] with the float steps actually taken. */
static double fd(fixture *f, float *x, int idx)
{
    const float x0 = x[idx];
    x[idx] = x0 + 0x1p-11f;
    double hp = (double)x[idx] - x0, lp = ref_loss(f);
    x[idx] = x0 - 0x1p-11f;
    double hm = (double)x[idx] - x0, lm = ref_loss(f);
    x[idx] = x0;
    return (lp - lm) / (hp - hm);
}

static void check_fd(sr_loss_kind kind, const char *prop, int64_t k, bool shared)
{
    fixture f;
    fixture_make(&f, kind, prop, k, shared, 0.8);
    double l, dq[B * D], dv[N * D];
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_sampled_ref(&f.view, 1, f.q, B, D, f.v, N, f.tg, &l, dq, dv, &e), SR_OK);
    CU_ASSERT(fabs(l - f.loss) < 1e-5 * fmax(1.0, fabs(l))); /* the fast step agrees */
    double worst = 0;
    for (int i = 0; i < B * D; i++) worst = fmax(worst, fabs(fd(&f, f.q, i) - dq[i]) / (1e-6 + 1e-4 * fabs(dq[i])));
    for (int i = 0; i < N * D; i++) worst = fmax(worst, fabs(fd(&f, f.v, i) - dv[i]) / (1e-6 + 1e-4 * fabs(dv[i])));
    CU_ASSERT(worst <= 1.0);
    if (!(worst <= 1.0)) fprintf(stderr, "fd %d %s k=%lld shared=%d: worst scaled error %.3g\n", (int)kind, prop,
                                 (long long)k, shared, worst);
    fixture_free(&f);
}

static void test_fd_ssm(void)
{
    check_fd(SR_LOSS_SSM, "uniform", 6, true);
    check_fd(SR_LOSS_SSM, "popularity", 9, false);
    check_fd(SR_LOSS_SSM, "inbatch", 1, true);
    check_fd(SR_LOSS_SSM, "dynamic", 4, true);
}

static void test_fd_nce(void)
{
    check_fd(SR_LOSS_NCE, "uniform", 6, false);
    check_fd(SR_LOSS_NCE, "popularity", 9, true);
    check_fd(SR_LOSS_NCE, "dynamic", 3, false);
}

static void test_fd_bpr(void) { check_fd(SR_LOSS_BPR, "uniform", 1, true); }

/* bpr at B = 20,000 (d = 64): the loss's counted bytes (sampler included)
 * stay O(B d), below 64 B d + 1 MiB, where a B x B score buffer alone
 * is 1.6 GB; the step still matches the float64 twin. The sr_mem limit
 * makes an O(B^2) create fail with SR_ERR_NOMEM instead of allocating it. */
static void test_bpr_memory(void)
{
    enum { BB = 20000, DD = 64, NN = 1000 };
    const size_t bound = (size_t)64 * BB * DD + ((size_t)1 << 20);
    float *q = malloc(sizeof(float) * BB * DD), *v = malloc(sizeof(float) * NN * DD);
    float *dq = malloc(sizeof(float) * BB * DD);
    double *rdq = malloc(sizeof(double) * BB * DD);
    int64_t *tg = malloc(sizeof(int64_t) * BB), pop[NN];
    CU_ASSERT_FATAL(q && v && dq && rdq && tg);
    sr_rng r;
    sr_rng_init(&r, 77, 0, 1);
    for (int64_t i = 0; i < (int64_t)BB * DD; i++) q[i] = (float)(0.3 * sr_rng_normal(&r));
    for (int64_t i = 0; i < (int64_t)NN * DD; i++) v[i] = (float)(0.3 * sr_rng_normal(&r));
    for (int64_t i = 0; i < BB; i++) tg[i] = (int64_t)sr_rng_below(&r, NN);
    for (int64_t j = 0; j < NN; j++) pop[j] = 1;
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, NN, 1, NULL, &e), SR_OK);
    sr_config cfg;
    sr_config_defaults(&cfg);
    sr_mem mem;
    sr_mem_init(&mem, bound);
    sr_loss_init in = {&g_comm, &cfg, &s, pop, NULL, BB, DD, &mem};
    sr_sampled *sl = NULL;
    sr_status st = sr_sampled_create(&sl, SR_LOSS_BPR, &in, &e);
    CU_ASSERT_EQUAL(st, SR_OK);
    if (st != SR_OK) fprintf(stderr, "bpr create at B = %d: %s\n", BB, e.msg);
    if (sl) {
        double loss = 0, ref = 0;
        sr_item_grad dv;
        CU_ASSERT_EQUAL_FATAL(sr_sampled_step(sl, q, BB, v, tg, 5, &loss, dq, &dv, &e), SR_OK);
        fprintf(stderr, "bpr B = %d d = %d: loss workspace peak %zu bytes (bound %zu)\n", BB, DD, mem.peak,
                bound);
        CU_ASSERT(mem.peak <= bound);
        sr_sample_view view;
        sr_sampled_last_sample(sl, &view);
        CU_ASSERT_EQUAL(sr_sampled_ref(&view, 1, q, BB, DD, v, NN, tg, &ref, rdq, NULL, &e), SR_OK);
        CU_ASSERT(fabs(ref - loss) < 1e-5 * fmax(1.0, fabs(ref)));
        double worst = 0;
        for (int64_t i = 0; i < (int64_t)BB * DD; i++)
            worst = fmax(worst, fabs((double)dq[i] - rdq[i]) / (1e-9 + 1e-4 * fabs(rdq[i])));
        CU_ASSERT(worst <= 1.0);
        sr_sampled_destroy(&sl);
    }
    CU_ASSERT_EQUAL(mem.current, 0);
    sr_shard_destroy(&s);
    free(q), free(v), free(dq), free(rdq), free(tg);
}

/* The corrections are log(k Q(j)) with Q from the counts (+1 floor, ^beta),
 * and the ssm loss of query 0 written out by hand: positive uncorrected. */
static void test_corrections_by_hand(void)
{
    const char *props[2] = {"uniform", "popularity"};
    for (int pi = 0; pi < 2; pi++) {
        fixture f;
        fixture_make(&f, SR_LOSS_SSM, props[pi], 7, false, 0.8);
        double W = 0;
        for (int j = 0; j < N; j++) W += pi ? pow(f.pop[j] + 1.0, 0.5) : 1.0;
        int ok = 1;
        for (int64_t e = 0; e < f.view.n; e++) {
            double w = pi ? pow(f.pop[f.view.gid[e]] + 1.0, 0.5) : 1.0;
            ok &= fabs(f.view.corr[e] - log(7.0 * w / W)) < 1e-12;
        }
        CU_ASSERT(ok);
        CU_ASSERT_EQUAL(f.view.ptr[B] - f.view.ptr[0], 7 * B); /* per query: k each at 1 rank */
        /* L_0 = log(exp(s_t) + sum_{j != t} exp(s_j - c_j)) - s_t, averaged with the others by the step */
        double sum = 0, st = 0;
        for (int t = 0; t < D; t++) st += (double)f.q[t] * f.v[f.tg[0] * D + t];
        sum = exp(st);
        for (int64_t e = f.view.ptr[0]; e < f.view.ptr[1]; e++) {
            if (f.view.gid[e] == f.tg[0]) continue;
            double sj = 0;
            for (int t = 0; t < D; t++) sj += (double)f.q[t] * f.v[f.view.gid[e] * D + t];
            sum += exp(sj - f.view.corr[e]);
        }
        double l0 = log(sum) - st;
        sr_sample_view one = f.view;
        int64_t ptr1[2] = {f.view.ptr[0], f.view.ptr[1]};
        one.ptr = ptr1;
        one.b = 1;
        double lr;
        sr_error e;
        sr_error_clear(&e);
        CU_ASSERT_EQUAL(sr_sampled_ref(&one, 1, f.q, 1, D, f.v, N, f.tg, &lr, NULL, NULL, &e), SR_OK);
        CU_ASSERT(fabs(lr - l0) < 1e-12);
        fixture_free(&f);
    }
}

static void test_large_logits(void)
{
    /* Scores near +-60: exp would overflow float without the max shift. */
    fixture f;
    fixture_make(&f, SR_LOSS_SSM, "uniform", 10, true, 4.0);
    CU_ASSERT(isfinite(f.loss));
    double l = ref_loss(&f);
    CU_ASSERT(fabs(l - f.loss) < 1e-5 * fmax(1.0, fabs(l)));
    fixture_free(&f);
    fixture_make(&f, SR_LOSS_NCE, "uniform", 10, true, 4.0);
    CU_ASSERT(isfinite(f.loss));
    l = ref_loss(&f);
    CU_ASSERT(fabs(l - f.loss) < 1e-5 * fmax(1.0, fabs(l)));
    fixture_free(&f);
}

static void test_config_errors(void)
{
    sr_shard s;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_shard_init_block(&s, 10, 1, NULL, &e), SR_OK);
    sr_config cfg;
    sr_config_defaults(&cfg);
    cfg.loss_negatives = 8;
    cfg.loss_dns_candidates = 4;
    snprintf(cfg.loss_proposal, sizeof cfg.loss_proposal, "dynamic");
    sr_loss_init in = {&g_comm, &cfg, &s, NULL, NULL, 4, 3, NULL};
    sr_sampled *sl = NULL;
    CU_ASSERT_EQUAL(sr_sampled_create(&sl, SR_LOSS_SSM, &in, &e), SR_ERR_CONFIG); /* m < k */
    CU_ASSERT_PTR_NULL(sl);
    sr_error_clear(&e);
    snprintf(cfg.loss_proposal, sizeof cfg.loss_proposal, "bogus");
    CU_ASSERT_EQUAL(sr_sampled_create(&sl, SR_LOSS_SSM, &in, &e), SR_ERR_CONFIG);
    sr_error_clear(&e);
    CU_ASSERT_EQUAL(sr_sampled_create(&sl, SR_LOSS_SOFTMAX, &in, &e), SR_ERR_INTERNAL);
    sr_shard_destroy(&s);
}

/* lse_bias kernels: with Q = P the SSM estimate is log Z for any sample;
 * the NCE estimate is the maximiser of the concave J(c). */
static double nce_j(double ux, const double *u, int64_t k, double c)
{
    double j = -log1p(exp(-(ux - c)));
    for (int64_t i = 0; i < k; i++) j += -log1p(exp(-(c - u[i])));
    return j;
}

static void test_lse_kernels(void)
{
    sr_rng r;
    sr_rng_init(&r, 99, 0, 1);
    double s[30], mx = -INFINITY, z = 0;
    for (int j = 0; j < 30; j++) {
        s[j] = 3.0 * sr_rng_normal(&r);
        mx = fmax(mx, s[j]);
    }
    for (int j = 0; j < 30; j++) z += exp(s[j] - mx);
    double logz = mx + log(z);
    double ss[7], lq[7];
    for (int i = 0; i < 7; i++) {
        int j = (int)sr_rng_below(&r, 30);
        ss[i] = s[j];
        lq[i] = s[j] - logz; /* Q = P */
    }
    CU_ASSERT(fabs(sr_lse_ssm_estimate(ss, lq, 7) - logz) < 1e-12);
    CU_ASSERT(fabs(sr_lse_ssm_estimate(ss, lq, 1) - logz) < 1e-12);
    for (int t = 0; t < 20; t++) {
        double u[9], ux = 4.0 * sr_rng_normal(&r);
        int64_t k = 1 + t % 9;
        for (int64_t i = 0; i < k; i++) u[i] = 4.0 * sr_rng_normal(&r);
        double c = sr_lse_nce_estimate(ux, u, k), jc = nce_j(ux, u, k, c);
        CU_ASSERT(isfinite(c));
        CU_ASSERT(jc >= nce_j(ux, u, k, c + 1e-4) && jc >= nce_j(ux, u, k, c - 1e-4));
        double g = -1.0 / (1.0 + exp(-(c - ux)));
        for (int64_t i = 0; i < k; i++) g += 1.0 / (1.0 + exp(-(u[i] - c)));
        CU_ASSERT(fabs(g) < 1e-9);
    }
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("sampled", suite_init, suite_clean);
    CU_add_test(s, "fd_ssm", test_fd_ssm);
    CU_add_test(s, "fd_nce", test_fd_nce);
    CU_add_test(s, "fd_bpr", test_fd_bpr);
    CU_add_test(s, "bpr_memory", test_bpr_memory);
    CU_add_test(s, "corrections_by_hand", test_corrections_by_hand);
    CU_add_test(s, "large_logits", test_large_logits);
    CU_add_test(s, "config_errors", test_config_errors);
    CU_add_test(s, "lse_kernels", test_lse_kernels);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
